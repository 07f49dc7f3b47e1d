"""Light-client verification (tierchain.proofs): tampering, forgery, decoders, purity."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ALICE, BOB, NODE, small_config, transfer
from tierchain import domains, limits, proofs
from tierchain.crypto import merkle
from tierchain.engine.chain import Chain
from tierchain.state import storage
from tierchain.state.storage import Store
from tierchain.state.tree import MemoryStateTree, StateTree
from tierchain.wire import block

KEYS = [bytes([i, i ^ 0x5A]) for i in range(60)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """60 keys, then key 0..19 deleted at height 1; proofs at both heights."""
    path = tmp_path_factory.mktemp("proofs")
    store, t = Store(path, sync=False), StateTree()
    with store.write() as w:
        roots = [t.apply(w, 0, {k: b"value-" + k for k in KEYS})]
        roots.append(t.apply(w, 1, {k: None for k in KEYS[:20]}))
    yield store, t, roots
    store.close()


def all_proofs(store, t, roots):
    with store.read() as r:
        for height, root in enumerate(roots):
            for k in [*KEYS, b"absent-1", b"absent-2", b"\x00"]:
                yield root, height, t.prove(r, k, height)


def test_every_kind_of_proof_occurs_and_verifies(tree):
    kinds = set()
    for root, height, p in all_proofs(*tree):
        kinds.add(p.kind)
        assert proofs.verify_state(root, p, p.key, height=height)
        assert not proofs.verify_state(root, p, p.key, height=height + 1)
        assert proofs.decode_state_proof(p.encode()) == p
    assert kinds == {proofs.PRESENT, proofs.ABSENT_EMPTY, proofs.ABSENT_LEAF}


def test_every_single_byte_change_fails(tree):
    for root, height, p in list(all_proofs(*tree))[::7]:
        data = p.encode()
        for i in range(len(data)):
            for delta in (1, 0x80):
                bad = bytearray(data)
                bad[i] ^= delta
                try:
                    q = proofs.decode_state_proof(bytes(bad))
                except proofs.ProofError:
                    continue
                # Checked for the key the client asked about. (The altered proof may
                # be a true absence proof for another key with the same path prefix.)
                assert not proofs.verify_state(root, q, p.key, height=height), (i, delta)
        # The claimed value and the asked-for key, changed byte by byte.
        if p.value:
            for i in range(len(p.value)):
                v = bytearray(p.value)
                v[i] ^= 1
                assert not proofs.verify_state(root, dataclasses.replace(p, value=bytes(v)))
        for i in range(len(p.key)):
            k = bytearray(p.key)
            k[i] ^= 1
            assert not proofs.verify_state(root, p, bytes(k))
            if p.value is not None:  # an inclusion proof never carries over to another key
                assert not proofs.verify_state(root, dataclasses.replace(p, key=bytes(k)))
        for i in range(32):
            rt = bytearray(root)
            rt[i] ^= 1
            assert not proofs.verify_state(bytes(rt), p)


def test_absence_cannot_be_forged_for_present_keys_nor_inclusion_for_absent(tree):
    store, t, roots = tree
    root = roots[1]
    with store.read() as r:
        present = [t.prove(r, k, 1) for k in KEYS[20:]]
        absent = [t.prove(r, k, 1) for k in [*KEYS[:20], b"absent-1"]]
        leaves = [(proofs.key_hash(p.key), proofs.value_hash(p.value)) for p in present]
    for p in present:
        assert p.value is not None
        for depth in range(len(p.siblings) + 1):
            sib = p.siblings[:depth]
            assert not proofs.verify_state(root, dataclasses.replace(p, value=None, siblings=sib))
            for other in leaves:
                forged = dataclasses.replace(p, value=None, siblings=sib, other=other)
                assert not proofs.verify_state(root, forged)
        assert not proofs.verify_state(root, dataclasses.replace(p, value=None))
    for p in absent:
        assert p.value is None
        for value in (b"", b"value-" + p.key, b"x"):
            assert not proofs.verify_state(root, dataclasses.replace(p, value=value, other=None))
    # A present key's proof at height 0 is not a proof at height 1 (it was deleted).
    with store.read() as r:
        old = t.prove(r, KEYS[0], 0)
    assert old.value is not None and not proofs.verify_state(roots[1], old)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=400))
def test_state_proof_decoder_never_crashes_and_is_canonical(data):
    try:
        p = proofs.decode_state_proof(data)
    except proofs.ProofError:
        return
    assert p.encode() == data
    proofs.verify_state(bytes(32), p)  # never raises


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_tx_proof_and_header_decoders_never_crash(data):
    for decode in (proofs.decode_tx_proof, proofs.decode_header):
        try:
            p = decode(data)
        except proofs.ProofError:
            continue
        if decode is proofs.decode_tx_proof:
            assert p.encode() == data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=40), st.data())
def test_merkle_verify_matches_tierchain_merkle(leaves, data):
    i = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle.prove(leaves, i)
    root = merkle.root(leaves)
    assert proofs.merkle_verify(root, leaves[i], i, len(leaves), path)
    wrong = data.draw(st.integers(0, len(leaves)))
    assert proofs.merkle_verify(root, leaves[i], wrong, len(leaves), path) == merkle.verify(
        root, leaves[i], wrong, len(leaves), path
    )


def test_tx_and_receipt_proofs_and_header_chain(tmp_path):
    with Chain(tmp_path / "c", small_config(), NODE) as c:
        subs = []
        for k in (0, 3, 6):  # one block each
            subs.append(c.submit([transfer(ALICE, n, BOB, 1) for n in range(k, k + 3)]))
            subs[-1].wait(10)
        headers = [c.header(h).encode() for h in range(c.height + 1)]
        assert len(headers) >= 4
        tx_id = subs[1].tx_ids[2]
        p = c.prove_tx(tx_id)
    header = headers[p.height]
    assert proofs.verify_tx(header, p, tx_id)
    assert proofs.decode_tx_proof(p.encode()) == p
    assert not proofs.verify_tx(headers[p.height - 1], p)
    assert not proofs.verify_tx(header, p, subs[0].tx_ids[0])
    data = p.encode()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 1
        try:
            q = proofs.decode_tx_proof(bytes(bad))
        except proofs.ProofError:
            continue
        assert not proofs.verify_tx(header, q), i
    # Header chain from the trusted genesis header, with the native and a PyNaCl verifier.
    assert proofs.verify_header_chain(headers[0], headers[1:])

    def nacl_verify(pk: bytes, msg: bytes, sig: bytes) -> bool:
        try:
            nacl.signing.VerifyKey(pk).verify(msg, sig)
            return True
        except nacl.exceptions.BadSignatureError:
            return False

    assert proofs.verify_header_chain(headers[0], headers[1:], nacl_verify)
    assert not proofs.verify_header_chain(headers[0], headers[2:])  # a gap
    assert not proofs.verify_header_chain(headers[1], headers[1:])
    for i in range(0, block.header_bytes, 3):
        bad = bytearray(headers[-1])
        bad[i] ^= 1
        assert not proofs.verify_header_chain(headers[0], [*headers[1:-1], bytes(bad)]), i
    light = proofs.decode_header(headers[-1])
    assert light.hash == block.decode_header(headers[-1]).hash()


def test_constants_mirror_the_node():
    assert proofs.STATE_KEY_BYTES_MAX == limits.key_bytes_max
    assert proofs.STATE_VALUE_BYTES_MAX == storage.state_value_bytes_max
    assert proofs.HEADER_BYTES == block.header_bytes
    assert proofs.EMPTY_HASH == MemoryStateTree().root
    assert len(set(domains.STATE_TREE)) == 5


def test_proofs_module_needs_no_native_code(tmp_path, tree):
    store, t, roots = tree
    with store.read() as r:
        p = t.prove(r, KEYS[30], 1)
    script = f"""
