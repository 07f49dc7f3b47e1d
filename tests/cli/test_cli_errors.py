"""Every ``tierchain`` command fails with one line on stderr and a named exit code, never a traceback.

The command tree is walked (groups recursively), so a command added later is covered
without touching this file. Each command is run in-process (``CliRunner``) with no
arguments, an unknown option, an extra positional, and each of its parameters given
garbage (malformed hex, a nonexistent directory, a wrong-length id): a value its type
refuses must give exit code 2; one it accepts must still fail (or succeed) without a
traceback or an "internal error". Two subprocess runs check the console entry point.
"""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from tierchain import crypto
from tierchain.cli.main import main

ENV = {"TIERCHAIN_PASSPHRASE": "test pass"}
CORE = str(Path(__file__).parents[2] / "core")


pytestmark = pytest.mark.usefixtures("fast_kdf")


def walk(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and group under ``cmd`` with its path of names."""
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = [(p, c) for p, c in walk(main) if p and not isinstance(c, click.Group)]
GROUPS = [(p, c) for p, c in walk(main) if isinstance(c, click.Group)]


def _dead_url() -> str:
    """A loopback URL nothing listens on: a command that reaches for a node fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class World:
    """Values for parameters: ``valid`` finds one a parameter's type accepts, ``garbage`` ones to try."""

    def __init__(self, tmp: Path) -> None:
        self.dir, self.file = tmp / "empty-dir", tmp / "empty-file"
        self.dir.mkdir()
        self.file.write_bytes(b"")
        self.key_file = (
            tmp / "user.key"
        )  # opens with ENV's passphrase: signing commands get as far as the node
        crypto.save_key_file(self.key_file, crypto.KeyPair.generate(), ENV["TIERCHAIN_PASSPHRASE"])
        self.missing = str(tmp / "no" / "such" / "dir")
        self.url = _dead_url()
        self.candidates = [
            str(self.dir),
            str(self.key_file),
            str(self.file),
            "1",
            "00" * 32,
            "00" * 16,
            "bal/" + "00" * 32,
            "127.0.0.1:0",
            "invoice:" + "00" * 32,  # a finance document reference
            "2027",  # a year (bills calendars)
            "2027-06-30",  # a date (bills maturities, reconciliation days)
            "x",
        ]

    def valid(self, param: click.Parameter) -> str:
        if isinstance(param.type, click.Choice):
            return str(param.type.choices[0])
        for value in self.candidates:
            if _accepts(param, value):
                return value
        raise AssertionError(
            f"no candidate value fits {param.name} ({param.type!r}): extend World.candidates"
        )

    def garbage(self) -> list[tuple[str, str]]:
        return [("malformed hex", "zz"), ("nonexistent directory", self.missing), ("wrong-length hex", "00")]


def _accepts(param: click.Parameter, value: str) -> bool:
    try:
        param.type.convert(value, param, None)
    except click.BadParameter:
        return False
    return True


def _prefix(path: tuple[str, ...], world: World, group_args: dict | None = None) -> list[str]:
    """The command path, with a dead --node for every group on it that has one (finance), and
    ``group_args[group path]`` after the group's name (options of that group)."""
    group_args = group_args or {}
    argv: list[str] = [*group_args.get((), [])]
    cmd: click.Command = main
    for i, name in enumerate(path):
        assert isinstance(cmd, click.Group)
        argv.append(name)
        cmd = cmd.commands[name]
        if isinstance(cmd, click.Group):
            if any(p.name == "url" and isinstance(p, click.Option) for p in cmd.params):
                argv += ["--node", world.url]
            argv += group_args.get(path[: i + 1], [])
    return argv


def _argv(
    path,
    cmd: click.Command,
    world: World,
    override: dict[str, str] | None = None,
    group_args: dict | None = None,
) -> list[str]:
    """Required parameters given valid values, then ``override`` (parameter name -> text)."""
    override = override or {}
    options: list[str] = []
    arguments: list[str] = []
    for param in cmd.params:
        if param.name in override:
            value = override[param.name]
        elif param.required:
            value = world.valid(param)
        else:
            continue
        if isinstance(param, click.Option):
            options += [param.opts[0], value]
        else:
            arguments.append(value)
    return [*_prefix(path, world, group_args), *options, *arguments]


def _invoke(argv: list[str]) -> Result:
    return CliRunner(env=ENV).invoke(main, argv, input="", catch_exceptions=True)


def _check_one_line(r: Result, argv: list[str]) -> None:
    """No traceback, no escaped exception, and a failure is exactly one "error:" line on stderr."""
    shown = f"{argv}: exit {r.exit_code}\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}"
    assert r.exception is None or isinstance(r.exception, SystemExit), shown + f"\n{r.exception!r}"
    assert "Traceback" not in r.output, shown
    assert "internal error" not in r.stderr, shown
    if r.exit_code != 0:
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), shown


