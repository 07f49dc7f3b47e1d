"""``tierchain bills ...``: digital bills from the command line (docs/finance_bills.md).

A chain runs the ``bills`` app when its genesis names it after finance (``tierchain init
--app bills``). Write commands sign with ``--key`` (a sealed key file) and send to a running
node (``--node``); every declared key is computed by ``tierchain.apps.bills.client``.
Read commands (``show``, ``lineage``, ``params``, ``calendar``) ask the node and need no key.
The connection options go before the command name, as for ``tierchain finance``.

Organizations are named by name or 32-hex id, bills by 32-hex id, dates as ``YYYY-MM-DD``
(local days of the chain's time zone).

Errors: a bad argument (malformed input, a bill or organization the ledger does not know)
prints one line on stderr and exits 2 before anything is signed; a refusal by the ledger
prints one line naming the code (``endorse refused: BILL_NOT_TRANSFERABLE (tx …)``) and
exits 1; so does an unreachable node or a key file that does not open. Nothing prints a
traceback. Results are JSON on stdout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import click

from tierchain import limits
from tierchain.apps.bills import codes as c
from tierchain.apps.bills import days, lineage
from tierchain.apps.bills.client import BillParty, Bills
from tierchain.apps.bills.codes import BillKind, DishonourReason, RefusalReason
from tierchain.cli import remote
from tierchain.cli.finance import DocRef, OrgRef
from tierchain.cli.remote import choice, fail, known, outcome, print_json
from tierchain.cli.types import HexBytes

BILL = HexBytes(c.id_bytes, "a bill id", "bill")
AMOUNT = click.IntRange(1, c.amount_max)
DAYS = click.IntRange(0, 3660)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Date(click.ParamType):
    """A date ``YYYY-MM-DD``, as a day number."""

    name = "yyyy-mm-dd"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        try:
            date = dt.date.fromisoformat(value)
            if len(value) != 10:
                raise ValueError
        except ValueError:
            self.fail(f"expected a date YYYY-MM-DD, got {value!r}", param, ctx)
        return days.days_from_civil(date.year, date.month, date.day)


DATE = Date()


class ShardOf(click.ParamType):
    """``I/N``: shard I of an N-shard cluster, as (I, N)."""

    name = "i/n"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        i, _, n = value.partition("/")
        if not (i.isdigit() and n.isdigit() and 0 <= int(i) < int(n) <= limits.shards_max):
            self.fail(f"expected I/N with 0 <= I < N <= {limits.shards_max}, got {value!r}", param, ctx)
        return int(i), int(n)


TAG = HexBytes(c.tag_bytes, "a placement tag", "tag")


# --- the group and its connection ----------------------------------------------------------------


@remote.group("bills")
def bills() -> None:
    """Digital bills: issue, accept, endorse, discount, pledge, present, pay, dishonour, recourse."""


def _bills(ctx: click.Context) -> Bills:
    return remote.client(ctx, Bills)


def _party(ctx: click.Context) -> BillParty:
    """The signer (call it after the arguments are checked: it may prompt for the passphrase)."""
    return remote.party(ctx, Bills)


def _bill(ctx: click.Context, bid: bytes) -> c.Bill:
    return known(_bills(ctx).bill(bid), "bill", bid)


def _outcome(ctx: click.Context, r: Any, what: str, bid: bytes | None, **extra: Any) -> None:
    """A tx's result as JSON (code, tx id, the bill and its state); a refusal: one line, exit 1."""
    if r.ok and bid is not None:
        bill = _bills(ctx).bill(bid)
        extra.update(bill=bid.hex(), state=c.BillState(bill.state).name, events=bill.events)
    outcome(r, what, **extra)


# --- committee -------------------------------------------------------------------------------------


@bills.command("vote-params")
@click.option("--max-tenor-days", type=DAYS)
@click.option("--min-tenor-days", type=DAYS)
@click.option("--presentment-days", type=click.IntRange(1, 366))
@click.option("--answer-days", type=click.IntRange(1, 366))
@click.option("--recourse-answer-days", type=click.IntRange(1, 366))
@click.option("--tz-offset-min", type=click.IntRange(-720, 840), help="Local time's offset from UTC.")
@click.option("--weekend", type=click.Choice(WEEKDAYS), multiple=True, help="Weekend days (repeat).")
@click.pass_context
def vote_params(ctx, weekend: tuple[str, ...], **given: Any) -> None:
    """Committee: vote bill parameters (unnamed ones keep their value)."""
    changes = {k: v for k, v in given.items() if v is not None}
    if weekend:
        changes["weekend_mask"] = sum(1 << WEEKDAYS.index(d) for d in set(weekend))
    current = _bills(ctx).params()
    wanted = dataclasses.replace(current, **changes)
    if not wanted.valid():
        fail("parameters out of range (min tenor <= max tenor, at least one business weekday)")
    r = _party(ctx).vote_params(wanted)
    _outcome(ctx, r, "vote", None, applied=_bills(ctx).params().version > current.version)


