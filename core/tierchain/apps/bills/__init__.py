"""Digital bills on finance's organizations (issue 20 item 1; docs/finance_bills.md).

The ``bills`` app (``tierchain.apps.bills.app.APP``): a chain runs it when its genesis
names it after ``finance``; importing this package registers nothing. Parts:

* ``app``       — the ``App`` value: ops, code ranges, domains, placement
* ``codes``     — op codes, ``BillReject``, state keys, ids, record layouts, limits
* ``days``      — local days, business days, the due-day roll (pure integer arithmetic)
* ``committee`` — committee votes on bill parameters and business-day calendars
* ``store``     — what every bill op shares: payload head, loading, history, key sets
* ``lifecycle`` — issue, acceptance, delivery, endorsement, discount, rediscount, pledge
* ``payment``   — presentment, payment, dishonour, recourse up the endorsement chain
* ``lineage``   — a bill's chain, holders, financing, payments and history as JSON
* ``client``    — ``Bills`` / ``BillParty``: the high-level API that derives every key
"""

from tierchain.apps.bills.codes import (
    BillKind,
    BillReject,
    BillState,
    DishonourReason,
    EventKind,
    OfferKind,
    RefusalReason,
)

__all__ = [
    "BillKind",
    "BillReject",
    "BillState",
    "DishonourReason",
    "EventKind",
    "OfferKind",
    "RefusalReason",
]
