# cython: language_level=3
"""TierChain's Cython data plane: one extension module, ``tierchain._hot``.

Python code should not import this module directly; it is re-exported, with
documentation, by ``tierchain.wire.batch`` (decoding), ``tierchain.engine.schedule``
(conflict scheduling) and ``tierchain.engine.route`` (shard routing). Every function
here takes a whole batch and returns numpy columns: one native call per batch,
never a Python object per transaction.

Sections (each in its own ``include``-d file, all compiled into this module):

``_common.pxi``
    Little-endian loads, the bytewise key order, SipHash-2-4 and Lamping &
    Veach's jump consistent hash.

``_decode.pxi`` -- ``decode_frames(buf)``
    Two linear passes over a buffer of u32-length-prefixed frames. Pass 1
    walks only the prefixes: it counts frames (so the batch limit is enforced
    before any allocation) and sums the declared key counts (so the key
    columns are allocated once, with an exact upper bound). Pass 2 parses
    each frame with ``_parse_tx``, a transliteration of ``tierchain.wire.tx.decode``
    that checks the same conditions in the same order and so returns the same
    reject code for every input (the fuzz tests hold the two together). Key
    sets are checked strictly ascending by adjacent comparison, and "a key in
    both sets" by one merge over the two sorted sets: O(k), not O(k^2).
    A rejected frame only writes its own code: its keys are written
    speculatively and the key cursor advances only when the frame is OK.

``_schedule.pxi`` -- ``schedule(...)``, ``schedule_ids(...)``
    Greedy wave assignment in block order. Keys are interned in an
    open-addressing (linear probing) table sized to a power of two >= 2x the
    number of keys, hashed with SipHash-2-4 under a per-process random key so
    that crafted keys cannot pile into one bucket; a hash match is confirmed
    by comparing the key bytes. Each slot carries last_write / last_read
    waves; a transaction's wave is one past the latest wave it conflicts with
    (read after write, write after read or write), which is the earliest wave
    that keeps every conflicting pair in block order. By induction this is the
    length of the longest conflict chain ending at the transaction, so the
    number of waves is optimal. The sender's public key is an implicit write
    key (in its own namespace), which keeps a sender's transactions in nonce
    order.

``_route.pxi`` -- ``route_keys(...)``
    shard = jump_consistent_hash(siphash24(route_key, key), n_shards). The
    route key is fixed (derived from ``domains.SHARD_ROUTE``), so every machine
    routes identically; jump hashing moves only ~1/(n+1) of the keys when a
    shard is added. Placement rules (pinned and tagged key prefixes) are a
    table the caller passes: the chain's apps declare them (``tierchain.engine.apps``).

Limits and reject codes are NOT literals here: they are read at import from
``tierchain.limits`` and ``tierchain.errors`` into cdef globals (``constants()``
returns them for the test that compares them with the Python side). The
public key and signature sizes are the chain's crypto suite's
(``tierchain.crypto.suite``): ``decode_frames`` takes them as arguments and
derives the offsets of the fields after the sender from them (``Layout``,
``layout()``); only the fields before the sender have fixed offsets here. For
the default suite's sizes the layout is asserted against
``limits.tx_fixed_bytes`` and ``limits.tx_bytes_min`` at import.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memcpy

import os

import blake3
import numpy as np

from tierchain import domains, limits
from tierchain.errors import Reject, RejectedError

# --- limits, read once at import (see tierchain/limits.py) -------------------
cdef int64_t WIRE_VERSION = limits.wire_version
cdef int64_t TX_BYTES_MAX = limits.tx_bytes_max
cdef int64_t KEY_BYTES_MAX = limits.key_bytes_max
cdef int64_t TX_KEYS_MAX = limits.tx_keys_max
cdef int64_t PAYLOAD_BYTES_MAX = limits.payload_bytes_max
cdef int64_t FRAME_PREFIX_BYTES = limits.frame_prefix_bytes
cdef int64_t BATCH_TXS_MAX = limits.batch_txs_max
cdef int64_t BATCH_BYTES_MAX = limits.batch_bytes_max
cdef int64_t SHARDS_MAX = limits.shards_max

# --- reject codes, read once at import (see tierchain/errors.py) -------------
cdef uint8_t R_OK = Reject.OK
cdef uint8_t R_TRUNCATED = Reject.TRUNCATED
cdef uint8_t R_TOO_LARGE = Reject.TOO_LARGE
cdef uint8_t R_TOO_SHORT = Reject.TOO_SHORT
cdef uint8_t R_BAD_VERSION = Reject.BAD_VERSION
cdef uint8_t R_BAD_OP = Reject.BAD_OP
cdef uint8_t R_TOO_MANY_KEYS = Reject.TOO_MANY_KEYS
cdef uint8_t R_BAD_KEY_LENGTH = Reject.BAD_KEY_LENGTH
cdef uint8_t R_KEYS_NOT_CANONICAL = Reject.KEYS_NOT_CANONICAL
cdef uint8_t R_KEY_IN_BOTH_SETS = Reject.KEY_IN_BOTH_SETS
cdef uint8_t R_PAYLOAD_TOO_LARGE = Reject.PAYLOAD_TOO_LARGE
cdef uint8_t R_TRAILING_BYTES = Reject.TRAILING_BYTES

# --- byte layout of the fixed header (docs/wire-format.md) ------------------
# These are the format itself, not limits: version u8, chain_id u32,
# shard_id u16, op u16, sender (the suite's public key), nonce u64,
# expires_at u64, n_read u8, n_write u8, then the keys; payload_len u32
# follows the keys, the signature (the suite's size) the payload.
cdef enum:
    OFF_VERSION = 0
    OFF_CHAIN_ID = 1
    OFF_SHARD_ID = 5
    OFF_OP = 7
    OFF_SENDER = 9
    PAYLOAD_LEN_BYTES = 4
    # Bounds on the sizes a suite may declare: they keep every offset small and
    # the smallest transaction far below tx_bytes_max.
    SUITE_PUBLIC_KEY_BYTES_MAX = 128
    SUITE_SIGNATURE_BYTES_MAX = 256


cdef struct Layout:
    # Offsets of the fields after the sender, and the smallest transaction,
    # for one suite's public key and signature sizes (made by _layout).
    int64_t public_key_bytes
    int64_t signature_bytes
    int64_t off_nonce
    int64_t off_expires_at
    int64_t off_n_read
    int64_t off_n_write
    int64_t off_keys
    int64_t tx_bytes_min


cdef Layout _layout(int64_t public_key_bytes, int64_t signature_bytes) except *:
    """The header layout for these sizes; ValueError outside the supported bounds."""
    cdef Layout w
    if not 1 <= public_key_bytes <= SUITE_PUBLIC_KEY_BYTES_MAX:
        raise ValueError(f"public key of {public_key_bytes} bytes: "
                         f"a suite's is 1..{SUITE_PUBLIC_KEY_BYTES_MAX}")
    if not 1 <= signature_bytes <= SUITE_SIGNATURE_BYTES_MAX:
        raise ValueError(f"signature of {signature_bytes} bytes: "
                         f"a suite's is 1..{SUITE_SIGNATURE_BYTES_MAX}")
    w.public_key_bytes = public_key_bytes
    w.signature_bytes = signature_bytes
    w.off_nonce = OFF_SENDER + public_key_bytes
    w.off_expires_at = w.off_nonce + 8
    w.off_n_read = w.off_expires_at + 8
    w.off_n_write = w.off_n_read + 1
    w.off_keys = w.off_n_write + 1
    w.tx_bytes_min = w.off_keys + PAYLOAD_LEN_BYTES + signature_bytes
    # Pass 1 reads n_read/n_write of any frame of at least off_keys bytes, and
    # pass 2 refuses a frame below tx_bytes_min before reading any field.
    assert w.off_keys < w.tx_bytes_min <= TX_BYTES_MAX
    return w


def layout(int64_t public_key_bytes=limits.public_key_bytes,
           int64_t signature_bytes=limits.signature_bytes):
    """The header layout ``decode_frames`` uses for these sizes (for tests and docs)."""
    cdef Layout w = _layout(public_key_bytes, signature_bytes)
    return {
        "public_key_bytes": w.public_key_bytes,
        "signature_bytes": w.signature_bytes,
        "off_sender": OFF_SENDER,
        "off_nonce": w.off_nonce,
        "off_expires_at": w.off_expires_at,
        "off_n_read": w.off_n_read,
        "off_n_write": w.off_n_write,
        "off_keys": w.off_keys,
        "tx_fixed_bytes": w.off_keys + PAYLOAD_LEN_BYTES,
        "tx_bytes_min": w.tx_bytes_min,
    }


# The default suite's layout and the limits module must describe the same header.
assert layout()["tx_fixed_bytes"] == limits.tx_fixed_bytes
assert layout()["tx_bytes_min"] == limits.tx_bytes_min
assert FRAME_PREFIX_BYTES == 4  # frames are u32-prefixed; _le32 reads exactly 4
# SipHash key of the scheduler's intern table: random per process, so nobody
# can precompute keys that collide in it (hash flooding).
cdef uint64_t SCHED_K0
cdef uint64_t SCHED_K1
_sched_key = os.urandom(16)
SCHED_K0 = int.from_bytes(_sched_key[:8], "little")
SCHED_K1 = int.from_bytes(_sched_key[8:], "little")
del _sched_key

# Where the sender's public key sits in an encoded tx (tierchain.engine.route uses it).
SENDER_OFFSET = OFF_SENDER

# SipHash key of the router: fixed for the protocol, so that every machine
# sends a key to the same shard. First 16 bytes of derive_key(SHARD_ROUTE, "").
ROUTE_KEY = blake3.blake3(b"", derive_key_context=domains.SHARD_ROUTE).digest()[:16]
cdef uint64_t ROUTE_K0 = int.from_bytes(ROUTE_KEY[:8], "little")
cdef uint64_t ROUTE_K1 = int.from_bytes(ROUTE_KEY[8:], "little")


def constants():
    """The limits and codes this module read at import (for the agreement test)."""
    return {
        "wire_version": WIRE_VERSION,
        "tx_bytes_max": TX_BYTES_MAX,
        "key_bytes_max": KEY_BYTES_MAX,
        "tx_keys_max": TX_KEYS_MAX,
        "payload_bytes_max": PAYLOAD_BYTES_MAX,
        "frame_prefix_bytes": FRAME_PREFIX_BYTES,
        "batch_txs_max": BATCH_TXS_MAX,
        "batch_bytes_max": BATCH_BYTES_MAX,
        "shards_max": SHARDS_MAX,
        "codes": {
            "OK": R_OK,
            "TRUNCATED": R_TRUNCATED,
            "TOO_LARGE": R_TOO_LARGE,
            "TOO_SHORT": R_TOO_SHORT,
            "BAD_VERSION": R_BAD_VERSION,
            "BAD_OP": R_BAD_OP,
            "TOO_MANY_KEYS": R_TOO_MANY_KEYS,
            "BAD_KEY_LENGTH": R_BAD_KEY_LENGTH,
            "KEYS_NOT_CANONICAL": R_KEYS_NOT_CANONICAL,
            "KEY_IN_BOTH_SETS": R_KEY_IN_BOTH_SETS,
            "PAYLOAD_TOO_LARGE": R_PAYLOAD_TOO_LARGE,
            "TRAILING_BYTES": R_TRAILING_BYTES,
        },
    }


include "_common.pxi"
include "_decode.pxi"
include "_schedule.pxi"
include "_route.pxi"
