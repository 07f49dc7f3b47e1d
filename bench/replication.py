"""Replication: committed TPS and submit->commit latency of TierChain on CometBFT against
the solo chain and against CometBFT's own kvstore app on the same networks, in one run.

Setups (``--setups``, all by default), each on a fresh chain or network:

* ``solo``      the embedded chain (``loadgen.run_load``: what ``tierchain load`` runs)
* ``tc1``       TierChain, 1 validator   } laid out by ``tierchain net init --load-accounts``
* ``tc4``       TierChain, 4 validators  } and run by ``net start`` (``tierchain.replication.net``)
* ``kv1``       CometBFT's kvstore app, 1 validator   } the same homes (``net init``: the same
* ``kv4``       CometBFT's kvstore app, 4 validators  } config.toml), ``cometbft start --proxy_app kvstore``
* ``tc1-http``  TierChain, 1 validator, through the node's TierChain HTTP API
                (``loadgen.run_load_net``: what ``tierchain load --net`` runs)

``tc*`` and ``kv*`` are driven by one client (``CometClient``): the workload's streams,
sender-disjoint, dealt round-robin over the validators' CometBFT RPCs, each stream sending
JSON-RPC batches over its own kept-alive connection with ``--inflight`` admitted batches
awaiting commit. ``--broadcast async`` (the default) sends ``broadcast_tx_async``: CometBFT
queues each call's CheckTx and answers without waiting for it; ``sync`` sends
``broadcast_tx_sync``, each call waiting for its CheckTx round trip, one call at a time per
batch (~1.5 ms each measured here: admission was the bottleneck). Either way a sender's
nonces reach one node in order: CometBFT handles a batch's calls in order, its ABCI
connection keeps CheckTx in that order, and a stream sends its next batch only once the
previous one is answered. With ``async`` a CheckTx refusal is not answered to the client: a
refused transaction never commits and counts as unsettled (``refused`` counts only what
CometBFT's mempool refuses before CheckTx: full, already in its cache); only commits count
either way. ``tc1-http`` is not affected: the node API forwards as it does. Commits are
seen on validator 0:
subscribed over CometBFT's websocket to ``tm.event='NewBlockHeader'`` — fired after the
app's Commit (``state/execution.go``: ``fireEvents`` follows ``Commit`` and the state save),
unlike ``/block``, whose block store is written before FinalizeBlock runs — then
``/block?height=`` for the block's transactions, matched to the submitted ones by their
base64 text (as exact as the SHA-256 tx hash, and no hashing). A transaction's latency runs
from its batch's send to that event (``Settled.commits``: each counts at its own block; the
solo chain and ``tc1-http`` time a batch to its last transaction). kvstore's transactions are
``key=value`` ASCII of the TierChain transfers' size (its CheckTx: one ``=``, not first or
last, no ``:``; ``abci/example/kvstore``). The measuring maths (window, TPS, latency
percentiles) is loadgen's, shared with ``tierchain load``: ``loadgen.drive`` and
``loadgen.window_figures``.

Per run: CPU cores of each node's processes over the window (``N.app``: the node runner
with the TierChain app and its API; ``N.cometbft``; a kvstore node is one ``cometbft``
process, the app inside), blocks as validator 0 saw them (count, txs per block, interval)
and, from its ``cometbft.log``, where a block's time goes: ``vote`` (proposal received to
commit decided: prevotes, precommits, ProcessProposal), ``exec`` (FinalizeBlock, with the
block store save), ``commit`` (the app's Commit), ``gap`` (committed to the next proposal
received: ``timeout_commit``, the mempool's update and recheck, the next PrepareProposal).

Setups alternate (the order reverses every repeat); each figure is reported as the median
and min..max of ``--repeat`` runs. Nets use a free loopback port range each, are stopped
in ``finally`` and live in temp dirs removed at the end.

``--p2p-rate-mbs R`` sets every node's CometBFT ``p2p.send_rate``/``recv_rate`` (both kinds
alike): what the 4-validator setups lose to CometBFT's default 5.12 MB/s per connection.

Usage: python bench/replication.py [--seconds 8] [--repeat 3] [--setups solo,tc1,...]
       [--broadcast async|sync] [--p2p-rate-mbs R] [--tiny] [--out FILE.json]
       (or: python -m bench replication ...)
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import click
import nacl.pwhash
import numpy as np
import tomli_w
from websockets.sync import client as ws

from tierchain.replication import cometbft
from tierchain.replication import net as netlib
from tierchain.tools import loadgen
from tierchain.tools.loadgen import Settled

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "tierchain"
PASS_ENV = "TIERCHAIN_BENCH_PASSPHRASE"
SETUPS = ("solo", "tc1", "tc4", "kv1", "kv4", "tc1-http")
BROADCASTS = ("async", "sync")  # CometBFT's broadcast_tx_async / broadcast_tx_sync
MIN_KDF = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)  # throwaway node keys
start_wait_s = 90.0  # a net's nodes answering, connected and making blocks


@dataclasses.dataclass(frozen=True)
class Params:
    accounts: int = 10_000
    seconds: float = 8.0
    warmup_s: float = 2.0
    repeat: int = 3
    streams: int = 32  # CometBFT RPC client: sender-disjoint streams, one connection each
    batch_txs: int = 256  # per JSON-RPC batch (CometBFT: rpc.max_request_batch_size, net init's 2000)
    inflight: int = 2  # admitted batches per stream awaiting commit
    solo_batch_txs: int = 512  # the solo chain: bench/engine.py's shape
    solo_inflight: int = 4
    http_inflight: int = 8  # tc1-http: 4 workload threads x this = streams through the node API
    settle_timeout_s: float = 30.0
    p2p_rate_bytes: int | None = None  # CometBFT p2p.send_rate / recv_rate of every node (None: its default)
    block_txs_max: int = netlib.DEFAULT_BLOCK_TXS_MAX  # the TierChain nets' (net init --block-txs-max)
    broadcast: str = "async"  # the RPC client's broadcast_tx_<this> (tc*, kv*)
    tx_rate_guess: int = 20_000  # tx/s sizing the workload (the fastest setup must not run out)


FULL = Params()
TINY = Params(
    accounts=200,
    seconds=1.5,
    warmup_s=0.5,
    repeat=1,
    streams=4,
    batch_txs=64,
    inflight=2,
    solo_batch_txs=64,
    solo_inflight=2,
    http_inflight=1,
    settle_timeout_s=15.0,
    tx_rate_guess=25_000,  # the solo chain commits ~25k tx/s here: it must not run out in the warm-up
)


# --- one CometBFT event subscription over its websocket (the ``websockets`` package) --------------


def open_websocket(
    host: str, port: int, path: str = "/websocket", timeout_s: float = 10.0
) -> ws.ClientConnection:
    """A websocket to ``host:port``: the TCP connect and the handshake each within ``timeout_s``.
    No proxy (its own socket), no compression, no message size limit, no pings of its own
    (the library answers CometBFT's, which closes a connection not answering within 30 s)."""
    sock = socket.create_connection((host, port), timeout=timeout_s)
    sock.settimeout(None)  # the library's reader thread blocks on it; its own timeouts bound the waits
    try:
        return ws.connect(
            f"ws://{host}:{port}{path}",
            sock=sock,
            compression=None,
            open_timeout=timeout_s,
            close_timeout=2.0,
            max_size=None,
            ping_interval=None,
        )
    except BaseException:
        sock.close()
        raise


def ws_recv(conn: ws.ClientConnection, timeout_s: float) -> str | bytes | None:
    """The next message, or None if none came within ``timeout_s``; ``ConnectionClosed`` once closed."""
    try:
        return conn.recv(timeout_s)
    except TimeoutError:
        return None


# --- the CometBFT RPC client ----------------------------------------------------------------------


@dataclasses.dataclass
class RpcBatch:
    """One JSON-RPC batch of ``broadcast_tx_async`` (or ``_sync``), built before the clock: its
    body and its transactions' base64 text (what ``/block`` lists them by)."""

    body: bytes
    keys: list[str]


def rpc_batches(txs: list[bytes], batch_txs: int, broadcast: str = "async") -> list[RpcBatch]:
    if broadcast not in BROADCASTS:
        raise ValueError(f"broadcast {broadcast!r}: one of {BROADCASTS}")
    method = f"broadcast_tx_{broadcast}"
    out = []
    for i in range(0, len(txs), batch_txs):
        keys = [base64.b64encode(t).decode() for t in txs[i : i + batch_txs]]
        calls = ",".join(
            f'{{"jsonrpc":"2.0","id":{j},"method":"{method}","params":{{"tx":"{k}"}}}}'
            for j, k in enumerate(keys)
        )
        out.append(RpcBatch(f"[{calls}]".encode(), keys))
    return out


class RpcPending:
    """A batch admitted (or partly) by CometBFT, awaiting its transactions in blocks (with
    ``broadcast_tx_async``, "admitted" is only queued for CheckTx: one CheckTx refused stays
    in ``left`` until the wait ends, unsettled). Its fields change under ``CometClient._lock``."""

    __slots__ = ("answered", "commits", "done", "keys", "left", "ok", "rejected", "t_commit")

    def __init__(self, keys: list[str]) -> None:
        self.keys, self.left, self.ok, self.rejected = keys, len(keys), 0, 0
        self.t_commit: float | None = None
        self.commits: dict[float, int] = {}  # when seen committed -> how many of its txs
        self.answered = False
        self.done = threading.Event()


class CometClient:
    """Submissions to CometBFT RPCs (``submit_to``: (host, port) per stream's node, dealt
    round-robin) as JSON-RPC batches (``rpc_batches``: ``broadcast_tx_async`` or ``_sync``,
    each call answered with its error or a code); commits seen at ``watch``
    (websocket ``NewBlockHeader`` events, then ``/block``). ``submit`` and the ``Pending``
    it returns are ``loadgen.drive``'s."""

    def __init__(self, submit_to: list[tuple[str, int]], watch: tuple[str, int]) -> None:
        self.submit_to, self.watch = submit_to, watch
        self._lock = threading.Lock()
        self._registry: dict[str, RpcPending] = {}
        self._local = threading.local()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.blocks: list[tuple[int, float, int, int]] = []  # (height, seen at, txs, of them ours)
        self._thread: threading.Thread | None = None
        self._closing = contextlib.ExitStack()

    # --- commits ----------------------------------------------------------------------

    def start(self, timeout_s: float = 15.0) -> None:
        host, port = self.watch
        # Entered as a context (closed by ``close``): websockets >= 17.1 warns about a bare connect().
        self._ws = self._closing.enter_context(open_websocket(host, port))
        self._ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "subscribe",
                    "params": {"query": "tm.event='NewBlockHeader'"},
                }
            )
        )
        deadline = time.monotonic() + timeout_s
        while True:  # the subscription's answer: {"id": 1, "result": {}}
            msg = ws_recv(self._ws, max(0.1, deadline - time.monotonic()))
            if msg is not None and json.loads(msg).get("id") == 1:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer to the websocket subscription at {host}:{port}")
        self._conn = http.client.HTTPConnection(host, port, timeout=30)
        status = self._get("status")
        self._last = int(status["sync_info"]["latest_block_height"])
        self._thread = threading.Thread(target=self._watch, name="comet-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self._closing.close()  # the websocket
        finally:
            if (conn := getattr(self, "_conn", None)) is not None:
                conn.close()

    def _get(self, path: str) -> Any:
        self._conn.request("GET", "/" + path)
        resp = self._conn.getresponse()
        body = json.loads(resp.read())
        if "result" not in body:
            raise ConnectionError(f"/{path}: {body.get('error')}")
        return body["result"]

    def _watch(self) -> None:
        try:
            while not self._stop.is_set():
                msg = ws_recv(self._ws, 0.5)
                if msg is None:
                    continue
                seen = time.perf_counter()  # after the app's Commit on the watched node
                data = (json.loads(msg).get("result") or {}).get("data") or {}
                header = (data.get("value") or {}).get("header")
                if header is None:
                    continue
                top = int(header["height"])
                for h in range(self._last + 1, top + 1):  # a gap: blocks whose events were missed
                    self._committed(h, self._get(f"block?height={h}")["block"]["data"].get("txs") or [], seen)
                self._last = max(self._last, top)
        except BaseException as exc:
            if not self._stop.is_set():
                self.error = exc

    def _committed(self, height: int, txs: list[str], seen: float) -> None:
        ours = 0
        settled = []
        with self._lock:
            for key in txs:
                p = self._registry.pop(key, None)
                if p is None:
                    continue
                ours += 1
                p.ok += 1
                p.left -= 1
                p.t_commit = seen
                p.commits[seen] = p.commits.get(seen, 0) + 1
                if p.left == 0 and p.answered:
                    settled.append(p)
            self.blocks.append((height, seen, len(txs), ours))
        for p in settled:
            p.done.set()

    # --- submissions --------------------------------------------------------------------

    def _post(self, k: int, body: bytes) -> Any:
        conns = self._local.__dict__.setdefault("conns", {})
        host, port = self.submit_to[k % len(self.submit_to)]
        for attempt in (0, 1):  # a kept-alive connection CometBFT closed: reconnect once
            conn = conns.get(k) or http.client.HTTPConnection(host, port, timeout=60)
            conns[k] = conn
            try:
                conn.request("POST", "/", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                conns.pop(k, None)
                if attempt:
                    raise
        answers = json.loads(data)
        if resp.status != 200 and not isinstance(answers, list):
            raise ConnectionError(f"{host}:{port} answered {resp.status}: {data[:300]!r}")
        return answers if isinstance(answers, list) else [answers]

    def submit(self, k: int, batch: RpcBatch) -> RpcPending:
        p = RpcPending(batch.keys)
        with self._lock:  # before sending: a tx may commit before the answer comes back
            for key in batch.keys:
                self._registry[key] = p
        answers = self._post(k, batch.body)
        ok_ids = {
            a.get("id")
            for a in answers
            if isinstance(a, dict) and "result" in a and int(a["result"].get("code", 0)) == 0
        }
        with self._lock:
            for i, key in enumerate(batch.keys):
                if i not in ok_ids and self._registry.get(key) is p:
                    del self._registry[key]
                    p.rejected += 1
                    p.left -= 1
            p.answered = True
            if p.left == 0:
                p.done.set()
        return p

    def wait(self, p: RpcPending, timeout_s: float) -> Settled:
        if not p.done.wait(timeout_s):
            with self._lock:
                for key in p.keys:
                    if self._registry.get(key) is p:
                        del self._registry[key]
        with self._lock:
            return Settled(
                ok=p.ok,
                rejected=p.rejected,
                unsettled=p.left,
                t_commit=p.t_commit,
                commits=list(p.commits.items()),
            )

    def failed_txs(self, heights: list[int]) -> int:
        """Transactions with a non-zero FinalizeBlock code at ``heights`` (``/block_results``),
        asked after the run."""
        failed = 0
        for h in heights:
            results = self._get(f"block_results?height={h}").get("txs_results") or []
            failed += sum(int(r.get("code", 0)) != 0 for r in results)
        return failed


class _Bound:
    """``RpcPending`` with its client, as ``loadgen.Pending``."""

    __slots__ = ("client", "p")

    def __init__(self, client: CometClient, p: RpcPending) -> None:
        self.client, self.p = client, p

    def wait(self, timeout_s: float) -> Settled:
        return self.client.wait(self.p, timeout_s)


# --- networks --------------------------------------------------------------------------------------


def free_base_port(nodes: int) -> int:
    """A base port whose whole range (``nodes`` * 10 ports) is free on 127.0.0.1 now."""
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20_000, 60_000 - netlib.PORT_STRIDE * nodes, netlib.PORT_STRIDE)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + netlib.PORT_STRIDE * nodes):
                    s = stack.enter_context(socket.socket())
                    s.bind((netlib.LOOPBACK, port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range on 127.0.0.1")


class Net:
    """A throwaway network in a temp dir: TierChain nodes (``net start``) or kvstore ones
    (``cometbft start --proxy_app kvstore`` on the homes ``net init`` made). A context
    manager: stopped and removed on exit, whatever happened."""

    def __init__(
        self,
        kind: str,
        validators: int,
        load: netlib.NetLoad | None,
        p2p_rate_bytes: int | None = None,
        block_txs_max: int = netlib.DEFAULT_BLOCK_TXS_MAX,
    ) -> None:
        self.kind, self.validators = kind, validators
        self.dir = Path(tempfile.mkdtemp(prefix=f"tcb-{kind}{validators}-"))
        self.passphrase = secrets.token_hex(16)
        self.procs: list[subprocess.Popen] = []
        try:
            self.spec = netlib.init(
                self.dir / "net",
                validators=validators,
                base_port=free_base_port(validators),
                passphrase=self.passphrase,
                load=load if kind == "tc" else None,
                key_kdf=MIN_KDF,
                block_txs_max=block_txs_max,
            )
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.nodes = self.spec.nodes
        self.first = self.nodes[0]
        if p2p_rate_bytes is not None:  # the same edit for every kind of net
            for node in self.nodes:
                path = node.home / netlib.COMETBFT_DIR / "config" / "config.toml"
                doc = tomllib.loads(path.read_text())
                doc["p2p"]["send_rate"] = doc["p2p"]["recv_rate"] = p2p_rate_bytes
                path.write_text(tomli_w.dumps(doc))

    def __enter__(self) -> Net:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start(self) -> None:
        if self.kind == "tc":
            results = netlib.start(self.spec, PASS_ENV, self.passphrase, wait_s=start_wait_s)
            if bad := [r for r in results if r.error]:
                raise RuntimeError(f"{bad[0].node.name}: {bad[0].error}\n{self.log_tail(bad[0].node)}")
        else:
            binary = cometbft.binary()
            for node in self.nodes:
                with open(node.home / netlib.LOG_DIR / netlib.COMETBFT_LOG, "ab") as out:
                    self.procs.append(
                        subprocess.Popen(
                            [
                                binary,
                                "start",
                                "--home",
                                node.home / netlib.COMETBFT_DIR,
                                "--proxy_app",
                                "kvstore",
                            ],
                            stdin=subprocess.DEVNULL,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
        deadline = time.monotonic() + start_wait_s
        while True:  # every node answers, the validators see each other, blocks are being made
            rows = [netlib.node_status(n) for n in self.nodes]
            if all((r["height"] or 0) >= 2 and r["peers"] == len(self.nodes) - 1 for r in rows):
                return
            if dead := [p for p in self.procs if p.poll() is not None]:
                raise RuntimeError(f"cometbft exited ({dead[0].returncode})\n{self.log_tail(self.first)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind}{self.validators} not up in {start_wait_s:.0f}s: {rows}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.kind == "tc":
            netlib.stop(self.spec, wait_s=30)
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)

    def pids(self) -> dict[str, int | None]:
        if self.kind == "tc":
            out = {}
            for n in self.nodes:
                out[f"{n.name}.app"] = netlib.node_pid(n.home)
                out[f"{n.name}.cometbft"] = netlib.cometbft_pid(n.home)
            return out
        return {f"{n.name}.cometbft": p.pid for n, p in zip(self.nodes, self.procs, strict=True)}

    def log_tail(self, node: netlib.NetNode) -> str:
        text = ""
        for f in sorted((node.home / netlib.LOG_DIR).glob("*.log")):
            text += f"--- {f.name} ---\n" + f.read_text(errors="replace")[-2000:]
        return text


# --- CometBFT's log: where a block's time goes ----------------------------------------------------

_LOG_LINE = re.compile(
    r"^I\[(\d{4}-\d\d-\d\d)\|(\d\d:\d\d:\d\d\.\d{3})\] (received complete proposal block|"
    r"finalizing commit of block|finalized block|committed state)\s.*?\bheight=(\d+)"
)
_PHASE = {
    "received complete proposal block": "proposal",
    "finalizing commit of block": "decided",
    "finalized block": "executed",
    "committed state": "committed",
}


def block_phases(log: Path, w0_wall: float, w1_wall: float) -> dict:
    """Mean ms per phase of the blocks node 0 decided inside the window (wall clock seconds):
    interval, vote, exec, commit, gap (module docstring)."""
    marks: dict[int, dict[str, float]] = {}
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        m = _LOG_LINE.match(line)
        if m is None:
            continue
        t = datetime.datetime.strptime(f"{m[1]} {m[2]}", "%Y-%m-%d %H:%M:%S.%f").timestamp()
        marks.setdefault(int(m[4]), {}).setdefault(_PHASE[m[3]], t)
    heights = [h for h, p in sorted(marks.items()) if w0_wall <= p.get("decided", 0) <= w1_wall]
    spans: dict[str, list[float]] = {k: [] for k in ("interval", "vote", "exec", "commit", "gap")}
    for h in heights:
        p, prev, nxt = marks[h], marks.get(h - 1, {}), marks.get(h + 1, {})
        pairs = {
            "interval": (prev.get("decided"), p.get("decided")),
            "vote": (p.get("proposal"), p.get("decided")),
            "exec": (p.get("decided"), p.get("executed")),
            "commit": (p.get("executed"), p.get("committed")),
            "gap": (p.get("committed"), nxt.get("proposal")),
        }
        for name, (a, b) in pairs.items():
            if a is not None and b is not None:
                spans[name].append((b - a) * 1000)
    return {f"{k}_ms": round(float(np.mean(v)), 1) for k, v in spans.items() if v}


# --- runs ---------------------------------------------------------------------------------------


def kvstore_streams(streams: list[list[bytes]], size: int) -> list[list[bytes]]:
    """As many kvstore transactions as ``streams`` holds, in the same layout, each ``size``
    bytes: ``k<stream>-<n>=vvv...`` (one ``=``, no ``:``; unique, so no mempool cache hit)."""
    out = []
    for s, stream in enumerate(streams):
        txs = []
        for n in range(len(stream)):
            key = b"k%d-%d=" % (s, n)
            txs.append(key + b"v" * (size - len(key)))
        out.append(txs)
    return out


def _wall(perf: float) -> float:
    return perf + (time.time() - time.perf_counter())


def run_rpc(net: Net, streams: list[list[bytes]], p: Params) -> dict:
    """One closed-loop run of ``streams`` through ``CometClient`` against ``net``."""
    batches = [rpc_batches(s, p.batch_txs, p.broadcast) for s in streams]  # before the clock
    targets = [(n.spec.host, n.spec.rpc_port) for n in net.nodes if n.role == "validator"]
    client = CometClient(targets, (net.first.spec.host, net.first.spec.rpc_port))
    pids = net.pids()
    try:
        client.start()
        d = loadgen.drive(
            batches,
            lambda k, b: _Bound(client, client.submit(k, b)),
            batch_txs=p.batch_txs,
            seconds=p.seconds,
            warmup_s=p.warmup_s,
            inflight=p.inflight,
            settle_timeout_s=p.settle_timeout_s,
            failure=lambda: client.error,
            probe=lambda: {"cpu": {name: loadgen.proc_cpu_s(pid) for name, pid in pids.items()}},
        )
    finally:
        client.close()
    if d.error is not None:
        raise RuntimeError(f"{net.kind}{net.validators}: the load failed: {d.error!r}") from d.error
    out = loadgen.window_figures(d)
    out["cpu_processes"]["client"] = round(out["cpu_util"], 3)  # this process: the load client
    w0, w1 = loadgen.window_bounds(d)
    blocks = [b for b in client.blocks if w0 <= b[1] <= w1]
    out["blocks"] = _block_stats(blocks)
    ours = sorted({b[0] for b in client.blocks if b[3]})
    with contextlib.suppress(OSError, ConnectionError, ValueError, KeyError):
        out["failed"] = client.failed_txs(ours)
    out["window_wall"] = (_wall(w0), _wall(w1))
    return out


def _block_stats(blocks: list[tuple[int, float, int, int]]) -> dict:
    if not blocks:
        return {"count": 0}
    txs = np.array([b[2] for b in blocks])
    out = {"count": len(blocks), "txs_mean": round(float(txs.mean()), 1), "txs_max": int(txs.max())}
    if len(blocks) > 1:
        out["interval_ms_mean"] = round(float(np.diff([b[1] for b in blocks]).mean()) * 1000, 1)
    return out


def _net_run(
    setup: str, p: Params, work: loadgen.Workload, streams: list[list[bytes]], kv: list[list[bytes]]
) -> dict:
    kind, validators = ("tc" if setup.startswith("tc") else "kv"), int(setup[2])
    load = netlib.NetLoad(work.spec.accounts, work.spec.senders, work.spec.seed)
    t0 = time.perf_counter()
    with Net(kind, validators, load, p.p2p_rate_bytes, p.block_txs_max) as net:
        net.start()
        up_s = time.perf_counter() - t0
        if setup == "tc1-http":
            r = loadgen.run_load_net(
                work,
                net.spec.path.parent,
                seconds=p.seconds,
                warmup_s=p.warmup_s,
                batch_txs=p.batch_txs,
                inflight=p.http_inflight,
                wait_s=p.settle_timeout_s,
            )
            out = dataclasses.asdict(r)
            out["cpu_processes"]["client"] = round(r.cpu_util, 3)
            out["window_wall"] = None
        else:
            out = run_rpc(net, kv if kind == "kv" else streams, p)
        net.stop()
        if out.get("window_wall"):
            log = net.first.home / netlib.LOG_DIR / netlib.COMETBFT_LOG
            out["phases"] = block_phases(log, *out["window_wall"])
    out["startup_s"] = up_s
    return out


def run_setup(
    setup: str, p: Params, work: loadgen.Workload, streams: list[list[bytes]], kv: list[list[bytes]]
) -> dict:
    load_before = os.getloadavg()[0]
    if setup == "solo":
        r = loadgen.run_load(
            work,
            seconds=p.seconds,
            warmup_s=p.warmup_s,
            batch_txs=p.solo_batch_txs,
            inflight=p.solo_inflight,
            sync="full",
        )
        out = dataclasses.asdict(r)
        out["cpu_processes"] = {"solo": round(r.cpu_util, 3)}
    else:
        out = _net_run(setup, p, work, streams, kv)
    keep = (
        "tps committed seconds rejected failed unsettled exhausted latency_ms_p50 latency_ms_p95 "
        "latency_ms_p99 latency_ms_max cpu_util cpu_processes blocks phases startup_s"
    ).split()
    res = {k: out[k] for k in keep if k in out}
    res.update(setup=setup, load_avg_before=load_before)
    return res


# --- report -----------------------------------------------------------------------------------------


def _med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _spread(runs: list[dict], key: str, fmt: str = ",.0f") -> str:
    values = sorted(r[key] for r in runs)
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.median(values), fmt)} ({format(values[0], fmt)}..{format(values[-1], fmt)})"


def _cpu_summary(runs: list[dict]) -> str:
    """Median cores per role: app processes (summed over nodes) and cometbft processes."""
    sums: dict[str, list[float]] = {}
    for r in runs:
        per: dict[str, float] = {}
        for name, cores in r.get("cpu_processes", {}).items():
            role = name.rpartition(".")[2] if "." in name else name
            per[role] = per.get(role, 0.0) + cores
        for role, v in per.items():
            sums.setdefault(role, []).append(v)
    return ", ".join(f"{role} {statistics.median(v):.2f}" for role, v in sums.items())


def summarize(runs: list[dict]) -> dict:
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["setup"], []).append(r)
    table = {}
    for setup, rs in by.items():
        table[setup] = {
            "runs": len(rs),
            "tps_median": _med(rs, "tps"),
            "tps_min": min(r["tps"] for r in rs),
            "tps_max": max(r["tps"] for r in rs),
            "latency_ms_p50_median": _med(rs, "latency_ms_p50"),
            "latency_ms_p99_median": _med(rs, "latency_ms_p99"),
        }
    ratios = {}
    for a, b in (("tc4", "kv4"), ("tc1", "kv1"), ("tc1-http", "tc1"), ("tc1", "solo")):
        if a in table and b in table and table[b]["tps_median"]:
            ratios[f"{a}/{b}"] = table[a]["tps_median"] / table[b]["tps_median"]
    return {"setups": table, "tps_ratios": ratios}


def render(runs: list[dict], summary: dict, p: Params) -> str:
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["setup"], []).append(r)
    lines = [
        f"{p.seconds:g} s measured after {p.warmup_s:g} s warm-up, {p.repeat} run(s) per setup, "
        f"tc*/kv* by broadcast_tx_{p.broadcast}: median (min..max)",
        f"{'setup':9} {'TPS':>24} {'p50 ms':>20} {'p99 ms':>20}  refused/failed/unsettled  blocks  CPU cores",
    ]
    for setup in [s for s in SETUPS if s in by]:
        rs = by[setup]
        b = rs[len(rs) // 2].get("blocks", {})
        blk = f"{b.get('count', 0)}x{b.get('txs_mean', 0):,.0f}" if b.get("count") else "-"
        if "interval_ms_mean" in b:
            blk += f"/{b['interval_ms_mean']:.0f}ms"
        lines.append(
            f"{setup:9} {_spread(rs, 'tps'):>24} {_spread(rs, 'latency_ms_p50'):>20} "
            f"{_spread(rs, 'latency_ms_p99'):>20}  "
            f"{sum(r['rejected'] for r in rs)}/{sum(r['failed'] for r in rs)}/"
            f"{sum(r.get('unsettled', 0) for r in rs)}"
            f"  {blk}  {_cpu_summary(rs)}"
        )
        for r in rs:
            if r.get("phases"):
                ph = r["phases"]
                lines.append(
                    "          per block (validator0's log): "
                    + ", ".join(f"{k[:-3]} {v:.0f}" for k, v in ph.items())
                    + " ms"
                )
                break
    if summary["tps_ratios"]:
        lines.append(
            "TPS ratios (medians): " + ", ".join(f"{k} {v:.2f}" for k, v in summary["tps_ratios"].items())
        )
    return "\n".join(lines)


@click.command("replication")
@click.option("--seconds", type=click.FloatRange(0, min_open=True), default=FULL.seconds, show_default=True)
@click.option("--warmup", "warmup_s", type=click.FloatRange(0), default=FULL.warmup_s, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 20), default=FULL.repeat, show_default=True)
@click.option("--accounts", type=click.IntRange(2), default=FULL.accounts, show_default=True)
@click.option(
    "--streams",
    type=click.IntRange(1, 256),
    default=FULL.streams,
    show_default=True,
    help="CometBFT RPC client: sender-disjoint streams (connections), dealt over the validators.",
)
@click.option("--batch", "batch_txs", type=click.IntRange(1, 2000), default=FULL.batch_txs, show_default=True)
@click.option("--inflight", type=click.IntRange(1), default=FULL.inflight, show_default=True)
@click.option(
    "--p2p-rate-mbs",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Set every node's CometBFT p2p.send_rate and recv_rate (MB/s; default: CometBFT's, 5.12).",
)
@click.option(
    "--broadcast",
    type=click.Choice(BROADCASTS),
    default=FULL.broadcast,
    show_default=True,
    help="CometBFT RPC client (tc*, kv*): broadcast_tx_async (CheckTx queued, not waited for) or _sync.",
)
@click.option(
    "--block-txs-max",
    type=click.IntRange(1, 65536),
    default=FULL.block_txs_max,
    show_default=True,
    help="TierChain nets: transactions per block at most (net init --block-txs-max; kvstore: no bound).",
)
@click.option("--setups", default=",".join(SETUPS), show_default=True, help="Comma-separated subset.")
@click.option(
    "--tiny", is_flag=True, help="Tiny loads, one run each (CI): the script runs; figures mean little."
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(
    seconds: float,
    warmup_s: float,
    repeat: int,
    accounts: int,
    streams: int,
    batch_txs: int,
    inflight: int,
    p2p_rate_mbs: float | None,
    broadcast: str,
    block_txs_max: int,
    setups: str,
    tiny: bool,
    out: Path | None,
) -> None:
    """Solo vs TierChain on CometBFT (1 and 4 validators) vs kvstore, in one run."""
    chosen = [s.strip() for s in setups.split(",") if s.strip()]
    if bad := [s for s in chosen if s not in SETUPS]:
        raise click.UsageError(f"unknown setup {bad[0]!r}; known: {', '.join(SETUPS)}")
    if tiny:
        p = TINY
    else:
        p = dataclasses.replace(
            FULL,
            seconds=seconds,
            warmup_s=warmup_s,
            repeat=repeat,
            accounts=accounts,
            streams=streams,
            batch_txs=batch_txs,
            inflight=inflight,
        )
    p = dataclasses.replace(p, broadcast=broadcast)
    if p2p_rate_mbs is not None:
        p = dataclasses.replace(p, p2p_rate_bytes=int(p2p_rate_mbs * 1e6))
    p = dataclasses.replace(p, block_txs_max=block_txs_max)
    t_start = time.perf_counter()
    txs = int((p.seconds + p.warmup_s) * p.tx_rate_guess * 1.3) + 4096
    click.echo(
        f"workload: {txs:,} signed transfers among {p.accounts:,} accounts (cached in {CACHE}) ...", err=True
    )
    work = loadgen.transfer_workload(p.accounts, txs, 4, cache_dir=CACHE)
    # The RPC client's streams: the workload's, split by sender (each sender's nonces in one).
    per = max(1, p.streams // len(work.streams))
    streams_rpc = [part for s in work.streams for part in loadgen.split_by_sender(s, per)]
    kv = kvstore_streams(streams_rpc, len(work.streams[0][0]))
    runs: list[dict] = []
    for i in range(p.repeat):
        order = chosen if i % 2 == 0 else chosen[::-1]  # alternate: drift on a shared machine hits all alike
        for setup in order:
            r = run_setup(setup, p, work, streams_rpc, kv)
            r["repeat"] = i
            runs.append(r)
            click.echo(
                f"[{i + 1}/{p.repeat}] {setup:9} {r['tps']:>9,.0f} TPS  p50 {r['latency_ms_p50']:7.1f} ms  "
                f"p99 {r['latency_ms_p99']:7.1f} ms  refused {r['rejected']} failed {r['failed']} "
                f"unsettled {r.get('unsettled', 0)}",
                err=True,
            )
    summary = summarize(runs)
    click.echo(render(runs, summary, p))
    wall = time.perf_counter() - t_start
    click.echo(f"wall {wall:.0f} s", err=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "params": dataclasses.asdict(p),
                    "tiny": tiny,
                    "machine": {"cpus": os.cpu_count()},
                    "wall_s": wall,
                    "summary": summary,
                    "runs": runs,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
