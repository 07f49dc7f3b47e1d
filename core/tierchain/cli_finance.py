"""``tierchain finance ...``: supply-chain finance from the command line (docs/finance.md).

Write commands sign with ``--key`` (a sealed key file) and send to a running node
(``--node``), like ``tierchain tx send``; every declared key is computed by
``tierchain.finance.client``. Organizations are named by name or by 32-hex id.
``lineage`` reads the database directory directly (read-only), like ``state get``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from tierchain.crypto import load_key_file
from tierchain.finance import DocType
from tierchain.finance import codes as c
from tierchain.finance.client import Finance, Party, RemoteLedger, Result


def _org(text: str) -> bytes:
    """An organization by 32-hex id or by name."""
    if len(text) == 32:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return c.org_id(text)


def _id(text: str) -> bytes:
    raw = bytes.fromhex(text)
    if len(raw) != c.id_bytes:
        raise click.BadParameter("ids are 16 bytes (32 hex digits)")
    return raw


def _passphrase(env: str) -> str:
    return os.environ.get(env) or click.prompt("Key passphrase", hide_input=True)


@click.group("finance")
@click.option("--node", "url", default="http://127.0.0.1:7545", show_default=True)
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), help="Signing key file.")
@click.option("--chain-id", type=int, default=1, show_default=True)
@click.option("--passphrase-env", default="TIERCHAIN_PASSPHRASE", show_default=True)
@click.option(
    "--secret-env",
    default="TIERCHAIN_CONSORTIUM_SECRET",
    show_default=True,
    help="Environment variable holding the consortium secret (hex) that blinds registry fingerprints.",
)
@click.option("--wait", "wait_s", type=float, default=10.0, show_default=True)
@click.pass_context
def finance(ctx, url, key_file, chain_id, passphrase_env, secret_env, wait_s) -> None:
    """Supply-chain finance: organizations, documents, vouchers, registry, lineage."""
    ctx.obj = dict(
        url=url, key_file=key_file, chain_id=chain_id, passphrase_env=passphrase_env, wait_s=wait_s,
        secret=bytes.fromhex(os.environ.get(secret_env, "")),
    )  # fmt: skip


def _party(ctx: click.Context) -> Party:
    from tierchain.rpc import NodeClient

    o = ctx.obj
    if o["key_file"] is None:
        raise click.UsageError("this command signs: give --key")
    keys = load_key_file(o["key_file"], _passphrase(o["passphrase_env"]))
    fin = Finance(RemoteLedger(NodeClient(o["url"]), o["chain_id"]), o["secret"], timeout_s=o["wait_s"])
    return fin.party(keys)


def _report(results: Result | list[Result]) -> None:
    results = results if isinstance(results, list) else [results]
    out = [
        {
            "code": r.code.name,
            "tx_id": r.tx_id.hex(),
            **({"id": r.id.hex()} if r.id else {}),
            **({"ids": [i.hex() for i in r.ids]} if r.ids else {}),
        }
        for r in results
    ]
    click.echo(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    if not all(r.ok for r in results):
        sys.exit(1)


@finance.command("propose-admit")
@click.argument("name")
@click.option(
    "--role", "roles", multiple=True, required=True, help="A role of the organization (repeatable)."
)
@click.option("--org-key", required=True, help="The organization's first public key (hex).")
@click.pass_context
def propose_admit(ctx, name: str, roles: tuple[str, ...], org_key: str) -> None:
    """Committee: propose admitting organization NAME (executes at the vote threshold)."""
    _report(_party(ctx).propose_admit(name, roles, bytes.fromhex(org_key)))


@finance.command("propose-roles")
@click.argument("org")
@click.option("--role", "roles", multiple=True, required=True)
@click.pass_context
def propose_roles(ctx, org: str, roles: tuple[str, ...]) -> None:
    """Committee: propose replacing the roles of ORG."""
    _report(_party(ctx).propose_roles(_org(org), roles))


@finance.command("vote")
@click.argument("proposal")
@click.pass_context
def vote(ctx, proposal: str) -> None:
    """Committee: vote for PROPOSAL (hex id)."""
    _report(_party(ctx).vote(_id(proposal)))


@finance.command("key")
@click.argument("action", type=click.Choice(["add", "revoke", "rotate"]))
@click.argument("public_key")
@click.pass_context
def key(ctx, action: str, public_key: str) -> None:
    """Add, revoke or rotate to PUBLIC_KEY (hex) for the signer's organization."""
    party, pk = _party(ctx), bytes.fromhex(public_key)
    _report({"add": party.add_key, "revoke": party.revoke_key, "rotate": party.rotate_key}[action](pk))


