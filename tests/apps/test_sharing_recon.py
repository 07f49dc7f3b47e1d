"""Inter-institution reconciliation (issue 18, step 4: ``tierchain.apps.sharing.recon``,
``recon_report``, ``recon_client``), on the sharing test world (BankA and BankB are the pair).

Checked: the whole flow in both suites (open, both sides post, each side's report names
matched, mismatched with exactly the differing fields, and missing records on each side;
the node endpoint's public report agrees); every refusal of the two ops, each leaving state
untouched; a third organization cannot unseal the pair key, and an opener that seals two
different keys is caught by the key check; posting twice, amending and withdrawing; what an
outsider holding all the chain's data sees (tags, counts, digest equality; no reference or
value, field vectors that open under no other key); and, over randomized record sets, that
the report finds every injected mismatch with exactly the changed fields, every missing
record, and nothing else (hypothesis, pure layer and on the ledger).
"""

from __future__ import annotations

import dataclasses
import random
import secrets
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finance_world import members
from sharing_world import World, chain_config, world
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import Finance, SuiteMismatch
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import recon
from tierchain.apps.sharing import recon_report as rr
from tierchain.apps.sharing.codes import SharingReject
from tierchain.apps.sharing.recon_client import (
    ENDPOINT,
    PagingError,
    PairKeyMismatch,
    PostingPending,
    Reconciler,
    chunk,
    endpoint_rows_max,
    fetch_public_report,
    make_endpoint,
)
from tierchain.crypto import SUITES, KeyPair, suite_for
from tierchain.engine.apps import EndpointError
from tierchain.engine.chain import Chain
from tierchain.errors import Reject
from tierchain.limits import payload_bytes_max
from tierchain.wire import tx as txcodec

SUITE_NAMES = sorted(SUITES)
DAY = 0  # the sharing world's block time (1_000_000 ms) is in day 0
SCHEMA = ("amount", "ccy", "value_date", "debtor", "creditor")


def transfers(n: int, start: int = 0) -> dict[str, dict[str, object]]:
    return {
        f"TX-{i:06d}": {
            "amount": 1_000 + 7 * i,
            "ccy": "CNY",
            "value_date": "2026-03-02",
            "debtor": f"6222-{i:04d}",
            "creditor": "6217-0001",
        }
        for i in range(start, start + n)
    }


def pair_world(crypto: str) -> tuple[World, Reconciler, Reconciler]:
    w = world(crypto)
    a = Reconciler(w.ledger, w.keys["BankA"], w.org("BankB"))
    b = Reconciler(w.ledger, w.keys["BankB"], w.org("BankA"))
    r = a.open_pair(w.keys["BankB"].public_key)
    assert r.ok, r.code
    orgs = b"".join(sorted((w.org("BankA"), w.org("BankB"))))
    assert [(e.topic, e.data) for e in r.receipt.events] == [(b"sh.pair.open", a.pair_id + orgs)]
    r = b.accept()
    assert r.ok, r.code
    assert [(e.topic, recon.decode_pair_event(e.data)) for e in r.receipt.events] == [
        (b"sh.pair.accept", (a.pair_id, 0, b.side))
    ]
    return w, a, b


def send(w: World, keys: KeyPair, tx: txcodec.Tx) -> object:
    code, _ = w.ledger.send(keys.sign_tx(tx).encode(), 5.0)
    return code


def state(w: World) -> dict[bytes, bytes]:
    """Everything but the nonces (a refused tx still uses its nonce)."""
    return {k: v for k, v in w.ledger.state.items() if not k.startswith(b"\x00")}


def refs_of(items) -> set:
    return {ref for ref, _tag in items}


# --- the main flow, both suites ----------------------------------------------------------
@pytest.mark.parametrize("crypto", SUITE_NAMES)
def test_two_banks_reconcile_a_day(crypto):
    w, a, b = pair_world(crypto)
    assert a.pair_id == b.pair_id and {a.side, b.side} == {0, 1}
    key = a.pair_key()
    assert key is not None and key == b.pair_key() and len(key) == w.ledger.suite.aead_key_bytes
    record = a.pair()
    assert record.orgs == tuple(sorted((w.org("BankA"), w.org("BankB"))))
    assert record.height == w.ledger.height - 1  # opened, then accepted in the next block
    assert (record.generation, record.proposer, record.accepted) == (0, a.side, True)

    books_a = transfers(60)
    books_b = {ref: dict(f) for ref, f in books_a.items()}
    books_b["TX-000003"]["amount"] = 999  # one field differs
    books_b["TX-000007"].update(ccy="USD", creditor="6217-0002")  # two fields differ
    del books_b["TX-000011"]  # B lacks one
    books_b.update(transfers(2, start=500))  # B has two A lacks

    ra = a.post(DAY, books_a)
    assert [r.code for r in ra] == [Reject.OK] * 3  # 60 records: postings of at most 24
    assert sum(len(r.tags) for r in ra) == 60
    event = ra[0].receipt.events[0]
    assert event.topic == b"sh.recon.post"
    assert recon.decode_post_event(event.data) == (a.pair_id, 0, DAY, 24, a.side, 0)
    assert all(r.ok for r in b.post(DAY, books_b))

    for me, mine, theirs in ((a, books_a, books_b), (b, books_b, books_a)):
        rep = me.report(DAY)
        assert rep.counts == {"matched": 57, "mismatched": 2, "missing_on_us": len(set(theirs) - set(mine)),
                              "missing_on_them": len(set(mine) - set(theirs))}  # fmt: skip
        assert {m.ref: m.fields for m in rep.mismatched} == {
            "TX-000003": ("amount",),
            "TX-000007": ("ccy", "creditor"),
        }
        assert all(m.explained for m in rep.mismatched)
        assert refs_of(rep.missing_on_them) == set(mine) - set(theirs)
        assert refs_of(rep.missing_on_us) == {None}  # their records: tags we cannot name
        assert refs_of(rep.matched) == set(mine) & set(theirs) - {"TX-000003", "TX-000007"}
        # Given our books, a record we have but did not post would be named (none here).
        doc = rep.to_json()
        assert doc["counts"] == rep.counts and doc["side"] == "AB"[me.side]

    # The node's endpoint: the same public report, which a party's client explains.
    answer = make_endpoint(w.ledger)({"pair": a.pair_id.hex(), "day": DAY})
    assert answer["next"] is None and answer["orgs"] == [o.hex() for o in record.orgs]
    assert answer["counts"]["rows"] == 62 and answer["counts"]["mismatched"] == 2
    public = rr.PublicReport.from_json(answer)
    assert a.report(DAY, public=public).to_json() == a.report(DAY).to_json()
    assert ENDPOINT.name == "sharing.recon_report"

    # A fresh process of A (nothing remembered) names its records from its books.
    fresh = Reconciler(w.ledger, w.keys["BankA"], w.org("BankB"))
    assert fresh.report(DAY, records=books_a).to_json() == a.report(DAY).to_json()
    bare = fresh.report(DAY)  # no books, no schema: mismatches cannot be explained
    assert [m.explained for m in bare.mismatched] == [False, False] and refs_of(bare.matched) == {None}
    schema = Reconciler(w.ledger, w.keys["BankA"], w.org("BankB"), fields=SCHEMA)
    assert sorted(m.fields for m in schema.report(DAY).mismatched) == [("amount",), ("ccy", "creditor")]


