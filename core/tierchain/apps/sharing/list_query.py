"""The shared lists' query service: a member asks whether fingerprints are listed.

A node answers members' questions about batches of fingerprints (computed by the member with
the list key, ``lists.fingerprint``) without the member scanning state itself. Each question
is a signed request (``query_request``):

    ``QUERY_TAG || u32 chain id || signer public key || u8 list id || u64 timestamp ms ||
    u16 n || n fingerprints of 32 bytes || signature``

signed (``CryptoSuite.sign``) over ``suite.hash(SH_LIST_QUERY, everything before the
signature)``: a domain of its own, so a query signature can never be passed off as a
transaction's. ``ListQueryService.answer`` checks, in this order, and refuses with a named
``ListQueryError``:

* the request's shape, chain id, list id, at least one fingerprint and none twice
  (``BAD_REQUEST``, ``WRONG_CHAIN``), at most ``fps_per_query_max`` (``TOO_MANY_FINGERPRINTS``);
* freshness: ``|timestamp - wall clock| <= skew_ms`` (``STALE_REQUEST``);
* the signer: an active key of an active member organization, in the chain's state
  (``NOT_A_MEMBER``), before the signature, so that a non-member's request costs the node
  a state read or two, never a signature check;
* the signature (``BAD_SIGNATURE``);
* replay: a request answered once is refused while it is fresh (``REPLAYED``), so a copy
  of someone's request cannot be used to obtain an answer;
* the rate: a token bucket per organization (not per key: an organization's keys share it),
  ``rate_per_s`` tokens a second up to ``burst``, one token a request (``RATE_LIMITED``,
  with ``retry_after_s``).

The answer lists, per fingerprint, the listings of the current epoch only (an entry
awaiting re-key, an older epoch's fingerprint, is not found, as it is not by a lookup),
each with its open disputes (``lists.current_view``: one more state read per listing) and,
if a re-key moved it there, when (``rekeyed_height``, ``rekeyed_ms``; the listing's own
height and time are then the lister's claim).

Memory is bounded: buckets for at most ``orgs_max`` organizations (a full bucket is idle
and dropped when room is needed; a new organization is refused ``RATE_LIMITED`` rather than
resetting someone's bucket if all are busy), replay marks for at most ``replay_max``
requests (beyond that, requests are refused ``RATE_LIMITED`` until marks expire; marks are
kept in arrival order and the stale ones at the front are dropped as requests come,
amortized O(1) a request, so a stale mark behind a fresh one is held until at most
``2 * skew_ms`` after its arrival), and a log of the last ``log_max`` answered queries
(``QueryLogEntry``: organization, list, number of fingerprints, wall time — never the
fingerprints) that the operator reads (``query_log``). The service has no transport of its
own: ``make_endpoint`` gives the node API a function of a JSON body, and the API maps
``ListQueryError.status``.

What the rate limit is not: a member holds the list key and may read state, so it can test
identities against the chain's entries without this service; the limit protects the node
and makes bulk querying visible (the log), it does not hide the lists from members.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import lists
from tierchain.apps.sharing.members import ORG_ACTIVE
from tierchain.crypto import CryptoSuite, KeyPair
from tierchain.engine import apps

__all__ = [
    "QUERY_TAG",
    "SH_LIST_QUERY",
    "STATUS",
    "ListQueryError",
    "ListQueryService",
    "QueryLogEntry",
    "make_endpoint",
    "query_request",
]

SH_LIST_QUERY = c.SH_LIST_QUERY  # the signed digest's domain
QUERY_TAG = b"tierchain sharing list query v1\x00"
_HEAD = struct.Struct("<I32sBQH")  # chain id, signer, list id, timestamp ms, n
_FP = c.fingerprint_bytes
request_hex_chars_max = 2 * (len(QUERY_TAG) + _HEAD.size + 1024 * _FP + 128)  # what the endpoint decodes

# Each refusal's HTTP status (what the node API answers).
STATUS = {
    "BAD_REQUEST": 400,
    "WRONG_CHAIN": 400,
    "TOO_MANY_FINGERPRINTS": 400,
    "STALE_REQUEST": 401,
    "BAD_SIGNATURE": 401,
    "REPLAYED": 401,
    "NOT_A_MEMBER": 403,
    "RATE_LIMITED": 429,
}


class ListQueryError(apps.EndpointError):
    """A query refused: ``code`` (a name of ``STATUS``), ``status`` (its HTTP status) and,
    for ``RATE_LIMITED``, ``retry_after_s``. The node API answers it as it answers every
    app endpoint's refusal (``apps.EndpointError``)."""

    def __init__(self, code: str, detail: str = "", retry_after_s: float | None = None) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown list query refusal {code!r}")
        super().__init__(code, detail, STATUS[code])
        self.retry_after_s = retry_after_s


