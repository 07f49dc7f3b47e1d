"""The ABCI socket protocol (tierchain.replication.abci_server): the uvarint framing, and an
``AbciServer`` on a real unix socket driven by a minimal client, as CometBFT drives it
(length-prefixed ``Request`` messages, pipelined, then a ``Flush``). No CometBFT process."""

from __future__ import annotations

import socket
import stat

import pytest

from tierchain.replication import abci_pb
from tierchain.replication.abci_server import (
    AbciServer,
    Application,
    ProtocolError,
    connections_max,
    decode_uvarint,
    encode_uvarint,
    frame,
    request_bytes_max,
    split_frames,
)

# --- framing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"), [(0, 1), (1, 1), (127, 1), (128, 2), (300, 2), (2**32, 5), (2**63 - 1, 9)]
)
def test_uvarint_round_trips_at_the_edges(value, size):
    enc = encode_uvarint(value)
    assert len(enc) == size
    assert decode_uvarint(enc, 0) == (value, size)
    # At an offset, followed by other bytes: the position after it is returned.
    assert decode_uvarint(b"\xaa\xbb" + enc + b"\x05", 2) == (value, 2 + size)


def test_uvarint_is_protobufs_encoding():
    assert encode_uvarint(0) == b"\x00"
    assert encode_uvarint(127) == b"\x7f"
    assert encode_uvarint(128) == b"\x80\x01"
    assert encode_uvarint(300) == b"\xac\x02"
    assert encode_uvarint(2**63 - 1) == b"\xff" * 8 + b"\x7f"


def test_an_unfinished_uvarint_is_none():
    assert decode_uvarint(b"", 0) is None
    assert decode_uvarint(b"\x80", 0) is None
    assert decode_uvarint(encode_uvarint(2**32)[:-1], 0) is None


@pytest.mark.parametrize("raw", [b"\xff" * 10 + b"\x01", b"\x80" * 11, b"\xff" * 20])
def test_an_overlong_uvarint_raises(raw):
    with pytest.raises(ProtocolError):
        decode_uvarint(raw, 0)
    with pytest.raises(ProtocolError):
        split_frames(bytearray(raw))


def test_split_frames_returns_whole_frames_and_their_byte_count():
    a = abci_pb.Request(echo={"message": "a"})
    b = abci_pb.Request(check_tx={"tx": b"x" * 200})  # a two-byte length prefix
    c = abci_pb.Request(echo={"message": "partial"})
    whole = frame(a) + frame(b)
    for cut in (1, len(frame(c)) - 1):  # inside the third frame's prefix, and inside its body
        buf = bytearray(whole + frame(c)[:cut])
        frames, used = split_frames(buf)
        assert used == len(whole)
        assert [abci_pb.Request.FromString(f) for f in frames] == [a, b]
        del frames  # memoryviews of buf
    frames, used = split_frames(bytearray(whole + frame(c)))
    assert used == len(whole + frame(c)) and len(frames) == 3
    del frames
    assert split_frames(bytearray()) == ([], 0)
    frames, used = split_frames(bytearray(frame(b)[:-1]))
    assert (frames, used) == ([], 0)


def test_an_empty_frame_is_a_frame():
    flush = abci_pb.Request(flush={})
    frames, used = split_frames(bytearray(b"\x00" + frame(flush)))
    assert used == 1 + len(frame(flush))
    assert [bytes(f) for f in frames] == [b"", flush.SerializeToString()]


def test_an_oversized_length_raises_before_the_body_arrives():
    with pytest.raises(ProtocolError, match="limit 100"):
        split_frames(bytearray(encode_uvarint(101) + b"x"), limit=100)
    frames, used = split_frames(bytearray(encode_uvarint(100) + b"x" * 100), limit=100)
    assert used == 101 and len(frames) == 1
    del frames
    with pytest.raises(ProtocolError):
        split_frames(bytearray(encode_uvarint(request_bytes_max + 1)))  # the default limit


# --- the server over a unix socket -------------------------------------------------------


