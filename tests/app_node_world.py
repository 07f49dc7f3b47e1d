"""A real node for the CLI tests of finance's apps, and the in-process CLI helpers they share.

``AppNode(tmp, apps, orgs, chain_id=...)``: ``tierchain init --app APP`` (one or more apps; the
first is the command group ``args`` addresses), a key file per organization (``keygen``), and
``tierchain node run`` on a free loopback port in a subprocess (``PYTHONPATH=core``), waited
for; ``admit()`` admits the organizations with their roles through the CLI (``finance
propose-admit``, or the app's own command), signed by the node's key. As a context manager it
always stops the node, prints the tail of its stderr if it did not exit cleanly, and then
fails. One node serves a test module::

    @pytest.fixture(scope="module")
    def net(tmp_path_factory):
        with fast_key_files(), AppNode(tmp_path_factory.mktemp("x-cli"), "x", ORGS) as n:
            n.admit()
            yield n

``Cli(env)``: ``tierchain`` run in process by click's CliRunner: ``run``, ``ok`` (exit 0, the
JSON it printed), ``one_line`` (a failure: its exit code, one line on stderr, no traceback),
``refused`` (exit 1, nothing on stdout) and ``bad_argument`` (exit 2). ``CLI`` and the
module-level ``run``/``ok``/``one_line``/``refused``/``bad_argument`` use ``ENV`` (the key
passphrase alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conftest import fast_kdf, free_port, stop, wait_serving
from tierchain.cli.main import main

ENV: Mapping[str, str] = {"TIERCHAIN_PASSPHRASE": "test pass"}
CORE = Path(__file__).parents[1] / "core"


class Cli:
    """``tierchain`` in process with ``env`` (each call may give its own); stdin empty unless given."""

    def __init__(self, env: Mapping[str, str] = ENV) -> None:
        self.env = env

    def run(self, *args: str, env: Mapping[str, str] | None = None, input: str = "") -> Result:
        return CliRunner(env=self.env if env is None else env).invoke(main, list(args), input=input)

    def ok(self, *args: str) -> Any:
        r = self.run(*args)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    def one_line(
        self,
        exit_code: int,
        what: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdout_empty: bool = True,
    ) -> Result:
        """A failure: exit ``exit_code``, one line on stderr saying ``what``, no traceback, and
        (``stdout_empty``) nothing on stdout."""
        r = self.run(*args, env=env)
        assert r.exit_code == exit_code, r.output
        assert r.stderr.count("\n") == 1 and what in r.stderr and "Traceback" not in r.output, r.output
        if stdout_empty:
            assert r.stdout == "", r.stdout
        return r

    def refused(self, code: str, *args: str) -> Result:
        """A runtime refusal: one line on stderr naming ``code``, exit 1, nothing on stdout."""
        return self.one_line(1, code, *args)

    def bad_argument(self, what: str, *args: str) -> Result:
        """A bad argument: one line on stderr saying ``what``, exit 2."""
        return self.one_line(2, what, *args, stdout_empty=False)


CLI = Cli()
run, ok, one_line, refused, bad_argument = CLI.run, CLI.ok, CLI.one_line, CLI.refused, CLI.bad_argument


@contextlib.contextmanager
def fast_key_files() -> Iterator[None]:
    """conftest's ``fast_kdf`` (function-scoped) for as long as the block runs: key files sealed
    at the minimal KDF cost, for a module's node and all its tests."""
    with pytest.MonkeyPatch.context() as mp:
        fast_kdf.__wrapped__(mp)  # the fixture's own function: one place says what is patched
        yield


class AppNode:
    """A chain running ``apps``, served by ``tierchain node run`` on 127.0.0.1.

    ``orgs`` maps each organization to its role or roles; ``key(name)`` is its key file
    (``key("node")``: the node's, which admits them) and ``pub[name]`` its public key.
    ``args(who, ...)`` is a command of the first app's group signed by ``who`` (``None``: no
    key), the connection options after the command's words (``options_last``) or before them.
    """

    def __init__(
        self,
        tmp: Path,
        apps: str | Sequence[str],
        orgs: Mapping[str, str | Sequence[str]],
        *,
        chain_id: int = 5,
        cli: Cli = CLI,
        options_last: bool = True,
    ) -> None:
        self.tmp, self.dir = tmp, tmp / "node"
        self.apps = (apps,) if isinstance(apps, str) else tuple(apps)
        self.app, self.orgs, self.chain_id = self.apps[0], orgs, chain_id
        self.cli, self.options_last = cli, options_last
        app_args = [x for app in self.apps for x in ("--app", app)]
        r = cli.run("init", str(self.dir), "--chain-id", str(chain_id), "--block-interval-ms", "5", *app_args)
        assert r.exit_code == 0, r.output
        self.pub: dict[str, str] = {}
        for name in orgs:
            r = cli.run("keygen", str(tmp / f"{name}.key"))
            assert r.exit_code == 0, r.output
            self.pub[name] = r.stdout.strip().splitlines()[-1]
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.stderr = tmp / "node.stderr"
        env = dict(os.environ, **cli.env, PYTHONPATH=str(CORE))
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tierchain.cli.main", "node", "run", str(self.dir), "--listen",
                 f"127.0.0.1:{port}"],
                stderr=err,
                env=env,
            )  # fmt: skip
        try:
            self.client = wait_serving(self.url, self.proc, timeout_s=30)
        except BaseException:
            stop(self.proc)
            raise

    def __enter__(self) -> AppNode:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        code = self.close()
        if code != 0:
            print(self.stderr.read_text(errors="replace")[-8000:])
        assert exc_type is not None or code == 0, f"the node exited with {code}"

    def close(self) -> int:
        return stop(self.proc)

    def admit(self, via: str = "finance") -> None:
        """Each organization admitted with its roles by ``VIA propose-admit``, the node signing."""
        for name, roles in self.orgs.items():
            role_list = (roles,) if isinstance(roles, str) else roles
            role_args = [x for role in role_list for x in ("--role", role)]
            admit = ["propose-admit", name, *role_args, "--org-key", self.pub[name]]
            if via == "finance":
                assert self.finance("node", *admit)["code"] == "OK"
            else:
                assert via == self.app, via
                assert self.do("node", *admit)["code"] == "OK"

    def finance(self, who: str, *args: str) -> Any:
        """``tierchain finance ARGS`` signed by ``who``; it must exit 0: the JSON it printed."""
        node = ["--node", self.url, "--chain-id", str(self.chain_id), "--key", self.key(who)]
        return self.cli.ok("finance", *node, *args)

    def key(self, who: str) -> str:
        return str(self.dir / "node.key" if who == "node" else self.tmp / f"{who}.key")

    def args(self, who: str | None, *args: str) -> list[str]:
        conn = ["--node", self.url, *(["--key", self.key(who)] if who else [])]
        return [self.app, *args, *conn] if self.options_last else [self.app, *conn, *args]

    def do(self, who: str | None, *args: str) -> Any:
        """``args(who, ...)`` run; it must exit 0: the JSON it printed."""
        return self.cli.ok(*self.args(who, *args))

    def read_only(self, *args: str) -> Any:
        return self.cli.ok(self.app, "--node", self.url, *args)

    def file(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path
