"""Write-back of the flat ``state`` table: a logged write set per block, a flush every K blocks.

The ``state`` table (current value of every key, for reads and the executor's
prefetch) is derived data: the state tree's leaf records and the blocks hold the
same facts. Writing it every block costs one LMDB page per written key whose page
the block has not already dirtied, and at small and medium states (where a block's
keys share pages with the next blocks' keys: hot accounts, nonces of busy senders)
those pages are most of what a block's commit writes and fsyncs. So a block's
commit appends its write set, packed, to ``state_log`` (one sequential record),
and every ``state_flush_blocks``-th block (or earlier, once the pending write sets
hold ``pending_writes_max`` writes) merges the pending write sets into ``state``,
deletes their log records and moves ``meta[state_height]`` to its own height, all
in that block's write transaction.

Invariant: in every committed LMDB snapshot, ``state`` holds the state after block
``state_height`` and ``state_log`` holds exactly the write sets of blocks
``state_height + 1 ..= head``. The current state is ``state`` overlaid with those
write sets in height order; a reader (this module for offline tools, the chain's
in-memory copy of the same write sets for a running node) applies them. After a
crash nothing is replayed: opening the chain loads the log into memory.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping, Sequence

import msgpack

STATE_HEIGHT = "state_height"  # meta key: the height the ``state`` table reflects
pending_writes_max = 1 << 14  # flush early once the pending write sets hold this many writes

_U64BE = struct.Struct(">Q")

Writes = Mapping[bytes, bytes | None]  # one block's write set: None deletes the key


def encode(writes: Writes) -> bytes:
    return msgpack.packb(list(writes.items()), use_bin_type=True)


def decode(blob: bytes) -> dict[bytes, bytes | None]:
    pairs = msgpack.unpackb(blob, use_list=False, raw=False)
    out = dict(pairs)
    if len(out) != len(pairs) or not all(
        type(k) is bytes and (v is None or type(v) is bytes) for k, v in out.items()
    ):
        raise ValueError("state_log record is not a write set")
    return out


def encode_height(height: int) -> bytes:
    return _U64BE.pack(height)


def flushed_height(r) -> int | None:
    """``meta[state_height]`` in the read txn ``r`` (None: a database from before the log)."""
    raw = r.get("meta", STATE_HEIGHT)
    return None if raw is None else _U64BE.unpack(raw)[0]


def pending(r) -> list[tuple[int, dict[bytes, bytes | None]]]:
    """(height, write set) of every block committed after ``state_height``, oldest first."""
    sh = flushed_height(r)
    if sh is None:
        return []
    out = [(h, decode(blob)) for h, blob in r.items("state_log", sh + 1)]
    if [h for h, _ in out] != list(range(sh + 1, sh + 1 + len(out))):
        raise ValueError(f"state_log is not contiguous after state_height {sh}")
    return out


def lookup(overlays: Sequence[Writes], key: bytes, stored: Callable[[bytes], bytes | None]) -> bytes | None:
    """The current value of ``key``: the newest overlay holding it, else ``stored(key)``."""
    for writes in reversed(overlays):
        if key in writes:
            return writes[key]
    return stored(key)


def reader(r) -> Callable[[bytes], bytes | None]:
    """``get(key)`` of the current state in read txn ``r`` (for tools that open the database)."""
    overlays = [w for _, w in pending(r)]
    return lambda key: lookup(overlays, key, lambda k: r.get("state", k))


def current_items(r) -> dict[bytes, bytes]:
    """The whole current state in read txn ``r`` (verification)."""
    state = dict(r.items("state"))
    for _, writes in pending(r):
        for k, v in writes.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
    return state


def scan(
    stored: Iterator[tuple[bytes, bytes]],
    overlays: Sequence[Writes],
    prefix: bytes,
    after: bytes,
    limit: int,
) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` current (key, value) pairs with ``prefix``, keys > ``after``, in key order.

    ``stored`` iterates the ``state`` table in key order from the first candidate key;
    the overlays' writes to matching keys are merged into it (None hides a stored key).
    The overlays hold ``n`` such keys, so they can hide at most ``n`` stored keys: the
    first ``limit + n`` stored keys in range are all the table can contribute.
    """
    newest: dict[bytes, bytes | None] = {}
    for writes in overlays:
        newest.update((k, v) for k, v in writes.items() if k.startswith(prefix) and k > after)
    merged: dict[bytes, bytes | None] = {}
    for key, value in stored:
        if not key.startswith(prefix) or len(merged) == limit + len(newest):
            break
        if key > after:
            merged[key] = value
    merged.update(newest)
    return sorted((k, v) for k, v in merged.items() if v is not None)[:limit]
