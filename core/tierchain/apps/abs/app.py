"""The ``abs`` app: ABS pools with servicing reports, as one value the engine is given.

Built in (``tierchain.engine.apps.BUILTIN_APPS``), not in the default app set: a chain
names it in ``[chain] apps`` after ``finance``, whose organizations, keys and roles it uses
(``apps = ["accounts", "xshard", "finance", "abs"]``). Op codes 160..191, refusals 352..415
(``codes.AbsReject``, every name ``ABS_``-prefixed), its hash domains, two roles
(``originator`` bit 13, ``servicer`` bit 14; the trustee, investors, rating agencies and the
regulator are finance's roles), and one placement rule: ``ab/`` keys route by the 8-byte
book tag after the prefix (the originator's), so an originator's assets, their cash-flow
logs, its pools and their members live on one shard and every abs op touches one shard.
"""

from __future__ import annotations

from tierchain.apps.abs import assets, pools
from tierchain.apps.abs import codes as c
from tierchain.apps.abs.views import POOL_ENDPOINT
from tierchain.engine import apps

APP = apps.App(
    name="abs",
    ops=tuple(assets.OPS.ops + pools.OPS.ops),
    op_codes=c.OP_CODES,
    reject_codes=c.REJECT_CODES,
    rejects=c.AbsReject,
    domains=c.DOMAINS,
    roles=c.ROLES,
    placement=(apps.Placement(c.PREFIX, apps.TAG, c.tag_bytes),),
    requires=("finance",),  # its members are finance's organizations (or finance_confidential's)
    endpoints=(POOL_ENDPOINT,),  # a pool's statistics (abs.pool; the web explorer's pool page)
)
