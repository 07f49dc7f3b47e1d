"""The national suite object, ``sm2-sm3`` (``tierchain.crypto.suite.SM2_SM3``), and its keys.

Checked: x-only SM2 keys (even y) derived from seeds, signing and verification as
the suite and as another SM2 implementation (gmssl, over the full key ``02 || x``)
see them; batch verification pinpointing bad rows and refusing keys of the wrong
width; the hash, incremental hash and batch hash agreeing; RFC 6962 Merkle paths
against a reference recursion; the weak-key check; and SM2 key files (PBKDF2-HMAC-SM3
+ SM4-GCM): round trip, wrong passphrase, damage, and the suite they name.
"""

from __future__ import annotations

import json
import os

import pytest
from gmssl import sm2 as gm_sm2

from tierchain import crypto, domains
from tierchain.crypto import SM2_SM3, KeyFileDamaged, Sm2KeyPair, WrongPassphrase, sm
from tierchain.crypto.keyfile import load_key_file, save_key_file

SUITE = SM2_SM3


def test_keys_are_x_only_with_even_y_and_deterministic():
    for i in range(16):
        seed = bytes([i]) * 32
        keys = SUITE.keys_from_seed(seed)
        assert isinstance(keys, Sm2KeyPair) and keys.suite_name == "sm2-sm3"
        assert len(keys.public_key) == 32 and keys == Sm2KeyPair.from_seed(seed)
        full = sm.public_key_uncompressed(keys.public_key)
        assert full is not None and full[1:33] == keys.public_key and full[-1] % 2 == 0
        assert SUITE.is_strong_public_key(keys.public_key)
    with pytest.raises(ValueError, match="not the SM2 key of this seed"):
        Sm2KeyPair(seed=bytes(32), public_key=SUITE.keys_from_seed(bytes([1]) * 32).public_key)
    assert SUITE.generate_keys().public_key != SUITE.generate_keys().public_key


def _gmssl_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """An independent SM2 verifier (gmssl, pure Python) over the full key ``04 || x || y``."""
    xy = sm.public_key_uncompressed(public_key)[1:]
    v = gm_sm2.CryptSM2(private_key="", public_key="00" * 64)
    v.public_key = xy.hex()  # set after construction: gmssl's constructor mangles keys starting "04"
    return v.verify_with_sm3(signature.hex(), message)


def test_signatures_verify_here_and_in_another_implementation():
    keys = [SUITE.keys_from_seed(os.urandom(32)) for _ in range(6)]
    for k in keys:
        msg = os.urandom(32)
        sig = k.sign(msg)
        assert len(sig) == SUITE.signature_bytes
        assert SUITE.verify(k.public_key, msg, sig)
        assert _gmssl_verify(k.public_key, msg, sig)
        bad = sig[:-1] + bytes([sig[-1] ^ 1])
        assert not SUITE.verify(k.public_key, msg, bad)
        assert not _gmssl_verify(k.public_key, msg, bad)
    # gmssl signs (random nonce), the suite verifies: r || s, the default user ID.
    k = keys[0]
    signer = gm_sm2.CryptSM2(private_key=k._signer.hex(), public_key="00" * 64)
    signer.public_key = sm.public_key_uncompressed(k.public_key)[1:].hex()
    msg = os.urandom(32)
    sig = bytes.fromhex(signer.sign_with_sm3(msg, os.urandom(32).hex()))
    assert SUITE.verify(k.public_key, msg, sig)
    # The suite takes only its own 32-byte form of a key (the 33-byte one is sm.verify's).
    assert not SUITE.verify(b"\x02" + k.public_key, msg, sig)


