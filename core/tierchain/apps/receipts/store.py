"""Loading, checking and saving receipts inside a handler; the shared payload pieces.

``load`` refuses an unknown receipt (``WR_NO_SUCH_RECEIPT``); ``held`` is what a holder's
optional action needs (the sender's organization holds it and it is ACTIVE: not pledged,
not under an offer, not closed, each refused with its own code); ``log`` appends a history
event and refuses an optional action that would leave no room for the events that must
complete it (``WR_HISTORY_FULL``), so a pending offer or a pledge can always be finished.
"""

from __future__ import annotations

import struct

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.orgs import member
from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts.codes import Event, ReceiptReject, State
from tierchain.apps.records import evolve
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject

R = ReceiptReject
ID = struct.Struct("<16s")

# Optional actions start something; what completes them must never be refused for space.
_STARTS = frozenset(
    (Event.TRANSFER_OFFERED, Event.PLEDGE_OFFERED, Event.SPLIT, Event.OUT_ALLOWED, Event.ANCHORED)
)
_COMPLETIONS_MAX = 4  # after an offer: accepted or returned, then released/taken, then closed


def load(ctx: TxContext, rid: bytes) -> c.Receipt:
    raw = ctx.get(c.receipt_key(rid))
    if raw is None:
        raise OpFailed(R.WR_NO_SUCH_RECEIPT)
    return c.Receipt.decode(raw)


def save(ctx: TxContext, rid: bytes, rec: c.Receipt) -> None:
    ctx.put(c.receipt_key(rid), rec.encode())


def movable(rec: c.Receipt) -> None:
    """ACTIVE, or the code that says why not."""
    state = State(rec.state)
    if state == State.PLEDGED:
        raise OpFailed(R.WR_PLEDGED)
    if state in (State.OFFERED, State.PLEDGE_OFFERED):
        raise OpFailed(R.WR_OFFER_PENDING)
    if not state.live:
        raise OpFailed(R.WR_RECEIPT_CLOSED)


def held(ctx: TxContext, rid: bytes) -> tuple[bytes, c.Receipt]:
    """The sender's organization and the receipt it holds, ACTIVE; or a named refusal."""
    oid, _ = member(ctx)
    rec = load(ctx, rid)
    if rec.holder != oid:
        raise OpFailed(R.WR_NOT_HOLDER)
    movable(rec)
    return oid, rec


def log(ctx: TxContext, rec: c.Receipt, kind: Event, org: bytes, amount: int, **changes) -> c.Receipt:
    """``rec`` with one more history event and ``changes``."""
    if kind in _STARTS and len(rec.history) + 1 + _COMPLETIONS_MAX > c.history_max:
        raise OpFailed(R.WR_HISTORY_FULL)
    if len(rec.history) >= c.history_max:  # cannot happen: starts keep room for completions
        raise OpFailed(R.WR_HISTORY_FULL)
    entry = c.HistoryEntry(kind, ctx.height, org, amount)
    return evolve(rec, history=(*rec.history, entry), **changes)


def cleared(rec: c.Receipt, **changes) -> c.Receipt:
    """``rec`` with no offer or pledge: ACTIVE, no counterparty, loan, due time or allowance."""
    return evolve(
        rec, state=State.ACTIVE, counterparty=c.ZERO_ID, loan=0, due_ms=0, offered_balance=0, allowance=0,
        **changes,
    )  # fmt: skip


def receipt_id_of(payload: bytes) -> bytes:
    """A payload that is exactly one receipt id."""
    if len(payload) != c.id_bytes:
        raise OpFailed(Reject.BAD_PAYLOAD, "a receipt id")
    return payload


def pack_labels(item: bytes, unit: bytes, location: bytes) -> bytes:
    return b"".join(bytes((len(x),)) + x for x in (item, unit, location))


def parse_labels(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """Item, unit and location (each a length byte and printable UTF-8), filling ``raw``."""
    out, p = [], 0
    try:
        for bytes_max in (c.item_bytes_max, c.unit_bytes_max, c.location_bytes_max):
            n = raw[p]
            out.append(c.check_label(raw[p + 1 : p + 1 + n], bytes_max))
            p += 1 + n
    except (IndexError, ValueError) as exc:
        raise OpFailed(Reject.BAD_PAYLOAD, "item, unit or location") from exc
    if p != len(raw):
        raise OpFailed(Reject.BAD_PAYLOAD, "trailing bytes")
    return out[0], out[1], out[2]


def anchor_doc(ctx: TxContext, warehouse: bytes, fingerprint: bytes) -> None:
    """``fingerprint`` is a warehouse-receipt document anchored by ``warehouse`` that backs no
    receipt yet (finance's ``NO_SUCH_DOC``, ``WR_ANCHOR_NOT_WAREHOUSE``, ``WR_ANCHOR_USED``)."""
    raw = ctx.get(fc.doc_key(fc.DocType.WAREHOUSE_RECEIPT, fingerprint))
    if raw is None:
        raise OpFailed(fc.FinanceReject.NO_SUCH_DOC)
    if fc.DocRecord.decode(raw).org != warehouse:
        raise OpFailed(R.WR_ANCHOR_NOT_WAREHOUSE)
    if ctx.get(c.anchor_key(warehouse, fingerprint)) is not None:
        raise OpFailed(R.WR_ANCHOR_USED)
