"""The network API over HTTP/JSON (tierchain.api.gateway) and its OpenAPI document, on the
node's HTTP listen address, beside gRPC on the same service (docs/api.md).

Same answers as gRPC (JSON in proto3's mapping), the same refusals as HTTP statuses with
``{"error", "detail"}``, signed calls by headers, streams as newline-delimited JSON, and an
OpenAPI document whose every path is a method and every reference resolves.
"""

from __future__ import annotations

import base64
import http.client
import json
import time

import pytest

from conftest import ALICE, BOB, transfer
from tierchain.api import auth, schema
from tierchain.api.rpc import NodeServer
from tierchain.apps import accounts


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def node(chain):
    srv = NodeServer(chain, "127.0.0.1", 0, grpc_listen="127.0.0.1:0")
    srv.start()
    yield chain, srv
    srv.stop()


def post(port: int, method: str, body: dict | bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(
            "POST", f"/api/v1/{method}", raw, {"content-type": "application/json", **(headers or {})}
        )
        r = conn.getresponse()
        return r.status, json.loads(r.read()), dict(r.getheaders())
    finally:
        conn.close()


def test_the_same_service_answers_in_json(node):
    _, srv = node
    port = srv.address[1]
    status, info, headers = post(port, "GetInfo", {})
    assert status == 200 and info["chain_id"] == "9" and info["suite"] == "ed25519-blake3"
    assert headers.get("x-request-id")
    tx = transfer(ALICE, 0, BOB, 5)
    status, sub, _ = post(port, "Submit", {"txs": [b64(tx)], "wait_s": 10})
    assert status == 200 and sub["admissions"][0]["code"] == "OK" and sub["timeout"] is False
    assert sub["receipts"][0]["code"] == "OK"
    tx_id = base64.b64decode(sub["admissions"][0]["tx_id"])
    status, rec, _ = post(port, "GetTx", {"tx_id": b64(tx_id)})
    assert status == 200 and base64.b64decode(rec["tx"]) == tx
    status, value, _ = post(port, "GetState", {"key": b64(accounts.balance_key(BOB.public_key))})
    assert value["found"] is True and int.from_bytes(base64.b64decode(value["value"]), "little") == 5
    status, absent, _ = post(port, "GetState", {"key": b64(b"nothing here")})
    assert (status, absent) == (200, {"found": False, "value": ""})  # every field present
    assert post(port, "GetNonce", {"public_key": b64(ALICE.public_key)})[1] == {"nonce": "1"}


@pytest.mark.parametrize(
    ("method", "body", "status", "code"),
    [
        ("GetTx", {"tx_id": b64(b"x")}, 400, "BAD_ARGUMENT"),
        ("GetTx", {"tx_id": b64(bytes(32))}, 404, "NO_SUCH_TX"),
        ("GetBlock", {"height": "999999999"}, 404, "NO_SUCH_BLOCK"),
        ("GetState", {"key": "not base64!"}, 400, "BAD_ARGUMENT"),
        ("GetState", {"no_such_field": 1}, 400, "BAD_ARGUMENT"),
        ("GetState", b"{not json", 400, "BAD_ARGUMENT"),
        ("Submit", {"txs": []}, 400, "BAD_ARGUMENT"),
        ("NoSuchMethod", {}, 404, "NOT_FOUND"),
        ("Lineage", {"app": "finance", "id": b64(bytes(16))}, 404, "NO_SUCH_RECORD"),
    ],
)
def test_refusals_are_statuses_with_named_codes(node, method, body, status, code):
    _, srv = node
    got, answer, _ = post(srv.address[1], method, body)
    assert (got, answer["error"]) == (status, code), answer
    assert answer["detail"]


def test_get_is_not_a_method_and_openapi_describes_every_method(node):
    _, srv = node
    conn = http.client.HTTPConnection("127.0.0.1", srv.address[1], timeout=10)
    conn.request("GET", "/api/v1/GetHead")
    r = conn.getresponse()
    assert r.status == 400 and json.loads(r.read())["error"] == "METHOD_NOT_ALLOWED"
    conn.request("GET", "/openapi.json")
    r = conn.getresponse()
    assert r.status == 200
    doc = json.loads(r.read())
    conn.close()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {f"/api/v1/{m}" for m in schema.methods()}
    schemas = doc["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    # each message's properties are its .proto fields
    submit = schemas["SubmitRequest"]["properties"]
    assert set(submit) == {"txs", "wait_s"} and submit["txs"]["items"]["contentEncoding"] == "base64"
    stream = doc["paths"]["/api/v1/StreamBlocks"]["post"]["responses"]["200"]["content"]
    assert "application/x-ndjson" in stream


def test_streams_are_newline_delimited_json(node):
    chain, srv = node
    post(srv.address[1], "Submit", {"txs": [b64(transfer(ALICE, 0, BOB, 1))], "wait_s": 10})
    conn = http.client.HTTPConnection("127.0.0.1", srv.address[1], timeout=10)
    conn.request("POST", "/api/v1/StreamBlocks", json.dumps({"from_height": 0}).encode())
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type") == "application/x-ndjson"
    heights = [int(json.loads(r.readline())["header"]["height"]) for _ in range(chain.height + 1)]
    assert heights == list(range(chain.height + 1))
    conn.close()  # the client goes away: the stream ends on the node's side


def test_signed_calls_by_headers(chain):
    srv = NodeServer(chain, "127.0.0.1", 0, authenticator=auth.Authenticator(chain, required=True))
    srv.start()
    try:
        port = srv.address[1]
        status, answer, _ = post(port, "GetHead", {})
        assert (status, answer["error"]) == (401, "UNAUTHENTICATED")
        raw = b"{}"
        headers = auth.sign_call(ALICE, chain.suite, f"/{schema.SERVICE}/GetHead", raw)
        status, head, _ = post(port, "GetHead", raw, headers)
        assert status == 200 and int(head["height"]) == chain.height
        other = auth.sign_call(ALICE, chain.suite, f"/{schema.SERVICE}/GetHead", b"{ }")  # other bytes
        assert post(port, "GetHead", raw, other)[0] == 401
        stale = auth.sign_call(
            ALICE, chain.suite, f"/{schema.SERVICE}/GetHead", raw, int(time.time() * 1000) - 10**6
        )
        assert post(port, "GetHead", raw, stale)[0] == 401
        # the older /v1 endpoints are the operator's loopback surface, unchanged
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/head")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        srv.stop()


def test_the_stream_paths_are_the_streaming_methods():
    from tierchain.api.gateway import PREFIX, STREAM_PATHS

    assert set(STREAM_PATHS) == {PREFIX + n for n, m in schema.methods().items() if m.server_streaming}
