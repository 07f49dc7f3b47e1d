"""Authorized decryption (issue 18, items 1 and 2: ``tierchain.apps.sharing.access``,
``attachments``, ``client``), in both crypto suites.

Checked: a trade document behind a finance anchor and an ABS asset file go from owner to
granted readers (and to the regulator by standing access) with every step on chain; a key
release without a grant, after expiry or after revocation is refused and changes nothing; a
revoked grantee gets no key of a re-keyed version and its old key does not open it; every
refusal code of the ops; malformed payloads; large versions through the attachment store
and tampered bytes refused; and, over a seeded random history of grants, revocations,
expiries, versions, requests and releases, the chain's access log equals the owner's own
log of releases and exactly the releases a model of the rules allows.
"""

from __future__ import annotations

import dataclasses
import os
import random
import struct

import pytest

from sharing_world import ALL_ORGS, World, world
from tierchain.apps.finance import DocType
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import SuiteMismatch
from tierchain.apps.sharing import access, envelope, members
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import ledger as sharing_ledger
from tierchain.apps.sharing.access import Grant, GrantStatus, PutPayload, RecordError, RecordHead, Release
from tierchain.apps.sharing.attachments import (
    AttachmentCorrupt,
    AttachmentError,
    AttachmentMissing,
    AttachmentStore,
)
from tierchain.apps.sharing.client import (
    DataKeyUnavailable,
    FingerprintMismatch,
    KeyDoesNotOpen,
    NotReleased,
    ReadError,
    Result,
    Sharing,
    SharingParty,
)
from tierchain.apps.sharing.codes import Basis, Purpose, RecordKind
from tierchain.apps.sharing.codes import SharingReject as R
from tierchain.crypto import ED25519_BLAKE3, SM2_SM3, suite_for
from tierchain.errors import Reject, RejectedError
from tierchain.wire.block import Event

SUITES = ("ed25519-blake3", "sm2-sm3")
DAY = 86_400_000
U32 = struct.Struct("<I")
INVOICE = b"INVOICE 2026-0042\nseller Tier1 Ltd\nbuyer CoreCo\namount 1,000,000.00 CNY\ndue 2026-09-30\n"


@pytest.fixture(params=SUITES)
def w(request) -> World:
    return world(request.param)


@pytest.fixture
def sh(w) -> Sharing:
    return Sharing(w.ledger)


def party(sh: Sharing, w: World, name: str) -> SharingParty:
    return sh.party(w.keys[name])


def _roles(name: str) -> int:
    return members.role_bits(*ALL_ORGS[name])


def now(w: World) -> int:
    """The block time of the next block (MemLedger stamps each block with it)."""
    return w.ledger.timestamp_ms


def unchanged(w: World, attempt, code) -> Result:
    """``attempt`` is refused with ``code`` and changes no state but the sender's nonce."""
    before = {k: v for k, v in w.ledger.state.items() if not k.startswith(b"\x00")}
    result = attempt()
    assert result.code == code, (result.code, code)
    assert {k: v for k, v in w.ledger.state.items() if not k.startswith(b"\x00")} == before
    return result


def args(p: SharingParty) -> tuple[int, bytes, bytes, int]:
    return p.sh.ledger.chain_id, p.pk, p.org, p.sh.ledger.nonce(p.pk)


def put_tx(p: SharingParty, rid: bytes, version: int, kind: int, doc_type: int, fp: bytes, sealed: bytes):
    """A put built by hand (what a client that skips its checks could send)."""
    return access.put(*args(p), rid, version, kind, doc_type, fp, sealed, suite=p.suite)


def anchored_invoice(w: World, name: str = "Tier1", document: bytes = INVOICE) -> bytes:
    return w.fin.party(w.keys[name]).anchor(DocType.INVOICE, document).check().id


def trade_record(sh: Sharing, w: World, document: bytes = INVOICE) -> bytes:
    fp = anchored_invoice(w, "Tier1", document)
    return (
        party(sh, w, "Tier1")
        .put(document, RecordKind.TRADE_DOCUMENT, anchor=(DocType.INVOICE, fp))
        .check()
        .id
    )


def release_event(record_id: bytes, version: int, org: bytes) -> Event:
    return Event(b"sh.release", record_id + U32.pack(version) + org)


# --- the flow ----------------------------------------------------------------------------------------


def test_a_trade_document_reaches_a_granted_bank_and_the_regulator_and_nobody_else(w, sh):
    owner, bank, reg = party(sh, w, "Tier1"), party(sh, w, "BankA"), party(sh, w, "Regulator")
    fp = anchored_invoice(w)
    put = owner.put(INVOICE, RecordKind.TRADE_DOCUMENT, anchor=(DocType.INVOICE, fp)).check()
    rid = put.id
    assert put.receipt.events == (Event(b"sh.put", rid + U32.pack(1)),)
    head, v1 = sh.record(rid), sh.version(rid, 1)
    assert (head.owner, head.kind, head.doc_type, head.fingerprint, head.versions) == (
        w.org("Tier1"), RecordKind.TRADE_DOCUMENT, DocType.INVOICE, fp, 1,
    )  # fmt: skip
    assert v1.on_chain and v1.fingerprint == fp and v1.sealer == owner.pk and INVOICE not in v1.inline
    assert owner.read(rid, 1) == INVOICE  # the owner's own key opens it from chain data

    expiry = now(w) + 30 * DAY
    g = owner.grant(rid, w.org("BankA"), Purpose.FINANCING, expiry).check()
    assert g.receipt.events[0].topic == b"sh.grant"
    grant = sh.grant(rid, w.org("BankA"))
    assert (grant.purpose, grant.expiry_ms, grant.status) == (Purpose.FINANCING, expiry, GrantStatus.ACTIVE)
    with pytest.raises(NotReleased):
        bank.read(rid, 1)  # a grant is not a key

    req = bank.request(rid, 1).check()
    assert req.receipt.events == (Event(b"sh.request", rid + U32.pack(1) + w.org("BankA")),)
    assert sh.request(rid, 1, w.org("BankA")).basis == Basis.GRANT
    assert reg.request(rid, 1).check() and sh.request(rid, 1, w.org("Regulator")).basis == Basis.STANDING

    answered = owner.answer_requests()
    assert [r.code for r in answered] == [Reject.OK, Reject.OK]
    for r in answered:
        assert r.receipt.events[0].topic == b"sh.release"
    assert sh.requests(rid) == []  # the releases closed the requests
    assert bank.read(rid, 1) == INVOICE and reg.read(rid, 1) == INVOICE

    log = sh.access_log(rid)
    by_org = {e["org"]: e for e in log}
    assert set(by_org) == {w.org("BankA"), w.org("Regulator")}
    a, r = by_org[w.org("BankA")], by_org[w.org("Regulator")]
    assert (a["basis"], a["purpose"], a["grant_expiry_ms"], a["org_name"]) == (
        Basis.GRANT, Purpose.FINANCING, expiry, "BankA",
    )  # fmt: skip
    assert a["grant_height"] == sh.grant(rid, w.org("BankA")).granted_height
    assert (r["basis"], r["purpose"], r["grant_height"]) == (Basis.STANDING, None, None)
    assert a["recipient"] == bank.pk and a["released_by"] == owner.pk
    assert {(e["record"], e["version"], e["org"], e["tx_id"]) for e in log} == set(owner.release_log)
    assert [e["height"] for e in log] == sorted(e["height"] for e in log)

    # anyone else: no release, no read; a request without a grant is refused
    other = party(sh, w, "BankB")
    with pytest.raises(NotReleased):
        other.read(rid, 1)
    unchanged(w, lambda: other.request(rid, 1), R.NO_GRANT)


