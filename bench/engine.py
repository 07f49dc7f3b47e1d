"""End-to-end committed TPS of one solo chain against the verifier ceiling, in one run.

The verifier ceiling is the rate at which ``tierchain_native.verify_batch_packed``
checks the very same signed transactions on all cores, doing nothing else; the
engine cannot beat it (every transaction's signature is checked at admission).

Usage: python bench/engine.py [--seconds 20] [--sync full|none] [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click
import numpy as np
import tierchain_native

from tierchain import limits
from tierchain.tools.loadgen import run_load, transfer_workload
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame


def verifier_ceiling(txs: list[bytes], repeat: int = 3) -> float:
    """Signatures per second of batch verification on all cores over ``txs``."""
    columns = []
    for i in range(0, len(txs), 4096):
        b = decode_batch(frame(txs[i : i + 4096]))
        columns.append((b.sender.tobytes(), b.digest.tobytes(), b.signature.tobytes()))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for pks, msgs, sigs in columns:
            out = tierchain_native.verify_batch_packed(pks, msgs, sigs)
        best = min(best, time.perf_counter() - t0)
    assert np.frombuffer(out, np.uint8).all()
    return len(txs) / best


@click.command()
@click.option("--seconds", type=float, default=20.0, show_default=True)
@click.option("--accounts", type=int, default=10_000, show_default=True)
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--threads", type=int, default=4, show_default=True)
@click.option("--batch", "batch_txs", type=int, default=512, show_default=True)
@click.option("--inflight", type=int, default=4, show_default=True)
@click.option("--tiny", is_flag=True, help="Tiny parameters (CI): the script runs; figures mean little.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(
    seconds: float,
    accounts: int,
    sync: str,
    threads: int,
    batch_txs: int,
    inflight: int,
    tiny: bool,
    out: Path | None,
) -> None:
    if tiny:
        seconds, accounts = 2.0, 200
    txs = int(seconds * 25_000) if not tiny else 8_000
    work = transfer_workload(accounts, txs, threads, cache_dir=Path(".cache/tierchain"))
    flat = [t for stream in work.streams for t in stream]
    ceiling = verifier_ceiling(flat[: min(len(flat), limits.batch_txs_max)])
    result = run_load(work, seconds=seconds, batch_txs=batch_txs, inflight=inflight, sync=sync)
    report = {
        "sync": sync,
        "durable": sync == "full",
        "seconds": result.seconds,
        "accounts": accounts,
        "tps": result.tps,
        "verifier_ceiling_sigs_per_s": ceiling,
        "tps_over_ceiling": result.tps / ceiling,
        "latency_ms_p50": result.latency_ms_p50,
        "latency_ms_p99": result.latency_ms_p99,
        "committed": result.committed,
        "rejected": result.rejected,
        "failed": result.failed,
        "threads_native": tierchain_native.thread_count(),
    }
    note = "" if sync == "full" else "  [sync=none: NOT DURABLE]"
    click.echo(
        f"end-to-end {result.tps:,.0f} TPS (sync={sync}){note}; verifier ceiling {ceiling:,.0f} sig/s; "
        f"ratio {result.tps / ceiling:.2f}; "
        f"p50 {result.latency_ms_p50:.0f} ms, p99 {result.latency_ms_p99:.0f} ms"
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps({**report, "timeline": dataclasses.asdict(result)["timeline"]}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
