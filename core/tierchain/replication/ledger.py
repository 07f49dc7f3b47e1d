"""The engine's chain with its blocks decided by CometBFT instead of made by a producer thread.

``ReplicaChain`` is ``tierchain.engine.chain.Chain`` opened without its producer: the
ABCI application (``tierchain.replication.app``) hands it each decided block —
``finalize`` runs the one state transition (``Pipeline._execute``, then the commitment's
``prepare``) and makes the block's header; ``commit`` writes block, receipts, header,
tree records and state in one LMDB write transaction (``Pipeline._execute_and_commit``),
exactly as a solo block is written. Every read path (``Queries``: state, proofs,
receipts, headers, lineage) is the solo chain's.

Headers. Every node must make the SAME header for a height, because its hash is the app
hash CometBFT's validators sign (docs/replication.md, "Headers and the app hash"). So:
``timestamp_ms`` is the CometBFT block's time, ``proposer`` is the public key of the
validator that proposed the block, and the genesis header's proposer is all zeros (no
node's). The signature is this node's own (its ``node.key``): it says "this node executed
this header", is not part of the hash, and is what ``tierchain verify`` checks against
the database's recorded key. The database records mode ``cometbft`` at genesis, so a solo
``Chain`` never opens it, nor this class a solo chain's.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from tierchain.config import ChainConfig
from tierchain.crypto import KeyPair
from tierchain.engine import apps as app_registry
from tierchain.engine.chain import Chain, ChainError
from tierchain.engine.pipeline import _Executed
from tierchain.engine.submission import CommittedBlock, Submission
from tierchain.errors import InvariantViolation, Reject, RejectedError
from tierchain.wire.batch import Batch
from tierchain.wire.block import Header, Receipt
from tierchain.wire.tx import frame

COMETBFT = "cometbft"


class ReplicaChain(Chain):
    """A chain whose blocks CometBFT decides (module docstring). Not thread-safe for
    writers: one caller (the ABCI consensus connection) calls ``finalize`` and ``commit``."""

    mode = COMETBFT

    def __init__(
        self,
        path: str | Path,
        config: ChainConfig,
        node_key: KeyPair,
        *,
        state_keep_heights: int | None = None,
        apps: Iterable[app_registry.App] = (),
    ) -> None:
        super().__init__(
            path, config, node_key, start=False, state_keep_heights=state_keep_heights, apps=apps
        )
        self._finalized: _Executed | None = None
        # finalize / commit / close, one at a time: a node stopping never closes the database
        # under a block being executed or written.
        self._consensus_lock = threading.Lock()
        # Where ``submit`` sends a batch (``tierchain.replication.submit.Forwarder.submit``);
        # None: this node takes no transactions (an observer, or no CometBFT RPC yet).
        self.submitter: Callable[[bytes], Submission] | None = None

    def submit(self, txs: bytes | Iterable[bytes]) -> Submission:
        """Forward a batch to CometBFT's mempool (``submitter``); codes now, receipts at commit."""
        buf = txs if isinstance(txs, bytes | bytearray | memoryview) else frame(list(txs))
        if self.submitter is None:
            raise RejectedError(Reject.READ_ONLY, "this node takes no transactions")
        return self.submitter(bytes(buf))

    def start(self) -> None:
        raise ChainError("a replicated chain has no producer: CometBFT decides its blocks")

    def _genesis_proposer(self) -> bytes:
        return bytes(self.suite.public_key_bytes)

    def _seal(self, header: Header) -> Header:
        """This node's signature over the header's hash (module docstring)."""
        return dataclasses.replace(header, signature=self.suite.sign(self.proposer, header.hash(self.suite)))

    @property
    def finalized(self) -> Header | None:
        """The header of the block finalized and not yet committed, if any."""
        return None if self._finalized is None else self._finalized.header

    def finalize(
        self, batch: Batch, height: int, timestamp_ms: int, proposer: bytes
    ) -> tuple[Header, list[Receipt]]:
        """Execute the decided block ``batch`` at ``height``; its header (not yet durable)."""
        if self._finalized is not None:
            raise ChainError(f"block {self._finalized.height} is finalized and not committed")
        if height != self._head.height + 1:
            raise ChainError(f"block {height} decided, the chain is at {self._head.height}")
        if len(proposer) != self.suite.public_key_bytes:
            raise ChainError(f"proposer key of {len(proposer)} bytes")
        if not batch.ok.all():
            # ProcessProposal refuses such a block, so 2/3 of the voting power never decides one.
            raise InvariantViolation(
                "a decided block holds a transaction that does not decode", height=height
            )
        if timestamp_ms < self._head.timestamp_ms:
            raise InvariantViolation("a decided block's time is before its parent's", height=height)
        ex = self._execute([], batch, height, timestamp_ms)
        self._prepare_tree(ex)
        ex.header = self._block_header(ex, self._head, proposer)
        self._finalized = ex
        return ex.header, ex.result.receipts

    def commit_meta(self, name: str, value: bytes) -> None:
        """Commit the meta record ``name`` with the finalized block, in its write txn."""
        if self._finalized is None:
            raise ChainError("no finalized block")
        self._finalized.meta = {**(self._finalized.meta or {}), name: value}

    def commit(self) -> Header:
        """Make the finalized block durable: it is the head once this returns."""
        with self._consensus_lock:
            return self._commit()

    def _commit(self) -> Header:
        ex = self._finalized
        if ex is None:
            raise ChainError("commit without a finalized block")
        header, receipts = self._execute_and_commit(ex)
        self._committed_block(ex, header)
        self._finalized = None
        self._publish(CommittedBlock(header, receipts))
        return header

    def close(self, timeout: float = 30.0) -> None:
        """Close the database (once a block being executed or written is done); a finalized,
        uncommitted block is dropped (CometBFT replays it)."""
        if not self._consensus_lock.acquire(timeout=timeout):
            raise ChainError(f"a block still executing or committing after {timeout} s; database left open")
        try:
            self._close(timeout)
        finally:
            self._consensus_lock.release()

    def _close(self, timeout: float) -> None:
        if self._finalized is not None:
            with self._uncommitted_lock:
                self._uncommitted = type(self._uncommitted)(
                    (h, w) for h, w in self._uncommitted if h != self._finalized.height
                )
            self._finalized = None
        super().close(timeout)
