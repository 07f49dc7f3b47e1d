"""``tierchain shard serve`` and ``tierchain cluster start|stop|status`` (docs/operations.md).

A cluster is described by one TOML file (``tierchain.sharding.config``). ``cluster
start FILE`` runs the scheduler in the foreground: it starts the local shard
processes, dials the remote ones (each a ``shard serve`` on its host, reading the
same file) and answers on a control endpoint — gRPC, two unary methods with JSON
replies, ``/tierchain.Control/Status`` and ``/tierchain.Control/Stop`` — that
``cluster status FILE`` and ``cluster stop FILE`` use from another terminal.
With a ``coordinator_key_file`` the scheduler also runs, in the background, the
cross-shard coordinator and, when the base chain's apps have replicated records, the
replicator (``tierchain.apps.coordinator``); ``status`` shows how each is doing.

Exit codes: 0 success; 1 a failure while running (``tierchain.cli.errors``: a key
file that does not open, a control endpoint in use), a shard is down (``status``)
or the scheduler did not stop in time (``stop``); 2 bad configuration or usage;
3 the cluster or a shard is unreachable (``start``: a local shard did not start,
or a remote one did not answer or serves another chain; ``status``/``stop``: no
scheduler answers on the control endpoint).

Crypto suites: a cluster runs the suite of its base chain config (``[chain] crypto``),
every shard alike. The proposer key file and the coordinator's must hold keys of that
suite; another suite's key is refused before anything starts, naming both (exit 1).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from tierchain.cli.errors import CommandFailed
from tierchain.cli.types import HOST_PORT, check_key_suite, passphrase_option, read_passphrase
from tierchain.config import ConfigError
from tierchain.crypto import KeyFileError, load_key_file
from tierchain.sharding.config import ClusterSpec

CONTROL_SERVICE = "tierchain.Control"
control_reply_bytes_max = 4 << 20
EXIT_DOWN, EXIT_CONFIG, EXIT_UNREACHABLE = 1, 2, 3
coordinator_interval_s = 0.05  # the coordinator's sleep after an idle step
replicator_interval_s = 0.25  # the replicator's: a replicated record's extra lag, at most
courier_interval_s = 0.25  # the claim courier's: a claimed document's extra wait, at most

log = logging.getLogger("tierchain.cluster")


class Unreachable(click.ClickException):
    exit_code = EXIT_UNREACHABLE


class BadConfig(click.ClickException):
    exit_code = EXIT_CONFIG


def _fields(**kw: Any) -> dict:
    return {"fields": kw}


def _load(spec_path: Path) -> ClusterSpec:
    try:
        return ClusterSpec.load(spec_path)
    except ConfigError as exc:
        raise BadConfig(str(exc)) from exc


def _keys(spec: ClusterSpec, passphrase_env: str, crypto: str, path: Path | None = None):
    """The key pair in ``path`` (default: the proposer's), which must be of the suite ``crypto``
    (the cluster's): the shards derive their proposer keys from its seed in that suite."""
    path = path or spec.key_file
    try:
        keys = load_key_file(path, read_passphrase(passphrase_env))
    except KeyFileError as exc:  # a runtime failure (exit 1), named with its file
        raise CommandFailed(f"{path}: {exc}") from exc
    check_key_suite(keys, crypto, path)
    return keys


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


cluster_file = click.argument("cluster_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))


# --- shard serve ----------------------------------------------------------------------------


@click.group()
def shard() -> None:
    """Run one shard of a cluster behind a network endpoint."""


@shard.command("serve")
@click.option(
    "--cluster",
    "spec_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The cluster's TOML file (the same on every host).",
)
@click.option(
    "--index", type=click.IntRange(0), required=True, help="Which shard of the cluster this is (0-based)."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The shard's data directory (default: <root>/shard-<index> of the cluster file).",
)
@click.option(
    "--listen",
    type=HOST_PORT,
    default="127.0.0.1:7601",
    show_default=True,
    help="The gRPC endpoint's address.",
)
@passphrase_option
def shard_serve(
    spec_path: Path, index: int, directory: Path | None, listen: str, passphrase_env: str
) -> None:
    """Serve shard INDEX of a cluster until SIGTERM or SIGINT (then drain and stop)."""
    from tierchain.engine.chain import Chain
    from tierchain.sharding.cluster import shard_configs
    from tierchain.sharding.server import ShardServer

    slog = logging.getLogger("tierchain.shard")
    spec = _load(spec_path)
    if not 0 <= index < spec.n_shards:
        raise click.BadParameter(f"the cluster has shards 0..{spec.n_shards - 1}", param_hint="--index")
    try:
        config = shard_configs(spec.base(), spec.n_shards)[index]
    except (ConfigError, ValueError) as exc:
        raise BadConfig(str(exc)) from exc
    keys = _keys(spec, passphrase_env, config.crypto)
    directory = directory or spec.shard_dir(index)
    stop = threading.Event()
    _stop_on_signals(stop)
    chain = Chain(directory, config, keys)
    try:
        server = ShardServer(chain, listen).start()
    except BaseException:
        chain.close()
        raise
    slog.info(
        "shard serving",
        extra=_fields(
            shard=index,
            listen=server.listen,
            height=chain.height,
            chain_id=config.chain_id,
            dir=str(directory),
        ),
    )
    sub = chain.subscribe()
    while not stop.is_set():
        item = sub.get(timeout=0.2)
        if item is not None:
            h = item.header
            slog.info("block committed", extra=_fields(height=h.height, txs=h.tx_count))
        if chain.error is not None:
            slog.error("producer failed; stopping")
            break
    slog.info("stopping: draining the mempool")
    chain.close()  # while the stream is up, so the scheduler hears of every commit
    server.stop()
    slog.info("shard stopped", extra=_fields(shard=index, height=chain.height))
    if chain.error is not None:
        sys.exit(1)


# --- control endpoint -------------------------------------------------------------------------


class ControlServer:
    """gRPC unary Status/Stop for a running scheduler; replies are JSON objects."""

    def __init__(self, listen: str, status: Any, stop: threading.Event) -> None:
        import grpc

        self._status, self._stop = status, stop
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="control"),
            options=[("grpc.so_reuseport", 0)],
        )
        handlers = {
            "Status": grpc.unary_unary_rpc_method_handler(self._on_status),
            "Stop": grpc.unary_unary_rpc_method_handler(self._on_stop),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(CONTROL_SERVICE, handlers),)
        )
        try:
            port = self._server.add_insecure_port(listen)
        except RuntimeError:
            port = 0
        if not port:
            raise CommandFailed(
                f"cannot listen on control endpoint {listen} (in use: is this cluster running?)"
            )
        self._server.start()

    def _on_status(self, request: bytes, context: Any) -> bytes:
        return json.dumps(self._status()).encode()

    def _on_stop(self, request: bytes, context: Any) -> bytes:
        log.info("stop requested", extra=_fields(peer=context.peer()))
        self._stop.set()
        return json.dumps({"stopping": True}).encode()

    def close(self) -> None:
        self._server.stop(0.5).wait()


