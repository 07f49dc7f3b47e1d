"""Fingerprint-only shared lists: blacklist, overdue and fraud lists with no identity on chain.

Members share lists of identities (companies, people, accounts) without putting any identity
on chain: an entry is a *keyed fingerprint* of the identity under the consortium's list key,
which members hold off chain (docs/privacy.md, "Data sharing").

The list key
    ``K``, 32 random bytes (``new_list_key``), is handed to the members off chain. The chain
    holds only its *epoch* and its public check value (``codes.key_check``) at
    ``sc/listkey`` (``ListKeyState``): epoch u32, key check 32, activated height u64,
    activated ms u64, then the checks of the previous epochs' keys, most recent first (u8
    count, at most ``key_history_max``). Epoch 0 is "no key yet" (list ops refuse with
    ``NO_LIST_KEY``).

    A new key is voted by the committee (``OP_LIST_KEY``: accounts with the ``committee``
    role): a vote names the epoch (the current one + 1, else ``BAD_EPOCH``) and the key
    check. Each key check has a ballot of its own, ``sb/<epoch><check>`` (``Ballot``), opened
    by its first vote; a committee member votes once in a ballot (``LIST_KEY_VOTED``), and
    the first ballot to reach the finance committee's threshold (``fp/params``) activates
    the epoch in the same transaction (the ballot is marked ``activated``; the epoch's other
    ballots are closed with it: later votes are ``BAD_EPOCH``). So a member voting a wrong
    check cannot hold up the others, who vote their own check's ballot. A member may vote in
    several ballots of one epoch (to correct a mistaken vote, say): a ballot activates only
    when the threshold of distinct committee members voted that very check. A ballot that
    has not reached the threshold within ``ballot_ms_max`` of its opening is void: the next
    vote for its check opens a fresh one. (``VOTE_MISMATCH`` is no longer used.)

    A vote for the current key's check, or for one of the previous ``key_history_max``
    epochs', is refused (``LIST_KEY_REUSED``): with a key used again the new epoch's
    fingerprints would be an old epoch's, so entries awaiting re-key could neither be
    re-keyed (old and new fingerprint are one) nor listed again (``STALE_EPOCH``), and
    whoever held the old key would hold the new one. A handler reads only the keys its
    transaction declares, so the check is against the history in ``sc/listkey``: a key
    last used more than ``key_history_max`` epochs ago is not caught (``new_list_key`` draws
    32 random bytes: only a deliberate reuse repeats one). Activated ballots stay on chain:
    their voters are the record of who rotated the key, and an epoch older than the history
    is matched to its key by its activated ballot's check (``list_client``).

Fingerprints
    ``fingerprint(K, kind, identity, suite=)`` is the chain's suite's keyed hash (BLAKE3
    keyed mode, or HMAC-SM3) of ``FINGERPRINT_TAG || u8 kind || u8 length || identity``,
    the identity in its canonical form (``canonical``: see ``IdentityKind``). It is computed
    by the member, never by the chain: the identity never leaves the member. Without ``K``
    nobody — a node operator, an auditor holding a full copy of the chain, an outsider —
    can compute the fingerprint of a guessed identity, so the chain's data cannot be used to
    test whether someone is listed (tests/apps/test_sharing_lists.py, the privacy test).
    What the chain does show: how many entries each list has, which member listed each,
    when, with which reason code, disputes and removals, and that one fingerprint appears on
    several lists (the fingerprint does not depend on the list).

Entries
    ``sl/<list u8><fingerprint 32>`` (``Entry``): the epoch of its fingerprint, then up to
    ``codes.listers_max`` listings (``Listing``: org 16, reason u8, height u64, ms u64,
    re-keyed height u64, re-keyed ms u64 — 0 and 0 if never re-keyed), in the order they
    were made.

Disputes
    ``sd/<list u8><fingerprint 32><lister 16>`` (``Disputes``): the open disputes of one
    organization's listing of one fingerprint, at most one per disputing organization and
    ``disputes_max`` in all (``Dispute``: org 16, reason u8, height u64, ms u64), in the
    order they were made. They are kept outside the entry so that the lister cannot erase
    them: removing the listing leaves them, and a listing of that fingerprint by that lister
    (listed again, or moved there by a re-key) shows them again. Only the disputer withdraws
    its dispute. Answers show each listing with its open disputes (``current_view``,
    ``EntryView``/``ListingView``: ``ListMember.lookup``, the query service, the CLI); they
    read the listing's ``sd/`` record besides the entry.

Ops
    * ``OP_LIST_ADD`` (any active member organization): list, fingerprint, epoch, reason.
      The epoch must be the current one, and so must an existing entry's (``STALE_EPOCH``);
      one listing per organization (``ENTRY_EXISTS``), at most ``listers_max``
      (``LISTERS_FULL``).
    * ``OP_LIST_REMOVE`` (the listing organization only, ``NOT_LISTER``): takes its listing
      off with a ``RemoveReason``; the entry's key is deleted with its last listing; the
      listing's disputes stay. Works at any epoch (a member can drop a listing that is
      awaiting re-key).
    * ``OP_LIST_DISPUTE`` (any member but the lister, e.g. the subject's bank): list,
      fingerprint, lister, reason. With a ``DisputeReason`` it opens the sender's dispute of
      that listing, which must exist (``NO_SUCH_ENTRY``) at the current epoch
      (``STALE_EPOCH``); one per disputer (``ALREADY_DISPUTED``), at most ``disputes_max``
      (``DISPUTES_FULL``). It reads the entry and writes the ``sd/`` record only. With the
      reason code ``WITHDRAW`` (0: no ``DisputeReason`` has it) it withdraws the sender's own
      dispute (``NO_SUCH_DISPUTE`` if it has none) at any epoch, whether or not the listing
      still exists; it touches the ``sd/`` record only. Naming one's own listing is refused
      with ``Reject.BAD_PAYLOAD`` (the lister removes it instead: ``NOT_LISTER`` would say
      the opposite of what is wrong).
    * ``OP_LIST_REKEY`` (the listing organization): after a rotation to epoch ``e``, moves its
      listing from the fingerprint of epoch ``e - 1`` to the fingerprint of epoch ``e``,
      keeping its reason and its original height and time, recording the re-key's height and
      time (``rekeyed_height``, ``rekeyed_ms``), and moving its disputes with it (the ``sd/``
      record of the old fingerprint is deleted, its disputes joined to any left at the new
      one, a disputer's newer dispute kept; more than ``disputes_max`` together:
      ``DISPUTES_FULL``). A keyed hash cannot be re-keyed without the identity, so each
      member recomputes both fingerprints from its own records; the chain cannot do it (nor
      can any member for another's listing), nor check that both fingerprints are of one
      identity. So after a re-key the original height and time are the lister's claim about
      the new fingerprint, the re-key's are when the chain first saw it, and disputes older
      than the re-key were made against the old fingerprint.

    Entries left at an older epoch are *awaiting re-key*: lookups and queries at the current
    epoch do not find them (their fingerprints are under the old key). A listing not moved
    before the next rotation (still at ``e - 2`` or older) can no longer be re-keyed: its
    member removes it and adds it again.

Known limits
    * Only the lister removes its listing, and only an active member sends: the listings of
      an organization that is no longer active (finance's registry) stay on the lists and
      nobody can remove them; its open disputes stay likewise. Answers name the lister (and
      the disputer), so a reader can check its organization's status.
    * The chain cannot link two fingerprints of one identity: a lister that, after a
      rotation, removes its listing awaiting re-key and lists the identity afresh (instead of
      re-keying it) leaves the old fingerprint's disputes behind. The fresh listing's height
      (after the rotation, not re-keyed) shows it; the disputer disputes again.

What a rotation does and does not do: entries listed after it are fingerprints under a key
that a former member (or whoever obtained an old key) does not hold, so they cannot be tested
by it. It cannot take back what an old key already allowed: whoever held the key of epoch
``e - 1`` could test identities against that epoch's entries, and a re-key transaction links
an old fingerprint to its new one in public, so the moved entries stay linkable to what was
learnt under the old key. Rotate when a member leaves or a key may have leaked, and expect
that the entries existing at that moment were exposed to it.

Events carry list ids, fingerprints, organization ids and reason codes only, never an
identity: ``sh.listkey.vote``, ``sh.listkey.rotated``, ``sh.list.add``, ``sh.list.remove``,
``sh.list.dispute``, ``sh.list.withdraw`` (a dispute withdrawn), ``sh.list.rekey``.

Refusals: the sharing app's ``SharingReject`` codes, and ``Reject.BAD_PAYLOAD`` for a payload
of the wrong size or an enum value that is not a member (list id, reasons). Every op
declares exactly the keys it touches (the builders below): the sender's key and organization
records (``members.member_reads``), and then: an add ``sc/listkey`` and the entry; a removal
the entry; a dispute ``sc/listkey``, the entry (read) and the ``sd/`` record; a withdrawal
the ``sd/`` record; a re-key ``sc/listkey``, both entries and both ``sd/`` records. A key
vote reads the sender's account and ``fp/params`` and writes its check's ballot and
``sc/listkey``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import secrets
import struct
import unicodedata
from collections.abc import Callable

from tierchain.apps import accounts
from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing.codes import SharingReject
from tierchain.apps.sharing.members import committee, member, member_reads
from tierchain.crypto import CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject, TierChainError
from tierchain.wire import tx as txcodec

__all__ = [
    "FINGERPRINT_TAG",
    "OPS",
    "WITHDRAW",
    "Ballot",
    "Dispute",
    "Disputes",
    "Entry",
    "EntryView",
    "IdentityError",
    "IdentityKind",
    "ListKeyState",
    "ListRecordError",
    "Listing",
    "ListingView",
    "ballot_ms_max",
    "canonical",
    "current_entry",
    "current_view",
    "disputes_max",
    "fingerprint",
    "identity_chars_max",
    "key_history_max",
    "list_add",
    "list_dispute",
    "list_key_vote",
    "list_rekey",
    "list_remove",
    "list_withdraw_dispute",
    "new_list_key",
    "read_ballot",
    "read_disputes",
    "read_entry",
    "read_key_state",
    "view_entry",
]

OPS = apps.OpTable()  # this module's ops (tierchain.apps.sharing.app)

list_key_bytes = 32
ballot_ms_max = 7 * c.day_ms  # a ballot that has not activated its key within this is void
identity_chars_max = 128  # an identity as given, before normalization
key_history_max = 16  # previous epochs' key checks kept in sc/listkey (refused for reuse)
disputes_max = 16  # open disputes of one listing (one per disputing organization)
WITHDRAW = 0  # an OP_LIST_DISPUTE reason code: withdraw the sender's dispute (no DisputeReason)


# --- identities and their fingerprints (client side) ------------------------------------------


class IdentityKind(enum.IntEnum):
    """What an identity is; part of the fingerprint's input (protocol numbers: never renumber).

    Each kind has one canonical form (``canonical``): Unicode NFKC (full-width characters
    become ASCII), whitespace removed, letters upper-cased, then a strict format check.

    * ``UNIFIED_SOCIAL_CREDIT_CODE``: the 18-character code of a PRC legal entity
      (GB 32100-2015): digits and upper-case letters other than I, O, S, V, Z. The check
      character is not verified: some codes issued in pilot regions before the standard
      fail it and are still the entity's code, and a fingerprint must match what the
      registry issued.
    * ``NATIONAL_ID``: a PRC resident identity card number (GB 11643-1999): 17 digits and a
      check character (a digit or X), which is verified. A 15-digit first-generation number
      is converted to its 18-digit form (``19`` inserted after the region code and the check
      character appended), so both forms of one person's number give one fingerprint.
    * ``PASSPORT``: ``"<issuing state>:<number>"``: the ISO 3166-1 alpha-3 code of the
      issuing state, a colon, and the passport number (letters and digits, up to 20); the
      state is part of the identity because numbers are only unique per issuer.
    * ``ACCOUNT_NUMBER``: a bank account or card number, or an IBAN: letters and digits, up
      to 34, written with or without spaces or hyphens (both removed).
    """

    UNIFIED_SOCIAL_CREDIT_CODE = 1
    NATIONAL_ID = 2
    PASSPORT = 3
    ACCOUNT_NUMBER = 4


class IdentityError(TierChainError, ValueError):
    """An identity that is not in its kind's format (the message says which rule failed)."""


