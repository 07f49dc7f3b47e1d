"""Invariants stop the node (issue 15): a refusal is a receipt, a broken ledger invariant is a halt.

A handler that finds an invariant broken raises ``InvariantViolation``: the executor gives
it no receipt, the chain halts before anything of that block is committed, the block's
submitters get the violation, one CRITICAL log line names the op, transaction and
invariant, and ``node run`` exits non-zero. An ordinary exception in a handler is still a
``HANDLER_FAILED`` receipt that changes nothing but the sender's nonce.

The broken handler is the built-in transfer, made to break by the ``breaks`` fixture (or,
in the node process, by this file's ``__main__``): a transfer of ``BREAK_INVARIANT`` units
raises ``InvariantViolation`` after its writes, one of ``RAISE_BUG`` units a plain bug.
The real finance checks (settlement within the face amount, registry totals) are
exercised on tampered state.

Run as a script, this file is ``tierchain`` (the CLI) with the broken transfer installed.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tierchain
from tierchain.apps import accounts
from tierchain.engine.execute import TxContext, execute_block, native_ops_env
from tierchain.errors import InvariantViolation, Reject, RejectedError
from tierchain.state import log
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

BREAK_INVARIANT = 13  # a transfer of this amount breaks an invariant (under ``breaks``)
RAISE_BUG = 17  # a transfer of this amount raises an ordinary exception (under ``breaks``)
WRITE_AROUND = 19  # a transfer of this amount writes around TxContext.put, as an engine bug would
WHAT = "test: a transfer that does not conserve the supply"


def _breaking_emit(original):
    """TxContext.emit, except that the transfer handler's last step fails for the marked amounts."""

    def emit(ctx: TxContext, topic: bytes, data: bytes = b"") -> None:
        if topic == b"transfer":  # data: sender, recipient, amount u64 LE
            amount = int.from_bytes(data[-8:], "little")
            if amount == BREAK_INVARIANT:
                raise InvariantViolation(WHAT)
            if amount == RAISE_BUG:
                raise ZeroDivisionError("test: a handler bug")
            if amount == WRITE_AROUND:
                ctx._local[b"undeclared/key"] = b"x"
        original(ctx, topic, data)

    return emit


if __name__ == "__main__":  # the node process of test_node_run_exits_non_zero_on_a_broken_invariant
    os.environ[native_ops_env] = "0"  # the breaking emit is the Python transfer handler's
    TxContext.emit = _breaking_emit(TxContext.emit)
    from tierchain.cli.main import main

    main(prog_name="tierchain")
    sys.exit(0)

from conftest import ALICE, BOB, CAROL, NODE, free_port, small_config, stop, wait_serving  # noqa: E402
from tierchain.crypto import KeyPair  # noqa: E402
from tierchain.engine.chain import Chain, ChainError  # noqa: E402
from tierchain.engine.genesis import genesis_writes  # noqa: E402
from tierchain.engine.verify import verify_chain  # noqa: E402

CHAIN_ID = 9


@pytest.fixture
def breaks(monkeypatch):
    # The Python handlers break (a native kernel reports a broken invariant as ValueError:
    # test_native_exec.py).
    monkeypatch.setenv(native_ops_env, "0")
    monkeypatch.setattr(TxContext, "emit", _breaking_emit(TxContext.emit))


def transfer(keys: KeyPair, nonce: int, to: KeyPair, amount: int, chain_id: int = CHAIN_ID) -> bytes:
    return keys.sign_tx(accounts.transfer(chain_id, keys.public_key, nonce, to.public_key, amount)).encode()


def _state(chain_dir: Path) -> dict[bytes, bytes]:
    with Chain(chain_dir, small_config(), NODE, start=False) as c, c.store.read() as r:
        return log.current_items(r)


def _wait_stopped(chain: Chain) -> None:
    deadline = time.monotonic() + 10
    while chain._producer.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not chain._producer.is_alive()


# --- the executor ------------------------------------------------------------------------------


