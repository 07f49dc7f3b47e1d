"""Warehouse receipts with goods flows (issue 20, item 2: ``tierchain.apps.receipts``).

Checked, in both crypto suites for the main flow: a warehouse anchors its receipt document
and issues a receipt; its IoT feed moves goods in batches with sequence numbers (replays,
reorderings and gaps refused); goods-out beyond the balance, and a pledged receipt's goods
leaving without the pledgee's release, are refused *and recorded* (the anomaly is on
chain, the balance and the stock unchanged); a receipt backs one pledge at a time; the
pledgee lets goods out, releases, or takes the receipt on default; transfer (two-step),
split (parts sum exactly), close at zero; lineage JSON; every refusal code with no state
change; malformed payloads; the app value's claims; and the runnable example.
The conservation properties over random op sequences are in test_receipts_property.py.
"""

from __future__ import annotations

import runpy
import struct
from pathlib import Path

import pytest

from finance_world import kp
from sharing_world import World, world
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.codes import FinanceReject as F
from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts import goods as goods_ops
from tierchain.apps.receipts import issue as issue_ops
from tierchain.apps.receipts import offers, split
from tierchain.apps.receipts.app import APP
from tierchain.apps.receipts.client import MoveKind, Outcome, Receipts, ReceiptsParty, Result
from tierchain.apps.receipts.codes import Event, State
from tierchain.apps.receipts.codes import ReceiptReject as R
from tierchain.apps.receipts.lineage import LineageError
from tierchain.engine import apps
from tierchain.errors import Reject, RejectedError
from tierchain.wire.tx import unsigned

SUITES = ("ed25519-blake3", "sm2-sm3")
APPS = ("accounts", "xshard", "finance", "receipts")
DOCS = Path(__file__).parents[2] / "docs"
DAY = 86_400_000
ITEM, UNIT, LOC = b"CU-CATHODE-A", b"g", b"SH-WGQ-07"
TEN_TONNES = 10_000_000  # grams
IN, OUT = MoveKind.GOODS_IN, MoveKind.GOODS_OUT


def make_world(crypto: str = "ed25519-blake3") -> World:
    return world(crypto, apps=APPS)


@pytest.fixture(params=SUITES)
def w(request) -> World:
    return make_world(request.param)


@pytest.fixture
def w1() -> World:
    """One suite, for the refusal tests (the codes do not depend on the suite)."""
    return make_world()


def rc_of(w: World) -> Receipts:
    return Receipts(w.ledger)


def party(w: World, name: str) -> ReceiptsParty:
    return rc_of(w).party(w.keys[name])


def unchanged(w: World, attempt, code) -> Result:
    """``attempt`` is refused with ``code`` and changes no state but the sender's nonce."""
    before = {k: v for k, v in w.ledger.state.items() if not k.startswith(b"\x00")}
    result = attempt()
    assert result.code == code, (result.code, code)
    assert {k: v for k, v in w.ledger.state.items() if not k.startswith(b"\x00")} == before
    return result


def issued(w: World, quantity: int = TEN_TONNES, to: str = "Tier1", anchor: bytes | None = None) -> bytes:
    return party(w, "Depot").issue(w.org(to), quantity, ITEM, UNIT, LOC, anchor=anchor).check().id


def pledged(w: World, rid: bytes, holder: str = "Tier1", bank: str = "BankA", loan: int = 5_000_000) -> None:
    party(w, holder).pledge(rid, w.org(bank), loan, w.ledger.timestamp_ms + 30 * DAY).check()
    party(w, bank).accept(rid).check()


def second_warehouse(w: World, name: str = "Depot2") -> ReceiptsParty:
    key = kp(name, w.ledger.suite.name)
    w.fin.party(w.node).propose_admit(name, ("warehouse",), key.public_key).check()
    w.keys[name] = key
    return party(w, name)


# --- the flow -------------------------------------------------------------------------------------


