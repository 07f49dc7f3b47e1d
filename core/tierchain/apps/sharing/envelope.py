"""Encrypted records: one data key per version, wrapped to each reader (docs/privacy.md,
"Encrypted records (issue 18, step 1)").

A record's plaintext is encrypted with the chain's crypto suite's authenticated cipher
(``CryptoSuite.aead_seal``: XChaCha20-Poly1305 on ``ed25519-blake3``, SM4-GCM on
``sm2-sm3``) under a fresh random *data key* and a random nonce. The associated data is the
caller's bytes naming what the ciphertext is — the record's id and version
(``record_aad``) — prefixed with this format's tag and the suite's name. The data key is
then sealed to each reader's public key (``CryptoSuite.seal``: an X25519 sealed box to the
Ed25519 key, or SM2 encryption to the SM2 key); readers are named by caller-chosen ids
(an organization id, say). ``SealedRecord.encode`` is the canonical bytes of all that.

What it guarantees:

* only a holder of a reader's secret key (or of the data key) learns the plaintext; a
  non-reader, a key pair of another suite, or any damage to the ciphertext, nonce, wrapped
  key or associated data yields ``None``, never another plaintext;
* a ciphertext opens only under the associated data it was sealed with, so a version
  cannot be passed off as another record or another version of the same record;
* each version has its own data key (``seal_record``, ``rekey``): a reader left out of a
  new version cannot open it with anything it learnt from older ones.

What it cannot do:

* take back what a reader has read. A reader who opened a version keeps that plaintext
  and that version's data key; revoking a reader only means the next version (a
  ``rekey``) is not wrapped to it. Older versions stay readable to whoever could read
  them, as long as their bytes exist (on a chain, forever);
* say who wrote a record: anyone can seal to public keys. Authorship is the signed
  transaction that carries the record, not the envelope;
* hide the size of the plaintext (the ciphertext is as long, plus the cipher's tag), the
  number of readers, their ids, or when versions change.
"""

from __future__ import annotations

import dataclasses
import secrets
import struct
from collections.abc import Mapping

from tierchain.crypto import SUITES, CryptoSuite, KeyPair
from tierchain.errors import TierChainError

__all__ = [
    "FORMAT_VERSION",
    "MAX_AAD_BYTES",
    "MAX_PLAINTEXT_BYTES",
    "MAX_READERS",
    "MAX_READER_ID_BYTES",
    "SealedRecord",
    "SharingError",
    "open_record",
    "record_aad",
    "rekey",
    "rewrap",
    "seal_record",
    "unwrap_key",
    "with_readers",
]

FORMAT_VERSION = 1
MAX_PLAINTEXT_BYTES = 1 << 20  # 1 MiB a record version
MAX_READERS = 256
MAX_READER_ID_BYTES = 64
MAX_AAD_BYTES = 1024
_AD_TAG = b"tierchain sharing record v1"
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_RECORD_AAD = struct.Struct("<Q")


class SharingError(TierChainError):
    """An encrypted record refused: too large, too many or malformed readers, a key that is
    not the suite's, a record of another suite, or bytes that are not a canonical record."""


def record_aad(record_id: bytes, version: int) -> bytes:
    """The associated data that binds a ciphertext to one record's id and version:
    ``u8 len(record_id) || record_id || u64 version`` (little-endian)."""
    record_id = bytes(record_id)
    if not 1 <= len(record_id) <= 255:
        raise SharingError("a record id is 1 to 255 bytes")
    if not 0 <= version < 1 << 64:
        raise SharingError("a record version is a u64")
    return bytes([len(record_id)]) + record_id + _RECORD_AAD.pack(version)


def _wrapped_bytes(suite: CryptoSuite) -> int:
    return suite.aead_key_bytes + suite.seal_overhead


