"""A bill from drawing to the payee, and its circulation: issue, acceptance, delivery,
endorsement, discount, rediscount, pledge and release (docs/finance_bills.md).

::

    issue (drawer) -> DRAWN --accept (acceptor)--> OFFERED(DELIVERY to payee)
                        |--refuse (acceptor) / revoke (drawer)--> VOID
    OFFERED(DELIVERY) --sign (payee)--> ACTIVE, holder payee, chain[0] = drawer -> payee
                      --reject (payee) / revoke (drawer)--> VOID
    ACTIVE --offer (holder: ENDORSE | DISCOUNT | REDISCOUNT | PLEDGE)--> OFFERED
    OFFERED --sign (offeree)--> ACTIVE: a transfer appends to the chain and moves the
                                holder; a pledge records the pledgee and its loan
            --reject (offeree) / cancel (holder)--> ACTIVE, unchanged
    pledged ACTIVE --release (pledgee)--> ACTIVE, unpledged

Guarantees: a bill always has exactly one holder (the drawer until the payee signs); its
face, parties, maturity and due day never change; an offer is made only from ACTIVE and
unpledged, so a bill is never promised twice; the drawer's not-transferable mark refuses
every endorsement, discount, rediscount and pledge (``BILL_NOT_TRANSFERABLE``); nothing is
accepted, offered or signed after the maturity day (``BILL_MATURED``). Roles are checked
where a step relies on them and again at the counterparty's signature (the committee may
have removed a role meanwhile); steps that unwind (refuse, revoke, reject, cancel,
release) need none.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from tierchain.apps.bills import codes as c
from tierchain.apps.bills import days
from tierchain.apps.bills.codes import Bill, BillKind, BillReject, EventKind, OfferKind, RefusalReason
from tierchain.apps.bills.store import (
    BANK,
    CLEAR_OFFER,
    CLEAR_PLEDGE,
    ENTERPRISE,
    S,
    bill_tx,
    enum_value,
    load,
    movable,
    need_role,
    not_closed,
    not_matured,
    params,
    save,
    today,
)
from tierchain.apps.finance import claims
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.evidence import party_checked
from tierchain.apps.finance.orgs import active_org_with, make_tx, member, member_reads
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

OPS = apps.OpTable()

# kind, flags, acceptor, payee, face, maturity day, n docs; then n _DOC; then, optionally,
# the 8-byte placement tag (codes.bill_id): the payload's length says whether it is there
_ISSUE = struct.Struct("<BB16s16sQIB")
_DOC = struct.Struct("<B32s")
_OFFER = struct.Struct("<B16sQB")  # kind, to, price (loan), restrictive
_REASON = struct.Struct("<B")
FLAG_NOT_TRANSFERABLE = 1
# Documents between drawer and payee (an invoice, a contract): only one of them may have
# anchored them (finance.evidence.party_checked).
# What the sender of an offer needs, and what its counterparty needs (at offer and at sign).
OFFEROR_ROLES = {
    OfferKind.ENDORSE: ENTERPRISE,
    OfferKind.DISCOUNT: ENTERPRISE,
    OfferKind.REDISCOUNT: BANK,
    OfferKind.PLEDGE: ENTERPRISE | BANK,
}
OFFEREE_ROLES = {
    OfferKind.DELIVERY: ENTERPRISE,
    OfferKind.ENDORSE: ENTERPRISE,
    OfferKind.DISCOUNT: BANK,
    OfferKind.REDISCOUNT: BANK,
    OfferKind.PLEDGE: BANK,
}


def acceptor_roles(kind: int) -> int:
    return BANK if kind == BillKind.BANK else ENTERPRISE


def calendars(ctx: TxContext, year_first: int):
    """The calendar reader of an issue: the maturity's year and the next (declared)."""

    def of(year: int) -> c.Calendar | None:
        if not year_first <= year <= year_first + 1:
            return None  # a roll never reaches further (roll_days_max < 365)
        raw = ctx.get(c.calendar_key(year))
        return None if raw is None else c.Calendar.decode(raw)

    return of


# --- issue ---------------------------------------------------------------------------------------


