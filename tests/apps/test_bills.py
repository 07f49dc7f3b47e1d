"""Digital bills (issue 20 item 1: ``tierchain.apps.bills``), in both crypto suites.

Checked: the main flow (issue, acceptance, delivery, endorsement, discount, rediscount,
presentment, payment) and a bank acceptance bill; pledge and release with a split payment;
dishonour and recourse up the chain in order (refusals, lapsed claims, restrictive
endorsements, a bill that came back to an earlier holder, late presentment); the drawer's
not-transferable mark; tenor limits and the business-day roll with voted calendars
(holidays, 调休 working days, a roll across the year end); committee votes; every refusal
code of the ops, each leaving state unchanged but the sender's nonce; a race in one block;
lineage JSON; and the worked example (docs/bills_example.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import runpy
import struct
from pathlib import Path

import pytest

from sharing_world import World, world
from tierchain.apps import accounts
from tierchain.apps.bills import codes as c
from tierchain.apps.bills import days, lifecycle, payment
from tierchain.apps.bills.client import BillParty, Bills, day_of
from tierchain.apps.bills.codes import (
    Action,
    BillKind,
    BillReject,
    BillState,
    DishonourReason,
    EventKind,
    OfferKind,
    RefusalReason,
)
from tierchain.apps.finance import DocType
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.codes import FinanceReject
from tierchain.engine import apps
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

R = BillReject
F = FinanceReject
SUITES = ("ed25519-blake3", "sm2-sm3")
BILLS_APPS = ("accounts", "xshard", "finance", "bills")
DAY = 86_400_000
DOCS = Path(__file__).parents[2] / "docs"


def d(year: int, month: int, dom: int) -> int:
    return days.days_from_civil(year, month, dom)


def at_day(day: int, hour: int = 10) -> int:
    """Block time of ``hour`` o'clock Beijing time (UTC+8) on local day ``day``."""
    return day * DAY + (hour - 8) * 3_600_000


MONDAY = d(2026, 3, 2)  # the world starts on Monday 2 March 2026, 10:00 in Beijing
T0 = at_day(MONDAY)
MATURITY = d(2026, 6, 30)  # a Tuesday
FACE = 1_000_000


@pytest.fixture(params=SUITES)
def w(request) -> World:
    return world(request.param, timestamp_ms=T0, apps=BILLS_APPS)


@pytest.fixture
def w1() -> World:
    """One suite: for the rules, which do not depend on it."""
    return world(SUITES[0], timestamp_ms=T0, apps=BILLS_APPS)


class Desk:
    """The world's bills client and parties by organization name."""

    def __init__(self, w: World) -> None:
        self.w, self.bills = w, Bills(w.ledger)

    def __getitem__(self, name: str) -> BillParty:
        return self.bills.party(self.w.keys[name])

    def org(self, name: str) -> bytes:
        return self.w.org(name)

    def bill(self, bid: bytes) -> c.Bill:
        return self.bills.bill(bid)

    def day(self, day: int, hour: int = 10) -> None:
        self.w.ledger.timestamp_ms = at_day(day, hour)

    def issue(
        self,
        drawer="CoreCo",
        acceptor="CoreCo",
        payee="Tier1",
        kind=BillKind.COMMERCIAL,
        maturity=MATURITY,
        **kw,
    ) -> bytes:
        return self[drawer].issue(kind, self.org(acceptor), self.org(payee), FACE, maturity, **kw).check().id

    def delivered(self, acceptor="CoreCo", payee="Tier1", **kw) -> bytes:
        bid = self.issue(acceptor=acceptor, payee=payee, **kw)
        self[acceptor].accept(bid).check()
        self[payee].sign(bid).check()
        return bid

    def endorse(self, bid: bytes, frm: str, to: str, **kw) -> None:
        self[frm].endorse(bid, self.org(to), **kw).check()
        self[to].sign(bid).check()

    def chain(self, *names: str, acceptor="BankA", kind=BillKind.BANK) -> bytes:
        """A bill delivered to ``names[0]`` and endorsed along ``names``."""
        bid = self.delivered(acceptor=acceptor, payee=names[0], kind=kind)
        for frm, to in itertools.pairwise(names):
            self.endorse(bid, frm, to)
        return bid

    def dishonoured(self, *names: str, reason=DishonourReason.INSUFFICIENT_FUNDS) -> bytes:
        bid = self.chain(*names)
        self.day(MATURITY)
        self[names[-1]].present(bid).check()
        self["BankA"].dishonour(bid, reason).check()
        return bid


@pytest.fixture
def desk(w) -> Desk:
    return Desk(w)


@pytest.fixture
def desk1(w1) -> Desk:
    return Desk(w1)


def state(w: World) -> dict:
    return {k: v for k, v in w.ledger.state.items() if not k.startswith(b"\x00")}


def unchanged(w: World, attempt, code):
    """``attempt`` is refused with ``code`` and changes no state but the sender's nonce."""
    before = state(w)
    result = attempt()
    assert result.code == code, (result.code, code)
    assert state(w) == before
    return result


# --- the main flows, both suites --------------------------------------------------------------


