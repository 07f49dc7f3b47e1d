"""``tierchain finance``: a voucher's life through the CLI against a node's HTTP endpoint."""

from __future__ import annotations

import json
import time

import nacl.pwhash
import pytest
from click.testing import CliRunner

from tierchain import crypto
from tierchain.chain import Chain
from tierchain.cli import main
from tierchain.config import ChainConfig
from tierchain.rpc import NodeServer

ENV = {"TIERCHAIN_PASSPHRASE": "test pass", "TIERCHAIN_CONSORTIUM_SECRET": "11" * 32}


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch):
    monkeypatch.setattr(
        crypto.save_key_file,
        "__kwdefaults__",
        {"opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN, "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN},
    )


def test_finance_cli_voucher_lifecycle(tmp_path):
    runner = CliRunner(env=ENV)

    def ok(*args: str) -> dict:
        r = runner.invoke(main, list(args))
        assert r.exit_code == 0, r.output
        return json.loads(r.output)

    node_dir = tmp_path / "node"
    assert (
        runner.invoke(main, ["init", str(node_dir), "--chain-id", "5", "--block-interval-ms", "5"]).exit_code
        == 0
    )
    keys = {}
    for name in ("core", "t1", "t2"):
        r = runner.invoke(main, ["keygen", str(tmp_path / f"{name}.key")])
        keys[name] = r.output.strip().splitlines()[-1]
    config = ChainConfig.load(node_dir / "chain.toml")
    chain = Chain(node_dir, config, crypto.load_key_file(node_dir / "node.key", "test pass"))
    server = NodeServer(chain, "127.0.0.1", 0)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.address[1]}"

        def fin(key: str, *args: str) -> dict:
            return ok("finance", "--node", url, "--chain-id", "5", "--key", key, *args)

        node_key = str(node_dir / "node.key")
        for name, org, role in (
            ("core", "CoreCo", "core_enterprise"),
            ("t1", "Tier1", "supplier"),
            ("t2", "Tier2", "supplier"),
        ):
            assert (
                fin(node_key, "propose-admit", org, "--role", role, "--org-key", keys[name])["code"] == "OK"
            )
        invoice = tmp_path / "invoice.pdf"
        invoice.write_bytes(b"%PDF invoice 42")
        fp = fin(str(tmp_path / "t1.key"), "anchor", "invoice", str(invoice))["fingerprint"]
        maturity = int(time.time() * 1000) + 3_600_000
        vid = fin(
            str(tmp_path / "core.key"), "confirm", "--to", "Tier1", "--face", "100000",
            "--maturity-ms", str(maturity), "--doc", f"invoice:{fp}",
        )["id"]  # fmt: skip
        kids = fin(str(tmp_path / "t1.key"), "split", vid, "60000", "40000")["ids"]
        assert fin(str(tmp_path / "t1.key"), "transfer", kids[1], "--to", "Tier2")["code"] == "OK"
        assert fin(str(tmp_path / "t2.key"), "accept", kids[1])["code"] == "OK"
        r = runner.invoke(
            main,
            [
                "finance",
                "--node",
                url,
                "--chain-id",
                "5",
                "--key",
                str(tmp_path / "t2.key"),
                "split",
                kids[0],
                "1",
                "59999",
            ],
        )
        assert r.exit_code == 1 and json.loads(r.output)["code"] == "NOT_HOLDER"
    finally:
        server.stop()
        chain.close()
    lineage = ok("finance", "lineage", str(node_dir), kids[1])
    assert lineage["voucher"]["id"] == vid and lineage["piece"]["holder"] == "Tier2"
    assert lineage["voucher"]["documents"][0]["fingerprint"] == fp
    assert [e["event"] for e in lineage["piece"]["history"]] == ["CREATED_BY_SPLIT", "OFFERED", "ACCEPTED"]
