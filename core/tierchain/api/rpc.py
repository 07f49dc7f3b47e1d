"""The node's local HTTP endpoint (``tierchain node run``) and its client.

Binary in, JSON out. The server listens on loopback by default; it is the
operator's control and submission surface, not a public API gateway.

* ``POST /v1/txs[?wait=SECONDS]`` body: framed transactions (``wire.frame``),
  1..``limits.batch_bytes_max`` bytes, sent with a ``Content-Length``. Reply:
  per transaction the reject code name (``OK`` if accepted) and tx id; with
  ``wait`` (0..``wait_s_max``, decimal), also the receipts once durably
  committed, or ``"timeout": true``. A receipt's code is shown by the name the
  chain's apps give it (an app's own refusal codes included; ``AppSet.reject_name``).
* ``GET /v1/head``, ``GET /v1/block/<height>``, ``GET /v1/tx/<hex id>``,
  ``GET /v1/state/<hex key>``, ``GET /v1/nonce/<hex public key>``.
* ``GET /v1/scan/<hex prefix>[?after=<hex key>&limit=N]``: up to ``limit`` (1..
  ``scan_limit_max``, default 100) committed (key, value) pairs whose key starts with the
  prefix (1..``limits.key_bytes_max`` bytes), in key order after ``after`` (paging).
* ``POST /v1/app/<name>``: an app's endpoint (``tierchain.engine.apps.Endpoint``), a JSON
  object of at most ``app_body_bytes_max`` bytes in, JSON out; its refusals are the app's
  named codes (``EndpointError``: 400, 401, 403, 404 or 429).
* ``GET /v1/proof/state/<hex key>``, ``GET /v1/proof/tx/<hex id>``: the proof and
  the header it verifies against, both as hex of their binary encodings
  (``tierchain.proofs``: ``verify_state_encoded`` / ``decode_tx_proof`` + ``verify_tx``),
  so a client checks them without trusting this node (docs/proofs.md).
* ``GET /metrics`` (Prometheus text), ``GET /health`` (liveness), ``GET /ready`` (readiness:
  ``metrics.NodeMetrics.readiness``). Every answer carries ``X-Request-Id``: the request's own
  if a sane token, else a new one; the JSON log lines of a request name it (``request_id``).

Every request gets an answer, malformed ones included: an error is a JSON
object ``{"error": CODE, "detail": text}`` with a code from ``ERROR_CODES`` or
a ``Reject`` name. A request is checked whole (method, path, query, length,
body, arguments) before anything reaches the chain, so a batch is admitted
whole or not at all: a body that arrives short is never submitted.

Server: a plain ASGI app (``NodeApp``) served by uvicorn's httptools protocol
on uvloop, in one thread of the node process beside the Chain (why uvicorn:
docs/operations.md, "Run"). Chain calls (decode and signature checks, LMDB
reads) run in a small thread pool, and waits for commit are the Submission's
future bridged to asyncio, so neither blocks the event loop. uvicorn logs
through the ``uvicorn.*`` loggers into the node's JSON-lines logging; its
access log is off and its plain-text 400 page is replaced by a JSON one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import httptools
import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tierchain import limits
from tierchain.api.auth import Authenticator
from tierchain.api.errors import ApiError
from tierchain.api.explorer import Explorer
from tierchain.api.gateway import STREAM_PATHS, Gateway
from tierchain.api.grpc_server import GrpcServer, TlsFiles
from tierchain.api.metrics import NodeMetrics
from tierchain.api.service import NodeService
from tierchain.crypto import CryptoSuite
from tierchain.engine.apps import AppSet, EndpointError
from tierchain.engine.chain import Chain
from tierchain.engine.queries import scan_limit_max
from tierchain.errors import Reject, RejectedError, TierChainError
from tierchain.state.tree import StateUnavailable
from tierchain.wire.block import Header, Receipt

log = logging.getLogger("tierchain.rpc")

wait_s_max = 60.0  # longest ?wait a request may ask for
waits_max = 1024  # requests waiting for commit at once; beyond, 503 TOO_MANY_WAITS before admission
uploads_max = 16  # request bodies held at once (memory: uploads_max * batch_bytes_max at worst)
body_timeout_s = 30.0  # a body must arrive whole within this, or 408 BODY_TRUNCATED
backlog = 2048  # listen queue: a burst of new connections waits in it instead of being reset
pool_threads = 4  # threads running chain calls
stop_grace_s = 5.0  # on stop, requests in flight get this long to finish
app_body_bytes_max = 1 << 20  # an app endpoint's JSON body
scan_default = 100  # pairs a scan answers without ?limit
poll_s = 0.1  # body reads and commit waits look at the stop flag this often

ERROR_CODES = {
    "BAD_REQUEST": "not parseable as HTTP/1.1 (bad request line, header or chunk)",
    "BAD_CONTENT_LENGTH": "POST without Content-Length, or one that is not a decimal integer, or 0",
    "BODY_TRUNCATED": "fewer body bytes than Content-Length (client half-closed, or body_timeout_s passed)",
    "BAD_QUERY": "unknown, repeated or malformed query parameter (wait: decimal seconds 0..wait_s_max)",
    "BAD_HEIGHT": "a block height that is not a decimal integer in 0..2^64-1",
    "BAD_TX_ID": "a tx id that is not 64 hex digits (32 bytes)",
    "BAD_PUBLIC_KEY": "a public key that is not 64 hex digits (32 bytes)",
    "BAD_KEY": "a state key that is not even-length hex of 1..limits.key_bytes_max bytes",
    "NOT_FOUND": "no such path",
    "NO_SUCH_ENDPOINT": "no app of this chain has an endpoint of that name",
    "BAD_JSON": "an app endpoint's body is not a JSON object (UTF-8, at most app_body_bytes_max bytes)",
    "NO_SUCH_BLOCK": "no block at that height",
    "NO_SUCH_TX": "no committed transaction with that id",
    "NO_PROOF": "this chain keeps no state tree for proofs (interim commitment) or not at that height",
    "METHOD_NOT_ALLOWED": "the path exists but not for this method",
    "TOO_MANY_WAITS": "waits_max requests already wait for commit: retry, or submit without wait",
    "NODE_FAILED": "the chain failed while the request waited (its transactions' fate is unknown)",
    "NOT_READY": "GET /ready: the node should get no traffic now (reason: NodeMetrics.readiness)",
    "INTERNAL_ERROR": "a bug: logged with its traceback in the node's JSON log",
}
"""The endpoint's own codes; a batch refused whole has a ``Reject`` name (BATCH_TOO_LARGE, SHUTTING_DOWN)."""

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")
_HEIGHT = re.compile(r"[0-9]{1,20}")
_WAIT = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
_LENGTH = re.compile(r"[0-9]{1,20}")
_ARG_PATH = re.compile(r"/v1/(block|tx|state|scan|nonce|proof/state|proof/tx)/([^/]*)")
_LIMIT = re.compile(r"[0-9]{1,6}")


