"""Merkle trees (``tierchain.crypto.merkle`` / ``tierchain_native``) against a literal
RFC 6962 reference, plus ``hash_many`` / ``hash_one`` against the ``blake3``
package.

The reference below is the recursive definition from RFC 6962 §2.1 (MTH) and
§2.1.1 (PATH) with BLAKE3, written independently of the code under test. The
native code builds trees level by level; agreeing with the recursion for every
size 1..300 is the check that the two shapes are the same.
"""

from __future__ import annotations

import os
import random

import blake3
import numpy as np
import pytest
import tierchain_native as tn

from tierchain.crypto import merkle

# --------------------------------------------------------------------------
# reference: RFC 6962 §2.1, recursive, BLAKE3


def ref_leaf(d: bytes) -> bytes:
    return blake3.blake3(b"\x00" + d).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return blake3.blake3(b"\x01" + left + right).digest()


def ref_split(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return blake3.blake3(b"").digest()
    if len(d) == 1:
        return ref_leaf(d[0])
    k = ref_split(len(d))
    return ref_node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = ref_split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def leaves_of(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed * 1_000_003 + n)
    # Varied lengths, including empty leaves and ones longer than a BLAKE3 chunk.
    return [rng.randbytes(rng.choice([0, 1, 31, 32, 33, 64, 100, 1500])) for _ in range(n)]


def indices_for(n: int) -> list[int]:
    if n <= 64:
        return list(range(n))
    rng = random.Random(n)
    return sorted({0, 1, n // 2, n - 2, n - 1, *rng.sample(range(n), 12)})


BOTH_VERIFIERS = [merkle.verify, merkle.verify_native]


# --------------------------------------------------------------------------
# roots and paths


def test_empty_tree():
    assert merkle.root([]) == blake3.blake3(b"").digest()
    assert tn.merkle_root_packed(b"", 32) == blake3.blake3(b"").digest()
    with pytest.raises(IndexError):
        merkle.prove([], 0)


def test_level_by_level_shape_equals_recursive_reference():
    """The shape equivalence, stated on its own: pair adjacent nodes left to
    right, carry the odd last node — equals the RFC 6962 split recursion."""

    def level_by_level(d):
        level = [ref_leaf(x) for x in d]
        while len(level) > 1:
            nxt = [ref_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return level[0]

    for n in range(1, 130):
        d = leaves_of(n, 7)
        assert level_by_level(d) == ref_mth(d)


@pytest.mark.parametrize("n", range(1, 301))
def test_root_and_paths_match_reference(n):
    d = leaves_of(n)
    root = ref_mth(d)
    assert merkle.root(d) == root
    for m in indices_for(n):
        path = merkle.prove(d, m)
        assert path == ref_path(m, d)
        for verify in BOTH_VERIFIERS:
            assert verify(root, d[m], m, n, path) is True


def test_large_trees_match_reference():
    # Sizes past the native code's parallel threshold (2048) and odd shapes.
    for n in (2047, 2048, 2049, 5000):
        d = [os.urandom(32) for _ in range(n)]
        assert merkle.root(d) == ref_mth(d)
        for m in (0, n // 3, n - 1):
            assert merkle.prove(d, m) == ref_path(m, d)


def test_root_is_sensitive_to_every_leaf_and_order():
    d = leaves_of(37, 3)
    r = merkle.root(d)
    for i in range(len(d)):
        changed = list(d)
        changed[i] = d[i] + b"x"
        assert merkle.root(changed) != r
    assert merkle.root(d[1:] + d[:1]) != r
    # Leaf/node domain separation: a node's two children as a single leaf.
    two = [b"a", b"b"]
    assert merkle.root([ref_leaf(b"a") + ref_leaf(b"b")]) != merkle.root(two)


def test_packed_equals_list():
    for n in (0, 1, 2, 3, 10, 255, 256, 1000, 4097):
        items = [os.urandom(32) for _ in range(n)]
        packed = np.frombuffer(b"".join(items), dtype=np.uint8)
        assert tn.merkle_root_packed(packed, 32) == merkle.root(items)
        assert tn.merkle_root_packed(b"".join(items), 32) == merkle.root(items)
    items = [os.urandom(7) for _ in range(50)]
    assert tn.merkle_root_packed(b"".join(items), 7) == merkle.root(items)
    with pytest.raises(ValueError):
        tn.merkle_root_packed(bytes(33), 32)
    with pytest.raises(ValueError):
        tn.merkle_root_packed(bytes(32), 0)


def test_prove_rejects_bad_indices():
    d = leaves_of(5)
    for bad in (5, 6, -1, 10**30):
        with pytest.raises(IndexError):
            merkle.prove(d, bad)
        with pytest.raises(IndexError):
            tn.merkle_prove(d, bad)
    with pytest.raises(TypeError):
        merkle.prove(d, 1.0)


# --------------------------------------------------------------------------
# verification rejects everything that is not a genuine proof


def flip(b: bytes, i: int, mask: int = 1) -> bytes:
    x = bytearray(b)
    x[i] ^= mask
    return bytes(x)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 100])
def test_verify_rejects_tampering(n):
    # Distinct leaves: with two equal leaves, "wrong leaf"/"wrong index" can
    # legitimately verify (it is the same leaf, elsewhere).
    d = [b"%d:" % i + x for i, x in enumerate(leaves_of(n, 11))]
    root = ref_mth(d)
    for m in indices_for(n)[:20]:
        path = ref_path(m, d)
        for verify in BOTH_VERIFIERS:
            assert verify(root, d[m], m, n, path)
            # any byte of any proof element
            for e in range(len(path)):
                for byte in range(32):
                    bad = list(path)
                    bad[e] = flip(path[e], byte, 1 << (byte % 8))
                    assert not verify(root, d[m], m, n, bad)
            # the root itself
            assert not verify(flip(root, 0), d[m], m, n, path)
            # wrong leaf
            assert not verify(root, d[m] + b"\x00", m, n, path)
            if n > 1:
                assert not verify(root, d[(m + 1) % n], m, n, path)
            # wrong index (any other position)
            for other in range(n):
                if other != m:
                    assert not verify(root, d[m], other, n, path)
            # index out of range, sizes that cannot hold the leaf
            assert not verify(root, d[m], n, n, path)
            assert not verify(root, d[m], -1, n, path)
            assert not verify(root, d[m], m, m, path)
            assert not verify(root, d[m], m, 0, path)
            # truncated / extended proofs
            if path:
                assert not verify(root, d[m], m, n, path[:-1])
                assert not verify(root, d[m], m, n, path[1:])
            assert not verify(root, d[m], m, n, [*path, path[-1] if path else root])
            assert not verify(root, d[m], m, n, [*path, bytes(32)])
            # malformed elements
            if path:
                assert not verify(root, d[m], m, n, [path[0][:31], *path[1:]])
                assert not verify(root, d[m], m, n, [path[0] + b"\x00", *path[1:]])
            assert not verify(root[:31], d[m], m, n, path)


@pytest.mark.parametrize("n", [2, 3, 5, 6, 7, 12, 33, 100])
def test_verify_binds_size_through_the_root(n):
    """A size-n proof never verifies in the tree of another size (whose root
    differs). Against the size-n root, a different claimed size fails whenever
    it changes the audit path's shape; the size is authenticated by the root
    it travels with (e.g. in a block header), as in RFC 9162."""
    d = leaves_of(n + 5, 13)
    for m in indices_for(n):
        path = ref_path(m, d[:n])
        for other in range(m + 1, n + 5):
            if other == n:
                continue
            other_root = ref_mth(d[:other])
            for verify in BOTH_VERIFIERS:
                assert not verify(other_root, d[m], m, other, path)
                same_shape = ref_path(m, d[:other]) == path or _same_shape(m, n, other)
                if not same_shape:
                    assert not verify(ref_mth(d[:n]), d[m], m, other, path)


def _same_shape(m: int, n: int, other: int) -> bool:
    """Do (m, n) and (m, other) give audit paths with the same left/right
    pattern? (Then a size-n proof recomputes the size-n root under `other`.)"""

    def pattern(m, n):
        out = []
        while n > 1:
            k = ref_split(n)
            if m < k:
                out.append("R")
                n = k
            else:
                out.append("L")
                m, n = m - k, n - k
        return out[::-1]

    return pattern(m, n) == pattern(m, other)


def test_pure_and_native_verify_agree_on_random_garbage():
    rng = random.Random(5)
    d = leaves_of(40, 17)
    root = ref_mth(d)
    for _ in range(300):
        m = rng.randrange(-2, 45)
        n = rng.randrange(-1, 50)
        path = [rng.randbytes(32) for _ in range(rng.randrange(0, 8))]
        if rng.random() < 0.5 and 0 <= m < 40:
            path = ref_path(m, d)
        leaf = d[m] if 0 <= m < 40 else b"x"
        assert merkle.verify(root, leaf, m, n, path) == merkle.verify_native(root, leaf, m, n, path)
    assert merkle.verify(root, d[0], True, 40, ref_path(1, d)) is False  # bools are not indices


# --------------------------------------------------------------------------
# hash_many / hash_one


CTX = "tierchain 2026 test hash_many"


def test_hash_one_matches_blake3_derive_key():
    for data in (b"", b"a", os.urandom(64), os.urandom(1025), os.urandom(5000)):
        assert tn.hash_one(CTX, data) == blake3.blake3(data, derive_key_context=CTX).digest()
    assert tn.hash_one(CTX, b"x") != tn.hash_one(CTX + "!", b"x")


@pytest.mark.parametrize("n", [0, 1, 17, 255, 256, 1000, 3000])
def test_hash_many_matches_blake3_for_random_slices(n):
    rng = random.Random(n)
    buf = os.urandom(20_000)
    starts = np.array([rng.randrange(0, len(buf) + 1) for _ in range(n)], dtype=np.int64)
    ends = np.array([rng.randrange(s, min(len(buf), s + 2100) + 1) for s in starts], dtype=np.int64)
    out = tn.hash_many(CTX, buf, starts, ends)
    assert len(out) == 32 * n
    for i in range(n):
        want = blake3.blake3(buf[starts[i] : ends[i]], derive_key_context=CTX).digest()
        assert out[32 * i : 32 * i + 32] == want
    # numpy uint8 buffer and plain int lists give the same result
    assert tn.hash_many(CTX, np.frombuffer(buf, dtype=np.uint8), starts.tolist(), ends.tolist()) == out


def test_hash_many_rejects_out_of_range_offsets():
    buf = bytes(100)
    ok = tn.hash_many(CTX, buf, np.array([0, 100], dtype=np.int64), np.array([100, 100], dtype=np.int64))
    assert len(ok) == 64
    for starts, ends in [
        ([0], [101]),
        ([-1], [5]),
        ([6], [5]),
        ([101], [101]),
        ([0, 0], [1]),
        ([0], [2**62]),
        ([-(2**63)], [0]),
    ]:
        with pytest.raises(ValueError):
            tn.hash_many(CTX, buf, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))
    with pytest.raises(TypeError):
        tn.hash_many(CTX, "not bytes", [0], [0])
    with pytest.raises(TypeError):
        tn.hash_many(CTX, buf, np.array([0.0]), np.array([1.0]))
