"""A solo chain: the embedded engine (docs/embedding.md).

Data flow (DESIGN.md): ``submit`` decodes, bounds-checks and batch-verifies the
submitted bytes in the caller's thread (native, GIL released, so admission of
the next batch overlaps execution of the current block) and queues accepted
transactions in the ``Mempool`` with their decoded columns. The producer thread
cuts a block as soon as it is free and any transaction waits (at most
``block_txs_max``; no timer: while one block executes and commits, the next
accumulates, so blocks grow with the load), gathers the admitted rows' columns
into the block (``batch.gather``: nothing is decoded twice) and runs the state
transition (``tierchain.engine.transition``): ``execute`` wave by wave, then the state
commitment's next version (``Commitment.prepare``; ``tierchain.state.commitment``) —
or, with ``tree_stage = "thread"`` (the default for large states), hands the
block to a tree thread that does, while the producer executes the next one.
The committer thread commits each block, in height order, in one LMDB write
transaction (``storage``); once that transaction's body is written, the producer
executes the next block while the commit's fsync runs, reading state through an
overlay of the write sets of the blocks not yet committed, and tree chunks
through an overlay of their new tree records. Only after a block's own transaction is durable are its
submitters woken and subscribers told: a block reported committed survives
``kill -9``.

On open, the chain resumes at the last committed block; nothing else is needed
because a block is all-or-nothing on disk. The flat ``state`` table is written
back every ``state_flush_blocks`` blocks (``tierchain.state.log``): the blocks in
between log their write sets, which reads overlay and opening loads.

State is committed by the commitment ``commitment_of`` chose once: the sparse
Merkle tree (``tierchain.state.tree``, Rust in ``ext/rust/src/smt.rs``) unless the
chain says ``"interim"``, written in the block's write transaction; its root is
the header's ``state_root``. ``state_get(key, height)`` reads any retained
height, ``prove_state`` / ``prove_tx`` give proofs that ``tierchain.proofs``
checks against a header without trusting this node (docs/proofs.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
import queue
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from tierchain import limits, proofs
from tierchain.config import ChainConfig
from tierchain.crypto import KeyPair, merkle, suite_of
from tierchain.engine import apps as app_registry
from tierchain.engine import transition
from tierchain.engine.execute import BlockColumns, declared_keys, nonce_key
from tierchain.engine.mempool import Chunk, Mempool
from tierchain.errors import InvariantViolation, Reject, RejectedError, TierChainError
from tierchain.state import log as state_log
from tierchain.state.commitment import Version, commitment_of
from tierchain.state.storage import Store
from tierchain.state.tree import StateUnavailable
from tierchain.wire.batch import Batch, decode_batch, gather
from tierchain.wire.block import ZERO_HASH, Header, Receipt
from tierchain.wire.tx import frame

log = logging.getLogger("tierchain.chain")
_U64 = struct.Struct("<Q")
subscriber_queue_max = 1024
scan_limit_max = 10_000  # pairs per Chain.state_scan call
# tree_stage = "auto": the tree gets its own thread from this many state entries at open
# (measured closed loop: +12% TPS at 10M accounts, +8% at 1M, -10-25% at 10k; docs/operations.md).
tree_thread_min_entries = 1_000_000
timings_kept = 1 << 16  # BlockTiming records kept (Chain.timings)


class ChainError(TierChainError):
    """The chain cannot open or continue (wrong genesis, damaged database, stopped)."""


def _log_stop(stage: str, exc: BaseException) -> None:
    """Log why a pipeline stage stopped; a broken invariant as one CRITICAL line that names it.

    An ``InvariantViolation`` is a ledger bug caught before its block was committed: the
    operator must see which op, transaction and invariant (docs/operations.md).
    """
    if isinstance(exc, InvariantViolation):
        fields = {"stage": stage, **exc.fields()}
        log.critical("invariant violated: block production halted", exc_info=exc, extra={"fields": fields})
    else:
        log.error("%s stopped", stage, exc_info=exc)


def _stop_error(stage: str, exc: BaseException) -> TierChainError:
    """What the submitters of the block a stage failed on get: the violation itself, or ChainError."""
    return exc if isinstance(exc, InvariantViolation) else ChainError(f"{stage} stopped: {exc!r}")


class SubscriberLagged(TierChainError):
    """A subscriber fell ``subscriber_queue_max`` blocks behind and was dropped."""


@dataclasses.dataclass(frozen=True)
class CommittedBlock:
    header: Header
    receipts: list[Receipt]


@dataclasses.dataclass(frozen=True)
class BlockTiming:
    """Where one block's time went (seconds), for load tests and operators."""

    height: int
    txs: int
    flushed: bool  # its commit merged the pending write sets into the state table
    produce_s: float  # producer: decode, execute, and the state tree version when inline
    tree_s: float  # the state tree version (StateTree.prepare): producer or tree thread
    write_s: float  # committer: the write txn's body (tree records, header, puts)
    durable_s: float  # committer: LMDB commit and its fsync
    at: float  # time.perf_counter() when it was durable


