"""``tierchain abs ...``: ABS pools with servicing reports from the command line (issue 20).

The ``abs`` app runs on a chain whose genesis names it after finance (``tierchain init --app
abs``). Commands, against a running node (``--node``), through ``tierchain.apps.abs.client``
(which derives every declared key):

* committee: ``propose-admit`` (an organization whose roles may include ``originator`` and
  ``servicer``, which ``finance propose-admit`` does not know);
* originator: ``register`` (contract and borrower references are turned into keyed
  fingerprints with the originator's reference key, 64 hex digits in the environment
  variable ``--reference-key-env``: the references never leave this machine), ``pool create``,
  ``pool select``, ``pool remove``, ``pool close``, ``pool transfer``; servicer: ``event``;
  trustee: ``pool accept``; originator or trustee: ``set-servicer``;
* anyone: ``show asset|pool``, ``stats POOL``, ``penetration POOL`` and ``report POOL --out
  DIR`` (JSON + HTML + PNG charts, from chain data; needs matplotlib, the ``reports`` extra).

The connection options (``--node``, ``--key``, ``--passphrase-env``, ``--wait``,
``--chain-id``) go before the command name or after it (after wins), as for ``tierchain
sharing``. Errors, as in ``tierchain finance``: a bad argument (malformed input, an id the
ledger does not know, a missing reference key) prints one line on stderr and exits 2; a
refusal by the ledger prints one line naming the code and exits 1; so does an unreachable
node, a key file that does not open, or a report without matplotlib. Nothing prints a
traceback. Results are JSON on stdout.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from tierchain.apps.abs import codes as c
from tierchain.apps.abs import report as abs_report
from tierchain.apps.abs.client import Abs, AbsParty, event_json
from tierchain.apps.abs.codes import AssetKind, Criteria, EventKind
from tierchain.cli import remote
from tierchain.cli.errors import CommandFailed
from tierchain.cli.finance import OrgRef
from tierchain.cli.remote import (
    Until,
    choice,
    connection,
    fail,
    known,
    outcome,
    print_json,
)
from tierchain.cli.types import PUBLIC_KEY, HexBytes

ID = HexBytes(c.id_bytes, "an asset or pool id", "id")
AMOUNT = click.IntRange(0, c.amount_max)
RATE = click.IntRange(0, c.rate_bp_max)
ROLE_NAMES = (
    "originator",
    "servicer",
    "trustee",
    "investor",
    "rating_agency",
    "bank",
    "regulator",
    "auditor",
)


def _abs(ctx: click.Context) -> Abs:
    return remote.client(ctx, Abs)


def _party(ctx: click.Context) -> AbsParty:
    return remote.party(ctx, Abs)


def _asset(a: Abs, asset_id: bytes) -> c.Asset:
    return known(a.asset(asset_id), "asset", asset_id)


def _pool(a: Abs, pool_id: bytes) -> c.Pool:
    return known(a.pool(pool_id), "pool", pool_id)


@remote.group("abs")
def abs_group() -> None:
    """ABS pools: underlying assets, cash flows, eligibility-checked pools, trusts, servicing
    reports (a chain running the abs app).

    The connection options may be given here or after a command's name (which wins)."""


@abs_group.command("propose-admit")
@click.argument("name")
@click.option("--role", "roles", type=click.Choice(ROLE_NAMES), multiple=True, required=True)
@click.option("--org-key", type=PUBLIC_KEY, required=True, help="The organization's first public key.")
@connection
@click.pass_context
def propose_admit(ctx, name: str, roles: tuple[str, ...], org_key: bytes) -> None:
    """Committee: propose admitting organization NAME with ROLES (abs roles included)."""
    if not 1 <= len(name.encode()) <= 64:
        fail("an organization name is 1..64 bytes")
    remote.key_path(ctx)
    a = _abs(ctx)
    keys = remote.keys(ctx)
    r = a.propose_admit(keys, name, roles, org_key)
    outcome(r, "propose-admit", proposal=r.id.hex(), org=a.org_id(name).hex())


def _reference_key(env: str) -> bytes:
    text = os.environ.get(env, "")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        fail(f"set {env} to the originator's reference key (64 hex digits) that fingerprints references")
    return key


@abs_group.command("register")
@click.option("--kind", type=choice(AssetKind), required=True)
@click.option("--principal", type=click.IntRange(1, c.amount_max), required=True, help="Minor units.")
@click.option("--rate-bp", type=RATE, required=True, help="Annual rate in basis points.")
@click.option("--start", type=Until(), required=True, help="ISO 8601 date or Unix ms.")
@click.option("--term", type=click.IntRange(1, c.term_months_max), required=True, help="Months.")
@click.option("--freq", type=click.IntRange(1, c.term_months_max), default=1, show_default=True,
              help="Months between installments (the term for a bullet).")  # fmt: skip
