"""Apps: the op sets the engine runs, registered with it as values (docs/architecture.md "Apps").

The engine (chain, execute, verify, genesis, route, ...) imports no app. An ``App`` is
one frozen value that declares everything the engine needs from an op set:

* ``ops``: op code -> handler and name; every code inside ``op_codes``;
* ``reject_codes``: the refusal codes it owns; codes below ``app_reject_codes_min``
  are the engine's (``tierchain.errors.Reject``), shared by every app. ``rejects``
  names them: an ``IntEnum`` of codes inside the range, which the API and the CLI
  show (``AppSet.reject_name``); receipts keep the number;
* ``domains``: its BLAKE3 derive-key contexts;
* ``roles``: account role names and their bit in the ``acct/`` roles mask;
* ``placement``: shard placement rules, as data the native router takes
  (``tierchain.engine.route``, ext/cython/_route.pxi): pinned, tagged or replicated keys;
* ``replicates``: its replication ops, which alone write replicated keys on a shard other
  than the primary;
* ``genesis``: a hook yielding the state the app contributes at genesis;
* ``requires``: the apps it builds on, which must come before it in the set (by name, or
  by a name another app ``provides``); its handlers may refuse with their codes too (the
  sharing app builds on finance's organizations);
* ``endpoints``: node API methods (``POST /v1/app/<name>``, JSON in and out), each made
  once per node from its chain, so it may keep per-node state such as rate limits.

An ``AppSet`` is the apps of one chain. Building it refuses overlapping op-code or
reject-code ranges, role names or bits, domains and placement prefixes
(``AppConflict``): two apps can never mean two things by one number or one hash.

A chain's app NAMES are part of its genesis identity (``[chain] apps`` in chain.toml,
left out of the identity bytes when it is ``DEFAULT_APPS`` so that existing chains keep
their identity). ``resolve`` turns names into apps, in this order: apps given by value
(``Chain(apps=...)``), the built-ins (``BUILTIN_APPS``, loaded by module path on first
use), the ``tierchain.apps`` entry-point group, and ``module:attr`` specs in the
``TIERCHAIN_APPS`` environment variable (comma separated; it reaches the processes a
node or cluster starts). Loading is by name, at run time, so no engine module imports
an app and the package has no import cycle (tests/test_import_cycles.py).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from typing import Any

from tierchain import domains
from tierchain.errors import Reject, TierChainError

ENTRY_POINT_GROUP = "tierchain.apps"
APPS_ENV = "TIERCHAIN_APPS"
# The default app set: what every chain ran before apps were named (its identity omits it).
DEFAULT_APPS = ("accounts", "xshard", "finance")
# Built-in apps by name, in the form an entry point takes (loaded only when named).
BUILTIN_APPS = {
    "accounts": "tierchain.apps.accounts:APP",
    "xshard": "tierchain.apps.xshard:APP",
    "finance": "tierchain.apps.finance.app:APP",
    # finance without the ops that put amounts in the clear (docs/privacy.md)
    "finance_confidential": "tierchain.apps.finance.app:CONFIDENTIAL_APP",
    # data sharing under control; its members are finance's organizations (docs/privacy.md)
    "sharing": "tierchain.apps.sharing.app:APP",
    # finance v2 products on finance's organizations (docs/finance.md)
    "bills": "tierchain.apps.bills.app:APP",
    "receipts": "tierchain.apps.receipts.app:APP",
    "abs": "tierchain.apps.abs.app:APP",
    "tradefin": "tierchain.apps.tradefin.app:APP",
}
op_code_max = (1 << 16) - 1  # the wire's op field is a u16; op 0 is reserved
reject_code_max = (1 << 16) - 1  # a receipt's code field is a u16
app_reject_codes_min = 96  # 0..95 are the engine's codes (wire, admission, execution)
role_bits_max = 32  # the acct/ roles mask is a u32
placement_prefix_bytes_max = 8  # ext/cython/_route.pxi: PREFIX_BYTES_MAX
placement_rules_max = 64  # ext/cython/_route.pxi: RULES_MAX
placement_tag_bytes_max = 32
app_name_bytes_max = 32
endpoint_name_bytes_max = 64

# The event an app emits to change the consensus validator set of a replicated chain:
# data = the validator's Ed25519 public key (32 bytes) + its voting power (u64 LE; 0 removes
# it). A replicated node hands each one, from receipts with code 0, to CometBFT as a
# validator update (tierchain.replication.app); a solo chain ignores it.
VALIDATOR_UPDATE_TOPIC = b"consensus.validator"
validator_power_max = 1 << 32

PINNED = "pinned"  # prefix + u16 LE shard + rest: the key lives on shard u16 % n
TAG = "tag"  # prefix + tag + rest: the key routes by the tag's bytes alone
# The key is on every shard of a cluster (docs/sharding.md "Replicated records"): it is
# written by ordinary transactions on the primary shard (``route.PRIMARY_SHARD``) alone, and
# copied onto every other shard by the apps' replication ops (``App.replicates``), which may
# write it on any shard but the primary. A single-shard chain is its own primary.
REPLICATED = "replicated"


class AppError(TierChainError):
    """An app or an app set is malformed."""


class UnknownApp(AppError):
    """An app name resolves to no built-in, entry point or TIERCHAIN_APPS module."""


class AppConflict(AppError):
    """Two apps of one set claim the same op code, reject code, role, domain or key prefix."""


class AppSetMismatch(AppError):
    """A node was given an app set other than the one its chain's genesis records."""


