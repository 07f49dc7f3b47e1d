"""The tx index through its inbox: every committed id is found where its block put it,
whether it still sits in the inbox or has moved, and records move exactly on schedule."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tierchain.state import storage, tx_index
from tierchain.state.storage import StorageError, Store


def _ids(rng: random.Random, n: int, first: int | None = None) -> np.ndarray:
    rows = np.frombuffer(rng.randbytes(32 * n), dtype=np.uint8).reshape(n, 32).copy()
    if first is not None:  # ids that share a partition
        rows[:, 0] = first
    return rows


def test_every_id_is_found_before_and_after_it_moves(tmp_path):
    rng = random.Random(5)
    store = Store(tmp_path / "db", sync=False)
    model: dict[bytes, tuple[int, int]] = {}
    heights = tx_index.partitions + 40  # every partition moves at least once, some twice
    moved = 0
    with store:
        for height in range(1, heights + 1):
            n = rng.choice([0, 1, 7, 40])
            rows = _ids(rng, n, first=3 if height % 5 == 0 else None)
            with store.write() as w:
                moved += tx_index.write(w, height, tx_index.block_pairs(rows, height))
            for pos in range(n):
                model[rows[pos].tobytes()] = (height, pos)
            if height % 37 == 0 or height == heights:
                with store.read() as r:
                    ids = list(model)
                    unknown = [bytes([i]) * 32 for i in range(4)] + [b"short"]
                    assert tx_index.locate(r, ids + unknown + ids[:3]) == (
                        [model[t] for t in ids] + [None] * 5 + [model[t] for t in ids[:3]]
                    )
                    for t in ids[:: max(1, len(ids) // 50)]:
                        h, pos = model[t]
                        assert tx_index.position_at(r, t, h) == pos
                        assert tx_index.position_at(r, t, h + 1) is None
        with store.read() as r:
            # An id is in tx_index once a height at or after its block's moved its partition.
            def has_moved(t: bytes) -> bool:
                h = model[t][0]
                return any(k % tx_index.partitions == t[0] for k in range(h, heights + 1))

            indexed = sum(has_moved(t) for t in model)
            assert r.entries("tx_index") == indexed == moved
            assert r.entries("tx_inbox") == len(model) - indexed
            assert indexed and len(model) - indexed  # both places are exercised


def test_ids_indexed_before_the_inbox_are_still_found(tmp_path):
    """A database from before the inbox has its ids in tx_index only."""
    rows = _ids(random.Random(1), 10)
    loc = np.empty(10, dtype=[("height", "<u8"), ("pos", "<u4")])
    loc["height"], loc["pos"] = 4, np.arange(10)
    with Store(tmp_path / "db", sync=False) as store:
        with store.write() as w:
            w.put_packed("tx_index", rows.tobytes(), loc.tobytes(), sort=True)
        with store.read() as r:
            assert tx_index.locate(r, [rows[i].tobytes() for i in range(10)]) == [(4, i) for i in range(10)]
            assert tx_index.position_at(r, rows[7].tobytes(), 4) == 7


def test_take_packed_removes_exactly_the_prefix(tmp_path):
    rng = random.Random(2)
    keys = sorted(bytes([p]) + rng.randbytes(40) for p in (1, 2, 2, 2, 3) for _ in range(20))
    values = [rng.randbytes(4) for _ in keys]
    with Store(tmp_path / "db", sync=False) as store:
        with store.write() as w:
            w.put_packed("tx_inbox", b"".join(keys), b"".join(values))
        with store.write() as w:
            got_k, got_v = w.take_packed("tx_inbox", b"\x02", limit=60)
        want = [(k, v) for k, v in zip(keys, values, strict=True) if k[0] == 2]
        assert got_k == b"".join(k for k, _ in want) and got_v == b"".join(v for _, v in want)
        with store.read() as r:
            left = [k for k, _ in r.items("tx_inbox")]
        assert left == [k for k in keys if k[0] != 2]
        with store.write() as w:
            assert w.take_packed("tx_inbox", b"\x09", limit=1) == (b"", b"")


@pytest.mark.parametrize(
    ("prefix", "limit", "message"),
    [(b"\x01", 5, "more than 5"), (b"", 100, "prefix of 0 bytes"), (b"\x01" * 42, 100, "prefix of 42")],
)
def test_take_packed_refuses_and_removes_nothing(tmp_path, prefix, limit, message):
    keys = [bytes([1]) + i.to_bytes(40, "big") for i in range(6)]
    with Store(tmp_path / "db", sync=False) as store:
        with store.write() as w:
            w.put_packed("tx_inbox", b"".join(keys), b"\0" * 24)
        with store.write() as w:
            with pytest.raises(StorageError, match=message):
                w.take_packed("tx_inbox", prefix, limit=limit)
        with store.read() as r:
            assert r.entries("tx_inbox") == 6


def test_take_packed_refuses_records_of_another_size(tmp_path):
    """A record under the prefix whose size is not the table's: refused, nothing removed."""
    with Store(tmp_path / "db", sync=False) as store:
        with store.write() as w:
            w.put_packed("tx_inbox", b"\x01" * 41, b"\0" * 4)
            w._txn.put(store._dbs["tx_inbox"], b"\x01" * 42, b"\0" * 4)  # past the codec
        with store.write() as w, pytest.raises(StorageError, match="not 41 \\+ 4"):
            w.take_packed("tx_inbox", b"\x01", limit=10)
        with store.read() as r:
            assert r.entries("tx_inbox") == 2


