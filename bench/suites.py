"""Each crypto suite end to end, in one run: verifier ceiling and durable committed TPS.

For every suite (``ed25519-blake3``, ``sm2-sm3``; docs/national-crypto.md) the same
transfer workload (same accounts, recipients and amounts; keys and signatures of the
suite) is signed, then:

* the verifier ceiling: the suite's ``verify_batch_packed`` over the workload's
  transactions in 4,096-transaction blocks, on all cores, doing nothing else
  (best of three); every transaction is verified at admission, so a chain cannot
  beat it;
* a fresh solo chain of that suite driven for ``--seconds`` (durable: ``sync =
  "full"``), with the per-block stages (produce, of which the state tree; write; fsync).

The suites run alternately, ``--repeat`` rounds; medians and ranges are reported,
and the ratio of each suite's TPS to its ceiling and to the default suite's TPS.

Usage: python bench/suites.py [--seconds 10] [--accounts 10000] [--repeat 3] [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import click
import numpy as np

from tierchain.crypto import DEFAULT_SUITE_NAME, SUITES, suite_for
from tierchain.tools.loadgen import run_load, transfer_workload
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

BLOCK = 4096


def verifier_ceiling(crypto: str, txs: list[bytes], repeat: int = 3) -> float:
    """Signatures per second of the suite's batch verification on all cores over ``txs``."""
    suite = suite_for(crypto)
    columns = []
    for i in range(0, len(txs), BLOCK):
        b = decode_batch(frame(txs[i : i + BLOCK]), suite=suite)
        columns.append((b.sender.tobytes(), b.digest.tobytes(), b.signature.tobytes()))
    best, out = float("inf"), b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        for pks, msgs, sigs in columns:
            out = suite.verify_batch_packed(pks, msgs, sigs)
        best = min(best, time.perf_counter() - t0)
    assert np.frombuffer(out, np.uint8).all(), "the workload's signatures must all verify"
    return len(txs) / best


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


@click.command()
@click.option("--seconds", type=float, default=10.0, show_default=True)
@click.option("--warmup", "warmup_s", type=float, default=2.0, show_default=True)
@click.option("--accounts", type=int, default=10_000, show_default=True)
@click.option("--threads", type=int, default=4, show_default=True)
@click.option("--repeat", type=click.IntRange(1), default=3, show_default=True)
@click.option("--tiny", is_flag=True, help="Tiny parameters (CI): the script runs; figures mean little.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(
    seconds: float, warmup_s: float, accounts: int, threads: int, repeat: int, tiny: bool, out: Path | None
) -> None:
    if tiny:
        seconds, warmup_s, accounts, repeat = 1.5, 0.0, 200, 1
    txs = 2_000 if tiny else int((seconds + warmup_s) * 30_000)
    names = sorted(SUITES, key=lambda n: n != DEFAULT_SUITE_NAME)  # the default suite first
    cache = Path(".cache/tierchain")
    works = {n: transfer_workload(accounts, txs, threads, crypto=n, cache_dir=cache) for n in names}
    figures: dict[str, dict[str, list]] = {n: {"tps": [], "ceiling": [], "blocks": []} for n in names}
    for round_ in range(repeat):
        for n in names if round_ % 2 == 0 else names[::-1]:  # alternate the order each round
            flat = works[n].all_txs()
            ceiling = verifier_ceiling(n, flat[: min(len(flat), 4 * BLOCK)])
            result = run_load(works[n], seconds=seconds, warmup_s=warmup_s, batch_txs=512, inflight=4)
            if result.rejected or result.failed:
                raise SystemExit(f"{n}: {result.rejected} rejected, {result.failed} failed")
            figures[n]["tps"].append(result.tps)
            figures[n]["ceiling"].append(ceiling)
            figures[n]["blocks"].append(result.blocks)
            click.echo(f"  round {round_ + 1} {n}: {result.tps:,.0f} TPS, ceiling {ceiling:,.0f} sig/s")
    base = statistics.median(figures[DEFAULT_SUITE_NAME]["tps"])
    report = {"seconds": seconds, "warmup_s": warmup_s, "accounts": accounts, "repeat": repeat, "suites": {}}
    for n in names:
        tps, ceiling = figures[n]["tps"], figures[n]["ceiling"]
        row = {
            "tps": _summary(tps),
            "verifier_ceiling_sigs_per_s": _summary(ceiling),
            "tps_over_ceiling": statistics.median(tps) / statistics.median(ceiling),
            "tps_over_default_suite": statistics.median(tps) / base,
            "blocks": figures[n]["blocks"],
        }
        report["suites"][n] = row
        last = figures[n]["blocks"][-1]
        click.echo(
            f"{n}: {row['tps']['median']:,.0f} TPS durable (range {min(tps):,.0f}..{max(tps):,.0f}); "
            f"ceiling {row['verifier_ceiling_sigs_per_s']['median']:,.0f} sig/s; "
            f"TPS/ceiling {row['tps_over_ceiling']:.2f}; "
            f"vs {DEFAULT_SUITE_NAME} {row['tps_over_default_suite']:.2f}; "
            f"last run's blocks: {json.dumps(last)}"
        )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