def test_commercial_bill_issue_accept_endorse_discount_rediscount_present_pay(desk):
    core, t1, t2, a, b = desk["CoreCo"], desk["Tier1"], desk["Tier2"], desk["BankA"], desk["BankB"]
    bid = core.issue(BillKind.COMMERCIAL, desk.org("CoreCo"), desk.org("Tier1"), FACE, MATURITY).check().id
    assert bid == c.bill_id(core.pk, 0, suite=desk.bills.suite)  # known before signing
    bill = desk.bill(bid)
    assert (bill.state, bill.holder, bill.face, bill.due_day) == (
        BillState.DRAWN,
        desk.org("CoreCo"),
        FACE,
        MATURITY,
    )
    core.accept(bid).check()
    assert (desk.bill(bid).state, desk.bill(bid).offer_kind) == (BillState.OFFERED, OfferKind.DELIVERY)
    t1.sign(bid).check()
    t1.endorse(bid, desk.org("Tier2")).check()
    t2.sign(bid).check()
    t2.discount(bid, desk.org("BankA"), 985_000).check()
    a.sign(bid).check()
    a.rediscount(bid, desk.org("BankB"), 990_000).check()
    b.sign(bid).check()
    bill = desk.bill(bid)
    assert bill.holder == desk.org("BankB") and bill.state == BillState.ACTIVE and bill.face == FACE
    assert [(t.kind, t.price) for t in bill.chain] == [
        (OfferKind.DELIVERY, 0),
        (OfferKind.ENDORSE, 0),
        (OfferKind.DISCOUNT, 985_000),
        (OfferKind.REDISCOUNT, 990_000),
    ]
    unchanged(desk.w, lambda: b.present(bid), R.BILL_NOT_DUE)
    desk.day(MATURITY)
    b.present(bid).check()
    core.pay(bid).check()
    bill = desk.bill(bid)
    assert bill.state == BillState.PAID and bill.paid_height == desk.w.ledger.height
    lin = desk.bills.lineage(bid)
    json.dumps(lin)
    assert [e["kind"] for e in lin["endorsements"]] == ["DELIVERY", "ENDORSE", "DISCOUNT", "REDISCOUNT"]
    assert [(h["holder"]["name"], h["how"]) for h in lin["holders"]] == [
        ("CoreCo", "DRAWN"),
        ("Tier1", "DELIVERY"),
        ("Tier2", "ENDORSE"),
        ("BankA", "DISCOUNT"),
        ("BankB", "REDISCOUNT"),
    ]
    assert lin["holders"][-1]["until_height"] == bill.paid_height
    assert [(p["kind"], p["to"]["name"], p["amount"]) for p in lin["payments"]] == [
        ("PAYMENT", "BankB", FACE)
    ]
    assert [f["kind"] for f in lin["financing"]] == ["DISCOUNT", "REDISCOUNT"]
    assert lin["state"] == "PAID" and lin["due"] == "2026-06-30" and lin["maturity"] == "2026-06-30"
    assert [e["event"] for e in lin["history"]][:3] == ["ISSUED", "ACCEPTED", "SIGNED"]
    assert len(lin["history"]) == bill.events == 11


def test_bank_acceptance_bill_with_pledge_release_and_split_payment(desk):
    core, t1, a, b = desk["CoreCo"], desk["Tier1"], desk["BankA"], desk["BankB"]
    unchanged(  # a bank acceptance bill is accepted by a bank
        desk.w,
        lambda: core.issue(BillKind.BANK, desk.org("CoreCo"), desk.org("Tier1"), FACE, MATURITY),
        F.BAD_COUNTERPARTY,
    )
    bid = desk.delivered(acceptor="BankA", kind=BillKind.BANK)
    assert desk.bill(bid).kind == BillKind.BANK
    t1.pledge(bid, desk.org("BankB"), 600_000).check()
    b.sign(bid).check()
    bill = desk.bill(bid)
    assert (bill.pledgee, bill.loan, bill.holder) == (desk.org("BankB"), 600_000, desk.org("Tier1"))
    unchanged(desk.w, lambda: t1.endorse(bid, desk.org("Tier2")), R.BILL_PLEDGED)
    unchanged(desk.w, lambda: a.release(bid), R.BILL_NOT_PLEDGEE)
    b.release(bid).check()
    assert not desk.bill(bid).pledged
    unchanged(desk.w, lambda: b.release(bid), R.BILL_NOT_PLEDGED)
    t1.pledge(bid, desk.org("BankB"), 600_000).check()
    b.sign(bid).check()
    desk.day(MATURITY)
    unchanged(desk.w, lambda: t1.present(bid), R.BILL_PLEDGED)  # the pledgee presents
    b.present(bid).check()
    a.pay(bid).check()
    lin = desk.bills.lineage(bid)
    assert [(p["to"]["name"], p["amount"]) for p in lin["payments"]] == [
        ("BankB", 600_000),
        ("Tier1", 400_000),
    ]
    assert [f["kind"] for f in lin["financing"]] == ["PLEDGE", "RELEASE", "PLEDGE"]
    assert desk.bill(bid).state == BillState.PAID and not desk.bill(bid).pledged
    assert core.org == desk.org("CoreCo")


