"""The versioned sparse Merkle state tree (Rust update, LMDB glue) against a naive reference."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ALICE, BOB, NODE, small_config, transfer
from tierchain import proofs
from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.state.storage import StorageError, Store
from tierchain.state.tree import MemoryStateTree, StatePruned, StateTree, StateUnavailable, split_keys


def reference_root(state: dict[bytes, bytes]) -> bytes:
    """The tree's definition, from scratch: no storage, no versions, no Rust."""
    items = sorted((proofs.key_hash(k), proofs.value_hash(v)) for k, v in state.items())

    def rec(items: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not items:
            return proofs.EMPTY_HASH
        if len(items) == 1:
            return proofs.leaf_hash(*items[0])
        mid = next((i for i, (kh, _) in enumerate(items) if proofs.bit(kh, depth)), len(items))
        return proofs.node_hash(rec(items[:mid], depth + 1), rec(items[mid:], depth + 1))

    return rec(items, 0)


keys_st = st.binary(min_size=1, max_size=3)  # a small key space: many overwrites and deletes
batch_st = st.dictionaries(keys_st, st.none() | st.binary(max_size=4), max_size=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(batch_st, min_size=1, max_size=8))
def test_random_versions_match_reference_memory_and_lmdb(tmp_path_factory, batches):
    path = tmp_path_factory.mktemp("smt")
    mem, tree, state = MemoryStateTree(), StateTree(), {}
    snapshots = []
    with Store(path, sync=False) as store:
        for version, batch in enumerate(batches):
            with store.write() as w:
                root = tree.apply(w, version, batch)
            for k, v in batch.items():
                if v is None:
                    state.pop(k, None)
                else:
                    state[k] = v
            want = reference_root(state)
            assert root == want
            assert mem.apply(version, batch) == want
            # One leaf per key and exactly the reachable nodes: deletions restore compression.
            assert sum(1 for n in mem.nodes.values() if n[0] == 2) == len(state)
            snapshots.append((dict(state), root))
        with store.read() as r:
            universe = {k for batch in batches for k in batch} | {b"\xff" * 4}
            for version, (snap, root) in enumerate(snapshots):
                assert StateTree.root(r, version) == root
                for k in universe:
                    proof = tree.prove(r, k, version)
                    assert proof.value == snap.get(k)
                    assert tree.get(r, k, version) == snap.get(k)
                    assert proofs.verify_state(root, proof, k)
                    assert proofs.verify_state(root, proofs.decode_state_proof(proof.encode()), k)


def test_root_independent_of_order_and_batching():
    rng = random.Random(4)
    items = list(
        dict(
            (rng.randbytes(rng.randint(1, 40)), rng.randbytes(rng.randint(0, 50))) for _ in range(2000)
        ).items()
    )
    one = MemoryStateTree()
    one.apply(1, dict(items))
    for trial in range(3):
        shuffled = items[:]
        rng.shuffle(shuffled)
        many, pos, version = MemoryStateTree(), 0, 0
        while pos < len(shuffled):
            n = rng.randint(1, 300)
            many.apply(version, shuffled[pos : pos + n])
            pos, version = pos + n, version + 1
        assert many.root == one.root, trial
    assert one.root == reference_root(dict(items))


def test_chunked_genesis_at_one_height_equals_one_batch(tmp_path):
    items = sorted((i.to_bytes(4, "big"), bytes([i % 7])) for i in range(3000))
    with Store(tmp_path / "a", sync=False) as a, Store(tmp_path / "b", sync=False) as b:
        tree = StateTree()
        with a.write() as w:
            for start in range(0, len(items), 256):
                root_chunked = tree.apply(w, 0, items[start : start + 256])
        with b.write() as w:
            root_once = tree.apply(w, 0, items)
        assert root_chunked == root_once == reference_root(dict(items))
        with a.read() as r1, b.read() as r2:  # superseded same-height nodes were dropped
            assert dict(r1.items("smt_nodes")) == dict(r2.items("smt_nodes"))
            assert r1.get("smt_stale", 0) is None


def test_pruning_keeps_the_last_k_heights(tmp_path):
    keep, rng = 3, random.Random(9)
    tree = StateTree(keep_heights=keep)
    mem = MemoryStateTree()
    state, roots = {}, []
    with Store(tmp_path, sync=False) as store:
        for height in range(12):
            batch = {
                bytes([rng.randrange(40)]): rng.choice([None, b"x", b"yy", bytes([height])])
                for _ in range(15)
            }
            with store.write() as w:
                roots.append(tree.apply(w, height, batch))
                tree.prune(w, height)
            mem.apply(height, batch)
            state = {k: v for k, v in {**state, **batch}.items() if v is not None}
        with store.read() as r:
            for height in range(12 - keep):
                with pytest.raises(StatePruned):
                    tree.prove(r, b"\x01", height)
            for height in range(12 - keep, 12):
                for k in map(bytes, ([i] for i in range(40))):
                    assert proofs.verify_state(roots[height], tree.prove(r, k, height), k)
            assert StateTree.oldest_height(r) == 12 - keep
            with pytest.raises(StateUnavailable):
                tree.prove(r, b"\x01", 12)
            # Pruned down to the retained versions: the newest tree plus what the
            # K-1 older versions still reach, not every node ever written.
            stored = len(list(r.items("smt_nodes")))
            assert stored >= len(mem.nodes)
            assert stored <= len(mem.nodes) + sum(len(p) // 10 for _, p in r.items("smt_stale"))


def test_damaged_node_is_refused(tmp_path):
    with Store(tmp_path, sync=False) as store:
        tree = StateTree()
        with store.write() as w:
            tree.apply(w, 0, {bytes([i]): b"v" for i in range(50)})
        with store.write() as w:
            key, node = next(iter(w.items("smt_nodes")))
            w.put("smt_nodes", key, node[:-1] + bytes([node[-1] ^ 1]))
        # A fresh tree (a restart: nothing cached) reads the damaged node from LMDB.
        with pytest.raises(RuntimeError, match="state tree"), store.write() as w:
            StateTree().apply(w, 1, {bytes([i]): b"w" for i in range(50)})


def apply_to_both(
    first: tuple[Store, StateTree], second: tuple[Store, StateTree], height: int, batch
) -> bytes:
    """``batch`` applied at ``height`` by each tree in its own store; the two roots agree."""
    roots = []
    for store, tree in (first, second):
        with store.write() as w:
            roots.append(tree.apply(w, height, batch))
    assert roots[0] == roots[1]
    return roots[0]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(batch_st, st.sampled_from(["commit", "abort", "restart"])), min_size=1, max_size=10),
    st.integers(min_value=1, max_value=5) | st.just(20) | st.just(256),
    st.sampled_from([256, 0.002]),  # 0.002 MiB: the budget holds a chunk or two
)
def test_node_cache_never_changes_a_result(tmp_path_factory, steps, cache_depth, cache_mb):
    """Cached tree == uncached tree == reference, across aborted blocks, restarts and budgets."""
    a = Store(tmp_path_factory.mktemp("cached"), sync=False)
    b = Store(tmp_path_factory.mktemp("plain"), sync=False)
    cached = StateTree(cache_depth=cache_depth, cache_mb=cache_mb)
    plain, state, height = StateTree(cache_depth=0), {}, 0
    with a, b:
        for batch, how in steps:
            if how == "abort":
                # Computed at this height with other contents, never committed: the
                # same node keys as the real block's, other nodes behind them.
                with pytest.raises(KeyError), a.write() as w:
                    cached.apply(w, height, {**batch, b"aborted": b"x"})
                    raise KeyError
            elif how == "restart":
                cached = StateTree(cache_depth=cache_depth, cache_mb=cache_mb)
            root = apply_to_both((a, cached), (b, plain), height, batch)
            state = {k: v for k, v in {**state, **batch}.items() if v is not None}
            assert root == reference_root(state)
            assert cached.cache_bytes <= cache_mb * 2**20
            height += 1
        with a.read() as r1, b.read() as r2:
            assert dict(r1.items("smt_nodes")) == dict(r2.items("smt_nodes"))


