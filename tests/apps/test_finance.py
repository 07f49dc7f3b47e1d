"""Supply-chain finance on the real engine: the tiered scenario, committee votes,
and an attack suite in which every attempt gets a named code and changes nothing."""

from __future__ import annotations

import time

import pytest

from finance_world import (
    CHAIN_ID,
    COMMITTEE2,
    KEYS,
    NODE,
    ORG,
    SECRET,
    World,
    admit_all,
    config,
    issue_voucher,
    kp,
    live_total,
)
from tierchain import crypto
from tierchain.apps import accounts
from tierchain.apps.finance import DocType, PieceState, VoucherStatus, orgs
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject
from tierchain.engine.apps import VALIDATOR_UPDATE_TOPIC
from tierchain.engine.apps import validator_power_max as VALIDATOR_POWER_MAX
from tierchain.engine.chain import Chain
from tierchain.engine.execute import OpFailed
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.state import log
from tierchain.wire import tx as txcodec


def now_ms() -> int:
    return int(time.time() * 1000)


def state_snapshot(chain: Chain) -> dict[bytes, bytes]:
    """Every state entry except the system namespace (nonces move on failed txs too)."""
    with chain.store.read() as r:
        return {k: v for k, v in log.current_items(r).items() if not k.startswith(b"\x00")}


@pytest.fixture
def chain(tmp_path):
    with Chain(tmp_path / "chain", config(), NODE) as ch:
        yield ch


@pytest.fixture
def world(chain) -> World:
    return admit_all(Finance(chain, SECRET))


def rejected_without_change(chain: Chain, attempt, code: Reject) -> None:
    before = state_snapshot(chain)
    result = attempt()
    assert result.code == code, (result.code, code)
    assert state_snapshot(chain) == before


# --- the scenario ---------------------------------------------------------------------


def test_tiered_scenario_financing_at_tier3_and_settlement(chain, world):
    w, fin = world, world.fin
    maturity = now_ms() + 2500
    vid, invoice = issue_voucher(w, 1_000_000, maturity)
    t1, t2, t3 = w.p["Tier1"], w.p["Tier2"], w.p["Tier3"]
    bank_a, bank_b = w.p["BankA"], w.p["BankB"]
    assert fin.document(DocType.INVOICE, invoice).voucher == vid  # the invoice now backs this voucher

    # tier 1 keeps 600k, passes 400k down
    keep1, down1 = t1.split(vid, [600_000, 400_000]).check().ids
    assert t1.transfer(down1, w.org("Tier2")).ok
    assert fin.piece(down1).state == PieceState.OFFERED and fin.piece(down1).holder == w.org("Tier1")
    assert t2.accept(down1).ok
    # tier 2 keeps 250k, passes 150k down
    keep2, down2 = t2.split(down1, [250_000, 150_000]).check().ids
    assert t2.transfer(down2, w.org("Tier3")).ok and t3.accept(down2).ok
    # tier 3 discounts its 150k piece at BankA
    assert t3.discount(down2, w.org("BankA"), 145_000).ok and bank_a.accept(down2).ok
    assert fin.piece(down2).state == PieceState.FINANCED and fin.piece(down2).holder == w.org("BankA")
    # tier 1 pledges its 600k at BankB for a 500k loan
    assert t1.pledge(keep1, w.org("BankB"), 500_000, now_ms() + 60_000).ok and bank_b.accept(keep1).ok
    assert live_total(fin, vid) == 1_000_000
    blinded = fin.blind_invoice(invoice)
    assert not fin.fits(blinded, 250_001) and fin.fits(blinded, 250_000)  # 750k of 1M is financed

    # lineage from the tier-3 piece: back to the root confirmation and its documents
    lin = fin.lineage(down2)
    assert [a["piece"] for a in lin["ancestors"]] == [vid.hex(), down1.hex()]
    assert {d["type"] for d in lin["voucher"]["documents"]} == {"INVOICE", "CONTRACT"}
    assert lin["voucher"]["obligor"] == "CoreCo" and lin["piece"]["holder"] == "BankA"
    assert [f["event"] for f in lin["financings"]] == ["DISCOUNTED"]
    # ... and from the root forward to every holder and financing
    root = fin.lineage(vid)
    assert len(root["descendants"]) == 4
    assert set(root["holders"]) == {"Tier1", "Tier2", "BankA"}
    assert sorted(f["event"] for f in root["financings"]) == ["DISCOUNTED", "PLEDGED"]

    early = w.p["CoreCo"].settle(vid)
    assert early[-1].code == FinanceReject.NOT_MATURED
    time.sleep(max(0, maturity - now_ms()) / 1000 + 0.05)
    results = w.p["CoreCo"].settle(vid)
    assert [r.code for r in results] == [Reject.OK]
    paid = {}
    for _pid, org, amount in fin.clearing(vid, 0):
        paid[org] = paid.get(org, 0) + amount
    assert paid == {
        w.org("BankB"): 500_000,  # the lender of the pledged piece, up to its loan
        w.org("Tier1"): 100_000,  # the pledgor, the rest of that piece
        w.org("Tier2"): 250_000,
        w.org("BankA"): 150_000,  # the discount buyer
    }
    assert fin.voucher(vid).status == VoucherStatus.SETTLED and live_total(fin, vid) == 0
    assert not fin.fits(blinded, 1)
    # settling twice changes nothing
    rejected_without_change(
        chain, lambda: w.p["CoreCo"].settle(vid, [keep2])[0], FinanceReject.VOUCHER_SETTLED
    )
    assert {r["paid_to"] for r in fin.lineage(vid)["clearing"]} == {"BankB", "Tier1", "Tier2", "BankA"}
    chain.close()
    assert verify_chain(chain.path).ok  # re-execution from genesis agrees


