"""Split a receipt into parts whose quantities sum exactly to its balance.

``OP_SPLIT`` (holder): an ACTIVE receipt (not pledged, not under an offer) becomes SPLIT
(closed, balance 0) and its 2..``split_ways_max`` parts are new ACTIVE receipts of the same
holder, warehouse, item, unit and location, each >= 1 and issued its share; each names its
parent, root and depth (at most ``depth_max``), and part ids are
``codes.child_id(parent, i)``, so lineage walks both ways without a scan. Stock totals do
not change: no goods moved. The split's parent keeps ``issued + goods_in - goods_out`` =
the sum of its parts' issued quantities (property-tested).
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.finance.orgs import make_tx, member_reads
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
_HEAD = struct.Struct("<16sB")
_Q = struct.Struct("<Q")


@OPS.op(c.OP_SPLIT, "wr.split")
def _split(ctx: TxContext) -> None:
    if len(ctx.payload) < _HEAD.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "split")
    rid, n = _HEAD.unpack_from(ctx.payload)
    if not 2 <= n <= c.split_ways_max or len(ctx.payload) != _HEAD.size + n * _Q.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "split parts")
    parts = [_Q.unpack_from(ctx.payload, _HEAD.size + i * _Q.size)[0] for i in range(n)]
    if min(parts) < 1 or max(parts) > c.quantity_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "a part of 1..quantity_max")
    oid, rec = store.held(ctx, rid)
    if sum(parts) != rec.balance:
        raise OpFailed(R.WR_SPLIT_SUM_MISMATCH)
    if rec.depth + 1 > c.depth_max:
        raise OpFailed(R.WR_SPLIT_TOO_DEEP)
    closed = store.log(ctx, rec, Event.SPLIT, oid, n, state=State.SPLIT, balance=0, children=n)
    closed = dataclasses.replace(closed, closed_height=ctx.height)
    for i, q in enumerate(parts):
        kid = c.child_id(rid, i, suite=ctx.suite)
        if ctx.get(c.receipt_key(kid)) is not None:
            raise OpFailed(R.WR_RECEIPT_EXISTS)
        part = c.Receipt(
            rec.warehouse, rec.holder, rid, rec.root, rec.depth + 1, i, 0, State.ACTIVE,
            c.ZERO_ID, 0, 0, 0, 0, q, q, 0, 0, 0, 0, ctx.height, c.ZERO_FP, ctx.timestamp_ms, 0,
            rec.item, rec.unit, rec.location,
            (c.HistoryEntry(Event.CREATED_BY_SPLIT, ctx.height, oid, q),),
        )  # fmt: skip
        store.save(ctx, kid, part)
    store.save(ctx, rid, closed)
    ctx.emit(b"wr.split", rid + bytes((n,)))


def split(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    rid: bytes,
    parts: list[int],
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, list[bytes]]:
    """The split tx and its parts' ids (ValueError for a count outside 2..split_ways_max)."""
    if not 2 <= len(parts) <= c.split_ways_max:
        raise ValueError(f"2..{c.split_ways_max} parts")
    kids = [c.child_id(rid, i, suite=suite) for i in range(len(parts))]
    writes = {c.receipt_key(rid), *(c.receipt_key(k) for k in kids)}
    payload = _HEAD.pack(rid, len(parts)) + b"".join(_Q.pack(q) for q in parts)
    return make_tx(chain_id, c.OP_SPLIT, sender, nonce, member_reads(sender, org), writes, payload), kids
