"""``Sharing``: the high-level API of authorized decryption. It derives every declared key.

::

    sh = Sharing(chain, attachments=AttachmentStore(path, suite=chain.suite))
    owner, bank = sh.party(owner_keys), sh.party(bank_keys)
    rid = owner.put(invoice, RecordKind.TRADE_DOCUMENT, anchor=(DocType.INVOICE, fp)).check().id
    owner.grant(rid, bank_org, Purpose.FINANCING, expiry_ms).check()
    bank.request(rid, 1).check()
    owner.answer_requests(rid)          # the owner's key service: releases what is allowed
    bank.read(rid, 1) == invoice        # checked against the on-chain anchor (or commitment)
    sh.access_log(rid)                  # who obtained which version's key, when, why

Each op method signs one transaction, sends it and waits for its receipt (``timeout_s``);
a ``Result`` carries the code (an engine ``Reject`` or the app's ``SharingReject``). A
party's keys must be of the ledger's crypto suite (``Sharing.party`` refuses others with
finance's ``SuiteMismatch``). Reading never trusts what it is served: sealed bytes are
checked against the digest and size on chain, the plaintext opens only under the record's
id and version, and the document in it must have the version's fingerprint on chain: a
trade document's anchor (``document_fingerprint``), or for other kinds the keyed
commitment under the salt sealed with it (``access.version_fingerprint``; the owner draws
a fresh salt for every version, so the chain holds nothing that tests a guessed document
or links equal versions). ``SharingParty.opening`` gives a reader the salt too, for
showing a third party that a document is the committed one.

Key custody: a version's data key is sealed to the owner key that put it (``Version.sealer``);
that key (its secret) is what releases (and, for the owner, reads) the version, so an owner
that rotates its key keeps the old secret for releasing old versions, or puts a new version
with the new key. A reader that lost the key a version was released to asks again with its
new key: once the old key is no longer one of its organization's active keys, the owner
may release the same data key again (release n + 1, logged beside the earlier ones).
"""

from __future__ import annotations

import secrets
from typing import Any

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import SuiteMismatch
from tierchain.apps.sharing import access, envelope
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import ledger as ledger_mod
from tierchain.apps.sharing.access import Grant, GrantStatus, RecordHead, Release, Request, Version
from tierchain.apps.sharing.attachments import AttachmentCorrupt, AttachmentMissing, AttachmentStore
from tierchain.apps.sharing.codes import Basis, Purpose, RecordKind
from tierchain.apps.sharing.ledger import Ledger, Result, check_suite, ledger_of, scan_all, send_signed
from tierchain.crypto import CryptoSuite, KeyPair
from tierchain.errors import TierChainError
from tierchain.wire import tx as txcodec

__all__ = [
    "DataKeyUnavailable",
    "FingerprintMismatch",
    "KeyDoesNotOpen",
    "NotReleased",
    "ReadError",
    "Result",
    "Sharing",
    "SharingParty",
    "SuiteMismatch",
]

requests_per_answer_max = 1000  # open requests one answer_requests call looks at (by default)


class ReadError(TierChainError):
    """A version could not be read."""


class NotReleased(ReadError):
    """No key release of that version to this organization (or to this key) is on chain."""


class KeyDoesNotOpen(ReadError):
    """The released (or own) data key does not open the version's sealed bytes."""


class FingerprintMismatch(ReadError):
    """A document that does not have the version's fingerprint on chain (its anchor, or its
    keyed commitment under the salt sealed with it)."""


class DataKeyUnavailable(ReadError):
    """The owner's key does not unwrap a version's data key (sealed to another owner key:
    ``Version.sealer``)."""


