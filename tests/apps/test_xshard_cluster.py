"""Cross-shard transfers across shard processes: the coordinator resolves every one,
value is conserved, and killing the coordinator and a participant mid-protocol
leaves nothing half-done once a new coordinator has run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import xshard_world as w
from tierchain.apps import xshard
from tierchain.apps.coordinator import Coordinator
from tierchain.apps.xshard import Credit, Lock, Status
from tierchain.sharding.cluster import Cluster

TESTS = Path(__file__).parents[1]  # xshard_world.py and xshard_worker.py


def records(cluster, kind: bytes) -> list[tuple[bytes, bytes]]:
    return [kv for s in range(w.N) for kv in cluster.call(s, "state_scan", xshard.pin(s) + kind, 10_000)]


def check_resolved(cluster) -> tuple[int, int]:
    """Nothing pending; every decision matched at its destination; value conserved."""
    assert records(cluster, b"xl/") == [] and records(cluster, b"xc/") == []
    decided = [Lock.from_record(k, v) for k, v in records(cluster, b"xd/")]
    finished = {
        (c.src, c.sender, c.nonce): c for c in (Credit.from_record(k, v) for k, v in records(cluster, b"xf/"))
    }
    committed = aborted = 0
    for lock in decided:
        credit = finished.get((lock.src, lock.sender, lock.nonce))
        if lock.status == Status.COMMITTED:
            committed += 1
            assert credit is not None and credit.status == Status.COMMITTED and credit.amount == lock.amount
        else:
            aborted += 1
            assert lock.status == Status.ABORTED
            assert credit is None or credit.status == Status.ABORTED
    assert len(finished) <= len(decided)
    assert w.cluster_balance(cluster) == w.TOTAL
    return committed, aborted


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path / "cluster", w.BASE, w.NODE.seed, w.N) as c:
        yield c


def test_transfers_across_shards_commit_and_conserve_value(cluster):
    rng = random.Random(1)
    pairs = w.cross_pairs(rng, 16)
    amounts = [rng.randrange(1, 1000) for _ in pairs]
    txs = [w.xtransfer(s, 0, r.public_key, a, 60_000) for (s, r), a in zip(pairs, amounts, strict=True)]
    # two that must abort: unknown recipient, and a destination that is not the recipient's shard
    lone = [u for u in w.USERS if u not in {s for s, _ in pairs}]
    bad_to = w.xtransfer(lone[0], 0, w.STRANGER.public_key, 10, 60_000, dst=1 - w.home(lone[0].public_key))
    other = next(
        u for u in w.USERS if w.home(u.public_key) == w.home(lone[1].public_key) and u is not lone[1]
    )
    bad_dst = w.xtransfer(lone[1], 0, other.public_key, 10, 60_000, dst=1 - w.home(lone[1].public_key))
    sub = cluster.submit([*txs, bad_to, bad_dst])
    assert sub.accepted == len(txs) + 2, sub.rejections()
    assert all(r.code == 0 for r in sub.wait(30))
    assert w.cluster_balance(cluster) == w.TOTAL - sum(amounts) - 20  # in escrow
    report = Coordinator(cluster, w.COORD).resolve(timeout=60)
    assert report.idle
    assert check_resolved(cluster) == (16, 2)
    want = {u.public_key: w.BALANCE for u in w.USERS}
    for (s, r), a in zip(pairs, amounts, strict=True):
        want[s.public_key] -= a
        want[r.public_key] += a
    for u in w.USERS:
        assert cluster.call(w.home(u.public_key), "balance", u.public_key) == want[u.public_key]


def test_a_cross_shard_write_set_is_refused_without_the_protocol(cluster):
    s = w.USERS[0]
    to = next(u for u in w.USERS if w.home(u.public_key) != w.home(s.public_key))
    from tierchain.apps import accounts

    tx = accounts.transfer(w.BASE.chain_id + w.home(s.public_key), s.public_key, 0, to.public_key, 5)
    sub = cluster.submit([s.sign_tx(tx).encode()])
    assert sub.rejections()[0][1].name == "WRONG_SHARD"


@pytest.mark.slow
def test_killing_the_coordinator_and_a_participant_mid_protocol(tmp_path):
    root, progress = tmp_path / "cluster", tmp_path / "progress"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent / "core"), str(TESTS)]))
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "xshard_worker.py"), str(root), str(progress)],
        env=env,
        start_new_session=True,
    )
    try:

        def wait_prepared(at_least: int, timeout: float = 120) -> list[int]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                assert proc.poll() is None, "worker exited"
                if progress.exists() and (parts := progress.read_text().split()):
                    if int(parts[0]) >= at_least:
                        return [int(p) for p in parts[1:]]
                time.sleep(0.05)
            raise AssertionError("worker made no progress")

        pids = wait_prepared(100)
        os.kill(pids[1], signal.SIGKILL)  # a participant dies mid-protocol; the cluster restarts it
        wait_prepared(int(progress.read_text().split()[0]) + 100)
        time.sleep(random.Random(3).uniform(0.0, 0.3))
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and every shard, at once
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _wait_group_gone(proc.pid)
    with Cluster(root, w.BASE, w.NODE.seed, w.N) as cluster:
        pending = len(records(cluster, b"xl/")) + len(records(cluster, b"xc/"))
        Coordinator(cluster, w.COORD, margin_ms=200).resolve(timeout=120)
        committed, aborted = check_resolved(cluster)
    acknowledged = int(progress.read_text().split()[0])  # prepares the worker saw committed
    assert pending > 0, "the kill did not land mid-protocol"
    # Every acknowledged prepare is decided (safety is in check_resolved). How many commit
    # is timing: with 1.5 s deadlines, a slow participant restart can let every lock in
    # flight expire before the final kill (seen once: 0 committed); the commit path itself
    # is asserted exactly in test_transfers_across_shards_commit_and_conserve_value.
    assert committed + aborted >= acknowledged
    print(f"pending after the kill: {pending}; committed {committed}, aborted {aborted}")


def _wait_group_gone(pgid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("shard processes of the killed worker are still running")
