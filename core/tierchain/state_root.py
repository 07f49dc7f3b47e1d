"""Interim state commitment: a BLAKE3 chain over each block's sorted write set.

``state_root(h) = BLAKE3_derive(STATE_ROOT, state_root(h-1) || write_set_digest(h))``
where the write set digest hashes every written key in ascending order with its
new value or a deletion mark. It is deterministic and cheap, and proves nothing
about a single key; the authenticated-state issue replaces it with a sparse
Merkle tree whose root supports inclusion and non-inclusion proofs.
"""

from __future__ import annotations

import struct

import blake3

from tierchain import domains

GENESIS_PARENT = bytes(32)
_ENTRY = struct.Struct("<BBI")  # key length, present flag, value length


def write_set_digest(writes: dict[bytes, bytes | None]) -> bytes:
    h = blake3.blake3(derive_key_context=domains.WRITE_SET)
    for key in sorted(writes):
        value = writes[key]
        h.update(_ENTRY.pack(len(key), value is not None, 0 if value is None else len(value)))
        h.update(key)
        if value is not None:
            h.update(value)
    return h.digest()


def next_state_root(parent: bytes, writes: dict[bytes, bytes | None]) -> bytes:
    return blake3.blake3(parent + write_set_digest(writes), derive_key_context=domains.STATE_ROOT).digest()