def test_batch_verification_pinpoints_bad_rows_and_refuses_other_widths():
    keys = [SUITE.keys_from_seed(bytes([i + 1]) * 32) for i in range(40)]
    msgs = [os.urandom(32) for _ in keys]
    sigs = [k.sign(m) for k, m in zip(keys, msgs, strict=True)]
    bad = {3, 17, 39}
    for i in bad:
        sigs[i] = sigs[(i + 1) % len(sigs)]
    packed = SUITE.verify_batch_packed(b"".join(k.public_key for k in keys), b"".join(msgs), b"".join(sigs))
    assert [i for i, ok in enumerate(packed) if not ok] == sorted(bad)
    assert SUITE.verify_batch([k.public_key for k in keys], msgs, sigs) == [i not in bad for i in range(40)]
    assert SUITE.verify_batch([b"\x02" + keys[0].public_key], msgs[:1], sigs[:1]) == [False]
    with pytest.raises(ValueError):
        SUITE.verify_batch_packed(b"\x02" + keys[0].public_key, msgs[0], sigs[0])
    assert SUITE.verify_batch_packed(b"", b"", b"") == b""


def test_hash_incremental_and_batch_forms_agree():
    data = [os.urandom(n) for n in (0, 1, 63, 64, 65, 300)]
    for d in data:
        h = SUITE.hasher(domains.TX_BODY)
        h.update(d[:10])
        h.update(d[10:])
        assert h.digest() == SUITE.hash(domains.TX_BODY, d) == sm.hash(domains.TX_BODY, d)
        assert SUITE.hash(domains.TX_BODY, d) != SUITE.hash(domains.BLOCK_HEADER, d)
    buf = b"".join(data)
    ends = [sum(map(len, data[: i + 1])) for i in range(len(data))]
    starts = [0, *ends[:-1]]
    packed = SUITE.hash_many(domains.TX_BODY, buf, starts, ends)
    assert [packed[32 * i : 32 * i + 32] for i in range(len(data))] == [
        SUITE.hash(domains.TX_BODY, d) for d in data
    ]


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 Merkle tree hash, with the suite's leaf and node hashes."""
    if len(leaves) == 1:
        return SUITE.merkle_leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return SUITE.merkle_node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 33])
def test_merkle_paths_prove_every_leaf_against_the_reference_root(n):
    leaves = [os.urandom(1 + i % 40) for i in range(n)]
    root = SUITE.merkle_root(leaves)
    assert root == _mth(leaves)
    digests = [sm.sm3(x) for x in leaves]
    assert SUITE.merkle_root_packed(b"".join(digests)) == SUITE.merkle_root(digests) == _mth(digests)
    for i in range(n):
        path = SUITE.merkle_prove(leaves, i)
        assert SUITE.merkle_verify(root, leaves[i], i, n, path)
        assert not SUITE.merkle_verify(root, leaves[i] + b"x", i, n, path)
        if n > 1:
            assert not SUITE.merkle_verify(root, leaves[i], (i + 1) % n, n, path)
        assert not crypto.ED25519_BLAKE3.merkle_verify(root, leaves[i], i, n, path)


def test_a_non_point_is_not_a_key():
    non_points = [x for i in range(200) if not SUITE.is_strong_public_key(x := i.to_bytes(32, "big"))]
    assert non_points  # about half of all x have no point
    key = SUITE.keys_from_seed(bytes(32)).public_key
    assert not SUITE.is_strong_public_key(b"\x02" + key)  # the compressed form: not the suite's width
    assert not SUITE.is_strong_public_key(key[:31])


@pytest.fixture
def cheap_iterations():
    return 1000


def test_key_file_round_trip_says_its_suite(tmp_path, cheap_iterations):
    keys = SUITE.keys_from_seed(os.urandom(32))
    path = tmp_path / "k.key"
    save_key_file(path, keys, "pass phrase", iterations=cheap_iterations)
    doc = json.loads(path.read_text())
    assert doc["suite"] == "sm2-sm3" and doc["kdf"] == "pbkdf2-hmac-sm3"
    assert keys.seed.hex() not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = load_key_file(path, "pass phrase")
    assert isinstance(loaded, Sm2KeyPair) and loaded == keys
    with pytest.raises(WrongPassphrase):
        load_key_file(path, "pass phrasE")


