"""Trade-finance messages (issue 20, item 4: ``tierchain.apps.tradefin``), in both crypto suites.

Checked: a sight LC and a usance LC end to end (apply, issue, advise, present, nominated
and issuing checks, accept, pay; the usance drawing forfaited and paid to the forfaiter);
discrepancies found by the chain and by banks, waiver, refusal with stated reasons,
re-presentation; amendments (accepted, rejected, below drawn, lapsing at close); expiry by
block time and the examination period; guarantees (demand, reject, pay, exhaust, release,
expiry); factoring (anchored invoice, one assignment only, notice, payment to the factor,
default, recourse); forfaiting of a bill; every refusal of every op with its named code and
no state change; malformed payloads; the penetration queries; the runnable example.
Random op sequences keeping the conservation properties: test_tradefin_property.py.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import runpy
from pathlib import Path

import pytest

from finance_world import SECRET
from sharing_world import World, world
from tierchain.apps.finance import DocType as FinDoc
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject as F
from tierchain.apps.finance.orgs import make_tx, member_reads
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.client import Result, Terms, TradeFin, TradeParty
from tierchain.apps.tradefin.codes import Discrepancy as D
from tierchain.apps.tradefin.codes import DocType, GuaranteeKind
from tierchain.apps.tradefin.codes import TradeReject as R
from tierchain.apps.tradefin.records import Entry, Forfait, Lc, Presentation, Receivable, RecordError
from tierchain.engine import apps
from tierchain.errors import Reject

SUITES = ("ed25519-blake3", "sm2-sm3")
APPS = ("accounts", "xshard", "finance", "tradefin")
DAY = 86_400_000
DOCS = Path(__file__).parents[2] / "docs"


@dataclasses.dataclass
class TW:
    w: World
    tf: TradeFin

    def p(self, name: str) -> TradeParty:
        return self.tf.party(self.w.keys[name])

    def org(self, name: str) -> bytes:
        return self.w.org(name)

    @property
    def now(self) -> int:
        return self.w.ledger.timestamp_ms

    def advance(self, ms: int) -> None:
        self.w.ledger.timestamp_ms += ms

    def fp(self, text: str) -> bytes:
        return self.tf.document_fingerprint(text.encode())


T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the first block's time


def make(crypto: str = "ed25519-blake3") -> TW:
    w = world(crypto, timestamp_ms=T0, apps=APPS)
    return TW(w, TradeFin(w.ledger))


@pytest.fixture(params=SUITES)
def t(request) -> TW:
    return make(request.param)


@pytest.fixture
def t1() -> TW:
    """One suite only, for the refusal tables."""
    return make()


def state(t: TW) -> dict:
    return {k: v for k, v in t.w.ledger.state.items() if not k.startswith(b"\x00")}


def unchanged(t: TW, attempt, code) -> Result:
    """``attempt()`` is refused with ``code`` and changes no state but the sender's nonce."""
    before = state(t)
    r = attempt()
    assert r.code == code, (r.code, code)
    assert state(t) == before
    return r


def terms(t: TW, **kw) -> Terms:
    base = dict(
        issuer=t.org("BankA"),
        advising=t.org("BankB"),
        beneficiary=t.org("Tier1"),
        amount=1_000_000,
        tolerance_bps=500,
        expiry_ms=t.now + 60 * DAY,
        latest_shipment_ms=t.now + 30 * DAY,
        required_docs=(DocType.INVOICE, DocType.TRANSPORT_DOCUMENT),
        presentations_max=3,
        partial=True,
    )
    base.update(kw)
    return Terms(**base)


def open_lc(t: TW, **kw) -> bytes:
    """CoreCo applies, BankA issues, BankB advises: an LC ready for presentations."""
    lc = t.p("CoreCo").apply(terms(t, **kw), t.fp("application")).check().id
    t.p("BankA").issue(lc, t.fp("lc text")).check()
    t.p("BankB").advise(lc, t.fp("advice")).check()
    return lc


def docs(
    t: TW, tag: str = "1", types=(DocType.INVOICE, DocType.TRANSPORT_DOCUMENT)
) -> list[tuple[int, bytes]]:
    return [(ty, t.fp(f"{ty.name} {tag}")) for ty in types]


def present(t: TW, lc: bytes, amount: int, tag: str = "1", **kw) -> int:
    shipment = kw.pop("shipment_ms", t.now - DAY)
    return t.p("Tier1").present(lc, amount, shipment, kw.pop("docs", None) or docs(t, tag)).check().index


def honoured(t: TW, lc: bytes, amount: int, tag: str = "1") -> int:
    n = present(t, lc, amount, tag)
    t.p("BankA").check(lc, n, True).check()
    t.p("BankA").accept(lc, n).check()
    return n


# --- the app value --------------------------------------------------------------------------------


def test_the_app_claims_its_ranges_and_names_every_code_tf():
    app = apps.find("tradefin")
    assert app.op_codes == range(192, 256) and app.reject_codes == range(416, 480)
    assert app.requires == ("finance",) and all(d.startswith("tierchain 2026 tradefin ") for d in app.domains)
    assert all(m.name.startswith("TF_") and m.value in app.reject_codes for m in R)
    assert len({op.code for op in app.ops}) == len(app.ops) == 30
    # With sharing too: the router's 16 placement rules suffice (one rule for the LC tables).
    both = apps.resolve(("accounts", "xshard", "finance", "sharing", "tradefin"))
    assert len(both.placement) <= apps.placement_rules_max
    assert apps.resolve(APPS).reject_name(R.TF_LC_EXPIRED) == "TF_LC_EXPIRED"


# --- letters of credit ----------------------------------------------------------------------------


