"""Confidential vouchers (tierchain.apps.finance.confidential; docs/privacy.md): a hidden face
and hidden pieces, proofs checked at admission (BAD_PROOF), state checked by the handlers
(named finance codes, nothing written), openings only for holders, see-through for the
regulator, and no plaintext amount anywhere in the database or the blocks."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from finance_world import KEYS, NODE, SECRET, MemLedger, World, admit_all, config, issue_voucher
from tierchain.apps import accounts
from tierchain.apps.finance import DocType, cregistry
from tierchain.apps.finance import camount as ca
from tierchain.apps.finance import codes as c
from tierchain.apps.finance import confidential as cf
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.orgs import make_tx
from tierchain.cli.main import main
from tierchain.crypto import confidential as conf
from tierchain.engine.chain import Chain
from tierchain.engine.execute import OpFailed
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

REGULATOR_SEED = b"regulator seed for tests".ljust(32, b"\0")
REGULATOR = conf.elgamal_keypair(REGULATOR_SEED)
STRANGER = conf.elgamal_keypair(b"not the regulator".ljust(32, b"\0"))
FACE = 0x0123_4567_89AB  # above 2**32: both limbs matter; distinctive bytes for the scan
PIECES = [0x0023_4567_0000, FACE - 0x0023_4567_0000]
MATURITY = 4_000_000_000_000


def _world(fin: Finance, *, regulator: bool = True) -> World:
    w = admit_all(fin)
    if regulator:
        assert fin.party(NODE).propose_regulator_key(REGULATOR.public).ok
    return w


def _docs(w: World, tag: bytes) -> list[tuple[int, bytes]]:
    t1 = w.p["Tier1"]
    inv, con = t1.anchor(DocType.INVOICE, b"invoice " + tag), t1.anchor(DocType.CONTRACT, b"contract " + tag)
    assert inv.ok and con.ok
    return [(DocType.INVOICE, inv.id), (DocType.CONTRACT, con.id)]


def _cconfirm(w: World, tag: bytes = b"c1", face: int = FACE):
    return w.p["CoreCo"].cconfirm(w.org("Tier1"), face, MATURITY, _docs(w, tag), KEYS["Tier1"].public_key)


@pytest.fixture
def chain(tmp_path):
    with Chain(tmp_path / "chain", config(), NODE) as ch:
        yield ch


@pytest.fixture
def world(chain) -> World:
    return _world(Finance(chain, SECRET))


def _submit(chain, keys, tx: txcodec.Tx) -> int:
    """Admission's code, or the receipt's."""
    sub = chain.submit([keys.sign_tx(tx).encode()])
    return int(sub.codes[0]) or sub.wait(10)[0].code


def test_a_confidential_lifecycle_hides_amounts_from_all_but_holders_and_the_regulator(
    chain, world, tmp_path
):
    fin, t1 = world.fin, world.p["Tier1"]
    r = _cconfirm(world)
    assert r.ok, r.code
    vid = r.id
    assert fin.voucher(vid).face == 0 and fin.piece(vid).amount == 0  # nothing in the records
    # The beneficiary opens its amount from the chain; the obligor and a bank cannot.
    assert t1.opening(vid).amount == FACE == r.openings[0].amount
    assert world.p["BankA"].opening(vid) is None and world.p["CoreCo"].opening(vid) is None
    stored = fin.camount(vid)
    assert ca.regulator_read(stored.amount, REGULATOR.secret) == FACE
    assert ca.regulator_read(stored.amount, STRANGER.secret) is None  # see-through is the regulator's
    # A split into hidden pieces that sum to the hidden face; each holder line opens.
    s = t1.csplit(vid, PIECES)
    assert s.ok, s.code
    assert [t1.opening(k).amount for k in s.ids] == PIECES
    assert [ca.regulator_read(fin.camount(k).amount, REGULATOR.secret) for k in s.ids] == PIECES
    assert fin.piece(vid).state == c.PieceState.SPLIT
    assert [fin.piece(k).state for k in s.ids] == [c.PieceState.ACTIVE] * 2
    # ... and a split of a piece, from the opening the chain keeps for its holder.
    s2 = t1.csplit(s.ids[0], [PIECES[0] - 1000, 1000])
    assert s2.ok, s2.code
    assert fin.piece(s2.ids[1]).root == vid and fin.piece(s2.ids[1]).depth == 2
    # The registry holds commitments only.
    entry = cregistry.CRegistryEntry.decode(fin.get(c.cregistry_key(fin.voucher(vid).blinded)))
    assert (entry.value_lo, entry.value_hi) == (stored.lo, stored.hi) and entry.financed == ca.IDENTITY
    assert fin.get(c.registry_key(fin.voucher(vid).blinded)) is None
    # Lineage shows no amount; the regulator's view shows every one; another key's none.
    plain = fin.lineage(s2.ids[1])
    assert plain["voucher"]["face"] is None and plain["piece"]["confidential"]
    assert {d["amount"] for d in (*plain["ancestors"], plain["piece"])} == {None}
    seen = cf.regulator_lineage(fin.get, vid, REGULATOR.secret)
    assert seen["voucher"]["face"] == FACE and seen["piece"]["amount"] == FACE
    assert [d["amount"] for d in seen["descendants"]] == [*PIECES, PIECES[0] - 1000, 1000]
    blind = cf.regulator_lineage(fin.get, vid, STRANGER.secret)
    assert blind["voucher"]["face"] is None and {d["amount"] for d in blind["descendants"]} == {None}
    # Nothing anywhere holds an amount in the clear: neither the database files nor any block.
    chain.close()
    assert verify_chain(tmp_path / "chain").ok
    env = {"REG_SEED": REGULATOR_SEED.hex()}
    out = CliRunner(env=env).invoke(
        main, ["finance", "lineage", str(tmp_path / "chain"), vid.hex(), "--regulator-seed-env", "REG_SEED"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["voucher"]["face"] == FACE
    out = CliRunner(env=env).invoke(main, ["finance", "regulator-key", "--seed-env", "REG_SEED"])
    assert json.loads(out.output) == {"public_key": REGULATOR.public.hex()}
    secrets = [struct.pack("<Q", v) for v in (FACE, *PIECES, PIECES[0] - 1000)]
    secrets += [str(v).encode() for v in (FACE, *PIECES)]
    for f in Path(tmp_path / "chain").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not [s for s in secrets if s in data], f


def test_proofs_are_checked_at_admission(chain, world):
    t1 = world.p["Tier1"]
    vid = _cconfirm(world).id
    parent = t1.opening(vid)
    args = (chain.config.chain_id, KEYS["Tier1"].public_key, world.org("Tier1"))
    nonce = chain.nonce(KEYS["Tier1"].public_key)
    good, kids, _ = cf.csplit(*args, nonce, vid, vid, parent, PIECES, REGULATOR.public)

    def with_payload(payload: bytes) -> txcodec.Tx:
        return dataclasses.replace(good, payload=payload)

    pos = cf._CSPLIT.size + 2 * ca.CAmount.SIZE + 2  # the range proof's first byte
    tampered = bytearray(good.payload)
    tampered[pos + 40] ^= 1
    assert _submit(chain, KEYS["Tier1"], with_payload(bytes(tampered))) == Reject.BAD_PROOF
    # A regulator handle that is not the limb's: its validity proof fails.
    swapped = bytearray(good.payload)
    first = cf._CSPLIT.size
    swapped[first + 64 : first + 96] = good.payload[first + 96 : first + 128]
    assert _submit(chain, KEYS["Tier1"], with_payload(bytes(swapped))) == Reject.BAD_PROOF
    # No envelope at all (the payload cut short), and garbage.
    assert _submit(chain, KEYS["Tier1"], with_payload(good.payload[: first + 200])) == Reject.BAD_PROOF
    # The same proofs in another transaction (another nonce): bound to the first one.
    replayed = dataclasses.replace(good, nonce=nonce + 1)
    assert _submit(chain, KEYS["Tier1"], replayed) == Reject.BAD_PROOF
    # Nothing changed; the genuine one still goes through.
    assert (
        chain.nonce(KEYS["Tier1"].public_key) == nonce and world.fin.piece(vid).state == c.PieceState.ACTIVE
    )
    assert _submit(chain, KEYS["Tier1"], good) == Reject.OK
    assert [world.fin.piece(k).state for k in kids] == [c.PieceState.ACTIVE] * 2


def _state(fin: Finance, *keys: bytes) -> list[bytes | None]:
    return [fin.get(k) for k in keys]


def test_state_dependent_refusals_name_the_problem_and_change_nothing(chain, world):
    fin, t1 = world.fin, world.p["Tier1"]
    vid = _cconfirm(world).id
    parent = t1.opening(vid)
    keys = (c.piece_key(vid), c.camount_key(vid), c.piece_key(c.child_id(vid, 0)))
    before = _state(fin, *keys)
    args = (chain.config.chain_id, KEYS["Tier1"].public_key, world.org("Tier1"))

    def split_with(openings, regulator=REGULATOR.public) -> int:
        nonce = chain.nonce(KEYS["Tier1"].public_key)
        ctx = ca.context(chain.config.chain_id, KEYS["Tier1"].public_key, nonce, c.OP_CSPLIT)
        tx, _, _ = cf.csplit(*args, nonce, vid, vid, parent, PIECES, regulator)
        cams = [ca.make(o, regulator, ctx) for o in openings]
        (proof,) = ca.prove_ranges(openings, ctx)
        payload = cf._CSPLIT.pack(vid, regulator, len(cams)) + b"".join(a.encode() for a in cams)
        payload += ca.put_proof(proof)
        payload += b"".join(ca.seal(o, KEYS["Tier1"].public_key) for o in openings)
        return _submit(chain, KEYS["Tier1"], dataclasses.replace(tx, payload=payload))

    # Pieces worth more than the parent (openings made to balance, amounts that do not).
    inflated = ca.balancing_openings(dataclasses.replace(parent, amount=FACE + 5), [FACE, 5])
    assert split_with(inflated) == FinanceReject.SPLIT_SUM_MISMATCH
    # Amounts that sum, with the wrong blinding.
    assert split_with([ca.fresh_opening(a) for a in PIECES]) == FinanceReject.SPLIT_SUM_MISMATCH
    # Envelopes for a key that is not the chain's regulator's (valid proofs for that key).
    balanced = ca.balancing_openings(parent, PIECES)
    assert split_with(balanced, STRANGER.public) == FinanceReject.REGULATOR_KEY_MISMATCH
    assert _state(fin, *keys) == before
    # A plaintext op on the confidential piece, and the reverse.
    assert t1.split(vid, PIECES).code == FinanceReject.CONFIDENTIAL_PIECE
    plain, _ = issue_voucher(world, 50_000, MATURITY, b"plain")
    with pytest.raises(ValueError, match="no opening"):
        t1.csplit(plain, [25_000, 25_000])
    fake = ca.fresh_opening(50_000)
    assert t1.csplit(plain, [25_000, 25_000], parent=fake).code == FinanceReject.NOT_CONFIDENTIAL
    assert _state(fin, *keys) == before


def test_confirmation_refusals(chain, tmp_path):
    fin = Finance(chain, SECRET)
    w = _world(fin, regulator=False)
    core = w.p["CoreCo"]
    with pytest.raises(ValueError, match="no regulator key"):
        _cconfirm(w)
    docs = _docs(w, b"n1")
    nonce = chain.nonce(KEYS["CoreCo"].public_key)
    tx, vid, _ = cf.cconfirm(
        chain.config.chain_id, KEYS["CoreCo"].public_key, w.org("CoreCo"), nonce, w.org("Tier1"), FACE,
        MATURITY, docs, fin.blind_invoice(docs[0][1]), REGULATOR.public, KEYS["Tier1"].public_key,
    )  # fmt: skip
    assert _submit(chain, KEYS["CoreCo"], tx) == FinanceReject.NO_REGULATOR_KEY
    assert fin.voucher(vid) is None
    assert fin.party(NODE).propose_regulator_key(REGULATOR.public).ok
    # The opening sealed to a key of another organization than the beneficiary.
    r = core.cconfirm(w.org("Tier1"), FACE, MATURITY, _docs(w, b"n2"), KEYS["BankA"].public_key)
    assert r.code == FinanceReject.BAD_RECIPIENT and fin.voucher(r.id) is None
    # One invoice backs one receivable, confidential or not.
    docs = _docs(w, b"n3")
    assert core.cconfirm(w.org("Tier1"), FACE, MATURITY, docs, KEYS["Tier1"].public_key).ok
    again = core.confirm(w.org("Tier1"), FACE, MATURITY, docs)
    assert again.code == FinanceReject.INVOICE_ALREADY_USED


def test_settlement_pays_each_holder_its_hidden_amount_and_closes_at_the_face():
    ledger = MemLedger(config())
    fin = Finance(ledger, SECRET)
    w = _world(fin)
    core, t1, t2, bank = w.p["CoreCo"], w.p["Tier1"], w.p["Tier2"], w.p["BankA"]
    vid = _cconfirm(w).id
    a, b = t1.csplit(vid, PIECES).ids
    b1, b2 = t1.csplit(b, [PIECES[1] - 7, 7]).ids
    assert t1.coffer(a, w.org("Tier2"), KEYS["Tier2"].public_key).ok and t2.accept(a).ok
    assert t1.coffer(b1, w.org("BankA"), KEYS["BankA"].public_key, c.OfferKind.PLEDGE, 5, MATURITY - 1).ok
    assert bank.accept(b1).ok
    ledger.timestamp_ms = MATURITY + 1
    # A pledged piece is not settled while pledged: its lender's share is hidden.
    (r,) = core.settle(vid, [b1])
    assert r.code == FinanceReject.PIECE_LOCKED
    (r,) = core.settle(vid, [a, b2])  # a first batch: not the whole face yet
    assert r.ok, r.code
    assert fin.voucher(vid).status == c.VoucherStatus.ACTIVE
    assert bank.release(b1).ok
    (r,) = core.settle(vid, [b1])  # the last live piece: the face is reached
    assert r.ok, r.code
    assert fin.voucher(vid).status == c.VoucherStatus.SETTLED and fin.voucher(vid).settled == 0
    assert cregistry.CRegistryEntry.decode(fin.get(c.cregistry_key(fin.voucher(vid).blinded))).closed
    # Each holder opens its own line of the clearing lists; the regulator reads them all.
    lines = [row for batch in (0, 1) for row in ca.decode_cclearing(fin.get(c.clearing_key(vid, batch)))[2]]
    holders = {a: t2, b2: t1, b1: t1}
    for pid, org, amount in lines:
        assert org == fin.piece(pid).holder
        opening = holders[pid].opening(pid)
        assert opening.matches((amount[:32], amount[32:64]))
        assert ca.regulator_read(amount, REGULATOR.secret) == opening.amount
    assert sum(ca.regulator_read(amount, REGULATOR.secret) for _, _, amount in lines) == FACE
    seen = cf.regulator_lineage(fin.get, vid, REGULATOR.secret)
    assert sorted(row["amount"] for row in seen["clearing"]) == sorted([PIECES[0], PIECES[1] - 7, 7])
    assert {row["amount"] for row in fin.lineage(vid)["clearing"]} == {None}
    (again,) = core.settle(vid, [a])
    assert again.code == FinanceReject.VOUCHER_SETTLED


def test_the_regulator_key_is_a_committee_decision_and_must_be_a_point():
    ledger = MemLedger(config())
    fin = Finance(ledger, SECRET)
    admit_all(fin)
    node = fin.party(NODE)
    for bad in (bytes(32), b"\xff" * 32):  # the identity; not a point
        with pytest.raises(OpFailed, match="BAD_PAYLOAD"):  # the client builds no such proposal
            node.propose_regulator_key(bad)
        nonce = ledger.nonce(NODE.public_key)
        writes = {c.proposal_key(c.object_id(NODE.public_key, nonce)), c.REGULATOR_KEY}
        payload = bytes((c.Action.SET_REGULATOR_KEY,)) + bad
        reads = {accounts.account_key(NODE.public_key), c.PARAMS_KEY}
        tx = make_tx(ledger.chain_id, c.OP_PROPOSE, NODE.public_key, nonce, reads, writes, payload)
        code, _ = ledger.send(NODE.sign_tx(tx).encode(), 10)
        assert code == Reject.BAD_PAYLOAD
    assert fin.regulator_key() is None
    assert (
        fin.party(KEYS["BankA"]).propose_regulator_key(REGULATOR.public).code == FinanceReject.NOT_COMMITTEE
    )
    assert node.propose_regulator_key(REGULATOR.public).ok and fin.regulator_key() == REGULATOR.public


def test_confidential_offers_move_the_opening_to_the_new_holder_and_count_financings(chain, world):
    fin, t1, t2, bank = world.fin, world.p["Tier1"], world.p["Tier2"], world.p["BankA"]
    vid = _cconfirm(world).id
    kids = t1.csplit(vid, PIECES).ids
    blinded = fin.voucher(vid).blinded
    # A transfer: Tier2 gets the opening sealed to its key; on accept it is the holder's.
    assert t1.coffer(kids[0], world.org("Tier2"), KEYS["Tier2"].public_key).ok
    assert t2.opening(kids[0]) is None  # still Tier1's until accepted
    assert t2.accept(kids[0]).ok
    assert fin.piece(kids[0]).holder == world.org("Tier2") and t2.opening(kids[0]).amount == PIECES[0]
    assert fin.get(c.coffer_key(kids[0])) is None
    # A discount at a hidden price: the bank holds the piece, the registry counts it.
    r = t2.coffer(
        kids[0], world.org("BankA"), KEYS["BankA"].public_key, c.OfferKind.DISCOUNT, PIECES[0] - 500
    )
    assert r.ok, r.code
    assert r.openings[0].amount == PIECES[0] - 500
    offer = ca.Offer.decode(fin.get(c.coffer_key(kids[0])))
    assert ca.regulator_read(offer.price, REGULATOR.secret) == PIECES[0] - 500  # the regulator sees the price
    assert bank.accept(kids[0]).ok
    assert fin.piece(kids[0]).state == c.PieceState.FINANCED and bank.opening(kids[0]).amount == PIECES[0]
    entry = cregistry.CRegistryEntry.decode(fin.get(c.cregistry_key(blinded)))
    assert entry.financed == conf.commitment_lincomb(
        [fin.camount(kids[0]).lo, fin.camount(kids[0]).hi], [1, 1 << 32]
    )
    # A pledge, then its release: counted, then given back.
    r = t1.coffer(
        kids[1], world.org("BankA"), KEYS["BankA"].public_key, c.OfferKind.PLEDGE, 1000, MATURITY - 1
    )
    assert r.ok, r.code
    assert bank.accept(kids[1]).ok and fin.piece(kids[1]).state == c.PieceState.PLEDGED
    assert t1.opening(kids[1]).amount == PIECES[1]  # the pledgor keeps its piece and opening
    assert bank.release(kids[1]).ok and fin.piece(kids[1]).state == c.PieceState.ACTIVE
    assert cregistry.CRegistryEntry.decode(fin.get(c.cregistry_key(blinded))).financed == entry.financed
    # An offer returned leaves nothing pending.
    assert t1.coffer(kids[1], world.org("Tier3"), KEYS["Tier3"].public_key).ok
    assert t1.return_offer(kids[1]).ok and fin.get(c.coffer_key(kids[1])) is None
    assert fin.piece(kids[1]).state == c.PieceState.ACTIVE and t1.opening(kids[1]).amount == PIECES[1]


def test_confidential_offer_refusals(chain, world):
    fin, t1 = world.fin, world.p["Tier1"]
    vid = _cconfirm(world).id
    kids = t1.csplit(vid, PIECES).ids
    before = _state(fin, c.piece_key(kids[0]), c.coffer_key(kids[0]))
    with pytest.raises(ValueError, match="above the piece's amount"):
        t1.coffer(kids[0], world.org("BankA"), KEYS["BankA"].public_key, c.OfferKind.DISCOUNT, PIECES[0] + 1)
    # The opening sealed to a key that is not the offeree's.
    r = t1.coffer(kids[0], world.org("Tier2"), KEYS["Tier3"].public_key)
    assert r.code == FinanceReject.BAD_RECIPIENT
    # "price <= amount" proved for another piece's amount (the other child's, larger).
    other = t1.opening(kids[1])
    nonce = chain.nonce(KEYS["Tier1"].public_key)
    args = (chain.config.chain_id, KEYS["Tier1"].public_key, world.org("Tier1"), nonce, vid)
    tx, _ = cf.coffer(
        *args, kids[0], other, world.org("BankA"), KEYS["BankA"].public_key, REGULATOR.public,
        c.OfferKind.DISCOUNT, PIECES[1] - 1,
    )  # fmt: skip
    assert _submit(chain, KEYS["Tier1"], tx) == Reject.BAD_PAYLOAD
    # A plaintext offer of a confidential piece.
    assert t1.transfer(kids[0], world.org("Tier2")).code == FinanceReject.CONFIDENTIAL_PIECE
    assert _state(fin, c.piece_key(kids[0]), c.coffer_key(kids[0])) == before


def test_a_defaulted_confidential_pledge_gives_the_lender_the_piece():
    ledger = MemLedger(config())
    fin = Finance(ledger, SECRET)
    w = _world(fin)
    vid = _cconfirm(w).id
    t1, bank = w.p["Tier1"], w.p["BankA"]
    due = ledger.timestamp_ms + 1000
    assert t1.coffer(vid, w.org("BankA"), KEYS["BankA"].public_key, c.OfferKind.PLEDGE, 10, due).ok
    assert bank.accept(vid).ok
    assert bank.default_transfer(vid).code == FinanceReject.LOAN_NOT_DUE
    ledger.timestamp_ms = due
    assert bank.default_transfer(vid).ok
    assert fin.piece(vid).state == c.PieceState.FINANCED and fin.piece(vid).holder == w.org("BankA")
    assert bank.opening(vid).amount == FACE and t1.opening(vid) is None


def test_a_confidential_only_chain_has_no_op_that_puts_an_amount_in_the_clear(tmp_path):
    cfg = config(apps=("accounts", "xshard", "finance_confidential"))
    with Chain(tmp_path / "c", cfg, NODE) as chain:
        fin = Finance(chain, SECRET)
        w = _world(fin)
        assert _cconfirm(w).ok
        docs = _docs(w, b"plain")
        assert w.p["CoreCo"].confirm(w.org("Tier1"), FACE, MATURITY, docs).code == Reject.UNKNOWN_OP
        order = fin.blind("purchase order", b"PO-1")
        assert w.p["Depot"].reg_asset(order, 1000).code == Reject.UNKNOWN_OP
        assert w.p["Depot"].creg_asset(order, 1000, KEYS["Tier1"].public_key).ok
    assert verify_chain(tmp_path / "c").ok


def test_no_amount_is_in_the_clear_anywhere_after_a_whole_lifecycle(tmp_path):
    """Issue, split, transfer, discount, a registry financing, settlement: then every byte of
    the database (blocks, receipts, state, indexes) is searched for every amount."""
    import time

    with Chain(tmp_path / "c", config(), NODE) as chain:
        fin = Finance(chain, SECRET)
        w = _world(fin)
        t1, t2, bank, core = w.p["Tier1"], w.p["Tier2"], w.p["BankA"], w.p["CoreCo"]
        maturity = int(time.time() * 1000) + 2500
        vid = core.cconfirm(w.org("Tier1"), FACE, maturity, _docs(w, b"all"), KEYS["Tier1"].public_key).id
        a, b = t1.csplit(vid, PIECES).ids
        assert t1.coffer(a, w.org("Tier2"), KEYS["Tier2"].public_key).ok and t2.accept(a).ok
        price = PIECES[1] - 0x0123_4567
        assert t1.coffer(b, w.org("BankA"), KEYS["BankA"].public_key, c.OfferKind.DISCOUNT, price).ok
        assert bank.accept(b).ok
        order, loan = fin.blind("purchase order", b"PO-9"), 0x0007_6543_2109
        assert w.p["Depot"].creg_asset(order, 3 * loan, KEYS["Tier1"].public_key).ok
        book = cregistry.OwnerBook(t1.asset_opening(order))
        package, _ = t1.finance_package(KEYS["BankA"].public_key, order, b"r", loan, book)
        assert bank.creg_finance(package).ok
        # The control: a plaintext voucher's face, which the scan must find.
        control = 0x0BAD_F00D_1234
        assert core.confirm(w.org("Tier1"), control, maturity, _docs(w, b"control")).ok
        time.sleep(max(0.0, (maturity - time.time() * 1000) / 1000) + 0.05)
        assert all(r.ok for r in core.settle(vid))
        assert fin.voucher(vid).status == c.VoucherStatus.SETTLED
    assert verify_chain(tmp_path / "c").ok
    amounts = (FACE, *PIECES, price, 3 * loan, loan)
    needles = [struct.pack("<Q", v) for v in amounts] + [str(v).encode() for v in amounts]
    found_control = False
    for f in (tmp_path / "c").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not [n for n in needles if n in data], f
            found_control |= struct.pack("<Q", control) in data
    assert found_control  # the scan does find an amount in the clear


def test_a_confidential_vouchers_asset_is_financed_through_its_pieces_only(chain, world):
    """A direct financing's proof cannot see the pieces' hidden financings, so together they
    could exceed the face: a voucher's asset refuses direct financings (VOUCHER_ASSET)."""
    fin, t1, bank = world.fin, world.p["Tier1"], world.p["BankA"]
    vid = _cconfirm(world).id
    blinded = fin.voucher(vid).blinded
    assert t1.asset_opening(blinded) is None  # a voucher's face opening is the piece's, not the asset's
    book = cregistry.OwnerBook(t1.opening(vid))  # the beneficiary knows the face, and could prove...
    package, _ = t1.finance_package(KEYS["BankA"].public_key, blinded, b"direct", FACE, book)
    before = fin.centry(blinded)
    assert bank.creg_finance(package).code == FinanceReject.VOUCHER_ASSET  # ...but may not
    assert fin.centry(blinded) == before and before.voucher


