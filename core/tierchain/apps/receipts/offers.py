"""Transfer and pledge of a receipt: two-step offers, the pledgee's releases, default.

::

    ACTIVE --offer_transfer--> OFFERED --accept--> ACTIVE (the offeree holds it)
    ACTIVE --offer_pledge----> PLEDGE_OFFERED --accept--> PLEDGED (the bank is pledgee)
    OFFERED | PLEDGE_OFFERED --return (offeree or holder)--> ACTIVE (unchanged)
    PLEDGED --allow_out (pledgee)--> PLEDGED, that much more goods-out allowed
    PLEDGED --release (pledgee)--> ACTIVE;  PLEDGED --pledge_default (after due)--> ACTIVE, pledgee holds

A receipt backs at most one pledge at a time: a pledge offer on a pledged receipt is
``WR_ALREADY_PLEDGED``, on one under an offer ``WR_OFFER_PENDING``; a pledged receipt
is not transferred, split or closed (``WR_PLEDGED``), and its goods leave only as far as
the pledgee allowed (``goods.py`` records anything else as an anomaly). An offer shows
the balance at the time; the accept is refused (``WR_BALANCE_CHANGED``) if goods-out
has lowered it since, so nobody takes less than they were offered.

Roles are checked where they matter, again at the accept (the committee may have removed
them): a transferee is an active supplier, core enterprise or bank; a pledgee a bank
(finance's ``BAD_COUNTERPARTY`` at the offer, ``ROLE_MISSING`` at the accept). Unwinding
needs no role: a pledgee releases, either side returns an offer.
"""

from __future__ import annotations

import struct

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.orgs import active_org_with, make_tx, member, member_reads, role_bits
from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts import store
from tierchain.apps.receipts.codes import Event, ReceiptReject, State
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OPS = apps.OpTable()  # this module's ops (tierchain.apps.receipts.app)
R = ReceiptReject
BANK = role_bits("bank")
TRANSFEREE = role_bits("supplier", "core_enterprise", "bank")
_TRANSFER = struct.Struct("<16s16s")
_PLEDGE = struct.Struct("<16s16sQQ")  # receipt, bank, loan, due time
_ALLOW = struct.Struct("<16sQ")


def _offer_to(ctx: TxContext, oid: bytes, to: bytes, roles: int) -> None:
    if to == oid:
        raise OpFailed(FinanceReject.BAD_COUNTERPARTY, "an offer to itself")
    active_org_with(ctx, to, roles)


@OPS.op(c.OP_OFFER_TRANSFER, "wr.offer_transfer")
def _offer_transfer(ctx: TxContext) -> None:
    if len(ctx.payload) != _TRANSFER.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "transfer offer")
    rid, to = _TRANSFER.unpack(ctx.payload)
    oid, rec = store.held(ctx, rid)
    _offer_to(ctx, oid, to, TRANSFEREE)
    rec = store.log(
        ctx, rec, Event.TRANSFER_OFFERED, to, rec.balance,
        state=State.OFFERED, counterparty=to, offered_balance=rec.balance,
    )  # fmt: skip
    store.save(ctx, rid, rec)
    ctx.emit(b"wr.offer", rid + to)


@OPS.op(c.OP_OFFER_PLEDGE, "wr.offer_pledge")
def _offer_pledge(ctx: TxContext) -> None:
    if len(ctx.payload) != _PLEDGE.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "pledge offer")
    rid, bank, loan, due_ms = _PLEDGE.unpack(ctx.payload)
    if not 1 <= loan <= fc.amount_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "loan")
    oid, _ = member(ctx)
    rec = store.load(ctx, rid)
    if rec.holder != oid:
        raise OpFailed(R.WR_NOT_HOLDER)
    if rec.state == State.PLEDGED:
        raise OpFailed(R.WR_ALREADY_PLEDGED)
    store.movable(rec)
    if due_ms <= ctx.timestamp_ms:
        raise OpFailed(Reject.BAD_PAYLOAD, "a loan due after the block time")
    _offer_to(ctx, oid, bank, BANK)
    rec = store.log(
        ctx, rec, Event.PLEDGE_OFFERED, bank, loan,
        state=State.PLEDGE_OFFERED, counterparty=bank, loan=loan, due_ms=due_ms, offered_balance=rec.balance,
    )  # fmt: skip
    store.save(ctx, rid, rec)
    ctx.emit(b"wr.pledge_offer", rid + bank + loan.to_bytes(8, "little"))


@OPS.op(c.OP_ACCEPT, "wr.accept")
def _accept(ctx: TxContext) -> None:
    rid = store.receipt_id_of(ctx.payload)
    oid, org = member(ctx)
    rec = store.load(ctx, rid)
    if rec.state not in (State.OFFERED, State.PLEDGE_OFFERED):
        raise OpFailed(R.WR_NOT_OFFERED)
    if rec.counterparty != oid:
        raise OpFailed(R.WR_NOT_OFFEREE)
    pledge = rec.state == State.PLEDGE_OFFERED
    if not org.roles & (BANK if pledge else TRANSFEREE):
        raise OpFailed(FinanceReject.ROLE_MISSING)
    if rec.balance < rec.offered_balance:
        raise OpFailed(R.WR_BALANCE_CHANGED)
    if pledge:
        rec = store.log(ctx, rec, Event.PLEDGED, oid, rec.loan, state=State.PLEDGED, offered_balance=0)
    else:
        rec = store.log(ctx, store.cleared(rec, holder=oid), Event.TRANSFERRED, oid, rec.balance)
    store.save(ctx, rid, rec)
    ctx.emit(b"wr.accept", rid + oid + bytes((pledge,)))


