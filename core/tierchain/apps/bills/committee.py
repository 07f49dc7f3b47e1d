"""Committee votes on bill parameters and business-day calendars (``OP_VOTE``).

Finance's committee proposals have a fixed set of actions, so bills carry their own small
vote, shaped like the sharing app's list-key vote:

* A vote names an ``Action`` (``SET_PARAMS``: a ``Params`` body; ``SET_CALENDAR``: year
  u16 + a 366-bit bitmap), the *version* it creates — the target record's version + 1
  (``bq/params`` or ``bq/cal<year>``; 0 while the record is absent), else
  ``BILL_STALE_VOTE`` — and the body. The ballot is ``bv/<ballot_id(action, version,
  body)>``: everyone voting for the same content votes on the same ballot.
* Voters are accounts with the ``committee`` account role (finance's ``NOT_COMMITTEE``
  otherwise), once each (``BILL_ALREADY_VOTED``); the vote that reaches finance's
  threshold (``fp/params``) writes the record in the same transaction and marks the
  ballot applied. A ballot not applied within
  ``ballot_ms_max`` is void: the next vote for that content opens it afresh.
* Content is checked at every vote: parameters out of range ``BILL_BAD_PARAMS``, a year
  outside 1970..9999 or bits beyond the year's last day ``BILL_BAD_CALENDAR``.

The version makes an applied ballot single-use: once it applies, the record's version is
the ballot's, so a further vote for it is ``BILL_STALE_VOTE``; the same content again
needs a new ballot for the next version. What a calendar
changes applies to bills issued afterwards: a bill's due day is fixed at issue.
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps import accounts
from tierchain.apps.bills import codes as c
from tierchain.apps.bills import days
from tierchain.apps.bills.codes import Action, BillReject
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.orgs import role_bits
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec

OPS = apps.OpTable()

_HEAD = struct.Struct("<BI")  # action, version
_YEAR = struct.Struct("<H")


def target_key(action: int, body: bytes) -> bytes:
    """The record a vote's content writes (``ValueError`` for a malformed body)."""
    if action == Action.SET_PARAMS:
        if len(body) != len(c.Params().body()):
            raise ValueError("a params body of the wrong size")
        return c.PARAMS_KEY
    if action == Action.SET_CALENDAR:
        if len(body) != _YEAR.size + c.calendar_bytes:
            raise ValueError("a calendar body: year u16 + 46 bytes")
        return c.calendar_key(_YEAR.unpack_from(body)[0])
    raise ValueError(f"unknown action {action}")


def current_version(action: int, raw: bytes | None) -> int:
    if raw is None:
        return 0
    if action == Action.SET_PARAMS:
        return c.Params.decode(raw).version
    return c.Calendar.decode(raw).version


def _check_content(action: int, version: int, body: bytes) -> bytes:
    """The record the content writes when applied; a named refusal if out of range."""
    if action == Action.SET_PARAMS:
        try:
            p = c.Params.from_body(version, body)
        except c.RecordError as exc:
            raise OpFailed(Reject.BAD_PAYLOAD, "params body") from exc
        if not p.valid():
            raise OpFailed(BillReject.BILL_BAD_PARAMS)
        return p.encode()
    (year,) = _YEAR.unpack_from(body)
    bitmap = body[_YEAR.size :]
    if not c.year_min <= year <= c.year_max or not days.bitmap_fits_year(year, bitmap):
        raise OpFailed(BillReject.BILL_BAD_CALENDAR)
    return c.Calendar(version, bitmap).encode()


@OPS.op(c.OP_VOTE, "bill.vote")
def _vote(ctx: TxContext) -> None:
    raw = ctx.get(accounts.account_key(ctx.sender))
    if raw is None or not int.from_bytes(raw[:4], "little") & role_bits("committee"):
        raise OpFailed(FinanceReject.NOT_COMMITTEE)
    if len(ctx.payload) < _HEAD.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    action, version = _HEAD.unpack_from(ctx.payload)
    body = ctx.payload[_HEAD.size :]
    if action not in Action._value2member_map_:
        raise OpFailed(Reject.BAD_PAYLOAD, "action")
    try:
        key = target_key(action, body)
        current = current_version(action, ctx.get(key))
    except (ValueError, struct.error) as exc:
        raise OpFailed(Reject.BAD_PAYLOAD, "vote body") from exc
    if version != current + 1:
        raise OpFailed(BillReject.BILL_STALE_VOTE)
    record = _check_content(action, version, body)
    bkey = c.ballot_key(c.ballot_id(action, version, body, suite=ctx.suite))
    raw = ctx.get(bkey)
    ballot = None if raw is None else c.Ballot.decode(raw)
    if ballot is None or ctx.timestamp_ms - ballot.timestamp_ms > c.ballot_ms_max:
        ballot = c.Ballot(action, version, ctx.height, ctx.timestamp_ms, False, (), body)
    if ctx.sender in ballot.voters:
        raise OpFailed(BillReject.BILL_ALREADY_VOTED)
    if len(ballot.voters) >= c.votes_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "too many votes")
    voters = (*ballot.voters, ctx.sender)
    applied = len(voters) >= fc.Params.decode(ctx.get(fc.PARAMS_KEY)).threshold
    ctx.put(bkey, dataclasses.replace(ballot, voters=voters, applied=applied).encode())
    if applied:
        ctx.put(key, record)
    ctx.emit(b"bill.vote", bkey[3:] + bytes((action, len(voters), applied)))


# --- client-side builder ----------------------------------------------------------------------


def vote(
    chain_id: int,
    sender: bytes,
    nonce: int,
    action: int,
    version: int,
    body: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> txcodec.Tx:
    """A committee member's vote for ``body`` as version ``version`` of ``action``'s record."""
    key = target_key(action, body)
    bkey = c.ballot_key(c.ballot_id(action, version, body, suite=suite))
    reads = {accounts.account_key(sender), fc.PARAMS_KEY}
    payload = _HEAD.pack(action, version) + body
    return txcodec.unsigned(chain_id, c.OP_VOTE, sender, nonce, reads, {bkey, key}, payload)


def calendar_body(year: int, bitmap: bytes) -> bytes:
    if not c.year_min <= year <= c.year_max or len(bitmap) != c.calendar_bytes:
        raise ValueError(f"a year in {c.year_min}..{c.year_max} and a {c.calendar_bytes}-byte bitmap")
    return _YEAR.pack(year) + bitmap
