"""``tierchain net init|start|stop|status`` and ``tierchain net node run`` (docs/replication.md).

A network of TierChain nodes on CometBFT, on loopback, laid out in one directory by
``net init`` (one home per node, ``tierchain.replication.net``). ``net node run HOME``
runs one node in the foreground from its home: how ``net start`` runs each node
(detached), and how an institution runs its own node of an existing network.

Exit codes: 0 success; 2 bad arguments or configuration (a missing or malformed
net.toml / node.toml, a non-empty directory to init); 1 a failure while running (a
node that does not start, CometBFT that exits, an app that fails in consensus, a node
that had to be killed by ``net stop``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tierchain.cli.errors import CommandFailed
from tierchain.cli.types import (
    BALANCE,
    CHAIN_ID,
    crypto_option,
    extra_apps_option,
    passphrase_option,
    read_passphrase,
)
from tierchain.replication import net as netlib

net_dir = click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
node_names = click.option(
    "--node", "names", multiple=True, help="Only this node, by name (repeatable; default: every node)."
)
wait_option = click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0, 3600, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the nodes.",
)


@click.group("net")
def net() -> None:
    """A network of TierChain nodes on CometBFT (validators, full nodes, observers)."""


@net.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--validators", type=click.IntRange(1, netlib.nodes_max), required=True, help="Voting nodes.")
@click.option(
    "--full-nodes",
    type=click.IntRange(0, netlib.nodes_max),
    default=0,
    show_default=True,
    help="Nodes that replicate and serve queries, without a vote.",
)
@click.option(
    "--observers",
    type=click.IntRange(0, netlib.nodes_max),
    default=0,
    show_default=True,
    help="Read-only nodes: they replicate and serve queries, and take no transaction.",
)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65535),
    default=netlib.DEFAULT_BASE_PORT,
    show_default=True,
    help="Node i listens on BASE+10i (p2p), +1 (CometBFT RPC), +2 (TierChain HTTP API).",
)
@click.option(
    "--chain-id", type=CHAIN_ID, default=1, show_default=True, help='CometBFT\'s is "tierchain-ID".'
)
@click.option(
    "--timeout-commit-ms",
    type=click.IntRange(1, 60_000),
    default=netlib.DEFAULT_TIMEOUT_COMMIT_MS,
    show_default=True,
    help="CometBFT's consensus.timeout_commit.",
)
@click.option(
    "--balance",
    type=BALANCE,
    default=10**15,
    show_default=True,
    help="Genesis balance of each node's account (minor units).",
)
@click.option(
    "--block-txs-max",
    type=click.IntRange(1, 65536),
    default=netlib.DEFAULT_BLOCK_TXS_MAX,
    show_default=True,
    help="Transactions per block at most (the engine's chain.block_txs_max).",
)
@extra_apps_option
@click.option(
    "--load-accounts",
    type=click.IntRange(2, 1 << 27),
    default=None,
    help="Fund `tierchain load --net`'s transfer workload of this many accounts in genesis "
    "(its senders, and synthetic recipients for the rest); recorded in net.toml [load].",
)
@click.option(
    "--load-senders",
    type=click.IntRange(1, 1 << 27),
    default=4096,
    show_default=True,
    help="Of those accounts, how many sign (keys derived from --load-seed).",
)
@click.option(
    "--load-seed",
    type=click.IntRange(0, (1 << 63) - 1),
    default=7,
    show_default=True,
    help="The workload's seed.",
)
@crypto_option
@passphrase_option
@click.pass_context
def net_init(
    ctx: click.Context,
    directory: Path,
    validators: int,
    full_nodes: int,
    observers: int,
    base_port: int,
    chain_id: int,
    timeout_commit_ms: int,
    balance: int,
    block_txs_max: int,
    extra_apps: tuple[str, ...],
    load_accounts: int | None,
    load_senders: int,
    load_seed: int,
    crypto: str,
    passphrase_env: str,
) -> None:
    """Lay out a new network in DIRECTORY (absent or empty): net.toml and one home per node.

    With --load-accounts, its genesis also funds the transfer workload `tierchain load
    --net DIRECTORY` signs (the same deterministic keys as `tierchain load`).

    --crypto is the chain's suite (its engine keys, signatures and hashes); CometBFT's
    consensus and p2p keys stay Ed25519 in every suite."""
    # Arguments first: a bad one is refused before the passphrase is asked for.
    netlib.node_specs(validators, full_nodes, observers, base_port)
    load = None
    if load_accounts is not None:
        load = netlib.NetLoad(load_accounts, load_senders, load_seed, crypto)
    else:
        for name in ("load_senders", "load_seed"):
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
                raise click.UsageError(f"--{name.replace('_', '-')} applies only with --load-accounts")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise click.UsageError(f"{directory} is not an empty directory: refusing to init a network into it")
    spec = netlib.init(
        directory,
        validators=validators,
        full=full_nodes,
        observers=observers,
        base_port=base_port,
        chain_id=chain_id,
        timeout_commit_ms=timeout_commit_ms,
        balance=balance,
        passphrase=read_passphrase(passphrase_env, confirm=True),
        apps=extra_apps,
        block_txs_max=block_txs_max,
        load=load,
        crypto=crypto,
    )
    click.echo(f"network {spec.chain_id} ({crypto}) created in {directory}: {len(spec.nodes)} nodes")
    if load is not None:
        click.echo(
            f"  genesis funds `tierchain load --net`: {min(load.senders, load.accounts):,} senders "
            f"of {load.accounts:,} accounts (seed {load.seed})"
        )
    for n in spec.nodes:
        s = n.spec
        click.echo(f"  {s.name:<12} {s.role:<9} p2p {s.p2p_port}  rpc {s.rpc_port}  api {s.api_port}")


@net.command("start")
@net_dir
@node_names
@wait_option
@passphrase_option
@click.pass_context
def net_start(
    ctx: click.Context, directory: Path, names: tuple[str, ...], wait_s: float, passphrase_env: str
) -> None:
    """Start every node of the network in DIRECTORY that is not running (detached).

    Each runs `tierchain net node run HOME`, its log in HOME/logs/node.log; the command
    returns once each started node's CometBFT RPC answers (at most --wait seconds)."""
    spec = netlib.NetSpec.load(directory)
    nodes = spec.select(names)
    passphrase = read_passphrase(passphrase_env)
    log_level = ctx.find_root().params.get("log_level") or "info"
    results = netlib.start(spec, passphrase_env, passphrase, nodes=nodes, wait_s=wait_s, log_level=log_level)
    failed = []
    for r in results:
        if r.error is not None:
            failed.append(r.node.name)
            click.echo(f"{r.node.name}: FAILED: {r.error}", err=True)
        elif r.started:
            click.echo(f"{r.node.name}: started (pid {r.pid}, rpc {r.node.spec.rpc_url})")
        else:
            click.echo(f"{r.node.name}: already running (pid {r.pid})")
    if failed:
        raise CommandFailed(f"{len(failed)} of {len(results)} nodes did not start: {', '.join(failed)}")