def test_workers_never_change_a_result(tmp_path):
    """Batches above the parallel threshold (1,024 writes), built on 1 and on 3 threads:
    the same roots, the same records and the same stale lists, height after height."""
    rng = random.Random(7)
    one, three = StateTree(workers=1), StateTree(workers=3)
    state: dict[bytes, bytes] = {}
    with Store(tmp_path / "one", sync=False) as a, Store(tmp_path / "three", sync=False) as b:
        for height in range(6):
            keys = [rng.randrange(6000).to_bytes(4, "big") for _ in range(2500)]
            # A third deletions from the second block on: leaves move up, subtrees empty.
            batch = {k: None if height and rng.random() < 0.33 else bytes([rng.randrange(256)]) for k in keys}
            root = apply_to_both((a, one), (b, three), height, batch)
            state = {k: v for k, v in {**state, **batch}.items() if v is not None}
            assert root == reference_root(state)
        with a.read() as r1, b.read() as r2:
            assert dict(r1.items("smt_nodes")) == dict(r2.items("smt_nodes"))
            assert dict(r1.items("smt_stale")) == dict(r2.items("smt_stale"))
            assert len(dict(r1.items("smt_stale"))) == 5
    with pytest.raises(ValueError, match="workers"):
        StateTree(workers=0)


