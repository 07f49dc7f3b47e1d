"""Review of the network API (docs/api.md; tierchain.api): the defects the review found (each
test failed before its fix: /v1/app around required signatures, idle streams starving the
node's pool, a half-closed stream holding its slot, a stalled body, an absurd time header,
a repeated AwaitReceipts id, CallApp's integers, the client not checking the served height)
and the properties checked that hold.

Most checks drive ``NodeService``, ``Gateway``, ``Explorer`` and ``NodeApp`` as plain ASGI
apps (no sockets); the few that need a transport run a server on loopback, on an ephemeral
port, stopped by the test. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import http.client
import json
import socket
import time
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import ALICE, BOB, NODE, transfer
from tierchain.api import auth, openapi, schema
from tierchain.api.client import ApiClient, ProofError
from tierchain.api.errors import ApiError, Caller
from tierchain.api.explorer import Explorer
from tierchain.api.gateway import Gateway
from tierchain.api.grpc_server import GrpcServer
from tierchain.api.rpc import NodeApp, NodeServer
from tierchain.api.service import NodeService, ThreadBudget
from tierchain.apps import accounts
from tierchain.apps.finance import codes as fc
from tierchain.crypto import ED25519_BLAKE3, KeyPair
from tierchain.wire.block import Receipt, decode_header
from tierchain.wire.tx import frame

CALLER = Caller("peer:test")
GET_HEAD = f"/{schema.SERVICE}/GetHead"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def req(name: str, **fields):
    return schema.message(name)(**fields)


async def _inline(fn, *args):
    return fn(*args)


async def _asgi(app, method, path, body=b"", headers=None, query=b"", stall=False):
    """One request through an ASGI app: (status, body). ``stall``: the body's first part
    arrives, the rest never does."""
    parts = [{"type": "http.request", "body": body, "more_body": stall}]
    sent = []

    async def receive():
        if parts:
            return parts.pop(0)
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    hs = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    length = len(body) * (2 if stall else 1)
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [*hs, (b"content-length", str(length).encode())],
        "client": ("127.0.0.1", 5000),
        "query_string": query,
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def asgi(app, *args, timeout=10, **kw):
    return asyncio.run(asyncio.wait_for(_asgi(app, *args, **kw), timeout))


def gateway(chain, **auth_kw) -> Gateway:
    return Gateway(NodeService(chain, auth.Authenticator(chain, **auth_kw)), _inline)


def post(port, path, body: bytes, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"content-type": "application/json", **(headers or {})})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


# === (a) authentication ======================================================================


def test_v1_app_is_not_a_way_around_required_signatures(chain):
    srv = NodeServer(chain, "127.0.0.1", 0, authenticator=auth.Authenticator(chain, required=True))
    srv.start()
    try:
        port = srv.address[1]
        body = json.dumps({"endpoint": "finance.orgs", "json": "{}"}).encode()
        assert post(port, "/api/v1/CallApp", body)[0] == 401  # holds
        status, answer = post(port, "/v1/app/finance.orgs", b"{}")
        assert status == 401, answer
    finally:
        srv.stop()


def test_a_signature_is_bound_to_method_body_and_time(chain):
    gw = gateway(chain, required=True)
    raw = b"{}"
    good = auth.sign_call(ALICE, chain.suite, GET_HEAD, raw)
    assert asgi(gw, "POST", "/api/v1/GetHead", raw, good)[0] == 200
    # the same headers on another method, or over other bytes: refused
    assert asgi(gw, "POST", "/api/v1/GetInfo", raw, good)[0] == 401
    assert asgi(gw, "POST", "/api/v1/GetHead", b'{"shard": 0}', good)[0] == 401
    # the explorer's verify is another "method": a GetHead signature does not open it
    ex = Explorer(gw.service, _inline)
    assert asgi(ex, "GET", "/explorer/verify", query=b"height=0", headers=good)[0] == 401
    signed = auth.sign_call(ALICE, chain.suite, "/explorer/verify", b"height=0")
    assert asgi(ex, "GET", "/explorer/verify", query=b"height=0", headers=signed)[0] == 200
    assert asgi(ex, "GET", "/explorer/verify", query=b"key=00", headers=signed)[0] == 401
    # the explorer's static pages load unsigned (documented), its verify does not
    assert asgi(ex, "GET", "/explorer/verify", query=b"height=0")[0] == 401
    assert asgi(ex, "GET", "/explorer/index.html")[0] == 200


def test_bad_or_partial_signatures_are_never_downgraded_to_anonymous(chain):
    gw = gateway(chain, required=False)
    raw = b"{}"
    bad = auth.sign_call(ALICE, chain.suite, GET_HEAD, b"other")
    assert asgi(gw, "POST", "/api/v1/GetHead", raw, bad)[0] == 401
    assert asgi(gw, "POST", "/api/v1/GetHead", raw, {auth.KEY: ALICE.public_key.hex()})[0] == 401
    stranger = KeyPair.from_seed(b"stranger".ljust(32, b"\0"))
    status, body = asgi(
        gw, "POST", "/api/v1/GetHead", raw, auth.sign_call(stranger, chain.suite, GET_HEAD, raw)
    )
    assert (status, json.loads(body)["error"]) == (403, "UNKNOWN_KEY")
    for key in ("00", "ab" * 31, "00" * 65):  # odd key sizes: a named refusal, not a crash
        h = {auth.KEY: key, auth.TIME: str(int(time.time() * 1000)), auth.SIGNATURE: "00" * 64}
        assert asgi(gw, "POST", "/api/v1/GetHead", raw, h)[0] == 401


def test_an_absurd_time_header_is_unauthenticated_not_internal(chain):
    h = {auth.KEY: ALICE.public_key.hex(), auth.TIME: "9" * 400, auth.SIGNATURE: "00" * 64}
    status, body = asgi(gateway(chain), "POST", "/api/v1/GetHead", b"{}", h)
    assert (status, json.loads(body)["error"]) == (401, "UNAUTHENTICATED")


def test_unsigned_streams_are_refused_when_signatures_are_required(chain):
    gw = gateway(chain, required=True)
    status, body = asgi(gw, "POST", "/api/v1/StreamBlocks", b'{"from_height": 0}')
    assert (status, json.loads(body)["error"]) == (401, "UNAUTHENTICATED")
    srv = GrpcServer(NodeService(chain, auth.Authenticator(chain, required=True)), "127.0.0.1:0").start()

    async def go():
        async with ApiClient(f"127.0.0.1:{srv.port}") as api:
            with pytest.raises(Exception) as info:
                await asyncio.wait_for(anext(api.stream_blocks(0)), 10)
            assert getattr(info.value, "code", None) == "UNAUTHENTICATED"

    try:
        asyncio.run(go())
    finally:
        srv.stop()


class _FakeChain:
    """What the authenticator reads of a chain: suite, app names, committed state."""

    def __init__(self, state: dict[bytes, bytes]) -> None:
        self.suite = ED25519_BLAKE3
        self.apps = SimpleNamespace(names=("accounts", "finance"))
        self.state = state

    def state_get(self, key: bytes) -> bytes | None:
        return self.state.get(key)


def test_a_revoked_finance_key_is_refused_even_with_an_account():
    org = bytes(range(16))
    key = ALICE.public_key
    active = fc.KeyRecord(org, fc.KeyStatus.ACTIVE, 1).encode()
    revoked = fc.KeyRecord(org, fc.KeyStatus.REVOKED, 1, 5).encode()
    acct = {accounts.account_key(key): b"\x01"}
    assert (
        auth.Authenticator(_FakeChain({fc.key_key(key): active, **acct})).identity(key) == f"org:{org.hex()}"
    )
    a = auth.Authenticator(_FakeChain({fc.key_key(key): revoked, **acct}), required=True)
    assert a.identity(key) is None
    headers = auth.sign_call(ALICE, ED25519_BLAKE3, GET_HEAD, b"")
    with pytest.raises(ApiError) as info:
        a.caller(GET_HEAD, b"", headers, "ipv4:127.0.0.1:1")
    assert info.value.code == "UNKNOWN_KEY"


# === (b) bounded resources ===================================================================


def test_the_buckets_map_stays_bounded_and_a_submit_costs_per_thousand(chain, monkeypatch):
    monkeypatch.setattr(auth, "buckets_max", 50)
    a = auth.Authenticator(chain, limits_=auth.Limits(rate_per_s=0.0, burst=3))
    for i in range(500):
        a.charge(Caller(f"peer:10.0.{i // 256}.{i % 256}"))
    assert len(a._buckets) == 50
    assert auth.cost("Submit", req("SubmitRequest", txs=[b"x"] * 1001)) == 2.0
    assert auth.cost("GetHead", req("GetHeadRequest")) == 1.0
    a.charge(CALLER, 3.0)
    with pytest.raises(ApiError) as info:
        a.charge(CALLER)
    assert info.value.code == "RATE_LIMITED" and "retry in inf" in info.value.detail
    budget = ThreadBudget(2, "streams open")
    with budget, budget, pytest.raises(ApiError) as info:
        budget.__enter__()
    assert info.value.code == "RATE_LIMITED"


def test_deeply_nested_or_huge_json_is_a_named_refusal(chain):
    gw = gateway(chain)
    for body in (b"[" * 100_000, b'{"key": ' + b"[" * 100_000, b"\xff\xfe"):
        status, answer = asgi(gw, "POST", "/api/v1/GetState", body)
        assert (status, json.loads(answer)["error"]) == (400, "BAD_ARGUMENT")
    nested = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"  # deeper than json.loads recurses
    status, answer = asgi(
        gw,
        "POST",
        "/api/v1/CallApp",
        json.dumps({"endpoint": "finance.orgs", "json": nested}).encode(),
    )
    assert (status, json.loads(answer)["error"]) == (400, "BAD_ARGUMENT")
    status, answer = asgi(
        gw, "POST", "/api/v1/GetHead", b"", {"content-length": str(auth.request_bytes_max + 1)}
    )
    assert (status, json.loads(answer)["error"]) == (400, "TOO_LARGE")


def test_a_stalled_body_is_given_up_like_v1s(chain):
    pool = concurrent.futures.ThreadPoolExecutor(2)
    try:
        app = NodeApp(chain, pool, 0.3)
        # /v1/txs gives up on a stalled body (holds)
        status, body = asgi(app, "POST", "/v1/txs", b"x" * 10, stall=True, timeout=5)
        assert (status, json.loads(body)["error"]) == (408, "BODY_TRUNCATED")
        # /api/v1 waits forever (bounded here by the test's own 3 s)
        status, _ = asgi(app, "POST", "/api/v1/GetHead", b"{", stall=True, timeout=3)
        assert status in (400, 408)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _open_stream(port: int, from_height: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = json.dumps({"from_height": from_height}).encode()
    s.sendall(
        b"POST /api/v1/StreamBlocks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return s


def test_idle_http_streams_do_not_starve_the_node(chain):
    srv = NodeServer(chain, "127.0.0.1", 0)
    srv.start()
    streams: list[socket.socket] = []
    try:
        port = srv.address[1]
        streams = [_open_stream(port, chain.height + 1) for _ in range(4)]
        time.sleep(0.5)  # each now waits in a pool thread for a block that does not come
        status, head = post(port, "/api/v1/GetHead", b"{}", timeout=3)
        assert status == 200 and int(head["height"]) == chain.height
    finally:
        for s in streams:
            s.close()
        _commit_a_block(chain)  # the streams write, see their peers gone, and end
        srv.stop()


def _commit_a_block(chain) -> None:
    nonce = chain.nonce(ALICE.public_key)
    chain.submit(frame([transfer(ALICE, nonce, BOB, 1)])).wait(10)


def test_a_stream_whose_client_left_frees_its_slot(chain):
    srv = NodeServer(chain, "127.0.0.1", 0)
    srv.start()
    budget = srv._app.gateway.streams._sem
    try:
        s = _open_stream(srv.address[1], chain.height + 1)
        deadline = time.monotonic() + 5
        while budget._value == 16 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert budget._value == 15  # the stream is open
        s.close()
        deadline = time.monotonic() + 2
        while budget._value != 16 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert budget._value == 16
    finally:
        _commit_a_block(chain)
        srv.stop()


# === (c) errors by name ======================================================================


@pytest.mark.parametrize(
    ("method", "body", "status", "code"),
    [
        ("GetBlock", {"height": "18446744073709551615"}, 404, "NO_SUCH_BLOCK"),
        ("GetBlock", {"height": "18446744073709551616"}, 400, "BAD_ARGUMENT"),
        ("GetHead", {"shard": 1}, 400, "BAD_ARGUMENT"),
        ("Submit", {"txs": [b64(b"x")], "wait_s": "NaN"}, 400, "BAD_ARGUMENT"),
        ("AwaitReceipts", {"tx_ids": [b64(bytes(32))], "timeout_s": "Infinity"}, 400, "BAD_ARGUMENT"),
        ("AwaitReceipts", {"tx_ids": [b64(bytes(32))] * 1025}, 400, "BAD_ARGUMENT"),
        ("StreamBlocks", {"from_height": "99999"}, 400, "BAD_ARGUMENT"),
        ("StreamEvents", {"topic_prefix": b64(b"t" * 65)}, 400, "BAD_ARGUMENT"),
        ("Scan", {"prefix": b64(b"bal/"), "after": b64(b"k" * 65)}, 400, "BAD_ARGUMENT"),
        ("Lineage", {"app": "", "id": ""}, 404, "NO_SUCH_ENDPOINT"),
        ("CallApp", {}, 404, "NO_SUCH_ENDPOINT"),
        ("CallApp", {"endpoint": "finance.orgs", "json": '{"after": "zz"}'}, 400, "BAD_ARGUMENT"),
        ("CallApp", {"endpoint": "finance.orgs", "json": "[1]"}, 400, "BAD_ARGUMENT"),
        ("CallApp", {"endpoint": "finance.orgs", "json": "{not json"}, 400, "BAD_ARGUMENT"),
    ],
)
def test_odd_inputs_are_named_refusals(chain, method, body, status, code):
    got, answer = asgi(gateway(chain), "POST", f"/api/v1/{method}", json.dumps(body).encode())
    assert (got, json.loads(answer)["error"]) == (status, code), answer


def test_explorer_verify_refuses_by_name(chain):
    ex = Explorer(NodeService(chain), _inline)
    cases = {
        b"height=18446744073709551615": 404,
        b"height=18446744073709551616": 400,
        b"tx=" + b"0" * 64: 404,
        b"key=%00": 400,
        b"fact=doc&type=__class__&id=" + b"00" * 32: 400,
        b"height=0&height=0": 400,
        b"a=%zz&&": 400,
    }
    for query, status in cases.items():
        assert asgi(ex, "GET", "/explorer/verify", query=query)[0] == status, query
    got, body = asgi(ex, "GET", "/explorer/verify", query=b"fact=org&name=" + b"x" * 3000)
    assert got == 200 and json.loads(body)["verified"] is True


# === (d) correctness =========================================================================


def test_await_receipts_with_a_repeated_id(chain):
    svc = NodeService(chain)
    sub = svc.call("Submit", req("SubmitRequest", txs=[transfer(ALICE, 0, BOB, 1)], wait_s=10), CALLER)
    tx_id = sub.admissions[0].tx_id
    started = time.monotonic()
    got = svc.call("AwaitReceipts", req("AwaitReceiptsRequest", tx_ids=[tx_id, tx_id], timeout_s=1.0), CALLER)
    assert [r.tx_id for r in got.receipts] == [tx_id, tx_id]  # holds
    assert not got.timeout and time.monotonic() - started < 0.5


def test_call_app_passes_integers_as_integers(chain):
    svc = NodeService(chain)
    assert svc.endpoints["finance.orgs"]({"limit": 2})["next"] is None  # the endpoint itself: fine
    body = json.dumps({"endpoint": "finance.orgs", "json": json.dumps({"limit": 2})}).encode()
    status, answer = asgi(Gateway(svc, _inline), "POST", "/api/v1/CallApp", body)
    assert status == 200, answer
    assert json.loads(json.loads(answer)["json"])["next"] is None


def test_proofs_are_at_the_served_header_height(chain):
    svc = NodeService(chain)
    sub = svc.call("Submit", req("SubmitRequest", txs=[transfer(ALICE, 0, BOB, 3)], wait_s=10), CALLER)
    p = svc.call("ProveState", req("ProveStateRequest", key=accounts.balance_key(BOB.public_key)), CALLER)
    assert decode_header(p.header).height == p.height == chain.height
    t = svc.call("ProveTx", req("ProveTxRequest", tx_id=sub.admissions[0].tx_id), CALLER)
    assert decode_header(t.header).height == t.height == sub.receipts[0].height


def test_submit_receipts_name_the_shard_of_their_row(chain):
    """A cluster's submission: rows routed to shards 1, 0, 1, the middle one refused."""
    ids = [bytes([i]) * 32 for i in range(3)]
    receipts = [Receipt(ids[0], 0, []), None, Receipt(ids[2], 0, [])]
    fake = SimpleNamespace(
        tx_ids=ids,
        codes=np.array([0, 7, 0], np.uint8),
        heights=np.array([4, 0, 9], np.uint64),
        shards=np.array([1, 0, 1], np.int32),
        wait=lambda timeout: receipts,
    )
    svc = NodeService(chain, submit=lambda buf: fake)
    out = svc.call("Submit", req("SubmitRequest", txs=[b"a", b"b", b"c"], wait_s=1), CALLER)
    assert [(r.tx_id, r.shard, r.height) for r in out.receipts] == [(ids[0], 1, 4), (ids[2], 1, 9)]


