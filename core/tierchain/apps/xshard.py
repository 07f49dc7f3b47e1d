"""Cross-shard transfers: two-phase commit recorded on the shards' own chains.

A transfer from account A (balance on shard ``src``) to B (balance on shard
``dst``) runs as four transactions, each an ordinary single-shard transaction
(docs/sharding.md "Cross-shard operations"):

1. ``xtransfer`` — signed by A, executed on ``src``: **prepare** at the source.
   A's balance is debited into an escrow lock ``@<src>xl/<A><nonce>`` holding
   (B, amount, dst, deadline). The lock is the unit of locking: the value in
   flight is held, A's other transactions go on with the rest of the balance.
2. ``xcredit`` — signed by the coordinator, executed on ``dst``: **prepare** at
   the destination. Records ``@<dst>xc/<src><A><nonce>`` as PREPARED when B is a
   registered account and the deadline has not passed, else REFUSED. No value
   moves yet.
3. ``xdecide`` — executed on ``src``: the **decision**, recorded once, on the
   source chain. COMMIT (coordinator only, not after the deadline) burns the
   escrow; ABORT (coordinator at any time, or A itself once the deadline has
   passed) refunds A. The lock moves from ``xl/`` to ``xd/`` with its outcome;
   a second decision finds no pending lock and fails (``XSHARD_STATE``).
4. ``xfinish`` — signed by the coordinator, executed on ``dst``: COMMIT credits
   B, ABORT cancels; the record moves from ``xc/`` to ``xf/``.

The decision on the source chain is the single point of truth: the
coordinator keeps no log of its own and can be killed at any moment; a new one
reads the pending ``xl/`` and ``xc/`` records of every shard and finishes each
transfer (``tierchain.apps.coordinator``). Value is conserved at every height:
sum(balances) + sum(PREPARED and COMMITTED-but-unfinished escrows) is constant,
and once every record is finished it is sum(balances) alone.

Every record key is *pinned* (``@`` + u16 shard, ``tierchain.engine.route``), so each
transaction's keys live on the one shard that executes it.

Replicated records (docs/sharding.md "Replicated records"): keys of a ``REPLICATED``
placement rule (finance's organizations, keys, parameters and proposals, ...) are written
by ordinary transactions on the primary shard only; ``xreplicate`` (op 7), signed by the
coordinator, copies a snapshot of them onto another shard: it records the primary's
height the snapshot was taken at in ``@<shard>rp/`` and refuses an older one, so a
shard's copy only moves forward through the primary's history
(``tierchain.apps.coordinator.Replicator`` drives it). The router admits it on every
shard but the primary, and writing replicated keys nowhere else (``route.writes_on``).

The ``xshard`` app (``APP``, built in): op codes 3..7, the ``coordinator`` role (bit
12 of the roles mask), the pinned placement rule for ``@`` keys; it builds on the
accounts app (``tierchain.apps.accounts``: balances and roles) and refuses with engine codes.
"""

from __future__ import annotations

import dataclasses
import enum
import struct

from tierchain.apps.accounts import account_key, amount_max, balance_key, roles_of
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OP_XTRANSFER = 3
OP_XCREDIT = 4
OP_XDECIDE = 5
OP_XFINISH = 6
OP_XREPLICATE = 7
COORDINATOR = apps.Role("coordinator", 12)  # bit 12: after the accounts' and finance's roles
PINNED_PREFIX = b"@"  # "@" + u16 LE shard + rest lives on that shard (tierchain.engine.route)
_ops = apps.OpTable()

timeout_ms_min = 100
timeout_ms_max = 3_600_000  # an hour: how long value may sit in escrow before A may reclaim it
xid_bytes = 2 + 32 + 8  # source shard u16, sender, sender's nonce on the source shard


class Status(enum.IntEnum):
    PREPARED = 1
    COMMITTED = 2  # lock: escrow burned; credit: B credited
    ABORTED = 3  # lock: A refunded; credit: cancelled
    REFUSED = 4  # credit only: the destination cannot take it (prepare voted no)