FINGERPRINT_TAG = b"tierchain 2026 sharing list fingerprint v1\x00"  # inside the keyed input

_USCC = re.compile(r"[0-9A-HJ-NP-RTUWXY]{18}")
_ID18 = re.compile(r"[0-9]{17}[0-9X]")
_ID15 = re.compile(r"[0-9]{15}")
_PASSPORT = re.compile(r"([A-Z]{3}):([A-Z0-9]{1,20})")
_ACCOUNT = re.compile(r"[A-Z0-9]{1,34}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_check(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def canonical(kind: int, identity: str | bytes) -> str:
    """``identity`` in the canonical form of ``kind`` (``IdentityKind``); ``IdentityError``
    if it is not in that kind's format."""
    try:
        kind = IdentityKind(kind)
    except ValueError:
        raise IdentityError(f"unknown identity kind {kind!r}") from None
    if isinstance(identity, bytes | bytearray):
        try:
            identity = bytes(identity).decode("utf-8")
        except UnicodeDecodeError:
            raise IdentityError("an identity given as bytes must be UTF-8") from None
    if not isinstance(identity, str):
        raise IdentityError(f"an identity is a str, not {type(identity).__name__}")
    if len(identity) > identity_chars_max:
        raise IdentityError(f"an identity of at most {identity_chars_max} characters")
    text = "".join(unicodedata.normalize("NFKC", identity).split()).upper()
    if kind == IdentityKind.UNIFIED_SOCIAL_CREDIT_CODE:
        if not _USCC.fullmatch(text):
            raise IdentityError("a unified social credit code: 18 of 0-9 and A-Z but I, O, S, V, Z")
        return text
    if kind == IdentityKind.NATIONAL_ID:
        if _ID15.fullmatch(text):
            first17 = text[:6] + "19" + text[6:]
            return first17 + _id_check(first17)
        if not _ID18.fullmatch(text):
            raise IdentityError("a resident identity number: 17 digits and a digit or X (or 15 digits)")
        if _id_check(text[:17]) != text[17]:
            raise IdentityError("a resident identity number whose check character is wrong")
        return text
    if kind == IdentityKind.PASSPORT:
        if not _PASSPORT.fullmatch(text):
            raise IdentityError("a passport: '<ISO 3166-1 alpha-3 state>:<number of 1-20 letters or digits>'")
        return text
    text = text.replace("-", "")
    if not _ACCOUNT.fullmatch(text):
        raise IdentityError("an account number: 1-34 letters or digits (spaces and hyphens ignored)")
    return text


def fingerprint(key: bytes, identity_kind: int, identity: str | bytes, *, suite: CryptoSuite) -> bytes:
    """The list fingerprint of ``identity`` under the list key ``key`` (32 bytes): the
    suite's keyed hash of ``FINGERPRINT_TAG || u8 kind || u8 length || canonical identity``
    (ASCII). Computed by a member; it reveals nothing about the identity without ``key``."""
    if not isinstance(key, bytes | bytearray) or len(key) != list_key_bytes:
        raise ValueError(f"a list key is {list_key_bytes} bytes")
    text = canonical(identity_kind, identity).encode("ascii")
    data = FINGERPRINT_TAG + bytes((int(identity_kind), len(text))) + text
    return suite.keyed_hash(bytes(key), data)


def new_list_key() -> bytes:
    """A fresh list key (the operating system's randomness): hand it to the members off chain
    and vote its check (``codes.key_check``)."""
    return secrets.token_bytes(list_key_bytes)


# --- records ----------------------------------------------------------------------------------


class ListRecordError(TierChainError):
    """A stored value that does not have its list record's layout (a bug or a damaged store)."""


_KEY_STATE = struct.Struct("<I32sQQB")  # epoch, check, height, ms, n previous checks
_BALLOT = struct.Struct("<32sQQBB")  # check, opened height, opened ms, activated, n voters
_LISTING = struct.Struct("<16sBQQQQ")  # org, reason, height, ms, re-keyed height, re-keyed ms
_DISPUTE_RECORD = struct.Struct("<16sBQQ")  # org, reason, height, ms
_EPOCH = struct.Struct("<I")


@dataclasses.dataclass(frozen=True)
class ListKeyState:
    """``sc/listkey``: the current list key's epoch and check (epoch 0: none yet), and the
    checks of the previous epochs' keys, most recent first (at most ``key_history_max``)."""

    epoch: int = 0
    key_check: bytes = bytes(32)
    height: int = 0  # when it was activated
    timestamp_ms: int = 0
    history: tuple[bytes, ...] = ()  # the check of epoch - 1, epoch - 2, ...

    def encode(self) -> bytes:
        head = _KEY_STATE.pack(self.epoch, self.key_check, self.height, self.timestamp_ms, len(self.history))
        return head + b"".join(self.history)

    @classmethod
    def decode(cls, raw: bytes | None) -> ListKeyState:
        if raw is None:
            return cls()
        if len(raw) < _KEY_STATE.size:
            raise ListRecordError("list key state")
        epoch, check, height, ms, n = _KEY_STATE.unpack_from(raw)
        if len(raw) != _KEY_STATE.size + 32 * n or n > min(key_history_max, max(epoch - 1, 0)):
            raise ListRecordError("list key state history")
        at = _KEY_STATE.size
        return cls(epoch, check, height, ms, tuple(raw[at + 32 * i : at + 32 * (i + 1)] for i in range(n)))

    def check_of(self, epoch: int) -> bytes | None:
        """The check of ``epoch``'s key if this state holds it (the current epoch or one of
        the history's), else None."""
        if epoch == self.epoch and epoch:
            return self.key_check
        back = self.epoch - epoch
        return self.history[back - 1] if epoch >= 1 and 1 <= back <= len(self.history) else None

    def activate(self, check: bytes, height: int, timestamp_ms: int) -> ListKeyState:
        """The state once the next epoch's key ``check`` is activated."""
        history = (self.key_check, *self.history)[:key_history_max] if self.epoch else ()
        return ListKeyState(self.epoch + 1, check, height, timestamp_ms, history)


@dataclasses.dataclass(frozen=True)
class Ballot:
    """``sb/<epoch><check>``: the committee's votes for one key check as an epoch's key."""

    key_check: bytes
    height: int  # when it was opened
    timestamp_ms: int
    voters: tuple[bytes, ...]  # public keys, in voting order
    activated: bool = False  # it reached the threshold: its check is the epoch's key's

    def encode(self) -> bytes:
        head = _BALLOT.pack(self.key_check, self.height, self.timestamp_ms, self.activated, len(self.voters))
        return head + b"".join(self.voters)

    @classmethod
    def decode(cls, raw: bytes) -> Ballot:
        if len(raw) < _BALLOT.size:
            raise ListRecordError("ballot")
        check, height, ms, activated, n = _BALLOT.unpack_from(raw)
        if len(raw) != _BALLOT.size + 32 * n or activated > 1:
            raise ListRecordError("ballot voters")
        voters = tuple(raw[_BALLOT.size + 32 * i : _BALLOT.size + 32 * (i + 1)] for i in range(n))
        return cls(check, height, ms, voters, bool(activated))

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.timestamp_ms > ballot_ms_max


@dataclasses.dataclass(frozen=True)
class Listing:
    """One organization's listing of a fingerprint (its disputes: ``Disputes``, in ``sd/``)."""

    org: bytes
    reason: int  # codes.ListReason
    height: int  # when it was first listed (kept by a re-key: then the lister's claim)
    timestamp_ms: int
    rekeyed_height: int = 0  # the last re-key that moved it to this fingerprint (0: none)
    rekeyed_ms: int = 0

    def encode(self) -> bytes:
        return _LISTING.pack(
            self.org, self.reason, self.height, self.timestamp_ms, self.rekeyed_height, self.rekeyed_ms
        )

    @classmethod
    def decode(cls, raw: bytes) -> Listing:
        return cls(*_LISTING.unpack(raw))


@dataclasses.dataclass(frozen=True)
class Entry:
    """``sl/<list><fingerprint>``: the fingerprint's epoch and its listings (1..listers_max)."""

    epoch: int
    listings: tuple[Listing, ...]

    def encode(self) -> bytes:
        return _EPOCH.pack(self.epoch) + b"".join(x.encode() for x in self.listings)

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        n, rest = divmod(len(raw) - _EPOCH.size, _LISTING.size)
        if len(raw) < _EPOCH.size or rest or not 1 <= n <= c.listers_max:
            raise ListRecordError("list entry")
        (epoch,) = _EPOCH.unpack_from(raw)
        at = _EPOCH.size
        return cls(
            epoch,
            tuple(
                Listing.decode(raw[at + i * _LISTING.size : at + (i + 1) * _LISTING.size]) for i in range(n)
            ),
        )

    def of(self, org: bytes) -> Listing | None:
        return next((x for x in self.listings if x.org == org), None)


@dataclasses.dataclass(frozen=True)
class Dispute:
    """One organization's open dispute of a listing."""

    org: bytes
    reason: int  # codes.DisputeReason
    height: int  # when it was made
    timestamp_ms: int


@dataclasses.dataclass(frozen=True)
class Disputes:
    """``sd/<list><fingerprint><lister>``: the open disputes of one listing (1..disputes_max,
    one per disputing organization), in the order they were made."""

    disputes: tuple[Dispute, ...]

    def encode(self) -> bytes:
        return b"".join(
            _DISPUTE_RECORD.pack(d.org, d.reason, d.height, d.timestamp_ms) for d in self.disputes
        )

    @classmethod
    def decode(cls, raw: bytes) -> Disputes:
        n, rest = divmod(len(raw), _DISPUTE_RECORD.size)
        if rest or not 1 <= n <= disputes_max:
            raise ListRecordError("disputes")
        size = _DISPUTE_RECORD.size
        disputes = tuple(Dispute(*_DISPUTE_RECORD.unpack_from(raw, i * size)) for i in range(n))
        if len({d.org for d in disputes}) != n or any(d.reason == WITHDRAW for d in disputes):
            raise ListRecordError("disputes")
        return cls(disputes)


@dataclasses.dataclass(frozen=True)
class ListingView:
    """A listing as answers show it: the ``Listing`` and its open disputes."""

    org: bytes
    reason: int
    height: int  # first listed (after a re-key: the lister's claim)
    timestamp_ms: int
    rekeyed_height: int  # when the chain saw this fingerprint, if a re-key brought it (else 0)
    rekeyed_ms: int
    disputes: tuple[Dispute, ...]

    @property
    def disputed(self) -> bool:
        return bool(self.disputes)

    @property
    def rekeyed(self) -> bool:
        return self.rekeyed_height != 0


@dataclasses.dataclass(frozen=True)
class EntryView:
    """An entry as answers show it: its listings, each with its open disputes."""

    list_id: int
    fingerprint: bytes
    epoch: int
    listings: tuple[ListingView, ...]

    def of(self, org: bytes) -> ListingView | None:
        return next((x for x in self.listings if x.org == org), None)


# --- reads (clients and the query service: any ``state_get``) ---------------------------------

StateGet = Callable[[bytes], "bytes | None"]


def read_key_state(get: StateGet) -> ListKeyState:
    return ListKeyState.decode(get(c.LIST_KEY))


def read_ballot(get: StateGet, epoch: int, check: bytes) -> Ballot | None:
    """The ballot for ``check`` as the key of ``epoch``, if one was opened."""
    raw = get(c.ballot_key(epoch, check))
    return None if raw is None else Ballot.decode(raw)


def read_entry(get: StateGet, list_id: int, fp: bytes) -> Entry | None:
    """The entry at ``(list_id, fp)`` whatever its epoch."""
    raw = get(c.entry_key(list_id, fp))
    return None if raw is None else Entry.decode(raw)


def read_disputes(get: StateGet, list_id: int, fp: bytes, lister: bytes) -> tuple[Dispute, ...]:
    """The open disputes of ``lister``'s listing of ``fp`` (kept whether or not it is listed)."""
    raw = get(c.dispute_key(list_id, fp, lister))
    return () if raw is None else Disputes.decode(raw).disputes


def current_entry(get: StateGet, list_id: int, fp: bytes, epoch: int | None = None) -> Entry | None:
    """The entry at ``(list_id, fp)`` if it is of the current epoch (``epoch``: the current
    one if the caller has read it); an entry awaiting re-key is not found."""
    epoch = read_key_state(get).epoch if epoch is None else epoch
    entry = read_entry(get, list_id, fp)
    return entry if entry is not None and epoch and entry.epoch == epoch else None


def view_entry(get: StateGet, list_id: int, fp: bytes, entry: Entry) -> EntryView:
    """``entry`` (at ``(list_id, fp)``) with each listing's open disputes (one read each)."""
    listings = tuple(
        ListingView(
            x.org,
            x.reason,
            x.height,
            x.timestamp_ms,
            x.rekeyed_height,
            x.rekeyed_ms,
            read_disputes(get, list_id, fp, x.org),
        )
        for x in entry.listings
    )
    return EntryView(list_id, fp, entry.epoch, listings)


def current_view(get: StateGet, list_id: int, fp: bytes, epoch: int | None = None) -> EntryView | None:
    """What answers show (lookups, the query service): the current-epoch entry at
    ``(list_id, fp)`` with its listings' open disputes, or None."""
    entry = current_entry(get, list_id, fp, epoch)
    return None if entry is None else view_entry(get, list_id, fp, entry)


# --- op handlers ----------------------------------------------------------------------------

_VOTE = struct.Struct("<I32s")  # epoch, key check
_ADD = struct.Struct("<B32sIB")  # list, fingerprint, epoch, reason
_REMOVE = struct.Struct("<B32sB")  # list, fingerprint, reason
_DISPUTE = struct.Struct("<B32s16sB")  # list, fingerprint, lister org, reason (WITHDRAW: 0)
_REKEY = struct.Struct("<B32s32sI")  # list, old fingerprint, new fingerprint, epoch


def _unpack(s: struct.Struct, payload: bytes) -> tuple:
    if len(payload) != s.size:
        raise OpFailed(Reject.BAD_PAYLOAD, f"payload of {len(payload)} bytes, not {s.size}")
    return s.unpack(payload)


def _enum(cls: type[enum.IntEnum], value: int) -> int:
    if value not in cls._value2member_map_:
        raise OpFailed(Reject.BAD_PAYLOAD, f"{cls.__name__} {value}")
    return value


def _key_state(ctx: TxContext) -> ListKeyState:
    """The current key; ``NO_LIST_KEY`` before the first one."""
    state = ListKeyState.decode(ctx.get(c.LIST_KEY))
    if state.epoch == 0:
        raise OpFailed(SharingReject.NO_LIST_KEY)
    return state


def _entry(ctx: TxContext, list_id: int, fp: bytes) -> Entry | None:
    raw = ctx.get(c.entry_key(list_id, fp))
    return None if raw is None else Entry.decode(raw)


def _put_entry(ctx: TxContext, list_id: int, fp: bytes, epoch: int, listings: tuple[Listing, ...]) -> None:
    if listings:
        ctx.put(c.entry_key(list_id, fp), Entry(epoch, listings).encode())
    else:
        ctx.delete(c.entry_key(list_id, fp))


def _disputes(ctx: TxContext, key: bytes) -> tuple[Dispute, ...]:
    raw = ctx.get(key)
    return () if raw is None else Disputes.decode(raw).disputes


def _put_disputes(ctx: TxContext, key: bytes, disputes: tuple[Dispute, ...]) -> None:
    if len(disputes) > disputes_max:
        raise OpFailed(SharingReject.DISPUTES_FULL)
    if disputes:
        ctx.put(key, Disputes(disputes).encode())
    else:
        ctx.delete(key)


def _admit(entry: Entry | None, org: bytes, epoch: int) -> tuple[Listing, ...]:
    """The listings of a current-epoch entry that ``org`` may join."""
    if entry is None:
        return ()
    if entry.epoch != epoch:
        raise OpFailed(SharingReject.STALE_EPOCH, "the entry is of another epoch")
    if entry.of(org) is not None:
        raise OpFailed(SharingReject.ENTRY_EXISTS)
    if len(entry.listings) >= c.listers_max:
        raise OpFailed(SharingReject.LISTERS_FULL)
    return entry.listings


@OPS.op(c.OP_LIST_KEY, "sh.list_key")
def _list_key(ctx: TxContext) -> None:
    committee(ctx)
    epoch, check = _unpack(_VOTE, ctx.payload)
    if check == bytes(32):
        raise OpFailed(Reject.BAD_PAYLOAD, "a zero key check")
    current = ListKeyState.decode(ctx.get(c.LIST_KEY))
    if epoch != current.epoch + 1:
        raise OpFailed(SharingReject.BAD_EPOCH)
    if check == current.key_check or check in current.history:
        raise OpFailed(SharingReject.LIST_KEY_REUSED, "the key of the current or a recent epoch")
    raw = ctx.get(c.ballot_key(epoch, check))
    ballot = None if raw is None else Ballot.decode(raw)
    if ballot is None or ballot.expired(ctx.timestamp_ms):
        ballot = Ballot(check, ctx.height, ctx.timestamp_ms, ())
    if ctx.sender in ballot.voters:
        raise OpFailed(SharingReject.LIST_KEY_VOTED)
    if len(ballot.voters) >= c.votes_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "too many votes")
    threshold = fc.Params.decode(ctx.get(fc.PARAMS_KEY)).threshold
    voters = (*ballot.voters, ctx.sender)
    activated = len(voters) >= threshold
    ctx.put(
        c.ballot_key(epoch, check), dataclasses.replace(ballot, voters=voters, activated=activated).encode()
    )
    ctx.emit(b"sh.listkey.vote", _EPOCH.pack(epoch) + check + bytes((len(voters), activated)))
    if activated:
        ctx.put(c.LIST_KEY, current.activate(check, ctx.height, ctx.timestamp_ms).encode())
        ctx.emit(b"sh.listkey.rotated", _EPOCH.pack(epoch) + check)


