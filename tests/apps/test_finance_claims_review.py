"""Review of "documents across shards" (9d4b3c4): fin.claim (25), fin.carry (26), the claim
courier, the confirmation through carried claims and the placed financing records (fm/).

On one chain (``MemLedger``: the real executor over a dict), with a genesis account holding
the ``coordinator`` role so that fin.carry can be sent, and the courier driven over a
one-shard stand-in for a cluster (``OneShard``). Fuzzed claims, carries and confirmations
must get named refusal codes and change nothing when refused. The last five pin defects
the review found (each failed before its fix): a citation or a zero-prefixed asset leaving
an invoice free for a second voucher, a third party's citation stranding an invoice, one
financing ref making several records, and the courier stopped by a record it cannot parse.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from finance_world import KEYS, ORG, SECRET, MemLedger, World, admit_all, config, kp, members
from tierchain.apps.accounts import account_key
from tierchain.apps.finance import DocType, claims, registry, voucher
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.courier import ClaimCourier
from tierchain.config import GenesisAccount
from tierchain.engine import apps
from tierchain.errors import Reject, WireError
from tierchain.wire import tx as txcodec

MATURITY_MS = 2_000_000  # MemLedger's clock starts at 1_000_000
COORD = kp("claims review coordinator")
APP_SET = apps.default_set()


@pytest.fixture
def led() -> MemLedger:
    m = members()
    return MemLedger(
        config(
            genesis_accounts=(
                GenesisAccount(m.node.public_key, ("registrar", "committee"), 0),
                GenesisAccount(m.committee2.public_key, ("committee",), 0),
                GenesisAccount(COORD.public_key, ("coordinator",), 0),
            )
        )
    )


@pytest.fixture
def w(led) -> World:
    return admit_all(Finance(led, SECRET))


def records(led: MemLedger) -> dict[bytes, bytes]:
    """Every state entry but the system namespace (a refused tx moves its sender's nonce)."""
    return {k: v for k, v in led.state.items() if not k.startswith(b"\x00")}


def named(code: int) -> bool:
    """A refusal the app set names, and not a handler's unexpected exception."""
    return code != Reject.HANDLER_FAILED and not APP_SET.reject_name(code).startswith("REJECT_")


def run(led: MemLedger, keys, tx: txcodec.Tx) -> int | None:
    """Sign and execute ``tx`` as one block: its receipt code, or None if the wire refuses it.
    A refusal must be named and change no record."""
    tx = dataclasses.replace(tx, nonce=led.nonce(keys.public_key))
    try:
        raw = keys.sign_tx(tx).encode()
    except WireError:
        return None
    before = records(led)
    code = int(led.block([raw])[0].code)
    assert named(code), (APP_SET.reject_name(code), tx.op, tx.payload.hex())
    if code:
        assert records(led) == before, APP_SET.reject_name(code)
    return code


def carry(led: MemLedger, pending: list[bytes]) -> int:
    """The coordinator carries pending claims (``fg/`` keys) and deletes them, in one tx."""
    puts = [(claims.carried_key(k), led.state[k]) for k in pending]
    return run(led, COORD, claims.carry(led.chain_id, COORD.public_key, 0, puts, pending))


class _Submitted:
    def __init__(self, receipts: list) -> None:
        self.receipts = receipts

    def rejections(self) -> list:
        return []

    def wait(self, timeout: float | None = None) -> list:
        return self.receipts


class OneShard:
    """A one-shard "cluster" over a MemLedger, as much of ``Cluster`` as the courier uses."""

    n_shards = 1

    def __init__(self, led: MemLedger) -> None:
        self.led, self.receipts = led, []
        self.placement = APP_SET.placement

    def chain_id(self, shard: int) -> int:
        return self.led.chain_id

    def call(self, shard: int, method: str, *args):
        state = self.led.state
        if method == "nonce":
            return self.led.nonce(args[0])
        if method == "state_get_many":
            return [state.get(k) for k in args[0]]
        if method == "state_scan":
            prefix, limit, after = args
            keys = sorted(k for k in state if k.startswith(prefix) and k > after)[:limit]
            return [(k, state[k]) for k in keys]
        raise AssertionError(method)

    def submit(self, txs: list[bytes]) -> _Submitted:
        self.receipts = self.led.block(txs)
        return _Submitted(self.receipts)


def anchored(w: World, label: bytes, doc_type: int = DocType.INVOICE, by: str = "Tier1") -> bytes:
    return w.p[by].anchor(doc_type, label).check().id


def confirm_tx(
    led: MemLedger, docs, blinded: bytes, claimed=(), face: int = 1_000
) -> tuple[txcodec.Tx, bytes]:
    core = KEYS["CoreCo"]
    return voucher.confirm(
        led.chain_id, core.public_key, ORG["CoreCo"], led.nonce(core.public_key), ORG["Tier1"], face,
        MATURITY_MS, docs, blinded,
        claimed=claimed,
    )  # fmt: skip


def vouchers_citing(led: MemLedger, fp: bytes) -> list[bytes]:
    """The vouchers whose documents list invoice ``fp``."""
    out = []
    for k, v in led.state.items():
        if k.startswith(b"fv/") and len(k) == 3 + c.id_bytes:
            if (DocType.INVOICE, fp) in c.Voucher.decode(v).docs:
                out.append(k[3:])
    return out


# --- what was checked and holds ---------------------------------------------------------------


def test_a_claimed_invoice_backs_one_voucher_on_one_chain(led, w):
    """Claim, carry, confirm through the carried claim; then no second claim, no second
    confirmation through the claim or the anchor, and the courier finds nothing to do."""
    core = w.p["CoreCo"]
    inv = anchored(w, b"review invoice one")
    con = anchored(w, b"review contract one", DocType.CONTRACT, "CoreCo")
    docs = [(DocType.INVOICE, inv), (DocType.CONTRACT, con)]
    asset = core.voucher_asset(docs)
    assert core.claim(ORG["Tier1"], docs, asset=asset).ok
    assert w.fin.document(DocType.INVOICE, inv).voucher == asset[:16]
    assert core.claim(ORG["Tier1"], docs[:1], asset=asset).code == FinanceReject.INVOICE_ALREADY_USED
    assert core.confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs).code == FinanceReject.INVOICE_ALREADY_USED
    assert (
        core.confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs, claimed=docs).code == FinanceReject.NO_SUCH_DOC
    )

    courier = ClaimCourier(OneShard(led), COORD)
    report = courier.step()
    assert report.pending == 2 and report.carried == {0: 2} and report.cleared == {0: 2} and not report.failed
    assert courier.step().idle
    issued = core.confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs, claimed=docs)
    assert issued.ok, issued.code
    assert vouchers_citing(led, inv) == [issued.id]
    for attempt in (
        lambda: core.confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs, claimed=docs),
        lambda: core.confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs),
        lambda: core.confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs, claimed=docs[:1]),
    ):
        before = records(led)
        assert attempt().code == FinanceReject.INVOICE_ALREADY_USED
        assert records(led) == before
    assert vouchers_citing(led, inv) == [issued.id]


