"""Confidential-amount primitives (``tierchain.crypto.confidential``).

Proof checks (tampering, another context, batch == single), homomorphic sums
and linear combinations (hypothesis), encryption and decryption, and cross-checks of every group
element against independent code: libsodium's ristretto255 (recomputing
``H``, ``v*G + r*H``, linear combinations of points, ElGamal public keys,
handles and the decryption equation byte for byte) and the RFC 9496 vectors in
``tests/vectors/ristretto255_rfc9496.json``.

libsodium: PyNaCl bundles libsodium but binds none of its ristretto255 functions;
``rbcl`` (a dev dependency) does, so the cross-checks always run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import rbcl
import tierchain_native as tn
from hypothesis import given, settings
from hypothesis import strategies as st

from tierchain.crypto import confidential as conf

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "ristretto255_rfc9496.json"
L = 2**252 + 27742317777372353535851937790883648493  # the group order
U64 = 2**64


def scalar(n: int) -> bytes:
    return (n % L).to_bytes(32, "little")


def as_int(b: bytes) -> int:
    return int.from_bytes(b, "little")


# ----------------------------------------------------------------- libsodium


class Sodium:
    """libsodium's ristretto255 group operations (independent of curve25519-dalek), through
    ``rbcl`` (PyPI: a libsodium build bound with its ristretto255 functions; PyNaCl binds
    none of them)."""

    base = staticmethod(rbcl.crypto_scalarmult_ristretto255_base)
    mul = staticmethod(rbcl.crypto_scalarmult_ristretto255)
    add = staticmethod(rbcl.crypto_core_ristretto255_add)
    sub = staticmethod(rbcl.crypto_core_ristretto255_sub)
    from_hash = staticmethod(rbcl.crypto_core_ristretto255_from_hash)
    invert = staticmethod(rbcl.crypto_core_ristretto255_scalar_invert)


SODIUM = Sodium()
IDENTITY = bytes(32)


def sodium_mul(n: int, p: bytes) -> bytes:
    """``n*p`` with libsodium, which refuses a zero result: identity handled here."""
    return IDENTITY if n % L == 0 else SODIUM.mul(scalar(n), p)


def sodium_add(p: bytes, q: bytes) -> bytes:
    if p == IDENTITY:
        return q
    if q == IDENTITY:
        return p
    return SODIUM.add(p, q)


def sodium_h() -> bytes:
    """H = ristretto255 one-way map of SHA3-512(G), the Bulletproofs/solana derivation."""
    g = SODIUM.base(scalar(1))
    return SODIUM.from_hash(hashlib.sha3_512(g).digest())


# ------------------------------------------------------------------- vectors


def test_rfc9496_multiples_of_generator() -> None:
    vectors = json.loads(VECTORS.read_text())["multiples_of_generator"]
    assert len(vectors) == 16
    zero = bytes(32)
    for k, expected in enumerate(vectors):
        # commit(k, 0) = k*G: the native code's encoding of the k-th multiple.
        assert conf.commit(k, zero).hex() == expected
    assert conf.generators()[0].hex() == vectors[1]


def test_rfc9496_vectors_agree_with_libsodium() -> None:
    vectors = json.loads(VECTORS.read_text())["multiples_of_generator"]
    for k in range(1, 16):
        assert SODIUM.base(scalar(k)).hex() == vectors[k]


# ------------------------------------------------------- libsodium cross-check


def test_generator_h_matches_libsodium() -> None:
    g, h = conf.generators()
    assert g == SODIUM.base(scalar(1))
    assert h == sodium_h()


@settings(max_examples=60, deadline=None)
@given(amount=st.integers(0, U64 - 1), r=st.integers(0, L - 1))
def test_commitment_matches_libsodium(amount: int, r: int) -> None:
    h = sodium_h()
    expected = sodium_add(sodium_mul(amount, SODIUM.base(scalar(1))), sodium_mul(r, h))
    assert conf.commit(amount, scalar(r)) == expected


@settings(max_examples=20, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), amount=st.integers(0, U64 - 1), r=st.integers(1, L - 1))
def test_elgamal_matches_libsodium(seed: bytes, amount: int, r: int) -> None:
    h = sodium_h()
    keys = conf.elgamal_keypair(seed)
    # public = secret^-1 * H
    assert keys.public == SODIUM.mul(SODIUM.invert(keys.secret), h)
    other = conf.elgamal_keypair(hashlib.sha256(seed).digest())
    ct = conf.encrypt(amount, scalar(r), [keys.public, other.public])
    assert ct.commitment == conf.commit(amount, scalar(r))
    # handle_i = r * P_i
    assert ct.handles == (SODIUM.mul(scalar(r), keys.public), SODIUM.mul(scalar(r), other.public))
    # decryption equation: C - s*D = v*G
    if amount:
        assert SODIUM.sub(ct.commitment, SODIUM.mul(keys.secret, ct.handles[0])) == SODIUM.base(
            scalar(amount)
        )
    else:
        assert ct.commitment == SODIUM.mul(keys.secret, ct.handles[0])


# ------------------------------------------------------------- homomorphism


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, U64 - 1), st.integers(0, L - 1)), min_size=1, max_size=8),
    negs=st.lists(st.tuples(st.integers(0, U64 - 1), st.integers(0, L - 1)), max_size=4),
)
def test_sum_of_commitments_commits_to_sums(
    pairs: list[tuple[int, int]], negs: list[tuple[int, int]]
) -> None:
    """sum(C_i) - sum(C_j) = commit(sum(v) - sum(v'), sum(r) - sum(r')), exactly when
    the amount difference lies in [0, 2**64) (commit takes a u64). The group adds
    amounts mod l, not mod 2**64: an over- or underflowing sum commits to a value
    outside u64, which no u64 commitment equals; range proofs are what exclude it."""
    adds = [conf.commit(v, scalar(r)) for v, r in pairs]
    subs = [conf.commit(v, scalar(r)) for v, r in negs]
    total = conf.commitment_sum(adds, subs)
    opening = conf.opening_sum([scalar(r) for _, r in pairs], [scalar(r) for _, r in negs])
    assert as_int(opening) == (sum(r for _, r in pairs) - sum(r for _, r in negs)) % L
    amount = sum(v for v, _ in pairs) - sum(v for v, _ in negs)
    if 0 <= amount < U64:
        assert total == conf.commit(amount, opening)
        assert conf.balanced(adds, [*subs, conf.commit(amount, opening)])
    else:
        # Outside u64: equal to no commitment of the amount reduced mod 2**64.
        assert total != conf.commit(amount % U64, opening)
        assert not conf.balanced(adds, [*subs, conf.commit(amount % U64, opening)])


@settings(max_examples=30, deadline=None)
@given(parts=st.lists(st.integers(0, 2**40), min_size=1, max_size=6))
def test_split_openings_balance(parts: list[int]) -> None:
    parent_opening = conf.random_opening()
    parent = conf.commit(sum(parts), parent_opening)
    openings = conf.split_openings(parent_opening, len(parts))
    pieces = [conf.commit(v, r) for v, r in zip(parts, openings, strict=True)]
    assert conf.balanced([parent], pieces)
    # Pieces that do not sum to the parent, or a wrong opening: refused.
    assert not conf.balanced([parent], [*pieces[:-1], conf.commit(parts[-1] + 1, openings[-1])])
    assert not conf.balanced([parent], [*pieces[:-1], conf.commit(parts[-1], conf.random_opening())])


def test_sums_reject_malformed_and_oversize() -> None:
    c = conf.commit(1, conf.random_opening())
    assert conf.commitment_sum([c, b"\xff" * 32]) is None
    assert conf.commitment_sum([c[:31]]) is None
    assert not conf.balanced([c], [b"\xff" * 32])
    with pytest.raises(ValueError):
        conf.commitment_sum([c] * (conf.MAX_SUM_TERMS + 1))
    with pytest.raises(ValueError):
        conf.opening_sum([b"\xff" * 32])  # not a canonical scalar
    with pytest.raises(ValueError):
        conf.commit(-1, bytes(32))
    with pytest.raises(ValueError):
        conf.commit(U64, bytes(32))
    with pytest.raises(TypeError):
        conf.commit("1", bytes(32))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        conf.commit(1, "00" * 32)  # type: ignore[arg-type]


# ------------------------------------------------------ linear combinations


def test_group_order_and_scalar() -> None:
    assert conf.GROUP_ORDER == L
    assert tn.confidential_constants()["GROUP_ORDER"] == L.to_bytes(32, "little")
    assert conf.scalar(-1) == (L - 1).to_bytes(32, "little")
    assert conf.scalar(L) == conf.scalar(0) == bytes(32)
    assert conf.scalar(2**300 + 5) == scalar(2**300 + 5)
    with pytest.raises(TypeError):
        conf.scalar(1.0)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(
    terms=st.lists(
        st.tuples(st.integers(0, 2**40), st.integers(0, L - 1), st.integers(-(2**20), 2**24)),
        min_size=1,
        max_size=6,
    ),
    wraps=st.lists(st.integers(-3, 3), min_size=6, max_size=6),
)
def test_lincomb_commits_to_lincomb_of_amounts_and_openings(
    terms: list[tuple[int, int, int]], wraps: list[int]
) -> None:
    """sum(k_i*C_i) = commit(sum(k_i*v_i), opening_lincomb(r, k)) exactly when the
    amount lies in [0, 2**64); coefficients differing by multiples of l agree."""
    cs = [conf.commit(v, scalar(r)) for v, r, _ in terms]
    rs = [scalar(r) for _, r, _ in terms]
    ks = [k for _, _, k in terms]
    total = conf.commitment_lincomb(cs, ks)
    opening = conf.opening_lincomb(rs, ks)
    assert as_int(opening) == sum(k * r for _, r, k in terms) % L
    shifted = [k + w * L for k, w in zip(ks, wraps, strict=False)]
    assert conf.commitment_lincomb(cs, shifted) == total
    assert conf.opening_lincomb(rs, shifted) == opening
    amount = sum(k * v for v, _, k in terms)
    if 0 <= amount < U64:
        assert total == conf.commit(amount, opening)
    else:
        assert total != conf.commit(amount % U64, opening)


@settings(max_examples=60, deadline=None)
@given(v=st.integers(0, U64 - 1), r_lo=st.integers(0, L - 1), r_hi=st.integers(0, L - 1))
def test_limbs_recombine(v: int, r_lo: int, r_hi: int) -> None:
    lo, hi = v & 0xFFFFFFFF, v >> 32
    c_lo, c_hi = conf.commit(lo, scalar(r_lo)), conf.commit(hi, scalar(r_hi))
    opening = conf.opening_lincomb([scalar(r_lo), scalar(r_hi)], [1, 2**32])
    assert opening == scalar(r_lo + 2**32 * r_hi)
    assert conf.commitment_lincomb([c_lo, c_hi], [1, 2**32]) == conf.commit(v, opening)
    # Limbs swapped (if they differ), or the high limb off by one: another amount.
    if lo != hi:
        assert conf.commitment_lincomb([c_hi, c_lo], [1, 2**32]) != conf.commit(v, opening)
    c_hi1 = conf.commit(hi ^ 1, scalar(r_hi))
    assert conf.commitment_lincomb([c_lo, c_hi1], [1, 2**32]) != conf.commit(v, opening)


@settings(max_examples=40, deadline=None)
@given(
    principal=st.lists(st.integers(1, 2**40), min_size=1, max_size=5),
    repaid=st.lists(st.integers(0, 2**40), min_size=1, max_size=5),
)
def test_negative_coefficients_aggregate_disclosure(principal: list[int], repaid: list[int]) -> None:
    """100*sum(R) - p*sum(P) with p = floor(100*sum(R)/sum(P)) commits to a value in
    [0, sum(P)); coefficient -1 is commitment_sum's subtraction."""
    rp = [conf.random_opening() for _ in principal]
    rr = [conf.random_opening() for _ in repaid]
    cp = [conf.commit(v, r) for v, r in zip(principal, rp, strict=True)]
    cr = [conf.commit(v, r) for v, r in zip(repaid, rr, strict=True)]
    p = 100 * sum(repaid) // sum(principal)
    coefficients = [100] * len(repaid) + [-p] * len(principal)
    total = conf.commitment_lincomb([*cr, *cp], coefficients)
    opening = conf.opening_lincomb([*rr, *rp], coefficients)
    remainder = 100 * sum(repaid) - p * sum(principal)
    assert 0 <= remainder < sum(principal)
    assert total == conf.commit(remainder, opening)
    # One percent more would be negative: no u64 commitment with this opening.
    too_much = conf.commitment_lincomb([*cr, *cp], [100] * len(repaid) + [-(p + 1)] * len(principal))
    assert too_much != conf.commit((remainder - sum(principal)) % U64, opening)
    ones = [1] * len(repaid) + [-1] * len(principal)
    assert conf.commitment_lincomb([*cr, *cp], ones) == conf.commitment_sum(cr, cp)
    assert conf.opening_lincomb([*rr, *rp], ones) == conf.opening_sum(rr, rp)


