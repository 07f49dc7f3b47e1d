"""``tierchain receipts ...``: warehouse receipts with goods flows from the command line.

The ``receipts`` app (a chain runs it when its genesis names it: ``tierchain init --app
receipts``) through ``tierchain.apps.receipts.client``, against a running node (``--node``).
The connection options (``--node``, ``--key``, ``--chain-id``, ``--passphrase-env``,
``--wait``) may be given before the command name or after it (after wins), as for
``tierchain sharing``. Write commands sign with ``--key``; ``show``, ``lineage`` and
``anomalies`` need no key. Organizations are named by name or 32-hex id; receipts by their
32-hex id; quantities are integers in the receipt's unit.

Errors, as in ``tierchain finance``: a bad argument (malformed input, a receipt or
organization the ledger does not know) prints one line on stderr and exits 2; a refusal by
the ledger prints one line naming the code (``pledge refused: WR_ALREADY_PLEDGED (tx …)``)
and exits 1; so does an unreachable node or a key file that does not open. Nothing prints
a traceback. Results are JSON on stdout; a goods batch prints each movement's outcome
(``APPLIED`` or the anomaly recorded) and exits 0: an anomaly is taken, not refused.
"""

from __future__ import annotations

from typing import Any

import click

from tierchain.apps.finance import codes as fc
from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts.client import MoveKind, Receipts, ReceiptsParty, Result
from tierchain.cli import remote
from tierchain.cli.finance import OrgRef
from tierchain.cli.remote import connection, fail, known, outcome, print_json
from tierchain.cli.types import HexBytes

RECEIPT = HexBytes(c.id_bytes, "a receipt id", "receipt")
FINGERPRINT = HexBytes(c.fingerprint_bytes, "a document fingerprint", "fingerprint")
QUANTITY = click.IntRange(1, c.quantity_max)
LOAN = click.IntRange(1, fc.amount_max)
TIME_MS = click.IntRange(1, (1 << 64) - 1)


class Label(click.ParamType):
    """An item code, unit or location: printable text of 1..``bytes_max`` UTF-8 bytes."""

    name = "text"

    def __init__(self, bytes_max: int) -> None:
        self.bytes_max = bytes_max

    def convert(self, value: Any, param: Any, ctx: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        try:
            return c.check_label(value.encode(), self.bytes_max)
        except ValueError:
            self.fail(f"printable text of 1..{self.bytes_max} bytes, got {value!r}", param, ctx)


class MoveArg(click.ParamType):
    """``RECEIPT:QUANTITY`` or ``RECEIPT:QUANTITY:SEQ`` (the device's sequence number)."""

    name = "receipt:quantity[:seq]"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple:
        if isinstance(value, tuple):
            return value
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[1:]):
            self.fail(f"expected RECEIPT:QUANTITY[:SEQ], got {value!r}", param, ctx)
        rid = RECEIPT.convert(parts[0], param, ctx)
        q = QUANTITY.convert(int(parts[1]), param, ctx)
        return (rid, q, *(int(p) for p in parts[2:]))


class FeedArg(click.ParamType):
    name = "feed"

    def convert(self, value: Any, param: Any, ctx: Any) -> bytes:
        try:
            return c.feed_id(value)
        except ValueError:
            self.fail(f"a feed id is 1..{c.feed_id_bytes} bytes, got {value!r}", param, ctx)


@remote.group("receipts")
def receipts() -> None:
    """Warehouse receipts: issue, goods in/out (IoT feeds), pledge, transfer, split, lineage
    (a chain running the receipts app)."""


def _rc(ctx: click.Context) -> Receipts:
    return remote.client(ctx, Receipts)


def _party(ctx: click.Context) -> ReceiptsParty:
    return remote.party(ctx, Receipts)


def _known(ctx: click.Context, rid: bytes) -> c.Receipt:
    return known(_rc(ctx).receipt(rid), "receipt", rid)


def _out(r: Result, what: str, **extra: Any) -> None:
    """One transaction's result as JSON, with what it created (``id``, a split's ``ids``)."""
    made = {"id": r.id} if r.id else {}
    outcome(r, what, **made, **({"ids": r.ids} if r.ids else {}), **extra)


@receipts.command("anchor")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@connection
@click.pass_context
def anchor(ctx, file: str) -> None:
    """Warehouse: anchor a receipt document's fingerprint (finance's evidence)."""
    with open(file, "rb") as fh:
        data = fh.read()
    r = _party(ctx).anchor_document(data)
    _out(r, "anchor", fingerprint=r.id.hex() if r.ok else None)


@receipts.command("issue")
@click.option("--to", "depositor", type=OrgRef(), required=True, help="The depositor (holder).")
@click.option("--quantity", type=QUANTITY, required=True, help="In minor units of --unit.")
@click.option("--item", type=Label(c.item_bytes_max), required=True)
@click.option("--unit", type=Label(c.unit_bytes_max), required=True, help="e.g. g, kg, pcs")
@click.option("--location", type=Label(c.location_bytes_max), required=True)
@click.option("--anchor", "fp", type=FINGERPRINT, help="An anchored receipt document's fingerprint.")
@connection
@click.pass_context
def issue(ctx, depositor, quantity, item, unit, location, fp) -> None:
    """Warehouse: issue a receipt for goods in store; prints its id."""
    to = remote.org(ctx, depositor)
    _out(_party(ctx).issue(to, quantity, item, unit, location, anchor=fp), "issue")


