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
apps = ["accounts", "xshard", "finance"]  # the default; an embedder's app by its name (docs/embedding.md)
crypto = "ed25519-blake3" # or "sm2-sm3" (docs/national-crypto.md); fixed at genesis

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
accounts = 10000000       # public key j = BLAKE3_derive(seed u64 LE || j u64 LE), see engine/genesis.py
seed = 7
balance = 0
```

Every key is declared once, in ``CHAIN_FIELDS`` (with ``SYNTHETIC_FIELDS`` and
``ACCOUNT_FIELDS``): its dotted name, the attribute it fills, its type and bounds.
Reading a file refuses a section or key not declared there, naming the nearest
declared one (``mempool.block_intervl_ms: unknown key; did you mean
chain.block_interval_ms?``), and every error names the field, what it expects and
what it got (``mempool.txs_max: expected an integer in 1..10000000, got "lots"``).
A configuration built in Python is checked against the same table.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
import string
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tomli_w

from tierchain import limits
from tierchain.crypto.suite import DEFAULT_SUITE_NAME, SUITES
from tierchain.engine import apps as app_registry
from tierchain.errors import TierChainError

# Account roles belong to the apps that define them (tierchain.engine.apps.App.roles); a chain's
# roles are those of its apps. ``config.ROLES`` (module __getattr__ below) is the role
# names of the built-in apps, in bit order, for tools that list them.


def __getattr__(name: str) -> Any:
    if name == "ROLES":
        return tuple(app_registry.default_set().role_names(-1))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


genesis_accounts_max = 1 << 20  # storage.meta_value_bytes_max holds this many in TOML
balance_max = (1 << 63) - 1
synthetic_accounts_max = 1 << 27


class ConfigError(TierChainError):
    """chain.toml (or a cluster file) is missing, malformed, or outside the limits.

    The message names the file when there is one, then the field (``mempool.txs_max``),
    what it expects and what it got; an unknown key also names the nearest valid one."""


# --- the schema ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Field:
    """One TOML setting: its dotted name, the attribute it fills, its type and bounds.

    ``kind`` is the Python type of the value: ``int`` (bool is not one), ``float`` (a TOML
    integer is taken too), ``str`` (one of ``choices`` if any), ``bytes`` (written as
    ``lo`` bytes of hex) or ``tuple`` (a list of ``choices``). Numbers are bounded by
    ``lo..hi`` inclusive (``lo_open``: ``lo`` excluded). The default of a key left out is
    the dataclass's own, so that it is written in one place.
    """

    name: str
    attr: str
    kind: type
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    lo_open: bool = False

    @property
    def section(self) -> str:
        return self.name.rpartition(".")[0]

    @property
    def key(self) -> str:
        return self.name.rpartition(".")[2]

    def expected(self) -> str:
        if self.kind is int:
            return f"an integer in {self.lo}..{self.hi}"
        if self.kind is float:
            return f"a number in {'(' if self.lo_open else '['}{self.lo}, {self.hi}]"
        if self.kind is bytes:
            return f"{2 * int(self.lo or 0)} hex digits ({self.lo} bytes)"
        if self.kind is tuple:
            return "a list of strings" + (" out of " + ", ".join(self.choices) if self.choices else "")
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        return "a string"

    def read(self, value: Any, name: str | None = None) -> Any:
        """The TOML value ``value`` as this field's Python value, checked (see ``check``)."""
        if self.kind is bytes and isinstance(value, str):
            if len(value) != 2 * int(self.lo or 0) or value.strip(string.hexdigits):
                raise self.error(value, name)
            value = bytes.fromhex(value)
        elif self.kind is tuple and isinstance(value, list):
            value = tuple(value)
        elif self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        return self.check(value, name)

    def check(self, value: Any, name: str | None = None) -> Any:
        """``value`` if it has this field's type and bounds, else ``ConfigError`` naming the
        field (``name`` when it is one entry of an array, e.g. ``genesis.accounts[3].balance``)."""
        if isinstance(value, bool):
            ok = False
        elif self.kind is int:
            ok = isinstance(value, numbers.Integral) and self.lo <= value <= self.hi  # type: ignore[operator]
        elif self.kind is float:
            ok = isinstance(value, numbers.Real) and (
                self.lo < value <= self.hi if self.lo_open else self.lo <= value <= self.hi  # type: ignore[operator]
            )
        elif self.kind is bytes:
            ok = isinstance(value, bytes) and len(value) == self.lo
        elif self.kind is tuple:
            ok = isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)
            if ok and self.choices and (bad := [v for v in value if v not in self.choices]):
                hint = nearest(bad[0], self.choices)
                raise ConfigError(
                    f'{name or self.name}: unknown {self.key[:-1] or "value"} "{bad[0]}"; '
                    + (f'did you mean "{hint}"?' if hint else f"expected {self.expected()}")
                )
        else:
            ok = isinstance(value, str) and (not self.choices or value in self.choices)
        if not ok:
            raise self.error(value, name)
        return value

    def error(self, value: Any, name: str | None = None) -> ConfigError:
        return ConfigError(f"{name or self.name}: expected {self.expected()}, got {show(value)}")

    def missing(self, name: str | None = None) -> ConfigError:
        """A required key left out."""
        return ConfigError(f"{name or self.name}: missing; expected {self.expected()}")


def show(value: Any) -> str:
    """``value`` as written in TOML (strings quoted, true/false), cut to 60 characters."""
    if isinstance(value, dict):
        return "a table"
    text = json.dumps(value, default=str) if isinstance(value, bool | str | list) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` is most likely a misspelling of, if any is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return close[0] if close else None