@settings(max_examples=40, deadline=None)
@given(
    terms=st.lists(
        st.tuples(st.binary(min_size=64, max_size=64), st.integers(-(2**300), 2**300)),
        max_size=6,
    )
)
def test_lincomb_matches_libsodium(terms: list[tuple[bytes, int]]) -> None:
    """On random points (libsodium's hash-to-group) and coefficients of any sign and
    size, against libsodium's scalarmult and add."""
    points = [SODIUM.from_hash(h) for h, _ in terms]
    expected = IDENTITY
    for pt, (_, k) in zip(points, terms, strict=True):
        expected = sodium_add(expected, sodium_mul(k, pt))
    assert conf.commitment_lincomb(points, [k for _, k in terms]) == expected


def test_lincomb_rejects_malformed_and_oversize() -> None:
    r = conf.random_opening()
    c = conf.commit(1, r)
    assert conf.commitment_lincomb([], []) == IDENTITY
    assert conf.opening_lincomb([], []) == bytes(32)
    assert conf.commitment_lincomb([c, b"\xff" * 32], [1, 1]) is None
    assert conf.commitment_lincomb([c[:31]], [1]) is None
    # The native call takes canonical scalars: a non-canonical one is malformed there.
    assert tn.pedersen_commitment_lincomb([c], [L.to_bytes(32, "little")]) is None
    assert tn.pedersen_commitment_lincomb([c], [bytes(31)]) is None
    with pytest.raises(ValueError):
        tn.pedersen_opening_lincomb([r], [L.to_bytes(32, "little")])
    with pytest.raises(ValueError):
        conf.opening_lincomb([b"\xff" * 32], [1])  # not a canonical opening
    with pytest.raises(ValueError):
        conf.commitment_lincomb([c, c], [1])
    with pytest.raises(ValueError):
        conf.opening_lincomb([r], [1, 2])
    n = conf.MAX_SUM_TERMS + 1
    with pytest.raises(ValueError):
        conf.commitment_lincomb([c] * n, [1] * n)
    with pytest.raises(ValueError):
        conf.opening_lincomb([r] * n, [1] * n)
    full = conf.MAX_SUM_TERMS
    assert conf.commitment_lincomb([c] * full, [1] * full) == conf.commit(
        full, conf.opening_lincomb([r] * full, [1] * full)
    )
    with pytest.raises(TypeError):
        conf.commitment_lincomb([c], [1.5])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        conf.commitment_lincomb(["00" * 32], [1])  # type: ignore[list-item]


