"""Warehouse-receipt constants: op and refusal codes, hash domains, state keys, ids, limits
and the records every handler and client builder agrees on (docs/finance_receipts.md).

Records are packed with ``struct`` (little endian; quantities are integers in the receipt's
minor unit: grams, pieces, litres...; no floats anywhere) and every decoder checks the
length it was given (``RecordError``), so a damaged value fails loudly.

State layout: one table prefix, ``wr/``, then the warehouse's 8-byte tag (the first 8
bytes of the warehouse organization's id), then a kind byte — so one placement rule puts a
warehouse's receipts, their parts, movements, stocks, feeds and anchor index on one shard
(the router takes 16 rules for a whole chain):

=========================================================  ======================================
``wr/<tag 8>r<receipt id tail 8>``                         a receipt: warehouse, holder, item,
                                                           unit, location, balance, state, offer
                                                           or pledge, parent/root/depth/children,
                                                           anchor, totals, history
``wr/<tag 8>g<receipt tail 8><feed id 8><seq u64 BE>``     one goods movement of a feed, applied
                                                           or recorded as an anomaly
``wr/<tag 8>f<warehouse tail 8><feed id 8>``               a feed: the last sequence number taken
``wr/<tag 8>s<warehouse tail 8><stock id 16>``             a stock (item, unit, location): goods
                                                           in, goods out, anomalies
``wr/<tag 8>d<warehouse tail 8><fingerprint 32>``          an anchored warehouse-receipt document
                                                           and the receipt it backs
=========================================================  ======================================

A receipt id (16 bytes) is the warehouse tag, then 8 bytes of ``H(sender, nonce)``; a
split's parts are the parent's tag, then 8 bytes of ``H(parent, index)``; "tail" is an
id's last 8 bytes. The sequence number in a movement key is big endian so that a prefix
scan lists a feed's movements in order.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import struct

from tierchain import limits
from tierchain.apps.finance import codes as fc
from tierchain.apps.records import maker
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite

RecordError = fc.RecordError  # a stored value without its record's layout

# --- hash domains (the chain's suite's domain contexts; never change one) ------------------
WR_RECEIPT_ID = "tierchain 2026 receipts receipt id"  # (sender, nonce)
WR_CHILD_ID = "tierchain 2026 receipts split child id"  # (parent, index)
WR_STOCK_ID = "tierchain 2026 receipts stock id"  # (item, unit, location)
DOMAINS = (WR_RECEIPT_ID, WR_CHILD_ID, WR_STOCK_ID)

# --- what the receipts app claims (tierchain.apps.receipts.app) ----------------------------
OP_CODES = range(128, 160)
REJECT_CODES = range(288, 352)

# op codes (protocol: never renumber)
OP_ISSUE = 128  # warehouse: a receipt for goods in store, to a depositor
OP_GOODS = 129  # warehouse (its IoT feed): a batch of goods-in / goods-out movements
OP_OFFER_TRANSFER = 130  # holder: offer the receipt to another organization
OP_OFFER_PLEDGE = 131  # holder: offer the receipt to a bank as the collateral of a loan
OP_ACCEPT = 132  # offeree: take the receipt (transfer) or the pledge
OP_RETURN = 133  # offeree or holder: decline / withdraw a pending offer
OP_RELEASE = 134  # pledgee: release its pledge
OP_ALLOW_OUT = 135  # pledgee: let a quantity of the pledged goods leave (partial release)
OP_PLEDGE_DEFAULT = 136  # pledgee, after the loan's due time: take the receipt
OP_SPLIT = 137  # holder: split the receipt into parts summing exactly to its balance
OP_CLOSE = 138  # holder or warehouse: withdraw / cancel a receipt whose balance is zero
OP_ATTACH_ANCHOR = 139  # warehouse: record the anchored receipt document on a receipt


class ReceiptReject(enum.IntEnum):
    """The receipts app's refusal codes (288..351). Protocol numbers: never renumber one.
    Membership refusals are finance's (``NOT_A_MEMBER``, ``KEY_REVOKED``, ``ORG_INACTIVE``,
    ``ROLE_MISSING``), and so are ``NO_SUCH_ORG``, ``BAD_COUNTERPARTY`` and ``NO_SUCH_DOC``."""

    WR_NO_SUCH_RECEIPT = 288
    WR_NOT_HOLDER = 289
    WR_NOT_WAREHOUSE = 290  # the sender's organization is not the receipt's warehouse
    WR_RECEIPT_CLOSED = 291  # split or closed: it no longer holds goods
    WR_PLEDGED = 292  # a pledged receipt is locked: no transfer, split or close
    WR_ALREADY_PLEDGED = 293  # a receipt backs at most one pledge at a time
    WR_OFFER_PENDING = 294  # an offer awaits its counterparty
    WR_NOT_OFFERED = 295
    WR_NOT_OFFEREE = 296
    WR_NOT_PLEDGED = 297
    WR_NOT_PLEDGEE = 298
    WR_BALANCE_NOT_ZERO = 299  # only an empty receipt is closed
    WR_SPLIT_SUM_MISMATCH = 300  # the parts must sum exactly to the balance
    WR_SPLIT_TOO_DEEP = 301
    WR_HISTORY_FULL = 302
    WR_STALE_SEQUENCE = 303  # a feed message already taken: a replay or a reordering
    WR_SEQUENCE_GAP = 304  # a feed message skipped: the missing one must come first
    WR_BALANCE_CHANGED = 305  # the balance dropped below what the offer showed
    WR_EXCEEDS_BALANCE = 306  # a goods-out allowance beyond the pledged balance
    WR_LOAN_NOT_DUE = 307
    WR_ANCHOR_NOT_WAREHOUSE = 308  # the document was anchored by another organization
    WR_ANCHOR_USED = 309  # the anchored document already backs a receipt
    WR_ANCHOR_SET = 310  # the receipt already records an anchor
    WR_RECEIPT_EXISTS = 311
    WR_QUANTITY_OVERFLOW = 312  # a total would pass quantity_max


# --- enums (protocol numbers) ----------------------------------------------------------------
class State(enum.IntEnum):
    ACTIVE = 1
    OFFERED = 2  # a transfer offer awaits the offeree
    PLEDGE_OFFERED = 3  # a pledge offer awaits the bank
    PLEDGED = 4
    SPLIT = 5  # closed: its goods are its children's
    CLOSED = 6  # withdrawn or cancelled at zero balance

    @property
    def live(self) -> bool:
        return self not in (State.SPLIT, State.CLOSED)


class MoveKind(enum.IntEnum):
    GOODS_IN = 1
    GOODS_OUT = 2


class Outcome(enum.IntEnum):
    """What a recorded movement did."""

    APPLIED = 1
    ANOMALY_OVER_BALANCE = 2  # goods-out beyond the receipt's balance: nothing moved
    ANOMALY_PLEDGED = 3  # a pledged receipt's goods leaving without the pledgee's release


class Event(enum.IntEnum):
    """A receipt's history events (``amount``: see ``HistoryEntry``)."""

    ISSUED = 1
    CREATED_BY_SPLIT = 2
    SPLIT = 3
    TRANSFER_OFFERED = 4
    TRANSFERRED = 5
    PLEDGE_OFFERED = 6
    PLEDGED = 7
    RETURNED = 8
    RELEASED = 9
    OUT_ALLOWED = 10
    DEFAULT_TAKEN = 11
    CLOSED = 12
    ANCHORED = 13