@click.option("--servicer", type=OrgRef(), required=True)
@click.option("--contract", required=True, help="The contract reference (fingerprinted here).")
@click.option("--obligor", required=True, help="The obligor's identity (fingerprinted here).")
@click.option("--file-id", type=HexBytes(16, "a sharing record id"), help="The encrypted asset file.")
@click.option("--reference-key-env", default="TIERCHAIN_ABS_REFERENCE_KEY", show_default=True)
@connection
@click.pass_context
def register(ctx, kind, principal, rate_bp, start, term, freq, servicer, contract, obligor, file_id,
             reference_key_env) -> None:  # fmt: skip
    """Originator: register an underlying asset; prints its id."""
    if term % freq:
        fail(f"--term {term} is not a multiple of --freq {freq}")
    ref_key = _reference_key(reference_key_env)
    party = _party(ctx)
    a = party.abs
    r = party.register(
        AssetKind[kind.upper()], principal, rate_bp, start, term, freq, servicer=remote.org(ctx, servicer),
        contract_fp=a.fingerprint(ref_key, contract), obligor_fp=a.fingerprint(ref_key, obligor),
        file_id=file_id or c.ZERO_ID,
    )  # fmt: skip
    outcome(r, "register", id=r.id.hex())


@abs_group.command("event")
@click.argument("asset", type=ID)
@click.argument("kind", type=choice(EventKind))
@click.option("--value-date", type=Until(), required=True, help="When it happened (ISO 8601 or Unix ms).")
@click.option("--principal", type=AMOUNT, default=0, help="Principal part / prepaid / arrears / recovered.")
@click.option("--interest", type=AMOUNT, default=0)
@click.option("--installment", type=click.IntRange(0, 65_535), default=0, help="REPAYMENT: its number.")
@click.option("--days-past-due", type=click.IntRange(0, c.days_past_due_max), default=0, help="OVERDUE.")
@connection
@click.pass_context
def event(ctx, asset, kind, value_date, principal, interest, installment, days_past_due) -> None:
    """Servicer: record a cash-flow event of ASSET (a default charges off the whole outstanding)."""
    ek = EventKind[kind.upper()]
    party = _party(ctx)
    a = _asset(party.abs, asset)
    aux = installment if ek == EventKind.REPAYMENT else days_past_due if ek == EventKind.OVERDUE else 0
    if ek == EventKind.DEFAULT:
        principal = a.outstanding
    r = party.event(asset, ek, value_date, principal, interest, aux)
    after = party.abs.asset(asset) if r.ok else None
    outcome(r, "event", asset=asset.hex(), seq=a.events, outstanding=after.outstanding if after else None,
            status=c.AssetStatus(after.status).name if after else None)  # fmt: skip


@abs_group.command("set-servicer")
@click.argument("servicer", type=OrgRef())
@click.argument("assets", type=ID, nargs=-1, required=True)
@connection
@click.pass_context
def set_servicer(ctx, servicer, assets) -> None:
    """Originator (trustee once the pool is in trust): appoint SERVICER for ASSETS of one pool."""
    if len(assets) > c.servicer_assets_per_tx_max:
        fail(f"at most {c.servicer_assets_per_tx_max} assets at a time")
    party = _party(ctx)
    for aid in assets:
        _asset(party.abs, aid)
    r = party.set_servicer(list(assets), remote.org(ctx, servicer))
    outcome(r, "set-servicer", assets=len(assets))


# --- pools ---------------------------------------------------------------------------------


@abs_group.group("pool")
def pool_group() -> None:
    """Pools: create, select, remove, close, transfer to a trustee, accept."""


@pool_group.command("create")
@click.argument("name")
@click.option("--max-principal", type=click.IntRange(1, c.amount_max), required=True)
@click.option("--min-rate-bp", type=RATE, default=0, show_default=True)
@click.option("--max-rate-bp", type=RATE, default=c.rate_bp_max, show_default=True)
@click.option("--max-remaining-months", type=click.IntRange(1, c.term_months_max), required=True)
@click.option("--kind", "kinds", type=choice(AssetKind), multiple=True, required=True)
@click.option("--max-assets", type=click.IntRange(1, c.pool_assets_max), default=c.pool_assets_max,
              show_default=True)  # fmt: skip