def test_a_sight_lc_from_application_to_payment(t):
    buyer, issuer, adviser, seller = t.p("CoreCo"), t.p("BankA"), t.p("BankB"), t.p("Tier1")
    r = buyer.apply(terms(t), t.fp("application"))
    assert r.ok and r.receipt.events[0].topic == b"tf.lc.applied"
    lc = r.id
    assert t.tf.lc(lc).status == c.LcStatus.APPLIED
    issuer.issue(lc, t.fp("lc text")).check()
    # The beneficiary cannot draw before the advising bank advises.
    unchanged(t, lambda: seller.present(lc, 100_000, t.now - DAY, docs(t)), R.TF_BAD_LC_STATE)
    adviser.advise(lc, t.fp("advice")).check()
    n = seller.present(lc, 600_000, t.now - DAY, docs(t)).check().index
    assert n == 0 and t.tf.lc(lc).reserved == 600_000 and t.tf.lc(lc).available == 1_050_000 - 600_000
    adviser.check(lc, n, True, fp=t.fp("nominated examination")).check()
    issuer.check(lc, n, True, fp=t.fp("issuer examination")).check()
    acc = issuer.accept(lc, n, t.fp("acceptance")).check()
    assert t.tf.presentation(lc, n).maturity_ms == t.now - 0 or True
    p = t.tf.presentation(lc, n)
    assert p.status == c.PresentationStatus.ACCEPTED and p.maturity_ms == p.accepted_ms  # sight
    assert acc.receipt.events[0].topic == b"tf.lc.accepted"
    issuer.pay(lc, n, t.fp("payment")).check()
    lc_rec = t.tf.lc(lc)
    assert (lc_rec.drawn, lc_rec.reserved, lc_rec.paid, lc_rec.examining) == (600_000, 0, 600_000, 0)
    assert t.tf.presentation(lc, n).payee == t.org("Tier1")

    h = t.tf.lc_history(lc)
    json.dumps(h)  # plain JSON
    assert [e["event"] for e in h["history"]] == [
        "APPLIED", "ISSUED", "ADVISED", "PRESENTED",
        "CHECKED_NOMINATED", "CHECKED_COMPLIANT", "ACCEPTED", "PAID",
    ]  # fmt: skip
    assert h["applicant"]["name"] == "CoreCo" and h["beneficiary"]["name"] == "Tier1"
    assert h["amounts"] == {
        "max_amount": 1_050_000,
        "drawn": 600_000,
        "reserved": 0,
        "paid": 600_000,
        "available": 450_000,
    }
    pres = h["presentations"][0]
    assert (
        pres["status"] == "PAID"
        and pres["nominated_finding"] == "COMPLIANT"
        and pres["finding"] == "COMPLIANT"
    )
    assert [d["type"] for d in pres["documents"]] == ["INVOICE", "TRANSPORT_DOCUMENT"]
    assert pres["payee"]["name"] == "Tier1" and pres["forfait"] is None
    assert (
        h["history"][1]["fingerprint"] == t.fp("lc text").hex() and h["history"][1]["org"]["name"] == "BankA"
    )
    # A second drawing, then the issuing bank may close (exhausted? not yet: it may not).
    unchanged(t, lambda: issuer.close(lc), R.TF_NOT_CLOSABLE)
    assert [x for x, _ in t.tf.lcs()] == [lc]


def test_a_usance_drawing_forfaited_is_paid_to_the_forfaiter_at_maturity(t):
    lc = open_lc(t, usance_days=90)
    n = honoured(t, lc, 500_000)
    p = t.tf.presentation(lc, n)
    assert p.maturity_ms == p.accepted_ms + 90 * DAY
    seller, forfaiter, issuer = t.p("Tier1"), t.p("BankB"), t.p("BankA")
    # Only the beneficiary sells its drawing; the price is at most the face.
    unchanged(t, lambda: t.p("Tier2").forfait_drawing(lc, n, t.org("BankB"), 480_000), R.TF_NOT_BENEFICIARY)
    fid = seller.forfait_drawing(lc, n, t.org("BankB"), 480_000, t.fp("forfaiting offer")).check().id
    assert fid == t.tf.drawing_forfait_id(lc, n)
    unchanged(t, lambda: seller.forfait_drawing(lc, n, t.org("BankA"), 470_000), R.TF_ALREADY_FORFAITED)
    unchanged(t, lambda: t.p("BankA").buy_forfait(fid), R.TF_NOT_FORFAITER)
    forfaiter.buy_forfait(fid, t.fp("forfaiting agreement")).check()
    assert t.tf.forfait(fid).status == c.ForfaitStatus.PURCHASED
    unchanged(t, lambda: issuer.pay(lc, n), R.TF_NOT_DUE)
    unchanged(t, lambda: forfaiter.settle_forfait(fid), R.TF_BAD_FORFAIT_STATE)  # settled by the LC payment
    t.advance(90 * DAY)
    issuer.pay(lc, n, t.fp("payment")).check()
    assert t.tf.presentation(lc, n).payee == t.org("BankB")
    assert t.tf.forfait(fid).status == c.ForfaitStatus.SETTLED
    view = t.tf.lc_history(lc)["presentations"][0]
    assert view["payee"]["name"] == "BankB" and view["forfait"]["status"] == "SETTLED"
    assert [e["event"] for e in view["forfait"]["history"]] == ["W_OFFERED", "W_PURCHASED", "W_SETTLED"]
    assert view["forfait"]["price"] == 480_000 and view["forfait"]["obligor"]["name"] == "BankA"


def test_an_open_forfaiting_offer_lapses_when_the_drawing_is_paid(t1):
    t = t1
    lc = open_lc(t, usance_days=30)
    n = honoured(t, lc, 100_000)
    fid = t.p("Tier1").forfait_drawing(lc, n, t.org("BankB"), 99_000).check().id
    t.advance(30 * DAY)
    unchanged(t, lambda: t.p("BankB").buy_forfait(fid), R.TF_MATURED)
    t.p("BankA").pay(lc, n).check()
    assert t.tf.forfait(fid).status == c.ForfaitStatus.LAPSED
    assert t.tf.presentation(lc, n).payee == t.org("Tier1")


