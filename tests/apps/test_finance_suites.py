"""Supply-chain finance in each crypto suite (issue 19): the same consortium (the same seeds)
on an ``ed25519-blake3`` and on an ``sm2-sm3`` chain.

A voucher's life on the real engine (org admission, confirm, split, transfer/accept,
discount, pledge, settlement) with its receipts, lineage and a state proof of the voucher
record checked by the light client in the chain's suite; refusals by code (a duplicate
financing, a non-holder's step, a stranger, a key that is no key of the suite); the suites
kept apart (a party's key of the other suite, another suite's signature); a confidential
voucher on an SM2 chain, its opening sealed by SM2 encryption (the whole confidential
lifecycle in each suite: test_confidential_suites.py); and the pre-signed lifecycle
workload (bench, loadgen's voucher mix) in the national suite.
"""

from __future__ import annotations

import time

import pytest

from finance_world import (
    CHAIN_ID,
    ORGS,
    SECRET,
    MemLedger,
    World,
    admit_all,
    config,
    issue_voucher,
    kp,
    live_total,
    members,
)
from tierchain import proofs
from tierchain.apps.finance import DocType, PieceState, VoucherStatus
from tierchain.apps.finance import camount as ca
from tierchain.apps.finance import codes as c
from tierchain.apps.finance import voucher as v
from tierchain.apps.finance.client import Finance, SuiteMismatch
from tierchain.apps.finance.codes import FinanceReject
from tierchain.crypto import SM2_SM3, SUITES, CryptoSuite, Sm2KeyPair, sm, suite_for
from tierchain.crypto import confidential as conf
from tierchain.engine.chain import Chain
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

SM2 = SM2_SM3.name


def now_ms() -> int:
    return int(time.time() * 1000)


def other_suite(suite: CryptoSuite) -> CryptoSuite:
    return next(s for s in SUITES.values() if s is not suite)


@pytest.fixture(params=sorted(SUITES))
def suite(request) -> CryptoSuite:
    return suite_for(request.param)


@pytest.fixture
def chain(tmp_path, suite):
    with Chain(tmp_path / "chain", config(crypto=suite.name), members(suite.name).node) as ch:
        yield ch


@pytest.fixture
def world(chain) -> World:
    return admit_all(Finance(chain, SECRET))


@pytest.fixture
def sm2_chain(tmp_path):
    with Chain(tmp_path / "chain", config(crypto=SM2), members(SM2).node) as ch:
        yield ch


@pytest.fixture
def sm2_world(sm2_chain) -> World:
    return admit_all(Finance(sm2_chain, SECRET))


def committed(chain: Chain, result) -> bytes:
    """The committed transaction behind ``result``, found by the id the client reported."""
    found = chain.tx(result.tx_id)
    assert found is not None, "the client's tx id is not the chain's"
    _height, _pos, raw, receipt = found
    assert receipt.tx_id == result.tx_id and receipt.code == result.code
    return raw