class Decision(enum.IntEnum):
    COMMIT = Status.COMMITTED
    ABORT = Status.ABORTED


_XFER = struct.Struct("<32sQHHI")  # to, amount, src, dst, timeout_ms
_XID = struct.Struct("<H32sQ")  # src, sender, nonce
_CREDIT = struct.Struct("<H32sQH32sQQ")  # xid, dst, to, amount, deadline_ms
_DECISION = struct.Struct("<H32sQB")  # xid, decision (decide, at the source)
_FINISH = struct.Struct("<H32sQHB")  # xid, dst, decision (finish, at the destination)
_LOCK = struct.Struct("<B32sQHQQ")  # status, to, amount, dst, deadline_ms, height
_CREDIT_REC = struct.Struct("<B32sQQQ")  # status, to, amount, deadline_ms, height


def pin(shard: int) -> bytes:
    """The pinned-key prefix of ``shard`` (routes to ``shard % n_shards``)."""
    return b"@" + shard.to_bytes(2, "little")


def replica_cursor_key(shard: int) -> bytes:
    """Shard ``shard``'s replication cursor: the primary height of its copy (u64 LE)."""
    return pin(shard) + b"rp/"


def xid(src: int, sender: bytes, nonce: int) -> bytes:
    return _XID.pack(src, sender, nonce)


def lock_key(src: int, sender: bytes, nonce: int) -> bytes:
    return pin(src) + b"xl/" + sender + nonce.to_bytes(8, "little")


def decided_key(src: int, sender: bytes, nonce: int) -> bytes:
    return pin(src) + b"xd/" + sender + nonce.to_bytes(8, "little")


def credit_key(dst: int, src: int, sender: bytes, nonce: int) -> bytes:
    return pin(dst) + b"xc/" + xid(src, sender, nonce)


def finished_key(dst: int, src: int, sender: bytes, nonce: int) -> bytes:
    return pin(dst) + b"xf/" + xid(src, sender, nonce)


@dataclasses.dataclass(frozen=True)
class Lock:
    """The source side of one transfer (``xl/`` pending, ``xd/`` decided)."""

    src: int
    sender: bytes
    nonce: int
    status: Status
    to: bytes
    amount: int
    dst: int
    deadline_ms: int
    height: int

    def encode(self) -> bytes:
        return _LOCK.pack(self.status, self.to, self.amount, self.dst, self.deadline_ms, self.height)

    @classmethod
    def from_record(cls, key: bytes, raw: bytes) -> Lock:
        """From a state (key, value) pair of an ``xl/`` or ``xd/`` record."""
        src = int.from_bytes(key[1:3], "little")
        sender, nonce = key[6:38], int.from_bytes(key[38:46], "little")
        status, to, amount, dst, deadline, height = _LOCK.unpack(raw)
        return cls(src, sender, nonce, Status(status), to, amount, dst, deadline, height)


@dataclasses.dataclass(frozen=True)
class Credit:
    """The destination side of one transfer (``xc/`` pending, ``xf/`` finished)."""

    dst: int
    src: int
    sender: bytes
    nonce: int
    status: Status
    to: bytes
    amount: int
    deadline_ms: int
    height: int

    def encode(self) -> bytes:
        return _CREDIT_REC.pack(self.status, self.to, self.amount, self.deadline_ms, self.height)

    @classmethod
    def from_record(cls, key: bytes, raw: bytes) -> Credit:
        dst = int.from_bytes(key[1:3], "little")
        src, sender, nonce = _XID.unpack(key[6 : 6 + _XID.size])
        status, to, amount, deadline, height = _CREDIT_REC.unpack(raw)
        return cls(dst, src, sender, nonce, Status(status), to, amount, deadline, height)


# --- handlers ---------------------------------------------------------------------------------


def _coordinator(ctx: TxContext) -> bool:
    return bool((roles_of(ctx, ctx.sender) or 0) & (1 << COORDINATOR.bit))


