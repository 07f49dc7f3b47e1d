"""A mixed finance workload's TPS beside plain transfers, in the same run (issue 20, item 6).

One embedded durable ``Chain`` (apps accounts, xshard, finance, bills, receipts, abs;
``--sync full`` unless told otherwise) whose committee admits the organizations the four
products need, and which funds ``--payers`` plain accounts. The mix is built of *lots*, in
fixed proportions; one lot is 1,744 transactions, about a quarter per product:

==========  ========  =====================================================  =======
product     objects   ops per object, in order (sender)                      ops
==========  ========  =====================================================  =======
vouchers    64        anchor the invoice (tier 1), confirm (core), split     448
                      (tier 1), offer a piece (tier 1), accept (tier 2),
                      discount offer (tier 2), accept (bank)
bills       48        issue (core: drawer and acceptor), accept (core),      432
                      sign delivery (tier 1), endorse (tier 1), sign
                      (tier 2), discount offer (tier 2), sign (bank),
                      rediscount offer (bank), sign (second bank)
receipts    72        goods batch in/out/in/out (warehouse gateway),         432
                      pledge offer (holder), accept (bank), allow out
                      (bank), goods batch in/out/in/out under the pledge
                      (gateway), release (bank)
ABS         144       repayment of installment 1, overdue (10 days past       432
                      due), repayment of installment 2 (cures), by the
                      asset's servicer
==========  ========  =====================================================  =======

Every object is fresh (its own voucher, bill, warehouse receipt, ABS asset), so a block
holds many independent objects. A receipt is issued (its own stock location and IoT feed)
and an ABS asset registered in the untimed setup, as many as the lots need; vouchers and
bills live their whole lifecycle in the timed stream. In a lot the products' steps are
interleaved stage by stage (a product of k steps takes slots ``floor(s * 9 / k)`` of 9), so
a tx always follows what it depends on in stream order and every block mixes all four.
Senders: 16 core enterprises, 64 suppliers, 8 banks, 4 warehouses with 8 gateway keys each
(``fin.key_add``), 8 originator-and-servicer organizations.

A round is ``--ops`` mix transactions (rounded up to whole lots) and as many plain transfers
(``accounts.transfer`` among the funded accounts); the two phases alternate (mix first in
even rounds, transfers first in odd ones), after an untimed warm-up round of one lot. Every
transaction of every round is pre-signed in the setup, before any clock, with consecutive
nonces per sender and the declared keys the products' builders compute; each phase is
driven the same way (``--batch`` transactions per ``Chain.submit``, ``--inflight`` submits
outstanding) and timed from the first submit to the last receipt. Reported: TPS median
(min..max) of each, the ratio mix / transfers of each round, the process's CPU time per
committed tx of each phase (all threads: submitter, producer, committer) and its ratio
transfers / mix (steadier than wall time on a loaded machine), and per product the
transactions committed and the failures by code (admission and receipt codes). Every
transaction must succeed and after the rounds every object is read back (voucher piece
financed by its bank, bill held by the second bank, receipt unpledged at its issued balance
with no anomaly, asset performing with two installments paid); a failure is a workload bug:
the script writes its report and exits non-zero.

Usage: python bench/finance_mix.py [--ops 20000] [--repeat 5] [--crypto ed25519-blake3|sm2-sm3]
       [--sync full|none] [--payers 1024] [--tiny] [--out bench/out/finance_mix.json]
"""

from __future__ import annotations

import collections
import dataclasses
import json
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click

from figures import fmt, spread  # bench/figures.py (scripts run from bench/)
from tierchain.apps import accounts as accounts_app
from tierchain.apps.abs import assets as abs_assets
from tierchain.apps.abs import codes as ac
from tierchain.apps.abs.client import Abs
from tierchain.apps.bills import codes as bc
from tierchain.apps.bills import days as bill_days
from tierchain.apps.bills import lifecycle as bills
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import evidence, orgs, registry, voucher
from tierchain.apps.receipts import codes as rc
from tierchain.apps.receipts import goods as rgoods
from tierchain.apps.receipts import issue as rissue
from tierchain.apps.receipts import offers as roffers
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import SUITES, KeyPair, suite_for
from tierchain.engine import gc_tuning
from tierchain.engine.chain import Chain
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