def test_clean_day_and_days_are_separate():
    _w, a, b = pair_world("ed25519-blake3")
    books = transfers(30)
    assert all(r.ok for r in a.post(DAY, books)) and all(r.ok for r in b.post(DAY, books))
    rep = a.report(DAY)
    assert rep.clean and rep.counts["matched"] == 30
    assert a.public_report(DAY + 1).counts["rows"] == 0
    assert all(r.ok for r in a.post(DAY + 1, transfers(2)))  # the same refs on another day
    assert a.report(DAY + 1).counts == {
        "matched": 0,
        "mismatched": 0,
        "missing_on_us": 0,
        "missing_on_them": 2,
    }
    assert a.report(DAY).clean


def test_on_an_embedded_chain(tmp_path):
    """The client and the endpoint over a real ``Chain`` (its scans, its block time)."""
    m = members()
    with Chain(tmp_path / "chain", chain_config(), m.node) as chain:
        fin = Finance(chain)
        for name in ("BankA", "BankB"):
            assert fin.party(m.node).propose_admit(name, ("bank",), m.keys[name].public_key).ok
        a = Reconciler(chain, m.keys["BankA"], fin.org_id("BankB"))
        b = Reconciler(chain, m.keys["BankB"], fin.org_id("BankA"))
        assert a.open_pair(m.keys["BankB"].public_key).ok and b.accept().ok
        day = chain.head().timestamp_ms // c.day_ms
        books = transfers(30)
        assert all(r.ok for r in a.post(day, books))
        assert all(r.ok for r in b.post(day, {**books, "TX-000001": {**books["TX-000001"], "ccy": "HKD"}}))
        assert [(m.ref, m.fields) for m in a.report(day).mismatched] == [("TX-000001", ("ccy",))]
        answer = make_endpoint(chain)({"pair": a.pair_id.hex(), "day": day})
        assert answer["counts"]["matched"] == 29 and answer["next"] is None


# --- opening a pair -------------------------------------------------------------------------
def _open_tx(w: World, opener: str, other: str, own_key: bytes, other_key: bytes, **kw) -> txcodec.Tx:
    suite = w.ledger.suite
    k1 = secrets.token_bytes(suite.aead_key_bytes)
    k2 = kw.get("other_pair_key", k1)
    pk = w.keys[opener].public_key
    return recon.pair_open(
        w.ledger.chain_id, pk, w.org(opener), w.ledger.nonce(pk), w.org(other), recon.key_check(k1, suite),
        own_key, suite.seal(own_key, k1), other_key, suite.seal(other_key, k2), suite=suite,
    )  # fmt: skip


@pytest.mark.parametrize("crypto", SUITE_NAMES)
def test_pair_open_refusals(crypto):
    w = world(crypto)
    ka, kb, kt = (w.keys[n].public_key for n in ("BankA", "BankB", "Tier1"))
    before = state(w)
    assert send(w, w.keys["BankA"], _open_tx(w, "BankA", "BankA", ka, ka)) == SharingReject.BAD_GRANTEE
    assert send(w, w.keys["BankA"], _open_tx(w, "BankA", "BankB", ka, kt)) == SharingReject.BAD_RECIPIENT_KEY
    assert send(w, w.keys["BankA"], _open_tx(w, "BankA", "BankB", kb, kb)) == SharingReject.BAD_RECIPIENT_KEY
    # An organization the chain does not know.
    t = _open_tx(w, "BankA", "BankB", ka, kb)
    ghost = fc.org_id("Ghost Bank", suite=w.ledger.suite)
    payload = ghost + t.payload[16:]
    bad = txcodec.unsigned(
        t.chain_id, t.op, t.sender, t.nonce, set(t.reads) | {fc.org_key(ghost)}, t.writes, payload
    )
    assert send(w, w.keys["BankA"], bad) == SharingReject.UNKNOWN_ORG
    # A payload one byte short, one byte long.
    for payload in (t.payload[:-1], t.payload + b"\0"):
        bad = txcodec.unsigned(
            t.chain_id, t.op, t.sender, w.ledger.nonce(t.sender), t.reads, t.writes, payload
        )
        assert send(w, w.keys["BankA"], bad) == Reject.BAD_PAYLOAD
    # A key of no organization.
    stranger = suite_for(crypto).keys_from_seed(b"stranger".ljust(32, b"\0"))
    r = Reconciler(w.ledger, stranger, w.org("BankB")).open_pair(kb, own_recipient_key=ka)
    assert r.code == SharingReject.SENDER_NOT_MEMBER
    assert state(w) == before
    # One pair per two organizations, whoever opens it.
    assert Reconciler(w.ledger, w.keys["BankA"], w.org("BankB")).open_pair(kb).ok
    again = Reconciler(w.ledger, w.keys["BankB"], w.org("BankA")).open_pair(ka)
    assert again.code == SharingReject.PAIR_EXISTS


def test_third_org_cannot_unseal_and_key_check():
    w, a, _b = pair_world("sm2-sm3")
    suite = w.ledger.suite
    record = a.pair()
    outsider = w.keys["Tier1"]
    assert all(suite.unseal(outsider, s) is None for s in record.sealed)
    # Tier1 reconciling with BankA has no pair (its pair with BankA is another pair id).
    t = Reconciler(w.ledger, outsider, w.org("BankA"))
    assert t.pair_id != a.pair_id and t.pair() is None and t.pair_key() is None
    # BankA's other keys are not the recipient: they do not unseal (pair_key says None).
    assert Reconciler(w.ledger, w.keys["BankA"], w.org("BankB"), reader=w.keys["Tier2"]).pair_key() is None
    # An opener that seals different keys to the two sides is caught by the key check.
    w2 = world("ed25519-blake3")
    ka, kb = w2.keys["BankA"].public_key, w2.keys["BankB"].public_key
    k2 = secrets.token_bytes(32)
    assert send(w2, w2.keys["BankA"], _open_tx(w2, "BankA", "BankB", ka, kb, other_pair_key=k2)) == Reject.OK
    assert Reconciler(w2.ledger, w2.keys["BankA"], w2.org("BankB")).pair_key() is not None
    with pytest.raises(PairKeyMismatch):
        Reconciler(w2.ledger, w2.keys["BankB"], w2.org("BankA")).pair_key()


