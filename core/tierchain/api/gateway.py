"""The API over HTTP/JSON, on the node's HTTP listen address beside ``/v1`` (docs/api.md).

``POST /api/v1/<Method>`` with the request message as JSON (proto3's JSON mapping, field
names as in the .proto: bytes as base64, 64-bit integers as strings or numbers) answers the
response message as JSON, every field present; a streaming method answers newline-delimited
JSON (``application/x-ndjson``), one message a line, until the client goes away. A refusal
is the ``ApiError``'s HTTP status and ``{"error": NAME, "detail": text}``, as ``/v1``'s.
``GET /openapi.json`` is the OpenAPI document of the same methods (``tierchain.api.openapi``).

Signed calls carry the ``tierchain-*`` headers; the signed request bytes are the body as
sent (``tierchain.api.auth``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import json_format

from tierchain.api import auth, openapi, schema
from tierchain.api.errors import ApiError
from tierchain.api.service import NodeService, ThreadBudget

log = logging.getLogger("tierchain.api")

PREFIX = "/api/v1/"
# The streaming methods' paths (a test checks them against the .proto): a stream whose client
# half-closes ends at once (rpc.JsonErrorProtocol.eof_received).
STREAM_PATHS = (f"{PREFIX}StreamBlocks", f"{PREFIX}StreamEvents")
streams_max = 16
waits_max = 64  # calls that may block a thread waiting for commits at once (Submit wait_s, AwaitReceipts)
uploads_max = 16  # request bodies being received at once
body_timeout_s = 30.0  # a body must arrive whole within this, or BODY_TRUNCATED
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def to_json(msg: Any) -> dict:
    return json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class Gateway:
    """The HTTP/JSON face of ``NodeService`` for an ASGI app (``NodeApp`` routes to it)."""

    def __init__(
        self,
        service: NodeService,
        call: Callable[..., Awaitable[Any]],
        body_timeout_s: float = body_timeout_s,
    ) -> None:
        """``call(fn, *args)``: run a quick blocking function off the event loop (the node's
        pool). What may block for long — streams, waits for commit — runs in the gateway's own
        pool, bounded (``streams_max``, ``waits_max``), so it never starves the node's."""
        self.service, self.call, self.body_timeout_s = service, call, body_timeout_s
        self.methods = schema.methods()
        self.streams = ThreadBudget(streams_max, "streams open")
        self.waits = ThreadBudget(waits_max, "calls waiting for commits")
        self._slow = concurrent.futures.ThreadPoolExecutor(
            streams_max + waits_max, thread_name_prefix="api-wait"
        )
        self._uploads: asyncio.Semaphore | None = None
        self._openapi: bytes | None = None

    def close(self) -> None:
        """Release the gateway's own threads (waits and streams end with their clients)."""
        self._slow.shutdown(wait=False, cancel_futures=True)

    async def _in_slow(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._slow, fn, *args)

    def handles(self, path: str) -> bool:
        return path.startswith(PREFIX) or path == "/openapi.json"

    async def __call__(
        self, scope: dict[str, Any], receive: Receive, send: Send, headers: list[tuple[bytes, bytes]] = ()
    ) -> None:
        """Answer one request; ``headers`` go on every response (the node's request id)."""
        extra = list(headers)

        async def out(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message["headers"]) + extra}
            await send(message)

        try:
            await self._serve(scope, receive, out)
        except ApiError as exc:
            await _send_json(out, exc.http_status, {"error": exc.code, "detail": exc.detail})
        except Exception as exc:  # a bug: answered, and logged with its traceback
            log.exception("API call failed", extra={"fields": {"path": scope.get("path", "")[:200]}})
            await _send_json(out, 500, {"error": "INTERNAL_ERROR", "detail": type(exc).__name__})

    async def _serve(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path, verb = scope["path"], scope["method"]
        if path == "/openapi.json":
            if verb != "GET":
                raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "METHOD_NOT_ALLOWED", "use GET")
            if self._openapi is None:
                self._openapi = json.dumps(openapi.document()).encode()
            await _send(send, 200, self._openapi, b"application/json")
            return
        name = path[len(PREFIX) :]
        method = self.methods.get(name)
        if method is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, "NOT_FOUND", f"no method {name[:80]!r}")
        if verb != "POST":
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "METHOD_NOT_ALLOWED", "use POST")
        if self._uploads is None:
            self._uploads = asyncio.Semaphore(uploads_max)
        async with self._uploads:
            raw = await _body(scope, receive, self.body_timeout_s)
        if raw is None:
            return  # the client left
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        peer = "{}:{}".format(*scope["client"]) if scope.get("client") else "unknown"
        caller = self.service.auth.caller(f"/{schema.SERVICE}/{name}", raw, headers, peer)
        request = schema.message(method.input_type.full_name)()
        try:
            json_format.Parse(raw or b"{}", request)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "BAD_ARGUMENT", str(exc)[:300]) from None
        self.service.auth.charge(caller, auth.cost(name, request))
        if not method.server_streaming:
            if name == "AwaitReceipts" or (name == "Submit" and request.wait_s):
                with self.waits:
                    answer = await self._in_slow(self.service.call, name, request, caller)
            else:
                answer = await self.call(self.service.call, name, request, caller)
            await _send(send, 200, json.dumps(to_json(answer)).encode(), b"application/json")
            return
        with self.streams:
            await self._stream(name, request, caller, receive, send)

    async def _stream(self, name: str, request: Any, caller: Any, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        items = self.service.stream(name, request, caller, gone.is_set)
        started = False
        try:
            while not gone.is_set():
                item = await self._in_slow(next, items, None)
                if not started:  # the first item (or a refusal) decides the status
                    await send(_start(200, b"application/x-ndjson"))
                    started = True
                if item is None:
                    break
                await send(
                    {
                        "type": "http.response.body",
                        "body": json.dumps(to_json(item)).encode() + b"\n",
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b""})
        except ApiError as exc:
            if started:  # a refusal after the first line: the last line says it
                line = json.dumps({"error": exc.code, "detail": exc.detail}).encode() + b"\n"
                await send({"type": "http.response.body", "body": line})
            else:
                raise
        finally:
            gone.set()
            watcher.cancel()
            items.close()


async def _body(scope: dict[str, Any], receive: Receive, timeout_s: float = body_timeout_s) -> bytes | None:
    """The whole request body (at most ``auth.request_bytes_max``, within ``body_timeout_s``),
    or None if the client left."""
    length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    if length is not None and (not length.isdigit() or int(length) > auth.request_bytes_max):
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT, "TOO_LARGE", f"at most {auth.request_bytes_max} bytes"
        )
    parts, got = [], 0
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "BODY_TRUNCATED",
                f"{got} body bytes in {timeout_s:g} s",
            ) from None
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        got += len(parts[-1])
        if got > auth.request_bytes_max:
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT, "TOO_LARGE", f"at most {auth.request_bytes_max} bytes"
            )
        if not message.get("more_body", False):
            return b"".join(parts)


