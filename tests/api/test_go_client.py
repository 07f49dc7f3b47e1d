"""The Go client (clients/go, docs/api.md "A Go client") against a node's gRPC API.

The client's stubs are generated from the committed node.proto by clients/go/build.sh, which
this module runs first (with the Go unit tests: wire vectors, proof vectors, every flipped
bit of a proof refused). Then the demo program, a subprocess, builds and signs a transfer in
Go, submits it, awaits the receipt and verifies the recipient's balance proof; the Python
side checks the same chain: the same tx id and wire bytes as tierchain.wire.tx, the balance
the proof showed, and that a tampered proof makes the Go verifier fail. The build needs a Go
toolchain; without one these tests fail (they never skip: CI has Go).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from conftest import ALICE, BOB, CHAIN_ID, NODE, transfer
from tierchain.api import auth
from tierchain.api.grpc_server import GrpcServer
from tierchain.api.service import NodeService
from tierchain.apps import accounts
from tierchain.wire import tx as wire

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "go"
DEMO = CLIENT / ".bin" / "tierchain-demo"
build_timeout_s = 300  # a cold build (modules through the proxy) takes about a minute
run_timeout_s = 60


@pytest.fixture(scope="module")
def demo() -> Path:
    """clients/go/build.sh --test, once per module (warm: seconds; Go caches the build)."""
    try:
        done = subprocess.run(
            ["bash", str(CLIENT / "build.sh"), "--test"],
            capture_output=True,
            text=True,
            timeout=build_timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"clients/go/build.sh took more than {build_timeout_s} s: {exc.stderr!r}")
    assert done.returncode == 0, f"clients/go/build.sh failed:\n{done.stdout}\n{done.stderr}"
    assert DEMO.exists()
    return DEMO


def serve(chain, **auth_kw) -> GrpcServer:
    return GrpcServer(NodeService(chain, auth.Authenticator(chain, **auth_kw)), "127.0.0.1:0").start()


@pytest.fixture
def node(chain):
    srv = serve(chain)
    yield chain, f"127.0.0.1:{srv.port}"
    srv.stop()


def run_demo(demo: Path, target: str, *extra: str, amount: int = 5, chain_id: int = CHAIN_ID):
    """The demo's exit code, its JSON summary (its last stdout line; None if none) and stderr."""
    args = [
        str(demo),
        f"--target={target}",
        f"--seed-hex={ALICE.seed.hex()}",
        f"--to={BOB.public_key.hex()}",
        f"--amount={amount}",
        f"--chain-id={chain_id}",
        "--wait-s=10",
        "--timeout=45s",
        *extra,
    ]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=run_timeout_s, stdin=subprocess.DEVNULL
    )
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else None
    return done.returncode, summary, done.stderr


def balance(chain, who) -> int:
    return int.from_bytes(chain.state_get(accounts.balance_key(who.public_key)), "little")


def test_go_demo_transfers_and_verifies_the_balance_proof(demo, node):
    chain, target = node
    for nonce, amount, total in ((0, 5, 5), (1, 7, 12)):
        rc, s, err = run_demo(demo, target, f"--trusted-proposer={NODE.public_key.hex()}", amount=amount)
        assert rc == 0, err
        assert (s["admission"], s["code"], s["code_number"]) == ("OK", "OK", 0), s
        assert s["verified"] and s["header_signed"] and s["found"] and not s["tampered"], s
        assert s["nonce"] == nonce and s["chain_id"] == CHAIN_ID and s["suite"] == "ed25519-blake3"
        # the balance Go proved is the one the chain holds
        assert s["balance"] == balance(chain, BOB) == total
        assert s["proof_key"] == accounts.balance_key(BOB.public_key).hex()
        assert s["proposer"] == NODE.public_key.hex() and s["proof_height"] >= s["height"] >= 1
        # Go's transaction is byte for byte Python's (Ed25519 is deterministic), so is its id
        py_tx = transfer(ALICE, nonce, BOB, amount)
        assert s["tx"] == py_tx.hex()
        expected = accounts.transfer(CHAIN_ID, ALICE.public_key, nonce, BOB.public_key, amount)
        decoded = wire.decode(bytes.fromhex(s["tx"]))
        assert s["tx_id"] == decoded.tx_id().hex() == expected.tx_id().hex()
        assert decoded == dataclasses.replace(expected, signature=ALICE.sign(expected.tx_id()))
        # and the chain committed it where the receipt said, executed
        receipts = chain.receipts(s["height"])
        assert [r.code for r in receipts if r.tx_id.hex() == s["tx_id"]] == [0]
    assert chain.nonce(ALICE.public_key) == 2


def test_go_verifier_rejects_a_tampered_proof(demo, node):
    chain, target = node
    rc, s, err = run_demo(demo, target, "--tamper")
    assert rc == 1, (s, err)
    assert "does not verify" in err and "state_root" in err, err
    assert s["tampered"] and not s["verified"] and "does not verify" in s["error"]
    # the transfer itself went through: only the (altered) proof was refused
    assert s["code"] == "OK" and balance(chain, BOB) == 5
    # and a header that is not the trusted proposer's is refused too
    rc, s, err = run_demo(demo, target, f"--trusted-proposer={ALICE.public_key.hex()}")
    assert rc == 1 and "not signed by" in err and not s["verified"], err


def test_go_demo_refuses_a_wrong_chain_and_bad_arguments(demo, node):
    chain, target = node
    rc, s, err = run_demo(demo, target, chain_id=CHAIN_ID + 1)
    assert rc == 1 and s is None and f"serves chain {CHAIN_ID}" in err, err
    rc, s, err = run_demo(demo, target, amount=0)
    assert rc == 2 and "--amount" in err
    assert chain.nonce(ALICE.public_key) == 0  # nothing was submitted


def test_go_demo_signs_its_calls(demo, chain):
    srv = serve(chain, required=True)
    target = f"127.0.0.1:{srv.port}"
    try:
        rc, s, err = run_demo(demo, target)
        assert rc == 1 and "Unauthenticated" in err, err  # the node serves signed calls only
        rc, s, err = run_demo(demo, target, "--sign-calls")  # ALICE is a registered account
        assert rc == 0 and s["verified"] and s["code"] == "OK", err
        assert balance(chain, BOB) == 5
    finally:
        srv.stop()