def test_recourse_in_order_refusal_payment_up_to_the_drawer(desk):
    """Core draws a bank bill on BankA to Tier1 -> Tier2 -> Tier3; BankA dishonours. Tier3
    claims from Tier2 (refuses), then Tier1 (pays, holds it); Tier1 claims from the drawer
    (pays, holds it); the drawer has nobody left; BankA finally pays the drawer."""
    bid = desk.dishonoured("Tier1", "Tier2", "Tier3")
    t1, t2, t3, core, a = (desk[n] for n in ("Tier1", "Tier2", "Tier3", "CoreCo", "BankA"))
    bill = desk.bill(bid)
    assert bill.state == BillState.DISHONOURED and bill.recourse_at == 2
    unchanged(desk.w, lambda: t2.recourse_pay(bid), R.BILL_NO_CLAIM)
    t3.claim(bid).check()
    assert desk.bill(bid).claimed == desk.org("Tier2")
    unchanged(desk.w, lambda: t3.claim(bid), R.BILL_CLAIM_PENDING)
    unchanged(desk.w, lambda: t1.recourse_pay(bid), R.BILL_NOT_CLAIMED)
    t2.recourse_refuse(bid, RefusalReason.TRADE_DISPUTE).check()
    t3.claim(bid).check()
    assert desk.bill(bid).claimed == desk.org("Tier1")
    t1.recourse_pay(bid).check()
    bill = desk.bill(bid)
    assert (bill.holder, bill.recourse_at, bill.claim_ms) == (desk.org("Tier1"), 0, 0)
    unchanged(desk.w, lambda: t3.claim(bid), R.BILL_NOT_HOLDER)
    t1.claim(bid).check()
    assert desk.bill(bid).claimed == desk.org("CoreCo")
    core.recourse_pay(bid).check()
    assert desk.bill(bid).holder == desk.org("CoreCo") and desk.bill(bid).recourse_at == -1
    unchanged(desk.w, lambda: core.claim(bid), R.BILL_NO_PRIOR_PARTY)
    a.pay(bid).check()
    lin = desk.bills.lineage(bid)
    assert [(p["kind"], p["by"]["name"], p["to"]["name"], p["amount"]) for p in lin["payments"]] == [
        ("RECOURSE", "Tier1", "Tier3", FACE),
        ("RECOURSE", "CoreCo", "Tier1", FACE),
        ("PAYMENT", "BankA", "CoreCo", FACE),
    ]
    assert [h["holder"]["name"] for h in lin["holders"]][-3:] == ["Tier3", "Tier1", "CoreCo"]
    assert [h["how"] for h in lin["holders"]][-2:] == ["RECOURSE", "RECOURSE"]
    refused = [e for e in lin["history"] if e["event"] == "RECOURSE_REFUSED"]
    assert refused[0]["reason"] == "TRADE_DISPUTE" and refused[0]["actor"]["name"] == "Tier2"


def test_claim_lapses_after_the_answer_period_and_moves_up(desk1):
    bid = desk1.dishonoured("Tier1", "Tier2", "Tier3")
    t3 = desk1["Tier3"]
    t3.claim(bid).check()
    desk1.w.ledger.timestamp_ms = desk1.bill(bid).claim_ms + 10 * DAY - 1
    unchanged(desk1.w, lambda: t3.claim(bid), R.BILL_CLAIM_PENDING)
    desk1.w.ledger.timestamp_ms += 1
    t3.claim(bid).check()
    assert desk1.bill(bid).claimed == desk1.org("Tier1")
    kinds = [e.kind for e in desk1.bills.events(bid)][-2:]
    assert kinds == [EventKind.CLAIM_LAPSED, EventKind.CLAIMED]


def test_no_response_dishonour_after_the_answer_period(desk1):
    bid = desk1.chain("Tier1", "Tier2")
    desk1.day(MATURITY)
    t2 = desk1["Tier2"]
    t2.present(bid).check()
    unchanged(desk1.w, lambda: t2.dishonour(bid, DishonourReason.NO_RESPONSE), R.BILL_ANSWER_NOT_DUE)
    unchanged(desk1.w, lambda: t2.dishonour(bid, DishonourReason.INSUFFICIENT_FUNDS), R.BILL_NOT_ACCEPTOR)
    unchanged(desk1.w, lambda: desk1["BankA"].dishonour(bid, DishonourReason.NO_RESPONSE), Reject.BAD_PAYLOAD)
    desk1.w.ledger.timestamp_ms += 3 * DAY
    t2.dishonour(bid, DishonourReason.NO_RESPONSE).check()
    assert desk1.bill(bid).dishonour_reason == DishonourReason.NO_RESPONSE
    assert desk1.bills.lineage(bid)["dishonour_reason"] == "NO_RESPONSE"


def test_late_presentment_keeps_recourse_against_the_drawer_only(desk1):
    bid = desk1.chain("Tier1", "Tier2", "Tier3")
    desk1.day(MATURITY + 11)  # the period is due day + 10
    desk1["Tier3"].present(bid).check()
    assert desk1.bill(bid).late
    desk1["BankA"].dishonour(bid, DishonourReason.OTHER).check()
    desk1["Tier3"].claim(bid).check()
    assert desk1.bill(bid).claimed == desk1.org("CoreCo")  # not Tier2, not Tier1


def test_on_time_presentment_on_the_last_day_of_the_period(desk1):
    bid = desk1.chain("Tier1", "Tier2")
    desk1.day(MATURITY + 10)
    desk1["Tier2"].present(bid).check()
    assert not desk1.bill(bid).late


def test_restrictive_endorsement_is_skipped_for_later_holders(desk1):
    """Tier1 endorses to Tier2 with 不得转让: it answers to Tier2 only, not to Tier3."""
    bid = desk1.delivered(acceptor="BankA", kind=BillKind.BANK)
    desk1.endorse(bid, "Tier1", "Tier2", restrictive=True)
    desk1.endorse(bid, "Tier2", "Tier3")
    assert [t.restrictive for t in desk1.bill(bid).chain] == [False, True, False]
    desk1.day(MATURITY)
    desk1["Tier3"].present(bid).check()
    desk1["BankA"].dishonour(bid, DishonourReason.TRADE_DISPUTE).check()
    t3 = desk1["Tier3"]
    t3.claim(bid).check()
    assert desk1.bill(bid).claimed == desk1.org("Tier2")
    desk1["Tier2"].recourse_refuse(bid, RefusalReason.OTHER).check()
    t3.claim(bid).check()
    assert desk1.bill(bid).claimed == desk1.org("CoreCo")  # Tier1's restrictive endorsement skipped


def test_restrictive_endorser_still_answers_to_its_own_endorsee(desk1):
    bid = desk1.delivered(acceptor="BankA", kind=BillKind.BANK)
    desk1.endorse(bid, "Tier1", "Tier2", restrictive=True)
    desk1.day(MATURITY)
    desk1["Tier2"].present(bid).check()
    desk1["BankA"].dishonour(bid, DishonourReason.OTHER).check()
    desk1["Tier2"].claim(bid).check()
    assert desk1.bill(bid).claimed == desk1.org("Tier1")


