"""The operator CLI end to end: init, node run (SIGTERM), tx send, block show, state get, verify."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner

from tierchain import crypto, ops
from tierchain.cli import main
from tierchain.config import ChainConfig
from tierchain.rpc import NodeClient, RpcError

ENV = {"TIERCHAIN_PASSPHRASE": "test pass"}


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch):
    # Argon2id at its moderate cost takes seconds; the format is the same at minimum cost.
    monkeypatch.setattr(nacl.pwhash.argon2id, "OPSLIMIT_MODERATE", nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(nacl.pwhash.argon2id, "MEMLIMIT_MODERATE", nacl.pwhash.argon2id.MEMLIMIT_MIN)
    monkeypatch.setattr(
        crypto.save_key_file,
        "__kwdefaults__",
        {"opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN, "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN},
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_end_to_end(tmp_path):
    runner = CliRunner(env=ENV)
    chain_dir = tmp_path / "node"
    r = runner.invoke(main, ["init", str(chain_dir), "--chain-id", "5", "--balance", "1000"])
    assert r.exit_code == 0, r.output
    assert runner.invoke(main, ["init", str(chain_dir)]).exit_code != 0  # never overwrites a chain
    user_key = tmp_path / "user.key"
    r = runner.invoke(main, ["keygen", str(user_key)])
    assert r.exit_code == 0, r.output
    user_pk = bytes.fromhex(r.output.strip().splitlines()[-1])

    port = _free_port()
    env = dict(os.environ, **ENV, PYTHONPATH=str(Path(__file__).parents[1] / "core"))
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tierchain.cli",
            "node",
            "run",
            str(chain_dir),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        client = NodeClient(f"http://127.0.0.1:{port}", timeout_s=10)
        for _ in range(100):
            try:
                client.head()
                break
            except RpcError:
                time.sleep(0.1)
        node_key = str(chain_dir / "node.key")
        url = f"http://127.0.0.1:{port}"

        def send(kind: str, *args: str):
            return runner.invoke(
                main, ["tx", "send", kind, "--node", url, "--key", node_key, "--chain-id", "5", *args]
            )

        r = send("register", "--new-key", user_pk.hex())
        assert r.exit_code == 0, r.output
        r = send("transfer", "--to", user_pk.hex(), "--amount", "250")
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["receipts"][0]["code"] == "OK"
        r = send("transfer", "--to", user_pk.hex(), "--amount", "999999")
        assert r.exit_code == 1 and "INSUFFICIENT_FUNDS" in r.output
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0
    logs = [json.loads(line) for line in node.stderr.read().decode().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "node stopped" for entry in logs)

    r = runner.invoke(main, ["state", "get", str(chain_dir), "0x" + ops.balance_key(user_pk).hex()])
    assert r.exit_code == 0 and int.from_bytes(bytes.fromhex(r.output.strip()), "little") == 250
    r = runner.invoke(main, ["block", "show", str(chain_dir), "head"])
    assert r.exit_code == 0 and json.loads(r.output)["header"]["height"] >= 2
    r = runner.invoke(main, ["verify", str(chain_dir)])
    assert r.exit_code == 0 and "OK: " in r.output, r.output
    config = ChainConfig.load(chain_dir / "chain.toml")
    assert config.chain_id == 5 and config.sync == "full"


def test_wrong_passphrase_is_reported(tmp_path):
    runner = CliRunner(env=ENV)
    assert runner.invoke(main, ["keygen", str(tmp_path / "k.key")]).exit_code == 0
    r = CliRunner(env={"TIERCHAIN_PASSPHRASE": "nope"}).invoke(
        main, ["tx", "send", "transfer", "--key", str(tmp_path / "k.key"), "--to", "00" * 32, "--amount", "1"]
    )
    assert r.exit_code != 0 and isinstance(r.exception, crypto.WrongPassphrase)