def test_committee_threshold_vote_admits_and_changes_roles(chain):
    fin = Finance(chain, SECRET)
    node, second = fin.party(NODE), fin.party(COMMITTEE2)
    assert node.propose_params(c.Params(threshold=2)).ok  # threshold 1 until now: executes at once
    assert fin.params().threshold == 2
    newco = kp("NewCo")
    r = node.propose_admit("NewCo", ("supplier",), newco.public_key)
    assert r.ok and fin.org(c.org_id("NewCo")) is None  # one vote of two
    assert node.vote(r.id).code == FinanceReject.ALREADY_VOTED
    assert second.vote(r.id).ok
    org = fin.org(c.org_id("NewCo"))
    assert org is not None and fin.org_of(newco.public_key) == c.org_id("NewCo")
    assert second.vote(r.id).code == FinanceReject.PROPOSAL_CLOSED
    outsider = fin.party(kp("outsider"))
    assert outsider.propose_roles(c.org_id("NewCo"), ("bank",)).code == FinanceReject.NOT_COMMITTEE
    r = second.propose_roles(c.org_id("NewCo"), ("supplier", "bank"))
    assert r.ok and node.vote(r.id).ok
    assert (
        fin.org(c.org_id("NewCo")).roles
        == c.OrgRecord.decode(chain.state_get(c.org_key(c.org_id("NewCo")))).roles
    )
    from tierchain.apps.accounts import roles_mask

    assert fin.org(c.org_id("NewCo")).roles == roles_mask(("supplier", "bank"))


def test_committee_sets_and_removes_a_consensus_validator(chain):
    fin = Finance(chain, SECRET)
    node, second = fin.party(NODE), fin.party(COMMITTEE2)
    key = kp("validator").public_key
    assert node.propose_params(c.Params(threshold=2)).ok
    r = node.propose_validator(key, 10)
    assert r.ok and chain.state_get(c.validator_key(key)) is None  # one vote of two
    assert second.vote(r.id).ok
    assert chain.state_get(c.validator_key(key)) == (10).to_bytes(8, "little")
    # The executing vote's receipt carries the update a replicated chain hands to CometBFT.
    (receipt,) = chain.receipts(chain.height)
    events = [e for e in receipt.events if e.topic == VALIDATOR_UPDATE_TOPIC]
    assert [e.data for e in events] == [key + (10).to_bytes(8, "little")]
    r = second.propose_validator(key, 0)
    assert r.ok and node.vote(r.id).ok
    assert chain.state_get(c.validator_key(key)) is None
    outsider = fin.party(kp("outsider"))
    assert outsider.propose_validator(key, 1).code == FinanceReject.NOT_COMMITTEE
    # A weak key (the identity point) or a power out of range: the client refuses to build
    # it, and so does the op when a hand-made tx carries it anyway.
    weak = bytes([1]) + bytes(31)
    with pytest.raises(OpFailed):
        node.propose_validator(weak, 1)
    with pytest.raises(ValueError):
        orgs.set_validator_body(key, VALIDATOR_POWER_MAX + 1)
    for body, code in (
        (weak + (1).to_bytes(8, "little"), Reject.WEAK_KEY),
        (key + (VALIDATOR_POWER_MAX + 1).to_bytes(8, "little"), Reject.BAD_PAYLOAD),
        (key, Reject.BAD_PAYLOAD),
    ):
        nonce = chain.nonce(NODE.public_key)
        writes = {c.proposal_key(c.object_id(NODE.public_key, nonce)), c.validator_key(body[:32])}
        reads = {accounts.account_key(NODE.public_key), c.PARAMS_KEY}
        payload = bytes((c.Action.SET_VALIDATOR,)) + body
        t = orgs.make_tx(CHAIN_ID, c.OP_PROPOSE, NODE.public_key, nonce, reads, writes, payload)
        assert chain.submit([NODE.sign_tx(t).encode()]).wait(30)[0].code == code
    chain.close()
    assert verify_chain(chain.path).ok