def test_keys_of_another_suite_are_refused():
    w = world("ed25519-blake3")
    sm_keys = suite_for("sm2-sm3").keys_from_seed(bytes(32))
    with pytest.raises(SuiteMismatch):
        Reconciler(w.ledger, sm_keys, w.org("BankB"))
    with pytest.raises(SuiteMismatch):
        Reconciler(w.ledger, w.keys["BankA"], w.org("BankB"), reader=sm_keys)


# --- generations: accept and re-key ----------------------------------------------------------
def _bad_open(w: World) -> tuple[Reconciler, Reconciler]:
    """BankA opens with a good key sealed to itself and a random key sealed to BankB: sizes
    pass, the key check names A's key."""
    ka, kb = w.keys["BankA"].public_key, w.keys["BankB"].public_key
    assert (
        send(w, w.keys["BankA"], _open_tx(w, "BankA", "BankB", ka, kb, other_pair_key=bytes(32))) == Reject.OK
    )
    return Reconciler(w.ledger, w.keys["BankA"], w.org("BankB")), Reconciler(
        w.ledger, w.keys["BankB"], w.org("BankA")
    )


def _accept_tx(w: World, name: str, pair: bytes, generation: int) -> txcodec.Tx:
    pk = w.keys[name].public_key
    return recon.pair_accept(w.ledger.chain_id, pk, w.org(name), w.ledger.nonce(pk), pair, generation)


def test_a_badly_opened_pair_is_rekeyed_by_the_counterparty():
    """The trigger: B cannot use (nor re-open) a pair whose key A sealed wrongly to B; B
    re-keys it, A accepts, and the pair works."""
    w = world("ed25519-blake3")
    a, b = _bad_open(w)
    with pytest.raises(PairKeyMismatch):
        b.pair_key()
    nonce = w.ledger.nonce(w.keys["BankB"].public_key)
    with pytest.raises(PairKeyMismatch):
        b.accept()  # checked before anything is signed
    assert w.ledger.nonce(w.keys["BankB"].public_key) == nonce
    assert b.open_pair(w.keys["BankA"].public_key).code == SharingReject.PAIR_EXISTS
    # Nothing is posted under a generation the other side did not accept, by either side.
    assert [r.code for r in a.post(DAY, transfers(2))] == [SharingReject.PAIR_NOT_ACCEPTED]
    assert a.public_report(DAY).counts["rows"] == 0
    r = b.rekey(w.keys["BankA"].public_key)
    assert r.ok, r.code
    assert [(e.topic, recon.decode_pair_event(e.data)) for e in r.receipt.events] == [
        (b"sh.pair.rekey", (a.pair_id, 1, b.side))
    ]
    record = a.pair()
    assert (record.generation, record.proposer, record.accepted) == (1, b.side, False)
    assert a.generation == b.generation == 1
    assert [r.code for r in b.post(DAY, transfers(2))] == [SharingReject.PAIR_NOT_ACCEPTED]
    assert b.accept().code == SharingReject.BAD_GRANTEE  # the proposer cannot accept its own
    assert a.accept().ok
    assert a.accept().code == SharingReject.ALREADY_ACCEPTED
    assert a.pair_key() == b.pair_key() is not None
    books = transfers(30)
    assert all(r.ok for r in a.post(DAY, books)) and all(r.ok for r in b.post(DAY, books))
    rep = b.report(DAY)
    assert rep.clean and rep.counts["matched"] == 30 and rep.generation == 1
    assert rep.to_json()["generation"] == 1
    # The replaced generation is kept: A still unseals its own copy of generation 0's key.
    old = a.pair(0)
    assert old is not None and (old.generation, old.accepted) == (0, False)
    assert a.pair_key(0) is not None and a.pair_key(0) != a.pair_key()
    assert a.pair(2) is None and a.pair_key(2) is None


def test_accept_refusals_change_nothing():
    w = world("sm2-sm3")
    a = Reconciler(w.ledger, w.keys["BankA"], w.org("BankB"))
    b = Reconciler(w.ledger, w.keys["BankB"], w.org("BankA"))
    assert send(w, w.keys["BankB"], _accept_tx(w, "BankB", a.pair_id, 0)) == SharingReject.NO_SUCH_PAIR
    assert a.open_pair(w.keys["BankB"].public_key).ok
    before = state(w)
    pid = a.pair_id
    assert send(w, w.keys["BankA"], _accept_tx(w, "BankA", pid, 0)) == SharingReject.BAD_GRANTEE
    assert send(w, w.keys["Tier1"], _accept_tx(w, "Tier1", pid, 0)) == SharingReject.NOT_A_PARTY
    assert send(w, w.keys["BankB"], _accept_tx(w, "BankB", pid, 1)) == SharingReject.STALE_GENERATION
    t = _accept_tx(w, "BankB", pid, 0)
    for payload in (t.payload[:-1], t.payload + b"\0"):
        bad = txcodec.unsigned(
            t.chain_id, t.op, t.sender, w.ledger.nonce(t.sender), t.reads, t.writes, payload
        )
        assert send(w, w.keys["BankB"], bad) == Reject.BAD_PAYLOAD
    stranger = suite_for("sm2-sm3").keys_from_seed(b"stranger".ljust(32, b"\0"))
    tx = recon.pair_accept(w.ledger.chain_id, stranger.public_key, fc.ZERO_ID, 0, pid, 0)
    assert send(w, stranger, tx) == SharingReject.SENDER_NOT_MEMBER
    assert state(w) == before
    assert b.accept().ok
    after = state(w)
    assert b.accept().code == SharingReject.ALREADY_ACCEPTED
    assert a.accept().code == SharingReject.ALREADY_ACCEPTED
    assert state(w) == after


