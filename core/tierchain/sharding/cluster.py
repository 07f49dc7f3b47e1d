"""A cluster of N shards, local processes or remote servers (docs/sharding.md; issue 7).

Each shard is an independent ``Chain`` with its own directory and LMDB
environment, running ``chain_id = base chain_id + i``: either a local process
(multiprocessing "spawn", directory ``<root>/shard-<i>``) or a ``tierchain shard
serve`` process on another host, reached over gRPC. The scheduler reaches both
through a link (``link``) carrying the same explicit messages
(``codec``; never pickle); the shard side is ``server``. The process
that owns the ``Cluster`` object is the scheduler:

* ``submit(buf)`` decodes the framed batch once (``batch.decode_batch``), routes
  every row in one native call (``route.route_batch``: first write key, else the
  sender), gathers each shard's rows into a sub-batch (``batch.gather``: its frames
  joined, its columns gathered, nothing decoded again) and sends it to the shard
  in ONE message: ``submit_ids`` (the frames and their tx ids, which the shard
  does not hash again) on a local shard's pipe, ``submit`` (the frames) on a remote
  shard's stream, whose peer is not authenticated (``link``, "Trust"). Shard replies
  (admission codes now, receipts at commit) are written back in submit order.
* Rows are refused by the scheduler itself with ``WRONG_SHARD`` when their
  ``chain_id`` is not the chain id of the shard they route to, or when their write
  keys span shards (value moves between shards only through the cross-shard
  protocol, ``tierchain.apps.xshard`` and ``tierchain.apps.coordinator``).
* Backpressure: each shard has a bound on transactions sent but not yet settled
  (``queue_max``). A batch that would exceed it gets ``MEMPOOL_FULL`` for all of
  that shard's rows; nothing is buffered in the scheduler.
* Supervision: one thread per shard reads its link; a broken link (process died,
  stream ended) makes the thread re-establish it — a new process on the same
  directory, or a re-dial with backoff — then resolve the in-doubt rows of
  unfinished batches by tx lookup: committed ones get their receipts, the others
  are marked ``dropped`` (or ``SHUTTING_DOWN`` if their admission reply was
  lost). Rows for a shard that is down are refused with ``SHUTTING_DOWN``. Other
  shards are not touched.
* Heartbeat: every ``heartbeat_s`` each shard is pinged; a shard that has sent
  nothing for ``heartbeat_timeout_s`` is hung: its link is killed (SIGKILL of the
  local process, cancel of the remote stream), which the recovery above handles.
* Crypto suite (docs/national-crypto.md): one per cluster, the base config's
  ``chain.crypto``, which every shard's config inherits (``shard_configs``). The
  scheduler decodes and computes tx ids in it (``Cluster.suite``); a local shard
  process derives its proposer key from ``proposer_seed`` in it
  (``suite.keys_from_seed``), so one seed serves either suite and cannot mix them
  (``tierchain cluster start`` / ``shard serve`` refuse a key file of another suite).
  Routing is NOT the suite's: a key's shard is SipHash-2-4 of its bytes under the
  protocol constant ``route.ROUTE_KEY``, then jump consistent hash, in every suite.
  Routing is the cluster's layout (where a key lives), not a commitment anyone
  signs or proves, and keeping one rule means a key routes alike on any cluster.
  The same holds for the scheduler/shard handshake's ``codec.genesis_digest`` (a
  local identity check of the genesis bytes, which name the suite; never stored):
  a shard of another suite serves another genesis and is refused (``ShardMismatch``).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from tierchain.apps.accounts import balance_key
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import suite_of
from tierchain.engine.apps import resolve as resolve_apps
from tierchain.engine.route import route_batch, route_keys, writes_on
from tierchain.errors import Reject
from tierchain.sharding.codec import CALL_ARGS, MessageError, Ready, genesis_digest, receipts_from_columns
from tierchain.sharding.link import Link, LinkDown, LocalLink, RemoteLink, ShardUnavailable
from tierchain.wire.batch import Batch, decode_batch, gather
from tierchain.wire.block import Receipt
from tierchain.wire.tx import frame

__all__ = [
    "Cluster",
    "ClusterSubmission",
    "ShardCallError",
    "ShardMismatch",
    "ShardUnavailable",
    "gather_frames",
    "shard_configs",
    "submit_message",
]

log = logging.getLogger("tierchain.cluster")
# Methods of Chain a caller may invoke on a shard through Cluster.call (arguments: shard_codec.CALL_ARGS).
_CALLS = frozenset(CALL_ARGS) - {"tx_many"}
lookup_chunk_txs = 4096  # in-doubt tx ids per lookup message after a restart
reconnect_delay_s_max = 5.0


class ShardCallError(ShardUnavailable):
    """The shard is up but its method raised (the message names the shard's exception)."""


class ShardMismatch(ShardUnavailable):
    """An endpoint serves another chain (chain id or genesis) than the shard configured for it."""


# --- placement -------------------------------------------------------------------


def shard_configs(base: ChainConfig, n_shards: int) -> list[ChainConfig]:
    """Per-shard configs: ``chain_id = base + i``; each genesis balance only on its home shard.

    An account's home shard is the shard its balance key routes to. Account records
    (roles) are replicated on every shard so that any shard can check a recipient;
    balances are not, so the cluster holds exactly the base genesis's value.
    """
    if base.chain_id + n_shards > 1 << 32:
        raise ValueError("chain_id + n_shards must stay a u32")
    accounts = base.genesis_accounts
    placement = resolve_apps(base.apps).placement
    homes = (
        route_keys([balance_key(a.public_key) for a in accounts], n_shards, placement).tolist()
        if accounts
        else []
    )
    out = []
    for i in range(n_shards):
        gen = tuple(
            GenesisAccount(a.public_key, a.roles, a.balance if home == i else 0)
            for a, home in zip(accounts, homes, strict=True)
        )
        out.append(
            dataclasses.replace(
                base, chain_id=base.chain_id + i, genesis_accounts=gen, shard_index=i, shard_count=n_shards
            )
        )
    return out


def gather_frames(batch: Batch, rows: np.ndarray) -> bytes:
    """The framed buffer of ``rows`` of ``batch`` (u32 prefix + tx bytes each): what a shard
    is sent for them (``batch.gather``'s buffer: rows that decoded, in ascending order)."""
    return gather([(batch, rows)]).buf if len(rows) else b""


def submit_message(req: int, part: Batch, trusted: bool) -> tuple:
    """The message carrying sub-batch ``part`` to a shard: its frames and their tx ids
    (``submit_ids``) on a ``trusted`` link, else its frames alone (``submit``)."""
    if trusted:
        return ("submit_ids", req, part.buf, part.digest.tobytes())
    return ("submit", req, part.buf)


# --- scheduler side ---------------------------------------------------------------------


class _Part:
    """One shard's share of a submission."""

    def __init__(self, sub: ClusterSubmission, shard: int, rows: np.ndarray) -> None:
        self.sub, self.shard, self.rows = sub, shard, rows
        self.codes_in = threading.Event()
        self.done = threading.Event()
        self.accepted = 0


class ClusterSubmission:
    """Fate of one batch submitted to a cluster; every array is in submit order."""

    def __init__(self, batch: Batch, shards: np.ndarray) -> None:
        n = len(batch)
        self.tx_ids = batch.tx_ids()
        self.shards = shards  # int32, -1 for rows that did not decode
        self.codes = batch.code.copy()
        self.heights = np.zeros(n, np.uint64)
        self.receipts: list[Receipt | None] = [None] * n
        self.dropped = np.zeros(n, bool)  # admitted, then lost with a crashed shard process
        self.parts: list[_Part] = []

    @property
    def accepted(self) -> int:
        return int((self.codes == 0).sum())

    def rejections(self) -> list[tuple[int, Reject]]:
        return [(int(i), Reject(int(self.codes[i]))) for i in np.flatnonzero(self.codes)]

    def wait(self, timeout: float | None = None) -> list[Receipt | None]:
        """Until every accepted row is committed or known dropped; receipts in submit order."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for part in self.parts:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not part.done.wait(left):
                raise TimeoutError("cluster submission not settled")
        return self.receipts


class _Shard:
    def __init__(self, index: int, config: ChainConfig, link: Link) -> None:
        self.index, self.config, self.link = index, config, link
        self.up = False
        self.restarts = 0
        self.inflight = 0  # txs sent, not yet settled
        self.send_lock = threading.Lock()
        self.pending: dict[int, _Part] = {}  # submissions by request id
        self.calls: dict[int, list] = {}  # call request id -> [event, ok, value]
        self.reader: threading.Thread | None = None
        self.ready: Ready | None = None
        self.height = 0  # last height the shard reported (ready, pong)
        self.last_heard = time.monotonic()
        self.down_since: float | None = None
        self.last_error = ""
        self.kill_reason = ""  # why the watchdog killed the link, if it did
        self.settling = False  # in-doubt lookups under way on a re-established link
        self.generation = 0  # bumped (under send_lock) by every recovery

    def send(self, msg: tuple, generation: int | None = None) -> bool:
        """Send on the current link; False (not sent) if the link was re-established since
        ``generation``: what was meant for the old link is settled by the recovery."""
        with self.send_lock:
            if generation is not None and generation != self.generation:
                return False
            self.link.send(msg)
            return True


class Cluster:
    """N shards under this (scheduler) process; see the module docstring.

    ``base`` is the cluster's configuration: shard ``i`` runs ``shard_configs(base, n)[i]``,
    in the crypto suite of ``base`` (its proposer key: that suite's key of ``proposer_seed``).
    ``endpoints[i]`` is ``None`` for a local shard process (directory ``root/shard-<i>``)
    or ``"HOST:PORT"`` of a ``tierchain shard serve`` for that shard; default: all local.
    A remote endpoint must serve the expected chain id and genesis, else it is refused.
    """

    def __init__(
        self,
        root: str | Path,
        base: ChainConfig,
        proposer_seed: bytes,
        n_shards: int,
        *,
        queue_max: int = 50_000,
        start_timeout: float = 60.0,
        endpoints: Sequence[str | None] | None = None,
        heartbeat_s: float = 1.0,
        heartbeat_timeout_s: float = 10.0,
    ) -> None:
        if endpoints is not None and len(endpoints) != n_shards:
            raise ValueError(f"{len(endpoints)} endpoints for {n_shards} shards")
        if not 0 < heartbeat_s < heartbeat_timeout_s:
            raise ValueError("need 0 < heartbeat_s < heartbeat_timeout_s")
        self.root, self.base, self.n_shards = Path(root), base, n_shards
        self.queue_max, self.start_timeout = queue_max, start_timeout
        self.heartbeat_s, self.heartbeat_timeout_s = heartbeat_s, heartbeat_timeout_s
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # inflight counters, pending maps
        self._closing = False
        self._stop = threading.Event()
        self.configs = shard_configs(base, n_shards)
        # The placement rules of the cluster's apps: the scheduler routes as the shards admit.
        self.placement = resolve_apps(base.apps).placement
        self.suite = suite_of(base)  # the shards' crypto suite: the scheduler decodes as they do
        self.endpoints = list(endpoints) if endpoints is not None else [None] * n_shards
        self.shards = []
        for i, (config, endpoint) in enumerate(zip(self.configs, self.endpoints, strict=True)):
            link: Link = (
                LocalLink(i, self.root / f"shard-{i}", config, proposer_seed, start_timeout)
                if endpoint is None
                else RemoteLink(i, endpoint, start_timeout)
            )
            self.shards.append(_Shard(i, config, link))
        if None in self.endpoints:
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            with ThreadPoolExecutor(max_workers=min(n_shards, 16)) as pool:
                for f in [pool.submit(self._connect_first, s) for s in self.shards]:
                    f.result()
        except BaseException:
            self.close()
            raise
        for s in self.shards:
            s.up = True
            s.reader = threading.Thread(
                target=self._read_loop, args=(s,), name=f"shard-{s.index}", daemon=True
            )
            s.reader.start()
        # Two threads: pings may block on a full pipe to a stopped process; the watchdog never sends.
        for target, name in ((self._ping_loop, "ping"), (self._watchdog_loop, "watchdog")):
            threading.Thread(target=target, name=f"cluster-{name}", daemon=True).start()

    # --- links ------------------------------------------------------------------------------

    def _connect_first(self, s: _Shard) -> None:
        """A remote shard may still be starting (or its server still holding a previous
        scheduler's stream): retry for ``start_timeout``. A local one that fails is fatal."""
        deadline, delay = time.monotonic() + self.start_timeout, 0.1
        while True:
            try:
                return self._connect(s)
            except ShardMismatch:
                raise
            except ShardUnavailable as exc:
                if s.link.kind == "local" or time.monotonic() + delay > deadline or self._closing:
                    raise
                log.warning("shard %d: %s; retrying", s.index, exc)
            time.sleep(delay)
            delay = min(2 * delay, reconnect_delay_s_max)

    def _connect(self, s: _Shard) -> None:
        """(Re-)establish ``s``'s link and check that it serves the expected chain."""
        ready = s.link.connect()
        if ready.chain_id != s.config.chain_id or ready.genesis != genesis_digest(s.config):
            s.link.reset()
            raise ShardMismatch(
                f"shard {s.index} at {s.link.where} serves chain id {ready.chain_id} with "
                + ("the expected genesis" if ready.genesis == genesis_digest(s.config) else "another genesis")
                + f"; expected chain id {s.config.chain_id} of this cluster's base config"
            )
        s.ready, s.height, s.last_heard = ready, ready.height, time.monotonic()

    def chain_id(self, shard: int) -> int:
        return self.configs[shard].chain_id

    def pid(self, shard: int) -> int:
        """Process id of the shard (a remote shard's: on its own host)."""
        ready = self.shards[shard].ready
        return -1 if ready is None else ready.pid

    def endpoint(self, shard: int) -> str | None:
        return self.endpoints[shard]

    def restarts(self, shard: int) -> int:
        """How often the shard's link was re-established (process restarted, endpoint re-dialled)."""
        return self.shards[shard].restarts

    def is_up(self, shard: int) -> bool:
        return self.shards[shard].up

    def status(self) -> list[dict[str, Any]]:
        """Per shard, without asking it (a hung shard cannot stall this): for operators."""
        now = time.monotonic()
        return [
            {
                "shard": s.index,
                "kind": s.link.kind,
                "where": s.link.where,
                "chain_id": s.config.chain_id,
                "up": s.up,
                "pid": self.pid(s.index),
                "height": s.height,
                "restarts": s.restarts,
                "inflight": s.inflight,
                "last_heard_s": round(now - s.last_heard, 3),
                "down_s": None if s.down_since is None else round(now - s.down_since, 3),
                "last_error": s.last_error,
            }
            for s in self.shards
        ]

    # --- submission ---------------------------------------------------------------------------

    def submit(self, txs: bytes | Iterable[bytes], timeout: float = 30.0) -> ClusterSubmission:
        """Route and admit a batch; returns once every shard answered with admission codes."""
        buf = txs if isinstance(txs, bytes | bytearray | memoryview) else frame(list(txs))
        if self._closing:
            raise ShardUnavailable("cluster is closed")
        batch = decode_batch(buf, suite=self.suite)
        shard = route_batch(batch, self.n_shards, self.placement)
        sub = ClusterSubmission(batch, shard)
        ok = shard >= 0
        routed_chain = np.where(ok, self.base.chain_id + shard, 0).astype(np.int64)
        spans = ~writes_on(batch, shard, self.n_shards, self.placement)
        wrong = ok & ((batch.chain_id.astype(np.int64) != routed_chain) | spans)
        sub.codes[wrong] = Reject.WRONG_SHARD
        shard = np.where(sub.codes == 0, shard, -1)
        order = np.argsort(shard, kind="stable")
        counts = np.bincount(shard[shard >= 0], minlength=self.n_shards)
        first = int((shard < 0).sum())
        for s, count in zip(self.shards, counts.tolist(), strict=True):
            rows = order[first : first + count]
            first += count
            if count:
                self._send_part(s, sub, rows, batch)
        deadline = time.monotonic() + timeout
        for part in sub.parts:
            if not part.codes_in.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"shard {part.shard} did not answer")
        return sub

    def _send_part(self, s: _Shard, sub: ClusterSubmission, rows: np.ndarray, batch: Batch) -> None:
        with self._lock:
            if not s.up:
                sub.codes[rows] = Reject.SHUTTING_DOWN
                return
            if s.inflight + len(rows) > self.queue_max:
                sub.codes[rows] = Reject.MEMPOOL_FULL
                return
            s.inflight += len(rows)
            part = _Part(sub, s.index, rows)
            req = next(self._ids)
            s.pending[req] = part
            sub.parts.append(part)
            generation = s.generation
        try:
            # Never on a link re-established after the part was registered: the recovery
            # has taken it and settles it by lookup; sending it now could commit rows
            # that were just reported dropped.
            s.send(submit_message(req, gather([(batch, rows)]), s.link.trusted), generation)
        except LinkDown:
            pass  # the reader sees the break and resolves this part after reconnecting

    # --- replies and supervision -------------------------------------------------------------

    def _read_loop(self, s: _Shard) -> None:
        while True:
            try:
                msg = s.link.recv()
                s.last_heard = time.monotonic()
                if self._handle(s, msg):
                    return
                continue
            except LinkDown as exc:
                s.last_error = s.kill_reason or str(exc)
            except MessageError as exc:  # a broken or foreign peer: drop the link, start over
                log.error("shard %d sent a malformed message: %s", s.index, exc)
                s.last_error = str(exc)
                s.link.kill()
            if self._closing:
                self._fail_all(s)
                return
            self._recover(s)

    def _handle(self, s: _Shard, msg: tuple) -> bool:
        """Apply one reply; True once the shard answered ``close``."""
        kind, req = msg[0], msg[1]
        if kind == "codes":
            part = s.pending.get(req)
            if part is None:
                return False
            if msg[2] is None:
                codes = np.full(len(part.rows), msg[3], np.uint8)
            elif len(msg[2]) == len(part.rows):
                codes = np.frombuffer(msg[2], np.uint8)
            else:
                raise MessageError("admission codes do not match the rows")
            part.sub.codes[part.rows] = codes
            part.accepted = int((codes == 0).sum())
            with self._lock:
                s.inflight -= len(part.rows) - part.accepted
            part.codes_in.set()
        elif kind == "done":
            part = s.pending.get(req)
            if part is None:
                return False
            heights = np.frombuffer(msg[2], np.uint64) if len(msg[2]) == 8 * len(part.rows) else None
            if heights is None:
                raise MessageError("heights do not match the rows")
            rows = part.rows.tolist()
            receipts = receipts_from_columns([part.sub.tx_ids[r] for r in rows], msg[3], msg[4])
            with self._lock:
                if s.pending.pop(req, None) is None:
                    return False
                s.inflight -= part.accepted
            part.sub.heights[part.rows] = heights
            for row, receipt in zip(rows, receipts, strict=True):
                part.sub.receipts[row] = receipt
            part.done.set()
        elif kind == "failed":
            # The shard could not report a batch (its chain failed, or the reply was too
            # large): whether its rows committed is unknown, so restart / re-dial the shard
            # and settle them by tx lookup, like any other in-doubt rows.
            log.error("shard %d failed a batch: %s", s.index, msg[2])
            s.kill_reason = f"failed a batch: {msg[2]}"
            s.link.kill()
        elif kind in ("result", "error"):
            if kind == "error" and req == 0:
                log.error("shard %d refused a message: %s", s.index, msg[2])
            call = s.calls.pop(req, None)
            if call is not None:
                call[1], call[2] = kind == "result", msg[2]
                call[0].set()
        elif kind == "pong":
            s.height = msg[2]
        elif kind == "closed":
            return True
        return False

    def _fail_calls(self, s: _Shard, reason: str) -> None:
        for req in list(s.calls):
            call = s.calls.pop(req, None)
            if call is not None:
                call[1], call[2] = None, reason  # None: no answer (not an error of the method)
                call[0].set()

    def _take_pending(self, s: _Shard) -> list[_Part]:
        with self._lock:
            s.up = False
            parts, s.pending = list(s.pending.values()), {}
            s.inflight = 0
        return parts

    def _fail_all(self, s: _Shard) -> None:
        self._fail_calls(s, "cluster closed")
        self._settle_lost(self._take_pending(s))

    def _recover(self, s: _Shard) -> None:
        """The link broke: re-establish it (new process / re-dial), then settle the in-doubt rows."""
        parts = self._take_pending(s)
        with s.send_lock:  # waits out a send under way on the broken link
            s.generation += 1
        s.down_since = time.monotonic()
        s.kill_reason = ""
        self._fail_calls(s, f"shard {s.index} link broke")
        s.link.reset()  # reaps a dead process, so that its exit code is known
        log.warning(
            "shard %d link broke (%s); %s",
            s.index,
            s.link.exit_info(),
            "restarting" if s.link.kind == "local" else "reconnecting",
            extra={"fields": {"shard": s.index, "event": "down", "error": s.last_error}},
        )
        delay = 0.1
        while True:
            if self._closing:
                self._settle_lost(parts)
                return
            try:
                self._connect(s)
                self._settle_in_doubt(s, parts)
                break
            except (ShardUnavailable, LinkDown, MessageError) as exc:
                s.last_error = str(exc)
                log.error("shard %d: %s; retrying in %.1f s", s.index, exc, delay)
                self._stop.wait(delay)
                delay = min(2 * delay, reconnect_delay_s_max)
        s.restarts += 1
        s.last_heard = time.monotonic()
        log.warning(
            "shard %d up again at height %d",
            s.index,
            s.height,
            extra={"fields": {"shard": s.index, "event": "up", "height": s.height}},
        )
        s.down_since = None
        with self._lock:
            s.up = True

    def _settle_in_doubt(self, s: _Shard, parts: list[_Part]) -> None:
        """Rows of unfinished batches: committed before the break (found by id) or lost."""
        ids = [p.sub.tx_ids[r] for p in parts for r in p.rows.tolist()]
        found: list = []
        s.settling = True  # the watchdog covers a shard that hangs now, too
        try:
            for i in range(0, len(ids), lookup_chunk_txs):
                chunk = ids[i : i + lookup_chunk_txs]
                hits = self._call_on_reader(s, "tx_many", (chunk,))
                if type(hits) is not list or len(hits) != len(chunk):
                    raise MessageError("tx lookup answer does not match the ids")
                found += hits
        finally:
            s.settling = False
        k = 0
        for p in parts:
            for r in p.rows.tolist():
                hit = found[k]
                k += 1
                if hit is not None:
                    p.sub.codes[r] = 0
                    p.sub.heights[r] = hit[0]
                    p.sub.receipts[r] = hit[3]
                elif not p.codes_in.is_set():
                    p.sub.codes[r] = Reject.SHUTTING_DOWN
                elif p.sub.codes[r] == 0:
                    p.sub.dropped[r] = True
            p.codes_in.set()
            p.done.set()

    @staticmethod
    def _settle_lost(parts: list[_Part]) -> None:
        for p in parts:
            if not p.codes_in.is_set():
                p.sub.codes[p.rows] = Reject.SHUTTING_DOWN
            p.sub.dropped[p.rows[p.sub.codes[p.rows] == 0]] = True
            p.codes_in.set()
            p.done.set()

    def _call_on_reader(self, s: _Shard, method: str, args: tuple) -> Any:
        """A call during recovery, read on this (the reader) thread."""
        req = next(self._ids)
        s.send(("call", req, method, args))
        while True:
            msg = s.link.recv()
            s.last_heard = time.monotonic()
            if msg[0] in ("result", "error") and msg[1] == req:
                if msg[0] == "error":
                    raise ShardUnavailable(f"shard {s.index}: {msg[2]}")
                return msg[2]

    def _ping_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            for s in self.shards:
                if s.up:
                    try:
                        s.send(("ping", next(self._ids)))
                    except LinkDown:
                        pass  # the reader handles it

    def _watchdog_loop(self) -> None:
        while not self._stop.wait(min(self.heartbeat_s, 0.5)):
            now = time.monotonic()
            for s in self.shards:
                silent_s = now - s.last_heard
                if (s.up or s.settling) and silent_s > self.heartbeat_timeout_s:
                    s.kill_reason = f"hung: no heartbeat answer for {silent_s:.1f} s"
                    log.error(
                        "shard %d silent for %.1f s: hung; killing its link",
                        s.index,
                        silent_s,
                        extra={"fields": {"shard": s.index, "event": "hung"}},
                    )
                    s.last_heard = now  # one kill per hang; the reader takes over
                    s.link.kill()

    # --- queries ----------------------------------------------------------------------------

    def call(self, shard: int, method: str, *args: Any, timeout: float = 30.0) -> Any:
        """``Chain.<method>(*args)`` on one shard (``height`` is the property).

        ``ShardUnavailable`` if the shard is down, ``TimeoutError`` if it does not answer
        in ``timeout``, ``ShardCallError`` (a ``ShardUnavailable``) if the method raised.
        """
        if method not in _CALLS:
            raise ValueError(f"not a shard query: {method}")
        s = self.shards[shard]
        req = next(self._ids)
        call: list = [threading.Event(), False, None]
        try:
            with s.send_lock:  # registered and sent on one link generation, or not at all
                if not s.up:
                    raise ShardUnavailable(f"shard {shard} is down")
                s.calls[req] = call
                s.link.send(("call", req, method, args))
        except LinkDown as exc:
            s.calls.pop(req, None)
            raise ShardUnavailable(f"shard {shard} is down") from exc
        except MessageError as exc:
            s.calls.pop(req, None)
            raise ValueError(f"{method}: {exc}") from exc
        if not call[0].wait(timeout):
            s.calls.pop(req, None)
            raise TimeoutError(f"shard {shard} did not answer {method}")
        if call[1] is None:
            raise ShardUnavailable(f"shard {shard}: {call[2]}")
        if not call[1]:
            raise ShardCallError(f"shard {shard}: {call[2]}")
        return call[2]

    def heights(self) -> list[int]:
        return [self.call(i, "height") for i in range(self.n_shards)]

    def tx(self, tx_id: bytes) -> tuple[int, tuple] | None:
        """(shard, (height, position, encoded tx, receipt)) of a committed tx, asking every shard."""
        for i in range(self.n_shards):
            hit = self.call(i, "tx", tx_id)
            if hit is not None:
                return i, hit
        return None

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Each local shard drains its mempool, commits and exits; remote links are closed
        (their servers keep running)."""
        self._closing = True
        self._stop.set()
        for s in self.shards:
            s.link.stop_connecting()
            if s.ready is not None:
                try:
                    s.send(("close", 0))
                except (LinkDown, MessageError):
                    pass
        deadline = time.monotonic() + timeout
        for s in self.shards:
            if s.reader is not None and s.reader is not threading.current_thread():
                s.reader.join(max(0.0, deadline - time.monotonic()))
        for s in self.shards:
            s.link.close(max(0.0, deadline - time.monotonic()))
            if s.reader is not None and s.reader is not threading.current_thread():
                s.reader.join(5)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
