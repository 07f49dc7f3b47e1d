"""The bench suite: workloads, load runs, baselines in the same run, sweeps, plots, report.

One command regenerates every figure in docs/benchmarks.md::

    PYTHONPATH=core python -m bench report            # or: make bench-report
    PYTHONPATH=core python -m bench report --tiny     # CI: everything, tiny, < 60 s

Subcommands (``python -m bench --help``):

* ``run``       one load run of the engine (closed loop, or open loop with ``--rate``)
* ``baselines`` naive implementation, verifier ceiling, LMDB write ceiling, same workload
* ``sweep``     one axis (state, contention, skew, block, sync, rate, shards) -> JSON + PNG
* ``report``    all of the above; rewrites the generated part of docs/benchmarks.md
* ``profile``   py-spy (``-f raw``) of one run, summarised per engine stage
* ``replication`` solo vs TierChain on CometBFT (1, 4 validators) vs CometBFT's kvstore on
  the same networks, in one run (bench/replication.py; docs/replication.md, "Measured")

Every sweep point runs in its own process (``python -m bench run --json``) so its
peak RSS, page cache of its database and GIL are its own. Workloads are signed in
parallel processes before any clock starts and cached in ``.cache/tierchain``.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling scripts: naive, ceilings, plots

import replication as replication_bench  # bench/replication.py, a sibling
from tierchain.tools import loadgen
from tierchain.tools.loadgen import WorkloadSpec, build_workload, genesis_balance, run_load

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "tierchain"
OUT = ROOT / "bench" / "out"
IMG = ROOT / "docs" / "img"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench-report:begin -->", "<!-- bench-report:end -->"
console = Console(stderr=True)


@dataclasses.dataclass(frozen=True)
class Params:
    """Sizes of a suite run; ``TINY`` keeps the whole suite under a minute (CI)."""

    accounts: int = 10_000
    seconds: float = 10.0
    warmup_s: float = 2.0
    point_seconds: float = 6.0
    point_warmup_s: float = 1.5
    tx_rate_guess: int = 65_000  # tx/s used to size workloads (closed loop never starves)
    naive_seconds: float = 8.0
    state_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000, 10_000_000)
    hot_pcts: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0)
    skews: tuple[float, ...] = (0.0, 0.8, 1.2)
    block_sizes: tuple[int, ...] = (512, 1024, 2048, 4096)
    load_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    point_timeout_s: float = 900.0  # a point that takes longer is recorded as failed
    shards_args: tuple[str, ...] = ()  # extra bench/shards.py options (the shards axis)


FULL = Params()
TINY = Params(
    accounts=2_000,
    seconds=1.5,
    warmup_s=0.3,
    point_seconds=0.8,
    point_warmup_s=0.2,
    tx_rate_guess=8_000,
    naive_seconds=1.0,
    state_sizes=(2_000, 20_000),
    hot_pcts=(0.0, 25.0),
    skews=(0.0, 1.2),
    block_sizes=(512, 4096),
    load_fractions=(0.5,),
    point_timeout_s=120.0,
    shards_args=("--tiny",),
)


# tx/s sizing `bench run`'s workload when neither --txs nor --rate is given: above any
# closed-loop peak measured here, so the window never runs short (a run whose workload
# runs out says so, and measures a shorter window).
closed_rate_guess = 80_000


def _txs_for(seconds: float, rate: float) -> int:
    return int(seconds * rate * 1.3) + 4096


def _spec(accounts: int, txs: int, **kw: object) -> WorkloadSpec:
    return WorkloadSpec(accounts=accounts, txs=txs, **kw)  # type: ignore[arg-type]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


# --- one run --------------------------------------------------------------------------


def run_once(spec: WorkloadSpec, *, quiet: bool = False, **load) -> dict:
    """One ``run_load`` of ``spec``'s workload (``load``: its keyword arguments); the
    result as a dict with the workload and the settings that are not already in it."""
    t0 = time.perf_counter()
    work = build_workload(spec, cache_dir=CACHE)
    prepare_s = time.perf_counter() - t0
    rss_workload = loadgen.rss_peak_bytes()
    if quiet:
        result = run_load(work, **load)
    else:
        rate = load.get("rate")
        label = f"{'open ' + format(rate, ',.0f') + ' tx/s' if rate else 'closed'} sync={load.get('sync')}"
        with _progress() as progress:
            total = load.get("warmup_s", 0.0) + load["seconds"]
            task = progress.add_task(f"load {label}", total=total, status="genesis ...")

            def show(p: dict) -> None:
                progress.update(
                    task,
                    completed=p["t_s"],
                    status=f"{'warm-up ' if p['warmup'] else ''}{p['tps']:>8,.0f} TPS  "
                    f"p99 {p['latency_ms_p99']:5.0f} ms  h={p['height']}  mempool={p['mempool']}",
                )

            result = run_load(work, **load, report=show)
    out = dataclasses.asdict(result)
    out.update(spec=dataclasses.asdict(spec), prepare_s=prepare_s, rss_before_chain_bytes=rss_workload)
    out.update((k, v) for k, v in load.items() if k not in out and k != "node_settings")
    out.update(load.get("node_settings") or {})
    return out


class PointFailed(click.ClickException):
    """A sweep point's process failed or ran out of time; ``info`` says how far it got."""

    def __init__(self, message: str, info: dict) -> None:
        super().__init__(message)
        self.info = info


