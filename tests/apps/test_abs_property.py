"""ABS conservation properties (``tierchain.apps.abs``).

* Over seeded random histories on a ledger — registrations, valid and invalid cash-flow
  events of every kind, selections (eligible or not, into this or another pool), removals,
  closes — every receipt's code equals an independent model's, and after every step: each
  asset's record equals the model's; ``principal == repaid + outstanding + charged off`` and
  ``charged off == recovered + loss`` with ``loss >= 0``; each asset is in at most one pool
  and its record names exactly the pool whose member record it has; each pool's count and
  cut-off balance are its members'; and the pool statistics equal a brute-force
  recomputation that replays every asset's event log from its terms.
* For the pure rule set (``assets.apply_event``), hypothesis: any sequence of events keeps
  an asset balanced, and a refused event is refused with an ``AbsReject`` code.
"""

from __future__ import annotations

import dataclasses
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_abs import DAY, T0, WIDE, AbsWorld, abs_world, register

from tierchain.apps.abs import assets
from tierchain.apps.abs import codes as c
from tierchain.apps.abs.codes import AbsReject as R
from tierchain.apps.abs.codes import Asset, AssetKind, AssetStatus, Event, EventKind
from tierchain.apps.sharing.ledger import scan_all
from tierchain.engine.execute import OpFailed
from tierchain.errors import Reject

P, OV, D, X = AssetStatus.PERFORMING, AssetStatus.OVERDUE, AssetStatus.DEFAULTED, AssetStatus.PAID_OFF


@dataclasses.dataclass
class M:
    """The model of one asset, written from the rules table, not from the handler."""

    principal: int
    rate: int
    term: int
    freq: int
    start: int
    out: int = 0
    repaid: int = 0
    interest: int = 0
    defaulted: int = 0
    recovered: int = 0
    status: int = P
    paid: int = 0
    dpd: int = 0
    n: int = 0
    last: int = 0
    pool: bytes = c.ZERO_ID

    def predict(self, kind: int, value: int, now: int, pr: int, it: int, aux: int):
        """The code the chain must answer, and the model after the event if OK."""
        if value > now:
            return R.ABS_FUTURE_DATED, None
        if value < max(self.start, self.last):
            return R.ABS_OUT_OF_ORDER, None
        m = dataclasses.replace(self, n=self.n + 1, last=value)
        if kind == EventKind.RECOVERY:
            if self.status != D:
                return R.ABS_BAD_STATE, None
            if pr == 0 or it or aux:
                return R.ABS_BAD_AMOUNT, None
            if self.recovered + pr > self.defaulted:
                return R.ABS_EXCEEDS_OUTSTANDING, None
            m.recovered += pr
            return Reject.OK, m
        if self.status not in (P, OV):
            return R.ABS_BAD_STATE, None
        if kind == EventKind.OVERDUE:
            if pr == 0 or it or not 1 <= aux <= c.days_past_due_max:
                return R.ABS_BAD_AMOUNT, None
            if self.status == OV and aux <= self.dpd:
                return R.ABS_OUT_OF_ORDER, None
            m.status, m.dpd = OV, aux
            return Reject.OK, m
        if kind == EventKind.DEFAULT:
            if it or aux or pr != self.out:
                return R.ABS_BAD_AMOUNT, None
            m.status, m.defaulted, m.out = D, self.out, 0
            return Reject.OK, m
        if kind == EventKind.REPAYMENT:
            if pr == 0 and it == 0:
                return R.ABS_BAD_AMOUNT, None
            if aux != self.paid + 1 or aux > self.term // self.freq:
                return R.ABS_BAD_PERIOD, None
        elif pr == 0 or aux:
            return R.ABS_BAD_AMOUNT, None
        if pr > self.out:
            return R.ABS_EXCEEDS_OUTSTANDING, None
        m.out, m.repaid, m.interest = self.out - pr, self.repaid + pr, self.interest + it
        if kind == EventKind.REPAYMENT:
            m.status, m.paid, m.dpd = P, aux, 0
        if m.out == 0:
            m.status, m.dpd = X, 0
        return Reject.OK, m

    def matches(self, a: Asset) -> bool:
        return (a.outstanding, a.repaid, a.interest, a.defaulted, a.recovered, a.status, a.periods_paid,
                a.days_past_due, a.events, a.last_ms, a.pool) == (
            self.out, self.repaid, self.interest, self.defaulted, self.recovered, self.status, self.paid,
            self.dpd, self.n, self.last, self.pool)  # fmt: skip


