"""Fingerprint-only shared lists (issue 18, item 3: ``tierchain.apps.sharing.lists``,
``list_client``, ``list_query``), in both crypto suites.

Checked: canonical identities and keyed fingerprints; the committee's list-key vote (threshold
2, a ballot per key check with one vote each, so a wrong vote cannot block the others, a void
ballot after ``ballot_ms_max``, no rotation to the current or a recent key); add, lookup,
remove, dispute (kept apart from the listing: it survives removal and re-listing; one per
disputer, bounded, withdrawn by its disputer) and re-key after a rotation (when, and the
disputes moved along), each refusal by name and without a state change; non-members cannot
list; the privacy test (the chain's full data — every transaction, every state entry, every
receipt event — holds no identity, no unkeyed hash of one, and cannot be used to test an
identity without the list key); the query service (membership before the signature,
freshness, replay marks expired in order, per-organization rate limits, bounded memory, the
operator's log) and its endpoint, on the in-memory ledger and on a real ``Chain``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from types import SimpleNamespace

import blake3
import pytest

from finance_world import kp, members
from sharing_world import ALL_ORGS, EXTRA_ORGS, World, chain_config, world
from tierchain import domains
from tierchain.apps import accounts
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import Finance
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import list_query as lq
from tierchain.apps.sharing import lists
from tierchain.apps.sharing.codes import DisputeReason, ListId, ListReason, RemoveReason, SharingReject
from tierchain.apps.sharing.list_client import ListKeyError, ListMember, Lists, SuiteMismatch
from tierchain.apps.sharing.lists import IdentityError, IdentityKind
from tierchain.crypto import SUITES, sm, suite_for
from tierchain.engine.chain import Chain
from tierchain.errors import Reject, RejectedError
from tierchain.wire import tx as txcodec

SUITE_NAMES = ("ed25519-blake3", "sm2-sm3")
USCC, NID, PASSPORT, ACCOUNT = (
    IdentityKind.UNIFIED_SOCIAL_CREDIT_CODE,
    IdentityKind.NATIONAL_ID,
    IdentityKind.PASSPORT,
    IdentityKind.ACCOUNT_NUMBER,
)
# (kind, as a member's records hold it, canonical form)
IDENTITIES = [
    (USCC, " 9135 0200 7760 4965 3a ", "91350200776049653A"),
    (NID, "11010519491231002x", "11010519491231002X"),
    (NID, "440301199001011234", "440301199001011234"),
    (PASSPORT, "chn : e1234 5678", "CHN:E12345678"),
    (ACCOUNT, "6222-0212 3456 7890 123", "6222021234567890123"),
    (ACCOUNT, "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
]


@pytest.fixture(params=SUITE_NAMES)
def w(request) -> World:
    return world(request.param)


def key_of(tag: int) -> bytes:
    return bytes([tag]) * 32


def vote(w: World, keys, epoch: int, key: bytes):
    return Lists(w.ledger).vote_list_key(keys, epoch, key)


def keyed(w: World, key: bytes = key_of(1), epoch: int = 1) -> bytes:
    """Vote ``key`` in as the list key of ``epoch`` (the world's threshold: 1)."""
    vote(w, w.node, epoch, key).check()
    return key


def bank(w: World, name: str, *keys: bytes) -> ListMember:
    return ListMember(w.ledger, w.keys[name], list(keys) or [key_of(1)])


def send_raw(w: World, keys, op: int, reads, writes, payload: bytes):
    pk = keys.public_key
    tx = txcodec.unsigned(w.ledger.chain_id, op, pk, w.ledger.nonce(pk), reads, writes, payload)
    return w.ledger.send(keys.sign_tx(tx).encode(), 5.0)[0]


def user_state(w: World) -> dict[bytes, bytes]:
    """State without the system namespace (a refused tx still consumes its nonce)."""
    return {k: v for k, v in w.ledger.state.items() if not k.startswith(b"\x00")}


def org_reads(w: World, name: str) -> set[bytes]:
    pk = w.keys[name].public_key
    return {fc.key_key(pk), fc.org_key(w.org(name))}


# --- identities and fingerprints ------------------------------------------------------------


def test_canonical_forms():
    for kind, given, canon in IDENTITIES:
        assert lists.canonical(kind, given) == canon
        assert lists.canonical(kind, given.encode()) == canon
    assert lists.canonical(USCC, "９１３５０２００７７６０４９６５３ａ") == "91350200776049653A"  # full width
    assert lists.canonical(NID, "110105491231002") == "11010519491231002X"  # first generation: 15 digits
    assert lists.canonical(NID, "11010519491231002X\u3000") == "11010519491231002X"  # ideographic space
    for kind, bad in [
        (USCC, "91350200776049653"),  # 17
        (USCC, "9135020077604965IO"),  # letters the code does not use
        (NID, "110105194912310021"),  # wrong check character
        (NID, "1101051949123100XX"),
        (PASSPORT, "E12345678"),  # no issuing state
        (PASSPORT, "CN:E12345678"),
        (ACCOUNT, "6222_0212"),
        (ACCOUNT, ""),
        (ACCOUNT, "1" * 35),
        (ACCOUNT, "1" * 200),  # longer than identity_chars_max before normalizing
        (9, "1"),  # no such kind
    ]:
        with pytest.raises(IdentityError):
            lists.canonical(kind, bad)
    with pytest.raises(IdentityError):
        lists.canonical(ACCOUNT, b"\xff\xfe")


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_fingerprint_is_keyed_canonical_and_kind_separated(name):
    suite = suite_for(name)
    fp = lists.fingerprint(key_of(1), USCC, " 9135 0200 7760 4965 3a ", suite=suite)
    assert fp == lists.fingerprint(key_of(1), USCC, "91350200776049653A", suite=suite)
    assert len(fp) == 32 and fp != lists.fingerprint(key_of(2), USCC, "91350200776049653A", suite=suite)
    # the same characters as another kind are another identity
    assert lists.fingerprint(key_of(1), ACCOUNT, "91350200776049653A", suite=suite) != fp
    # exactly the documented keyed input: tag, kind, length, canonical ASCII
    data = lists.FINGERPRINT_TAG + bytes((USCC, 18)) + b"91350200776049653A"
    assert fp == suite.keyed_hash(key_of(1), data)
    other = suite_for("sm2-sm3" if name == "ed25519-blake3" else "ed25519-blake3")
    assert fp != lists.fingerprint(key_of(1), USCC, "91350200776049653A", suite=other)
    with pytest.raises(ValueError):
        lists.fingerprint(b"short", USCC, "91350200776049653A", suite=suite)


def test_records_round_trip_and_refuse_bad_layouts():
    x = lists.Listing(b"o" * 16, ListReason.SANCTIONED, 5, 6, 10, 11)
    y = lists.Listing(b"p" * 16, ListReason.FRAUD_CONFIRMED, 8, 9)
    e = lists.Entry(3, (x, y))
    assert lists.Entry.decode(e.encode()) == e and len(e.encode()) == 4 + 2 * 49
    b = lists.Ballot(b"k" * 32, 1, 2, (b"a" * 32, b"b" * 32), activated=True)
    assert lists.Ballot.decode(b.encode()) == b
    s = lists.ListKeyState(3, b"k" * 32, 3, 4, (b"j" * 32, b"i" * 32))
    assert lists.ListKeyState.decode(s.encode()) == s and lists.ListKeyState.decode(None).epoch == 0
    assert [s.check_of(e) for e in (4, 3, 2, 1, 0)] == [None, b"k" * 32, b"j" * 32, b"i" * 32, None]
    d = lists.Disputes(
        (lists.Dispute(b"d" * 16, DisputeReason.UNDER_APPEAL, 7, 8), lists.Dispute(b"e" * 16, 1, 9, 10))
    )
    assert lists.Disputes.decode(d.encode()) == d and len(d.encode()) == 2 * 33
    for raw in [b"", e.encode()[:-1], lists.Entry(3, ()).encode(), lists.Entry(3, (y,) * 17).encode()]:
        with pytest.raises(lists.ListRecordError):
            lists.Entry.decode(raw)
    one = lists.Dispute(b"d" * 16, 1, 7, 8)
    for raw in [
        b"",
        d.encode()[:-1],
        lists.Disputes((one, one)).encode(),  # one organization twice
        lists.Disputes((lists.Dispute(b"d" * 16, lists.WITHDRAW, 7, 8),)).encode(),
        lists.Disputes(tuple(lists.Dispute(bytes([i]) * 16, 1, 7, 8) for i in range(17))).encode(),
    ]:
        with pytest.raises(lists.ListRecordError):
            lists.Disputes.decode(raw)
    for raw in [
        lists.ListKeyState(2, b"k" * 32, 3, 4, (b"j" * 32, b"i" * 32)).encode(),  # more than epoch - 1
        s.encode()[:-1],
    ]:
        with pytest.raises(lists.ListRecordError):
            lists.ListKeyState.decode(raw)


# --- the list key -------------------------------------------------------------------------------


def test_key_vote_threshold_two_and_rotation(w):
    assert w.fin.party(w.node).propose_params(fc.Params(threshold=2)).ok
    assert w.fin.params().threshold == 2
    lists_ = Lists(w.ledger)
    k1 = key_of(1)
    check = c.key_check(k1, suite=w.ledger.suite)
    assert lists_.key_state().epoch == 0
    assert (
        vote(w, w.keys["BankA"], 1, k1).code == SharingReject.VOTER_NOT_COMMITTEE
    )  # a member, not committee
    assert vote(w, w.node, 2, k1).code == SharingReject.BAD_EPOCH
    r = vote(w, w.node, 1, k1)
    assert r.ok and [e.topic for e in r.receipt.events] == [b"sh.listkey.vote"]
    assert r.receipt.events[0].data == struct.pack("<I", 1) + check + bytes((1, 0))
    assert lists_.key_state().epoch == 0  # one vote of two
    ballot = lists_.ballot(1, check)
    assert ballot.voters == (w.node.public_key,) and ballot.key_check == check and not ballot.activated
    assert vote(w, w.node, 1, k1).code == SharingReject.LIST_KEY_VOTED
    r = vote(w, w.committee2, 1, k1)
    assert r.ok and [e.topic for e in r.receipt.events] == [b"sh.listkey.vote", b"sh.listkey.rotated"]
    state = lists_.key_state()
    assert (state.epoch, state.key_check, state.height, state.history) == (1, check, w.ledger.height, ())
    assert vote(w, w.committee2, 1, k1).code == SharingReject.BAD_EPOCH  # closed
    ballot = lists_.ballot(1, check)  # kept: who rotated
    assert ballot.voters == (w.node.public_key, w.committee2.public_key) and ballot.activated
    # the key itself is nowhere on chain, only its check
    assert not any(k1 in tx for tx in w.ledger.sent) and not any(k1 in v for v in w.ledger.state.values())

    # epoch 2: a ballot that has not reached the threshold is void after ballot_ms_max
    k2 = key_of(2)
    check2 = c.key_check(k2, suite=w.ledger.suite)
    assert vote(w, w.node, 2, k2).ok
    w.ledger.timestamp_ms += lists.ballot_ms_max + 1
    assert vote(w, w.committee2, 2, k2).ok  # a fresh ballot: the node's vote lapsed
    assert lists_.ballot(2, check2).voters == (w.committee2.public_key,)
    assert lists_.key_state().epoch == 1
    assert vote(w, w.node, 2, k2).ok
    state = lists_.key_state()
    assert (state.epoch, state.key_check, state.history) == (2, check2, (check,))
    assert lists_.key_check_of(1) == check and lists_.key_check_of(2) == check2
    assert lists_.key_check_of(3) is None and lists_.key_check_of(0) is None


def test_a_wrong_vote_cannot_block_rotation(w):
    """Issue 18 review: the first vote used to fix the ballot's key check, so one committee
    member voting a wrong check made every other vote VOTE_MISMATCH until the ballot lapsed."""
    assert w.fin.party(w.node).propose_params(fc.Params(threshold=2)).ok
    lists_ = Lists(w.ledger)
    good, wrong = key_of(1), key_of(9)
    assert vote(w, w.node, 1, wrong).ok  # the first vote, for a wrong check
    r = vote(w, w.committee2, 1, good)  # not refused: the good check's own ballot
    assert r.ok and r.receipt.events[0].data[-2:] == bytes((1, 0))
    assert [len(b.voters) for b in lists_.ballots(1)] == [1, 1]
    assert lists_.key_state().epoch == 0  # neither ballot has two votes
    r = vote(w, w.node, 1, good)  # the node corrects itself: a vote in the good ballot
    assert r.ok and r.receipt.events[-1].topic == b"sh.listkey.rotated"
    assert lists_.key_state().key_check == c.key_check(good, suite=w.ledger.suite)
    wrong_ballot = lists_.ballot(1, c.key_check(wrong, suite=w.ledger.suite))
    assert wrong_ballot.voters == (w.node.public_key,) and not wrong_ballot.activated
    assert vote(w, w.committee2, 1, wrong).code == SharingReject.BAD_EPOCH  # the epoch is closed
    assert SharingReject.VOTE_MISMATCH == 197  # no longer used, never renumbered


def test_rotation_to_a_used_key_is_refused(w):
    """Issue 18 review: a rotation to the current key (or an earlier epoch's) made every new
    fingerprint an old one, stranding the entries awaiting re-key."""
    keyed(w, key_of(1))
    a = bank(w, "BankA", key_of(1), key_of(2))
    a.add(ListId.FRAUD, *IDENTITIES[0][:2], ListReason.FRAUD_CONFIRMED).check()
    before = user_state(w)
    assert vote(w, w.node, 2, key_of(1)).code == SharingReject.LIST_KEY_REUSED  # the current key
    assert user_state(w) == before
    keyed(w, key_of(2), epoch=2)
    assert vote(w, w.node, 3, key_of(1)).code == SharingReject.LIST_KEY_REUSED  # epoch 1's
    assert vote(w, w.node, 3, key_of(2)).code == SharingReject.LIST_KEY_REUSED  # epoch 2's
    assert a.rekey(ListId.FRAUD, *IDENTITIES[0][:2]).ok  # the entry was not stranded
    # the history is bounded: sc/listkey keeps the last key_history_max epochs' checks
    for epoch in range(3, lists.key_history_max + 4):
        keyed(w, key_of(epoch), epoch=epoch)
    state = Lists(w.ledger).key_state()
    assert state.epoch == lists.key_history_max + 3 and len(state.history) == lists.key_history_max
    assert state.history[0] == c.key_check(key_of(state.epoch - 1), suite=w.ledger.suite)
    assert vote(w, w.node, state.epoch + 1, key_of(3)).code == SharingReject.LIST_KEY_REUSED
    # an older epoch's check is no longer in sc/listkey: the client finds it in its activated ballot
    assert state.check_of(1) is None
    assert Lists(w.ledger).key_check_of(1) == c.key_check(key_of(1), suite=w.ledger.suite)
    assert a.key_for(1) == key_of(1)
    # ... and the vote handler, which cannot scan, no longer catches it (the documented bound)
    assert vote(w, w.node, state.epoch + 1, key_of(2)).ok


def test_key_vote_bad_payloads(w):
    reads = {accounts.account_key(w.node.public_key), fc.PARAMS_KEY}
    writes = {c.ballot_key(1, b"k" * 32), c.LIST_KEY}
    before = user_state(w)
    for payload in [
        b"",
        struct.pack("<I", 1),
        struct.pack("<I32s", 1, bytes(32)),
        struct.pack("<I32sB", 1, b"k" * 32, 0),
    ]:
        assert send_raw(w, w.node, c.OP_LIST_KEY, reads, writes, payload) == Reject.BAD_PAYLOAD
    assert user_state(w) == before
    with pytest.raises(ValueError):
        lists.list_key_vote(1, w.node.public_key, 0, 0, b"k" * 32)  # epoch 0 is "no key"


# --- add, lookup, remove, dispute --------------------------------------------------------------


def test_add_lookup_remove(w):
    keyed(w)
    a, b, t1 = bank(w, "BankA"), bank(w, "BankB"), bank(w, "Tier1")
    kind, ident, _ = IDENTITIES[0]
    assert a.lookup(ListId.BLACKLIST, kind, ident) is None
    r = a.add(ListId.BLACKLIST, kind, ident, ListReason.COURT_JUDGMENT)
    assert r.ok and r.fingerprint == a.fingerprint(kind, ident)
    (ev,) = r.receipt.events
    assert ev == type(ev)(
        b"sh.list.add", bytes((ListId.BLACKLIST,)) + r.fingerprint + bytes((ListReason.COURT_JUDGMENT,))
    )
    entry = b.lookup(ListId.BLACKLIST, kind, "91350200776049653A")  # another member, its own records' form
    assert entry is not None and entry.epoch == 1
    (x,) = entry.listings
    assert (x.org, x.reason, x.height, x.disputed) == (
        w.org("BankA"),
        ListReason.COURT_JUDGMENT,
        w.ledger.height,
        False,
    )
    assert b.lookup(ListId.FRAUD, kind, ident) is None  # lists are separate
    assert a.add(ListId.BLACKLIST, kind, ident, ListReason.FRAUD_CONFIRMED).code == SharingReject.ENTRY_EXISTS
    assert b.add(ListId.BLACKLIST, kind, ident, ListReason.FRAUD_CONFIRMED).ok
    assert [x.org for x in a.lookup(ListId.BLACKLIST, kind, ident).listings] == [
        w.org("BankA"),
        w.org("BankB"),
    ]

    before = user_state(w)
    assert t1.remove(ListId.BLACKLIST, kind, ident, RemoveReason.SETTLED).code == SharingReject.NOT_LISTER
    assert (
        a.remove(ListId.BLACKLIST, *IDENTITIES[1][:2], RemoveReason.SETTLED).code
        == SharingReject.NO_SUCH_ENTRY
    )
    assert user_state(w) == before
    r = a.remove(ListId.BLACKLIST, kind, ident, RemoveReason.SETTLED)
    assert r.ok and r.receipt.events[0].topic == b"sh.list.remove"
    assert [x.org for x in b.lookup(ListId.BLACKLIST, kind, ident).listings] == [w.org("BankB")]
    assert b.remove(ListId.BLACKLIST, kind, ident, RemoveReason.ENTERED_IN_ERROR).ok
    assert b.lookup(ListId.BLACKLIST, kind, ident) is None
    assert not any(k.startswith(b"sl/") for k in w.ledger.state)  # the key is gone with its last listing


def test_dispute(w):
    keyed(w)
    a, b, t1 = bank(w, "BankA"), bank(w, "BankB"), bank(w, "Tier1")
    kind, ident, _ = IDENTITIES[1]
    a.add(ListId.OVERDUE, kind, ident, ListReason.OVERDUE_90_DAYS).check()
    before = user_state(w)
    # the lister cannot dispute itself: BAD_PAYLOAD (it removes its listing instead)
    assert (
        a.dispute(ListId.OVERDUE, kind, ident, w.org("BankA"), DisputeReason.PAID_IN_FULL).code
        == Reject.BAD_PAYLOAD
    )
    assert (
        b.dispute(ListId.OVERDUE, kind, ident, w.org("Tier1"), DisputeReason.PAID_IN_FULL).code
        == SharingReject.NO_SUCH_ENTRY
    )
    assert (
        b.dispute(ListId.FRAUD, kind, ident, w.org("BankA"), DisputeReason.PAID_IN_FULL).code
        == SharingReject.NO_SUCH_ENTRY
    )
    assert user_state(w) == before
    r = b.dispute(ListId.OVERDUE, kind, ident, w.org("BankA"), DisputeReason.PAID_IN_FULL)
    assert r.ok and r.receipt.events[0].topic == b"sh.list.dispute"
    entry = Lists(w.ledger).entry(ListId.OVERDUE, r.fingerprint)
    assert entry == lists.Entry(1, (entry.listings[0],))  # the entry itself is not written
    (x,) = a.lookup(ListId.OVERDUE, kind, ident).listings
    assert x.disputed and x.disputes == (
        lists.Dispute(w.org("BankB"), DisputeReason.PAID_IN_FULL, w.ledger.height, w.ledger.timestamp_ms),
    )
    assert x.reason == ListReason.OVERDUE_90_DAYS  # the listing itself is unchanged
    before = user_state(w)
    assert (
        b.dispute(ListId.OVERDUE, kind, ident, w.org("BankA"), DisputeReason.DATA_ERROR).code
        == SharingReject.ALREADY_DISPUTED
    )
    assert (
        t1.withdraw_dispute(ListId.OVERDUE, kind, ident, w.org("BankA")).code == SharingReject.NO_SUCH_DISPUTE
    )
    assert user_state(w) == before
    # another member disputes too: one dispute per disputer
    assert t1.dispute(ListId.OVERDUE, kind, ident, w.org("BankA"), DisputeReason.DATA_ERROR).ok
    (x,) = a.lookup(ListId.OVERDUE, kind, ident).listings
    assert [(d.org, d.reason) for d in x.disputes] == [
        (w.org("BankB"), DisputeReason.PAID_IN_FULL),
        (w.org("Tier1"), DisputeReason.DATA_ERROR),
    ]
    # a disputer withdraws its own dispute (OP_LIST_DISPUTE with the reason code WITHDRAW)
    r = b.withdraw_dispute(ListId.OVERDUE, kind, ident, w.org("BankA"))
    assert r.ok and r.receipt.events[0] == type(r.receipt.events[0])(
        b"sh.list.withdraw", bytes((ListId.OVERDUE,)) + r.fingerprint + w.org("BankA")
    )
    (x,) = a.lookup(ListId.OVERDUE, kind, ident).listings
    assert [d.org for d in x.disputes] == [w.org("Tier1")]
    assert t1.withdraw_dispute(ListId.OVERDUE, kind, ident, w.org("BankA")).ok
    assert not a.lookup(ListId.OVERDUE, kind, ident).listings[0].disputed
    assert not any(k.startswith(b"sd/") for k in w.ledger.state)  # the record goes with its last
    assert a.remove(ListId.OVERDUE, kind, ident, RemoveReason.SETTLED).ok  # the lister settles it


def test_a_dispute_survives_removal_and_re_listing(w):
    """Issue 18 review: the dispute lived in the listing, so the lister erased it by removing
    and re-adding its listing."""
    keyed(w)
    a, b = bank(w, "BankA"), bank(w, "BankB")
    kind, ident, _ = IDENTITIES[1]
    a.add(ListId.FRAUD, kind, ident, ListReason.FRAUD_CONFIRMED).check()
    b.dispute(ListId.FRAUD, kind, ident, w.org("BankA"), DisputeReason.MISTAKEN_IDENTITY).check()
    disputed_at = w.ledger.height
    a.remove(ListId.FRAUD, kind, ident, RemoveReason.ENTERED_IN_ERROR).check()
    assert a.lookup(ListId.FRAUD, kind, ident) is None
    a.add(ListId.FRAUD, kind, ident, ListReason.FRAUD_CONFIRMED).check()
    (x,) = b.lookup(ListId.FRAUD, kind, ident).listings
    assert x.height > disputed_at and x.disputed  # listed again: still disputed
    assert [(d.org, d.reason, d.height) for d in x.disputes] == [
        (w.org("BankB"), DisputeReason.MISTAKEN_IDENTITY, disputed_at)
    ]
    # the query service's answer shows it too
    fp = a.fingerprint(kind, ident)
    got = ask(w, service(w, FakeClock()), w.keys["Tier1"], [fp])
    (listing,) = got["results"][0]["listings"]
    assert listing["disputed"] and listing["disputes"][0]["org"] == w.org("BankB").hex()
    # the disputer withdraws it while nothing is listed: a dispute outlives its listing
    a.remove(ListId.FRAUD, kind, ident, RemoveReason.SETTLED).check()
    assert Lists(w.ledger).disputes(ListId.FRAUD, fp, w.org("BankA"))
    assert b.withdraw_dispute(ListId.FRAUD, kind, ident, w.org("BankA")).ok
    a.add(ListId.FRAUD, kind, ident, ListReason.FRAUD_CONFIRMED).check()
    assert not b.lookup(ListId.FRAUD, kind, ident).listings[0].disputed
    # another lister's listing of the same fingerprint has disputes of its own
    b.add(ListId.FRAUD, kind, ident, ListReason.FORGED_DOCUMENTS).check()
    bank(w, "Tier1").dispute(ListId.FRAUD, kind, ident, w.org("BankB"), DisputeReason.DATA_ERROR).check()
    assert [x.disputed for x in a.lookup(ListId.FRAUD, kind, ident).listings] == [False, True]


def test_disputes_of_a_listing_are_bounded(w):
    keyed(w)
    node = w.fin.party(w.node)
    extra = {
        f"Bank{i}": suite_for(w.ledger.suite.name).keys_from_seed(bytes([0x50 + i]) * 32) for i in range(7)
    }
    for name, keys in extra.items():
        node.propose_admit(name, ("bank",), keys.public_key).check()
    a = bank(w, "BankA")
    others = [
        ListMember(w.ledger, k, key_of(1)) for n, k in [*w.keys.items(), *extra.items()] if n != "BankA"
    ]
    assert len(others) == lists.disputes_max + 1
    kind, ident, _ = IDENTITIES[2]
    a.add(ListId.BLACKLIST, kind, ident, ListReason.SANCTIONED).check()
    for m in others[:-1]:
        m.dispute(ListId.BLACKLIST, kind, ident, a.org, DisputeReason.DATA_ERROR).check()
    before = user_state(w)
    assert (
        others[-1].dispute(ListId.BLACKLIST, kind, ident, a.org, DisputeReason.DATA_ERROR).code
        == SharingReject.DISPUTES_FULL
    )
    assert user_state(w) == before
    assert len(a.lookup(ListId.BLACKLIST, kind, ident).listings[0].disputes) == lists.disputes_max
    assert others[0].withdraw_dispute(ListId.BLACKLIST, kind, ident, a.org).ok
    assert others[-1].dispute(ListId.BLACKLIST, kind, ident, a.org, DisputeReason.DATA_ERROR).ok


def test_no_list_key_and_stale_epoch(w):
    a = bank(w, "BankA")
    kind, ident, _ = IDENTITIES[0]
    with pytest.raises(ListKeyError):
        a.add(ListId.FRAUD, kind, ident, ListReason.FRAUD_CONFIRMED)
    fp = lists.fingerprint(key_of(1), kind, ident, suite=w.ledger.suite)
    assert (
        a.add_fingerprint(ListId.FRAUD, fp, 0, ListReason.FRAUD_CONFIRMED).code == SharingReject.NO_LIST_KEY
    )
    assert (
        a.add_fingerprint(ListId.FRAUD, fp, 1, ListReason.FRAUD_CONFIRMED).code == SharingReject.NO_LIST_KEY
    )
    keyed(w)
    assert (
        a.add_fingerprint(ListId.FRAUD, fp, 2, ListReason.FRAUD_CONFIRMED).code == SharingReject.STALE_EPOCH
    )
    # a member holding another key than the chain's is told so before it sends anything
    stranger = ListMember(w.ledger, w.keys["BankB"], key_of(7))
    sent = len(w.ledger.sent)
    with pytest.raises(ListKeyError):
        stranger.add(ListId.FRAUD, kind, ident, ListReason.FRAUD_CONFIRMED)
    with pytest.raises(ListKeyError):
        stranger.lookup(ListId.FRAUD, kind, ident)
    assert len(w.ledger.sent) == sent


def test_rekey_after_rotation(w):
    keyed(w, key_of(1))
    a, b = bank(w, "BankA"), bank(w, "BankB")
    (k1, i1, _), (k2, i2, _) = IDENTITIES[0], IDENTITIES[3]
    a.add(ListId.FRAUD, k1, i1, ListReason.FORGED_DOCUMENTS).check()
    listed_at = w.ledger.height
    b.add(ListId.FRAUD, k1, i1, ListReason.DUPLICATE_FINANCING).check()
    b.dispute(ListId.FRAUD, k1, i1, w.org("BankA"), DisputeReason.MISTAKEN_IDENTITY).check()
    a.add(ListId.BLACKLIST, k2, i2, ListReason.SANCTIONED).check()
    old_fp = a.fingerprint(k1, i1)
    with pytest.raises(ListKeyError):
        a.rekey(ListId.FRAUD, k1, i1)  # epoch 1: nothing to re-key from

    keyed(w, key_of(2), epoch=2)
    # awaiting re-key: not found at the current epoch, by a member holding only the new key...
    a2 = ListMember(w.ledger, w.keys["BankA"], key_of(2))
    assert a2.lookup(ListId.FRAUD, k1, i1) is None
    with pytest.raises(ListKeyError):
        a2.rekey(ListId.FRAUD, k1, i1)  # ...who cannot re-key without the old key
    a.add_list_key(key_of(2))
    b.add_list_key(key_of(2))
    assert a.lookup(ListId.FRAUD, k1, i1) is None
    assert Lists(w.ledger).entry(ListId.FRAUD, old_fp).epoch == 1  # still there, at epoch 1
    # the old epoch's fingerprint is refused for adds and disputes
    assert (
        a.add_fingerprint(ListId.FRAUD, old_fp, 1, ListReason.FORGED_DOCUMENTS).code
        == SharingReject.STALE_EPOCH
    )
    assert (
        a.add_fingerprint(ListId.FRAUD, old_fp, 2, ListReason.FORGED_DOCUMENTS).code
        == SharingReject.STALE_EPOCH
    )
    assert (
        bank(w, "Tier1", key_of(1), key_of(2))
        .dispute_fingerprint(ListId.FRAUD, old_fp, w.org("BankB"), DisputeReason.DATA_ERROR)
        .code
        == SharingReject.STALE_EPOCH
    )
    assert bank(w, "Tier1", key_of(1), key_of(2)).rekey(ListId.FRAUD, k1, i1).code == SharingReject.NOT_LISTER

    r = a.rekey(ListId.FRAUD, k1, i1)
    assert r.ok and r.fingerprint == a.fingerprint(k1, i1) != old_fp
    assert r.receipt.events[0].data == bytes((ListId.FRAUD,)) + old_fp + r.fingerprint
    (moved,) = a.lookup(ListId.FRAUD, k1, i1).listings
    assert (moved.org, moved.reason, moved.height, moved.rekeyed_height) == (
        w.org("BankA"),
        ListReason.FORGED_DOCUMENTS,
        listed_at,
        w.ledger.height,
    )
    assert [d.org for d in moved.disputes] == [w.org("BankB")]  # moved along
    assert [x.org for x in Lists(w.ledger).entry(ListId.FRAUD, old_fp).listings] == [w.org("BankB")]
    assert a.rekey(ListId.FRAUD, k1, i1).code == SharingReject.NOT_LISTER  # moved already
    assert b.rekey(ListId.FRAUD, k1, i1).ok
    assert Lists(w.ledger).entry(ListId.FRAUD, old_fp) is None  # the old key is gone
    assert [x.org for x in b.lookup(ListId.FRAUD, k1, i1).listings] == [w.org("BankA"), w.org("BankB")]

    # a listing not moved before the next rotation can no longer be re-keyed (e - 2)
    keyed(w, key_of(3), epoch=3)
    a.add_list_key(key_of(3))
    fp1 = lists.fingerprint(key_of(1), k2, i2, suite=w.ledger.suite)
    fp3 = lists.fingerprint(key_of(3), k2, i2, suite=w.ledger.suite)
    tx = lists.list_rekey(w.ledger.chain_id, a.pk, a.org, w.ledger.nonce(a.pk), ListId.BLACKLIST, fp1, fp3, 3)
    assert w.ledger.send(a.keys.sign_tx(tx).encode(), 5)[0] == SharingReject.STALE_EPOCH
    assert a.remove(ListId.BLACKLIST, k2, i2, RemoveReason.LAPSED, epoch=1).ok  # but removed at any epoch


def test_rekey_records_when_and_moves_the_disputes(w):
    """Issue 18 review: a re-key kept the listing's original height and time with nothing to
    tell that the chain first saw the new fingerprint at the re-key (which may name another
    identity: the chain cannot check)."""
    keyed(w, key_of(1))
    a, b = bank(w, "BankA", key_of(1), key_of(2)), bank(w, "BankB", key_of(1), key_of(2))
    kind, ident, _ = IDENTITIES[4]
    a.add(ListId.OVERDUE, kind, ident, ListReason.OVERDUE_90_DAYS).check()
    listed = (w.ledger.height, w.ledger.timestamp_ms)
    b.dispute(ListId.OVERDUE, kind, ident, a.org, DisputeReason.PAID_IN_FULL).check()
    disputed_at = w.ledger.height
    old_fp = a.fingerprint(kind, ident)
    assert a.lookup(ListId.OVERDUE, kind, ident).listings[0].rekeyed is False
    keyed(w, key_of(2), epoch=2)
    w.ledger.timestamp_ms += 5_000
    r = a.rekey(ListId.OVERDUE, kind, ident)
    assert r.ok
    (x,) = b.lookup(ListId.OVERDUE, kind, ident).listings
    assert (x.height, x.timestamp_ms) == listed  # the lister's claim
    assert (x.rekeyed_height, x.rekeyed_ms) == (w.ledger.height, w.ledger.timestamp_ms) and x.rekeyed
    assert [(d.org, d.height) for d in x.disputes] == [(b.org, disputed_at)]  # made before the re-key
    assert not Lists(w.ledger).disputes(ListId.OVERDUE, old_fp, a.org)  # moved, not copied
    assert not any(k.startswith(c.dispute_key(ListId.OVERDUE, old_fp, b"")) for k in w.ledger.state)
    # answers show both times
    got = ask(w, service(w, FakeClock()), w.keys["Tier1"], [r.fingerprint], list_id=ListId.OVERDUE)
    (shown,) = got["results"][0]["listings"]
    assert (shown["height"], shown["time_ms"]) == listed
    assert (shown["rekeyed_height"], shown["rekeyed_ms"]) == (x.rekeyed_height, x.rekeyed_ms)
    assert [d["org"] for d in shown["disputes"]] == [b.org.hex()]


def test_rekey_joins_disputes_left_at_the_new_fingerprint(w):
    """A dispute left at the new fingerprint (the lister listed it afresh, was disputed and
    removed it) joins the moved ones; a disputer's newer dispute is kept."""
    keyed(w, key_of(1))
    a = bank(w, "BankA", key_of(1), key_of(2))
    b, t1 = bank(w, "BankB", key_of(1), key_of(2)), bank(w, "Tier1", key_of(1), key_of(2))
    kind, ident, _ = IDENTITIES[5]
    a.add(ListId.FRAUD, kind, ident, ListReason.FRAUD_CONFIRMED).check()
    b.dispute(ListId.FRAUD, kind, ident, a.org, DisputeReason.DATA_ERROR).check()
    keyed(w, key_of(2), epoch=2)
    a.add(ListId.FRAUD, kind, ident, ListReason.FRAUD_CONFIRMED).check()  # afresh, not re-keyed
    assert not a.lookup(ListId.FRAUD, kind, ident).listings[0].disputed  # the known limit
    b.dispute(ListId.FRAUD, kind, ident, a.org, DisputeReason.UNDER_APPEAL).check()
    t1.dispute(ListId.FRAUD, kind, ident, a.org, DisputeReason.MISTAKEN_IDENTITY).check()
    a.remove(ListId.FRAUD, kind, ident, RemoveReason.ENTERED_IN_ERROR).check()
    assert a.rekey(ListId.FRAUD, kind, ident).ok
    (x,) = a.lookup(ListId.FRAUD, kind, ident).listings
    assert [(d.org, d.reason) for d in x.disputes] == [
        (b.org, DisputeReason.UNDER_APPEAL),
        (t1.org, DisputeReason.MISTAKEN_IDENTITY),
    ]


def test_listers_full(w):
    keyed(w)
    node = w.fin.party(w.node)
    extra = {
        f"Bank{i}": suite_for(w.ledger.suite.name).keys_from_seed(bytes([0x40 + i]) * 32) for i in range(6)
    }
    for name, keys in extra.items():
        node.propose_admit(name, ("bank",), keys.public_key).check()
    members = [ListMember(w.ledger, k, key_of(1)) for k in [*w.keys.values(), *extra.values()]]
    assert len(members) == c.listers_max + 1
    kind, ident, _ = IDENTITIES[2]
    for m in members[:-1]:
        m.add(ListId.BLACKLIST, kind, ident, ListReason.FRAUD_CONFIRMED).check()
    assert len(members[0].lookup(ListId.BLACKLIST, kind, ident).listings) == c.listers_max
    assert (
        members[-1].add(ListId.BLACKLIST, kind, ident, ListReason.FRAUD_CONFIRMED).code
        == SharingReject.LISTERS_FULL
    )
    assert members[0].remove(ListId.BLACKLIST, kind, ident, RemoveReason.SETTLED).ok
    assert members[-1].add(ListId.BLACKLIST, kind, ident, ListReason.FRAUD_CONFIRMED).ok


def test_non_members_cannot_list(w):
    keyed(w)
    kind, ident, _ = IDENTITIES[0]
    bank(w, "BankA").add(ListId.FRAUD, kind, ident, ListReason.FRAUD_CONFIRMED).check()
    stranger = suite_for(w.ledger.suite.name).keys_from_seed(b"s" * 32)  # admitted to no organization
    s = ListMember(w.ledger, stranger, key_of(1))
    fp = s.fingerprint(kind, ident)
    before = user_state(w)
    assert (
        s.add(ListId.BLACKLIST, kind, ident, ListReason.FRAUD_CONFIRMED).code
        == SharingReject.SENDER_NOT_MEMBER
    )
    assert s.remove(ListId.FRAUD, kind, ident, RemoveReason.SETTLED).code == SharingReject.SENDER_NOT_MEMBER
    assert (
        s.dispute(ListId.FRAUD, kind, ident, w.org("BankA"), DisputeReason.DATA_ERROR).code
        == SharingReject.SENDER_NOT_MEMBER
    )
    # a committee account is no member organization either
    c_member = ListMember(w.ledger, w.node, key_of(1))
    assert (
        c_member.add(ListId.BLACKLIST, kind, ident, ListReason.FRAUD_CONFIRMED).code
        == SharingReject.SENDER_NOT_MEMBER
    )
    # a revoked key of a member
    bank_a = w.fin.party(w.keys["BankA"])
    spare = suite_for(w.ledger.suite.name).keys_from_seed(b"t" * 32)
    bank_a.add_key(spare.public_key).check()
    w.fin.party(spare).revoke_key(w.keys["BankA"].public_key).check()
    before = user_state(w)
    assert (
        bank(w, "BankA").add(ListId.BLACKLIST, kind, ident, ListReason.FRAUD_CONFIRMED).code
        == SharingReject.SENDER_KEY_REVOKED
    )
    assert user_state(w) == before and Lists(w.ledger).entry(ListId.BLACKLIST, fp) is None
    # another suite's keys are refused by the client, by name
    other = SUITES["sm2-sm3" if w.ledger.suite.name == "ed25519-blake3" else "ed25519-blake3"]
    with pytest.raises(SuiteMismatch):
        ListMember(w.ledger, other.keys_from_seed(b"s" * 32), key_of(1))
    with pytest.raises(SuiteMismatch):
        Lists(w.ledger).vote_list_key(other.keys_from_seed(b"s" * 32), 2, key_of(2))


def test_bad_payloads_and_declared_keys(w):
    keyed(w)
    a = w.keys["BankA"]
    fp = b"f" * 32
    reads = org_reads(w, "BankA") | {c.LIST_KEY}
    sl = {c.entry_key(1, fp)}
    before = user_state(w)
    cases = [
        (c.OP_LIST_ADD, struct.pack("<B32sIB", 9, fp, 1, 1)),  # no such list
        (c.OP_LIST_ADD, struct.pack("<B32sIB", 1, fp, 1, 0)),  # no such reason
        (c.OP_LIST_ADD, struct.pack("<B32sI", 1, fp, 1)),  # short
        (c.OP_LIST_ADD, struct.pack("<B32sIBB", 1, fp, 1, 1, 0)),  # long
        (c.OP_LIST_REMOVE, struct.pack("<B32sB", 1, fp, 9)),
        (c.OP_LIST_DISPUTE, struct.pack("<B32s16sB", 1, fp, w.org("BankB"), 9)),  # no such reason
        (c.OP_LIST_DISPUTE, struct.pack("<B32s16sB", 1, fp, w.org("BankA"), 1)),  # its own listing
        (c.OP_LIST_DISPUTE, struct.pack("<B32s16sB", 1, fp, w.org("BankA"), lists.WITHDRAW)),
        (c.OP_LIST_REKEY, struct.pack("<B32s32sI", 0, fp, b"g" * 32, 1)),
        (c.OP_LIST_REKEY, struct.pack("<B32s32sI", 1, fp, fp, 1)),  # old == new
    ]
    sd = {c.dispute_key(1, fp, w.org(n)) for n in ("BankA", "BankB")}
    for op, payload in cases:
        writes = sl | ({c.entry_key(0, fp), c.entry_key(1, b"g" * 32)} if op == c.OP_LIST_REKEY else set())
        writes |= sd if op == c.OP_LIST_DISPUTE else set()
        assert send_raw(w, a, op, reads, writes, payload) == Reject.BAD_PAYLOAD, (op, payload)
    assert user_state(w) == before
    # a tx that leaves out a key the op touches fails as undeclared access
    assert (
        send_raw(w, a, c.OP_LIST_ADD, org_reads(w, "BankA"), sl, struct.pack("<B32sIB", 1, fp, 1, 1))
        == Reject.UNDECLARED_ACCESS
    )
    # the builders declare exactly what the handlers touch
    org, pk = w.org("BankA"), a.public_key
    base = {fc.key_key(pk), fc.org_key(org)}
    t = lists.list_add(1, pk, org, 0, 1, fp, 1, 1)
    assert (set(t.reads), set(t.writes)) == (base | {c.LIST_KEY}, sl)
    t = lists.list_remove(1, pk, org, 0, 1, fp, 1)
    assert (set(t.reads), set(t.writes)) == (base, sl)
    t = lists.list_dispute(1, pk, org, 0, 1, fp, b"o" * 16, 1)
    assert (set(t.reads), set(t.writes)) == (base | {c.LIST_KEY} | sl, {c.dispute_key(1, fp, b"o" * 16)})
    t = lists.list_withdraw_dispute(1, pk, org, 0, 1, fp, b"o" * 16)
    assert (set(t.reads), set(t.writes)) == (base, {c.dispute_key(1, fp, b"o" * 16)})
    assert t.payload[-1] == lists.WITHDRAW and c.dispute_key(1, fp, b"o" * 16) == b"sd/\x01" + fp + b"o" * 16
    t = lists.list_rekey(1, pk, org, 0, 1, fp, b"g" * 32, 2)
    assert (set(t.reads), set(t.writes)) == (
        base | {c.LIST_KEY},
        sl | {c.entry_key(1, b"g" * 32), c.dispute_key(1, fp, org), c.dispute_key(1, b"g" * 32, org)},
    )
    t = lists.list_key_vote(1, pk, 0, 1, b"k" * 32)
    assert (set(t.reads), set(t.writes)) == (
        {accounts.account_key(pk), fc.PARAMS_KEY},
        {c.ballot_key(1, b"k" * 32), c.LIST_KEY},
    )
    assert c.ballot_key(1, b"k" * 32) == b"sb/" + struct.pack("<I", 1) + b"k" * 32
    for bad in [
        lambda: lists.list_add(1, pk, org, 0, 9, fp, 1, 1),
        lambda: lists.list_add(1, pk, org, 0, 1, b"short", 1, 1),
        lambda: lists.list_dispute(1, pk, org, 0, 1, fp, b"o" * 16, lists.WITHDRAW),  # not a DisputeReason
        lambda: lists.list_withdraw_dispute(1, pk, org, 0, 1, fp, b"short"),
    ]:
        with pytest.raises(ValueError):
            bad()


# --- privacy --------------------------------------------------------------------------------


def _forms(kind: int, given: str, canon: str) -> list[bytes]:
    """The byte forms an identity could leak in."""
    out = []
    for text in {given, canon, given.strip(), canon.lower()}:
        for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le"):
            out.append(text.encode(enc))
        out.append(text.encode().hex().encode())
    out.append(lists.FINGERPRINT_TAG + bytes((kind, len(canon))) + canon.encode())  # the keyed input itself
    out.append(bytes((kind, len(canon))) + canon.encode())
    return [f for f in out if len(f) >= 6]


def _unkeyed_hashes(data: bytes) -> list[bytes]:
    contexts = c.DOMAINS + fc.DOMAINS + domains.ALL + (lq.SH_LIST_QUERY, "")
    out = [s.hash(ctx, data) for s in SUITES.values() for ctx in contexts]
    out += [s.keyed_hash(bytes(32), data) for s in SUITES.values()]
    out += [hashlib.sha256(data).digest(), hashlib.sha512(data).digest()[:32], hashlib.sha1(data).digest()]
    out += [
        hashlib.sha3_256(data).digest(),
        hashlib.md5(data).digest(),
        blake3.blake3(data).digest(),
        sm.sm3(data),
    ]
    return out


def test_privacy_full_chain_data_cannot_test_an_identity(w):
    receipts = []
    block = w.ledger.block

    def recording_block(txs):
        got = block(txs)
        receipts.extend(got)
        return got

    w.ledger.block = recording_block
    key = os.urandom(32)
    keyed(w, key)
    a, b = ListMember(w.ledger, w.keys["BankA"], key), ListMember(w.ledger, w.keys["BankB"], key)
    for i, (kind, given, _) in enumerate(IDENTITIES):
        a.add(ListId(1 + i % 3), kind, given, ListReason(1 + i % 6)).check()
    kind, given, _ = IDENTITIES[0]
    b.add(ListId.BLACKLIST, kind, given, ListReason.COURT_JUDGMENT).check()
    b.dispute(ListId.OVERDUE, *IDENTITIES[1][:2], w.org("BankA"), DisputeReason.UNDER_APPEAL).check()
    a.remove(ListId.BLACKLIST, *IDENTITIES[3][:2], RemoveReason.SETTLED).check()  # history stays in txs

    # the chain's full data: every transaction, every state entry, every receipt event
    parts = list(w.ledger.sent)
    parts += [k + v for k, v in w.ledger.state.items()]
    parts += [e.topic + e.data for r in receipts for e in r.events]
    corpus = b"\n".join(parts)
    assert len(receipts) >= 10 and len(corpus) > 5000

    for i, (kind, given, canon) in enumerate(IDENTITIES):
        # (a) no identity, in any form
        for form in _forms(kind, given, canon):
            assert form not in corpus, (given, form)
        # (b) no unkeyed hash of any form of it (nor a 16-byte id cut from one)
        for form in {given.encode(), canon.encode(), _forms(kind, given, canon)[-2]}:
            for digest in _unkeyed_hashes(form):
                assert digest[:16] not in corpus, (given, form)
        # (c) fingerprints under any key but K match nothing on chain: another random key, the
        # zero key, the public key check used as a key, and every 32 bytes of the key records
        state = lists.read_key_state(w.ledger.state_get)
        wrong_keys = [
            os.urandom(32),
            bytes(32),
            state.key_check,
            c.key_check(bytes(32), suite=w.ledger.suite),
        ]
        for k in (c.LIST_KEY, c.ballot_key(1, state.key_check)):
            raw = w.ledger.state[k]
            wrong_keys += [raw[j : j + 32] for j in range(len(raw) - 31)]
        for wrong in wrong_keys:
            fp = lists.fingerprint(wrong, kind, given, suite=w.ledger.suite)
            assert fp not in corpus
            assert all(c.entry_key(list_id, fp) not in w.ledger.state for list_id in ListId)
        # (d) with K, the lookup finds it (where it is still listed)
        found = b.lookup(ListId(1 + i % 3), kind, canon)
        assert (found is not None) == (i != 3), given
        assert lists.fingerprint(key, kind, given, suite=w.ledger.suite) in corpus

    # and the key K itself is nowhere: only its check
    assert key not in corpus and state.key_check in corpus


# --- the query service ------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t, self.wall = 100.0, 1_700_000_000_000

    def __call__(self) -> float:
        return self.t

    def ms(self) -> int:
        return self.wall


def service(w: World, clock: FakeClock, **kw) -> lq.ListQueryService:
    return lq.ListQueryService(w.ledger, w.ledger.suite, clock=clock, wall_ms=clock.ms, **kw)


def ask(w: World, svc, keys, fps, *, list_id=ListId.FRAUD, ts=None, chain_id=None) -> dict:
    req = lq.query_request(
        keys,
        w.ledger.chain_id if chain_id is None else chain_id,
        list_id,
        fps,
        svc.wall_ms() if ts is None else ts,
        w.ledger.suite,
    )
    return svc.answer(req)


def refused(fn) -> str:
    with pytest.raises(lq.ListQueryError) as e:
        fn()
    return e.value.code


@pytest.fixture
def listed(w):
    """Epoch 1; BankA lists two identities on FRAUD, BankB disputes one."""
    keyed(w)
    a, b = bank(w, "BankA"), bank(w, "BankB")
    a.add(ListId.FRAUD, *IDENTITIES[0][:2], ListReason.FRAUD_CONFIRMED).check()
    a.add(ListId.FRAUD, *IDENTITIES[1][:2], ListReason.FORGED_DOCUMENTS).check()
    b.dispute(ListId.FRAUD, *IDENTITIES[1][:2], w.org("BankA"), DisputeReason.MISTAKEN_IDENTITY).check()
    return w, [a.fingerprint(*IDENTITIES[i][:2]) for i in range(3)]


def test_query_answers_current_listings(listed):
    w, fps = listed
    clock = FakeClock()
    svc = service(w, clock)
    got = ask(w, svc, w.keys["BankB"], fps)
    assert (got["list"], got["epoch"], got["org"]) == ("FRAUD", 1, w.org("BankB").hex())
    r0, r1, r2 = got["results"]
    assert r0["fingerprint"] == fps[0].hex() and r0["listed"]
    assert r0["listings"] == [
        {
            "org": w.org("BankA").hex(),
            "reason": "FRAUD_CONFIRMED",
            "height": r0["listings"][0]["height"],
            "time_ms": w.ledger.timestamp_ms,
            "rekeyed_height": None,
            "rekeyed_ms": None,
            "disputed": False,
            "disputes": [],
        }
    ]
    assert r1["listings"][0]["disputed"] and r1["listings"][0]["disputes"] == [
        {
            "org": w.org("BankB").hex(),
            "reason": "MISTAKEN_IDENTITY",
            "height": w.ledger.height,
            "time_ms": w.ledger.timestamp_ms,
        }
    ]
    assert (r2["listed"], r2["listings"]) == (False, [])
    assert ask(w, svc, w.keys["BankB"], fps[:1], list_id=ListId.BLACKLIST)["results"][0]["listed"] is False
    # the operator's log: who, which list, how many, when — no fingerprints
    log = svc.query_log()
    assert [(e.org, e.list_id, e.count, e.time_ms) for e in log] == [
        (w.org("BankB"), ListId.FRAUD, 3, clock.wall),
        (w.org("BankB"), ListId.BLACKLIST, 1, clock.wall),
    ]
    # after a rotation the old entries are awaiting re-key: not found
    keyed(w, key_of(2), epoch=2)
    clock.wall += 1
    got = ask(w, svc, w.keys["BankB"], fps)
    assert got["epoch"] == 2 and not any(r["listed"] for r in got["results"])


def test_query_rate_limit_per_org(listed):
    w, fps = listed
    clock = FakeClock()
    svc = service(w, clock, rate_per_s=2.0, burst=5)

    def once(name="BankB", keys=None):
        clock.wall += 1  # a new request each time (else REPLAYED)
        return ask(w, svc, keys or w.keys[name], fps[:1])

    for _ in range(5):
        once()
    with pytest.raises(lq.ListQueryError) as e:
        once()
    assert (e.value.code, e.value.status, e.value.retry_after_s) == ("RATE_LIMITED", 429, 0.5)
    assert refused(once) == "RATE_LIMITED"  # refusals take no token and give none back
    # another organization is served
    for _ in range(5):
        once("Tier1")
    # another key of the same organization shares its bucket
    spare = suite_for(w.ledger.suite.name).keys_from_seed(b"q" * 32)
    w.fin.party(w.keys["BankB"]).add_key(spare.public_key).check()
    assert refused(lambda: once(keys=spare)) == "RATE_LIMITED"
    # refill: 2 tokens a second
    clock.t += 0.5
    once()
    assert refused(once) == "RATE_LIMITED"
    clock.t += 10
    for _ in range(5):
        once(keys=spare)
    assert refused(once) == "RATE_LIMITED"
    assert svc.stats()["refused"] == {"RATE_LIMITED": 5}
    assert svc.stats()["answered"] == 16


def test_query_refusals_by_name(listed):
    w, fps = listed
    clock = FakeClock()
    svc = service(w, clock, fps_per_query_max=4, skew_ms=30_000)
    bb = w.keys["BankB"]
    req = lq.query_request(bb, w.ledger.chain_id, ListId.FRAUD, fps, clock.wall, w.ledger.suite)
    # bad signature: a flipped bit, or another member's key named as the signer
    assert refused(lambda: svc.answer(req[:-1] + bytes((req[-1] ^ 1,)))) == "BAD_SIGNATURE"
    at = len(lq.QUERY_TAG) + 4
    swapped = req[:at] + w.keys["BankA"].public_key + req[at + 32 :]
    assert refused(lambda: svc.answer(swapped)) == "BAD_SIGNATURE"
    # freshness, both ways
    assert refused(lambda: ask(w, svc, bb, fps, ts=clock.wall - 30_001)) == "STALE_REQUEST"
    assert refused(lambda: ask(w, svc, bb, fps, ts=clock.wall + 30_001)) == "STALE_REQUEST"
    ask(w, svc, bb, fps[:1], ts=clock.wall - 30_000)
    # members only: a key of no organization, a committee account, a revoked key
    stranger = suite_for(w.ledger.suite.name).keys_from_seed(b"s" * 32)
    assert refused(lambda: ask(w, svc, stranger, fps)) == "NOT_A_MEMBER"
    assert refused(lambda: ask(w, svc, w.node, fps)) == "NOT_A_MEMBER"
    spare = suite_for(w.ledger.suite.name).keys_from_seed(b"q" * 32)
    w.fin.party(bb).add_key(spare.public_key).check()
    w.fin.party(spare).revoke_key(bb.public_key).check()
    assert refused(lambda: ask(w, svc, bb, fps)) == "NOT_A_MEMBER"
    # sizes and shape
    many = [os.urandom(32) for _ in range(5)]
    assert refused(lambda: ask(w, svc, spare, many)) == "TOO_MANY_FINGERPRINTS"
    assert refused(lambda: ask(w, svc, spare, fps, chain_id=w.ledger.chain_id + 1)) == "WRONG_CHAIN"
    good = lq.query_request(spare, w.ledger.chain_id, ListId.FRAUD, fps, clock.wall, w.ledger.suite)
    bad_list = bytearray(good)
    bad_list[len(lq.QUERY_TAG) + 4 + 32] = 7
    n_at = len(lq.QUERY_TAG) + 4 + 32 + 1 + 8
    twice = good[:n_at] + struct.pack("<H", 2) + fps[0] + fps[0] + good[-64:]
    for bad in [
        b"",
        b"junk",
        good[:-1],
        good + b"\0",
        bytes(bad_list),
        twice,
        good[:n_at] + b"\0\0" + good[n_at + 2 :],
    ]:
        assert refused(lambda bad=bad: svc.answer(bad)) == "BAD_REQUEST", bad[:40]
    assert refused(lambda: svc.answer("not bytes")) == "BAD_REQUEST"
    # a replayed request
    assert svc.answer(good)["results"]
    assert refused(lambda: svc.answer(good)) == "REPLAYED"
    with pytest.raises(ValueError):
        lq.query_request(spare, w.ledger.chain_id, ListId.FRAUD, [fps[0], fps[0]], clock.wall, w.ledger.suite)
    statuses = {code: lq.ListQueryError(code).status for code in lq.STATUS}
    assert (
        statuses["RATE_LIMITED"] == 429
        and statuses["BAD_SIGNATURE"] == 401
        and statuses["NOT_A_MEMBER"] == 403
    )
    assert statuses["BAD_REQUEST"] == statuses["TOO_MANY_FINGERPRINTS"] == 400
    assert svc.query_log()[-1].org == w.org("BankB")  # the key's organization


def test_query_memory_is_bounded(listed):
    w, fps = listed
    clock = FakeClock()
    svc = service(w, clock, rate_per_s=1.0, burst=2, orgs_max=2, log_max=3, replay_max=4)

    def once(name):
        clock.wall += 1
        return ask(w, svc, w.keys[name], fps[:1])

    once("BankA")
    once("BankB")
    # two busy buckets: a third organization waits rather than resetting someone's bucket
    assert refused(lambda: once("Tier1")) == "RATE_LIMITED"
    clock.t += 2  # both refilled: idle, dropped to make room
    once("Tier1")
    assert svc.stats()["orgs_tracked"] <= 2
    once("Tier1")
    assert len(svc.query_log()) == 3 and [e.org for e in svc.query_log()][-1] == w.org("Tier1")
    # replay marks: at most replay_max fresh ones; stale marks are dropped to make room
    assert svc.stats()["replay_marks"] == 4
    clock.t += 100
    assert refused(lambda: once("BankA")) == "RATE_LIMITED"  # 4 fresh marks
    clock.wall += 60_001  # every mark stale
    once("BankA")
    assert svc.stats()["replay_marks"] == 1


def test_query_checks_membership_before_the_signature(listed):
    """Issue 18 review: a non-member's junk cost the node a signature check; a state read
    (is the signer a member's key?) now comes first."""
    w, fps = listed
    svc = service(w, FakeClock())
    real, verified = svc.suite, []

    class CountingSuite:
        def __getattr__(self, name):
            return getattr(real, name)

        def verify(self, *args):
            verified.append(args)
            return real.verify(*args)

    svc.suite = CountingSuite()
    stranger = suite_for(w.ledger.suite.name).keys_from_seed(b"s" * 32)
    junk_signature = bytes(real.signature_bytes)
    req = lq.query_request(stranger, w.ledger.chain_id, ListId.FRAUD, fps, svc.wall_ms(), real)
    assert refused(lambda: svc.answer(req[: -len(junk_signature)] + junk_signature)) == "NOT_A_MEMBER"
    assert refused(lambda: svc.answer(req)) == "NOT_A_MEMBER"  # signed or not: no member
    assert verified == []
    req = lq.query_request(w.keys["BankB"], w.ledger.chain_id, ListId.FRAUD, fps, svc.wall_ms(), real)
    assert refused(lambda: svc.answer(req[: -len(junk_signature)] + junk_signature)) == "BAD_SIGNATURE"
    assert len(verified) == 1
    assert svc.answer(req)["results"] and len(verified) == 2


def test_query_replay_marks_expire_in_arrival_order(listed):
    """Issue 18 review: a full replay store was rebuilt, every mark copied, on each request;
    marks now expire from the front in arrival order (amortized O(1) a request)."""
    w, fps = listed
    clock = FakeClock()
    svc = service(w, clock, rate_per_s=1000.0, burst=1000, replay_max=3, skew_ms=1_000)
    marks, start = svc._seen, clock.wall

    def once(ts=None):
        clock.wall += 1
        return ask(w, svc, w.keys["BankB"], fps[:1], ts=ts)

    for _ in range(3):
        once()
    assert svc.stats()["replay_marks"] == 3
    assert refused(once) == "RATE_LIMITED"  # full of fresh marks
    assert svc._seen is marks  # not rebuilt
    clock.wall = start + 1_002  # the first mark is stale (made at start + 1), the second not yet
    ask(w, svc, w.keys["BankB"], fps[:1])
    assert svc.stats()["replay_marks"] == 3 and svc._seen is marks

    # a request ahead of the clock keeps the marks behind it a while: harmless, bounded
    svc = service(w, clock, rate_per_s=1000.0, burst=1000, replay_max=10, skew_ms=1_000)
    now = clock.wall
    ask(w, svc, w.keys["BankB"], fps[:1], ts=now + 900)  # stale after now + 1900
    late = lq.query_request(w.keys["BankB"], w.ledger.chain_id, ListId.FRAUD, fps[:1], now, w.ledger.suite)
    svc.answer(late)  # stale after now + 1000
    clock.wall = now + 1_500
    ask(w, svc, w.keys["BankB"], fps[:1])
    assert svc.stats()["replay_marks"] == 3  # the stale mark waits behind a fresh one
    assert refused(lambda: svc.answer(late)) == "STALE_REQUEST"  # its request is stale anyway
    clock.wall = now + 1_901
    ask(w, svc, w.keys["BankB"], fps[:1])
    assert svc.stats()["replay_marks"] == 2


def test_service_arguments(w):
    with pytest.raises(ValueError):
        lq.ListQueryService(w.ledger.state_get, w.ledger.suite)  # a bare state_get needs the chain id
    other = SUITES["sm2-sm3" if w.ledger.suite.name == "ed25519-blake3" else "ed25519-blake3"]
    with pytest.raises(ValueError):
        lq.ListQueryService(w.ledger, other)
    with pytest.raises(ValueError):
        lq.ListQueryService(w.ledger, w.ledger.suite, fps_per_query_max=0)
    with pytest.raises(ValueError):
        lq.query_request(w.keys["BankA"], 1, ListId.FRAUD, [b"x" * 32], 0, other)
    svc = lq.ListQueryService(w.ledger.state_get, w.ledger.suite, chain_id=w.ledger.chain_id)
    keyed(w)
    ts = svc.wall_ms()
    got = svc.answer(
        lq.query_request(w.keys["BankA"], w.ledger.chain_id, ListId.FRAUD, [b"x" * 32], ts, w.ledger.suite)
    )
    assert got["results"][0]["listed"] is False


def test_endpoint(listed):
    w, fps = listed
    clock = FakeClock()
    chain = SimpleNamespace(
        state_get=w.ledger.state_get, config=SimpleNamespace(chain_id=w.ledger.chain_id), suite=w.ledger.suite
    )
    endpoint = lq.make_endpoint(chain, clock=clock, wall_ms=clock.ms, burst=1, rate_per_s=0.1)
    req = lq.query_request(w.keys["BankB"], w.ledger.chain_id, ListId.FRAUD, fps, clock.wall, w.ledger.suite)
    assert endpoint({"request": req.hex()})["results"][0]["listed"]
    assert endpoint.service.query_log()[0].count == 3
    for body, code, status in [
        ({"request": "zz"}, "BAD_REQUEST", 400),
        ({}, "BAD_REQUEST", 400),
        ([], "BAD_REQUEST", 400),
        ({"request": "00" * (lq.request_hex_chars_max)}, "BAD_REQUEST", 400),
        ({"request": req.hex()}, "REPLAYED", 401),
    ]:
        with pytest.raises(lq.ListQueryError) as e:
            endpoint(body)
        assert (e.value.code, e.value.status) == (code, status)
    clock.wall += 1
    again = lq.query_request(
        w.keys["BankB"], w.ledger.chain_id, ListId.FRAUD, fps, clock.wall, w.ledger.suite
    )
    with pytest.raises(lq.ListQueryError) as e:
        endpoint({"request": again.hex()})
    assert (e.value.code, e.value.status) == ("RATE_LIMITED", 429)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_on_a_real_chain(tmp_path, name):
    """The client and the endpoint over an embedded ``Chain`` (what the node API serves), and
    no identity in the node's files."""
    m = members(name)
    with Chain(tmp_path / "chain", chain_config(crypto=name), m.node) as chain:
        fin = Finance(chain)
        keys = {**m.keys, **{n: kp(n, name) for n in EXTRA_ORGS}}
        for org, roles in ALL_ORGS.items():
            fin.party(m.node).propose_admit(org, roles, keys[org].public_key).check()
        key = lists.new_list_key()
        Lists(chain).vote_list_key(m.node, 1, key).check()
        a = ListMember(chain, keys["BankA"], key)
        a.add(ListId.BLACKLIST, *IDENTITIES[0][:2], ListReason.SANCTIONED).check()
        entry = ListMember(chain, keys["BankB"], key).lookup(ListId.BLACKLIST, *IDENTITIES[0][:2])
        assert entry is not None and entry.listings[0].org == fin.org_id("BankA")
        endpoint = lq.make_endpoint(chain)
        fp = a.fingerprint(*IDENTITIES[0][:2])
        req = lq.query_request(
            keys["BankB"], chain.config.chain_id, ListId.BLACKLIST, [fp], lq._wall_ms(), chain.suite
        )
        got = endpoint({"request": req.hex()})
        assert got["results"][0]["listed"] and got["results"][0]["listings"][0]["reason"] == "SANCTIONED"
        with pytest.raises(RejectedError):
            a.add(ListId.BLACKLIST, *IDENTITIES[0][:2], ListReason.SANCTIONED).check()
        for kind, given, _ in IDENTITIES[1:3]:
            a.add(ListId.FRAUD, kind, given, ListReason.FRAUD_CONFIRMED).check()
    # the node's storage (state store, block and receipt logs: uncompressed) holds fingerprints only
    stored = b"".join(p.read_bytes() for p in sorted((tmp_path / "chain").rglob("*")) if p.is_file())
    assert fp in stored  # the control: what is listed is in storage
    for kind, given, canon in IDENTITIES[:3]:
        for form in _forms(kind, given, canon):
            assert form not in stored, (given, form)
    assert key not in stored
