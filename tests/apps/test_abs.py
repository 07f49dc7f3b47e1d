"""ABS pools with servicing reports (issue 20, item 3: ``tierchain.apps.abs``), in both crypto
suites for the main flow.

Checked: an originator registers loans, receivables and leases; their servicer records
repayments, prepayments, arrears, defaults and recoveries with the outstanding principal
tracked exactly; assets are selected into a pool against its criteria, the pool is closed,
offered to and accepted by a trustee, who then appoints a backup servicer; the pool's
penetration lists every asset with every cash flow; statistics and the servicing report come
from chain data. Every refusal of every op is named and changes no state (the classic
duplicate-pooling fraud among them); malformed payloads are BAD_PAYLOAD; the worked example
runs. Conservation and brute-force statistics: test_abs_property.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from finance_world import kp
from sharing_world import World, world
from tierchain.apps.abs import assets, pools, report, stats
from tierchain.apps.abs import codes as c
from tierchain.apps.abs.client import Abs, AbsParty, roles_mask
from tierchain.apps.abs.codes import AbsReject as R
from tierchain.apps.abs.codes import AssetKind, AssetStatus, Criteria, EventKind, PoolStatus
from tierchain.apps.finance.client import SuiteMismatch
from tierchain.apps.finance.codes import FinanceReject as F
from tierchain.engine import apps
from tierchain.errors import Reject

SUITES = ("ed25519-blake3", "sm2-sm3")
ABS_APPS = ("accounts", "xshard", "finance", "abs")
DOCS = Path(__file__).parents[2] / "docs"
DAY = 86_400_000
T0 = int(dt.datetime(2026, 1, 10, tzinfo=dt.UTC).timestamp()) * 1000  # the first block time
REF_KEY = bytes(range(32))  # the originator's reference key (keyed fingerprints)
ABS_ORGS = {
    "AutoFin": ("originator", "servicer"),  # originates and services its own loans
    "LeaseCo": ("originator",),
    "ServCo": ("servicer",),
    "TrustCo": ("trustee",),
    "TrustTwo": ("trustee",),
}
ALL_KINDS = sum(1 << k for k in AssetKind)
WIDE = Criteria(max_principal=10**12, min_rate_bp=0, max_rate_bp=10_000, max_remaining_months=600,
                kinds=ALL_KINDS, max_assets=1000)  # fmt: skip


@dataclasses.dataclass
class AbsWorld:
    w: World
    abs: Abs
    keys: dict

    def p(self, name: str) -> AbsParty:
        return self.abs.party(self.keys[name])

    def org(self, name: str) -> bytes:
        return self.abs.org_id(name)

    @property
    def state(self) -> dict:
        return self.w.ledger.state

    def at(self, ms: int) -> None:
        """The next blocks' time."""
        self.w.ledger.timestamp_ms = ms


def abs_world(crypto: str = "ed25519-blake3") -> AbsWorld:
    w = world(crypto, apps=ABS_APPS)
    a = Abs(w.ledger)
    keys = {**w.keys, **{name: kp(name, crypto) for name in ABS_ORGS}}
    for name, roles in ABS_ORGS.items():
        assert a.propose_admit(w.node, name, roles, keys[name].public_key).ok
    w.ledger.timestamp_ms = T0
    return AbsWorld(w, a, keys)


@pytest.fixture(params=SUITES)
def aw(request) -> AbsWorld:
    return abs_world(request.param)


@pytest.fixture
def ew() -> AbsWorld:
    """One suite: for the refusal tests (the flow runs in both)."""
    return abs_world()


def register(
    aw: AbsWorld,
    contract: str = "LN-0001",
    *,
    who: str = "AutoFin",
    servicer: str = "ServCo",
    kind: int = AssetKind.LOAN,
    principal: int = 120_000_00,
    rate_bp: int = 899,
    start_ms: int = T0 - 40 * DAY,
    term: int = 12,
    freq: int = 1,
    file_id: bytes = c.ZERO_ID,
):
    fp = aw.abs.fingerprint
    return aw.p(who).register(
        kind, principal, rate_bp, start_ms, term, freq, servicer=aw.org(servicer),
        contract_fp=fp(REF_KEY, contract), obligor_fp=fp(REF_KEY, "ID " + contract), file_id=file_id,
    )  # fmt: skip


def unchanged(aw: AbsWorld, attempt, code):
    """``attempt`` is refused with ``code`` and changes no state but the sender's nonce."""
    before = {k: v for k, v in aw.state.items() if not k.startswith(b"\x00")}
    result = attempt()
    result = result[-1] if isinstance(result, list) else result
    assert result.code == code, (result.code, code)
    assert {k: v for k, v in aw.state.items() if not k.startswith(b"\x00")} == before
    return result


def args(p: AbsParty) -> tuple[int, bytes, bytes, int]:
    return p._args()