# -------------------------------------------------------------- range proofs


def test_range_proof_round_trip_sizes_and_context() -> None:
    for amounts, bits in (([0], 64), ([U64 - 1, 5], 64), ([1, 2, 3], 32), ([255] * 8, 8)):
        openings = [conf.random_opening() for _ in amounts]
        rp = conf.prove_range(amounts, openings, b"tx-digest-1", bits)
        assert len(rp.proof) == conf.range_proof_len(len(amounts), bits)
        assert list(rp.commitments) == [conf.commit(a, r) for a, r in zip(amounts, openings, strict=True)]
        assert conf.verify_range(rp.proof, rp.commitments, b"tx-digest-1", bits)
        assert not conf.verify_range(rp.proof, rp.commitments, b"tx-digest-2", bits)
        assert not conf.verify_range(rp.proof, rp.commitments, b"", bits)
    assert [conf.range_proof_len(m) for m in (1, 2, 3, 4, 8)] == [577, 641, 705, 705, 769]


def test_range_prover_refuses_out_of_range_and_oversize() -> None:
    r = conf.random_opening()
    with pytest.raises(ValueError):
        conf.prove_range([256], [r], b"", bits=8)
    with pytest.raises(ValueError):
        conf.prove_range([U64], [r], b"")
    with pytest.raises(ValueError):
        conf.prove_range([1] * 9, [r] * 9, b"")
    with pytest.raises(ValueError):
        conf.prove_range([1], [r], b"x" * (conf.MAX_CONTEXT_LEN + 1))
    with pytest.raises(ValueError):
        conf.prove_range([1], [r], b"", bits=63)
    with pytest.raises(ValueError):
        conf.verify_range(b"", [conf.commit(1, r)] * 9, b"")


