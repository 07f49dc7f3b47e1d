"""The README's commands depend only on what the project installs, not on the caller's shell."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_lint_runs_with_a_bare_path() -> None:
    """cython-lint runs pycodestyle as a subprocess found on PATH: the Makefile must put .venv/bin there.

    A shell with only the system directories on PATH stands for a fresh machine where no linter was
    installed by hand.
    """
    if not (ROOT / ".venv" / "bin" / "cython-lint").exists():
        pytest.skip("no .venv (run `make setup`)")
    env = {"HOME": os.environ.get("HOME", "/tmp"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    assert shutil.which("pycodestyle", path=env["PATH"]) is None, "the bare PATH must not hold a linter"
    # The native builds are taken as they are (`-o`): a working tree whose sources are newer
    # than its build would rebuild them here, and the bare PATH has no cargo (a fresh clone's
    # build is never out of date).
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.native", "-o", ".venv/.tierchain", "lint-cython"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