def test_one_invoice_backs_one_receivable(chain, world):
    w = world
    _, invoice = issue_voucher(w, 10_000, now_ms() + 60_000)
    con = w.p["Tier1"].anchor(DocType.CONTRACT, b"another contract")
    attempt = lambda: w.p["CoreCo"].confirm(  # noqa: E731
        w.org("Tier1"), 10_000, now_ms() + 60_000, [(DocType.INVOICE, invoice), (DocType.CONTRACT, con.id)]
    )
    rejected_without_change(chain, attempt, FinanceReject.INVOICE_ALREADY_USED)
    assert w.p["Tier1"].anchor(DocType.INVOICE, b"invoice 1").code == FinanceReject.DOC_EXISTS
    only_contract = lambda: w.p["CoreCo"].confirm(  # noqa: E731
        w.org("Tier1"), 10_000, now_ms() + 60_000, [(DocType.CONTRACT, con.id)]
    )
    rejected_without_change(chain, only_contract, FinanceReject.NO_INVOICE)
    rec = w.fin.document(DocType.INVOICE, invoice)
    height, _, raw, _ = chain.tx(rec.tx_id)  # the anchoring tx, signed by the submitter
    assert height == rec.height and rec.signer == KEYS["Tier1"].public_key
    tx = txcodec.decode(raw)  # verifiable later: the signature covers the type and the fingerprint
    assert tx.payload == bytes((DocType.INVOICE,)) + invoice and tx.sender == rec.signer
    assert crypto.verify(rec.signer, tx.tx_id(), tx.signature)


# --- the attack suite ----------------------------------------------------------------------


@pytest.fixture
def voucher(world):
    vid, _ = issue_voucher(world, 1_000_000, now_ms() + 600_000)
    return vid


def test_non_holder_cannot_move_or_split(chain, world, voucher):
    t2 = world.p["Tier2"]
    rejected_without_change(chain, lambda: t2.transfer(voucher, ORG["Tier3"]), FinanceReject.NOT_HOLDER)
    rejected_without_change(chain, lambda: t2.split(voucher, [500_000, 500_000]), FinanceReject.NOT_HOLDER)
    rejected_without_change(
        chain, lambda: t2.discount(voucher, ORG["BankA"], 900_000), FinanceReject.NOT_HOLDER
    )
    rejected_without_change(chain, lambda: world.p["Tier3"].accept(voucher), FinanceReject.NOT_OFFERED)


def test_over_split_and_split_limits(chain, world, voucher):
    t1 = world.p["Tier1"]
    rejected_without_change(
        chain, lambda: t1.split(voucher, [600_000, 500_000]), FinanceReject.SPLIT_SUM_MISMATCH
    )
    rejected_without_change(chain, lambda: t1.split(voucher, [999_950, 50]), FinanceReject.PIECE_TOO_SMALL)
    assert t1.split(voucher, [500_000, 500_000]).ok
    rejected_without_change(chain, lambda: t1.split(voucher, [500_000, 500_000]), FinanceReject.PIECE_CLOSED)
    assert live_total(world.fin, voucher) == 1_000_000


