"""The operator CLI on a national-suite chain (issue 19): ``init``/``keygen --crypto sm2-sm3``,
then every other command unchanged: ``node run``, ``tx send``, ``balance``, ``block show``,
``state get``/``prove``, ``verify``, ``finance``, ``cluster``/``shard serve``; a key of the
other suite refused with one line naming both suites; an unknown suite a usage error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conftest import free_port, stop, wait_serving
from tierchain import proofs
from tierchain.apps import accounts
from tierchain.cli.main import main
from tierchain.config import ChainConfig
from tierchain.crypto import SM2_SM3, Sm2KeyPair, load_key_file

SM2, ED = "sm2-sm3", "ed25519-blake3"
PASS = "test pass"
ENV = {"TIERCHAIN_PASSPHRASE": PASS}
CORE = str(Path(__file__).parents[2] / "core")

pytestmark = pytest.mark.usefixtures("fast_kdf")


def run(*args: str, env: dict | None = None) -> Result:
    return CliRunner(env=ENV if env is None else env).invoke(main, list(args), input="")


def ok(*args: str) -> Result:
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r


def mixed(
    r: Result | subprocess.CompletedProcess, key_file: Path, key_suite: str = ED, chain_suite: str = SM2
) -> None:
    """A key of the other suite: one line naming the key file and both suites, exit 1."""
    code = r.returncode if isinstance(r, subprocess.CompletedProcess) else r.exit_code
    assert code == 1, r.stderr
    lines = [line for line in r.stderr.splitlines() if not line.startswith("{")]  # JSON log lines
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(key_file) in lines[0] and f"{key_suite} key" in lines[0], lines
    assert f"the chain runs the {chain_suite} suite" in lines[0], lines


def keygen(path: Path, *crypto: str) -> bytes:
    r = ok("keygen", str(path), *crypto)
    return bytes.fromhex(r.stdout.strip().splitlines()[-1])


def test_init_and_keygen_write_the_suite(tmp_path):
    chain_dir = tmp_path / "node"
    r = ok("init", str(chain_dir), "--chain-id", "5", "--crypto", SM2)
    assert f"({SM2})" in r.stdout
    assert f'crypto = "{SM2}"' in (chain_dir / "chain.toml").read_text()
    assert ChainConfig.load(chain_dir / "chain.toml").crypto == SM2
    node_file = json.loads((chain_dir / "node.key").read_text())
    assert node_file["suite"] == SM2 and node_file["kdf"] == "pbkdf2-hmac-sm3"
    node = load_key_file(chain_dir / "node.key", PASS)
    assert isinstance(node, Sm2KeyPair) and node.public_key.hex() in r.stdout
    # keygen: a key of the chosen suite, printed and sealed in its scheme; the default is Ed25519.
    pk = keygen(tmp_path / "sm2.key", "--crypto", SM2)
    assert json.loads((tmp_path / "sm2.key").read_text())["suite"] == SM2
    assert load_key_file(tmp_path / "sm2.key", PASS).public_key == pk and SM2_SM3.is_strong_public_key(pk)
    keygen(tmp_path / "ed.key")
    assert json.loads((tmp_path / "ed.key").read_text())["suite"] == ED
    # A default init names no suite in chain.toml (older chains keep their identity).
    ok("init", str(tmp_path / "plain"))
    assert "crypto" not in (tmp_path / "plain" / "chain.toml").read_text()
    assert json.loads((tmp_path / "plain" / "node.key").read_text())["suite"] == ED


@pytest.mark.parametrize("command", [["init", "DIR"], ["keygen", "DIR/k.key"]])
def test_an_unknown_suite_is_a_usage_error_listing_the_choices(tmp_path, command):
    argv = [a.replace("DIR", str(tmp_path / "x")) for a in command]
    r = run(*argv, "--crypto", "rsa")
    assert r.exit_code == 2, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "--crypto" in lines[0] and "'rsa'" in lines[0], lines
    assert ED in lines[0] and SM2 in lines[0], lines
    assert not (tmp_path / "x").exists()  # nothing written


def test_a_national_chain_through_every_command(tmp_path, node_stderr):
    chain_dir = tmp_path / "node"
    ok(
        "init",
        str(chain_dir),
        "--chain-id",
        "5",
        "--balance",
        "1000",
        "--block-interval-ms",
        "5",
        "--crypto",
        SM2,
    )
    node_key = chain_dir / "node.key"
    user_pk = keygen(tmp_path / "user.key", "--crypto", SM2)
    keygen(tmp_path / "ed.key")
    # The node refuses to run with a key of the other suite (before it opens anything).
    sm2_node = node_key.read_bytes()
    node_key.write_bytes((tmp_path / "ed.key").read_bytes())
    mixed(run("node", "run", str(chain_dir)), node_key)
    node_key.write_bytes(sm2_node)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, **ENV, PYTHONPATH=CORE)
    argv = [
        sys.executable,
        "-m",
        "tierchain.cli.main",
        "node",
        "run",
        str(chain_dir),
        "--listen",
        f"127.0.0.1:{port}",
    ]
    with open(node_stderr, "wb") as err:
        node = subprocess.Popen(argv, stderr=err, env=env)
    try:
        client = wait_serving(url, node)
        assert client.head()["suite"] == SM2

        def send(key: Path, kind: str, *args: str) -> Result:
            return run("tx", "send", kind, "--node", url, "--key", str(key), "--chain-id", "5", *args)

        r = send(node_key, "register", "--new-key", user_pk.hex())
        assert r.exit_code == 0 and json.loads(r.stdout)["receipts"][0]["code"] == "OK", r.output
        r = send(node_key, "transfer", "--to", user_pk.hex(), "--amount", "250")
        assert r.exit_code == 0 and json.loads(r.stdout)["receipts"][0]["code"] == "OK", r.output
        r = send(
            tmp_path / "user.key",
            "transfer",
            "--to",
            load_key_file(node_key, PASS).public_key.hex(),
            "--amount",
            "50",
        )
        assert r.exit_code == 0 and json.loads(r.stdout)["receipts"][0]["code"] == "OK", r.output
        # An Ed25519 key file against the SM2 node: refused before anything is signed.
        mixed(
            send(tmp_path / "ed.key", "transfer", "--to", user_pk.hex(), "--amount", "1"), tmp_path / "ed.key"
        )
        # finance too: the signer's key must be the node's suite.
        fin = ["finance", "--node", url, "--chain-id", "5"]
        mixed(
            run(*fin, "--key", str(tmp_path / "ed.key"), "anchor", "invoice", str(node_key)),
            tmp_path / "ed.key",
        )
        r = run(
            *fin,
            "--key",
            str(node_key),
            "propose-admit",
            "SupplierCo",
            "--role",
            "supplier",
            "--org-key",
            user_pk.hex(),
        )
        assert r.exit_code == 0 and json.loads(r.stdout)["code"] == "OK", r.output
        tx_id = json.loads(r.stdout)["tx_id"]
        # The id printed is the chain's (SM3): the node proves that transaction's inclusion.
        found = client.tx_proof(bytes.fromhex(tx_id))
        tx_proof = proofs.decode_tx_proof(bytes.fromhex(found["proof"]))
        assert tx_proof.tx_id == bytes.fromhex(tx_id)
        assert proofs.verify_tx(bytes.fromhex(found["header"]), tx_proof, suite=SM2)
        r = run(*fin, "--key", str(tmp_path / "user.key"), "anchor", "invoice", str(chain_dir / "chain.toml"))
        assert r.exit_code == 0 and json.loads(r.stdout)["code"] == "OK", r.output
        r = run("balance", "--node", url, user_pk.hex())
        assert r.exit_code == 0 and r.stdout == "200\n", r.output
    finally:
        code = stop(node)
    assert code == 0

    # Read-only commands on the directory.
    assert ok("balance", str(chain_dir), user_pk.hex()).stdout == "200\n"
    head = json.loads(ok("block", "show", str(chain_dir), "head").stdout)["header"]
    assert head["suite"] == SM2 and head["height"] >= 4
    out = json.loads(ok("state", "get", str(chain_dir), "bal/" + user_pk.hex()).stdout)
    assert out["decoded"] == {"type": "bal", "balance": 200}
    proof = json.loads(ok("state", "prove", str(chain_dir), "bal/" + user_pk.hex()).stdout)
    assert proof["suite"] == SM2 and proof["verified"] is True
    key = accounts.balance_key(user_pk)
    header, encoded = bytes.fromhex(proof["header"]), bytes.fromhex(proof["proof"])
    assert proofs.verify_state_encoded(header, encoded, key, suite=SM2)
    assert not proofs.verify_state_encoded(header, encoded, key, suite=ED)
    r = ok("verify", str(chain_dir))
    assert "OK: " in r.stdout and "transactions verified" in r.stdout, r.stdout


def _wait(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_cluster_commands_on_a_national_cluster(tmp_path):
    from cluster_world import PASS as CLUSTER_PASS
    from cluster_world import _cluster_file, node_key, save_cheap_key

    spec = _cluster_file(tmp_path, ["local", "local"], crypto=SM2)
    assert ChainConfig.load(tmp_path / "chain.toml").crypto == SM2
    cluster_env = {"TIERCHAIN_PASSPHRASE": CLUSTER_PASS}
    # An Ed25519 proposer key (the same seed) for an SM2 cluster: refused by both commands.
    good_key = (tmp_path / "node.key").read_bytes()
    save_cheap_key(tmp_path / "node.key", node_key(ED))
    env = dict(os.environ, **cluster_env, PYTHONPATH=CORE)

    def console(*argv: str) -> subprocess.CompletedProcess:
        """In a process with a deadline: a scheduler that does start would never return."""
        cmd = [sys.executable, "-m", "tierchain.cli.main", *argv]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    for argv in (["cluster", "start", str(spec)], ["shard", "serve", "--cluster", str(spec), "--index", "0"]):
        mixed(console(*argv), tmp_path / "node.key")
    (tmp_path / "node.key").write_bytes(good_key)
    # ... and so is an Ed25519 coordinator key.
    save_cheap_key(tmp_path / "coord.key", node_key(ED))
    spec.write_text(spec.read_text() + 'coordinator_key_file = "coord.key"\n')
    mixed(console("cluster", "start", str(spec)), tmp_path / "coord.key")
    save_cheap_key(tmp_path / "coord.key", node_key(SM2))

    start = subprocess.Popen(
        [sys.executable, "-m", "tierchain.cli.main", "cluster", "start", str(spec)], env=env
    )
    try:

        def running() -> dict | None:
            assert start.poll() is None, "cluster start exited"
            r = run("cluster", "status", str(spec), "--json", "--timeout", "2", env={})
            return json.loads(r.stdout) if r.exit_code == 0 else None

        _wait(lambda: running() is not None, "the cluster did not come up")
        status = running()
        assert status["state"] == "running" and [s["up"] for s in status["shards"]] == [True, True]
        r = run("cluster", "stop", str(spec), "--timeout", "60", env={})
        assert r.exit_code == 0 and "cluster stopped" in r.stdout, r.output
        assert start.wait(30) == 0
    finally:
        if start.poll() is None:
            start.kill()
            start.wait()
    for s in range(2):  # each shard is an SM2 chain that verifies
        r = ok("verify", str(tmp_path / "shards" / f"shard-{s}"))
        assert "OK: 1 blocks" in r.stdout, r.stdout  # its SM2-signed genesis (no txs were sent)
        head = json.loads(ok("block", "show", str(tmp_path / "shards" / f"shard-{s}"), "head").stdout)
        assert head["header"]["suite"] == SM2