def _usage_error(r: Result, argv: list[str]) -> None:
    _check_one_line(r, argv)
    assert r.exit_code == 2, f"{argv}: expected exit 2, got {r.exit_code}: {r.output!r}"


def test_the_walk_reaches_every_group() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"init", "node run", "tx send", "state get", "balance", "verify", "cluster status"} <= names
    assert {"shard serve"} <= names and any(n.startswith("finance ") for n in names)
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("path,group", GROUPS, ids=[" ".join(p) or "tierchain" for p, _ in GROUPS])
def test_a_group_without_a_command_prints_its_help(tmp_path, path, group) -> None:
    argv = list(path)
    r = _invoke(argv)
    assert r.exit_code == 2 and "Usage:" in r.stderr and "Traceback" not in r.output, r.output
    r = _invoke([*argv, "no-such-command"])
    _usage_error(r, argv)


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, monkeypatch, path, cmd) -> None:
    monkeypatch.chdir(tmp_path)  # a garbage relative path lands here
    world = World(tmp_path)
    if any(p.required for p in cmd.params):
        argv = _prefix(path, world)
        _usage_error(_invoke(argv), argv)  # no arguments
    base = _argv(path, cmd, world)
    for argv in ([*base, "--no-such-option"], [*base, "garbage-positional"]):
        _usage_error(_invoke(argv), argv)
    for param in cmd.params:
        if isinstance(param, click.Option) and (param.is_flag or param.name in ("help", "version")):
            continue
        for _what, bad in world.garbage():
            argv = _argv(path, cmd, world, {param.name: bad})
            if not _accepts(param, bad):
                r = _invoke(argv)
                _usage_error(r, argv)
                hint = param.get_error_hint(click.Context(cmd))
                assert hint in r.stderr, r.stderr  # names the parameter
            elif any(p.required for p in cmd.params):
                # Accepted text (a name, a path to create): the command runs against an empty
                # directory and a dead node, and must still end in one line, not a traceback.
                _check_one_line(_invoke(argv), argv)


def _group_options(group: click.Group) -> list[click.Option]:
    return [
        p
        for p in group.params
        if isinstance(p, click.Option) and not p.is_flag and p.name not in ("help", "version")
    ]


OPTION_GROUPS = [(p, g) for p, g in GROUPS if _group_options(g)]


@pytest.mark.parametrize(
    "path,group", OPTION_GROUPS, ids=[" ".join(p) or "tierchain" for p, _ in OPTION_GROUPS]
)
def test_bad_group_options_are_one_line(tmp_path, monkeypatch, path, group) -> None:
    """A group's own options (``tierchain --log-level``, ``finance --node/--key``) given garbage, in
    front of each of its commands: refused with exit 2, or run to a one-line end."""
    monkeypatch.chdir(tmp_path)
    world = World(tmp_path)
    options = _group_options(group)
    # Options without a default (finance --key) get a valid value; the others keep their defaults.
    valid = [
        arg
        for p in options
        if not isinstance(p.default, str | int | float)  # no default (None, or click's UNSET)
        for arg in (p.opts[0], world.valid(p))
    ]
    for leaf_path, leaf in COMMANDS:
        if leaf_path[: len(path)] != path or not any(p.required for p in leaf.params):
            continue
        for param in options:
            for _what, bad in world.garbage():
                argv = _argv(leaf_path, leaf, world, group_args={path: [*valid, param.opts[0], bad]})
                r = _invoke(argv)
                if not _accepts(param, bad):
                    _usage_error(r, argv)
                else:
                    _check_one_line(r, argv)


