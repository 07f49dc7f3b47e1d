"""A pool's statistics as a node endpoint: ``abs.pool`` (``POST /v1/app/abs.pool``, the API's
``CallApp``; the web explorer's pool page).

The body is ``{"id": hex}`` (a pool id, ``codes.id_bytes`` bytes). The answer is the pool as
``Abs.pool_json`` shows it, its ``stats.pool_stats`` (exact fractions and basis points, as
``PoolStats.to_json``) and its first ``members_max`` members in asset-id order (``members``,
with ``members_total``). An unknown pool is ``NO_SUCH_RECORD`` (404).

Bounded by the pool: the statistics read every member and its asset record, at most
``codes.pool_assets_max`` of each (what ``tierchain abs stats`` reads too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tierchain.apps.abs import codes as c
from tierchain.apps.abs.client import Abs
from tierchain.apps.views import record_id
from tierchain.engine.apps import Endpoint, EndpointError

members_max = 200  # members an answer lists (the statistics cover them all)


def pool_view(ledger: Any, pool_id: bytes) -> dict | None:
    """The pool, its statistics and its first members; None for an unknown pool."""
    found = Abs(ledger).pool_head(pool_id)
    if found is None:
        return None
    head, rows = found
    return {
        **head,
        "members": [
            {
                "asset": aid.hex(),
                "kind": c.AssetKind(x.kind).name,
                "status": c.AssetStatus(x.status).name,
                "principal": x.principal,
                "outstanding": x.outstanding,
                "cutoff_balance": m.cutoff_balance,
                "selected_height": m.height,
            }
            for aid, x, m in rows[:members_max]
        ],
        "members_total": len(rows),
    }


def _make(chain: Any) -> Callable[[dict], Any]:
    def handler(body: dict) -> Any:
        pid = record_id(body, c.id_bytes)
        view = pool_view(chain, pid)
        if view is None:
            raise EndpointError("NO_SUCH_RECORD", f"no abs pool {pid.hex()}", 404)
        return view

    return handler


POOL_ENDPOINT = Endpoint("abs.pool", _make)
