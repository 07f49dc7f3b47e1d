"""Digital bills: op and refusal codes, hash domains, state keys, ids, record codecs, limits.

Everything a handler and a client builder of the ``bills`` app agree on
(docs/finance_bills.md). Records are ``struct``-packed (little endian, integers in minor
units, no floats); every decoder checks the length it is given and raises ``RecordError``
(a ``ValueError``) on a damaged value.

State layout:

==============================  ====================================================
``bl/<bill 16>``                a bill: kind, drawer, acceptor, payee, face,
                                maturity and due day, state, holder, pending offer,
                                pledge, presentment, dishonour, recourse position,
                                documents, the endorsement chain (``Transfer`` rows)
``bn/<bill 16><seq u16 BE>``    the bill's history, one ``Event`` per key, append-only
                                (big-endian seq: a prefix scan reads it in order)
``bq/params``                   bill parameters (``Params``): tenor limits,
                                presentment and answer periods, time zone, weekend
``bq/cal<year u16 BE>``         a year's business-day calendar (``Calendar``)
``bv/<ballot 16>``              a committee ballot on parameters or a calendar
==============================  ====================================================

A bill's id is ``tag + H(BILL_ID, sender, nonce)[8:16]``; its first 8 bytes, the
*placement tag*, are what the shard router places ``bl/`` and ``bn/`` keys by, so a bill
and its history live on one shard. The tag is ``H(BILL_ID, sender, nonce)[:8]`` unless the
issue tx names one (so an untagged id is ``H(BILL_ID, sender, nonce)[:16]``); on a cluster
the drawer names one that routes to the shard it signs for (``placement_tag``).
"""

from __future__ import annotations

import dataclasses
import enum
import struct

from tierchain import limits
from tierchain.apps.finance import codes as fc
from tierchain.apps.records import maker
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps, route
from tierchain.errors import TierChainError

# --- hash domains (never change one: it changes every id) ---------------------------------
BILL_ID = "tierchain 2026 bills bill id"  # (drawer's key, nonce)
BILL_BALLOT = "tierchain 2026 bills ballot id"  # (action, version, body)
DOMAINS = (BILL_ID, BILL_BALLOT)

# --- what the bills app claims (tierchain.apps.bills.app) -----------------------------------
OP_CODES = range(96, 128)
REJECT_CODES = range(224, 288)

# op codes (protocol: never renumber)
OP_VOTE = 96  # committee: vote bill parameters or a year's calendar
OP_ISSUE = 100  # drawer: draw a bill (awaiting acceptance)
OP_ACCEPT = 101  # acceptor: accept (承兑); the bill is then offered to the payee
OP_REFUSE = 102  # acceptor: refuse acceptance; the bill is void
OP_REVOKE = 103  # drawer: withdraw a bill not yet accepted or not yet received by the payee
OP_OFFER = 104  # holder: endorse, discount, rediscount or pledge (awaits the counterparty)
OP_SIGN = 105  # offeree: sign (accept) the pending offer or the delivery
OP_REJECT = 106  # offeree: reject it
OP_CANCEL = 107  # holder: withdraw its pending offer
OP_RELEASE = 108  # pledgee: release its pledge
OP_PRESENT = 109  # holder (the pledgee of a pledged bill): present for payment (托收)
OP_PAY = 110  # acceptor: pay a presented (or dishonoured) bill
OP_DISHONOUR = 111  # acceptor (with a reason), or the presenter after the answer period
OP_CLAIM = 112  # holder of a dishonoured bill: claim recourse from the next prior party
OP_RECOURSE_PAY = 113  # the claimed party pays the face; it becomes the holder
OP_RECOURSE_REFUSE = 114  # the claimed party refuses; the claim moves up the chain