import sys
sys.modules["tierchain_native"] = None  # importing it now fails
sys.modules["numpy"] = None
from tierchain import proofs
p = proofs.decode_state_proof(bytes.fromhex("{p.encode().hex()}"))
assert proofs.verify_state(bytes.fromhex("{roots[1].hex()}"), p, {KEYS[30]!r})
print("ok")
"""
    core = Path(proofs.__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", script], env={"PYTHONPATH": str(core)}, capture_output=True)
    assert out.stdout.strip() == b"ok", out.stderr


def test_forged_state_proofs_are_refused(tree):
    """Each forgery (tests/proofs/test_proofs_spec.py: built from the documented encoding) is refused."""
    from test_proofs_spec import forgeries

    store, t, roots = tree
    with store.read() as r:
        present = [t.prove(r, k, 1) for k in KEYS[20:30]]
        absent = t.prove(r, b"absent-1", 1)
    seen = set()
    for p in present:
        for name, data in forgeries(p.encode(), absent.encode()).items():
            seen.add(name)
            try:
                q = proofs.decode_state_proof(data)
            except proofs.ProofError:
                continue
            assert not proofs.verify_state(roots[1], q, p.key, height=1), name
    assert "absence of a present key" in seen and "bitmap: fewer siblings than carried" in seen


def test_the_soundness_check_is_what_refuses_a_forged_absence(tree):
    """The key's own leaf as "another key's leaf" recomputes the true root: only okh != kh stops it."""
    store, t, roots = tree
    with store.read() as r:
        p = t.prove(r, KEYS[40], 1)
    forged = dataclasses.replace(p, value=None, other=(proofs.key_hash(p.key), proofs.value_hash(p.value)))
    assert forged.kind == proofs.ABSENT_LEAF
    h = proofs.leaf_hash(*forged.other)
    kh = proofs.key_hash(p.key)
    for i in range(len(p.siblings) - 1, -1, -1):
        h = proofs.node_hash(p.siblings[i], h) if proofs.bit(kh, i) else proofs.node_hash(h, p.siblings[i])
    assert h == roots[1]
    assert proofs.state_root_from_proof(forged) is None
    assert not proofs.verify_state(roots[1], proofs.decode_state_proof(forged.encode()), p.key, height=1)


