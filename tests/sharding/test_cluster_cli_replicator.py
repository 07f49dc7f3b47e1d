"""`tierchain cluster start` runs the replicator next to the coordinator when the base chain's
apps have replicated records (finance's, here), and `cluster status` shows its health
(docs/sharding.md "Operator CLI"). The organization admitted on the primary before the start
is on shard 1 after it.
"""

from __future__ import annotations

import json
import subprocess
import time

from click.testing import CliRunner

from cluster_world import CLI, ENV, _free_port, save_cheap_key
from finance_cluster_world import ShardLedger
from finance_world import SECRET, kp
from tierchain.apps import xshard
from tierchain.apps.coordinator import scan_all
from tierchain.apps.finance.client import Finance
from tierchain.cli.cluster import _print_status
from tierchain.cli.main import main
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.engine.apps import DEFAULT_APPS
from tierchain.engine.apps import resolve as resolve_apps
from tierchain.engine.route import PRIMARY_SHARD
from tierchain.sharding.cluster import Cluster

N = 2
NODE = kp("cli-repl-node")
COORD = kp("cli-repl-coordinator")
CORE = kp("cli-repl CoreCo")
BASE = ChainConfig(
    chain_id=93,
    block_interval_ms=2,
    apps=DEFAULT_APPS,  # accounts, xshard, finance: finance's committee records are replicated
    genesis_accounts=(
        GenesisAccount(NODE.public_key, ("registrar", "committee"), 0),
        GenesisAccount(COORD.public_key, ("coordinator",), 0),
    ),
)


def _records(cluster: Cluster, shard: int) -> dict[bytes, bytes]:
    prefixes = xshard.replicated_prefixes(resolve_apps(BASE.apps))
    return {k: v for p in prefixes for k, v in scan_all(cluster, shard, p)}


def _wait(cond, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_cluster_status_reports_the_replicator(tmp_path):
    assert xshard.replicated_prefixes(resolve_apps(BASE.apps))
    (tmp_path / "chain.toml").write_text(BASE.to_toml())
    save_cheap_key(tmp_path / "node.key", NODE)
    save_cheap_key(tmp_path / "coord.key", COORD)
    spec = tmp_path / "cluster.toml"
    spec.write_text(
        "[cluster]\n"
        'chain_config = "chain.toml"\nkey_file = "node.key"\nroot = "shards"\n'
        f'control = "127.0.0.1:{_free_port()}"\n'
        'shards = ["local", "local"]\nheartbeat_s = 0.3\nheartbeat_timeout_s = 4.0\n'
        'coordinator_key_file = "coord.key"\n'
    )
    # the committee admits an organization on the primary, before the scheduler runs
    with Cluster(tmp_path / "shards", BASE, NODE.seed, N) as cluster:
        primary = Finance(ShardLedger(cluster, PRIMARY_SHARD), SECRET)
        assert primary.party(NODE).propose_admit("CoreCo", ("supplier",), CORE.public_key).ok
        admitted_at = cluster.call(PRIMARY_SHARD, "height")
        records = _records(cluster, PRIMARY_SHARD)
        assert records and not _records(cluster, 1)

    runner = CliRunner()
    start = subprocess.Popen([*CLI, "cluster", "start", str(spec)], env=ENV)
    try:

        def synced() -> dict | None:
            r = runner.invoke(main, ["cluster", "status", str(spec), "--json", "--timeout", "2"])
            assert start.poll() is None, "cluster start exited"
            reply = json.loads(r.output) if r.exit_code == 0 else None
            rep = reply and reply.get("replicator")
            return reply if rep and rep["synced_height"] is not None else None

        _wait(lambda: synced() is not None, "the replicator did not report an idle step")
        rep = synced()["replicator"]
        assert rep["synced_height"] >= admitted_at
        assert rep["records"] == len(records) and rep["failed"] == 0 and rep["step_errors"] == 0
        assert -1 < time.time() - rep["idle_at"] < 60
        assert set(rep) == {
            "synced_height",
            "idle_at",
            "records",
            "shipped",
            "failed",
            "step_errors",
            "last_error",
        }
        # the claim courier runs beside it (finance is in the apps): nothing to carry here
        _wait(lambda: synced()["courier"]["pending"] is not None, "the courier did not step")
        cou = synced()["courier"]
        assert cou["pending"] == 0 and cou["failed"] == 0 and cou["step_errors"] == 0, cou
        text = runner.invoke(main, ["cluster", "status", str(spec)]).output
        assert "replicator: every shard at primary height" in text, text
        assert "claim courier: 0 claims pending" in text, text
        assert f"{len(records)} records" in text, text
        r = runner.invoke(main, ["cluster", "stop", str(spec), "--timeout", "60"])
        assert r.exit_code == 0, r.output
        assert start.wait(30) == 0
    finally:
        if start.poll() is None:
            start.kill()
            start.wait()

    with Cluster(tmp_path / "shards", BASE, NODE.seed, N) as cluster:
        assert _records(cluster, 1) == _records(cluster, PRIMARY_SHARD) == records


def test_status_prints_replication_health(capsys):
    reply = {"state": "running", "control": "x", "pid": 1, "n_shards": 0, "shards": [], "replicator": None}
    _print_status(reply)
    assert "replicator" not in capsys.readouterr().out  # not running: no line
    reply["replicator"] = {
        "synced_height": None,
        "idle_at": None,
        "records": None,
        "shipped": None,
        "failed": None,
        "step_errors": 3,
        "last_error": "ShardUnavailable: shard 1 is down",
    }
    _print_status(reply)
    out = capsys.readouterr().out
    assert "replicator: not yet found every shard in sync" in out
    assert "3 steps failed in a row (ShardUnavailable: shard 1 is down)" in out
    reply["replicator"].update(
        synced_height=12, idle_at=time.time() - 2, records=5, shipped=1, failed=0, step_errors=0
    )
    _print_status(reply)
    out = capsys.readouterr().out
    assert "every shard at primary height 12 (2." in out and "5 records, 1 entries shipped" in out
    assert "failed in a row" not in out
