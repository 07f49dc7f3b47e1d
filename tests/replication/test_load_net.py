"""``tierchain load --net``: ``net init --load-accounts`` funds the load workload in genesis and
records it in net.toml; ``load --net`` refuses a network it cannot sign for, and drives a
running one (real CometBFT processes on loopback) through its validators' HTTP APIs,
reporting the solo load's figures (docs/replication.md)."""

from __future__ import annotations

import json
import tomllib

import pytest

from net_world import (
    cli,
    cometbft_or_skip,
    free_base_port,
    net_start,
    pids,
    show_logs,
    status,
    teardown,
    wait_for,
)
from tierchain.config import ChainConfig, ConfigError, SyntheticAccounts
from tierchain.replication import net as netlib
from tierchain.tools import loadgen

cometbft_or_skip()
pytestmark = pytest.mark.usefixtures("fast_kdf")


def test_init_funds_the_load_workload_and_records_it(tmp_path) -> None:
    d = tmp_path / "net"
    r = cli(
        "net", "init", str(d), "--validators", "1", "--base-port", "30100",
        "--load-accounts", "300", "--load-senders", "50", "--load-seed", "9",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "50 senders of 300 accounts (seed 9)" in r.stdout
    assert tomllib.loads((d / "net.toml").read_text())["load"] == {"accounts": 300, "senders": 50, "seed": 9}
    net = netlib.NetSpec.load(d)
    assert net.workload == netlib.NetLoad(300, 50, 9)

    # Genesis: the node's account, then the workload's senders (loadgen's keys) funded, and
    # synthetic recipients for the rest: what a solo `tierchain load` chain holds.
    config = ChainConfig.load(net.nodes[0].home / "chain.toml")
    senders = [loadgen.sender_key(9, i).public_key for i in range(50)]
    assert [a.public_key for a in config.genesis_accounts[1:]] == senders
    assert all(a.balance == loadgen.genesis_balance and a.roles == () for a in config.genesis_accounts[1:])
    assert config.genesis_synthetic == SyntheticAccounts(250, 9, 0)

    work = loadgen.transfer_workload(300, 100, 2, senders=50, seed=9, processes=1)
    loadgen.check_net_genesis(config, work, "chain.toml")
    other = loadgen.transfer_workload(300, 100, 2, senders=50, seed=8, processes=1)
    with pytest.raises(ConfigError, match="50 of the workload's 50 senders are not funded"):
        loadgen.check_net_genesis(config, other, "chain.toml")

    # Without --load-accounts: no [load], no funded senders; --load-seed alone is refused.
    plain = tmp_path / "plain"
    assert cli("net", "init", str(plain), "--validators", "1").exit_code == 0
    assert netlib.NetSpec.load(plain).workload is None
    assert "load" not in tomllib.loads((plain / "net.toml").read_text())
    r = cli("net", "init", str(tmp_path / "x"), "--validators", "1", "--load-seed", "3")
    assert r.exit_code == 2 and "only with --load-accounts" in r.stderr, r.output


def test_load_refuses_a_network_it_cannot_drive(tmp_path) -> None:
    plain, funded = tmp_path / "plain", tmp_path / "funded"
    assert cli("net", "init", str(plain), "--validators", "1", "--base-port", "30200").exit_code == 0
    r = cli("load", "--net", str(plain), "--seconds", "1")
    assert r.exit_code == 2 and "funds no load workload" in r.stderr, r.output

    base = free_base_port(1)
    r = cli(
        "net", "init", str(funded), "--validators", "1", "--base-port", str(base), "--load-accounts", "100"
    )
    assert r.exit_code == 0, r.output
    for args, message in [
        (["--accounts", "999"], "genesis funds 100"),
        (["--sync", "none"], "--sync is the network's"),
        (["--block-txs-max", "10"], "--block-txs-max is the network's"),
    ]:
        r = cli("load", "--net", str(funded), "--seconds", "1", *args)
        assert r.exit_code == 2 and message in r.stderr, (args, r.output)
    r = cli("load", "--seconds", "1", "--wait", "5")
    assert r.exit_code == 2 and "--wait applies only with --net" in r.stderr, r.output

    # Nothing runs: refused before any transaction is sent, naming the node and `net start`.
    cache = str(tmp_path / "cache")
    r = cli(
        "load", "--net", str(funded), "--seconds", "1", "--txs", "64", "--threads", "1", "--cache-dir", cache
    )
    assert r.exit_code == 1 and "validator0's API" in r.stderr and "net start" in r.stderr, r.output


def test_load_net_drives_a_running_network(tmp_path) -> None:
    d, out, cache = tmp_path / "net", tmp_path / "load.json", str(tmp_path / "cache")
    base = free_base_port(2)
    r = cli(
        "net", "init", str(d), "--validators", "2", "--base-port", str(base),
        "--load-accounts", "400", "--load-senders", "64",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    net = netlib.NetSpec.load(d)
    started: list[int] = []
    try:
        net_start(d)
        started = pids(net)
        # The two validators connected and making blocks before the 2 s window opens: on a
        # loaded machine their first rounds can take longer than the window itself.
        wait_for("both nodes at height >= 2", lambda: all((x["height"] or 0) >= 2 for x in status(d)))
        args = ["load", "--net", str(d), "--seconds", "2", "--txs", "1200", "--threads", "2"]
        args += ["--inflight", "2", "--batch", "50", "--wait", "30", "--cache-dir", cache]
        r = cli(*args, "--out", str(out))
        assert r.exit_code == 0, r.output
        assert "summary" in r.stdout and "2 validators, HTTP API" in r.stdout, r.stdout
        rep = json.loads(out.read_text())
        assert rep["committed"] > 0 and rep["tps"] > 0, rep
        assert rep["rejected"] == 0 and rep["failed"] == 0 and rep["unsettled"] == 0, rep
        assert 0 < rep["latency_ms_p50"] <= rep["latency_ms_p99"] <= rep["latency_ms_max"]
        assert rep["sync"] == "full" and rep["durable"] and rep["height"] > 0
        # Both validators' processes were measured, and blocks came from CometBFT's metas.
        assert {"validator0.app", "validator0.cometbft", "validator1.app", "validator1.cometbft"} <= set(
            rep["cpu_processes"]
        )
        assert rep["blocks"]["count"] > 0 and rep["blocks"]["txs_mean"] > 0, rep["blocks"]

        # The senders have sent now: a second run (from nonce 0 again) is refused.
        r = cli(*args)
        assert r.exit_code == 1 and "sent on this network before" in r.stderr, r.output
    except BaseException:
        show_logs(net)
        raise
    finally:
        teardown(net, started)