def _require_coordinator(ctx: TxContext) -> None:
    if not _coordinator(ctx):
        raise OpFailed(Reject.UNAUTHORIZED, "needs the coordinator role")


@_ops.op(OP_XTRANSFER, "xshard.transfer")
def _xtransfer(ctx: TxContext) -> None:
    if len(ctx.payload) != _XFER.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "xtransfer payload is to, amount, src, dst, timeout_ms")
    to, amount, src, dst, timeout_ms = _XFER.unpack(ctx.payload)
    if src == dst or not 0 < amount <= amount_max or not timeout_ms_min <= timeout_ms <= timeout_ms_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "same shard, amount or timeout out of range")
    have = ctx.get_u64(balance_key(ctx.sender))
    if have < amount:
        raise OpFailed(Reject.INSUFFICIENT_FUNDS)
    key = lock_key(src, ctx.sender, ctx.nonce)
    deadline = ctx.timestamp_ms + timeout_ms
    ctx.put_u64(balance_key(ctx.sender), have - amount)
    ctx.put(key, _LOCK.pack(Status.PREPARED, to, amount, dst, deadline, ctx.height))
    ctx.emit(b"xshard.prepared", xid(src, ctx.sender, ctx.nonce))


@_ops.op(OP_XCREDIT, "xshard.credit")
def _xcredit(ctx: TxContext) -> None:
    if len(ctx.payload) != _CREDIT.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    _require_coordinator(ctx)
    src, sender, nonce, dst, to, amount, deadline = _CREDIT.unpack(ctx.payload)
    dst_key = credit_key(dst, src, sender, nonce)
    if ctx.get(dst_key) is not None or ctx.get(finished_key(dst, src, sender, nonce)) is not None:
        raise OpFailed(Reject.XSHARD_STATE, "already prepared")
    ok = ctx.get(account_key(to)) is not None and ctx.timestamp_ms <= deadline and 0 < amount <= amount_max
    status = Status.PREPARED if ok else Status.REFUSED
    ctx.put(dst_key, _CREDIT_REC.pack(status, to, amount, deadline, ctx.height))
    ctx.emit(b"xshard.credit", bytes((status,)) + xid(src, sender, nonce))


@_ops.op(OP_XDECIDE, "xshard.decide")
def _xdecide(ctx: TxContext) -> None:
    if len(ctx.payload) != _DECISION.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    src, sender, nonce, decision = _DECISION.unpack(ctx.payload)
    if decision not in (Decision.COMMIT, Decision.ABORT):
        raise OpFailed(Reject.BAD_PAYLOAD, "decision")
    key = lock_key(src, sender, nonce)
    raw = ctx.get(key)
    if raw is None:
        raise OpFailed(Reject.XSHARD_STATE, "no pending lock (unknown or already decided)")
    lock = Lock.from_record(key, raw)
    late = ctx.timestamp_ms > lock.deadline_ms
    if decision == Decision.COMMIT:
        _require_coordinator(ctx)
        if late:
            raise OpFailed(Reject.XSHARD_DEADLINE, "commit after the deadline")
    elif not (ctx.sender == sender and late) and not _coordinator(ctx):
        raise OpFailed(Reject.UNAUTHORIZED, "abort: the coordinator, or the sender after the deadline")
    if decision == Decision.ABORT:
        refund = ctx.get_u64(balance_key(sender)) + lock.amount
        ctx.put_u64(balance_key(sender), refund)
    ctx.delete(key)
    done = dataclasses.replace(lock, status=Status(decision), height=ctx.height)
    ctx.put(decided_key(src, sender, nonce), done.encode())
    ctx.emit(b"xshard.decided", bytes((decision,)) + xid(src, sender, nonce))


