"""Authorized decryption: encrypted records whose owner decides who obtains their keys.

A record belongs to the organization that put it (its *owner*). Each version is an
``envelope.SealedRecord`` under a fresh data key, sealed to exactly one reader: the owner
organization (the data key wrapped to the putting key), so the owner can always recover
the data key from what it stored. Small versions (``codes.inline_bytes_max``) are stored
on chain; larger ones in an attachment store off chain (``attachments.AttachmentStore``),
with only their digest and size on chain. Nobody but the owner can read a version until
the owner *releases* its data key to a reader: the key sealed to one active key of the
reader's organization, written to ``sk/``, which nothing ever deletes or overwrites.

What a version's plaintext is, and what the chain says of it (``frame_version``,
``version_fingerprint``): the sealed plaintext is ``salt (32 bytes) || document``, the salt
drawn at random by the owner for each version. The version's *fingerprint* on chain (in
its put, ``sv/`` and, for version 1, ``sr/``) is

* for a trade document, finance's ``document_fingerprint`` of the document: its anchor
  (``fd/``), public by design (anyone holding the document can check it is the anchored
  one); the salt is unused;
* for every other kind, a keyed commitment ``suite.keyed_hash(salt, document)``
  (``commitment``): without the salt — which only readers get, inside the sealed
  plaintext — the chain's data lets nobody test a guessed document, and two versions with
  the same document have unrelated commitments (not linkable). A reader checks the opened
  document against it; whoever is handed ``(document, salt)`` (the opening) can check it
  too, which is how an ABS pool refers to an asset file: record id and commitment.

Ops (every one signed by an active key of an active organization: ``members.member``):

* ``OP_PUT`` (64) — a new record (version 1; its id is ``codes.record_id(sender, nonce)``)
  or the next version of one the sender's organization owns. A version payload repeats
  the record's kind and document type (they never change); its fingerprint is the
  record's anchor for a trade document and the version's own keyed commitment otherwise
  (the chain cannot check a commitment: it cannot decrypt; readers do). A trade
  document's anchor (finance's ``fd/``) must exist and have been made by the owner.
  Sealed bytes up to ``inline_bytes_max`` must be inline (digest, size, canonical
  encoding, suite and sole reader = owner checked); larger ones go off chain.
* ``OP_GRANT`` (65) — the owner lets an organization obtain keys of a record's versions
  (every version, including later ones) for a purpose until an expiry. The grantee must
  be active, not the owner, and hold a role ``codes.ELIGIBLE_ROLES`` allows for the kind.
  A new grant replaces the organization's earlier one (extension, re-grant after revoke).
* ``OP_REVOKE`` (66) — the owner ends a grant now.
* ``OP_REQUEST`` (67) — a reader asks for one version's data key, to be sealed to one of
  its organization's active keys. Needs a live grant or standing access
  (``codes.STANDING_ROLE``), checked at the request's block time.
* ``OP_RELEASE`` (68) — the owner's key release: the data key sealed to the reader's
  key. The same checks as a request, again at the release's block time: a grant that
  expired, was revoked, or whose grantee lost its eligible role since the request is
  refused. Closes the open request, if any.

Releases of a version to an organization are numbered (``sk/<record><version><org><n>``,
n from 0; a request or release names the n it is for). Release 0 is the first; release
n + 1 is allowed only once release n's recipient key is no longer an active key of the
reader organization (the reader lost or rotated it): the same data key, sealed to the new
key. Earlier releases stay as they were (the access log is append-only); while the last
release's key is still active a request or release is ``ALREADY_RELEASED``.

What the chain guarantees: a key release exists only where, at its block time, the reader
held a live grant (and an eligible role) or standing access; every release is on chain
for good (``sk/`` is the access log: who obtained which version's key, when, sealed to
which key, under which grant (its tx) and purpose, by which tx); every grant, revocation,
request and release emits an event. What it cannot do: check that a released key is the
right one, or that a commitment is the sealed document's (it cannot decrypt; the reader
finds out on reading, and the owner's signed put and release txs are the evidence), or
take back a key or plaintext a reader already has — revoking stops future releases only,
so the owner re-keys (puts a new version) to exclude a reader from changed data. Releases
are per version: a reader with only an old version's key cannot open a new one.

What outsiders (anyone with the chain's data but no released key) see of a version: its
record's owner, kind and document type, its sealed size and digest, when it was put and
by which key, and its fingerprint — for a trade document the public anchor, for other
kinds a salted commitment that lets them test no guessed plaintext and link no two equal
versions — plus who was granted, requested and released its key, and when.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
import struct

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import orgs
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import envelope, members
from tierchain.apps.sharing.codes import Basis, Purpose, RecordKind, SharingReject
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

__all__ = [
    "OPS",
    "SALT_BYTES",
    "SEALED_DIGEST",
    "Grant",
    "GrantStatus",
    "PutPayload",
    "RecordError",
    "RecordHead",
    "Release",
    "Request",
    "Version",
    "commitment",
    "document_bytes_max",
    "eligible",
    "frame_version",
    "grant",
    "has_standing",
    "parse_release_key",
    "parse_version_key",
    "put",
    "release",
    "request",
    "revoke",
    "seal_document",
    "seal_version",
    "sealed_digest",
    "unframe_version",
    "version_fingerprint",
    "wrapped_bytes",
]

OPS = apps.OpTable()  # this module's ops (tierchain.apps.sharing.app)

# The digest of a version's sealed bytes (on chain in sv/, and the attachment store's file names).
SEALED_DIGEST = c.SH_SEALED_VERSION

RecordError = fc.RecordError  # a stored value or payload without its record's layout

_U32 = struct.Struct("<I")

SALT_BYTES = 32  # a version's commitment salt: the first bytes of its sealed plaintext
document_bytes_max = envelope.MAX_PLAINTEXT_BYTES - SALT_BYTES  # a version's document


class GrantStatus(enum.IntEnum):
    ACTIVE = 1
    REVOKED = 2


def sealed_digest(sealed: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The digest of a version's sealed bytes (``SealedRecord.encode()``) in ``suite``."""
    return suite.hash(SEALED_DIGEST, sealed)


