"""The node's operations surface (tierchain.api.metrics, rpc): ``GET /metrics``, ``/health``,
``/ready``, request ids, and the Grafana dashboard in docs/grafana against a live node.

Every server listens on 127.0.0.1 (an ephemeral port) and is stopped; every wait is bounded.
"""

from __future__ import annotations

import enum
import http.client
import json
import logging
import re
import threading
import time
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ALICE, BOB, CAROL, CHAIN_ID, NODE, small_config, transfer
from tierchain.api import metrics as metrics_module
from tierchain.api.metrics import STAGES, Gauge
from tierchain.api.rpc import NodeApp, NodeClient, NodeServer
from tierchain.engine import apps
from tierchain.engine.chain import Chain
from tierchain.engine.execute import OpFailed
from tierchain.wire import tx as txcodec

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "tierchain-node.json"
TIMEOUT_S = 10.0


# --- an app that refuses with its own named code: receipts are counted by that name ---------


class MeterReject(enum.IntEnum):
    METER_REFUSED = 700


def _refuse(ctx) -> None:
    raise OpFailed(MeterReject.METER_REFUSED)


OP_REFUSE = 6100
METER = apps.App(
    name="meter",
    ops=(apps.Op(OP_REFUSE, "meter.refuse", _refuse),),
    op_codes=range(OP_REFUSE, OP_REFUSE + 1),
    reject_codes=range(700, 701),
    rejects=MeterReject,
)


def refused_tx(nonce: int) -> bytes:
    tx = txcodec.Tx(
        chain_id=CHAIN_ID,
        shard_id=0,
        op=OP_REFUSE,
        sender=CAROL.public_key,
        nonce=nonce,
        expires_at=0,
        reads=(),
        writes=(),
        payload=b"",
    )
    return CAROL.sign_tx(tx).encode()


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def node(tmp_path):
    """A chain running the meter app beside the default ones, and its endpoint."""
    cfg = small_config(apps=(*apps.DEFAULT_APPS, "meter"))
    with Chain(tmp_path / "c", cfg, NODE, apps=[METER]) as chain:
        srv = NodeServer(chain, "127.0.0.1", 0, body_timeout_s=1.0)
        srv.start()
        try:
            yield chain, srv
        finally:
            srv.stop()


