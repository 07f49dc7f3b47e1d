"""ABS constants: op and refusal codes, roles, hash domains, state keys, records, limits.

What every handler and client builder of the ``abs`` app agrees on (docs/finance.md, "ABS
pools"). Records are packed with ``struct`` (little endian, integers in minor units, rates
in basis points; no floats anywhere) and every decoder checks the length it was given.

State layout: one table, ``ab/``, whose keys carry an 8-byte *book tag* right after the
prefix: the first 8 bytes of the originator organization's id. Every asset id and pool
id starts with its originator's tag, so one placement rule puts an originator's whole book
(assets, cash-flow logs, pools, pool members) on one shard, and every op touches one shard.
(One rule, not one per table: a chain's apps share a bounded number of placement rules,
``apps.placement_rules_max``.)

==============================================  =========================================
``ab/<tag 8>A<asset 16>``                       an underlying asset: terms, servicer,
                                                balances, status, pool
``ab/<tag 8>E<asset 16><seq u32 BE>``           cash-flow event ``seq`` of an asset (the
                                                log; big endian: scans come in order)
``ab/<tag 8>P<pool 16>``                        a pool: criteria, status, trustee, totals
``ab/<tag 8>M<pool 16><asset 16>``              an asset's membership of a pool: its
                                                cut-off balance
==============================================  =========================================
"""

from __future__ import annotations

import dataclasses
import enum
import struct

from tierchain.apps.finance import codes as fc
from tierchain.apps.records import maker
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.errors import Reject

RecordError = fc.RecordError  # a stored value without its record's layout

# --- hash domains (the chain's suite's domain contexts; never change one) -------------------
ABS_ASSET_ID = "tierchain 2026 abs asset id"  # (originator org, contract fingerprint)
ABS_POOL_ID = "tierchain 2026 abs pool id"  # (sender, nonce)
ABS_REFERENCE = "tierchain 2026 abs reference"  # a contract or obligor reference, before keying
DOMAINS = (ABS_ASSET_ID, ABS_POOL_ID, ABS_REFERENCE)

# --- what the abs app claims (tierchain.apps.abs.app) ---------------------------------------
OP_CODES = range(160, 192)
REJECT_CODES = range(352, 416)
ROLES = (apps.Role("originator", 13), apps.Role("servicer", 14))
ORIGINATOR = 1 << 13
SERVICER = 1 << 14
ROLE_BITS = {r.name: 1 << r.bit for r in ROLES}

OP_REGISTER = 160  # originator: register an underlying asset
OP_CASHFLOW = 161  # the asset's servicer: one cash-flow event
OP_SET_SERVICER = 162  # originator (trustee once the pool is in trust): appoint another servicer
OP_POOL_CREATE = 168  # originator: a pool with its eligibility criteria
OP_POOL_SELECT = 169  # originator: select assets into an open pool
OP_POOL_REMOVE = 170  # originator: take assets out of an open pool
OP_POOL_CLOSE = 171  # originator: cut-off; the asset list is final
OP_POOL_TRANSFER = 172  # originator: offer a closed pool to a trustee
OP_POOL_ACCEPT = 173  # the offered trustee: the pool is in trust


class AbsReject(enum.IntEnum):
    """The abs app's refusal codes (352..415). Protocol numbers: never renumber one."""

    ABS_ASSET_EXISTS = 352  # this originator already registered that contract
    ABS_NO_SUCH_ASSET = 353
    ABS_BAD_TERMS = 354  # principal, rate, term, frequency or kind outside the limits
    ABS_NOT_SERVICER = 355  # the sender's organization is not the asset's servicer
    ABS_NOT_ORIGINATOR = 356  # the sender's organization did not originate the asset / pool
    ABS_STALE_SEQUENCE = 357  # an event whose sequence number is not the asset's next
    ABS_OUT_OF_ORDER = 358  # a value date before the asset's start or its last event
    ABS_FUTURE_DATED = 359  # a value date after the block time
    ABS_EXCEEDS_OUTSTANDING = 360  # principal beyond the outstanding, recovery beyond the loss
    ABS_BAD_STATE = 361  # an event the asset's status does not allow
    ABS_BAD_PERIOD = 362  # a repayment of an installment other than the next one
    ABS_BAD_AMOUNT = 363  # amounts an event kind does not take (zero, interest on a default...)
    ABS_EVENTS_FULL = 364  # the asset's log holds events_per_asset_max events
    ABS_NO_SUCH_POOL = 365
    ABS_POOL_EXISTS = 366
    ABS_POOL_NOT_OPEN = 367  # selection, removal or close of a pool already closed
    ABS_POOL_NOT_CLOSED = 368  # a transfer of a pool still open
    ABS_POOL_EMPTY = 369  # a close of a pool without assets
    ABS_POOL_FULL = 370  # the pool's max_assets (or its cut-off total's bound) is reached
    ABS_ALREADY_POOLED = 371  # the asset is in a pool (this one or another): duplicate pooling
    ABS_NOT_IN_POOL = 372  # a removal of an asset that is not in this pool
    ABS_DUPLICATE_ASSET = 373  # one asset named twice in one transaction
    ABS_INELIGIBLE_KIND = 374
    ABS_INELIGIBLE_PRINCIPAL = 375  # outstanding principal above the pool's max single principal
    ABS_INELIGIBLE_RATE = 376
    ABS_INELIGIBLE_TERM = 377  # remaining term above the pool's maximum
    ABS_INELIGIBLE_STATUS = 378  # overdue, defaulted or paid off at selection
    ABS_BAD_CRITERIA = 379  # a pool's criteria out of range (min above max...)
    ABS_NOT_TRUSTEE = 380  # not the pool's (offered) trustee
    ABS_NOT_OFFERED = 381  # an acceptance of a pool not offered to a trust
    ABS_IN_TRUST = 382  # the pool is in trust: the originator no longer acts on it
    ABS_SAME_SERVICER = 383  # an appointment of the asset's current servicer