def run_point(args: list[str], timeout_s: float | None = None) -> dict:
    """``python -m bench run --quiet ARGS`` in a fresh process; its JSON result."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "core"), os.environ.get("PYTHONPATH", "")]))
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = Path(f.name)
    cmd = [sys.executable, "-m", "bench", "run", "--quiet", "--out", str(path), *args]
    try:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            hwm = loadgen.proc_status_bytes(proc.pid, "VmHWM")  # how much memory it had taken when stopped
            proc.kill()
            proc.communicate()
            info = {"error": f"no result within {timeout_s:.0f} s", "rss_peak_bytes_at_kill": hwm}
            raise PointFailed(f"{' '.join(cmd)}: {info['error']}", info) from None
        if proc.returncode:
            raise PointFailed(f"{' '.join(cmd)} failed:\n{err[-3000:]}", {"error": err.strip()[-300:]})
        return json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)


def _ran_out(r: dict) -> str:
    """Why a run's window was shorter than asked: its workload ran out."""
    return f"the workload ran out: {r['seconds']:.1f} s measured of {r['spec']['txs']:,} txs"


def _tps_cell(r: dict) -> str:
    """A run's TPS for the docs tables, with a note when its workload ran out."""
    return f"{r['tps']:,.0f}" + (f" ({_ran_out(r)})" if r.get("exhausted") else "")


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


# --- baselines -------------------------------------------------------------------------


def baselines(
    work: loadgen.Workload, *, naive_seconds: float, block_txs: int = 4096, sync: str = "full"
) -> dict:
    from ceilings import lmdb_ceiling, verifier_ceiling
    from naive import interleave, run_naive

    txs = interleave(work.streams)
    sample = txs[: max(block_txs, min(len(txs), 16 * block_txs))]
    with _progress() as progress:
        task = progress.add_task("baselines", total=3, status="verifier ceiling")
        verifier = verifier_ceiling(sample, block_txs)
        progress.update(task, advance=1, status="LMDB write ceiling")
        lmdb_c = lmdb_ceiling(sample, block_txs, sync=sync, seconds=max(1.0, naive_seconds / 2))
        progress.update(task, advance=1, status="naive implementation")
        naive = run_naive(
            txs,
            dict.fromkeys(work.sender_keys, genesis_balance),
            block_txs=block_txs,
            seconds=naive_seconds,
            sync=sync,
        )
        progress.update(task, advance=1)
    return {"verifier": verifier, "lmdb": lmdb_c, "naive": naive}


# --- sweeps ------------------------------------------------------------------------------

AXES = ("state", "contention", "skew", "mix", "block", "sync", "rate", "shards")


def sweep(axis: str, p: Params, *, peak_tps: float | None = None) -> dict:
    """Points of one axis, each in its own process; ``rate`` needs the closed-loop peak."""
    base = ["--seconds", str(p.point_seconds), "--warmup", str(p.point_warmup_s)]
    txs = _txs_for(p.point_seconds + p.point_warmup_s, p.tx_rate_guess)
    points: list[tuple[object, list[str]]] = []
    acc = ["--accounts", str(p.accounts), "--txs", str(txs)]
    if axis == "state":
        points = [(n, ["--accounts", str(n), "--txs", str(txs)]) for n in p.state_sizes]
    elif axis == "contention":
        points = [(h, [*acc, "--hot-pct", str(h)]) for h in p.hot_pcts]
    elif axis == "skew":
        points = [(s, [*acc, "--skew", str(s)]) for s in p.skews]
    elif axis == "mix":  # the voucher lifecycle is one ordered stream: one submitter, for both
        one = [*acc, "--threads", "1"]
        points = [("transfer", one), ("voucher", [*one, "--mix", "voucher"])]
    elif axis == "block":
        points = [(b, [*acc, "--block-txs", str(b)]) for b in p.block_sizes]
    elif axis == "sync":
        points = [(s, [*acc, "--sync", s]) for s in ("full", "none")]
    elif axis == "rate":
        if not peak_tps:
            raise click.UsageError("the rate sweep needs --peak-tps (a closed-loop TPS)")
        points = [(f, [*acc, "--rate", str(round(f * peak_tps)), "--batch", "64"]) for f in p.load_fractions]
    elif axis == "shards":  # 1 and 2 shards, router overhead, cross-shard cost: bench/shards.py
        return shards_sweep(p)
    results = []
    with _progress() as progress:
        task = progress.add_task(f"sweep {axis}", total=len(points), status="")
        for value, args in points:
            progress.update(task, status=f"{axis}={value}")
            try:
                r = run_point(base + args, timeout_s=p.point_timeout_s)
            except PointFailed as exc:  # recorded, not fatal: the other points still count
                console.print(f"[red]{axis}={value}: {exc.info['error']}[/]")
                results.append({"x": value, **exc.info})
                progress.update(task, advance=1)
                continue
            r["x"] = value
            if axis != "rate":  # keep sweep JSON small: per-point series only where plotted
                r.pop("timeline", None)
                r.pop("latency_sample_ms", None)
            results.append(r)
            progress.update(task, advance=1)
    return {"axis": axis, "points": results}