# --- the flow ------------------------------------------------------------------------------------


def test_the_app_claims_what_the_brief_gives_it():
    app = apps.find("abs")
    assert (app.op_codes, app.reject_codes, app.requires) == (range(160, 192), range(352, 416), ("finance",))
    assert all(r.name.startswith("ABS_") for r in app.rejects)
    assert {r.name: r.bit for r in app.roles} == {"originator": 13, "servicer": 14}
    assert all(d.startswith("tierchain 2026 abs ") for d in app.domains)
    assert [p.prefix for p in app.placement] == [b"ab/"]
    # beside finance, sharing and the default apps
    apps.resolve(("accounts", "xshard", "finance", "sharing", "abs"))
    apps.resolve(("accounts", "xshard", "finance_confidential", "abs"))


def test_an_auto_loan_pool_from_origination_to_trust(aw):
    orig, serv, trust = aw.p("AutoFin"), aw.p("ServCo"), aw.p("TrustCo")
    file_id = bytes(range(16))  # the sharing app's encrypted loan file (stored as given)
    a1 = register(aw, "LN-1", file_id=file_id).check().id
    a2 = register(aw, "LN-2", principal=60_000_00, rate_bp=1_050, term=24).check().id
    a3 = register(aw, "RC-3", kind=AssetKind.RECEIVABLE, principal=30_000_00, term=6, freq=6).check().id
    assert a1[:8] == a2[:8] == aw.org("AutoFin")[:8]  # the originator's book tag: one shard
    asset = aw.abs.asset(a1)
    assert (asset.outstanding, asset.status, asset.file_id, asset.installments) == (
        120_000_00, AssetStatus.PERFORMING, file_id, 12,
    )  # fmt: skip

    # Servicing: installment 1 of loan 1, a partial prepayment of loan 2.
    r = serv.repay(a1, 1, 10_000_00, 899_00, value_ms=T0 - 10 * DAY).check()
    assert r.receipt.events[0].topic == b"abs.cashflow"
    serv.prepay(a2, 5_000_00, value_ms=T0 - 5 * DAY).check()
    assert aw.abs.asset(a1).outstanding == 110_000_00 and aw.abs.asset(a2).outstanding == 55_000_00

    # A pool for auto loans and receivables, selection, cut-off, transfer to the trust.
    criteria = dataclasses.replace(WIDE, max_principal=200_000_00, max_rate_bp=1_200, max_remaining_months=24)
    pid = orig.create_pool(criteria, "AUTO 2026-1").check().id
    assert [r.code for r in orig.select(pid, [a1, a2, a3])] == [Reject.OK]
    pool = aw.abs.pool(pid)
    assert (pool.assets, pool.cutoff_balance, pool.status) == (3, 110_000_00 + 55_000_00 + 30_000_00, 1)
    orig.close(pid).check()
    orig.transfer(pid, aw.org("TrustCo")).check()
    assert aw.abs.pool(pid).status == PoolStatus.OFFERED
    trust.accept(pid).check()
    assert aw.abs.pool(pid).status == PoolStatus.IN_TRUST and aw.abs.pool(pid).trustee == aw.org("TrustCo")

    # After the transfer: arrears, a default and a recovery on loan 2; loan 3 paid off.
    aw.at(T0 + 60 * DAY)
    serv.overdue(a2, 2_900_00, 15, value_ms=T0 + 20 * DAY).check()
    serv.overdue(a2, 5_800_00, 45, value_ms=T0 + 50 * DAY).check()
    serv.default(a2, value_ms=T0 + 55 * DAY).check()
    serv.recover(a2, 20_000_00, value_ms=T0 + 58 * DAY).check()
    serv.repay(a3, 1, 30_000_00, 1_200_00, value_ms=T0 + 30 * DAY).check()
    l2, l3 = aw.abs.asset(a2), aw.abs.asset(a3)
    assert (l2.status, l2.outstanding, l2.defaulted, l2.recovered, l2.loss) == (
        AssetStatus.DEFAULTED, 0, 55_000_00, 20_000_00, 35_000_00,
    )  # fmt: skip
    assert (l3.status, l3.outstanding, l3.periods_paid, l3.remaining_months) == (
        AssetStatus.PAID_OFF,
        0,
        1,
        0,
    )

    # Penetration: every asset and every cash flow, down to the recording tx.
    pen = aw.abs.penetration(pid)
    assert pen["pool"]["trustee_name"] == "TrustCo" and pen["pool"]["status"] == "IN_TRUST"
    by_id = {x["id"]: x for x in pen["assets"]}
    assert [e["kind"] for e in by_id[a2.hex()]["events"]] == [
        "PREPAYMENT",
        "OVERDUE",
        "OVERDUE",
        "DEFAULT",
        "RECOVERY",
    ]
    assert by_id[a1.hex()]["file_id"] == file_id.hex() and by_id[a1.hex()]["cutoff_balance"] == 110_000_00
    assert [e["outstanding_after"] for e in by_id[a2.hex()]["events"]] == [
        55_000_00,
        55_000_00,
        55_000_00,
        0,
        0,
    ]

    # Statistics, exact.
    st = aw.abs.stats(pid)
    principal = 120_000_00 + 60_000_00 + 30_000_00
    assert (st.assets, st.performing, st.defaulted, st.paid_off) == (3, 1, 1, 1)
    assert st.repaid_ratio == Fraction(10_000_00 + 5_000_00 + 30_000_00, principal)
    assert st.default_by_count == Fraction(1, 3) and st.default_by_principal == Fraction(55_000_00, principal)
    assert st.recovery == Fraction(20, 55) and st.net_loss == Fraction(35_000_00, principal)
    assert st.wa_rate_bp == 899 and st.wa_remaining_months == 11  # only loan 1 has a balance
    assert st.pool_factor == Fraction(110_000_00, 195_000_00)
    assert (
        st.principal == st.repaid + st.outstanding + st.charged_off
        and st.charged_off == st.recovered + st.loss
    )

    # The trustee appoints a backup servicer (AutoFin) for the pool's live loan.
    trust.set_servicer([a1], aw.org("AutoFin")).check()
    assert aw.abs.asset(a1).servicer == aw.org("AutoFin")
    unchanged(aw, lambda: serv.repay(a1, 2, 10_000_00, 800_00, value_ms=T0 + 59 * DAY), R.ABS_NOT_SERVICER)
    orig.repay(a1, 2, 10_000_00, 800_00, value_ms=T0 + 59 * DAY).check()
    assert [a.hex() for a, _ in aw.abs.assets_of(aw.org("AutoFin"))] == sorted(x.hex() for x in (a1, a2, a3))
    assert [p for p, _ in aw.abs.pools_of(aw.org("AutoFin"))] == [pid]