@dataclasses.dataclass(frozen=True)
class QueryLogEntry:
    """One answered query: who asked, on which list, about how many fingerprints, when."""

    org: bytes
    list_id: int
    count: int
    time_ms: int


def _signed_body(chain_id: int, signer: bytes, list_id: int, fps: list[bytes], timestamp_ms: int) -> bytes:
    return QUERY_TAG + _HEAD.pack(chain_id, signer, list_id, timestamp_ms, len(fps)) + b"".join(fps)


def query_request(
    keys: KeyPair, chain_id: int, list_id: int, fps: list[bytes], timestamp_ms: int, suite: CryptoSuite
) -> bytes:
    """A member's signed query about ``fps`` (fingerprints of the current epoch) on
    ``list_id``, made at ``timestamp_ms`` (wall clock, ms since the epoch)."""
    if keys.suite_name != suite.name:
        raise ValueError(f"a {keys.suite_name} key cannot sign a query on a {suite.name} chain")
    list_id = c.ListId(list_id)
    fps = [bytes(fp) for fp in fps]
    if not 1 <= len(fps) < 1 << 16 or any(len(fp) != _FP for fp in fps) or len(set(fps)) != len(fps):
        raise ValueError(f"1..65535 distinct fingerprints of {_FP} bytes")
    body = _signed_body(chain_id, keys.public_key, list_id, fps, timestamp_ms)
    return body + suite.sign(keys, suite.hash(SH_LIST_QUERY, body))


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens, self.at = tokens, at


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ListQueryService:
    """Answers members' signed list queries, rate limited per organization (module docstring).

    ``ledger_or_state_get``: a ledger (``state_get``, ``chain_id``), a ``Chain``, or a bare
    ``state_get`` function (then ``chain_id`` is required). ``clock``: monotonic seconds (the
    buckets); ``wall_ms``: wall-clock ms (freshness, the log)."""

    def __init__(
        self,
        ledger_or_state_get: Any,
        suite: CryptoSuite,
        *,
        chain_id: int | None = None,
        rate_per_s: float = 20.0,
        burst: int = 40,
        fps_per_query_max: int = 64,
        skew_ms: int = 30_000,
        orgs_max: int = 1024,
        replay_max: int = 65_536,
        log_max: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        source = ledger_or_state_get
        self.state_get_many = getattr(source, "state_get_many", None)  # a Chain: one read per batch
        if hasattr(source, "state_get"):
            self.state_get = source.state_get
            if chain_id is None:
                chain_id = getattr(source, "chain_id", None)
                if chain_id is None and hasattr(source, "config"):
                    chain_id = source.config.chain_id
            own = getattr(source, "suite", None)
            if own is not None and own.name != suite.name:
                raise ValueError(f"the ledger runs {own.name}, the service was given {suite.name}")
        elif callable(source):
            self.state_get = source
        else:
            raise TypeError(f"not a ledger or a state_get: {type(source).__name__}")
        if chain_id is None:
            raise ValueError("the chain id is needed (a bare state_get names none)")
        if not (rate_per_s > 0 and burst >= 1 and 1 <= fps_per_query_max <= 1024 and skew_ms >= 0):
            raise ValueError("a positive rate, a burst >= 1, 1..1024 fingerprints a query, a skew >= 0")
        if suite.public_key_bytes != 32:
            raise ValueError("the request format holds a 32-byte public key")
        if min(orgs_max, replay_max, log_max) < 1:
            raise ValueError("orgs_max, replay_max and log_max are at least 1")
        self.chain_id, self.suite = chain_id, suite
        self.rate_per_s, self.burst = float(rate_per_s), float(burst)
        self.fps_per_query_max, self.skew_ms = fps_per_query_max, skew_ms
        self.orgs_max, self.replay_max = orgs_max, replay_max
        self.clock, self.wall_ms = clock, wall_ms
        self._buckets: collections.OrderedDict[bytes, _Bucket] = collections.OrderedDict()
        # signed digest -> wall ms after which it is stale, in arrival order (``_expire``)
        self._seen: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self._log: collections.deque[QueryLogEntry] = collections.deque(maxlen=log_max)
        self.refused: collections.Counter[str] = collections.Counter()
        self.answered = 0
        self._lock = threading.Lock()

    # --- the operator's view ------------------------------------------------------------
    def query_log(self) -> list[QueryLogEntry]:
        """The last ``log_max`` answered queries, oldest first."""
        with self._lock:
            return list(self._log)

    def stats(self) -> dict:
        with self._lock:
            return {
                "answered": self.answered,
                "refused": dict(self.refused),
                "orgs_tracked": len(self._buckets),
                "replay_marks": len(self._seen),
            }

    # --- answering --------------------------------------------------------------------------
    def answer(self, request: bytes) -> dict:
        """The answer to one signed request, or ``ListQueryError``."""
        try:
            return self._answer(request)
        except ListQueryError as exc:
            with self._lock:
                self.refused[exc.code] += 1
            raise

    def _parse(self, request: bytes) -> tuple[bytes, bytes, int, int, list[bytes], bytes]:
        if not isinstance(request, bytes | bytearray):
            raise ListQueryError("BAD_REQUEST", "the request is bytes")
        request = bytes(request)
        head_end = len(QUERY_TAG) + _HEAD.size
        if len(request) < head_end or not request.startswith(QUERY_TAG):
            raise ListQueryError("BAD_REQUEST", "not a list query")
        chain_id, signer, list_id, timestamp_ms, n = _HEAD.unpack_from(request, len(QUERY_TAG))
        if chain_id != self.chain_id:
            raise ListQueryError("WRONG_CHAIN", f"a query for chain {chain_id}, this is {self.chain_id}")
        if list_id not in c.ListId._value2member_map_:
            raise ListQueryError("BAD_REQUEST", f"no list {list_id}")
        if n == 0:
            raise ListQueryError("BAD_REQUEST", "no fingerprints")
        if n > self.fps_per_query_max:
            raise ListQueryError(
                "TOO_MANY_FINGERPRINTS", f"{n} fingerprints, at most {self.fps_per_query_max}"
            )
        body_end = head_end + n * _FP
        if len(request) != body_end + self.suite.signature_bytes:
            raise ListQueryError("BAD_REQUEST", "the request's length")
        fps = [request[head_end + i * _FP : head_end + (i + 1) * _FP] for i in range(n)]
        if len(set(fps)) != n:
            raise ListQueryError("BAD_REQUEST", "a fingerprint twice")
        return request[:body_end], signer, list_id, timestamp_ms, fps, request[body_end:]

    def _member_org(self, signer: bytes) -> bytes:
        raw = self.state_get(fc.key_key(signer))
        key = None if raw is None else fc.KeyRecord.decode(raw)
        if key is None or key.status != fc.KeyStatus.ACTIVE:
            raise ListQueryError("NOT_A_MEMBER", "not an active key of a member")
        org_raw = self.state_get(fc.org_key(key.org))
        if org_raw is None or fc.OrgRecord.decode(org_raw).status != ORG_ACTIVE:
            raise ListQueryError("NOT_A_MEMBER", "the key's organization is not active")
        return key.org

    def _answer(self, request: bytes) -> dict:
        body, signer, list_id, timestamp_ms, fps, signature = self._parse(request)
        now_ms = self.wall_ms()
        if abs(timestamp_ms - now_ms) > self.skew_ms:
            raise ListQueryError(
                "STALE_REQUEST", f"made {timestamp_ms - now_ms} ms from now, at most ±{self.skew_ms}"
            )
        org = self._member_org(signer)  # a state read: cheaper than a signature check
        digest = self.suite.hash(SH_LIST_QUERY, body)
        if not self.suite.verify(signer, digest, signature):
            raise ListQueryError("BAD_SIGNATURE")
        with self._lock:
            self._admit(org, digest, timestamp_ms + self.skew_ms, now_ms)
            self.answered += 1
            self._log.append(QueryLogEntry(org, list_id, len(fps), now_ms))
        key = lists.read_key_state(self.state_get)
        # Two batched reads (entries, then their listings' disputes) instead of one a key.
        get = self._prefetch([c.entry_key(list_id, fp) for fp in fps], self.state_get)
        entries = [lists.current_entry(get, list_id, fp, key.epoch) for fp in fps]
        listed = [(fp, e) for fp, e in zip(fps, entries, strict=True) if e is not None]
        disputes = [c.dispute_key(list_id, fp, x.org) for fp, e in listed for x in e.listings]
        get = self._prefetch(disputes, get)
        results = []
        for fp, entry in zip(fps, entries, strict=True):
            view = None if entry is None else lists.view_entry(get, list_id, fp, entry)
            listings = [] if view is None else [_listing(x) for x in view.listings]
            results.append({"fingerprint": fp.hex(), "listed": bool(listings), "listings": listings})
        return {
            "list": c.ListId(list_id).name,
            "epoch": key.epoch,
            "org": org.hex(),
            "time_ms": now_ms,
            "results": results,
        }

    def _prefetch(self, keys: list[bytes], fallback: Callable[[bytes], bytes | None]) -> Callable:
        """A reader of ``keys`` read in one call (``state_get_many``, when the source has it),
        falling back to ``fallback`` for any other key."""
        if self.state_get_many is None or not keys:
            return fallback
        values = dict(zip(keys, self.state_get_many(keys), strict=True))
        return lambda key: values[key] if key in values else fallback(key)

    def _admit(self, org: bytes, digest: bytes, stale_after_ms: int, now_ms: int) -> None:
        """Replay and rate checks; takes a token and marks the request (under the lock)."""
        self._expire(now_ms)
        if digest in self._seen:
            raise ListQueryError("REPLAYED", "this request was answered already")
        if len(self._seen) >= self.replay_max:
            raise ListQueryError("RATE_LIMITED", "too many fresh requests", retry_after_s=1.0)
        now = self.clock()
        bucket = self._buckets.get(org)
        if bucket is None:
            self._room(now)
            bucket = self._buckets[org] = _Bucket(self.burst, now)
        self._buckets.move_to_end(org)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
        bucket.at = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / self.rate_per_s
            raise ListQueryError(
                "RATE_LIMITED", "this member's query rate", retry_after_s=math.ceil(wait * 1000) / 1000
            )
        bucket.tokens -= 1.0
        self._seen[digest] = stale_after_ms

    def _expire(self, now_ms: int) -> None:
        """Drop the stale replay marks at the front (the oldest arrivals). A mark's staleness
        is its request's timestamp + skew, and a request is at most ``skew_ms`` ahead of the
        clock when it arrives, so a mark behind a fresh one waits at most ``2 * skew_ms``
        after its arrival; a stale mark still held only refuses a request that is stale
        anyway. Each mark is added once and dropped once: amortized O(1)."""
        seen = self._seen
        while seen:
            digest, stale_after_ms = next(iter(seen.items()))
            if stale_after_ms >= now_ms:
                return
            del seen[digest]

    def _room(self, now: float) -> None:
        """Make room for one more bucket: drop idle (refilled) ones, least recently used first."""
        if len(self._buckets) < self.orgs_max:
            return
        for org in list(self._buckets):
            b = self._buckets[org]
            if b.tokens + (now - b.at) * self.rate_per_s >= self.burst:
                del self._buckets[org]
                if len(self._buckets) < self.orgs_max:
                    return
        raise ListQueryError("RATE_LIMITED", "too many members querying at once", retry_after_s=1.0)


def _listing(x: lists.ListingView) -> dict:
    return {
        "org": x.org.hex(),
        "reason": c.ListReason(x.reason).name,
        "height": x.height,
        "time_ms": x.timestamp_ms,
        "rekeyed_height": x.rekeyed_height or None,
        "rekeyed_ms": x.rekeyed_ms if x.rekeyed else None,
        "disputed": x.disputed,
        "disputes": [
            {
                "org": d.org.hex(),
                "reason": c.DisputeReason(d.reason).name,
                "height": d.height,
                "time_ms": d.timestamp_ms,
            }
            for d in x.disputes
        ],
    }


def make_endpoint(chain: Any, **options: Any) -> Callable[[dict], dict]:
    """A function of a JSON body ``{"request": <hex of query_request>}`` answering it with a
    ``ListQueryService`` over ``chain`` (a ``Chain`` or a ledger; ``options``: the service's
    keyword arguments). Refusals raise ``ListQueryError`` (``code``, ``status``). The
    service is the function's ``service`` attribute (its ``query_log``, ``stats``)."""
    service = ListQueryService(chain, chain.suite, **options)

    def endpoint(body: dict) -> dict:
        request = body.get("request") if isinstance(body, dict) else None
        if not isinstance(request, str) or len(request) > request_hex_chars_max:
            raise ListQueryError("BAD_REQUEST", 'a body {"request": "<hex>"}')
        try:
            raw = bytes.fromhex(request)
        except ValueError:
            raise ListQueryError("BAD_REQUEST", "the request is not hex") from None
        return service.answer(raw)

    endpoint.service = service  # type: ignore[attr-defined]
    return endpoint


ENDPOINT = apps.Endpoint("sharing.list_query", make_endpoint)  # POST /v1/app/sharing.list_query
