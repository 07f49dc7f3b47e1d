"""Apps register with the engine as values (tierchain.engine.apps; docs/architecture.md "Apps").

An app set refuses overlapping claims; names resolve from built-ins, entry points and
TIERCHAIN_APPS; a chain's app names are part of its genesis (left out when default); a
node given another app set refuses to start; the router takes placement rules as data;
and an embedder's app (docs/example_app.py) runs embedded, under ``node run`` and passes
``tierchain verify``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import blake3
import pytest
from click.testing import CliRunner

from conftest import NODE, free_port, small_config, stop, wait_serving
from tierchain.apps import accounts as accounts_app
from tierchain.cli.main import main
from tierchain.config import ChainConfig, ConfigError, GenesisAccount
from tierchain.engine import apps, genesis, route
from tierchain.engine.chain import Chain
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

DOCS = Path(__file__).parents[2] / "docs"
sys.path.insert(0, str(DOCS))
import example_app  # noqa: E402  (docs/example_app.py: the embedder's app)

EXAMPLE_ENV = "example_app:APP"
WITH_NOTARY = (*apps.DEFAULT_APPS, "notary")
DIGEST = blake3.blake3(b"invoice 7").digest()


def _noop(ctx) -> None:
    pass


def app(name: str, **fields) -> apps.App:
    fields.setdefault("op_codes", range(5000, 5010))
    fields.setdefault("ops", (apps.Op(fields["op_codes"].start, f"{name}.op", _noop),))
    return apps.App(name=name, **fields)


# --- the app set refuses overlapping claims --------------------------------------------------


@pytest.mark.parametrize(
    ("other", "what"),
    [
        (app("b", op_codes=range(5009, 5020)), "op codes"),
        (app("b", op_codes=range(6000, 6001), reject_codes=range(150, 170)), "reject codes"),
        (app("b", op_codes=range(6000, 6001), roles=(apps.Role("auditor", 20),)), "role auditor"),
        (app("b", op_codes=range(6000, 6001), roles=(apps.Role("x", 3),)), "role bit 3"),
        (app("b", op_codes=range(6000, 6001), domains=("tierchain 2026 finance piece id",)), "domain"),
        (app("b", op_codes=range(6000, 6001), placement=(apps.Placement(b"fv/", apps.PINNED),)), "prefix"),
        (app("b", op_codes=range(6000, 6001), queries=(("balance", _noop),)), "query balance"),
    ],
)
def test_overlapping_claims_are_refused(other, what):
    finance_like = app(
        "a",
        reject_codes=range(96, 160),
        roles=(apps.Role("auditor", 3),),
        domains=("tierchain 2026 finance piece id",),
        placement=(apps.Placement(b"fv/", apps.TAG, 8),),
        queries=(("balance", _noop),),
    )
    with pytest.raises(apps.AppConflict, match=what):
        apps.AppSet([finance_like, other])
    apps.AppSet([finance_like, app("c", op_codes=range(6000, 6001))])  # disjoint: fine


def test_the_built_in_apps_are_disjoint_and_keep_their_numbers():
    default = apps.default_set()
    assert default.names == ("accounts", "xshard", "finance")
    assert {code: op.name for code, op in default.ops.items() if code < 16} == {
        1: "register",
        2: "transfer",
        3: "xshard.transfer",
        4: "xshard.credit",
        5: "xshard.decide",
        6: "xshard.finish",
        7: "xshard.replicate",
    }
    assert len(default.ops) == 34 and all(16 <= c < 64 for c in default.ops if c > 7)
    assert default.replicate_ops == {7}
    # Role bits are protocol: the order config.ROLES had before apps owned them.
    assert default.role_names(-1) == [
        "registrar", "committee", "core_enterprise", "supplier", "bank", "warehouse", "logistics",
        "rating_agency", "investor", "trustee", "auditor", "regulator", "coordinator",
    ]  # fmt: skip
    assert [p.prefix for p in default.placement] == [
        b"@",
        b"fv/",
        b"fx/",
        b"fc/",
        b"fr/",
        b"fy/",
        b"fs/",
        b"fw/",
        b"fe/",  # claims carried to a lineage
        *(b"fk/", b"fo/", b"fp/", b"fq/", b"fn/", b"fz/"),  # replicated: on every shard
        b"fd/",  # anchors and their pending claims: by (type, fingerprint)
        b"fg/",
        b"fm/",  # a bank's financing record on a cluster: pinned to its entry's shard
    ]
    assert {p.prefix for p in default.placement if p.rule == apps.REPLICATED} == {
        b"fk/", b"fo/", b"fp/", b"fq/", b"fn/", b"fz/"
    }  # fmt: skip
    assert all(p.writers == {7} for p in default.placement if p.rule == apps.REPLICATED)


def test_an_app_refuses_malformed_declarations():
    with pytest.raises(apps.AppError, match="outside"):
        app("a", op_codes=range(10, 12), ops=(apps.Op(12, "x", _noop),))
    with pytest.raises(apps.AppError, match="reject codes"):
        app("a", reject_codes=range(60, 70))  # the engine's codes
    with pytest.raises(apps.AppConflict, match="declared twice"):
        app("a", ops=(apps.Op(5000, "x", _noop), apps.Op(5000, "y", _noop)))
    with pytest.raises(apps.AppError, match="app name"):
        app("a b")
    with pytest.raises(apps.AppError, match="bit 32"):
        app("a", roles=(apps.Role("r", 32),))
    with pytest.raises(apps.AppError, match="placement"):
        apps.Placement(b"x/", apps.TAG, 0)
    with pytest.raises(apps.AppConflict, match="twice"):
        apps.AppSet([app("a"), app("a", op_codes=range(7000, 7001))])
    with pytest.raises(apps.AppConflict, match="is a prefix of"):
        apps.AppSet(
            [
                app("a", placement=(apps.Placement(b"x", apps.PINNED),)),
                app("b", op_codes=range(7000, 7001), placement=(apps.Placement(b"xy", apps.PINNED),)),
            ]
        )


# --- names resolve: built in, entry point, TIERCHAIN_APPS, given by value ----------------------


def test_names_resolve_from_every_source(monkeypatch):
    monkeypatch.delenv(apps.APPS_ENV, raising=False)
    with pytest.raises(apps.UnknownApp, match="'notary'"):
        apps.resolve(WITH_NOTARY)
    assert apps.resolve(WITH_NOTARY, [example_app.APP]).names == WITH_NOTARY  # by value
    monkeypatch.setenv(apps.APPS_ENV, EXAMPLE_ENV)
    assert apps.resolve(WITH_NOTARY).apps[-1] is example_app.APP
    monkeypatch.delenv(apps.APPS_ENV)
    ep = metadata.EntryPoint("notary", EXAMPLE_ENV, apps.ENTRY_POINT_GROUP)
    monkeypatch.setattr(apps.metadata, "entry_points", lambda group: [ep] if group == ep.group else [])
    try:
        assert apps.resolve(WITH_NOTARY).apps[-1] is example_app.APP
    finally:
        apps._resolve_cached.cache_clear()  # entry points are fixed for a process, but not here
    with pytest.raises(apps.AppSetMismatch):  # an app given that the chain does not name
        apps.resolve(apps.DEFAULT_APPS, [example_app.APP])
    monkeypatch.setenv(apps.APPS_ENV, "no_such_module:APP")
    with pytest.raises(apps.UnknownApp, match="no_such_module"):
        apps.resolve(("elsewhere",))


# --- the genesis identity ---------------------------------------------------------------------


def test_default_apps_stay_out_of_the_identity_and_others_are_in_it():
    default = small_config()
    assert default.apps == apps.DEFAULT_APPS and b"apps" not in default.genesis_bytes()
    assert "apps" not in default.to_toml()
    mine = small_config(apps=WITH_NOTARY)
    assert apps.recorded_names(mine.genesis_bytes()) == WITH_NOTARY
    assert ChainConfig.from_toml(mine.to_toml()).apps == WITH_NOTARY
    assert apps.recorded_names(default.genesis_bytes()) == apps.DEFAULT_APPS
    with pytest.raises(ConfigError, match=r"chain\.apps: an app named twice"):
        small_config(apps=("accounts", "accounts"))


def test_genesis_roles_are_the_apps_roles(monkeypatch):
    monkeypatch.setenv(apps.APPS_ENV, EXAMPLE_ENV)
    roles = (GenesisAccount(NODE.public_key, ("registrar", "notary")),)
    assert small_config(apps=WITH_NOTARY, genesis_accounts=roles).genesis_accounts == roles
    with pytest.raises(ConfigError, match='unknown role "notary"'):
        small_config(genesis_accounts=roles)  # not an app of this chain: not a role of it


def test_apps_genesis_hooks_merge_in_key_order():
    app_set = apps.resolve(WITH_NOTARY, [example_app.APP])
    config = small_config(apps=WITH_NOTARY)
    chunks = list(genesis.genesis_chunks(config, chunk_items=2, app_set=app_set))
    keys = [k for chunk in chunks for k, _ in chunk]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) and all(len(c) <= 2 for c in chunks)
    assert keys[-1] == example_app.VERSION_KEY  # acct/ < bal/ < ntry/
    accounts_only = genesis.genesis_writes(config, app_set=apps.default_set())
    assert keys[:-1] == sorted(accounts_only)  # the accounts app's, unchanged
    twice = dataclasses.replace(example_app.APP, name="notary2", op_codes=range(4200, 4201), ops=())
    others = {"domains": (), "roles": (), "queries": (), "reject_codes": range(0), "rejects": None}
    clash = apps.AppSet([*app_set.apps, dataclasses.replace(twice, **others)])
    with pytest.raises(genesis.GenesisError, match="two apps"):
        list(genesis.genesis_chunks(config, app_set=clash))


# --- the router takes placement rules as data ----------------------------------------------


def test_the_router_takes_placement_rules_as_data():
    n = 7
    pinned = [apps.Placement(b"#", apps.PINNED)]
    keys = [b"#" + (5).to_bytes(2, "little") + b"anything", b"#" + (12).to_bytes(2, "little")]
    assert route.route_keys(keys, n, pinned).tolist() == [5, 12 % n]
    # Without the rule the same keys route by all their bytes.
    assert route.route_keys(keys, n, []).tolist() == [route.route_keys([k], n, [])[0] for k in keys]
    tagged = [apps.Placement(b"t/", apps.TAG, 4)]
    same_tag = [b"t/abcd" + bytes([i]) * i for i in range(1, 30)]
    assert len(set(route.route_keys(same_tag, 1024, tagged).tolist())) == 1
    assert len(set(route.route_keys(same_tag, 1024, []).tolist())) > 1
    # The built-in apps' rules are the default and route as before (tests/engine/test_router.py).
    assert route.native_rules() == (
        (b"@", 0), (b"fv/", 8), (b"fx/", 8), (b"fc/", 8), (b"fr/", 8), (b"fy/", 8), (b"fs/", 8), (b"fw/", 8),
        (b"fe/", 8), (b"fk/", -1), (b"fo/", -1), (b"fp/", -1), (b"fq/", -1), (b"fn/", -1), (b"fz/", -1),
        (b"fd/", 32), (b"fg/", 32), (b"fm/", 0),
    )  # fmt: skip


def test_the_native_router_refuses_malformed_rules():
    import numpy as np

    from tierchain import _hot

    one = (np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="at most"):
        _hot.route_keys(b"a", *one, 4, [(b"x", 0)] * (apps.placement_rules_max + 1))
    with pytest.raises(ValueError, match="bad prefix"):
        _hot.route_keys(b"a", *one, 4, [(b"123456789", 0)])
    with pytest.raises(ValueError, match="bad prefix"):
        _hot.route_keys(b"a", *one, 4, [(b"", 0)])


# --- the chain runs the apps its genesis names ----------------------------------------------


def _notary_config() -> ChainConfig:
    accounts = small_config().genesis_accounts
    node = dataclasses.replace(accounts[0], roles=("registrar", "committee", "notary"))
    return small_config(apps=WITH_NOTARY, genesis_accounts=(node, *accounts[1:]))


def _stamp(nonce: int, digest: bytes = DIGEST) -> bytes:
    return NODE.sign_tx(example_app.stamp(9, NODE.public_key, nonce, digest)).encode()


def test_an_embedded_app_runs_and_verifies(tmp_path, monkeypatch):
    monkeypatch.delenv(apps.APPS_ENV, raising=False)
    with Chain(tmp_path / "c", _notary_config(), NODE, apps=[example_app.APP]) as chain:
        sub = chain.submit([_stamp(0), _stamp(1), _stamp(2, b"short")])
        receipts = sub.wait(10)
        # A second stamp of one digest: the app's own code (docs/example_app.py NotaryReject).
        assert [r.code for r in receipts] == [
            Reject.OK,
            example_app.NotaryReject.ALREADY_STAMPED,
            Reject.BAD_PAYLOAD,
        ]
        assert chain.query("notary.stamp_of", DIGEST) == (NODE.public_key, int(sub.heights[0]))
        assert chain.state_get(example_app.VERSION_KEY) == b"\x01"  # its genesis hook ran
        # A role of the app is a role of the chain: the register op takes its bit.
        newcomer = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        reg = accounts_app.register(9, NODE.public_key, 3, newcomer, ("notary",), app_set=chain.apps)
        unknown_bit = dataclasses.replace(reg, nonce=4, payload=newcomer + (1 << 30).to_bytes(4, "little"))
        codes = [
            r.code for r in chain.submit([NODE.sign_tx(t).encode() for t in (reg, unknown_bit)]).wait(10)
        ]
        assert codes == [Reject.OK, Reject.BAD_PAYLOAD]
    report = verify_chain(tmp_path / "c")  # the process cannot load "notary" by name
    assert not report.ok and "apps: unknown app 'notary'" in report.problems[0]
    monkeypatch.setenv(apps.APPS_ENV, EXAMPLE_ENV)
    report = verify_chain(tmp_path / "c")
    assert report.ok, report.problems
    assert report.txs == 5


def test_the_default_chain_refuses_an_app_op(chain):
    receipts = chain.submit([_stamp(0)]).wait(10)
    assert receipts[0].code == Reject.UNKNOWN_OP  # notary is not an app of this chain


def test_a_node_with_another_app_set_refuses_to_start(tmp_path):
    Chain(tmp_path / "c", _notary_config(), NODE, apps=[example_app.APP], start=False).close()
    accounts = _notary_config().genesis_accounts
    without = small_config(genesis_accounts=(dataclasses.replace(accounts[0], roles=()), *accounts[1:]))
    with pytest.raises(apps.AppSetMismatch, match="genesis has"):
        Chain(tmp_path / "c", dataclasses.replace(without), NODE, start=False)
    with pytest.raises(apps.AppSetMismatch):
        Chain(tmp_path / "d", small_config(), NODE, apps=[example_app.APP], start=False)


# --- node run and tierchain verify load it by name ----------------------------------------------


@pytest.mark.usefixtures("fast_kdf")
def test_node_run_and_verify_load_an_app_by_name(tmp_path, monkeypatch, node_stderr):
    env = {"TIERCHAIN_PASSPHRASE": "test pass", apps.APPS_ENV: EXAMPLE_ENV}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.syspath_prepend(str(DOCS))
    runner = CliRunner()
    node_dir = tmp_path / "node"
    r = runner.invoke(main, ["init", str(node_dir), "--chain-id", "9", "--app", "notary"])
    assert r.exit_code == 0, r.output
    config = ChainConfig.load(node_dir / "chain.toml")
    assert config.apps == WITH_NOTARY
    # Grant the node key the app's role in genesis (before the first start).
    node_acct = dataclasses.replace(config.genesis_accounts[0], roles=("registrar", "notary"))
    (node_dir / "chain.toml").write_text(dataclasses.replace(config, genesis_accounts=(node_acct,)).to_toml())
    from tierchain.crypto import load_key_file

    keys = load_key_file(node_dir / "node.key", env["TIERCHAIN_PASSPHRASE"])
    port = free_port()
    proc_env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2] / "core"), str(DOCS)])
    )
    with open(node_stderr, "wb") as err:
        node = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tierchain.cli.main",
                "node",
                "run",
                str(node_dir),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stderr=err,
            env=proc_env,
        )
    try:
        client = wait_serving(f"http://127.0.0.1:{port}", node)
        tx = keys.sign_tx(example_app.stamp(9, keys.public_key, 0, DIGEST)).encode()
        reply = client.submit(txcodec.frame([tx]), wait_s=10)
        assert reply["receipts"][0]["code"] == "OK", reply
        assert client.state(example_app.stamp_key(DIGEST))[:32] == keys.public_key
        again = keys.sign_tx(example_app.stamp(9, keys.public_key, 1, DIGEST)).encode()
        reply = client.submit(txcodec.frame([again]), wait_s=10)
        assert reply["receipts"][0]["code"] == "ALREADY_STAMPED", reply  # the app's own code, by name
    finally:
        code = stop(node)
    assert code == 0, node_stderr.read_text(errors="replace")[-2000:]
    r = runner.invoke(main, ["verify", str(node_dir)])
    assert r.exit_code == 0 and "OK: 3 blocks, 2 transactions verified" in r.output, r.output
    # Without the app on hand, the node refuses to start with a named error.
    bare = dict(proc_env)
    bare.pop(apps.APPS_ENV)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tierchain.cli.main",
            "node",
            "run",
            str(node_dir),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        env=bare,
        timeout=60,
    )
    assert out.returncode == 1 and b"unknown app 'notary'" in out.stderr, out.stderr[-2000:]
    monkeypatch.delenv(apps.APPS_ENV)
    r = runner.invoke(main, ["verify", str(node_dir)])
    assert r.exit_code == 1 and "unknown app 'notary'" in r.output, r.output


def test_stamped_event_uses_the_apps_own_domain(tmp_path):
    with Chain(tmp_path / "c", _notary_config(), NODE, apps=[example_app.APP]) as chain:
        (receipt,) = chain.submit([_stamp(0)]).wait(10)
    want = blake3.blake3(DIGEST + NODE.public_key, derive_key_context=example_app.STAMP_ID).digest()
    assert receipt.events[0].data == want
    assert json.dumps(example_app.APP.domains)  # declared, so the app set can refuse a clash


def test_the_example_app_runs_as_documented():
    """``python docs/example_app.py`` (docs/embedding.md "Adding ops") runs and prints its outcome."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "core"))
    env.pop(apps.APPS_ENV, None)  # embedded: the app is given to Chain by value
    out = subprocess.run(
        [sys.executable, str(DOCS / "example_app.py")], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [
        "stamp: OK | again: ALREADY_STAMPED",
        "stamped by the node at height 1",
    ]
