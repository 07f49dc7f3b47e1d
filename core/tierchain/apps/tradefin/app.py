"""The ``tradefin`` app: trade-finance messages as one value the engine is given.

Built in (``tierchain.engine.apps.BUILTIN_APPS``), not in the default app set: a chain
names it after ``finance``, whose organizations are its parties and whose invoice anchors
back its factoring (``apps = ["accounts", "xshard", "finance", "tradefin"]``). Op codes
192..255, refusals 416..479 (``codes.TradeReject``, every name ``TF_``), its two hash
domains, and one placement rule: ``tl/`` keys (an LC with its amendments, presentations
and the forfaitings of its drawings) route by the 8 bytes after the prefix, so every op
on an LC touches one shard. Bills' forfaitings (``tw/``), guarantees (``tg/``) and
receivables (``tf/``) are one record each and need no rule. (One rule, not one per table:
the router takes 64 rules for a whole app set; one is enough here.)
"""

from __future__ import annotations

from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin import factoring, forfaiting, guarantee, lc
from tierchain.engine import apps

APP = apps.App(
    name="tradefin",
    ops=tuple(lc.OPS.ops + guarantee.OPS.ops + factoring.OPS.ops + forfaiting.OPS.ops),
    op_codes=c.OP_CODES,
    reject_codes=c.REJECT_CODES,
    rejects=c.TradeReject,
    domains=c.DOMAINS,
    placement=(apps.Placement(c.LC_PREFIX, apps.TAG, c.TAG_BYTES),),
    requires=("finance",),  # its parties are finance's organizations (or finance_confidential's)
)
