"""The shard side of the cluster: one ``Chain`` answering scheduler messages (docs/sharding.md).

``ShardSession`` turns decoded messages (``codec``) into calls on the chain
and sends the replies through a byte sink: admission codes at once, a ``done``
message once every accepted row of a sub-batch is committed, ``pong`` for the
scheduler's heartbeat. Two transports feed it:

* ``shard_process_main``: the body of a local shard process, reading a
  multiprocessing pipe (``send_bytes``/``recv_bytes``, the same codec). Only the
  scheduler that spawned it can write there, so its session is ``trusted``: it
  also takes ``submit_ids``, admitting the frames with the scheduler's tx ids
  (``Chain.submit(tx_ids=)``: parsed again, not hashed again; link.py, "Trust");
* ``ShardServer``: a gRPC server with one bidirectional stream method,
  ``/tierchain.Shard/Link`` (bytes in, bytes out; generic handlers, no codegen),
  run by ``tierchain shard serve``. One scheduler at a time: a new stream is
  refused (``error`` "busy") while the current one was heard from within
  ``takeover_s``; otherwise it supersedes it: the old stream is cancelled and its
  submissions settle (commit) before the new stream's ``ready``, so the
  scheduler's tx lookups after a reconnect see every row the old stream admitted.
  A ``close`` on a stream ends that stream only; the server (and its chain)
  stops on SIGTERM, draining its mempool first.

Malformed input is refused with an ``error`` message naming the ``MessageError``
and ends the stream; it never reaches the chain and never stops the server. A
stream's session is not ``trusted``: ``submit_ids`` is malformed input there. A
submission the chain cannot take whole (``submit_ids`` whose frames do not all
decode or whose ids are not one per row, a chain that failed) is answered with
one code for all its rows and admits none of them.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tierchain.config import ChainConfig
from tierchain.errors import Reject, RejectedError, TierChainError
from tierchain.sharding.codec import (
    TO_LOCAL_SHARD,
    TO_SHARD,
    MessageError,
    decode,
    encode,
    genesis_digest,
    message_bytes_max,
    receipts_columns,
)

__all__ = [
    "LINK_METHOD",
    "ShardServer",
    "ShardServerError",
    "ShardSession",
    "shard_process_main",
]

log = logging.getLogger("tierchain.shard")
LINK_METHOD = "/tierchain.Shard/Link"
reason_chars_max = 1000
stream_queue_max = 256  # outgoing messages of one stream not yet taken by gRPC
stream_send_timeout_s = 30.0  # a scheduler that stops reading for this long loses its stream
drain_timeout_s = 30.0  # a superseded stream's submissions are awaited this long
streams_max = 8  # concurrent Link streams; beyond, gRPC refuses them (RESOURCE_EXHAUSTED)
# A second scheduler is refused while the current one was heard from in the last takeover_s
# (it pings every heartbeat_s); a silent one (partitioned, its host gone) is superseded.
takeover_s_default = 10.0
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", message_bytes_max),
    ("grpc.max_send_message_length", message_bytes_max),
]


class ShardServerError(TierChainError):
    """The shard server cannot start (address in use, bad listen address)."""


class SessionEnded(Exception):
    """The stream a reply was meant for is gone."""


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:reason_chars_max]


class ShardSession:
    """One scheduler's conversation with the chain; replies go to ``sink`` (encoded bytes).

    ``trusted``: the peer is the scheduler that spawned this shard, over its pipe
    (link.py, "Trust"); only then does the session take ``submit_ids``. ``accepts``
    is what the transport decodes messages with.
    """

    def __init__(self, chain: Any, sink: Callable[[bytes], None], *, trusted: bool = False) -> None:
        self.chain, self._sink = chain, sink
        self.accepts = TO_LOCAL_SHARD if trusted else TO_SHARD
        self._sink_lock = threading.Lock()
        self._waits: queue.SimpleQueue = queue.SimpleQueue()
        self.settled = threading.Event()  # set once every admitted submission was answered
        threading.Thread(target=self._wait_loop, name="shard-waiter", daemon=True).start()

    def send(self, msg: tuple) -> None:
        self.send_bytes(encode(msg))

    def send_bytes(self, data: bytes) -> None:
        try:
            with self._sink_lock:
                self._sink(data)
        except (SessionEnded, OSError, ValueError):
            pass  # the scheduler settles this by tx lookup after it reconnects

    def ready(self) -> None:
        config: ChainConfig = self.chain.config
        self.send(("ready", self.chain.height, config.chain_id, genesis_digest(config), os.getpid()))

    def handle(self, msg: tuple) -> bool:
        """Act on one decoded message; False once the scheduler closed the session."""
        kind, req = msg[0], msg[1]
        if kind not in self.accepts:  # transports decode with ``accepts``; refused here too
            self.send(("error", 0, f"MessageError: {kind} is not taken on this link"))
            return True
        if kind in ("submit", "submit_ids"):
            try:
                sub = self.chain.submit(msg[2], tx_ids=msg[3] if kind == "submit_ids" else None)
            except RejectedError as exc:
                self.send(("codes", req, None, int(exc.code)))
                return True
            except Exception as exc:  # a chain that failed, or ids that do not fit the frames:
                # refuse every row (none was admitted); the scheduler's submitter may retry
                log.error("%s failed: %s", kind, _reason(exc))
                self.send(("codes", req, None, int(Reject.SHUTTING_DOWN)))
                return True
            self.send(("codes", req, sub.codes.tobytes(), 0))
            self._waits.put((req, sub))
        elif kind == "call":
            self.send_bytes(self._call(req, msg[2], msg[3]))
        elif kind == "ping":
            self.send(("pong", req, self.chain.height))
        elif kind == "close":
            return False
        return True

    def _call(self, req: int, method: str, args: tuple) -> bytes:
        try:
            if method == "height":
                value = self.chain.height
            elif method == "tx_many":
                value = [self.chain.tx(t) for t in args[0]]
            else:
                value = getattr(self.chain, method)(*args)
            return encode(("result", req, value))
        except Exception as exc:  # reported to the caller, never fatal here
            return encode(("error", req, _reason(exc)))

    def end(self) -> None:
        """No more submissions: the waiter answers those admitted, then sets ``settled``."""
        self._waits.put(None)

    def _wait_loop(self) -> None:
        try:
            while (item := self._waits.get()) is not None:
                req, sub = item
                try:
                    receipts = sub.wait()
                    codes, events = receipts_columns(receipts)
                    data = encode(("done", req, sub.heights.tobytes(), codes, events))
                except Exception as exc:  # the chain failed or the reply does not fit: reported
                    data = encode(("failed", req, _reason(exc)))
                self.send_bytes(data)
        finally:
            self.settled.set()


# --- local shard process (multiprocessing pipe) ----------------------------------------------


def shard_process_main(conn: Any, path: str, config: ChainConfig, proposer_seed: bytes) -> None:
    """Body of a local shard process: one Chain, driven by messages on the pipe ``conn``."""
    from tierchain.crypto import suite_of
    from tierchain.engine import gc_tuning
    from tierchain.engine.chain import Chain

    gc_tuning.tune()  # a node's process (engine/gc_tuning.py)
    # Ctrl-C in the operator's terminal reaches the whole process group; the scheduler
    # closes its shards itself (drain, commit), so a shard must not die of SIGINT first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    chain = Chain(path, config, suite_of(config).keys_from_seed(proposer_seed))
    # The pipe's other end is the scheduler's alone (link.py, "Trust").
    session = ShardSession(chain, conn.send_bytes, trusted=True)
    session.ready()
    while True:
        try:
            data = conn.recv_bytes(message_bytes_max)
        except (EOFError, OSError):
            break
        try:
            msg = decode(data, session.accepts)
        except MessageError as exc:
            session.send(("error", 0, _reason(exc)))
            continue
        if not session.handle(msg):
            break
    chain.close()  # drains the mempool: the waiter answers every admitted submission
    session.end()
    session.settled.wait(drain_timeout_s)
    session.send(("closed", 0))


# --- remote shard (gRPC) ----------------------------------------------------------------------


class ShardServer:
    """Serve ``chain`` on ``listen`` ("HOST:PORT"; port 0 picks a free one, see ``port``)."""

    def __init__(self, chain: Any, listen: str, *, takeover_s: float = takeover_s_default) -> None:
        import grpc

        self.chain, self.takeover_s = chain, takeover_s
        self._lock = threading.Lock()
        self._current: _Stream | None = None
        self._stopping = False
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=streams_max + 2, thread_name_prefix="shard-rpc"),
            options=[*GRPC_OPTIONS, ("grpc.so_reuseport", 0)],
            maximum_concurrent_rpcs=streams_max,
        )
        handler = grpc.stream_stream_rpc_method_handler(self._link)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("tierchain.Shard", {"Link": handler}),)
        )
        try:
            self.port = self._server.add_insecure_port(listen)
        except RuntimeError as exc:
            raise ShardServerError(f"cannot listen on {listen}: {exc}") from exc
        if not self.port:
            raise ShardServerError(f"cannot listen on {listen}")
        self.listen = f"{listen.rpartition(':')[0]}:{self.port}"

    def start(self) -> ShardServer:
        self._server.start()
        return self

    def stop(self, grace_s: float = 1.0) -> None:
        """Let the current scheduler hear of every admitted row, then end every stream."""
        with self._lock:
            self._stopping = True
            current = self._current
        if current is not None and current.session is not None:
            current.session.end()
            current.session.settled.wait(drain_timeout_s)
        self._server.stop(grace_s).wait()

    def _link(self, request_iterator: Any, context: Any) -> Any:
        stream = _Stream(context)

        def sink(data: bytes) -> None:
            if stream.ended.is_set():
                raise SessionEnded
            try:
                stream.out.put(data, timeout=stream_send_timeout_s)
            except queue.Full:
                log.error("scheduler stopped reading; dropping its stream")
                stream.ended.set()
                context.cancel()
                raise SessionEnded from None

        peer = context.peer()
        refusal = None
        with self._lock:
            old = self._current
            if self._stopping:
                return
            silent_s = None if old is None or old.ended.is_set() else time.monotonic() - old.last_msg
            if silent_s is not None and silent_s < self.takeover_s:
                refusal = f"busy: serving the scheduler at {old.peer} (heard {silent_s:.1f} s ago)"
            else:
                stream.session = ShardSession(self.chain, sink)
                self._current = stream
        if refusal is not None:
            log.warning("refused a second scheduler", extra={"fields": {"peer": peer}})
            yield encode(("error", 0, refusal))
            return
        session = stream.session
        if old is not None and old.session is not None:
            log.warning("a new scheduler stream supersedes a silent one", extra={"fields": {"peer": peer}})
            old.context.cancel()
            old.session.end()
            if not old.session.settled.wait(drain_timeout_s):
                log.error("previous stream's submissions did not settle in %s s", drain_timeout_s)
        context.add_callback(stream.ended.set)
        session.ready()
        log.info("scheduler connected", extra={"fields": {"peer": peer}})

        def reader() -> None:
            closing = False
            try:
                for data in request_iterator:
                    stream.last_msg = time.monotonic()
                    try:
                        msg = decode(data, session.accepts)  # TO_SHARD: any peer may be on a stream
                    except MessageError as exc:
                        log.warning("refused a message from %s: %s", peer, exc)
                        session.send(("error", 0, _reason(exc)))
                        break
                    if not session.handle(msg):
                        closing = True
                        break
            except Exception as exc:  # the stream broke (cancelled, peer gone)
                log.info("stream from %s ended: %s", peer, _reason(exc))
            session.end()
            if closing:
                session.settled.wait(drain_timeout_s)
                session.send(("closed", 0))
            stream.out.put(None)  # after the replies above, in order

        threading.Thread(target=reader, name="shard-link-reader", daemon=True).start()
        try:
            while True:
                try:
                    item = stream.out.get(timeout=0.5)
                except queue.Empty:
                    if stream.ended.is_set():
                        break
                    continue
                if item is None:
                    break
                yield item
        finally:
            stream.ended.set()
            with self._lock:
                if self._current is stream:
                    self._current = None
            log.info("scheduler disconnected", extra={"fields": {"peer": peer}})


class _Stream:
    """One Link stream: its outgoing queue and when its scheduler was last heard."""

    def __init__(self, context: Any) -> None:
        self.context, self.peer = context, context.peer()
        self.out: queue.Queue = queue.Queue(maxsize=stream_queue_max)
        self.ended = threading.Event()
        self.last_msg = time.monotonic()
        self.session: ShardSession | None = None
