"""The producer's state read of one block (not a test; figures are reported).

A block of transfers (``execute.transfer_block``: ``--txs`` transfers among ``--accounts``)
over a state table holding the accounts, with ``--overlays`` earlier blocks executed but not
in the table yet. Each round reads the block's state both ways, in one read transaction
each, alternated:

* ``read_state``: one native call (``execute.read_state``, ``BlockState.read``) that lists
  the keys from the block's columns, looks the earlier blocks' writes up in the
  ``BlockState`` that executed each, and reads the table without the GIL (what the producer
  does);
* the calls it replaced: ``declared_keys`` (a list of key ``bytes``), ``get_many_raw``
  through the earlier blocks' write dicts (a dict of value ``bytes``), and
  ``BlockState(keys, that dict)``.

Both states are checked equal key for key. Reported: median (min..max) ms per block of each
and their ratio per round, as median (min..max).

Usage: python bench/prefetch.py [--txs 4096] [--accounts 10000] [--overlays 2] [--rounds 40] [--tiny]
       [--out FILE.json]
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import click
import tierchain_native
from rich.console import Console

from execute import transfer_block
from figures import fmt, spread
from tierchain.engine import gc_tuning
from tierchain.engine.execute import BlockColumns, declared_keys, execute_block, read_state
from tierchain.state.storage import Store

console = Console()


def _replaced(r, cols: BlockColumns, overlays: list[dict]) -> tierchain_native.BlockState:
    keys = declared_keys(cols)
    return tierchain_native.BlockState(keys, r.get_many_raw("state", keys, overlays))


@click.command()
@click.option("--txs", type=int, default=4096, show_default=True)
@click.option("--accounts", "n_accounts", type=int, default=10_000, show_default=True)
@click.option("--overlays", "n_overlays", type=int, default=2, show_default=True)
@click.option("--rounds", type=int, default=40, show_default=True)
@click.option("--tiny", is_flag=True, help="Small parameters (CI: the script must not rot).")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/out/prefetch.json")
)
def main(txs: int, n_accounts: int, n_overlays: int, rounds: int, tiny: bool, out: Path) -> None:
    gc_tuning.tune()  # as a node's process runs
    if tiny:
        txs, n_accounts, rounds = 256, 1_000, 3
    batch, base = transfer_block(txs, n_accounts)
    cols = BlockColumns(batch)
    states, dicts = [], []  # the earlier blocks, as the producer keeps them and as dicts
    for seed in range(2, 2 + n_overlays):
        earlier, _ = transfer_block(txs, n_accounts, seed=seed)
        state = tierchain_native.BlockState(declared_keys(BlockColumns(earlier)), base)
        dicts.append(execute_block(earlier, state, 1, 0).writes)
        states.append(state)
    directory = Path(tempfile.mkdtemp(prefix="tierchain-prefetch-bench-"))
    try:
        store = Store(directory / "db", sync=False)
        try:
            with store.write() as w:
                w.put_many_raw("state", sorted(base.items()))
            times: dict[str, list[float]] = {"read_state": [], "replaced": []}
            for _ in range(rounds):
                with store.read() as r:
                    t0 = time.perf_counter()
                    new = read_state(r.native("state"), cols, states)
                    t1 = time.perf_counter()
                with store.read() as r:
                    t2 = time.perf_counter()
                    old = _replaced(r, cols, dicts)
                    t3 = time.perf_counter()
                times["read_state"].append(t1 - t0)
                times["replaced"].append(t3 - t2)
            keys = declared_keys(cols)
            if any(new.get(k) != old.get(k) for k in keys):
                raise SystemExit("the two reads disagree: run tests/engine/test_read_state.py")
        finally:
            store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    ms = {name: spread([1000 * t for t in ts]) for name, ts in times.items()}
    ratio = spread([o / n for n, o in zip(times["read_state"], times["replaced"], strict=True)])
    report = {
        "txs": len(batch),
        "accounts": n_accounts,
        "keys": len(keys),
        "overlays": n_overlays,
        "rounds": rounds,
        "ms": ms,
        "replaced_over_read_state": ratio,
    }
    for name, s in ms.items():
        console.print(f"{name:>10}: {fmt(s, '.2f')} ms per {len(keys):,}-key block, {n_overlays} overlays")
    console.print(f"replaced / read_state: {fmt(ratio, '.2f')}x")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
