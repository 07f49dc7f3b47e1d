"""``tierchain tradefin ...``: trade-finance messages from the command line (docs/finance_tradefin.md).

Letters of credit (``lc-apply``, ``lc-issue``, ``lc-cancel``, ``lc-advise``, ``lc-amend``,
``lc-amend-reply``, ``lc-present``, ``lc-check``, ``lc-waive``, ``lc-accept``, ``lc-refuse``,
``lc-pay``, ``lc-close``, ``lc-show``), guarantees (``g-issue``, ``g-claim``, ``g-pay``,
``g-reject``, ``g-release``, ``g-show``), factoring (``f-assign``, ``f-accept``, ``f-decline``,
``f-ack``, ``f-pay``, ``f-default``, ``f-recourse``, ``f-repurchase``, ``f-show``) and
forfaiting (``w-offer-drawing``, ``w-offer-bill``, ``w-accept``, ``w-decline``, ``w-settle``,
``w-show``) against a node running the ``tradefin`` app (``tierchain init --app tradefin``).

The connection options (``--node``, ``--key``, ``--chain-id``, ``--passphrase-env``,
``--wait``) come before the command name, as for ``tierchain finance``. Write commands
sign with ``--key``; the ``*-show`` commands need no key and print the penetration views
(an LC's whole history, a receivable's assignment chain). Organizations are named by name
or by 32-hex id; times are ISO 8601 or Unix ms; a step's document is ``--document FILE``
(fingerprinted with the chain's suite) or ``--fingerprint HEX``.

Errors, as in ``tierchain finance``: a bad argument (malformed input, an id or organization
the ledger does not know) prints one line on stderr and exits 2; a refusal by the ledger
prints one line naming the code and exits 1; so does an unreachable node or a key file that
does not open. Nothing prints a traceback. Results are JSON on stdout.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.client import Result, Terms, TradeFin, TradeParty
from tierchain.cli import remote
from tierchain.cli.finance import OrgRef
from tierchain.cli.remote import Until, choice, fail, known, outcome, print_json
from tierchain.cli.types import HexBytes

ID = HexBytes(c.id_bytes, "an id", "id")
FP = HexBytes(32, "a fingerprint", "fingerprint")


class ForfaitRef(click.ParamType):
    """A forfaiting: its id (66 hex digits, as printed), a bill's fingerprint (64 hex digits),
    or an LC drawing as ``LC_ID:INDEX``."""

    name = "forfait"

    def convert(self, value: Any, param: Any, ctx: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        lc, sep, index = value.partition(":")
        if sep:
            if not index.isdigit() or int(index) > 254:
                self.fail(f"{value!r}: an LC drawing is LC_ID:INDEX (index 0..254)", param, ctx)
            return c.drawing_forfait_id(ID.convert(lc, param, ctx), int(index))
        text = value[2:] if value.startswith(("0x", "0X")) else value
        if len(text) == 64:
            return c.forfait_id(c.ForfaitKind.BILL, FP.convert(text, param, ctx))
        raw = HexBytes(c.forfait_id_bytes, "a forfait id").convert(value, param, ctx)
        if not c.valid_forfait_id(raw):
            self.fail(f"{value!r} is not a forfait id (kind byte, then the 32-byte reference)", param, ctx)
        return raw


FORFAIT = ForfaitRef()
AMOUNT = click.IntRange(1, c.amount_max)
INDEX = click.IntRange(0, 254)
WHEN = Until()


@remote.group("tradefin")
def tradefin() -> None:
    """Trade-finance messages: letters of credit, guarantees, factoring, forfaiting."""


def _tf(ctx: click.Context) -> TradeFin:
    return remote.client(ctx, TradeFin)


def _party(ctx: click.Context) -> TradeParty:
    return remote.party(ctx, TradeFin)


def _report(r: Result, what: str) -> None:
    """JSON of the result on stdout; a refusal is one line on stderr and exit code 1."""
    made = {"id": r.id} if r.id is not None else {}
    if r.index is not None:
        made["index"] = r.index
    if r.fingerprint is not None:
        made["invoice"] = r.fingerprint
    outcome(r, what, **made)


def _show(value: Any, what: str, ident: bytes) -> None:
    print_json(known(value, what, ident))


def document(f: Callable) -> Callable:
    """``--document FILE`` or ``--fingerprint HEX``: the step's document, passed as ``fp``."""

    @click.option("--document", "doc_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
    @click.option("--fingerprint", "doc_fp", type=FP, help="The document's fingerprint (hex).")
    @functools.wraps(f)
    def wrapper(*args: Any, doc_file: Path | None, doc_fp: bytes | None, **kw: Any) -> Any:
        if doc_file is not None and doc_fp is not None:
            fail("give --document or --fingerprint, not both")
        ctx = click.get_current_context()
        remote.key_path(ctx)
        fp = doc_fp or bytes(32)
        if doc_file is not None:
            fp = _tf(ctx).document_fingerprint(doc_file.read_bytes())
        return f(*args, fp=fp, **kw)

    return wrapper


# --- letters of credit ----------------------------------------------------------------------------


@tradefin.command("lc-apply")
@click.argument("issuer", type=OrgRef())
@click.argument("advising", type=OrgRef())
@click.argument("beneficiary", type=OrgRef())
@click.option("--amount", type=AMOUNT, required=True, help="Minor units.")
@click.option("--tolerance-bps", type=click.IntRange(0, c.tolerance_bps_max), default=0, show_default=True)
@click.option("--expiry", type=WHEN, required=True)
@click.option("--latest-shipment", type=WHEN, required=True)
@click.option(
    "--doc",
    "docs",
    type=choice(c.DocType),
    multiple=True,
    required=True,
    help="A document type called for (repeatable).",
)
@click.option(
    "--presentation-days", type=click.IntRange(1, c.presentation_days_max), default=15, show_default=True
)
@click.option(
    "--usance-days", type=click.IntRange(0, c.usance_days_max), default=0, show_default=True, help="0: sight."
)
@click.option("--presentations", type=click.IntRange(1, c.presentations_max), default=1, show_default=True)
@click.option("--partial/--no-partial", default=False, show_default=True, help="Partial drawings allowed.")
@document
@click.pass_context
def lc_apply(ctx, issuer, advising, beneficiary, amount, tolerance_bps, expiry, latest_shipment, docs,
             presentation_days, usance_days, presentations, partial, fp) -> None:  # fmt: skip
    """Applicant: apply for an LC (the document: the signed application)."""
    if latest_shipment > expiry:
        fail("--latest-shipment is after --expiry")
    org = functools.partial(remote.org, ctx)
    terms = Terms(
        org(issuer), org(advising), org(beneficiary), amount, expiry, latest_shipment,
        tuple(c.DocType[d.upper()] for d in docs), tolerance_bps, presentation_days, usance_days,
        presentations, partial,
    )  # fmt: skip
    _report(_party(ctx).apply(terms, fp), "lc-apply")


def _lc(ctx: click.Context, lc_id: bytes) -> None:
    remote.key_path(ctx)
    known(_tf(ctx).lc(lc_id), "letter of credit", lc_id)


def _lc_step(name: str, method: str, help_text: str) -> None:
    @tradefin.command(name, help=help_text)
    @click.argument("lc", type=ID)
    @document
    @click.pass_context
    def command(ctx, lc: bytes, fp: bytes) -> None:
        _lc(ctx, lc)
        _report(getattr(_party(ctx), method)(lc, fp), name)


_lc_step("lc-issue", "issue", "Issuing bank: open the LC applied for (the document: the LC text).")
_lc_step("lc-cancel", "cancel", "Before issuance: the applicant withdraws, or the issuing bank declines.")
_lc_step("lc-advise", "advise", "Advising bank: advise the LC to the beneficiary.")
_lc_step("lc-close", "close", "Beneficiary (renounce) or issuing bank (expired or exhausted): close the LC.")


def _drawing_step(name: str, method: str, help_text: str) -> None:
    @tradefin.command(name, help=help_text)
    @click.argument("lc", type=ID)
    @click.argument("index", type=INDEX)
    @document
    @click.pass_context
    def command(ctx, lc: bytes, index: int, fp: bytes) -> None:
        _lc(ctx, lc)
        _report(getattr(_party(ctx), method)(lc, index, fp), name)


_drawing_step("lc-waive", "waive", "Applicant: waive presentation INDEX's discrepancies.")
_drawing_step("lc-accept", "accept", "Issuing bank: honour presentation INDEX.")
_drawing_step("lc-pay", "pay", "Issuing bank: pay accepted drawing INDEX at maturity.")


@tradefin.command("lc-amend")
@click.argument("lc", type=ID)
@click.option("--amount", type=AMOUNT)
@click.option("--expiry", type=WHEN)
@click.option("--latest-shipment", type=WHEN)
@document
@click.pass_context
def lc_amend(ctx, lc: bytes, amount, expiry, latest_shipment, fp: bytes) -> None:
    """Issuing bank: propose new terms (unnamed ones stay)."""
    if amount is None and expiry is None and latest_shipment is None:
        fail("name at least one of --amount, --expiry, --latest-shipment")
    _lc(ctx, lc)
    r = _party(ctx).amend(lc, amount=amount, expiry_ms=expiry, latest_shipment_ms=latest_shipment, fp=fp)
    _report(r, "lc-amend")


@tradefin.command("lc-amend-reply")
@click.argument("lc", type=ID)
@click.option("--answer", type=click.Choice(["accept", "reject"]), required=True)
@click.pass_context
def lc_amend_reply(ctx, lc: bytes, answer: str) -> None:
    """Beneficiary: accept or reject the pending amendment."""
    _lc(ctx, lc)
    _report(_party(ctx).reply_amendment(lc, answer == "accept"), "lc-amend-reply")


class TypedDoc(click.ParamType):
    """``TYPE=FILE`` (the file's fingerprint) or ``TYPE:FINGERPRINT_HEX``."""

    name = "type=file|type:fingerprint"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, Path | bytes]:
        if isinstance(value, tuple):
            return value
        for sep in ("=", ":"):
            kind, found, rest = value.partition(sep)
            if found and kind.upper() in c.DocType.__members__:
                if sep == ":":
                    return c.DocType[kind.upper()], FP.convert(rest, param, ctx)
                path = Path(rest)
                if not path.is_file():
                    self.fail(f"no file {rest!r}", param, ctx)
                return c.DocType[kind.upper()], path
        types = ", ".join(t.name.lower() for t in c.DocType)
        self.fail(f"{value!r} is not TYPE=FILE or TYPE:FINGERPRINT (TYPE: {types})", param, ctx)


