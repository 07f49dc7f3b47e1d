"""A sharded cluster on the national suite (issue 19): two shard processes on ``sm2-sm3``.

Transfers within a shard and across shards (the cross-shard protocol, resolved by the
coordinator), value conserved, SM2-signed headers on every shard, tx ids in SM3, and
``verify`` re-executing each shard's chain; transactions of the other suite refused by
the shard; routing the same rule in both suites; a shard directory of the other suite
refused at start.
"""

from __future__ import annotations

import random

import pytest

from tierchain.apps import accounts
from tierchain.apps.coordinator import Coordinator
from tierchain.crypto import ED25519_BLAKE3, SM2_SM3
from tierchain.engine.route import route_keys
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.sharding.cluster import Cluster, ShardUnavailable, shard_configs
from xshard_world import BALANCE, TOTAL, N, home, world

SM2 = SM2_SM3.name


def test_shards_inherit_the_suite_and_route_by_the_keys_bytes():
    sm2 = world(SM2)
    configs = shard_configs(sm2.base, N)
    assert [c.crypto for c in configs] == [SM2] * N
    # Routing reads a key's bytes, the same rule in every suite: SM2 accounts spread over
    # both shards, and each balance lives on its home shard only.
    homes = route_keys([accounts.balance_key(u.public_key) for u in sm2.users], N).tolist()
    assert homes == [home(u.public_key) for u in sm2.users] and set(homes) == set(range(N))
    for u in sm2.users:
        balances = [
            next(a.balance for a in c.genesis_accounts if a.public_key == u.public_key) for c in configs
        ]
        assert balances[home(u.public_key)] == BALANCE and sum(balances) == BALANCE


def test_a_national_cluster_transfers_within_and_across_shards(tmp_path):
    xw = world(SM2)
    root = tmp_path / "cluster"
    nonces = {u.public_key: 0 for u in xw.users}
    with Cluster(root, xw.base, xw.node.seed, N) as cluster:
        assert cluster.suite is SM2_SM3
        # Each shard's proposer is the SM2 key of the seed, and signs its headers in SM2.
        for s in range(N):
            head = cluster.call(s, "head")
            assert head.proposer == xw.node.public_key
            assert head.signature_ok(SM2_SM3) and not head.signature_ok(ED25519_BLAKE3)

        # Within a shard: plain transfers between two accounts of the same home shard.
        by_shard = [[u for u in xw.users if home(u.public_key) == s] for s in range(N)]
        within, moved = [], {u.public_key: 0 for u in xw.users}
        for s, group in enumerate(by_shard):
            a, b = group[0], group[1]
            for amount, (x, y) in enumerate([(a, b), (b, a), (a, b)], start=1):
                tx = accounts.transfer(
                    cluster.chain_id(s), x.public_key, nonces[x.public_key], y.public_key, amount
                )
                within.append(x.sign_tx(tx).encode())
                nonces[x.public_key] += 1
                moved[x.public_key] -= amount
                moved[y.public_key] += amount
        # The same transfer signed by the Ed25519 key of the same seed: refused by its shard.
        ed_user = world().users[0]
        u0 = xw.users[0]
        ed_tx = accounts.transfer(
            cluster.chain_id(home(ed_user.public_key)), ed_user.public_key, 0, u0.public_key, 1
        )
        sub = cluster.submit([*within, ed_user.sign_tx(ed_tx).encode()])
        assert sub.codes.tolist() == [0] * len(within) + [Reject.BAD_SIGNATURE]
        receipts = sub.wait(30)
        assert [r.code for r in receipts[: len(within)]] == [Reject.OK] * len(within)
        # Tx ids are SM3 ids of the bodies, and each shard finds its transactions by them.
        for i, raw in enumerate(within):
            assert bytes(sub.tx_ids[i]) == SM2_SM3.tx_id(raw[:-64]) != ED25519_BLAKE3.tx_id(raw[:-64])
            found = cluster.call(int(sub.shards[i]), "tx", bytes(sub.tx_ids[i]))
            assert found is not None and found[2] == raw
        assert xw.cluster_balance(cluster) == TOTAL

        # Across shards: prepare at the source, then the coordinator (an SM2 key) resolves them.
        rng = random.Random(5)
        busy = {x.public_key for g in by_shard for x in g[:2]}
        pairs = [(s, r) for s, r in xw.cross_pairs(rng, 14) if s.public_key not in busy][:8]
        amounts = [rng.randrange(1, 1000) for _ in pairs]
        txs = [
            xw.xtransfer(s, nonces[s.public_key], r.public_key, a, 60_000)
            for (s, r), a in zip(pairs, amounts, strict=True)
        ]
        sub = cluster.submit(txs)
        assert sub.accepted == len(txs), sub.rejections()
        assert all(r.code == Reject.OK for r in sub.wait(30))
        assert xw.cluster_balance(cluster) == TOTAL - sum(amounts)  # in escrow
        report = Coordinator(cluster, xw.coord).resolve(timeout=60)
        assert report.idle
        assert xw.cluster_balance(cluster) == TOTAL
        for (s, r), a in zip(pairs, amounts, strict=True):
            moved[s.public_key] -= a
            moved[r.public_key] += a
        for u in xw.users:
            assert cluster.call(home(u.public_key), "balance", u.public_key) == BALANCE + moved[u.public_key]
        heights = [cluster.call(s, "height") for s in range(N)]
    # verify re-executes each shard's chain from its genesis, in SM2/SM3.
    for s in range(N):
        report = verify_chain(root / f"shard-{s}")
        assert report.ok, (s, report.problems)
        assert report.height == heights[s] > 0


def test_a_shard_directory_of_the_other_suite_is_refused(tmp_path):
    ed, sm2 = world(), world(SM2)
    root = tmp_path / "cluster"
    with Cluster(root, ed.base, ed.node.seed, 1):
        pass
    # Same cluster layout and seed, the other suite: the shard's stored genesis is not this one.
    with pytest.raises(ShardUnavailable, match="exited at start"):
        Cluster(root, sm2.base, sm2.node.seed, 1, start_timeout=20)  # its process exits at start