def test_gateway_answers_match_the_openapi_document(chain):
    doc = openapi.document()
    schemas = doc["components"]["schemas"]
    gw = gateway(chain)
    for method, body, name in (
        ("GetHead", b"{}", "Header"),
        ("GetInfo", b"{}", "NodeInfo"),
        ("GetBlock", b'{"height": "0"}', "Block"),
        ("GetNonce", json.dumps({"public_key": b64(ALICE.public_key)}).encode(), "Nonce"),
    ):
        status, raw = asgi(gw, "POST", f"/api/v1/{method}", body)
        answer = json.loads(raw)
        props = schemas[name]["properties"]
        assert status == 200 and set(answer) == set(props), (method, set(answer) ^ set(props))
        for field, value in answer.items():
            kind = props[field].get("type")
            if props[field].get("format") in ("int64", "uint64"):
                assert isinstance(value, str) and value.isdigit(), (field, value)  # 64-bit: strings
            elif props[field].get("contentEncoding") == "base64":
                base64.b64decode(value, validate=True)
            elif kind == "integer":
                assert isinstance(value, int)
    assert schemas["Header"]["properties"]["height"]["format"] == "uint64"
    # field names as in the .proto, on both sides
    assert set(schemas["StreamBlocksRequest"]["properties"]) == {"from_height", "with_tx_ids", "shard"}