@OPS.op(c.OP_LIST_ADD, "sh.list_add")
def _list_add(ctx: TxContext) -> None:
    org, _ = member(ctx)
    list_id, fp, epoch, reason = _unpack(_ADD, ctx.payload)
    _enum(c.ListId, list_id)
    _enum(c.ListReason, reason)
    current = _key_state(ctx)
    if epoch != current.epoch:
        raise OpFailed(SharingReject.STALE_EPOCH)
    listings = _admit(_entry(ctx, list_id, fp), org, current.epoch)
    listing = Listing(org, reason, ctx.height, ctx.timestamp_ms)
    _put_entry(ctx, list_id, fp, current.epoch, (*listings, listing))
    ctx.emit(b"sh.list.add", bytes((list_id,)) + fp + bytes((reason,)))


@OPS.op(c.OP_LIST_REMOVE, "sh.list_remove")
def _list_remove(ctx: TxContext) -> None:
    org, _ = member(ctx)
    list_id, fp, reason = _unpack(_REMOVE, ctx.payload)
    _enum(c.ListId, list_id)
    _enum(c.RemoveReason, reason)
    entry = _entry(ctx, list_id, fp)
    if entry is None:
        raise OpFailed(SharingReject.NO_SUCH_ENTRY)
    if entry.of(org) is None:
        raise OpFailed(SharingReject.NOT_LISTER)
    _put_entry(ctx, list_id, fp, entry.epoch, tuple(x for x in entry.listings if x.org != org))
    ctx.emit(b"sh.list.remove", bytes((list_id,)) + fp + bytes((reason,)))


