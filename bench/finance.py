"""Voucher-lifecycle TPS beside plain transfers, on the same engine, in one run.

Both workloads are pre-signed before the clock starts and driven the same way:
one submitter sends the stream in order, ``--batch`` transactions per submit,
``--inflight`` submits outstanding, into a fresh solo chain (durable commits
unless ``--sync none``). The lifecycle stream is ``tierchain.apps.finance.workload``
(7 ops per voucher: anchor, confirm, split, offer, accept, discount offer, bank
accept); the transfer stream is ``tierchain.apps.accounts.transfer`` among funded accounts.

Usage: python bench/finance.py [--vouchers 4000] [--sync full|none] [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import click

from tierchain.apps import accounts as accounts_app
from tierchain.apps.finance.workload import TXS_PER_VOUCHER, lifecycle_workload
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine import gc_tuning
from tierchain.engine.chain import Chain
from tierchain.errors import Reject


def drive(chain: Chain, txs: list[bytes], batch_txs: int, inflight: int) -> dict:
    """Submit ``txs`` in order; return committed/failed counts and seconds to the last commit."""
    pending, ok, failed, rejected = [], 0, 0, 0
    t0 = time.perf_counter()

    def settle(sub) -> None:
        nonlocal ok, failed, rejected
        rejected += len(sub.rejections())
        for r in sub.wait(300):
            if r is not None:
                ok += r.code == Reject.OK
                failed += r.code != Reject.OK

    for i in range(0, len(txs), batch_txs):
        pending.append(chain.submit(txs[i : i + batch_txs]))
        if len(pending) >= inflight:
            settle(pending.pop(0))
    for sub in pending:
        settle(sub)
    seconds = time.perf_counter() - t0
    return {"txs": len(txs), "committed": ok, "failed": failed, "rejected": rejected, "seconds": seconds,
            "tps": ok / seconds}  # fmt: skip


def transfer_stream(accounts: int, n: int, chain_id: int, seed: int = 3) -> tuple[list[bytes], list[KeyPair]]:
    rng = random.Random(seed)
    keys = [KeyPair.from_seed(rng.randbytes(32)) for _ in range(accounts)]
    nonces = [0] * accounts
    out = []
    for i in range(n):
        s = i % accounts
        to = (s + 1 + rng.randrange(accounts - 1)) % accounts
        tx = accounts_app.transfer(
            chain_id, keys[s].public_key, nonces[s], keys[to].public_key, rng.randrange(1, 100)
        )
        nonces[s] += 1
        out.append(keys[s].sign_tx(tx).encode())
    return out, keys


@click.command()
@click.option("--vouchers", type=int, default=4000, show_default=True)
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--batch", "batch_txs", type=int, default=512, show_default=True)
@click.option("--inflight", type=int, default=4, show_default=True)
@click.option("--block-txs-max", type=int, default=4096, show_default=True)
@click.option("--tiny", is_flag=True, help="Tiny parameters (CI): the script runs; figures mean little.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(vouchers, sync, batch_txs, inflight, block_txs_max, tiny, out) -> None:
    gc_tuning.tune()  # as a node's process runs (engine/gc_tuning.py)
    if tiny:
        vouchers, batch_txs = 60, 64
    t0 = time.perf_counter()
    work = lifecycle_workload(vouchers)
    n = len(work.txs)
    transfers, accounts = transfer_stream(1000, n, work.chain_id)
    prep_s = time.perf_counter() - t0
    base = work.config(sync=sync, block_txs_max=block_txs_max, block_interval_ms=20,
                       mempool_txs_max=max(100_000, 4 * block_txs_max))  # fmt: skip
    results = {}
    for name in ("transfers", "lifecycle"):
        directory = Path(tempfile.mkdtemp(prefix=f"tierchain-fin-{name}-"))
        cfg = base
        if name == "transfers":
            funded = tuple(GenesisAccount(k.public_key, (), 10**12) for k in accounts)
            cfg = ChainConfig(**{**base.__dict__, "genesis_accounts": base.genesis_accounts + funded})
        try:
            with Chain(directory, cfg, work.node) as chain:
                if name == "lifecycle":
                    setup = chain.submit(work.setup).wait(60)
                    assert all(r.code == Reject.OK for r in setup), "setup failed"
                results[name] = drive(
                    chain, work.txs if name == "lifecycle" else transfers, batch_txs, inflight
                )
                results[name]["height"] = chain.height
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    lc, tr = results["lifecycle"], results["transfers"]
    report = {
        "sync": sync,
        "durable": sync == "full",
        "vouchers": vouchers,
        "txs_per_voucher": TXS_PER_VOUCHER,
        "prepare_s": prep_s,
        "lifecycle": lc,
        "transfers": tr,
        "vouchers_per_s": lc["committed"] / TXS_PER_VOUCHER / lc["seconds"],
        "lifecycle_over_transfers": lc["tps"] / tr["tps"],
    }
    note = "" if sync == "full" else "  [sync=none: NOT DURABLE]"
    click.echo(
        f"voucher lifecycle {lc['tps']:,.0f} TPS ({report['vouchers_per_s']:,.0f} vouchers/s, "
        f"{lc['committed']:,}/{lc['txs']:,} committed, {lc['failed']} failed); plain transfers "
        f"{tr['tps']:,.0f} TPS; ratio {report['lifecycle_over_transfers']:.2f} (sync={sync}){note}"
    )
    if lc["failed"] or lc["rejected"] or tr["failed"] or tr["rejected"]:
        raise SystemExit("some transactions failed or were rejected: the workload is not valid")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
