"""Shard router: SipHash-2-4 reference vectors, jump hash against the paper, balance, monotonicity."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import blake3
import numpy as np
import pytest

from tierchain import _hot, domains, limits
from tierchain.engine.route import ROUTE_KEY, route_batch, route_keys
from tierchain.wire import tx
from tierchain.wire.batch import Batch

SIP = json.loads((Path(__file__).parents[1] / "vectors" / "siphash24_reference.json").read_text())


def test_siphash24_reference_vectors():
    key = bytes.fromhex(SIP["key_hex"])
    assert len(SIP["vectors"]) == 64
    for i, want in enumerate(SIP["vectors"]):
        assert _hot.siphash24(key, bytes(range(i))).to_bytes(8, "little").hex() == want, i


def jump_reference(key: int, n: int) -> int:
    """Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm", Figure 1."""
    b, j = -1, 0
    while j < n:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def test_jump_hash_matches_paper():
    rng = random.Random(1)
    for _ in range(3000):
        key, n = rng.getrandbits(64), rng.randint(1, limits.shards_max)
        assert _hot.jump_hash(key, n) == jump_reference(key, n)
    for key in (0, 1, 2**64 - 1):
        for n in (1, 2, 3, 1000, limits.shards_max):
            assert _hot.jump_hash(key, n) == jump_reference(key, n)


def test_route_key_is_the_fixed_protocol_constant():
    assert ROUTE_KEY == blake3.blake3(b"", derive_key_context=domains.SHARD_ROUTE).digest()[:16]


def test_route_keys_is_siphash_then_jump():
    keys = [b"", b"a", b"acct/alice", bytes(range(64))]
    for n in (1, 7, 64):
        want = [jump_reference(_hot.siphash24(ROUTE_KEY, k), n) for k in keys]
        assert route_keys(keys, n).tolist() == want
        assert route_keys(keys, n).dtype == np.uint16


def keys_100k() -> list[bytes]:
    return [b"acct/%08d" % i for i in range(100_000)]


def test_distribution_roughly_uniform():
    shards = route_keys(keys_100k(), 8)
    counts = np.bincount(shards, minlength=8)
    expected = 100_000 / 8
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 7 degrees of freedom: P(chi2 > 30) < 1e-4 for a uniform router.
    assert chi2 < 30, (chi2, counts)


def test_monotone_when_adding_a_shard():
    keys = keys_100k()
    before = route_keys(keys, 8)
    after = route_keys(keys, 9)
    moved = before != after
    assert (after[moved] == 8).all()  # keys only move to the new shard
    assert 0.08 < moved.mean() < 0.14  # ~1/9 of them


@pytest.mark.parametrize("n", [0, -1, limits.shards_max + 1])
def test_n_shards_out_of_range(n):
    with pytest.raises(ValueError):
        route_keys([b"a"], n)
    with pytest.raises(ValueError):
        _hot.route_keys(b"a", np.array([0]), np.array([1]), n)


def test_route_keys_rejects_keys_outside_buffer():
    with pytest.raises(ValueError):
        _hot.route_keys(b"abc", np.array([2]), np.array([2]), 4)
    with pytest.raises(ValueError):
        _hot.route_keys(b"abc", np.array([-1]), np.array([1]), 4)
    assert _hot.route_keys(b"", np.array([], np.int64), np.array([], np.int64), 4).tolist() == []


def test_route_batch_by_first_write_else_sender():
    sender = b"\x05" * 32
    txs = [
        tx.Tx(chain_id=1, shard_id=0, op=1, sender=sender, nonce=0, reads=(b"r",), writes=(b"w1", b"w2")),
        tx.Tx(chain_id=1, shard_id=0, op=1, sender=sender, nonce=1, reads=(b"r",)),
        tx.Tx(chain_id=1, shard_id=0, op=1, sender=sender, nonce=2),
    ]
    encoded = [_signed(t) for t in txs]
    buf = tx.frame([encoded[0], b"junk", encoded[1], encoded[2]])
    cols = _hot.decode_frames(buf)
    b = Batch(buf=buf, digest=np.zeros((4, 32), np.uint8), **cols)
    n = 64
    got = route_batch(b, n).tolist()
    by_sender = route_keys([sender], n)[0]
    assert got == [route_keys([b"w1"], n)[0], -1, by_sender, by_sender]
    with pytest.raises(ValueError):
        route_batch(b, 0)


