"""How the scheduler reaches a shard: a link (docs/sharding.md, "Transport").

A link carries ``codec`` messages both ways and can be re-established:

* ``connect()`` -> ``Ready``: start the shard process / dial the endpoint and wait
  for the shard's greeting (``ShardUnavailable`` if it does not come);
* ``send(msg)``, ``recv()`` -> msg: ``LinkDown`` once the link is broken
  (``MessageError`` if the peer sent something malformed);
* ``kill()``: break the link from another thread (heartbeat: the shard hangs);
* ``reset()``: release what a broken link held, before ``connect()`` again;
* ``close(timeout)``: after the shard answered ``close``.

``LocalLink`` spawns the shard as a process (multiprocessing "spawn") and talks
over a pipe; ``kill`` is SIGKILL and ``connect`` after a death starts a new process
on the same directory. ``RemoteLink`` dials a ``tierchain shard serve`` endpoint
over gRPC (one bidirectional stream); ``kill`` cancels the stream and ``connect``
re-dials. The scheduler (``cluster.Cluster``) treats both alike but for one thing
(``Link.trusted``), below.

Trust: what authenticates a link, and what a shard takes on it.

* A ``LocalLink`` is an anonymous socket pair (``multiprocessing.Pipe``, POSIX): the
  "spawn" start passes the child's end to the shard process as an inherited file
  descriptor. It has no address and no listener, so no other process can connect
  to it; only one with ptrace rights over the shard or the scheduler (at most the
  same user's processes, and root) could reach it — and could as well read the
  proposer seed, which this link's process start hands the shard. So what arrives
  on it comes from the scheduler: ``trusted`` is True and the scheduler sends ``submit_ids``, the frames
  with the tx ids it computed when it decoded the batch to route it; the shard
  takes the ids instead of hashing the bodies again (``wire.batch.decode_batch``
  ``tx_ids=``). It still parses the frames itself and verifies every signature
  (``Mempool.admit``), against those ids.
* A ``RemoteLink`` is plaintext gRPC without peer authentication
  (``grpc.insecure_channel``; the server's ``add_insecure_port``): any peer that
  reaches a ``tierchain shard serve`` endpoint can open a stream (one at a time,
  docs/sharding.md "Remote shards"). A forged tx id would let a signature made for
  one body admit another, so ``trusted`` is False: the scheduler sends ``submit``
  (frames only), and a ``ShardServer`` refuses ``submit_ids`` from anyone
  (``codec.TO_SHARD``): it decodes, hashes and verifies what it is sent.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from pathlib import Path
from typing import Any

from tierchain.config import ChainConfig
from tierchain.errors import TierChainError
from tierchain.sharding.codec import FROM_SHARD, MessageError, Ready, decode, encode, message_bytes_max

__all__ = ["Link", "LinkDown", "LocalLink", "RemoteLink", "ShardUnavailable"]

_CTX = multiprocessing.get_context("spawn")
send_queue_max = 256  # messages queued for a remote stream
send_timeout_s = 30.0  # a stream that accepts nothing for this long is broken
dial_timeout_s_max = 10.0  # one attempt to open a TCP/HTTP2 connection to an endpoint


class ShardUnavailable(TierChainError):
    """The shard is down (restarting, unreachable) or the cluster is closed."""


class LinkDown(TierChainError):
    """The link to a shard broke (process died, stream ended or was cancelled)."""


def _ready(msg: tuple, where: str) -> Ready:
    if msg[0] == "error":
        raise ShardUnavailable(f"{where} refused the link: {msg[2]}")
    if msg[0] != "ready":
        raise ShardUnavailable(f"{where} sent {msg[0]} before ready")
    return Ready(*msg[1:])


class Link:
    kind = "link"
    where = ""
    pid: int | None = None
    # True if nobody but the scheduler can write to this link (module docstring, "Trust"):
    # then it carries tx ids the shard takes without hashing the bodies (``submit_ids``).
    trusted = False

    def connect(self) -> Ready:
        raise NotImplementedError

    def send(self, msg: tuple) -> None:
        raise NotImplementedError

    def recv(self) -> tuple:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def exit_info(self) -> str:
        return self.where

    def stop_connecting(self) -> None:
        """The cluster closes: a ``connect`` under way may give up now."""

    def reset(self) -> None:
        raise NotImplementedError

    def close(self, timeout: float) -> None:
        raise NotImplementedError


class LocalLink(Link):
    """A shard process on this machine, on directory ``path``."""

    kind = "local"
    trusted = True  # an inherited socket pair: nobody else can write to it

    def __init__(
        self, index: int, path: Path, config: ChainConfig, seed: bytes, start_timeout: float
    ) -> None:
        self.index, self.path, self.config, self._seed = index, path, config, seed
        self.start_timeout = start_timeout
        self.proc: Any = None
        self.conn: Any = None
        self.where = str(path)

    @property
    def pid(self) -> int | None:  # type: ignore[override]
        return None if self.proc is None else self.proc.pid

    def connect(self) -> Ready:
        from tierchain.sharding.server import shard_process_main

        self.reset()
        parent, child = _CTX.Pipe()
        proc = _CTX.Process(
            target=shard_process_main,
            args=(child, str(self.path), self.config, self._seed),
            name=f"tierchain-shard-{self.index}",
        )
        proc.start()
        child.close()  # so that the child's death is EOF here
        try:
            if not parent.poll(self.start_timeout):
                proc.kill()
                raise ShardUnavailable(f"shard {self.index} did not start in {self.start_timeout} s")
            try:
                msg = decode(parent.recv_bytes(message_bytes_max), FROM_SHARD)
            except (EOFError, OSError) as exc:
                proc.join(5)
                raise ShardUnavailable(f"shard {self.index} exited at start (code {proc.exitcode})") from exc
            ready = _ready(msg, f"shard {self.index}")
        except BaseException:
            proc.join(5)
            parent.close()
            raise
        self.proc, self.conn = proc, parent
        return ready

    def send(self, msg: tuple) -> None:
        data = encode(msg)
        try:
            self.conn.send_bytes(data)
        except (OSError, ValueError, AttributeError) as exc:
            raise LinkDown(f"pipe to shard {self.index}: {exc}") from exc

    def recv(self) -> tuple:
        try:
            data = self.conn.recv_bytes(message_bytes_max)
        except (EOFError, OSError, AttributeError) as exc:
            raise LinkDown(f"shard {self.index} process ended") from exc
        return decode(data, FROM_SHARD)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def exit_info(self) -> str:
        return "" if self.proc is None else f"pid {self.proc.pid}, exit code {self.proc.exitcode}"

    def reset(self) -> None:
        if self.proc is not None:
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def close(self, timeout: float) -> None:
        if self.proc is not None:
            self.proc.join(timeout)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
        if self.conn is not None:
            self.conn.close()


class _Outbox:
    """Bounded queue feeding one gRPC request stream; closing it ends the stream."""

    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue(maxsize=send_queue_max)
        self.closed = threading.Event()

    def requests(self) -> Any:
        while not self.closed.is_set():
            try:
                item = self.q.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                return
            yield item

    def put(self, data: bytes) -> None:
        if self.closed.is_set():
            raise LinkDown("stream closed")
        try:
            self.q.put(data, timeout=send_timeout_s)
        except queue.Full as exc:
            raise LinkDown(f"stream accepted nothing for {send_timeout_s} s") from exc


class RemoteLink(Link):
    """A shard served by ``tierchain shard serve`` at ``endpoint`` ("HOST:PORT"), over gRPC."""

    kind = "remote"

    def __init__(self, index: int, endpoint: str, start_timeout: float) -> None:
        self.index, self.where, self.start_timeout = index, endpoint, start_timeout
        self.channel: Any = None
        self.call: Any = None
        self.outbox: _Outbox | None = None
        self.pid: int | None = None
        self._giving_up = threading.Event()

    def connect(self) -> Ready:
        import grpc

        from tierchain.sharding.server import GRPC_OPTIONS, LINK_METHOD

        self.reset()
        options = [
            *GRPC_OPTIONS,
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        channel = grpc.insecure_channel(self.where, options=options)
        dial_s = min(self.start_timeout, dial_timeout_s_max)
        ready_future = grpc.channel_ready_future(channel)
        deadline = time.monotonic() + dial_s
        while True:
            try:
                ready_future.result(timeout=0.25)
                break
            except grpc.FutureTimeoutError as exc:
                if time.monotonic() > deadline or self._giving_up.is_set():
                    ready_future.cancel()
                    channel.close()
                    raise ShardUnavailable(
                        f"shard {self.index} at {self.where} unreachable (no connection in {dial_s:.0f} s)"
                    ) from exc
        outbox = _Outbox()
        call = channel.stream_stream(LINK_METHOD)(outbox.requests())
        # The greeting may wait for the server to settle a previous stream's rows.
        timer = threading.Timer(self.start_timeout, call.cancel)
        timer.start()
        try:
            msg = decode(next(call), FROM_SHARD)
            ready = _ready(msg, f"shard {self.index} at {self.where}")
        except (grpc.RpcError, StopIteration, MessageError, ShardUnavailable) as exc:
            outbox.closed.set()
            call.cancel()
            channel.close()
            detail = exc.details() if isinstance(exc, grpc.RpcError) else str(exc)
            raise ShardUnavailable(f"shard {self.index} at {self.where} refused the link: {detail}") from exc
        finally:
            timer.cancel()
        self.channel, self.call, self.outbox, self.pid = channel, call, outbox, ready.pid
        return ready

    def send(self, msg: tuple) -> None:
        outbox = self.outbox
        if outbox is None:
            raise LinkDown(f"shard {self.index} at {self.where} is not connected")
        outbox.put(encode(msg))

    def recv(self) -> tuple:
        import grpc

        call = self.call
        if call is None:
            raise LinkDown(f"shard {self.index} at {self.where} is not connected")
        try:
            data = next(call)
        except StopIteration as exc:
            raise LinkDown(f"shard {self.index} at {self.where} ended the stream") from exc
        except grpc.RpcError as exc:
            raise LinkDown(f"shard {self.index} at {self.where}: {exc.code().name} {exc.details()}") from exc
        return decode(data, FROM_SHARD)

    def kill(self) -> None:
        if self.call is not None:
            self.call.cancel()

    def stop_connecting(self) -> None:
        self._giving_up.set()

    def exit_info(self) -> str:
        return self.where

    def reset(self) -> None:
        if self.outbox is not None:
            self.outbox.closed.set()
        if self.call is not None:
            self.call.cancel()
        if self.channel is not None:
            self.channel.close()
        self.channel = self.call = self.outbox = None

    def close(self, timeout: float) -> None:
        self.reset()