def test_issue_goods_pledge_anomaly_release_transfer_split_close(w):
    rc = rc_of(w)
    depot, t1, t2, bank = (party(w, n) for n in ("Depot", "Tier1", "Tier2", "BankA"))
    doc = b"WAREHOUSE RECEIPT WR-2026-0001\ncopper cathode grade A, 10 t, bay SH-WGQ-07\n"
    fp = depot.anchor_document(doc).check().id
    assert fp == w.fin.document_fingerprint(doc)
    r = depot.issue(w.org("Tier1"), TEN_TONNES, ITEM, UNIT, LOC, anchor=fp).check()
    rid = r.id
    assert rid[:8] == w.org("Depot")[:8]  # the warehouse tag
    rec = rc.receipt(rid)
    assert (rec.warehouse, rec.holder, rec.state, rec.issued, rec.balance, rec.anchor) == (
        w.org("Depot"), w.org("Tier1"), State.ACTIVE, TEN_TONNES, TEN_TONNES, fp,
    )  # fmt: skip
    assert (rec.item, rec.unit, rec.location) == (ITEM, UNIT, LOC)
    st = rc.stock_of(rid)
    assert (st.goods_in, st.goods_out, st.receipts, st.anomalies) == (TEN_TONNES, 0, 1, 0)

    # the IoT feed: a batch of three movements, numbered 1, 2, 3
    g = depot.goods("gate-01", [(rid, IN, 500_000), (rid, OUT, 300_000), (rid, OUT, 200_000)]).check()
    assert g.outcomes == [Outcome.APPLIED] * 3 and g.anomalies == 0
    assert [e.topic for e in g.receipt.events] == [b"wr.goods_in", b"wr.goods_out", b"wr.goods_out"]
    assert rc.feed(w.org("Depot"), "gate-01").last_seq == 3
    rec = rc.receipt(rid)
    assert (rec.balance, rec.goods_in, rec.goods_out, rec.moves) == (TEN_TONNES, 500_000, 500_000, 3)

    # pledge to BankA: two steps; a second pledge is refused
    due = w.ledger.timestamp_ms + 90 * DAY
    t1.pledge(rid, w.org("BankA"), 6_000_000, due).check()
    assert rc.receipt(rid).state == State.PLEDGE_OFFERED
    bank.accept(rid).check()
    rec = rc.receipt(rid)
    assert (rec.state, rec.counterparty, rec.loan, rec.due_ms) == (
        State.PLEDGED,
        w.org("BankA"),
        6_000_000,
        due,
    )
    unchanged(w, lambda: t1.pledge(rid, w.org("BankB"), 1, due), R.WR_ALREADY_PLEDGED)

    # a pledged receipt's goods leaving without release: refused AND recorded
    before = (rc.receipt(rid).balance, rc.stock_of(rid).in_store)
    a = depot.goods_out(rid, 1_000_000, feed="gate-01").check()
    assert a.outcomes == [Outcome.ANOMALY_PLEDGED]
    assert a.receipt.events[0].topic == b"wr.anomaly"
    assert (rc.receipt(rid).balance, rc.stock_of(rid).in_store) == before
    assert rc.receipt(rid).anomalies == 1 and rc.stock_of(rid).anomalies == 1
    feed, seq, mv = rc.movements(rid)[-1]
    assert (feed, seq, mv.outcome, mv.quantity, mv.balance_after, mv.tx_id) == (
        c.feed_id("gate-01"), 4, Outcome.ANOMALY_PLEDGED, 1_000_000, TEN_TONNES, a.tx_id,
    )  # fmt: skip
    shown = rc.anomalies_of(w.org("Depot"))
    assert [(x["receipt"], x["seq"], x["outcome"]) for x in shown] == [(rid.hex(), 4, "ANOMALY_PLEDGED")]

    # the pledgee lets 1 t out (a partial release): now it leaves
    bank.allow_out(rid, 1_000_000).check()
    assert depot.goods_out(rid, 1_000_000, feed="gate-01").check().outcomes == [Outcome.APPLIED]
    rec = rc.receipt(rid)
    assert (rec.balance, rec.allowance, rec.state) == (TEN_TONNES - 1_000_000, 0, State.PLEDGED)
    # beyond the balance: another kind of anomaly, recorded, nothing moves
    over = depot.goods_out(rid, TEN_TONNES, feed="gate-01").check()
    assert (
        over.outcomes == [Outcome.ANOMALY_OVER_BALANCE] and rc.receipt(rid).balance == TEN_TONNES - 1_000_000
    )

    bank.release(rid).check()
    assert rc.receipt(rid).state == State.ACTIVE and rc.receipt(rid).counterparty == c.ZERO_ID

    # transfer two-step, then the new holder splits, and a part is emptied and closed
    t1.transfer(rid, w.org("Tier2")).check()
    t2.accept(rid).check()
    assert rc.receipt(rid).holder == w.org("Tier2")
    parts = t2.split(rid, [6_000_000, 3_000_000]).check().ids
    assert [rc.receipt(p).balance for p in parts] == [6_000_000, 3_000_000]
    assert rc.receipt(rid).state == State.SPLIT and rc.receipt(rid).balance == 0
    for p in parts:
        kid = rc.receipt(p)
        assert (kid.parent, kid.root, kid.depth, kid.item, kid.location, kid.holder) == (
            rid, rid, 1, ITEM, LOC, w.org("Tier2"),
        )  # fmt: skip
    depot.goods_out(parts[1], 3_000_000, feed="gate-02").check()
    unchanged(w, lambda: t2.close(parts[0]), R.WR_BALANCE_NOT_ZERO)
    t2.close(parts[1]).check()
    assert rc.receipt(parts[1]).state == State.CLOSED
    st = rc.stock_of(rid)
    assert st.in_store == rc.in_store(w.org("Depot"), ITEM, UNIT, LOC) == 6_000_000
    assert st.anomalies == 2

    # lineage from a part: ancestors, the anchor, history, movements, pledges, transfers
    lin = rc.lineage(parts[0])
    assert lin["root"] == rid.hex() and [a["receipt"] for a in lin["ancestors"]] == [rid.hex()]
    assert lin["anchor"]["fingerprint"] == fp.hex() and lin["anchor"]["org"] == "Depot"
    root = lin["ancestors"][0]
    assert [e["event"] for e in root["history"]] == [
        "ISSUED", "PLEDGE_OFFERED", "PLEDGED", "OUT_ALLOWED", "RELEASED", "TRANSFER_OFFERED", "TRANSFERRED",
        "SPLIT",
    ]  # fmt: skip
    assert root["children"] == [p.hex() for p in parts]
    assert [(m["seq"], m["kind"], m["outcome"]) for m in root["movements"]] == [
        (1, "GOODS_IN", "APPLIED"), (2, "GOODS_OUT", "APPLIED"), (3, "GOODS_OUT", "APPLIED"),
        (4, "GOODS_OUT", "ANOMALY_PLEDGED"), (5, "GOODS_OUT", "APPLIED"),
        (6, "GOODS_OUT", "ANOMALY_OVER_BALANCE"),
    ]  # fmt: skip
    assert [p["event"] for p in lin["pledges"]] == ["PLEDGE_OFFERED", "PLEDGED", "OUT_ALLOWED", "RELEASED"]
    assert lin["pledges"][1]["org"] == "BankA" and lin["pledges"][1]["loan"] == 6_000_000
    assert [t["event"] for t in lin["transfers"]] == ["TRANSFER_OFFERED", "TRANSFERRED"]
    assert len(lin["anomalies"]) == 2
    down = rc.lineage(rid)
    assert [d["receipt"] for d in down["descendants"]] == [p.hex() for p in parts]
    assert down["descendants"][1]["state"] == "CLOSED"