def run_shards(args: list[str], timeout_s: float | None = None) -> dict:
    """``python bench/shards.py --out FILE ARGS`` in a fresh process; its JSON result."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "core"), os.environ.get("PYTHONPATH", "")]))
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = Path(f.name)
    cmd = [sys.executable, str(ROOT / "bench" / "shards.py"), "--out", str(path), *args]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode:
            raise PointFailed(
                f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}", {"error": proc.stderr.strip()[-300:]}
            )
        return json.loads(path.read_text())
    except subprocess.TimeoutExpired:
        raise PointFailed(
            f"{' '.join(cmd)}: timed out", {"error": f"no result within {timeout_s:.0f} s"}
        ) from None
    finally:
        path.unlink(missing_ok=True)


def shards_sweep(p: Params) -> dict:
    """One vs two shards, same run (bench/shards.py): points x=1 and x=2 with the fields every
    sweep has, plus router overhead, cross-shard cost and scaling efficiency for the renderer."""
    args = [*p.shards_args, "--seconds", str(p.point_seconds), "--warmup", str(p.point_warmup_s)]
    if not p.shards_args:
        args += ["--accounts", str(p.accounts)]
    with console.status("sweep shards: 1 and 2 shards, router, cross-shard (bench/shards.py) ..."):
        try:
            r = run_shards(args, timeout_s=3 * p.point_timeout_s)
        except PointFailed as exc:  # recorded, not fatal
            console.print(f"[red]shards: {exc.info['error']}[/]")
            return {"axis": "shards", "points": [{"x": n, **exc.info} for n in (1, 2)]}
    for pt in r["points"]:
        pt.pop("traceback", None)
    return {
        "axis": "shards",
        "points": r["points"],
        "command": "PYTHONPATH=core python bench/shards.py " + " ".join(args),
        "shards_params": r["params"],
        "sync": r["sync"],
        "scaling_efficiency": r["scaling_efficiency"],
        "router": r["router"],
        "xshard": r.get("xshard", {}),
        "wall_s": r["wall_s"],
        "load_avg": [r["load_avg_before"][0], r["load_avg_after"][0]],
    }


# --- profile ------------------------------------------------------------------------------

STAGES = (  # (label, frame substring): the first frame below _produce / _commit_loop that matches wins
    ("gathering the block from admitted columns (batch.gather)", "gather"),
    ("building block columns (BlockColumns)", "BlockColumns"),
    ("prefetch: the block's state read (read_state: declared keys, overlays, LMDB)", "read_state"),
    ("execution: native op kernels, Python handlers, nonce checks (execute_block)", "execute_block"),
    ("receipts: encode + Merkle root", "Receipt.encode"),
    ("tx/receipt Merkle roots", "merkle"),
    ("authenticated state: StateTree.prepare (native SMT + chunk reads)", "StateTree.prepare"),
    ("authenticated state: StateTree.write (tree records put)", "StateTree.write"),
    ("authenticated state: StateTree.prune", "StateTree.prune"),
    ("interim state root", "next_state_root"),
    ("header: hash + sign", "Header"),
    ("LMDB puts: tx index + state (put_many_raw)", "put_many_raw"),
    ("LMDB puts: header, block, receipts", ".put ("),
    ("LMDB write txn begin/commit (fsync)", "Store.write"),
    ("mempool take/done", "mempool.py"),
    ("waking submitters (receipts to tickets)", "_committed"),
    ("subscribers", "_publish"),
)


def summarize_profile(raw: Path, top: int = 15) -> dict:
    """Shares of the block pipeline's samples (producer, committer and, when the state
    tree has its own thread, tree threads) per engine stage, and top self-time frames."""
    stacks: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    total = sum(stacks.values())
    threads = {  # thread -> (its root frame, the frame its block work runs under, idle label)
        "producer": (
            "_run (tierchain/engine/pipeline.py",
            "_produce",
            "waiting for a free slot or transactions",
        ),
        "committer": ("_commit_loop (tierchain/engine/pipeline.py", "_commit_loop", "waiting for a block"),
        "tree": (
            "_tree_loop (tierchain/engine/pipeline.py",
            "_prepare_tree",
            "waiting for an executed block",
        ),
    }
    stage: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    per_thread: collections.Counter[str] = collections.Counter()
    for s, c in stacks.items():
        who = next((t for t, (root, _, _) in threads.items() if root in s), None)
        if who is None:
            continue
        _, work, idle = threads[who]
        per_thread[who] += c
        frames = s.split(";")
        leaf[re.sub(r":\d+\)$", ")", frames[-1])] += c
        start = next((i for i, f in enumerate(frames) if work in f), None)
        if start is None or start == len(frames) - 1:
            stage[f"{who}: {idle} (idle)"] += c
            continue
        label = next(
            (lab for f in frames[start + 1 :] for lab, sub in STAGES if sub in f),
            "other pipeline.py glue (locations, write-ahead log, overlays)",
        )
        stage[f"{who}: {label}"] += c
    busy = sum(per_thread.values())
    return {
        "samples_total": total,
        "producer_samples": busy,  # the pipeline threads (producer, committer, tree)
        "thread_samples": dict(per_thread),
        "stages": [(k, v, v / max(1, busy)) for k, v in stage.most_common()],
        "top_self": [(k, v, v / max(1, busy)) for k, v in leaf.most_common(top)],
    }


# --- CLI ---------------------------------------------------------------------------------------


@click.group()
def main() -> None:
    """TierChain bench suite (docs/benchmarks.md)."""


main.add_command(replication_bench.main, "replication")


def _workload_options(f):
    opts = [
        click.option(
            "--accounts", type=int, default=10_000, show_default=True, help="State size (accounts)."
        ),
        click.option("--senders", type=int, default=loadgen.senders_default, show_default=True),
        click.option("--txs", type=int, default=None, help="Pre-signed transactions (default: enough)."),
        click.option(
            "--skew", type=float, default=0.0, show_default=True, help="Zipf exponent of recipients."
        ),
        click.option(
            "--hot-pct", type=float, default=0.0, show_default=True, help="%% of txs paying one account."
        ),
        click.option("--mix", default="transfer", show_default=True, help="Workload mix (loadgen.MIXES)."),
        click.option("--threads", type=int, default=4, show_default=True, help="Submitter threads."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@main.command("run")
@_workload_options
@click.option("--seconds", type=float, default=10.0, show_default=True)
@click.option("--warmup", "warmup_s", type=float, default=2.0, show_default=True)
@click.option("--rate", type=float, default=None, help="Open loop at this many tx/s (default: closed loop).")
@click.option("--batch", "batch_txs", type=int, default=512, show_default=True)
@click.option("--inflight", type=int, default=8, show_default=True,
              help="Closed loop: batches outstanding per submitter thread.")  # fmt: skip
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--block-txs", "block_txs_max", type=int, default=4096, show_default=True)
@click.option("--block-interval-ms", type=int, default=20, show_default=True)
@click.option("--state-flush-blocks", type=int, default=8, show_default=True,
              help="Write the flat state table every K blocks (docs/operations.md).")  # fmt: skip
@click.option("--tree-workers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Threads building a block's state tree; 0: the node's default.")  # fmt: skip
@click.option("--tree-stage", type=click.Choice(["auto", "inline", "thread"]), default="auto",
              show_default=True, help="The state tree on the producer or its own thread.")  # fmt: skip
@click.option("--quiet", is_flag=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def run_cmd(accounts, senders, txs, skew, hot_pct, mix, threads, seconds, warmup_s, rate, batch_txs, inflight,
            sync, block_txs_max, block_interval_ms, state_flush_blocks, tree_workers, tree_stage, quiet,
            out) -> None:  # fmt: skip
    """One load run of a fresh solo chain; JSON to --out."""
    txs = txs or _txs_for(seconds + warmup_s, rate or closed_rate_guess)
    spec = _spec(accounts, txs, threads=threads, senders=senders, skew=skew, hot_pct=hot_pct, mix=mix)
    r = run_once(
        spec,
        seconds=seconds,
        warmup_s=warmup_s,
        rate=rate,
        batch_txs=batch_txs,
        inflight=inflight,
        sync=sync,
        block_txs_max=block_txs_max,
        block_interval_ms=block_interval_ms,
        node_settings={
            "state_flush_blocks": state_flush_blocks,
            "tree_workers": tree_workers,
            "tree_stage": tree_stage,
        },
        quiet=quiet,
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(r, indent=1) + "\n")
    if not quiet:
        note = "" if sync == "full" else "  [sync=none: NOT DURABLE, benchmark only]"
        console.print(
            f"{r['mode']} loop: {r['tps']:,.0f} TPS committed{note}; "
            f"latency p50 {r['latency_ms_p50']:.1f} ms, p95 {r['latency_ms_p95']:.1f} ms, "
            f"p99 {r['latency_ms_p99']:.1f} ms; CPU {r['cpu_util']:.2f} cores; "
            f"peak RSS {r['rss_peak_bytes'] / 2**20:,.0f} MiB; db {r['db_bytes'] / 2**20:,.0f} MiB; "
            f"rejected {r['rejected']}, failed {r['failed']}"
        )
        if (b := r["blocks"])["count"]:
            console.print(
                f"{b['count']:,} blocks of {b['txs_mean']:,.0f} txs ({b['flushed']} flushed state); "
                f"ms per block mean / p99: produce {b['produce_ms_mean']:.1f} / {b['produce_ms_p99']:.1f}, "
                f"of it execute {b['execute_ms_mean']:.1f} / {b['execute_ms_p99']:.1f}, "
                f"tree {b['tree_ms_mean']:.1f} / {b['tree_ms_p99']:.1f}, "
                f"write {b['write_ms_mean']:.1f} / {b['write_ms_p99']:.1f}, "
                f"commit+fsync {b['durable_ms_mean']:.1f} / {b['durable_ms_p99']:.1f}"
            )
        if r["exhausted"]:
            console.print(f"[yellow]{_ran_out(r)}: pass a larger --txs[/]")


@main.command("baselines")
@click.option("--accounts", type=int, default=10_000, show_default=True)
@click.option("--txs", type=int, default=100_000, show_default=True)
@click.option("--seconds", type=float, default=8.0, show_default=True, help="Naive run length.")
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def baselines_cmd(accounts: int, txs: int, seconds: float, sync: str, out: Path | None) -> None:
    """Naive implementation, verifier ceiling and LMDB write ceiling on one workload."""
    work = build_workload(_spec(accounts, txs), cache_dir=CACHE)
    b = baselines(work, naive_seconds=seconds, sync=sync)
    console.print(
        f"naive {b['naive']['tps']:,.0f} TPS; verifier ceiling {b['verifier']['sigs_per_s']:,.0f} sig/s; "
        f"LMDB ceiling {b['lmdb']['tps']:,.0f} tx/s ({b['lmdb']['keys_per_s']:,.0f} keys/s)"
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(b, indent=1) + "\n")


@main.command("sweep")
@click.argument("axis", type=click.Choice(AXES))
@click.option("--tiny", is_flag=True)
@click.option("--peak-tps", type=float, default=None, help="Closed-loop TPS (rate axis).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def sweep_cmd(axis: str, tiny: bool, peak_tps: float | None, out: Path | None) -> None:
    """One sweep axis; JSON to --out, PNG to docs/img (bench/out/img with --tiny)."""
    import plots

    s = sweep(axis, TINY if tiny else FULL, peak_tps=peak_tps)
    out = out or OUT / f"sweep-{axis}{'-tiny' if tiny else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(s, indent=1) + "\n")
    plots.sweep_plot(s, (OUT / "img-tiny" if tiny else IMG) / f"sweep-{axis}.png")
    for pt in s["points"]:
        if "error" in pt:
            console.print(f"{axis}={pt['x']}: failed: {pt['error']}")
            continue
        console.print(f"{axis}={pt['x']}: {pt['tps']:,.0f} TPS, p99 {pt['latency_ms_p99']:.0f} ms")
    if axis == "shards":
        console.print(render_shards(s), soft_wrap=True)


@main.command("profile")
@click.option("--seconds", type=float, default=12.0, show_default=True)
@click.option("--accounts", type=int, default=10_000, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=OUT / "profile.json")
def profile_cmd(seconds: float, accounts: int, out: Path) -> None:
    """py-spy record -r 200 -f raw of one closed-loop run, summarised per pipeline stage."""
    raw = out.with_suffix(".raw.txt")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"))
    cmd = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", str(raw), "--",
           sys.executable, "-m", "bench", "run", "--quiet", "--seconds", str(seconds),
           "--warmup", "0", "--accounts", str(accounts)]  # fmt: skip
    console.print("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    summary = summarize_profile(raw)
    shown = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", os.path.relpath(raw, ROOT), "--"]
    summary["command"] = " ".join([*shown, "python", "-m", "bench", *cmd[12:]])
    out.write_text(json.dumps(summary, indent=1) + "\n")
    table = Table("thread: stage", "samples", "share")
    for label, n, share in summary["stages"]:
        table.add_row(label, str(n), f"{share:.0%}")
    console.print(table)


@main.command("report")
@click.option("--tiny", is_flag=True, help="Every step with tiny parameters (CI, < 60 s); docs untouched.")
@click.option("--profile/--no-profile", default=True, help="Run py-spy when it is installed (full mode).")
@click.option("--skip", multiple=True, type=click.Choice(AXES), help="Sweep axes to leave out.")
@click.option("--max-accounts", type=int, default=None, help="Leave out larger state-sweep points.")
def report_cmd(tiny: bool, profile: bool, skip: tuple[str, ...], max_accounts: int | None) -> None:
    """Everything: main run, baselines, open loop at half load, sweeps, plots, docs tables."""
    import plots

    p = TINY if tiny else FULL
    if max_accounts:
        p = dataclasses.replace(p, state_sizes=tuple(n for n in p.state_sizes if n <= max_accounts))
    t_start = time.perf_counter()
    img = OUT / "img-tiny" if tiny else IMG
    txs = _txs_for(p.seconds + p.warmup_s, p.tx_rate_guess)
    spec = _spec(p.accounts, txs)
    console.print(f"[bold]workload[/] {p.accounts:,} accounts, {txs:,} signed transfers (cached in {CACHE})")
    work = build_workload(spec, cache_dir=CACHE)
    rep: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_avg_before": os.getloadavg(),
        "tiny": tiny,
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "params": dataclasses.asdict(p),
    }
    # Same run, same workload: the baselines first, then the engine.
    rep["baselines"] = baselines(work, naive_seconds=p.naive_seconds)
    del work
    rep["engine"] = run_point(
        [
            "--accounts",
            str(p.accounts),
            "--txs",
            str(txs),
            "--seconds",
            str(p.seconds),
            "--warmup",
            str(p.warmup_s),
        ]
    )
    peak = rep["engine"]["tps"]
    rep["open_half"] = run_point(
        ["--accounts", str(p.accounts), "--txs", str(txs), "--seconds", str(p.seconds),
         "--warmup", str(p.warmup_s), "--rate", str(round(peak / 2)), "--batch", "64"]
    )  # fmt: skip
    rep["sweeps"] = {}
    for axis in AXES:
        if axis in skip:
            continue
        rep["sweeps"][axis] = sweep(axis, p, peak_tps=peak)
    if profile and not tiny and shutil.which("py-spy"):
        prof_out = OUT / "profile.json"
        report_ctx = click.get_current_context()
        report_ctx.invoke(profile_cmd, seconds=12.0, accounts=p.accounts, out=prof_out)
        rep["profile"] = json.loads(prof_out.read_text())
    rep["load_avg_after"] = os.getloadavg()
    rep["wall_s"] = time.perf_counter() - t_start
    out = OUT / f"report{'-tiny' if tiny else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rep, indent=1) + "\n")
    plots.all_plots(rep, img)
    md = render_markdown(rep)
    if not tiny:
        write_doc_section(md)
    else:
        (OUT / "report-tiny.md").write_text(md)
    console.print(f"[bold]report[/] written to {out} in {rep['wall_s']:.0f} s")


@main.command("render")
@click.option("--tiny", is_flag=True)
def render_cmd(tiny: bool) -> None:
    """Plots and the docs tables again from bench/out/report.json (no measuring)."""
    import plots

    rep = json.loads((OUT / f"report{'-tiny' if tiny else ''}.json").read_text())
    plots.all_plots(rep, OUT / "img-tiny" if tiny else IMG)
    md = render_markdown(rep)
    if tiny:
        (OUT / "report-tiny.md").write_text(md)
    else:
        write_doc_section(md)


# --- docs ----------------------------------------------------------------------------------------


def targets(rep: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, aim, measured, met) for the issue-22 aims (and issue 5's contention aim), from
    one report; met None: a figure the issue asks for without an aim."""
    e, b, sw = rep["engine"], rep["baselines"], rep["sweeps"]
    rows: list[tuple[str, str, str, bool | None]] = []
    rows.append((f"E2E TPS at {e['spec']['accounts']:,} accounts (durable)", ">= 50,000", f"{e['tps']:,.0f}",
                 e["tps"] >= 50_000))  # fmt: skip
    naive = b["naive"]["tps"]
    rows.append(("E2E TPS vs naive baseline", ">= 4x", f"{e['tps'] / naive:.1f}x", e["tps"] >= 4 * naive))
    ceil = b["verifier"]["sigs_per_s"]
    rows.append(("E2E TPS vs verifier ceiling (durable)", "(figure)", f"{e['tps'] / ceil:.0%}", None))
    if "mix" in sw:
        pts = {pt["x"]: pt["tps"] for pt in sw["mix"]["points"] if "error" not in pt}
        if pts.get("voucher") and pts.get("transfer"):
            r = pts["voucher"] / pts["transfer"]
            rows.append(("voucher lifecycle vs transfers", ">= 80%", f"{r:.0%}", r >= 0.8))
    if "contention" in sw:
        pts = {pt["x"]: pt["tps"] for pt in sw["contention"]["points"] if "error" not in pt}
        hot = pts.get(10.0) or pts.get(25.0)
        label = "10%" if 10.0 in pts else "25%"
        if hot and pts.get(0.0):
            r = hot / pts[0.0]
            rows.append((f"{label} hot key vs no contention", ">= 70%", f"{r:.0%}", r >= 0.7))
    if "state" in sw:
        pts = sw["state"]["points"]
        failed = [pt for pt in pts if "error" in pt]
        for pt in failed:
            rows.append((f"{pt['x']:,} accounts", ">= 40,000 TPS; < 2 GiB", f"failed: {pt['error']}", False))
        pts = [pt for pt in pts if "error" not in pt]
        hi = pts[-1]
        rss = hi["rss_peak_bytes"] / 2**30
        anon = hi.get("rss_anon_peak_bytes", 0) / 2**30
        rows.append((
            f"{hi['x']:,} accounts: TPS; peak RSS (anonymous)",
            ">= 40,000 TPS at 10,000,000; < 2 GiB",
            f"{hi['tps']:,.0f}; {rss:.2f} GiB ({anon:.2f} GiB)",
            hi["x"] >= 10_000_000 and hi["tps"] >= 40_000 and rss < 2,
        ))  # fmt: skip
    o = rep["open_half"]
    rows.append((
        f"p99 submit-to-commit at half load ({o['rate_target']:,.0f} tx/s, open loop, one run)",
        "<= 50 ms",
        f"{o['latency_ms_p99']:.0f} ms",
        o["latency_ms_p99"] <= 50,
    ))  # fmt: skip
    return rows


