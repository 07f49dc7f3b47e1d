"""``tierchain``: the operator CLI (docs/operations.md)."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import click

from tierchain.apps import accounts as accounts_app
from tierchain.cli import keys as cli_keys
from tierchain.cli.errors import TierChainGroup
from tierchain.cli.types import (
    AMOUNT,
    BALANCE,
    CHAIN_ID,
    HEIGHT,
    HOST_PORT,
    NODE_URL,
    PUBLIC_KEY,
    STATE_KEY,
    check_key_suite,
    crypto_option,
    extra_apps_option,
    passphrase_option,
    read_passphrase,
)
from tierchain.config import ROLES, ChainConfig, GenesisAccount
from tierchain.crypto import CryptoSuite, KeyPair, load_key_file, save_key_file, suite_for, suite_of
from tierchain.engine import gc_tuning
from tierchain.engine.apps import DEFAULT_APPS, AppError, AppSet
from tierchain.engine.apps import find as find_app
from tierchain.engine.apps import resolve as resolve_apps
from tierchain.errors import TierChainError
from tierchain.state import log as writeback_log
from tierchain.wire import tx as txcodec
from tierchain.wire.block import Header

CONFIG_NAME = "chain.toml"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: what operators' log pipelines ingest."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _load_node(directory: Path, passphrase_env: str) -> tuple[ChainConfig, KeyPair]:
    config = ChainConfig.load(directory / CONFIG_NAME)
    keys = load_key_file(directory / config.key_file, read_passphrase(passphrase_env))
    check_key_suite(keys, config.crypto, directory / config.key_file)
    return config, keys


def _parse_key(text: str | bytes) -> bytes:
    """A state key in one of the forms of ``tierchain.cli.keys`` (``STATE_KEY`` already parsed it)."""
    return text if isinstance(text, bytes) else cli_keys.parse_key(text)


def _version() -> str:
    """The installed distribution's version (package metadata, so it cannot drift from pyproject)."""
    try:
        return importlib.metadata.version("tierchain")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


@click.group(cls=TierChainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="tierchain", message="%(prog)s %(version)s")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
def main(log_level: str) -> None:
    """TierChain: a parallel ledger core for consortium supply-chain finance.

    Errors are one line on stderr: exit code 2 for bad arguments or configuration, 1 for a
    failure while running; --log-level debug shows the traceback of an unexpected error.
    """
    _setup_logging(log_level)
    gc_tuning.tune()  # a node's process: docs/embedding.md, engine/gc_tuning.py


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--chain-id", type=CHAIN_ID, default=1, show_default=True)
@click.option(
    "--sync",
    type=click.Choice(["full", "none"]),
    default="full",
    show_default=True,
    help='"none" loses durability: benchmarks only.',
)
@click.option(
    "--balance",
    type=BALANCE,
    default=10**15,
    show_default=True,
    help="Genesis balance of the node's own account (minor units).",
)
@click.option("--block-txs-max", type=click.IntRange(1), default=4096, show_default=True)
@click.option("--block-interval-ms", type=click.IntRange(1), default=20, show_default=True)
@extra_apps_option
@crypto_option
@passphrase_option
def init(
    directory: Path,
    chain_id: int,
    sync: str,
    balance: int,
    block_txs_max: int,
    block_interval_ms: int,
    extra_apps: tuple[str, ...],
    crypto: str,
    passphrase_env: str,
) -> None:
    """Create a solo chain in DIRECTORY: chain.toml and a sealed node key."""
    if (directory / CONFIG_NAME).exists():
        raise click.ClickException(f"{directory / CONFIG_NAME} exists; refusing to overwrite a chain")
    keys = suite_for(crypto).generate_keys()
    config = ChainConfig(  # first: a ConfigError leaves no directory behind
        chain_id=chain_id,
        crypto=crypto,
        sync=sync,
        block_txs_max=block_txs_max,
        block_interval_ms=block_interval_ms,
        genesis_timestamp_ms=int(time.time() * 1000),
        genesis_accounts=(GenesisAccount(keys.public_key, ("registrar", "committee"), balance),),
        apps=(*DEFAULT_APPS, *(a for a in extra_apps if a not in DEFAULT_APPS)),
    )
    resolve_apps(config.apps)  # an app this process cannot load is refused before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    save_key_file(directory / config.key_file, keys, read_passphrase(passphrase_env, confirm=True))
    (directory / CONFIG_NAME).write_text(config.to_toml())
    click.echo(f"chain {chain_id} ({crypto}) created in {directory}; node key {keys.public_key.hex()}")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@crypto_option