class Sharing:
    """Queries and parties over one ledger (an embedded ``Chain``, a node, or a ``Ledger``)."""

    def __init__(
        self, ledger: Any, attachments: AttachmentStore | None = None, timeout_s: float = 30.0
    ) -> None:
        self.ledger: Ledger = ledger_of(ledger)
        if attachments is not None and attachments.suite.name != self.suite.name:
            raise SuiteMismatch(f"a {attachments.suite.name} attachment store on a {self.suite.name} chain")
        self.attachments, self.timeout_s = attachments, timeout_s

    @property
    def suite(self) -> CryptoSuite:
        return self.ledger.suite

    def party(self, keys: KeyPair) -> SharingParty:
        """``keys`` acting on this ledger; ``SuiteMismatch`` if they are another suite's keys."""
        check_suite(self.ledger, keys)
        return SharingParty(self, keys)

    # --- queries ---------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        return self.ledger.state_get(key)

    def org_of(self, public_key: bytes) -> bytes | None:
        raw = self.get(fc.key_key(public_key))
        return None if raw is None else fc.KeyRecord.decode(raw).org

    def org(self, org_id: bytes) -> fc.OrgRecord | None:
        raw = self.get(fc.org_key(org_id))
        return None if raw is None else fc.OrgRecord.decode(raw)

    def record(self, record_id: bytes) -> RecordHead | None:
        raw = self.get(c.record_key(record_id))
        return None if raw is None else RecordHead.decode(raw)

    def version(self, record_id: bytes, version: int) -> Version | None:
        raw = self.get(c.version_key(record_id, version))
        return None if raw is None else Version.decode(raw)

    def grant(self, record_id: bytes, org: bytes) -> Grant | None:
        raw = self.get(c.grant_key(record_id, org))
        return None if raw is None else Grant.decode(raw)

    def request(self, record_id: bytes, version: int, org: bytes) -> Request | None:
        raw = self.get(c.request_key(record_id, version, org))
        return None if raw is None else Request.decode(raw)

    def release(self, record_id: bytes, version: int, org: bytes) -> Release | None:
        """The last key release of a version to ``org`` (None if there is none)."""
        history = self.release_history(record_id, version, org)
        return history[-1] if history else None

    def release_history(self, record_id: bytes, version: int, org: bytes) -> list[Release]:
        """Every key release of a version to ``org``, by release number (index n: ``sk/...<n>``)."""
        prefix = c.release_key(record_id, version, org, 0)[:-2]
        rows = sorted((access.parse_release_key(k)[3], v) for k, v in scan_all(self.ledger, prefix))
        return [Release.decode(v, self.suite) for _, v in rows]

    def requests(
        self, record_id: bytes | None = None, limit: int = requests_per_answer_max
    ) -> list[tuple[bytes, int, bytes, Request]]:
        """Open key requests (record, version, org, request), of one record or of all."""
        rows = scan_all(self.ledger, b"sq/" + (record_id or b""), limit)
        return [(*access.parse_version_key(k), Request.decode(v)) for k, v in rows]

    def releases(self, record_id: bytes) -> list[tuple[int, bytes, int, Release]]:
        """Every key release of a record: (version, org, release number, release), in key order."""
        rows = scan_all(self.ledger, b"sk/" + record_id)
        return [(*access.parse_release_key(k)[1:], Release.decode(v, self.suite)) for k, v in rows]

    def access_log(self, record_id: bytes) -> list[dict]:
        """Who obtained which version's data key of a record, when, sealed to which key, on
        what basis (a grant: its tx, purpose, height and expiry; or standing access) and by
        which tx, ordered by height. Complete: a key is obtained only by a release, and
        every release stays on chain (``sk/`` is never deleted or overwritten; a reader's
        later release to a new key is another entry, ``n`` + 1)."""
        log = []
        for version, org, n, rel in self.releases(record_id):
            info = self.org(org)
            grant = rel.basis == Basis.GRANT
            log.append(
                {
                    "record": record_id,
                    "version": version,
                    "org": org,
                    "org_name": info.name.decode(errors="replace") if info else "",
                    "n": n,
                    "recipient": rel.recipient,
                    "basis": Basis(rel.basis),
                    "purpose": Purpose(rel.purpose) if grant else None,
                    "grant_tx_id": rel.grant_tx_id if grant else None,
                    "grant_height": rel.grant_height if grant else None,
                    "grant_expiry_ms": rel.grant_expiry_ms if grant else None,
                    "released_by": rel.releaser,
                    "height": rel.height,
                    "timestamp_ms": rel.timestamp_ms,
                    "tx_id": rel.tx_id,
                }
            )
        log.sort(key=lambda e: (e["height"], e["version"], e["org"], e["n"]))
        return log

    def sealed_bytes(self, record_id: bytes, version: int) -> bytes:
        """A version's sealed bytes (inline on chain, else from the attachment store),
        checked against the digest and size the chain records: ``AttachmentCorrupt`` if they
        differ, ``AttachmentMissing`` without a store or a file, ``ReadError`` for no version."""
        v = self.version(record_id, version)
        if v is None:
            raise ReadError("no such version on chain")
        if v.on_chain:
            data = v.inline
        elif self.attachments is None:
            raise AttachmentMissing("a large version needs an attachment store")
        else:
            data = self.attachments.get(v.digest)
        if len(data) != v.size or access.sealed_digest(data, suite=self.suite) != v.digest:
            raise AttachmentCorrupt("sealed bytes that are not the version's on chain")
        return data


