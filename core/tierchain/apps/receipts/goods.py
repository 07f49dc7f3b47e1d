"""Goods-in and goods-out: a warehouse's IoT feed, batch by batch, with anomalies recorded.

``OP_GOODS`` carries one feed's next 1..``moves_per_tx_max`` messages, each a movement of
one receipt's goods (receipt, goods-in or goods-out, quantity >= 1, sequence number),
signed by a key of the receipt's warehouse (an IoT gateway holds one: ``fin.key_add``).

Sequence numbers make the feed append-only: a feed (``codes.feed_key``, made by
its first message, numbered from 1) takes exactly its next number, so a replayed or
reordered message is refused (``WR_STALE_SEQUENCE``) and so is one that skips a lost
message (``WR_SEQUENCE_GAP``: the gateway resends the missing one first). Messages about
receipts of another warehouse (``WR_NOT_WAREHOUSE``), closed receipts
(``WR_RECEIPT_CLOSED``) or unknown ones refuse the whole batch, consuming nothing.

An **anomaly** — goods-out beyond the receipt's balance, or goods-out of a pledged receipt
beyond what its pledgee allowed (``OP_ALLOW_OUT``, ``OP_RELEASE``) — is refused *and
recorded*. A refused transaction writes nothing, so an anomaly does not refuse the batch:
the message is taken (its sequence number consumed, so it cannot be replayed), its
movement record says which anomaly it was, nothing moves (the balance, the stock's goods
and the pledge are unchanged), the receipt's and the stock's anomaly counters go up, and
the receipt carries a ``wr.anomaly`` event. Recording it in the warehouse's own signed
message, rather than in a separate report, leaves nobody a choice about whether the
anomaly reaches the chain: the feed cannot go on without taking it.

Every applied movement keeps ``balance = issued + goods_in - goods_out`` on the receipt and
``goods_in - goods_out`` = the sum of live balances on its stock.
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.finance.orgs import make_tx, member, member_reads
from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts import store
from tierchain.apps.receipts.codes import MoveKind, Outcome, ReceiptReject, State
from tierchain.apps.receipts.issue import WAREHOUSE, add_stock
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OPS = apps.OpTable()  # this module's ops (tierchain.apps.receipts.app)
R = ReceiptReject
_HEAD = struct.Struct("<8sB")  # feed id, movement count
_MOVE = struct.Struct("<16sBQQ")  # receipt, kind, quantity, sequence number


@dataclasses.dataclass(frozen=True)
class Move:
    """One feed message: ``quantity`` of ``receipt``'s goods in or out, numbered ``seq``."""

    receipt: bytes
    kind: int  # MoveKind
    quantity: int
    seq: int


def parse(payload: bytes) -> tuple[bytes, list[Move]]:
    if len(payload) < _HEAD.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "goods batch")
    feed, n = _HEAD.unpack_from(payload)
    if not 1 <= n <= c.moves_per_tx_max or len(payload) != _HEAD.size + n * _MOVE.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "goods batch length")
    moves = [Move(*_MOVE.unpack_from(payload, _HEAD.size + i * _MOVE.size)) for i in range(n)]
    for m in moves:
        if m.kind not in MoveKind._value2member_map_ or not 1 <= m.quantity <= c.quantity_max:
            raise OpFailed(Reject.BAD_PAYLOAD, "movement kind or quantity")
    return feed, moves


def _outcome(rec: c.Receipt, m: Move) -> Outcome:
    if m.kind == MoveKind.GOODS_IN:
        return Outcome.APPLIED
    if m.quantity > rec.balance:
        return Outcome.ANOMALY_OVER_BALANCE
    if rec.state == State.PLEDGED and m.quantity > rec.allowance:
        return Outcome.ANOMALY_PLEDGED
    return Outcome.APPLIED