def test_a_pledge_default_gives_the_bank_the_receipt(w):
    rc, t1, bank = rc_of(w), party(w, "Tier1"), party(w, "BankA")
    rid = issued(w)
    due = w.ledger.timestamp_ms + DAY
    t1.pledge(rid, w.org("BankA"), 1_000, due).check()
    bank.accept(rid).check()
    unchanged(w, lambda: bank.take_on_default(rid), R.WR_LOAN_NOT_DUE)
    w.ledger.timestamp_ms = due
    bank.take_on_default(rid).check()
    rec = rc.receipt(rid)
    assert (rec.holder, rec.state, rec.counterparty) == (w.org("BankA"), State.ACTIVE, c.ZERO_ID)
    assert rec.history[-1].kind == Event.DEFAULT_TAKEN


def test_return_by_either_side_and_an_accept_after_the_balance_dropped(w1):
    w = w1
    rc, depot, t1, t2 = rc_of(w), party(w, "Depot"), party(w, "Tier1"), party(w, "Tier2")
    rid = issued(w, 1_000)
    t1.transfer(rid, w.org("Tier2")).check()
    t2.return_offer(rid).check()  # declined
    t1.transfer(rid, w.org("Tier2")).check()
    t1.return_offer(rid).check()  # withdrawn
    assert rc.receipt(rid).state == State.ACTIVE
    # the offer showed 1,000; goods-out leaves 600: the offeree cannot be made to take less
    t1.transfer(rid, w.org("Tier2")).check()
    depot.goods_out(rid, 400).check()
    unchanged(w, lambda: t2.accept(rid), R.WR_BALANCE_CHANGED)
    t2.return_offer(rid).check()
    # goods-in after an offer is fine
    t1.pledge(rid, w.org("BankA"), 10, w.ledger.timestamp_ms + DAY).check()
    depot.goods_in(rid, 50).check()
    party(w, "BankA").accept(rid).check()
    assert rc.receipt(rid).balance == 650