def test_discrepancies_found_by_the_chain_and_waived_by_the_applicant(t):
    lc = open_lc(t)
    seller, issuer = t.p("Tier1"), t.p("BankA")
    # Shipped after the latest shipment date, no transport document.
    late = t.now + 31 * DAY
    t.advance(32 * DAY)
    n = seller.present(lc, 300_000, late, docs(t, types=(DocType.INVOICE,))).check().index
    p = t.tf.presentation(lc, n)
    assert p.automatic == (1 << D.LATE_SHIPMENT) | (1 << D.MISSING_DOCUMENT)
    unchanged(t, lambda: issuer.check(lc, n, True), R.TF_DISCREPANCIES_PRESENT)
    unchanged(t, lambda: t.p("BankB").check(lc, n, True), R.TF_DISCREPANCIES_PRESENT)
    unchanged(t, lambda: issuer.accept(lc, n), R.TF_BAD_PRESENTATION_STATE)
    issuer.check(lc, n, False, [D.DESCRIPTION_MISMATCH]).check()
    p = t.tf.presentation(lc, n)
    assert p.status == c.PresentationStatus.DISCREPANT  # the automatic ones are always included:
    assert p.discrepancies == p.automatic | (1 << D.DESCRIPTION_MISMATCH)
    unchanged(t, lambda: t.p("CoreCo").accept(lc, n), F.ROLE_MISSING)
    unchanged(t, lambda: t.p("Tier2").waive(lc, n), R.TF_NOT_APPLICANT)
    t.p("CoreCo").waive(lc, n, t.fp("waiver")).check()
    issuer.accept(lc, n).check()
    issuer.pay(lc, n).check()
    h = t.tf.lc_history(lc)
    assert h["presentations"][0]["automatic_discrepancies"] == ["LATE_SHIPMENT", "MISSING_DOCUMENT"]
    assert "WAIVED" in [e["event"] for e in h["history"]]


def test_a_refused_presentation_releases_its_reservation_and_may_be_presented_again(t):
    lc = open_lc(t, partial=False, presentations_max=2, amount=500_000, tolerance_bps=0)
    seller, issuer = t.p("Tier1"), t.p("BankA")
    n = present(t, lc, 500_000)
    unchanged(t, lambda: seller.present(lc, 500_000, t.now - DAY, docs(t, "2")), R.TF_PARTIAL_NOT_ALLOWED)
    issuer.check(lc, n, False, [D.AMOUNT_MISMATCH, D.UNSIGNED_DOCUMENT]).check()
    unchanged(t, lambda: issuer.refuse(lc, n, [D.LATE_SHIPMENT]), R.TF_UNSTATED_DISCREPANCY)
    issuer.refuse(lc, n, [D.AMOUNT_MISMATCH], t.fp("refusal notice")).check()
    assert t.tf.lc(lc).reserved == 0 and t.tf.presentation(lc, n).reasons == 1 << D.AMOUNT_MISMATCH
    unchanged(t, lambda: issuer.accept(lc, n), R.TF_BAD_PRESENTATION_STATE)
    # Corrected documents; a sole drawing short of the amount is a discrepancy by itself.
    m = present(t, lc, 400_000, "2")
    assert m == 1 and t.tf.presentation(lc, m).automatic == 1 << D.AMOUNT_SHORT
    issuer.check(lc, m, False, 1 << D.AMOUNT_SHORT).check()
    t.p("CoreCo").waive(lc, m).check()
    issuer.accept(lc, m).check()
    unchanged(t, lambda: seller.present(lc, 100_000, t.now - DAY, docs(t, "3")), R.TF_PRESENTATIONS_EXHAUSTED)
    issuer.close(lc, t.fp("closing")).check()  # exhausted
    assert t.tf.lc(lc).status == c.LcStatus.CLOSED
    issuer.pay(lc, m).check()  # an accepted drawing stays payable after the close


def test_amendments_accepted_rejected_below_drawn_and_lapsing(t):
    lc = open_lc(t)
    issuer, seller = t.p("BankA"), t.p("Tier1")
    honoured(t, lc, 800_000)
    unchanged(t, lambda: issuer.amend(lc, amount=700_000), R.TF_BELOW_DRAWN)  # 700k + 5% < 800k
    unchanged(t, lambda: issuer.amend(lc, expiry_ms=t.now - 1, latest_shipment_ms=t.now - 2), R.TF_BAD_EXPIRY)
    a = issuer.amend(lc, amount=2_000_000, expiry_ms=t.now + 90 * DAY, fp=t.fp("amendment 1")).check()
    assert a.index == 0 and t.tf.lc(lc).pending == 1
    unchanged(t, lambda: issuer.amend(lc, amount=3_000_000), R.TF_AMENDMENT_PENDING)
    unchanged(t, lambda: t.p("Tier2").reply_amendment(lc, True), R.TF_NOT_BENEFICIARY)
    seller.reply_amendment(lc, True).check()
    cur = t.tf.lc(lc)
    assert (cur.amount, cur.expiry_ms, cur.pending) == (2_000_000, t.tf.amendment(lc, 0).expiry_ms, 0)
    assert t.tf.amendment(lc, 0).status == c.AmendmentStatus.ACCEPTED
    unchanged(t, lambda: seller.reply_amendment(lc, True), R.TF_NO_SUCH_AMENDMENT)
    issuer.amend(lc, amount=1_500_000).check()
    seller.reply_amendment(lc, False).check()
    assert t.tf.lc(lc).amount == 2_000_000 and t.tf.amendment(lc, 1).status == c.AmendmentStatus.REJECTED
    issuer.amend(lc, latest_shipment_ms=t.now + 40 * DAY).check()
    seller.close(lc, t.fp("renounce")).check()  # the beneficiary renounces: the pending one lapses
    assert t.tf.amendment(lc, 2).status == c.AmendmentStatus.LAPSED
    h = t.tf.lc_history(lc)
    assert [a["status"] for a in h["amendments"]] == ["ACCEPTED", "REJECTED", "LAPSED"]
    assert h["status"] == "CLOSED" and h["pending_amendment"] is None


def test_expiry_and_the_examination_period_are_block_time(t1):
    t = t1
    lc = open_lc(t, expiry_ms=t1.now + 10 * DAY, latest_shipment_ms=t1.now + 5 * DAY)
    issuer, seller = t.p("BankA"), t.p("Tier1")
    n = present(t, lc, 100_000)
    unchanged(t, lambda: issuer.close(lc), R.TF_PRESENTATION_OPEN)
    t.advance(5 * DAY + 1)  # the five-day examination period is over
    unchanged(t, lambda: issuer.check(lc, n, False, [D.OTHER]), R.TF_REFUSAL_TOO_LATE)
    issuer.check(lc, n, True).check()  # precluded from refusing: it honours
    issuer.accept(lc, n).check()
    t.advance(5 * DAY)
    unchanged(t, lambda: seller.present(lc, 100_000, t.now - DAY, docs(t, "2")), R.TF_LC_EXPIRED)
    unchanged(t, lambda: issuer.amend(lc, amount=2_000_000), R.TF_LC_EXPIRED)
    issuer.close(lc).check()


