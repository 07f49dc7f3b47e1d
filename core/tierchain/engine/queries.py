"""The chain's read paths: headers, blocks, receipts, transactions, state and proofs.

``Queries`` is the part of ``tierchain.engine.chain.Chain`` that reads committed data;
it never writes. Current state is the state table overlaid with the write sets of the
blocks committed but not yet flushed into it (``tierchain.state.log``): the overlay is
snapshotted BEFORE the read transaction begins (``_committed_overlays``), and the read
keeps the ones the transaction's state table does not hold yet (``_pending_in``), so a
read sees one committed height. Historic state and state proofs need the sparse Merkle
tree (``state_commitment = "smt"``); ``prove_tx`` builds the tx and receipt Merkle paths
that ``tierchain.proofs`` checks against a header (docs/proofs.md).

The methods read the chain's attributes (``store``, ``commitment``, ``suite``, ``apps``,
``_head``, ``_uncommitted``, ``_uncommitted_lock``) set by ``Chain.__init__``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from tierchain import limits, proofs
from tierchain.crypto import merkle
from tierchain.engine import apps as app_registry
from tierchain.engine.execute import nonce_key
from tierchain.engine.submission import CommittedBlock
from tierchain.state import log, tx_index
from tierchain.state.tree import StateUnavailable
from tierchain.wire.batch import decode_batch, row_bytes
from tierchain.wire.block import Header, Receipt

_U64 = struct.Struct("<Q")
scan_limit_max = 10_000  # pairs per Chain.state_scan call


class Queries:
    """Read paths of ``Chain`` (module docstring)."""

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
            loc = tx_index.locate(r, [tx_id])[0]
            if loc is None:
                return None
            height, pos = loc
            buf, receipts = r.get("blocks", height), r.get("receipts", height)
        b = decode_batch(buf, suite=self.suite)
        return height, pos, b.tx_bytes(pos), receipts[pos]

    def receipts_of(self, tx_ids: list[bytes]) -> list[tuple[int, Receipt] | None]:
        """(height, receipt) of each committed transaction (None: not committed), read at one
        committed height; each block's receipts decoded once, never the blocks themselves."""
        out: list[tuple[int, Receipt] | None] = []
        with self.store.read() as r:
            blocks: dict[int, list[Receipt]] = {}
            for loc in tx_index.locate(r, tx_ids):
                if loc is None:
                    out.append(None)
                    continue
                height, pos = loc
                if height not in blocks:
                    blocks[height] = r.get("receipts", height)
                out.append((height, blocks[height][pos]))
        return out

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
            found = r.get_many_raw("state", sorted(set(keys)), pending)  # one native call
        return [found.get(key) for key in keys]

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
            return log.scan(stored, self._pending_in(r, overlays), prefix, after, limit)

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
        flushed = log.flushed_height(r)
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
            loc = tx_index.locate(r, [tx_id])[0]
            if loc is None:
                return None
            height, pos = loc
            buf, receipts = r.get("blocks", height), r.get("receipts", height)
        batch = decode_batch(buf, suite=self.suite)
        ids = row_bytes(batch.digest)
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

    def prove_state_encoded(self, key: bytes) -> tuple[int, bytes, bytes | None, bytes]:
        """(height, header bytes, value, proof bytes) of ``key`` at the head, header and proof
        read at one height: what a client verifies with ``proofs.verify_state_encoded``."""
        with self.store.read() as r:
            height = r.last("headers")[0]
        proof = self.prove_state(key, height)
        return height, self.header(height).encode(), proof.value, proof.encode(suite=self.suite.name)

    def prove_tx_encoded(self, tx_id: bytes) -> tuple[int, bytes, bytes] | None:
        """(height, header bytes, proof bytes) of a committed transaction (None if unknown)."""
        proof = self.prove_tx(tx_id)
        return None if proof is None else (proof.height, self.header(proof.height).encode(), proof.encode())

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
