"""A cluster started from a cluster file runs the apps of its base chain.toml.

The cluster file has no ``apps`` key on purpose: ``[chain] apps`` of the base config
(``cluster.chain_config``) is the one place a cluster's apps are named, and
``shard_configs`` carries it into every shard's config (so into every shard's genesis
identity, which the scheduler checks against a remote shard's). Here one shard is a
local process of the scheduler and one a ``tierchain shard serve`` process reading the
same file; both run the embedder's app (docs/example_app.py) and its genesis hook.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import blake3
import nacl.pwhash
import pytest

from cluster_world import _serve
from tierchain.config import ChainConfig, ConfigError, GenesisAccount
from tierchain.crypto import KeyPair, save_key_file
from tierchain.engine import apps, route
from tierchain.errors import Reject
from tierchain.sharding.cluster import Cluster
from tierchain.sharding.config import ClusterSpec

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
import example_app  # noqa: E402  (docs/example_app.py: the embedder's app)

PASS = "apps cluster test"
NODE = KeyPair.from_seed(b"apps-cluster-node".ljust(32, b"\0"))
WITH_NOTARY = (*apps.DEFAULT_APPS, example_app.APP.name)
BASE = ChainConfig(
    chain_id=60,
    block_interval_ms=2,
    apps=WITH_NOTARY,
    genesis_accounts=(GenesisAccount(NODE.public_key, ("registrar", "notary"), 0),),
)
N = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster_file(tmp: Path, port: int) -> Path:
    (tmp / "chain.toml").write_text(BASE.to_toml())
    opslimit, memlimit = nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN
    save_key_file(tmp / "node.key", NODE, PASS, opslimit=opslimit, memlimit=memlimit)
    path = tmp / "cluster.toml"
    path.write_text(
        '[cluster]\nchain_config = "chain.toml"\nkey_file = "node.key"\nroot = "shards"\n'
        f'control = "127.0.0.1:{_free_port()}"\nshards = ["local", "127.0.0.1:{port}"]\n'
        "heartbeat_s = 0.3\nheartbeat_timeout_s = 4.0\n"
    )
    return path


def _digest_on(shard: int, placement) -> bytes:
    """A digest whose stamp key routes to ``shard``."""
    for i in range(1000):
        digest = blake3.blake3(b"invoice %d" % i).digest()
        if int(route.route_keys([example_app.stamp_key(digest)], N, placement)[0]) == shard:
            return digest
    raise AssertionError("no digest in 1000 tries")


def test_a_cluster_file_runs_the_apps_of_its_base_chain_toml(tmp_path, monkeypatch):
    monkeypatch.setenv(apps.APPS_ENV, "example_app:APP")  # how every process finds "notary"
    port = _free_port()
    spec_path = _cluster_file(tmp_path, port)
    spec = ClusterSpec.load(spec_path)
    assert spec.base().apps == WITH_NOTARY  # read from chain.toml, the one place
    env = dict(
        os.environ,
        TIERCHAIN_PASSPHRASE=PASS,
        PYTHONPATH=os.pathsep.join([str(ROOT / "core"), str(DOCS)]),
    )
    server = _serve(spec_path, 1, port, env)
    try:
        with Cluster(spec.root, spec.base(), NODE.seed, spec.n_shards, **spec.cluster_kwargs()) as cluster:
            assert [s["kind"] for s in cluster.status()] == ["local", "remote"]
            txs = []
            for shard in range(N):
                assert cluster.call(shard, "state_get", example_app.VERSION_KEY) == b"\x01"  # its genesis
                digest = _digest_on(shard, cluster.placement)
                stamp = example_app.stamp(cluster.chain_id(shard), NODE.public_key, 0, digest)
                txs.append(NODE.sign_tx(stamp).encode())
            sub = cluster.submit(txs)
            assert sub.shards.tolist() == [0, 1]
            receipts = sub.wait(60)
            # Without the app in the shards' genesis these would be UNKNOWN_OP.
            assert [r.code for r in receipts] == [Reject.OK, Reject.OK]
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_cluster_file_has_no_apps_key(tmp_path):
    """Apps are named once, in the base chain.toml; a cluster file naming them is refused."""
    spec_path = _cluster_file(tmp_path, _free_port())
    text = spec_path.read_text()
    spec_path.write_text(text.replace("[cluster]\n", '[cluster]\napps = ["notary"]\n', 1))
    with pytest.raises(ConfigError, match=r"cluster\.apps"):
        ClusterSpec.load(spec_path)
