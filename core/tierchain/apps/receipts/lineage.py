"""Receipt lineage ("penetration") and stock queries over committed state, as JSON.

From any receipt: back through its parents to the issued receipt and its anchored
document, forward to every part split from it, each with its history (issue, offers,
transfers, pledges, releases, splits, closing) and its goods movements (``wr/<tag>g``, applied
or anomalies). Parent pointers and children counts index the tree (part ids are
``codes.child_id(parent, i)``); a receipt's movements are one prefix scan
(``codes.moves_prefix``). So a query reads O(size of the answer).

``scan(prefix)`` is a ledger's full prefix scan (``sharing.ledger.scan_all`` over a ledger;
a dict filter in tests); ``get`` a point read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.lineage import namer
from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts.codes import Event, MoveKind, Outcome, State
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.errors import TierChainError

StateGet = Callable[[bytes], "bytes | None"]
Scan = Callable[[bytes], "list[tuple[bytes, bytes]]"]
descendants_max = 10_000

_TRANSFERS = {Event.TRANSFER_OFFERED, Event.TRANSFERRED, Event.RETURNED, Event.DEFAULT_TAKEN}
_PLEDGES = {Event.PLEDGE_OFFERED, Event.PLEDGED, Event.RELEASED, Event.OUT_ALLOWED, Event.DEFAULT_TAKEN}
_LOAN_EVENTS = {Event.PLEDGE_OFFERED, Event.PLEDGED, Event.RELEASED}


class LineageError(TierChainError, LookupError):
    """No such receipt (or an inconsistent index)."""


def receipt(get: StateGet, rid: bytes) -> c.Receipt:
    raw = get(c.receipt_key(rid))
    if raw is None:
        raise LineageError(f"no receipt {rid.hex()}")
    return c.Receipt.decode(raw)


def movements(scan: Scan, rid: bytes) -> list[tuple[bytes, int, c.Movement]]:
    """A receipt's movements: (feed, sequence number, record), in the order the chain took them."""
    out = []
    p = len(c.moves_prefix(rid))
    for key, raw in scan(c.moves_prefix(rid)):
        feed, seq = key[p : p + c.feed_id_bytes], int.from_bytes(key[-8:], "big")
        out.append((feed, seq, c.Movement.decode(raw)))
    out.sort(key=lambda m: (m[2].height, m[0], m[1]))
    return out


def event_json(e: c.HistoryEntry, name: Callable[[bytes], str]) -> dict:
    kind = Event(e.kind)
    out: dict = {"event": kind.name, "height": e.height, "org": name(e.org)}
    if kind == Event.SPLIT:
        out["parts"] = e.amount
    elif kind in _LOAN_EVENTS:
        out["loan"] = e.amount
    elif kind == Event.OUT_ALLOWED:
        out["quantity"] = e.amount
    elif kind != Event.ANCHORED:
        out["balance"] = e.amount
    return out


def movement_json(feed: bytes, seq: int, m: c.Movement) -> dict:
    return {
        "feed": feed.hex(),
        "seq": seq,
        "kind": MoveKind(m.kind).name,
        "quantity": m.quantity,
        "outcome": Outcome(m.outcome).name,
        "anomaly": m.outcome != Outcome.APPLIED,
        "balance_after": m.balance_after,
        "height": m.height,
        "timestamp_ms": m.timestamp_ms,
        "tx_id": m.tx_id.hex(),
    }


