"""Wave execution equals serial execution in block order (invariant 1, determinism, of
shared/DESIGN.md beside the repo; the scheduler's argument: tierchain/engine/schedule.py)."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine import schedule
from tierchain.engine.execute import execute_block, execute_serial, nonce_key
from tierchain.engine.genesis import genesis_writes
from tierchain.errors import Reject
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(6)]
CONFIG = ChainConfig(genesis_accounts=tuple(GenesisAccount(k.public_key, (), 50) for k in KEYS))
BASE = {k: v for k, v in genesis_writes(CONFIG).items() if v is not None}

transfer_spec = st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 60))


def _block(specs):
    nonces = [0] * len(KEYS)
    txs = []
    for s, t, amount in specs:
        tx = accounts.transfer(1, KEYS[s].public_key, nonces[s], KEYS[t].public_key, amount)
        nonces[s] += 1
        txs.append(KEYS[s].sign_tx(tx).encode())
    return decode_batch(frame(txs))


@settings(max_examples=60, deadline=None)
@given(st.lists(transfer_spec, min_size=1, max_size=40))
def test_waves_in_any_order_equal_serial(specs):
    batch = _block(specs)
    serial = execute_serial(batch, BASE.get, 1, 0)
    waves = schedule.waves(batch)
    # Inside a wave, order must not matter: run each wave backwards.
    backwards = execute_block(batch, BASE.get, 1, 0, waves=[w[::-1] for w in waves])
    assert backwards.receipts == serial.receipts
    assert backwards.writes == serial.writes

    # Money is conserved whatever happened.
    def total(writes):
        state = {**BASE, **{k: v for k, v in writes.items() if v is not None}}
        return sum(struct.unpack("<Q", v)[0] for k, v in state.items() if k.startswith(b"bal/"))

    assert total(serial.writes) == 50 * len(KEYS)


def test_reversed_serial_order_differs_so_the_test_can_fail():
    # Alice (50) pays 40 to Bob, then Bob pays 80 to Carol: order decides whether Bob can.
    specs = [(0, 1, 40), (1, 2, 80)]
    batch = _block(specs)
    serial = execute_serial(batch, BASE.get, 1, 0)
    flipped = execute_block(batch, BASE.get, 1, 0, waves=[np.array([1, 0])])
    assert [r.code for r in serial.receipts] == [0, 0]
    assert [r.code for r in flipped.receipts] != [0, 0]
    assert len(schedule.waves(batch)) == 2  # the scheduler kept them apart


def test_expired_tx_in_a_block_fails_and_consumes_its_nonce():
    import dataclasses

    tx = accounts.transfer(1, KEYS[0].public_key, 0, KEYS[1].public_key, 5)
    txs = [
        KEYS[0].sign_tx(dataclasses.replace(tx, expires_at=3)).encode(),
        KEYS[0].sign_tx(accounts.transfer(1, KEYS[0].public_key, 1, KEYS[1].public_key, 5)).encode(),
    ]
    batch = decode_batch(frame(txs))
    at_deadline = execute_serial(batch, BASE.get, 3, 0)
    assert [r.code for r in at_deadline.receipts] == [0, 0]
    late = execute_serial(batch, BASE.get, 4, 0)
    assert [r.code for r in late.receipts] == [Reject.EXPIRED, 0]
    # Only the second transfer moved money; both nonces were consumed.
    assert struct.unpack("<Q", late.writes[accounts.balance_key(KEYS[1].public_key)])[0] == 55
    assert struct.unpack("<Q", late.writes[nonce_key(KEYS[0].public_key)])[0] == 2