OUT = Path(__file__).resolve().parent / "out"
APPS = ("accounts", "xshard", "finance", "bills", "receipts", "abs")
KINDS = ("voucher", "bill", "receipt", "abs")
LOT = {"voucher": 64, "bill": 48, "receipt": 72, "abs": 144}  # objects per lot
SLOTS = 9  # the longest product (bills) has 9 steps
CORES, SUPPLIERS, BANKS, WAREHOUSES, GATEWAYS, SERVICERS = 16, 64, 8, 4, 8, 8
SECRET = b"tierchain bench consortium secret"  # the registry's blinding secret
REF_KEY = bytes(range(32))  # the originators' reference key (keyed fingerprints)
DAY_MS = 86_400_000
GOODS_QTY = 500  # per movement; a receipt is issued 1,000,000 (grams)
Build = Callable[[int], txcodec.Tx]  # nonce -> unsigned tx


@dataclasses.dataclass
class Party:
    name: str
    keys: KeyPair
    org: bytes

    @property
    def pk(self) -> bytes:
        return self.keys.public_key


@dataclasses.dataclass
class World:
    chain: Chain
    node: KeyPair
    cores: list[Party]
    sups: list[Party]
    banks: list[Party]
    warehouses: list[Party]
    gateways: list[list[KeyPair]]  # per warehouse: the keys its IoT gateways sign with
    servicers: list[Party]  # originator and servicer of their own assets
    payers: list[KeyPair]
    nonces: dict[bytes, int] = dataclasses.field(default_factory=dict)
    rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(7))

    @property
    def chain_id(self) -> int:
        return self.chain.config.chain_id

    @property
    def suite(self):
        return self.chain.suite

    def sign(self, keys: KeyPair, build: Build) -> bytes:
        n = self.nonces.get(keys.public_key, 0)
        self.nonces[keys.public_key] = n + 1
        return keys.sign_tx(build(n)).encode()


# --- the products' objects and their steps -----------------------------------------------------
# A step is (object, world) -> (signing keys, build(nonce)); builds run in stream order, so a
# later step may use what an earlier one computed (a voucher's or a bill's id).


@dataclasses.dataclass
class VoucherObj:
    core: Party
    t1: Party
    t2: Party
    bank: Party
    invoice: bytes
    blinded: bytes
    face: int
    vid: bytes = b""
    kids: list[bytes] = dataclasses.field(default_factory=list)


def _v_anchor(v: VoucherObj, w: World):
    p = v.t1
    return p.keys, lambda n: evidence.anchor(w.chain_id, p.pk, p.org, n, fc.DocType.INVOICE, v.invoice)


def _v_confirm(v: VoucherObj, w: World):
    p = v.core

    def build(n: int) -> txcodec.Tx:
        docs = [(fc.DocType.INVOICE, v.invoice)]
        tx, v.vid = voucher.confirm(
            w.chain_id, p.pk, p.org, n, v.t1.org, v.face, 1 << 50, docs, v.blinded, suite=w.suite
        )
        return tx

    return p.keys, build


def _v_split(v: VoucherObj, w: World):
    p, half = v.t1, v.face // 2

    def build(n: int) -> txcodec.Tx:
        tx, v.kids = voucher.split(
            w.chain_id, p.pk, p.org, n, v.vid, v.vid, [half, v.face - half], suite=w.suite
        )
        return tx

    return p.keys, build


def _v_offer(v: VoucherObj, w: World):
    p = v.t1
    return p.keys, lambda n: voucher.offer(w.chain_id, p.pk, p.org, n, v.vid, v.kids[1], v.t2.org)


def _v_accept(v: VoucherObj, w: World):
    p, kind = v.t2, fc.OfferKind.TRANSFER
    return p.keys, lambda n: voucher.accept(w.chain_id, p.pk, p.org, n, v.vid, v.kids[1], kind, v.blinded)


