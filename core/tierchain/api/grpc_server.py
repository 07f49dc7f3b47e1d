"""The API over gRPC: ``node.proto``'s ``Node`` service, served from its descriptors.

Each method is a generic handler around ``NodeService`` (no generated stubs): the raw
request bytes go to the authenticator first (a signed call signs exactly those bytes),
then are parsed into the method's request message; a refusal is the ``ApiError``'s status
with its name in the trailing metadata ``tierchain-error``. TLS and mutual TLS come from
``TlsFiles`` (PEM files); without them the server listens in plain text (keep it on
loopback or a private network then). Concurrency is bounded: ``workers`` threads,
``maximum_concurrent_rpcs`` calls in flight (beyond: RESOURCE_EXHAUSTED from gRPC itself),
``streams_max`` open streams (beyond: RATE_LIMITED).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from tierchain.api import auth, schema
from tierchain.api.errors import ApiError
from tierchain.api.service import NodeService, ThreadBudget

log = logging.getLogger("tierchain.api")

workers_default = 32
streams_max = 16
ERROR_KEY = "tierchain-error"


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """PEM files: the server's certificate chain and key; ``client_ca``: require client
    certificates signed by it (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def uvicorn_options(self) -> dict:
        """The same files for an HTTP listener served by uvicorn."""
        import ssl

        options = {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key)}
        if self.client_ca is not None:
            options |= {"ssl_ca_certs": str(self.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return options

    def credentials(self) -> grpc.ServerCredentials:
        ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )


class GrpcServer:
    """``NodeService`` on a gRPC port (``start()`` / ``stop()``; ``port`` once started)."""

    def __init__(
        self,
        service: NodeService,
        listen: str,
        *,
        tls: TlsFiles | None = None,
        workers: int = workers_default,
    ) -> None:
        self.service, self.listen, self.tls = service, listen, tls
        self.streams = ThreadBudget(streams_max, "streams open")
        options = [
            ("grpc.max_receive_message_length", auth.request_bytes_max),
            ("grpc.max_send_message_length", auth.request_bytes_max),
            ("grpc.so_reuseport", 0),
        ]
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="api-grpc")
        self._server = grpc.server(self._pool, options=options, maximum_concurrent_rpcs=workers)
        handlers = {name: self._handler(name, m) for name, m in schema.methods().items()}
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(schema.SERVICE, handlers),)
        )
        self.port = 0

    def start(self) -> GrpcServer:
        if self.tls is None:
            self.port = self._server.add_insecure_port(self.listen)
        else:
            self.port = self._server.add_secure_port(self.listen, self.tls.credentials())
        if not self.port:
            raise OSError(f"cannot listen on {self.listen}")
        self._server.start()
        return self

    def stop(self, grace_s: float = 1.0) -> None:
        self._server.stop(grace_s).wait()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- per method ----------------------------------------------------------------------------

    def _handler(self, name: str, method: Any) -> grpc.RpcMethodHandler:
        request_cls = schema.message(method.input_type.full_name)
        response_cls = schema.message(method.output_type.full_name)
        full = f"/{schema.SERVICE}/{name}"

        def prepare(raw: bytes, context: grpc.ServicerContext) -> tuple[Any, Any]:
            headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            caller = self.service.auth.caller(full, raw, headers, context.peer())
            try:
                request = request_cls.FromString(raw)
            except DecodeError:
                raise ApiError(
                    grpc.StatusCode.INVALID_ARGUMENT, "BAD_ARGUMENT", f"not a {request_cls.__name__}"
                ) from None
            self.service.auth.charge(caller, auth.cost(name, request))
            return request, caller

        if method.server_streaming:

            def stream(raw: bytes, context: grpc.ServicerContext) -> Any:
                try:
                    request, caller = prepare(raw, context)
                    with self.streams:
                        yield from self.service.stream(name, request, caller, lambda: not context.is_active())
                except ApiError as exc:
                    _abort(context, exc)
                except Exception:
                    log.exception("API stream failed", extra={"fields": {"method": name}})
                    _abort(
                        context, ApiError(grpc.StatusCode.INTERNAL, "INTERNAL_ERROR", "logged by the node")
                    )

            return grpc.unary_stream_rpc_method_handler(
                stream, response_serializer=response_cls.SerializeToString
            )

        def unary(raw: bytes, context: grpc.ServicerContext) -> Any:
            try:
                request, caller = prepare(raw, context)
                return self.service.call(name, request, caller)
            except ApiError as exc:
                _abort(context, exc)
            except Exception:
                log.exception("API call failed", extra={"fields": {"method": name}})
                _abort(context, ApiError(grpc.StatusCode.INTERNAL, "INTERNAL_ERROR", "logged by the node"))

        return grpc.unary_unary_rpc_method_handler(unary, response_serializer=response_cls.SerializeToString)


def _abort(context: grpc.ServicerContext, exc: ApiError) -> None:
    context.set_trailing_metadata(((ERROR_KEY, exc.code),))
    context.abort(exc.status, exc.detail or exc.code)
