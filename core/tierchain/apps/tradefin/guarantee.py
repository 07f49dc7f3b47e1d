"""Bank guarantees: issue, demand (claim), pay or reject, release — the guarantor pays at
most the guarantee's amount.

* ``g_issue`` — a **guarantor** (bank) issues a guarantee of a kind (performance, advance
  payment, bid, payment, retention, warranty) for an **applicant** (core enterprise or
  supplier) in favour of a **beneficiary** (any active organization), for an amount until an
  expiry, with the fingerprint of its text. Id: ``codes.instrument_id(guarantor key, nonce)``.
* ``g_claim`` — the beneficiary demands an amount (at most ``amount - paid``) on or before
  the expiry, with its demand document's fingerprint; one demand open at a time, at most
  ``claims_max`` in all.
* ``g_pay`` — the guarantor pays the open demand (a demand made in time is paid even after
  the expiry); paid in full, the guarantee is exhausted.
* ``g_reject`` — the guarantor rejects the open demand with reasons (``ClaimRejection``).
* ``g_release`` — the beneficiary releases the guarantee at any time, or the guarantor
  closes it after the expiry; never while a demand is open.

Invariant: ``paid <= amount``, ``paid`` = the sum of the paid demands (property tests).
"""

from __future__ import annotations

import struct

from tierchain.apps.finance import orgs
from tierchain.apps.finance.codes import org_key
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.codes import Event as E
from tierchain.apps.tradefin.codes import GuaranteeStatus as S
from tierchain.apps.tradefin.codes import TradeReject as R
from tierchain.apps.tradefin.common import (
    ANY,
    BANK,
    TRADER,
    append,
    counterparty,
    distinct,
    emit,
    entry,
    future,
    load,
    need,
    parse,
)
from tierchain.apps.tradefin.records import ZERO_FP, Guarantee
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.wire import tx

OPS = apps.OpTable()

_ISSUE = struct.Struct("<16s16sBQQ32s")
_CLAIM = struct.Struct("<16sQ32s")
_ID_FP = struct.Struct("<16s32s")
_REJECT = struct.Struct("<16sH32s")
_OPEN = (S.ISSUED, S.CLAIMED)


def _load(ctx: TxContext, gid: bytes) -> Guarantee:
    return load(ctx, c.guarantee_key(gid), Guarantee, R.TF_NO_SUCH_GUARANTEE)


def _put(
    ctx: TxContext, gid: bytes, g: Guarantee, kind: int, org: bytes, amount: int, fp: bytes, **changes
) -> None:
    g = append(g, c.guarantee_history_max, entry(ctx, kind, org, amount=amount, fp=fp), **changes)
    ctx.put(c.guarantee_key(gid), g.encode())


@OPS.op(c.OP_G_ISSUE, "tf.g_issue")
def _issue(ctx: TxContext) -> None:
    applicant, beneficiary, kind, amount, expiry, fp = parse(_ISSUE, ctx.payload)
    need(kind in c.GuaranteeKind._value2member_map_ and 1 <= amount <= c.amount_max, "kind or amount")
    guarantor, _ = orgs.member(ctx, BANK)
    future(ctx, expiry, c.guarantee_validity_ms_max)
    distinct(guarantor, applicant, beneficiary)
    counterparty(ctx, applicant, TRADER)
    counterparty(ctx, beneficiary, ANY)
    gid = c.instrument_id(ctx.sender, ctx.nonce, suite=ctx.suite)
    g = Guarantee(
        guarantor,
        applicant,
        beneficiary,
        kind,
        amount,
        expiry,
        S.ISSUED,
        ctx.timestamp_ms,
        0,
        0,
        0,
        0,
        ZERO_FP,
        (),
    )
    _put(ctx, gid, g, E.G_ISSUED, guarantor, amount, fp)
    emit(ctx, b"tf.g.issued", gid)


@OPS.op(c.OP_G_CLAIM, "tf.g_claim")
def _claim(ctx: TxContext) -> None:
    gid, amount, fp = parse(_CLAIM, ctx.payload)
    need(amount >= 1 and fp != ZERO_FP, "demand amount or document")
    oid, _ = orgs.member(ctx)
    g = _load(ctx, gid)
    if oid != g.beneficiary:
        raise OpFailed(R.TF_NOT_BENEFICIARY)
    if g.status == S.CLAIMED:
        raise OpFailed(R.TF_CLAIM_OPEN)
    if g.status != S.ISSUED:
        raise OpFailed(R.TF_GUARANTEE_CLOSED)
    if ctx.timestamp_ms > g.expiry_ms:
        raise OpFailed(R.TF_GUARANTEE_EXPIRED)
    if g.claims >= c.claims_max:
        raise OpFailed(R.TF_CLAIMS_EXHAUSTED)
    if amount > g.remaining:
        raise OpFailed(R.TF_EXCEEDS_GUARANTEE)
    _put(
        ctx, gid, g, E.G_CLAIMED, oid, amount, fp,
        status=S.CLAIMED, claims=g.claims + 1, claim_amount=amount, claim_ms=ctx.timestamp_ms, claim_fp=fp,
    )  # fmt: skip
    emit(ctx, b"tf.g.claimed", gid, amount.to_bytes(8, "little"))