@passphrase_option
def keygen(path: Path, crypto: str, passphrase_env: str) -> None:
    """Create a new sealed key file at PATH (a key of the --crypto suite) and print its public key."""
    if path.exists():
        raise click.ClickException(f"{path} exists")
    keys = suite_for(crypto).generate_keys()
    save_key_file(path, keys, read_passphrase(passphrase_env, confirm=True))
    click.echo(keys.public_key.hex())


@main.group()
def node() -> None:
    """Run a node."""


@node.command("run")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--listen",
    type=HOST_PORT,
    default="127.0.0.1:7545",
    show_default=True,
    help="The HTTP endpoint's address (/v1, the network API's HTTP/JSON /api/v1, /metrics).",
)
@click.option(
    "--grpc-listen", type=HOST_PORT, default=None, help="Also serve the network API over gRPC here."
)
@click.option(
    "--api-auth",
    type=click.Choice(["none", "org"]),
    default="none",
    show_default=True,
    help="org: every network API call must be signed by an organization's key (docs/api.md).",
)
@click.option("--api-rate", type=click.FloatRange(min=0.001), default=2000.0, show_default=True,
              help="Network API calls a second per caller (bursts of twice as many).")  # fmt: skip
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="PEM certificate chain: serve HTTP and gRPC over TLS (with --tls-key).")  # fmt: skip
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None)
@click.option("--tls-client-ca", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="PEM CA: require client certificates signed by it (mutual TLS).")  # fmt: skip
@passphrase_option
def node_run(
    directory: Path,
    listen: str,
    grpc_listen: str | None,
    api_auth: str,
    api_rate: float,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    passphrase_env: str,
) -> None:
    """Run the solo node in DIRECTORY until SIGTERM or SIGINT (then drain and stop)."""
    from tierchain.api.auth import Authenticator, Limits
    from tierchain.api.grpc_server import TlsFiles
    from tierchain.api.rpc import NodeServer, RpcError
    from tierchain.engine.chain import Chain

    if (tls_cert is None) != (tls_key is None) or (tls_client_ca is not None and tls_cert is None):
        raise click.UsageError("--tls-cert and --tls-key go together (and --tls-client-ca needs them)")
    tls = None if tls_cert is None else TlsFiles(tls_cert, tls_key, tls_client_ca)

    log = logging.getLogger("tierchain.node")
    host, _, port_text = listen.rpartition(":")  # checked by HOST_PORT
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"  # [::1]:7545 is IPv6 loopback
    port = int(port_text)
    config, keys = _load_node(directory, passphrase_env)
    chain = Chain(directory, config, keys)
    authenticator = Authenticator(chain, required=api_auth == "org", limits_=Limits(api_rate, 2 * api_rate))
    try:
        server = NodeServer(
            chain,
            host,
            port,
            authenticator=authenticator,
            grpc_listen=grpc_listen,
            grpc_tls=tls,
            http_tls=tls,
        )
        server.start()
    except (OSError, RpcError) as exc:  # busy port, unknown host: the environment, not the argument (exit 1)
        chain.close()
        where = f"{host}:{port}" + (f" / gRPC {grpc_listen}" if grpc_listen else "")
        raise click.ClickException(
            f"cannot listen on {where}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "node started",
        extra={
            "fields": {
                "height": chain.height,
                "listen": "{}:{}".format(*server.address),
                "grpc_port": server.grpc_port,
                "api_auth": api_auth,
                "sync": config.sync,
                "chain_id": config.chain_id,
            }
        },
    )
    sub = chain.subscribe()
    while not stop.is_set():
        item = sub.get(timeout=0.2)
        if item is not None:
            h = item.header
            log.info(
                "block committed",
                extra={
                    "fields": {"height": h.height, "txs": h.tx_count, "hash": h.hash(chain.suite).hex()[:16]}
                },
            )
        if chain.error is not None:
            log.error("producer failed; stopping")
            break
    log.info("stopping: draining the mempool")
    server.stop()
    chain.close()
    log.info("node stopped", extra={"fields": {"height": chain.height}})
    if chain.error is not None:
        sys.exit(1)


