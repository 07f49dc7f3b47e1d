"""``tierchain abs``: an auto-loan pool from registration to its servicing report through the
CLI against a real node (``node run`` on loopback, the abs app in its genesis), and one-line
errors with exit codes (2: a bad argument; 1: a refusal naming its code, or no matplotlib).

One node serves the module (started once, always stopped).
"""

from __future__ import annotations

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

REF_KEY = "11" * 32
ENV = {"TIERCHAIN_PASSPHRASE": "test pass", "TIERCHAIN_ABS_REFERENCE_KEY": REF_KEY}
ORGS = {"AutoFin": ("originator", "servicer"), "TrustCo": ("trustee",)}


def run(*args: str, env: dict | None = None) -> Result:
    return CliRunner(env=env or ENV).invoke(main, list(args), input="")


def ok(*args: str) -> dict:
    r = run(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def failed(exit_code: int, what: str, *args: str, env: dict | None = None) -> Result:
    r = run(*args, env=env)
    assert r.exit_code == exit_code, r.output
    assert r.stderr.count("\n") == 1 and what in r.stderr and "Traceback" not in r.output, r.output
    return r


class Net:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.dir = tmp, tmp / "node"
        r = run("init", str(self.dir), "--chain-id", "6", "--block-interval-ms", "5", "--app", "abs")
        assert r.exit_code == 0, r.output
        self.pub = {}
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
                [sys.executable, "-m", "tierchain.cli.main", "node", "run", str(self.dir), "--listen",
                 f"127.0.0.1:{port}"],
                stderr=err, env=env,
            )  # fmt: skip
        try:
            wait_serving(self.url, self.proc, timeout_s=30)
        except BaseException:
            stop(self.proc)
            raise

    def key(self, who: str) -> str:
        return str(self.dir / "node.key" if who == "node" else self.tmp / f"{who}.key")

    def args(self, who: str, *args: str) -> list[str]:
        return ["abs", *args, "--node", self.url, "--key", self.key(who)]

    def do(self, who: str, *args: str) -> dict:
        return ok(*self.args(who, *args))


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("abs-cli")
    with pytest.MonkeyPatch.context() as mp:  # conftest's fast_kdf, for the whole module
        mp.setattr(nacl.pwhash.argon2id, "OPSLIMIT_MODERATE", nacl.pwhash.argon2id.OPSLIMIT_MIN)
        mp.setattr(nacl.pwhash.argon2id, "MEMLIMIT_MODERATE", nacl.pwhash.argon2id.MEMLIMIT_MIN)
        mp.setattr(
            crypto.save_key_file,
            "__kwdefaults__",
            {"opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN, "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
             "iterations": 1000},
        )  # fmt: skip
        n = Net(tmp)
        try:
            for name, roles in ORGS.items():
                role_args = [x for r in roles for x in ("--role", r)]
                assert (
                    n.do("node", "propose-admit", name, *role_args, "--org-key", n.pub[name])["code"] == "OK"
                )
            yield n
        finally:
            code = stop(n.proc)
            if code != 0:
                print(n.stderr.read_text(errors="replace")[-8000:])
    assert code == 0


def _register(net: Net, contract: str, principal: int) -> str:
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