def receipt_json(
    get: StateGet,
    scan: Scan,
    rid: bytes,
    rec: c.Receipt,
    name: Callable[[bytes], str],
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> dict:
    """One receipt, decoded: what it is, where it stands, its history and its movements."""
    state = State(rec.state)
    out = {
        "receipt": rid.hex(),
        "warehouse": name(rec.warehouse),
        "holder": name(rec.holder),
        "state": state.name,
        "item": rec.item.decode(),
        "unit": rec.unit.decode(),
        "location": rec.location.decode(),
        "issued": rec.issued,
        "balance": rec.balance,
        "goods_in": rec.goods_in,
        "goods_out": rec.goods_out,
        "anomalies": rec.anomalies,
        "parent": rec.parent.hex() if rec.parent != c.ZERO_ID else None,
        "root": rec.root.hex(),
        "depth": rec.depth,
        "children": [c.child_id(rid, i, suite=suite).hex() for i in range(rec.children)],
        "anchor": rec.anchor.hex() if rec.anchor != c.ZERO_FP else None,
        "created_height": rec.created_height,
        "created_ms": rec.created_ms,
        "closed_height": rec.closed_height or None,
        "pledge": None,
        "offer": None,
        "history": [event_json(e, name) for e in rec.history],
        "movements": [movement_json(*m) for m in movements(scan, rid)],
    }
    if state == State.PLEDGED:
        pledgee = name(rec.counterparty)
        out["pledge"] = {
            "pledgee": pledgee,
            "loan": rec.loan,
            "due_ms": rec.due_ms,
            "allowance": rec.allowance,
        }
    elif state in (State.OFFERED, State.PLEDGE_OFFERED):
        out["offer"] = {
            "kind": "PLEDGE" if state == State.PLEDGE_OFFERED else "TRANSFER",
            "to": name(rec.counterparty),
            "balance": rec.offered_balance,
            **({"loan": rec.loan, "due_ms": rec.due_ms} if state == State.PLEDGE_OFFERED else {}),
        }
    return out


def _anchor_json(get: StateGet, fp: bytes, name: Callable[[bytes], str]) -> dict | None:
    if fp == c.ZERO_FP:
        return None
    raw = get(fc.doc_key(fc.DocType.WAREHOUSE_RECEIPT, fp))
    if raw is None:
        return {"fingerprint": fp.hex()}
    doc = fc.DocRecord.decode(raw)
    return {
        "fingerprint": fp.hex(), "org": name(doc.org), "signer": doc.signer.hex(),
        "height": doc.height, "timestamp_ms": doc.timestamp_ms, "tx_id": doc.tx_id.hex(),
    }  # fmt: skip


def lineage(get: StateGet, scan: Scan, rid: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> dict:
    """The receipt, its ancestors (root first) and every descendant (breadth first), each as
    ``receipt_json``; the root's anchored document; and, across all of them in height order,
    the transfer and pledge events (``transfers``, ``pledges``) and the anomalies."""
    name = namer(get)
    rec = receipt(get, rid)
    ancestors: list[tuple[bytes, c.Receipt]] = []
    cur = rec
    while cur.parent != c.ZERO_ID:
        if len(ancestors) > c.depth_max:
            raise LineageError("a parent chain longer than depth_max")
        ancestors.append((cur.parent, receipt(get, cur.parent)))
        cur = ancestors[-1][1]
    ancestors.reverse()
    descendants: list[tuple[bytes, c.Receipt]] = []
    queue = deque(c.child_id(rid, i, suite=suite) for i in range(rec.children))
    while queue:
        if len(descendants) >= descendants_max:
            raise LineageError(f"more than {descendants_max} descendants")
        kid = queue.popleft()
        kid_rec = receipt(get, kid)
        descendants.append((kid, kid_rec))
        queue.extend(c.child_id(kid, i, suite=suite) for i in range(kid_rec.children))
    family = [*ancestors, (rid, rec), *descendants]
    views = {r: receipt_json(get, scan, r, x, name, suite=suite) for r, x in family}
    root = ancestors[0][1] if ancestors else rec

    def events(kinds: set[Event]) -> list[dict]:
        rows = [
            {"receipt": r.hex(), **event_json(e, name)}
            for r, x in family
            for e in x.history
            if e.kind in kinds
        ]
        return sorted(rows, key=lambda e: e["height"])

    anomalies = [
        {"receipt": r, **m} for r, v in ((r.hex(), views[r]) for r, _ in family)
        for m in v["movements"] if m["anomaly"]
    ]  # fmt: skip
    return {
        "receipt": views[rid],
        "root": root.root.hex(),
        "anchor": _anchor_json(get, root.anchor, name),
        "ancestors": [views[r] for r, _ in ancestors],
        "descendants": [views[r] for r, _ in descendants],
        "transfers": events(_TRANSFERS),
        "pledges": events(_PLEDGES),
        "anomalies": sorted(anomalies, key=lambda m: (m["height"], m["feed"], m["seq"])),
    }


def stock(
    get: StateGet,
    warehouse: bytes,
    item: bytes,
    unit: bytes,
    location: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> c.Stock | None:
    raw = get(c.stock_key(warehouse, c.stock_id(item, unit, location, suite=suite)))
    return None if raw is None else c.Stock.decode(raw)


def receipts_of(scan: Scan, warehouse: bytes) -> list[tuple[bytes, c.Receipt]]:
    """Every receipt of a warehouse (its tag's prefix scan, filtered by warehouse)."""
    rows = scan(c.warehouse_prefix(warehouse, c.RECEIPT))
    return [
        (c.receipt_of_key(k), r)
        for k, r in ((k, c.Receipt.decode(v)) for k, v in rows)
        if r.warehouse == warehouse
    ]


def anomalies_of(scan: Scan, warehouse: bytes) -> list[dict]:
    """Every anomaly recorded at a warehouse, in height order (receipt, feed, seq, ...)."""
    out = []
    p = len(c.moves_prefix(bytes(c.id_bytes)))
    for key, raw in scan(c.warehouse_prefix(warehouse, c.MOVE)):
        m = c.Movement.decode(raw)
        if m.warehouse != warehouse or m.outcome == Outcome.APPLIED:
            continue
        rid, feed = c.receipt_of_key(key), key[p : p + c.feed_id_bytes]
        out.append({"receipt": rid.hex(), **movement_json(feed, int.from_bytes(key[-8:], "big"), m)})
    return sorted(out, key=lambda m: (m["height"], m["feed"], m["seq"]))
