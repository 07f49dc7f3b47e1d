"""The node endpoint's generic reads for apps: prefix scans and app endpoints (``/v1/app/<name>``).

An app's endpoint is made once per node (so it keeps per-node state), gets the JSON body,
and refuses with its own named codes and HTTP statuses; the node refuses what never
reaches it (unknown names, non-JSON bodies, other methods) with its own codes.
"""

from __future__ import annotations

import pytest
from test_rpc import assert_error, request, transfer

from conftest import ALICE, NODE, small_config
from tierchain.api.rpc import NodeClient, NodeServer, RpcError
from tierchain.apps import accounts
from tierchain.engine import apps
from tierchain.engine.chain import Chain
from tierchain.engine.queries import scan_limit_max
from tierchain.wire.tx import frame


def _counter(chain):
    """An endpoint with per-node state: counts calls, refuses a missing 'x' or too many calls."""
    calls = {"n": 0}

    def handle(body: dict) -> dict:
        if "x" not in body:
            raise apps.EndpointError("NO_X", "the body needs an x", 400)
        calls["n"] += 1
        if calls["n"] > 3:
            raise apps.EndpointError("RATE_LIMITED", "three calls a node", 429)
        return {"x": body["x"], "calls": calls["n"], "height": chain.height}

    return handle


PROBE = apps.App(
    name="probe", ops=(), op_codes=range(6000, 6001), endpoints=(apps.Endpoint("probe.count", _counter),)
)


@pytest.fixture
def probe_server(tmp_path):
    cfg = small_config(apps=(*apps.DEFAULT_APPS, "probe"))
    with Chain(tmp_path / "c", cfg, NODE, apps=[PROBE]) as chain:
        srv = NodeServer(chain, "127.0.0.1", 0, body_timeout_s=1.0)
        srv.start()
        try:
            yield chain, srv
        finally:
            srv.stop()


def test_app_endpoint_answers_and_refuses_by_name(probe_server):
    chain, srv = probe_server
    port = srv.address[1]
    client = NodeClient(f"http://127.0.0.1:{port}", timeout_s=10)
    assert client.app("probe.count", {"x": 5}) == {"x": 5, "calls": 1, "height": chain.height}
    with pytest.raises(RpcError) as caught:
        client.app("probe.count", {})
    assert (caught.value.code, caught.value.status) == ("NO_X", 400)
    client.app("probe.count", {"x": 1})
    client.app("probe.count", {"x": 1})
    with pytest.raises(RpcError) as caught:  # the endpoint's own state: made once for this node
        client.app("probe.count", {"x": 1})
    assert (caught.value.code, caught.value.status) == ("RATE_LIMITED", 429)
    assert_error(request(port, "POST", "/v1/app/nothing", b"{}"), 404, "NO_SUCH_ENDPOINT")
    assert_error(request(port, "GET", "/v1/app/probe.count"), 405, "METHOD_NOT_ALLOWED")
    for bad in (b"not json", b"[1, 2]", b"\xff\xfe", b'"text"'):
        assert_error(request(port, "POST", "/v1/app/probe.count", bad), 400, "BAD_JSON")
    assert_error(request(port, "POST", "/v1/app/probe.count?x=1", b"{}"), 400, "BAD_QUERY")


def test_endpoint_names_are_checked_and_claimed_once():
    with pytest.raises(apps.AppError):
        apps.Endpoint("bad name/", _counter)
    twin = apps.App(
        name="twin", ops=(), op_codes=range(6001, 6002), endpoints=(apps.Endpoint("probe.count", _counter),)
    )
    with pytest.raises(apps.AppConflict, match=r"endpoint probe\.count"):
        apps.AppSet([PROBE, twin])


def test_scan_pages_through_committed_state(probe_server):
    chain, srv = probe_server
    port = srv.address[1]
    client = NodeClient(f"http://127.0.0.1:{port}", timeout_s=10)
    client.submit(frame([transfer(ALICE, 0, NODE, 1)]), wait_s=30)
    prefix = accounts.balance_key(b"")
    everything = chain.state_scan(prefix, scan_limit_max)
    assert len(everything) >= 3 and all(k.startswith(prefix) for k, _ in everything)
    assert client.scan(prefix, 1000) == everything
    first, rest = client.scan(prefix, 2), client.scan(prefix, 1000, after=everything[1][0])
    assert first + rest == everything
    assert client.scan(b"\xffnothing") == []
    reply = request(port, "GET", f"/v1/scan/{prefix.hex()}?limit=1")
    assert reply.status == 200 and len(reply.body["pairs"]) == 1
    for query in ("limit=0", f"limit={scan_limit_max + 1}", "limit=x", "other=1", "limit=1&limit=2"):
        assert_error(request(port, "GET", f"/v1/scan/{prefix.hex()}?{query}"), 400, "BAD_QUERY")
    assert_error(request(port, "GET", f"/v1/scan/{prefix.hex()}?after=zz"), 400, "BAD_KEY")
    for bad in ("", "zz", "ab" * 65):
        assert_error(request(port, "GET", f"/v1/scan/{bad}"), 400, "BAD_KEY")
