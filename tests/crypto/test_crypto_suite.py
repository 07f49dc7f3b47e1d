"""The crypto suite object (``tierchain.crypto.suite``): one chain, one suite, chosen once.

What is checked: the suite is found by name and an unknown name is a named error;
its sizes are the sizes of real keys, signatures and digests; its hash contexts
are the light client's and Rust's (both the exported list and the hashes Rust
actually computes); batch verification over packed columns pinpoints bad rows;
its Merkle roots (list and packed) agree with the RFC 6962 reference; the batch
decoder takes key and signature sizes as parameters; the chain and ``verify``
compute through the suite they are given; and no engine module calls a native
hash or signature primitive around it.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import blake3
import numpy as np
import pytest
import tierchain_native

from conftest import ALICE, BOB, NODE, small_config
from tierchain import _hot, crypto, domains, limits, proofs
from tierchain.apps import accounts as accounts_app
from tierchain.crypto import (
    ED25519_BLAKE3,
    CryptoSuite,
    Ed25519Blake3,
    KeyPair,
    UnknownCryptoSuite,
    merkle,
    suite_for,
    suite_of,
)
from tierchain.engine import chain, schedule, verify
from tierchain.errors import Reject, TierChainError
from tierchain.state.tree import MemoryStateTree
from tierchain.wire import block
from tierchain.wire import tx as txcodec
from tierchain.wire.batch import Batch, decode_batch

CHAIN_ID = 9


def transfer(keys: KeyPair, nonce: int, to: KeyPair, amount: int) -> bytes:
    return keys.sign_tx(
        accounts_app.transfer(CHAIN_ID, keys.public_key, nonce, to.public_key, amount)
    ).encode()


# --- choice -------------------------------------------------------------------------


def test_suite_is_found_by_name_and_an_unknown_name_is_refused_by_name():
    assert suite_for("ed25519-blake3") is ED25519_BLAKE3
    assert isinstance(ED25519_BLAKE3, CryptoSuite)
    assert suite_for("sm2-sm3") is crypto.SM2_SM3
    with pytest.raises(UnknownCryptoSuite, match=r"'rsa-sha1'.*ed25519-blake3, sm2-sm3"):
        suite_for("rsa-sha1")
    with pytest.raises(TierChainError):  # a named TierChain error, not a KeyError
        suite_for("")


def test_a_chain_config_selects_its_suite_the_default_when_unsaid():
    assert suite_of(small_config()) is ED25519_BLAKE3
    assert suite_of(small_config(crypto="sm2-sm3")) is crypto.SM2_SM3
    assert suite_of(object()) is ED25519_BLAKE3  # an embedder's config without the field


# --- sizes ---------------------------------------------------------------------------


def test_sizes_are_those_of_real_keys_signatures_and_digests():
    s = ED25519_BLAKE3
    keys = s.keys_from_seed(b"k".ljust(32, b"\0"))
    signature = s.sign(keys, s.tx_id(b"body"))
    assert len(keys.public_key) == s.public_key_bytes == limits.public_key_bytes
    assert len(signature) == s.signature_bytes == limits.signature_bytes
    assert len(s.tx_id(b"body")) == s.digest_bytes == merkle.DIGEST_BYTES
    assert s.verify(keys.public_key, s.tx_id(b"body"), signature)
    assert len(s.generate_keys().public_key) == s.public_key_bytes
    assert s.keyfile_sealing == "argon2id-xsalsa20poly1305"
    with pytest.raises(ValueError, match="ed25519-blake3"):
        s.sign(dataclasses.replace(keys, public_key=keys.public_key + b"\0"), b"m")


def test_weak_keys_are_refused_by_the_suite():
    identity = bytes([1]) + bytes(31)  # the neutral point: signs every message under ZIP-215
    assert not ED25519_BLAKE3.is_strong_public_key(identity)
    assert ED25519_BLAKE3.is_strong_public_key(ALICE.public_key)


# --- hash contexts: defined once, the same in Python and Rust ------------------------


def test_contexts_are_the_light_clients_and_all_distinct():
    c = ED25519_BLAKE3.contexts
    assert c.block_header is proofs.BLOCK_HEADER and c.state_tree is proofs.STATE_TREE
    assert c.tx_body is domains.TX_BODY and c.keyfile is domains.KEYFILE
    assert len(set(c.all())) == len(c.all()) == 10


def test_rust_state_tree_contexts_are_the_suites():
    native_empty, native_contexts = tierchain_native.smt_constants()
    assert tuple(native_contexts) == ED25519_BLAKE3.contexts.state_tree
    assert native_empty == ED25519_BLAKE3.hash(proofs.STATE_EMPTY, b"")


def test_rust_hashes_the_state_tree_with_the_suites_contexts():
    """Not just the exported names: a one-key tree's root (computed in ext/rust/src/smt/) is the
    leaf the suite computes from its key, value and leaf contexts."""
    s, (key_ctx, value_ctx, leaf_ctx, _node, _empty) = ED25519_BLAKE3, ED25519_BLAKE3.contexts.state_tree
    tree = MemoryStateTree()
    root = tree.apply(1, {b"bal/x": b"\x07"})
    assert root == s.hash(leaf_ctx, s.hash(key_ctx, b"bal/x") + s.hash(value_ctx, b"\x07"))


def test_the_suite_refuses_to_load_when_rust_contexts_differ(monkeypatch):
    empty, contexts = tierchain_native.smt_constants()
    changed = [*contexts[:-1], "tierchain 2027 state empty"]
    monkeypatch.setattr(tierchain_native, "smt_constants", lambda: (empty, changed))
    with pytest.raises(AssertionError, match=r"ext/rust/src/smt"):
        Ed25519Blake3()


# --- hashing -------------------------------------------------------------------------


def test_one_hash_and_the_batch_form_agree_and_are_the_engines():
    bodies = [b"", b"a", bytes(range(200)), b"x" * 5000]
    buf = b"".join(bodies)
    ends = np.cumsum([len(b) for b in bodies])
    starts = ends - [len(b) for b in bodies]
    packed = ED25519_BLAKE3.tx_ids(buf, starts, ends)
    assert [packed[i * 32 : i * 32 + 32] for i in range(len(bodies))] == [
        ED25519_BLAKE3.tx_id(b) for b in bodies
    ]
    assert txcodec.tx_id(bodies[2]) == ED25519_BLAKE3.hash(domains.TX_BODY, bodies[2])
    h = ED25519_BLAKE3.hasher(domains.WRITE_SET)
    h.update(b"ab")
    h.update(b"c")
    assert h.digest() == ED25519_BLAKE3.hash(domains.WRITE_SET, b"abc")
    assert ED25519_BLAKE3.tx_id(b"a") != ED25519_BLAKE3.header_hash(b"a")  # separate domains


def test_header_hash_and_signature_go_through_the_suite():
    header = block.Header(CHAIN_ID, 1, bytes(32), 5, 0, bytes(32), bytes(32), bytes(32), NODE.public_key)
    signed = header.signed(NODE, ED25519_BLAKE3)
    assert header.hash(ED25519_BLAKE3) == ED25519_BLAKE3.header_hash(header.unsigned_bytes())
    assert header.hash(ED25519_BLAKE3) == proofs.decode_header(signed.encode()).hash  # the light client's
    assert signed.signature_ok(ED25519_BLAKE3)
    assert not dataclasses.replace(signed, height=2).signature_ok(ED25519_BLAKE3)


# --- batch signature verification ----------------------------------------------------


def test_packed_batch_verification_pinpoints_bad_rows():
    keys = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(9)]
    digests = [ED25519_BLAKE3.tx_id(bytes([i])) for i in range(9)]
    sigs = [ED25519_BLAKE3.sign(k, d) for k, d in zip(keys, digests, strict=True)]
    sigs[2] = sigs[3]  # someone else's signature
    digests[5] = bytes(32)  # a different message
    out = ED25519_BLAKE3.verify_batch_packed(
        b"".join(k.public_key for k in keys), b"".join(digests), b"".join(sigs)
    )
    expected = [i not in (2, 5) for i in range(9)]
    assert [bool(v) for v in out] == expected
    pks = [k.public_key for k in keys]
    assert ED25519_BLAKE3.verify_batch(pks, digests, sigs) == expected
    assert [ED25519_BLAKE3.verify(k, d, s) for k, d, s in zip(pks, digests, sigs, strict=True)] == expected
    assert crypto.verify_batch(pks, digests, sigs) == expected  # the module-level helper is the suite's


# --- Merkle roots ----------------------------------------------------------------------


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH from the suite's leaf and node hashes, by the recursive definition."""
    s = ED25519_BLAKE3
    if not leaves:
        return blake3.blake3(b"").digest()  # MTH([]) of tierchain.crypto.merkle
    if len(leaves) == 1:
        return s.merkle_leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return s.merkle_node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 13])