@main.group()
def tx() -> None:
    """Build, sign and send transactions."""


@tx.command("send")
@click.argument("kind", type=click.Choice(["transfer", "register"]))
@click.option("--node", "url", type=NODE_URL, default="http://127.0.0.1:7545", show_default=True)
@click.option(
    "--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--chain-id", type=CHAIN_ID, default=1, show_default=True)
@click.option("--to", type=PUBLIC_KEY, help="transfer: recipient public key (64 hex digits).")
@click.option("--amount", type=AMOUNT, help="transfer: amount in minor units.")
@click.option("--new-key", type=PUBLIC_KEY, help="register: the public key to register (64 hex digits).")
@click.option(
    "--role",
    "roles",
    type=click.Choice(ROLES),
    multiple=True,
    help="register: a role of the new account (repeatable).",
)
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for commit.",
)
@passphrase_option
def tx_send(
    kind: str,
    url: str,
    key_file: Path,
    chain_id: int,
    to: bytes | None,
    amount: int | None,
    new_key: bytes | None,
    roles: tuple[str, ...],
    wait_s: float,
    passphrase_env: str,
) -> None:
    """Sign a KIND transaction with --key and send it to a running node."""
    from tierchain.api.rpc import NodeClient

    # Before the key is unsealed or the node asked: a usage error costs nothing.
    if kind == "transfer" and (to is None or amount is None):
        raise click.UsageError("transfer needs --to and --amount")
    if kind == "register" and new_key is None:
        raise click.UsageError("register needs --new-key")
    keys = load_key_file(key_file, read_passphrase(passphrase_env))
    client = NodeClient(url)
    check_key_suite(keys, client.head().get("suite", keys.suite_name), key_file)
    nonce = client.nonce(keys.public_key)
    if kind == "transfer":
        assert to is not None and amount is not None
        t = accounts_app.transfer(chain_id, keys.public_key, nonce, to, amount)
    else:
        assert new_key is not None
        t = accounts_app.register(chain_id, keys.public_key, nonce, new_key, roles)
    reply = client.submit(txcodec.frame([keys.sign_tx(t).encode()]), wait_s=wait_s)
    click.echo(json.dumps(reply, indent=2))
    if reply["codes"][0] != "OK" or (reply.get("receipts") and reply["receipts"][0]["code"] != "OK"):
        sys.exit(1)


def _open_readonly(directory: Path):
    from tierchain.state.storage import Store

    return Store(directory / "db", readonly=True)


def _suite_and_apps(genesis: bytes | None) -> tuple[CryptoSuite, AppSet]:
    """The crypto suite and app set of a stored chain (its genesis), to show its data.

    An app this process cannot load only loses the names of its refusal codes (shown as
    ``REJECT_<code>``) and roles: inspecting needs no app's code, unlike running it."""
    if genesis is None:
        raise click.ClickException("no genesis in the database")
    config = ChainConfig.from_toml(genesis.decode())
    loaded = []
    for name in config.apps:
        try:
            loaded.append(find_app(name))
        except AppError as exc:
            click.echo(f"warning: {exc}; its codes and roles are shown unnamed", err=True)
    return suite_of(config), AppSet(loaded)


@main.group()
def block() -> None:
    """Inspect blocks."""