def test_cache_is_warmed_by_build_and_restart_and_stays_in_budget(tmp_path):
    items = [(i.to_bytes(4, "big"), bytes([i % 5])) for i in range(5000)]
    with Store(tmp_path, sync=False) as store:
        tree = StateTree()
        with store.write() as w:
            tree.build(w, 0, [items])
        full = tree.cache_bytes
        want = reference_root({**dict(items), b"k": b"v"})
        assert full > 0 and len(tree._cache) > 300  # every chunk of 5,000 keys is above depth 20
        for mb, depth in ((0.05, 20), (256, 8)):
            small = StateTree(cache_depth=depth, cache_mb=mb)
            with store.read() as r:
                small.warm(r, 0)
            assert 0 < small.cache_bytes <= min(mb * 2**20, full)
            with pytest.raises(KeyError), store.write() as w:  # a block, aborted
                assert small.apply(w, 1, {b"k": b"v"}) == want
                raise KeyError
            assert small.cache_bytes <= mb * 2**20
        # The cache describes the last root; a restart refills it from storage.
        again = StateTree()
        with store.write() as w:
            assert again.apply(w, 1, {b"k": b"v"}) == want
        assert again.cache_bytes > 0.9 * full


@pytest.mark.parametrize("n", [0, 1, 2, 3, 100, 3000])
def test_bulk_build_equals_apply(tmp_path, n):
    items = [(i.to_bytes(4, "big"), bytes([i % 7]) * (i % 3)) for i in range(n)]
    with Store(tmp_path / "a", sync=False) as a, Store(tmp_path / "b", sync=False) as b:
        tree = StateTree()
        with a.write() as w:
            built = tree.build(w, 0, (items[i : i + 64] for i in range(0, n, 64)))
        with b.write() as w:
            applied = StateTree().apply(w, 0, items)
        assert built == applied == reference_root(dict(items))
        with a.read() as r1, b.read() as r2:
            assert list(r1.items("smt_nodes")) == list(r2.items("smt_nodes"))
            assert r1.get("smt_roots", 0) == r2.get("smt_roots", 0)
        # Later blocks continue from the built tree like from an applied one.
        batch = {items[j][0]: None for j in range(0, n, 3)} | {b"new": b"v"}
        with a.write() as w1, b.write() as w2:
            assert tree.apply(w1, 1, batch) == StateTree().apply(w2, 1, batch)
        with a.write() as w, pytest.raises(StorageError, match="empty"):
            tree.build(w, 0, [])


