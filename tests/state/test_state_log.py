"""Write-back of the flat state table (tierchain.state.log): reads see logged blocks,
the table is written every K blocks, and a crash between flushes loses nothing."""

from __future__ import annotations

import lmdb
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ALICE, BOB, CAROL, NODE, applied_write_sets, small_config, transfer
from tierchain.apps import accounts
from tierchain.config import ConfigError
from tierchain.engine.chain import Chain, ChainError
from tierchain.engine.execute import nonce_key
from tierchain.engine.verify import verify_chain
from tierchain.state import log
from tierchain.state.storage import Store

keys = st.binary(min_size=1, max_size=3)
write_sets = st.dictionaries(keys, st.none() | st.binary(max_size=2), max_size=8)


@given(
    stored=st.dictionaries(keys, st.binary(min_size=1, max_size=2), max_size=12),
    overlays=st.lists(write_sets, max_size=4),
    prefix=st.binary(max_size=1),
    after=st.binary(max_size=2),
    limit=st.integers(1, 6),
)
def test_scan_equals_the_merged_state(stored, overlays, prefix, after, limit):
    model = applied_write_sets(stored, overlays)
    want = sorted((k, v) for k, v in model.items() if k.startswith(prefix) and k > after)[:limit]
    start = max(prefix, after + b"\x00") if after else prefix
    table = iter(sorted((k, v) for k, v in stored.items() if k >= start))
    assert log.scan(table, overlays, prefix, after, limit) == want
    for k in list(stored) + [k for w in overlays for k in w]:
        assert log.lookup(overlays, k, stored.get) == model.get(k)


def test_write_sets_round_trip_and_damage_is_named():
    writes = {b"a": b"1", b"b": None, b"\x00n": b""}
    assert log.decode(log.encode(writes)) == writes
    for bad in ([[b"a", True]], [[b"a", b"1"], [b"a", b"2"]], [["a", b"1"]]):
        with pytest.raises(ValueError, match="not a write set"):
            log.decode(msgpack.packb(bad))


def _table(chain_dir, key: bytes) -> bytes | None:
    with Store(chain_dir / "db", readonly=True) as store, store.read() as r:
        return r.get("state", key)


def test_the_table_is_written_every_k_blocks_and_reads_see_the_log(chain_dir):
    cfg = small_config(state_flush_blocks=4)
    bob = accounts.balance_key(BOB.public_key)
    with Chain(chain_dir, cfg, NODE) as c:
        for n in range(6):  # one block each
            c.submit([transfer(ALICE, n, BOB, 10)]).wait(10)
            assert c.balance(BOB.public_key) == 10 * (n + 1)
            assert c.nonce(ALICE.public_key) == n + 1
            assert c.state_scan(bob, limit=1) == [(bob, (10 * (n + 1)).to_bytes(8, "little"))]
            with c.store.read() as r:
                flushed = log.flushed_height(r)
                logged = [h for h, _ in r.items("state_log")]
                raw = r.get("state", bob)
            assert flushed == 4 * (c.height // 4)
            assert logged == list(range(flushed + 1, c.height + 1))
            # The table holds the balance as of the last flush, not the head's.
            assert raw == (None if flushed == 0 else (10 * flushed).to_bytes(8, "little"))
        assert c.height == 6
    # A clean close flushes: at rest the table is current and the log empty.
    assert _table(chain_dir, bob) == (60).to_bytes(8, "little")
    with Store(chain_dir / "db", readonly=True) as store, store.read() as r:
        assert log.flushed_height(r) == 6 and not list(r.items("state_log"))
    assert verify_chain(chain_dir).ok


def _no_flush(self, w, height):
    raise OSError("killed before the final flush")


def test_a_crash_between_flushes_loses_nothing(chain_dir, monkeypatch):
    cfg = small_config(state_flush_blocks=8)
    c = Chain(chain_dir, cfg, NODE)
    for n in range(3):
        c.submit([transfer(ALICE, n, BOB, 10), transfer(CAROL, n, ALICE, 1)]).wait(10)
    with monkeypatch.context() as m:
        m.setattr(Chain, "_flush_state", _no_flush)
        c.close()  # logs the failed flush; the write sets stay in the log, as after kill -9
    assert _table(chain_dir, accounts.balance_key(BOB.public_key)) is None  # never flushed
    with Store(chain_dir / "db", readonly=True) as store, store.read() as r:
        assert [h for h, _ in log.pending(r)] == [1, 2, 3]
        get = log.reader(r)  # what offline tools (tierchain state get, lineage) read
        assert get(accounts.balance_key(BOB.public_key)) == (30).to_bytes(8, "little")
        assert get(nonce_key(CAROL.public_key)) == (3).to_bytes(8, "little")
    assert verify_chain(chain_dir).ok
    with Chain(chain_dir, cfg, NODE) as c:  # reopen: the log is loaded, nothing replayed
        assert c.balance(BOB.public_key) == 30 and c.balance(ALICE.public_key) == 1_000 - 30 + 3
        assert c.nonce(ALICE.public_key) == 3
        for n in range(3, 9):  # executes on top of the logged blocks; block 8 flushes
            c.submit([transfer(ALICE, n, BOB, 10)]).wait(10)
        with c.store.read() as r:
            assert log.flushed_height(r) == 8
            assert r.get("state", accounts.balance_key(BOB.public_key)) == (30 + 50).to_bytes(8, "little")
        assert c.balance(BOB.public_key) == 90
    assert verify_chain(chain_dir).ok


def test_a_database_from_before_the_log_is_adopted(chain_dir):
    with Chain(chain_dir, small_config(), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 5)]).wait(10)
    env = lmdb.open(str(chain_dir / "db"), max_dbs=16)
    with env.begin(write=True) as txn:
        assert txn.delete(log.STATE_HEIGHT.encode(), db=env.open_db(b"meta", txn=txn))
    env.close()
    with Chain(chain_dir, small_config(), NODE) as c:
        assert c.balance(BOB.public_key) == 5
        with c.store.read() as r:
            assert log.flushed_height(r) == 1
        c.submit([transfer(ALICE, 1, BOB, 5)]).wait(10)
        assert c.balance(BOB.public_key) == 10
    assert verify_chain(chain_dir).ok


def test_flush_interval_is_bounded():
    with pytest.raises(ConfigError, match="state_flush_blocks"):
        small_config(state_flush_blocks=0)
    with pytest.raises(ConfigError, match="state_flush_blocks"):
        small_config(state_flush_blocks=1025)
    assert "state_flush_blocks = 3" in small_config(state_flush_blocks=3).to_toml()


def test_a_damaged_log_record_is_named_on_open_and_by_verify(chain_dir, monkeypatch):
    cfg = small_config(state_flush_blocks=8)
    c = Chain(chain_dir, cfg, NODE)
    c.submit([transfer(ALICE, 0, BOB, 10)]).wait(10)
    monkeypatch.setattr(Chain, "_flush_state", _no_flush)
    c.close()  # block 1 stays in the log
    env = lmdb.open(str(chain_dir / "db"), max_dbs=16)
    with env.begin(write=True) as txn:
        db = env.open_db(b"state_log", txn=txn)
        key = (1).to_bytes(8, "big")
        raw = bytearray(txn.get(key, db=db))
        raw[len(raw) // 2] ^= 0x01
        txn.put(key, bytes(raw), db=db)
    env.close()
    with pytest.raises(ChainError, match="state log damaged"):
        Chain(chain_dir, cfg, NODE)
    report = verify_chain(chain_dir)
    assert not report.ok