def test_a_party_of_another_suite_is_refused_before_signing(aw):
    other = "sm2-sm3" if aw.abs.suite.name == "ed25519-blake3" else "ed25519-blake3"
    with pytest.raises(SuiteMismatch):
        aw.abs.party(kp("AutoFin", other))


# --- registration refusals ------------------------------------------------------------------------


def test_registration_refusals_change_nothing(ew):
    register(ew, "LN-1").check()
    unchanged(ew, lambda: register(ew, "LN-1"), R.ABS_ASSET_EXISTS)
    unchanged(ew, lambda: register(ew, "LN-2", who="ServCo"), F.ROLE_MISSING)  # a servicer only
    unchanged(ew, lambda: register(ew, "LN-2", servicer="TrustCo"), F.BAD_COUNTERPARTY)  # not a servicer
    for bad in (
        dict(principal=0),
        dict(rate_bp=10_001),
        dict(term=12, freq=5),  # the term is not a multiple of the spacing
        dict(term=601, freq=1),
        dict(term=6, freq=12),
        dict(start_ms=0),
        dict(kind=9),
    ):
        unchanged(ew, lambda bad=bad: register(ew, "LN-3", **bad), R.ABS_BAD_TERMS)
    # An unknown servicer org, an unknown key, a zero obligor fingerprint, a malformed payload.
    orig = ew.p("AutoFin")
    no_org = ew.abs.org_id("Nobody Ltd")
    unchanged(
        ew,
        lambda: orig.register(AssetKind.LOAN, 1, 1, 1, 1, 1, servicer=no_org, contract_fp=b"\1" * 32,
                              obligor_fp=b"\2" * 32),
        F.NO_SUCH_ORG,
    )  # fmt: skip
    serv = ew.org("ServCo")
    unchanged(
        ew,
        lambda: orig.register(1, 1, 1, 1, 1, 1, servicer=serv, contract_fp=b"\1" * 32, obligor_fp=bytes(32)),
        R.ABS_BAD_TERMS,
    )
    stranger = ew.abs.party(kp("stranger"))
    unchanged(
        ew,
        lambda: stranger.register(
            1, 1, 1, 1, 1, 1, servicer=serv, contract_fp=b"\1" * 32, obligor_fp=b"\2" * 32
        ),
        F.NOT_A_MEMBER,
    )
    t, _ = assets.register(*args(orig), 1, 1, 1, 1, 1, 1, ew.org("ServCo"), b"\1" * 32, b"\2" * 32)
    t = dataclasses.replace(t, payload=t.payload[:-1])
    unchanged(ew, lambda: orig.send(t), Reject.BAD_PAYLOAD)