@_ops.op(OP_XFINISH, "xshard.finish")
def _xfinish(ctx: TxContext) -> None:
    if len(ctx.payload) != _FINISH.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    _require_coordinator(ctx)
    src, sender, nonce, dst, decision = _FINISH.unpack(ctx.payload)
    if decision not in (Decision.COMMIT, Decision.ABORT):
        raise OpFailed(Reject.BAD_PAYLOAD, "decision")
    key = credit_key(dst, src, sender, nonce)
    raw = ctx.get(key)
    if raw is None:
        raise OpFailed(Reject.XSHARD_STATE, "no pending credit (unknown or already finished)")
    credit = Credit.from_record(key, raw)
    if decision == Decision.COMMIT:
        if credit.status != Status.PREPARED:
            raise OpFailed(Reject.XSHARD_STATE, "commit of a refused credit")
        total = ctx.get_u64(balance_key(credit.to)) + credit.amount
        if total > amount_max:
            raise OpFailed(Reject.BAD_PAYLOAD, "recipient balance would overflow")
        ctx.put_u64(balance_key(credit.to), total)
    ctx.delete(key)
    done = dataclasses.replace(credit, status=Status(decision), height=ctx.height)
    ctx.put(finished_key(credit.dst, src, sender, nonce), done.encode())
    ctx.emit(b"xshard.finished", bytes((decision,)) + xid(src, sender, nonce))


# --- replication of replicated records ---------------------------------------------------------

_REPLICATE_HEAD = struct.Struct("<HQ")  # shard, primary height of the snapshot
_ENTRY_HEAD = struct.Struct("<B")  # key length; then the key, then a value (or a deletion)
_VALUE_HEAD = struct.Struct("<BH")  # 1 + value length, or 0 (deleted) + 0
replicate_entries_max = 30  # + the cursor write and the coordinator's account read: 32 keys


def encode_entries(shard: int, height: int, entries: list[tuple[bytes, bytes | None]]) -> bytes:
    """``xreplicate``'s payload: ``entries`` are (replicated key, value or None to delete)."""
    out = [_REPLICATE_HEAD.pack(shard, height)]
    for key, value in entries:
        out.append(_ENTRY_HEAD.pack(len(key)) + key)
        out.append(_VALUE_HEAD.pack(0, 0) if value is None else _VALUE_HEAD.pack(1, len(value)) + value)
    return b"".join(out)


def decode_entries(payload: bytes) -> tuple[int, int, list[tuple[bytes, bytes | None]]]:
    """(shard, height, entries) of an ``xreplicate`` payload; ValueError if malformed."""
    try:
        shard, height = _REPLICATE_HEAD.unpack_from(payload)
        at, entries = _REPLICATE_HEAD.size, []
        while at < len(payload):
            (n,) = _ENTRY_HEAD.unpack_from(payload, at)
            key = payload[at + 1 : at + 1 + n]
            at += 1 + n
            present, size = _VALUE_HEAD.unpack_from(payload, at)
            at += _VALUE_HEAD.size
            value = payload[at : at + size] if present == 1 else None
            short = len(key) != n or (value is not None and len(value) != size)
            if short or present > 1 or (present == 0 and size):
                raise ValueError("truncated or malformed entry")
            at += size
            entries.append((key, value))
    except struct.error as exc:
        raise ValueError(str(exc)) from exc
    return shard, height, entries


def replicated_prefixes(app_set: apps.AppSet) -> tuple[bytes, ...]:
    """The prefixes of ``app_set``'s replicated placement rules."""
    return tuple(p.prefix for p in app_set.placement if p.rule == apps.REPLICATED)


