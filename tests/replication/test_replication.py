"""Replication on real CometBFT processes on loopback (docs/replication.md).

* Four validators, a full node and an observer under transfer load end with the same
  header — hence the same state, tx and receipt roots — at every height on every node;
  the full node and the observer serve proofs that verify against their headers; the
  observer refuses submissions.
* A validator killed with SIGKILL under load: the others keep committing; restarted, it
  catches up to the same headers. Two of four killed: the net halts (no fork) and resumes
  when one returns.
* A validator whose app computes a different state (``tally_apps.WRONG_TALLY``) is caught
  by the app hash: its CometBFT stops, its runner exits 1; the others go on.
* A committee vote adds a validator and removes it again (ABCI validator updates).
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
from pathlib import Path

import pytest

from net_world import (
    PASS,
    cli,
    cometbft_or_skip,
    free_base_port,
    kill_node,
    net_start,
    node_env,
    pids,
    show_logs,
    teardown,
    wait_for,
)
from tierchain import proofs
from tierchain.api.rpc import NodeClient, RpcError
from tierchain.apps import accounts
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import orgs
from tierchain.crypto import KeyPair, load_key_file
from tierchain.engine.verify import verify_chain
from tierchain.replication import net as netlib
from tierchain.state.storage import Store
from tierchain.wire.tx import frame

cometbft_or_skip()
pytestmark = pytest.mark.usefixtures("fast_kdf")
CHAIN_ID = 1  # net init's default
TALLY_ENV = {"TIERCHAIN_APPS": "tally_apps:TALLY"}


def _init(d: Path, *args: str) -> netlib.NetSpec:
    r = cli("net", "init", str(d), "--timeout-commit-ms", "50", *args)
    assert r.exit_code == 0, r.output
    return netlib.NetSpec.load(d)


def _api(node: netlib.NetNode) -> NodeClient:
    return NodeClient(f"http://{node.spec.host}:{node.spec.api_port}", timeout_s=60)


def _key(node: netlib.NetNode) -> KeyPair:
    return load_key_file(node.home / "node.key", PASS)


def _height(node: netlib.NetNode) -> int:
    return int(_api(node).head()["height"])


def _heights(nodes) -> list[int]:
    return [_height(n) for n in nodes]


class Sender:
    """One funded account submitting through one node's API, nonces in order."""

    def __init__(self, node: netlib.NetNode, keys: KeyPair, to: bytes) -> None:
        self.node, self.keys, self.to = node, keys, to
        self.nonce = _api(node).nonce(keys.public_key)

    def send(self, n: int, *, wait_s: float = 60) -> dict:
        txs = []
        for _ in range(n):
            t = accounts.transfer(CHAIN_ID, self.keys.public_key, self.nonce, self.to, 1)
            txs.append(self.keys.sign_tx(t).encode())
            self.nonce += 1
        reply = _api(self.node).submit(frame(txs), wait_s=wait_s)
        assert reply["codes"] == ["OK"] * n, reply["codes"]
        assert "receipts" in reply, reply
        assert all(r["code"] == "OK" for r in reply["receipts"]), reply["receipts"]
        return reply


def _headers(home: Path) -> list[bytes]:
    """Every header of a stopped node's database, encoded."""
    store = Store(home / "chain" / "db", readonly=True)
    try:
        with store.read() as r:
            top = r.last("headers")[0]
            return [r.get("headers", h).unsigned_bytes() for h in range(top + 1)]
    finally:
        store.close()


def _same_history(net: netlib.NetSpec, nodes) -> int:
    """All ``nodes`` (stopped) hold the same headers up to the lowest head; that head."""
    histories = [_headers(n.home) for n in nodes]
    low = min(len(h) for h in histories)
    assert low > 1
    for h in range(low):
        assert len({hist[h] for hist in histories}) == 1, f"nodes differ at height {h}"
    for n in nodes:
        report = verify_chain(n.home / "chain")
        assert report.ok, (n.name, report.problems[:3])
    return low - 1


