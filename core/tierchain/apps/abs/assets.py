"""Underlying assets and their cash flows: registration, servicing events, servicer changes.

Ops (every one signed by an active key of an active finance organization: ``orgs.member``,
refusing with finance's membership codes):

* ``OP_REGISTER`` (160) — an *originator* registers one loan, receivable or lease: kind,
  principal, annual rate (basis points), schedule (start, term in months, months between
  installments; the term a multiple of it), its servicer (an organization with the
  ``servicer`` role, possibly itself), the keyed fingerprints of its contract reference and
  of its obligor (never a raw identity: ``codes.reference_fingerprint``), and optionally the
  id of its encrypted asset file in the sharing app (16 bytes, stored as given). The id is
  ``codes.asset_id(originator, contract fingerprint)``: one originator registers one
  contract once (``ABS_ASSET_EXISTS``).
* ``OP_CASHFLOW`` (161) — the asset's *servicer* records one event (``EventKind``), with the
  asset's next sequence number (``ABS_STALE_SEQUENCE``: a replayed or raced event is
  refused) and a value date not before the start or the last event (``ABS_OUT_OF_ORDER``)
  nor after the block time (``ABS_FUTURE_DATED``). ``apply_event`` is the whole rule set.
* ``OP_SET_SERVICER`` (162) — a new servicer for assets of one pool (or of no pool): the
  originator's decision until the pool is in trust, then only the trustee's.

Guarantees, for every asset at every height: ``principal == repaid + outstanding +
defaulted`` and ``0 <= recovered <= defaulted`` (``Asset.balanced``; a handler that would
break it raises ``InvariantViolation``: a bug, never a receipt), every amount an integer of
at most ``amount_max``, and the log ``ab/<tag>E<asset><seq>`` holds every accepted event in
order, each with the outstanding principal after it and the tx that recorded it.
"""

from __future__ import annotations

import struct

from tierchain.apps.abs import codes as c
from tierchain.apps.abs.codes import AbsReject, Asset, AssetKind, AssetStatus, Event, EventKind
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import orgs
from tierchain.apps.records import evolve
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import InvariantViolation, Reject
from tierchain.wire import tx

OPS = apps.OpTable()

_REGISTER = struct.Struct("<BQIQHH16s32s32s16s")
_CASHFLOW = struct.Struct("<16sIBQQQI")
_SERVICER = struct.Struct("<16s16sB")


def unpack(layout: struct.Struct, payload: bytes) -> tuple:
    """``payload`` as ``layout`` exactly, or BAD_PAYLOAD."""
    if len(payload) != layout.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "payload size")
    return layout.unpack(payload)


def unpack_ids(payload: bytes, offset: int, count_max: int) -> list[bytes]:
    """A count (u8) at ``offset`` then that many 16-byte ids ending the payload: 1..count_max
    of them (else BAD_PAYLOAD), each once (else ``ABS_DUPLICATE_ASSET``)."""
    if len(payload) <= offset:
        raise OpFailed(Reject.BAD_PAYLOAD, "id list")
    n = payload[offset]
    body = payload[offset + 1 :]
    if not 1 <= n <= count_max or len(body) != n * c.id_bytes:
        raise OpFailed(Reject.BAD_PAYLOAD, "id list")
    ids = [body[i * c.id_bytes : (i + 1) * c.id_bytes] for i in range(n)]
    if len(set(ids)) != n:
        raise OpFailed(AbsReject.ABS_DUPLICATE_ASSET)
    return ids


def load_asset(ctx: TxContext, asset_id: bytes) -> Asset:
    raw = ctx.get(c.asset_key(asset_id))
    if raw is None:
        raise OpFailed(AbsReject.ABS_NO_SUCH_ASSET)
    return Asset.decode(raw)


def put_asset(ctx: TxContext, asset_id: bytes, asset: Asset, op: str) -> None:
    if not asset.balanced():
        raise InvariantViolation(f"asset {asset_id.hex()} out of balance", op=op, tx_id=ctx.tx_id)
    ctx.put(c.asset_key(asset_id), asset.encode())


def terms_valid(kind: int, principal: int, rate_bp: int, start_ms: int, term: int, freq: int) -> bool:
    return (
        kind in AssetKind._value2member_map_
        and 1 <= principal <= c.amount_max
        and 0 <= rate_bp <= c.rate_bp_max
        and start_ms >= 1
        and 1 <= term <= c.term_months_max
        and 1 <= freq <= term
        and term % freq == 0
    )


