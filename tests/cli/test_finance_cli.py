"""``tierchain finance``: a voucher's life through the CLI against a node's HTTP endpoint,
the read-only commands beside the running node, and one-line errors with exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tierchain import crypto
from tierchain.api.rpc import NodeServer
from tierchain.apps.finance import codes as c
from tierchain.cli.main import main
from tierchain.config import ChainConfig
from tierchain.engine.chain import Chain

SECRET_HEX = "11" * 32
ENV = {"TIERCHAIN_PASSPHRASE": "test pass", "TIERCHAIN_CONSORTIUM_SECRET": SECRET_HEX}


pytestmark = pytest.mark.usefixtures("fast_kdf")


def run(*args: str, env: dict | None = None) -> Result:
    return CliRunner(env=ENV if env is None else env).invoke(main, list(args), input="")


def ok(*args: str) -> dict:
    r = run(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def refused(code: str, *args: str) -> Result:
    """A runtime refusal: one line on stderr naming the code, exit 1, nothing on stdout."""
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert r.stderr.count("\n") == 1 and code in r.stderr and "Traceback" not in r.output, r.output
    assert r.stdout == "", r.stdout  # in particular, no ids of children that were never created
    return r


def bad_argument(what: str, *args: str, env: dict | None = None) -> Result:
    """A bad argument: one line on stderr saying ``what``, exit 2."""
    r = run(*args, env=env)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and what in r.stderr and "Traceback" not in r.output, r.output
    return r


class Node:
    """A chain directory and its node endpoint on 127.0.0.1; ``fin(key, ...)`` runs a write command."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.dir = tmp, tmp / "node"
        assert run("init", str(self.dir), "--chain-id", "5", "--block-interval-ms", "5").exit_code == 0
        self.pub = {}
        for name in ("core", "t1", "t2", "bank"):
            r = run("keygen", str(tmp / f"{name}.key"))
            self.pub[name] = r.stdout.strip().splitlines()[-1]
        config = ChainConfig.load(self.dir / "chain.toml")
        self.chain = Chain(self.dir, config, crypto.load_key_file(self.dir / "node.key", "test pass"))
        self.server = NodeServer(self.chain, "127.0.0.1", 0)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.address[1]}"

    def args(self, key: str, *args: str) -> list[str]:
        path = self.dir / "node.key" if key == "node" else self.tmp / f"{key}.key"
        return ["finance", "--node", self.url, "--chain-id", "5", "--key", str(path), *args]

    def fin(self, key: str, *args: str) -> dict:
        return ok(*self.args(key, *args))

    def close(self) -> None:
        self.server.stop()
        self.chain.close()


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    try:
        for key, org, role in (
            ("core", "CoreCo", "core_enterprise"),
            ("t1", "Tier1", "supplier"),
            ("t2", "Tier2", "supplier"),
            ("bank", "BankA", "bank"),
        ):
            assert (
                n.fin("node", "propose-admit", org, "--role", role, "--org-key", n.pub[key])["code"] == "OK"
            )
        yield n
    finally:
        n.close()


def issue(node: Node, face: int, maturity_ms: int, tag: str) -> tuple[str, str]:
    invoice = node.tmp / f"invoice-{tag}.pdf"
    invoice.write_bytes(b"%PDF invoice " + tag.encode())
    fp = node.fin("t1", "anchor", "invoice", str(invoice))["fingerprint"]
    vid = node.fin(
        "core", "confirm", "--to", "Tier1", "--face", str(face), "--maturity-ms", str(maturity_ms),
        "--doc", f"invoice:{fp}",
    )["id"]  # fmt: skip
    return vid, fp