def test_an_offeree_checks_the_openings_before_it_accepts(chain, world):
    fin, t1, t2 = world.fin, world.p["Tier1"], world.p["Tier2"]
    vid = _cconfirm(world).id
    # The offerer seals a wrong opening (another amount): the offeree's client refuses to
    # accept, and the piece stays with the offerer until the offer is returned.
    wrong = dataclasses.replace(t1.opening(vid), amount=FACE - 1)
    assert t1.coffer(vid, world.org("Tier2"), KEYS["Tier2"].public_key, opening=wrong).ok
    with pytest.raises(ValueError, match="does not open the piece"):
        t2.accept(vid)
    assert fin.piece(vid).state == c.PieceState.OFFERED and fin.piece(vid).holder == world.org("Tier1")
    assert t2.return_offer(vid).ok
    r = t1.coffer(vid, world.org("BankA"), KEYS["BankA"].public_key, c.OfferKind.DISCOUNT, 1000)
    piece, price = world.p["BankA"].offer_openings(vid)
    assert (piece.amount, price.amount) == (FACE, 1000) == (FACE, r.openings[0].amount)


def test_a_sealed_opening_that_is_garbage_opens_nothing():
    """What a dishonest sender may seal (a non-canonical scalar, the wrong amount) is not an
    opening of the commitments: ``matches`` says no, it does not raise."""
    good = ca.fresh_opening(FACE)
    limbs = tuple(conf.commit(v, r) for v, r in zip(good.limbs, (good.r_lo, good.r_hi), strict=True))
    assert good.matches(limbs)
    assert not dataclasses.replace(good, r_lo=b"\xff" * 32).matches(limbs)
    assert not dataclasses.replace(good, amount=FACE + 1).matches(limbs)
    sealed = ca.seal(dataclasses.replace(good, r_hi=b"\xff" * 32), KEYS["Tier1"].public_key)
    assert not ca.unseal(sealed, KEYS["Tier1"].seed).matches(limbs)
    assert ca.unseal(sealed, KEYS["Tier2"].seed) is None  # sealed to another key


