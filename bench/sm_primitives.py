"""National-crypto primitives (tierchain.crypto.sm), measured in one run.

* SM2 verification per second: one core (``sm.verify`` one at a time) and all
  cores (``sm.verify_batch_packed``), with the Ed25519 packed batch beside it;
* the cost of the 33-byte compressed public key: point decompression
  (``sm.public_key_uncompressed``, minus the call overhead of ``sm.sm3(b"")``);
* SM2 signing time (deterministic, includes deriving the public key and ZA);
* SM3 nanoseconds per 100-byte and 300-byte message against BLAKE3, both in
  the native serial batch path (``hash_many`` with 255 items, the domain-separated
  hashes the suites use) and per Python call (``sm.sm3`` vs the ``blake3`` package).

Usage: python bench/sm_primitives.py [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import click
import nacl.signing
import tierchain_native
from rich.console import Console
from rich.table import Table

from tierchain.crypto import sm

CONTEXT = "tierchain 2026 tx body"


def best(repeat: int, fn: Callable[[], object]) -> float:
    """Best wall time of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sm2_items(n: int) -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
    secrets, keys, digests, signatures = [], [], [], []
    for i in range(n):
        d, pk = sm.keypair_from_seed(i.to_bytes(32, "little"))
        digest = sm.hash(CONTEXT, i.to_bytes(8, "little"))
        secrets.append(d)
        keys.append(pk)
        digests.append(digest)
        signatures.append(sm.sign(d, digest))
    return secrets, keys, digests, signatures


def measure(n: int, repeat: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    secrets, keys, digests, signatures = sm2_items(n)
    single = best(
        repeat, lambda: [sm.verify(k, m, s) for k, m, s in zip(keys, digests, signatures, strict=True)]
    )
    pk_col, dg_col, sg_col = b"".join(keys), b"".join(digests), b"".join(signatures)
    assert sm.verify_batch_packed(pk_col, dg_col, sg_col) == b"\x01" * n
    batched = best(repeat, lambda: sm.verify_batch_packed(pk_col, dg_col, sg_col))
    rows.append(
        {
            "primitive": "SM2 verify, one core",
            "items": n,
            "us_per_item": single / n * 1e6,
            "per_s": n / single,
        }
    )
    rows.append(
        {
            "primitive": f"SM2 verify_batch_packed, {tierchain_native.thread_count()} threads",
            "items": n,
            "us_per_item": batched / n * 1e6,
            "per_s": n / batched,
        }
    )
    ed = [nacl.signing.SigningKey(i.to_bytes(32, "little")) for i in range(n)]
    ed_pk = b"".join(bytes(k.verify_key) for k in ed)
    ed_sg = b"".join(k.sign(m).signature for k, m in zip(ed, digests, strict=True))
    ed_time = best(repeat, lambda: tierchain_native.verify_batch_packed(ed_pk, dg_col, ed_sg))
    rows.append(
        {
            "primitive": "Ed25519 verify_batch_packed (reference)",
            "items": n,
            "us_per_item": ed_time / n * 1e6,
            "per_s": n / ed_time,
        }
    )
    decompress = best(repeat, lambda: [sm.public_key_uncompressed(k) for k in keys])
    overhead = best(repeat, lambda: [sm.sm3(b"") for _ in keys])
    rows.append(
        {
            "primitive": "SM2 key decompression (33 -> 65 bytes, net of call overhead)",
            "items": n,
            "us_per_item": max(decompress - overhead, 0.0) / n * 1e6,
            "per_s": n / max(decompress - overhead, 1e-9),
        }
    )
    signing = best(repeat, lambda: [sm.sign(d, m) for d, m in zip(secrets, digests, strict=True)])
    rows.append({"primitive": "SM2 sign", "items": n, "us_per_item": signing / n * 1e6, "per_s": n / signing})
    for size in (100, 300):
        rows += hash_rows(size, max(1, n // 10), repeat)
    return rows


def hash_rows(size: int, rounds: int, repeat: int) -> list[dict[str, object]]:
    """SM3 against BLAKE3 on ``size``-byte messages, native serial batches and per call."""
    items = 255  # below the parallel threshold: one thread, no Python per item
    buf = os.urandom(items * size)
    starts = [i * size for i in range(items)]
    ends = [s + size for s in starts]
    data = buf[:size]
    calls = items * rounds
    t_sm3 = best(repeat, lambda: [sm.hash_many(CONTEXT, buf, starts, ends) for _ in range(rounds)])
    t_b3 = best(
        repeat, lambda: [tierchain_native.hash_many(CONTEXT, buf, starts, ends) for _ in range(rounds)]
    )
    p_sm3 = best(repeat, lambda: [sm.sm3(data) for _ in range(calls)])
    p_b3 = best(repeat, lambda: [blake3.blake3(data).digest() for _ in range(calls)])
    return [
        {"primitive": name, "items": calls, "us_per_item": t / calls * 1e6, "per_s": calls / t}
        for name, t in (
            (f"SM3 domain hash, {size} B (native batch)", t_sm3),
            (f"BLAKE3 derive_key, {size} B (native batch)", t_b3),
            (f"SM3 {size} B (one Python call each)", p_sm3),
            (f"BLAKE3 {size} B (blake3 package, one call each)", p_b3),
        )
    ]


@click.command()
@click.option(
    "--tiny", is_flag=True, help="Tiny parameters (CI): checks the script runs, figures mean little."
)
@click.option("--sigs", type=int, default=4000, show_default=True, help="SM2 signatures in the workload.")
@click.option(
    "--repeat", type=int, default=3, show_default=True, help="Runs per measurement; the best counts."
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write results as JSON here.")
def main(tiny: bool, sigs: int, repeat: int, out: str | None) -> None:
    if tiny:
        sigs, repeat = 40, 1
    console = Console()
    console.print(
        f"[bold]TierChain national-crypto primitives[/bold]: {sigs} signatures, best of {repeat}, "
        f"{os.cpu_count()} cores, native threads {tierchain_native.thread_count()}"
    )
    rows = measure(sigs, repeat)
    table = Table("primitive", "items", "µs / item", "per s")
    for r in rows:
        table.add_row(str(r["primitive"]), str(r["items"]), f"{r['us_per_item']:.3f}", f"{r['per_s']:,.0f}")
    console.print(table)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "sigs": sigs,
            "repeat": repeat,
            "tiny": tiny,
            "rows": rows,
        }
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