# --- limits ---------------------------------------------------------------------------------
id_bytes = 16
tag_bytes = 8  # the warehouse tag every key starts with (placement)
feed_id_bytes = 8
fingerprint_bytes = 32
item_bytes_max = 32
unit_bytes_max = 16
location_bytes_max = 32
quantity_max = (1 << 62) - 1  # any quantity or running total, in minor units
split_ways_max = 8
depth_max = 8  # splits from the issued receipt
history_max = 64  # events per receipt (movements are records of their own)
moves_per_tx_max = 8  # movements per goods batch
# goods batch keys: fk fo feed + per movement: receipt, movement record, stock
assert 3 + 3 * moves_per_tx_max <= limits.tx_keys_max
assert 2 + 1 + split_ways_max + 1 <= limits.tx_keys_max  # split: fk fo parent children stock-free
ZERO_ID = bytes(id_bytes)
ZERO_FP = bytes(fingerprint_bytes)


# --- keys ---------------------------------------------------------------------------------------
PREFIX = b"wr/"  # the app's one table prefix (and placement rule)
RECEIPT, MOVE, FEED, STOCK, ANCHOR = b"r", b"g", b"f", b"s", b"d"  # kinds, after the tag


def _key(ident: bytes, kind: bytes, *rest: bytes) -> bytes:
    return PREFIX + ident[:tag_bytes] + kind + ident[tag_bytes:] + b"".join(rest)


