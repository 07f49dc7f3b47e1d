"""Finance constants, state keys, ids and record codecs (docs/finance.md).

Everything a handler and a client builder must agree on lives here: op codes,
the state layout (one short prefix per table, keys at most
``limits.key_bytes_max`` bytes), deterministic ids, and the fixed binary
layout of each record. Records are packed with ``struct`` (little endian,
integers in minor units; no floats anywhere), and every decoder checks the
length it was given, so a damaged value fails loudly instead of being misread.

State layout:

==========================  ==================================================
``fk/<public key 32>``      key -> organization, status (active / revoked)
``fo/<org id 16>``          organization: roles, status, active key count, name
``fp/params``               consortium parameters (threshold, limits)
``fq/<proposal id 16>``     committee proposal: action, voters, status
``fd/<doc type 1><fp 32>``  anchored document; the voucher an invoice backs
``fv/<voucher id 16>``      voucher: obligor, face, maturity, documents, status
``fx/<piece id 16>``        piece: voucher, parent, root, depth, amount, holder,
                            state, children count, history (lineage index)
``fc/<voucher 16><n u16>``  clearing list of settlement batch n
``fr/<blinded fp 32>``      duplicate-financing registry: value, total financed
``fl/<ref digest 32>``      one bank's own direct financing (unlinkable to fr/)
``fm/<shard u16><digest 32>`` the same, placed on its registry entry's shard (a cluster)
``fg/<type 1><fp 32><tag 8>`` a claim of an anchored document for the lineage ``tag``,
                            pending at the document's shard (claims.py)
``fe/<tag 8><type 1><fp 32>`` the claim, carried to the lineage's shard
``fy/<piece id 16>``        a confidential piece's amount: limb commitments and
                            regulator handles, the holder's sealed opening
``fw/<piece id 16>``        a confidential piece's pending offer (or pledge's loan)
``fs/<blinded fp 32>``      confidential registry: value commitments, financed
``fz/regulator``            the regulator's ElGamal key (committee vote)
==========================  ==================================================
"""

from __future__ import annotations

import dataclasses
import enum
import struct

from tierchain import limits
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.errors import Reject, TierChainError

# --- hash domains (the chain's suite's domain contexts: BLAKE3 derive-key, or SM3's domain
# hash on an sm2-sm3 chain; never change one: it changes every id) ---------------------------
FIN_ORG_ID = "tierchain 2026 finance organization id"
FIN_OBJECT_ID = "tierchain 2026 finance object id"  # proposals, vouchers: (sender, nonce)
FIN_PIECE_ID = "tierchain 2026 finance piece id"  # (parent piece, index)
FIN_REGISTRY_KEY = "tierchain 2026 finance registry blinding key"  # from the consortium secret
FIN_FINANCING_REF = "tierchain 2026 finance financing ref"
FIN_DOCUMENT = "tierchain 2026 finance document fingerprint"
DOMAINS = (FIN_ORG_ID, FIN_OBJECT_ID, FIN_PIECE_ID, FIN_REGISTRY_KEY, FIN_FINANCING_REF, FIN_DOCUMENT)