def brute_force_stats(aw: AbsWorld, pool_id: bytes) -> dict:
    """The pool's statistics from its member records and every asset's replayed event log."""
    prefix = c.members_prefix(pool_id)
    rows = []
    for key, raw in scan_all(aw.abs.ledger, prefix):
        aid = key[len(prefix) :]
        terms = c.Asset.decode(aw.state[c.asset_key(aid)])  # terms only: balances are replayed
        out, repaid, charged, recovered, status, paid = terms.principal, 0, 0, 0, P, 0
        for _, ev in scan_all(aw.abs.ledger, c.events_prefix(aid)):
            e = Event.decode(ev)
            if e.kind in (EventKind.REPAYMENT, EventKind.PREPAYMENT):
                out, repaid = out - e.principal, repaid + e.principal
                paid += e.kind == EventKind.REPAYMENT
                status = X if out == 0 else (P if e.kind == EventKind.REPAYMENT else status)
            elif e.kind == EventKind.OVERDUE:
                status = OV
            elif e.kind == EventKind.DEFAULT:
                charged, out, status = out, 0, D
            else:
                recovered += e.principal
            assert out == e.outstanding_after
        rows.append(dict(p=terms.principal, out=out, rep=repaid, ch=charged, rec=recovered, st=status,
                         rate=terms.rate_bp, rem=terms.term_months - paid * terms.freq_months,
                         cut=c.Member.decode(raw).cutoff_balance))  # fmt: skip

    def r(a: int, b: int) -> Fraction:
        return Fraction(a, b) if b else Fraction(0)

    n = len(rows)
    tp, to = sum(x["p"] for x in rows), sum(x["out"] for x in rows)
    over = [x for x in rows if x["st"] == OV]
    return {
        "assets": n,
        "repaid_ratio": r(sum(x["rep"] for x in rows), tp),
        "pool_factor": r(to, sum(x["cut"] for x in rows)),
        "overdue_by_count": r(len(over), n),
        "overdue_by_principal": r(sum(x["out"] for x in over), to),
        "default_by_count": r(sum(x["st"] == D for x in rows), n),
        "default_by_principal": r(sum(x["ch"] for x in rows), tp),
        "recovery": r(sum(x["rec"] for x in rows), sum(x["ch"] for x in rows)),
        "net_loss": r(sum(x["ch"] - x["rec"] for x in rows), tp),
        "wa_rate_bp": r(sum(x["rate"] * x["out"] for x in rows), to),
        "wa_remaining_months": r(sum(x["rem"] * x["out"] for x in rows), to),
    }


def check_invariants(aw: AbsWorld, model: dict[bytes, M], pools: list[bytes]) -> None:
    for aid, m in model.items():
        a = aw.abs.asset(aid)
        assert m.matches(a), (a, m)
        assert a.principal == a.repaid + a.outstanding + a.defaulted
        assert a.defaulted == a.recovered + a.loss and a.loss >= 0
    seen: dict[bytes, bytes] = {}
    for pid in pools:
        members = aw.abs.members(pid)
        pool = aw.abs.pool(pid)
        assert pool.assets == len(members) and pool.cutoff_balance == sum(
            m.cutoff_balance for _, m in members
        )
        for aid, _ in members:
            assert aid not in seen, "an asset in two pools"
            seen[aid] = pid
    for aid, m in model.items():
        assert m.pool == seen.get(aid, c.ZERO_ID)
    for pid in pools:
        got = aw.abs.stats(pid)
        for name, value in brute_force_stats(aw, pid).items():
            assert getattr(got, name) == value, (name, getattr(got, name), value)


