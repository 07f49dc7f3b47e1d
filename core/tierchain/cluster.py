"""A cluster of N shards on one machine (docs/sharding.md; first step of issue 7).

Each shard is an independent ``Chain`` in its own process (multiprocessing,
"spawn" context) with its own directory and LMDB environment: shard ``i`` lives in
``<root>/shard-<i>`` and runs ``chain_id = base chain_id + i``. The process that
owns the ``Cluster`` object is the scheduler:

* ``submit(buf)`` decodes the framed batch once (``batch.decode_batch``), routes
  every row in one native call (``route.route_batch``: first write key, else the
  sender), gathers each shard's frames into one buffer with numpy (no Python loop
  per transaction) and sends it to the shard in ONE pipe message. Shard replies
  (admission codes now, receipts at commit) are written back in submit order.
* Rows are refused by the scheduler itself with ``WRONG_SHARD`` when their
  ``chain_id`` is not the chain id of the shard they route to, or when their write
  keys span shards (cross-shard operations are not built yet).
* Backpressure: each shard has a bound on transactions sent but not yet settled
  (``queue_max``). A batch that would exceed it gets ``MEMPOOL_FULL`` for all of
  that shard's rows; nothing is buffered in the scheduler.
* Supervision: one thread per shard reads its pipe; EOF means the process died.
  The thread starts a new process on the same directory (the chain resumes at
  its last committed block), then resolves the in-doubt rows of unfinished
  batches by tx lookup: committed ones get their receipts, the others are marked
  ``dropped`` (or ``SHUTTING_DOWN`` if their admission reply was lost). Rows for
  a shard that is restarting are refused with ``SHUTTING_DOWN``. Other shards
  are not touched.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tierchain.batch import Batch, decode_batch
from tierchain.block import Receipt
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.errors import Reject, TierChainError
from tierchain.ops import balance_key
from tierchain.route import route_batch, route_keys
from tierchain.wire import frame

__all__ = ["Cluster", "ClusterSubmission", "ShardUnavailable", "gather_frames", "shard_configs"]

log = logging.getLogger("tierchain.cluster")
_CTX = multiprocessing.get_context("spawn")
# Methods of Chain a caller may invoke on a shard through Cluster.call.
_CALLS = frozenset({"height", "head", "header", "tx", "balance", "nonce", "state_get", "receipts"})


class ShardUnavailable(TierChainError):
    """The shard process is down (restarting) or the cluster is closed."""


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
    homes = route_keys([balance_key(a.public_key) for a in accounts], n_shards).tolist() if accounts else []
    out = []
    for i in range(n_shards):
        gen = tuple(
            GenesisAccount(a.public_key, a.roles, a.balance if home == i else 0)
            for a, home in zip(accounts, homes, strict=True)
        )
        out.append(dataclasses.replace(base, chain_id=base.chain_id + i, genesis_accounts=gen))
    return out


def gather_frames(batch: Batch, rows: np.ndarray) -> bytes:
    """The framed buffer of ``rows`` of ``batch`` (u32 prefix + tx bytes each), gathered by numpy."""
    if not len(rows):
        return b""
    starts = batch.tx_start[rows] - 4  # each frame's u32 length prefix
    lengths = batch.tx_end[rows] - starts
    offsets = np.zeros(len(rows), np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    total = int(lengths.sum())
    index = np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)
    return np.frombuffer(batch.buf, np.uint8)[index].tobytes()


def _write_span_ok(batch: Batch, shard: np.ndarray, n_shards: int) -> np.ndarray:
    """True for rows whose every write key routes to ``shard`` of that row (one native call)."""
    ok = shard >= 0
    n_write = np.where(ok, batch.n_write, 0).astype(np.int64)
    total = int(n_write.sum())
    if n_shards == 1 or total == 0:
        return np.ones(len(batch), bool)
    first = batch.key_first + batch.n_read.astype(np.int64)
    offsets = np.zeros(len(batch), np.int64)
    np.cumsum(n_write[:-1], out=offsets[1:])
    key_idx = np.repeat(first - offsets, n_write) + np.arange(total, dtype=np.int64)
    from tierchain import _hot

    key_shard = _hot.route_keys(
        batch.buf, batch.key_start[key_idx], batch.key_len[key_idx].astype(np.int64), n_shards
    ).astype(np.int32)
    row_of_key = np.repeat(np.arange(len(batch)), n_write)
    bad = np.zeros(len(batch), bool)
    np.logical_or.at(bad, row_of_key, key_shard != shard[row_of_key])
    return ~bad


# --- the shard process ---------------------------------------------------------------


def _shard_main(conn: Any, path: str, config: ChainConfig, proposer_seed: bytes) -> None:
    """Body of a shard process: one Chain, driven by messages on ``conn``."""
    from tierchain.chain import Chain
    from tierchain.crypto import KeyPair
    from tierchain.errors import RejectedError

    chain = Chain(path, config, KeyPair.from_seed(proposer_seed))
    send_lock = threading.Lock()

    def send(msg: tuple) -> None:
        with send_lock:
            conn.send(msg)

    waits: queue.SimpleQueue = queue.SimpleQueue()

    def waiter() -> None:
        while (item := waits.get()) is not None:
            req, sub = item
            try:
                receipts = sub.wait()
                send(("done", req, sub.heights.tobytes(), receipts))
            except BaseException as exc:  # reported to the scheduler
                send(("failed", req, repr(exc)))

    threading.Thread(target=waiter, name="shard-waiter", daemon=True).start()
    send(("ready", chain.height))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            break
        kind, req = msg[0], msg[1]
        if kind == "submit":
            try:
                sub = chain.submit(msg[2])
            except RejectedError as exc:
                send(("codes", req, None, int(exc.code)))
                continue
            send(("codes", req, sub.codes.tobytes(), 0))
            waits.put((req, sub))
        elif kind == "call":
            method, args = msg[2], msg[3]
            try:
                if method == "tx_many":
                    value = [chain.tx(t) for t in args[0]]
                elif method in ("height",):
                    value = getattr(chain, method)
                else:
                    value = getattr(chain, method)(*args)
                send(("result", req, value))
            except Exception as exc:  # reported to the caller
                send(("error", req, repr(exc)))
        elif kind == "close":
            break
    waits.put(None)
    chain.close()
    try:
        send(("closed", 0))
    except OSError:
        pass


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
    def __init__(self, index: int, path: Path, config: ChainConfig) -> None:
        self.index, self.path, self.config = index, path, config
        self.proc: Any = None
        self.conn: Any = None
        self.up = False
        self.restarts = 0
        self.inflight = 0  # txs sent, not yet settled
        self.send_lock = threading.Lock()
        self.pending: dict[int, _Part] = {}  # submissions by request id
        self.calls: dict[int, list] = {}  # call request id -> [event, ok, value]
        self.reader: threading.Thread | None = None


class Cluster:
    """N shard processes under this (scheduler) process; see the module docstring.

    ``base`` is the cluster's configuration: shard ``i`` runs ``shard_configs(base, n)[i]``.
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
    ) -> None:
        self.root, self.base, self.n_shards = Path(root), base, n_shards
        self.queue_max, self.start_timeout = queue_max, start_timeout
        self._seed = proposer_seed
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # inflight counters, pending maps
        self._closing = False
        self.configs = shard_configs(base, n_shards)
        self.shards = [_Shard(i, self.root / f"shard-{i}", c) for i, c in enumerate(self.configs)]
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            for s in self.shards:
                self._spawn(s)
        except BaseException:
            self.close()
            raise
        for s in self.shards:
            s.reader = threading.Thread(
                target=self._read_loop, args=(s,), name=f"shard-{s.index}", daemon=True
            )
            s.reader.start()

    # --- processes -------------------------------------------------------------------------

    def _spawn(self, s: _Shard) -> None:
        parent, child = _CTX.Pipe()
        proc = _CTX.Process(
            target=_shard_main,
            args=(child, str(s.path), s.config, self._seed),
            name=f"tierchain-shard-{s.index}",
        )
        proc.start()
        child.close()  # so that the child's death is EOF here
        if not parent.poll(self.start_timeout):
            proc.kill()
            raise ShardUnavailable(f"shard {s.index} did not start in {self.start_timeout} s")
        try:
            msg = parent.recv()
        except EOFError as exc:
            proc.join()
            raise ShardUnavailable(f"shard {s.index} exited at start (code {proc.exitcode})") from exc
        assert msg[0] == "ready", msg
        s.proc, s.conn, s.up = proc, parent, True

    def chain_id(self, shard: int) -> int:
        return self.configs[shard].chain_id

    def pid(self, shard: int) -> int:
        return self.shards[shard].proc.pid

    def restarts(self, shard: int) -> int:
        return self.shards[shard].restarts

    def is_up(self, shard: int) -> bool:
        return self.shards[shard].up

    # --- submission ---------------------------------------------------------------------------

    def submit(self, txs: bytes | Iterable[bytes], timeout: float = 30.0) -> ClusterSubmission:
        """Route and admit a batch; returns once every shard answered with admission codes."""
        buf = txs if isinstance(txs, bytes | bytearray | memoryview) else frame(list(txs))
        if self._closing:
            raise ShardUnavailable("cluster is closed")
        batch = decode_batch(buf)
        shard = route_batch(batch, self.n_shards)
        sub = ClusterSubmission(batch, shard)
        ok = shard >= 0
        routed_chain = np.where(ok, self.base.chain_id + shard, 0).astype(np.int64)
        wrong = ok & (
            (batch.chain_id.astype(np.int64) != routed_chain) | ~_write_span_ok(batch, shard, self.n_shards)
        )
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
        payload = gather_frames(batch, rows)
        try:
            with s.send_lock:
                s.conn.send(("submit", req, payload))
        except (OSError, ValueError):
            pass  # the reader sees the death and resolves this part after the restart

    # --- replies and supervision -------------------------------------------------------------

    def _read_loop(self, s: _Shard) -> None:
        while True:
            try:
                msg = s.conn.recv()
            except (EOFError, OSError):
                if self._closing:
                    self._fail_all(s)
                    return
                self._recover(s)
                continue
            self._handle(s, msg)
            if msg[0] == "closed":
                return

    def _handle(self, s: _Shard, msg: tuple) -> None:
        kind, req = msg[0], msg[1]
        if kind == "codes":
            part = s.pending.get(req)
            if part is None:
                return
            codes = (
                np.full(len(part.rows), msg[3], np.uint8)
                if msg[2] is None
                else np.frombuffer(msg[2], np.uint8)
            )
            part.sub.codes[part.rows] = codes
            part.accepted = int((codes == 0).sum())
            with self._lock:
                s.inflight -= len(part.rows) - part.accepted
            part.codes_in.set()
        elif kind in ("done", "failed"):
            with self._lock:
                part = s.pending.pop(req, None)
                if part is not None:
                    s.inflight -= part.accepted
            if part is None:
                return
            if kind == "done":
                heights = np.frombuffer(msg[2], np.uint64)
                part.sub.heights[part.rows] = heights
                for row, receipt in zip(part.rows.tolist(), msg[3], strict=True):
                    part.sub.receipts[row] = receipt
            else:
                log.error("shard %d failed a batch: %s", s.index, msg[2])
                part.sub.dropped[part.rows[part.sub.codes[part.rows] == 0]] = True
            part.done.set()
        elif kind in ("result", "error"):
            call = s.calls.pop(req, None)
            if call is not None:
                call[1], call[2] = kind == "result", msg[2]
                call[0].set()

    def _fail_calls(self, s: _Shard) -> None:
        for call in list(s.calls.values()):
            call[1], call[2] = False, "shard process died"
            call[0].set()
        s.calls.clear()

    def _fail_all(self, s: _Shard) -> None:
        s.up = False
        self._fail_calls(s)
        with self._lock:
            parts, s.pending = list(s.pending.values()), {}
            s.inflight = 0
        for part in parts:
            if not part.codes_in.is_set():
                part.sub.codes[part.rows] = Reject.SHUTTING_DOWN
                part.codes_in.set()
            part.sub.dropped[part.rows[part.sub.codes[part.rows] == 0]] = True
            part.done.set()

    def _recover(self, s: _Shard) -> None:
        """The process died: restart it on its directory, then settle its in-doubt rows."""
        with self._lock:
            s.up = False
            parts, s.pending = list(s.pending.values()), {}
            s.inflight = 0
        self._fail_calls(s)
        old = s.proc
        old.join(5)
        log.warning("shard %d (pid %s) died with exit code %s; restarting", s.index, old.pid, old.exitcode)
        while True:
            try:
                self._spawn_quiet(s)
                break
            except ShardUnavailable as exc:
                if self._closing:
                    self._settle_lost(parts)
                    return
                log.error("restart of shard %d failed: %s; retrying", s.index, exc)
                time.sleep(0.5)
        s.restarts += 1
        # In-doubt rows: committed before the crash (found by id) or lost with the mempool.
        ids = [p.sub.tx_ids[r] for p in parts for r in p.rows.tolist()]
        found = self._call_conn(s, "tx_many", (ids,)) if ids else []
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
        with self._lock:
            s.up = True

    def _spawn_quiet(self, s: _Shard) -> None:
        try:
            self._spawn(s)
        except (OSError, AssertionError) as exc:
            raise ShardUnavailable(str(exc)) from exc
        s.up = False  # up again only once the in-doubt rows are settled

    @staticmethod
    def _settle_lost(parts: list[_Part]) -> None:
        for p in parts:
            if not p.codes_in.is_set():
                p.sub.codes[p.rows] = Reject.SHUTTING_DOWN
            p.sub.dropped[p.rows[p.sub.codes[p.rows] == 0]] = True
            p.codes_in.set()
            p.done.set()

    def _call_conn(self, s: _Shard, method: str, args: tuple) -> Any:
        """A call during recovery, read on this (the reader) thread."""
        req = next(self._ids)
        s.conn.send(("call", req, method, args))
        while True:
            msg = s.conn.recv()
            if msg[0] in ("result", "error") and msg[1] == req:
                if msg[0] == "error":
                    raise ShardUnavailable(msg[2])
                return msg[2]

    # --- queries ----------------------------------------------------------------------------

    def call(self, shard: int, method: str, *args: Any, timeout: float = 30.0) -> Any:
        """``Chain.<method>(*args)`` on one shard (``height`` is the property)."""
        if method not in _CALLS:
            raise ValueError(f"not a shard query: {method}")
        s = self.shards[shard]
        if not s.up:
            raise ShardUnavailable(f"shard {shard} is restarting")
        req = next(self._ids)
        call: list = [threading.Event(), False, None]
        s.calls[req] = call
        try:
            with s.send_lock:
                s.conn.send(("call", req, method, args))
        except (OSError, ValueError) as exc:
            s.calls.pop(req, None)
            raise ShardUnavailable(f"shard {shard} is down") from exc
        if not call[0].wait(timeout):
            s.calls.pop(req, None)
            raise TimeoutError(f"shard {shard} did not answer {method}")
        if not call[1]:
            raise ShardUnavailable(f"shard {shard}: {call[2]}")
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
        """Each shard drains its mempool, commits and exits."""
        self._closing = True
        for s in self.shards:
            if s.conn is not None:
                try:
                    with s.send_lock:
                        s.conn.send(("close", 0))
                except (OSError, ValueError):
                    pass
        for s in self.shards:
            if s.proc is not None:
                s.proc.join(timeout)
                if s.proc.is_alive():
                    log.error("shard %d did not stop in %s s; killing it", s.index, timeout)
                    s.proc.kill()
                    s.proc.join()
            if s.reader is not None and s.reader is not threading.current_thread():
                s.reader.join(timeout)
            if s.conn is not None:
                s.conn.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