def _signed(t: tx.Tx) -> bytes:
    return dataclasses.replace(t, signature=b"\x00" * 64).encode()


def test_route_batch_without_any_keys():
    t = _signed(tx.Tx(chain_id=1, shard_id=0, op=1, sender=b"\x07" * 32, nonce=0))
    buf = tx.frame([t, t])
    b = Batch(buf=buf, digest=np.zeros((2, 32), np.uint8), **_hot.decode_frames(buf))
    assert route_batch(b, 16).tolist() == [route_keys([b"\x07" * 32], 16)[0]] * 2


# --- placement rules (docs/sharding.md "Placement") ------------------------------------------


def placement_reference(key: bytes, n: int) -> int:
    """The placement rules written out plainly: pinned keys, lineage tags, replicated keys
    (written on the primary, shard 0), else all bytes."""
    if len(key) >= 3 and key[0] == ord("@"):
        return int.from_bytes(key[1:3], "little") % n
    if key[:3] in (b"fk/", b"fo/", b"fp/", b"fq/", b"fn/", b"fz/"):
        return 0
    if len(key) >= 11 and key[:3] in (b"fv/", b"fx/", b"fc/", b"fr/"):
        return jump_reference(_hot.siphash24(ROUTE_KEY, key[3:11]), n)
    return jump_reference(_hot.siphash24(ROUTE_KEY, key), n)


def test_route_keys_follows_the_placement_rules():
    rng = random.Random(11)
    prefixes = [b"@", b"@\x01", b"fv/", b"fx/", b"fc/", b"fr/", b"fo/", b"fk/", b"f", b"fv", b"bal/", b""]
    keys = [p + rng.randbytes(rng.randrange(0, 40)) for p in prefixes for _ in range(60)]
    for n in (1, 2, 3, 8, 64, limits.shards_max):
        assert route_keys(keys, n).tolist() == [placement_reference(k, n) for k in keys], n


def test_pinned_keys_go_to_their_shard():
    for n in (1, 2, 5, 64):
        for s in range(n):
            key = b"@" + s.to_bytes(2, "little") + b"xl/" + bytes(40)
            assert route_keys([key], n).tolist() == [s]


def test_a_whole_voucher_lineage_lands_on_one_shard():
    from tierchain.apps.finance import codes as c
    from tierchain.apps.finance import voucher

    rng = random.Random(5)
    core = rng.randbytes(32)
    for trial in range(40):
        blinded = rng.randbytes(32)
        _tx, vid = voucher.confirm(
            1, core, b"o" * 16, trial, b"s" * 16, 1000, 10**13, [(c.DocType.INVOICE, bytes(32))], blinded
        )
        keys = [c.voucher_key(vid), c.piece_key(vid), c.registry_key(blinded), c.clearing_key(vid, 3)]
        frontier = [vid]
        for _ in range(3):  # three tiers of splits
            frontier = [c.child_id(p, i) for p in frontier for i in range(3)]
            keys += [c.piece_key(p) for p in frontier]
        for n in (2, 3, 8, 64):
            shards = set(route_keys(keys, n).tolist())
            assert len(shards) == 1, (trial, n, shards)
            # the shard is the root asset's (the registry fingerprint's) shard
            assert shards == {int(route_keys([c.registry_key(blinded)], n)[0])}
    # different root assets spread over the shards
    roots = [c.voucher_key(c.voucher_id(rng.randbytes(32), core, i)) for i in range(2000)]
    counts = np.bincount(route_keys(roots, 4), minlength=4)
    assert counts.min() > 400, counts


