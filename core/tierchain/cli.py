"""``tierchain``: the operator CLI (docs/operations.md)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from tierchain import ops, state_log, wire
from tierchain.block import Header
from tierchain.config import ChainConfig, ConfigError, GenesisAccount
from tierchain.crypto import KeyFileError, KeyPair, load_key_file, save_key_file
from tierchain.errors import TierChainError

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


def _passphrase(env: str, confirm: bool = False) -> str:
    value = os.environ.get(env)
    if value:
        return value
    return click.prompt("Key passphrase", hide_input=True, confirmation_prompt=confirm)


def _load_node(directory: Path, passphrase_env: str) -> tuple[ChainConfig, KeyPair]:
    config = ChainConfig.load(directory / CONFIG_NAME)
    keys = load_key_file(directory / config.key_file, _passphrase(passphrase_env))
    return config, keys


def _parse_key(text: str) -> bytes:
    """A state key given as hex (``0x…``) or as text (``acct/…``)."""
    return bytes.fromhex(text[2:]) if text.startswith("0x") else text.encode()


passphrase_option = click.option(
    "--passphrase-env",
    default="TIERCHAIN_PASSPHRASE",
    show_default=True,
    help="Environment variable holding the key passphrase (prompted for if unset).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
def main(log_level: str) -> None:
    """TierChain: a parallel ledger core for consortium supply-chain finance."""
    _setup_logging(log_level)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--chain-id", type=int, default=1, show_default=True)
@click.option(
    "--sync",
    type=click.Choice(["full", "none"]),
    default="full",
    show_default=True,
    help='"none" loses durability: benchmarks only.',
)
@click.option(
    "--balance",
    type=int,
    default=10**15,
    show_default=True,
    help="Genesis balance of the node's own account (minor units).",
)
@click.option("--block-txs-max", type=int, default=4096, show_default=True)
@click.option("--block-interval-ms", type=int, default=20, show_default=True)
@passphrase_option
def init(
    directory: Path,
    chain_id: int,
    sync: str,
    balance: int,
    block_txs_max: int,
    block_interval_ms: int,
    passphrase_env: str,
) -> None:
    """Create a solo chain in DIRECTORY: chain.toml and a sealed node key."""
    if (directory / CONFIG_NAME).exists():
        raise click.ClickException(f"{directory / CONFIG_NAME} exists; refusing to overwrite a chain")
    directory.mkdir(parents=True, exist_ok=True)
    keys = KeyPair.generate()
    config = ChainConfig(
        chain_id=chain_id,
        sync=sync,
        block_txs_max=block_txs_max,
        block_interval_ms=block_interval_ms,
        genesis_timestamp_ms=int(time.time() * 1000),
        genesis_accounts=(GenesisAccount(keys.public_key, ("registrar", "committee"), balance),),
    )
    save_key_file(directory / config.key_file, keys, _passphrase(passphrase_env, confirm=True))
    (directory / CONFIG_NAME).write_text(config.to_toml())
    click.echo(f"chain {chain_id} created in {directory}; node key {keys.public_key.hex()}")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@passphrase_option
def keygen(path: Path, passphrase_env: str) -> None:
    """Create a new sealed key file at PATH and print its public key."""
    if path.exists():
        raise click.ClickException(f"{path} exists")
    keys = KeyPair.generate()
    save_key_file(path, keys, _passphrase(passphrase_env, confirm=True))
    click.echo(keys.public_key.hex())


@main.group()
def node() -> None:
    """Run a node."""


@node.command("run")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--listen", default="127.0.0.1:7545", show_default=True, help="HOST:PORT of the HTTP endpoint.")
@passphrase_option
def node_run(directory: Path, listen: str, passphrase_env: str) -> None:
    """Run the solo node in DIRECTORY until SIGTERM or SIGINT (then drain and stop)."""
    from tierchain.chain import Chain
    from tierchain.rpc import NodeServer

    log = logging.getLogger("tierchain.node")
    config, keys = _load_node(directory, passphrase_env)
    host, _, port = listen.rpartition(":")
    chain = Chain(directory, config, keys)
    server = NodeServer(chain, host or "127.0.0.1", int(port))
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "node started",
        extra={
            "fields": {
                "height": chain.height,
                "listen": f"{host}:{port}",
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
                extra={"fields": {"height": h.height, "txs": h.tx_count, "hash": h.hash().hex()[:16]}},
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
@click.option("--node", "url", default="http://127.0.0.1:7545", show_default=True)
@click.option(
    "--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--chain-id", type=int, default=1, show_default=True)
@click.option("--to", help="transfer: recipient public key (hex).")
@click.option("--amount", type=int, help="transfer: amount in minor units.")
@click.option("--new-key", help="register: the public key to register (hex).")
@click.option("--role", "roles", multiple=True, help="register: a role of the new account (repeatable).")
@click.option(
    "--wait", "wait_s", type=float, default=10.0, show_default=True, help="Seconds to wait for commit."
)
@passphrase_option
def tx_send(
    kind: str,
    url: str,
    key_file: Path,
    chain_id: int,
    to: str | None,
    amount: int | None,
    new_key: str | None,
    roles: tuple[str, ...],
    wait_s: float,
    passphrase_env: str,
) -> None:
    """Sign a KIND transaction with --key and send it to a running node."""
    from tierchain.rpc import NodeClient

    keys = load_key_file(key_file, _passphrase(passphrase_env))
    client = NodeClient(url)
    nonce = client.nonce(keys.public_key)
    if kind == "transfer":
        if not to or amount is None:
            raise click.UsageError("transfer needs --to and --amount")
        t = ops.transfer(chain_id, keys.public_key, nonce, bytes.fromhex(to), amount)
    else:
        if not new_key:
            raise click.UsageError("register needs --new-key")
        t = ops.register(chain_id, keys.public_key, nonce, bytes.fromhex(new_key), roles)
    reply = client.submit(wire.frame([keys.sign_tx(t).encode()]), wait_s=wait_s)
    click.echo(json.dumps(reply, indent=2))
    if reply["codes"][0] != "OK" or (reply.get("receipts") and reply["receipts"][0]["code"] != "OK"):
        sys.exit(1)


def _open_readonly(directory: Path):
    from tierchain.storage import Store

    return Store(directory / "db", readonly=True)


@main.group()
def block() -> None:
    """Inspect blocks."""


@block.command("show")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("height", default="head")
def block_show(directory: Path, height: str) -> None:
    """Print block HEIGHT (or "head") of the chain in DIRECTORY as JSON."""
    from tierchain.batch import decode_batch
    from tierchain.rpc import header_json, receipt_json

    with _open_readonly(directory) as store, store.read() as r:
        if height == "head":
            last = r.last("headers")
            header: Header | None = last[1] if last else None
        else:
            header = r.get("headers", int(height))
        if header is None:
            raise click.ClickException(f"no block {height}")
        b = decode_batch(r.get("blocks", header.height))
        out = {
            "header": header_json(header),
            "txs": [
                {
                    "tx_id": b.digest[i].tobytes().hex(),
                    "op": int(b.op[i]),
                    "sender": b.sender[i].tobytes().hex(),
                    "nonce": int(b.nonce[i]),
                }
                for i in range(len(b))
            ],
            "receipts": [receipt_json(rc) for rc in r.get("receipts", header.height)],
        }
    click.echo(json.dumps(out, indent=2))


@main.group()
def state() -> None:
    """Inspect state."""


@state.command("get")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("key")
def state_get(directory: Path, key: str) -> None:
    """Print the value of KEY (text, or hex as 0x…) in the chain in DIRECTORY."""
    with _open_readonly(directory) as store, store.read() as r:
        value = state_log.reader(r)(_parse_key(key))
    if value is None:
        raise click.ClickException("absent")
    click.echo(value.hex())


@state.command("prove")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("key")
@click.option("--height", type=int, default=None, help="a retained height (default: the head)")
def state_prove(directory: Path, key: str, height: int | None) -> None:
    """Print KEY's value or absence with its proof and header, as JSON (docs/proofs.md)."""
    from tierchain import proofs
    from tierchain.state_tree import StateTree

    with _open_readonly(directory) as store, store.read() as r:
        height = r.last("headers")[0] if height is None else height
        header = r.get("headers", height)
        if header is None:
            raise click.ClickException(f"no block at height {height}")
        try:
            proof = StateTree().prove(r, _parse_key(key), height)
        except TierChainError as exc:
            raise click.ClickException(str(exc)) from exc
    out = {
        "height": height,
        "value": None if proof.value is None else proof.value.hex(),
        "proof": proof.encode().hex(),
        "header": header.encode().hex(),
        "verified": proofs.verify_state(header.encode(), proof, _parse_key(key)),
    }
    click.echo(json.dumps(out, indent=2))


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
def verify(directory: Path) -> None:
    """Re-verify every header, root and signature and re-execute from genesis."""
    from rich.progress import Progress

    from tierchain.verify import verify_chain

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
@click.option("--seconds", type=float, default=30.0, show_default=True)
@click.option("--accounts", type=int, default=10_000, show_default=True)
@click.option("--txs", type=int, default=None, help="Pre-signed transactions (default: enough for the run).")
@click.option("--threads", type=int, default=4, show_default=True, help="Submitter threads.")
@click.option(
    "--batch", "batch_txs", type=int, default=512, show_default=True, help="Transactions per submit."
)
@click.option("--inflight", type=int, default=8, show_default=True, help="Outstanding batches per thread.")
@click.option("--skew", type=float, default=0.0, show_default=True, help="Zipf exponent of recipients.")
@click.option("--hot-pct", type=float, default=0.0, show_default=True, help="%% of txs paying one account.")
@click.option("--rate", type=float, default=None, help="Open loop at this many tx/s (default: closed).")
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--block-txs-max", type=int, default=4096, show_default=True)
@click.option("--block-interval-ms", type=int, default=20, show_default=True)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cache/tierchain"),
    show_default=True,
    help="Where pre-signed workloads are kept between runs.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JSON here.")
