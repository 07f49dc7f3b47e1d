"""tierchain.proofs under both crypto suites ("ed25519-blake3", "sm2-sm3"; docs/proofs.md, "Suites").

The pure functions equal the native ones (``tierchain_native`` BLAKE3,
``tierchain.crypto.sm``) on random inputs; Merkle paths, a sparse Merkle tree
with its proofs and signed header chains are built here, independently of
``tierchain.proofs``, from the native hashes, and verify under their suite and
under no other. SM2 headers are also checked by the gmssl recipe a client
without TierChain uses (tests/proofs/sm2_light.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import blake3
import nacl.signing
import pytest
import tierchain_native
from hypothesis import given, settings
from hypothesis import strategies as st
from sm2_light import N, gmssl_verify, y_from_x

from tierchain import proofs
from tierchain.crypto import sm

ED, SM = "ed25519-blake3", "sm2-sm3"
OTHER = {ED: SM, SM: ED}


@dataclasses.dataclass(frozen=True)
class Native:
    """A suite's hashes as TierChain's native code computes them (the reference)."""

    hash: Callable[[str, bytes], bytes]
    merkle_leaf: Callable[[bytes], bytes]
    merkle_node: Callable[[bytes, bytes], bytes]
    merkle_root: Callable[[list[bytes]], bytes]


NATIVE = {
    ED: Native(
        hash=tierchain_native.hash_one,
        merkle_leaf=lambda d: tierchain_native.merkle_root([d]),
        merkle_node=lambda left, right: blake3.blake3(b"\x01" + left + right).digest(),
        merkle_root=tierchain_native.merkle_root,
    ),
    SM: Native(
        hash=sm.hash,
        merkle_leaf=sm.merkle_leaf_hash,
        merkle_node=sm.merkle_node_hash,
        merkle_root=sm.merkle_root,
    ),
}
both = pytest.mark.parametrize("suite", [ED, SM])


# --- hashes ----------------------------------------------------------------------------


def test_the_suite_names():
    assert proofs.SUITE_NAMES == (ED, SM) and proofs.DEFAULT_SUITE == ED
    assert proofs.EMPTY_HASH == proofs.empty_hash() == proofs.empty_hash(ED)
    assert proofs.empty_hash(SM) == sm.hash(proofs.STATE_EMPTY, b"") != proofs.EMPTY_HASH
    # The Rust state tree's own empty hash for each (smt_constants takes the tree hash).
    assert proofs.empty_hash(SM) == tierchain_native.smt_constants("sm3")[0]
    assert proofs.empty_hash(ED) == tierchain_native.smt_constants()[0]


@both
@settings(max_examples=150, deadline=None)
@given(
    a=st.binary(max_size=300), b=st.binary(min_size=32, max_size=32), c=st.binary(min_size=32, max_size=32)
)
def test_pure_hashes_equal_the_native_ones(suite, a, b, c):
    n = NATIVE[suite]
    assert proofs.key_hash(a, suite=suite) == n.hash(proofs.STATE_KEY, a)
    assert proofs.value_hash(a, suite=suite) == n.hash(proofs.STATE_VALUE, a)
    assert proofs.leaf_hash(b, c, suite=suite) == n.hash(proofs.STATE_LEAF, b + c)
    assert proofs.node_hash(b, c, suite=suite) == n.hash(proofs.STATE_NODE, b + c)
    assert proofs.merkle_leaf_hash(a, suite=suite) == n.merkle_leaf(a)
    assert proofs.merkle_node_hash(b, c, suite=suite) == n.merkle_node(b, c)
    assert n.merkle_root([a, b]) == proofs.merkle_node_hash(
        proofs.merkle_leaf_hash(a, suite=suite), proofs.merkle_leaf_hash(b, suite=suite), suite=suite
    )
    # The other suite gives other hashes.
    assert proofs.key_hash(a, suite=OTHER[suite]) != n.hash(proofs.STATE_KEY, a)


def test_sm3_domain_hash_construction_and_long_contexts():
    """SM3(pad64(u16be(len ctx) || ctx) || data), contexts of any length up to 65535 bytes."""
    rng = random.Random(19)
    for n in (0, 1, 61, 62, 63, 64, 125, 126, 127, 300):
        ctx = "".join(rng.choice("abcdefgh 2026") for _ in range(n))
        data = rng.randbytes(rng.randrange(200))
        prefix = struct.pack(">H", n) + ctx.encode()
        expected = hashlib.new("sm3", prefix + bytes(-len(prefix) % 64) + data).digest()
        assert sm.hash(ctx, data) == expected
        table = proofs._suite(SM)
        assert table.hash(ctx, data) == expected
        assert table.hash(ctx, data) == expected  # the cached prefix state is not consumed
    with pytest.raises(ValueError):
        proofs._suite(SM).hash("x" * 65536, b"")


# --- RFC 6962 Merkle paths -------------------------------------------------------------


def mth(leaves: list[bytes], n: Native) -> bytes:
    """RFC 6962 section 2.1 MTH, recursively."""
    if len(leaves) == 1:
        return n.merkle_leaf(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return n.merkle_node(mth(leaves[:k], n), mth(leaves[k:], n))


def audit_path(m: int, leaves: list[bytes], n: Native) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n]), leaf side first."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*audit_path(m, leaves[:k], n), mth(leaves[k:], n)]
    return [*audit_path(m - k, leaves[k:], n), mth(leaves[:k], n)]


@both
def test_merkle_verify_accepts_rfc6962_paths_of_its_suite_only(suite):
    rng = random.Random(6962)
    n = NATIVE[suite]
    for size in [*range(1, 18), 31, 32, 33, 100]:
        leaves = [rng.randbytes(rng.randrange(1, 50)) for _ in range(size)]
        root = mth(leaves, n)
        assert root == n.merkle_root(leaves)
        for i in range(size):
            path = audit_path(i, leaves, n)
            assert proofs.merkle_verify(root, leaves[i], i, size, path, suite=suite)
            assert not proofs.merkle_verify(root, leaves[i], i, size, path, suite=OTHER[suite])
            assert not proofs.merkle_verify(root, leaves[i] + b"x", i, size, path, suite=suite)
            if size > 1:
                assert not proofs.merkle_verify(root, leaves[i], (i + 1) % size, size, path, suite=suite)
            if path:
                bad = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
                assert not proofs.merkle_verify(root, leaves[i], i, size, bad, suite=suite)


# --- a sparse Merkle tree built by hand ---------------------------------------------------


def kh_bit(kh: bytes, i: int) -> int:
    return (kh[i >> 3] >> (7 - (i & 7))) & 1


class Smt:
    """docs/proofs.md "State tree", by recursion over key-hash bits, with the native hashes."""

    def __init__(self, suite: str, state: dict[bytes, bytes]) -> None:
        self.h = NATIVE[suite].hash
        self.empty = self.h(proofs.STATE_EMPTY, b"")
        self.leaves = {self.h(proofs.STATE_KEY, k): self.h(proofs.STATE_VALUE, v) for k, v in state.items()}
        self.state = state
        self.root = self.subtree(list(self.leaves), 0)

    def subtree(self, khs: list[bytes], depth: int) -> bytes:
        if not khs:
            return self.empty
        if len(khs) == 1:
            return self.h(proofs.STATE_LEAF, khs[0] + self.leaves[khs[0]])
        left = self.subtree([k for k in khs if not kh_bit(k, depth)], depth + 1)
        right = self.subtree([k for k in khs if kh_bit(k, depth)], depth + 1)
        return self.h(proofs.STATE_NODE, left + right)

    def prove(self, key: bytes, height: int = 0) -> proofs.StateProof:
        kh = self.h(proofs.STATE_KEY, key)
        khs, siblings, depth = list(self.leaves), [], 0
        while len(khs) > 1:
            siblings.append(
                self.subtree([k for k in khs if kh_bit(k, depth) != kh_bit(kh, depth)], depth + 1)
            )
            khs = [k for k in khs if kh_bit(k, depth) == kh_bit(kh, depth)]
            depth += 1
        if khs == [kh]:
            return proofs.StateProof(height, key, self.state[key], tuple(siblings))
        other = (khs[0], self.leaves[khs[0]]) if khs else None
        return proofs.StateProof(height, key, None, tuple(siblings), other)


HEADER = struct.Struct("<BIQ32sQI32s32s32s32s")  # docs/proofs.md "Header", bytes 0..185


def header(
    height: int = 0,
    *,
    prev: bytes = bytes(32),
    proposer: bytes = bytes(32),
    state_root: bytes = bytes(32),
    tx_count: int = 0,
    tx_root: bytes = bytes(32),
    receipt_root: bytes = bytes(32),
    signature: bytes = bytes(64),
    chain_id: int = 7,
) -> bytes:
    unsigned = HEADER.pack(
        1, chain_id, height, prev, 1_000 + height, tx_count, tx_root, receipt_root, state_root, proposer
    )
    return unsigned + signature


def test_the_header_layout_is_proofs_py_s():
    assert HEADER.size + 64 == proofs.HEADER_BYTES


@both
def test_state_proofs_over_a_hand_built_tree_verify_under_their_suite_only(suite):
    state = {b"k%d" % i: b"value %d" % i * (i % 3) for i in range(12)}
    tree = Smt(suite, state)
    head = header(3, state_root=tree.root)
    kinds = set()
    for key in [*state, *(b"absent/%d" % i for i in range(40))]:
        p = tree.prove(key, height=3)
        kinds.add(p.kind)
        assert proofs.state_root_from_proof(p, suite=suite) == tree.root
        assert proofs.verify_state(tree.root, p, key, height=3, suite=suite)
        assert proofs.verify_state(head, p, key, suite=suite)
        assert proofs.verify_state(proofs.decode_header(head, suite=suite), p, key, suite=suite)
        data = p.encode(suite=suite)
        assert proofs.decode_state_proof(data, suite=suite) == p
        assert proofs.verify_state_encoded(head, data, key, suite=suite)
        # Under the other suite: another root, another empty hash, another header decoding.
        other = OTHER[suite]
        assert not proofs.verify_state(tree.root, p, key, height=3, suite=other)
        assert not proofs.verify_state_encoded(head, data, key, suite=other)
        assert not proofs.verify_state(proofs.decode_header(head, suite=other), p, key, suite=suite)
        assert not proofs.verify_state(head, p, key, height=4, suite=suite)
        if p.value is not None:
            forged = dataclasses.replace(
                p, value=None, other=(NATIVE[suite].hash(proofs.STATE_KEY, key), b"x" * 32)
            )
            assert not proofs.verify_state(tree.root, forged, key, suite=suite)
    assert kinds == {proofs.PRESENT, proofs.ABSENT_EMPTY, proofs.ABSENT_LEAF}


def test_the_bitmap_marks_the_suite_s_empty_hash():
    """An SM3 proof with empty siblings: one bit each under its suite, refused in full as BLAKE3's."""
    tree = Smt(SM, {b"k%d" % i: b"v" for i in range(12)})
    p = next(q for q in map(tree.prove, tree.state) if proofs.empty_hash(SM) in q.siblings)
    ours, as_blake3 = p.encode(suite=SM), p.encode()
    assert len(as_blake3) == len(ours) + 32 * p.siblings.count(proofs.empty_hash(SM))
    assert proofs.decode_state_proof(ours, suite=SM) == p
    with pytest.raises(proofs.ProofError, match="empty sibling carried in full"):
        proofs.decode_state_proof(as_blake3, suite=SM)
    assert proofs.decode_state_proof(ours) != p  # the bits read as BLAKE3's empty hash
    assert not proofs.verify_state(tree.root, proofs.decode_state_proof(ours), p.key, suite=SM)


