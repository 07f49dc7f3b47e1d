"""Presentment, payment, dishonour and recourse (docs/finance_bills.md, "Recourse").

::

    ACTIVE --present (claimant, on/after the due day)--> PRESENTED
    PRESENTED --pay (acceptor)--> PAID (closed)
              --dishonour (acceptor, reason; or the claimant, NO_RESPONSE, after
                answer_days)--> DISHONOURED
    DISHONOURED --claim (claimant)--> claim pending on the next prior party
                --recourse_pay (claimed party)--> DISHONOURED, the payer holds it
                --recourse_refuse (claimed party, reason)--> the claim moves up
                --pay (acceptor, at any time)--> PAID

The *claimant* is the pledgee of a pledged bill, else the holder: it presents, claims and
is paid first (the pledgee up to its loan, the holder the rest; ``store.payees``).

**Recourse, in order.** The endorsement chain ``T[0..n-1]`` lists every transfer
(``T[0]``: drawer -> payee). A holder ``H``'s prior parties are the transferors before its
own first appearance as a transferor: ``pointer(H) = min(i: T[i].frm == H, else n) - 1``
(a holder that once endorsed the bill away has no recourse against those who held it in
between). A claim goes to ``T[p].frm`` for the current pointer ``p``, skipping a
restrictive endorsement (the endorser's 不得转让) whose endorsee is not ``H``. The claimed
party pays exactly the face (never more: no interest or costs on chain) and becomes the
holder, with its own pointer; or refuses with a reason (or lets ``recourse_answer_days``
pass), and the claimant's next claim goes to ``p - 1``. A presentment after the
presentment period (``late``) keeps recourse against the drawer only (pointer at most 0).
``p < 0``: nobody is left (``BILL_NO_PRIOR_PARTY``); the acceptor remains liable and may
still pay the holder, which closes the bill.
"""

from __future__ import annotations

import struct

from tierchain.apps.bills import codes as c
from tierchain.apps.bills.codes import Bill, BillReject, DishonourReason, EventKind, RefusalReason
from tierchain.apps.bills.store import (
    CLEAR_CLAIM,
    CLEAR_PLEDGE,
    S,
    bill_tx,
    enum_value,
    load,
    movable,
    not_closed,
    params,
    payees,
    save,
    today,
)
from tierchain.apps.finance.orgs import member
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

OPS = apps.OpTable()

_REASON = struct.Struct("<B")


def pointer(chain: tuple[c.Transfer, ...], party: bytes, late: bool) -> int:
    """The chain index of ``party``'s nearest prior party (-1: none)."""
    first = next((i for i, t in enumerate(chain) if t.frm == party), len(chain))
    return min(first - 1, 0) if late else first - 1


def next_target(chain: tuple[c.Transfer, ...], at: int, holder: bytes) -> int:
    """The first index <= ``at`` whose transferor is liable to ``holder`` (-1: none)."""
    while at >= 0 and chain[at].restrictive and chain[at].to != holder:
        at -= 1
    return at


def _claimant(bill: Bill, org: bytes) -> None:
    if org == bill.claimant:
        return
    raise OpFailed(BillReject.BILL_PLEDGED if org == bill.holder else BillReject.BILL_NOT_HOLDER)


