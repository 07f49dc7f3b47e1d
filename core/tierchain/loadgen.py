"""Load generator: a solo chain under a transfer workload, measured as it runs.

Transactions are generated and signed before the clock starts, in parallel
processes, and cached on disk (signing is never measured by accident). Senders
are split among submitter threads so each sender's nonces arrive in order; each
thread keeps ``inflight`` batches outstanding (closed loop) and records, per
batch, submit-to-durable-commit latency.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import pickle
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tierchain import ops
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair

genesis_balance = 10**12


def account_keys(n: int, seed: int) -> list[KeyPair]:
    rng = random.Random(seed)
    return [KeyPair.from_seed(rng.randbytes(32)) for _ in range(n)]


def _sign_part(args: tuple) -> list[bytes]:
    """Worker: the signed transfers of the senders in ``mine``, round-robin, nonces ascending."""
    accounts, seed, mine, per_sender, chain_id = args
    keys = account_keys(accounts, seed)
    rng = random.Random(hash((seed, mine[0] if mine else -1)))
    out = []
    for nonce in range(per_sender):
        for s in mine:
            to = rng.randrange(accounts - 1)
            to += to >= s
            t = ops.transfer(chain_id, keys[s].public_key, nonce, keys[to].public_key, rng.randrange(1, 100))
            out.append(keys[s].sign_tx(t).encode())
    return out


@dataclasses.dataclass
class Workload:
    accounts: int
    seed: int
    streams: list[list[bytes]]  # one per submitter thread


def transfer_workload(
    accounts: int,
    txs: int,
    threads: int,
    *,
    seed: int = 7,
    chain_id: int = 1,
    cache_dir: Path | None = None,
    processes: int | None = None,
) -> Workload:
    per_sender = max(1, -(-txs // accounts))
    tag = hashlib.blake2b(repr((accounts, per_sender, threads, seed, chain_id, 1)).encode(), digest_size=8)
    path = cache_dir / f"transfers-{tag.hexdigest()}.pickle" if cache_dir else None
    if path and path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    parts = [list(range(t, accounts, threads)) for t in range(threads)]
    jobs = [(accounts, seed, p, per_sender, chain_id) for p in parts]
    with multiprocessing.get_context("fork").Pool(processes or os.cpu_count()) as pool:
        streams = pool.map(_sign_part, jobs)
    work = Workload(accounts, seed, streams)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(work, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return work


def genesis_config(
    work: Workload, node: KeyPair, *, sync: str, block_txs_max: int, block_interval_ms: int, chain_id: int = 1
) -> ChainConfig:
    accounts = [
        GenesisAccount(k.public_key, (), genesis_balance) for k in account_keys(work.accounts, work.seed)
    ]
    accounts.append(GenesisAccount(node.public_key, ("registrar", "committee"), 0))
    return ChainConfig(
        chain_id=chain_id,
        sync=sync,
        block_txs_max=block_txs_max,
        block_interval_ms=block_interval_ms,
        mempool_txs_max=max(100_000, 4 * block_txs_max),
        genesis_accounts=tuple(accounts),
    )


@dataclasses.dataclass
class LoadResult:
    seconds: float
    committed: int
    rejected: int
    failed: int
    tps: float
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    height: int
    sync: str
    timeline: list[tuple[float, int]]  # (seconds since start, committed so far)


def run_load(
    work: Workload,
    *,
    directory: Path | None = None,
    seconds: float = 30.0,
    batch_txs: int = 256,
    inflight: int = 8,
    sync: str = "full",
    block_txs_max: int = 4096,
    block_interval_ms: int = 20,
    report: Callable[[dict], None] | None = None,
) -> LoadResult:
    """Drive a fresh solo chain with ``work`` for ``seconds`` (or until the workload runs out)."""
    from tierchain.chain import Chain

    own_dir = directory is None
    directory = Path(tempfile.mkdtemp(prefix="tierchain-load-")) if own_dir else directory
    node = KeyPair.from_seed(bytes(32))
    config = genesis_config(
        work, node, sync=sync, block_txs_max=block_txs_max, block_interval_ms=block_interval_ms
    )
    chain = Chain(directory, config, node)
    lock = threading.Lock()
    latencies: list[np.ndarray] = []
    counts = {"committed": 0, "rejected": 0, "failed": 0}
    stop = threading.Event()
    t_start = time.perf_counter()

    def submitter(stream: list[bytes]) -> None:
        pending: list[tuple[float, object, int]] = []
        pos = 0

        def settle(entry) -> None:
            t0, sub, _ = entry
            receipts = sub.wait(120)
            dt = (time.perf_counter() - t0) * 1000
            ok = sum(1 for r in receipts if r is not None and r.code == 0)
            with lock:
                counts["committed"] += ok
                counts["failed"] += sum(1 for r in receipts if r is not None and r.code != 0)
                counts["rejected"] += sub.rejections().__len__()
                latencies.append(np.full(ok, dt, np.float32))

        while not stop.is_set() and pos < len(stream):
            chunk = stream[pos : pos + batch_txs]
            pos += len(chunk)
            pending.append((time.perf_counter(), chain.submit(chunk), len(chunk)))
            if len(pending) >= inflight:
                settle(pending.pop(0))
        for entry in pending:
            settle(entry)

    threads = [threading.Thread(target=submitter, args=(s,), daemon=True) for s in work.streams]
    for t in threads:
        t.start()
    timeline = []
    last_t, last_c = 0.0, 0
    try:
        while any(t.is_alive() for t in threads) and chain.error is None:
            time.sleep(1.0)
            now = time.perf_counter() - t_start
            with lock:
                committed = counts["committed"]
                recent = np.concatenate(latencies[-64:]) if latencies else np.zeros(1, np.float32)
            timeline.append((now, committed))
            if report:
                report(
                    {
                        "t_s": now,
                        "committed": committed,
                        "tps": (committed - last_c) / (now - last_t),
                        "latency_ms_p50": float(np.percentile(recent, 50)) if recent.size else 0.0,
                        "latency_ms_p99": float(np.percentile(recent, 99)) if recent.size else 0.0,
                        "height": chain.height,
                        "mempool": len(chain.mempool),
                    }
                )
            last_t, last_c = now, committed
            if now >= seconds:
                stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t_start
        height = chain.height
        if chain.error is not None:
            raise RuntimeError(f"the chain stopped producing blocks: {chain.error!r}") from chain.error
    finally:
        chain.close()
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)
    lat = np.concatenate(latencies) if latencies else np.zeros(1, np.float32)
    return LoadResult(
        seconds=elapsed,
        committed=counts["committed"],
        rejected=counts["rejected"],
        failed=counts["failed"],
        tps=counts["committed"] / elapsed,
        latency_ms_p50=float(np.percentile(lat, 50)),
        latency_ms_p95=float(np.percentile(lat, 95)),
        latency_ms_p99=float(np.percentile(lat, 99)),
        height=height,
        sync=sync,
        timeline=timeline,
    )
