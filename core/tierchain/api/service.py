"""The network API's methods over one chain, whatever the transport (docs/api.md).

``NodeService`` implements every method of ``node.proto``'s ``Node`` service on protobuf
messages (``tierchain.api.schema``): ``call(method, request, caller)`` for a unary method,
``stream(method, request, caller, cancelled)`` for a streaming one. The gRPC server
(``tierchain.api.grpc_server``) and the HTTP/JSON gateway (``tierchain.api.gateway``) are
thin adapters around it, so both answer alike, refuse alike (``ApiError``: a gRPC status and
a named code) and share one authenticator and one set of per-client limits.

Blocking: methods run in the transports' thread pools (chain reads are LMDB reads; waits
for commit block on the chain's futures with a bound).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from tierchain import limits
from tierchain.api import auth, backends
from tierchain.api.errors import ApiError, Caller, bad, not_found
from tierchain.api.schema import message
from tierchain.engine.apps import EndpointError
from tierchain.engine.queries import scan_limit_max
from tierchain.errors import Reject, RejectedError
from tierchain.sharding.cluster import ShardUnavailable
from tierchain.state.tree import StateUnavailable
from tierchain.wire import tx as txcodec
from tierchain.wire.block import Header, Receipt
from tierchain.wire.tx import frame

wait_s_max = 60.0  # the longest Submit.wait_s / AwaitReceipts.timeout_s
await_ids_max = 1024  # tx ids one AwaitReceipts may ask for
app_body_bytes_max = 1 << 20  # a CallApp body (as the node's POST /v1/app)
scan_default = 100
stream_poll_s = 0.25  # a stream looks for cancellation / new blocks at least this often
stream_blocks_ahead_max = 10_000  # blocks a stream may replay before it must be resumed


def _bytes_arg(value: bytes, what: str, lo: int, hi: int) -> bytes:
    if not lo <= len(value) <= hi:
        size = f"{lo}" if lo == hi else f"{lo}..{hi}"
        raise bad(f"{what} is {size} bytes; got {len(value)}")
    return bytes(value)


def _seconds(value: float, what: str) -> float:
    if not 0 <= value <= wait_s_max:  # NaN fails too
        raise bad(f"{what} is 0..{wait_s_max:g} seconds; got {value!r}")
    return value


class NodeService:
    """Every method of the API over one ``Chain`` (see the module docstring)."""

    def __init__(
        self,
        chain: Any,
        authenticator: auth.Authenticator | None = None,
        *,
        submit: Callable[[bytes], Any] | None = None,
    ) -> None:
        """``chain``: a ``Chain`` (a solo or replicated node) or a backend
        (``backends.ClusterBackend``); ``submit``: how a framed batch reaches it (default the
        backend's; a node passes its metrics' counting wrapper)."""
        self.backend = chain if isinstance(chain, backends.ClusterBackend) else backends.ChainBackend(chain)
        b = self.backend
        self.chain = getattr(b, "chain", None)  # the Chain of a single-chain node (None: a cluster)
        self.auth = authenticator or auth.Authenticator(b)
        self._submit = submit or b.submit
        # app endpoints read through the backend (a cluster's reads routed by key)
        self.endpoints = {
            name: e.make(chain if b.n_shards == 1 else b) for name, e in b.apps.endpoints.items()
        }
        self._unary: dict[str, Callable[[Any, Caller], Any]] = {
            "Submit": self.submit,
            "AwaitReceipts": self.await_receipts,
            "GetHead": self.get_head,
            "GetBlock": self.get_block,
            "GetTx": self.get_tx,
            "GetState": self.get_state,
            "GetNonce": self.get_nonce,
            "Scan": self.scan,
            "ProveState": self.prove_state,
            "ProveTx": self.prove_tx,
            "Lineage": self.lineage,
            "CallApp": self.call_app,
            "GetInfo": self.get_info,
        }
        self._streams: dict[str, Callable[[Any, Caller, Callable[[], bool]], Iterator[Any]]] = {
            "StreamBlocks": self.stream_blocks,
            "StreamEvents": self.stream_events,
        }

    # --- dispatch ------------------------------------------------------------------------------

    def is_stream(self, method: str) -> bool:
        return method in self._streams

    def call(self, method: str, request: Any, caller: Caller) -> Any:
        with _refusals():
            return self._unary[method](request, caller)

    def stream(
        self, method: str, request: Any, caller: Caller, cancelled: Callable[[], bool]
    ) -> Iterator[Any]:
        items = self._streams[method](request, caller, cancelled)
        while True:
            with _refusals():
                item = next(items, None)
            if item is None:
                return
            yield item

    # --- messages ------------------------------------------------------------------------------

    def header(self, h: Header) -> Any:
        s = self.backend.suite
        return message("Header")(
            height=h.height, hash=h.hash(s), prev_hash=h.prev_hash, timestamp_ms=h.timestamp_ms,
            tx_count=h.tx_count, tx_root=h.tx_root, receipt_root=h.receipt_root, state_root=h.state_root,
            proposer=h.proposer, signature=h.signature, chain_id=h.chain_id, suite=s.name, encoded=h.encode(),
        )  # fmt: skip

    def receipt(self, r: Receipt, height: int, shard: int = 0) -> Any:
        return message("Receipt")(
            tx_id=r.tx_id,
            code=self.backend.apps.reject_name(r.code),
            code_number=r.code,
            events=[message("Event")(topic=e.topic, data=e.data) for e in r.events],
            height=height,
            shard=shard,
        )

    def block(self, height: int, with_tx_ids: bool = True, shard: int = 0) -> Any:
        b = self.backend
        h, receipts = b.header(height, shard), b.receipts(height, shard)
        if h is None or receipts is None:
            head = b.height(shard)
            raise not_found("NO_SUCH_BLOCK", f"no block at height {height} of shard {shard} (head {head})")
        out = message("Block")(
            header=self.header(h), receipts=[self.receipt(r, height, shard) for r in receipts]
        )
        if with_tx_ids:
            out.tx_ids.extend(r.tx_id for r in receipts)
        return out

    # --- transactions --------------------------------------------------------------------------

    def submit(self, req: Any, caller: Caller) -> Any:
        n = len(req.txs)
        if not 1 <= n <= limits.batch_txs_max:
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT, "TOO_LARGE" if n else "BAD_ARGUMENT",
                f"1..{limits.batch_txs_max} transactions a call; got {n}",
            )  # fmt: skip
        wait_s = _seconds(req.wait_s, "wait_s")
        if any(not 0 < len(t) <= limits.tx_bytes_max for t in req.txs):
            raise bad(f"a transaction is 1..{limits.tx_bytes_max} bytes")
        buf = frame(list(req.txs))
        if len(buf) > limits.batch_bytes_max:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "TOO_LARGE", f"{len(buf)} bytes framed")
        started = time.monotonic()
        try:
            sub = self._submit(buf)
        except RejectedError as exc:
            status = (
                grpc.StatusCode.UNAVAILABLE
                if exc.code == Reject.SHUTTING_DOWN
                else grpc.StatusCode.INVALID_ARGUMENT
            )
            raise ApiError(status, exc.code.name, exc.detail) from None
        out = message("SubmitResponse")(
            admissions=[
                message("Admission")(tx_id=t, code=Reject(int(c)).name)
                for t, c in zip(sub.tx_ids, sub.codes.tolist(), strict=True)
            ]
        )
        if wait_s:
            try:
                receipts = sub.wait(max(0.0, wait_s - (time.monotonic() - started)))
            except TimeoutError:
                out.timeout = True
                return out
            except Exception as exc:  # the chain failed: must not read as "not committed"
                raise ApiError(
                    grpc.StatusCode.INTERNAL, "NODE_FAILED", f"{type(exc).__name__}: {exc}"
                ) from None
            shards = getattr(sub, "shards", None)
            out.receipts.extend(
                self.receipt(r, int(h), 0 if shards is None else int(shards[i]))
                for i, (r, h) in enumerate(zip(receipts, sub.heights.tolist(), strict=True))
                if r is not None
            )
        return out

    def await_receipts(self, req: Any, caller: Caller) -> Any:
        ids = [_bytes_arg(t, "a tx id", 32, 32) for t in req.tx_ids]
        if not 1 <= len(ids) <= await_ids_max:
            raise bad(f"1..{await_ids_max} tx ids; got {len(ids)}")
        deadline = time.monotonic() + _seconds(req.timeout_s, "timeout_s")
        b = self.backend
        found: dict[bytes, Any] = {}
        while True:
            seen = b.height(0)
            missing = [t for t in ids if t not in found]
            for t, hit in zip(missing, b.receipts_of(missing), strict=True):
                if hit is not None:
                    shard, height, r = hit
                    found[t] = self.receipt(r, height, shard)
            remaining = deadline - time.monotonic()
            if len(found) == len(set(ids)) or remaining <= 0:
                break
            b.wait_block(0, seen, min(remaining, stream_poll_s))  # a cluster: polled
        out = message("AwaitReceiptsResponse")(timeout=len(found) < len(set(ids)))
        out.receipts.extend(found.get(t) or message("Receipt")() for t in ids)
        return out

    # --- chain and state -----------------------------------------------------------------------

    def get_head(self, req: Any, caller: Caller) -> Any:
        return self.header(self.backend.head(req.shard))

    def get_block(self, req: Any, caller: Caller) -> Any:
        return self.block(req.height, shard=req.shard)

    def get_tx(self, req: Any, caller: Caller) -> Any:
        tx_id = _bytes_arg(req.tx_id, "a tx id", 32, 32)
        found = self.backend.tx(tx_id)
        if found is None:
            raise not_found("NO_SUCH_TX", f"no committed transaction {tx_id.hex()}")
        shard, height, pos, raw, r = found
        t = txcodec.decode(raw)
        op = self.backend.apps.ops.get(t.op)
        decoded = message("DecodedTx")(
            op=t.op, op_name=op.name if op else f"op {t.op}", sender=t.sender, nonce=t.nonce,
            chain_id=t.chain_id, expires_at=t.expires_at, reads=list(t.reads), writes=list(t.writes),
            payload=t.payload,
        )  # fmt: skip
        return message("TxRecord")(
            height=height,
            position=pos,
            tx=raw,
            receipt=self.receipt(r, height, shard),
            decoded=decoded,
            shard=shard,
        )

    def get_state(self, req: Any, caller: Caller) -> Any:
        value = self.backend.state_get(_bytes_arg(req.key, "a state key", 1, limits.key_bytes_max))
        return message("StateValue")(found=value is not None, value=value or b"")

    def get_nonce(self, req: Any, caller: Caller) -> Any:
        pk = _bytes_arg(req.public_key, "a public key", limits.public_key_bytes, limits.public_key_bytes)
        return message("Nonce")(nonce=self.backend.nonce(pk, req.shard))

    def scan(self, req: Any, caller: Caller) -> Any:
        prefix = _bytes_arg(req.prefix, "a key prefix", 1, limits.key_bytes_max)
        after = _bytes_arg(req.after, "after", 0, limits.key_bytes_max)
        limit = req.limit or scan_default
        if not 1 <= limit <= scan_limit_max:
            raise bad(f"limit is 1..{scan_limit_max}; got {limit}")
        pairs = self.backend.state_scan(prefix, limit, after)
        return message("ScanResponse")(pairs=[message("KeyValue")(key=k, value=v) for k, v in pairs])

    def prove_state(self, req: Any, caller: Caller) -> Any:
        key = _bytes_arg(req.key, "a state key", 1, limits.key_bytes_max)
        height, header, value, proof = self.backend.prove_state(key)
        return message("StateProof")(
            height=height, header=header, found=value is not None, value=value or b"", proof=proof
        )

    def prove_tx(self, req: Any, caller: Caller) -> Any:
        tx_id = _bytes_arg(req.tx_id, "a tx id", 32, 32)
        found = self.backend.prove_tx(tx_id)
        if found is None:
            raise not_found("NO_SUCH_TX", f"no committed transaction {tx_id.hex()}")
        height, header, proof = found
        return message("TxProof")(height=height, header=header, proof=proof)

    # --- apps ----------------------------------------------------------------------------------

    def _endpoint(self, name: str, body: dict) -> Any:
        handler = self.endpoints.get(name)
        if handler is None:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise not_found("NO_SUCH_ENDPOINT", f"no endpoint {name[:80]!r} (this chain's: {known})")
        try:
            answer = handler(body)
        except EndpointError as exc:
            status = {401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED,
                      404: grpc.StatusCode.NOT_FOUND, 429: grpc.StatusCode.RESOURCE_EXHAUSTED}  # fmt: skip
            raise ApiError(
                status.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT), exc.code, exc.detail
            ) from None
        return message("JsonDocument")(json=json.dumps(answer))

    def lineage(self, req: Any, caller: Caller) -> Any:
        return self._endpoint(f"{req.app}.lineage", {"id": bytes(req.id).hex()})

    def call_app(self, req: Any, caller: Caller) -> Any:
        if len(req.json) > app_body_bytes_max:
            raise bad(f"an endpoint's body is at most {app_body_bytes_max} bytes")
        try:
            body = json.loads(req.json or "{}")
        except (ValueError, RecursionError):
            raise bad("the body is not JSON") from None
        if not isinstance(body, dict):
            raise bad("the body is not a JSON object")
        return self._endpoint(req.endpoint, body)

    def get_info(self, req: Any, caller: Caller) -> Any:
        b = self.backend
        return message("NodeInfo")(
            chain_id=b.chain_id,
            suite=b.suite.name,
            apps=list(b.apps.names),
            auth_required=self.auth.required,
            batch_txs_max=limits.batch_txs_max,
            request_bytes_max=limits.batch_bytes_max + auth.request_slack_bytes,
            wait_s_max=wait_s_max,
            endpoints=sorted(self.endpoints),
            lineage_apps=sorted(n.split(".")[0] for n in self.endpoints if n.endswith(".lineage")),
            shard_count=b.n_shards,
        )

    # --- streams -------------------------------------------------------------------------------

    def _follow(self, start: int, shard: int, cancelled: Callable[[], bool]) -> Iterator[int]:
        """Heights of ``shard`` from ``start`` on, each once it is committed, until ``cancelled()``."""
        b = self.backend
        head = b.height(shard)
        if start > head + stream_blocks_ahead_max:
            raise bad(f"from_height {start} is beyond the head {head}")
        if head - start > stream_blocks_ahead_max:
            raise ApiError(
                grpc.StatusCode.OUT_OF_RANGE, "STREAM_BEHIND",
                f"{head - start} blocks behind; ask from at most {stream_blocks_ahead_max} back",
            )  # fmt: skip
        nxt = start
        while not cancelled():
            head = b.height(shard)
            while nxt <= head and not cancelled():
                yield nxt
                nxt += 1
            if not cancelled():
                b.wait_block(shard, head, stream_poll_s)

    def stream_blocks(self, req: Any, caller: Caller, cancelled: Callable[[], bool]) -> Iterator[Any]:
        for height in self._follow(req.from_height, req.shard, cancelled):
            yield self.block(height, req.with_tx_ids, req.shard)

    def stream_events(self, req: Any, caller: Caller, cancelled: Callable[[], bool]) -> Iterator[Any]:
        prefix = _bytes_arg(req.topic_prefix, "topic_prefix", 0, 64)
        for height in self._follow(req.from_height, req.shard, cancelled):
            for r in self.backend.receipts(height, req.shard) or []:
                for e in r.events:
                    if e.topic.startswith(prefix):
                        yield message("EventRecord")(
                            height=height,
                            tx_id=r.tx_id,
                            event=message("Event")(topic=e.topic, data=e.data),
                            shard=req.shard,
                        )


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """Backend failures as named refusals."""
    try:
        yield
    except StateUnavailable as exc:
        raise not_found("NO_PROOF", str(exc)) from None
    except backends.NoSuchShard as exc:
        raise bad(str(exc)) from None
    except ShardUnavailable as exc:  # a cluster's shard down, or its query failed
        if "StateUnavailable" in str(exc):
            raise not_found("NO_PROOF", str(exc)) from None
        raise ApiError(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE", str(exc)) from None


class ThreadBudget:
    """Bounded concurrency for blocking calls (waits, streams): ``acquire()`` or RESOURCE_EXHAUSTED."""

    def __init__(self, n: int, what: str) -> None:
        self._sem, self.n, self.what = threading.BoundedSemaphore(n), n, what

    def __enter__(self) -> None:
        if not self._sem.acquire(blocking=False):
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", f"{self.n} {self.what} already"
            )

    def __exit__(self, *exc: object) -> None:
        self._sem.release()
