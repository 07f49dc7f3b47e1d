"""A node under load, for tests/test_crash.py: prints ``ACK <tx id hex>:<height> ...``
for every batch once it is durably committed, until it is killed. Arguments: the chain's
directory, a seed, and the crypto suite (default ``ed25519-blake3``)."""

from __future__ import annotations

import random
import sys

from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import suite_for
from tierchain.engine.chain import Chain


def main(directory: str, seed: int, crypto: str) -> None:
    suite = suite_for(crypto)
    node = suite.keys_from_seed(b"crash-node".ljust(32, b"\0"))
    holders = [suite.keys_from_seed(bytes([i + 1]) * 32) for i in range(8)]
    rng = random.Random(seed)
    # Node-local settings may change between restarts: every other run computes the
    # state tree on its own thread (a third pipeline stage).
    config = ChainConfig(
        chain_id=3,
        block_interval_ms=2,
        block_txs_max=64,
        genesis_accounts=(
            GenesisAccount(node.public_key, ("registrar",), 0),
            *(GenesisAccount(k.public_key, (), 10**9) for k in holders),
        ),
        tree_stage="thread" if seed % 2 else "inline",
        crypto=crypto,
    )
    chain = Chain(directory, config, node)
    nonces = [chain.nonce(k.public_key) for k in holders]
    print(f"START {chain.height}", flush=True)
    while True:
        txs = []
        for _ in range(rng.randrange(1, 40)):
            s, t = rng.sample(range(len(holders)), 2)
            tx = accounts.transfer(
                3, holders[s].public_key, nonces[s], holders[t].public_key, rng.randrange(1, 9)
            )
            nonces[s] += 1
            txs.append(holders[s].sign_tx(tx).encode())
        sub = chain.submit(txs)
        if sub.codes.any():
            raise SystemExit(f"rejected: {sub.rejections()}")
        receipts = sub.wait(30)
        assert all(r.code == 0 for r in receipts)
        acks = " ".join(f"{t.hex()}:{int(h)}" for t, h in zip(sub.tx_ids, sub.heights, strict=True))
        print(f"ACK {acks}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "ed25519-blake3")
