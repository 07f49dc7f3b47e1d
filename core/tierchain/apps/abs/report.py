"""The servicing report of a pool: JSON, and HTML with PNG charts, from chain data alone.

``report_data(abs_, pool_id)`` reads the pool, its assets, their cash-flow logs and the
organizations' names from the ledger and returns one JSON-able dict: the pool and its
criteria, ``stats.pool_stats`` (exact fractions and basis points), the month-by-month
``stats.performance`` series and the per-asset penetration. It holds nothing but chain
data (no wall clock), so the same chain state always gives the same report; the report's
``as_of`` is the latest block time any of its records carries.

``write_report(data, out_dir)`` writes ``report.json``, ``outstanding.png`` (outstanding
principal per month), ``defaults.png`` (cumulative charged-off principal and recoveries per
month) and ``report.html``, a plain self-contained page that references the two PNGs
beside it. The charts need matplotlib (the ``reports`` extra: ``pip install
'tierchain[reports]'``), drawn with its Agg backend (no display); without it
``ReportUnavailable`` says so in one line, before anything is written.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from tierchain.apps.abs import stats
from tierchain.errors import TierChainError

report_assets_html_max = 1_000  # asset rows in the HTML (the JSON has every asset)
MATPLOTLIB_HINT = "the servicing report's charts need matplotlib: pip install 'tierchain[reports]'"


class ReportUnavailable(TierChainError):
    """The report cannot be drawn here (matplotlib is not installed)."""


def report_data(abs_: Any, pool_id: bytes) -> dict:
    """The servicing report of ``pool_id`` as a JSON-able dict (KeyError: no such pool)."""
    pen = abs_.penetration(pool_id)
    rows = abs_.pool_assets(pool_id)
    series = stats.performance([(a, abs_.events(aid)) for aid, a, _ in rows])
    times = [pen["pool"]["created_ms"], pen["pool"]["closed_ms"] or 0, pen["pool"]["trust_ms"] or 0]
    times += [e["value_ms"] for x in pen["assets"] for e in x["events"]]
    return {
        "report": "servicing report",
        "as_of_ms": max(times),
        "pool": pen["pool"],
        "stats": pen["stats"],
        "performance": [p.__dict__ for p in series],
        "assets": pen["assets"],
    }


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ReportUnavailable(MATPLOTLIB_HINT) from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _chart(plt: Any, path: Path, title: str, months: list[str], lines: dict[str, list[int]]) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    try:
        x = list(range(len(months)))
        for label, ys in lines.items():
            ax.plot(x, ys, marker="o", markersize=3, label=label)
        step = max(1, len(months) // 12)
        ax.set_xticks(x[::step], months[::step], rotation=45, ha="right", fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("minor units")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)


def _iso(ms: int | None) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dec(units: int, scale: int) -> str:
    """``units / scale`` with two decimals, rounded down, by integer arithmetic."""
    hundredths = units * 100 // scale
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def _pct(value: dict) -> str:
    return f"{_dec(value['bp'], 100)}% ({value['fraction']})"


def render_html(data: dict) -> str:
    """The report page (self-contained but for the two PNGs beside it)."""
    pool, st = data["pool"], data["stats"]
    title = f"Servicing report: {pool['name']}"
    summary = [
        ["Pool id", pool["id"]],
        ["Originator", pool["originator_name"]],
        ["Trustee", pool["trustee_name"] or "(none)"],
        ["Status", pool["status"]],
        ["As of", _iso(data["as_of_ms"])],
        ["Assets", st["assets"]],
        ["Original principal", st["principal"]],
        ["Cut-off balance", st["cutoff_balance"]],
        ["Outstanding principal", st["outstanding"]],
        ["Principal repaid", st["repaid"]],
        ["Interest collected", st["interest"]],
        ["Charged off", st["charged_off"]],
        ["Recovered", st["recovered"]],
        ["Net loss", st["loss"]],
        ["Repaid", _pct(st["repaid_ratio"])],
        ["Pool factor", _pct(st["pool_factor"])],
        ["Overdue rate (count)", _pct(st["overdue_by_count"])],
        ["Overdue rate (principal)", _pct(st["overdue_by_principal"])],
        ["Default rate (count)", _pct(st["default_by_count"])],
        ["Default rate (principal)", _pct(st["default_by_principal"])],
        ["Recovery rate", _pct(st["recovery"])],
        ["Net loss rate", _pct(st["net_loss"])],
        ["WA rate (bp)", f"{_dec(st['wa_rate_bp']['bp'], 10_000)} ({st['wa_rate_bp']['fraction']})"],
        ["WA remaining term (months)", _dec(st["wa_remaining_months"]["bp"], 10_000)],
    ]
    crit = pool["criteria"]
    criteria = [
        ["Max single principal", crit["max_principal"]],
        ["Rate (bp)", f"{crit['min_rate_bp']}..{crit['max_rate_bp']}"],
        ["Max remaining term (months)", crit["max_remaining_months"]],
        ["Kinds", ", ".join(crit["kinds"])],
        ["Max assets", crit["max_assets"]],
    ]
    perf = [
        [p["month"], p["outstanding"], p["repaid"], p["interest"], p["defaults"], p["recoveries"],
         p["overdue"], p["defaulted"], p["paid_off"]]
        for p in data["performance"]
    ]  # fmt: skip
    assets = [
        [a["id"], a["kind"], a["status"], a["principal"], a["outstanding"], a["rate_bp"],
         a["remaining_months"], a["charged_off"], a["recovered"], a["events"]]
        for a in data["assets"][:report_assets_html_max]
    ]  # fmt: skip
    more = len(data["assets"]) - len(assets)
    note = f"<p>{more} more assets in report.json.</p>" if more > 0 else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;}}table{{border-collapse:collapse;margin:1em 0;}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right;font-size:90%;}}
th{{background:#eee;}}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Generated from chain data only; amounts in minor units. Every figure is recomputable from the
pool's on-chain asset records and cash-flow logs (report.json).</p>
<h2>Summary</h2>{_table(["", ""], summary)}
<h2>Eligibility criteria</h2>{_table(["", ""], criteria)}
<h2>Performance</h2>
<img src="outstanding.png" alt="Outstanding principal per month">
<img src="defaults.png" alt="Cumulative defaults and recoveries per month">
{
        _table(
            [
                "Month",
                "Outstanding",
                "Repaid (cum.)",
                "Interest (cum.)",
                "Defaults (cum.)",
                "Recoveries (cum.)",
                "Overdue",
                "Defaulted",
                "Paid off",
            ],
            perf,
        )
    }
<h2>Assets</h2>
{
        _table(
            [
                "Asset",
                "Kind",
                "Status",
                "Principal",
                "Outstanding",
                "Rate (bp)",
                "Remaining months",
                "Charged off",
                "Recovered",
                "Events",
            ],
            assets,
        )
    }{note}
</body></html>
"""


def write_report(data: dict, out_dir: Path) -> dict[str, str]:
    """Write the report's files into ``out_dir`` (made if absent); their paths by name.
    ``ReportUnavailable`` before anything is written if matplotlib is missing."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "report.json",
        "html": out_dir / "report.html",
        "outstanding_png": out_dir / "outstanding.png",
        "defaults_png": out_dir / "defaults.png",
    }
    months = [p["month"] for p in data["performance"]]
    perf = data["performance"]
    _chart(plt, paths["outstanding_png"], "Outstanding principal", months,
           {"outstanding": [p["outstanding"] for p in perf]})  # fmt: skip
    _chart(plt, paths["defaults_png"], "Cumulative defaults and recoveries", months, {
        "charged off": [p["defaults"] for p in perf], "recovered": [p["recoveries"] for p in perf],
    })  # fmt: skip
    paths["json"].write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    paths["html"].write_text(render_html(data))
    return {k: str(v) for k, v in paths.items()}