def test_rekey_refusals_and_stale_postings():
    w, a, b = pair_world("ed25519-blake3")
    ka, kb, kt = (w.keys[n].public_key for n in ("BankA", "BankB", "Tier1"))
    suite = w.ledger.suite

    def rekey_tx(name: str, other: str, generation: int, own_key: bytes, other_key: bytes) -> txcodec.Tx:
        k = secrets.token_bytes(suite.aead_key_bytes)
        pk = w.keys[name].public_key
        return recon.pair_rekey(
            w.ledger.chain_id, pk, w.org(name), w.ledger.nonce(pk), generation, w.org(other),
            recon.key_check(k, suite), own_key, suite.seal(own_key, k), other_key, suite.seal(other_key, k),
            suite=suite,
        )  # fmt: skip

    before = state(w)
    assert send(w, w.keys["BankA"], rekey_tx("BankA", "BankB", 1, ka, kb)) == SharingReject.STALE_GENERATION
    assert send(w, w.keys["BankA"], rekey_tx("BankA", "BankB", 0, ka, kt)) == SharingReject.BAD_RECIPIENT_KEY
    assert send(w, w.keys["BankA"], rekey_tx("BankA", "BankA", 0, ka, ka)) == SharingReject.BAD_GRANTEE
    assert send(w, w.keys["Tier1"], rekey_tx("Tier1", "BankB", 0, kt, kb)) == SharingReject.NO_SUCH_PAIR
    t = rekey_tx("BankA", "BankB", 0, ka, kb)
    for payload in (t.payload[:-1], t.payload + b"\0"):
        bad = txcodec.unsigned(
            t.chain_id, t.op, t.sender, w.ledger.nonce(t.sender), t.reads, t.writes, payload
        )
        assert send(w, w.keys["BankA"], bad) == Reject.BAD_PAYLOAD
    assert state(w) == before
    with pytest.raises(ValueError):
        rekey_tx("BankA", "BankB", 1 << 16, ka, kb)

    # A posting signed for generation 0 arrives after the re-key: refused, not misfiled.
    entries = [e for _, e in a.entries(DAY, transfers(2))]
    pk = w.keys["BankA"].public_key
    stale = recon.recon_post(
        w.ledger.chain_id, pk, w.org("BankA"), w.ledger.nonce(pk) + 1, a.pair_id, 0, DAY, entries
    )
    assert a.rekey(kb).ok and b.accept().ok
    assert send(w, w.keys["BankA"], stale) == SharingReject.STALE_GENERATION
    assert a.public_report(DAY).counts["rows"] == 0
    # A re-key replaces the current generation whether or not it was accepted.
    assert b.rekey(ka).ok and a.rekey(kb).ok and a.generation == 3
    assert (a.pair().proposer, a.pair().accepted) == (a.side, False)
    # The last generation is not re-keyed (u16).
    key = c.pair_key(a.pair_id)
    w.ledger.state[key] = dataclasses.replace(a.pair(), generation=recon.generation_max).encode()
    r = Reconciler(w.ledger, w.keys["BankA"], w.org("BankB")).rekey(kb)
    assert r.code == Reject.BAD_PAYLOAD


def test_rekey_moves_the_key_off_a_revoked_recipient_key():
    w, a, _b = pair_world("ed25519-blake3")
    b2 = suite_for("ed25519-blake3").keys_from_seed(b"BankB second key".ljust(32, b"\0"))
    assert w.fin.party(w.keys["BankB"]).add_key(b2.public_key).ok
    assert w.fin.party(b2).revoke_key(w.keys["BankB"].public_key).ok
    fresh = Reconciler(w.ledger, b2, w.org("BankA"))
    assert fresh.pair_key() is None  # sealed to the revoked key
    assert fresh.rekey(w.keys["BankA"].public_key).ok and a.accept().ok
    assert fresh.pair_key() == a.pair_key() is not None
    assert all(r.ok for r in fresh.post(DAY, transfers(3))) and all(r.ok for r in a.post(DAY, transfers(3)))
    assert fresh.report(DAY).clean


@pytest.mark.parametrize("crypto", SUITE_NAMES)
def test_generations_keep_their_rows_and_reports(crypto):
    w, a, b = pair_world(crypto)
    books_a = transfers(10)
    books_b = {**books_a, "TX-000004": {**books_a["TX-000004"], "amount": 5}}
    assert all(r.ok for r in a.post(DAY, books_a)) and all(r.ok for r in b.post(DAY, books_b))
    gen0 = a.report(DAY).to_json()
    assert gen0["generation"] == 0 and gen0["counts"]["mismatched"] == 1
    assert a.rekey(w.keys["BankB"].public_key).ok and b.accept().ok
    # Generation 1 starts afresh; generation 0's rows stay, reported per generation.
    assert a.report(DAY).counts == {"matched": 0, "mismatched": 0, "missing_on_us": 0, "missing_on_them": 0}
    assert a.report(DAY, generation=0).to_json() == gen0
    # A fresh process of B (nothing remembered) explains generation 0 with its kept key.
    fresh = Reconciler(w.ledger, w.keys["BankB"], w.org("BankA"), fields=SCHEMA)
    old = fresh.report(DAY, records=books_b, generation=0)
    assert [(m.ref, m.fields) for m in old.mismatched] == [("TX-000004", ("amount",))]
    assert old.generation == 0 and old.counts["matched"] == 9
    # Tags differ between generations: the same records, posted again, are new rows.
    assert all(r.ok for r in a.post(DAY, books_a)) and all(r.ok for r in b.post(DAY, books_a))
    assert a.report(DAY).clean and a.report(DAY).counts["matched"] == 10
    tags0 = {k[-16:] for k, _ in w.ledger.state_scan(c.posting_key(a.pair_id, 0, DAY, b""))}
    tags1 = {k[-16:] for k, _ in w.ledger.state_scan(c.posting_key(a.pair_id, 1, DAY, b""))}
    assert len(tags0) == len(tags1) == 10 and not tags0 & tags1
    # The endpoint: the current generation by default, any earlier one on request.
    handler = make_endpoint(w.ledger)
    now = handler({"pair": a.pair_id.hex(), "day": DAY})
    assert (now["generation"], now["current_generation"], now["accepted"]) == (1, 1, True)
    assert now["counts"]["matched"] == 10
    then = handler({"pair": a.pair_id.hex(), "day": DAY, "generation": 0})
    assert then["generation"] == 0 and then["counts"]["mismatched"] == 1
    public = fetch_public_report(handler, a.pair_id, DAY, generation=0)
    assert a.report(DAY, public=public).to_json() == gen0
    assert fetch_public_report(handler, a.pair_id, DAY).generation == 1
    with pytest.raises(rr.ReconError):
        a.report(DAY, public=public, generation=1)  # a public report of another generation
    for bad in (2, -1, 1 << 16, True, "0"):
        with pytest.raises(EndpointError) as info:
            handler({"pair": a.pair_id.hex(), "day": DAY, "generation": bad})
        assert info.value.code == "BAD_GENERATION", bad