def test_merkle_roots_of_lists_and_packed_digests_agree_with_the_reference(n):
    digests = [ED25519_BLAKE3.tx_id(bytes([i])) for i in range(n)]
    root = reference_root(digests)
    assert ED25519_BLAKE3.merkle_root(digests) == root
    assert ED25519_BLAKE3.merkle_root_packed(b"".join(digests)) == root
    assert merkle.root_packed(b"".join(digests)) == merkle.root(digests) == root
    for i in range(n):
        path = ED25519_BLAKE3.merkle_prove(digests, i)
        assert ED25519_BLAKE3.merkle_verify(root, digests[i], i, n, path)
        assert proofs.merkle_verify(root, digests[i], i, n, path)
        assert not ED25519_BLAKE3.merkle_verify(root, bytes(32), i, n, path)


# --- the decoder takes the suite's sizes ---------------------------------------------


def reshape_tx(encoded: bytes, public_key: bytes, signature: bytes) -> bytes:
    """``encoded`` (default layout) with another sender and signature of any size."""
    off = _hot.layout()["off_sender"]
    body = encoded[: -limits.signature_bytes]
    return body[:off] + public_key + body[off + limits.public_key_bytes :] + signature


def test_default_layout_is_the_limits_modules():
    lay = _hot.layout()
    assert lay == _hot.layout(ED25519_BLAKE3.public_key_bytes, ED25519_BLAKE3.signature_bytes)
    assert lay["tx_fixed_bytes"] == limits.tx_fixed_bytes and lay["tx_bytes_min"] == limits.tx_bytes_min
    assert lay["off_nonce"] == lay["off_sender"] + limits.public_key_bytes


