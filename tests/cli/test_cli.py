"""The operator CLI end to end: init, node run (SIGTERM), tx send, balance, block show, state get, verify.

Malformed arguments and runtime failures of every command: tests/cli/test_cli_errors.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import free_port, stop, wait_serving
from tierchain import crypto
from tierchain.apps import accounts
from tierchain.apps.finance import codes as c
from tierchain.cli import keys
from tierchain.cli.main import main
from tierchain.config import ChainConfig
from tierchain.engine import apps
from tierchain.engine.execute import nonce_key

ENV = {"TIERCHAIN_PASSPHRASE": "test pass"}


pytestmark = pytest.mark.usefixtures("fast_kdf")


def test_cli_end_to_end(tmp_path, node_stderr):
    runner = CliRunner(env=ENV)
    chain_dir = tmp_path / "node"
    r = runner.invoke(main, ["init", str(chain_dir), "--chain-id", "5", "--balance", "1000"])
    assert r.exit_code == 0, r.output
    assert runner.invoke(main, ["init", str(chain_dir)]).exit_code != 0  # never overwrites a chain
    user_key = tmp_path / "user.key"
    r = runner.invoke(main, ["keygen", str(user_key)])
    assert r.exit_code == 0, r.output
    user_pk = bytes.fromhex(r.output.strip().splitlines()[-1])

    port = free_port()
    env = dict(os.environ, **ENV, PYTHONPATH=str(Path(__file__).parents[2] / "core"))
    with open(node_stderr, "wb") as err:
        node = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tierchain.cli.main",
                "node",
                "run",
                str(chain_dir),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stderr=err,
            env=env,
        )
    try:
        wait_serving(f"http://127.0.0.1:{port}", node)
        node_key = str(chain_dir / "node.key")
        url = f"http://127.0.0.1:{port}"

        def send(kind: str, *args: str):
            return runner.invoke(
                main, ["tx", "send", kind, "--node", url, "--key", node_key, "--chain-id", "5", *args]
            )

        r = send("register", "--new-key", user_pk.hex())
        assert r.exit_code == 0, r.output
        r = send("transfer", "--to", user_pk.hex(), "--amount", "250")
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["receipts"][0]["code"] == "OK"
        r = send("transfer", "--to", user_pk.hex(), "--amount", "999999")
        assert r.exit_code == 1 and "INSUFFICIENT_FUNDS" in r.output
        r = runner.invoke(main, ["balance", "--node", url, user_pk.hex()])
        assert r.exit_code == 0 and r.output == "250\n", r.output
        r = runner.invoke(main, ["balance", "--node", url, "ab" * 32])  # never received anything
        assert r.exit_code == 0 and r.output == "0\n", r.output
    finally:
        code = stop(node)
    assert code == 0
    logs = [json.loads(line) for line in node_stderr.read_text().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "node stopped" for entry in logs)

    r = runner.invoke(main, ["balance", str(chain_dir), user_pk.hex()])
    assert r.exit_code == 0 and r.output == "250\n", r.output
    for key in ("0x" + accounts.balance_key(user_pk).hex(), "bal/" + user_pk.hex()):
        r = runner.invoke(main, ["state", "get", str(chain_dir), key])
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert out["decoded"] == {"type": "bal", "balance": 250} and out["key"] == "bal/" + user_pk.hex()
        assert int.from_bytes(bytes.fromhex(out["value"]), "little") == 250  # the raw value too
    node_pk = crypto.load_key_file(chain_dir / "node.key", ENV["TIERCHAIN_PASSPHRASE"]).public_key
    r = runner.invoke(main, ["state", "get", str(chain_dir), "nonce/" + node_pk.hex()])
    assert r.exit_code == 0 and json.loads(r.output)["decoded"] == {"type": "nonce", "nonce": 3}, r.output
    r = runner.invoke(main, ["state", "get", str(chain_dir), "acct/" + node_pk.hex()])
    assert json.loads(r.output)["decoded"]["roles"] == ["registrar", "committee"], r.output
    r = runner.invoke(main, ["state", "get", str(chain_dir), "bal/" + "ab" * 32])
    assert r.exit_code == 1 and r.stderr.startswith("error: absent"), r.output
    r = runner.invoke(main, ["block", "show", str(chain_dir), "head"])
    assert r.exit_code == 0 and json.loads(r.output)["header"]["height"] >= 2
    r = runner.invoke(main, ["verify", str(chain_dir)])
    assert r.exit_code == 0 and "OK: " in r.output, r.output
    config = ChainConfig.load(chain_dir / "chain.toml")
    assert config.chain_id == 5 and config.sync == "full"


def test_wrong_passphrase_is_reported(tmp_path):
    runner = CliRunner(env=ENV)
    assert runner.invoke(main, ["keygen", str(tmp_path / "k.key")]).exit_code == 0
    r = CliRunner(env={"TIERCHAIN_PASSPHRASE": "nope"}).invoke(
        main, ["tx", "send", "transfer", "--key", str(tmp_path / "k.key"), "--to", "00" * 32, "--amount", "1"]
    )
    # A named error on one line, exit 1 (a failure while running), never a traceback.
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error: WrongPassphrase"), r.stderr


def test_state_key_forms_parse_and_print_back():
    pk, vid = bytes(range(32)), bytes(range(16))
    forms = {
        "bal/" + pk.hex(): accounts.balance_key(pk),
        "acct/" + pk.hex(): accounts.account_key(pk),
        "nonce/" + pk.hex(): nonce_key(pk),
        "fk/" + pk.hex(): c.key_key(pk),
        "fv/" + vid.hex(): c.voucher_key(vid),
        "fx/" + vid.hex(): c.piece_key(vid),
        "fo/" + vid.hex(): c.org_key(vid),
        "fq/" + vid.hex(): c.proposal_key(vid),
        "fd/02" + pk.hex(): c.doc_key(2, pk),
        "fc/" + vid.hex() + "0300": c.clearing_key(vid, 3),
        "fr/" + pk.hex(): c.registry_key(pk),
        "fl/" + pk.hex(): c.financing_key(pk),
        "fp/params": c.PARAMS_KEY,
        "0x" + accounts.balance_key(pk).hex(): accounts.balance_key(pk),
        "xy/" + pk.hex(): b"xy/" + pk,  # another prefix: as `state prove` reads it
    }
    for text, key in forms.items():
        assert keys.parse_key(text) == key, text
        assert keys.parse_key(keys.key_text(key)) == key, text
    for bad in ("bal/zz", "bal/" + "00" * 31, "fv/" + pk.hex(), "0xabc", "", "k" * 65, "nonce/00"):
        with pytest.raises(keys.KeyFormError):
            keys.parse_key(bad)


def test_state_values_decode_through_their_codecs():
    pk, vid = bytes(range(32)), bytes(range(16))
    piece = c.Piece(
        vid, c.ZERO_ID, vid, 0, 0, 500, b"h" * 16, c.PieceState.OFFERED, c.OfferKind.DISCOUNT, b"b" * 16,
        450, 0, 0, 7, (c.HistoryEntry(c.Event.ISSUED, 7, b"o" * 16, 500),),
    )  # fmt: skip
    out = keys.decode_value(c.piece_key(vid), piece.encode())
    assert out["type"] == "fx" and out["amount"] == 500 and out["state"] == "OFFERED"
    assert out["offer_kind"] == "DISCOUNT" and out["history"][0]["kind"] == "ISSUED"
    assert out["holder"] == (b"h" * 16).hex()
    org = c.OrgRecord(apps.default_set().role_bits["bank"], 1, 2, 9, b"Bank A")
    out = keys.decode_value(c.org_key(vid), org.encode())
    assert out["name"] == "Bank A" and out["roles"] == ["bank"] and out["keys_active"] == 2
    assert keys.decode_value(accounts.balance_key(pk), (250).to_bytes(8, "little")) == {
        "type": "bal",
        "balance": 250,
    }
    assert keys.decode_value(c.PARAMS_KEY, c.Params().encode())["threshold"] == 1
    assert "error" in keys.decode_value(c.voucher_key(vid), b"short")  # damaged: shown, not raised
    assert keys.decode_value(b"other", b"x") is None
