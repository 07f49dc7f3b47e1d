"""Fingerprint-only shared lists: blacklist, overdue and fraud lists with no identity on chain.

Members share lists of identities (companies, people, accounts) without putting any identity
on chain: an entry is a *keyed fingerprint* of the identity under the consortium's list key,
which members hold off chain (docs/privacy.md, "Data sharing").

The list key
    ``K``, 32 random bytes (``new_list_key``), is handed to the members off chain. The chain
    holds only its *epoch* and its public check value (``codes.key_check``) at
    ``sc/listkey`` (``ListKeyState``): epoch u32, key check 32, activated height u64,
    activated ms u64. Epoch 0 is "no key yet" (list ops refuse with ``NO_LIST_KEY``).
    A new key is voted by the committee (``OP_LIST_KEY``: accounts with the ``committee``
    role): a vote names the epoch (the current one + 1, else ``BAD_EPOCH``) and the key
    check; the first vote opens the ballot at ``sb/<epoch>`` (``Ballot``), later votes must
    carry the same check (``VOTE_MISMATCH``), each voter votes once (``LIST_KEY_VOTED``), and
    the vote that reaches the finance committee's threshold (``fp/params``) activates the
    epoch in the same transaction. A ballot that has not reached the threshold within
    ``ballot_ms_max`` of its opening is void: the next vote for that epoch opens a fresh one
    (so a ballot opened with a wrong check cannot block rotation for ever). An activated
    ballot stays on chain: its voters are the record of who rotated the key, and its check
    lets a member confirm which of its keys belonged to that epoch.

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
    disputed u8, dispute org 16, dispute reason u8, dispute height u64), in the order they
    were made.

    * ``OP_LIST_ADD`` (any active member organization): list, fingerprint, epoch, reason.
      The epoch must be the current one, and so must an existing entry's (``STALE_EPOCH``);
      one listing per organization (``ENTRY_EXISTS``), at most ``listers_max``
      (``LISTERS_FULL``).
    * ``OP_LIST_REMOVE`` (the listing organization only, ``NOT_LISTER``): takes its listing
      off with a ``RemoveReason``; the entry's key is deleted with its last listing. Works at
      any epoch (a member can drop a listing that is awaiting re-key).
    * ``OP_LIST_DISPUTE`` (any member but the lister, e.g. the subject's bank): marks one
      listing disputed with a ``DisputeReason`` (``ALREADY_DISPUTED``). Disputing one's own
      listing is refused with ``Reject.BAD_PAYLOAD`` (the lister removes it instead:
      ``NOT_LISTER`` would say the opposite of what is wrong). Only at the current epoch.
    * ``OP_LIST_REKEY`` (the listing organization): after a rotation to epoch ``e``, moves its
      listing from the fingerprint of epoch ``e - 1`` to the fingerprint of epoch ``e``,
      keeping its reason, its original height and time and its dispute. A keyed hash cannot
      be re-keyed without the identity, so each member recomputes both fingerprints from its
      own records; the chain cannot do it (nor can any member for another's listing).

    Entries left at an older epoch are *awaiting re-key*: lookups and queries at the current
    epoch do not find them (their fingerprints are under the old key). A listing not moved
    before the next rotation (still at ``e - 2`` or older) can no longer be re-keyed: its
    member removes it and adds it again.

What a rotation does and does not do: entries listed after it are fingerprints under a key
that a former member (or whoever obtained an old key) does not hold, so they cannot be tested
by it. It cannot take back what an old key already allowed: whoever held the key of epoch
``e - 1`` could test identities against that epoch's entries, and a re-key transaction links
an old fingerprint to its new one in public, so the moved entries stay linkable to what was
learnt under the old key. Rotate when a member leaves or a key may have leaked, and expect
that the entries existing at that moment were exposed to it.

Events carry list ids, fingerprints, organization ids and reason codes only, never an
identity: ``sh.listkey.vote``, ``sh.listkey.rotated``, ``sh.list.add``, ``sh.list.remove``,
``sh.list.dispute``, ``sh.list.rekey``.

Refusals: the sharing app's ``SharingReject`` codes, and ``Reject.BAD_PAYLOAD`` for a payload
of the wrong size or an enum value that is not a member (list id, reasons). Every op
declares exactly the keys it touches (the builders below): the sender's key and organization
records (``members.member_reads``), ``sc/listkey``, and the entry (or entries) it writes;
a key vote reads the sender's account and ``fp/params`` and writes the ballot and
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
    "Ballot",
    "Entry",
    "IdentityError",
    "IdentityKind",
    "ListKeyState",
    "ListRecordError",
    "Listing",
    "ballot_ms_max",
    "canonical",
    "current_entry",
    "fingerprint",
    "identity_chars_max",
    "list_add",
    "list_dispute",
    "list_key_vote",
    "list_rekey",
    "list_remove",
    "new_list_key",
    "read_ballot",
    "read_entry",
    "read_key_state",
]

OPS = apps.OpTable()  # this module's ops (tierchain.apps.sharing.app)

list_key_bytes = 32
ballot_ms_max = 7 * c.day_ms  # a ballot that has not activated its key within this is void
identity_chars_max = 128  # an identity as given, before normalization


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


_KEY_STATE = struct.Struct("<I32sQQ")
_BALLOT = struct.Struct("<32sQQB")
_LISTING = struct.Struct("<16sBQQB16sBQ")
_EPOCH = struct.Struct("<I")


@dataclasses.dataclass(frozen=True)
class ListKeyState:
    """``sc/listkey``: the current list key's epoch and check (epoch 0: none yet)."""

    epoch: int = 0
    key_check: bytes = bytes(32)
    height: int = 0  # when it was activated
    timestamp_ms: int = 0

    def encode(self) -> bytes:
        return _KEY_STATE.pack(self.epoch, self.key_check, self.height, self.timestamp_ms)

    @classmethod
    def decode(cls, raw: bytes | None) -> ListKeyState:
        if raw is None:
            return cls()
        if len(raw) != _KEY_STATE.size:
            raise ListRecordError("list key state")
        return cls(*_KEY_STATE.unpack(raw))