@dataclasses.dataclass
class _Executed:
    """A block the producer executed, on its way to the committer thread."""

    chunks: list[Chunk]
    batch: Batch
    block_buf: bytes
    height: int
    timestamp_ms: int
    result: transition.Outcome  # receipts, writes, tx and receipt roots
    index: list[tuple[bytes, bytes]]
    # True: this block's commit merges the pending write sets into the state table
    # (state_log); False: it logs its own write set, packed here (``log``).
    flush: bool
    log: bytes | None
    version: Version | None  # the state commitment after the block, not written yet
    produce_s: float = 0.0
    tree_s: float = 0.0
    commit_mark: float = 0.0  # perf_counter when the write txn's body was done


class Submission:
    """The fate of one submitted batch: a code per transaction now, receipts at commit."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        n = len(batch)
        self.codes = np.zeros(n, np.uint8)  # per submitted tx; 0 = accepted
        self.receipts: list[Receipt | None] = [None] * n
        self.heights = np.zeros(n, np.uint64)
        self._lock = threading.Lock()
        self._waiting = 0
        self._future: concurrent.futures.Future = concurrent.futures.Future()

    @functools.cached_property
    def tx_ids(self) -> list[bytes]:
        """Per submitted tx, its id (``b""`` for rows that did not decode); built on first use."""
        return self._batch.tx_ids()

    def _expect(self, n: int) -> None:
        """Called by the mempool, under its lock, before the rows can reach a block."""
        with self._lock:
            self._waiting += n

    def _admitted(self, codes: np.ndarray) -> None:
        self.codes[:] = codes
        self._settle()

    def _settle(self) -> None:
        with self._lock:
            if not self._waiting and not self._future.done():
                self._future.set_result(None)  # not self: a Submission<->Future cycle would
                # leave every batch, its receipts and events to the cyclic GC (long pauses)

    @property
    def accepted(self) -> int:
        return int((self.codes == 0).sum())

    def rejections(self) -> list[tuple[int, Reject]]:
        return [(int(i), Reject(int(self.codes[i]))) for i in np.flatnonzero(self.codes)]

    def _committed(self, rows: np.ndarray, receipts: list[Receipt], height: int) -> None:
        for row, receipt in zip(rows.tolist(), receipts, strict=True):
            self.receipts[row] = receipt
        self.heights[rows] = height
        with self._lock:
            self._waiting -= len(rows)
        self._settle()

    def _fail(self, exc: BaseException) -> None:
        if not self._future.done():
            self._future.set_exception(exc)

    def wait(self, timeout: float | None = None) -> list[Receipt | None]:
        """Block until every accepted transaction is durably committed; receipts in submit order."""
        self._future.result(timeout)
        return self.receipts

    async def wait_async(self) -> list[Receipt | None]:
        await asyncio.wrap_future(self._future)
        return self.receipts


class Subscription:
    """Committed blocks, in height order, from a bounded queue."""

    def __init__(self, chain: Chain) -> None:
        self._chain = chain
        self._queue: queue.Queue = queue.Queue(subscriber_queue_max)
        self.lagged = False

    def _push(self, item: CommittedBlock | None) -> bool:
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.lagged = True
            return False

    def get(self, timeout: float | None = None) -> CommittedBlock | None:
        """The next block; None once the chain closes; raises ``SubscriberLagged``."""
        if self.lagged and self._queue.empty():
            raise SubscriberLagged("fell behind; resume with Chain.blocks(from_height)")
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[CommittedBlock]:
        while (item := self.get()) is not None:
            yield item

    def close(self) -> None:
        self._chain._unsubscribe(self)


class Chain:
    """Open (and, on first use, create) the chain stored at ``path``.

    ``state_keep_heights``: state versions kept for historic reads and proofs
    (0 = every height; K = the last K heights, older ones raise ``StatePruned``);
    defaults to ``config.state_keep_heights`` (``[node]`` in chain.toml).
    """

    def __init__(
        self,
        path: str | Path,
        config: ChainConfig,
        proposer: KeyPair,
        *,
        start: bool = True,
        state_keep_heights: int | None = None,
        apps: Iterable[app_registry.App] = (),
    ) -> None:
        self.path, self.config, self.proposer = Path(path), config, proposer
        # The chain's crypto suite, chosen once from its genesis configuration and handed
        # to everything here that hashes or verifies (tierchain.crypto.suite).
        self.suite = suite_of(config)
        # The apps this chain runs: the names its genesis records (config.apps), each one
        # given here by value, built in, or installed (tierchain.engine.apps.resolve).
        self.apps = app_registry.resolve(config.apps, apps)
        self.path.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.path / "db", sync=config.sync == "full")
        try:
            # The state commitment ("smt" tree or "interim" chain), chosen once here; the
            # pipeline below only calls its prepare / write / committed (tierchain.state.commitment).
            self.commitment = commitment_of(
                config, suite=self.suite, store=self.store, keep_heights=state_keep_heights
            )
            self._init_or_check_genesis()
            with self.store.read() as r:
                if r.get("meta", "proposer") != proposer.public_key:
                    raise ChainError("this node's key is not the chain's proposer")
                self._head: Header = r.last("headers")[1]
                # The next block's state commitment starts from the head's.
                self.commitment.resume(r, self._head.state_root, self._head.height)
                flushed = state_log.flushed_height(r)
                try:
                    pending = state_log.pending(r)
                except (ValueError, TierChainError) as exc:  # checksum, codec, or a gap
                    raise ChainError(f"state log damaged: {exc}") from exc
                entries = r.entries("state")
            if flushed is None:  # a database from before the state log: its table is current
                with self.store.write() as w:
                    w.put("meta", state_log.STATE_HEIGHT, state_log.encode_height(self._head.height))
                flushed = self._head.height
            if flushed + len(pending) != self._head.height:
                raise ChainError(
                    f"state_log holds {len(pending)} write sets after height {flushed}, "
                    f"head is {self._head.height}"
                )
        except BaseException:
            self.store.close()
            raise
        self.mempool = Mempool(
            chain_id=config.chain_id,
            txs_max=config.mempool_txs_max,
            sender_pending_max=config.sender_pending_max,
            committed_nonces=self.nonces,
            suite=self.suite,
            shard_index=config.shard_index,
            shard_count=config.shard_count,
            placement=self.apps.placement,
        )
        self._wake = threading.Condition()
        self._stopping = False
        self._subscribers: list[Subscription] = []
        self._sub_lock = threading.Lock()
        self._producer: threading.Thread | None = None
        # Pipeline: the producer executes block h+1 and computes its tree version while
        # the committer thread's LMDB commit of block h (its fsync, without the GIL) is
        # in flight. Only then: started earlier, h+1's Python would compete with h's
        # writes for the GIL. Write sets of executed, not yet committed blocks (oldest
        # first) are the overlay h+1's reads see.
        self._commits: queue.SimpleQueue[_Executed | None] = queue.SimpleQueue()
        # Executed blocks waiting for the tree thread ("smt" chains): a third stage, so
        # the tree version of block h (Rust, GIL released) overlaps the execution of
        # h+1 (Python) and the commit of h-1.
        self._trees: queue.SimpleQueue[_Executed | None] = queue.SimpleQueue()
        self._tree_thread: threading.Thread | None = None
        stage = config.tree_stage
        if stage == "auto":
            stage = "thread" if entries >= tree_thread_min_entries else "inline"
        self.tree_threaded = self.commitment.threadable and stage == "thread"
        # (height, write set) of every block not yet in the state table, oldest first:
        # executed and uncommitted, or committed and logged but not flushed yet
        # (state_log); the committer drops them when it flushes them.
        self._uncommitted: deque[tuple[int, dict[bytes, bytes | None]]] = deque(pending)
        self._state_height = flushed  # the committer's: the height the state table holds
        # The producer's flush plan: blocks and writes pending since the last planned flush.
        self._plan = [len(pending), sum(len(w) for _, w in pending)]
        self._uncommitted_lock = threading.Lock()
        # Blocks cut but not yet being committed: two when a tree stage sits between.
        self._slots = threading.Semaphore(2 if self.tree_threaded else 1)
        self.timings: deque[BlockTiming] = deque(maxlen=timings_kept)  # newest last
        self._committer: threading.Thread | None = None
        self.error: BaseException | None = None
        if start:
            self.start()

    # --- lifecycle ---------------------------------------------------------------

    def _init_or_check_genesis(self) -> None:
        genesis = self.config.genesis_bytes()
        with self.store.read() as r:
            stored = r.get("meta", "genesis")
        if stored is not None:
            if stored != genesis:
                app_registry.check_recorded(stored, self.apps)  # AppSetMismatch names both sets
                raise ChainError("database was created from a different genesis")
            return
        with self.store.write() as w:
            # Genesis arrives in ascending chunks (a 10M-account state never sits in
            # one dict); each chunk goes to the flat state (appended: keys ascend,
            # the table is empty) and to the commitment (a tree: built bottom up in this txn).
            roots = transition.genesis(
                self.config,
                app_set=self.apps,
                suite=self.suite,
                commitment=self.commitment,
                sink=lambda chunk: w.put_many_raw("state", chunk, append=True),
                w=w,
            )
            header = Header(
                chain_id=self.config.chain_id,
                height=0,
                prev_hash=ZERO_HASH,
                timestamp_ms=self.config.genesis_timestamp_ms,
                tx_count=0,
                tx_root=roots.tx_root,
                receipt_root=roots.receipt_root,
                state_root=roots.state_root,
                proposer=self.proposer.public_key,
            ).signed(self.proposer, self.suite)
            w.put("meta", "genesis", genesis)
            w.put("meta", "proposer", self.proposer.public_key)
            w.put("meta", state_log.STATE_HEIGHT, state_log.encode_height(0))
            w.put("headers", 0, header)
            w.put("blocks", 0, b"")
            w.put("receipts", 0, [])

    def start(self) -> None:
        self._next_height, self._last_timestamp_ms = self._head.height + 1, self._head.timestamp_ms
        self._committer = threading.Thread(target=self._commit_loop, name="tierchain-committer", daemon=True)
        if self.tree_threaded:
            self._tree_thread = threading.Thread(target=self._tree_loop, name="tierchain-tree", daemon=True)
        self._producer = threading.Thread(target=self._run, name="tierchain-producer", daemon=True)
        self._committer.start()
        if self._tree_thread is not None:
            self._tree_thread.start()
        self._producer.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting, commit what is queued, stop the producer, close the database."""
        self.mempool.close()  # from here on submit() gets SHUTTING_DOWN; queued rows drain
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._producer is not None:
            self._producer.join(timeout)
            if self._producer.is_alive():
                # Never close the environment under a block being committed: LMDB keeps
                # the last committed block whatever happens to this process.
                raise ChainError(f"producer still draining after {timeout} s; database left open")
        with self._sub_lock:
            for sub in self._subscribers:
                sub._push(None)
            self._subscribers.clear()
        if self.error is None and self._state_height < self._head.height:
            # At rest the state table is current (tools reading it need no log); if
            # this fails, the log still holds every write set and the next open reads it.
            head = self._head.height
            try:
                with self.store.write() as w:
                    self._flush_state(w, head)
                self._state_height = head
            except Exception:
                log.exception("final state flush failed; the state log keeps the write sets")
        self.store.close()

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- submission ----------------------------------------------------------------

    def submit(self, txs: bytes | Iterable[bytes]) -> Submission:
        """Admit a batch: a framed buffer (``wire.frame``) or encoded transactions."""
        buf = txs if isinstance(txs, bytes | bytearray | memoryview) else frame(list(txs))
        if self._stopping or self.error is not None:
            raise RejectedError(
                Reject.SHUTTING_DOWN, "chain is closing" if self._stopping else repr(self.error)
            )
        batch = decode_batch(buf, suite=self.suite)
        ticket = Submission(batch)
        codes = self.mempool.admit(batch, self._head.height + 1, ticket)
        if (codes == 0).any():
            with self._wake:
                self._wake.notify()
        ticket._admitted(codes)
        return ticket

    async def submit_async(self, txs: bytes | Iterable[bytes]) -> Submission:
        return await asyncio.get_running_loop().run_in_executor(None, self.submit, txs)

    # --- block production ------------------------------------------------------------

    def _run(self) -> None:
        # Natural batching: the producer cuts a block as soon as it is idle and any
        # transaction waits (up to block_txs_max); while one block executes and the
        # previous one commits, the next accumulates, so blocks grow with the load by
        # themselves. Idle, it sleeps until ``submit`` wakes it (block_interval_ms at most).
        interval_s = self.config.block_interval_ms / 1000
        chunks: list[Chunk] = []
        try:
            while True:
                self._slots.acquire()  # released when an earlier block's commit starts
                with self._wake:
                    while not self.mempool.waiting and not self._stopping and self.error is None:
                        self._wake.wait(interval_s)
                    if self.error is not None:  # a later stage stopped
                        raise ChainError(f"pipeline stopped: {self.error!r}")
                    if self._stopping and not self.mempool.waiting:
                        return
                chunks = self.mempool.take(self.config.block_txs_max)
                if chunks:
                    self._produce(chunks)
                else:
                    self._slots.release()
                chunks = []
        except BaseException as exc:  # a bug or a dead disk: stop producing, tell everyone
            # Logged once, as one line (JSON under `node run`), and kept in self.error; not
            # re-raised, which would only print it again, unstructured, via threading.excepthook.
            _log_stop("block producer", exc)
            if self.error is None:
                self.error = exc
            # The block being produced (``chunks``) committed nothing: it never reached
            # the commit queue. Its submitters hear why; the rest, that the chain stopped.
            for chunk in chunks:
                chunk.ticket._fail(_stop_error("producer", exc))
            for chunk in self.mempool.take(1 << 62):
                chunk.ticket._fail(ChainError(f"producer stopped: {exc!r}"))
        finally:
            if self._tree_thread is not None:  # it passes the end on to the committer
                self._trees.put(None)
                self._tree_thread.join()
            else:
                self._commits.put(None)  # the committer commits what it was given, then stops
            if self._committer is not None:
                self._committer.join()
            self._fail_queued(ChainError(f"committer stopped: {self.error!r}"))

    def _fail_queued(self, exc: BaseException) -> None:
        for q in (self._trees, self._commits):
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                for chunk in item.chunks if item is not None else ():
                    chunk.ticket._fail(exc)

    def _produce(self, chunks: list[Chunk]) -> None:
        t0 = time.perf_counter()
        # Decode once: the block's bytes are the admitted frames joined, and its columns
        # are theirs, gathered and rebased (batch.gather), not decoded and hashed again.
        batch = gather([(c.batch, c.rows) for c in chunks])
        if not batch.ok.all():
            raise InvariantViolation(
                "a transaction admission refused is in a block", height=self._next_height
            )
        height = self._next_height
        timestamp_ms = max(int(time.time() * 1000), self._last_timestamp_ms)
        executed = self._execute(chunks, batch, batch.buf, height, timestamp_ms)
        if not self.tree_threaded:
            self._prepare_tree(executed)
        executed.produce_s = time.perf_counter() - t0
        self._next_height, self._last_timestamp_ms = height + 1, timestamp_ms
        (self._commits if self._tree_thread is None else self._trees).put(executed)

    def _execute(
        self, chunks: list[Chunk], batch: Batch, block_buf: bytes, height: int, timestamp_ms: int
    ) -> _Executed:
        # Handlers can read only declared keys (and the executor the nonce keys), so
        # one prefetch of exactly those is every state read the block will make.
        # Tx ids and senders as bytes come with the chunks (split once, at admission).
        if chunks:
            cols = BlockColumns(
                batch,
                tx_id=[i for c in chunks for i in c.ids],
                sender=[s for c in chunks for s in c.senders],
            )
        else:
            cols = BlockColumns(batch)
        keys = declared_keys(cols)
        # Overlay snapshot BEFORE the read txn begins: a block the committer drops from
        # it is already durable, so the read txn sees its writes; one still in the
        # snapshot is overlaid whether or not the read txn also sees it.
        with self._uncommitted_lock:
            overlays = list(self._uncommitted)
        with self.store.read() as r:
            prefetched = r.get_many_raw("state", keys)
        declared = frozenset(keys)
        for _, writes in overlays:  # up to state_flush_blocks + 2 of them: iterate each once
            for k in declared.intersection(writes):
                v = writes[k]
                if v is None:
                    prefetched.pop(k, None)
                else:
                    prefetched[k] = v
        result = transition.execute(
            batch, prefetched.get, height, timestamp_ms, app_set=self.apps, suite=self.suite, cols=cols
        )
        locations = np.empty(len(batch), dtype=[("height", "<u8"), ("pos", "<u4")])
        locations["height"], locations["pos"] = height, np.arange(len(batch))
        loc_bytes, width = locations.tobytes(), locations.itemsize
        locs = [loc_bytes[k : k + width] for k in range(0, len(loc_bytes), width)]
        index = sorted(zip(cols.tx_id, locs, strict=True))
        plan = self._plan
        plan[0] += 1
        plan[1] += len(result.writes)
        flush = plan[0] >= self.config.state_flush_blocks or plan[1] >= state_log.pending_writes_max
        if flush:
            plan[0] = plan[1] = 0
        log_blob = None if flush else state_log.encode(result.writes)
        with self._uncommitted_lock:
            self._uncommitted.append((height, result.writes))
        return _Executed(chunks, batch, block_buf, height, timestamp_ms, result, index, flush, log_blob, None)

    def _prepare_tree(self, ex: _Executed) -> None:
        """Compute block ``ex``'s state commitment version (``Commitment.prepare``); the
        committer writes it. The second half of ``transition.transition``.

        On the tree thread (``tree_stage``) it runs while the producer executes the
        next block; inline, the producer runs it; either way while the committer
        makes the previous block durable. A stored tree's reads see the blocks prepared
        but not yet committed through their tree records (snapshotted before the read
        txn begins, like the producer's state overlays). Chunks come from the Rust cache
        (GIL released) unless the state is larger than the cache.
        """
        t0 = time.perf_counter()
        ex.version = self.commitment.prepare(ex.height, ex.result.writes)
        ex.tree_s = time.perf_counter() - t0

    def _tree_loop(self) -> None:
        """Prepare each executed block's tree version, in height order, for the committer."""
        ex: _Executed | None = None
        try:
            while (ex := self._trees.get()) is not None:
                self._prepare_tree(ex)
                self._commits.put(ex)
        except BaseException as exc:
            self._stage_failed("state tree stage", exc, ex)
        finally:
            self._commits.put(None)  # the committer commits what it was given, then stops

    def _commit_loop(self) -> None:
        """Commit executed blocks in height order; report each only once it is durable."""
        ex: _Executed | None = None
        try:
            while (ex := self._commits.get()) is not None:
                t0 = time.perf_counter()
                header, receipts = self._execute_and_commit(ex)
                t1 = time.perf_counter()
                self._committed_block(ex, header)
                mark = ex.commit_mark or t1
                self.timings.append(
                    BlockTiming(
                        ex.height, len(ex.batch), ex.flush, ex.produce_s, ex.tree_s, mark - t0, t1 - mark, t1
                    )
                )
                self.mempool.done(ex.chunks)
                pos = 0
                for c in ex.chunks:
                    c.ticket._committed(c.rows, receipts[pos : pos + len(c.rows)], ex.height)
                    pos += len(c.rows)
                self._publish(CommittedBlock(header, receipts))
        except BaseException as exc:
            self._stage_failed("committer", exc, ex)

    def _stage_failed(self, stage: str, exc: BaseException, ex: _Executed | None) -> None:
        """A stage after the producer died: fail its block's submitters, stop the producer."""
        _log_stop(stage, exc)
        if self.error is None:
            self.error = exc
        for chunk in ex.chunks if ex is not None else ():
            chunk.ticket._fail(_stop_error(stage, exc))
        self._slots.release()  # never leave the producer waiting for a slot
        with self._wake:  # nor waiting for transactions
            self._wake.notify_all()

    def _committed_block(self, ex: _Executed, header: Header) -> None:
        """Block ``ex`` is durable: it is the head; drop the overlays it made redundant."""
        self._head = header
        with self._uncommitted_lock:
            if ex.flush:  # the state table now holds every block up to this one
                while self._uncommitted and self._uncommitted[0][0] <= ex.height:
                    self._uncommitted.popleft()
                self._state_height = ex.height
        self.commitment.committed(ex.version)

    def _commit_started(self) -> None:
        """The block's write txn is complete and about to commit: cut the next block."""
        self._slots.release()

    def _execute_and_commit(self, ex: _Executed) -> tuple[Header, list[Receipt]]:
        """Commit one executed block (and its state tree version) in one write txn."""
        batch, block_buf, height, timestamp_ms = ex.batch, ex.block_buf, ex.height, ex.timestamp_ms
        result, version, index, head = ex.result, ex.version, ex.index, self._head
        receipts = result.receipts

        def started() -> None:
            ex.commit_mark = time.perf_counter()
            self._commit_started()

        with self.store.write(before_commit=started) as w:
            # The commitment's records (the tree's new nodes and root) go into this same
            # write txn: a block and its state version are committed together or not at all.
            self.commitment.write(w, version)
            header = Header(
                chain_id=self.config.chain_id,
                height=height,
                prev_hash=head.hash(self.suite),
                timestamp_ms=timestamp_ms,
                tx_count=len(batch),
                tx_root=result.tx_root,
                receipt_root=result.receipt_root,
                state_root=version.root,
                proposer=self.proposer.public_key,
            ).signed(self.proposer, self.suite)
            w.put("headers", height, header)
            w.put("blocks", height, block_buf)
            w.put("receipts", height, receipts)
            w.put_many_raw("tx_index", sorted(index))
            if ex.flush:
                self._flush_state(w, height)
            else:
                w.put("state_log", height, ex.log)
        return header, receipts

    def _flush_state(self, w, height: int) -> None:
        """Merge the write sets of blocks state_height+1..height into the state table."""
        with self._uncommitted_lock:
            blocks = [writes for h, writes in self._uncommitted if h <= height]
        puts, deletes = state_log.merged(blocks)
        w.put_many_raw("state", puts)
        for k in deletes:
            w.delete("state", k)
        for h in range(self._state_height + 1, height + 1):  # a flushing block logged nothing
            w.delete("state_log", h)
        w.put("meta", state_log.STATE_HEIGHT, state_log.encode_height(height))

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        with self._sub_lock:
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._sub_lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def _publish(self, item: CommittedBlock) -> None:
        with self._sub_lock:
            self._subscribers = [s for s in self._subscribers if s._push(item)]

    # --- queries ------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._head.height

    def head(self) -> Header:
        return self._head

    def header(self, height: int) -> Header | None:
        with self.store.read() as r:
            return r.get("headers", height)

    def block_txs(self, height: int) -> list[bytes] | None:
        with self.store.read() as r:
            buf = r.get("blocks", height)
        if buf is None:
            return None
        b = decode_batch(buf, suite=self.suite)
        return [b.tx_bytes(i) for i in range(len(b))]

    def receipts(self, height: int) -> list[Receipt] | None:
        with self.store.read() as r:
            return r.get("receipts", height)

    def blocks(self, from_height: int = 0) -> Iterator[CommittedBlock]:
        """Committed blocks from ``from_height`` up to the current head (replay)."""
        for h in range(from_height, self.height + 1):
            header, receipts = self.header(h), self.receipts(h)
            if header is None or receipts is None:
                return
            yield CommittedBlock(header, receipts)

    def tx(self, tx_id: bytes) -> tuple[int, int, bytes, Receipt] | None:
        """(height, position, encoded tx, receipt) of a committed transaction."""
        with self.store.read() as r:
            loc = r.get("tx_index", tx_id)
            if loc is None:
                return None
            height, pos = loc
            buf, receipts = r.get("blocks", height), r.get("receipts", height)
        b = decode_batch(buf, suite=self.suite)
        return height, pos, b.tx_bytes(pos), receipts[pos]

    def state_get(self, key: bytes, height: int | None = None) -> bytes | None:
        """Value of ``key`` now (``height=None``) or after block ``height``.

        Historic reads need the state tree ("smt" chains) and a retained height:
        ``StatePruned`` below the retention window, ``StateUnavailable`` otherwise.
        """
        if height is None:
            return self.state_get_many([key])[0]
        if not self.commitment.proves:
            if height == self._head.height:
                return self.state_get(key)
            raise StateUnavailable('historic state needs state_commitment = "smt"')
        with self.store.read() as r:
            return self.commitment.tree.get(r, key, height)

    def state_get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """Current values of ``keys`` (None: absent), all read at one committed height."""
        overlays = self._committed_overlays()
        with self.store.read() as r:
            pending = self._pending_in(r, overlays)
            stored = r.get_many_raw("state", sorted(set(keys)))  # one native call
        return [state_log.lookup(pending, key, stored.get) for key in keys]

    def state_scan(self, prefix: bytes, limit: int = 1000, after: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` (key, value) pairs of the current state whose key starts with
        ``prefix``, in key order, starting after key ``after`` (for paging)."""
        if not 1 <= limit <= scan_limit_max:
            raise ValueError(f"limit must be in 1..{scan_limit_max}")
        if len(prefix) > limits.key_bytes_max or len(after) > limits.key_bytes_max:
            raise ValueError(f"prefix and after are at most {limits.key_bytes_max} bytes (a key's bound)")
        overlays = self._committed_overlays()
        with self.store.read() as r:
            # From the first candidate key (scan drops ``after`` itself); b"" = the whole table.
            stored = r.items("state", max(prefix, after) or None)
            return state_log.scan(stored, self._pending_in(r, overlays), prefix, after, limit)

    def _committed_overlays(self) -> tuple[int, list[tuple[int, dict[bytes, bytes | None]]]]:
        """(head height, write sets of blocks not in the state table): take BEFORE the read txn.

        A flush the read txn then sees covers only blocks in this snapshot, so
        ``_pending_in`` gives the state at one committed height (the head's or later).
        """
        with self._uncommitted_lock:
            return self._head.height, list(self._uncommitted)

    @staticmethod
    def _pending_in(r, overlays: tuple[int, list]) -> list[dict[bytes, bytes | None]]:
        """The write sets to overlay on read txn ``r``'s state table: committed, not flushed in it."""
        head, blocks = overlays
        flushed = state_log.flushed_height(r)
        return [writes for h, writes in blocks if flushed < h <= head]

    def prove_state(self, key: bytes, height: int | None = None) -> proofs.StateProof:
        """Value or absence of ``key`` after block ``height`` (default: head), with its proof.

        Check it with ``proofs.verify_state(header.state_root, proof, key)``.
        """
        if not self.commitment.proves:
            raise StateUnavailable('proofs need state_commitment = "smt"')
        with self.store.read() as r:
            if height is None:
                height = r.last("headers")[0]
            return self.commitment.tree.prove(r, key, height)

    def prove_tx(self, tx_id: bytes) -> proofs.TxProof | None:
        """Inclusion proof of a committed transaction and its receipt (None if unknown).

        Check it with ``proofs.verify_tx(header, proof)`` for the header at ``proof.height``.
        """
        with self.store.read() as r:
            loc = r.get("tx_index", tx_id)
            if loc is None:
                return None
            height, pos = loc
            buf, receipts = r.get("blocks", height), r.get("receipts", height)
        batch = decode_batch(buf, suite=self.suite)
        ids = [row.tobytes() for row in batch.digest]
        encoded = [rc.encode() for rc in receipts]
        return proofs.TxProof(
            height=height,
            index=pos,
            size=len(ids),
            tx_id=ids[pos],
            tx_path=tuple(merkle.prove(ids, pos, suite=self.suite)),
            receipt=encoded[pos],
            receipt_path=tuple(merkle.prove(encoded, pos, suite=self.suite)),
        )

    def nonce(self, sender: bytes) -> int:
        """The next nonce the ledger expects from ``sender`` (committed state)."""
        return self.nonces([sender])[0]

    def nonces(self, senders: list[bytes]) -> list[int]:
        """``nonce`` of each sender, read at one committed height."""
        raws = self.state_get_many([nonce_key(s) for s in senders])
        return [0 if raw is None else _U64.unpack(raw)[0] for raw in raws]

    def query(self, name: str, *args: object) -> object:
        """Run the read-only query ``name`` an app of this chain declares (``App.queries``)
        over the committed state."""
        fn = self.apps.queries.get(name)
        if fn is None:
            raise app_registry.AppError(f"no app of this chain has a query {name!r}")
        return fn(self.state_get, *args)

    def balance(self, public_key: bytes) -> int:
        """The accounts app's balance of ``public_key`` (its ``balance`` query)."""
        return int(self.query("balance", public_key))  # type: ignore[call-overload]