def get(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """(status, headers with lower-case names, body) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``GET /metrics``: (name, sorted labels) -> value."""
    status, headers, body = get(port, "/metrics")
    assert status == 200
    assert headers["content-type"] == prometheus_client.CONTENT_TYPE_LATEST
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape_until(port: int, name: str, expected: float, **labels: str):
    """Scrape until ``name`` reads ``expected`` (the follower counts a block just after its
    submitters hear of it); the last scrape."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        samples = scrape(port)
        if value(samples, name, **labels) == expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.02)


def ready(port: int) -> tuple[int, dict]:
    status, headers, body = get(port, "/ready")
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)


def wait_ready(port: int, status: int, reason: str | None = None) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        got, body = ready(port)
        if (got, body.get("reason")) == (status, reason) or time.monotonic() > deadline:
            assert (got, body.get("reason")) == (status, reason), body
            return body
        time.sleep(0.05)


# --- /metrics --------------------------------------------------------------------------------


def test_metrics_count_what_was_submitted(node):
    chain, srv = node
    port = srv.address[1]
    client = NodeClient(f"http://127.0.0.1:{port}", timeout_s=TIMEOUT_S)
    n = 12
    for i in range(0, n, 4):  # three batches of four
        reply = client.submit(txcodec.frame([transfer(ALICE, j, BOB, 1) for j in range(i, i + 4)]), 5)
        assert reply["codes"] == ["OK"] * 4 and "receipts" in reply
    poor = client.submit(txcodec.frame([transfer(BOB, 0, ALICE, 10**9)]), 5)  # BOB holds 12
    assert poor["receipts"][0]["code"] == "INSUFFICIENT_FUNDS"
    app_refused = client.submit(txcodec.frame([refused_tx(0)]), 5)
    assert app_refused["receipts"][0]["code"] == "METER_REFUSED"
    gap = client.submit(txcodec.frame([transfer(ALICE, n + 5, BOB, 1)]), 5)  # a nonce gap
    assert gap["codes"] == ["NONCE_TOO_HIGH"]
    committed = n + 2

    s = scrape_until(port, "tierchain_committed_transactions_total", committed)
    assert value(s, "tierchain_committed_transactions_total") == committed
    assert value(s, "tierchain_committed_height") == chain.height > 0
    assert value(s, "tierchain_head_timestamp_seconds") == chain.head().timestamp_ms / 1000
    tps = value(s, "tierchain_committed_transactions_per_second")  # a window of the last 10 s
    assert 0 < tps <= committed / metrics_module.tps_window_s
    # admissions and rejects, by code name (an app's code by the app's name)
    assert value(s, "tierchain_admissions_total", code="OK") == committed
    assert value(s, "tierchain_admissions_total", code="NONCE_TOO_HIGH") == 1
    assert value(s, "tierchain_receipts_total", code="OK") == n
    assert value(s, "tierchain_receipts_total", code="INSUFFICIENT_FUNDS") == 1
    assert value(s, "tierchain_receipts_total", code="METER_REFUSED") == 1
    # submit -> commit latency: one observation per admitted transaction
    latency = "tierchain_submit_commit_latency_seconds"
    assert value(s, latency + "_count") == committed
    assert 0 < value(s, latency + "_sum") < committed * 5
    assert value(s, latency + "_bucket", le="+Inf") == committed
    # blocks: sizes, intervals, and each stage of each block
    blocks = chain.height  # every block of this chain was made while the endpoint ran
    assert value(s, "tierchain_block_transactions_count") == blocks
    assert value(s, "tierchain_block_transactions_sum") == committed
    assert value(s, "tierchain_block_interval_seconds_count") == blocks - 1  # none before the first
    for stage in STAGES:
        assert value(s, "tierchain_block_stage_seconds_count", stage=stage) == blocks
        assert value(s, "tierchain_block_stage_seconds_sum", stage=stage) >= 0
    assert value(s, "tierchain_metrics_missed_blocks_total") == 0
    # mempool, storage, readiness, identity
    assert value(s, "tierchain_mempool_waiting_transactions") == 0
    assert value(s, "tierchain_mempool_pending_transactions") == 0
    assert value(s, "tierchain_mempool_capacity_transactions") == chain.config.mempool_txs_max
    file_bytes, used = value(s, "tierchain_lmdb_file_size_bytes"), value(s, "tierchain_lmdb_used_bytes")
    assert 0 < used <= file_bytes <= value(s, "tierchain_lmdb_map_size_bytes")
    assert value(s, "tierchain_ready") == 1
    info = [labels for (name, labels) in s if name == "tierchain_node_info"]
    assert dict(info[0]) == {
        "chain_id": str(CHAIN_ID),
        "mode": "solo",
        "suite": chain.suite.name,
        "shard_index": "0",
        "shard_count": "1",
    }


def test_each_node_has_its_own_registry(tmp_path):
    """Two nodes in one process report their own chains, and nothing reaches the global registry."""
    with (
        Chain(tmp_path / "a", small_config(), NODE) as a,
        Chain(tmp_path / "b", small_config(), NODE) as b,
    ):
        servers = [NodeServer(c, "127.0.0.1", 0) for c in (a, b)]
        for srv in servers:
            srv.start()
        try:
            port_a, port_b = (srv.address[1] for srv in servers)
            NodeClient(f"http://127.0.0.1:{port_a}", timeout_s=TIMEOUT_S).submit(
                txcodec.frame([transfer(ALICE, 0, BOB, 1), transfer(ALICE, 1, BOB, 1)]), 5
            )
            committed = "tierchain_committed_transactions_total"
            assert value(scrape_until(port_a, committed, 2), committed) == 2
            sb = scrape(port_b)
            assert value(sb, "tierchain_committed_transactions_total") == 0
            assert value(sb, "tierchain_committed_height") == 0
        finally:
            for srv in servers:
                srv.stop()
    names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("tierchain") for name in names)


def test_health_sources_add_gauges_and_a_failing_one_is_left_out(node):
    _, srv = node
    port = srv.address[1]
    metrics = srv._app.metrics
    metrics.add_source(lambda: [Gauge("tierchain_shard_links_up", "Shard links up.", 2, {"cluster": "c1"})])

    def broken():
        raise RuntimeError("link table unavailable")

    metrics.add_source(broken)
    metrics.add_source(lambda: [Gauge("not prefixed", "Refused: not a tierchain_ name.", 1)])
    s = scrape(port)
    assert value(s, "tierchain_shard_links_up", cluster="c1") == 2
    assert value(s, "tierchain_committed_height") == 0  # the scrape itself went on
    assert not any("prefixed" in name for name, _ in s)


@pytest.mark.parametrize("path", ["/metrics", "/health", "/ready"])
def test_operations_paths_take_get_and_no_query(node, path):
    _, srv = node
    port = srv.address[1]
    status, headers, body = get(port, path, method="POST")
    assert (status, json.loads(body)["error"], headers["allow"]) == (405, "METHOD_NOT_ALLOWED", "GET")
    status, _, body = get(port, path + "?x=1")
    assert (status, json.loads(body)["error"]) == (400, "BAD_QUERY")


# --- /health, /ready --------------------------------------------------------------------------


def test_health_and_ready_while_serving_and_once_stopping(node):
    _, srv = node
    port = srv.address[1]
    status, headers, body = get(port, "/health")
    assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", {"status": "ok"})
    assert ready(port) == (200, {"status": "ready", "height": 0})
    srv._app.stopping = True  # what NodeServer.stop sets first, before it stops accepting
    status, body = ready(port)
    assert (status, body["error"], body["reason"]) == (503, "NOT_READY", "STOPPING")
    assert body["detail"]
    assert get(port, "/health")[0] == 200  # still alive: it serves
    assert value(scrape(port), "tierchain_ready") == 0


def test_ready_only_once_the_producer_runs(tmp_path):
    with Chain(tmp_path / "c", small_config(), NODE, start=False) as chain:
        srv = NodeServer(chain, "127.0.0.1", 0)
        srv.start()
        try:
            port = srv.address[1]
            assert ready(port)[1]["reason"] == "NOT_RUNNING"
            assert get(port, "/health")[0] == 200
            chain.start()
            wait_ready(port, 200)
        finally:
            srv.stop()


def test_ready_reports_a_stalled_pipeline_and_recovers(node, monkeypatch):
    chain, srv = node
    port = srv.address[1]
    monkeypatch.setattr(metrics_module, "stall_s", 0.3)
    gate = threading.Event()
    produce = chain._produce

    def held(chunks):  # a producer stuck on a block (a dead disk, a bug): nothing commits
        gate.wait(TIMEOUT_S)
        produce(chunks)

    monkeypatch.setattr(chain, "_produce", held)
    try:
        client = NodeClient(f"http://127.0.0.1:{port}", timeout_s=TIMEOUT_S)
        assert client.submit(txcodec.frame([transfer(ALICE, 0, BOB, 1)]))["codes"] == ["OK"]
        body = wait_ready(port, 503, "STALLED")
        assert "1 transactions pending" in body["detail"]
        assert value(scrape(port), "tierchain_mempool_pending_transactions") == 1
    finally:
        gate.set()
    wait_ready(port, 200)  # the block committed: the head moved, nothing pending


def test_ready_reports_a_failed_chain(node, monkeypatch):
    chain, srv = node
    port = srv.address[1]

    def broken(chunks):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(chain, "_produce", broken)
    client = NodeClient(f"http://127.0.0.1:{port}", timeout_s=TIMEOUT_S)
    client.submit(txcodec.frame([transfer(ALICE, 0, BOB, 1)]))
    body = wait_ready(port, 503, "CHAIN_FAILED")
    assert "disk on fire" in body["detail"]


# --- request ids ------------------------------------------------------------------------------


def test_request_id_is_echoed_when_sane_else_generated(node):
    _, srv = node
    port = srv.address[1]
    for given in ("abc-123", "A.b_c-9", "x" * 128):
        assert get(port, "/health", {"X-Request-Id": given})[1]["x-request-id"] == given
    generated = set()
    for headers in ({}, {"X-Request-Id": "x" * 129}, {"X-Request-Id": "a b"}, {"X-Request-Id": "é$"}):
        rid = get(port, "/health", headers)[1]["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", rid), rid
        generated.add(rid)
    assert len(generated) == 4
    status, headers, _ = get(port, "/v1/nothing", {"X-Request-Id": "on-error"})  # errors carry it too
    assert (status, headers["x-request-id"]) == (404, "on-error")
    status, headers, _ = get(port, "/metrics", {"X-Request-Id": "scrape-1"})
    assert (status, headers["x-request-id"]) == (200, "scrape-1")


def test_request_id_is_in_the_request_log_lines(node, monkeypatch, caplog):
    _, srv = node
    port = srv.address[1]

    def bug(self, height):
        raise RuntimeError("a bug")

    monkeypatch.setattr(NodeApp, "block", bug)
    caplog.set_level(logging.INFO, logger="tierchain.rpc")
    status, headers, body = get(port, "/v1/block/1", {"X-Request-Id": "trace-42"})
    assert (status, json.loads(body)["error"], headers["x-request-id"]) == (500, "INTERNAL_ERROR", "trace-42")
    records = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert records and records[0].fields["request_id"] == "trace-42"
    assert records[0].fields["path"] == "/v1/block/1"


# --- the dashboard ----------------------------------------------------------------------------


def _panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # inside rows


def test_dashboard_is_importable_and_queries_only_exposed_metrics(node):
    _, srv = node
    port = srv.address[1]
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30 and dash["panels"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    panels = list(_panels(dash["panels"]))
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = []
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        exprs += [t["expr"] for t in panel["targets"]]
    queried = {name for expr in exprs for name in re.findall(r"\b(?:tierchain|process)_[A-Za-z0-9_]+", expr)}
    # the panels the brief names: TPS, height, block time and stages, mempool, rejects, latency, LMDB
    for needed in (
        "tierchain_committed_transactions_per_second",
        "tierchain_committed_height",
        "tierchain_block_interval_seconds_bucket",
        "tierchain_block_stage_seconds_sum",
        "tierchain_mempool_waiting_transactions",
        "tierchain_admissions_total",
        "tierchain_receipts_total",
        "tierchain_submit_commit_latency_seconds_bucket",
        "tierchain_lmdb_file_size_bytes",
    ):
        assert needed in queried, needed
    # a live node after some traffic (so every labelled family has samples)
    client = NodeClient(f"http://127.0.0.1:{port}", timeout_s=TIMEOUT_S)
    client.submit(txcodec.frame([transfer(ALICE, 0, BOB, 1), transfer(ALICE, 7, BOB, 1)]), 5)
    exposed = {name for name, _ in scrape_until(port, "tierchain_committed_transactions_total", 1)}
    assert queried <= exposed, sorted(queried - exposed)