def test_the_contract_fingerprint_is_keyed_and_fixes_the_id(ew):
    fp = ew.abs.fingerprint(REF_KEY, "LN-1")
    assert fp != ew.abs.fingerprint(bytes(32), "LN-1") and fp != ew.abs.fingerprint(REF_KEY, "LN-2")
    assert register(ew, "LN-1").check().id == c.asset_id(ew.org("AutoFin"), fp, suite=ew.abs.suite)
    # Another originator may hold a contract with the same number: another book, another id.
    r = register(ew, "LN-1", who="LeaseCo", kind=AssetKind.LEASE).check()
    assert r.id[:8] == ew.org("LeaseCo")[:8]
    with pytest.raises(ValueError):
        ew.abs.fingerprint(b"short", "LN-1")


# --- cash-flow refusals ------------------------------------------------------------------------


def test_cash_flow_refusals_change_nothing(ew, monkeypatch):
    serv = ew.p("ServCo")
    aid = register(ew, "LN-1", principal=12_000, term=12).check().id
    start = T0 - 40 * DAY
    unchanged(ew, lambda: ew.p("AutoFin").repay(aid, 1, 1_000, 90, value_ms=T0), R.ABS_NOT_SERVICER)
    unchanged(ew, lambda: ew.p("TrustCo").repay(aid, 1, 1_000, 90, value_ms=T0), F.ROLE_MISSING)
    unchanged(ew, lambda: serv.repay(bytes(16), 1, 1_000, 90, value_ms=T0), R.ABS_NO_SUCH_ASSET)
    unchanged(ew, lambda: serv.repay(aid, 1, 1_000, 90, value_ms=T0 + 1), R.ABS_FUTURE_DATED)
    unchanged(ew, lambda: serv.repay(aid, 1, 1_000, 90, value_ms=start - 1), R.ABS_OUT_OF_ORDER)
    unchanged(ew, lambda: serv.repay(aid, 2, 1_000, 90, value_ms=T0), R.ABS_BAD_PERIOD)  # skips installment 1
    unchanged(ew, lambda: serv.repay(aid, 1, 12_001, 90, value_ms=T0), R.ABS_EXCEEDS_OUTSTANDING)
    unchanged(ew, lambda: serv.repay(aid, 1, 0, 0, value_ms=T0), R.ABS_BAD_AMOUNT)
    unchanged(ew, lambda: serv.prepay(aid, 0, value_ms=T0), R.ABS_BAD_AMOUNT)
    unchanged(ew, lambda: serv.overdue(aid, 0, 10, value_ms=T0), R.ABS_BAD_AMOUNT)
    unchanged(ew, lambda: serv.overdue(aid, 100, 0, value_ms=T0), R.ABS_BAD_AMOUNT)
    unchanged(ew, lambda: serv.event(aid, EventKind.DEFAULT, T0, 11_999), R.ABS_BAD_AMOUNT)  # not the balance
    unchanged(ew, lambda: serv.recover(aid, 100, value_ms=T0), R.ABS_BAD_STATE)  # not defaulted

    serv.repay(aid, 1, 1_000, 90, value_ms=T0 - 10 * DAY).check()
    # A replay of the same event (the same sequence number) and one dated before it.
    unchanged(ew, lambda: serv.event(aid, EventKind.REPAYMENT, T0, 1_000, 90, 2, seq=0), R.ABS_STALE_SEQUENCE)
    unchanged(ew, lambda: serv.repay(aid, 2, 1_000, 90, value_ms=T0 - 11 * DAY), R.ABS_OUT_OF_ORDER)
    serv.overdue(aid, 1_090, 30, value_ms=T0 - 5 * DAY).check()
    unchanged(
        ew, lambda: serv.overdue(aid, 1_090, 30, value_ms=T0), R.ABS_OUT_OF_ORDER
    )  # days past due must rise
    serv.default(aid, value_ms=T0).check()
    unchanged(ew, lambda: serv.repay(aid, 2, 1_000, 90, value_ms=T0), R.ABS_BAD_STATE)
    unchanged(ew, lambda: serv.prepay(aid, 1_000, value_ms=T0), R.ABS_BAD_STATE)
    unchanged(ew, lambda: serv.overdue(aid, 1_000, 60, value_ms=T0), R.ABS_BAD_STATE)
    unchanged(ew, lambda: serv.default(aid, value_ms=T0), R.ABS_BAD_STATE)
    unchanged(ew, lambda: serv.recover(aid, 11_001, value_ms=T0), R.ABS_EXCEEDS_OUTSTANDING)
    serv.recover(aid, 11_000, value_ms=T0).check()
    unchanged(
        ew, lambda: serv.recover(aid, 1, value_ms=T0), R.ABS_EXCEEDS_OUTSTANDING
    )  # nothing left to recover

    # Beyond the schedule, paid off, and a full log.
    b = register(ew, "LN-2", principal=2_000, term=2, freq=1).check().id
    serv.repay(b, 1, 1_000, 10, value_ms=T0).check()
    serv.repay(b, 2, 500, 10, value_ms=T0).check()  # a balloon remains
    unchanged(ew, lambda: serv.repay(b, 3, 500, 0, value_ms=T0), R.ABS_BAD_PERIOD)
    serv.prepay(b, 500, value_ms=T0).check()
    assert ew.abs.asset(b).status == AssetStatus.PAID_OFF
    unchanged(ew, lambda: serv.prepay(b, 1, value_ms=T0), R.ABS_BAD_STATE)
    d = register(ew, "LN-3").check().id
    monkeypatch.setattr(c, "events_per_asset_max", 1)
    serv.overdue(d, 10, 1, value_ms=T0).check()
    unchanged(ew, lambda: serv.overdue(d, 10, 2, value_ms=T0), R.ABS_EVENTS_FULL)