def test_four_validators_replicate_survive_crashes_and_halt_without_forking(tmp_path) -> None:
    d = tmp_path / "net"
    net = _init(
        d, "--validators", "4", "--full-nodes", "1", "--observers", "1", "--base-port", str(free_base_port(6))
    )
    v0, v1, v2, v3, full, observer = net.nodes
    started: list[int] = []
    try:
        net_start(d)
        started = pids(net)
        wait_for("every node to make blocks", lambda: min(_heights(net.nodes)) >= 2)
        bob = _key(full).public_key  # a genesis account (an unknown one: NO_SUCH_ACCOUNT)
        senders = [Sender(v, _key(v), bob) for v in (v0, v1, v2, v3)]

        # Load through every validator's API at once; each batch is committed everywhere.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for reply in pool.map(lambda s: s.send(50), senders):
                assert len(set(reply["heights"])) >= 1
        assert _api(full).state(accounts.balance_key(bob)) is not None

        # The full node and the observer serve proofs that verify against their headers.
        wait_for(  # every sender's: the tx proof below is of the last sender's first transfer
            "the observer to hold the transfers",
            lambda: all(_api(observer).nonce(s.keys.public_key) == 50 for s in senders),
        )
        for node in (full, observer):
            p = _api(node).state_proof(accounts.balance_key(bob))
            assert p["value"] is not None
            header, proof = bytes.fromhex(p["header"]), bytes.fromhex(p["proof"])
            assert proofs.verify_state_encoded(header, proof, accounts.balance_key(bob))
            assert not proofs.verify_state_encoded(header, proof, accounts.balance_key(b"\x01" * 32))
        tx_id = bytes.fromhex(reply["tx_ids"][0])
        p = _api(observer).tx_proof(tx_id)
        assert proofs.verify_tx(
            bytes.fromhex(p["header"]), proofs.decode_tx_proof(bytes.fromhex(p["proof"])), tx_id
        )

        # The observer takes no transaction.
        t = accounts.transfer(CHAIN_ID, senders[0].keys.public_key, senders[0].nonce, bob, 1)
        with pytest.raises(RpcError) as refused:
            _api(observer).submit(frame([senders[0].keys.sign_tx(t).encode()]))
        assert refused.value.code == "READ_ONLY" and refused.value.status == 403

        # SIGKILL a validator under load: the others keep committing.
        kill_node(v1)
        before = _height(v0)
        senders[0].send(20)
        wait_for("blocks without v1", lambda: _height(v0) >= before + 3)
        # It restarts and catches up.
        net_start(d, v1.name)
        wait_for("v1 to catch up", lambda: _height(v1) >= _height(v0) - 1, 60)
        senders[1].nonce = _api(v1).nonce(senders[1].keys.public_key)
        senders[1].send(10)

        # Two of four down: no block can get 2/3 of the votes; the chain halts, it does not fork.
        kill_node(v1)
        kill_node(v2)
        time.sleep(1.0)  # a block being decided when they died may still commit
        halted = _heights([v0, v3, full, observer])
        time.sleep(2.0)
        assert _heights([v0, v3, full, observer]) == halted
        net_start(d, v2.name)
        wait_for("the chain to resume", lambda: _height(v0) >= max(halted) + 3, 60)
        net_start(d, v1.name)
        wait_for("v1 to catch up again", lambda: _height(v1) >= _height(v0) - 1, 60)

        netlib.stop(net, wait_s=60)
        top = _same_history(net, net.nodes)
        assert top > max(halted)  # every node holds blocks made after the halt
    except BaseException:
        show_logs(net)
        raise
    finally:
        teardown(net, started + pids(net))


