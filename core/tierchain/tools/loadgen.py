"""Load generator: a solo chain or a network under a generated workload, measured as it runs.

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

``run_load_net`` drives a running network (``tierchain net``) the same way,
through its validators' HTTP APIs; its genesis must fund the workload's senders
(``tierchain net init --load-accounts``: ``transfer_genesis``). Both, and
bench/replication.py's CometBFT RPC client, share one measuring loop (``drive``:
submitter threads, waits bounded by ``settle_timeout_s``, progress reports) and
one reckoning (``window_figures``: the window, TPS, latency percentiles); a target
only says how a batch is submitted and when it settles (``Pending``, ``Settled``).
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
from typing import Any, Protocol

import numpy as np

from tierchain.apps import accounts as accounts_app
from tierchain.config import ChainConfig, ConfigError, GenesisAccount, SyntheticAccounts
from tierchain.crypto import DEFAULT_SUITE_NAME, KeyPair, suite_for
from tierchain.engine.genesis import synthetic_public_keys_at
from tierchain.errors import TierChainError
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
    crypto: str = DEFAULT_SUITE_NAME  # the chain's crypto suite: the keys and signatures

    def __post_init__(self) -> None:
        suite_for(self.crypto)  # UnknownCryptoSuite names the known ones
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


def sender_key(seed: int, i: int, crypto: str = DEFAULT_SUITE_NAME) -> KeyPair:
    secret = hashlib.blake2b(b"tierchain loadgen %d %d" % (seed, i), digest_size=32).digest()
    return suite_for(crypto).keys_from_seed(secret)


def account_keys(n: int, seed: int, crypto: str = DEFAULT_SUITE_NAME) -> list[KeyPair]:
    return [sender_key(seed, i, crypto) for i in range(n)]


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
    packed = synthetic_public_keys_at(spec.seed, uniq.astype(np.uint64), suite_for(spec.crypto))  # one call
    for pos, u in zip(synth.tolist(), inverse.tolist(), strict=True):
        out[pos] = packed[32 * u : 32 * u + 32]
    for pos in np.flatnonzero(idx < s).tolist():
        out[pos] = sender_keys[int(idx[pos])]
    return out


def _sign_stream(args: tuple) -> list[bytes]:
    """Worker: signed transfers of the senders in ``mine``, round-robin, nonces ascending."""
    spec, sender_keys, mine, to, amount = args
    keys = {s: sender_key(spec.seed, s, spec.crypto) for s in mine}
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


def pool_context() -> multiprocessing.context.BaseContext:
    """``fork`` (fast: workers share what is imported) when this process runs one thread;
    else ``forkserver``: a child forked from a process with other threads (the native
    library's thread pool, a chain's threads) can hang on a lock one of them held."""
    try:
        single = len(os.listdir("/proc/self/task")) == 1
    except OSError:  # not Linux
        single = threading.active_count() == 1
    return multiprocessing.get_context("fork" if single else "forkserver")


def _transfer_mix(spec: WorkloadSpec, processes: int | None) -> Workload:
    with pool_context().Pool(processes or os.cpu_count()) as pool:
        sender_pks = pool.map(
            sender_public_key, [(spec.seed, i, spec.crypto) for i in range(spec.n_senders)], chunksize=256
        )
        to, amount = plan_transfers(spec)
        parts = [list(range(t, spec.n_senders, spec.threads)) for t in range(spec.threads)]
        jobs = [(spec, sender_pks, p, to[p], amount[p]) for p in parts]
        streams = pool.map(_sign_stream, jobs, chunksize=1)
    return Workload(spec, sender_pks, streams)


def sender_public_key(args: tuple[int, int, str]) -> bytes:
    """``sender_key(seed, i, crypto).public_key`` for ``pool.map`` over ``(seed, i, crypto)``."""
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
    vouchers = max(1, spec.txs // TXS_PER_VOUCHER)
    fw = lifecycle_workload(vouchers, seed=spec.seed, chain_id=spec.chain_id, crypto=spec.crypto)
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


def workload_genesis(
    sender_keys: list[bytes], accounts: int, seed: int, extra: tuple[GenesisAccount, ...] = ()
) -> tuple[tuple[GenesisAccount, ...], SyntheticAccounts | None]:
    """The genesis a workload signs against: each of ``sender_keys`` with ``genesis_balance``,
    the ``extra`` accounts its mix needs, and synthetic recipients (seed ``seed``) making
    ``accounts`` accounts in all. What ``genesis_config`` and ``tierchain net init
    --load-accounts`` put in genesis."""
    funded = tuple(GenesisAccount(pk, (), genesis_balance) for pk in sender_keys) + tuple(extra)
    synthetic = max(0, accounts - len(sender_keys) - len(extra))
    return funded, SyntheticAccounts(synthetic, seed, 0) if synthetic else None


def transfer_genesis(
    accounts: int, *, senders: int = senders_default, seed: int = 7, crypto: str = DEFAULT_SUITE_NAME
) -> tuple[tuple[GenesisAccount, ...], SyntheticAccounts | None]:
    """``workload_genesis`` of every transfer workload of ``accounts`` accounts, ``senders``
    senders and ``seed`` (whatever its size, skew or thread count): the senders' keys are
    derived here, nothing is signed."""
    spec = WorkloadSpec(accounts, 1, 1, senders=senders, seed=seed, crypto=crypto)
    keys = [sender_key(seed, i, crypto).public_key for i in range(spec.n_senders)]
    return workload_genesis(keys, accounts, seed)


def genesis_config(
    work: Workload, node: KeyPair, *, sync: str, block_txs_max: int, block_interval_ms: int, chain_id: int = 1
) -> ChainConfig:
    spec = work.spec
    funded, synthetic = workload_genesis(work.sender_keys, spec.accounts, spec.seed, work.extra_genesis)
    return ChainConfig(
        chain_id=chain_id,
        sync=sync,
        block_txs_max=block_txs_max,
        block_interval_ms=block_interval_ms,
        mempool_txs_max=max(100_000, 4 * block_txs_max),
        genesis_accounts=(*funded, GenesisAccount(node.public_key, ("registrar", "committee"), 0)),
        genesis_synthetic=synthetic,
        crypto=spec.crypto,
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
    cpu_s: float  # this process's CPU (all threads) in the measured window
    cpu_util: float  # cpu_s / seconds (2.0 = both cores of this machine busy)
    rss_peak_bytes: int  # whole process, whole life (includes the workload and mapped LMDB pages)
    rss_anon_peak_bytes: int  # sampled each tick and after genesis: memory minus mapped files
    db_bytes: int
    genesis_s: float  # opening the chain: writing the genesis state
    exhausted: bool  # the workload ran out before the window ended
    timeline: list[tuple[float, int]]  # (seconds since start, committed so far)
    # Blocks durable in the window: count, txs per block, and mean / p99 ms of each
    # pipeline stage (chain.BlockTiming): produce (of which execute, and tree when inline),
    # tree, write (txn body), durable.
    # A network's: count, txs per block and block interval, from CometBFT's block metas.
    blocks: dict
    latency_sample_ms: list[float]  # up to 20,000 latencies of the window, for plots
    drain_s: float = 0.0  # from the end of the window until every batch sent had settled
    target: str = "solo"  # what was driven: "solo" (an embedded chain) or "net DIR (...)"
    unsettled: int = 0  # accepted, not seen committed within the wait bound, whole run
    # Cores each process used in the window, besides this one: a network's node processes
    # ("validator0.app": the node runner with the app, "validator0.cometbft").
    cpu_processes: dict = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        """The figures of the measured window as one block of text (what ``tierchain load`` ends with)."""
        where = "" if self.target == "solo" else f"{self.target}, "
        unsettled = f", {self.unsettled:,} not seen committed in time" if self.unsettled else ""
        return "\n".join(
            [
                "summary" + ("  (the workload ran out before the end)" if self.exhausted else ""),
                f"  committed   {self.committed:,} txs in {self.seconds:.1f} s "
                f"(then drained in {self.drain_s:.1f} s; height {self.height:,})",
                f"  throughput  {self.tps:,.0f} TPS  ({where}sync={self.sync}"
                + ("" if self.durable else ", NOT DURABLE")
                + ")",
                f"  latency     p50 {self.latency_ms_p50:.1f} ms  p95 {self.latency_ms_p95:.1f} ms  "
                f"p99 {self.latency_ms_p99:.1f} ms  max {self.latency_ms_max:.1f} ms",
                f"  refused     {self.rejected:,} at admission, {self.failed:,} failed in a block{unsettled}",
            ]
        )


def _block_stages(timings: list) -> dict:
    out: dict = {"count": len(timings), "flushed": sum(t.flushed for t in timings)}
    if timings:
        out["txs_mean"] = round(float(np.mean([t.txs for t in timings])), 1)
        for stage in ("produce", "execute", "tree", "write", "durable"):
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


def proc_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc/PID/stat``), or None."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
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


# --- the measuring loop: one for every target (solo chain, network) ------------------------


@dataclasses.dataclass
class Settled:
    """What became of one submitted batch: ``Pending.wait``'s answer."""

    ok: int = 0  # committed (with receipt code 0, where the target says)
    failed: int = 0  # committed with a non-zero receipt code
    rejected: int = 0  # refused at admission
    unsettled: int = 0  # accepted, not seen committed within the wait
    t_commit: float | None = None  # perf_counter() when its last tx was seen committed; None: now
    # Where a target sees each transaction's commit: (perf_counter(), how many) per block,
    # summing to ``ok``; then each counts at its own commit time, not the batch's last.
    commits: list[tuple[float, int]] | None = None


