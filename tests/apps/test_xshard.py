"""Cross-shard transfer ops (tierchain.apps.xshard) on one chain: every step, every refusal.

On a single chain all pinned keys live together, so the four steps of a transfer
can be exercised without a cluster; tests/apps/test_xshard_cluster.py runs them across
shard processes with the coordinator and kills it mid-protocol.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from conftest import ALICE, BOB, CAROL, NODE, small_config
from tierchain.apps import xshard
from tierchain.apps.xshard import Credit, Decision, Lock, Status
from tierchain.config import GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain
from tierchain.errors import Reject

COORD = KeyPair.from_seed(b"coordinator".ljust(32, b"\0"))
STRANGER = KeyPair.from_seed(b"stranger".ljust(32, b"\0"))  # not registered
SRC, DST = 0, 1


@pytest.fixture
def chain(chain_dir):
    accounts = (*small_config().genesis_accounts, GenesisAccount(COORD.public_key, ("coordinator",), 0))
    with Chain(chain_dir, small_config(genesis_accounts=accounts), NODE) as c:
        yield c


def send(chain: Chain, key: KeyPair, tx) -> Reject:
    sub = chain.submit([key.sign_tx(tx).encode()])
    if sub.codes[0]:
        return Reject(int(sub.codes[0]))
    return Reject(sub.wait(10)[0].code)


def prepare(chain: Chain, amount: int = 300, to: bytes = BOB.public_key, timeout_ms: int = 60_000) -> Lock:
    nonce = chain.nonce(ALICE.public_key)
    tx = xshard.transfer(9, SRC, DST, ALICE.public_key, nonce, to, amount, timeout_ms)
    assert send(chain, ALICE, tx) == Reject.OK
    key = xshard.lock_key(SRC, ALICE.public_key, nonce)
    return Lock.from_record(key, chain.state_get(key))


def coord(chain: Chain, build, *args) -> Reject:
    return send(chain, COORD, build(9, COORD.public_key, chain.nonce(COORD.public_key), *args))


def credit_of(chain: Chain, lock: Lock, finished: bool = False) -> Credit | None:
    make = xshard.finished_key if finished else xshard.credit_key
    key = make(DST, lock.src, lock.sender, lock.nonce)
    raw = chain.state_get(key)
    return None if raw is None else Credit.from_record(key, raw)


def total(chain: Chain) -> int:
    return sum(chain.balance(k.public_key) for k in (ALICE, BOB, CAROL, COORD))


def test_commit_moves_the_value_exactly_once(chain):
    lock = prepare(chain)
    assert (lock.status, lock.amount, lock.to, lock.dst) == (Status.PREPARED, 300, BOB.public_key, DST)
    assert chain.balance(ALICE.public_key) == 700 and total(chain) == 1_200  # 300 in escrow
    assert coord(chain, xshard.credit, lock) == Reject.OK
    assert credit_of(chain, lock).status == Status.PREPARED
    assert chain.balance(BOB.public_key) == 0  # nothing moves at prepare
    assert coord(chain, xshard.decide, lock, Decision.COMMIT) == Reject.OK
    assert chain.state_get(xshard.lock_key(SRC, ALICE.public_key, lock.nonce)) is None
    decided = chain.state_get(xshard.decided_key(SRC, ALICE.public_key, lock.nonce))
    assert decided is not None and decided[0] == Status.COMMITTED
    assert coord(chain, xshard.finish, credit_of(chain, lock), Decision.COMMIT) == Reject.OK
    assert chain.balance(BOB.public_key) == 300 and total(chain) == 1_500
    assert credit_of(chain, lock) is None and credit_of(chain, lock, finished=True).status == Status.COMMITTED
    # every step happens once
    assert coord(chain, xshard.decide, lock, Decision.COMMIT) == Reject.XSHARD_STATE
    assert coord(chain, xshard.decide, lock, Decision.ABORT) == Reject.XSHARD_STATE
    assert coord(chain, xshard.credit, lock) == Reject.XSHARD_STATE
    stale = Credit(DST, SRC, ALICE.public_key, lock.nonce, Status.PREPARED, BOB.public_key, 300, 0, 0)
    assert coord(chain, xshard.finish, stale, Decision.COMMIT) == Reject.XSHARD_STATE
    assert chain.balance(BOB.public_key) == 300 and total(chain) == 1_500


def test_abort_refunds_the_sender(chain):
    lock = prepare(chain)
    assert coord(chain, xshard.credit, lock) == Reject.OK
    assert coord(chain, xshard.decide, lock, Decision.ABORT) == Reject.OK
    assert chain.balance(ALICE.public_key) == 1_000
    assert coord(chain, xshard.finish, credit_of(chain, lock), Decision.ABORT) == Reject.OK
    assert chain.balance(BOB.public_key) == 0 and total(chain) == 1_500
    assert credit_of(chain, lock, finished=True).status == Status.ABORTED


def test_unregistered_recipient_is_refused_and_cannot_be_committed(chain):
    lock = prepare(chain, to=STRANGER.public_key)
    assert coord(chain, xshard.credit, lock) == Reject.OK
    assert credit_of(chain, lock).status == Status.REFUSED
    assert coord(chain, xshard.decide, lock, Decision.ABORT) == Reject.OK
    assert coord(chain, xshard.finish, credit_of(chain, lock), Decision.COMMIT) == Reject.XSHARD_STATE
    assert coord(chain, xshard.finish, credit_of(chain, lock), Decision.ABORT) == Reject.OK
    assert total(chain) == 1_500 and chain.balance(STRANGER.public_key) == 0


def test_who_may_decide_and_when(chain):
    lock = prepare(chain, timeout_ms=xshard.timeout_ms_min)
    # only the coordinator commits; the sender may not abort before the deadline
    assert send(chain, BOB, xshard.decide(9, BOB.public_key, 0, lock, Decision.COMMIT)) == Reject.UNAUTHORIZED
    n = chain.nonce(ALICE.public_key)
    early = xshard.decide(9, ALICE.public_key, n, lock, Decision.ABORT)
    if lock.deadline_ms > time.time() * 1000:  # (the block may already be past it on a slow machine)
        assert send(chain, ALICE, early) == Reject.UNAUTHORIZED
    time.sleep((lock.deadline_ms - time.time() * 1000) / 1000 + 0.05)
    # past the deadline: no commit, and the sender may reclaim by itself
    assert coord(chain, xshard.decide, lock, Decision.COMMIT) == Reject.XSHARD_DEADLINE
    n = chain.nonce(ALICE.public_key)
    assert send(chain, ALICE, xshard.decide(9, ALICE.public_key, n, lock, Decision.ABORT)) == Reject.OK
    assert chain.balance(ALICE.public_key) == 1_000


def test_prepare_refusals(chain):
    def xfer(**kw):
        args = dict(src=SRC, dst=DST, amount=5, timeout_ms=60_000) | kw
        n = chain.nonce(ALICE.public_key)
        return xshard.transfer(
            9,
            args["src"],
            args["dst"],
            ALICE.public_key,
            n,
            BOB.public_key,
            args["amount"],
            args["timeout_ms"],
        )

    assert send(chain, ALICE, xfer(dst=SRC)) == Reject.BAD_PAYLOAD  # same shard
    assert send(chain, ALICE, xfer(amount=0)) == Reject.BAD_PAYLOAD
    assert send(chain, ALICE, xfer(timeout_ms=xshard.timeout_ms_min - 1)) == Reject.BAD_PAYLOAD
    assert send(chain, ALICE, xfer(timeout_ms=xshard.timeout_ms_max + 1)) == Reject.BAD_PAYLOAD
    assert send(chain, ALICE, xfer(amount=5_000)) == Reject.INSUFFICIENT_FUNDS
    # a lock key for another nonce is undeclared access
    tx = xfer()
    other = xshard.lock_key(SRC, ALICE.public_key, 999)
    forged = dataclasses.replace(tx, writes=tuple(sorted((xshard.balance_key(ALICE.public_key), other))))
    assert send(chain, ALICE, forged) == Reject.UNDECLARED_ACCESS
    assert chain.balance(ALICE.public_key) == 1_000
    assert not chain.state_scan(xshard.pin(SRC) + b"xl/")


def test_non_coordinators_cannot_credit_or_finish(chain):
    lock = prepare(chain)
    n = chain.nonce(BOB.public_key)
    assert send(chain, BOB, xshard.credit(9, BOB.public_key, n, lock)) == Reject.UNAUTHORIZED
    assert coord(chain, xshard.credit, lock) == Reject.OK
    n = chain.nonce(BOB.public_key)
    fin = xshard.finish(9, BOB.public_key, n, credit_of(chain, lock), Decision.COMMIT)
    assert send(chain, BOB, fin) == Reject.UNAUTHORIZED
    assert chain.balance(BOB.public_key) == 0


def test_a_shard_admits_only_keys_it_owns(tmp_path):
    """A transaction that reaches a shard without the scheduler is still checked."""
    from tierchain.apps import accounts as accounts_app
    from tierchain.engine.route import route_keys

    n = 2
    mine = int(route_keys([accounts_app.balance_key(ALICE.public_key)], n)[0])
    others = [KeyPair.from_seed(bytes([i]) * 32).public_key for i in range(1, 40)]
    homes = route_keys([accounts_app.balance_key(k) for k in others], n).tolist()
    same = others[homes.index(mine)]
    away = others[homes.index(1 - mine)]
    config = small_config(shard_index=mine, shard_count=n)
    assert "shard_count" in config.genesis_bytes().decode()
    assert "shard" not in small_config().genesis_bytes().decode()  # unsharded identity unchanged
    with Chain(tmp_path / "s", config, NODE) as chain:
        for nonce, (to, want) in enumerate(((same, Reject.OK), (away, Reject.WRONG_SHARD))):
            tx = ALICE.sign_tx(accounts_app.transfer(9, ALICE.public_key, nonce, to, 1)).encode()
            assert Reject(int(chain.submit([tx]).codes[0])) == want
        # pinned keys of another shard are refused too
        lock = xshard.transfer(9, 1 - mine, mine, ALICE.public_key, 1, BOB.public_key, 5, 60_000)
        assert Reject(int(chain.submit([ALICE.sign_tx(lock).encode()]).codes[0])) == Reject.WRONG_SHARD
