"""Native primitives against their naive Python counterparts, measured in one run.

Each row times the same work two ways on the same inputs and reports the ratio;
no figure from another run or machine is ever compared. Naive counterparts:

* signatures: PyNaCl, one signature at a time, one core (what a straightforward
  node would do) -> ``tierchain_native.verify_batch_packed`` on all cores;
* Merkle root of 10,000 tx ids: a Python loop over the ``blake3`` package ->
  ``tierchain.crypto.merkle`` (Rust);
* decoding: ``tierchain.wire.tx.decode`` + tx id per transaction -> ``decode_batch``;
* scheduling: a dict-based Python scheduler -> ``tierchain._hot`` (Cython);
* LMDB batch reads: py-lmdb ``getmulti`` -> ``tierchain_native.LmdbTxn.get_many``
  (the store's binding), alone and beside a thread running Python (py-lmdb
  gives the GIL up and takes it back around every key; see storage.py).

Usage: python bench/primitives.py [--tiny] [--txs N] [--out FILE.json]
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import click
import lmdb
import nacl.signing
import tierchain_native
from rich.console import Console
from rich.table import Table

from tierchain.crypto import merkle
from tierchain.engine import schedule
from tierchain.wire import tx
from tierchain.wire.batch import decode_batch

sys.path.insert(0, str(Path(__file__).parent))
from workloads import transfers


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` runs: the least disturbed by the other core's noise."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def mean_seconds(fn: Callable[[], object], duration_s: float) -> float:
    """Mean wall time of as many runs as fit in ``duration_s`` (at least one): for
    costs that come from rare, long stalls, which the best run would hide."""
    n, t0 = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < duration_s:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def naive_merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 shape, level by level, one ``blake3`` call per node."""
    if not leaves:
        return blake3.blake3(b"").digest()
    level = [blake3.blake3(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        nxt = [blake3.blake3(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def naive_decode(txs: list[bytes]) -> list[tuple[tx.Tx, bytes]]:
    return [(tx.decode(t), tx.tx_id(t[:-64])) for t in txs]


def measure(n_txs: int, repeat: int, merkle_leaves: int) -> list[dict]:
    # Every transaction from its own key: the batch verifier coalesces signatures by
    # key, so shared senders would flatter the signature row.
    work = transfers(n_txs, senders=n_txs)
    txs, buf = work.txs, work.buf
    batch = decode_batch(buf)
    assert not batch.code.any(), "workload must be valid"
    rows: list[dict] = []

    def row(
        name: str, unit: str, items: int, naive: Callable, native: Callable, aim: float, reps: int = 1
    ) -> None:
        naive_s = best_seconds(naive, max(1, repeat // 2))
        native_s = best_seconds(native, repeat * reps)
        rows.append(
            {
                "primitive": name,
                "items": items,
                "unit": unit,
                "naive_per_s": items / naive_s,
                "native_per_s": items / native_s,
                "ratio": naive_s / native_s,
                "aim_ratio": aim,
            }
        )

    # Signatures: the naive node verifies one tx at a time with libsodium.
    pks, digests, sigs = batch.sender.tobytes(), batch.digest.tobytes(), batch.signature.tobytes()
    n_sig = min(n_txs, 20_000)  # PyNaCl is slow; its rate is flat in n
    naive_items = [
        (bytes(batch.sender[i]), bytes(batch.digest[i]), bytes(batch.signature[i])) for i in range(n_sig)
    ]

    def nacl_one_core() -> None:
        for pk, msg, sig in naive_items:
            nacl.signing.VerifyKey(pk).verify(msg, sig)

    naive_sig_s = best_seconds(nacl_one_core, 1)
    native_sig_s = best_seconds(lambda: tierchain_native.verify_batch_packed(pks, digests, sigs), repeat)
    rows.append(
        {
            "primitive": "ed25519 verify (batch, all cores)",
            "items": n_txs,
            "unit": "sig",
            "naive_per_s": n_sig / naive_sig_s,
            "native_per_s": n_txs / native_sig_s,
            "ratio": (n_txs / native_sig_s) / (n_sig / naive_sig_s),
            "aim_ratio": 3.0,
        }
    )

    leaves = [bytes(batch.digest[i % n_txs]) for i in range(merkle_leaves)]
    packed = b"".join(leaves)
    assert naive_merkle_root(leaves) == merkle.root(leaves)
    row(
        "merkle root (list of bytes)",
        "leaf",
        merkle_leaves,
        lambda: naive_merkle_root(leaves),
        lambda: merkle.root(leaves),
        20.0,
        reps=20,
    )
    row(
        "merkle root (packed buffer)",
        "leaf",
        merkle_leaves,
        lambda: naive_merkle_root(leaves),
        lambda: tierchain_native.merkle_root_packed(packed, 32),
        20.0,
        reps=20,
    )

    rows.extend(lmdb_rows(repeat, busy_s=0.2 if repeat == 1 else 2.0))
    row("decode + tx id", "tx", n_txs, lambda: naive_decode(txs), lambda: decode_batch(buf), 0.0)
    decoded = naive_decode(txs)
    row(
        "conflict schedule",
        "tx",
        n_txs,
        lambda: schedule.schedule_reference(schedule.access_sets([t for t, _ in decoded])),
        lambda: schedule.schedule(batch),
        0.0,
    )
    row(
        "decode + tx id + schedule",
        "tx",
        n_txs,
        lambda: schedule.schedule_reference(schedule.access_sets([t for t, _ in naive_decode(txs)])),
        lambda: schedule.schedule(decode_batch(buf)),
        0.0,
    )
    return rows


def _spin(stop: threading.Event) -> None:
    """Python bytecode, holding the GIL between switch intervals, until ``stop``."""
    while not stop.is_set():
        pass


def lmdb_rows(repeat: int, records: int = 30_000, batch: int = 600, busy_s: float = 2.0) -> list[dict]:
    """Batch reads of sorted random keys from the same records through both bindings.

    Beside a busy thread the cost is a race (a GIL hand-off stalls only when the
    other thread wins it), so that row is the mean over ``busy_s`` per binding.
    """
    rng = random.Random(7)
    items = sorted((rng.randbytes(33), rng.randbytes(8)) for _ in range(records))
    with tempfile.TemporaryDirectory() as d:
        py_env = lmdb.open(os.path.join(d, "py"), map_size=1 << 30, max_dbs=2)
        py_db = py_env.open_db(b"t")
        with py_env.begin(write=True) as t, t.cursor(db=py_db) as c:
            c.putmulti(items, append=True)
        env = tierchain_native.LmdbEnv(
            os.path.join(d, "native"), map_size=1 << 30, max_dbs=2, sync=False, readonly=False, max_readers=8
        )
        db = env.open_db("t", True)
        w = env.begin(True)
        w.put_many(db, items, True)
        w.commit()

        def py_read(keys: list[bytes]) -> Callable[[], object]:
            def run() -> object:
                with py_env.begin() as t, t.cursor(db=py_db) as c:
                    return dict(c.getmulti(keys))

            return run

        def native_read(keys: list[bytes]) -> Callable[[], object]:
            def run() -> object:
                t = env.begin(False)
                try:
                    return t.get_many(db, keys)
                finally:
                    t.abort()

            return run

        rows = []
        for label, busy in (("alone", False), ("beside a busy Python thread", True)):
            keys = sorted(k for k, _ in rng.sample(items, batch))
            reads = (py_read(keys), native_read(keys))
            assert reads[0]() == reads[1]()
            if busy:
                stop = threading.Event()
                spinner = threading.Thread(target=_spin, args=(stop,), daemon=True)
                spinner.start()
                try:
                    naive_s, native_s = (mean_seconds(f, busy_s) for f in reads)
                finally:
                    stop.set()
                    spinner.join()
            else:
                naive_s, native_s = (best_seconds(f, repeat * 20) for f in reads)
            rows.append(
                {
                    "primitive": f"LMDB read of {batch} keys, {label}",
                    "items": batch,
                    "unit": "key",
                    "naive_per_s": batch / naive_s,
                    "native_per_s": batch / native_s,
                    "ratio": naive_s / native_s,
                    "aim_ratio": 1.0,
                }
            )
        env.close()
        py_env.close()
    return rows


@click.command()
@click.option(
    "--tiny", is_flag=True, help="Tiny parameters (CI): checks the script runs, figures mean little."
)
@click.option(
    "--txs",
    type=int,
    default=65_536,
    show_default=True,
    help="Transactions in the workload (<= limits.batch_txs_max).",
)
@click.option(
    "--repeat", type=int, default=5, show_default=True, help="Runs per measurement; the best counts."
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write results as JSON here.")
def main(tiny: bool, txs: int, repeat: int, out: str | None) -> None:
    if tiny:
        txs, repeat = 2_000, 1
    merkle_leaves = 10_000 if not tiny else 1_000
    console = Console()
    console.print(
        f"[bold]TierChain primitives[/bold]: {txs} txs, best of {repeat}, "
        f"{os.cpu_count()} cores, native threads {tierchain_native.thread_count()}"
    )
    rows = measure(txs, repeat, merkle_leaves)
    table = Table("primitive", "items", "naive /s", "native /s", "ratio", "aim")
    for r in rows:
        aim = f">= {r['aim_ratio']:.0f}x" if r["aim_ratio"] else ">= 1M tx/s"
        table.add_row(
            r["primitive"],
            str(r["items"]),
            f"{r['naive_per_s']:,.0f}",
            f"{r['native_per_s']:,.0f}",
            f"{r['ratio']:.1f}x",
            aim,
        )
    console.print(table)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "txs": txs,
            "repeat": repeat,
            "tiny": tiny,
            "rows": rows,
        }
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
