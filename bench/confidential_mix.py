"""Throughput with confidential transactions: a 10%-confidential mix and the confidential
voucher lifecycle, each beside its plaintext counterpart, in one run (issue 17, deliverable 7).

Four setups, each on a fresh solo chain (durable commits unless ``--sync none``), run in
turn and repeated ``--repeat`` times (the order reversed every other round); every figure
is the median (min..max) of the repeats:

* ``plain mix``   plain accounts transfers only (loadgen's transfer mix): the baseline;
* ``10% conf mix`` the same stream with one transaction in ten a confidential split
                  (``fin.csplit``, 2 ways) of a distinct confidential piece;
* ``plain lifecycle`` the whole lifecycle of ``--vouchers`` vouchers: ``fin.confirm``,
                  ``fin.split`` (2 ways), ``fin.offer`` of piece 0 to another supplier and its
                  ``fin.accept``, ``fin.offer`` of piece 1 to a bank at a discount and the bank's
                  ``fin.accept``, then at maturity ``fin.settle`` of both pieces (one tx a voucher);
* ``conf lifecycle``  the same with hidden amounts: ``fin.cconfirm``, ``fin.csplit``, ``fin.coffer``
                  + ``fin.accept``, ``fin.coffer`` (discount, hidden price) + ``fin.accept``, and
                  the confidential ``fin.settle``.

Both mixes run after the same unmeasured setup: the committee admits the organizations
(4 core enterprises, 64 suppliers) and sets the regulator's ElGamal key
(``Action.SET_REGULATOR_KEY``, what ``Party.propose_regulator_key`` sends), the suppliers
anchor their invoices, and the core enterprises issue ``--vouchers`` confidential vouchers
(``fin.cconfirm``); the measured stream then splits each one once. The lifecycles' setup
is the admissions (and 4 banks'), the key and the anchors; their measured stream is one
ordered stream (as bench/finance.py drives) in two phases. First, in rounds of 512
vouchers, stage by stage: the confirmations, the splits, the transfer offers, their
accepts, the discount offers, the banks' accepts. Then the settlements, which need the
block time at the vouchers' maturity, and pieces stop moving at maturity: so the
confirmations carry a maturity a margin after the setup (they are re-signed then, the
only bytes that change; the margin: twice the previous run's first phase, generous the
first time, doubled and the setup run again should a transaction come too late), and the
settlement phase waits for it. The lifecycles' TPS is loadgen's over each phase, summed:
(committed after each phase's first commit) / (each phase's first to last commit); the
idle wait between the phases is not counted.

Every transaction is built, proved and signed before any clock starts, in a process pool
(proving is client work), and cached under ``.cache/tierchain/`` keyed by every parameter,
the lifecycle's stages and by the sources that shape the bytes (the lifecycle's
confirmations are re-signed with their maturity before each run, also before its clock).
The mixes are driven like ``tierchain load``
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
import inspect
import json
import os
import pickle
import platform
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import tierchain_native
from rich.console import Console
from rich.table import Table

from tierchain.apps.finance import camount, confidential, evidence, orgs, registry, voucher
from tierchain.apps.finance import codes as c
from tierchain.config import ChainConfig
from tierchain.crypto import ED25519_BLAKE3, KeyPair
from tierchain.crypto import confidential as conf
from tierchain.engine import mempool
from tierchain.engine.chain import Chain
from tierchain.tools import loadgen
from tierchain.wire import tx as wtx
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

AIM_MIX_TPS = 10_000
CONF_EVERY = 10  # one confidential transaction in ten
SECRET = b"tierchain bench consortium secret"
MATURITY_MS = 1 << 50  # the mix's; the lifecycles' confirmations are re-signed with theirs
CORES, SUPPLIERS, BANKS, ROUND = 4, 64, 4, 512
DISCOUNT_PERCENT = 98  # a bank buys piece 1 at this share of its amount
CACHE_FORMAT = 2  # bump when the cached bytes would differ for the same parameters
SETUPS = ("plain mix", "10% conf mix", "plain lifecycle", "conf lifecycle")
# A voucher's lifecycle, in stream order: the first six in rounds of ROUND vouchers, stage by
# stage, before maturity; then the settlements (one tx a voucher: both its live pieces).
LIFE_STAGES = ("confirm", "split", "offer", "accept", "discount", "bank accept", "settle")
BEFORE_MATURITY = LIFE_STAGES[:-1]
# The maturity's offset in a confirmation's payload (voucher._CONFIRM: beneficiary, face,
# maturity; confidential._CCONFIRM: beneficiary, maturity), checked when re-signing.
MATURITY_AT = {c.OP_CONFIRM: 24, c.OP_CCONFIRM: 16}
# The first run's margin to maturity: MARGIN_S + its first phase's txs at a guessed rate
# (low); later runs: MARGIN_S + twice the previous run's first phase.
MARGIN_S, GUESS_TPS = 1.5, {"plain": 4_000, "conf": 1_500}


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


def tier2(i: int) -> int:
    """The supplier voucher ``i``'s piece 0 is transferred to: never its holder ``i % SUPPLIERS``."""
    return (i % SUPPLIERS + 1 + (i // SUPPLIERS) % (SUPPLIERS - 1)) % SUPPLIERS


def _lifecycle_nonces(n: int) -> list[list[int]]:
    """Per voucher, the nonces of its lifecycle transactions after the confirmation (split,
    offer, accept, discount, bank accept, settle): each sender's, counted in stream order
    (rounds of ``ROUND`` vouchers stage by stage, then the settlements). A supplier starts
    after its anchors; it splits and offers its own pieces and accepts others', interleaved."""
    nxt: dict[tuple[str, int], int] = {("supplier", s): b for s, b in enumerate(_nonce_bases(n))}

    def take(who: tuple[str, int]) -> int:
        nxt[who] = nxt.get(who, 0) + 1
        return nxt[who] - 1

    senders = (  # of split, offer, accept, discount, bank accept
        lambda i: ("supplier", i % SUPPLIERS),
        lambda i: ("supplier", i % SUPPLIERS),
        lambda i: ("supplier", tier2(i)),
        lambda i: ("supplier", i % SUPPLIERS),
        lambda i: ("bank", i % BANKS),
    )
    out = [[0] * (len(LIFE_STAGES) - 1) for _ in range(n)]
    for r in range(0, n, ROUND):
        vs = range(r, min(n, r + ROUND))
        for i in vs:  # the confirmations: the mix's nonces, so the mix's cconfirm serves
            if take(("core", i % CORES)) != i // CORES:
                raise AssertionError("a confirmation's nonce differs from the mix's")
        for stage, sender in enumerate(senders):
            for i in vs:
                out[i][stage] = take(sender(i))
    for i in range(n):
        out[i][-1] = take(("core", i % CORES))
    return out


def _build_vouchers(args: tuple) -> list[tuple[bytes, ...]]:
    """Worker: per voucher ``i``, its signed (cconfirm, csplit, confirm, then the plaintext
    lifecycle's split .. settle, then the confidential lifecycle's split .. settle).

    Voucher ``i``: core ``i % CORES`` confirms (its nonce ``i // CORES``) a payable to supplier
    ``i % SUPPLIERS``, who splits it in two (in the mix its nonce: after its anchors,
    ``i // SUPPLIERS``). In the lifecycles (nonces from ``_lifecycle_nonces``) the supplier
    then offers piece 0 to supplier ``tier2(i)``, who accepts, and piece 1 at a discount to
    bank ``i % BANKS``, who accepts; at maturity the core settles both pieces. The
    confirmations carry ``MATURITY_MS``: the lifecycles re-sign them with their maturity."""
    chain_id, seed, n, regulator, items = args
    cores = [party_key(seed, f"core-{k}") for k in range(CORES)]
    sups = [party_key(seed, f"supplier-{s}") for s in range(SUPPLIERS)]
    banks = [party_key(seed, f"bank-{b}") for b in range(BANKS)]
    base = _nonce_bases(n)
    transfer, discount = c.OfferKind.TRANSFER, c.OfferKind.DISCOUNT
    out = []
    for i, (ln_split, ln_offer, ln_accept, ln_discount, ln_bank, ln_settle) in items:
        k, s, t, b = i % CORES, i % SUPPLIERS, tier2(i), i % BANKS
        core, sup, taker, bank = cores[k], sups[s], sups[t], banks[b]
        core_org, sup_org = c.org_id(f"core-{k}"), c.org_id(f"supplier-{s}")
        taker_org, bank_org = c.org_id(f"supplier-{t}"), c.org_id(f"bank-{b}")
        fp, face = invoice(seed, i), face_of(seed, i)
        blinded = registry.blind_invoice(SECRET, fp)
        docs = [(c.DocType.INVOICE, fp)]
        cn, sn = i // CORES, base[s] + i // SUPPLIERS
        halves = [face // 2, face - face // 2]
        price = halves[1] * DISCOUNT_PERCENT // 100
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
        assert pvid == vid  # the same id: blinded invoice, obligor, nonce
        mix = (
            core.sign_tx(ctx_confirm).encode(),
            sup.sign_tx(ctx_split).encode(),
            core.sign_tx(ptx).encode(),
        )
        # The plaintext lifecycle after the confirmation.
        split_tx, kids = voucher.split(chain_id, sup.public_key, sup_org, ln_split, vid, vid, halves)
        plain = (
            sup.sign_tx(split_tx),
            sup.sign_tx(voucher.offer(chain_id, sup.public_key, sup_org, ln_offer, vid, kids[0], taker_org)),
            taker.sign_tx(
                voucher.accept(
                    chain_id, taker.public_key, taker_org, ln_accept, vid, kids[0], transfer, blinded
                )
            ),
            sup.sign_tx(
                voucher.offer(
                    chain_id, sup.public_key, sup_org, ln_discount, vid, kids[1], bank_org, discount, price
                )
            ),
            bank.sign_tx(
                voucher.accept(chain_id, bank.public_key, bank_org, ln_bank, vid, kids[1], discount, blinded)
            ),
            core.sign_tx(
                voucher.settle(chain_id, core.public_key, core_org, ln_settle, vid, kids, 0, blinded)
            ),
        )
        # The confidential lifecycle: the openings are the client's (the builders return them).
        csplit_tx, ckids, openings = confidential.csplit(
            chain_id, sup.public_key, sup_org, ln_split, vid, vid, opening, halves, regulator
        )
        assert ckids == kids
        offer_tx, _ = confidential.coffer(
            chain_id, sup.public_key, sup_org, ln_offer, vid, kids[0], openings[0], taker_org,
            taker.public_key, regulator,
        )  # fmt: skip
        discount_tx, _ = confidential.coffer(
            chain_id, sup.public_key, sup_org, ln_discount, vid, kids[1], openings[1], bank_org,
            bank.public_key, regulator, discount, price,
        )  # fmt: skip
        hidden = (
            sup.sign_tx(csplit_tx),
            sup.sign_tx(offer_tx),
            taker.sign_tx(
                voucher.accept(
                    chain_id, taker.public_key, taker_org, ln_accept, vid, kids[0], transfer, blinded, True
                )
            ),
            sup.sign_tx(discount_tx),
            bank.sign_tx(
                voucher.accept(
                    chain_id, bank.public_key, bank_org, ln_bank, vid, kids[1], discount, blinded, True
                )
            ),
            core.sign_tx(
                voucher.settle(chain_id, core.public_key, core_org, ln_settle, vid, kids, 0, blinded, True)
            ),
        )
        out.append((*mix, *(t.encode() for t in plain), *(t.encode() for t in hidden)))
    return out


@dataclasses.dataclass
class Vouchers:
    """The signed transactions of ``n`` vouchers (cached)."""

    n: int
    admit: list[bytes]  # committee: admissions and the regulator key
    banks: list[bytes]  # committee: the banks' admissions (the lifecycles' setup only)
    anchors: list[bytes]  # suppliers: one invoice each voucher
    cconfirm: list[bytes]  # the mix's setup; re-signed with a maturity, the conf lifecycle's
    csplit: list[bytes]  # the mix's
    confirm: list[bytes]  # re-signed with a maturity, the plain lifecycle's
    life: dict[str, dict[str, list[bytes]]]  # "plain" / "conf": stage after "confirm" -> txs
    build_s: float


def with_maturity(raw: bytes, maturity_ms: int, keys: dict[bytes, KeyPair]) -> bytes:
    """A signed confirmation of ``MATURITY_MS``, re-signed with ``maturity_ms``: the only field
    that changes (the voucher's id, the amount's commitments and proofs do not cover it)."""
    t = wtx.decode(raw)
    at, old = MATURITY_AT[t.op], struct.pack("<Q", MATURITY_MS)
    if t.payload[at : at + 8] != old:
        raise ValueError("a confirmation's payload is not laid out as MATURITY_AT says")
    t = dataclasses.replace(t, payload=t.payload[:at] + struct.pack("<Q", maturity_ms) + t.payload[at + 8 :])
    if t.op == c.OP_CCONFIRM and confidential.parse_cconfirm(t.payload).maturity_ms != maturity_ms:
        raise ValueError("a confidential confirmation's maturity is not at MATURITY_AT")
    return keys[t.sender].sign_tx(t).encode()


def _sources_tag() -> str:
    """What shapes the signed bytes besides the parameters: the builders' sources, this
    script's building code (the lifecycle's stages, senders and nonces), the native library."""
    h = hashlib.blake2b(digest_size=8)
    for mod in (camount, confidential, evidence, orgs, registry, voucher, c, conf):
        h.update(Path(mod.__file__).read_bytes())
    for fn in (tier2, _lifecycle_nonces, _build_vouchers, build_vouchers):
        h.update(inspect.getsource(fn).encode())
    st = Path(tierchain_native.__file__).stat()
    h.update(b"%d %d" % (st.st_size, st.st_mtime_ns))
    return h.hexdigest()


def build_vouchers(n: int, seed: int, chain_id: int, node: KeyPair, cache_dir: Path | None) -> Vouchers:
    params = (CACHE_FORMAT, n, seed, chain_id, node.public_key, LIFE_STAGES, ROUND, BANKS, DISCOUNT_PERCENT,
              MATURITY_MS, _sources_tag())  # fmt: skip
    tag = hashlib.blake2b(repr(params).encode(), digest_size=10).hexdigest()
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
    banks = []
    for b in range(BANKS):
        nonce += 1
        body = orgs.admit_body(f"bank-{b}", ("bank",), party_key(seed, f"bank-{b}").public_key)
        tx = orgs.propose(chain_id, node.public_key, nonce, c.Action.ADMIT_ORG, body)
        banks.append(node.sign_tx(tx).encode())
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
    nonces = _lifecycle_nonces(n)
    procs = os.cpu_count() or 1
    step = max(1, min(64, -(-n // (4 * procs))))
    jobs = [
        (chain_id, seed, n, regulator, [(i, nonces[i]) for i in range(a, min(n, a + step))])
        for a in range(0, n, step)
    ]
    with loadgen.pool_context().Pool(procs) as pool:
        built = [t for part in pool.map(_build_vouchers, jobs, chunksize=1) for t in part]
    cols = [list(col) for col in zip(*built, strict=True)]
    after = LIFE_STAGES[1:]
    life = {
        "plain": dict(zip(after, cols[3 : 3 + len(after)], strict=True)),
        "conf": dict(zip(after, cols[3 + len(after) :], strict=True)),
    }
    got = Vouchers(n, admit, banks, anchors, cols[0], cols[1], cols[2], life, time.perf_counter() - t0)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(got, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return got


class Lifecycle:
    """A lifecycle setup's measured transactions, made ready once its chain's setup has
    committed: the confirmations re-signed with a maturity ``margin_s`` ahead, then two
    phases: the stages before maturity (rounds of ``ROUND`` vouchers, stage by stage), and
    the settlements, not before the maturity."""

    def __init__(self, work: Vouchers, kind: str, keys: dict[bytes, KeyPair]) -> None:
        self.kind, self.work, self.keys = kind, work, keys
        self.confirms = work.cconfirm if kind == "conf" else work.confirm
        self.stages = work.life[kind]
        self.margin_s = MARGIN_S + len(BEFORE_MATURITY) * work.n / GUESS_TPS[kind]

    def __call__(self) -> tuple[list[tuple[list[list[bytes]], int | None]], dict]:
        maturity_ms = int((time.time() + self.margin_s) * 1000)
        confirms = [with_maturity(raw, maturity_ms, self.keys) for raw in self.confirms]
        first: list[bytes] = []
        for r in range(0, self.work.n, ROUND):
            first += confirms[r : r + ROUND]
            for stage in BEFORE_MATURITY[1:]:
                first += self.stages[stage][r : r + ROUND]
        phases = [([first], None), ([self.stages["settle"]], maturity_ms)]
        return phases, {"maturity_margin_s": self.margin_s}

    def learn(self, res: dict) -> None:
        """A run went through: the next margin, twice its first phase (from the maturity's choice)."""
        self.margin_s = MARGIN_S + 2 * res["first_phase_s"]

    def too_late(self) -> None:
        """Some transaction of the first phase met the maturity: a wider margin."""
        self.margin_s *= 2


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

        def timed(batch, codes, candidates, checks, suite) -> None:
            t0 = time.perf_counter()
            try:
                original(batch, codes, candidates, checks, suite)
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
    """A solo chain's ``Submission`` as loadgen's ``Pending``; the codes of failed
    transactions go to ``codes``."""

    def __init__(self, sub, codes: list[int]) -> None:
        self.sub, self.codes = sub, codes

    def wait(self, timeout_s: float) -> loadgen.Settled:
        rejected = int((self.sub.codes != 0).sum())
        try:
            receipts = self.sub.wait(timeout_s)
        except TimeoutError:
            return loadgen.Settled(rejected=rejected, unsettled=self.sub.accepted)
        ok = sum(r is not None and r.code == 0 for r in receipts)
        failed = [r.code for r in receipts if r is not None and r.code != 0]
        self.codes.extend(failed)
        return loadgen.Settled(ok, len(failed), rejected)


def run_setup(chain: Chain, txs: list[bytes], batch_txs: int) -> None:
    subs = [chain.submit(frame(txs[i : i + batch_txs])) for i in range(0, len(txs), batch_txs)]
    for sub in subs:
        if (sub.codes != 0).any():
            raise SystemExit(f"setup refused at admission: codes {sorted(set(sub.codes.tolist()))}")
        bad = [r.code for r in sub.wait(300) if r.code != 0]
        if bad:
            raise SystemExit(f"setup failed: receipt codes {sorted(set(bad))}")


def _counted(d: loadgen.Drive, fig: dict) -> tuple[float, float]:
    """loadgen's TPS as (txs, seconds): committed after the first commit, first to last commit."""
    arr = d.done
    times = np.unique(arr[arr[:, 2] > 0, 1])
    if len(times) >= 3:
        return float(arr[arr[:, 1] > times[0], 2].sum()), float(times[-1] - times[0])
    return float(fig["committed"]), float(fig["seconds"])


Phases = list[tuple[list[list[bytes]], int | None]]  # (streams, not before this wall time, ms)


def run_one(
    config: ChainConfig,
    node: KeyPair,
    setup: list[bytes],
    plan: Callable[[], tuple[Phases, dict]],
    *,
    batch_txs: int,
    inflight: int,
    clock: CheckClock,
) -> dict:
    """A fresh chain: ``setup`` committed unmeasured, then ``plan()``'s phases, each driven
    until its streams run out, a phase with a wall time not before it (the wait is not
    measured). Figures over the phases: TPS, loadgen's of each phase summed; latency, CPU
    and the producer's time over the phases' windows."""
    directory = Path(tempfile.mkdtemp(prefix="tierchain-cmix-"))
    codes: list[int] = []
    drives: list[loadgen.Drive] = []
    waited_s = 0.0
    try:
        with Chain(directory, config, node) as chain:
            run_setup(chain, setup, batch_txs)
            t_plan = time.perf_counter()
            phases, meta = plan()
            framed = [
                [[frame(s[i : i + batch_txs]) for i in range(0, len(s), batch_txs)] for s in streams]
                for streams, _ in phases
            ]
            clock.take()
            for (_, not_before_ms), batches in zip(phases, framed, strict=True):
                if not_before_ms is not None:  # block times reach it (a block's: its wall time)
                    t0 = time.perf_counter()
                    while (left := not_before_ms / 1000 - time.time()) >= 0:
                        time.sleep(left + 0.002)
                    waited_s += time.perf_counter() - t0
                d = loadgen.drive(
                    batches,
                    lambda _k, buf: _Pending(chain.submit(buf), codes),
                    batch_txs=batch_txs,
                    seconds=3600.0,  # until the streams run out
                    inflight=inflight,
                    failure=lambda: chain.error,
                )
                if d.error is not None:
                    raise RuntimeError(f"the load failed: {d.error!r}") from d.error
                drives.append(d)
                if d.failed or d.rejected or d.unsettled:
                    break  # the next phase depends on this one
            check_s = clock.take()
            ends = [float(d.done[:, 1].max()) if len(d.done) else d.t_start for d in drives]
            windows = list(zip([d.t_start for d in drives], ends, strict=True))
            timings = [t for t in chain.timings if any(a <= t.at <= b for a, b in windows)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    figs = [loadgen.window_figures(d) for d in drives]
    sent = sum(len(s) for streams, _ in phases for s in streams)
    run_s = sum(b - a for a, b in windows)  # each phase from its first submit to its last commit
    produce = np.array([t.produce_s for t in timings]) if timings else np.zeros(1)
    counted = [_counted(d, f) for d, f in zip(drives, figs, strict=True)]
    if len(figs) == 1:  # loadgen's figures as they are
        tps, p50, p99, cpu = (figs[0][k] for k in ("tps", "latency_ms_p50", "latency_ms_p99", "cpu_util"))
    else:
        tps = sum(n for n, _ in counted) / max(1e-9, sum(s for _, s in counted))
        arr = np.concatenate([d.done for d in drives])
        arr = arr[arr[:, 2] > 0]
        lat = (
            np.repeat((arr[:, 1] - arr[:, 0]) * 1000, arr[:, 2].astype(np.int64)) if len(arr) else np.zeros(1)
        )
        p50, p99 = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
        cpu = sum(f["cpu_s"] for f in figs) / max(1e-9, sum(f["seconds"] for f in figs))
    return {
        "txs": sent,
        "committed": int(sum(d.done[:, 2].sum() for d in drives)),
        "failed": sum(f["failed"] for f in figs),
        "rejected": sum(f["rejected"] for f in figs),
        "unsettled": sum(f["unsettled"] for f in figs),
        "failed_codes": sorted(set(codes)),
        "tps": tps,
        "run_s": run_s,  # from the first submit to the last commit (of each phase, summed)
        "latency_ms_p50": p50,
        "latency_ms_p99": p99,
        "cpu_util": cpu,
        "blocks": len(timings),
        "block_txs_mean": float(np.mean([t.txs for t in timings])) if timings else 0.0,
        "produce_ms_mean": float(produce.mean() * 1e3),
        "producer_busy": float(produce.sum() / run_s) if run_s else 0.0,
        "durable_ms_mean": float(np.mean([t.durable_s for t in timings]) * 1e3) if timings else 0.0,
        "tps_end_to_end": sent / run_s if run_s else 0.0,
        "check_s": check_s,  # wall time in the admission checks, summed over the submitters
        "phases": [
            {
                "txs": sum(map(len, streams)),
                "committed": int(d.done[:, 2].sum()),
                "tps": f["tps"],
                "run_s": b - a,
            }
            for (streams, _), d, f, (a, b) in zip(phases, drives, figs, windows, strict=False)
        ],
        "first_phase_s": ends[0] - t_plan if ends else 0.0,  # from the plan (the maturity's choice)
        "wait_s": waited_s,  # not measured: between the phases, for the maturity
        **meta,
    }


def isolated_check(txs: list[bytes], batch: int, repeat: int) -> dict:
    """The confidential ops' admission check (``confidential.CHECK``: parse, then all range
    proofs and all validity proofs in one native call each, on both cores) on batches of
    ``batch`` of ``txs`` alone (the batch sizes the run's admission sees): seconds per
    transaction, and the shares of the native range-proof and validity-proof calls."""
    parts = [decode_batch(frame(txs[i : i + batch])) for i in range(0, len(txs), batch)]
    for b in parts:
        if np.asarray(confidential.CHECK.check(b, np.arange(len(b)), ED25519_BLAKE3)).any():
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
                confidential.CHECK.check(b, np.arange(len(b)), ED25519_BLAKE3)
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
    mix_plain = mix_streams(transfers, work.csplit, mixed=False)
    mix_conf = mix_streams(transfers, work.csplit, mixed=True)
    signers = {k.public_key: k for k in (party_key(seed, f"core-{i}") for i in range(CORES))}
    lifecycles = {
        name: Lifecycle(work, name.split()[0], signers) for name in ("plain lifecycle", "conf lifecycle")
    }
    plans = {
        "plain mix": (base_setup + work.cconfirm, lambda: ([(mix_plain, None)], {})),
        "10% conf mix": (base_setup + work.cconfirm, lambda: ([(mix_conf, None)], {})),
        **{name: (work.admit + work.banks + work.anchors, lc) for name, lc in lifecycles.items()},
    }
    console.print(
        f"[bold]Confidential throughput[/bold]: {vouchers:,} vouchers, mix of "
        f"{sum(map(len, mix_plain)):,} txs, lifecycles of {len(LIFE_STAGES) * vouchers:,} txs "
        f"({', '.join(LIFE_STAGES)}), sync={sync}, {repeat} rounds, "
        f"{os.cpu_count()} cores; prepared in {prepare_s:.1f} s (vouchers built in {work.build_s:.1f} s, "
        "0 if cached)"
    )
    clock = CheckClock()
    runs: dict[str, list[dict]] = {name: [] for name in SETUPS}
    for r in range(repeat):
        for name in SETUPS if r % 2 == 0 else SETUPS[::-1]:
            setup, plan = plans[name]
            for attempt in range(3):
                res = run_one(config, node, setup, plan, batch_txs=batch_txs, inflight=inflight, clock=clock)
                late = c.FinanceReject.MATURED in res["failed_codes"]
                if not (late and name in lifecycles and attempt < 2):
                    break
                console.print(f"  {name}: the maturity came too soon (margin {plan.margin_s:.1f} s): again")
                plan.too_late()
            if res["failed"] or res["rejected"] or res["unsettled"] or res["committed"] != res["txs"]:
                raise SystemExit(f"{name}: not every transaction committed: {res}")
            runs[name].append(res)
            if name in lifecycles:
                plan.learn(res)
            phases = "" if len(res["phases"]) < 2 else (
                f"; before maturity {res['phases'][0]['tps']:,.0f} TPS, settlements "
                f"{res['phases'][1]['tps']:,.0f} TPS, waited {res['wait_s']:.1f} s (not counted)"
            )  # fmt: skip
            console.print(
                f"  round {r + 1} {name:16s} {res['tps']:>9,.0f} TPS  ({res['txs']:,} txs, "
                f"{res['run_s']:.2f} s, producer busy {res['producer_busy']:.0%}, "
                f"checks {res['check_s']:.2f} s{phases})"
            )
    # The proof checks alone, at the batch sizes admission sees in the run: a mix batch holds
    # one split in ten; the lifecycle's batches are each of one stage (confirmations, splits,
    # transfer offers, discount offers; accepts and settlements carry no proof).
    check_reps = 1 if tiny else 3
    mix_batch = max(1, batch_txs // CONF_EVERY)
    hidden = work.life["conf"]
    check_alone = {
        "csplit_in_mix": isolated_check(work.csplit[: 10 * mix_batch], mix_batch, check_reps),
        "csplit": isolated_check(work.csplit[:batch_txs], batch_txs, check_reps),
        "cconfirm": isolated_check(work.cconfirm[:batch_txs], batch_txs, check_reps),
        "coffer_transfer": isolated_check(hidden["offer"][:batch_txs], batch_txs, check_reps),
        "coffer_discount": isolated_check(hidden["discount"][:batch_txs], batch_txs, check_reps),
    }
    per_tx = {k: v["s_per_tx"] for k, v in check_alone.items()}
    keys = ("tps", "tps_end_to_end", "run_s", "producer_busy", "check_s", "latency_ms_p50", "cpu_util",
            "produce_ms_mean", "block_txs_mean")  # fmt: skip
    summary = {name: {k: spread([x[k] for x in runs[name]]) for k in keys} for name in SETUPS}
    phase_summary = {  # the lifecycles' two phases apart, and the unmeasured wait between them
        name: {
            "before_maturity_tps": spread([x["phases"][0]["tps"] for x in runs[name]]),
            "settle_tps": spread([x["phases"][1]["tps"] for x in runs[name]]),
            "wait_s": spread([x["wait_s"] for x in runs[name]]),
            "maturity_margin_s": spread([x["maturity_margin_s"] for x in runs[name]]),
        }
        for name in lifecycles
    }
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
        "conf lifecycle": vouchers
        * sum(per_tx[k] for k in ("cconfirm", "csplit", "coffer_transfer", "coffer_discount"))
        / run_s["conf lifecycle"],
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
    for name, ph in phase_summary.items():
        console.print(
            f"{name} ({', '.join(LIFE_STAGES)}): before maturity {fmt(ph['before_maturity_tps'])} TPS, "
            f"settlements {fmt(ph['settle_tps'])} TPS; waited for the maturity "
            f"{fmt(ph['wait_s'], '{:.1f}')} s "
            f"(margin {fmt(ph['maturity_margin_s'], '{:.1f}')} s), not counted"
        )
    console.print(
        f"proof checks alone (both cores): csplit {per_tx['csplit_in_mix'] * 1e3:.2f} ms/tx in "
        f"batches of {mix_batch} ({check_alone['csplit_in_mix']['range_share']:.0%} range proofs, "
        f"{check_alone['csplit_in_mix']['validity_share']:.0%} validity proofs), "
        f"{per_tx['csplit'] * 1e3:.2f} in batches of {batch_txs}; cconfirm {per_tx['cconfirm'] * 1e3:.2f}; "
        f"coffer: transfer {per_tx['coffer_transfer'] * 1e3:.2f}, "
        f"discount {per_tx['coffer_discount'] * 1e3:.2f}. "
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
            "lifecycle_stages": LIFE_STAGES,
            "summary": summary,
            "lifecycle_phases": phase_summary,
            "ratios": ratios,
            "check_s_per_tx_alone": check_alone,
            "check_share_alone": check_share_alone,
            "runs": runs,
        }
        out.write_text(json.dumps(report, indent=2, default=lambda o: o.item()) + "\n")  # numpy scalars
        console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
