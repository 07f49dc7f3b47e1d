"""Ed25519 (ZIP-215) verification in ``tierchain_native``: every path agrees.

The ledger's rule is that a signature gets the same verdict whichever path
checks it: ``verify``, ``verify_batch`` (alone or inside a large batch, at any
position) and ``verify_batch_packed``. Each case below goes through all four
(:func:`all_paths`). The cases are

* RFC 8032 §7.1 test vectors (``tests/vectors/ed25519_rfc8032.json``) and
  single-bit tamperings of each;
* the ZIP-215 edge cases: all 14 encodings of the 8 small-order points
  (canonical, ``y >= p`` and sign-bit variants) as ``A`` and ``R`` with
  ``S = 0`` — valid under the cofactored equation, rejected by libsodium;
  a mixed-order key ``A + T8`` (valid under ZIP-215, rejected by libsodium's
  cofactorless check); ``S >= L``; undecodable points; wrong lengths;
* random mixtures (hypothesis) and large batches with known bad positions.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.signing
import pytest
import tierchain_native as tn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VECTORS = Path(__file__).parents[1] / "vectors" / "ed25519_rfc8032.json"

P = 2**255 - 19  # field prime
L = 2**252 + 27742317777372353535851937790883648493  # group order
D = (-121665 * pow(121666, -1, P)) % P  # curve constant d

BIG_BATCH = 3000


# --------------------------------------------------------------------------
# helpers


def encode_y(y: int, sign: int) -> bytes:
    """Little-endian 255-bit y with the x sign bit on top (y may be >= p)."""
    assert 0 <= y < 2**255 and sign in (0, 1)
    return (y | (sign << 255)).to_bytes(32, "little")


def decodes(encoding: bytes) -> bool:
    """ZIP-215 decoding: y taken mod p (non-canonical allowed); x must exist.
    Independent of the code under test."""
    y = int.from_bytes(encoding, "little") & ((1 << 255) - 1)
    y %= P
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x2 = u * pow(v, -1, P) % P
    return x2 == 0 or pow(x2, (P - 1) // 2, P) == 1


def flip_bit(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def libsodium_accepts(pk: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(pk).verify(msg, sig)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False


_rng = random.Random(20260101)


def make_valid(n: int, msg_len: int = 32) -> list[tuple[bytes, bytes, bytes]]:
    out = []
    for _ in range(n):
        sk = nacl.signing.SigningKey.generate()
        msg = os.urandom(msg_len)
        out.append((bytes(sk.verify_key), msg, sk.sign(msg).signature))
    return out


@pytest.fixture(scope="module")
def filler() -> list[tuple[bytes, bytes, bytes]]:
    """Valid signatures over 32-byte messages, the background of big batches."""
    return make_valid(BIG_BATCH, 32)


def all_paths(cases: list[tuple[bytes, bytes, bytes]], filler) -> list[bool]:
    """Verdicts from ``verify``; asserts every other path gives the same ones."""
    single = [tn.verify(pk, msg, sig) for pk, msg, sig in cases]
    for (pk, msg, sig), want in zip(cases, single, strict=True):
        assert tn.verify_batch([pk], [msg], [sig]) == [want]
    # All cases at once, at random positions among BIG_BATCH valid signatures.
    batch = list(filler)
    positions = sorted(_rng.sample(range(len(batch) + len(cases)), len(cases)))
    for pos, case in zip(positions, cases, strict=True):
        batch.insert(pos, case)
    expected = [True] * len(batch)
    for pos, want in zip(positions, single, strict=True):
        expected[pos] = want
    got = tn.verify_batch(*map(list, zip(*batch, strict=True)))
    assert got == expected
    # Packed path: only for well-formed lengths and 32-byte messages.
    packable = [
        (i, c) for i, c in enumerate(cases) if len(c[0]) == 32 and len(c[1]) == 32 and len(c[2]) == 64
    ]
    if packable:
        items = [c for _, c in packable] + list(filler[:500])
        out = tn.verify_batch_packed(
            b"".join(c[0] for c in items), b"".join(c[1] for c in items), b"".join(c[2] for c in items)
        )
        assert list(out) == [int(single[i]) for i, _ in packable] + [1] * 500
    return single


# --------------------------------------------------------------------------
# RFC 8032 vectors


def load_vectors() -> list[dict]:
    doc = json.loads(VECTORS.read_text())
    assert "RFC 8032" in doc["source"] and "7.1" in doc["source"]
    return doc["vectors"]


def test_vector_file_is_rfc8032_and_transcribed_correctly():
    vectors = load_vectors()
    assert [v["name"] for v in vectors] == ["TEST 1", "TEST 2", "TEST 3", "TEST 1024", "TEST SHA(abc)"]
    for v in vectors:
        sk = nacl.signing.SigningKey(bytes.fromhex(v["secret_key"]))
        assert bytes(sk.verify_key).hex() == v["public_key"]
        assert sk.sign(bytes.fromhex(v["message"])).signature.hex() == v["signature"]
    assert len(bytes.fromhex(vectors[3]["message"])) == 1023
    assert bytes.fromhex(vectors[4]["message"]) == hashlib.sha512(b"abc").digest()


def test_rfc8032_vectors_valid_and_every_tampering_invalid(filler):
    cases, expected = [], []
    for v in load_vectors():
        pk, msg, sig = (bytes.fromhex(v[k]) for k in ("public_key", "message", "signature"))
        cases.append((pk, msg, sig))
        expected.append(True)
        for bit in (0, 7, 100, 254, 255):  # key: low, high and sign bits
            cases.append((flip_bit(pk, bit), msg, sig))
            expected.append(False)
        for bit in (0, 255, 256, 300, 511):  # R and S halves of the signature
            cases.append((pk, msg, flip_bit(sig, bit)))
            expected.append(False)
        if msg:
            for bit in (0, len(msg) * 8 - 1):
                cases.append((pk, flip_bit(msg, bit), sig))
                expected.append(False)
        cases.append((pk, msg + b"\x00", sig))
        expected.append(False)
    assert all_paths(cases, filler) == expected


# --------------------------------------------------------------------------
# ZIP-215 edge cases

# y of the order-8 points (the other one is P - Y8).
Y8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
SMALL_ORDER_Y = {
    "identity (order 1)": 1,
    "(0, -1) (order 2)": P - 1,
    "(±sqrt(-1), 0) (order 4)": 0,
    "order 8, y": Y8,
    "order 8, -y": P - Y8,
}


def small_order_encodings() -> dict[str, bytes]:
    """All 14 encodings of the 8 small-order points: canonical y, y + p where
    that is < 2^255, each with sign bit 0 and 1."""
    out = {}
    for name, y in SMALL_ORDER_Y.items():
        for label, value in (("", y), (" y+p", y + P)):
            if value >= 2**255:
                continue
            for sign in (0, 1):
                out[f"{name}{label} sign={sign}"] = encode_y(value, sign)
    return out


def test_small_order_encoding_set_is_complete():
    enc = small_order_encodings()
    assert len(enc) == 14
    assert enc["identity (order 1) sign=0"] == bytes([1]) + bytes(31)
    assert (
        enc["order 8, y sign=0"].hex() == "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"
    )
    assert (
        enc["order 8, -y sign=0"].hex() == "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
    )
    assert all(decodes(e) for e in enc.values())
    # And they really are small-order: [8]P is the identity (libsodium's
    # scalar multiplication refuses a small-order result, which is the point).
    for e in enc.values():
        canonical = encode_y(int.from_bytes(e, "little") % (1 << 255) % P, e[31] >> 7)
        with pytest.raises(nacl.exceptions.RuntimeError):
            nacl.bindings.crypto_scalarmult_ed25519_noclamp((8).to_bytes(32, "little"), canonical)


def test_small_order_a_and_r_with_zero_s_are_valid_under_zip215_not_libsodium(filler):
    enc = list(small_order_encodings().values())
    msg = b"small order".ljust(32, b".")
    cases = [(a, msg, r + bytes(32)) for a in enc for r in enc]
    verdicts = all_paths(cases, filler)
    # Cofactored equation: [8]0B == [8]R + [8]kA holds for any torsion A, R.
    assert verdicts == [True] * len(cases)
    # libsodium (PyNaCl) rejects every one of them — small-order A or R,
    # non-canonical encodings. Two libraries, two answers: that is why the
    # consensus path uses ZIP-215 (ed25519-zebra; ed25519-consensus before
    # it), not libsodium.
    assert not any(libsodium_accepts(*c) for c in cases)


def test_mixed_order_key_valid_under_zip215_rejected_by_libsodium(filler):
    """A' = aB + T8 with S = r + k*a: the torsion part vanishes only in the
    cofactored check, so ZIP-215 accepts and libsodium (cofactorless) does not."""
    t8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
    cases = []
    for attempt in range(64):
        a = _rng.randrange(1, L)
        r = _rng.randrange(1, L)
        pk = nacl.bindings.crypto_core_ed25519_add(
            nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(a.to_bytes(32, "little")), t8
        )
        big_r = nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(r.to_bytes(32, "little"))
        msg = f"mixed order {attempt}".encode().ljust(32, b".")
        k = int.from_bytes(hashlib.sha512(big_r + pk + msg).digest(), "little") % L
        if k % 8 == 0:
            continue  # then kT8 = 0 and even the cofactorless check passes
        s = (r + k * a) % L
        cases.append((pk, msg, big_r + s.to_bytes(32, "little")))
        if len(cases) == 4:
            break
    assert len(cases) == 4
    assert all_paths(cases, filler) == [True] * 4
    assert not any(libsodium_accepts(*c) for c in cases)


def test_non_canonical_s_is_invalid(filler):
    pk, msg, sig = make_valid(1)[0]
    s = int.from_bytes(sig[32:], "little")
    r = sig[:32]
    bad_s = [L, L + 1, s + L, 2**256 - 1, 2**255, 2**253]
    cases = [(pk, msg, r + v.to_bytes(32, "little")) for v in bad_s if v < 2**256]
    # s + L is the classic malleability attempt: same S mod L, must be rejected.
    assert (s + L) < 2**256
    assert all_paths(cases, filler) == [False] * len(cases)
    # and S = 0, S = L - 1 are canonical (invalid here only because the
    # equation fails, but they must reach the equation, not crash).
    for v in (0, L - 1):
        assert tn.verify(pk, msg, r + v.to_bytes(32, "little")) is False
    # Small-order A and R with S = L: canonical check comes first.
    ident = bytes([1]) + bytes(31)
    assert all_paths([(ident, msg, ident + L.to_bytes(32, "little"))], filler) == [False]


def test_undecodable_points_are_invalid(filler):
    pk, msg, sig = make_valid(1)[0]
    bad = [encode_y(y, 0) for y in range(2, 200) if not decodes(encode_y(y, 0))][:6]
    assert len(bad) == 6
    cases = [(b, msg, sig) for b in bad] + [(pk, msg, b + sig[32:]) for b in bad]
    assert all_paths(cases, filler) == [False] * len(cases)


def test_non_canonical_encodings_of_ordinary_points(filler):
    """For an ordinary (non-torsion) point with y < 19, y + p is a second
    encoding. ZIP-215 decodes it; nobody can produce a valid signature for it
    without that point's discrete log, so what we check is that it reaches the
    equation (False) identically on every path — and that the small-order
    non-canonical encodings above, where decoding alone decides, are valid."""
    pk, msg, sig = make_valid(1)[0]
    ys = [y for y in range(2, 19) if decodes(encode_y(y, 0))]
    assert ys, "some y < 19 decodes"
    cases = []
    for y in ys:
        for sign in (0, 1):
            e = encode_y(y + P, sign)
            cases += [(e, msg, sig), (pk, msg, e + sig[32:])]
    assert all_paths(cases, filler) == [False] * len(cases)


def test_wrong_lengths_are_false_never_errors(filler):
    pk, msg, sig = make_valid(1)[0]
    cases = [
        (pk[:31], msg, sig),
        (pk + b"\x00", msg, sig),
        (b"", msg, sig),
        (pk, msg, sig[:63]),
        (pk, msg, sig + b"\x00"),
        (pk, msg, b""),
    ]
    assert all_paths(cases, filler) == [False] * len(cases)
    assert tn.verify(pk, msg, sig) is True


def test_packed_rejects_inconsistent_buffer_sizes():
    pk, msg, sig = make_valid(1)[0]
    assert tn.verify_batch_packed(pk, msg, sig) == b"\x01"
    assert tn.verify_batch_packed(b"", b"", b"") == b""
    for args in [(pk[:31], msg, sig), (pk, msg[:31], sig), (pk, msg, sig[:63]), (pk + pk, msg, sig)]:
        with pytest.raises(ValueError):
            tn.verify_batch_packed(*args)


def test_packed_accepts_numpy_and_other_buffers():
    np = pytest.importorskip("numpy")
    items = make_valid(10)
    items[3] = (items[3][0], items[3][1], flip_bit(items[3][2], 9))
    keys = np.frombuffer(b"".join(i[0] for i in items), dtype=np.uint8)
    digests = bytearray(b"".join(i[1] for i in items))
    sigs = memoryview(b"".join(i[2] for i in items))
    want = bytes(int(i != 3) for i in range(10))
    assert tn.verify_batch_packed(keys, digests, sigs) == want
    assert tn.verify_batch_packed(keys.reshape(10, 32), bytes(digests), sigs) == want


def test_type_and_length_errors():
    pk, msg, sig = make_valid(1)[0]
    with pytest.raises(TypeError):
        tn.verify("not bytes", msg, sig)
    with pytest.raises(TypeError):
        tn.verify(pk, 12345, sig)
    with pytest.raises(TypeError):
        tn.verify_batch([pk], ["str"], [sig])
    with pytest.raises(ValueError):
        tn.verify_batch([pk, pk], [msg], [sig])
    assert tn.verify(bytearray(pk), memoryview(msg), bytearray(sig)) is True
    assert tn.verify_batch([], [], []) == []


# --------------------------------------------------------------------------
# big batches and random mixtures


def test_large_all_valid_batch():
    items = make_valid(5000, 40)
    assert tn.verify_batch(*map(list, zip(*items, strict=True))) == [True] * 5000


def test_large_batch_pinpoints_exactly_the_bad_ones():
    items = make_valid(5000, 32)
    bad = {0, 777, 4999}
    items[0] = (items[0][0], flip_bit(items[0][1], 3), items[0][2])
    items[777] = (items[777][0], items[777][1], flip_bit(items[777][2], 300))
    items[4999] = (items[1][0], items[4999][1], items[4999][2])
    got = tn.verify_batch(*map(list, zip(*items, strict=True)))
    assert {i for i, ok in enumerate(got) if not ok} == bad
    packed = tn.verify_batch_packed(*(b"".join(col) for col in zip(*items, strict=True)))
    assert {i for i, ok in enumerate(packed) if not ok} == bad


_POOL = make_valid(600, 32)
_KINDS = ["valid", "tampered_msg", "tampered_sig", "wrong_key", "small_order", "s_ge_l", "short"]


def _build(kind: int, j: int, bit: int) -> tuple[bytes, bytes, bytes, bool]:
    pk, msg, sig = _POOL[j]
    name = _KINDS[kind]
    if name == "valid":
        return pk, msg, sig, True
    if name == "tampered_msg":
        return pk, flip_bit(msg, bit % 256), sig, False
    if name == "tampered_sig":
        return pk, msg, flip_bit(sig, bit % 512), False
    if name == "wrong_key":
        return _POOL[(j + 1) % len(_POOL)][0], msg, sig, False
    if name == "small_order":
        enc = list(small_order_encodings().values())
        return enc[bit % 14], msg, enc[(bit // 14) % 14] + bytes(32), True
    if name == "s_ge_l":
        return pk, msg, sig[:32] + (L + bit).to_bytes(32, "little"), False
    return pk[: bit % 32], msg, sig, False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(_KINDS) - 1), st.integers(0, 599), st.integers(0, 10**6)),
        min_size=0,
        max_size=600,
    )
)
def test_batch_equals_single_for_random_mixtures(spec):
    rows = [_build(*s) for s in spec]
    pks = [r[0] for r in rows]
    msgs = [r[1] for r in rows]
    sigs = [r[2] for r in rows]
    single = [tn.verify(*r[:3]) for r in rows]
    # The construction's own verdict (valid / small-order junk True, every
    # tampering False) is the oracle for single verification...
    assert single == [r[3] for r in rows]
    # ...and batch verification must equal single verification element-wise.
    assert tn.verify_batch(pks, msgs, sigs) == single
    if all(len(k) == 32 for k in pks):
        assert list(tn.verify_batch_packed(b"".join(pks), b"".join(msgs), b"".join(sigs))) == [
            int(v) for v in single
        ]


def test_thread_count_honours_environment():
    assert tn.thread_count() >= 1
    code = "import tierchain_native as t; print(t.thread_count())"
    for value, ok in [("1", True), ("3", True), ("0", False), ("lots", False), ("-2", False)]:
        env = dict(os.environ, TIERCHAIN_THREADS=value)
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
        )
        if ok:
            assert run.returncode == 0 and run.stdout.strip() == value
        else:
            assert run.returncode != 0 and "TIERCHAIN_THREADS" in run.stderr


def test_allocator_purge_delay_is_set_unless_the_environment_sets_it():
    code = "import tierchain_native as t; print(t.allocator_purge_delay_ms())"
    base = {k: v for k, v in os.environ.items() if k not in ("MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY")}
    for extra, want in [
        ({}, tn.PURGE_DELAY_MS),
        ({"MIMALLOC_PURGE_DELAY": "1234"}, 1234),  # lands in the option the module sets
        ({"MIMALLOC_RESET_DELAY": "0"}, 0),  # the old name is honoured too
    ]:
        run = subprocess.run(
            [sys.executable, "-c", code], env={**base, **extra}, capture_output=True, text=True, check=True
        )
        assert int(run.stdout) == want, extra
    assert tn.PURGE_DELAY_MS > 1000  # longer than mimalloc's own default (1 s)
