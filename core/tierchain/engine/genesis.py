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

What the state holds is the apps' business: each app of the chain may have a
genesis hook (``tierchain.engine.apps.App.genesis``; the accounts app, ``tierchain.apps.accounts``,
writes the accounts above), and this module derives the synthetic keys, sorts
the public keys and merges the hooks' chunks; it imports no app.

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

import heapq
import itertools
from collections.abc import Iterator

import numpy as np

from tierchain import domains
from tierchain.config import ChainConfig
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite, suite_of
from tierchain.engine import apps

chunk_items_default = 1 << 16
_hash_items_max = 1 << 20  # synthetic keys hashed per native call (16 MiB of input)


class GenesisError(ValueError):
    """Genesis lists the same public key twice (explicit and synthetic), or two apps
    write the same genesis key."""


def synthetic_public_keys(seed: int, start: int, stop: int, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """Packed 32-byte public keys of synthetic accounts ``start..stop`` (in index order)."""
    return synthetic_public_keys_at(seed, np.arange(start, max(start, stop), dtype=np.uint64), suite)


def synthetic_public_keys_at(seed: int, indices: np.ndarray, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """Packed 32-byte public keys of the synthetic accounts ``indices``, in that order.

    Hashed by ``suite`` (a chain's: ``suite_of(config)``; tools that hold no chain
    use the default suite, as every chain does until issue 19)."""
    n = len(indices)
    if not n:
        return b""
    msgs = np.empty((n, 2), "<u8")
    msgs[:, 0] = seed
    msgs[:, 1] = indices
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.uint64)
    return suite.hash_many(domains.SYNTHETIC_ACCOUNT, msgs.tobytes(), offsets[:-1], offsets[1:])


def sorted_public_keys(config: ChainConfig) -> np.ndarray:
    """Every genesis public key (explicit and synthetic), ascending, as one ``S32`` array."""
    synth = config.genesis_synthetic
    n_synth = synth.accounts if synth else 0
    explicit = [a.public_key for a in config.genesis_accounts]
    suite = suite_of(config)
    keys = np.empty(len(explicit) + n_synth, np.dtype((np.void, 32)))
    raw = keys.view(np.uint8).reshape(-1, 32)
    if explicit:
        raw[: len(explicit)] = np.frombuffer(b"".join(explicit), np.uint8).reshape(-1, 32)
    for start in range(0, n_synth, _hash_items_max):
        stop = min(n_synth, start + _hash_items_max)
        pos = len(explicit) + start
        raw[pos : pos + stop - start] = np.frombuffer(
            synthetic_public_keys(synth.seed, start, stop, suite), np.uint8
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
    config: ChainConfig, chunk_items: int = chunk_items_default, app_set: apps.AppSet | None = None
) -> Iterator[list[tuple[bytes, bytes]]]:
    """The genesis state as chunks of at most ``chunk_items`` (key, value), keys ascending.

    Each app of ``app_set`` (default: the chain's, ``config.apps``) with a genesis hook
    yields its own ascending chunks (the accounts app: ``acct/`` records, then balances).
    One hook's chunks pass through as they are (a 10M-account genesis stays streamed);
    several are merged by key, and a key two apps both write is refused (``GenesisError``).
    """
    assert chunk_items >= 1
    app_set = apps.resolve(config.apps) if app_set is None else app_set
    hooks = [a.genesis for a in app_set.apps if a.genesis is not None]
    if len(hooks) == 1:
        yield from hooks[0](config, app_set, chunk_items)
        return
    streams = [itertools.chain.from_iterable(hook(config, app_set, chunk_items)) for hook in hooks]
    chunk: list[tuple[bytes, bytes]] = []
    last = None
    for item in heapq.merge(*streams, key=lambda kv: kv[0]):
        if item[0] == last:
            raise GenesisError(f"genesis key {item[0]!r} written by two apps")
        last = item[0]
        chunk.append(item)
        if len(chunk) == chunk_items:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def genesis_writes(config: ChainConfig, app_set: apps.AppSet | None = None) -> dict[bytes, bytes | None]:
    """The genesis state as one dict (small genesis only: it holds every entry)."""
    writes: dict[bytes, bytes | None] = {}
    for chunk in genesis_chunks(config, app_set=app_set):
        writes.update(chunk)
    return writes