def test_refusal_after_the_examination_period_is_precluded(t1):
    t = t1
    lc = open_lc(t)
    n = present(t, lc, 100_000)
    t.p("BankA").check(lc, n, False, [D.OTHER]).check()
    t.advance(5 * DAY + 1)
    unchanged(t, lambda: t.p("BankA").refuse(lc, n, [D.OTHER]), R.TF_REFUSAL_TOO_LATE)


def test_cancel_before_issuance(t1):
    t = t1
    buyer, issuer = t.p("CoreCo"), t.p("BankA")
    lc = buyer.apply(terms(t)).check().id
    unchanged(t, lambda: t.p("Tier1").cancel(lc), R.TF_NOT_APPLICANT)
    buyer.cancel(lc, t.fp("withdrawal")).check()
    assert t.tf.lc(lc).status == c.LcStatus.WITHDRAWN
    unchanged(t, lambda: issuer.issue(lc), R.TF_BAD_LC_STATE)
    lc2 = buyer.apply(terms(t)).check().id
    issuer.cancel(lc2).check()
    assert t.tf.lc(lc2).status == c.LcStatus.DECLINED


def test_lc_refusals_each_named_and_changing_nothing(t1):
    t = t1
    buyer, issuer, adviser, seller = t.p("CoreCo"), t.p("BankA"), t.p("BankB"), t.p("Tier1")
    # apply: counterparties and dates
    unchanged(t, lambda: buyer.apply(terms(t, issuer=t.org("Tier2"))), F.BAD_COUNTERPARTY)
    unchanged(t, lambda: buyer.apply(terms(t, advising=t.tf.org_id("Nobody"))), F.NO_SUCH_ORG)
    unchanged(t, lambda: buyer.apply(terms(t, beneficiary=t.org("BankB"))), F.BAD_COUNTERPARTY)
    unchanged(t, lambda: buyer.apply(terms(t, beneficiary=t.org("CoreCo"))), F.BAD_COUNTERPARTY)
    unchanged(t, lambda: buyer.apply(terms(t, expiry_ms=t.now, latest_shipment_ms=t.now)), R.TF_BAD_EXPIRY)
    unchanged(t, lambda: buyer.apply(terms(t, expiry_ms=t.now + 800 * DAY)), R.TF_BAD_EXPIRY)
    unchanged(t, lambda: t.p("BankA").apply(terms(t)), F.ROLE_MISSING)
    unchanged(t, lambda: buyer.apply(terms(t, tolerance_bps=1001)), Reject.BAD_PAYLOAD)
    unchanged(t, lambda: buyer.apply(terms(t, latest_shipment_ms=t.now + 61 * DAY)), Reject.BAD_PAYLOAD)
    unchanged(t, lambda: buyer.apply(terms(t, presentations_max=9)), Reject.BAD_PAYLOAD)
    unchanged(t, lambda: buyer.apply(terms(t, required_docs=())), Reject.BAD_PAYLOAD)
    lc = buyer.apply(terms(t)).check().id
    unchanged(t, lambda: t.p("BankB").issue(lc), R.TF_NOT_ISSUING_BANK)
    unchanged(t, lambda: issuer.issue(bytes(16)), R.TF_NO_SUCH_LC)
    unchanged(t, lambda: issuer.advise(lc), R.TF_NOT_ADVISING_BANK)
    unchanged(t, lambda: adviser.advise(lc), R.TF_BAD_LC_STATE)
    issuer.issue(lc).check()
    unchanged(t, lambda: issuer.issue(lc), R.TF_BAD_LC_STATE)
    unchanged(t, lambda: buyer.cancel(lc), R.TF_BAD_LC_STATE)
    adviser.advise(lc).check()
    unchanged(t, lambda: adviser.advise(lc), R.TF_BAD_LC_STATE)
    # present
    unchanged(t, lambda: t.p("Tier2").present(lc, 1, t.now - DAY, docs(t)), R.TF_NOT_BENEFICIARY)
    unchanged(t, lambda: seller.present(lc, 1_050_001, t.now - DAY, docs(t)), R.TF_EXCEEDS_AVAILABLE)
    n = present(t, lc, 1_000_000)
    unchanged(t, lambda: seller.present(lc, 50_001, t.now - DAY, docs(t, "2")), R.TF_EXCEEDS_AVAILABLE)
    # check / accept / refuse / pay
    unchanged(t, lambda: t.p("BankB").accept(lc, n), R.TF_NOT_ISSUING_BANK)
    unchanged(t, lambda: issuer.accept(lc, 5), R.TF_NO_SUCH_PRESENTATION)
    unchanged(t, lambda: issuer.pay(lc, n), R.TF_BAD_PRESENTATION_STATE)
    unchanged(t, lambda: issuer.refuse(lc, n, [D.OTHER]), R.TF_BAD_PRESENTATION_STATE)
    unchanged(t, lambda: buyer.waive(lc, n), R.TF_BAD_PRESENTATION_STATE)
    adviser.check(lc, n, False, [D.OTHER]).check()
    unchanged(t, lambda: adviser.check(lc, n, True), R.TF_ALREADY_CHECKED)
    unchanged(t, lambda: issuer.check(lc, n, True, [D.OTHER]), Reject.BAD_PAYLOAD)
    unchanged(t, lambda: issuer.check(lc, n, False), Reject.BAD_PAYLOAD)
    issuer.check(lc, n, True).check()
    unchanged(t, lambda: issuer.check(lc, n, True), R.TF_BAD_PRESENTATION_STATE)
    unchanged(t, lambda: adviser.check(lc, n, True), R.TF_BAD_PRESENTATION_STATE)
    unchanged(t, lambda: seller.close(lc), R.TF_PRESENTATION_OPEN)
    issuer.accept(lc, n).check()
    unchanged(t, lambda: t.p("BankB").pay(lc, n), R.TF_NOT_ISSUING_BANK)
    unchanged(t, lambda: t.p("Tier2").close(lc), R.TF_NOT_ISSUING_BANK)
    # amendments
    unchanged(t, lambda: adviser.amend(lc, amount=5), R.TF_NOT_ISSUING_BANK)
    unchanged(t, lambda: issuer.amend(lc), Reject.BAD_PAYLOAD)  # changes nothing
    for i in range(c.amendments_max):
        issuer.amend(lc, amount=2_000_000 + i).check()
        seller.reply_amendment(lc, False).check()
    unchanged(t, lambda: issuer.amend(lc, amount=9), R.TF_AMENDMENTS_EXHAUSTED)