@tradefin.command("lc-present")
@click.argument("lc", type=ID)
@click.option("--amount", type=AMOUNT, required=True)
@click.option("--shipment", type=WHEN, required=True, help="The transport document's date.")
@click.option("--doc", "docs", type=TypedDoc(), multiple=True, required=True, help="A document (repeatable).")
@click.pass_context
def lc_present(ctx, lc: bytes, amount: int, shipment: int, docs) -> None:
    """Beneficiary: present documents drawing AMOUNT."""
    if len(docs) > c.docs_per_presentation_max:
        fail(f"at most {c.docs_per_presentation_max} documents")
    _lc(ctx, lc)
    tf = _tf(ctx)
    typed = [(t, d if isinstance(d, bytes) else tf.document_fingerprint(d.read_bytes())) for t, d in docs]
    if len({fp for _, fp in typed}) != len(typed):
        fail("the same document twice")
    _report(_party(ctx).present(lc, amount, shipment, typed), "lc-present")


@tradefin.command("lc-check")
@click.argument("lc", type=ID)
@click.argument("index", type=INDEX)
@click.option("--compliant", is_flag=True)
@click.option("--discrepancy", "found", type=choice(c.Discrepancy), multiple=True, help="Repeatable.")
@document
@click.pass_context
def lc_check(ctx, lc: bytes, index: int, compliant: bool, found, fp: bytes) -> None:
    """Nominated or issuing bank: --compliant, or --discrepancy NAME ... ."""
    if compliant == bool(found):
        fail("give --compliant or at least one --discrepancy (not both)")
    _lc(ctx, lc)
    bits = [c.Discrepancy[d.upper()] for d in found]
    _report(_party(ctx).check(lc, index, compliant, bits, fp), "lc-check")


