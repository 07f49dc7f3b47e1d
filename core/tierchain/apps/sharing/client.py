"""``Sharing``: the high-level API of authorized decryption. It derives every declared key.

::

    sh = Sharing(chain, attachments=AttachmentStore(path, suite=chain.suite))
    owner, bank = sh.party(owner_keys), sh.party(bank_keys)
    rid = owner.put(invoice, RecordKind.TRADE_DOCUMENT, anchor=(DocType.INVOICE, fp)).check().id
    owner.grant(rid, bank_org, Purpose.FINANCING, expiry_ms).check()
    bank.request(rid, 1).check()
    owner.answer_requests(rid)          # the owner's key service: releases what is allowed
    bank.read(rid, 1) == invoice        # checked against the on-chain fingerprint
    sh.access_log(rid)                  # who obtained which version's key, when, why

Each op method signs one transaction, sends it and waits for its receipt (``timeout_s``);
a ``Result`` carries the code (an engine ``Reject`` or the app's ``SharingReject``). A
party's keys must be of the ledger's crypto suite (``Sharing.party`` refuses others with
finance's ``SuiteMismatch``). Reading never trusts what it is served: sealed bytes are
checked against the digest and size on chain, the plaintext opens only under the record's
id and version, and its document fingerprint must be the one the chain records.

Key custody: a version's data key is sealed to the owner key that put it (``Version.sealer``);
that key (its secret) is what releases the version, so an owner that rotates its key keeps
the old secret for releasing old versions, or puts a new version with the new key.
"""

from __future__ import annotations

import secrets
from typing import Any

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import SuiteMismatch
from tierchain.apps.sharing import access, envelope
from tierchain.apps.sharing import codes as c
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

requests_per_answer_max = 1000  # open requests one answer_requests call looks at


class ReadError(TierChainError):
    """A version could not be read."""


class NotReleased(ReadError):
    """No key release of that version to this organization (or to this key) is on chain."""


class KeyDoesNotOpen(ReadError):
    """The released (or own) data key does not open the version's sealed bytes."""


class FingerprintMismatch(ReadError):
    """A plaintext whose document fingerprint is not the one the chain records."""