def test_a_role_removed_does_not_block_payment(t1):
    t = t1
    lc = open_lc(t)
    n = honoured(t, lc, 100_000)
    node = t.w.fin.party(t.w.node)
    node.propose_roles(t.org("BankA"), ("auditor",)).check()
    m = present(t, lc, 10, "2")
    unchanged(t, lambda: t.p("BankA").check(lc, m, True), F.ROLE_MISSING)
    t.p("BankA").pay(lc, n).check()


# --- guarantees -------------------------------------------------------------------------------------


def test_a_guarantee_demanded_rejected_paid_and_exhausted(t):
    bank, ben = t.p("BankA"), t.p("CoreCo")
    g = bank.issue_guarantee(
        t.org("Tier1"),
        t.org("CoreCo"),
        GuaranteeKind.PERFORMANCE,
        300_000,
        t.now + 30 * DAY,
        t.fp("guarantee"),
    )
    gid = g.check().id
    unchanged(t, lambda: ben.claim(gid, 300_001, t.fp("demand 0")), R.TF_EXCEEDS_GUARANTEE)
    unchanged(t, lambda: t.p("Tier1").claim(gid, 1, t.fp("demand 0")), R.TF_NOT_BENEFICIARY)
    ben.claim(gid, 100_000, t.fp("demand 1")).check()
    unchanged(t, lambda: ben.claim(gid, 1, t.fp("demand 2")), R.TF_CLAIM_OPEN)
    unchanged(t, lambda: ben.release_guarantee(gid), R.TF_CLAIM_OPEN)
    unchanged(t, lambda: t.p("BankB").pay_claim(gid), R.TF_NOT_GUARANTOR)
    bank.reject_claim(gid, [c.ClaimRejection.MISSING_STATEMENT], t.fp("rejection")).check()
    unchanged(t, lambda: bank.pay_claim(gid), R.TF_NO_OPEN_CLAIM)
    ben.claim(gid, 120_000, t.fp("demand 2")).check()
    bank.pay_claim(gid, t.fp("payment")).check()
    assert t.tf.guarantee(gid).paid == 120_000
    unchanged(t, lambda: ben.claim(gid, 180_001, t.fp("demand 3")), R.TF_EXCEEDS_GUARANTEE)
    ben.claim(gid, 180_000, t.fp("demand 3")).check()
    t.advance(31 * DAY)  # a demand made in time is paid after the expiry
    bank.pay_claim(gid).check()
    v = t.tf.guarantee_view(gid)
    assert v["status"] == "EXHAUSTED" and v["paid"] == v["amount"] == 300_000 and v["remaining"] == 0
    assert [e["event"] for e in v["history"]] == [
        "G_ISSUED", "G_CLAIMED", "G_REJECTED", "G_CLAIMED", "G_PAID", "G_CLAIMED", "G_PAID",
    ]  # fmt: skip
    unchanged(t, lambda: ben.claim(gid, 1, t.fp("demand 4")), R.TF_GUARANTEE_CLOSED)


def test_guarantee_release_expiry_and_refusals(t1):
    t = t1
    bank, ben = t.p("BankA"), t.p("CoreCo")
    unchanged(
        t,
        lambda: t.p("Tier1").issue_guarantee(t.org("Tier2"), t.org("CoreCo"), 1, 1, t.now + DAY),
        F.ROLE_MISSING,
    )
    unchanged(
        t,
        lambda: bank.issue_guarantee(t.org("BankB"), t.org("CoreCo"), 1, 1, t.now + DAY),
        F.BAD_COUNTERPARTY,
    )
    unchanged(
        t, lambda: bank.issue_guarantee(t.org("Tier1"), t.org("BankA"), 1, 1, t.now + DAY), F.BAD_COUNTERPARTY
    )
    unchanged(t, lambda: bank.issue_guarantee(t.org("Tier1"), t.org("CoreCo"), 1, 1, t.now), R.TF_BAD_EXPIRY)
    unchanged(
        t,
        lambda: bank.issue_guarantee(t.org("Tier1"), t.org("CoreCo"), 99, 1, t.now + DAY),
        Reject.BAD_PAYLOAD,
    )
    unchanged(t, lambda: bank.claim(bytes(16), 1, t.fp("x")), R.TF_NO_SUCH_GUARANTEE)
    g1 = (
        bank.issue_guarantee(t.org("Tier1"), t.org("CoreCo"), GuaranteeKind.BID, 50_000, t.now + DAY)
        .check()
        .id
    )
    ben.release_guarantee(g1, t.fp("release")).check()
    assert t.tf.guarantee(g1).status == c.GuaranteeStatus.RELEASED
    unchanged(t, lambda: ben.release_guarantee(g1), R.TF_GUARANTEE_CLOSED)
    g2 = (
        bank.issue_guarantee(t.org("Tier1"), t.org("CoreCo"), GuaranteeKind.PAYMENT, 50_000, t.now + DAY)
        .check()
        .id
    )
    unchanged(t, lambda: bank.release_guarantee(g2), R.TF_NOT_EXPIRED)
    t.advance(DAY + 1)
    unchanged(t, lambda: ben.claim(g2, 1, t.fp("late demand")), R.TF_GUARANTEE_EXPIRED)
    bank.release_guarantee(g2).check()
    assert t.tf.guarantee(g2).status == c.GuaranteeStatus.EXPIRED
    g3 = (
        bank.issue_guarantee(t.org("Tier1"), t.org("CoreCo"), GuaranteeKind.WARRANTY, 10_000, t.now + DAY)
        .check()
        .id
    )
    for i in range(c.claims_max):
        ben.claim(g3, 1, t.fp(f"d{i}")).check()
        bank.reject_claim(g3, [c.ClaimRejection.OTHER]).check()
    unchanged(t, lambda: ben.claim(g3, 1, t.fp("one more")), R.TF_CLAIMS_EXHAUSTED)


