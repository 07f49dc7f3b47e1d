"""Shared fixtures: a small solo chain with funded accounts, and a signed transfer on it;
helpers for tests that run a node as a subprocess (a free port, its stderr in a file, stop)."""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable

import nacl.pwhash
import pytest

from tierchain import crypto
from tierchain.api.rpc import NodeClient, RpcError
from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain

NODE = KeyPair.from_seed(bytes(32))
ALICE = KeyPair.from_seed(b"alice".ljust(32, b"\0"))
BOB = KeyPair.from_seed(b"bob".ljust(32, b"\0"))
CAROL = KeyPair.from_seed(b"carol".ljust(32, b"\0"))
CHAIN_ID = 9  # small_config's


def small_config(**overrides) -> ChainConfig:
    fields = dict(
        chain_id=CHAIN_ID,
        block_interval_ms=5,
        genesis_accounts=(
            GenesisAccount(NODE.public_key, ("registrar", "committee"), 0),
            GenesisAccount(ALICE.public_key, (), 1_000),
            GenesisAccount(BOB.public_key, (), 0),
            GenesisAccount(CAROL.public_key, (), 500),
        ),
    )
    fields.update(overrides)
    return ChainConfig(**fields)


def transfer(keys: KeyPair, nonce: int, to: KeyPair, amount: int, **tx_fields) -> bytes:
    """A signed accounts transfer on the small chain (``tx_fields`` override the tx's fields)."""
    tx = accounts.transfer(CHAIN_ID, keys.public_key, nonce, to.public_key, amount)
    return keys.sign_tx(dataclasses.replace(tx, **tx_fields)).encode()


@pytest.fixture
def chain_dir(tmp_path):
    return tmp_path / "chain"


@pytest.fixture
def chain(chain_dir):
    with Chain(chain_dir, small_config(), NODE) as c:
        yield c


@pytest.fixture
def fast_kdf(monkeypatch):
    """Key files sealed at a minimal KDF cost (Argon2id's minimum; 1,000 PBKDF2 iterations for
    SM2 key files): the default costs take seconds; the format is the same."""
    monkeypatch.setattr(nacl.pwhash.argon2id, "OPSLIMIT_MODERATE", nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(nacl.pwhash.argon2id, "MEMLIMIT_MODERATE", nacl.pwhash.argon2id.MEMLIMIT_MIN)
    monkeypatch.setattr(
        crypto.save_key_file,
        "__kwdefaults__",
        {
            "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
            "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
            "iterations": 1000,  # PBKDF2-HMAC-SM3 of sm2-sm3 key files
        },
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picked it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def node_stderr(tmp_path):
    """A file for a node subprocess's stderr (``open(node_stderr, "wb")``), not a pipe: a pipe
    nobody reads while the node runs fills up and blocks it. Printed at teardown, which
    pytest shows only when the test failed."""
    path = tmp_path / "node.stderr"
    yield path
    if path.exists():
        print(f"--- node stderr ({path}) ---\n{path.read_text(errors='replace')[-8000:]}")


def stop(proc: subprocess.Popen, timeout_s: float = 30) -> int:
    """SIGTERM ``proc`` and wait; SIGKILL it if it does not exit in time. Its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise


def wait_serving(url: str, proc=None, timeout_s: float = 60) -> NodeClient:
    """A client of the node at ``url`` once it answers ``/v1/head`` (``proc``: fail early if it exits)."""
    client = NodeClient(url, timeout_s=10)
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc is None or proc.poll() is None, "node exited"
        try:
            client.head()
            return client
        except RpcError:
            assert time.monotonic() < deadline, f"no node answered at {url}"
            time.sleep(0.1)


def applied_write_sets(stored: dict, sets: list[dict]) -> dict:
    """The model of a state table after write sets in order (oldest first; None deletes)."""
    state = dict(stored)
    for writes in sets:
        for k, v in writes.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
    return state


def raised_on_another_thread(fn: Callable[[], object]) -> BaseException | None:
    """What ``fn()`` raised when run on a thread of its own (None: it returned)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            raised.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return raised[0] if raised else None
