"""Decoded, JSON-ready views of finance records (``tierchain finance show ...``).

Each view reads one record through a ``state_get`` function (a read-only store
reader, a ``Chain``, or a node's state endpoint), decodes it with its layout in
``codes`` and names every organization it mentions. A view returns ``None`` when
the record does not exist, so callers decide how to report an unknown id.
"""

from __future__ import annotations

from collections.abc import Callable

from tierchain.apps.finance import codes as c
from tierchain.apps.finance.lineage import event_json, namer
from tierchain.engine import apps

StateGet = Callable[[bytes], "bytes | None"]


def role_names(mask: int) -> list[str]:
    """The role names of ``mask`` (roles of the built-in apps, in bit order)."""
    return apps.default_set().role_names(mask)


def org_view(get: StateGet, org_id: bytes) -> dict | None:
    raw = get(c.org_key(org_id))
    if raw is None:
        return None
    org = c.OrgRecord.decode(raw)
    return {
        "id": org_id.hex(),
        "name": org.name.decode("utf-8", "replace"),
        "roles": role_names(org.roles),
        "status": "ACTIVE" if org.status == 1 else f"INACTIVE ({org.status})",
        "keys_active": org.keys_active,
        "admitted_height": org.admitted_height,
    }


def voucher_view(get: StateGet, voucher_id: bytes) -> dict | None:
    raw = get(c.voucher_key(voucher_id))
    if raw is None:
        return None
    v = c.Voucher.decode(raw)
    name = namer(get)
    return {
        "id": voucher_id.hex(),
        "obligor": name(v.obligor),
        "obligor_id": v.obligor.hex(),
        "beneficiary": name(v.beneficiary),
        "beneficiary_id": v.beneficiary.hex(),
        "face": v.face,
        "maturity_ms": v.maturity_ms,
        "confirmed_height": v.confirmed_height,
        "confirmed_ms": v.confirmed_ms,
        "status": c.VoucherStatus(v.status).name,
        "settled": v.settled,
        "settle_batches": v.settle_batches,
        "blinded": v.blinded.hex(),
        "documents": [{"type": c.DocType(t).name, "fingerprint": fp.hex()} for t, fp in v.docs],
    }


def piece_view(get: StateGet, piece_id: bytes) -> dict | None:
    raw = get(c.piece_key(piece_id))
    if raw is None:
        return None
    p = c.Piece.decode(raw)
    name = namer(get)
    offered = p.state in (c.PieceState.OFFERED, c.PieceState.PLEDGED)
    return {
        "id": piece_id.hex(),
        "voucher": p.voucher.hex(),
        "parent": None if p.parent == c.ZERO_ID else p.parent.hex(),
        "depth": p.depth,
        "index": p.index,
        "amount": p.amount,
        "holder": name(p.holder),
        "holder_id": p.holder.hex(),
        "state": c.PieceState(p.state).name,
        "offer_kind": c.OfferKind(p.offer_kind).name if offered and p.offer_kind else None,
        "counterparty": name(p.counterparty) if p.counterparty != c.ZERO_ID else None,
        "price": p.price if offered else None,
        "due_ms": p.due_ms if offered and p.due_ms else None,
        "children": [c.child_id(piece_id, i).hex() for i in range(p.children)],
        "created_height": p.created_height,
        "history": [event_json(e, p.amount, name) for e in p.history],
    }
