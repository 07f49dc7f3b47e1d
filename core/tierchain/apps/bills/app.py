"""The ``bills`` app: digital bills (issue 20 item 1) as one value the engine is given.

Built in (``tierchain.engine.apps.BUILTIN_APPS``), not in the default app set: a chain
names it after ``finance``, whose organizations, roles, committee threshold and documents
it uses (``apps = ["accounts", "xshard", "finance", "bills"]``). Op codes 96..127,
refusals 224..287 (``codes.BillReject``; its handlers also refuse with finance's
membership, committee, counterparty and document codes), two hash domains, and placement:
``bl/`` (bills) and ``bn/`` (their history) route by the bill id's first 8 bytes, so a
bill and its whole history live on one shard; ``bq/`` (parameters, calendars) and ``bv/``
(ballots) are replicated (on every shard, voted on the primary). No genesis state: parameters start at
their defaults (``codes.Params``) and years without a voted calendar use the weekend rule.
"""

from __future__ import annotations

from tierchain.apps import views
from tierchain.apps.bills import codes as c
from tierchain.apps.bills import committee, lifecycle, lineage, payment
from tierchain.engine import apps

APP = apps.App(
    name="bills",
    ops=tuple(committee.OPS.ops + lifecycle.OPS.ops + payment.OPS.ops),
    op_codes=c.OP_CODES,
    reject_codes=c.REJECT_CODES,
    rejects=c.BillReject,
    domains=c.DOMAINS,
    # bl/ bn/ by the bill's tag; bq/ bv/ on every shard, voted on the primary
    placement=c.PLACEMENT,
    requires=("finance",),
    endpoints=(views.lineage_endpoint("bills", lineage.lineage, c.id_bytes),),  # the endorsement chain
)
