"""Conflict scheduling: transactions of a block -> waves of parallel execution.

Every transaction declares the keys it reads and writes (``docs/wire-format.md``);
its sender's public key is an implicit write key, so one sender's transactions
stay in nonce order. Two transactions conflict when one writes a key the other
reads or writes. ``schedule`` gives every transaction a wave (int32) such that

* no two transactions in one wave conflict, so a wave may run in any order
  or in parallel against the state as of the wave's start;
* of two conflicting transactions, the earlier in block order gets the lower
  wave, so executing wave after wave equals executing serially in block order;
* the number of waves is the length of the longest chain of conflicts (the
  greedy "one past the latest conflicting wave" rule is optimal).

The native implementation (``tierchain._hot.schedule``, ext/cython/_schedule.pxi)
is linear in the number of keys: it interns keys in a SipHash-keyed open-
addressing table and keeps, per key, the last wave that wrote and that read it.
``schedule_reference`` is the same rule over Python dicts: the readable
definition, the property tests' oracle and the benchmarks' naive baseline.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from tierchain import _hot
from tierchain.wire.batch import Batch
from tierchain.wire.tx import Tx

__all__ = ["access_sets", "schedule", "schedule_reference", "waves"]


def schedule(batch: Batch, *, sender_is_write: bool = True) -> np.ndarray:
    """Wave (int32[n]) of every row of ``batch``; -1 for rejected rows."""
    return _hot.schedule(
        batch.buf,
        batch.code,
        batch.key_first,
        batch.key_start,
        batch.key_len,
        batch.n_read,
        batch.n_write,
        batch.sender,
        sender_is_write=sender_is_write,
    )


def waves(batch_or_wave: Batch | np.ndarray) -> list[np.ndarray]:
    """Row indices of each wave, in block order inside a wave; rows at -1 are left out.

    Takes a Batch (scheduled with the defaults) or the wave column of ``schedule``.
    """
    if isinstance(batch_or_wave, Batch):
        wave = schedule(batch_or_wave)
    else:
        wave = np.asarray(batch_or_wave)
    if wave.size == 0 or wave.max() < 0:
        return []
    order = np.argsort(wave, kind="stable")  # stable: block order inside a wave
    order = order[wave[order] >= 0]
    counts = np.bincount(wave[order])
    return np.split(order, np.cumsum(counts)[:-1])


Access = tuple[Iterable[Hashable], Iterable[Hashable]]


def schedule_reference(access: Sequence[Access | None]) -> list[int]:
    """The scheduling rule, written plainly: waves for (reads, writes) pairs, -1 for None.

    Keys may be any hashables; ``access_sets`` builds the pairs for a batch or
    for decoded ``Tx`` objects (with the sender in its own namespace).
    """
    last_write: dict[Hashable, int] = {}
    last_read: dict[Hashable, int] = {}
    out = []
    for item in access:
        if item is None:
            out.append(-1)
            continue
        reads, writes = list(item[0]), list(item[1])
        wave = 0
        for key in reads:
            wave = max(wave, last_write.get(key, -1) + 1)
        for key in writes:
            wave = max(wave, last_write.get(key, -1) + 1, last_read.get(key, -1) + 1)
        for key in reads:
            last_read[key] = max(last_read.get(key, -1), wave)
        for key in writes:
            last_write[key] = wave
        out.append(wave)
    return out


def access_sets(txs: Batch | Iterable[Tx | None], *, sender_is_write: bool = True) -> list[Access | None]:
    """(reads, writes) per transaction; the sender becomes the write key ("sender", pk)."""
    if isinstance(txs, Batch):
        items: list[Access | None] = []
        for i in range(len(txs)):
            if txs.code[i]:
                items.append(None)
                continue
            reads, writes = txs.keys_of(i)
            if sender_is_write:
                writes = (*writes, ("sender", txs.sender[i].tobytes()))
            items.append((reads, writes))
        return items
    out: list[Access | None] = []
    for tx in txs:
        if tx is None:
            out.append(None)
        else:
            extra = (("sender", tx.sender),) if sender_is_write else ()
            out.append((tx.reads, (*tx.writes, *extra)))
    return out