@dataclasses.dataclass(frozen=True)
class SealedRecord:
    """One version of an encrypted record: the suite it is sealed in, the nonce, the
    ciphertext (plaintext + the cipher's tag), and per reader id the data key sealed to that
    reader (``wrapped``, kept in ascending id order). Constructing one checks every size."""

    suite: str
    nonce: bytes
    ciphertext: bytes
    wrapped: Mapping[bytes, bytes]

    def __post_init__(self) -> None:
        suite = _suite_named(self.suite)
        if len(self.nonce) != suite.aead_nonce_bytes:
            raise SharingError(f"a {suite.name} record's nonce is {suite.aead_nonce_bytes} bytes")
        if not suite.aead_tag_bytes <= len(self.ciphertext) <= MAX_PLAINTEXT_BYTES + suite.aead_tag_bytes:
            raise SharingError("ciphertext size out of bounds")
        if not 1 <= len(self.wrapped) <= MAX_READERS:
            raise SharingError(f"a record has 1 to {MAX_READERS} readers, got {len(self.wrapped)}")
        size = _wrapped_bytes(suite)
        for reader_id, wrapped in self.wrapped.items():
            _check_reader_id(reader_id)
            if len(wrapped) != size:
                raise SharingError(f"a {suite.name} wrapped data key is {size} bytes")
        object.__setattr__(self, "nonce", bytes(self.nonce))
        object.__setattr__(self, "ciphertext", bytes(self.ciphertext))
        object.__setattr__(self, "wrapped", {bytes(r): bytes(self.wrapped[r]) for r in sorted(self.wrapped)})

    @property
    def readers(self) -> tuple[bytes, ...]:
        """The reader ids, ascending."""
        return tuple(self.wrapped)

    def encode(self) -> bytes:
        """Canonical bytes: ``u8 FORMAT_VERSION, u8 len(suite), suite, nonce, u16 n`` then per
        reader in ascending id order ``u8 len(id), id, wrapped data key``, then ``u32 len``
        and the ciphertext (integers little-endian). One record has one encoding; ``decode``
        accepts nothing else."""
        name = self.suite.encode("ascii")
        parts = [bytes([FORMAT_VERSION, len(name)]), name, self.nonce, _U16.pack(len(self.wrapped))]
        for reader_id, wrapped in self.wrapped.items():
            parts += [bytes([len(reader_id)]), reader_id, wrapped]
        parts += [_U32.pack(len(self.ciphertext)), self.ciphertext]
        return b"".join(parts)

    @classmethod
    def decode(cls, raw: bytes, suite: CryptoSuite | None = None) -> SealedRecord:
        """The record ``encode`` made; ``SharingError`` for anything else (truncation, an
        unknown version or suite, reader ids out of order or repeated, wrong sizes, trailing
        bytes), or for a record of another suite than ``suite`` when one is given."""
        raw = bytes(raw)
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            if n < 0 or pos + n > len(raw):
                raise SharingError("a sealed record is truncated")
            pos += n
            return raw[pos - n : pos]

        if take(1)[0] != FORMAT_VERSION:
            raise SharingError("unknown sealed record format")
        try:
            name = take(take(1)[0]).decode("ascii")
        except UnicodeDecodeError:
            raise SharingError("a sealed record's suite name is not ASCII") from None
        found = _suite_named(name)
        if suite is not None and found is not suite:
            raise SharingError(f"a {name} record on a {suite.name} chain")
        nonce = take(found.aead_nonce_bytes)
        (n,) = _U16.unpack(take(_U16.size))
        wrapped: dict[bytes, bytes] = {}
        previous = b""
        for _ in range(n):
            reader_id = take(take(1)[0])
            if reader_id <= previous:  # ascending, so no repeats (an id is never empty)
                raise SharingError("reader ids are not in ascending order")
            wrapped[reader_id] = take(_wrapped_bytes(found))
            previous = reader_id
        (size,) = _U32.unpack(take(_U32.size))
        ciphertext = take(size)
        if pos != len(raw):
            raise SharingError("bytes after a sealed record")
        return cls(name, nonce, ciphertext, wrapped)


def _suite_named(name: str) -> CryptoSuite:
    suite = SUITES.get(name)
    if suite is None:
        raise SharingError(f"unknown crypto suite {name!r}")
    return suite


def _check_reader_id(reader_id: bytes) -> None:
    if not isinstance(reader_id, bytes) or not 1 <= len(reader_id) <= MAX_READER_ID_BYTES:
        raise SharingError(f"a reader id is 1 to {MAX_READER_ID_BYTES} bytes")


def _check_suite(suite: CryptoSuite, record: SealedRecord) -> None:
    if record.suite != suite.name:
        raise SharingError(f"a {record.suite} record, not {suite.name}")


def _ad(suite: CryptoSuite, aad: bytes) -> bytes:
    aad = bytes(aad)
    if len(aad) > MAX_AAD_BYTES:
        raise SharingError(f"associated data is at most {MAX_AAD_BYTES} bytes")
    name = suite.name.encode("ascii")
    return _AD_TAG + bytes([len(name)]) + name + aad


def rewrap(suite: CryptoSuite, data_key: bytes, public_key: bytes) -> bytes:
    """``data_key`` sealed to ``public_key`` (one of ``suite``'s keys): what a reader is given
    of one version. ``SharingError`` for a key of the wrong size or not the suite's."""
    if len(data_key) != suite.aead_key_bytes:
        raise SharingError(f"a {suite.name} data key is {suite.aead_key_bytes} bytes")
    try:
        return suite.seal(public_key, data_key)
    except ValueError as e:
        raise SharingError(f"cannot seal to that key: {e}") from None


