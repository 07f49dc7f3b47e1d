"""Conflict scheduler: waves are conflict-free, keep block order, are optimal,
and executing wave by wave (any order inside a wave) equals serial execution.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierchain import _hot
from tierchain.engine.schedule import access_sets, schedule, schedule_reference, waves
from tierchain.wire import tx
from tierchain.wire.batch import Batch


def batch_of(encoded: list[bytes]) -> Batch:
    """A Batch without tx ids (the scheduler does not need them; no Rust module needed)."""
    buf = tx.frame(encoded)
    cols = _hot.decode_frames(buf)
    return Batch(buf=buf, digest=np.zeros((len(cols["code"]), 32), np.uint8), **cols)


# --- abstract transactions over a small key space -----------------------------


@st.composite
def workloads(draw):
    n_keys = draw(st.integers(1, 8))
    n_tx = draw(st.integers(0, 40))
    txs = []
    for _ in range(n_tx):
        touched = draw(st.lists(st.integers(0, n_keys - 1), unique=True, max_size=min(n_keys, 5)))
        split = draw(st.integers(0, len(touched)))
        txs.append((sorted(touched[:split]), sorted(touched[split:])))
    return txs


def native_ids(txs):
    ids = [k for r, w in txs for k in (*r, *w)]
    first = np.cumsum([0] + [len(r) + len(w) for r, w in txs])[:-1]
    return _hot.schedule_ids(
        np.array(ids, np.int64),
        np.array(first, np.int64),
        np.array([len(r) for r, _ in txs], np.uint8),
        np.array([len(w) for _, w in txs], np.uint8),
    )


def conflict(a, b) -> bool:
    (ra, wa), (rb, wb) = a, b
    return bool(set(wa) & (set(rb) | set(wb)) or set(wb) & set(ra))


def f(t: int, key: int, values: tuple) -> int:
    """The toy state machine's transition: any deterministic, order-sensitive mix."""
    return hash((t, key, values)) & 0xFFFFFFFF


def run_serial(txs):
    state: dict[int, int] = {}
    for t, (reads, writes) in enumerate(txs):
        values = tuple(state.get(k, 0) for k in (*reads, *writes))
        for k in writes:
            state[k] = f(t, k, values)
    return state


def run_waves(txs, wave, arrange):
    """Wave after wave; inside a wave in the order ``arrange`` gives, all reading the wave-start state."""
    state: dict[int, int] = {}
    for members in waves(wave):
        snapshot = dict(state)
        for t in arrange(members.tolist()):
            reads, writes = txs[t]
            values = tuple(snapshot.get(k, 0) for k in (*reads, *writes))
            for k in writes:
                state[k] = f(t, k, values)
    return state


@settings(max_examples=400, deadline=None)
@given(workloads(), st.randoms(use_true_random=False))
def test_waves_equal_serial_execution(txs, rng):
    wave = native_ids(txs)
    assert wave.tolist() == schedule_reference(txs)
    serial = run_serial(txs)
    assert run_waves(txs, wave, lambda m: m[::-1]) == serial
    assert run_waves(txs, wave, lambda m: rng.sample(m, len(m))) == serial


def test_state_machine_detects_a_bad_schedule():
    """The oracle above can fail: all-in-one-wave differs from serial on a write-then-read."""
    txs = [([], [0]), ([0], [1])]
    assert run_waves(txs, np.array([0, 0], np.int32), lambda m: m) != run_serial(txs)


@settings(max_examples=400, deadline=None)
@given(workloads())
def test_conflicts_ordered_and_wave_count_optimal(txs):
    wave = native_ids(txs).tolist()
    longest = []  # longest conflict chain ending at each tx
    for j in range(len(txs)):
        best = 0
        for i in range(j):
            if conflict(txs[i], txs[j]):
                assert wave[i] < wave[j], (i, j)  # never the same wave, and block order kept
                best = max(best, longest[i])
        longest.append(best + 1)
        assert wave[j] == best  # the earliest possible wave
    assert (max(wave) + 1 if wave else 0) == (max(longest) if longest else 0)


def test_schedule_ids_validates():
    with pytest.raises(ValueError):
        _hot.schedule_ids(np.array([-1]), np.array([0]), np.array([1], np.uint8), np.array([0], np.uint8))
    with pytest.raises(ValueError):
        _hot.schedule_ids(np.array([0]), np.array([0]), np.array([1], np.uint8), np.array([1], np.uint8))
    assert _hot.schedule_ids(np.array([], np.int64), np.array([], np.int64), [], []).tolist() == []


