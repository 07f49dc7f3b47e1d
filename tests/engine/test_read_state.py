"""``execute.read_state`` (``BlockState.read``, ext/rust/src/py/exec.rs): a block's parent
state read from the state table through the uncommitted blocks' write sets (dicts, or the
``BlockState`` that executed a block) in one native call, as the producer prepares it,
against ``BlockState(keys, get_many_raw(keys, overlays))`` — the two calls it replaces —
and against the model of the table after the write sets."""

from __future__ import annotations

import pytest
import tierchain_native
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import applied_write_sets, raised_on_another_thread
from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.execute import BlockColumns, declared_keys, execute_block, read_state
from tierchain.engine.genesis import genesis_writes
from tierchain.state.storage import Store
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(6)]
CONFIG = ChainConfig(genesis_accounts=tuple(GenesisAccount(k.public_key, (), 1_000) for k in KEYS))
GENESIS = {k: v for k, v in genesis_writes(CONFIG).items() if v is not None}
STRANGER = b"\x00b" + b"\x09" * 32  # a key no transaction below declares


def _batch(pairs: list[tuple[int, int]]):
    nonces = [0] * len(KEYS)
    frames = []
    for sender, to in pairs:
        t = accounts.transfer(1, KEYS[sender].public_key, nonces[sender], KEYS[to].public_key, 5)
        frames.append(KEYS[sender].sign_tx(t).encode())
        nonces[sender] += 1
    return decode_batch(frame(frames))


def _store(tmp_path_factory, stored: dict[bytes, bytes]) -> Store:
    store = Store(tmp_path_factory.mktemp("state") / "db")
    with store.write() as w:
        w.put_many_raw("state", sorted(stored.items()))
    return store


VALUES = st.one_of(
    st.none(), st.integers(0, 2_000).map(lambda n: n.to_bytes(8, "little")), st.binary(max_size=3)
)
OVERLAYS = st.lists(
    st.tuples(st.dictionaries(st.sampled_from([*sorted(GENESIS), STRANGER]), VALUES), st.booleans()),
    max_size=3,
)


def _executed(writes: dict[bytes, bytes | None]) -> tierchain_native.BlockState:
    """A BlockState whose block wrote ``writes`` (as the producer keeps one)."""
    state = tierchain_native.BlockState([], {})
    for k, v in writes.items():
        state.put(k, v)
    return state


PAIRS = st.lists(
    st.tuples(st.integers(0, len(KEYS) - 1), st.integers(0, len(KEYS) - 1)), min_size=1, max_size=30
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=PAIRS,
    dropped=st.sets(st.sampled_from(sorted(GENESIS))),
    drawn=OVERLAYS,
)
def test_the_read_state_is_the_table_through_the_overlays(tmp_path_factory, pairs, dropped, drawn):
    """Every key the block may touch holds the newest overlay's value (absent where it is
    None), else the table's; any other key reads as absent; the block executes on it as on
    the model and as on the two calls it replaces."""
    stored = {k: v for k, v in GENESIS.items() if k not in dropped}
    overlays = [writes for writes, _ in drawn]
    mixed = [_executed(writes) if native else writes for writes, native in drawn]
    model = applied_write_sets(stored, overlays)
    batch = _batch(pairs)
    cols = BlockColumns(batch)
    keys = declared_keys(cols)
    store = _store(tmp_path_factory, stored)
    try:
        with store.read() as r:
            state = read_state(r.native("state"), cols, mixed)
            replaced = tierchain_native.BlockState(keys, r.get_many_raw("state", keys, overlays))
        for key in keys:
            assert state.get(key) == replaced.get(key) == model.get(key), key
        assert state.get(STRANGER) is None
        on_read = execute_block(batch, read_state_again(store, cols, mixed), 2, 0, cols=cols)
        on_model = execute_block(batch, model, 2, 0, cols=cols)
        assert on_read.receipts == on_model.receipts
        assert list(on_read.writes.items()) == list(on_model.writes.items())
    finally:
        store.close()


def read_state_again(store: Store, cols: BlockColumns, overlays: list) -> tierchain_native.BlockState:
    with store.read() as r:
        return read_state(r.native("state"), cols, overlays)


def test_the_newest_overlay_wins_and_bad_overlays_and_transactions_are_refused(tmp_path_factory):
    cols = BlockColumns(_batch([(0, 1)]))
    key = declared_keys(cols)[0]
    store = _store(tmp_path_factory, GENESIS)
    try:
        with store.read() as r:
            reader = r.native("state")
            for overlays, match in [
                ([5], "overlays must be dicts or BlockStates"),
                ([{key: 5}], "bytes or None"),
                ([{key: b"1"}, {key: "one"}], "bytes or None"),
            ]:
                with pytest.raises(TypeError, match=match):
                    read_state(reader, cols, overlays)
            assert read_state(reader, cols, [{key: b"1"}, {key: None}]).get(key) is None
            assert read_state(reader, cols, [{key: None}, {key: b"1"}]).get(key) == b"1"
            assert read_state(reader, cols, [{key: b"1"}, _executed({key: None})]).get(key) is None
            assert read_state(reader, cols, [_executed({key: b"2"}), {STRANGER: b"3"}]).get(key) == b"2"
            newest_holds = [{key: b"1"}, _executed({key: b"2"}), {STRANGER: b"3"}]
            assert read_state(reader, cols, newest_holds).get(key) == b"2"
            on_thread = raised_on_another_thread(lambda: read_state(reader, cols, []))
            assert isinstance(on_thread, tierchain_native.LmdbError)
            assert "the thread that began it" in str(on_thread)
        with pytest.raises(tierchain_native.LmdbError, match="finished"):
            read_state(reader, cols, [])
    finally:
        store.close()