def test_a_repayment_cures_arrears_and_a_prepayment_does_not(ew):
    serv = ew.p("ServCo")
    aid = register(ew, "LN-1", principal=12_000).check().id
    serv.overdue(aid, 1_000, 10, value_ms=T0 - 9 * DAY).check()
    serv.prepay(aid, 500, value_ms=T0 - 8 * DAY).check()
    assert ew.abs.asset(aid).status == AssetStatus.OVERDUE
    serv.repay(aid, 1, 1_000, 90, value_ms=T0 - 7 * DAY).check()
    a = ew.abs.asset(aid)
    assert (a.status, a.days_past_due, a.outstanding, a.repaid) == (AssetStatus.PERFORMING, 0, 10_500, 1_500)


def test_malformed_cash_flows_are_bad_payload(ew):
    serv = ew.p("ServCo")
    aid = register(ew, "LN-1").check().id
    t = assets.cashflow(*args(serv), aid, 0, 9, T0, 1, 0, 0)  # no such event kind
    unchanged(ew, lambda: serv.send(t), Reject.BAD_PAYLOAD)
    t = assets.cashflow(*args(serv), aid, 0, 1, T0, 1, 0, 1)
    unchanged(ew, lambda: serv.send(dataclasses.replace(t, payload=t.payload + b"\0")), Reject.BAD_PAYLOAD)
    t = assets.cashflow(*args(serv), aid, 0, 2, T0, 1 << 63, 0, 0)  # above amount_max
    unchanged(ew, lambda: serv.send(t), Reject.BAD_PAYLOAD)


# --- pools -------------------------------------------------------------------------------------------


def _pool(ew: AbsWorld, criteria: Criteria = WIDE, name: str = "POOL") -> bytes:
    return ew.p("AutoFin").create_pool(criteria, name).check().id


def test_eligibility_refusals_change_nothing(ew):
    orig, serv = ew.p("AutoFin"), ew.p("ServCo")
    crit = Criteria(max_principal=100_000, min_rate_bp=500, max_rate_bp=1_500, max_remaining_months=24,
                    kinds=1 << AssetKind.LOAN, max_assets=3)  # fmt: skip
    pid = _pool(ew, crit)
    ok = register(ew, "OK", principal=100_000, rate_bp=500).check().id
    cases = {
        R.ABS_INELIGIBLE_PRINCIPAL: register(ew, "BIG", principal=100_001).check().id,
        R.ABS_INELIGIBLE_RATE: register(ew, "LOW", rate_bp=499, principal=1_000).check().id,
        R.ABS_INELIGIBLE_KIND: register(ew, "LEASE", kind=AssetKind.LEASE, principal=1_000).check().id,
        R.ABS_INELIGIBLE_TERM: register(ew, "LONG", principal=1_000, term=36).check().id,
    }
    high = register(ew, "HIGH", rate_bp=1_501, principal=1_000).check().id
    late = register(ew, "LATE", principal=1_000).check().id
    serv.overdue(late, 100, 3, value_ms=T0).check()
    dead = register(ew, "DEAD", principal=1_000).check().id
    serv.default(dead, value_ms=T0).check()
    done = register(ew, "DONE", principal=1_000, term=1).check().id
    serv.repay(done, 1, 1_000, 10, value_ms=T0).check()
    more = [(R.ABS_INELIGIBLE_RATE, high), *((R.ABS_INELIGIBLE_STATUS, x) for x in (late, dead, done))]
    for code, aid in [*cases.items(), *more]:
        # An eligible asset beside an ineligible one: the whole selection is refused.
        unchanged(ew, lambda aid=aid: orig.select(pid, [ok, aid]), code)
    # A long loan whose remaining term shrank by paid installments becomes eligible.
    long_ = register(ew, "LONG2", principal=1_200, term=36).check().id
    for i in range(1, 13):
        serv.repay(long_, i, 10, 1, value_ms=T0).check()
    assert ew.abs.asset(long_).remaining_months == 24
    assert orig.select(pid, [ok, long_])[-1].ok
    assert pools.ineligible(crit, ew.abs.asset(cases[R.ABS_INELIGIBLE_KIND])) == R.ABS_INELIGIBLE_KIND


