"""A receipt's beginning and end: issue, attach an anchored document, close.

* ``OP_ISSUE`` (warehouse) — a receipt for goods in store, to a depositor (an active
  supplier or core enterprise): item code, unit, location, quantity (>= 1, minor units).
  The quantity enters the warehouse's stock for that item/unit/location (``codes.stock_key``). If
  the payload names an anchored ``DocType.WAREHOUSE_RECEIPT`` fingerprint, it must have
  been anchored by this warehouse (finance's ``fin.anchor``) and back no other receipt:
  the receipt records it and ``codes.anchor_key`` records the receipt, so one document never backs
  two receipts.
* ``OP_ATTACH_ANCHOR`` (the receipt's warehouse) — the same for a receipt issued without
  one (``WR_ANCHOR_SET`` if it has one).
* ``OP_CLOSE`` (holder or warehouse) — withdrawal or cancellation: only an ACTIVE receipt
  whose balance is zero (``WR_BALANCE_NOT_ZERO``); the record stays, CLOSED.
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.orgs import active_org_with, make_tx, member, member_reads, role_bits
from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts import store
from tierchain.apps.receipts.codes import Event, ReceiptReject, State
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OPS = apps.OpTable()  # this module's ops (tierchain.apps.receipts.app)
R = ReceiptReject
WAREHOUSE = role_bits("warehouse")
DEPOSITOR = role_bits("supplier", "core_enterprise")  # who deposits goods and holds receipts
_ISSUE = struct.Struct("<16sQ32s")
_ATTACH = struct.Struct("<16s32s")


def add_stock(ctx: TxContext, key: bytes, rec: c.Receipt, quantity: int, receipts: int = 0) -> None:
    """``quantity`` more goods in the stock of ``rec``'s item, unit and location."""
    raw = ctx.get(key)
    st = c.Stock(0, 0, 0, 0, rec.item, rec.unit, rec.location) if raw is None else c.Stock.decode(raw)
    if st.goods_in + quantity > c.quantity_max:
        raise OpFailed(R.WR_QUANTITY_OVERFLOW)
    st = dataclasses.replace(st, goods_in=st.goods_in + quantity, receipts=st.receipts + receipts)
    ctx.put(key, st.encode())


@OPS.op(c.OP_ISSUE, "wr.issue")
def _issue(ctx: TxContext) -> None:
    if len(ctx.payload) < _ISSUE.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "issue")
    depositor, quantity, anchor = _ISSUE.unpack_from(ctx.payload)
    item, unit, location = store.parse_labels(ctx.payload[_ISSUE.size :])
    if not 1 <= quantity <= c.quantity_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "quantity")
    wh, _ = member(ctx, WAREHOUSE)
    if depositor == wh:
        raise OpFailed(fc.FinanceReject.BAD_COUNTERPARTY, "a warehouse does not deposit with itself")
    active_org_with(ctx, depositor, DEPOSITOR)
    rid = c.receipt_id(wh, ctx.sender, ctx.nonce, suite=ctx.suite)
    if ctx.get(c.receipt_key(rid)) is not None:
        raise OpFailed(R.WR_RECEIPT_EXISTS)
    if anchor != c.ZERO_FP:
        store.anchor_doc(ctx, wh, anchor)
        ctx.put(c.anchor_key(wh, anchor), c.AnchorUse(rid, ctx.height).encode())
    rec = c.Receipt(
        wh, depositor, c.ZERO_ID, rid, 0, 0, 0, State.ACTIVE, c.ZERO_ID, 0, 0, 0, 0,
        quantity, quantity, 0, 0, 0, 0, ctx.height, anchor, ctx.timestamp_ms, 0, item, unit, location,
        (c.HistoryEntry(Event.ISSUED, ctx.height, depositor, quantity),),
    )  # fmt: skip
    add_stock(ctx, c.stock_key(wh, c.stock_id(item, unit, location, suite=ctx.suite)), rec, quantity, 1)
    store.save(ctx, rid, rec)
    ctx.emit(b"wr.issued", rid + depositor + quantity.to_bytes(8, "little"))