def test_bulk_build_refuses_duplicate_keys(tmp_path):
    with Store(tmp_path, sync=False) as store, store.write() as w, pytest.raises(ValueError):
        StateTree().build(w, 0, [[(b"a", b"1")], [(b"a", b"2")]])


# --- through the chain -------------------------------------------------------------


def test_chain_historic_reads_and_proofs_against_old_headers(tmp_path):
    with Chain(tmp_path / "c", small_config(), NODE) as c:
        heights = []
        for n in range(4):
            sub = c.submit([transfer(ALICE, n, BOB, 10)])
            assert sub.wait(10)[0].code == Reject.OK
            heights.append(int(sub.heights[0]))
        bal = accounts.balance_key(BOB.public_key)
        for i, h in enumerate(heights):
            header = c.header(h)
            assert int.from_bytes(c.state_get(bal, h), "little") == 10 * (i + 1)
            proof = c.prove_state(bal, h)
            assert proofs.verify_state(header.state_root, proof, bal)
            assert not proofs.verify_state(c.head().state_root, proof, bal) or h == c.height
        assert c.state_get(bal, 0) is None  # Bob had no balance at genesis
        absent = c.prove_state(accounts.balance_key(KeyPair.from_seed(b"z" * 32).public_key))
        assert absent.value is None and proofs.verify_state(c.head().state_root, absent)
        tx_proof = c.prove_tx(sub.tx_ids[0])
        assert proofs.verify_tx(c.header(tx_proof.height).encode(), tx_proof, sub.tx_ids[0])
        assert c.prove_tx(bytes(32)) is None
    assert verify_chain(tmp_path / "c").ok


def test_chain_pruning_and_interim_commitment(tmp_path):
    with Chain(tmp_path / "p", small_config(), NODE, state_keep_heights=2) as c:
        for n in range(5):
            c.submit([transfer(ALICE, n, BOB, 1)]).wait(10)
        with pytest.raises(StatePruned):
            c.state_get(accounts.balance_key(BOB.public_key), 0)
        assert c.prove_state(accounts.balance_key(BOB.public_key), c.height).value is not None
    assert verify_chain(tmp_path / "p").ok
    interim = small_config(state_commitment="interim")
    assert interim.genesis_bytes() != small_config().genesis_bytes()  # a different chain
    assert ChainConfig.from_toml(interim.to_toml()).state_commitment == "interim"
    with Chain(tmp_path / "i", interim, NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
        with pytest.raises(StateUnavailable):
            c.prove_state(accounts.balance_key(BOB.public_key))
        with pytest.raises(StateUnavailable):
            c.state_get(accounts.balance_key(BOB.public_key), 0)
        smt_root = Chain(tmp_path / "s", small_config(), NODE, start=False)
        assert smt_root.head().state_root != c.header(0).state_root
        smt_root.close()
    assert verify_chain(tmp_path / "i").ok


def test_verify_catches_a_wrong_stored_tree_root(tmp_path):
    path = tmp_path / "v"
    with Chain(path, small_config(), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
    store = Store(path / "db")
    with store.write() as w:
        w.put("smt_roots", 1, (bytes(32), 1))
    store.close()
    report = verify_chain(path)
    assert any("state tree root" in p for p in report.problems)


def test_empty_genesis_has_the_empty_root(tmp_path):
    cfg = small_config(genesis_accounts=(GenesisAccount(NODE.public_key, (), 0),))
    with Chain(tmp_path / "e", cfg, NODE, start=False) as c:
        assert c.head().state_root == reference_root(
            {accounts.account_key(NODE.public_key): c.state_get(accounts.account_key(NODE.public_key))}
        )
    cfg0 = ChainConfig(chain_id=3)
    with Chain(tmp_path / "z", cfg0, NODE, start=False) as c:
        assert c.head().state_root == proofs.EMPTY_HASH


def test_cli_state_prove(tmp_path):
    import json

    from click.testing import CliRunner

    from tierchain.cli.main import main

    with Chain(tmp_path / "c", small_config(), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 7)]).wait(10)
    key = "0x" + accounts.balance_key(BOB.public_key).hex()
    res = CliRunner().invoke(main, ["state", "prove", str(tmp_path / "c"), key])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["verified"] and int.from_bytes(bytes.fromhex(out["value"]), "little") == 7
    proof = proofs.decode_state_proof(bytes.fromhex(out["proof"]))
    assert proofs.verify_state(bytes.fromhex(out["header"]), proof, bytes.fromhex(key[2:]))
    res = CliRunner().invoke(main, ["state", "prove", str(tmp_path / "c"), key, "--height", "0"])
    assert json.loads(res.output)["value"] is None


