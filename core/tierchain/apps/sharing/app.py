"""The ``sharing`` app: data sharing under control, as one value the engine is given.

Built in (``tierchain.engine.apps.BUILTIN_APPS``), not in the default app set: a chain
names it in ``[chain] apps`` after ``finance``, whose organizations are its members
(``apps = ["accounts", "xshard", "finance", "sharing"]``). Op codes 64..95, refusals
160..223 (``codes.SharingReject``), its hash domains, and placement: a record's tables
(``sr/ sv/ sg/ sq/ sk/``) route by the record id's first 8 bytes and a reconciliation
pair's (``sp/ sy/``) by the pair id's, so a record with its grants and releases, and a
pair with its postings, each live on one shard.

Node API endpoints (``POST /v1/app/<name>``): ``sharing.list_query`` (a member's signed,
rate-limited question about fingerprints: ``list_query``) and ``sharing.recon_report``
(a pair's public reconciliation report for a day: ``recon_client``).
"""

from __future__ import annotations

from tierchain.apps.sharing import access, list_query, lists, recon, recon_client
from tierchain.apps.sharing import codes as c
from tierchain.engine import apps

_TAG_BYTES = 8
_RECORD_TABLES = (b"sr/", b"sv/", b"sg/", b"sq/", b"sk/")
_PAIR_TABLES = (b"sp/", b"sy/")

APP = apps.App(
    name="sharing",
    ops=tuple(access.OPS.ops + lists.OPS.ops + recon.OPS.ops),
    op_codes=c.OP_CODES,
    reject_codes=c.REJECT_CODES,
    rejects=c.SharingReject,
    domains=c.DOMAINS,
    placement=tuple(apps.Placement(p, apps.TAG, _TAG_BYTES) for p in _RECORD_TABLES + _PAIR_TABLES),
    endpoints=(list_query.ENDPOINT, recon_client.ENDPOINT),
    requires=("finance",),  # its members are finance's organizations (or finance_confidential's)
)
