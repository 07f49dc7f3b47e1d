"""Wire format: committed vectors, round trips, and the two decoders held together.

``tierchain.wire.tx.decode`` (pure Python, one tx) and ``tierchain._hot.decode_frames``
(Cython, a batch of frames) must return the same code for every input and the
same fields when it is OK; the fuzz tests below throw random bytes and mutated
valid transactions at both.
"""

from __future__ import annotations

import importlib.util
import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierchain import _hot, errors, limits
from tierchain.errors import Reject, RejectedError, WireError
from tierchain.wire import tx as txcodec

VECTORS = Path(__file__).parents[1] / "vectors"
VALID = json.loads((VECTORS / "wire_valid.json").read_text())
INVALID = json.loads((VECTORS / "wire_invalid.json").read_text())


def py_code(data: bytes) -> int:
    try:
        txcodec.decode(data)
    except WireError as e:
        return int(e.code)
    return 0


def row_tx(cols: dict, buf: bytes, i: int) -> txcodec.Tx:
    """Rebuild a Tx from row ``i`` of decode_frames' columns."""
    first, nr, nw = int(cols["key_first"][i]), int(cols["n_read"][i]), int(cols["n_write"][i])
    keys = [
        buf[s : s + n]
        for s, n in zip(
            cols["key_start"][first : first + nr + nw].tolist(),
            cols["key_len"][first : first + nr + nw].tolist(),
            strict=True,
        )
    ]
    ps, pl = int(cols["payload_start"][i]), int(cols["payload_len"][i])
    be = int(cols["body_end"][i])
    assert ps + pl == be
    assert buf[be : be + limits.signature_bytes] == cols["signature"][i].tobytes()
    assert be + limits.signature_bytes == int(cols["tx_end"][i])
    return txcodec.Tx(
        chain_id=int(cols["chain_id"][i]),
        shard_id=int(cols["shard_id"][i]),
        op=int(cols["op"][i]),
        sender=cols["sender"][i].tobytes(),
        nonce=int(cols["nonce"][i]),
        expires_at=int(cols["expires_at"][i]),
        reads=tuple(keys[:nr]),
        writes=tuple(keys[nr:]),
        payload=buf[ps : ps + pl],
        signature=cols["signature"][i].tobytes(),
        version=int(cols["version"][i]),
    )


def assert_rows_agree(txs: list[bytes]) -> dict:
    """Frame ``txs`` into one buffer and check every row against txcodec.decode."""
    buf = txcodec.frame(txs)
    cols = _hot.decode_frames(buf)
    assert len(cols["code"]) == len(txs)
    pos = 0
    for i, data in enumerate(txs):
        code = py_code(data)
        assert int(cols["code"][i]) == code, (i, data.hex())
        assert int(cols["tx_start"][i]) == pos + 4 and int(cols["tx_end"][i]) == pos + 4 + len(data)
        if code == 0:
            assert row_tx(cols, buf, i) == txcodec.decode(data)
        else:
            for name in (
                "version",
                "chain_id",
                "shard_id",
                "op",
                "nonce",
                "expires_at",
                "n_read",
                "n_write",
                "payload_start",
                "payload_len",
                "body_end",
            ):
                assert int(cols[name][i]) == 0, name
            assert not cols["sender"][i].any() and not cols["signature"][i].any()
        pos += 4 + len(data)
    assert np.all(np.diff(cols["key_first"]) >= 0)
    return cols


def native_available() -> bool:
    return importlib.util.find_spec("tierchain_native") is not None


needs_native = pytest.mark.skipif(not native_available(), reason="tierchain_native (Rust) not built")


# --- the committed vectors ----------------------------------------------------


def test_generator_output_equals_committed_files():
    for name, text in _generator().build().items():
        assert (VECTORS / name).read_text() == text, f"{name} differs from make_wire_vectors.py output"