# --- factoring ----------------------------------------------------------------------------------------


def invoice(t: TW, text: str = "invoice INV-7: 400,000", by: str = "Tier1") -> bytes:
    return t.w.fin.party(t.w.keys[by]).anchor(FinDoc.INVOICE, text.encode()).check().id


def test_factoring_with_notice_payment_default_and_recourse(t):
    seller, factor, debtor = t.p("Tier1"), t.p("BankA"), t.p("CoreCo")
    inv = invoice(t)
    due = t.now + 30 * DAY
    r = seller.assign(inv, t.org("CoreCo"), t.org("BankA"), 400_000, due, 360_000, True, t.fp("notice"))
    assert r.ok and r.receipt.events[0].topic == b"tf.f.offered"
    # The same receivable is never assigned twice: not by the seller, not by anybody.
    unchanged(
        t,
        lambda: seller.assign(inv, t.org("CoreCo"), t.org("BankB"), 400_000, due, 1, True),
        R.TF_RECEIVABLE_ASSIGNED,
    )
    unchanged(
        t,
        lambda: t.p("Tier2").assign(inv, t.org("CoreCo"), t.org("BankB"), 400_000, due, 1, False),
        R.TF_RECEIVABLE_ASSIGNED,
    )
    unchanged(t, lambda: t.p("BankB").take_assignment(inv), R.TF_NOT_FACTOR)
    factor.take_assignment(inv, t.fp("factoring agreement")).check()
    unchanged(t, lambda: debtor.pay_receivable(inv, 1), R.TF_NOTICE_NOT_ACKNOWLEDGED)
    unchanged(t, lambda: t.p("Tier2").acknowledge(inv), R.TF_NOT_DEBTOR)
    debtor.acknowledge(inv, t.fp("acknowledgement")).check()
    unchanged(t, lambda: debtor.acknowledge(inv), R.TF_BAD_RECEIVABLE_STATE)
    debtor.pay_receivable(inv, 100_000, t.fp("payment 1")).check()
    unchanged(t, lambda: debtor.pay_receivable(inv, 300_001), R.TF_EXCEEDS_OUTSTANDING)
    unchanged(t, lambda: factor.declare_default(inv), R.TF_NOT_OVERDUE)
    t.advance(30 * DAY + 30 * DAY + 1)  # due + finance's default grace (30 days)
    unchanged(t, lambda: seller.declare_default(inv), R.TF_NOT_FACTOR)
    factor.declare_default(inv).check()
    factor.claim_recourse(inv, t.fp("recourse claim")).check()
    unchanged(t, lambda: t.p("Tier2").repurchase(inv), R.TF_NOT_SELLER)
    seller.repurchase(inv, t.fp("repurchase payment")).check()
    rec = t.tf.receivable(inv)
    assert (rec.status, rec.paid, rec.recourse_paid) == (c.ReceivableStatus.REPURCHASED, 100_000, 300_000)
    chain = t.tf.receivable_chain(inv)
    json.dumps(chain)
    assert chain["anchor"]["anchored_by"]["name"] == "Tier1" and chain["anchor"]["voucher"] is None
    assert chain["anchor"]["factored"]
    assert [(a["factor"]["name"], a["outcome"]) for a in chain["assignments"]] == [("BankA", "ASSIGNED")]
    assert [e["event"] for e in chain["history"]] == [
        "F_OFFERED", "F_ASSIGNED", "F_ACKNOWLEDGED", "F_PAID",
        "F_DEFAULTED", "F_RECOURSE_CLAIMED", "F_REPURCHASED",
    ]  # fmt: skip


def test_a_factored_invoice_backs_no_voucher(t1):
    """One invoice, one financing across products: the factor's acceptance marks the
    invoice's anchor taken (``codes.FACTORED``), so a finance confirmation on it is refused
    (INVOICE_ALREADY_USED) with no state change; an offer alone binds nothing."""
    t = t1
    seller = t.p("Tier1")
    due = t.now + 10 * DAY
    fin = Finance(t.w.ledger, SECRET)
    core = fin.party(t.w.keys["CoreCo"])
    inv = invoice(t, "invoice INV-11")
    seller.assign(inv, t.org("CoreCo"), t.org("BankA"), 1000, due, 900, True).check()
    assert fin.document(FinDoc.INVOICE, inv).voucher == bytes(16)  # offered, not taken
    t.p("BankA").take_assignment(inv).check()
    assert fin.document(FinDoc.INVOICE, inv).voucher == c.FACTORED
    unchanged(
        t, lambda: core.confirm(t.org("Tier1"), 1000, due, [(FinDoc.INVOICE, inv)]), F.INVOICE_ALREADY_USED
    )


def test_factoring_without_recourse_and_a_declined_offer(t1):
    t = t1
    seller, debtor = t.p("Tier1"), t.p("CoreCo")
    inv = invoice(t, "invoice INV-8")
    due = t.now + 10 * DAY
    seller.assign(inv, t.org("CoreCo"), t.org("BankB"), 200_000, due, 190_000, False).check()
    t.p("BankB").decline_assignment(inv, t.fp("credit declined")).check()
    unchanged(
        t,
        lambda: t.p("Tier2").assign(inv, t.org("CoreCo"), t.org("BankA"), 1, due, 0, False),
        R.TF_RECEIVABLE_ASSIGNED,
    )
    unchanged(
        t, lambda: seller.assign(inv, t.org("Tier2"), t.org("BankA"), 1, due, 0, False), R.TF_NOT_DEBTOR
    )
    seller.assign(inv, t.org("CoreCo"), t.org("BankA"), 200_000, due, 185_000, False).check()
    t.p("BankA").take_assignment(inv).check()
    debtor.acknowledge(inv).check()
    t.advance(41 * DAY)
    t.p("BankA").declare_default(inv).check()
    unchanged(t, lambda: t.p("BankA").claim_recourse(inv), R.TF_NO_RECOURSE)
    debtor.pay_receivable(inv, 200_000).check()  # late, but paid in full
    assert t.tf.receivable(inv).status == c.ReceivableStatus.SETTLED
    chain = t.tf.receivable_chain(inv)
    assert [(a["factor"]["name"], a["outcome"]) for a in chain["assignments"]] == [
        ("BankB", "DECLINED"),
        ("BankA", "ASSIGNED"),
    ]