def test_a_voucher_lifecycle_with_receipts_lineage_and_proofs(chain, world, suite):
    w, fin = world, world.fin
    name, other = suite.name, other_suite(suite)
    assert fin.suite is suite
    # Org admission: every organization's key is the suite's key of its seed, and it is its org's.
    m = members(name)
    assert all(type(k) is type(suite.keys_from_seed(bytes(32))) for k in m.keys.values())
    assert m.keys["Tier1"].public_key != members(other.name).keys["Tier1"].public_key
    for org_name in ORGS:
        assert fin.org_of(m.keys[org_name].public_key) == w.org(org_name) == c.org_id(org_name, suite=suite)

    maturity = now_ms() + 1500
    vid, invoice = issue_voucher(w, 1_000_000, maturity)
    t1, t2, bank_a, bank_b = w.p["Tier1"], w.p["Tier2"], w.p["BankA"], w.p["BankB"]
    split = t1.split(vid, [600_000, 400_000])
    keep, down = split.check().ids
    steps = [
        split,
        t1.transfer(down, w.org("Tier2")),
        t2.accept(down),
        t2.discount(down, w.org("BankA"), 390_000),
        bank_a.accept(down),
        t1.pledge(keep, w.org("BankB"), 500_000, now_ms() + 60_000),
        bank_b.accept(keep),
    ]
    assert [r.code for r in steps] == [Reject.OK] * len(steps)
    # Receipts: the id the client reports is the suite's id of the committed tx, whose
    # signature is the sender's in this suite and worth nothing in the other.
    for r in steps:
        tx = txcodec.decode(committed(w.fin.ledger.chain, r))
        assert r.tx_id == tx.tx_id(suite) != tx.tx_id(other)
        assert suite.verify(tx.sender, tx.tx_id(suite), tx.signature)
        assert not other.verify(tx.sender, tx.tx_id(other), tx.signature)
    assert fin.piece(down).state == PieceState.FINANCED and fin.piece(down).holder == w.org("BankA")
    assert fin.piece(keep).state == PieceState.PLEDGED and live_total(fin, vid) == 1_000_000

    # Lineage, from the financed piece back to the confirmation and forward from the root.
    lin = fin.lineage(down)
    assert [a["piece"] for a in lin["ancestors"]] == [vid.hex()]
    assert lin["voucher"]["obligor"] == "CoreCo" and lin["piece"]["holder"] == "BankA"
    assert {d["type"] for d in lin["voucher"]["documents"]} == {"INVOICE", "CONTRACT"}
    assert [f["event"] for f in lin["financings"]] == ["DISCOUNTED"]
    assert sorted(f["event"] for f in fin.lineage(vid)["financings"]) == ["DISCOUNTED", "PLEDGED"]

    # A state proof of the voucher record, checked by the light client in the chain's suite only.
    chain = w.fin.ledger.chain
    key = c.voucher_key(vid)
    proof = chain.prove_state(key)
    header = chain.header(proof.height).encode()
    assert proof.value == chain.state_get(key) and c.Voucher.decode(proof.value).face == 1_000_000
    assert proofs.verify_state(header, proof, key, suite=name)
    assert not proofs.verify_state(header, proof, key, suite=other.name)
    encoded = proof.encode(suite=name)
    assert proofs.verify_state_encoded(header, encoded, key, suite=name)
    forged = proofs.StateProof(proof.height, key, proof.value[:-1] + b"\xff", proof.siblings, proof.other)
    assert not proofs.verify_state(header, forged, key, suite=name)

    # Settlement at maturity pays the lender, the pledgor's remainder and the discount buyer.
    assert w.p["CoreCo"].settle(vid)[-1].code == FinanceReject.NOT_MATURED
    time.sleep(max(0, maturity - now_ms()) / 1000 + 0.05)
    assert [r.code for r in w.p["CoreCo"].settle(vid)] == [Reject.OK]
    paid: dict[bytes, int] = {}
    for _pid, org, amount in fin.clearing(vid, 0):
        paid[org] = paid.get(org, 0) + amount
    assert paid == {w.org("BankB"): 500_000, w.org("Tier1"): 100_000, w.org("BankA"): 400_000}
    assert fin.voucher(vid).status == VoucherStatus.SETTLED and live_total(fin, vid) == 0
    settled = chain.prove_state(key)
    assert c.Voucher.decode(settled.value).status == VoucherStatus.SETTLED
    assert proofs.verify_state(chain.header(settled.height).encode(), settled, key, suite=name)
    assert not fin.fits(fin.blind_invoice(invoice), 1)
    chain.close()
    report = verify_chain(chain.path)  # re-execution from genesis, in the chain's suite
    assert report.ok, report.problems


