"""Sharing constants: op and refusal codes, hash domains, state keys, enums and limits.

What every handler and client builder of the ``sharing`` app agrees on (docs/privacy.md,
"Data sharing"). Record layouts live beside the ops that write them (``access.py``,
``lists.py``, ``recon.py``); this module holds what spans them.

The sharing app runs beside ``finance``: its members are finance's organizations (the
``fk/`` and ``fo/`` records), so a chain that names ``sharing`` names ``finance`` too.

State layout:

======================================  =====================================================
``sr/<record 16>``                      a record: owner, kind, anchor, version count
``sv/<record 16><version u32>``         one version: digest and size of its sealed bytes
                                        (inline if small), when it was put
``sg/<record 16><org 16>``              a grant: purpose, expiry, status
``sq/<record 16><version u32><org 16>`` an open key request (deleted by the release)
``sk/<record 16><ver u32><org 16><n>``  key release n (u16, from 0) of a version to an org:
                                        the data key sealed to the reader's key, the basis
                                        (grant or standing access): the access log
``sc/listkey``                          the shared lists' key: epoch and key check, the
                                        previous epochs' checks (the last 16)
``sb/<epoch u32><key check 32>``        a list-key rotation ballot for one key check: its
                                        voters, whether it activated the epoch
``sl/<list u8><fingerprint 32>``        a list entry: the members who listed it, reasons,
                                        when (and when re-keyed)
``sd/<list u8><fp 32><lister 16>``      the open disputes of one member's listing of a
                                        fingerprint: who, reason, when (outlive the listing)
``sp/<pair 16>``                        a reconciliation pair: the two organizations and the
                                        pair key sealed to each
``sp/<pair 16><gen u16>``               a replaced generation of the pair, as it was
                                        (``recon.generation_key``)
``sy/<pair 16><gen u16><day u32><tag>`` one bilateral record's two postings (digests) under
                                        one generation of the pair key (tag: 16 bytes)
======================================  =====================================================
"""

from __future__ import annotations

import enum
import struct

from tierchain.apps.finance import codes as fc
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.errors import Reject

# --- hash domains (the chain's suite's domain contexts; never change one) -----------------
SH_RECORD_ID = "tierchain 2026 sharing record id"  # (sender, nonce)
SH_PAIR_ID = "tierchain 2026 sharing reconciliation pair id"  # (org a, org b), sorted
SH_KEY_CHECK = "tierchain 2026 sharing key check"  # a list key's public check value
SH_SEALED_VERSION = "tierchain 2026 sharing sealed version"  # a version's sealed bytes
SH_LIST_QUERY = "tierchain 2026 sharing list query"  # what a member's list query signs
DOMAINS = (SH_RECORD_ID, SH_PAIR_ID, SH_KEY_CHECK, SH_SEALED_VERSION, SH_LIST_QUERY)

# --- what the sharing app claims (tierchain.apps.sharing.app) ------------------------------
OP_CODES = range(64, 96)
REJECT_CODES = range(160, 224)

# op codes (protocol: never renumber)
OP_PUT = 64  # owner: a new record, or the next version of one
OP_GRANT = 65  # owner: grant an organization access (purpose, expiry)
OP_REVOKE = 66  # owner: revoke a grant
OP_REQUEST = 67  # reader: ask for a version's data key (logged)
OP_RELEASE = 68  # owner: the data key sealed to a reader (refused without a live grant)
OP_LIST_KEY = 72  # committee: vote the shared lists' next key epoch (its key check)
OP_LIST_ADD = 73  # member: list a fingerprint with a reason code
OP_LIST_REMOVE = 74  # the listing member: take its listing off, with a reason code
OP_LIST_DISPUTE = 75  # any member: dispute a listing with a reason code (0: withdraw its own dispute)
OP_LIST_REKEY = 76  # the listing member: move its listing to the new epoch's fingerprint
OP_PAIR_OPEN = 80  # a party: open a reconciliation pair, the pair key sealed to both
OP_RECON_POST = 81  # a party: post keyed digests of its bilateral records of one day
OP_PAIR_ACCEPT = 82  # the counterparty: confirm the pair key of the current generation
OP_PAIR_REKEY = 83  # a party: a new pair key (the next generation), sealed to both


