"""Workload generators and synthetic genesis: behaviour the bench figures rely on."""

from __future__ import annotations

import numpy as np
import pytest

from tierchain.apps import accounts as accounts_app
from tierchain.config import ChainConfig, ConfigError, GenesisAccount, SyntheticAccounts
from tierchain.crypto import KeyPair
from tierchain.engine.genesis import GenesisError, genesis_chunks, genesis_writes, synthetic_public_keys
from tierchain.tools.loadgen import (
    WorkloadSpec,
    build_workload,
    genesis_config,
    plan_transfers,
    scatter,
    zipf_ranks,
)
from tierchain.wire import tx as txcodec


def test_zipf_skew_follows_the_law():
    rng = np.random.default_rng(1)
    n, s = 1000, 1.1
    ranks = zipf_ranks(rng, n, s, 200_000)
    counts = np.bincount(ranks, minlength=n)
    expect = np.arange(1, n + 1, dtype=float) ** -s
    expect /= expect.sum()
    # The head ranks carry the mass Zipf predicts, within sampling noise.
    for r in (0, 1, 9):
        assert counts[r] / ranks.size == pytest.approx(expect[r], rel=0.05)
    assert counts[0] > 5 * counts[9]


def test_zero_skew_is_uniform():
    ranks = zipf_ranks(np.random.default_rng(2), 50, 0.0, 100_000)
    counts = np.bincount(ranks, minlength=50)
    assert counts.min() > 0.85 * 2000 and counts.max() < 1.15 * 2000


def test_scatter_is_a_bijection():
    for n in (2, 97, 1000, 4096):
        assert len(np.unique(scatter(np.arange(n), n))) == n


@pytest.mark.parametrize("hot_pct", [0.0, 10.0, 50.0])
def test_hot_key_fraction(hot_pct):
    spec = WorkloadSpec(accounts=5000, txs=40_000, senders=400, hot_pct=hot_pct)
    to, _ = plan_transfers(spec)
    share = (to == spec.hot_index).mean()
    # Uniform recipients also hit the hot account 1/accounts of the time.
    assert share == pytest.approx(hot_pct / 100 + 1 / spec.accounts, abs=0.01)
    assert not (to == np.arange(spec.n_senders)[:, None]).any(), "no self-transfers"


def _decode_all(work):
    return [[txcodec.decode(t) for t in stream] for stream in work.streams]


def test_workload_nonce_order_and_cache_round_trip(tmp_path):
    spec = WorkloadSpec(accounts=300, txs=600, threads=3, senders=30, skew=0.9, hot_pct=20)
    work = build_workload(spec, cache_dir=tmp_path, processes=2)
    assert len(list(tmp_path.iterdir())) == 1
    streams = _decode_all(work)
    assert sum(len(s) for s in streams) == spec.n_senders * spec.per_sender
    seen_senders = [set() for _ in streams]
    for k, stream in enumerate(streams):
        last: dict[bytes, int] = {}
        for tx in stream:
            assert tx.nonce == last.get(tx.sender, -1) + 1, "each sender's nonces ascend without gaps"
            last[tx.sender] = tx.nonce
            seen_senders[k].add(tx.sender)
    assert all(not (a & b) for i, a in enumerate(seen_senders) for b in seen_senders[i + 1 :]), (
        "a sender lives in exactly one stream"
    )
    again = build_workload(spec, cache_dir=tmp_path)
    assert again.streams == work.streams and again.sender_keys == work.sender_keys
    other = build_workload(
        WorkloadSpec(accounts=300, txs=600, threads=3, senders=30, seed=8), cache_dir=tmp_path
    )
    assert other.streams != work.streams and len(list(tmp_path.iterdir())) == 2