def load(
    seconds: float,
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
    cache_dir: Path,
    out: Path | None,
) -> None:
    """Run a solo chain (embedded) under a transfer load and report committed TPS and latency."""
    import dataclasses

    from tierchain.loadgen import run_load, transfer_workload

    txs = txs or int(seconds * 25_000)
    click.echo(f"preparing {txs:,} signed transfers among {accounts:,} accounts (cached in {cache_dir}) ...")
    t0 = time.perf_counter()
    work = transfer_workload(accounts, txs, threads, cache_dir=cache_dir, skew=skew, hot_pct=hot_pct)
    click.echo(
        f"ready in {time.perf_counter() - t0:.1f}s; running {seconds:.0f}s, sync={sync}"
        + ("  [sync=none: NOT DURABLE, benchmark only]" if sync == "none" else "")
    )

    def show(p: dict) -> None:
        click.echo(
            f"t={p['t_s']:5.1f}s  committed={p['committed']:>9,}  tps={p['tps']:>8,.0f}  "
            f"p50={p['latency_ms_p50']:6.1f}ms  p99={p['latency_ms_p99']:6.1f}ms  "
            f"height={p['height']:>6}  mempool={p['mempool']:>6}"
        )

    result = run_load(
        work,
        seconds=seconds,
        batch_txs=batch_txs,
        inflight=inflight,
        rate=rate,
        sync=sync,
        block_txs_max=block_txs_max,
        block_interval_ms=block_interval_ms,
        report=show,
    )
    click.echo(
        f"committed {result.committed:,} txs in {result.seconds:.1f}s = {result.tps:,.0f} TPS "
        f"(sync={sync}); latency p50 {result.latency_ms_p50:.1f} ms, p95 {result.latency_ms_p95:.1f} ms, "
        f"p99 {result.latency_ms_p99:.1f} ms; rejected {result.rejected}, failed {result.failed}"
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dataclasses.asdict(result), indent=2) + "\n")


from tierchain.cli_finance import finance as finance_group  # noqa: E402

main.add_command(finance_group)

from tierchain.cli_cluster import cluster as cluster_group  # noqa: E402
from tierchain.cli_cluster import shard as shard_group  # noqa: E402

main.add_command(cluster_group)
main.add_command(shard_group)


def run() -> None:
    try:
        main()
    except (ConfigError, KeyFileError, TierChainError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    run()