def test_double_spend_within_one_block(chain, world, voucher):
    t1 = world.p["Tier1"]
    fin = world.fin
    org = ORG["Tier1"]
    first = c.OfferKind.TRANSFER
    from tierchain.apps.finance import voucher as v

    n = chain.nonce(t1.pk)
    txs = [
        t1.keys.sign_tx(v.offer(CHAIN_ID, t1.pk, org, n, voucher, voucher, ORG["Tier2"], first)).encode(),
        t1.keys.sign_tx(v.offer(CHAIN_ID, t1.pk, org, n + 1, voucher, voucher, ORG["Tier3"], first)).encode(),
    ]
    sub = chain.submit(txs)
    receipts = sub.wait(10)
    assert sub.heights[0] == sub.heights[1]  # one block
    assert [r.code for r in receipts] == [Reject.OK, FinanceReject.PIECE_PENDING]
    assert fin.piece(voucher).counterparty == ORG["Tier2"]
    # the same in a block where both offers race to two different pieces' parents is fine;
    # and the loser changed nothing: Tier3 cannot accept
    rejected_without_change(chain, lambda: world.p["Tier3"].accept(voucher), FinanceReject.NOT_OFFEREE)


def test_double_spend_across_blocks(chain, world, voucher):
    t1, t2 = world.p["Tier1"], world.p["Tier2"]
    assert t1.transfer(voucher, ORG["Tier2"]).ok and t2.accept(voucher).ok
    rejected_without_change(chain, lambda: t1.transfer(voucher, ORG["Tier3"]), FinanceReject.NOT_HOLDER)
    rejected_without_change(chain, lambda: t1.discount(voucher, ORG["BankA"], 1), FinanceReject.NOT_HOLDER)
    assert world.fin.piece(voucher).holder == ORG["Tier2"]


def test_pledged_and_financed_pieces_cannot_move_or_split(chain, world, voucher):
    t1 = world.p["Tier1"]
    a, b = t1.split(voucher, [500_000, 500_000]).check().ids
    assert t1.pledge(a, ORG["BankA"], 400_000, now_ms() + 60_000).ok and world.p["BankA"].accept(a).ok
    rejected_without_change(chain, lambda: t1.split(a, [250_000, 250_000]), FinanceReject.PIECE_LOCKED)
    rejected_without_change(chain, lambda: t1.transfer(a, ORG["Tier2"]), FinanceReject.PIECE_LOCKED)
    rejected_without_change(chain, lambda: t1.discount(a, ORG["BankB"], 1), FinanceReject.PIECE_LOCKED)
    rejected_without_change(chain, lambda: world.p["BankA"].default_transfer(a), FinanceReject.LOAN_NOT_DUE)
    rejected_without_change(chain, lambda: world.p["BankB"].release(a), FinanceReject.NOT_LENDER)
    assert t1.discount(b, ORG["BankB"], 480_000).ok and world.p["BankB"].accept(b).ok
    rejected_without_change(
        chain, lambda: world.p["BankB"].split(b, [250_000, 250_000]), FinanceReject.PIECE_LOCKED
    )
    rejected_without_change(
        chain, lambda: world.p["BankB"].transfer(b, ORG["Tier2"]), FinanceReject.PIECE_LOCKED
    )
    # pending offers block a second spend too
    assert world.p["BankA"].release(a).ok and t1.transfer(a, ORG["Tier2"]).ok
    rejected_without_change(chain, lambda: t1.split(a, [250_000, 250_000]), FinanceReject.PIECE_PENDING)
    assert t1.return_offer(a).ok and world.fin.piece(a).state == PieceState.ACTIVE


def test_settle_twice_and_settle_by_non_obligor(chain, world):
    maturity = now_ms() + 400
    vid, _ = issue_voucher(world, 50_000, maturity)
    time.sleep(max(0, maturity - now_ms()) / 1000 + 0.05)
    rejected_without_change(chain, lambda: world.p["Tier1"].settle(vid)[0], FinanceReject.NOT_OBLIGOR)
    assert world.p["Tier1"].split(vid, [25_000, 25_000]).code == FinanceReject.MATURED
    assert [r.code for r in world.p["CoreCo"].settle(vid)] == [Reject.OK]
    rejected_without_change(
        chain, lambda: world.p["CoreCo"].settle(vid, [vid])[0], FinanceReject.VOUCHER_SETTLED
    )