def wrapped_bytes(suite: CryptoSuite) -> int:
    """The size of a data key sealed to one public key in ``suite``."""
    return suite.aead_key_bytes + suite.seal_overhead


# --- what a version's plaintext is, and its fingerprint on chain -----------------------------
def frame_version(salt: bytes, document: bytes) -> bytes:
    """A version's sealed plaintext: ``salt`` (``SALT_BYTES``, random per version) then the
    document itself."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a version's salt is {SALT_BYTES} bytes")
    return bytes(salt) + bytes(document)


def unframe_version(plaintext: bytes) -> tuple[bytes, bytes]:
    """(salt, document) of a version's opened plaintext; ``RecordError`` if it is too short."""
    if len(plaintext) < SALT_BYTES:
        raise RecordError("a version's plaintext starts with its salt")
    return bytes(plaintext[:SALT_BYTES]), bytes(plaintext[SALT_BYTES:])


def commitment(salt: bytes, document: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """A non-trade version's fingerprint: the suite's keyed hash (BLAKE3 keyed mode, or
    HMAC-SM3) of the document under the version's random salt. Hiding without the salt,
    binding with it (the opening is ``(document, salt)``)."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a version's salt is {SALT_BYTES} bytes")
    return suite.keyed_hash(bytes(salt), bytes(document))


def version_fingerprint(
    kind: int, salt: bytes, document: bytes, *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """What a version's put carries (and ``sv/`` keeps) for ``document`` sealed with
    ``salt``: a trade document's ``document_fingerprint`` (its public anchor), otherwise
    its ``commitment``."""
    if kind == RecordKind.TRADE_DOCUMENT:
        return fc.document_fingerprint(document, suite=suite)
    return commitment(salt, document, suite=suite)


_ELIGIBLE = {kind: members.role_bits(*names) for kind, names in c.ELIGIBLE_ROLES.items()}
_STANDING = members.role_bits(c.STANDING_ROLE)


def eligible(kind: int, roles: int) -> bool:
    """Whether an organization with the roles mask ``roles`` may be granted a record of ``kind``."""
    mask = _ELIGIBLE[RecordKind(kind)]
    return not mask or bool(roles & mask)


def has_standing(roles: int) -> bool:
    """Whether an organization with the roles mask ``roles`` has standing access (sees through)."""
    return bool(roles & _STANDING)


# --- records (state values; integers little endian) ----------------------------------------
_HEAD = struct.Struct("<16sBB32sIQQ")


@dataclasses.dataclass(frozen=True)
class RecordHead:
    """``sr/<record>``: who owns it, its kind and anchor, how many versions it has."""

    owner: bytes  # organization id
    kind: int  # RecordKind
    doc_type: int  # a trade document's finance DocType; 0 for other kinds
    fingerprint: bytes  # a trade document's anchored fingerprint; else version 1's commitment
    versions: int
    created_height: int
    created_ms: int

    def encode(self) -> bytes:
        return _HEAD.pack(
            self.owner,
            self.kind,
            self.doc_type,
            self.fingerprint,
            self.versions,
            self.created_height,
            self.created_ms,
        )

    @classmethod
    def decode(cls, raw: bytes) -> RecordHead:
        if len(raw) != _HEAD.size:
            raise RecordError("sharing record")
        head = cls(*_HEAD.unpack(raw))
        if head.kind not in RecordKind._value2member_map_:
            raise RecordError("sharing record kind")
        return head


_VERSION = struct.Struct("<32sI32s32sQQ32s")


@dataclasses.dataclass(frozen=True)
class Version:
    """``sv/<record><version>``: one version's sealed bytes (inline when at most
    ``codes.inline_bytes_max``, else only their digest and size), its fingerprint
    (``version_fingerprint``: a trade document's anchor, else the keyed commitment to its
    document), the owner key its data key is sealed to, and when it was put."""

    digest: bytes  # sealed_digest of the sealed bytes
    size: int
    fingerprint: bytes  # version_fingerprint of the sealed document
    sealer: bytes  # the owner's key that put it: the data key is sealed to it
    height: int
    timestamp_ms: int
    tx_id: bytes
    inline: bytes = b""  # the sealed bytes, if size <= inline_bytes_max

    @property
    def on_chain(self) -> bool:
        return self.size <= c.inline_bytes_max

    def encode(self) -> bytes:
        return (
            _VERSION.pack(
                self.digest,
                self.size,
                self.fingerprint,
                self.sealer,
                self.height,
                self.timestamp_ms,
                self.tx_id,
            )
            + self.inline
        )

    @classmethod
    def decode(cls, raw: bytes) -> Version:
        if len(raw) < _VERSION.size:
            raise RecordError("sharing version")
        fields = _VERSION.unpack_from(raw)
        size, inline = fields[1], raw[_VERSION.size :]
        if len(inline) != (size if size <= c.inline_bytes_max else 0):
            raise RecordError("sharing version's inline bytes")
        return cls(*fields, inline)


_GRANT = struct.Struct("<HQBQQQQ32s")


@dataclasses.dataclass(frozen=True)
class Grant:
    """``sg/<record><org>``: an organization's grant on a record (all its versions)."""

    purpose: int  # Purpose
    expiry_ms: int  # live while the block time is before it
    status: int  # GrantStatus
    granted_height: int
    granted_ms: int
    revoked_height: int  # 0 unless revoked
    revoked_ms: int
    tx_id: bytes  # the grant's tx

    def live(self, now_ms: int) -> bool:
        return self.status == GrantStatus.ACTIVE and now_ms < self.expiry_ms

    def encode(self) -> bytes:
        return _GRANT.pack(
            self.purpose,
            self.expiry_ms,
            self.status,
            self.granted_height,
            self.granted_ms,
            self.revoked_height,
            self.revoked_ms,
            self.tx_id,
        )

    @classmethod
    def decode(cls, raw: bytes) -> Grant:
        if len(raw) != _GRANT.size:
            raise RecordError("sharing grant")
        grant = cls(*_GRANT.unpack(raw))
        if grant.status not in GrantStatus._value2member_map_:
            raise RecordError("sharing grant status")
        return grant