@receipts.command("goods")
@click.option("--feed", type=FeedArg(), required=True, help="The feed (1..8 bytes), e.g. gate-01.")
@click.option("--in", "ins", type=MoveArg(), multiple=True, help="RECEIPT:QUANTITY[:SEQ] in.")
@click.option("--out", "outs", type=MoveArg(), multiple=True, help="RECEIPT:QUANTITY[:SEQ] out.")
@connection
@click.pass_context
def goods(ctx, feed: bytes, ins: tuple, outs: tuple) -> None:
    """Warehouse: one batch of a feed's movements (ins first, then outs, in order)."""
    moves = [(m[0], MoveKind.GOODS_IN, *m[1:]) for m in ins] + [
        (m[0], MoveKind.GOODS_OUT, *m[1:]) for m in outs
    ]
    if not 1 <= len(moves) <= c.moves_per_tx_max:
        fail(f"a batch has 1..{c.moves_per_tx_max} movements (--in/--out)")
    if len({len(m) for m in moves}) != 1:
        fail("give a sequence number for every movement or for none")
    for m in moves:
        _known(ctx, m[0])
    r = _party(ctx).goods(feed, moves)
    _out(r, "goods", outcomes=[o.name for o in r.outcomes], anomalies=r.anomalies)


def _simple(name: str, method: str, doc: str) -> None:
    @receipts.command(name, help=doc)
    @click.argument("receipt", type=RECEIPT)
    @connection
    @click.pass_context
    def command(ctx, receipt: bytes) -> None:
        _known(ctx, receipt)
        _out(getattr(_party(ctx), method)(receipt), name)


for _name, _method, _doc in (
    ("accept", "accept", "Offeree: take the offered receipt, or the pledge."),
    ("return", "return_offer", "Offeree or holder: decline or withdraw a pending offer."),
    ("release", "release", "Pledgee: release the pledge."),
    ("default", "take_on_default", "Pledgee (bank), after the loan's due time: take the receipt."),
    ("close", "close", "Holder or warehouse: close a receipt whose balance is zero."),
):
    _simple(_name, _method, _doc)


@receipts.command("transfer")
@click.argument("receipt", type=RECEIPT)
@click.option("--to", type=OrgRef(), required=True)
@connection
@click.pass_context
def transfer(ctx, receipt: bytes, to) -> None:
    """Holder: offer the receipt to another organization (it accepts)."""
    _known(ctx, receipt)
    _out(_party(ctx).transfer(receipt, remote.org(ctx, to)), "transfer")


@receipts.command("pledge")
@click.argument("receipt", type=RECEIPT)
@click.option("--bank", type=OrgRef(), required=True)
@click.option("--loan", type=LOAN, required=True)
@click.option("--due-ms", type=TIME_MS, required=True, help="The loan's due time (Unix ms).")
@connection
@click.pass_context
def pledge(ctx, receipt: bytes, bank, loan: int, due_ms: int) -> None:
    """Holder: offer the receipt to a bank as collateral (the bank accepts)."""
    _known(ctx, receipt)
    _out(_party(ctx).pledge(receipt, remote.org(ctx, bank), loan, due_ms), "pledge")


@receipts.command("allow-out")
@click.argument("receipt", type=RECEIPT)
@click.argument("quantity", type=QUANTITY)
@connection
@click.pass_context
def allow_out(ctx, receipt: bytes, quantity: int) -> None:
    """Pledgee: let QUANTITY of the pledged goods leave (a partial release)."""
    _known(ctx, receipt)
    _out(_party(ctx).allow_out(receipt, quantity), "allow-out")


@receipts.command("split")
@click.argument("receipt", type=RECEIPT)
@click.argument("parts", type=QUANTITY, nargs=-1, required=True)
@connection
@click.pass_context
def split_cmd(ctx, receipt: bytes, parts: tuple[int, ...]) -> None:
    """Holder: split into 2..8 parts summing exactly to the balance; prints their ids."""
    if not 2 <= len(parts) <= c.split_ways_max:
        fail(f"2..{c.split_ways_max} parts")
    _known(ctx, receipt)
    _out(_party(ctx).split(receipt, list(parts)), "split")


@receipts.command("show")
@click.argument("receipt", type=RECEIPT)
@connection
@click.pass_context
def show(ctx, receipt: bytes) -> None:
    """A receipt decoded, with its history and movements."""
    _known(ctx, receipt)
    print_json(_rc(ctx).lineage(receipt)["receipt"])


@receipts.command("lineage")
@click.argument("receipt", type=RECEIPT)
@connection
@click.pass_context
def lineage(ctx, receipt: bytes) -> None:
    """The receipt's lineage: ancestors, parts, anchor, transfers, pledges, anomalies."""
    _known(ctx, receipt)
    print_json(_rc(ctx).lineage(receipt))


@receipts.command("anomalies")
@click.argument("warehouse", type=OrgRef())
@connection
@click.pass_context
def anomalies(ctx, warehouse) -> None:
    """Every anomaly recorded at a warehouse, in order."""
    print_json(_rc(ctx).anomalies_of(remote.org(ctx, warehouse)))
