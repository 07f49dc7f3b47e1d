"""docs/proofs.md suffices: a verifier written from its "Specification" alone checks real proofs.

``SpecVerifier`` below imports the standard library, ``blake3`` and (for
Ed25519) PyNaCl — nothing from TierChain, and it was written from the docs,
not from ``tierchain.proofs``. The tests use TierChain only to run a real
chain and produce headers and proofs, then check that this verifier accepts
the real ones (presence, both kinds of absence, a payment) and refuses
forged ones, and that ``tierchain.proofs`` agrees on every case.
``forgeries`` is also used by tests/proofs/test_proofs.py.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import blake3
import nacl.exceptions
import nacl.signing
import pytest

# --- the independent verifier (docs/proofs.md, "Specification") -------------------------

CTX_HEADER = "tierchain 2026 block header"
CTX_KEY = "tierchain 2026 state key"
CTX_VALUE = "tierchain 2026 state value"
CTX_LEAF = "tierchain 2026 state leaf"
CTX_NODE = "tierchain 2026 state node"
CTX_EMPTY = "tierchain 2026 state empty"
CTX_TX_BODY = "tierchain 2026 tx body"


def H(ctx: str, m: bytes) -> bytes:
    return blake3.blake3(m, derive_key_context=ctx).digest()


def B(m: bytes) -> bytes:
    return blake3.blake3(m).digest()


EMPTY = H(CTX_EMPTY, b"")


class Refused(Exception):
    """The bytes break a rule of the spec."""


class Reader:
    """Reads fields in order; running out of bytes is a refusal."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise Refused("bytes end before a field does")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise Refused("bytes after the last field")


def parse_header(data: bytes) -> dict:
    if len(data) != 249:
        raise Refused("a header is 249 bytes")
    r = Reader(data)
    h = {
        "version": r.uint(1),
        "chain_id": r.uint(4),
        "height": r.uint(8),
        "prev_hash": r.take(32),
        "timestamp_ms": r.uint(8),
        "tx_count": r.uint(4),
        "tx_root": r.take(32),
        "receipt_root": r.take(32),
        "state_root": r.take(32),
        "proposer": r.take(32),
        "signature": r.take(64),
    }
    if h["version"] != 1:
        raise Refused("header version")
    h["hash"] = H(CTX_HEADER, data[:185])
    return h