@dataclasses.dataclass(frozen=True)
class Op:
    """One op: its protocol-stable code, its name (logs) and its handler.

    ``handler`` takes a ``tierchain.engine.execute.TxContext``; it refuses a transaction by
    raising ``OpFailed``. ``native``: the name of a kernel of the Rust crate
    (``tierchain_native.exec_constants()``, ext/rust/src/exec/) that does exactly what
    ``handler`` does, columnar and in parallel; the executor runs the op's transactions
    there unless native ops are off (``execute.native_ops_env``). The handler stays the
    op's definition: a differential test runs both (tests/engine/test_native_exec.py)."""

    code: int
    name: str
    handler: Callable[[Any], None]
    native: str | None = None

    def __post_init__(self) -> None:
        if self.native is not None and self.native not in native_kernels():
            raise AppError(
                f"op {self.name}: no native kernel {self.native!r} (known: {sorted(native_kernels())})"
            )


@functools.cache
def native_kernels() -> dict[str, int]:
    """The Rust crate's op kernels: name -> id."""
    import tierchain_native

    return dict(tierchain_native.exec_constants()[0])


@dataclasses.dataclass(frozen=True)
class Role:
    """An account role: ``bit`` is its index in the ``acct/`` roles mask (protocol)."""

    name: str
    bit: int


@dataclasses.dataclass(frozen=True)
class Placement:
    """A shard placement rule: keys starting with ``prefix`` are placed by ``rule``
    (``PINNED``: the u16 LE after the prefix names the shard; ``TAG``: the
    ``tag_bytes`` after the prefix are routed instead of the whole key; ``REPLICATED``:
    on every shard, written on the primary, copied by the ops in ``writers``).

    ``writers`` is filled in by ``AppSet`` (every app's ``replicates``): an app declares a
    replicated rule with none."""

    prefix: bytes
    rule: str
    tag_bytes: int = 0
    writers: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if not 1 <= len(self.prefix) <= placement_prefix_bytes_max:
            raise AppError(f"placement prefix {self.prefix!r}: 1..{placement_prefix_bytes_max} bytes")
        if self.writers and self.rule != REPLICATED:
            raise AppError(f"placement {self.prefix!r}: only a replicated rule has writers")
        if self.rule in (PINNED, REPLICATED) and self.tag_bytes == 0:
            return
        if self.rule != TAG or not 1 <= self.tag_bytes <= placement_tag_bytes_max:
            raise AppError(f"placement {self.prefix!r}: a pinned or replicated rule, or a tag of 1..32 bytes")


