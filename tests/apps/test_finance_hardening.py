"""Issue 14, item 6: the finance defects, each pinned by a test that failed before the fix.

Runs on ``MemLedger`` (the real executor over a dict, with a settable block time), so a
role change between an offer and its acceptance is two blocks and no wall-clock wait.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from finance_world import KEYS, NODE, ORG, SECRET, MemLedger, World, admit_all, config, issue_voucher
from tierchain.apps.finance import DocType, PieceState, VoucherStatus, registry
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject
from tierchain.errors import Reject

MATURITY_MS = 2_000_000  # MemLedger's clock starts at 1_000_000


@pytest.fixture
def led() -> MemLedger:
    return MemLedger(config())


@pytest.fixture
def w(led) -> World:
    return admit_all(Finance(led, SECRET))


def unchanged(led: MemLedger, attempt, code: Reject) -> None:
    """``attempt`` is refused with ``code`` and changes no state but the sender's nonce."""
    before = {k: v for k, v in led.state.items() if not k.startswith(b"\x00")}
    result = attempt()
    assert result.code == code, (result.code, code)
    assert {k: v for k, v in led.state.items() if not k.startswith(b"\x00")} == before


def set_roles(w: World, org: str, roles: tuple[str, ...]) -> None:
    assert w.fin.party(NODE).propose_roles(ORG[org], roles).ok  # threshold 1: executes at once


# --- the consortium secret ------------------------------------------------------------------


def test_blinding_without_a_consortium_secret_is_refused(led, w):
    for secret in (None, b"", b"short secret"):  # absent, empty, guessable
        with pytest.raises(registry.ConsortiumSecretError, match="consortium secret"):
            registry.blind_invoice(secret, bytes(32))
        with pytest.raises(registry.ConsortiumSecretError):
            registry.blind(secret, "purchase order", b"PO-1")
    no_secret = Finance(led)  # reading needs no secret; blinding does
    with pytest.raises(registry.ConsortiumSecretError):
        no_secret.blind_invoice(bytes(32))
    t1 = w.p["Tier1"]
    inv = t1.anchor(DocType.INVOICE, b"invoice without secret").check().id
    before = dict(led.state)
    with pytest.raises(registry.ConsortiumSecretError):  # refused before anything is signed or sent
        no_secret.party(KEYS["CoreCo"]).confirm(ORG["Tier1"], 1_000, MATURITY_MS, [(DocType.INVOICE, inv)])
    assert led.state == before
    # two members with the same configured secret compute the same fingerprint
    assert Finance(led, SECRET).blind_invoice(inv) == registry.blind_invoice(bytes(SECRET), inv)


# --- roles are checked at every step that relies on them -------------------------------------------


def test_a_bank_whose_role_was_removed_after_the_offer_cannot_accept_a_discount(led, w):
    vid, _ = issue_voucher(w, 100_000, MATURITY_MS)
    assert w.p["Tier1"].discount(vid, ORG["BankA"], 95_000).ok
    set_roles(w, "BankA", ("investor",))
    unchanged(led, lambda: w.p["BankA"].accept(vid), FinanceReject.ROLE_MISSING)
    assert w.fin.piece(vid).state == PieceState.OFFERED and w.fin.fits(w.fin.voucher(vid).blinded, 100_000)
    set_roles(w, "BankA", ("bank",))  # restored: the same offer can complete
    assert w.p["BankA"].accept(vid).ok and w.fin.piece(vid).state == PieceState.FINANCED


def test_pledge_and_transfer_accepts_recheck_the_offerees_role(led, w):
    vid, _ = issue_voucher(w, 100_000, MATURITY_MS)
    a, b = w.p["Tier1"].split(vid, [50_000, 50_000]).check().ids
    assert w.p["Tier1"].pledge(a, ORG["BankB"], 40_000, 1_500_000).ok
    assert w.p["Tier1"].transfer(b, ORG["Tier2"]).ok
    set_roles(w, "BankB", ())
    set_roles(w, "Tier2", ("investor",))
    unchanged(led, lambda: w.p["BankB"].accept(a), FinanceReject.ROLE_MISSING)
    unchanged(led, lambda: w.p["Tier2"].accept(b), FinanceReject.ROLE_MISSING)
    assert w.p["Tier1"].return_offer(b).ok  # unwinding needs no role


def test_unwinding_and_paying_need_no_role_but_taking_a_default_does(led, w):
    vid, _ = issue_voucher(w, 120_000, MATURITY_MS)
    a, b, _ = w.p["Tier1"].split(vid, [50_000, 50_000, 20_000]).check().ids
    for piece in (a, b):
        assert (
            w.p["Tier1"].pledge(piece, ORG["BankA"], 40_000, 1_500_000).ok and w.p["BankA"].accept(piece).ok
        )
    blinded = w.fin.voucher(vid).blinded
    assert w.p["BankA"].reg_finance(blinded, 10_000, b"direct").ok
    set_roles(w, "BankA", ("investor",))
    led.timestamp_ms = 1_600_000  # both loans are due
    unchanged(led, lambda: w.p["BankA"].default_transfer(a), FinanceReject.ROLE_MISSING)
    assert w.p["BankA"].release(b).ok  # a former bank can still free the pledgor's piece
    assert w.p["BankA"].reg_release(blinded, b"direct").ok  # ... and give back counted room
    assert w.fin.fits(blinded, 70_000) and not w.fin.fits(blinded, 70_001)  # only `a` (50k) counted
    set_roles(w, "CoreCo", ("investor",))
    led.timestamp_ms = MATURITY_MS
    assert [r.code for r in w.p["CoreCo"].settle(vid)] == [Reject.OK]  # the obligor still pays
    assert w.fin.voucher(vid).status == VoucherStatus.SETTLED
    paid = {org: amount for _, org, amount in w.fin.clearing(vid, 0) if org == ORG["BankA"]}
    assert paid == {ORG["BankA"]: 40_000}  # the former bank, lender of `a`, is paid its loan first