Code = Reject | fc.FinanceReject | AbsReject


def reject_of(code: int) -> Code:
    """A receipt's numeric ``code`` as a named member: the abs app's, finance's (membership:
    the abs ops refuse with finance's codes) or the engine's (ValueError for another code)."""
    if code in AbsReject._value2member_map_:
        return AbsReject(code)
    return fc.reject_of(code)


def reject_named(name: str) -> Code:
    """The member a code name (as the API shows it) stands for; KeyError for an unknown name."""
    return AbsReject[name] if name in AbsReject.__members__ else fc.reject_named(name)


# --- enums (protocol numbers) -----------------------------------------------------------------
class AssetKind(enum.IntEnum):
    LOAN = 1  # consumer or auto loan
    RECEIVABLE = 2  # trade receivable
    LEASE = 3  # finance lease


class AssetStatus(enum.IntEnum):
    PERFORMING = 1
    OVERDUE = 2  # in arrears (cured by the next scheduled repayment)
    DEFAULTED = 3  # charged off: its outstanding principal moved to ``defaulted``
    PAID_OFF = 4  # outstanding principal 0 by repayments and prepayments


class EventKind(enum.IntEnum):
    REPAYMENT = 1  # scheduled installment ``aux``: principal and interest parts
    PREPAYMENT = 2  # principal paid ahead of schedule (and interest on it)
    OVERDUE = 3  # ``principal`` = the amount in arrears, ``aux`` = days past due
    DEFAULT = 4  # ``principal`` = the whole outstanding, charged off
    RECOVERY = 5  # ``principal`` = an amount recovered on the charged-off principal


class PoolStatus(enum.IntEnum):
    OPEN = 1  # assets are selected and removed
    CLOSED = 2  # cut-off: the asset list is final
    OFFERED = 3  # offered to a trustee
    IN_TRUST = 4  # accepted by the trustee


# --- limits ----------------------------------------------------------------------------------
id_bytes = 16
tag_bytes = 8
fingerprint_bytes = 32
amount_max = fc.amount_max  # an amount, a principal, and every running sum of one asset or pool
rate_bp_max = 10_000  # 100% a year
term_months_max = 600
events_per_asset_max = 2_000  # 600 monthly installments with room for arrears and recoveries
days_past_due_max = 36_600
pool_assets_max = 50_000
pool_name_bytes_max = 64
select_per_tx_max = 14  # keys: fk fo pool + asset and member per asset
servicer_assets_per_tx_max = 24  # keys: fk fo new servicer org, pool + one per asset
KIND_MASK_ALL = sum(1 << k for k in AssetKind)
ZERO_ID = bytes(id_bytes)
assert 3 + 2 * select_per_tx_max <= 32 and 4 + servicer_assets_per_tx_max <= 32


# --- keys ---------------------------------------------------------------------------------
PREFIX = b"ab/"
_SEQ = struct.Struct(">I")


def asset_key(asset_id: bytes) -> bytes:
    return PREFIX + asset_id[:tag_bytes] + b"A" + asset_id


def event_key(asset_id: bytes, seq: int) -> bytes:
    return PREFIX + asset_id[:tag_bytes] + b"E" + asset_id + _SEQ.pack(seq)


def events_prefix(asset_id: bytes) -> bytes:
    return PREFIX + asset_id[:tag_bytes] + b"E" + asset_id


def pool_key(pool_id: bytes) -> bytes:
    return PREFIX + pool_id[:tag_bytes] + b"P" + pool_id


def member_key(pool_id: bytes, asset_id: bytes) -> bytes:
    return PREFIX + pool_id[:tag_bytes] + b"M" + pool_id + asset_id