# --- posting -------------------------------------------------------------------------------
def _entries(
    w: World, n: int, *, fields: int = 2, key: bytes | None = None, side: int = 0
) -> list[recon.Entry]:
    suite = w.ledger.suite
    keys = recon.derive(key or secrets.token_bytes(suite.aead_key_bytes), suite)
    pid = c.pair_id(w.org("BankA"), w.org("BankB"), suite=suite)
    records = {f"R{i}": {f"f{j}": i * j for j in range(fields)} for i in range(n)}
    return [e for _, e in rr.entries(keys, suite, pid, 0, DAY, side, records)]


def test_non_party_and_non_member_posts_change_nothing():
    w, a, _ = pair_world("ed25519-blake3")
    assert all(r.ok for r in a.post(DAY, transfers(3)))
    before = state(w)
    t1 = w.keys["Tier1"]
    tx = recon.recon_post(w.ledger.chain_id, t1.public_key, w.org("Tier1"), w.ledger.nonce(t1.public_key),
                          a.pair_id, 0, DAY, _entries(w, 3))  # fmt: skip
    assert send(w, t1, tx) == SharingReject.NOT_A_PARTY
    stranger = KeyPair.from_seed(b"nobody".ljust(32, b"\0"))
    tx = recon.recon_post(
        w.ledger.chain_id, stranger.public_key, fc.ZERO_ID, 0, a.pair_id, 0, DAY, _entries(w, 1)
    )
    assert send(w, stranger, tx) == SharingReject.SENDER_NOT_MEMBER
    pk = w.keys["BankA"].public_key
    tx = recon.recon_post(
        w.ledger.chain_id, pk, w.org("BankA"), w.ledger.nonce(pk), bytes(16), 0, DAY, _entries(w, 1)
    )
    assert send(w, w.keys["BankA"], tx) == SharingReject.NO_SUCH_PAIR
    assert state(w) == before


def test_already_posted_amend_and_withdraw():
    w, a, b = pair_world("ed25519-blake3")
    books = transfers(5)
    assert all(r.ok for r in a.post(DAY, books)) and all(r.ok for r in b.post(DAY, books))
    before = state(w)
    # A posting that repeats one posted record is refused whole (the new one is not written).
    again = {**transfers(1, start=100), "TX-000002": books["TX-000002"]}
    assert [r.code for r in a.post(DAY, again)] == [SharingReject.ALREADY_POSTED]
    assert state(w) == before
    # Amend: B corrects a record; A's report follows.
    fixed = {"TX-000002": {**books["TX-000002"], "amount": 1}}
    assert [r.code for r in b.post(DAY, fixed)] == [SharingReject.ALREADY_POSTED]
    r = b.post(DAY, fixed, amend=True)
    assert r[0].ok and recon.decode_post_event(r[0].receipt.events[0].data)[-1] == 1  # one amended
    rep = a.report(DAY)
    assert [(m.ref, m.fields) for m in rep.mismatched] == [("TX-000002", ("amount",))]
    row = recon.Row.decode(w.ledger.state[c.posting_key(a.pair_id, 0, DAY, rep.mismatched[0].tag)])
    assert row.side(b.side).height == w.ledger.height > row.side(a.side).height
    assert all(r.ok for r in b.post(DAY, {"TX-000002": books["TX-000002"]}, amend=True))
    assert a.report(DAY).clean
    # Amend also posts a record not posted yet; a withdrawal takes a side's posting off.
    assert all(r.ok for r in b.post(DAY, transfers(1, start=200), amend=True))
    assert refs_of(b.report(DAY).missing_on_them) == {"TX-000200"}
    assert all(r.ok for r in b.withdraw(DAY, ["TX-000200", "TX-000001"]))
    rep = b.report(DAY, records=books)
    assert rep.missing_on_them == [] and refs_of(rep.missing_on_us) == {"TX-000001"}
    tag = rr.tag_of(recon.derive(a.pair_key(), w.ledger.suite), w.ledger.suite, "TX-000200")
    assert c.posting_key(a.pair_id, 0, DAY, tag) not in w.ledger.state  # no side left: no row
    assert all(r.ok for r in b.withdraw(DAY, ["TX-000200"]))  # withdrawing nothing is no change


def test_bad_day():
    w, a, _ = pair_world("sm2-sm3")
    w.ledger.timestamp_ms = 20_000 * c.day_ms + 5
    assert [r.code for r in a.post(20_002, transfers(1))] == [SharingReject.BAD_DAY]
    assert a.public_report(20_002).counts["rows"] == 0
    assert all(r.ok for r in a.post(20_001, transfers(1)))  # tomorrow (time zones, cut-offs)
    assert all(r.ok for r in a.post(3, transfers(1)))  # late postings of past days


def test_bad_payloads_change_nothing():
    w, a, _ = pair_world("ed25519-blake3")
    suite = w.ledger.suite
    pk, org = w.keys["BankA"].public_key, w.org("BankA")
    good = _entries(w, 2, key=a.pair_key())
    head = struct.Struct("<16sHIBB")

    def raw(payload: bytes, tags: list[bytes]) -> object:
        reads = {fc.key_key(pk), fc.org_key(org), c.pair_key(a.pair_id)}
        writes = {c.posting_key(a.pair_id, 0, DAY, t) for t in tags}
        tx = txcodec.unsigned(
            w.ledger.chain_id, c.OP_RECON_POST, pk, w.ledger.nonce(pk), reads, writes, payload
        )
        return send(w, w.keys["BankA"], tx)

    body = b"".join(e.encode() for e in good)
    tags = [e.tag for e in good]
    small = _entries(w, 25, fields=1)
    seventeen = recon.Entry(
        good[0].tag, good[0].digest, bytes(suite.aead_nonce_bytes + suite.aead_tag_bytes + 8 * 17)
    )
    odd = recon.Entry(good[0].tag, good[0].digest, good[0].vector[:-1])
    small_tags, withdraw = [e.tag for e in small], recon.withdrawal(tags[0])
    cases = {
        "short head": (head.pack(a.pair_id, 0, DAY, 0, 2)[:-1], []),
        "amend 2": (head.pack(a.pair_id, 0, DAY, 2, 2) + body, tags),
        "no records": (head.pack(a.pair_id, 0, DAY, 0, 0), []),
        "25 records": (head.pack(a.pair_id, 0, DAY, 0, 25) + b"".join(e.encode() for e in small), small_tags),
        "count above records": (head.pack(a.pair_id, 0, DAY, 0, 3) + body, tags),
        "trailing byte": (head.pack(a.pair_id, 0, DAY, 0, 2) + body + b"\0", tags),
        "repeated tag": (head.pack(a.pair_id, 0, DAY, 0, 2) + good[0].encode() * 2, tags[:1]),
        "17 fields": (head.pack(a.pair_id, 0, DAY, 0, 1) + seventeen.encode(), tags[:1]),
        "vector size": (head.pack(a.pair_id, 0, DAY, 0, 1) + odd.encode(), tags[:1]),
        "withdrawal without amend": (head.pack(a.pair_id, 0, DAY, 0, 1) + withdraw.encode(), tags[:1]),
    }  # fmt: skip
    before = state(w)
    for name, (payload, keys) in cases.items():
        assert raw(payload, keys) == Reject.BAD_PAYLOAD, name
    assert state(w) == before
    assert raw(head.pack(a.pair_id, 0, DAY, 0, 2) + body, tags) == Reject.OK  # the well-formed one