def _take(ctx: TxContext, wh: bytes, feed: bytes, m: Move) -> None:
    rec = store.load(ctx, m.receipt)
    if rec.warehouse != wh:
        raise OpFailed(R.WR_NOT_WAREHOUSE)
    if not rec.live:
        raise OpFailed(R.WR_RECEIPT_CLOSED)
    skey = c.stock_key(wh, c.stock_id(rec.item, rec.unit, rec.location, suite=ctx.suite))
    outcome = _outcome(rec, m)
    if outcome != Outcome.APPLIED:
        rec = dataclasses.replace(rec, moves=rec.moves + 1, anomalies=rec.anomalies + 1)
        st = c.Stock.decode(ctx.get(skey))
        ctx.put(skey, dataclasses.replace(st, anomalies=st.anomalies + 1).encode())
        topic = b"wr.anomaly"
    elif m.kind == MoveKind.GOODS_IN:
        if rec.balance + m.quantity > c.quantity_max or rec.goods_in + m.quantity > c.quantity_max:
            raise OpFailed(R.WR_QUANTITY_OVERFLOW)
        add_stock(ctx, skey, rec, m.quantity)
        rec = dataclasses.replace(
            rec, balance=rec.balance + m.quantity, goods_in=rec.goods_in + m.quantity, moves=rec.moves + 1
        )
        topic = b"wr.goods_in"
    else:
        st = c.Stock.decode(ctx.get(skey))
        ctx.put(skey, dataclasses.replace(st, goods_out=st.goods_out + m.quantity).encode())
        allowance = rec.allowance - m.quantity if rec.state == State.PLEDGED else rec.allowance
        rec = dataclasses.replace(
            rec,
            balance=rec.balance - m.quantity,
            goods_out=rec.goods_out + m.quantity,
            allowance=allowance,
            moves=rec.moves + 1,
        )
        topic = b"wr.goods_out"
    store.save(ctx, m.receipt, rec)
    record = c.Movement(wh, m.kind, outcome, m.quantity, rec.balance, ctx.height, ctx.timestamp_ms, ctx.tx_id)
    ctx.put(c.move_key(m.receipt, feed, m.seq), record.encode())
    ctx.emit(topic, m.receipt + feed + m.seq.to_bytes(8, "little") + bytes((outcome,)))


@OPS.op(c.OP_GOODS, "wr.goods")
def _goods(ctx: TxContext) -> None:
    feed, moves = parse(ctx.payload)
    wh, _ = member(ctx, WAREHOUSE)
    fkey = c.feed_key(wh, feed)
    raw = ctx.get(fkey)
    last = 0 if raw is None else c.Feed.decode(raw).last_seq
    for i, m in enumerate(moves):
        if m.seq <= last + i:
            raise OpFailed(R.WR_STALE_SEQUENCE)
        if m.seq != last + i + 1:
            raise OpFailed(R.WR_SEQUENCE_GAP)
        _take(ctx, wh, feed, m)
    ctx.put(fkey, c.Feed(last + len(moves), ctx.height).encode())


# --- client-side builder --------------------------------------------------------------------------


def goods(
    chain_id: int,
    sender: bytes,
    warehouse: bytes,
    nonce: int,
    feed: bytes,
    moves: list[Move],
    stocks: dict[bytes, bytes],
) -> tx.Tx:
    """A batch of ``moves`` of one ``feed``; ``stocks``: each moved receipt's stock id (the
    keys depend on it; ``ReceiptsParty.goods`` reads them from the chain)."""
    if len(feed) != c.feed_id_bytes or not 1 <= len(moves) <= c.moves_per_tx_max:
        raise ValueError(f"an 8-byte feed id and 1..{c.moves_per_tx_max} movements")
    writes = {c.feed_key(warehouse, feed)}
    for m in moves:
        writes |= {
            c.receipt_key(m.receipt),
            c.move_key(m.receipt, feed, m.seq),
            c.stock_key(warehouse, stocks[m.receipt]),
        }
    payload = _HEAD.pack(feed, len(moves)) + b"".join(
        _MOVE.pack(m.receipt, m.kind, m.quantity, m.seq) for m in moves
    )
    return make_tx(chain_id, c.OP_GOODS, sender, nonce, member_reads(sender, warehouse), writes, payload)