@OPS.op(c.OP_REGISTER, "abs.register")
def _register(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx, c.ORIGINATOR)
    kind, principal, rate, start, term, freq, servicer, contract, obligor, file_id = unpack(
        _REGISTER, ctx.payload
    )
    if not terms_valid(kind, principal, rate, start, term, freq) or bytes(32) in (contract, obligor):
        raise OpFailed(AbsReject.ABS_BAD_TERMS)
    orgs.active_org_with(ctx, servicer, c.SERVICER)
    aid = c.asset_id(org, contract, suite=ctx.suite)
    if ctx.get(c.asset_key(aid)) is not None:
        raise OpFailed(AbsReject.ABS_ASSET_EXISTS)
    asset = Asset(
        org, servicer, kind, principal, rate, start, term, freq, contract, obligor, file_id,
        ctx.height, ctx.timestamp_ms, AssetStatus.PERFORMING, outstanding=principal,
    )  # fmt: skip
    put_asset(ctx, aid, asset, "abs.register")
    ctx.emit(b"abs.asset.registered", aid + org + servicer)


def apply_event(a: Asset, kind: int, principal: int, interest: int, aux: int) -> Asset:
    """The asset after one event (sequence and value date already checked), or the refusal:

    ============  ===========================  ============================================
    kind          allowed in                   effect
    ============  ===========================  ============================================
    REPAYMENT     PERFORMING, OVERDUE          installment ``aux`` = the next one (at most
                                               the schedule's count); principal part <=
                                               outstanding; cures arrears; PAID_OFF at 0
    PREPAYMENT    PERFORMING, OVERDUE          1 <= principal <= outstanding; PAID_OFF at 0
    OVERDUE       PERFORMING, OVERDUE          arrears ``principal`` >= 1, days past due
                                               ``aux`` >= 1 and rising while overdue
    DEFAULT       PERFORMING, OVERDUE          ``principal`` == outstanding: charged off
    RECOVERY      DEFAULTED                    1 <= principal <= defaulted - recovered
    ============  ===========================  ============================================
    """
    live = a.status in (AssetStatus.PERFORMING, AssetStatus.OVERDUE)
    if kind == EventKind.RECOVERY:
        if a.status != AssetStatus.DEFAULTED:
            raise OpFailed(AbsReject.ABS_BAD_STATE)
        if principal == 0 or interest or aux:
            raise OpFailed(AbsReject.ABS_BAD_AMOUNT)
        if principal > a.defaulted - a.recovered:
            raise OpFailed(AbsReject.ABS_EXCEEDS_OUTSTANDING)
        return evolve(a, recovered=a.recovered + principal)
    if not live:
        raise OpFailed(AbsReject.ABS_BAD_STATE)
    if kind == EventKind.OVERDUE:
        if principal == 0 or interest or not 1 <= aux <= c.days_past_due_max:
            raise OpFailed(AbsReject.ABS_BAD_AMOUNT)
        if a.status == AssetStatus.OVERDUE and aux <= a.days_past_due:
            raise OpFailed(AbsReject.ABS_OUT_OF_ORDER)
        return evolve(a, status=AssetStatus.OVERDUE, days_past_due=aux)
    if kind == EventKind.DEFAULT:
        if interest or aux or principal != a.outstanding:
            raise OpFailed(AbsReject.ABS_BAD_AMOUNT)
        return evolve(a, status=AssetStatus.DEFAULTED, outstanding=0, defaulted=principal)
    # REPAYMENT, PREPAYMENT
    if kind == EventKind.REPAYMENT:
        if principal == 0 and interest == 0:
            raise OpFailed(AbsReject.ABS_BAD_AMOUNT)
        if aux != a.periods_paid + 1 or aux > a.installments:
            raise OpFailed(AbsReject.ABS_BAD_PERIOD)
    elif principal == 0 or aux:
        raise OpFailed(AbsReject.ABS_BAD_AMOUNT)
    if principal > a.outstanding:
        raise OpFailed(AbsReject.ABS_EXCEEDS_OUTSTANDING)
    if a.interest + interest > c.amount_max:
        raise OpFailed(AbsReject.ABS_BAD_AMOUNT)
    out = a.outstanding - principal
    if kind == EventKind.REPAYMENT:
        status, periods, dpd = AssetStatus.PERFORMING, aux, 0
    else:
        status, periods, dpd = AssetStatus(a.status), a.periods_paid, a.days_past_due
    if out == 0:
        status, dpd = AssetStatus.PAID_OFF, 0
    return evolve(
        a, status=status, outstanding=out, repaid=a.repaid + principal, interest=a.interest + interest,
        periods_paid=periods, days_past_due=dpd,
    )  # fmt: skip


