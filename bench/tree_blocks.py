"""The state tree alone, under blocks shaped like the transfer load (not a test; figures
are reported): where a block's tree time goes at each state size.

For each size N (accounts; the tree holds a balance and a nonce key per account, 2N
keys, built as genesis is), ``--blocks`` blocks of ``--txs`` transfers each: a transfer
writes its sender's and receiver's balances and its sender's nonce (random accounts,
so a block writes ~2.3 keys per transfer once keys repeat). Each block's version is
computed (``StateTree.prepare``, from a read transaction, as the chain's tree stage
does), then written and committed in its own write transaction (``StateTree.write``;
LMDB without fsync: the tree's cost, not the disk's). Reported per size, medians over
the blocks: prepare, write and commit ms per block and µs per written key, and the
phases ``smt_apply`` reports itself (``TreeUpdate.stats``): set-up (hashing and sorting
the writes, taking the cached top of the tree), reading chunk levels (LMDB, the cache
below them), finishing (the new chunks, records and root, the cache's update) and
the rest of the call (its Python result), with the chunks read per block.

``--workers``: threads a finish may use (``StateTree(workers=...)``; 1, the default,
builds on the calling thread only).

Usage: python bench/tree_blocks.py [--sizes 10000,1000000] [--txs 3400] [--blocks 20]
       [--workers 1] [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import struct
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from tierchain.state.storage import Store
from tierchain.state.tree import StateTree

console = Console(width=160)
_U64 = struct.Struct("<Q")


def _balance(i: int) -> bytes:
    return b"bal/" + i.to_bytes(8, "big")


def _nonce(i: int) -> bytes:
    return b"non/" + i.to_bytes(8, "big")


def _genesis(n: int, chunk: int = 1 << 16):
    for start in range(0, n, chunk):
        yield [(k(i), _U64.pack(i)) for i in range(start, min(n, start + chunk)) for k in (_balance, _nonce)]


def measure(n: int, txs: int, blocks: int, seed: int, workdir: Path | None, workers: int = 1) -> dict:
    rng = random.Random(seed)
    path = Path(tempfile.mkdtemp(prefix=f"tree-{n}-", dir=workdir))
    tree = StateTree(workers=workers)
    rows: list[dict] = []
    try:
        with Store(path, sync=False, map_size=256 << 30) as store:
            with store.write() as w:
                tree.build(w, 0, _genesis(n))
            for height in range(1, blocks + 1):
                writes: dict[bytes, bytes] = {}
                for _ in range(txs):
                    a, b = rng.randrange(n), rng.randrange(n)
                    writes[_balance(a)] = _U64.pack(rng.randrange(1 << 40))
                    writes[_balance(b)] = _U64.pack(rng.randrange(1 << 40))
                    writes[_nonce(a)] = _U64.pack(height)
                with store.read() as r:
                    t0 = time.perf_counter()
                    update = tree.prepare(r, height, StateTree.base_at(r, height - 1), writes)
                    t1 = time.perf_counter()
                with store.write() as w:
                    t2 = time.perf_counter()
                    tree.write(w, update)
                    t3 = time.perf_counter()
                t4 = time.perf_counter()
                s = update.stats
                rows.append(
                    {
                        "keys": len(writes),
                        "records": len(update.puts),
                        "prepare_ms": (t1 - t0) * 1e3,
                        "write_ms": (t3 - t2) * 1e3,
                        "commit_ms": (t4 - t3) * 1e3,
                        "setup_ms": s["setup_s"] * 1e3,
                        "read_ms": s["read_s"] * 1e3,
                        "finish_ms": s["finish_s"] * 1e3,
                        "result_ms": (s["total_s"] - s["setup_s"] - s["read_s"] - s["finish_s"]) * 1e3,
                        "chunks_read": s["read"],
                    }
                )
    finally:
        shutil.rmtree(path, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    med["prepare_us_per_key"] = med["prepare_ms"] * 1e3 / med["keys"]
    med["cache_mib"] = tree.cache_bytes / 2**20
    return {
        "accounts": n,
        "tree_keys": 2 * n,
        "txs": txs,
        "blocks": blocks,
        "workers": workers,
        "median": med,
    }


@click.command()
@click.option("--sizes", default="10000,100000,1000000", help="accounts per point, comma-separated")
@click.option("--txs", type=int, default=3400, show_default=True, help="transfers per block")
@click.option("--blocks", type=int, default=20, show_default=True)
@click.option("--seed", type=int, default=1)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="threads a finish uses (StateTree)",
)
@click.option("--tiny", is_flag=True, help="small parameters (CI: the script must not rot)")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/out/tree_blocks.json")
)
def main(
    sizes: str, txs: int, blocks: int, seed: int, workdir: Path | None, workers: int, tiny: bool, out: Path
) -> None:
    if tiny:
        sizes, txs, blocks = "2000", 1100, 3
    points = [measure(int(n), txs, blocks, seed, workdir, workers) for n in sizes.split(",")]
    table = Table(
        title=f"state tree per block ({txs} transfers, {workers} worker(s)), medians of {blocks} blocks"
    )
    for col in (
        "accounts",
        "keys",
        "prepare ms",
        "µs/key",
        "setup",
        "read",
        "finish",
        "result",
        "chunks read",
        "write ms",
        "commit ms",
    ):
        table.add_column(col, justify="right")
    for p in points:
        m = p["median"]
        table.add_row(
            f"{p['accounts']:,}",
            f"{m['keys']:,.0f}",
            f"{m['prepare_ms']:.1f}",
            f"{m['prepare_us_per_key']:.2f}",
            f"{m['setup_ms']:.1f}",
            f"{m['read_ms']:.1f}",
            f"{m['finish_ms']:.1f}",
            f"{m['result_ms']:.1f}",
            f"{m['chunks_read']:,.0f}",
            f"{m['write_ms']:.1f}",
            f"{m['commit_ms']:.1f}",
        )
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"txs": txs, "blocks": blocks, "points": points}, indent=1) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