def test_keys_outside_the_bounds_are_refused_by_verification_too(tree):
    """A proof object built by hand is held to the decoder's bounds (key 1..64 bytes)."""
    store, t, roots = tree
    with store.read() as r:
        long_key = t.prove(r, b"k" * 65, 1)
        empty_key = t.prove(r, b"", 1)
        fine = t.prove(r, b"k" * 64, 1)
    assert proofs.verify_state(roots[1], fine, b"k" * 64, height=1)
    for p in (long_key, empty_key):
        assert not proofs.verify_state(roots[1], p, p.key, height=1)


def test_proofs_py_is_one_self_contained_file(tmp_path):
    """Copied alone into a client (no tierchain package at all), proofs.py verifies real proofs."""
    import shutil

    with Chain(tmp_path / "c", small_config(), NODE) as c:
        sub = c.submit([transfer(ALICE, 0, BOB, 7)])
        sub.wait(10)
        headers = [c.header(h).encode() for h in range(c.height + 1)]
        key = b"bal/" + BOB.public_key
        state = c.prove_state(key).encode()
        tx = c.prove_tx(sub.tx_ids[0]).encode()
    client = tmp_path / "client"
    client.mkdir()
    shutil.copy(proofs.__file__, client / "proofs.py")
    script = f"""
import sys
sys.modules["tierchain"] = None  # importing any tierchain module now fails
import nacl.exceptions, nacl.signing
import proofs

def nacl_verify(pk, msg, sig):
    try:
        nacl.signing.VerifyKey(pk).verify(msg, sig)
        return True
    except nacl.exceptions.BadSignatureError:
        return False

headers = [bytes.fromhex(h) for h in {[h.hex() for h in headers]!r}]
assert proofs.verify_header_chain(headers[0], headers[1:], nacl_verify)
head = headers[-1]
assert proofs.verify_state_encoded(head, bytes.fromhex("{state.hex()}"), {key!r})
tx = proofs.decode_tx_proof(bytes.fromhex("{tx.hex()}"))
assert proofs.verify_tx(headers[tx.height], tx, bytes.fromhex("{sub.tx_ids[0].hex()}"))
try:
    proofs.verify_header_chain(headers[0], headers[1:])
except proofs.NoSignatureVerifier as exc:
    print("ok", exc)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=client, env={}, capture_output=True, timeout=60)
    assert out.stdout.startswith(b"ok tierchain.crypto is not installed"), out.stderr


def test_domains_takes_the_light_client_contexts_from_proofs():
    """One definition: domains re-exports the contexts proofs.py defines (same objects)."""
    for name in ("BLOCK_HEADER", "STATE_KEY", "STATE_VALUE", "STATE_LEAF", "STATE_NODE", "STATE_EMPTY"):
        assert getattr(domains, name) is getattr(proofs, name)
    assert domains.STATE_TREE is proofs.STATE_TREE
    source = Path(proofs.__file__).read_text()
    assert "from tierchain" not in source.replace("from tierchain import crypto", "")


# --- tierchain state prove --------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_chain(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "c"
    with Chain(path, small_config(), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 5)]).wait(10)
    return path


def _prove(directory, key: str, *extra: str):
    from click.testing import CliRunner

    from tierchain.cli.main import main

    return CliRunner().invoke(main, ["state", "prove", str(directory), key, *extra])


def test_state_prove_parses_public_key_forms_and_its_output_decodes(cli_chain):
    import json

    for text, key in [
        ("bal/" + BOB.public_key.hex(), b"bal/" + BOB.public_key),
        ("bal/" + ALICE.public_key.hex().upper(), b"bal/" + ALICE.public_key),
        ("0x" + (b"acct/" + ALICE.public_key).hex(), b"acct/" + ALICE.public_key),
        ("acct/" + BOB.public_key.hex(), b"acct/" + BOB.public_key),
        ("no such key", b"no such key"),
        ("k" * 64, b"k" * 64),
    ]:
        r = _prove(cli_chain, text)
        assert r.exit_code == 0, (text, r.output)
        out = json.loads(r.output)
        assert set(out) == {"suite", "key", "height", "value", "proof", "header", "verified"}
        assert bytes.fromhex(out["key"]) == key
        proof = proofs.decode_state_proof(bytes.fromhex(out["proof"]))  # what a client decodes
        header = bytes.fromhex(out["header"])
        assert out["verified"] is True and proofs.verify_state(header, proof, key)
        assert proof.height == out["height"] == proofs.decode_header(header).height
        assert out["value"] == (None if proof.value is None else proof.value.hex())
    bob = json.loads(_prove(cli_chain, "bal/" + BOB.public_key.hex()).output)
    assert int.from_bytes(bytes.fromhex(bob["value"]), "little") == 5


def test_state_prove_verified_flag_checks_the_printed_bytes(cli_chain, monkeypatch):
    """If the bytes printed are not a valid proof, "verified" says so (it checked them)."""
    import json

    real_encode = proofs.StateProof.encode
    monkeypatch.setattr(proofs.StateProof, "encode", lambda self, **kw: real_encode(self, **kw) + b"\0")
    r = _prove(cli_chain, "bal/" + BOB.public_key.hex())
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["verified"] is False


@pytest.mark.parametrize(
    "key",
    ["", "k" * 65, "k" * 300, "bal/" + "ab" * 40, "0x" + "00" * 65, "0xzz", "bal/" + "ab" * 31],
)
def test_state_prove_refuses_bad_keys_in_one_line(cli_chain, key):
    """Outside 1..64 bytes (a 300-byte key crashed with struct.error), or malformed: exit 2, one line."""
    r = _prove(cli_chain, key)
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "KEY" in lines[0], r.output


def test_state_prove_refuses_a_bad_height_in_one_line(cli_chain):
    for height, code in (("-1", 2), ("99", 1)):
        r = _prove(cli_chain, "bal/" + BOB.public_key.hex(), "--height", height)
        assert r.exit_code == code and len(r.output.strip().splitlines()) == 1, r.output
        assert isinstance(r.exception, SystemExit)


def test_docs_proofs_example_runs_and_prints_what_the_docs_show():
    """docs/proofs_example.py (the bank's side uses tierchain.proofs only) runs as documented."""
    root = Path(__file__).parents[2]
    doc = (root / "docs" / "proofs.md").read_text()
    shown = doc.split("Output of")[1].split("```")[1].strip()
    out = subprocess.run(
        [sys.executable, str(root / "docs" / "proofs_example.py")],
        env={"PYTHONPATH": str(root / "core")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == shown


def test_verify_state_encoded_needs_a_whole_header(tree):
    store, t, roots = tree
    with store.read() as r:
        p = t.prove(r, KEYS[30], 1)
    assert proofs.verify_state(roots[1], p, KEYS[30])  # a bare root binds no height
    assert not proofs.verify_state_encoded(roots[1], p.encode(), KEYS[30])