# --- real batches ---------------------------------------------------------------

SENDERS = [bytes([i]) * 32 for i in range(1, 5)]


@st.composite
def encoded_batches(draw):
    key_space = [b"k%d" % i for i in range(6)] + [SENDERS[0]]  # a key equal to a sender's bytes
    out = []
    for nonce in range(draw(st.integers(0, 30))):
        if draw(st.integers(0, 9)) == 0:
            out.append(draw(st.binary(max_size=140)))  # a rejected row
            continue
        touched = sorted(draw(st.lists(st.sampled_from(key_space), unique=True, max_size=4)))
        is_write = [draw(st.booleans()) for _ in touched]
        out.append(
            tx.Tx(
                chain_id=1,
                shard_id=0,
                op=1,
                sender=draw(st.sampled_from(SENDERS)),
                nonce=nonce,
                reads=tuple(k for k, w in zip(touched, is_write, strict=True) if not w),
                writes=tuple(k for k, w in zip(touched, is_write, strict=True) if w),
                signature=b"\x00" * 64,
            ).encode()
        )
    return out


@settings(max_examples=300, deadline=None)
@given(encoded_batches(), st.booleans())
def test_batch_schedule_matches_reference(encoded, sender_is_write):
    b = batch_of(encoded)
    got = schedule(b, sender_is_write=sender_is_write)
    assert got.dtype == np.int32
    assert got.tolist() == schedule_reference(access_sets(b, sender_is_write=sender_is_write))
    assert (got[~b.ok] == -1).all() and (got[b.ok] >= 0).all()


def test_same_sender_keeps_nonce_order():
    txs = [
        tx.Tx(
            chain_id=1,
            shard_id=0,
            op=1,
            sender=SENDERS[0],
            nonce=i,
            writes=(b"k%d" % i,),
            signature=b"\x00" * 64,
        ).encode()
        for i in range(5)
    ]
    b = batch_of(txs)
    assert schedule(b).tolist() == [0, 1, 2, 3, 4]
    assert schedule(b, sender_is_write=False).tolist() == [0, 0, 0, 0, 0]


def test_sender_namespace_is_separate_from_keys():
    a = tx.Tx(chain_id=1, shard_id=0, op=1, sender=SENDERS[0], nonce=0, signature=b"\x00" * 64)
    b = tx.Tx(
        chain_id=1, shard_id=0, op=1, sender=SENDERS[1], nonce=0, writes=(SENDERS[0],), signature=b"\x00" * 64
    )
    assert schedule(batch_of([a.encode(), b.encode()])).tolist() == [0, 0]


def test_large_batch_with_colliding_prefixes_matches_reference():
    rng = random.Random(3)
    keys = [b"acct/" + b"\x00" * 40 + b"%06d" % i for i in range(3000)]
    encoded = []
    for i in range(20_000):
        touched = sorted(rng.sample(keys, 3))
        encoded.append(
            tx.Tx(
                chain_id=1,
                shard_id=0,
                op=1,
                sender=rng.choice(SENDERS),
                nonce=i,
                reads=(touched[0],),
                writes=tuple(touched[1:]),
                signature=b"\x00" * 64,
            ).encode()
        )
    b = batch_of(encoded)
    assert schedule(b).tolist() == schedule_reference(access_sets(b))


def test_waves_helper():
    w = np.array([1, 0, -1, 1, 0, 2], np.int32)
    assert [x.tolist() for x in waves(w)] == [[1, 4], [0, 3], [5]]
    assert waves(np.array([-1, -1], np.int32)) == []
    assert waves(np.array([], np.int32)) == []


def test_schedule_rejects_inconsistent_columns():
    b = batch_of(
        [
            tx.Tx(
                chain_id=1,
                shard_id=0,
                op=1,
                sender=SENDERS[0],
                nonce=0,
                writes=(b"k",),
                signature=b"\x00" * 64,
            ).encode()
        ]
    )
    with pytest.raises(ValueError):
        _hot.schedule(b.buf, b.code, b.key_first + 5, b.key_start, b.key_len, b.n_read, b.n_write, b.sender)
    with pytest.raises(ValueError):
        _hot.schedule(
            b.buf, b.code, b.key_first, b.key_start + 10**6, b.key_len, b.n_read, b.n_write, b.sender
        )
