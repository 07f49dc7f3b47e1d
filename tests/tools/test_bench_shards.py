"""bench/shards.py helpers on a very small world: the signed workloads are what the
benchmark claims (single-shard, admitted, committed) and the cross-shard part resolves
every transfer in 4 chain transactions. Figures are not checked."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import shards
from tierchain.engine.route import route_batch
from tierchain.sharding.cluster import Cluster
from tierchain.wire.batch import decode_batch

P = dataclasses.replace(
    shards.TINY,
    accounts=300,
    senders=32,
    batch_txs=64,
    seconds=0.0,
    warmup_s=0.0,
    tx_rate_guess=1,
    sync="none",
    block_interval_ms=2,
    router_reps=1,
    xfers=24,
    xfer_senders=4,
    xfer_batch=8,
    lat_rounds=2,
    lat_batch=2,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    shards.CACHE = tmp_path_factory.mktemp("cache")
    with multiprocessing.get_context("fork").Pool(2) as pool:
        world = shards.make_world(P, pool)
        streams = {n: shards.tps_streams(P, world, n, pool) for n in (1, 2)}
        xw = shards.xfer_workloads(P, world, pool)
    return world, streams, xw


def test_every_presigned_tx_is_single_shard_for_its_chain(built):
    _, streams, _ = built
    for n in (1, 2):
        batches = [b for s in streams[n] for b in s]
        r = shards.router_cost(batches, n, reps=1)  # raises if any row would be WRONG_SHARD
        assert r["txs"] == sum(len(decode_batch(b)) for b in batches) >= P.txs_for(n)
        assert r["total_us_per_tx"] > 0
        for buf in batches[:4]:
            b = decode_batch(buf)
            assert b.ok.all()
            assert (b.chain_id == shards.BASE_CHAIN_ID + route_batch(b, n)).all()
    # both shards get work in the 2-shard workload
    b = decode_batch(streams[2][0][0])
    assert set(route_batch(b, 2).tolist()) == {0, 1}


def test_admitted_committed_and_cross_shard_resolved(built, tmp_path):
    world, streams, xw = built
    with Cluster(tmp_path / "c", world.config(), shards.NODE.seed, 2) as cluster:
        subs = [cluster.submit(s[0]) for s in streams[2]]
        for sub in subs:
            assert sub.accepted == len(sub.codes), sub.rejections()[:3]
            assert all(r is not None and r.code == 0 for r in sub.wait(30))
        x = shards.xshard_cost(cluster, P, xw)
    assert x["cross_not_committed"] == 0
    assert x["cross_committed"] == P.lat_rounds * P.lat_batch + P.xfers
    assert x["chain_txs_per_transfer"] == 4.0
    assert x["burst"]["local"]["transfers"] == P.xfers == x["burst"]["cross"]["transfers"]
    assert x["light"]["cross"]["latency_ms_p50"] > 0 and x["burst"]["cross"]["per_s"] > 0
