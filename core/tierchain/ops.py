"""Built-in ops: account registration and fungible balance transfer.

Each op has two halves that must agree: the handler (runs in the ledger, per
transaction) and a client-side builder that computes the declared read/write
keys, so that no caller lists keys by hand.

State layout (keys are at most ``limits.key_bytes_max`` bytes):

* ``acct/<public key>`` -> roles bitmask u32 LE || registered-at height u64 LE
* ``bal/<public key>``  -> balance u64 LE, in minor units (no floats anywhere)
"""

from __future__ import annotations

import struct

from tierchain import wire
from tierchain.config import ROLES
from tierchain.crypto import is_strong_public_key
from tierchain.errors import Reject
from tierchain.execute import OpFailed, TxContext, register_op

OP_REGISTER = 1
OP_TRANSFER = 2

ROLE_BITS = {name: 1 << i for i, name in enumerate(ROLES)}
_ACCT = struct.Struct("<IQ")
_TRANSFER = struct.Struct("<32sQ")
_REGISTER = struct.Struct("<32sI")
amount_max = (1 << 63) - 1


def account_key(public_key: bytes) -> bytes:
    return b"acct/" + public_key


def balance_key(public_key: bytes) -> bytes:
    return b"bal/" + public_key


def roles_mask(roles: tuple[str, ...] | list[str]) -> int:
    mask = 0
    for role in roles:
        mask |= ROLE_BITS[role]
    return mask


def account_value(roles_bits: int, height: int) -> bytes:
    return _ACCT.pack(roles_bits, height)


def roles_of(ctx: TxContext, public_key: bytes) -> int | None:
    """The roles bitmask of a registered account (None if unregistered)."""
    raw = ctx.get(account_key(public_key))
    return None if raw is None else _ACCT.unpack(raw)[0]


@register_op(OP_REGISTER, "register")
def _register(ctx: TxContext) -> None:
    if len(ctx.payload) != _REGISTER.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "register payload is public key + roles u32")
    new_key, roles_bits = _REGISTER.unpack(ctx.payload)
    if roles_bits & ~roles_mask(ROLES):
        raise OpFailed(Reject.BAD_PAYLOAD, "unknown role bits")
    if not is_strong_public_key(new_key):
        raise OpFailed(Reject.WEAK_KEY)
    sender_roles = roles_of(ctx, ctx.sender)
    if sender_roles is None or not sender_roles & ROLE_BITS["registrar"]:
        raise OpFailed(Reject.UNAUTHORIZED, "only a registrar registers accounts")
    if ctx.get(account_key(new_key)) is not None:
        raise OpFailed(Reject.ACCOUNT_EXISTS)
    ctx.put(account_key(new_key), account_value(roles_bits, ctx.height))
    ctx.emit(b"account.registered", new_key)


@register_op(OP_TRANSFER, "transfer")
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
    chain_id: int, sender: bytes, nonce: int, new_key: bytes, roles: tuple[str, ...] = (), expires_at: int = 0
) -> wire.Tx:
    return wire.Tx(
        chain_id=chain_id,
        shard_id=0,
        op=OP_REGISTER,
        sender=sender,
        nonce=nonce,
        expires_at=expires_at,
        reads=(account_key(sender),),
        writes=(account_key(new_key),),
        payload=_REGISTER.pack(new_key, roles_mask(roles)),
    )


def transfer(
    chain_id: int, sender: bytes, nonce: int, to: bytes, amount: int, expires_at: int = 0
) -> wire.Tx:
    return wire.Tx(
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


# The finance ops (issue 6) register themselves on import; importing them here gives
# every engine (chain, verify, tests) the same op table. Last line: tierchain.finance
# imports this module's names.
from tierchain import finance as _finance  # noqa: E402, F401
from tierchain import xshard as _xshard  # noqa: E402, F401
