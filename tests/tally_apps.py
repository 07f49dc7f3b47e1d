"""A tiny app for the replication tests, and a deliberately wrong build of it.

``TALLY`` counts: op ``tally.add`` adds its payload (u64 LE) to the sender's counter.
``WRONG_TALLY`` has the same name, op codes and keys, and adds one more: a node that
loads it (``TIERCHAIN_APPS=tally_apps:WRONG_TALLY``) computes a different state from the
same blocks — the bug, or the tampering, replication must catch by app hash.
"""

from __future__ import annotations

import struct

from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OP_ADD = 5000
_U64 = struct.Struct("<Q")


def counter_key(sender: bytes) -> bytes:
    return b"tly/" + sender


def _table(extra: int) -> apps.OpTable:
    table = apps.OpTable()

    @table.op(OP_ADD, "tally.add")
    def _add(ctx: TxContext) -> None:
        if len(ctx.payload) != 8:
            raise OpFailed(Reject.BAD_PAYLOAD)
        key = counter_key(ctx.sender)
        raw = ctx.get(key)
        count = 0 if raw is None else _U64.unpack(raw)[0]
        ctx.put(key, _U64.pack(count + _U64.unpack(ctx.payload)[0] + extra))

    return table


def add(chain_id: int, sender: bytes, nonce: int, amount: int) -> tx.Tx:
    return tx.Tx(
        chain_id=chain_id,
        shard_id=0,
        op=OP_ADD,
        sender=sender,
        nonce=nonce,
        expires_at=0,
        reads=(),
        writes=(counter_key(sender),),
        payload=_U64.pack(amount),
    )


TALLY = apps.App(name="tally", ops=tuple(_table(0).ops), op_codes=range(5000, 5008))
WRONG_TALLY = apps.App(name="tally", ops=tuple(_table(1).ops), op_codes=range(5000, 5008))


# --- an app with a batch admission check (``App.checks``: tests/engine/test_batch_checks.py) ---

OP_PUT = 5100
PROOF_OK = b"ok"  # the stand-in for a valid proof: a payload starting with it
check_calls: list[int] = []  # rows per call of PROOFED's check, for the tests to read


def proofed_key(sender: bytes) -> bytes:
    return b"prf/" + sender


def _put(ctx: TxContext) -> None:
    ctx.put(proofed_key(ctx.sender), ctx.payload)


def _check(batch, rows, suite):
    check_calls.append(len(rows))
    return [0 if batch.payload(i).startswith(PROOF_OK) else Reject.BAD_PROOF for i in rows.tolist()]


def put(chain_id: int, sender: bytes, nonce: int, payload: bytes) -> tx.Tx:
    return tx.Tx(
        chain_id=chain_id,
        shard_id=0,
        op=OP_PUT,
        sender=sender,
        nonce=nonce,
        expires_at=0,
        reads=(),
        writes=(proofed_key(sender),),
        payload=payload,
    )


_PUT_OPS = (apps.Op(OP_PUT, "proofed.put", _put),)
PROOFED = apps.App(
    name="proofed",
    ops=_PUT_OPS,
    op_codes=range(5100, 5101),
    checks=(apps.BatchCheck(frozenset({OP_PUT}), _check, "proofed.proof"),),
)
# The same app without its check: what a node that skipped the proofs would have admitted.
PROOFED_UNCHECKED = apps.App(name="proofed", ops=_PUT_OPS, op_codes=range(5100, 5101))
