"""Encrypted records (issue 18, step 1: ``tierchain.apps.sharing.envelope``), in both suites.

Checked: every reader opens, nobody else does (a non-reader, a reader id with another's keys,
another suite's key pair or record); any change to the ciphertext, nonce, associated data or
a wrapped key yields None, never another plaintext; a re-keyed version excludes removed
readers (who still read the old one: revocation cannot undo a read); grants on the current
version; the canonical encoding round-trips and refuses malformed bytes; sizes and bounds;
and the format read with the bare primitives (libsodium / SM2 + SM4-GCM).
"""

from __future__ import annotations

import os
import struct

import nacl.bindings
import nacl.public
import pytest

from tierchain.apps.sharing import envelope as ev
from tierchain.apps.sharing.envelope import SealedRecord, SharingError
from tierchain.crypto import ED25519_BLAKE3, SM2_SM3, SUITES, CryptoSuite, sm
from tierchain.errors import TierChainError

AAD1 = ev.record_aad(b"invoice-42", 1)
AAD2 = ev.record_aad(b"invoice-42", 2)
TEXT = b"invoice 42: 1,000,000.00 CNY, due 2025-06-30" * 3


@pytest.fixture(params=sorted(SUITES), ids=str)
def suite(request) -> CryptoSuite:
    return SUITES[request.param]


def other(suite: CryptoSuite) -> CryptoSuite:
    return SM2_SM3 if suite is ED25519_BLAKE3 else ED25519_BLAKE3


def org_keys(suite: CryptoSuite) -> dict[bytes, object]:
    return {
        name: suite.keys_from_seed(bytes([i + 1]) * 32)
        for i, name in enumerate([b"bank", b"auditor", b"rater", b"mallory"])
    }


def readers_of(keys, names) -> dict[bytes, bytes]:
    return {n: keys[n].public_key for n in names}


def test_every_reader_opens_and_nobody_else(suite):
    keys = org_keys(suite)
    record = ev.seal_record(suite, TEXT, AAD1, readers_of(keys, [b"rater", b"bank", b"auditor"]))
    assert record.suite == suite.name and record.readers == (b"auditor", b"bank", b"rater")  # ascending
    assert len(record.ciphertext) == len(TEXT) + suite.aead_tag_bytes
    assert len(record.nonce) == suite.aead_nonce_bytes
    assert {len(w) for w in record.wrapped.values()} == {suite.aead_key_bytes + suite.seal_overhead}
    for name in (b"bank", b"auditor", b"rater"):
        assert ev.open_record(suite, record, name, keys[name], AAD1) == TEXT
    assert ev.open_record(suite, record, b"mallory", keys[b"mallory"], AAD1) is None  # not a reader
    assert (
        ev.open_record(suite, record, b"bank", keys[b"mallory"], AAD1) is None
    )  # a reader's id, not its key
    assert ev.open_record(suite, record, b"bank", keys[b"rater"], AAD1) is None  # another reader's key
    with pytest.raises(SharingError, match="key pair"):
        ev.open_record(suite, record, b"bank", org_keys(other(suite))[b"bank"], AAD1)
    with pytest.raises(SharingError, match="record"):
        ev.open_record(other(suite), record, b"bank", org_keys(other(suite))[b"bank"], AAD1)
    assert issubclass(SharingError, TierChainError)
    # Fresh data key and nonce for every record, even of the same plaintext.
    again = ev.seal_record(suite, TEXT, AAD1, readers_of(keys, [b"bank"]))
    assert again.nonce != record.nonce and again.ciphertext != record.ciphertext
    assert ev.unwrap_key(suite, again, b"bank", keys[b"bank"]) != ev.unwrap_key(
        suite, record, b"bank", keys[b"bank"]
    )
    empty = ev.seal_record(suite, b"", AAD1, readers_of(keys, [b"bank"]))
    assert ev.open_record(suite, empty, b"bank", keys[b"bank"], AAD1) == b""


def _flip(data: bytes, i: int) -> bytes:
    out = bytearray(data)
    out[i] ^= 1
    return bytes(out)


