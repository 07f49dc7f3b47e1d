"""Shard routing: key bytes -> shard id, natively and in batches.

    shard = jump_consistent_hash(siphash24(ROUTE_KEY, key), n_shards)

* SipHash-2-4 spreads arbitrary key bytes uniformly over 64 bits. Its key,
  ``ROUTE_KEY``, is the first 16 bytes of BLAKE3 derive-key(``domains.SHARD_ROUTE``)
  of the empty string: a protocol constant, so every machine routes alike.
* Lamping & Veach's jump consistent hash maps the 64-bit value to
  ``[0, n_shards)`` with no table; going from n to n+1 shards moves only the
  keys that land on the new shard (~1/(n+1) of them).

Placement rules come first (docs/sharding.md "Placement"). They are data the
apps of a chain declare (``tierchain.engine.apps.Placement``), passed to the native
loop as a table; every function here takes ``placement`` and defaults to the
built-in apps' rules (``apps.default_set()``):

* a **pinned** key, ``b"@" + u16 LE shard + rest``, lives on shard ``u16 % n``
  (the records of the cross-shard protocol, ``tierchain.apps.xshard``);
* a **lineage** key, ``fv/ fx/ fc/ fr/`` + 8-byte lineage tag + rest, routes by
  the tag alone. Every id in a voucher's lineage and its registry fingerprint
  start with the same tag (``finance.codes.voucher_id`` / ``child_id``), so a
  whole lineage lives on the shard of its root asset (``tierchain.apps.finance.app``);
* a **replicated** key (finance's organizations, keys, parameters and proposals, ...)
  is on every shard. Its writes are the primary shard's (``PRIMARY_SHARD``): the native
  loop answers ``REPLICATED_SHARD`` for it, which ``route_keys`` and ``route_batch`` turn
  into the primary, and ``writes_on`` owns it on the primary for every op but a
  replication op (``apps.App.replicates``), and on every other shard for a replication
  op alone (docs/sharding.md "Replicated records").

The loop is ``tierchain._hot.route_keys`` (ext/cython/_route.pxi).

``route_batch`` places each transaction by its FIRST WRITE key, or by its
sender when it writes no declared key. A cluster refuses a transaction whose
write keys span shards (``WRONG_SHARD``); value moves between shards only
through the cross-shard protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tierchain import _hot, limits
from tierchain.engine import apps
from tierchain.wire.batch import Batch

__all__ = [
    "PRIMARY_SHARD",
    "REPLICATED_SHARD",
    "ROUTE_KEY",
    "native_rules",
    "replication_writers",
    "route_batch",
    "route_keys",
    "writes_on",
]

Placement = Sequence[apps.Placement]

ROUTE_KEY: bytes = _hot.ROUTE_KEY
# The shard that executes every ordinary write of a replicated key (its copies elsewhere are
# written by replication ops), and what the native loop answers for such a key (no shard).
PRIMARY_SHARD = 0
REPLICATED_SHARD: int = _hot.ROUTE_REPLICATED

# Offset of the sender's public key inside an encoded transaction (after
# version, chain_id, shard_id, op; docs/wire-format.md).
_SENDER_OFFSET: int = _hot.SENDER_OFFSET


def _check(n_shards: int) -> None:
    if not 1 <= n_shards <= limits.shards_max:
        raise ValueError(f"n_shards must be in 1..{limits.shards_max}, not {n_shards}")


_NATIVE_TAG = {apps.PINNED: 0, apps.REPLICATED: -1}  # ext/cython/_route.pxi: REPLICATED_RULE


def native_rules(placement: Placement | None = None) -> tuple[tuple[bytes, int], ...]:
    """``placement`` (default: the built-in apps') as the native router's table:
    (prefix, tag bytes) pairs, 0 tag bytes meaning pinned, -1 replicated."""
    rules = apps.default_set().placement if placement is None else placement
    return tuple((p.prefix, _NATIVE_TAG.get(p.rule, p.tag_bytes)) for p in rules)


def replication_writers(placement: Placement | None = None) -> frozenset[int]:
    """The op codes that copy replicated keys onto non-primary shards (``Placement.writers``)."""
    rules = apps.default_set().placement if placement is None else placement
    return frozenset(op for p in rules if p.rule == apps.REPLICATED for op in p.writers)


def _primary(shards: np.ndarray) -> np.ndarray:
    """``shards`` (native answers) with replicated keys' answer turned into the primary shard."""
    shards[shards == REPLICATED_SHARD] = PRIMARY_SHARD
    return shards


def route_keys(keys: Sequence[bytes], n_shards: int, placement: Placement | None = None) -> np.ndarray:
    """Shard (uint16) of each key; convenience over ``_hot.route_keys``. A replicated key
    is on every shard: its shard here is the one its ordinary writes run on, the primary."""
    _check(n_shards)
    lengths = np.fromiter((len(k) for k in keys), np.int64, len(keys))
    starts = np.zeros(len(keys), np.int64)
    if len(keys) > 1:
        np.cumsum(lengths[:-1], out=starts[1:])
    return _primary(_hot.route_keys(b"".join(keys), starts, lengths, n_shards, native_rules(placement)))


def route_batch(batch: Batch, n_shards: int, placement: Placement | None = None) -> np.ndarray:
    """Shard (int32) of every row by its first write key, else its sender; -1 if rejected."""
    _check(n_shards)
    ok = batch.ok
    has_write = ok & (batch.n_write > 0)
    # Index of each row's first write key; clipped so rows without one still
    # index something (their result is replaced by the sender's below).
    k = len(batch.key_start)
    first_write = batch.key_first + batch.n_read.astype(np.int64)
    first_write = np.minimum(first_write, max(k - 1, 0))
    if k:
        starts = np.where(has_write, batch.key_start[first_write], batch.tx_start + _SENDER_OFFSET)
        lengths = np.where(has_write, batch.key_len[first_write], limits.public_key_bytes)
    else:
        starts = batch.tx_start + _SENDER_OFFSET
        lengths = np.full(len(batch), limits.public_key_bytes, np.int64)
    # Rejected rows route an empty key at offset 0 (always in bounds); their
    # shard is then overwritten with -1.
    starts = np.where(ok, starts, 0)
    lengths = np.where(ok, lengths, 0)
    shard = _primary(_hot.route_keys(batch.buf, starts, lengths, n_shards, native_rules(placement)))
    shard = shard.astype(np.int32)
    shard[~ok] = -1
    return shard


def writes_on(
    batch: Batch, shard: np.ndarray | int, n_shards: int, placement: Placement | None = None
) -> np.ndarray:
    """True for rows whose every write key routes to ``shard`` (per row, or one for all).

    One native call over all write keys of the batch. Rows with ``shard < 0`` (not
    routed) and rows without write keys are True: there is nothing to refuse them for.
    A replicated key is owned by the primary shard for every op but a replication op
    (``replication_writers``), and by every other shard for a replication op alone: a
    replication op never writes the primary's records, on a single-shard chain neither.
    """
    _check(n_shards)
    target = np.broadcast_to(np.asarray(shard, np.int32), (len(batch),))
    n_write = np.where(target >= 0, batch.n_write, 0).astype(np.int64)
    writers = replication_writers(placement)
    if n_shards == 1:  # every key is the one shard's but a replication op's replicated keys
        if not writers or not np.isin(batch.op, tuple(writers)).any():
            return np.ones(len(batch), bool)
    total = int(n_write.sum())
    if total == 0:
        return np.ones(len(batch), bool)
    first = batch.key_first + batch.n_read.astype(np.int64)
    offsets = np.zeros(len(batch), np.int64)
    np.cumsum(n_write[:-1], out=offsets[1:])
    key_idx = np.repeat(first - offsets, n_write) + np.arange(total, dtype=np.int64)
    key_shard = _hot.route_keys(
        batch.buf,
        batch.key_start[key_idx],
        batch.key_len[key_idx].astype(np.int64),
        n_shards,
        native_rules(placement),
    ).astype(np.int32)
    row_of_key = np.repeat(np.arange(len(batch)), n_write)
    key_target = target[row_of_key]
    wrong = key_shard != key_target
    replicated = key_shard == REPLICATED_SHARD
    if replicated.any():
        by_writer = np.isin(batch.op[row_of_key], tuple(writers)) if writers else np.zeros(total, bool)
        # owned: on the primary by an ordinary op, elsewhere by a replication op
        wrong[replicated] = (key_target[replicated] == PRIMARY_SHARD) == by_writer[replicated]
    bad = np.zeros(len(batch), bool)
    np.logical_or.at(bad, row_of_key, wrong)
    return ~bad