def test_carrying_twice_and_clearing_what_is_gone_are_harmless(led, w):
    core = w.p["CoreCo"]
    inv = anchored(w, b"review invoice twice")
    docs = [(DocType.INVOICE, inv)]
    assert core.claim(ORG["Tier1"], docs, asset=core.voucher_asset(docs)).ok
    (pending,) = [k for k in led.state if k.startswith(b"fg/")]
    value = led.state[pending]
    assert carry(led, [pending]) == Reject.OK
    fe = claims.carried_key(pending)
    assert led.state[fe] == value and pending not in led.state
    # the same carry again (the pending record is gone): the carried claim stays as it was
    again = claims.carry(led.chain_id, COORD.public_key, 0, [(fe, value)], [pending])
    assert run(led, COORD, again) == Reject.OK and led.state[fe] == value
    # another value for the same (lineage, document): dropped, with its event
    other = dataclasses.replace(c.Claim.decode(value), height=99).encode()
    tx = claims.carry(led.chain_id, COORD.public_key, 0, [(fe, other)], [])
    receipt = led.block([COORD.sign_tx(dataclasses.replace(tx, nonce=led.nonce(COORD.public_key))).encode()])[
        0
    ]
    assert receipt.code == Reject.OK and led.state[fe] == value
    assert [e.topic for e in receipt.events] == [b"fin.claim.carried", b"fin.claim.dropped"]


