"""One writer per chain directory, with real processes; read-only tools beside a running node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster_world import CLI, _cluster_file, _serve
from cluster_world import ENV as SHARD_ENV
from conftest import NODE, free_port, small_config, stop, wait_serving
from tierchain.apps import accounts
from tierchain.config import ChainConfig
from tierchain.crypto import KeyPair, load_key_file
from tierchain.engine.chain import Chain
from tierchain.state.storage import Store
from tierchain.state.writer_lock import LOCK_NAME, DatabaseLocked, read_holder
from tierchain.wire import tx as txcodec

ROOT = Path(__file__).resolve().parents[2]
PASS = "writer lock test"
RECIPIENT = KeyPair.from_seed(b"r" * 32)
ENV = dict(os.environ, TIERCHAIN_PASSPHRASE=PASS, PYTHONPATH=str(ROOT / "core"))


def _cli(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env or ENV, capture_output=True, text=True, timeout=timeout)


def _refused_by(done: subprocess.CompletedProcess, pid: int) -> None:
    """A writer refused in one line that names the holder, never a traceback."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "locked by pid" in lines[0] and str(pid) in lines[0], lines[0]


# --- in one process --------------------------------------------------------------------------


def test_a_second_writable_store_is_refused_until_the_first_closes(tmp_path):
    first = Store(tmp_path / "db", sync=False)
    with pytest.raises(DatabaseLocked) as refused:
        Store(tmp_path / "db", sync=False)
    assert refused.value.holder["pid"] == os.getpid()
    assert f"pid {os.getpid()}" in str(refused.value)
    with Store(tmp_path / "db", readonly=True) as reader, reader.read() as r:  # readers take no lock
        assert r.entries("headers") == 0
    first.close()
    assert read_holder(tmp_path / "db") is None  # the holder clears its description
    Store(tmp_path / "db", sync=False).close()


def test_a_second_embedded_chain_is_refused_and_the_first_keeps_committing(chain_dir):
    config = small_config()
    with Chain(chain_dir, config, NODE) as first:
        with pytest.raises(DatabaseLocked):
            Chain(chain_dir, config, NODE)
        tx = accounts.register(
            config.chain_id,
            NODE.public_key,
            first.nonce(NODE.public_key),
            KeyPair.from_seed(b"d" * 32).public_key,
            (),
        )
        receipts = first.submit([NODE.sign_tx(tx).encode()]).wait(10)
        assert receipts[0].code == 0
    with Chain(chain_dir, config, NODE) as again:  # released on close
        assert again.height >= 1


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    """kill -9 of the holder: the kernel drops the flock; the next writer opens (the stale pid is ignored)."""
    code = (
        "import sys, time; from tierchain.state.storage import Store\n"
        "s = Store(sys.argv[1], sync=False); print('held', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "db")], env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseLocked) as refused:
            Store(tmp_path / "db", sync=False)
        assert refused.value.holder["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait(10)
    assert (tmp_path / "db" / LOCK_NAME).exists()
    Store(tmp_path / "db", sync=False).close()


# --- real processes: node, embedded chain, shard, read-only tools --------------------------------


@pytest.fixture
def running_node(tmp_path, fast_kdf):
    """A `tierchain node run` process on a fresh chain, with a few committed blocks."""
    from click.testing import CliRunner

    from tierchain.cli.main import main

    directory = tmp_path / "node"
    r = CliRunner(env={"TIERCHAIN_PASSPHRASE": PASS}).invoke(main, ["init", str(directory)])
    assert r.exit_code == 0, r.output
    port = free_port()
    node = subprocess.Popen(
        [*CLI, "node", "run", str(directory), "--listen", f"127.0.0.1:{port}"],
        env=ENV,
        stderr=subprocess.DEVNULL,
    )
    try:  # stop the node whatever happens below, a failed set-up included
        client = wait_serving(f"http://127.0.0.1:{port}", node)
        config = ChainConfig.load(directory / "chain.toml")
        keys = load_key_file(directory / config.key_file, PASS)
        for seed in (b"r" * 32, b"s" * 32):  # register a recipient, then pay it: blocks to read
            pk = RECIPIENT.public_key if seed == b"r" * 32 else KeyPair.from_seed(seed).public_key
            tx = accounts.register(config.chain_id, keys.public_key, client.nonce(keys.public_key), pk, ())
            assert (
                client.submit(txcodec.frame([keys.sign_tx(tx).encode()]), wait_s=10)["receipts"][0]["code"]
                == "OK"
            )
        tx = accounts.transfer(
            config.chain_id, keys.public_key, client.nonce(keys.public_key), RECIPIENT.public_key, 10
        )
        assert (
            client.submit(txcodec.frame([keys.sign_tx(tx).encode()]), wait_s=10)["receipts"][0]["code"]
            == "OK"
        )
        yield directory, node, client, keys
    finally:
        stop(node)


def test_writers_beside_a_running_node_are_refused(running_node):
    directory, node, client, _ = running_node
    _refused_by(_cli("node", "run", str(directory), "--listen", f"127.0.0.1:{free_port()}"), node.pid)
    config = ChainConfig.load(directory / "chain.toml")
    keys = load_key_file(directory / config.key_file, PASS)
    with pytest.raises(DatabaseLocked) as refused:
        Chain(directory, config, keys)  # the README's embedding snippet, beside the node
    assert refused.value.holder["pid"] == node.pid
    assert node.poll() is None and client.head()["height"] >= 3


def test_read_only_tools_work_beside_a_running_node(running_node):
    directory, node, client, keys = running_node
    head = client.head()["height"]
    shown = _cli("block", "show", str(directory), "head")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["header"]["height"] >= head
    key = "0x" + accounts.balance_key(RECIPIENT.public_key).hex()
    got = _cli("state", "get", str(directory), key)
    assert got.returncode == 0, got.stderr
    assert "0a00000000000000" in got.stdout  # 10 units, little-endian u64, committed
    proved = _cli("state", "prove", str(directory), key)
    assert proved.returncode == 0, proved.stderr
    assert json.loads(proved.stdout)["verified"] is True
    verified = _cli("verify", str(directory))
    assert verified.returncode == 0 and "OK: " in verified.stdout, verified.stdout + verified.stderr
    lineage = _cli("finance", "lineage", str(directory), "00" * 32)
    assert "locked" not in lineage.stderr and "Traceback" not in lineage.stderr, lineage.stderr
    assert node.poll() is None  # the node is untouched and still commits
    tx = accounts.transfer(1, keys.public_key, client.nonce(keys.public_key), RECIPIENT.public_key, 1)
    reply = client.submit(txcodec.frame([keys.sign_tx(tx).encode()]), wait_s=10)
    assert reply["receipts"][0]["code"] == "OK"
    node.send_signal(signal.SIGTERM)
    assert node.wait(30) == 0
    assert _cli("verify", str(directory)).returncode == 0


def test_a_second_shard_process_on_one_directory_is_refused(tmp_path):
    port = free_port()
    spec = _cluster_file(tmp_path, [f"127.0.0.1:{port}"])
    first = _serve(spec, 0, port)
    try:
        second = _cli(
            "shard",
            "serve",
            "--cluster",
            str(spec),
            "--index",
            "0",
            "--listen",
            f"127.0.0.1:{free_port()}",
            env=SHARD_ENV,
        )
        _refused_by(second, first.pid)
    finally:
        stop(first)
