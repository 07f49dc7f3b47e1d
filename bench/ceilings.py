"""The two ceilings the engine is measured against, on the same transactions.

* verifier ceiling: ``tierchain_native.verify_batch_packed`` over the workload's
  transactions in blocks, on all cores, doing nothing else. Every transaction's
  signature is checked at admission, so the engine cannot beat it.
* LMDB raw write ceiling: for each block of the workload, one durable py-lmdb
  write transaction that ``putmulti``s exactly the keys the engine writes for it
  (both balances and the nonce per transfer, the tx index, the block's bytes),
  sorted, into a fresh environment. Expressed in transactions per second.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import time
from pathlib import Path

import lmdb
import numpy as np
import tierchain_native

from tierchain.engine.execute import nonce_key
from tierchain.wire import tx as txcodec
from tierchain.wire.batch import decode_batch

_U64 = struct.Struct("<Q")


def verifier_ceiling(txs: list[bytes], block_txs: int = 4096, repeat: int = 3) -> dict:
    """Signatures per second of batch verification on all cores over ``txs`` (best of ``repeat``)."""
    columns = []
    senders: set[bytes] = set()
    for i in range(0, len(txs), block_txs):
        b = decode_batch(txcodec.frame(txs[i : i + block_txs]))
        columns.append((b.sender.tobytes(), b.digest.tobytes(), b.signature.tobytes()))
        senders.update(bytes(row) for row in b.sender)
    best = float("inf")
    out = b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        for pks, msgs, sigs in columns:
            out = tierchain_native.verify_batch_packed(pks, msgs, sigs)
        best = min(best, time.perf_counter() - t0)
    assert np.frombuffer(out, np.uint8).all(), "the workload must verify"
    return {
        "sigs_per_s": len(txs) / best,
        "txs": len(txs),
        "distinct_senders": len(senders),
        "threads_native": tierchain_native.thread_count(),
    }


def block_writes(
    block: list[bytes], height: int
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """(state puts, tx index puts) an engine block of transfers makes, with dummy values."""
    state: dict[bytes, bytes] = {}
    index = []
    for pos, raw in enumerate(block):
        tx = txcodec.decode(raw)
        for k in tx.writes:
            state[k] = _U64.pack(pos)
        state[nonce_key(tx.sender)] = _U64.pack(tx.nonce + 1)
        index.append((tx.tx_id(), struct.pack("<QI", height, pos)))
    return sorted(state.items()), sorted(index)


def lmdb_ceiling(txs: list[bytes], block_txs: int = 4096, sync: str = "full", seconds: float = 5.0) -> dict:
    """Transactions per second if commit were only the LMDB writes (durable when sync=full)."""
    blocks = [txs[i : i + block_txs] for i in range(0, len(txs), block_txs)]
    plans = [(*block_writes(b, h + 1), b"".join(b)) for h, b in enumerate(blocks)]
    directory = Path(tempfile.mkdtemp(prefix="tierchain-lmdb-"))
    env = lmdb.open(
        str(directory), map_size=16 << 30, max_dbs=4, sync=sync == "full", metasync=sync == "full"
    )
    state_db, index_db, blocks_db = (env.open_db(n) for n in (b"state", b"tx_index", b"blocks"))
    done_txs = keys = n_blocks = 0
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < seconds:
            for h, (state, index, body) in enumerate(plans):
                with env.begin(write=True) as w:
                    w.cursor(db=state_db).putmulti(state)
                    w.cursor(db=index_db).putmulti(index)
                    w.put(_U64.pack(n_blocks + 1), body, db=blocks_db)
                n_blocks += 1
                done_txs += len(blocks[h])
                keys += len(state) + len(index) + 1
                if time.perf_counter() - t0 >= seconds:
                    break
        elapsed = time.perf_counter() - t0
    finally:
        env.close()
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "tps": done_txs / elapsed,
        "keys_per_s": keys / elapsed,
        "blocks_per_s": n_blocks / elapsed,
        "keys_per_block": keys / max(1, n_blocks),
        "block_txs": block_txs,
        "sync": sync,
        "durable": sync == "full",
    }