@OPS.op(c.OP_PRESENT, "bill.present")
def _present(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, _ = load(ctx)
    movable(bill)
    _claimant(bill, org)
    p = params(ctx)
    day = today(ctx, p)
    if day < bill.due_day:
        raise OpFailed(BillReject.BILL_NOT_DUE)
    late = day > bill.due_day + p.presentment_days
    ev = (EventKind.PRESENTED, int(late), org, bill.acceptor, bill.face)
    save(ctx, bid, bill, [ev], b"bill.presented", state=S.PRESENTED, presented_ms=ctx.timestamp_ms, late=late)


def _presented_or_dishonoured(bill: Bill) -> None:
    not_closed(bill)
    if bill.state not in (S.PRESENTED, S.DISHONOURED):
        raise OpFailed(BillReject.BILL_NOT_PRESENTED)


@OPS.op(c.OP_PAY, "bill.pay")
def _pay(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, _ = load(ctx)
    _presented_or_dishonoured(bill)
    if org != bill.acceptor:
        raise OpFailed(BillReject.BILL_NOT_ACCEPTOR)
    rows = [(EventKind.PAID, 0, org, to, amount) for to, amount in payees(bill)]
    save(ctx, bid, bill, rows, b"bill.paid", state=S.PAID, paid_height=ctx.height, **CLEAR_PLEDGE,
         **CLEAR_CLAIM)  # fmt: skip


@OPS.op(c.OP_DISHONOUR, "bill.dishonour")
def _dishonour(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, (reason,) = load(ctx, _REASON)
    enum_value(DishonourReason, reason)
    not_closed(bill)
    if bill.state != S.PRESENTED:
        raise OpFailed(BillReject.BILL_NOT_PRESENTED)
    if bill.acceptor in (bill.claimant, bill.holder):
        # The main debtor holding (or, as pledgee, claiming on) its own bill: a dishonour
        # would turn its own debt into recourse against the parties before it. It pays.
        raise OpFailed(BillReject.BILL_ACCEPTOR_CLAIMS)
    if org == bill.acceptor:
        if reason == DishonourReason.NO_RESPONSE:
            raise OpFailed(Reject.BAD_PAYLOAD, "NO_RESPONSE is the presenter's to declare")
    elif org == bill.claimant and reason == DishonourReason.NO_RESPONSE:
        if ctx.timestamp_ms < bill.presented_ms + params(ctx).answer_days * c.day_ms:
            raise OpFailed(BillReject.BILL_ANSWER_NOT_DUE)
    else:
        raise OpFailed(BillReject.BILL_NOT_ACCEPTOR)
    ev = (EventKind.DISHONOURED, reason, org, bill.claimant, bill.face)
    save(ctx, bid, bill, [ev], b"bill.dishonoured", state=S.DISHONOURED, dishonour_reason=reason,
         recourse_at=pointer(bill.chain, bill.holder, bill.late))  # fmt: skip


def _dishonoured(bill: Bill) -> None:
    not_closed(bill)
    if bill.state != S.DISHONOURED:
        raise OpFailed(BillReject.BILL_NOT_DISHONOURED)


@OPS.op(c.OP_CLAIM, "bill.claim")
def _claim(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, _ = load(ctx)
    _dishonoured(bill)
    _claimant(bill, org)
    events = []
    at = bill.recourse_at
    if bill.claim_ms:
        if ctx.timestamp_ms < bill.claim_ms + params(ctx).recourse_answer_days * c.day_ms:
            raise OpFailed(BillReject.BILL_CLAIM_PENDING)
        events.append((EventKind.CLAIM_LAPSED, at, org, bill.claimed, 0))
        at -= 1
    at = next_target(bill.chain, at, bill.holder)
    if at < 0:
        raise OpFailed(BillReject.BILL_NO_PRIOR_PARTY)
    target = bill.chain[at].frm
    events.append((EventKind.CLAIMED, at, org, target, bill.face))
    save(ctx, bid, bill, events, b"bill.claimed", recourse_at=at, claim_ms=ctx.timestamp_ms, claimed=target)


def _claimed(bill: Bill, org: bytes) -> None:
    _dishonoured(bill)
    if not bill.claim_ms:
        raise OpFailed(BillReject.BILL_NO_CLAIM)
    if org != bill.claimed:
        raise OpFailed(BillReject.BILL_NOT_CLAIMED)


@OPS.op(c.OP_RECOURSE_PAY, "bill.recourse_pay")
def _recourse_pay(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, _ = load(ctx)
    _claimed(bill, org)
    rows = [(EventKind.RECOURSE_PAID, bill.recourse_at, org, to, amount) for to, amount in payees(bill)]
    at = pointer(bill.chain, org, bill.late)
    save(
        ctx, bid, bill, rows, b"bill.recourse_paid", holder=org, recourse_at=at, **CLEAR_PLEDGE, **CLEAR_CLAIM
    )


@OPS.op(c.OP_RECOURSE_REFUSE, "bill.recourse_refuse")
def _recourse_refuse(ctx: TxContext) -> None:
    org, _ = member(ctx)
    bid, bill, (reason,) = load(ctx, _REASON)
    enum_value(RefusalReason, reason)
    _claimed(bill, org)
    ev = (EventKind.RECOURSE_REFUSED, reason, org, bill.claimant, 0)
    save(ctx, bid, bill, [ev], b"bill.recourse_refused", recourse_at=bill.recourse_at - 1, **CLEAR_CLAIM)


# --- client-side builders -----------------------------------------------------------------------


def present(chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int) -> txcodec.Tx:
    return bill_tx(chain_id, c.OP_PRESENT, sender, org, nonce, bill, seq)


def pay(chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int) -> txcodec.Tx:
    return bill_tx(chain_id, c.OP_PAY, sender, org, nonce, bill, seq, events=2)


def dishonour(
    chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int, reason: int
) -> txcodec.Tx:
    body = _REASON.pack(DishonourReason(reason))
    return bill_tx(chain_id, c.OP_DISHONOUR, sender, org, nonce, bill, seq, body)


def claim(chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int) -> txcodec.Tx:
    return bill_tx(chain_id, c.OP_CLAIM, sender, org, nonce, bill, seq, events=2)


def recourse_pay(chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int) -> txcodec.Tx:
    return bill_tx(chain_id, c.OP_RECOURSE_PAY, sender, org, nonce, bill, seq, events=2)


def recourse_refuse(
    chain_id: int, sender: bytes, org: bytes, nonce: int, bill: bytes, seq: int, reason: int
) -> txcodec.Tx:
    body = _REASON.pack(RefusalReason(reason))
    return bill_tx(chain_id, c.OP_RECOURSE_REFUSE, sender, org, nonce, bill, seq, body)