@finance.command("anchor")
@click.argument("doc_type", type=click.Choice([t.name.lower() for t in DocType]))
@click.argument("document", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def anchor(ctx, doc_type: str, document: Path) -> None:
    """Anchor the fingerprint of DOCUMENT (a file) as DOC_TYPE; prints the fingerprint as id."""
    r = _party(ctx).anchor(
        DocType[doc_type.upper()], fingerprint=c.document_fingerprint(document.read_bytes())
    )
    click.echo(json.dumps({"code": r.code.name, "tx_id": r.tx_id.hex(), "fingerprint": r.id.hex()}, indent=2))
    if not r.ok:
        sys.exit(1)


@finance.command("confirm")
@click.option("--to", "beneficiary", required=True, help="The supplier organization (name or id).")
@click.option("--face", type=int, required=True, help="Face amount, minor units.")
@click.option("--maturity-ms", type=int, required=True, help="Maturity, Unix milliseconds.")
@click.option("--doc", "docs", multiple=True, required=True, help="TYPE:FINGERPRINT_HEX (repeatable).")
@click.pass_context
def confirm(ctx, beneficiary: str, face: int, maturity_ms: int, docs: tuple[str, ...]) -> None:
    """Core enterprise: confirm a payable and issue a voucher (prints its id)."""
    parsed = []
    for d in docs:
        t, _, fp = d.partition(":")
        parsed.append((DocType[t.upper()], bytes.fromhex(fp)))
    _report(_party(ctx).confirm(_org(beneficiary), face, maturity_ms, parsed))


@finance.command("split")
@click.argument("piece")
@click.argument("amounts", nargs=-1, type=int, required=True)
@click.pass_context
def split(ctx, piece: str, amounts: tuple[int, ...]) -> None:
    """Split PIECE into AMOUNTS (they must sum to it exactly)."""
    _report(_party(ctx).split(_id(piece), list(amounts)))


@finance.command("transfer")
@click.argument("piece")
@click.option("--to", required=True)
@click.pass_context
def transfer(ctx, piece: str, to: str) -> None:
    """Offer PIECE to the supplier --to; it moves when they accept."""
    _report(_party(ctx).transfer(_id(piece), _org(to)))


@finance.command("accept")
@click.argument("piece")
@click.pass_context
def accept(ctx, piece: str) -> None:
    """Accept the offer of PIECE made to the signer's organization."""
    _report(_party(ctx).accept(_id(piece)))


@finance.command("return")
@click.argument("piece")
@click.pass_context
def return_(ctx, piece: str) -> None:
    """Return (refuse, or withdraw) the offer of PIECE."""
    _report(_party(ctx).return_offer(_id(piece)))


@finance.command("discount")
@click.argument("piece")
@click.option("--bank", required=True)
@click.option("--price", type=int, required=True)
@click.pass_context
def discount(ctx, piece: str, bank: str, price: int) -> None:
    """Offer PIECE to --bank for --price (discount sale)."""
    _report(_party(ctx).discount(_id(piece), _org(bank), price))


@finance.command("pledge")
@click.argument("piece")
@click.option("--bank", required=True)
@click.option("--loan", type=int, required=True)
@click.option("--due-ms", type=int, required=True, help="Loan due time, Unix milliseconds.")
@click.pass_context
def pledge(ctx, piece: str, bank: str, loan: int, due_ms: int) -> None:
    """Offer PIECE to --bank as a pledge for a --loan."""
    _report(_party(ctx).pledge(_id(piece), _org(bank), loan, due_ms))


@finance.command("release")
@click.argument("piece")
@click.pass_context
def release(ctx, piece: str) -> None:
    """Lender: release the pledge on PIECE."""
    _report(_party(ctx).release(_id(piece)))


@finance.command("default-transfer")
@click.argument("piece")
@click.pass_context
def default_transfer(ctx, piece: str) -> None:
    """Lender: take PIECE after its loan fell due."""
    _report(_party(ctx).default_transfer(_id(piece)))


@finance.command("settle")
@click.argument("voucher")
@click.pass_context
def settle(ctx, voucher: str) -> None:
    """Obligor: settle every live piece of VOUCHER (one clearing list per batch)."""
    _report(_party(ctx).settle(_id(voucher)))


@finance.command("register-asset")
@click.argument("asset_kind")
@click.argument("asset_id")
@click.option("--value", type=int, required=True)
@click.pass_context
def register_asset(ctx, asset_kind: str, asset_id: str, value: int) -> None:
    """Attester: register an asset's value under its blinded fingerprint."""
    party = _party(ctx)
    _report(party.reg_asset(party.fin.blind(asset_kind, asset_id.encode()), value))


@finance.command("finance")
@click.argument("asset_kind")
@click.argument("asset_id")
@click.option("--amount", type=int, required=True)
@click.option("--ref", required=True, help="The bank's private reference of this financing.")
@click.pass_context
def finance_asset(ctx, asset_kind: str, asset_id: str, amount: int, ref: str) -> None:
    """Bank: record a financing against an asset, if it fits (the registry says only yes or no)."""
    party = _party(ctx)
    _report(party.reg_finance(party.fin.blind(asset_kind, asset_id.encode()), amount, ref.encode()))


@finance.command("lineage")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("piece")
def lineage_cmd(directory: Path, piece: str) -> None:
    """Print the lineage of PIECE from the chain database in DIRECTORY (read-only) as JSON."""
    from tierchain import state_log
    from tierchain.finance.lineage import LineageError, lineage
    from tierchain.storage import Store

    with Store(directory / "db", readonly=True) as store, store.read() as r:
        try:
            out = lineage(state_log.reader(r), _id(piece))
        except LineageError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(out, indent=2))