def receipt_key(receipt_id: bytes) -> bytes:
    return _key(receipt_id, RECEIPT)


def receipt_of_key(key: bytes) -> bytes:
    """The receipt id in a receipt or movement key."""
    p = len(PREFIX)
    return key[p : p + tag_bytes] + key[p + tag_bytes + 1 : p + id_bytes + 1]


def move_key(receipt_id: bytes, feed: bytes, seq: int) -> bytes:
    return _key(receipt_id, MOVE, feed, seq.to_bytes(8, "big"))


def moves_prefix(receipt_id: bytes) -> bytes:
    """Every movement of one receipt (a prefix scan)."""
    return _key(receipt_id, MOVE)


def feed_key(warehouse: bytes, feed: bytes) -> bytes:
    return _key(warehouse[:id_bytes], FEED, feed)


def stock_key(warehouse: bytes, stock: bytes) -> bytes:
    return _key(warehouse[:id_bytes], STOCK, stock)


def anchor_key(warehouse: bytes, fingerprint: bytes) -> bytes:
    return _key(warehouse[:id_bytes], ANCHOR, fingerprint)


def warehouse_prefix(warehouse: bytes, kind: bytes) -> bytes:
    """Every record of ``kind`` under a warehouse's tag (receipts: ``RECEIPT``, movements:
    ``MOVE``). Another warehouse may share the tag: filter by the record's warehouse."""
    return PREFIX + warehouse[:tag_bytes] + kind


# --- ids (the chain's suite's hashes) -------------------------------------------------------
def _h(context: str, *parts: bytes, suite: CryptoSuite) -> bytes:
    return suite.hash(context, b"".join(len(p).to_bytes(4, "little") + p for p in parts))