_REQUEST = struct.Struct("<32s32sBQQ32s")


@dataclasses.dataclass(frozen=True)
class Request:
    """``sq/<record><version><org>``: an open key request (the release deletes it)."""

    recipient: bytes  # the reader's key the data key is to be sealed to
    requester: bytes  # the key that signed the request
    basis: int  # Basis at the request's block time
    height: int
    timestamp_ms: int
    tx_id: bytes

    def encode(self) -> bytes:
        return _REQUEST.pack(
            self.recipient, self.requester, self.basis, self.height, self.timestamp_ms, self.tx_id
        )

    @classmethod
    def decode(cls, raw: bytes) -> Request:
        if len(raw) != _REQUEST.size:
            raise RecordError("sharing request")
        req = cls(*_REQUEST.unpack(raw))
        if req.basis not in Basis._value2member_map_:
            raise RecordError("sharing request basis")
        return req


_RELEASE = struct.Struct("<32s32sBHQ32sQQQ32s")
_WRAPPED_MAX = 255


@dataclasses.dataclass(frozen=True)
class Release:
    """``sk/<record><version><org><n>``: one key release, an access-log entry (never
    removed or overwritten)."""

    recipient: bytes  # the reader's key the data key is sealed to
    releaser: bytes  # the owner's key that signed the release
    basis: int  # Basis
    purpose: int  # the grant's Purpose; 0 for standing access
    grant_height: int  # the grant's height; 0 for standing access
    grant_tx_id: bytes  # the grant's tx (which grant); zeros for standing access
    grant_expiry_ms: int  # 0 for standing access
    height: int
    timestamp_ms: int
    tx_id: bytes  # the release tx
    wrapped: bytes  # the data key sealed to ``recipient``

    def encode(self) -> bytes:
        head = _RELEASE.pack(
            self.recipient,
            self.releaser,
            self.basis,
            self.purpose,
            self.grant_height,
            self.grant_tx_id,
            self.grant_expiry_ms,
            self.height,
            self.timestamp_ms,
            self.tx_id,
        )
        return head + self.wrapped

    @classmethod
    def decode(cls, raw: bytes, suite: CryptoSuite | None = None) -> Release:
        """The release ``encode`` made (its wrapped key of ``suite``'s size, if given)."""
        size = len(raw) - _RELEASE.size
        if not 0 < size <= _WRAPPED_MAX or (suite is not None and size != wrapped_bytes(suite)):
            raise RecordError("sharing release")
        rel = cls(*_RELEASE.unpack_from(raw), raw[_RELEASE.size :])
        if rel.basis not in Basis._value2member_map_:
            raise RecordError("sharing release basis")
        return rel