class RpcError(TierChainError):
    """The node could not be reached or answered with an error (``code``: its named code, if any)."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class HttpError(Exception):
    """A request refused with an HTTP status and a named code (the server's internal control flow)."""

    def __init__(self, status: int, code: str, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()):
        super().__init__(f"{code}: {detail}")
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def header_json(h: Header, suite: CryptoSuite) -> dict[str, Any]:
    """``h`` as JSON; its hash is computed by the chain's ``suite`` (``chain.suite``)."""
    return {
        "height": h.height,
        "hash": h.hash(suite).hex(),
        "prev_hash": h.prev_hash.hex(),
        "timestamp_ms": h.timestamp_ms,
        "tx_count": h.tx_count,
        "tx_root": h.tx_root.hex(),
        "receipt_root": h.receipt_root.hex(),
        "state_root": h.state_root.hex(),
        "proposer": h.proposer.hex(),
        "signature": h.signature.hex(),
        "chain_id": h.chain_id,
        "suite": suite.name,  # the chain's crypto suite: what its keys, signatures and hashes are
    }


def receipt_json(r: Receipt | None, app_set: AppSet) -> dict[str, Any] | None:
    """``r`` as JSON; its code by name, as the chain's ``app_set`` names it (an app's own
    refusals included: ``AppSet.reject_name``)."""
    if r is None:
        return None
    return {
        "tx_id": r.tx_id.hex(),
        "code": app_set.reject_name(r.code),
        "events": [{"topic": e.topic.decode(errors="replace"), "data": e.data.hex()} for e in r.events],
    }


def error_body(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode()


# --- argument checks (each raises HttpError with a named code) ----------------------------


def hex_arg(text: str, code: str, what: str, lo: int, hi: int) -> bytes:
    """``text`` as bytes if it is even-length hex of ``lo..hi`` bytes (no spaces or signs, unlike fromhex)."""
    if not _HEX.fullmatch(text) or not lo <= len(text) // 2 <= hi:
        size = f"{lo}" if lo == hi else f"{lo}..{hi}"
        got = f"{len(text)} hex digits" if _HEX_DIGITS.fullmatch(text) else f"non-hex {text[:20]!r}"
        raise HttpError(400, code, f"{what} must be {size} bytes as even-length hex; got {got}")
    return bytes.fromhex(text)


def height_arg(text: str) -> int:
    if not _HEIGHT.fullmatch(text) or int(text) >= 1 << 64:
        raise HttpError(400, "BAD_HEIGHT", f"a height is a decimal integer in 0..2^64-1; got {text[:80]!r}")
    return int(text)


def query_args(scope: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once and each one of ``allowed``."""
    raw = scope.get("query_string", b"").decode("latin-1")
    try:
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True, strict_parsing=True) if raw else []
    except ValueError:
        raise HttpError(400, "BAD_QUERY", f"malformed query string {raw[:80]!r}") from None
    args: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            accepted = ", ".join(allowed) or "none"
            raise HttpError(400, "BAD_QUERY", f"unknown query parameter {name[:40]!r} (accepted: {accepted})")
        if name in args:
            raise HttpError(400, "BAD_QUERY", f"query parameter {name!r} given twice")
        args[name] = value
    return args


def wait_arg(text: str | None) -> float:
    """Seconds to wait for commit: a plain decimal in 0..wait_s_max (0 or absent: do not wait)."""
    if text is None:
        return 0.0
    if not _WAIT.fullmatch(text) or float(text) > wait_s_max:
        raise HttpError(
            400, "BAD_QUERY", f"wait must be decimal seconds in 0..{wait_s_max:g}; got {text[:40]!r}"
        )
    return float(text)


def content_length(scope: dict[str, Any]) -> int:
    """The declared body length of a POST, checked against the batch limit before any byte is read."""
    values = [v for k, v in scope["headers"] if k == b"content-length"]
    if any(k == b"transfer-encoding" for k, _ in scope["headers"]) or not values:
        raise HttpError(
            411, "BAD_CONTENT_LENGTH", "Content-Length is required (chunked uploads are not accepted)"
        )
    text = values[0].decode("latin-1").strip()
    if len(values) > 1 or not _LENGTH.fullmatch(text):
        raise HttpError(
            400, "BAD_CONTENT_LENGTH", f"Content-Length must be one decimal integer; got {text!r}"
        )
    length = int(text)
    if length > limits.batch_bytes_max:
        raise HttpError(
            413, Reject.BATCH_TOO_LARGE.name, f"{length} bytes; at most {limits.batch_bytes_max} per request"
        )
    if length == 0:
        raise HttpError(400, "BAD_CONTENT_LENGTH", "an empty body holds no transaction")
    return length


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def request_id(scope: dict[str, Any]) -> str:
    """The request's id: its first ``X-Request-Id`` if 1..128 of ``[A-Za-z0-9._-]``, else a new
    one (16 hex digits); echoed in the answer and named in the request's log lines."""
    given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
    return given if _REQUEST_ID.fullmatch(given) else os.urandom(8).hex()


# --- the ASGI app ------------------------------------------------------------------------

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class NodeApp:
    """The endpoint as a plain ASGI 3 application over one Chain."""

    def __init__(
        self,
        chain: Chain,
        pool: concurrent.futures.Executor,
        body_timeout_s: float,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.chain, self.pool, self.body_timeout_s = chain, pool, body_timeout_s
        self.waiting = 0
        self.stopping = False  # set by NodeServer.stop (another thread): uploads and waits end at once
        self.uploads: asyncio.Semaphore | None = None  # made on the server's loop
        self.metrics = NodeMetrics(chain, stopping=lambda: self.stopping)  # GET /metrics, /ready
        # The network API (docs/api.md): one service for the HTTP/JSON gateway here and for
        # the gRPC server beside it (NodeServer), sharing its callers' budgets and its app
        # endpoints (each made once for this node: their own state, e.g. rate limits).
        self.api = NodeService(chain, authenticator or Authenticator(chain), submit=self.metrics.submit)
        self.endpoints = self.api.endpoints
        self.gateway = Gateway(self.api, self.call, body_timeout_s)
        self.explorer = Explorer(self.api, self.call)  # GET /explorer/: the web explorer (docs/api.md)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served (uvicorn refuses upgrades)
        rid = request_id(scope)
        current_request_id.set(rid)  # this request's task only: its log lines name it
        if self.gateway.handles(scope["path"]):  # /api/v1/<Method>, /openapi.json: it answers itself
            await self.gateway(scope, receive, send, [(b"x-request-id", rid.encode())])
            return
        if self.explorer.handles(scope["path"]):  # /explorer/...: its pages and verify; it answers itself
            return await self.explorer(scope, receive, send, [(b"x-request-id", rid.encode())])
        try:
            status, body = await self.route(scope, receive)
            headers: tuple[tuple[bytes, bytes], ...] = ()
        except HttpError as exc:
            status, body, headers = exc.status, error_body(exc.code, exc.detail), exc.headers
        except Exception as exc:  # a bug: answered, and logged with its traceback as one JSON line
            fields = {"path": scope.get("path", "")[:200], "request_id": rid}
            log.exception("request failed", extra={"fields": fields})
            status, body, headers = 500, error_body("INTERNAL_ERROR", type(exc).__name__), ()
        if body is None:
            return  # the client went away before its request was whole: nobody to answer
        head = [
            (b"content-type", getattr(body, "content_type", b"application/json")),  # /metrics: text
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()),
        ]
        if status >= 400 and scope["method"] == "POST":
            head.append((b"connection", b"close"))  # an unread body must not be parsed as a request
        await send({"type": "http.response.start", "status": status, "headers": head + list(headers)})
        await send({"type": "http.response.body", "body": body})

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking chain call in the pool, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def route(self, scope: dict[str, Any], receive: Receive) -> tuple[int, bytes | None]:
        path, method = scope["path"], scope["method"]
        if path in ("/metrics", "/health", "/ready"):  # operations: docs/operations.md, "Metrics, ..."
            allow(method, "GET")
            query_args(scope, ())
            if path == "/metrics":
                return 200, await self.call(self.metrics.exposition)
            if path == "/health":  # liveness: the process serves
                return 200, json.dumps({"status": "ok"}).encode()
            r = self.metrics.readiness()  # no I/O: answered on the loop even when the pool is busy
            if r.ready:
                return 200, json.dumps({"status": "ready", "height": r.height}).encode()
            return 503, json.dumps({"error": "NOT_READY", "reason": r.reason, "detail": r.detail}).encode()
        if path == "/v1/txs":
            allow(method, "POST")
            return await self.submit(scope, receive)
        if path == "/v1/head":
            allow(method, "GET")
            query_args(scope, ())
            return 200, json.dumps(header_json(self.chain.head(), self.chain.suite)).encode()
        if path.startswith("/v1/app/"):
            allow(method, "POST")
            query_args(scope, ())
            return await self.app_call(path[len("/v1/app/") :], scope, receive)
        m = _ARG_PATH.fullmatch(path)
        if m is None:
            raise HttpError(404, "NOT_FOUND", f"no such path {path[:200]!r}")
        allow(method, "GET")
        kind, arg = m.groups()
        if kind == "scan":
            return 200, await self.call(
                self.scan,
                hex_arg(arg, "BAD_KEY", "a key prefix", 1, limits.key_bytes_max),
                query_args(scope, ("after", "limit")),
            )
        query_args(scope, ())
        if kind == "block":
            return 200, await self.call(self.block, height_arg(arg))
        if kind == "tx":
            return 200, await self.call(self.tx, hex_arg(arg, "BAD_TX_ID", "a tx id", 32, 32))
        if kind == "proof/state":
            key = hex_arg(arg, "BAD_KEY", "a state key", 1, limits.key_bytes_max)
            return 200, await self.call(self.state_proof, key)
        if kind == "proof/tx":
            return 200, await self.call(self.tx_proof, hex_arg(arg, "BAD_TX_ID", "a tx id", 32, 32))
        if kind == "state":
            key = hex_arg(arg, "BAD_KEY", "a state key", 1, limits.key_bytes_max)
            value = await self.call(self.chain.state_get, key)
            return 200, json.dumps({"value": None if value is None else value.hex()}).encode()
        pk = hex_arg(arg, "BAD_PUBLIC_KEY", "a public key", limits.public_key_bytes, limits.public_key_bytes)
        return 200, json.dumps({"nonce": await self.call(self.chain.nonce, pk)}).encode()

    def scan(self, prefix: bytes, args: dict[str, str]) -> bytes:
        after = hex_arg(args.get("after", ""), "BAD_KEY", "after", 0, limits.key_bytes_max)
        text = args.get("limit", str(scan_default))
        if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= scan_limit_max:
            raise HttpError(
                400, "BAD_QUERY", f"limit must be a decimal in 1..{scan_limit_max}; got {text[:20]!r}"
            )
        pairs = self.chain.state_scan(prefix, int(text), after)
        return json.dumps({"pairs": [[k.hex(), v.hex()] for k, v in pairs]}).encode()

    async def app_call(self, name: str, scope: dict[str, Any], receive: Receive) -> tuple[int, bytes | None]:
        handler = self.endpoints.get(name)
        if handler is None:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise HttpError(404, "NO_SUCH_ENDPOINT", f"no endpoint {name[:80]!r} (this chain's: {known})")
        length = content_length(scope)
        if length > app_body_bytes_max:
            raise HttpError(
                413, "BAD_JSON", f"{length} bytes; an endpoint takes at most {app_body_bytes_max}"
            )
        raw = await self.read_body(receive, length)
        if raw is None:
            return 200, None
        # The network API's authenticator and budgets guard the app endpoints here too: with
        # signed calls required, an unsigned POST /v1/app is refused as CallApp would be.
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        peer = "{}:{}".format(*scope["client"]) if scope.get("client") else "unknown"
        try:
            caller = self.api.auth.caller(f"/v1/app/{name}", raw, headers, peer)
            self.api.auth.charge(caller)
        except ApiError as exc:
            raise HttpError(exc.http_status, exc.code, exc.detail) from None
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "BAD_JSON", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, "BAD_JSON", "the body is not a JSON object")
        try:
            answer = await self.call(handler, body)
        except EndpointError as exc:
            raise HttpError(exc.status, exc.code, exc.detail) from None
        return 200, json.dumps(answer).encode()

    def block(self, height: int) -> bytes:
        h = self.chain.header(height)
        if h is None:
            raise HttpError(404, "NO_SUCH_BLOCK", f"no block at height {height} (head {self.chain.height})")
        receipts = self.chain.receipts(h.height) or []
        return json.dumps(
            {
                "header": header_json(h, self.chain.suite),
                "receipts": [receipt_json(r, self.chain.apps) for r in receipts],
            }
        ).encode()

    def state_proof(self, key: bytes) -> bytes:
        try:
            with self.chain.store.read() as r:  # one snapshot: the proof and its header agree
                height = r.last("headers")[0]
            proof = self.chain.prove_state(key, height)
        except StateUnavailable as exc:
            raise HttpError(404, "NO_PROOF", str(exc)) from None
        header = self.chain.header(height)
        return json.dumps(
            {
                "height": height,
                "header": header.encode().hex(),
                "value": None if proof.value is None else proof.value.hex(),
                "proof": proof.encode(suite=self.chain.suite.name).hex(),
            }
        ).encode()

    def tx_proof(self, tx_id: bytes) -> bytes:
        proof = self.chain.prove_tx(tx_id)
        if proof is None:
            raise HttpError(404, "NO_SUCH_TX", f"no committed transaction {tx_id.hex()}")
        header = self.chain.header(proof.height)
        return json.dumps(
            {"height": proof.height, "header": header.encode().hex(), "proof": proof.encode().hex()}
        ).encode()

    def tx(self, tx_id: bytes) -> bytes:
        found = self.chain.tx(tx_id)
        if found is None:
            raise HttpError(404, "NO_SUCH_TX", f"no committed transaction {tx_id.hex()}")
        height, pos, raw, receipt = found
        return json.dumps(
            {
                "height": height,
                "position": pos,
                "tx": raw.hex(),
                "receipt": receipt_json(receipt, self.chain.apps),
            }
        ).encode()

    async def submit(self, scope: dict[str, Any], receive: Receive) -> tuple[int, bytes | None]:
        wait_s = wait_arg(query_args(scope, ("wait",)).get("wait"))
        length = content_length(scope)
        if wait_s and self.waiting >= waits_max:
            raise HttpError(503, "TOO_MANY_WAITS", f"{waits_max} requests already wait for commit")
        self.waiting += bool(wait_s)
        try:
            body = await self.read_body(receive, length)
            if body is None:
                return 200, None
            try:
                sub = await self.call(self.metrics.submit, body)  # chain.submit, counted and timed
            except RejectedError as exc:
                status = {Reject.SHUTTING_DOWN: 503, Reject.BATCH_TOO_LARGE: 413, Reject.READ_ONLY: 403}.get(
                    exc.code, 400
                )
                raise HttpError(status, exc.code.name, exc.detail) from None
            reply: dict[str, Any] = {
                "codes": [Reject(int(c)).name for c in sub.codes],
                "tx_ids": [t.hex() for t in sub.tx_ids],
            }
            if wait_s:
                await self.wait(sub, wait_s, reply)
            return 200, json.dumps(reply).encode()
        finally:
            self.waiting -= bool(wait_s)

    async def read_body(self, receive: Receive, length: int) -> bytes | None:
        """The whole body, or None if the client left first; 408 BODY_TRUNCATED if it stalls short."""
        if self.uploads is None:
            self.uploads = asyncio.Semaphore(uploads_max)
        async with self.uploads:
            parts, got = [], 0
            deadline = time.monotonic() + self.body_timeout_s
            while True:
                message = await self.receive_until(receive, deadline)
                if message is None:
                    raise HttpError(
                        408, "BODY_TRUNCATED", f"{got} of {length} body bytes in {self.body_timeout_s:g} s"
                    )
                if message["type"] == "http.disconnect":
                    fields = {"received": got, "length": length, "request_id": current_request_id.get()}
                    log.info("request body truncated", extra={"fields": fields})
                    return None
                parts.append(message.get("body", b""))
                got += len(parts[-1])
                if not message.get("more_body", False):
                    break
        if got != length:  # the HTTP parser frames by Content-Length, so this is a bug, not input
            raise HttpError(400, "BODY_TRUNCATED", f"{got} of {length} body bytes")
        return b"".join(parts)

    async def receive_until(self, receive: Receive, deadline: float) -> dict[str, Any] | None:
        """The next ASGI message, or None at ``deadline``; 503 SHUTTING_DOWN once the server stops.

        Waits in slices so that a stop answers a stalled upload at once instead of
        holding the node's shutdown for the grace period.
        """
        while True:
            if self.stopping:
                raise HttpError(503, Reject.SHUTTING_DOWN.name, "the node is stopping")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:  # a cancelled receive() loses nothing: uvicorn keeps the body until it returns
                return await asyncio.wait_for(receive(), min(remaining, poll_s))
            except TimeoutError:
                continue

    async def wait(self, sub: Any, wait_s: float, reply: dict[str, Any]) -> None:
        """Add receipts and heights to ``reply`` once committed, else ``timeout`` (at ``wait_s`` or a stop).

        The Submission's future is not cancelled on a timeout (asyncio.wait, not
        wait_for): it is the chain's, and settles at commit whoever still waits.
        """
        committed = asyncio.ensure_future(sub.wait_async())
        deadline = time.monotonic() + wait_s
        while not committed.done() and not self.stopping and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.wait({committed}, timeout=min(remaining, poll_s))
        if not committed.done():
            reply["timeout"] = True
        elif committed.exception() is not None:  # the chain failed: must not read as "not committed"
            exc = committed.exception()
            raise HttpError(500, "NODE_FAILED", f"{type(exc).__name__}: {exc}")
        else:
            reply["receipts"] = [receipt_json(r, self.chain.apps) for r in committed.result()]
            reply["heights"] = [int(h) for h in sub.heights]


def allow(method: str, expected: str) -> None:
    if method != expected:
        raise HttpError(
            405,
            "METHOD_NOT_ALLOWED",
            f"{method[:20]} not allowed here; use {expected}",
            ((b"allow", expected.encode()),),
        )


class JsonErrorProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering what the app never sees with a JSON error.

    That is a request the parser refuses (uvicorn's own answer is plain text) and a
    body cut short by the client closing its side (uvicorn would close without a word).
    """

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.refuse("BAD_REQUEST", "protocol upgrades are not served")
        except httptools.HttpParserError as exc:
            reason = str(exc) or type(exc).__name__
            code = "BAD_CONTENT_LENGTH" if "content-length" in reason.lower() else "BAD_REQUEST"
            self.refuse(code, reason)

    refused: tuple[str, str] | None = None

    def refuse(self, code: str, detail: str) -> None:
        """Answer bad bytes with an error, after the requests parsed before them (pipelined)."""
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            self.refused = self.refused or (code, detail)
            self.flow.pause_reading()
        else:
            self.send_error(code, detail)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.refused is not None and not self.pipeline and self.cycle.response_complete:
            self.send_error(*self.refused)

    def eof_received(self) -> bool | None:
        """The client closed its sending side (it may still read)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return None  # between requests: close
        if cycle.more_body:  # mid-body: the app sees a disconnect and admits nothing
            self.send_error("BODY_TRUNCATED", "the client closed its side before the body was whole")
            return None
        if cycle.scope["path"].startswith(STREAM_PATHS):  # a stream has nobody to stream to: end it
            cycle.disconnected = True
            cycle.message_event.set()
            return None
        cycle.keep_alive = False  # a whole request still gets its answer, then the connection closes
        return True

    def send_400_response(self, msg: str) -> None:
        self.send_error("BAD_REQUEST", msg)

    def send_error(self, code: str, detail: str) -> None:
        log.info("bad request", extra={"fields": {"error": code, "detail": detail}})
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:  # else: mid-reply
            body = error_body(code, detail)
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()


# --- server and client ---------------------------------------------------------------------


class NodeServer:
    """The endpoint on ``host:port`` (0: an ephemeral port; see ``address``), served from a thread.

    The socket is bound here, so a busy address raises ``OSError`` in the caller.
    """

    def __init__(
        self,
        chain: Chain,
        host: str = "127.0.0.1",
        port: int = 7545,
        *,
        body_timeout_s: float = body_timeout_s,
        authenticator: Authenticator | None = None,
        grpc_listen: str | None = None,
        grpc_tls: TlsFiles | None = None,
        http_tls: TlsFiles | None = None,
    ) -> None:
        """``authenticator``: who may call the network API and how much (docs/api.md; default:
        unsigned calls served, default limits); ``grpc_listen``: also serve it over gRPC there
        (``grpc_tls``: over TLS, or mutual TLS); ``http_tls``: the HTTP endpoint over TLS (or
        mutual TLS with its ``client_ca``)."""
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:  # not socket.create_server: its errors bury the OS's reason in a longer sentence
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(backlog)
        except OSError:
            self._sock.close()
            raise
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._pool = concurrent.futures.ThreadPoolExecutor(pool_threads, thread_name_prefix="tierchain-rpc")
        self._app = NodeApp(chain, self._pool, body_timeout_s, authenticator)
        self._grpc = None if grpc_listen is None else GrpcServer(self._app.api, grpc_listen, tls=grpc_tls)
        config = uvicorn.Config(
            self._app,
            http=JsonErrorProtocol,
            lifespan="off",
            ws="none",
            log_config=None,  # no handlers of uvicorn's own: its records reach the node's JSON logging
            log_level=logging.WARNING,  # not its start/stop chatter
            access_log=False,
            proxy_headers=False,  # loopback operator surface: no X-Forwarded-* rewriting
            backlog=backlog,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=stop_grace_s,
            **({} if http_tls is None else http_tls.uvicorn_options()),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="tierchain-rpc", daemon=True)

    def _serve(self) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._server.serve(sockets=[self._sock]))

    @property
    def metrics(self) -> NodeMetrics:
        """The node's metrics (``NodeMetrics.add_source`` adds a shard's or a replica's gauges)."""
        return self._app.metrics

    @property
    def grpc_port(self) -> int | None:
        """The gRPC port once started (None without ``grpc_listen``)."""
        return None if self._grpc is None else self._grpc.port

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once the server accepts connections."""
        if self._grpc is not None:
            self._grpc.start()  # first: a busy gRPC address fails before anything serves
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RpcError(f"the endpoint on {self.address[0]}:{self.address[1]} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (``stop_grace_s`` at most), close the socket."""
        self._app.stopping = True
        if self._grpc is not None:
            self._grpc.stop(stop_grace_s)
        self._app.gateway.close()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(stop_grace_s + 5)
        self._sock.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._app.metrics.close()


class NodeClient:
    def __init__(self, url: str = "http://127.0.0.1:7545", timeout_s: float = 70.0) -> None:
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def _call(self, path: str, data: bytes | None = None) -> dict[str, Any]:
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                reply = json.load(exc)
            except ValueError:
                reply = {}
            code = reply.get("error") if isinstance(reply, dict) else None
            detail = reply.get("detail", "") if isinstance(reply, dict) else ""
            raise RpcError(
                f"{code or 'HTTP_ERROR'} (HTTP {exc.code}): {detail or exc.reason}", code, exc.code
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RpcError(f"cannot reach node at {self.url}: {exc}") from exc
        except ValueError as exc:
            raise RpcError(f"the node at {self.url} answered with something that is not JSON") from exc

    def submit(self, framed: bytes, wait_s: float | None = None) -> dict[str, Any]:
        """Submit a framed batch; with ``wait_s``, wait up to that long (capped at ``wait_s_max``)."""
        query = f"?wait={min(wait_s, wait_s_max):.3f}" if wait_s and wait_s > 0 else ""
        return self._call("/v1/txs" + query, framed)

    def head(self) -> dict[str, Any]:
        return self._call("/v1/head")

    def nonce(self, public_key: bytes) -> int:
        return int(self._call(f"/v1/nonce/{public_key.hex()}")["nonce"])

    def state_proof(self, key: bytes) -> dict[str, Any]:
        """``GET /v1/proof/state/<hex key>``: height, header, value and proof (hex)."""
        return self._call(f"/v1/proof/state/{key.hex()}")

    def tx_proof(self, tx_id: bytes) -> dict[str, Any]:
        """``GET /v1/proof/tx/<hex id>``: height, header and proof (hex)."""
        return self._call(f"/v1/proof/tx/{tx_id.hex()}")

    def scan(self, prefix: bytes, limit: int = scan_default, after: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Committed (key, value) pairs under ``prefix`` after ``after``: ``GET /v1/scan/...``."""
        query = urllib.parse.urlencode({"limit": limit, **({"after": after.hex()} if after else {})})
        pairs = self._call(f"/v1/scan/{prefix.hex()}?{query}")["pairs"]
        return [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in pairs]

    def app(self, name: str, body: dict[str, Any]) -> Any:
        """An app endpoint's answer: ``POST /v1/app/<name>`` with ``body`` as JSON."""
        return self._call(f"/v1/app/{name}", json.dumps(body).encode())

    def state(self, key: bytes) -> bytes | None:
        """The committed value of state ``key`` (None if absent): ``GET /v1/state/<hex key>``."""
        value = self._call(f"/v1/state/{key.hex()}")["value"]
        return None if value is None else bytes.fromhex(value)