def test_finance_cli_voucher_lifecycle(node):
    maturity = int(time.time() * 1000) + 3_600_000
    vid, fp = issue(node, 100_000, maturity, "42")
    kids = node.fin("t1", "split", vid, "60000", "40000")["ids"]
    assert node.fin("t1", "transfer", kids[1], "--to", "Tier2")["code"] == "OK"
    assert node.fin("t2", "accept", kids[1])["code"] == "OK"
    # A refused split prints the refusal and no child ids, and exits 1.
    refused("NOT_HOLDER", *node.args("t2", "split", kids[0], "1", "59999"))
    assert node.fin("t2", "discount", kids[1], "--bank", "BankA", "--price", "39000")["code"] == "OK"
    assert node.fin("bank", "accept", kids[1])["code"] == "OK"
    refused("PIECE_LOCKED", *node.args("bank", "split", kids[1], "20000", "20000"))
    due = str(maturity - 1)
    assert (
        node.fin("t1", "pledge", kids[0], "--bank", "BankA", "--loan", "30000", "--due-ms", due)["code"]
        == "OK"
    )
    assert node.fin("bank", "accept", kids[0])["code"] == "OK"
    assert ok("finance", "show", "piece", str(node.dir), kids[0])["state"] == "PLEDGED"
    assert node.fin("bank", "release", kids[0])["code"] == "OK"
    events = [
        (e["event"], e.get("price"))
        for e in ok("finance", "lineage", str(node.dir), kids[0])["piece"]["history"]
    ]
    assert events[-3:] == [("OFFERED", 30_000), ("PLEDGED", 30_000), ("RELEASED", 30_000)]

    # The invoice as an asset: its fingerprint, blinded as the voucher's is, so a direct
    # financing counts against the same limit (40k of 100k already financed).
    refused(
        "EXCEEDS_ASSET_VALUE",
        *node.args("bank", "finance", "invoice", fp, "--amount", "60001", "--ref", "f1"),
    )
    assert node.fin("bank", "finance", "invoice", fp, "--amount", "60000", "--ref", "f1")["code"] == "OK"
    assert ok("finance", "fits", str(node.dir), "invoice", fp, "--amount", "1") == {"fits": False}
    assert node.fin("bank", "release-financing", "invoice", fp, "--ref", "f1")["code"] == "OK"
    # read-only commands beside the running node: no writer lock, committed data
    assert ok("finance", "fits", str(node.dir), "invoice", fp, "--amount", "60000") == {"fits": True}
    assert ok("finance", "fits", str(node.dir), "invoice", fp, "--amount", "60001") == {"fits": False}
    voucher = ok("finance", "show", "voucher", str(node.dir), vid)
    assert voucher["obligor"] == "CoreCo" and voucher["face"] == 100_000 and voucher["status"] == "ACTIVE"
    assert voucher["documents"] == [{"type": "INVOICE", "fingerprint": fp}]
    piece = ok("finance", "show", "piece", str(node.dir), kids[1])
    assert (piece["holder"], piece["state"], piece["amount"]) == ("BankA", "FINANCED", 40_000)
    org = ok("finance", "show", "org", str(node.dir), "BankA")
    assert org["roles"] == ["bank"] and org["id"] == c.org_id("BankA").hex()
    lineage = ok("finance", "lineage", str(node.dir), kids[1])
    assert lineage["voucher"]["id"] == vid and lineage["piece"]["holder"] == "BankA"
    assert lineage["voucher"]["documents"][0]["fingerprint"] == fp
    history = [(e["event"], e["amount"], e.get("price")) for e in lineage["piece"]["history"]]
    assert history == [
        ("CREATED_BY_SPLIT", 40_000, None),
        ("OFFERED", 40_000, None),
        ("ACCEPTED", 40_000, None),
        ("OFFERED", 40_000, 39_000),
        ("DISCOUNTED", 40_000, 39_000),
    ]
    root = ok("finance", "lineage", str(node.dir), vid)["piece"]["history"]
    assert root[1]["event"] == "SPLIT" and root[1]["amount"] == 100_000 and root[1]["ways"] == 2
    # unknown ids are bad arguments, read-only or not
    unknown = "ab" * 16
    bad_argument("no piece", "finance", "lineage", str(node.dir), unknown)
    bad_argument("no voucher", "finance", "show", "voucher", str(node.dir), unknown)
    bad_argument("no organization", "finance", "show", "org", str(node.dir), "Nobody Ltd")
    bad_argument("no piece", *node.args("t1", "split", unknown, "50", "50"))
    bad_argument("no organization", *node.args("t1", "transfer", kids[0], "--to", "Tier9"))