def test_an_asset_is_never_in_two_pools(ew):
    """The classic fraud: the same receivable sold into two pools (or twice into one)."""
    orig = ew.p("AutoFin")
    aid = register(ew, "LN-1").check().id
    p1, p2 = _pool(ew, name="P1"), _pool(ew, name="P2")
    orig.select(p1, [aid])[-1].check()
    unchanged(ew, lambda: orig.select(p2, [aid]), R.ABS_ALREADY_POOLED)
    unchanged(ew, lambda: orig.select(p1, [aid]), R.ABS_ALREADY_POOLED)
    # Taken out of the open pool, it may go to the other: still one pool at a time.
    orig.remove(p1, [aid])[-1].check()
    assert ew.abs.asset(aid).pool == c.ZERO_ID and ew.abs.members(p1) == []
    assert ew.abs.pool(p1).assets == 0 and ew.abs.pool(p1).cutoff_balance == 0
    orig.select(p2, [aid])[-1].check()
    orig.close(p2).check()
    # Once the pool is closed, it cannot be taken out, and the first pool cannot take it.
    unchanged(ew, lambda: orig.remove(p2, [aid]), R.ABS_POOL_NOT_OPEN)
    unchanged(ew, lambda: orig.select(p1, [aid]), R.ABS_ALREADY_POOLED)
    # A second registration of the same contract to launder it into another pool is refused.
    unchanged(ew, lambda: register(ew, "LN-1"), R.ABS_ASSET_EXISTS)


def test_pool_refusals_change_nothing(ew):
    orig, lease = ew.p("AutoFin"), ew.p("LeaseCo")
    unchanged(ew, lambda: orig.create_pool(dataclasses.replace(WIDE, min_rate_bp=900, max_rate_bp=800), "X"),
              R.ABS_BAD_CRITERIA)  # fmt: skip
    for bad in (dict(kinds=0), dict(kinds=1), dict(max_assets=0), dict(max_principal=0),
                dict(max_remaining_months=601), dict(max_assets=c.pool_assets_max + 1)):  # fmt: skip
        unchanged(
            ew, lambda bad=bad: orig.create_pool(dataclasses.replace(WIDE, **bad), "X"), R.ABS_BAD_CRITERIA
        )
    unchanged(ew, lambda: ew.p("ServCo").create_pool(WIDE, "X"), F.ROLE_MISSING)
    with pytest.raises(ValueError):
        orig.create_pool(WIDE, "")
    a, b = register(ew, "A").check().id, register(ew, "B").check().id
    theirs = register(ew, "L", who="LeaseCo", kind=AssetKind.LEASE).check().id
    pid = _pool(ew, dataclasses.replace(WIDE, max_assets=1))
    unchanged(ew, lambda: orig.select(pid, [a, b]), R.ABS_POOL_FULL)
    unchanged(ew, lambda: orig.select(pid, [theirs]), R.ABS_NOT_ORIGINATOR)  # another originator's asset
    unchanged(ew, lambda: lease.select(pid, [theirs]), R.ABS_NOT_ORIGINATOR)  # another originator's pool
    unchanged(ew, lambda: orig.select(bytes(16), [a]), R.ABS_NO_SUCH_POOL)
    unchanged(ew, lambda: orig.select(pid, [bytes(16)]), R.ABS_NO_SUCH_ASSET)
    t = pools.select(*args(orig), pid, [a, a])
    unchanged(ew, lambda: orig.send(t), R.ABS_DUPLICATE_ASSET)
    t = pools.select(*args(orig), pid, [])
    unchanged(ew, lambda: orig.send(t), Reject.BAD_PAYLOAD)
    unchanged(ew, lambda: orig.remove(pid, [a]), R.ABS_NOT_IN_POOL)
    unchanged(ew, lambda: orig.close(pid), R.ABS_POOL_EMPTY)
    unchanged(ew, lambda: orig.transfer(pid, ew.org("TrustCo")), R.ABS_POOL_NOT_CLOSED)
    orig.select(pid, [a])[-1].check()
    unchanged(ew, lambda: lease.close(pid), R.ABS_NOT_ORIGINATOR)
    orig.close(pid).check()
    unchanged(ew, lambda: orig.close(pid), R.ABS_POOL_NOT_OPEN)
    unchanged(ew, lambda: orig.select(pid, [b]), R.ABS_POOL_NOT_OPEN)
    unchanged(ew, lambda: ew.p("TrustCo").accept(pid), R.ABS_NOT_OFFERED)
    unchanged(ew, lambda: orig.transfer(pid, ew.org("BankA")), F.BAD_COUNTERPARTY)  # not a trustee
    unchanged(ew, lambda: orig.transfer(pid, ew.abs.org_id("Nobody")), F.NO_SUCH_ORG)
    orig.transfer(pid, ew.org("TrustCo")).check()
    unchanged(ew, lambda: ew.p("TrustTwo").accept(pid), R.ABS_NOT_TRUSTEE)
    unchanged(ew, lambda: ew.p("FundX").accept(pid), F.ROLE_MISSING)
    orig.transfer(pid, ew.org("TrustTwo")).check()  # re-offered before acceptance
    unchanged(ew, lambda: ew.p("TrustCo").accept(pid), R.ABS_NOT_TRUSTEE)
    ew.p("TrustTwo").accept(pid).check()
    unchanged(ew, lambda: ew.p("TrustTwo").accept(pid), R.ABS_NOT_OFFERED)
    unchanged(ew, lambda: orig.transfer(pid, ew.org("TrustCo")), R.ABS_IN_TRUST)
    unchanged(ew, lambda: orig.close(pid), R.ABS_IN_TRUST)
    for bad in (b"", b"\0" * 15):
        t = pools.close(*args(orig), pid)
        unchanged(ew, lambda bad=bad, t=t: orig.send(dataclasses.replace(t, payload=bad)), Reject.BAD_PAYLOAD)


