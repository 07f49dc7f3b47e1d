"""Cluster of shard processes: placement, routing, backpressure, supervision (kill -9 under load)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from cluster_world import ACCOUNTS, BALANCE, BASE, BY_SHARD, HOME, NODE, N, random_transfers, transfer
from tierchain.engine.route import route_keys
from tierchain.errors import Reject
from tierchain.sharding.cluster import Cluster, ShardUnavailable, gather_frames, shard_configs
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    assert all(len(group) >= 2 for group in BY_SHARD), HOME
    with Cluster(tmp_path_factory.mktemp("cluster"), BASE, NODE.seed, N) as c:
        yield c


def test_placement_keeps_the_genesis_value_once():
    configs = shard_configs(BASE, N)
    assert [c.chain_id for c in configs] == [40, 41]
    for k, home in zip(ACCOUNTS, HOME, strict=True):
        balances = [
            next(a.balance for a in c.genesis_accounts if a.public_key == k.public_key) for c in configs
        ]
        assert balances[home] == BALANCE and sum(balances) == BALANCE


def test_gather_frames_is_the_framed_subset():
    txs = [transfer(40, ACCOUNTS[0], i, ACCOUNTS[1], 1 + i) for i in range(7)]
    batch = decode_batch(frame(txs))
    rows = np.array([0, 3, 5])
    assert gather_frames(batch, rows) == frame([txs[0], txs[3], txs[5]])
    assert gather_frames(batch, np.arange(2, 5)) == frame(txs[2:5])  # a run: one slice


def test_same_shard_transfers_commit_on_their_routed_shard(cluster):
    txs, expect = [], []
    for s, group in enumerate(BY_SHARD):
        a, b = group[0], group[1]
        for amount, (x, y) in enumerate([(a, b), (b, a), (a, b)], start=1):
            nonce = sum(1 for t in expect if t[1] is x)
            txs.append(transfer(cluster.chain_id(s), x, nonce, y, amount))
            expect.append((s, x, y, amount))
    # Refused by the scheduler: signed for the wrong shard, and writes that span shards.
    a0, a1 = BY_SHARD[0][0], BY_SHARD[1][0]
    txs.append(transfer(cluster.chain_id(1), BY_SHARD[0][1], 0, BY_SHARD[0][0], 5))
    txs.append(transfer(cluster.chain_id(0), a0, 9, a1, 5))
    sub = cluster.submit(txs)
    assert sub.codes[: len(expect)].tolist() == [0] * len(expect)
    assert sub.codes[len(expect) :].tolist() == [Reject.WRONG_SHARD] * 2
    receipts = sub.wait(20)
    assert [r.code for r in receipts[: len(expect)]] == [0] * len(expect)
    for i, raw in enumerate(txs[: len(expect)]):
        first_write = decode_batch(frame([raw])).keys_of(0)[1][0]
        assert sub.shards[i] == route_keys([first_write], N)[0] == expect[i][0]
        s = expect[i][0]
        hit = cluster.call(s, "tx", sub.tx_ids[i])
        assert hit is not None and hit[0] == sub.heights[i] and hit[2] == raw
        assert cluster.call(1 - s, "tx", sub.tx_ids[i]) is None
        assert cluster.tx(sub.tx_ids[i])[0] == s
    for s, group in enumerate(BY_SHARD):
        a, b = group[0], group[1]
        assert cluster.call(s, "balance", a.public_key) == BALANCE - 1 + 2 - 3
        assert cluster.call(s, "balance", b.public_key) == BALANCE + 1 - 2 + 3
        assert cluster.call(1 - s, "balance", a.public_key) == 0  # balances live on the home shard only


def test_local_shards_are_sent_their_rows_tx_ids_and_commit_them(cluster, monkeypatch):
    """Decoded once: each local shard gets its rows' frames with the ids the scheduler computed."""
    sent: list[tuple[int, tuple]] = []
    for s in cluster.shards:
        assert s.link.trusted

        def record(msg, link=s.link, index=s.index):
            sent.append((index, msg))
            return type(link).send(link, msg)

        monkeypatch.setattr(s.link, "send", record)
    txs = []
    for s, group in enumerate(BY_SHARD):
        a, b = group[-1], group[-2]
        base = cluster.call(s, "nonce", a.public_key)
        txs += [transfer(cluster.chain_id(s), a, base + i, b, 1) for i in range(3)]
    txs.insert(2, b"junk")  # refused by the scheduler's decoder: sent to no shard
    sub = cluster.submit(txs)
    assert [r.code for r in sub.wait(20) if r is not None] == [0] * 6
    parts = [(i, m) for i, m in sent if m[0] in ("submit", "submit_ids")]
    assert sorted(i for i, _ in parts) == list(range(N))
    for shard, msg in parts:
        assert msg[0] == "submit_ids"
        rows = np.flatnonzero(sub.shards == shard)
        assert msg[2] == frame([txs[r] for r in rows])
        assert msg[3] == b"".join(sub.tx_ids[r] for r in rows)