@OPS.op(c.OP_LIST_DISPUTE, "sh.list_dispute")
def _list_dispute(ctx: TxContext) -> None:
    org, _ = member(ctx)
    list_id, fp, lister, reason = _unpack(_DISPUTE, ctx.payload)
    _enum(c.ListId, list_id)
    if reason != WITHDRAW:
        _enum(c.DisputeReason, reason)
    if lister == org:
        raise OpFailed(Reject.BAD_PAYLOAD, "a member cannot dispute its own listing (it removes it)")
    key = c.dispute_key(list_id, fp, lister)
    disputes = _disputes(ctx, key)
    mine = any(d.org == org for d in disputes)
    if reason == WITHDRAW:
        if not mine:
            raise OpFailed(SharingReject.NO_SUCH_DISPUTE)
        _put_disputes(ctx, key, tuple(d for d in disputes if d.org != org))
        ctx.emit(b"sh.list.withdraw", bytes((list_id,)) + fp + lister)
        return
    current = _key_state(ctx)
    entry = _entry(ctx, list_id, fp)
    if entry is None or entry.of(lister) is None:
        raise OpFailed(SharingReject.NO_SUCH_ENTRY)
    if entry.epoch != current.epoch:
        raise OpFailed(SharingReject.STALE_EPOCH, "the entry is awaiting re-key")
    if mine:
        raise OpFailed(SharingReject.ALREADY_DISPUTED)
    _put_disputes(ctx, key, (*disputes, Dispute(org, reason, ctx.height, ctx.timestamp_ms)))
    ctx.emit(b"sh.list.dispute", bytes((list_id,)) + fp + lister + bytes((reason,)))


