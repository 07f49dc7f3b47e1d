"""The network API in front of a 2-shard cluster (tierchain.api.backends.ClusterBackend;
docs/api.md, "Solo, replicated, cluster"): one submission spread over both shards, each
receipt naming its shard; per-shard heads, nonces and streams; keyed reads and proofs routed
to the key's shard and verified by the client; scans merged across shards.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from cluster_world import BASE, BY_SHARD, NODE, N, transfer
from tierchain.api.backends import ClusterBackend
from tierchain.api.client import ApiCallError, ApiClient
from tierchain.api.grpc_server import GrpcServer
from tierchain.api.service import NodeService
from tierchain.apps import accounts
from tierchain.config import ConfigError
from tierchain.sharding.cluster import Cluster
from tierchain.sharding.config import ClusterSpec


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("api-cluster") / "c", BASE, NODE.seed, N) as cluster:
        srv = GrpcServer(NodeService(ClusterBackend(cluster)), "127.0.0.1:0").start()
        try:
            yield cluster, f"127.0.0.1:{srv.port}"
        finally:
            srv.stop()


def test_one_api_over_every_shard(served):
    cluster, target = served
    (a0, b0), (a1, b1) = BY_SHARD[0][:2], BY_SHARD[1][:2]

    async def go():
        async with ApiClient(target) as api:
            info = await api.info()
            assert (info.shard_count, info.chain_id) == (2, BASE.chain_id)
            txs = [transfer(BASE.chain_id, a0, 0, b0, 3), transfer(BASE.chain_id + 1, a1, 0, b1, 4)]
            sub = await api.submit(txs, wait_s=20)
            assert [a.code for a in sub.admissions] == ["OK", "OK"]
            assert sorted(r.shard for r in sub.receipts) == [0, 1]
            assert all(r.code == "OK" for r in sub.receipts)
            ids = [a.tx_id for a in sub.admissions]
            assert [(await api.tx(t)).shard for t in ids] == [0, 1]
            got = await api.await_receipts(ids, timeout_s=5)
            assert not got.timeout and [r.shard for r in got.receipts] == [0, 1]
            # signed for shard 1's chain id, writing shard 0's keys: refused at admission
            wrong = await api.submit([transfer(BASE.chain_id + 1, a0, 1, b0, 1)])
            assert wrong.admissions[0].code == "WRONG_SHARD"
            # per shard: heads, nonces
            heads = [await api._unary("GetHead", _req("GetHeadRequest", shard=s)) for s in range(N)]
            assert [h.chain_id for h in heads] == [BASE.chain_id, BASE.chain_id + 1]
            assert [h.height for h in heads] == cluster.heights()
            assert await api._unary(
                "GetNonce", _req("GetNonceRequest", public_key=a1.public_key, shard=1)
            ) == _nonce(1)
            with pytest.raises(ApiCallError) as info_:
                await api._unary("GetHead", _req("GetHeadRequest", shard=2))
            assert info_.value.code == "BAD_ARGUMENT"
            # keyed: routed to the key's shard, proved there, verified here
            key = accounts.balance_key(b1.public_key)
            assert await api.state(key) == cluster.call(1, "state_get", key)
            proof = await api.prove_state(key, trusted=NODE.public_key)
            assert proof.found and int.from_bytes(proof.value, "little") == cluster.call(
                1, "balance", b1.public_key
            )
            await api.prove_tx(ids[1], trusted=NODE.public_key)
            # a scan merges both shards' keys in order
            pairs = await api.scan(b"bal/", limit=100)
            keys = [k for k, _ in pairs]
            assert keys == sorted(keys) and len(keys) == len(set(keys)) >= len(BY_SHARD[0]) + len(BY_SHARD[1])
            # a stream of shard 1's blocks
            seen = []
            async for block in api._stream("StreamBlocks", _req("StreamBlocksRequest", shard=1)):
                seen.append(block.header.chain_id)
                if len(seen) == 2:
                    break
            assert seen == [BASE.chain_id + 1] * 2

    asyncio.run(go())


def _req(name: str, **fields):
    from tierchain.api import schema

    return schema.message(name)(**fields)


def _nonce(n: int):
    from tierchain.api import schema

    return schema.message("Nonce")(nonce=n)


def test_the_cluster_file_names_the_api_listeners(tmp_path):
    path = tmp_path / "cluster.toml"
    head = '[cluster]\nkey_file = "node.key"\nshards = ["local", "local"]\n'
    path.write_text(head + 'api_listen = "127.0.0.1:7610"\ngrpc_listen = "127.0.0.1:7611"\n')
    spec = ClusterSpec.load(path)
    assert (spec.api_listen, spec.grpc_listen) == ("127.0.0.1:7610", "127.0.0.1:7611")
    path.write_text(
        head + 'tls_cert_file = "api.pem"\ntls_key_file = "api.key"\ntls_client_ca_file = "ca.pem"\n'
    )
    spec = ClusterSpec.load(path)
    assert (spec.tls_cert_file, spec.tls_client_ca_file) == (tmp_path / "api.pem", tmp_path / "ca.pem")
    path.write_text(head + 'tls_cert_file = "api.pem"\n')
    with pytest.raises(ConfigError, match="go together"):
        ClusterSpec.load(path)
    path.write_text(head + 'grpc_listen = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"cluster\.grpc_listen: expected HOST:PORT"):
        ClusterSpec.load(path)


def test_the_http_gateway_alone_serves_the_cluster(served):
    import http.client
    import json

    from tierchain.api.gateway import GatewayServer
    from tierchain.api.metrics import SourceMetrics
    from tierchain.cli.cluster import cluster_health

    cluster, _ = served
    metrics = SourceMetrics()
    metrics.add_source(lambda: cluster_health(cluster, {}))
    srv = GatewayServer(NodeService(ClusterBackend(cluster)), "127.0.0.1", 0, metrics=metrics).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.address[1], timeout=10)
        conn.request("POST", "/api/v1/GetInfo", b"{}")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["shard_count"] == 2
        conn.request("POST", "/api/v1/GetHead", json.dumps({"shard": 1}).encode())
        r = conn.getresponse()
        assert int(json.loads(r.read())["chain_id"]) == BASE.chain_id + 1
        conn.request("GET", "/health")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}
        conn.request("GET", "/metrics")  # the shards' health
        r = conn.getresponse()
        text = r.read().decode()
        assert r.status == 200 and r.getheader("content-type").startswith("text/plain")
        for shard, height in enumerate(cluster.heights()):
            assert f'tierchain_shard_up{{shard="{shard}"}} 1.0' in text
            heard = re.search(rf'^tierchain_shard_height{{shard="{shard}"}} (\S+)$', text, re.M)
            assert heard and 0 <= float(heard.group(1)) <= height  # as last heard (a ping ago)
        conn.close()
    finally:
        srv.stop()
