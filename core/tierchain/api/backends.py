"""What the network API stands in front of: one chain (a solo or a replicated node) or a
cluster of shards (docs/api.md, "Solo, replicated, cluster").

``NodeService`` speaks to a backend only: ``ChainBackend`` over a ``Chain`` (a replicated
node's ``ReplicaChain`` included: its submissions go through CometBFT) and
``ClusterBackend`` over a ``tierchain.sharding.cluster.Cluster``. Per-shard questions
(heads, blocks, nonces, streams) take a ``shard`` (always 0 on a chain); keyed questions
(state, proofs, scans) route by the key as the cluster routes writes; a transaction is found
on whichever shard holds it.
"""

from __future__ import annotations

import heapq
import time
from typing import Any

from tierchain.engine.route import route_keys
from tierchain.errors import TierChainError
from tierchain.wire.block import Header, Receipt


class NoSuchShard(TierChainError, LookupError):
    """A shard index outside the backend's."""


class ChainBackend:
    """One chain: shard 0 of 1."""

    n_shards = 1

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.apps, self.suite, self.chain_id = chain.apps, chain.suite, chain.config.chain_id

    def _one(self, shard: int) -> Any:
        if shard != 0:
            raise NoSuchShard(f"shard {shard}: this node serves one chain (shard 0)")
        return self.chain

    # per shard
    def height(self, shard: int = 0) -> int:
        return self._one(shard).height

    def head(self, shard: int = 0) -> Header:
        return self._one(shard).head()

    def header(self, height: int, shard: int = 0) -> Header | None:
        return self._one(shard).header(height)

    def receipts(self, height: int, shard: int = 0) -> list[Receipt] | None:
        return self._one(shard).receipts(height)

    def nonce(self, public_key: bytes, shard: int = 0) -> int:
        return self._one(shard).nonce(public_key)

    def wait_block(self, shard: int, after: int, timeout: float) -> None:
        """Return once the shard's height exceeds ``after`` or ``timeout`` passed."""
        sub = self._one(shard).subscribe()
        try:
            if self.chain.height <= after:
                try:
                    sub.get(timeout)
                except TierChainError:
                    pass  # lagged: the caller reads the height anyway
        finally:
            sub.close()

    # keyed / by id
    def submit(self, buf: bytes) -> Any:
        return self.chain.submit(buf)

    def tx(self, tx_id: bytes) -> tuple[int, int, int, bytes, Receipt] | None:
        """(shard, height, position, tx bytes, receipt) of a committed transaction."""
        hit = self.chain.tx(tx_id)
        return None if hit is None else (0, *hit)

    def receipts_of(self, tx_ids: list[bytes]) -> list[tuple[int, int, Receipt] | None]:
        """(shard, height, receipt) of each committed transaction (None: not committed)."""
        return [None if hit is None else (0, *hit) for hit in self.chain.receipts_of(tx_ids)]

    def state_get(self, key: bytes) -> bytes | None:
        return self.chain.state_get(key)

    def state_scan(self, prefix: bytes, limit: int, after: bytes = b"") -> list[tuple[bytes, bytes]]:
        return self.chain.state_scan(prefix, limit, after)

    def prove_state(self, key: bytes) -> tuple[int, bytes, bytes | None, bytes]:
        """(height, header bytes, value, proof bytes) at one committed height."""
        return self.chain.prove_state_encoded(key)

    def prove_tx(self, tx_id: bytes) -> tuple[int, bytes, bytes] | None:
        return self.chain.prove_tx_encoded(tx_id)

    def shard_of(self, key: bytes) -> int:
        return 0


class ClusterBackend:
    """A cluster's shards behind one API (the scheduler's process serves it)."""

    poll_s = 0.05  # a stream polls the shards' heights this often (no push from shards)

    def __init__(self, cluster: Any) -> None:
        from tierchain.engine.apps import resolve

        self.cluster, self.n_shards = cluster, cluster.n_shards
        self.apps, self.suite, self.chain_id = (
            resolve(cluster.base.apps),
            cluster.suite,
            cluster.base.chain_id,
        )

    def _check(self, shard: int) -> int:
        if not 0 <= shard < self.n_shards:
            raise NoSuchShard(f"shard {shard}: this cluster has shards 0..{self.n_shards - 1}")
        return shard

    def shard_of(self, key: bytes) -> int:
        return int(route_keys([key], self.n_shards, self.cluster.placement)[0])

    def height(self, shard: int = 0) -> int:
        return self.cluster.call(self._check(shard), "height")

    def head(self, shard: int = 0) -> Header:
        return self.cluster.call(self._check(shard), "head")

    def header(self, height: int, shard: int = 0) -> Header | None:
        return self.cluster.call(self._check(shard), "header", height)

    def receipts(self, height: int, shard: int = 0) -> list[Receipt] | None:
        return self.cluster.call(self._check(shard), "receipts", height)

    def nonce(self, public_key: bytes, shard: int = 0) -> int:
        return self.cluster.call(self._check(shard), "nonce", public_key)

    def wait_block(self, shard: int, after: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.height(shard) <= after and time.monotonic() < deadline:
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))

    def submit(self, buf: bytes) -> Any:
        return self.cluster.submit(buf)

    def tx(self, tx_id: bytes) -> tuple[int, int, int, bytes, Receipt] | None:
        hit = self.cluster.tx(tx_id)
        return None if hit is None else (hit[0], *hit[1])

    def receipts_of(self, tx_ids: list[bytes]) -> list[tuple[int, int, Receipt] | None]:
        out: list[tuple[int, int, Receipt] | None] = [None] * len(tx_ids)
        for s in range(self.n_shards):
            missing = [i for i, hit in enumerate(out) if hit is None]
            if not missing:
                break
            for i, hit in zip(
                missing, self.cluster.call(s, "receipts_of", [tx_ids[i] for i in missing]), strict=True
            ):
                if hit is not None:
                    out[i] = (s, *hit)
        return out

    def state_get(self, key: bytes) -> bytes | None:
        return self.cluster.call(self.shard_of(key), "state_get", key)

    def state_scan(self, prefix: bytes, limit: int, after: bytes = b"") -> list[tuple[bytes, bytes]]:
        """The first ``limit`` pairs under ``prefix`` after ``after`` across every shard (a
        replicated table's copies counted once: the primary's)."""
        pages = [self.cluster.call(s, "state_scan", prefix, limit, after) for s in range(self.n_shards)]
        out: list[tuple[bytes, bytes]] = []
        for k, v in heapq.merge(*pages, key=lambda kv: kv[0]):  # stable: shard 0 (the primary) first
            if out and out[-1][0] == k:
                continue  # a replicated record: every shard holds it
            out.append((k, v))
            if len(out) == limit:
                break
        return out

    def prove_state(self, key: bytes) -> tuple[int, bytes, bytes | None, bytes]:
        return self.cluster.call(self.shard_of(key), "prove_state_encoded", key)

    def prove_tx(self, tx_id: bytes) -> tuple[int, bytes, bytes] | None:
        for s in range(self.n_shards):
            hit = self.cluster.call(s, "prove_tx_encoded", tx_id)
            if hit is not None:
                return hit
        return None