# === (e) the client's checks =================================================================


def _lying_server(chain, monkeypatch, method: str, mutate) -> GrpcServer:
    real = getattr(NodeService, method)

    def lying(self, request, caller):
        out = real(self, request, caller)
        mutate(out)
        return out

    monkeypatch.setattr(NodeService, method, lying)
    return GrpcServer(NodeService(chain), "127.0.0.1:0").start()


def test_the_client_catches_a_tampered_proof_or_header(chain, monkeypatch):
    svc = NodeService(chain)
    svc.call("Submit", req("SubmitRequest", txs=[transfer(ALICE, 0, BOB, 3)], wait_s=10), CALLER)

    def flip(out):
        out.header = out.header[:-1] + bytes([out.header[-1] ^ 1])  # the signature's last byte

    srv = _lying_server(chain, monkeypatch, "prove_state", flip)

    async def go():
        async with ApiClient(f"127.0.0.1:{srv.port}") as api:
            key = accounts.balance_key(BOB.public_key)
            await api.prove_state(key)  # without `trusted` the signature is not checked (as documented)
            with pytest.raises(ProofError):
                await api.prove_state(key, trusted=NODE.public_key)

    try:
        asyncio.run(go())
    finally:
        srv.stop()


@pytest.mark.parametrize("method", ["prove_state", "prove_tx"])
def test_the_client_checks_the_served_height(chain, monkeypatch, method):
    svc = NodeService(chain)
    sub = svc.call("Submit", req("SubmitRequest", txs=[transfer(ALICE, 0, BOB, 3)], wait_s=10), CALLER)
    tx_id = sub.admissions[0].tx_id

    def lie(out):
        out.height += 1000

    srv = _lying_server(chain, monkeypatch, method, lie)

    async def go():
        async with ApiClient(f"127.0.0.1:{srv.port}") as api:
            with pytest.raises(ProofError):
                if method == "prove_state":
                    await api.prove_state(accounts.balance_key(BOB.public_key), trusted=NODE.public_key)
                else:
                    await api.prove_tx(tx_id, trusted=NODE.public_key)

    try:
        asyncio.run(go())
    finally:
        srv.stop()
