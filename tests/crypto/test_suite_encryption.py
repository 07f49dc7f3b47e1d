"""The crypto suites' encryption (issue 18, step 1): sealing to a recipient's key and the
authenticated cipher, each suite against its primitive.

``ed25519-blake3``: a libsodium sealed box to the X25519 form of the Ed25519 key (what
confidential openings have always used), XChaCha20-Poly1305-IETF (PyNaCl). ``sm2-sm3``: SM2
public-key encryption to the x-only key, SM4-GCM. Checked: round trips and sizes, another
key / another suite's key pair / damage refused, interoperation with the primitive in both
directions, published vectors, and the error conventions (ValueError for wrong sizes and
keys that are not the suite's).
"""

from __future__ import annotations

import json
import os
import pathlib

import nacl.bindings
import nacl.public
import pytest

from tierchain.crypto import ED25519_BLAKE3, SM2_SM3, SUITES, CryptoSuite, KeyPair, sm

VECTORS = json.loads((pathlib.Path(__file__).parents[1] / "vectors" / "sm_published.json").read_text())
OVERHEAD = {"ed25519-blake3": 48, "sm2-sm3": 65}
AEAD = {"ed25519-blake3": (32, 24, 16), "sm2-sm3": (16, 12, 16)}


@pytest.fixture(params=sorted(SUITES), ids=str)
def suite(request) -> CryptoSuite:
    return SUITES[request.param]


def other(suite: CryptoSuite) -> CryptoSuite:
    return SM2_SM3 if suite is ED25519_BLAKE3 else ED25519_BLAKE3


def keys(suite: CryptoSuite, i: int) -> KeyPair:
    return suite.keys_from_seed(bytes([i]) * 32)


def test_every_suite_implements_encryption():
    assert {"seal", "unseal", "aead_seal", "aead_open"} <= CryptoSuite.__abstractmethods__
    for name, suite in SUITES.items():
        assert suite.seal_overhead == OVERHEAD[name]
        assert (suite.aead_key_bytes, suite.aead_nonce_bytes, suite.aead_tag_bytes) == AEAD[name]
    assert ED25519_BLAKE3.seal_scheme == "x25519-sealed-box" and SM2_SM3.seal_scheme == "sm2-pke"
    assert ED25519_BLAKE3.aead_scheme == "xchacha20poly1305-ietf" and SM2_SM3.aead_scheme == "sm4-gcm"


# --- sealing to a recipient's key ----------------------------------------------------------


def test_seal_opens_for_its_recipient_only(suite):
    alice, bob = keys(suite, 1), keys(suite, 2)
    for size in (1, 32, 1000):
        message = os.urandom(size)
        sealed = suite.seal(alice.public_key, message)
        assert len(sealed) == size + suite.seal_overhead
        assert suite.unseal(alice, sealed) == message
        assert suite.seal(alice.public_key, message) != sealed  # fresh randomness each call
        assert suite.unseal(bob, sealed) is None
    sealed = suite.seal(alice.public_key, b"k" * 32)
    for i in range(len(sealed)):  # damaged anywhere
        damaged = bytearray(sealed)
        damaged[i] ^= 0x40
        assert suite.unseal(alice, bytes(damaged)) is None
    for cut in (0, 1, suite.seal_overhead - 1, suite.seal_overhead, len(sealed) - 1):
        assert suite.unseal(alice, sealed[:cut]) is None
    assert suite.unseal(alice, sealed + b"\0") is None


def test_seal_refuses_keys_not_the_suites_and_empty_plaintext(suite):
    alice = keys(suite, 1)
    with pytest.raises(ValueError, match="nothing to seal"):
        suite.seal(alice.public_key, b"")
    not_a_point = next(x for i in range(1000) if not suite.is_strong_public_key(x := i.to_bytes(32, "big")))
    for bad in (alice.public_key[:31], alice.public_key + b"\0", b"", not_a_point):
        with pytest.raises(ValueError, match=r"not an? (Ed25519|SM2) public key"):
            suite.seal(bad, b"secret")
    with pytest.raises(ValueError, match="not a"):  # a key pair of the other suite
        suite.unseal(keys(other(suite), 1), suite.seal(alice.public_key, b"secret"))
    with pytest.raises(TypeError):
        suite.unseal(alice.seed, suite.seal(alice.public_key, b"secret"))


def test_ed25519_refuses_small_order_keys():
    identity = bytes([1]) + bytes(31)  # the identity point: no X25519 secret behind it
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        ED25519_BLAKE3.seal(identity, b"secret")


def test_sm2_refuses_compressed_keys():
    alice = keys(SM2_SM3, 1)
    assert sm.encrypt(b"\x02" + alice.public_key, b"m") is not None  # the primitive takes it
    with pytest.raises(ValueError, match="not an SM2 public key"):
        SM2_SM3.seal(b"\x02" + alice.public_key, b"m")