class Pending(Protocol):
    """One submitted batch, admitted; ``wait`` returns at most ``timeout_s`` later."""

    def wait(self, timeout_s: float) -> Settled: ...


@dataclasses.dataclass
class Drive:
    """The record of one ``drive``: every settled batch and the run's clock marks."""

    # Per settled batch (per block of it, where the target says): (intended submit time,
    # commit time, txs committed then), perf_counter seconds.
    done: np.ndarray
    rejected: int
    failed: int
    unsettled: int
    rate: float | None
    t_start: float
    warmup_s: float
    end_t: float  # when the window was to close
    t_stop: float  # when the loop ended (after the drain)
    t_drain: float | None  # when the window closed and the drain began
    stopped: bool  # the window closed (False: the workload ran out, or the run failed)
    timeline: list[tuple[float, int]]
    probes: tuple[dict, dict]  # ``probe()`` (with "cpu" of this process as "self") at the window's ends
    anon_peak: int
    error: BaseException | None  # the target failed (``failure()``), or a submit or wait raised


def drive(
    streams: list[list[Any]],
    submit: Callable[[int, Any], Pending],
    *,
    batch_txs: int,
    seconds: float,
    warmup_s: float = 0.0,
    inflight: int = 8,
    rate: float | None = None,
    settle_timeout_s: float = 300.0,
    report: Callable[[dict], None] | None = None,
    progress: Callable[[], dict] | None = None,
    failure: Callable[[], BaseException | None] = lambda: None,
    probe: Callable[[], dict] = dict,
) -> Drive:
    """Submit ``streams`` (one submitter thread each, its batches in order) through ``submit``
    for ``warmup_s + seconds`` or until they run out, and record when each batch settles.

    ``submit(k, batch)`` (thread ``k``) returns once the batch is admitted, so a stream's
    next batch is admitted after it (its senders' nonces arrive in order); the ``Pending``
    it returns settles at commit. Closed loop (``rate`` None): each thread keeps
    ``inflight`` batches outstanding; open loop: batches leave at ``rate`` tx/s in all,
    latency counted from the intended send time. Each batch is waited for at most
    ``settle_timeout_s`` from its submission (then its accepted txs count as unsettled), so
    the drain after the window is bounded too. ``failure()`` (each tick) stops the run;
    ``progress()`` adds fields to each report (about twice a second; the last, when the
    window closes, has ``draining`` true); ``probe()`` is read when the window opens and
    when it closes (a dict; its ``"cpu"`` holds CPU seconds per process, this one's as "self").
    """
    lock = threading.Lock()
    done: list[tuple[float, float, int]] = []
    counts = {"rejected": 0, "failed": 0, "unsettled": 0}
    errors: list[BaseException] = []
    stop = threading.Event()
    period_s = None if rate is None else batch_txs * len(streams) / rate  # per thread, per batch
    anon_peak = rss_anon_bytes()

    def snapshot() -> dict:
        out = probe()
        out["cpu"] = {**out.get("cpu", {}), "self": _cpu_s()}
        return out

    t_start = time.perf_counter()

    def waiter(q: queue.SimpleQueue, slots: threading.Semaphore) -> None:
        while (item := q.get()) is not None:
            t0, deadline, pending = item
            try:
                s = pending.wait(max(0.0, deadline - time.perf_counter()))
            except Exception as exc:  # a target's failure: recorded, the run stops
                errors.append(exc)
                stop.set()
                s = Settled()
            t1 = s.t_commit if s.t_commit is not None else time.perf_counter()
            with lock:
                if s.commits:
                    done.extend((t0, t, n) for t, n in s.commits)
                else:
                    done.append((t0, t1, s.ok))
                counts["failed"] += s.failed
                counts["rejected"] += s.rejected
                counts["unsettled"] += s.unsettled
            slots.release()

    def submitter(k: int, batches: list[Any]) -> None:
        q: queue.SimpleQueue = queue.SimpleQueue()
        slots = threading.Semaphore(inflight if period_s is None else 1 << 30)
        w = threading.Thread(target=waiter, args=(q, slots), daemon=True, name=f"load-wait-{k}")
        w.start()
        # Open loop: threads start staggered so batches leave evenly spaced.
        next_t = t_start + (0 if period_s is None else period_s * k / len(streams))
        try:
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
                    if stop.is_set():
                        break
                    t0 = time.perf_counter()
                pending = submit(k, buf)
                q.put((t0, time.perf_counter() + settle_timeout_s, pending))
        except Exception as exc:  # a target's failure: recorded, the run stops
            errors.append(exc)
            stop.set()
        finally:
            q.put(None)
            w.join()

    threads = [
        threading.Thread(target=submitter, args=(k, s), daemon=True, name=f"load-{k}")
        for k, s in enumerate(streams)
    ]
    end_t = t_start + warmup_s + seconds
    probe_start: dict | None = None if warmup_s else snapshot()
    probe_end: dict | None = None
    for t in threads:
        t.start()
    timeline: list[tuple[float, int]] = []
    last_t, last_c = 0.0, 0
    t_drain: float | None = None
    error: BaseException | None = None
    while any(t.is_alive() for t in threads):
        if (error := failure() or (errors[0] if errors else None)) is not None:
            stop.set()
            break
        if t_drain is not None:  # draining: wait for the batches in flight, quietly
            time.sleep(0.05)
            anon_peak = max(anon_peak, rss_anon_bytes())
            with lock:
                timeline.append((time.perf_counter() - t_start, sum(d[2] for d in done)))
            continue
        time.sleep(min(0.5, max(0.01, end_t - time.perf_counter())))
        now = time.perf_counter()
        anon_peak = max(anon_peak, rss_anon_bytes())
        if probe_start is None and now >= t_start + warmup_s:
            probe_start = snapshot()
        with lock:
            committed = sum(d[2] for d in done)
            recent = [(d[1] - d[0]) * 1000 for d in done[-64:]]
        timeline.append((now - t_start, committed))
        if now >= end_t:
            probe_end = snapshot()
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
                    **(progress() if progress else {}),
                    "draining": now >= end_t,
                }
            )
        last_t, last_c = now - t_start, committed
        if now >= end_t:
            stop.set()
            t_drain = now
    if probe_end is None:  # the workload ran out (or the run failed) before the window closed
        probe_end = snapshot()
    if probe_start is None:
        probe_start = probe_end
    t_stop = time.perf_counter()
    for t in threads:  # each has settled or given up on its batches by now (unless the run failed)
        t.join(1.0 if error is not None else settle_timeout_s + 5)
    if error is None and errors:
        error = errors[0]
    with lock:
        arr = np.array(done, np.float64).reshape(-1, 3)
        counts = dict(counts)
    return Drive(
        done=arr,
        rate=rate,
        t_start=t_start,
        warmup_s=warmup_s,
        end_t=end_t,
        t_stop=t_stop,
        t_drain=t_drain,
        stopped=stop.is_set() and t_drain is not None,
        timeline=timeline,
        probes=(probe_start, probe_end),
        anon_peak=anon_peak,
        error=error,
        **counts,
    )


