"""A typed async Python client of the network API (gRPC; docs/api.md).

::

    async with ApiClient("127.0.0.1:7700") as api:            # or tls=..., keys=... to sign
        info = await api.info()
        sub = await api.submit([tx_bytes], wait_s=10)          # admissions, then receipts
        proof = await api.prove_state(key)                     # checked: raises ProofError
        async for block in api.stream_blocks(from_height=5):   # resume from any height
            ...

Every method returns the response message (``tierchain.api.schema`` classes; fields as in
node.proto). A refusal raises ``ApiCallError`` with the server's named ``code``.
``prove_state`` / ``prove_tx`` verify the proof against the header served with it
(``tierchain.proofs``; the served height is the header's) and, given ``trusted`` (the
proposer's public key), the header's signature: then a node cannot lie about a value it
proves (without ``trusted``, a forged header would pass).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc

from tierchain import proofs
from tierchain.api import auth, schema
from tierchain.api.grpc_server import ERROR_KEY
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite, KeyPair, suite_for
from tierchain.errors import TierChainError
from tierchain.wire.block import decode_header
from tierchain.wire.codec import CodecError


class ApiCallError(TierChainError):
    """The node refused a call: ``code`` its name (``BAD_ARGUMENT``, ``RATE_LIMITED``...),
    ``status`` the gRPC status."""

    def __init__(self, code: str, status: grpc.StatusCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.status, self.detail = code, status, detail


class ProofError(TierChainError):
    """A proof served by the node does not verify against its header (or the header's signature)."""


@dataclasses.dataclass(frozen=True)
class Tls:
    """PEM bytes: the CA to trust; a client certificate and key for mutual TLS."""

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = None


class ApiClient:
    """One channel to one node (see the module docstring)."""

    def __init__(
        self,
        target: str,
        *,
        keys: KeyPair | None = None,
        suite: CryptoSuite | None = None,
        tls: Tls | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.keys, self.timeout_s = keys, timeout_s
        self.suite = suite or (suite_for(keys.suite_name) if keys is not None else ED25519_BLAKE3)
        options = [("grpc.max_receive_message_length", auth.request_bytes_max)]
        if tls is None:
            self.channel = grpc.aio.insecure_channel(target, options=options)
        else:
            creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
            self.channel = grpc.aio.secure_channel(target, creds, options=options)
        self._calls: dict[str, Any] = {}

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    # --- plumbing ------------------------------------------------------------------------------

    def _stub(self, name: str) -> Any:
        if name not in self._calls:
            m = schema.methods()[name]
            path = f"/{schema.SERVICE}/{name}"
            out = schema.message(m.output_type.full_name).FromString
            maker = self.channel.unary_stream if m.server_streaming else self.channel.unary_unary
            self._calls[name] = maker(path, request_serializer=_identity, response_deserializer=out)
        return self._calls[name]

    def _metadata(self, name: str, raw: bytes) -> tuple[tuple[str, str], ...] | None:
        if self.keys is None:
            return None
        return tuple(auth.sign_call(self.keys, self.suite, f"/{schema.SERVICE}/{name}", raw).items())

    async def _unary(self, name: str, request: Any, timeout_s: float | None = None) -> Any:
        raw = request.SerializeToString()
        try:
            return await self._stub(name)(
                raw, metadata=self._metadata(name, raw), timeout=timeout_s or self.timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None

    async def _stream(self, name: str, request: Any) -> AsyncIterator[Any]:
        raw = request.SerializeToString()
        call = self._stub(name)(raw, metadata=self._metadata(name, raw))
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        finally:
            call.cancel()

    # --- transactions --------------------------------------------------------------------------

    async def submit(self, txs: Iterable[bytes], wait_s: float = 0.0) -> Any:
        """``SubmitResponse``: per tx its admission (id, code); with ``wait_s``, the receipts."""
        timeout = self.timeout_s + wait_s
        return await self._unary(
            "Submit", schema.message("SubmitRequest")(txs=list(txs), wait_s=wait_s), timeout
        )

    async def await_receipts(self, tx_ids: Iterable[bytes], timeout_s: float = 10.0) -> Any:
        req = schema.message("AwaitReceiptsRequest")(tx_ids=list(tx_ids), timeout_s=timeout_s)
        return await self._unary("AwaitReceipts", req, self.timeout_s + timeout_s)

    # --- chain and state -----------------------------------------------------------------------

    async def info(self) -> Any:
        return await self._unary("GetInfo", schema.message("GetInfoRequest")())

    async def head(self) -> Any:
        return await self._unary("GetHead", schema.message("GetHeadRequest")())

    async def block(self, height: int) -> Any:
        return await self._unary("GetBlock", schema.message("GetBlockRequest")(height=height))

    async def tx(self, tx_id: bytes) -> Any:
        return await self._unary("GetTx", schema.message("GetTxRequest")(tx_id=tx_id))

    async def state(self, key: bytes) -> bytes | None:
        answer = await self._unary("GetState", schema.message("GetStateRequest")(key=key))
        return answer.value if answer.found else None

    async def nonce(self, public_key: bytes) -> int:
        return (await self._unary("GetNonce", schema.message("GetNonceRequest")(public_key=public_key))).nonce

    async def scan(self, prefix: bytes, after: bytes = b"", limit: int = 0) -> list[tuple[bytes, bytes]]:
        req = schema.message("ScanRequest")(prefix=prefix, after=after, limit=limit)
        return [(p.key, p.value) for p in (await self._unary("Scan", req)).pairs]

    async def prove_state(self, key: bytes, trusted: bytes | None = None) -> Any:
        """The ``StateProof`` of ``key``, verified against the header served with it
        (``ProofError`` if it does not verify, or proves another value than the one served)."""
        p = await self._unary("ProveState", schema.message("ProveStateRequest")(key=key))
        self._header(p.header, trusted, p.height)
        name = self.suite.name
        if not proofs.verify_state_encoded(p.header, p.proof, key, suite=name):
            raise ProofError(f"the state proof of {key.hex()} does not verify")
        if proofs.decode_state_proof(p.proof, suite=name).value != (p.value if p.found else None):
            raise ProofError("the proof proves another value than the one served")
        return p

    async def prove_tx(self, tx_id: bytes, trusted: bytes | None = None) -> Any:
        """The ``TxProof`` of ``tx_id``, verified (``ProofError`` otherwise)."""
        p = await self._unary("ProveTx", schema.message("ProveTxRequest")(tx_id=tx_id))
        self._header(p.header, trusted, p.height)
        try:
            ok = proofs.verify_tx(p.header, proofs.decode_tx_proof(p.proof), tx_id, suite=self.suite.name)
        except proofs.ProofError:
            ok = False
        if not ok:
            raise ProofError(f"the inclusion proof of {tx_id.hex()} does not verify")
        return p

    def _header(self, raw: bytes, trusted: bytes | None, height: int) -> None:
        """The header decodes, is at the served ``height`` and, with ``trusted`` (the
        proposer's key), is signed by it."""
        try:
            header = decode_header(raw)
        except CodecError:
            raise ProofError("the header does not decode") from None
        if header.height != height:
            raise ProofError(f"the served height {height} is not the header's ({header.height})")
        if trusted is not None and (header.proposer != trusted or not header.signature_ok(self.suite)):
            raise ProofError("the header is not signed by the trusted proposer")

    # --- streams and apps ----------------------------------------------------------------------

    def stream_blocks(self, from_height: int = 0, with_tx_ids: bool = True) -> AsyncIterator[Any]:
        req = schema.message("StreamBlocksRequest")(from_height=from_height, with_tx_ids=with_tx_ids)
        return self._stream("StreamBlocks", req)

    def stream_events(self, from_height: int = 0, topic_prefix: bytes = b"") -> AsyncIterator[Any]:
        req = schema.message("StreamEventsRequest")(from_height=from_height, topic_prefix=topic_prefix)
        return self._stream("StreamEvents", req)

    async def lineage(self, app: str, record_id: bytes) -> dict:
        """An app's lineage view of ``record_id`` (``finance``: a voucher piece; ``bills``: a bill)."""
        answer = await self._unary("Lineage", schema.message("LineageRequest")(app=app, id=record_id))
        return json.loads(answer.json)

    async def call_app(self, endpoint: str, body: dict) -> Any:
        req = schema.message("CallAppRequest")(endpoint=endpoint, json=json.dumps(body))
        return json.loads((await self._unary("CallApp", req)).json)


def _identity(raw: bytes) -> bytes:
    return raw


def _error(exc: grpc.aio.AioRpcError) -> ApiCallError:
    code = next((v for k, v in (exc.trailing_metadata() or ()) if k == ERROR_KEY), exc.code().name)
    return ApiCallError(code, exc.code(), exc.details() or "")
