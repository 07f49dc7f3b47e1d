"""Genesis state: what a chain holds before its first block.

Two sources, both in ``ChainConfig``:

* ``genesis_accounts``: accounts listed one by one (public key, roles, balance);
* ``genesis_synthetic``: a compact description of ``accounts`` synthetic
  accounts (``[genesis.synthetic]`` in chain.toml) whose public keys are
  ``BLAKE3_derive(SYNTHETIC_ACCOUNT, seed u64 LE || j u64 LE)`` for j in
  0..accounts. Nobody holds their secret keys: they exist so that a benchmark can
  run against a state of millions of registered accounts without generating
  millions of key pairs or a 10M-line TOML file. They receive transfers; they
  can never send one.

``genesis_chunks`` yields the genesis state as globally ascending (key, value)
chunks of bounded size, so a 10M-account genesis never sits in one Python
dict: peak memory is one packed array of 32-byte public keys (sorted in place
by numpy) plus one chunk. This is the interface for loading genesis into
storage and into the authenticated state: consume the chunks in order, each
key appears once, values are never deletions. ``genesis_writes`` is the same
state as one dict, for small genesis states (tests, ``verify``).

The chain writes genesis in the same LMDB transaction as header 0, and
``verify`` rebuilds it from the genesis stored in the database.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import tierchain_native

from tierchain import domains, ops, route
from tierchain.config import ChainConfig

_U64 = struct.Struct("<Q")
chunk_items_default = 1 << 16
_hash_items_max = 1 << 20  # synthetic keys hashed per native call (16 MiB of input)


class GenesisError(ValueError):
    """Genesis lists the same public key twice (explicit and synthetic)."""


def synthetic_public_keys(seed: int, start: int, stop: int) -> bytes:
    """Packed 32-byte public keys of synthetic accounts ``start..stop`` (in index order)."""
    return synthetic_public_keys_at(seed, np.arange(start, max(start, stop), dtype=np.uint64))


def synthetic_public_keys_at(seed: int, indices: np.ndarray) -> bytes:
    """Packed 32-byte public keys of the synthetic accounts ``indices``, in that order."""
    n = len(indices)
    if not n:
        return b""
    msgs = np.empty((n, 2), "<u8")
    msgs[:, 0] = seed
    msgs[:, 1] = indices
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.uint64)
    return tierchain_native.hash_many(domains.SYNTHETIC_ACCOUNT, msgs.tobytes(), offsets[:-1], offsets[1:])


def _sorted_public_keys(config: ChainConfig) -> np.ndarray:
    """Every genesis public key (explicit and synthetic), ascending, as one ``S32`` array."""
    synth = config.genesis_synthetic
    n_synth = synth.accounts if synth else 0
    explicit = [a.public_key for a in config.genesis_accounts]
    keys = np.empty(len(explicit) + n_synth, np.dtype((np.void, 32)))
    raw = keys.view(np.uint8).reshape(-1, 32)
    if explicit:
        raw[: len(explicit)] = np.frombuffer(b"".join(explicit), np.uint8).reshape(-1, 32)
    for start in range(0, n_synth, _hash_items_max):
        stop = min(n_synth, start + _hash_items_max)
        pos = len(explicit) + start
        raw[pos : pos + stop - start] = np.frombuffer(
            synthetic_public_keys(synth.seed, start, stop), np.uint8
        ).reshape(-1, 32)
    # Big-endian u64 words compare like the bytes they hold: sorting on them gives
    # LMDB's key order (memcmp) without relying on numpy's string rules.
    words = raw.view(">u8")
    order = np.lexsort((words[:, 3], words[:, 2], words[:, 1], words[:, 0]))
    raw = raw[order]
    del order, keys, words
    if len(raw) > 1:
        same = (raw[1:] == raw[:-1]).all(axis=1)
        if same.any():
            dup = bytes(raw[1:][np.flatnonzero(same)[0]])
            raise GenesisError(f"genesis public key {dup.hex()} appears twice")
    return raw


def genesis_chunks(
    config: ChainConfig, chunk_items: int = chunk_items_default
) -> Iterator[list[tuple[bytes, bytes]]]:
    """The genesis state as chunks of at most ``chunk_items`` (key, value), keys ascending.

    ``acct/`` keys sort before ``bal/`` keys, so every account record is yielded
    first, then every non-zero balance, each run in public-key order.
    """
    assert chunk_items >= 1
    synth = config.genesis_synthetic
    roles = {a.public_key: ops.roles_mask(a.roles) for a in config.genesis_accounts}
    balances = {a.public_key: a.balance for a in config.genesis_accounts}
    synthetic_balance = synth.balance if synth else 0
    keys = _sorted_public_keys(config)
    plain_account = ops.account_value(0, 0)  # one shared object for every synthetic record
    plain_balance = _U64.pack(synthetic_balance)
    packed = keys.tobytes()
    del keys
    n = len(packed) // 32
    assert ops.account_key(b"") < ops.balance_key(b""), "acct/ must sort before bal/"
    for start in range(0, n, chunk_items):
        stop = min(n, start + chunk_items)
        out = []
        for i in range(start, stop):
            pk = packed[32 * i : 32 * i + 32]
            bits = roles.get(pk)
            out.append((b"acct/" + pk, plain_account if bits is None else ops.account_value(bits, 0)))
        yield out
    if not synthetic_balance:  # only listed accounts hold a balance: skip the synthetic ones
        listed = sorted((b"bal/" + pk, _U64.pack(b)) for pk, b in balances.items() if b)
        for start in range(0, len(listed), chunk_items):
            yield listed[start : start + chunk_items]
        return
    chunk: list[tuple[bytes, bytes]] = []
    for start in range(0, n, chunk_items):
        keys = [b"bal/" + packed[32 * i : 32 * i + 32] for i in range(start, min(n, start + chunk_items))]
        # A shard of a cluster holds only the balances of its home accounts (docs/sharding.md).
        home = route.route_keys(keys, config.shard_count) == config.shard_index if config.sharded else None
        for j, key in enumerate(keys):
            if home is not None and not home[j]:
                continue
            balance = balances.get(key[4:])
            value = plain_balance if balance is None else _U64.pack(balance) if balance else None
            if value is None:
                continue
            chunk.append((key, value))
            if len(chunk) == chunk_items:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def genesis_writes(config: ChainConfig) -> dict[bytes, bytes | None]:
    """The genesis state as one dict (small genesis only: it holds every entry)."""
    writes: dict[bytes, bytes | None] = {}
    for chunk in genesis_chunks(config):
        writes.update(chunk)
    return writes
