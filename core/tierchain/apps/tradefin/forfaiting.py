"""Forfaiting: a forfaiter bank buys an accepted usance instrument without recourse.

Two kinds of instrument (``ForfaitKind``):

* ``LC_DRAWING`` — a drawing under an LC on this chain that the issuing bank accepted and
  that matures later (usance). Checked on chain: the seller is the LC's beneficiary, the
  drawing is accepted and unpaid, its face and maturity are the drawing's, the obligor is
  the issuing bank. When the issuing bank pays the drawing (``lc_pay``), it pays the
  forfaiter that bought it and the forfaiting is settled in the same transaction; an offer
  still open then lapses.
* ``BILL`` — a usance bill or similar instrument held off chain, named by its fingerprint,
  obligor, face and maturity as the seller states them (not verifiable on chain); the
  forfaiter records its payment at maturity (``w_settle``).

Ops: ``w_offer`` (the holder: forfaiter, price at most the face), ``w_accept`` (the
forfaiter buys, before maturity), ``w_decline`` (the forfaiter declines or the holder
withdraws an open offer), ``w_settle`` (a bill's payment to the forfaiter at maturity).
An instrument has one forfaiting record (``codes.forfait_id``: kind + reference): it is offered again only
after a decline, by the same holder (``TF_ALREADY_FORFAITED`` otherwise).
Without recourse: nothing here lets the forfaiter come back to the seller.
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.finance import orgs
from tierchain.apps.finance.codes import org_key
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.codes import Event as E
from tierchain.apps.tradefin.codes import ForfaitKind as K
from tierchain.apps.tradefin.codes import ForfaitStatus as S
from tierchain.apps.tradefin.codes import PresentationStatus as P
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
    load,
    need,
    parse,
)
from tierchain.apps.tradefin.records import ZERO_FP, Forfait, Lc, Presentation
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OPS = apps.OpTable()

_OFFER_LC = struct.Struct("<B16sB16sQ32s")  # kind, LC, presentation, forfaiter, price, document
_OFFER_BILL = struct.Struct(
    "<B32s16s16sQQQ32s"
)  # kind, bill fp, forfaiter, obligor, face, maturity, price, document
_ID_FP = struct.Struct("<33s32s")
_HOLDERS = TRADER | BANK  # who may sell a bill: a supplier, a core enterprise, or a bank
bill_maturity_ms_max = 2 * 366 * 86_400_000


def lc_ref(lc_id: bytes, n: int) -> bytes:
    """An LC drawing's 32-byte reference: LC id, presentation index, zero padding."""
    return c.drawing_forfait_id(lc_id, n)[1:]


def _lc_drawing(ctx: TxContext, seller: bytes, lc_id: bytes, n: int) -> tuple[bytes, int, int, bytes]:
    """(reference, face, maturity, obligor) of an accepted, unpaid usance drawing of ``seller``'s."""
    lc = load(ctx, c.lc_key(lc_id), Lc, R.TF_NO_SUCH_LC)
    if seller != lc.beneficiary:
        raise OpFailed(R.TF_NOT_BENEFICIARY)
    p = _drawing(ctx, lc_id, n, lc)
    return lc_ref(lc_id, n), p.amount, p.maturity_ms, lc.issuer


def _drawing(ctx: TxContext, lc_id: bytes, n: int, lc: Lc | None = None) -> Presentation:
    if lc is not None and n >= lc.presentations:
        raise OpFailed(R.TF_NO_SUCH_PRESENTATION)
    p = load(ctx, c.presentation_key(lc_id, n), Presentation, R.TF_NO_SUCH_PRESENTATION)
    if p.status != P.ACCEPTED or p.maturity_ms <= p.accepted_ms:  # sight drawings are not forfaited
        raise OpFailed(R.TF_NOT_FORFAITABLE)
    if ctx.timestamp_ms >= p.maturity_ms:
        raise OpFailed(R.TF_MATURED)
    return p


@OPS.op(c.OP_W_OFFER, "tf.w_offer")
def _offer(ctx: TxContext) -> None:
    need(len(ctx.payload) >= 1, "kind")
    kind = ctx.payload[0]
    if kind == K.LC_DRAWING:
        _, lc_id, n, forfaiter, price, doc = parse(_OFFER_LC, ctx.payload)
        seller, _ = orgs.member(ctx, TRADER)
        ref, face, maturity, obligor = _lc_drawing(ctx, seller, lc_id, n)
        fid = c.drawing_forfait_id(lc_id, n)
    elif kind == K.BILL:
        _, ref, forfaiter, obligor, face, maturity, price, doc = parse(_OFFER_BILL, ctx.payload)
        need(ref != ZERO_FP and 1 <= face <= c.amount_max, "bill fingerprint or face")
        seller, _ = orgs.member(ctx, _HOLDERS)
        if not ctx.timestamp_ms < maturity <= ctx.timestamp_ms + bill_maturity_ms_max:
            raise OpFailed(R.TF_MATURED)
        counterparty(ctx, obligor, ANY)
        distinct(seller, obligor)
        fid = c.forfait_id(kind, ref)
    else:
        raise OpFailed(Reject.BAD_PAYLOAD, "forfait kind")
    need(1 <= price <= face, "price")
    distinct(seller, forfaiter)
    counterparty(ctx, forfaiter, BANK)
    raw = ctx.get(c.forfait_key(fid))
    if raw is None:
        w = Forfait(kind, ref, seller, forfaiter, obligor, face, price, maturity, S.OFFERED, 0, ())
    else:
        w = Forfait.decode(raw)
        if w.status != S.DECLINED or w.seller != seller:
            raise OpFailed(R.TF_ALREADY_FORFAITED)
        if w.offers >= c.forfait_offers_max:
            raise OpFailed(R.TF_OFFERS_EXHAUSTED)
        # A re-offer is of the same instrument: only the forfaiter and the price change.
        need((w.face, w.obligor, w.maturity_ms) == (face, obligor, maturity), "a re-offer's instrument")
        w = dataclasses.replace(w, forfaiter=forfaiter, price=price, status=S.OFFERED)
    w = append(
        w,
        c.forfait_history_max,
        entry(ctx, E.W_OFFERED, forfaiter, amount=price, fp=doc),
        offers=w.offers + 1,
    )
    ctx.put(c.forfait_key(fid), w.encode())
    emit(ctx, b"tf.w.offered", fid, forfaiter)