def _v_discount(v: VoucherObj, w: World):
    p, kind, price = v.t2, fc.OfferKind.DISCOUNT, (v.face - v.face // 2) * 98 // 100
    return p.keys, lambda n: voucher.offer(
        w.chain_id, p.pk, p.org, n, v.vid, v.kids[1], v.bank.org, kind, price
    )


def _v_bank_accept(v: VoucherObj, w: World):
    p, kind = v.bank, fc.OfferKind.DISCOUNT
    return p.keys, lambda n: voucher.accept(w.chain_id, p.pk, p.org, n, v.vid, v.kids[1], kind, v.blinded)


@dataclasses.dataclass
class BillObj:
    core: Party  # drawer and acceptor
    t1: Party  # payee
    t2: Party  # endorsee
    bank1: Party  # discounting bank
    bank2: Party  # rediscounting bank
    face: int
    maturity_day: int
    bid: bytes = b""


def _b_issue(b: BillObj, w: World):
    p = b.core

    def build(n: int) -> txcodec.Tx:
        tx, b.bid = bills.issue(
            w.chain_id, p.pk, p.org, n, bc.BillKind.COMMERCIAL, p.org, b.t1.org, b.face, b.maturity_day,
            suite=w.suite,
        )  # fmt: skip
        return tx

    return p.keys, build


def _b_step(seq: int, who: str, kind: int = 0, to: str = "", price_pct: int = 0):
    """Step ``seq`` of a bill (its event count then): the accept (seq 1), a sign, or an offer."""

    def step(b: BillObj, w: World):
        p: Party = getattr(b, who)
        if seq == 1:
            return p.keys, lambda n: bills.accept(w.chain_id, p.pk, p.org, n, b.bid, seq)
        if not kind:
            return p.keys, lambda n: bills.simple(bc.OP_SIGN, w.chain_id, p.pk, p.org, n, b.bid, seq)
        target, price = getattr(b, to).org, b.face * price_pct // 100
        return p.keys, lambda n: bills.offer(w.chain_id, p.pk, p.org, n, b.bid, seq, kind, target, price)

    return step


@dataclasses.dataclass
class ReceiptObj:
    warehouse: Party
    gateway: KeyPair
    holder: Party
    bank: Party
    feed: bytes
    stock: bytes
    rid: bytes = b""
    issued: int = 1_000_000


def _r_goods(first_seq: int):
    def step(r: ReceiptObj, w: World):
        q, gw = GOODS_QTY, r.gateway
        kinds = (rc.MoveKind.GOODS_IN, rc.MoveKind.GOODS_OUT) * 2
        moves = [rgoods.Move(r.rid, k, q, first_seq + i) for i, k in enumerate(kinds)]
        stocks = {r.rid: r.stock}
        return gw, lambda n: rgoods.goods(
            w.chain_id, gw.public_key, r.warehouse.org, n, r.feed, moves, stocks
        )

    return step


def _r_pledge(r: ReceiptObj, w: World):
    p, due = r.holder, int(time.time() * 1000) + 365 * DAY_MS
    return p.keys, lambda n: roffers.offer_pledge(w.chain_id, p.pk, p.org, n, r.rid, r.bank.org, 400_000, due)


def _r_accept(r: ReceiptObj, w: World):
    p = r.bank
    return p.keys, lambda n: roffers.accept(w.chain_id, p.pk, p.org, n, r.rid)


def _r_allow(r: ReceiptObj, w: World):
    p = r.bank
    return p.keys, lambda n: roffers.allow_out(w.chain_id, p.pk, p.org, n, r.rid, 2 * GOODS_QTY)


def _r_release(r: ReceiptObj, w: World):
    p = r.bank
    return p.keys, lambda n: roffers.release(w.chain_id, p.pk, p.org, n, r.rid)


@dataclasses.dataclass
class AbsObj:
    servicer: Party
    aid: bytes
    start_ms: int
    installment: int  # principal part
    interest: int
    principal: int


def _a_event(seq: int, kind: int, day: int):
    def step(a: AbsObj, w: World):
        p, value_ms = a.servicer, a.start_ms + day * DAY_MS
        if kind == ac.EventKind.OVERDUE:
            amounts = (a.installment + a.interest, 0, 10)  # arrears, days past due
        else:
            amounts = (a.installment, a.interest, 1 + (seq > 0))  # installment 1, then 2
        return p.keys, lambda n: abs_assets.cashflow(
            w.chain_id, p.pk, p.org, n, a.aid, seq, kind, value_ms, *amounts
        )

    return step


STEPS: dict[str, tuple] = {
    "voucher": (_v_anchor, _v_confirm, _v_split, _v_offer, _v_accept, _v_discount, _v_bank_accept),
    "bill": (
        _b_issue,
        _b_step(1, "core"),
        _b_step(2, "t1"),
        _b_step(3, "t1", bc.OfferKind.ENDORSE, "t2"),
        _b_step(4, "t2"),
        _b_step(5, "t2", bc.OfferKind.DISCOUNT, "bank1", 98),
        _b_step(6, "bank1"),
        _b_step(7, "bank1", bc.OfferKind.REDISCOUNT, "bank2", 99),
        _b_step(8, "bank2"),
    ),
    "receipt": (_r_goods(1), _r_pledge, _r_accept, _r_allow, _r_goods(5), _r_release),
    "abs": (
        _a_event(0, ac.EventKind.REPAYMENT, 30),
        _a_event(1, ac.EventKind.OVERDUE, 70),
        _a_event(2, ac.EventKind.REPAYMENT, 75),
    ),
}
LOT_OPS = sum(LOT[k] * len(STEPS[k]) for k in KINDS)
assert max(len(s) for s in STEPS.values()) == SLOTS


# --- set-up: organizations, gateway keys, receipts issued, assets registered ---------------------


def open_world(directory: Path, crypto: str, sync: str, payers: int, block_txs_max: int) -> World:
    suite = suite_for(crypto)
    seed = random.Random(19)
    node = suite.keys_from_seed(seed.randbytes(32))

    def parties(prefix: str, n: int) -> list[Party]:
        names = [f"{prefix}-{i}" for i in range(n)]
        return [Party(x, suite.keys_from_seed(seed.randbytes(32)), fc.org_id(x, suite=suite)) for x in names]

    cores, sups, banks = parties("core", CORES), parties("supplier", SUPPLIERS), parties("bank", BANKS)
    warehouses, servicers = parties("warehouse", WAREHOUSES), parties("servicer", SERVICERS)
    gateways = [[suite.keys_from_seed(seed.randbytes(32)) for _ in range(GATEWAYS)] for _ in warehouses]
    payer_keys = [suite.keys_from_seed(seed.randbytes(32)) for _ in range(payers)]
    cfg = ChainConfig(
        chain_id=79, crypto=crypto, apps=APPS, sync=sync, block_interval_ms=20, block_txs_max=block_txs_max,
        sender_pending_max=1 << 20, mempool_txs_max=max(1 << 20, 4 * block_txs_max),
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "committee"), 0),
                          *(GenesisAccount(k.public_key, (), 10**12) for k in payer_keys)),
    )  # fmt: skip
    chain = Chain(directory, cfg, node)
    try:
        return World(chain, node, cores, sups, banks, warehouses, gateways, servicers, payer_keys)
    except BaseException:
        chain.close()
        raise