def test_an_originator_that_is_its_own_trustee_is_refused(ew):
    w = ew.w
    assert ew.abs.propose_roles(w.node, ew.org("AutoFin"), ("originator", "servicer", "trustee")).ok
    orig = ew.p("AutoFin")
    pid = _pool(ew)
    orig.select(pid, [register(ew, "A").check().id])[-1].check()
    orig.close(pid).check()
    unchanged(ew, lambda: orig.transfer(pid, ew.org("AutoFin")), F.BAD_COUNTERPARTY)


def test_servicer_appointment_refusals_change_nothing(ew):
    orig, trust = ew.p("AutoFin"), ew.p("TrustCo")
    a, b = register(ew, "A").check().id, register(ew, "B").check().id
    unchanged(ew, lambda: orig.set_servicer([a], ew.org("ServCo")), R.ABS_SAME_SERVICER)
    unchanged(ew, lambda: orig.set_servicer([a], ew.org("TrustCo")), F.BAD_COUNTERPARTY)
    unchanged(ew, lambda: ew.p("LeaseCo").set_servicer([a], ew.org("AutoFin")), R.ABS_NOT_ORIGINATOR)
    orig.set_servicer([b], ew.org("AutoFin")).check()  # unpooled: the originator's call
    pid = _pool(ew)
    orig.select(pid, [a])[-1].check()
    t = assets.set_servicer(*args(orig), pid, ew.org("AutoFin"), [b])  # b is in no pool
    unchanged(ew, lambda: orig.send(t), R.ABS_NOT_IN_POOL)
    orig.close(pid).check()
    orig.transfer(pid, ew.org("TrustCo")).check()
    unchanged(
        ew, lambda: trust.set_servicer([a], ew.org("AutoFin")), R.ABS_NOT_ORIGINATOR
    )  # not yet its trust
    trust.accept(pid).check()
    unchanged(ew, lambda: orig.set_servicer([a], ew.org("AutoFin")), R.ABS_IN_TRUST)
    unchanged(ew, lambda: ew.p("TrustTwo").set_servicer([a], ew.org("AutoFin")), R.ABS_NOT_TRUSTEE)
    trust.set_servicer([a], ew.org("AutoFin")).check()
    t = assets.set_servicer(*args(trust), b"\7" * 16, ew.org("ServCo"), [a])
    unchanged(ew, lambda: trust.send(t), R.ABS_NO_SUCH_POOL)
    t = assets.set_servicer(*args(trust), pid, ew.org("ServCo"), [a])
    unchanged(ew, lambda: trust.send(dataclasses.replace(t, payload=t.payload[:20])), Reject.BAD_PAYLOAD)


def test_large_pools_select_in_batches(ew):
    orig = ew.p("AutoFin")
    ids = [register(ew, f"LN-{i}", principal=1_000 + i).check().id for i in range(c.select_per_tx_max + 3)]
    pid = _pool(ew)
    results = orig.select(pid, ids)
    assert [r.code for r in results] == [Reject.OK, Reject.OK]
    assert ew.abs.pool(pid).assets == len(ids)
    assert ew.abs.pool(pid).cutoff_balance == sum(1_000 + i for i in range(len(ids)))
    assert sorted(aid for aid, _ in ew.abs.members(pid)) == sorted(ids)


# --- statistics, report, example ----------------------------------------------------------------------