def test_a_financing_record_is_released_by_the_key_it_was_made_with_only(led, w):
    blinded = w.fin.blind("order", b"review po")
    assert w.p["CoreCo"].reg_asset(blinded, 100_000).ok
    bank = KEYS["BankA"]

    def fin(shard, amount=10_000, ref=b"loan"):
        return registry.reg_finance(
            led.chain_id, bank.public_key, ORG["BankA"], 0, blinded, amount, ref, shard=shard
        )

    def rel(shard, ref=b"loan"):
        return registry.reg_release(led.chain_id, bank.public_key, ORG["BankA"], 0, blinded, ref, shard=shard)

    # a v1 record (fl/) as before: once a ref, released once
    assert run(led, bank, fin(None)) == Reject.OK
    assert run(led, bank, fin(None)) == Reject.BAD_PAYLOAD
    assert run(led, bank, rel(1)) in (FinanceReject.NO_SUCH_FINANCING, Reject.BAD_PAYLOAD)  # not by fm/
    # two placed keys for one record in one tx
    two = fin(1)
    two = dataclasses.replace(two, writes=tuple(sorted({*two.writes, *fin(3).writes})))
    assert run(led, bank, two) == Reject.BAD_PAYLOAD
    assert run(led, bank, rel(None)) == Reject.OK
    assert run(led, bank, rel(None)) == FinanceReject.NO_SUCH_FINANCING
    assert c.RegistryEntry.decode(led.state[c.registry_key(blinded)]).financed == 0


# --- fuzz: every refusal named, nothing changed by one ---------------------------------------------


def _keys(rng: random.Random, reads: set[bytes], writes: set[bytes], pool: list[bytes]) -> tuple:
    """Declared keys, mutated now and then: one dropped, a write made a read, a stray key."""
    reads, writes = set(reads), set(writes)
    roll = rng.random() * 2  # half the time unchanged
    if roll < 0.15 and writes:
        writes.discard(rng.choice(sorted(writes)))
    elif roll < 0.3 and writes:
        k = rng.choice(sorted(writes))
        writes.discard(k)
        reads.add(k)
    elif roll < 0.45:
        (writes if rng.random() < 0.5 else reads).add(rng.choice(pool))
    elif roll < 0.5 and reads:
        reads.discard(rng.choice(sorted(reads)))
    reads -= writes
    return tuple(sorted(reads)), tuple(sorted(writes))


def _payload(rng: random.Random, payload: bytes) -> bytes:
    """The payload, mutated now and then: truncated, extended, one byte changed, or noise."""
    roll = rng.random()
    if roll < 0.75:
        return payload
    if roll < 0.82:
        return payload[: rng.randrange(len(payload) + 1)]
    if roll < 0.88:
        return payload + rng.randbytes(rng.choice((1, 33, 216, 257)))
    if roll < 0.95 and payload:
        i = rng.randrange(len(payload))
        return payload[:i] + bytes((rng.randrange(256),)) + payload[i + 1 :]
    return rng.randbytes(rng.randrange(80))