def test_attacks_are_refused_by_code_on_a_national_chain(sm2_chain, sm2_world):
    w, fin, chain = sm2_world, sm2_world.fin, sm2_chain
    vid, invoice = issue_voucher(w, 1_000_000, now_ms() + 600_000)
    t1, t2 = w.p["Tier1"], w.p["Tier2"]
    # A non-holder's steps, an offeree that was never offered, a stranger's key.
    assert t2.transfer(vid, w.org("Tier3")).code == FinanceReject.NOT_HOLDER
    assert t2.split(vid, [500_000, 500_000]).code == FinanceReject.NOT_HOLDER
    assert w.p["Tier3"].accept(vid).code == FinanceReject.NOT_OFFERED
    stranger = fin.party(kp("stranger", SM2))
    assert stranger.transfer(vid, w.org("Tier2")).code == FinanceReject.NOT_A_MEMBER
    assert w.p["Tier1"].settle(vid)[0].code == FinanceReject.NOT_OBLIGOR
    # Duplicate financing: the invoice backs one receivable, and the registry holds its value once.
    a, _b = t1.split(vid, [700_000, 300_000]).check().ids
    assert t1.discount(a, w.org("BankA"), 690_000).ok and w.p["BankA"].accept(a).ok
    blinded = fin.blind_invoice(invoice)
    assert blinded == fin.voucher(vid).blinded
    assert w.p["BankB"].reg_finance(blinded, 300_001, b"factoring").code == FinanceReject.EXCEEDS_ASSET_VALUE
    again = w.p["CoreCo"].confirm(w.org("Tier1"), 10, now_ms() + 60_000, [(DocType.INVOICE, invoice)])
    assert again.code == FinanceReject.INVOICE_ALREADY_USED
    assert w.p["BankB"].reg_finance(blinded, 300_000, b"factoring").ok
    assert not fin.fits(blinded, 1)
    assert fin.piece(vid).state == PieceState.SPLIT and live_total(fin, vid) == 1_000_000
    # A refusal has its receipt on chain, under the id the client reported, with its code.
    assert txcodec.decode(committed(chain, again)).sender == w.p["CoreCo"].pk


def test_keys_are_the_suites_and_the_suites_do_not_mix(sm2_chain, sm2_world):
    w, fin, chain = sm2_world, sm2_world.fin, sm2_chain
    node = fin.party(members(SM2).node)
    # An organization's key must be an SM2 key: an x with no curve point is refused.
    weak = next(x for i in range(1000) if not SM2_SM3.is_strong_public_key(x := i.to_bytes(32, "big")))
    assert node.propose_admit("WeakCo", ("supplier",), weak).code == Reject.WEAK_KEY
    assert w.p["Tier1"].add_key(weak).code == Reject.WEAK_KEY
    assert w.p["Tier1"].add_key(kp("Tier1 second", SM2).public_key).ok
    # A consensus validator's key is CometBFT's Ed25519 key in every suite.
    validator = kp("validator").public_key  # an Ed25519 key
    assert node.propose_validator(validator, 10).ok
    assert chain.state_get(c.validator_key(validator)) == (10).to_bytes(8, "little")
    # A key of the other suite cannot act here: the client refuses it, naming both suites ...
    ed_tier1 = members().keys["Tier1"]
    with pytest.raises(SuiteMismatch, match=r"ed25519-blake3 key.*sm2-sm3 suite"):
        fin.party(ed_tier1)
    # ... and a transaction it signs anyway is refused at admission (its signature is no SM2 one).
    vid, _ = issue_voucher(w, 1_000, now_ms() + 600_000)
    org, to, kind = w.org("Tier1"), w.org("Tier2"), c.OfferKind.TRANSFER
    ed_offer = v.offer(CHAIN_ID, ed_tier1.public_key, org, 0, vid, vid, to, kind)
    assert int(chain.submit([ed_tier1.sign_tx(ed_offer).encode()]).codes[0]) == Reject.BAD_SIGNATURE
    # The SM2 key of the organization, signing its offer over the other suite's tx id
    # (what an Ed25519 chain would have it sign): refused too.
    t1 = w.p["Tier1"]
    offer = v.offer(CHAIN_ID, t1.pk, org, chain.nonce(t1.pk), vid, vid, to, kind)
    wrong = offer.body() + t1.keys.sign(offer.tx_id(suite_for("ed25519-blake3")))
    assert int(chain.submit([wrong]).codes[0]) == Reject.BAD_SIGNATURE
    assert fin.piece(vid).state == PieceState.ACTIVE
    assert t1.transfer(vid, w.org("Tier2")).ok  # the right signature goes through