def test_chunks_fit_a_transaction():
    _w, a, _ = pair_world("ed25519-blake3")
    wide = {f"W{i}": {f"field{j:02d}": "x" * 40 for j in range(c.recon_fields_max)} for i in range(50)}
    entries = [e for _, e in a.entries(DAY, wide)]
    parts = chunk(entries)
    assert [e for p in parts for e in p] == entries
    assert all(len(p) <= c.recon_posts_per_tx_max and recon.post_bytes(p) <= payload_bytes_max for p in parts)
    assert len(parts) == 3  # 16 fields: 20 records a posting
    assert all(r.ok for r in a.post(DAY, wide))
    assert a.public_report(DAY).counts["posted_" + "ab"[a.side]] == 50


def test_records_are_checked_before_signing():
    w, a, _ = pair_world("ed25519-blake3")
    strict = Reconciler(w.ledger, w.keys["BankA"], w.org("BankB"), fields=SCHEMA)
    bad = [
        {"amount": 1.5},  # a float: format amounts yourself
        {"amount": True},
        {"": 1},
        {"x" * 65: 1},
        {"amount": b"x" * (recon.field_value_bytes_max + 1)},
        {f"f{i}": 1 for i in range(c.recon_fields_max + 1)},
        {},
    ]
    nonce = w.ledger.nonce(w.keys["BankA"].public_key)
    for fields in bad:
        with pytest.raises(rr.ReconError):
            a.post(DAY, {"R": fields})
    with pytest.raises(rr.ReconError):
        strict.post(DAY, {"R": {"amount": 1}})  # not the schema's fields
    with pytest.raises(rr.ReconError):
        a.post(DAY, {"": {"amount": 1}})  # an empty reference
    with pytest.raises(rr.ReconError):
        a.post(DAY, {"R": {"amount": 1}, b"R": {"amount": 1}})  # one reference twice
    assert w.ledger.nonce(w.keys["BankA"].public_key) == nonce  # nothing was sent
    # Canonical values: order of fields and int vs its digits do not matter; bytes do.
    assert rr.canonical({"b": 100, "a": "x"}) == rr.canonical({"a": b"x", "b": "100"})
    assert rr.canonical({"a": "x"}) != rr.canonical({"a": "x "})


# --- what an outsider sees --------------------------------------------------------------------
def test_outsider_sees_tags_counts_and_digest_equality_only():
    w, a, b = pair_world("ed25519-blake3")
    books_a = transfers(10)
    books_b = {**books_a, "TX-000004": {**books_a["TX-000004"], "amount": 5}}
    assert all(r.ok for r in a.post(DAY, books_a)) and all(r.ok for r in b.post(DAY, books_b))
    suite = w.ledger.suite
    # Neither references nor values are anywhere in the chain's data (state or transactions).
    everything = b"".join(w.ledger.sent) + b"".join(k + v for k, v in w.ledger.state.items())
    for needle in (b"TX-00000", b"6222-000", b"2026-03-02", b"6217-0001"):
        assert needle not in everything
    # The public report: counts and tags; the mismatched row's vectors open under no other key,
    # and under the right key only for their own pair, day, tag and side.
    public = make_endpoint(w.ledger)({"pair": a.pair_id.hex(), "day": DAY})
    assert public["counts"]["matched"] == 9 and len(public["mismatched"]) == 1
    m = rr.PublicReport.from_json(public).mismatched[0]
    right = recon.derive(a.pair_key(), suite)
    wrong = recon.derive(secrets.token_bytes(suite.aead_key_bytes), suite)
    assert rr.open_vector(right, suite, a.pair_id, 0, DAY, m.tag, 0, m.vector_a) is not None
    assert rr.open_vector(wrong, suite, a.pair_id, 0, DAY, m.tag, 0, m.vector_a) is None
    assert rr.open_vector(right, suite, a.pair_id, 0, DAY, m.tag, 1, m.vector_a) is None  # the other side's
    assert rr.open_vector(right, suite, a.pair_id, 0, DAY + 1, m.tag, 0, m.vector_a) is None
    assert rr.open_vector(right, suite, a.pair_id, 1, DAY, m.tag, 0, m.vector_a) is None  # another generation
    assert rr.explain(
        [m], secrets.token_bytes(suite.aead_key_bytes), suite, SCHEMA, pair=a.pair_id, generation=0, day=DAY
    ) == {m.tag: None}
    # Only digest equality is public: equal digests for matched rows, and records with equal
    # fields under different references show different digests.
    rows = [recon.Row.decode(v) for k, v in w.ledger.state.items() if k.startswith(b"sy/")]
    assert sum(r.a.digest == r.b.digest for r in rows) == 9
    same = rr.entries(right, suite, a.pair_id, 0, DAY, 0, {"X": {"amount": 1}, "Y": {"amount": 1}})
    assert same[0][1].digest != same[1][1].digest