def _start(status: int, content_type: bytes, length: int | None = None) -> dict[str, Any]:
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(_start(status, content_type, len(body)))
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, value: dict) -> None:
    await _send(send, status, json.dumps(value).encode(), b"application/json")


class GatewayServer:
    """The HTTP/JSON API alone on ``host:port`` (a cluster's scheduler: it has no node HTTP
    endpoint to share), with ``GET /health``; served by uvicorn from a thread, blocking calls in
    a small pool. ``start()`` / ``stop()``; ``address`` once bound."""

    def __init__(
        self,
        service: NodeService,
        host: str,
        port: int,
        pool_threads: int = 8,
        metrics: Any = None,
        tls: Any = None,
    ) -> None:
        """``metrics``: served at ``GET /metrics`` (an ``exposition()`` of Prometheus text;
        ``tierchain.api.metrics.SourceMetrics`` for a cluster's health); ``tls``: a
        ``grpc_server.TlsFiles`` to serve over TLS (or mutual TLS)."""
        import socket
        import threading

        import uvicorn

        self._pool = concurrent.futures.ThreadPoolExecutor(pool_threads, thread_name_prefix="api-http")

        async def call(fn: Callable[..., Any], *args: Any) -> Any:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

        self.gateway = Gateway(service, call)

        async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            if scope["path"] == "/health":
                await _send_json(send, 200, {"status": "ok"})
            elif scope["path"] == "/metrics" and metrics is not None:
                body = await call(metrics.exposition)
                await _send(send, 200, bytes(body), body.content_type)
            elif self.gateway.handles(scope["path"]):
                await self.gateway(scope, receive, send)
            else:
                await _send_json(
                    send, 404, {"error": "NOT_FOUND", "detail": f"no path {scope['path'][:200]!r}"}
                )

        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(1024)
        except OSError:
            self._sock.close()
            raise
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app, lifespan="off", ws="none", log_config=None, access_log=False, server_header=False,
            date_header=False, timeout_graceful_shutdown=2, **({} if tls is None else tls.uvicorn_options()),
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])),
                                        name="api-http", daemon=True)  # fmt: skip

    def start(self, timeout: float = 10.0) -> GatewayServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the API on {self.address[0]}:{self.address[1]} did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(10)
        self._sock.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.gateway.close()
