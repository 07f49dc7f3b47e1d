"""Load generator: a solo chain under a generated workload, measured as it runs.

Workloads (``WorkloadSpec``) are transfers among ``accounts`` accounts:

* ``senders`` of them are real Ed25519 key pairs (account indices 0..senders);
  the rest are synthetic genesis accounts (``[genesis.synthetic]``, see
  ``tierchain.engine.genesis``) that only receive, so a 10M-account state costs 10M
  BLAKE3 hashes, not 10M key pairs;
* recipients follow a bounded Zipf law of exponent ``skew`` over all accounts
  (0 = uniform), ranks scattered over the key space by a fixed bijection;
* ``hot_pct`` percent of transactions pay one hot account (contention);
* other mixes (the finance voucher lifecycle) plug in through ``register_mix``.

Transactions are generated and signed before the clock starts, in parallel
processes, and cached on disk keyed by every parameter (signing is never
measured by accident). Senders are split among submitter threads so each
sender's nonces arrive in order.

``run_load`` drives a fresh chain either closed loop (each thread keeps
``inflight`` batches outstanding) or open loop (batches leave at a target rate
whatever happens; latency counts from the intended send time, so a stalled
engine cannot hide its queue — no coordinated omission). The first ``warmup_s``
seconds are excluded from every figure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import pickle
import queue
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tierchain.apps import accounts as accounts_app
from tierchain.config import ChainConfig, GenesisAccount, SyntheticAccounts
from tierchain.crypto import KeyPair
from tierchain.engine.genesis import synthetic_public_keys_at
from tierchain.wire.tx import frame

genesis_balance = 10**12
senders_default = 4096
cache_format = 3  # bump when the cached bytes would differ for the same parameters
_SCATTER = 2_654_435_761  # prime multiplier: Zipf rank -> account index bijection


@dataclasses.dataclass(frozen=True)
class WorkloadSpec:
    """Every parameter that determines the signed bytes (the cache key)."""

    accounts: int  # total registered accounts (state size)
    txs: int  # at least this many transactions
    threads: int = 4  # submitter streams
    senders: int = senders_default  # real key pairs, at most ``accounts``
    skew: float = 0.0  # Zipf exponent of recipients; 0 = uniform
    hot_pct: float = 0.0  # percent of transactions paying the hot account
    mix: str = "transfer"
    seed: int = 7
    chain_id: int = 1

    def __post_init__(self) -> None:
        if not 2 <= self.accounts <= 1 << 27:
            raise ValueError("accounts in 2..2^27")
        if not 1 <= self.threads <= self.n_senders:
            raise ValueError("threads in 1..senders")
        if not 0.0 <= self.hot_pct <= 100.0 or self.skew < 0:
            raise ValueError("hot_pct in 0..100, skew >= 0")

    @property
    def n_senders(self) -> int:
        return min(self.senders, self.accounts)

    @property
    def per_sender(self) -> int:
        return max(1, -(-self.txs // self.n_senders))

    @property
    def hot_index(self) -> int:
        """The hot account: the last one (synthetic whenever there are synthetic accounts)."""
        return self.accounts - 1

    def tag(self) -> str:
        fields = (cache_format, *dataclasses.astuple(self))
        return hashlib.blake2b(repr(fields).encode(), digest_size=10).hexdigest()


@dataclasses.dataclass
class Workload:
    spec: WorkloadSpec
    sender_keys: list[bytes]  # public keys of accounts 0..n_senders
    streams: list[list[bytes]]  # one per submitter thread, each sender's nonces ascending
    extra_genesis: tuple[GenesisAccount, ...] = ()  # accounts a mix needs besides the senders

    @property
    def accounts(self) -> int:
        return self.spec.accounts

    def all_txs(self) -> list[bytes]:
        return [t for s in self.streams for t in s]


def sender_key(seed: int, i: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.blake2b(b"tierchain loadgen %d %d" % (seed, i), digest_size=32).digest())


def account_keys(n: int, seed: int) -> list[KeyPair]:
    return [sender_key(seed, i) for i in range(n)]


def zipf_ranks(rng: np.random.Generator, n: int, s: float, size: int | tuple) -> np.ndarray:
    """Ranks in 0..n with P(r) proportional to 1/(r+1)^s (s = 0: uniform)."""
    if s == 0:
        return rng.integers(0, n, size=size, dtype=np.int64)
    cdf = np.cumsum(np.arange(1, n + 1, dtype=np.float64) ** -s)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n - 1).astype(np.int64)


def scatter(ranks: np.ndarray, n: int) -> np.ndarray:
    """A bijection of 0..n so popular ranks land on arbitrary accounts, not on the senders."""
    a = _SCATTER % n or 1
    while np.gcd(a, n) != 1:
        a += 1
    return (ranks * a + 12345) % n


def plan_transfers(spec: WorkloadSpec) -> tuple[np.ndarray, np.ndarray]:
    """(recipient index, amount), each shaped (senders, per_sender): row = sender, column = nonce."""
    rng = np.random.default_rng(spec.seed)
    shape = (spec.n_senders, spec.per_sender)
    to = scatter(zipf_ranks(rng, spec.accounts, spec.skew, shape), spec.accounts)
    if spec.hot_pct:
        to[rng.random(shape) < spec.hot_pct / 100] = spec.hot_index
    own = np.arange(spec.n_senders)[:, None]
    to = np.where(to == own, (to + 1) % spec.accounts, to)  # no self-transfers
    amount = rng.integers(1, 100, size=shape, dtype=np.int64)
    return to, amount


def recipient_keys(spec: WorkloadSpec, sender_keys: list[bytes], idx: np.ndarray) -> list[bytes]:
    """Public keys of account indices ``idx`` (real below n_senders, synthetic above)."""
    s = spec.n_senders
    out: list[bytes] = [b""] * len(idx)
    synth = np.flatnonzero(idx >= s)
    uniq, inverse = np.unique(idx[synth] - s, return_inverse=True)
    packed = synthetic_public_keys_at(spec.seed, uniq.astype(np.uint64))  # one native call
    for pos, u in zip(synth.tolist(), inverse.tolist(), strict=True):
        out[pos] = packed[32 * u : 32 * u + 32]
    for pos in np.flatnonzero(idx < s).tolist():
        out[pos] = sender_keys[int(idx[pos])]
    return out


def _sign_stream(args: tuple) -> list[bytes]:
    """Worker: signed transfers of the senders in ``mine``, round-robin, nonces ascending."""
    spec, sender_keys, mine, to, amount = args
    keys = {s: sender_key(spec.seed, s) for s in mine}
    flat_to = recipient_keys(spec, sender_keys, to.reshape(-1))
    width = to.shape[1]
    out = []
    for nonce in range(width):
        for row, s in enumerate(mine):
            t = accounts_app.transfer(
                spec.chain_id, sender_keys[s], nonce, flat_to[row * width + nonce], int(amount[row, nonce])
            )
            out.append(keys[s].sign_tx(t).encode())
    return out


def _transfer_mix(spec: WorkloadSpec, processes: int | None) -> Workload:
    with multiprocessing.get_context("fork").Pool(processes or os.cpu_count()) as pool:
        sender_pks = pool.map(
            sender_public_key, [(spec.seed, i) for i in range(spec.n_senders)], chunksize=256
        )
        to, amount = plan_transfers(spec)
        parts = [list(range(t, spec.n_senders, spec.threads)) for t in range(spec.threads)]
        jobs = [(spec, sender_pks, p, to[p], amount[p]) for p in parts]
        streams = pool.map(_sign_stream, jobs, chunksize=1)
    return Workload(spec, sender_pks, streams)


def sender_public_key(args: tuple[int, int]) -> bytes:
    """``sender_key(seed, i).public_key`` for ``pool.map`` over ``(seed, i)`` pairs."""
    return sender_key(*args).public_key


def _voucher_mix(spec: WorkloadSpec, processes: int | None) -> Workload:
    """The finance voucher lifecycle (tierchain.apps.finance.workload): 7 txs per voucher.

    One stream (``threads`` must be 1): the lifecycle is valid only in stream
    order. The committee key joins genesis; ``accounts`` beyond the parties are
    synthetic padding (state size); ``skew`` and ``hot_pct`` do not apply.
    """
    from tierchain.apps.finance.workload import TXS_PER_VOUCHER, lifecycle_workload

    if spec.threads != 1:
        raise ValueError("the voucher mix is one ordered stream: use threads=1")
    fw = lifecycle_workload(max(1, spec.txs // TXS_PER_VOUCHER), seed=spec.seed, chain_id=spec.chain_id)
    committee = GenesisAccount(fw.node.public_key, ("registrar", "committee"), 0)
    return Workload(spec, [], [fw.setup + fw.txs], extra_genesis=(committee,))


# --- mixes: the extension point ---------------------------------------------------

Mix = Callable[[WorkloadSpec, "int | None"], Workload]
MIXES: dict[str, Mix] = {"transfer": _transfer_mix, "voucher": _voucher_mix}


def register_mix(name: str, build: Mix) -> None:
    """Add a workload mix: ``build(spec, processes)`` returns a signed ``Workload``.

    A mix owns its transactions and may add genesis accounts (``extra_genesis``);
    ``spec.accounts``/``senders`` keep their meaning (state size, key pairs).
    """
    MIXES[name] = build


def build_workload(
    spec: WorkloadSpec, *, cache_dir: Path | None = None, processes: int | None = None
) -> Workload:
    """The signed workload of ``spec``, from ``cache_dir`` when an earlier run made it."""
    path = cache_dir / f"{spec.mix}-{spec.tag()}.pickle" if cache_dir else None
    if path and path.exists():
        try:
            with path.open("rb") as f:
                work = pickle.load(f)
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, ValueError, TypeError):
            work = None  # written by an older layout of the code, or cut short: rebuild it
        if isinstance(work, Workload) and work.spec == spec:
            return work
    if spec.mix not in MIXES:
        raise ValueError(f"unknown workload mix {spec.mix!r}; known: {sorted(MIXES)}")
    work = MIXES[spec.mix](spec, processes)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(work, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return work


def transfer_workload(
    accounts: int,
    txs: int,
    threads: int,
    *,
    seed: int = 7,
    chain_id: int = 1,
    cache_dir: Path | None = None,
    processes: int | None = None,
    **spec: object,
) -> Workload:
    """Shorthand for ``build_workload(WorkloadSpec(...))`` (transfers)."""
    return build_workload(
        WorkloadSpec(accounts, txs, threads, seed=seed, chain_id=chain_id, **spec),  # type: ignore[arg-type]
        cache_dir=cache_dir,
        processes=processes,
    )


def genesis_config(
    work: Workload, node: KeyPair, *, sync: str, block_txs_max: int, block_interval_ms: int, chain_id: int = 1
) -> ChainConfig:
    spec = work.spec
    accounts = [GenesisAccount(pk, (), genesis_balance) for pk in work.sender_keys]
    accounts.extend(work.extra_genesis)
    accounts.append(GenesisAccount(node.public_key, ("registrar", "committee"), 0))
    synthetic = max(0, spec.accounts - len(work.sender_keys) - len(work.extra_genesis))
    return ChainConfig(
        chain_id=chain_id,
        sync=sync,
        block_txs_max=block_txs_max,
        block_interval_ms=block_interval_ms,
        mempool_txs_max=max(100_000, 4 * block_txs_max),
        genesis_accounts=tuple(accounts),
        genesis_synthetic=SyntheticAccounts(synthetic, spec.seed, 0) if synthetic else None,
    )


# --- running ----------------------------------------------------------------------------


@dataclasses.dataclass
class LoadResult:
    mode: str  # "closed" or "open"
    rate_target: float | None  # tx/s offered (open loop)
    seconds: float  # measured window (after warm-up)
    warmup_s: float
    committed: int  # in the measured window
    rejected: int  # at admission, whole run
    failed: int  # committed with a non-zero receipt code, whole run
    tps: float
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_max: float
    height: int
    sync: str
    durable: bool
    block_txs_max: int
    cpu_s: float  # process CPU (all threads) in the measured window
    cpu_util: float  # cpu_s / seconds (2.0 = both cores of this machine busy)
    rss_peak_bytes: int  # whole process, whole life (includes the workload and mapped LMDB pages)
    rss_anon_peak_bytes: int  # sampled each tick and after genesis: memory minus mapped files
    db_bytes: int
    genesis_s: float  # opening the chain: writing the genesis state
    exhausted: bool  # the workload ran out before the window ended
    timeline: list[tuple[float, int]]  # (seconds since start, committed so far)
    # Blocks durable in the window: count, txs per block, and mean / p99 ms of each
    # pipeline stage (chain.BlockTiming): produce (of which tree), write (txn body), durable.
    blocks: dict
    latency_sample_ms: list[float]  # up to 20,000 latencies of the window, for plots
    drain_s: float = 0.0  # from the end of the window until every batch sent had settled

    def summary(self) -> str:
        """The figures of the measured window as one block of text (what ``tierchain load`` ends with)."""
        return "\n".join(
            [
                "summary" + ("  (the workload ran out before the end)" if self.exhausted else ""),
                f"  committed   {self.committed:,} txs in {self.seconds:.1f} s "
                f"(then drained in {self.drain_s:.1f} s; height {self.height:,})",
                f"  throughput  {self.tps:,.0f} TPS  (sync={self.sync}"
                + ("" if self.durable else ", NOT DURABLE")
                + ")",
                f"  latency     p50 {self.latency_ms_p50:.1f} ms  p95 {self.latency_ms_p95:.1f} ms  "
                f"p99 {self.latency_ms_p99:.1f} ms  max {self.latency_ms_max:.1f} ms",
                f"  refused     {self.rejected:,} at admission, {self.failed:,} failed in a block",
            ]
        )


def _block_stages(timings: list) -> dict:
    out: dict = {"count": len(timings), "flushed": sum(t.flushed for t in timings)}
    if timings:
        out["txs_mean"] = round(float(np.mean([t.txs for t in timings])), 1)
        for stage in ("produce", "tree", "write", "durable"):
            ms = np.array([getattr(t, f"{stage}_s") for t in timings]) * 1000
            out[f"{stage}_ms_mean"] = round(float(ms.mean()), 3)
            out[f"{stage}_ms_p99"] = round(float(np.percentile(ms, 99)), 3)
    return out


def rss_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def proc_status_bytes(pid: int | str, field: str) -> int | None:
    """A kB field of ``/proc/PID/status`` (Linux) in bytes (``VmHWM``, ``RssAnon``, ...);
    None if the process or the field is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_anon_bytes() -> int:
    """Anonymous resident memory now (Linux): the process's own memory, without the
    LMDB file pages it has mapped, which the kernel can drop at any time."""
    return proc_status_bytes("self", "RssAnon") or 0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_load(
    work: Workload,
    *,
    directory: Path | None = None,
    seconds: float = 30.0,
    warmup_s: float = 0.0,
    batch_txs: int = 256,
    inflight: int = 8,
    rate: float | None = None,
    sync: str = "full",
    block_txs_max: int = 4096,
    block_interval_ms: int = 20,
    report: Callable[[dict], None] | None = None,
    node_settings: Mapping[str, Any] | None = None,
) -> LoadResult:
    """Drive a fresh solo chain with ``work`` for ``warmup_s + seconds`` (or until it runs out).

    ``rate`` (tx/s, all threads together) selects the open loop; None the closed loop.
    ``report`` gets a progress dict about twice a second while the load runs; the last one,
    when the window closes, has ``draining`` true: batches in flight are then waited for
    without further reports (a drain is no measurement, and would only show tps 0).
    ``node_settings``: ChainConfig fields to override (``state_flush_blocks=1``, ...).
    """
    from tierchain.engine.chain import Chain

    own_dir = directory is None
    directory = Path(tempfile.mkdtemp(prefix="tierchain-load-")) if own_dir else directory
    node = KeyPair.from_seed(bytes(32))
    config = genesis_config(
        work, node, sync=sync, block_txs_max=block_txs_max, block_interval_ms=block_interval_ms
    )
    if node_settings:
        config = dataclasses.replace(config, **node_settings)
    # Framing is part of building a request, not of the engine: do it before the clock.
    streams = [[frame(s[i : i + batch_txs]) for i in range(0, len(s), batch_txs)] for s in work.streams]
    t_open = time.perf_counter()
    chain = Chain(directory, config, node)
    genesis_s = time.perf_counter() - t_open
    anon_peak = rss_anon_bytes()
    lock = threading.Lock()
    # Per settled batch: (intended submit time, commit observed time, ok count).
    done: list[tuple[float, float, int]] = []
    counts = {"rejected": 0, "failed": 0}
    stop = threading.Event()
    period_s = None if rate is None else batch_txs * len(streams) / rate  # per thread, per batch
    t_start = time.perf_counter()

    def waiter(q: queue.SimpleQueue, slots: threading.Semaphore) -> None:
        while (item := q.get()) is not None:
            t0, sub = item
            receipts = sub.wait(300)
            t1 = time.perf_counter()
            ok = failed = 0
            for r in receipts:
                if r is not None:
                    ok += r.code == 0
                    failed += r.code != 0
            with lock:
                done.append((t0, t1, ok))
                counts["failed"] += failed
                counts["rejected"] += int((sub.codes != 0).sum())
            slots.release()

    def submitter(k: int, batches: list[bytes]) -> None:
        q: queue.SimpleQueue = queue.SimpleQueue()
        slots = threading.Semaphore(inflight if period_s is None else 1 << 30)
        w = threading.Thread(target=waiter, args=(q, slots), daemon=True)
        w.start()
        # Open loop: threads start staggered so batches leave evenly spaced.
        next_t = t_start + (0 if period_s is None else period_s * k / len(streams))
        for buf in batches:
            if stop.is_set():
                break
            if period_s is not None:
                delay = next_t - time.perf_counter()
                if delay > 0 and stop.wait(delay):
                    break  # the window closed while waiting: this batch would fall outside it
                t0 = next_t
                next_t += period_s
            else:
                slots.acquire()
                t0 = time.perf_counter()
            q.put((t0, chain.submit(buf)))
        q.put(None)
        w.join()

    threads = [
        threading.Thread(target=submitter, args=(k, s), daemon=True, name=f"load-{k}")
        for k, s in enumerate(streams)
    ]
    end_t = t_start + warmup_s + seconds
    cpu_mark: float | None = None if warmup_s else _cpu_s()
    for t in threads:
        t.start()
    timeline: list[tuple[float, int]] = []
    last_t, last_c = 0.0, 0
    t_drain: float | None = None
    try:
        while any(t.is_alive() for t in threads) and chain.error is None:
            if t_drain is not None:  # draining: wait for the batches in flight, quietly
                time.sleep(0.05)
                anon_peak = max(anon_peak, rss_anon_bytes())
                with lock:
                    timeline.append((time.perf_counter() - t_start, sum(d[2] for d in done)))
                continue
            time.sleep(min(0.5, max(0.01, end_t - time.perf_counter())))
            now = time.perf_counter()
            anon_peak = max(anon_peak, rss_anon_bytes())
            if cpu_mark is None and now >= t_start + warmup_s:
                cpu_mark = _cpu_s()
            with lock:
                committed = sum(d[2] for d in done)
                recent = [(d[1] - d[0]) * 1000 for d in done[-64:]]
            timeline.append((now - t_start, committed))
            if report:
                report(
                    {
                        "t_s": now - t_start,
                        "of_s": warmup_s + seconds,
                        "warmup": now < t_start + warmup_s,
                        "committed": committed,
                        "tps": (committed - last_c) / max(1e-9, now - t_start - last_t),
                        "latency_ms_p50": float(np.percentile(recent, 50)) if recent else 0.0,
                        "latency_ms_p99": float(np.percentile(recent, 99)) if recent else 0.0,
                        "height": chain.height,
                        "mempool": len(chain.mempool),
                        "draining": now >= end_t,
                    }
                )
            last_t, last_c = now - t_start, committed
            if now >= end_t:
                stop.set()
                t_drain = now
        cpu_end = _cpu_s()
        t_stop = time.perf_counter()
        for t in threads:
            t.join()
        height = chain.height
        timings = list(chain.timings)
        if chain.error is not None:
            raise RuntimeError(f"the chain stopped producing blocks: {chain.error!r}") from chain.error
        db_bytes = _dir_bytes(directory)
    finally:
        chain.close()
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)
    w0, w1 = t_start + warmup_s, min(end_t, t_stop)
    arr = np.array(done, np.float64).reshape(-1, 3)
    exhausted = bool(len(arr) and arr[:, 1].max() < w1 - 0.5 and not stop.is_set())
    if exhausted:
        w1 = float(arr[:, 1].max())
    in_window = (arr[:, 1] >= w0) & (arr[:, 1] <= w1)
    committed = int(arr[in_window, 2].sum())
    window_s = max(1e-9, w1 - w0)
    # Commits arrive a block at a time: counting whole blocks in a fixed window would
    # quantise TPS by block_txs / window. Measure from the first to the last commit
    # in the window instead, counting what committed after the first.
    times = np.unique(arr[in_window, 1])
    if len(times) >= 3:
        after = in_window & (arr[:, 1] > times[0])
        tps = float(arr[after, 2].sum()) / (times[-1] - times[0])
    else:
        tps = committed / window_s
    sent_in = arr[(arr[:, 0] >= w0) & (arr[:, 2] > 0)]
    lat = np.repeat((sent_in[:, 1] - sent_in[:, 0]) * 1000, sent_in[:, 2].astype(np.int64))
    if not lat.size:
        lat = np.zeros(1)
    sample = np.random.default_rng(0).choice(lat, min(20_000, lat.size), replace=False)
    return LoadResult(
        mode="closed" if rate is None else "open",
        rate_target=rate,
        seconds=window_s,
        warmup_s=warmup_s,
        committed=committed,
        rejected=counts["rejected"],
        failed=counts["failed"],
        tps=tps,
        latency_ms_p50=float(np.percentile(lat, 50)),
        latency_ms_p95=float(np.percentile(lat, 95)),
        latency_ms_p99=float(np.percentile(lat, 99)),
        latency_ms_max=float(lat.max()),
        height=height,
        sync=sync,
        durable=sync == "full",
        block_txs_max=block_txs_max,
        cpu_s=cpu_end - (cpu_mark if cpu_mark is not None else cpu_end),
        cpu_util=(cpu_end - (cpu_mark if cpu_mark is not None else cpu_end)) / window_s,
        rss_peak_bytes=rss_peak_bytes(),
        rss_anon_peak_bytes=anon_peak,
        db_bytes=db_bytes,
        genesis_s=genesis_s,
        exhausted=exhausted,
        timeline=timeline,
        blocks=_block_stages([t for t in timings if w0 <= t.at <= w1]),
        latency_sample_ms=sorted(float(x) for x in sample),
        drain_s=0.0 if t_drain is None else t_stop - t_drain,
    )