@_ops.op(OP_XREPLICATE, "xshard.replicate")
def _xreplicate(ctx: TxContext) -> None:
    _require_coordinator(ctx)
    try:
        shard, height, entries = decode_entries(ctx.payload)
    except ValueError as exc:
        raise OpFailed(Reject.BAD_PAYLOAD, f"replicate payload: {exc}") from exc
    if not entries or len(entries) > replicate_entries_max:
        raise OpFailed(Reject.BAD_PAYLOAD, f"1..{replicate_entries_max} entries")
    prefixes = replicated_prefixes(ctx.apps)
    for key, _ in entries:
        if not key.startswith(prefixes):
            raise OpFailed(Reject.BAD_PAYLOAD, "not a replicated key")
    cursor = replica_cursor_key(shard)
    if height < ctx.get_u64(cursor):
        raise OpFailed(Reject.XSHARD_STATE, "a snapshot older than this shard's copy")
    for key, value in entries:
        if value is None:
            ctx.delete(key)
        else:
            ctx.put(key, value)
    ctx.put_u64(cursor, height)
    ctx.emit(b"xshard.replicated", _REPLICATE_HEAD.pack(shard, height) + len(entries).to_bytes(2, "little"))


# --- client-side builders ------------------------------------------------------------------


def transfer(
    chain_id: int, src: int, dst: int, sender: bytes, nonce: int, to: bytes, amount: int, timeout_ms: int
) -> tx.Tx:
    """A's signed-to-be prepare; ``src``/``dst`` are the shards of ``bal/A`` and ``bal/B``
    and ``chain_id`` the source shard's. ``nonce`` is A's nonce on the source shard."""
    return _tx(
        chain_id,
        OP_XTRANSFER,
        sender,
        nonce,
        (),
        (balance_key(sender), lock_key(src, sender, nonce)),
        _XFER.pack(to, amount, src, dst, timeout_ms),
    )


def credit(chain_id: int, coordinator: bytes, nonce: int, lock: Lock) -> tx.Tx:
    reads = (account_key(coordinator), account_key(lock.to), finished_key(lock.dst, *_ids(lock)))
    writes = (credit_key(lock.dst, *_ids(lock)),)
    payload = _CREDIT.pack(*_ids(lock), lock.dst, lock.to, lock.amount, lock.deadline_ms)
    return _tx(chain_id, OP_XCREDIT, coordinator, nonce, reads, writes, payload)


def decide(chain_id: int, sender: bytes, nonce: int, lock: Lock, decision: Decision) -> tx.Tx:
    """The decision for ``lock``, by the coordinator (or by A, to reclaim after the deadline)."""
    writes = (lock_key(*_ids(lock)), decided_key(*_ids(lock)), balance_key(lock.sender))
    return _tx(
        chain_id,
        OP_XDECIDE,
        sender,
        nonce,
        (account_key(sender),),
        writes,
        _DECISION.pack(*_ids(lock), decision),
    )


def finish(chain_id: int, coordinator: bytes, nonce: int, credit_: Credit, decision: Decision) -> tx.Tx:
    ids = (credit_.src, credit_.sender, credit_.nonce)
    writes = (credit_key(credit_.dst, *ids), finished_key(credit_.dst, *ids), balance_key(credit_.to))
    payload = _FINISH.pack(*ids, credit_.dst, decision)
    return _tx(chain_id, OP_XFINISH, coordinator, nonce, (account_key(coordinator),), writes, payload)


def replicate(
    chain_id: int,
    coordinator: bytes,
    nonce: int,
    shard: int,
    height: int,
    entries: list[tuple[bytes, bytes | None]],
) -> tx.Tx:
    """Copy ``entries`` (replicated keys as of primary height ``height``) onto ``shard``
    (``chain_id``: that shard's); signed by the coordinator with its nonce there."""
    writes = (replica_cursor_key(shard), *(k for k, _ in entries))
    payload = encode_entries(shard, height, entries)
    return _tx(chain_id, OP_XREPLICATE, coordinator, nonce, (account_key(coordinator),), writes, payload)


def _ids(lock: Lock) -> tuple[int, bytes, int]:
    return lock.src, lock.sender, lock.nonce


_tx = tx.unsigned


APP = apps.App(
    name="xshard",
    ops=tuple(_ops.ops),
    op_codes=range(OP_XTRANSFER, OP_XREPLICATE + 1),
    roles=(COORDINATOR,),
    placement=(apps.Placement(PINNED_PREFIX, apps.PINNED),),
    replicates=(OP_XREPLICATE,),
)