_VERSION_KEY_BYTES = 3 + c.id_bytes + 4 + c.id_bytes  # sq/<record><version><org>


def parse_version_key(key: bytes) -> tuple[bytes, int, bytes]:
    """(record id, version, org) of an ``sq/`` or ``sk/`` key."""
    if key[:3] == b"sk/":
        return parse_release_key(key)[:3]
    if len(key) != _VERSION_KEY_BYTES or key[:3] != b"sq/":
        raise RecordError("not a request or release key")
    record_id, rest = key[3 : 3 + c.id_bytes], key[3 + c.id_bytes :]
    return record_id, _U32.unpack(rest[:4])[0], rest[4:]


def parse_release_key(key: bytes) -> tuple[bytes, int, bytes, int]:
    """(record id, version, org, n) of an ``sk/`` key."""
    if len(key) != _VERSION_KEY_BYTES + 2 or key[:3] != b"sk/":
        raise RecordError("not a release key")
    record_id, rest = key[3 : 3 + c.id_bytes], key[3 + c.id_bytes :]
    return record_id, _U32.unpack(rest[:4])[0], rest[4:-2], int.from_bytes(rest[-2:], "little")


# --- payloads --------------------------------------------------------------------------------
_PUT = struct.Struct("<16sIBB32s32sI")


@dataclasses.dataclass(frozen=True)
class PutPayload:
    """``OP_PUT``'s payload: record id 16, version u32, kind u8, doc type u8, fingerprint 32,
    digest 32, size u32, then the sealed bytes themselves if size <= inline_bytes_max."""

    record_id: bytes
    version: int
    kind: int
    doc_type: int
    fingerprint: bytes
    digest: bytes
    size: int
    inline: bytes = b""

    def encode(self) -> bytes:
        head = _PUT.pack(
            self.record_id,
            self.version,
            self.kind,
            self.doc_type,
            self.fingerprint,
            self.digest,
            self.size,
        )
        return head + self.inline

    @classmethod
    def decode(cls, raw: bytes) -> PutPayload:
        if len(raw) < _PUT.size:
            raise RecordError("put payload")
        return cls(*_PUT.unpack_from(raw), raw[_PUT.size :])


_GRANT_PAYLOAD = struct.Struct("<16s16sHQ")  # record, grantee org, purpose, expiry ms
_REVOKE_PAYLOAD = struct.Struct("<16s16s")  # record, org
_REQUEST_PAYLOAD = struct.Struct("<16sI32sH")  # record, version, recipient key, release n
# record, version, reader org, recipient, release n; then the wrapped key
_RELEASE_PAYLOAD = struct.Struct("<16sI16s32sH")


def _unpack(layout: struct.Struct, payload: bytes) -> tuple:
    if len(payload) != layout.size:
        raise OpFailed(Reject.BAD_PAYLOAD, f"a {layout.size}-byte payload")
    return layout.unpack(payload)


# --- what handlers share -------------------------------------------------------------------------
def _record(ctx: TxContext, record_id: bytes) -> RecordHead:
    raw = ctx.get(c.record_key(record_id))
    if raw is None:
        raise OpFailed(SharingReject.NO_SUCH_RECORD)
    return RecordHead.decode(raw)


