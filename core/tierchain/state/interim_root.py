"""Interim state commitment: a BLAKE3 chain over each block's sorted write set.

Selected by ``[chain] state_commitment = "interim"`` (benchmarks only).

``state_root(h) = BLAKE3_derive(STATE_ROOT, state_root(h-1) || write_set_digest(h))``
where the write set digest hashes every written key in ascending order with its
new value or a deletion mark. It is deterministic and cheap, and proves nothing
about a single key. Chains use the sparse Merkle tree (``tierchain.state.tree``)
by default; this commitment stays selectable so benchmarks can measure what the
authenticated state costs. The hash is the chain's crypto suite's (``suite=``,
default ``ED25519_BLAKE3``), in its ``write_set`` and ``state_root`` domains.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from tierchain.crypto.suite import ED25519_BLAKE3, CryptoSuite

GENESIS_PARENT = bytes(32)
_ENTRY = struct.Struct("<BBI")  # key length, present flag, value length


def write_set_digest(writes: dict[bytes, bytes | None], *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    return write_set_digest_sorted(((key, writes[key]) for key in sorted(writes)), suite=suite)


def write_set_digest_sorted(
    items: Iterable[tuple[bytes, bytes | None]], *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """Same digest from (key, value) pairs already in ascending key order (chunked genesis)."""
    # Incremental: genesis streams millions of entries through here.
    h = suite.hasher(suite.contexts.write_set)
    for key, value in items:
        h.update(_ENTRY.pack(len(key), value is not None, 0 if value is None else len(value)))
        h.update(key)
        if value is not None:
            h.update(value)
    return h.digest()


def next_state_root(
    parent: bytes, writes: dict[bytes, bytes | None], *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    return root_from_digest(parent, write_set_digest(writes, suite=suite), suite=suite)


def root_from_digest(parent: bytes, digest: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    return suite.hash(suite.contexts.state_root, parent + digest)
