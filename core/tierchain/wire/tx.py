"""Canonical binary encoding of a transaction (specification: docs/wire-format.md).

Two decoders exist and must agree on every input:

* ``decode`` here, pure Python, one transaction, raises ``WireError``;
* ``decode_batch`` over many length-prefixed frames in one buffer, which runs
  the Cython parser ``tierchain._hot.decode_frames`` (columns, one reject code
  per transaction) and then hashes every body in one call of the crypto suite
  (``CryptoSuite.tx_ids``: ``tierchain_native.hash_many``, GIL released, all cores).

The tx id is the suite's hash of the body in the domain ``contexts.tx_body``
(``ed25519-blake3``: BLAKE3 derive-key, context ``domains.TX_BODY``), i.e. of
every byte but the signature; it is also the 32-byte message the sender signs,
so one hash serves both. This module encodes the ``ed25519-blake3`` layout
(32-byte sender, 64-byte signature: ``tierchain.limits``); the batch decoder
takes the sizes from the suite.
"""

from __future__ import annotations

import dataclasses
import itertools
import struct
from collections.abc import Iterable

from tierchain import limits
from tierchain.crypto.suite import ED25519_BLAKE3, CryptoSuite
from tierchain.errors import Reject, WireError

_FIXED_HEAD = struct.Struct("<BIHH32sQQBB")  # version .. n_write
_U32 = struct.Struct("<I")
assert _FIXED_HEAD.size + _U32.size == limits.tx_fixed_bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Tx:
    """One transaction; ``signature`` is empty until signed."""

    chain_id: int
    shard_id: int
    op: int
    sender: bytes
    nonce: int
    expires_at: int = 0  # last block height that may include it; 0 = no expiry
    reads: tuple[bytes, ...] = ()
    writes: tuple[bytes, ...] = ()
    payload: bytes = b""
    signature: bytes = b""
    version: int = limits.wire_version

    def body(self) -> bytes:
        """The canonical body; raises ``WireError`` if any field is out of bounds."""
        return encode_body(self)

    def tx_id(self, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
        """The id in ``suite`` (the chain's; the default suite's when not given)."""
        return tx_id(self.body(), suite=suite)

    def encode(self) -> bytes:
        if len(self.signature) != limits.signature_bytes:
            raise WireError(Reject.TOO_SHORT, "transaction is not signed")
        return self.body() + self.signature


def unsigned(
    chain_id: int,
    op: int,
    sender: bytes,
    nonce: int,
    reads: Iterable[bytes],
    writes: Iterable[bytes],
    payload: bytes,
) -> Tx:
    """An unsigned tx with canonical key sets: sorted, unique, a write never also a read."""
    w = set(writes)
    return Tx(
        chain_id=chain_id,
        shard_id=0,
        op=op,
        sender=sender,
        nonce=nonce,
        reads=tuple(sorted(set(reads) - w)),
        writes=tuple(sorted(w)),
        payload=payload,
    )


def tx_id(body: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The id of a transaction body, which is also its signing message."""
    return suite.tx_id(body)


def _check_keys(keys: tuple[bytes, ...], what: str) -> None:
    for key in keys:
        if not 1 <= len(key) <= limits.key_bytes_max:
            raise WireError(Reject.BAD_KEY_LENGTH, f"{what} key of {len(key)} bytes")
    for a, b in itertools.pairwise(keys):
        if not a < b:
            raise WireError(Reject.KEYS_NOT_CANONICAL, f"{what} keys must be strictly ascending")


def encode_body(tx: Tx) -> bytes:
    """Encode a body, refusing (with the decoder's codes) what a decoder would refuse."""
    if tx.version != limits.wire_version:
        raise WireError(Reject.BAD_VERSION, f"version {tx.version}")
    if tx.op == 0 or not 0 < tx.op < 1 << 16:
        raise WireError(Reject.BAD_OP, f"op {tx.op}")
    if len(tx.sender) != limits.public_key_bytes:
        raise WireError(Reject.TRUNCATED, "sender must be 32 bytes")
    for name, value, bits in (
        ("chain_id", tx.chain_id, 32),
        ("shard_id", tx.shard_id, 16),
        ("nonce", tx.nonce, 64),
        ("expires_at", tx.expires_at, 64),
    ):
        if not 0 <= value < 1 << bits:
            raise WireError(Reject.TRUNCATED, f"{name} {value} does not fit u{bits}")
    if len(tx.reads) + len(tx.writes) > limits.tx_keys_max:
        raise WireError(Reject.TOO_MANY_KEYS, f"{len(tx.reads) + len(tx.writes)} keys")
    _check_keys(tx.reads, "read")
    _check_keys(tx.writes, "write")
    if set(tx.reads) & set(tx.writes):
        raise WireError(Reject.KEY_IN_BOTH_SETS, "declare a key once; a write implies a read")
    if len(tx.payload) > limits.payload_bytes_max:
        raise WireError(Reject.PAYLOAD_TOO_LARGE, f"{len(tx.payload)} bytes")
    parts = [
        _FIXED_HEAD.pack(
            tx.version,
            tx.chain_id,
            tx.shard_id,
            tx.op,
            tx.sender,
            tx.nonce,
            tx.expires_at,
            len(tx.reads),
            len(tx.writes),
        )
    ]
    for key in tx.reads + tx.writes:
        parts.append(bytes((len(key),)))
        parts.append(key)
    parts.append(_U32.pack(len(tx.payload)))
    parts.append(tx.payload)
    return b"".join(parts)


def decode(data: bytes) -> Tx:
    """Decode exactly one signed transaction; every non-canonical form raises ``WireError``."""
    n = len(data)
    if n > limits.tx_bytes_max:
        raise WireError(Reject.TOO_LARGE, f"{n} bytes")
    if n < limits.tx_bytes_min:
        raise WireError(Reject.TOO_SHORT, f"{n} bytes")
    version, chain_id, shard_id, op, sender, nonce, expires_at, n_read, n_write = _FIXED_HEAD.unpack_from(
        data, 0
    )
    if version != limits.wire_version:
        raise WireError(Reject.BAD_VERSION, f"version {version}")
    if op == 0:
        raise WireError(Reject.BAD_OP, "op 0 is reserved")
    if n_read + n_write > limits.tx_keys_max:
        raise WireError(Reject.TOO_MANY_KEYS, f"{n_read + n_write} keys")
    pos = _FIXED_HEAD.size
    keys = []
    for _ in range(n_read + n_write):
        if pos >= n:
            raise WireError(Reject.TRUNCATED, "key length past the end")
        length = data[pos]
        if not 1 <= length <= limits.key_bytes_max:
            raise WireError(Reject.BAD_KEY_LENGTH, f"key of {length} bytes")
        if pos + 1 + length > n:
            raise WireError(Reject.TRUNCATED, "key past the end")
        keys.append(bytes(data[pos + 1 : pos + 1 + length]))
        pos += 1 + length
    reads, writes = tuple(keys[:n_read]), tuple(keys[n_read:])
    _check_keys(reads, "read")
    _check_keys(writes, "write")
    if set(reads) & set(writes):
        raise WireError(Reject.KEY_IN_BOTH_SETS, "a key is declared as read and write")
    if pos + _U32.size > n:
        raise WireError(Reject.TRUNCATED, "payload length past the end")
    (payload_len,) = _U32.unpack_from(data, pos)
    pos += _U32.size
    if payload_len > limits.payload_bytes_max:
        raise WireError(Reject.PAYLOAD_TOO_LARGE, f"{payload_len} bytes")
    end = pos + payload_len + limits.signature_bytes
    if end > n:
        raise WireError(Reject.TRUNCATED, "payload or signature past the end")
    if end < n:
        raise WireError(Reject.TRAILING_BYTES, f"{n - end} bytes after the signature")
    return Tx(
        chain_id=chain_id,
        shard_id=shard_id,
        op=op,
        sender=bytes(sender),
        nonce=nonce,
        expires_at=expires_at,
        reads=reads,
        writes=writes,
        payload=bytes(data[pos : pos + payload_len]),
        signature=bytes(data[pos + payload_len :]),
        version=version,
    )


def frame(txs: list[bytes]) -> bytes:
    """Concatenate encoded transactions, each behind a u32 little-endian length."""
    return b"".join(_U32.pack(len(t)) + t for t in txs)