def test_feed_sequence_numbers_refuse_replays_reorderings_and_gaps(w1):
    w = w1
    rc, depot = rc_of(w), party(w, "Depot")
    rid = issued(w, 1_000)
    depot.goods("s1", [(rid, OUT, 10, 1), (rid, OUT, 10, 2)]).check()
    unchanged(w, lambda: depot.goods("s1", [(rid, OUT, 10, 2)]), R.WR_STALE_SEQUENCE)  # replay
    unchanged(w, lambda: depot.goods("s1", [(rid, OUT, 10, 1)]), R.WR_STALE_SEQUENCE)
    unchanged(w, lambda: depot.goods("s1", [(rid, OUT, 10, 4)]), R.WR_SEQUENCE_GAP)  # 3 lost
    unchanged(w, lambda: depot.goods("s1", [(rid, OUT, 10, 4), (rid, OUT, 10, 3)]), R.WR_SEQUENCE_GAP)
    unchanged(w, lambda: depot.goods("s1", [(rid, OUT, 10, 3), (rid, OUT, 10, 3)]), R.WR_STALE_SEQUENCE)
    # a new feed starts at 1; feeds are independent
    unchanged(w, lambda: depot.goods("s2", [(rid, IN, 10, 2)]), R.WR_SEQUENCE_GAP)
    depot.goods("s2", [(rid, IN, 10, 1)]).check()
    depot.goods("s1", [(rid, OUT, 10, 3)]).check()
    assert rc.receipt(rid).balance == 1_000 - 30 + 10
    # an anomaly consumes its number: replaying it records nothing twice
    a = depot.goods("s1", [(rid, OUT, 5_000, 4)]).check()
    assert a.outcomes == [Outcome.ANOMALY_OVER_BALANCE]
    unchanged(w, lambda: depot.goods("s1", [(rid, OUT, 5_000, 4)]), R.WR_STALE_SEQUENCE)
    assert rc.receipt(rid).anomalies == 1


def test_a_batch_mixes_receipts_and_records_anomalies_beside_applied_movements(w1):
    w = w1
    rc, depot = rc_of(w), party(w, "Depot")
    a, b = issued(w, 100), issued(w, 200, to="Tier2")
    pledged(w, b, holder="Tier2")
    moves = [(a, OUT, 40), (b, OUT, 10), (a, OUT, 70), (b, IN, 5), (a, IN, 1)]
    r = depot.goods("dock", moves).check()
    assert r.outcomes == [
        Outcome.APPLIED, Outcome.ANOMALY_PLEDGED, Outcome.ANOMALY_OVER_BALANCE,
        Outcome.APPLIED, Outcome.APPLIED,
    ]  # fmt: skip
    assert (rc.receipt(a).balance, rc.receipt(b).balance) == (61, 205)
    st = rc.stock_of(a)
    assert (st.goods_in, st.goods_out, st.anomalies, st.in_store) == (306, 40, 2, 266)
    assert rc.in_store(w.org("Depot"), ITEM, UNIT, LOC) == 266


def test_the_anchored_document_backs_one_receipt(w1):
    w = w1
    rc, depot = rc_of(w), party(w, "Depot")
    fp = depot.anchor_document(b"receipt document 1").check().id
    rid = issued(w, anchor=fp)
    unchanged(w, lambda: depot.issue(w.org("Tier1"), 5, ITEM, UNIT, LOC, anchor=fp), R.WR_ANCHOR_USED)
    other = issued(w)
    unchanged(w, lambda: depot.attach_anchor(other, fp), R.WR_ANCHOR_USED)
    unchanged(w, lambda: depot.attach_anchor(rid, fp), R.WR_ANCHOR_SET)
    fp2 = depot.anchor_document(b"receipt document 2").check().id
    depot.attach_anchor(other, fp2).check()
    assert rc.receipt(other).anchor == fp2 and rc.receipt(other).history[-1].kind == Event.ANCHORED
    bare = issued(w)
    unchanged(w, lambda: depot.attach_anchor(bare, bytes(range(32))), F.NO_SUCH_DOC)
    unchanged(w, lambda: depot.issue(w.org("Tier1"), 5, ITEM, UNIT, LOC, anchor=b"\1" * 32), F.NO_SUCH_DOC)
    # a document another warehouse anchored
    d2 = second_warehouse(w)
    fp3 = d2.anchor_document(b"Depot2's own receipt").check().id
    unchanged(
        w, lambda: depot.issue(w.org("Tier1"), 5, ITEM, UNIT, LOC, anchor=fp3), R.WR_ANCHOR_NOT_WAREHOUSE
    )
    unchanged(w, lambda: depot.attach_anchor(rid, fp3), R.WR_ANCHOR_SET)
    unchanged(w, lambda: depot.attach_anchor(bare, fp3), R.WR_ANCHOR_NOT_WAREHOUSE)


# --- refusals ---------------------------------------------------------------------------------


