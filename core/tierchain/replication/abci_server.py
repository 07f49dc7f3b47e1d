"""The ABCI socket protocol: CometBFT's four connections to the application, one thread each.

CometBFT (``proxy_app = "unix://..."``) opens four connections to the app — consensus,
mempool, query and snapshot — and on each writes ``Request`` messages, every one
prefixed by its length as an unsigned varint, then expects the ``Response`` for each, in
order. It pipelines: many requests, then a ``Flush``, whose answer tells it that
everything before has been answered.

Here every connection gets a thread that reads what the socket has, decodes every whole
request in it, answers them in order and writes the answers in one send. A run of
``CheckTx`` requests in one read is handed to the application as ONE call
(``Application.check_txs``), so their signatures are verified as one batch (the
"everything that arrives between flushes" of docs/replication.md). Other requests are
handed over one by one.

Bounds: a request longer than ``request_bytes_max`` closes the connection (CometBFT then
stops: an app it cannot talk to is not one it should keep running against); at most
``connections_max`` connections are served at once. An exception in the application
in a consensus method answers ``Response.exception`` — CometBFT stops the node on it,
which is what a broken invariant must do; one in CheckTx or Query is answered as a refusal
(code 1, codespace ``abci-server``), because CometBFT would stop the node on any exception
answer, and a transient failure there must cost the caller a retry, not the node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from tierchain.replication import abci_pb

log = logging.getLogger("tierchain.abci")
request_bytes_max = 64 << 20  # a FinalizeBlock carries the block: CometBFT's max_bytes is at most 100 MiB
read_bytes = 1 << 20
connections_max = 16
CODESPACE = "abci-server"  # of the refusals this module answers itself (a failed CheckTx or query)


class ProtocolError(Exception):
    """A peer sent bytes that are not a length-prefixed ABCI Request."""


def encode_uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_uvarint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when ``buf`` ends inside the varint."""
    value = shift = 0
    while pos < len(buf):
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("length prefix longer than 10 bytes")
    return None


def frame(message: Any) -> bytes:
    body = message.SerializeToString()
    return encode_uvarint(len(body)) + body


def split_frames(buf: bytearray, limit: int = request_bytes_max) -> tuple[list[memoryview], int]:
    """The whole frames at the start of ``buf`` and how many bytes they take."""
    frames, pos, view = [], 0, memoryview(buf)
    while True:
        head = decode_uvarint(buf, pos)
        if head is None:
            break
        n, start = head
        if n > limit:
            raise ProtocolError(f"request of {n} bytes (limit {limit})")
        if start + n > len(buf):
            break
        frames.append(view[start : start + n])
        pos = start + n
    return frames, pos


# The Request oneof field -> the Application method that answers it (one request each).
_METHODS = {
    "echo": "echo",
    "info": "info",
    "init_chain": "init_chain",
    "query": "query",
    "commit": "commit",
    "list_snapshots": "list_snapshots",
    "offer_snapshot": "offer_snapshot",
    "load_snapshot_chunk": "load_snapshot_chunk",
    "apply_snapshot_chunk": "apply_snapshot_chunk",
    "prepare_proposal": "prepare_proposal",
    "process_proposal": "process_proposal",
    "extend_vote": "extend_vote",
    "verify_vote_extension": "verify_vote_extension",
    "finalize_block": "finalize_block",
}
# A failure answering these leaves the app's state unknown to consensus: the node stops.
_FATAL = frozenset({"init_chain", "prepare_proposal", "process_proposal", "finalize_block", "commit"})


class Application:
    """The base answers: what an app that has nothing to say gives. Subclass and override."""

    def echo(self, req: Any) -> Any:
        return abci_pb.ResponseEcho(message=req.message)

    def info(self, req: Any) -> Any:
        return abci_pb.ResponseInfo()

    def init_chain(self, req: Any) -> Any:
        return abci_pb.ResponseInitChain()

    def query(self, req: Any) -> Any:
        return abci_pb.ResponseQuery(code=1, log="no queries")

    def check_txs(self, reqs: list[Any]) -> list[Any]:
        return [abci_pb.ResponseCheckTx() for _ in reqs]

    def commit(self, req: Any) -> Any:
        return abci_pb.ResponseCommit()

    def list_snapshots(self, req: Any) -> Any:
        return abci_pb.ResponseListSnapshots()

    def offer_snapshot(self, req: Any) -> Any:
        return abci_pb.ResponseOfferSnapshot()  # UNKNOWN: this app offers and takes no snapshots

    def load_snapshot_chunk(self, req: Any) -> Any:
        return abci_pb.ResponseLoadSnapshotChunk()

    def apply_snapshot_chunk(self, req: Any) -> Any:
        return abci_pb.ResponseApplySnapshotChunk()

    def prepare_proposal(self, req: Any) -> Any:
        return abci_pb.ResponsePrepareProposal(txs=list(req.txs))

    def process_proposal(self, req: Any) -> Any:
        return abci_pb.ResponseProcessProposal(status=abci_pb.ResponseProcessProposal.ACCEPT)

    def extend_vote(self, req: Any) -> Any:
        return abci_pb.ResponseExtendVote()

    def verify_vote_extension(self, req: Any) -> Any:
        return abci_pb.ResponseVerifyVoteExtension(status=abci_pb.ResponseVerifyVoteExtension.ACCEPT)

    def finalize_block(self, req: Any) -> Any:
        return abci_pb.ResponseFinalizeBlock()


