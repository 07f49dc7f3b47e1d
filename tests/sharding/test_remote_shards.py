"""Remote shards (issue 7): the message codec, `tierchain shard serve` on loopback ports, a cluster
mixing a local and a remote shard, kill -9 / SIGSTOP of a shard server, and the cluster CLI."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time

import grpc
import nacl.pwhash
import numpy as np
import pytest
from click.testing import CliRunner

from cluster_world import (
    BASE,
    BY_SHARD,
    CLI,
    ENV,
    NODE,
    PASS,
    N,
    _cluster_file,
    _free_port,
    _serve,
    random_transfers,
)
from tierchain.cli.main import main
from tierchain.crypto import KeyPair, save_key_file
from tierchain.engine.chain import Chain
from tierchain.sharding import codec as sc
from tierchain.sharding.cluster import Cluster, ShardCallError, ShardUnavailable, shard_configs
from tierchain.sharding.link import RemoteLink
from tierchain.sharding.server import LINK_METHOD, ShardServer
from tierchain.wire.block import Event, Header, Receipt


def _wait(cond, what: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


# --- codec ------------------------------------------------------------------------------------

HEADER = Header(40, 7, b"p" * 32, 123, 2, b"t" * 32, b"r" * 32, b"s" * 32, NODE.public_key).signed(NODE)
RECEIPT = Receipt(b"i" * 32, 0, (Event(b"topic", b"data"),))
SAMPLES = [
    ("ready", 5, 41, b"g" * 32, 1234),
    ("submit", 1, b"\x00\x01framed"),
    ("submit_ids", 1, b"\x00\x01framed", b"i" * 64),
    ("codes", 2, b"\x00\x27", 0),
    ("codes", 3, None, 43),
    ("done", 4, np.array([7, 7], np.uint64).tobytes(), b"\x00\x00\xff\xff", [[0, [[b"t", b"d"]]]]),
    ("failed", 5, "ChainError: boom"),
    ("call", 6, "state_scan", (b"xl/", 100, b"")),
    ("call", 7, "state_get", (b"k",)),
    ("result", 8, (7, 0, b"tx", RECEIPT)),
    ("result", 9, [(b"k1", b"v1"), (b"k2", b"v2")]),
    ("result", 10, HEADER),
    ("result", 11, [RECEIPT, None, 3]),
    ("error", 0, "MessageError: nope"),
    ("ping", 12),
    ("pong", 12, 99),
    ("close", 0),
    ("closed", 0),
]


def test_codec_round_trips_every_message():
    for msg in SAMPLES:
        assert sc.decode(sc.encode(msg)) == msg
    scan = sc.decode(sc.encode(next(m for m in SAMPLES if m[:2] == ("result", 9))))[2]
    assert type(scan) is list and all(type(kv) is tuple for kv in scan)  # state_scan's exact shape
    receipts = [RECEIPT, None, Receipt(b"j" * 32, 68)]
    codes, events = sc.receipts_columns(receipts)
    back = sc.receipts_from_columns([b"i" * 32, b"x" * 32, b"j" * 32], codes, events)
    assert back == receipts


def test_codec_refuses_what_is_not_a_message():
    bad = [
        ("nope", 1),
        ("ping",),
        ("ping", "1"),
        ("call", 1, "close", ()),  # not a shard call
        ("call", 1, "balance", (5,)),  # wrong argument type
        ("call", 1, "state_scan", (b"p",)),  # missing limit
        ("result", 1, {"a": 1}),  # maps are not part of the codec
        ("result", 1, object()),
        ("result", 1, 1 << 70),
    ]
    for msg in bad:
        with pytest.raises(sc.MessageError):
            sc.decode(sc.encode(msg))
    with pytest.raises(sc.MessageError):
        sc.decode(sc.encode(("ready", 1, 1, b"g" * 32, 1)), sc.TO_SHARD)  # a shard never receives ready
    with pytest.raises(sc.MessageError):
        sc.decode(b"\x00" * (sc.message_bytes_max + 1))


def test_codec_fuzz_random_and_mutated_bytes_give_named_errors():
    rng = random.Random(7)
    valid = [sc.encode(m) for m in SAMPLES]
    decoded = refused = 0
    for i in range(20_000):
        if i % 4 == 0:
            data = rng.randbytes(rng.randrange(0, 64))
        else:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                op = rng.randrange(3)
                if op == 0 and data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
                elif op == 1:
                    data = data[: rng.randrange(len(data) + 1)]
                else:
                    data[rng.randrange(len(data) + 1) : 0] = rng.randbytes(rng.randrange(1, 6))
            data = bytes(data)
        try:
            msg = sc.decode(data)
        except sc.MessageError:
            refused += 1
            continue
        decoded += 1
        assert msg[0] in sc.SCHEMA and len(msg) == 1 + len(sc.SCHEMA[msg[0]])
    # Deeply nested tuples are refused by name, not by RecursionError.
    nested: tuple = (1,)
    for _ in range(50):
        nested = (nested,)
    with pytest.raises(sc.MessageError):
        sc.decode(sc.encode(("result", 1, nested)))
    assert refused > 10_000 and decoded > 0


# --- an in-process shard server -------------------------------------------------------------------


def test_shard_server_refuses_bad_input_and_keeps_serving(tmp_path):
    config = shard_configs(BASE, N)[1]
    with Chain(tmp_path / "s1", config, NODE) as chain:
        server = ShardServer(chain, "127.0.0.1:0").start()
        endpoint = f"127.0.0.1:{server.port}"
        try:
            for garbage in [b"\xc1", sc.encode(("pong", 1, 2)), b"\x93\xa4call\x01\xa5close"]:
                with grpc.insecure_channel(endpoint) as ch:
                    replies = list(ch.stream_stream(LINK_METHOD)(iter([garbage]), timeout=30))
                kinds = [sc.decode(r)[0] for r in replies]
                assert kinds == ["ready", "error"], kinds
                assert "MessageError" in sc.decode(replies[1])[2]
            # A method that raises is an error reply on a live stream, then a real link works.
            link = RemoteLink(1, endpoint, start_timeout=30)
            ready = link.connect()
            assert (ready.chain_id, ready.genesis) == (41, sc.genesis_digest(config))
            link.send(("call", 1, "header", (-1,)))
            assert link.recv()[0] == "error"
            link.send(("call", 2, "state_scan", (b"acct/", 3)))
            kind, _, pairs = link.recv()
            assert kind == "result" and len(pairs) == 3 and all(type(kv) is tuple for kv in pairs)
            link.send(("close", 0))
            assert link.recv()[0] == "closed"
            link.close(5)
        finally:
            server.stop()


# --- a cluster with one local and one remote shard --------------------------------------------------


def _load(s: int, cluster: Cluster, stop: threading.Event, acks: list, errors: list) -> None:
    group = BY_SHARD[s]
    rng = np.random.default_rng(s)

    def resync() -> dict:
        while not stop.is_set():
            try:
                return {k.public_key: cluster.call(s, "nonce", k.public_key) for k in group}
            except (ShardUnavailable, TimeoutError):
                time.sleep(0.05)
        return {}

    nonces = resync()
    try:
        while not stop.is_set():
            sub = cluster.submit(random_transfers(cluster.chain_id(s), group, nonces, rng))
            receipts = sub.wait(60)
            ok = (sub.codes == 0) & ~sub.dropped
            for row in np.flatnonzero(ok).tolist():
                assert receipts[row] is not None and receipts[row].code == 0
                acks.append((sub.tx_ids[row], s, int(sub.heights[row]), time.monotonic()))
            if not ok.all():
                nonces = resync()
                time.sleep(0.05)
    except BaseException as exc:
        errors.append(exc)


def test_mixed_cluster_survives_kill9_and_sigstop_of_the_remote_shard(tmp_path):
    port = _free_port()
    spec = _cluster_file(tmp_path, ["local", f"127.0.0.1:{port}"])
    server = _serve(spec, 1, port)
    try:
        # An endpoint serving another shard than the configured one is refused by name.
        with pytest.raises(ShardUnavailable, match="serves chain id 41"):
            Cluster(tmp_path / "wrong", BASE, NODE.seed, N, endpoints=[f"127.0.0.1:{port}", None])
        endpoints = [None, f"127.0.0.1:{port}"]
        with Cluster(
            tmp_path / "shards",
            BASE,
            NODE.seed,
            N,
            endpoints=endpoints,
            heartbeat_s=0.3,
            heartbeat_timeout_s=4,
        ) as cluster:
            assert [st["kind"] for st in cluster.status()] == ["local", "remote"]
            assert cluster.pid(1) == server.pid
            assert cluster.call(1, "head").chain_id == 41
            with pytest.raises(ShardCallError):
                cluster.call(1, "state_scan", b"", 0)  # the shard's ValueError, named
            acks: list = []
            errors: list = []
            stop = threading.Event()
            threads = [
                threading.Thread(target=_load, args=(s, cluster, stop, acks, errors)) for s in range(N)
            ]
            for t in threads:
                t.start()
            _wait(lambda: sum(1 for a in acks if a[1] == 1) >= 100, "no commits on the remote shard")

            before = cluster.restarts(1)
            server.kill()  # kill -9 of the shard server under load
            server.wait()
            _wait(lambda: not cluster.is_up(1), "remote shard not marked down")
            killed_at = time.monotonic()
            server = _serve(spec, 1, port)
            _wait(lambda: cluster.restarts(1) > before and cluster.is_up(1), "remote shard not reconnected")
            up_at = time.monotonic()
            assert cluster.pid(1) == server.pid
            _wait(lambda: any(a[1] == 1 and a[3] > up_at for a in acks), "remote shard did not resume")

            before = cluster.restarts(1)
            server.send_signal(signal.SIGSTOP)  # hung, not dead: only the heartbeat can tell
            try:
                _wait(lambda: not cluster.is_up(1), "hung remote shard not detected")
            finally:
                server.send_signal(signal.SIGCONT)
            _wait(lambda: cluster.restarts(1) > before and cluster.is_up(1), "remote shard not re-dialled")
            resumed_at = time.monotonic()
            _wait(lambda: any(a[1] == 1 and a[3] > resumed_at for a in acks), "remote shard did not resume")
            stop.set()
            for t in threads:
                t.join(60)
            assert not errors, errors
            assert any(a[1] == 0 and killed_at < a[3] < up_at for a in acks), "local shard stalled"
            for tx_id, s, height, _ in acks:  # nothing reported committed was lost
                hit = cluster.call(s, "tx", tx_id)
                assert hit is not None and hit[0] == height, (s, height)
        # The cluster's close leaves the remote server running; SIGTERM drains and exits 0.
        assert server.poll() is None
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        print(f"acks {len(acks)}; remote down {up_at - killed_at:.2f} s after kill -9")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


# --- the operator CLI ----------------------------------------------------------------------------


def test_cluster_cli_start_status_stop(tmp_path):
    port = _free_port()
    spec = _cluster_file(tmp_path, ["local", f"127.0.0.1:{port}"])
    runner = CliRunner()
    r = runner.invoke(main, ["cluster", "status", str(spec), "--timeout", "1"])
    assert r.exit_code == 3 and "no cluster answers" in r.output, r.output
    server = _serve(spec, 1, port)
    start = subprocess.Popen([*CLI, "cluster", "start", str(spec)], env=ENV)
    try:

        def running() -> dict | None:
            r = runner.invoke(main, ["cluster", "status", str(spec), "--json", "--timeout", "2"])
            assert start.poll() is None, "cluster start exited"
            return json.loads(r.output) if r.exit_code == 0 else None

        _wait(running, "cluster did not come up", timeout=60)
        status = running()
        assert status is not None and status["state"] == "running"
        shards = status["shards"]
        assert [(s["kind"], s["up"], s["chain_id"]) for s in shards] == [
            ("local", True, 40),
            ("remote", True, 41),
        ]
        assert shards[1]["where"] == f"127.0.0.1:{port}" and shards[1]["pid"] == server.pid
        r = runner.invoke(main, ["cluster", "status", str(spec)])
        assert r.exit_code == 0 and "2/2 shards up" in r.output, r.output
        # A second scheduler for the same cluster is refused (its control endpoint is taken).
        r = runner.invoke(main, ["cluster", "start", str(spec)], env={"TIERCHAIN_PASSPHRASE": PASS})
        assert r.exit_code == 1 and "in use" in r.output, r.output  # a runtime failure

        server.kill()  # the remote shard goes away: status says so, exit 1
        server.wait()
        _wait(lambda: runner.invoke(main, ["cluster", "status", str(spec)]).exit_code == 1, "down not shown")
        assert "DOWN" in runner.invoke(main, ["cluster", "status", str(spec)]).output

        r = runner.invoke(main, ["cluster", "stop", str(spec), "--timeout", "60"])
        assert r.exit_code == 0 and "cluster stopped" in r.output, r.output
        assert start.wait(30) == 0
    finally:
        for p in (start, server):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_cluster_file_errors_are_named(tmp_path):
    from tierchain.config import ConfigError
    from tierchain.sharding.config import ClusterSpec

    spec = _cluster_file(tmp_path, ["local", "127.0.0.1:7601"])
    loaded = ClusterSpec.load(spec)
    assert loaded.shards == (None, "127.0.0.1:7601") and loaded.base().chain_id == BASE.chain_id
    good = spec.read_text()
    for bad, match in [
        (good.replace('"127.0.0.1:7601"', '"no-port"'), "HOST:PORT"),
        (good.replace("heartbeat_s = 0.3", "heartbeat_s = 9.0"), "heartbeat"),
        (good.replace("shards = [", "shardz = ["), "shards"),
        ("[cluster\n", "cluster.toml"),
    ]:
        spec.write_text(bad)
        with pytest.raises(ConfigError, match=match):
            ClusterSpec.load(spec)
    spec.write_text(good)
    runner = CliRunner(env={"TIERCHAIN_PASSPHRASE": PASS})
    r = runner.invoke(main, ["shard", "serve", "--cluster", str(spec), "--index", "2"])
    assert r.exit_code == 2 and "0..1" in r.output, r.output
    r = runner.invoke(
        main, ["shard", "serve", "--cluster", str(spec), "--index", "0"], env={"TIERCHAIN_PASSPHRASE": "x"}
    )
    assert r.exit_code == 1 and "node.key" in r.output, r.output  # wrong passphrase: named, exit 1


def test_cluster_start_names_an_unreachable_shard_and_exits_3(tmp_path):
    spec = _cluster_file(tmp_path, [f"127.0.0.1:{_free_port()}"])
    spec.write_text(spec.read_text() + "start_timeout_s = 1.0\n")
    r = subprocess.run(
        [*CLI, "cluster", "start", str(spec)], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 3, r.stderr
    assert "shard 0 at 127.0.0.1:" in r.stderr and "unreachable" in r.stderr, r.stderr


def test_cluster_start_runs_the_coordinator_when_configured(tmp_path):
    spec = _cluster_file(tmp_path, ["local", "local"])
    coord = KeyPair.from_seed(b"cli-coordinator".ljust(32, b"\0"))
    opslimit, memlimit = nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN
    save_key_file(tmp_path / "coord.key", coord, PASS, opslimit=opslimit, memlimit=memlimit)
    spec.write_text(spec.read_text() + 'coordinator_key_file = "coord.key"\n')
    runner = CliRunner()
    start = subprocess.Popen([*CLI, "cluster", "start", str(spec)], env=ENV)
    try:

        def stepped() -> dict | None:
            r = runner.invoke(main, ["cluster", "status", str(spec), "--json", "--timeout", "2"])
            assert start.poll() is None, "cluster start exited"
            reply = json.loads(r.output) if r.exit_code == 0 else None
            coord_state = reply and reply.get("coordinator")
            return reply if coord_state and coord_state["pending_locks"] is not None else None

        _wait(lambda: stepped() is not None, "the coordinator did not step", timeout=60)
        reply = stepped()
        assert reply["coordinator"] == {"pending_locks": 0, "pending_credits": 0}
        assert "coordinator: 0 cross-shard" in runner.invoke(main, ["cluster", "status", str(spec)]).output
        r = runner.invoke(main, ["cluster", "stop", str(spec), "--timeout", "60"])
        assert r.exit_code == 0, r.output
        assert start.wait(30) == 0
    finally:
        if start.poll() is None:
            start.kill()
            start.wait()
