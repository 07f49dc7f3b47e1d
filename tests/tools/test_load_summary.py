"""`tierchain load` (what `make run` runs) ends with one summary, not a run of `tps= 0` lines.

While the batches in flight drain after the window closes, the load reports once that it
stopped and then stays quiet until its summary.
"""

from __future__ import annotations

import json
import re

import numpy as np
from click.testing import CliRunner

from tierchain.cli.main import main
from tierchain.tools.loadgen import run_load, transfer_workload

PROGRESS = re.compile(r"^t=\s*([\d.]+)s\s")


def _load(tmp_path, *args: str) -> tuple[list[str], dict]:
    out = tmp_path / "load.json"
    common = ["--accounts", "64", "--threads", "1", "--sync", "none", "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(main, ["load", *common, *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output.splitlines(), json.loads(out.read_text())


def _check_output(lines: list[str], seconds: float, report: dict) -> None:
    progress = [i for i, line in enumerate(lines) if PROGRESS.match(line)]
    after_end = [lines[i] for i in progress if float(PROGRESS.match(lines[i]).group(1)) >= seconds]
    # At most one line once the window closed: the notice that the load stopped.
    assert len(after_end) <= 1 and all("load stopped" in line for line in after_end), "\n".join(lines)
    assert not [line for line in lines if re.search(r"tps=\s*0\b", line) and line in after_end]
    tail = lines[progress[-1] + 1 :]
    assert tail[0] == "summary", "\n".join(lines)
    text = "\n".join(tail)
    assert f"committed   {report['committed']:,} txs in {report['seconds']:.1f} s" in text
    assert f"{report['tps']:,.0f} TPS" in text and "sync=none, NOT DURABLE" in text
    for p in ("p50", "p95", "p99", "max"):
        assert re.search(rf"{p} [\d.]+ ms", text), text
    assert report["committed"] > 0 and report["drain_s"] >= 0


def test_open_loop_stops_at_the_window_and_prints_one_summary(tmp_path):
    # One 16-tx batch every 0.8 s: the window (1 s) closes while the submitter waits for its
    # next send time. It used to sleep on, then send, and report every 10 ms meanwhile.
    lines, report = _load(tmp_path, "--seconds", "1", "--txs", "64", "--batch", "16", "--rate", "20")
    _check_output(lines, 1.0, report)
    # Batches go at t = 0 and 0.8 s only: one more (sent after the window) would make 48.
    assert report["committed"] <= 32, report["committed"]


def test_closed_loop_drains_quietly(tmp_path):
    lines, report = _load(tmp_path, "--seconds", "0.5", "--txs", "6000", "--batch", "4", "--inflight", "4")
    assert not report["exhausted"]
    _check_output(lines, 0.5, report)


def test_run_load_reports_draining_once_and_last():
    work = transfer_workload(32, 4000, 1, processes=1)
    reports: list[dict] = []
    result = run_load(work, seconds=0.4, batch_txs=4, inflight=4, sync="none", report=reports.append)
    assert [r["draining"] for r in reports].count(True) == 1 and reports[-1]["draining"]
    assert reports[-1]["t_s"] >= 0.4 and all(r["t_s"] < 0.4 for r in reports[:-1])
    assert result.committed > 0 and result.summary().startswith("summary\n  committed ")


def _drive(done, *, t_stop, stopped, end_t=10.0, warmup_s=2.0):
    from tierchain.tools.loadgen import Drive

    probe = {"cpu": {"self": 0.0}}
    return Drive(
        done=np.array(done, np.float64).reshape(-1, 3),
        rejected=0,
        failed=0,
        unsettled=0,
        rate=None,
        t_start=0.0,
        warmup_s=warmup_s,
        end_t=end_t,
        t_stop=t_stop,
        t_drain=None if not stopped else end_t,
        stopped=stopped,
        timeline=[],
        probes=(probe, probe),
        anon_peak=0,
        error=None,
    )


def test_a_workload_that_ran_out_is_flagged_even_inside_the_warmup():
    from tierchain.tools.loadgen import window_figures

    # Every batch committed in the warm-up, then nothing left to send: an empty window, flagged.
    out = window_figures(_drive([(0.1, 0.5, 100), (0.2, 0.9, 100)], t_stop=1.0, stopped=False))
    assert out["exhausted"] and out["committed"] == 0
    # Ran out mid-window: the window ends at the last commit.
    out = window_figures(_drive([(3.0, 3.5, 100), (4.0, 5.0, 100)], t_stop=5.2, stopped=False))
    assert out["exhausted"] and out["committed"] == 200
    # Stopped at the planned end: not exhausted.
    out = window_figures(_drive([(3.0, 3.5, 100), (9.0, 9.8, 100)], t_stop=10.5, stopped=True))
    assert not out["exhausted"]


def test_a_solo_load_on_the_national_suite_commits_sm2_signed_transfers(tmp_path):
    _lines, report = _load(tmp_path, "--seconds", "0.5", "--txs", "400", "--crypto", "sm2-sm3")
    assert report["committed"] > 0 and report["rejected"] == 0 and report["failed"] == 0
    work = transfer_workload(64, 400, 1, crypto="sm2-sm3", cache_dir=tmp_path / "cache")
    assert all(len(pk) == 32 for pk in work.sender_keys)
    assert work.sender_keys != transfer_workload(64, 400, 1, cache_dir=tmp_path / "cache").sender_keys
