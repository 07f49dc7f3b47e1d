"""A two-shard world for cross-shard tests: accounts, genesis, a transfer generator.

Imported by tests/apps/test_xshard_cluster.py and by its kill worker (xshard_worker.py),
and, in each crypto suite, by tests/sharding/test_sharding_suites.py: ``world(crypto)`` is
the same world (the same seeds) with that suite's keys and ``chain.crypto``. The module's
names (``NODE``, ``USERS``, ``BASE``, ``xtransfer``, ...) are the default suite's world.
"""

from __future__ import annotations

import dataclasses
import functools
import random

from tierchain.apps import accounts, xshard
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import DEFAULT_SUITE_NAME, KeyPair, suite_for
from tierchain.engine.route import route_keys

N = 2
BALANCE = 1_000_000
USER_COUNT = 24
TOTAL = BALANCE * USER_COUNT


def home(public_key: bytes, n: int = N) -> int:
    """The shard of an account: routing reads the key's bytes, the same rule in every suite."""
    return int(route_keys([accounts.balance_key(public_key)], n)[0])


@dataclasses.dataclass(frozen=True)
class XWorld:
    crypto: str
    node: KeyPair
    coord: KeyPair
    users: tuple[KeyPair, ...]
    stranger: KeyPair  # never registered
    base: ChainConfig

    def xtransfer(
        self, sender: KeyPair, nonce: int, to: bytes, amount: int, timeout_ms: int, dst: int | None = None
    ) -> bytes:
        src = home(sender.public_key)
        dst = home(to) if dst is None else dst
        tx = xshard.transfer(
            self.base.chain_id + src, src, dst, sender.public_key, nonce, to, amount, timeout_ms
        )
        return sender.sign_tx(tx).encode()

    def cross_pairs(self, rng: random.Random, k: int) -> list[tuple[KeyPair, KeyPair]]:
        """``k`` (sender, recipient) pairs on different shards, each sender used once."""
        senders = rng.sample(self.users, k)
        out = []
        for s in senders:
            others = [u for u in self.users if home(u.public_key) != home(s.public_key)]
            out.append((s, rng.choice(others)))
        return out

    def cluster_balance(self, cluster) -> int:
        """Sum of every user's balance on its home shard (the only place it can be)."""
        return sum(cluster.call(home(u.public_key), "balance", u.public_key) for u in self.users)


@functools.cache
def world(crypto: str = DEFAULT_SUITE_NAME) -> XWorld:
    suite = suite_for(crypto)
    node = suite.keys_from_seed(b"xshard-node".ljust(32, b"\0"))
    coord = suite.keys_from_seed(b"xshard-coordinator".ljust(32, b"\0"))
    users = tuple(suite.keys_from_seed(bytes([i + 1]) * 32) for i in range(USER_COUNT))
    stranger = suite.keys_from_seed(b"xshard-stranger".ljust(32, b"\0"))
    base = ChainConfig(
        chain_id=70,
        block_interval_ms=2,
        block_txs_max=512,
        sync="none",
        crypto=crypto,
        genesis_accounts=(
            GenesisAccount(node.public_key, ("registrar",), 0),
            GenesisAccount(coord.public_key, ("coordinator",), 0),
            *(GenesisAccount(k.public_key, (), BALANCE) for k in users),
        ),
    )
    return XWorld(crypto, node, coord, users, stranger, base)


_DEFAULT = world()
NODE = _DEFAULT.node
COORD = _DEFAULT.coord
USERS = list(_DEFAULT.users)
STRANGER = _DEFAULT.stranger
BASE = _DEFAULT.base
xtransfer = _DEFAULT.xtransfer
cross_pairs = _DEFAULT.cross_pairs
cluster_balance = _DEFAULT.cluster_balance
