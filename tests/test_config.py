"""chain.toml and cluster files: every key round-trips, and every mistake is a named error.

An error names the file, the field (with its section), what it expects and what it got;
an unknown section or key also names the nearest valid one.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tierchain import limits
from tierchain.config import (
    ACCOUNT_FIELDS,
    CHAIN_FIELDS,
    SYNTHETIC_FIELDS,
    ChainConfig,
    ConfigError,
    GenesisAccount,
    SyntheticAccounts,
)
from tierchain.sharding.config import CLUSTER_FIELDS, ClusterSpec

KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))

# A value other than the default for every field, so a field lost on the way fails the round trip.
TUNED = ChainConfig(
    chain_id=77,
    block_txs_max=1000,
    block_interval_ms=7,
    sync="none",
    state_commitment="interim",
    mempool_txs_max=5000,
    sender_pending_max=12,
    key_file="keys/proposer.key",
    state_keep_heights=3,
    state_cache_mb=0,
    state_flush_blocks=2,
    tree_stage="thread",
    tree_workers=3,
    genesis_timestamp_ms=1_795_000_000_000,
    genesis_accounts=(GenesisAccount(KEY_A, ("registrar", "bank"), 10), GenesisAccount(KEY_B)),
    genesis_synthetic=SyntheticAccounts(accounts=9, seed=4, balance=3),
    shard_index=1,
    shard_count=3,
    apps=("accounts", "finance"),
    crypto="sm2-sm3",
)


def _write(tmp_path: Path, text: str, name: str = "chain.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        ChainConfig.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message.removeprefix(f"{path}: ")


# --- round trip ---------------------------------------------------------------------------


def test_every_field_is_in_the_schema_and_round_trips(tmp_path):
    declared = {f.attr for f in CHAIN_FIELDS} | {"genesis_accounts", "genesis_synthetic"}
    assert declared == {f.name for f in dataclasses.fields(ChainConfig)}
    assert {f.attr for f in ACCOUNT_FIELDS} == {f.name for f in dataclasses.fields(GenesisAccount)}
    assert {f.attr for f in SYNTHETIC_FIELDS} == {f.name for f in dataclasses.fields(SyntheticAccounts)}
    default = ChainConfig()
    assert all(getattr(TUNED, f.attr) != getattr(default, f.attr) for f in CHAIN_FIELDS)

    assert ChainConfig.load(_write(tmp_path, TUNED.to_toml())) == TUNED
    assert ChainConfig.from_toml(ChainConfig().to_toml()) == ChainConfig()
    assert ChainConfig.from_toml("") == ChainConfig()  # every key has a default
    # The identity stored in a database (what `verify` reads back) parses too.
    identity = ChainConfig.from_toml(TUNED.genesis_bytes().decode())
    assert identity.genesis_accounts == TUNED.genesis_accounts
    assert (identity.shard_index, identity.shard_count) == (1, 3)


def test_older_stored_identities_still_load():
    # Databases made before the identity was trimmed hold a full chain.toml with key_file "".
    old = dataclasses.replace(TUNED, key_file="", block_interval_ms=1, sync="full").to_toml()
    assert ChainConfig.from_toml(old).key_file == ""


# --- unknown sections and keys ------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("[mempool]", "[mempol]"), "[mempol]: unknown section; did you mean [mempool]?"),
        (
            ("block_interval_ms = ", "block_intervl_ms = "),
            "chain.block_intervl_ms: unknown key; did you mean chain.block_interval_ms?",
        ),
        (  # a key in the wrong section: the nearest key anywhere
            ("[mempool]\n", "[mempool]\nblock_intervl_ms = 5\n"),
            "mempool.block_intervl_ms: unknown key; did you mean chain.block_interval_ms?",
        ),
        (
            ("state_cache_mb", "state_cache_mib"),
            "node.state_cache_mib: unknown key; did you mean node.state_cache_mb?",
        ),
        (("[genesis]\n", "[genesis]\ntimestmp_ms = 1\n"), "did you mean genesis.timestamp_ms?"),
        (
            ("balance = 10", "balanse = 10"),
            "genesis.accounts[0].balanse: unknown key; did you mean genesis.accounts[0].balance?",
        ),
        (("seed = 4", "sed = 4"), "genesis.synthetic.sed: unknown key; did you mean genesis.synthetic.seed?"),
        (("[chain]\n", "chain_id = 5\n[chain]\n"), "chain_id: unknown key outside of any [section]"),
        (("[chain]\n", "[chain]\nzzzz = 1\n"), "chain.zzzz: unknown key; valid keys: id, block_txs_max"),
        (("[node]", "[nodes]"), "[nodes]: unknown section; did you mean [node]?"),
    ],
)
def test_unknown_names_are_refused_with_the_nearest_valid_one(tmp_path, edit, expected):
    old, new = edit
    text = TUNED.to_toml()
    assert old in text
    assert expected in _error(tmp_path, text.replace(old, new, 1))


# --- types and bounds ----------------------------------------------------------------------


def test_a_wrong_type_names_the_field_and_the_expected_type(tmp_path):
    text = ChainConfig().to_toml()
    assert (
        _error(tmp_path, text.replace("txs_max = 100000", 'txs_max = "lots"'))
        == 'mempool.txs_max: expected an integer in 1..10000000, got "lots"'
    )
    # bool is not an integer, a float is not either (it was truncated before)
    assert _error(tmp_path, text.replace("id = 1\n", "id = true\n")) == (
        f"chain.id: expected an integer in 0..{(1 << 32) - 1}, got true"
    )
    assert "chain.block_interval_ms: expected an integer in 1..60000, got 20.5" in _error(
        tmp_path, text.replace("block_interval_ms = 20", "block_interval_ms = 20.5")
    )
    assert _error(tmp_path, text.replace('sync = "full"', 'sync = "ful"')) == (
        'chain.sync: expected one of "full", "none", got "ful"'
    )
    assert _error(tmp_path, text.replace('key_file = "node.key"', "key_file = 3")) == (
        "node.key_file: expected a string, got 3"
    )
    assert _error(tmp_path, "mempool = 3\n") == "mempool: expected a table ([mempool]), got 3"


@pytest.mark.parametrize("field", CHAIN_FIELDS, ids=lambda f: f.name)
def test_every_field_names_itself_and_its_bounds(tmp_path, field):
    section, key = field.section, field.key
    wrong_types = ["true", "[1]"] + ([] if field.kind is str and not field.choices else ['"lots"'])
    for bad in wrong_types + ([str(field.lo - 1), str(field.hi + 1)] if field.kind is int else []):
        message = _error(tmp_path, f"[{section}]\n{key} = {bad}\n")
        assert message.startswith(f"{field.name}: expected {field.expected()}, got "), message
        if field.kind is int:
            assert f"{field.lo}..{field.hi}" in message


def test_genesis_entries_are_named_by_index(tmp_path):
    text = TUNED.to_toml()
    assert _error(tmp_path, text.replace('"bank"', '"bnak"')) == (
        'genesis.accounts[0].roles: unknown role "bnak"; did you mean "bank"?'
    )
    assert _error(tmp_path, text.replace(KEY_B.hex(), "zz" + KEY_B.hex()[2:])).startswith(
        'genesis.accounts[1].public_key: expected 64 hex digits (32 bytes), got "zz'
    )
    assert _error(tmp_path, text.replace(KEY_B.hex(), KEY_A.hex())) == (
        f"genesis.accounts[1].public_key: {KEY_A.hex()} listed twice"
    )
    assert _error(tmp_path, text.replace("balance = 10\n", "balance = -1\n")).startswith(
        "genesis.accounts[0].balance: expected an integer in 0.."
    )
    assert _error(tmp_path, "[[genesis.accounts]]\nroles = []\n") == (
        "genesis.accounts[0].public_key: missing; expected 64 hex digits (32 bytes)"
    )
    assert _error(tmp_path, "[genesis.synthetic]\nseed = 1\n").startswith(
        "genesis.synthetic.accounts: missing"
    )
    assert _error(tmp_path, "[genesis]\naccounts = 5\n").startswith(
        "genesis.accounts: expected an array of tables ([[genesis.accounts]]), got 5"
    )


def test_relations_between_fields_are_named(tmp_path):
    assert _error(tmp_path, "[chain]\nblock_txs_max = 500\n[mempool]\ntxs_max = 100\n") == (
        "mempool.txs_max: expected at least chain.block_txs_max (500), got 100"
    )
    assert _error(tmp_path, "[chain]\nshard_index = 3\nshard_count = 3\n").startswith(
        "chain.shard_index: expected an integer in 0..chain.shard_count - 1 (0..2), got 3"
    )
    with pytest.raises(
        ConfigError, match=r"^node\.state_flush_blocks: expected an integer in 1\.\.1024, got 0$"
    ):
        ChainConfig(state_flush_blocks=0)  # built in Python: the same table, the same message


def test_toml_syntax_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        ChainConfig.load(_write(tmp_path, "[chain]\nid = 1\nsync = \n"))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'chain.toml'}: invalid TOML: ") and "line 3" in message
    (tmp_path / "latin1.toml").write_bytes(b"[chain]\nid = 1 # caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text \(byte 20\)"):
        ChainConfig.load(tmp_path / "latin1.toml")
    with pytest.raises(ConfigError) as info:
        ChainConfig.load(tmp_path / "absent.toml")
    assert str(info.value) == f"cannot read {tmp_path / 'absent.toml'}: No such file or directory"


def test_the_cli_prints_a_config_error_as_one_line(tmp_path):
    node = tmp_path / "node"
    node.mkdir()
    (node / "chain.toml").write_text(ChainConfig().to_toml().replace("[mempool]", "[mempol]"))
    cmd = [sys.executable, "-c", "from tierchain.cli.main import run; run()", "node", "run", str(node)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={"TIERCHAIN_PASSPHRASE": "x"})
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("error: ") and line.endswith(
        f"{node / 'chain.toml'}: [mempol]: unknown section; did you mean [mempool]?"
    ), line


# --- cluster files --------------------------------------------------------------------------

CLUSTER = """[cluster]
chain_config = "base.toml"
key_file = "proposer.key"
root = "data"
control = "127.0.0.1:7700"
shards = ["local", "10.0.0.2:7601"]
queue_max = 1234
start_timeout_s = 5
heartbeat_s = 0.5
heartbeat_timeout_s = 3.5
coordinator_key_file = "coord.key"
"""


def test_every_cluster_field_loads(tmp_path):
    assert {f.attr for f in CLUSTER_FIELDS} | {"path", "shards"} == {
        f.name for f in dataclasses.fields(ClusterSpec)
    }
    spec = ClusterSpec.load(_write(tmp_path, CLUSTER, "cluster.toml"))
    assert spec.chain_config == tmp_path / "base.toml" and spec.key_file == tmp_path / "proposer.key"
    assert spec.root == tmp_path / "data" and spec.control == "127.0.0.1:7700"
    assert spec.shards == (None, "10.0.0.2:7601") and spec.queue_max == 1234
    assert spec.start_timeout_s == 5.0 and isinstance(spec.start_timeout_s, float)
    assert (spec.heartbeat_s, spec.heartbeat_timeout_s) == (0.5, 3.5)
    assert spec.coordinator_key_file == tmp_path / "coord.key"
    # Defaults: the key file comes from the chain config.
    _write(tmp_path, TUNED.to_toml(), "chain.toml")
    spec = ClusterSpec.load(_write(tmp_path, '[cluster]\nshards = ["local"]\n', "cluster.toml"))
    assert spec.key_file == tmp_path / "keys/proposer.key" and spec.queue_max == 50_000
    # ... and an error in that chain config names that file.
    _write(tmp_path, "[chain]\nid = -1\n", "chain.toml")
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'chain.toml'}: chain\.id: expected an integer"):
        ClusterSpec.load(tmp_path / "cluster.toml")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("[cluster]", "[clustr]"), "[clustr]: unknown section; did you mean [cluster]?"),
        (("queue_max", "queue_mx"), "cluster.queue_mx: unknown key; did you mean cluster.queue_max?"),
        (("shards =", "shard ="), "cluster.shard: unknown key; did you mean cluster.shards?"),
        (
            ("queue_max = 1234", 'queue_max = "lots"'),
            'cluster.queue_max: expected an integer in 1..10000000, got "lots"',
        ),
        (
            ("queue_max = 1234", "queue_max = 0"),
            "cluster.queue_max: expected an integer in 1..10000000, got 0",
        ),
        (
            ("start_timeout_s = 5", "start_timeout_s = true"),
            "cluster.start_timeout_s: expected a number in (0, 3600]",
        ),
        (
            ("start_timeout_s = 5", "start_timeout_s = 0"),
            "cluster.start_timeout_s: expected a number in (0, 3600], got 0.0",
        ),
        (
            ("heartbeat_s = 0.5", "heartbeat_s = 4.0"),
            "cluster.heartbeat_s: expected less than cluster.heartbeat_timeout_s",
        ),
        (
            ('"10.0.0.2:7601"', '"no-port"'),
            'cluster.shards[1]: expected HOST:PORT (port 0..65535), got "no-port"',
        ),
        (('"10.0.0.2:7601"', "7601"), 'cluster.shards[1]: expected "local" or HOST:PORT, got 7601'),
        (('shards = ["local", "10.0.0.2:7601"]', "shards = []"), "cluster.shards: expected a list of 1.."),
        (('shards = ["local", "10.0.0.2:7601"]\n', ""), "cluster.shards: missing"),
        (('control = "127.0.0.1:7700"', 'control = "localhost"'), "cluster.control: expected HOST:PORT"),
        (('root = "data"', "root = 5"), "cluster.root: expected a string, got 5"),
        (("[cluster]\n", "[cluster]\n[extra]\n"), "[extra]: unknown section; valid sections: [cluster]"),
        (("[cluster]\n", "[cluster\n"), "invalid TOML: "),
    ],
)
def test_cluster_file_errors_name_the_field(tmp_path, edit, expected):
    old, new = edit
    assert old in CLUSTER
    path = _write(tmp_path, CLUSTER.replace(old, new, 1), "cluster.toml")
    with pytest.raises(ConfigError) as info:
        ClusterSpec.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message


def test_cluster_limits_are_the_library_limits(tmp_path):
    text = "[cluster]\nshards = [" + ", ".join(['"local"'] * (limits.shards_max + 1)) + "]\n"
    path = _write(tmp_path, text, "cluster.toml")
    with pytest.raises(
        ConfigError, match=rf"cluster\.shards: expected a list of 1\.\.{limits.shards_max} entries"
    ):
        ClusterSpec.load(path)


def test_the_documented_examples_load(tmp_path):
    """docs/operations.md's chain.toml and cluster file are valid as printed."""
    doc = (Path(__file__).parents[1] / "docs" / "operations.md").read_text()
    chain_toml, cluster_toml = re.findall(r"```toml\n(.*?)```", doc, re.S)[:2]
    config = ChainConfig.load(_write(tmp_path, chain_toml.replace('"<hex>"', f'"{KEY_A.hex()}"')))
    assert config.genesis_accounts[0].roles == ("registrar", "committee")
    spec = ClusterSpec.load(_write(tmp_path, cluster_toml, "cluster.toml"))
    assert spec.shards == (None, "10.0.0.2:7601") and spec.coordinator_key_file == tmp_path / "coord.key"