@OPS.op(c.OP_ATTACH_ANCHOR, "wr.attach_anchor")
def _attach_anchor(ctx: TxContext) -> None:
    if len(ctx.payload) != _ATTACH.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "attach anchor")
    rid, anchor = _ATTACH.unpack(ctx.payload)
    if anchor == c.ZERO_FP:
        raise OpFailed(Reject.BAD_PAYLOAD, "no fingerprint")
    wh, _ = member(ctx, WAREHOUSE)
    rec = store.load(ctx, rid)
    if rec.warehouse != wh:
        raise OpFailed(R.WR_NOT_WAREHOUSE)
    if not rec.live:
        raise OpFailed(R.WR_RECEIPT_CLOSED)
    if rec.anchor != c.ZERO_FP:
        raise OpFailed(R.WR_ANCHOR_SET)
    store.anchor_doc(ctx, wh, anchor)
    ctx.put(c.anchor_key(wh, anchor), c.AnchorUse(rid, ctx.height).encode())
    store.save(ctx, rid, store.log(ctx, rec, Event.ANCHORED, wh, 0, anchor=anchor))
    ctx.emit(b"wr.anchored", rid + anchor)


@OPS.op(c.OP_CLOSE, "wr.close")
def _close(ctx: TxContext) -> None:
    rid = store.receipt_id_of(ctx.payload)
    oid, _ = member(ctx)
    rec = store.load(ctx, rid)
    if oid not in (rec.holder, rec.warehouse):
        raise OpFailed(R.WR_NOT_HOLDER)
    store.movable(rec)
    if rec.balance:
        raise OpFailed(R.WR_BALANCE_NOT_ZERO)
    closed = store.log(ctx, rec, Event.CLOSED, oid, 0, state=State.CLOSED, closed_height=ctx.height)
    store.save(ctx, rid, closed)
    ctx.emit(b"wr.closed", rid)


# --- client-side builders (every key-determining fact is an argument) -----------------------


def issue(
    chain_id: int,
    sender: bytes,
    warehouse: bytes,
    nonce: int,
    depositor: bytes,
    quantity: int,
    item: bytes,
    unit: bytes,
    location: bytes,
    anchor: bytes = c.ZERO_FP,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, bytes]:
    """The issue tx and the id of the receipt it creates (ValueError for a bad label)."""
    for value, bytes_max in (
        (item, c.item_bytes_max),
        (unit, c.unit_bytes_max),
        (location, c.location_bytes_max),
    ):
        c.check_label(value, bytes_max)
    if len(anchor) != c.fingerprint_bytes:
        raise ValueError("an anchor is a 32-byte document fingerprint")
    rid = c.receipt_id(warehouse, sender, nonce, suite=suite)
    reads = {*member_reads(sender, warehouse), fc.org_key(depositor)}
    writes = {c.receipt_key(rid), c.stock_key(warehouse, c.stock_id(item, unit, location, suite=suite))}
    if anchor != c.ZERO_FP:
        reads.add(fc.doc_key(fc.DocType.WAREHOUSE_RECEIPT, anchor))
        writes.add(c.anchor_key(warehouse, anchor))
    payload = _ISSUE.pack(depositor, quantity, anchor) + store.pack_labels(item, unit, location)
    return make_tx(chain_id, c.OP_ISSUE, sender, nonce, reads, writes, payload), rid


def attach_anchor(chain_id: int, sender: bytes, org: bytes, nonce: int, rid: bytes, anchor: bytes) -> tx.Tx:
    reads = {*member_reads(sender, org), fc.doc_key(fc.DocType.WAREHOUSE_RECEIPT, anchor)}
    writes = {c.receipt_key(rid), c.anchor_key(org, anchor)}
    return make_tx(chain_id, c.OP_ATTACH_ANCHOR, sender, nonce, reads, writes, _ATTACH.pack(rid, anchor))


def close(chain_id: int, sender: bytes, org: bytes, nonce: int, rid: bytes) -> tx.Tx:
    return make_tx(chain_id, c.OP_CLOSE, sender, nonce, member_reads(sender, org), {c.receipt_key(rid)}, rid)
