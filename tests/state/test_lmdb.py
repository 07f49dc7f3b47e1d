"""The native LMDB binding (tierchain_native.LmdbEnv) and the Store built on it.

A model (a dict) is the reference for gets, batch gets, ranges and deletes; the
file it writes is read back with py-lmdb, an independent LMDB binding, so the
records are plain LMDB records. Misuse is a named error, never a crash.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tierchain_native import LmdbEnv, LmdbError, LmdbKeyExists, LmdbNotFound

from conftest import raised_on_another_thread
from tierchain.state.storage import NotInitialized, StorageError, Store

keys = st.binary(min_size=1, max_size=40)


def open_env(path, **kw):
    args = {"map_size": 1 << 28, "max_dbs": 4, "sync": False, "readonly": False, "max_readers": 16} | kw
    return LmdbEnv(str(path), **args)


def filled(path, items: list[tuple[bytes, bytes]]):
    """(env, db): a new environment whose table "t" holds ``items`` (ascending), committed."""
    env = open_env(path)
    db = env.open_db("t", True)
    w = env.begin(True)
    w.put_many(db, items, True)
    w.commit()
    return env, db


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(keys, st.binary(max_size=300)), max_size=60),
    st.lists(keys, max_size=20),
    st.lists(keys, max_size=30),
    st.integers(1, 7),
)
def test_gets_ranges_and_deletes_match_a_model(tmp_path_factory, puts, deletes, probes, page):
    env = open_env(tmp_path_factory.mktemp("env"))
    try:
        db = env.open_db("t", True)
        model: dict[bytes, bytes] = {}
        w = env.begin(True)
        w.put_many(db, puts[: len(puts) // 2], False)
        for k, v in puts[len(puts) // 2 :]:
            w.put(db, k, v)
        model.update(puts)
        for k in deletes:
            assert w.delete(db, k) == (k in model)
            model.pop(k, None)
        # Reads inside the write transaction see its writes.
        assert w.get_many(db, list(model)) == model
        w.commit()
        r = env.begin(False)
        try:
            assert r.entries(db) == len(model)
            for k in probes:
                assert r.get(db, k) == model.get(k)
            assert r.get_many(db, probes) == {k: model[k] for k in probes if k in model}
            assert r.last(db) == (max(model.items()) if model else None)
            # Paging by "least key greater than the last" walks every record once, in order.
            seen, after = [], None
            while page_items := r.range(db, after, page):
                seen += page_items
                after = page_items[-1][0] + b"\x00"
            assert seen == sorted(model.items())
            start = probes[0] if probes else b"\x80"
            assert r.range(db, start, 1000) == sorted((k, v) for k, v in model.items() if k >= start)
        finally:
            r.abort()
    finally:
        env.close()


def test_records_are_plain_lmdb_read_back_by_py_lmdb(tmp_path):
    items = sorted((i.to_bytes(4, "big"), bytes([i % 251]) * (i % 700)) for i in range(2000))
    env, _ = filled(tmp_path / "db", items)
    # While it is open, py-lmdb (another process) is refused: lock file version 2 vs 1
    # (docs/embedding.md says so).
    probe = f"import lmdb; lmdb.open({str(tmp_path / 'db')!r}, max_dbs=4)"
    held = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert held.returncode != 0 and "VersionMismatchError" in held.stderr
    env.close()
    other = lmdb.open(str(tmp_path / "db"), max_dbs=4)
    with other.begin(db=other.open_db(b"t")) as txn:
        assert list(txn.cursor()) == items
    other.close()


def test_an_aborted_write_leaves_nothing(tmp_path):
    env = open_env(tmp_path)
    db = env.open_db("t", True)
    w = env.begin(True)
    w.put(db, b"k", b"v")
    w.abort()
    w.abort()  # idempotent
    r = env.begin(False)
    assert r.get(db, b"k") is None
    r.abort()
    env.close()


def test_misuse_is_a_named_error(tmp_path):
    env = open_env(tmp_path / "db")
    db = env.open_db("t", True)
    w = env.begin(True)
    w.put_many(db, [(b"b", b"1"), (b"c", b"2")], True)
    with pytest.raises(LmdbKeyExists):
        w.put_many(db, [(b"a", b"0")], True)  # append below the last key
    with pytest.raises(TypeError):
        w.put_many(db, [(b"d", "not bytes")], False)
    with pytest.raises(TypeError):
        w.get_many(db, ["not bytes"])
    w.commit()
    with pytest.raises(LmdbError, match="finished"):
        w.get(db, b"b")
    r = env.begin(False)
    with pytest.raises(LmdbError, match="read-only"):
        r.put(db, b"x", b"y")
    with pytest.raises(LmdbError, match="transactions are still open"):
        env.close()
    r.abort()
    env.close()
    env.close()  # idempotent
    with pytest.raises(LmdbError, match="closed"):
        env.begin(False)
    ro = open_env(tmp_path / "db", readonly=True)
    with pytest.raises(LmdbNotFound):
        ro.open_db("missing", False)
    assert ro.open_db("t", False) == db
    ro.close()


def test_readers_on_many_threads_and_one_writer(tmp_path):
    env, db = filled(tmp_path, [(i.to_bytes(4, "big"), i.to_bytes(8, "little")) for i in range(1000)])
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                r = env.begin(False)
                got = r.get_many(db, [i.to_bytes(4, "big") for i in range(0, 1000, 7)])
                r.abort()
                assert all(int.from_bytes(v, "little") == int.from_bytes(k, "big") for k, v in got.items())
                assert len(got) == len(range(0, 1000, 7))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        w = env.begin(True)
        w.put(db, b"\xff" + bytes([i]), b"x")
        w.commit()
    for t in threads:
        t.join()
    assert not errors
    env.close()


def test_store_errors_are_storage_errors(tmp_path):
    with pytest.raises(NotInitialized):
        Store(tmp_path / "never", readonly=True)
    store = Store(tmp_path / "db", sync=False)
    with store.write() as w:
        w.put_many_raw("smt_nodes", [(b"\x05" * 10, bytes(50))], append=True)
    with pytest.raises(StorageError, match="out of order"), store.write() as w:
        w.put_many_raw("smt_nodes", [(b"\x04" * 10, bytes(50))], append=True)
    with pytest.raises(RuntimeError, match="body"), store.write() as w:
        w.put("meta", "k", b"v")
        raise RuntimeError("body")
    with store.read() as r:  # neither failed transaction left anything behind
        assert r.get("meta", "k") is None
        assert [k for k, _ in r.items("smt_nodes")] == [b"\x05" * 10]
    store.close()


def test_a_second_write_transaction_on_one_thread_is_an_error_not_a_deadlock(tmp_path):
    env = open_env(tmp_path)
    w = env.begin(True)
    with pytest.raises(LmdbError, match="already has a write transaction"):
        env.begin(True)
    with pytest.raises(LmdbError, match="already has a write transaction"):
        env.open_db("t", True)  # needs a write transaction of its own
    w.abort()
    env.begin(True).commit()  # the writer lock was released
    env.close()


def test_a_transaction_is_used_only_by_its_thread_but_abandoned_anywhere(tmp_path):
    env, db = filled(tmp_path, [(b"k", b"v")])
    r = env.begin(False)
    failure = raised_on_another_thread(lambda: r.get(db, b"k"))
    assert isinstance(failure, LmdbError) and "thread that began it" in str(failure)
    # A read transaction left open in a generator that another thread finalizes
    # is aborted there: its reader slot and the open-transaction count come back.
    store = Store(tmp_path / "store", sync=False)
    with store.write() as wt:
        for i in range(300):
            wt.put("meta", f"k{i:03}", b"v")

    def pages():
        with store.read() as rt:
            yield from rt.items("meta")

    gen = pages()
    holder = threading.Thread(target=next, args=(gen,))
    holder.start()
    holder.join()
    del gen  # finalized on this thread
    r.abort()
    store.close()  # refused if any transaction had leaked
    env.close()


def test_batch_reads_copy_values_before_running_key_hashes(tmp_path):
    env = open_env(tmp_path)
    db = env.open_db("t", True)
    w = env.begin(True)
    items = [(bytes([c]) * 4, bytes([c]) * 100) for c in b"ABCDEFGH"]
    w.put_many(db, items, True)

    class Meddler(bytes):
        def __hash__(self) -> int:  # runs while the result dict is filled
            w.delete(db, b"AAAA")
            w.put(db, b"AAAB", b"x" * 3000)
            return bytes.__hash__(self)

    got = w.get_many(db, [Meddler(k) for k, _ in items])
    assert sorted((bytes(k), v) for k, v in got.items()) == items
    w.abort()
    env.close()