def _wrap_all(suite: CryptoSuite, data_key: bytes, readers: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    if not 1 <= len(readers) <= MAX_READERS:
        raise SharingError(f"a record has 1 to {MAX_READERS} readers, got {len(readers)}")
    out = {}
    for reader_id, public_key in readers.items():
        _check_reader_id(reader_id)
        try:
            out[reader_id] = rewrap(suite, data_key, public_key)
        except SharingError as e:
            raise SharingError(f"reader {reader_id.hex()}: {e}") from None
    return out


def seal_record(
    suite: CryptoSuite, plaintext: bytes, aad: bytes, readers: Mapping[bytes, bytes]
) -> SealedRecord:
    """A new version: ``plaintext`` (at most ``MAX_PLAINTEXT_BYTES``) under a fresh data key
    and nonce, bound to ``aad`` (``record_aad(id, version)``), the data key sealed to each
    reader's public key (``readers``: reader id -> public key, 1 to ``MAX_READERS``)."""
    plaintext = bytes(plaintext)
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise SharingError(f"a record is at most {MAX_PLAINTEXT_BYTES} bytes, got {len(plaintext)}")
    data_key = secrets.token_bytes(suite.aead_key_bytes)
    nonce = secrets.token_bytes(suite.aead_nonce_bytes)
    wrapped = _wrap_all(suite, data_key, readers)
    ciphertext = suite.aead_seal(data_key, nonce, plaintext, _ad(suite, aad))
    return SealedRecord(suite.name, nonce, ciphertext, wrapped)


def unwrap_key(suite: CryptoSuite, record: SealedRecord, reader_id: bytes, keys: KeyPair) -> bytes | None:
    """The data key of ``record`` as the reader ``reader_id`` holding ``keys`` unseals it;
    None if that reader is not on the record or ``keys`` are not its. ``SharingError`` for a
    record or key pair of another suite."""
    _check_suite(suite, record)
    if not isinstance(keys, KeyPair) or keys.suite_name != suite.name:
        raise SharingError(f"not a {suite.name} key pair")
    wrapped = record.wrapped.get(bytes(reader_id))
    if wrapped is None:
        return None
    data_key = suite.unseal(keys, wrapped)
    return data_key if data_key is not None and len(data_key) == suite.aead_key_bytes else None


def open_record(
    suite: CryptoSuite, record: SealedRecord, reader_id: bytes, keys: KeyPair, aad: bytes
) -> bytes | None:
    """The plaintext of ``record`` for the reader ``reader_id`` holding ``keys``, checked
    against ``aad``; None if the reader is not on it, the keys are not the reader's, or
    anything (ciphertext, nonce, wrapped key, ``aad``) differs from what was sealed.
    ``SharingError`` for a record or key pair of another suite."""
    data_key = unwrap_key(suite, record, reader_id, keys)
    if data_key is None:
        return None
    return suite.aead_open(data_key, record.nonce, record.ciphertext, _ad(suite, aad))


def with_readers(
    suite: CryptoSuite, record: SealedRecord, data_key: bytes, readers: Mapping[bytes, bytes]
) -> SealedRecord:
    """The same version (same ciphertext and data key) also wrapped to ``readers``: a grant
    on the current version, by someone holding its data key (``unwrap_key``). A reader
    already on the record is ``SharingError`` (nothing is replaced)."""
    _check_suite(suite, record)
    again = sorted(r for r in readers if r in record.wrapped)
    if again:
        raise SharingError(f"already a reader: {again[0].hex()}")
    if len(record.wrapped) + len(readers) > MAX_READERS:
        raise SharingError(f"a record has at most {MAX_READERS} readers")
    added = _wrap_all(suite, data_key, readers)
    return SealedRecord(suite.name, record.nonce, record.ciphertext, {**record.wrapped, **added})


def rekey(
    suite: CryptoSuite,
    record: SealedRecord,
    reader_id: bytes,
    keys: KeyPair,
    aad: bytes,
    new_aad: bytes,
    readers: Mapping[bytes, bytes],
    plaintext: bytes | None = None,
) -> SealedRecord:
    """A new version for ``readers`` only: a fresh data key and nonce, bound to ``new_aad``
    (the next version's ``record_aad``). The current version is opened by ``reader_id`` with
    ``keys`` (the owner must be one of its readers); its plaintext is carried over unless a
    new ``plaintext`` is given. Readers left out cannot open the new version; what they
    already read stays theirs. ``SharingError`` if the current version does not open."""
    current = open_record(suite, record, reader_id, keys, aad)
    if current is None:
        raise SharingError("the current version does not open with these keys")
    return seal_record(suite, current if plaintext is None else plaintext, new_aad, readers)
