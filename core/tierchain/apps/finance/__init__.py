"""Supply-chain finance on the ledger (issue 6; docs/finance.md).

The ``finance`` app (``tierchain.apps.finance.app.APP``: op codes 16..63, rejections
96..159 in its own ``codes.FinanceReject``, its hash domains, roles and lineage
placement rule). A chain runs it when its genesis names it (``[chain] apps``,
default: on); importing this package registers nothing. Parts:

* ``app``      — the ``App`` value: ops, code ranges, domains, roles, placement

* ``codes``    — op codes, state keys, ids, record layouts, limits
* ``orgs``     — organizations, keys, roles, committee proposals and votes
* ``evidence`` — document anchoring
* ``voucher``  — confirmation, split, transfer, discount, pledge, settlement
* ``registry`` — duplicate-financing registry under blinded fingerprints
* ``lineage``  — indexed lineage queries
* ``views``    — decoded JSON views of one voucher, piece or organization
* ``client``   — ``Finance``: the high-level API that derives every declared key
* ``workload`` — deterministic pre-signed voucher-lifecycle workloads (bench)
"""

from tierchain.apps.finance import codes, evidence, lineage, orgs, registry, voucher
from tierchain.apps.finance.codes import DocType, OfferKind, PieceState, VoucherStatus

__all__ = [
    "DocType",
    "OfferKind",
    "PieceState",
    "VoucherStatus",
    "codes",
    "evidence",
    "lineage",
    "orgs",
    "registry",
    "voucher",
]