@connection
@click.pass_context
def pool_create(ctx, name, max_principal, min_rate_bp, max_rate_bp, max_remaining_months, kinds, max_assets):
    """Originator: open a pool NAME with its eligibility criteria; prints its id."""
    if not 1 <= len(name.encode()) <= c.pool_name_bytes_max:
        fail(f"a pool name is 1..{c.pool_name_bytes_max} bytes")
    if min_rate_bp > max_rate_bp:
        fail("--min-rate-bp is above --max-rate-bp")
    mask = sum(1 << AssetKind[k.upper()] for k in set(kinds))
    criteria = Criteria(max_principal, min_rate_bp, max_rate_bp, max_remaining_months, mask, max_assets)
    r = _party(ctx).create_pool(criteria, name)
    outcome(r, "pool create", id=r.id.hex())


def _membership(ctx, pool: bytes, assets: tuple[bytes, ...], what: str, act: str) -> None:
    party = _party(ctx)
    _pool(party.abs, pool)
    results = getattr(party, act)(pool, list(assets))
    last = results[-1]
    if not last.ok:
        done = sum(r.ok for r in results) * c.select_per_tx_max
        raise CommandFailed(
            f"{what} refused: {last.code.name} (tx {last.tx_id.hex()}; {done} assets before it)"
        )
    print_json(
        {"code": "OK", "tx_ids": [r.tx_id.hex() for r in results], "assets": party.abs.pool(pool).assets}
    )


@pool_group.command("select")
@click.argument("pool", type=ID)
@click.argument("assets", type=ID, nargs=-1, required=True)
@connection
@click.pass_context
def pool_select(ctx, pool, assets) -> None:
    """Originator: select ASSETS into POOL (in batches; each checked against the criteria)."""
    _membership(ctx, pool, assets, "pool select", "select")


@pool_group.command("remove")
@click.argument("pool", type=ID)
@click.argument("assets", type=ID, nargs=-1, required=True)
@connection
@click.pass_context
def pool_remove(ctx, pool, assets) -> None:
    """Originator: take ASSETS out of the open POOL."""
    _membership(ctx, pool, assets, "pool remove", "remove")


@pool_group.command("close")
@click.argument("pool", type=ID)
@connection
@click.pass_context
def pool_close(ctx, pool) -> None:
    """Originator: cut-off; POOL's asset list is final."""
    party = _party(ctx)
    _pool(party.abs, pool)
    outcome(party.close(pool), "pool close", id=pool.hex())


@pool_group.command("transfer")
@click.argument("pool", type=ID)
@click.argument("trustee", type=OrgRef())
@connection
@click.pass_context
def pool_transfer(ctx, pool, trustee) -> None:
    """Originator: offer the closed POOL to TRUSTEE's trust."""
    party = _party(ctx)
    _pool(party.abs, pool)
    outcome(party.transfer(pool, remote.org(ctx, trustee)), "pool transfer", id=pool.hex())


@pool_group.command("accept")
@click.argument("pool", type=ID)
@connection
@click.pass_context
def pool_accept(ctx, pool) -> None:
    """Trustee: accept the POOL offered to its trust."""
    party = _party(ctx)
    _pool(party.abs, pool)
    outcome(party.accept(pool), "pool accept", id=pool.hex())


# --- reads ---------------------------------------------------------------------------------


@abs_group.command("show")
@click.argument("what", type=click.Choice(["asset", "pool"]))
@click.argument("id_", metavar="ID", type=ID)
@connection
@click.pass_context
def show(ctx, what, id_) -> None:
    """An asset with its cash flows, or a pool with its criteria."""
    a = _abs(ctx)
    if what == "asset":
        asset = _asset(a, id_)
        print_json(
            {
                **a.asset_json(id_, asset),
                "cash_flows": [event_json(i, e) for i, e in enumerate(a.events(id_))],
            }
        )
    else:
        print_json(a.pool_json(id_, _pool(a, id_)))


@abs_group.command("stats")
@click.argument("pool", type=ID)
@connection
@click.pass_context
def stats(ctx, pool) -> None:
    """POOL's statistics from chain data (exact fractions and basis points)."""
    a = _abs(ctx)
    _pool(a, pool)
    print_json(a.stats(pool).to_json())


@abs_group.command("penetration")
@click.argument("pool", type=ID)
@connection
@click.pass_context
def penetration(ctx, pool) -> None:
    """POOL down to every asset and every cash flow."""
    a = _abs(ctx)
    _pool(a, pool)
    print_json(a.penetration(pool))


@abs_group.command("report")
@click.argument("pool", type=ID)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@connection
@click.pass_context
def report(ctx, pool, out: Path) -> None:
    """POOL's servicing report into OUT: report.json, report.html and its PNG charts."""
    try:
        abs_report._pyplot()  # before the node is asked: one line if matplotlib is missing
    except abs_report.ReportUnavailable as exc:
        raise CommandFailed(str(exc)) from exc
    a = _abs(ctx)
    _pool(a, pool)
    paths = abs_report.write_report(abs_report.report_data(a, pool), out)
    print_json({"pool": pool.hex(), **paths})
