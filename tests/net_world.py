"""Shared helpers of the tests that run CometBFT networks (tests/replication/)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tierchain.cli.main import main
from tierchain.replication import cometbft
from tierchain.replication import net as netlib

PASS = "net test pass"
ENV = {"TIERCHAIN_PASSPHRASE": PASS}
TESTS = Path(__file__).parent
CORE = TESTS.parent / "core"


def cometbft_or_skip() -> Path:
    try:
        return cometbft.binary()
    except cometbft.CometBFTUnavailable as exc:  # pragma: no cover - `make setup` builds it
        pytest.skip(f"no cometbft: {exc}", allow_module_level=True)


def cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner(env=ENV if env is None else env).invoke(main, list(args), catch_exceptions=True)


def free_base_port(nodes: int) -> int:
    """A base port whose whole range (``nodes`` * 10 ports) is free on 127.0.0.1 now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 60_000 - netlib.PORT_STRIDE * nodes, netlib.PORT_STRIDE)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + netlib.PORT_STRIDE * nodes):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free port range on 127.0.0.1")


def node_env(**extra: str) -> dict[str, str]:
    """The environment a test starts node processes with (the package and tests/ importable)."""
    return dict(os.environ, **ENV, PYTHONPATH=os.pathsep.join([str(CORE), str(TESTS)]), **extra)


def net_start(d: Path, *nodes: str, env: dict[str, str] | None = None, wait_s: float = 60) -> str:
    """``tierchain net start DIR [--node N ...]`` in a subprocess (nodes outlive it); its stdout."""
    args = [sys.executable, "-m", "tierchain.cli.main", "net", "start", str(d), "--wait", str(wait_s)]
    for n in nodes:
        args += ["--node", n]
    out = subprocess.run(args, env=env or node_env(), capture_output=True, text=True, timeout=wait_s + 60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def pids(net: netlib.NetSpec) -> list[int]:
    out = []
    for n in net.nodes:
        for name in (netlib.PID_FILE, netlib.COMETBFT_PID_FILE):
            if (pid := netlib.read_pid(n.home / name)) is not None:
                out.append(pid)
    return out


def status(d: Path) -> list[dict]:
    r = cli("net", "status", str(d), "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 60.0, poll_s: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll_s)


def show_logs(net: netlib.NetSpec) -> None:
    for n in net.nodes:
        for f in sorted((n.home / "logs").glob("*.log")):
            print(f"--- {f} ---\n{f.read_text(errors='replace')[-4000:]}")


def kill_node(node: netlib.NetNode) -> None:
    """SIGKILL a node's runner and its CometBFT (a machine that loses power)."""
    for pid in (netlib.node_pid(node.home), netlib.cometbft_pid(node.home)):
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    wait_for(f"{node.name} to die", lambda: netlib.node_pid(node.home) is None, 30)


def teardown(net: netlib.NetSpec, started: list[int]) -> None:
    """Stop every node of ``net``; SIGKILL whatever still runs."""
    netlib.stop(net, wait_s=30)
    for pid in {*started, *pids(net)}:
        if netlib.alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