@OPS.op(c.OP_LIST_REKEY, "sh.list_rekey")
def _list_rekey(ctx: TxContext) -> None:
    org, _ = member(ctx)
    list_id, old_fp, new_fp, epoch = _unpack(_REKEY, ctx.payload)
    _enum(c.ListId, list_id)
    if old_fp == new_fp:
        raise OpFailed(Reject.BAD_PAYLOAD, "the old and the new fingerprint are one")
    current = _key_state(ctx)
    if epoch != current.epoch or current.epoch < 2:
        raise OpFailed(SharingReject.STALE_EPOCH, "the new fingerprint is not of the current epoch")
    old = _entry(ctx, list_id, old_fp)
    if old is None:
        raise OpFailed(SharingReject.NO_SUCH_ENTRY)
    if old.epoch != current.epoch - 1:
        raise OpFailed(SharingReject.STALE_EPOCH, "the old fingerprint is not of the previous epoch")
    listing = old.of(org)
    if listing is None:
        raise OpFailed(SharingReject.NOT_LISTER)
    listings = _admit(_entry(ctx, list_id, new_fp), org, current.epoch)
    moved = dataclasses.replace(listing, rekeyed_height=ctx.height, rekeyed_ms=ctx.timestamp_ms)
    _put_entry(ctx, list_id, old_fp, old.epoch, tuple(x for x in old.listings if x.org != org))
    _put_entry(ctx, list_id, new_fp, current.epoch, (*listings, moved))
    # the listing's disputes move with it; a disputer's dispute left at the new fingerprint
    # (made there since the rotation) is the newer one and is kept
    old_key, new_key = c.dispute_key(list_id, old_fp, org), c.dispute_key(list_id, new_fp, org)
    carried = _disputes(ctx, old_key)
    if carried:
        there = _disputes(ctx, new_key)
        orgs = {d.org for d in there}
        _put_disputes(ctx, new_key, (*there, *(d for d in carried if d.org not in orgs)))
        ctx.delete(old_key)
    ctx.emit(b"sh.list.rekey", bytes((list_id,)) + old_fp + new_fp)