class Recording(Application):
    """Records every call; ``fail`` names methods that raise."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail = fail

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise RuntimeError(f"{name} broke")

    def info(self, req):
        self.calls.append(("info", req.version))
        return abci_pb.ResponseInfo(data="recording", last_block_height=7)

    def check_txs(self, reqs):
        self.calls.append(("check_txs", [bytes(r.tx) for r in reqs]))
        self._maybe_fail("check_txs")
        return [abci_pb.ResponseCheckTx(code=len(r.tx)) for r in reqs]

    def query(self, req):
        self.calls.append(("query", req.path))
        self._maybe_fail("query")
        return abci_pb.ResponseQuery(log=req.path)

    def finalize_block(self, req):
        self.calls.append(("finalize_block", req.height))
        self._maybe_fail("finalize_block")
        return abci_pb.ResponseFinalizeBlock(app_hash=b"h%d" % req.height)


class Client:
    """What CometBFT's socket client does: length-prefixed Requests, Responses read in order."""

    def __init__(self, path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)  # a hang fails the test instead of blocking it
        self.sock.connect(str(path))
        self.buf = bytearray()

    def send(self, *requests) -> None:
        self.sock.sendall(b"".join(frame(r) for r in requests))  # one write

    def read(self, n: int) -> list:
        out: list = []
        while len(out) < n:
            frames, used = split_frames(self.buf)
            out += [abci_pb.Response.FromString(f) for f in frames]
            del frames
            del self.buf[:used]
            if len(out) >= n:
                break
            data = self.sock.recv(1 << 16)
            assert data, f"connection closed after {len(out)} of {n} responses"
            self.buf += data
        assert len(out) == n
        return out

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve(tmp_path):
    """``serve(app, on_fatal=...)``: a started AbciServer on a socket in tmp_path, and a client maker."""
    servers: list[AbciServer] = []
    clients: list[Client] = []

    def start(app, **kwargs):
        server = AbciServer(app, tmp_path / "app.sock", **kwargs)
        server.start()
        servers.append(server)

        def connect() -> Client:
            c = Client(server.path)
            clients.append(c)
            return c

        return server, connect

    yield start
    for c in clients:
        c.close()
    for s in servers:
        s.stop()


def _kind(resp) -> str:
    return resp.WhichOneof("value")


def test_pipelined_requests_are_answered_in_order_and_checktx_runs_are_one_call(serve):
    app = Recording()
    _, connect = serve(app)
    client = connect()
    txs = [b"t" * (i + 1) for i in range(12)]
    client.send(
        abci_pb.Request(echo={"message": "hello"}),
        abci_pb.Request(info={"version": "v-test"}),
        *(abci_pb.Request(check_tx={"tx": t}) for t in txs),
        abci_pb.Request(flush={}),
    )
    out = client.read(2 + len(txs) + 1)
    assert [_kind(r) for r in out] == ["echo", "info"] + ["check_tx"] * len(txs) + ["flush"]
    assert out[0].echo.message == "hello"
    assert out[1].info.data == "recording" and out[1].info.last_block_height == 7
    assert [r.check_tx.code for r in out[2:-1]] == [len(t) for t in txs]  # each its own, in order
    assert app.calls == [("info", "v-test"), ("check_txs", txs)]  # ONE call for the twelve


class SharedAnswers(Application):
    """Answers CheckTx with a few shared messages, as TierChainApp does (one per code)."""

    def __init__(self) -> None:
        self.answers = {n: abci_pb.ResponseCheckTx(code=n, log=f"code {n}") for n in (0, 5, 9)}

    def check_txs(self, reqs):
        return [self.answers[self.code_of(len(r.tx))] for r in reqs]

    @staticmethod
    def code_of(n: int) -> int:
        return {1: 5, 2: 9, 0: 0}[n % 3]


def test_shared_checktx_answers_are_each_framed_in_place(serve):
    _, connect = serve(SharedAnswers())
    client = connect()
    sizes = [1, 2, 3, 3, 1, 2, 2, 3, 1]
    client.send(*(abci_pb.Request(check_tx={"tx": b"x" * n}) for n in sizes), abci_pb.Request(flush={}))
    out = client.read(len(sizes) + 1)
    expected = [SharedAnswers.code_of(n) for n in sizes]
    assert [r.check_tx.code for r in out[:-1]] == expected
    assert [r.check_tx.log for r in out[:-1]] == [f"code {c}" for c in expected]


def test_checktx_runs_split_by_other_requests_are_separate_calls(serve):
    app = Recording()
    _, connect = serve(app)
    client = connect()
    client.send(
        *(abci_pb.Request(check_tx={"tx": b"a" * n}) for n in (1, 2, 3)),
        abci_pb.Request(query={"path": "/x"}),
        *(abci_pb.Request(check_tx={"tx": b"b" * n}) for n in (4, 5)),
        abci_pb.Request(flush={}),
    )
    out = client.read(7)
    assert [_kind(r) for r in out] == ["check_tx"] * 3 + ["query"] + ["check_tx"] * 2 + ["flush"]
    assert [r.check_tx.code for r in out if _kind(r) == "check_tx"] == [1, 2, 3, 4, 5]
    assert app.calls == [
        ("check_txs", [b"a", b"aa", b"aaa"]),
        ("query", "/x"),
        ("check_txs", [b"bbbb", b"bbbbb"]),
    ]


