"""``tierchain abs``: an auto-loan pool from registration to its servicing report through the
CLI against a real node (``node run`` on loopback, the abs app in its genesis), and one-line
errors with exit codes (2: a bad argument; 1: a refusal naming its code, or no matplotlib).

One node serves the module (started once, always stopped).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pytest

from app_node_world import AppNode, Cli, fast_key_files

REF_KEY = "11" * 32
ENV = {"TIERCHAIN_PASSPHRASE": "test pass", "TIERCHAIN_ABS_REFERENCE_KEY": REF_KEY}
ORGS = {"AutoFin": ("originator", "servicer"), "TrustCo": ("trustee",)}
CLI = Cli(ENV)
ok = CLI.ok
failed = functools.partial(CLI.one_line, stdout_empty=False)  # exit 1 or 2, one line on stderr


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with fast_key_files(), AppNode(tmp_path_factory.mktemp("abs-cli"), "abs", ORGS, chain_id=6, cli=CLI) as n:
        n.admit(via="abs")  # the abs group's own propose-admit
        yield n


def _register(net: AppNode, contract: str, principal: int) -> str:
    return net.do(
        "AutoFin", "register", "--kind", "loan", "--principal", str(principal), "--rate-bp", "688",
        "--start", "2025-06-01", "--term", "36", "--servicer", "AutoFin", "--contract", contract,
        "--obligor", f"id of {contract}",
    )["id"]  # fmt: skip


def test_a_pool_from_registration_to_its_servicing_report(net, tmp_path):
    loans = [_register(net, f"AF-{i}", 100_000 * (i + 1)) for i in range(3)]
    r = net.do("AutoFin", "event", loans[0], "repayment", "--value-date", "2025-07-01", "--principal", "2777",
               "--interest", "573", "--installment", "1")  # fmt: skip
    assert (r["seq"], r["outstanding"], r["status"]) == (0, 97_223, "PERFORMING")
    net.do("AutoFin", "event", loans[1], "prepayment", "--value-date", "2025-08-01", "--principal", "50000")
    criteria = ["--max-principal", "1000000", "--max-remaining-months", "36", "--kind", "loan"]
    pool = net.do("AutoFin", "pool", "create", "AUTO 2026-1", *criteria, "--min-rate-bp", "500")["id"]
    assert net.do("AutoFin", "pool", "select", pool, *loans)["assets"] == 3
    other = net.do("AutoFin", "pool", "create", "OTHER", *criteria)["id"]
    failed(1, "ABS_ALREADY_POOLED", *net.args("AutoFin", "pool", "select", other, loans[0]))
    net.do("AutoFin", "pool", "close", pool)
    net.do("AutoFin", "pool", "transfer", pool, "TrustCo")
    net.do("TrustCo", "pool", "accept", pool)
    net.do("AutoFin", "event", loans[2], "default", "--value-date", "2025-12-01")
    failed(1, "ABS_BAD_STATE", *net.args("AutoFin", "event", loans[2], "prepayment", "--value-date",
                                         "2025-12-02", "--principal", "1"))  # fmt: skip

    shown = ok("abs", "--node", net.url, "show", "pool", pool)
    assert (shown["status"], shown["trustee_name"], shown["assets"]) == ("IN_TRUST", "TrustCo", 3)
    asset = ok("abs", "--node", net.url, "show", "asset", loans[1])
    assert [e["kind"] for e in asset["cash_flows"]] == ["PREPAYMENT"] and asset["outstanding"] == 150_000
    st = ok("abs", "--node", net.url, "stats", pool)
    assert st["default_by_count"] == {"fraction": "1/3", "bp": 3333} and st["charged_off"] == 300_000
    pen = ok("abs", "--node", net.url, "penetration", pool)
    assert len(pen["assets"]) == 3 and pen["stats"] == st

    out = tmp_path / "report"
    paths = ok("abs", "--node", net.url, "report", pool, "--out", str(out))
    assert json.loads(Path(paths["json"]).read_text())["stats"] == st
    assert (
        Path(paths["outstanding_png"]).read_bytes()[:4] == b"\x89PNG"
        and "defaults.png" in Path(paths["html"]).read_text()
    )


def test_bad_arguments_and_a_missing_matplotlib_are_one_line(net, tmp_path, monkeypatch):
    reg = ["register", "--kind", "loan", "--principal", "1", "--rate-bp", "1", "--start", "2025-01-01"]
    reg += ["--contract", "x", "--obligor", "y"]
    no_key = {"TIERCHAIN_PASSPHRASE": "test pass"}
    failed(
        2,
        "TIERCHAIN_ABS_REFERENCE_KEY",
        *net.args("AutoFin", *reg, "--term", "1", "--servicer", "AutoFin"),
        env=no_key,
    )
    failed(
        2,
        "not a multiple",
        *net.args("AutoFin", *reg, "--term", "12", "--freq", "5", "--servicer", "AutoFin"),
    )
    failed(2, "no pool", "abs", "--node", net.url, "stats", "00" * 16)
    failed(2, "no asset", *net.args("AutoFin", "event", "00" * 16, "default", "--value-date", "2025-01-01"))
    failed(2, "no organization", *net.args("AutoFin", *reg, "--term", "1", "--servicer", "Nobody"))
    failed(2, "an asset or pool id", "abs", "--node", net.url, "stats", "abcd")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    failed(1, "pip install 'tierchain[reports]'", "abs", "--node", net.url, "report", "00" * 16,
           "--out", str(tmp_path / "r"))  # fmt: skip
