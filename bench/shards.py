"""One shard vs two, router overhead, and cross-shard vs local transfers, in one run (issue 7).

Usage::

    PYTHONPATH=core python bench/shards.py [--seconds 15] [--sync full|none] [--tiny] [--out FILE.json]

Measured in this order, every figure from this one run:

1. **Router overhead** (scheduler side, no shard involved): on the very batches the
   2-shard point submits, the time of ``decode_batch``, ``route_batch``, the
   cluster's chain-id + write-span check, the per-shard partition and
   ``gather_frames``, in µs per transaction (best of ``--router-reps``).
2. **1 shard**, then **2 shards**: a fresh ``Cluster`` each, driven closed loop by
   ``--threads`` submitter threads x ``--inflight`` batches of ``--batch`` pre-signed
   transfers; warm-up, then ``--seconds`` measured. Every transfer's sender and
   recipient share a home shard (``route_keys([balance_key(pk)], n)``), so every
   transaction is single-shard and signed for its shard's chain id. Aggregate
   committed TPS, submit-to-commit latency, CPU of the scheduler and of each
   shard process. Scaling efficiency = TPS(2) / (2 x TPS(1)).
3. **Cross-shard vs local**, on the same 2-shard cluster right after its load, with
   a ``Coordinator`` running: light load (sequential rounds of ``--lat-batch``
   transfers: latency) and a burst of ``--xfers`` transfers (closed loop: resolved
   transfers per second and latency). A local transfer is resolved when its
   receipt says committed; a cross-shard one when it is no longer pending at
   either shard (its ``xf/`` record is written: checked for every transfer at the
   end). Chain transactions per cross-shard transfer are counted from the
   committed ``xtransfer``s plus the coordinator's nonces on each shard.

Signing happens before any clock, in a process pool, cached in ``.cache/tierchain``.
Each part is recorded with its error if it fails; the others still run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import pickle
import platform
import queue
import resource
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from tierchain.apps import accounts as accounts_app
from tierchain.apps import xshard
from tierchain.config import ChainConfig, GenesisAccount, SyntheticAccounts
from tierchain.crypto import KeyPair
from tierchain.engine.genesis import synthetic_public_keys
from tierchain.engine.route import route_batch, route_keys
from tierchain.tools import loadgen
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "tierchain"
console = Console(stderr=True)
CACHE_FORMAT = 1  # bump when the signed bytes would differ for the same parameters
BASE_CHAIN_ID = 100
GENESIS_BALANCE = 10**12
NODE = KeyPair.from_seed(hashlib.blake2b(b"tierchain bench shards node", digest_size=32).digest())
COORD = KeyPair.from_seed(hashlib.blake2b(b"tierchain bench shards coordinator", digest_size=32).digest())
XSHARD_TXS_PER_TRANSFER = 4  # xtransfer, xcredit, xdecide, xfinish (tierchain.apps.xshard)


@dataclasses.dataclass(frozen=True)
class Params:
    accounts: int = 10_000  # state size: real senders + synthetic recipients
    senders: int = 4096  # signing senders of the TPS load
    threads: int = 4  # submitter threads
    batch_txs: int = 512
    inflight: int = 4  # batches in flight per thread (closed loop)
    seconds: float = 15.0
    warmup_s: float = 3.0
    tx_rate_guess: int = 18_000  # tx/s per shard used to size the signed workload
    sync: str = "full"
    block_txs_max: int = 4096
    block_interval_ms: int = 20
    router_reps: int = 5
    xfers: int = 10_000  # transfers of each kind (local, cross) in the throughput burst
    xfer_senders: int = 512  # senders of each kind in the burst
    xfer_batch: int = 256
    xfer_inflight: int = 4
    lat_rounds: int = 20  # light load: sequential rounds of lat_batch transfers
    lat_batch: int = 4
    coord_interval_ms: float = 10.0  # coordinator's idle poll
    poll_ms: float = 5.0  # how often the bench looks for finished cross-shard transfers
    timeout_ms: int = 600_000  # escrow deadline of a cross-shard transfer
    seed: int = 11

    def txs_for(self, n_shards: int) -> int:
        return int((self.seconds + self.warmup_s) * self.tx_rate_guess * n_shards * 1.3) + 4096

    @property
    def xsenders(self) -> int:  # latency senders (local, cross) + burst senders (local, cross)
        return 2 * self.lat_batch + 2 * self.xfer_senders


FULL = Params()
TINY = Params(
    accounts=2_000,
    senders=512,
    batch_txs=256,
    seconds=1.2,
    warmup_s=0.4,
    tx_rate_guess=10_000,
    router_reps=2,
    xfers=300,
    xfer_senders=32,
    xfer_batch=64,
    lat_rounds=4,
    lat_batch=2,
)


# --- accounts and genesis -------------------------------------------------------------


@dataclasses.dataclass
class World:
    """Every account of the benchmark; identical genesis for the 1- and 2-shard clusters."""

    p: Params
    real: list[bytes]  # public keys of loadgen.sender_key(seed, i): TPS senders, then xfer senders
    synthetic: int  # synthetic recipients (no key), indices real..real+synthetic in ``pool``

    @property
    def pool(self) -> list[bytes]:
        """Recipients: TPS senders and synthetic accounts (never the xfer senders)."""
        syn = synthetic_public_keys(self.p.seed, 0, self.synthetic)
        return self.real[: self.p.senders] + [syn[i : i + 32] for i in range(0, len(syn), 32)]

    def config(self) -> ChainConfig:
        p = self.p
        accounts = [GenesisAccount(pk, (), GENESIS_BALANCE) for pk in self.real]
        accounts.append(GenesisAccount(NODE.public_key, ("registrar",), 0))
        accounts.append(GenesisAccount(COORD.public_key, ("coordinator",), 0))
        return ChainConfig(
            chain_id=BASE_CHAIN_ID,
            sync=p.sync,
            block_txs_max=p.block_txs_max,
            block_interval_ms=p.block_interval_ms,
            mempool_txs_max=max(100_000, 4 * p.block_txs_max),
            genesis_accounts=tuple(accounts),
            genesis_synthetic=SyntheticAccounts(self.synthetic, p.seed, 0) if self.synthetic else None,
        )


def make_world(p: Params, pool) -> World:
    n_real = p.senders + p.xsenders
    if p.accounts < n_real + 2 + 16:
        raise ValueError(f"accounts must exceed the {n_real} real senders")
    real = pool.map(loadgen.sender_public_key, [(p.seed, i) for i in range(n_real)], chunksize=256)
    return World(p, real, p.accounts - n_real - 2)


def homes(keys: list[bytes], n_shards: int) -> np.ndarray:
    """Home shard of each account: where its balance key routes."""
    return route_keys([accounts_app.balance_key(k) for k in keys], n_shards).astype(np.int64)


# --- signing (before any clock, in a process pool) ----------------------------------------


def _sign_job(job: tuple) -> list[bytes]:
    """Signed txs of ``senders`` (account indices), round-robin by nonce (nonces ascending)."""
    kind, seed, n_shards, senders, sender_home, to_pks, amounts, first_nonce, timeout_ms = job
    keys = [loadgen.sender_key(seed, s) for s in senders]
    out = []
    for col in range(amounts.shape[1]):
        for row, key in enumerate(keys):
            h = int(sender_home[row])
            to, amount, nonce = to_pks[row][col], int(amounts[row, col]), first_nonce + col
            if kind == "cross":
                dst = (h + 1) % n_shards
                tx = xshard.transfer(BASE_CHAIN_ID + h, h, dst, key.public_key, nonce, to, amount, timeout_ms)
            else:
                tx = accounts_app.transfer(BASE_CHAIN_ID + h, key.public_key, nonce, to, amount)
            out.append(key.sign_tx(tx).encode())
    return out


def _plan(
    rng: np.random.Generator,
    senders: list[int],
    world_real: list[bytes],
    pool: list[bytes],
    pool_home: np.ndarray,
    n_shards: int,
    per_sender: int,
    cross: bool,
) -> tuple[np.ndarray, list[list[bytes]], np.ndarray]:
    """(sender homes, recipients per sender per nonce, amounts): recipient on the sender's
    home shard (local) or on the next shard (cross), never the sender itself."""
    s_home = homes([world_real[s] for s in senders], n_shards)
    by_home = [np.flatnonzero(pool_home == h) for h in range(n_shards)]
    to_pks = []
    for s, h in zip(senders, s_home.tolist(), strict=True):
        cand = by_home[(h + 1) % n_shards if cross else h]
        pos = rng.integers(0, len(cand), per_sender)
        me = world_real[s]
        to_pks.append(
            [pool[cand[j]] if pool[cand[j]] != me else pool[cand[(j + 1) % len(cand)]] for j in pos]
        )
    return s_home, to_pks, rng.integers(1, 100, (len(senders), per_sender))


def _jobs(kind, p, n_shards, senders, s_home, to_pks, amounts, first_nonce, parts) -> list[tuple]:
    groups = [list(range(k, len(senders), parts)) for k in range(parts)]
    return [
        (
            kind,
            p.seed,
            n_shards,
            [senders[i] for i in g],
            s_home[g],
            [to_pks[i] for i in g],
            amounts[g],
            first_nonce,
            p.timeout_ms,
        )
        for g in groups
        if g
    ]


def _cached(tag_fields: tuple, build):
    tag = hashlib.blake2b(repr((CACHE_FORMAT, *tag_fields)).encode(), digest_size=10).hexdigest()
    path = CACHE / f"shards-{tag}.pickle"
    if path.exists():
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except Exception:  # a torn or foreign file: rebuild it
            pass
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return value


def tps_streams(p: Params, world: World, n_shards: int, pool) -> list[list[bytes]]:
    """Per submitter thread, framed batches of shard-local transfers for an ``n_shards`` cluster."""

    def build() -> list[list[bytes]]:
        rng = np.random.default_rng([p.seed, n_shards])
        recipients = world.pool
        pool_home = homes(recipients, n_shards)
        per_sender = max(1, -(-p.txs_for(n_shards) // p.senders))
        senders = list(range(p.senders))
        s_home, to_pks, amounts = _plan(
            rng, senders, world.real, recipients, pool_home, n_shards, per_sender, False
        )
        jobs = _jobs("local", p, n_shards, senders, s_home, to_pks, amounts, 0, p.threads)
        streams = pool.map(_sign_job, jobs, chunksize=1)
        return [[frame(s[i : i + p.batch_txs]) for i in range(0, len(s), p.batch_txs)] for s in streams]

    fields = (p.accounts, p.senders, p.threads, p.batch_txs, p.txs_for(n_shards), p.seed, n_shards)
    return _cached(("tps", *fields), build)


def xfer_workloads(p: Params, world: World, pool, n_shards: int = 2) -> dict:
    """Signed local and cross-shard transfers of the xfer senders (never used by the TPS load).

    ``lat_*``: ``lat_rounds`` framed batches of ``lat_batch`` txs (one per sender, nonce = round);
    ``burst_*``: framed batches of ``xfer_batch`` txs, ``xfers`` in all.
    """

    def build() -> dict:
        rng = np.random.default_rng([p.seed, 99])
        recipients = world.pool
        pool_home = homes(recipients, n_shards)
        base = p.senders
        groups = {
            "lat_local": list(range(base, base + p.lat_batch)),
            "lat_cross": list(range(base + p.lat_batch, base + 2 * p.lat_batch)),
            "burst_local": list(range(base + 2 * p.lat_batch, base + 2 * p.lat_batch + p.xfer_senders)),
            "burst_cross": list(range(base + 2 * p.lat_batch + p.xfer_senders, base + p.xsenders)),
        }
        out = {}
        for name, senders in groups.items():
            cross = name.endswith("cross")
            per = p.lat_rounds if name.startswith("lat") else -(-p.xfers // p.xfer_senders)
            s_home, to_pks, amounts = _plan(
                rng, senders, world.real, recipients, pool_home, n_shards, per, cross
            )
            jobs = _jobs("cross" if cross else "local", p, n_shards, senders, s_home, to_pks, amounts, 0, 8)
            signed = pool.map(_sign_job, jobs, chunksize=1)
            # Jobs split the senders; put the txs back in nonce-major order.
            width = len(senders)
            txs = [b""] * (width * per)
            for k, part in enumerate(signed):
                mine = list(range(k, width, 8))
                for j, tx in enumerate(part):
                    col, row = divmod(j, len(mine))
                    txs[col * width + mine[row]] = tx
            if name.startswith("burst"):
                txs = txs[: p.xfers]
                size = p.xfer_batch
            else:
                size = width
            out[name] = [frame(txs[i : i + size]) for i in range(0, len(txs), size)]
        return out

    fields = (p.accounts, p.senders, p.xsenders, p.lat_batch, p.lat_rounds, p.xfers, p.xfer_senders)
    return _cached(("xfer", *fields, p.xfer_batch, p.seed, p.timeout_ms, n_shards), build)


# --- router overhead ---------------------------------------------------------------------


def router_cost(batches: list[bytes], n_shards: int, reps: int) -> dict:
    """Scheduler-side cost per tx of what ``Cluster.submit`` does before sending, stage by stage."""
    from tierchain.engine.route import writes_on as span_ok
    from tierchain.sharding.cluster import gather_frames

    span_impl = "tierchain.engine.route.writes_on (the check Cluster.submit makes)"
    stages = ("decode", "route", "check", "partition", "gather")
    best = dict.fromkeys(stages, float("inf"))
    n_tx = 0
    for rep in range(reps):
        spent = dict.fromkeys(stages, 0.0)
        n_tx = wrong = 0
        for buf in batches:
            t0 = time.perf_counter()
            batch = decode_batch(buf)
            t1 = time.perf_counter()
            shard = route_batch(batch, n_shards)
            t2 = time.perf_counter()
            ok = shard >= 0
            routed = np.where(ok, BASE_CHAIN_ID + shard, 0).astype(np.int64)
            bad = ok & ((batch.chain_id.astype(np.int64) != routed) | ~span_ok(batch, shard, n_shards))
            t3 = time.perf_counter()
            shard = np.where(bad, -1, shard)
            order = np.argsort(shard, kind="stable")
            counts = np.bincount(shard[shard >= 0], minlength=n_shards)
            t4 = time.perf_counter()
            first = int((shard < 0).sum())
            size = 0
            for count in counts.tolist():
                size += len(gather_frames(batch, order[first : first + count]))
                first += count
            t5 = time.perf_counter()
            for k, (a, b) in zip(stages, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)), strict=True):
                spent[k] += b - a
            n_tx += len(batch)
            wrong += int(bad.sum())
            if rep == 0 and size != len(buf):
                raise AssertionError("gathered frames do not add up to the batch")
        if wrong:
            raise AssertionError(f"{wrong} rows of the workload would be refused WRONG_SHARD")
        for k in stages:
            best[k] = min(best[k], spent[k])
    us = {f"{k}_us_per_tx": best[k] / n_tx * 1e6 for k in stages}
    return {
        "n_shards": n_shards,
        "batches": len(batches),
        "txs": n_tx,
        "reps": reps,
        **us,
        "total_us_per_tx": sum(us.values()),
        "span_check": span_impl,
    }


# --- driving a cluster -------------------------------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _proc_status(pid: int, field: str) -> int:
    return loadgen.proc_status_bytes(pid, field) or 0


def _self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _receipt_counts(receipts) -> tuple[int, int]:
    ok = failed = 0
    for r in receipts:
        if r is not None:
            ok += r.code == 0
            failed += r.code != 0
    return ok, failed


def drive_closed(
    cluster, streams: list[list[bytes]], *, seconds: float, warmup_s: float, inflight: int, status=None
) -> dict:
    """Closed loop: each thread keeps ``inflight`` batches outstanding; figures after warm-up."""
    pids = [cluster.pid(i) for i in range(cluster.n_shards)]
    lock = threading.Lock()
    done: list[tuple[float, float, int]] = []  # (submit, settled, committed ok)
    counts = {"rejected": 0, "failed": 0}
    errors: list[str] = []
    stop = threading.Event()
    t_start = time.perf_counter()

    def waiter(q: queue.SimpleQueue, slots: threading.Semaphore) -> None:
        while (item := q.get()) is not None:
            t0, sub = item
            try:
                ok, failed = _receipt_counts(sub.wait(300))
            except Exception as exc:  # recorded; the run stops
                errors.append(f"wait: {exc!r}")
                stop.set()
                ok = failed = 0
            t1 = time.perf_counter()
            with lock:
                done.append((t0, t1, ok))
                counts["failed"] += failed
                counts["rejected"] += int((sub.codes != 0).sum())
            slots.release()

    def submitter(batches: list[bytes]) -> None:
        q: queue.SimpleQueue = queue.SimpleQueue()
        slots = threading.Semaphore(inflight)
        w = threading.Thread(target=waiter, args=(q, slots), daemon=True)
        w.start()
        try:
            for buf in batches:
                slots.acquire()
                if stop.is_set():
                    break
                t0 = time.perf_counter()
                q.put((t0, cluster.submit(buf)))
        except Exception as exc:
            errors.append(f"submit: {exc!r}")
            stop.set()
        finally:
            q.put(None)
            w.join()

    threads = [threading.Thread(target=submitter, args=(s,), daemon=True) for s in streams]
    end_t = t_start + warmup_s + seconds
    marks: dict = {}
    anon_peak = [0] * len(pids)

    def mark() -> dict:
        return {"t": time.perf_counter(), "self": _self_cpu_s(), "shards": [_proc_cpu_s(pid) for pid in pids]}

    if not warmup_s:
        marks["start"] = mark()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(min(0.25, max(0.005, end_t - time.perf_counter())))
        now = time.perf_counter()
        anon_peak = [max(a, _proc_status(pid, "RssAnon")) for a, pid in zip(anon_peak, pids, strict=True)]
        if "start" not in marks and now >= t_start + warmup_s:
            marks["start"] = mark()
        if status is not None:
            with lock:
                c = sum(d[2] for d in done)
            status(now - t_start, warmup_s + seconds, c)
        if now >= end_t and "end" not in marks:
            marks["end"] = mark()
            stop.set()
    marks.setdefault("start", mark())
    marks.setdefault("end", mark())
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    w0, w1 = t_start + warmup_s, min(end_t, marks["end"]["t"])
    arr = np.array(done, np.float64).reshape(-1, 3)
    exhausted = bool(len(arr) and arr[:, 1].max() < w1 - 0.5)
    if exhausted:
        w1 = float(arr[:, 1].max())
    in_w = (arr[:, 1] >= w0) & (arr[:, 1] <= w1)
    committed = int(arr[in_w, 2].sum())
    window_s = max(1e-9, w1 - w0)
    # Commits arrive in bursts (a block, a batch): count from the first commit in the window.
    times = np.unique(arr[in_w, 1])
    if len(times) >= 3:
        after = in_w & (arr[:, 1] > times[0])
        tps = float(arr[after, 2].sum()) / (times[-1] - times[0])
    else:
        tps = committed / window_s
    sent = arr[(arr[:, 0] >= w0) & (arr[:, 1] <= w1) & (arr[:, 2] > 0)]
    lat = np.repeat((sent[:, 1] - sent[:, 0]) * 1000, sent[:, 2].astype(np.int64))
    if not lat.size:
        lat = np.zeros(1)
    span = max(1e-9, marks["end"]["t"] - marks["start"]["t"])
    sched_cpu = (marks["end"]["self"] - marks["start"]["self"]) / span
    shard_cpu = [
        (b - a) / span for a, b in zip(marks["start"]["shards"], marks["end"]["shards"], strict=True)
    ]
    return {
        "seconds": window_s,
        "warmup_s": warmup_s,
        "committed": committed,
        "rejected": counts["rejected"],
        "failed": counts["failed"],
        "tps": tps,
        "us_per_tx_e2e": 1e6 / tps if tps else None,
        "latency_ms_p50": float(np.percentile(lat, 50)),
        "latency_ms_p95": float(np.percentile(lat, 95)),
        "latency_ms_p99": float(np.percentile(lat, 99)),
        "latency_ms_max": float(lat.max()),
        "cpu_scheduler": sched_cpu,
        "cpu_shards": shard_cpu,
        "cpu_util": sched_cpu + sum(shard_cpu),
        "scheduler_cpu_us_per_tx": sched_cpu * 1e6 / tps if tps else None,
        "shard_cpu_us_per_tx": sum(shard_cpu) * 1e6 / tps if tps else None,
        "rss_anon_shards_peak_bytes": anon_peak,
        "exhausted": exhausted,
    }


def tps_point(p: Params, world: World, n_shards: int, streams: list[list[bytes]], after=None) -> dict:
    """A fresh ``n_shards`` cluster under the closed loop; ``after(cluster)`` runs on it before close."""
    from tierchain.sharding.cluster import Cluster

    root = Path(tempfile.mkdtemp(prefix=f"tierchain-shards{n_shards}-"))
    out: dict = {"n_shards": n_shards, "x": n_shards}
    try:
        t0 = time.perf_counter()
        with Cluster(root, world.config(), NODE.seed, n_shards) as cluster:
            out["genesis_s"] = time.perf_counter() - t0
            pids = [cluster.pid(i) for i in range(n_shards)]
            label = f"{n_shards} shard{'s' * (n_shards > 1)}"
            with console.status(f"{label}: load ...") as st:

                def show(t: float, of: float, c: int) -> None:
                    st.update(f"{label}: {t:4.1f}/{of:.0f} s  {c:,} committed")

                out.update(
                    drive_closed(
                        cluster,
                        streams,
                        seconds=p.seconds,
                        warmup_s=p.warmup_s,
                        inflight=p.inflight,
                        status=show,
                    )
                )
            out["heights"] = cluster.heights()
            out["rss_shards_peak_bytes"] = [_proc_status(pid, "VmHWM") for pid in pids]
            if after is not None:
                after(cluster)
        out["db_bytes"] = _dir_bytes(root)
        # A cluster's memory is the scheduler's (it holds the signed workload) plus every shard's.
        out["rss_peak_bytes"] = loadgen.rss_peak_bytes() + sum(out["rss_shards_peak_bytes"])
        out["rss_anon_peak_bytes"] = loadgen.rss_anon_bytes() + sum(out["rss_anon_shards_peak_bytes"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


# --- cross-shard vs local ------------------------------------------------------------------------


def _scan(cluster, shard: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    after = b""
    while True:
        page = cluster.call(shard, "state_scan", prefix, 5000, after)
        out += page
        if len(page) < 5000:
            return out
        after = page[-1][0]


def pending_xids(cluster) -> set[tuple[int, bytes, int]]:
    """Transfers not finished yet. Locks (``xl/``) of every shard are read before credits
    (``xc/``): a transfer leaves ``xl/`` (decision) only after entering ``xc/`` (prepare at
    the destination), or finishes outright on an abort, so it cannot slip between the two."""
    out = set()
    for kind, rec in ((b"xl/", xshard.Lock), (b"xc/", xshard.Credit)):
        for s in range(cluster.n_shards):
            for k, v in _scan(cluster, s, xshard.pin(s) + kind):
                r = rec.from_record(k, v)
                out.add((r.src, r.sender, r.nonce))
    return out


def _xids(buf: bytes, sub) -> list[tuple[int, bytes, int]]:
    """(src, sender, nonce) of every committed xtransfer row of a submitted batch."""
    b = decode_batch(buf)
    out = []
    for i, r in enumerate(sub.receipts):
        if r is not None and r.code == 0:
            src = int.from_bytes(b.payload(i)[40:42], "little")  # payload: to 32, amount 8, src 2, ...
            out.append((src, b.sender[i].tobytes(), int(b.nonce[i])))
    return out


class FinishWatch:
    """Polls the pending records and stamps each watched transfer when it is no longer pending."""

    def __init__(self, cluster, poll_s: float) -> None:
        self.cluster, self.poll_s = cluster, poll_s
        self.watch: dict[tuple, float] = {}  # xid -> submit time
        self.finished: dict[tuple, tuple[float, float]] = {}  # xid -> (submit, finish)
        self.lock = threading.Lock()
        self.scans = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="finish-watch")
        self._thread.start()

    def add(self, xids: list[tuple], t0: float) -> None:
        with self.lock:
            for x in xids:
                self.watch[x] = t0

    def _loop(self) -> None:
        wait_s = self.poll_s
        while not self._stop.wait(wait_s):
            with self.lock:
                candidates = list(self.watch.items())  # committed before this scan starts
            # A scan reads every pending record: with thousands pending, scan less often so the
            # watch does not compete with the coordinator (20 µs per pending transfer, <= 0.25 s).
            wait_s = min(0.25, max(self.poll_s, 2e-5 * len(candidates)))
            if not candidates:
                continue
            try:
                pend = pending_xids(self.cluster)
            except Exception as exc:
                self.error = repr(exc)
                continue
            t = time.perf_counter()
            self.scans += 1
            with self.lock:
                for x, t0 in candidates:
                    if x not in pend:
                        self.finished[x] = (t0, t)
                        self.watch.pop(x, None)

    def wait_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.watch:
                    return
            time.sleep(self.poll_s)
        raise TimeoutError(f"{len(self.watch)} cross-shard transfers not finished in {timeout:.0f} s")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _lat_stats(ms: list[float]) -> dict:
    a = np.array(ms or [0.0])
    return {
        "latency_ms_p50": float(np.percentile(a, 50)),
        "latency_ms_p95": float(np.percentile(a, 95)),
        "latency_ms_p99": float(np.percentile(a, 99)),
        "latency_ms_mean": float(a.mean()),
    }


def _burst(cluster, batches: list[bytes], inflight: int, on_commit) -> tuple[float, int, int, list[float]]:
    """Submit every batch, ``inflight`` outstanding; returns (t_first_submit, ok, rejected, latencies ms
    submit -> commit per ok tx). ``on_commit(buf, sub, t0)`` runs for each settled batch."""
    slots = threading.Semaphore(inflight)
    q: queue.SimpleQueue = queue.SimpleQueue()
    res = {"ok": 0, "rejected": 0, "lat": [], "error": None}

    def waiter() -> None:
        while (item := q.get()) is not None:
            buf, t0, sub = item
            try:
                ok, _ = _receipt_counts(sub.wait(300))
                t1 = time.perf_counter()
                res["ok"] += ok
                res["rejected"] += int((sub.codes != 0).sum())
                res["lat"] += [(t1 - t0) * 1000] * ok
                on_commit(buf, sub, t0)
            except Exception as exc:
                res["error"] = repr(exc)
            slots.release()

    w = threading.Thread(target=waiter, daemon=True)
    w.start()
    t_first = time.perf_counter()
    try:
        for buf in batches:
            slots.acquire()
            q.put((buf, time.perf_counter(), cluster.submit(buf)))
    finally:
        q.put(None)
        w.join()
    if res["error"]:
        raise RuntimeError(res["error"])
    return t_first, res["ok"], res["rejected"], res["lat"]


def xshard_cost(cluster, p: Params, xw: dict) -> dict:
    """Local vs cross-shard transfers on a running 2-shard cluster, coordinator running."""
    from tierchain.apps.coordinator import Coordinator

    n = cluster.n_shards
    coord_nonce0 = [cluster.call(s, "nonce", COORD.public_key) for s in range(n)]
    coordinator = Coordinator(cluster, COORD)
    coordinator.start(interval=p.coord_interval_ms / 1000)
    watch = FinishWatch(cluster, p.poll_ms / 1000)
    out: dict = {"coordinator_interval_ms": p.coord_interval_ms, "poll_ms": p.poll_ms, "poll_ms_max": 250}
    cross_xids: list[tuple] = []
    try:
        # Light load: one small batch at a time, each waited for.
        lat_local, lat_cross = [], []
        for buf in xw["lat_local"]:
            t0 = time.perf_counter()
            sub = cluster.submit(buf)
            ok, _ = _receipt_counts(sub.wait(60))
            lat_local += [(time.perf_counter() - t0) * 1000] * ok
        for buf in xw["lat_cross"]:
            t0 = time.perf_counter()
            sub = cluster.submit(buf)
            sub.wait(60)
            xids = _xids(buf, sub)
            cross_xids += xids
            watch.add(xids, t0)
            watch.wait_all(60)
            with watch.lock:
                lat_cross += [(watch.finished[x][1] - t0) * 1000 for x in xids]
        out["light"] = {
            "rounds": p.lat_rounds,
            "batch": p.lat_batch,
            "local": {"transfers": len(lat_local), **_lat_stats(lat_local)},
            "cross": {"transfers": len(lat_cross), **_lat_stats(lat_cross)},
        }
        # Burst: everything submitted closed loop; throughput = resolved / (last resolved - first submit).
        t_first, ok, rej, lat = _burst(cluster, xw["burst_local"], p.xfer_inflight, lambda *a: None)
        t_last = time.perf_counter()
        local = {"transfers": ok, "rejected": rej, "seconds": t_last - t_first, **_lat_stats(lat)}
        local["per_s"] = ok / local["seconds"]

        def prepared(buf: bytes, sub, t0: float) -> None:
            xids = _xids(buf, sub)
            cross_xids.extend(xids)
            watch.add(xids, t0)

        n_before = len(cross_xids)
        t_first, ok, rej, prep_lat = _burst(cluster, xw["burst_cross"], p.xfer_inflight, prepared)
        t_prepared = time.perf_counter()
        watch.wait_all(max(120.0, p.xfers / 50))
        burst = cross_xids[n_before:]
        with watch.lock:
            ends = [watch.finished[x] for x in burst]
        t_last = max(e[1] for e in ends) if ends else t_first
        cross = {
            "transfers": len(burst),
            "rejected": rej,
            "seconds": t_last - t_first,
            "prepare_seconds": t_prepared - t_first,
            "prepare_latency_ms_p50": _lat_stats(prep_lat)["latency_ms_p50"],
            **_lat_stats([(e[1] - e[0]) * 1000 for e in ends]),
        }
        cross["per_s"] = len(burst) / cross["seconds"] if cross["seconds"] > 0 else 0.0
        out["burst"] = {"batch": p.xfer_batch, "inflight": p.xfer_inflight, "local": local, "cross": cross}
        out["finish_scans"] = watch.scans
    finally:
        watch.close()
        coordinator.stop()
    # Every cross-shard transfer of this run: finished, and committed at its destination.
    finished = {}
    for s in range(n):
        for k, v in _scan(cluster, s, xshard.pin(s) + b"xf/"):
            c = xshard.Credit.from_record(k, v)
            finished[(c.src, c.sender, c.nonce)] = c.status
    statuses = [finished.get(x) for x in cross_xids]
    out["cross_committed"] = sum(st == xshard.Status.COMMITTED for st in statuses)
    out["cross_not_committed"] = len(statuses) - out["cross_committed"]
    coord_txs = sum(cluster.call(s, "nonce", COORD.public_key) - coord_nonce0[s] for s in range(n))
    out["coordinator_txs"] = coord_txs
    out["chain_txs_per_transfer"] = (len(cross_xids) + coord_txs) / max(1, len(cross_xids))
    out["chain_txs_per_transfer_expected"] = XSHARD_TXS_PER_TRANSFER
    out["last_step"] = (
        None
        if coordinator.last is None
        else {"failed": dict(coordinator.last.failed), "pending_locks": coordinator.last.pending_locks}
    )
    light, b = out["light"], out["burst"]
    out["ratios"] = {
        "light_latency_p50_cross_over_local": light["cross"]["latency_ms_p50"]
        / max(1e-9, light["local"]["latency_ms_p50"]),
        "burst_latency_p50_cross_over_local": b["cross"]["latency_ms_p50"]
        / max(1e-9, b["local"]["latency_ms_p50"]),
        "throughput_local_over_cross": b["local"]["per_s"] / max(1e-9, b["cross"]["per_s"]),
    }
    return out


# --- the whole measurement ---------------------------------------------------------------------------


def _error(exc: BaseException) -> dict:
    return {"error": f"{type(exc).__name__}: {exc}"[:500], "traceback": traceback.format_exc()[-2000:]}


def measure(p: Params, *, tiny: bool = False, command: str = "") -> dict:
    t_start = time.perf_counter()
    rep: dict = {
        "command": command,
        "tiny": tiny,
        "params": dataclasses.asdict(p),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_avg_before": os.getloadavg(),
    }
    # Everything signed before any clock (cached on disk for the next run).
    t0 = time.perf_counter()
    with console.status("signing workloads (process pool; cached) ..."):
        with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
            world = make_world(p, pool)
            streams = {n: tps_streams(p, world, n, pool) for n in (1, 2)}
            xw = xfer_workloads(p, world, pool)
    rep["prepare_s"] = time.perf_counter() - t0
    rep["txs_signed"] = {str(n): sum(len(s) for s in streams[n]) for n in streams}

    rep["router"] = {}
    for n in (1, 2):
        try:
            flat = [b for s in streams[n] for b in s]
            sample = flat[: max(8, min(len(flat), 64))]
            rep["router"][str(n)] = router_cost(sample, n, p.router_reps)
        except Exception as exc:
            rep["router"][str(n)] = _error(exc)

    rep["points"] = []
    for n in (1, 2):
        xs: dict = {}

        def after(cluster, xs=xs) -> None:
            try:
                xs.update(xshard_cost(cluster, p, xw))
            except Exception as exc:
                xs.update(_error(exc))

        try:
            pt = tps_point(p, world, n, streams[n], after if n == 2 else None)
        except Exception as exc:
            pt = {"n_shards": n, "x": n, **_error(exc)}
        rep["points"].append(pt)
        if n == 2:
            rep["xshard"] = xs or {"error": "the 2-shard cluster did not come up"}
        streams[n] = []  # free the signed bytes before the next cluster
    ok = {pt["n_shards"]: pt["tps"] for pt in rep["points"] if "error" not in pt}
    rep["scaling_efficiency"] = ok[2] / (2 * ok[1]) if 1 in ok and 2 in ok and ok[1] else None
    rep["speedup"] = ok[2] / ok[1] if 1 in ok and 2 in ok and ok[1] else None
    rep["sync"] = p.sync
    rep["durable"] = p.sync == "full"
    rep["load_avg_after"] = os.getloadavg()
    rep["wall_s"] = time.perf_counter() - t_start
    return rep


def print_table(rep: dict) -> None:
    t = Table(title=f"shards (sync={rep['sync']}; {rep['wall_s']:.0f} s)")
    for col in ("shards", "TPS", "µs/tx e2e", "p50 ms", "p99 ms", "CPU sched", "CPU shards", "sched µs/tx"):
        t.add_column(col, justify="right")
    for pt in rep["points"]:
        if "error" in pt:
            t.add_row(str(pt["n_shards"]), f"failed: {pt['error'][:60]}", *[""] * 6)
            continue
        t.add_row(
            str(pt["n_shards"]),
            f"{pt['tps']:,.0f}",
            f"{pt['us_per_tx_e2e']:.1f}",
            f"{pt['latency_ms_p50']:.0f}",
            f"{pt['latency_ms_p99']:.0f}",
            f"{pt['cpu_scheduler']:.2f}",
            " + ".join(f"{c:.2f}" for c in pt["cpu_shards"]),
            f"{pt['scheduler_cpu_us_per_tx']:.1f}",
        )
    console.print(t)
    if rep["scaling_efficiency"] is not None:
        console.print(f"scaling efficiency TPS(2) / (2 x TPS(1)) = {rep['scaling_efficiency']:.2f}")
    for n, r in rep["router"].items():
        if "error" in r:
            console.print(f"router ({n} shards): failed: {r['error']}")
        else:
            parts = ", ".join(
                f"{k} {r[k + '_us_per_tx']:.2f}" for k in ("decode", "route", "check", "partition", "gather")
            )
            console.print(f"router ({n} shards): {r['total_us_per_tx']:.2f} µs/tx ({parts})")
    x = rep.get("xshard", {})
    if "error" in x:
        console.print(f"cross-shard: failed: {x['error']}")
    elif x:
        lt, b = x["light"], x["burst"]
        t = Table(title="cross-shard vs local transfer (2 shards, coordinator running)")
        for col in ("", "local", "cross-shard", "ratio"):
            t.add_column(col, justify="right")
        t.add_row(
            "light load p50 ms",
            f"{lt['local']['latency_ms_p50']:.1f}",
            f"{lt['cross']['latency_ms_p50']:.1f}",
            f"{x['ratios']['light_latency_p50_cross_over_local']:.1f}x",
        )
        t.add_row(
            "burst: resolved/s",
            f"{b['local']['per_s']:,.0f}",
            f"{b['cross']['per_s']:,.0f}",
            f"{x['ratios']['throughput_local_over_cross']:.1f}x",
        )
        t.add_row(
            "burst p50 ms",
            f"{b['local']['latency_ms_p50']:.0f}",
            f"{b['cross']['latency_ms_p50']:.0f}",
            f"{x['ratios']['burst_latency_p50_cross_over_local']:.1f}x",
        )
        t.add_row("chain txs per transfer", "1", f"{x['chain_txs_per_transfer']:.2f}", "")
        console.print(t)


@click.command()
@click.option("--seconds", type=float, default=None, help="Measured seconds per point [15].")
@click.option("--warmup", "warmup_s", type=float, default=None, help="Warm-up seconds per point [3].")
@click.option("--accounts", type=int, default=None, help="State size [10,000].")
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option(
    "--xfers", type=int, default=None, help="Transfers of each kind in the cross-shard burst [10,000]."
)
@click.option(
    "--tiny", is_flag=True, help="Tiny parameters (CI, ~20 s): the script runs; figures mean little."
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(seconds, warmup_s, accounts, sync, xfers, tiny, out) -> None:
    p = TINY if tiny else FULL
    over = {"seconds": seconds, "warmup_s": warmup_s, "accounts": accounts, "xfers": xfers}
    p = dataclasses.replace(p, sync=sync, **{k: v for k, v in over.items() if v is not None})
    rep = measure(p, tiny=tiny, command="python bench/shards.py " + " ".join(sys.argv[1:]))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rep, indent=1, default=str) + "\n")
    print_table(rep)


if __name__ == "__main__":
    main()