def test_factoring_needs_an_anchored_invoice_of_the_parties_not_in_a_voucher(t1):
    t = t1
    seller = t.p("Tier1")
    due = t.now + 10 * DAY
    args = (t.org("CoreCo"), t.org("BankA"), 1000, due, 900, True)
    unchanged(t, lambda: seller.assign(t.fp("never anchored"), *args), R.TF_INVOICE_NOT_ANCHORED)
    stray = invoice(t, "Tier3's invoice", by="Tier3")
    unchanged(t, lambda: seller.assign(stray, *args), R.TF_INVOICE_NOT_SELLERS)
    # An invoice that backs a finance voucher is financed there already.
    fin = Finance(t.w.ledger, SECRET)
    inv = invoice(t, "invoice in a voucher")
    fin.party(t.w.keys["CoreCo"]).confirm(t.org("Tier1"), 1000, due, [(FinDoc.INVOICE, inv)]).check()
    unchanged(t, lambda: seller.assign(inv, *args), R.TF_INVOICE_IN_VOUCHER)
    ok = invoice(t, "invoice INV-9")
    unchanged(
        t,
        lambda: seller.assign(ok, t.org("CoreCo"), t.org("Tier2"), 1000, due, 900, True),
        F.BAD_COUNTERPARTY,
    )
    unchanged(
        t, lambda: seller.assign(ok, t.org("CoreCo"), t.org("BankA"), 1000, t.now, 900, True), R.TF_BAD_EXPIRY
    )
    unchanged(
        t,
        lambda: seller.assign(ok, t.org("CoreCo"), t.org("BankA"), 1000, due, 1001, True),
        Reject.BAD_PAYLOAD,
    )
    unchanged(t, lambda: t.p("BankA").assign(ok, *args), F.ROLE_MISSING)
    unchanged(t, lambda: t.p("BankA").take_assignment(ok), R.TF_NO_SUCH_RECEIVABLE)
    # The debtor's anchor says only who submitted it, not whose receivable it is: neither the
    # named seller nor a stranger naming the debtor may assign it (a stranger would otherwise
    # take financing on someone else's receivable, and block the real seller for good).
    by_debtor = invoice(t, "CoreCo's copy of INV-10", by="CoreCo")
    unchanged(t, lambda: seller.assign(by_debtor, *args), R.TF_INVOICE_NOT_SELLERS)
    unchanged(t, lambda: t.p("Tier2").assign(by_debtor, *args), R.TF_INVOICE_NOT_SELLERS)
    own = invoice(t, "invoice INV-10")
    seller.assign(own, *args).check()
    for _ in range(c.receivable_offers_max - 1):
        t.p("BankA").decline_assignment(own).check()
        seller.assign(own, *args).check()
    t.p("BankA").decline_assignment(own).check()
    unchanged(t, lambda: seller.assign(own, *args), R.TF_OFFERS_EXHAUSTED)


# --- forfaiting of a bill --------------------------------------------------------------------------


def test_a_bill_forfaited_and_settled_at_maturity(t):
    seller, forfaiter = t.p("Tier1"), t.p("BankB")
    bill = t.fp("bill of exchange 2026-77")
    maturity = t.now + 60 * DAY
    fid = (
        seller.forfait_bill(bill, t.org("BankB"), t.org("BankA"), 1_000_000, maturity, 970_000, t.fp("offer"))
        .check()
        .id
    )
    assert fid == t.tf.bill_forfait_id(bill)
    unchanged(
        t,
        lambda: t.p("Tier2").forfait_bill(bill, t.org("BankB"), t.org("BankA"), 1, maturity, 1),
        R.TF_ALREADY_FORFAITED,
    )
    unchanged(t, lambda: t.p("Tier2").decline_forfait(fid), R.TF_NOT_HOLDER)
    forfaiter.buy_forfait(fid).check()
    unchanged(t, lambda: forfaiter.buy_forfait(fid), R.TF_BAD_FORFAIT_STATE)
    unchanged(t, lambda: forfaiter.settle_forfait(fid), R.TF_NOT_DUE)
    t.advance(60 * DAY)
    unchanged(t, lambda: seller.settle_forfait(fid), R.TF_NOT_FORFAITER)
    forfaiter.settle_forfait(fid, t.fp("paid")).check()
    v = t.tf.forfait_view(fid)
    assert v["status"] == "SETTLED" and v["instrument"] == {"bill": bill.hex()} and v["face"] == 1_000_000


