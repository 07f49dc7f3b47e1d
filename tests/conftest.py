"""Shared fixtures: a small solo chain with funded accounts."""

from __future__ import annotations

import pytest

from tierchain.chain import Chain
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair

NODE = KeyPair.from_seed(bytes(32))
ALICE = KeyPair.from_seed(b"alice".ljust(32, b"\0"))
BOB = KeyPair.from_seed(b"bob".ljust(32, b"\0"))
CAROL = KeyPair.from_seed(b"carol".ljust(32, b"\0"))


def small_config(**overrides) -> ChainConfig:
    fields = dict(
        chain_id=9,
        block_interval_ms=5,
        genesis_accounts=(
            GenesisAccount(NODE.public_key, ("registrar", "committee"), 0),
            GenesisAccount(ALICE.public_key, (), 1_000),
            GenesisAccount(BOB.public_key, (), 0),
            GenesisAccount(CAROL.public_key, (), 500),
        ),
    )
    fields.update(overrides)
    return ChainConfig(**fields)


@pytest.fixture
def chain_dir(tmp_path):
    return tmp_path / "chain"


@pytest.fixture
def chain(chain_dir):
    with Chain(chain_dir, small_config(), NODE) as c:
        yield c
