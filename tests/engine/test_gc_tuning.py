"""The node process's collector settings (engine/gc_tuning.py): applied by the entry points."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from tierchain.engine import gc_tuning


@pytest.fixture
def restore_gc():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_freezes_what_exists_and_raises_the_thresholds(restore_gc):
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    gc_tuning.tune()
    assert gc.get_threshold() == gc_tuning.THRESHOLDS
    assert gc.get_freeze_count() > 1000  # the modules and objects loaded so far
    # Cycles are still collected: a full collection finds one.
    a: list = []
    a.append(a)
    del a
    assert gc.collect() >= 1


def test_the_switch_leaves_the_collector_alone(restore_gc, monkeypatch):
    monkeypatch.setenv(gc_tuning.ENV, "0")
    gc.set_threshold(700, 10, 10)
    gc_tuning.tune()
    assert gc.get_threshold() == (700, 10, 10)


def test_the_cli_tunes_its_process(tmp_path):
    """Every ``tierchain`` command runs in a tuned process (here: ``keygen``)."""
    code = (
        "import gc\n"
        "from tierchain.cli.main import main\n"
        f"main(['keygen', {str(tmp_path / 'k.key')!r}, '--passphrase-env', 'TC_TEST_PASS'],"
        " standalone_mode=False)\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 0)\n"
    )
    env = {**os.environ, "TC_TEST_PASS": "a passphrase of some length"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == f"{gc_tuning.THRESHOLDS} True"
