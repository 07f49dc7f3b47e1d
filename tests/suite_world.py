"""A small world of one crypto suite, for the tests that run in each suite: a node key and
two accounts (the same seeds in every suite), a chain configuration of that suite, signed
transfers, and a ``world`` fixture parametrized over the suites (tests/engine, tests/replication)."""

from __future__ import annotations

import dataclasses

import pytest

from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import SUITES, CryptoSuite, KeyPair, suite_for

SEEDS = (bytes(32), b"alice".ljust(32, b"\0"), b"bob".ljust(32, b"\0"))


@dataclasses.dataclass(frozen=True)
class World:
    suite: CryptoSuite
    chain_id: int
    node: KeyPair
    alice: KeyPair
    bob: KeyPair

    @property
    def other(self) -> CryptoSuite:
        """The other suite (there are two)."""
        return next(s for s in SUITES.values() if s is not self.suite)

    def config(self, **overrides) -> ChainConfig:
        """The node a registrar and committee member, Alice funded, Bob empty, short block
        interval; ``overrides`` replace any field."""
        fields = dict(
            chain_id=self.chain_id,
            crypto=self.suite.name,
            block_interval_ms=5,
            genesis_accounts=(
                GenesisAccount(self.node.public_key, ("registrar", "committee"), 0),
                GenesisAccount(self.alice.public_key, (), 1_000),
                GenesisAccount(self.bob.public_key, (), 0),
            ),
        )
        fields.update(overrides)
        return ChainConfig(**fields)

    def transfer(self, keys: KeyPair, nonce: int, to: bytes, amount: int) -> bytes:
        """A transfer to the public key ``to``, signed by ``keys`` (in their suite)."""
        return keys.sign_tx(accounts.transfer(self.chain_id, keys.public_key, nonce, to, amount)).encode()


def world_of(name: str, chain_id: int) -> World:
    suite = suite_for(name)
    return World(suite, chain_id, *(suite.keys_from_seed(s) for s in SEEDS))


def suites_fixture(chain_id: int):
    """A ``world`` fixture over every suite, for a test module's chain id."""

    @pytest.fixture(params=sorted(SUITES))
    def world(request) -> World:
        return world_of(request.param, chain_id)

    return world
