"""Admission: from submitted bytes to transactions waiting for a block.

``Mempool.admit`` takes one decoded batch and gives every row a code. All checks
that touch every transaction run as whole-column numpy operations or one native
call (decode, chain/shard, expiry, reserved keys, batch signature verification,
in-batch duplicates). What is left per transaction is bookkeeping on the
survivors — sender nonce sequencing and the pending-id set — under one lock.

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

from tierchain.crypto.suite import CryptoSuite
from tierchain.engine import route
from tierchain.engine.apps import ADMISSION_CODES, BatchCheck
from tierchain.errors import InvariantViolation, Reject
from tierchain.wire.batch import Batch, row_bytes


@dataclasses.dataclass
class Chunk:
    """Accepted rows of one submitted batch, in submission order.

    The decoded columns travel with them (``batch``, ``rows``) to the block, which
    gathers them (``batch.gather``) instead of decoding again; so do the tx ids and
    senders as ``bytes``, split once here (the executor's and ``done``'s).
    """

    batch: Batch
    rows: np.ndarray  # int64 row indices into batch
    ticket: Any  # the chain.Submission to notify
    ids: list[bytes]  # tx id of each row
    senders: list[bytes]  # sender public key of each row

    def split(self, n: int) -> Chunk:
        """Take the first ``n`` rows off this chunk and return them as a chunk."""
        head = Chunk(self.batch, self.rows[:n], self.ticket, self.ids[:n], self.senders[:n])
        self.rows, self.ids, self.senders = self.rows[n:], self.ids[n:], self.senders[n:]
        return head


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
        self._size = 0  # admitted, not yet committed (``done``)
        self._waiting = 0  # admitted, not yet taken into a block
        self._closed = False  # set by close(): nothing more is admitted
        # sender -> [committed nonce, pending count], only for senders with pending txs.
        # Cached here, not re-read from state, because between a block's commit and
        # ``done`` the state is ahead of the pending counts.
        self._pending: dict[bytes, list[int]] = {}
        self._pending_ids: set[bytes] = set()

    def __len__(self) -> int:
        return self._size

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
        accepted: list[int] = []
        accepted_ids: list[bytes] = []
        accepted_senders: list[bytes] = []
        with self._lock:
            if self._closed:
                # Checked under the same lock that queues rows: once close() returns, no
                # row can join a mempool that the producer has stopped draining.
                codes[idx] = Reject.SHUTTING_DOWN
                idx = idx[:0]
            # Per-transaction bookkeeping on the survivors only. The committed nonces of
            # senders without pending txs are read in one lookup (one read txn), under
            # the lock like the pending counts they pair with.
            rows, nonces = idx.tolist(), batch.nonce[idx].tolist()
            senders, ids = (row_bytes(col[idx]) for col in (batch.sender, batch.digest))
            fresh = list(dict.fromkeys(s for s in senders if s not in self._pending))
            committed_of = dict(zip(fresh, self._committed_nonces(fresh), strict=True)) if fresh else {}
            for i, sender, tx_id, nonce in zip(rows, senders, ids, nonces, strict=True):
                if tx_id in self._pending_ids:
                    codes[i] = Reject.DUPLICATE
                    continue
                entry = self._pending.get(sender)
                if entry is None:
                    entry = [committed_of[sender], 0]
                committed, pending = entry
                expected = committed + pending
                if nonce != expected:
                    codes[i] = Reject.NONCE_TOO_LOW if nonce < expected else Reject.NONCE_TOO_HIGH
                elif self._size >= self.txs_max:
                    codes[i] = Reject.MEMPOOL_FULL
                elif pending >= self.sender_pending_max:
                    codes[i] = Reject.SENDER_LIMIT
                else:
                    entry[1] = pending + 1
                    self._pending[sender] = entry
                    self._pending_ids.add(tx_id)
                    self._size += 1
                    accepted.append(i)
                    accepted_ids.append(tx_id)
                    accepted_senders.append(sender)
            if accepted:
                self._waiting += len(accepted)
                ticket._expect(len(accepted))
                accepted_rows = np.asarray(accepted, np.int64)
                self._chunks.append(Chunk(batch, accepted_rows, ticket, accepted_ids, accepted_senders))
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

    def done(self, chunks: list[Chunk]) -> None:
        """The chunks' transactions are committed: their nonces now live in state."""
        # Per sender, not per transaction: a block often holds many txs of one sender.
        senders: collections.Counter[bytes] = collections.Counter()
        ids: list[bytes] = []
        for chunk in chunks:
            senders.update(chunk.senders)
            ids.extend(chunk.ids)
        with self._lock:
            pending = self._pending
            for sender, count in senders.items():
                entry = pending[sender]
                entry[0] += count
                entry[1] -= count
                if not entry[1]:
                    del pending[sender]
            self._pending_ids.difference_update(ids)
            self._size -= len(ids)