@block.command("show")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("height", type=HEIGHT, default="head")
def block_show(directory: Path, height: int | None) -> None:
    """Print block HEIGHT (or "head") of the chain in DIRECTORY as JSON."""
    from tierchain.api.rpc import header_json, receipt_json
    from tierchain.wire.batch import decode_batch

    with _open_readonly(directory) as store, store.read() as r:
        suite, app_set = _suite_and_apps(r.get("meta", "genesis"))
        if height is None:
            last = r.last("headers")
            header: Header | None = last[1] if last else None
        else:
            header = r.get("headers", height)
        if header is None:
            raise click.ClickException(f"no block {'head' if height is None else height}")
        b = decode_batch(r.get("blocks", header.height), suite=suite)
        out = {
            "header": header_json(header, suite),
            "txs": [
                {
                    "tx_id": b.digest[i].tobytes().hex(),
                    "op": int(b.op[i]),
                    "sender": b.sender[i].tobytes().hex(),
                    "nonce": int(b.nonce[i]),
                }
                for i in range(len(b))
            ],
            "receipts": [receipt_json(rc, app_set) for rc in r.get("receipts", header.height)],
        }
    click.echo(json.dumps(out, indent=2))


@main.group()
def state() -> None:
    """Inspect state."""


@state.command("get")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("key", type=STATE_KEY)
def state_get(directory: Path, key: bytes) -> None:
    """Print KEY's value in the chain in DIRECTORY as JSON: its hex and, for a known key, decoded.

    KEY: bal/<public key hex>, acct/<public key hex>, nonce/<public key hex>, fv/ fx/ fo/ fq/<id hex>,
    ..., 0x<hex>, or text (docs/operations.md). Absent: exit code 1.
    """
    with _open_readonly(directory) as store, store.read() as r:
        value = writeback_log.reader(r)(key)
        _, app_set = _suite_and_apps(r.get("meta", "genesis"))  # names the roles of every app
    if value is None:
        raise click.ClickException(f"absent: no value at {cli_keys.key_text(key)}")
    out = {
        "key": cli_keys.key_text(key),
        "key_hex": key.hex(),
        "value": value.hex(),
        "decoded": cli_keys.decode_value(key, value, app_set),
    }
    click.echo(json.dumps(out, indent=2))


@state.command("prove")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("key", type=STATE_KEY)
@click.option("--height", type=click.IntRange(0), default=None, help="a retained height (default: the head)")
def state_prove(directory: Path, key: bytes, height: int | None) -> None:
    """Print KEY's value or absence with its proof and header, as JSON (docs/proofs.md).

    KEY takes the forms of ``state get`` (``bal/<public key hex>`` is ``bal/`` then
    32 bytes). "verified" is computed from the printed proof and header bytes,
    decoded as a client decodes them.
    """
    from tierchain import proofs
    from tierchain.state.tree import StateTree

    raw = _parse_key(key)  # STATE_KEY parsed it and bounded it to 1..64 bytes
    with _open_readonly(directory) as store, store.read() as r:
        genesis = r.get("meta", "genesis")
        if genesis is None:
            raise click.ClickException("the database holds no chain")
        suite = suite_of(ChainConfig.from_toml(genesis.decode(), "the stored genesis"))
        if height is None:
            last = r.last("headers")
            if last is None:
                raise click.ClickException("the chain has no blocks")
            height = last[0]
        header = r.get("headers", height)
        if header is None:
            raise click.ClickException(f"no block at height {height}")
        try:
            proof = StateTree(hash=suite.tree_hash).prove(r, raw, height)
        except TierChainError as exc:
            raise click.ClickException(str(exc)) from exc
    proof_bytes, header_bytes = proof.encode(suite=suite.name), header.encode()
    out = {
        "suite": suite.name,
        "key": raw.hex(),
        "height": height,
        "value": None if proof.value is None else proof.value.hex(),
        "proof": proof_bytes.hex(),
        "header": header_bytes.hex(),
        # What a client gets: the printed bytes, decoded and checked by the light client.
        "verified": proofs.verify_state_encoded(header_bytes, proof_bytes, raw, suite=suite.name),
    }
    click.echo(json.dumps(out, indent=2))