def test_vectors_cover_every_wire_code():
    seen = {Reject[v["reject"]] for v in INVALID}
    assert {c for c in Reject if 1 <= c <= 11} <= seen
    sizes = [len(v["hex"]) // 2 for v in INVALID]
    assert limits.tx_bytes_max in sizes and limits.tx_bytes_max + 1 in sizes


@pytest.mark.parametrize("v", VALID, ids=[v["name"] for v in VALID])
def test_valid_vector_python(v):
    import nacl.signing

    data = bytes.fromhex(v["hex"])
    tx = txcodec.decode(data)
    f = v["fields"]
    want = txcodec.Tx(
        chain_id=f["chain_id"],
        shard_id=f["shard_id"],
        op=f["op"],
        sender=bytes.fromhex(f["sender"]),
        nonce=f["nonce"],
        expires_at=f["expires_at"],
        reads=tuple(bytes.fromhex(k) for k in f["reads"]),
        writes=tuple(bytes.fromhex(k) for k in f["writes"]),
        payload=bytes.fromhex(f["payload"]),
        signature=bytes.fromhex(f["signature"]),
        version=f["version"],
    )
    assert tx == want
    assert tx.encode() == data
    assert tx.tx_id().hex() == v["tx_id"]
    nacl.signing.VerifyKey(tx.sender).verify(tx.tx_id(), tx.signature)


@pytest.mark.parametrize("v", INVALID, ids=[v["name"] for v in INVALID])
def test_invalid_vector_python(v):
    with pytest.raises(WireError) as e:
        txcodec.decode(bytes.fromhex(v["hex"]))
    assert e.value.code.name == v["reject"]


@pytest.mark.parametrize("v", VALID + INVALID, ids=[v["name"] for v in VALID + INVALID])
def test_each_vector_alone_through_decode_frames(v):
    data = bytes.fromhex(v["hex"])
    cols = assert_rows_agree([data])
    assert Reject(int(cols["code"][0])).name == v.get("reject", "OK")


def test_all_vectors_in_one_batch_bad_between_good():
    rng = random.Random(5)
    items = VALID + INVALID + VALID
    rng.shuffle(items)
    assert_rows_agree([bytes.fromhex(v["hex"]) for v in items])


@needs_native
def test_vectors_through_decode_batch():
    from tierchain.wire.batch import decode_batch

    items = [v for pair in zip(VALID, INVALID, strict=False) for v in pair] + VALID
    b = decode_batch(txcodec.frame([bytes.fromhex(v["hex"]) for v in items]))
    assert len(b) == len(items)
    for i, v in enumerate(items):
        assert Reject(int(b.code[i])).name == v.get("reject", "OK")
        if "reject" in v:
            assert not b.digest[i].any()
            continue
        assert b.digest[i].tobytes().hex() == v["tx_id"]
        assert b.tx_bytes(i).hex() == v["hex"]
        f = v["fields"]
        assert b.keys_of(i) == (
            tuple(bytes.fromhex(k) for k in f["reads"]),
            tuple(bytes.fromhex(k) for k in f["writes"]),
        )
        assert b.payload(i).hex() == f["payload"]
        assert b.signature[i].tobytes().hex() == f["signature"]


@needs_native
def test_decode_batch_of_each_vector_alone():
    from tierchain.wire.batch import decode_batch

    for v in VALID:
        b = decode_batch(txcodec.frame([bytes.fromhex(v["hex"])]))
        assert b.code.tolist() == [0] and b.digest[0].tobytes().hex() == v["tx_id"]


# --- framing ------------------------------------------------------------------


def test_empty_buffer():
    cols = _hot.decode_frames(b"")
    assert all(len(c) == 0 for c in cols.values())


@pytest.mark.parametrize("tail", [b"\x01", b"\x01\x02", b"\x01\x02\x03"])
def test_short_prefix_gives_final_truncated_row(tail):
    good = bytes.fromhex(VALID[1]["hex"])
    buf = txcodec.frame([good]) + tail
    cols = _hot.decode_frames(buf)
    assert cols["code"].tolist() == [0, Reject.TRUNCATED]
    assert cols["tx_start"][1] == cols["tx_end"][1] == len(buf)


def test_frame_past_end_is_truncated_and_stops():
    good = bytes.fromhex(VALID[1]["hex"])
    buf = txcodec.frame([good, good])[:-10]
    cols = _hot.decode_frames(buf)
    assert cols["code"].tolist() == [0, Reject.TRUNCATED]
    assert cols["tx_end"][1] == len(buf)
    assert len(cols["key_start"]) == 2  # only the good row's keys


def test_oversized_frame_is_skipped_when_it_fits():
    good = bytes.fromhex(VALID[1]["hex"])
    huge = b"\x01" * (limits.tx_bytes_max + 1)
    cols = _hot.decode_frames(txcodec.frame([good, huge, good]))
    assert cols["code"].tolist() == [0, Reject.TOO_LARGE, 0]
    # ... and is TRUNCATED when its declared length runs past the buffer.
    buf = txcodec.frame([good]) + struct.pack("<I", 1 << 31) + b"\x00" * 100
    assert _hot.decode_frames(buf)["code"].tolist() == [0, Reject.TRUNCATED]


def test_batch_txs_max():
    ok = _hot.decode_frames(b"\x00\x00\x00\x00" * limits.batch_txs_max)
    assert len(ok["code"]) == limits.batch_txs_max and set(ok["code"].tolist()) == {Reject.TOO_SHORT}
    with pytest.raises(RejectedError) as e:
        _hot.decode_frames(b"\x00\x00\x00\x00" * (limits.batch_txs_max + 1))
    assert e.value.code == Reject.BATCH_TOO_LARGE
    # A trailing partial prefix is a row too.
    with pytest.raises(RejectedError):
        _hot.decode_frames(b"\x00\x00\x00\x00" * limits.batch_txs_max + b"\x00")


def test_batch_bytes_max():
    with pytest.raises(RejectedError) as e:
        _hot.decode_frames(bytes(limits.batch_bytes_max + 1))
    assert e.value.code == Reject.BATCH_TOO_LARGE


def test_accepts_bytes_like():
    good = bytes.fromhex(VALID[1]["hex"])
    buf = txcodec.frame([good])
    for b in (bytearray(buf), memoryview(buf), np.frombuffer(buf, np.uint8)):
        assert _hot.decode_frames(b)["code"].tolist() == [0]


# --- limits and codes agree ------------------------------------------------------


def test_hot_constants_agree_with_python():
    c = _hot.constants()
    codes = c.pop("codes")
    for name, value in c.items():
        assert getattr(limits, name) == value, name
    for name, value in codes.items():
        assert errors.Reject[name] == value, name
    assert {r.name for r in Reject if r <= 11} == set(codes)


# --- round trip ---------------------------------------------------------------

key_st = st.binary(min_size=1, max_size=limits.key_bytes_max)


@st.composite
def txs(draw):
    keys = sorted(draw(st.sets(key_st, max_size=limits.tx_keys_max)))
    is_write = draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys)))
    return txcodec.Tx(
        chain_id=draw(st.integers(0, 2**32 - 1)),
        shard_id=draw(st.integers(0, 2**16 - 1)),
        op=draw(st.integers(1, 2**16 - 1)),
        sender=draw(st.binary(min_size=32, max_size=32)),
        nonce=draw(st.integers(0, 2**64 - 1)),
        expires_at=draw(st.integers(0, 2**64 - 1)),
        reads=tuple(k for k, w in zip(keys, is_write, strict=True) if not w),
        writes=tuple(k for k, w in zip(keys, is_write, strict=True) if w),
        payload=draw(st.binary(max_size=limits.payload_bytes_max)),
        signature=draw(st.binary(min_size=64, max_size=64)),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(txs(), min_size=1, max_size=8))