def test_any_change_fails_never_another_plaintext(suite):
    keys = org_keys(suite)
    record = ev.seal_record(suite, TEXT, AAD1, readers_of(keys, [b"bank", b"auditor"]))

    def opened(r: SealedRecord, aad: bytes = AAD1):
        return ev.open_record(suite, r, b"bank", keys[b"bank"], aad)

    for aad in (AAD2, ev.record_aad(b"invoice-43", 1), b"", AAD1 + b"\0", AAD1[:-1]):
        assert opened(record, aad) is None
    for i in range(len(record.ciphertext)):
        assert (
            opened(SealedRecord(suite.name, record.nonce, _flip(record.ciphertext, i), record.wrapped))
            is None
        )
    for i in range(len(record.nonce)):
        assert (
            opened(SealedRecord(suite.name, _flip(record.nonce, i), record.ciphertext, record.wrapped))
            is None
        )
    own = record.wrapped[b"bank"]
    for i in range(len(own)):
        wrapped = {**record.wrapped, b"bank": _flip(own, i)}
        assert opened(SealedRecord(suite.name, record.nonce, record.ciphertext, wrapped)) is None
    # The data key of another record, wrapped to the same reader: the ciphertext does not open.
    stranger = ev.seal_record(suite, TEXT, AAD1, readers_of(keys, [b"bank"]))
    swapped = {**record.wrapped, b"bank": stranger.wrapped[b"bank"]}
    assert opened(SealedRecord(suite.name, record.nonce, record.ciphertext, swapped)) is None
    # Another reader's wrapped key under one's own id: not sealed to one's key.
    moved = {**record.wrapped, b"bank": record.wrapped[b"auditor"]}
    assert opened(SealedRecord(suite.name, record.nonce, record.ciphertext, moved)) is None
    # Every byte of the encoding flipped: refused, None, or (a byte of another reader's entry)
    # the right plaintext; never anything else.
    raw = record.encode()
    refused = nothing = 0
    for i in range(len(raw)):
        try:
            damaged = SealedRecord.decode(_flip(raw, i), suite)
        except SharingError:
            refused += 1
            continue
        got = opened(damaged)
        assert got in (None, TEXT)
        nothing += got is None
    assert refused and nothing >= len(record.ciphertext) + len(record.nonce) + len(own)


def test_rekeyed_version_excludes_removed_readers(suite):
    keys = org_keys(suite)
    v1 = ev.seal_record(suite, TEXT, AAD1, readers_of(keys, [b"bank", b"auditor", b"rater"]))
    v2 = ev.rekey(suite, v1, b"bank", keys[b"bank"], AAD1, AAD2, readers_of(keys, [b"bank", b"auditor"]))
    assert v2.readers == (b"auditor", b"bank")
    for name in (b"bank", b"auditor"):
        assert ev.open_record(suite, v2, name, keys[name], AAD2) == TEXT
    assert ev.open_record(suite, v2, b"rater", keys[b"rater"], AAD2) is None
    # Nothing the removed reader kept of v1 opens v2: not its data key, not its wrapped key.
    old_key = ev.unwrap_key(suite, v1, b"rater", keys[b"rater"])
    assert old_key is not None and old_key != ev.unwrap_key(suite, v2, b"bank", keys[b"bank"])
    assert suite.aead_open(old_key, v2.nonce, v2.ciphertext, AAD2) is None
    grafted = SealedRecord(
        suite.name, v2.nonce, v2.ciphertext, {**v2.wrapped, b"rater": v1.wrapped[b"rater"]}
    )
    assert ev.open_record(suite, grafted, b"rater", keys[b"rater"], AAD2) is None
    # What revocation cannot undo: the old version still opens for whoever could read it.
    assert ev.open_record(suite, v1, b"rater", keys[b"rater"], AAD1) == TEXT
    # A new version with new content; v1's associated data does not open it.
    v3 = ev.rekey(
        suite,
        v2,
        b"auditor",
        keys[b"auditor"],
        AAD2,
        ev.record_aad(b"invoice-42", 3),
        readers_of(keys, [b"bank"]),
        plaintext=b"amended",
    )
    assert ev.open_record(suite, v3, b"bank", keys[b"bank"], ev.record_aad(b"invoice-42", 3)) == b"amended"
    assert ev.open_record(suite, v3, b"bank", keys[b"bank"], AAD2) is None
    with pytest.raises(SharingError, match="does not open"):  # only a reader of the current version re-keys
        ev.rekey(suite, v2, b"rater", keys[b"rater"], AAD2, AAD2, readers_of(keys, [b"rater"]))