def receipt_id(warehouse: bytes, sender: bytes, nonce: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The id of the receipt an issue creates: the warehouse tag, then 8 hash bytes (known
    before signing)."""
    tail = _h(WR_RECEIPT_ID, sender, nonce.to_bytes(8, "little"), suite=suite)[: id_bytes - tag_bytes]
    return warehouse[:tag_bytes] + tail


def child_id(parent: bytes, index: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The id of a split's ``index``-th part: the parent's tag, then 8 hash bytes."""
    tail = _h(WR_CHILD_ID, parent, bytes((index,)), suite=suite)[: id_bytes - tag_bytes]
    return parent[:tag_bytes] + tail


def stock_id(item: bytes, unit: bytes, location: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The stock a receipt's goods count in: one per (item, unit, location) of a warehouse."""
    return _h(WR_STOCK_ID, item, unit, location, suite=suite)[:id_bytes]


def check_label(value: bytes, bytes_max: int) -> bytes:
    """An item code, unit or location: 1..``bytes_max`` bytes of printable UTF-8 (ValueError)."""
    if not 1 <= len(value) <= bytes_max:
        raise ValueError(f"a label of 1..{bytes_max} bytes")
    text = value.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if not text.isprintable() or text != text.strip():
        raise ValueError("a label is printable text without surrounding blanks")
    return value


# --- records -----------------------------------------------------------------------------------
# Handlers decode and rebuild these records on every op: large ones are built with
# ``tierchain.apps.records.maker`` and changed with ``records.evolve`` (plain fields only:
# no ``__post_init__``, no ``init=False``, no slots).


_HIST = struct.Struct("<BQ16sQ")


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    kind: int  # Event
    height: int
    org: bytes  # the counterparty (offeree, pledgee, new holder) or the actor
    # ISSUED/CREATED_BY_SPLIT/TRANSFER_OFFERED/TRANSFERRED/RETURNED/CLOSED/DEFAULT_TAKEN: the
    # balance then; SPLIT: the number of parts; PLEDGE_OFFERED/PLEDGED/RELEASED: the loan;
    # OUT_ALLOWED: the quantity allowed out; ANCHORED: 0.
    amount: int


_RECEIPT = struct.Struct("<16s16s16s16sBBBB16sQQQQQQQQIIQ32sQQ")


@dataclasses.dataclass(frozen=True)
class Receipt:
    """``wr/<id>``. ``balance = issued + goods_in - goods_out`` always (a split's part is
    issued its share); ``allowance`` is what the pledgee let out of a pledged receipt."""

    warehouse: bytes
    holder: bytes
    parent: bytes  # ZERO_ID for an issued receipt
    root: bytes  # the issued receipt of its lineage (itself for an issued one)
    depth: int
    index: int  # among its parent's parts
    children: int
    state: int  # State
    counterparty: bytes  # OFFERED / PLEDGE_OFFERED: the offeree; PLEDGED: the pledgee
    loan: int  # PLEDGE_OFFERED / PLEDGED: the loan the pledge secures (information)
    due_ms: int  # the loan's due time: the pledgee may take the receipt after it
    offered_balance: int  # the balance an offer showed: accept refuses if it dropped
    allowance: int  # PLEDGED: goods-out the pledgee has allowed and not yet used
    issued: int
    balance: int
    goods_in: int
    goods_out: int
    moves: int  # movements recorded on it (applied or anomalies)
    anomalies: int
    created_height: int
    anchor: bytes  # an anchored DocType.WAREHOUSE_RECEIPT fingerprint, or ZERO_FP
    created_ms: int
    closed_height: int
    item: bytes
    unit: bytes
    location: bytes
    history: tuple[HistoryEntry, ...] = ()

    def encode(self) -> bytes:
        head = _RECEIPT.pack(
            self.warehouse, self.holder, self.parent, self.root,
            self.depth, self.index, self.children, self.state,
            self.counterparty, self.loan, self.due_ms, self.offered_balance, self.allowance,
            self.issued, self.balance, self.goods_in, self.goods_out,
            self.moves, self.anomalies, self.created_height, self.anchor, self.created_ms, self.closed_height,
        )  # fmt: skip
        labels = b"".join(bytes((len(x),)) + x for x in (self.item, self.unit, self.location))
        hist = bytes((len(self.history),)) + b"".join(
            _HIST.pack(e.kind, e.height, e.org, e.amount) for e in self.history
        )
        return head + labels + hist

    @classmethod
    def decode(cls, raw: bytes) -> Receipt:
        if len(raw) < _RECEIPT.size:
            raise RecordError("receipt")
        fields = _RECEIPT.unpack_from(raw)
        p = _RECEIPT.size
        labels = []
        for _ in range(3):
            if len(raw) < p + 1 or len(raw) < p + 1 + raw[p]:
                raise RecordError("receipt labels")
            labels.append(raw[p + 1 : p + 1 + raw[p]])
            p += 1 + raw[p]
        if len(raw) < p + 1 or len(raw) != p + 1 + raw[p] * _HIST.size:
            raise RecordError("receipt history")
        hist = tuple(itertools.starmap(HistoryEntry, _HIST.iter_unpack(raw[p + 1 :])))
        rec = _receipt(*fields, *labels, hist)
        if rec.state not in State._value2member_map_:
            raise RecordError("receipt state")
        return rec

    @property
    def live(self) -> bool:
        return State(self.state).live


RECEIPT_HEAD = _RECEIPT  # an encoded receipt's fixed part: its fields before ``item``, in order
_receipt = maker(Receipt)

_MOVE = struct.Struct("<16sBBQQQQ32s")


@dataclasses.dataclass(frozen=True)
class Movement:
    """A movement record (``move_key``): one feed message about a receipt's goods, as the chain
    took it. An anomaly moved nothing: ``balance_after`` equals the balance before."""

    warehouse: bytes
    kind: int  # MoveKind
    outcome: int  # Outcome
    quantity: int
    balance_after: int
    height: int
    timestamp_ms: int
    tx_id: bytes  # the warehouse's signed batch: the evidence

    def encode(self) -> bytes:
        return _MOVE.pack(
            self.warehouse, self.kind, self.outcome, self.quantity, self.balance_after,
            self.height, self.timestamp_ms, self.tx_id,
        )  # fmt: skip

    @classmethod
    def decode(cls, raw: bytes) -> Movement:
        if len(raw) != _MOVE.size:
            raise RecordError("movement")
        return cls(*_MOVE.unpack(raw))


def movement_bytes(
    warehouse: bytes,
    kind: int,
    outcome: int,
    quantity: int,
    balance_after: int,
    height: int,
    timestamp_ms: int,
    tx_id: bytes,
) -> bytes:
    """``Movement(...).encode()`` without building the record (a goods batch's hot path)."""
    return _MOVE.pack(warehouse, kind, outcome, quantity, balance_after, height, timestamp_ms, tx_id)


_FEED = struct.Struct("<QQ")


@dataclasses.dataclass(frozen=True)
class Feed:
    """A feed (``feed_key``): the last sequence number taken (messages start at 1)."""

    last_seq: int
    updated_height: int

    def encode(self) -> bytes:
        return _FEED.pack(self.last_seq, self.updated_height)

    @classmethod
    def decode(cls, raw: bytes) -> Feed:
        if len(raw) != _FEED.size:
            raise RecordError("feed")
        return cls(*_FEED.unpack(raw))


_STOCK = struct.Struct("<QQQI")


@dataclasses.dataclass(frozen=True)
class Stock:
    """A stock (``stock_key``): every quantity that entered (issues and goods-in) and left
    (goods-out) one item/unit/location of a warehouse, and the anomalies recorded there.
    ``goods_in - goods_out`` is the sum of its live receipts' balances (property-tested)."""

    goods_in: int
    goods_out: int
    receipts: int  # receipts issued on it (issues; split parts are not new goods)
    anomalies: int
    item: bytes
    unit: bytes
    location: bytes

    @property
    def in_store(self) -> int:
        return self.goods_in - self.goods_out

    def encode(self) -> bytes:
        labels = b"".join(bytes((len(x),)) + x for x in (self.item, self.unit, self.location))
        return _STOCK.pack(self.goods_in, self.goods_out, self.receipts, self.anomalies) + labels

    @classmethod
    def decode(cls, raw: bytes) -> Stock:
        if len(raw) < _STOCK.size:
            raise RecordError("stock")
        fields, p, labels = _STOCK.unpack_from(raw), _STOCK.size, []
        for _ in range(3):
            if len(raw) < p + 1 or len(raw) < p + 1 + raw[p]:
                raise RecordError("stock labels")
            labels.append(raw[p + 1 : p + 1 + raw[p]])
            p += 1 + raw[p]
        if p != len(raw):
            raise RecordError("stock length")
        return cls(*fields, *labels)


STOCK_HEAD = _STOCK  # an encoded stock's fixed part: its counters, in order (then the labels)


_ANCHOR = struct.Struct("<16sQ")


@dataclasses.dataclass(frozen=True)
class AnchorUse:
    """``anchor_key``: the receipt an anchored document backs."""

    receipt: bytes
    height: int

    def encode(self) -> bytes:
        return _ANCHOR.pack(self.receipt, self.height)

    @classmethod
    def decode(cls, raw: bytes) -> AnchorUse:
        if len(raw) != _ANCHOR.size:
            raise RecordError("anchor use")
        return cls(*_ANCHOR.unpack(raw))


def feed_id(name: str | bytes) -> bytes:
    """A feed's 8-byte id from a short name (1..8 bytes, zero padded) or 8 raw bytes."""
    raw = name.encode() if isinstance(name, str) else bytes(name)
    if not 1 <= len(raw) <= feed_id_bytes:
        raise ValueError(f"a feed id is 1..{feed_id_bytes} bytes")
    return raw.ljust(feed_id_bytes, b"\0")