def test_sharded_genesis_holds_each_synthetic_balance_once():
    from tierchain.config import ChainConfig, SyntheticAccounts
    from tierchain.engine.genesis import genesis_chunks
    from tierchain.sharding.cluster import shard_configs

    base = ChainConfig(chain_id=5, genesis_synthetic=SyntheticAccounts(accounts=3_000, seed=4, balance=7))
    seen: dict[bytes, int] = {}
    for config in shard_configs(base, 3):
        for chunk in genesis_chunks(config, chunk_items=500):
            for key, value in chunk:
                if key.startswith(b"bal/"):
                    assert key not in seen, "a balance on two shards"
                    seen[key] = config.shard_index
                    assert int.from_bytes(value, "little") == 7
    assert len(seen) == 3_000
    homes = route_keys(list(seen), 3).tolist()
    assert homes == list(seen.values())


# --- replicated keys (docs/sharding.md "Replicated records") ----------------------------------


def _batch(txs: list[tx.Tx]) -> Batch:
    buf = tx.frame([_signed(t) for t in txs])
    return Batch(buf=buf, digest=np.zeros((len(txs), 32), np.uint8), **_hot.decode_frames(buf))


def test_replicated_keys_are_written_on_the_primary_and_copied_by_the_replication_op():
    from tierchain.apps import xshard
    from tierchain.engine import route

    org, key = b"fo/" + bytes(16), b"fk/" + bytes(32)
    # natively no shard; for a write, the primary
    starts, lens = np.array([0, 0]), np.array([len(org), 3])
    native = _hot.route_keys(org, starts, lens, 8, route.native_rules())
    assert native.tolist() == [route.REPLICATED_SHARD] * 2  # the prefix alone is one too
    for n in (1, 2, 8, limits.shards_max):
        keys = [org, key, b"fq/" + bytes(16), b"fp/params"]
        assert route_keys(keys, n).tolist() == [route.PRIMARY_SHARD] * 4
    cursor = xshard.replica_cursor_key(1)
    ordinary = tx.Tx(chain_id=1, shard_id=0, op=16, sender=b"\x05" * 32, nonce=0, writes=(key, org))
    replicate = tx.Tx(chain_id=2, shard_id=0, op=7, sender=b"\x06" * 32, nonce=0, writes=(cursor, key, org))
    # the replication op with a lineage key beside the replicated ones: a span
    lineage = next(k for i in range(64) if route_keys([k := b"fv/" + bytes([i]) * 16], 2)[0] == 0)
    mixed = dataclasses.replace(replicate, writes=(cursor, key, org, lineage))
    b = _batch([ordinary, replicate, mixed])
    assert route_batch(b, 2).tolist() == [0, 1, 1]  # the replication op by its pinned cursor
    assert route.writes_on(b, 0, 2).tolist() == [True, False, False]  # never on the primary
    assert route.writes_on(b, 1, 2).tolist() == [False, True, False]
    shard = np.array([0, 1, 1], np.int32)
    assert route.writes_on(b, shard, 2).tolist() == [True, True, False]
    # a single-shard chain is its own primary: ordinary writes as ever, no replication op
    assert route.writes_on(b, 0, 1).tolist() == [True, False, False]
    # without a replication op in the batch the single-shard check costs no native call
    assert route.writes_on(_batch([ordinary]), 0, 1).tolist() == [True]


def test_a_replicated_rule_takes_no_tag_and_only_it_takes_writers():
    from tierchain.engine import apps

    assert apps.Placement(b"rr/", apps.REPLICATED).tag_bytes == 0
    with pytest.raises(apps.AppError):
        apps.Placement(b"rr/", apps.REPLICATED, 8)
    with pytest.raises(apps.AppError, match="writers"):
        apps.Placement(b"t/", apps.TAG, 8, writers=frozenset({7}))
    with pytest.raises(ValueError, match="bad prefix or tag"):
        _hot.route_keys(b"a", np.array([0]), np.array([1]), 4, [(b"x", -2)])