@dataclasses.dataclass(frozen=True)
class BatchCheck:
    """A stateless admission check of an app's ops, run once per batch on every row of
    ``ops`` that passed the engine's checks (signatures included): ``check(batch, rows,
    suite)`` (``suite``: the chain's ``CryptoSuite``, which fixes sizes some payloads hold)
    returns a code per row of ``rows`` (indices into the ``tierchain.wire.batch.Batch``),
    0 or an engine admission code (``ADMISSION_CODES``, e.g. ``Reject.BAD_PROOF``). For
    work that is best done in one native call per batch, like signatures: zero-knowledge
    proofs. It must be deterministic (a replicated node's ProcessProposal runs it too) and
    read nothing but the batch; what depends on state is the op handler's to check."""

    ops: frozenset[int]
    check: Callable[[Any, Any, Any], Any]
    name: str = ""


# What a BatchCheck may answer besides 0: the engine's admission refusals.
ADMISSION_CODES = frozenset(int(c) for c in Reject if 32 <= c < 64)


class EndpointError(TierChainError):
    """An app endpoint refuses a request: ``code`` is its name (UPPER_CASE), ``status`` the
    HTTP status the node answers with (400 bad input, 401/403 authentication, 404 unknown,
    429 rate limited)."""

    def __init__(self, code: str, detail: str = "", status: int = 400) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code, self.detail, self.status = code, detail, status


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A node API method of an app: ``POST /v1/app/<name>`` with a JSON object as body.
    ``make(chain)`` is called once when the node's API starts and returns the handler:
    ``handler(body: dict) -> JSON-able``, run in the API's thread pool; it refuses with
    ``EndpointError``. Names are ``<app>.<method>`` (letters, digits, ``_`` and ``.``)."""

    name: str
    make: Callable[[Any], Callable[[dict], Any]]

    def __post_init__(self) -> None:
        ok = self.name.replace("_", "a").replace(".", "a")
        if not (0 < len(self.name) <= endpoint_name_bytes_max and ok.isalnum() and self.name.isascii()):
            raise AppError(f"endpoint name {self.name!r}: 1..{endpoint_name_bytes_max} of [A-Za-z0-9_.]")


# genesis(config, apps, chunk_items): the app's genesis state as ascending chunks of at
# most chunk_items (key, value) pairs, each key once (tierchain.engine.genesis merges the apps').
GenesisHook = Callable[[Any, "AppSet", int], Iterator[list[tuple[bytes, bytes]]]]


@dataclasses.dataclass(frozen=True)
class App:
    """One op set, as a value the engine is given (see the module docstring)."""

    name: str
    ops: tuple[Op, ...]
    op_codes: range
    reject_codes: range = range(0)
    # The names of its refusal codes (``class NotaryReject(enum.IntEnum)``), each inside
    # ``reject_codes``: what a receipt's code is called in the API and the CLI.
    rejects: type[enum.IntEnum] | None = None
    domains: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()
    placement: tuple[Placement, ...] = ()
    genesis: GenesisHook | None = None
    # Read-only queries over state: (name, fn(state_get, *args)); ``Chain.query`` runs them
    # (the accounts app's "balance" is ``Chain.balance``).
    queries: tuple[tuple[str, Callable[..., Any]], ...] = ()
    # Stateless admission checks of some of its ops, one call per batch (``BatchCheck``).
    checks: tuple[BatchCheck, ...] = ()
    # Node API methods (``Endpoint``): ``POST /v1/app/<name>``.
    endpoints: tuple[Endpoint, ...] = ()
    # Apps this one builds on: each must be earlier in the set, by its name or by a name an
    # earlier app ``provides``; this app's handlers may refuse with their reject codes too.
    requires: tuple[str, ...] = ()
    # Other names this app answers to in ``requires`` (a variant of an app: finance_confidential
    # provides "finance").
    provides: tuple[str, ...] = ()
    # Its replication ops: they copy ``REPLICATED`` keys (any app's) onto a shard other than
    # the primary, the only way such a key is written there (xshard's ``xshard.replicate``).
    replicates: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        name = self.name
        if not (0 < len(name) <= app_name_bytes_max and name.replace("_", "a").isalnum() and name.isascii()):
            raise AppError(f"app name {name!r}: 1..{app_name_bytes_max} ASCII letters, digits or _")
        if self.op_codes.step != 1 or not 1 <= self.op_codes.start < self.op_codes.stop <= op_code_max + 1:
            raise AppError(f"app {name}: op codes {self.op_codes} not a range in 1..{op_code_max}")
        r = self.reject_codes
        if r.step != 1 or (len(r) and not app_reject_codes_min <= r.start < r.stop <= reject_code_max + 1):
            raise AppError(f"app {name}: reject codes {r} not a range in {app_reject_codes_min}..")
        if self.rejects is not None:
            _check_rejects(self)
        seen: set[int] = set()
        for op in self.ops:
            if op.code not in self.op_codes:
                raise AppError(f"app {name}: op {op.name} has code {op.code} outside {self.op_codes}")
            if op.code in seen:
                raise AppConflict(f"app {name}: op code {op.code} declared twice")
            seen.add(op.code)
        if not set(self.replicates) <= seen:
            raise AppError(f"app {name}: replication ops {sorted(self.replicates)} are not ops of the app")
        for check in self.checks:
            if not check.ops or not check.ops <= seen:
                raise AppError(f"app {name}: a batch check's ops {sorted(check.ops)} are not ops of the app")
        for other in (*self.requires, *self.provides):
            if not (isinstance(other, str) and 0 < len(other) <= app_name_bytes_max) or other == name:
                raise AppError(f"app {name}: requires/provides {other!r} is not another app's name")
        for role in self.roles:
            if not 0 <= role.bit < role_bits_max:
                raise AppError(f"app {name}: role {role.name} bit {role.bit} outside 0..{role_bits_max - 1}")


def _check_rejects(app: App) -> None:
    if not (isinstance(app.rejects, type) and issubclass(app.rejects, enum.IntEnum)):
        raise AppError(f"app {app.name}: rejects is an IntEnum of its reject codes")
    for code in app.rejects:
        if code.value not in app.reject_codes:
            raise AppError(f"app {app.name}: reject {code.name} = {code.value} outside {app.reject_codes}")
        if not (code.name.isidentifier() and code.name.isascii() and code.name.isupper()):
            raise AppError(f"app {app.name}: reject name {code.name!r} is not an UPPER_CASE identifier")
        if code.name in Reject.__members__:
            raise AppConflict(f"app {app.name}: reject name {code.name} is the engine's")


class OpTable:
    """Collects an app's ops as its modules define them: ``@table.op(code, name)``.

    A plain list per app, not a global registry: importing a module registers nothing
    with the engine; the ``App`` value built from ``table.ops`` does."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def op(self, code: int, name: str, native: str | None = None) -> Callable:
        def wrap(handler: Callable[[Any], None]) -> Callable[[Any], None]:
            self.ops.append(Op(code, name, handler, native))
            return handler

        return wrap


