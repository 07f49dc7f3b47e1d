"""Benchmark: the authenticated state tree (not a test; figures are reported, not asserted).

For each state size N (default 10k, 100k, 1M, 10M keys): load N keys at height 0
in ascending chunks with ``StateTree.build`` (as genesis does), then commit
``--blocks`` blocks of ``--block-keys`` written keys each (90% updates of
existing keys, 10% new keys) through ``StateTree.apply`` in one LMDB write
transaction per block, and time them end to end (Rust update, node fetches,
node writes, commit) with one ``StateTree`` across blocks, as a running node.

The block size is the same at every N (default 1,024 written keys, about 340
transfers): the acceptance compares the cost per written key as the state
grows, and a block that writes a large fraction of a small state rewrites
nearly the whole tree at once (the top levels are shared by all its keys), which
flatters the small state. With 1,024 keys the block is ~10% of the 10k state.
Reports the commit cost per written key and the size of encoded state proofs
for random present and absent keys. Then end-to-end TPS of a solo chain under
the transfer load with ``state_commitment = "smt"`` and ``"interim"``, in the
same run.

    python bench/state_tree.py --out bench/out/state_tree.json     # full (10M takes a while)
    python bench/state_tree.py --tiny --out bench/out/state_tree-tiny.json

Acceptance (issue 4): cost per written key at 10M <= 2x that at 10k; proofs < 2 KiB.
LMDB runs with sync off here (the tree's cost, not the disk's fsync, is measured);
the TPS rows use the chain's durable ``sync = "full"`` unless ``--sync none``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import struct
import tempfile
import time
from pathlib import Path

from tierchain import proofs
from tierchain.state.storage import Store
from tierchain.state.tree import StateTree
from tierchain.tools import loadgen

_U64 = struct.Struct("<Q")


def key_of(i: int) -> bytes:
    return b"bal/" + i.to_bytes(8, "big")  # the tree hashes keys, so their shape is irrelevant


def measure_size(n: int, blocks: int, block_keys: int, proofs_n: int, workdir: Path, seed: int) -> dict:
    path = Path(tempfile.mkdtemp(prefix=f"smt-{n}-", dir=workdir))
    rng = random.Random(seed)
    tree = StateTree()
    try:
        with Store(path, sync=False, map_size=256 << 30) as store:
            t0 = time.perf_counter()
            chunk = 1 << 16
            with store.write() as w:  # as the chain's genesis: streamed chunks, one bulk build
                tree.build(
                    w,
                    0,
                    (
                        [(key_of(i), _U64.pack(i)) for i in range(s, min(n, s + chunk))]
                        for s in range(0, n, chunk)
                    ),
                )
            load_s = time.perf_counter() - t0
            load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            commit_s, next_new = [], n
            for height in range(1, blocks + 1):
                writes = {}
                for _ in range(block_keys):
                    if rng.random() < 0.1:
                        writes[key_of(next_new)] = b"new"
                        next_new += 1
                    else:
                        writes[key_of(rng.randrange(n))] = _U64.pack(height)
                t0 = time.perf_counter()
                with store.write() as w:
                    root = tree.apply(w, height, writes)
                commit_s.append(time.perf_counter() - t0)
            # A restart: a new StateTree (empty chunk cache) commits one block; it
            # first refills the cache from LMDB (warm), which this block pays.
            restart = StateTree()
            writes = {key_of(rng.randrange(n)): b"restart" for _ in range(block_keys)}
            t0 = time.perf_counter()
            with store.write() as w:
                root = restart.apply(w, blocks + 1, writes)
            restart_s = time.perf_counter() - t0
            with store.write() as w:
                t0 = time.perf_counter()
                warm_chunks = StateTree().warm(w, blocks + 1)
                warm_s = time.perf_counter() - t0
            cache_bytes = tree.cache_bytes
            blocks += 1
            sizes, prove_s = [], []
            with store.read() as r:
                for j in range(proofs_n):
                    key = key_of(rng.randrange(n)) if j % 2 == 0 else key_of(10**12 + j)
                    t0 = time.perf_counter()
                    p = tree.prove(r, key, blocks)
                    prove_s.append(time.perf_counter() - t0)
                    data = p.encode()
                    assert proofs.verify_state(root, proofs.decode_state_proof(data), key)
                    sizes.append(len(data))
            db_bytes = store.size_bytes()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    per_key_us = statistics.median(commit_s) / block_keys * 1e6
    blocks -= 1
    return {
        "keys": n,
        "genesis_load_s": round(load_s, 3),
        "genesis_us_per_key": round(load_s / n * 1e6, 3),
        "max_rss_after_load_bytes": load_rss,
        "block_keys": block_keys,
        "blocks": blocks,
        "commit_ms_median": round(statistics.median(commit_s) * 1e3, 3),
        "commit_us_per_key": round(per_key_us, 3),
        "first_block_after_restart_ms": round(restart_s * 1e3, 3),
        "cache_warm_s": round(warm_s, 3),
        "cache_warm_chunks": warm_chunks,
        "cache_bytes": cache_bytes,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "proof_bytes_mean": round(statistics.mean(sizes), 1),
        "proof_bytes_max": max(sizes),
        "prove_us_median": round(statistics.median(prove_s) * 1e6, 1),
        "db_bytes": db_bytes,
    }


def measure_tps(commitment: str, accounts: int, txs: int, seconds: float, sync: str, cache: Path) -> dict:
    """Committed TPS of a fresh solo chain with the given state commitment."""
    work = loadgen.transfer_workload(accounts, txs, 4, cache_dir=cache)
    res = loadgen.run_load(work, seconds=seconds, sync=sync, node_settings={"state_commitment": commitment})
    return {
        "state_commitment": commitment,
        "accounts": accounts,
        "sync": sync,
        "tps": round(res.tps, 1),
        "committed": res.committed,
        "latency_ms_p50": res.latency_ms_p50,
        "latency_ms_p99": res.latency_ms_p99,
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["keys"] for r in rows]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(xs, [r["commit_us_per_key"] for r in rows], "o-", label="commit µs / written key")
    ax1.set_xscale("log")
    ax1.set_xlabel("keys in state")
    ax1.set_ylabel("µs per written key")
    ax2 = ax1.twinx()
    ax2.plot(xs, [r["proof_bytes_mean"] for r in rows], "s--", color="tab:orange", label="proof bytes (mean)")
    ax2.set_ylabel("proof bytes")
    fig.legend(loc="upper left")
    ax1.set_title("TierChain state tree: commit cost and proof size")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000,10000000")
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument(
        "--block-keys",
        type=int,
        default=1024,
        help="written keys per block, the same at every size (see the module docstring)",
    )
    ap.add_argument("--proofs", type=int, default=400)
    ap.add_argument("--tps-seconds", type=float, default=15.0, help="0 skips the TPS rows")
    ap.add_argument("--tps-accounts", type=int, default=100_000)
    ap.add_argument("--sync", default="full", choices=["full", "none"])
    ap.add_argument("--tiny", action="store_true", help="small parameters (CI: the script must not rot)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench/out/state_tree.json"))
    a = ap.parse_args()
    if a.tiny:
        a.sizes, a.blocks, a.block_keys, a.proofs = "1000,10000", 2, 512, 40
        a.tps_seconds, a.tps_accounts = 2.0, 2000
    workdir = a.workdir or Path(tempfile.gettempdir())
    rows = []
    print(
        f"{'keys':>10} {'load µs/key':>12} {'commit ms':>10} {'µs/key':>8}"
        f" {'proof B mean':>12} {'max':>5} {'prove µs':>9} {'restart ms':>10} {'warm s':>7}"
        f" {'cache MiB':>9} {'RSS MiB':>8}"
    )
    for n in map(int, a.sizes.split(",")):
        row = measure_size(n, a.blocks, a.block_keys, a.proofs, workdir, seed=n)
        rows.append(row)
        print(
            f"{n:>10,} {row['genesis_us_per_key']:>12} {row['commit_ms_median']:>10}"
            f" {row['commit_us_per_key']:>8}"
            f" {row['proof_bytes_mean']:>12} {row['proof_bytes_max']:>5} {row['prove_us_median']:>9}"
            f" {row['first_block_after_restart_ms']:>10} {row['cache_warm_s']:>7}"
            f" {row['cache_bytes'] / 2**20:>9.1f} {row['max_rss_bytes'] / 2**20:>8.0f}",
            flush=True,
        )
    ratio = rows[-1]["commit_us_per_key"] / rows[0]["commit_us_per_key"]
    print(
        f"per-key commit cost, largest / smallest state: {ratio:.2f}x (aim <= 2x); "
        f"largest proof {max(r['proof_bytes_max'] for r in rows)} B (aim < 2048)"
    )
    tps = []
    txs = int(a.tps_seconds * 40_000)
    cache = Path("bench/out/cache")
    for commitment in ("interim", "smt", "interim", "smt") if a.tps_seconds > 0 else ():
        t = measure_tps(commitment, a.tps_accounts, txs, a.tps_seconds, a.sync, cache)
        tps.append(t)
        print(
            f"TPS {commitment:>8} ({a.sync} sync, {a.tps_accounts:,} accounts): {t['tps']:,.0f}", flush=True
        )
    best = {c: max(t["tps"] for t in tps if t["state_commitment"] == c) for c in ("smt", "interim") if tps}
    if tps:
        print(f"TPS smt / interim (best of 2 each): {best['smt'] / best['interim']:.2f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "sizes": rows,
        "commit_ratio_largest_vs_smallest": round(ratio, 3),
        "tps": tps,
        "tps_best": best,
        "threads": os.environ.get("TIERCHAIN_THREADS", "all"),
        "lmdb_sync_tree_rows": "none (tree cost only)",
    }
    a.out.write_text(json.dumps(out, indent=2))
    plot(rows, a.out.with_suffix(".png"))
    print(f"wrote {a.out} and {a.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
