"""The native executor (ext/rust/src/exec/) against the Python handlers it replaces.

Random blocks mix native ops (transfers of every kind: valid, wrong nonce, expired, bad
payloads, unregistered recipients, overdrafts, overflows, undeclared and extra keys, a
malformed stored balance) with Python ones (registrations the later transfers depend on,
an unknown op), and every block is run four ways: the scheduler's waves and serial block
order, each with native ops on and off. Receipts (codes and events) and write sets must be
identical; serially, the writes' order too (the write-ahead log's bytes).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tierchain_native
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine import apps, schedule
from tierchain.engine.execute import BlockColumns, declared_keys, execute_block, execute_serial, nonce_key
from tierchain.engine.genesis import genesis_writes
from tierchain.errors import InvariantViolation, Reject
from tierchain.wire import tx as wtx
from tierchain.wire.batch import decode_batch
from tierchain.wire.block import Event, Receipt
from tierchain.wire.tx import frame

KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(8)]
NEW = [KeyPair.from_seed(bytes([i + 40]) * 32).public_key for i in range(3)]  # registered in blocks
HUGE = (1 << 63) - 10
CONFIG = ChainConfig(
    genesis_accounts=(
        GenesisAccount(KEYS[0].public_key, ("registrar",), 1_000),
        *(GenesisAccount(k.public_key, (), 100) for k in KEYS[1:6]),
        GenesisAccount(KEYS[6].public_key, (), 100),
        GenesisAccount(KEYS[7].public_key, (), HUGE),
    )
)
BASE = {k: v for k, v in genesis_writes(CONFIG).items() if v is not None}
BASE[accounts.balance_key(KEYS[6].public_key)] = b"\x01\x02\x03"  # not a u64: the handler fails
HEIGHT = 5
TARGETS = [k.public_key for k in KEYS] + NEW
AMOUNTS = [0, 1, 7, 60, 99, 100, 101, HUGE, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]


@st.composite
def tx_spec(draw):
    kind = draw(st.sampled_from(["transfer"] * 6 + ["keys", "payload", "register", "unknown"]))
    sender = draw(st.integers(0, len(KEYS) - 1))
    nonce_skew = draw(st.sampled_from([0] * 8 + [1, -1]))
    expires_at = draw(st.sampled_from([0] * 6 + [HEIGHT - 1, HEIGHT]))
    to = draw(st.integers(0, len(TARGETS) - 1))
    amount = draw(st.sampled_from(AMOUNTS))
    mutation = draw(st.integers(0, 3))
    return kind, sender, nonce_skew, expires_at, to, amount, mutation


def _tx(spec, nonce: int) -> bytes:
    kind, sender, _, expires_at, to, amount, mutation = spec
    me, dest = KEYS[sender].public_key, TARGETS[to]
    if kind == "register":
        t = accounts.register(1, me, nonce, NEW[to % len(NEW)])
    elif kind == "unknown":
        t = wtx.unsigned(1, 60_000, me, nonce, (), (accounts.balance_key(me),), b"")
    else:
        t = accounts.transfer(1, me, nonce, dest, amount)
        reads, writes = list(t.reads), list(t.writes)
        if kind == "keys":  # drop the recipient's account, drop a balance, or add a stranger's
            if mutation == 0:
                reads = []
            elif mutation == 1:
                writes = writes[:1]
            elif mutation == 2:
                writes, reads = [], reads + writes
            else:
                reads.append(accounts.balance_key(KEYS[(sender + 3) % len(KEYS)].public_key))
            t = wtx.unsigned(1, t.op, me, nonce, reads, writes, t.payload)
        elif kind == "payload":
            t = dataclasses.replace(t, payload=t.payload[: 30 + 3 * mutation])
    return KEYS[sender].sign_tx(dataclasses.replace(t, expires_at=expires_at)).encode()


def _block(specs):
    nonces = [0] * len(KEYS)
    frames = []
    for spec in specs:
        sender, skew = spec[1], spec[2]
        frames.append(_tx(spec, max(0, nonces[sender] + skew)))
        if skew == 0:
            nonces[sender] += 1
    return decode_batch(frame(frames))


def _four_ways(batch):
    return {
        (mode, native): run(batch, dict(BASE), HEIGHT, 0, native=native)
        for mode, run in (("waves", execute_block), ("serial", execute_serial))
        for native in (True, False)
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tx_spec(), min_size=1, max_size=60))
def test_native_equals_python_on_random_mixed_blocks(specs):
    batch = _block(specs)
    runs = _four_ways(batch)
    reference = runs["serial", False]
    for (mode, native), result in runs.items():
        assert result.receipts == reference.receipts, (mode, native)
        assert result.writes == reference.writes, (mode, native)
        # The encodings kept for the receipt root and the stored record (native: the kernels').
        assert result.receipts.encoded == [r.encode() for r in reference.receipts], (mode, native)
    assert list(runs["serial", True].writes.items()) == list(reference.writes.items())


def test_the_random_blocks_reach_every_outcome():
    """The generator is not vacuous: one long block of it gives every code the kernel can."""
    import random

    rng = random.Random(7)
    specs = []
    for _ in range(400):
        specs.append(
            (
                rng.choice(["transfer"] * 6 + ["keys", "payload", "register", "unknown"]),
                rng.randrange(len(KEYS)),
                rng.choice([0] * 8 + [1, -1]),
                rng.choice([0] * 6 + [HEIGHT - 1, HEIGHT]),
                rng.randrange(len(TARGETS)),
                rng.choice(AMOUNTS),
                rng.randrange(4),
            )
        )
    batch = _block(specs)
    runs = _four_ways(batch)
    codes = {r.code for r in runs["waves", True].receipts}
    assert {
        Reject.OK, Reject.NONCE_MISMATCH, Reject.EXPIRED, Reject.BAD_PAYLOAD, Reject.NO_SUCH_ACCOUNT,
        Reject.INSUFFICIENT_FUNDS, Reject.UNDECLARED_ACCESS, Reject.HANDLER_FAILED, Reject.UNKNOWN_OP,
    } <= codes  # fmt: skip
    for result in runs.values():
        assert result.receipts == runs["serial", False].receipts
        assert result.writes == runs["serial", False].writes
    assert len(schedule.waves(batch)) > 1  # the scheduler split it: waves, not one serial run


def test_a_big_block_runs_its_waves_on_the_pool_and_equals_serial():
    """Waves of >= PARALLEL_ROWS_MIN transfers (the pool's threshold): 600 senders pay 600
    recipients, then each pays the next one's recipient."""
    people = [KeyPair.from_seed(i.to_bytes(4, "little") * 8) for i in range(1200)]
    senders, payees = people[:600], people[600:]
    config = ChainConfig(genesis_accounts=tuple(GenesisAccount(k.public_key, (), 1_000) for k in people))
    base = {k: v for k, v in genesis_writes(config).items() if v is not None}
    txs = [
        k.sign_tx(
            accounts.transfer(1, k.public_key, r, payees[(i + r) % 600].public_key, 1 + i % 400)
        ).encode()
        for r in range(2)
        for i, k in enumerate(senders)
    ]
    batch = decode_batch(frame(txs))
    assert max(len(w) for w in schedule.waves(batch)) >= 256
    native = execute_block(batch, base, 1, 0, native=True)
    python = execute_serial(batch, base, 1, 0, native=False)
    assert native.receipts == python.receipts and native.writes == python.writes
    assert {r.code for r in native.receipts} == {Reject.OK}


def test_declared_keys_are_the_block_keys_and_nonce_keys_sorted():
    batch = _block(
        [("transfer", 1, 0, 0, 2, 5, 0), ("register", 0, 0, 0, 1, 0, 0), ("transfer", 1, 0, 0, 3, 5, 0)]
    )
    cols = BlockColumns(batch)
    want = sorted(set(cols.keys) | {nonce_key(s) for s in cols.sender})
    assert declared_keys(cols) == want and len(want) == 9


def test_a_native_row_reading_an_unprefetched_key_is_a_violation():
    batch = _block([("transfer", 1, 0, 0, 2, 5, 0)])
    with pytest.raises(InvariantViolation, match="not prefetched"):
        execute_block(batch, BASE, HEIGHT, 0, keys=[nonce_key(KEYS[1].public_key)])


def test_an_op_naming_an_unknown_kernel_is_refused_and_the_codes_agree():
    with pytest.raises(apps.AppError, match="no native kernel"):
        apps.Op(99, "nothing", lambda ctx: None, native="no.such")
    kernels, codes = tierchain_native.exec_constants()
    names = ["accounts.transfer", "fin.split", "fin.offer", "fin.accept", "fin.anchor", "fin.confirm"]
    assert kernels == {name: i for i, name in enumerate(names)}
    assert all(Reject[name] == code for name, code in codes.items())


def test_block_cols_refuse_inconsistent_columns():
    b = _block([("transfer", 1, 0, 0, 2, 5, 0)])
    args = [b.buf, b.key_first, b.key_start, b.key_len, b.n_read, b.n_write, b.sender, b.nonce,
            b.expires_at, b.payload_start, b.payload_len, b.digest]  # fmt: skip
    tierchain_native.BlockCols(*args)
    bad = list(args)
    bad[2] = np.array([10**9] * len(b.key_start), dtype=np.int64)  # keys outside the buffer
    with pytest.raises(ValueError, match="outside"):
        tierchain_native.BlockCols(*bad)
    bad = list(args)
    bad[7] = b.nonce.astype(np.int64)  # the wrong dtype
    with pytest.raises(TypeError, match="uint64"):
        tierchain_native.BlockCols(*bad)


def test_a_wrong_tx_id_list_is_refused_before_any_row_runs():
    batch = _block([("transfer", 1, 0, 0, 2, 5, 0), ("transfer", 2, 0, 0, 3, 5, 0)])
    cols = BlockColumns(batch)
    state = tierchain_native.BlockState(declared_keys(cols), dict(BASE))
    kernels = np.zeros(len(batch), np.uint8)  # accounts.transfer
    n = len(batch)
    wrong = list(reversed(cols.tx_id))
    with pytest.raises(ValueError, match="not the row's tx id"):
        state.run(
            cols.native, np.arange(n, dtype=np.int64), np.array([0, n], np.int64), kernels, HEIGHT, 0, True,
            False, [None] * n, [None] * n, (Receipt, Event), wrong,
        )  # fmt: skip
    assert state.writes() == {}  # nothing ran