def test_fuzzed_claims_carries_and_confirmations_get_named_codes(led, w):
    rng = random.Random(9_4_3_4)
    inv = [anchored(w, b"fuzz invoice %d" % i) for i in range(3)]
    inv.append(anchored(w, b"fuzz invoice core", by="CoreCo"))
    inv.append(anchored(w, b"fuzz invoice tier2", by="Tier2"))
    contract = anchored(w, b"fuzz contract", DocType.CONTRACT, "CoreCo")
    receipt = anchored(w, b"fuzz receipt", DocType.WAREHOUSE_RECEIPT, "Depot")
    blind = w.fin.blind_invoice
    doc_pool = [(DocType.INVOICE, fp) for fp in inv] + [
        (DocType.CONTRACT, contract),
        (DocType.WAREHOUSE_RECEIPT, receipt),
        (DocType.INVOICE, bytes(32)),  # never anchored
        (DocType.CONTRACT, inv[0]),  # an invoice's fingerprint as another type
        (0, inv[1]),
        (255, inv[2]),
    ]
    senders = [KEYS["CoreCo"], KEYS["Tier1"], KEYS["Tier2"], KEYS["BankA"], COORD, members().node]
    orgs_ = [ORG["Tier1"], ORG["CoreCo"], ORG["Tier2"], bytes(16), rng.randbytes(16)]

    def assets(docs):
        first = next((fp for t, fp in docs if t == DocType.INVOICE), rng.choice(inv))
        return rng.choice([blind(first), blind(first), c.ZERO_BLINDED, rng.randbytes(32)])

    def stray() -> list[bytes]:
        t, fp = rng.choice(doc_pool)
        tag = rng.choice([blind(rng.choice(inv))[:8], bytes(8), rng.randbytes(8)])
        return [
            c.doc_key(t, fp), c.pending_claim_key(t, fp, tag), c.claim_key(tag, t, fp),
            c.placed_financing_key(rng.randrange(4), rng.randbytes(32)), c.financing_key(rng.randbytes(32)),
            b"fe/" + rng.randbytes(rng.randrange(1, 50)), b"fg/" + rng.randbytes(rng.randrange(1, 50)),
            account_key(COORD.public_key), b"zz" + rng.randbytes(5),
        ]  # fmt: skip

    codes: dict[str, int] = {}
    for _ in range(400):
        kind = rng.choice(["claim", "claim", "carry", "carry", "confirm"])
        sender = KEYS["CoreCo"] if rng.random() < 0.5 else rng.choice(senders)
        docs = rng.sample(doc_pool, rng.randint(1, 4))
        if rng.random() < 0.05:
            docs = docs + docs[:1]  # a document listed twice
        if kind == "claim":
            blinded = assets(docs) if rng.random() < 0.6 else c.ZERO_BLINDED
            tag = blinded[:8] if blinded != c.ZERO_BLINDED and rng.random() < 0.8 else rng.randbytes(8)
            org = next((ORG[n] for n, k in KEYS.items() if k == sender), bytes(16))
            if rng.random() < 0.1:
                org = rng.choice([*ORG.values(), bytes(16)])
            tx = claims.claim(led.chain_id, sender.public_key, org, 0, tag, rng.choice(orgs_), docs, blinded)
        elif kind == "carry":
            pending = [k for k in led.state if k.startswith(b"fg/")]
            puts, dels = [], []
            for _ in range(rng.choice([0, 1, 1, 2, 3, 14, 15])):
                if pending and rng.random() < 0.5:
                    k = rng.choice(pending)
                    puts.append((claims.carried_key(k), led.state[k]))
                else:
                    t, fp = rng.choice(doc_pool)
                    value = rng.randbytes(claims.CLAIM_BYTES if rng.random() < 0.9 else rng.randrange(300))
                    puts.append((c.claim_key(rng.randbytes(8), t, fp), value))
            for _ in range(rng.choice([0, 0, 1, 2])):
                dels.append(
                    rng.choice(pending) if pending and rng.random() < 0.7 else b"fg/" + rng.randbytes(41)
                )
            payload = bytes((len(puts) % 256, len(dels)))
            if rng.random() < 0.1:
                payload = bytes((rng.randrange(256), rng.randrange(256)))
            payload += b"".join(k[3:] + v for k, v in puts) + b"".join(k[3:] for k in dels)
            writes = {k for k, _ in puts} | set(dels)
            sender = COORD if rng.random() < 0.8 else sender
            tx = txcodec.unsigned(
                led.chain_id,
                c.OP_CARRY,
                sender.public_key,
                0,
                {account_key(sender.public_key)},
                writes,
                payload,
            )
        else:
            sender = KEYS["CoreCo"]
            claimed = [d for d in docs if rng.random() < 0.6]
            tx, _ = confirm_tx(led, docs, assets(docs), claimed)
            tx = dataclasses.replace(tx, sender=sender.public_key)
        reads, writes = _keys(rng, set(tx.reads), set(tx.writes), stray())
        tx = dataclasses.replace(tx, reads=reads, writes=writes, payload=_payload(rng, tx.payload))
        code = run(led, sender, tx)
        if code is not None:
            name = APP_SET.reject_name(code)
            codes[name] = codes.get(name, 0) + 1
    assert codes.get("OK", 0) >= 20 and len(codes) >= 8, codes  # the fuzz reaches past the first checks

    # whatever the fuzz left pending, the courier carries or clears it without raising
    courier = ClaimCourier(OneShard(led), COORD)
    for _ in range(3):
        courier.step()
    assert courier.step().idle


# --- defects found in the review (each asserts what should hold) -------------------------------