class FinanceReject(enum.IntEnum):
    """The finance app's refusal codes (its ``reject_codes``, 96..159; docs/finance.md,
    "Error codes"). Protocol numbers like the engine's ``tierchain.errors.Reject``: never
    renumber one, only add. Receipts keep the number; the app set names it
    (``AppSet.reject_name``), and ``reject_of`` turns a receipt's code into an enum member."""

    NOT_A_MEMBER = 96  # the sender key belongs to no organization
    KEY_REVOKED = 97  # the sender key was revoked
    ROLE_MISSING = 98  # the sender's organization lacks the role the op needs
    ORG_INACTIVE = 99
    NOT_COMMITTEE = 100  # proposals and votes need the committee account role
    PROPOSAL_CLOSED = 101  # already executed
    ALREADY_VOTED = 102
    NO_SUCH_PROPOSAL = 103
    ORG_EXISTS = 104
    KEY_IN_USE = 105  # the key already belongs to an organization (or was revoked)
    NO_SUCH_ORG = 106
    NO_SUCH_KEY = 107  # not a key of the sender's organization
    LAST_KEY = 108  # an organization keeps at least one active key
    DOC_EXISTS = 109
    NO_SUCH_DOC = 110
    INVOICE_ALREADY_USED = 111  # one invoice backs one receivable
    NO_INVOICE = 112  # a confirmation needs at least one anchored invoice
    VOUCHER_EXISTS = 113
    NO_SUCH_VOUCHER = 114
    NO_SUCH_PIECE = 115
    NOT_HOLDER = 116
    PIECE_LOCKED = 117  # pledged or financed: cannot be split or moved
    PIECE_PENDING = 118  # an offer awaits the counterparty
    PIECE_CLOSED = 119  # split or settled
    SPLIT_SUM_MISMATCH = 120
    PIECE_TOO_SMALL = 121
    SPLIT_TOO_DEEP = 122
    NOT_OFFEREE = 123
    NOT_OFFERED = 124
    MATURED = 125  # the voucher has matured (or is overdue): pieces no longer move
    NOT_MATURED = 126
    VOUCHER_SETTLED = 127
    NOT_OBLIGOR = 128
    NOT_LENDER = 129
    LOAN_NOT_DUE = 130
    EXCEEDS_ASSET_VALUE = 131  # duplicate-financing registry: it does not fit
    ASSET_EXISTS = 132
    NO_SUCH_ASSET = 133
    NO_SUCH_FINANCING = 134
    HISTORY_FULL = 135
    BAD_COUNTERPARTY = 136  # offer to itself, or to an organization without the needed role
    BAD_VOUCHER_STATE = 137  # overdue/default transitions out of order
    NOT_PLEDGED = 138
    DOC_NOT_FROM_PARTY = 139  # an invoice or contract anchored by neither party of the receivable
    # --- confidential amounts (apps/finance/confidential.py, docs/privacy.md) ---
    CONFIDENTIAL_PIECE = 140  # a plaintext op on a confidential piece or voucher
    NOT_CONFIDENTIAL = 141  # a confidential op on a plaintext piece
    NO_REGULATOR_KEY = 142  # confidential amounts need the regulator's key (committee vote)
    REGULATOR_KEY_MISMATCH = 143  # the amounts were encrypted to another regulator key
    BAD_RECIPIENT = 144  # the opening's recipient is not an active key of the holder's organization
    STALE_REGISTRY = 145  # a confidential financing's proof is about another registry state
    VOUCHER_ASSET = 146  # a confidential voucher's asset is financed through its pieces only
    # --- documents across shards (apps/finance/claims.py, docs/sharding.md) ---
    CLAIM_MISMATCH = 147  # a carried claim names another claimant, beneficiary or asset


# What a finance transaction's outcome is called: an engine code or the app's own.
Code = Reject | FinanceReject


def reject_of(code: int) -> Code:
    """A receipt's or an admission's numeric ``code`` as a named member: the finance app's
    (``FinanceReject``) or the engine's (``Reject``; ValueError for a code neither names)."""
    if code in FinanceReject._value2member_map_:
        return FinanceReject(code)
    return Reject(code)


def reject_named(name: str) -> Code:
    """The member a code name (as the API shows it) stands for; KeyError for an unknown name."""
    return FinanceReject[name] if name in FinanceReject.__members__ else Reject[name]


# --- what the finance app claims (tierchain.apps.finance.app) ----------------------------------
OP_CODES = range(16, 64)
REJECT_CODES = range(96, 160)  # FinanceReject: NOT_A_MEMBER .. (96..159)
# Organization roles: bits 2..11 of the roles mask (0, 1: the accounts app; 12: xshard).
ROLES = tuple(
    apps.Role(name, bit)
    for bit, name in enumerate(
        (
            "core_enterprise",
            "supplier",
            "bank",
            "warehouse",
            "logistics",
            "rating_agency",
            "investor",
            "trustee",
            "auditor",
            "regulator",
        ),
        start=2,
    )
)
# Lineage tables: prefix + 8-byte lineage tag + rest routes by the tag (see voucher_id).
LINEAGE_PREFIXES = (b"fv/", b"fx/", b"fc/", b"fr/", b"fy/", b"fs/", b"fw/", b"fe/")
# Document tables: an anchor and its pending claims route by (type, fingerprint), so a claim
# is written where its document is (apps/finance/claims.py).
DOC_PREFIXES = (b"fd/", b"fg/")
doc_tag_bytes = 32  # type + the first 31 bytes of the fingerprint (a tag is at most 32)
# A bank's financing record placed on a cluster: pinned to its registry entry's shard (the
# shard number, not the entry's tag, so the record stays unlinkable to its entry).
PLACED_FINANCING_PREFIX = b"fm/"
# Consortium tables: on every shard of a cluster (a replicated placement rule), written by
# the committee and the organizations on the primary shard, copied to the others by the
# replication op, so that a lineage's ops on any shard read the same organizations, keys,
# parameters and regulator key (docs/sharding.md "Replicated records").
REPLICATED_PREFIXES = (b"fk/", b"fo/", b"fp/", b"fq/", b"fn/", b"fz/")

