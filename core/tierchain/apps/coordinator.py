"""The cross-shard coordinator: drives every pending transfer of ``tierchain.apps.xshard``.

It keeps no state of its own. Each ``step()`` reads the pending records of every
shard (``xl/`` locks at sources, ``xc/`` credits at destinations) and submits,
per shard and in one batch, the next transaction of each transfer:

=====================================  ==========================================
what it finds                          what it submits
=====================================  ==========================================
lock PREPARED, no credit yet           ``xcredit`` at the destination (before the
                                       deadline), else ``xdecide ABORT``
lock PREPARED, credit PREPARED         ``xdecide COMMIT`` (while ``now + margin``
                                       is before the deadline), else ABORT
lock PREPARED, credit REFUSED          ``xdecide ABORT``
lock whose destination is not the      ``xdecide ABORT``
recipient's home shard
credit pending, lock decided           ``xfinish`` with the recorded decision
=====================================  ==========================================

Killing the coordinator at any point loses nothing: the decision, once made,
is on the source chain, and a new coordinator (or the same one after a
restart) picks every transfer up where the chains say it is. Two coordinators
running at once are safe too, only wasteful: every step checks the record's
state on chain and the loser fails with ``XSHARD_STATE``.

Its transactions are ordinary signed transactions from an account with the
``coordinator`` role; the shards trust that role to commit only after the
destination prepared (docs/sharding.md "Cross-shard operations").

``Replicator`` (same role, same stateless style) copies the replicated records — the keys
of the apps' ``REPLICATED`` placement rules, written on the primary shard only — onto every
other shard: each step takes a snapshot of them on the primary (at one height), compares
it with each shard's copy and ships the difference with ``xshard.replicate``
(docs/sharding.md "Replicated records").

Both run in the background through ``StepLoop``, the one loop of this module: a driver
class inherits it and defines ``step()``, returning a report with an ``idle`` property
(true when the step found nothing to do) and, optionally, a ``failed`` attribute (truthy
when some of the step's transactions were refused). The loop has no ``__init__`` to
call; a driver sets ``loop_name`` (its thread's name and its log records' label)::

    class Courier(StepLoop):
        loop_name = "claim-courier"

        def step(self) -> CourierReport:  # has .idle (and .failed)
            ...

    courier = Courier(...)
    courier.start(interval=0.1)   # a daemon thread: step; sleep `interval` after an idle step
    courier.last, courier.last_idle_at, courier.errors   # what a status page shows
    courier.until_idle(timeout=30)                       # or step in the caller's thread
    courier.stop()                # returns once the step under way (if any) has ended

A step that raises, or whose report is not idle and has failures, is logged (with its
exception, or its report) and the next one waits a back-off doubling from ``interval``
up to ``backoff_max`` seconds, in a row of such steps; nothing a step does ends the loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from tierchain import limits
from tierchain.apps import xshard
from tierchain.apps.accounts import balance_key
from tierchain.apps.xshard import Credit, Decision, Lock, Status
from tierchain.crypto import KeyPair
from tierchain.engine.apps import resolve as resolve_apps
from tierchain.engine.route import PRIMARY_SHARD, route_keys
from tierchain.errors import Reject

log = logging.getLogger("tierchain.coordinator")

scan_page = 5_000  # records per state_scan call
step_txs_max = 5_000  # transactions per shard per step


class StepLoop:
    """Runs ``self.step()`` in a background thread until ``stop()`` (module docstring).

    Kept for a status page, each set by the step that ran last (in the loop or in
    ``until_idle``): ``last`` (its report), ``last_idle``/``last_idle_at`` (the report and
    ``time.time()`` of the last idle step), ``errors`` (steps failed in a row, 0 after one
    that went through) and ``last_error`` (the last failure, for humans)."""

    loop_name = "step-loop"  # the thread's name, the label of the loop's log records
    not_idle = "still not idle"  # what ``until_idle``'s TimeoutError says before the report
    loop_log = log
    backoff_max = 5.0  # seconds between tries at most, while steps keep failing
    backoff_min = 0.05  # the first back-off when ``interval`` is shorter

    last: Any = None
    last_idle: Any = None
    last_idle_at: float | None = None
    errors = 0
    last_error = ""
    _loop_thread: threading.Thread | None = None
    _loop_stop: threading.Event | None = None

    def step(self) -> Any:
        raise NotImplementedError

    def run_step(self) -> Any:
        """One step, recorded in ``last`` (and ``last_idle`` when idle)."""
        key = getattr(self, "key", None)  # a driver signing with a key: one step at a time a key
        with key_lock(key.public_key) if key is not None else contextlib.nullcontext():
            report = self.step()
        self.last = report
        if report.idle:
            self.last_idle, self.last_idle_at = report, time.time()
        return report

    def until_idle(self, timeout: float = 60.0, interval: float = 0.05) -> Any:
        """Step in this thread until a step is idle; returns its report. ``TimeoutError``
        (naming the last report) if none is within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.run_step()
            if report.idle:
                return report
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.not_idle}: {report}")
            time.sleep(interval)

    @property
    def running(self) -> bool:
        """The loop's thread is alive (a stop may be under way)."""
        return self._loop_thread is not None and self._loop_thread.is_alive()

    def start(self, interval: float = 0.05) -> None:
        """Step in a daemon thread until ``stop()``: right away again after a busy step,
        ``interval`` seconds after an idle one, backing off while steps fail."""
        if self.running:
            raise RuntimeError(f"{self.loop_name} is already running")
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(interval, stop), name=self.loop_name, daemon=True)
        self._loop_stop, self._loop_thread = stop, thread
        thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end and wait (at most ``timeout`` seconds) for its thread: it ends
        as soon as the step under way, if any, has. Harmless before ``start`` or twice."""
        if self._loop_stop is not None:
            self._loop_stop.set()
        thread = self._loop_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self, interval: float, stop: threading.Event) -> None:
        name, failed = self.loop_name, 0
        while not stop.is_set():
            try:
                report = self.run_step()
                refused = getattr(report, "failed", None)
            except Exception as exc:
                failed += 1
                self.last_error, self.errors = f"{type(exc).__name__}: {exc}", failed
                delay = self._backoff(interval, failed)
                self.loop_log.error(
                    "%s: step failed (%d in a row); next try in %.2f s", name, failed, delay, exc_info=exc
                )
                stop.wait(delay)
                continue
            if refused and not report.idle:
                failed += 1
                shown = dict(refused) if isinstance(refused, dict) else refused
                self.last_error, self.errors = f"refused: {shown}", failed
                delay = self._backoff(interval, failed)
                self.loop_log.warning(
                    "%s: step refused (%d in a row); next try in %.2f s: %s", name, failed, delay, report
                )
                stop.wait(delay)
                continue
            if failed:
                self.loop_log.info("%s: step went through after %d failed", name, failed)
            failed = self.errors = 0
            if report.idle:
                stop.wait(interval)

    def _backoff(self, interval: float, failed: int) -> float:
        return min(self.backoff_max, max(interval, self.backoff_min) * 2 ** min(failed - 1, 30))


_key_locks: dict[bytes, threading.Lock] = {}
_key_locks_guard = threading.Lock()


def key_lock(public_key: bytes) -> threading.Lock:
    """One lock a signing key: drivers that sign with the same key (the coordinator, the
    replicator, the claim courier under ``cluster start``) read its nonce, submit and wait for
    the commits one at a time, or each would refuse the other's transactions (NONCE_TOO_LOW)."""
    with _key_locks_guard:
        return _key_locks.setdefault(public_key, threading.Lock())