def _reported_pool(ew: AbsWorld) -> bytes:
    orig, serv = ew.p("AutoFin"), ew.p("ServCo")
    start = int(dt.datetime(2025, 10, 5, tzinfo=dt.UTC).timestamp()) * 1000
    ids = [
        register(ew, f"LN-{i}", principal=10_000 * (i + 1), start_ms=start, term=6).check().id
        for i in range(4)
    ]
    pid = _pool(ew, name="AUTO <2026-1>")
    orig.select(pid, ids)[-1].check()
    orig.close(pid).check()
    month = 31 * DAY
    ew.at(start + 6 * month)
    for i in range(1, 4):
        serv.repay(ids[0], i, 1_000, 100, value_ms=start + i * month).check()
    serv.overdue(ids[1], 2_000, 31, value_ms=start + month + DAY).check()
    serv.default(ids[1], value_ms=start + 3 * month).check()
    serv.recover(ids[1], 5_000, value_ms=start + 4 * month).check()
    serv.prepay(ids[2], 30_000, 50, value_ms=start + 2 * month).check()
    serv.overdue(ids[3], 3_000, 5, value_ms=start + 5 * month).check()
    return pid


def test_pool_statistics_and_the_performance_series(ew):
    pid = _reported_pool(ew)
    st = ew.abs.stats(pid)
    assert (st.performing, st.overdue, st.defaulted, st.paid_off) == (1, 1, 1, 1)
    assert st.outstanding == 7_000 + 40_000 and st.overdue_by_principal == Fraction(40_000, 47_000)
    assert st.overdue_by_count == Fraction(1, 4) and st.default_by_principal == Fraction(20_000, 100_000)
    assert st.to_json()["repaid_ratio"] == {"fraction": "33/100", "bp": 3300}
    series = ew.abs.performance(pid)
    assert [p.month for p in series] == ["2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]
    assert [p.outstanding for p in series] == [100_000, 99_000, 68_000, 47_000, 47_000, 47_000]
    assert [p.defaults for p in series] == [0, 0, 0, 20_000, 20_000, 20_000]
    assert [p.recoveries for p in series] == [0, 0, 0, 0, 5_000, 5_000]
    assert [p.overdue for p in series] == [0, 1, 1, 0, 0, 1]


def test_the_servicing_report_is_json_html_and_charts_from_chain_data(ew, tmp_path):
    pid = _reported_pool(ew)
    data = report.report_data(ew.abs, pid)
    assert data == report.report_data(ew.abs, pid)  # a function of chain state
    assert data["stats"] == ew.abs.stats(pid).to_json()
    paths = report.write_report(data, tmp_path / "out")
    assert json.loads(Path(paths["json"]).read_text()) == json.loads(json.dumps(data))
    for png in ("outstanding_png", "defaults_png"):
        assert Path(paths[png]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = Path(paths["html"]).read_text()
    assert 'src="outstanding.png"' in page and 'src="defaults.png"' in page
    assert "AUTO &lt;2026-1&gt;" in page and "33.00% (33/100)" in page  # escaped, exact


def test_the_report_says_in_one_line_that_matplotlib_is_missing(ew, tmp_path, monkeypatch):
    pid = _reported_pool(ew)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(report.ReportUnavailable, match="pip install 'tierchain\\[reports\\]'"):
        report.write_report(report.report_data(ew.abs, pid), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_disclosure_seam_lists_the_amounts_a_prover_commits_to(ew):
    pid = _reported_pool(ew)
    rows = [(aid, a) for aid, a, _ in ew.abs.pool_assets(pid)]
    inputs = stats.disclosure_inputs(rows)
    assert [x[0] for x in inputs] == sorted(aid for aid, _ in rows)
    repaid, principal = sum(x[2] for x in inputs), sum(x[1] for x in inputs)
    assert stats.bp(Fraction(repaid, principal)) == stats.bp(ew.abs.stats(pid).repaid_ratio)


def test_roles_and_codes_helpers():
    assert roles_mask(("originator", "trustee")) == (1 << 13) | (1 << 9)
    assert c.reject_of(371) is R.ABS_ALREADY_POOLED and c.reject_of(98) is F.ROLE_MISSING
    assert (
        c.reject_named("ABS_IN_TRUST") is R.ABS_IN_TRUST
        and c.reject_named("BAD_PAYLOAD") is Reject.BAD_PAYLOAD
    )
    with pytest.raises(c.RecordError):
        c.Asset.decode(b"\0" * 10)
    with pytest.raises(c.RecordError):
        c.Pool.decode(c.Pool(b"\1" * 16, bytes(16), 1, WIDE, 0, 0, 0, 0, 0, 0, b"ab").encode() + b"x")


def test_the_worked_example_runs(capsys):
    import runpy

    runpy.run_path(str(DOCS / "abs_example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "ABS_ALREADY_POOLED" in out and "ABS_EXCEEDS_OUTSTANDING" in out and "ABS_INELIGIBLE_STATUS" in out
    assert "report.html" in out