@bills.command("vote-calendar")
@click.argument("year", type=click.IntRange(c.year_min, c.year_max))
@click.option("--holiday", type=DATE, multiple=True, help="A public holiday (repeat).")
@click.option("--workday", type=DATE, multiple=True, help="A weekend day made a working day, 调休 (repeat).")
@click.pass_context
def vote_calendar(ctx, year: int, holiday: tuple[int, ...], workday: tuple[int, ...]) -> None:
    """Committee: vote YEAR's business-day calendar (weekends, plus holidays, minus workdays)."""
    b = _bills(ctx)
    try:
        bitmap = days.calendar_bitmap(year, b.params().weekend_mask, list(holiday), list(workday))
    except ValueError as exc:
        fail(str(exc))
    before = b.calendar(year)
    r = _party(ctx).vote_calendar(year, bitmap=bitmap)
    after = b.calendar(year)
    _outcome(ctx, r, "vote", None, applied=after is not None and after != before)


# --- drawing and circulation ---------------------------------------------------------------------


@bills.command("issue")
@click.option("--kind", type=choice(BillKind), required=True, help="commercial or bank acceptance.")
@click.option("--acceptor", type=OrgRef(), required=True)
@click.option("--payee", type=OrgRef(), required=True)
@click.option("--face", type=AMOUNT, required=True)
@click.option("--maturity", type=DATE, required=True)
@click.option("--not-transferable", is_flag=True, help="The drawer's 不得转让 mark.")
@click.option("--doc", type=DocRef(), multiple=True, help="TYPE:FINGERPRINT of an anchored document.")
@click.option("--shard", type=ShardOf(), help="I/N: place the bill on shard I of an N-shard cluster.")
@click.option("--tag", type=TAG, help="The bill id's 8-byte placement tag itself (16 hex digits).")
@click.pass_context
def issue(ctx, kind, acceptor, payee, face, maturity, not_transferable, doc, shard, tag) -> None:
    """Drawer: draw a bill; prints its id. On a cluster (--node: the shard's node, --chain-id:
    its chain id) --shard I/N names the shard the bill lives on: the one the tx is signed for."""
    if len(doc) > c.docs_per_bill_max:
        fail(f"at most {c.docs_per_bill_max} documents")
    if shard is not None and tag is not None:
        fail("--shard or --tag, not both")
    acceptor, payee = remote.org(ctx, acceptor), remote.org(ctx, payee)
    r = _party(ctx).issue(
        BillKind[kind.upper()],
        acceptor,
        payee,
        face,
        maturity,
        not_transferable=not_transferable,
        docs=list(doc),
        tag=tag,
        shard=shard,
    )
    _outcome(ctx, r, "issue", r.id if r.ok else None)


def _simple(name: str, method: str, doc: str) -> None:
    @bills.command(name, help=doc)
    @click.argument("bill", type=BILL)
    @click.pass_context
    def command(ctx, bill: bytes) -> None:
        _bill(ctx, bill)
        _outcome(ctx, getattr(_party(ctx), method)(bill), name, bill)


for _name, _method, _doc in (
    ("accept", "accept", "Acceptor: accept the bill; it is then offered to the payee."),
    ("revoke", "revoke", "Drawer: withdraw a bill not yet accepted or not yet received by the payee."),
    ("sign", "sign", "Offeree: sign the pending delivery, endorsement, discount, rediscount or pledge."),
    ("reject", "reject", "Offeree: reject the pending offer (a rejected delivery voids the bill)."),
    ("cancel", "cancel", "Holder: withdraw its pending offer."),
    ("release", "release", "Pledgee: release its pledge."),
    ("present", "present", "Holder (a pledged bill: the pledgee): present for payment on/after the due day."),
    ("pay", "pay", "Acceptor: pay a presented or dishonoured bill."),
    ("claim", "claim", "Holder of a dishonoured bill: claim recourse from the next prior party."),
    ("recourse-pay", "recourse_pay", "Claimed party: pay the face; it becomes the holder."),
):
    _simple(_name, _method, _doc)


