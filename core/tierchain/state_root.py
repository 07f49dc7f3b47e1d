"""Interim state commitment: a BLAKE3 chain over each block's sorted write set.

Selected by ``[chain] state_commitment = "interim"`` (benchmarks only).

``state_root(h) = BLAKE3_derive(STATE_ROOT, state_root(h-1) || write_set_digest(h))``
where the write set digest hashes every written key in ascending order with its
new value or a deletion mark. It is deterministic and cheap, and proves nothing
about a single key. Chains use the sparse Merkle tree (``tierchain.state_tree``)
by default; this commitment stays selectable so benchmarks can measure what the
authenticated state costs.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import blake3

from tierchain import domains

GENESIS_PARENT = bytes(32)
_ENTRY = struct.Struct("<BBI")  # key length, present flag, value length


def write_set_digest(writes: dict[bytes, bytes | None]) -> bytes:
    return write_set_digest_sorted((key, writes[key]) for key in sorted(writes))


def write_set_digest_sorted(items: Iterable[tuple[bytes, bytes | None]]) -> bytes:
    """Same digest from (key, value) pairs already in ascending key order (chunked genesis)."""
    h = blake3.blake3(derive_key_context=domains.WRITE_SET)
    for key, value in items:
        h.update(_ENTRY.pack(len(key), value is not None, 0 if value is None else len(value)))
        h.update(key)
        if value is not None:
            h.update(value)
    return h.digest()


def next_state_root(parent: bytes, writes: dict[bytes, bytes | None]) -> bytes:
    return root_from_digest(parent, write_set_digest(writes))


def root_from_digest(parent: bytes, digest: bytes) -> bytes:
    return blake3.blake3(parent + digest, derive_key_context=domains.STATE_ROOT).digest()
