"""The ``finance`` app: supply-chain finance ops as one value the engine is given.

Built in (``tierchain.engine.apps.BUILTIN_APPS``): op codes 16..63, refusals 96..159
(its own ``codes.FinanceReject``, declared as ``rejects``: ``AppSet.reject_name`` shows
them), the six ``FIN_*`` hash domains and the organization roles of ``codes``, and the
lineage placement rule: ``fv/ fx/ fc/ fr/ fy/ fs/ fw/ fe/`` keys route by their 8-byte
lineage tag, so a voucher's whole lineage (and the claims carried to it) lives on one shard;
the consortium's tables ``fk/ fo/ fp/ fq/ fn/ fz/`` are replicated: on every shard, written
on the primary; an anchor ``fd/`` and its pending claims ``fg/`` route by the document's
(type, fingerprint); a placed financing record ``fm/`` is pinned to its shard.
It has no genesis state (the consortium parameters start at their defaults).

``CONFIDENTIAL_APP`` (built in as ``finance_confidential``) is the same app without the ops
that put amounts in the clear — ``fin.confirm``, ``fin.split``, ``fin.offer`` and the
plaintext registry's ``fin.reg_*`` — for a chain whose genesis names it instead of
``finance`` (docs/privacy.md, "A confidential-only chain"): every amount on it is a
commitment. The two claim the same codes, domains, roles and prefixes, so a chain runs
one or the other.
"""

from __future__ import annotations

import dataclasses

from tierchain.apps import views
from tierchain.apps.finance import claims, confidential, cregistry, evidence, lineage, orgs, registry, voucher
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.views import ORGS_ENDPOINT
from tierchain.engine import apps

_OPS = (
    orgs.OPS.ops
    + evidence.OPS.ops
    + claims.OPS.ops
    + voucher.OPS.ops
    + registry.OPS.ops
    + confidential.OPS.ops
    + cregistry.OPS.ops
)
# What puts an amount in the clear: a plaintext voucher's issue, split and offer, and the
# plaintext registry (its release included: nothing can be recorded there to release).
PLAINTEXT_OPS = frozenset(
    (c.OP_CONFIRM, c.OP_SPLIT, c.OP_OFFER, c.OP_REG_ASSET, c.OP_REG_FINANCE, c.OP_REG_RELEASE)
)

APP = apps.App(
    name="finance",
    ops=tuple(_OPS),
    op_codes=c.OP_CODES,
    reject_codes=c.REJECT_CODES,
    rejects=c.FinanceReject,
    domains=c.DOMAINS,
    roles=c.ROLES,
    placement=(
        *(apps.Placement(p, apps.TAG, c.lineage_tag_bytes) for p in c.LINEAGE_PREFIXES),
        *(apps.Placement(p, apps.REPLICATED) for p in c.REPLICATED_PREFIXES),
        *(apps.Placement(p, apps.TAG, c.doc_tag_bytes) for p in c.DOC_PREFIXES),
        apps.Placement(c.PLACED_FINANCING_PREFIX, apps.PINNED),
    ),
    checks=(confidential.CHECK,),  # the confidential ops' proofs, one native call per batch
    # a piece's lineage: ancestors, descendants, holders, financings, documents, settlement;
    # the organizations, a page at a time, with their roles, status and active keys
    endpoints=(
        views.lineage_endpoint(
            "finance", lambda chain, pid: lineage.lineage(chain.state_get, pid, suite=chain.suite), c.id_bytes
        ),
        ORGS_ENDPOINT,
    ),
)

CONFIDENTIAL_APP = dataclasses.replace(
    APP,
    name="finance_confidential",
    ops=tuple(op for op in _OPS if op.code not in PLAINTEXT_OPS),
    provides=("finance",),  # its organizations are finance's: apps that require finance run on it
)
