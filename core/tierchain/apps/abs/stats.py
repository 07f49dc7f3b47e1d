"""Pool statistics and performance over time: pure functions of chain records.

Nothing here reads a ledger or a clock: ``pool_stats`` takes the pool's asset records and
cut-off balances, ``performance`` their event logs, and both answer exact integers and
``fractions.Fraction`` values (no floats), shown in JSON as ``"num/den"`` with the
basis points rounded down. Definitions (all over the pool's assets):

======================  ==================================================================
repaid                  Σ principal repaid (scheduled parts and prepayments) / Σ original
                        principal
pool_factor             Σ outstanding / Σ cut-off balance (outstanding at selection)
overdue_by_count        OVERDUE assets / assets
overdue_by_principal    Σ outstanding of OVERDUE assets / Σ outstanding
default_by_count        DEFAULTED assets / assets
default_by_principal    Σ charged-off principal / Σ original principal
recovery                Σ recovered / Σ charged-off principal
net_loss                Σ (charged off − recovered) / Σ original principal
wa_rate_bp              Σ (rate_bp × outstanding) / Σ outstanding, over assets with a
                        balance
wa_remaining_months     Σ (remaining months × outstanding) / Σ outstanding, likewise;
                        remaining months = term − installments paid × their spacing
======================  ==================================================================

A ratio whose denominator is 0 is 0. Per asset the chain keeps ``principal == repaid +
outstanding + defaulted`` and ``defaulted == recovered + loss`` (``loss`` >= 0), so the
totals here satisfy the same two identities.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from fractions import Fraction

from tierchain.apps.abs.codes import Asset, AssetStatus, Event, EventKind

BASIS = 10_000
periods_max = 1_200  # months a performance series covers (100 years)


def ratio(num: int, den: int) -> Fraction:
    return Fraction(num, den) if den else Fraction(0)


def bp(value: Fraction) -> int:
    """Basis points, rounded down."""
    return value.numerator * BASIS // value.denominator


def fraction_json(value: Fraction) -> dict:
    return {"fraction": f"{value.numerator}/{value.denominator}", "bp": bp(value)}


@dataclasses.dataclass(frozen=True)
class PoolStats:
    assets: int
    performing: int
    overdue: int
    defaulted: int
    paid_off: int
    principal: int  # Σ original principal
    cutoff_balance: int  # Σ outstanding at selection
    outstanding: int
    repaid: int
    interest: int
    charged_off: int  # Σ defaulted principal
    recovered: int
    loss: int  # charged_off − recovered
    overdue_outstanding: int
    repaid_ratio: Fraction
    pool_factor: Fraction
    overdue_by_count: Fraction
    overdue_by_principal: Fraction
    default_by_count: Fraction
    default_by_principal: Fraction
    recovery: Fraction
    net_loss: Fraction
    wa_rate_bp: Fraction
    wa_remaining_months: Fraction

    def to_json(self) -> dict:
        return {
            f.name: fraction_json(v) if isinstance(v, Fraction) else v
            for f in dataclasses.fields(self)
            for v in (getattr(self, f.name),)
        }


def pool_stats(assets: Sequence[Asset], cutoff_balances: Sequence[int]) -> PoolStats:
    """The statistics of a pool whose assets are ``assets`` (their current records) with
    ``cutoff_balances`` (their members' balances at selection)."""
    by = {s: [a for a in assets if a.status == s] for s in AssetStatus}
    n = len(assets)
    principal = sum(a.principal for a in assets)
    outstanding = sum(a.outstanding for a in assets)
    repaid = sum(a.repaid for a in assets)
    charged_off = sum(a.defaulted for a in assets)
    recovered = sum(a.recovered for a in assets)
    overdue_out = sum(a.outstanding for a in by[AssetStatus.OVERDUE])
    cutoff = sum(cutoff_balances)
    live = [a for a in assets if a.outstanding]
    return PoolStats(
        assets=n,
        performing=len(by[AssetStatus.PERFORMING]),
        overdue=len(by[AssetStatus.OVERDUE]),
        defaulted=len(by[AssetStatus.DEFAULTED]),
        paid_off=len(by[AssetStatus.PAID_OFF]),
        principal=principal,
        cutoff_balance=cutoff,
        outstanding=outstanding,
        repaid=repaid,
        interest=sum(a.interest for a in assets),
        charged_off=charged_off,
        recovered=recovered,
        loss=charged_off - recovered,
        overdue_outstanding=overdue_out,
        repaid_ratio=ratio(repaid, principal),
        pool_factor=ratio(outstanding, cutoff),
        overdue_by_count=ratio(len(by[AssetStatus.OVERDUE]), n),
        overdue_by_principal=ratio(overdue_out, outstanding),
        default_by_count=ratio(len(by[AssetStatus.DEFAULTED]), n),
        default_by_principal=ratio(charged_off, principal),
        recovery=ratio(recovered, charged_off),
        net_loss=ratio(charged_off - recovered, principal),
        wa_rate_bp=ratio(sum(a.rate_bp * a.outstanding for a in live), outstanding),
        wa_remaining_months=ratio(sum(a.remaining_months * a.outstanding for a in live), outstanding),
    )


# --- performance over time -----------------------------------------------------------------------


def month_of(ms: int) -> tuple[int, int]:
    """The UTC (year, month) of a Unix-millisecond time."""
    d = dt.datetime.fromtimestamp(ms // 1000, dt.UTC)
    return d.year, d.month


def _month_index(ym: tuple[int, int]) -> int:
    return ym[0] * 12 + ym[1] - 1


def _month_end_ms(index: int) -> int:
    """The last millisecond of month ``index`` (year * 12 + month - 1), UTC."""
    year, month = divmod(index + 1, 12)
    return int(dt.datetime(year, month + 1, 1, tzinfo=dt.UTC).timestamp()) * 1000 - 1


@dataclasses.dataclass(frozen=True)
class Period:
    """The pool at the end of one calendar month (UTC)."""

    month: str  # YYYY-MM
    outstanding: int
    repaid: int  # cumulative principal repaid
    interest: int  # cumulative interest
    defaults: int  # cumulative charged-off principal
    recoveries: int  # cumulative recoveries
    overdue: int  # assets OVERDUE at month end
    defaulted: int  # assets DEFAULTED at month end
    paid_off: int


def performance(history: Sequence[tuple[Asset, Sequence[Event]]]) -> list[Period]:
    """The pool month by month, from the month its first asset started to the month of its
    last event (at most ``periods_max`` months, the latest kept), from each asset's terms and
    its logged events (``Event.value_ms`` order: as the chain keeps them). An asset counts
    from its start month with its original principal outstanding."""
    if not history:
        return []
    first = min(_month_index(month_of(a.start_ms)) for a, _ in history)
    times = [e.value_ms for _, events in history for e in events] + [a.start_ms for a, _ in history]
    last = _month_index(month_of(max(times)))
    first = max(first, last - periods_max + 1)
    rows = []
    cursors = [0] * len(history)
    state = [_initial(a) for a, _ in history]
    for m in range(first, last + 1):
        end = _month_end_ms(m)
        for i, (_, events) in enumerate(history):
            while cursors[i] < len(events) and events[cursors[i]].value_ms <= end:
                state[i] = _step(state[i], events[cursors[i]])
                cursors[i] += 1
        started = [s for (a, _), s in zip(history, state, strict=True) if a.start_ms <= end]
        rows.append(
            Period(
                month=f"{(m // 12):04d}-{m % 12 + 1:02d}",
                outstanding=sum(s["outstanding"] for s in started),
                repaid=sum(s["repaid"] for s in started),
                interest=sum(s["interest"] for s in started),
                defaults=sum(s["defaults"] for s in started),
                recoveries=sum(s["recoveries"] for s in started),
                overdue=sum(s["status"] == AssetStatus.OVERDUE for s in started),
                defaulted=sum(s["status"] == AssetStatus.DEFAULTED for s in started),
                paid_off=sum(s["status"] == AssetStatus.PAID_OFF for s in started),
            )
        )
    return rows


def _initial(a: Asset) -> dict:
    return dict(
        outstanding=a.principal, repaid=0, interest=0, defaults=0, recoveries=0, status=AssetStatus.PERFORMING
    )


def _step(s: dict, e: Event) -> dict:
    """One logged event's effect (the chain accepted it, so it is valid)."""
    s = dict(s, outstanding=e.outstanding_after, interest=s["interest"] + e.interest)
    if e.kind in (EventKind.REPAYMENT, EventKind.PREPAYMENT):
        s["repaid"] += e.principal
        s["status"] = AssetStatus.PAID_OFF if e.outstanding_after == 0 else (
            AssetStatus.PERFORMING if e.kind == EventKind.REPAYMENT else s["status"]
        )  # fmt: skip
    elif e.kind == EventKind.OVERDUE:
        s["status"] = AssetStatus.OVERDUE
    elif e.kind == EventKind.DEFAULT:
        s["defaults"] += e.principal
        s["status"] = AssetStatus.DEFAULTED
    elif e.kind == EventKind.RECOVERY:
        s["recoveries"] += e.principal
    return s


def disclosure_inputs(assets: Sequence[tuple[bytes, Asset]]) -> list[tuple[bytes, int, int]]:
    """The seam for confidential aggregate disclosure (``tierchain.apps.finance.disclosure``):
    per asset, in asset-id order, ``(asset id, original principal, principal repaid)`` — the
    two vectors an originator would commit to, asset by asset, so that a rating agency given
    only the commitments verifies the pool's total principal (``verify_total``) and its
    repaid basis points (``verify_ratio``, equal to ``bp(pool_stats(...).repaid_ratio)``)
    without learning any single amount. Not built: on this app the amounts are in clear."""
    return [(aid, a.principal, a.repaid) for aid, a in sorted(assets, key=lambda x: x[0])]