def unknown_key(where: str, key: str, valid: Iterable[str], elsewhere: Iterable[Field] = ()) -> ConfigError:
    """``where.key`` is no setting: name it and the valid key it is most likely a typo of,
    in its own table first, then among ``elsewhere`` (a key put in the wrong section)."""
    valid = list(valid)
    if (close := nearest(key, valid)) is not None:
        hint = f"did you mean {where}.{close}?"
    else:
        names = {f.key: f.name for f in elsewhere}
        close = nearest(key, names)
        hint = f"did you mean {names[close]}?" if close else "valid keys: " + ", ".join(valid)
    return ConfigError(f"{where}.{key}: unknown key; {hint}")


def unknown_section(name: str, value: Any, sections: Iterable[str], fields: Iterable[Field]) -> ConfigError:
    """A top-level entry that is not one of ``sections``: a misspelt ``[section]``, or a key
    written outside of its section."""
    sections = list(sections)
    if not isinstance(value, dict):
        names = {f.key: f.name for f in fields}
        close = nearest(name, names)
        hint = f"; did you mean {names[close]}?" if close else ""
        return ConfigError(f"{name}: unknown key outside of any [section]{hint}")
    close = nearest(name, sections)
    hint = f"did you mean [{close}]?" if close else "valid sections: " + ", ".join(f"[{s}]" for s in sections)
    return ConfigError(f"[{name}]: unknown section; {hint}")


