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
or, with ``tree_stage = "thread"`` (the default with two cores or more), hands the
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
Merkle tree (``tierchain.state.tree``, Rust in ``ext/rust/src/smt/``) unless the
chain says ``"interim"``, written in the block's write transaction; its root is
the header's ``state_root``. ``state_get(key, height)`` reads any retained
height, ``prove_state`` / ``prove_tx`` give proofs that ``tierchain.proofs``
checks against a header without trusting this node (docs/proofs.md).

This module is the facade that wires the engine's parts into one ``Chain``:

* ``tierchain.engine.submission``: ``Submission`` (codes now, receipts at commit, the
  asyncio bridge), ``Subscription``, ``CommittedBlock`` and the errors callers get;
* ``tierchain.engine.pipeline``: ``Pipeline``, the producer, tree and committer threads,
  their queues, the state flush, and what a stage's failure does;
* ``tierchain.engine.queries``: ``Queries``, the read paths (state, nonces, scans,
  transactions, receipts, headers, proofs) over the state table and its overlays;
* here: opening (genesis, resuming at the head, the state log), ``submit``,
  subscriptions and ``close``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

import tierchain_native

from tierchain.config import ChainConfig
from tierchain.crypto import KeyPair, suite_of
from tierchain.engine import apps as app_registry
from tierchain.engine import transition
from tierchain.engine.mempool import Mempool
from tierchain.engine.pipeline import BlockTiming, Pipeline, timings_kept
from tierchain.engine.queries import Queries, scan_limit_max
from tierchain.engine.submission import (
    ChainError,
    CommittedBlock,
    Submission,
    SubscriberLagged,
    Subscription,
    subscriber_queue_max,
)
from tierchain.errors import Reject, RejectedError, TierChainError
from tierchain.state import log as writeback_log
from tierchain.state.commitment import commitment_of
from tierchain.state.storage import Store
from tierchain.wire.batch import decode_batch
from tierchain.wire.block import ZERO_HASH, Header
from tierchain.wire.tx import frame

__all__ = [
    "BlockTiming",
    "Chain",
    "ChainError",
    "CommittedBlock",
    "Submission",
    "SubscriberLagged",
    "Subscription",
    "scan_limit_max",
    "subscriber_queue_max",
    "timings_kept",
]

log = logging.getLogger("tierchain.chain")
# tree_stage = "auto": the tree gets its own thread when the native pool has this many
# threads (the cores): closed loop at 10k accounts +20% TPS on two cores, -2 to -5% on one
# (docs/operations.md).
tree_thread_min_cores = 2


SOLO = "solo"


def stored_mode(store: Store) -> str:
    """How the chain in ``store`` makes blocks: ``solo`` (this module) or ``cometbft``
    (``tierchain.replication``); recorded at genesis, so neither opens the other's."""
    with store.read() as r:
        mode = r.get("meta", "mode")
    return SOLO if mode is None else mode.decode()


class Chain(Pipeline, Queries):
    """Open (and, on first use, create) the chain stored at ``path``.

    ``state_keep_heights``: state versions kept for historic reads and proofs
    (0 = every height; K = the last K heights, older ones raise ``StatePruned``);
    defaults to ``config.state_keep_heights`` (``[node]`` in chain.toml).
    """

    mode = SOLO  # how blocks are made (``stored_mode``); a replicated chain's is "cometbft"

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
        if proposer.suite_name != self.suite.name:
            raise ChainError(
                f"the node's key is a {proposer.suite_name} key; this chain runs the {self.suite.name} suite"
            )
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
                flushed = writeback_log.flushed_height(r)
                try:
                    pending = writeback_log.pending(r)
                except (ValueError, TierChainError) as exc:  # checksum, codec, or a gap
                    raise ChainError(f"state log damaged: {exc}") from exc
            if flushed is None:  # a database from before the state log: its table is current
                with self.store.write() as w:
                    w.put("meta", writeback_log.STATE_HEIGHT, writeback_log.encode_height(self._head.height))
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
            checks=self.apps.checks,
        )
        self._wake = threading.Condition()
        self._stopping = False
        self._subscribers: list[Subscription] = []
        self._sub_lock = threading.Lock()
        stage = config.tree_stage
        if stage == "auto":
            stage = "thread" if tierchain_native.thread_count() >= tree_thread_min_cores else "inline"
        threaded = self.commitment.threadable and stage == "thread"
        self._init_pipeline(pending, flushed, threaded)
        if self.commitment.proves:  # a stored tree: how many threads build a block's new tree
            self.commitment.tree.workers = config.tree_workers or (
                tierchain_native.thread_count() if threaded else 1
            )
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
            if (mode := stored_mode(self.store)) != self.mode:
                raise ChainError(f"database is a {mode} chain's, not a {self.mode} one's")
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
                proposer=self._genesis_proposer(),
            )
            header = self._seal(header)
            w.put("meta", "genesis", genesis)
            if self.mode != SOLO:  # a solo chain's database has no mode (those made before modes, too)
                w.put("meta", "mode", self.mode.encode())
            w.put("meta", "proposer", self.proposer.public_key)
            w.put("meta", writeback_log.STATE_HEIGHT, writeback_log.encode_height(0))
            w.put("headers", 0, header)
            w.put("blocks", 0, b"")
            w.put("receipts", 0, [])

    def _genesis_proposer(self) -> bytes:
        """The genesis header's proposer: a solo chain's is its node (a replicated one's
        is no node's, so that every node's genesis header is the same one)."""
        return self.proposer.public_key

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

    def submit(self, txs: bytes | Iterable[bytes], *, tx_ids: bytes | None = None) -> Submission:
        """Admit a batch: a framed buffer (``wire.frame``) or encoded transactions.

        ``tx_ids``: every row's id, packed, computed from these very bytes by a decoder
        this process trusts (a cluster's scheduler over its own pipe: sharding/link.py,
        "Trust"); they are used instead of hashing again (``wire.batch.decode_batch``)."""
        buf = txs if isinstance(txs, bytes | bytearray | memoryview) else frame(list(txs))
        if self._stopping or self.error is not None:
            raise RejectedError(
                Reject.SHUTTING_DOWN, "chain is closing" if self._stopping else repr(self.error)
            )
        batch = decode_batch(buf, suite=self.suite, tx_ids=tx_ids)
        ticket = Submission(batch)
        codes = self.mempool.admit(batch, self._head.height + 1, ticket)
        if (codes == 0).any():
            with self._wake:
                self._wake.notify()
        ticket._admitted(codes)
        return ticket

    async def submit_async(self, txs: bytes | Iterable[bytes]) -> Submission:
        return await asyncio.get_running_loop().run_in_executor(None, self.submit, txs)

    # --- subscriptions ----------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """``close()`` has begun: no new submissions are taken."""
        return bool(self._stopping)

    @property
    def producing(self) -> bool:
        """This chain's block producer thread runs (a solo chain; a replica has none)."""
        return self._producer is not None and self._producer.is_alive()

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
