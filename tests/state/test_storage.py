"""Storage tables: typed codecs round-trip, and no byte string crashes a decoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import applied_write_sets
from tierchain.state.storage import TABLES, Store
from tierchain.wire import block
from tierchain.wire.codec import CodecError

DECODERS = [(f"{name}.{part}", getattr(t, part)) for name, t in TABLES.items() for part in ("key", "value")]
DECODERS += [("receipt", None), ("header", block.HeaderCodec())]


@pytest.mark.parametrize(("name", "codec"), DECODERS, ids=[d[0] for d in DECODERS])
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_no_byte_string_crashes_a_decoder(name, codec, data):
    try:
        if codec is None:
            block.decode_receipt(data)
        else:
            value = codec.decode(data)
            if name not in ("header",):
                assert codec.decode(codec.encode(value)) == value
    except CodecError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**16 - 1),
    st.lists(st.tuples(st.binary(min_size=1, max_size=64), st.binary(max_size=1024)), max_size=16),
)
def test_receipts_round_trip(tx_id, code, events):
    receipts = [block.Receipt(tx_id, code, tuple(block.Event(t, d) for t, d in events))]
    codec = block.ReceiptsCodec()
    assert codec.decode(codec.encode(receipts)) == receipts


def test_damaged_header_record_is_reported(tmp_path):
    from tierchain.crypto import KeyPair

    keys = KeyPair.from_seed(b"k" * 32)
    header = block.Header(1, 0, bytes(32), 0, 0, bytes(32), bytes(32), bytes(32), keys.public_key).signed(
        keys
    )
    store = Store(tmp_path / "db")
    with store.write() as w:
        w.put("headers", 0, header)
    with store.read() as r:
        assert r.get("headers", 0) == header
    raw = bytearray(TABLES["headers"].value.encode(header))
    raw[5] ^= 1
    with store.write() as w:
        w._txn.put(store._dbs["headers"], (0).to_bytes(8, "big"), bytes(raw))
    with store.read() as r, pytest.raises(Exception, match="checksum"):
        r.get("headers", 0)
    store.close()


def test_packed_puts_equal_pair_puts_and_refuse_partial_pairs(tmp_path):
    import random
    import struct

    rng = random.Random(5)
    ids = sorted(rng.randbytes(32) for _ in range(300))
    locs = [struct.pack("<QI", 7, i) for i in range(300)]
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    try:
        with a.write() as w:
            w.put_many_raw("tx_index", list(zip(ids, locs, strict=True)))
        shuffled = list(range(300))
        rng.shuffle(shuffled)
        with b.write() as w:  # unsorted, sorted by the put
            w.put_packed(
                "tx_index", b"".join(ids[i] for i in shuffled), b"".join(locs[i] for i in shuffled), sort=True
            )
        with a.read() as ra, b.read() as rb:
            assert list(ra.items("tx_index")) == list(rb.items("tx_index"))
            assert rb.get("tx_index", ids[123]) == (7, 123)
        with b.write() as w, pytest.raises(CodecError, match="whole pairs"):
            w.put_packed("tx_index", b"".join(ids), b"".join(locs)[:-1])
        with b.write() as w, pytest.raises(TypeError, match="fixed-size"):
            w.put_packed("receipts", b"\0" * 8, b"")
    finally:
        a.close()
        b.close()


# A stored state table and write sets over it (oldest first; None deletes), with keys
# from a small alphabet so that sets overlap each other and the table.
_STORED = st.dictionaries(st.binary(min_size=1, max_size=4), st.binary(max_size=8), max_size=30)
_WRITE_SETS = st.lists(
    st.dictionaries(st.binary(min_size=1, max_size=4), st.none() | st.binary(max_size=8), max_size=30),
    max_size=6,
)


def _store_with(tmp_path_factory, stored: dict) -> Store:
    store = Store(tmp_path_factory.mktemp("state") / "db")
    with store.write() as w:
        w.put_many_raw("state", sorted(stored.items()))
    return store


@settings(max_examples=40, deadline=None)
@given(stored=_STORED, sets=_WRITE_SETS)
def test_merged_write_sets_put_the_newest_value_of_each_key(tmp_path_factory, stored, sets):
    """``put_merged``: a later write set's value for a key wins, None deletes it; the table
    ends as the stored state updated with each set in order."""
    merged: dict[bytes, bytes | None] = {}
    for writes in sets:
        merged.update(writes)
    store = _store_with(tmp_path_factory, stored)
    try:
        with store.write() as w:
            puts, deletes = w.put_merged("state", sets)
        deleted = sum(v is None for v in merged.values())
        assert (puts, deletes) == (len(merged) - deleted, deleted)
        with store.read() as r:
            assert dict(r.items("state")) == applied_write_sets(stored, sets)
    finally:
        store.close()


def test_merged_write_sets_refuse_bad_input_before_writing(tmp_path):
    store = Store(tmp_path / "db")
    try:
        with store.write() as w:
            w.put_many_raw("state", [(b"a", b"1")])
        too_long = TABLES["state"].key.size_max + 1
        for sets, error in [
            ([{b"b": b"2"}, {b"x" * too_long: b"3"}], CodecError),
            ([{b"b": b"2"}, {b"": b"3"}], CodecError),
            ([{b"b": b"2"}, {"c": b"3"}], TypeError),
            ([{b"b": b"2"}, {b"c": 3}], TypeError),
            ([{b"b": b"2"}, [(b"c", b"3")]], TypeError),
        ]:
            with store.write() as w:
                with pytest.raises(error):
                    w.put_merged("state", sets)
                assert dict(w.items("state")) == {b"a": b"1"}, "nothing written"
        with store.write() as w, pytest.raises(TypeError, match="typed puts"):
            w.put_merged("headers", [{}])
    finally:
        store.close()


@settings(max_examples=40, deadline=None)
@given(stored=_STORED, overlays=_WRITE_SETS, extra=st.lists(st.binary(min_size=1, max_size=4), max_size=10))
def test_reads_through_overlays_take_the_newest_write(tmp_path_factory, stored, overlays, extra):
    """``get_many_raw(..., overlays)``: a key an overlay holds takes the newest overlay's
    value (absent if that is None); the others are read; the result is in the keys' order."""
    keys = sorted(set(stored) | {k for o in overlays for k in o} | set(extra))
    state = applied_write_sets(stored, overlays)
    expected = {k: state[k] for k in keys if k in state}
    store = _store_with(tmp_path_factory, stored)
    try:
        with store.read() as r:
            got = r.get_many_raw("state", keys, overlays)
            assert got == expected and list(got) == list(expected)
            assert r.get_many_raw("state", keys) == {k: stored[k] for k in keys if k in stored}
            with pytest.raises(TypeError):
                r.get_many_raw("state", keys, [{keys[0]: 5}] if keys else [5])
    finally:
        store.close()
