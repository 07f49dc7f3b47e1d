"""Apps' batch admission checks (``App.checks``, tierchain.engine.mempool.run_checks): run
once per batch on the rows of their ops that passed the engine's checks, refusing with an
engine admission code; on a solo chain, a replicated node's CheckTx and ProcessProposal,
and ``tierchain verify``."""

from __future__ import annotations

import numpy as np
import pytest

import tally_apps
from abci_world import check, init_request, process_request
from conftest import ALICE, BOB, CAROL, CHAIN_ID, NODE, small_config, transfer
from tierchain.engine import apps
from tierchain.engine.chain import Chain
from tierchain.engine.verify import verify_chain
from tierchain.errors import InvariantViolation, Reject
from tierchain.wire.tx import frame

CONFIG = small_config(apps=(*apps.DEFAULT_APPS, "proofed"))


def put(keys, nonce: int, payload: bytes) -> bytes:
    return keys.sign_tx(tally_apps.put(CHAIN_ID, keys.public_key, nonce, payload)).encode()


def forged(raw: bytes) -> bytes:
    return raw[:-1] + bytes((raw[-1] ^ 1,))


@pytest.fixture(autouse=True)
def _calls():
    tally_apps.check_calls.clear()


def test_a_check_runs_once_per_batch_on_the_rows_that_passed_and_refuses_by_name(tmp_path):
    with Chain(tmp_path / "c", CONFIG, NODE, apps=[tally_apps.PROOFED]) as chain:
        txs = [
            put(ALICE, 0, b"ok 1"),
            put(BOB, 0, b"no proof"),
            forged(put(CAROL, 0, b"ok but forged")),  # refused by its signature: never checked
            transfer(ALICE, 1, BOB, 5),  # another app's op: not this check's
        ]
        sub = chain.submit(txs)
        assert sub.codes.tolist() == [0, Reject.BAD_PROOF, Reject.BAD_SIGNATURE, 0]
        assert tally_apps.check_calls == [2]  # ONE call, for the two rows it owns
        receipts = sub.wait(10)
        assert [r and r.code for r in receipts] == [0, None, None, 0]
        assert chain.state_get(tally_apps.proofed_key(ALICE.public_key)) == b"ok 1"
        assert chain.state_get(tally_apps.proofed_key(BOB.public_key)) is None


def test_a_check_answering_out_of_its_contract_is_a_bug_not_a_refusal(tmp_path):
    bad_shape = apps.BatchCheck(frozenset({tally_apps.OP_PUT}), lambda b, rows, suite: [0], "bad shape")
    bad_code = apps.BatchCheck(
        frozenset({tally_apps.OP_PUT}), lambda b, rows, suite: [77] * len(rows), "bad code"
    )
    for bc in (bad_shape, bad_code):
        app = apps.App("proofed", tally_apps.PROOFED.ops, range(5100, 5101), checks=(bc,))
        with Chain(tmp_path / bc.name, CONFIG, NODE, apps=[app]) as chain:
            with pytest.raises(InvariantViolation, match=bc.name):
                chain.submit([put(ALICE, 0, b"ok"), put(BOB, 0, b"ok")])


def test_an_app_refuses_a_check_of_ops_it_does_not_have():
    with pytest.raises(apps.AppError, match="not ops of the app"):
        apps.App(
            "proofed",
            tally_apps.PROOFED.ops,
            range(5100, 5101),
            checks=(apps.BatchCheck(frozenset({5099}), lambda b, rows, suite: rows, "other"),),
        )


def test_a_replicated_node_checks_at_checktx_and_process_proposal(tmp_path):
    from tierchain.replication.app import TierChainApp
    from tierchain.replication.ledger import ReplicaChain

    node = TierChainApp(ReplicaChain(tmp_path / "r", CONFIG, NODE, apps=[tally_apps.PROOFED]))
    try:
        node.init_chain(init_request(CONFIG))
        good, bad = put(ALICE, 0, b"ok"), put(BOB, 0, b"forged proof")
        assert check(node, [good, bad]) == [Reject.OK, Reject.BAD_PROOF]
        answer = node.process_proposal(process_request([good, bad], 1))
        assert answer.status == answer.REJECT
        assert node.process_proposal(process_request([good], 1)).status == answer.ACCEPT
    finally:
        node.close()


def test_verify_finds_a_block_whose_transaction_fails_a_check(tmp_path, monkeypatch):
    # A node that skipped the check admitted a transaction without a valid proof.
    with Chain(tmp_path / "c", CONFIG, NODE, apps=[tally_apps.PROOFED_UNCHECKED]) as chain:
        chain.submit([put(ALICE, 0, b"ok"), put(BOB, 0, b"no proof")]).wait(10)
    monkeypatch.setenv(apps.APPS_ENV, "tally_apps:PROOFED")
    report = verify_chain(tmp_path / "c")
    assert not report.ok
    assert (
        [p for p in report.problems if "fails admission: BAD_PROOF" in p]
        == [p for p in report.problems if "tx 1 fails admission" in p]
        != []
    )
    monkeypatch.setenv(apps.APPS_ENV, "tally_apps:PROOFED_UNCHECKED")
    assert verify_chain(tmp_path / "c").ok


def test_screen_skips_the_checks_of_rows_it_does_not_verify(tmp_path):
    from tierchain.engine.mempool import screen
    from tierchain.wire.batch import decode_batch

    with Chain(tmp_path / "c", CONFIG, NODE, apps=[tally_apps.PROOFED]) as chain:
        batch = decode_batch(frame([put(ALICE, 0, b"ok"), put(BOB, 0, b"bad")]), suite=chain.suite)
        common = dict(chain_id=CHAIN_ID, suite=chain.suite, checks=chain.apps.checks)
        assert screen(batch, 1, verify=False, **common).tolist() == [0, 0]  # as PrepareProposal
        assert screen(batch, 1, verify=np.array([False, True]), **common).tolist() == [0, Reject.BAD_PROOF]
        assert tally_apps.check_calls == [1]