# --- the chunked record layout --------------------------------------------------------


def _chunk_records(r) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in r.items("smt_nodes") if v[0] == 3]


def test_every_damaged_chunk_byte_is_refused(tmp_path):
    """A flipped byte in a chunk is refused by the update and by proofs, except in a
    leaf's version (only its record's address: refused when that record is read)."""
    items = {i.to_bytes(2, "big"): b"v%d" % i for i in range(60)}
    with Store(tmp_path, sync=False) as store:
        with store.write() as w:
            root = StateTree().apply(w, 0, items)
        with store.read() as r:
            chunks = _chunk_records(r)
        assert len(chunks) > 1
        for key, raw in chunks[:3]:
            for i in range(len(raw)):
                with store.write() as w:
                    w.put("smt_nodes", key, raw[:i] + bytes([raw[i] ^ 0x20]) + raw[i + 1 :])
                refused_update = False
                try:
                    with store.write() as w:
                        StateTree().apply(w, 1, {k: b"w" for k in items})  # a restart: nothing cached
                        raise KeyError  # never commit
                except RuntimeError as exc:
                    refused_update = "state tree" in str(exc)
                except KeyError:
                    pass
                refused_proof = False
                with store.read() as r:
                    try:
                        for k in items:
                            assert proofs.verify_state(root, StateTree().prove(r, k, 0), k)
                    except StorageError:
                        refused_proof = True
                assert refused_proof, f"record {key.hex()} byte {i}"
                assert refused_update or (i - 1) % 73 >= 64 or raw[i - 1 - (i - 1) % 73] != 2, i
                with store.write() as w:
                    w.put("smt_nodes", key, raw)


def test_leaf_records_stay_put_when_leaves_move(tmp_path):
    """A leaf's record does not depend on its depth: neighbours coming and going
    rewrite chunks only, and historic reads still find every version."""
    tree, mem = StateTree(), MemoryStateTree()
    a, others = b"a", [bytes([i]) * 3 for i in range(40)]
    with Store(tmp_path, sync=False) as store:
        with store.write() as w:
            tree.apply(w, 0, {a: b"1"})
        mem.apply(0, {a: b"1"})
        with store.read() as r:
            (leaf0,) = [k for k, v in r.items("smt_nodes") if v[0] == 2]
        with store.write() as w:  # the leaf moves down
            tree.apply(w, 1, {k: b"x" for k in others})
        with store.write() as w:  # and back up
            root2 = tree.apply(w, 2, {k: None for k in others})
        assert root2 == reference_root({a: b"1"})
        with store.read() as r:
            assert r.get_raw("smt_nodes", leaf0) is not None
            for h in range(3):
                assert tree.get(r, a, h) == b"1"
            assert tree.get(r, others[0], 1) == b"x" and tree.get(r, others[0], 2) is None
            # The only records of height 2: the new root chunk (no leaf was rewritten).
            assert [k for k, _ in r.items("smt_nodes") if k[:8] == (2).to_bytes(8, "big")] == [
                (2).to_bytes(8, "big") + b"\x00\x00"
            ]
            stale = [k for h in (1, 2) for k in split_keys(r.get("smt_stale", h))]
            assert leaf0 not in stale
            assert sum(k[8:10] == b"\xff\xff" for k in stale) == len(others)  # their leaves, deleted