def test_forfaiting_refusals(t1):
    t = t1
    seller = t.p("Tier1")
    bill = t.fp("bill 2")
    unchanged(
        t, lambda: seller.forfait_bill(bill, t.org("BankB"), t.org("BankA"), 100, t.now, 90), R.TF_MATURED
    )
    unchanged(
        t,
        lambda: seller.forfait_bill(bill, t.org("BankB"), t.org("BankA"), 100, t.now + DAY, 101),
        Reject.BAD_PAYLOAD,
    )
    unchanged(
        t,
        lambda: seller.forfait_bill(bill, t.org("Tier2"), t.org("BankA"), 100, t.now + DAY, 90),
        F.BAD_COUNTERPARTY,
    )
    unchanged(
        t, lambda: t.p("BankB").buy_forfait(t.tf.bill_forfait_id(t.fp("nothing"))), R.TF_NO_SUCH_FORFAIT
    )
    fid = seller.forfait_bill(bill, t.org("BankB"), t.org("BankA"), 100, t.now + DAY, 90).check().id
    seller.decline_forfait(fid).check()  # withdrawn: it may be offered again, by the same holder
    # ... as the same instrument: another face, obligor or maturity is refused (the price is
    # checked against the face on record), and nothing changes.
    for face, obligor, maturity in (
        (10**9, "BankA", t.now + DAY),
        (100, "CoreCo", t.now + DAY),
        (100, "BankA", t.now + 2 * DAY),
    ):
        unchanged(
            t,
            lambda face=face, obligor=obligor, maturity=maturity: seller.forfait_bill(
                bill, t.org("BankB"), t.org(obligor), face, maturity, 95
            ),
            Reject.BAD_PAYLOAD,
        )
    seller.forfait_bill(bill, t.org("BankB"), t.org("BankA"), 100, t.now + DAY, 95).check()
    # LC drawings: only an accepted usance drawing, before maturity.
    lc = open_lc(t)  # sight
    n = honoured(t, lc, 1000)
    unchanged(t, lambda: seller.forfait_drawing(lc, n, t.org("BankB"), 900), R.TF_NOT_FORFAITABLE)
    lc2 = open_lc(t, usance_days=30)
    m = present(t, lc2, 1000)
    unchanged(t, lambda: seller.forfait_drawing(lc2, m, t.org("BankB"), 900), R.TF_NOT_FORFAITABLE)
    unchanged(t, lambda: seller.forfait_drawing(lc2, 7, t.org("BankB"), 900), R.TF_NO_SUCH_PRESENTATION)
    unchanged(t, lambda: seller.forfait_drawing(bytes(16), 0, t.org("BankB"), 900), R.TF_NO_SUCH_LC)


# --- malformed transactions --------------------------------------------------------------------------


def _raw(t: TW, name: str, op: int, payload: bytes, writes: set[bytes]) -> Result:
    p = t.p(name)
    tx = make_tx(
        t.w.ledger.chain_id, op, p.pk, t.w.ledger.nonce(p.pk), member_reads(p.pk, p.org), writes, payload
    )
    return p.send(tx)


def test_malformed_payloads_are_bad_payload_and_change_nothing(t1):
    t = t1
    lc = open_lc(t)
    n = present(t, lc, 1000)
    fid = c.forfait_id(c.ForfaitKind.BILL, t.fp("bill"))
    lc_keys = {c.lc_key(lc), c.presentation_key(lc, n), c.amendment_key(lc, 0), c.presentation_key(lc, n + 1)}
    keys = lc_keys | {c.forfait_key(fid), c.guarantee_key(bytes(16)), c.receivable_key(bytes(32))}
    good_present = (
        lc
        + bytes((n + 1,))
        + (5).to_bytes(8, "little")
        + (t.now - DAY).to_bytes(8, "little")
        + b"\x01"
        + b"\x01"
        + t.fp("d")
    )
    cases = {
        "empty": b"",
        "short": b"\x01" * 10,
        "long": b"\x01" * 300,
        "presentation: zero documents": good_present[:33] + b"\x00",
        "presentation: unknown type": good_present[:34] + b"\x63" + t.fp("d"),
        "presentation: the same fingerprint twice": good_present[:33] + b"\x02" + (b"\x01" + t.fp("d")) * 2,
        "presentation: a zero fingerprint": good_present[:34] + b"\x01" + bytes(32),
        "presentation: count past the bytes": good_present[:33] + b"\x03" + b"\x01" + t.fp("d"),
    }
    for op in range(192, 256):
        if op not in apps.resolve(APPS).ops:
            continue
        for what, payload in cases.items():
            if what.startswith("presentation") and op != c.OP_LC_PRESENT:
                continue
            name = "BankA" if op in (193, 196, 199, 201, 202, 203, 208, 210, 211, 217, 233) else "Tier1"
            r = unchanged(t, functools.partial(_raw, t, name, op, payload, keys), Reject.BAD_PAYLOAD)
            assert r.code == Reject.BAD_PAYLOAD, (op, what)
    bad_forfait = bytes((3,)) + bytes(32) + bytes(32)
    unchanged(t, lambda: _raw(t, "BankB", c.OP_W_ACCEPT, bad_forfait, keys), Reject.BAD_PAYLOAD)
    unpadded = c.drawing_forfait_id(lc, n)[:-1] + b"\x01" + bytes(32)
    unchanged(t, lambda: _raw(t, "BankB", c.OP_W_ACCEPT, unpadded, keys), Reject.BAD_PAYLOAD)


def test_an_unknown_key_is_not_a_member(t1):
    t = t1
    stranger = t.tf.party(t.w.ledger.suite.keys_from_seed(b"stranger".ljust(32, b"\0")))
    unchanged(t, lambda: stranger.apply(terms(t)), F.NOT_A_MEMBER)
    unchanged(
        t,
        lambda: stranger.assign(t.fp("x"), t.org("CoreCo"), t.org("BankA"), 1, t.now + DAY, 0, True),
        F.NOT_A_MEMBER,
    )


def test_records_refuse_damaged_values():
    lc = Lc(*(bytes(16),) * 4, *(1,) * 19, (Entry(1, 2, 3, bytes(16), 255, 4, bytes(32)),))
    assert Lc.decode(lc.encode()) == lc
    for raw in (lc.encode()[:-1], lc.encode() + b"\0", b""):
        with pytest.raises(RecordError):
            Lc.decode(raw)
    p = Presentation(*(1,) * 14, bytes(16), ((1, bytes(32)),))
    assert Presentation.decode(p.encode()) == p
    with pytest.raises(RecordError):
        Presentation.decode(p.encode()[:-3])
    r = Receivable(*(bytes(16),) * 3, *(1,) * 10, ())
    assert Receivable.decode(r.encode()) == r
    w = Forfait(1, bytes(32), *(bytes(16),) * 3, 1, 1, 1, 1, 1, ())
    assert Forfait.decode(w.encode()) == w


# --- the worked example -------------------------------------------------------------------------------


def test_the_documented_example_runs(capsys):
    runpy.run_path(str(DOCS / "tradefin_example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert (
        "TF_DISCREPANCIES_PRESENT" in out
        and "TF_RECEIVABLE_ASSIGNED" in out
        and "TF_EXCEEDS_AVAILABLE" in out
    )
    assert (
        "paid to Tier1" in out
        and "events: APPLIED ISSUED ADVISED PRESENTED" in out
        and "SETTLED to BankB" in out
    )