def _stage_table(rep: dict) -> list[str]:
    """Per-block pipeline stages (chain.BlockTiming) of the main and half-load runs."""
    runs = [(name, rep[key]) for name, key in (("closed loop", "engine"), ("half load", "open_half"))]
    runs = [(name, r) for name, r in runs if r.get("blocks", {}).get("count")]
    if not runs:
        return []
    L = [
        "Per block, as the chain timed it (`Chain.timings`): produce = gather the admitted columns, "
        "execute (and the state "
        "tree version when `tree_stage` is inline; producer thread); tree = the state tree version; "
        "write = the write transaction's body; commit+fsync = LMDB's "
        "commit (committer thread). Flushed = blocks that also wrote the flat state table "
        "(docs/operations.md, State write-back).",
        "",
        "| run | blocks | txs per block | flushed | produce ms mean / p99 | tree ms mean / p99 "
        "| write ms mean / p99 "
        "| commit+fsync ms mean / p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in runs:
        b = r["blocks"]
        tree = f"{b['tree_ms_mean']:.1f} / {b['tree_ms_p99']:.1f}" if "tree_ms_mean" in b else "–"
        L.append(
            f"| {name} | {b['count']:,} | {b['txs_mean']:,.0f} | {b['flushed']:,} | "
            f"{b['produce_ms_mean']:.1f} / {b['produce_ms_p99']:.1f} | {tree} | "
            f"{b['write_ms_mean']:.1f} / {b['write_ms_p99']:.1f} | "
            f"{b['durable_ms_mean']:.1f} / {b['durable_ms_p99']:.1f} |"
        )
    return [*L, ""]


def render_markdown(rep: dict) -> str:
    e, b = rep["engine"], rep["baselines"]
    tiny = " --tiny" if rep["tiny"] else ""
    L = [
        BEGIN,
        "<!-- Generated by `make bench-report` (python -m bench report); edits here are overwritten. -->",
        "",
        f"Generated by `PYTHONPATH=core {rep.get('command', 'python -m bench report' + tiny)}` "
        f"in {rep['wall_s']:.0f} s "
        f"({rep['machine']['cpus']} CPUs; load average before/after "
        f"{rep['load_avg_before'][0]:.1f}/{rep['load_avg_after'][0]:.1f}). "
        f"Raw figures: `bench/out/report.json`. Every ratio compares figures of this one run.",
        "",
        "### Targets",
        "",
        "| target | aim | measured | met |",
        "|---|---|---:|---|",
    ]
    met = {True: "yes", False: "**no**", None: "—"}
    L += [f"| {t} | {a} | {m} | {met[ok]} |" for t, a, m, ok in targets(rep)]
    L += [
        "",
        "### Engine and baselines, same workload",
        "",
        f"Workload: {e['spec']['accounts']:,} accounts ({e['spec']['senders']:,} signing senders, "
        f"the rest synthetic recipients), uniform transfers, {e['spec']['threads']} submitter threads "
        f"x {e['inflight']} batches of "
        f"{e['batch_txs']} in flight (closed loop), blocks of up to {e['block_txs_max']:,} txs every "
        f"{e['block_interval_ms']} ms, {e['warmup_s']:.0f} s warm-up then {e['seconds']:.0f} s measured.",
        "",
        "| what | TPS (or sig/s) | vs engine | p50 ms | p99 ms | CPU cores | peak RSS MiB | db MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| **engine**, sync=full (durable) | {_tps_cell(e)} | 1.00 | {e['latency_ms_p50']:.0f} | "
        f"{e['latency_ms_p99']:.0f} | {e['cpu_util']:.2f} | {e['rss_peak_bytes'] / 2**20:,.0f} | "
        f"{e['db_bytes'] / 2**20:,.0f} |",
        f"| (a) naive: pure Python, PyNaCl one by one, dict state, py-lmdb puts, durable txn per block "
        f"(`bench/naive.py`) | {b['naive']['tps']:,.0f} | {b['naive']['tps'] / e['tps']:.2f} | | | 1 | | |",
        f"| (b) verifier ceiling: `verify_batch_packed` on {b['verifier']['threads_native']} threads, "
        f"same txs ({b['verifier']['distinct_senders']:,} distinct keys) | "
        f"{b['verifier']['sigs_per_s']:,.0f} | "
        f"{b['verifier']['sigs_per_s'] / e['tps']:.2f} | | | {b['verifier']['threads_native']} | | |",
        f"| (c) LMDB write ceiling: putmulti of the engine's {b['lmdb']['keys_per_block']:,.0f} keys "
        f"per block, durable | {b['lmdb']['tps']:,.0f} | {b['lmdb']['tps'] / e['tps']:.2f} | | | 1 | | |",
        "",
        "![TPS over time](img/tps-over-time.png) ![latency](img/latency.png)",
        "",
    ]
    L += _stage_table(rep)
    L += [
        "### Sweeps",
        "",
        "Each point is a fresh chain in its own process (`python -m bench sweep AXIS` runs one axis): "
        f"{rep['params']['point_warmup_s']:.1f} s warm-up, {rep['params']['point_seconds']:.0f} s measured, "
        "closed loop unless stated.",
        "",
    ]
    for axis, s in rep["sweeps"].items():
        pts = s["points"]
        if not pts:
            continue
        first = pts[0].get("tps") or 1
        L += [
            f"**{axis}** (`python -m bench sweep {axis}{tiny}`)",
            "",
            f"| {axis} | TPS | vs first | p50 ms | p99 ms | CPU cores | peak RSS MiB (anon) | db MiB "
            "| genesis s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for pt in pts:
            x = pt["x"]
            if "error" in pt:
                hwm = pt.get("rss_peak_bytes_at_kill")
                mem = f"{hwm / 2**20:,.0f} when stopped" if hwm else ""
                L.append(f"| {x:,} | **failed**: {pt['error']} | | | | | {mem} | | |")
                continue
            xs = f"{x:,}" if isinstance(x, int) else (f"{x:g}" if isinstance(x, float) else str(x))
            if axis == "rate":
                xs = f"{x:.0%} of peak ({pt['rate_target']:,.0f} tx/s)"
            L.append(
                f"| {xs} | {_tps_cell(pt)} | {pt['tps'] / first:.2f} | {pt['latency_ms_p50']:.0f} | "
                f"{pt['latency_ms_p99']:.0f} | {pt['cpu_util']:.2f} | {pt['rss_peak_bytes'] / 2**20:,.0f} "
                f"({pt.get('rss_anon_peak_bytes', 0) / 2**20:,.0f}) | "
                f"{pt['db_bytes'] / 2**20:,.0f} | {pt['genesis_s']:.1f} |"
            )
        if axis == "shards":
            L += ["", render_shards(s)]
        L += ["", f"![{axis}](img/sweep-{axis}.png)", ""]
    if "profile" in rep:
        pr = rep["profile"]
        L += [
            "### Where the block pipeline's time goes (py-spy)",
            "",
            f"`{pr['command']}` — {pr['producer_samples']:,} samples of the producer thread "
            "(cuts and executes blocks) and the committer thread (state tree, LMDB write txn, "
            f"notifications) of {pr['samples_total']:,} in all threads.",
            "",
            "| thread: stage | share |",
            "|---|---:|",
        ]
        L += [f"| {label} | {share:.0%} |" for label, _, share in pr["stages"]]
        L += ["", "| top self-time frames (producer + committer) | share |", "|---|---:|"]
        L += [f"| `{name}` | {share:.1%} |" for name, _, share in pr["top_self"][:10]]
        L.append("")
    L.append(END)
    return "\n".join(L)


def render_shards(s: dict) -> str:
    """Below the shards table: scaling, CPU split, router overhead, cross-shard cost."""
    pts = {pt["x"]: pt for pt in s["points"] if "error" not in pt}
    sp = s.get("shards_params", {})
    L = []
    if sp:
        L.append(
            f"`{s['command']}` ({s['wall_s']:.0f} s, "
            f"load average {s['load_avg'][0]:.1f}/{s['load_avg'][1]:.1f}): "
            f"a fresh cluster per point, sync={s['sync']}, {sp['accounts']:,} accounts, "
            f"{sp['threads']} submitter threads x {sp['inflight']} batches of {sp['batch_txs']} in flight; "
            "every transfer's sender and recipient share a home shard (each tx single-shard)."
        )
    if s.get("scaling_efficiency") is not None:
        L += [
            "",
            f"Scaling efficiency TPS(2) / (2 x TPS(1)) = **{s['scaling_efficiency']:.2f}** "
            f"({pts[2]['tps'] / pts[1]['tps']:.2f}x the 1-shard TPS on 2 cores).",
        ]
    if pts:
        L += [
            "",
            "| shards | CPU scheduler | CPU per shard process | scheduler CPU µs/tx | shard CPU µs/tx |",
            "|---:|---:|---:|---:|---:|",
        ]
        for x, pt in sorted(pts.items()):
            L.append(
                f"| {x} | {pt['cpu_scheduler']:.2f} | {' + '.join(f'{c:.2f}' for c in pt['cpu_shards'])} | "
                f"{pt['scheduler_cpu_us_per_tx']:.1f} | {pt['shard_cpu_us_per_tx']:.1f} |"
            )
    router = s.get("router", {})
    if router:
        stages = ("decode", "route", "check", "partition", "gather")
        ns = [n for n in ("1", "2") if n in router and "error" not in router[n]]
        L += [
            "",
            "Router overhead (scheduler side, same batches, not sent): `decode_batch`, `route_batch`, "
            "chain-id + write-span check, per-shard partition, `gather_frames`; µs per tx, best of "
            f"{sp.get('router_reps', '?')}. End to end: 1e6 / TPS of the point above.",
            "",
            "| stage | " + " | ".join(f"{n} shard{'s' * (n != '1')} µs/tx" for n in ns) + " |",
            "|---|" + "---:|" * len(ns),
        ]
        for k in stages:
            L.append(f"| {k} | " + " | ".join(f"{router[n][k + '_us_per_tx']:.2f}" for n in ns) + " |")
        L.append(
            "| **router total** | " + " | ".join(f"**{router[n]['total_us_per_tx']:.2f}**" for n in ns) + " |"
        )
        e2e = [f"{pts[int(n)]['us_per_tx_e2e']:.1f}" if int(n) in pts else "failed" for n in ns]
        L.append("| end to end (1e6 / TPS) | " + " | ".join(e2e) + " |")
        for n, r in router.items():
            if "error" in r:
                L.append(f"\nRouter, {n} shards: **failed**: {r['error']}")
    x = s.get("xshard", {})
    if "error" in x:
        L += ["", f"Cross-shard cost: **failed**: {x['error']}"]
    elif x:
        lt, b, ra = x["light"], x["burst"], x["ratios"]
        L += [
            "",
            "Cross-shard vs local transfer, same 2-shard cluster right after its load, coordinator "
            f"running (idle poll {x['coordinator_interval_ms']:.0f} ms; finish detected by polling the "
            f"pending records every {x['poll_ms']:.0f}-{x.get('poll_ms_max', 20):.0f} ms, less often "
            f"the more are pending). Light load: {lt['rounds']} sequential rounds "
            f"of {lt['batch']} transfers. Burst: {b['local']['transfers']:,} transfers of each kind, "
            f"batches of {b['batch']}, {b['inflight']} in flight. Local: submit -> committed; cross-shard: "
            "submit -> finished at the destination (`xf/` written).",
            "",
            "| | local | cross-shard | cross / local |",
            "|---|---:|---:|---:|",
            f"| light load latency p50 ms | {lt['local']['latency_ms_p50']:.1f} | "
            f"{lt['cross']['latency_ms_p50']:.1f} | {ra['light_latency_p50_cross_over_local']:.1f}x |",
            f"| light load latency p99 ms | {lt['local']['latency_ms_p99']:.1f} | "
            f"{lt['cross']['latency_ms_p99']:.1f} | |",
            f"| burst: transfers resolved per second | {b['local']['per_s']:,.0f} | "
            f"{b['cross']['per_s']:,.0f} | "
            f"{1 / ra['throughput_local_over_cross']:.2f}x |",
            f"| burst latency p50 / p99 ms | {b['local']['latency_ms_p50']:.0f} / "
            f"{b['local']['latency_ms_p99']:.0f} | "
            f"{b['cross']['latency_ms_p50']:.0f} / {b['cross']['latency_ms_p99']:.0f} | "
            f"{ra['burst_latency_p50_cross_over_local']:.1f}x (p50) |",
            f"| chain transactions per transfer | 1 | {x['chain_txs_per_transfer']:.2f} | |",
            "",
            f"{x['cross_committed']:,} cross-shard transfers committed at their destination, "
            f"{x['cross_not_committed']} not.",
        ]
    return "\n".join(L)


def write_doc_section(md: str) -> None:
    text = DOC.read_text()
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + md + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n## Bench suite (issue 5): generated figures\n\n" + md + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