class SharingReject(enum.IntEnum):
    """The sharing app's refusal codes (160..223). Protocol numbers: never renumber one."""

    # membership (the finance organization registry; ``members.member``)
    SENDER_NOT_MEMBER = 160  # the sender key belongs to no organization
    SENDER_KEY_REVOKED = 161
    SENDER_ROLE_MISSING = 162
    SENDER_ORG_INACTIVE = 163
    VOTER_NOT_COMMITTEE = 164  # list-key votes need the committee account role
    UNKNOWN_ORG = 165
    BAD_RECIPIENT_KEY = 166  # the recipient key is not an active key of the reader's organization
    # authorized decryption (access.py)
    RECORD_EXISTS = 170
    NO_SUCH_RECORD = 171
    NOT_OWNER = 172  # only the record's owner organization puts versions, grants and releases
    STALE_VERSION = 173  # a put that is not the next version
    NO_SUCH_VERSION = 174
    NO_SUCH_ANCHOR = 175  # a trade document's anchor is not on chain
    DOC_NOT_OWNERS = 176  # the anchor was made by another organization
    NO_GRANT = 177  # a release or request without a grant (and no standing access)
    GRANT_EXPIRED = 178
    GRANT_REVOKED = 179
    ALREADY_RELEASED = 180
    ALREADY_REQUESTED = 181
    NOT_ELIGIBLE = 182  # the reader's roles may not receive this kind of record
    BAD_EXPIRY = 183  # an expiry not after the block time, or beyond grant_ms_max
    BAD_GRANTEE = 184  # a grant to the owner itself, or to an inactive organization
    # shared lists (lists.py)
    NO_LIST_KEY = 190  # no list key has been voted yet
    STALE_EPOCH = 191  # a fingerprint of another epoch than the current one
    ENTRY_EXISTS = 192  # this member already lists that fingerprint
    NO_SUCH_ENTRY = 193
    NOT_LISTER = 194  # only the listing member removes or re-keys its listing
    ALREADY_DISPUTED = 195  # this member already disputes that listing
    BAD_EPOCH = 196  # a vote for an epoch other than the current one + 1
    VOTE_MISMATCH = 197  # no longer used: each key check has a ballot of its own
    LIST_KEY_VOTED = 198
    LISTERS_FULL = 199  # a fingerprint is listed by at most listers_max members
    LIST_KEY_REUSED = 200  # a vote for the current key's check or a recent epoch's
    DISPUTES_FULL = 201  # a listing is disputed by at most lists.disputes_max members
    NO_SUCH_DISPUTE = 202  # a withdrawal by a member that does not dispute the listing
    # reconciliation (recon.py)
    NO_SUCH_PAIR = 205
    PAIR_EXISTS = 206
    NOT_A_PARTY = 207  # the sender's organization is not one of the pair
    BAD_DAY = 208  # a day after the block's day + 1
    ALREADY_POSTED = 209  # this side already posted that record (amend it with the amend flag)
    PAIR_NOT_ACCEPTED = 210  # the counterparty has not accepted the current generation's key
    ALREADY_ACCEPTED = 211  # the current generation was accepted already
    STALE_GENERATION = 212  # a generation other than the pair's current one


def reject_of(code: int) -> SharingReject | Reject:
    """A receipt's numeric ``code`` as a named member (ValueError for a code neither names)."""
    if code in SharingReject._value2member_map_:
        return SharingReject(code)
    return Reject(code)


# --- enums (protocol numbers) --------------------------------------------------------------
class RecordKind(enum.IntEnum):
    TRADE_DOCUMENT = 1  # contract, invoice, waybill...: its anchor (fd/) is the fingerprint
    ABS_ASSET_FILE = 2  # an ABS underlying asset's file, for investors and rating agencies
    GENERAL = 3


class Purpose(enum.IntEnum):
    """Why a grant is given (shown in the access log)."""

    CREDIT_REVIEW = 1
    FINANCING = 2
    AUDIT = 3
    RATING = 4
    INVESTMENT = 5
    SUPERVISION = 6
    DISPUTE_RESOLUTION = 7


class Basis(enum.IntEnum):
    """On what a key release (or request) stands."""

    GRANT = 1
    STANDING = 2  # the regulator's standing access


class ListId(enum.IntEnum):
    BLACKLIST = 1
    OVERDUE = 2
    FRAUD = 3


class ListReason(enum.IntEnum):
    """Why a member lists an identity."""

    FRAUD_CONFIRMED = 1
    OVERDUE_90_DAYS = 2
    COURT_JUDGMENT = 3
    DUPLICATE_FINANCING = 4
    FORGED_DOCUMENTS = 5
    SANCTIONED = 6


class RemoveReason(enum.IntEnum):
    SETTLED = 1
    ENTERED_IN_ERROR = 2
    LAPSED = 3