def window_bounds(d: Drive) -> tuple[float, float]:
    """The measured window (perf_counter seconds): from the end of the warm-up to the planned
    end, or to the last commit if the workload ran out first."""
    w0, w1 = d.t_start + d.warmup_s, min(d.end_t, d.t_stop)
    if len(d.done) and d.done[:, 1].max() < w1 - 0.5 and not d.stopped:
        w1 = float(d.done[:, 1].max())  # exhausted
    return w0, w1


def window_figures(d: Drive) -> dict[str, Any]:
    """The ``LoadResult`` fields every target shares, from a ``Drive``: the measured window
    (after the warm-up), committed TPS and the submit-to-commit latencies of batches sent in it."""
    w0, w1 = window_bounds(d)
    # Ran out: the last commit came before the window's end, or the load ended (unstopped)
    # before its planned end — even inside the warm-up, where the window is then empty.
    exhausted = w1 < min(d.end_t, d.t_stop) or (d.t_stop < d.end_t and not d.stopped)
    arr = d.done
    in_window = (arr[:, 1] >= w0) & (arr[:, 1] <= w1)
    committed = int(arr[in_window, 2].sum())
    window_s = max(1e-9, w1 - w0)
    # Commits arrive a block at a time: counting whole blocks in a fixed window would
    # quantise TPS by block_txs / window. Measure from the first to the last commit
    # in the window instead, counting what committed after the first.
    times = np.unique(arr[in_window & (arr[:, 2] > 0), 1])
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
    cpu0, cpu1 = d.probes[0]["cpu"], d.probes[1]["cpu"]
    cpu_s = cpu1["self"] - cpu0["self"]
    return {
        "mode": "closed" if d.rate is None else "open",
        "rate_target": d.rate,
        "seconds": window_s,
        "warmup_s": d.warmup_s,
        "committed": committed,
        "rejected": d.rejected,
        "failed": d.failed,
        "unsettled": d.unsettled,
        "tps": tps,
        "latency_ms_p50": float(np.percentile(lat, 50)),
        "latency_ms_p95": float(np.percentile(lat, 95)),
        "latency_ms_p99": float(np.percentile(lat, 99)),
        "latency_ms_max": float(lat.max()),
        "cpu_s": cpu_s,
        "cpu_util": cpu_s / window_s,
        "cpu_processes": {
            name: round((cpu1[name] - cpu0[name]) / window_s, 3)
            for name in cpu1
            if name != "self" and cpu0.get(name) is not None and cpu1[name] is not None
        },
        "rss_peak_bytes": rss_peak_bytes(),
        "rss_anon_peak_bytes": d.anon_peak,
        "exhausted": exhausted,
        "timeline": d.timeline,
        "latency_sample_ms": sorted(float(x) for x in sample),
        "drain_s": 0.0 if d.t_drain is None else d.t_stop - d.t_drain,
    }