# --- headers ---------------------------------------------------------------------------------


@both
def test_decode_header_hashes_with_its_suite(suite):
    data = header(5, state_root=bytes(range(32)), proposer=b"p" * 32)
    light = proofs.decode_header(data, suite=suite)
    assert light.hash == NATIVE[suite].hash(proofs.BLOCK_HEADER, data[:185])
    assert light.hash != proofs.decode_header(data, suite=OTHER[suite]).hash
    assert light.suite == suite and light.height == 5 and light.state_root == bytes(range(32))
    assert proofs.decode_header(data) == proofs.decode_header(data, suite=ED)


def sm2_chain(n: int, seed: bytes = b"proposer".ljust(32, b"\0")) -> tuple[list[bytes], bytes]:
    """``n`` SM2-signed headers from height 0, and the proposer's secret key."""
    d, x = sm.keypair_from_seed(seed, x_only=True)
    headers, prev = [], bytes(32)
    for height in range(n):
        unsigned = header(height, prev=prev, proposer=x)[:185]
        digest = sm.hash(proofs.BLOCK_HEADER, unsigned)
        headers.append(unsigned + sm.sign(d, digest))
        prev = digest
    return headers, d


def ed25519_chain(n: int) -> list[bytes]:
    key = nacl.signing.SigningKey(b"ed25519 proposer".ljust(32, b"\0"))
    headers, prev = [], bytes(32)
    for height in range(n):
        unsigned = header(height, prev=prev, proposer=bytes(key.verify_key))[:185]
        digest = blake3.blake3(unsigned, derive_key_context=proofs.BLOCK_HEADER).digest()
        headers.append(unsigned + key.sign(digest).signature)
        prev = digest
    return headers