def test_a_release_without_a_grant_is_refused_and_changes_nothing(w, sh):
    owner = party(sh, w, "Tier1")
    rid = trade_record(sh, w)
    bank_b = w.keys["BankB"].public_key
    unchanged(w, lambda: owner.release(rid, 1, w.org("BankB"), bank_b), R.NO_GRANT)
    assert owner.release_log == [] and sh.releases(rid) == []
    # nor to an organization that is not eligible for the kind, nor to the owner itself
    unchanged(w, lambda: owner.release(rid, 1, w.org("FundX"), w.keys["FundX"].public_key), R.NO_GRANT)
    unchanged(w, lambda: owner.release(rid, 1, w.org("Tier1"), owner.pk), R.BAD_GRANTEE)


def test_after_expiry_requests_and_releases_are_refused(w, sh):
    owner, a, b = party(sh, w, "Tier1"), party(sh, w, "BankA"), party(sh, w, "BankB")
    rid = trade_record(sh, w)
    expiry = now(w) + 60_000
    for name in ("BankA", "BankB"):
        owner.grant(rid, w.org(name), Purpose.CREDIT_REVIEW, expiry).check()
    a.request(rid, 1).check()  # asked in time; not yet answered
    w.ledger.timestamp_ms = expiry - 1
    b.request(rid, 1).check()  # the last millisecond still counts
    w.ledger.timestamp_ms = expiry  # a grant is live while the block time is before its expiry
    unchanged(w, lambda: owner.release(rid, 1, w.org("BankA"), a.pk), R.GRANT_EXPIRED)
    unchanged(w, lambda: owner.release(rid, 1, w.org("BankB"), b.pk), R.GRANT_EXPIRED)
    owner.put_version(rid, INVOICE).check()
    unchanged(w, lambda: a.request(rid, 2), R.GRANT_EXPIRED)
    # the key service leaves expired requests alone when told the time; the chain refuses them anyway
    assert owner.answer_requests(rid, now_ms=now(w)) == []
    assert {r.code for r in owner.answer_requests(rid)} == {R.GRANT_EXPIRED}
    assert sh.releases(rid) == [] and len(sh.requests(rid)) == 2
    # renewing the grant serves the open request
    owner.grant(rid, w.org("BankA"), Purpose.CREDIT_REVIEW, now(w) + DAY).check()
    assert [r.code for r in owner.answer_requests(rid, now_ms=now(w))] == [Reject.OK]
    assert a.read(rid, 1) == INVOICE


def test_after_revocation_requests_and_releases_are_refused_and_a_regrant_works(w, sh):
    owner, a, b = party(sh, w, "Tier1"), party(sh, w, "BankA"), party(sh, w, "BankB")
    rid = trade_record(sh, w)
    for name in ("BankA", "BankB"):
        owner.grant(rid, w.org(name), Purpose.FINANCING, now(w) + DAY).check()
    a.request(rid, 1).check()
    rv = owner.revoke(rid, w.org("BankA")).check()
    assert rv.receipt.events == (Event(b"sh.revoke", rid + w.org("BankA")),)
    g = sh.grant(rid, w.org("BankA"))
    assert g.status == GrantStatus.REVOKED and g.revoked_height == w.ledger.height and g.revoked_ms == now(w)
    unchanged(w, lambda: owner.release(rid, 1, w.org("BankA"), a.pk), R.GRANT_REVOKED)
    owner.revoke(rid, w.org("BankB")).check()
    unchanged(w, lambda: b.request(rid, 1), R.GRANT_REVOKED)
    unchanged(w, lambda: owner.revoke(rid, w.org("BankB")), R.GRANT_REVOKED)
    unchanged(w, lambda: owner.revoke(rid, w.org("Regulator")), R.NO_GRANT)
    assert owner.answer_requests(rid) == []  # a revoked grant's request is left alone
    # a re-grant after revocation is a new grant; the open request is then served
    owner.grant(rid, w.org("BankA"), Purpose.DISPUTE_RESOLUTION, now(w) + DAY).check()
    assert [r.code for r in owner.answer_requests(rid)] == [Reject.OK]
    assert a.read(rid, 1) == INVOICE
    assert sh.access_log(rid)[0]["purpose"] == Purpose.DISPUTE_RESOLUTION


def test_a_revoked_grantee_gets_no_key_of_a_new_version_and_its_old_key_does_not_open_it(w, sh):
    owner, bank = party(sh, w, "Tier1"), party(sh, w, "BankA")
    rid = party(sh, w, "Tier1").put(b"delivery schedule v1", RecordKind.GENERAL).check().id
    owner.grant(rid, w.org("BankA"), Purpose.CREDIT_REVIEW, now(w) + DAY).check()
    owner.release(rid, 1, w.org("BankA"), bank.pk).check()
    assert bank.read(rid, 1) == b"delivery schedule v1"
    owner.revoke(rid, w.org("BankA")).check()
    v2 = owner.put_version(rid, b"delivery schedule v2").check()
    assert (v2.id, v2.version, sh.record(rid).versions) == (rid, 2, 2)
    unchanged(w, lambda: bank.request(rid, 2), R.GRANT_REVOKED)
    unchanged(w, lambda: owner.release(rid, 2, w.org("BankA"), bank.pk), R.GRANT_REVOKED)
    with pytest.raises(NotReleased):
        bank.read(rid, 2)
    # what BankA holds of version 1 (its released wrapping) does not open version 2
    suite = sh.suite
    v1_release = sh.release(rid, 1, w.org("BankA"))
    v2_sealed = envelope.SealedRecord.decode(sh.sealed_bytes(rid, 2), suite=suite)
    as_v1_reader = envelope.SealedRecord(
        suite.name, v2_sealed.nonce, v2_sealed.ciphertext, {b"A": v1_release.wrapped}
    )
    assert (
        envelope.open_record(suite, as_v1_reader, b"A", w.keys["BankA"], envelope.record_aad(rid, 2)) is None
    )
    v1_key = envelope.unwrap_key(suite, as_v1_reader, b"A", w.keys["BankA"])
    assert v1_key is not None and v1_key != owner.data_key(rid, 2)
    assert bank.read(rid, 1) == b"delivery schedule v1"  # revocation cannot undo what was read
    # the owner and a standing reader read the new version
    assert owner.read(rid, 2) == b"delivery schedule v2"
    party(sh, w, "Regulator").request(rid, 2).check()
    owner.answer_requests(rid)
    assert party(sh, w, "Regulator").read(rid, 2) == b"delivery schedule v2"