def test_endpoint_pages_and_refusals():
    w, a, b = pair_world("ed25519-blake3")
    assert all(r.ok for r in a.post(DAY, transfers(7))) and all(
        r.ok for r in b.post(DAY, transfers(5, start=3))
    )
    handler = make_endpoint(w.ledger)
    whole = handler({"pair": a.pair_id.hex(), "day": DAY})
    pages, after = [], None
    while True:
        body = {"pair": a.pair_id.hex(), "day": DAY, "limit": 3, **({"after": after} if after else {})}
        page = handler(body)
        pages.append(page)
        after = page["next"]
        if after is None:
            break
    merged = rr.PublicReport.from_json(pages[0])
    for page in pages[1:]:
        merged.extend(rr.PublicReport.from_json(page))
    assert merged.to_json() == rr.PublicReport.from_json(whole).to_json()
    assert merged.counts["rows"] == 8 and len(pages) == 3
    fetched = fetch_public_report(handler, a.pair_id, DAY, page_rows=3)
    assert fetched.to_json() == merged.to_json()
    assert a.report(DAY, public=fetched).to_json() == a.report(DAY).to_json()
    refusals = [
        ({"pair": a.pair_id.hex(), "day": DAY, "extra": 1}, "BAD_REQUEST", 400),
        ({"day": DAY}, "BAD_PAIR", 400),
        ({"pair": "zz" * 16, "day": DAY}, "BAD_PAIR", 400),
        ({"pair": a.pair_id.hex()[:-2], "day": DAY}, "BAD_PAIR", 400),
        ({"pair": a.pair_id.hex()}, "BAD_DAY", 400),
        ({"pair": a.pair_id.hex(), "day": -1}, "BAD_DAY", 400),
        ({"pair": a.pair_id.hex(), "day": True}, "BAD_DAY", 400),
        ({"pair": a.pair_id.hex(), "day": "0"}, "BAD_DAY", 400),
        ({"pair": a.pair_id.hex(), "day": 1 << 32}, "BAD_DAY", 400),
        ({"pair": a.pair_id.hex(), "day": DAY, "limit": 0}, "BAD_LIMIT", 400),
        ({"pair": a.pair_id.hex(), "day": DAY, "limit": endpoint_rows_max + 1}, "BAD_LIMIT", 400),
        ({"pair": a.pair_id.hex(), "day": DAY, "after": "00"}, "BAD_AFTER", 400),
        ({"pair": "00" * 16, "day": DAY}, "NO_SUCH_PAIR", 404),
    ]
    for body, code, status in refusals:
        with pytest.raises(EndpointError) as info:
            handler(body)
        assert (info.value.code, info.value.status) == (code, status), body


def _looping(pages: list[dict], calls_max: int = 50):
    """An endpoint that answers ``pages`` in turn, then the last one for ever; it fails the
    test (rather than hanging it) if asked more than ``calls_max`` times."""
    calls = []

    def call(body: dict) -> dict:
        calls.append(body)
        assert len(calls) <= calls_max, "the client kept paging"
        return pages[min(len(calls), len(pages)) - 1]

    return call, calls


def _page_tags(page: dict) -> list[str]:
    """Every row's tag on one page of the public report, whatever the row's outcome."""
    mismatched = [m["tag"] for m in page["mismatched"]]
    return page["matched"] + mismatched + page["missing_on_a"] + page["missing_on_b"]


def test_fetch_refuses_pages_that_do_not_move_forward():
    w, a, b = pair_world("ed25519-blake3")
    assert all(r.ok for r in a.post(DAY, transfers(7))) and all(r.ok for r in b.post(DAY, transfers(5, 3)))
    handler = make_endpoint(w.ledger)
    body = {"pair": a.pair_id.hex(), "day": DAY, "limit": 3}
    first = handler(body)
    second = handler({**body, "after": first["next"]})
    assert first["next"] < second["next"]
    # The same page again and again (a node that ignores "after"): refused on the second.
    call, calls = _looping([first])
    with pytest.raises(PagingError):
        fetch_public_report(call, a.pair_id, DAY, page_rows=3)
    assert len(calls) == 2
    # A cursor that goes back, one that is not a tag, a page of rows before its cursor.
    cases = [
        [first, {**second, "next": first["next"]}],
        [first, {**second, "next": "00" * 16}],
        [{**first, "next": "zz"}],
        [{**first, "next": 7}],
        [{**first, "next": min(_page_tags(first))}],  # before rows of its own page
        [first, {**first, "next": second["next"]}],  # the first page's rows again
    ]
    for pages in cases:
        call, calls = _looping(pages)
        with pytest.raises(PagingError):
            fetch_public_report(call, a.pair_id, DAY, page_rows=3)
    # More rows than asked for.
    whole = handler({"pair": a.pair_id.hex(), "day": DAY})
    with pytest.raises(PagingError):
        fetch_public_report(_looping([whole])[0], a.pair_id, DAY, page_rows=3)

    # A node whose cursors move forward for ever: bounded by pages_max.
    def endless(body: dict) -> dict:
        after = int(body.get("after", "00" * 16), 16) + 1
        return {**rr.PublicReport(a.pair_id, 0, DAY, [], [], [], []).to_json(), "next": f"{after:032x}"}

    with pytest.raises(PagingError, match="within 5 pages"):
        fetch_public_report(endless, a.pair_id, DAY, pages_max=5)
    # A page of another generation than the first one's.
    call, _ = _looping([first, {**second, "generation": 1}])
    with pytest.raises(rr.ReconError):
        fetch_public_report(call, a.pair_id, DAY, page_rows=3)
    assert fetch_public_report(handler, a.pair_id, DAY, page_rows=3).counts["rows"] == 8


class LateReceipts:
    """A ledger that commits each transaction but raises ``TimeoutError`` instead of giving
    its receipt (a node's ``RemoteLedger.send`` after admission), for the first ``late``
    sends."""

    def __init__(self, inner, late: int) -> None:
        self.inner, self.late = inner, late
        self.chain_id, self.suite = inner.chain_id, inner.suite
        self.state_get, self.state_scan, self.nonce = inner.state_get, inner.state_scan, inner.nonce

    def send(self, tx: bytes, timeout_s: float):
        out = self.inner.send(tx, timeout_s)
        if self.late > 0:
            self.late -= 1
            raise TimeoutError("the transaction was not committed in time")
        return out