def test_sm2_header_chain_verifies_with_the_default_and_the_gmssl_verifier():
    headers, _ = sm2_chain(5)
    for check in (None, gmssl_verify, sm.verify):
        assert proofs.verify_header_chain(headers[0], headers[1:], check, suite=SM)
        light = [proofs.decode_header(h, suite=SM) for h in headers]
        assert proofs.verify_header_chain(light[0], light[1:], check, suite=SM)
        assert not proofs.verify_header_chain(headers[0], headers[2:], check, suite=SM)  # a gap
    # A tampered signature, or any changed byte, is refused by both verifiers.
    for check in (None, gmssl_verify):
        for i in (5, 13, 100, 153, 185, 200, 248):
            bad = bytearray(headers[-1])
            bad[i] ^= 1
            assert not proofs.verify_header_chain(
                headers[0], [*headers[1:-1], bytes(bad)], check, suite=SM
            ), i


def test_an_sm2_chain_is_refused_under_ed25519_blake3_and_the_converse():
    headers, _ = sm2_chain(4)
    accept_any = lambda pk, msg, sig: True  # noqa: E731 - the links, not the signatures, refuse
    assert not proofs.verify_header_chain(headers[0], headers[1:])
    assert not proofs.verify_header_chain(headers[0], headers[1:], accept_any)
    light = [proofs.decode_header(h, suite=SM) for h in headers]
    assert not proofs.verify_header_chain(light[0], light[1:], accept_any)  # decoded as SM, checked as ED
    ed = ed25519_chain(4)
    assert proofs.verify_header_chain(ed[0], ed[1:])
    assert not proofs.verify_header_chain(ed[0], ed[1:], suite=SM)
    assert not proofs.verify_header_chain(ed[0], ed[1:], accept_any, suite=SM)