def _open_claim(ctx: TxContext, gid: bytes) -> tuple[bytes, Guarantee]:
    oid, _ = orgs.member(ctx)  # paying or rejecting what was demanded needs no role
    g = _load(ctx, gid)
    if oid != g.guarantor:
        raise OpFailed(R.TF_NOT_GUARANTOR)
    if g.status != S.CLAIMED:
        raise OpFailed(R.TF_NO_OPEN_CLAIM)
    return oid, g


@OPS.op(c.OP_G_PAY, "tf.g_pay")
def _pay(ctx: TxContext) -> None:
    gid, fp = parse(_ID_FP, ctx.payload)
    oid, g = _open_claim(ctx, gid)
    paid = g.paid + g.claim_amount
    status = S.EXHAUSTED if paid == g.amount else S.ISSUED
    _put(
        ctx,
        gid,
        g,
        E.G_PAID,
        oid,
        g.claim_amount,
        fp,
        status=status,
        paid=paid,
        claim_amount=0,
        claim_ms=0,
        claim_fp=ZERO_FP,
    )
    emit(ctx, b"tf.g.paid", gid, paid.to_bytes(8, "little"))


@OPS.op(c.OP_G_REJECT, "tf.g_reject")
def _reject(ctx: TxContext) -> None:
    gid, reasons, fp = parse(_REJECT, ctx.payload)
    need(reasons and not reasons & ~c.CLAIM_REJECTION_MASK, "rejection reasons")
    oid, g = _open_claim(ctx, gid)
    _put(
        ctx,
        gid,
        g,
        E.G_REJECTED,
        oid,
        reasons,
        fp,
        status=S.ISSUED,
        claim_amount=0,
        claim_ms=0,
        claim_fp=ZERO_FP,
    )
    emit(ctx, b"tf.g.rejected", gid)


@OPS.op(c.OP_G_RELEASE, "tf.g_release")
def _release(ctx: TxContext) -> None:
    gid, fp = parse(_ID_FP, ctx.payload)
    oid, _ = orgs.member(ctx)
    g = _load(ctx, gid)
    if oid not in (g.beneficiary, g.guarantor):
        raise OpFailed(R.TF_NOT_BENEFICIARY)
    if g.status == S.CLAIMED:
        raise OpFailed(R.TF_CLAIM_OPEN)
    if g.status not in _OPEN:
        raise OpFailed(R.TF_GUARANTEE_CLOSED)
    if oid == g.beneficiary:
        kind, status = E.G_RELEASED, S.RELEASED
    elif ctx.timestamp_ms <= g.expiry_ms:
        raise OpFailed(R.TF_NOT_EXPIRED)
    else:
        kind, status = E.G_EXPIRED, S.EXPIRED
    _put(ctx, gid, g, kind, oid, g.remaining, fp, status=status)
    emit(ctx, b"tf.g.closed", gid)


# --- builders ------------------------------------------------------------------------------------


def _tx(
    chain_id: int, op: int, sender: bytes, org: bytes, nonce: int, reads, gid: bytes, payload: bytes
) -> tx.Tx:
    reads = orgs.member_reads(sender, org) | set(reads)
    return orgs.make_tx(chain_id, op, sender, nonce, reads, {c.guarantee_key(gid)}, payload)


def issue(
    chain_id: int, sender: bytes, org: bytes, nonce: int, applicant: bytes, beneficiary: bytes, kind: int,
    amount: int, expiry_ms: int, fp: bytes, *, suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, bytes]:  # fmt: skip
    gid = c.instrument_id(sender, nonce, suite=suite)
    payload = _ISSUE.pack(applicant, beneficiary, kind, amount, expiry_ms, fp)
    reads = {org_key(applicant), org_key(beneficiary)}
    return _tx(chain_id, c.OP_G_ISSUE, sender, org, nonce, reads, gid, payload), gid


def claim(chain_id: int, sender: bytes, org: bytes, nonce: int, gid: bytes, amount: int, fp: bytes) -> tx.Tx:
    return _tx(chain_id, c.OP_G_CLAIM, sender, org, nonce, (), gid, _CLAIM.pack(gid, amount, fp))


def simple(op: int, chain_id: int, sender: bytes, org: bytes, nonce: int, gid: bytes, fp: bytes) -> tx.Tx:
    """pay, release."""
    return _tx(chain_id, op, sender, org, nonce, (), gid, _ID_FP.pack(gid, fp))


def reject(
    chain_id: int, sender: bytes, org: bytes, nonce: int, gid: bytes, reasons: int, fp: bytes
) -> tx.Tx:
    return _tx(chain_id, c.OP_G_REJECT, sender, org, nonce, (), gid, _REJECT.pack(gid, reasons, fp))
