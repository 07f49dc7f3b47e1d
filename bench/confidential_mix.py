"""Throughput with confidential transactions: a 10%-confidential mix and the confidential
voucher lifecycle, each beside its plaintext counterpart, in one run (issue 17, deliverable 7).

Four setups, each on a fresh solo chain (durable commits unless ``--sync none``), run in
turn and repeated ``--repeat`` times (the order reversed every other round); every figure
is the median (min..max) of the repeats:

* ``plain mix``   plain accounts transfers only (loadgen's transfer mix): the baseline;
* ``10% conf mix`` the same stream with one transaction in ten a confidential split
                  (``fin.csplit``, 2 ways) of a distinct confidential piece;
* ``plain lifecycle`` ``fin.confirm`` + ``fin.split`` of ``--vouchers`` vouchers;
* ``conf lifecycle``  ``fin.cconfirm`` + ``fin.csplit`` of the same vouchers, hidden amounts.

Both mixes run after the same unmeasured setup: the committee admits the organizations
(4 core enterprises, 64 suppliers) and sets the regulator's ElGamal key
(``Action.SET_REGULATOR_KEY``, what ``Party.propose_regulator_key`` sends), the suppliers
anchor their invoices, and the core enterprises issue ``--vouchers`` confidential vouchers
(``fin.cconfirm``); the measured stream then splits each one once. The lifecycles' setup
is the admissions, the key and the anchors; their measured stream is the confirmations
and splits in rounds of 512 vouchers (one ordered stream, as bench/finance.py drives).

Every transaction is built, proved and signed before any clock starts, in a process pool
(proving is client work), and cached under ``.cache/tierchain/`` keyed by every parameter
and by the sources that shape the bytes. The mixes are driven like ``tierchain load``
(``loadgen.drive``: 4 submitter threads, each sender in one thread, closed loop); TPS is
loadgen's (first to last commit). The proof-check share: wall time inside the apps'
admission batch checks (``mempool.run_checks``, timed in this process only), and the cost
of the same checks measured alone on both cores, times the confidential transactions,
over the run's duration.

Usage: python bench/confidential_mix.py [--vouchers 4000] [--repeat 3] [--sync full|none]
                                        [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np
import tierchain_native
from rich.console import Console
from rich.table import Table

from tierchain.apps.finance import camount, confidential, evidence, orgs, registry, voucher
from tierchain.apps.finance import codes as c
from tierchain.config import ChainConfig
from tierchain.crypto import KeyPair
from tierchain.crypto import confidential as conf
from tierchain.engine import mempool
from tierchain.engine.chain import Chain
from tierchain.tools import loadgen
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

AIM_MIX_TPS = 10_000
CONF_EVERY = 10  # one confidential transaction in ten
SECRET = b"tierchain bench consortium secret"
MATURITY_MS = 1 << 50
CORES, SUPPLIERS, ROUND = 4, 64, 512
CACHE_FORMAT = 1  # bump when the cached bytes would differ for the same parameters
SETUPS = ("plain mix", "10% conf mix", "plain lifecycle", "conf lifecycle")


# --- the workload: parties, setup, vouchers ---------------------------------------------------


def party_key(seed: int, name: str) -> KeyPair:
    return KeyPair.from_seed(
        hashlib.blake2b(b"tierchain cmix %d %s" % (seed, name.encode()), digest_size=32).digest()
    )


def regulator_keypair(seed: int) -> conf.ElGamalKeypair:
    return conf.elgamal_keypair(
        hashlib.blake2b(b"tierchain cmix regulator %d" % seed, digest_size=32).digest()
    )


def invoice(seed: int, i: int) -> bytes:
    return c.document_fingerprint(b"cmix invoice %d %d" % (seed, i))


def face_of(seed: int, i: int) -> int:
    return (
        10_000
        + int.from_bytes(hashlib.blake2b(b"face %d %d" % (seed, i), digest_size=4).digest()) % 10_000_000
    )


def _nonce_bases(n: int) -> list[int]:
    """Each supplier's first split nonce: after its anchors (one per voucher it is paid)."""
    return [len(range(s, n, SUPPLIERS)) for s in range(SUPPLIERS)]


