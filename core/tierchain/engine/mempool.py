"""Admission: from submitted bytes to transactions waiting for a block.

``Mempool.admit`` takes one decoded batch and gives every row a code. All checks
that touch every transaction run as whole-column numpy operations or one native
call (decode, chain/shard, expiry, reserved keys, batch signature verification,
in-batch duplicates). The bookkeeping on the survivors — sender nonce
sequencing and the pending-id set — is one native call (``tierchain_native.NonceBook``)
under one lock; so is its undoing when a block commits (``done``).

Nonces: a sender's transactions must arrive in nonce order; the next accepted
nonce is the committed one plus the sender's pending count. Ahead of it is
``NONCE_TOO_HIGH``, behind it ``NONCE_TOO_LOW`` (or ``DUPLICATE`` for an id that
is already pending). So a committed transaction can never be admitted again.

Bounds: ``mempool_txs_max`` in all (``MEMPOOL_FULL``: explicit backpressure,
the submitter retries later) and ``sender_pending_max`` per sender.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import tierchain_native

from tierchain.crypto.suite import CryptoSuite
from tierchain.engine import route
from tierchain.engine.apps import ADMISSION_CODES, BatchCheck
from tierchain.errors import InvariantViolation, Reject
from tierchain.wire.batch import Batch, split_rows


@dataclasses.dataclass
class Chunk:
    """Accepted rows of one submitted batch, in submission order.

    The decoded columns travel with them (``batch``, ``rows``) to the block, which
    gathers them (``batch.gather``) instead of decoding again.
    """

    batch: Batch
    rows: np.ndarray  # int64 row indices into batch
    ticket: Any  # the chain.Submission to notify

    def split(self, n: int) -> Chunk:
        """Take the first ``n`` rows off this chunk and return them as a chunk."""
        head = Chunk(self.batch, self.rows[:n], self.ticket)
        self.rows = self.rows[n:]
        return head


# NonceBook.admit's (and NonceSequencer.check's) verdicts (0..5) as admission codes.
VERDICT_CODES = np.array([
    Reject.OK, Reject.DUPLICATE, Reject.NONCE_TOO_LOW,
    Reject.NONCE_TOO_HIGH, Reject.MEMPOOL_FULL, Reject.SENDER_LIMIT,
])  # fmt: skip


def screen(
    batch: Batch,
    next_height: int,
    *,
    chain_id: int,
    suite: CryptoSuite,
    shard_index: int = 0,
    shard_count: int = 1,
    placement: route.Placement | None = None,
    verify: bool | np.ndarray = True,
    checks: tuple[BatchCheck, ...] = (),
) -> np.ndarray:
    """The checks of admission that need no state: a code per row of ``batch`` (0 = passed).

    Decode, chain and shard, expiry against ``next_height``, reserved keys, the batch's
    signatures (``verify``: all rows, none, or the rows of a boolean mask), the apps'
    batch checks (``checks``: ``AppSet.checks``, e.g. zero-knowledge proofs; on the same
    rows as signatures) and duplicates inside the batch, among the rows whose signatures
    held (a tx id does not cover the signature: a forged copy must not shadow the real
    one): whole-column operations and one native call per kind of check.
    ``Mempool.admit`` and a replicated node's CheckTx and ProcessProposal
    (``tierchain.replication``) run the same checks through here.
    """
    codes = batch.code.copy()
    ok = codes == Reject.OK
    codes[ok & (batch.chain_id != chain_id)] = Reject.WRONG_CHAIN
    codes[(codes == 0) & (batch.shard_id != 0)] = Reject.WRONG_SHARD
    # A shard of a cluster: only keys it owns; any chain: no replication op on the primary.
    if shard_count > 1 or route.replication_writers(placement):
        owned = route.writes_on(batch, shard_index, shard_count, placement)
        codes[(codes == 0) & ~owned] = Reject.WRONG_SHARD
    codes[(codes == 0) & (batch.expires_at != 0) & (batch.expires_at < next_height)] = Reject.EXPIRED
    if len(batch.key_start):
        buf = np.frombuffer(batch.buf, np.uint8)
        reserved_key = buf[batch.key_start] == 0
        if reserved_key.any():
            row_of_key = np.repeat(np.arange(len(batch)), batch.n_read.astype(np.int64) + batch.n_write)
            bad_rows = np.unique(row_of_key[reserved_key])
            codes[bad_rows[codes[bad_rows] == 0]] = Reject.RESERVED_KEY
    check = codes == 0
    if not isinstance(verify, bool):
        check &= verify
    elif not verify:
        check[:] = False
    if (vidx := np.flatnonzero(check)).size:
        valid = np.frombuffer(
            suite.verify_batch_packed(
                batch.sender[vidx].tobytes(), batch.digest[vidx].tobytes(), batch.signature[vidx].tobytes()
            ),
            np.uint8,
        )
        codes[vidx[valid == 0]] = Reject.BAD_SIGNATURE
    run_checks(batch, codes, check, checks, suite)
    idx = np.flatnonzero(codes == 0)
    if len(idx) > 1:
        ids = np.ascontiguousarray(batch.digest[idx]).view(f"V{batch.digest.shape[1]}").ravel()
        _, first = np.unique(ids, return_index=True)
        dup = np.ones(len(idx), bool)
        dup[first] = False
        codes[idx[dup]] = Reject.DUPLICATE
        idx = idx[~dup]
    return codes


def run_checks(
    batch: Batch,
    codes: np.ndarray,
    candidates: np.ndarray,
    checks: tuple[BatchCheck, ...],
    suite: CryptoSuite,
) -> None:
    """The apps' batch checks (``BatchCheck``) on the ``candidates`` rows still at code 0,
    one call per check on a chain of ``suite``; their refusals written into ``codes`` (in place)."""
    for bc in checks:
        rows = np.flatnonzero(candidates & (codes == 0) & np.isin(batch.op, tuple(bc.ops)))
        if not rows.size:
            continue
        got = np.asarray(bc.check(batch, rows, suite))
        if got.shape != rows.shape or not set(np.unique(got).tolist()) <= ADMISSION_CODES | {0}:
            raise InvariantViolation(
                f"batch check {bc.name or bc.check!r} answered {got.shape} codes for {rows.size} rows, "
                f"or a code outside 0 and the engine's admission codes"
            )
        codes[rows] = got


class Mempool:
    def __init__(
        self,
        *,
        chain_id: int,
        txs_max: int,
        sender_pending_max: int,
        committed_nonces: Callable[[list[bytes]], list[int]],
        suite: CryptoSuite,
        shard_index: int = 0,
        shard_count: int = 1,
        placement: route.Placement | None = None,
        checks: tuple[BatchCheck, ...] = (),
    ) -> None:
        self.chain_id, self.txs_max, self.sender_pending_max = chain_id, txs_max, sender_pending_max
        self.checks = checks  # the chain's apps' batch checks (``AppSet.checks``)
        self.shard_index, self.shard_count = shard_index, shard_count
        # The chain's apps' placement rules (``AppSet.placement``; None: the built-in
        # apps'): a shard admits a transaction only if they put its writes here.
        self.placement = placement
        self._committed_nonces = committed_nonces
        self.suite = suite  # the chain's: verifies every admitted signature
        self._lock = threading.Lock()
        self._chunks: collections.deque[Chunk] = collections.deque()
        self._waiting = 0  # admitted, not yet taken into a block
        self._closed = False  # set by close(): nothing more is admitted
        # Per sender with pending txs, its committed nonce and pending count; and the
        # pending tx ids (admitted, not yet committed: ``done``). The committed nonce is
        # kept here, not re-read from state, because between a block's commit and
        # ``done`` the state is ahead of the pending counts.
        self._book = tierchain_native.NonceBook(
            suite.public_key_bytes, suite.digest_bytes, txs_max, sender_pending_max
        )

    def __len__(self) -> int:
        return len(self._book)

    @property
    def waiting(self) -> int:
        """Transactions not yet taken into a block (``len`` also counts those in blocks
        that are executed but not committed yet)."""
        return self._waiting

    def admit(self, batch: Batch, next_height: int, ticket: Any) -> np.ndarray:
        """Codes for every row of ``batch`` (0 = accepted); accepted rows are queued."""
        codes = screen(
            batch,
            next_height,
            chain_id=self.chain_id,
            suite=self.suite,
            shard_index=self.shard_index,
            shard_count=self.shard_count,
            placement=self.placement,
            checks=self.checks,
        )
        idx = np.flatnonzero(codes == 0)
        with self._lock:
            if self._closed:
                # Checked under the same lock that queues rows: once close() returns, no
                # row can join a mempool that the producer has stopped draining.
                codes[idx] = Reject.SHUTTING_DOWN
                return codes
            if not idx.size:
                return codes
            # The committed nonces of senders without pending txs are read in one lookup
            # (one read txn), under the lock like the pending counts they pair with.
            senders, ids = batch.sender[idx].tobytes(), batch.digest[idx].tobytes()
            fresh = self._book.unknown(senders)
            committed = self._committed_nonces(split_rows(fresh, batch.sender.shape[1])) if fresh else []
            verdicts = self._book.admit(senders, ids, batch.nonce[idx], fresh, np.array(committed, np.uint64))
            verdict = np.frombuffer(verdicts, np.uint8)
            codes[idx] = VERDICT_CODES[verdict]
            accepted = idx[verdict == 0]
            if accepted.size:
                self._waiting += len(accepted)
                ticket._expect(len(accepted))
                self._chunks.append(Chunk(batch, accepted, ticket))
        return codes

    def close(self) -> None:
        """Admit nothing more; what is already queued is still taken and committed."""
        with self._lock:
            self._closed = True

    def take(self, txs_max: int) -> list[Chunk]:
        """Up to ``txs_max`` transactions, oldest first (they stay pending until ``done``)."""
        out, n = [], 0
        with self._lock:
            while self._chunks and n < txs_max:
                chunk = self._chunks[0]
                room = txs_max - n
                if len(chunk.rows) <= room:
                    out.append(self._chunks.popleft())
                    n += len(chunk.rows)
                else:
                    out.append(chunk.split(room))
                    n += room
            self._waiting -= n
        return out

    def done(self, block: Batch) -> None:
        """The block's transactions are committed: their nonces now live in state."""
        with self._lock:
            self._book.done(block.sender.tobytes(), block.digest.tobytes())
