"""Chain configuration and genesis, in TOML.

A node directory holds ``chain.toml`` (this schema) and the proposer's sealed key
file. The genesis part is copied into the database at first start, so that
``tierchain verify`` can re-execute the chain from the database alone.

```toml
[chain]
id = 1
block_txs_max = 4096      # <= limits.batch_txs_max
block_interval_ms = 20    # idle producer's longest sleep; blocks are cut at once when it is free
sync = "full"             # "none" is for benchmarks only and says so
state_commitment = "smt"  # sparse Merkle state root (docs/proofs.md); "interim": benchmarks only

[mempool]
txs_max = 100000
sender_pending_max = 4096  # a sender's txs waiting in the mempool

[node]
key_file = "node.key"

[genesis]
timestamp_ms = 0
[[genesis.accounts]]
public_key = "…64 hex…"
roles = ["registrar"]
balance = 1000000000
[genesis.synthetic]       # optional, benchmarks: accounts nobody holds a key for
accounts = 10000000       # public key j = BLAKE3_derive(seed u64 LE || j u64 LE), see genesis.py
seed = 7
balance = 0
```
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import tomli_w

from tierchain import limits
from tierchain.errors import TierChainError

# Bit i of a roles mask is ROLES[i]: append only. Accounts use the first two;
# organizations (tierchain.finance) the rest.
ROLES = (
    "registrar",
    "committee",
    "core_enterprise",
    "supplier",
    "bank",
    "warehouse",
    "logistics",
    "rating_agency",
    "investor",
    "trustee",
    "auditor",
    "regulator",
    "coordinator",  # drives cross-shard transfers (tierchain.xshard)
)
genesis_accounts_max = 1 << 20  # storage.meta_value_bytes_max holds this many in TOML
balance_max = (1 << 63) - 1
synthetic_accounts_max = 1 << 27


class ConfigError(TierChainError):
    """chain.toml is missing, malformed, or outside the limits."""


@dataclasses.dataclass(frozen=True)
class GenesisAccount:
    public_key: bytes
    roles: tuple[str, ...] = ()
    balance: int = 0


@dataclasses.dataclass(frozen=True)
class SyntheticAccounts:
    """``[genesis.synthetic]``: ``accounts`` registered accounts derived from ``seed``."""

    accounts: int
    seed: int = 0
    balance: int = 0


@dataclasses.dataclass(frozen=True)
class ChainConfig:
    chain_id: int = 1
    block_txs_max: int = 4096
    block_interval_ms: int = 20
    sync: str = "full"
    state_commitment: str = "smt"  # "interim" (state_root.py) only for benchmarks; part of genesis
    mempool_txs_max: int = 100_000
    sender_pending_max: int = 4096
    key_file: str = "node.key"
    state_keep_heights: int = 0  # state versions kept for historic reads/proofs; 0 = all
    state_cache_mb: int = 256  # bound of the in-memory state tree chunk cache; 0 disables it
    state_flush_blocks: int = 8  # the flat state table is written every K blocks (state_log)
    tree_stage: str = "auto"  # state tree version computed "inline" by the producer or on its own "thread"
    genesis_timestamp_ms: int = 0
    genesis_accounts: tuple[GenesisAccount, ...] = ()
    genesis_synthetic: SyntheticAccounts | None = None
    # This chain is shard ``shard_index`` of ``shard_count`` (tierchain.cluster): it admits
    # only transactions whose write keys route to it. Part of the identity when sharded.
    shard_index: int = 0
    shard_count: int = 1

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.chain_id < 1 << 32, "chain.id must be a u32"),
            (1 <= self.block_txs_max <= limits.batch_txs_max, f"block_txs_max in 1..{limits.batch_txs_max}"),
            (1 <= self.block_interval_ms <= 60_000, "block_interval_ms in 1..60000"),
            (0 <= self.state_keep_heights < 1 << 63, "node.state_keep_heights must be >= 0"),
            (0 <= self.state_cache_mb <= 1 << 20, "node.state_cache_mb in 0..2^20"),
            (1 <= self.state_flush_blocks <= 1024, "node.state_flush_blocks in 1..1024"),
            (
                self.tree_stage in ("auto", "inline", "thread"),
                'node.tree_stage must be "auto", "inline" or "thread"',
            ),
            (self.sync in ("full", "none"), 'sync must be "full" or "none"'),
            (self.state_commitment in ("smt", "interim"), 'state_commitment must be "smt" or "interim"'),
            (
                self.block_txs_max <= self.mempool_txs_max <= 10_000_000,
                "mempool txs_max in block_txs_max..1e7",
            ),
            (1 <= self.sender_pending_max <= 1 << 20, "sender_pending_max in 1..2^20"),
            (len(self.genesis_accounts) <= genesis_accounts_max, "too many genesis accounts"),
            (1 <= self.shard_count <= limits.shards_max, f"chain.shard_count in 1..{limits.shards_max}"),
            (0 <= self.shard_index < self.shard_count, "chain.shard_index in 0..shard_count-1"),
        ]
        if (syn := self.genesis_synthetic) is not None:
            checks += [
                (0 <= syn.accounts <= synthetic_accounts_max, "genesis.synthetic.accounts out of range"),
                (0 <= syn.seed < 1 << 63, "genesis.synthetic.seed in 0..2^63 (a TOML integer)"),
                (0 <= syn.balance <= balance_max, "genesis.synthetic.balance out of range"),
            ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        seen = set()
        for acct in self.genesis_accounts:
            if len(acct.public_key) != limits.public_key_bytes:
                raise ConfigError("genesis public_key must be 32 bytes")
            if acct.public_key in seen:
                raise ConfigError(f"genesis account {acct.public_key.hex()} listed twice")
            seen.add(acct.public_key)
            if not 0 <= acct.balance <= balance_max:
                raise ConfigError("genesis balance out of range")
            if unknown := set(acct.roles) - set(ROLES):
                raise ConfigError(f"unknown roles {sorted(unknown)}")

    # --- TOML ------------------------------------------------------------------

    def _document(self) -> dict:
        doc = {
            "chain": {
                "id": self.chain_id,
                "block_txs_max": self.block_txs_max,
                "block_interval_ms": self.block_interval_ms,
                "sync": self.sync,
                "state_commitment": self.state_commitment,
                **self._shard_fields(),
            },
            "mempool": {"txs_max": self.mempool_txs_max, "sender_pending_max": self.sender_pending_max},
            "node": {
                "key_file": self.key_file,
                "state_keep_heights": self.state_keep_heights,
                "state_cache_mb": self.state_cache_mb,
                "state_flush_blocks": self.state_flush_blocks,
                "tree_stage": self.tree_stage,
            },
            "genesis": {
                "timestamp_ms": self.genesis_timestamp_ms,
                "accounts": [
                    {"public_key": a.public_key.hex(), "roles": list(a.roles), "balance": a.balance}
                    for a in self.genesis_accounts
                ],
            },
        }
        if self.genesis_synthetic is not None:
            doc["genesis"]["synthetic"] = dataclasses.asdict(self.genesis_synthetic)
        return doc

    @property
    def sharded(self) -> bool:
        return self.shard_count > 1

    def _shard_fields(self) -> dict:
        """Only when sharded, so an unsharded chain's identity is what it always was."""
        return {"shard_index": self.shard_index, "shard_count": self.shard_count} if self.sharded else {}

    def to_toml(self) -> str:
        return tomli_w.dumps(self._document())

    def genesis_bytes(self) -> bytes:
        """The chain's identity, stored in the database at first start (and what ``verify``
        re-executes from): chain id, state commitment, shard index and count (when
        sharded) and the genesis section only.
        Node-local, operational settings (block size and interval, mempool bounds, sync,
        key file, pruning) are left out, so they may change between restarts."""
        doc = self._document()
        identity = {
            "chain": {"id": self.chain_id, "state_commitment": self.state_commitment, **self._shard_fields()},
            "genesis": doc["genesis"],
        }
        return tomli_w.dumps(identity).encode()

    @classmethod
    def from_toml(cls, text: str) -> ChainConfig:
        try:
            doc = tomllib.loads(text)
            chain, mempool = doc.get("chain", {}), doc.get("mempool", {})
            node, genesis = doc.get("node", {}), doc.get("genesis", {})
            accounts = tuple(
                GenesisAccount(
                    bytes.fromhex(a["public_key"]), tuple(a.get("roles", ())), int(a.get("balance", 0))
                )
                for a in genesis.get("accounts", [])
            )
            return cls(
                chain_id=int(chain.get("id", 1)),
                block_txs_max=int(chain.get("block_txs_max", 4096)),
                block_interval_ms=int(chain.get("block_interval_ms", 20)),
                sync=str(chain.get("sync", "full")),
                state_commitment=str(chain.get("state_commitment", "smt")),
                shard_index=int(chain.get("shard_index", 0)),
                shard_count=int(chain.get("shard_count", 1)),
                mempool_txs_max=int(mempool.get("txs_max", 100_000)),
                sender_pending_max=int(mempool.get("sender_pending_max", 4096)),
                key_file=str(node.get("key_file", "node.key")),
                state_keep_heights=int(node.get("state_keep_heights", 0)),
                state_cache_mb=int(node.get("state_cache_mb", 256)),
                state_flush_blocks=int(node.get("state_flush_blocks", 8)),
                tree_stage=str(node.get("tree_stage", "auto")),
                genesis_timestamp_ms=int(genesis.get("timestamp_ms", 0)),
                genesis_accounts=accounts,
                genesis_synthetic=(
                    SyntheticAccounts(**{k: int(v) for k, v in genesis["synthetic"].items()})
                    if "synthetic" in genesis
                    else None
                ),
            )
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"bad chain configuration: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> ChainConfig:
        try:
            return cls.from_toml(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