# --- confirm: the invoice must come from a party to the receivable ------------------------------------


def test_confirm_refuses_an_invoice_or_contract_anchored_by_a_third_party(led, w):
    core, t1, t2 = w.p["CoreCo"], w.p["Tier1"], w.p["Tier2"]
    foreign_inv = t2.anchor(DocType.INVOICE, b"Tier2's invoice").check().id
    own_inv = t1.anchor(DocType.INVOICE, b"Tier1's invoice").check().id
    foreign_con = t2.anchor(DocType.CONTRACT, b"Tier2's contract").check().id

    def confirm(*docs):
        return lambda: core.confirm(ORG["Tier1"], 10_000, MATURITY_MS, list(docs))

    unchanged(led, confirm((DocType.INVOICE, foreign_inv)), FinanceReject.DOC_NOT_FROM_PARTY)
    unchanged(
        led,
        confirm((DocType.INVOICE, own_inv), (DocType.CONTRACT, foreign_con)),
        FinanceReject.DOC_NOT_FROM_PARTY,
    )
    waybill = t2.anchor(DocType.WAYBILL, b"carrier's waybill").check().id  # a third party's by nature
    assert confirm((DocType.INVOICE, own_inv), (DocType.WAYBILL, waybill))().ok
    obligors = core.anchor(DocType.INVOICE, b"CoreCo's own invoice record").check().id
    assert confirm((DocType.INVOICE, obligors))().ok  # the obligor is a party too


# --- lineage shows real amounts -----------------------------------------------------------------------


def test_lineage_shows_piece_amounts_and_prices(led, w):
    vid, _ = issue_voucher(w, 90_000, MATURITY_MS)
    a, b, _ = w.p["Tier1"].split(vid, [30_000, 30_000, 30_000]).check().ids
    assert w.p["Tier1"].transfer(a, ORG["Tier2"]).ok and w.p["Tier2"].accept(a).ok
    assert w.p["Tier1"].discount(b, ORG["BankA"], 29_000).ok and w.p["BankA"].accept(b).ok
    root = w.fin.lineage(vid)["piece"]["history"]
    assert [(e["event"], e["amount"]) for e in root] == [("ISSUED", 90_000), ("SPLIT", 90_000)]
    assert root[1]["ways"] == 3
    moved = w.fin.lineage(a)["piece"]["history"]
    assert [(e["event"], e["amount"], e.get("price")) for e in moved] == [
        ("CREATED_BY_SPLIT", 30_000, None),
        ("OFFERED", 30_000, None),  # a transfer offer has no price
        ("ACCEPTED", 30_000, None),
    ]
    sold = w.fin.lineage(b)["piece"]["history"]
    assert [(e["event"], e["amount"], e.get("price")) for e in sold][1:] == [
        ("OFFERED", 30_000, 29_000),
        ("DISCOUNTED", 30_000, 29_000),
    ]


# --- docs ---------------------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_finance_code_is_in_the_docs_table():
    text = (DOCS / "finance.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", text, re.MULTILINE))
    finance_codes = {str(int(code)): code.name for code in FinanceReject}
    assert "106" in finance_codes and finance_codes["106"] == "NO_SUCH_ORG"
    assert {k: v for k, v in rows.items() if 96 <= int(k) <= 159} == finance_codes


def op_row(op: str) -> str:
    """The row of ``op`` (e.g. ``fin.confirm``) in docs/finance.md's ops table."""
    rows = [line for line in (DOCS / "finance.md").read_text().splitlines() if f"| `{op}` (" in line]
    assert len(rows) == 1, op
    return rows[0]


def test_codes_the_ops_return_are_in_their_rows(led, w):
    """Refusals observed here, each looked up in its op's documented codes."""
    nobody = c.org_id("Nobody Ltd")
    t1, core = w.p["Tier1"], w.p["CoreCo"]
    inv = t1.anchor(DocType.INVOICE, b"an invoice").check().id
    seen = [
        ("fin.confirm", core.confirm(nobody, 1_000, MATURITY_MS, [(DocType.INVOICE, inv)]).code),
        ("fin.confirm", core.confirm(ORG["Tier2"], 1_000, MATURITY_MS, [(DocType.INVOICE, inv)]).code),
    ]
    vid, _ = issue_voucher(w, 10_000, MATURITY_MS)
    seen.append(("fin.offer", t1.transfer(vid, nobody).code))
    assert t1.discount(vid, ORG["BankA"], 9_000).ok
    set_roles(w, "BankA", ("investor",))
    seen.append(("fin.accept", w.p["BankA"].accept(vid).code))
    assert [code for _, code in seen] == [
        FinanceReject.NO_SUCH_ORG,
        FinanceReject.DOC_NOT_FROM_PARTY,
        FinanceReject.NO_SUCH_ORG,
        FinanceReject.ROLE_MISSING,
    ]
    for op, code in seen:
        assert f"`{code.name}`" in op_row(op), (op, code.name)


def test_the_worked_example_runs(capsys):
    import runpy

    runpy.run_path(str(DOCS / "finance_example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "NOT_HOLDER" in out and "PIECE_LOCKED" in out and "DOC_NOT_FROM_PARTY" in out
    assert "clearing batch 0: Tier1 600000, Tier2 250000, BankA 150000" in out
    assert "ancestors: 2, state SETTLED, holder BankA" in out
