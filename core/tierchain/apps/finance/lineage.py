"""Lineage ("penetration"): from any piece, back to the confirmation and its
documents, and forward to every descendant, holder and financing.

Indexed, not a scan of history: a piece record names its parent and its
children count (child ids are ``codes.child_id(parent, i)``) and carries its
own event history; the voucher record lists its documents and settlement
batches. A lineage query therefore reads one record per piece on the path and
in the subtree, plus the documents and clearing lists — O(size of the answer).
Child ids are hashes of the chain's crypto suite: every function that follows them
takes ``suite`` (the chain's; ``Finance.suite``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from tierchain.apps.finance import camount
from tierchain.apps.finance import codes as c
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.errors import TierChainError

StateGet = Callable[[bytes], "bytes | None"]
descendants_max = 10_000


class LineageError(TierChainError, LookupError):
    """The piece does not exist (or the index is inconsistent)."""


def namer(get: StateGet) -> Callable[[bytes], str]:
    """Organization id -> its name (its hex id if it is not on the ledger), cached."""
    cache: dict[bytes, str] = {}

    def name(oid: bytes) -> str:
        if oid not in cache:
            raw = get(c.org_key(oid))
            cache[oid] = c.OrgRecord.decode(raw).name.decode("utf-8", "replace") if raw else oid.hex()
        return cache[oid]

    return name


def _piece(get: StateGet, pid: bytes) -> c.Piece:
    raw = get(c.piece_key(pid))
    if raw is None:
        raise LineageError(f"no piece {pid.hex()}")
    return c.Piece.decode(raw)


# Events whose stored amount is a price: the discount price, or the loan of a pledge.
_PRICED = {
    c.Event.OFFERED,
    c.Event.DISCOUNTED,
    c.Event.PLEDGED,
    c.Event.RELEASED,
    c.Event.DEFAULT_TRANSFERRED,
}


def event_json(e: c.HistoryEntry, piece_amount: int, name: Callable[[bytes], str]) -> dict:
    """One history event. ``amount`` is always the piece's amount (a piece's amount never
    changes); what the record stores beside it is shown under its own name: ``ways`` for
    a SPLIT (the children count), ``price`` for offers and financings (the discount
    price or the pledge's loan; none for a transfer offer)."""
    kind = c.Event(e.kind)
    out = {"event": kind.name, "height": e.height, "org": name(e.org), "amount": piece_amount or None}
    if kind == c.Event.SPLIT:
        out["ways"] = e.amount
    elif kind in _PRICED:
        out["price"] = e.amount or None
    return out


def piece_json(
    pid: bytes, p: c.Piece, name: Callable[[bytes], str], *, suite: CryptoSuite = ED25519_BLAKE3
) -> dict:
    """One piece as lineage shows it (and ``views.piece_view``, which adds its details)."""
    return {
        "piece": pid.hex(),
        "parent": None if p.parent == c.ZERO_ID else p.parent.hex(),
        "depth": p.depth,
        # A confidential piece's amount is a commitment (fy/<piece>): not shown (None).
        "amount": p.amount or None,
        "confidential": p.amount == 0,
        "holder": name(p.holder),
        "state": c.PieceState(p.state).name,
        "children": [c.child_id(pid, i, suite=suite).hex() for i in range(p.children)],
        "counterparty": name(p.counterparty) if p.counterparty != c.ZERO_ID else None,
        "history": [event_json(e, p.amount, name) for e in p.history],
    }


_FINANCING = {c.Event.DISCOUNTED, c.Event.PLEDGED, c.Event.RELEASED, c.Event.DEFAULT_TRANSFERRED}


def lineage(
    get: StateGet, piece_id: bytes, limit: int = descendants_max, *, suite: CryptoSuite = ED25519_BLAKE3
) -> dict:
    """The lineage of ``piece_id`` as plain data (JSON-ready), on a chain of ``suite``."""
    name = namer(get)
    piece = _piece(get, piece_id)
    ancestors = []
    cur = piece
    while cur.parent != c.ZERO_ID:
        parent = _piece(get, cur.parent)
        ancestors.append(piece_json(cur.parent, parent, name, suite=suite))
        cur = parent
        if len(ancestors) > 64:
            raise LineageError("parent chain longer than any split depth")
    ancestors.reverse()
    raw_v = get(c.voucher_key(piece.voucher))
    if raw_v is None:
        raise LineageError(f"no voucher {piece.voucher.hex()}")
    v = c.Voucher.decode(raw_v)
    docs = []
    for t, fp in v.docs:
        raw = get(c.doc_key(t, fp))
        d = c.DocRecord.decode(raw) if raw else None
        docs.append(
            {
                "type": c.DocType(t).name,
                "fingerprint": fp.hex(),
                "anchored_by": name(d.org) if d else None,
                "signer": d.signer.hex() if d else None,
                "height": d.height if d else None,
                "timestamp_ms": d.timestamp_ms if d else None,
                "tx_id": d.tx_id.hex() if d else None,
            }
        )
    descendants = []
    queue = deque(c.child_id(piece_id, i, suite=suite) for i in range(piece.children))
    while queue:
        if len(descendants) >= limit:
            raise LineageError(f"more than {limit} descendants")
        pid = queue.popleft()
        p = _piece(get, pid)
        descendants.append(piece_json(pid, p, name, suite=suite))
        queue.extend(c.child_id(pid, i, suite=suite) for i in range(p.children))
    this = piece_json(piece_id, piece, name, suite=suite)
    subtree = [this, *descendants]
    clearing = []
    for batch in range(v.settle_batches):
        raw = get(c.clearing_key(piece.voucher, batch))
        if raw is None:
            continue
        if v.face == 0:  # a confidential voucher's: amounts are commitments (shown as None)
            height, _, crows = camount.decode_cclearing(raw)
            rows = [(pid, org, None) for pid, org, _ in crows]
        else:
            height, rows = c.decode_clearing(raw)
        clearing.extend(
            {"batch": batch, "height": height, "piece": pid.hex(), "paid_to": name(org), "amount": amount}
            for pid, org, amount in rows
        )
    return {
        "voucher": {
            "id": piece.voucher.hex(),
            "obligor": name(v.obligor),
            "beneficiary": name(v.beneficiary),
            "face": v.face or None,  # None: a confidential voucher's
            "maturity_ms": v.maturity_ms,
            "confirmed_height": v.confirmed_height,
            "status": c.VoucherStatus(v.status).name,
            "settled": v.settled,
            "documents": docs,
        },
        "ancestors": ancestors,
        "piece": this,
        "descendants": descendants,
        "holders": sorted({d["holder"] for d in subtree if d["state"] != "SPLIT"}),
        "financings": [
            {"piece": d["piece"], **e}
            for d in subtree
            for e in d["history"]
            if c.Event[e["event"]] in _FINANCING
        ],
        "clearing": clearing,
    }


def live_pieces(
    get: StateGet, voucher_id: bytes, limit: int = descendants_max, *, suite: CryptoSuite = ED25519_BLAKE3
) -> list[tuple[bytes, c.Piece]]:
    """Every live (not split, not settled) piece of a voucher, walking the index from the root
    (on a chain of ``suite``)."""
    out = []
    queue = deque([voucher_id])
    seen = 0
    while queue:
        pid = queue.popleft()
        seen += 1
        if seen > limit:
            raise LineageError(f"more than {limit} pieces")
        p = _piece(get, pid)
        if p.state == c.PieceState.SPLIT:
            queue.extend(c.child_id(pid, i, suite=suite) for i in range(p.children))
        elif p.state != c.PieceState.SETTLED:
            out.append((pid, p))
    return out