def _build_vouchers(args: tuple) -> list[tuple[bytes, bytes, bytes, bytes]]:
    """Worker: per voucher ``i``, its signed (cconfirm, csplit, confirm, split).

    Voucher ``i``: core ``i % CORES`` confirms (its nonce ``i // CORES``) a payable to supplier
    ``i % SUPPLIERS``, who splits it in two (its nonce: after its anchors, ``i // SUPPLIERS``)."""
    chain_id, seed, n, regulator, items = args
    cores = [party_key(seed, f"core-{k}") for k in range(CORES)]
    sups = [party_key(seed, f"supplier-{s}") for s in range(SUPPLIERS)]
    base = _nonce_bases(n)
    out = []
    for i in items:
        k, s = i % CORES, i % SUPPLIERS
        core, sup = cores[k], sups[s]
        core_org, sup_org = c.org_id(f"core-{k}"), c.org_id(f"supplier-{s}")
        fp, face = invoice(seed, i), face_of(seed, i)
        blinded = registry.blind_invoice(SECRET, fp)
        docs = [(c.DocType.INVOICE, fp)]
        cn, sn = i // CORES, base[s] + i // SUPPLIERS
        halves = [face // 2, face - face // 2]
        ctx_confirm, vid, opening = confidential.cconfirm(
            chain_id,
            core.public_key,
            core_org,
            cn,
            sup_org,
            face,
            MATURITY_MS,
            docs,
            blinded,
            regulator,
            sup.public_key,
        )
        ctx_split, _, _ = confidential.csplit(
            chain_id, sup.public_key, sup_org, sn, vid, vid, opening, halves, regulator
        )
        ptx, pvid = voucher.confirm(
            chain_id, core.public_key, core_org, cn, sup_org, face, MATURITY_MS, docs, blinded
        )
        ptx_split, _ = voucher.split(chain_id, sup.public_key, sup_org, sn, pvid, pvid, halves)
        out.append(
            (
                core.sign_tx(ctx_confirm).encode(),
                sup.sign_tx(ctx_split).encode(),
                core.sign_tx(ptx).encode(),
                sup.sign_tx(ptx_split).encode(),
            )
        )
    return out


@dataclasses.dataclass
class Vouchers:
    """The signed transactions of ``n`` vouchers (cached)."""

    n: int
    admit: list[bytes]  # committee: admissions and the regulator key
    anchors: list[bytes]  # suppliers: one invoice each voucher
    cconfirm: list[bytes]
    csplit: list[bytes]
    confirm: list[bytes]
    split: list[bytes]
    build_s: float

    def lifecycle(self, confidential_: bool) -> list[bytes]:
        """Rounds of ``ROUND`` vouchers: their confirmations, then their splits."""
        first, second = (self.cconfirm, self.csplit) if confidential_ else (self.confirm, self.split)
        out: list[bytes] = []
        for r in range(0, self.n, ROUND):
            out += first[r : r + ROUND] + second[r : r + ROUND]
        return out


def _sources_tag() -> str:
    """What shapes the signed bytes besides the parameters: the builders' sources, the native library."""
    h = hashlib.blake2b(digest_size=8)
    for mod in (camount, confidential, evidence, orgs, registry, voucher, c, conf):
        h.update(Path(mod.__file__).read_bytes())
    st = Path(tierchain_native.__file__).stat()
    h.update(b"%d %d" % (st.st_size, st.st_mtime_ns))
    return h.hexdigest()


def build_vouchers(n: int, seed: int, chain_id: int, node: KeyPair, cache_dir: Path | None) -> Vouchers:
    tag = hashlib.blake2b(
        repr((CACHE_FORMAT, n, seed, chain_id, node.public_key, _sources_tag())).encode(), digest_size=10
    ).hexdigest()
    path = cache_dir / f"confidential_mix-{tag}.pickle" if cache_dir else None
    if path and path.exists():
        try:
            with path.open("rb") as f:
                got = pickle.load(f)
            if isinstance(got, Vouchers) and got.n == n:
                return got
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, ValueError, TypeError):
            pass
    t0 = time.perf_counter()
    regulator = regulator_keypair(seed).public
    admit: list[bytes] = []
    nonce = 0
    for role, name, count in (("core_enterprise", "core", CORES), ("supplier", "supplier", SUPPLIERS)):
        for k in range(count):
            body = orgs.admit_body(f"{name}-{k}", (role,), party_key(seed, f"{name}-{k}").public_key)
            tx = orgs.propose(chain_id, node.public_key, nonce, c.Action.ADMIT_ORG, body)
            admit.append(node.sign_tx(tx).encode())
            nonce += 1
    body = orgs.set_regulator_key_body(regulator)
    tx = orgs.propose(chain_id, node.public_key, nonce, c.Action.SET_REGULATOR_KEY, body)
    admit.append(node.sign_tx(tx).encode())
    sups = [party_key(seed, f"supplier-{s}") for s in range(SUPPLIERS)]
    anchors = []
    for i in range(n):
        s = i % SUPPLIERS
        tx = evidence.anchor(
            chain_id,
            sups[s].public_key,
            c.org_id(f"supplier-{s}"),
            i // SUPPLIERS,
            c.DocType.INVOICE,
            invoice(seed, i),
        )
        anchors.append(sups[s].sign_tx(tx).encode())
    procs = os.cpu_count() or 1
    step = max(1, min(64, -(-n // (4 * procs))))
    jobs = [(chain_id, seed, n, regulator, range(a, min(n, a + step))) for a in range(0, n, step)]
    with loadgen._pool_context().Pool(procs) as pool:
        built = [t for part in pool.map(_build_vouchers, jobs, chunksize=1) for t in part]
    cols = list(zip(*built, strict=True))
    got = Vouchers(n, admit, anchors, *map(list, cols), time.perf_counter() - t0)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(got, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return got


def mix_streams(transfers: loadgen.Workload, csplit: list[bytes], mixed: bool) -> list[list[bytes]]:
    """One stream per submitter thread: supplier ``s``'s splits go to thread ``s % threads``
    (its nonces in order), each after ``CONF_EVERY - 1`` transfers (a prefix of loadgen's
    stream: every sender's nonces in order). Unmixed: the same number of transfers only."""
    threads = len(transfers.streams)
    out = []
    for k, stream in enumerate(transfers.streams):
        mine = [tx for i, tx in enumerate(csplit) if (i % SUPPLIERS) % threads == k]
        total = CONF_EVERY * len(mine)
        if len(stream) < total:
            raise ValueError("the transfer workload is too short for the mix")
        if not mixed:
            out.append(stream[:total])
            continue
        plain = iter(stream[: total - len(mine)])
        s: list[bytes] = []
        for tx in mine:
            s += [next(plain) for _ in range(CONF_EVERY - 1)] + [tx]
        out.append(s)
    return out


# --- measuring -----------------------------------------------------------------------------------


class CheckClock:
    """Wall time inside the apps' admission batch checks (``mempool.run_checks``), summed over
    the submitter threads: the proof checks of every batch (this process only)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds = 0.0
        original = mempool.run_checks

        def timed(batch, codes, candidates, checks) -> None:
            t0 = time.perf_counter()
            try:
                original(batch, codes, candidates, checks)
            finally:
                dt = time.perf_counter() - t0
                with self.lock:
                    self.seconds += dt

        mempool.run_checks = timed

    def take(self) -> float:
        with self.lock:
            s, self.seconds = self.seconds, 0.0
        return s


class _Pending:
    """A solo chain's ``Submission`` as loadgen's ``Pending``."""

    def __init__(self, sub) -> None:
        self.sub = sub

    def wait(self, timeout_s: float) -> loadgen.Settled:
        rejected = int((self.sub.codes != 0).sum())
        try:
            receipts = self.sub.wait(timeout_s)
        except TimeoutError:
            return loadgen.Settled(rejected=rejected, unsettled=self.sub.accepted)
        ok = sum(r is not None and r.code == 0 for r in receipts)
        failed = sum(r is not None and r.code != 0 for r in receipts)
        return loadgen.Settled(ok, failed, rejected)


def run_setup(chain: Chain, txs: list[bytes], batch_txs: int) -> None:
    subs = [chain.submit(frame(txs[i : i + batch_txs])) for i in range(0, len(txs), batch_txs)]
    for sub in subs:
        if (sub.codes != 0).any():
            raise SystemExit(f"setup refused at admission: codes {sorted(set(sub.codes.tolist()))}")
        bad = [r.code for r in sub.wait(300) if r.code != 0]
        if bad:
            raise SystemExit(f"setup failed: receipt codes {sorted(set(bad))}")


def run_one(
    config: ChainConfig,
    node: KeyPair,
    setup: list[bytes],
    streams: list[list[bytes]],
    *,
    batch_txs: int,
    inflight: int,
    clock: CheckClock,
) -> dict:
    """A fresh chain: ``setup`` committed unmeasured, then ``streams`` driven until they run out."""
    framed = [[frame(s[i : i + batch_txs]) for i in range(0, len(s), batch_txs)] for s in streams]
    directory = Path(tempfile.mkdtemp(prefix="tierchain-cmix-"))
    try:
        with Chain(directory, config, node) as chain:
            run_setup(chain, setup, batch_txs)
            clock.take()
            d = loadgen.drive(
                framed,
                lambda _k, buf: _Pending(chain.submit(buf)),
                batch_txs=batch_txs,
                seconds=3600.0,  # until the streams run out
                inflight=inflight,
                failure=lambda: chain.error,
            )
            check_s = clock.take()
            if d.error is not None:
                raise RuntimeError(f"the load failed: {d.error!r}") from d.error
            timings = [t for t in chain.timings if t.at >= d.t_start]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    fig = loadgen.window_figures(d)
    sent = sum(len(s) for s in streams)
    run_s = float(d.done[:, 1].max() - d.t_start) if len(d.done) else 0.0
    produce = np.array([t.produce_s for t in timings]) if timings else np.zeros(1)
    return {
        "txs": sent,
        "committed": int(d.done[:, 2].sum()),
        "failed": fig["failed"],
        "rejected": fig["rejected"],
        "unsettled": fig["unsettled"],
        "tps": fig["tps"],
        "run_s": run_s,  # from the first submit to the last commit
        "latency_ms_p50": fig["latency_ms_p50"],
        "latency_ms_p99": fig["latency_ms_p99"],
        "cpu_util": fig["cpu_util"],
        "blocks": len(timings),
        "block_txs_mean": float(np.mean([t.txs for t in timings])) if timings else 0.0,
        "produce_ms_mean": float(produce.mean() * 1e3),
        "producer_busy": float(produce.sum() / run_s) if run_s else 0.0,
        "durable_ms_mean": float(np.mean([t.durable_s for t in timings]) * 1e3) if timings else 0.0,
        "tps_end_to_end": sent / run_s if run_s else 0.0,
        "check_s": check_s,  # wall time in the admission checks, summed over the submitters
    }


def isolated_check(txs: list[bytes], batch: int, repeat: int) -> dict:
    """The confidential ops' admission check (``confidential.CHECK``: parse, then all range
    proofs and all validity proofs in one native call each, on both cores) on batches of
    ``batch`` of ``txs`` alone (the batch sizes the run's admission sees): seconds per
    transaction, and the shares of the native range-proof and validity-proof calls."""
    parts = [decode_batch(frame(txs[i : i + batch])) for i in range(0, len(txs), batch)]
    for b in parts:
        if np.asarray(confidential.CHECK.check(b, np.arange(len(b)))).any():
            raise SystemExit("the pre-built confidential transactions fail their proof check")
    spent = {"verify_range_batch": 0.0, "verify_validity_batch": 0.0}
    originals = {name: getattr(conf, name) for name in spent}

    def timed(name: str):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t0

        return call

    times = []
    try:
        for name in spent:  # camount calls them through the module: timed in this process only
            setattr(conf, name, timed(name))
        for _ in range(repeat):
            t0 = time.perf_counter()
            for b in parts:
                confidential.CHECK.check(b, np.arange(len(b)))
            times.append(time.perf_counter() - t0)
    finally:
        for name, fn in originals.items():
            setattr(conf, name, fn)
    total = sum(times)
    return {
        "s_per_tx": statistics.median(times) / len(txs),
        "range_share": spent["verify_range_batch"] / total,
        "validity_share": spent["verify_validity_batch"] / total,
    }


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def fmt(s: dict, pattern: str = "{:,.0f}") -> str:
    if s["min"] == s["max"]:
        return pattern.format(s["median"])
    return f"{pattern.format(s['median'])} ({pattern.format(s['min'])}..{pattern.format(s['max'])})"


@click.command()
@click.option(
    "--vouchers",
    type=int,
    default=4000,
    show_default=True,
    help="Confidential vouchers: the mix splits each once (10x as many txs in the mix).",
)
@click.option("--repeat", type=int, default=3, show_default=True, help="Rounds of the four setups.")
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option(
    "--accounts", type=int, default=10_000, show_default=True, help="Transfer accounts (state size)."
)
@click.option("--batch", "batch_txs", type=int, default=512, show_default=True)
@click.option("--inflight", type=int, default=4, show_default=True, help="Batches in flight per submitter.")
@click.option("--block-txs-max", type=int, default=4096, show_default=True)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cache/tierchain"),
    show_default=True,
)
@click.option("--tiny", is_flag=True, help="Tiny parameters (CI): the script runs; figures mean little.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(vouchers, repeat, sync, accounts, batch_txs, inflight, block_txs_max, cache_dir, tiny, out) -> None:
    if tiny:
        vouchers, repeat, accounts, batch_txs = 48, 1, 2000, 16
    console = Console(width=None if sys.stdout.isatty() else 130)  # a log keeps the table whole
    seed, chain_id, threads = 17, 1, 4
    node = party_key(seed, "committee")
    t0 = time.perf_counter()
    # Transfers first: build_workload forks while this process has one thread.
    per_thread = -(-vouchers // SUPPLIERS) * (SUPPLIERS // threads) * CONF_EVERY
    spec = loadgen.WorkloadSpec(accounts, per_thread * threads + 4096, threads, seed=seed, chain_id=chain_id)
    transfers = loadgen.build_workload(spec, cache_dir=cache_dir)
    work = build_vouchers(vouchers, seed, chain_id, node, cache_dir)
    prepare_s = time.perf_counter() - t0
    config = loadgen.genesis_config(
        transfers, node, sync=sync, block_txs_max=block_txs_max, block_interval_ms=20, chain_id=chain_id
    )
    base_setup = work.admit + work.anchors
    plans = {
        "plain mix": (base_setup + work.cconfirm, mix_streams(transfers, work.csplit, mixed=False)),
        "10% conf mix": (base_setup + work.cconfirm, mix_streams(transfers, work.csplit, mixed=True)),
        "plain lifecycle": (base_setup, [work.lifecycle(False)]),
        "conf lifecycle": (base_setup, [work.lifecycle(True)]),
    }
    console.print(
        f"[bold]Confidential throughput[/bold]: {vouchers:,} vouchers, mix of "
        f"{sum(map(len, plans['plain mix'][1])):,} txs, sync={sync}, {repeat} rounds, "
        f"{os.cpu_count()} cores; prepared in {prepare_s:.1f} s (vouchers built in {work.build_s:.1f} s, "
        "0 if cached)"
    )
    clock = CheckClock()
    runs: dict[str, list[dict]] = {name: [] for name in SETUPS}
    for r in range(repeat):
        for name in SETUPS if r % 2 == 0 else SETUPS[::-1]:
            setup, streams = plans[name]
            res = run_one(config, node, setup, streams, batch_txs=batch_txs, inflight=inflight, clock=clock)
            if res["failed"] or res["rejected"] or res["unsettled"] or res["committed"] != res["txs"]:
                raise SystemExit(f"{name}: not every transaction committed: {res}")
            runs[name].append(res)
            console.print(
                f"  round {r + 1} {name:16s} {res['tps']:>9,.0f} TPS  ({res['txs']:,} txs, "
                f"{res['run_s']:.2f} s, producer busy {res['producer_busy']:.0%}, "
                f"checks {res['check_s']:.2f} s)"
            )
    # The proof checks alone, at the batch sizes admission sees in the run: a mix batch holds
    # one split in ten; the lifecycle's batches are all confirmations or all splits.
    check_reps = 1 if tiny else 3
    mix_batch = max(1, batch_txs // CONF_EVERY)
    check_alone = {
        "csplit_in_mix": isolated_check(work.csplit[: 10 * mix_batch], mix_batch, check_reps),
        "csplit": isolated_check(work.csplit[:batch_txs], batch_txs, check_reps),
        "cconfirm": isolated_check(work.cconfirm[:batch_txs], batch_txs, check_reps),
    }
    per_tx = {k: v["s_per_tx"] for k, v in check_alone.items()}
    keys = ("tps", "tps_end_to_end", "run_s", "producer_busy", "check_s", "latency_ms_p50", "cpu_util",
            "produce_ms_mean", "block_txs_mean")  # fmt: skip
    summary = {name: {k: spread([x[k] for x in runs[name]]) for k in keys} for name in SETUPS}
    base_tps = summary["plain mix"]["tps"]["median"]
    ratios = {
        "conf_mix_over_plain_mix": summary["10% conf mix"]["tps"]["median"] / base_tps,
        "conf_lifecycle_over_plain_lifecycle": summary["conf lifecycle"]["tps"]["median"]
        / summary["plain lifecycle"]["tps"]["median"],
    }
    # The share of the run's wall time (both cores) that checking its proofs takes, done alone.
    run_s = {name: summary[name]["run_s"]["median"] for name in SETUPS}
    check_share_alone = {
        "10% conf mix": len(work.csplit) * per_tx["csplit_in_mix"] / run_s["10% conf mix"],
        "conf lifecycle": vouchers * (per_tx["csplit"] + per_tx["cconfirm"]) / run_s["conf lifecycle"],
    }
    table = Table("setup", "txs", "TPS median (min..max)", "vs plain mix", "producer busy",
                  "proof checks alone", "p50 latency")  # fmt: skip
    for name in SETUPS:
        s = summary[name]
        share = check_share_alone.get(name)
        table.add_row(
            name,
            f"{runs[name][0]['txs']:,}",
            fmt(s["tps"]),
            f"{s['tps']['median'] / base_tps:.2f}",
            fmt(s["producer_busy"], "{:.0%}"),
            "-" if share is None else f"{share:.0%}",
            f"{s['latency_ms_p50']['median']:,.0f} ms",
        )
    console.print(table)
    mix_tps = summary["10% conf mix"]["tps"]["median"]
    console.print(
        f"conf lifecycle / plain lifecycle: {ratios['conf_lifecycle_over_plain_lifecycle']:.2f}; "
        f"10% conf mix / plain mix: {ratios['conf_mix_over_plain_mix']:.2f}; "
        f"aim >= {AIM_MIX_TPS:,} TPS durable for the 10% mix: "
        + ("met" if mix_tps >= AIM_MIX_TPS and sync == "full" else "NOT met")
        + ("" if sync == "full" else " (sync=none: NOT DURABLE)")
        + (" (--tiny: the figures mean little)" if tiny else "")
    )
    console.print(
        f"proof checks alone (both cores): csplit {per_tx['csplit_in_mix'] * 1e3:.2f} ms/tx in "
        f"batches of {mix_batch} ({check_alone['csplit_in_mix']['range_share']:.0%} range proofs, "
        f"{check_alone['csplit_in_mix']['validity_share']:.0%} validity proofs), "
        f"{per_tx['csplit'] * 1e3:.2f} in batches of {batch_txs}; cconfirm {per_tx['cconfirm'] * 1e3:.2f}. "
        "producer busy: block production time / run time; proof checks alone: the run's proofs "
        "checked alone, share of its run time"
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "date": datetime.date.today().isoformat(),
            "machine": {
                "cpus": os.cpu_count(),
                "native_threads": tierchain_native.thread_count(),
                "python": platform.python_version(),
            },
            "tiny": tiny,
            "sync": sync,
            "durable": sync == "full",
            "vouchers": vouchers,
            "accounts": accounts,
            "batch_txs": batch_txs,
            "inflight": inflight,
            "repeat": repeat,
            "prepare_s": prepare_s,
            "build_vouchers_s": work.build_s,
            "aim_mix_tps": AIM_MIX_TPS,
            "aim_met": mix_tps >= AIM_MIX_TPS and sync == "full",
            "summary": summary,
            "ratios": ratios,
            "check_s_per_tx_alone": check_alone,
            "check_share_alone": check_share_alone,
            "runs": runs,
        }
        out.write_text(json.dumps(report, indent=2, default=lambda o: o.item()) + "\n")  # numpy scalars
        console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
