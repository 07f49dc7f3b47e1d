"""The replicated node's app, in process: CPU per transaction of each ABCI step, no CometBFT.

Drives a ``TierChainApp`` (tierchain.replication.app) through the ABCI server's request
path (``AbciServer._answer``: protobuf requests parsed, the app called, answers framed)
the way CometBFT does for one block of transfers: CheckTx of every transaction (``NEW``,
in reads of ``--read`` requests), FinalizeBlock + Commit of the first ``--block``, then
the recheck of what is left (``RECHECK``). Reports microseconds per transaction of each
step, median (min..max) over ``--repeat`` fresh chains. What bench/replication.py's
``tc1`` spends in the app, step by step (docs/replication.md, "Measured").

To compare two trees, run it with each on PYTHONPATH, alternating:
``PYTHONPATH=<tree>/core python bench/abci_app.py``.

Usage: python bench/abci_app.py [--txs 16384] [--block 6000] [--read 256] [--repeat 5] [--tiny] [--out FILE]
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import click

from tierchain.crypto import KeyPair
from tierchain.replication import abci_pb
from tierchain.replication.abci_server import AbciServer
from tierchain.replication.app import GENESIS_KEY, TierChainApp, cometbft_chain_id, genesis_digest
from tierchain.replication.app import validator_address as address_of
from tierchain.replication.ledger import ReplicaChain
from tierchain.tools.loadgen import genesis_config, transfer_workload

NODE = KeyPair.from_seed(b"abci bench node".ljust(32, b"\0"))
VALIDATOR = KeyPair.from_seed(b"abci bench validator".ljust(32, b"\0"))


def _check_txs(server: AbciServer, txs: list[bytes], kind: int, read: int) -> float:
    """Seconds to answer CheckTx of ``txs``, ``read`` requests per socket read."""
    encoded = [abci_pb.Request(check_tx={"tx": t, "type": kind}).SerializeToString() for t in txs]
    parse = abci_pb.Request.FromString
    t0 = time.perf_counter()
    for i in range(0, len(encoded), read):
        server._answer([parse(r) for r in encoded[i : i + read]])
    return time.perf_counter() - t0


def one_run(txs: list[bytes], config, block: int, read: int, tmp: Path) -> dict[str, float]:
    new = abci_pb.enum_value("tendermint.abci.CheckTxType", "NEW")
    recheck = abci_pb.enum_value("tendermint.abci.CheckTxType", "RECHECK")
    app = TierChainApp(ReplicaChain(tmp / "chain", config, NODE))
    try:
        init = abci_pb.RequestInitChain(
            chain_id=cometbft_chain_id(config),
            app_state_bytes=json.dumps({GENESIS_KEY: genesis_digest(config)}).encode(),
            initial_height=1,
        )
        v = init.validators.add()
        v.pub_key.ed25519, v.power = VALIDATOR.public_key, 10
        app.init_chain(init)
        server = AbciServer(app, tmp / "abci.sock")  # never started: only its request path
        t_new = _check_txs(server, txs, new, read)
        fin = abci_pb.RequestFinalizeBlock(
            txs=txs[:block],
            height=1,
            hash=hashlib.sha256(b"block 1").digest(),
            proposer_address=address_of(VALIDATOR.public_key),
        )
        fin.time.seconds = config.genesis_timestamp_ms // 1000 + 1
        t0 = time.perf_counter()
        answer = app.finalize_block(fin)
        app.commit(abci_pb.RequestCommit())
        t_block = time.perf_counter() - t0
        if any(r.code for r in answer.tx_results):
            raise SystemExit("a transaction of the block failed: the workload does not fit the genesis")
        t_recheck = _check_txs(server, txs[block:], recheck, read)
    finally:
        app.close()
    return {
        "check_new_us": t_new / len(txs) * 1e6,
        "finalize_commit_us": t_block / block * 1e6,
        "recheck_us": t_recheck / (len(txs) - block) * 1e6,
    }


@click.command()
@click.option("--txs", type=click.IntRange(2, 1 << 20), default=16384, show_default=True)
@click.option("--block", type=click.IntRange(1, 65536), default=6000, show_default=True)
@click.option("--read", type=click.IntRange(1, 4096), default=256, show_default=True, help="CheckTx a read.")
@click.option("--accounts", type=click.IntRange(2, 1 << 24), default=10_000, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--tiny", is_flag=True, help="512 transactions, one run: keeps the script from rotting.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(txs: int, block: int, read: int, accounts: int, repeat: int, tiny: bool, out: Path | None) -> None:
    if tiny:
        txs, block, accounts, repeat = 512, 200, 1000, 1
    if block >= txs:
        raise click.BadParameter("--block must be below --txs (the rest is rechecked)")
    work = transfer_workload(accounts, txs, 1, processes=1)
    signed = work.all_txs()[:txs]  # one stream: each sender's nonces in order
    config = genesis_config(work, NODE, sync="none", block_txs_max=max(block, 4096), block_interval_ms=100)
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_run(signed, config, block, read, Path(tmp)))
    report = {"txs": txs, "block": block, "read": read, "accounts": accounts, "repeat": repeat, "steps": {}}
    click.echo(f"{txs} transfers, block of {block}, {read} CheckTx per read; µs per tx, median (min..max)")
    for step in runs[0]:
        values = [r[step] for r in runs]
        med = statistics.median(values)
        report["steps"][step] = {"median": med, "min": min(values), "max": max(values)}
        click.echo(f"  {step:20s} {med:8.2f} ({min(values):.2f}..{max(values):.2f})")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