def test_the_default_sm2_verifier_takes_only_x_only_keys():
    headers, d = sm2_chain(2)
    light = proofs.decode_header(headers[1], suite=SM)
    compressed = sm.public_key(d)
    assert compressed[1:] == light.proposer and sm.verify(compressed, light.hash, light.signature)
    check = proofs._suite(SM).verify_signature
    assert check(light.proposer, light.hash, light.signature)
    assert not check(compressed, light.hash, light.signature)


# --- the gmssl recipe (tests/proofs/sm2_light.py) ------------------------------------------------


def test_y_from_x_recovers_the_even_root_of_each_x_only_key():
    for i in range(40):
        _, x = sm.keypair_from_seed(bytes([i]) * 32, x_only=True)
        full = sm.public_key_uncompressed(x)
        assert full[:1] == b"\x04" and full[1:33] == x
        y = y_from_x(x)
        assert y == full[33:] and y[-1] % 2 == 0
    no_points = [x for x in (i.to_bytes(32, "big") for i in range(2, 60)) if y_from_x(x) is None]
    assert no_points  # about half of all x are not on the curve
    for x in no_points:
        assert sm.public_key_uncompressed(x) is None
    assert y_from_x(b"\xff" * 32) is None and y_from_x(bytes(31)) is None


def test_gmssl_verify_agrees_with_tierchain_on_good_and_bad_signatures():
    rng = random.Random(2)
    seeds = [rng.randbytes(32) for _ in range(4)] + [(198).to_bytes(32, "big")]
    _, x04 = sm.keypair_from_seed(seeds[-1], x_only=True)
    assert x04.hex().startswith("04")  # gmssl's constructor would strip it (hence the recipe)
    for seed in seeds:
        d, x = sm.keypair_from_seed(seed, x_only=True)
        msg = rng.randbytes(32)
        sig = sm.sign(d, msg)
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        cases = {
            "valid": (x, msg, sig, True),
            "other message": (x, msg[::-1], sig, False),
            "tampered r": (x, msg, bytes([sig[0] ^ 1]) + sig[1:], False),
            "tampered s": (x, msg, sig[:-1] + bytes([sig[-1] ^ 1]), False),
            "other key": (sm.keypair_from_seed(bytes(32), x_only=True)[1], msg, sig, False),
            "r = 0": (x, msg, bytes(32) + sig[32:], False),
            "s = 0": (x, msg, sig[:32] + bytes(32), False),
            "r + n": (x, msg, (r + N).to_bytes(33, "big")[-32:] + sig[32:], False),
            "s = n": (x, msg, sig[:32] + N.to_bytes(32, "big"), False),
            "short signature": (x, msg, sig[:63], False),
            "compressed key": (b"\x02" + x, msg, sig, False),
        }
        assert s < N
        for name, (pk, m, sg, expected) in cases.items():
            assert gmssl_verify(pk, m, sg) is expected, name
            if len(pk) == 32:
                assert sm.verify(pk, m, sg) is expected, name


