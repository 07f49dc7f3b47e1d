"""The API's refusals and callers, shared by its service, authenticator and transports."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import grpc

from tierchain.errors import TierChainError


class ApiError(TierChainError):
    """A refused call: a gRPC status, a named code (``tierchain-error``), a human detail."""

    HTTP: ClassVar[dict[grpc.StatusCode, int]] = {
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.OUT_OF_RANGE: 400,
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.FAILED_PRECONDITION: 409,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.INTERNAL: 500,
        grpc.StatusCode.UNIMPLEMENTED: 404,
    }

    def __init__(self, status: grpc.StatusCode, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.status, self.code, self.detail = status, code, detail

    @property
    def http_status(self) -> int:
        return self.HTTP.get(self.status, 500)


def bad(detail: str, code: str = "BAD_ARGUMENT") -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, code, detail)


def not_found(code: str, detail: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, code, detail)


ERROR_CODES = {
    "BAD_ARGUMENT": "a field out of range or malformed (the detail says which)",
    "TOO_LARGE": "the request is larger than request_bytes_max, or holds more than batch_txs_max txs",
    "UNAUTHENTICATED": "the node requires signed calls and this one is unsigned, stale or badly signed",
    "UNKNOWN_KEY": "the signing key is no active key of an organization (nor a registered account)",
    "RATE_LIMITED": "the caller's request budget is spent: retry after the time in the detail",
    "NO_SUCH_BLOCK": "no block at that height",
    "NO_SUCH_TX": "no committed transaction with that id",
    "NO_PROOF": "this chain keeps no state tree for proofs (interim commitment)",
    "NO_SUCH_ENDPOINT": "no app of this chain has that endpoint (or that lineage view)",
    "STREAM_BEHIND": "a stream asked to replay more than stream_blocks_ahead_max blocks at once",
    "BODY_TRUNCATED": "an HTTP body that did not arrive whole within body_timeout_s (30 s)",
    "SHARD_UNAVAILABLE": "a cluster's shard is down or its query failed (the detail says which)",
    "NODE_FAILED": "the chain failed while the call waited (its transactions' fate is unknown)",
    "INTERNAL_ERROR": "a bug: logged with its traceback",
}
"""The API's own codes; a refused batch or transaction is named by its ``Reject`` name."""


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who calls: ``identity`` (``org:<hex>``, ``account:<hex>`` or ``peer:<address>``) and
    whether the call was signed."""

    identity: str
    signed: bool = False
