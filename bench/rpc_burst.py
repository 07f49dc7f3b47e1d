"""A burst of HTTP submitters against the node endpoint: resets, stalls, latency, wall time.

CLIENTS threads each send EACH ``POST /v1/txs`` of one transaction, a new
connection per request, all released at once (the shape of
tests/api/test_rpc.py::test_concurrent_submitters_are_not_reset).
A request is *reset* if the connection fails, *stalled* if it takes >= 1 s (a
dropped SYN is retried after 1 s).

To compare with another endpoint implementation in the same run, give its
source file with ``--baseline FILE`` (a module with the same ``NodeServer(chain,
host, port)`` / ``start`` / ``stop`` / ``address`` API, e.g. an older rpc.py:
``git show REV:core/tierchain/api/rpc.py > /tmp/rpc_old.py``; before the package move,
``core/tierchain/rpc.py`` with its imports moved as in docs/operations.md); the two alternate,
``--repeat`` times each, and each figure is reported as min / median / max.

Usage: python bench/rpc_burst.py [--clients 48] [--each 10] [--repeat 3] [--baseline FILE] [--tiny]
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import statistics
import struct
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

import click

from tierchain.api import rpc
from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain
from tierchain.wire import tx as txcodec

NODE = KeyPair.from_seed(b"rpc burst node".ljust(32, b"\0"))


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("rpc_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def burst(server_module: ModuleType, clients: int, each: int, round_: int) -> dict:
    config = ChainConfig(
        chain_id=7,
        sync="none",
        block_interval_ms=5,
        genesis_accounts=(GenesisAccount(NODE.public_key, ("registrar",), 10**12),),
    )
    with tempfile.TemporaryDirectory() as tmp, Chain(Path(tmp) / "chain", config, NODE) as chain:
        server = server_module.NodeServer(chain, "127.0.0.1", 0)
        server.start()
        port = server.address[1]
        gate = threading.Barrier(clients)
        times: list[float] = []
        resets: list[str] = []

        def submitter(i: int) -> None:
            keys = KeyPair.from_seed(struct.pack("<QQ", round_, i + 1).ljust(32, b"\x07"))
            gate.wait()
            for n in range(each):
                tx = accounts.transfer(config.chain_id, keys.public_key, n, NODE.public_key, 1)
                body = txcodec.frame([keys.sign_tx(tx).encode()])
                t0 = time.monotonic()
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    conn.request("POST", "/v1/txs", body)
                    conn.getresponse().read()
                    conn.close()
                except OSError as exc:
                    resets.append(type(exc).__name__)
                times.append(time.monotonic() - t0)

        threads = [threading.Thread(target=submitter, args=(i,)) for i in range(clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        server.stop()
    return {
        "wall_s": wall,
        "reset": len(resets),
        "stalled_1s": sum(t >= 1.0 for t in times),
        "p50_ms": statistics.median(times) * 1000,
        "max_ms": max(times) * 1000,
    }


def _spread(runs: list[dict], field: str) -> str:
    values = sorted(r[field] for r in runs)
    return f"{values[0]:.3g} / {statistics.median(values):.3g} / {values[-1]:.3g}"


@click.command()
@click.option("--clients", type=click.IntRange(1, 512), default=48, show_default=True)
@click.option("--each", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 50), default=3, show_default=True)
@click.option("--baseline", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None)
@click.option("--tiny", is_flag=True, help="4 clients x 2 requests, once: keeps the script from rotting.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(clients: int, each: int, repeat: int, baseline: Path | None, tiny: bool, out: Path | None) -> None:
    if tiny:
        clients, each, repeat = 4, 2, 1
    servers = {"current": rpc}
    if baseline is not None:
        servers["baseline"] = _load(baseline)
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for i in range(repeat):  # alternate, so drift on a shared machine hits both alike
        for name, module in servers.items():
            runs[name].append(burst(module, clients, each, i))
    click.echo(f"{clients} clients x {each} POSTs, {repeat} runs each (min / median / max)")
    for name, rs in runs.items():
        fields = ("wall_s", "reset", "stalled_1s", "p50_ms", "max_ms")
        click.echo(f"  {name:9}" + "  ".join(f"{f} {_spread(rs, f)}" for f in fields))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"clients": clients, "each": each, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