def test_same_asset_at_two_banks_beyond_its_value(chain, world):
    fin = world.fin
    order = fin.blind("purchase order", b"PO-2026-0042")
    assert world.p["CoreCo"].reg_asset(order, 10_000_000).ok
    a = world.p["BankA"].reg_finance(order, 5_000_000, b"loan A-1")
    assert a.ok and [e.data for e in a.receipt.events] == [b""]  # the receipt echoes no amounts
    assert not fin.fits(order, 7_000_000) and fin.fits(order, 5_000_000)
    attempt = lambda: world.p["BankB"].reg_finance(order, 7_000_000, b"loan B-1")  # noqa: E731
    rejected_without_change(chain, attempt, FinanceReject.EXCEEDS_ASSET_VALUE)
    # no bank id or per-bank amount is stored under the fingerprint: two integers only
    assert c.RegistryEntry.decode(chain.state_get(c.registry_key(order))) == c.RegistryEntry(
        10_000_000, 5_000_000
    )
    rejected_without_change(
        chain, lambda: world.p["BankB"].reg_release(order, b"loan A-1"), FinanceReject.NO_SUCH_FINANCING
    )
    assert world.p["BankA"].reg_release(order, b"loan A-1").ok
    assert world.p["BankB"].reg_finance(order, 7_000_000, b"loan B-1").ok


def test_voucher_and_direct_invoice_financing_share_one_limit(chain, world, voucher):
    fin = world.fin
    invoice = fin.voucher(voucher).docs[0][1]
    blinded = fin.blind_invoice(invoice)
    assert blinded == fin.voucher(voucher).blinded
    t1 = world.p["Tier1"]
    a, _ = t1.split(voucher, [700_000, 300_000]).check().ids
    assert t1.discount(a, ORG["BankA"], 690_000).ok and world.p["BankA"].accept(a).ok
    # BankB factors the same invoice directly: only 300k is left
    attempt = lambda: world.p["BankB"].reg_finance(blinded, 300_001, b"factoring")  # noqa: E731
    rejected_without_change(chain, attempt, FinanceReject.EXCEEDS_ASSET_VALUE)
    assert world.p["BankB"].reg_finance(blinded, 300_000, b"factoring").ok


def test_revoked_key_is_refused(chain, world, voucher):
    t1 = world.p["Tier1"]
    new = kp("Tier1 second key")
    assert t1.add_key(new.public_key).ok
    assert world.fin.party(new).revoke_key(t1.pk).ok
    assert world.fin.key(t1.pk).status == c.KeyStatus.REVOKED
    rejected_without_change(chain, lambda: t1.transfer(voucher, ORG["Tier2"]), FinanceReject.KEY_REVOKED)
    rejected_without_change(chain, lambda: t1.add_key(kp("sneaky").public_key), FinanceReject.KEY_REVOKED)
    # the organization still holds the piece and acts with its other key
    assert world.fin.party(new).transfer(voucher, ORG["Tier2"]).ok
    assert world.fin.party(new).revoke_key(new.public_key).code == FinanceReject.LAST_KEY
    rotated = kp("Tier1 third key")
    assert world.fin.party(new).rotate_key(rotated.public_key).ok
    assert world.fin.key(new.public_key).status == c.KeyStatus.REVOKED
    assert world.fin.org_of(rotated.public_key) == ORG["Tier1"]


def test_wrong_role_is_refused(chain, world, voucher):
    p = world.p
    inv = p["Tier1"].anchor(DocType.INVOICE, b"invoice x")
    attempt = lambda: p["Tier1"].confirm(ORG["Tier2"], 1_000, now_ms() + 60_000, [(DocType.INVOICE, inv.id)])  # noqa: E731
    rejected_without_change(chain, attempt, FinanceReject.ROLE_MISSING)
    rejected_without_change(
        chain, lambda: p["BankA"].anchor(DocType.INVOICE, b"bank inv"), FinanceReject.ROLE_MISSING
    )
    rejected_without_change(
        chain, lambda: p["Tier1"].anchor(DocType.WAREHOUSE_RECEIPT, b"wr"), FinanceReject.ROLE_MISSING
    )
    rejected_without_change(
        chain, lambda: p["Tier1"].reg_finance(bytes(32), 1, b"x"), FinanceReject.ROLE_MISSING
    )
    rejected_without_change(
        chain, lambda: p["Tier1"].discount(voucher, ORG["Tier2"], 1), FinanceReject.BAD_COUNTERPARTY
    )
    rejected_without_change(
        chain, lambda: p["Tier1"].transfer(voucher, ORG["BankA"]), FinanceReject.BAD_COUNTERPARTY
    )
    stranger = world.fin.party(kp("stranger"))
    rejected_without_change(
        chain, lambda: stranger.transfer(voucher, ORG["Tier2"]), FinanceReject.NOT_A_MEMBER
    )
    rejected_without_change(
        chain, lambda: stranger.propose_admit("X", ("bank",), kp("x").public_key), FinanceReject.NOT_COMMITTEE
    )