def _load(ctx: TxContext) -> tuple[bytes, bytes, bytes, Forfait]:
    fid, doc = parse(_ID_FP, ctx.payload)
    need(c.valid_forfait_id(fid), "forfait id")
    oid, _ = orgs.member(ctx, ANY)
    return fid, doc, oid, load(ctx, c.forfait_key(fid), Forfait, R.TF_NO_SUCH_FORFAIT)


def _put(
    ctx: TxContext, fid: bytes, w: Forfait, kind: int, org: bytes, amount: int, doc: bytes, **changes
) -> None:
    w = append(w, c.forfait_history_max, entry(ctx, kind, org, amount=amount, fp=doc), **changes)
    ctx.put(c.forfait_key(fid), w.encode())


@OPS.op(c.OP_W_ACCEPT, "tf.w_accept")
def _accept(ctx: TxContext) -> None:
    fid, doc, oid, w = _load(ctx)
    if oid != w.forfaiter:
        raise OpFailed(R.TF_NOT_FORFAITER)
    orgs.member(ctx, BANK)  # buying is a bank's act: its role is checked now
    if w.status != S.OFFERED:
        raise OpFailed(R.TF_BAD_FORFAIT_STATE)
    if w.kind == K.LC_DRAWING:
        _drawing(ctx, *w.lc_ref)
    elif ctx.timestamp_ms >= w.maturity_ms:
        raise OpFailed(R.TF_MATURED)
    _put(ctx, fid, w, E.W_PURCHASED, oid, w.price, doc, status=S.PURCHASED)
    emit(ctx, b"tf.w.purchased", fid)


@OPS.op(c.OP_W_DECLINE, "tf.w_decline")
def _decline(ctx: TxContext) -> None:
    fid, doc, oid, w = _load(ctx)
    if oid not in (w.forfaiter, w.seller):
        raise OpFailed(R.TF_NOT_HOLDER)
    if w.status != S.OFFERED:
        raise OpFailed(R.TF_BAD_FORFAIT_STATE)
    _put(ctx, fid, w, E.W_DECLINED, oid, 0, doc, status=S.DECLINED)
    emit(ctx, b"tf.w.declined", fid)


@OPS.op(c.OP_W_SETTLE, "tf.w_settle")
def _settle(ctx: TxContext) -> None:
    fid, doc, oid, w = _load(ctx)
    if oid != w.forfaiter:
        raise OpFailed(R.TF_NOT_FORFAITER)
    if w.kind != K.BILL or w.status != S.PURCHASED:  # an LC drawing settles by the LC payment
        raise OpFailed(R.TF_BAD_FORFAIT_STATE)
    if ctx.timestamp_ms < w.maturity_ms:
        raise OpFailed(R.TF_NOT_DUE)
    _put(ctx, fid, w, E.W_SETTLED, oid, w.face, doc, status=S.SETTLED)
    emit(ctx, b"tf.w.settled", fid)


# --- builders ---------------------------------------------------------------------------------


def offer_lc(
    chain_id: int, sender: bytes, org: bytes, nonce: int, lc_id: bytes, n: int, forfaiter: bytes, price: int,
    doc: bytes,
) -> tuple[tx.Tx, bytes]:  # fmt: skip
    fid = c.drawing_forfait_id(lc_id, n)
    reads = orgs.member_reads(sender, org) | {
        c.lc_key(lc_id),
        c.presentation_key(lc_id, n),
        org_key(forfaiter),
    }
    payload = _OFFER_LC.pack(K.LC_DRAWING, lc_id, n, forfaiter, price, doc)
    return orgs.make_tx(chain_id, c.OP_W_OFFER, sender, nonce, reads, {c.forfait_key(fid)}, payload), fid


def offer_bill(
    chain_id: int, sender: bytes, org: bytes, nonce: int, bill_fp: bytes, forfaiter: bytes, obligor: bytes,
    face: int, maturity_ms: int, price: int, doc: bytes,
) -> tuple[tx.Tx, bytes]:  # fmt: skip
    fid = c.forfait_id(K.BILL, bill_fp)
    reads = orgs.member_reads(sender, org) | {org_key(forfaiter), org_key(obligor)}
    payload = _OFFER_BILL.pack(K.BILL, bill_fp, forfaiter, obligor, face, maturity_ms, price, doc)
    return orgs.make_tx(chain_id, c.OP_W_OFFER, sender, nonce, reads, {c.forfait_key(fid)}, payload), fid


def step(
    op: int, chain_id: int, sender: bytes, org: bytes, nonce: int, fid: bytes, w: Forfait | None, doc: bytes
) -> tx.Tx:
    """accept (declares the LC drawing it checks), decline, settle."""
    reads = orgs.member_reads(sender, org)
    if op == c.OP_W_ACCEPT and w is not None and w.kind == K.LC_DRAWING:
        reads.add(c.presentation_key(*w.lc_ref))
    return orgs.make_tx(chain_id, op, sender, nonce, reads, {c.forfait_key(fid)}, _ID_FP.pack(fid, doc))
