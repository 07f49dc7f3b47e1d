"""A two-shard world for cross-shard tests: accounts, genesis, a transfer generator.

Imported by tests/apps/test_xshard_cluster.py and by its kill worker (xshard_worker.py).
"""

from __future__ import annotations

import random

from tierchain.apps import accounts, xshard
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.route import route_keys

N = 2
NODE = KeyPair.from_seed(b"xshard-node".ljust(32, b"\0"))
COORD = KeyPair.from_seed(b"xshard-coordinator".ljust(32, b"\0"))
USERS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(24)]
STRANGER = KeyPair.from_seed(b"xshard-stranger".ljust(32, b"\0"))  # never registered
BALANCE = 1_000_000
TOTAL = BALANCE * len(USERS)
BASE = ChainConfig(
    chain_id=70,
    block_interval_ms=2,
    block_txs_max=512,
    sync="none",
    genesis_accounts=(
        GenesisAccount(NODE.public_key, ("registrar",), 0),
        GenesisAccount(COORD.public_key, ("coordinator",), 0),
        *(GenesisAccount(k.public_key, (), BALANCE) for k in USERS),
    ),
)


def home(public_key: bytes, n: int = N) -> int:
    return int(route_keys([accounts.balance_key(public_key)], n)[0])


def xtransfer(
    sender: KeyPair, nonce: int, to: bytes, amount: int, timeout_ms: int, dst: int | None = None
) -> bytes:
    src = home(sender.public_key)
    dst = home(to) if dst is None else dst
    tx = xshard.transfer(BASE.chain_id + src, src, dst, sender.public_key, nonce, to, amount, timeout_ms)
    return sender.sign_tx(tx).encode()


def cross_pairs(rng: random.Random, k: int) -> list[tuple[KeyPair, KeyPair]]:
    """``k`` (sender, recipient) pairs on different shards, each sender used once."""
    senders = rng.sample(USERS, k)
    out = []
    for s in senders:
        others = [u for u in USERS if home(u.public_key) != home(s.public_key)]
        out.append((s, rng.choice(others)))
    return out


def cluster_balance(cluster) -> int:
    """Sum of every user's balance on its home shard (the only place it can be)."""
    return sum(cluster.call(home(u.public_key), "balance", u.public_key) for u in USERS)