class DataKeyUnavailable(TierChainError):
    """The owner's keys do not unwrap a version's data key (sealed to another owner key)."""


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
        raw = self.get(c.release_key(record_id, version, org))
        return None if raw is None else Release.decode(raw, self.suite)

    def requests(
        self, record_id: bytes | None = None, limit: int = requests_per_answer_max
    ) -> list[tuple[bytes, int, bytes, Request]]:
        """Open key requests (record, version, org, request), of one record or of all."""
        rows = scan_all(self.ledger, b"sq/" + (record_id or b""), limit)
        return [(*access.parse_version_key(k), Request.decode(v)) for k, v in rows]

    def releases(self, record_id: bytes) -> list[tuple[int, bytes, Release]]:
        """Every key release of a record: (version, org, release), in key order."""
        rows = scan_all(self.ledger, b"sk/" + record_id)
        return [(*access.parse_version_key(k)[1:], Release.decode(v, self.suite)) for k, v in rows]

    def access_log(self, record_id: bytes) -> list[dict]:
        """Who obtained which version's data key of a record, when, sealed to which key, on
        what basis (a grant: its purpose, height and expiry; or standing access) and by
        which tx, ordered by height. Complete: a key is obtained only by a release, and
        every release stays on chain (``sk/`` is never deleted or overwritten)."""
        log = []
        for version, org, rel in self.releases(record_id):
            info = self.org(org)
            grant = rel.basis == Basis.GRANT
            log.append(
                {
                    "record": record_id,
                    "version": version,
                    "org": org,
                    "org_name": info.name.decode(errors="replace") if info else "",
                    "recipient": rel.recipient,
                    "basis": Basis(rel.basis),
                    "purpose": Purpose(rel.purpose) if grant else None,
                    "grant_height": rel.grant_height if grant else None,
                    "grant_expiry_ms": rel.grant_expiry_ms if grant else None,
                    "released_by": rel.releaser,
                    "height": rel.height,
                    "timestamp_ms": rel.timestamp_ms,
                    "tx_id": rel.tx_id,
                }
            )
        log.sort(key=lambda e: (e["height"], e["version"], e["org"]))
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
        given, is checked against the plaintext). ``FingerprintMismatch`` before signing."""
        kind = RecordKind(kind)
        fp = self._fingerprint(plaintext)
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
        sealed = self._seal(plaintext, record_id, 1, org)
        tx = access.put(chain_id, pk, org, nonce, record_id, 1, kind, doc_type, fp, sealed, suite=self.suite)
        return self.send(tx, id=record_id, version=1)

    def put_version(self, record_id: bytes, plaintext: bytes) -> Result:
        """The record's next version: ``plaintext`` under a fresh data key (a re-key when it
        is unchanged). Readers need a new release for it; revoked or expired grantees get
        none. A trade document's versions are all the anchored document."""
        head = self.sh.record(record_id)
        fp = self._fingerprint(plaintext)
        if head is None:  # version 0: the ledger names the refusal (NO_SUCH_RECORD)
            version, kind, doc_type = 0, RecordKind.GENERAL, 0
        else:
            if head.kind == RecordKind.TRADE_DOCUMENT and fp != head.fingerprint:
                raise FingerprintMismatch("the document is not the anchored one")
            version, kind, doc_type = head.versions + 1, head.kind, head.doc_type
        chain_id, pk, org, nonce = self._args()
        sealed = self._seal(plaintext, record_id, version, org)
        tx = access.put(
            chain_id, pk, org, nonce, record_id, version, kind, doc_type, fp, sealed, suite=self.suite
        )
        return self.send(tx, id=record_id, version=version)

    def _fingerprint(self, plaintext: bytes) -> bytes:
        return fc.document_fingerprint(plaintext, suite=self.suite)

    def _seal(self, plaintext: bytes, record_id: bytes, version: int, org: bytes) -> bytes:
        sealed = access.seal_version(self.suite, plaintext, record_id, version, org, self.pk)
        if len(sealed) > c.inline_bytes_max:
            if self.sh.attachments is None:
                raise AttachmentMissing(
                    f"a version over {c.inline_bytes_max} sealed bytes needs an attachment store"
                )
            self.sh.attachments.put(sealed)  # stored before the chain refers to it
        return sealed

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
        ``recipient_key``. The chain refuses it without a live grant or standing access.
        A key that is not the owner's, or a version that does not exist, still sends (the
        ledger names the refusal) but seals nothing of the record."""
        head = self.sh.record(record_id)
        if head is not None and head.owner == self.org and self.sh.version(record_id, version) is not None:
            data_key = self.data_key(record_id, version)
        else:  # not ours, or no such version: refused on chain, and nothing of ours is sealed
            data_key = secrets.token_bytes(self.suite.aead_key_bytes)
        try:
            wrapped = envelope.rewrap(self.suite, data_key, recipient_key)
        except envelope.SharingError:  # not a key of this suite: the chain names it
            wrapped = bytes(access.wrapped_bytes(self.suite))
        chain_id, pk, own, nonce = self._args()
        tx = access.release(chain_id, pk, own, nonce, record_id, version, org, recipient_key, wrapped)
        r = self.send(tx, id=record_id, version=version)
        if r.ok:
            self.release_log.append((record_id, version, org, r.tx_id))
        return r

    def answer_requests(self, record_id: bytes | None = None, now_ms: int | None = None) -> list[Result]:
        """The owner's key service: release every open request on this organization's
        records (or on ``record_id``) that a grant or standing access seems to allow, and
        return the results (the chain decides at each release's block time). Requests
        under no grant or a revoked one are left alone, and with ``now_ms`` so are those
        under grants expired by then (unless the reader has standing access). It looks at
        the first ``requests_per_answer_max`` open requests in key order: a busy chain's key
        service answers per record (``record_id``)."""
        own, heads = self.org, {}
        results = []
        for rid, version, org, req in self.sh.requests(record_id):
            if rid not in heads:
                heads[rid] = self.sh.record(rid)
            head = heads[rid]
            if head is None or head.owner != own or not self._may_release(rid, head, org, now_ms):
                continue
            results.append(self.release(rid, version, org, req.recipient))
        return results

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
        """Ask for a version's data key, sealed to this key (needs a live grant or standing access)."""
        chain_id, pk, org, nonce = self._args()
        return self.send(access.request(chain_id, pk, org, nonce, record_id, version, pk), id=record_id)

    def read(self, record_id: bytes, version: int) -> bytes:
        """A version's plaintext: the data key released to this organization and sealed to
        this key (the owner's own key for the owner's records), the sealed bytes checked
        against the chain's digest, opened under the record's id and version, and the
        plaintext's document fingerprint checked against the version's on chain."""
        head = self.sh.record(record_id)
        v = self.sh.version(record_id, version)
        if head is None or v is None:
            raise ReadError("no such record version on chain")
        org = self.org
        sealed = envelope.SealedRecord.decode(self.sh.sealed_bytes(record_id, version), suite=self.suite)
        if head.owner != org:
            rel = self.sh.release(record_id, version, org)
            if rel is None:
                raise NotReleased("no key release of this version to this organization")
            if rel.recipient != self.pk:
                raise NotReleased("the key was released to another key of this organization")
            # The release is one more wrapping of the same data key: open as that reader.
            sealed = envelope.SealedRecord(sealed.suite, sealed.nonce, sealed.ciphertext, {org: rel.wrapped})
        aad = envelope.record_aad(record_id, version)
        plaintext = envelope.open_record(self.suite, sealed, org, self.keys, aad)
        if plaintext is None:
            raise KeyDoesNotOpen("the data key does not open this version")
        if self._fingerprint(plaintext) != v.fingerprint:
            raise FingerprintMismatch("the plaintext is not the document the chain fingerprints")
        return plaintext
