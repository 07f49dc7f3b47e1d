"""The block pipeline: a producer, an optional state-tree stage and a committer, as threads.

``Pipeline`` is the part of ``tierchain.engine.chain.Chain`` that produces and commits
blocks; ``Chain`` opens the store, the commitment and the mempool and gives this part
its starting state (``_init_pipeline``). Stages and their queues:

* the producer (``_run``) cuts a block from the mempool as soon as it has a free slot
  and transactions wait (``_produce``), gathers their admitted columns (``batch.gather``:
  nothing is decoded twice) and runs the state transition (``_execute``:
  ``tierchain.engine.transition.execute`` over a prefetch of the declared keys and an
  overlay of the write sets not yet in the state table);
* the state-tree stage (``_prepare_tree``: ``Commitment.prepare``) runs inline in the
  producer, or (``tree_threaded``) on its own thread (``_tree_loop``, queue ``_trees``),
  so block h's tree version overlaps h+1's execution and h-1's commit;
* the committer (``_commit_loop``, queue ``_commits``) writes each block, in height
  order, in one LMDB write transaction (``_execute_and_commit``; every
  ``state_flush_blocks`` blocks it merges the pending write sets into the state table,
  ``_flush_state``) and releases the producer's slot once the txn's body is written
  (``_commit_started``), so the next block executes during the fsync. Only after a
  block is durable are its submitters woken and subscribers told.

A stage that raises stops the pipeline (``_stage_failed``, ``_log_stop``): its block is
not committed, its submitters get the error (an ``InvariantViolation`` itself, else
``ChainError``), every queued block's submitters hear that the chain stopped, and
``error`` keeps the cause (docs/architecture.md, "Invariants stop the node").

The methods read the chain's attributes set by ``Chain.__init__`` (``config``, ``store``,
``commitment``, ``mempool``, ``suite``, ``apps``, ``proposer``, ``_head``, ``_wake``,
``_stopping``) and by ``_init_pipeline``; tests patch them on ``Chain``
(``Chain._prepare_tree``, ``Chain._execute_and_commit``, ``Chain._commit_started``, ...).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque

import tierchain_native

from tierchain.engine import transition
from tierchain.engine.execute import BlockColumns, read_state
from tierchain.engine.mempool import Chunk
from tierchain.engine.submission import ChainError, CommittedBlock
from tierchain.errors import InvariantViolation, TierChainError
from tierchain.state import log as writeback_log
from tierchain.state import tx_index
from tierchain.state.commitment import Version
from tierchain.wire.batch import Batch, gather
from tierchain.wire.block import Header, Receipt

log = logging.getLogger("tierchain.chain")
timings_kept = 1 << 16  # BlockTiming records kept (Chain.timings)


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


@dataclasses.dataclass(frozen=True)
class BlockTiming:
    """Where one block's time went (seconds), for load tests and operators."""

    height: int
    txs: int
    flushed: bool  # its commit merged the pending write sets into the state table
    produce_s: float  # producer: gather the admitted columns, execute, and the commitment version when inline
    execute_s: float  # the part of produce_s in transition.execute: the ops, receipts and their roots
    tree_s: float  # the commitment version (Commitment.prepare): producer or tree thread
    write_s: float  # committer: the write txn's body (tree records, header, puts)
    durable_s: float  # committer: LMDB commit and its fsync
    at: float  # time.perf_counter() when it was durable


@dataclasses.dataclass
class _Executed:
    """A block the producer executed, on its way to the committer thread."""

    chunks: list[Chunk]
    batch: Batch  # batch.buf: the block's bytes, as stored
    height: int
    timestamp_ms: int
    result: transition.Outcome  # receipts, writes, tx and receipt roots
    index: tuple[bytes, bytes]  # the block's tx_inbox records, packed (tx_index.block_pairs)
    # True: this block's commit merges the pending write sets into the state table
    # (state_log); False: it logs its own write set, packed here (``log``).
    flush: bool
    log: bytes | None
    version: Version | None  # the state commitment after the block, not written yet
    produce_s: float = 0.0
    execute_s: float = 0.0
    tree_s: float = 0.0
    commit_mark: float = 0.0  # perf_counter when the write txn's body was done
    # Its header, when made before the commit (a replicated block's, whose hash is the
    # app hash CometBFT agrees on: tierchain.replication); else the committer makes it.
    header: Header | None = None
    # Meta records committed with the block, in its write txn (a replicated chain's
    # validator set: what this block changed of it survives exactly when the block does).
    meta: dict[str, bytes] | None = None