@net.command("stop")
@net_dir
@node_names
@wait_option
def net_stop(directory: Path, names: tuple[str, ...], wait_s: float) -> None:
    """Stop the running nodes of the network in DIRECTORY: SIGTERM, then SIGKILL after --wait."""
    spec = netlib.NetSpec.load(directory)
    results = netlib.stop(spec, nodes=spec.select(names), wait_s=wait_s)
    for r in results:
        if r.killed:
            click.echo(f"{r.node.name}: killed (did not stop in {wait_s:.0f}s)", err=True)
        elif r.pid is not None:
            click.echo(f"{r.node.name}: stopped (pid {r.pid})")
        else:
            click.echo(f"{r.node.name}: not running")
    if killed := [r.node.name for r in results if r.killed]:
        raise CommandFailed(f"killed, not stopped cleanly: {', '.join(killed)}")


@net.command("status")
@net_dir
@node_names
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per node.")
def net_status(directory: Path, names: tuple[str, ...], as_json: bool) -> None:
    """Each node's pid, height, hashes and peers, from its CometBFT RPC (null when it is down)."""
    spec = netlib.NetSpec.load(directory)
    rows = netlib.status(spec, spec.select(names))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{spec.chain_id} ({directory})")
    for key in netlib.STATUS_KEYS:
        table.add_column(key, justify="right" if key in ("pid", "height", "peers") else "left")

    def cell(key: str, value: object) -> str:
        if value is None:
            return "-"
        if key in ("block_hash", "app_hash"):
            return str(value)[:16]
        return str(value).lower() if isinstance(value, bool) else str(value)

    for row in rows:
        table.add_row(*(cell(k, row[k]) for k in netlib.STATUS_KEYS))
    Console(file=sys.stdout, width=max(120, Console().width)).print(table)


@net.group("node")
def net_node() -> None:
    """Run one node of a network from its home."""


@net_node.command("run")
@click.argument("home", type=click.Path(file_okay=False, exists=True, path_type=Path))
@passphrase_option
def net_node_run(home: Path, passphrase_env: str) -> None:
    """Run the node whose home is HOME in the foreground until SIGTERM or SIGINT.

    Its app behind HOME/abci.sock, then `cometbft start` (log: HOME/logs/cometbft.log).
    It stops CometBFT first, then the app. Exit code 1 if CometBFT exits on its own or
    the app fails in consensus."""
    netlib.NodeSpec.load(home)  # a home that is none is refused before the passphrase is asked for
    code = netlib.run_node(home, read_passphrase(passphrase_env))
    if code:
        sys.exit(code)