def test_a_cited_invoice_does_not_back_a_voucher_with_a_zero_asset(led, w):
    inv = anchored(w, b"zero asset invoice")
    docs = [(DocType.INVOICE, inv)]
    assert w.p["CoreCo"].claim(ORG["Tier1"], docs, tag=bytes(8)).ok  # a citation, nothing bound
    pending = [k for k in led.state if k.startswith(b"fg/")]
    assert carry(led, pending) == Reject.OK
    first = run(led, KEYS["CoreCo"], confirm_tx(led, docs, c.ZERO_BLINDED, claimed=docs)[0])
    second = w.p["CoreCo"].confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs).code  # by the anchor
    assert len(vouchers_citing(led, inv)) <= 1, (APP_SET.reject_name(first), second)


def test_an_asset_with_a_zero_prefix_does_not_leave_its_invoice_free(led, w):
    inv = anchored(w, b"zero prefix invoice")
    docs = [(DocType.INVOICE, inv)]
    asset = bytes(16) + b"\x01" * 16
    bound = w.p["CoreCo"].claim(ORG["Tier1"], docs, asset=asset)
    if bound.ok:
        pending = [k for k in led.state if k.startswith(b"fg/")]
        assert carry(led, pending) == Reject.OK
        run(led, KEYS["CoreCo"], confirm_tx(led, docs, asset, claimed=docs)[0])
        w.p["CoreCo"].confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs)  # by the anchor
    assert len(vouchers_citing(led, inv)) <= 1


def test_a_third_partys_citation_does_not_strand_an_invoice(led, w):
    inv = anchored(w, b"stranded invoice")
    docs = [(DocType.INVOICE, inv)]
    core = w.p["CoreCo"]
    asset = core.voucher_asset(docs)  # any member holding the consortium secret computes it
    courier = ClaimCourier(OneShard(led), COORD)
    assert w.p["Tier2"].claim(ORG["Tier1"], docs, tag=asset[:8]).ok  # Tier2: no party to it
    assert courier.until_idle(timeout=5).idle
    assert core.claim(ORG["Tier1"], docs, asset=asset).ok  # binds the anchor to the asset
    assert courier.until_idle(timeout=5).idle  # the binding claim is cleared, never carried
    assert w.fin.document(DocType.INVOICE, inv).voucher == asset[:16]
    issued = core.confirm(ORG["Tier1"], 1_000, MATURITY_MS, docs, claimed=docs)
    assert issued.ok, APP_SET.reject_name(issued.code)  # CLAIM_MISMATCH: the invoice is lost


def test_one_financing_ref_makes_one_record(led, w):
    blinded = w.fin.blind("order", b"one ref po")
    assert w.p["CoreCo"].reg_asset(blinded, 100_000).ok
    bank = KEYS["BankA"]
    made = 0
    for shard in (None, 0, 2):
        tx = registry.reg_finance(
            led.chain_id, bank.public_key, ORG["BankA"], 0, blinded, 10_000, b"loan 1", shard=shard
        )
        made += run(led, bank, tx) == Reject.OK
    assert made == 1
    assert c.RegistryEntry.decode(led.state[c.registry_key(blinded)]).financed == 10_000


def test_the_courier_carries_past_a_pending_record_it_cannot_parse(led, w):
    """Only fin.claim writes fg/ keys among the built-in ops; an embedder's op may write any
    bytes under a key it declares (docs/architecture.md), so the courier should not trust them."""
    core = w.p["CoreCo"]
    inv = anchored(w, b"courier robustness invoice")
    docs = [(DocType.INVOICE, inv)]
    assert core.claim(ORG["Tier1"], docs, asset=core.voucher_asset(docs)).ok
    led.state[b"fg/" + b"\xff" * 8] = b"not a claim"  # sorts after every real pending claim
    report = ClaimCourier(OneShard(led), COORD).step()
    assert report.carried == {0: 1} and report.cleared == {0: 1}


def test_receipt_codes_of_the_new_ops_are_named():
    for code in (FinanceReject.CLAIM_MISMATCH, FinanceReject.NO_SUCH_DOC, Reject.UNAUTHORIZED):
        assert named(int(code))
    assert APP_SET.may_refuse(c.OP_CLAIM, FinanceReject.CLAIM_MISMATCH)
    assert APP_SET.may_refuse(c.OP_CARRY, Reject.BAD_PAYLOAD)
    assert np.int64(claims.carry_entries_max) * (41 + claims.CLAIM_BYTES) + 2 <= 4096