def test_a_holder_that_endorsed_before_has_no_recourse_against_its_later_parties(desk1):
    """Tier1 -> Tier2 -> Tier1 -> Tier3: after paying Tier3, Tier1 claims from the drawer,
    not from Tier2 (who held the bill after Tier1's first endorsement)."""
    bid = desk1.chain("Tier1", "Tier2", "Tier1", "Tier3")
    desk1.day(MATURITY)
    desk1["Tier3"].present(bid).check()
    desk1["BankA"].dishonour(bid, DishonourReason.OTHER).check()
    desk1["Tier3"].claim(bid).check()
    assert desk1.bill(bid).claimed == desk1.org("Tier1")
    desk1["Tier1"].recourse_pay(bid).check()
    assert desk1.bill(bid).recourse_at == 0
    desk1["Tier1"].claim(bid).check()
    assert desk1.bill(bid).claimed == desk1.org("CoreCo")


def test_pledged_bill_dishonoured_the_pledgee_claims_and_is_paid_first(desk1):
    bid = desk1.chain("Tier1", "Tier2")
    desk1["Tier2"].pledge(bid, desk1.org("BankB"), 700_000).check()
    desk1["BankB"].sign(bid).check()
    desk1.day(MATURITY)
    desk1["BankB"].present(bid).check()
    desk1["BankA"].dishonour(bid, DishonourReason.OTHER).check()
    unchanged(desk1.w, lambda: desk1["Tier2"].claim(bid), R.BILL_PLEDGED)
    desk1["BankB"].claim(bid).check()
    desk1["Tier1"].recourse_pay(bid).check()
    bill = desk1.bill(bid)
    assert bill.holder == desk1.org("Tier1") and not bill.pledged
    rows = [(p["to"]["name"], p["amount"]) for p in desk1.bills.lineage(bid)["payments"]]
    assert rows == [("BankB", 700_000), ("Tier2", 300_000)]


def test_not_transferable_mark_refuses_endorsement_discount_and_pledge(desk):
    bid = desk.delivered(not_transferable=True)
    t1 = desk["Tier1"]
    assert desk.bill(bid).not_transferable
    unchanged(desk.w, lambda: t1.endorse(bid, desk.org("Tier2")), R.BILL_NOT_TRANSFERABLE)
    unchanged(desk.w, lambda: t1.discount(bid, desk.org("BankA"), 990_000), R.BILL_NOT_TRANSFERABLE)
    unchanged(desk.w, lambda: t1.pledge(bid, desk.org("BankA"), 500_000), R.BILL_NOT_TRANSFERABLE)
    desk.day(MATURITY)
    t1.present(bid).check()
    desk["CoreCo"].pay(bid).check()
    assert desk.bill(bid).state == BillState.PAID


def test_reject_cancel_and_delivery_rejection(desk1):
    bid = desk1.delivered()
    t1, t2 = desk1["Tier1"], desk1["Tier2"]
    t1.endorse(bid, desk1.org("Tier2")).check()
    unchanged(desk1.w, lambda: t1.endorse(bid, desk1.org("Tier3")), R.BILL_PENDING)
    t2.reject(bid).check()
    assert (desk1.bill(bid).state, desk1.bill(bid).holder) == (BillState.ACTIVE, desk1.org("Tier1"))
    t1.discount(bid, desk1.org("BankA"), 990_000).check()
    unchanged(desk1.w, lambda: t2.cancel(bid), R.BILL_NOT_HOLDER)
    t1.cancel(bid).check()
    assert desk1.bill(bid).state == BillState.ACTIVE
    unchanged(desk1.w, lambda: t1.cancel(bid), R.BILL_NOT_OFFERED)
    # A payee that rejects delivery voids the bill.
    other = desk1.issue(payee="Tier2")
    desk1["CoreCo"].accept(other).check()
    unchanged(desk1.w, lambda: desk1["CoreCo"].cancel(other), R.BILL_DELIVERY)
    unchanged(desk1.w, lambda: t2.endorse(other, desk1.org("Tier3")), R.BILL_NOT_HOLDER)
    unchanged(desk1.w, lambda: desk1["CoreCo"].endorse(other, desk1.org("Tier3")), R.BILL_AWAITING_ACCEPTANCE)
    t2.reject(other).check()
    assert desk1.bill(other).state == BillState.VOID
    unchanged(desk1.w, lambda: t2.sign(other), R.BILL_CLOSED)


def test_refused_acceptance_and_revocation_void_the_bill(desk1):
    core = desk1["CoreCo"]
    bid = desk1.issue(acceptor="BankA", kind=BillKind.BANK)
    unchanged(desk1.w, lambda: core.accept(bid), R.BILL_NOT_ACCEPTOR)
    unchanged(desk1.w, lambda: desk1["BankB"].refuse(bid, RefusalReason.OTHER), R.BILL_NOT_ACCEPTOR)
    desk1["BankA"].refuse(bid, RefusalReason.INSUFFICIENT_FUNDS).check()
    assert desk1.bill(bid).state == BillState.VOID
    unchanged(desk1.w, lambda: desk1["BankA"].accept(bid), R.BILL_CLOSED)
    unchanged(desk1.w, lambda: core.endorse(bid, desk1.org("Tier2")), R.BILL_CLOSED)
    drawn = desk1.issue()
    unchanged(desk1.w, lambda: desk1["Tier1"].revoke(drawn), R.BILL_NOT_DRAWER)
    core.revoke(drawn).check()
    accepted = desk1.issue()
    core.accept(accepted).check()
    unchanged(desk1.w, lambda: core.accept(accepted), R.BILL_NOT_DRAWN)
    core.revoke(accepted).check()  # not yet received by the payee
    delivered = desk1.delivered()
    unchanged(desk1.w, lambda: core.revoke(delivered), R.BILL_NOT_DRAWN)
    lin = desk1.bills.lineage(accepted)
    assert lin["state"] == "VOID" and lin["holders"][0]["until_height"] is not None


