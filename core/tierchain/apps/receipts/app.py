"""The ``receipts`` app: warehouse receipts with goods flows, as one value the engine is given.

Built in (``tierchain.engine.apps.BUILTIN_APPS``), not in the default app set: a chain names
it after ``finance``, whose organizations, roles (``warehouse``, ``bank``, ``supplier``,
``core_enterprise``) and anchored documents it builds on (``apps = ["accounts", "xshard",
"finance", "receipts"]``). Op codes 128..159, refusals 288..351 (``codes.ReceiptReject``;
its handlers also refuse with finance's membership and counterparty codes), its hash
domains, and one placement rule: ``wr/`` keys route by the 8-byte warehouse tag that
follows the prefix, so everything one op touches — a warehouse's receipts, their parts,
movements, stocks, feeds and anchor index — lives on one shard (one rule of the 16 the
router takes for a whole chain).
"""

from __future__ import annotations

from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts import goods, issue, offers, split
from tierchain.engine import apps

APP = apps.App(
    name="receipts",
    ops=tuple(issue.OPS.ops + goods.OPS.ops + offers.OPS.ops + split.OPS.ops),
    op_codes=c.OP_CODES,
    reject_codes=c.REJECT_CODES,
    rejects=c.ReceiptReject,
    domains=c.DOMAINS,
    placement=(apps.Placement(c.PREFIX, apps.TAG, c.tag_bytes),),
    requires=("finance",),  # finance's organizations, roles and evidence (or finance_confidential's)
)
