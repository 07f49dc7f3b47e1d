"""``tierchain bills``: a bill's life through the CLI against a real node (``node run`` on
loopback, the bills app in its genesis), and one-line errors with exit codes (2: a bad
argument, before anything is signed; 1: a refusal, naming its code).

One node serves the module. So that a bill can be presented the day it is drawn, the
committee votes a minimum tenor of 0 days and makes today a business day.
"""

from __future__ import annotations

import time

import pytest

from app_node_world import AppNode, fast_key_files, one_line
from tierchain.apps.bills import days
from tierchain.apps.finance import codes as fc

ORGS = {"CoreCo": "core_enterprise", "Tier1": "supplier", "Tier2": "supplier", "BankA": "bank"}


class Net(AppNode):
    """A chain running the bills app; ``today``: a business day, the shortest tenor."""

    bills = AppNode.do
    today: str


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with fast_key_files(), Net(tmp_path_factory.mktemp("bills-cli"), "bills", ORGS, options_last=False) as n:
        n.admit()
        today = days.local_day(int(time.time() * 1000), 480)
        year, month, dom = days.civil_from_days(today)
        n.today = f"{year:04d}-{month:02d}-{dom:02d}"
        assert n.bills("node", "vote-params", "--min-tenor-days", "0")["applied"] is True
        assert n.bills("node", "vote-calendar", str(year), "--workday", n.today)["applied"] is True
        yield n


def test_issue_endorse_discount_present_pay_and_lineage(net):
    issued = net.bills(
        "CoreCo", "issue", "--kind", "commercial", "--acceptor", "CoreCo", "--payee", "Tier1",
        "--face", "1000000", "--maturity", net.today,
    )  # fmt: skip
    bid = issued["bill"]
    assert issued["code"] == "OK" and issued["state"] == "DRAWN"
    assert net.bills("CoreCo", "accept", bid)["state"] == "OFFERED"
    assert net.bills("Tier1", "sign", bid)["state"] == "ACTIVE"
    net.bills("Tier1", "endorse", bid, "--to", "Tier2", "--restrictive")
    net.bills("Tier2", "sign", bid)
    net.bills("Tier2", "discount", bid, "--bank", "BankA", "--price", "985000")
    net.bills("BankA", "sign", bid)
    assert net.bills("BankA", "present", bid)["state"] == "PRESENTED"
    assert net.bills("CoreCo", "pay", bid)["state"] == "PAID"
    shown = net.bills(None, "show", bid)
    assert (shown["state"], shown["holder"]["name"], shown["face"], shown["due"]) == (
        "PAID",
        "BankA",
        1_000_000,
        net.today,
    )
    lin = net.bills(None, "lineage", bid)
    assert [(e["kind"], e["to"]["name"], e["restrictive"]) for e in lin["endorsements"]] == [
        ("DELIVERY", "Tier1", False),
        ("ENDORSE", "Tier2", True),
        ("DISCOUNT", "BankA", False),
    ]
    assert [(p["to"]["name"], p["amount"]) for p in lin["payments"]] == [("BankA", 1_000_000)]
    one_line(1, "BILL_CLOSED", *net.args("BankA", "present", bid))


def test_refusals_exit_1_and_bad_arguments_exit_2(net):
    bid = net.bills(
        "CoreCo", "issue", "--kind", "commercial", "--acceptor", "CoreCo", "--payee", "Tier1",
        "--face", "5000", "--maturity", net.today, "--not-transferable",
    )["bill"]  # fmt: skip
    net.bills("CoreCo", "accept", bid)
    net.bills("Tier1", "sign", bid)
    one_line(1, "endorse refused: BILL_NOT_TRANSFERABLE", *net.args("Tier1", "endorse", bid, "--to", "Tier2"))
    net.bills("Tier1", "present", bid)
    one_line(1, "BILL_NOT_ACCEPTOR", *net.args("Tier1", "dishonour", bid, "--reason", "other"))
    assert net.bills("CoreCo", "dishonour", bid, "--reason", "insufficient_funds")["state"] == "DISHONOURED"
    one_line(1, "BILL_NO_CLAIM", *net.args("CoreCo", "recourse-pay", bid))
    assert net.bills("Tier1", "claim", bid)["code"] == "OK"
    assert net.bills(None, "lineage", bid)["recourse"]["claimed"]["name"] == "CoreCo"
    # Bad arguments: nothing is signed.
    one_line(2, "no bill", *net.args("Tier1", "sign", "00" * 16))
    one_line(2, "no organization Nobody", *net.args("Tier1", "endorse", bid, "--to", "Nobody"))
    issue = ["issue", "--kind", "bank", "--acceptor", "BankA", "--payee", "Tier1", "--face", "10"]
    one_line(2, "YYYY-MM-DD", *net.args("CoreCo", *issue, "--maturity", "31/12/2026"))
    one_line(2, "give --key", *net.args(None, "accept", bid))
    one_line(2, "parameters out of range", *net.args("node", "vote-params", "--min-tenor-days", "400"))
    params = net.bills(None, "params")
    assert (params["min_tenor_days"], params["weekend"]) == (0, ["sat", "sun"])
    cal = net.bills(None, "calendar", net.today[:4])
    assert cal["voted"] is True and net.today not in cal["closed"]
    assert fc.org_id("Tier1").hex() == net.bills(None, "show", bid)["payee"]["id"]