def test_issue_refusals(w1):
    w = w1
    depot = party(w, "Depot")
    t1 = party(w, "Tier1")
    unchanged(w, lambda: t1.issue(w.org("Tier2"), 5, ITEM, UNIT, LOC), F.ROLE_MISSING)
    unchanged(w, lambda: depot.issue(w.org("Nobody"), 5, ITEM, UNIT, LOC), F.NO_SUCH_ORG)
    unchanged(w, lambda: depot.issue(w.org("BankA"), 5, ITEM, UNIT, LOC), F.BAD_COUNTERPARTY)
    unchanged(w, lambda: depot.issue(w.org("Depot"), 5, ITEM, UNIT, LOC), F.BAD_COUNTERPARTY)
    stranger = rc_of(w).party(w.ledger.suite.keys_from_seed(b"s" * 32))
    unchanged(w, lambda: stranger.issue(w.org("Tier1"), 5, ITEM, UNIT, LOC), F.NOT_A_MEMBER)
    unchanged(w, lambda: depot.issue(w.org("Tier1"), 0, ITEM, UNIT, LOC), Reject.BAD_PAYLOAD)
    unchanged(w, lambda: depot.issue(w.org("Tier1"), c.quantity_max + 1, ITEM, UNIT, LOC), Reject.BAD_PAYLOAD)
    # the stock's running total would pass quantity_max
    issued(w, c.quantity_max)
    unchanged(w, lambda: depot.issue(w.org("Tier1"), 1, ITEM, UNIT, LOC), R.WR_QUANTITY_OVERFLOW)
    # an id already taken (only a hash collision could do it: the guard is there)
    _, pk, org, nonce = depot._args()
    w.ledger.state[c.receipt_key(c.receipt_id(org, pk, nonce, suite=w.ledger.suite))] = b"planted"
    unchanged(w, lambda: depot.issue(w.org("Tier1"), 5, b"OTHER", UNIT, LOC), R.WR_RECEIPT_EXISTS)


def test_goods_refusals(w1):
    w = w1
    depot, t1 = party(w, "Depot"), party(w, "Tier1")
    rid = issued(w, 100)
    unchanged(w, lambda: t1.goods_in(rid, 5), F.ROLE_MISSING)
    unchanged(w, lambda: depot.goods_in(b"\1" * 16, 5), R.WR_NO_SUCH_RECEIPT)
    d2 = second_warehouse(w)
    unchanged(w, lambda: d2.goods_out(rid, 5), R.WR_NOT_WAREHOUSE)
    unchanged(w, lambda: depot.goods_in(rid, c.quantity_max), R.WR_QUANTITY_OVERFLOW)
    a, b = t1.split(rid, [60, 40]).check().ids
    unchanged(w, lambda: depot.goods_in(rid, 5), R.WR_RECEIPT_CLOSED)
    # a structural error anywhere refuses the whole batch: nothing is taken, not even its anomalies
    unchanged(w, lambda: depot.goods("f", [(a, OUT, 1_000), (rid, IN, 1)]), R.WR_RECEIPT_CLOSED)
    depot.goods_out(b, 40).check()
    t1.close(b).check()
    unchanged(w, lambda: depot.goods_in(b, 1), R.WR_RECEIPT_CLOSED)


