"""The cluster world shared by the sharding and state tests: a base chain of 16 funded accounts
split over two shards, signed transfers, and `tierchain shard serve` subprocesses with a cluster
file (tests/sharding/test_cluster.py, tests/sharding/test_remote_shards.py,
tests/state/test_writer_lock.py). ``node_key(crypto)``/``base(crypto)`` are the same world in a
crypto suite (``_cluster_file(..., crypto=...)``); the module's names are the default suite's."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import nacl.pwhash

from conftest import stop
from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import DEFAULT_SUITE_NAME, KeyPair, save_key_file, suite_for
from tierchain.engine.route import route_keys

BALANCE = 10**9
N = 2


@functools.cache
def node_key(crypto: str = DEFAULT_SUITE_NAME) -> KeyPair:
    """The cluster's proposer key in the suite ``crypto``."""
    return suite_for(crypto).keys_from_seed(b"cluster-node".ljust(32, b"\0"))


@functools.cache
def accounts_of(crypto: str = DEFAULT_SUITE_NAME) -> tuple[KeyPair, ...]:
    return tuple(suite_for(crypto).keys_from_seed(bytes([i + 1]) * 32) for i in range(16))


@functools.cache
def base(crypto: str = DEFAULT_SUITE_NAME) -> ChainConfig:
    """The base chain of 16 funded accounts, on the suite ``crypto``."""
    return ChainConfig(
        chain_id=40,
        block_interval_ms=2,
        block_txs_max=256,
        crypto=crypto,
        genesis_accounts=(
            GenesisAccount(node_key(crypto).public_key, ("registrar",), 0),
            *(GenesisAccount(k.public_key, (), BALANCE) for k in accounts_of(crypto)),
        ),
    )


NODE = node_key()
ACCOUNTS = list(accounts_of())
BASE = base()
HOME = route_keys([accounts.balance_key(k.public_key) for k in ACCOUNTS], N).tolist()
BY_SHARD = [[k for k, h in zip(ACCOUNTS, HOME, strict=True) if h == s] for s in range(N)]


def transfer(cluster_chain_id: int, sender: KeyPair, nonce: int, to: KeyPair, amount: int) -> bytes:
    tx = accounts.transfer(cluster_chain_id, sender.public_key, nonce, to.public_key, amount)
    return sender.sign_tx(tx).encode()


def random_transfers(chain_id: int, group: list[KeyPair], nonces: dict, rng, n: int = 20) -> list[bytes]:
    """``n`` signed transfers of 1 between random members of ``group``; advances ``nonces``."""
    txs = []
    for _ in range(n):
        i, j = rng.choice(len(group), 2, replace=False)
        x, y = group[i], group[j]
        txs.append(transfer(chain_id, x, nonces[x.public_key], y, 1))
        nonces[x.public_key] += 1
    return txs


HERE = Path(__file__).parent  # tests/
PASS = "remote shard test"
CLI = [sys.executable, "-m", "tierchain.cli.main"]
ENV = dict(os.environ, TIERCHAIN_PASSPHRASE=PASS, PYTHONPATH=str(HERE.parent / "core"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_cheap_key(path: Path, keys: KeyPair) -> None:
    """``keys`` sealed under ``PASS`` at the lowest KDF cost of its suite's scheme."""
    save_key_file(
        path,
        keys,
        PASS,
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN,
        iterations=1000,
    )


def _cluster_file(
    tmp: Path, shards: list[str], control_port: int = 0, crypto: str = DEFAULT_SUITE_NAME
) -> Path:
    """chain.toml (the base config on the suite ``crypto``), node.key (the suite's key, sealed,
    cheap KDF) and cluster.toml in ``tmp``."""
    (tmp / "chain.toml").write_text(base(crypto).to_toml())
    if not (tmp / "node.key").exists():
        save_cheap_key(tmp / "node.key", node_key(crypto))
    quoted = ", ".join(f'"{s}"' for s in shards)
    path = tmp / "cluster.toml"
    path.write_text(
        "[cluster]\n"
        'chain_config = "chain.toml"\nkey_file = "node.key"\nroot = "shards"\n'
        f'control = "127.0.0.1:{control_port or _free_port()}"\n'
        f"shards = [{quoted}]\nheartbeat_s = 0.3\nheartbeat_timeout_s = 4.0\n"
    )
    return path


def _serve(spec: Path, index: int, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`tierchain shard serve` as a subprocess (``env``: default ``ENV``); returns once its endpoint
    accepts connections."""
    proc = subprocess.Popen(
        [
            *CLI,
            "--log-level",
            "warning",
            "shard",
            "serve",
            "--cluster",
            str(spec),
            "--index",
            str(index),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env=ENV if env is None else env,
    )
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, "shard serve exited"
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                try:
                    grpc.channel_ready_future(ch).result(timeout=1)
                    return proc
                except grpc.FutureTimeoutError:
                    assert time.monotonic() < deadline, "shard serve did not start"
    except BaseException:
        stop(proc)  # the caller never gets the handle: do not leave the process behind
        raise