@dataclasses.dataclass(frozen=True)
class Ballot:
    """``sb/<epoch>``: a list-key vote: the key check voted for and the committee voters."""

    key_check: bytes
    height: int  # when it was opened
    timestamp_ms: int
    voters: tuple[bytes, ...]  # public keys, in voting order

    def encode(self) -> bytes:
        head = _BALLOT.pack(self.key_check, self.height, self.timestamp_ms, len(self.voters))
        return head + b"".join(self.voters)

    @classmethod
    def decode(cls, raw: bytes) -> Ballot:
        if len(raw) < _BALLOT.size:
            raise ListRecordError("ballot")
        check, height, ms, n = _BALLOT.unpack_from(raw)
        if len(raw) != _BALLOT.size + 32 * n:
            raise ListRecordError("ballot voters")
        voters = tuple(raw[_BALLOT.size + 32 * i : _BALLOT.size + 32 * (i + 1)] for i in range(n))
        return cls(check, height, ms, voters)

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.timestamp_ms > ballot_ms_max


@dataclasses.dataclass(frozen=True)
class Listing:
    """One organization's listing of a fingerprint, and the dispute of it if any."""

    org: bytes
    reason: int  # codes.ListReason
    height: int  # when it was first listed (kept by a re-key)
    timestamp_ms: int
    disputed: bool = False
    dispute_org: bytes = bytes(c.id_bytes)
    dispute_reason: int = 0  # codes.DisputeReason, 0 when not disputed
    dispute_height: int = 0

    def encode(self) -> bytes:
        return _LISTING.pack(
            self.org,
            self.reason,
            self.height,
            self.timestamp_ms,
            self.disputed,
            self.dispute_org,
            self.dispute_reason,
            self.dispute_height,
        )

    @classmethod
    def decode(cls, raw: bytes) -> Listing:
        org, reason, height, ms, disputed, d_org, d_reason, d_height = _LISTING.unpack(raw)
        if disputed > 1 or (not disputed and (d_org != bytes(c.id_bytes) or d_reason or d_height)):
            raise ListRecordError("listing dispute fields")
        return cls(org, reason, height, ms, bool(disputed), d_org, d_reason, d_height)


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


# --- reads (clients and the query service: any ``state_get``) ---------------------------------

StateGet = Callable[[bytes], "bytes | None"]


def read_key_state(get: StateGet) -> ListKeyState:
    return ListKeyState.decode(get(c.LIST_KEY))


def read_ballot(get: StateGet, epoch: int) -> Ballot | None:
    raw = get(c.ballot_key(epoch))
    return None if raw is None else Ballot.decode(raw)


def read_entry(get: StateGet, list_id: int, fp: bytes) -> Entry | None:
    """The entry at ``(list_id, fp)`` whatever its epoch."""
    raw = get(c.entry_key(list_id, fp))
    return None if raw is None else Entry.decode(raw)


