"""The state tree hashed with SM3 (``StateTree(hash="sm3")``, issue 19) against its definition.

Same tree as the BLAKE3 one (shape, records, versions), with every hash the national
suite's domain-separated SM3 under the same five contexts.
"""

from __future__ import annotations

import random

import pytest
import tierchain_native

from tierchain import proofs
from tierchain.crypto import sm
from tierchain.state.storage import Store
from tierchain.state.tree import StateTree
from tierchain.state.tree import cache_depth_default as CACHE_DEPTH

KEY, VALUE, LEAF, NODE, EMPTY = proofs.STATE_TREE


def sm3_root(state: dict[bytes, bytes]) -> bytes:
    """The SM3 tree's root from its definition: pure Python over ``sm.hash``, no tree code."""
    items = sorted((sm.hash(KEY, k), sm.hash(VALUE, v)) for k, v in state.items())

    def bit(h: bytes, i: int) -> int:
        return (h[i // 8] >> (7 - i % 8)) & 1  # most significant bit of byte 0 first

    def rec(items: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not items:
            return sm.hash(EMPTY, b"")
        if len(items) == 1:
            kh, vh = items[0]
            return sm.hash(LEAF, kh + vh)
        mid = next((i for i, (kh, _) in enumerate(items) if bit(kh, depth)), len(items))
        return sm.hash(NODE, rec(items[:mid], depth + 1) + rec(items[mid:], depth + 1))

    return rec(items, 0)


def updated(state: dict[bytes, bytes], batch: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    return {k: v for k, v in {**state, **batch}.items() if v is not None}


def random_batches(seed: int, n: int, keys: int, size: int) -> list[dict[bytes, bytes | None]]:
    rng = random.Random(seed)
    return [
        {
            b"k%d" % rng.randrange(keys): None if rng.random() < 0.3 else rng.randbytes(rng.randrange(40))
            for _ in range(rng.randrange(1, size))
        }
        for _ in range(n)
    ]


def test_constants_and_names():
    empty, contexts = tierchain_native.smt_constants("sm3")
    assert empty == sm.hash(EMPTY, b"") != proofs.EMPTY_HASH
    assert tuple(contexts) == proofs.STATE_TREE
    assert tierchain_native.smt_constants() == tierchain_native.smt_constants("blake3")
    assert tierchain_native.smt_constants()[0] == proofs.EMPTY_HASH
    assert tierchain_native.SmtCache(8, hash="sm3").hash == "sm3"
    assert tierchain_native.SmtCache(8).hash == "blake3"
    for bad in (
        lambda: tierchain_native.smt_constants("sha256"),
        lambda: tierchain_native.SmtCache(8, None, "SM3"),
        lambda: tierchain_native.SmtBuilder(0, "blake2"),
        lambda: tierchain_native.smt_apply(proofs.EMPTY_HASH, 0, 1, [], [], list, hash="md5"),
        lambda: StateTree(hash="sha256"),
    ):
        with pytest.raises(ValueError, match=r"known: blake3, sm3"):
            bad()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 40])
def test_sm3_root_is_the_definition(tmp_path, n):
    state = {b"key %d" % i: b"value %d" % (i * i) for i in range(n)}
    with Store(tmp_path, sync=False) as store:
        tree = StateTree(hash="sm3")
        with store.write() as w:
            root = tree.apply(w, 0, state)
        assert root == sm3_root(state)
        if n:
            assert root != proofs.EMPTY_HASH
        # Overwrites, deletions and new keys; then everything deleted.
        batch = {k: (None if i % 2 else b"new") for i, k in enumerate(state)} | {b"extra": b"x"}
        with store.write() as w:
            assert tree.apply(w, 1, batch) == sm3_root(updated(state, batch))
        with store.write() as w:
            gone = tree.apply(w, 2, {k: None for k in updated(state, batch)})
        assert gone == sm3_root({}) == tierchain_native.smt_constants("sm3")[0]
        with store.write() as w:  # and from the empty tree again
            assert tree.apply(w, 3, state) == root


def test_sm3_and_blake3_trees_of_the_same_writes(tmp_path):
    """Two trees, one per hash, side by side in one process: each is its own definition."""
    blake, sm3, state = StateTree(), StateTree(hash="sm3"), {}
    with Store(tmp_path / "b", sync=False) as a, Store(tmp_path / "s", sync=False) as b:
        for height, batch in enumerate(random_batches(19, 12, 60, 25)):
            state = updated(state, batch)
            with a.write() as w1, b.write() as w2:
                rb, rs = blake.apply(w1, height, batch), sm3.apply(w2, height, batch)
            assert rs == sm3_root(state)
            assert rb != rs
            if state:
                # The BLAKE3 tree is unchanged by the option: proofs still verify against it.
                with a.read() as r:
                    k = next(iter(state))
                    assert proofs.verify_state(rb, blake.prove(r, k, height), k)


@pytest.mark.parametrize("n", [0, 1, 2, 17, 2000])
def test_sm3_bulk_build_equals_apply(tmp_path, n):
    items = [(i.to_bytes(4, "big"), bytes([i % 7]) * (i % 50)) for i in range(n)]
    with Store(tmp_path / "a", sync=False) as a, Store(tmp_path / "b", sync=False) as b:
        built_tree = StateTree(hash="sm3")
        with a.write() as w:
            built = built_tree.build(w, 0, (items[i : i + 64] for i in range(0, n, 64)))
        with b.write() as w:
            applied = StateTree(hash="sm3").apply(w, 0, items)
        assert built == applied
        if n <= 17:
            assert built == sm3_root(dict(items))
        with a.read() as r1, b.read() as r2:
            assert list(r1.items("smt_nodes")) == list(r2.items("smt_nodes"))
            assert r1.get("smt_roots", 0) == r2.get("smt_roots", 0)
        # Later blocks continue from the built tree (its cache warmed by build) like from an applied one.
        batch = {items[j][0]: None for j in range(0, n, 3)} | {b"new": b"v"}
        with a.write() as w1, b.write() as w2:
            assert built_tree.apply(w1, 1, batch) == StateTree(hash="sm3", cache_depth=0).apply(w2, 1, batch)


def test_sm3_cache_on_and_off_agree(tmp_path):
    cached, plain = StateTree(hash="sm3"), StateTree(hash="sm3", cache_depth=0)
    small = StateTree(hash="sm3", cache_depth=8, cache_mb=0.002)  # a chunk or two
    state = {}
    with (
        Store(tmp_path / "a", sync=False) as a,
        Store(tmp_path / "b", sync=False) as b,
        Store(tmp_path / "c", sync=False) as c,
    ):
        batches = [{b"k%d" % i: b"v%d" % i for i in range(1500)}, *random_batches(7, 15, 1800, 300)]
        for height, batch in enumerate(batches):
            if height == 5:
                # An aborted block, then a restart: the cache is refilled from storage.
                with pytest.raises(KeyError), a.write() as w:
                    cached.apply(w, height, {**batch, b"aborted": b"x"})
                    raise KeyError
                cached = StateTree(hash="sm3")
            with a.write() as w1, b.write() as w2, c.write() as w3:
                root = cached.apply(w1, height, batch)
                assert plain.apply(w2, height, batch) == root
                assert small.apply(w3, height, batch) == root
            state = updated(state, batch)
            assert cached.cache_bytes > 0
        assert root == sm3_root(state)
        with a.read() as r1, b.read() as r2:
            assert dict(r1.items("smt_nodes")) == dict(r2.items("smt_nodes"))


def test_smt_apply_refuses_a_cache_of_the_other_hash():
    nodes: dict[bytes, bytes] = {}

    def fetch(keys: list[bytes]) -> list[bytes | None]:
        return [nodes.get(k) for k in keys]

    empty = tierchain_native.smt_constants("sm3")[0]
    with pytest.raises(ValueError, match="cache"):
        tierchain_native.smt_apply(
            empty, 0, 1, [b"a"], [b"1"], fetch, tierchain_native.SmtCache(8), hash="sm3"
        )
    with pytest.raises(ValueError, match="cache"):
        tierchain_native.smt_apply(
            proofs.EMPTY_HASH, 0, 1, [b"a"], [b"1"], fetch, tierchain_native.SmtCache(8, hash="sm3")
        )
    cache = tierchain_native.SmtCache(CACHE_DEPTH, hash="sm3")
    root, version, _, _, _, _ = tierchain_native.smt_apply(
        empty, 0, 1, [b"a", b"b"], [b"1", b"2"], fetch, cache, hash="sm3"
    )
    assert root == sm3_root({b"a": b"1", b"b": b"2"}) and version == 1 and len(cache) == 1
