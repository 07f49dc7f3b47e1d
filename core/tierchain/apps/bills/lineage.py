"""A bill's lineage / penetration view as JSON: the whole chain and history of one bill.

``lineage(ledger, bill)`` reads the bill record and its history (``bn/<bill>``, one prefix
scan, in order) — O(history), no scan of other bills — and answers a dict that
``json.dumps`` takes as it is:

* the bill: kind, drawer, acceptor, payee (ids and names), face, issue height and time,
  maturity and due dates, the not-transferable mark, state (``PLEDGED`` is shown as
  ``pledge``), holder, pending offer, presentment, dishonour, recourse position;
* ``endorsements``: the chain in order (index, kind, from, to, height, time, price,
  restrictive);
* ``holders``: who held it when (from height, until height or null, how it came);
* ``financing``: discounts, rediscounts, pledges and releases;
* ``payments``: payment and recourse rows (to whom, how much, by whom);
* ``history``: every event, with its tx id (the signed evidence: ``Chain.tx``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tierchain.apps.bills import codes as c
from tierchain.apps.bills.codes import (
    Bill,
    BillKind,
    BillState,
    DishonourReason,
    EventKind,
    OfferKind,
    RefusalReason,
)
from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing.ledger import scan_all

_REASON_KINDS = {EventKind.ACCEPTANCE_REFUSED, EventKind.RECOURSE_REFUSED}
_KIND_AUX = {EventKind.OFFERED, EventKind.SIGNED, EventKind.REJECTED, EventKind.CANCELLED}


def date(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


class Names:
    """Organization names by id, read once each."""

    def __init__(self, get) -> None:
        self.get, self.cache = get, {}

    def __call__(self, org: bytes) -> str:
        if org not in self.cache:
            raw = self.get(fc.org_key(org))
            self.cache[org] = fc.OrgRecord.decode(raw).name.decode(errors="replace") if raw else ""
        return self.cache[org]

    def ref(self, org: bytes) -> dict | None:
        return None if org == fc.ZERO_ID else {"id": org.hex(), "name": self(org)}


def events(ledger: Any, bill: bytes) -> list[c.Event]:
    """The bill's history, in order."""
    return [c.Event.decode(v) for _, v in scan_all(ledger, b"bn/" + bill)]


def event_json(ev: c.Event, names: Names) -> dict:
    kind = EventKind(ev.kind)
    out = {
        "event": kind.name,
        "height": ev.height,
        "time": iso(ev.timestamp_ms),
        "actor": names.ref(ev.actor),
        "party": names.ref(ev.party),
        "amount": ev.amount,
        "tx_id": ev.tx_id.hex(),
    }
    if kind in _KIND_AUX:
        out["offer_kind"] = OfferKind(ev.aux).name
    elif kind in _REASON_KINDS:
        out["reason"] = RefusalReason(ev.aux).name
    elif kind == EventKind.DISHONOURED:
        out["reason"] = DishonourReason(ev.aux).name
    elif kind == EventKind.PRESENTED:
        out["late"] = bool(ev.aux)
    elif kind in (EventKind.CLAIMED, EventKind.CLAIM_LAPSED, EventKind.RECOURSE_PAID):
        out["chain_index"] = ev.aux
    return out


def bill_json(bid: bytes, b: Bill, names: Names) -> dict:
    return {
        "bill": bid.hex(),
        "kind": BillKind(b.kind).name,
        "drawer": names.ref(b.drawer),
        "acceptor": names.ref(b.acceptor),
        "payee": names.ref(b.payee),
        "face": b.face,
        "issue_height": b.issue_height,
        "issued": iso(b.issue_ms),
        "maturity": date(b.maturity_day),
        "due": date(b.due_day),
        "not_transferable": b.not_transferable,
        "state": BillState(b.state).name,
        "holder": names.ref(b.holder),
        "offer": None
        if b.state != BillState.OFFERED
        else {
            "kind": OfferKind(b.offer_kind).name,
            "to": names.ref(b.offeree),
            "price": b.price,
            "restrictive": b.restrictive,
        },
        "pledge": {"pledgee": names.ref(b.pledgee), "loan": b.loan} if b.pledged else None,
        "presented": iso(b.presented_ms) if b.presented_ms else None,
        "late": b.late,
        "dishonour_reason": DishonourReason(b.dishonour_reason).name if b.dishonour_reason else None,
        "recourse": None
        if b.state != BillState.DISHONOURED
        else {
            "next_index": b.recourse_at,
            "claimed": names.ref(b.claimed),
            "claimed_at": iso(b.claim_ms) if b.claim_ms else None,
        },
        "paid_height": b.paid_height or None,
        "documents": [{"type": fc.DocType(t).name, "fingerprint": fp.hex()} for t, fp in b.docs],
        "events": b.events,
    }


def lineage(ledger: Any, bid: bytes) -> dict | None:
    """The bill's full lineage (see the module docstring), or None for an unknown bill."""
    raw = ledger.state_get(c.bill_key(bid))
    if raw is None:
        return None
    b = Bill.decode(raw)
    names = Names(ledger.state_get)
    history = events(ledger, bid)
    out = bill_json(bid, b, names)
    out["endorsements"] = [
        {
            "index": i,
            "kind": OfferKind(t.kind).name,
            "from": names.ref(t.frm),
            "to": names.ref(t.to),
            "height": t.height,
            "time": iso(t.timestamp_ms),
            "price": t.price,
            "restrictive": t.restrictive,
        }
        for i, t in enumerate(b.chain)
    ]
    holders: list[dict] = []

    def hold(org: bytes, ev: c.Event, how: str) -> None:
        if holders:
            holders[-1]["until_height"] = ev.height
        holders.append({"holder": names.ref(org), "from_height": ev.height, "until_height": None, "how": how})

    financing, payments = [], []
    for ev in history:
        kind = EventKind(ev.kind)
        if kind == EventKind.ISSUED:
            hold(ev.actor, ev, "DRAWN")
        elif kind == EventKind.SIGNED and ev.aux != OfferKind.PLEDGE:
            hold(ev.actor, ev, OfferKind(ev.aux).name)
        elif kind == EventKind.RECOURSE_PAID and (
            not holders or holders[-1]["holder"]["id"] != ev.actor.hex()
        ):
            hold(ev.actor, ev, "RECOURSE")
        elif kind in (EventKind.PAID, EventKind.REVOKED, EventKind.ACCEPTANCE_REFUSED) or (
            kind == EventKind.REJECTED and ev.aux == OfferKind.DELIVERY
        ):
            if holders and holders[-1]["until_height"] is None:
                holders[-1]["until_height"] = ev.height
        if kind == EventKind.SIGNED and ev.aux in (
            OfferKind.DISCOUNT,
            OfferKind.REDISCOUNT,
            OfferKind.PLEDGE,
        ):
            financing.append({**event_json(ev, names), "kind": OfferKind(ev.aux).name})
        elif kind == EventKind.RELEASED:
            financing.append({**event_json(ev, names), "kind": "RELEASE"})
        if kind in (EventKind.PAID, EventKind.RECOURSE_PAID):
            payments.append(
                {
                    "kind": "PAYMENT" if kind == EventKind.PAID else "RECOURSE",
                    "by": names.ref(ev.actor),
                    "to": names.ref(ev.party),
                    "amount": ev.amount,
                    "height": ev.height,
                    "tx_id": ev.tx_id.hex(),
                }
            )
    out["holders"] = holders
    out["financing"] = financing
    out["payments"] = payments
    out["history"] = [event_json(ev, names) for ev in history]
    return out
