"""PNG plots of a bench report (matplotlib, Agg): small files for docs/img."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

_SIZE = (6.0, 3.2)
_DPI = 80


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)


def tps_over_time(rep: dict, path: Path) -> None:
    e, b = rep["engine"], rep["baselines"]
    end_s = e["warmup_s"] + e["seconds"]  # leave out the drain after the run stops
    t = np.array([x[0] for x in e["timeline"] if x[0] <= end_s + 0.01])
    c = np.array([x[1] for x in e["timeline"] if x[0] <= end_s + 0.01])
    fig, ax = plt.subplots(figsize=_SIZE)
    if len(t) > 1:
        ax.plot(t[1:], np.diff(c) / np.diff(t), label="engine (sync=full)")
    ax.axvline(e["warmup_s"], color="grey", ls=":", lw=1, label="end of warm-up")
    ax.axhline(b["verifier"]["sigs_per_s"], color="tab:red", ls="--", label="verifier ceiling")
    ax.axhline(b["lmdb"]["tps"], color="tab:purple", ls="-.", label="LMDB write ceiling")
    ax.axhline(b["naive"]["tps"], color="tab:green", ls="--", label="naive baseline")
    ax.set_xlabel("seconds")
    ax.set_ylabel("committed tx/s")
    ax.set_yscale("log")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Committed TPS over time (one run)", fontsize=9)
    _save(fig, path)


def latency(rep: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=_SIZE)
    for key, label in (("engine", "closed loop (saturated)"), ("open_half", "open loop, half of peak")):
        r = rep.get(key)
        if r and r["latency_sample_ms"]:
            x = np.sort(np.array(r["latency_sample_ms"]))
            ax.plot(x, np.linspace(0, 1, len(x)), label=f"{label}: p99 {r['latency_ms_p99']:.0f} ms")
    for key in ("rate",):
        for pt in rep.get("sweeps", {}).get(key, {}).get("points", []):
            if pt.get("latency_sample_ms") and pt["x"] != 0.5:
                x = np.sort(np.array(pt["latency_sample_ms"]))
                ax.plot(
                    x, np.linspace(0, 1, len(x)), lw=1, ls="--", label=f"open loop, {pt['x']:.0%} of peak"
                )
    ax.axvline(50, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("submit-to-durable-commit latency (ms)")
    ax.set_ylabel("fraction of txs")
    ax.legend(fontsize=7)
    ax.set_title("Latency distribution (CDF)", fontsize=9)
    _save(fig, path)


def sweep_plot(s: dict, path: Path) -> None:
    pts = [p for p in s["points"] if "error" not in p]
    if not pts:
        return
    axis = s["axis"]
    xs = [str(p["x"]) if not isinstance(p["x"], int) else f"{p['x']:,}" for p in pts]
    if axis == "rate":
        xs = [f"{p['x']:.0%}" for p in pts]
    fig, ax = plt.subplots(figsize=_SIZE)
    pos = np.arange(len(pts))
    ax.bar(pos, [p["tps"] for p in pts], color="tab:blue", alpha=0.7, label="committed TPS")
    ax.set_xticks(pos, xs)
    ax.set_ylabel("committed tx/s")
    ax2 = ax.twinx()
    ax2.plot(pos, [p["latency_ms_p99"] for p in pts], "o-", color="tab:red", label="p99 latency (ms)")
    ax2.set_ylabel("p99 ms")
    ax2.set_ylim(bottom=0)
    label = {
        "state": "accounts in state",
        "contention": "% of txs on one hot account",
        "skew": "Zipf exponent of recipients",
        "block": "block_txs_max",
        "sync": "sync mode",
        "mix": "workload mix",
        "rate": "offered load (open loop), fraction of closed-loop peak",
        "shards": "shards",
    }.get(axis, axis)
    ax.set_xlabel(label)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper right")
    ax.set_title(f"Sweep: {label}", fontsize=9)
    _save(fig, path)


def all_plots(rep: dict, img: Path) -> None:
    tps_over_time(rep, img / "tps-over-time.png")
    latency(rep, img / "latency.png")
    for s in rep.get("sweeps", {}).values():
        sweep_plot(s, img / f"sweep-{s['axis']}.png")
