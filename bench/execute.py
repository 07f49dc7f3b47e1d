"""The executor alone: one block of transfers run by the native kernels and by the Python
handlers, on the same state, alternated in one run (not a test; figures are reported).

The block is what the engine bench's blocks are: ``--txs`` transfers from ``--txs / 2``
senders (two each, so the scheduler makes several waves) to random registered accounts
among ``--accounts``. Each round times ``execute_block`` (the block's state built from a
prefetched dict, the scheduler's waves, every receipt and write) with native ops on, then
off (``execute_block(native=...)``, as ``TIERCHAIN_NATIVE_OPS`` chooses in a node); the
receipts and writes of both are checked equal. Reported: median (min..max) ms per block
and µs per transaction of each, and their ratio per round.

Usage: python bench/execute.py [--txs 4096] [--accounts 10000] [--rounds 9] [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path

import click
from rich.console import Console

from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine import gc_tuning, schedule
from tierchain.engine.execute import BlockColumns, declared_keys, execute_block
from tierchain.engine.genesis import genesis_writes
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

console = Console()


def transfer_block(txs: int, n_accounts: int, seed: int = 1):
    """``txs`` signed transfers from ``txs / 2`` senders (two each) to random registered
    accounts among ``n_accounts``, and the genesis state holding them."""
    people = [KeyPair.from_seed(i.to_bytes(4, "little") * 8) for i in range(n_accounts)]
    config = ChainConfig(genesis_accounts=tuple(GenesisAccount(k.public_key, (), 10**12) for k in people))
    base = {k: v for k, v in genesis_writes(config).items() if v is not None}
    rng = random.Random(seed)
    senders = rng.sample(range(n_accounts), txs // 2)
    frames = []
    for nonce in range(2):
        for s in senders:
            to = rng.randrange(n_accounts - 1)
            to += to >= s  # never the sender
            t = accounts.transfer(
                1, people[s].public_key, nonce, people[to].public_key, 1 + rng.randrange(1000)
            )
            frames.append(people[s].sign_tx(t).encode())
    return decode_batch(frame(frames)), base


def _time(batch, base, native: bool):
    cols = BlockColumns(batch)
    keys = declared_keys(cols)
    t0 = time.perf_counter()
    result = execute_block(batch, base, 1, 0, cols=cols, keys=keys, native=native)
    return time.perf_counter() - t0, result


@click.command()
@click.option("--txs", type=int, default=4096, show_default=True)
@click.option("--accounts", "n_accounts", type=int, default=10_000, show_default=True)
@click.option("--rounds", type=int, default=9, show_default=True)
@click.option("--tiny", is_flag=True, help="Small parameters (CI: the script must not rot).")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/out/execute.json")
)
def main(txs: int, n_accounts: int, rounds: int, tiny: bool, out: Path) -> None:
    gc_tuning.tune()  # as a node's process runs
    if tiny:
        txs, n_accounts, rounds = 256, 1_000, 3
    batch, base = transfer_block(txs, n_accounts)
    waves = [len(w) for w in schedule.waves(batch)]
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        (tn, native), (tp, python) = _time(batch, base, True), _time(batch, base, False)
        if native.receipts != python.receipts or native.writes != python.writes:
            raise SystemExit("the native and Python executors disagree: run tests/engine/test_native_exec.py")
        times[True].append(tn)
        times[False].append(tp)
    ratios = [p / n for n, p in zip(times[True], times[False], strict=True)]

    def row(ts: list[float]) -> dict:
        return {
            "ms_median": 1000 * statistics.median(ts),
            "ms_min": 1000 * min(ts),
            "ms_max": 1000 * max(ts),
            "us_per_tx": 1e6 * statistics.median(ts) / len(batch),
        }

    report = {
        "txs": len(batch),
        "accounts": n_accounts,
        "waves": waves,
        "rounds": rounds,
        "native": row(times[True]),
        "python": row(times[False]),
        "python_over_native_median": statistics.median(ratios),
        "python_over_native_min": min(ratios),
        "python_over_native_max": max(ratios),
    }
    for name in ("native", "python"):
        r = report[name]
        console.print(
            f"{name:>6}: {r['ms_median']:.1f} ms per {len(batch):,}-tx block "
            f"({r['ms_min']:.1f}..{r['ms_max']:.1f}), {r['us_per_tx']:.2f} µs/tx"
        )
    console.print(
        f"Python / native: {report['python_over_native_median']:.2f}x "
        f"({report['python_over_native_min']:.2f}..{report['python_over_native_max']:.2f}); waves {waves}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