def test_transfer_and_pledge_refusals(w1):
    w = w1
    rc, t1, t2, bank, bank_b = rc_of(w), *(party(w, n) for n in ("Tier1", "Tier2", "BankA", "BankB"))
    due = w.ledger.timestamp_ms + DAY
    rid = issued(w, 100)
    unchanged(w, lambda: t2.transfer(rid, w.org("Tier3")), R.WR_NOT_HOLDER)
    unchanged(w, lambda: t2.pledge(rid, w.org("BankA"), 5, due), R.WR_NOT_HOLDER)
    unchanged(w, lambda: t1.transfer(rid, w.org("Tier1")), F.BAD_COUNTERPARTY)
    unchanged(w, lambda: t1.transfer(rid, w.org("Depot")), F.BAD_COUNTERPARTY)  # a warehouse holds no receipt
    unchanged(w, lambda: t1.transfer(rid, w.org("Nobody")), F.NO_SUCH_ORG)
    unchanged(w, lambda: t1.pledge(rid, w.org("Tier2"), 5, due), F.BAD_COUNTERPARTY)  # not a bank
    unchanged(w, lambda: t1.pledge(rid, w.org("BankA"), 5, w.ledger.timestamp_ms), Reject.BAD_PAYLOAD)
    unchanged(w, lambda: t1.pledge(rid, w.org("BankA"), 0, due), Reject.BAD_PAYLOAD)
    unchanged(w, lambda: bank.accept(rid), R.WR_NOT_OFFERED)
    unchanged(w, lambda: bank.return_offer(rid), R.WR_NOT_OFFERED)
    t1.pledge(rid, w.org("BankA"), 5, due).check()
    unchanged(w, lambda: t1.pledge(rid, w.org("BankB"), 5, due), R.WR_OFFER_PENDING)  # one offer at a time
    unchanged(w, lambda: t1.transfer(rid, w.org("Tier2")), R.WR_OFFER_PENDING)
    unchanged(w, lambda: t1.split(rid, [50, 50]), R.WR_OFFER_PENDING)
    unchanged(w, lambda: t1.close(rid), R.WR_OFFER_PENDING)
    unchanged(w, lambda: bank_b.accept(rid), R.WR_NOT_OFFEREE)
    unchanged(w, lambda: bank_b.return_offer(rid), R.WR_NOT_OFFEREE)
    unchanged(w, lambda: bank.release(rid), R.WR_NOT_PLEDGED)
    # the committee removes BankA's bank role before it accepts
    w.fin.party(w.node).propose_roles(w.org("BankA"), ("supplier",)).check()
    unchanged(w, lambda: bank.accept(rid), F.ROLE_MISSING)
    w.fin.party(w.node).propose_roles(w.org("BankA"), ("bank",)).check()
    bank.accept(rid).check()
    # pledged: locked for everything but the pledgee's steps
    unchanged(w, lambda: t1.pledge(rid, w.org("BankB"), 5, due), R.WR_ALREADY_PLEDGED)
    unchanged(w, lambda: t1.transfer(rid, w.org("Tier2")), R.WR_PLEDGED)
    unchanged(w, lambda: t1.split(rid, [50, 50]), R.WR_PLEDGED)
    unchanged(w, lambda: t1.close(rid), R.WR_PLEDGED)
    unchanged(w, lambda: bank.accept(rid), R.WR_NOT_OFFERED)
    unchanged(w, lambda: bank_b.release(rid), R.WR_NOT_PLEDGEE)
    unchanged(w, lambda: t1.release(rid), R.WR_NOT_PLEDGEE)
    unchanged(w, lambda: bank_b.allow_out(rid, 5), R.WR_NOT_PLEDGEE)
    unchanged(w, lambda: bank_b.take_on_default(rid), R.WR_NOT_PLEDGEE)
    unchanged(w, lambda: t1.take_on_default(rid), F.ROLE_MISSING)
    unchanged(w, lambda: bank.allow_out(rid, 101), R.WR_EXCEEDS_BALANCE)
    bank.allow_out(rid, 60).check()
    unchanged(w, lambda: bank.allow_out(rid, 41), R.WR_EXCEEDS_BALANCE)  # 60 + 41 > 100
    unchanged(w, lambda: bank.allow_out(rid, 0), Reject.BAD_PAYLOAD)
    bank.release(rid).check()
    unchanged(w, lambda: bank.allow_out(rid, 1), R.WR_NOT_PLEDGED)
    assert rc.receipt(rid).allowance == 0  # a release clears what was allowed


def test_split_close_and_attach_refusals(w1):
    w = w1
    t1, t2, depot = party(w, "Tier1"), party(w, "Tier2"), party(w, "Depot")
    rid = issued(w, 1 << 10)
    unchanged(w, lambda: t2.split(rid, [512, 512]), R.WR_NOT_HOLDER)
    unchanged(w, lambda: t1.split(rid, [512, 511]), R.WR_SPLIT_SUM_MISMATCH)
    unchanged(w, lambda: t1.split(rid, [1024, 0]), Reject.BAD_PAYLOAD)
    unchanged(w, lambda: t1.split(b"\2" * 16, [1, 1]), R.WR_NO_SUCH_RECEIPT)
    cur = rid
    for _ in range(c.depth_max):
        half = party(w, "Tier1").rc.receipt(cur).balance // 2
        cur = t1.split(cur, [half, half]).check().ids[0]
    unchanged(w, lambda: t1.split(cur, [2, 2]), R.WR_SPLIT_TOO_DEEP)
    unchanged(w, lambda: t1.split(rid, [512, 512]), R.WR_RECEIPT_CLOSED)
    unchanged(w, lambda: t1.transfer(rid, w.org("Tier2")), R.WR_RECEIPT_CLOSED)
    unchanged(w, lambda: t1.close(rid), R.WR_RECEIPT_CLOSED)
    unchanged(w, lambda: t2.close(cur), R.WR_NOT_HOLDER)
    unchanged(w, lambda: t1.close(cur), R.WR_BALANCE_NOT_ZERO)
    depot.goods_out(cur, 4).check()
    depot.close(cur).check()  # the warehouse may cancel an empty receipt too
    fp = depot.anchor_document(b"doc").check().id
    unchanged(w, lambda: depot.attach_anchor(cur, fp), R.WR_RECEIPT_CLOSED)
    unchanged(w, lambda: t1.attach_anchor(rid, fp), F.ROLE_MISSING)
    other = issued(w, 5)
    d2 = second_warehouse(w)
    fp2 = d2.anchor_document(b"doc 2").check().id
    unchanged(w, lambda: d2.attach_anchor(other, fp2), R.WR_NOT_WAREHOUSE)
    unchanged(w, lambda: depot.attach_anchor(b"\3" * 16, fp), R.WR_NO_SUCH_RECEIPT)