def test_forged_and_tampered_range_proofs_refused() -> None:
    openings = [conf.random_opening(), conf.random_opening()]
    rp = conf.prove_range([10, 20], openings, b"ctx")
    cs = list(rp.commitments)
    for i in range(0, len(rp.proof), 7):
        bad = bytearray(rp.proof)
        bad[i] ^= 0x01
        assert not conf.verify_range(bytes(bad), cs, b"ctx"), i
    assert not conf.verify_range(rp.proof + b"\x00", cs, b"ctx")
    assert not conf.verify_range(rp.proof[:-32], cs, b"ctx")
    assert not conf.verify_range(os.urandom(len(rp.proof)), cs, b"ctx")
    assert not conf.verify_range(b"", cs, b"ctx")
    # The proof of other amounts, or commitments in another order.
    other = conf.prove_range([10, 21], openings, b"ctx")
    assert not conf.verify_range(other.proof, cs, b"ctx")
    assert not conf.verify_range(rp.proof, cs[::-1], b"ctx")
    assert not conf.verify_range(rp.proof, [cs[0], conf.commit(20, conf.random_opening())], b"ctx")
    assert not conf.verify_range(rp.proof, [cs[0], b"\xff" * 32], b"ctx")
    assert not conf.verify_range(rp.proof, [cs[0]], b"ctx")
    assert not conf.verify_range(rp.proof, [], b"ctx")
    assert not conf.verify_range(rp.proof, cs, b"ctx", bits=32)
    # A commitment to an amount above 2**64 (C + 2**64*G): no proof of C covers it.
    two64 = conf.commitment_sum([conf.commit(U64 - 1, bytes(32)), conf.commit(1, bytes(32))])
    assert two64 is not None
    shifted = conf.commitment_sum([cs[0], two64])
    assert shifted is not None
    assert not conf.verify_range(rp.proof, [shifted, cs[1]], b"ctx")


