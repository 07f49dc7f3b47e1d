"""TierChain: a parallel ledger core for consortium supply-chain finance.

Packages, in data-flow order (docs/architecture.md, "Packages"):

* ``wire`` — byte formats: transactions, batches as columns, blocks, typed codecs;
* ``crypto`` — the crypto suite (signatures, hashes in domains, Merkle roots), keys;
* ``engine`` — app registry, admission, scheduling, execution, the state transition,
  the solo chain, genesis, re-verification;
* ``state`` — LMDB storage and the state commitment (sparse Merkle tree);
* ``proofs`` — the light client: one self-contained file (stdlib + blake3);
* ``sharding`` — a cluster of shards behind one scheduler;
* ``apps`` — the built-in apps: accounts, xshard (+ coordinator), finance;
* ``api``, ``cli``, ``tools`` — the HTTP endpoint, the command line, the load generator.

Shared by all: ``limits`` (every bound), ``errors`` (reject codes), ``config``
(``chain.toml``), ``domains`` (hash contexts). Native parts: ``tierchain._hot``
(Cython) and ``tierchain_native`` (Rust).

The names embedders use most are importable from here; they load on first use, so
``import tierchain`` stays cheap and adds no import-time edge between packages.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it (the one place it lives)
_EXPORTS = {
    "Chain": "tierchain.engine.chain",
    "ChainConfig": "tierchain.config",
    "GenesisAccount": "tierchain.config",
    "KeyPair": "tierchain.crypto",
    "load_key_file": "tierchain.crypto",
    "NodeClient": "tierchain.api.rpc",
    "Reject": "tierchain.errors",
}
__all__ = [
    "Chain",
    "ChainConfig",
    "GenesisAccount",
    "KeyPair",
    "NodeClient",
    "Reject",
    "__version__",
    "load_key_file",
]
assert sorted(__all__) == sorted(["__version__", *_EXPORTS])

if TYPE_CHECKING:
    from tierchain.api.rpc import NodeClient
    from tierchain.config import ChainConfig, GenesisAccount
    from tierchain.crypto import KeyPair, load_key_file
    from tierchain.engine.chain import Chain
    from tierchain.errors import Reject


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tierchain' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