def ed25519_ok(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False


def header_chain_ok(trusted: bytes, following: list[bytes]) -> bool:
    try:
        prev = parse_header(trusted)
        for data in following:
            n = parse_header(data)
            if not (
                n["prev_hash"] == prev["hash"]
                and n["height"] == prev["height"] + 1
                and n["chain_id"] == prev["chain_id"]
                and n["proposer"] == prev["proposer"]
                and n["timestamp_ms"] >= prev["timestamp_ms"]
                and ed25519_ok(n["proposer"], n["hash"], n["signature"])
            ):
                return False
            prev = n
        return True
    except Refused:
        return False


def kh_bit(kh: bytes, i: int) -> int:
    """Key-hash bits: most significant first."""
    return (kh[i >> 3] >> (7 - (i & 7))) & 1


def bitmap_bit(bitmap: bytes, i: int) -> int:
    """Bitmap bits: least significant first."""
    return (bitmap[i >> 3] >> (i & 7)) & 1


def parse_state_proof(data: bytes) -> dict:
    r = Reader(data)
    p = {"version": r.uint(1), "kind": r.uint(1), "height": r.uint(8)}
    if p["version"] != 1 or p["kind"] not in (0, 1, 2):
        raise Refused("version or kind")
    key_len = r.uint(1)
    if not 1 <= key_len <= 64:
        raise Refused("key length")
    p["key"] = r.take(key_len)
    depth = r.uint(2)
    if depth > 256:
        raise Refused("depth")
    bitmap = r.take((depth + 7) // 8)
    for i in range(depth, len(bitmap) * 8):
        if bitmap_bit(bitmap, i):
            raise Refused("padding bit set")
    siblings = []
    for i in range(depth):
        if bitmap_bit(bitmap, i):
            siblings.append(EMPTY)
        else:
            s = r.take(32)
            if s == EMPTY:
                raise Refused("EMPTY carried")
            siblings.append(s)
    p["siblings"] = siblings
    if p["kind"] == 0:
        value_len = r.uint(4)
        if value_len > 65536:
            raise Refused("value too long")
        p["value"] = r.take(value_len)
    elif p["kind"] == 2:
        p["okh"], p["ovh"] = r.take(32), r.take(32)
    r.end()
    return p


def verify_state(header: bytes, proof: bytes, key: bytes) -> tuple[bool, bytes | None]:
    """(accepted, value): value None means the key is absent."""
    try:
        h_ = parse_header(header)  # 1
    except Refused:
        return False, None
    return verify_state_root(h_["state_root"], h_["height"], proof, key)


def verify_state_root(root: bytes, height: int, proof: bytes, key: bytes) -> tuple[bool, bytes | None]:
    """Steps 2-8 against a trusted (state_root, height)."""
    try:
        p = parse_state_proof(proof)  # 2
    except Refused:
        return False, None
    if p["key"] != key or p["height"] != height:  # 3, 4
        return False, None
    kh = H(CTX_KEY, key)  # 5
    depth = len(p["siblings"])
    if p["kind"] == 0:  # 6
        h = H(CTX_LEAF, kh + H(CTX_VALUE, p["value"]))
    elif p["kind"] == 1:
        h = EMPTY
    else:
        if p["okh"] == kh:  # soundness-critical
            return False, None
        if any(kh_bit(p["okh"], i) != kh_bit(kh, i) for i in range(depth)):
            return False, None
        h = H(CTX_LEAF, p["okh"] + p["ovh"])
    for i in range(depth - 1, -1, -1):  # 7
        s = p["siblings"][i]
        h = H(CTX_NODE, s + h) if kh_bit(kh, i) else H(CTX_NODE, h + s)
    if h != root:  # 8
        return False, None
    return True, p.get("value")


def inclusion_ok(root: bytes, leaf: bytes, index: int, size: int, path: list[bytes]) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, B(b"\x00" + leaf)
    for x in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = B(b"\x01" + x + r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = B(b"\x01" + r + x)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def parse_tx_proof(data: bytes) -> dict:
    r = Reader(data)
    p = {
        "version": r.uint(1),
        "height": r.uint(8),
        "index": r.uint(4),
        "size": r.uint(4),
        "tx_id": r.take(32),
    }
    n = r.uint(1)
    if p["version"] != 1 or n > 64:
        raise Refused("version or tx path length")
    p["tx_path"] = [r.take(32) for _ in range(n)]
    receipt_len, m = r.uint(4), r.uint(1)
    if receipt_len > 1 << 20 or m > 64:
        raise Refused("receipt or receipt path length")
    p["receipt"] = r.take(receipt_len)
    p["receipt_path"] = [r.take(32) for _ in range(m)]
    r.end()
    return p


def verify_payment(header: bytes, proof: bytes, tx: bytes) -> int | None:
    """The receipt code of the signed transaction ``tx`` if the proof holds, else None."""
    tx_id = H(CTX_TX_BODY, tx[:-64])  # the body: every byte before the signature
    try:
        h = parse_header(header)
        p = parse_tx_proof(proof)  # 1
    except Refused:
        return None
    ok = (
        p["tx_id"] == tx_id  # 2
        and p["height"] == h["height"]  # 3
        and p["size"] == h["tx_count"]
        and p["receipt"][:32] == tx_id  # 4
        and inclusion_ok(h["tx_root"], tx_id, p["index"], p["size"], p["tx_path"])  # 5
        and inclusion_ok(h["receipt_root"], p["receipt"], p["index"], p["size"], p["receipt_path"])
        and len(p["receipt"]) >= 34
    )
    return int.from_bytes(p["receipt"][32:34], "little") if ok else None  # 6


# --- forging proofs from the spec's encoding --------------------------------------------


def encode_state_proof(
    kind: int,
    height: int,
    key: bytes,
    siblings: list[bytes],
    tail: bytes = b"",
    *,
    depth: int | None = None,
    bitmap: bytes | None = None,
) -> bytes:
    """The spec's encoding; ``depth``/``bitmap`` override the canonical ones (to forge)."""
    depth = len(siblings) if depth is None else depth
    if bitmap is None:
        bm = bytearray((depth + 7) // 8)
        for i, s in enumerate(siblings):
            if s == EMPTY:
                bm[i >> 3] |= 1 << (i & 7)
        bitmap = bytes(bm)
    carried = b"".join(s for i, s in enumerate(siblings) if not (bitmap[i >> 3] >> (i & 7)) & 1)
    head = struct.pack("<BBQB", 1, kind, height, len(key)) + key + struct.pack("<H", depth)
    return head + bitmap + carried + tail


def forgeries(present: bytes, absent: bytes) -> dict[str, bytes]:
    """Proofs that must be refused, made from a real presence and a real absence proof.

    Each would be accepted by a verifier that skipped the named rule (where that
    applies, it recomputes the true root).
    """
    p, a = parse_state_proof(present), parse_state_proof(absent)
    kh, vh = H(CTX_KEY, p["key"]), H(CTX_VALUE, p["value"])
    value_tail = struct.pack("<I", len(p["value"])) + p["value"]
    sib = p["siblings"]
    out = {
        # The key's own leaf passed off as "another key's leaf": recomputes the true root.
        "absence of a present key": encode_state_proof(2, p["height"], p["key"], sib, kh + vh),
        "trailing byte": present + b"\0",
        "truncated": present[:-1],
        "oversize value": encode_state_proof(
            0, p["height"], p["key"], sib, struct.pack("<I", 65537) + bytes(65537)
        ),
        "depth over 256": encode_state_proof(1, a["height"], a["key"], [EMPTY] * 257),
        "key of 65 bytes": encode_state_proof(1, a["height"], b"k" * 65, []),
        "empty key": encode_state_proof(1, a["height"], b"", []),
        "unknown kind": bytes([1, 3]) + present[2:],
        "unknown version": bytes([2]) + present[1:],
    }
    carried = [i for i, s in enumerate(sib) if s != EMPTY]
    empty = [i for i, s in enumerate(sib) if s == EMPTY]
    if carried:  # bitmap says empty, the hash is still carried: one sibling too many
        bm = bytearray(encode_bitmap(sib))
        bm[carried[0] >> 3] |= 1 << (carried[0] & 7)
        extra = b"".join(s for i, s in enumerate(sib) if s != EMPTY)
        head = struct.pack("<BBQB", 1, 0, p["height"], len(p["key"])) + p["key"] + struct.pack("<H", len(sib))
        out["bitmap: fewer siblings than carried"] = head + bytes(bm) + extra + value_tail
    if empty:  # bitmap says carried, the hash is missing; and EMPTY carried in full
        bm = bytearray(encode_bitmap(sib))
        bm[empty[0] >> 3] &= ~(1 << (empty[0] & 7))
        head = struct.pack("<BBQB", 1, 0, p["height"], len(p["key"])) + p["key"] + struct.pack("<H", len(sib))
        short = b"".join(s for i, s in enumerate(sib) if s != EMPTY)
        out["bitmap: more siblings than carried"] = head + bytes(bm) + short + value_tail
        full = b"".join(s for i, s in enumerate(sib) if s != EMPTY or i == empty[0])
        out["EMPTY carried in full (recomputes the root)"] = head + bytes(bm) + full + value_tail
    if len(sib) % 8:  # a padding bit: recomputes the root
        bm = bytearray(encode_bitmap(sib))
        bm[-1] |= 0x80
        head = struct.pack("<BBQB", 1, 0, p["height"], len(p["key"])) + p["key"] + struct.pack("<H", len(sib))
        out["padding bit set"] = head + bytes(bm) + b"".join(s for s in sib if s != EMPTY) + value_tail
    return out


def encode_bitmap(siblings: list[bytes]) -> bytes:
    bm = bytearray((len(siblings) + 7) // 8)
    for i, s in enumerate(siblings):
        if s == EMPTY:
            bm[i >> 3] |= 1 << (i & 7)
    return bytes(bm)


# --- a real chain --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """What an untrusted node serves: headers, proofs and the transactions paid."""
    from conftest import ALICE, BOB, CAROL, NODE, small_config, transfer
    from tierchain.apps import accounts
    from tierchain.engine.chain import Chain

    with Chain(tmp_path_factory.mktemp("spec") / "c", small_config(), NODE) as c:
        txs = []
        for n, to in enumerate((BOB, CAROL, BOB)):
            tx = transfer(ALICE, n, to, 10 + n)
            assert c.submit([tx]).wait(10)[0].code == 0
            txs.append(tx)
        head = c.height
        state = {}
        for h in (1, head):
            for k in [accounts.balance_key(x.public_key) for x in (ALICE, BOB, CAROL, NODE)]:
                state[k, h] = (c.prove_state(k, h).encode(), c.state_get(k, h))
            for i in range(64):  # absent keys: both kinds of absence occur
                k = b"absent/%d" % i
                state[k, h] = (c.prove_state(k, h).encode(), None)
        payments = [(tx, c.prove_tx(H(CTX_TX_BODY, tx[:-64])).encode()) for tx in txs]
        headers = [c.header(h).encode() for h in range(head + 1)]
    return {"headers": headers, "state": state, "payments": payments}


def test_header_chain_verifies_and_a_changed_header_does_not(served):
    headers = served["headers"]
    assert header_chain_ok(headers[0], headers[1:])
    for i in (0, 5, 13, 45, 53, 57, 121, 153, 185, 248):  # a byte of every field
        bad = bytearray(headers[-1])
        bad[i] ^= 1
        assert not header_chain_ok(headers[0], [*headers[1:-1], bytes(bad)]), i


def test_real_state_proofs_verify_with_the_spec_verifier(served):
    from tierchain import proofs

    kinds = set()
    for (key, height), (proof, value) in served["state"].items():
        header = served["headers"][height]
        kinds.add(proof[1])
        assert verify_state(header, proof, key) == (True, value), (key, height)
        assert proofs.verify_state_encoded(header, proof, key)
        other_height = served["headers"][height - 1]
        assert verify_state(other_height, proof, key)[0] is False
    assert kinds == {0, 1, 2}  # present, absent (empty subtree), absent (other leaf)


def test_forged_state_proofs_are_refused_by_both_verifiers(served):
    from tierchain import proofs

    present = [(k, h, p) for (k, h), (p, v) in served["state"].items() if v is not None]
    absent = [(k, h, p) for (k, h), (p, v) in served["state"].items() if v is None]
    names = set()
    for key, height, proof in present:
        header = served["headers"][height]
        for name, forged in forgeries(proof, absent[0][2]).items():
            names.add(name)
            forged_key = parse_state_proof_key(forged) or key
            assert verify_state(header, forged, forged_key) == (False, None), name
            assert not proofs.verify_state_encoded(header, forged, forged_key), name
    assert {
        "absence of a present key",
        "bitmap: fewer siblings than carried",
        "bitmap: more siblings than carried",
        "EMPTY carried in full (recomputes the root)",
    } <= names


def parse_state_proof_key(data: bytes) -> bytes | None:
    """The key field of (possibly malformed) proof bytes, to ask about the key it names."""
    if len(data) < 11 or len(data) < 11 + data[10]:
        return None
    return data[11 : 11 + data[10]] or None


def test_a_key_s_own_leaf_recomputes_the_root_so_the_soundness_check_matters(served):
    """Without step 6's check the forged absence would pass: its root is the true root."""
    (key, height), (proof, _) = next(kv for kv in served["state"].items() if kv[1][1] is not None)
    p = parse_state_proof(proof)
    forged = parse_state_proof(forgeries(proof, proof)["absence of a present key"])
    h = H(CTX_LEAF, forged["okh"] + forged["ovh"])
    kh = H(CTX_KEY, key)
    for i in range(len(p["siblings"]) - 1, -1, -1):
        s = p["siblings"][i]
        h = H(CTX_NODE, s + h) if kh_bit(kh, i) else H(CTX_NODE, h + s)
    assert h == parse_header(served["headers"][height])["state_root"]


def test_payments_verify_with_the_spec_verifier_and_forgeries_do_not(served):
    from tierchain import proofs

    headers = served["headers"]
    for tx, proof in served["payments"]:
        height = parse_tx_proof(proof)["height"]
        assert verify_payment(headers[height], proof, tx) == 0
        assert verify_payment(headers[height - 1], proof, tx) is None
        assert proofs.verify_tx(headers[height], proofs.decode_tx_proof(proof), H(CTX_TX_BODY, tx[:-64]))
        other_tx = served["payments"][0][0] if tx != served["payments"][0][0] else served["payments"][1][0]
        assert verify_payment(headers[height], proof, other_tx) is None
        for bad in (proof + b"\0", proof[:-1]):
            assert verify_payment(headers[height], bad, tx) is None
            with pytest.raises(proofs.ProofError):
                proofs.decode_tx_proof(bad)
        # A refused payment's receipt cannot be passed off as executed: change the code.
        n = proof[49]  # version 1, height 8, index 4, size 4, tx_id 32
        code_at = 50 + 32 * n + 5 + 32
        refused = bytearray(proof)
        refused[code_at] ^= 1
        assert parse_tx_proof(bytes(refused))["receipt"][32:34] != b"\0\0"
        assert verify_payment(headers[height], bytes(refused), tx) is None


def test_the_documented_test_vectors(tmp_path):
    """docs/proofs.md's vectors verify with the spec verifier, and TierChain still produces them."""
    from tierchain import proofs
    from tierchain.state.storage import Store
    from tierchain.state.tree import StateTree

    doc = (Path(__file__).parents[2] / "docs" / "proofs.md").read_text()
    block = doc.split("### Test vectors")[1].split("```")[1]
    root = bytes.fromhex(re.search(r"^state_root\s+([0-9a-f]{64})$", block, re.M)[1])
    vectors = {
        k.encode(): bytes.fromhex(v) for k, v in re.findall(r'^proof "(\w+)"\s+([0-9a-f]+)$', block, re.M)
    }
    assert re.search(r'^kh\("k4"\)\s+([0-9a-f]{64})$', block, re.M)[1] == H(CTX_KEY, b"k4").hex()
    expect = {b"k4": b"A", b"x12": None, b"x0": None}
    assert set(vectors) == set(expect)
    for key, proof in vectors.items():
        assert verify_state_root(root, 0, proof, key) == (True, expect[key]), key
        assert verify_state_root(root, 1, proof, key)[0] is False
    assert [vectors[k][1] for k in (b"k4", b"x12", b"x0")] == [0, 1, 2]
    own_leaf = forgeries(vectors[b"k4"], vectors[b"x12"])["absence of a present key"]
    assert verify_state_root(root, 0, own_leaf, b"k4") == (False, None)

    store, tree = Store(tmp_path / "db", sync=False), StateTree()
    try:
        with store.write() as w:
            assert tree.apply(w, 0, {b"k4": b"A", b"k1": b"B", b"k2": b"C"}) == root
        with store.read() as r:
            for key, proof in vectors.items():
                assert tree.prove(r, key, 0).encode() == proof, key
                assert proofs.verify_state(root, proofs.decode_state_proof(proof), key, height=0)
    finally:
        store.close()