def test_decoder_reads_other_key_and_signature_sizes():
    tx = txcodec.decode(transfer(ALICE, 7, BOB, 3))
    pk, sig = bytes(range(1, 34)), bytes(range(100, 172))  # 33 and 72 bytes
    other = reshape_tx(tx.encode(), pk, sig)
    cols = _hot.decode_frames(txcodec.frame([other, other[:-1]]), 33, 72)
    assert cols["code"].tolist() == [Reject.OK, Reject.TRUNCATED]
    assert cols["sender"].shape == (2, 33) and cols["signature"].shape == (2, 72)
    assert cols["sender"][0].tobytes() == pk and cols["signature"][0].tobytes() == sig
    assert (cols["nonce"][0], cols["chain_id"][0], cols["op"][0]) == (7, tx.chain_id, tx.op)
    b = Batch(buf=txcodec.frame([other, other[:-1]]), digest=np.zeros((2, 32), np.uint8), **cols)
    assert b.keys_of(0) == (tx.reads, tx.writes) and b.payload(0) == tx.payload
    # The same bytes under the default sizes are another (here: malformed) layout.
    assert _hot.decode_frames(txcodec.frame([other]))["code"].tolist() != [Reject.OK]


def test_smallest_transaction_follows_the_sizes():
    minimal = txcodec.Tx(chain_id=1, shard_id=0, op=1, sender=bytes(32), nonce=0, signature=bytes(64))
    assert len(minimal.encode()) == limits.tx_bytes_min
    bigger = reshape_tx(minimal.encode(), bytes(40), bytes(96))
    lay = _hot.layout(40, 96)
    assert len(bigger) == lay["tx_bytes_min"] == limits.tx_bytes_min + 8 + 32
    assert _hot.decode_frames(txcodec.frame([bigger]), 40, 96)["code"].tolist() == [Reject.OK]
    assert _hot.decode_frames(txcodec.frame([bigger[:-1]]), 40, 96)["code"].tolist() == [Reject.TOO_SHORT]


@pytest.mark.parametrize("sizes", [(0, 64), (32, 0), (129, 64), (32, 257), (-1, 64)])
def test_decoder_refuses_sizes_no_suite_can_have(sizes):
    with pytest.raises((ValueError, OverflowError)):
        _hot.decode_frames(b"", *sizes)


def test_scheduler_takes_senders_of_the_suites_width():
    tx = txcodec.decode(transfer(ALICE, 0, BOB, 1))
    other = reshape_tx(tx.encode(), bytes(range(33)), bytes(72))
    buf = txcodec.frame([other, other])
    cols = _hot.decode_frames(buf, 33, 72)
    b = Batch(buf=buf, digest=np.zeros((2, 32), np.uint8), **cols)
    assert schedule.schedule(b).tolist() == [0, 1]  # same sender, same keys: in order


