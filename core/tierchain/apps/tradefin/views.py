"""Penetration queries: an instrument's whole story as JSON-able dicts, from committed state.

``lc_history`` — an LC's parties, current terms and amounts, every amendment, every
presentation (typed document fingerprints, automatic and examined discrepancies, the
nominated and issuing banks' findings, refusal reasons, acceptance, maturity, payment and
payee, and the forfaiting of the drawing if any) and its signed history in order.
``receivable_chain`` — a receivable's invoice anchor (who anchored it, when, by which tx),
its assignment offers in order (to which factor, with what outcome), the notice
acknowledgement, payments, default and recourse. ``guarantee_view`` and ``forfait_view``
likewise. Values are plain JSON types: ids and fingerprints as hex, enums by name,
amounts in minor units, times in block milliseconds.

Each takes ``get`` (a state point read) and nothing else: it runs against a chain, a node
(``RemoteLedger.state_get``) or a test's state dict.
"""

from __future__ import annotations

from collections.abc import Callable

from tierchain.apps.finance import codes as fc
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.records import (
    NO_REF,
    ZERO_FP,
    Amendment,
    Entry,
    Forfait,
    Guarantee,
    Lc,
    Presentation,
    Receivable,
)

Get = Callable[[bytes], "bytes | None"]


def names(mask: int, kind: type) -> list[str]:
    """The names of the bits of ``mask`` (a discrepancy or rejection mask)."""
    return [m.name for m in kind if mask >> m.value & 1]


def _enum(kind: type, value: int) -> str:
    return kind(value).name if value in kind._value2member_map_ else str(value)


def _org(get: Get, org: bytes) -> dict:
    raw = get(fc.org_key(org))
    name = fc.OrgRecord.decode(raw).name.decode(errors="replace") if raw else ""
    return {"id": org.hex(), "name": name}


def history(get: Get, entries: tuple[Entry, ...]) -> list[dict]:
    """A record's history entries, oldest first."""
    return [
        {
            "event": _enum(c.Event, e.kind),
            "height": e.height,
            "timestamp_ms": e.timestamp_ms,
            "org": _org(get, e.org),
            "ref": None if e.ref == NO_REF else e.ref,
            "amount": e.amount,
            "fingerprint": None if e.fp == ZERO_FP else e.fp.hex(),
        }
        for e in entries
    ]


def lc_history(get: Get, lc_id: bytes) -> dict | None:
    """An LC's whole history (None if there is no such LC)."""
    raw = get(c.lc_key(lc_id))
    if raw is None:
        return None
    lc = Lc.decode(raw)
    amendments = []
    for n in range(lc.amendments):
        a = Amendment.decode(get(c.amendment_key(lc_id, n)) or b"")
        amendments.append(
            {
                "index": n,
                "status": _enum(c.AmendmentStatus, a.status),
                "amount": a.amount,
                "expiry_ms": a.expiry_ms,
                "latest_shipment_ms": a.latest_shipment_ms,
                "fingerprint": a.fp.hex(),
                "proposed_height": a.proposed_height,
                "proposed_ms": a.proposed_ms,
                "replied_height": a.replied_height or None,
            }
        )
    presentations = [_presentation(get, lc_id, n) for n in range(lc.presentations)]
    return {
        "lc": lc_id.hex(),
        "status": _enum(c.LcStatus, lc.status),
        "applicant": _org(get, lc.applicant),
        "issuing_bank": _org(get, lc.issuer),
        "advising_bank": _org(get, lc.advising),
        "beneficiary": _org(get, lc.beneficiary),
        "terms": {
            "amount": lc.amount,
            "tolerance_bps": lc.tolerance_bps,
            "expiry_ms": lc.expiry_ms,
            "latest_shipment_ms": lc.latest_shipment_ms,
            "presentation_days": lc.presentation_days,
            "tenor": "sight" if lc.usance_days == 0 else f"usance {lc.usance_days} days",
            "usance_days": lc.usance_days,
            "presentations_max": lc.presentations_max,
            "partial_drawings": bool(lc.partial),
            "required_documents": names(lc.required_docs, c.DocType),
        },
        "amounts": {
            "max_amount": lc.max_amount,
            "drawn": lc.drawn,
            "reserved": lc.reserved,
            "paid": lc.paid,
            "available": lc.available,
        },
        "applied_ms": lc.applied_ms,
        "issued_ms": lc.issued_ms or None,
        "pending_amendment": lc.pending - 1 if lc.pending else None,
        "amendments": amendments,
        "presentations": presentations,
        "history": history(get, lc.history),
    }


