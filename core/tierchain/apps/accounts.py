"""The ``accounts`` app: account registration and fungible balance transfer.

Built in (``tierchain.engine.apps.BUILTIN_APPS``): op codes 1..2, the account roles
``registrar`` and ``committee`` (bits 0 and 1 of the roles mask), and the genesis
state of ``[[genesis.accounts]]`` and ``[genesis.synthetic]`` (``_genesis``). Its
refusals are the engine's shared codes (64..95). The roles mask of an account
holds the roles of every app of the chain (``TxContext.apps.role_bits``).

Each op has two halves that must agree: the handler (runs in the ledger, per
transaction) and a client-side builder that computes the declared read/write
keys, so that no caller lists keys by hand.

State layout (keys are at most ``limits.key_bytes_max`` bytes):

* ``acct/<public key>`` -> roles bitmask u32 LE || registered-at height u64 LE
* ``bal/<public key>``  -> balance u64 LE, in minor units (no floats anywhere)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator

from tierchain.config import ChainConfig
from tierchain.engine import apps, genesis, route
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OP_REGISTER = 1
OP_TRANSFER = 2

ROLES = (apps.Role("registrar", 0), apps.Role("committee", 1))
ROLE_BITS = {r.name: 1 << r.bit for r in ROLES}  # this app's roles (all roles: apps.default_set())
_ops = apps.OpTable()
_ACCT = struct.Struct("<IQ")
_U64 = struct.Struct("<Q")
_TRANSFER = struct.Struct("<32sQ")
_REGISTER = struct.Struct("<32sI")
amount_max = (1 << 63) - 1


def account_key(public_key: bytes) -> bytes:
    return b"acct/" + public_key


def balance_key(public_key: bytes) -> bytes:
    return b"bal/" + public_key


def roles_mask(roles: Iterable[str], app_set: apps.AppSet | None = None) -> int:
    """The roles mask of role names of any app of ``app_set`` (default: the built-in apps)."""
    return (app_set or apps.default_set()).roles_mask(roles)


def account_value(roles_bits: int, height: int) -> bytes:
    return _ACCT.pack(roles_bits, height)


def decode_account(raw: bytes) -> tuple[int, int]:
    """An ``acct/`` record read back: ``(roles mask, registered-at height)``, as
    ``account_value`` packed them; ``struct.error`` if ``raw`` is not one (12 bytes)."""
    return _ACCT.unpack(raw)


# _genesis yields every acct/ record before any bal/ balance: keys must ascend.
assert account_key(b"") < balance_key(b""), "acct/ must sort before bal/"


def roles_of(ctx: TxContext, public_key: bytes) -> int | None:
    """The roles bitmask of a registered account (None if unregistered)."""
    raw = ctx.get(account_key(public_key))
    return None if raw is None else decode_account(raw)[0]


@_ops.op(OP_REGISTER, "register")
def _register(ctx: TxContext) -> None:
    if len(ctx.payload) != _REGISTER.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "register payload is public key + roles u32")
    new_key, roles_bits = _REGISTER.unpack(ctx.payload)
    if roles_bits & ~ctx.apps.role_mask:
        raise OpFailed(Reject.BAD_PAYLOAD, "unknown role bits")
    if not ctx.suite.is_strong_public_key(new_key):
        raise OpFailed(Reject.WEAK_KEY)
    sender_roles = roles_of(ctx, ctx.sender)
    if sender_roles is None or not sender_roles & ROLE_BITS["registrar"]:
        raise OpFailed(Reject.UNAUTHORIZED, "only a registrar registers accounts")
    if ctx.get(account_key(new_key)) is not None:
        raise OpFailed(Reject.ACCOUNT_EXISTS)
    ctx.put(account_key(new_key), account_value(roles_bits, ctx.height))
    ctx.emit(b"account.registered", new_key)


@_ops.op(OP_TRANSFER, "transfer", native="accounts.transfer")
def _transfer(ctx: TxContext) -> None:
    if len(ctx.payload) != _TRANSFER.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "transfer payload is recipient + amount u64")
    to, amount = _TRANSFER.unpack(ctx.payload)
    if to == ctx.sender or not 0 < amount <= amount_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "self-transfer or amount out of range")
    if ctx.get(account_key(to)) is None:
        raise OpFailed(Reject.NO_SUCH_ACCOUNT, "recipient is not registered")
    have = ctx.get_u64(balance_key(ctx.sender))
    if have < amount:
        raise OpFailed(Reject.INSUFFICIENT_FUNDS)
    credit = ctx.get_u64(balance_key(to)) + amount
    if credit > amount_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "recipient balance would overflow")
    ctx.put_u64(balance_key(ctx.sender), have - amount)
    ctx.put_u64(balance_key(to), credit)
    ctx.emit(b"transfer", ctx.sender + to + amount.to_bytes(8, "little"))


# --- client-side builders: the declared keys are computed here ----------------


def register(
    chain_id: int,
    sender: bytes,
    nonce: int,
    new_key: bytes,
    roles: tuple[str, ...] = (),
    expires_at: int = 0,
    app_set: apps.AppSet | None = None,
) -> tx.Tx:
    """Register ``new_key`` with ``roles``: names of roles of ``app_set`` (default: the built-in apps)."""
    return tx.Tx(
        chain_id=chain_id,
        shard_id=0,
        op=OP_REGISTER,
        sender=sender,
        nonce=nonce,
        expires_at=expires_at,
        reads=(account_key(sender),),
        writes=(account_key(new_key),),
        payload=_REGISTER.pack(new_key, roles_mask(roles, app_set)),
    )


def transfer(chain_id: int, sender: bytes, nonce: int, to: bytes, amount: int, expires_at: int = 0) -> tx.Tx:
    return tx.Tx(
        chain_id=chain_id,
        shard_id=0,
        op=OP_TRANSFER,
        sender=sender,
        nonce=nonce,
        expires_at=expires_at,
        reads=(account_key(to),),
        writes=tuple(sorted({balance_key(sender), balance_key(to)})),
        payload=_TRANSFER.pack(to, amount),
    )


# --- genesis: the accounts a chain starts with ---------------------------------------------


def _genesis(
    config: ChainConfig, app_set: apps.AppSet, chunk_items: int
) -> Iterator[list[tuple[bytes, bytes]]]:
    """``acct/`` records of every genesis account, then its non-zero ``bal/`` balances,
    each run in public-key order (``acct/`` sorts before ``bal/``)."""
    synth = config.genesis_synthetic
    roles = {a.public_key: app_set.roles_mask(a.roles) for a in config.genesis_accounts}
    balances = {a.public_key: a.balance for a in config.genesis_accounts}
    synthetic_balance = synth.balance if synth else 0
    keys = genesis.sorted_public_keys(config)
    plain_account = account_value(0, 0)  # one shared object for every synthetic record
    plain_balance = _U64.pack(synthetic_balance)
    packed = keys.tobytes()
    del keys
    n = len(packed) // 32
    for start in range(0, n, chunk_items):
        stop = min(n, start + chunk_items)
        out = []
        for i in range(start, stop):
            pk = packed[32 * i : 32 * i + 32]
            bits = roles.get(pk)
            out.append((b"acct/" + pk, plain_account if bits is None else account_value(bits, 0)))
        yield out
    if not synthetic_balance:  # only listed accounts hold a balance: skip the synthetic ones
        listed = sorted((b"bal/" + pk, _U64.pack(b)) for pk, b in balances.items() if b)
        for start in range(0, len(listed), chunk_items):
            yield listed[start : start + chunk_items]
        return
    chunk: list[tuple[bytes, bytes]] = []
    for start in range(0, n, chunk_items):
        keys = [b"bal/" + packed[32 * i : 32 * i + 32] for i in range(start, min(n, start + chunk_items))]
        # A shard of a cluster holds only the balances of its home accounts (docs/sharding.md).
        home = (
            route.route_keys(keys, config.shard_count, app_set.placement) == config.shard_index
            if config.sharded
            else None
        )
        for j, key in enumerate(keys):
            if home is not None and not home[j]:
                continue
            balance = balances.get(key[4:])
            value = plain_balance if balance is None else _U64.pack(balance) if balance else None
            if value is None:
                continue
            chunk.append((key, value))
            if len(chunk) == chunk_items:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def balance(state_get: Callable[[bytes], bytes | None], public_key: bytes) -> int:
    """The balance of ``public_key`` in ``state_get`` (a chain's: ``Chain.balance``)."""
    raw = state_get(balance_key(public_key))
    return 0 if raw is None else _U64.unpack(raw)[0]


APP = apps.App(
    name="accounts",
    ops=tuple(_ops.ops),
    op_codes=range(OP_REGISTER, OP_TRANSFER + 1),
    roles=ROLES,
    genesis=_genesis,
    queries=(("balance", balance),),
)