def test_more_proofs_than_one_native_batch_takes_are_checked_in_parts(monkeypatch):
    """A batch of up to limits.batch_txs_max transactions can carry more proofs than one
    native call takes (conf.MAX_BATCH): verify_rows splits them, verdicts unchanged."""
    monkeypatch.setattr(conf, "MAX_BATCH", 3)
    sizes: list[int] = []
    for name in ("verify_range_batch", "verify_validity_batch"):
        real = getattr(conf, name)
        monkeypatch.setattr(
            conf, name, lambda proofs, *rest, _real=real: (sizes.append(len(proofs)), _real(proofs, *rest))[1]
        )
    ctx = ca.context(9, KEYS["Tier1"].public_key, 0, c.OP_CSPLIT)
    openings = [ca.fresh_opening(v) for v in (1, 2**40, 3)]
    cams = tuple(ca.make(o, REGULATOR.public, ctx) for o in openings)
    rows = [
        ca.ProofRow(ctx, REGULATOR.public, cams[i : i + 1], tuple(ca.prove_ranges(openings[i : i + 1], ctx)))
        for i in range(3)
    ]
    bad = dataclasses.replace(rows[1], ctx=b"another transaction")
    assert ca.verify_rows([rows[0], rows[1], rows[2], bad, None]) == [True, True, True, False, False]
    assert max(sizes) == 3 and sum(sizes) == 4 + 8  # 4 range proofs, 8 validity proofs, in parts