def test_the_executor_lets_a_violation_out_with_no_receipt_and_names_where(breaks):
    state = {k: v for k, v in genesis_writes(small_config()).items() if v is not None}
    txs = [transfer(CAROL, 0, BOB, 5), transfer(ALICE, 0, BOB, BREAK_INVARIANT)]
    batch = decode_batch(frame(txs))
    with pytest.raises(InvariantViolation) as info:
        execute_block(batch, state.get, 7, 1_000)
    exc = info.value
    assert (exc.what, exc.op, exc.tx_id, exc.height) == (WHAT, "transfer", batch.tx_ids()[1], 7)
    assert str(exc) == f"invariant violated: {WHAT} (op transfer, tx {batch.tx_ids()[1].hex()}, height 7)"
    # A refusal in the same position is a receipt, as before.
    refused = decode_batch(frame([txs[0], transfer(ALICE, 0, BOB, 10**6)]))
    codes = [r.code for r in execute_block(refused, state.get, 7, 1_000).receipts]
    assert codes == [Reject.OK, Reject.INSUFFICIENT_FUNDS]


def test_a_write_outside_the_declared_set_is_an_engine_violation(breaks):
    state = {k: v for k, v in genesis_writes(small_config()).items() if v is not None}
    batch = decode_batch(frame([transfer(ALICE, 0, BOB, WRITE_AROUND)]))
    with pytest.raises(InvariantViolation, match="a write outside the declared write set") as info:
        execute_block(batch, state.get, 3, 1_000)
    assert (info.value.op, info.value.tx_id, info.value.height) == ("transfer", batch.tx_ids()[0], 3)


def test_a_violation_keeps_what_its_raiser_said_and_survives_pickling():
    exc = InvariantViolation("scheduler left a tx", op="engine.schedule", height=4)
    exc.locate("transfer", b"\x01" * 32, 9)
    assert (exc.op, exc.tx_id, exc.height) == ("engine.schedule", b"\x01" * 32, 4)
    back = pickle.loads(pickle.dumps(exc))  # shard processes send errors over pipes
    assert isinstance(back, InvariantViolation) and back.fields() == exc.fields() and str(back) == str(exc)
    assert InvariantViolation("no location").fields() == {
        "op": "",
        "tx_id": "",
        "height": None,
        "invariant": "no location",
    }


def test_no_assert_guards_execution_code():
    """Invariants in ledger code are raised, never asserted: ``python -O`` strips asserts, and
    a node whose checks vanish would commit what another node halts on. Module-level asserts
    (limits checked at import) are fine; inside functions of modules that execute ops, not."""
    root = Path(tierchain.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if "TxContext" not in text:
            continue
        for fn in ast.walk(ast.parse(text)):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                raised = node.exc if isinstance(node, ast.Raise) else None
                if isinstance(raised, ast.Call):
                    raised = raised.func
                if isinstance(node, ast.Assert) or (
                    isinstance(raised, ast.Name) and raised.id == "AssertionError"
                ):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []


# --- the chain halts before committing ---------------------------------------------------------


@pytest.mark.parametrize("tree_stage", ["inline", "thread"])
def test_a_broken_invariant_halts_the_chain_before_its_block_commits(chain_dir, breaks, caplog, tree_stage):
    config = small_config(tree_stage=tree_stage)
    with Chain(chain_dir, config, NODE) as c:
        assert c.submit([transfer(ALICE, 0, BOB, 100)]).wait(10)[0].code == Reject.OK
        head = c.head()
        with c.store.read() as r:  # nothing is in flight: the database holds the whole state
            before = log.current_items(r)
        with caplog.at_level(logging.INFO):
            # One batch, one block: a good transfer first, then the one that breaks.
            sub = c.submit([transfer(CAROL, 0, BOB, 5), transfer(ALICE, 1, BOB, BREAK_INVARIANT)])
            with pytest.raises(InvariantViolation) as info:
                sub.wait(10)
            _wait_stopped(c)
        exc = info.value
        assert (exc.op, exc.tx_id, exc.height, exc.what) == ("transfer", sub.tx_ids[1], 2, WHAT)
        assert c.error is exc and c.height == 1 and c.head() == head
        critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
        assert len(critical) == 1
        assert critical[0].fields == {
            "stage": "block producer",
            "op": "transfer",
            "tx_id": sub.tx_ids[1].hex(),
            "height": 2,
            "invariant": WHAT,
        }
        with pytest.raises(RejectedError) as refused:
            c.submit([transfer(CAROL, 0, BOB, 5)])
        assert refused.value.code == Reject.SHUTTING_DOWN
    assert _state(chain_dir) == before  # nothing of block 2, not even the good transfer
    # Restarted, the node is at the last committed height; the offending transaction was only
    # in the (memory) mempool: nobody holds it now, and the chain goes on.
    with Chain(chain_dir, config, NODE) as c:
        assert c.head() == head
        assert (c.nonce(ALICE.public_key), c.nonce(CAROL.public_key)) == (1, 0)
        assert (c.balance(ALICE.public_key), c.balance(BOB.public_key)) == (900, 100)
        assert c.submit([transfer(CAROL, 0, BOB, 5)]).wait(10)[0].code == Reject.OK
        assert c.height == 2
    assert verify_chain(chain_dir).ok


@pytest.mark.parametrize(
    ("stage", "name"), [("_prepare_tree", "state tree stage"), ("_execute_and_commit", "committer")]
)
def test_an_engine_violation_in_a_later_stage_halts_before_the_commit_too(
    chain_dir, monkeypatch, caplog, stage, name
):
    original = getattr(Chain, stage)

    def failing(self, ex):
        if ex.height == 2:
            raise InvariantViolation("test: an engine check", height=ex.height)
        return original(self, ex)

    monkeypatch.setattr(Chain, stage, failing)
    with Chain(chain_dir, small_config(tree_stage="thread"), NODE) as c:
        assert c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)[0].code == Reject.OK
        with caplog.at_level(logging.INFO):
            sub = c.submit([transfer(ALICE, 1, BOB, 1)])
            with pytest.raises(InvariantViolation, match="an engine check") as info:
                sub.wait(10)
            _wait_stopped(c)
        assert c.error is info.value and c.height == 1
        critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
        assert [r.fields for r in critical] == [
            {"stage": name, "op": "", "tx_id": "", "height": 2, "invariant": "test: an engine check"}
        ]
    with Chain(chain_dir, small_config(tree_stage="thread"), NODE, start=False) as c:
        assert c.height == 1 and c.nonce(ALICE.public_key) == 1