class BillReject(enum.IntEnum):
    """The bills app's refusal codes (224..287). Protocol numbers: never renumber one."""

    BILL_NO_SUCH_BILL = 224
    BILL_EXISTS = 225
    BILL_STALE = 226  # the tx was built for another state of the bill (its event count)
    BILL_BAD_FACE = 227  # face 0 or above amount_max
    BILL_BAD_TENOR = 228  # maturity outside [issue day + min tenor, issue day + max tenor]
    BILL_NO_BUSINESS_DAY = 229  # no business day within roll_days_max of the maturity
    BILL_NOT_DRAWER = 230
    BILL_NOT_ACCEPTOR = 231
    BILL_NOT_HOLDER = 232  # (or of a pledged bill, not the pledgee, where the pledgee acts)
    BILL_NOT_OFFEREE = 233
    BILL_NOT_PLEDGEE = 234
    BILL_NOT_CLAIMED = 235  # recourse answered by another party than the one claimed
    BILL_NOT_DRAWN = 236  # accept/refuse of a bill not awaiting acceptance
    BILL_AWAITING_ACCEPTANCE = 237  # the bill has not been accepted and delivered yet
    BILL_PENDING = 238  # an offer awaits the counterparty
    BILL_NOT_OFFERED = 239
    BILL_PLEDGED = 240  # a pledged bill does not move; its pledgee presents and claims
    BILL_NOT_PLEDGED = 241
    BILL_CLOSED = 242  # paid or void: nothing moves it
    BILL_PRESENTED = 243  # presented or dishonoured: it no longer moves
    BILL_NOT_PRESENTED = 244
    BILL_NOT_DISHONOURED = 245
    BILL_NOT_TRANSFERABLE = 246  # the drawer's 不得转让 mark: no endorsement, discount or pledge
    BILL_MATURED = 247  # after the maturity day nothing is transferred, offered or accepted
    BILL_NOT_DUE = 248  # presentment before the due (business) day
    BILL_BAD_PRICE = 249  # discount price not in 1..face-1, loan not in 1..face, endorsement priced
    BILL_CHAIN_FULL = 250  # endorsements_max transfers
    BILL_HISTORY_FULL = 251
    BILL_ANSWER_NOT_DUE = 252  # "no response" before the acceptor's answer period is over
    BILL_CLAIM_PENDING = 253  # the claimed party's answer period is not over
    BILL_NO_CLAIM = 254
    BILL_NO_PRIOR_PARTY = 255  # nobody left to claim recourse from
    BILL_DELIVERY = 256  # cancel of a delivery: the drawer revokes instead
    BILL_STALE_VOTE = 257  # a vote for another version than the current one + 1
    BILL_ALREADY_VOTED = 258
    BILL_BAD_PARAMS = 259  # parameters out of range
    BILL_BAD_CALENDAR = 260  # a year out of range, or days beyond the year marked
    BILL_ACCEPTOR_CLAIMS = 261  # the acceptor holds (or claims) its own bill: it pays, it cannot dishonour


# --- enums (protocol numbers) -----------------------------------------------------------------
class BillKind(enum.IntEnum):
    COMMERCIAL = 1  # 商业承兑汇票: accepted by an enterprise (core enterprise or supplier)
    BANK = 2  # 银行承兑汇票: accepted by a bank


class BillState(enum.IntEnum):
    DRAWN = 1  # issued, awaiting the acceptor
    OFFERED = 2  # an offer (delivery, endorsement, discount, rediscount, pledge) awaits
    ACTIVE = 3  # held (a pledge, if any, is the record's pledgee)
    PRESENTED = 4  # presented for payment, awaiting the acceptor
    DISHONOURED = 5  # payment refused: recourse up the endorsement chain
    PAID = 6  # closed: paid by the acceptor
    VOID = 7  # closed: acceptance refused, revoked, or the payee rejected delivery


CLOSED = frozenset((BillState.PAID, BillState.VOID))


class OfferKind(enum.IntEnum):
    DELIVERY = 1  # drawer -> payee after acceptance (提示收票); made by the accept op only
    ENDORSE = 2  # transfer endorsement between enterprises
    DISCOUNT = 3  # enterprise -> bank, for a price below face
    REDISCOUNT = 4  # bank -> bank (转贴现), for a price below face
    PLEDGE = 5  # pledge endorsement to a bank for a loan (title stays with the holder)


TRANSFERS = frozenset((OfferKind.DELIVERY, OfferKind.ENDORSE, OfferKind.DISCOUNT, OfferKind.REDISCOUNT))