def test_decode_batch_uses_the_suites_sizes_and_tx_ids():
    txs = [transfer(ALICE, n, BOB, 1) for n in range(3)]
    b = decode_batch(txcodec.frame(txs), suite=ED25519_BLAKE3)
    assert [d.tobytes() for d in b.digest] == [
        ED25519_BLAKE3.tx_id(t[: -ED25519_BLAKE3.signature_bytes]) for t in txs
    ]


# --- the engine computes through the suite it is given ---------------------------------


class CountingSuite(Ed25519Blake3):
    """The default suite, counting the calls the engine makes on it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def verify_batch_packed(self, public_keys, digests, signatures):
        self._count("verify_batch_packed")
        return super().verify_batch_packed(public_keys, digests, signatures)

    def tx_ids(self, buf, starts, ends):
        self._count("tx_ids")
        return super().tx_ids(buf, starts, ends)

    def merkle_root_packed(self, digests):
        self._count("merkle_root_packed")
        return super().merkle_root_packed(digests)

    def header_hash(self, unsigned):
        self._count("header_hash")
        return super().header_hash(unsigned)

    def hash_many(self, context, buf, starts, ends):
        self._count(f"hash_many {context}")
        return super().hash_many(context, buf, starts, ends)


def test_chain_and_verify_compute_through_the_injected_suite(chain_dir, monkeypatch):
    spy = CountingSuite()
    monkeypatch.setattr(chain, "suite_of", lambda config: spy)
    with chain.Chain(chain_dir, small_config(), NODE) as c:
        assert c.suite is spy and c.mempool.suite is spy
        receipts = c.submit([transfer(ALICE, n, BOB, 1) for n in range(3)]).wait(10)
        assert [r.code for r in receipts] == [Reject.OK] * 3
    assert {"verify_batch_packed", "tx_ids", "merkle_root_packed", "header_hash"} <= spy.calls.keys()

    checker = CountingSuite()
    monkeypatch.setattr(verify, "suite_of", lambda config: checker)
    assert verify.verify_chain(chain_dir).ok
    assert {"verify_batch_packed", "tx_ids", "merkle_root_packed", "header_hash"} <= checker.calls.keys()


def test_synthetic_genesis_keys_are_hashed_by_the_chains_suite(monkeypatch):
    from tierchain.config import SyntheticAccounts
    from tierchain.engine import genesis

    config = small_config(genesis_synthetic=SyntheticAccounts(accounts=5, seed=3, balance=1))
    before = genesis.sorted_public_keys(config)
    spy = CountingSuite()
    monkeypatch.setattr(genesis, "suite_of", lambda c: spy if c is config else ED25519_BLAKE3)
    after = genesis.sorted_public_keys(config)
    assert spy.calls == {f"hash_many {domains.SYNTHETIC_ACCOUNT}": 1}
    assert bytes(after) == bytes(before)  # the same keys: the genesis state does not move
    assert genesis.synthetic_public_keys(3, 0, 5, spy) == genesis.synthetic_public_keys(3, 0, 5)
    assert spy.calls[f"hash_many {domains.SYNTHETIC_ACCOUNT}"] == 2


# Native crypto primitives: only the suite may call them.
_NATIVE_CRYPTO = re.compile(r"tierchain_native\.(verify|hash_many|hash_one|merkle_\w+)\(")


def test_no_engine_module_calls_native_crypto_around_the_suite():
    package = Path(crypto.__file__).parents[1]
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package) == Path("crypto/suite.py"):  # merkle.py beside it goes through it too
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _NATIVE_CRYPTO.search(line):
                offenders.append(f"{path.relative_to(package)}:{number}")
    assert offenders == []


def test_interim_state_root_uses_the_suites_domains():
    from tierchain.state import interim_root

    writes = {b"b": b"2", b"a": None}
    entry = struct.Struct("<BBI")
    expected = ED25519_BLAKE3.hash(
        domains.WRITE_SET, entry.pack(1, 0, 0) + b"a" + entry.pack(1, 1, 1) + b"b" + b"2"
    )
    assert interim_root.write_set_digest(writes) == expected
    parent = bytes(32)
    assert interim_root.next_state_root(parent, writes) == ED25519_BLAKE3.hash(
        domains.STATE_ROOT, parent + expected
    )
