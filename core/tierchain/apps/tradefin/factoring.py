"""Factoring: the assignment of one receivable (an anchored invoice) to a factor bank, with
notice to the debtor, with or without recourse against the seller.

* ``f_assign`` — the **seller** (core enterprise or supplier) offers the assignment of the
  receivable of an invoice to a **factor** (bank): the invoice's fingerprint, the
  **debtor**, the amount, the due date, the factor's advance, with or without recourse,
  and the notice of assignment's fingerprint. The invoice must be anchored with finance
  (``fd/<INVOICE><fp>``) by the seller (not the debtor: an anchor names its submitter, not whose
  receivable it is) and must not back a finance voucher.
  The record is keyed by the invoice fingerprint (``tf/<fp>``), so **a receivable is
  assigned at most once**: a second offer, by anyone, to any factor, is refused
  (``TF_RECEIVABLE_ASSIGNED``) unless the earlier offer was declined, and then only by the
  same seller against the same debtor (at most ``receivable_offers_max`` offers).
* ``f_accept`` — the factor takes the assignment (its advance; the voucher check is made
  again) and the invoice's anchor is marked taken (``codes.FACTORED``): no finance voucher
  can be confirmed on it afterwards (``INVOICE_ALREADY_USED``); ``f_decline`` — the factor
  declines, or the seller withdraws, an open offer.
* ``f_ack`` — the debtor acknowledges the notice: from then on it pays the factor.
* ``f_pay`` — the debtor pays the factor (only after acknowledging; instalments up to the
  outstanding amount, at most ``receivable_payments_max``); paid in full: settled.
* ``f_default`` — the factor declares the debtor's default once the due date plus finance's
  ``default_grace_ms`` has passed; ``f_recourse`` — with recourse, it claims the outstanding
  amount from the seller; ``f_repurchase`` — the seller pays that claim.

Invariant: ``paid + recourse_paid <= amount`` (property tests).
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import orgs
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.codes import Event as E
from tierchain.apps.tradefin.codes import ReceivableStatus as S
from tierchain.apps.tradefin.codes import TradeReject as R
from tierchain.apps.tradefin.common import (
    ANY,
    BANK,
    TRADER,
    append,
    counterparty,
    distinct,
    emit,
    entry,
    future,
    load,
    need,
    parse,
)
from tierchain.apps.tradefin.records import ZERO_FP, Receivable
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.wire import tx

OPS = apps.OpTable()

_ASSIGN = struct.Struct("<32s16s16sQQQB32s")
_FP_FP = struct.Struct("<32s32s")  # invoice fingerprint, the step's document
_PAY = struct.Struct("<32sQ32s")


def _load(ctx: TxContext, fp: bytes) -> Receivable:
    return load(ctx, c.receivable_key(fp), Receivable, R.TF_NO_SUCH_RECEIVABLE)


def _put(
    ctx: TxContext, fp: bytes, r: Receivable, kind: int, org: bytes, amount: int, doc: bytes, **changes
) -> None:
    r = append(r, c.receivable_history_max, entry(ctx, kind, org, amount=amount, fp=doc), **changes)
    ctx.put(c.receivable_key(fp), r.encode())


def _invoice(ctx: TxContext, fp: bytes, seller: bytes) -> fc.DocRecord:
    """The invoice's anchor: with finance, by ``seller``, backing no voucher. Only the
    seller's own anchor counts: an anchor names who submitted it, not whose receivable it
    is, so a debtor's anchor would let any third party assign someone else's receivable."""
    raw = ctx.get(fc.doc_key(fc.DocType.INVOICE, fp))
    if raw is None:
        raise OpFailed(R.TF_INVOICE_NOT_ANCHORED)
    doc = fc.DocRecord.decode(raw)
    if doc.org != seller:
        raise OpFailed(R.TF_INVOICE_NOT_SELLERS)
    if doc.voucher != fc.ZERO_ID:
        raise OpFailed(R.TF_INVOICE_IN_VOUCHER)
    return doc


@OPS.op(c.OP_F_ASSIGN, "tf.f_assign")
def _assign(ctx: TxContext) -> None:
    fp, debtor, factor, amount, due, advance, recourse, notice = parse(_ASSIGN, ctx.payload)
    need(
        1 <= amount <= c.amount_max and advance <= amount and recourse in (0, 1),
        "amount, advance or recourse",
    )
    need(fp != ZERO_FP, "invoice fingerprint")
    seller, _ = orgs.member(ctx, TRADER)
    future(ctx, due, c.receivable_due_ms_max)
    distinct(seller, debtor, factor)
    counterparty(ctx, debtor, TRADER)
    counterparty(ctx, factor, BANK)
    raw = ctx.get(c.receivable_key(fp))
    if raw is None:
        r = Receivable(seller, debtor, factor, amount, due, advance, recourse, S.OFFERED, 0, 0, 0, 0, 0, ())
    else:
        r = Receivable.decode(raw)
        if r.status != S.DECLINED or r.seller != seller:
            raise OpFailed(R.TF_RECEIVABLE_ASSIGNED)
        if r.debtor != debtor:
            raise OpFailed(R.TF_NOT_DEBTOR)
        if r.offers >= c.receivable_offers_max:
            raise OpFailed(R.TF_OFFERS_EXHAUSTED)
        r = dataclasses.replace(
            r, factor=factor, amount=amount, due_ms=due, advance=advance, recourse=recourse, status=S.OFFERED
        )
    _invoice(ctx, fp, seller)
    _put(ctx, fp, r, E.F_OFFERED, factor, amount, notice, offers=r.offers + 1)  # org: the offeree
    emit(ctx, b"tf.f.offered", fp, factor)


@OPS.op(c.OP_F_ACCEPT, "tf.f_accept")
def _accept(ctx: TxContext) -> None:
    fp, doc = parse(_FP_FP, ctx.payload)
    oid, _ = orgs.member(ctx, BANK)
    r = _load(ctx, fp)
    if oid != r.factor:
        raise OpFailed(R.TF_NOT_FACTOR)
    if r.status != S.OFFERED:
        raise OpFailed(R.TF_BAD_RECEIVABLE_STATE)
    anchor = _invoice(ctx, fp, r.seller)
    # taken: the invoice backs no voucher from now on (finance sees it used)
    ctx.put(fc.doc_key(fc.DocType.INVOICE, fp), dataclasses.replace(anchor, voucher=c.FACTORED).encode())
    _put(ctx, fp, r, E.F_ASSIGNED, oid, r.advance, doc, status=S.ASSIGNED)
    emit(ctx, b"tf.f.assigned", fp, oid)


@OPS.op(c.OP_F_DECLINE, "tf.f_decline")
def _decline(ctx: TxContext) -> None:
    fp, doc = parse(_FP_FP, ctx.payload)
    oid, _ = orgs.member(ctx, ANY)
    r = _load(ctx, fp)
    if oid not in (r.factor, r.seller):
        raise OpFailed(R.TF_NOT_FACTOR)
    if r.status != S.OFFERED:
        raise OpFailed(R.TF_BAD_RECEIVABLE_STATE)
    _put(ctx, fp, r, E.F_DECLINED, oid, 0, doc, status=S.DECLINED)
    emit(ctx, b"tf.f.declined", fp)


@OPS.op(c.OP_F_ACK, "tf.f_ack")
def _ack(ctx: TxContext) -> None:
    fp, doc = parse(_FP_FP, ctx.payload)
    oid, _ = orgs.member(ctx, TRADER)
    r = _load(ctx, fp)
    if oid != r.debtor:
        raise OpFailed(R.TF_NOT_DEBTOR)
    if r.status != S.ASSIGNED or r.acknowledged:
        raise OpFailed(R.TF_BAD_RECEIVABLE_STATE)
    _put(ctx, fp, r, E.F_ACKNOWLEDGED, oid, r.amount, doc, acknowledged=1)
    emit(ctx, b"tf.f.acknowledged", fp)


@OPS.op(c.OP_F_PAY, "tf.f_pay")
def _pay(ctx: TxContext) -> None:
    fp, amount, doc = parse(_PAY, ctx.payload)
    need(amount >= 1, "payment amount")
    oid, _ = orgs.member(ctx, ANY)  # paying needs no role
    r = _load(ctx, fp)
    if oid != r.debtor:
        raise OpFailed(R.TF_NOT_DEBTOR)
    if r.status not in (S.ASSIGNED, S.DEFAULTED, S.RECOURSE_CLAIMED):
        raise OpFailed(R.TF_BAD_RECEIVABLE_STATE)
    if not r.acknowledged:
        raise OpFailed(R.TF_NOTICE_NOT_ACKNOWLEDGED)
    if amount > r.outstanding:
        raise OpFailed(R.TF_EXCEEDS_OUTSTANDING)
    if r.payments >= c.receivable_payments_max:
        raise OpFailed(R.TF_HISTORY_FULL)
    paid = r.paid + amount
    status = S.SETTLED if paid == r.amount else r.status
    _put(ctx, fp, r, E.F_PAID, oid, amount, doc, paid=paid, payments=r.payments + 1, status=status)
    emit(ctx, b"tf.f.paid", fp, amount.to_bytes(8, "little"))


def _factor_step(ctx: TxContext, status: int) -> tuple[bytes, bytes, bytes, Receivable]:
    fp, doc = parse(_FP_FP, ctx.payload)
    oid, _ = orgs.member(ctx, ANY)
    r = _load(ctx, fp)
    if oid != r.factor:
        raise OpFailed(R.TF_NOT_FACTOR)
    if r.status != status:
        raise OpFailed(R.TF_BAD_RECEIVABLE_STATE)
    return fp, doc, oid, r


@OPS.op(c.OP_F_DEFAULT, "tf.f_default")
def _default(ctx: TxContext) -> None:
    fp, doc, oid, r = _factor_step(ctx, S.ASSIGNED)
    if ctx.timestamp_ms <= r.due_ms + orgs.params(ctx).default_grace_ms:
        raise OpFailed(R.TF_NOT_OVERDUE)
    _put(ctx, fp, r, E.F_DEFAULTED, oid, r.outstanding, doc, status=S.DEFAULTED)
    emit(ctx, b"tf.f.defaulted", fp)


@OPS.op(c.OP_F_RECOURSE, "tf.f_recourse")
def _recourse(ctx: TxContext) -> None:
    fp, doc, oid, r = _factor_step(ctx, S.DEFAULTED)
    if not r.recourse:
        raise OpFailed(R.TF_NO_RECOURSE)
    _put(ctx, fp, r, E.F_RECOURSE_CLAIMED, oid, r.outstanding, doc, status=S.RECOURSE_CLAIMED)
    emit(ctx, b"tf.f.recourse", fp)


@OPS.op(c.OP_F_REPURCHASE, "tf.f_repurchase")
def _repurchase(ctx: TxContext) -> None:
    fp, doc = parse(_FP_FP, ctx.payload)
    oid, _ = orgs.member(ctx, ANY)
    r = _load(ctx, fp)
    if oid != r.seller:
        raise OpFailed(R.TF_NOT_SELLER)
    if r.status != S.RECOURSE_CLAIMED:
        raise OpFailed(R.TF_BAD_RECEIVABLE_STATE)
    _put(
        ctx,
        fp,
        r,
        E.F_REPURCHASED,
        oid,
        r.outstanding,
        doc,
        status=S.REPURCHASED,
        recourse_paid=r.outstanding,
    )
    emit(ctx, b"tf.f.repurchased", fp)


# --- builders --------------------------------------------------------------------------------------


def _tx(
    chain_id: int, op: int, sender: bytes, org: bytes, nonce: int, fp: bytes, payload: bytes, reads=()
) -> tx.Tx:
    reads, writes = orgs.member_reads(sender, org) | set(reads), {c.receivable_key(fp)}
    if op == c.OP_F_ASSIGN:  # checks the invoice's anchor; the factor's accept binds it
        reads.add(fc.doc_key(fc.DocType.INVOICE, fp))
    elif op == c.OP_F_ACCEPT:
        writes.add(fc.doc_key(fc.DocType.INVOICE, fp))
    if op == c.OP_F_DEFAULT:
        reads.add(fc.PARAMS_KEY)
    return orgs.make_tx(chain_id, op, sender, nonce, reads, writes, payload)


def assign(
    chain_id: int, sender: bytes, org: bytes, nonce: int, fp: bytes, debtor: bytes, factor: bytes,
    amount: int, due_ms: int, advance: int, recourse: bool, notice_fp: bytes,
) -> tx.Tx:  # fmt: skip
    payload = _ASSIGN.pack(fp, debtor, factor, amount, due_ms, advance, int(recourse), notice_fp)
    reads = {fc.org_key(debtor), fc.org_key(factor)}
    return _tx(chain_id, c.OP_F_ASSIGN, sender, org, nonce, fp, payload, reads)


def step(op: int, chain_id: int, sender: bytes, org: bytes, nonce: int, fp: bytes, doc: bytes) -> tx.Tx:
    """accept, decline, ack, default, recourse, repurchase."""
    return _tx(chain_id, op, sender, org, nonce, fp, _FP_FP.pack(fp, doc))


def pay(chain_id: int, sender: bytes, org: bytes, nonce: int, fp: bytes, amount: int, doc: bytes) -> tx.Tx:
    return _tx(chain_id, c.OP_F_PAY, sender, org, nonce, fp, _PAY.pack(fp, amount, doc))