def _owned(ctx: TxContext, record_id: bytes, org_id: bytes) -> RecordHead:
    head = _record(ctx, record_id)
    if head.owner != org_id:
        raise OpFailed(SharingReject.NOT_OWNER)
    return head


def _access(
    ctx: TxContext, record_id: bytes, head: RecordHead, org_id: bytes, org: fc.OrgRecord
) -> tuple[Basis, Grant | None]:
    """On what ``org_id`` may obtain a key of the record now: a live grant held with an
    eligible role, else standing access; refused with why the grant does not serve."""
    raw = ctx.get(c.grant_key(record_id, org_id))
    found = None if raw is None else Grant.decode(raw)
    if found is not None and found.live(ctx.timestamp_ms) and eligible(head.kind, org.roles):
        return Basis.GRANT, found
    if has_standing(org.roles):
        return Basis.STANDING, None
    if found is None:
        raise OpFailed(SharingReject.NO_GRANT)
    if found.status == GrantStatus.REVOKED:
        raise OpFailed(SharingReject.GRANT_REVOKED)
    if not found.live(ctx.timestamp_ms):
        raise OpFailed(SharingReject.GRANT_EXPIRED)
    raise OpFailed(SharingReject.NOT_ELIGIBLE)  # the grantee lost its eligible role


def _version_exists(ctx: TxContext, record_id: bytes, version: int) -> None:
    if ctx.get(c.version_key(record_id, version)) is None:
        raise OpFailed(SharingReject.NO_SUCH_VERSION)


def _next_release(ctx: TxContext, record_id: bytes, version: int, reader_id: bytes, n: int) -> None:
    """Release ``n`` of the version to ``reader_id`` may be made: none is there yet, and it
    is the first (n = 0) or release n - 1 exists and its recipient is no longer an active
    key of the reader (lost or rotated); ``ALREADY_RELEASED`` otherwise."""
    if ctx.get(c.release_key(record_id, version, reader_id, n)) is not None:
        raise OpFailed(SharingReject.ALREADY_RELEASED)
    if n == 0:
        return
    raw = ctx.get(c.release_key(record_id, version, reader_id, n - 1))
    if raw is None:
        raise OpFailed(Reject.BAD_PAYLOAD, "release n follows release n - 1")
    if orgs.is_active_key_of(ctx, reader_id, Release.decode(raw).recipient):
        raise OpFailed(SharingReject.ALREADY_RELEASED)


# --- ops ------------------------------------------------------------------------------------------
def _check_put(ctx: TxContext, p: PutPayload, org_id: bytes) -> None:
    """What a put's payload must be, whatever the state: BAD_PAYLOAD otherwise."""
    if p.kind not in RecordKind._value2member_map_:
        raise OpFailed(Reject.BAD_PAYLOAD, "unknown record kind")
    if p.kind == RecordKind.TRADE_DOCUMENT:
        if p.doc_type not in fc.DocType._value2member_map_:
            raise OpFailed(Reject.BAD_PAYLOAD, "a trade document names a finance document type")
    elif p.doc_type != 0:
        raise OpFailed(Reject.BAD_PAYLOAD, "only a trade document has a document type")
    if not 1 <= p.size <= c.sealed_bytes_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "sealed size out of bounds")
    if p.size > c.inline_bytes_max:
        if p.inline:
            raise OpFailed(Reject.BAD_PAYLOAD, "a large version's bytes stay off chain")
        return
    if len(p.inline) != p.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "a small version's sealed bytes are inline")
    if sealed_digest(p.inline, suite=ctx.suite) != p.digest:
        raise OpFailed(Reject.BAD_PAYLOAD, "digest of the inline bytes")
    try:
        sealed = envelope.SealedRecord.decode(p.inline, suite=ctx.suite)
    except envelope.SharingError as e:
        raise OpFailed(Reject.BAD_PAYLOAD, str(e)) from None
    if sealed.readers != (org_id,):
        raise OpFailed(Reject.BAD_PAYLOAD, "a version is sealed to its owner organization only")


def _check_anchor(ctx: TxContext, org_id: bytes, doc_type: int, fingerprint: bytes) -> None:
    raw = ctx.get(fc.doc_key(doc_type, fingerprint))
    if raw is None:
        raise OpFailed(SharingReject.NO_SUCH_ANCHOR)
    if fc.DocRecord.decode(raw).org != org_id:
        raise OpFailed(SharingReject.DOC_NOT_OWNERS)