# --- tenor and business days ------------------------------------------------------------------


def test_tenor_limits(desk1):
    core = desk1["CoreCo"]

    def issue(maturity):
        return lambda: core.issue(
            BillKind.COMMERCIAL, desk1.org("CoreCo"), desk1.org("Tier1"), FACE, maturity
        )

    unchanged(desk1.w, issue(MONDAY), R.BILL_BAD_TENOR)  # min tenor 1 day
    unchanged(desk1.w, issue(MONDAY + 366), R.BILL_BAD_TENOR)  # max 365
    unchanged(desk1.w, issue(MONDAY - 1), R.BILL_BAD_TENOR)
    issue(MONDAY + 1)().check()
    issue(MONDAY + 365)().check()


def test_maturity_on_a_weekend_rolls_to_monday(desk1):
    saturday = d(2026, 6, 27)
    assert days.weekday(saturday) == 5
    bid = desk1.issue(maturity=saturday)
    assert desk1.bill(bid).due_day == d(2026, 6, 29)
    assert desk1.bills.lineage(bid)["due"] == "2026-06-29"


def test_voted_calendar_holidays_and_adjusted_working_days(desk):
    """2026: 1-5 October holidays (a Thursday 1st), Saturday 10 October a working day (调休)."""
    node = desk.bills.party(desk.w.node)
    holidays = [f"2026-10-0{i}" for i in range(1, 8)]
    node.vote_calendar(2026, holidays=holidays, workdays=["2026-09-27", "2026-10-10"]).check()
    cal = desk.bills.calendar(2026)
    assert cal.version == 1
    assert not desk.bills.is_business_day(d(2026, 10, 1))
    assert desk.bills.is_business_day(d(2026, 10, 10)) and not desk.bills.is_business_day(d(2026, 10, 11))
    assert desk.bill(desk.issue(maturity=d(2026, 10, 1))).due_day == d(2026, 10, 8)
    assert desk.bill(desk.issue(maturity=d(2026, 10, 10))).due_day == d(2026, 10, 10)  # a working Saturday


def test_roll_across_the_year_end_reads_the_next_years_calendar(desk1):
    node = desk1.bills.party(desk1.w.node)
    node.vote_calendar(2026, holidays=["2026-12-31"]).check()
    node.vote_calendar(2027, holidays=["2027-01-01", "2027-01-04"]).check()
    # 31 Dec 2026 (Thu) holiday, 1 Jan (Fri) holiday, weekend, 4 Jan (Mon) holiday -> Tue 5 Jan.
    desk1.day(d(2026, 6, 1))
    assert desk1.bill(desk1.issue(maturity=d(2026, 12, 31))).due_day == d(2027, 1, 5)


def test_no_business_day_within_the_roll_limit_refuses_the_issue(desk1):
    node = desk1.bills.party(desk1.w.node)
    node.vote_calendar(2026, bitmap=days.calendar_bitmap(2026, 0x7F)).check()  # every day closed
    core = desk1["CoreCo"]
    unchanged(
        desk1.w,
        lambda: core.issue(BillKind.COMMERCIAL, desk1.org("CoreCo"), desk1.org("Tier1"), FACE, d(2026, 5, 1)),
        R.BILL_NO_BUSINESS_DAY,
    )


def test_days_arithmetic_matches_the_standard_library():
    import datetime as dt

    for day in range(-800, 30_000, 37):
        date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
        assert days.civil_from_days(day) == (date.year, date.month, date.day)
        assert days.days_from_civil(date.year, date.month, date.day) == day
        assert days.weekday(day) == date.weekday()
    assert days.local_day(at_day(MONDAY, 0), 480) == MONDAY  # midnight in Beijing
    assert days.local_day(at_day(MONDAY, 0) - 1, 480) == MONDAY - 1
    assert day_of("2026-03-02") == MONDAY


# --- committee votes --------------------------------------------------------------------------


def test_parameter_vote_threshold_stale_and_bad_content(w1):
    desk = Desk(w1)
    node, c2 = desk.bills.party(w1.node), desk.bills.party(w1.committee2)
    w1.fin.party(w1.node).propose_params(fc.Params(threshold=2)).check()
    r = node.vote_params(max_tenor_days=184)
    r.check()
    assert desk.bills.params().max_tenor_days == 365  # one vote of two
    unchanged(w1, lambda: node.vote_params(max_tenor_days=184), R.BILL_ALREADY_VOTED)
    c2.vote_params(max_tenor_days=184).check()
    p = desk.bills.params()
    assert (p.version, p.max_tenor_days) == (1, 184)
    unchanged(w1, lambda: c2.vote_params(dataclasses.replace(p, max_tenor_days=184, version=0), version=1),
              R.BILL_STALE_VOTE)  # fmt: skip
    unchanged(w1, lambda: c2.vote_params(min_tenor_days=400), R.BILL_BAD_PARAMS)
    unchanged(w1, lambda: c2.vote_params(weekend_mask=0x7F), R.BILL_BAD_PARAMS)
    unchanged(w1, lambda: desk.bills.party(w1.keys["Tier1"]).vote_params(max_tenor_days=100), F.NOT_COMMITTEE)
    # The applied ballot is closed for good.
    body = dataclasses.replace(c.Params(), max_tenor_days=184).body()
    assert desk.bills.ballot(Action.SET_PARAMS, 1, body).applied
    unchanged(w1, lambda: c2.vote_params(c.Params(max_tenor_days=184), version=1), R.BILL_STALE_VOTE)
    # A bill beyond the new limit is refused.
    core = desk["CoreCo"]
    unchanged(
        w1,
        lambda: core.issue(BillKind.COMMERCIAL, desk.org("CoreCo"), desk.org("Tier1"), FACE, MONDAY + 200),
        R.BILL_BAD_TENOR,
    )


