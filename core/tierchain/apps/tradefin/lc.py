"""Letters of credit (domestic LC): application, issuance, advice, amendment, presentation,
examination, acceptance, refusal, payment and close — each a signed step by a named party.

Who does what (every party is a finance organization; the sender's role is checked by
``orgs.member``, and the sender's organization must be the LC's party for the step):

* ``lc_apply`` — the **applicant** (core enterprise or supplier) signs its application:
  issuing bank, advising bank, beneficiary, amount with a tolerance in basis points,
  expiry, latest shipment date, presentation period (days after shipment), tenor (sight, or
  usance days after acceptance), how many presentations, whether partial drawings are
  allowed, the document types called for, and its application's fingerprint. The LC id is
  ``codes.instrument_id(applicant key, nonce)``.
* ``lc_issue`` — the **issuing bank** opens the LC applied for (parties re-checked, expiry
  still ahead); ``lc_cancel`` — before issuance, the applicant withdraws or the bank declines.
* ``lc_advise`` — the **advising bank** advises it; the beneficiary presents only then.
* ``lc_amend`` — the issuing bank proposes new terms (amount, expiry, latest shipment), one
  at a time; ``lc_amend_reply`` — the **beneficiary** accepts (the terms change) or rejects.
  An amount whose maximum would fall below what is drawn and reserved is refused.
* ``lc_present`` — the beneficiary draws ``amount`` against typed document fingerprints,
  on or before expiry, at most ``presentations_max`` times, within the available amount
  (amount + tolerance - drawn - reserved; the drawing is reserved). The chain finds the
  automatic discrepancies (late shipment, late presentation, missing document type, short
  sole drawing, shipment dated after the presentation).
* ``lc_check`` — the **nominated (advising) bank** may record its advisory finding once;
  the **issuing bank** records the binding one: compliant (refused while automatic
  discrepancies exist) or discrepant with codes (the automatic ones are always included).
  A discrepant finding is precluded after the examination period (``examination_ms``).
* ``lc_waive`` — the applicant waives a discrepant presentation's discrepancies.
* ``lc_accept`` — the issuing bank honours a compliant or waived presentation: the
  reservation becomes drawn; maturity is the acceptance time plus the usance days.
* ``lc_refuse`` — the issuing bank refuses a discrepant (or waived) presentation within
  the examination period, stating reasons that must be among its findings; the
  reservation is released.
* ``lc_pay`` — the issuing bank pays an accepted drawing at or after maturity: to the
  forfaiter if the drawing was sold (``forfaiting``), else the beneficiary.
* ``lc_close`` — the beneficiary renounces the LC, or the issuing bank closes it once
  expired or exhausted; never while a presentation is under examination. Accepted drawings
  stay payable after the close.

Invariants (tests/apps/test_tradefin_property.py): ``drawn + reserved <= max_amount`` and
``paid <= drawn`` after every step, with ``drawn``, ``reserved`` and ``paid`` the sums over
the presentations in the matching states.
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.finance import orgs
from tierchain.apps.finance.codes import org_key
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.codes import AmendmentStatus as AS
from tierchain.apps.tradefin.codes import Event as E
from tierchain.apps.tradefin.codes import LcStatus as S
from tierchain.apps.tradefin.codes import PresentationStatus as P
from tierchain.apps.tradefin.codes import TradeReject as R
from tierchain.apps.tradefin.common import (
    BANK,
    TRADER,
    append,
    counterparty,
    distinct,
    emit,
    entry,
    fp_list,
    future,
    load,
    need,
    parse,
)
from tierchain.apps.tradefin.records import NO_REF, Amendment, Forfait, Lc, Presentation
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.wire import tx

OPS = apps.OpTable()

_APPLY = struct.Struct("<16s16s16sQHQQBHBBH32s")
_ID_FP = struct.Struct("<16s32s")
_AMEND = struct.Struct("<16sBQQQ32s")
_REPLY = struct.Struct("<16sBB")
_PRESENT = struct.Struct("<16sBQQ")  # then the typed document fingerprints
_CHECK = struct.Struct("<16sBBH32s")
_STEP = struct.Struct("<16sB32s")  # waive, accept, pay
_REFUSE = struct.Struct("<16sBH32s")
_DOC_TYPES = sum(1 << t for t in c.DocType)


@dataclasses.dataclass(frozen=True)
class Terms:
    """What an application names (the client's argument to ``apply``)."""

    issuer: bytes
    advising: bytes
    beneficiary: bytes
    amount: int
    expiry_ms: int
    latest_shipment_ms: int
    required_docs: tuple[int, ...]  # codes.DocType values
    tolerance_bps: int = 0
    presentation_days: int = 15
    usance_days: int = 0
    presentations_max: int = 1
    partial: bool = False

    def payload(self, fp: bytes) -> bytes:
        mask = sum(1 << int(t) for t in set(self.required_docs))
        return _APPLY.pack(
            self.issuer, self.advising, self.beneficiary, self.amount, self.tolerance_bps, self.expiry_ms,
            self.latest_shipment_ms, self.presentation_days, self.usance_days, self.presentations_max,
            int(self.partial), mask, fp,
        )  # fmt: skip


# --- helpers -----------------------------------------------------------------------------------


def _lc(ctx: TxContext, lc_id: bytes) -> Lc:
    return load(ctx, c.lc_key(lc_id), Lc, R.TF_NO_SUCH_LC)


def _presentation(ctx: TxContext, lc_id: bytes, n: int, lc: Lc) -> Presentation:
    if n >= lc.presentations:
        raise OpFailed(R.TF_NO_SUCH_PRESENTATION)
    return load(ctx, c.presentation_key(lc_id, n), Presentation, R.TF_NO_SUCH_PRESENTATION)


def _put(ctx: TxContext, lc_id: bytes, lc: Lc) -> None:
    ctx.put(c.lc_key(lc_id), lc.encode())


def _log(
    ctx: TxContext,
    lc: Lc,
    kind: int,
    org: bytes,
    ref: int = NO_REF,
    moved: int = 0,
    fp: bytes = bytes(32),
    /,
    **changes,
) -> Lc:
    """``lc`` with ``changes`` (any field, ``amount`` too) and a history entry appended."""
    return append(lc, c.lc_history_max, entry(ctx, kind, org, ref, moved, fp), **changes)


def _sender_is(oid: bytes, party: bytes, code: int) -> None:
    if oid != party:
        raise OpFailed(code)


def _open(lc: Lc) -> None:
    if lc.status not in (S.ISSUED, S.ADVISED):
        raise OpFailed(R.TF_BAD_LC_STATE)


def _exhausted(lc: Lc) -> bool:
    """Nothing more can be drawn: the maximum is drawn, every presentation is used, or the
    sole drawing of an LC without partial drawings was accepted."""
    return lc.available <= 0 or lc.presentations >= lc.presentations_max or (not lc.partial and lc.drawn > 0)


# --- ops -------------------------------------------------------------------------------------------


@OPS.op(c.OP_LC_APPLY, "tf.lc_apply")
def _apply(ctx: TxContext) -> None:
    (
        issuer,
        advising,
        beneficiary,
        amount,
        tol,
        expiry,
        latest,
        days,
        usance,
        pmax,
        partial,
        required,
        fp,
    ) = parse(_APPLY, ctx.payload)
    need(1 <= amount <= c.amount_max and tol <= c.tolerance_bps_max, "amount or tolerance")
    need(
        1 <= days <= c.presentation_days_max and usance <= c.usance_days_max, "presentation period or usance"
    )
    need(1 <= pmax <= c.presentations_max and partial in (0, 1), "presentations")
    need(required and not required & ~_DOC_TYPES, "required documents")
    need(1 <= latest <= expiry, "latest shipment after expiry")
    applicant, _ = orgs.member(ctx, TRADER)
    future(ctx, expiry, c.lc_validity_ms_max)
    distinct(applicant, beneficiary, issuer)
    distinct(applicant, beneficiary, advising)
    counterparty(ctx, issuer, BANK)
    counterparty(ctx, advising, BANK)
    counterparty(ctx, beneficiary, TRADER)
    lc_id = c.instrument_id(ctx.sender, ctx.nonce, suite=ctx.suite)
    lc = Lc(
        applicant, issuer, advising, beneficiary, amount, tol, expiry, latest, days, usance, pmax, partial,
        required, S.APPLIED, ctx.timestamp_ms, 0, 0, 0, 0, 0, 0, 0, 0, (),
    )  # fmt: skip
    _put(ctx, lc_id, _log(ctx, lc, E.APPLIED, applicant, NO_REF, amount, fp))
    emit(ctx, b"tf.lc.applied", lc_id)


@OPS.op(c.OP_LC_ISSUE, "tf.lc_issue")
def _issue(ctx: TxContext) -> None:
    lc_id, fp = parse(_ID_FP, ctx.payload)
    oid, _ = orgs.member(ctx, BANK)
    lc = _lc(ctx, lc_id)
    _sender_is(oid, lc.issuer, R.TF_NOT_ISSUING_BANK)
    if lc.status != S.APPLIED:
        raise OpFailed(R.TF_BAD_LC_STATE)
    future(ctx, lc.expiry_ms, c.lc_validity_ms_max)
    counterparty(ctx, lc.applicant, TRADER)
    counterparty(ctx, lc.beneficiary, TRADER)
    counterparty(ctx, lc.advising, BANK)
    _put(
        ctx,
        lc_id,
        _log(ctx, lc, E.ISSUED, oid, NO_REF, lc.amount, fp, status=S.ISSUED, issued_ms=ctx.timestamp_ms),
    )
    emit(ctx, b"tf.lc.issued", lc_id)


@OPS.op(c.OP_LC_CANCEL, "tf.lc_cancel")
def _cancel(ctx: TxContext) -> None:
    lc_id, fp = parse(_ID_FP, ctx.payload)
    oid, _ = orgs.member(ctx)
    lc = _lc(ctx, lc_id)
    if oid not in (lc.applicant, lc.issuer):
        raise OpFailed(R.TF_NOT_APPLICANT)
    if lc.status != S.APPLIED:
        raise OpFailed(R.TF_BAD_LC_STATE)
    kind, status = (E.WITHDRAWN, S.WITHDRAWN) if oid == lc.applicant else (E.DECLINED, S.DECLINED)
    _put(ctx, lc_id, _log(ctx, lc, kind, oid, NO_REF, 0, fp, status=status))
    emit(ctx, b"tf.lc.cancelled", lc_id)


@OPS.op(c.OP_LC_ADVISE, "tf.lc_advise")
def _advise(ctx: TxContext) -> None:
    lc_id, fp = parse(_ID_FP, ctx.payload)
    oid, _ = orgs.member(ctx, BANK)
    lc = _lc(ctx, lc_id)
    _sender_is(oid, lc.advising, R.TF_NOT_ADVISING_BANK)
    if lc.status != S.ISSUED:
        raise OpFailed(R.TF_BAD_LC_STATE)
    _put(ctx, lc_id, _log(ctx, lc, E.ADVISED, oid, NO_REF, 0, fp, status=S.ADVISED))
    emit(ctx, b"tf.lc.advised", lc_id)


@OPS.op(c.OP_LC_AMEND, "tf.lc_amend")
def _amend(ctx: TxContext) -> None:
    lc_id, n, amount, expiry, latest, fp = parse(_AMEND, ctx.payload)
    need(1 <= amount <= c.amount_max and 1 <= latest <= expiry, "amended terms")
    oid, _ = orgs.member(ctx, BANK)
    lc = _lc(ctx, lc_id)
    _sender_is(oid, lc.issuer, R.TF_NOT_ISSUING_BANK)
    _open(lc)
    if ctx.timestamp_ms > lc.expiry_ms:
        raise OpFailed(R.TF_LC_EXPIRED)
    if lc.pending:
        raise OpFailed(R.TF_AMENDMENT_PENDING)
    if lc.amendments >= c.amendments_max:
        raise OpFailed(R.TF_AMENDMENTS_EXHAUSTED)
    if n != lc.amendments:
        raise OpFailed(R.TF_NO_SUCH_AMENDMENT, "not the next amendment")
    need(
        (amount, expiry, latest) != (lc.amount, lc.expiry_ms, lc.latest_shipment_ms),
        "an amendment changes a term",
    )
    future(ctx, expiry, c.lc_validity_ms_max)
    _fits(lc, amount)
    ctx.put(
        c.amendment_key(lc_id, n),
        Amendment(amount, expiry, latest, fp, AS.PENDING, ctx.height, ctx.timestamp_ms, 0).encode(),
    )
    _put(ctx, lc_id, _log(ctx, lc, E.AMENDMENT_PROPOSED, oid, n, amount, fp, amendments=n + 1, pending=n + 1))
    emit(ctx, b"tf.lc.amend", lc_id, bytes((n,)))


def _fits(lc: Lc, amount: int) -> None:
    if dataclasses.replace(lc, amount=amount, history=()).max_amount < lc.drawn + lc.reserved:
        raise OpFailed(R.TF_BELOW_DRAWN)


@OPS.op(c.OP_LC_AMEND_REPLY, "tf.lc_amend_reply")
def _amend_reply(ctx: TxContext) -> None:
    lc_id, n, accept = parse(_REPLY, ctx.payload)
    need(accept in (0, 1), "accept flag")
    oid, _ = orgs.member(ctx, TRADER)
    lc = _lc(ctx, lc_id)
    _sender_is(oid, lc.beneficiary, R.TF_NOT_BENEFICIARY)
    if lc.pending != n + 1:
        raise OpFailed(R.TF_NO_SUCH_AMENDMENT)
    _open(lc)
    am = load(ctx, c.amendment_key(lc_id, n), Amendment, R.TF_NO_SUCH_AMENDMENT)
    if accept:
        future(ctx, am.expiry_ms, c.lc_validity_ms_max)
        _fits(lc, am.amount)
        lc = _log(
            ctx, lc, E.AMENDMENT_ACCEPTED, oid, n, am.amount, pending=0, amount=am.amount,
            expiry_ms=am.expiry_ms, latest_shipment_ms=am.latest_shipment_ms,
        )  # fmt: skip
    else:
        lc = _log(ctx, lc, E.AMENDMENT_REJECTED, oid, n, am.amount, pending=0)
    status = AS.ACCEPTED if accept else AS.REJECTED
    ctx.put(
        c.amendment_key(lc_id, n), dataclasses.replace(am, status=status, replied_height=ctx.height).encode()
    )
    _put(ctx, lc_id, lc)
    emit(ctx, b"tf.lc.amend_reply", lc_id, bytes((n, accept)))


def automatic_discrepancies(lc: Lc, amount: int, shipment_ms: int, docs: tuple, now_ms: int) -> int:
    """The discrepancies the chain finds in a presentation by itself (``Discrepancy`` bits)."""
    D = c.Discrepancy
    found = 0
    if shipment_ms > lc.latest_shipment_ms:
        found |= 1 << D.LATE_SHIPMENT
    if now_ms > shipment_ms + lc.presentation_days * c.day_ms:
        found |= 1 << D.LATE_PRESENTATION
    presented = sum(1 << t for t, _ in docs)
    if lc.required_docs & ~presented:
        found |= 1 << D.MISSING_DOCUMENT
    if not lc.partial and amount < lc.min_sole_drawing:
        found |= 1 << D.AMOUNT_SHORT
    if shipment_ms > now_ms:
        found |= 1 << D.INCONSISTENT_DATA
    return found


@OPS.op(c.OP_LC_PRESENT, "tf.lc_present")
def _present(ctx: TxContext) -> None:
    lc_id, n, amount, shipment_ms, rest = parse(_PRESENT, ctx.payload, tail=True)
    docs = fp_list(rest, c.docs_per_presentation_max)
    need(1 <= amount <= c.amount_max and shipment_ms >= 1, "drawing amount or shipment date")
    oid, _ = orgs.member(ctx, TRADER)
    lc = _lc(ctx, lc_id)
    _sender_is(oid, lc.beneficiary, R.TF_NOT_BENEFICIARY)
    if lc.status != S.ADVISED:
        raise OpFailed(R.TF_BAD_LC_STATE)
    if ctx.timestamp_ms > lc.expiry_ms:
        raise OpFailed(R.TF_LC_EXPIRED)
    if lc.presentations >= lc.presentations_max:
        raise OpFailed(R.TF_PRESENTATIONS_EXHAUSTED)
    if n != lc.presentations:
        raise OpFailed(R.TF_NO_SUCH_PRESENTATION, "not the next presentation")
    if not lc.partial and (lc.drawn or lc.examining):
        raise OpFailed(R.TF_PARTIAL_NOT_ALLOWED)
    if amount > lc.available:
        raise OpFailed(R.TF_EXCEEDS_AVAILABLE)
    auto = automatic_discrepancies(lc, amount, shipment_ms, docs, ctx.timestamp_ms)
    p = Presentation(
        amount, shipment_ms, ctx.height, ctx.timestamp_ms, P.PRESENTED, auto, 0, 0, 0, 0, 0, 0, 0, 0,
        bytes(16), docs,
    )  # fmt: skip
    ctx.put(c.presentation_key(lc_id, n), p.encode())
    lc = _log(
        ctx, lc, E.PRESENTED, oid, n, amount, _docs_digest(ctx, docs),
        presentations=n + 1, examining=lc.examining + 1, reserved=lc.reserved + amount,
    )  # fmt: skip
    _put(ctx, lc_id, lc)
    emit(ctx, b"tf.lc.presented", lc_id, bytes((n,)))


def _docs_digest(ctx: TxContext, docs: tuple) -> bytes:
    """The history's fingerprint of a presentation: a digest of its typed document list."""
    return ctx.suite.hash(c.TF_PRESENTATION, b"".join(bytes((t,)) + fp for t, fp in docs))


def _step(ctx: TxContext, layout: struct.Struct, roles: int) -> tuple:
    fields = parse(layout, ctx.payload)
    oid, _ = orgs.member(ctx, roles)
    lc = _lc(ctx, fields[0])
    p = _presentation(ctx, fields[0], fields[1], lc)
    return (oid, lc, p, *fields)


def _put_presentation(ctx: TxContext, lc_id: bytes, n: int, p: Presentation, **changes) -> None:
    ctx.put(c.presentation_key(lc_id, n), dataclasses.replace(p, **changes).encode())


def _precluded(ctx: TxContext, p: Presentation) -> bool:
    return ctx.timestamp_ms > p.presented_ms + c.examination_ms


@OPS.op(c.OP_LC_CHECK, "tf.lc_check")
def _check(ctx: TxContext) -> None:
    oid, lc, p, lc_id, n, finding, mask, fp = _step(ctx, _CHECK, BANK)
    need(finding in (c.Finding.COMPLIANT, c.Finding.DISCREPANT) and not mask & ~c.DISCREPANCY_MASK, "finding")
    need(bool(mask) == (finding == c.Finding.DISCREPANT), "a discrepant finding names discrepancies")
    if oid not in (lc.issuer, lc.advising):
        raise OpFailed(R.TF_NOT_ADVISING_BANK)
    if p.status != P.PRESENTED:
        raise OpFailed(R.TF_BAD_PRESENTATION_STATE)
    if finding == c.Finding.COMPLIANT and p.automatic:
        raise OpFailed(R.TF_DISCREPANCIES_PRESENT)
    found = mask | p.automatic if finding == c.Finding.DISCREPANT else 0
    if oid == lc.issuer:
        if finding == c.Finding.DISCREPANT and _precluded(ctx, p):
            raise OpFailed(R.TF_REFUSAL_TOO_LATE)
        status = P.COMPLIANT if finding == c.Finding.COMPLIANT else P.DISCREPANT
        kind = E.CHECKED_COMPLIANT if status == P.COMPLIANT else E.CHECKED_DISCREPANT
        _put_presentation(ctx, lc_id, n, p, status=status, finding=finding, discrepancies=found)
    else:
        if p.nominated_finding:
            raise OpFailed(R.TF_ALREADY_CHECKED)
        kind = E.CHECKED_NOMINATED
        _put_presentation(ctx, lc_id, n, p, nominated_finding=finding, nominated_discrepancies=found)
    _put(ctx, lc_id, _log(ctx, lc, kind, oid, n, found, fp))
    emit(ctx, b"tf.lc.checked", lc_id, bytes((n, finding)))


@OPS.op(c.OP_LC_WAIVE, "tf.lc_waive")
def _waive(ctx: TxContext) -> None:
    oid, lc, p, lc_id, n, fp = _step(ctx, _STEP, TRADER)
    _sender_is(oid, lc.applicant, R.TF_NOT_APPLICANT)
    if p.status != P.DISCREPANT:
        raise OpFailed(R.TF_BAD_PRESENTATION_STATE)
    _put_presentation(ctx, lc_id, n, p, status=P.WAIVED)
    _put(ctx, lc_id, _log(ctx, lc, E.WAIVED, oid, n, p.discrepancies, fp))
    emit(ctx, b"tf.lc.waived", lc_id, bytes((n,)))


@OPS.op(c.OP_LC_ACCEPT, "tf.lc_accept")
def _accept(ctx: TxContext) -> None:
    oid, lc, p, lc_id, n, fp = _step(ctx, _STEP, BANK)
    _sender_is(oid, lc.issuer, R.TF_NOT_ISSUING_BANK)
    if p.status not in (P.COMPLIANT, P.WAIVED):
        raise OpFailed(R.TF_BAD_PRESENTATION_STATE)
    maturity = ctx.timestamp_ms + lc.usance_days * c.day_ms
    _put_presentation(ctx, lc_id, n, p, status=P.ACCEPTED, accepted_ms=ctx.timestamp_ms, maturity_ms=maturity)
    lc = _log(
        ctx, lc, E.ACCEPTED, oid, n, p.amount, fp,
        reserved=lc.reserved - p.amount, drawn=lc.drawn + p.amount, examining=lc.examining - 1,
    )  # fmt: skip
    _put(ctx, lc_id, lc)
    emit(ctx, b"tf.lc.accepted", lc_id, bytes((n,)), maturity.to_bytes(8, "little"))


@OPS.op(c.OP_LC_REFUSE, "tf.lc_refuse")
def _refuse(ctx: TxContext) -> None:
    oid, lc, p, lc_id, n, reasons, fp = _step(ctx, _REFUSE, BANK)
    need(reasons and not reasons & ~c.DISCREPANCY_MASK, "refusal reasons")
    _sender_is(oid, lc.issuer, R.TF_NOT_ISSUING_BANK)
    if p.status not in (P.DISCREPANT, P.WAIVED):
        raise OpFailed(R.TF_BAD_PRESENTATION_STATE)
    if reasons & ~p.discrepancies:
        raise OpFailed(R.TF_UNSTATED_DISCREPANCY)
    if _precluded(ctx, p):
        raise OpFailed(R.TF_REFUSAL_TOO_LATE)
    _put_presentation(ctx, lc_id, n, p, status=P.REFUSED, reasons=reasons)
    lc = _log(
        ctx, lc, E.REFUSED, oid, n, p.amount, fp, reserved=lc.reserved - p.amount, examining=lc.examining - 1
    )
    _put(ctx, lc_id, lc)
    emit(ctx, b"tf.lc.refused", lc_id, bytes((n,)))


@OPS.op(c.OP_LC_PAY, "tf.lc_pay")
def _pay(ctx: TxContext) -> None:
    # Paying what was accepted needs no role: a role removal never blocks a payment.
    oid, lc, p, lc_id, n, fp = _step(ctx, _STEP, 0)
    _sender_is(oid, lc.issuer, R.TF_NOT_ISSUING_BANK)
    if p.status != P.ACCEPTED:
        raise OpFailed(R.TF_BAD_PRESENTATION_STATE)
    if ctx.timestamp_ms < p.maturity_ms:
        raise OpFailed(R.TF_NOT_DUE)
    payee = lc.beneficiary
    fid = c.drawing_forfait_id(lc_id, n)
    raw = ctx.get(c.forfait_key(fid))
    if raw is not None:
        w = Forfait.decode(raw)
        if w.status == c.ForfaitStatus.PURCHASED:
            payee = w.forfaiter
            w = append(
                w,
                c.forfait_history_max,
                entry(ctx, E.W_SETTLED, oid, amount=p.amount, fp=fp),
                status=c.ForfaitStatus.SETTLED,
            )
            ctx.put(c.forfait_key(fid), w.encode())
        elif w.status == c.ForfaitStatus.OFFERED:
            w = append(
                w, c.forfait_history_max, entry(ctx, E.W_LAPSED, oid, fp=fp), status=c.ForfaitStatus.LAPSED
            )
            ctx.put(c.forfait_key(fid), w.encode())
    _put_presentation(ctx, lc_id, n, p, status=P.PAID, paid_ms=ctx.timestamp_ms, payee=payee)
    _put(ctx, lc_id, _log(ctx, lc, E.PAID, payee, n, p.amount, fp, paid=lc.paid + p.amount))
    emit(ctx, b"tf.lc.paid", lc_id, bytes((n,)), payee)


@OPS.op(c.OP_LC_CLOSE, "tf.lc_close")
def _close(ctx: TxContext) -> None:
    lc_id, fp = parse(_ID_FP, ctx.payload)
    oid, _ = orgs.member(ctx)
    lc = _lc(ctx, lc_id)
    if oid not in (lc.issuer, lc.beneficiary):
        raise OpFailed(R.TF_NOT_ISSUING_BANK)
    _open(lc)
    if lc.examining:
        raise OpFailed(R.TF_PRESENTATION_OPEN)
    if oid == lc.issuer and oid != lc.beneficiary:
        if not (ctx.timestamp_ms > lc.expiry_ms or _exhausted(lc)):
            raise OpFailed(R.TF_NOT_CLOSABLE)
    if lc.pending:
        key = c.amendment_key(lc_id, lc.pending - 1)
        am = load(ctx, key, Amendment, R.TF_NO_SUCH_AMENDMENT)
        ctx.put(key, dataclasses.replace(am, status=AS.LAPSED, replied_height=ctx.height).encode())
    _put(ctx, lc_id, _log(ctx, lc, E.CLOSED, oid, NO_REF, lc.drawn, fp, status=S.CLOSED, pending=0))
    emit(ctx, b"tf.lc.closed", lc_id)


# --- builders (the client derives the arguments from committed state) -----------------------


def _tx(
    chain_id: int, op: int, sender: bytes, org: bytes, nonce: int, reads, writes, payload: bytes
) -> tx.Tx:
    return orgs.make_tx(
        chain_id, op, sender, nonce, orgs.member_reads(sender, org) | set(reads), writes, payload
    )


def apply(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    terms: Terms,
    fp: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, bytes]:
    lc_id = c.instrument_id(sender, nonce, suite=suite)
    reads = {org_key(terms.issuer), org_key(terms.advising), org_key(terms.beneficiary)}
    return _tx(
        chain_id, c.OP_LC_APPLY, sender, org, nonce, reads, {c.lc_key(lc_id)}, terms.payload(fp)
    ), lc_id


def issue(
    chain_id: int, sender: bytes, org: bytes, nonce: int, lc_id: bytes, lc: Lc | None, fp: bytes
) -> tx.Tx:
    parties = {org_key(o) for o in (lc.applicant, lc.beneficiary, lc.advising)} if lc else set()
    return _tx(
        chain_id, c.OP_LC_ISSUE, sender, org, nonce, parties, {c.lc_key(lc_id)}, _ID_FP.pack(lc_id, fp)
    )


def head_only(
    op: int, chain_id: int, sender: bytes, org: bytes, nonce: int, lc_id: bytes, fp: bytes
) -> tx.Tx:
    """cancel, advise: the LC head only."""
    return _tx(chain_id, op, sender, org, nonce, (), {c.lc_key(lc_id)}, _ID_FP.pack(lc_id, fp))


def close(
    chain_id: int, sender: bytes, org: bytes, nonce: int, lc_id: bytes, pending: int, fp: bytes
) -> tx.Tx:
    writes = {c.lc_key(lc_id)} | ({c.amendment_key(lc_id, pending - 1)} if pending else set())
    return _tx(chain_id, c.OP_LC_CLOSE, sender, org, nonce, (), writes, _ID_FP.pack(lc_id, fp))


def amend(
    chain_id: int, sender: bytes, org: bytes, nonce: int, lc_id: bytes, n: int,
    amount: int, expiry_ms: int, latest_shipment_ms: int, fp: bytes,
) -> tx.Tx:  # fmt: skip
    payload = _AMEND.pack(lc_id, n, amount, expiry_ms, latest_shipment_ms, fp)
    writes = {c.lc_key(lc_id), c.amendment_key(lc_id, n)}
    return _tx(chain_id, c.OP_LC_AMEND, sender, org, nonce, (), writes, payload)


def amend_reply(
    chain_id: int, sender: bytes, org: bytes, nonce: int, lc_id: bytes, n: int, accept: bool
) -> tx.Tx:
    writes = {c.lc_key(lc_id), c.amendment_key(lc_id, n)}
    return _tx(
        chain_id, c.OP_LC_AMEND_REPLY, sender, org, nonce, (), writes, _REPLY.pack(lc_id, n, int(accept))
    )


def present(
    chain_id: int, sender: bytes, org: bytes, nonce: int, lc_id: bytes, n: int, amount: int,
    shipment_ms: int, docs: list[tuple[int, bytes]],
) -> tx.Tx:  # fmt: skip
    if not 1 <= len(docs) <= c.docs_per_presentation_max or any(len(fp) != 32 for _, fp in docs):
        raise ValueError(f"1..{c.docs_per_presentation_max} documents, each a 32-byte fingerprint")
    payload = _PRESENT.pack(lc_id, n, amount, shipment_ms) + bytes((len(docs),))
    payload += b"".join(bytes((int(t),)) + fp for t, fp in docs)
    writes = {c.lc_key(lc_id), c.presentation_key(lc_id, n)}
    return _tx(chain_id, c.OP_LC_PRESENT, sender, org, nonce, (), writes, payload)


def _on_presentation(
    op: int,
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    lc_id: bytes,
    n: int,
    payload: bytes,
    extra=(),
) -> tx.Tx:
    writes = {c.lc_key(lc_id), c.presentation_key(lc_id, n), *extra}
    return _tx(chain_id, op, sender, org, nonce, (), writes, payload)


def check(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    lc_id: bytes,
    n: int,
    finding: int,
    discrepancies: int,
    fp: bytes,
) -> tx.Tx:
    payload = _CHECK.pack(lc_id, n, finding, discrepancies, fp)
    return _on_presentation(c.OP_LC_CHECK, chain_id, sender, org, nonce, lc_id, n, payload)


def step(
    op: int,
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    lc_id: bytes,
    n: int,
    fp: bytes,
) -> tx.Tx:
    """waive, accept, pay (a payment declares the drawing's forfaiting record too)."""
    extra = ()
    if op == c.OP_LC_PAY:
        extra = (c.forfait_key(c.drawing_forfait_id(lc_id, n)),)
    return _on_presentation(op, chain_id, sender, org, nonce, lc_id, n, _STEP.pack(lc_id, n, fp), extra)


def refuse(
    chain_id: int, sender: bytes, org: bytes, nonce: int, lc_id: bytes, n: int, reasons: int, fp: bytes
) -> tx.Tx:
    payload = _REFUSE.pack(lc_id, n, reasons, fp)
    return _on_presentation(c.OP_LC_REFUSE, chain_id, sender, org, nonce, lc_id, n, payload)