def test_a_validator_computing_another_state_stops_and_the_rest_go_on(tmp_path, monkeypatch) -> None:
    from tally_apps import add, counter_key

    monkeypatch.setenv(*next(iter(TALLY_ENV.items())))  # for verify_chain, here
    d = tmp_path / "net"
    net = _init(d, "--validators", "4", "--app", "tally", "--base-port", str(free_base_port(4)))
    honest, wrong = net.nodes[:3], net.nodes[3]
    started: list[int] = []
    try:
        net_start(d, *(n.name for n in honest), env=node_env(**TALLY_ENV))
        net_start(d, wrong.name, env=node_env(TIERCHAIN_APPS="tally_apps:WRONG_TALLY"))
        started = pids(net)
        wait_for("blocks", lambda: min(_heights(net.nodes)) >= 2)
        runner = netlib.node_pid(wrong.home)
        keys = _key(honest[0])
        t = keys.sign_tx(add(CHAIN_ID, keys.public_key, 0, 5)).encode()
        reply = _api(honest[0]).submit(frame([t]), wait_s=30)
        assert reply["receipts"][0]["code"] == "OK", reply
        # The wrong node executes the block, answers another app hash, and at the next
        # height CometBFT finds that its state disagrees with the block the others signed.
        wait_for("the wrong node to stop", lambda: not netlib.alive(runner), 60)
        lines = [
            json.loads(x)
            for x in (wrong.home / "logs" / "node.log").read_text().splitlines()
            if x.startswith("{")
        ]
        assert lines[-1]["msg"] == "node stopped" and lines[-1]["exit_code"] == 1
        failure = next(x for x in lines if x["msg"].startswith("CometBFT's consensus failed"))
        assert "wrong Block.Header.AppHash" in failure["error"], failure
        # Three of four is more than 2/3: the chain goes on, with the honest counter.
        h = _height(honest[0])
        wait_for("blocks without the wrong node", lambda: _height(honest[1]) >= h + 3)
        assert _api(honest[2]).state(counter_key(keys.public_key)) == (5).to_bytes(8, "little")
        netlib.stop(net, wait_s=60)
        _same_history(net, honest)
        ahead = _headers(wrong.home)
        assert ahead[: len(ahead) - 1] == _headers(honest[0].home)[: len(ahead) - 1]
    except BaseException:
        show_logs(net)
        raise
    finally:
        teardown(net, started + pids(net))


def _validator_key(node: netlib.NetNode) -> bytes:
    doc = json.loads((node.home / "cometbft" / "config" / "priv_validator_key.json").read_text())
    return base64.b64decode(doc["pub_key"]["value"])


def _validators(node: netlib.NetNode) -> set[bytes]:
    reply = netlib.rpc_get(node.spec, "validators")
    return {base64.b64decode(v["pub_key"]["value"]) for v in reply["validators"]}


def test_a_committee_vote_adds_and_removes_a_validator(tmp_path) -> None:
    d = tmp_path / "net"
    net = _init(d, "--validators", "1", "--full-nodes", "1", "--base-port", str(free_base_port(2)))
    v0, newcomer = net.nodes
    started: list[int] = []
    try:
        net_start(d)
        started = pids(net)
        wait_for("blocks", lambda: min(_heights(net.nodes)) >= 2)
        assert _validators(v0) == {_validator_key(v0)}
        keys, api = _key(v0), _api(v0)

        def propose(power: int) -> None:
            body = orgs.set_validator_body(_validator_key(newcomer), power)
            t = orgs.propose(
                CHAIN_ID, keys.public_key, api.nonce(keys.public_key), fc.Action.SET_VALIDATOR, body
            )
            reply = api.submit(frame([keys.sign_tx(t).encode()]), wait_s=30)
            assert reply["receipts"][0]["code"] == "OK", reply  # threshold 1: the proposal executes

        propose(10)
        wait_for(
            "the newcomer to be a validator",
            lambda: _validators(v0) == {_validator_key(v0), _validator_key(newcomer)},
        )
        # Two validators of power 10: a block needs both; the chain still moves.
        h = _height(v0)
        wait_for("blocks signed by both", lambda: _height(v0) >= h + 3)
        propose(0)
        wait_for("the newcomer to be gone", lambda: _validators(v0) == {_validator_key(v0)})
        h = _height(v0)
        kill_node(newcomer)  # no longer needed for a block
        wait_for("blocks without it", lambda: _height(v0) >= h + 3)
    except BaseException:
        show_logs(net)
        raise
    finally:
        teardown(net, started + pids(net))
