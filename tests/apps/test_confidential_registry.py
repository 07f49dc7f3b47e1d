"""The confidential duplicate-financing registry (tierchain.apps.finance.cregistry;
docs/privacy.md "Cross-verification"): the source articles' example — an order of 10M,
5M pledged at bank A, then 7M asked of bank B — where bank B learns only that it does not
fit, and every forged, stale or replayed proof is refused with nothing changed."""

from __future__ import annotations

import dataclasses

import pytest

from finance_world import KEYS, NODE, SECRET, admit_all, config
from tierchain.apps.finance import camount as ca
from tierchain.apps.finance import codes as c
from tierchain.apps.finance import cregistry as cr
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject
from tierchain.crypto import confidential as conf
from tierchain.engine.chain import Chain
from tierchain.errors import Reject

REGULATOR = conf.elgamal_keypair(b"regulator seed for tests".ljust(32, b"\0"))
M = 1_000_000_00  # a million, in minor units


@pytest.fixture
def world(tmp_path):
    with Chain(tmp_path / "chain", config(), NODE) as chain:
        fin = Finance(chain, SECRET)
        w = admit_all(fin)
        assert fin.party(NODE).propose_regulator_key(REGULATOR.public).ok
        order = fin.blind("purchase order", b"PO-2026-0042")
        r = w.p["Depot"].creg_asset(order, 10 * M, KEYS["Tier1"].public_key)  # the warehouse attests
        assert r.ok, r.code
        yield fin, w, order


def test_ten_million_pledged_five_at_bank_a_then_seven_asked_of_bank_b(world):
    fin, w, order = world
    owner, bank_a, bank_b = w.p["Tier1"], w.p["BankA"], w.p["BankB"]
    book = cr.OwnerBook(owner.asset_opening(order))
    assert book.value.amount == 10 * M
    assert bank_a.asset_opening(order) is None  # the value is the owner's to know
    package, opening = owner.finance_package(KEYS["BankA"].public_key, order, b"loan A", 5 * M, book)
    assert bank_a.creg_finance(package).ok
    book.financings[b"loan A"] = opening
    # Bank B asks for 7M: no proof exists, so there is nothing to submit. B learns "no".
    with pytest.raises(ValueError, match="does not fit"):
        owner.finance_package(KEYS["BankB"].public_key, order, b"loan B", 7 * M, book)
    # 5M fits exactly; a further 1 does not.
    package, opening = owner.finance_package(KEYS["BankB"].public_key, order, b"loan B", 5 * M, book)
    assert bank_b.creg_finance(package).ok
    book.financings[b"loan B"] = opening
    with pytest.raises(ValueError, match="does not fit"):
        owner.finance_package(KEYS["BankB"].public_key, order, b"loan C", 1, book)
    # The registry holds commitments only; the regulator reads each bank's amount.
    entry = fin.centry(order)
    assert entry.financed == conf.commit(10 * M, book.financed()[1])  # the owner's book opens it
    ref_a = c.financing_key(c.financing_ref_digest(order, w.org("BankA"), b"loan A".ljust(32, b"\0")))
    assert ca.regulator_read(fin.get(ref_a), REGULATOR.secret) == 5 * M
    assert fin.get(c.registry_key(order)) is None  # nothing in the plaintext registry
    # Bank A is repaid and releases: room again for bank B's 7M... minus B's 5M: 5M fits.
    assert bank_a.creg_release(order, b"loan A").ok
    del book.financings[b"loan A"]
    package, _ = owner.finance_package(KEYS["BankB"].public_key, order, b"loan D", 5 * M, book)
    assert bank_b.creg_finance(package).ok


def _code(fin: Finance, party, payload: bytes) -> int:
    return int(party.creg_finance(payload).code)


def test_forged_stale_and_replayed_financings_are_refused_and_change_nothing(world):
    fin, w, order = world
    owner, bank_a, bank_b = w.p["Tier1"], w.p["BankA"], w.p["BankB"]
    book = cr.OwnerBook(owner.asset_opening(order))
    before = fin.centry(order)
    # A borrower that lies about the value (claims 20M) cannot make a proof the chain takes:
    # the remainder it proves is not the one the entry and the new amount give.
    liar = cr.OwnerBook(dataclasses.replace(book.value, amount=20 * M))
    with pytest.raises(ValueError, match="does not match"):
        owner.finance_package(KEYS["BankA"].public_key, order, b"x", 15 * M, liar)
    ctx = cr.finance_context(fin.ledger.chain_id, KEYS["BankA"].public_key, order, b"x".ljust(32, b"\0"))
    new = ca.fresh_opening(15 * M)
    cam = ca.make(new, REGULATOR.public, ctx)
    (limbs,) = ca.prove_ranges([new], ctx)
    r_rem = conf.opening_lincomb([book.value.opening, new.opening], [1, -1])
    forged_rem = conf.prove_range([5 * M], [r_rem], ctx, 64).proof  # 20M - 15M, a lie
    payload = cr._FINANCE.pack(
        order, b"x".ljust(32, b"\0"), REGULATOR.public, before.value_lo, before.value_hi, before.financed
    )
    payload += cam.encode() + ca.put_proof(limbs) + ca.put_proof(forged_rem)
    assert _code(fin, bank_a, payload) == Reject.BAD_PROOF
    # Another bank submitting bank A's package: the proofs are bound to bank A.
    good, good_opening = owner.finance_package(KEYS["BankA"].public_key, order, b"y", 3 * M, book)
    assert _code(fin, bank_b, good) == Reject.BAD_PROOF
    # A tampered new amount (its limb proof no longer holds).
    tampered = bytearray(good)
    tampered[cr._FINANCE.size + 5] ^= 1
    assert _code(fin, bank_a, bytes(tampered)) == Reject.BAD_PROOF
    assert fin.centry(order) == before
    # Two financings proved against the same entry: the second is stale once the first lands.
    other, _ = owner.finance_package(KEYS["BankB"].public_key, order, b"z", 3 * M, book)
    assert bank_a.creg_finance(good).ok
    book.financings[b"y"] = good_opening
    after_first = fin.centry(order)
    assert _code(fin, bank_b, other) == FinanceReject.STALE_REGISTRY
    assert fin.centry(order) == after_first
    # The same package again (same bank, same ref): the ref is used.
    assert _code(fin, bank_a, good) == Reject.BAD_PAYLOAD
    # Only a bank finances; only the bank that recorded a financing releases it.
    for_tier2, _ = owner.finance_package(KEYS["Tier2"].public_key, order, b"w", M, book)
    assert _code(fin, w.p["Tier2"], for_tier2) == FinanceReject.ROLE_MISSING
    assert bank_b.creg_release(order, b"y").code == FinanceReject.NO_SUCH_FINANCING
    assert fin.centry(order) == after_first


def test_registration_refusals(world):
    fin, w, order = world
    depot = w.p["Depot"]
    assert depot.creg_asset(order, M, KEYS["Tier1"].public_key).code == FinanceReject.ASSET_EXISTS
    other = fin.blind("purchase order", b"PO-2026-0043")
    assert w.p["BankA"].creg_asset(other, M, KEYS["Tier1"].public_key).code == FinanceReject.ROLE_MISSING
    stranger = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert depot.creg_asset(other, M, stranger).code == FinanceReject.BAD_RECIPIENT
    assert fin.centry(other) is None