def test_history_full_refuses_new_offers_but_never_their_completion(w1):
    w = w1
    rc, t1, bank = rc_of(w), party(w, "Tier1"), party(w, "BankA")
    rid = issued(w, 10)
    while len(rc.receipt(rid).history) + 1 + 4 <= c.history_max - 2:
        t1.transfer(rid, w.org("Tier2")).check()
        t1.return_offer(rid).check()
    # the last offer that still fits: its completions always get their events
    t1.pledge(rid, w.org("BankA"), 5, w.ledger.timestamp_ms + DAY).check()
    bank.accept(rid).check()
    unchanged(w, lambda: bank.allow_out(rid, 1), R.WR_HISTORY_FULL)  # optional: refused
    bank.release(rid).check()
    assert len(rc.receipt(rid).history) <= c.history_max
    unchanged(w, lambda: t1.transfer(rid, w.org("Tier2")), R.WR_HISTORY_FULL)
    unchanged(w, lambda: t1.split(rid, [5, 5]), R.WR_HISTORY_FULL)
    party(w, "Depot").goods_out(rid, 10).check()  # movements are not history: the feed goes on
    t1.close(rid).check()
    assert rc.receipt(rid).state == State.CLOSED


def test_malformed_payloads_are_bad_payload_and_change_nothing(w1):
    w = w1
    depot, t1 = party(w, "Depot"), party(w, "Tier1")
    rid = issued(w, 100)

    def raw(p: ReceiptsParty, op: int, payload: bytes, writes: set[bytes] = frozenset()):
        chain_id, pk, org, nonce = p._args()
        reads = {fc.key_key(pk), fc.org_key(org)}
        return lambda: p.send(
            unsigned(chain_id, op, pk, nonce, reads, {c.receipt_key(rid), *writes}, payload)
        )

    labels = b"\x0cCU-CATHODE-A\x01g\x09SH-WGQ-07"
    head = w.org("Tier1") + struct.pack("<Q", 5) + bytes(32)
    bad = [
        (depot, c.OP_ISSUE, b""),
        (depot, c.OP_ISSUE, head),  # no labels
        (depot, c.OP_ISSUE, head + labels + b"x"),  # trailing
        (depot, c.OP_ISSUE, head + b"\x00\x01g\x01L"),  # empty item
        (depot, c.OP_ISSUE, head + b"\x02\xff\xfe\x01g\x01L"),  # not UTF-8
        (depot, c.OP_ISSUE, head + b"\x02a\n\x01g\x01L"),  # a control character
        (depot, c.OP_ISSUE, head + b"\x21" + b"x" * 33 + b"\x01g\x01L"),  # item too long
        (depot, c.OP_GOODS, b"feed0001\x00"),  # no movements
        (depot, c.OP_GOODS, b"feed0001\x09" + b"\0" * (9 * 33)),  # too many
        (depot, c.OP_GOODS, b"feed0001\x01" + rid + b"\x03" + struct.pack("<QQ", 1, 1)),  # kind 3
        (depot, c.OP_GOODS, b"feed0001\x01" + rid + b"\x01" + struct.pack("<QQ", 0, 1)),  # quantity 0
        (depot, c.OP_GOODS, b"feed0001\x01" + rid + b"\x01" + struct.pack("<Q", 1)),  # short
        (t1, c.OP_OFFER_TRANSFER, rid),
        (t1, c.OP_OFFER_PLEDGE, rid + w.org("BankA")),
        (t1, c.OP_ACCEPT, rid[:15]),
        (t1, c.OP_RETURN, rid + b"\0"),
        (t1, c.OP_RELEASE, b""),
        (t1, c.OP_ALLOW_OUT, rid),
        (t1, c.OP_PLEDGE_DEFAULT, rid * 2),
        (t1, c.OP_SPLIT, rid + b"\x01" + struct.pack("<Q", 100)),  # one way
        (t1, c.OP_SPLIT, rid + b"\x09" + struct.pack("<Q", 1) * 9),  # nine ways
        (t1, c.OP_SPLIT, rid + b"\x02" + struct.pack("<Q", 100)),  # short
        (t1, c.OP_CLOSE, rid[:8]),
        (depot, c.OP_ATTACH_ANCHOR, rid + bytes(32)),  # no fingerprint
        (depot, c.OP_ATTACH_ANCHOR, rid),
    ]
    for p, op, payload in bad:
        r = unchanged(w, raw(p, op, payload), Reject.BAD_PAYLOAD)
        assert r.code == Reject.BAD_PAYLOAD, (op, payload)


