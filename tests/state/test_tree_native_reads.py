"""The state tree's native chunk reads (``smt_apply`` given an LMDB transaction and the
overlay of uncommitted batches) and its natively kept records (``SmtRecords``)."""

from __future__ import annotations

import random

import pytest
import tierchain_native

from conftest import raised_on_another_thread
from tierchain.state.storage import Store
from tierchain.state.tree import MemoryStateTree, StateTree, TreeUpdate
from tierchain.wire.codec import CodecError


def _batch(rng: random.Random, keys: int, n: int) -> dict[bytes, bytes | None]:
    return {
        f"k{rng.randrange(keys)}".encode(): None
        if rng.random() < 0.2
        else rng.randbytes(rng.randrange(1, 40))
        for _ in range(n)
    }


def _apply(r, tree: StateTree, height: int, base, batch, overlay=(), native: bool = True):
    """One batch read natively (txn + overlay) or through the Python ``fetch``."""
    items = list(batch.items())
    txn, dbi = r.native("smt_nodes")
    if native:
        where = {"txn": txn, "dbi": dbi, "overlay": list(overlay)}
        fetch = None
    else:

        def fetch(keys):
            found = r.get_many_raw("smt_nodes", keys)
            pending = [o.get for o in overlay]
            return [
                found.get(k) or next((v for get in pending if (v := get(k)) is not None), None) for k in keys
            ]

        where = {}
    return tierchain_native.smt_apply(
        base[0], base[1], height, [k for k, _ in items], [v for _, v in items], fetch, None, **where
    )


@pytest.mark.parametrize("seed", range(3))
def test_native_reads_equal_python_fetch_and_reach_the_overlay(tmp_path, seed):
    """Batches prepared two ahead of the committed tree (their chunks partly in the
    overlay): native reads and the Python fetch give the same records, stale keys and
    roots as a memory tree; the overlay is read, and counted."""
    rng = random.Random(seed)
    mem = MemoryStateTree()
    with Store(tmp_path, sync=False) as store:
        with store.write() as w:
            StateTree(cache_depth=0).apply(w, 0, {f"k{i}".encode(): b"v" for i in range(400)})
            mem.apply(0, {f"k{i}".encode(): b"v" for i in range(400)})
        with store.read() as r:
            base = StateTree.base_at(r, 0)
        from_overlay = 0
        for height in range(1, 9, 2):
            first, second = _batch(rng, 500, 60), _batch(rng, 500, 60)
            with store.read() as r:
                a = _apply(r, StateTree(), height, base, first)
                a_py = _apply(r, StateTree(), height, base, first, native=False)
                b = _apply(r, StateTree(), height + 1, (a[0], a[1]), second, overlay=[a[2]])
                b_py = _apply(r, StateTree(), height + 1, (a[0], a[1]), second, overlay=[a[2]], native=False)
            for native, python in ((a, a_py), (b, b_py)):
                assert native[:2] == python[:2]
                assert native[2].items() == python[2].items()
                assert native[3:5] == python[3:5]
            assert a[0] == mem.apply(height, first) and b[0] == mem.apply(height + 1, second)
            assert b[5]["overlay"] > 0 and b[5]["read"] >= b[5]["overlay"] and a[5]["overlay"] == 0
            assert all(b[5][k] >= 0 for k in ("setup_s", "read_s", "finish_s", "total_s"))
            from_overlay += b[5]["overlay"]
            tree = StateTree(cache_depth=0)
            with store.write() as w:  # both committed, in order, as the chain's committer does
                for h, update in ((height, a), (height + 1, b)):
                    tree.write(w, TreeUpdate(h, *update))
            base = (b[0], b[1])
        assert from_overlay > 0


def test_smt_records_lookups_and_bounds(tmp_path):
    with Store(tmp_path, sync=False) as store, store.read() as r:
        empty = tierchain_native.smt_constants()[0]
        _, _, none, _, _, _ = _apply(r, StateTree(), 1, (empty, 0), {})
        assert len(none) == 0 and none.first_key() is None and none.bounds() == (0, 0, 0, 0)
        assert none.items() == []
        _, _, recs, _, _, stats = _apply(r, StateTree(), 1, (empty, 0), {b"a": b"1", b"b": b"22", b"c": None})
        items = recs.items()
        assert [k for k, _ in items] == sorted(k for k, _ in items) and len(recs) == len(items) == 3
        assert recs.first_key() == items[0][0]
        assert all(recs.get(k) == v for k, v in items) and recs.get(b"nope") is None
        lens = [len(k) for k, _ in items], [len(v) for _, v in items]
        assert recs.bounds() == (min(lens[0]), max(lens[0]), min(lens[1]), max(lens[1]))
        assert stats["read"] == 0  # an empty tree: nothing to read


def test_put_records_checks_the_tables_bounds(tmp_path):
    """Records go only to a table whose bounds they fit (tx_index keys are 32 bytes)."""
    with Store(tmp_path, sync=False) as store:
        empty = tierchain_native.smt_constants()[0]
        with store.read() as r:
            recs = _apply(r, StateTree(), 1, (empty, 0), {b"a": b"1", b"b": b"2"})[2]
        with pytest.raises(CodecError), store.write() as w:
            w.put_records("tx_index", recs)
        with store.write() as w:
            w.put_records("smt_nodes", recs, append=True)
        with store.read() as r:
            assert dict(r.items("smt_nodes")) == dict(recs.items())


def test_a_reader_is_named_once_and_used_on_its_own_thread(tmp_path):
    with Store(tmp_path, sync=False) as store:
        with store.write() as w:
            StateTree().apply(w, 0, {b"a": b"1", b"b": b"2"})
        with store.read() as r:
            base = StateTree.base_at(r, 0)
            txn, dbi = r.native("smt_nodes")
            args = (base[0], base[1], 1, [b"a"], [b"3"])
            with pytest.raises(ValueError, match="either fetch"):  # both
                tierchain_native.smt_apply(*args, list, txn=txn, dbi=dbi)
            with pytest.raises(ValueError, match="either fetch"):  # neither
                tierchain_native.smt_apply(*args, None)
            _, _, recs, _, _, _ = tierchain_native.smt_apply(*args, None, txn=txn, dbi=dbi)
            with pytest.raises(ValueError, match="either fetch"):  # an overlay needs txn
                tierchain_native.smt_apply(*args, list, overlay=[recs])
            with pytest.raises(TypeError):
                tierchain_native.smt_apply(*args, None, txn=txn, dbi=dbi, overlay=[b"not records"])
            failure = raised_on_another_thread(
                lambda: tierchain_native.smt_apply(*args, None, txn=txn, dbi=dbi)
            )
            assert failure is not None and "thread" in str(failure)
        with pytest.raises(tierchain_native.LmdbError, match="finished"):
            tierchain_native.smt_apply(*args, None, txn=txn, dbi=dbi)
