"""The ``finance`` app: supply-chain finance ops as one value the engine is given.

Built in (``tierchain.engine.apps.BUILTIN_APPS``): op codes 16..63, refusals 96..159
(its own ``codes.FinanceReject``, declared as ``rejects``: ``AppSet.reject_name`` shows
them), the six ``FIN_*`` hash domains and the organization roles of ``codes``, and the
lineage placement rule: ``fv/ fx/ fc/ fr/ fy/ fs/`` keys route by their 8-byte lineage tag, so a
voucher's whole lineage lives on one shard.
It has no genesis state (the consortium parameters start at their defaults).
"""

from __future__ import annotations

from tierchain.apps.finance import codes as c
from tierchain.apps.finance import confidential, cregistry, evidence, orgs, registry, voucher
from tierchain.engine import apps

APP = apps.App(
    name="finance",
    ops=tuple(
        orgs.OPS.ops
        + evidence.OPS.ops
        + voucher.OPS.ops
        + registry.OPS.ops
        + confidential.OPS.ops
        + cregistry.OPS.ops
    ),
    op_codes=c.OP_CODES,
    reject_codes=c.REJECT_CODES,
    rejects=c.FinanceReject,
    domains=c.DOMAINS,
    roles=c.ROLES,
    placement=tuple(apps.Placement(p, apps.TAG, c.lineage_tag_bytes) for p in c.LINEAGE_PREFIXES),
    checks=(confidential.CHECK,),  # the confidential ops' proofs, one native call per batch
)