def setup_world(w: World, lots: int, batch: int, inflight: int) -> tuple[dict, dict[str, list]]:
    """Admit every organization, add the gateway keys, issue the receipts and register the
    assets the ``lots`` need; returns timings and those objects per kind (receipts, assets)."""
    suite, cid = w.suite, w.chain_id
    t0 = time.perf_counter()
    # The abs roles are not the built-in apps': finance's admit_body / propose cannot build
    # them, so these few go through the abs client (one tx each).
    a = Abs(w.chain)
    for p in w.servicers:
        assert a.propose_admit(w.node, p.name, ("originator", "servicer"), p.pk).ok, p.name
    senders = [w.node.public_key] + [
        p.pk for g in (w.cores, w.sups, w.banks, w.warehouses, w.servicers) for p in g
    ]
    senders += [k.public_key for g in w.gateways for k in g] + [k.public_key for k in w.payers]
    w.nonces = dict(zip(senders, w.chain.nonces(senders), strict=True))
    txs: list[bytes] = []
    roles = {"core_enterprise": w.cores, "supplier": w.sups, "bank": w.banks, "warehouse": w.warehouses}
    for role, group in roles.items():
        for p in group:
            body = orgs.admit_body(p.name, (role,), p.pk)

            def admit(n: int, body=body) -> txcodec.Tx:
                return orgs.propose(cid, w.node.public_key, n, fc.Action.ADMIT_ORG, body, suite=suite)

            txs.append(w.sign(w.node, admit))
    for wh, keys in zip(w.warehouses, w.gateways, strict=True):
        for k in keys:
            txs.append(
                w.sign(wh.keys, lambda n, k=k, wh=wh: orgs.key_add(cid, wh.pk, wh.org, n, k.public_key))
            )
    objects: dict[str, list] = {"receipt": [], "abs": []}
    now = int(time.time() * 1000)
    for g in range(lots * LOT["receipt"]):
        wi = g % WAREHOUSES
        wh, gw = w.warehouses[wi], w.gateways[wi][(g // WAREHOUSES) % GATEWAYS]
        holder, bank = w.sups[g % SUPPLIERS], w.banks[(g // 3) % BANKS]
        item, unit, loc = b"CU-CATHODE", b"g", b"BAY-%07d" % g  # its own stock (item, unit, location)
        r = ReceiptObj(wh, gw, holder, bank, rc.feed_id(b"f" + g.to_bytes(7, "big")),
                       rc.stock_id(item, unit, loc, suite=suite))  # fmt: skip

        def build(n: int, r=r, labels=(item, unit, loc)) -> txcodec.Tx:
            tx, r.rid = rissue.issue(
                cid, r.gateway.public_key, r.warehouse.org, n, r.holder.org, r.issued, *labels, suite=suite
            )
            return tx

        txs.append(w.sign(gw, build))
        objects["receipt"].append(r)
    for g in range(lots * LOT["abs"]):
        s = w.servicers[g % SERVICERS]
        principal = w.rng.randrange(36_000_00, 360_000_00)
        start = now - 400 * DAY_MS - w.rng.randrange(30) * DAY_MS
        contract = ac.reference_fingerprint(REF_KEY, f"LN-{g:08d}", suite=suite)
        obligor = ac.reference_fingerprint(REF_KEY, f"ID-{g:08d}", suite=suite)
        aid = ac.asset_id(s.org, contract, suite=suite)

        def build(n: int, s=s, principal=principal, start=start, c=contract, o=obligor) -> txcodec.Tx:
            tx, _ = abs_assets.register(
                cid, s.pk, s.org, n, ac.AssetKind.LOAN, principal, 899, start, 36, 1, s.org, c, o, suite=suite
            )
            return tx

        txs.append(w.sign(s.keys, build))
        # 36 monthly installments at 8.99% a year: the principal part and a month's interest
        objects["abs"].append(AbsObj(s, aid, start, principal // 36, principal * 899 // 120_000, principal))
    sign_s = time.perf_counter() - t0
    res = drive(w.chain, txs, batch, inflight)
    failed = {k: v for k, v in res["codes"].items() if k != "OK"}
    if failed:
        raise SystemExit(f"setup failed: {failed}")
    return {
        "setup_txs": len(txs),
        "setup_build_sign_s": sign_s,
        "setup_chain_s": res["seconds"],
        "receipts_issued": len(objects["receipt"]),
        "assets_registered": len(objects["abs"]),
    }, objects


# --- the streams ------------------------------------------------------------------------------


@dataclasses.dataclass
class Stream:
    txs: list[bytes]
    kinds: list[str]  # per tx
    objects: dict[str, list]  # per kind, for the read-back


def mix_lot(w: World, lot: int, pre: dict[str, list]) -> Stream:
    """One lot: fresh vouchers and bills, the lot's receipts and assets, stage by stage."""
    suite, rng = w.suite, w.rng
    today = bill_days.local_day(int(time.time() * 1000), 480)
    objs: dict[str, list] = {k: [] for k in KINDS}
    for i in range(LOT["voucher"]):
        g = lot * LOT["voucher"] + i
        t1 = w.sups[g % SUPPLIERS]
        t2 = w.sups[(g + 1 + g // SUPPLIERS) % SUPPLIERS]
        t2 = w.sups[(g + 1) % SUPPLIERS] if t2 is t1 else t2
        fp = fc.document_fingerprint(b"bench mix invoice %d" % g, suite=suite)
        objs["voucher"].append(
            VoucherObj(w.cores[g % CORES], t1, t2, w.banks[g % BANKS], fp,
                       registry.blind_invoice(SECRET, fp, suite=suite), rng.randrange(10_000, 10_000_000))
        )  # fmt: skip
    for i in range(LOT["bill"]):
        g = lot * LOT["bill"] + i
        t1, t2 = w.sups[(7 * g + 3) % SUPPLIERS], w.sups[(7 * g + 4) % SUPPLIERS]
        b1, b2 = w.banks[g % BANKS], w.banks[(g + 1) % BANKS]
        face = rng.randrange(100_000_00, 10_000_000_00)
        objs["bill"].append(BillObj(w.cores[(g + 5) % CORES], t1, t2, b1, b2, face, today + 120))
    for k in ("receipt", "abs"):
        objs[k] = pre[k][lot * LOT[k] : (lot + 1) * LOT[k]]
    txs, kinds = [], []
    for slot in range(SLOTS):
        for k in KINDS:
            steps = STEPS[k]
            for s, step in enumerate(steps):
                if s * SLOTS // len(steps) == slot:
                    for obj in objs[k]:
                        keys, build = step(obj, w)
                        txs.append(w.sign(keys, build))
                        kinds.append(k)
    return Stream(txs, kinds, objs)


def mix_stream(w: World, lots: range, pre: dict[str, list]) -> Stream:
    out = Stream([], [], {k: [] for k in KINDS})
    for lot in lots:
        s = mix_lot(w, lot, pre)
        out.txs += s.txs
        out.kinds += s.kinds
        for k in KINDS:
            out.objects[k] += s.objects[k]
    return out


def transfer_stream(w: World, n: int) -> Stream:
    out, m = [], len(w.payers)
    for i in range(n):
        s = w.payers[i % m]
        to = w.payers[(i % m + 1 + w.rng.randrange(m - 1)) % m]
        amount = w.rng.randrange(1, 100)
        out.append(w.sign(s, lambda n, s=s, to=to, a=amount: accounts_app.transfer(
            w.chain_id, s.public_key, n, to.public_key, a)))  # fmt: skip
    return Stream(out, ["transfer"] * n, {})


# --- driving and checking -----------------------------------------------------------------------


def drive(chain: Chain, txs: list[bytes], batch: int, inflight: int) -> dict:
    """Submit ``txs`` in order (``batch`` per submit, ``inflight`` submits outstanding); committed
    txs per second from the first submit to the last receipt, and every tx's outcome: ``OK``, a
    receipt code's name, or ``admission:<code>``."""
    pending: list = []
    outcome: list[str] = []
    names = chain.apps.reject_name

    def settle(sub) -> None:
        rejected = dict(sub.rejections())
        for i, r in enumerate(sub.wait(300)):
            if r is None:
                code = rejected.get(i)
                outcome.append(f"admission:{code.name if code is not None else 'NO_RECEIPT'}")
            else:
                outcome.append("OK" if r.code == Reject.OK else names(r.code))

    h0 = chain.height
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(0, len(txs), batch):
        pending.append(chain.submit(txs[i : i + batch]))
        if len(pending) >= inflight:
            settle(pending.pop(0))
    for sub in pending:
        settle(sub)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    ok = outcome.count("OK")
    return {
        "txs": len(txs), "committed": ok, "seconds": seconds, "tps": ok / seconds,
        "cpu_util": cpu_s / seconds,
        "cpu_us_per_tx": 1e6 * cpu_s / max(1, ok), "blocks": chain.height - h0,
        "codes": dict(collections.Counter(outcome)), "outcome": outcome,
    }  # fmt: skip


def tally(per_kind: dict, stream: Stream, outcome: list[str]) -> None:
    for kind, out in zip(stream.kinds, outcome, strict=True):
        row = per_kind.setdefault(kind, {"txs": 0, "committed": 0, "failed": {}})
        row["txs"] += 1
        if out == "OK":
            row["committed"] += 1
        else:
            row["failed"][out] = row["failed"].get(out, 0) + 1


def check_objects(w: World, objs: dict[str, list]) -> dict:
    """Every object of the timed and warm-up rounds read back in its expected end state."""
    get, bad = w.chain.state_get, collections.Counter()
    for v in objs["voucher"]:
        raw = get(fc.piece_key(v.kids[1])) if v.kids else None
        piece = fc.Piece.decode(raw) if raw else None
        bad["voucher"] += piece is None or piece.holder != v.bank.org or piece.state != fc.PieceState.FINANCED
    for b in objs["bill"]:
        raw = get(bc.bill_key(b.bid))
        bill = bc.Bill.decode(raw) if raw else None
        bad["bill"] += bill is None or (bill.holder, bill.state, bill.events, len(bill.chain)) != (
            b.bank2.org,
            bc.BillState.ACTIVE,
            9,
            4,
        )
    for r in objs["receipt"]:
        raw = get(rc.receipt_key(r.rid))
        rec = rc.Receipt.decode(raw) if raw else None
        bad["receipt"] += rec is None or (rec.state, rec.balance, rec.moves, rec.anomalies, rec.holder) != (
            rc.State.ACTIVE,
            r.issued,
            8,
            0,
            r.holder.org,
        )
    for a in objs["abs"]:
        raw = get(ac.asset_key(a.aid))
        asset = ac.Asset.decode(raw) if raw else None
        bad["abs"] += asset is None or (
            asset.status,
            asset.periods_paid,
            asset.events,
            asset.outstanding,
        ) != (ac.AssetStatus.PERFORMING, 2, 3, a.principal - 2 * a.installment)
    return {"checked": {k: len(objs[k]) for k in KINDS}, "wrong": {k: bad[k] for k in KINDS}}


def phase(res: dict) -> dict:
    return {k: v for k, v in res.items() if k != "outcome"}


# --- the run --------------------------------------------------------------------------------------


def run(crypto, sync, ops, repeat, payers, batch, inflight, block_txs_max) -> dict:
    lots_per_round = -(-ops // LOT_OPS)
    lots = 1 + repeat * lots_per_round  # the warm-up round is one lot
    directory = Path(tempfile.mkdtemp(prefix="tierchain-finance-mix-"))
    try:
        w = open_world(directory, crypto, sync, payers, block_txs_max)
        try:
            setup, pre = setup_world(w, lots, batch, inflight)
            t0 = time.perf_counter()
            rounds_in = [(mix_stream(w, range(1), pre), None)]
            for r in range(repeat):
                mix = mix_stream(w, range(1 + r * lots_per_round, 1 + (r + 1) * lots_per_round), pre)
                rounds_in.append((mix, None))
            rounds_in = [(m, transfer_stream(w, len(m.txs))) for m, _ in rounds_in]
            presign_s = time.perf_counter() - t0
            n_signed = sum(len(m.txs) + len(t.txs) for m, t in rounds_in)
            per_kind: dict = {}
            rounds = []
            for r, (mix, tr) in enumerate(rounds_in):
                order = ("mix", "transfers") if r % 2 == 0 else ("transfers", "mix")
                res = {}
                for name in order:
                    stream = mix if name == "mix" else tr
                    res[name] = drive(w.chain, stream.txs, batch, inflight)
                    tally(per_kind, stream, res[name]["outcome"])
                if r == 0:
                    continue  # warm-up: counted in per_kind, not in the figures
                rounds.append({
                    "order": list(order), "mix": phase(res["mix"]), "transfers": phase(res["transfers"]),
                    "ratio": res["mix"]["tps"] / res["transfers"]["tps"],
                    "cpu_ratio": res["transfers"]["cpu_us_per_tx"] / res["mix"]["cpu_us_per_tx"],
                })  # fmt: skip
            objs = {k: [o for m, _ in rounds_in for o in m.objects[k]] for k in KINDS}
            verify = check_objects(w, objs)
            return {
                "setup": {
                    **setup,
                    "presign_s": presign_s,
                    "presigned_txs": n_signed,
                    "presign_us_per_tx": 1e6 * presign_s / n_signed,
                    "height_after": w.chain.height,
                },
                "lots_per_round": lots_per_round,
                "summary": {
                    "mix_tps": spread([x["mix"]["tps"] for x in rounds]),
                    "transfers_tps": spread([x["transfers"]["tps"] for x in rounds]),
                    "ratio": spread([x["ratio"] for x in rounds]),
                    "cpu_ratio": spread([x["cpu_ratio"] for x in rounds]),
                    "mix_cpu_us_per_tx": spread([x["mix"]["cpu_us_per_tx"] for x in rounds]),
                    "transfers_cpu_us_per_tx": spread([x["transfers"]["cpu_us_per_tx"] for x in rounds]),
                    "mix_cpu_util": spread([x["mix"]["cpu_util"] for x in rounds]),
                    "transfers_cpu_util": spread([x["transfers"]["cpu_util"] for x in rounds]),
                    "mix_txs_per_block": spread(
                        [x["mix"]["txs"] / max(1, x["mix"]["blocks"]) for x in rounds]
                    ),
                    "transfers_txs_per_block": spread(
                        [x["transfers"]["txs"] / max(1, x["transfers"]["blocks"]) for x in rounds]
                    ),
                },
                "per_kind": per_kind,
                "verify": verify,
                "rounds": rounds,
            }
        finally:
            w.chain.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@click.command()
@click.option("--crypto", type=click.Choice(sorted(SUITES)), default="ed25519-blake3", show_default=True)
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--ops", type=click.IntRange(1), default=20000, show_default=True,
              help=f"Mix txs per round (whole lots of {LOT_OPS}); as many transfers.")  # fmt: skip
@click.option("--repeat", type=click.IntRange(1, 50), default=5, show_default=True, help="Timed rounds.")
@click.option("--payers", type=click.IntRange(2), default=1024, show_default=True, help="Transfer senders.")
@click.option("--batch", type=click.IntRange(1), default=512, show_default=True, help="Txs per submit.")
@click.option("--inflight", type=click.IntRange(1), default=4, show_default=True, help="Submits outstanding.")
@click.option("--block-txs-max", type=click.IntRange(1), default=4096, show_default=True)
@click.option("--tiny", is_flag=True, help="Tiny parameters (CI): the script runs; figures mean little.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(crypto, sync, ops, repeat, payers, batch, inflight, block_txs_max, tiny, out) -> None:
    gc_tuning.tune()  # as a node's process runs (engine/gc_tuning.py)
    if tiny:
        ops, repeat, payers, batch = 1, 2, 64, 256
    out = out or OUT / ("finance_mix-tiny.json" if tiny else "finance_mix.json")
    t0 = time.perf_counter()
    report: dict = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "crypto": crypto,
        "sync": sync,
        "durable": sync == "full",
        "params": {"ops": ops, "repeat": repeat, "payers": payers, "batch": batch, "inflight": inflight,
                   "block_txs_max": block_txs_max},
        "mix": {
            "objects_per_lot": LOT,
            "ops_per_object": {k: len(STEPS[k]) for k in KINDS},
            "ops_per_lot": LOT_OPS,
            "share": {k: LOT[k] * len(STEPS[k]) / LOT_OPS for k in KINDS},
            "parties": {"cores": CORES, "suppliers": SUPPLIERS, "banks": BANKS, "warehouses": WAREHOUSES,
                        "gateway_keys_per_warehouse": GATEWAYS, "originator_servicers": SERVICERS},
        },
    }  # fmt: skip
    report.update(run(crypto, sync, ops, repeat, payers, batch, inflight, block_txs_max))
    report["wall_s"] = time.perf_counter() - t0
    s = report["summary"]
    note = "" if sync == "full" else " [sync=none: NOT DURABLE]"
    click.echo(
        f"{crypto}, sync={sync}{note}: {repeat} rounds x {report['lots_per_round'] * LOT_OPS:,} mix txs "
        f"({report['lots_per_round']} lots) and as many transfers, alternating; median (min..max)"
    )
    click.echo(f"  finance mix  {fmt(s['mix_tps'])} TPS")
    click.echo(f"  transfers    {fmt(s['transfers_tps'])} TPS")
    click.echo(f"  ratio mix / transfers {fmt(s['ratio'], '.2f')}")
    click.echo(
        f"  process CPU per committed tx: mix {fmt(s['mix_cpu_us_per_tx'])} us, transfers "
        f"{fmt(s['transfers_cpu_us_per_tx'])} us; transfers / mix {fmt(s['cpu_ratio'], '.2f')}"
    )
    failures = 0
    for kind, row in report["per_kind"].items():
        failures += row["txs"] - row["committed"]
        failed = ", ".join(f"{k} {v}" for k, v in sorted(row["failed"].items())) or "none failed"
        click.echo(f"  {kind:9} {row['committed']:,}/{row['txs']:,} committed; {failed}")
    wrong = sum(report["verify"]["wrong"].values())
    click.echo(f"  read back: {sum(report['verify']['checked'].values()):,} objects, {wrong} not as expected")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    click.echo(f"wrote {out} ({report['wall_s']:.0f} s)")
    if failures or wrong:
        raise SystemExit(f"{failures} transactions failed, {wrong} objects wrong: the workload is not valid")


if __name__ == "__main__":
    main()