def test_range_batch_equals_single_with_bad_items() -> None:
    n = 24
    proofs, commitments, contexts = [], [], []
    for i in range(n):
        m = (1, 2, 4)[i % 3]
        rp = conf.prove_range(
            [i * 10 + j for j in range(m)], [conf.random_opening() for _ in range(m)], b"tx%d" % i
        )
        proofs.append(rp.proof)
        commitments.append(list(rp.commitments))
        contexts.append(b"tx%d" % i)
    proofs[1] = proofs[1][:100] + bytes([proofs[1][100] ^ 1]) + proofs[1][101:]
    contexts[5] = b"tx4"  # a proof replayed under another transaction
    commitments[9][0] = b"\xee" * 32
    proofs[13] = b"garbage"
    commitments[17] = commitments[16]
    batch = conf.verify_range_batch(proofs, commitments, contexts)
    single = [conf.verify_range(p, c, x) for p, c, x in zip(proofs, commitments, contexts, strict=True)]
    assert batch == single
    assert batch == [i not in (1, 5, 9, 13, 17) for i in range(n)]
    assert conf.verify_range_batch([], [], []) == []
    with pytest.raises(ValueError):
        conf.verify_range_batch(proofs, commitments[:-1], contexts)
    with pytest.raises(ValueError):
        conf.verify_range_batch(
            [b""] * (conf.MAX_BATCH + 1), [[]] * (conf.MAX_BATCH + 1), [b""] * (conf.MAX_BATCH + 1)
        )
    with pytest.raises(TypeError):
        conf.verify_range_batch([1], [[]], [b""])  # type: ignore[list-item]