def test_a_database_from_before_the_inbox_opens_read_only(tmp_path, monkeypatch):
    """Read-only, a database without tx_inbox (made before it) opens; lookups use tx_index."""
    rows = _ids(random.Random(3), 4)
    old_tables = {n: t for n, t in storage.TABLES.items() if n != "tx_inbox"}
    with monkeypatch.context() as m:
        m.setattr(storage, "TABLES", old_tables)
        with Store(tmp_path / "db", sync=False) as store, store.write() as w:
            assert "tx_inbox" not in store._dbs
            w.put("tx_index", rows[0].tobytes(), (9, 2))
    with Store(tmp_path / "db", readonly=True) as store, store.read() as r:
        assert "tx_inbox" not in store._dbs
        assert tx_index.locate(r, [rows[0].tobytes(), rows[1].tobytes()]) == [(9, 2), None]
        assert tx_index.position_at(r, rows[1].tobytes(), 9) is None
    with Store(tmp_path / "db", sync=False) as store, store.read() as r:  # a writer creates it
        assert r.entries("tx_inbox") == 0


def test_scan_tails_finds_keys_by_their_end_under_a_prefix(tmp_path):
    records = [(1, 5, 9), (1, 6, 8), (2, 5, 7)]  # partition, height, the id's repeated byte
    keys = [bytes([p]) + h.to_bytes(8, "big") + bytes([t]) * 32 for p, h, t in records]
    with Store(tmp_path / "db", sync=False) as store:
        with store.write() as w:
            w.put_packed("tx_inbox", b"".join(keys), b"".join(i.to_bytes(4, "little") for i in range(3)))
        with store.read() as r:
            tails = [bytes([8]) * 32, bytes([7]) * 32, bytes([9]) * 32, bytes([8]) * 32, b"\x08" * 3]
            assert r.scan_tails("tx_inbox", b"\x01", tails) == [
                ((6).to_bytes(8, "big"), (1,)),
                None,  # under another prefix
                ((5).to_bytes(8, "big"), (0,)),
                ((6).to_bytes(8, "big"), (1,)),
                ((6).to_bytes(8, "big") + b"\x08" * 29, (1,)),  # a shorter tail: a longer middle
            ]
            assert r.scan_tails("tx_inbox", b"\x03", tails[:2]) == [None, None]
            assert r.scan_tails("tx_inbox", b"\x01", []) == []


def test_other_reads_of_a_table_the_database_predates_are_named(tmp_path, monkeypatch):
    old_tables = {n: t for n, t in storage.TABLES.items() if n != "tx_inbox"}
    with monkeypatch.context() as m:
        m.setattr(storage, "TABLES", old_tables)
        Store(tmp_path / "db", sync=False).close()
    with Store(tmp_path / "db", readonly=True) as store, store.read() as r:
        assert list(r.items("tx_inbox")) == []
        with pytest.raises(StorageError, match="'tx_inbox' is not in this database yet"):
            r.entries("tx_inbox")
        with pytest.raises(KeyError):
            r.get("no_such_table", b"k")
