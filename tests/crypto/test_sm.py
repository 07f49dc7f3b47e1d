"""National cryptography primitives (tierchain.crypto.sm, ext/rust/src/crypto/sm.rs).

Published vectors (tests/vectors/sm_published.json cites each source), an
independent implementation on random inputs in both directions (the pure-Python
``gmssl`` package; OpenSSL's command line where present), batch == single with bad
items mixed in, and the error conventions.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import pytest
from gmssl import sm2 as g_sm2  # the dev extra's independent SM2/SM3/SM4 (pure Python)
from gmssl import sm3 as g_sm3
from gmssl import sm4 as g_sm4

from tierchain.crypto import sm

VECTORS = json.loads((pathlib.Path(__file__).parents[1] / "vectors" / "sm_published.json").read_text())


def g_sm3_hash(data: bytes) -> bytes:
    return bytes.fromhex(g_sm3.sm3_hash(list(data)))


def g_signer(secret_key: bytes | None, public_key: bytes) -> g_sm2.CryptSM2:
    full = sm.public_key_uncompressed(public_key)
    assert full is not None
    xy = full[1:].hex()
    # gmssl strips a leading "04" (with str.lstrip, so more than one char): pass x || y bare.
    assert not xy.startswith("04")
    return g_sm2.CryptSM2(private_key=secret_key.hex() if secret_key else "", public_key=xy)


def keys_for_gmssl(seed_base: int) -> tuple[bytes, bytes]:
    """A key pair whose x coordinate's hex does not start with "04" (gmssl's lstrip bug)."""
    i = seed_base
    while True:
        d, pk = sm.keypair_from_seed(i.to_bytes(32, "big"))
        if not pk[1:].hex().startswith("04"):
            return d, pk
        i += 1_000_003


# --- published vectors -----------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["sm3"])
def test_sm3_published(case: dict[str, str]) -> None:
    message = case["message_ascii"].encode()
    assert sm.sm3(message).hex() == case["digest"]
    assert g_sm3_hash(message).hex() == case["digest"]


@pytest.mark.parametrize("case", VECTORS["sm4"])
def test_sm4_published(case: dict[str, str]) -> None:
    key, pt = bytes.fromhex(case["key"]), bytes.fromhex(case["plaintext"])
    assert sm.sm4_encrypt_ecb(key, pt).hex() == case["ciphertext"]


@pytest.mark.parametrize("case", VECTORS["sm4_gcm"])
def test_sm4_gcm_published(case: dict[str, str]) -> None:
    key, nonce, aad, pt = (bytes.fromhex(case[k]) for k in ("key", "nonce", "aad", "plaintext"))
    sealed = sm.seal(key, nonce, pt, aad)
    assert sealed.hex() == case["ciphertext"] + case["tag"]
    assert sm.open(key, nonce, sealed, aad) == pt
    for index in (0, len(pt) - 1, len(pt), len(sealed) - 1):
        damaged = bytearray(sealed)
        damaged[index] ^= 1
        assert sm.open(key, nonce, bytes(damaged), aad) is None
    assert sm.open(key, nonce, sealed, aad + b"x") is None
    assert sm.open(key, bytes(12), sealed, aad) is None


@pytest.mark.parametrize("case", VECTORS["sm2"])
def test_sm2_published(case: dict[str, str]) -> None:
    d = bytes.fromhex(case["secret_key"])
    message = case["message_ascii"].encode()
    pk = sm.public_key(d)
    assert pk is not None
    assert sm.public_key_uncompressed(pk) == bytes.fromhex("04" + case["public_x"] + case["public_y"])
    signature = bytes.fromhex(case["r"] + case["s"])
    assert sm.verify(pk, message, signature, case["user_id"])
    assert not sm.verify(pk, message + b"!", signature, case["user_id"])
    assert not sm.verify(pk, message, signature, "ALICE123@YAHOO.COM")
    # ZA and e as published, from the standard's formula and our SM3.
    table = g_sm2.default_ecc_table
    za_input = (
        (8 * len(case["user_id"])).to_bytes(2, "big")
        + case["user_id"].encode()
        + bytes.fromhex(table["a"] + table["b"] + table["g"] + case["public_x"] + case["public_y"])
    )
    assert sm.sm3(za_input).hex() == case["za"]
    assert sm.sm3(bytes.fromhex(case["za"]) + message).hex() == case["e"]
    # The independent implementation reproduces (r, s) at the published k: the
    # transcription is right, and it accepts the signature.
    signer = g_sm2.CryptSM2(private_key=case["secret_key"], public_key=case["public_x"] + case["public_y"])
    assert signer.sign_with_sm3(message, case["k"]) == case["r"] + case["s"]
    assert signer.verify_with_sm3(case["r"] + case["s"], message)


# --- independent implementation, random inputs, both directions --------------------------


def test_sm3_equals_gmssl_on_random_inputs() -> None:
    for length in (0, 1, 55, 56, 63, 64, 65, 100, 300, 1000):
        data = os.urandom(length)
        assert sm.sm3(data) == g_sm3_hash(data)


def test_domain_hash_construction_against_gmssl() -> None:
    for context in ("", "tierchain 2026 tx body", "k" * 62, "k" * 63, "ctx" * 50):
        data = os.urandom(77)
        prefix = len(context.encode()).to_bytes(2, "big") + context.encode()
        prefix += bytes(-len(prefix) % 64)
        assert sm.hash(context, data) == g_sm3_hash(prefix + data)


def test_sm2_ours_verify_in_gmssl_and_theirs_here() -> None:
    for i in range(6):
        d, pk = keys_for_gmssl(i + 1)
        signer = g_signer(d, pk)
        message = os.urandom(32)
        ours = sm.sign(d, message)
        assert len(ours) == sm.SIGNATURE_BYTES
        assert signer.verify_with_sm3(ours.hex(), message)
        assert not signer.verify_with_sm3(ours.hex(), message[::-1])
        theirs = bytes.fromhex(signer.sign_with_sm3(message))
        assert sm.verify(pk, message, theirs)
        assert not sm.verify(pk, os.urandom(32), theirs)


def test_sm4_ecb_and_cbc_equal_gmssl() -> None:
    for _ in range(5):
        key, iv, data = os.urandom(16), os.urandom(16), os.urandom(64)
        ecb = g_sm4.CryptSM4(padding_mode=-1)  # neither PKCS7 nor ZERO: no padding
        ecb.set_key(key, g_sm4.SM4_ENCRYPT)
        assert sm.sm4_encrypt_ecb(key, data) == ecb.crypt_ecb(data)
        # CBC (gmssl pads PKCS#7: a full block of 0x10 after 64 bytes) from our block function.
        cbc = g_sm4.CryptSM4()
        cbc.set_key(key, g_sm4.SM4_ENCRYPT)
        padded, chained, out = data + bytes([16]) * 16, iv, b""
        for j in range(0, len(padded), 16):
            chained = sm.sm4_encrypt_ecb(
                key, bytes(a ^ b for a, b in zip(padded[j : j + 16], chained, strict=True))
            )
            out += chained
        assert out == cbc.crypt_cbc(iv, data)


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command line on this machine")
def test_sm3_equals_openssl_cli() -> None:
    for length in (0, 3, 100, 300):
        data = os.urandom(length)
        result = subprocess.run(
            [OPENSSL, "dgst", "-sm3", "-binary"], input=data, capture_output=True, check=False
        )
        if result.returncode != 0:
            pytest.skip(f"this openssl has no SM3: {result.stderr.decode(errors='replace').strip()}")
        assert result.stdout == sm.sm3(data)


# --- SM2 keys, batch, malformed -------------------------------------------------------------


def test_keys_from_seed_are_deterministic() -> None:
    d, pk = sm.keypair_from_seed(bytes(32))
    assert (d, pk) == sm.keypair_from_seed(bytes(32))
    assert len(d) == sm.SECRET_KEY_BYTES and len(pk) == sm.PUBLIC_KEY_BYTES and pk[0] in (2, 3)
    assert sm.public_key(d) == pk
    assert d == sm.sm3(b"tierchain sm2 secret key" + bytes(32) + b"\x00")  # counter 0 accepted here
    assert sm.sign(d, b"m") == sm.sign(d, b"m")  # deterministic signing
    with pytest.raises(ValueError):
        sm.keypair_from_seed(bytes(31))
    n = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
    for bad in (0, n - 1, n):
        assert sm.public_key(bad.to_bytes(32, "big")) is None
        with pytest.raises(ValueError):
            sm.sign(bad.to_bytes(32, "big"), b"m")
    assert sm.public_key((n - 2).to_bytes(32, "big")) is not None


def signed(count: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    keys, messages, signatures = [], [], []
    for i in range(count):
        d, pk = sm.keypair_from_seed(i.to_bytes(32, "little"))
        message = os.urandom(32)
        keys.append(pk)
        messages.append(message)
        signatures.append(sm.sign(d, message))
    return keys, messages, signatures


def test_batch_equals_single_with_bad_items() -> None:
    keys, messages, signatures = signed(50)
    keys[0] = keys[0][:5] + bytes([keys[0][5] ^ 1]) + keys[0][6:]
    messages[1] = bytes(32)
    signatures[2] = signatures[2][:40] + bytes([signatures[2][40] ^ 1]) + signatures[2][41:]
    signatures[3] = bytes(32) + signatures[3][32:]  # r = 0
    signatures[4] = signatures[4][:32] + b"\xff" * 32  # s >= n
    keys[5] = keys[6]
    keys[7] = keys[7][:32]  # short key
    signatures[8] = signatures[8][:63]  # short signature
    keys[9] = sm.public_key_uncompressed(keys[9]) or b""  # only the compressed form is accepted
    single = [sm.verify(k, m, s) for k, m, s in zip(keys, messages, signatures, strict=True)]
    assert single == [i == 6 or i > 9 for i in range(50)]
    assert sm.verify_batch(keys, messages, signatures) == single
    assert sm.verify_batch([], [], []) == []
    fixed = [i for i in range(50) if len(keys[i]) == 33 and len(signatures[i]) == 64]
    packed = sm.verify_batch_packed(
        b"".join(keys[i] for i in fixed),
        b"".join(messages[i] for i in fixed),
        b"".join(signatures[i] for i in fixed),
    )
    assert list(packed) == [int(single[i]) for i in fixed]


def test_errors_and_types() -> None:
    keys, messages, signatures = signed(2)
    with pytest.raises(ValueError):
        sm.verify_batch(keys, messages[:1], signatures)
    with pytest.raises(ValueError):
        sm.verify_batch_packed(b"".join(keys)[:-1], b"".join(messages), b"".join(signatures))
    with pytest.raises(ValueError):
        sm.verify_batch_packed(b"".join(keys), b"".join(messages), b"".join(signatures)[:-1])
    with pytest.raises(ValueError):
        sm.verify(keys[0], messages[0], signatures[0], "i" * 8192)  # ENTL is 16 bits
    with pytest.raises(ValueError):
        sm.hash("c" * 65536, b"")
    with pytest.raises(ValueError):
        sm.hash_many("c", b"abc", [0], [4])
    with pytest.raises(ValueError):
        sm.kdf(b"p", b"s", 1, 1025)
    with pytest.raises(ValueError):
        sm.kdf(b"p", b"s", 0, 16)
    with pytest.raises(ValueError):
        sm.seal(bytes(15), bytes(12), b"")
    with pytest.raises(ValueError):
        sm.sm4_encrypt_ecb(bytes(16), bytes(15))
    with pytest.raises(TypeError):
        sm.verify("key", messages[0], signatures[0])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sm.verify_batch([1], [messages[0]], [signatures[0]])  # type: ignore[list-item]
    assert sm.verify(bytearray(keys[0]), memoryview(messages[0]), bytearray(signatures[0]))
    assert not sm.verify(b"", b"", b"")


# --- hashing shapes ----------------------------------------------------------------------------


def test_hash_many_and_merkle() -> None:
    buf = os.urandom(40_000)
    starts = [(i * 97) % 39_000 for i in range(600)]
    ends = [s + i % 300 for i, s in enumerate(starts)]
    out = sm.hash_many("tierchain 2026 tx body", buf, starts, ends)
    assert out == b"".join(
        sm.hash("tierchain 2026 tx body", buf[s:e]) for s, e in zip(starts, ends, strict=True)
    )

    def mth(leaves: list[bytes]) -> bytes:
        if not leaves:
            return g_sm3_hash(b"")
        if len(leaves) == 1:
            return g_sm3_hash(b"\x00" + leaves[0])
        k = 1 << ((len(leaves) - 1).bit_length() - 1)
        return g_sm3_hash(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))

    for n in (0, 1, 2, 3, 5, 8, 13, 300):
        leaves = [os.urandom(32) for _ in range(n)]
        assert sm.merkle_root(leaves) == mth(leaves)
        if n:
            assert sm.merkle_root_packed(b"".join(leaves)) == mth(leaves)
    a, b = os.urandom(32), os.urandom(32)
    assert sm.merkle_node_hash(a, b) == g_sm3_hash(b"\x01" + a + b)
    assert sm.merkle_leaf_hash(a) == g_sm3_hash(b"\x00" + a)


def test_kdf_and_seal_round_trip() -> None:
    key = sm.kdf(b"correct horse", b"salt" * 4, 1000)
    assert len(key) == sm.SM4_KEY_BYTES
    assert key == sm.kdf(b"correct horse", b"salt" * 4, 1000, 16)
    assert key != sm.kdf(b"correct horse", b"salt" * 4, 1001, 16)
    # PBKDF2's first block is HMAC-SM3(password, salt || 00000001) for one iteration.
    import hmac as py_hmac

    class _Sm3:  # hashlib-style wrapper around gmssl for the stdlib hmac module
        digest_size, block_size = 32, 64

        def __init__(self, data: bytes = b"") -> None:
            self.data = bytes(data)

        def update(self, data: bytes) -> None:
            self.data += bytes(data)

        def copy(self) -> _Sm3:
            return _Sm3(self.data)

        def digest(self) -> bytes:
            return g_sm3_hash(self.data)

    expected = py_hmac.new(b"pw", b"salt\x00\x00\x00\x01", _Sm3).digest()
    assert sm.kdf(b"pw", b"salt", 1, 32) == expected
    nonce = os.urandom(12)
    for size in (0, 1, 16, 1000):
        plaintext = os.urandom(size)
        sealed = sm.seal(key, nonce, plaintext, b"keyfile v1")
        assert len(sealed) == size + sm.GCM_TAG_BYTES
        assert sm.open(key, nonce, sealed, b"keyfile v1") == plaintext
        assert sm.open(key, nonce, sealed, b"keyfile v2") is None
