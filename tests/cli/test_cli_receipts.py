"""``tierchain receipts``: warehouse receipts through the CLI against a real node (``node run`` on
loopback, the receipts app in its genesis), and one-line errors with exit codes (2: a bad
argument; 1: a refusal, naming its code). One node serves the module (started once, always
stopped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner, Result

from conftest import free_port, stop, wait_serving
from tierchain import crypto
from tierchain.cli.main import main

ENV = {"TIERCHAIN_PASSPHRASE": "test pass"}
ORGS = {"Depot": "warehouse", "Tier1": "supplier", "BankA": "bank", "BankB": "bank"}


def run(*args: str) -> Result:
    return CliRunner(env=ENV).invoke(main, list(args), input="")


def ok(*args: str) -> dict | list:
    r = run(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def refused(code: str, *args: str) -> Result:
    """A runtime refusal: one line on stderr naming ``code``, exit 1, nothing on stdout."""
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert r.stderr.count("\n") == 1 and code in r.stderr and "Traceback" not in r.output, r.output
    assert r.stdout == "", r.stdout
    return r


def bad_argument(what: str, *args: str) -> Result:
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and what in r.stderr and "Traceback" not in r.output, r.output
    return r


class Net:
    """A chain running the receipts app, served by `tierchain node run` on 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.dir = tmp, tmp / "node"
        r = run("init", str(self.dir), "--chain-id", "5", "--block-interval-ms", "5", "--app", "receipts")
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
        return ["receipts", *args, "--node", self.url, "--key", self.key(who)]

    def rc(self, who: str, *args: str) -> dict:
        return ok(*self.args(who, *args))

    def read_only(self, *args: str) -> dict | list:
        return ok("receipts", "--node", self.url, *args)

    def close(self) -> int:
        return stop(self.proc)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("receipts-cli")
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
                r = ok("finance", "--node", n.url, "--chain-id", "5", "--key", n.key("node"), *admit)
                assert r["code"] == "OK"
            yield n
        finally:
            code = n.close()
            if code != 0:
                print(n.stderr.read_text(errors="replace")[-8000:])
    assert code == 0


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