def read_table(
    table: Any,
    where: str,
    fields: Iterable[Field],
    *,
    nested: Iterable[str] = (),
    elsewhere: Iterable[Field] = (),
) -> dict[str, Any]:
    """``{attribute: checked value}`` of the keys of the TOML table ``table`` (at ``where``).

    A key that is neither one of ``fields`` nor one of ``nested`` (sub-tables the caller
    reads) is refused, naming the nearest valid key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table ([{where}]), got {show(table)}")
    by_key = {f.key: f for f in fields}
    nested = tuple(nested)
    out = {}
    for key, value in table.items():
        if key in by_key:
            out[by_key[key].attr] = by_key[key].read(value, f"{where}.{key}")
        elif key not in nested:
            raise unknown_key(where, key, [*by_key, *nested], elsewhere)
    return out


# --- chain.toml ---------------------------------------------------------------------------

CHAIN_SECTIONS = ("chain", "mempool", "node", "genesis")
CHAIN_FIELDS = (
    Field("chain.id", "chain_id", int, 0, (1 << 32) - 1),
    Field("chain.block_txs_max", "block_txs_max", int, 1, limits.batch_txs_max),
    Field("chain.block_interval_ms", "block_interval_ms", int, 1, 60_000),
    Field("chain.sync", "sync", str, choices=("full", "none")),
    Field("chain.state_commitment", "state_commitment", str, choices=("smt", "interim")),
    Field("chain.shard_index", "shard_index", int, 0, limits.shards_max - 1),  # and < shard_count
    Field("chain.shard_count", "shard_count", int, 1, limits.shards_max),
    Field("chain.apps", "apps", tuple),  # names resolved by tierchain.engine.apps; part of the identity
    Field("chain.crypto", "crypto", str, choices=tuple(SUITES)),  # the crypto suite; part of the identity
    Field("mempool.txs_max", "mempool_txs_max", int, 1, 10_000_000),  # and >= chain.block_txs_max
    Field("mempool.sender_pending_max", "sender_pending_max", int, 1, 1 << 20),
    Field("node.key_file", "key_file", str),
    Field("node.state_keep_heights", "state_keep_heights", int, 0, (1 << 63) - 1),
    Field("node.state_cache_mb", "state_cache_mb", int, 0, 1 << 20),
    Field("node.state_flush_blocks", "state_flush_blocks", int, 1, 1024),
    Field("node.tree_stage", "tree_stage", str, choices=("auto", "inline", "thread")),
    Field("node.tree_workers", "tree_workers", int, 0, 64),
    Field("genesis.timestamp_ms", "genesis_timestamp_ms", int, 0, (1 << 63) - 1),
)
_KEY_BYTES = limits.public_key_bytes
# [[genesis.accounts]], each (at most genesis_accounts_max, public keys distinct)
ACCOUNT_FIELDS = (
    Field(
        "genesis.accounts.public_key", "public_key", bytes, limits.public_key_bytes, limits.public_key_bytes
    ),
    Field("genesis.accounts.roles", "roles", tuple),  # roles of the chain's apps (checked in ChainConfig)
    Field("genesis.accounts.balance", "balance", int, 0, balance_max),
)
# [genesis.synthetic]: accounts is required
SYNTHETIC_FIELDS = (
    Field("genesis.synthetic.accounts", "accounts", int, 0, synthetic_accounts_max),
    Field("genesis.synthetic.seed", "seed", int, 0, (1 << 63) - 1),
    Field("genesis.synthetic.balance", "balance", int, 0, balance_max),
)


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
    state_commitment: str = "smt"  # "interim" (state/interim_root.py) only for benchmarks; part of genesis
    mempool_txs_max: int = 100_000
    sender_pending_max: int = 4096
    key_file: str = "node.key"
    state_keep_heights: int = 0  # state versions kept for historic reads/proofs; 0 = all
    state_cache_mb: int = 256  # bound of the in-memory state tree chunk cache; 0 disables it
    state_flush_blocks: int = 8  # the flat state table is written every K blocks (state_log)
    tree_stage: str = "auto"  # state tree version computed "inline" by the producer or on its own "thread"
    # Threads a block's state tree is built on (StateTree.workers); 0: the native pool's thread
    # count (TIERCHAIN_THREADS, else the cores) when the tree has its own thread, else 1.
    tree_workers: int = 0
    genesis_timestamp_ms: int = 0
    genesis_accounts: tuple[GenesisAccount, ...] = ()
    genesis_synthetic: SyntheticAccounts | None = None
    # This chain is shard ``shard_index`` of ``shard_count`` (tierchain.sharding.cluster): it admits
    # only transactions whose write keys route to it. Part of the identity when sharded.
    shard_index: int = 0
    shard_count: int = 1
    # The names of the chain's apps (tierchain.engine.apps.resolve). Part of the identity when it
    # is not the default, so that every chain created before apps were named keeps its own.
    apps: tuple[str, ...] = app_registry.DEFAULT_APPS
    # The crypto suite (tierchain.crypto.suite): signatures, every hash, the state tree. Fixed at
    # genesis; part of the identity when it is not the default, so older chains keep theirs.
    crypto: str = DEFAULT_SUITE_NAME

    def __post_init__(self) -> None:
        for f in CHAIN_FIELDS:
            f.check(getattr(self, f.attr))
        if self.mempool_txs_max < self.block_txs_max:
            raise ConfigError(
                f"mempool.txs_max: expected at least chain.block_txs_max ({self.block_txs_max}), "
                f"got {self.mempool_txs_max}"
            )
        if self.shard_index >= self.shard_count:
            raise ConfigError(
                f"chain.shard_index: expected an integer in 0..chain.shard_count - 1 "
                f"(0..{self.shard_count - 1}), got {self.shard_index}"
            )
        if len(self.genesis_accounts) > genesis_accounts_max:
            raise ConfigError(
                f"genesis.accounts: expected at most {genesis_accounts_max} accounts, "
                f"got {len(self.genesis_accounts)}"
            )
        if (syn := self.genesis_synthetic) is not None:
            for f in SYNTHETIC_FIELDS:
                f.check(getattr(syn, f.attr))
        object.__setattr__(self, "apps", tuple(self.apps))
        seen = set()
        if len(set(self.apps)) != len(self.apps):
            raise ConfigError(f"chain.apps: an app named twice in {list(self.apps)}")
        known = self._role_names() if any(a.roles for a in self.genesis_accounts) else frozenset()
        if known is None:  # checked later, by the app set the chain is given
            known = frozenset(r for a in self.genesis_accounts if isinstance(a.roles, tuple) for r in a.roles)
        roles = known
        for i, acct in enumerate(self.genesis_accounts):
            pk, balance = acct.public_key, acct.balance
            valid = (  # the common case, checked fast (a genesis may hold a million accounts)
                type(pk) is bytes
                and len(pk) == _KEY_BYTES
                and type(balance) is int
                and 0 <= balance <= balance_max
                and isinstance(acct.roles, tuple)
                and roles.issuperset(acct.roles)
            )
            if not valid:  # the schema names what is wrong
                for f in ACCOUNT_FIELDS:
                    f.check(getattr(acct, f.attr), f"genesis.accounts[{i}].{f.key}")
                if bad := [r for r in acct.roles if r not in roles]:
                    hint = nearest(bad[0], roles)
                    raise ConfigError(
                        f'genesis.accounts[{i}].roles: unknown role "{bad[0]}"; '
                        + (f'did you mean "{hint}"?' if hint else "roles: " + ", ".join(sorted(roles)))
                    )
            if pk in seen:
                raise ConfigError(f"genesis.accounts[{i}].public_key: {pk.hex()} listed twice")
            seen.add(pk)

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
                **self._app_fields(),
                **self._crypto_fields(),
            },
            "mempool": {"txs_max": self.mempool_txs_max, "sender_pending_max": self.sender_pending_max},
            "node": {
                "key_file": self.key_file,
                "state_keep_heights": self.state_keep_heights,
                "state_cache_mb": self.state_cache_mb,
                "state_flush_blocks": self.state_flush_blocks,
                "tree_stage": self.tree_stage,
                # Only when set: documents of earlier versions (recorded vectors too) stay as they were.
                **({"tree_workers": self.tree_workers} if self.tree_workers else {}),
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

    def _role_names(self) -> frozenset[str] | None:
        """The role names of this chain's apps, or None when an app is not known to this
        process by name (an embedder may give it to ``Chain(apps=...)`` by value; the
        chain then checks the roles when it writes genesis: ``AppSet.roles_mask``)."""
        try:
            return frozenset(app_registry.resolve(self.apps).role_bits)
        except app_registry.UnknownApp:
            return None
        except app_registry.AppError as exc:
            raise ConfigError(f"chain.apps: {exc}") from exc

    def _app_fields(self) -> dict:
        """Only when not the default, so a chain of the built-in apps keeps its identity."""
        return {} if self.apps == app_registry.DEFAULT_APPS else {"apps": list(self.apps)}

    def _crypto_fields(self) -> dict:
        """Only when not the default suite, so every chain made before suites keeps its identity."""
        return {} if self.crypto == DEFAULT_SUITE_NAME else {"crypto": self.crypto}

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
        sharded), app names and crypto suite (when not the default) and the genesis section only.
        Node-local, operational settings (block size and interval, mempool bounds, sync,
        key file, pruning) are left out, so they may change between restarts."""
        doc = self._document()
        identity = {
            "chain": {
                "id": self.chain_id,
                "state_commitment": self.state_commitment,
                **self._shard_fields(),
                **self._app_fields(),
                **self._crypto_fields(),
            },
            "genesis": doc["genesis"],
        }
        return tomli_w.dumps(identity).encode()

    @classmethod
    def from_toml(cls, text: str, source: str | None = None) -> ChainConfig:
        """The configuration in ``text``; ``source`` (the file's name) starts every error."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
            raise ConfigError(f"{source or 'chain configuration'}: invalid TOML: {exc}") from exc
        try:
            return cls(**_chain_arguments(doc))
        except ConfigError as exc:
            if source is None:
                raise
            raise ConfigError(f"{source}: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> ChainConfig:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
        return cls.from_toml(text, str(path))


def _chain_arguments(doc: dict[str, Any]) -> dict[str, Any]:
    """``ChainConfig`` keyword arguments of a parsed chain.toml: every key checked against
    the schema, a key left out left to the dataclass's default."""
    for name, value in doc.items():
        if name not in CHAIN_SECTIONS:
            raise unknown_section(name, value, CHAIN_SECTIONS, CHAIN_FIELDS)
    kwargs: dict[str, Any] = {}
    for section in CHAIN_SECTIONS:
        fields = [f for f in CHAIN_FIELDS if f.section == section]
        nested = ("accounts", "synthetic") if section == "genesis" else ()
        kwargs |= read_table(doc.get(section, {}), section, fields, nested=nested, elsewhere=CHAIN_FIELDS)
    genesis = doc.get("genesis", {})
    if "accounts" in genesis:
        accounts = genesis["accounts"]
        if not isinstance(accounts, list) or not all(isinstance(a, dict) for a in accounts):
            raise ConfigError(
                f"genesis.accounts: expected an array of tables ([[genesis.accounts]]), got {show(accounts)}"
            )
        kwargs["genesis_accounts"] = tuple(
            GenesisAccount(**_genesis_account(a, f"genesis.accounts[{i}]")) for i, a in enumerate(accounts)
        )
    if "synthetic" in genesis:
        synthetic = read_table(genesis["synthetic"], "genesis.synthetic", SYNTHETIC_FIELDS)
        if "accounts" not in synthetic:
            raise ConfigError(
                f"genesis.synthetic.accounts: missing; expected {SYNTHETIC_FIELDS[0].expected()}"
            )
        kwargs["genesis_synthetic"] = SyntheticAccounts(**synthetic)
    return kwargs


def _genesis_account(table: dict[str, Any], where: str) -> dict[str, Any]:
    account = read_table(table, where, ACCOUNT_FIELDS)
    if "public_key" not in account:
        raise ACCOUNT_FIELDS[0].missing(f"{where}.public_key")
    return account