# ------------------------------------------------ encryption and validity


def keys(n: int) -> list[conf.ElGamalKeypair]:
    return [conf.elgamal_keypair(bytes([i + 1]) * 32) for i in range(n)]


def test_keypair_is_deterministic() -> None:
    a, b = conf.elgamal_keypair(b"\x07" * 32), conf.elgamal_keypair(b"\x07" * 32)
    assert a == b
    assert conf.elgamal_keypair(b"\x08" * 32).public != a.public
    assert a.secret.hex() not in repr(a)
    with pytest.raises(ValueError):
        conf.elgamal_keypair(b"\x07" * 31)


@settings(max_examples=15, deadline=None)
@given(amount=st.integers(0, 2**32 - 1))
def test_decryption_round_trip(amount: int) -> None:
    holder, regulator, stranger = keys(3)
    ct = conf.encrypt(amount, conf.random_opening(), [holder.public, regulator.public])
    assert conf.decrypt(holder.secret, ct, 0) == amount
    assert conf.decrypt(regulator.secret, ct, 1) == amount
    assert conf.decrypts_to(regulator.secret, ct, 1, amount)
    assert conf.decrypt(stranger.secret, ct, 1) is None
    assert not conf.decrypts_to(stranger.secret, ct, 1, amount)


def test_decryption_bound_and_large_amounts() -> None:
    (k,) = keys(1)
    big = 10**15
    ct = conf.encrypt(big, conf.random_opening(), [k.public])
    assert conf.decrypt(k.secret, ct, 0) is None  # above 2**32: no discrete log
    assert conf.decrypts_to(k.secret, ct, 0, big)
    assert not conf.decrypts_to(k.secret, ct, 0, big + 1)
    edge = conf.encrypt(2**32 - 1, conf.random_opening(), [k.public])
    assert conf.decrypt(k.secret, edge, 0) == 2**32 - 1
    with pytest.raises(ValueError):
        conf.encrypt(1, conf.random_opening(), [])
    with pytest.raises(ValueError):
        conf.encrypt(1, conf.random_opening(), [k.public] * (conf.MAX_HANDLES + 1))
    with pytest.raises(ValueError):
        conf.encrypt(1, conf.random_opening(), [bytes(32)])  # identity key


