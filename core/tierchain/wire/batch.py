"""Columnar decoding of a batch of framed transactions (spec: docs/wire-format.md).

``decode_batch(buf)`` is the admission path's first step. It makes two native
calls and no per-transaction Python:

1. ``tierchain._hot.decode_frames`` (Cython, ext/cython/_decode.pxi) parses
   every u32-length-prefixed frame into numpy columns with one reject code per
   row, applying exactly the checks of ``tierchain.wire.tx.decode``, in the same
   order;
2. the crypto suite's ``tx_ids`` (``ed25519-blake3``: ``tierchain_native.hash_many``,
   Rust, ext/rust/src/crypto/hash.rs; GIL released, all cores) computes every tx id:
   BLAKE3 derive-key(``domains.TX_BODY``) of the body, which is also the
   message the sender signed.

The suite also gives the decoder its public key and signature sizes.
``decode_batch`` takes the chain's suite (``suite=``; ``None`` means ``ED25519_BLAKE3``).
Given ``tx_ids=`` (the ids a trusted decoder of the same bytes computed: a cluster
scheduler's, sent to its own shard process, docs/sharding.md "Transport") it takes
them instead of step 2.

Rows with a nonzero ``code`` keep their place (so replies line up with the
submitted frames) but have zeroed fields, no keys and a zero digest.

``gather(parts)`` builds a block from rows of batches already decoded (the
admitted rows, ``mempool.Chunk``): the frames' bytes joined in order, and the
columns gathered and rebased onto them — equal, column for column, to
``decode_batch`` of the joined bytes, without decoding or hashing anything
again (decode once, docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tierchain import _hot
from tierchain.errors import Reject

if TYPE_CHECKING:
    from tierchain.crypto.suite import CryptoSuite

__all__ = ["Batch", "decode_batch", "gather", "row_bytes"]

_frame_prefix = 4  # the u32 length before every frame (wire.frame)
# Per-row columns that hold offsets into ``buf`` (rebased by gather) and those copied as they are.
_OFFSETS = ("tx_start", "tx_end", "body_end", "payload_start")
_ROW_VALUES = (
    "code",
    "version",
    "chain_id",
    "shard_id",
    "op",
    "sender",
    "nonce",
    "expires_at",
    "n_read",
    "n_write",
    "payload_len",
    "signature",
    "digest",
)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """Decoded columns of one buffer of frames; ``n`` rows, ``k`` keys in all.

    Offsets (``tx_start`` .. ``payload_start``, ``key_start``) index ``buf``.
    For a rejected row: ``tx_start:tx_end`` are its bytes (those present, for
    a truncated final frame), ``key_first`` is where its keys would start
    (so ``key_first`` never decreases) and every other field is zero.
    """

    buf: bytes
    code: np.ndarray  # uint8[n], tierchain.errors.Reject
    tx_start: np.ndarray  # int64[n], first byte after the length prefix
    tx_end: np.ndarray  # int64[n]
    body_end: np.ndarray  # int64[n]; signature = buf[body_end : body_end + 64]
    version: np.ndarray  # uint8[n]
    chain_id: np.ndarray  # uint32[n]
    shard_id: np.ndarray  # uint16[n]
    op: np.ndarray  # uint16[n]
    sender: np.ndarray  # uint8[n, 32]
    nonce: np.ndarray  # uint64[n]
    expires_at: np.ndarray  # uint64[n]
    n_read: np.ndarray  # uint8[n]
    n_write: np.ndarray  # uint8[n]
    key_first: np.ndarray  # int64[n], index into the key columns
    key_start: np.ndarray  # int64[k]; reads first, then writes, per tx
    key_len: np.ndarray  # uint8[k]
    payload_start: np.ndarray  # int64[n]
    payload_len: np.ndarray  # uint32[n]
    signature: np.ndarray  # uint8[n, 64]
    digest: np.ndarray  # uint8[n, 32], tx id; zero for rejected rows

    def __len__(self) -> int:
        return len(self.code)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the rows that decoded."""
        return self.code == Reject.OK

    def _key(self, j: int) -> bytes:
        start = int(self.key_start[j])
        return self.buf[start : start + int(self.key_len[j])]

    def keys_of(self, i: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """(reads, writes) of row ``i``; for tests, tools and op handlers, not hot paths."""
        first, n_read = int(self.key_first[i]), int(self.n_read[i])
        reads = tuple(self._key(j) for j in range(first, first + n_read))
        writes = tuple(self._key(j) for j in range(first + n_read, first + n_read + int(self.n_write[i])))
        return reads, writes

    def tx_bytes(self, i: int) -> bytes:
        """The encoded transaction of row ``i`` (without its length prefix)."""
        return self.buf[int(self.tx_start[i]) : int(self.tx_end[i])]

    def tx_ids(self) -> list[bytes]:
        """Each row's tx id (``b""`` for rows that did not decode): for replies, not hot paths."""
        return [d if c == 0 else b"" for d, c in zip(row_bytes(self.digest), self.code.tolist(), strict=True)]

    def payload(self, i: int) -> bytes:
        start = int(self.payload_start[i])
        return self.buf[start : start + int(self.payload_len[i])]


def row_bytes(column: np.ndarray) -> list[bytes]:
    """The rows of a 2-D byte column (sender keys, tx ids; widths are the suite's) as bytes:
    one copy of the column, then slices (no numpy scalar per row)."""
    return split_rows(column.tobytes(), column.shape[1])


def split_rows(packed: bytes, width: int) -> list[bytes]:
    """``packed`` (rows of ``width`` bytes back to back) as one bytes object per row."""
    return [packed[k : k + width] for k in range(0, len(packed), width)]


def decode_batch(
    buf: bytes | bytearray | memoryview, *, suite: CryptoSuite | None = None, tx_ids: bytes | None = None
) -> Batch:
    """Decode every frame of ``buf``; raises ``RejectedError(BATCH_TOO_LARGE)`` over the limits.

    The batch keeps an immutable copy of ``buf`` unless it already is ``bytes``,
    because every column is an offset into it.

    ``tx_ids``: every row's tx id, packed, as computed from these very bytes by a
    decoder the caller trusts; used as the ``digest`` column instead of hashing the
    bodies. ``ValueError`` unless every row decodes and there is one id per row.
    Nothing checks that an id is its body's hash: a wrong one makes a signature
    made for another body count for this one (``Mempool.admit`` verifies against it).
    """
    if suite is None:
        # Imported here, not at the top, so that Batch (and the scheduler and
        # router built on it) work where only the Cython module is built.
        from tierchain.crypto.suite import ED25519_BLAKE3 as suite
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    cols = _hot.decode_frames(buf, suite.public_key_bytes, suite.signature_bytes)
    ok = cols["code"] == Reject.OK
    if tx_ids is not None:
        if not ok.all() or len(tx_ids) != len(ok) * suite.digest_bytes:
            raise ValueError(
                f"{len(tx_ids)} bytes of tx ids for {len(ok)} rows ({int((~ok).sum())} not decoded)"
            )
        digest = np.frombuffer(tx_ids, np.uint8).reshape(len(ok), suite.digest_bytes).copy()
        return Batch(buf=buf, digest=digest, **cols)
    # Rejected rows hash an empty range (start == end) and are zeroed after:
    # one call for the whole batch, with no gather of the valid rows.
    starts = np.where(ok, cols["tx_start"], 0)
    ends = np.where(ok, cols["body_end"], 0)
    n = len(ok)
    digest = np.frombuffer(suite.tx_ids(buf, starts, ends), np.uint8)
    digest = digest.reshape(n, suite.digest_bytes).copy()
    digest[~ok] = 0
    return Batch(buf=buf, digest=digest, **cols)


def gather(parts: Sequence[tuple[Batch, np.ndarray]]) -> Batch:
    """The batch of the frames of ``rows`` of each batch in ``parts``, in that order.

    Equal to ``decode_batch`` of those frames joined (tests/engine/test_transition_decode_once.py),
    but nothing is parsed or hashed: the rows' columns are gathered and their offsets
    moved to where their frames land in the joined buffer. Rows must have decoded
    (code 0); the chain gathers admitted rows into a block with it. A run of
    consecutive rows (a batch admitted whole: the usual case) is sliced, its frames
    and keys contiguous and moved by one offset; other rows are gathered by index.
    """
    picks = []  # per part: (batch, row selector, offset shift, key selector, key shift)
    pieces: list[bytes] = []
    at = 0  # where the next frame starts in the joined buffer
    for b, rows in parts:
        if not len(rows):
            continue
        rows = np.asarray(rows, np.int64)
        first, last = int(rows[0]), int(rows[-1])
        # A run: consecutive and ascending ([0, 2, 1, 3] spans 0..3 but is no run).
        if last - first + 1 == len(rows) and (len(rows) < 3 or bool((np.diff(rows) == 1).all())):
            start, end = int(b.tx_start[first]) - _frame_prefix, int(b.tx_end[last])
            pieces.append(b.buf[start:end])
            k_end = int(b.key_first[last]) + int(b.n_read[last]) + int(b.n_write[last])
            shift: int | np.ndarray = at - start
            picks.append((b, slice(first, last + 1), shift, slice(int(b.key_first[first]), k_end), shift))
            at += end - start
            continue
        starts, ends = b.tx_start[rows] - _frame_prefix, b.tx_end[rows]
        pieces.extend(b.buf[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True))
        length = ends - starts
        new_start = at + np.cumsum(length) - length
        at = int(new_start[-1] + length[-1])
        shift = new_start - starts
        # Each row's keys: key_first .. key_first + n_read + n_write, in order.
        count = b.n_read[rows].astype(np.int64) + b.n_write[rows]
        first_out = np.cumsum(count) - count
        keys = np.arange(int(count.sum()), dtype=np.int64) + np.repeat(b.key_first[rows] - first_out, count)
        picks.append((b, rows, shift, keys, np.repeat(shift, count)))
    buf = b"".join(pieces)
    if not picks:
        return decode_batch(buf)
    cols: dict[str, np.ndarray] = {}
    for name in _ROW_VALUES:
        cols[name] = np.concatenate([getattr(b, name)[sel] for b, sel, *_ in picks])
    for name in _OFFSETS:
        cols[name] = np.concatenate([getattr(b, name)[sel] + shift for b, sel, shift, *_ in picks])
    count = cols["n_read"].astype(np.int64) + cols["n_write"]
    cols["key_first"] = np.cumsum(count) - count
    cols["key_start"] = np.concatenate([b.key_start[keys] + shift for b, _, _, keys, shift in picks])
    cols["key_len"] = np.concatenate([b.key_len[keys] for b, _, _, keys, _ in picks])
    return Batch(buf=buf, **cols)
