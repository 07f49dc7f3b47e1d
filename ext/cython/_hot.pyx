# cython: language_level=3
"""TierChain's Cython data plane: one extension module, ``tierchain._hot``.

Python code should not import this module directly; it is re-exported, with
documentation, by ``tierchain.batch`` (decoding), ``tierchain.schedule``
(conflict scheduling) and ``tierchain.route`` (shard routing). Every function
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
    each frame with ``_parse_tx``, a transliteration of ``tierchain.wire.decode``
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
    shard is added.

Limits and reject codes are NOT literals here: they are read at import from
``tierchain.limits`` and ``tierchain.errors`` into cdef globals (``constants()``
returns them for the test that compares them with the Python side). Only the
byte layout of the fixed header (field offsets) is written down here, and its
total is asserted against ``limits.tx_fixed_bytes`` at import.
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
cdef int64_t TX_BYTES_MIN = limits.tx_bytes_min
cdef int64_t KEY_BYTES_MAX = limits.key_bytes_max
cdef int64_t TX_KEYS_MAX = limits.tx_keys_max
cdef int64_t PAYLOAD_BYTES_MAX = limits.payload_bytes_max
cdef int64_t PUBLIC_KEY_BYTES = limits.public_key_bytes
cdef int64_t SIGNATURE_BYTES = limits.signature_bytes
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
# shard_id u16, op u16, sender 32, nonce u64, expires_at u64, n_read u8,
# n_write u8, then the keys; payload_len u32 follows the keys.
cdef enum:
    OFF_VERSION = 0
    OFF_CHAIN_ID = 1
    OFF_SHARD_ID = 5
    OFF_OP = 7
    OFF_SENDER = 9
    OFF_NONCE = 41
    OFF_EXPIRES_AT = 49
    OFF_N_READ = 57
    OFF_N_WRITE = 58
    OFF_KEYS = 59
    PAYLOAD_LEN_BYTES = 4
    SENDER_BYTES = OFF_NONCE - OFF_SENDER

# The layout above and the limits module must describe the same header.
assert OFF_KEYS + PAYLOAD_LEN_BYTES == limits.tx_fixed_bytes
assert SENDER_BYTES == limits.public_key_bytes
assert FRAME_PREFIX_BYTES == 4  # frames are u32-prefixed; _le32 reads exactly 4
assert TX_BYTES_MIN >= OFF_KEYS  # pass 1 reads n_read/n_write of any frame >= min
# SipHash key of the scheduler's intern table: random per process, so nobody
# can precompute keys that collide in it (hash flooding).
cdef uint64_t SCHED_K0
cdef uint64_t SCHED_K1
_sched_key = os.urandom(16)
SCHED_K0 = int.from_bytes(_sched_key[:8], "little")
SCHED_K1 = int.from_bytes(_sched_key[8:], "little")
del _sched_key

# Where the sender's public key sits in an encoded tx (tierchain.route uses it).
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
        "tx_bytes_min": TX_BYTES_MIN,
        "key_bytes_max": KEY_BYTES_MAX,
        "tx_keys_max": TX_KEYS_MAX,
        "payload_bytes_max": PAYLOAD_BYTES_MAX,
        "public_key_bytes": PUBLIC_KEY_BYTES,
        "signature_bytes": SIGNATURE_BYTES,
        "frame_prefix_bytes": FRAME_PREFIX_BYTES,
        "batch_txs_max": BATCH_TXS_MAX,
        "batch_bytes_max": BATCH_BYTES_MAX,
        "shards_max": SHARDS_MAX,
        "tx_fixed_bytes": OFF_KEYS + PAYLOAD_LEN_BYTES,
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