def current_entry(get: StateGet, list_id: int, fp: bytes, epoch: int | None = None) -> Entry | None:
    """The entry at ``(list_id, fp)`` if it is of the current epoch (``epoch``: the current
    one if the caller has read it); an entry awaiting re-key is not found."""
    epoch = read_key_state(get).epoch if epoch is None else epoch
    entry = read_entry(get, list_id, fp)
    return entry if entry is not None and epoch and entry.epoch == epoch else None


# --- op handlers ----------------------------------------------------------------------------

_VOTE = struct.Struct("<I32s")  # epoch, key check
_ADD = struct.Struct("<B32sIB")  # list, fingerprint, epoch, reason
_REMOVE = struct.Struct("<B32sB")  # list, fingerprint, reason
_DISPUTE = struct.Struct("<B32s16sB")  # list, fingerprint, lister org, reason
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
    raw = ctx.get(c.ballot_key(epoch))
    ballot = None if raw is None else Ballot.decode(raw)
    if ballot is None or ballot.expired(ctx.timestamp_ms):
        ballot = Ballot(check, ctx.height, ctx.timestamp_ms, ())
    if ctx.sender in ballot.voters:
        raise OpFailed(SharingReject.LIST_KEY_VOTED)
    if ballot.key_check != check:
        raise OpFailed(SharingReject.VOTE_MISMATCH)
    if len(ballot.voters) >= c.votes_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "too many votes")
    ballot = dataclasses.replace(ballot, voters=(*ballot.voters, ctx.sender))
    ctx.put(c.ballot_key(epoch), ballot.encode())
    threshold = fc.Params.decode(ctx.get(fc.PARAMS_KEY)).threshold
    activated = len(ballot.voters) >= threshold
    ctx.emit(b"sh.listkey.vote", _EPOCH.pack(epoch) + check + bytes((len(ballot.voters), activated)))
    if activated:
        ctx.put(c.LIST_KEY, ListKeyState(epoch, check, ctx.height, ctx.timestamp_ms).encode())
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
    _enum(c.DisputeReason, reason)
    if lister == org:
        raise OpFailed(Reject.BAD_PAYLOAD, "a member cannot dispute its own listing (it removes it)")
    current = _key_state(ctx)
    entry = _entry(ctx, list_id, fp)
    listing = None if entry is None else entry.of(lister)
    if entry is None or listing is None:
        raise OpFailed(SharingReject.NO_SUCH_ENTRY)
    if entry.epoch != current.epoch:
        raise OpFailed(SharingReject.STALE_EPOCH, "the entry is awaiting re-key")
    if listing.disputed:
        raise OpFailed(SharingReject.ALREADY_DISPUTED)
    disputed = dataclasses.replace(
        listing, disputed=True, dispute_org=org, dispute_reason=reason, dispute_height=ctx.height
    )
    listings = tuple(disputed if x.org == lister else x for x in entry.listings)
    _put_entry(ctx, list_id, fp, entry.epoch, listings)
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
    _put_entry(ctx, list_id, old_fp, old.epoch, tuple(x for x in old.listings if x.org != org))
    _put_entry(ctx, list_id, new_fp, current.epoch, (*listings, listing))
    ctx.emit(b"sh.list.rekey", bytes((list_id,)) + old_fp + new_fp)


# --- client-side builders (pure: the caller supplies what state decides) -----------------------


def _check_fp(fp: bytes) -> bytes:
    if not isinstance(fp, bytes | bytearray) or len(fp) != c.fingerprint_bytes:
        raise ValueError(f"a fingerprint is {c.fingerprint_bytes} bytes")
    return bytes(fp)


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
    writes = {c.ballot_key(epoch), c.LIST_KEY}
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
    if len(lister) != c.id_bytes:
        raise ValueError(f"an organization id is {c.id_bytes} bytes")
    payload = _DISPUTE.pack(c.ListId(list_id), _check_fp(fp), lister, c.DisputeReason(reason))
    return _member_tx(
        chain_id, sender, org, nonce, c.OP_LIST_DISPUTE, {c.LIST_KEY}, {c.entry_key(list_id, fp)}, payload
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
    """Move the sender organization's listing from ``old_fp`` (of epoch ``epoch - 1``) to
    ``new_fp`` (of ``epoch``, the current one)."""
    payload = _REKEY.pack(c.ListId(list_id), _check_fp(old_fp), _check_fp(new_fp), epoch)
    writes = {c.entry_key(list_id, old_fp), c.entry_key(list_id, new_fp)}
    return _member_tx(chain_id, sender, org, nonce, c.OP_LIST_REKEY, {c.LIST_KEY}, writes, payload)