def test_grants_on_the_current_version(suite):
    keys = org_keys(suite)
    record = ev.seal_record(suite, TEXT, AAD1, readers_of(keys, [b"bank"]))
    data_key = ev.unwrap_key(suite, record, b"bank", keys[b"bank"])
    assert data_key is not None and len(data_key) == suite.aead_key_bytes
    assert ev.unwrap_key(suite, record, b"rater", keys[b"rater"]) is None
    granted = ev.with_readers(suite, record, data_key, readers_of(keys, [b"rater"]))
    assert granted.ciphertext == record.ciphertext and granted.readers == (b"bank", b"rater")
    assert ev.open_record(suite, granted, b"rater", keys[b"rater"], AAD1) == TEXT
    assert ev.open_record(suite, granted, b"bank", keys[b"bank"], AAD1) == TEXT
    wrapped = ev.rewrap(suite, data_key, keys[b"auditor"].public_key)
    assert suite.unseal(keys[b"auditor"], wrapped) == data_key
    with pytest.raises(SharingError, match="already a reader"):
        ev.with_readers(suite, granted, data_key, readers_of(keys, [b"bank"]))
    with pytest.raises(SharingError, match="data key"):
        ev.rewrap(suite, data_key + b"\0", keys[b"auditor"].public_key)
    with pytest.raises(SharingError, match="cannot seal"):
        ev.rewrap(suite, data_key, org_keys(other(suite))[b"bank"].public_key[:31])


def test_encoding_round_trips_and_is_canonical(suite):
    keys = org_keys(suite)
    record = ev.seal_record(suite, TEXT, AAD1, readers_of(keys, [b"rater", b"bank", b"auditor"]))
    raw = record.encode()
    name = suite.name.encode()
    reader_bytes = sum(1 + len(r) + suite.aead_key_bytes + suite.seal_overhead for r in record.readers)
    assert len(raw) == 2 + len(name) + suite.aead_nonce_bytes + 2 + reader_bytes + 4 + len(record.ciphertext)
    back = SealedRecord.decode(raw)
    assert back == record and back.encode() == raw
    assert SealedRecord.decode(raw, suite) == record
    assert ev.open_record(suite, back, b"auditor", keys[b"auditor"], AAD1) == TEXT
    # Built from readers in any order, the encoding is the same.
    shuffled = SealedRecord(
        suite.name, record.nonce, record.ciphertext, dict(reversed(record.wrapped.items()))
    )
    assert shuffled.encode() == raw
    with pytest.raises(SharingError, match=f"a {suite.name} record on a {other(suite).name} chain"):
        SealedRecord.decode(raw, other(suite))


def _encode(version, name, nonce, entries, ciphertext) -> bytes:
    out = bytes([version, len(name)]) + name + nonce + struct.pack("<H", len(entries))
    for reader_id, wrapped in entries:
        out += bytes([len(reader_id)]) + reader_id + wrapped
    return out + struct.pack("<I", len(ciphertext)) + ciphertext


def test_malformed_encodings_are_refused(suite):
    keys = org_keys(suite)
    record = ev.seal_record(suite, TEXT, AAD1, readers_of(keys, [b"bank", b"rater"]))
    raw = record.encode()
    name, nonce, ct = suite.name.encode(), record.nonce, record.ciphertext
    entries = list(record.wrapped.items())
    assert SealedRecord.decode(_encode(1, name, nonce, entries, ct)) == record  # the helper is right
    for cut in range(len(raw)):  # every truncation
        with pytest.raises(SharingError):
            SealedRecord.decode(raw[:cut])
    bad = {
        "trailing": raw + b"\0",
        "version": _encode(2, name, nonce, entries, ct),
        "suite": _encode(1, b"rsa-md5", nonce, entries, ct),
        "no suite": _encode(1, b"", nonce, entries, ct),
        "not ascii": _encode(1, b"\xff" * 7, nonce, entries, ct),
        "no readers": _encode(1, name, nonce, [], ct),
        "order": _encode(1, name, nonce, entries[::-1], ct),
        "repeat": _encode(1, name, nonce, [entries[0], entries[0]], ct),
        "empty id": _encode(1, name, nonce, [(b"", entries[0][1])], ct),
        "long id": _encode(1, name, nonce, [(b"x" * 65, entries[0][1])], ct),
        "short ct": _encode(1, name, nonce, entries, ct[: suite.aead_tag_bytes - 1]),
    }
    for why, data in bad.items():
        with pytest.raises(SharingError):
            SealedRecord.decode(data)
            pytest.fail(why)
    # The other suite's layout under this suite's name (nonce and wrapped sizes differ).
    theirs = ev.seal_record(other(suite), TEXT, AAD1, readers_of(org_keys(other(suite)), [b"bank"]))
    with pytest.raises(SharingError):
        SealedRecord.decode(_encode(1, name, theirs.nonce, list(theirs.wrapped.items()), theirs.ciphertext))
    with pytest.raises(SharingError):
        SealedRecord.decode(b"")