class DishonourReason(enum.IntEnum):
    INSUFFICIENT_FUNDS = 1
    TRADE_DISPUTE = 2
    BILL_DEFECT = 3
    FROZEN_BY_COURT = 4
    ACCEPTOR_INSOLVENT = 5
    OTHER = 6
    NO_RESPONSE = 7  # declared by the presenter after the acceptor's answer period


class RefusalReason(enum.IntEnum):
    """Why an acceptor refuses acceptance, or a claimed party refuses recourse."""

    NOT_LIABLE = 1
    TRADE_DISPUTE = 2
    INSUFFICIENT_FUNDS = 3
    BILL_DEFECT = 4
    OTHER = 5


class EventKind(enum.IntEnum):
    """A history event (``bn/``); ``aux`` holds what the kind says."""

    ISSUED = 1  # actor drawer, party payee, amount face
    ACCEPTED = 2  # actor acceptor, party payee (the delivery offer)
    ACCEPTANCE_REFUSED = 3  # aux RefusalReason
    REVOKED = 4  # actor drawer
    OFFERED = 5  # aux OfferKind, party offeree, amount price/loan (0: endorsement)
    SIGNED = 6  # aux OfferKind: the delivery/transfer/pledge took effect; actor offeree, party offeror
    REJECTED = 7  # aux OfferKind
    CANCELLED = 8  # aux OfferKind
    RELEASED = 9  # actor pledgee, party holder, amount loan
    PRESENTED = 10  # aux 1 if late (after the presentment period)
    PAID = 11  # actor acceptor, party paid-to org, amount (a pledged bill: two rows)
    DISHONOURED = 12  # aux DishonourReason
    CLAIMED = 13  # actor claimant, party claimed party, aux its chain index
    RECOURSE_PAID = 14  # actor payer, party paid-to org, amount (a pledged bill: two rows)
    RECOURSE_REFUSED = 15  # aux RefusalReason
    CLAIM_LAPSED = 16  # the claimed party did not answer within its period


class Action(enum.IntEnum):
    SET_PARAMS = 1
    SET_CALENDAR = 2


# --- limits -------------------------------------------------------------------------------------
id_bytes = 16
tag_bytes = 8  # the placement tag: a bill id's first 8 bytes
amount_max = fc.amount_max
docs_per_bill_max = 4
endorsements_max = 64  # transfers in a bill's chain (delivery, endorsements, discounts)
events_max = 4096  # history events per bill
events_per_op_max = 2  # a split payment or a lapsed claim + the next claim
votes_max = fc.votes_max
ballot_ms_max = 7 * 86_400_000  # a ballot not applied within this is void (a new one opens)
roll_days_max = 60  # the due day is the first business day within this of the maturity
year_min, year_max = 1970, 9999
calendar_bytes = 46  # 366 bits
day_ms = 86_400_000
assert 2 + 4 + 2 + docs_per_bill_max + 3 <= limits.tx_keys_max  # issue: fk fo, 2 orgs, params, 2 cals, bl bn

# --- state keys ---------------------------------------------------------------------------------
PARAMS_KEY = b"bq/params"
PREFIXES = (b"bl/", b"bn/", b"bq/", b"bv/")
# Placement (the app's): a bill and its history route by the bill's tag; parameters,
# calendars and ballots are on every shard, voted on the primary.
PLACEMENT = (
    *(apps.Placement(p, apps.TAG, tag_bytes) for p in (b"bl/", b"bn/")),
    *(apps.Placement(p, apps.REPLICATED) for p in (b"bq/", b"bv/")),
)
_SEQ = struct.Struct(">H")


def bill_key(bill: bytes) -> bytes:
    return b"bl/" + bill


def event_key(bill: bytes, seq: int) -> bytes:
    return b"bn/" + bill + _SEQ.pack(seq)


def calendar_key(year: int) -> bytes:
    return b"bq/cal" + _SEQ.pack(year)


def ballot_key(ballot: bytes) -> bytes:
    return b"bv/" + ballot