def test_an_abs_asset_file_is_read_by_an_investor_and_a_rating_agency(w, sh):
    originator, fund, rating = party(sh, w, "CoreCo"), party(sh, w, "FundX"), party(sh, w, "RateCo")
    asset_file = b"ABS 2026-1 pool: 1,204 receivables, WAL 0.62y, top obligor 4.1%\n" * 20
    rid = originator.put(asset_file, RecordKind.ABS_ASSET_FILE).check().id
    assert sh.record(rid).fingerprint == sh.version(rid, 1).fingerprint  # its commitment
    originator.grant(rid, w.org("FundX"), Purpose.INVESTMENT, now(w) + 90 * DAY).check()
    originator.grant(rid, w.org("RateCo"), Purpose.RATING, now(w) + 90 * DAY).check()
    unchanged(
        w, lambda: originator.grant(rid, w.org("Tier2"), Purpose.INVESTMENT, now(w) + DAY), R.NOT_ELIGIBLE
    )
    fund.request(rid, 1).check()
    rating.request(rid, 1).check()
    assert all(r.ok for r in originator.answer_requests(rid))
    assert fund.read(rid, 1) == asset_file and rating.read(rid, 1) == asset_file
    # what an ABS pool refers to: the record id and the commitment, opened with the salt
    document, salt = fund.opening(rid, 1)
    assert access.commitment(salt, document, suite=sh.suite) == sh.record(rid).fingerprint
    purposes = {e["org_name"]: e["purpose"] for e in sh.access_log(rid)}
    assert purposes == {"FundX": Purpose.INVESTMENT, "RateCo": Purpose.RATING}


def test_a_grantee_that_loses_its_eligible_role_gets_no_key(w, sh):
    owner, fund = party(sh, w, "CoreCo"), party(sh, w, "FundX")
    rid = owner.put(b"asset file", RecordKind.ABS_ASSET_FILE).check().id
    owner.grant(rid, w.org("FundX"), Purpose.INVESTMENT, now(w) + DAY).check()
    fund.request(rid, 1).check()
    assert w.fin.party(w.node).propose_roles(w.org("FundX"), ("supplier",)).ok  # threshold 1: executes
    unchanged(w, lambda: owner.release(rid, 1, w.org("FundX"), fund.pk), R.NOT_ELIGIBLE)
    assert owner.answer_requests(rid) == []


# --- who may do what ---------------------------------------------------------------------------------


def test_only_the_owner_puts_versions_grants_revokes_and_releases(w, sh):
    owner, bank = party(sh, w, "Tier1"), party(sh, w, "BankA")
    rid = trade_record(sh, w)
    owner.grant(rid, w.org("BankA"), Purpose.FINANCING, now(w) + DAY).check()
    for name in ("Tier2", "BankA"):
        p = party(sh, w, name)
        unchanged(w, lambda p=p: p.put_version(rid, INVOICE), R.NOT_OWNER)
        unchanged(w, lambda p=p: p.grant(rid, w.org("BankB"), Purpose.FINANCING, now(w) + DAY), R.NOT_OWNER)
        unchanged(w, lambda p=p: p.revoke(rid, w.org("BankA")), R.NOT_OWNER)
        unchanged(w, lambda p=p: p.release(rid, 1, w.org("BankA"), bank.pk), R.NOT_OWNER)
    stranger = sh.party(suite_for(sh.suite.name).keys_from_seed(b"stranger".ljust(32, b"\0")))
    unchanged(w, lambda: stranger.put(b"x", RecordKind.GENERAL), R.SENDER_NOT_MEMBER)
    unchanged(w, lambda: stranger.request(rid, 1), R.SENDER_NOT_MEMBER)


def test_refusals_are_named(w, sh):
    owner, a, b = party(sh, w, "Tier1"), party(sh, w, "BankA"), party(sh, w, "BankB")
    rid = trade_record(sh, w)
    t = now(w)
    # grants
    unchanged(w, lambda: owner.grant(rid, w.org("BankA"), Purpose.FINANCING, t), R.BAD_EXPIRY)
    unchanged(
        w, lambda: owner.grant(rid, w.org("BankA"), Purpose.FINANCING, t + c.grant_ms_max + 1), R.BAD_EXPIRY
    )
    unchanged(w, lambda: owner.grant(rid, w.org("Tier1"), Purpose.FINANCING, t + DAY), R.BAD_GRANTEE)
    unchanged(w, lambda: owner.grant(rid, w.fin.org_id("Nobody"), Purpose.FINANCING, t + DAY), R.UNKNOWN_ORG)
    unchanged(w, lambda: owner.grant(rid, w.org("FundX"), Purpose.FINANCING, t + DAY), R.NOT_ELIGIBLE)
    unchanged(w, lambda: owner.grant(bytes(16), w.org("BankA"), Purpose.FINANCING, t + DAY), R.NO_SUCH_RECORD)
    owner.grant(rid, w.org("BankA"), Purpose.FINANCING, t + c.grant_ms_max).check()  # the longest grant
    # requests
    unchanged(w, lambda: a.request(rid, 2), R.NO_SUCH_VERSION)
    unchanged(w, lambda: a.request(bytes(16), 1), R.NO_SUCH_RECORD)
    chain_id, pk, org, nonce = args(a)
    other_key = access.request(chain_id, pk, org, nonce, rid, 1, b.pk)  # BankB's key, not BankA's
    unchanged(w, lambda: a.send(other_key), R.BAD_RECIPIENT_KEY)
    a.request(rid, 1).check()
    unchanged(w, lambda: a.request(rid, 1), R.ALREADY_REQUESTED)
    # releases
    unchanged(w, lambda: owner.release(rid, 1, w.org("BankA"), b.pk), R.BAD_RECIPIENT_KEY)
    unchanged(w, lambda: owner.release(rid, 2, w.org("BankA"), a.pk), R.NO_SUCH_VERSION)
    unchanged(w, lambda: owner.release(rid, 1, w.fin.org_id("Nobody"), a.pk), R.UNKNOWN_ORG)
    owner.release(rid, 1, w.org("BankA"), a.pk).check()
    unchanged(w, lambda: owner.release(rid, 1, w.org("BankA"), a.pk), R.ALREADY_RELEASED)
    unchanged(w, lambda: a.request(rid, 1), R.ALREADY_RELEASED)
    # puts
    owner.put_version(rid, INVOICE).check()
    chain_id, pk, org, nonce = args(owner)
    sealed = access.seal_version(sh.suite, INVOICE, rid, 2, org, pk)
    fp = sh.record(rid).fingerprint
    for stale in (2, 1 + 3):
        again = put_tx(owner, rid, stale, RecordKind.TRADE_DOCUMENT, DocType.INVOICE, fp, sealed)
        unchanged(w, lambda again=again: owner.send(again), R.STALE_VERSION)
    first = put_tx(owner, rid, 1, RecordKind.TRADE_DOCUMENT, DocType.INVOICE, fp, sealed)
    unchanged(w, lambda: owner.send(first), R.RECORD_EXISTS)
    unchanged(w, lambda: owner.put_version(bytes(16), INVOICE), R.NO_SUCH_RECORD)
    # anchors: a trade document's must exist and be the owner's
    waybill = b"WAYBILL 77: 40 pallets"
    fp_w = fc.document_fingerprint(waybill, suite=sh.suite)
    unchanged(
        w,
        lambda: owner.put(waybill, RecordKind.TRADE_DOCUMENT, anchor=(DocType.WAYBILL, fp_w)),
        R.NO_SUCH_ANCHOR,
    )
    theirs = anchored_invoice(w, "Tier2", b"Tier2's invoice")
    theirs_put = (b"Tier2's invoice", RecordKind.TRADE_DOCUMENT, (DocType.INVOICE, theirs))
    unchanged(w, lambda: owner.put(*theirs_put), R.DOC_NOT_OWNERS)


