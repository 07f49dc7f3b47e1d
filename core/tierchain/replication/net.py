"""A network of TierChain nodes on CometBFT: its files, and running, stopping and asking its nodes.

``init`` lays a network out in a directory (docs/replication.md, "Running a network")::

    DIR/net.toml                  the node list: name, role, home, host, ports (NET_FILE); with
                                  ``--load-accounts``, [load]: the load workload genesis funds
    DIR/<name>/node.toml          this node: name, role, host, p2p/rpc/api ports (NODE_FILE)
    DIR/<name>/chain.toml         the engine's config: the SAME bytes in every home
    DIR/<name>/node.key           this node's engine key (a key of the chain's crypto suite),
                                  sealed with the passphrase
    DIR/<name>/cometbft/          a CometBFT home (``cometbft init``): config/genesis.json
                                  (the same bytes in every home), config/config.toml, keys
    DIR/<name>/abci.sock          while running: the app's ABCI socket (CometBFT dials it)
    DIR/<name>/node.pid           while running: the ``tierchain net node run`` process
    DIR/<name>/cometbft.pid       while running: its ``cometbft start`` child
    DIR/<name>/logs/              node.log (the runner's JSON log), cometbft.log

A home is self-contained: ``run_node(home)`` (``tierchain net node run HOME``) is how
one node runs, whether ``start`` launched it or an institution runs its own copy.

Node ``i`` of a network (validators first, then full nodes, then observers) listens on
``base_port + 10 * i``: ``+0`` CometBFT p2p, ``+1`` CometBFT RPC, ``+2`` the TierChain
HTTP API. Roles: a validator's CometBFT key is in genesis with power ``VALIDATOR_POWER``;
a full node's and an observer's are not (they replicate, they do not vote); an observer's
app refuses every CheckTx (``READ_ONLY``), so its ``broadcast_tx_*`` and its node API
refuse every transaction, and its mempool does not gossip (``mempool.broadcast = false``).

The ABCI app a node runs is ``open_node_app(home, passphrase)``: the chain's apps are
resolved as for any node (built in, entry points, ``TIERCHAIN_APPS``).

Crypto suites (``init(crypto=...)``, ``net init --crypto``; docs/national-crypto.md): the
engine keys (``node.key``, the genesis accounts, the load workload's senders) and everything
the engine signs and hashes are the chain's suite's. CometBFT's own keys —
``priv_validator_key.json`` (consensus votes, the validators in genesis.json and every
validator update) and ``node_key.json`` (p2p) — are Ed25519 in every suite: CometBFT has no
SM2, and no TierChain key is ever handed to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tomli_w

from tierchain.config import (
    ChainConfig,
    ConfigError,
    Field,
    GenesisAccount,
    read_table,
    show,
    unknown_section,
)
from tierchain.crypto import DEFAULT_SUITE_NAME, SUITES, load_key_file, save_key_file, suite_for
from tierchain.engine.apps import DEFAULT_APPS
from tierchain.errors import TierChainError
from tierchain.replication.app import GENESIS_KEY, ROLES, TierChainApp, cometbft_chain_id, genesis_digest
from tierchain.replication.ledger import ReplicaChain
from tierchain.replication.submit import Forwarder, forward_body_bytes_max, forward_txs_max

log = logging.getLogger("tierchain.net")

NET_FILE = "net.toml"
NODE_FILE = "node.toml"
CHAIN_FILE = "chain.toml"
CHAIN_DIR = "chain"  # the node's TierChain database
COMETBFT_DIR = "cometbft"
SOCKET_FILE = "abci.sock"
PID_FILE = "node.pid"
COMETBFT_PID_FILE = "cometbft.pid"
LOG_DIR = "logs"
NODE_LOG = "node.log"
COMETBFT_LOG = "cometbft.log"

NODE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
nodes_max = 32
DEFAULT_BASE_PORT = 26600
PORT_STRIDE = 10  # node i: base + 10 i + (0 p2p, 1 rpc, 2 api)
VALIDATOR_POWER = 10
DEFAULT_TIMEOUT_COMMIT_MS = 100  # CometBFT's default is 1 s; 100 ms is the tuned figure (issue 16)
MEMPOOL_SIZE = 100_000
# A network's blocks may be larger than a solo chain's (ChainConfig's 4,096): every block
# costs a consensus round (proposal, two votes, timeout_commit), which bigger blocks share
# out (docs/replication.md, "Measured").
DEFAULT_BLOCK_TXS_MAX = 16_384
FLUSH_THROTTLE = "10ms"
LOOPBACK = "127.0.0.1"
UNIX_PATH_MAX = 107  # sun_path is 108 bytes on Linux, with its NUL

# ``init(key_kdf=...)`` without an iteration count: the PBKDF2-HMAC-SM3 iterations sealing
# an sm2-sm3 node.key of a throwaway network (the default, 600,000, takes ~0.5 s a key).
throwaway_kdf_iterations = 1000

# Bounds of the waits (seconds).
cometbft_cmd_s = 60  # `cometbft init` / `show-node-id`
cometbft_stop_s = 30  # a node's CometBFT after SIGTERM, before SIGKILL
rpc_timeout_s = 1.5  # one RPC request of `status` / `start`


class NetError(TierChainError):
    """A network command failed while running (exit code 1)."""


# --- node.toml and net.toml ---------------------------------------------------------------

NODE_FIELDS = (
    Field("node.name", "name", str),
    Field("node.role", "role", str, choices=ROLES),
    Field("node.host", "host", str),
    Field("node.p2p_port", "p2p_port", int, 1, 65535),
    Field("node.rpc_port", "rpc_port", int, 1, 65535),
    Field("node.api_port", "api_port", int, 1, 65535),
    # optional: the network API over gRPC too (docs/api.md); its HTTP/JSON face is on api_port
    Field("node.grpc_port", "grpc_port", int, 1, 65535),
    # optional: the API listeners over TLS (PEM files, relative to the node's home), and
    # mutual TLS with a client CA
    Field("node.tls_cert_file", "tls_cert_file", str),
    Field("node.tls_key_file", "tls_key_file", str),
    Field("node.tls_client_ca_file", "tls_client_ca_file", str),
)
NODE_OPTIONAL = ("host", "grpc_port", "tls_cert_file", "tls_key_file", "tls_client_ca_file")
NET_FIELDS = (Field("net.chain_id", "chain_id", str),)
# [load]: the ``tierchain load --net`` workload this network's genesis funds (``init(load=...)``).
LOAD_FIELDS = (
    Field("load.accounts", "accounts", int, 2, 1 << 27),
    Field("load.senders", "senders", int, 1, 1 << 27),
    Field("load.seed", "seed", int, 0, (1 << 63) - 1),
    # The suite the senders' keys are of (the chain's); left out of net.toml for the default.
    Field("load.crypto", "crypto", str, choices=tuple(SUITES)),
)
LOAD_OPTIONAL = ("seed", "crypto")


@dataclasses.dataclass(frozen=True)
class NetLoad:
    """The transfer workload (``tierchain.tools.loadgen``) a network's genesis funds: its
    ``accounts`` (state size), ``senders`` (signing keys, derived from ``seed``), ``seed``
    and ``crypto``, the suite of the senders' keys (the chain's). ``tierchain load --net``
    signs only with these keys, so it refuses a network without one."""

    accounts: int
    senders: int
    seed: int = 7
    crypto: str = DEFAULT_SUITE_NAME

    def __post_init__(self) -> None:
        for f in LOAD_FIELDS:
            f.check(getattr(self, f.attr))

    def document(self) -> dict[str, int | str]:
        doc = {f.key: getattr(self, f.attr) for f in LOAD_FIELDS}
        if self.crypto == DEFAULT_SUITE_NAME:  # net.toml as before suites existed
            del doc["crypto"]
        return doc


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One node: what its ``node.toml`` holds (and its entry in ``net.toml``, with its home)."""

    name: str
    role: str
    p2p_port: int
    rpc_port: int
    api_port: int
    host: str = LOOPBACK
    grpc_port: int | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None

    def __post_init__(self) -> None:
        for f in NODE_FIELDS:
            if getattr(self, f.attr) is not None:
                f.check(getattr(self, f.attr))
        if not NODE_NAME.fullmatch(self.name):
            raise ConfigError(
                f"node.name: expected 1..32 of a-z 0-9 _ - (first a letter or digit), got {self.name!r}"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None) or (
            self.tls_client_ca_file is not None and self.tls_cert_file is None
        ):
            raise ConfigError(
                f"node {self.name}: tls_cert_file and tls_key_file go together (a client CA needs them)"
            )
        ports = [self.p2p_port, self.rpc_port, self.api_port] + ([self.grpc_port] if self.grpc_port else [])
        if len(set(ports)) != len(ports):
            raise ConfigError(f"node {self.name}: its p2p, rpc, api (and grpc) ports must differ")

    def tls(self, home: Path) -> Any:
        """The API listeners' TLS files (``grpc_server.TlsFiles``), or None: plain text."""
        if self.tls_cert_file is None:
            return None
        from tierchain.api.grpc_server import TlsFiles

        ca = None if self.tls_client_ca_file is None else home / self.tls_client_ca_file
        return TlsFiles(home / self.tls_cert_file, home / self.tls_key_file, ca)

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.rpc_port}"

    @property
    def p2p_address(self) -> str:
        return f"{self.host}:{self.p2p_port}"

    def document(self) -> dict[str, Any]:
        return {f.key: getattr(self, f.attr) for f in NODE_FIELDS if getattr(self, f.attr) is not None}

    def to_toml(self) -> str:
        return tomli_w.dumps({"node": self.document()})

    @classmethod
    def from_table(cls, table: Any, where: str) -> NodeSpec:
        fields = [dataclasses.replace(f, name=f"{where}.{f.key}") for f in NODE_FIELDS]
        values = read_table(table, where, fields, nested=("home",) if where != "node" else ())
        for f in fields:
            if f.attr not in values and f.attr not in NODE_OPTIONAL:
                raise f.missing()
        try:
            return cls(**values)
        except ConfigError as exc:
            if where == "node":
                raise
            raise ConfigError(f"{where}: {exc}") from exc

    @classmethod
    def load(cls, home: Path) -> NodeSpec:
        """The node of the home ``home`` (its ``node.toml``); ``ConfigError`` naming the file."""
        path = home / NODE_FILE
        doc = _read_toml(path)
        try:
            for name, value in doc.items():
                if name != "node":
                    raise unknown_section(name, value, ["node"], NODE_FIELDS)
            if "node" not in doc:
                raise ConfigError("missing section [node]")
            return cls.from_table(doc["node"], "node")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class NetNode:
    spec: NodeSpec
    home: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> str:
        return self.spec.role