@tradefin.command("lc-refuse")
@click.argument("lc", type=ID)
@click.argument("index", type=INDEX)
@click.option("--reason", "reasons", type=choice(c.Discrepancy), multiple=True, required=True)
@document
@click.pass_context
def lc_refuse(ctx, lc: bytes, index: int, reasons, fp: bytes) -> None:
    """Issuing bank: refuse presentation INDEX, stating reasons among its findings."""
    _lc(ctx, lc)
    _report(_party(ctx).refuse(lc, index, [c.Discrepancy[r.upper()] for r in reasons], fp), "lc-refuse")


@tradefin.command("lc-show")
@click.argument("lc", type=ID)
@click.pass_context
def lc_show(ctx, lc: bytes) -> None:
    """An LC's whole history: terms, amounts, amendments, presentations, events."""
    _show(_tf(ctx).lc_history(lc), "letter of credit", lc)


# --- guarantees -----------------------------------------------------------------------------------


@tradefin.command("g-issue")
@click.argument("applicant", type=OrgRef())
@click.argument("beneficiary", type=OrgRef())
@click.option("--kind", type=choice(c.GuaranteeKind), required=True)
@click.option("--amount", type=AMOUNT, required=True)
@click.option("--expiry", type=WHEN, required=True)
@document
@click.pass_context
def g_issue(ctx, applicant, beneficiary, kind: str, amount: int, expiry: int, fp: bytes) -> None:
    """Guarantor bank: issue a guarantee."""
    kind_value = c.GuaranteeKind[kind.upper()]
    party = _party(ctx)
    r = party.issue_guarantee(
        remote.org(ctx, applicant), remote.org(ctx, beneficiary), kind_value, amount, expiry, fp
    )
    _report(r, "g-issue")