def test_ed25519_sealing_is_libsodiums_sealed_box_to_the_x25519_key():
    alice = keys(ED25519_BLAKE3, 7)
    x_public = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(alice.public_key)
    _pk, secret = nacl.bindings.crypto_sign_seed_keypair(alice.seed)
    x_secret = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret)
    message = os.urandom(72)
    sealed = ED25519_BLAKE3.seal(alice.public_key, message)
    assert nacl.public.SealedBox(nacl.public.PrivateKey(x_secret)).decrypt(sealed) == message
    theirs = nacl.public.SealedBox(nacl.public.PublicKey(x_public)).encrypt(message)
    assert ED25519_BLAKE3.unseal(alice, theirs) == message


def test_sm2_sealing_is_sm2_encryption_to_the_x_only_key():
    alice = keys(SM2_SM3, 7)
    d, x = sm.keypair_from_seed(alice.seed, x_only=True)
    assert x == alice.public_key
    message = os.urandom(72)
    sealed = SM2_SM3.seal(alice.public_key, message)
    assert sealed[0] in (2, 3) and sm.decrypt(d, sealed) == message  # C1 compressed || C3 || C2
    assert SM2_SM3.unseal(alice, sm.encrypt(alice.public_key, message)) == message
    assert SM2_SM3.unseal(alice, sm.encrypt(b"\x02" + alice.public_key, message)) == message


# --- the authenticated cipher --------------------------------------------------------------


def test_aead_round_trip_and_every_change_refused(suite):
    key, nonce = os.urandom(suite.aead_key_bytes), os.urandom(suite.aead_nonce_bytes)
    for size in (0, 1, 1000):
        message = os.urandom(size)
        sealed = suite.aead_seal(key, nonce, message, b"record 1 v1")
        assert len(sealed) == size + suite.aead_tag_bytes
        assert suite.aead_open(key, nonce, sealed, b"record 1 v1") == message
        assert suite.aead_open(key, nonce, sealed, b"record 1 v2") is None
        assert suite.aead_open(key, nonce, sealed) is None
        assert suite.aead_open(bytes(len(key)), nonce, sealed, b"record 1 v1") is None
        assert suite.aead_open(key, bytes(len(nonce)), sealed, b"record 1 v1") is None
        for i in range(0, len(sealed), max(1, len(sealed) // 50)):
            damaged = bytearray(sealed)
            damaged[i] ^= 1
            assert suite.aead_open(key, nonce, bytes(damaged), b"record 1 v1") is None
        assert suite.aead_open(key, nonce, sealed[:-1], b"record 1 v1") is None
    assert suite.aead_seal(key, nonce, b"m") == suite.aead_seal(key, nonce, b"m", b"")  # no aad == empty
    assert suite.aead_open(key, nonce, b"") is None  # shorter than a tag


def test_aead_refuses_wrong_key_and_nonce_sizes(suite):
    k, n = suite.aead_key_bytes, suite.aead_nonce_bytes
    sealed = suite.aead_seal(bytes(k), bytes(n), b"m")
    for key, nonce in ((k - 1, n), (k + 1, n), (k, n - 1), (k, n + 1), (0, 0)):
        with pytest.raises(ValueError, match=f"{k}-byte key and a {n}-byte nonce"):
            suite.aead_seal(bytes(key), bytes(nonce), b"m")
        with pytest.raises(ValueError, match=f"{k}-byte key and a {n}-byte nonce"):
            suite.aead_open(bytes(key), bytes(nonce), sealed)


def test_ed25519_aead_is_libsodiums_xchacha20poly1305():
    # draft-irtf-cfrg-xchacha-03, A.3.1 (AEAD_XChaCha20_Poly1305)
    key, nonce = bytes(range(0x80, 0xA0)), bytes(range(0x40, 0x58))
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    message = (
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
        b"sunscreen would be it."
    )
    expected = bytes.fromhex(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa644"
        "0bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e"
        "3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
        "c0875924c1c7987947deafd8780acf49"
    )
    assert ED25519_BLAKE3.aead_seal(key, nonce, message, aad) == expected
    assert ED25519_BLAKE3.aead_open(key, nonce, expected, aad) == message
    key, nonce, message, aad = os.urandom(32), os.urandom(24), os.urandom(300), os.urandom(20)
    theirs = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(message, aad, nonce, key)
    assert ED25519_BLAKE3.aead_seal(key, nonce, message, aad) == theirs
    assert nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(theirs, aad, nonce, key) == message


@pytest.mark.parametrize("case", VECTORS["sm4_gcm"])
def test_sm2_aead_is_sm4_gcm(case):
    key, nonce, aad, message = (bytes.fromhex(case[k]) for k in ("key", "nonce", "aad", "plaintext"))
    sealed = SM2_SM3.aead_seal(key, nonce, message, aad)
    assert sealed.hex() == case["ciphertext"] + case["tag"]
    assert SM2_SM3.aead_open(key, nonce, sealed, aad) == message
    key, nonce, message, aad = os.urandom(16), os.urandom(12), os.urandom(300), os.urandom(20)
    assert SM2_SM3.aead_seal(key, nonce, message, aad) == sm.seal(key, nonce, message, aad)
    assert sm.open(key, nonce, SM2_SM3.aead_seal(key, nonce, message, aad), aad) == message
