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
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from tierchain.apps.bills import codes as c
from tierchain.apps.bills import days, lineage
from tierchain.apps.bills.client import BillParty, Bills, BillsRemote
from tierchain.apps.bills.codes import BillKind, DishonourReason, RefusalReason
from tierchain.apps.finance import codes as fc
from tierchain.cli.errors import EXIT_USAGE, CommandFailed
from tierchain.cli.finance import DocRef, OrgRef
from tierchain.cli.types import (
    CHAIN_ID,
    NODE_URL,
    HexBytes,
    check_key_suite,
    passphrase_option,
    read_passphrase,
)
from tierchain.crypto import load_key_file

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


def _choice(enum_type: type) -> click.Choice:
    return click.Choice([m.name.lower() for m in enum_type])


def _fail(message: str) -> NoReturn:
    """A bad argument found in a command's body: one line, exit 2."""
    raise CommandFailed(message, EXIT_USAGE)


# --- the group and its connection ----------------------------------------------------------------


@click.group("bills")
@click.option("--node", "url", type=NODE_URL, default="http://127.0.0.1:7545", show_default=True)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Signing key file.",
)
@click.option("--chain-id", type=CHAIN_ID, help="Refuse a node of another chain (default: the node's).")
@passphrase_option
@click.option("--wait", "wait_s", type=click.FloatRange(0, 3600), default=10.0, show_default=True)
@click.pass_context
def bills(ctx, url, key_file, chain_id, passphrase_env, wait_s) -> None:
    """Digital bills: issue, accept, endorse, discount, pledge, present, pay, dishonour, recourse."""
    ctx.obj = dict(
        url=url, key_file=key_file, chain_id=chain_id, passphrase_env=passphrase_env, wait_s=wait_s
    )


def _bills(ctx: click.Context) -> Bills:
    """The node as a bills ledger (made once per command), its chain id checked if given."""
    from tierchain.api.rpc import NodeClient

    o = ctx.find_root().obj if ctx.obj is None else ctx.obj
    if "_bills" not in o:
        ledger = BillsRemote(NodeClient(o["url"]))
        if o["chain_id"] is not None and o["chain_id"] != ledger.chain_id:
            _fail(f"the node at {o['url']} runs chain {ledger.chain_id}, not {o['chain_id']}")
        o["_bills"] = Bills(ledger, timeout_s=o["wait_s"])
    return o["_bills"]


def _party(ctx: click.Context) -> BillParty:
    """The signer (call it after the arguments are checked: it may prompt for the passphrase)."""
    o = ctx.obj
    if o["key_file"] is None:
        _fail(f"{ctx.command_path}: this command signs: give --key FILE (before the command name)")
    b = _bills(ctx)
    keys = load_key_file(o["key_file"], read_passphrase(o["passphrase_env"]))
    check_key_suite(keys, b.suite.name, o["key_file"])
    return b.party(keys)


def _org(ctx: click.Context, ref: bytes | str) -> bytes:
    """An organization's id; exit 2 if the ledger has none such."""
    b = _bills(ctx)
    oid = ref if isinstance(ref, bytes) else fc.org_id(ref, suite=b.suite)
    if b.ledger.state_get(fc.org_key(oid)) is None:
        _fail(f"no organization {ref if isinstance(ref, str) else oid.hex()} on the ledger")
    return oid


def _bill(ctx: click.Context, bid: bytes) -> c.Bill:
    bill = _bills(ctx).bill(bid)
    if bill is None:
        _fail(f"no bill {bid.hex()} on the ledger")
    return bill