def _reasoned(name: str, method: str, reasons: type, doc: str) -> None:
    @bills.command(name, help=doc)
    @click.argument("bill", type=BILL)
    @click.option("--reason", type=choice(reasons), required=True)
    @click.pass_context
    def command(ctx, bill: bytes, reason: str) -> None:
        _bill(ctx, bill)
        _outcome(ctx, getattr(_party(ctx), method)(bill, reasons[reason.upper()]), name, bill)


_reasoned("refuse", "refuse", RefusalReason, "Acceptor: refuse acceptance (the bill is void).")
_reasoned("dishonour", "dishonour", DishonourReason, "Acceptor: refuse payment (the presenter: no_response).")
_reasoned("recourse-refuse", "recourse_refuse", RefusalReason, "Claimed party: refuse the recourse claim.")


def _offer(name: str, counterparty: str, amount: str | None, doc: str) -> Callable:
    def decorate(f: Callable) -> Callable:
        f = click.pass_context(f)
        if amount:
            f = click.option(f"--{amount}", "amount", type=AMOUNT, required=True)(f)
        f = click.option(f"--{counterparty}", "to", type=OrgRef(), required=True)(f)
        f = click.argument("bill", type=BILL)(f)
        return bills.command(name, help=doc)(f)

    return decorate


@_offer("endorse", "to", None, "Holder: endorse to an enterprise (it signs or rejects).")
@click.option("--restrictive", is_flag=True, help="The endorser's 不得转让: liable to this endorsee only.")
def endorse(ctx, bill: bytes, to, restrictive: bool) -> None:
    _bill(ctx, bill)
    _outcome(ctx, _party(ctx).endorse(bill, remote.org(ctx, to), restrictive=restrictive), "endorse", bill)


@_offer("discount", "bank", "price", "Holder (an enterprise): discount at a bank for PRICE < face.")
def discount(ctx, bill: bytes, to, amount: int) -> None:
    _bill(ctx, bill)
    _outcome(ctx, _party(ctx).discount(bill, remote.org(ctx, to), amount), "discount", bill)


@_offer("rediscount", "bank", "price", "Holder (a bank): rediscount at another bank for PRICE < face.")
def rediscount(ctx, bill: bytes, to, amount: int) -> None:
    _bill(ctx, bill)
    _outcome(ctx, _party(ctx).rediscount(bill, remote.org(ctx, to), amount), "rediscount", bill)


@_offer("pledge", "bank", "loan", "Holder: pledge to a bank for a loan <= face.")
def pledge(ctx, bill: bytes, to, amount: int) -> None:
    _bill(ctx, bill)
    _outcome(ctx, _party(ctx).pledge(bill, remote.org(ctx, to), amount), "pledge", bill)


# --- reads ------------------------------------------------------------------------------------------


@bills.command("show")
@click.argument("bill", type=BILL)
@click.pass_context
def show(ctx, bill: bytes) -> None:
    """The bill's record, decoded (organization names included)."""
    b = _bills(ctx)
    record = _bill(ctx, bill)
    print_json(lineage.bill_json(bill, record, lineage.Names(b.ledger.state_get)))


@bills.command("lineage")
@click.argument("bill", type=BILL)
@click.pass_context
def lineage_cmd(ctx, bill: bytes) -> None:
    """The bill's endorsement chain, holders, financing, payments and full history."""
    _bill(ctx, bill)
    print_json(_bills(ctx).lineage(bill))


@bills.command("params")
@click.pass_context
def params(ctx) -> None:
    """The chain's bill parameters."""
    p = _bills(ctx).params()
    out = dataclasses.asdict(p)
    out["weekend"] = [d for i, d in enumerate(WEEKDAYS) if p.weekend_mask >> i & 1]
    print_json(out)


@bills.command("calendar")
@click.argument("year", type=click.IntRange(c.year_min, c.year_max))
@click.pass_context
def calendar(ctx, year: int) -> None:
    """YEAR's non-business days (the voted calendar, else the weekend rule)."""
    b = _bills(ctx)
    cal, mask = b.calendar(year), b.params().weekend_mask
    first = days.days_from_civil(year, 1, 1)
    closed = [
        lineage.date(first + i)
        for i in range(days.year_length(year))
        if not days.is_business_day(first + i, mask, lambda y: cal if y == year else None)
    ]
    print_json(
        {"year": year, "voted": cal is not None, "version": cal.version if cal else 0, "closed": closed}
    )