def test_a_damaged_or_relabelled_key_file_is_damaged_not_a_wrong_passphrase(tmp_path, cheap_iterations):
    keys = SUITE.keys_from_seed(os.urandom(32))
    path = tmp_path / "k.key"
    save_key_file(path, keys, "pw", iterations=cheap_iterations)
    doc = json.loads(path.read_text())
    for field, value in (
        ("suite", "ed25519-blake3"),
        ("suite", "rsa"),
        ("iterations", 1001),
        ("nonce", "00" * 12),
    ):
        bad = dict(doc, **{field: value})
        path.write_text(json.dumps(bad))
        with pytest.raises(KeyFileDamaged):
            load_key_file(path, "pw")
    # Re-checksummed after tampering with the sealed seed: the cipher's tag catches it.
    fields = {k: v for k, v in doc.items() if k != "checksum"}
    sealed = bytearray.fromhex(fields["sealed_seed"])
    sealed[0] ^= 1
    fields["sealed_seed"] = sealed.hex()
    path.write_text(json.dumps(dict(fields, checksum=crypto._checksum(fields, SUITE))))
    with pytest.raises(WrongPassphrase):  # indistinguishable from a wrong passphrase, by design of AEAD
        load_key_file(path, "pw")
    # A KDF cost outside the bounds is refused before any work.
    fields = {k: v for k, v in doc.items() if k != "checksum"}
    fields["iterations"] = 10**9
    path.write_text(json.dumps(dict(fields, checksum=crypto._checksum(fields, SUITE))))
    with pytest.raises(KeyFileDamaged, match="KDF cost"):
        load_key_file(path, "pw")


@pytest.mark.parametrize("name", sorted(crypto.SUITES))
def test_every_suite_seals_key_files_in_its_own_scheme(tmp_path, name, fast_kdf):
    suite = crypto.SUITES[name]
    keys = suite.keys_from_seed(os.urandom(32))
    save_key_file(tmp_path / "k", keys, "pw")
    doc = json.loads((tmp_path / "k").read_text())
    assert doc["suite"] == name
    loaded = load_key_file(tmp_path / "k", "pw")
    assert loaded == keys and loaded.suite_name == name and type(loaded) is type(keys)


def test_keyed_hash_is_hmac_sm3_as_openssl_computes_it():
    import hashlib
    import hmac

    for key_len, data_len in ((32, 0), (32, 100), (16, 64), (65, 5), (200, 1000)):
        key, data = os.urandom(key_len), os.urandom(data_len)
        expected = hmac.new(key, data, lambda d=b"": hashlib.new("sm3", d)).digest()  # OpenSSL SM3
        assert SUITE.keyed_hash(key, data) == sm.hmac_sm3(key, data) == expected
    key = os.urandom(32)
    assert SUITE.keyed_hash(key, b"x") != crypto.ED25519_BLAKE3.keyed_hash(key, b"x")


def test_sm2_encryption_interoperates_with_another_implementation():
    """GB/T 32918.4 C1||C3||C2 both ways with gmssl (mode 1); ours compresses C1, gmssl
    writes x||y without the 04 tag: each side's C1 is re-encoded for the other."""
    for _ in range(4):
        d, x = sm.keypair_from_seed(os.urandom(32), x_only=True)
        xy = sm.public_key_uncompressed(x)[1:]
        other = gm_sm2.CryptSM2(private_key=d.hex(), public_key="00" * 64, mode=1)
        other.public_key = xy.hex()
        msg = os.urandom(1 + os.urandom(1)[0])
        ours = sm.encrypt(x, msg)
        assert len(ours) == len(msg) + sm.PKE_OVERHEAD_BYTES
        c1 = sm.public_key_uncompressed(ours[:33])[1:]
        assert other.decrypt(c1 + ours[33:]) == msg
        theirs = other.encrypt(msg)
        assert sm.decrypt(d, b"\x04" + theirs) == msg
        assert sm.decrypt(SUITE.keys_from_seed(os.urandom(32))._signer, ours) is None
        bad = bytearray(ours)
        bad[-1] ^= 1
        assert sm.decrypt(d, bytes(bad)) is None
    assert sm.encrypt(bytes(31), b"m") is None and sm.encrypt(x, b"") is None
