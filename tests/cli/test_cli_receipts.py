"""``tierchain receipts``: warehouse receipts through the CLI against a real node (``node run`` on
loopback, the receipts app in its genesis), and one-line errors with exit codes (2: a bad
argument; 1: a refusal, naming its code). One node serves the module (started once, always
stopped).
"""

from __future__ import annotations

import time

import pytest

from app_node_world import AppNode, bad_argument, fast_key_files, refused

ORGS = {"Depot": "warehouse", "Tier1": "supplier", "BankA": "bank", "BankB": "bank"}


class Net(AppNode):
    """A chain running the receipts app."""

    rc = AppNode.do


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with fast_key_files(), Net(tmp_path_factory.mktemp("receipts-cli"), "receipts", ORGS) as n:
        n.admit()
        yield n


def test_issue_goods_pledge_anomaly_and_lineage(net):
    doc = net.tmp / "wr-0001.txt"
    doc.write_bytes(b"WAREHOUSE RECEIPT WR-0001: 5,000 kg soybeans, bay DL-B2\n")
    fp = net.rc("Depot", "anchor", str(doc))["fingerprint"]
    issued = net.rc(
        "Depot", "issue", "--to", "Tier1", "--quantity", "5000", "--item", "SOYBEAN", "--unit", "kg",
        "--location", "DL-B2", "--anchor", fp,
    )  # fmt: skip
    rid = issued["id"]
    g = net.rc("Depot", "goods", "--feed", "gate-01", "--in", f"{rid}:200", "--out", f"{rid}:100")
    assert g["outcomes"] == ["APPLIED", "APPLIED"] and g["anomalies"] == 0
    refused("WR_STALE_SEQUENCE", *net.args("Depot", "goods", "--feed", "gate-01", "--out", f"{rid}:100:2"))

    due = str(int(time.time() * 1000) + 86_400_000 * 30)
    net.rc("Tier1", "pledge", rid, "--bank", "BankA", "--loan", "1000000", "--due-ms", due)
    net.rc("BankA", "accept", rid)
    refused(
        "WR_ALREADY_PLEDGED",
        *net.args("Tier1", "pledge", rid, "--bank", "BankB", "--loan", "1", "--due-ms", due),
    )
    a = net.rc("Depot", "goods", "--feed", "gate-01", "--out", f"{rid}:1000")
    assert a["outcomes"] == ["ANOMALY_PLEDGED"] and a["anomalies"] == 1

    shown = net.read_only("show", rid)
    assert (shown["state"], shown["balance"], shown["holder"], shown["anomalies"]) == (
        "PLEDGED",
        5100,
        "Tier1",
        1,
    )
    assert shown["pledge"]["pledgee"] == "BankA"
    lin = net.read_only("lineage", rid)
    assert lin["anchor"]["fingerprint"] == fp and [p["event"] for p in lin["pledges"]] == [
        "PLEDGE_OFFERED",
        "PLEDGED",
    ]
    anomalies = net.read_only("anomalies", "Depot")
    assert [(x["receipt"], x["outcome"]) for x in anomalies] == [(rid, "ANOMALY_PLEDGED")]

    net.rc("BankA", "release", rid)
    parts = net.rc("Tier1", "split", rid, "5000", "100")["ids"]
    assert len(parts) == 2 and net.read_only("show", parts[1])["balance"] == 100
    refused("WR_BALANCE_NOT_ZERO", *net.args("Tier1", "close", parts[1]))


def test_bad_arguments_exit_2_before_signing(net):
    unknown = "ab" * 16
    bad_argument("no receipt", *net.args("Tier1", "accept", unknown))
    bad_argument("no organization", *net.args("Depot", "issue", "--to", "Nobody", "--quantity", "1",
                 "--item", "X", "--unit", "g", "--location", "L"))  # fmt: skip
    bad_argument("--item", *net.args("Depot", "issue", "--to", "Tier1", "--quantity", "1",
                 "--item", "a" * 33, "--unit", "g", "--location", "L"))  # fmt: skip
    bad_argument("--quantity", *net.args("Depot", "issue", "--to", "Tier1", "--quantity", "0",
                 "--item", "X", "--unit", "g", "--location", "L"))  # fmt: skip
    bad_argument("RECEIPT:QUANTITY", *net.args("Depot", "goods", "--feed", "f", "--out", "zz"))
    bad_argument("movements", *net.args("Depot", "goods", "--feed", "f"))
    bad_argument("2..8 parts", *net.args("Tier1", "split", unknown, "5"))
