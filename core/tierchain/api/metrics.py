"""The node's Prometheus metrics and its readiness, for the HTTP endpoint (``GET /metrics``,
``GET /ready``: tierchain.api.rpc; docs/operations.md, "Metrics, health and dashboards").

``NodeMetrics`` is built over one ``Chain`` by the endpoint (``NodeApp``) and owns its own
``CollectorRegistry``, never prometheus_client's global one: several nodes run in one test
process, and each must report its own chain. Nothing here runs per transaction on the
block pipeline:

* at scrape time (``collect``) the gauges are read off the chain: head height and time,
  mempool depth, LMDB sizes, readiness;
* once per committed block a follower thread (``tierchain-metrics``, one subscription to the
  chain) counts the block's transactions and receipt codes (one C-level pass over the
  receipts, ~50 ns a receipt), its interval from the previous block, and folds the per-stage
  timings the pipeline already keeps (``Chain.timings``, ``BlockTiming``); while blocks
  come it wakes at most every ``follow_batch_s`` and takes them all (measured: 13-18 us of
  its CPU per block at one block per two or three transactions, docs/operations.md);
* once per batch submitted through the endpoint (``submit``, in the request's pool thread)
  the admission codes are counted (one ``numpy.bincount``) and a callback is put on the
  batch's commit, which observes the submit->commit latency of its admitted transactions:
  O(1) on the committer thread, per batch, not per transaction.

Counters start at 0 when the endpoint starts (blocks committed before it are not counted).
Shard and replication health (a cluster's links, CometBFT's peers) live in objects the
Chain does not reach; their owner adds them with ``add_source``: a callable returning
``Gauge`` values, read at each scrape.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import functools
import itertools
import logging
import operator
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from tierchain.engine.chain import SOLO, Chain, CommittedBlock, Submission, SubscriberLagged

log = logging.getLogger("tierchain.metrics")

tps_window_s = 10.0  # tierchain_committed_transactions_per_second: committed in the last this many s
stall_s = 30.0  # /ready: transactions pending and the head still for this long = STALLED
follow_poll_s = 0.5  # the follower looks at the stop flag and the stall clock this often
follow_batch_s = 0.05  # ... and, while blocks come, wakes at most this often (a batch of them)

# Histogram buckets (upper bounds; +Inf is added). Seconds unless said.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
INTERVAL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BLOCK_TXS_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
# The stages of ``BlockTiming`` (seconds per block): produce (gather, execute, and the tree
# when inline), execute (the part of produce running the ops and the receipt roots), tree
# (``Commitment.prepare``), write (the write txn's body), durable (LMDB commit and its fsync).
STAGES = ("produce", "execute", "tree", "write", "durable")

_METRIC_NAME = re.compile(r"tierchain_[a-zA-Z0-9_]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Exposition(bytes):
    """A ``/metrics`` answer: the text exposition, served with its own content type."""

    content_type = CONTENT_TYPE_LATEST.encode()


@dataclasses.dataclass(frozen=True)
class Gauge:
    """One gauge sample a health source reports (``add_source``): ``name`` starts with
    ``tierchain_`` and carries its unit; samples of one name share their label names."""

    name: str
    help: str
    value: float
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


HealthSource = Callable[[], Iterable[Gauge]]


@dataclasses.dataclass(frozen=True)
class Readiness:
    """What ``GET /ready`` answers: ``reason`` is ``READY`` or the first check that failed."""

    ready: bool
    reason: str
    detail: str
    height: int


class _Histogram:
    """Bucket counts and a sum; ``observe(value, n)`` counts ``n`` observations of ``value``
    at once (a batch's transactions, committed together)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf only)
        self.sum = 0.0

    def observe(self, value: float, n: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += n
        self.sum += value * n

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs, +Inf last: prometheus_client's histogram form."""
        cumulative = list(itertools.accumulate(self.counts))
        les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        return list(zip(les, cumulative, strict=True))


class NodeMetrics:
    """The metrics of one node's ``chain`` (module docstring); ``registry`` is its own.

    ``stopping``: whether the endpoint has begun stopping (``/ready`` is then 503). Starts
    its follower thread at once; ``close`` stops it (the endpoint's stop does).
    """

    def __init__(self, chain: Chain, *, stopping: Callable[[], bool] = lambda: False) -> None:
        self.chain, self._stopping = chain, stopping
        self._lock = threading.Lock()
        self._sources: list[HealthSource] = []
        self._admissions = np.zeros(256, np.int64)  # by admission code (a u8: Submission.codes)
        self._receipts: collections.Counter[int] = collections.Counter()  # by receipt code (u16)
        self._committed = 0
        self._missed = 0  # blocks the follower did not see (it lagged): counted by header only
        self._recent: collections.deque[tuple[float, int]] = collections.deque()  # (monotonic, txs)
        self._latency = _Histogram(LATENCY_BUCKETS)
        self._interval = _Histogram(INTERVAL_BUCKETS)
        self._block_txs = _Histogram(BLOCK_TXS_BUCKETS)
        self._stages = {stage: _Histogram(STAGE_BUCKETS) for stage in STAGES}
        self._sub = chain.subscribe()  # before the start height: no block falls between
        head = chain.head()
        self._seen_height = self._timing_height = head.height
        # The previous block's timestamp: none before the endpoint's first block (genesis has a
        # configured time, and a restart's first interval would span the downtime).
        self._last_timestamp_ms: int | None = None
        self._progress = (head.height, time.monotonic())  # (height, since when) for STALLED
        self._closed = threading.Event()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)  # process_*: CPU, memory, open files
        self._thread = threading.Thread(target=self._follow, name="tierchain-metrics", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop following the chain (idempotent)."""
        self._closed.set()
        self._sub._push(None)  # wakes the follower now, not at its next poll
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._sub.close()

    def add_source(self, source: HealthSource) -> None:
        """Report ``source()``'s gauges at each scrape: a shard's or a replicated node's
        health, owned by what runs it. A source that raises is logged and left out of that
        scrape; it never fails the scrape."""
        with self._lock:
            self._sources.append(source)

    # --- per batch: the endpoint's submissions --------------------------------------------

    def submit(self, body: bytes) -> Submission:
        """``chain.submit(body)``, counting its admission codes and timing its commit."""
        t0 = time.perf_counter()
        sub = self.chain.submit(body)
        counts = np.bincount(sub.codes, minlength=256)
        with self._lock:
            self._admissions += counts
        admitted = int(counts[0])
        if admitted:
            # Settled by the committer once every admitted tx of the batch is durable (or
            # failed): one O(1) callback per batch on that thread.
            sub.add_done_callback(functools.partial(self._batch_done, t0, admitted))
        return sub

    def _batch_done(self, t0: float, admitted: int, future: Any) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # the chain failed: these transactions have no commit time
        latency = time.perf_counter() - t0
        with self._lock:
            self._latency.observe(latency, admitted)

    # --- per block: the follower ----------------------------------------------------------

    def _follow(self) -> None:
        try:
            while not self._closed.is_set():
                items = self._next_blocks()
                # Timings first: block h's is kept before h is published, so a scrape never
                # sees h counted and its stages not.
                self._fold_timings()
                for item in items:
                    self._block(item)
                self._note_progress()
                if not items and self._chain_closed():
                    return
                if items:  # let the next blocks gather: one wake-up per follow_batch_s at most
                    self._closed.wait(follow_batch_s)
        except Exception:  # a bug: the metrics stop moving, the node goes on
            log.exception("metrics follower stopped")

    def _next_blocks(self) -> list[CommittedBlock]:
        """The blocks published since the last call: waits up to ``follow_poll_s`` for one."""
        items: list[CommittedBlock] = []
        timeout = follow_poll_s
        while True:
            try:
                item = self._sub.get(timeout=timeout)
            except SubscriberLagged:  # over subscriber_queue_max blocks behind: catch up
                self._sub.close()
                self._sub = self.chain.subscribe()
                return items
            if item is None:  # none queued (or the chain closed: it pushes None)
                return items
            items.append(item)
            timeout = 0

    def _chain_closed(self) -> bool:
        return self.chain.stopping and not self.chain.producing

    def _block(self, item: CommittedBlock) -> None:
        header = item.header
        if header.height <= self._seen_height:
            return  # committed before this endpoint started
        missed = range(self._seen_height + 1, header.height)
        # Blocks the follower never saw (it lagged): their transactions, from their headers.
        missed_txs = sum(h.tx_count for n in missed if (h := self.chain.header(n)) is not None)
        codes = collections.Counter(map(operator.attrgetter("code"), item.receipts))
        now = time.monotonic()
        with self._lock:
            self._missed += len(missed)
            self._committed += missed_txs + header.tx_count
            self._receipts.update(codes)
            self._block_txs.observe(header.tx_count)
            if not missed and self._last_timestamp_ms is not None:
                # Block time: between consecutive blocks' timestamps (the producer's cut, or
                # the CometBFT block time of a replicated chain).
                self._interval.observe(max(0, header.timestamp_ms - self._last_timestamp_ms) / 1000)
            self._recent.append((now, missed_txs + header.tx_count))
            while self._recent and self._recent[0][0] < now - tps_window_s:
                self._recent.popleft()
        self._seen_height, self._last_timestamp_ms = header.height, header.timestamp_ms

    def _fold_timings(self) -> None:
        """Add the per-stage timings of blocks committed since the last fold (``Chain.timings``:
        a solo chain's pipeline appends one per block, heights ascending; a replicated
        chain's none)."""
        timings, cursor = self.chain.timings, self._timing_height
        recent: list[Any] = []
        while timings and (newest := timings[-1].height) > cursor:
            k = newest - cursor + 1  # heights are consecutive: enough to reach the cursor
            try:  # newest first (the deque may grow meanwhile: then read again)
                recent = list(itertools.islice(reversed(timings), k))
            except RuntimeError:
                continue
            break
        new = [t for t in reversed(recent) if t.height > cursor]
        if not new:
            return
        stages = [self._stages[stage] for stage in STAGES]
        with self._lock:
            for t in new:
                for hist, seconds in zip(
                    stages, (t.produce_s, t.execute_s, t.tree_s, t.write_s, t.durable_s), strict=True
                ):
                    hist.observe(seconds)
        self._timing_height = new[-1].height

    def _note_progress(self) -> tuple[int, float]:
        """Transactions admitted and not yet committed, and how long the head has been still
        while any were (0 when none are: an idle node is not stalled)."""
        height, pending, now = self.chain.height, len(self.chain.mempool), time.monotonic()
        with self._lock:
            if height != self._progress[0] or not pending:
                self._progress = (height, now)
            return pending, now - self._progress[1]

    # --- readiness ------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        """Whether the node should get traffic (docs/operations.md): the first failing check,
        in this order, is the reason.

        * ``STOPPING``: the endpoint began stopping, or the chain is closing;
        * ``CHAIN_FAILED``: a pipeline stage stopped (``Chain.error``);
        * ``NOT_RUNNING``: a solo chain whose producer thread is not running (not started,
          or exited); a replicated chain has none, CometBFT decides its blocks;
        * ``STALLED``: transactions are admitted and not committed, and the head has not
          moved for ``stall_s``. Not the head's age: an idle chain makes no empty blocks.
        """
        chain = self.chain
        height = chain.height
        if self._stopping() or chain.stopping:
            return Readiness(False, "STOPPING", "the node is stopping", height)
        if chain.error is not None:
            return Readiness(False, "CHAIN_FAILED", f"the chain stopped: {chain.error!r}"[:300], height)
        if chain.mode == SOLO:
            if not chain.producing:
                return Readiness(False, "NOT_RUNNING", "the block producer is not running", height)
        pending, still_s = self._note_progress()
        if pending and still_s > stall_s:
            return Readiness(
                False,
                "STALLED",
                f"{pending} transactions pending and no block committed for {still_s:.0f} s (at {height})",
                height,
            )
        return Readiness(True, "READY", "", height)

    # --- scrape -----------------------------------------------------------------------------

    def exposition(self) -> Exposition:
        """The registry in the text exposition format (``GET /metrics``)."""
        return Exposition(generate_latest(self.registry))

    def describe(self) -> list[Metric]:
        return []  # the registry asks collect() only at scrape time

    def collect(self) -> Iterator[Metric]:
        chain, names = self.chain, self.chain.apps.reject_name
        head = chain.head()
        config = chain.config
        yield InfoMetricFamily(
            "tierchain_node",
            "This node's chain: id, how its blocks are made (solo, cometbft), crypto suite, shard.",
            value={
                "chain_id": str(config.chain_id),
                "mode": chain.mode,
                "suite": chain.suite.name,
                "shard_index": str(config.shard_index),
                "shard_count": str(config.shard_count),
            },
        )
        yield GaugeMetricFamily("tierchain_committed_height", "Height of the committed head.", head.height)
        yield GaugeMetricFamily(
            "tierchain_head_timestamp_seconds",
            "The committed head's block time (Unix seconds); time() minus it is the head's age.",
            head.timestamp_ms / 1000,
        )
        mempool = chain.mempool
        yield GaugeMetricFamily(
            "tierchain_mempool_waiting_transactions",
            "Transactions admitted and not yet taken into a block.",
            mempool.waiting,
        )
        yield GaugeMetricFamily(
            "tierchain_mempool_pending_transactions",
            "Transactions admitted and not yet committed (waiting, or in a block being made).",
            len(mempool),
        )
        yield GaugeMetricFamily(
            "tierchain_mempool_capacity_transactions",
            "mempool.txs_max: pending transactions beyond it are refused MEMPOOL_FULL.",
            mempool.txs_max,
        )
        yield from self._lmdb()
        yield GaugeMetricFamily(
            "tierchain_ready", "1 when GET /ready answers 200, else 0.", int(self.readiness().ready)
        )
        now = time.monotonic()
        with self._lock:
            committed, missed = self._committed, self._missed
            window_txs = sum(n for at, n in self._recent if at >= now - tps_window_s)
            admissions = {int(c): int(self._admissions[c]) for c in np.flatnonzero(self._admissions)}
            receipts = dict(self._receipts)
            hists = {
                "latency": (self._latency.buckets(), self._latency.sum),
                "interval": (self._interval.buckets(), self._interval.sum),
                "block_txs": (self._block_txs.buckets(), self._block_txs.sum),
            }
            stages = {s: (h.buckets(), h.sum) for s, h in self._stages.items()}
            sources = list(self._sources)
        yield CounterMetricFamily(
            "tierchain_committed_transactions",
            "Transactions in blocks committed since the endpoint started.",
            committed,
        )
        yield GaugeMetricFamily(
            "tierchain_committed_transactions_per_second",
            f"Transactions committed in the last {tps_window_s:g} s, per second.",
            window_txs / tps_window_s,
        )
        admitted = CounterMetricFamily(
            "tierchain_admissions",
            "Transactions submitted through this endpoint, by admission code: OK (admitted) or "
            "the reject's name.",
            labels=("code",),
        )
        for code, n in sorted({0: 0, **admissions}.items()):
            admitted.add_metric((names(code),), n)
        yield admitted
        executed = CounterMetricFamily(
            "tierchain_receipts",
            "Committed transactions, by receipt code: OK, or the engine's or an app's reject name.",
            labels=("code",),
        )
        for code, n in sorted({0: 0, **receipts}.items()):
            executed.add_metric((names(code),), n)
        yield executed
        yield CounterMetricFamily(
            "tierchain_metrics_missed_blocks",
            "Committed blocks the metrics follower fell behind on: counted in committed "
            "transactions, not in receipts or block histograms.",
            missed,
        )
        for key, name, text in (
            (
                "latency",
                "tierchain_submit_commit_latency_seconds",
                "Per transaction admitted through this endpoint: from its batch's arrival (before "
                "admission) until its whole batch is durably committed.",
            ),
            (
                "interval",
                "tierchain_block_interval_seconds",
                "Time between the timestamps of consecutive blocks committed while the endpoint runs.",
            ),
            ("block_txs", "tierchain_block_transactions", "Transactions per committed block."),
        ):
            buckets, total = hists[key]
            yield HistogramMetricFamily(name, text, buckets=buckets, sum_value=total)
        stage_family = HistogramMetricFamily(
            "tierchain_block_stage_seconds",
            "Per block, the pipeline's time in each stage (BlockTiming): produce (execute, and the "
            "tree when inline), execute (the ops and the receipt roots, within produce), tree, write "
            "(the write txn's body), durable (LMDB commit and fsync). "
            "Solo chains only.",
            labels=("stage",),
        )
        for stage, (buckets, total) in stages.items():
            stage_family.add_metric((stage,), buckets, total)
        yield stage_family
        yield from self._sourced(sources)

    def _lmdb(self) -> Iterator[Metric]:
        store = self.chain.store
        try:
            file_bytes = os.stat(os.path.join(store.path, "data.mdb")).st_size
            map_bytes, _, _ = store.env.info()
            used_bytes = store.size_bytes()
        except Exception:  # closed under the scrape (the node is stopping): nothing to report
            return
        yield GaugeMetricFamily(
            "tierchain_lmdb_file_size_bytes", "Size of the LMDB data file (data.mdb) on disk.", file_bytes
        )
        yield GaugeMetricFamily(
            "tierchain_lmdb_used_bytes",
            "LMDB pages in use up to the last one written (page size x last page number).",
            used_bytes,
        )
        yield GaugeMetricFamily(
            "tierchain_lmdb_map_size_bytes",
            "LMDB map size: the address space the file may grow to.",
            map_bytes,
        )

    def _sourced(self, sources: list[HealthSource]) -> Iterator[Metric]:
        yield from source_families(sources)


def source_families(
    sources: Iterable[HealthSource],
    families: dict[str, tuple[tuple[str, ...], GaugeMetricFamily]] | None = None,
) -> Iterator[GaugeMetricFamily]:
    """The gauges of ``sources`` as metric families (one per name; a source that raises or
    reports a bad name is logged and left out of this scrape)."""
    families = {} if families is None else families
    for source in sources:
        try:
            gauges = list(source())
            for g in gauges:
                if not _METRIC_NAME.fullmatch(g.name) or not all(map(_LABEL_NAME.fullmatch, g.labels)):
                    raise ValueError(f"gauge {g.name!r} labels {sorted(g.labels)}: not a tierchain_ name")
        except Exception as exc:
            log.warning(
                "health source failed", extra={"fields": {"source": repr(source)[:200], "error": repr(exc)}}
            )
            continue
        for g in gauges:
            label_names = tuple(sorted(g.labels))
            if g.name not in families:
                families[g.name] = (label_names, GaugeMetricFamily(g.name, g.help, labels=label_names))
            expected, family = families[g.name]
            if label_names == expected:  # one name, one label set: else the sample is left out
                family.add_metric(tuple(g.labels[k] for k in label_names), g.value)
    for _, family in families.values():
        yield family


class SourceMetrics:
    """A registry of health sources alone (``add_source``): what a process without a chain of
    its own exposes at ``/metrics`` — a cluster's scheduler (its shards' and drivers' health)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._sources: list[HealthSource] = []
        self._lock = threading.Lock()
        self.registry.register(self)

    def add_source(self, source: HealthSource) -> None:
        with self._lock:
            self._sources.append(source)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            sources = list(self._sources)
        yield from source_families(sources)

    def exposition(self) -> Exposition:
        return Exposition(generate_latest(self.registry))
