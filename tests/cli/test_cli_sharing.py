"""``tierchain sharing``: authorized decryption, shared lists and reconciliation through the
CLI against a real node (``node run`` on loopback, the sharing app in its genesis), and
one-line errors with exit codes (2: a bad argument; 1: a refusal, naming its code).

One node serves the whole module (started once, always stopped); each test makes its own
records, list entries or pair so that the tests do not depend on each other's order, but
for the list key (voted once, by the first test that needs it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from app_node_world import ENV, AppNode, bad_argument, fast_key_files, ok, refused, run
from tierchain.apps.finance import codes as fc
from tierchain.cli.main import main

ORGS = {"Seller": "supplier", "BankA": "bank", "BankB": "bank"}
ID_LISTED = "11010519491231002X"  # valid check character
ID_OTHER = "110101900307001"  # a first-generation (15-digit) number: always well-formed
USCC = "91350100M000100Y43"


class Net(AppNode):
    """A chain running the sharing app; ``args`` puts the connection options after the command
    name; the consortium list key once voted."""

    sh = AppNode.do
    list_key: Path | None = None

    def org(self, name: str) -> str:
        return fc.org_id(name).hex()

    def voted_list_key(self) -> Path:
        """The consortium list key, made and voted (threshold 1) the first time it is needed."""
        if self.list_key is None:
            path = self.tmp / "list.key"
            assert ok("sharing", "list-key", "new", "--out", str(path)) == {"list_key_file": str(path)}
            vote = self.sh("node", "list-key", "vote", "--epoch", "1", "--list-key", str(path))
            assert vote["code"] == "OK" and vote["active"] is True and vote["epoch"] == 1
            self.list_key = path
        return self.list_key


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with fast_key_files(), Net(tmp_path_factory.mktemp("sharing-cli"), "sharing", ORGS) as n:
        n.admit()
        yield n


def in_an_hour() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(timespec="seconds")


def test_put_grant_request_answer_read_round_trip(net):
    doc = b"loan agreement: 1,000,000 CNY at 3.1%\n"
    put = net.sh("Seller", "put", "--kind", "general", str(net.file("agreement.txt", doc)))
    rid = put["id"]
    assert (
        put["code"] == "OK" and put["version"] == 1 and put["on_chain"] is True and put["bytes"] == len(doc)
    )
    shown = net.read_only("show", rid)
    assert (shown["owner_name"], shown["kind"], len(shown["versions"]), shown["grants"]) == (
        "Seller",
        "GENERAL",
        1,
        [],
    )
    grant = net.sh("Seller", "grant", rid, "BankA", "--purpose", "financing", "--until", in_an_hour())
    assert grant["code"] == "OK" and grant["org"] == net.org("BankA")
    assert net.sh("BankA", "request", rid, "1")["code"] == "OK"
    assert net.read_only("show", rid)["requests"][0]["org_name"] == "BankA"
    answered = net.sh("Seller", "answer")
    assert [(x["record"], x["version"], x["org_name"]) for x in answered["released"]] == [(rid, 1, "BankA")]
    assert net.sh("Seller", "answer", rid) == {"released": []}  # nothing open any more
    out = net.tmp / "agreement.read"
    read = net.sh("BankA", "read", rid, "1", "--out", str(out))
    assert out.read_bytes() == doc and read["bytes"] == len(doc)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # a general record's fingerprint on chain is a keyed commitment, not the document's hash
    assert (
        read["fingerprint"] == put["fingerprint"] == net.read_only("show", rid)["versions"][0]["fingerprint"]
    )
    assert read["fingerprint"] != fc.document_fingerprint(doc).hex()

    # A version over 3 KiB: its sealed bytes live in the attachment directory.
    big = os.urandom(5000)
    att = net.tmp / "attachments"
    refused_big = bad_argument(
        "--attachments", *net.args("Seller", "put", "--kind", "general", str(net.file("big.bin", big)))
    )
    assert refused_big.stdout == ""
    put = net.sh(
        "Seller", "put", "--kind", "abs_asset_file", str(net.file("big.bin", big)), "--attachments", str(att)
    )
    big_id = put["id"]
    assert put["on_chain"] is False and put["sealed_bytes"] > 5000 and len(list(att.iterdir())) == 1
    assert (
        net.sh(
            "Seller",
            "grant",
            big_id,
            "BankA",
            "--purpose",
            "audit",
            "--until",
            str(int(time.time() * 1000) + 86_400_000),
        )["code"]
        == "OK"
    )
    assert net.sh("BankA", "request", big_id, "1")["code"] == "OK"
    released = net.sh("Seller", "answer", big_id, "--attachments", str(att))["released"]
    assert [x["org"] for x in released] == [net.org("BankA")]
    bad_argument("give --attachments", *net.args("BankA", "read", big_id, "1", "--out", str(out)))
    net.sh("BankA", "read", big_id, "1", "--out", str(out), "--attachments", str(att))
    assert out.read_bytes() == big

    # A new version: a fresh data key, which the reader needs released again.
    doc2 = doc + b"amended: 3.0%\n"
    v2 = net.sh("Seller", "put-version", rid, str(net.file("agreement2.txt", doc2)))
    assert (v2["id"], v2["version"]) == (rid, 2)
    refused("NotReleased", *net.args("BankA", "read", rid, "2", "--out", str(out)))
    assert net.sh("BankA", "request", rid, "2")["code"] == "OK"
    assert len(net.sh("Seller", "answer", rid)["released"]) == 1
    net.sh("BankA", "read", rid, "2", "--out", str(out))
    assert out.read_bytes() == doc2

    # The access log: every release, with its grant's purpose.
    log = net.read_only("log", rid)["log"]
    assert [(e["version"], e["org_name"], e["basis"], e["purpose"]) for e in log] == [
        (1, "BankA", "GRANT", "FINANCING"),
        (2, "BankA", "GRANT", "FINANCING"),
    ]
    assert all(e["released_by"] == net.pub["Seller"] and e["recipient"] == net.pub["BankA"] for e in log)
    assert [(e["n"], e["grant_tx_id"]) for e in log] == [(0, grant["tx_id"]), (0, grant["tx_id"])]

    # A trade document behind its finance anchor (TYPE alone: the file's fingerprint).
    invoice = net.file("invoice.pdf", b"%PDF invoice 42")
    fp = net.finance("Seller", "anchor", "invoice", str(invoice))["fingerprint"]
    trade = net.sh("Seller", "put", "--kind", "trade_document", "--anchor", "invoice", str(invoice))
    assert trade["fingerprint"] == fp and net.read_only("show", trade["id"])["anchor"] == "INVOICE"
    bad_argument(
        "not the anchored document",
        *net.args(
            "Seller", "put", "--kind", "trade_document", "--anchor", "invoice:" + "00" * 32, str(invoice)
        ),
    )
    refused(
        "NO_SUCH_ANCHOR",
        *net.args("Seller", "put", "--kind", "trade_document", "--anchor", "waybill", str(invoice)),
    )


def test_revoked_or_missing_grants_are_refused(net):
    rid = net.sh("Seller", "put", "--kind", "general", str(net.file("memo.txt", b"memo")))["id"]
    assert (
        net.sh("Seller", "grant", rid, net.org("BankA"), "--purpose", "audit", "--until", in_an_hour())[
            "code"
        ]
        == "OK"
    )
    assert net.sh("Seller", "revoke", rid, "BankA")["code"] == "OK"
    refused("GRANT_REVOKED", *net.args("BankA", "request", rid, "1"))
    refused("GRANT_REVOKED", *net.args("Seller", "revoke", rid, "BankA"))
    refused("NO_GRANT", *net.args("BankB", "request", rid, "1"))
    refused("NO_GRANT", *net.args("Seller", "release", rid, "1", "BankB", "--recipient", net.pub["BankB"]))
    refused(
        "NOT_OWNER", *net.args("BankA", "grant", rid, "BankB", "--purpose", "audit", "--until", in_an_hour())
    )
    refused(
        "BAD_EXPIRY",
        *net.args("Seller", "grant", rid, "BankB", "--purpose", "audit", "--until", "2001-01-01"),
    )
    refused("NotReleased", *net.args("BankA", "read", rid, "1", "--out", str(net.tmp / "memo.read")))
    assert net.read_only("log", rid)["log"] == []
    shown = net.read_only("show", rid)
    assert [(g["org_name"], g["status"]) for g in shown["grants"]] == [("BankA", "REVOKED")]
    # Re-granted: an explicit release to the key it names, logged.
    net.sh("Seller", "grant", rid, "BankB", "--purpose", "credit_review", "--until", in_an_hour())
    released = net.sh("Seller", "release", rid, "1", "BankB", "--recipient", net.pub["BankB"])
    assert released["code"] == "OK" and released["org"] == net.org("BankB")
    refused("ALREADY_RELEASED", *net.args("BankB", "request", rid, "1"))
    assert [e["org_name"] for e in net.read_only("log", rid)["log"]] == ["BankB"]


def test_shared_lists(net):
    key = str(net.voted_list_key())
    assert stat.S_IMODE(Path(key).stat().st_mode) == 0o600 and len(Path(key).read_text().strip()) == 64
    bad_argument("refusing to overwrite", "sharing", "list-key", "new", "--out", key)
    shown = net.read_only("list-key", "show", "--list-key", key)
    assert shown["epoch"] == 1 and shown["holds_current"] is True and shown["ballots"] == []
    who = ("--list", "fraud", "--kind", "national_id", "--identity", ID_LISTED, "--list-key", key)
    added = net.sh("BankA", "list", "add", *who, "--reason", "fraud_confirmed")
    assert added["code"] == "OK" and added["list"] == "FRAUD"
    refused("ENTRY_EXISTS", *net.args("BankA", "list", "add", *who, "--reason", "court_judgment"))
    refused("SENDER_NOT_MEMBER", *net.args("node", "list", "add", *who, "--reason", "fraud_confirmed"))
    # Only the fingerprint is on chain.
    entries = net.client.scan(b"sl/")
    assert [k[4:].hex() for k, _ in entries] == [added["fingerprint"]]
    assert all(ID_LISTED.encode() not in k + v for k, v in entries)

    found = net.read_only("list", "lookup", *who)
    assert found["listed"] is True and found["fingerprint"] == added["fingerprint"]
    assert [(x["org"], x["reason"], x["disputed"]) for x in found["listings"]] == [
        (net.org("BankA"), "FRAUD_CONFIRMED", False)
    ]
    other = ("--list", "fraud", "--kind", "national_id", "--identity", ID_OTHER, "--list-key", key)
    assert net.read_only("list", "lookup", *other)["listed"] is False
    assert net.read_only("list", "lookup", *who[:1], "blacklist", *who[2:])["listed"] is False

    answer = net.sh(
        "BankB",
        "list",
        "query",
        "--list",
        "fraud",
        "--kind",
        "national_id",
        "--identity",
        ID_LISTED,
        "--identity",
        ID_OTHER,
        "--list-key",
        key,
    )
    assert answer["list"] == "FRAUD" and answer["org"] == net.org("BankB")
    assert [(x["identity"], x["listed"]) for x in answer["results"]] == [(ID_LISTED, True), (ID_OTHER, False)]
    refused("NOT_A_MEMBER", *net.args("node", "list", "query", *who))

    disputed = net.sh("BankB", "list", "dispute", *who, "--lister", "BankA", "--reason", "mistaken_identity")
    assert disputed["code"] == "OK"
    listing = net.read_only("list", "lookup", *who)["listings"][0]
    assert listing["disputed"] is True and listing["disputes"][0]["reason"] == "MISTAKEN_IDENTITY"
    assert listing["disputes"][0]["org"] == net.org("BankB") and listing["rekeyed_height"] is None
    refused("NOT_LISTER", *net.args("BankB", "list", "remove", *who, "--reason", "settled"))
    assert net.sh("BankA", "list", "remove", *who, "--reason", "settled")["code"] == "OK"
    assert net.read_only("list", "lookup", *who)["listed"] is False

    stranger = net.tmp / "stranger.key"
    ok("sharing", "list-key", "new", "--out", str(stranger))
    bad_argument(
        "no file holds the key", "sharing", "--node", net.url, "list", "lookup", *who[:-1], str(stranger)
    )
    bad_argument(
        "holds no list key",
        *net.args("BankA", "list", "add", *who[:-1], str(stranger), "--reason", "sanctioned"),
    )

    # A rotation to epoch 2: a listing awaits re-key until its member moves it (both keys).
    overdue = ("--list", "overdue", "--kind", "uscc", "--identity", USCC)
    assert (
        net.sh("BankA", "list", "add", *overdue, "--list-key", key, "--reason", "overdue_90_days")["code"]
        == "OK"
    )
    key2 = str(net.tmp / "list2.key")
    ok("sharing", "list-key", "new", "--out", key2)
    assert net.sh("node", "list-key", "vote", "--list-key", key2)["epoch"] == 2  # the next one by default
    assert net.read_only("list-key", "show", "--list-key", key)["holds_current"] is False
    assert net.read_only("list", "lookup", *overdue, "--list-key", key2)["listed"] is False
    bad_argument("epoch 2", "sharing", "--node", net.url, "list", "lookup", *overdue, "--list-key", key)
    bad_argument("no list key of epoch 1", *net.args("BankA", "list", "rekey", *overdue, "--list-key", key2))
    refused(
        "NOT_LISTER", *net.args("BankB", "list", "rekey", *overdue, "--list-key", key, "--list-key", key2)
    )
    moved = net.sh("BankA", "list", "rekey", *overdue, "--list-key", key, "--list-key", key2)
    found = net.read_only("list", "lookup", *overdue, "--list-key", key2)
    assert (
        found["fingerprint"] == moved["fingerprint"] and found["listings"][0]["reason"] == "OVERDUE_90_DAYS"
    )
    assert found["listings"][0]["rekeyed_height"] > found["listings"][0]["height"]
    # no rotation back to a key already used (the current one, or a recent epoch's)
    refused("LIST_KEY_REUSED", *net.args("node", "list-key", "vote", "--list-key", key))
    refused("LIST_KEY_REUSED", *net.args("node", "list-key", "vote", "--list-key", key2))
    net.list_key = Path(key2)  # the current key, for the tests that follow


def test_list_identity_from_a_file_or_stdin(net):
    """`--identity TEXT` shows the identity to `ps` and keeps it in shell history: an
    identity can come from `--identity-file FILE` (its first line, stripped) or from stdin
    (`--identity -`) instead; exactly one of them. Disputes are withdrawn by the disputer."""
    key = str(net.voted_list_key())
    ident = "CHN:E99887766"
    secret = net.file("identity.txt", f"  {ident.lower()}  \nnot read\n".encode())
    base = ("--list", "blacklist", "--kind", "passport", "--list-key", key)
    from_file = (*base, "--identity-file", str(secret))
    added = net.sh("BankA", "list", "add", *from_file, "--reason", "sanctioned")
    assert added["code"] == "OK"
    found = net.read_only("list", "lookup", *base, "--identity", ident)  # TEXT still works
    assert found["listed"] is True and found["fingerprint"] == added["fingerprint"]
    r = CliRunner(env=ENV).invoke(
        main, ["sharing", "--node", net.url, "list", "lookup", *base, "--identity", "-"], input=ident + "\n"
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["fingerprint"] == added["fingerprint"]

    disputed = net.sh("BankB", "list", "dispute", *from_file, "--lister", "BankA", "--reason", "data_error")
    assert disputed["code"] == "OK" and disputed["fingerprint"] == added["fingerprint"]
    assert [d["org"] for d in net.read_only("list", "lookup", *from_file)["listings"][0]["disputes"]] == [
        net.org("BankB")
    ]
    withdraw = ("list", "withdraw-dispute", *from_file, "--lister", "BankA")
    assert net.sh("BankB", *withdraw)["code"] == "OK"
    assert net.read_only("list", "lookup", *from_file)["listings"][0]["disputed"] is False
    refused("NO_SUCH_DISPUTE", *net.args("BankB", *withdraw))

    # a query's identities: one a line of a file (blank lines skipped), or of stdin
    many = net.file("identities.txt", f"{ident}\n\n CHN:E11111111 \n".encode())
    query = ("list", "query", "--list", "blacklist", "--kind", "passport", "--list-key", key)
    answer = net.sh("BankB", *query, "--identity-file", str(many))
    assert [(x["identity"], x["listed"]) for x in answer["results"]] == [
        (ident, True),
        ("CHN:E11111111", False),
    ]
    r = CliRunner(env=ENV).invoke(main, net.args("BankB", *query, "--identity", "-"), input=many.read_text())
    assert r.exit_code == 0, r.output
    assert [x["listed"] for x in json.loads(r.stdout)["results"]] == [True, False]

    # exactly one source, and one that holds an identity
    lookup = ("sharing", "--node", net.url, "list", "lookup", *base)
    bad_argument("exactly one of --identity and --identity-file", *lookup)
    bad_argument("exactly one", *lookup, "--identity", ident, "--identity-file", str(secret))
    bad_argument(
        "no identity", *lookup, "--identity-file", str(net.file("blank.txt", b"\n" + ident.encode()))
    )
    bad_argument("--identity -: no identity", *lookup, "--identity", "-")  # stdin is empty
    bad_argument("give it alone", *net.args("BankB", *query, "--identity", "-", "--identity", ident))
    bad_argument("exactly one", *net.args("BankB", *query))
    bad_argument("--identity-file", *lookup, "--identity-file", str(net.tmp / "missing.txt"))


def test_reconciliation(net):
    day = dt.datetime.now(dt.UTC).date().isoformat()
    ours = net.file(
        "a.json",
        json.dumps(
            {
                "TX-1": {"amount": 100, "ccy": "CNY"},
                "TX-2": {"amount": 250, "ccy": "CNY"},
                "TX-3": {"amount": 9, "ccy": "CNY"},
            }
        ).encode(),
    )
    theirs = net.file("b.csv", b"ref,amount,ccy\nTX-1,100,CNY\nTX-2,205,CNY\nTX-4,7,USD\n")
    opened = net.sh("BankA", "recon", "open", "BankB", "--counterparty-key", net.pub["BankB"])
    assert opened["code"] == "OK" and opened["generation"] == 0
    refused(
        "PAIR_EXISTS", *net.args("BankB", "recon", "open", "BankA", "--counterparty-key", net.pub["BankA"])
    )
    # Nothing is posted before the counterparty accepts the pair key; the opener cannot.
    refused(
        "PAIR_NOT_ACCEPTED",
        *net.args("BankA", "recon", "post", str(ours), "--counterparty", "BankB", "--day", day),
    )
    refused("BAD_GRANTEE", *net.args("BankA", "recon", "accept", "--counterparty", "BankB"))
    accepted = net.sh("BankB", "recon", "accept", "--counterparty", "BankA")
    assert accepted["code"] == "OK" and accepted["pair"] == opened["pair"] and accepted["generation"] == 0
    refused("ALREADY_ACCEPTED", *net.args("BankB", "recon", "accept", "--counterparty", "BankA"))
    posted = net.sh("BankA", "recon", "post", str(ours), "--counterparty", "BankB", "--day", day)
    assert posted["pair"] == opened["pair"] and posted["records"] == 3
    assert (
        net.sh("BankB", "recon", "post", str(theirs), "--counterparty", "BankA", "--day", day)["records"] == 3
    )
    refused(
        "ALREADY_POSTED",
        *net.args("BankB", "recon", "post", str(theirs), "--counterparty", "BankA", "--day", day),
    )

    report = net.sh("BankA", "recon", "report", "--counterparty", "BankB", "--day", day, "--books", str(ours))
    assert report["counts"] == {"matched": 1, "mismatched": 1, "missing_on_us": 1, "missing_on_them": 1}
    assert report["clean"] is False
    assert [(m["ref"], m["fields"]) for m in report["mismatched"]] == [("TX-2", ["amount"])]
    assert [i["ref"] for i in report["matched"]] == ["TX-1"]
    assert [i["ref"] for i in report["missing_on_them"]] == ["TX-3"]
    assert [i["ref"] for i in report["missing_on_us"]] == [None]  # B's record: A cannot name it
    seen_by_b = net.sh(
        "BankB", "recon", "report", "--counterparty", "BankA", "--day", day, "--books", str(theirs)
    )
    assert [(m["ref"], m["fields"]) for m in seen_by_b["mismatched"]] == [("TX-2", ["amount"])]
    assert [i["ref"] for i in seen_by_b["missing_on_us"]] == [None]
    # Without the books, the agreed schema still names the field.
    schema = net.sh(
        "BankA", "recon", "report", "--counterparty", "BankB", "--day", day, "--fields", "ccy,amount"
    )
    assert [(m["ref"], m["fields"]) for m in schema["mismatched"]] == [(None, ["amount"])]

    r = run(
        *net.args("BankA", "recon", "report", "--counterparty", "BankB", "--day", day, "--fail-on-mismatch")
    )
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "1 mismatched" in r.stderr, r.output
    assert json.loads(r.stdout)["counts"]["mismatched"] == 1

    fix = net.file("fix.csv", b"ref,amount,ccy\nTX-2,250,CNY\n")
    net.sh("BankB", "recon", "post", str(fix), "--counterparty", "BankA", "--day", day, "--amend")
    fixed = net.sh("BankA", "recon", "report", "--counterparty", "BankB", "--day", day, "--books", str(ours))
    assert fixed["counts"]["matched"] == 2 and fixed["mismatched"] == [] and fixed["generation"] == 0

    # Re-keying: B draws generation 1, A accepts it; generation 0's report stays readable.
    rekeyed = net.sh(
        "BankB", "recon", "rekey", "--counterparty", "BankA", "--counterparty-key", net.pub["BankA"]
    )
    assert rekeyed["code"] == "OK" and rekeyed["generation"] == 1
    assert net.sh("BankA", "recon", "accept", "--counterparty", "BankB")["generation"] == 1
    fresh = net.sh("BankA", "recon", "report", "--counterparty", "BankB", "--day", day)
    assert fresh["generation"] == 1 and fresh["counts"]["matched"] == 0
    old = net.sh(
        "BankA", "recon", "report", "--counterparty", "BankB", "--day", day, "--books", str(ours),
        "--generation", "0",
    )  # fmt: skip
    assert old["generation"] == 0 and old["counts"] == fixed["counts"]
    bad_argument(
        "--generation",
        *net.args("BankA", "recon", "report", "--counterparty", "BankB", "--day", day, "--generation", "2"),
    )

    bad_argument(
        "no reconciliation pair",
        *net.args("Seller", "recon", "post", str(ours), "--counterparty", "BankA", "--day", day),
    )
    floats = net.file("floats.json", b'{"TX-9": {"amount": 1.5}}')
    bad_argument(
        "format amounts yourself",
        *net.args("BankA", "recon", "post", str(floats), "--counterparty", "BankB", "--day", day),
    )


def test_bad_arguments_are_one_line_and_exit_2(net):
    rid = "ab" * 16
    unreachable = ["--node", "http://127.0.0.1:9", "--key", net.key("BankA")]
    for what, args in (
        ("--kind", ["put", "--kind", "memo", str(net.dir / "chain.toml")]),
        ("FILE", ["put", "--kind", "general", str(net.tmp / "missing.txt")]),
        ("needs --anchor", ["put", "--kind", "trade_document", str(net.dir / "chain.toml")]),
        ("--anchor", ["put", "--kind", "trade_document", "--anchor", "memo", str(net.dir / "chain.toml")]),
        ("RECORD", ["grant", "zz", "BankA", "--purpose", "audit", "--until", "1"]),
        ("--purpose", ["grant", rid, "BankA", "--purpose", "fun", "--until", "1"]),
        ("--until", ["grant", rid, "BankA", "--purpose", "audit", "--until", "next week"]),
        ("ORG", ["revoke", rid, "x" * 65]),
        ("VERSION", ["request", rid, "0"]),
        ("--recipient", ["release", rid, "1", "BankB", "--recipient", "00" * 31]),
        ("--out", ["read", rid, "1"]),
        ("--day", ["recon", "report", "--counterparty", "BankB", "--day", "2026-13-01"]),
        (
            "a .json or a .csv",
            ["recon", "post", str(net.dir / "chain.toml"), "--counterparty", "BankB", "--day", "2026-01-01"],
        ),
        (
            "--kind",
            [
                "list",
                "add",
                "--list",
                "fraud",
                "--kind",
                "ssn",
                "--identity",
                "1",
                "--reason",
                "sanctioned",
                "--list-key",
                str(net.dir / "chain.toml"),
            ],
        ),
        (
            "check character",
            [
                "list",
                "add",
                "--list",
                "fraud",
                "--kind",
                "national_id",
                "--identity",
                "110105194912310021",
                "--reason",
                "sanctioned",
                "--list-key",
                str(net.dir / "chain.toml"),
            ],
        ),
        ("not a list key", ["list-key", "vote", "--list-key", str(net.dir / "chain.toml")]),
    ):
        bad_argument(what, "sharing", *args, *unreachable)
    bad_argument("--node", "sharing", "--node", "zz", "show", rid)
    bad_argument("give --key", "sharing", "--node", "http://127.0.0.1:9", "request", rid, "1")
    # found once the node is asked
    bad_argument("no record", *net.args("BankA", "request", rid, "1"))
    mine = net.sh("Seller", "put", "--kind", "general", str(net.file("note.txt", b"note")))["id"]
    bad_argument(
        "no organization",
        *net.args("Seller", "grant", mine, "Nobody Ltd", "--purpose", "audit", "--until", "1"),
    )
    bad_argument("has no version 2", *net.args("Seller", "read", mine, "2", "--out", str(net.tmp / "x")))
    bad_argument("runs chain 5, not 7", "sharing", "--chain-id", "7", "--node", net.url, "show", rid)
    # options before the command name, as for `tierchain finance`, work too
    r = run("sharing", "--node", net.url, "--key", net.key("BankA"), "request", rid, "1")
    assert r.exit_code == 2 and "no record" in r.stderr
    # a runtime failure is exit 1, one line
    r = run("sharing", "--node", "http://127.0.0.1:9", "show", rid)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "cannot reach node" in r.stderr, r.output