@OPS.op(c.OP_RETURN, "wr.return")
def _return(ctx: TxContext) -> None:
    rid = store.receipt_id_of(ctx.payload)
    oid, _ = member(ctx)
    rec = store.load(ctx, rid)
    if rec.state not in (State.OFFERED, State.PLEDGE_OFFERED):
        raise OpFailed(R.WR_NOT_OFFERED)
    if oid not in (rec.counterparty, rec.holder):
        raise OpFailed(R.WR_NOT_OFFEREE)
    store.save(ctx, rid, store.log(ctx, store.cleared(rec), Event.RETURNED, oid, rec.balance))
    ctx.emit(b"wr.return", rid + oid)


def _pledgee(ctx: TxContext, rid: bytes, roles: int = 0) -> tuple[bytes, c.Receipt]:
    oid, _ = member(ctx, roles)
    rec = store.load(ctx, rid)
    if rec.state != State.PLEDGED:
        raise OpFailed(R.WR_NOT_PLEDGED)
    if rec.counterparty != oid:
        raise OpFailed(R.WR_NOT_PLEDGEE)
    return oid, rec


@OPS.op(c.OP_RELEASE, "wr.release")
def _release(ctx: TxContext) -> None:
    rid = store.receipt_id_of(ctx.payload)
    oid, rec = _pledgee(ctx, rid)
    store.save(ctx, rid, store.log(ctx, store.cleared(rec), Event.RELEASED, oid, rec.loan))
    ctx.emit(b"wr.release", rid + oid)


@OPS.op(c.OP_ALLOW_OUT, "wr.allow_out")
def _allow_out(ctx: TxContext) -> None:
    if len(ctx.payload) != _ALLOW.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "allow out")
    rid, quantity = _ALLOW.unpack(ctx.payload)
    if not 1 <= quantity <= c.quantity_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "quantity")
    oid, rec = _pledgee(ctx, rid)
    if rec.allowance + quantity > rec.balance:
        raise OpFailed(R.WR_EXCEEDS_BALANCE)
    rec = store.log(ctx, rec, Event.OUT_ALLOWED, oid, quantity, allowance=rec.allowance + quantity)
    store.save(ctx, rid, rec)
    ctx.emit(b"wr.allow_out", rid + quantity.to_bytes(8, "little"))


@OPS.op(c.OP_PLEDGE_DEFAULT, "wr.pledge_default")
def _pledge_default(ctx: TxContext) -> None:
    rid = store.receipt_id_of(ctx.payload)
    oid, rec = _pledgee(ctx, rid, BANK)
    if ctx.timestamp_ms < rec.due_ms:
        raise OpFailed(R.WR_LOAN_NOT_DUE)
    rec = store.log(ctx, store.cleared(rec, holder=oid), Event.DEFAULT_TAKEN, oid, rec.balance)
    store.save(ctx, rid, rec)
    ctx.emit(b"wr.default", rid + oid)


# --- client-side builders -------------------------------------------------------------------------


def _reads(sender: bytes, org: bytes, *others: bytes) -> set[bytes]:
    return {*member_reads(sender, org), *(fc.org_key(o) for o in others)}


def offer_transfer(chain_id: int, sender: bytes, org: bytes, nonce: int, rid: bytes, to: bytes) -> tx.Tx:
    return make_tx(
        chain_id, c.OP_OFFER_TRANSFER, sender, nonce, _reads(sender, org, to), {c.receipt_key(rid)},
        _TRANSFER.pack(rid, to),
    )  # fmt: skip


def offer_pledge(
    chain_id: int, sender: bytes, org: bytes, nonce: int, rid: bytes, bank: bytes, loan: int, due_ms: int
) -> tx.Tx:
    return make_tx(
        chain_id, c.OP_OFFER_PLEDGE, sender, nonce, _reads(sender, org, bank), {c.receipt_key(rid)},
        _PLEDGE.pack(rid, bank, loan, due_ms),
    )  # fmt: skip


def _simple(op: int) -> object:
    def build(chain_id: int, sender: bytes, org: bytes, nonce: int, rid: bytes) -> tx.Tx:
        return make_tx(chain_id, op, sender, nonce, member_reads(sender, org), {c.receipt_key(rid)}, rid)

    return build


accept = _simple(c.OP_ACCEPT)
return_offer = _simple(c.OP_RETURN)
release = _simple(c.OP_RELEASE)
pledge_default = _simple(c.OP_PLEDGE_DEFAULT)


def allow_out(chain_id: int, sender: bytes, org: bytes, nonce: int, rid: bytes, quantity: int) -> tx.Tx:
    return make_tx(
        chain_id, c.OP_ALLOW_OUT, sender, nonce, member_reads(sender, org), {c.receipt_key(rid)},
        _ALLOW.pack(rid, quantity),
    )  # fmt: skip