def _print(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _outcome(ctx: click.Context, r: Any, what: str, bid: bytes | None, **extra: Any) -> None:
    """A tx's result as JSON (code, tx id, the bill and its state); a refusal: one line, exit 1."""
    if not r.ok:
        raise CommandFailed(f"{what} refused: {r.code.name} (tx {r.tx_id.hex()})")
    out = {"code": r.code.name, "tx_id": r.tx_id.hex(), **extra}
    if bid is not None:
        bill = _bills(ctx).bill(bid)
        out.update(bill=bid.hex(), state=c.BillState(bill.state).name, events=bill.events)
    _print(out)


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
        _fail("parameters out of range (min tenor <= max tenor, at least one business weekday)")
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
        _fail(str(exc))
    before = b.calendar(year)
    r = _party(ctx).vote_calendar(year, bitmap=bitmap)
    after = b.calendar(year)
    _outcome(ctx, r, "vote", None, applied=after is not None and after != before)


# --- drawing and circulation ---------------------------------------------------------------------


@bills.command("issue")
@click.option("--kind", type=_choice(BillKind), required=True, help="commercial or bank acceptance.")
@click.option("--acceptor", type=OrgRef(), required=True)
@click.option("--payee", type=OrgRef(), required=True)
@click.option("--face", type=AMOUNT, required=True)
@click.option("--maturity", type=DATE, required=True)
@click.option("--not-transferable", is_flag=True, help="The drawer's 不得转让 mark.")
@click.option("--doc", type=DocRef(), multiple=True, help="TYPE:FINGERPRINT of an anchored document.")
@click.pass_context
def issue(ctx, kind, acceptor, payee, face, maturity, not_transferable, doc) -> None:
    """Drawer: draw a bill; prints its id."""
    if len(doc) > c.docs_per_bill_max:
        _fail(f"at most {c.docs_per_bill_max} documents")
    acceptor, payee = _org(ctx, acceptor), _org(ctx, payee)
    r = _party(ctx).issue(
        BillKind[kind.upper()],
        acceptor,
        payee,
        face,
        maturity,
        not_transferable=not_transferable,
        docs=list(doc),
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
    @click.option("--reason", type=_choice(reasons), required=True)
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
    _outcome(ctx, _party(ctx).endorse(bill, _org(ctx, to), restrictive=restrictive), "endorse", bill)


@_offer("discount", "bank", "price", "Holder (an enterprise): discount at a bank for PRICE < face.")
def discount(ctx, bill: bytes, to, amount: int) -> None:
    _bill(ctx, bill)
    _outcome(ctx, _party(ctx).discount(bill, _org(ctx, to), amount), "discount", bill)


@_offer("rediscount", "bank", "price", "Holder (a bank): rediscount at another bank for PRICE < face.")
def rediscount(ctx, bill: bytes, to, amount: int) -> None:
    _bill(ctx, bill)
    _outcome(ctx, _party(ctx).rediscount(bill, _org(ctx, to), amount), "rediscount", bill)


@_offer("pledge", "bank", "loan", "Holder: pledge to a bank for a loan <= face.")
def pledge(ctx, bill: bytes, to, amount: int) -> None:
    _bill(ctx, bill)
    _outcome(ctx, _party(ctx).pledge(bill, _org(ctx, to), amount), "pledge", bill)


# --- reads ------------------------------------------------------------------------------------------


@bills.command("show")
@click.argument("bill", type=BILL)
@click.pass_context
def show(ctx, bill: bytes) -> None:
    """The bill's record, decoded (organization names included)."""
    b = _bills(ctx)
    record = _bill(ctx, bill)
    _print(lineage.bill_json(bill, record, lineage.Names(b.ledger.state_get)))


@bills.command("lineage")
@click.argument("bill", type=BILL)
@click.pass_context
def lineage_cmd(ctx, bill: bytes) -> None:
    """The bill's endorsement chain, holders, financing, payments and full history."""
    _bill(ctx, bill)
    _print(_bills(ctx).lineage(bill))


@bills.command("params")
@click.pass_context
def params(ctx) -> None:
    """The chain's bill parameters."""
    p = _bills(ctx).params()
    out = dataclasses.asdict(p)
    out["weekend"] = [d for i, d in enumerate(WEEKDAYS) if p.weekend_mask >> i & 1]
    _print(out)


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
    _print({"year": year, "voted": cal is not None, "version": cal.version if cal else 0, "closed": closed})
