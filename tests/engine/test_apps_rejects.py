"""An app names its own refusal codes, and what shows a receipt shows its names.

``App.rejects`` is an ``IntEnum`` of codes inside the app's ``reject_codes``; the app set
refuses a name outside the range, the engine's names and a name two apps declare, and
``AppSet.reject_name`` is what the API (``rpc.receipt_json``) and the CLI show. Receipts
keep the number. A handler refusing with its own app's code gets a receipt with that code;
with an engine code, that code; with a code of another app (or of none), a logged
``HANDLER_FAILED``, as for any handler bug. The CLI also names an app's roles in ``state get``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import NODE, small_config
from tierchain.api import rpc
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.codes import FinanceReject
from tierchain.cli import keys
from tierchain.cli.main import main
from tierchain.engine import apps
from tierchain.engine.chain import Chain
from tierchain.engine.execute import OpFailed
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec
from tierchain.wire.block import Receipt

DOCS = Path(__file__).parents[2] / "docs"
sys.path.insert(0, str(DOCS))
import example_app  # noqa: E402  (docs/example_app.py: the embedder's app)

TX_ID = bytes(range(32))


class LedgerReject(enum.IntEnum):
    OUT_OF_PAPER = 4096
    LATE_STAMP = 4097


def _noop(ctx) -> None:
    pass


def ledger(**fields) -> apps.App:
    fields = {
        "name": "ledger",
        "ops": (apps.Op(4096, "ledger.op", _noop),),
        "op_codes": range(4096, 4100),
        "reject_codes": range(4096, 4104),
        "rejects": LedgerReject,
        **fields,
    }
    return apps.App(**fields)


def test_an_app_set_names_codes_by_the_app_then_the_engine():
    app_set = apps.AppSet([*apps.default_set().apps, ledger()])
    assert app_set.reject_name(4097) == "LATE_STAMP"
    assert app_set.reject_name(Reject.BAD_PAYLOAD) == "BAD_PAYLOAD"  # the engine's
    assert app_set.reject_name(FinanceReject.NOT_A_MEMBER) == "NOT_A_MEMBER"  # finance's own (App.rejects)
    assert app_set.reject_name(4100) == "REJECT_4100"  # in the range, but not named
    assert apps.default_set().reject_name(4097) == "REJECT_4097"  # not an app of this set


def test_the_engine_enum_holds_only_engine_codes():
    """``Reject`` is the engine's: every app code (96 and up) is its app's own enum."""
    assert max(Reject) < apps.app_reject_codes_min
    assert not [code for code in Reject if code >= apps.app_reject_codes_min]


def test_finance_declares_its_own_codes_by_the_documented_names():
    from tierchain.apps.finance.app import APP as FINANCE

    assert FINANCE.rejects is FinanceReject
    assert all(code in FINANCE.reject_codes for code in FinanceReject)
    assert not set(FinanceReject.__members__) & set(Reject.__members__)
    # docs/finance.md, "Error codes": the same names and numbers, row for row.
    text = (DOCS / "finance.md").read_text()
    section = text[text.index("## Error codes") :]
    section = section[: section.index("\n## ", 1)]
    rows = {int(n): name for n, name in re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", section, re.MULTILINE)}
    assert rows == {int(code): code.name for code in FinanceReject}
    # Receipts keep the number; the default app set names it as before.
    default = apps.default_set()
    assert {code.name for code in FinanceReject} == {default.reject_name(int(code)) for code in FinanceReject}
    assert default.reject_name(116) == "NOT_HOLDER" and default.reject_name(139) == "DOC_NOT_FROM_PARTY"
    assert c.reject_of(116) is FinanceReject.NOT_HOLDER and c.reject_of(0) is Reject.OK
    assert c.reject_named("PIECE_LOCKED") is FinanceReject.PIECE_LOCKED
    assert c.reject_named("BAD_PAYLOAD") is Reject.BAD_PAYLOAD


def test_a_handler_may_refuse_with_engine_codes_and_its_own_apps_codes():
    app_set = apps.AppSet([*apps.default_set().apps, ledger()])
    assert app_set.may_refuse(4096, LedgerReject.LATE_STAMP)
    assert app_set.may_refuse(4096, Reject.UNAUTHORIZED)
    assert not app_set.may_refuse(4096, FinanceReject.NOT_A_MEMBER)  # finance's range
    assert not app_set.may_refuse(2, LedgerReject.LATE_STAMP)  # transfer is not ledger's
    assert not app_set.may_refuse(4096, Reject.OK)  # a refusal is never OK
    assert not app_set.may_refuse(4096, 90)  # an engine number no code has


def test_declared_reject_names_are_checked():
    class Outside(enum.IntEnum):
        TOO_FAR = 5000

    class Engines(enum.IntEnum):
        BAD_PAYLOAD = 4096

    class Lower(enum.IntEnum):
        late = 4096

    with pytest.raises(apps.AppError, match="TOO_FAR = 5000 outside"):
        ledger(rejects=Outside)
    with pytest.raises(apps.AppConflict, match="BAD_PAYLOAD is the engine's"):
        ledger(rejects=Engines)
    with pytest.raises(apps.AppError, match="UPPER_CASE"):
        ledger(rejects=Lower)
    with pytest.raises(apps.AppError, match="IntEnum"):
        ledger(rejects={4096: "LATE"})

    class Again(enum.IntEnum):
        LATE_STAMP = 4200

    other = ledger(
        name="other", op_codes=range(4200, 4201), ops=(), reject_codes=range(4200, 4201), rejects=Again
    )
    with pytest.raises(apps.AppConflict, match="both claim reject name LATE_STAMP"):
        apps.AppSet([ledger(), other])


def test_receipt_json_shows_the_apps_name_and_receipts_keep_the_number():
    app_set = apps.AppSet([*apps.default_set().apps, ledger()])
    receipt = Receipt(TX_ID, int(LedgerReject.OUT_OF_PAPER))
    assert rpc.receipt_json(receipt, app_set)["code"] == "OUT_OF_PAPER"
    assert rpc.receipt_json(receipt, apps.default_set())["code"] == "REJECT_4096"  # never raises
    assert rpc.receipt_json(Receipt(TX_ID, Reject.OK), app_set)["code"] == "OK"
    assert receipt.encode()[32:34] == (4096).to_bytes(2, "little")


# --- a handler refuses with its own app's codes ----------------------------------------------

LEDGER_KEY = b"ldgr/x"
# payload byte -> what the ledger handler raises (after writing LEDGER_KEY)
REFUSALS = {
    1: LedgerReject.LATE_STAMP,  # its own, named
    2: 4100,  # its own, a plain int (unnamed)
    3: Reject.UNAUTHORIZED,  # the engine's
    4: FinanceReject.NOT_A_MEMBER,  # finance's range: not ledger's to use
    5: 4200,  # no app's
}


def _refusing(ctx) -> None:
    ctx.put(LEDGER_KEY, b"written before the refusal")
    kind = ctx.payload[0]
    if kind in REFUSALS:
        raise OpFailed(REFUSALS[kind], "refused")


def _ledger_config():
    return small_config(apps=(*apps.DEFAULT_APPS, "ledger"))


def _ledger_tx(nonce: int, kind: int) -> bytes:
    tx = txcodec.Tx(
        chain_id=9,
        shard_id=0,
        op=4096,
        sender=NODE.public_key,
        nonce=nonce,
        expires_at=0,
        reads=(),
        writes=(LEDGER_KEY,),
        payload=bytes([kind]),
    )
    return NODE.sign_tx(tx).encode()


def test_a_handler_refuses_with_its_own_code_not_another_apps(tmp_path, caplog):
    app = ledger(ops=(apps.Op(4096, "ledger.op", _refusing),))
    with Chain(tmp_path / "c", _ledger_config(), NODE, apps=[app]) as chain:
        kinds = [1, 2, 3, 4, 5]
        receipts = chain.submit([_ledger_tx(n, k) for n, k in enumerate(kinds)]).wait(10)
        codes = [r.code for r in receipts]
        assert codes == [
            LedgerReject.LATE_STAMP,  # the app's own code, kept
            4100,
            Reject.UNAUTHORIZED,  # engine codes stay fine
            Reject.HANDLER_FAILED,  # another app's code is a handler bug
            Reject.HANDLER_FAILED,  # and so is a code of no app
        ]
        assert [chain.apps.reject_name(c) for c in codes] == [
            "LATE_STAMP",
            "REJECT_4100",
            "UNAUTHORIZED",
            "HANDLER_FAILED",
            "HANDLER_FAILED",
        ]
        # Every refusal, owned or not, left nothing written; the nonces were consumed.
        assert chain.state_get(LEDGER_KEY) is None and chain.nonce(NODE.public_key) == 5
        (ok,) = chain.submit([_ledger_tx(5, 0)]).wait(10)
        assert ok.code == Reject.OK and chain.state_get(LEDGER_KEY) == b"written before the refusal"
        stored = chain.receipts(int(chain.height) - 1)
        assert [r.code for r in stored] == codes  # the number, as committed
    bugs = [r.getMessage() for r in caplog.records if "does not own" in r.getMessage()]
    assert len(bugs) == 2 and "NOT_A_MEMBER" in bugs[0] and "4200" in bugs[1], bugs


def test_op_failed_keeps_an_int_code_and_a_members_name():
    assert OpFailed(LedgerReject.LATE_STAMP).code == 4097
    assert type(OpFailed(LedgerReject.LATE_STAMP).code) is int
    assert str(OpFailed(LedgerReject.LATE_STAMP, "late")) == "LATE_STAMP: late"
    assert str(OpFailed(Reject.BAD_PAYLOAD)) == "BAD_PAYLOAD"
    assert str(OpFailed(4100)) == "REJECT_4100"


def test_the_example_apps_own_code_is_shown_by_name(tmp_path, monkeypatch):
    with_notary = (*apps.DEFAULT_APPS, "notary")
    accounts = small_config().genesis_accounts
    node = dataclasses.replace(accounts[0], roles=("registrar", "notary"))
    config = small_config(apps=with_notary, genesis_accounts=(node, *accounts[1:]))
    digest = bytes(32)
    stamps = [NODE.sign_tx(example_app.stamp(9, NODE.public_key, n, digest)).encode() for n in (0, 1)]
    with Chain(tmp_path / "c", config, NODE, apps=[example_app.APP]) as chain:
        first, again = chain.submit(stamps).wait(10)
        assert first.code == Reject.OK and again.code == example_app.NotaryReject.ALREADY_STAMPED == 4096
        assert rpc.receipt_json(again, chain.apps)["code"] == "ALREADY_STAMPED"
        height = int(chain.height)
    monkeypatch.setenv(apps.APPS_ENV, "example_app:APP")
    r = CliRunner().invoke(main, ["block", "show", str(tmp_path / "c"), str(height)])
    assert r.exit_code == 0, r.output
    assert [rc["code"] for rc in json.loads(r.stdout)["receipts"]] == ["OK", "ALREADY_STAMPED"]


def test_state_get_and_block_show_use_the_chains_apps(tmp_path, monkeypatch):
    with_notary = (*apps.DEFAULT_APPS, "notary")
    accounts = small_config().genesis_accounts
    node = dataclasses.replace(accounts[0], roles=("registrar", "notary"))
    config = small_config(apps=with_notary, genesis_accounts=(node, *accounts[1:]))
    with Chain(tmp_path / "c", config, NODE, apps=[example_app.APP]) as chain:
        head_hash = chain.head().hash(chain.suite).hex()
    runner = CliRunner()
    acct = ["state", "get", str(tmp_path / "c"), "acct/" + NODE.public_key.hex()]

    monkeypatch.setenv(apps.APPS_ENV, "example_app:APP")
    r = runner.invoke(main, acct)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["decoded"]["roles"] == ["registrar", "notary"]
    r = runner.invoke(main, ["block", "show", str(tmp_path / "c"), "head"])
    assert r.exit_code == 0 and json.loads(r.stdout)["header"]["hash"] == head_hash, r.output

    monkeypatch.delenv(apps.APPS_ENV)  # the app cannot be loaded: shown, without its names
    r = runner.invoke(main, acct)
    assert r.exit_code == 0 and "unknown app 'notary'" in r.stderr, r.output
    assert json.loads(r.stdout)["decoded"]["roles"] == ["registrar"]  # the built-in apps' roles
    assert keys.decode_value(b"acct/" + NODE.public_key, bytes(12))["roles"] == []


def test_finance_org_view_names_roles_by_the_chains_apps():
    from tierchain.apps.finance import views

    app_set = apps.resolve((*apps.DEFAULT_APPS, "notary"), [example_app.APP])
    default = apps.default_set()
    oid = c.org_id("Notaries")
    org = c.OrgRecord(default.role_bits["bank"] | app_set.role_bits["notary"], 1, 1, 3, b"Notaries")
    state = {c.org_key(oid): org.encode()}
    assert views.org_view(state.get, oid, app_set)["roles"] == ["bank", "notary"]
    assert views.org_view(state.get, oid)["roles"] == ["bank"]  # the built-in apps' roles


def test_an_app_may_refuse_with_the_codes_of_the_apps_it_requires():
    """``requires``: the apps an app builds on come first in the set, and its handlers may
    answer with their codes (a finance product refusing NOT_A_MEMBER); not with others'."""
    on_finance = ledger(requires=("finance",))
    app_set = apps.AppSet([*apps.default_set().apps, on_finance])
    assert app_set.may_refuse(4096, FinanceReject.NOT_A_MEMBER)
    assert app_set.may_refuse(4096, LedgerReject.LATE_STAMP)
    assert not app_set.may_refuse(4096, 4200)  # nobody's
    plain = apps.AppSet([*apps.default_set().apps, ledger()])
    assert not plain.may_refuse(4096, FinanceReject.NOT_A_MEMBER)
    # finance's own ops may not use the new app's codes: requiring is one way
    assert not app_set.may_refuse(c.OP_CONFIRM, LedgerReject.LATE_STAMP)


def test_requires_are_met_by_earlier_apps_or_what_they_provide():
    from tierchain.apps.finance.app import CONFIDENTIAL_APP
    from tierchain.apps.sharing.app import APP as SHARING

    base = apps.default_set().apps
    with pytest.raises(apps.AppError, match="requires 'finance'"):
        apps.AppSet([base[0], base[1], SHARING])  # no finance at all
    with pytest.raises(apps.AppError, match="requires 'finance'"):
        apps.AppSet([base[0], base[1], SHARING, base[2]])  # finance after it
    apps.AppSet([*base, SHARING])
    confidential = apps.AppSet([base[0], base[1], CONFIDENTIAL_APP, SHARING])  # provides "finance"
    assert confidential.may_refuse(SHARING.ops[0].code, FinanceReject.NOT_A_MEMBER)
    with pytest.raises(apps.AppError, match="requires"):  # by name, as a chain's genesis names them
        apps.resolve(("accounts", "xshard", "sharing"))