def test_a_reader_that_rotated_its_key_asks_again_for_the_new_key(w, sh):
    owner, bank = party(sh, w, "Tier1"), party(sh, w, "BankA")
    rid = trade_record(sh, w)
    owner.grant(rid, w.org("BankA"), Purpose.FINANCING, now(w) + DAY).check()
    bank.request(rid, 1).check()
    new_keys = suite_for(sh.suite.name).keys_from_seed(b"BankA key 2".ljust(32, b"\0"))
    assert w.fin.party(w.keys["BankA"]).rotate_key(new_keys.public_key).ok
    assert owner.answer_requests(rid)[0].code == R.BAD_RECIPIENT_KEY  # sealed to a revoked key: refused
    rotated = sh.party(new_keys)
    rotated.request(rid, 1).check()  # replaces the request to the old key
    assert sh.request(rid, 1, w.org("BankA")).recipient == new_keys.public_key
    assert [r.code for r in owner.answer_requests(rid)] == [Reject.OK]
    assert rotated.read(rid, 1) == INVOICE


def other_key(sh: Sharing, seed: bytes):
    return suite_for(sh.suite.name).keys_from_seed(seed.ljust(32, b"\0"))


class CountingLedger:
    """A ledger that records every state key read through it (what the key service touches)."""

    def __init__(self, inner) -> None:
        self.inner, self.reads = inner, []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def state_get(self, key: bytes):
        self.reads.append(key)
        return self.inner.state_get(key)


# --- what outsiders see; the access log names the grant; more than a page of requests; lost keys ----


@pytest.mark.parametrize("kind", [RecordKind.GENERAL, RecordKind.ABS_ASSET_FILE])
def test_outsiders_cannot_test_a_guessed_document_nor_link_equal_versions(w, sh, kind):
    """A non-trade version's fingerprint is a keyed commitment under a salt sealed with the
    document: the chain's full data (every state entry and every tx) holds no unkeyed hash
    of the document, two versions of the same document have unrelated commitments, and a
    reader checks what it opens against the commitment (and can show the opening)."""
    owner, reader = party(sh, w, "CoreCo"), party(sh, w, "Regulator")
    document = b"ABS 2026-2 pool tape: 1,204 obligors, balances, ratings\n"
    rid = owner.put(document, kind).check().id
    owner.put_version(rid, document).check()  # unchanged: a re-key
    v1, v2 = sh.version(rid, 1), sh.version(rid, 2)
    assert sh.record(rid).fingerprint == v1.fingerprint and v1.fingerprint != v2.fingerprint
    chain_data = b"".join([*w.ledger.state, *w.ledger.state.values(), *w.ledger.sent])
    guesses = [
        fc.document_fingerprint(document, suite=sh.suite),
        sh.suite.hash(c.SH_SEALED_VERSION, document),
    ]
    assert document not in chain_data and not [g for g in guesses if g in chain_data]
    for version in (1, 2):
        reader.request(rid, version).check()
    assert [r.code for r in owner.answer_requests(rid)] == [Reject.OK, Reject.OK]
    (d1, s1), (d2, s2) = reader.opening(rid, 1), reader.opening(rid, 2)
    assert d1 == d2 == document and s1 != s2 and len(s1) == access.SALT_BYTES
    assert access.commitment(s1, document, suite=sh.suite) == v1.fingerprint
    assert access.commitment(s2, document, suite=sh.suite) == v2.fingerprint
    assert access.commitment(s1, document + b" ", suite=sh.suite) != v1.fingerprint
    assert reader.read(rid, 2) == owner.read(rid, 2) == document

    # an owner bypassing its client: a commitment under another salt than the sealed one,
    # or a plaintext without the framing, is refused by every reader (the chain cannot tell)
    def bypassed(sealed_of, fingerprint: bytes) -> bytes:
        _, pk, org, nonce = args(owner)
        new = c.record_id(pk, nonce, suite=sh.suite)
        owner.send(put_tx(owner, new, 1, kind, 0, fingerprint, sealed_of(new, org, pk))).check()
        reader.request(new, 1).check()
        assert [r.code for r in owner.answer_requests(new)] == [Reject.OK]
        return new

    salt = os.urandom(access.SALT_BYTES)
    other_salt = access.commitment(os.urandom(access.SALT_BYTES), document, suite=sh.suite)
    wrong = bypassed(
        lambda new, org, pk: access.seal_version(sh.suite, document, new, 1, org, pk, salt), other_salt
    )
    short = bypassed(lambda new, org, pk: _sealed(w, sh.suite, b"short", new, 1, {org: pk}), bytes(32))
    for new in (wrong, short):
        for who in (owner, reader):
            with pytest.raises(FingerprintMismatch):
                who.read(new, 1)


def test_a_trade_documents_fingerprint_stays_its_public_anchor(w, sh):
    rid = trade_record(sh, w)
    party(sh, w, "Tier1").put_version(rid, INVOICE).check()
    fp = fc.document_fingerprint(INVOICE, suite=sh.suite)
    assert (
        sh.record(rid).fingerprint == sh.version(rid, 1).fingerprint == sh.version(rid, 2).fingerprint == fp
    )


def test_a_release_names_the_grant_it_stands_on(w, sh):
    owner, bank, reg = party(sh, w, "Tier1"), party(sh, w, "BankA"), party(sh, w, "Regulator")
    bank_org = w.org("BankA")
    rid = owner.put(b"credit memo", RecordKind.GENERAL).check().id
    g1 = owner.grant(rid, bank_org, Purpose.CREDIT_REVIEW, now(w) + DAY).check()
    owner.release(rid, 1, bank_org, bank.pk).check()
    g2 = owner.grant(rid, bank_org, Purpose.AUDIT, now(w) + 2 * DAY).check()  # replaces g1
    owner.put_version(rid, b"credit memo v2").check()
    owner.release(rid, 2, bank_org, bank.pk).check()
    reg.request(rid, 2).check()
    assert [r.code for r in owner.answer_requests(rid)] == [Reject.OK]
    assert sh.grant(rid, bank_org).tx_id == g2.tx_id != g1.tx_id
    assert sh.release(rid, 1, bank_org).grant_tx_id == g1.tx_id
    assert sh.release(rid, 2, bank_org).grant_tx_id == g2.tx_id
    assert sh.release(rid, 2, w.org("Regulator")).grant_tx_id == bytes(32)  # standing access
    log = {(e["version"], e["org_name"]): e for e in sh.access_log(rid)}
    assert {k: e["grant_tx_id"] for k, e in log.items()} == {
        (1, "BankA"): g1.tx_id, (2, "BankA"): g2.tx_id, (2, "Regulator"): None,
    }  # fmt: skip
    assert (log[(1, "BankA")]["purpose"], log[(2, "BankA")]["purpose"]) == (
        Purpose.CREDIT_REVIEW,
        Purpose.AUDIT,
    )