@dataclasses.dataclass(frozen=True)
class NetSpec:
    """A network: its CometBFT chain id and its nodes (``net.toml``); ``workload``: the load
    workload its genesis funds, if it was made for one (``[load]``)."""

    path: Path
    chain_id: str
    nodes: tuple[NetNode, ...]
    workload: NetLoad | None = None

    @classmethod
    def load(cls, directory: Path) -> NetSpec:
        """The network laid out in ``directory``; ``ConfigError`` naming the file and field."""
        path = directory / NET_FILE
        doc = _read_toml(path)
        try:
            for name, value in doc.items():
                if name not in ("net", "node", "load"):
                    raise unknown_section(name, value, ["net", "node", "load"], NET_FIELDS)
            net = read_table(doc.get("net", {}), "net", NET_FIELDS)
            workload = None
            if "load" in doc:
                values = read_table(doc["load"], "load", LOAD_FIELDS)
                for f in LOAD_FIELDS:
                    if f.attr not in values and f.attr not in LOAD_OPTIONAL:
                        raise f.missing()
                workload = NetLoad(**values)
            if "chain_id" not in net:
                raise NET_FIELDS[0].missing()
            entries = doc.get("node", [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ConfigError(f"node: expected an array of tables ([[node]]), got {show(entries)}")
            if not 1 <= len(entries) <= nodes_max:
                raise ConfigError(f"node: expected 1..{nodes_max} [[node]] entries, got {len(entries)}")
            nodes = []
            for i, entry in enumerate(entries):
                spec = NodeSpec.from_table(entry, f"node[{i}]")
                home = entry.get("home", spec.name)
                if not isinstance(home, str) or not home:
                    raise ConfigError(
                        f"node[{i}].home: expected a directory (relative to {NET_FILE}), got {show(home)}"
                    )
                nodes.append(NetNode(spec, directory / home))
            _check_distinct(n.spec for n in nodes)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        return cls(path, net["chain_id"], tuple(nodes), workload)

    def to_toml(self) -> str:
        here = self.path.parent
        doc = {
            "net": {"chain_id": self.chain_id},
            "node": [
                {
                    **n.spec.document(),
                    "home": os.path.relpath(n.home, here) if n.home.is_relative_to(here) else str(n.home),
                }
                for n in self.nodes
            ],
        }
        if self.workload is not None:
            doc["load"] = self.workload.document()
        return tomli_w.dumps(doc)

    def select(self, names: Iterable[str]) -> tuple[NetNode, ...]:
        """The nodes named (all if none is); ``ConfigError`` for a name not in the network."""
        names = list(names)
        if not names:
            return self.nodes
        by_name = {n.name: n for n in self.nodes}
        if bad := [x for x in names if x not in by_name]:
            raise ConfigError(f"no node {bad[0]!r} in {self.path} (nodes: {', '.join(by_name)})")
        return tuple(by_name[x] for x in names)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (made by `tierchain net init`?)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _check_distinct(specs: Iterable[NodeSpec]) -> None:
    names: set[str] = set()
    ports: dict[tuple[str, int], str] = {}
    for s in specs:
        if s.name in names:
            raise ConfigError(f"node {s.name!r} listed twice")
        names.add(s.name)
        for port in (s.p2p_port, s.rpc_port, s.api_port, *((s.grpc_port,) if s.grpc_port else ())):
            if (other := ports.get((s.host, port))) is not None:
                raise ConfigError(f"port {s.host}:{port} of node {s.name!r} is also node {other!r}'s")
            ports[(s.host, port)] = s.name


# --- genesis ------------------------------------------------------------------------------


def app_state(config: ChainConfig) -> dict[str, str]:
    """genesis.json's ``app_state``: the engine genesis's digest, checked by the app at InitChain."""
    return {GENESIS_KEY: genesis_digest(config)}


def genesis_time(timestamp_ms: int) -> str:
    """RFC 3339 (CometBFT's form) of a millisecond timestamp: the engine's genesis time."""
    t = datetime.datetime.fromtimestamp(timestamp_ms // 1000, datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{timestamp_ms % 1000:03d}Z"


def node_specs(validators: int, full: int, observers: int, base_port: int) -> list[NodeSpec]:
    """The nodes of a new loopback network: validators, then full nodes, then observers."""
    counts = {"validator": validators, "full": full, "observer": observers}
    if validators < 1:
        raise ConfigError(f"--validators: expected at least 1, got {validators}")
    if any(n < 0 for n in counts.values()):
        raise ConfigError("node counts must not be negative")
    total = sum(counts.values())
    if total > nodes_max:
        raise ConfigError(f"a network has at most {nodes_max} nodes, asked for {total}")
    top = base_port + PORT_STRIDE * (total - 1) + 2
    if base_port < 1024 or top > 65535:
        raise ConfigError(f"--base-port: ports {base_port}..{top} must lie in 1024..65535")
    specs = []
    for role, count in counts.items():
        for j in range(count):
            port = base_port + PORT_STRIDE * len(specs)
            specs.append(NodeSpec(f"{role}{j}", role, port, port + 1, port + 2))
    return specs


def init(
    directory: Path,
    *,
    validators: int,
    full: int = 0,
    observers: int = 0,
    base_port: int = DEFAULT_BASE_PORT,
    chain_id: int = 1,
    timeout_commit_ms: int = DEFAULT_TIMEOUT_COMMIT_MS,
    balance: int = 10**15,
    passphrase: str,
    genesis_timestamp_ms: int | None = None,
    apps: tuple[str, ...] = (),
    load: NetLoad | None = None,
    key_kdf: tuple[int, int] | tuple[int, int, int] | None = None,
    block_txs_max: int = DEFAULT_BLOCK_TXS_MAX,
    crypto: str = DEFAULT_SUITE_NAME,
) -> NetSpec:
    """Lay out a new network in ``directory`` (absent or empty; module docstring).

    ``crypto``: the chain's crypto suite (``chain.crypto``): the nodes' engine keys are made
    in it, and a ``load`` must be of it. CometBFT's keys are Ed25519 whatever it is.
    ``load``: also fund that load workload's senders in genesis (with its synthetic
    recipients: ``tierchain.tools.loadgen.transfer_genesis``) and record it in net.toml's
    ``[load]``. ``key_kdf``: a cheap sealing of each node.key for throwaway networks
    (benchmarks, tests), instead of ``save_key_file``'s defaults: ``(opslimit, memlimit)``
    of Argon2id (ed25519-blake3 keys) and optionally the PBKDF2-HMAC-SM3 ``iterations``
    of sm2-sm3 keys (``throwaway_kdf_iterations`` if left out).

    ``ConfigError`` before anything is written for a bad argument; a failure on the way
    (``NetError``, ``OSError``) removes what was written."""
    specs = node_specs(validators, full, observers, base_port)
    try:
        suite = suite_for(crypto)
    except TierChainError as exc:  # UnknownCryptoSuite, naming the known ones
        raise ConfigError(f"crypto: {exc}") from None
    if load is not None and load.crypto != suite.name:
        raise ConfigError(
            f"the load workload's keys are {load.crypto} keys; this network runs the {suite.name} suite"
        )
    kdf: dict[str, int] = {}
    if key_kdf is not None:
        if len(key_kdf) not in (2, 3):
            raise ConfigError(f"key_kdf: (opslimit, memlimit[, iterations]), got {key_kdf!r}")
        iterations = key_kdf[2] if len(key_kdf) == 3 else throwaway_kdf_iterations
        kdf = {"opslimit": key_kdf[0], "memlimit": key_kdf[1], "iterations": iterations}
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ConfigError(f"{directory} is not an empty directory: refusing to init a network into it")
    binary = _cometbft_binary()
    keys = [suite.generate_keys() for _ in specs]  # engine keys: the chain's suite
    ms = int(time.time() * 1000) if genesis_timestamp_ms is None else genesis_timestamp_ms
    # One engine config for every node (as `tierchain init` makes one): each node's key is a
    # genesis account with the registrar and committee roles.
    funded: tuple[GenesisAccount, ...] = ()
    synthetic = None
    if load is not None:  # the load workload's senders, funded, and its synthetic recipients
        from tierchain.tools.loadgen import transfer_genesis

        funded, synthetic = transfer_genesis(
            load.accounts, senders=load.senders, seed=load.seed, crypto=load.crypto
        )
    config = ChainConfig(
        chain_id=chain_id,
        genesis_timestamp_ms=ms,
        genesis_accounts=(
            *(GenesisAccount(k.public_key, ("registrar", "committee"), balance) for k in keys),
            *funded,
        ),
        genesis_synthetic=synthetic,
        # The engine's block bound (chain.toml, part of the genesis): PrepareProposal
        # takes at most this many transactions, ProcessProposal refuses more.
        block_txs_max=block_txs_max,
        # Apps beyond the built-in ones, by name: every node resolves them the same way
        # (entry points or TIERCHAIN_APPS), or refuses to start (tierchain.engine.apps).
        apps=(*DEFAULT_APPS, *(a for a in apps if a not in DEFAULT_APPS)),
        crypto=suite.name,  # fixed at genesis: the engine's signatures and hashes
    )
    chain_text = config.to_toml()
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    net = NetSpec(
        directory / NET_FILE,
        cometbft_chain_id(config),
        tuple(NetNode(s, directory / s.name) for s in specs),
        load,
    )
    try:
        node_ids = []
        for node, key in zip(net.nodes, keys, strict=True):
            home = node.home
            (home / LOG_DIR).mkdir(parents=True)
            (home / NODE_FILE).write_text(node.spec.to_toml())
            (home / CHAIN_FILE).write_text(chain_text)
            save_key_file(home / config.key_file, key, passphrase, **kdf)
            _cometbft(binary, "init", "--home", str(home / COMETBFT_DIR))
            node_ids.append(_cometbft(binary, "show-node-id", "--home", str(home / COMETBFT_DIR)).strip())
        genesis = _genesis_json(net, config)
        for i, node in enumerate(net.nodes):
            (node.home / COMETBFT_DIR / "config" / "genesis.json").write_bytes(genesis)
            # Each pair of nodes is dialled by one side only: node i keeps the nodes before it as
            # persistent peers (the ones after it dial it). Two nodes that dial each other at the
            # same moment can leave CometBFT (v0.38) in a tight reconnect loop on "duplicate ID",
            # with one side's peer entry gone: seen to stall a 2-validator net for over a minute.
            peers = [f"{node_ids[j]}@{n.spec.p2p_address}" for j, n in enumerate(net.nodes[:i])]
            _edit_config(
                node.home / COMETBFT_DIR / "config" / "config.toml", node.spec, peers, timeout_commit_ms
            )
        net.path.write_text(net.to_toml())
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for child in directory.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
    return net


def _cometbft_binary() -> Path:
    from tierchain.replication.cometbft import CometBFTUnavailable, binary

    try:
        return binary()
    except CometBFTUnavailable as exc:
        raise NetError(str(exc)) from exc


def _cometbft(binary: Path, *args: str) -> str:
    try:
        out = subprocess.run(
            [str(binary), *args],
            capture_output=True,
            text=True,
            timeout=cometbft_cmd_s,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise NetError(f"`cometbft {args[0]}` did not finish in {cometbft_cmd_s}s") from None
    if out.returncode != 0:
        raise NetError(f"`cometbft {' '.join(args)}` failed ({out.returncode}): {out.stderr.strip()[-300:]}")
    return out.stdout


def _genesis_json(net: NetSpec, config: ChainConfig) -> bytes:
    """One genesis.json for every node: the first home's as made by ``cometbft init`` (its
    consensus parameters), with the network's chain id, time, validators and app state.
    The validators are CometBFT's keys (``priv_validator_key.json``): Ed25519 in every suite."""
    doc = json.loads((net.nodes[0].home / COMETBFT_DIR / "config" / "genesis.json").read_text())
    validators = []
    for node in net.nodes:
        if node.role != "validator":
            continue
        key = json.loads((node.home / COMETBFT_DIR / "config" / "priv_validator_key.json").read_text())
        validators.append(
            {
                "address": key["address"],
                "pub_key": key["pub_key"],
                "power": str(VALIDATOR_POWER),
                "name": node.name,
            }
        )
    doc.update(
        genesis_time=genesis_time(config.genesis_timestamp_ms),
        chain_id=net.chain_id,
        initial_height="1",
        validators=validators,
        app_hash="",
        app_state=app_state(config),
    )
    return (json.dumps(doc, indent=2) + "\n").encode()


def _edit_config(path: Path, spec: NodeSpec, peers: list[str], timeout_commit_ms: int) -> None:
    """The node's CometBFT config.toml, as ``cometbft init`` wrote it, set for this network.
    ``proxy_app`` is left alone: ``run_node`` passes ``--proxy_app``."""
    doc = tomllib.loads(path.read_text())
    doc["moniker"] = spec.name
    p2p = doc["p2p"]
    p2p["laddr"] = f"tcp://{spec.host}:{spec.p2p_port}"
    p2p["persistent_peers"] = ",".join(peers)
    p2p["addr_book_strict"] = False  # loopback addresses are "not routable" to a strict book
    p2p["allow_duplicate_ip"] = True  # every peer is 127.0.0.1
    p2p["max_num_inbound_peers"] = max(p2p["max_num_inbound_peers"], len(peers))
    p2p["max_num_outbound_peers"] = max(p2p["max_num_outbound_peers"], len(peers))
    # CometBFT batches a connection's messages for flush_throttle_timeout (100 ms by default):
    # on loopback that only delays every proposal and vote.
    p2p["flush_throttle_timeout"] = FLUSH_THROTTLE
    rpc = doc["rpc"]
    rpc["laddr"] = f"tcp://{spec.host}:{spec.rpc_port}"
    # The node API forwards a submitted batch as one JSON-RPC batch (replication/submit.py).
    rpc["max_request_batch_size"] = forward_txs_max
    rpc["max_body_bytes"] = max(rpc["max_body_bytes"], forward_body_bytes_max)
    doc["consensus"]["timeout_commit"] = f"{timeout_commit_ms}ms"
    doc["tx_index"]["indexer"] = "null"  # the engine keeps its own receipts and tx index
    doc["mempool"]["size"] = MEMPOOL_SIZE
    if spec.role == "observer":
        # Its app refuses every CheckTx (READ_ONLY), so broadcast_tx_* on it is refused and
        # it holds nothing to gossip. Not the "nop" mempool: peers would still send it
        # transactions on the mempool channel, and a node without it drops those peers.
        doc["mempool"]["broadcast"] = False
    doc["instrumentation"]["prometheus"] = False
    path.write_text(tomli_w.dumps(doc))


# --- processes ----------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str] | None:
    """The process's arguments, or None if /proc cannot say (not Linux)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return [] if Path("/proc/self").exists() else None
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")


def alive(pid: int | None, *, expect: Callable[[list[str]], bool] | None = None) -> bool:
    """``pid`` names a live process (not a zombie) whose arguments pass ``expect`` (a pid
    file left by a process that died may name a new, unrelated process)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists; another user's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    if expect is not None:
        args = _cmdline(pid)
        if args is not None and not expect(args):
            return False
    return True


def _is_node_runner(args: list[str]) -> bool:
    return "net" in args and "node" in args and "run" in args


def _is_cometbft(args: list[str]) -> bool:
    return bool(args) and Path(args[0]).name == "cometbft" and "start" in args


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def node_pid(home: Path) -> int | None:
    """The pid of the node running from ``home``, or None if none is."""
    pid = read_pid(home / PID_FILE)
    return pid if alive(pid, expect=_is_node_runner) else None


def cometbft_pid(home: Path) -> int | None:
    pid = read_pid(home / COMETBFT_PID_FILE)
    return pid if alive(pid, expect=_is_cometbft) else None


def open_node_app(home: Path, passphrase: str) -> TierChainApp:
    """The app of the node whose home is ``home``: its role from ``node.toml``, the chain's
    genesis from ``chain.toml``, its key ``node.key``, its database ``chain/``
    (docs/replication.md, "A node's home")."""
    spec = NodeSpec.load(home)
    config = ChainConfig.load(home / CHAIN_FILE)
    keys = load_key_file(home / config.key_file, passphrase)
    if keys.suite_name != config.crypto:
        raise ConfigError(
            f"{home / config.key_file}: a {keys.suite_name} key, but {home / CHAIN_FILE} "
            f"runs the {config.crypto} suite"
        )
    return TierChainApp(ReplicaChain(home / CHAIN_DIR, config, keys), role=spec.role)


def _terminate(proc: subprocess.Popen, wait_s: float) -> int | None:
    """SIGTERM ``proc``, wait at most ``wait_s``, then SIGKILL it. Its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        log.warning("cometbft did not stop in %ss: killing it", wait_s)
        proc.kill()
        try:
            return proc.wait(10)
        except subprocess.TimeoutExpired:
            return None


def _remove_pid_files(home: Path) -> None:
    """The runner's pid files, if they still name this process and its (stopped) CometBFT."""
    if read_pid(home / PID_FILE) == os.getpid():
        (home / PID_FILE).unlink(missing_ok=True)
        (home / COMETBFT_PID_FILE).unlink(missing_ok=True)


def run_node(home: Path, passphrase: str, *, stop: threading.Event | None = None, poll_s: float = 0.2) -> int:
    """Run the node of ``home`` until SIGTERM/SIGINT (or ``stop``): its app behind the ABCI
    socket, then ``cometbft start`` against it. Returns the exit code: 0 after a requested
    stop; 1 if CometBFT exited on its own or the app failed in consensus.

    Installs the SIGTERM/SIGINT handlers (call it from the main thread)."""
    from tierchain.api.rpc import NodeServer, RpcError
    from tierchain.replication.abci_server import AbciServer

    home = home.resolve()
    spec = NodeSpec.load(home)
    comet_home = home / COMETBFT_DIR
    if not (comet_home / "config" / "config.toml").is_file():
        raise ConfigError(f"{comet_home}: no CometBFT home (config/config.toml)")
    sock = home / SOCKET_FILE
    if len(os.fsencode(sock)) > UNIX_PATH_MAX:
        raise ConfigError(
            f"{sock}: longer than a unix socket path may be ({UNIX_PATH_MAX} bytes): use a shorter home"
        )
    if (pid := node_pid(home)) is not None and pid != os.getpid():
        raise NetError(f"node {spec.name} already runs from {home} (pid {pid})")
    binary = _cometbft_binary()
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    fields = {"node": spec.name, "role": spec.role, "home": str(home)}
    app = open_node_app(home, passphrase)
    failed = threading.Event()
    app_fatal = getattr(app, "fatal", None)  # the app's "consensus handling failed" event

    def on_fatal(exc: BaseException) -> None:
        failed.set()
        if app_fatal is not None:
            app_fatal.set()

    server = AbciServer(app, sock, on_fatal=on_fatal)
    code = 0
    # Stopped in this order whatever fails on the way: CometBFT, the ABCI server, the app.
    with contextlib.ExitStack() as stack:
        stack.callback(_remove_pid_files, home)
        stack.callback(app.close)
        server.start()
        stack.callback(server.stop)
        stack.callback(
            log.info, "stopping: cometbft, then the ABCI server, then the app", extra={"fields": fields}
        )
        (home / LOG_DIR).mkdir(exist_ok=True)
        comet_log = home / LOG_DIR / COMETBFT_LOG
        proc = subprocess.Popen(
            [str(binary), "start", "--home", str(comet_home), "--proxy_app", f"unix://{sock}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's ^C reaches the runner only: it stops CometBFT first
        )
        consensus_failure: list[str] = []
        watcher = threading.Thread(
            target=_watch_cometbft,
            args=(proc, comet_log, consensus_failure),
            name="cometbft-log",
            daemon=True,
        )
        watcher.start()
        stack.callback(watcher.join, cometbft_stop_s)  # after CometBFT stopped: its output ends
        stack.callback(_terminate, proc, cometbft_stop_s)
        chain = app.chain
        if spec.role != "observer":  # the node API's submissions go to this node's CometBFT
            forwarder = Forwarder(app, spec.host, spec.rpc_port)
            chain.submitter = forwarder.submit
            stack.callback(forwarder.close)
        try:
            grpc_listen = None if spec.grpc_port is None else f"{spec.host}:{spec.grpc_port}"
            tls = spec.tls(home)
            api = NodeServer(
                chain, spec.host, spec.api_port, grpc_listen=grpc_listen, grpc_tls=tls, http_tls=tls
            )
        except OSError as exc:
            raise NetError(f"cannot listen on {spec.host}:{spec.api_port}: {exc.strerror or exc}") from None
        api.metrics.add_source(lambda: replication_health(spec))  # GET /metrics: consensus health
        try:
            api.start()
        except (OSError, RpcError) as exc:
            raise NetError(f"cannot serve the API: {exc}") from None
        stack.callback(api.stop)  # first to stop: no submission arrives once CometBFT stops
        (home / PID_FILE).write_text(f"{os.getpid()}\n")
        (home / COMETBFT_PID_FILE).write_text(f"{proc.pid}\n")
        log.info(
            "node started",
            extra={
                "fields": fields
                | {
                    "pid": os.getpid(),
                    "cometbft_pid": proc.pid,
                    "p2p": spec.p2p_address,
                    "rpc": spec.rpc_url,
                    "api": f"http://{spec.host}:{spec.api_port}",
                    "height": chain.height,
                    "cometbft_log": str(comet_log),
                }
            },
        )
        while not stop.wait(poll_s):
            if (rc := proc.poll()) is not None:
                log.error(
                    "cometbft exited on its own; stopping the node",
                    extra={"fields": fields | {"exit_code": rc, "cometbft_log": str(comet_log)}},
                )
                code = 1
                break
            if consensus_failure:
                log.critical(
                    "CometBFT's consensus failed: this node's state is not the network's "
                    "(an app hash mismatch, or a block it cannot validate); stopping instead of "
                    "serving a fork",
                    extra={
                        "fields": fields | {"error": consensus_failure[0], "cometbft_log": str(comet_log)}
                    },
                )
                code = 1
                break
            if failed.is_set() or (app_fatal is not None and app_fatal.is_set()):
                log.error("the app failed in consensus; stopping the node", extra={"fields": fields})
                code = 1
                break
    log.info("node stopped", extra={"fields": fields | {"exit_code": code}})
    return code


CONSENSUS_FAILURE = b"CONSENSUS FAILURE!!!"  # what CometBFT logs when its consensus stops for good


def _watch_cometbft(proc: subprocess.Popen, path: Path, failure: list[str]) -> None:
    """Copy CometBFT's output to ``path``; on its consensus-failure line, put the line in
    ``failure`` (the runner stops the node). CometBFT itself keeps running after such a
    failure — serving RPC from a state the network disagrees with — so this is how the
    runner learns of it (docs/replication.md, "A node that disagrees")."""
    assert proc.stdout is not None
    with open(path, "ab") as out:
        writable = True
        for line in proc.stdout:  # drained to the end whatever happens: a full pipe would stall CometBFT
            if writable:
                try:
                    out.write(line)
                except OSError as exc:  # a full disk: keep draining, say it once
                    writable = False
                    log.error("cometbft's log is no longer written", extra={"fields": {"error": str(exc)}})
            if CONSENSUS_FAILURE in line and not failure:
                with contextlib.suppress(OSError):
                    out.flush()
                text = line.decode(errors="replace")
                failure.append(text[text.find("err=") :][:500].strip() or text[:500])


def _spawn(node: NetNode, passphrase_env: str, passphrase: str, log_level: str) -> subprocess.Popen:
    home = node.home.resolve()
    (home / LOG_DIR).mkdir(exist_ok=True)
    env = dict(os.environ, **{passphrase_env: passphrase})
    argv = [sys.executable, "-m", "tierchain.cli.main", "--log-level", log_level, "net", "node", "run"]
    argv += ["--passphrase-env", passphrase_env, str(home)]
    with open(home / LOG_DIR / NODE_LOG, "ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: it outlives `net start` and its terminal
        )
    (home / PID_FILE).write_text(f"{proc.pid}\n")
    return proc


def _answers_as(node: NetNode, chain_id: str) -> bool:
    """The node's RPC port answers ``/status`` as this node of this network (not as another
    process that holds the port)."""
    status = rpc_get(node.spec, "status")
    info = (status or {}).get("node_info") or {}
    return info.get("network") == chain_id and info.get("moniker") == node.name


@dataclasses.dataclass
class StartResult:
    node: NetNode
    pid: int | None
    started: bool  # False: it was already running
    error: str | None = None


def start(
    net: NetSpec,
    passphrase_env: str,
    passphrase: str,
    *,
    nodes: Iterable[NetNode] | None = None,
    wait_s: float = 60.0,
    log_level: str = "info",
) -> list[StartResult]:
    """Start every node (of ``nodes``) that does not run, detached, and wait at most ``wait_s``
    for each one's CometBFT RPC to answer ``/status``. A node that exits or does not answer
    in time has its ``error`` set; the others keep running."""
    results, procs = [], {}
    for node in nodes if nodes is not None else net.nodes:
        if (pid := node_pid(node.home)) is not None:
            results.append(StartResult(node, pid, started=False))
            continue
        proc = _spawn(node, passphrase_env, passphrase, log_level)
        procs[node.name] = proc
        results.append(StartResult(node, proc.pid, started=True))
    deadline = time.monotonic() + wait_s
    waiting = [r for r in results if r.started]
    while waiting:
        for r in list(waiting):
            proc = procs[r.node.name]
            if (rc := proc.poll()) is not None:
                r.error = f"exited with code {rc}; see {r.node.home / LOG_DIR / NODE_LOG}"
                if read_pid(r.node.home / PID_FILE) == proc.pid:
                    (r.node.home / PID_FILE).unlink(missing_ok=True)
                r.pid = None
                waiting.remove(r)
            elif _answers_as(r.node, net.chain_id):
                waiting.remove(r)
        if not waiting:
            break
        if time.monotonic() > deadline:
            for r in waiting:
                url = f"{r.node.spec.rpc_url}/status"
                r.error = f"its RPC did not answer {url} in {wait_s:.0f}s; see {r.node.home / LOG_DIR}"
            break
        time.sleep(0.2)
    return results


@dataclasses.dataclass
class StopResult:
    node: NetNode
    pid: int | None  # None: it was not running
    killed: bool = False  # it did not stop in time and was SIGKILLed


def stop(net: NetSpec, *, nodes: Iterable[NetNode] | None = None, wait_s: float = 60.0) -> list[StopResult]:
    """SIGTERM every running node, wait at most ``wait_s`` for them all, SIGKILL the
    stragglers (and a CometBFT whose runner is gone), remove their pid files.

    It waits for the processes themselves, not for their pid files: a runner removes its
    files before its interpreter has exited."""
    results: list[tuple[StopResult, list[int]]] = []
    for node in nodes if nodes is not None else net.nodes:
        procs = [p for p in (node_pid(node.home), cometbft_pid(node.home)) if p is not None]
        if procs:  # the runner stops its CometBFT; a CometBFT left by a killed runner is told directly
            with contextlib.suppress(ProcessLookupError):
                os.kill(procs[0], signal.SIGTERM)
        results.append((StopResult(node, procs[0] if procs else None), procs))

    def left(procs: list[int]) -> list[int]:
        # Not by their arguments: an exiting process's /proc cmdline reads empty before it is gone.
        return [p for p in procs if alive(p)]

    deadline = time.monotonic() + wait_s
    while any(left(procs) for _, procs in results) and time.monotonic() < deadline:
        time.sleep(0.1)
    for r, procs in results:
        for p in left(procs):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
            r.killed = True
        end = time.monotonic() + 10
        while left(procs) and time.monotonic() < end:
            time.sleep(0.05)
        if not left(procs):
            for name in (PID_FILE, COMETBFT_PID_FILE, SOCKET_FILE):
                (r.node.home / name).unlink(missing_ok=True)
    return [r for r, _ in results]


# --- status -------------------------------------------------------------------------------


def rpc_get(spec: NodeSpec, method: str, timeout_s: float = rpc_timeout_s) -> dict[str, Any] | None:
    """``result`` of CometBFT RPC ``method`` (GET, JSON-RPC over HTTP), or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"{spec.rpc_url}/{method}", timeout=timeout_s) as reply:
            body = json.loads(reply.read(4 << 20))
    except (OSError, ValueError, urllib.error.URLError):
        return None
    result = body.get("result") if isinstance(body, dict) else None
    return result if isinstance(result, dict) else None


STATUS_KEYS = ("name", "role", "pid", "height", "block_hash", "app_hash", "peers", "catching_up")


def node_status(node: NetNode) -> dict[str, Any]:
    """One node's status (``STATUS_KEYS``); None for what a node that is down cannot say."""
    out: dict[str, Any] = dict.fromkeys(STATUS_KEYS)
    out.update(name=node.name, role=node.role, pid=node_pid(node.home))
    status = rpc_get(node.spec, "status")
    if status is not None:
        sync = status.get("sync_info") or {}
        with contextlib.suppress(TypeError, ValueError):
            out["height"] = int(sync["latest_block_height"])
        out["block_hash"] = (sync.get("latest_block_hash") or "").lower() or None
        out["app_hash"] = (sync.get("latest_app_hash") or "").lower() or None
        out["catching_up"] = sync.get("catching_up")
    info = rpc_get(node.spec, "net_info")
    if info is not None:
        with contextlib.suppress(TypeError, ValueError, KeyError):
            out["peers"] = int(info["n_peers"])
    return out


def replication_health(spec: NodeSpec, timeout_s: float = 1.0) -> list[Any]:
    """This node's consensus health as gauges (``tierchain.api.metrics.Gauge``) from its
    CometBFT's RPC, read at scrape time (each call bounded by ``timeout_s``): up, height,
    catching up, peers. A CometBFT that does not answer is ``tierchain_consensus_up 0``."""
    from tierchain.api.metrics import Gauge

    status = rpc_get(spec, "status", timeout_s)
    out = [
        Gauge(
            "tierchain_consensus_up",
            "1 while this node's CometBFT answers its RPC.",
            float(status is not None),
        )
    ]
    if status is not None:
        sync = status.get("sync_info") or {}
        with contextlib.suppress(TypeError, ValueError, KeyError):
            out.append(
                Gauge(
                    "tierchain_consensus_height",
                    "CometBFT's latest block height.",
                    int(sync["latest_block_height"]),
                )
            )
        out.append(
            Gauge(
                "tierchain_consensus_catching_up",
                "1 while CometBFT is catching up.",
                float(bool(sync.get("catching_up"))),
            )
        )
        info = rpc_get(spec, "net_info", timeout_s)
        with contextlib.suppress(TypeError, ValueError, KeyError):
            out.append(
                Gauge("tierchain_consensus_peers", "Peers CometBFT is connected to.", int(info["n_peers"]))
            )
    return out


def status(net: NetSpec, nodes: Iterable[NetNode] | None = None) -> list[dict[str, Any]]:
    nodes = list(nodes if nodes is not None else net.nodes)
    with ThreadPoolExecutor(max_workers=min(16, len(nodes)) or 1) as pool:
        return list(pool.map(node_status, nodes))
