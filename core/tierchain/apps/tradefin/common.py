"""What every tradefin handler shares: payload parsing, parties, dates and history.

* ``parse`` turns a payload into fields or refuses it (``Reject.BAD_PAYLOAD``): a handler
  never raises anything but ``OpFailed``.
* Parties are finance's organizations: ``orgs.member`` checks the sender (finance's codes),
  ``counterparty`` a named organization (``NO_SUCH_ORG``, ``BAD_COUNTERPARTY``).
* ``append`` adds a history entry, refusing with ``TF_HISTORY_FULL`` past the record's
  bound (the limits in ``codes`` are chosen so that it cannot happen in a legal lifecycle).
"""

from __future__ import annotations

import struct
from typing import Any, TypeVar

from tierchain.apps.finance import orgs
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.codes import TradeReject as R
from tierchain.apps.tradefin.records import Entry, RecordError
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject

TRADER = orgs.role_bits("core_enterprise", "supplier")  # applicants, beneficiaries, sellers, debtors
BANK = orgs.role_bits("bank")
ANY = 0
T = TypeVar("T")


def parse(layout: struct.Struct, payload: bytes, tail: bool = False) -> tuple[Any, ...]:
    """The payload's fields (``tail``: the bytes after the fixed part are the last field)."""
    if len(payload) < layout.size or (not tail and len(payload) != layout.size):
        raise OpFailed(Reject.BAD_PAYLOAD, "payload length")
    fields = layout.unpack_from(payload)
    return (*fields, payload[layout.size :]) if tail else fields


def need(ok: bool, detail: str) -> None:
    """A malformed payload (``Reject.BAD_PAYLOAD``) unless ``ok``."""
    if not ok:
        raise OpFailed(Reject.BAD_PAYLOAD, detail)


def fp_list(raw: bytes, count_max: int) -> tuple[tuple[int, bytes], ...]:
    """Typed document fingerprints: a count byte, then (type u8, fingerprint 32) each; the
    types known, the fingerprints distinct and not zero."""
    need(len(raw) >= 1, "document list")
    n = raw[0]
    need(1 <= n <= count_max and len(raw) == 1 + 33 * n, "document count")
    docs = tuple((raw[1 + 33 * i], raw[2 + 33 * i : 34 + 33 * i]) for i in range(n))
    need(all(t in c.DocType._value2member_map_ for t, _ in docs), "document type")
    fps = [fp for _, fp in docs]
    need(len(set(fps)) == n and bytes(32) not in fps, "document fingerprints")
    return docs


def load(ctx: TxContext, key: bytes, record: type[T], missing: int) -> T:
    """The record at ``key``, or a refusal with ``missing``."""
    raw = ctx.get(key)
    if raw is None:
        raise OpFailed(missing)
    try:
        return record.decode(raw)  # type: ignore[attr-defined]
    except RecordError as exc:  # a damaged value: nothing an op can act on
        raise OpFailed(missing, "damaged record") from exc


def counterparty(ctx: TxContext, org_id: bytes, roles: int) -> None:
    """A named organization that exists, is active and holds one of ``roles`` (0: any)."""
    orgs.active_org_with(ctx, org_id, roles)


def distinct(*org_ids: bytes) -> None:
    """The parties of an instrument are different organizations (``BAD_COUNTERPARTY``)."""
    if len(set(org_ids)) != len(org_ids):
        from tierchain.apps.finance.codes import FinanceReject

        raise OpFailed(FinanceReject.BAD_COUNTERPARTY, "the same organization twice")


def future(ctx: TxContext, ms: int, ahead_max: int, code: int = R.TF_BAD_EXPIRY) -> None:
    """``ms`` is after the block time and at most ``ahead_max`` after it."""
    if not ctx.timestamp_ms < ms <= ctx.timestamp_ms + ahead_max:
        raise OpFailed(code)


def entry(
    ctx: TxContext, kind: int, org: bytes, ref: int = 255, amount: int = 0, fp: bytes = bytes(32)
) -> Entry:
    return Entry(kind, ctx.height, ctx.timestamp_ms, org, ref, amount, fp)


def append(record: T, history_max: int, new: Entry, **changes: Any) -> T:
    """``record`` with ``changes`` and ``new`` appended to its history (``TF_HISTORY_FULL``)."""
    if len(record.history) >= history_max:  # type: ignore[attr-defined]
        raise OpFailed(R.TF_HISTORY_FULL)
    return record.with_entry(new, **changes)  # type: ignore[attr-defined]


def emit(ctx: TxContext, topic: bytes, *parts: bytes) -> None:
    ctx.emit(topic, b"".join(parts))
