"""Pools: eligibility-checked selection of assets, cut-off, and transfer to a trust.

Ops (signed by an active key of an active finance organization: ``orgs.member``):

* ``OP_POOL_CREATE`` (168) — an *originator* opens a pool with its ``Criteria`` (max single
  outstanding principal, rate range, max remaining term, allowed kinds, max assets) and a
  name. Its id is ``codes.pool_id(originator, sender, nonce)``.
* ``OP_POOL_SELECT`` (169) — the pool's originator selects up to ``select_per_tx_max`` of
  its own assets into the OPEN pool. Each must pass ``ineligible``: PERFORMING (not
  overdue, defaulted or paid off), in no pool at all (``ABS_ALREADY_POOLED``: the asset
  record names its one pool, so pooling it twice, in this or another pool, is refused),
  and within the criteria. One failing asset refuses the whole transaction. The asset's
  outstanding principal is recorded as its cut-off balance (``ab/<tag>M``).
* ``OP_POOL_REMOVE`` (170) — the originator takes assets out of its OPEN pool.
* ``OP_POOL_CLOSE`` (171) — cut-off: the pool (at least one asset) is CLOSED, its asset
  list final.
* ``OP_POOL_TRANSFER`` (172) — the originator offers its CLOSED pool to a trustee (an
  organization with finance's ``trustee`` role, not itself); it may re-offer to another
  until one accepts.
* ``OP_POOL_ACCEPT`` (173) — the offered trustee accepts: the pool is IN_TRUST. From then
  on only the trustee appoints servicers of its assets (``assets.OP_SET_SERVICER``).

Guarantees: an asset is in at most one pool, ever (its ``pool`` field is set once at
selection and cleared only by a removal from a still-OPEN pool, together with its member
record); a pool's ``assets`` and ``cutoff_balance`` are the count and the sum of its member
records; only the pool's originator changes its list, and nothing changes it after cut-off.
"""

from __future__ import annotations

import struct

from tierchain.apps.abs import codes as c
from tierchain.apps.abs.assets import load_asset, put_asset, unpack_ids
from tierchain.apps.abs.codes import AbsReject, Asset, AssetStatus, Criteria, Member, Pool, PoolStatus
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import orgs
from tierchain.apps.records import evolve
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OPS = apps.OpTable()
TRUSTEE = orgs.role_bits("trustee")
_CRITERIA_BYTES = len(Criteria(1, 0, 0, 1, 2, 1).encode())


def ineligible(criteria: Criteria, asset: Asset) -> AbsReject | None:
    """Why ``asset`` may not join a pool with ``criteria`` (None: it may), besides its
    originator and its being in no pool, which selection checks first."""
    if asset.status != AssetStatus.PERFORMING:
        return AbsReject.ABS_INELIGIBLE_STATUS
    if not criteria.allows_kind(asset.kind):
        return AbsReject.ABS_INELIGIBLE_KIND
    if asset.outstanding > criteria.max_principal:
        return AbsReject.ABS_INELIGIBLE_PRINCIPAL
    if not criteria.min_rate_bp <= asset.rate_bp <= criteria.max_rate_bp:
        return AbsReject.ABS_INELIGIBLE_RATE
    if asset.remaining_months > criteria.max_remaining_months:
        return AbsReject.ABS_INELIGIBLE_TERM
    return None


def _load_pool(ctx: TxContext, pool_id: bytes) -> Pool:
    raw = ctx.get(c.pool_key(pool_id))
    if raw is None:
        raise OpFailed(AbsReject.ABS_NO_SUCH_POOL)
    return Pool.decode(raw)


def _own_pool(ctx: TxContext, org: bytes, pool_id: bytes, open_only: bool = True) -> Pool:
    """The sender's organization's pool; OPEN unless ``open_only`` is False."""
    pool = _load_pool(ctx, pool_id)
    if pool.originator != org:
        raise OpFailed(AbsReject.ABS_NOT_ORIGINATOR)
    if pool.status == PoolStatus.IN_TRUST:
        raise OpFailed(AbsReject.ABS_IN_TRUST)
    if open_only and pool.status != PoolStatus.OPEN:
        raise OpFailed(AbsReject.ABS_POOL_NOT_OPEN)
    return pool


def _pool_id(payload: bytes) -> bytes:
    if len(payload) < c.id_bytes:
        raise OpFailed(Reject.BAD_PAYLOAD, "pool id")
    return payload[: c.id_bytes]