def test_the_key_service_reaches_every_request_page_by_page(w, sh, monkeypatch):
    """Other organizations' requests do not crowd out the owner's: ``answer_requests`` looks
    at ``limit`` requests a call and resumes where it stopped, skipping other owners'
    records whole (it reads nothing of them but their head); requests under a revoked grant
    and versions sealed to another owner key are left open, never crash it."""
    monkeypatch.setattr(sharing_ledger, "scan_page", 2)  # many short pages
    owner, reg, bank = party(sh, w, "Tier1"), party(sh, w, "Regulator"), party(sh, w, "BankA")
    others = [party(sh, w, name).put(b"their file %d" % i, RecordKind.GENERAL).check().id
              for i, name in enumerate(("Tier2", "CoreCo", "Tier2", "CoreCo"))]  # fmt: skip
    for rid in others:
        party(sh, w, "Tier2" if sh.record(rid).owner == w.org("Tier2") else "CoreCo").put_version(
            rid, b"v2"
        ).check()
    mine = [owner.put(b"our file %d" % i, RecordKind.GENERAL).check().id for i in range(3)]
    for rid in others + mine:
        for version in (1, 2) if rid in others else (1,):
            reg.request(rid, version).check()
    owner.grant(mine[0], w.org("BankA"), Purpose.AUDIT, now(w) + DAY).check()
    bank.request(mine[0], 1).check()
    owner.revoke(mine[0], w.org("BankA")).check()  # its request stays open, left alone
    # a version sealed to the owner organization's other key: that key releases it
    key2 = other_key(sh, b"Tier1 key 2")
    assert w.fin.party(w.keys["Tier1"]).add_key(key2.public_key).ok
    second = sh.party(key2)
    second.put_version(mine[1], b"our file 1, v2").check()
    reg.request(mine[1], 2).check()

    counting = CountingLedger(sh.ledger)
    service = Sharing(counting).party(w.keys["Tier1"])
    results, calls = [], 0
    while True:
        got = service.answer_requests(limit=2)
        assert len(got) <= 2
        results += got
        calls += 1
        if not service.answer_pending():
            break
        assert calls < 40
    assert calls > 1 and all(r.ok for r in results)
    assert {(r.id, r.version) for r in results} == {(rid, 1) for rid in mine}
    # nothing of the other owners' records was read but their heads
    assert not [k for k in counting.reads if k[:3] != b"sr/" and any(rid in k for rid in others)]
    open_now = {(rid, v, org) for rid, v, org, _ in sh.requests()}
    assert open_now == {(rid, v, w.org("Regulator")) for rid in others for v in (1, 2)} | {
        (mine[0], 1, w.org("BankA")),
        (mine[1], 2, w.org("Regulator")),
    }
    assert [r.code for r in second.answer_requests(mine[1])] == [Reject.OK]
    # a request made after a full pass is reached by the next one
    owner.put_version(mine[2], b"our file 2, v2").check()
    reg.request(mine[2], 2).check()
    again = [r for _ in range(20) for r in service.answer_requests(limit=2)]
    assert [(r.id, r.version, r.code) for r in again] == [(mine[2], 2, Reject.OK)]
    assert reg.read(mine[2], 2) == b"our file 2, v2" and reg.read(mine[1], 2) == b"our file 1, v2"
    with pytest.raises(ValueError):
        service.answer_requests(limit=0)


def test_an_owner_key_that_did_not_seal_a_version_has_no_data_key(w, sh):
    owner = party(sh, w, "Tier1")
    rid = owner.put(b"board minutes", RecordKind.GENERAL).check().id
    key2 = other_key(sh, b"Tier1 key 2")
    assert w.fin.party(w.keys["Tier1"]).add_key(key2.public_key).ok
    second = sh.party(key2)
    for attempt in (second.read, second.data_key):
        with pytest.raises(DataKeyUnavailable):
            attempt(rid, 1)
    assert issubclass(DataKeyUnavailable, ReadError)  # the CLI's read reports it as one
    second.put_version(rid, b"board minutes v2").check()
    assert second.read(rid, 2) == b"board minutes v2" and owner.read(rid, 1) == b"board minutes"
    with pytest.raises(DataKeyUnavailable):
        owner.read(rid, 2)


def test_a_reader_that_lost_its_key_is_released_the_key_again_to_its_new_one(w, sh):
    """Releases are numbered per (record, version, org): a new one is allowed only once the
    last one's key is no longer an active key of the reader, and never overwrites it."""
    owner, bank = party(sh, w, "Tier1"), party(sh, w, "BankA")
    bank_org = w.org("BankA")
    rid = trade_record(sh, w)
    owner.grant(rid, bank_org, Purpose.FINANCING, now(w) + DAY).check()
    bank.request(rid, 1).check()
    assert [r.code for r in owner.answer_requests(rid)] == [Reject.OK]
    first = w.ledger.state[c.release_key(rid, 1, bank_org, 0)]
    # another key of the same organization, while the first is active: nothing more
    key2 = other_key(sh, b"BankA key 2")
    assert w.fin.party(w.keys["BankA"]).add_key(key2.public_key).ok
    second = sh.party(key2)
    unchanged(w, lambda: second.request(rid, 1), R.ALREADY_RELEASED)
    unchanged(w, lambda: owner.release(rid, 1, bank_org, key2.public_key), R.ALREADY_RELEASED)
    with pytest.raises(NotReleased):
        second.read(rid, 1)
    # the first key is lost (revoked): the same data key, sealed to the new one, as release 1
    assert w.fin.party(key2).revoke_key(bank.pk).ok
    second.request(rid, 1).check()
    assert [r.code for r in owner.answer_requests(rid)] == [Reject.OK]
    assert second.read(rid, 1) == INVOICE
    assert w.ledger.state[c.release_key(rid, 1, bank_org, 0)] == first  # never overwritten
    assert [r.recipient for r in sh.release_history(rid, 1, bank_org)] == [bank.pk, key2.public_key]
    log = sh.access_log(rid)
    assert [(e["n"], e["recipient"]) for e in log] == [(0, bank.pk), (1, key2.public_key)]
    assert {(e["record"], e["version"], e["org"], e["tx_id"]) for e in log} == set(owner.release_log)
    # the new key is active: no third release; hand-built, a skipped or a re-used number is refused
    unchanged(w, lambda: second.request(rid, 1), R.ALREADY_RELEASED)
    unchanged(w, lambda: owner.release(rid, 1, bank_org, key2.public_key), R.ALREADY_RELEASED)
    wrapped = envelope.rewrap(sh.suite, owner.data_key(rid, 1), key2.public_key)
    for n, previous, code in ((3, key2.public_key, Reject.BAD_PAYLOAD), (1, bank.pk, R.ALREADY_RELEASED)):
        tx = access.release(*args(owner), rid, 1, bank_org, key2.public_key, wrapped, n, previous)
        unchanged(w, lambda tx=tx: owner.send(tx), code)
    req = access.request(*args(second), rid, 1, key2.public_key, 0)
    unchanged(w, lambda: second.send(req), R.ALREADY_RELEASED)
    with pytest.raises(ValueError):  # release n > 0 names release n - 1's key
        access.request(*args(second), rid, 1, key2.public_key, 2)