def _event(rng: random.Random, m: M, now: int) -> tuple[int, int, int, int, int]:
    """A valid event for the asset's state, and three times in ten one field made wrong."""
    value = rng.randint(max(m.start, m.last), now) if max(m.start, m.last) <= now else now
    kind, pr, it, aux = EventKind.RECOVERY, max(1, (m.defaulted - m.recovered) // 2), 0, 0
    if m.status in (P, OV):
        kind = rng.choices(list(EventKind)[:4], weights=(6, 1, 2, 1))[0]
        pr = {EventKind.REPAYMENT: rng.randint(0, m.out // 2), EventKind.PREPAYMENT: rng.randint(1, m.out),
              EventKind.OVERDUE: rng.randint(1, 5_000), EventKind.DEFAULT: m.out}[kind]  # fmt: skip
        it = rng.randint(1, 500) if kind in (EventKind.REPAYMENT, EventKind.PREPAYMENT) else 0
        aux = {EventKind.REPAYMENT: m.paid + 1, EventKind.OVERDUE: m.dpd + rng.randint(1, 40)}.get(kind, 0)
    if rng.random() < 0.3:
        field = rng.randrange(5)
        if field == 0:
            kind = rng.choice(list(EventKind))
        elif field == 1:
            value = rng.choice([now + 1, max(m.start, m.last) - 1])
        elif field == 2:
            pr = rng.choice([0, m.out + 1, m.defaulted - m.recovered + 1])
        elif field == 3:
            it = rng.randint(1, 500)
        else:
            aux = rng.choice([0, m.paid, m.paid + 2, m.dpd])
    return kind, value, pr, it, aux


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_histories_keep_every_conservation_property(seed):
    rng = random.Random(seed)
    aw = abs_world()
    orig, serv = aw.p("AutoFin"), aw.p("ServCo")
    crit = dataclasses.replace(
        WIDE, max_principal=60_000, min_rate_bp=300, max_rate_bp=1_500, max_remaining_months=24
    )
    pools = [orig.create_pool(crit, f"P{i}").check().id for i in range(2)]
    closed: set[bytes] = set()
    model: dict[bytes, M] = {}
    now = T0
    for step in range(200):
        now += rng.randint(0, 3) * DAY
        aw.at(now)
        roll = rng.random()
        if roll < 0.15 or not model:
            principal, rate = rng.randint(1_000, 80_000), rng.randint(0, 2_000)
            term, freq = rng.choice([(6, 1), (12, 3), (36, 1), (3, 3)])
            start = now - rng.randint(0, 60) * DAY
            r = register(
                aw, f"C-{step}", principal=principal, rate_bp=rate, term=term, freq=freq, start_ms=start
            )
            assert r.ok
            model[r.id] = M(principal, rate, term, freq, start, out=principal)
        elif roll < 0.75:
            aid = rng.choice(list(model))
            m = model[aid]
            kind, value, pr, it, aux = _event(rng, m, now)
            want, after = m.predict(kind, value, now, pr, it, aux)
            r = serv.event(aid, kind, value, pr, it, aux)
            assert r.code == want, (step, kind, r.code, want)
            if after is not None:
                model[aid] = after
        elif roll < 0.92:
            pid = rng.choice(pools)
            picks = rng.sample(list(model), min(len(model), rng.randint(1, 3)))
            want = _predict_select(model, picks, pid, pid in closed, crit)
            r = orig.select(pid, picks)[-1]
            assert r.code == want, (step, r.code, want)
            if want == Reject.OK:
                for aid in picks:
                    model[aid].pool = pid
        elif roll < 0.97:
            pid = rng.choice(pools)
            mine = [aid for aid, m in model.items() if m.pool == pid]
            if mine and pid not in closed:
                assert orig.remove(pid, mine[:2])[-1].ok
                for aid in mine[:2]:
                    model[aid].pool = c.ZERO_ID
        else:
            pid = rng.choice(pools)
            if pid not in closed and any(m.pool == pid for m in model.values()):
                orig.close(pid).check()
                closed.add(pid)
        check_invariants(aw, model, pools)
    assert any(m.status == D for m in model.values()) or seed != 1  # the histories reach defaults


def _predict_select(model: dict[bytes, M], picks: list[bytes], pid: bytes, closed: bool, crit) -> object:
    if closed:
        return R.ABS_POOL_NOT_OPEN
    for aid in picks:
        m = model[aid]
        if m.pool != c.ZERO_ID:
            return R.ABS_ALREADY_POOLED
        if m.status != P:
            return R.ABS_INELIGIBLE_STATUS
        if m.out > crit.max_principal:
            return R.ABS_INELIGIBLE_PRINCIPAL
        if not crit.min_rate_bp <= m.rate <= crit.max_rate_bp:
            return R.ABS_INELIGIBLE_RATE
        if m.term - m.paid * m.freq > crit.max_remaining_months:
            return R.ABS_INELIGIBLE_TERM
    return Reject.OK


_events = st.lists(
    st.tuples(
        st.sampled_from(list(EventKind)),
        st.integers(0, 12_000),
        st.integers(0, 1_000),
        st.integers(0, 14),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(principal=st.integers(1, 12_000), events=_events)
def test_any_event_sequence_keeps_an_asset_balanced(principal, events):
    a = Asset(b"\1" * 16, b"\2" * 16, AssetKind.LOAN, principal, 500, 1, 12, 1, b"\3" * 32, b"\4" * 32,
              c.ZERO_ID, 1, 1, outstanding=principal)  # fmt: skip
    for kind, pr, it, aux in events:
        try:
            a = assets.apply_event(a, kind, pr, it, aux)
        except OpFailed as exc:
            assert exc.code in R._value2member_map_
            continue
        assert a.balanced() and a.principal == a.repaid + a.outstanding + a.defaulted
        assert (a.outstanding == 0) == (a.status in (AssetStatus.PAID_OFF, AssetStatus.DEFAULTED))
