"""What every bill op shares: the payload head, loading a bill, its history, its key set.

Every op on an existing bill carries ``bill id 16 + seq u16`` first: ``seq`` is the bill's
event count when the sender built the tx (``Bill.events``). A tx built for another state of
the bill — an accept signed for an offer that was since cancelled and made again, a second
tx racing the first in one block — is refused with ``BILL_STALE`` and changes nothing. The
same number names the history key(s) the op writes (``bn/<bill><seq>``, and ``seq + 1``
for the ops that may write two events), so the declared keys are always the right ones.

Role sets: ``ENTERPRISE`` (core enterprise or supplier) draws, is payee, endorses, endorsee,
discounts; ``BANK`` accepts bank acceptance bills, takes discounts, rediscounts and pledges.
"""

from __future__ import annotations

import struct

from tierchain.apps.bills import codes as c
from tierchain.apps.bills import days
from tierchain.apps.bills.codes import Bill, BillReject, BillState, OfferKind
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.orgs import make_tx, member_reads, role_bits
from tierchain.apps.records import evolve
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

ENTERPRISE = role_bits("core_enterprise", "supplier")
BANK = role_bits("bank")
HEAD = struct.Struct("<16sH")  # bill id, seq (the bill's event count)

S = BillState


def params(ctx: TxContext) -> c.Params:
    return c.Params.decode(ctx.get(c.PARAMS_KEY))


def today(ctx: TxContext, p: c.Params) -> int:
    return days.local_day(ctx.timestamp_ms, p.tz_offset_min)


def need_role(rec: fc.OrgRecord, roles: int) -> None:
    """The sender's organization must (still) hold one of ``roles``: finance's ROLE_MISSING."""
    if not rec.roles & roles:
        raise OpFailed(FinanceReject.ROLE_MISSING)


def load(ctx: TxContext, body: struct.Struct | None = None) -> tuple[bytes, Bill, tuple]:
    """The payload's bill (``BILL_NO_SUCH_BILL``) at the seq it names (``BILL_STALE``) and
    the rest of the payload unpacked by ``body`` (exact size, else ``BAD_PAYLOAD``)."""
    size = HEAD.size + (body.size if body else 0)
    if len(ctx.payload) != size:
        raise OpFailed(Reject.BAD_PAYLOAD, f"payload of {len(ctx.payload)} bytes, not {size}")
    bid, seq = HEAD.unpack_from(ctx.payload)
    raw = ctx.get(c.bill_key(bid))
    if raw is None:
        raise OpFailed(BillReject.BILL_NO_SUCH_BILL)
    bill = Bill.decode(raw)
    if bill.events != seq:
        raise OpFailed(BillReject.BILL_STALE)
    return bid, bill, body.unpack_from(ctx.payload, HEAD.size) if body else ()


def enum_value(cls: type, value: int) -> int:
    if value not in cls._value2member_map_:
        raise OpFailed(Reject.BAD_PAYLOAD, f"{cls.__name__} {value}")
    return value


def not_closed(bill: Bill) -> None:
    if bill.state in c.CLOSED:
        raise OpFailed(BillReject.BILL_CLOSED)


def movable(bill: Bill) -> None:
    """An ACTIVE, unpledged bill: what an offer or a presentment starts from."""
    not_closed(bill)
    if bill.state == S.DRAWN or (bill.state == S.OFFERED and bill.offer_kind == OfferKind.DELIVERY):
        raise OpFailed(BillReject.BILL_AWAITING_ACCEPTANCE)
    if bill.state == S.OFFERED:
        raise OpFailed(BillReject.BILL_PENDING)
    if bill.state in (S.PRESENTED, S.DISHONOURED):
        raise OpFailed(BillReject.BILL_PRESENTED)


def not_matured(ctx: TxContext, bill: Bill) -> None:
    """Nothing is accepted, offered or signed after the maturity day."""
    if today(ctx, params(ctx)) > bill.maturity_day:
        raise OpFailed(BillReject.BILL_MATURED)


def payees(bill: Bill) -> list[tuple[bytes, int]]:
    """Who a payment of the face goes to: a pledged bill's pledgee up to its loan, then the
    holder the rest; else the holder. The amounts sum to the face exactly."""
    if not bill.pledged:
        return [(bill.holder, bill.face)]
    first = min(bill.loan, bill.face)
    return [(bill.pledgee, first)] + ([(bill.holder, bill.face - first)] if first < bill.face else [])


def save(
    ctx: TxContext,
    bid: bytes,
    bill: Bill,
    events: list[tuple[int, int, bytes, bytes, int]],
    topic: bytes,
    **changes,
) -> Bill:
    """Write the bill with ``changes`` and append ``events`` (kind, aux, actor, party,
    amount) to its history; one receipt event ``topic`` = bill id + the new state."""
    seq = bill.events
    for i, (kind, aux, actor, party, amount) in enumerate(events):
        ev = c.Event(kind, aux, ctx.height, ctx.timestamp_ms, actor, party, amount, ctx.tx_id)
        ctx.put(c.event_key(bid, seq + i), ev.encode())
    new = evolve(bill, events=seq + len(events), **changes)
    ctx.put(c.bill_key(bid), new.encode())
    ctx.emit(topic, bid + bytes((new.state,)))
    return new


CLEAR_OFFER = dict(offer_kind=0, offeree=fc.ZERO_ID, price=0, restrictive=False)
CLEAR_PLEDGE = dict(pledgee=fc.ZERO_ID, loan=0)
CLEAR_CLAIM = dict(claim_ms=0, claimed=fc.ZERO_ID)


# --- client side -------------------------------------------------------------------------------


def bill_tx(
    chain_id: int,
    op: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    bill: bytes,
    seq: int,
    body: bytes = b"",
    *,
    reads: tuple[bytes, ...] = (),
    events: int = 1,
) -> txcodec.Tx:
    """A tx on bill ``bill`` at event count ``seq``: it reads the sender's key and
    organization, ``bq/params`` and ``reads``; it writes the bill and ``events`` history keys."""
    if len(bill) != c.id_bytes or not 0 <= seq < 1 << 16:
        raise ValueError("a 16-byte bill id and a seq in 0..65535")
    writes = {c.bill_key(bill), *(c.event_key(bill, seq + i) for i in range(events) if seq + i < 1 << 16)}
    all_reads = member_reads(sender, org) | {c.PARAMS_KEY, *reads}
    return make_tx(chain_id, op, sender, nonce, all_reads, writes, HEAD.pack(bill, seq) + body)