def test_finance_cli_params_overdue_and_default(node):
    assert node.fin("node", "propose-params", "--default-grace-ms", "0")["code"] == "OK"
    shown = ok("finance", "show", "org", str(node.dir), "CoreCo")
    assert shown["name"] == "CoreCo"
    maturity = int(time.time() * 1000) + 2_000
    vid, _ = issue(node, 50_000, maturity, "7")
    refused("NOT_MATURED", *node.args("t2", "mark-overdue", vid))
    refused("BAD_VOUCHER_STATE", *node.args("t2", "mark-default", vid))
    time.sleep(max(0.0, maturity / 1000 - time.time()) + 0.05)
    assert node.fin("t2", "mark-overdue", vid)["code"] == "OK"
    assert node.fin("t2", "mark-default", vid)["code"] == "OK"  # grace 0 (the proposal above)
    assert ok("finance", "show", "voucher", str(node.dir), vid)["status"] == "DEFAULTED"


def test_finance_cli_bad_arguments_are_one_line_and_exit_2(tmp_path):
    """Each is refused while parsing or before anything is signed: no node is needed."""
    key = tmp_path / "k.key"
    assert run("keygen", str(key)).exit_code == 0
    base = ["finance", "--node", "http://127.0.0.1:9", "--key", str(key)]
    piece = "ab" * 16
    for what, args in (
        ("PIECE", ["split", "zz", "1", "2"]),
        ("PIECE", ["accept", "abcd"]),  # wrong length
        ("AMOUNTS", ["split", piece, "--", "-5", "10"]),  # negative amount
        ("-5", ["split", piece, "-5", "10"]),  # without "--", click reads it as an option
        ("AMOUNTS", ["split", piece, "0", "10"]),
        ("--price", ["discount", piece, "--bank", "BankA", "--price", "0"]),
        ("--loan", ["pledge", piece, "--bank", "BankA", "--loan", "x", "--due-ms", "1"]),
        (
            "--face",
            [
                "confirm",
                "--to",
                "Tier1",
                "--face",
                "-1",
                "--maturity-ms",
                "1",
                "--doc",
                "invoice:" + "00" * 32,
            ],
        ),
        ("--doc", ["confirm", "--to", "Tier1", "--face", "1", "--maturity-ms", "1", "--doc", "invoice:zz"]),
        (
            "--doc",
            ["confirm", "--to", "Tier1", "--face", "1", "--maturity-ms", "1", "--doc", "memo:" + "00" * 32],
        ),
        ("needs an anchored invoice", ["confirm", "--to", "Tier1", "--face", "1", "--maturity-ms", "1"]),
        ("--org-key", ["propose-admit", "X", "--role", "bank", "--org-key", "00" * 31]),
        ("--role", ["propose-admit", "X", "--role", "banker", "--org-key", "00" * 32]),
        ("--threshold", ["propose-params", "--threshold", "0"]),
        ("name at least one parameter", ["propose-params"]),
        ("PUBLIC_KEY", ["key", "add", "xyz"]),
        ("PROPOSAL", ["vote", "00"]),
        ("VOUCHER", ["settle", "zz"]),
        ("VOUCHER", ["mark-overdue", "00" * 15]),
        ("2..8 amounts", ["split", piece, "100"]),
        ("ORG", ["propose-roles", "x" * 65, "--role", "bank"]),
        ("fingerprint", ["finance", "invoice", "not-hex", "--amount", "1", "--ref", "r"]),
        ("--amount", ["finance", "invoice", "00" * 32, "--amount", "-3", "--ref", "r"]),
        ("ref", ["finance", "po", "PO-1", "--amount", "3", "--ref", "r" * 33]),
    ):
        bad_argument(what, *base, *args)
    bad_argument("--chain-id", "finance", "--chain-id", "-1", "vote", "00" * 16)
    bad_argument("--node", "finance", "--node", "zz", "--key", str(key), "vote", "00" * 16)
    bad_argument("PIECE", "finance", "lineage", str(tmp_path), "zz")
    bad_argument("DIRECTORY", "finance", "show", "piece", str(tmp_path / "missing"), piece)
    bad_argument("give --key", "finance", "--node", "http://127.0.0.1:9", "accept", piece)