def _g(ctx: click.Context, gid: bytes) -> None:
    known(_tf(ctx).guarantee(gid), "guarantee", gid)


@tradefin.command("g-claim")
@click.argument("guarantee", type=ID)
@click.option("--amount", type=AMOUNT, required=True)
@document
@click.pass_context
def g_claim(ctx, guarantee: bytes, amount: int, fp: bytes) -> None:
    """Beneficiary: demand AMOUNT (the document: the demand; required)."""
    if fp == bytes(32):
        fail("a demand names its document: --document FILE or --fingerprint HEX")
    _g(ctx, guarantee)
    _report(_party(ctx).claim(guarantee, amount, fp), "g-claim")


def _g_step(name: str, method: str, help_text: str) -> None:
    @tradefin.command(name, help=help_text)
    @click.argument("guarantee", type=ID)
    @document
    @click.pass_context
    def command(ctx, guarantee: bytes, fp: bytes) -> None:
        _g(ctx, guarantee)
        _report(getattr(_party(ctx), method)(guarantee, fp), name)


_g_step("g-pay", "pay_claim", "Guarantor: pay the open demand.")
_g_step("g-release", "release_guarantee", "Beneficiary: release; guarantor: close after the expiry.")


@tradefin.command("g-reject")
@click.argument("guarantee", type=ID)
@click.option("--reason", "reasons", type=choice(c.ClaimRejection), multiple=True, required=True)
@document
@click.pass_context
def g_reject(ctx, guarantee: bytes, reasons, fp: bytes) -> None:
    """Guarantor: reject the open demand."""
    _g(ctx, guarantee)
    _report(
        _party(ctx).reject_claim(guarantee, [c.ClaimRejection[r.upper()] for r in reasons], fp), "g-reject"
    )


@tradefin.command("g-show")
@click.argument("guarantee", type=ID)
@click.pass_context
def g_show(ctx, guarantee: bytes) -> None:
    """A guarantee: amount, paid, open demand, history."""
    _show(_tf(ctx).guarantee_view(guarantee), "guarantee", guarantee)


# --- factoring --------------------------------------------------------------------------------------


@tradefin.command("f-assign")
@click.argument("invoice", type=FP)
@click.argument("debtor", type=OrgRef())
@click.argument("factor", type=OrgRef())
@click.option("--amount", type=AMOUNT, required=True)
@click.option("--due", type=WHEN, required=True)
@click.option("--advance", type=click.IntRange(0, c.amount_max), required=True, help="What the factor pays.")
@click.option("--recourse", type=click.Choice(["with", "without"]), required=True, help="Against the seller.")
@document
@click.pass_context
def f_assign(ctx, invoice: bytes, debtor, factor, amount, due, advance, recourse: str, fp: bytes) -> None:
    """Seller: offer the assignment of anchored INVOICE (fingerprint) to FACTOR (the document: the notice)."""
    if advance > amount:
        fail("--advance exceeds --amount")
    with_recourse = recourse == "with"
    r = _party(ctx).assign(
        invoice, remote.org(ctx, debtor), remote.org(ctx, factor), amount, due, advance, with_recourse, fp
    )
    _report(r, "f-assign")