# --- malformed payloads -------------------------------------------------------------------------------


def _sealed(w: World, suite, plaintext: bytes, rid: bytes, version: int, readers: dict) -> bytes:
    return envelope.seal_record(suite, plaintext, envelope.record_aad(rid, version), readers).encode()


PUT_DAMAGE = {
    "truncated": lambda p, w, s: p.encode()[:50],
    "unknown kind": lambda p, w, s: dataclasses.replace(p, kind=9).encode(),
    "trade document without a doc type": lambda p, w, s: dataclasses.replace(p, doc_type=0).encode(),
    "trade document of an unknown doc type": lambda p, w, s: dataclasses.replace(p, doc_type=99).encode(),
    "size 0": lambda p, w, s: dataclasses.replace(p, size=0, inline=b"").encode(),
    "size over the bound": lambda p, w, s: dataclasses.replace(
        p, size=c.sealed_bytes_max + 1, inline=b""
    ).encode(),
    "size not the inline bytes'": lambda p, w, s: dataclasses.replace(p, size=p.size - 1).encode(),
    "small version off chain": lambda p, w, s: dataclasses.replace(p, inline=b"").encode(),
    "large version inline": lambda p, w, s: dataclasses.replace(p, size=c.inline_bytes_max + 1).encode(),
    "digest": lambda p, w, s: dataclasses.replace(p, digest=bytes(32)).encode(),
    "not a sealed record": lambda p, w, s: _redigest(p, b"\x01" + p.inline[1:-1], s).encode(),
    "another suite's record": lambda p, w, s: _redigest(
        p, _sealed(w, _other(s), INVOICE, p.record_id, 1, {w.org("Tier1"): _other_key(s, "Tier1")}), s
    ).encode(),
    "a second reader": lambda p, w, s: _redigest(
        p,
        _sealed(
            w, s, INVOICE, p.record_id, 1, {o: w.keys[n].public_key for n, o in _orgs(w, "Tier1", "BankA")}
        ),
        s,
    ).encode(),
    "sealed to another org": lambda p, w, s: _redigest(
        p, _sealed(w, s, INVOICE, p.record_id, 1, {w.org("BankA"): w.keys["BankA"].public_key}), s
    ).encode(),
    "record id not derived": lambda p, w, s: dataclasses.replace(p, record_id=bytes(16)).encode(),
}


def _orgs(w: World, *names: str) -> list[tuple[str, bytes]]:
    return [(n, w.org(n)) for n in names]


def _other_key(suite, name: str) -> bytes:
    return _other(suite).keys_from_seed(name.encode().ljust(32, b"\0")).public_key


def _other(suite):
    return SM2_SM3 if suite is ED25519_BLAKE3 else ED25519_BLAKE3


def _redigest(p: PutPayload, inline: bytes, suite) -> PutPayload:
    return dataclasses.replace(
        p, inline=inline, size=len(inline), digest=access.sealed_digest(inline, suite=suite)
    )


@pytest.mark.parametrize("damage", sorted(PUT_DAMAGE))
def test_a_malformed_put_is_bad_payload(w, sh, damage):
    owner = party(sh, w, "Tier1")
    fp = anchored_invoice(w)
    _, pk, org, nonce = args(owner)
    rid = c.record_id(pk, nonce, suite=sh.suite)
    sealed = access.seal_version(sh.suite, INVOICE, rid, 1, org, pk)
    tx = put_tx(owner, rid, 1, RecordKind.TRADE_DOCUMENT, DocType.INVOICE, fp, sealed)
    payload = PUT_DAMAGE[damage](PutPayload.decode(tx.payload), w, sh.suite)
    if damage == "record id not derived":  # declare the keys of the id it names
        tx = put_tx(owner, bytes(16), 1, RecordKind.TRADE_DOCUMENT, DocType.INVOICE, fp, sealed)
    unchanged(w, lambda: owner.send(dataclasses.replace(tx, payload=payload)), Reject.BAD_PAYLOAD)


def test_a_version_must_keep_its_records_kind_and_anchor(w, sh):
    owner = party(sh, w, "Tier1")
    rid = trade_record(sh, w)
    sealed = access.seal_version(sh.suite, INVOICE, rid, 2, owner.org, owner.pk)
    fp = sh.record(rid).fingerprint
    for kind, doc_type, fingerprint in (
        (RecordKind.GENERAL, 0, fp),
        (RecordKind.TRADE_DOCUMENT, DocType.CONTRACT, fp),
        (RecordKind.TRADE_DOCUMENT, DocType.INVOICE, bytes(32)),
    ):
        put = (rid, 2, kind, doc_type, fingerprint, sealed)
        unchanged(w, lambda put=put: owner.send(put_tx(owner, *put)), Reject.BAD_PAYLOAD)
    with pytest.raises(FingerprintMismatch):  # the client refuses another document before signing
        owner.put_version(rid, INVOICE + b" amended")


def damaged(tx, payload: bytes):
    return dataclasses.replace(tx, payload=payload)


def test_malformed_grant_revoke_request_and_release_payloads_are_bad_payload(w, sh):
    owner, bank = party(sh, w, "Tier1"), party(sh, w, "BankA")
    rid = trade_record(sh, w)
    bank_org = w.org("BankA")

    def grant(purpose: int = Purpose.AUDIT):
        return access.grant(*args(owner), rid, bank_org, purpose, now(w) + DAY)

    for purpose in (0, 99):
        unchanged(w, lambda purpose=purpose: owner.send(grant(purpose)), Reject.BAD_PAYLOAD)
    unchanged(w, lambda: owner.send(damaged(grant(), grant().payload[:-1])), Reject.BAD_PAYLOAD)
    revoke = access.revoke(*args(owner), rid, bank_org)
    unchanged(w, lambda: owner.send(damaged(revoke, revoke.payload + b"\0")), Reject.BAD_PAYLOAD)
    owner.send(grant()).check()
    req = access.request(*args(bank), rid, 1, bank.pk)
    unchanged(w, lambda: bank.send(damaged(req, req.payload[:-1])), Reject.BAD_PAYLOAD)
    size = access.wrapped_bytes(sh.suite)
    for wrapped in (bytes(size - 1), bytes(size + 1), b""):
        tx = (rid, 1, bank_org, bank.pk, wrapped)
        unchanged(w, lambda tx=tx: owner.send(access.release(*args(owner), *tx)), Reject.BAD_PAYLOAD)
    assert sh.releases(rid) == []