class DisputeReason(enum.IntEnum):
    PAID_IN_FULL = 1
    MISTAKEN_IDENTITY = 2
    UNDER_APPEAL = 3
    DATA_ERROR = 4


# Who may be given each kind of record: roles of the finance app (or standing access).
ELIGIBLE_ROLES = {
    RecordKind.TRADE_DOCUMENT: (
        "core_enterprise",
        "supplier",
        "bank",
        "warehouse",
        "logistics",
        "auditor",
        "regulator",
    ),
    RecordKind.ABS_ASSET_FILE: ("investor", "rating_agency", "trustee", "bank", "auditor", "regulator"),
    RecordKind.GENERAL: (),  # any role
}
STANDING_ROLE = "regulator"  # standing access (see-through supervision), logged like any release

# --- limits --------------------------------------------------------------------------------
id_bytes = 16  # record and pair ids, organization ids (finance's)
tag_bytes = 16  # a reconciliation record's ref tag
fingerprint_bytes = 32  # a list entry's keyed fingerprint
inline_bytes_max = 3072  # a sealed version up to this size is stored on chain; larger: its digest
sealed_bytes_max = (1 << 20) + (64 << 10)  # a sealed version, inline or not (1 MiB of plaintext + readers)
grant_ms_max = 5 * 366 * 86_400_000  # a grant lasts at most ~5 years
listers_max = 16  # members listing one fingerprint
votes_max = fc.votes_max
recon_posts_per_tx_max = 24  # records per posting (keys: fk fo sp + one each)
recon_fields_max = 16  # fields per reconciled record
day_ms = 86_400_000

assert 3 + recon_posts_per_tx_max <= 32  # limits.tx_keys_max

# --- state keys --------------------------------------------------------------------------
_U32 = struct.Struct("<I")
LIST_KEY = b"sc/listkey"
PREFIXES = (b"sr/", b"sv/", b"sg/", b"sq/", b"sk/", b"sc/", b"sb/", b"sl/", b"sd/", b"sp/", b"sy/")


def record_key(record_id: bytes) -> bytes:
    return b"sr/" + record_id


def version_key(record_id: bytes, version: int) -> bytes:
    return b"sv/" + record_id + _U32.pack(version)


def grant_key(record_id: bytes, org: bytes) -> bytes:
    return b"sg/" + record_id + org


def request_key(record_id: bytes, version: int, org: bytes) -> bytes:
    return b"sq/" + record_id + _U32.pack(version) + org


def release_key(record_id: bytes, version: int, org: bytes, n: int) -> bytes:
    """Release ``n`` (0, 1, ...: a new one only once the last one's key is no longer active)."""
    return b"sk/" + record_id + _U32.pack(version) + org + n.to_bytes(2, "little")


def ballot_key(epoch: int, check: bytes) -> bytes:
    """The ballot for ``check`` as the key of ``epoch`` (``check`` empty: the epoch's prefix)."""
    return b"sb/" + _U32.pack(epoch) + check


def entry_key(list_id: int, fingerprint: bytes) -> bytes:
    return b"sl/" + bytes((list_id,)) + fingerprint


def dispute_key(list_id: int, fingerprint: bytes, lister: bytes) -> bytes:
    return b"sd/" + bytes((list_id,)) + fingerprint + lister


def pair_key(pair_id: bytes) -> bytes:
    return b"sp/" + pair_id


def posting_key(pair_id: bytes, generation: int, day: int, tag: bytes) -> bytes:
    """A record's row in one generation of the pair key (``tag`` empty: the day's prefix)."""
    return b"sy/" + pair_id + generation.to_bytes(2, "little") + _U32.pack(day) + tag


# --- ids (the chain's suite's hashes) -------------------------------------------------------
def record_id(sender: bytes, nonce: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The id of the record a put creates: known before signing (like finance's ids)."""
    return suite.hash(SH_RECORD_ID, sender + nonce.to_bytes(8, "little"))[:id_bytes]


def pair_id(org_a: bytes, org_b: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The reconciliation pair of two organizations (either order gives the same id)."""
    lo, hi = sorted((org_a, org_b))
    return suite.hash(SH_PAIR_ID, lo + hi)[:id_bytes]


def key_check(key: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """A list key's public check value: members confirm they hold the voted key; it tells
    nothing about the key (a keyed hash of a fixed string)."""
    return suite.hash(SH_KEY_CHECK, suite.keyed_hash(key, b"list key check"))
