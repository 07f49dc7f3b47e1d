"""Batch signature verification with new keys and with keys seen before (not a test;
figures are reported): what the verifier's cache of decoded keys buys, and what a key
it has never seen costs.

Each round verifies ``--n`` signatures (Ed25519, one 32-byte message each, on all cores:
``tierchain_native.verify_batch_packed``) twice: first by ``--n`` keys this process
has never seen (every key decoded), then the same signatures again (every key cached).
Rounds sign with fresh keys each time. Reported: median (min..max) signatures per
second of each kind, and their ratio.

Usage: python bench/verify_keys.py [--n 16384] [--rounds 5] [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
import nacl.signing
import tierchain_native

from figures import fmt, spread  # bench/figures.py (scripts run from bench/)


def _signed(n: int) -> tuple[bytes, bytes, bytes]:
    keys, messages, signatures = [], [], []
    for _ in range(n):
        sk, message = nacl.signing.SigningKey.generate(), os.urandom(32)
        keys.append(bytes(sk.verify_key))
        messages.append(message)
        signatures.append(sk.sign(message).signature)
    return b"".join(keys), b"".join(messages), b"".join(signatures)


def measure(n: int, rounds: int) -> dict:
    rates: dict[str, list[float]] = {"new keys": [], "seen keys": []}
    for _ in range(rounds):
        keys, messages, signatures = _signed(n)
        for kind in rates:
            t0 = time.perf_counter()
            verdicts = tierchain_native.verify_batch_packed(keys, messages, signatures)
            rates[kind].append(n / (time.perf_counter() - t0))
            if not all(verdicts):
                raise SystemExit("a valid signature was refused")
    out: dict = {"n": n, "rounds": rounds, **{kind: spread(r) for kind, r in rates.items()}}
    out["seen_over_new"] = out["seen keys"]["median"] / out["new keys"]["median"]
    return out


@click.command()
@click.option("--n", default=16_384, show_default=True, help="signatures per round")
@click.option("--rounds", default=5, show_default=True)
@click.option("--tiny", is_flag=True, help="a few small rounds (CI)")
@click.option("--out", type=click.Path(path_type=Path))
def main(n: int, rounds: int, tiny: bool, out: Path | None) -> None:
    if tiny:
        n, rounds = 256, 2
    r = measure(n, rounds)
    for kind in ("new keys", "seen keys"):
        print(f"{kind:>9}: {fmt(r[kind])} sig/s")
    print(f"seen / new: {r['seen_over_new']:.2f}x")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