def scan_all(cluster: Any, shard: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) under ``prefix`` on ``shard``, page by page."""
    out: list[tuple[bytes, bytes]] = []
    after = b""
    while True:
        page = cluster.call(shard, "state_scan", prefix, scan_page, after)
        out += page
        if len(page) < scan_page:
            return out
        after = page[-1][0]


@dataclasses.dataclass
class StepReport:
    """What one step found and did."""

    pending_locks: int = 0
    pending_credits: int = 0
    submitted: Counter = dataclasses.field(default_factory=Counter)  # by kind
    failed: Counter = dataclasses.field(default_factory=Counter)  # by reject name

    @property
    def idle(self) -> bool:
        return not self.pending_locks and not self.pending_credits


class Coordinator(StepLoop):
    """Drives cross-shard transfers on ``cluster`` (a ``tierchain.sharding.cluster.Cluster``);
    ``start(interval)``/``stop()`` run it in the background (``StepLoop``)."""

    loop_name = "xshard-coordinator"
    not_idle = "cross-shard transfers still pending"
    # A refused step (mostly two coordinators racing) waits at most this long: transfers
    # have deadlines, and a commit decided after one is an abort.
    backoff_max = 0.5

    def __init__(self, cluster: Any, key: KeyPair, *, margin_ms: int = 1_000, commit_timeout: float = 30.0):
        self.cluster, self.key = cluster, key
        self.margin_ms, self.commit_timeout = margin_ms, commit_timeout
        self.n = cluster.n_shards
        self.last: StepReport | None = None

    # --- reading the shards --------------------------------------------------------------

    def _scan(self, shard: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
        return scan_all(self.cluster, shard, prefix)

    def pending(self) -> tuple[list[Lock], list[Credit]]:
        """Every pending lock and credit in the cluster."""
        locks, credits = [], []
        for s in range(self.n):
            locks += [Lock.from_record(k, v) for k, v in self._scan(s, xshard.pin(s) + b"xl/")]
            credits += [Credit.from_record(k, v) for k, v in self._scan(s, xshard.pin(s) + b"xc/")]
        return locks, credits

    def decided(self, src: int, sender: bytes, nonce: int) -> Lock | None:
        key = xshard.decided_key(src, sender, nonce)
        raw = self.cluster.call(src, "state_get", key)
        return None if raw is None else Lock.from_record(key, raw)

    # --- one step ------------------------------------------------------------------------------

    def step(self) -> StepReport:
        """Read every pending record, submit the next transaction of each transfer, wait
        until they are committed. Returns what it found and did."""
        report = StepReport()
        locks, credits = self.pending()
        report.pending_locks, report.pending_credits = len(locks), len(credits)
        now_ms = int(time.time() * 1000)
        by_xid = {(c.src, c.sender, c.nonce): c for c in credits}
        plan: dict[int, list[tuple[str, Any]]] = defaultdict(list)  # shard -> (kind, builder args)
        homes = self._homes([lock.to for lock in locks])
        pending_xids = set()
        for lock, home in zip(locks, homes, strict=True):
            x = (lock.src, lock.sender, lock.nonce)
            pending_xids.add(x)
            open_ = now_ms + self.margin_ms < lock.deadline_ms
            credit = by_xid.get(x)
            if lock.dst != home:
                plan[lock.src].append(("abort", lock))
            elif credit is None and open_:
                plan[lock.dst].append(("credit", lock))
            elif credit is not None and credit.status == Status.PREPARED and open_:
                plan[lock.src].append(("commit", lock))
            else:
                plan[lock.src].append(("abort", lock))
        for credit in credits:
            x = (credit.src, credit.sender, credit.nonce)
            if x in pending_xids:
                continue  # not decided yet
            lock = self.decided(*x)
            if lock is None:
                log.error("credit %s has no lock at its source shard %d", x[1].hex()[:16], x[0])
                continue
            plan[credit.dst].append(("finish", (credit, Decision(lock.status))))
        self._submit(plan, report)
        return report

    def _homes(self, accounts: list[bytes]) -> list[int]:
        if not accounts:
            return []
        return route_keys([balance_key(a) for a in accounts], self.n).tolist()

    def _submit(self, plan: dict[int, list[tuple[str, Any]]], report: StepReport) -> None:
        pk = self.key.public_key
        subs = []
        for shard, items in plan.items():
            chain_id = self.cluster.chain_id(shard)
            nonce = self.cluster.call(shard, "nonce", pk)
            txs, kinds = [], []
            for i, (kind, arg) in enumerate(items[:step_txs_max]):
                if kind == "credit":
                    tx = xshard.credit(chain_id, pk, nonce + i, arg)
                elif kind == "finish":
                    tx = xshard.finish(chain_id, pk, nonce + i, *arg)
                else:
                    decision = Decision.COMMIT if kind == "commit" else Decision.ABORT
                    tx = xshard.decide(chain_id, pk, nonce + i, arg, decision)
                txs.append(self.key.sign_tx(tx).encode())
                kinds.append(kind)
            report.submitted.update(kinds)
            subs.append((self.cluster.submit(txs), kinds))
        for sub, _kinds in subs:
            for _, code in sub.rejections():
                report.failed[code.name] += 1
            receipts = sub.wait(self.commit_timeout)
            for r in receipts:
                if r is not None and r.code:
                    report.failed[Reject(r.code).name] += 1

    # --- running ------------------------------------------------------------------------------

    def resolve(self, timeout: float = 60.0, interval: float = 0.05) -> StepReport:
        """Step until nothing is pending (every transfer committed or aborted and finished)."""
        return self.until_idle(timeout, interval)


# --- replicated records ------------------------------------------------------------------------

snapshot_tries = 50  # primary heights tried for a snapshot taken at one height


@dataclasses.dataclass
class ReplicationReport:
    """What one replication step found and did."""

    height: int = 0  # the primary's height of the snapshot
    records: int = 0  # replicated records on the primary
    shipped: Counter = dataclasses.field(default_factory=Counter)  # entries by shard
    failed: Counter = dataclasses.field(default_factory=Counter)  # by reject name

    @property
    def idle(self) -> bool:
        """Every shard held the snapshot already."""
        return not self.shipped and not self.failed


def pack_entries(entries: list[tuple[bytes, bytes | None]]) -> list[list[tuple[bytes, bytes | None]]]:
    """``entries`` in ``xshard.replicate`` payloads: at most ``replicate_entries_max`` each,
    each within ``limits.payload_bytes_max``; ValueError for an entry that fits in none."""
    head = len(xshard.encode_entries(0, 0, []))
    chunks: list[list[tuple[bytes, bytes | None]]] = []
    size = limits.payload_bytes_max
    for key, value in entries:
        need = len(xshard.encode_entries(0, 0, [(key, value)])) - head
        if head + need > limits.payload_bytes_max:
            raise ValueError(f"replicated record {key!r} of {len(value or b'')} bytes fits in no payload")
        full = chunks and len(chunks[-1]) == xshard.replicate_entries_max
        if not chunks or full or size + need > limits.payload_bytes_max:
            chunks.append([])
            size = head
        chunks[-1].append((key, value))
        size += need
    return chunks


class Replicator(StepLoop):
    """Keeps every shard's copy of the replicated records equal to the primary's;
    ``start(interval)``/``stop()`` run it in the background (``StepLoop``).

    A step: a snapshot of every replicated prefix on the primary taken at one height
    (the height is read before and after the scans; a block in between means another try),
    then, per other shard, the keys whose value differs (or that the primary no longer
    has) shipped in ``xshard.replicate`` transactions stamped with that height. A shard
    refuses a snapshot older than its copy, so its copy only moves forward; a lost or
    refused transaction is found again by the next step's comparison."""

    loop_name = "replicator"
    not_idle = "replicated records still differ"

    def __init__(self, cluster: Any, key: KeyPair, *, commit_timeout: float = 30.0) -> None:
        self.cluster, self.key, self.commit_timeout = cluster, key, commit_timeout
        self.prefixes = xshard.replicated_prefixes(resolve_apps(cluster.base.apps))
        self.last: ReplicationReport | None = None

    def _records(self, shard: int) -> dict[bytes, bytes]:
        return {k: v for prefix in self.prefixes for k, v in scan_all(self.cluster, shard, prefix)}

    def snapshot(self) -> tuple[int, dict[bytes, bytes]]:
        """(height, records) of the primary, every record as of that height."""
        for _ in range(snapshot_tries):
            height = self.cluster.call(PRIMARY_SHARD, "height")
            records = self._records(PRIMARY_SHARD)
            if self.cluster.call(PRIMARY_SHARD, "height") == height:
                return height, records
        raise TimeoutError(f"the primary committed a block during each of {snapshot_tries} snapshots")

    def step(self) -> ReplicationReport:
        """Bring every shard's copy to one snapshot of the primary's; wait for the commits."""
        height, records = self.snapshot()
        report = ReplicationReport(height=height, records=len(records))
        pk = self.key.public_key
        subs = []
        for shard in range(self.cluster.n_shards):
            if shard == PRIMARY_SHARD:
                continue
            copy = self._records(shard)
            entries: list[tuple[bytes, bytes | None]] = [
                (k, v) for k, v in sorted(records.items()) if copy.get(k) != v
            ]
            entries += [(k, None) for k in sorted(copy.keys() - records.keys())]
            if not entries:
                continue
            chain_id = self.cluster.chain_id(shard)
            nonce = self.cluster.call(shard, "nonce", pk)
            txs = [
                self.key.sign_tx(xshard.replicate(chain_id, pk, nonce + i, shard, height, chunk)).encode()
                for i, chunk in enumerate(pack_entries(sorted(entries)))
            ]
            report.shipped[shard] += len(entries)
            subs.append(self.cluster.submit(txs))
        for sub in subs:
            for _, code in sub.rejections():
                report.failed[code.name] += 1
            for r in sub.wait(self.commit_timeout):
                if r is not None and r.code:
                    report.failed[Reject(r.code).name] += 1
        return report

    def sync(self, timeout: float = 60.0, interval: float = 0.05) -> ReplicationReport:
        """Step until a step finds every shard's copy equal to the primary's snapshot."""
        return self.until_idle(timeout, interval)
