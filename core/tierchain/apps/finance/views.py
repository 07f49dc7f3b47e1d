"""Decoded, JSON-ready views of finance records (``tierchain finance show ...``).

Each view reads one record through a ``state_get`` function (a read-only store
reader, a ``Chain``, or a node's state endpoint), decodes it with its layout in
``codes`` and names every organization it mentions. A view returns ``None`` when
the record does not exist, so callers decide how to report an unknown id.
"""

from __future__ import annotations

from collections.abc import Callable

from tierchain.apps.finance import codes as c
from tierchain.apps.finance.lineage import namer, piece_json
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps

StateGet = Callable[[bytes], "bytes | None"]


def org_view(get: StateGet, org_id: bytes, app_set: apps.AppSet | None = None) -> dict | None:
    """Roles are named by ``app_set``'s role registry (the chain's; default: the built-in apps')."""
    raw = get(c.org_key(org_id))
    if raw is None:
        return None
    org = c.OrgRecord.decode(raw)
    return {
        "id": org_id.hex(),
        "name": org.name.decode("utf-8", "replace"),
        "roles": (app_set or apps.default_set()).role_names(org.roles),
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


def piece_view(get: StateGet, piece_id: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> dict | None:
    """``suite``: the chain's (the children's ids are its hashes)."""
    raw = get(c.piece_key(piece_id))
    if raw is None:
        return None
    p = c.Piece.decode(raw)
    offered = p.state in (c.PieceState.OFFERED, c.PieceState.PLEDGED)
    # The piece as lineage shows it, then the details.
    shown = piece_json(piece_id, p, namer(get), suite=suite)
    return {
        "id": shown.pop("piece"),
        **shown,
        "voucher": p.voucher.hex(),
        "index": p.index,
        "holder_id": p.holder.hex(),
        "offer_kind": c.OfferKind(p.offer_kind).name if offered and p.offer_kind else None,
        "price": p.price if offered else None,
        "due_ms": p.due_ms if offered and p.due_ms else None,
        "created_height": p.created_height,
    }
