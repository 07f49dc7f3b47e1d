"""Shared set-up for the tests of apps built on finance: the finance consortium on a chain
that runs them (``sharing`` by default; any app set that includes finance: ``apps=``).

``SharingLedger`` is ``finance_world.MemLedger`` (blocks executed in memory by the real
executor, block time settable) with the chain's app set, prefix scans, and receipts'
codes named by the app that owns them (``code_of``). ``world(crypto, apps=...)`` admits
finance's organizations plus a regulator, an investor, a rating agency and an auditor, and
returns their keys and ids. ``chain_config`` is the genesis a real ``Chain`` takes for the
same world.
"""

from __future__ import annotations

import dataclasses

from finance_world import ORGS, MemLedger, config, kp, members
from tierchain.apps.finance.client import Finance
from tierchain.config import ChainConfig
from tierchain.crypto import DEFAULT_SUITE_NAME, KeyPair
from tierchain.engine import apps
from tierchain.engine.execute import execute_block
from tierchain.errors import Reject
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

SHARING_APPS = ("accounts", "xshard", "finance", "sharing")
EXTRA_ORGS = {
    "Regulator": ("regulator",),
    "FundX": ("investor",),
    "RateCo": ("rating_agency",),
    "AuditCo": ("auditor",),
}
ALL_ORGS = {**ORGS, **EXTRA_ORGS}


def chain_config(apps: tuple[str, ...] = SHARING_APPS, **overrides) -> ChainConfig:
    """The finance test consortium's genesis, running ``apps`` (default: with sharing)."""
    return config(apps=apps, **overrides)


class SharingLedger(MemLedger):
    """``MemLedger`` running the sharing app; ``send`` names sharing codes."""

    def __init__(self, cfg: ChainConfig, timestamp_ms: int = 1_000_000) -> None:
        super().__init__(cfg, timestamp_ms)
        self.app_set = apps.resolve(cfg.apps)
        self.sent: list[bytes] = []  # every tx sent, in order (the chain's full data)

    def block(self, txs: list[bytes]) -> list:
        batch = decode_batch(frame(txs), suite=self.suite)
        assert batch.ok.all()
        self.height += 1
        self.sent += txs
        result = execute_block(
            batch, self.state.get, self.height, self.timestamp_ms, app_set=self.app_set, suite=self.suite
        )
        for k, v in result.writes.items():
            if v is None:
                self.state.pop(k, None)
            else:
                self.state[k] = v
        return result.receipts

    def state_scan(self, prefix: bytes, limit: int = 1000, after: bytes = b"") -> list[tuple[bytes, bytes]]:
        keys = sorted(k for k in self.state if k.startswith(prefix) and k > after)
        return [(k, self.state[k]) for k in keys[:limit]]

    def send(self, tx: bytes, timeout_s: float) -> tuple[object, object]:
        receipt = self.block([tx])[0]
        return code_of(receipt.code, self.app_set), receipt


def code_of(code: int, app_set: apps.AppSet | None = None) -> object:
    """A receipt's code as the member of the enum of the app that owns it (default: the
    sharing world's apps), or the engine's ``Reject``."""
    for app in (app_set or apps.resolve(SHARING_APPS)).apps:
        if app.rejects is not None and code in app.rejects._value2member_map_:
            return app.rejects(code)
    return Reject(code)


@dataclasses.dataclass
class World:
    ledger: SharingLedger
    fin: Finance
    keys: dict[str, KeyPair]  # each organization's first key, in the ledger's suite
    node: KeyPair  # registrar and committee
    committee2: KeyPair

    def org(self, name: str) -> bytes:
        return self.fin.org_id(name)


def world(
    crypto: str = DEFAULT_SUITE_NAME, timestamp_ms: int = 1_000_000, apps: tuple[str, ...] = SHARING_APPS
) -> World:
    """A fresh ledger running ``apps`` with every organization of ``ALL_ORGS`` admitted
    (threshold 1)."""
    ledger = SharingLedger(chain_config(apps, crypto=crypto), timestamp_ms)
    fin = Finance(ledger)
    m = members(crypto)
    keys = {**m.keys, **{name: kp(name, crypto) for name in EXTRA_ORGS}}
    node = fin.party(m.node)
    for name, roles in ALL_ORGS.items():
        r = node.propose_admit(name, roles, keys[name].public_key)
        assert r.ok, (name, r.code)
    return World(ledger, fin, keys, m.node, m.committee2)