# --- op codes (protocol: never renumber) -------------------------------------
OP_PROPOSE = 16
OP_VOTE = 17
OP_KEY_ADD = 18
OP_KEY_REVOKE = 19
OP_KEY_ROTATE = 20
OP_ANCHOR = 24
OP_CLAIM = 25  # documents across shards (apps/finance/claims.py)
OP_CARRY = 26
OP_CONFIRM = 32
OP_SPLIT = 33
OP_OFFER = 34
OP_ACCEPT = 35
OP_RETURN = 36
OP_PLEDGE_RELEASE = 37
OP_PLEDGE_DEFAULT = 38
OP_SETTLE = 39
OP_MARK_OVERDUE = 40
OP_MARK_DEFAULT = 41
OP_CCONFIRM = 42  # confidential vouchers (apps/finance/confidential.py)
OP_CSPLIT = 43
OP_COFFER = 44
OP_REG_ASSET = 48
OP_REG_FINANCE = 49
OP_REG_RELEASE = 50
OP_CREG_ASSET = 51  # the confidential registry (apps/finance/cregistry.py)
OP_CREG_FINANCE = 52
OP_CREG_RELEASE = 53

# --- limits --------------------------------------------------------------------
org_name_bytes_max = 64
docs_per_voucher_max = 8
split_ways_max = 8
piece_history_max = 64  # events kept per piece; offers and splits past it get HISTORY_FULL
settle_pieces_per_tx_max = 24  # 32 keys - sender key/org/voucher/clearing/registry
votes_max = 64
csplit_ways_max = 4  # a confidential split's 2..4 pieces: their 8 limbs are one range proof
# A confidential settlement reads each piece's amount too: fk fo fv fc fc-1 fy/voucher fs + 2 a piece.
csettle_pieces_per_tx_max = 12
id_bytes = 16
amount_max = (1 << 63) - 1
assert settle_pieces_per_tx_max + 5 <= limits.tx_keys_max
assert 2 * csettle_pieces_per_tx_max + 7 <= limits.tx_keys_max
assert 3 + 2 + 1 + split_ways_max + 1 <= limits.tx_keys_max  # split: fk fo fp fv parent children
assert 4 + 3 + docs_per_voucher_max + 1 <= limits.tx_keys_max  # confirm


class DocType(enum.IntEnum):
    CONTRACT = 1
    INVOICE = 2
    WAYBILL = 3
    WAREHOUSE_RECEIPT = 4
    DELIVERY_NOTE = 5


class Action(enum.IntEnum):
    ADMIT_ORG = 1
    SET_ROLES = 2
    SET_PARAMS = 3
    # A consensus validator's voting power (0 removes it): a replicated chain hands it to
    # CometBFT as a validator update (tierchain.replication, docs/replication.md).
    SET_VALIDATOR = 4
    # The regulator's ElGamal public key: every confidential amount is encrypted to it
    # (docs/privacy.md, "Regulator see-through").
    SET_REGULATOR_KEY = 5


class VoucherStatus(enum.IntEnum):
    ACTIVE = 1
    OVERDUE = 2
    DEFAULTED = 3
    SETTLED = 4


class PieceState(enum.IntEnum):
    ACTIVE = 1
    OFFERED = 2  # a transfer, discount or pledge offer awaits the counterparty
    PLEDGED = 3
    FINANCED = 4  # sold to a bank at a discount, or taken by a lender on default
    SPLIT = 5  # closed: replaced by its children
    SETTLED = 6  # closed: paid at settlement