# --- client-side builders (pure: the caller supplies what state decides) -----------------------


def _check_fp(fp: bytes) -> bytes:
    if not isinstance(fp, bytes | bytearray) or len(fp) != c.fingerprint_bytes:
        raise ValueError(f"a fingerprint is {c.fingerprint_bytes} bytes")
    return bytes(fp)


def _check_org(org: bytes) -> bytes:
    if not isinstance(org, bytes | bytearray) or len(org) != c.id_bytes:
        raise ValueError(f"an organization id is {c.id_bytes} bytes")
    return bytes(org)


def _member_tx(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    op: int,
    reads: set[bytes],
    writes: set[bytes],
    payload: bytes,
) -> txcodec.Tx:
    return txcodec.unsigned(chain_id, op, sender, nonce, member_reads(sender, org) | reads, writes, payload)


def list_key_vote(chain_id: int, sender: bytes, nonce: int, epoch: int, key_check: bytes) -> txcodec.Tx:
    """A committee member's vote for ``key_check`` (``codes.key_check`` of the new key) as
    the key of ``epoch`` (the current epoch + 1). Never put the key itself on chain."""
    if len(key_check) != 32 or not 1 <= epoch < 1 << 32:
        raise ValueError("a 32-byte key check and an epoch in 1..2**32-1")
    reads = {accounts.account_key(sender), fc.PARAMS_KEY}
    writes = {c.ballot_key(epoch, bytes(key_check)), c.LIST_KEY}
    return txcodec.unsigned(
        chain_id, c.OP_LIST_KEY, sender, nonce, reads, writes, _VOTE.pack(epoch, key_check)
    )


