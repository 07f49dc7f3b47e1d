"""One state transition (tierchain.engine.transition) behind block production, verify and replay.

The chain pipelines the transition (execute in the producer, the commitment's
version inline or on the tree thread, the commit later); what it commits must be
exactly what the pure function computes from the same blocks.
"""

from __future__ import annotations

import types

import pytest

from conftest import ALICE, BOB, CAROL, NODE, small_config
from tierchain.apps import accounts
from tierchain.crypto import ED25519_BLAKE3, KeyPair
from tierchain.engine import apps, transition
from tierchain.engine.chain import Chain
from tierchain.engine.genesis import genesis_writes
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.state.commitment import InterimCommitment, MemorySmtCommitment, SmtCommitment, commitment_of
from tierchain.state.interim_root import GENESIS_PARENT, next_state_root, root_from_digest, write_set_digest
from tierchain.state.storage import Store
from tierchain.state.tree import StateUnavailable
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame
from transition_world import replay

CHAIN_ID = 9
STRANGER = KeyPair.from_seed(b"stranger".ljust(32, b"\0"))


def transfer(keys: KeyPair, nonce: int, to: KeyPair, amount: int) -> bytes:
    return keys.sign_tx(accounts.transfer(CHAIN_ID, keys.public_key, nonce, to.public_key, amount)).encode()


@pytest.mark.parametrize(
    ("commitment", "stage"), [("smt", "inline"), ("smt", "thread"), ("interim", "inline")]
)
def test_committed_headers_equal_the_transition_outputs(chain_dir, commitment, stage):
    cfg = small_config(state_commitment=commitment, tree_stage=stage)
    with Chain(chain_dir, cfg, NODE) as c:
        batches = [
            [transfer(ALICE, 0, BOB, 300), transfer(CAROL, 0, BOB, 100)],
            [transfer(BOB, 0, CAROL, 350), transfer(ALICE, 1, BOB, 5_000)],  # 2nd: no funds
            [transfer(CAROL, 1, STRANGER, 1), transfer(ALICE, 2, CAROL, 1)],  # 1st: no account
        ]
        codes = [r.code for txs in batches for r in c.submit(txs).wait(10)]  # a block each
        assert Reject.OK in codes and set(codes) - {Reject.OK}  # refusals in blocks, too
        top = c.height
        headers = [c.header(h) for h in range(top + 1)]
        blocks = [(headers[h].timestamp_ms, c.block_txs(h)) for h in range(1, top + 1)]
        stored_receipts = [c.receipts(h) for h in range(1, top + 1)]
        state_now = dict(c.state_scan(b"", limit=10_000))
    genesis, replayed, state = replay(cfg, blocks)
    assert (headers[0].tx_root, headers[0].receipt_root, headers[0].state_root) == (
        genesis.tx_root,
        genesis.receipt_root,
        genesis.state_root,
    )
    assert len(replayed) == top == 3
    for h, t in enumerate(replayed, start=1):
        hdr = headers[h]
        assert t.roots == transition.Roots(hdr.tx_root, hdr.receipt_root, hdr.state_root), f"block {h}"
        assert t.outcome.receipts == stored_receipts[h - 1]
        assert t.version.height == h
    assert {k: v for k, v in state.items() if not k.startswith(b"\x00")} == {
        k: v for k, v in state_now.items() if not k.startswith(b"\x00")
    }
    assert verify_chain(chain_dir).ok  # verify runs the same function over the database


def test_the_transition_is_pure_and_deterministic():
    """Same inputs, same bytes; the parent state is only read; nothing is kept between calls
    but the commitment's last version."""
    cfg = small_config()
    parent = {k: v for k, v in genesis_writes(cfg).items() if v is not None}
    before = dict(parent)
    block = decode_batch(frame([transfer(ALICE, 0, BOB, 10), transfer(ALICE, 1, CAROL, 20)]))
    runs = []
    for _ in range(2):
        commitment = commitment_of(cfg)
        transition.genesis(cfg, app_set=apps.default_set(), suite=ED25519_BLAKE3, commitment=commitment)
        t = transition.transition(
            block,
            parent.get,
            1,
            1_000,
            app_set=apps.default_set(),
            suite=ED25519_BLAKE3,
            commitment=commitment,
        )
        runs.append(t)
    assert parent == before
    a, b = runs
    assert a.roots == b.roots and a.outcome.receipts == b.outcome.receipts
    assert a.outcome.writes == b.outcome.writes and a.outcome.writes  # the transfers wrote
    assert [r.code for r in a.outcome.receipts] == [Reject.OK, Reject.OK]


def test_commitment_is_chosen_once_from_the_config(tmp_path):
    smt, interim = commitment_of(small_config()), commitment_of(small_config(state_commitment="interim"))
    assert isinstance(smt, MemorySmtCommitment) and smt.proves and smt.threadable
    store = Store(tmp_path / "db")
    try:
        stored = commitment_of(small_config(), store=store)
        assert isinstance(stored, SmtCommitment) and stored.proves and stored.threadable
        assert stored.tree is not None and stored.in_flight == 0
    finally:
        store.close()
    assert isinstance(interim, InterimCommitment) and not interim.proves and not interim.threadable
    with pytest.raises(StateUnavailable, match='state_commitment = "smt"'):
        _ = interim.tree
    with pytest.raises(StateUnavailable, match="in-memory"):
        _ = smt.tree
    with pytest.raises(ValueError, match="unknown state_commitment"):
        commitment_of(types.SimpleNamespace(state_commitment="bogus"))  # type: ignore[arg-type]


def test_interim_commitment_is_the_documented_hash_chain():
    """``state_root(h) = H(state_root(h-1) || write_set_digest(h))`` from the genesis write set."""
    cfg = small_config(state_commitment="interim")
    commitment = commitment_of(cfg)
    writes = genesis_writes(cfg)
    root0 = transition.genesis(cfg, app_set=apps.default_set(), suite=ED25519_BLAKE3, commitment=commitment)
    assert root0.state_root == root_from_digest(GENESIS_PARENT, write_set_digest(writes))
    block = {b"k": b"v", b"gone": None}
    assert commitment.prepare(1, block).root == next_state_root(root0.state_root, block)
    assert commitment.prepare(2, {}).root == next_state_root(next_state_root(root0.state_root, block), {})
