"""TierChain as an ABCI application (tierchain.replication.app) over a ``ReplicaChain``, driven
in process the way CometBFT drives it: InitChain, CheckTx, PrepareProposal, ProcessProposal,
FinalizeBlock, Commit, Info. No CometBFT process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from abci_world import (
    ACCEPT,
    NEW,
    RECHECK,
    REJECT,
    T0_MS,
    VAL1,
    VAL2,
    bad_signature,
    check,
    finalize_request,
    init_request,
    process_request,
    run_block,
    set_time,
)
from conftest import ALICE, BOB, CAROL, NODE, small_config, transfer
from tierchain import proofs
from tierchain.apps import accounts
from tierchain.crypto import KeyPair
from tierchain.engine import transition
from tierchain.engine.chain import Chain, ChainError
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.replication import abci_pb
from tierchain.replication.app import (
    APP_VERSION,
    GENESIS_KEY,
    GenesisMismatch,
    TierChainApp,
    genesis_digest,
    validator_address,
)
from tierchain.replication.ledger import ReplicaChain
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame
from transition_world import replay


@pytest.fixture
def open_app(tmp_path):
    """``open_app(config=None, role=..., init=True)``: a TierChainApp over a ReplicaChain in
    tmp_path (key NODE), InitChain done unless ``init=False``. Closed at teardown."""
    opened: list[TierChainApp] = []

    def make(config=None, *, role="validator", init=True):
        config = config or small_config()
        app = TierChainApp(ReplicaChain(tmp_path / "chain", config, NODE), role=role)
        opened.append(app)
        if init:
            app.init_chain(init_request(config))
        return app

    make.close = lambda app: (opened.remove(app), app.close())
    yield make
    for app in opened:
        app.close()


# --- InitChain and Info ----------------------------------------------------------------


def test_init_chain_refuses_another_networks_genesis(open_app):
    config = small_config()
    app = open_app(init=False)
    with pytest.raises(GenesisMismatch, match="chain"):
        app.init_chain(init_request(config, chain_id="tierchain-10"))
    with pytest.raises(GenesisMismatch, match=GENESIS_KEY):
        app.init_chain(init_request(config, digest=genesis_digest(small_config(chain_id=10))))
    for app_state in (b"", b"[]", b"not json", json.dumps({GENESIS_KEY: None}).encode()):
        with pytest.raises(GenesisMismatch):
            app.init_chain(init_request(config, app_state_bytes=app_state))
    with pytest.raises(GenesisMismatch, match="initial_height"):
        app.init_chain(init_request(config, initial_height=5))
    secp = init_request(config, validators=())
    secp.validators.add(power=10).pub_key.secp256k1 = b"\x02" * 33
    with pytest.raises(GenesisMismatch, match="ed25519"):
        app.init_chain(secp)
    # Nothing refused left validators behind: no block can be finalized yet.
    with pytest.raises(GenesisMismatch, match="no known validator"):
        app.finalize_block(finalize_request([], 1))


def test_init_chain_accepts_its_genesis_and_answers_the_genesis_header_hash(open_app):
    config = small_config()
    app = open_app(init=False)
    res = app.init_chain(init_request(config, initial_height=1))
    genesis = app.chain.header(0)
    assert res.app_hash == genesis.hash(app.suite) == app.chain.head().hash(app.suite)
    assert genesis.proposer == bytes(32)  # no node's: the same genesis header on every node
    info = app.info(abci_pb.RequestInfo())
    assert info.last_block_height == 0 and info.last_block_app_hash == res.app_hash
    assert info.app_version == APP_VERSION
    # Every node of the network makes the same genesis header, whatever its own key.
    other = TierChainApp(ReplicaChain(app.chain.path.parent / "other", config, CAROL))
    try:
        assert other.init_chain(init_request(config)).app_hash == res.app_hash
    finally:
        other.close()


def test_init_chain_after_a_block_is_refused(open_app):
    app = open_app()
    run_block(app, [transfer(ALICE, 0, BOB, 1)])
    with pytest.raises(GenesisMismatch, match="height 1"):
        app.init_chain(init_request(small_config()))


def test_query_head_gives_the_head_header(open_app):
    app = open_app()
    run_block(app, [transfer(ALICE, 0, BOB, 1)])
    res = app.query(abci_pb.RequestQuery(path="/head"))
    assert res.code == 0 and res.height == 1 and res.value == app.chain.head().encode()
    assert app.query(abci_pb.RequestQuery(path="/nope")).code != 0


# --- CheckTx -----------------------------------------------------------------------------


def test_check_txs_admits_valid_transfers_and_names_refusals(open_app):
    app = open_app()
    good = [transfer(ALICE, 0, BOB, 1), transfer(ALICE, 1, BOB, 1), transfer(CAROL, 0, BOB, 1)]
    assert check(app, good) == [Reject.OK] * 3
    assert check(
        app,
        [
            bad_signature(transfer(CAROL, 1, BOB, 1)),
            transfer(ALICE, 5, BOB, 1),  # ALICE's next is 2: a gap
            transfer(ALICE, 0, CAROL, 2),  # checked already: behind the next
            transfer(CAROL, 1, BOB, 1, chain_id=10),
            b"\x01garbage",
        ],
    ) == [
        Reject.BAD_SIGNATURE,
        Reject.NONCE_TOO_HIGH,
        Reject.NONCE_TOO_LOW,
        Reject.WRONG_CHAIN,
        Reject.TOO_SHORT,
    ]


def test_checked_nonces_carry_across_calls_and_refusals_do_not_advance_them(open_app):
    app = open_app()
    assert check(app, [transfer(ALICE, 0, BOB, 1)]) == [Reject.OK]
    assert check(app, [transfer(ALICE, 1, BOB, 1), transfer(ALICE, 2, BOB, 1)]) == [Reject.OK] * 2
    assert check(app, [bad_signature(transfer(ALICE, 3, BOB, 1))]) == [Reject.BAD_SIGNATURE]
    assert check(app, [transfer(ALICE, 3, BOB, 1)]) == [Reject.OK]  # the refused one took no nonce
    assert check(app, [transfer(ALICE, 3, CAROL, 1)]) == [Reject.NONCE_TOO_LOW]


def test_check_txs_bounds_a_senders_unconfirmed_transactions(open_app):
    app = open_app(small_config(sender_pending_max=2))
    txs = [transfer(ALICE, n, BOB, 1) for n in range(3)]
    assert check(app, txs) == [Reject.OK, Reject.OK, Reject.SENDER_LIMIT]


def _counting_verifier(app, monkeypatch) -> list[int]:
    """Rows the app's suite verifies, call by call."""
    calls: list[int] = []
    suite = app.suite
    real = suite.verify_batch_packed

    def counted(keys, msgs, sigs):
        calls.append(len(sigs) // 64)
        return real(keys, msgs, sigs)

    monkeypatch.setattr(type(suite), "verify_batch_packed", lambda self, *a: counted(*a))
    return calls


def test_a_signature_is_verified_once_per_node_and_a_recheck_still_checks_nonces(open_app, monkeypatch):
    app = open_app()
    calls = _counting_verifier(app, monkeypatch)
    a0 = transfer(ALICE, 0, BOB, 1)
    assert check(app, [a0], NEW) == [Reject.OK]
    app._check_nonces.clear()  # as after a Commit
    assert check(app, [a0], RECHECK) == [Reject.OK]
    assert calls == [1]  # verified once: the recheck did not verify it again
    # A forged signature was never verified valid: checked again, refused again.
    forged = bad_signature(transfer(ALICE, 1, BOB, 1))
    assert check(app, [forged], NEW) == [Reject.BAD_SIGNATURE]
    assert check(app, [forged], RECHECK) == [Reject.BAD_SIGNATURE]
    assert check(app, [transfer(ALICE, 5, BOB, 1)], RECHECK) == [Reject.NONCE_TOO_HIGH]
    assert check(app, [transfer(ALICE, 0, CAROL, 1)], RECHECK) == [Reject.NONCE_TOO_LOW]
    assert check(app, [transfer(ALICE, 1, BOB, 1)], RECHECK) == [Reject.OK]
    # ProcessProposal of a block of transactions this node checked verifies none of them.
    calls.clear()
    assert app.process_proposal(process_request([a0], 1)).status == ACCEPT
    assert sum(calls) == 0


def test_what_the_node_api_admitted_passes_its_checktx_at_once(open_app, monkeypatch):
    app = open_app()
    calls = _counting_verifier(app, monkeypatch)
    txs = [transfer(ALICE, n, BOB, 1) for n in range(3)]
    batch = app._decode([*txs, bad_signature(transfer(CAROL, 0, BOB, 1))])
    assert app.admit_local(batch).tolist() == [0, 0, 0, Reject.BAD_SIGNATURE]
    assert calls == [4]
    # CometBFT's CheckTx of the same transactions: no second check, no second verification,
    # and the sequence stays right for what comes next.
    assert check(app, txs) == [Reject.OK] * 3
    assert calls == [4]
    assert check(app, [transfer(ALICE, 3, BOB, 1)]) == [Reject.OK]
    assert check(app, [transfer(ALICE, 3, CAROL, 1)]) == [Reject.NONCE_TOO_LOW]
    # A row CometBFT refused is forgotten: its CheckTx, if it ever comes, checks it in full.
    late = app._decode([transfer(CAROL, 0, BOB, 1)])
    assert app.admit_local(late).tolist() == [0]
    app.forget_local(late, np.array([0]))
    assert check(app, [transfer(CAROL, 0, BOB, 1)]) == [Reject.NONCE_TOO_LOW]  # maybe in CometBFT's mempool
    # Refused because CometBFT's mempool was full: certainly not there, so its nonce (and
    # the sender's later ones) is given back, and a resubmission passes at once.
    full = app._decode([transfer(ALICE, n, BOB, 1) for n in (4, 5, 6)])
    assert app.admit_local(full).tolist() == [0, 0, 0]
    app.forget_local(full, np.array([1, 2]), np.array([True, True]))
    assert check(app, [transfer(ALICE, 6, BOB, 1)]) == [Reject.NONCE_TOO_HIGH]
    assert check(app, [transfer(ALICE, 5, BOB, 1), transfer(ALICE, 6, BOB, 1)]) == [Reject.OK] * 2
    observer = TierChainApp(app.chain, role="observer")
    assert observer.admit_local(batch).tolist() == [Reject.READ_ONLY] * 4


def test_commit_resets_the_check_state_to_committed_nonces(open_app):
    app = open_app()
    a0, a1, a2 = (transfer(ALICE, n, BOB, 1) for n in range(3))
    assert check(app, [a0, a1]) == [Reject.OK] * 2
    run_block(app, [a0])  # a1 stays in CometBFT's mempool
    # After Commit, CometBFT rechecks what is left, in order: a1 is next again (not "too low"
    # against the checked nonce 2 of before), and a0 is committed.
    assert check(app, [a1], RECHECK) == [Reject.OK]
    assert check(app, [a0, a2]) == [Reject.NONCE_TOO_LOW, Reject.OK]


def test_an_observer_refuses_every_transaction(open_app):
    app = open_app(role="observer")
    txs = [transfer(ALICE, 0, BOB, 1), bad_signature(transfer(CAROL, 0, BOB, 1)), b"\x01garbage"]
    assert check(app, txs) == [Reject.READ_ONLY] * 3
    assert check(app, txs[:1], RECHECK) == [Reject.READ_ONLY]
    # It still replicates: blocks decided by the validators execute.
    run_block(app, txs[:1])
    assert app.chain.balance(BOB.public_key) == 1
    with pytest.raises(ValueError, match="role"):
        TierChainApp(app.chain, role="voter")


def test_a_forged_copy_ahead_of_a_valid_tx_does_not_refuse_it(open_app):
    app = open_app()
    good = transfer(ALICE, 0, BOB, 1)
    # Same body (same tx id), other signature: the solo mempool answers [BAD_SIGNATURE, OK].
    assert check(app, [bad_signature(good), good]) == [Reject.BAD_SIGNATURE, Reject.OK]


# --- PrepareProposal ----------------------------------------------------------------------


def _prepare(app, txs, max_tx_bytes=1 << 20):
    req = abci_pb.RequestPrepareProposal(
        txs=list(txs),
        max_tx_bytes=max_tx_bytes,
        height=app.chain.height + 1,
        proposer_address=validator_address(VAL1.public_key),
    )
    set_time(req, T0_MS + 1000 * req.height)
    return list(app.prepare_proposal(req).txs)


def test_prepare_proposal_drops_stale_and_out_of_sequence_txs_and_keeps_order(open_app):
    app = open_app()
    a0, a1, a2, a4 = (transfer(ALICE, n, BOB, 1) for n in (0, 1, 2, 4))
    c0, c1 = (transfer(CAROL, n, BOB, 1) for n in (0, 1))
    run_block(app, [a0])
    offered = [c0, a0, a1, a4, c1, a2, b"\x01garbage"]
    # a0 is committed (stale), a4 is ahead of its sender (a gap), the last does not decode;
    # the rest keeps CometBFT's order.
    assert _prepare(app, offered) == [c0, a1, c1, a2]
    assert _prepare(app, []) == []


def test_prepare_proposal_keeps_a_block_within_its_limits(open_app):
    app = open_app(small_config(block_txs_max=3))
    txs = [transfer(ALICE, n, BOB, 1) for n in range(5)]
    assert _prepare(app, txs) == txs[:3]
    size = len(txs[0])
    assert _prepare(app, txs, max_tx_bytes=2 * size + size // 2) == txs[:2]
    assert _prepare(app, txs, max_tx_bytes=size - 1) == []
    # What it proposes, it accepts.
    assert app.process_proposal(process_request(txs[:3], 1)).status == ACCEPT


def test_prepare_proposal_from_a_mempool_larger_than_a_batch(open_app):
    app = open_app()
    txs = [transfer(ALICE, 0, BOB, 1)] + [transfer(ALICE, 1, BOB, 1)] * (1 << 16)
    # CometBFT offers up to max_tx_bytes of its mempool (block max_bytes 21 MiB by default:
    # ~78k transfers of 279 bytes; the net's mempool holds 100k).
    got = _prepare(app, txs, max_tx_bytes=64 << 20)
    assert got == txs[:2]


# --- ProcessProposal -----------------------------------------------------------------------


def test_process_proposal_accepts_a_valid_block(open_app):
    app = open_app()
    txs = [transfer(ALICE, 0, BOB, 1), transfer(CAROL, 0, BOB, 2), transfer(ALICE, 1, CAROL, 3)]
    assert app.process_proposal(process_request(txs, 1)).status == ACCEPT
    assert app.process_proposal(process_request([], 1)).status == ACCEPT  # an empty block


@pytest.mark.parametrize(
    "case",
    ["bad signature", "nonce gap", "repeated nonce", "stale nonce", "too many", "undecodable", "duplicate"],
)
def test_process_proposal_rejects_an_invalid_block(open_app, case):
    app = open_app(small_config(block_txs_max=4))
    run_block(app, [transfer(CAROL, 0, BOB, 1)])
    a0, a1, a2 = (transfer(ALICE, n, BOB, 1) for n in range(3))
    txs = {
        "bad signature": [a0, bad_signature(a1)],
        "nonce gap": [a0, a2],
        "repeated nonce": [a0, transfer(ALICE, 0, CAROL, 1)],
        "stale nonce": [a0, transfer(CAROL, 0, ALICE, 1)],  # CAROL's 0 is committed
        "too many": [*(transfer(ALICE, n, BOB, 1) for n in range(5))],
        "undecodable": [a0, b"\x01garbage"],
        "duplicate": [a0, a0],
    }[case]
    assert app.process_proposal(process_request(txs, 2)).status == REJECT
    # The same block without the fault is fine.
    assert app.process_proposal(process_request([a0, a1], 2)).status == ACCEPT


def test_process_proposal_rejects_a_block_at_the_wrong_height(open_app):
    app = open_app()
    txs = [transfer(ALICE, 0, BOB, 1)]
    assert app.process_proposal(process_request(txs, 2)).status == REJECT
    assert app.process_proposal(process_request(txs, 0)).status == REJECT
    assert app.process_proposal(process_request(txs, 1)).status == ACCEPT


# --- FinalizeBlock and Commit ---------------------------------------------------------------


def test_finalize_and_commit_execute_the_block(open_app):
    app = open_app()
    suite = app.suite
    txs = [
        transfer(ALICE, 0, BOB, 300),
        transfer(CAROL, 0, BOB, 100),
        transfer(ALICE, 1, CAROL, 5_000),  # more than she has: in the block, refused
    ]
    ms = T0_MS + 1234
    sub = app.chain.subscribe()
    assert app.process_proposal(process_request(txs, 1)).status == ACCEPT
    res = app.finalize_block(finalize_request(txs, 1, ms=ms, proposer=VAL2))
    assert [r.code for r in res.tx_results] == [Reject.OK, Reject.OK, Reject.INSUFFICIENT_FUNDS]
    assert res.tx_results[2].log == "INSUFFICIENT_FUNDS"
    assert app.chain.height == 0 and app.chain.finalized is not None  # not durable yet
    assert app.chain.balance(BOB.public_key) == 0
    assert app.info(abci_pb.RequestInfo()).last_block_height == 0
    app.commit(abci_pb.RequestCommit())

    head = app.chain.head()
    assert head.height == 1 and app.chain.finalized is None
    assert res.app_hash == head.hash(suite) == app.chain.header(1).hash(suite)
    assert head.prev_hash == app.chain.header(0).hash(suite)
    assert head.proposer == VAL2.public_key  # the validator whose address CometBFT gave
    assert head.timestamp_ms == ms  # the block's time, to the millisecond
    assert head.tx_count == 3
    assert suite.verify(NODE.public_key, head.hash(suite), head.signature)  # sealed by this node
    assert app.chain.balance(ALICE.public_key) == 700
    assert app.chain.balance(BOB.public_key) == 400
    assert app.chain.balance(CAROL.public_key) == 400
    assert app.chain.nonce(ALICE.public_key) == 2
    assert app.chain.block_txs(1) == txs
    info = app.info(abci_pb.RequestInfo())
    assert info.last_block_height == 1 and info.last_block_app_hash == res.app_hash
    # The engine's read paths work as on a solo chain: subscribers, state and tx proofs.
    told = sub.get(timeout=10)
    assert told is not None and told.header == head and told.receipts == app.chain.receipts(1)
    key = accounts.account_key(BOB.public_key)
    assert proofs.verify_state(head.encode(), app.chain.prove_state(key), key)
    tx_id = decode_batch(frame(txs[:1])).digest[0].tobytes()
    assert proofs.verify_tx(head.encode(), app.chain.prove_tx(tx_id), tx_id)


def test_replicated_roots_equal_the_solo_transition(open_app):
    config = small_config(state_flush_blocks=2)  # blocks both logged and flushed
    app = open_app(config)
    blocks = [
        (T0_MS + 10, [transfer(ALICE, 0, BOB, 300), transfer(CAROL, 0, BOB, 100)]),
        (T0_MS + 10, []),  # CometBFT makes empty blocks; the same time again is allowed
        (T0_MS + 2_500, [transfer(BOB, 0, CAROL, 350), transfer(ALICE, 1, BOB, 5_000)]),
        (T0_MS + 4_000, [transfer(CAROL, 1, ALICE, 1), transfer(ALICE, 2, CAROL, 1)]),
    ]
    hashes = []
    for ms, txs in blocks:
        hashes.append(run_block(app, txs, ms=ms).app_hash)
    _, replayed, _ = replay(config, blocks)  # what a solo run of the same blocks commits
    for h, t in enumerate(replayed, start=1):
        hdr = app.chain.header(h)
        assert hdr.timestamp_ms == blocks[h - 1][0]
        assert t.roots == transition.Roots(hdr.tx_root, hdr.receipt_root, hdr.state_root), f"block {h}"
        assert t.outcome.receipts == app.chain.receipts(h)
        assert hashes[h - 1] == hdr.hash(app.suite)
        assert hdr.prev_hash == app.chain.header(h - 1).hash(app.suite)
    # The solo genesis has the same state: the roots differ only by the blocks' headers.
    with Chain(app.chain.path.parent / "solo", config, NODE, start=False) as solo:
        assert solo.header(0).state_root == app.chain.header(0).state_root
    app_path = app.chain.path
    open_app.close(app)
    assert verify_chain(app_path).ok


def test_the_same_blocks_give_the_same_app_hashes_on_every_node(tmp_path, open_app):
    blocks = [[transfer(ALICE, 0, BOB, 30)], [transfer(ALICE, 1, CAROL, 5), transfer(CAROL, 0, BOB, 2)]]
    per_node = []
    for keys in (NODE, CAROL):
        app = TierChainApp(ReplicaChain(tmp_path / keys.public_key.hex()[:8], small_config(), keys))
        try:
            app.init_chain(init_request(small_config()))
            per_node.append([run_block(app, txs).app_hash for txs in blocks])
        finally:
            app.close()
    assert per_node[0] == per_node[1]


def test_finalize_block_from_an_unknown_proposer_raises(open_app):
    app = open_app()
    txs = [transfer(ALICE, 0, BOB, 1)]
    with pytest.raises(GenesisMismatch, match="no known validator"):
        app.finalize_block(finalize_request(txs, 1, proposer=CAROL))
    assert app.chain.finalized is None and app.chain.height == 0
    run_block(app, txs)  # nothing was left half done
    assert app.chain.height == 1


def test_finalize_twice_without_commit_raises(open_app):
    app = open_app()
    app.finalize_block(finalize_request([transfer(ALICE, 0, BOB, 1)], 1))
    with pytest.raises(ChainError, match="not committed"):
        app.finalize_block(finalize_request([transfer(ALICE, 0, BOB, 1)], 1))
    with pytest.raises(ChainError):
        app.finalize_block(finalize_request([], 2))


def test_finalize_at_the_wrong_height_or_commit_without_finalize_raises(open_app):
    app = open_app()
    with pytest.raises(ChainError, match="block 2 decided"):
        app.finalize_block(finalize_request([], 2))
    with pytest.raises(ChainError, match="commit without"):
        app.commit(abci_pb.RequestCommit())
    assert app.chain.height == 0


def test_a_replicated_chain_has_no_producer(open_app):
    app = open_app()
    with pytest.raises(ChainError, match="no producer"):
        app.chain.start()


# --- crash and restart ----------------------------------------------------------------------


def test_a_finalized_uncommitted_block_is_replayed_after_a_restart(tmp_path, open_app):
    config = small_config()
    app = open_app(config)
    first = run_block(app, [transfer(ALICE, 0, BOB, 10)])
    block2 = [transfer(ALICE, 1, BOB, 20), transfer(CAROL, 0, ALICE, 5)]
    lost = app.finalize_block(finalize_request(block2, 2, proposer=VAL2))
    open_app.close(app)  # the process stops between FinalizeBlock and Commit

    app = open_app(config, init=False)
    info = app.info(abci_pb.RequestInfo())
    assert info.last_block_height == 1 and info.last_block_app_hash == first.app_hash
    assert app.chain.balance(BOB.public_key) == 10  # block 2 never happened here
    # CometBFT replays block 2; the validators recorded at InitChain survived the restart.
    again = app.finalize_block(finalize_request(block2, 2, proposer=VAL2))
    assert again.app_hash == lost.app_hash
    assert [r.code for r in again.tx_results] == [r.code for r in lost.tx_results]
    app.commit(abci_pb.RequestCommit())
    assert app.chain.head().hash(app.suite) == lost.app_hash
    assert app.chain.balance(BOB.public_key) == 30 and app.chain.balance(ALICE.public_key) == 975


def test_committed_blocks_survive_a_restart(open_app):
    config = small_config(state_flush_blocks=4)
    app = open_app(config)
    hashes = [run_block(app, [transfer(ALICE, n, BOB, 1)]).app_hash for n in range(3)]
    open_app.close(app)
    app = open_app(config, init=False)
    info = app.info(abci_pb.RequestInfo())
    assert info.last_block_height == 3 and info.last_block_app_hash == hashes[-1]
    assert app.chain.nonce(ALICE.public_key) == 3
    assert check(app, [transfer(ALICE, 3, BOB, 1)]) == [Reject.OK]
    run_block(app, [transfer(ALICE, 3, BOB, 1)])
    assert app.chain.balance(BOB.public_key) == 4


# --- mode ----------------------------------------------------------------------------------


def test_solo_and_replicated_chains_refuse_each_others_databases(tmp_path):
    config = small_config()
    Chain(tmp_path / "solo", config, NODE, start=False).close()
    with pytest.raises(ChainError, match="solo"):
        ReplicaChain(tmp_path / "solo", config, NODE)
    ReplicaChain(tmp_path / "replica", config, NODE).close()
    with pytest.raises(ChainError, match="cometbft"):
        Chain(tmp_path / "replica", config, NODE, start=False)
    # Each still opens as what it is.
    ReplicaChain(tmp_path / "replica", config, NODE).close()
    Chain(tmp_path / "solo", config, NODE, start=False).close()


def _set_validator(app, key: bytes, power: int) -> bytes:
    from tierchain.apps.finance import codes as fc
    from tierchain.apps.finance import orgs

    t = orgs.propose(
        9,
        NODE.public_key,
        app.chain.nonce(NODE.public_key),
        fc.Action.SET_VALIDATOR,
        orgs.set_validator_body(key, power),
    )
    return NODE.sign_tx(t).encode()


def test_a_committee_vote_becomes_a_validator_update_and_survives_a_restart(open_app, tmp_path):
    app = open_app()
    newcomer = KeyPair.from_seed(b"validator-3".ljust(32, b"\0")).public_key
    res = run_block(app, [_set_validator(app, newcomer, 10)])
    assert res.tx_results[0].code == 0
    assert [(bytes(u.pub_key.ed25519), u.power) for u in res.validator_updates] == [(newcomer, 10)]
    assert app.validators == {VAL1.public_key: 10, VAL2.public_key: 10, newcomer: 10}
    # Removing a key that is no validator changes nothing, and is not handed to CometBFT
    # (it would refuse the whole update and stop every node at that height).
    stranger = KeyPair.from_seed(b"stranger".ljust(32, b"\0")).public_key
    res = run_block(app, [_set_validator(app, stranger, 0)])
    assert res.tx_results[0].code == 0 and list(res.validator_updates) == []
    res = run_block(app, [_set_validator(app, newcomer, 0)])
    assert [(bytes(u.pub_key.ed25519), u.power) for u in res.validator_updates] == [(newcomer, 0)]
    # The set is the last committed block's, after a restart too (meta, written in its txn).
    app.close()
    again = TierChainApp(ReplicaChain(tmp_path / "chain", app.config, NODE))
    try:
        assert again.validators == {VAL1.public_key: 10, VAL2.public_key: 10}
    finally:
        again.close()


def test_the_node_api_forwarder_settles_each_submission_once(open_app, monkeypatch):
    from tierchain.replication.submit import Forwarder

    app = open_app()
    forwarder = Forwarder(app, "127.0.0.1", 1)  # nothing listens there: the broadcast is stubbed
    sent: list[bytes] = []
    monkeypatch.setattr(forwarder, "_broadcast", lambda txs: (sent.extend(txs), [0] * len(txs))[1])
    try:
        t0, t1 = transfer(ALICE, 0, BOB, 5), transfer(ALICE, 1, BOB, 6)
        first = forwarder.submit(frame([t0, t1]))
        assert first.codes.tolist() == [0, 0] and sent == [t0, t1]
        # The same transaction again while the first waits for its block: refused, and the
        # first submission keeps its claim on the receipt. Normally by its nonce; right after
        # a Commit (the check state cleared, CometBFT's recheck not there yet) as a duplicate.
        assert forwarder.submit(frame([t0])).codes.tolist() == [Reject.NONCE_TOO_LOW]
        app._check_nonces.clear()
        again = forwarder.submit(frame([t0]))
        assert again.codes.tolist() == [Reject.DUPLICATE] and sent == [t0, t1]
        # CometBFT's CheckTx of what the forwarder admitted passes at once.
        assert check(app, [t0, t1]) == [Reject.OK, Reject.OK]
        run_block(app, [t0, t1])
        receipts = first.wait(10)
        assert [r.code for r in receipts] == [0, 0] and first.heights.tolist() == [app.chain.height] * 2
        assert app.chain.balance(BOB.public_key) == 11
    finally:
        forwarder.close()


def test_a_submission_cometbfts_full_mempool_refused_can_be_resubmitted_at_once(open_app, monkeypatch):
    from tierchain.replication.submit import Forwarder

    app = open_app()
    forwarder = Forwarder(app, "127.0.0.1", 1)
    answers = [[0, Reject.MEMPOOL_FULL], [0]]  # CometBFT's mempool fills up, then has room again
    monkeypatch.setattr(forwarder, "_broadcast", lambda txs: answers.pop(0))
    try:
        t0, t1 = transfer(ALICE, 0, BOB, 5), transfer(ALICE, 1, BOB, 6)
        assert forwarder.submit(frame([t0, t1])).codes.tolist() == [0, Reject.MEMPOOL_FULL]
        assert forwarder.submit(frame([t1])).codes.tolist() == [0]  # not NONCE_TOO_LOW
    finally:
        forwarder.close()


def test_what_the_node_api_admitted_is_remembered_within_a_bound(open_app, monkeypatch):
    from tierchain.replication import app as app_module

    monkeypatch.setattr(app_module, "local_max", 2)
    app = open_app()
    txs = [transfer(ALICE, n, BOB, 1) for n in range(3)]
    assert app.admit_local(app._decode(txs)).tolist() == [0, 0, 0]
    assert len(app._local) == 2  # the oldest forgotten: its CheckTx checks it in full
    assert check(app, txs[1:]) == [Reject.OK, Reject.OK]
    assert check(app, txs[:1]) == [Reject.NONCE_TOO_LOW]