def list_add(
    chain_id: int, sender: bytes, org: bytes, nonce: int, list_id: int, fp: bytes, epoch: int, reason: int
) -> txcodec.Tx:
    """List ``fp`` (a fingerprint of ``epoch``, the current one) on ``list_id`` for ``reason``."""
    payload = _ADD.pack(c.ListId(list_id), _check_fp(fp), epoch, c.ListReason(reason))
    return _member_tx(
        chain_id, sender, org, nonce, c.OP_LIST_ADD, {c.LIST_KEY}, {c.entry_key(list_id, fp)}, payload
    )


def list_remove(
    chain_id: int, sender: bytes, org: bytes, nonce: int, list_id: int, fp: bytes, reason: int
) -> txcodec.Tx:
    """Take the sender organization's listing of ``fp`` off ``list_id`` (any epoch)."""
    payload = _REMOVE.pack(c.ListId(list_id), _check_fp(fp), c.RemoveReason(reason))
    return _member_tx(
        chain_id, sender, org, nonce, c.OP_LIST_REMOVE, set(), {c.entry_key(list_id, fp)}, payload
    )


def list_dispute(
    chain_id: int, sender: bytes, org: bytes, nonce: int, list_id: int, fp: bytes, lister: bytes, reason: int
) -> txcodec.Tx:
    """Dispute organization ``lister``'s listing of ``fp`` on ``list_id`` for ``reason``."""
    payload = _DISPUTE.pack(c.ListId(list_id), _check_fp(fp), _check_org(lister), c.DisputeReason(reason))
    reads = {c.LIST_KEY, c.entry_key(list_id, fp)}
    return _member_tx(
        chain_id, sender, org, nonce, c.OP_LIST_DISPUTE, reads, {c.dispute_key(list_id, fp, lister)}, payload
    )


