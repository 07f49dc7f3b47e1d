"""Block headers and receipts: canonical encodings, hashes and signatures.

A header commits to the previous header (hash chain), the block's transactions
(``tx_root``: Merkle root over tx ids in block order), its receipts
(``receipt_root``: Merkle root over encoded receipts) and the state after it
(``state_root``). The header hash is the crypto suite's hash in the header
domain (``ed25519-blake3``: BLAKE3 derive-key, context ``domains.BLOCK_HEADER``)
over every field but the signature; the proposer signs that hash. ``hash`` and
``signature_ok`` take the chain's suite (default ``ED25519_BLAKE3``).
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain import crypto, limits
from tierchain.crypto.suite import ED25519_BLAKE3, CryptoSuite
from tierchain.wire.codec import Codec, CodecError

HEADER_VERSION = 1
_HEADER = struct.Struct("<BIQ32sQI32s32s32s32s")
header_unsigned_bytes = _HEADER.size
header_bytes = header_unsigned_bytes + limits.signature_bytes
ZERO_HASH = bytes(32)


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    chain_id: int
    height: int
    prev_hash: bytes
    timestamp_ms: int
    tx_count: int
    tx_root: bytes
    receipt_root: bytes
    state_root: bytes
    proposer: bytes
    signature: bytes = b""
    version: int = HEADER_VERSION

    def unsigned_bytes(self) -> bytes:
        return _HEADER.pack(
            self.version,
            self.chain_id,
            self.height,
            self.prev_hash,
            self.timestamp_ms,
            self.tx_count,
            self.tx_root,
            self.receipt_root,
            self.state_root,
            self.proposer,
        )

    def hash(self, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
        return suite.header_hash(self.unsigned_bytes())

    def signed(self, keys: crypto.KeyPair, suite: CryptoSuite = ED25519_BLAKE3) -> Header:
        if keys.public_key != self.proposer:
            raise ValueError("header proposer is not this key")
        return dataclasses.replace(self, signature=suite.sign(keys, self.hash(suite)))

    def signature_ok(self, suite: CryptoSuite = ED25519_BLAKE3) -> bool:
        return suite.verify(self.proposer, self.hash(suite), self.signature)

    def encode(self) -> bytes:
        if len(self.signature) != limits.signature_bytes:
            raise CodecError("header is not signed")
        return self.unsigned_bytes() + self.signature


def decode_header(data: bytes) -> Header:
    if len(data) != header_bytes:
        raise CodecError(f"header needs {header_bytes} bytes, got {len(data)}")
    fields = _HEADER.unpack_from(data)
    if fields[0] != HEADER_VERSION:
        raise CodecError(f"header version {fields[0]}")
    version, chain_id, height, prev, ts, count, tx_root, receipt_root, state_root, proposer = fields
    return Header(
        chain_id=chain_id,
        height=height,
        prev_hash=prev,
        timestamp_ms=ts,
        tx_count=count,
        tx_root=tx_root,
        receipt_root=receipt_root,
        state_root=state_root,
        proposer=proposer,
        signature=bytes(data[header_unsigned_bytes:]),
        version=version,
    )


class HeaderCodec(Codec[Header]):
    name = "header"

    def encode(self, value: Header) -> bytes:
        return value.encode()

    def decode(self, data: bytes) -> Header:
        return decode_header(data)


# --- receipts ----------------------------------------------------------------

event_topic_bytes_max = 64
event_data_bytes_max = 1024
events_per_receipt_max = 16
_RECEIPT_HEAD = struct.Struct("<32sHB")
_EVENT_HEAD = struct.Struct("<BH")


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    topic: bytes
    data: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class Receipt:
    """Outcome of one transaction in a block: ``code`` 0 is success, else a ``Reject``."""

    tx_id: bytes
    code: int
    events: tuple[Event, ...] = ()

    def encode(self) -> bytes:
        if len(self.events) > events_per_receipt_max:
            raise CodecError("too many events")
        parts = [_RECEIPT_HEAD.pack(self.tx_id, self.code, len(self.events))]
        for ev in self.events:
            if not 1 <= len(ev.topic) <= event_topic_bytes_max or len(ev.data) > event_data_bytes_max:
                raise CodecError("event topic or data out of bounds")
            parts += [_EVENT_HEAD.pack(len(ev.topic), len(ev.data)), ev.topic, ev.data]
        return b"".join(parts)


def decode_receipt(data: bytes, pos: int = 0) -> tuple[Receipt, int]:
    """Decode one receipt at ``pos``; return it and the offset after it."""
    try:
        tx_id, code, n_events = _RECEIPT_HEAD.unpack_from(data, pos)
        pos += _RECEIPT_HEAD.size
        if n_events > events_per_receipt_max:
            raise CodecError("too many events")
        events = []
        for _ in range(n_events):
            topic_len, data_len = _EVENT_HEAD.unpack_from(data, pos)
            pos += _EVENT_HEAD.size
            if not 1 <= topic_len <= event_topic_bytes_max or data_len > event_data_bytes_max:
                raise CodecError("event topic or data out of bounds")
            end = pos + topic_len + data_len
            if end > len(data):
                raise CodecError("event past the end")
            events.append(Event(bytes(data[pos : pos + topic_len]), bytes(data[pos + topic_len : end])))
            pos = end
    except struct.error as exc:
        raise CodecError(f"receipt truncated: {exc}") from exc
    return Receipt(bytes(tx_id), code, tuple(events)), pos


class EncodedReceipts(list):
    """A block's receipts (a list of ``Receipt``) with ``encoded``, each one's bytes, made
    once by the executor (the native kernels encode theirs): the receipt root and the stored
    record use them instead of encoding every receipt again. ``encoded(receipts)`` gives
    either kind's encodings."""

    __slots__ = ("encoded",)


def encoded(receipts: list[Receipt]) -> list[bytes]:
    """Each receipt's bytes: kept by ``EncodedReceipts``, else encoded now."""
    if isinstance(receipts, EncodedReceipts):
        return receipts.encoded
    return [r.encode() for r in receipts]


class ReceiptsCodec(Codec[list[Receipt]]):
    """All receipts of one block, in block order."""

    name = "receipts"

    def encode(self, value: list[Receipt]) -> bytes:
        return struct.pack("<I", len(value)) + b"".join(encoded(value))

    def decode(self, data: bytes) -> list[Receipt]:
        if len(data) < 4:
            raise CodecError("receipts truncated")
        (count,) = struct.unpack_from("<I", data)
        if count > limits.batch_txs_max:
            raise CodecError("implausible receipt count")
        pos, out = 4, []
        for _ in range(count):
            receipt, pos = decode_receipt(data, pos)
            out.append(receipt)
        if pos != len(data):
            raise CodecError("trailing bytes after receipts")
        return out
