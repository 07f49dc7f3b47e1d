"""pytest-benchmark micro-benchmarks of the native primitives.

Run: ``.venv/bin/python -m pytest bench`` (``TIERCHAIN_BENCH_TXS`` sets the size,
default 4096). CI runs them with tiny parameters so they cannot rot; the figures
are reported by pytest-benchmark, never asserted. Each native benchmark has its
naive counterpart in the same group so the table shows the ratio of one run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nacl.signing
import pytest
import tierchain_native

from tierchain.crypto import merkle
from tierchain.engine import schedule
from tierchain.wire.batch import decode_batch

sys.path.insert(0, str(Path(__file__).parent))
from primitives import naive_decode, naive_merkle_root
from workloads import transfers

N = int(os.environ.get("TIERCHAIN_BENCH_TXS", "4096"))


@pytest.fixture(scope="module")
def work():
    w = transfers(N)
    return w, decode_batch(w.buf)


@pytest.mark.benchmark(group="verify")
def test_verify_batch_native(benchmark, work):
    _, b = work
    pks, msgs, sigs = b.sender.tobytes(), b.digest.tobytes(), b.signature.tobytes()
    out = benchmark(tierchain_native.verify_batch_packed, pks, msgs, sigs)
    assert out == b"\x01" * N


@pytest.mark.benchmark(group="verify")
def test_verify_pynacl_one_by_one(benchmark, work):
    _, b = work
    items = [(bytes(b.sender[i]), bytes(b.digest[i]), bytes(b.signature[i])) for i in range(min(N, 2048))]

    def run():
        for pk, msg, sig in items:
            nacl.signing.VerifyKey(pk).verify(msg, sig)

    benchmark(run)


@pytest.mark.benchmark(group="merkle")
def test_merkle_root_native(benchmark, work):
    _, b = work
    leaves = [bytes(d) for d in b.digest]
    assert benchmark(merkle.root, leaves) == naive_merkle_root(leaves)


@pytest.mark.benchmark(group="merkle")
def test_merkle_root_python_loop(benchmark, work):
    _, b = work
    benchmark(naive_merkle_root, [bytes(d) for d in b.digest])


@pytest.mark.benchmark(group="decode")
def test_decode_batch_native(benchmark, work):
    w, _ = work
    assert benchmark(decode_batch, w.buf).code.sum() == 0


@pytest.mark.benchmark(group="decode")
def test_decode_python(benchmark, work):
    w, _ = work
    benchmark(naive_decode, w.txs)


@pytest.mark.benchmark(group="schedule")
def test_schedule_native(benchmark, work):
    _, b = work
    benchmark(schedule.schedule, b)


@pytest.mark.benchmark(group="schedule")
def test_schedule_python(benchmark, work):
    w, _ = work
    txs = [t for t, _ in naive_decode(w.txs)]
    benchmark(lambda: schedule.schedule_reference(schedule.access_sets(txs)))
