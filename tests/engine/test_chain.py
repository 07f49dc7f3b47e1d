"""The solo chain: admission codes, execution outcomes, commit, restart, queries."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import lmdb
import pytest

from conftest import ALICE, BOB, CAROL, NODE, small_config, transfer
from tierchain.apps import accounts
from tierchain.config import ChainConfig
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain, ChainError
from tierchain.engine.execute import nonce_key
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject, RejectedError
from tierchain.state import tree
from tierchain.wire import tx

CHAIN_ID = 9


def test_transfers_commit_with_receipts_and_events(chain):
    sub = chain.submit([transfer(ALICE, n, BOB, 100) for n in range(3)])
    receipts = sub.wait(10)
    assert [r.code for r in receipts] == [Reject.OK] * 3
    assert receipts[0].events[0].topic == b"transfer"
    assert chain.balance(ALICE.public_key) == 700
    assert chain.balance(BOB.public_key) == 300
    assert chain.nonce(ALICE.public_key) == 3
    height, pos, raw, receipt = chain.tx(sub.tx_ids[1])
    assert tx.decode(raw).nonce == 1 and receipt == receipts[1]
    assert height == int(sub.heights[1])
    assert chain.block_txs(height)[pos] == raw


def test_block_timings_place_execution_inside_production(chain):
    chain.submit([transfer(ALICE, n, BOB, 100) for n in range(3)]).wait(10)
    timings = [t for t in chain.timings if t.txs]
    assert timings, "a block with transactions was timed"
    for t in timings:
        assert 0 < t.execute_s <= t.produce_s, t
        assert t.write_s > 0 and t.durable_s > 0, t


def test_receipts_land_on_their_rows_around_rejected_ones(chain):
    # Accepted rows 0, 2, 3 (not one run): each receipt goes to its own row, none to row 1.
    rows = [
        transfer(ALICE, 0, BOB, 1),
        transfer(ALICE, 7, BOB, 1),
        transfer(CAROL, 0, BOB, 2),
        transfer(ALICE, 1, BOB, 3),
    ]
    sub = chain.submit(rows)
    receipts = sub.wait(10)
    assert sub.rejections() == [(1, Reject.NONCE_TOO_HIGH)]
    assert receipts[1] is None
    assert [receipts[i].tx_id for i in (0, 2, 3)] == [sub.tx_ids[i] for i in (0, 2, 3)]
    assert all(receipts[i].code == Reject.OK for i in (0, 2, 3))


def test_every_admission_rejection_is_named(chain):
    good = transfer(ALICE, 0, BOB, 1)
    tampered = bytearray(transfer(ALICE, 1, BOB, 1))
    tampered[-1] ^= 1
    rows = [
        good,
        good,  # same id twice in one batch
        bytes(tampered),
        transfer(ALICE, 5, BOB, 1),  # gap
        transfer(CAROL, 0, BOB, 1, chain_id=CHAIN_ID + 1),
        transfer(CAROL, 0, BOB, 1, shard_id=3),
        transfer(
            CAROL,
            0,
            BOB,
            1,
            expires_at=1,
            writes=(b"\x00sys", *accounts.transfer(CHAIN_ID, CAROL.public_key, 0, BOB.public_key, 1).writes),
        ),
        b"\x01garbage",
    ]
    sub = chain.submit(rows)
    got = [Reject(int(c)) for c in sub.codes]
    assert got == [
        Reject.OK,
        Reject.DUPLICATE,
        Reject.BAD_SIGNATURE,
        Reject.NONCE_TOO_HIGH,
        Reject.WRONG_CHAIN,
        Reject.WRONG_SHARD,
        Reject.RESERVED_KEY,
        Reject.TOO_SHORT,
    ]
    sub.wait(10)
    again = chain.submit([good, transfer(ALICE, 0, CAROL, 1)])
    assert [Reject(int(c)) for c in again.codes] == [Reject.NONCE_TOO_LOW, Reject.NONCE_TOO_LOW]


def test_expired_transaction_is_rejected(chain):
    chain.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
    chain.submit([transfer(ALICE, 1, BOB, 1)]).wait(10)
    assert chain.height >= 2
    sub = chain.submit([transfer(ALICE, 2, BOB, 1, expires_at=chain.height)])
    assert Reject(int(sub.codes[0])) == Reject.EXPIRED


def test_mempool_full_and_sender_limit_give_backpressure(chain_dir):
    config = small_config(mempool_txs_max=4, sender_pending_max=3, block_txs_max=2)
    c = Chain(chain_dir, config, NODE, start=False)
    try:
        a = c.submit([transfer(ALICE, n, BOB, 1) for n in range(4)])
        assert [Reject(int(x)) for x in a.codes] == [Reject.OK] * 3 + [Reject.SENDER_LIMIT]
        b = c.submit([transfer(CAROL, n, BOB, 1) for n in range(2)])
        assert [Reject(int(x)) for x in b.codes] == [Reject.OK, Reject.MEMPOOL_FULL]
        assert len(c.mempool) == 4
    finally:
        c.close()


def test_failed_ops_change_nothing_but_the_nonce(chain):
    stranger = KeyPair.from_seed(b"s" * 32)
    rows = [
        transfer(ALICE, 0, BOB, 10_000),  # more than she has
        transfer(ALICE, 1, stranger, 1),  # unregistered recipient
        ALICE.sign_tx(accounts.register(CHAIN_ID, ALICE.public_key, 2, stranger.public_key)).encode(),
        transfer(ALICE, 3, ALICE, 1),  # self
    ]
    receipts = chain.submit(rows).wait(10)
    assert [r.code for r in receipts] == [
        Reject.INSUFFICIENT_FUNDS,
        Reject.NO_SUCH_ACCOUNT,
        Reject.UNAUTHORIZED,
        Reject.BAD_PAYLOAD,
    ]
    assert chain.balance(ALICE.public_key) == 1_000
    assert chain.state_get(accounts.account_key(stranger.public_key)) is None
    assert chain.nonce(ALICE.public_key) == 4


def test_undeclared_access_fails_the_tx_and_leaves_state(chain):
    honest = accounts.transfer(CHAIN_ID, ALICE.public_key, 0, BOB.public_key, 5)
    # Declares only its own balance: the handler's write to Bob's balance is undeclared.
    sneaky = dataclasses.replace(honest, writes=(accounts.balance_key(ALICE.public_key),))
    receipts = chain.submit([ALICE.sign_tx(sneaky).encode()]).wait(10)
    assert receipts[0].code == Reject.UNDECLARED_ACCESS
    assert chain.balance(ALICE.public_key) == 1_000 and chain.balance(BOB.public_key) == 0
    assert chain.nonce(ALICE.public_key) == 1


def test_registration_by_registrar(chain):
    newcomer = KeyPair.from_seed(b"n" * 32)
    sub = chain.submit(
        [NODE.sign_tx(accounts.register(CHAIN_ID, NODE.public_key, 0, newcomer.public_key)).encode()]
    )
    assert sub.wait(10)[0].code == Reject.OK
    assert chain.submit([transfer(ALICE, 0, newcomer, 7)]).wait(10)[0].code == Reject.OK
    assert chain.balance(newcomer.public_key) == 7


def test_headers_chain_and_subscription(chain):
    sub = chain.subscribe()
    chain.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
    got = sub.get(timeout=5)
    assert got is not None and got.header.height == 1 and got.header.signature_ok()
    assert got.header.prev_hash == chain.header(0).hash()
    assert [b.header.height for b in chain.blocks(0)] == list(range(chain.height + 1))


def test_async_submit_and_wait(chain):
    async def go():
        sub = await chain.submit_async([transfer(ALICE, 0, BOB, 3)])
        return await sub.wait_async()

    assert asyncio.run(go())[0].code == Reject.OK


def test_restart_resumes_and_checks_genesis(chain_dir):
    with Chain(chain_dir, small_config(), NODE) as c:
        c.submit([transfer(ALICE, n, BOB, 1) for n in range(5)]).wait(10)
        head = c.head()
    with Chain(chain_dir, small_config(), NODE) as c:
        assert c.head() == head and c.balance(BOB.public_key) == 5
        assert c.submit([transfer(ALICE, 5, BOB, 1)]).wait(10)[0].code == Reject.OK
    with pytest.raises(ChainError, match="genesis"):
        Chain(chain_dir, small_config(chain_id=10), NODE)
    with pytest.raises(ChainError, match="proposer"):
        Chain(chain_dir, small_config(), ALICE)
    assert verify_chain(chain_dir).ok


def test_same_blocks_give_identical_roots(tmp_path):
    """Determinism: replaying the committed blocks on a fresh chain gives the same roots."""
    with Chain(tmp_path / "a", small_config(), NODE) as a:
        for n in range(4):
            a.submit([transfer(ALICE, n, BOB, 3), transfer(CAROL, n, ALICE, 2)]).wait(10)
        blocks = [(h, a.block_txs(h)) for h in range(1, a.height + 1)]
        headers = [a.header(h) for h in range(a.height + 1)]
    with Chain(tmp_path / "b", small_config(), NODE, start=False) as b:
        from tierchain.wire.batch import decode_batch
        from tierchain.wire.tx import frame

        assert b.header(0) == headers[0]
        for h, txs in blocks:
            executed = b._execute([], decode_batch(frame(txs)), h, headers[h].timestamp_ms)
            b._prepare_tree(executed)
            hdr, _ = b._execute_and_commit(executed)
            b._committed_block(executed, hdr)
            assert (hdr.state_root, hdr.tx_root, hdr.receipt_root) == (
                headers[h].state_root,
                headers[h].tx_root,
                headers[h].receipt_root,
            )


def test_verify_detects_tampered_state(chain_dir):
    with Chain(chain_dir, small_config(), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
    assert verify_chain(chain_dir).ok
    env = lmdb.open(str(chain_dir / "db"), max_dbs=8)
    with env.begin(write=True) as txn:
        txn.put(
            accounts.balance_key(BOB.public_key),
            (10**6).to_bytes(8, "little"),
            db=env.open_db(b"state", txn=txn),
        )
    env.close()
    report = verify_chain(chain_dir)
    assert not report.ok and "stored state differs" in report.problems[0]


def test_verify_detects_damaged_block(chain_dir):
    with Chain(chain_dir, small_config(), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
    env = lmdb.open(str(chain_dir / "db"), max_dbs=8)
    with env.begin(write=True) as txn:
        db = env.open_db(b"blocks", txn=txn)
        raw = bytearray(txn.get((1).to_bytes(8, "big"), db=db))
        raw[10] ^= 0x40
        txn.put((1).to_bytes(8, "big"), bytes(raw), db=db)
    env.close()
    report = verify_chain(chain_dir)
    assert not report.ok and "checksum" in " ".join(report.problems)


def test_nonce_key_is_system_namespace():
    assert nonce_key(ALICE.public_key)[0] == 0


@pytest.mark.parametrize("tree_stage", ["inline", "thread"])
@pytest.mark.parametrize("cache_mb", [256, 0])
def test_pipeline_next_block_reads_the_uncommitted_one(chain_dir, monkeypatch, cache_mb, tree_stage):
    """Block h+1 executes while h commits: its reads see h's writes (the overlay).

    Its state tree version is computed then too; with the chunk cache off every
    chunk is read, and those block h wrote come from h's tree overlay.
    """
    started = Chain._commit_started
    in_flight: list[tuple[int, int]] = []

    def slow_commit(self):
        started(self)
        time.sleep(0.05)  # a slow fsync: h+1 is cut and executed meanwhile
        head = self._head.height  # blocks <= head are committed, their writes only logged
        in_flight.append((sum(h > head for h, _ in self._uncommitted), self.commitment.in_flight))

    from_overlay: list[int] = []
    prepare = tree.StateTree.prepare

    def counting_prepare(self, *args, **kwargs):
        update = prepare(self, *args, **kwargs)
        from_overlay.append(update.stats["overlay"])
        return update

    monkeypatch.setattr(Chain, "_commit_started", slow_commit)
    monkeypatch.setattr(tree.StateTree, "prepare", counting_prepare)
    with Chain(chain_dir, small_config(state_cache_mb=cache_mb, tree_stage=tree_stage), NODE) as c:
        assert c.tree_threaded == (tree_stage == "thread")
        subs = []
        for n in range(8):  # each depends on the previous one's nonce and balance
            subs.append(c.submit([transfer(ALICE, n, BOB, 100), transfer(BOB, n, CAROL, 100)]))
            time.sleep(0.02)
        receipts = [r for s in subs for r in s.wait(10)]
        assert [r.code for r in receipts] == [Reject.OK] * 16
        # The overlays were really used: while h committed, h+1 (and with the tree stage
        # between, perhaps h+2) had executed and had its tree version prepared.
        assert max(a for a, _ in in_flight) >= 2 and max(b for _, b in in_flight) >= 2
        assert len({int(h) for s in subs for h in s.heights}) >= 4
        assert (c.balance(ALICE.public_key), c.balance(BOB.public_key)) == (200, 0)
        assert c.balance(CAROL.public_key) == 1_300
        assert (c.nonce(ALICE.public_key), c.nonce(BOB.public_key)) == (8, 8)
    if cache_mb == 0:
        assert sum(from_overlay) > 0  # chunks of a block still committing were read
    assert verify_chain(chain_dir).ok  # every root recomputed from the blocks alone


@pytest.mark.parametrize("tree_stage", ["inline", "thread"])
@pytest.mark.parametrize("stage", ["_execute_and_commit", "_prepare_tree"])
def test_commit_failure_fails_the_waiting_submitters(chain_dir, monkeypatch, stage, tree_stage):
    """The committer or the tree stage fails on block 2: its submitters hear it, the
    producer stops (also when it was waiting for transactions, not for a slot)."""
    original = getattr(Chain, stage)

    def failing(self, ex):
        if ex.height == 2:
            raise OSError("disk gone")
        return original(self, ex)

    monkeypatch.setattr(Chain, stage, failing)
    with Chain(chain_dir, small_config(tree_stage=tree_stage), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
        with pytest.raises(ChainError, match="disk gone"):
            c.submit([transfer(ALICE, 1, BOB, 1)]).wait(10)
        deadline = time.monotonic() + 5
        while c._producer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert isinstance(c.error, OSError) and not c._producer.is_alive()
        with pytest.raises(RejectedError):
            c.submit([transfer(ALICE, 1, BOB, 1)])
        assert c.height == 1


def test_operational_settings_may_change_between_restarts(chain_dir):
    """Genesis identity covers the chain, not node-local tuning (block size, mempool, pruning)."""
    with Chain(chain_dir, small_config(), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
    tuned = small_config(block_txs_max=16, mempool_txs_max=64, sender_pending_max=8, state_keep_heights=4)
    assert tuned.genesis_bytes() == small_config().genesis_bytes()
    with Chain(chain_dir, tuned, NODE) as c:
        assert c.submit([transfer(ALICE, 1, BOB, 1)]).wait(10)[0].code == Reject.OK
    assert small_config(chain_id=10).genesis_bytes() != small_config().genesis_bytes()
    text = tuned.to_toml()
    assert "state_keep_heights = 4" in text and ChainConfig.from_toml(text) == tuned


def test_rows_admitted_after_close_began_are_refused_not_stranded(chain):
    # The window between close() starting and submit() noticing: the mempool refuses
    # the rows itself, so no ticket waits forever on a producer that has stopped.
    chain.mempool.close()
    sub = chain.submit([transfer(ALICE, 0, BOB, 1)])
    assert Reject(int(sub.codes[0])) == Reject.SHUTTING_DOWN
    assert sub.wait(1) == [None]


def test_verify_reports_a_missing_block_instead_of_crashing(chain_dir):
    with Chain(chain_dir, small_config(), NODE) as c:
        for n in range(3):
            c.submit([transfer(ALICE, n, BOB, 1)]).wait(10)
    env = lmdb.open(str(chain_dir / "db"), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.delete((2).to_bytes(8, "big"), db=env.open_db(b"blocks", txn=txn))
    env.close()
    report = verify_chain(chain_dir)
    assert not report.ok and "height 2: block missing" in report.problems


def test_small_order_keys_cannot_be_registered(chain):
    from tierchain import crypto

    identity = bytes([1]) + bytes(31)  # the neutral point: small order
    forged = bytes([1]) + bytes(31) + bytes(32)  # R = identity, S = 0
    # Why: under ZIP-215 this "signature" verifies for any message by that key.
    assert crypto.verify(identity, b"any message at all", forged)
    assert not crypto.is_strong_public_key(identity)
    assert crypto.is_strong_public_key(ALICE.public_key)
    sub = chain.submit([NODE.sign_tx(accounts.register(CHAIN_ID, NODE.public_key, 0, identity)).encode()])
    assert sub.wait(10)[0].code == Reject.WEAK_KEY
    assert chain.state_get(accounts.account_key(identity)) is None


def test_a_settled_submission_is_freed_without_the_cyclic_gc(chain):
    """No reference cycle through a Submission: its batch, receipts and events go as soon
    as the caller drops it, not at the next full collection (which would pause every
    thread for as long as it takes to free them)."""
    import gc
    import weakref

    gc.disable()
    try:
        sub = chain.submit([transfer(ALICE, 0, BOB, 1)])
        assert sub.wait(10)[0].code == Reject.OK
        ref = weakref.ref(sub)  # the receipts and the batch are referenced only from it
        del sub
        # The committer drops its last reference to a block's tickets with the next block.
        assert chain.submit([transfer(ALICE, 1, BOB, 1)]).wait(10)[0].code == Reject.OK
        deadline = time.monotonic() + 5
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ref() is None
    finally:
        gc.enable()


def test_tree_stage_auto_follows_the_cores(chain_dir, monkeypatch):
    from tierchain.config import ConfigError

    monkeypatch.setattr("tierchain_native.thread_count", lambda: 1)
    with Chain(chain_dir, small_config(), NODE) as c:  # one core: the producer builds the tree
        assert not c.tree_threaded and c._tree_thread is None
        assert c.commitment.tree.workers == 1
        assert c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)[0].code == Reject.OK
    monkeypatch.setattr("tierchain_native.thread_count", lambda: 2)
    with Chain(chain_dir, small_config(), NODE) as c:
        assert c.tree_threaded and c._tree_thread.is_alive()
        assert c.commitment.tree.workers == 2
        assert c.submit([transfer(ALICE, 1, BOB, 1)]).wait(10)[0].code == Reject.OK
    with Chain(chain_dir, small_config(tree_stage="inline"), NODE) as c:
        assert not c.tree_threaded and c.commitment.tree.workers == 1
    with pytest.raises(ConfigError, match="tree_stage"):
        small_config(tree_stage="gpu")


def test_tree_workers_default_to_the_native_pool_with_a_tree_thread(chain_dir, monkeypatch):
    from tierchain.config import ConfigError

    monkeypatch.setattr("tierchain_native.thread_count", lambda: 6)
    with Chain(chain_dir, small_config(tree_stage="thread"), NODE) as c:
        assert c.commitment.tree.workers == 6
        assert c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)[0].code == Reject.OK
    with Chain(chain_dir, small_config(tree_stage="inline"), NODE) as c:
        assert c.commitment.tree.workers == 1
    with Chain(chain_dir, small_config(tree_stage="inline", tree_workers=3), NODE) as c:
        assert c.commitment.tree.workers == 3
    with pytest.raises(ConfigError, match="tree_workers"):
        small_config(tree_workers=65)


def test_state_scan_of_the_empty_prefix_is_the_whole_state(chain):
    chain.submit([transfer(ALICE, 0, BOB, 10)]).wait(10)
    everything = chain.state_scan(b"", limit=10_000)
    keys = [k for k, _ in everything]
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    assert (accounts.balance_key(BOB.public_key), (10).to_bytes(8, "little")) in everything
    assert nonce_key(ALICE.public_key) in keys  # the log's uncommitted-to-table writes included
    assert chain.state_scan(b"", limit=2, after=keys[0]) == everything[1:3]  # paging from the start
    assert chain.state_scan(b"\xff" * 64) == []
    with pytest.raises(ValueError, match="at most 64 bytes"):
        chain.state_scan(b"x" * 65)