@OPS.op(c.OP_PUT, "sh.put")
def _put(ctx: TxContext) -> None:
    try:
        p = PutPayload.decode(ctx.payload)
    except RecordError:
        raise OpFailed(Reject.BAD_PAYLOAD, "put payload") from None
    org_id, _ = members.member(ctx)
    _check_put(ctx, p, org_id)
    key = c.record_key(p.record_id)
    raw = ctx.get(key)
    if raw is None:
        if p.version != 1:
            raise OpFailed(SharingReject.NO_SUCH_RECORD)
        if p.record_id != c.record_id(ctx.sender, ctx.nonce, suite=ctx.suite):
            raise OpFailed(Reject.BAD_PAYLOAD, "a new record's id is codes.record_id(sender, nonce)")
        if p.kind == RecordKind.TRADE_DOCUMENT:
            _check_anchor(ctx, org_id, p.doc_type, p.fingerprint)
        head = RecordHead(org_id, p.kind, p.doc_type, p.fingerprint, 0, ctx.height, ctx.timestamp_ms)
    else:
        head = RecordHead.decode(raw)
        if p.version == 1:
            raise OpFailed(SharingReject.RECORD_EXISTS)
        if head.owner != org_id:
            raise OpFailed(SharingReject.NOT_OWNER)
        if p.version != head.versions + 1:
            raise OpFailed(SharingReject.STALE_VERSION)
        if (p.kind, p.doc_type) != (head.kind, head.doc_type):
            raise OpFailed(Reject.BAD_PAYLOAD, "a version has its record's kind and document type")
        if head.kind == RecordKind.TRADE_DOCUMENT and p.fingerprint != head.fingerprint:
            raise OpFailed(Reject.BAD_PAYLOAD, "every version of a trade document is the anchored document")
    ctx.put(key, dataclasses.replace(head, versions=p.version).encode())
    version = Version(
        p.digest, p.size, p.fingerprint, ctx.sender, ctx.height, ctx.timestamp_ms, ctx.tx_id, p.inline
    )
    ctx.put(c.version_key(p.record_id, p.version), version.encode())
    ctx.emit(b"sh.put", p.record_id + _U32.pack(p.version))


@OPS.op(c.OP_GRANT, "sh.grant")
def _grant(ctx: TxContext) -> None:
    record_id, grantee, purpose, expiry_ms = _unpack(_GRANT_PAYLOAD, ctx.payload)
    if purpose not in Purpose._value2member_map_:
        raise OpFailed(Reject.BAD_PAYLOAD, "unknown purpose")
    org_id, _ = members.member(ctx)
    head = _owned(ctx, record_id, org_id)
    if grantee == org_id:
        raise OpFailed(SharingReject.BAD_GRANTEE, "the owner needs no grant")
    org = members.active_org(ctx, grantee)
    if not eligible(head.kind, org.roles):
        raise OpFailed(SharingReject.NOT_ELIGIBLE)
    if not ctx.timestamp_ms < expiry_ms <= ctx.timestamp_ms + c.grant_ms_max:
        raise OpFailed(SharingReject.BAD_EXPIRY)
    g = Grant(purpose, expiry_ms, GrantStatus.ACTIVE, ctx.height, ctx.timestamp_ms, 0, 0, ctx.tx_id)
    ctx.put(c.grant_key(record_id, grantee), g.encode())
    ctx.emit(b"sh.grant", ctx.payload)


@OPS.op(c.OP_REVOKE, "sh.revoke")
def _revoke(ctx: TxContext) -> None:
    record_id, grantee = _unpack(_REVOKE_PAYLOAD, ctx.payload)
    org_id, _ = members.member(ctx)
    _owned(ctx, record_id, org_id)
    key = c.grant_key(record_id, grantee)
    raw = ctx.get(key)
    if raw is None:
        raise OpFailed(SharingReject.NO_GRANT)
    g = Grant.decode(raw)
    if g.status == GrantStatus.REVOKED:
        raise OpFailed(SharingReject.GRANT_REVOKED)
    revoked = dataclasses.replace(
        g, status=GrantStatus.REVOKED, revoked_height=ctx.height, revoked_ms=ctx.timestamp_ms
    )
    ctx.put(key, revoked.encode())
    ctx.emit(b"sh.revoke", ctx.payload)