def test_sizes_and_bounds(suite):
    keys = org_keys(suite)
    bank = readers_of(keys, [b"bank"])
    big = os.urandom(ev.MAX_PLAINTEXT_BYTES)
    record = ev.seal_record(suite, big, AAD1, bank)
    assert ev.open_record(suite, SealedRecord.decode(record.encode()), b"bank", keys[b"bank"], AAD1) == big
    with pytest.raises(SharingError, match="at most"):
        ev.seal_record(suite, big + b"x", AAD1, bank)
    many = {i.to_bytes(2, "big"): keys[b"bank"].public_key for i in range(ev.MAX_READERS)}
    full = ev.seal_record(suite, b"x", AAD1, many)
    assert len(SealedRecord.decode(full.encode()).readers) == ev.MAX_READERS
    data_key = ev.unwrap_key(suite, full, b"\x00\x07", keys[b"bank"])
    with pytest.raises(SharingError, match="at most 256 readers"):
        ev.with_readers(suite, full, data_key, readers_of(keys, [b"rater"]))
    with pytest.raises(SharingError, match="1 to 256 readers"):
        ev.seal_record(suite, b"x", AAD1, {**many, b"one more": keys[b"bank"].public_key})
    with pytest.raises(SharingError, match="1 to 256 readers"):
        ev.seal_record(suite, b"x", AAD1, {})
    for reader_id in (b"", b"x" * (ev.MAX_READER_ID_BYTES + 1)):
        with pytest.raises(SharingError, match="reader id"):
            ev.seal_record(suite, b"x", AAD1, {reader_id: keys[b"bank"].public_key})
    assert ev.seal_record(suite, b"x", AAD1, {b"x" * ev.MAX_READER_ID_BYTES: keys[b"bank"].public_key})
    not_a_point = next(x for i in range(1000) if not suite.is_strong_public_key(x := i.to_bytes(32, "big")))
    with pytest.raises(SharingError, match="reader 6d616c6c6f7279: cannot seal"):
        ev.seal_record(suite, b"x", AAD1, {b"bank": keys[b"bank"].public_key, b"mallory": not_a_point})
    with pytest.raises(SharingError, match="associated data"):
        ev.seal_record(suite, b"x", b"a" * (ev.MAX_AAD_BYTES + 1), bank)
    with pytest.raises(SharingError):
        SealedRecord(suite.name, bytes(suite.aead_nonce_bytes + 1), bytes(16), record.wrapped)
    with pytest.raises(SharingError):
        SealedRecord(suite.name, record.nonce, bytes(16), {b"bank": b"short"})
    with pytest.raises(SharingError, match="unknown crypto suite"):
        SealedRecord("rsa-md5", record.nonce, bytes(16), record.wrapped)


def test_record_aad_binds_id_and_version():
    assert ev.record_aad(b"a", 1) != ev.record_aad(b"a", 2) != ev.record_aad(b"b", 2)
    assert ev.record_aad(b"ab", 1) != ev.record_aad(b"a", 0x62 + (1 << 8))  # length-prefixed
    assert ev.record_aad(b"r", 5) == b"\x01r" + (5).to_bytes(8, "little")
    for bad in ((b"", 1), (b"x" * 256, 1), (b"r", -1), (b"r", 1 << 64)):
        with pytest.raises(SharingError):
            ev.record_aad(*bad)


def _associated(suite: CryptoSuite, aad: bytes) -> bytes:
    return b"tierchain sharing record v1" + bytes([len(suite.name)]) + suite.name.encode() + aad


def test_ed25519_record_reads_with_libsodium_alone():
    keys = org_keys(ED25519_BLAKE3)
    record = ev.seal_record(ED25519_BLAKE3, TEXT, AAD1, readers_of(keys, [b"bank"]))
    _pk, secret = nacl.bindings.crypto_sign_seed_keypair(keys[b"bank"].seed)
    x_secret = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret)
    data_key = nacl.public.SealedBox(nacl.public.PrivateKey(x_secret)).decrypt(record.wrapped[b"bank"])
    plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        record.ciphertext, _associated(ED25519_BLAKE3, AAD1), record.nonce, data_key
    )
    assert plain == TEXT


def test_sm2_record_reads_with_the_sm_primitives_alone():
    keys = org_keys(SM2_SM3)
    record = ev.seal_record(SM2_SM3, TEXT, AAD1, readers_of(keys, [b"bank"]))
    d, _x = sm.keypair_from_seed(keys[b"bank"].seed, x_only=True)
    data_key = sm.decrypt(d, record.wrapped[b"bank"])
    assert data_key is not None and len(data_key) == 16
    assert sm.open(data_key, record.nonce, record.ciphertext, _associated(SM2_SM3, AAD1)) == TEXT