def test_applied_and_expired_ballots(w1):
    desk = Desk(w1)
    node, c2 = desk.bills.party(w1.node), desk.bills.party(w1.committee2)
    w1.fin.party(w1.node).propose_params(fc.Params(threshold=2)).check()
    node.vote_calendar(2026, holidays=["2026-05-01"]).check()
    w1.ledger.timestamp_ms += c.ballot_ms_max + 1  # the ballot is void: a new one opens
    node.vote_calendar(2026, holidays=["2026-05-01"]).check()
    assert desk.bills.calendar(2026) is None
    c2.vote_calendar(2026, holidays=["2026-05-01"]).check()
    assert desk.bills.calendar(2026).version == 1
    # Voting the applied ballot again (built for version 1 by hand) is stale.
    unchanged(w1, lambda: node.vote_calendar(2026, holidays=["2026-05-01"], version=1), R.BILL_STALE_VOTE)


def test_bad_calendar_votes(w1):
    desk = Desk(w1)
    node = desk.bills.party(w1.node)
    bad = bytearray(days.calendar_bitmap(2026, 0x60))
    bad[45] |= 0x40  # day index 366: beyond 2026's 365 days
    unchanged(w1, lambda: node.vote_calendar(2026, bitmap=bytes(bad)), R.BILL_BAD_CALENDAR)
    body = struct.pack("<H", 1969) + bytes(46)
    unchanged(w1, lambda: node._vote(Action.SET_CALENDAR, body, None), R.BILL_BAD_CALENDAR)
    leap = bytearray(days.calendar_bitmap(2028, 0x60))
    leap[45] |= 0x20  # day index 365 (31 December) exists in 2028
    node.vote_calendar(2028, bitmap=bytes(leap)).check()


# --- refusals: each names its code and changes nothing -----------------------------------------


def test_issue_refusals(w):
    desk = Desk(w)
    core, bank = desk["CoreCo"], desk["BankA"]
    o = desk.org

    def issue(party, acceptor="CoreCo", payee="Tier1", face=FACE, kind=BillKind.COMMERCIAL, **kw):
        acc = o(acceptor) if isinstance(acceptor, str) else acceptor
        return lambda: party.issue(kind, acc, o(payee), face, MATURITY, **kw)

    stranger = desk.bills.party(_stranger(w))
    unchanged(w, issue(stranger), F.NOT_A_MEMBER)
    unchanged(w, issue(bank), F.ROLE_MISSING)
    unchanged(w, issue(core, payee="CoreCo"), F.BAD_COUNTERPARTY)
    unchanged(w, issue(desk["Tier1"], acceptor="Tier2", payee="Tier2"), F.BAD_COUNTERPARTY)
    unchanged(w, issue(core, acceptor=bytes(16)), F.NO_SUCH_ORG)
    unchanged(w, issue(core, payee="BankB"), F.BAD_COUNTERPARTY)
    unchanged(w, issue(core, acceptor="Depot"), F.BAD_COUNTERPARTY)
    unchanged(w, issue(core, face=0), R.BILL_BAD_FACE)
    unchanged(w, issue(core, face=c.amount_max + 1), R.BILL_BAD_FACE)
    unchanged(w, issue(core, docs=[(DocType.INVOICE, bytes(32))]), F.NO_SUCH_DOC)
    stray = w.fin.party(w.keys["Tier3"]).anchor(DocType.INVOICE, b"Tier3's own invoice").check().id
    unchanged(w, issue(core, docs=[(DocType.INVOICE, stray)]), F.DOC_NOT_FROM_PARTY)
    own = w.fin.party(w.keys["Tier1"]).anchor(DocType.INVOICE, b"Tier1 invoice 42").check().id
    bid = issue(core, docs=[(DocType.INVOICE, own)])().check().id
    assert desk.bills.lineage(bid)["documents"] == [{"type": "INVOICE", "fingerprint": own.hex()}]


def _stranger(w: World):
    from tierchain.crypto import suite_for

    return suite_for(w.ledger.suite.name).keys_from_seed(b"nobody".ljust(32, b"\0"))


def test_offer_and_sign_refusals(w):
    desk = Desk(w)
    bid = desk.delivered()
    t1, t2, a, b = desk["Tier1"], desk["Tier2"], desk["BankA"], desk["BankB"]
    o = desk.org
    unchanged(w, lambda: t2.endorse(bid, o("Tier3")), R.BILL_NOT_HOLDER)
    unchanged(w, lambda: t1.endorse(bid, o("Tier1")), F.BAD_COUNTERPARTY)
    unchanged(w, lambda: t1.endorse(bid, o("BankA")), F.BAD_COUNTERPARTY)
    unchanged(w, lambda: t1.endorse(bid, bytes(16)), F.NO_SUCH_ORG)
    unchanged(w, lambda: t1.discount(bid, o("Tier2"), 990_000), F.BAD_COUNTERPARTY)
    unchanged(w, lambda: t1.rediscount(bid, o("BankA"), 990_000), F.ROLE_MISSING)
    unchanged(w, lambda: t1.discount(bid, o("BankA"), FACE), R.BILL_BAD_PRICE)
    unchanged(w, lambda: t1.discount(bid, o("BankA"), 0), R.BILL_BAD_PRICE)
    unchanged(w, lambda: t1.pledge(bid, o("BankA"), FACE + 1), R.BILL_BAD_PRICE)
    unchanged(w, lambda: t1.offer(bid, OfferKind.ENDORSE, o("Tier2"), 5), R.BILL_BAD_PRICE)
    unchanged(w, lambda: t1.offer(bid, OfferKind.DISCOUNT, o("BankA"), 9, True), Reject.BAD_PAYLOAD)
    unchanged(w, lambda: t1.offer(bid, OfferKind.DELIVERY, o("Tier2")), Reject.BAD_PAYLOAD)
    unchanged(w, lambda: t1.sign(bid), R.BILL_NOT_OFFERED)
    t1.discount(bid, o("BankA"), 990_000).check()
    unchanged(w, lambda: b.sign(bid), R.BILL_NOT_OFFEREE)
    unchanged(w, lambda: t2.reject(bid), R.BILL_NOT_OFFEREE)
    # The bank loses its role between offer and signature.
    node = w.fin.party(w.node)
    node.propose_roles(o("BankA"), ("supplier",)).check()
    unchanged(w, lambda: a.sign(bid), F.ROLE_MISSING)
    node.propose_roles(o("BankA"), ("bank",)).check()
    a.sign(bid).check()
    unchanged(w, lambda: a.discount(bid, o("BankB"), 995_000), F.ROLE_MISSING)  # a bank rediscounts
    unchanged(w, lambda: a.endorse(bid, o("Tier2")), F.ROLE_MISSING)