def test_a_wrong_released_key_is_found_on_reading(w, sh):
    """The chain cannot check a wrapped key; the reader can, and the signed release is on chain."""
    owner, bank = party(sh, w, "Tier1"), party(sh, w, "BankA")
    rid = trade_record(sh, w)
    owner.grant(rid, w.org("BankA"), Purpose.FINANCING, now(w) + DAY).check()
    wrong = envelope.rewrap(sh.suite, os.urandom(sh.suite.aead_key_bytes), bank.pk)
    r = owner.send(access.release(*args(owner), rid, 1, w.org("BankA"), bank.pk, wrong)).check()
    with pytest.raises(KeyDoesNotOpen):
        bank.read(rid, 1)
    assert sh.access_log(rid)[0]["tx_id"] == r.tx_id and sh.access_log(rid)[0]["released_by"] == owner.pk


def test_a_plaintext_that_is_not_the_fingerprinted_document_is_refused(w, sh):
    owner, bank = party(sh, w, "Tier1"), party(sh, w, "BankA")
    with pytest.raises(FingerprintMismatch):
        owner.put(b"report", RecordKind.GENERAL, fingerprint=bytes(32))
    other_fp = anchored_invoice(w, "Tier1", b"another invoice")
    with pytest.raises(FingerprintMismatch):
        owner.put(INVOICE, RecordKind.TRADE_DOCUMENT, anchor=(DocType.INVOICE, other_fp))
    # an owner bypassing its client: the chain stores what it asserts, the reader refuses it
    _, pk, org, nonce = args(owner)
    rid = c.record_id(pk, nonce, suite=sh.suite)
    sealed = access.seal_version(sh.suite, b"report", rid, 1, org, pk)
    owner.send(put_tx(owner, rid, 1, RecordKind.GENERAL, 0, bytes(32), sealed)).check()
    owner.grant(rid, w.org("BankA"), Purpose.AUDIT, now(w) + DAY).check()
    owner.release(rid, 1, w.org("BankA"), bank.pk).check()
    with pytest.raises(FingerprintMismatch):
        bank.read(rid, 1)


# --- large versions and the attachment store ------------------------------------------------------------


def test_a_large_record_goes_through_the_attachment_store(w, tmp_path):
    store = AttachmentStore(tmp_path / "owner", suite=w.ledger.suite)
    sh = Sharing(w.ledger, attachments=store)
    owner, bank = party(sh, w, "Tier1"), party(sh, w, "BankA")
    contract = os.urandom(200 << 10)
    fp = w.fin.party(w.keys["Tier1"]).anchor(DocType.CONTRACT, contract).check().id
    rid = owner.put(contract, RecordKind.TRADE_DOCUMENT, anchor=(DocType.CONTRACT, fp)).check().id
    v = sh.version(rid, 1)
    assert not v.on_chain and v.inline == b"" and v.size > 200 << 10 and store.has(v.digest)
    assert max(len(val) for val in w.ledger.state.values()) < 4096  # only the digest went on chain
    owner.grant(rid, w.org("BankA"), Purpose.FINANCING, now(w) + DAY).check()
    bank.request(rid, 1).check()
    assert [r.code for r in owner.answer_requests(rid)] == [Reject.OK]
    # the bank's own store, holding a copy of the file (how files travel is not the ledger's business)
    bank_store = AttachmentStore(tmp_path / "bank", suite=w.ledger.suite)
    bank_sh = Sharing(w.ledger, attachments=bank_store)
    with pytest.raises(AttachmentMissing):
        bank_sh.party(w.keys["BankA"]).read(rid, 1)
    bank_store.put(store.get(v.digest))
    assert bank_sh.party(w.keys["BankA"]).read(rid, 1) == contract
    with pytest.raises(AttachmentMissing):  # no store at all
        Sharing(w.ledger).party(w.keys["BankA"]).read(rid, 1)
    # a tampered file is refused, never decrypted
    path = tmp_path / "bank" / v.digest.hex()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(AttachmentCorrupt):
        bank_sh.party(w.keys["BankA"]).read(rid, 1)
    # and a large version cannot be put without a store
    with pytest.raises(AttachmentMissing):
        Sharing(w.ledger).party(w.keys["Tier1"]).put(contract, RecordKind.GENERAL)


def test_inline_bytes_that_are_not_the_versions_are_refused(w, sh):
    """A node serving other bytes than the chain committed: the reader checks the digest."""
    owner = party(sh, w, "Tier1")
    rid = owner.put(b"board minutes", RecordKind.GENERAL).check().id
    key = c.version_key(rid, 1)
    v = sh.version(rid, 1)
    forged = dataclasses.replace(
        v, inline=_sealed(w, sh.suite, b"forged minutes", rid, 1, {owner.org: owner.pk})
    )
    w.ledger.state[key] = dataclasses.replace(forged, size=len(forged.inline)).encode()
    with pytest.raises(AttachmentCorrupt):
        owner.read(rid, 1)


def test_the_attachment_store(tmp_path):
    store = AttachmentStore(tmp_path, suite=ED25519_BLAKE3)
    data = os.urandom(5000)
    digest = store.put(data)
    assert digest == access.sealed_digest(data) and store.put(data) == digest  # idempotent
    assert store.get(digest) == data and [p.name for p in tmp_path.iterdir()] == [digest.hex()]
    for bad in (b"", digest[:31], digest + b"\0", "../" * 10 + "etc/passwd", digest.hex()):
        with pytest.raises(AttachmentError):
            store.get(bad)  # only a digest of the suite's size names a file
    with pytest.raises(AttachmentMissing):
        store.get(bytes(32))
    for size in (0, c.sealed_bytes_max + 1):
        with pytest.raises(AttachmentError):
            store.put(bytes(size))
    (tmp_path / digest.hex()).write_bytes(data[:-1])
    with pytest.raises(AttachmentCorrupt):
        store.get(digest)
    assert store.put(data) == digest and store.get(digest) == data  # a damaged copy is replaced
    # a file whose name is another suite's digest of it is refused by the SM3 store
    sm_store = AttachmentStore(tmp_path, suite=SM2_SM3)
    with pytest.raises(AttachmentCorrupt):
        sm_store.get(digest)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


# --- suites, codecs -----------------------------------------------------------------------------------


def test_keys_and_stores_of_another_suite_are_refused(w, sh, tmp_path):
    other = _other(sh.suite)
    with pytest.raises(SuiteMismatch):
        sh.party(other.keys_from_seed(b"Tier1".ljust(32, b"\0")))
    with pytest.raises(SuiteMismatch):
        Sharing(w.ledger, attachments=AttachmentStore(tmp_path, suite=other))


