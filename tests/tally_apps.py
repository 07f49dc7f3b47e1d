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