# --- the solo chain ---------------------------------------------------------------------


class _ChainPending:
    """A solo chain's ``Submission`` as a ``Pending``."""

    __slots__ = ("sub",)

    def __init__(self, sub: Any) -> None:
        self.sub = sub

    def wait(self, timeout_s: float) -> Settled:
        sub = self.sub
        rejected = int((sub.codes != 0).sum())
        try:
            receipts = sub.wait(timeout_s)
        except TimeoutError:
            return Settled(rejected=rejected, unsettled=sub.accepted)
        ok = failed = 0
        for r in receipts:
            if r is not None:
                ok += r.code == 0
                failed += r.code != 0
        return Settled(ok, failed, rejected)


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
    The process's garbage collector is tuned for a node (``gc_tuning.tune``).
    """
    from tierchain.engine import gc_tuning
    from tierchain.engine.chain import Chain

    gc_tuning.tune()  # this process runs a node under load (engine/gc_tuning.py)
    own_dir = directory is None
    directory = Path(tempfile.mkdtemp(prefix="tierchain-load-")) if own_dir else directory
    node = suite_for(work.spec.crypto).keys_from_seed(bytes(32))
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
    try:
        d = drive(
            streams,
            lambda _k, buf: _ChainPending(chain.submit(buf)),
            batch_txs=batch_txs,
            seconds=seconds,
            warmup_s=warmup_s,
            inflight=inflight,
            rate=rate,
            report=report,
            progress=lambda: {"height": chain.height, "mempool": len(chain.mempool)},
            failure=lambda: chain.error,
        )
        height = chain.height
        timings = list(chain.timings)
        if chain.error is not None:
            raise RuntimeError(f"the chain stopped producing blocks: {chain.error!r}") from chain.error
        if d.error is not None:
            raise RuntimeError(f"the load failed: {d.error!r}") from d.error
        db_bytes = _dir_bytes(directory)
    finally:
        chain.close()
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)
    w0, w1 = window_bounds(d)
    return LoadResult(
        **window_figures(d),
        height=height,
        sync=sync,
        durable=sync == "full",
        block_txs_max=block_txs_max,
        db_bytes=db_bytes,
        genesis_s=genesis_s,
        blocks=_block_stages([t for t in timings if w0 <= t.at <= w1]),
    )


# --- a network (`tierchain net`) -----------------------------------------------------------


class LoadError(TierChainError):
    """A load cannot drive its target, or the target failed under it (exit code 1)."""


def net_target(directory: Path) -> tuple[Any, ChainConfig]:
    """The network laid out in ``directory`` (a ``NetSpec``) and its chain config;
    ``ConfigError`` if its genesis was made for no load workload (``net init --load-accounts``)."""
    from tierchain.replication import net as netlib

    net = netlib.NetSpec.load(directory)
    if net.workload is None:
        raise ConfigError(
            f"{net.path}: this network's genesis funds no load workload (no [load]); make one "
            "with `tierchain net init DIR --validators N --load-accounts ACCOUNTS`"
        )
    return net, ChainConfig.load(net.nodes[0].home / netlib.CHAIN_FILE)


def check_net_genesis(config: ChainConfig, work: Workload, where: Path | str) -> None:
    """``ConfigError`` unless the genesis of ``config`` (a network's chain.toml, at ``where``)
    funds every sender of ``work`` and registers its synthetic recipients: what
    ``net init --load-accounts`` puts there (``transfer_genesis``)."""
    spec = work.spec
    if spec.mix != "transfer":
        raise ConfigError(f"a network is driven with transfers only, not the {spec.mix!r} mix")
    if spec.chain_id != config.chain_id:
        raise ConfigError(f"{where}: chain id {config.chain_id}, the workload is signed for {spec.chain_id}")
    if spec.crypto != config.crypto:
        raise ConfigError(
            f"{where}: the chain runs the {config.crypto} suite; the workload signs with {spec.crypto} keys"
        )
    funded = {a.public_key for a in config.genesis_accounts if a.balance > 0}
    if missing := sum(pk not in funded for pk in work.sender_keys):
        raise ConfigError(
            f"{where}: {missing:,} of the workload's {len(work.sender_keys):,} senders are not funded in "
            f"genesis (the network was made for another --load-accounts / --load-senders / --load-seed)"
        )
    need, syn = spec.accounts - spec.n_senders, config.genesis_synthetic
    if need and (syn is None or syn.seed != spec.seed or syn.accounts < need):
        raise ConfigError(
            f"{where}: genesis registers no {need:,} synthetic recipients of seed {spec.seed} "
            "(the network was made for another --load-accounts / --load-seed)"
        )


def split_by_sender(txs: list[bytes], parts: int) -> list[list[bytes]]:
    """``txs`` dealt into at most ``parts`` streams by sender (senders round-robin in order of
    first appearance): each sender's transactions stay in one stream, in their order."""
    from tierchain import limits
    from tierchain.wire.batch import decode_batch, row_bytes

    if parts <= 1 or not txs:
        return [txs]
    senders: list[bytes] = []
    for i in range(0, len(txs), limits.batch_txs_max):
        senders += row_bytes(decode_batch(frame(txs[i : i + limits.batch_txs_max])).sender)
    slot: dict[bytes, int] = {}
    out: list[list[bytes]] = [[] for _ in range(parts)]
    for tx, sender in zip(txs, senders, strict=True):
        out[slot.setdefault(sender, len(slot) % parts)].append(tx)
    return [o for o in out if o]


class _Answered:
    """A batch whose request returned with its fate (``POST /v1/txs?wait=``)."""

    __slots__ = ("settled",)

    def __init__(self, settled: Settled) -> None:
        self.settled = settled

    def wait(self, timeout_s: float) -> Settled:
        return self.settled


def _rfc3339_s(text: str) -> float:
    """Seconds since the epoch of CometBFT's RFC 3339 time (nanoseconds, ``Z``)."""
    import datetime

    head, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def net_blocks(rpc_get: Callable[[str], dict | None], lo: int, hi: int) -> dict:
    """Blocks ``lo..hi`` as CometBFT's ``/blockchain`` block metas tell them: count, txs per
    block (mean, max) and the mean interval between their header times (ms)."""
    metas: dict[int, dict] = {}
    top = hi
    while top >= lo:  # CometBFT answers at most 20 metas per call, newest first
        got = rpc_get(f"blockchain?minHeight={max(lo, top - 19)}&maxHeight={top}")
        if not got or not got.get("block_metas"):
            break
        for m in got["block_metas"]:
            metas[int(m["header"]["height"])] = m
        top = min(metas) - 1
    if not metas:
        return {"count": 0}
    heights = sorted(metas)
    txs = np.array([int(metas[h]["num_txs"]) for h in heights])
    times = np.array([_rfc3339_s(metas[h]["header"]["time"]) for h in heights])
    out = {"count": len(heights), "txs_mean": round(float(txs.mean()), 1), "txs_max": int(txs.max())}
    if len(heights) > 1:
        out["interval_ms_mean"] = round(float(np.diff(times).mean()) * 1000, 1)
    return out


def run_load_net(
    work: Workload,
    directory: Path,
    *,
    seconds: float = 30.0,
    warmup_s: float = 0.0,
    batch_txs: int = 256,
    inflight: int = 8,
    rate: float | None = None,
    wait_s: float = 60.0,
    report: Callable[[dict], None] | None = None,
) -> LoadResult:
    """Drive the running network in ``directory`` (made by ``tierchain net init
    --load-accounts``, started by ``net start``) with ``work``, as ``run_load`` drives a solo
    chain, through its validators' TierChain HTTP APIs.

    Each of ``work``'s streams is split by sender into ``inflight`` streams, each sent by its
    own thread to one validator's API (``POST /v1/txs?wait=``), the streams dealt
    round-robin over the validators: a request returns once its batch is committed on that
    node, so each stream has one batch in flight and a sender's nonces reach one node, in
    order. A batch not committed within ``wait_s`` counts as unsettled; a node whose API
    cannot be reached, or that fails, stops the run (``LoadError``); a network whose
    genesis does not fund ``work`` is refused (``ConfigError``)."""
    from tierchain.api.rpc import NodeClient, RpcError, wait_s_max
    from tierchain.replication import net as netlib

    net, config = net_target(directory)
    check_net_genesis(config, work, net.nodes[0].home / netlib.CHAIN_FILE)
    wait_s = min(wait_s, wait_s_max)
    validators = [n for n in net.nodes if n.role == "validator"]
    first = validators[0]
    for node in validators:
        try:
            NodeClient(_api_url(node), timeout_s=5).head()
        except RpcError as exc:
            raise LoadError(
                f"node {node.name}'s API at {_api_url(node)} does not answer ({exc}): "
                f"is the network running (`tierchain net start {directory}`)?"
            ) from None
    probe_client = NodeClient(_api_url(first), timeout_s=5)
    for pk in {work.sender_keys[0], work.sender_keys[-1]}:
        if (n := probe_client.nonce(pk)) != 0:
            raise LoadError(
                f"the workload's senders have sent on this network before (a sender's nonce is {n}); "
                "`load --net` signs every sender's transactions from nonce 0: use a new network"
            )
    # Framing and the split by sender are part of building requests: before the clock.
    streams: list[list[tuple[bytes, int]]] = []
    for s in work.streams:
        for part in split_by_sender(s, inflight):
            streams.append(
                [
                    (frame(part[i : i + batch_txs]), len(part[i : i + batch_txs]))
                    for i in range(0, len(part), batch_txs)
                ]
            )
    clients = [
        NodeClient(_api_url(validators[m % len(validators)]), timeout_s=wait_s + 15)
        for m in range(len(streams))
    ]
    seen = {"height": 0}

    def submit(k: int, item: tuple[bytes, int]) -> _Answered:
        buf, n = item
        client = clients[k]
        try:
            reply = client.submit(buf, wait_s=wait_s)
        except RpcError as exc:
            if exc.status is None or exc.code == "NODE_FAILED":
                raise LoadError(f"{client.url}: {exc}") from None
            return _Answered(Settled(rejected=n))  # refused whole (mempool full, stopping, ...)
        t_commit = time.perf_counter()
        codes = reply.get("codes") or []
        rejected = sum(c != "OK" for c in codes)
        if reply.get("timeout"):
            return _Answered(Settled(rejected=rejected, unsettled=len(codes) - rejected))
        receipts = [r for r in reply.get("receipts") or [] if r is not None]
        ok = sum(r.get("code") == "OK" for r in receipts)
        if heights := reply.get("heights"):
            seen["height"] = max(seen["height"], max(heights))
        return _Answered(Settled(ok, len(receipts) - ok, rejected, t_commit=t_commit))

    pids = {n.name: (netlib.node_pid(n.home), netlib.cometbft_pid(n.home)) for n in net.nodes}

    def probe() -> dict:
        status = netlib.rpc_get(first.spec, "status") or {}
        try:
            height = int(status["sync_info"]["latest_block_height"])
        except (KeyError, TypeError, ValueError):
            height = None
        cpu = {}
        for name, (app, comet) in pids.items():
            cpu[f"{name}.app"] = proc_cpu_s(app)
            cpu[f"{name}.cometbft"] = proc_cpu_s(comet)
        return {"cpu": cpu, "height": height}

    def progress() -> dict:
        pool = netlib.rpc_get(first.spec, "num_unconfirmed_txs", timeout_s=0.3) or {}
        return {"height": seen["height"], "mempool": int(pool.get("n_txs", -1))}

    d = drive(
        streams,
        submit,
        batch_txs=batch_txs,
        seconds=seconds,
        warmup_s=warmup_s,
        inflight=1,
        rate=rate,
        settle_timeout_s=wait_s + 20,
        report=report,
        progress=progress,
        probe=probe,
    )
    if d.error is not None:
        if isinstance(d.error, LoadError):
            raise d.error
        raise LoadError(f"the load failed: {d.error!r}") from d.error
    h0, h1 = d.probes[0].get("height"), d.probes[1].get("height")
    blocks = {"count": 0}
    if h0 is not None and h1 is not None and h1 > h0:
        blocks = net_blocks(lambda method: netlib.rpc_get(first.spec, method), h0 + 1, h1)
    end = probe().get("height")
    return LoadResult(
        **window_figures(d),
        height=end if end is not None else seen["height"],
        sync=config.sync,
        durable=config.sync == "full",
        block_txs_max=config.block_txs_max,
        db_bytes=sum(
            _dir_bytes(n.home / netlib.CHAIN_DIR) for n in net.nodes if (n.home / netlib.CHAIN_DIR).exists()
        ),
        genesis_s=0.0,
        blocks=blocks,
        target=f"net {directory}: {len(validators)} validator{'s' * (len(validators) > 1)}, HTTP API",
    )


def _api_url(node: Any) -> str:
    return f"http://{node.spec.host}:{node.spec.api_port}"