def test_builders_refuse_bad_arguments_before_signing():
    with pytest.raises(ValueError):
        issue_ops.issue(1, b"k" * 32, b"w" * 16, 0, b"d" * 16, 5, b"", UNIT, LOC)
    with pytest.raises(ValueError):
        issue_ops.issue(1, b"k" * 32, b"w" * 16, 0, b"d" * 16, 5, ITEM, b"u" * 17, LOC)
    with pytest.raises(ValueError):
        split.split(1, b"k" * 32, b"o" * 16, 0, b"r" * 16, [5])
    with pytest.raises(ValueError):
        goods_ops.goods(1, b"k" * 32, b"w" * 16, 0, b"short", [], {})
    with pytest.raises(ValueError):
        c.feed_id("a feed id too long")
    assert c.feed_id("gate") == b"gate\0\0\0\0" and offers.accept


def test_records_refuse_damaged_values():
    rec = c.Receipt.decode(c.Receipt(
        b"w" * 16, b"h" * 16, c.ZERO_ID, b"r" * 16, 0, 0, 0, State.ACTIVE, c.ZERO_ID, 0, 0, 0, 0,
        5, 5, 0, 0, 0, 0, 1, c.ZERO_FP, 2, 0, ITEM, UNIT, LOC, (c.HistoryEntry(1, 1, b"h" * 16, 5),),
    ).encode())  # fmt: skip
    raw = rec.encode()
    assert c.Receipt.decode(raw) == rec
    for damaged in (raw[:-1], raw + b"\0", raw[:100]):
        with pytest.raises(c.RecordError):
            c.Receipt.decode(damaged)
    st = c.Stock(1, 0, 1, 0, ITEM, UNIT, LOC)
    assert c.Stock.decode(st.encode()) == st
    for cls, good in (
        (c.Stock, st.encode()),
        (c.Feed, c.Feed(1, 2).encode()),
        (c.AnchorUse, c.AnchorUse(b"r" * 16, 1).encode()),
    ):
        with pytest.raises(c.RecordError):
            cls.decode(good + b"\0")


def test_lineage_of_an_unknown_receipt_raises(w1):
    with pytest.raises(LineageError):
        rc_of(w1).lineage(b"\4" * 16)


def test_result_check_raises_on_refusal(w1):
    with pytest.raises(RejectedError):
        party(w1, "Tier2").close(issued(w1)).check()


# --- the app value ------------------------------------------------------------------------------


def test_the_app_claims_its_ranges_and_one_placement_rule():
    assert APP.op_codes == range(128, 160) and APP.reject_codes == range(288, 352)
    assert APP.requires == ("finance",) and APP.roles == ()
    assert all(r.name.startswith("WR_") and r.value in APP.reject_codes for r in R)
    assert len({r.value for r in R}) == len(R)
    assert {op.code for op in APP.ops} == set(range(128, 140))
    assert all(op.name.startswith("wr.") for op in APP.ops)
    assert APP.placement == (apps.Placement(b"wr/", apps.TAG, 8),)
    assert all(d.startswith("tierchain 2026 receipts ") for d in APP.domains)
    s = apps.resolve(APPS)
    assert s.reject_name(R.WR_ALREADY_PLEDGED) == "WR_ALREADY_PLEDGED"
    assert s.may_refuse(c.OP_ISSUE, F.NO_SUCH_ORG) and s.may_refuse(c.OP_ISSUE, R.WR_ANCHOR_USED)
    with pytest.raises(apps.AppError):
        apps.resolve(("accounts", "xshard", "receipts"))  # finance must come first
    assert apps.resolve(("accounts", "xshard", "finance", "sharing", "receipts"))


def test_every_key_of_a_warehouse_routes_by_its_tag():
    wh, rid = b"W" * 8 + b"x" * 8, b"W" * 8 + b"y" * 8
    keys = [
        c.receipt_key(rid), c.move_key(rid, b"f" * 8, 1), c.feed_key(wh, b"f" * 8),
        c.stock_key(wh, b"s" * 16), c.anchor_key(wh, b"d" * 32),
    ]  # fmt: skip
    assert all(k[:11] == b"wr/" + b"W" * 8 and len(k) <= 64 for k in keys)
    assert len({k[11] for k in keys}) == 5
    assert c.receipt_of_key(c.receipt_key(rid)) == rid == c.receipt_of_key(c.move_key(rid, b"f" * 8, 9))


# --- the runnable example -----------------------------------------------------------------------


def test_the_example_runs(capsys):
    runpy.run_path(str(DOCS / "receipts_example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "second pledge at BankB -> WR_ALREADY_PLEDGED" in out
    assert "goods-out without release -> ANOMALY_PLEDGED" in out
    assert "replayed message 2 -> WR_STALE_SEQUENCE" in out
    assert "in store 8,000,000 g = goods-in - goods-out (10,400,000 - 2,400,000); anomalies 1" in out
    assert "anomaly: seq 3 GOODS_OUT 3,000,000 -> ANOMALY_PLEDGED" in out