def test_a_confidential_voucher_on_a_national_chain_seals_its_opening_with_sm2(sm2_chain, sm2_world):
    w, fin = sm2_world, sm2_world.fin
    regulator = conf.elgamal_keypair(b"regulator".ljust(32, b"\0"))
    assert fin.party(members(SM2).node).propose_regulator_key(regulator.public).ok
    docs = [(DocType.INVOICE, w.p["Tier1"].anchor(DocType.INVOICE, b"invoice c").id)]
    r = w.p["CoreCo"].cconfirm(w.org("Tier1"), 1_000, now_ms() + 60_000, docs, w.p["Tier1"].pk)
    assert r.ok, r.code
    # The opening is SM2-encrypted to Tier1's key (72 + 65 bytes), not an X25519 sealed box.
    sealed = fin.camount(r.id).sealed
    assert len(sealed) == ca.sealed_bytes(SM2_SM3) == 72 + sm.PKE_OVERHEAD_BYTES
    secret, _ = sm.keypair_from_seed(members(SM2).keys["Tier1"].seed, x_only=True)
    assert ca.Opening.decode(sm.decrypt(secret, sealed)) == r.openings[0]
    assert w.p["Tier1"].opening(r.id).amount == 1_000
    assert w.p["BankA"].opening(r.id) is None and w.p["CoreCo"].opening(r.id) is None
    assert ca.regulator_read(fin.camount(r.id).amount, regulator.secret) == 1_000


def test_the_lifecycle_workload_in_the_national_suite():
    from tierchain.apps.finance.workload import TXS_PER_VOUCHER, lifecycle_workload

    shape = dict(suppliers=4, banks=2, cores=2, round_vouchers=8)
    work = lifecycle_workload(12, crypto=SM2, **shape)
    default = lifecycle_workload(12, **shape)
    assert default.crypto == "ed25519-blake3" and default.config().crypto == "ed25519-blake3"
    assert lifecycle_workload(12, crypto="ed25519-blake3", **shape).txs == default.txs
    assert isinstance(work.node, Sm2KeyPair) and work.config().crypto == SM2
    assert len(work.txs) == 12 * TXS_PER_VOUCHER and work.txs != default.txs
    assert lifecycle_workload(12, crypto=SM2, **shape).txs == work.txs  # deterministic
    ledger = MemLedger(work.config())
    assert {r.code for r in ledger.block(work.setup)} == {Reject.OK}
    for i in range(0, len(work.txs), 20):
        assert {r.code for r in ledger.block(work.txs[i : i + 20])} == {Reject.OK}
    fin = Finance(ledger)
    financed = sum(
        1
        for k, v in ledger.state.items()
        if k.startswith(b"fx/") and v and fin.piece(k[3:]).state == PieceState.FINANCED
    )
    assert financed == 12
    # Every signature is SM2's over the SM3 tx id, and none is valid in the other suite.
    decoded = [txcodec.decode(t) for t in work.setup + work.txs]
    keys = [t.sender for t in decoded]
    sigs = [t.signature for t in decoded]
    assert all(SM2_SM3.verify_batch(keys, [t.tx_id(SM2_SM3) for t in decoded], sigs))
    ed = suite_for("ed25519-blake3")
    assert not any(ed.verify_batch(keys, [t.tx_id(ed) for t in decoded], sigs))


def test_loadgen_voucher_mix_follows_the_spec_suite():
    from tierchain.tools import loadgen

    spec = loadgen.WorkloadSpec(14, 14, 1, mix="voucher", crypto=SM2)
    work = loadgen.build_workload(spec)
    (committee,) = work.extra_genesis
    assert SM2_SM3.is_strong_public_key(committee.public_key)
    txs = [t for s in work.streams for t in s]
    assert txs
    for raw in txs[:10]:
        tx = txcodec.decode(raw)
        assert SM2_SM3.verify(tx.sender, tx.tx_id(SM2_SM3), tx.signature)