class OfferKind(enum.IntEnum):
    TRANSFER = 1
    DISCOUNT = 2
    PLEDGE = 3


class Event(enum.IntEnum):
    """Kinds of per-piece history records (the lineage index)."""

    ISSUED = 1
    CREATED_BY_SPLIT = 2
    SPLIT = 3
    OFFERED = 4
    ACCEPTED = 5
    RETURNED = 6
    DISCOUNTED = 7
    PLEDGED = 8
    RELEASED = 9
    DEFAULT_TRANSFERRED = 10
    SETTLED = 11


class KeyStatus(enum.IntEnum):
    ACTIVE = 1
    REVOKED = 2


ZERO_ID = bytes(id_bytes)


# --- keys ----------------------------------------------------------------------
def key_key(public_key: bytes) -> bytes:
    return b"fk/" + public_key


def org_key(org_id: bytes) -> bytes:
    return b"fo/" + org_id


PARAMS_KEY = b"fp/params"


def validator_key(public_key: bytes) -> bytes:
    """A consensus validator's voting power (u64 LE), set by a committee vote."""
    return b"fn/" + public_key


def proposal_key(proposal_id: bytes) -> bytes:
    return b"fq/" + proposal_id


def doc_key(doc_type: int, fingerprint: bytes) -> bytes:
    return b"fd/" + bytes((doc_type,)) + fingerprint


def voucher_key(voucher_id: bytes) -> bytes:
    return b"fv/" + voucher_id


def piece_key(piece_id: bytes) -> bytes:
    return b"fx/" + piece_id


def clearing_key(voucher_id: bytes, batch: int) -> bytes:
    return b"fc/" + voucher_id + batch.to_bytes(2, "little")


def registry_key(blinded: bytes) -> bytes:
    return b"fr/" + blinded


def camount_key(piece_id: bytes) -> bytes:
    """A confidential piece's amount (``CPieceAmount``)."""
    return b"fy/" + piece_id


def coffer_key(piece_id: bytes) -> bytes:
    """A confidential piece's pending offer (``confidential.Offer``): the opening sealed to the
    offeree, and for a discount or pledge the price's confidential amount."""
    return b"fw/" + piece_id


def cregistry_key(blinded: bytes) -> bytes:
    """The confidential registry's entry of an asset (``CRegistryEntry``)."""
    return b"fs/" + blinded


REGULATOR_KEY = b"fz/regulator"


def financing_key(ref_digest: bytes) -> bytes:
    return b"fl/" + ref_digest


def placed_financing_key(shard: int, ref_digest: bytes) -> bytes:
    """A bank's financing record on a cluster: on ``shard``, its registry entry's."""
    return PLACED_FINANCING_PREFIX + shard.to_bytes(2, "little") + ref_digest


def pending_claim_key(doc_type: int, fingerprint: bytes, tag: bytes) -> bytes:
    """A claim of document (type, fingerprint) for lineage ``tag``, where the document is."""
    return b"fg/" + bytes((doc_type,)) + fingerprint + tag


def claim_key(tag: bytes, doc_type: int, fingerprint: bytes) -> bytes:
    """The claim, carried to the shard of lineage ``tag``."""
    return b"fe/" + tag + bytes((doc_type,)) + fingerprint


# --- ids -------------------------------------------------------------------------
# Every id and digest below is the chain's crypto suite's (``suite``: ``ctx.suite`` in a
# handler, ``Finance.suite`` in a client; docs/national-crypto.md). The default suite's are
# the ids every existing ed25519-blake3 chain holds: never change how they are computed.
def _h(context: str, *parts: bytes, suite: CryptoSuite) -> bytes:
    # Length-prefixed parts hashed as one input: the same bytes as streaming each part into
    # the suite's hasher (BLAKE3 derive-key is incremental), in one native call.
    return suite.hash(context, b"".join(len(p).to_bytes(4, "little") + p for p in parts))


