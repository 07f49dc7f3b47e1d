"""``tierchain net``: the layout ``net init`` writes, its refusals, and a network of real CometBFT
processes on loopback started, asked and stopped (docs/replication.md, "Running a network").

The end-to-end test runs the real app (tierchain.replication.app); what the nodes replicate
is tests/replication/test_replication.py's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from net_world import (
    PASS,
    cli,
    cometbft_or_skip,
    free_base_port,
    node_env,
    pids,
    show_logs,
    status,
    wait_for,
)
from tierchain.config import ChainConfig
from tierchain.crypto import load_key_file
from tierchain.replication import net as netlib

COMETBFT = cometbft_or_skip()
pytestmark = pytest.mark.usefixtures("fast_kdf")


def node_id(home: Path) -> str:
    out = subprocess.run(
        [str(COMETBFT), "show-node-id", "--home", str(home / "cometbft")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def comet_config(home: Path) -> dict:
    return tomllib.loads((home / "cometbft" / "config" / "config.toml").read_text())


# --- init -------------------------------------------------------------------------------


def test_init_lays_out_one_home_per_node_with_one_genesis(tmp_path) -> None:
    d = tmp_path / "net"
    r = cli(
        "net",
        "init",
        str(d),
        "--validators",
        "3",
        "--full-nodes",
        "1",
        "--observers",
        "1",
        "--base-port",
        "30000",
        "--chain-id",
        "7",
        "--timeout-commit-ms",
        "250",
    )
    assert r.exit_code == 0, r.output
    net = netlib.NetSpec.load(d)
    assert net.chain_id == "tierchain-7"
    names = [n.name for n in net.nodes]
    assert names == ["validator0", "validator1", "validator2", "full0", "observer0"]
    assert [n.role for n in net.nodes] == ["validator"] * 3 + ["full", "observer"]

    # Ports: node i at base + 10 i, +0 p2p, +1 rpc, +2 api; all distinct.
    ports = []
    for i, n in enumerate(net.nodes):
        assert (n.spec.p2p_port, n.spec.rpc_port, n.spec.api_port) == (
            30000 + 10 * i,
            30001 + 10 * i,
            30002 + 10 * i,
        )
        assert n.spec.host == "127.0.0.1"
        ports += [n.spec.p2p_port, n.spec.rpc_port, n.spec.api_port]
    assert len(set(ports)) == len(ports)

    # Every home: its node.toml (= its net.toml entry), the same chain.toml, its sealed key, a CometBFT home.
    for n in net.nodes:
        assert n.home == d.resolve() / n.name
        assert netlib.NodeSpec.load(n.home) == n.spec
        for f in (
            "chain.toml",
            "node.key",
            "logs",
            "cometbft/config/config.toml",
            "cometbft/config/node_key.json",
        ):
            assert (n.home / f).exists(), f
    chain_texts = {(n.home / "chain.toml").read_bytes() for n in net.nodes}
    genesis_texts = {(n.home / "cometbft/config/genesis.json").read_bytes() for n in net.nodes}
    assert len(chain_texts) == 1 and len(genesis_texts) == 1

    # chain.toml: every node's engine key is a genesis account with the registrar and committee roles.
    config = ChainConfig.load(net.nodes[0].home / "chain.toml")
    assert config.chain_id == 7
    node_keys = [load_key_file(n.home / "node.key", PASS).public_key for n in net.nodes]
    assert [a.public_key for a in config.genesis_accounts] == node_keys
    assert all(a.roles == ("registrar", "committee") and a.balance > 0 for a in config.genesis_accounts)

    # genesis.json: the chain id, the validators' CometBFT keys only (power 10), the engine's digest.
    genesis = json.loads(genesis_texts.pop())
    assert genesis["chain_id"] == "tierchain-7"
    assert genesis["app_state"] == {"tierchain_genesis": netlib.genesis_digest(config)}
    assert genesis["genesis_time"] == netlib.genesis_time(config.genesis_timestamp_ms)
    comet_keys = {
        n.name: json.loads((n.home / "cometbft/config/priv_validator_key.json").read_text())["pub_key"]
        for n in net.nodes
    }
    assert [v["pub_key"] for v in genesis["validators"]] == [comet_keys[f"validator{i}"] for i in range(3)]
    assert all(v["power"] == "10" for v in genesis["validators"])
    assert comet_keys["full0"] not in [v["pub_key"] for v in genesis["validators"]]
    assert comet_keys["observer0"] not in [v["pub_key"] for v in genesis["validators"]]

    # config.toml: loopback addresses, the nodes before it as persistent peers (each pair is
    # dialled by one side), the tuned settings.
    ids = {n.name: node_id(n.home) for n in net.nodes}
    dialled: set[frozenset[str]] = set()
    for i, n in enumerate(net.nodes):
        c = comet_config(n.home)
        assert c["moniker"] == n.name
        assert c["p2p"]["laddr"] == f"tcp://127.0.0.1:{n.spec.p2p_port}"
        assert c["rpc"]["laddr"] == f"tcp://127.0.0.1:{n.spec.rpc_port}"
        peers = set(filter(None, c["p2p"]["persistent_peers"].split(",")))
        assert peers == {f"{ids[m.name]}@127.0.0.1:{m.spec.p2p_port}" for m in net.nodes[:i]}
        dialled |= {frozenset((n.name, m.name)) for m in net.nodes[:i]}
        assert c["p2p"]["addr_book_strict"] is False and c["p2p"]["allow_duplicate_ip"] is True
        assert c["consensus"]["timeout_commit"] == "250ms"
        assert c["tx_index"]["indexer"] == "null"
        assert c["mempool"]["size"] == 100_000
        assert c["mempool"]["type"] == "flood"
        assert c["mempool"]["broadcast"] is (n.role != "observer")
        assert c["instrumentation"]["prometheus"] is False
        assert c["proxy_app"] == "tcp://127.0.0.1:26658"  # left alone: the runner passes --proxy_app

    n_nodes = len(net.nodes)
    assert len(dialled) == n_nodes * (n_nodes - 1) // 2  # every pair, by one side


def test_init_refuses_a_non_empty_directory(tmp_path) -> None:
    d = tmp_path / "net"
    d.mkdir()
    (d / "something").write_text("mine")
    r = cli("net", "init", str(d), "--validators", "1")
    assert r.exit_code == 2 and "not an empty directory" in r.stderr, r.output
    assert [p.name for p in d.iterdir()] == ["something"]
    f = tmp_path / "a-file"
    f.write_text("")
    assert cli("net", "init", str(f), "--validators", "1").exit_code == 2
    # An existing network is not overwritten either.
    assert cli("net", "init", str(tmp_path / "ok"), "--validators", "1").exit_code == 0
    before = (tmp_path / "ok" / "net.toml").read_bytes()
    assert cli("net", "init", str(tmp_path / "ok"), "--validators", "2").exit_code == 2
    assert (tmp_path / "ok" / "net.toml").read_bytes() == before


@pytest.mark.parametrize(
    "args,message",
    [
        (["--validators", "0"], "--validators"),
        (["--validators", "30", "--full-nodes", "2", "--observers", "1"], "at most 32 nodes"),
        (["--validators", "5", "--base-port", "65500"], "--base-port"),
        (["--validators", "1", "--base-port", "80"], "--base-port"),
    ],
)
def test_init_refuses_bad_counts_and_ports_before_writing(tmp_path, args, message) -> None:
    d = tmp_path / "net"
    r = cli("net", "init", str(d), *args)
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert not d.exists()


def test_a_broken_net_toml_is_a_config_error(tmp_path) -> None:
    d = tmp_path / "net"
    assert cli("net", "init", str(d), "--validators", "2", "--base-port", "30000").exit_code == 0
    assert cli("net", "status", str(tmp_path)).exit_code == 2  # no net.toml there
    text = (d / "net.toml").read_text()
    (d / "net.toml").write_text(text.replace('role = "validator"', 'role = "voter"', 1))
    r = cli("net", "status", str(d))
    assert r.exit_code == 2 and "node[0].role" in r.stderr, r.output
    (d / "net.toml").write_text(text.replace("p2p_port = 30010", "p2p_port = 30000"))
    r = cli("net", "status", str(d))
    assert r.exit_code == 2 and "30000" in r.stderr, r.output
    (d / "net.toml").write_text(text)
    r = cli("net", "status", str(d), "--node", "nobody")
    assert r.exit_code == 2 and "nobody" in r.stderr, r.output
    (d / "validator0" / "node.toml").write_text("[node]\nname = 'validator0'\n")
    r = cli("net", "node", "run", str(d / "validator0"))
    assert r.exit_code == 2 and "role" in r.stderr, r.output


def test_status_of_a_network_that_is_down_is_nulls(tmp_path) -> None:
    d = tmp_path / "net"
    base = free_base_port(2)
    assert (
        cli(
            "net", "init", str(d), "--validators", "1", "--observers", "1", "--base-port", str(base)
        ).exit_code
        == 0
    )
    r = cli("net", "status", str(d), "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(x["name"], x["role"]) for x in rows] == [("validator0", "validator"), ("observer0", "observer")]
    for row in rows:
        assert list(row) == list(netlib.STATUS_KEYS)
        assert all(row[k] is None for k in netlib.STATUS_KEYS if k not in ("name", "role"))
    r = cli("net", "status", str(d))
    assert r.exit_code == 0 and "validator0" in r.stdout and "observer0" in r.stdout, r.output
    r = cli("net", "stop", str(d))
    assert r.exit_code == 0 and "not running" in r.stdout, r.output


# --- a network of real CometBFT processes ------------------------------------------------


def _rpc_body(url: str) -> dict:
    """The JSON body of a CometBFT RPC GET, whatever its HTTP status (an error answers 500)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def test_network_starts_makes_blocks_and_stops(tmp_path) -> None:
    env = node_env()
    d = tmp_path / "net"
    base = free_base_port(2)
    r = cli("net", "init", str(d), "--validators", "1", "--observers", "1", "--base-port", str(base))
    assert r.exit_code == 0, r.output
    net = netlib.NetSpec.load(d)
    validator, observer = net.nodes
    started = []
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tierchain.cli.main", "net", "start", str(d), "--wait", "60"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        started = pids(net)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.count("started (pid") == 2, out.stdout

        rows = status(d)
        assert all(isinstance(row["pid"], int) for row in rows), rows
        first = wait_for(
            "both nodes at height >= 2",
            lambda: (s := status(d)) and all((x["height"] or 0) >= 2 for x in s) and s,
        )
        wait_for(
            "heights to grow",
            lambda: all(x["height"] > y["height"] for x, y in zip(status(d), first, strict=True)),
        )
        # An observer started beside the validator may still be block-syncing (catching up
        # in bursts) while the validator makes blocks: wait until both are live.
        rows = wait_for(
            "both nodes caught up, each with its peer",
            lambda: (
                (s := status(d))
                and all(
                    x["catching_up"] is False and x["peers"] == 1 and x["block_hash"] and x["app_hash"]
                    for x in s
                )
                and s
            ),
        )
        # Both nodes hold the same block at a common height.
        h = min(row["height"] for row in rows)
        hashes = {netlib.rpc_get(n.spec, f"block?height={h}")["block_id"]["hash"] for n in net.nodes}
        assert len(hashes) == 1

        # An observer takes no transaction: its app refuses every CheckTx.
        refused = _rpc_body(f"{observer.spec.rpc_url}/broadcast_tx_sync?tx=0x00")
        assert refused["result"]["log"] == "READ_ONLY", refused

        # Starting again starts nothing; a second runner on a running home is refused.
        r = cli("net", "start", str(d))
        assert r.exit_code == 0 and r.stdout.count("already running") == 2, r.output
        r = cli("net", "node", "run", str(validator.home))
        assert r.exit_code == 1 and "already runs" in r.stderr, r.output

        # A CometBFT that dies takes its node down, with a log line saying so (exit code 1).
        runner, comet = netlib.node_pid(observer.home), netlib.cometbft_pid(observer.home)
        assert runner is not None and comet is not None
        os.kill(comet, signal.SIGKILL)
        wait_for("the observer's runner to exit", lambda: not netlib.alive(runner), 30)
        assert netlib.node_pid(observer.home) is None
        lines = [
            json.loads(x)
            for x in (observer.home / "logs" / "node.log").read_text().splitlines()
            if x.startswith("{")
        ]
        assert any(x["msg"] == "cometbft exited on its own; stopping the node" for x in lines)
        assert lines[-1]["msg"] == "node stopped" and lines[-1]["exit_code"] == 1

        r = cli("net", "stop", str(d))
        assert r.exit_code == 0, r.output
        assert "validator0: stopped" in r.stdout and "observer0: not running" in r.stdout, r.stdout
        for pid in started:
            assert not netlib.alive(pid), f"pid {pid} still runs"
        for n in net.nodes:
            assert (
                not (n.home / netlib.PID_FILE).exists() and not (n.home / netlib.COMETBFT_PID_FILE).exists()
            )
        assert all(row["pid"] is None and row["height"] is None for row in status(d))
        stopped = [
            json.loads(x)
            for x in (validator.home / "logs" / "node.log").read_text().splitlines()
            if x.startswith("{")
        ]
        assert stopped[-1]["msg"] == "node stopped" and stopped[-1]["exit_code"] == 0
    except BaseException:
        show_logs(net)
        raise
    finally:
        netlib.stop(net, wait_s=30)
        for pid in {*started, *pids(net)}:
            if netlib.alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_node_may_also_serve_the_api_over_grpc(tmp_path) -> None:
    """``node.grpc_port`` (optional; docs/api.md): kept in node.toml, checked like the others."""
    spec = netlib.NodeSpec("v0", "validator", 26656, 26657, 7545, grpc_port=7546)
    assert "grpc_port = 7546" in spec.to_toml()
    (tmp_path / netlib.NODE_FILE).write_text(spec.to_toml())
    assert netlib.NodeSpec.load(tmp_path) == spec
    plain = netlib.NodeSpec("v0", "validator", 26656, 26657, 7545)
    assert "grpc_port" not in plain.to_toml() and plain.grpc_port is None
    with pytest.raises(netlib.ConfigError, match="ports must differ"):
        netlib.NodeSpec("v0", "validator", 26656, 26657, 7545, grpc_port=7545)
    with pytest.raises(netlib.ConfigError, match="grpc_port"):
        netlib.NodeSpec("v0", "validator", 26656, 26657, 7545, grpc_port=0)
    tls = netlib.NodeSpec("v0", "validator", 26656, 26657, 7545, tls_cert_file="a.pem", tls_key_file="a.key")
    (tmp_path / netlib.NODE_FILE).write_text(tls.to_toml())
    assert netlib.NodeSpec.load(tmp_path) == tls
    files = tls.tls(tmp_path)
    assert (files.cert, files.key, files.client_ca) == (tmp_path / "a.pem", tmp_path / "a.key", None)
    assert plain.tls(tmp_path) is None
    with pytest.raises(netlib.ConfigError, match="go together"):
        netlib.NodeSpec("v0", "validator", 26656, 26657, 7545, tls_cert_file="a.pem")


def test_replication_health_reads_cometbft_and_reports_it_down() -> None:
    """The replicated node's /metrics source (``net.replication_health``): CometBFT's height,
    sync state and peers from its RPC; ``tierchain_consensus_up 0`` when it does not answer."""
    import http.server
    import threading

    answers = {
        "/status": {"result": {"sync_info": {"latest_block_height": "42", "catching_up": True}}},
        "/net_info": {"result": {"n_peers": "3"}},
    }

    class Rpc(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(answers[self.path]).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rpc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spec = netlib.NodeSpec("v0", "validator", 26656, server.server_address[1], 7545)
        got = {g.name: g.value for g in netlib.replication_health(spec)}
        assert got == {
            "tierchain_consensus_up": 1.0,
            "tierchain_consensus_height": 42,
            "tierchain_consensus_catching_up": 1.0,
            "tierchain_consensus_peers": 3,
        }
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    down = {g.name: g.value for g in netlib.replication_health(spec, timeout_s=0.2)}
    assert down == {"tierchain_consensus_up": 0.0}