def test_acceptor_role_is_checked_at_acceptance(w1):
    desk = Desk(w1)
    bid = desk.issue(acceptor="BankA", kind=BillKind.BANK)
    w1.fin.party(w1.node).propose_roles(desk.org("BankA"), ("supplier",)).check()
    unchanged(w1, lambda: desk["BankA"].accept(bid), F.ROLE_MISSING)


def test_maturity_stops_circulation(desk1):
    bid = desk1.delivered()
    t1 = desk1["Tier1"]
    t1.endorse(bid, desk1.org("Tier2")).check()
    desk1.day(MATURITY + 1)
    unchanged(desk1.w, lambda: desk1["Tier2"].sign(bid), R.BILL_MATURED)
    t1.cancel(bid).check()
    unchanged(desk1.w, lambda: t1.endorse(bid, desk1.org("Tier2")), R.BILL_MATURED)
    desk1.day(MONDAY)
    drawn = desk1.issue(maturity=MONDAY + 3)
    desk1.day(MONDAY + 4)
    unchanged(desk1.w, lambda: desk1["CoreCo"].accept(drawn), R.BILL_MATURED)


def test_presentment_payment_dishonour_refusals(w):
    desk = Desk(w)
    bid = desk.chain("Tier1", "Tier2")
    t1, t2, a = desk["Tier1"], desk["Tier2"], desk["BankA"]
    unchanged(w, lambda: a.pay(bid), R.BILL_NOT_PRESENTED)
    unchanged(w, lambda: t2.claim(bid), R.BILL_NOT_DISHONOURED)
    t2.endorse(bid, desk.org("Tier3")).check()
    desk.day(MATURITY)
    unchanged(w, lambda: t2.present(bid), R.BILL_PENDING)
    t2.cancel(bid).check()
    unchanged(w, lambda: t1.present(bid), R.BILL_NOT_HOLDER)
    unchanged(w, lambda: a.dishonour(bid, DishonourReason.OTHER), R.BILL_NOT_PRESENTED)
    t2.present(bid).check()
    unchanged(w, lambda: t2.present(bid), R.BILL_PRESENTED)
    unchanged(w, lambda: t2.endorse(bid, desk.org("Tier3")), R.BILL_PRESENTED)
    unchanged(w, lambda: t1.pay(bid), R.BILL_NOT_ACCEPTOR)
    unchanged(w, lambda: t1.dishonour(bid, DishonourReason.OTHER), R.BILL_NOT_ACCEPTOR)
    a.pay(bid).check()
    for attempt in (
        lambda: a.pay(bid),
        lambda: a.dishonour(bid, DishonourReason.OTHER),
        lambda: t2.claim(bid),
        lambda: t2.present(bid),
        lambda: t2.endorse(bid, desk.org("Tier3")),
        lambda: t2.release(bid),
    ):
        unchanged(w, attempt, R.BILL_CLOSED)


def test_an_acceptor_holding_its_own_bill_cannot_dishonour_it(w):
    """BankA accepts, then discounts the bill in: as holder it presents to itself; a dishonour
    would push its own debt onto Tier1 by recourse, so it is refused and BankA pays."""
    desk = Desk(w)
    bid = desk.chain("Tier1")
    t1, a = desk["Tier1"], desk["BankA"]
    t1.discount(bid, desk.org("BankA"), 980_000).check()
    a.sign(bid).check()
    desk.day(MATURITY)
    a.present(bid).check()
    for reason in (DishonourReason.INSUFFICIENT_FUNDS, DishonourReason.OTHER):
        unchanged(w, lambda reason=reason: a.dishonour(bid, reason), R.BILL_ACCEPTOR_CLAIMS)
    unchanged(w, lambda: a.claim(bid), R.BILL_NOT_DISHONOURED)
    a.pay(bid).check()
    assert desk.bill(bid).state == BillState.PAID


def test_stale_and_unknown_bills(w1):
    desk = Desk(w1)
    bid = desk.delivered()
    t1 = desk["Tier1"]
    w = w1
    stale = lifecycle.offer(
        w.ledger.chain_id, t1.pk, t1.org, w.ledger.nonce(t1.pk), bid, 0, OfferKind.ENDORSE, desk.org("Tier2")
    )
    unchanged(w, lambda: _send(t1, stale), R.BILL_STALE)
    unchanged(w, lambda: t1.endorse(bytes(16), desk.org("Tier2")), R.BILL_NO_SUCH_BILL)