def test_validity_proofs() -> None:
    ks = keys(4)
    for n in range(1, 5):
        pubs = [k.public for k in ks[:n]]
        r = conf.random_opening()
        ct = conf.encrypt(123, r, pubs)
        proof = conf.prove_validity(123, r, pubs, b"tx-a")
        assert len(proof) == conf.validity_proof_len(n) == 32 * (3 + n)
        assert not conf.verify_validity(proof[:-1], ct, pubs, b"tx-a")
        assert conf.verify_validity(proof, ct, pubs, b"tx-a")
        assert not conf.verify_validity(proof, ct, pubs, b"tx-b")
        for i in range(len(proof)):
            bad = bytearray(proof)
            bad[i] ^= 0x20
            assert not conf.verify_validity(bytes(bad), ct, pubs, b"tx-a")
        # A handle made with another opening than the commitment's (a bogus
        # regulator envelope), or a key the sender did not encrypt to.
        other = conf.encrypt(123, conf.random_opening(), pubs)
        forged = conf.GroupedCiphertext(ct.commitment, (other.handles[0], *ct.handles[1:]))
        assert not conf.verify_validity(proof, forged, pubs, b"tx-a")
        stranger = conf.elgamal_keypair(b"\xaa" * 32).public
        assert not conf.verify_validity(proof, ct, [*pubs[:-1], stranger], b"tx-a")
        garbage = conf.GroupedCiphertext(ct.commitment, (b"\xff" * 32, *ct.handles[1:]))
        assert not conf.verify_validity(proof, garbage, pubs, b"tx-a")
        assert not conf.verify_validity(proof, ct, [bytes(32), *pubs[1:]], b"tx-a")
        assert not conf.verify_validity(proof, ct, pubs[:-1], b"tx-a")


def test_validity_batch_equals_single() -> None:
    ks = keys(3)
    rows = []
    for i in range(20):
        pubs = [k.public for k in ks[: 1 + i % 3]]
        r = conf.random_opening()
        rows.append([conf.prove_validity(i, r, pubs, b"c%d" % i), conf.encrypt(i, r, pubs), pubs, b"c%d" % i])
    rows[3][0] = bytes(len(rows[3][0]))
    rows[8][3] = b"c9"
    rows[12][1] = conf.GroupedCiphertext(b"\xff" * 32, rows[12][1].handles)
    proofs, cts, pubs, ctxs = (list(col) for col in zip(*rows, strict=True))
    batch = conf.verify_validity_batch(proofs, cts, pubs, ctxs)
    single = [conf.verify_validity(*row) for row in rows]
    assert batch == single == [i not in (3, 8, 12) for i in range(20)]


def test_validity_batch_with_bad_proofs_keeps_single_verdicts() -> None:
    # One key, as a confidential amount carries: whole chunks are batch verified,
    # and tampered, replayed and other-context proofs (sparse and in a run) must
    # not change a neighbour's verdict.
    (regulator, other) = keys(2)
    rows = []
    for i in range(240):
        pubs = [regulator.public] if i % 50 != 7 else [regulator.public, other.public]
        r = conf.random_opening()
        ctx = b"tx-%d" % i
        rows.append([conf.prove_validity(i, r, pubs, ctx), conf.encrypt(i, r, pubs), pubs, ctx])
    bad = set()
    for i in (0, 1, 99, 239):
        proof = bytearray(rows[i][0])
        proof[(i * 13) % len(proof)] ^= 0x01
        rows[i][0] = bytes(proof)
        bad.add(i)
    for i in (*range(120, 136), 57):
        rows[i][3] = b"another transaction"
        bad.add(i)
    rows[200][0] = rows[201][0]  # a neighbour's proof
    bad.add(200)
    proofs, cts, pubs, ctxs = (list(col) for col in zip(*rows, strict=True))
    single = [conf.verify_validity(*row) for row in rows]
    assert single == [i not in bad for i in range(240)]
    for _ in range(3):
        assert conf.verify_validity_batch(proofs, cts, pubs, ctxs) == single
    part = slice(100, 140)
    assert conf.verify_validity_batch(proofs[part], cts[part], pubs[part], ctxs[part]) == single[part]


def test_constants_match_the_native_module() -> None:
    c = tn.confidential_constants()
    assert c["DOMAIN"] == b"tierchain.confidential.v1"
    assert conf.MAX_RANGE_AMOUNTS == 8 and conf.MAX_HANDLES == 4
    assert conf.VALIDITY_PROOF_LEN == c["VALIDITY_PROOF_LEN"] == conf.validity_proof_len(1) == 128
    assert conf.RANGE_BITS == (8, 16, 32, 64)