class SharingParty:
    """One key acting for its organization: an owner, a reader, or both.

    ``release_log`` is the owner's own record of the key releases it made (record, version,
    reader org, tx id) — what an owner compares with the chain's ``access_log``."""

    def __init__(self, sh: Sharing, keys: KeyPair) -> None:
        self.sh, self.keys, self.pk = sh, keys, keys.public_key
        self.release_log: list[tuple[bytes, int, bytes, bytes]] = []
        self._data_keys: dict[tuple[bytes, int], bytes] = {}
        self._answer_after: dict[bytes, bytes] = {}  # answer_requests: where the next call resumes

    @property
    def suite(self) -> CryptoSuite:
        return self.sh.suite

    @property
    def org(self) -> bytes:
        """The sender's organization (the zero id if the key is unknown: ops then fail with
        SENDER_NOT_MEMBER, as they should)."""
        return self.sh.org_of(self.pk) or fc.ZERO_ID

    def _args(self) -> tuple[int, bytes, bytes, int]:
        return self.sh.ledger.chain_id, self.pk, self.org, self.sh.ledger.nonce(self.pk)

    def send(self, tx: txcodec.Tx, **extra: Any) -> Result:
        return send_signed(self.sh.ledger, self.keys, tx, self.sh.timeout_s, **extra)

    # --- owner -------------------------------------------------------------------------
    def put(
        self,
        plaintext: bytes,
        kind: int,
        anchor: tuple[int, bytes] | None = None,
        fingerprint: bytes | None = None,
    ) -> Result:
        """A new record holding ``plaintext`` as version 1 (``Result.id``: its id). A trade
        document names its finance anchor ``(doc type, fingerprint)``, which must be the
        plaintext's ``document_fingerprint``; other kinds take none (``fingerprint``, if
        given, is checked against the plaintext's ``document_fingerprint``, and not put on
        chain: the version's fingerprint there is its keyed commitment).
        ``FingerprintMismatch`` before signing."""
        kind = RecordKind(kind)
        fp = fc.document_fingerprint(plaintext, suite=self.suite)
        if kind == RecordKind.TRADE_DOCUMENT:
            if anchor is None:
                raise ValueError("a trade document names its anchor (doc type, fingerprint)")
            doc_type, anchored = anchor
            if anchored != fp or fingerprint not in (None, fp):
                raise FingerprintMismatch("the document is not the anchored one")
        else:
            if anchor is not None:
                raise ValueError("only a trade document has an anchor")
            doc_type = 0
            if fingerprint not in (None, fp):
                raise FingerprintMismatch("the fingerprint is not the plaintext's")
        chain_id, pk, org, nonce = self._args()
        record_id = c.record_id(pk, nonce, suite=self.suite)
        sealed, fp = self._seal(kind, plaintext, record_id, 1, org)
        tx = access.put(chain_id, pk, org, nonce, record_id, 1, kind, doc_type, fp, sealed, suite=self.suite)
        return self.send(tx, id=record_id, version=1)

    def put_version(self, record_id: bytes, plaintext: bytes) -> Result:
        """The record's next version: ``plaintext`` under a fresh data key (a re-key when it
        is unchanged). Readers need a new release for it; revoked or expired grantees get
        none. A trade document's versions are all the anchored document; another kind's
        version has a fresh salt, so its commitment is unrelated to earlier versions' even
        when the document is unchanged."""
        head = self.sh.record(record_id)
        if head is None:  # version 0: the ledger names the refusal (NO_SUCH_RECORD)
            version, kind, doc_type = 0, RecordKind.GENERAL, 0
        else:
            anchor = fc.document_fingerprint(plaintext, suite=self.suite)
            if head.kind == RecordKind.TRADE_DOCUMENT and anchor != head.fingerprint:
                raise FingerprintMismatch("the document is not the anchored one")
            version, kind, doc_type = head.versions + 1, head.kind, head.doc_type
        chain_id, pk, org, nonce = self._args()
        sealed, fp = self._seal(kind, plaintext, record_id, version, org)
        tx = access.put(
            chain_id, pk, org, nonce, record_id, version, kind, doc_type, fp, sealed, suite=self.suite
        )
        return self.send(tx, id=record_id, version=version)

    def _seal(
        self, kind: int, plaintext: bytes, record_id: bytes, version: int, org: bytes
    ) -> tuple[bytes, bytes]:
        """(sealed bytes, fingerprint) of a new version, a large one stored off chain first."""
        sealed, fp = access.seal_document(self.suite, kind, plaintext, record_id, version, org, self.pk)
        if len(sealed) > c.inline_bytes_max:
            if self.sh.attachments is None:
                raise AttachmentMissing(
                    f"a version over {c.inline_bytes_max} sealed bytes needs an attachment store"
                )
            self.sh.attachments.put(sealed)  # stored before the chain refers to it
        return sealed, fp

    def grant(self, record_id: bytes, org: bytes, purpose: int, expiry_ms: int) -> Result:
        """Let organization ``org`` obtain this record's keys for ``purpose`` until ``expiry_ms``
        (block time); replaces its earlier grant."""
        chain_id, pk, own, nonce = self._args()
        tx = access.grant(chain_id, pk, own, nonce, record_id, org, purpose, expiry_ms)
        return self.send(tx, id=record_id)

    def revoke(self, record_id: bytes, org: bytes) -> Result:
        """End ``org``'s grant now. It keeps what it already obtained (keys, plaintexts)."""
        return self.send(access.revoke(*self._args(), record_id, org), id=record_id)

    def data_key(self, record_id: bytes, version: int) -> bytes:
        """The owner's data key of a version, unwrapped from its sealed bytes with this key
        (``DataKeyUnavailable`` if the version is sealed to another key)."""
        cached = self._data_keys.get((record_id, version))
        if cached is not None:
            return cached
        sealed = envelope.SealedRecord.decode(self.sh.sealed_bytes(record_id, version), suite=self.suite)
        key = envelope.unwrap_key(self.suite, sealed, self.org, self.keys)
        if key is None:
            raise DataKeyUnavailable("this key does not unwrap the version's data key (Version.sealer does)")
        self._data_keys[(record_id, version)] = key
        return key

    def release(self, record_id: bytes, version: int, org: bytes, recipient_key: bytes) -> Result:
        """Release a version's data key to organization ``org``, sealed to its key
        ``recipient_key``. The chain refuses it without a live grant or standing access, and
        while an earlier release of the version to ``org`` was to a key that is still one of
        its active keys (``ALREADY_RELEASED``); else this is the next release (n + 1, beside
        the earlier ones). A key that is not the owner's, or a version that does not exist,
        still sends (the ledger names the refusal) but seals nothing of the record."""
        head = self.sh.record(record_id)
        if head is not None and head.owner == self.org and self.sh.version(record_id, version) is not None:
            data_key = self.data_key(record_id, version)
        else:  # not ours, or no such version: refused on chain, and nothing of ours is sealed
            data_key = secrets.token_bytes(self.suite.aead_key_bytes)
        try:
            wrapped = envelope.rewrap(self.suite, data_key, recipient_key)
        except envelope.SharingError:  # not a key of this suite: the chain names it
            wrapped = bytes(access.wrapped_bytes(self.suite))
        n, previous = self._next_release(record_id, version, org)
        chain_id, pk, own, nonce = self._args()
        tx = access.release(
            chain_id, pk, own, nonce, record_id, version, org, recipient_key, wrapped, n, previous
        )
        r = self.send(tx, id=record_id, version=version)
        if r.ok:
            self.release_log.append((record_id, version, org, r.tx_id))
        return r

    def _next_release(self, record_id: bytes, version: int, org: bytes) -> tuple[int, bytes | None]:
        """(n, release n - 1's recipient) of the next release of a version to ``org``."""
        history = self.sh.release_history(record_id, version, org)
        return len(history), history[-1].recipient if history else None

    def answer_requests(
        self, record_id: bytes | None = None, now_ms: int | None = None, limit: int = requests_per_answer_max
    ) -> list[Result]:
        """The owner's key service: release open requests on this organization's records (or
        on ``record_id``) that a grant or standing access seems to allow, and return the
        results (the chain decides at each release's block time). Requests under no grant or
        a revoked one are left alone, and with ``now_ms`` so are those under grants expired
        by then (unless the reader has standing access); so are versions sealed to another
        owner key than this one (``Version.sealer``: that key releases them).

        One call looks at up to ``limit`` open requests of this organization's records (and
        skips every other organization's record whole, without reading its requests; each
        such record counts as one), resuming where the previous call with the same
        ``record_id`` stopped; a call that reaches the end of the open requests leaves the
        next one to start over (``answer_pending`` is then False). So calling it again and
        again reaches every request, however many other organizations' requests there are."""
        if limit < 1:
            raise ValueError("answer_requests looks at one request or more")
        prefix = b"sq/" + (record_id or b"")
        after = self._answer_after.pop(prefix, b"")
        own, budget = self.org, limit
        owned: dict[bytes, RecordHead | None] = {}  # record -> its head if this org owns it
        sealers: dict[tuple[bytes, int], bytes | None] = {}
        results: list[Result] = []
        try:
            while True:
                want = min(ledger_mod.scan_page, budget)
                page = self.sh.ledger.state_scan(prefix, want, after)
                for key, raw in page:
                    rid, version, org = access.parse_version_key(key)
                    if rid not in owned:
                        head = self.sh.record(rid)
                        owned[rid] = head if head is not None and head.owner == own else None
                        if owned[rid] is None:
                            budget -= 1
                    head = owned[rid]
                    if head is None:  # another organization's record: skip all its requests
                        after = key[: 3 + c.id_bytes] + b"\xff" * (4 + c.id_bytes)
                    else:
                        budget -= 1
                        if (rid, version) not in sealers:
                            v = self.sh.version(rid, version)
                            sealers[(rid, version)] = None if v is None else v.sealer
                        if sealers[(rid, version)] == self.pk and self._may_release(rid, head, org, now_ms):
                            results.append(self.release(rid, version, org, Request.decode(raw).recipient))
                        after = key
                    if budget == 0:
                        return results
                if len(page) < want:  # the end: the next call starts over
                    after = b""
                    return results
        finally:
            if after:
                self._answer_after[prefix] = after

    def answer_pending(self, record_id: bytes | None = None) -> bool:
        """Whether the last ``answer_requests(record_id)`` stopped before the end of the open
        requests (the next call resumes there)."""
        return bool(self._answer_after.get(b"sq/" + (record_id or b"")))

    def _may_release(self, record_id: bytes, head: RecordHead, org: bytes, now_ms: int | None) -> bool:
        info = self.sh.org(org)
        if info is None:
            return False
        g = self.sh.grant(record_id, org)
        if (
            g is not None
            and g.status == GrantStatus.ACTIVE
            and (now_ms is None or now_ms < g.expiry_ms)
            and access.eligible(head.kind, info.roles)
        ):
            return True
        return access.has_standing(info.roles)

    # --- reader -------------------------------------------------------------------------
    def request(self, record_id: bytes, version: int) -> Result:
        """Ask for a version's data key, sealed to this key (needs a live grant or standing
        access). Once a key was released to this organization, asking again is refused
        (``ALREADY_RELEASED``) unless that release's key is no longer one of its active keys
        (lost or rotated): then this asks for the next release, to this key."""
        n, previous = self._next_release(record_id, version, self.org)
        chain_id, pk, org, nonce = self._args()
        tx = access.request(chain_id, pk, org, nonce, record_id, version, pk, n, previous)
        return self.send(tx, id=record_id)

    def read(self, record_id: bytes, version: int) -> bytes:
        """A version's document: the data key released to this organization and sealed to
        this key (the owner's own key that sealed it, for the owner's records), the sealed
        bytes checked against the chain's digest, opened under the record's id and version,
        and the document checked against the version's fingerprint on chain (a trade
        document's anchor, or the keyed commitment under the salt sealed with it)."""
        return self.opening(record_id, version)[0]

    def opening(self, record_id: bytes, version: int) -> tuple[bytes, bytes]:
        """(document, salt) of a version, checked as ``read`` checks it: what lets a third
        party check a non-trade version's commitment on chain
        (``access.commitment(salt, document) == Version.fingerprint``).

        ``NotReleased`` without a release to this key, ``DataKeyUnavailable`` for an owner
        key that did not seal the version, ``KeyDoesNotOpen`` for a released key that does
        not open it, ``FingerprintMismatch`` for a document that is not the one on chain."""
        head = self.sh.record(record_id)
        v = self.sh.version(record_id, version)
        if head is None or v is None:
            raise ReadError("no such record version on chain")
        org = self.org
        sealed = envelope.SealedRecord.decode(self.sh.sealed_bytes(record_id, version), suite=self.suite)
        if head.owner == org:
            if envelope.unwrap_key(self.suite, sealed, org, self.keys) is None:
                raise DataKeyUnavailable(
                    "this key does not unwrap the version's data key (Version.sealer does)"
                )
        else:
            history = self.sh.release_history(record_id, version, org)
            if not history:
                raise NotReleased("no key release of this version to this organization")
            mine = [rel for rel in history if rel.recipient == self.pk]
            if not mine:
                raise NotReleased("the key was released to another key of this organization")
            # The release is one more wrapping of the same data key: open as that reader.
            wrapped = {org: mine[-1].wrapped}
            sealed = envelope.SealedRecord(sealed.suite, sealed.nonce, sealed.ciphertext, wrapped)
        aad = envelope.record_aad(record_id, version)
        plaintext = envelope.open_record(self.suite, sealed, org, self.keys, aad)
        if plaintext is None:
            raise KeyDoesNotOpen("the data key does not open this version")
        try:
            salt, document = access.unframe_version(plaintext)
        except access.RecordError:
            raise FingerprintMismatch("the plaintext is not a framed version (salt, document)") from None
        if access.version_fingerprint(head.kind, salt, document, suite=self.suite) != v.fingerprint:
            raise FingerprintMismatch("the document is not the one the chain fingerprints")
        return document, salt