def org_id(name: str | bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """An organization's id: its name (UTF-8), hashed; names are unique in the consortium."""
    return _h(FIN_ORG_ID, name.encode() if isinstance(name, str) else name, suite=suite)[:id_bytes]


def object_id(sender: bytes, nonce: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """Id of what a tx creates (proposal, voucher = its root piece): known before signing."""
    return _h(FIN_OBJECT_ID, sender, nonce.to_bytes(8, "little"), suite=suite)[:id_bytes]


# A voucher's lineage tag: the first ``lineage_tag_bytes`` of every id in its lineage
# (voucher = root piece, every descendant piece) and of its registry fingerprint. The
# shard router places ``fv/ fx/ fc/ fr/`` keys by this tag alone, so a whole lineage and
# its registry entry live on one shard: the shard of the root asset (docs/sharding.md).
lineage_tag_bytes = 8


def voucher_id(blinded: bytes, sender: bytes, nonce: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """Id of the voucher (and root piece) a confirmation creates: the registry
    fingerprint's lineage tag, then 8 bytes of ``object_id(sender, nonce)``."""
    tail = object_id(sender, nonce, suite=suite)[: id_bytes - lineage_tag_bytes]
    return blinded[:lineage_tag_bytes] + tail


def child_id(parent: bytes, index: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """Id of a split's ``index``-th child: the parent's lineage tag, then 8 hash bytes."""
    tail = _h(FIN_PIECE_ID, parent, bytes((index,)), suite=suite)[: id_bytes - lineage_tag_bytes]
    return parent[:lineage_tag_bytes] + tail


def financing_ref_digest(
    blinded: bytes, bank_org: bytes, ref: bytes, *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """Key of one bank's own financing record: without the bank and its ref, unlinkable to fr/."""
    return _h(FIN_FINANCING_REF, blinded, bank_org, ref, suite=suite)


# --- records -----------------------------------------------------------------------
class RecordError(TierChainError, ValueError):
    """A stored value does not have its record's layout (a bug or a damaged database)."""


_KEYREC = struct.Struct("<16sBQQ")


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    org: bytes
    status: int
    added_height: int
    revoked_height: int = 0

    def encode(self) -> bytes:
        return _KEYREC.pack(self.org, self.status, self.added_height, self.revoked_height)

    @classmethod
    def decode(cls, raw: bytes) -> KeyRecord:
        if len(raw) != _KEYREC.size:
            raise RecordError("key record")
        return cls(*_KEYREC.unpack(raw))


_ORG = struct.Struct("<IBHQB")


@dataclasses.dataclass(frozen=True)
class OrgRecord:
    roles: int
    status: int  # 1 active
    keys_active: int
    admitted_height: int
    name: bytes

    def encode(self) -> bytes:
        return _ORG.pack(self.roles, self.status, self.keys_active, self.admitted_height, len(self.name)) + (
            self.name
        )

    @classmethod
    def decode(cls, raw: bytes) -> OrgRecord:
        if len(raw) < _ORG.size:
            raise RecordError("org record")
        roles, status, keys, height, n = _ORG.unpack_from(raw)
        if len(raw) != _ORG.size + n:
            raise RecordError("org record name")
        return cls(roles, status, keys, height, raw[_ORG.size :])


_PARAMS = struct.Struct("<BBQQ")


@dataclasses.dataclass(frozen=True)
class Params:
    threshold: int = 1  # committee votes that execute a proposal
    max_depth: int = 8  # splits from the root piece
    min_piece: int = 100  # minor units
    default_grace_ms: int = 30 * 86_400_000  # after maturity, overdue may be declared a default

    def encode(self) -> bytes:
        return _PARAMS.pack(self.threshold, self.max_depth, self.min_piece, self.default_grace_ms)

    @classmethod
    def decode(cls, raw: bytes | None) -> Params:
        if raw is None:
            return cls()
        if len(raw) != _PARAMS.size:
            raise RecordError("params")
        return cls(*_PARAMS.unpack(raw))

    def valid(self) -> bool:
        return 1 <= self.threshold <= votes_max and 1 <= self.max_depth <= 32 and self.min_piece >= 1


_PROP = struct.Struct("<BBQB")


@dataclasses.dataclass(frozen=True)
class Proposal:
    action: int
    executed: bool
    created_height: int
    voters: tuple[bytes, ...]
    body: bytes  # the action's payload

    def encode(self) -> bytes:
        head = _PROP.pack(self.action, self.executed, self.created_height, len(self.voters))
        return head + b"".join(self.voters) + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Proposal:
        if len(raw) < _PROP.size:
            raise RecordError("proposal")
        action, executed, height, n = _PROP.unpack_from(raw)
        end = _PROP.size + 32 * n
        if len(raw) < end:
            raise RecordError("proposal voters")
        voters = tuple(raw[_PROP.size + 32 * i : _PROP.size + 32 * i + 32] for i in range(n))
        return cls(action, bool(executed), height, voters, raw[end:])


_DOC = struct.Struct("<16s32sQQ32s16s")


@dataclasses.dataclass(frozen=True)
class DocRecord:
    org: bytes  # submitter organization
    signer: bytes  # submitter key: the anchoring tx is signed by it
    height: int
    timestamp_ms: int
    tx_id: bytes  # fetch it (Chain.tx) to check the signature later
    voucher: bytes = ZERO_ID  # the voucher this document backs (invoices: at most one)

    def encode(self) -> bytes:
        return _DOC.pack(self.org, self.signer, self.height, self.timestamp_ms, self.tx_id, self.voucher)

    @classmethod
    def decode(cls, raw: bytes) -> DocRecord:
        if len(raw) != _DOC.size:
            raise RecordError("doc record")
        return cls(*_DOC.unpack(raw))


_CLAIM = struct.Struct("<16s16s32sQ32s")


@dataclasses.dataclass(frozen=True)
class Claim:
    """A document claimed for a lineage on another shard (``fg/`` pending, ``fe/`` carried;
    apps/finance/claims.py): who claimed it for whom, the asset an invoice is bound to
    (``blinded``; zero for a plain citation), the claim's height and tx, and the anchor's
    record as the claim saw it."""

    claimant: bytes  # organization that will confirm (or draw) with the document
    beneficiary: bytes  # the other party the document may be anchored by
    blinded: bytes  # the invoice's asset (registry fingerprint); ZERO_BLINDED: cited only
    height: int
    tx_id: bytes
    doc: DocRecord

    def encode(self) -> bytes:
        head = _CLAIM.pack(self.claimant, self.beneficiary, self.blinded, self.height, self.tx_id)
        return head + self.doc.encode()

    @classmethod
    def decode(cls, raw: bytes) -> Claim:
        if len(raw) != _CLAIM.size + _DOC.size:
            raise RecordError("claim record")
        return cls(*_CLAIM.unpack_from(raw), DocRecord.decode(raw[_CLAIM.size :]))


ZERO_BLINDED = bytes(32)


_VOUCHER = struct.Struct("<16s16sQQQQBQH32sB")


@dataclasses.dataclass(frozen=True)
class Voucher:
    obligor: bytes
    beneficiary: bytes
    face: int
    maturity_ms: int
    confirmed_height: int
    confirmed_ms: int
    status: int
    settled: int  # amount paid out so far by settlement batches
    settle_batches: int
    blinded: bytes  # registry fingerprint of the underlying asset (the first invoice)
    docs: tuple[tuple[int, bytes], ...]

    def encode(self) -> bytes:
        head = _VOUCHER.pack(
            self.obligor,
            self.beneficiary,
            self.face,
            self.maturity_ms,
            self.confirmed_height,
            self.confirmed_ms,
            self.status,
            self.settled,
            self.settle_batches,
            self.blinded,
            len(self.docs),
        )
        return head + b"".join(bytes((t,)) + fp for t, fp in self.docs)

    @classmethod
    def decode(cls, raw: bytes) -> Voucher:
        if len(raw) < _VOUCHER.size:
            raise RecordError("voucher")
        *fields, n = _VOUCHER.unpack_from(raw)
        if len(raw) != _VOUCHER.size + 33 * n:
            raise RecordError("voucher docs")
        p = _VOUCHER.size
        docs = tuple((raw[p + 33 * i], raw[p + 33 * i + 1 : p + 33 * i + 33]) for i in range(n))
        return cls(*fields, docs)


_HIST = struct.Struct("<BQ16sQ")


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    kind: int
    height: int
    org: bytes  # the counterparty (or the actor)
    # By kind: SPLIT the children count; OFFERED/DISCOUNTED/PLEDGED/RELEASED/DEFAULT_TRANSFERRED
    # the price or loan (0 for a transfer offer); RETURNED 0; others the piece's amount.
    # Lineage shows the piece's amount beside it (lineage.event_json).
    amount: int


_PIECE = struct.Struct("<16s16s16sBBQ16sBB16sQQBQB")


@dataclasses.dataclass(frozen=True)
class Piece:
    voucher: bytes
    parent: bytes  # ZERO_ID for the root piece
    root: bytes  # == voucher id
    depth: int
    index: int  # among its parent's children
    amount: int
    holder: bytes
    state: int
    offer_kind: int  # OFFERED: the offer's kind; PLEDGED: OfferKind.PLEDGE
    counterparty: bytes  # OFFERED: offeree; PLEDGED: lender
    price: int  # OFFERED/PLEDGED: discount price or loan amount
    due_ms: int  # pledge: the loan's due time (default transfer allowed after it)
    children: int
    created_height: int
    history: tuple[HistoryEntry, ...]

    def encode(self) -> bytes:
        head = _PIECE.pack(
            self.voucher,
            self.parent,
            self.root,
            self.depth,
            self.index,
            self.amount,
            self.holder,
            self.state,
            self.offer_kind,
            self.counterparty,
            self.price,
            self.due_ms,
            self.children,
            self.created_height,
            len(self.history),
        )
        return head + b"".join(_HIST.pack(e.kind, e.height, e.org, e.amount) for e in self.history)

    @classmethod
    def decode(cls, raw: bytes) -> Piece:
        if len(raw) < _PIECE.size:
            raise RecordError("piece")
        *fields, n = _PIECE.unpack_from(raw)
        if len(raw) != _PIECE.size + _HIST.size * n:
            raise RecordError("piece history")
        hist = tuple(HistoryEntry(*_HIST.unpack_from(raw, _PIECE.size + _HIST.size * i)) for i in range(n))
        return cls(*fields, hist)

    def live(self) -> bool:
        return self.state not in (PieceState.SPLIT, PieceState.SETTLED)


_CLEAR_HEAD = struct.Struct("<QB")
_CLEAR_ROW = struct.Struct("<16s16sQ")


def encode_clearing(height: int, rows: list[tuple[bytes, bytes, int]]) -> bytes:
    return _CLEAR_HEAD.pack(height, len(rows)) + b"".join(_CLEAR_ROW.pack(*r) for r in rows)


def decode_clearing(raw: bytes) -> tuple[int, list[tuple[bytes, bytes, int]]]:
    if len(raw) < _CLEAR_HEAD.size:
        raise RecordError("clearing list")
    height, n = _CLEAR_HEAD.unpack_from(raw)
    if len(raw) != _CLEAR_HEAD.size + n * _CLEAR_ROW.size:
        raise RecordError("clearing rows")
    return height, [_CLEAR_ROW.unpack_from(raw, _CLEAR_HEAD.size + i * _CLEAR_ROW.size) for i in range(n)]


_REG = struct.Struct("<QQB")


@dataclasses.dataclass(frozen=True)
class RegistryEntry:
    """All the registry holds per asset: no bank ids, no per-bank amounts.

    ``closed``: the asset is extinguished (its voucher fully settled). Nothing more
    can be financed against it, and releasing an old financing does not reopen room.
    """

    value: int
    financed: int
    closed: bool = False

    def encode(self) -> bytes:
        return _REG.pack(self.value, self.financed, self.closed)

    @classmethod
    def decode(cls, raw: bytes) -> RegistryEntry:
        if len(raw) != _REG.size:
            raise RecordError("registry entry")
        value, financed, closed = _REG.unpack(raw)
        if closed > 1 or financed > value:
            raise RecordError("registry entry")
        return cls(value, financed, bool(closed))


def document_fingerprint(document: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The fingerprint anchored for a trade document: the suite's digest of its bytes, in its
    own domain (BLAKE3 derive-key, or SM3 on an sm2-sm3 chain)."""
    return suite.hash(FIN_DOCUMENT, document)
