"""Replication in each crypto suite (issue 19): TierChain on CometBFT with ``chain.crypto =
"sm2-sm3"`` admits, executes, hashes, signs and proves in the chain's suite, while
CometBFT's own keys (validators, validator updates) stay Ed25519 (docs/replication.md,
"Crypto suites").

* In process (abci_world's way), in both suites: CheckTx and ProcessProposal verify the
  suite's signatures over the suite's tx ids; the app hash is the header's hash in the
  suite; this node's header signature and the proofs are the suite's; InitChain's genesis
  digest is the suite's hash; a validator update reaches CometBFT only for an Ed25519 key
  (never for an SM2 key an app emits).
* ``net init --crypto sm2-sm3``: SM2 node keys (cheaply sealed by ``key_kdf``), chain.toml's
  suite, the load workload's SM2 senders recorded in net.toml, CometBFT's Ed25519 validators.
* A 2-validator sm2-sm3 network of real CometBFT processes on loopback commits SM2-signed
  transfers, serves ``/v1/head`` with its suite and state and tx proofs the light client
  accepts in the suite, and refuses Ed25519-signed transactions (``BAD_SIGNATURE``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import tomllib
from pathlib import Path

import blake3
import nacl.pwhash
import pytest

from abci_world import (
    ACCEPT,
    REJECT,
    VAL1,
    VAL2,
    check,
    finalize_request,
    init_request,
    process_request,
    run_block,
)
from net_world import (
    PASS,
    cli,
    cometbft_or_skip,
    free_base_port,
    net_start,
    pids,
    show_logs,
    teardown,
    wait_for,
)
from suite_world import World, suites_fixture, world_of
from tierchain import proofs
from tierchain.api.rpc import NodeClient
from tierchain.apps import accounts
from tierchain.config import ChainConfig, ConfigError
from tierchain.crypto import (
    ED25519_BLAKE3,
    SM2_SM3,
    CryptoSuite,
    load_key_file,
    save_key_file,
)
from tierchain.crypto.keys import is_strong_public_key as is_strong_ed25519_key
from tierchain.engine import apps
from tierchain.engine.apps import VALIDATOR_UPDATE_TOPIC
from tierchain.engine.execute import TxContext
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.replication import abci_pb
from tierchain.replication import net as netlib
from tierchain.replication.app import GENESIS_KEY, GenesisMismatch, TierChainApp, genesis_digest
from tierchain.replication.ledger import ReplicaChain
from tierchain.wire import tx
from tierchain.wire.tx import frame

CHAIN_ID = 23


# The CometBFT validators are abci_world's VAL1/VAL2: Ed25519 keys in every suite.
world = suites_fixture(CHAIN_ID)


def _world(name: str) -> World:
    return world_of(name, CHAIN_ID)


def _open(path: Path, world: World, keys=None) -> TierChainApp:
    return TierChainApp(ReplicaChain(path, world.config(), keys or world.node))


# --- the ABCI app, in process ------------------------------------------------------------


def test_the_app_admits_executes_and_proves_in_the_chains_suite(world, tmp_path) -> None:
    suite, other = world.suite, world.other
    config = world.config()
    app = _open(tmp_path / "a", world)
    try:
        # InitChain: the genesis digest is the suite's hash (BLAKE3's is refused on sm2-sm3),
        # the genesis header's hash in the suite is the first app hash.
        blake3_digest = blake3.blake3(config.genesis_bytes()).hexdigest()
        if suite.name == "sm2-sm3":
            assert genesis_digest(config) != blake3_digest
            with pytest.raises(GenesisMismatch, match=GENESIS_KEY):
                app.init_chain(init_request(config, digest=blake3_digest))
        else:
            assert genesis_digest(config) == blake3_digest  # the networks made before suites
        res = app.init_chain(init_request(config))
        genesis = app.chain.header(0)
        assert res.app_hash == genesis.hash(suite) != genesis.hash(other)

        # CheckTx: the suite's signature over the suite's tx id, nothing else.
        good = world.transfer(world.alice, 0, world.bob.public_key, 300)
        crossed_world = _world(other.name)  # the same seeds in the other suite
        crossed = crossed_world.transfer(crossed_world.alice, 0, world.bob.public_key, 300)
        body = accounts.transfer(CHAIN_ID, world.alice.public_key, 0, world.bob.public_key, 300).body()
        other_digest = body + world.alice.sign(other.tx_id(body))
        flipped = good[:-1] + bytes([good[-1] ^ 1])
        assert check(app, [crossed, other_digest, flipped, good]) == [
            Reject.BAD_SIGNATURE,
            Reject.BAD_SIGNATURE,
            Reject.BAD_SIGNATURE,
            Reject.OK,
        ]
        # ProcessProposal verifies what CheckTx did not see (or refused): such a block is rejected.
        for bad in (crossed, other_digest):
            assert app.process_proposal(process_request([good, bad], 1)).status == REJECT
        assert app.process_proposal(process_request([good], 1)).status == ACCEPT

        # FinalizeBlock: the app hash is the header's hash in the suite; the header's proposer
        # is CometBFT's (Ed25519) validator key, its signature this node's, in the suite.
        res = app.finalize_block(finalize_request([good], 1, proposer=VAL2))
        app.commit(abci_pb.RequestCommit())
        head = app.chain.head()
        assert [r.code for r in res.tx_results] == [Reject.OK]
        assert res.app_hash == head.hash(suite) != head.hash(other)
        assert app.info(abci_pb.RequestInfo()).last_block_app_hash == res.app_hash
        assert head.proposer == VAL2.public_key
        assert suite.verify(world.node.public_key, head.hash(suite), head.signature)
        assert not other.verify(world.node.public_key, head.hash(other), head.signature)
        assert app.query(abci_pb.RequestQuery(path="/head")).value == head.encode()

        # Proofs the light client accepts in the suite, and only in it.
        key = accounts.balance_key(world.bob.public_key)
        proof = app.chain.prove_state(key)
        assert proof.value is not None
        assert proofs.verify_state(head.encode(), proof, key, suite=suite.name)
        assert not proofs.verify_state(head.encode(), proof, key, suite=other.name)
        tx_id = suite.tx_id(good[:-64])
        tx_proof = app.chain.prove_tx(tx_id)
        assert proofs.verify_tx(head.encode(), tx_proof, tx_id, suite=suite.name)
        assert not proofs.verify_tx(head.encode(), tx_proof, tx_id, suite=other.name)

        # Another node (another key of the suite) makes the same app hashes from the same blocks.
        twin = _open(tmp_path / "b", world, world.suite.keys_from_seed(b"twin".ljust(32, b"\0")))
        try:
            twin.init_chain(init_request(config))
            assert run_block(twin, [good], proposer=VAL2).app_hash == res.app_hash
        finally:
            twin.close()
    finally:
        path = app.chain.path
        app.close()
    report = verify_chain(path)
    assert report.ok, report.problems


def _not_ed25519(suite: CryptoSuite):
    """A key pair of ``suite`` whose public key is no valid Ed25519 key."""
    for i in range(64):
        keys = suite.keys_from_seed(b"not ed25519 %d" % i + bytes(32 - len(b"not ed25519 %d" % i)))
        if not is_strong_ed25519_key(keys.public_key):
            return keys
    raise AssertionError("no such key in 64 tries")


# An app whose one op emits its payload as a validator update (``VALIDATOR_UPDATE_TOPIC``:
# key + power u64), checking nothing: what the node hands CometBFT is the node's to check.
OP_EMIT = 5300


def _emit(ctx: TxContext) -> None:
    ctx.put(b"vup/" + ctx.sender, ctx.payload)
    ctx.emit(VALIDATOR_UPDATE_TOPIC, ctx.payload)


EMITTER = apps.App(name="emitter", ops=(apps.Op(OP_EMIT, "emitter.emit", _emit),), op_codes=range(5300, 5301))


def test_validator_updates_on_a_national_chain_are_cometbfts_ed25519_keys(tmp_path) -> None:
    world = _world("sm2-sm3")
    config = dataclasses.replace(world.config(), apps=(*world.config().apps, EMITTER.name))
    app = TierChainApp(ReplicaChain(tmp_path / "a", config, world.node, apps=(EMITTER,)))
    nonce = iter(range(100))

    def emit(key: bytes, power: int) -> bytes:
        t = tx.Tx(
            chain_id=CHAIN_ID,
            shard_id=0,
            op=OP_EMIT,
            sender=world.alice.public_key,
            nonce=next(nonce),
            expires_at=0,
            reads=(),
            writes=(b"vup/" + world.alice.public_key,),
            payload=key + power.to_bytes(8, "little"),
        )
        return world.alice.sign_tx(t).encode()  # signed in the chain's suite (SM2)

    try:
        app.init_chain(init_request(config))
        # A CometBFT validator key (Ed25519) becomes a validator update, on an SM2 chain too.
        newcomer = ED25519_BLAKE3.keys_from_seed(b"validator-3".ljust(32, b"\0")).public_key
        res = run_block(app, [emit(newcomer, 10)])
        assert [r.code for r in res.tx_results] == [Reject.OK]
        assert [(bytes(u.pub_key.ed25519), u.power) for u in res.validator_updates] == [(newcomer, 10)]
        assert app.validators == {VAL1.public_key: 10, VAL2.public_key: 10, newcomer: 10}

        # A TierChain key of this chain (SM2) that is no Ed25519 key never reaches CometBFT:
        # left out of the block's updates, the others kept.
        sm2 = _not_ed25519(world.suite).public_key
        res = run_block(app, [emit(sm2, 10), emit(newcomer, 3)])
        assert [r.code for r in res.tx_results] == [Reject.OK, Reject.OK]
        assert [(bytes(u.pub_key.ed25519), u.power) for u in res.validator_updates] == [(newcomer, 3)]
        res = run_block(app, [emit(sm2, 0)])
        assert list(res.validator_updates) == []
        assert app.validators == {VAL1.public_key: 10, VAL2.public_key: 10, newcomer: 3}
        assert sm2 not in app._addresses.values()
    finally:
        app.close()


# --- net init --crypto -----------------------------------------------------------------------


@pytest.mark.usefixtures("fast_kdf")
def test_net_init_crypto_makes_a_national_suite_network(tmp_path) -> None:
    from tierchain.tools import loadgen

    cometbft_or_skip()
    d = tmp_path / "net"
    r = cli(
        "net", "init", str(d), "--validators", "2", "--full-nodes", "1", "--crypto", "sm2-sm3",
        "--base-port", "30400", "--load-accounts", "40", "--load-senders", "4", "--load-seed", "5",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "(sm2-sm3)" in r.stdout
    net = netlib.NetSpec.load(d)
    config = ChainConfig.load(net.nodes[0].home / "chain.toml")
    assert config.crypto == "sm2-sm3"

    # Engine keys: SM2, in genesis with their roles; sealed in their suite's scheme.
    node_keys = [load_key_file(n.home / "node.key", PASS) for n in net.nodes]
    assert {k.suite_name for k in node_keys} == {"sm2-sm3"}
    assert all(SM2_SM3.is_strong_public_key(k.public_key) for k in node_keys)
    assert [a.public_key for a in config.genesis_accounts[:3]] == [k.public_key for k in node_keys]
    sealed = json.loads((net.nodes[0].home / "node.key").read_text())
    assert sealed["suite"] == "sm2-sm3" and sealed["kdf"] == "pbkdf2-hmac-sm3"

    # The load workload: SM2 senders funded, the suite recorded for `load --net`.
    senders = [loadgen.sender_key(5, i, "sm2-sm3").public_key for i in range(4)]
    assert [a.public_key for a in config.genesis_accounts[3:]] == senders
    assert tomllib.loads((d / "net.toml").read_text())["load"] == {
        "accounts": 40,
        "senders": 4,
        "seed": 5,
        "crypto": "sm2-sm3",
    }
    assert net.workload == netlib.NetLoad(40, 4, 5, "sm2-sm3")
    work = loadgen.transfer_workload(40, 8, 1, senders=4, seed=5, crypto="sm2-sm3", processes=1)
    loadgen.check_net_genesis(config, work, "chain.toml")

    # CometBFT's keys: Ed25519, none of them a TierChain key; genesis.json's digest is the suite's.
    genesis = json.loads((net.nodes[0].home / "cometbft/config/genesis.json").read_text())
    assert genesis["app_state"] == {GENESIS_KEY: genesis_digest(config)}
    assert genesis_digest(config) != blake3.blake3(config.genesis_bytes()).hexdigest()
    assert [v["pub_key"]["type"] for v in genesis["validators"]] == ["tendermint/PubKeyEd25519"] * 2
    comet_keys = {base64.b64decode(v["pub_key"]["value"]) for v in genesis["validators"]}
    assert not comet_keys & {k.public_key for k in node_keys}

    # A home whose node.key is of the other suite is refused by name.
    save_key_file(net.nodes[2].home / "node.key", ED25519_BLAKE3.generate_keys(), PASS)
    with pytest.raises(ConfigError, match=r"node\.key: a ed25519-blake3 key.*sm2-sm3 suite"):
        netlib.open_node_app(net.nodes[2].home, PASS)

    # A default-suite network's net.toml says nothing of suites (as before them).
    plain = tmp_path / "plain"
    r = cli("net", "init", str(plain), "--validators", "1", "--base-port", "30500", "--load-accounts", "10")
    assert r.exit_code == 0, r.output
    assert "crypto" not in tomllib.loads((plain / "net.toml").read_text())["load"]
    assert netlib.NetSpec.load(plain).workload.crypto == "ed25519-blake3"
    assert ChainConfig.load(plain / "validator0" / "chain.toml").crypto == "ed25519-blake3"


def test_init_key_kdf_seals_sm2_keys_cheaply_and_refuses_a_load_of_another_suite(tmp_path) -> None:
    cometbft_or_skip()
    cheap = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
    for name, kdf, iterations in [
        ("two", cheap, netlib.throwaway_kdf_iterations),
        ("three", (*cheap, 2500), 2500),
    ]:
        net = netlib.init(tmp_path / name, validators=1, passphrase=PASS, key_kdf=kdf, crypto="sm2-sm3")
        sealed = json.loads((net.nodes[0].home / "node.key").read_text())
        assert (sealed["suite"], sealed["iterations"]) == ("sm2-sm3", iterations)
        assert load_key_file(net.nodes[0].home / "node.key", PASS).suite_name == "sm2-sm3"
    # The Ed25519 suite's key files take the Argon2id part (bench/replication.py's MIN_KDF).
    net = netlib.init(tmp_path / "ed", validators=1, passphrase=PASS, key_kdf=cheap)
    sealed = json.loads((net.nodes[0].home / "node.key").read_text())
    assert (sealed["suite"], sealed["opslimit"], sealed["memlimit"]) == ("ed25519-blake3", *cheap)

    with pytest.raises(ConfigError, match="ed25519-blake3 keys; this network runs the sm2-sm3"):
        netlib.init(
            tmp_path / "mixed",
            validators=1,
            passphrase=PASS,
            key_kdf=cheap,
            crypto="sm2-sm3",
            load=netlib.NetLoad(10, 2),
        )
    assert not (tmp_path / "mixed").exists()
    with pytest.raises(ConfigError, match="unknown crypto suite"):
        netlib.init(tmp_path / "nope", validators=1, passphrase=PASS, crypto="rot13")


# --- a network of real CometBFT processes --------------------------------------------------


def _api(node: netlib.NetNode) -> NodeClient:
    return NodeClient(f"http://{node.spec.host}:{node.spec.api_port}", timeout_s=30)


def _comet_validator_key(node: netlib.NetNode) -> bytes:
    doc = json.loads((node.home / "cometbft/config/priv_validator_key.json").read_text())
    assert doc["pub_key"]["type"] == "tendermint/PubKeyEd25519"
    return base64.b64decode(doc["pub_key"]["value"])


@pytest.mark.usefixtures("fast_kdf")
def test_a_national_suite_network_replicates_sm2_transactions(tmp_path) -> None:
    from tierchain.tools import loadgen

    cometbft_or_skip()
    d = tmp_path / "net"
    r = cli(
        "net", "init", str(d), "--validators", "2", "--crypto", "sm2-sm3", "--timeout-commit-ms", "50",
        "--base-port", str(free_base_port(2)), "--load-accounts", "20", "--load-senders", "2",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    net = netlib.NetSpec.load(d)
    v0, v1 = net.nodes
    keys = {n.name: load_key_file(n.home / "node.key", PASS) for n in net.nodes}
    comet = {_comet_validator_key(n) for n in net.nodes}
    started: list[int] = []
    try:
        net_start(d, wait_s=60)
        started = pids(net)
        wait_for("blocks", lambda: min(int(_api(n).head()["height"]) for n in net.nodes) >= 1)

        # SM2-signed transfers, through each validator's API: node keys and a load sender.
        to = keys["validator1"].public_key
        sender = loadgen.sender_key(7, 0, "sm2-sm3")
        batches = {
            v0: [keys["validator0"].sign_tx(accounts.transfer(1, keys["validator0"].public_key, n, to, 5))
                 for n in range(3)],
            v1: [sender.sign_tx(accounts.transfer(1, sender.public_key, 0, to, 7))],
        }  # fmt: skip
        replies = {}
        for node, txs in batches.items():
            reply = _api(node).submit(frame([t.encode() for t in txs]), wait_s=30)
            assert reply["codes"] == ["OK"] * len(txs), reply
            assert [rc["code"] for rc in reply["receipts"]] == ["OK"] * len(txs), reply
            # The tx ids the node answers are SM3's.
            assert reply["tx_ids"] == [SM2_SM3.tx_id(t.body()).hex() for t in txs]
            replies[node] = reply

        # Ed25519-signed transactions are refused, by the node API and by CometBFT's CheckTx.
        ed = ED25519_BLAKE3.keys_from_seed(keys["validator0"].seed)  # the same secret, the other suite
        body = accounts.transfer(1, sender.public_key, 1, to, 1).body()
        ed_txs = [
            ed.sign_tx(accounts.transfer(1, ed.public_key, 0, to, 1)).encode(),
            # A funded SM2 account's transfer, signed with Ed25519 over its SM3 tx id.
            body + ed.sign(SM2_SM3.tx_id(body)),
        ]
        reply = _api(v1).submit(frame(ed_txs), wait_s=5)
        assert reply["codes"] == ["BAD_SIGNATURE"] * 2, reply
        checked = netlib.rpc_get(v0.spec, f"broadcast_tx_sync?tx=0x{ed_txs[0].hex()}", timeout_s=10)
        assert checked is not None and checked["code"] == Reject.BAD_SIGNATURE, checked
        assert checked["log"] == "BAD_SIGNATURE"

        # /v1/head says the suite; both nodes hold the transfers.
        for node in net.nodes:
            head = _api(node).head()
            assert head["suite"] == "sm2-sm3"
        assert _api(v1).nonce(keys["validator0"].public_key) == 3
        wait_for("validator1 to hold the transfers", lambda: _api(v1).nonce(sender.public_key) == 1)
        balance = accounts.balance_key(to)

        # A state proof from each node: it verifies in sm2-sm3 (and not in the other suite);
        # its header's SM3 hash is the app hash CometBFT's next block carries (what 2/3 signed).
        for node in net.nodes:
            p = _api(node).state_proof(balance)
            header, proof = bytes.fromhex(p["header"]), bytes.fromhex(p["proof"])
            assert proofs.verify_state_encoded(header, proof, balance, suite="sm2-sm3")
            assert proofs.verify_state(
                header, proofs.decode_state_proof(proof, suite="sm2-sm3"), balance, suite="sm2-sm3"
            )
            assert not proofs.verify_state_encoded(header, proof, balance, suite="ed25519-blake3")
            light = proofs.decode_header(header, suite="sm2-sm3")
            assert light.proposer in comet  # CometBFT's Ed25519 validator key, not a TierChain key
            assert SM2_SM3.verify(keys[node.name].public_key, light.hash, light.signature)
            wait_for(
                "the next CometBFT block",
                lambda h=light.height, node=node: netlib.rpc_get(node.spec, f"block?height={h + 1}"),
                30,
            )
            comet_header = netlib.rpc_get(node.spec, f"block?height={light.height + 1}")["block"]["header"]
            assert bytes.fromhex(comet_header["app_hash"]) == light.hash
        # A tx proof, in the suite.
        tx_id = bytes.fromhex(replies[v1]["tx_ids"][0])
        p = _api(v0).tx_proof(tx_id)
        tx_proof = proofs.decode_tx_proof(bytes.fromhex(p["proof"]))
        assert proofs.verify_tx(bytes.fromhex(p["header"]), tx_proof, tx_id, suite="sm2-sm3")

        netlib.stop(net, wait_s=30)
        # Every header this node holds is signed by its SM2 key and its blocks verify.
        for node in net.nodes:
            report = verify_chain(node.home / "chain")
            assert report.ok and report.height >= 2, (node.name, report.problems[:3])
    except BaseException:
        show_logs(net)
        raise
    finally:
        teardown(net, started + pids(net))