def test_record_codecs_round_trip_and_refuse_other_lengths():
    head = RecordHead(b"o" * 16, RecordKind.GENERAL, 0, b"f" * 32, 3, 10, 20)
    grant = Grant(Purpose.AUDIT, 99, GrantStatus.ACTIVE, 1, 2, 0, 0, b"t" * 32)
    rel = Release(
        b"r" * 32, b"k" * 32, Basis.GRANT, Purpose.AUDIT, 1, b"g" * 32, 99, 5, 6, b"t" * 32, b"w" * 80
    )
    for record in (head, grant, rel):
        raw = record.encode()
        assert type(record).decode(raw) == record
        for cut in (raw[: len(raw) - 80], raw + b"\0" * 300):
            with pytest.raises(RecordError):
                type(record).decode(cut)
    with pytest.raises(RecordError):  # a wrapped key of another size than the suite's
        Release.decode(rel.encode()[:-1], suite=ED25519_BLAKE3)
    assert Release.decode(rel.encode(), suite=ED25519_BLAKE3) == rel
    with pytest.raises(RecordError):
        Grant.decode(dataclasses.replace(grant, status=7).encode())
    with pytest.raises(RecordError):
        access.parse_version_key(b"sr/" + bytes(36))
    rid, org = b"r" * 16, b"o" * 16
    assert access.parse_release_key(c.release_key(rid, 7, org, 300)) == (rid, 7, org, 300)
    assert access.parse_version_key(c.release_key(rid, 7, org, 300)) == (rid, 7, org)
    assert access.parse_version_key(c.request_key(rid, 7, org)) == (rid, 7, org)
    for bad in (c.request_key(rid, 7, org), c.release_key(rid, 7, org, 0)[:-1]):
        with pytest.raises(RecordError):
            access.parse_release_key(bad)


def test_result_check_raises_the_named_code(w, sh):
    r = party(sh, w, "Tier1").revoke(bytes(16), w.org("BankA"))
    with pytest.raises(RejectedError, match="NO_SUCH_RECORD"):
        r.check()


# --- the access log is complete -------------------------------------------------------------------------


def test_the_access_log_equals_the_owners_view_and_the_rules(w):
    """A seeded random history over several readers and versions: every op's outcome is the
    model's, and at the end the chain's access log, the owner's own release log and the
    model's allowed releases are the same set (with the same bases), and every successful
    release's event is in its receipt."""
    rng = random.Random(18)
    sh = Sharing(w.ledger)
    owner = party(sh, w, "CoreCo")
    readers = ("BankA", "BankB", "FundX", "RateCo", "AuditCo", "Regulator", "Tier2")
    parties = {n: party(sh, w, n) for n in readers}
    org = {n: w.org(n) for n in readers}
    kind = RecordKind.ABS_ASSET_FILE
    rid = owner.put(b"pool tape v1", kind).check().id
    versions = 1
    grants: dict[str, list] = {}  # reader -> [active?, expiry]
    released: dict[tuple[int, str], Basis] = {}
    requested: set[tuple[int, str]] = set()
    ok_results: list[Result] = []

    def access_code(name: str):
        g = grants.get(name)
        live = g is not None and g[0] and now(w) < g[1]
        if live and access.eligible(kind, _roles(name)):
            return Reject.OK, Basis.GRANT
        if name == "Regulator":
            return Reject.OK, Basis.STANDING
        if g is None:
            return R.NO_GRANT, None
        if not g[0]:
            return R.GRANT_REVOKED, None
        return (R.GRANT_EXPIRED, None) if not live else (R.NOT_ELIGIBLE, None)

    def expect(name: str, version: int, asking: bool):
        if version > versions:
            return R.NO_SUCH_VERSION, None
        code, basis = access_code(name)
        if code != Reject.OK:
            return code, None
        if (version, name) in released:
            return R.ALREADY_RELEASED, None
        if asking and (version, name) in requested:
            return R.ALREADY_REQUESTED, None
        return Reject.OK, basis

    for _ in range(300):
        roll = rng.random()
        name = rng.choice(readers)
        version = rng.randint(1, versions) if rng.random() < 0.9 else versions + 1
        if roll < 0.15:
            expiry = now(w) + rng.choice((5_000, 30_000, 120_000))
            r = owner.grant(rid, org[name], rng.choice(list(Purpose)), expiry)
            eligible = access.eligible(kind, _roles(name))
            assert r.code == (Reject.OK if eligible else R.NOT_ELIGIBLE), (name, r.code)
            if eligible:
                grants[name] = [True, expiry]
        elif roll < 0.22:
            r = owner.revoke(rid, org[name])
            g = grants.get(name)
            assert r.code == (R.NO_GRANT if g is None else Reject.OK if g[0] else R.GRANT_REVOKED)
            if g is not None:
                g[0] = False
        elif roll < 0.32:
            w.ledger.timestamp_ms += rng.choice((1_000, 10_000, 60_000))
        elif roll < 0.36 and versions < 4:
            versions += 1
            assert owner.put_version(rid, b"pool tape v%d" % versions).check().version == versions
        elif roll < 0.66:
            if requested and rng.random() < 0.2:  # ask again
                version, name = rng.choice(sorted(requested))
            r = parties[name].request(rid, version)
            assert r.code == expect(name, version, asking=True)[0], (name, version, r.code)
            if r.ok:
                requested.add((version, name))
        elif roll < 0.84:
            open_now = set(requested)
            allowed = {(v, n) for v, n in open_now if expect(n, v, asking=False)[0] == Reject.OK}
            bases = {(v, n): expect(n, v, asking=False)[1] for v, n in allowed}
            results = owner.answer_requests(rid, now_ms=now(w))
            assert all(r.ok for r in results), [r.code for r in results]
            assert len(results) == len(allowed)
            for v, n in allowed:
                released[(v, n)] = bases[(v, n)]
                requested.discard((v, n))
            ok_results += results
        else:
            r = owner.release(rid, version, org[name], w.keys[name].public_key)
            code, basis = expect(name, version, asking=False)
            assert r.code == code, (name, version, r.code, code)
            if r.ok:
                released[(version, name)] = basis
                requested.discard((version, name))
                ok_results.append(r)
        chain_requests = {(v, o) for _, v, o, _ in sh.requests(rid)}
        assert chain_requests == {(v, org[n]) for v, n in requested}

    log = sh.access_log(rid)
    chain = {(e["record"], e["version"], e["org"]) for e in log}
    owners_view = {(r, v, o) for r, v, o, _ in owner.release_log}
    model = {(rid, v, org[n]) for v, n in released}
    assert len(released) >= 10 and any(b == Basis.STANDING for b in released.values())
    assert chain == owners_view == model
    assert len(log) == len(owner.release_log) == len(ok_results)  # each release logged once
    assert {e["tx_id"] for e in log} == {t for *_, t in owner.release_log} == {r.tx_id for r in ok_results}
    assert {(e["version"], e["org"]): e["basis"] for e in log} == {
        (v, org[n]): b for (v, n), b in released.items()
    }
    released_events = {r.tx_id: r.receipt.events for r in ok_results}
    for record_id, version, reader, tx_id in owner.release_log:
        assert release_event(record_id, version, reader) in released_events[tx_id]
    # and every reader reads exactly what was released to it
    for version, name in released:
        assert parties[name].read(rid, version) == b"pool tape v%d" % version