def _overlap(a: range, b: range) -> bool:
    return bool(len(a) and len(b) and a.start < b.stop and b.start < a.stop)


class AppSet:
    """The apps of one chain, checked to be disjoint; the tables the engine reads."""

    def __init__(self, apps: Iterable[App]) -> None:
        self.apps = tuple(apps)
        self.names = tuple(a.name for a in self.apps)
        if len(set(self.names)) != len(self.names):
            raise AppConflict(f"app set {list(self.names)} names an app twice")
        self.ops: dict[int, Op] = {}
        self.queries: dict[str, Callable[..., Any]] = {q: fn for a in self.apps for q, fn in a.queries}
        self.role_bits: dict[str, int] = {}  # role name -> its bit as a mask (1 << bit)
        self.reject_names: dict[int, str] = {}  # an app's refusal code -> its declared name
        # op code -> the reject codes its handler may use: its app's, then the apps it requires
        self._refusals: dict[int, tuple[range, ...]] = {}
        owner: dict[str, str] = {}
        engine_domains = set(domains.ALL + domains.STATE_TREE)
        for i, app in enumerate(self.apps):
            for other in self.apps[:i]:
                for what in ("op_codes", "reject_codes"):
                    if _overlap(getattr(app, what), getattr(other, what)):
                        raise AppConflict(
                            f"apps {other.name} and {app.name}: {what.replace('_', ' ')} "
                            f"{getattr(other, what)} and {getattr(app, what)} overlap"
                        )
            for op in app.ops:
                self.ops[op.code] = op
            for code in app.rejects or ():
                self.reject_names[code.value] = code.name
            claims = [(f"role {r.name}", r.name) for r in app.roles]
            claims += [(f"role bit {r.bit}", f"bit {r.bit}") for r in app.roles]
            claims += [(f"domain {d!r}", f"domain {d}") for d in app.domains]
            claims += [(f"placement prefix {p.prefix!r}", f"prefix {p.prefix.hex()}") for p in app.placement]
            claims += [(f"query {q}", f"query {q}") for q, _ in app.queries]
            claims += [(f"endpoint {e.name}", f"endpoint {e.name}") for e in app.endpoints]
            claims += [(f"reject name {c.name}", f"reject {c.name}") for c in app.rejects or ()]
            for label, key in claims:
                if key in owner:
                    raise AppConflict(f"apps {owner[key]} and {app.name} both claim {label}")
                owner[key] = app.name
            for d in app.domains:
                if d in engine_domains:
                    raise AppConflict(f"app {app.name}: domain {d!r} is the engine's")
            for role in app.roles:
                self.role_bits[role.name] = 1 << role.bit
        self._check_requires()
        prefixes = [p.prefix for a in self.apps for p in a.placement]
        for p in prefixes:
            for q in prefixes:
                if p != q and q.startswith(p):
                    raise AppConflict(f"placement prefix {p!r} is a prefix of {q!r}")
        if len(prefixes) > placement_rules_max:
            raise AppConflict(f"{len(prefixes)} placement rules; the router takes {placement_rules_max}")
        self.role_mask = functools.reduce(int.__or__, self.role_bits.values(), 0)
        # The ops that copy replicated keys onto a non-primary shard: every replicated rule's writers.
        self.replicate_ops = frozenset(op for a in self.apps for op in a.replicates)
        self.placement: tuple[Placement, ...] = tuple(
            dataclasses.replace(p, writers=self.replicate_ops) if p.rule == REPLICATED else p
            for a in self.apps
            for p in a.placement
        )
        self.checks: tuple[BatchCheck, ...] = tuple(c for a in self.apps for c in a.checks)
        self.endpoints: dict[str, Endpoint] = {e.name: e for a in self.apps for e in a.endpoints}

    def _check_requires(self) -> None:
        """Each app's ``requires`` are met by earlier apps; their codes join its refusals."""
        seen: dict[str, App] = {}
        for app in self.apps:
            allowed = [app.reject_codes]
            for need in app.requires:
                found = seen.get(need)
                if found is None:
                    raise AppError(
                        f"app {app.name} requires {need!r} before it in the app set {list(self.names)}"
                    )
                allowed.append(found.reject_codes)
            for op in app.ops:
                self._refusals[op.code] = tuple(allowed)
            for name in (app.name, *app.provides):
                seen[name] = app

    def __repr__(self) -> str:
        return f"AppSet({list(self.names)})"

    def reject_name(self, code: int) -> str:
        """The name a receipt's ``code`` is shown by: an app's declared name (``App.rejects``),
        else the engine's (``Reject``), else ``REJECT_<code>`` (a code no app of this set names)."""
        name = self.reject_names.get(code)
        if name is not None:
            return name
        return Reject(code).name if code in Reject._value2member_map_ else f"REJECT_{code}"

    def may_refuse(self, op_code: int, code: int) -> bool:
        """Whether a handler of op ``op_code`` may refuse with ``code``: an engine code
        (``Reject``, below ``app_reject_codes_min``), one of its own app's range, or one of
        an app it ``requires``."""
        if code < app_reject_codes_min:
            return code in Reject._value2member_map_ and code != Reject.OK
        return any(code in r for r in self._refusals.get(op_code, ()))

    def roles_mask(self, roles: Iterable[str]) -> int:
        """The mask of role names ``roles`` (each one a role of some app of this set)."""
        mask = 0
        for role in roles:
            if role not in self.role_bits:
                raise AppError(f"unknown role {role!r}; roles: {', '.join(self.role_bits)}")
            mask |= self.role_bits[role]
        return mask

    def role_names(self, mask: int) -> list[str]:
        """The role names of ``mask``, in bit order (bits of no app are left out)."""
        return [name for name, bit in sorted(self.role_bits.items(), key=lambda kv: kv[1]) if mask & bit]