@OPS.op(c.OP_ISSUE, "bill.issue")
def _issue(ctx: TxContext) -> None:
    drawer, _ = member(ctx, ENTERPRISE)
    pl = ctx.payload
    if len(pl) < _ISSUE.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    kind, flags, acceptor, payee, face, maturity, n = _ISSUE.unpack_from(pl)
    enum_value(BillKind, kind)
    end = _ISSUE.size + n * _DOC.size  # the documents; then an optional placement tag
    if flags & ~FLAG_NOT_TRANSFERABLE or n > c.docs_per_bill_max or len(pl) not in (end, end + c.tag_bytes):
        raise OpFailed(Reject.BAD_PAYLOAD, "flags, documents or placement tag")
    tag = pl[end:] or None
    docs = [_DOC.unpack_from(pl, _ISSUE.size + i * _DOC.size) for i in range(n)]
    if len(set(docs)) != n or any(t not in fc.DocType._value2member_map_ for t, _ in docs):
        raise OpFailed(Reject.BAD_PAYLOAD, "documents")
    if not 0 < face <= c.amount_max:
        raise OpFailed(BillReject.BILL_BAD_FACE)
    if payee in (drawer, acceptor):
        raise OpFailed(FinanceReject.BAD_COUNTERPARTY)
    active_org_with(ctx, acceptor, acceptor_roles(kind))
    active_org_with(ctx, payee, ENTERPRISE)
    p = params(ctx)
    day = today(ctx, p)
    if not day + p.min_tenor_days <= maturity <= day + p.max_tenor_days:
        raise OpFailed(BillReject.BILL_BAD_TENOR)
    due = days.due_day(maturity, p.weekend_mask, calendars(ctx, days.year_of(maturity)))
    if due is None:
        raise OpFailed(BillReject.BILL_NO_BUSINESS_DAY)
    bid = c.bill_id(ctx.sender, ctx.nonce, tag=tag, suite=ctx.suite)
    if ctx.get(c.bill_key(bid)) is not None:
        raise OpFailed(BillReject.BILL_EXISTS)
    for doc_type, fp in docs:
        claim = fc.claim_key(bid[: c.tag_bytes], doc_type, fp)
        if ctx.declares(claim):  # anchored on another shard of a cluster, cited for this bill
            claims.use(ctx, claim, doc_type, drawer, payee, None)
            continue
        raw = ctx.get(fc.doc_key(doc_type, fp))
        if raw is None:
            raise OpFailed(FinanceReject.NO_SUCH_DOC)
        party_checked(doc_type, fc.DocRecord.decode(raw), drawer, payee)
    bill = Bill(
        kind, bool(flags & FLAG_NOT_TRANSFERABLE), drawer, acceptor, payee, face, ctx.height,
        ctx.timestamp_ms, maturity, due, S.DRAWN, drawer, 0, fc.ZERO_ID, 0, False, fc.ZERO_ID, 0, 0,
        False, -1, 0, fc.ZERO_ID, 0, 0, 0, tuple(docs), (),
    )  # fmt: skip
    save(ctx, bid, bill, [(EventKind.ISSUED, kind, drawer, payee, face)], b"bill.issued")


# --- acceptance and delivery ---------------------------------------------------------------------


def _drawn(bill: Bill) -> None:
    not_closed(bill)
    if bill.state != S.DRAWN:
        raise OpFailed(BillReject.BILL_NOT_DRAWN)


@OPS.op(c.OP_ACCEPT, "bill.accept")
def _accept(ctx: TxContext) -> None:
    org, rec = member(ctx)
    bid, bill, _ = load(ctx)
    _drawn(bill)
    if org != bill.acceptor:
        raise OpFailed(BillReject.BILL_NOT_ACCEPTOR)
    need_role(rec, acceptor_roles(bill.kind))
    not_matured(ctx, bill)
    ev = (EventKind.ACCEPTED, 0, org, bill.payee, bill.face)
    save(ctx, bid, bill, [ev], b"bill.accepted", state=S.OFFERED, offer_kind=OfferKind.DELIVERY,
         offeree=bill.payee)  # fmt: skip