def test_submitters_not_in_the_halted_block_hear_that_the_chain_stopped(chain_dir, breaks, monkeypatch):
    """Rows still queued when the producer halts fail with ChainError, not the violation."""
    with Chain(chain_dir, small_config(), NODE) as c:
        produce = c._produce
        queued = []

        def produce_then_queue(chunks):
            # While the broken block executes, another submitter's batch arrives.
            queued.append(c.submit([transfer(CAROL, 0, BOB, 5)]))
            produce(chunks)

        monkeypatch.setattr(c, "_produce", produce_then_queue)
        sub = c.submit([transfer(ALICE, 0, BOB, BREAK_INVARIANT)])
        with pytest.raises(InvariantViolation):
            sub.wait(10)
        with pytest.raises(ChainError, match="producer stopped: InvariantViolation"):
            queued[0].wait(10)
        assert c.height == 0


def test_an_ordinary_handler_exception_is_still_a_receipt_and_the_chain_goes_on(chain, breaks, caplog):
    with caplog.at_level(logging.INFO):
        sub = chain.submit([transfer(ALICE, 0, BOB, RAISE_BUG), transfer(ALICE, 1, BOB, 100)])
        receipts = sub.wait(10)
    assert [r.code for r in receipts] == [Reject.HANDLER_FAILED, Reject.OK]
    # The failed transfer's writes died with its context; only its nonce was consumed.
    assert (chain.balance(ALICE.public_key), chain.balance(BOB.public_key)) == (900, 100)
    assert chain.nonce(ALICE.public_key) == 2 and chain.error is None
    assert not [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert any("op handler transfer failed" in r.getMessage() for r in caplog.records)
    assert chain.submit([transfer(ALICE, 2, BOB, 1)]).wait(10)[0].code == Reject.OK


def test_verify_reports_a_violation_on_re_execution_as_a_problem(chain_dir, monkeypatch):
    monkeypatch.setenv(native_ops_env, "0")  # the Python handler is the one made to disagree
    with Chain(chain_dir, small_config(), NODE) as c:
        c.submit([transfer(ALICE, 0, BOB, 1)]).wait(10)
        c.submit([transfer(ALICE, 1, BOB, BREAK_INVARIANT)]).wait(10)  # committed by correct code
    assert verify_chain(chain_dir).ok
    monkeypatch.setattr(TxContext, "emit", _breaking_emit(TxContext.emit))  # code that now disagrees
    report = verify_chain(chain_dir)
    assert len(report.problems) == 1 and report.height == 1
    assert report.problems[0].startswith("height 2: re-execution stopped: invariant violated: " + WHAT)


# --- the finance checks -----------------------------------------------------------------------


def _finance_world():
    from finance_world import SECRET, MemLedger, admit_all, config
    from tierchain.apps.finance.client import Finance

    led = MemLedger(config())
    fin = Finance(led, SECRET)
    return led, fin, admit_all(fin)


def test_settlement_beyond_the_face_amount_is_a_violation_not_a_receipt():
    from finance_world import issue_voucher
    from tierchain.apps.finance import codes as c

    led, _fin, w = _finance_world()
    vid, _ = issue_voucher(w, 10_000, 2_000_000)
    # Damage the state the way only a bug could: the pieces now exceed the voucher's face.
    v = c.Voucher.decode(led.state[c.voucher_key(vid)])
    led.state[c.voucher_key(vid)] = dataclasses.replace(v, face=9_000).encode()
    before = dict(led.state)
    led.timestamp_ms = 2_000_000
    with pytest.raises(InvariantViolation) as info:
        w.p["CoreCo"].settle(vid)
    assert (
        info.value.op == "fin.settle" and info.value.what == "live pieces of a voucher exceed its face amount"
    )
    assert led.state == before


def test_releasing_more_than_the_registry_counted_is_a_violation_not_a_receipt():
    from finance_world import issue_voucher
    from tierchain.apps.finance import codes as c

    led, _fin, w = _finance_world()
    vid, _ = issue_voucher(w, 10_000, 2_000_000)
    assert w.p["Tier1"].pledge(vid, w.org("BankA"), 5_000, 1_500_000).ok
    assert w.p["BankA"].accept(vid).ok
    key = c.registry_key(c.Voucher.decode(led.state[c.voucher_key(vid)]).blinded)
    entry = c.RegistryEntry.decode(led.state[key])
    assert entry.financed == 10_000
    led.state[key] = c.RegistryEntry(entry.value, entry.financed - 1).encode()  # lost a unit: a bug
    before = dict(led.state)
    with pytest.raises(InvariantViolation) as info:
        w.p["BankA"].release(vid)
    assert info.value.op == "fin.pledge_release"
    assert info.value.what == "registry total below a financing it counted"
    assert led.state == before


# --- node run ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_kdf")
def test_node_run_exits_non_zero_on_a_broken_invariant(tmp_path, node_stderr):
    from click.testing import CliRunner

    from tierchain import crypto
    from tierchain.api.rpc import RpcError
    from tierchain.cli.main import main

    env = {"TIERCHAIN_PASSPHRASE": "test pass"}
    chain_dir = tmp_path / "node"
    r = CliRunner(env=env).invoke(main, ["init", str(chain_dir), "--chain-id", "5", "--balance", "1000"])
    assert r.exit_code == 0, r.output
    node_keys = crypto.load_key_file(chain_dir / "node.key", env["TIERCHAIN_PASSPHRASE"])
    port = free_port()
    path = os.pathsep.join([str(Path(__file__).parents[2] / "core"), os.environ.get("PYTHONPATH", "")])
    with open(node_stderr, "wb") as err:
        node = subprocess.Popen(
            [sys.executable, __file__, "node", "run", str(chain_dir), "--listen", f"127.0.0.1:{port}"],
            stderr=err,
            env=dict(os.environ, **env, PYTHONPATH=path),
        )
    try:
        client = wait_serving(f"http://127.0.0.1:{port}", node)
        register = accounts.register(5, node_keys.public_key, 0, BOB.public_key)
        reply = client.submit(frame([node_keys.sign_tx(register).encode()]), wait_s=10)
        assert reply["receipts"][0]["code"] == "OK"
        broken = transfer(node_keys, 1, BOB, BREAK_INVARIANT, chain_id=5)
        with pytest.raises(RpcError) as info:
            client.submit(frame([broken]), wait_s=10)
        assert info.value.code == "NODE_FAILED" and "InvariantViolation" in str(info.value)
        assert node.wait(30) == 1  # it stops by itself
    finally:
        stop(node)
    lines = node_stderr.read_text().splitlines()
    logs = [json.loads(line) for line in lines]  # every line is JSON: no stray traceback
    critical = [e for e in logs if e["level"] == "critical"]
    tx_id = decode_batch(frame([broken])).tx_ids()[0].hex()
    assert len(critical) == 1, critical
    assert (critical[0]["op"], critical[0]["tx_id"], critical[0]["height"]) == ("transfer", tx_id, 2)
    assert critical[0]["invariant"] == WHAT and "InvariantViolation" in critical[0]["exc"]
    report = verify_chain(chain_dir)  # the node stopped at its last committed block
    assert report.ok and report.height == 1