class Pipeline:
    """Block production and commit for ``Chain`` (module docstring)."""

    def _init_pipeline(
        self, pending: list[tuple[int, dict[bytes, bytes | None]]], flushed: int, tree_threaded: bool
    ) -> None:
        """The pipeline's state at open: ``pending`` write sets (committed, not in the state
        table, oldest first) above ``flushed``, the height the state table holds."""
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
        self.tree_threaded = tree_threaded
        # (height, write set) of every block not yet in the state table, oldest first:
        # executed and uncommitted, or committed and logged but not flushed yet
        # (state_log); the committer drops them when it flushes them.
        self._uncommitted: deque[tuple[int, dict[bytes, bytes | None]]] = deque(pending)
        # The producer's overlays: the BlockState that executed each uncommitted block it
        # executed (the same writes, looked up natively by ``read_state``), by height.
        self._executed_states: dict[int, tierchain_native.BlockState] = {}
        self._state_height = flushed  # the committer's: the height the state table holds
        # The producer's flush plan: blocks and writes pending since the last planned flush.
        self._plan = [len(pending), sum(len(w) for _, w in pending)]
        self._uncommitted_lock = threading.Lock()
        # Blocks cut but not yet being committed: two when a tree stage sits between.
        self._slots = threading.Semaphore(2 if self.tree_threaded else 1)
        self.timings: deque[BlockTiming] = deque(maxlen=timings_kept)  # newest last
        self._committer: threading.Thread | None = None
        self.error: BaseException | None = None

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
        executed = self._execute(chunks, batch, height, timestamp_ms)
        if not self.tree_threaded:
            self._prepare_tree(executed)
        executed.produce_s = time.perf_counter() - t0
        self._next_height, self._last_timestamp_ms = height + 1, timestamp_ms
        (self._commits if self._tree_thread is None else self._trees).put(executed)

    def _execute(self, chunks: list[Chunk], batch: Batch, height: int, timestamp_ms: int) -> _Executed:
        # Handlers can read only declared keys (and the executor the nonce keys), so
        # one prefetch of exactly those is every state read the block will make.
        cols = BlockColumns(batch)
        # Overlay snapshot BEFORE the read txn begins: a block the committer drops from
        # it is already durable, so the read txn sees its writes; one still in the
        # snapshot is overlaid whether or not the read txn also sees it.
        with self._uncommitted_lock:
            states = self._executed_states
            overlays = [states.get(h, writes) for h, writes in self._uncommitted]
        with self.store.read() as r:  # a key an overlay holds is not read
            state = read_state(r.native("state"), cols, overlays)
        t0 = time.perf_counter()
        result = transition.execute(
            batch,
            state,
            height,
            timestamp_ms,
            app_set=self.apps,
            suite=self.suite,
            cols=cols,
            shard=(self.config.shard_index, self.config.shard_count),
        )
        execute_s = time.perf_counter() - t0
        # The tx index's inbox records, packed (the committer's put sorts them natively):
        # no tuple per transaction here or there.
        index = tx_index.block_pairs(batch.digest, height)
        plan = self._plan
        plan[0] += 1
        plan[1] += len(result.writes)
        flush = plan[0] >= self.config.state_flush_blocks or plan[1] >= writeback_log.pending_writes_max
        if flush:
            plan[0] = plan[1] = 0
        log_blob = None if flush else writeback_log.encode(result.writes)
        with self._uncommitted_lock:
            self._uncommitted.append((height, result.writes))
            self._executed_states[height] = state
        return _Executed(
            chunks, batch, height, timestamp_ms, result, index, flush, log_blob, None, execute_s=execute_s
        )

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
                        ex.height,
                        len(ex.batch),
                        ex.flush,
                        ex.produce_s,
                        ex.execute_s,
                        ex.tree_s,
                        mark - t0,
                        t1 - mark,
                        t1,
                    )
                )
                self.mempool.done(ex.batch)
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
                    self._executed_states.pop(self._uncommitted.popleft()[0], None)
                self._state_height = ex.height
        self.commitment.committed(ex.version)

    def _commit_started(self) -> None:
        """The block's write txn is complete and about to commit: cut the next block."""
        self._slots.release()

    def _execute_and_commit(self, ex: _Executed) -> tuple[Header, list[Receipt]]:
        """Commit one executed block (and its state tree version) in one write txn."""
        batch, height = ex.batch, ex.height
        result, version, index, head = ex.result, ex.version, ex.index, self._head
        receipts = result.receipts

        def started() -> None:
            ex.commit_mark = time.perf_counter()
            self._commit_started()

        with self.store.write(before_commit=started) as w:
            # The commitment's records (the tree's new nodes and root) go into this same
            # write txn: a block and its state version are committed together or not at all.
            self.commitment.write(w, version)
            header = ex.header or self._block_header(ex, head, self.proposer.public_key)
            w.put("headers", height, header)
            w.put("blocks", height, batch.buf)
            w.put("receipts", height, receipts)
            tx_index.write(w, height, index)
            for name, value in (ex.meta or {}).items():
                w.put("meta", name, value)
            if ex.flush:
                self._flush_state(w, height)
            else:
                w.put("state_log", height, ex.log)
        return header, receipts

    def _block_header(self, ex: _Executed, head: Header, proposer: bytes) -> Header:
        """Block ``ex``'s header after ``head``, sealed by this node (``_seal``)."""
        assert ex.version is not None
        return self._seal(
            Header(
                chain_id=self.config.chain_id,
                height=ex.height,
                prev_hash=head.hash(self.suite),
                timestamp_ms=ex.timestamp_ms,
                tx_count=len(ex.batch),
                tx_root=ex.result.tx_root,
                receipt_root=ex.result.receipt_root,
                state_root=ex.version.root,
                proposer=proposer,
            )
        )

    def _seal(self, header: Header) -> Header:
        """A solo chain's header is signed by its proposer, this node."""
        return header.signed(self.proposer, self.suite)

    def _flush_state(self, w, height: int) -> None:
        """Merge the write sets of blocks state_height+1..height into the state table."""
        with self._uncommitted_lock:
            blocks = [writes for h, writes in self._uncommitted if h <= height]
        w.put_merged("state", blocks)
        for h in range(self._state_height + 1, height + 1):  # a flushing block logged nothing
            w.delete("state_log", h)
        w.put("meta", writeback_log.STATE_HEIGHT, writeback_log.encode_height(height))