def list_withdraw_dispute(
    chain_id: int, sender: bytes, org: bytes, nonce: int, list_id: int, fp: bytes, lister: bytes
) -> txcodec.Tx:
    """Withdraw the sender organization's dispute of ``lister``'s listing of ``fp`` (any
    epoch, listed or not): ``OP_LIST_DISPUTE`` with the reason code ``WITHDRAW``."""
    payload = _DISPUTE.pack(c.ListId(list_id), _check_fp(fp), _check_org(lister), WITHDRAW)
    return _member_tx(
        chain_id, sender, org, nonce, c.OP_LIST_DISPUTE, set(), {c.dispute_key(list_id, fp, lister)}, payload
    )


def list_rekey(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    list_id: int,
    old_fp: bytes,
    new_fp: bytes,
    epoch: int,
) -> txcodec.Tx:
    """Move the sender organization's listing, and its disputes, from ``old_fp`` (of epoch
    ``epoch - 1``) to ``new_fp`` (of ``epoch``, the current one)."""
    payload = _REKEY.pack(c.ListId(list_id), _check_fp(old_fp), _check_fp(new_fp), epoch)
    writes = {
        c.entry_key(list_id, old_fp),
        c.entry_key(list_id, new_fp),
        c.dispute_key(list_id, old_fp, org),
        c.dispute_key(list_id, new_fp, org),
    }
    return _member_tx(chain_id, sender, org, nonce, c.OP_LIST_REKEY, {c.LIST_KEY}, writes, payload)