def test_a_copied_proofs_py_verifies_an_sm2_chain_with_gmssl(tmp_path):
    """The client of docs/proofs.md: proofs.py and sm2_light.py copied alone, no TierChain."""
    headers, _ = sm2_chain(4)
    tree = Smt(SM, {b"bal/x": b"\x05" + bytes(7), b"other": b"y"})
    head = header(4, prev=proofs.decode_header(headers[-1], suite=SM).hash, state_root=tree.root)
    client = tmp_path / "client"
    client.mkdir()
    shutil.copy(proofs.__file__, client / "proofs.py")
    shutil.copy(Path(__file__).parent / "sm2_light.py", client / "sm2_light.py")
    script = f"""
import sys
sys.modules["tierchain"] = None  # importing any tierchain module now fails
import proofs
from sm2_light import gmssl_verify

headers = [bytes.fromhex(h) for h in {[h.hex() for h in headers]!r}]
assert proofs.verify_header_chain(headers[0], headers[1:], gmssl_verify, suite="sm2-sm3")
assert not proofs.verify_header_chain(headers[0], headers[1:], gmssl_verify)
head = bytes.fromhex("{head.hex()}")
proof = bytes.fromhex("{tree.prove(b"bal/x", 4).encode(suite=SM).hex()}")
assert proofs.verify_state_encoded(head, proof, b"bal/x", suite="sm2-sm3")
assert not proofs.verify_state_encoded(head, proof, b"bal/x")
try:
    proofs.verify_header_chain(headers[0], headers[1:], suite="sm2-sm3")
except proofs.NoSignatureVerifier as exc:
    print("ok", exc)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=client, env={}, capture_output=True, timeout=60)
    assert out.stdout.startswith(b"ok tierchain.crypto.sm is not installed"), out.stderr


# --- transactions --------------------------------------------------------------------------------


@both
def test_tx_proofs_verify_under_their_suite_only(suite):
    rng = random.Random(7)
    n = NATIVE[suite]
    tx_ids = [rng.randbytes(32) for _ in range(6)]
    receipts = [t + struct.pack("<HB", i % 2, 0) for i, t in enumerate(tx_ids)]
    head = header(2, tx_count=6, tx_root=n.merkle_root(tx_ids), receipt_root=n.merkle_root(receipts))
    for i, t in enumerate(tx_ids):
        p = proofs.TxProof(
            2, i, 6, t, tuple(audit_path(i, tx_ids, n)), receipts[i], tuple(audit_path(i, receipts, n))
        )
        assert proofs.verify_tx(head, p, t, suite=suite)
        assert proofs.verify_tx(proofs.decode_header(head, suite=suite), p, t, suite=suite)
        assert not proofs.verify_tx(head, p, t, suite=OTHER[suite])
        assert not proofs.verify_tx(proofs.decode_header(head, suite=OTHER[suite]), p, t, suite=suite)
        assert not proofs.verify_tx(head, p, tx_ids[(i + 1) % 6], suite=suite)


# --- errors ----------------------------------------------------------------------------------------


def test_an_unknown_suite_is_a_value_error_naming_the_known_ones():
    headers, _ = sm2_chain(2)
    proof = Smt(ED, {b"a": b"b"}).prove(b"a")
    calls = [
        lambda s: proofs.key_hash(b"k", suite=s),
        lambda s: proofs.value_hash(b"v", suite=s),
        lambda s: proofs.leaf_hash(bytes(32), bytes(32), suite=s),
        lambda s: proofs.node_hash(bytes(32), bytes(32), suite=s),
        lambda s: proofs.empty_hash(s),
        lambda s: proofs.merkle_leaf_hash(b"", suite=s),
        lambda s: proofs.merkle_node_hash(bytes(32), bytes(32), suite=s),
        lambda s: proofs.merkle_verify(bytes(32), b"", 0, 1, [], suite=s),
        lambda s: proofs.decode_header(headers[0], suite=s),
        lambda s: proofs.decode_state_proof(proof.encode(), suite=s),
        lambda s: proof.encode(suite=s),
        lambda s: proofs.state_root_from_proof(proof, suite=s),
        lambda s: proofs.verify_state(bytes(32), proof, suite=s),
        lambda s: proofs.verify_state_encoded(headers[0], proof.encode(), b"a", suite=s),
        lambda s: proofs.verify_header_chain(headers[0], headers[1:], suite=s),
        lambda s: proofs.verify_tx(
            headers[0], proofs.TxProof(0, 0, 1, bytes(32), (), bytes(34), ()), suite=s
        ),
    ]
    for call in calls:
        for name in ("sm3", "SM2-SM3", "ed25519", ""):
            with pytest.raises(ValueError, match=r"unknown crypto suite.*'ed25519-blake3', 'sm2-sm3'"):
                call(name)


def test_without_sm3_in_hashlib_the_suite_is_unavailable_at_first_use(monkeypatch):
    real_new = hashlib.new

    def no_sm3(name, *args, **kwargs):
        if name.lower() == "sm3":
            raise ValueError(f"unsupported hash type {name}")
        return real_new(name, *args, **kwargs)

    monkeypatch.setattr(hashlib, "new", no_sm3)
    monkeypatch.delitem(proofs._SUITES, SM, raising=False)  # built again at the next use
    headers = [header(0), header(1)]
    for call in (
        lambda: proofs.key_hash(b"k", suite=SM),
        lambda: proofs.empty_hash(SM),
        lambda: proofs.verify_header_chain(headers[0], headers[1:], suite=SM),  # raises, not False
        lambda: proofs.verify_state_encoded(headers[0], b"", b"k", suite=SM),
    ):
        with pytest.raises(proofs.SuiteUnavailable, match=r'hashlib\.new\("sm3"\).*OpenSSL 3'):
            call()
    assert issubclass(proofs.SuiteUnavailable, RuntimeError)
    assert proofs.key_hash(b"k") == NATIVE[ED].hash(proofs.STATE_KEY, b"k")  # the default suite is unaffected


def test_docs_name_the_sm2_sm3_empty_hash_and_the_recipe():
    doc = (Path(__file__).parents[2] / "docs" / "proofs.md").read_text()
    suites = doc.split("### Suites")[1].split("## Specification")[0]
    assert proofs.empty_hash(SM).hex() in suites
    assert "tests/proofs/sm2_light.py" in suites and "verify_with_sm3" in suites
    assert "sm2_light.py" in proofs.__doc__ and "verify_with_sm3" in proofs.__doc__
