"""Decoded, JSON-ready views of finance records (``tierchain finance show ...``).

Each view reads one record through a ``state_get`` function (a read-only store
reader, a ``Chain``, or a node's state endpoint), decodes it with its layout in
``codes`` and names every organization it mentions. A view returns ``None`` when
the record does not exist, so callers decide how to report an unknown id.

``ORGS_ENDPOINT`` is the node endpoint ``finance.orgs`` (``POST /v1/app/finance.orgs``, the
API's ``CallApp``; the web explorer's organizations page): every organization, a page at a
time, with its roles, status and active keys (``orgs_page``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tierchain.apps.finance import codes as c
from tierchain.apps.finance.lineage import namer, piece_json
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps

StateGet = Callable[[bytes], "bytes | None"]
orgs_page_max = 100  # organizations one finance.orgs call answers
keys_scan_max = 10_000  # key records (fk/) one finance.orgs call reads to list the active keys
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def org_view(get: StateGet, org_id: bytes, app_set: apps.AppSet | None = None) -> dict | None:
    """Roles are named by ``app_set``'s role registry (the chain's; default: the built-in apps')."""
    raw = get(c.org_key(org_id))
    if raw is None:
        return None
    return org_json(org_id, c.OrgRecord.decode(raw), app_set)


def org_json(org_id: bytes, org: c.OrgRecord, app_set: apps.AppSet | None = None) -> dict:
    """One organization record as ``org_view`` shows it."""
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


def orgs_page(chain: Any, after: bytes = b"", limit: int = orgs_page_max) -> dict:
    """Up to ``limit`` organizations in id order after ``after``, each as ``org_json`` shows it
    plus ``keys``: the hex public keys of its active keys (``fk/`` records of status ACTIVE).

    ``chain`` has ``state_scan`` and ``apps`` (a ``Chain``). Bounded work: one scan of at most
    ``limit`` organization records, and at most ``keys_scan_max`` key records (there is no
    index from an organization to its keys); ``keys_complete`` is false when the key table is
    larger, and then ``keys`` may miss some. ``next`` is the id to pass as ``after`` for the
    next page (null on the last one)."""
    start = c.org_key(after) if after else b""
    rows = chain.state_scan(b"fo/", limit, start)
    page = {k[len(b"fo/") :]: c.OrgRecord.decode(v) for k, v in rows}
    keys: dict[bytes, list[str]] = {oid: [] for oid in page}
    scanned = chain.state_scan(b"fk/", keys_scan_max) if page else []
    complete = len(scanned) < keys_scan_max or not chain.state_scan(b"fk/", 1, scanned[-1][0])
    for k, v in scanned:
        rec = c.KeyRecord.decode(v)
        if rec.status == c.KeyStatus.ACTIVE and rec.org in keys:
            keys[rec.org].append(k[len(b"fk/") :].hex())
    return {
        "orgs": [{**org_json(oid, org, chain.apps), "keys": keys[oid]} for oid, org in page.items()],
        "next": rows[-1][0][len(b"fo/") :].hex() if len(rows) == limit else None,
        "keys_complete": complete,
    }


def _orgs_args(body: dict) -> tuple[bytes, int]:
    """``{"after": hex org id, "limit": 1..orgs_page_max}``, both optional."""
    unknown = set(body) - {"after", "limit"}
    if unknown:
        raise apps.EndpointError("BAD_ARGUMENT", f"unknown field {sorted(unknown)[0][:40]!r} (after, limit)")
    after = body.get("after") or ""
    if not isinstance(after, str) or (after and (len(after) != 2 * c.id_bytes or not _HEX.fullmatch(after))):
        raise apps.EndpointError("BAD_ARGUMENT", f"after is an organization id: {c.id_bytes} bytes as hex")
    limit = body.get("limit", orgs_page_max)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= orgs_page_max:
        raise apps.EndpointError("BAD_ARGUMENT", f"limit is an integer in 1..{orgs_page_max}")
    return bytes.fromhex(after), limit


def _orgs_endpoint(chain: Any) -> Callable[[dict], Any]:
    def handler(body: dict) -> Any:
        return orgs_page(chain, *_orgs_args(body))

    return handler


ORGS_ENDPOINT = apps.Endpoint("finance.orgs", _orgs_endpoint)