def test_recipients_are_registered_in_genesis():
    spec = WorkloadSpec(accounts=2000, txs=500, threads=2, senders=50, skew=0.5)
    work = build_workload(spec, processes=2)
    config = genesis_config(
        work, KeyPair.from_seed(bytes(32)), sync="none", block_txs_max=64, block_interval_ms=5
    )
    state = genesis_writes(config)
    assert sum(k.startswith(b"acct/") for k in state) == spec.accounts + 1  # + the node
    for stream in _decode_all(work):
        for tx in stream:
            to = tx.payload[:32]
            assert accounts_app.account_key(to) in state
            assert state[accounts_app.balance_key(tx.sender)] is not None


def test_genesis_chunks_sorted_and_bounded():
    keys = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 4)]
    config = ChainConfig(
        genesis_accounts=tuple(GenesisAccount(k.public_key, ("registrar",), 5) for k in keys),
        genesis_synthetic=SyntheticAccounts(accounts=1000, seed=3, balance=7),
    )
    chunks = list(genesis_chunks(config, chunk_items=64))
    assert all(1 <= len(c) <= 64 for c in chunks)
    flat = [kv for c in chunks for kv in c]
    assert [k for k, _ in flat] == sorted({k for k, _ in flat}), "ascending, each key once"
    state = dict(flat)
    assert len(state) == 2 * 1003
    synth = synthetic_public_keys(3, 0, 1000)
    assert state[accounts_app.balance_key(synth[:32])] == (7).to_bytes(8, "little")
    assert state[accounts_app.account_key(keys[0].public_key)] == accounts_app.account_value(
        accounts_app.roles_mask(("registrar",)), 0
    )
    assert ChainConfig.from_toml(config.to_toml()) == config


def test_genesis_rejects_a_synthetic_key_listed_explicitly():
    dup = synthetic_public_keys(5, 10, 11)
    config = ChainConfig(
        genesis_accounts=(GenesisAccount(dup),), genesis_synthetic=SyntheticAccounts(accounts=20, seed=5)
    )
    with pytest.raises(GenesisError):
        list(genesis_chunks(config))


def test_synthetic_config_bounds():
    with pytest.raises(ConfigError):
        ChainConfig(genesis_synthetic=SyntheticAccounts(accounts=-1))
    with pytest.raises(ConfigError):
        ChainConfig(genesis_synthetic=SyntheticAccounts(accounts=10, seed=1 << 63))
    # No [genesis.synthetic]: the genesis bytes of existing chains are unchanged.
    assert b"synthetic" not in ChainConfig().genesis_bytes()


def test_voucher_mix_is_one_ordered_stream():
    pytest.importorskip("tierchain.apps.finance.workload")
    work = build_workload(WorkloadSpec(accounts=100, txs=70, threads=1, mix="voucher"))
    assert len(work.streams) == 1 and len(work.streams[0]) >= 70
    last: dict[bytes, int] = {}
    for tx in _decode_all(work)[0]:
        assert tx.nonce == last.get(tx.sender, -1) + 1
        last[tx.sender] = tx.nonce
    assert [a.roles for a in work.extra_genesis] == [("registrar", "committee")]
    with pytest.raises(ValueError):
        build_workload(WorkloadSpec(accounts=100, txs=70, threads=2, senders=2, mix="voucher"))


@pytest.mark.parametrize(
    "stale",
    [
        b"\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x10tierchain.nowhere\x94\x8c\x01W\x94\x93\x94.",
        b"\x80\x04\x95",  # cut short
    ],
)
def test_a_stale_or_damaged_cached_workload_is_rebuilt(tmp_path, stale):
    """A cache written by an older code layout (a module path that moved) or cut short is a miss."""
    spec = WorkloadSpec(accounts=100, txs=50, threads=1, senders=10)
    fresh = build_workload(spec, cache_dir=tmp_path, processes=1)
    (cached,) = tmp_path.iterdir()
    cached.write_bytes(stale)
    again = build_workload(spec, cache_dir=tmp_path, processes=1)
    assert again.streams == fresh.streams
    assert cached.read_bytes() != stale  # rewritten
