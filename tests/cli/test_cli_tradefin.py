"""``tierchain tradefin``: letters of credit, guarantees and factoring through the CLI against a
real node (``node run`` on loopback, the tradefin app in its genesis), with one-line errors
and exit codes (2: a bad argument; 1: a refusal, naming its code).

One node serves the module (started once, always stopped); each test makes its own
instruments so that the tests do not depend on each other's order.
"""

from __future__ import annotations

import datetime as dt

import pytest

from app_node_world import AppNode, bad_argument, fast_key_files, refused

ORGS = {"CoreCo": "core_enterprise", "Tier1": "supplier", "BankA": "bank", "BankB": "bank"}


def days(n: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=n)).isoformat(timespec="seconds")


class Net(AppNode):
    """A chain running the tradefin app; ``file`` writes a document and gives its path."""

    tf = AppNode.do
    show = AppNode.read_only

    def file(self, name: str, data: bytes) -> str:
        return str(super().file(name, data))


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with (
        fast_key_files(),
        Net(tmp_path_factory.mktemp("tradefin-cli"), "tradefin", ORGS, options_last=False) as n,
    ):
        n.admit()
        yield n


def test_an_lc_from_application_to_payment(net):
    app = net.file("application.txt", b"CoreCo applies for an LC of 1,000,000 in favour of Tier1\n")
    lc = net.tf(
        "CoreCo", "lc-apply", "BankA", "BankB", "Tier1", "--amount", "1000000", "--tolerance-bps", "500",
        "--expiry", days(60), "--latest-shipment", days(30), "--doc", "invoice",
        "--doc", "transport_document", "--presentations", "2", "--partial", "--document", app,
    )["id"]  # fmt: skip
    assert net.tf("BankA", "lc-issue", lc, "--document", net.file("lc.txt", b"LC text"))["code"] == "OK"
    assert net.tf("BankB", "lc-advise", lc)["code"] == "OK"
    inv = net.file("invoice.txt", b"invoice INV-1: 500,000")
    waybill = "ab" * 32
    over = ["lc-present", lc, "--amount", "2000000", "--shipment", days(-1), "--doc", f"invoice={inv}"]
    refused("TF_EXCEEDS_AVAILABLE", *net.args("Tier1", *over, "--doc", f"transport_document:{waybill}"))
    p = net.tf(
        "Tier1", "lc-present", lc, "--amount", "500000", "--shipment", days(-1),
        "--doc", f"invoice={inv}", "--doc", f"transport_document:{waybill}",
    )  # fmt: skip
    assert p["index"] == 0
    assert net.tf("BankB", "lc-check", lc, "0", "--compliant")["code"] == "OK"
    assert net.tf("BankA", "lc-check", lc, "0", "--compliant")["code"] == "OK"
    assert net.tf("BankA", "lc-accept", lc, "0")["code"] == "OK"
    assert net.tf("BankA", "lc-pay", lc, "0", "--fingerprint", "cd" * 32)["code"] == "OK"
    h = net.show("lc-show", lc)
    assert (
        h["status"] == "ADVISED" and h["amounts"]["paid"] == 500_000 and h["amounts"]["available"] == 550_000
    )
    assert [e["event"] for e in h["history"]][-3:] == ["CHECKED_COMPLIANT", "ACCEPTED", "PAID"]
    assert h["presentations"][0]["documents"][1] == {"type": "TRANSPORT_DOCUMENT", "fingerprint": waybill}
    refused("TF_NOT_CLOSABLE", *net.args("BankA", "lc-close", lc))


def test_bad_arguments_exit_2(net):
    bad_argument("no letter of credit", *net.args("BankA", "lc-issue", "00" * 16))
    bad_argument("--compliant", *net.args("BankA", "lc-check", "00" * 16, "0"))
    bad_argument(
        "TYPE=FILE",
        *net.args("Tier1", "lc-present", "00" * 16, "--amount", "1", "--shipment", days(0), "--doc", "bogus"),
    )
    bad_argument(
        "no organization",
        *net.args(
            "BankA", "g-issue", "Nobody", "CoreCo", "--kind", "bid", "--amount", "1", "--expiry", days(1)
        ),
    )
    bad_argument("--key", "tradefin", "--node", net.url, "lc-advise", "00" * 16)


def test_a_guarantee_and_a_factored_invoice(net):
    g = net.tf(
        "BankA",
        "g-issue",
        "Tier1",
        "CoreCo",
        "--kind",
        "performance",
        "--amount",
        "200000",
        "--expiry",
        days(30),
    )["id"]
    demand = net.file("demand.txt", b"CoreCo demands 50,000")
    assert net.tf("CoreCo", "g-claim", g, "--amount", "50000", "--document", demand)["code"] == "OK"
    assert net.tf("BankA", "g-pay", g)["code"] == "OK"
    view = net.show("g-show", g)
    assert (view["paid"], view["remaining"], view["status"]) == (50_000, 150_000, "ISSUED")

    invoice = net.file("invoice-f.txt", b"invoice INV-F: 300,000 owed by CoreCo")
    fp = net.finance("Tier1", "anchor", "invoice", invoice)["fingerprint"]
    assign = [
        "f-assign",
        fp,
        "CoreCo",
        "BankA",
        "--amount",
        "300000",
        "--due",
        days(30),
        "--advance",
        "280000",
    ]
    assert net.tf("Tier1", *assign, "--recourse", "with")["invoice"] == fp
    again = ["f-assign", fp, "CoreCo", "BankB", "--amount", "300000", "--due", days(30), "--advance", "1"]
    refused("TF_RECEIVABLE_ASSIGNED", *net.args("Tier1", *again, "--recourse", "without"))
    assert net.tf("BankA", "f-accept", fp)["code"] == "OK"
    refused("TF_NOTICE_NOT_ACKNOWLEDGED", *net.args("CoreCo", "f-pay", fp, "--amount", "1"))
    assert net.tf("CoreCo", "f-ack", fp)["code"] == "OK"
    assert net.tf("CoreCo", "f-pay", fp, "--amount", "300000")["code"] == "OK"
    chain = net.show("f-show", fp)
    assert chain["status"] == "SETTLED" and chain["anchor"]["anchored_by"]["name"] == "Tier1"
    assert [(a["factor"]["name"], a["outcome"]) for a in chain["assignments"]] == [("BankA", "ASSIGNED")]


def test_a_forfaited_bill_named_by_its_fingerprint(net):
    bill = "ef" * 32
    offer = [
        "w-offer-bill",
        bill,
        "BankB",
        "CoreCo",
        "--face",
        "100000",
        "--maturity",
        days(30),
        "--price",
        "98000",
    ]
    fid = net.tf("Tier1", *offer)["id"]
    assert net.tf("BankB", "w-accept", bill)["code"] == "OK"
    shown = net.show("w-show", fid)
    assert (shown["status"], shown["instrument"], shown["price"]) == ("PURCHASED", {"bill": bill}, 98_000)
    refused("TF_NOT_DUE", *net.args("BankB", "w-settle", bill))
    bad_argument("LC_ID:INDEX", "tradefin", "--node", net.url, "w-show", "00" * 16 + ":x")