@main.command()
@click.argument("directory", nargs=-1, type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("public_key", type=PUBLIC_KEY)
@click.option(
    "--node",
    "url",
    type=NODE_URL,
    default=None,
    help="Ask a running node at this URL instead of reading a DIRECTORY.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    help="--node: seconds to wait for the node.",
)
def balance(directory: tuple[Path, ...], public_key: bytes, url: str | None, timeout_s: float) -> None:
    """Print an account's balance (minor units): balance DIRECTORY PUBLIC_KEY, or --node URL PUBLIC_KEY.

    DIRECTORY is read read-only (committed state); --node asks a running node's HTTP endpoint
    (GET /v1/state/<hex key>). An account that never received anything has balance 0.
    """
    if not ((url is None and len(directory) == 1) or (url is not None and not directory)):
        raise click.UsageError("give one chain DIRECTORY or --node URL (not both), then PUBLIC_KEY")
    key = accounts_app.balance_key(public_key)
    if url is not None:
        from tierchain.api.rpc import NodeClient

        value = NodeClient(url, timeout_s=timeout_s).state(key)
    else:
        with _open_readonly(directory[0]) as store, store.read() as r:
            value = writeback_log.reader(r)(key)
    decoded = {"balance": 0} if value is None else cli_keys.decode_value(key, value)
    if decoded is None or "balance" not in decoded:
        raise click.ClickException(f"damaged balance record {value!r} at {cli_keys.key_text(key)}")
    click.echo(decoded["balance"])


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
def verify(directory: Path) -> None:
    """Re-verify every header, root and signature and re-execute from genesis."""
    from rich.progress import Progress

    from tierchain.engine.verify import verify_chain

    with Progress(transient=True) as progress:
        task = progress.add_task("verifying", total=None)
        report = verify_chain(directory, lambda h, top: progress.update(task, completed=h, total=top))
    if report.ok:
        click.echo(f"OK: {report.height + 1} blocks, {report.txs} transactions verified")
        return
    for p in report.problems:
        click.echo(f"FAIL: {p}", err=True)
    sys.exit(1)


@main.command()
@click.option("--seconds", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True)
@click.option(
    "--net",
    "net_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Drive this running network (`tierchain net init --load-accounts`, `net start`) through "
    "its validators' HTTP APIs instead of a solo chain.",
)
@click.option(
    "--accounts",
    type=click.IntRange(2),
    default=10_000,
    show_default=True,
    help="State size (with --net: the network's, from its net.toml).",
)
@click.option(
    "--txs",
    type=click.IntRange(1),
    default=None,
    help="Pre-signed transactions (default: enough for the run).",
)
@click.option("--threads", type=click.IntRange(1), default=4, show_default=True, help="Submitter threads.")
@click.option(
    "--batch",
    "batch_txs",
    type=click.IntRange(1),
    default=512,
    show_default=True,
    help="Transactions per submit.",
)
@click.option(
    "--inflight",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="Outstanding batches per thread (with --net: each thread's senders split into this many "
    "streams, one batch in flight each).",
)
@click.option(
    "--skew", type=click.FloatRange(0), default=0.0, show_default=True, help="Zipf exponent of recipients."
)
@click.option(
    "--hot-pct",
    type=click.FloatRange(0, 100),
    default=0.0,
    show_default=True,
    help="%% of txs paying one account.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Open loop at this many tx/s (default: closed).",
)
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--block-txs-max", type=click.IntRange(1), default=4096, show_default=True)
@click.option("--block-interval-ms", type=click.IntRange(1), default=20, show_default=True)
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0, 60, min_open=True),
    default=60.0,
    show_default=True,
    help="With --net: seconds a batch may take to commit before it counts as not committed.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cache/tierchain"),
    show_default=True,
    help="Where pre-signed workloads are kept between runs.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JSON here.")