def _f_step(name: str, method: str, help_text: str) -> None:
    @tradefin.command(name, help=help_text)
    @click.argument("invoice", type=FP)
    @document
    @click.pass_context
    def command(ctx, invoice: bytes, fp: bytes) -> None:
        known(_tf(ctx).receivable(invoice), "receivable", invoice)
        _report(getattr(_party(ctx), method)(invoice, fp), name)


_f_step("f-accept", "take_assignment", "Factor: take the offered assignment.")
_f_step("f-decline", "decline_assignment", "Factor declines, or seller withdraws, the open offer.")
_f_step("f-ack", "acknowledge", "Debtor: acknowledge the notice of assignment.")
_f_step("f-default", "declare_default", "Factor: declare the debtor's default.")
_f_step("f-recourse", "claim_recourse", "Factor: claim the outstanding amount from the seller.")
_f_step("f-repurchase", "repurchase", "Seller: pay the recourse claim.")


@tradefin.command("f-pay")
@click.argument("invoice", type=FP)
@click.option("--amount", type=AMOUNT, required=True)
@document
@click.pass_context
def f_pay(ctx, invoice: bytes, amount: int, fp: bytes) -> None:
    """Debtor: pay the factor."""
    known(_tf(ctx).receivable(invoice), "receivable", invoice)
    _report(_party(ctx).pay_receivable(invoice, amount, fp), "f-pay")


@tradefin.command("f-show")
@click.argument("invoice", type=FP)
@click.pass_context
def f_show(ctx, invoice: bytes) -> None:
    """A receivable's assignment chain: invoice anchor, offers, notice, payments, recourse."""
    _show(_tf(ctx).receivable_chain(invoice), "receivable", invoice)


# --- forfaiting ---------------------------------------------------------------------------------------


@tradefin.command("w-offer-drawing")
@click.argument("lc", type=ID)
@click.argument("index", type=INDEX)
@click.argument("forfaiter", type=OrgRef())
@click.option("--price", type=AMOUNT, required=True)
@document
@click.pass_context
def w_offer_drawing(ctx, lc: bytes, index: int, forfaiter, price: int, fp: bytes) -> None:
    """Beneficiary: offer accepted usance drawing INDEX to FORFAITER."""
    _lc(ctx, lc)
    _report(_party(ctx).forfait_drawing(lc, index, remote.org(ctx, forfaiter), price, fp), "w-offer-drawing")


@tradefin.command("w-offer-bill")
@click.argument("bill", type=FP)
@click.argument("forfaiter", type=OrgRef())
@click.argument("obligor", type=OrgRef())
@click.option("--face", type=AMOUNT, required=True)
@click.option("--maturity", type=WHEN, required=True)
@click.option("--price", type=AMOUNT, required=True)
@document
@click.pass_context
def w_offer_bill(
    ctx, bill: bytes, forfaiter, obligor, face: int, maturity: int, price: int, fp: bytes
) -> None:
    """Holder: offer BILL (its fingerprint) to FORFAITER."""
    if price > face:
        fail("--price exceeds --face")
    r = _party(ctx).forfait_bill(
        bill, remote.org(ctx, forfaiter), remote.org(ctx, obligor), face, maturity, price, fp
    )
    _report(r, "w-offer-bill")


def _w_step(name: str, method: str, help_text: str) -> None:
    @tradefin.command(name, help=help_text)
    @click.argument("forfait", type=FORFAIT)
    @document
    @click.pass_context
    def command(ctx, forfait: bytes, fp: bytes) -> None:
        known(_tf(ctx).forfait(forfait), "forfaiting", forfait)
        _report(getattr(_party(ctx), method)(forfait, fp), name)


_w_step("w-accept", "buy_forfait", "Forfaiter: buy the offered instrument without recourse.")
_w_step("w-decline", "decline_forfait", "Forfaiter declines, or the holder withdraws, the offer.")
_w_step("w-settle", "settle_forfait", "Forfaiter: a bill's payment at maturity.")


@tradefin.command("w-show")
@click.argument("forfait", type=FORFAIT)
@click.pass_context
def w_show(ctx, forfait: bytes) -> None:
    """A forfaiting (id, bill fingerprint, or LC_ID:INDEX): instrument, parties, price, history."""
    _show(_tf(ctx).forfait_view(forfait), "forfaiting", forfait)
