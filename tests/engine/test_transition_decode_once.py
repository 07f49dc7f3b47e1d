"""Decode once: a block is gathered from the admitted rows' columns, never decoded again.

``batch.gather`` must equal ``decode_batch`` of the joined frames column for column
(the block's bytes are stored and hashed, its columns executed), and the producer
must not parse or hash a transaction that admission already did.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from conftest import ALICE, BOB, CAROL, NODE, small_config
from tierchain.apps import accounts
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain
from tierchain.errors import Reject
from tierchain.wire import batch as batch_module
from tierchain.wire.batch import decode_batch, gather, row_bytes
from tierchain.wire.tx import frame

CHAIN_ID = 9
KEYS = [KeyPair.from_seed(f"gather-{i}".encode().ljust(32, b"\0")) for i in range(5)]


def _txs(rng: np.random.Generator, n: int) -> list[bytes]:
    """Transfers and registrations (different key counts and payload sizes), some broken."""
    out = []
    for j in range(n):
        sender, other = KEYS[j % len(KEYS)], KEYS[(j + 1) % len(KEYS)]
        if rng.random() < 0.3:
            tx = accounts.register(CHAIN_ID, sender.public_key, j, other.public_key, ("registrar",) * (j % 2))
        else:
            tx = accounts.transfer(
                CHAIN_ID, sender.public_key, j, other.public_key, int(rng.integers(1, 10**9))
            )
        raw = sender.sign_tx(tx).encode()
        if rng.random() < 0.15:
            raw = raw[: int(rng.integers(1, len(raw)))]  # does not decode
        out.append(raw)
    return out


def _assert_same(got, want) -> None:
    assert got.buf == want.buf
    for field in dataclasses.fields(want):
        if field.name == "buf":
            continue
        a, b = getattr(got, field.name), getattr(want, field.name)
        assert a.dtype == b.dtype and a.shape == b.shape, field.name
        assert np.array_equal(a, b), field.name


@pytest.mark.parametrize("seed", range(6))
def test_gather_equals_decoding_the_joined_frames(seed):
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(int(rng.integers(1, 5))):
        b = decode_batch(frame(_txs(rng, int(rng.integers(1, 12)))))
        ok = np.flatnonzero(b.ok)
        # Admitted rows: all of them (adjacent frames), or a subset with gaps.
        rows = ok if rng.random() < 0.5 else ok[rng.random(len(ok)) < 0.6]
        parts.append((b, rows))
    if not sum(len(r) for _, r in parts):
        parts.append((decode_batch(frame(_txs(np.random.default_rng(99), 1))), np.array([0])))
    joined = b"".join(b.buf[int(b.tx_start[i]) - 4 : int(b.tx_end[i])] for b, rows in parts for i in rows)
    got = gather(parts)
    _assert_same(got, decode_batch(joined))
    assert got.ok.all() and len(got) == sum(len(r) for _, r in parts)


def test_row_bytes_splits_rows():
    b = decode_batch(
        frame(
            [
                k.sign_tx(accounts.transfer(CHAIN_ID, k.public_key, 0, BOB.public_key, 1)).encode()
                for k in KEYS
            ]
        )
    )
    assert row_bytes(b.sender) == [k.public_key for k in KEYS]
    assert row_bytes(b.digest) == [d.tobytes() for d in b.digest]


def transfer(keys: KeyPair, nonce: int, to: KeyPair, amount: int) -> bytes:
    return keys.sign_tx(accounts.transfer(CHAIN_ID, keys.public_key, nonce, to.public_key, amount)).encode()


def test_the_producer_decodes_and_hashes_nothing(chain_dir, monkeypatch):
    """Each submitted batch is parsed and hashed once, by its submitter; blocks that take
    parts of batches (block_txs_max = 3) keep every tx id with its row."""
    calls: list[str] = []
    native = batch_module._hot

    class CountingHot:
        def __getattr__(self, name):
            return getattr(native, name)

        def decode_frames(self, *args):
            calls.append(threading.current_thread().name)
            return native.decode_frames(*args)

    monkeypatch.setattr(batch_module, "_hot", CountingHot())
    with Chain(chain_dir, small_config(block_txs_max=3), NODE) as c:
        subs = [
            c.submit([transfer(ALICE, n, BOB, 10) for n in range(5)]),
            c.submit([transfer(CAROL, 0, BOB, 1), b"junk", transfer(CAROL, 1, ALICE, 2)]),
        ]
        receipts = [s.wait(10) for s in subs]
        assert calls == [threading.current_thread().name] * 2  # the submitter's, nothing else
        assert [r.code for r in receipts[0]] == [Reject.OK] * 5
        assert receipts[1][1] is None and subs[1].codes[1] != 0
        for sub, got in zip(subs, receipts, strict=True):
            for tx_id, receipt in zip(sub.tx_ids, got, strict=True):
                if receipt is None:
                    continue
                assert receipt.tx_id == tx_id
                height, pos, raw, stored = c.tx(tx_id)
                assert stored == receipt and c.block_txs(height)[pos] == raw
        assert c.height >= 3  # 7 transactions, at most 3 per block: batches were split
        assert (c.balance(ALICE.public_key), c.balance(BOB.public_key)) == (952, 51)


def test_gather_slices_runs_and_indexes_the_rest():
    """A run of rows inside a batch (sliced) next to scattered rows (indexed), and a batch twice."""
    first = decode_batch(frame([transfer(KEYS[i], 0, BOB, i + 1) for i in range(5)]))
    second = decode_batch(frame([transfer(KEYS[i], 1, CAROL, i + 7) for i in range(5)]))
    parts = [(first, np.array([1, 2, 3])), (second, np.array([0, 2, 4])), (first, np.array([4]))]
    joined = frame(
        [first.tx_bytes(i) for i in (1, 2, 3)] + [second.tx_bytes(i) for i in (0, 2, 4)] + [first.tx_bytes(4)]
    )
    _assert_same(gather(parts), decode_batch(joined))


def test_gather_keeps_the_order_of_rows_that_span_a_run_out_of_order():
    """[0, 2, 1, 3] spans rows 0..3 but is no run: it is gathered in the order given."""
    batch = decode_batch(frame([transfer(KEYS[i], 0, BOB, i + 1) for i in range(4)]))
    for order in ([0, 2, 1, 3], [3, 2, 1, 0], [1, 0]):
        joined = frame([batch.tx_bytes(i) for i in order])
        _assert_same(gather([(batch, np.array(order))]), decode_batch(joined))
