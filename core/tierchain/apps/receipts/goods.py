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
from tierchain.apps.receipts.issue import WAREHOUSE
from tierchain.crypto import CryptoSuite
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


# A batch decodes each receipt and stock it touches once and keeps their fixed-layout fields
# as lists it updates movement by movement: the places of the fields a movement changes
# among ``codes.RECEIPT_HEAD``'s values (the record's fields in order) and ``STOCK_HEAD``'s.
_NAMES = [f.name for f in dataclasses.fields(c.Receipt)]
_STATE, _ALLOWANCE, _BALANCE, _GOODS_IN, _GOODS_OUT, _MOVES, _ANOMALIES = (
    _NAMES.index(n) for n in ("state", "allowance", "balance", "goods_in", "goods_out", "moves", "anomalies")
)
assert len(c.RECEIPT_HEAD.unpack(bytes(c.RECEIPT_HEAD.size))) == _NAMES.index("item")
_S_IN, _S_OUT, _S_ANOMALIES = 0, 1, 3  # Stock: goods_in, goods_out, receipts, anomalies


class _Moved:
    """A receipt of the batch: its key, its fixed-layout fields, the bytes after them (labels
    and history: no movement changes them), its labels and its stock's key (one hash per
    receipt, not one per movement)."""

    __slots__ = ("head", "key", "labels", "live", "skey", "tail", "warehouse")

    def __init__(self, key: bytes, raw: bytes, rec: c.Receipt, wh: bytes, suite: CryptoSuite) -> None:
        self.key = key
        self.head, self.tail = list(c.RECEIPT_HEAD.unpack_from(raw)), raw[c.RECEIPT_HEAD.size :]
        self.warehouse, self.live = rec.warehouse, rec.live
        self.labels = (rec.item, rec.unit, rec.location)
        self.skey = c.stock_key(wh, c.stock_id(*self.labels, suite=suite))

    def encode(self) -> bytes:
        return c.RECEIPT_HEAD.pack(*self.head) + self.tail


class _Stock:
    """A stock of the batch: its counters and its labels' bytes."""

    __slots__ = ("head", "tail")

    def __init__(self, st: c.Stock) -> None:
        self.head = [st.goods_in, st.goods_out, st.receipts, st.anomalies]
        self.tail = store.pack_labels(st.item, st.unit, st.location)

    def encode(self) -> bytes:
        return c.STOCK_HEAD.pack(*self.head) + self.tail


def _outcome(head: list, m: Move) -> Outcome:
    if m.kind == MoveKind.GOODS_IN:
        return Outcome.APPLIED
    if m.quantity > head[_BALANCE]:
        return Outcome.ANOMALY_OVER_BALANCE
    if head[_STATE] == State.PLEDGED and m.quantity > head[_ALLOWANCE]:
        return Outcome.ANOMALY_PLEDGED
    return Outcome.APPLIED


def _stock(ctx: TxContext, stocks: dict[bytes, _Stock], r: _Moved, goods_in: bool = False) -> _Stock:
    """``r``'s stock, read on the batch's first touch: a goods-in makes a missing one
    (``issue.add_stock``); a goods-out or an anomaly fails on it as ``Stock.decode`` does."""
    st = stocks.get(r.skey)
    if st is None:
        raw = ctx.get(r.skey)
        if raw is None and goods_in:
            st = _Stock(c.Stock(0, 0, 0, 0, *r.labels))
        else:
            st = _Stock(c.Stock.decode(raw))
        stocks[r.skey] = st
    return st


def _take(
    ctx: TxContext, wh: bytes, feed: bytes, m: Move, moved: dict[bytes, _Moved], stocks: dict[bytes, _Stock]
) -> None:
    """One movement. Each movement writes its receipt and stock as they are after it, in the
    order loading and saving them per movement did: the same bytes, the same refusals."""
    r = moved.get(m.receipt)
    if r is None:
        rkey = c.receipt_key(m.receipt)
        raw = ctx.get(rkey)
        if raw is None:
            raise OpFailed(R.WR_NO_SUCH_RECEIPT)
        r = moved[m.receipt] = _Moved(rkey, raw, c.Receipt.decode(raw), wh, ctx.suite)
    if r.warehouse != wh:
        raise OpFailed(R.WR_NOT_WAREHOUSE)
    if not r.live:
        raise OpFailed(R.WR_RECEIPT_CLOSED)
    h, q = r.head, m.quantity
    outcome = _outcome(h, m)
    if outcome != Outcome.APPLIED:
        h[_MOVES] += 1
        h[_ANOMALIES] += 1
        st = _stock(ctx, stocks, r)
        st.head[_S_ANOMALIES] += 1
        ctx.put(r.skey, st.encode())
        topic = b"wr.anomaly"
    elif m.kind == MoveKind.GOODS_IN:
        if h[_BALANCE] + q > c.quantity_max or h[_GOODS_IN] + q > c.quantity_max:
            raise OpFailed(R.WR_QUANTITY_OVERFLOW)
        st = _stock(ctx, stocks, r, goods_in=True)
        if st.head[_S_IN] + q > c.quantity_max:
            raise OpFailed(R.WR_QUANTITY_OVERFLOW)
        st.head[_S_IN] += q
        ctx.put(r.skey, st.encode())
        h[_BALANCE] += q
        h[_GOODS_IN] += q
        h[_MOVES] += 1
        topic = b"wr.goods_in"
    else:
        st = _stock(ctx, stocks, r)
        st.head[_S_OUT] += q
        ctx.put(r.skey, st.encode())
        if h[_STATE] == State.PLEDGED:
            h[_ALLOWANCE] -= q
        h[_BALANCE] -= q
        h[_GOODS_OUT] += q
        h[_MOVES] += 1
        topic = b"wr.goods_out"
    ctx.put(r.key, r.encode())
    record = c.movement_bytes(wh, m.kind, outcome, q, h[_BALANCE], ctx.height, ctx.timestamp_ms, ctx.tx_id)
    ctx.put(c.move_key(m.receipt, feed, m.seq), record)
    ctx.emit(topic, m.receipt + feed + m.seq.to_bytes(8, "little") + bytes((outcome,)))


@OPS.op(c.OP_GOODS, "wr.goods")
def _goods(ctx: TxContext) -> None:
    feed, moves = parse(ctx.payload)
    wh, _ = member(ctx, WAREHOUSE)
    fkey = c.feed_key(wh, feed)
    raw = ctx.get(fkey)
    last = 0 if raw is None else c.Feed.decode(raw).last_seq
    moved: dict[bytes, _Moved] = {}
    stocks: dict[bytes, _Stock] = {}
    for i, m in enumerate(moves):
        if m.seq <= last + i:
            raise OpFailed(R.WR_STALE_SEQUENCE)
        if m.seq != last + i + 1:
            raise OpFailed(R.WR_SEQUENCE_GAP)
        _take(ctx, wh, feed, m, moved, stocks)
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
