"""An app's own placement rules decide which shard admits its keys (tierchain.engine.apps.Placement).

A cluster's scheduler routes with the chain's app set (``AppSet.placement``); a shard's
admission must check "all writes on this shard" with the same rules, or it refuses what
the scheduler sent it (and admits what belongs elsewhere). The keys below are chosen so
that the built-in rules and the app's rule disagree about both of them: each test fails
if admission routes the app's keys by the built-in rules.
"""

from __future__ import annotations

from unittest import mock

import pytest

from conftest import ALICE, NODE, small_config
from tierchain.crypto import ED25519_BLAKE3
from tierchain.engine import apps, route
from tierchain.engine.chain import Chain
from tierchain.engine.mempool import Mempool
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec
from tierchain.wire.batch import decode_batch

N_SHARDS = 4
MINE = 1
OP_PIN = 5000
PIN = apps.Placement(b"pn/", apps.PINNED)  # pn/ + u16 LE shard + rest: on shard u16 % n


def _pin(ctx) -> None:
    ctx.put(ctx.payload, b"\x01")  # the payload names the key (declared as the write)


APP = apps.App(
    name="pins",
    ops=(apps.Op(OP_PIN, "pins.put", _pin),),
    op_codes=range(OP_PIN, OP_PIN + 1),
    placement=(PIN,),
)
APPS = (*apps.DEFAULT_APPS, APP.name)


def _key(pinned_to: int, builtin_on_mine: bool) -> bytes:
    """A ``pn/`` key the app pins to ``pinned_to`` and the built-in rules route (by its
    bytes) onto this shard, or off it."""
    for i in range(1000):
        key = PIN.prefix + pinned_to.to_bytes(2, "little") + i.to_bytes(4, "little")
        if (int(route.route_keys([key], N_SHARDS)[0]) == MINE) == builtin_on_mine:
            return key
    raise AssertionError("no such key in 1000 tries")


HERE = _key(MINE + N_SHARDS, builtin_on_mine=False)  # the app's rule: shard MINE
AWAY = _key(MINE + 1, builtin_on_mine=True)  # the app's rule: another shard


def _tx(nonce: int, key: bytes) -> bytes:
    tx = txcodec.Tx(
        chain_id=9,
        shard_id=0,
        op=OP_PIN,
        sender=ALICE.public_key,
        nonce=nonce,
        expires_at=0,
        reads=(),
        writes=(key,),
        payload=key,
    )
    return ALICE.sign_tx(tx).encode()


def test_the_keys_tell_the_rules_apart():
    placement = apps.AppSet([APP]).placement
    assert route.route_keys([HERE, AWAY], N_SHARDS, placement).tolist() == [MINE, MINE + 1]
    builtin = route.route_keys([HERE, AWAY], N_SHARDS).tolist()
    assert builtin[0] != MINE and builtin[1] == MINE


@pytest.mark.parametrize(
    ("placement", "want"),
    [
        (apps.resolve(APPS, [APP]).placement, [Reject.OK, Reject.WRONG_SHARD]),
        (None, [Reject.WRONG_SHARD, Reject.OK]),  # the default: the built-in apps' rules
    ],
)
def test_mempool_admits_by_the_placement_it_is_given(placement, want):
    mempool = Mempool(
        chain_id=9,
        txs_max=10,
        sender_pending_max=10,
        committed_nonces=lambda senders: [0] * len(senders),
        suite=ED25519_BLAKE3,
        shard_index=MINE,
        shard_count=N_SHARDS,
        placement=placement,
    )
    batch = decode_batch(txcodec.frame([_tx(0, HERE), _tx(0, AWAY)]), suite=ED25519_BLAKE3)
    codes = mempool.admit(batch, 1, ticket=mock.Mock())  # the chain's Submission, notified
    assert [Reject(int(c)) for c in codes] == want


def test_a_sharded_chain_admits_an_apps_keys_by_the_apps_rule(tmp_path):
    config = small_config(apps=APPS, shard_index=MINE, shard_count=N_SHARDS)
    with Chain(tmp_path / "s", config, NODE, apps=[APP]) as chain:
        away = chain.submit([_tx(0, AWAY)])
        assert Reject(int(away.codes[0])) == Reject.WRONG_SHARD  # its rule sends it elsewhere
        here = chain.submit([_tx(0, HERE)])
        assert Reject(int(here.codes[0])) == Reject.OK
        assert [r.code for r in here.wait(10)] == [Reject.OK]
        assert chain.state_get(HERE) == b"\x01"