@crypto_option
@click.pass_context
def load(
    ctx: click.Context,
    seconds: float,
    net_dir: Path | None,
    accounts: int,
    txs: int | None,
    threads: int,
    batch_txs: int,
    inflight: int,
    skew: float,
    hot_pct: float,
    rate: float | None,
    sync: str,
    block_txs_max: int,
    block_interval_ms: int,
    wait_s: float,
    cache_dir: Path,
    out: Path | None,
    crypto: str,
) -> None:
    """Run a solo chain (embedded) under a transfer load and report committed TPS and latency.

    With --net DIR, drive a running network instead: the same workload (senders' keys from
    the seed its net.toml records) through its validators' TierChain HTTP APIs, the same
    figures (latency: submit to commit on the node the batch was sent to)."""
    import dataclasses

    from tierchain.tools.loadgen import net_target, run_load, run_load_net, transfer_workload

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT

    spec_args: dict = {"crypto": crypto}
    if net_dir is not None:
        for name in ("sync", "block_txs_max", "block_interval_ms", "crypto"):
            if given(name):
                raise click.UsageError(
                    f"--{name.replace('_', '-')} is the network's (its chain.toml), not --net's"
                )
        net, config = net_target(net_dir)
        recorded = net.workload
        if given("accounts") and accounts != recorded.accounts:
            raise click.UsageError(
                f"--accounts {accounts}: the network's genesis funds {recorded.accounts} (net.toml)"
            )
        accounts = recorded.accounts
        spec_args = {
            "senders": recorded.senders,
            "seed": recorded.seed,
            "chain_id": config.chain_id,
            "crypto": config.crypto,  # the network's suite: its senders' keys and signatures
        }
        txs = txs or int(seconds * 12_000) + 4096
    elif given("wait_s"):
        raise click.UsageError("--wait applies only with --net")
    txs = txs or int(seconds * 25_000)
    click.echo(f"preparing {txs:,} signed transfers among {accounts:,} accounts (cached in {cache_dir}) ...")
    t0 = time.perf_counter()
    work = transfer_workload(
        accounts, txs, threads, cache_dir=cache_dir, skew=skew, hot_pct=hot_pct, **spec_args
    )
    where = f"network {net_dir}" if net_dir is not None else f"sync={sync}"
    click.echo(
        f"ready in {time.perf_counter() - t0:.1f}s; running {seconds:.0f}s, {where}"
        + ("  [sync=none: NOT DURABLE, benchmark only]" if net_dir is None and sync == "none" else "")
    )

    def show(p: dict) -> None:
        if p.get("draining"):  # the last report: the window closed, batches in flight settle
            click.echo(f"t={p['t_s']:5.1f}s  load stopped; waiting for the transactions in flight ...")
            return
        mempool = "-" if p.get("mempool", -1) < 0 else f"{p['mempool']:,}"
        click.echo(
            f"t={p['t_s']:5.1f}s  committed={p['committed']:>9,}  tps={p['tps']:>8,.0f}  "
            f"p50={p['latency_ms_p50']:6.1f}ms  p99={p['latency_ms_p99']:6.1f}ms  "
            f"height={p['height']:>6}  mempool={mempool:>6}"
        )

    common = dict(seconds=seconds, batch_txs=batch_txs, inflight=inflight, rate=rate, report=show)
    if net_dir is not None:
        result = run_load_net(work, net_dir, wait_s=wait_s, **common)
    else:
        result = run_load(
            work, sync=sync, block_txs_max=block_txs_max, block_interval_ms=block_interval_ms, **common
        )
    click.echo(result.summary())
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dataclasses.asdict(result), indent=2) + "\n")


from tierchain.cli.finance import finance as finance_group  # noqa: E402

main.add_command(finance_group)

from tierchain.cli.bills import bills as bills_group  # noqa: E402

main.add_command(bills_group)

from tierchain.cli.abs import abs_group  # noqa: E402

main.add_command(abs_group)

from tierchain.cli.receipts import receipts as receipts_group  # noqa: E402

main.add_command(receipts_group)

from tierchain.cli.sharing import sharing as sharing_group  # noqa: E402

main.add_command(sharing_group)

from tierchain.cli.tradefin import tradefin as tradefin_group  # noqa: E402

main.add_command(tradefin_group)

from tierchain.cli.cluster import cluster as cluster_group  # noqa: E402
from tierchain.cli.cluster import shard as shard_group  # noqa: E402

main.add_command(cluster_group)
main.add_command(shard_group)

from tierchain.cli.net import net as net_group  # noqa: E402

main.add_command(net_group)


def run() -> None:
    """The console entry point. ``main``'s group class (``cli.errors.TierChainGroup``) is the
    last-resort handler: every failure is one line on stderr with exit code 2 (arguments,
    configuration) or 1 (while running); a traceback only for a bug under --log-level debug."""
    main()


if __name__ == "__main__":
    run()
