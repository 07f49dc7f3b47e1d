"""Who calls the API, and how much they may (docs/api.md, "Authentication and limits").

**Signed calls.** A caller signs each call with a key of its organization: metadata (gRPC)
or headers (HTTP) ``tierchain-key`` (hex public key), ``tierchain-time`` (ms since the
epoch) and ``tierchain-signature`` (hex), the signature in the chain's suite over
``H_api(method || 0x00 || time || 0x00 || H_api(request bytes))``, ``H_api`` the suite's
hash in the domain ``API_REQUEST``. The node accepts it when the time is within
``skew_ms`` of its clock and the key is an active key of an admitted organization
(finance's ``fk/``; on a chain without finance, a registered account), and names the
caller ``org:<id>`` (``account:<key>``). A replayed call within the window does what
the original did: reads read again, and a transaction's nonce refuses it a second time.

``Authenticator.required``: every call must be signed (``UNAUTHENTICATED`` otherwise);
when not required, an unsigned call is the anonymous ``peer:<address>`` and a signed one
is still checked (a bad signature is refused, never downgraded to anonymous).

**Limits.** A token bucket per caller (``rate_per_s`` calls a second, ``burst`` at once;
a Submit costs one call per ``txs_per_call`` transactions): ``RATE_LIMITED`` with the wait
in the detail. Request sizes are bounded by the transports (``request_bytes_max``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from typing import Any

import grpc

from tierchain import limits
from tierchain.api.errors import ApiError, Caller

API_REQUEST = "tierchain 2026 api request"
request_slack_bytes = 1 << 20  # a Submit's framing and protobuf overhead above batch_bytes_max
request_bytes_max = limits.batch_bytes_max + request_slack_bytes
skew_ms_default = 30_000
buckets_max = 100_000  # callers remembered (least recently seen forgotten first)
txs_per_call = 1_000  # a Submit of n transactions costs ceil(n / txs_per_call) calls
KEY, TIME, SIGNATURE = "tierchain-key", "tierchain-time", "tierchain-signature"


def signed_message(suite: Any, method: str, time_ms: int, request: bytes) -> bytes:
    """What a caller signs for one call (see the module docstring)."""
    body = suite.hash(API_REQUEST, request)
    return suite.hash(API_REQUEST, method.encode() + b"\0" + str(time_ms).encode() + b"\0" + body)


def sign_call(
    keys: Any, suite: Any, method: str, request: bytes, now_ms: int | None = None
) -> dict[str, str]:
    """The three auth headers of a call signed by ``keys`` (client side)."""
    t = int(time.time() * 1000) if now_ms is None else now_ms
    sig = suite.sign(keys, signed_message(suite, method, t, request))
    return {KEY: keys.public_key.hex(), TIME: str(t), SIGNATURE: sig.hex()}


def peer_host(peer: str) -> str:
    """The host of a transport's peer address (``ipv4:10.0.0.1:5432``, ``ipv6:[::1]:5432``,
    ``10.0.0.1:5432``): an anonymous caller's budget is its host's, not one connection's."""
    host = peer.rpartition(":")[0] if peer.count(":") >= 1 else peer
    return host.removeprefix("ipv4:").removeprefix("ipv6:") or peer


def cost(method: str, request: Any) -> float:
    """What a call takes from its caller's budget: 1, and a Submit one per ``txs_per_call``
    transactions."""
    if method == "Submit":
        return float(max(1, -(-len(request.txs) // txs_per_call)))
    return 1.0


@dataclasses.dataclass
class Limits:
    rate_per_s: float = 2_000.0
    burst: float = 4_000.0


class Authenticator:
    """Checks a call's signature and charges the caller's budget (module docstring)."""

    def __init__(
        self,
        chain: Any,
        *,
        required: bool = False,
        limits_: Limits | None = None,
        skew_ms: int = skew_ms_default,
    ) -> None:
        self.chain, self.required, self.skew_ms = chain, required, skew_ms
        self.limits = limits_ or Limits()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def caller(self, method: str, request: bytes, headers: dict[str, str], peer: str) -> Caller:
        """The ``Caller`` of this call, or ``ApiError``. A refused signed call is charged to its
        peer's anonymous budget: checking signatures is work a flood must pay for."""
        given = [headers.get(h) for h in (KEY, TIME, SIGNATURE)]
        anonymous = Caller(f"peer:{peer_host(peer)}")
        if not any(given):
            if self.required:
                raise ApiError(
                    grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "this node serves signed calls only"
                )
            return anonymous
        try:
            return self._signed(method, request, given)
        except ApiError:
            self.charge(anonymous)  # RATE_LIMITED once the peer's budget is spent
            raise

    def _signed(self, method: str, request: bytes, given: list[str | None]) -> Caller:
        def refuse(detail: str) -> ApiError:
            return ApiError(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", detail)

        if not all(given):
            raise refuse(f"{KEY}, {TIME} and {SIGNATURE} together")
        key_text, time_text, sig_text = given
        if not (time_text.isascii() and time_text.isdigit() and len(time_text) <= 16):
            raise refuse(f"{TIME} is milliseconds since the epoch, at most 16 digits")
        try:
            key, t, sig = bytes.fromhex(key_text), int(time_text), bytes.fromhex(sig_text)
        except ValueError:
            raise refuse("malformed auth headers") from None
        if abs(t - time.time() * 1000) > self.skew_ms:
            raise refuse(f"{TIME} is more than {self.skew_ms} ms off")
        suite = self.chain.suite
        if (
            len(key) > 64
            or len(sig) > 128
            or not suite.verify(key, signed_message(suite, method, t, request), sig)
        ):
            raise refuse("bad signature")
        identity = self.identity(key)
        if identity is None:
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED, "UNKNOWN_KEY", f"{key.hex()} is no active member key"
            )
        return Caller(identity, signed=True)

    def identity(self, key: bytes) -> str | None:
        """``org:<id>`` for an active key of an admitted organization; else ``account:<key>``
        for a registered account; else None."""
        if "finance" in self.chain.apps.names or "finance_confidential" in self.chain.apps.names:
            from tierchain.apps.finance import codes as fc

            raw = self.chain.state_get(fc.key_key(key))
            if raw is not None:
                rec = fc.KeyRecord.decode(raw)
                return f"org:{rec.org.hex()}" if rec.status == fc.KeyStatus.ACTIVE else None
        from tierchain.apps.accounts import account_key

        return f"account:{key.hex()}" if self.chain.state_get(account_key(key)) is not None else None

    def charge(self, caller: Caller, cost: float = 1.0) -> None:
        """Take ``cost`` from the caller's bucket, or ``RATE_LIMITED``."""
        now = time.monotonic()
        rate, burst = self.limits.rate_per_s, self.limits.burst
        with self._lock:
            tokens, at = self._buckets.pop(caller.identity, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            ok = tokens >= cost
            self._buckets[caller.identity] = (tokens - cost if ok else tokens, now)
            while len(self._buckets) > buckets_max:
                self._buckets.popitem(last=False)
        if not ok:
            wait = (cost - tokens) / rate if rate > 0 else float("inf")
            raise ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", f"retry in {wait:.3f} s")
