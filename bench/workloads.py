"""Deterministic signed workloads for the benchmarks.

Transactions are generated from fixed seeds so two runs measure the same bytes,
and signed once up front: signing is never part of what a benchmark times.
"""

from __future__ import annotations

import dataclasses
import random

from tierchain.crypto import KeyPair
from tierchain.wire import tx as txcodec

TRANSFER_OP = 1


@dataclasses.dataclass(frozen=True)
class Workload:
    txs: list[bytes]  # encoded signed transactions
    buf: bytes  # the same transactions, framed in one batch buffer
    senders: int
    accounts: int


def transfers(n: int, *, senders: int = 256, accounts: int = 10_000, seed: int = 1) -> Workload:
    """``n`` signed transfers: each reads a rate key, writes its two accounts."""
    rng = random.Random(seed)
    keys = [KeyPair.from_seed(rng.randbytes(32)) for _ in range(senders)]
    nonces = [0] * senders
    txs = []
    for _ in range(n):
        s = rng.randrange(senders)
        a, b = rng.sample(range(accounts), 2)
        tx = txcodec.Tx(
            chain_id=1,
            shard_id=0,
            op=TRANSFER_OP,
            sender=keys[s].public_key,
            nonce=nonces[s],
            reads=(b"cfg/fee",),
            writes=tuple(sorted((b"acct/%08d" % a, b"acct/%08d" % b))),
            payload=rng.randrange(1, 1_000_000).to_bytes(8, "little"),
        )
        nonces[s] += 1
        txs.append(keys[s].sign_tx(tx).encode())
    return Workload(txs=txs, buf=txcodec.frame(txs), senders=senders, accounts=accounts)