@OPS.op(c.OP_REQUEST, "sh.request")
def _request(ctx: TxContext) -> None:
    record_id, version, recipient, n = _unpack(_REQUEST_PAYLOAD, ctx.payload)
    org_id, org = members.member(ctx)
    head = _record(ctx, record_id)
    _version_exists(ctx, record_id, version)
    members.recipient(ctx, org_id, recipient)
    basis, _ = _access(ctx, record_id, head, org_id, org)
    _next_release(ctx, record_id, version, org_id, n)
    key = c.request_key(record_id, version, org_id)
    raw = ctx.get(key)
    # One open request per reader and version; asking again for another key (the reader
    # rotated its key) replaces it, so a request to a revoked key never blocks the reader.
    if raw is not None and Request.decode(raw).recipient == recipient:
        raise OpFailed(SharingReject.ALREADY_REQUESTED)
    req = Request(recipient, ctx.sender, basis, ctx.height, ctx.timestamp_ms, ctx.tx_id)
    ctx.put(key, req.encode())
    ctx.emit(b"sh.request", record_id + _U32.pack(version) + org_id)


@OPS.op(c.OP_RELEASE, "sh.release")
def _release(ctx: TxContext) -> None:
    size = wrapped_bytes(ctx.suite)
    if len(ctx.payload) != _RELEASE_PAYLOAD.size + size:
        raise OpFailed(Reject.BAD_PAYLOAD, f"a release carries a {size}-byte wrapped key")
    record_id, version, reader_id, recipient, n = _RELEASE_PAYLOAD.unpack_from(ctx.payload)
    wrapped = ctx.payload[_RELEASE_PAYLOAD.size :]
    org_id, _ = members.member(ctx)
    head = _owned(ctx, record_id, org_id)
    _version_exists(ctx, record_id, version)
    if reader_id == org_id:
        raise OpFailed(SharingReject.BAD_GRANTEE, "the owner needs no release")
    reader = members.active_org(ctx, reader_id)
    members.recipient(ctx, reader_id, recipient)
    basis, g = _access(ctx, record_id, head, reader_id, reader)
    _next_release(ctx, record_id, version, reader_id, n)
    request_key = c.request_key(record_id, version, reader_id)
    if ctx.get(request_key) is not None:
        ctx.delete(request_key)
    rel = Release(
        recipient,
        ctx.sender,
        basis,
        0 if g is None else g.purpose,
        0 if g is None else g.granted_height,
        bytes(32) if g is None else g.tx_id,
        0 if g is None else g.expiry_ms,
        ctx.height,
        ctx.timestamp_ms,
        ctx.tx_id,
        bytes(wrapped),
    )
    ctx.put(c.release_key(record_id, version, reader_id, n), rel.encode())
    ctx.emit(b"sh.release", record_id + _U32.pack(version) + reader_id)


# --- builders (pure: the caller looks up its organization and nonce) -------------------------------
def seal_version(
    suite: CryptoSuite,
    document: bytes,
    record_id: bytes,
    version: int,
    owner_org: bytes,
    owner_key: bytes,
    salt: bytes | None = None,
) -> bytes:
    """A version's sealed bytes: ``frame_version(salt, document)`` under a fresh data key
    bound to ``record_aad(record_id, version)``, the data key sealed to ``owner_key`` as the
    owner organization's (the sole reader). ``salt`` None draws a fresh one, which only
    suits a trade document (its fingerprint is its anchor): a commitment needs the salt
    (``seal_document``). ``ValueError`` for a document over ``document_bytes_max``."""
    if len(document) > document_bytes_max:
        raise ValueError(f"a version's document is at most {document_bytes_max} bytes")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    aad = envelope.record_aad(record_id, version)
    plaintext = frame_version(salt, document)
    return envelope.seal_record(suite, plaintext, aad, {owner_org: owner_key}).encode()


def seal_document(
    suite: CryptoSuite,
    kind: int,
    document: bytes,
    record_id: bytes,
    version: int,
    owner_org: bytes,
    owner_key: bytes,
) -> tuple[bytes, bytes]:
    """(sealed bytes, fingerprint) of a new version of ``document``: a fresh random salt
    sealed with it (``seal_version``) and the fingerprint its put carries
    (``version_fingerprint``: the anchor of a trade document, else the commitment)."""
    salt = secrets.token_bytes(SALT_BYTES)
    sealed = seal_version(suite, document, record_id, version, owner_org, owner_key, salt)
    return sealed, version_fingerprint(kind, salt, document, suite=suite)


