"""The naive baseline: the same signed transfers, processed the straightforward way.

What a competent engineer writes first, without the engine's native paths: one
thread; per transaction the pure-Python reference decoder (``txcodec.decode``),
the tx id recomputed in Python, PyNaCl verifying one signature at a time, a
nonce check and the transfer on a ``dict`` state; per block, one durable LMDB
write transaction with one ``put`` per changed state key, one per tx index
entry and one for the block's bytes. No Merkle roots, no receipts, no check
that the recipient is registered: the baseline does less than the engine,
which only flatters it.

Usage (alone): python bench/naive.py --txs 20000 [--sync full|none]
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import time
from pathlib import Path

import lmdb
import nacl.exceptions
import nacl.signing

from tierchain.apps import accounts as accounts_app
from tierchain.engine.execute import nonce_key
from tierchain.wire import tx as txcodec

_U64 = struct.Struct("<Q")
_TRANSFER = struct.Struct("<32sQ")


def interleave(streams: list[list[bytes]]) -> list[bytes]:
    """One submission order from per-thread streams (each sender's nonces stay ascending)."""
    out: list[bytes] = []
    longest = max((len(s) for s in streams), default=0)
    for i in range(0, longest, 256):
        for s in streams:
            out.extend(s[i : i + 256])
    return out


def run_naive(
    txs: list[bytes],
    balances: dict[bytes, int],
    *,
    block_txs: int = 4096,
    seconds: float = 10.0,
    sync: str = "full",
    directory: Path | None = None,
) -> dict:
    """Process ``txs`` in blocks until they run out or ``seconds`` pass; committed TPS."""
    own = directory is None
    directory = Path(tempfile.mkdtemp(prefix="tierchain-naive-")) if own else directory
    env = lmdb.open(
        str(directory), map_size=16 << 30, max_dbs=4, sync=sync == "full", metasync=sync == "full"
    )
    state_db, index_db, blocks_db = (env.open_db(n) for n in (b"state", b"tx_index", b"blocks"))
    state: dict[bytes, bytes] = {accounts_app.balance_key(pk): _U64.pack(b) for pk, b in balances.items()}
    committed = failed = invalid = 0
    height = 0
    t0 = time.perf_counter()
    try:
        for start in range(0, len(txs), block_txs):
            block = txs[start : start + block_txs]
            height += 1
            dirty: dict[bytes, bytes] = {}
            index: list[tuple[bytes, bytes]] = []
            for pos, raw in enumerate(block):
                tx = txcodec.decode(raw)
                tx_id = tx.tx_id()
                try:
                    nacl.signing.VerifyKey(tx.sender).verify(tx_id, tx.signature)
                except nacl.exceptions.BadSignatureError:
                    invalid += 1
                    continue
                nkey = nonce_key(tx.sender)
                have = state.get(nkey)
                if (0 if have is None else _U64.unpack(have)[0]) != tx.nonce:
                    invalid += 1
                    continue
                state[nkey] = dirty[nkey] = _U64.pack(tx.nonce + 1)
                index.append((tx_id, struct.pack("<QI", height, pos)))
                to, amount = _TRANSFER.unpack(tx.payload)
                src, dst = accounts_app.balance_key(tx.sender), accounts_app.balance_key(to)
                bal = _U64.unpack(state.get(src, bytes(8)))[0]
                if bal < amount:
                    failed += 1
                    continue
                state[src] = dirty[src] = _U64.pack(bal - amount)
                credit = _U64.unpack(state.get(dst, bytes(8)))[0] + amount
                state[dst] = dirty[dst] = _U64.pack(credit)
                committed += 1
            with env.begin(write=True) as w:
                for k, v in dirty.items():
                    w.put(k, v, db=state_db)
                for k, v in index:
                    w.put(k, v, db=index_db)
                w.put(_U64.pack(height), b"".join(block), db=blocks_db)
            if time.perf_counter() - t0 >= seconds:
                break
        elapsed = time.perf_counter() - t0
    finally:
        env.close()
        if own:
            shutil.rmtree(directory, ignore_errors=True)
    return {
        "tps": committed / elapsed,
        "committed": committed,
        "failed": failed,
        "invalid": invalid,
        "seconds": elapsed,
        "blocks": height,
        "block_txs": block_txs,
        "sync": sync,
        "durable": sync == "full",
    }


if __name__ == "__main__":
    import click

    from tierchain.tools.loadgen import WorkloadSpec, build_workload, genesis_balance

    @click.command()
    @click.option("--txs", type=int, default=20_000, show_default=True)
    @click.option("--accounts", type=int, default=10_000, show_default=True)
    @click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
    def main(txs: int, accounts: int, sync: str) -> None:
        work = build_workload(WorkloadSpec(accounts, txs), cache_dir=Path(".cache/tierchain"))
        r = run_naive(
            interleave(work.streams), dict.fromkeys(work.sender_keys, genesis_balance), sync=sync, seconds=60
        )
        click.echo(f"naive: {r['tps']:,.0f} TPS ({r['committed']:,} txs, sync={sync})")

    main()