def control_call(endpoint: str, method: str, timeout: float) -> dict:
    """One control request; ``Unreachable`` if no scheduler answers at ``endpoint``."""
    import grpc

    options = [("grpc.max_receive_message_length", control_reply_bytes_max)]
    with grpc.insecure_channel(endpoint, options=options) as channel:
        rpc = channel.unary_unary(f"/{CONTROL_SERVICE}/{method}")
        try:
            raw = rpc(b"", timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as exc:
            raise Unreachable(
                f"no cluster answers at {endpoint} ({exc.code().name}); is `tierchain cluster start` running?"
            ) from exc
    try:
        reply = json.loads(raw)
    except ValueError as exc:
        raise Unreachable(f"{endpoint} is not a cluster control endpoint") from exc
    if not isinstance(reply, dict):
        raise Unreachable(f"{endpoint} is not a cluster control endpoint")
    return reply


# --- cluster start | status | stop ------------------------------------------------------------


@click.group()
def cluster() -> None:
    """Start, inspect and stop a cluster described by a TOML file."""


@cluster.command("start")
@cluster_file
@passphrase_option
def cluster_start(cluster_file: Path, passphrase_env: str) -> None:
    """Run the cluster's scheduler in the foreground until SIGTERM, SIGINT or `cluster stop`."""
    from tierchain.sharding.cluster import Cluster, ShardUnavailable

    spec = _load(cluster_file)
    try:
        base = spec.base()
    except ConfigError as exc:
        raise BadConfig(str(exc)) from exc
    keys = _keys(spec, passphrase_env, base.crypto)
    coord_key = (
        _keys(spec, passphrase_env, base.crypto, spec.coordinator_key_file)
        if spec.coordinator_key_file
        else None
    )
    stop = threading.Event()
    state: dict[str, Any] = {
        "state": "starting",
        "cluster": None,
        "coordinator": None,
        "replicator": None,
        "courier": None,
    }

    def status() -> dict:
        c, coord = state["cluster"], state["coordinator"]
        last = coord.last if coord is not None else None
        return {
            "state": state["state"],
            "pid": os.getpid(),
            "control": spec.control,
            "n_shards": spec.n_shards,
            "shards": c.status() if c is not None else [],
            "coordinator": None
            if coord is None
            else {
                "pending_locks": last.pending_locks if last else None,
                "pending_credits": last.pending_credits if last else None,
            },
            "replicator": _replicator_status(state["replicator"]),
            "courier": _courier_status(state["courier"]),
        }

    control = ControlServer(spec.control, status, stop)  # first: refuses a second scheduler
    _stop_on_signals(stop)
    try:
        log.info(
            "cluster starting",
            extra=_fields(
                shards=[s or "local" for s in spec.shards], control=spec.control, root=str(spec.root)
            ),
        )
        try:
            c = Cluster(spec.root, base, keys.seed, spec.n_shards, **spec.cluster_kwargs())
        except ShardUnavailable as exc:
            raise Unreachable(str(exc)) from exc
        if coord_key is not None:
            from tierchain.apps import xshard
            from tierchain.apps.coordinator import Coordinator, Replicator
            from tierchain.engine.apps import resolve as resolve_apps

            state["coordinator"] = Coordinator(c, coord_key)
            state["coordinator"].start(coordinator_interval_s)
            app_set = resolve_apps(base.apps)
            if xshard.replicated_prefixes(app_set):  # e.g. finance's committee records
                state["replicator"] = Replicator(c, coord_key)
                state["replicator"].start(replicator_interval_s)
            if any("finance" in (a.name, *a.provides) for a in app_set.apps):
                from tierchain.apps.finance.courier import ClaimCourier

                state["courier"] = ClaimCourier(c, coord_key)  # documents' claims to their lineage
                state["courier"].start(courier_interval_s)
        if spec.api_listen or spec.grpc_listen:  # the network API over the whole cluster (docs/api.md)
            state["api"] = _serve_api(c, spec, state)
        state.update(state="running", cluster=c)
        log.info(
            "cluster running",
            extra=_fields(
                heights=[s["height"] for s in c.status()], pids=[c.pid(i) for i in range(c.n_shards)]
            ),
        )
        while not stop.wait(0.5):
            pass
        state["state"] = "stopping"
        for server in state.get("api") or ():  # no new calls while the shards drain
            server.stop()
        for driver in ("courier", "replicator", "coordinator"):  # each ends once its step under way has
            if state[driver] is not None:
                state[driver].stop()  # pending transfers and stale copies: on chain for the next start
        log.info("stopping: draining the shards")
        c.close()
        log.info("cluster stopped", extra=_fields(heights=[s["height"] for s in c.status()]))
    finally:
        control.close()


def _replicator_status(rep: Any) -> dict | None:
    """Replication health, from what the replicator's loop kept (``coordinator.StepLoop``):
    ``synced_height`` is the primary height of the last snapshot every shard was found to
    hold (its last idle step), ``idle_at`` that step's Unix time; ``records``, ``shipped``
    (entries) and ``failed`` (refused transactions) are its last step's; ``step_errors`` the
    steps failed in a row, ``last_error`` the last failure."""
    if rep is None:
        return None
    last, idle, idle_at = rep.last, rep.last_idle, rep.last_idle_at
    return {
        "synced_height": idle.height if idle is not None else None,
        "idle_at": round(idle_at, 3) if idle_at is not None else None,
        "records": last.records if last is not None else None,
        "shipped": sum(last.shipped.values()) if last is not None else None,
        "failed": sum(last.failed.values()) if last is not None else None,
        "step_errors": rep.errors,
        "last_error": rep.last_error or None,
    }


def _serve_api(cluster: Any, spec: Any, state: dict[str, Any]) -> list[Any]:
    """The network API over ``cluster`` on the file's ``api_listen`` / ``grpc_listen``, and the
    cluster's health at ``GET /metrics`` of ``api_listen`` (``cluster_health``)."""
    from tierchain.api.backends import ClusterBackend
    from tierchain.api.gateway import GatewayServer
    from tierchain.api.grpc_server import GrpcServer, TlsFiles
    from tierchain.api.metrics import SourceMetrics
    from tierchain.api.service import NodeService
    from tierchain.sharding.config import parse_endpoint

    service = NodeService(ClusterBackend(cluster))
    metrics = SourceMetrics()
    metrics.add_source(lambda: cluster_health(cluster, state))
    tls = (
        None
        if spec.tls_cert_file is None
        else TlsFiles(spec.tls_cert_file, spec.tls_key_file, spec.tls_client_ca_file)
    )
    servers: list[Any] = []
    try:
        if spec.grpc_listen:
            servers.append(GrpcServer(service, spec.grpc_listen, tls=tls).start())
        if spec.api_listen:
            host, port = parse_endpoint(spec.api_listen)
            servers.append(GatewayServer(service, host, port, metrics=metrics, tls=tls).start())
    except OSError as exc:
        for server in servers:
            server.stop()
        raise Unreachable(f"cannot serve the API: {exc}") from exc
    log.info("network API serving", extra=_fields(http=spec.api_listen, grpc=spec.grpc_listen))
    return servers


_SHARD_GAUGES = (  # (name, help, cluster.status() field) a shard
    ("tierchain_shard_up", "1 while the scheduler hears from the shard.", "up"),
    ("tierchain_shard_height", "The shard's committed height, as last heard.", "height"),
    ("tierchain_shard_inflight_transactions", "Sent to the shard, not yet settled.", "inflight"),
    ("tierchain_shard_restarts", "Restarts (local) or reconnects (remote) of the shard.", "restarts"),
    ("tierchain_shard_last_heard_seconds", "Seconds since the shard was last heard.", "last_heard_s"),
)


def cluster_health(cluster: Any, state: dict[str, Any]) -> list[Any]:
    """The shards' and the drivers' health as gauges (``metrics.Gauge``), read at scrape time."""
    from tierchain.api.metrics import Gauge

    out = [
        Gauge(name, text, float(s[field] or 0), {"shard": str(s["shard"])})
        for s in cluster.status()
        for name, text, field in _SHARD_GAUGES
    ]
    rep = _replicator_status(state.get("replicator"))
    if rep is not None:
        synced = rep["synced_height"] if rep["synced_height"] is not None else -1
        age = time.time() - rep["idle_at"] if rep["idle_at"] is not None else float("inf")
        out += [
            Gauge("tierchain_replication_synced_height", "Primary height every shard last held.", synced),
            Gauge("tierchain_replication_idle_age_seconds", "Seconds since every shard was in sync.", age),
            Gauge(
                "tierchain_replication_failed_steps", "Replicator steps failed in a row.", rep["step_errors"]
            ),
        ]
    cou = _courier_status(state.get("courier"))
    if cou is not None and cou["pending"] is not None:
        out.append(
            Gauge("tierchain_claims_pending", "Claims pending at the courier's last step.", cou["pending"])
        )
    coord = state.get("coordinator")
    if coord is not None and coord.last is not None:
        locks = coord.last.pending_locks
        out.append(
            Gauge("tierchain_xshard_pending_locks", "Cross-shard transfers prepared at their source.", locks)
        )
    return out


def _courier_status(courier: Any) -> dict | None:
    """The claim courier's health (``finance.courier``): claims pending at its last step,
    carried and cleared by it, refused transactions, steps failed in a row, the last idle
    step's Unix time."""
    if courier is None:
        return None
    last = courier.last
    return {
        "pending": last.pending if last is not None else None,
        "carried": sum(last.carried.values()) if last is not None else None,
        "cleared": sum(last.cleared.values()) if last is not None else None,
        "failed": sum(last.failed.values()) if last is not None else None,
        "idle_at": round(courier.last_idle_at, 3) if courier.last_idle_at is not None else None,
        "step_errors": courier.errors,
        "last_error": courier.last_error or None,
    }


def _print_status(reply: dict) -> None:
    shards = reply.get("shards", [])
    up = sum(1 for s in shards if s.get("up"))
    click.echo(
        f"cluster {reply.get('state')} at {reply.get('control')} (scheduler pid {reply.get('pid')}): "
        f"{up}/{reply.get('n_shards')} shards up"
    )
    row = "{:>5}  {:<6}  {:<4}  {:>8}  {:>8}  {:>8}  {:>8}  {:>10}  {}"
    click.echo(row.format("shard", "kind", "up", "height", "restarts", "inflight", "pid", "heard_s", "where"))
    for s in shards:
        click.echo(
            row.format(
                s["shard"],
                s["kind"],
                "yes" if s["up"] else "DOWN",
                s["height"],
                s["restarts"],
                s["inflight"],
                s["pid"],
                s["last_heard_s"],
                s["where"] + ("" if s["up"] else f"  ({s['last_error']})"),
            )
        )
    if (coord := reply.get("coordinator")) is not None:
        click.echo(
            f"coordinator: {coord.get('pending_locks')} cross-shard transfers prepared at their source, "
            f"{coord.get('pending_credits')} awaiting their destination step"
        )
    if (rep := reply.get("replicator")) is not None:
        if rep.get("synced_height") is None:
            synced = "not yet found every shard in sync"
        else:
            ago = max(0.0, time.time() - rep["idle_at"])
            synced = f"every shard at primary height {rep['synced_height']} ({ago:.1f} s ago)"
        line = (
            f"replicator: {synced}; last step: {rep.get('records')} records, "
            f"{rep.get('shipped')} entries shipped, {rep.get('failed')} refused"
        )
        if rep.get("step_errors"):
            line += f"; {rep['step_errors']} steps failed in a row ({rep.get('last_error')})"
        click.echo(line)
    if (cou := reply.get("courier")) is not None:
        line = (
            f"claim courier: {cou.get('pending')} claims pending at its last step, "
            f"{cou.get('carried')} carried, {cou.get('cleared')} cleared, {cou.get('failed')} refused"
        )
        if cou.get("step_errors"):
            line += f"; {cou['step_errors']} steps failed in a row ({cou.get('last_error')})"
        click.echo(line)


@cluster.command("status")
@cluster_file
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the scheduler.",
)
def cluster_status(cluster_file: Path, as_json: bool, timeout: float) -> None:
    """Per shard: up, height, restarts, in-flight txs, pid or endpoint. Exit 1 if a shard is down."""
    spec = _load(cluster_file)
    reply = control_call(spec.control, "Status", timeout)
    if as_json:
        click.echo(json.dumps(reply, indent=2))
    else:
        _print_status(reply)
    shards = reply.get("shards", [])
    if reply.get("state") != "running" or not all(s.get("up") for s in shards):
        sys.exit(EXIT_DOWN)


@cluster.command("stop")
@cluster_file
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to wait for it to stop.",
)
def cluster_stop(cluster_file: Path, timeout: float) -> None:
    """Ask the running scheduler to drain its shards and exit; wait until it has."""
    spec = _load(cluster_file)
    reply = control_call(spec.control, "Stop", min(timeout, 10.0))
    if reply.get("stopping") is not True:
        raise Unreachable(f"{spec.control} did not accept the stop request")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            control_call(spec.control, "Status", 2.0)
        except Unreachable:
            click.echo("cluster stopped")
            return
        time.sleep(0.2)
    click.echo(f"cluster at {spec.control} still running after {timeout} s", err=True)
    sys.exit(EXIT_DOWN)