def members_prefix(pool_id: bytes) -> bytes:
    return PREFIX + pool_id[:tag_bytes] + b"M" + pool_id


def book_prefix(org_id: bytes, table: bytes) -> bytes:
    """An originator's assets (``b"A"``) or pools (``b"P"``): filter by originator, since
    two organizations could share a tag."""
    return PREFIX + org_id[:tag_bytes] + table


# --- ids (the chain's suite's hashes) ----------------------------------------------------------
def asset_id(originator: bytes, contract_fp: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """An asset's id: the originator's book tag, then 8 bytes of a hash of its contract
    fingerprint, so one originator registers one contract once (``ABS_ASSET_EXISTS``)."""
    return originator[:tag_bytes] + suite.hash(ABS_ASSET_ID, originator + contract_fp)[: id_bytes - tag_bytes]


def pool_id(originator: bytes, sender: bytes, nonce: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """A pool's id: the originator's book tag, then 8 bytes of (sender, nonce)'s hash."""
    tail = suite.hash(ABS_POOL_ID, sender + nonce.to_bytes(8, "little"))[: id_bytes - tag_bytes]
    return originator[:tag_bytes] + tail


def reference_fingerprint(
    key: bytes, reference: str | bytes, *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """A keyed fingerprint of a contract number or an obligor's identity (32 bytes): what the
    chain stores instead of the reference. ``key`` (32 bytes) is the originator's own secret:
    without it nobody can test a guessed identity against the chain; with it the originator
    (or whom it gives the key: the trustee, the regulator) re-derives and checks one."""
    if len(key) != 32:
        raise ValueError("a reference key is 32 bytes")
    raw = reference.encode() if isinstance(reference, str) else reference
    return suite.keyed_hash(key, suite.hash(ABS_REFERENCE, raw))


# --- records ------------------------------------------------------------------------------
# Handlers decode and rebuild these records on every op: large ones are built with
# ``tierchain.apps.records.maker`` and changed with ``records.evolve`` (plain fields only:
# no ``__post_init__``, no ``init=False``, no slots).


_ASSET = struct.Struct("<16s16sBQIQHH32s32s16sQQBQQQQQHIIQ16s")


@dataclasses.dataclass(frozen=True)
class Asset:
    """``ab/<tag>A<asset>``. Invariant (checked by every op that writes it):
    ``principal == repaid + outstanding + defaulted`` and ``recovered <= defaulted``."""

    originator: bytes
    servicer: bytes
    kind: int
    principal: int  # original principal
    rate_bp: int  # annual rate, basis points
    start_ms: int
    term_months: int
    freq_months: int  # months between installments (term_months for a bullet)
    contract_fp: bytes  # keyed fingerprint of the contract reference (fixes the id)
    obligor_fp: bytes  # keyed fingerprint of the obligor's identity
    file_id: bytes  # the sharing app's encrypted asset file (record id), or zero
    registered_height: int
    registered_ms: int
    status: int = AssetStatus.PERFORMING
    outstanding: int = 0
    repaid: int = 0  # principal repaid: scheduled parts and prepayments
    interest: int = 0  # interest collected
    defaulted: int = 0  # principal charged off at default
    recovered: int = 0  # recovered on the charged-off principal
    periods_paid: int = 0  # scheduled installments paid, in order
    days_past_due: int = 0  # while OVERDUE
    events: int = 0  # the next event's sequence number
    last_ms: int = 0  # the last event's value date
    pool: bytes = ZERO_ID

    def encode(self) -> bytes:
        return _ASSET.pack(
            self.originator, self.servicer, self.kind, self.principal, self.rate_bp, self.start_ms,
            self.term_months, self.freq_months, self.contract_fp, self.obligor_fp, self.file_id,
            self.registered_height, self.registered_ms, self.status, self.outstanding, self.repaid,
            self.interest, self.defaulted, self.recovered, self.periods_paid, self.days_past_due,
            self.events, self.last_ms, self.pool,
        )  # fmt: skip

    @classmethod
    def decode(cls, raw: bytes) -> Asset:
        if len(raw) != _ASSET.size:
            raise RecordError("abs asset")
        return _asset(*_ASSET.unpack(raw))

    @property
    def installments(self) -> int:
        return self.term_months // self.freq_months

    @property
    def remaining_months(self) -> int:
        """Remaining term by the schedule: the months of the installments not yet paid."""
        return self.term_months - self.periods_paid * self.freq_months

    @property
    def loss(self) -> int:
        """Charged-off principal not (yet) recovered."""
        return self.defaulted - self.recovered

    def balanced(self) -> bool:
        return (
            self.principal == self.repaid + self.outstanding + self.defaulted
            and 0 <= self.recovered <= self.defaulted
            and min(self.outstanding, self.repaid, self.defaulted) >= 0
        )


_EVENT = struct.Struct("<BQQQIQQQ32s")


@dataclasses.dataclass(frozen=True)
class Event:
    """``ab/<tag>E<asset><seq>``: one cash-flow event as recorded, with the outstanding
    principal after it and the tx that recorded it (fetch it to check the servicer's signature)."""

    kind: int
    value_ms: int  # when it happened (value date), in order per asset, not after the block time
    principal: int  # by kind: principal part, prepaid, arrears, charged off, recovered
    interest: int  # interest collected (repayment, prepayment); else 0
    aux: int  # REPAYMENT: installment number; OVERDUE: days past due; else 0
    outstanding_after: int
    height: int
    block_ms: int
    tx_id: bytes

    def encode(self) -> bytes:
        return _EVENT.pack(
            self.kind, self.value_ms, self.principal, self.interest, self.aux, self.outstanding_after,
            self.height, self.block_ms, self.tx_id,
        )  # fmt: skip

    @classmethod
    def decode(cls, raw: bytes) -> Event:
        if len(raw) != _EVENT.size:
            raise RecordError("abs event")
        return cls(*_EVENT.unpack(raw))


_CRITERIA = struct.Struct("<QIIHBI")


@dataclasses.dataclass(frozen=True)
class Criteria:
    """A pool's eligibility criteria, checked per asset at selection (besides: the asset's
    originator is the pool's, it is PERFORMING, and it is in no pool)."""

    max_principal: int  # max single outstanding principal
    min_rate_bp: int
    max_rate_bp: int
    max_remaining_months: int
    kinds: int  # bit (1 << AssetKind) per allowed kind
    max_assets: int

    def encode(self) -> bytes:
        return _CRITERIA.pack(*_criteria_values(self))

    @classmethod
    def decode(cls, raw: bytes) -> Criteria:
        if len(raw) != _CRITERIA.size:
            raise RecordError("abs criteria")
        return cls(*_CRITERIA.unpack(raw))

    def valid(self) -> bool:
        return (
            1 <= self.max_principal <= amount_max
            and 0 <= self.min_rate_bp <= self.max_rate_bp <= rate_bp_max
            and 1 <= self.max_remaining_months <= term_months_max
            and self.kinds and not self.kinds & ~KIND_MASK_ALL
            and 1 <= self.max_assets <= pool_assets_max
        )  # fmt: skip

    def allows_kind(self, kind: int) -> bool:
        return bool(self.kinds >> kind & 1) if 0 <= kind < 8 else False


def _criteria_values(cr: Criteria) -> tuple[int, ...]:
    return cr.max_principal, cr.min_rate_bp, cr.max_rate_bp, cr.max_remaining_months, cr.kinds, cr.max_assets


_POOL = struct.Struct("<16s16sB" + _CRITERIA.format[1:] + "IQQQQQB")


@dataclasses.dataclass(frozen=True)
class Pool:
    """``ab/<tag>P<pool>``: ``cutoff_balance`` is the sum of its members' outstanding
    principal at selection (the balance transferred to the trust)."""

    originator: bytes
    trustee: bytes  # the offered or accepting trustee; zero before an offer
    status: int
    criteria: Criteria
    assets: int
    cutoff_balance: int
    created_height: int
    created_ms: int
    closed_ms: int
    trust_ms: int  # accepted by the trustee
    name: bytes

    def encode(self) -> bytes:
        head = _POOL.pack(
            self.originator, self.trustee, self.status, *_criteria_values(self.criteria),
            self.assets, self.cutoff_balance, self.created_height, self.created_ms, self.closed_ms,
            self.trust_ms, len(self.name),
        )  # fmt: skip
        return head + self.name

    @classmethod
    def decode(cls, raw: bytes) -> Pool:
        if len(raw) < _POOL.size:
            raise RecordError("abs pool")
        f = _POOL.unpack_from(raw)
        if len(raw) != _POOL.size + f[-1]:
            raise RecordError("abs pool name")
        return cls(f[0], f[1], f[2], Criteria(*f[3:9]), *f[9:15], raw[_POOL.size :])


_asset = maker(Asset)

_MEMBER = struct.Struct("<QQQ")


@dataclasses.dataclass(frozen=True)
class Member:
    """``ab/<tag>M<pool><asset>``: the asset's outstanding principal when selected."""

    cutoff_balance: int
    height: int
    block_ms: int

    def encode(self) -> bytes:
        return _MEMBER.pack(self.cutoff_balance, self.height, self.block_ms)

    @classmethod
    def decode(cls, raw: bytes) -> Member:
        if len(raw) != _MEMBER.size:
            raise RecordError("abs member")
        return cls(*_MEMBER.unpack(raw))