def test_full_shard_queue_refuses_that_shards_rows(cluster):
    s = 0
    a, b = BY_SHARD[s][2], BY_SHARD[s][3] if len(BY_SHARD[s]) > 3 else BY_SHARD[s][0]
    c, d = BY_SHARD[1][2], BY_SHARD[1][3] if len(BY_SHARD[1]) > 3 else BY_SHARD[1][0]
    other = [transfer(cluster.chain_id(1), c, cluster.call(1, "nonce", c.public_key), d, 1)]
    base = cluster.call(s, "nonce", a.public_key)
    mine = [transfer(cluster.chain_id(s), a, base + i, b, 1) for i in range(6)]
    saved = cluster.queue_max
    cluster.queue_max = 4
    try:
        sub = cluster.submit(mine + other)
    finally:
        cluster.queue_max = saved
    assert sub.codes.tolist() == [Reject.MEMPOOL_FULL] * 6 + [0]
    assert sub.wait(20)[6].code == 0


def test_killed_shard_restarts_without_losing_committed_blocks(tmp_path):
    acks: list[tuple[bytes, int, int, float]] = []  # tx id, shard, height, time acknowledged
    stop = threading.Event()
    errors: list[BaseException] = []

    with Cluster(tmp_path / "c", BASE, NODE.seed, N) as cluster:

        def load(s: int) -> None:
            group = BY_SHARD[s]
            rng = np.random.default_rng(s)
            nonces = {k.public_key: 0 for k in group}
            try:
                while not stop.is_set():
                    sub = cluster.submit(random_transfers(cluster.chain_id(s), group, nonces, rng))
                    receipts = sub.wait(30)
                    now = time.monotonic()
                    ok = (sub.codes == 0) & ~sub.dropped
                    for row in np.flatnonzero(ok).tolist():
                        assert receipts[row] is not None and receipts[row].code == 0
                        acks.append((sub.tx_ids[row], s, int(sub.heights[row]), now))
                    if not ok.all():  # refused or lost with the crashed process: resync nonces
                        while not stop.is_set():
                            try:
                                nonces = {k.public_key: cluster.call(s, "nonce", k.public_key) for k in group}
                                break
                            except ShardUnavailable:
                                time.sleep(0.05)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=load, args=(s,)) for s in range(N)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        victim = 0
        acked_before = [a for a in acks if a[1] == victim]
        killed_at = time.monotonic()
        os.kill(cluster.pid(victim), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not (cluster.restarts(victim) == 1 and cluster.is_up(victim)):
            assert time.monotonic() < deadline, "shard not restarted"
            time.sleep(0.02)
        restarted_at = time.monotonic()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors

        assert acked_before, "no load on the victim before the kill"
        others_during = [a for a in acks if a[1] != victim and killed_at < a[3] < restarted_at]
        assert others_during, "the other shard stopped committing while the victim restarted"
        assert [a for a in acks if a[1] == victim and a[3] > restarted_at], "victim did not resume"
        # Every transaction reported committed is still there, at the height reported.
        for tx_id, s, height, _ in acks:
            hit = cluster.call(s, "tx", tx_id)
            assert hit is not None and hit[0] == height, (s, height)
        assert cluster.restarts(1 - victim) == 0
        print(
            f"acks {len(acks)}, victim down {restarted_at - killed_at:.2f} s, other shard acked "
            f"{len(others_during)} meanwhile"
        )


def test_hung_shard_is_detected_by_heartbeat_and_replaced(tmp_path):
    """SIGSTOP: the process neither dies nor answers; only the heartbeat can tell."""
    with Cluster(tmp_path / "c", BASE, NODE.seed, N, heartbeat_s=0.2, heartbeat_timeout_s=3.0) as cluster:
        victim = 0
        a, b = BY_SHARD[victim][0], BY_SHARD[victim][1]
        committed = cluster.submit([transfer(cluster.chain_id(victim), a, i, b, 1) for i in range(5)])
        assert [r.code for r in committed.wait(20)] == [0] * 5
        old_pid, before = cluster.pid(victim), cluster.restarts(victim)
        os.kill(old_pid, signal.SIGSTOP)
        # Admitted to the stopped process (or refused while it is replaced): settled either way.
        stuck = cluster.submit([transfer(cluster.chain_id(victim), a, 5, b, 1)], timeout=60)
        other = cluster.submit([transfer(cluster.chain_id(1), BY_SHARD[1][0], 0, BY_SHARD[1][1], 1)])
        assert other.wait(20)[0].code == 0  # the other shard is not held up meanwhile
        deadline = time.monotonic() + 60
        while not (cluster.restarts(victim) > before and cluster.is_up(victim)):
            assert time.monotonic() < deadline, "hung shard not replaced"
            time.sleep(0.05)
        assert cluster.pid(victim) != old_pid
        with pytest.raises(ProcessLookupError):
            os.kill(old_pid, 0)  # the hung process was killed (and reaped), not left behind
        stuck.wait(20)
        assert stuck.codes[0] == Reject.SHUTTING_DOWN or stuck.dropped[0] or stuck.receipts[0].code == 0
        for row, tx_id in enumerate(committed.tx_ids):  # nothing reported committed was lost
            assert cluster.call(victim, "tx", tx_id)[0] == committed.heights[row]
        assert cluster.call(victim, "nonce", a.public_key) in (5, 6)
        assert "heartbeat" in cluster.status()[victim]["last_error"]