def test_a_receipt_timeout_keeps_the_submitted_records_named():
    w, _a, b = pair_world("ed25519-blake3")
    books = transfers(30)
    late = Reconciler(LateReceipts(w.ledger, late=1), w.keys["BankA"], w.org("BankB"))
    with pytest.raises(PostingPending) as info:
        late.post(DAY, books)
    assert isinstance(info.value, TimeoutError) and info.value.results == [] and len(info.value.tags) == 24
    # The first posting committed; the report (the chain's rows) names its 24 records.
    rep = late.report(DAY)
    assert len(rep.missing_on_them) == 24 and None not in refs_of(rep.missing_on_them)
    # Posting the rest: the committed ones are refused as already posted, the others land.
    rest = {ref: f for ref, f in books.items() if ref not in refs_of(rep.missing_on_them)}
    assert all(r.ok for r in late.post(DAY, rest)) and all(r.ok for r in b.post(DAY, books))
    assert late.report(DAY).clean and refs_of(late.report(DAY).matched) == set(books)
    # A refused posting takes its records back out of the book (an amend that did not land).
    fixed = {"TX-000001": {"amount": 1}}
    before = dict(late.books[(0, DAY)])
    assert [r.code for r in late.post(DAY, fixed)] == [SharingReject.ALREADY_POSTED]
    assert late.books[(0, DAY)] == before


# --- randomized record sets ---------------------------------------------------------------
VALUES = st.one_of(st.integers(-(10**12), 10**12), st.text(max_size=12), st.binary(max_size=12))


@st.composite
def scenarios(draw, max_records: int = 40):
    """Two sides' books and what the report must say: per reference one of matched, changed
    (a non-empty set of fields, each to a value of other canonical bytes), A only, B only."""
    names = draw(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True))
    n = draw(st.integers(1, max_records))
    books_a, books_b, expect = {}, {}, {"matched": set(), "mismatched": {}, "a_only": set(), "b_only": set()}
    for i in range(n):
        ref = f"ref-{i}" if draw(st.booleans()) else f"ref-{i}".encode()
        fields = {name: draw(VALUES) for name in names}
        fate = draw(st.sampled_from(["matched", "matched", "changed", "a_only", "b_only"]))
        if fate == "a_only":
            books_a[ref] = fields
            expect["a_only"].add(ref)
        elif fate == "b_only":
            books_b[ref] = fields
            expect["b_only"].add(ref)
        else:
            books_a[ref], books_b[ref] = fields, dict(fields)
            if fate == "changed":
                changed = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
                for name in changed:
                    books_b[ref][name] = rr.value_bytes(fields[name]) + b"~"
                expect["mismatched"][ref] = tuple(sorted(changed))
            else:
                expect["matched"].add(ref)
    return books_a, books_b, expect


def check_report(rep: rr.Report, ours: str, theirs: str, expect: dict) -> None:
    """``ours``: the books' key of the records only the reporting side has."""
    assert refs_of(rep.matched) == expect["matched"]
    assert {m.ref: m.fields for m in rep.mismatched} == expect["mismatched"]
    assert all(m.explained for m in rep.mismatched)
    assert refs_of(rep.missing_on_them) == expect[ours]
    assert len(rep.missing_on_us) == len(expect[theirs])  # their records: tags only


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenarios(), crypto=st.sampled_from(SUITE_NAMES))
def test_property_report_finds_exactly_what_was_injected(case, crypto):
    """The pure layer: each side's entries merged into rows as the handler does, reported,
    explained by each party with its own books."""
    books_a, books_b, expect = case
    suite = suite_for(crypto)
    pair_key = secrets.token_bytes(suite.aead_key_bytes)
    keys, pid = recon.derive(pair_key, suite), secrets.token_bytes(16)
    rows: dict[bytes, bytes] = {}
    for side, books in ((0, books_a), (1, books_b)):
        for _, e in rr.entries(keys, suite, pid, 0, DAY, side, books):
            rows[e.tag], _had = recon.merge(rows.get(e.tag), side, e, 1, 2)
    public = rr.report(pid, 0, DAY, sorted(rows.items()))
    for side, books in ((0, books_a), (1, books_b)):
        names = {rr.tag_of(keys, suite, ref): tuple(f) for ref, f in books.items()}
        explained = rr.explain(public.mismatched, pair_key, suite, names, pair=pid, generation=0, day=DAY)
        rep = rr.party_report(public, side, rr.tags(keys, suite, books), explained)
        check_report(rep, *(("a_only", "b_only") if side == 0 else ("b_only", "a_only")), expect)
    # The two-mapping join agrees with the row report.
    digests = [
        {e.tag: e.digest for _, e in rr.entries(keys, suite, pid, 0, DAY, 0, b)} for b in (books_a, books_b)
    ]
    joined = rr.join(*digests)
    for name in ("matched", "missing_on_a", "missing_on_b"):
        assert sorted(joined[name]) == sorted(getattr(public, name))
    assert sorted(joined["mismatched"]) == sorted(m.tag for m in public.mismatched)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenarios(max_records=60), crypto=st.sampled_from(SUITE_NAMES))
def test_property_on_the_ledger(case, crypto):
    """The same, through the ops: both banks post, each reads its report from the chain."""
    books_a, books_b, expect = case
    _w, a, b = pair_world(crypto)
    for rec, books in ((a, books_a), (b, books_b)):
        if books:
            assert all(r.ok for r in rec.post(DAY, books))
    check_report(a.report(DAY), "a_only", "b_only", expect)
    check_report(b.report(DAY), "b_only", "a_only", expect)


@pytest.mark.parametrize("crypto", SUITE_NAMES)
@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_random_day_on_the_ledger(crypto, seed):
    """A larger day (hundreds of records, many postings per side), injections drawn by seed."""
    rng = random.Random(seed)
    books_a = transfers(400)
    books_b = {ref: dict(f) for ref, f in books_a.items()}
    expect = {"matched": set(books_a), "mismatched": {}, "a_only": set(), "b_only": set()}
    refs = rng.sample(sorted(books_a), 90)
    for ref in refs[:40]:
        changed = tuple(sorted(rng.sample(SCHEMA, rng.randint(1, 3))))
        for name in changed:
            books_b[ref][name] = str(books_b[ref][name]) + "*"
        expect["mismatched"][ref] = changed
    for ref in refs[40:65]:
        del books_b[ref]
        expect["a_only"].add(ref)
    for ref in refs[65:]:
        del books_a[ref]
        expect["b_only"].add(ref)
    expect["matched"] -= set(refs)
    w, a, b = pair_world(crypto)
    assert all(r.ok for r in a.post(DAY, books_a)) and all(r.ok for r in b.post(DAY, books_b))
    check_report(a.report(DAY), "a_only", "b_only", expect)
    check_report(b.report(DAY), "b_only", "a_only", expect)
    assert make_endpoint(w.ledger)({"pair": a.pair_id.hex(), "day": DAY})["counts"]["rows"] == 400