@OPS.op(c.OP_REFUSE, "bill.refuse")
def _refuse(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, (reason,) = load(ctx, _REASON)
    enum_value(RefusalReason, reason)
    _drawn(bill)
    if org != bill.acceptor:
        raise OpFailed(BillReject.BILL_NOT_ACCEPTOR)
    ev = (EventKind.ACCEPTANCE_REFUSED, reason, org, bill.drawer, 0)
    save(ctx, bid, bill, [ev], b"bill.void", state=S.VOID)


@OPS.op(c.OP_REVOKE, "bill.revoke")
def _revoke(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, _ = load(ctx)
    not_closed(bill)
    if not (bill.state == S.DRAWN or (bill.state == S.OFFERED and bill.offer_kind == OfferKind.DELIVERY)):
        raise OpFailed(BillReject.BILL_NOT_DRAWN)
    if org != bill.drawer:
        raise OpFailed(BillReject.BILL_NOT_DRAWER)
    ev = (EventKind.REVOKED, 0, org, bill.payee, 0)
    save(ctx, bid, bill, [ev], b"bill.void", state=S.VOID, **CLEAR_OFFER)


# --- offers: endorsement, discount, rediscount, pledge ---------------------------------------------


def _check_price(kind: int, price: int, face: int, restrictive: int) -> None:
    if restrictive > 1 or (restrictive and kind != OfferKind.ENDORSE):
        raise OpFailed(Reject.BAD_PAYLOAD, "a restrictive mark is an endorsement's")
    if kind == OfferKind.ENDORSE:
        ok = price == 0
    elif kind == OfferKind.PLEDGE:
        ok = 0 < price <= face
    else:
        ok = 0 < price < face
    if not ok:
        raise OpFailed(BillReject.BILL_BAD_PRICE)


@OPS.op(c.OP_OFFER, "bill.offer")
def _offer(ctx: TxContext) -> None:
    org, rec = member(ctx)
    bid, bill, (kind, to, price, restrictive) = load(ctx, _OFFER)
    if kind not in OFFEROR_ROLES:
        raise OpFailed(Reject.BAD_PAYLOAD, "offer kind")
    if org != bill.holder:
        raise OpFailed(BillReject.BILL_NOT_HOLDER)
    movable(bill)
    if bill.pledged:
        raise OpFailed(BillReject.BILL_PLEDGED)
    if bill.not_transferable:
        raise OpFailed(BillReject.BILL_NOT_TRANSFERABLE)
    not_matured(ctx, bill)
    need_role(rec, OFFEROR_ROLES[kind])
    if to == org:
        raise OpFailed(FinanceReject.BAD_COUNTERPARTY)
    active_org_with(ctx, to, OFFEREE_ROLES[kind])
    _check_price(kind, price, bill.face, restrictive)
    if kind != OfferKind.PLEDGE and len(bill.chain) >= c.endorsements_max:
        raise OpFailed(BillReject.BILL_CHAIN_FULL)
    if bill.events >= c.events_max:
        raise OpFailed(BillReject.BILL_HISTORY_FULL)
    ev = (EventKind.OFFERED, kind, org, to, price)
    save(ctx, bid, bill, [ev], b"bill.offered", state=S.OFFERED, offer_kind=kind, offeree=to, price=price,
         restrictive=bool(restrictive))  # fmt: skip


def _offered(bill: Bill) -> None:
    not_closed(bill)
    if bill.state != S.OFFERED:
        raise OpFailed(BillReject.BILL_NOT_OFFERED)


@OPS.op(c.OP_SIGN, "bill.sign")
def _sign(ctx: TxContext) -> None:
    org, rec = member(ctx)
    bid, bill, _ = load(ctx)
    _offered(bill)
    if org != bill.offeree:
        raise OpFailed(BillReject.BILL_NOT_OFFEREE)
    need_role(rec, OFFEREE_ROLES[OfferKind(bill.offer_kind)])
    not_matured(ctx, bill)
    kind = bill.offer_kind
    ev = (EventKind.SIGNED, kind, org, bill.holder, bill.price)
    if kind == OfferKind.PLEDGE:
        save(ctx, bid, bill, [ev], b"bill.pledged", state=S.ACTIVE, pledgee=org, loan=bill.price,
             **CLEAR_OFFER)  # fmt: skip
        return
    if len(bill.chain) >= c.endorsements_max:
        raise OpFailed(BillReject.BILL_CHAIN_FULL)
    link = c.Transfer(kind, bill.holder, org, ctx.height, ctx.timestamp_ms, bill.price, bill.restrictive)
    save(ctx, bid, bill, [ev], b"bill.transferred", state=S.ACTIVE, holder=org, chain=(*bill.chain, link),
         **CLEAR_OFFER)  # fmt: skip


@OPS.op(c.OP_REJECT, "bill.reject")
def _reject(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, _ = load(ctx)
    _offered(bill)
    if org != bill.offeree:
        raise OpFailed(BillReject.BILL_NOT_OFFEREE)
    ev = (EventKind.REJECTED, bill.offer_kind, org, bill.holder, 0)
    # A payee that rejects delivery ends the bill: it never entered circulation.
    state = S.VOID if bill.offer_kind == OfferKind.DELIVERY else S.ACTIVE
    save(ctx, bid, bill, [ev], b"bill.rejected", state=state, **CLEAR_OFFER)


@OPS.op(c.OP_CANCEL, "bill.cancel")
def _cancel(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, _ = load(ctx)
    _offered(bill)
    if bill.offer_kind == OfferKind.DELIVERY:
        raise OpFailed(BillReject.BILL_DELIVERY)
    if org != bill.holder:
        raise OpFailed(BillReject.BILL_NOT_HOLDER)
    ev = (EventKind.CANCELLED, bill.offer_kind, org, bill.offeree, 0)
    save(ctx, bid, bill, [ev], b"bill.cancelled", state=S.ACTIVE, **CLEAR_OFFER)


@OPS.op(c.OP_RELEASE, "bill.release")
def _release(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, _ = load(ctx)
    not_closed(bill)
    if not bill.pledged:
        raise OpFailed(BillReject.BILL_NOT_PLEDGED)
    if org != bill.pledgee:
        raise OpFailed(BillReject.BILL_NOT_PLEDGEE)
    ev = (EventKind.RELEASED, 0, org, bill.holder, bill.loan)
    save(ctx, bid, bill, [ev], b"bill.released", **CLEAR_PLEDGE)


# --- client-side builders (pure: the caller supplies what state decides) ----------------------------


def issue(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    kind: int,
    acceptor: bytes,
    payee: bytes,
    face: int,
    maturity_day: int,
    *,
    not_transferable: bool = False,
    docs: list[tuple[int, bytes]] = (),
    tag: bytes | None = None,
    suite: CryptoSuite = ED25519_BLAKE3,
    claimed: Iterable[tuple[int, bytes]] = (),
) -> tuple[txcodec.Tx, bytes]:
    """Draw a bill; returns the tx and the new bill's id. ``tag``: the 8-byte placement tag
    the id starts with (on a cluster: ``codes.placement_tag`` for the shard the tx is signed
    for); ``None`` keeps the payload and the id of a chain without shards. ``claimed``: the
    documents anchored on another shard and cited for this bill's tag
    (``finance.claims``, docs/sharding.md "Documents across shards")."""
    if not 0 <= maturity_day < 1 << 32 or len(docs) > c.docs_per_bill_max:
        raise ValueError(f"a maturity day number and at most {c.docs_per_bill_max} documents")
    bid = c.bill_id(sender, nonce, tag=tag, suite=suite)
    year = days.year_of(maturity_day)
    reads = member_reads(sender, org) | {fc.org_key(acceptor), fc.org_key(payee), c.PARAMS_KEY}
    reads |= {c.calendar_key(y) for y in (year, year + 1) if y < 1 << 16}
    claimed = set(claimed)
    reads |= {fc.claim_key(bid[: c.tag_bytes], *d) if d in claimed else fc.doc_key(*d) for d in docs}
    payload = _ISSUE.pack(
        BillKind(kind), FLAG_NOT_TRANSFERABLE if not_transferable else 0, acceptor, payee, face,
        maturity_day, len(docs),
    ) + b"".join(_DOC.pack(t, fp) for t, fp in docs) + (tag or b"")  # fmt: skip
    writes = {c.bill_key(bid), c.event_key(bid, 0)}
    return make_tx(chain_id, c.OP_ISSUE, sender, nonce, reads, writes, payload), bid


def accept(chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int) -> txcodec.Tx:
    return bill_tx(chain_id, c.OP_ACCEPT, sender, org, nonce, bill, seq)


def refuse(
    chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int, reason: int
) -> txcodec.Tx:
    body = _REASON.pack(RefusalReason(reason))
    return bill_tx(chain_id, c.OP_REFUSE, sender, org, nonce, bill, seq, body)


def revoke(chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int) -> txcodec.Tx:
    return bill_tx(chain_id, c.OP_REVOKE, sender, org, nonce, bill, seq)


def offer(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    bill: bytes,
    seq: int,
    kind: int,
    to: bytes,
    price: int = 0,
    restrictive: bool = False,
) -> txcodec.Tx:
    """An endorsement (price 0), discount, rediscount (price) or pledge (price = the loan)."""
    body = _OFFER.pack(kind, to, price, restrictive)
    return bill_tx(chain_id, c.OP_OFFER, sender, org, nonce, bill, seq, body, reads=(fc.org_key(to),))


def simple(
    op: int, chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int
) -> txcodec.Tx:
    """An op whose payload is the head alone: sign, reject, cancel, release."""
    return bill_tx(chain_id, op, sender, org, nonce, bill, seq)
