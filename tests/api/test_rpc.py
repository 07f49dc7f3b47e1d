"""The node endpoint (tierchain.api.rpc) against hostile and ordinary clients, over real sockets.

Every malformed request gets a JSON answer with a named code, and nothing of a
refused or short request reaches the chain.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ALICE, BOB, CAROL, free_port, stop, wait_serving
from tierchain import limits, proofs
from tierchain.api import rpc
from tierchain.api.rpc import NodeClient, NodeServer, RpcError
from tierchain.apps import accounts
from tierchain.cli.main import main
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain
from tierchain.wire import tx as txcodec

CHAIN_ID = 9  # conftest.small_config
ENV = {"TIERCHAIN_PASSPHRASE": "test pass"}


def transfer(
    keys: KeyPair, nonce: int, to: KeyPair = BOB, amount: int = 1, chain_id: int = CHAIN_ID
) -> bytes:
    return keys.sign_tx(accounts.transfer(chain_id, keys.public_key, nonce, to.public_key, amount)).encode()


@pytest.fixture
def server(chain):
    srv = NodeServer(chain, "127.0.0.1", 0, body_timeout_s=1.0)
    srv.start()
    yield srv
    srv.stop()


@dataclasses.dataclass
class Reply:
    status: int
    body: dict
    headers: dict[str, str]


def exchange(port: int, data: bytes, half_close: bool = False, timeout_s: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or the timeout): the raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def parse(raw: bytes) -> Reply:
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no HTTP answer: {raw[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:])}
    assert headers["content-type"] == "application/json"
    return Reply(int(lines[0].split()[1]), json.loads(body), headers)


def request(port: int, method: str, target: str, body: bytes = b"", headers: str | None = None) -> Reply:
    if headers is None:
        headers = f"Content-Length: {len(body)}\r\n" if method == "POST" else ""
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n"
    return parse(exchange(port, head.encode() + body))


def assert_error(reply: Reply, status: int, code: str) -> None:
    assert (reply.status, reply.body.get("error")) == (status, code), reply
    assert reply.body.get("detail"), reply  # says what is wrong


def assert_nothing_admitted(chain, port: int, tx: bytes) -> None:
    """``tx`` (ALICE's nonce 0) never reached the chain: a later commit shows ALICE's nonce still 0."""
    later = NodeClient(f"http://127.0.0.1:{port}", timeout_s=10).submit(
        txcodec.frame([transfer(CAROL, 0)]), 5
    )
    assert later["receipts"][0]["code"] == "OK"
    assert chain.nonce(ALICE.public_key) == 0
    assert chain.tx(txcodec.tx_id(txcodec.decode(tx).body())) is None


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        ("Content-Length: abc\r\n", 400, "BAD_CONTENT_LENGTH"),
        ("Content-Length: 1e3\r\n", 400, "BAD_CONTENT_LENGTH"),
        ("Content-Length: -1\r\n", 400, "BAD_CONTENT_LENGTH"),
        ("", 411, "BAD_CONTENT_LENGTH"),  # missing
        ("Transfer-Encoding: chunked\r\n", 411, "BAD_CONTENT_LENGTH"),
        (f"Content-Length: {limits.batch_bytes_max + 1}\r\n", 413, "BATCH_TOO_LARGE"),
        ("Content-Length: 0\r\n", 400, "BAD_CONTENT_LENGTH"),
    ],
)
def test_bad_content_length_is_answered_and_admits_nothing(chain, server, header, status, code):
    tx = transfer(ALICE, 0)
    body = txcodec.frame([tx])
    if "chunked" in header:  # well-formed chunked encoding, still refused: a length is required
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = request(server.address[1], "POST", "/v1/txs", body, headers=header)
    assert_error(reply, status, code)
    assert reply.headers["connection"] == "close"  # the unread body is never parsed as a request
    assert_nothing_admitted(chain, server.address[1], tx)


@pytest.mark.parametrize("how", ["half_close", "close", "stall"])
def test_truncated_upload_admits_nothing(chain, server, how):
    first, second = transfer(ALICE, 0), transfer(ALICE, 1)
    body = txcodec.frame([first, second])
    short = body[: 4 + len(first) + 10]  # the first tx whole, the second cut
    head = f"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    port = server.address[1]
    if how == "stall":  # the client waits: answered once the body timeout passes
        assert_error(parse(exchange(port, head + short)), 408, "BODY_TRUNCATED")
    elif how == "half_close":  # the client can still read: told why
        assert_error(parse(exchange(port, head + short, half_close=True)), 400, "BODY_TRUNCATED")
    else:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(head + short)
        time.sleep(0.2)
    assert_nothing_admitted(chain, port, first)


def test_stop_answers_a_stalled_upload_at_once(chain, server):
    # The socket's timeout is below the server's grace period: had stop waited that out
    # instead of answering the stalled upload, recv would time out.
    assert rpc.stop_grace_s > 3
    tx = transfer(ALICE, 0)
    body = txcodec.frame([tx])
    with socket.create_connection(server.address, timeout=3) as s:
        s.sendall(b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:-1])
        time.sleep(0.1)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        assert_error(parse(s.recv(65536)), 503, "SHUTTING_DOWN")
    stopper.join(30)
    assert chain.nonce(ALICE.public_key) == 0


def test_whole_request_then_half_close_is_answered(chain, server):
    body = txcodec.frame([transfer(ALICE, 0)])
    head = f"POST /v1/txs?wait=5 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    reply = parse(exchange(server.address[1], head + body, half_close=True))
    assert reply.status == 200 and reply.body["receipts"][0]["code"] == "OK"


def test_garbage_after_a_kept_alive_request_is_answered(server):
    ok = b"GET /v1/head HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = exchange(server.address[1], ok + b"NONSENSE\r\n\r\n")
    head_end = raw.index(b"\r\n\r\n") + 4
    length = int(raw[:head_end].lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert parse(raw[: head_end + length]).status == 200  # the request before the bad bytes: answered
    assert_error(parse(raw[head_end + length :]), 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "query",
    ["wait=abc", "wait=-1", "wait=1e3", "wait=nan", "wait=inf", "wait=61", "wait=1&wait=2", "foo=1", "wait"],
)
def test_bad_query_is_refused_before_admission(chain, server, query):
    tx = transfer(ALICE, 0)
    assert_error(
        request(server.address[1], "POST", f"/v1/txs?{query}", txcodec.frame([tx])), 400, "BAD_QUERY"
    )
    assert_nothing_admitted(chain, server.address[1], tx)


def test_wait_returns_receipts_or_timeout(chain, server, monkeypatch):
    port = server.address[1]
    reply = request(port, "POST", "/v1/txs?wait=5", txcodec.frame([transfer(ALICE, 0)]))
    assert reply.status == 200 and reply.body["codes"] == ["OK"]
    assert reply.body["receipts"][0]["code"] == "OK" and reply.body["heights"][0] >= 1
    started = Chain._commit_started

    def slow_commit(self):
        started(self)
        time.sleep(1.5)  # a slow disk: the next wait ends before its commit

    monkeypatch.setattr(Chain, "_commit_started", slow_commit)
    done: list[Reply] = []
    waiter = threading.Thread(
        target=lambda: done.append(
            request(port, "POST", "/v1/txs?wait=1", txcodec.frame([transfer(ALICE, 1)]))
        )
    )
    waiter.start()
    time.sleep(0.05)
    assert request(port, "GET", "/v1/head").status == 200  # a wait does not hold up other requests
    assert not done, "the GET was answered only after the pending wait ended"
    waiter.join(10)
    assert done[0].status == 200 and done[0].body["codes"] == ["OK"] and done[0].body["timeout"] is True


def test_waits_are_bounded_before_admission(chain, server, monkeypatch):
    monkeypatch.setattr(rpc, "waits_max", 0)
    tx = transfer(ALICE, 0)
    assert_error(
        request(server.address[1], "POST", "/v1/txs?wait=1", txcodec.frame([tx])), 503, "TOO_MANY_WAITS"
    )
    monkeypatch.undo()
    assert_nothing_admitted(chain, server.address[1], tx)


def test_block_and_tx_arguments(chain, server):
    port = server.address[1]
    for target in ("/v1/block/abc", "/v1/block/-1", "/v1/block/1.0", "/v1/block/", f"/v1/block/{1 << 64}"):
        assert_error(request(port, "GET", target), 400, "BAD_HEIGHT")
    assert_error(request(port, "GET", "/v1/block/999"), 404, "NO_SUCH_BLOCK")
    assert request(port, "GET", "/v1/block/0").body["header"]["height"] == 0
    for bad in ("ab", "zz" * 32, "a" * 63, "ab" * 33, "%20" + "ab" * 32):
        assert_error(request(port, "GET", f"/v1/tx/{bad}"), 400, "BAD_TX_ID")
        assert_error(request(port, "GET", f"/v1/nonce/{bad}"), 400, "BAD_PUBLIC_KEY")
    assert_error(request(port, "GET", "/v1/tx/" + "00" * 32), 404, "NO_SUCH_TX")
    assert request(port, "GET", f"/v1/nonce/{ALICE.public_key.hex()}").body == {"nonce": 0}


def test_state_keys_within_the_state_bounds(chain, server):
    # A state key is 1..limits.key_bytes_max (64) bytes: the state table's and the wire's bound.
    port = server.address[1]
    balance = request(port, "GET", f"/v1/state/{accounts.balance_key(ALICE.public_key).hex()}")
    assert balance.status == 200 and balance.body["value"] is not None
    for ok in ("01", "ab" * limits.key_bytes_max):
        assert request(port, "GET", f"/v1/state/{ok}").body == {"value": None}
    for bad in ("", "ab" * (limits.key_bytes_max + 1), "ab" * 600, "abc", "zz", "0x01", "01%2002"):
        assert_error(request(port, "GET", f"/v1/state/{bad}"), 400, "BAD_KEY")


def test_proofs_verify_against_the_header_served_with_them(chain, server):
    port = server.address[1]
    client = NodeClient(f"http://127.0.0.1:{port}")
    reply = client.submit(txcodec.frame([transfer(ALICE, 0, BOB, 7)]), wait_s=30)
    tx_id = bytes.fromhex(reply["tx_ids"][0])
    key = accounts.balance_key(BOB.public_key)
    got = client.state_proof(key)
    header, proof = bytes.fromhex(got["header"]), bytes.fromhex(got["proof"])
    assert got["height"] == chain.height and got["value"] == chain.state_get(key).hex()
    assert proofs.verify_state_encoded(header, proof, key)
    assert not proofs.verify_state_encoded(header, proof, accounts.balance_key(CAROL.public_key))
    absent = client.state_proof(b"\x01nothing here")
    assert absent["value"] is None
    assert proofs.verify_state_encoded(
        bytes.fromhex(absent["header"]), bytes.fromhex(absent["proof"]), b"\x01nothing here"
    )
    got = client.tx_proof(tx_id)
    tx_proof = proofs.decode_tx_proof(bytes.fromhex(got["proof"]))
    assert got["height"] == reply["heights"][0]
    assert proofs.verify_tx(bytes.fromhex(got["header"]), tx_proof, tx_id)
    assert not proofs.verify_tx(bytes.fromhex(got["header"]), tx_proof, bytes(32))
    assert_error(request(port, "GET", "/v1/proof/tx/" + "00" * 32), 404, "NO_SUCH_TX")
    assert_error(request(port, "GET", "/v1/proof/tx/abc"), 400, "BAD_TX_ID")
    assert_error(request(port, "GET", "/v1/proof/state/zz"), 400, "BAD_KEY")
    assert_error(request(port, "POST", "/v1/proof/state/01", b"x"), 405, "METHOD_NOT_ALLOWED")


def test_unknown_paths_methods_and_garbage(server):
    port = server.address[1]
    assert_error(request(port, "GET", "/v2/head"), 404, "NOT_FOUND")
    assert_error(request(port, "GET", "/v1/block/1/extra"), 404, "NOT_FOUND")
    assert_error(request(port, "GET", "/v1/head?x=1"), 400, "BAD_QUERY")
    for method, target, allowed in (("DELETE", "/v1/head", "GET"), ("GET", "/v1/txs", "POST")):
        reply = request(port, method, target)
        assert_error(reply, 405, "METHOD_NOT_ALLOWED")
        assert reply.headers["allow"] == allowed
    assert_error(request(port, "POST", "/v1/state/01", b"x"), 405, "METHOD_NOT_ALLOWED")
    assert_error(parse(exchange(port, b"NONSENSE\r\n\r\n")), 400, "BAD_REQUEST")
    assert_error(parse(exchange(port, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")), 400, "BAD_REQUEST")


def test_client_errors_carry_the_named_code(chain, server):
    client = NodeClient(f"http://127.0.0.1:{server.address[1]}", timeout_s=10)
    with pytest.raises(RpcError, match="BAD_KEY") as caught:
        client._call("/v1/state/" + "ab" * 600)
    assert (caught.value.code, caught.value.status) == ("BAD_KEY", 400)
    assert client.nonce(ALICE.public_key) == 0
    assert client.state(accounts.balance_key(ALICE.public_key)) == chain.state_get(
        accounts.balance_key(ALICE.public_key)
    )
    assert client.state(b"absent") is None
    reply = client.submit(txcodec.frame([transfer(ALICE, 0)]), wait_s=500)  # capped at the server's maximum
    assert reply["receipts"][0]["code"] == "OK"


def test_concurrent_submitters_are_not_reset(chain, server):
    # 48 clients x 10 requests, a new connection each, all at once: the listen backlog (and a
    # server that never blocks its event loop) must take the burst without resets or SYN retries.
    port, clients, each = server.address[1], 48, 10
    start = threading.Barrier(clients)
    failures: list[str] = []
    answered: list[int] = []

    def submitter(i: int) -> None:
        keys = KeyPair.from_seed(struct.pack("<Q", i + 1).ljust(32, b"\x07"))
        start.wait()
        for n in range(each):
            body = txcodec.frame([transfer(keys, n)])
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/v1/txs", body)
                resp = conn.getresponse()
                reply = json.loads(resp.read())
                conn.close()
                if resp.status != 200 or len(reply["codes"]) != 1:
                    failures.append(f"{resp.status} {reply}")
            except OSError as exc:
                failures.append(repr(exc))
            answered.append(n)

    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures[:5]  # none reset, none refused: the backlog took the burst
    assert len(answered) == clients * each  # (stalls are measured by bench/rpc_burst.py, not here)


# --- the node process: its log and its --listen errors ------------------------------------


@pytest.fixture
def node_dir(tmp_path, fast_kdf):
    directory = tmp_path / "node"
    r = CliRunner(env=ENV).invoke(
        main, ["init", str(directory), "--chain-id", "5", "--block-interval-ms", "5"]
    )
    assert r.exit_code == 0, r.output
    return directory


def node_run(directory: Path, listen: str, stderr) -> subprocess.Popen:
    """``node run`` as a subprocess; ``stderr``: a file, or a pipe only when it is read as the node runs."""
    env = dict(os.environ, **ENV, PYTHONPATH=str(Path(__file__).parents[2] / "core"))
    command = [sys.executable, "-m", "tierchain.cli.main", "node", "run", str(directory), "--listen", listen]
    return subprocess.Popen(command, stderr=stderr, env=env)


def test_log_stays_json_lines_when_clients_misbehave(node_dir, node_stderr):
    port = free_port()
    with open(node_stderr, "wb") as err:
        node = node_run(node_dir, f"127.0.0.1:{port}", err)
    try:
        wait_serving(f"http://127.0.0.1:{port}", node)
        for i in range(3):  # leave before the reply: the node writes into a reset connection
            body = txcodec.frame([transfer(KeyPair.from_seed(bytes([i + 1]) * 32), 0, chain_id=5)])
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(
                    b"POST /v1/txs?wait=5 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                s.sendall(body)
                time.sleep(0.01)  # read and admitted, not yet committed (most likely)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
        exchange(port, b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        exchange(port, b"GET /v1/block/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)  # the replies to the vanished clients are written by now
    finally:
        code = stop(node)
    assert code == 0
    lines = node_stderr.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line: one JSON object
    assert any(e["msg"] == "node stopped" for e in entries)
    assert not any("Traceback" in line for line in lines)


def test_listen_on_a_busy_port_is_one_line(node_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        node = node_run(node_dir, f"127.0.0.1:{port}", subprocess.PIPE)
        _, err = node.communicate(timeout=30)  # reads stderr while the node runs
    lines = err.decode().strip().splitlines()
    problems = [line for line in lines if not line.startswith("{")]  # JSON log lines aside
    assert node.returncode == 1
    assert len(problems) == 1 and f"127.0.0.1:{port}" in problems[0], lines
    assert "in use" in problems[0] and "Traceback" not in err.decode()


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:", "127.0.0.1:-1"])
def test_malformed_listen_is_a_usage_error(node_dir, listen):
    r = CliRunner(env=ENV).invoke(main, ["node", "run", str(node_dir), "--listen", listen])
    assert r.exit_code == 2 and r.exception is not None and isinstance(r.exception, SystemExit), r.output
    assert len(r.output.strip().splitlines()) == 1 and "--listen" in r.output