class AbciServer:
    """Serve ``app`` on the unix socket ``path`` (module docstring); ``start`` / ``stop``."""

    def __init__(
        self, app: Application, path: str | Path, *, on_fatal: Callable[[BaseException], None] | None = None
    ):
        self.app, self.path = app, Path(path)
        self.on_fatal = on_fatal
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._Request, self._Response = abci_pb.Request, abci_pb.Response

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a process that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o600)  # only this user's CometBFT talks to this app
        sock.listen(connections_max)
        self._sock = sock
        t = threading.Thread(target=self._accept_loop, name="abci-accept", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stopping = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                if len(self._conns) >= connections_max:
                    conn.close()
                    log.warning("ABCI connection refused: %d already open", connections_max)
                    continue
                self._conns.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name="abci-conn", daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        try:
            while not self._stopping:
                data = conn.recv(read_bytes)
                if not data:
                    return
                buf += data
                frames, used = split_frames(buf)
                if not frames:
                    continue
                try:
                    requests = [self._Request.FromString(f) for f in frames]
                except DecodeError as exc:
                    raise ProtocolError(f"not an ABCI Request: {exc}") from None
                out = self._answer(requests)
                del frames
                del buf[:used]
                conn.sendall(out)
        except ProtocolError as exc:
            log.error("ABCI connection closed: %s", exc)
        except OSError as exc:
            if not self._stopping:
                log.warning("ABCI connection lost: %s", exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _answer(self, requests: list[Any]) -> bytes:
        out: list[bytes] = []
        Response = self._Response
        i = 0
        while i < len(requests):
            kind = requests[i].WhichOneof("value")
            if kind == "check_tx":  # the whole run of CheckTx in this read: one batch
                j = i
                while j < len(requests) and requests[j].WhichOneof("value") == "check_tx":
                    j += 1
                try:
                    answers = self.app.check_txs([r.check_tx for r in requests[i:j]])
                    # An app answers most rows with one shared message (OK): framed once.
                    framed: dict[int, bytes] = {}
                    for a in answers:
                        f = framed.get(id(a))
                        if f is None:
                            f = framed[id(a)] = frame(Response(check_tx=a))
                        out.append(f)
                except Exception as exc:
                    # Refused, not an exception: CometBFT stops the node on any exception
                    # answer, and a transient failure here must cost a retry, not the node.
                    log.exception("CheckTx failed")
                    refused = abci_pb.ResponseCheckTx(
                        code=1, log=f"CheckTx failed: {exc!r}"[:500], codespace=CODESPACE
                    )
                    out.extend(frame(Response(check_tx=refused)) for _ in range(i, j))
                i = j
                continue
            if kind == "flush":
                out.append(frame(Response(flush={})))
            elif kind in _METHODS:
                try:
                    answer = getattr(self.app, _METHODS[kind])(getattr(requests[i], kind))
                    out.append(frame(Response(**{kind: answer})))
                except Exception as exc:
                    if kind == "query":  # a failed read is the caller's error, not the node's end
                        log.exception("ABCI query failed")
                        failed = abci_pb.ResponseQuery(
                            code=1, log=f"query failed: {exc!r}"[:500], codespace=CODESPACE
                        )
                        out.append(frame(Response(query=failed)))
                        i += 1
                        continue
                    out.append(frame(Response(exception={"error": f"{kind}: {exc!r}"})))
                    if kind in _FATAL:
                        log.critical("ABCI %s failed: the node stops", kind, exc_info=exc)
                        if self.on_fatal is not None:
                            self.on_fatal(exc)
                    else:
                        log.exception("ABCI %s failed", kind)
            else:
                out.append(frame(Response(exception={"error": f"unknown request {kind!r}"})))
            i += 1
        return b"".join(out)