# --- ids ----------------------------------------------------------------------------------------
def bill_id(
    sender: bytes, nonce: int, *, tag: bytes | None = None, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """The id of the bill an issue tx creates (known before signing): ``tag`` (the issue's
    placement tag; ``None``: the hash's own first 8 bytes) + ``H(BILL_ID, sender, nonce)[8:16]``."""
    h = suite.hash(BILL_ID, sender + nonce.to_bytes(8, "little"))
    if tag is None:
        return h[:id_bytes]
    if len(tag) != tag_bytes:
        raise ValueError(f"a placement tag is {tag_bytes} bytes, not {len(tag)}")
    return bytes(tag) + h[tag_bytes:id_bytes]


placement_tries_min = 64  # placement_tag tries at least this many tags, and 32 per shard


def placement_tag(
    shard: int,
    n_shards: int,
    sender: bytes,
    nonce: int,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    placement: route.Placement = PLACEMENT,
) -> bytes:
    """A placement tag that puts the bill of ``sender``'s issue at ``nonce`` on ``shard`` of
    an ``n_shards`` cluster, deterministically: the first of ``H(BILL_ID, sender, nonce)[:8]``
    (the untagged id's own tag), then ``H(BILL_ID, sender, nonce, i u32 LE)[:8]`` for
    i = 1, 2, ... whose ``bl/`` key routes there (``tierchain.engine.route.route_keys`` under
    ``placement``: default the bills app's rules, ``PLACEMENT``). ``ValueError`` for a shard
    outside ``0..n_shards - 1``, or if all ``max(placement_tries_min, 32 n_shards)`` tags miss
    (a chance of about e^-32 = 1e-14 for any ``n_shards``: each hits with probability 1/n)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} of {n_shards}")
    head = sender + nonce.to_bytes(8, "little")
    tries = max(placement_tries_min, 32 * n_shards)
    for first in range(0, tries, placement_tries_min):
        tags = [
            suite.hash(BILL_ID, head + (i.to_bytes(4, "little") if i else b""))[:tag_bytes]
            for i in range(first, min(first + placement_tries_min, tries))
        ]
        keys = [bill_key(t + bytes(id_bytes - tag_bytes)) for t in tags]  # bl/ routes by the tag alone
        shards = route.route_keys(keys, n_shards, placement)
        for t, s in zip(tags, shards.tolist(), strict=True):
            if s == shard:
                return t
    raise ValueError(f"no placement tag for shard {shard} of {n_shards} in {tries} tries")


def ballot_id(action: int, version: int, body: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """A ballot's id: what is voted (action, the version it creates, the body)."""
    return suite.hash(BILL_BALLOT, bytes((action,)) + version.to_bytes(4, "little") + body)[:id_bytes]


# --- records ------------------------------------------------------------------------------------
# Handlers decode and rebuild these records on every op: large ones are built with
# ``tierchain.apps.records.maker`` and changed with ``records.evolve`` (plain fields only:
# no ``__post_init__``, no ``init=False``, no slots).


class RecordError(TierChainError, ValueError):
    """A stored value that does not have its record's layout."""


_PARAMS = struct.Struct("<IHHHHHhB")


@dataclasses.dataclass(frozen=True)
class Params:
    """``bq/params``: set by a committee vote (``committee.py``); defaults until then."""

    version: int = 0  # votes applied so far
    max_tenor_days: int = 365  # electronic bills: one year (the 2023 rules: set 184 for six months)
    min_tenor_days: int = 1
    presentment_days: int = 10  # presentment on a day <= due day + this is on time
    answer_days: int = 3  # the acceptor's answer period after presentment
    recourse_answer_days: int = 10  # a claimed party's answer period
    tz_offset_min: int = 480  # block time -> local day (UTC+8: Beijing)
    weekend_mask: int = 0b1100000  # bit d: weekday d (Monday 0) is not a business day

    def encode(self) -> bytes:
        return _PARAMS.pack(
            self.version, self.max_tenor_days, self.min_tenor_days, self.presentment_days, self.answer_days,
            self.recourse_answer_days, self.tz_offset_min, self.weekend_mask,
        )  # fmt: skip

    @classmethod
    def decode(cls, raw: bytes | None) -> Params:
        if raw is None:
            return cls()
        if len(raw) != _PARAMS.size:
            raise RecordError("bill params")
        return cls(*_PARAMS.unpack(raw))

    def body(self) -> bytes:
        """What a SET_PARAMS vote carries: the record without its version."""
        return self.encode()[4:]

    @classmethod
    def from_body(cls, version: int, body: bytes) -> Params:
        if len(body) != _PARAMS.size - 4:
            raise RecordError("bill params body")
        return cls.decode(version.to_bytes(4, "little") + body)

    def valid(self) -> bool:
        return (
            0 <= self.min_tenor_days <= self.max_tenor_days <= 3660
            and 1 <= self.presentment_days <= 366
            and 1 <= self.answer_days <= 366
            and 1 <= self.recourse_answer_days <= 366
            and -720 <= self.tz_offset_min <= 840
            and 0 <= self.weekend_mask < 0x7F  # at least one business weekday
        )


_CAL = struct.Struct(f"<I{calendar_bytes}s")


@dataclasses.dataclass(frozen=True)
class Calendar:
    """``bq/cal<year>``: bit i of ``closed`` (little-endian bit order) = day i of the year
    (0 = 1 January) is not a business day. It says everything for its year: weekends,
    public holidays, and weekend days made working days (调休)."""

    version: int
    closed: bytes  # calendar_bytes

    def encode(self) -> bytes:
        return _CAL.pack(self.version, self.closed)

    @classmethod
    def decode(cls, raw: bytes) -> Calendar:
        if len(raw) != _CAL.size:
            raise RecordError("bill calendar")
        return cls(*_CAL.unpack(raw))

    def is_closed(self, day_of_year: int) -> bool:
        return bool(self.closed[day_of_year >> 3] >> (day_of_year & 7) & 1)


_BALLOT = struct.Struct("<BIQQBB")


@dataclasses.dataclass(frozen=True)
class Ballot:
    """``bv/<ballot>``: a committee vote's content and voters."""

    action: int
    version: int
    height: int  # opened
    timestamp_ms: int
    applied: bool
    voters: tuple[bytes, ...]
    body: bytes

    def encode(self) -> bytes:
        head = _BALLOT.pack(
            self.action, self.version, self.height, self.timestamp_ms, self.applied, len(self.voters)
        )
        return head + b"".join(self.voters) + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Ballot:
        if len(raw) < _BALLOT.size:
            raise RecordError("ballot")
        action, version, height, ms, applied, n = _BALLOT.unpack_from(raw)
        end = _BALLOT.size + 32 * n
        if len(raw) < end or applied > 1:
            raise RecordError("ballot voters")
        voters = tuple(raw[_BALLOT.size + 32 * i : _BALLOT.size + 32 * (i + 1)] for i in range(n))
        return cls(action, version, height, ms, bool(applied), voters, raw[end:])


_TRANSFER = struct.Struct("<B16s16sQQQB")


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One link of the endorsement chain: a delivery, endorsement, discount or rediscount."""

    kind: int  # OfferKind (never PLEDGE: a pledge does not transfer title)
    frm: bytes  # the transferor (liable on recourse to its later parties)
    to: bytes
    height: int
    timestamp_ms: int
    price: int  # discount / rediscount price; 0 otherwise
    restrictive: bool  # the endorser's 不得转让: liable to its own endorsee only


_BILL = struct.Struct("<BB16s16s16sQQQIIB16sB16sQB16sQQBiQ16sQHBB")


@dataclasses.dataclass(frozen=True)
class Bill:
    """``bl/<bill>``. ``holder`` is never empty: the drawer until the payee signs delivery.
    ``face``, the parties, ``maturity_day`` and ``due_day`` never change after issue."""

    kind: int  # BillKind
    not_transferable: bool  # the drawer's 不得转让 mark
    drawer: bytes
    acceptor: bytes
    payee: bytes
    face: int
    issue_height: int
    issue_ms: int
    maturity_day: int  # local day number (days since 1970-01-01 in the chain's time zone)
    due_day: int  # the first business day on or after maturity_day
    state: int  # BillState
    holder: bytes
    offer_kind: int  # OFFERED: OfferKind
    offeree: bytes
    price: int  # OFFERED: discount price or pledge loan
    restrictive: bool  # OFFERED endorsement: the endorser's 不得转让
    pledgee: bytes  # ZERO_ID: not pledged
    loan: int
    presented_ms: int  # PRESENTED/DISHONOURED: when
    late: bool  # presented after the presentment period: recourse against the drawer only
    recourse_at: int  # DISHONOURED: chain index of the next party to claim from (-1: none)
    claim_ms: int  # a pending claim: when (0: none)
    claimed: bytes  # a pending claim: the claimed party
    paid_height: int
    events: int  # history events so far (the next seq)
    dishonour_reason: int
    docs: tuple[tuple[int, bytes], ...]
    chain: tuple[Transfer, ...]

    def encode(self) -> bytes:
        head = _BILL.pack(
            self.kind,
            self.not_transferable,
            self.drawer,
            self.acceptor,
            self.payee,
            self.face,
            self.issue_height,
            self.issue_ms,
            self.maturity_day,
            self.due_day,
            self.state,
            self.holder,
            self.offer_kind,
            self.offeree,
            self.price,
            self.restrictive,
            self.pledgee,
            self.loan,
            self.presented_ms,
            self.late,
            self.recourse_at,
            self.claim_ms,
            self.claimed,
            self.paid_height,
            self.events,
            self.dishonour_reason,
            len(self.docs),
        )
        docs = b"".join(bytes((t,)) + fp for t, fp in self.docs)
        chain = b"".join(
            _TRANSFER.pack(t.kind, t.frm, t.to, t.height, t.timestamp_ms, t.price, t.restrictive)
            for t in self.chain
        )
        return head + docs + bytes((len(self.chain),)) + chain

    @classmethod
    def decode(cls, raw: bytes) -> Bill:
        if len(raw) < _BILL.size:
            raise RecordError("bill")
        *fields, n_docs = _BILL.unpack_from(raw)
        at = _BILL.size
        docs = tuple((raw[at + 33 * i], raw[at + 33 * i + 1 : at + 33 * (i + 1)]) for i in range(n_docs))
        at += 33 * n_docs
        if len(raw) < at + 1:
            raise RecordError("bill docs")
        n_chain = raw[at]
        at += 1
        if len(raw) != at + n_chain * _TRANSFER.size:
            raise RecordError("bill chain")
        chain = tuple(
            Transfer(k, frm, to, h, ms, price, bool(restrictive))
            for k, frm, to, h, ms, price, restrictive in _TRANSFER.iter_unpack(raw[at:])
        )
        f = fields
        for i in (1, 15, 19):  # the booleans
            if f[i] > 1:
                raise RecordError("bill flags")
            f[i] = bool(f[i])
        return _bill(*f, docs, chain)

    @property
    def pledged(self) -> bool:
        return self.pledgee != fc.ZERO_ID

    @property
    def claimant(self) -> bytes:
        """Who presents, claims recourse and is paid first: the pledgee of a pledged bill,
        else the holder."""
        return self.pledgee if self.pledged else self.holder


_bill = maker(Bill)

_EVENT = struct.Struct("<BBQQ16s16sQ32s")


@dataclasses.dataclass(frozen=True)
class Event:
    """``bn/<bill><seq>``: one step of the bill's life, with the tx that made it."""

    kind: int  # EventKind
    aux: int  # by kind: OfferKind, reason, late flag, chain index
    height: int
    timestamp_ms: int
    actor: bytes  # the acting organization
    party: bytes  # the counterparty (offeree, paid-to org, claimed party, ...)
    amount: int
    tx_id: bytes

    def encode(self) -> bytes:
        return _EVENT.pack(
            self.kind,
            self.aux,
            self.height,
            self.timestamp_ms,
            self.actor,
            self.party,
            self.amount,
            self.tx_id,
        )

    @classmethod
    def decode(cls, raw: bytes) -> Event:
        if len(raw) != _EVENT.size:
            raise RecordError("bill event")
        return cls(*_EVENT.unpack(raw))


bill_bytes_max = _BILL.size + 33 * docs_per_bill_max + 1 + endorsements_max * _TRANSFER.size
assert bill_bytes_max < 8192 and endorsements_max < 256
