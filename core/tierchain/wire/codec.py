"""Typed key/value codecs for storage tables and on-chain records.

Every codec is total on its input domain: ``decode`` of any byte string either
returns a value or raises ``CodecError``; it never raises anything else and never
crashes (``tests/state/test_storage.py`` fuzzes each one). Encodings are canonical:
``encode(decode(b)) == b`` for every ``b`` that decodes.
"""

from __future__ import annotations

import struct
from typing import Generic, TypeVar

import blake3

from tierchain.errors import TierChainError

T = TypeVar("T")

RECORD_CONTEXT = "tierchain 2026 stored record"
record_checksum_bytes = 16


class CodecError(TierChainError):
    """Bytes that are not a valid encoding for the codec (e.g. a damaged record)."""


class Codec(Generic[T]):
    name = "codec"

    def encode(self, value: T) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> T:
        raise NotImplementedError


class U64BE(Codec[int]):
    """Unsigned 64-bit big-endian: byte order equals numeric order (LMDB key order)."""

    name = "u64be"

    def encode(self, value: int) -> bytes:
        if not 0 <= value < 1 << 64:
            raise CodecError(f"{value} is not a u64")
        return value.to_bytes(8, "big")

    def decode(self, data: bytes) -> int:
        if len(data) != 8:
            raise CodecError(f"u64 needs 8 bytes, got {len(data)}")
        return int.from_bytes(data, "big")


class Bytes(Codec[bytes]):
    """Bytes with a length range (inclusive)."""

    def __init__(self, size_min: int = 0, size_max: int = 1 << 30) -> None:
        self.size_min, self.size_max = size_min, size_max
        self.name = f"bytes[{size_min}..{size_max}]"

    def _check(self, data: bytes) -> bytes:
        if not self.size_min <= len(data) <= self.size_max:
            raise CodecError(f"{self.name}: got {len(data)} bytes")
        return bytes(data)

    encode = _check
    decode = _check


class Utf8(Codec[str]):
    def __init__(self, size_max: int = 256) -> None:
        self.size_max = size_max
        self.name = f"utf8[..{size_max}]"

    def encode(self, value: str) -> bytes:
        data = value.encode()
        if len(data) > self.size_max:
            raise CodecError(f"{self.name}: {len(data)} bytes")
        return data

    def decode(self, data: bytes) -> str:
        if len(data) > self.size_max:
            raise CodecError(f"{self.name}: {len(data)} bytes")
        try:
            return bytes(data).decode()
        except UnicodeDecodeError as exc:
            raise CodecError(f"{self.name}: not UTF-8") from exc


class Struct(Codec[tuple]):
    """A fixed-layout tuple (``struct`` format, little-endian)."""

    def __init__(self, fmt: str) -> None:
        self.layout = struct.Struct(fmt)
        self.name = f"struct[{fmt}]"

    def encode(self, value: tuple) -> bytes:
        try:
            return self.layout.pack(*value)
        except struct.error as exc:
            raise CodecError(f"{self.name}: {exc}") from exc

    def decode(self, data: bytes) -> tuple:
        if len(data) != self.layout.size:
            raise CodecError(f"{self.name}: needs {self.layout.size} bytes, got {len(data)}")
        return self.layout.unpack(data)


class Checked(Codec[T]):
    """Wraps a codec with a BLAKE3 checksum, verified on every read.

    LMDB does not checksum pages; a flipped bit in a header or block must be
    reported as damage, not served as history.
    """

    def __init__(self, inner: Codec[T]) -> None:
        self.inner = inner
        self.name = f"checked[{inner.name}]"

    @staticmethod
    def _sum(data: bytes) -> bytes:
        return blake3.blake3(data, derive_key_context=RECORD_CONTEXT).digest(record_checksum_bytes)

    def encode(self, value: T) -> bytes:
        data = self.inner.encode(value)
        return data + self._sum(data)

    def decode(self, data: bytes) -> T:
        if len(data) < record_checksum_bytes:
            raise CodecError(f"{self.name}: shorter than its checksum")
        body, tail = bytes(data[:-record_checksum_bytes]), bytes(data[-record_checksum_bytes:])
        if self._sum(body) != tail:
            raise CodecError(f"{self.name}: checksum mismatch (damaged record)")
        return self.inner.decode(body)