def test_a_full_history_never_locks_a_pledged_piece():
    """Offers stop before the history is full, so release/default and settlement always fit."""
    from finance_world import SECRET, MemLedger, admit_all, config, issue_voucher
    from tierchain.apps.finance import codes as fc
    from tierchain.apps.finance.client import Finance

    led = MemLedger(config())
    fin = Finance(led, SECRET)
    w = admit_all(fin)
    t1 = w.p["Tier1"]
    vid, _ = issue_voucher(w, 10_000, 2_000_000)
    while True:  # the holder pads its piece's history with offer/return cycles
        offered = t1.transfer(vid, w.org("Tier2"))
        if not offered.ok:
            assert offered.code == FinanceReject.HISTORY_FULL
            break
        assert t1.return_offer(vid).ok
    assert t1.pledge(vid, w.org("BankA"), 5_000, 1_500_000).code == FinanceReject.HISTORY_FULL
    # With room for exactly one more offer, a pledge goes through and can always complete.
    padded = len(fin.piece(vid).history)
    assert padded + 1 + 4 > fc.piece_history_max  # offers are refused here...
    assert padded - 2 + 1 + 4 <= fc.piece_history_max  # ...and were allowed one cycle earlier


def test_a_pledge_taken_with_the_last_room_still_defaults_and_settles():
    from finance_world import SECRET, MemLedger, admit_all, config, issue_voucher
    from tierchain.apps.finance import codes as fc
    from tierchain.apps.finance.client import Finance

    led = MemLedger(config())
    fin = Finance(led, SECRET)
    w = admit_all(fin)
    t1, bank, core = w.p["Tier1"], w.p["BankA"], w.p["CoreCo"]
    vid, _ = issue_voucher(w, 10_000, 2_000_000)
    while len(fin.piece(vid).history) + 2 + 1 + 4 <= fc.piece_history_max:
        assert t1.transfer(vid, w.org("Tier2")).ok and t1.return_offer(vid).ok
    assert t1.pledge(vid, w.org("BankA"), 5_000, 1_500_000).ok
    assert bank.accept(vid).ok
    led.timestamp_ms = 1_600_000  # the loan is overdue
    assert bank.default_transfer(vid).ok
    led.timestamp_ms = 2_000_000  # maturity
    assert [r.code for r in core.settle(vid)] == [Reject.OK]
    assert len(fin.piece(vid).history) <= fc.piece_history_max


def test_releasing_a_financing_after_settlement_does_not_reopen_the_asset():
    from finance_world import SECRET, MemLedger, admit_all, config, issue_voucher
    from tierchain.apps.finance.client import Finance

    led = MemLedger(config())
    fin = Finance(led, SECRET)
    w = admit_all(fin)
    bank, core = w.p["BankA"], w.p["CoreCo"]
    vid, _ = issue_voucher(w, 10_000, 2_000_000)
    blinded = fin.voucher(vid).blinded
    assert bank.reg_finance(blinded, 4_000, b"loan-1").ok
    led.timestamp_ms = 2_000_000
    assert [r.code for r in core.settle(vid)] == [Reject.OK]
    assert not fin.fits(blinded, 1)
    assert bank.reg_release(blinded, b"loan-1").ok  # the bank closes its own record...
    assert not fin.fits(blinded, 4_000)  # ...but the extinguished asset stays closed
    assert w.p["BankB"].reg_finance(blinded, 4_000, b"x").code == FinanceReject.EXCEEDS_ASSET_VALUE