def test_hex_and_directories_are_typed(tmp_path) -> None:
    """The two mistakes of the issue: hex is parsed by click (exit 2) before any key or node."""
    world = World(tmp_path)
    for argv in (
        ["tx", "send", "transfer", "--key", str(world.file), "--to", "zz", "--amount", "1"],
        ["tx", "send", "transfer", "--key", str(world.file), "--to", "00" * 32, "--amount", "-1"],
        ["tx", "send", "register", "--key", str(world.file), "--new-key", "00" * 31],
        ["state", "get", str(world.dir), "bal/zz"],
        ["state", "get", world.missing, "bal/" + "00" * 32],
        ["block", "show", str(world.dir), "abc"],
        ["balance", "--node", world.url, "zz"],
        ["balance", str(world.dir), "--node", world.url, "00" * 32],
        ["node", "run", str(world.dir), "--listen", "nohost"],
    ):
        _usage_error(_invoke(argv), argv)


def test_runtime_failures_are_one_line_and_exit_1(tmp_path) -> None:
    world = World(tmp_path)
    for argv in (
        ["state", "get", str(world.dir), "bal/" + "00" * 32],  # no database
        ["block", "show", str(world.dir)],
        ["verify", str(world.dir)],
        ["balance", "--node", world.url, "00" * 32],  # nothing listens
        ["tx", "send", "transfer", "--key", str(world.file), "--to", "00" * 32, "--amount", "1"],
    ):
        r = _invoke(argv)
        _check_one_line(r, argv)
        assert r.exit_code == 1, (argv, r.output)
    r = _invoke(["node", "run", str(world.dir)])  # no chain.toml: a configuration error
    _check_one_line(r, ["node", "run"])
    assert r.exit_code == 2 and "ConfigError" in r.stderr, r.output


def test_a_bug_is_one_line_unless_debug(tmp_path, monkeypatch) -> None:
    import tierchain.engine.verify

    def boom(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.setattr(tierchain.engine.verify, "verify_chain", boom)
    r = _invoke(["verify", str(tmp_path)])
    assert r.exit_code == 1 and r.stderr.splitlines() == [
        "error: internal error: RuntimeError: boom (run with --log-level debug for the traceback)"
    ], r.output
    r = _invoke(["--log-level", "debug", "verify", str(tmp_path)])
    assert isinstance(r.exception, RuntimeError)  # propagates: the console shows its traceback


def test_cluster_key_file_and_busy_control_port_fail_while_running(tmp_path) -> None:
    """Exit 1, not 2: the arguments and the cluster file are fine; the key does not open, or
    the control endpoint is taken (cli.errors: 2 usage/config, 1 runtime)."""
    from cluster_world import PASS, _cluster_file

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        spec = _cluster_file(tmp_path, ["local"], control_port=busy.getsockname()[1])
        argv = ["cluster", "start", str(spec)]
        r = CliRunner(env={"TIERCHAIN_PASSPHRASE": PASS}).invoke(main, argv)
    _check_one_line(r, argv)
    assert r.exit_code == 1 and "in use" in r.stderr, r.output
    for argv in (["cluster", "start", str(spec)], ["shard", "serve", "--cluster", str(spec), "--index", "0"]):
        r = CliRunner(env={"TIERCHAIN_PASSPHRASE": "not the passphrase"}).invoke(main, argv)
        _check_one_line(r, argv)
        assert r.exit_code == 1 and "node.key" in r.stderr, r.output


def test_version_comes_from_package_metadata() -> None:
    r = _invoke(["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"tierchain {importlib.metadata.version('tierchain')}"


def _console(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, **ENV, PYTHONPATH=CORE)
    return subprocess.run(
        [sys.executable, "-m", "tierchain.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
    )


def test_console_entry_point_end_to_end(tmp_path) -> None:
    """The issue's examples through the real entry point: one line, no traceback."""
    done = _console("tx", "send", "transfer", "--to", "zz")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Invalid value for '--to': a public key"), lines
    assert CliRunner(env=ENV).invoke(main, ["init", str(tmp_path / "n")]).exit_code == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        host, port = busy.getsockname()
        done = _console("node", "run", str(tmp_path / "n"), "--listen", f"{host}:{port}")
    errors = [line for line in done.stderr.splitlines() if not line.startswith("{")]  # JSON log lines
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1 and errors[0].startswith("error: "), done.stderr