@OPS.op(c.OP_POOL_CREATE, "abs.pool_create")
def _create(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx, c.ORIGINATOR)
    p = ctx.payload
    if len(p) < _CRITERIA_BYTES + 1 or len(p) != _CRITERIA_BYTES + 1 + p[_CRITERIA_BYTES]:
        raise OpFailed(Reject.BAD_PAYLOAD, "pool create")
    criteria, name = Criteria.decode(p[:_CRITERIA_BYTES]), p[_CRITERIA_BYTES + 1 :]
    if not 1 <= len(name) <= c.pool_name_bytes_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "pool name")
    if not criteria.valid():
        raise OpFailed(AbsReject.ABS_BAD_CRITERIA)
    pid = c.pool_id(org, ctx.sender, ctx.nonce, suite=ctx.suite)
    if ctx.get(c.pool_key(pid)) is not None:
        raise OpFailed(AbsReject.ABS_POOL_EXISTS)
    pool = Pool(org, c.ZERO_ID, PoolStatus.OPEN, criteria, 0, 0, ctx.height, ctx.timestamp_ms, 0, 0, name)
    ctx.put(c.pool_key(pid), pool.encode())
    ctx.emit(b"abs.pool.created", pid + org)


@OPS.op(c.OP_POOL_SELECT, "abs.pool_select")
def _select(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx, c.ORIGINATOR)
    pid = _pool_id(ctx.payload)
    ids = unpack_ids(ctx.payload, c.id_bytes, c.select_per_tx_max)
    pool = _own_pool(ctx, org, pid)
    if pool.assets + len(ids) > pool.criteria.max_assets:
        raise OpFailed(AbsReject.ABS_POOL_FULL)
    balance = pool.cutoff_balance
    for aid in ids:
        a = load_asset(ctx, aid)
        if a.originator != org:
            raise OpFailed(AbsReject.ABS_NOT_ORIGINATOR)
        if a.pool != c.ZERO_ID:
            raise OpFailed(AbsReject.ABS_ALREADY_POOLED)
        why = ineligible(pool.criteria, a)
        if why is not None:
            raise OpFailed(why)
        balance += a.outstanding
        if balance > c.amount_max:
            raise OpFailed(AbsReject.ABS_POOL_FULL)
        put_asset(ctx, aid, evolve(a, pool=pid), "abs.pool_select")
        ctx.put(c.member_key(pid, aid), Member(a.outstanding, ctx.height, ctx.timestamp_ms).encode())
    pool = evolve(pool, assets=pool.assets + len(ids), cutoff_balance=balance)
    ctx.put(c.pool_key(pid), pool.encode())
    ctx.emit(b"abs.pool.selected", pid + struct.pack("<BIQ", len(ids), pool.assets, balance))


@OPS.op(c.OP_POOL_REMOVE, "abs.pool_remove")
def _remove(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx, c.ORIGINATOR)
    pid = _pool_id(ctx.payload)
    ids = unpack_ids(ctx.payload, c.id_bytes, c.select_per_tx_max)
    pool = _own_pool(ctx, org, pid)
    balance = pool.cutoff_balance
    for aid in ids:
        a = load_asset(ctx, aid)
        raw = ctx.get(c.member_key(pid, aid))
        if a.pool != pid or raw is None:
            raise OpFailed(AbsReject.ABS_NOT_IN_POOL)
        balance -= Member.decode(raw).cutoff_balance
        ctx.delete(c.member_key(pid, aid))
        put_asset(ctx, aid, evolve(a, pool=c.ZERO_ID), "abs.pool_remove")
    pool = evolve(pool, assets=pool.assets - len(ids), cutoff_balance=balance)
    ctx.put(c.pool_key(pid), pool.encode())
    ctx.emit(b"abs.pool.removed", pid + struct.pack("<BIQ", len(ids), pool.assets, balance))


@OPS.op(c.OP_POOL_CLOSE, "abs.pool_close")
def _close(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx, c.ORIGINATOR)
    if len(ctx.payload) != c.id_bytes:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pool = _own_pool(ctx, org, ctx.payload)
    if pool.assets == 0:
        raise OpFailed(AbsReject.ABS_POOL_EMPTY)
    pool = evolve(pool, status=PoolStatus.CLOSED, closed_ms=ctx.timestamp_ms)
    ctx.put(c.pool_key(ctx.payload), pool.encode())
    ctx.emit(b"abs.pool.closed", ctx.payload + struct.pack("<IQ", pool.assets, pool.cutoff_balance))