def _load(spec: str) -> App:
    """The ``App`` at ``module:attr``."""
    module, _, attr = spec.partition(":")
    try:
        value = getattr(importlib.import_module(module), attr or "APP")
    except (ImportError, AttributeError) as exc:
        raise UnknownApp(f"cannot load app {spec!r}: {exc}") from exc
    if not isinstance(value, App):
        raise AppError(f"{spec} is a {type(value).__name__}, not an App")
    return value


def _env_apps() -> dict[str, App]:
    specs = [s.strip() for s in os.environ.get(APPS_ENV, "").split(",") if s.strip()]
    return {app.name: app for app in map(_load, specs)}


def _entry_point(name: str) -> App | None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            app = ep.load()
            if not isinstance(app, App) or app.name != name:
                raise AppError(f"entry point {ENTRY_POINT_GROUP}:{name} is not the App named {name}")
            return app
    return None


def find(name: str, given: Iterable[App] = ()) -> App:
    """The app called ``name``: given by value, built in, entry point, or TIERCHAIN_APPS."""
    for app in given:
        if app.name == name:
            return app
    if name in BUILTIN_APPS:
        return _load(BUILTIN_APPS[name])
    if (app := _entry_point(name)) is not None:
        return app
    env = _env_apps()
    if name in env:
        return env[name]
    raise UnknownApp(
        f"unknown app {name!r}: not built in ({', '.join(BUILTIN_APPS)}), not in the entry-point "
        f"group {ENTRY_POINT_GROUP!r}, not in {APPS_ENV} ({os.environ.get(APPS_ENV, '')!r})"
    )


