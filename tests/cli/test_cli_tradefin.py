"""``tierchain tradefin``: letters of credit, guarantees and factoring through the CLI against a
real node (``node run`` on loopback, the tradefin app in its genesis), with one-line errors
and exit codes (2: a bad argument; 1: a refusal, naming its code).

One node serves the module (started once, always stopped); each test makes its own
instruments so that the tests do not depend on each other's order.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner, Result

from conftest import free_port, stop, wait_serving
from tierchain import crypto
from tierchain.cli.main import main

ENV = {"TIERCHAIN_PASSPHRASE": "test pass"}
ORGS = {"CoreCo": "core_enterprise", "Tier1": "supplier", "BankA": "bank", "BankB": "bank"}


def run(*args: str) -> Result:
    return CliRunner(env=ENV).invoke(main, list(args), input="")


def ok(*args: str) -> dict:
    r = run(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def refused(code: str, *args: str) -> Result:
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert r.stderr.count("\n") == 1 and code in r.stderr and "Traceback" not in r.output, r.output
    assert r.stdout == ""
    return r


def bad_argument(what: str, *args: str) -> Result:
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and what in r.stderr and "Traceback" not in r.output, r.output
    return r


def days(n: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=n)).isoformat(timespec="seconds")


class Net:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.dir = tmp, tmp / "node"
        r = run("init", str(self.dir), "--chain-id", "5", "--block-interval-ms", "5", "--app", "tradefin")
        assert r.exit_code == 0, r.output
        self.pub: dict[str, str] = {}
        for name in ORGS:
            r = run("keygen", str(tmp / f"{name}.key"))
            assert r.exit_code == 0, r.output
            self.pub[name] = r.stdout.strip().splitlines()[-1]
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.stderr = tmp / "node.stderr"
        env = dict(os.environ, **ENV, PYTHONPATH=str(Path(__file__).parents[2] / "core"))
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tierchain.cli.main",
                    "node",
                    "run",
                    str(self.dir),
                    "--listen",
                    f"127.0.0.1:{port}",
                ],
                stderr=err,
                env=env,
            )
        try:
            wait_serving(self.url, self.proc, timeout_s=30)
        except BaseException:
            stop(self.proc)
            raise

    def key(self, who: str) -> str:
        return str(self.dir / "node.key" if who == "node" else self.tmp / f"{who}.key")

    def args(self, who: str, *args: str) -> list[str]:
        return ["tradefin", "--node", self.url, "--key", self.key(who), *args]

    def tf(self, who: str, *args: str) -> dict:
        return ok(*self.args(who, *args))

    def show(self, *args: str) -> dict:
        return ok("tradefin", "--node", self.url, *args)

    def file(self, name: str, data: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(data)
        return str(path)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tradefin-cli")
    with pytest.MonkeyPatch.context() as mp:  # conftest's fast_kdf, for the whole module
        mp.setattr(nacl.pwhash.argon2id, "OPSLIMIT_MODERATE", nacl.pwhash.argon2id.OPSLIMIT_MIN)
        mp.setattr(nacl.pwhash.argon2id, "MEMLIMIT_MODERATE", nacl.pwhash.argon2id.MEMLIMIT_MIN)
        mp.setattr(
            crypto.save_key_file,
            "__kwdefaults__",
            {
                "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
                "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
                "iterations": 1000,
            },
        )
        n = Net(tmp)
        try:
            for name, role in ORGS.items():
                admit = ["propose-admit", name, "--role", role, "--org-key", n.pub[name]]
                assert (
                    ok("finance", "--node", n.url, "--chain-id", "5", "--key", n.key("node"), *admit)["code"]
                    == "OK"
                )
            yield n
        finally:
            code = stop(n.proc)
            if code != 0:
                print(n.stderr.read_text(errors="replace")[-8000:])
    assert code == 0


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
    fp = ok(
        "finance",
        "--node",
        net.url,
        "--chain-id",
        "5",
        "--key",
        net.key("Tier1"),
        "anchor",
        "invoice",
        invoice,
    )["fingerprint"]
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