def test_the_base_application_answers_every_request(serve):
    _, connect = serve(Application())
    client = connect()
    client.send(
        abci_pb.Request(prepare_proposal={"txs": [b"a", b"b"]}),
        abci_pb.Request(process_proposal={"txs": [b"a"]}),
        abci_pb.Request(commit={}),
        abci_pb.Request(flush={}),
    )
    prep, proc, commit, flush = client.read(4)
    assert list(prep.prepare_proposal.txs) == [b"a", b"b"]
    assert proc.process_proposal.status == abci_pb.ResponseProcessProposal.ACCEPT
    assert _kind(commit) == "commit" and _kind(flush) == "flush"


def test_a_consensus_method_failing_answers_exception_and_is_fatal(serve):
    fatal: list[BaseException] = []
    app = Recording(fail=frozenset({"finalize_block"}))
    _, connect = serve(app, on_fatal=fatal.append)
    client = connect()
    client.send(abci_pb.Request(finalize_block={"height": 3}), abci_pb.Request(flush={}))
    exc, flush = client.read(2)
    assert _kind(exc) == "exception"
    assert "finalize_block" in exc.exception.error and "finalize_block broke" in exc.exception.error
    assert _kind(flush) == "flush"
    assert len(fatal) == 1 and isinstance(fatal[0], RuntimeError) and str(fatal[0]) == "finalize_block broke"


def test_a_query_failing_is_answered_as_a_refusal_and_is_not_fatal(serve):
    fatal: list[BaseException] = []
    app = Recording(fail=frozenset({"query"}))
    _, connect = serve(app, on_fatal=fatal.append)
    client = connect()
    client.send(
        abci_pb.Request(query={"path": "/boom"}),
        abci_pb.Request(echo={"message": "still here"}),
        abci_pb.Request(flush={}),
    )
    # Not an exception answer: CometBFT would stop the node on one.
    refused, echo, _ = client.read(3)
    assert _kind(refused) == "query" and refused.query.code == 1 and "query broke" in refused.query.log
    assert echo.echo.message == "still here"  # the connection keeps serving
    assert fatal == []


def test_checktx_failing_answers_one_refusal_per_request(serve):
    fatal: list[BaseException] = []
    app = Recording(fail=frozenset({"check_txs"}))
    _, connect = serve(app, on_fatal=fatal.append)
    client = connect()
    client.send(*(abci_pb.Request(check_tx={"tx": b"x"}) for _ in range(4)), abci_pb.Request(flush={}))
    out = client.read(5)
    assert [_kind(r) for r in out] == ["check_tx"] * 4 + ["flush"]  # CometBFT's pipeline stays aligned
    # Refusals (CometBFT drops the tx; a retry may pass), not exceptions (it would stop the node).
    assert all(r.check_tx.code == 1 and r.check_tx.codespace == "abci-server" for r in out[:4])
    assert fatal == []


def test_bytes_that_are_no_request_close_the_connection(serve):
    _, connect = serve(Recording())
    client = connect()
    client.sock.sendall(b"\x03\xff\xff\xff")
    client.sock.settimeout(5)
    assert client.sock.recv(1) == b""  # closed: a peer that sends garbage is not CometBFT


def test_an_empty_request_is_answered_with_an_exception(serve):
    _, connect = serve(Recording())
    client = connect()
    client.sock.sendall(b"\x00" + frame(abci_pb.Request(echo={"message": "after"})))
    exc, echo = client.read(2)
    assert _kind(exc) == "exception" and "unknown request" in exc.exception.error
    assert echo.echo.message == "after"


def test_an_oversized_request_closes_the_connection(serve):
    _, connect = serve(Recording())
    client = connect()
    client.sock.sendall(encode_uvarint(request_bytes_max + 1) + b"x")
    assert client.closed_by_peer()
    other = connect()  # the server itself still serves
    other.send(abci_pb.Request(echo={"message": "ok"}))
    assert other.read(1)[0].echo.message == "ok"


def test_connections_over_the_limit_are_refused(serve):
    _, connect = serve(Recording())
    clients = [connect() for _ in range(connections_max)]
    for c in clients:  # each one is served
        c.send(abci_pb.Request(echo={"message": "m"}))
        assert c.read(1)[0].echo.message == "m"
    extra = connect()
    assert extra.closed_by_peer()


def test_the_socket_is_private_and_a_stale_one_is_replaced(tmp_path, serve):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "app.sock"))  # left by a process that died
    stale.close()
    server, connect = serve(Recording())
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    client = connect()
    client.send(abci_pb.Request(echo={"message": "fresh"}))
    assert client.read(1)[0].echo.message == "fresh"


def test_stop_closes_connections_and_removes_the_socket(serve):
    server, connect = serve(Recording())
    a, b = connect(), connect()
    for c in (a, b):
        c.send(abci_pb.Request(echo={"message": "up"}))
        assert c.read(1)[0].echo.message == "up"
    server.stop()
    assert a.closed_by_peer() and b.closed_by_peer()
    assert not server.path.exists()
    with pytest.raises(OSError):
        Client(server.path)