def resolve(names: Iterable[str], given: Iterable[App] = ()) -> AppSet:
    """The app set of ``names`` (a chain's ``[chain] apps``), in that order."""
    given = tuple(given)
    names = tuple(names)
    if not given:
        return _resolve_cached(names, os.environ.get(APPS_ENV, ""))
    extra = {a.name for a in given} - set(names)
    if extra:
        raise AppSetMismatch(f"apps {sorted(extra)} given, but the chain's apps are {list(names)}")
    return AppSet(find(name, given) for name in names)


@functools.lru_cache(maxsize=64)
def _resolve_cached(names: tuple[str, ...], env: str) -> AppSet:
    return AppSet(find(name) for name in names)


def recorded_names(genesis: bytes) -> tuple[str, ...]:
    """The app names a stored genesis record (``ChainConfig.genesis_bytes``) names."""
    try:
        chain = tomllib.loads(genesis.decode()).get("chain", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AppError(f"stored genesis is not TOML: {exc}") from exc
    return tuple(chain.get("apps", DEFAULT_APPS))


def check_recorded(genesis: bytes, app_set: AppSet) -> None:
    """Refuse (``AppSetMismatch``) to run ``app_set`` on a chain whose genesis names others."""
    recorded = recorded_names(genesis)
    if recorded != app_set.names:
        raise AppSetMismatch(
            f"this node runs apps {list(app_set.names)}; the chain's genesis has {list(recorded)}"
        )


def default_set() -> AppSet:
    """The built-in app set (``DEFAULT_APPS``): the role table clients and tools name roles by."""
    return resolve(DEFAULT_APPS)