@OPS.op(c.OP_POOL_TRANSFER, "abs.pool_transfer")
def _transfer(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx, c.ORIGINATOR)
    if len(ctx.payload) != 2 * c.id_bytes:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pid, trustee = ctx.payload[:16], ctx.payload[16:]
    pool = _own_pool(ctx, org, pid, open_only=False)
    if pool.status == PoolStatus.OPEN:
        raise OpFailed(AbsReject.ABS_POOL_NOT_CLOSED)
    orgs.active_org_with(ctx, trustee, TRUSTEE)
    if trustee == org:
        raise OpFailed(fc.FinanceReject.BAD_COUNTERPARTY)  # a pool is not its own trust
    pool = evolve(pool, status=PoolStatus.OFFERED, trustee=trustee)
    ctx.put(c.pool_key(pid), pool.encode())
    ctx.emit(b"abs.pool.offered", pid + trustee)


@OPS.op(c.OP_POOL_ACCEPT, "abs.pool_accept")
def _accept(ctx: TxContext) -> None:
    org, _ = orgs.member(ctx, TRUSTEE)
    if len(ctx.payload) != c.id_bytes:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pool = _load_pool(ctx, ctx.payload)
    if pool.status != PoolStatus.OFFERED:
        raise OpFailed(AbsReject.ABS_NOT_OFFERED)
    if pool.trustee != org:
        raise OpFailed(AbsReject.ABS_NOT_TRUSTEE)
    pool = evolve(pool, status=PoolStatus.IN_TRUST, trust_ms=ctx.timestamp_ms)
    ctx.put(c.pool_key(ctx.payload), pool.encode())
    ctx.emit(b"abs.pool.in_trust", ctx.payload + org)


# --- client-side builders ---------------------------------------------------------------------


def create(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    criteria: Criteria,
    name: str | bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, bytes]:
    raw = name.encode() if isinstance(name, str) else name
    if not 1 <= len(raw) <= c.pool_name_bytes_max:
        raise ValueError(f"a pool name is 1..{c.pool_name_bytes_max} bytes")
    pid = c.pool_id(org, sender, nonce, suite=suite)
    payload = criteria.encode() + bytes((len(raw),)) + raw
    reads = orgs.member_reads(sender, org)
    return orgs.make_tx(chain_id, c.OP_POOL_CREATE, sender, nonce, reads, {c.pool_key(pid)}, payload), pid


def select(
    chain_id: int, sender: bytes, org: bytes, nonce: int, pool_id: bytes, asset_ids: list[bytes]
) -> tx.Tx:
    return _membership(c.OP_POOL_SELECT, chain_id, sender, org, nonce, pool_id, asset_ids)


def remove(
    chain_id: int, sender: bytes, org: bytes, nonce: int, pool_id: bytes, asset_ids: list[bytes]
) -> tx.Tx:
    return _membership(c.OP_POOL_REMOVE, chain_id, sender, org, nonce, pool_id, asset_ids)


def _membership(
    op: int, chain_id: int, sender: bytes, org: bytes, nonce: int, pool_id: bytes, asset_ids: list[bytes]
) -> tx.Tx:
    payload = pool_id + bytes((len(asset_ids),)) + b"".join(asset_ids)
    writes = {c.pool_key(pool_id)}
    for aid in asset_ids:
        writes |= {c.asset_key(aid), c.member_key(pool_id, aid)}
    return orgs.make_tx(chain_id, op, sender, nonce, orgs.member_reads(sender, org), writes, payload)


def close(chain_id: int, sender: bytes, org: bytes, nonce: int, pool_id: bytes) -> tx.Tx:
    reads = orgs.member_reads(sender, org)
    return orgs.make_tx(chain_id, c.OP_POOL_CLOSE, sender, nonce, reads, {c.pool_key(pool_id)}, pool_id)


def transfer(chain_id: int, sender: bytes, org: bytes, nonce: int, pool_id: bytes, trustee: bytes) -> tx.Tx:
    reads = orgs.member_reads(sender, org) | {fc.org_key(trustee)}
    return orgs.make_tx(
        chain_id, c.OP_POOL_TRANSFER, sender, nonce, reads, {c.pool_key(pool_id)}, pool_id + trustee
    )


def accept(chain_id: int, sender: bytes, org: bytes, nonce: int, pool_id: bytes) -> tx.Tx:
    reads = orgs.member_reads(sender, org)
    return orgs.make_tx(chain_id, c.OP_POOL_ACCEPT, sender, nonce, reads, {c.pool_key(pool_id)}, pool_id)