def put(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    record_id: bytes,
    version: int,
    kind: int,
    doc_type: int,
    fingerprint: bytes,
    sealed: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tx.Tx:
    """Put version ``version`` of a record (1: a new one, whose id must be
    ``codes.record_id(sender, nonce)``), its ``sealed`` bytes inline if small enough (else the
    caller stores them off chain: only their digest and size go on chain). ``fingerprint``
    is the ``version_fingerprint`` of the sealed document (``seal_document`` gives both)."""
    if len(fingerprint) != 32 or len(record_id) != c.id_bytes:
        raise ValueError("a 16-byte record id and a 32-byte fingerprint")
    if len(sealed) > c.sealed_bytes_max:
        raise ValueError(f"sealed bytes are at most {c.sealed_bytes_max}")
    inline = sealed if len(sealed) <= c.inline_bytes_max else b""
    payload = PutPayload(
        record_id,
        version,
        kind,
        doc_type,
        fingerprint,
        sealed_digest(sealed, suite=suite),
        len(sealed),
        inline,
    )
    reads = members.member_reads(sender, org)
    if version == 1 and kind == RecordKind.TRADE_DOCUMENT:
        reads.add(fc.doc_key(doc_type, fingerprint))
    writes = {c.record_key(record_id), c.version_key(record_id, version)}
    return tx.unsigned(chain_id, c.OP_PUT, sender, nonce, reads, writes, payload.encode())


def grant(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    record_id: bytes,
    grantee: bytes,
    purpose: int,
    expiry_ms: int,
) -> tx.Tx:
    """Grant organization ``grantee`` access to the record for ``purpose`` until ``expiry_ms``."""
    reads = members.member_reads(sender, org) | {c.record_key(record_id), fc.org_key(grantee)}
    payload = _GRANT_PAYLOAD.pack(record_id, grantee, purpose, expiry_ms)
    return tx.unsigned(chain_id, c.OP_GRANT, sender, nonce, reads, {c.grant_key(record_id, grantee)}, payload)


def revoke(chain_id: int, sender: bytes, org: bytes, nonce: int, record_id: bytes, grantee: bytes) -> tx.Tx:
    """Revoke ``grantee``'s grant on the record."""
    reads = members.member_reads(sender, org) | {c.record_key(record_id)}
    payload = _REVOKE_PAYLOAD.pack(record_id, grantee)
    return tx.unsigned(
        chain_id, c.OP_REVOKE, sender, nonce, reads, {c.grant_key(record_id, grantee)}, payload
    )


def _release_reads(
    record_id: bytes, version: int, reader: bytes, n: int, previous: bytes | None
) -> set[bytes]:
    """What ``_next_release`` reads for release ``n`` (``previous``: release n - 1's recipient)."""
    reads = {c.release_key(record_id, version, reader, n)}
    if n:
        if previous is None:
            raise ValueError("release n > 0 names release n - 1's recipient key")
        reads |= {c.release_key(record_id, version, reader, n - 1), fc.key_key(previous)}
    return reads


def request(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    record_id: bytes,
    version: int,
    recipient: bytes,
    n: int = 0,
    previous: bytes | None = None,
) -> tx.Tx:
    """Ask for version ``version``'s data key, to be sealed to ``recipient`` (a key of
    ``org``), as release ``n`` (0: the first; n > 0 once release n - 1's recipient key,
    ``previous``, is no longer one of ``org``'s active keys)."""
    reads = members.member_reads(sender, org) | {
        c.record_key(record_id),
        c.version_key(record_id, version),
        c.grant_key(record_id, org),
        fc.key_key(recipient),
    }
    reads |= _release_reads(record_id, version, org, n, previous)
    writes = {c.request_key(record_id, version, org)}
    payload = _REQUEST_PAYLOAD.pack(record_id, version, recipient, n)
    return tx.unsigned(chain_id, c.OP_REQUEST, sender, nonce, reads, writes, payload)


def release(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    record_id: bytes,
    version: int,
    reader: bytes,
    recipient: bytes,
    wrapped: bytes,
    n: int = 0,
    previous: bytes | None = None,
) -> tx.Tx:
    """Release version ``version``'s data key to organization ``reader``: ``wrapped`` is the
    data key sealed to ``recipient`` (``envelope.rewrap``), as release ``n`` (see
    ``request``; ``previous``: release n - 1's recipient)."""
    reads = members.member_reads(sender, org) | {
        c.record_key(record_id),
        c.version_key(record_id, version),
        c.grant_key(record_id, reader),
        fc.org_key(reader),
        fc.key_key(recipient),
    }
    reads |= _release_reads(record_id, version, reader, n, previous)
    writes = {c.request_key(record_id, version, reader), c.release_key(record_id, version, reader, n)}
    payload = _RELEASE_PAYLOAD.pack(record_id, version, reader, recipient, n) + wrapped
    return tx.unsigned(chain_id, c.OP_RELEASE, sender, nonce, reads, writes, payload)