def test_two_txs_on_one_bill_in_one_block_the_second_is_stale(w1):
    """An endorsee's signature and the holder's cancel race in one block: the scheduler keeps
    block order, the second finds the bill moved on (BILL_STALE) and changes nothing."""
    desk = Desk(w1)
    bid = desk.delivered()
    t1, t2 = desk["Tier1"], desk["Tier2"]
    t1.endorse(bid, desk.org("Tier2")).check()
    seq = desk.bill(bid).events
    chain_id = w1.ledger.chain_id
    sign = lifecycle.simple(c.OP_SIGN, chain_id, t2.pk, t2.org, w1.ledger.nonce(t2.pk), bid, seq)
    cancel = lifecycle.simple(c.OP_CANCEL, chain_id, t1.pk, t1.org, w1.ledger.nonce(t1.pk), bid, seq)
    receipts = w1.ledger.block([t2.keys.sign_tx(sign).encode(), t1.keys.sign_tx(cancel).encode()])
    assert [r.code for r in receipts] == [0, R.BILL_STALE]
    assert desk.bill(bid).holder == desk.org("Tier2")


def test_malformed_payloads(w1):
    desk = Desk(w1)
    bid = desk.delivered()
    t1 = desk["Tier1"]
    seq = desk.bill(bid).events
    chain_id, nonce = w1.ledger.chain_id, w1.ledger.nonce
    good = payment.dishonour(chain_id, t1.pk, t1.org, nonce(t1.pk), bid, seq, DishonourReason.OTHER)
    cases = [
        dataclasses.replace(good, payload=good.payload[:-1]),  # short
        dataclasses.replace(good, payload=good.payload + b"\x00"),  # long
        dataclasses.replace(good, payload=good.payload[:-1] + b"\x09"),  # no such reason
        dataclasses.replace(good, op=c.OP_REFUSE, payload=good.payload[:-1] + b"\x00"),
        dataclasses.replace(good, op=c.OP_ISSUE, payload=b"\x01"),
        dataclasses.replace(good, op=c.OP_ISSUE, payload=_issue_payload(desk, kind=9)),
        dataclasses.replace(good, op=c.OP_ISSUE, payload=_issue_payload(desk, flags=2)),
    ]
    for tx in cases:
        tx = dataclasses.replace(tx, nonce=nonce(t1.pk))
        unchanged(w1, lambda tx=tx: _send(t1, tx), Reject.BAD_PAYLOAD)
    node = w1.node
    reads = {accounts.account_key(node.public_key), fc.PARAMS_KEY}
    for payload in (b"\x01\x01\x00\x00\x00\x01", b"\x07\x01\x00\x00\x00", b"\x02\x01\x00\x00\x00\xea\x07"):
        vote = txcodec.unsigned(chain_id, c.OP_VOTE, node.public_key, nonce(node.public_key), reads,
                                {c.PARAMS_KEY}, payload)  # fmt: skip
        unchanged(w1, lambda vote=vote: _send(desk.bills.party(node), vote), Reject.BAD_PAYLOAD)


def _issue_payload(desk: Desk, kind: int = 1, flags: int = 0) -> bytes:
    return lifecycle._ISSUE.pack(kind, flags, desk.org("CoreCo"), desk.org("Tier1"), FACE, MATURITY, 0)


def _send(party: BillParty, tx: txcodec.Tx):
    return party._send(tx)


def test_chain_full_and_history_full(w1, monkeypatch):
    desk = Desk(w1)
    monkeypatch.setattr(c, "endorsements_max", 3)
    bid = desk.chain("Tier1", "Tier2", "Tier3")
    unchanged(w1, lambda: desk["Tier3"].endorse(bid, desk.org("Tier1")), R.BILL_CHAIN_FULL)
    desk["Tier3"].pledge(bid, desk.org("BankA"), 10).check()  # a pledge is not a transfer
    desk["BankA"].sign(bid).check()
    monkeypatch.setattr(c, "events_max", desk.bill(bid).events + 1)
    desk["BankA"].release(bid).check()  # completions are never refused for history
    unchanged(w1, lambda: desk["Tier3"].pledge(bid, desk.org("BankA"), 10), R.BILL_HISTORY_FULL)


def test_every_reject_code_is_named_once_and_inside_the_range():
    set_ = apps.resolve(BILLS_APPS)
    assert {code.name for code in BillReject} <= set(set_.reject_names.values())
    assert all(code.name.startswith("BILL_") for code in BillReject)
    assert all(code in c.REJECT_CODES for code in BillReject)
    assert sorted(op.code for op in set_.apps[-1].ops) == [96, *range(100, 115)]


def test_records_round_trip_and_refuse_damage(desk1):
    bid = desk1.chain("Tier1", "Tier2")
    raw = desk1.w.ledger.state[c.bill_key(bid)]
    assert c.Bill.decode(raw).encode() == raw
    with pytest.raises(c.RecordError):
        c.Bill.decode(raw[:-1])
    with pytest.raises(c.RecordError):
        c.Event.decode(desk1.w.ledger.state[c.event_key(bid, 0)] + b"\x00")
    with pytest.raises(c.RecordError):
        c.Params.decode(b"\x00")


def test_the_worked_example_runs(capsys):
    runpy.run_path(str(DOCS / "bills_example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "endorse by Tier3 -> BILL_NOT_TRANSFERABLE" in out
    assert "recourse: Tier2 pays BankB 1000000" in out and "next claim on: CoreCo" in out
    assert "a move after payment -> BILL_CLOSED" in out and "state PAID, holder Tier2" in out
    assert "endorsements: DELIVERY CoreCo->Tier1, ENDORSE Tier1->Tier2, DISCOUNT Tier2->BankB (985000)" in out


def test_docs_tables_match_the_codes():
    """docs/finance_bills.md lists every refusal code with its number and every op."""
    text = (DOCS / "finance_bills.md").read_text()
    for code in BillReject:
        assert f"| {code.value} | `{code.name}` |" in text, code.name
    for op in apps.resolve(BILLS_APPS).apps[-1].ops:
        assert f"| {op.code} | `{op.name}`" in text, op.name