def test_round_trip(items):
    encoded = [t.encode() for t in items]
    for t, data in zip(items, encoded, strict=True):
        assert txcodec.decode(data) == t
    cols = assert_rows_agree(encoded)
    assert not cols["code"].any()


# --- fuzz: the decoders agree and never crash ----------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_fuzz_random_frames(items):
    assert_rows_agree(items)


def py_frames(buf: bytes) -> list[int]:
    """Codes the framing rules give, computed in Python with txcodec.decode per frame."""
    out, pos = [], 0
    while pos < len(buf):
        if len(buf) - pos < 4:
            return [*out, Reject.TRUNCATED]
        (n,) = struct.unpack_from("<I", buf, pos)
        if n > len(buf) - pos - 4:
            return [*out, Reject.TRUNCATED]
        out.append(py_code(buf[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_raw_buffer_never_crashes(buf):
    assert _hot.decode_frames(buf)["code"].tolist() == py_frames(buf)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([v["hex"] for v in VALID[:6] + INVALID]), max_size=6), st.binary(max_size=8))
def test_fuzz_framed_vectors_with_garbage_tail(hexes, tail):
    buf = txcodec.frame([bytes.fromhex(h) for h in hexes]) + tail
    assert _hot.decode_frames(buf)["code"].tolist() == py_frames(buf)


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        if kind == 0 and b:  # bit flip
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind == 1 and b:  # byte set, aimed at the header/count fields half the time
            b[rng.randrange(min(len(b), 64) if rng.random() < 0.5 else len(b))] = rng.randrange(256)
        elif kind == 2:  # truncate
            del b[rng.randrange(len(b) + 1) :]
        elif kind == 3:  # insert
            pos = rng.randrange(len(b) + 1)
            b[pos:pos] = rng.randbytes(rng.randint(1, 4))
        elif kind == 4 and b:  # delete
            pos = rng.randrange(len(b))
            del b[pos : pos + rng.randint(1, 4)]
        else:  # append
            b += rng.randbytes(rng.randint(1, 4))
    return bytes(b)


def test_fuzz_mutations_of_valid_txs():
    rng = random.Random(20260101)
    seeds = [bytes.fromhex(v["hex"]) for v in VALID]
    for _ in range(40):
        batch = [
            mutate(rng, rng.choice(seeds)) if rng.random() < 0.8 else rng.choice(seeds) for _ in range(100)
        ]
        assert_rows_agree(batch)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(txs(), st.randoms(use_true_random=False))
def test_fuzz_mutations_hypothesis(tx, rnd):
    data = tx.encode()
    assert_rows_agree([mutate(rnd, data) for _ in range(5)] + [data])


def test_fuzz_header_field_combinations():
    """Valid tails under every interesting header value: exercises check precedence."""
    rng = random.Random(7)
    base = bytearray(bytes.fromhex(next(v for v in VALID if v["name"] == "one_read_one_write")["hex"]))
    out = []
    for _ in range(2000):
        b = bytearray(base)
        b[0] = rng.choice([0, 1, 1, 1, 2])
        b[7:9] = rng.choice([b"\x00\x00", b"\x01\x00"])
        b[57] = rng.choice([0, 1, 2, 3, 40])
        b[58] = rng.choice([0, 1, 2, 3])
        out.append(bytes(b[: rng.choice([len(b), len(b) - 1, len(b) + 0, 130, 127])]))
    assert_rows_agree(out)


def _generator():
    spec = importlib.util.spec_from_file_location("make_wire_vectors", VECTORS / "make_wire_vectors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_key_in_both_sets_at_every_position():
    """tx_keys_max keys, one key shared by both sets at each position (merge must find it)."""
    gen = _generator()
    half = limits.tx_keys_max // 2
    reads = [b"k%03d" % (2 * i) for i in range(half)]
    writes = [b"k%03d" % (2 * i + 1) for i in range(half)]
    items = []
    for i in range(half):
        for j in range(half):
            w = sorted({*writes[:j], reads[i], *writes[j + 1 :]})
            items.append(gen.sign(gen.raw_body(reads=tuple(reads), writes=tuple(w))))
    cols = assert_rows_agree(items)
    assert set(cols["code"].tolist()) == {Reject.KEY_IN_BOTH_SETS}
