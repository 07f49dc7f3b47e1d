"""Confidential-amount primitives (``tierchain.crypto.confidential``): proof rates.

Rows (64-bit amounts; every proof bound to its own context, like one per transaction):

* range proofs (Bulletproofs+) over 1, 2 and 4 amounts: proving time;
  verification one call per proof (one core, from Python) and in batches of 64
  and 256 proofs (one native call each: Bulletproofs+ batch verification in chunks
  across all cores, GIL released); proofs/s and amounts/s;
* grouped-ciphertext validity proofs (2 and 3 keys: holder + regulator, + counterparty):
  proving time, single and batched verification;
* decryption of an amount just below the 2**32 bound (discrete log).

Every figure is the median of ``--repeat`` runs. The issue's aim: >= 2,000 range
proofs verified per second on this machine's cores.

Usage: python bench/confidential.py [--tiny] [--repeat N] [--out FILE.json]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import tierchain_native
from rich.console import Console
from rich.table import Table

from tierchain.crypto import confidential as conf

AIM_RANGE_PER_S = 2_000


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_range_proofs(n: int, m: int) -> tuple[list[bytes], list[list[bytes]], list[bytes]]:
    """``n`` proofs over ``m`` amounts each, made on all cores (proving releases the GIL)."""

    def one(i: int) -> tuple[bytes, list[bytes], bytes]:
        ctx = i.to_bytes(8, "big") * 4  # a stand-in for a 32-byte transaction digest
        amounts = [(i * 7919 + j * 104729) % 2**64 for j in range(m)]
        rp = conf.prove_range(amounts, [conf.random_opening() for _ in range(m)], ctx)
        return rp.proof, list(rp.commitments), ctx

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        rows = list(pool.map(one, range(n)))
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def range_rows(batches: tuple[int, ...], repeat: int) -> list[dict]:
    rows: list[dict] = []
    n = max(batches)
    for m in (1, 2, 4):
        proofs, commitments, contexts = make_range_proofs(n, m)
        assert all(conf.verify_range_batch(proofs, commitments, contexts))
        openings = [conf.random_opening() for _ in range(m)]
        prove_s = median_seconds(lambda: conf.prove_range([12345] * m, openings, b"ctx"), repeat)  # noqa: B023
        k = min(n, 32)

        def singly(k: int = k, p=proofs, c=commitments, x=contexts) -> None:
            for i in range(k):
                conf.verify_range(p[i], c[i], x[i])

        single_s = median_seconds(singly, repeat) / k
        row = {
            "amounts_per_proof": m,
            "proof_bytes": len(proofs[0]),
            "prove_ms": prove_s * 1e3,
            "verify_single_per_s": 1 / single_s,
        }
        for b in batches:
            args = (proofs[:b], commitments[:b], contexts[:b])
            batch_s = median_seconds(lambda a=args: conf.verify_range_batch(*a), repeat)
            row[f"verify_batch{b}_per_s"] = b / batch_s
            row[f"verify_batch{b}_amounts_per_s"] = b * m / batch_s
        rows.append(row)
    return rows


def validity_rows(batch: int, repeat: int) -> list[dict]:
    keys = [conf.elgamal_keypair(bytes([i + 1]) * 32) for i in range(3)]
    rows: list[dict] = []
    for handles in (2, 3):
        pubs = [k.public for k in keys[:handles]]

        def one(i: int, pubs: list[bytes] = pubs) -> tuple[bytes, conf.GroupedCiphertext, bytes]:
            r, ctx = conf.random_opening(), i.to_bytes(32, "big")
            return conf.prove_validity(i, r, pubs, ctx), conf.encrypt(i, r, pubs), ctx

        items = [one(i) for i in range(batch)]
        proofs, cts, ctxs = ([it[j] for it in items] for j in range(3))
        all_pubs = [pubs] * batch
        assert all(conf.verify_validity_batch(proofs, cts, all_pubs, ctxs))
        r = conf.random_opening()
        prove_s = median_seconds(lambda pubs=pubs, r=r: conf.prove_validity(5, r, pubs, b"ctx"), repeat)
        k = min(batch, 64)

        def singly(k: int = k, pubs: list[bytes] = pubs) -> None:
            for i in range(k):
                conf.verify_validity(proofs[i], cts[i], pubs, ctxs[i])  # noqa: B023

        single_s = median_seconds(singly, repeat) / k
        batch_s = median_seconds(lambda: conf.verify_validity_batch(proofs, cts, all_pubs, ctxs), repeat)  # noqa: B023
        rows.append(
            {
                "handles": handles,
                "proof_bytes": len(proofs[0]),
                "prove_ms": prove_s * 1e3,
                "verify_single_per_s": 1 / single_s,
                f"verify_batch{batch}_per_s": batch / batch_s,
            }
        )
    return rows


def decrypt_row(repeat: int) -> dict:
    k = conf.elgamal_keypair(b"\x09" * 32)
    amount = 2**32 - 12345
    ct = conf.encrypt(amount, conf.random_opening(), [k.public])
    assert conf.decrypt(k.secret, ct, 0) == amount
    small = conf.encrypt(1_000, conf.random_opening(), [k.public])
    return {
        "decrypt_near_2_32_ms": median_seconds(lambda: conf.decrypt(k.secret, ct, 0), repeat) * 1e3,
        "decrypt_small_ms": median_seconds(lambda: conf.decrypt(k.secret, small, 0), repeat) * 1e3,
        "decrypts_to_us": median_seconds(lambda: conf.decrypts_to(k.secret, ct, 0, amount), repeat) * 1e6,
    }


@click.command()
@click.option("--tiny", is_flag=True, help="Tiny parameters (CI): the script runs; figures mean little.")
@click.option(
    "--repeat", type=int, default=5, show_default=True, help="Runs per measurement; the median counts."
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write results as JSON here.")
def main(tiny: bool, repeat: int, out: str | None) -> None:
    batches = (64, 256) if not tiny else (8, 16)
    validity_batch = 256 if not tiny else 16
    if tiny:
        repeat = 1
    console = Console()
    console.print(
        f"[bold]Confidential primitives[/bold]: median of {repeat}, {os.cpu_count()} cores, "
        f"native threads {tierchain_native.thread_count()}"
    )
    ranges = range_rows(batches, repeat)
    table = Table(
        "amounts/proof", "bytes", "prove ms", "verify 1-by-1 /s", *(f"batch {b} /s" for b in batches)
    )
    for r in ranges:
        table.add_row(
            str(r["amounts_per_proof"]),
            str(r["proof_bytes"]),
            f"{r['prove_ms']:.1f}",
            f"{r['verify_single_per_s']:,.0f}",
            *(
                f"{r[f'verify_batch{b}_per_s']:,.0f} ({r[f'verify_batch{b}_amounts_per_s']:,.0f} amounts)"
                for b in batches
            ),
        )
    console.print("Range proofs (64-bit), proofs verified per second; aim >= 2,000/s")
    console.print(table)
    validity = validity_rows(validity_batch, repeat)
    vt = Table("keys", "bytes", "prove ms", "verify 1-by-1 /s", f"batch {validity_batch} /s")
    for r in validity:
        vt.add_row(
            str(r["handles"]),
            str(r["proof_bytes"]),
            f"{r['prove_ms']:.2f}",
            f"{r['verify_single_per_s']:,.0f}",
            f"{r[f'verify_batch{validity_batch}_per_s']:,.0f}",
        )
    console.print("Grouped-ciphertext validity proofs")
    console.print(vt)
    dec = decrypt_row(repeat)
    console.print(
        f"Decryption: {dec['decrypt_near_2_32_ms']:.1f} ms near 2**32, "
        f"{dec['decrypt_small_ms']:.1f} ms for 1,000; checking an amount {dec['decrypts_to_us']:.0f} us"
    )
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "native_threads": tierchain_native.thread_count(),
                "python": platform.python_version(),
            },
            "repeat": repeat,
            "tiny": tiny,
            "aim_range_proofs_per_s": AIM_RANGE_PER_S,
            "range_proofs": ranges,
            "validity_proofs": validity,
            "decryption": dec,
        }
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