def test_blinding_commands_need_the_consortium_secret(tmp_path):
    key = tmp_path / "k.key"
    assert run("keygen", str(key)).exit_code == 0
    no_secret = {"TIERCHAIN_PASSPHRASE": "test pass"}
    base = ["finance", "--node", "http://127.0.0.1:9", "--key", str(key)]
    fp = "00" * 32
    for args in (
        ["confirm", "--to", "Tier1", "--face", "1", "--maturity-ms", "1", "--doc", f"invoice:{fp}"],
        ["register-asset", "invoice", fp, "--value", "10"],
        ["finance", "invoice", fp, "--amount", "1", "--ref", "r"],
        ["release-financing", "invoice", fp, "--ref", "r"],
    ):
        r = bad_argument("set TIERCHAIN_CONSORTIUM_SECRET", *base, *args, env=no_secret)
        assert "Traceback" not in r.output
    bad_argument(
        "set TIERCHAIN_CONSORTIUM_SECRET",
        "finance",
        "fits",
        str(tmp_path),
        "po",
        "PO-1",
        "--amount",
        "1",
        env=no_secret,
    )
    short = dict(no_secret, TIERCHAIN_CONSORTIUM_SECRET="abcd")
    bad_argument("too short", *base, "register-asset", "po", "PO-1", "--value", "1", env=short)
    garbled = dict(no_secret, TIERCHAIN_CONSORTIUM_SECRET="not hex")
    bad_argument("not hex", *base, "register-asset", "po", "PO-1", "--value", "1", env=garbled)


def test_finance_cli_confidential_voucher(node):
    """A confidential voucher through the CLI: the regulator key by vote, issue, split,
    transfer, discount; each holder reads its own amount; lineage hides the amounts unless
    the regulator's seed reads them."""
    env = {**ENV, "REG_SEED": "22" * 32}
    reg = CliRunner(env=env).invoke(main, ["finance", "regulator-key", "--seed-env", "REG_SEED"])
    assert reg.exit_code == 0, reg.output
    assert node.fin("node", "propose-regulator-key", json.loads(reg.stdout)["public_key"])["code"] == "OK"
    invoice = node.tmp / "invoice-c.pdf"
    invoice.write_bytes(b"%PDF confidential invoice")
    fp = node.fin("t1", "anchor", "invoice", str(invoice))["fingerprint"]
    maturity = str(int(time.time() * 1000) + 3_600_000)
    vid = node.fin(
        "core", "cconfirm", "--to", "Tier1", "--face", "100000", "--maturity-ms", maturity,
        "--doc", f"invoice:{fp}", "--recipient", node.pub["t1"],
    )["id"]  # fmt: skip
    assert node.fin("t1", "opening", vid) == {"piece": vid, "amount": 100_000}
    refused("no opening", *node.args("t2", "opening", vid))
    kids = node.fin("t1", "csplit", vid, "60000", "40000")["ids"]
    assert node.fin("t1", "coffer", kids[1], "--to", "Tier2", "--recipient", node.pub["t2"])["code"] == "OK"
    assert node.fin("t2", "accept", kids[1])["code"] == "OK"
    assert node.fin("t2", "opening", kids[1])["amount"] == 40_000
    offer = ("coffer", kids[1], "--to", "BankA", "--recipient", node.pub["bank"], "--discount-price", "39000")
    assert node.fin("t2", *offer)["code"] == "OK"
    assert node.fin("bank", "accept", kids[1])["code"] == "OK"
    assert node.fin("bank", "opening", kids[1])["amount"] == 40_000
    refused("above the piece's amount", *node.args("t1", "coffer", kids[0], "--to", "BankA",
            "--recipient", node.pub["bank"], "--discount-price", "60001"))  # fmt: skip
    hidden = ok("finance", "lineage", str(node.dir), vid)
    assert hidden["voucher"]["face"] is None and {d["amount"] for d in hidden["descendants"]} == {None}
    r = CliRunner(env=env).invoke(
        main, ["finance", "lineage", str(node.dir), vid, "--regulator-seed-env", "REG_SEED"]
    )
    seen = json.loads(r.stdout)
    assert seen["voucher"]["face"] == 100_000 and [d["amount"] for d in seen["descendants"]] == [
        60_000,
        40_000,
    ]
    bad_argument("not both", *node.args("t1", "coffer", kids[0], "--to", "BankA", "--recipient",
                 node.pub["bank"], "--discount-price", "1", "--loan", "2", "--due-ms", maturity))  # fmt: skip
    bad_argument("2..4", *node.args("t1", "csplit", kids[0], "1", "1", "1", "1", "59996"))