def _presentation(get: Get, lc_id: bytes, n: int) -> dict:
    p = Presentation.decode(get(c.presentation_key(lc_id, n)) or b"")
    fid = c.drawing_forfait_id(lc_id, n)
    return {
        "index": n,
        "status": _enum(c.PresentationStatus, p.status),
        "amount": p.amount,
        "shipment_ms": p.shipment_ms,
        "presented_height": p.presented_height,
        "presented_ms": p.presented_ms,
        "documents": [{"type": _enum(c.DocType, t), "fingerprint": fp.hex()} for t, fp in p.docs],
        "automatic_discrepancies": names(p.automatic, c.Discrepancy),
        "nominated_finding": _enum(c.Finding, p.nominated_finding),
        "nominated_discrepancies": names(p.nominated_discrepancies, c.Discrepancy),
        "finding": _enum(c.Finding, p.finding),
        "discrepancies": names(p.discrepancies, c.Discrepancy),
        "refusal_reasons": names(p.reasons, c.Discrepancy),
        "accepted_ms": p.accepted_ms or None,
        "maturity_ms": p.maturity_ms or None,
        "paid_ms": p.paid_ms or None,
        "payee": _org(get, p.payee) if p.payee != fc.ZERO_ID else None,
        "forfait": forfait_view(get, fid),
    }


def guarantee_view(get: Get, gid: bytes) -> dict | None:
    raw = get(c.guarantee_key(gid))
    if raw is None:
        return None
    g = Guarantee.decode(raw)
    return {
        "guarantee": gid.hex(),
        "kind": _enum(c.GuaranteeKind, g.kind),
        "status": _enum(c.GuaranteeStatus, g.status),
        "guarantor": _org(get, g.guarantor),
        "applicant": _org(get, g.applicant),
        "beneficiary": _org(get, g.beneficiary),
        "amount": g.amount,
        "paid": g.paid,
        "remaining": g.remaining,
        "expiry_ms": g.expiry_ms,
        "issued_ms": g.issued_ms,
        "claims": g.claims,
        "open_claim": (
            {"amount": g.claim_amount, "claimed_ms": g.claim_ms, "demand": g.claim_fp.hex()}
            if g.status == c.GuaranteeStatus.CLAIMED
            else None
        ),
        "history": history(get, g.history),
    }


def receivable_chain(get: Get, invoice_fp: bytes) -> dict | None:
    """A receivable's assignment chain: the invoice anchor, each offer and its outcome, the
    notice, payments, default and recourse (None if the invoice was never offered)."""
    raw = get(c.receivable_key(invoice_fp))
    if raw is None:
        return None
    r = Receivable.decode(raw)
    doc_raw = get(fc.doc_key(fc.DocType.INVOICE, invoice_fp))
    anchor = None
    if doc_raw is not None:
        d = fc.DocRecord.decode(doc_raw)
        anchor = {
            "anchored_by": _org(get, d.org),
            "signer": d.signer.hex(),
            "height": d.height,
            "timestamp_ms": d.timestamp_ms,
            "tx_id": d.tx_id.hex(),
            "voucher": None if d.voucher in (fc.ZERO_ID, c.FACTORED) else d.voucher.hex(),
            "factored": d.voucher == c.FACTORED,  # taken by a factor: it backs no voucher
        }
    offers: list[dict] = []
    for e in r.history:
        if e.kind == c.Event.F_OFFERED:
            offers.append(
                {
                    "factor": _org(get, e.org),
                    "offered_height": e.height,
                    "amount": e.amount,
                    "outcome": "OPEN",
                }
            )
        elif e.kind in (c.Event.F_DECLINED, c.Event.F_ASSIGNED) and offers:
            offers[-1]["outcome"] = "ASSIGNED" if e.kind == c.Event.F_ASSIGNED else "DECLINED"
            offers[-1]["decided_height"] = e.height
            offers[-1]["decided_by"] = _org(get, e.org)
    return {
        "invoice": invoice_fp.hex(),
        "anchor": anchor,
        "status": _enum(c.ReceivableStatus, r.status),
        "seller": _org(get, r.seller),
        "debtor": _org(get, r.debtor),
        "factor": _org(get, r.factor),
        "amount": r.amount,
        "due_ms": r.due_ms,
        "advance": r.advance,
        "with_recourse": bool(r.recourse),
        "notice_acknowledged": bool(r.acknowledged),
        "paid": r.paid,
        "outstanding": r.outstanding,
        "recourse_paid": r.recourse_paid,
        "assignments": offers,
        "history": history(get, r.history),
    }


def forfait_view(get: Get, fid: bytes) -> dict | None:
    raw = get(c.forfait_key(fid))
    if raw is None:
        return None
    w = Forfait.decode(raw)
    if w.kind == c.ForfaitKind.LC_DRAWING:
        lc_id, n = w.lc_ref
        instrument = {"lc": lc_id.hex(), "presentation": n}
    else:
        instrument = {"bill": w.ref.hex()}
    return {
        "forfait": fid.hex(),
        "kind": _enum(c.ForfaitKind, w.kind),
        "instrument": instrument,
        "status": _enum(c.ForfaitStatus, w.status),
        "seller": _org(get, w.seller),
        "forfaiter": _org(get, w.forfaiter),
        "obligor": _org(get, w.obligor),
        "face": w.face,
        "price": w.price,
        "maturity_ms": w.maturity_ms,
        "history": history(get, w.history),
    }