@OPS.op(c.OP_CASHFLOW, "abs.cashflow")
def _cashflow(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx, c.SERVICER)
    aid, seq, kind, value_ms, principal, interest, aux = unpack(_CASHFLOW, ctx.payload)
    if kind not in EventKind._value2member_map_ or max(principal, interest) > c.amount_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "event kind or amount")
    a = load_asset(ctx, aid)
    if a.servicer != org:
        raise OpFailed(AbsReject.ABS_NOT_SERVICER)
    if seq != a.events:
        raise OpFailed(AbsReject.ABS_STALE_SEQUENCE)
    if a.events >= c.events_per_asset_max:
        raise OpFailed(AbsReject.ABS_EVENTS_FULL)
    if value_ms > ctx.timestamp_ms:
        raise OpFailed(AbsReject.ABS_FUTURE_DATED)
    if value_ms < max(a.start_ms, a.last_ms):
        raise OpFailed(AbsReject.ABS_OUT_OF_ORDER)
    after = apply_event(a, kind, principal, interest, aux)
    after = evolve(after, events=a.events + 1, last_ms=value_ms)
    put_asset(ctx, aid, after, "abs.cashflow")
    event = Event(
        kind, value_ms, principal, interest, aux, after.outstanding, ctx.height, ctx.timestamp_ms, ctx.tx_id
    )
    ctx.put(c.event_key(aid, seq), event.encode())
    ctx.emit(b"abs.cashflow", aid + struct.pack("<IBQ", seq, kind, after.outstanding))


@OPS.op(c.OP_SET_SERVICER, "abs.set_servicer")
def _set_servicer(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx)
    if len(ctx.payload) < _SERVICER.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pool_id, new = ctx.payload[:16], ctx.payload[16:32]
    ids = unpack_ids(ctx.payload, 32, c.servicer_assets_per_tx_max)
    if pool_id != c.ZERO_ID:
        raw = ctx.get(c.pool_key(pool_id))
        if raw is None:
            raise OpFailed(AbsReject.ABS_NO_SUCH_POOL)
        pool = c.Pool.decode(raw)
        if pool.status == c.PoolStatus.IN_TRUST:
            if org != pool.trustee:
                raise OpFailed(
                    AbsReject.ABS_IN_TRUST if org == pool.originator else AbsReject.ABS_NOT_TRUSTEE
                )
        elif org != pool.originator:
            raise OpFailed(AbsReject.ABS_NOT_ORIGINATOR)
    orgs.active_org_with(ctx, new, c.SERVICER)
    for aid in ids:
        a = load_asset(ctx, aid)
        if a.pool != pool_id:
            raise OpFailed(AbsReject.ABS_NOT_IN_POOL)
        if pool_id == c.ZERO_ID and a.originator != org:
            raise OpFailed(AbsReject.ABS_NOT_ORIGINATOR)
        if a.servicer == new:
            raise OpFailed(AbsReject.ABS_SAME_SERVICER)
        put_asset(ctx, aid, evolve(a, servicer=new), "abs.set_servicer")
    ctx.emit(b"abs.servicer", pool_id + new + len(ids).to_bytes(1, "little"))


# --- client-side builders (declared keys: what the handler reads and writes) ----------------


def register(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    kind: int,
    principal: int,
    rate_bp: int,
    start_ms: int,
    term_months: int,
    freq_months: int,
    servicer: bytes,
    contract_fp: bytes,
    obligor_fp: bytes,
    file_id: bytes = c.ZERO_ID,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, bytes]:
    aid = c.asset_id(org, contract_fp, suite=suite)
    payload = _REGISTER.pack(
        kind,
        principal,
        rate_bp,
        start_ms,
        term_months,
        freq_months,
        servicer,
        contract_fp,
        obligor_fp,
        file_id,
    )
    reads = orgs.member_reads(sender, org) | {fc.org_key(servicer)}
    return orgs.make_tx(chain_id, c.OP_REGISTER, sender, nonce, reads, {c.asset_key(aid)}, payload), aid


def cashflow(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    asset_id: bytes,
    seq: int,
    kind: int,
    value_ms: int,
    principal: int = 0,
    interest: int = 0,
    aux: int = 0,
) -> tx.Tx:
    payload = _CASHFLOW.pack(asset_id, seq, kind, value_ms, principal, interest, aux)
    writes = {c.asset_key(asset_id), c.event_key(asset_id, seq)}
    return orgs.make_tx(
        chain_id, c.OP_CASHFLOW, sender, nonce, orgs.member_reads(sender, org), writes, payload
    )


def set_servicer(
    chain_id: int, sender: bytes, org: bytes, nonce: int, pool_id: bytes, new: bytes, asset_ids: list[bytes]
) -> tx.Tx:
    payload = pool_id + new + bytes((len(asset_ids),)) + b"".join(asset_ids)
    reads = orgs.member_reads(sender, org) | {fc.org_key(new)}
    if pool_id != c.ZERO_ID:
        reads.add(c.pool_key(pool_id))
    writes = {c.asset_key(a) for a in asset_ids}
    return orgs.make_tx(chain_id, c.OP_SET_SERVICER, sender, nonce, reads, writes, payload)
