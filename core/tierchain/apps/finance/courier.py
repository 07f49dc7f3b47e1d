"""The claim courier: carries documents' claims to their lineage's shard (apps/finance/claims.py).

Stateless like the cross-shard coordinator and the replicator (``tierchain.apps.coordinator``),
signing with the same ``coordinator`` role. Each ``step()``:

1. reads every pending claim (``fg/``) of every shard;
2. per lineage shard, writes the claims it does not hold yet (``fe/``) with ``fin.carry``
   and waits for the commits;
3. per document shard, deletes the pending claims its lineage shard now holds (whatever
   the value there: the first carried claim stays), again with ``fin.carry``.

Killing it at any point loses nothing: a pending claim stays until its lineage shard holds
it, and carrying one twice is harmless (``fin.carry`` keeps what is there).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Any

from tierchain.apps.coordinator import StepLoop, scan_all
from tierchain.apps.finance import claims
from tierchain.apps.finance import codes as c
from tierchain.crypto import KeyPair
from tierchain.engine.route import route_keys

PENDING_PREFIX = b"fg/"
PENDING_KEY_BYTES = len(c.pending_claim_key(0, bytes(32), bytes(c.lineage_tag_bytes)))


@dataclasses.dataclass
class CarryReport:
    """What one step found and did."""

    pending: int = 0  # pending claims found, every shard
    carried: Counter = dataclasses.field(default_factory=Counter)  # claims written, by lineage shard
    cleared: Counter = dataclasses.field(default_factory=Counter)  # pending claims deleted, by shard
    failed: Counter = dataclasses.field(default_factory=Counter)  # by reject name
    malformed: int = 0  # pending records that are no claim (left where they are)

    @property
    def idle(self) -> bool:
        """Nothing was pending."""
        return not self.pending and not self.failed


class ClaimCourier(StepLoop):
    """Carries pending claims to their lineage's shard (see the module docstring); in the
    background with ``start()``/``stop()`` (``coordinator.StepLoop``)."""

    loop_name = "claim-courier"
    not_idle = "claims still pending"

    def __init__(self, cluster: Any, key: KeyPair, *, commit_timeout: float = 30.0) -> None:
        self.cluster, self.key, self.commit_timeout = cluster, key, commit_timeout

    def step(self) -> CarryReport:
        report = CarryReport()
        n = self.cluster.n_shards
        pending = {s: scan_all(self.cluster, s, PENDING_PREFIX) for s in range(n)}
        for s, entries in pending.items():
            claims_ = [
                (k, v) for k, v in entries if len(k) == PENDING_KEY_BYTES and len(v) == claims.CLAIM_BYTES
            ]
            report.malformed += len(entries) - len(claims_)
            pending[s] = claims_
        report.pending = sum(len(p) for p in pending.values())
        if not report.pending:
            return report
        # where each pending claim goes
        bound: dict[int, list[tuple[int, bytes, bytes, bytes]]] = defaultdict(list)
        for src, entries in pending.items():
            if not entries:
                continue
            dest = [claims.carried_key(k) for k, _ in entries]
            for (key, value), fe, dst in zip(
                entries, dest, route_keys(dest, n, self.cluster.placement).tolist(), strict=True
            ):
                bound[dst].append((src, key, fe, value))
        # 2. write what the lineage shard lacks
        for dst, items in bound.items():
            held = self.cluster.call(dst, "state_get_many", [fe for _, _, fe, _ in items])
            puts = [
                (fe, value)
                for (_, _, fe, value), h in zip(items, held, strict=True)
                if h is None or claims.overrides(h, value)
            ]
            self._ship(dst, [(chunk, []) for chunk in _chunks(puts)], report)
            report.carried[dst] += len(puts)
        # 3. clear what the lineage shard now holds
        clear: dict[int, list[bytes]] = defaultdict(list)
        for dst, items in bound.items():
            held = self.cluster.call(dst, "state_get_many", [fe for _, _, fe, _ in items])
            for (src, key, _, value), h in zip(items, held, strict=True):
                if h is not None and not claims.overrides(h, value):
                    clear[src].append(key)
        for src, keys in clear.items():
            self._ship(src, [([], chunk) for chunk in _chunks(keys)], report)
            report.cleared[src] += len(keys)
        return report

    def _ship(self, shard: int, carries: list[tuple[list, list]], report: CarryReport) -> None:
        """Submit ``carries`` ((puts, deletes) each) on ``shard`` and wait for the commits."""
        if not carries:
            return
        pk = self.key.public_key
        chain_id, nonce = self.cluster.chain_id(shard), self.cluster.call(shard, "nonce", pk)
        txs = [
            self.key.sign_tx(claims.carry(chain_id, pk, nonce + i, puts, deletes)).encode()
            for i, (puts, deletes) in enumerate(carries)
        ]
        sub = self.cluster.submit(txs)
        for _, code in sub.rejections():
            report.failed[code.name] += 1
        for r in sub.wait(self.commit_timeout):
            if r is not None and r.code:
                report.failed[c.reject_of(r.code).name] += 1


def _chunks(items: list) -> list[list]:
    step = claims.carry_entries_max
    return [items[i : i + step] for i in range(0, len(items), step)]
