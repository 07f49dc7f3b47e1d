"""The replicator in the background (``coordinator.StepLoop``; docs/sharding.md "Replicated
records"): on a 2-shard finance cluster (tests/finance_cluster_world.py) it copies the
committee's records to shard 1 with nobody calling ``step()``, stops when told, backs off
(logging each failure) while its steps fail or are refused, and then carries on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

import pytest

from finance_cluster_world import BASE, COORD, KEYS, NODE, N, ShardLedger
from finance_world import SECRET, kp
from tierchain.apps.coordinator import Replicator, StepLoop
from tierchain.apps.finance.client import Finance
from tierchain.engine.route import PRIMARY_SHARD
from tierchain.sharding.cluster import Cluster, ShardUnavailable

INTERVAL = 0.02
WAIT_S = 30


def _wait(cond, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _admit(primary: Finance, name: str) -> bytes:
    done = primary.party(NODE).propose_admit(name, ("supplier",), KEYS[name].public_key)
    assert done.ok, (name, done.code)
    return primary.org_id(name)


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path / "cluster", BASE, NODE.seed, N) as cl:
        yield cl


@pytest.fixture
def loops():
    """Every loop a test starts, stopped at its end whatever happens."""
    started: list[StepLoop] = []
    yield started
    for loop in started:
        loop.stop(timeout=WAIT_S)
        assert not loop.running


def test_the_background_replicator_copies_records_until_stopped(cluster, loops):
    primary = Finance(ShardLedger(cluster, PRIMARY_SHARD), SECRET)
    other = Finance(ShardLedger(cluster, 1), SECRET)
    rep = Replicator(cluster, COORD)
    rep.stop()  # before start: nothing to stop
    loops.append(rep)
    rep.start(INTERVAL)
    assert rep.running and "replicator" in [t.name for t in threading.enumerate()]
    with pytest.raises(RuntimeError, match="already running"):
        rep.start(INTERVAL)

    # an organization admitted on the primary reaches shard 1, nobody calling step()
    core = _admit(primary, "CoreCo")
    admitted_at = cluster.call(PRIMARY_SHARD, "height")
    _wait(lambda: other.org(core) is not None, "the organization was not copied")
    assert other.org(core) == primary.org(core)
    assert other.key(KEYS["CoreCo"].public_key) == primary.key(KEYS["CoreCo"].public_key)
    _wait(lambda: rep.last_idle is not None and rep.last_idle.height >= admitted_at, "no idle step")
    assert rep.last_idle.records == rep.last.records > 0 and rep.errors == 0

    # a key added later arrives too
    second = kp("repl-loop CoreCo second key")
    assert primary.party(KEYS["CoreCo"]).add_key(second.public_key).ok
    _wait(lambda: other.key(second.public_key) is not None, "the added key was not copied")
    assert other.key(second.public_key).org == core

    # stopped: no further step, no further copy
    t0 = time.monotonic()
    rep.stop()
    assert time.monotonic() - t0 < WAIT_S and not rep.running
    rep.stop()  # twice: harmless
    last = rep.last
    tier1 = _admit(primary, "Tier1")
    time.sleep(20 * INTERVAL)
    assert other.org(tier1) is None and rep.last is last
    # ... which a step would have made (the stop, not a slow loop, kept it back)
    assert rep.sync(timeout=WAIT_S).idle and other.org(tier1) == primary.org(tier1)


class Flaky:
    """``cluster`` whose ``call`` raises for its first ``failures`` calls (a shard that is down)."""

    def __init__(self, cluster: Cluster, failures: int) -> None:
        self._cluster, self.left = cluster, failures
        self.failed_at: list[float] = []

    def __getattr__(self, name: str):
        return getattr(self._cluster, name)

    def call(self, *args, **kwargs):
        if self.left > 0:
            self.left -= 1
            self.failed_at.append(time.monotonic())
            raise ShardUnavailable("injected: shard 0 is down")
        return self._cluster.call(*args, **kwargs)


def test_failing_steps_back_off_are_logged_and_the_loop_carries_on(cluster, loops, caplog):
    caplog.set_level(logging.INFO, logger="tierchain.coordinator")
    primary = Finance(ShardLedger(cluster, PRIMARY_SHARD), SECRET)
    other = Finance(ShardLedger(cluster, 1), SECRET)
    core = _admit(primary, "CoreCo")
    flaky = Flaky(cluster, failures=5)
    rep = Replicator(flaky, COORD)
    rep.backoff_max = 0.2
    loops.append(rep)
    rep.start(0.05)
    _wait(lambda: other.org(core) is not None, "no copy after the failures")
    assert flaky.left == 0 and len(flaky.failed_at) == 5  # each failed step: its first call

    failed = [r for r in caplog.records if r.getMessage().startswith("replicator: step failed")]
    assert len(failed) == 5
    assert all(isinstance(r.exc_info[1], ShardUnavailable) for r in failed)  # with the exception
    assert all(r.threadName == "replicator" for r in failed)
    delays = [r.args[2] for r in failed]
    assert delays == [0.05, 0.1, 0.2, 0.2, 0.2]  # doubling from the interval up to backoff_max
    gaps = [b - a for a, b in zip(flaky.failed_at, flaky.failed_at[1:], strict=False)]
    assert all(gap >= 0.9 * d for gap, d in zip(gaps, delays, strict=False)), gaps
    _wait(lambda: rep.errors == 0 and rep.last_idle is not None, "the loop did not settle")
    assert any("went through after 5 failed" in r.getMessage() for r in caplog.records)
    assert rep.last_error.startswith("ShardUnavailable: injected")


def test_refused_steps_back_off_too(cluster, loops, caplog):
    caplog.set_level(logging.INFO, logger="tierchain.coordinator")
    primary = Finance(ShardLedger(cluster, PRIMARY_SHARD), SECRET)
    core = _admit(primary, "CoreCo")
    rep = Replicator(cluster, NODE)  # no coordinator role: every replicate tx is refused
    loops.append(rep)
    rep.start(0.05)
    _wait(lambda: rep.errors >= 3, "refusals were not counted")
    assert rep.last_error.startswith("refused: {'UNAUTHORIZED'")
    time.sleep(1.0)
    # backed off: 0.05, 0.1, 0.2, 0.4, 0.8 s between steps, not a step per block
    rep.stop()
    assert rep.errors <= 7, rep.errors
    refused = [r for r in caplog.records if r.getMessage().startswith("replicator: step refused")]
    assert len(refused) == rep.errors
    assert Finance(ShardLedger(cluster, 1), SECRET).org(core) is None


@dataclasses.dataclass
class Tick:
    n: int
    failed: int = 0

    @property
    def idle(self) -> bool:
        return self.n >= 3


class Ticker(StepLoop):
    """A driver that is none of the module's: busy for two steps, then idle."""

    loop_name = "test-ticker"

    def __init__(self) -> None:
        self.n = 0

    def step(self) -> Tick:
        self.n += 1
        return Tick(self.n)


def test_any_driver_with_an_idle_report_runs_in_the_loop():
    ticker = Ticker()
    ticker.start(interval=60)  # busy steps back to back, then a minute's sleep
    try:
        _wait(lambda: ticker.last_idle is not None, "the ticker did not get idle")
        assert "test-ticker" in [t.name for t in threading.enumerate()]
        assert ticker.n == 3 and ticker.last == Tick(3) and ticker.errors == 0
        t0 = time.monotonic()
        ticker.stop()  # wakes the sleep
        assert time.monotonic() - t0 < 5 and not ticker.running
        ticker.start(interval=60)  # again, after a stop
        _wait(lambda: ticker.n == 4, "no step after a restart")
        assert ticker.until_idle(timeout=5) == Tick(5)  # stepping in the caller's thread too
    finally:
        ticker.stop()
        ticker.stop()
    assert not ticker.running
