"""``tierchain finance ...``: supply-chain finance from the command line (docs/finance.md).

Write commands sign with ``--key`` (a sealed key file) and send to a running node
(``--node``), like ``tierchain tx send``; every declared key is computed by
``tierchain.apps.finance.client``. Organizations are named by name or by 32-hex id.
Ids, document fingerprints and blinded fingerprints are hashes of the chain's crypto
suite: a write command takes it from the node (``/v1/head``), a read-only one from the
database's genesis, before it hashes a name, a document or an asset.
Read-only commands (``lineage``, ``show voucher|piece|org``, ``fits``) read the
database directory directly, opened read-only: they take no writer lock and work
beside a running node, seeing committed data only.

Errors: a bad argument (malformed hex, a wrong length, an amount out of range, an
id or organization the ledger does not know, a missing consortium secret) prints
one line on stderr and exits 2; a refusal by the ledger prints one line naming the
code and exits 1; so does an unreachable node or an unreadable key file. Nothing
prints a traceback. Results are JSON on stdout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from tierchain.apps.finance import DocType, views
from tierchain.apps.finance import codes as c
from tierchain.apps.finance import registry as reg
from tierchain.apps.finance.client import Finance, Party, RemoteLedger, Result
from tierchain.cli.errors import EXIT_USAGE, CommandFailed
from tierchain.cli.types import (
    AMOUNT,
    CHAIN_ID,
    FINANCE_ID,
    NODE_URL,
    PUBLIC_KEY,
    HexBytes,
    check_key_suite,
    passphrase_option,
    read_passphrase,
)
from tierchain.config import ROLES
from tierchain.crypto import CryptoSuite, load_key_file
from tierchain.crypto import confidential as conf
from tierchain.engine.apps import validator_power_max

# --- argument types (generic ones in cli_types) -------------------------------------------------


class OrgRef(click.ParamType):
    """An organization by 32-hex id (``bytes``) or by name (1..64 bytes of UTF-8, kept as
    ``str``): a name's id is a hash of the chain's suite, known only once the command
    reaches the chain (``_org_id``)."""

    name = "org"

    def convert(self, value: Any, param: Any, ctx: Any) -> bytes | str:
        if isinstance(value, bytes):
            return value
        if len(value) == 2 * c.id_bytes:
            try:
                return bytes.fromhex(value)
            except ValueError:
                pass
        if not 1 <= len(value.encode()) <= c.org_name_bytes_max:
            self.fail(f"an organization name is 1..{c.org_name_bytes_max} bytes (or a 32-hex id)", param, ctx)
        return value


def _org_id(org: bytes | str, suite: CryptoSuite) -> bytes:
    """The id of an ``OrgRef`` on a chain of ``suite``."""
    return org if isinstance(org, bytes) else c.org_id(org, suite=suite)


class DocRef(click.ParamType):
    """``TYPE:FINGERPRINT_HEX``: a document type and its 32-byte fingerprint."""

    name = "type:fingerprint"
    _types = ", ".join(t.name.lower() for t in DocType)

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, bytes]:
        if isinstance(value, tuple):
            return value
        kind, sep, fp = value.partition(":")
        if not sep or kind.upper() not in DocType.__members__:
            self.fail(f"{value!r} is not TYPE:FINGERPRINT (TYPE: {self._types})", param, ctx)
        return DocType[kind.upper()], FINGERPRINT.convert(fp, param, ctx)


ID = FINANCE_ID
FINGERPRINT = HexBytes(32, "a document fingerprint", "fingerprint")
TIME_MS = click.IntRange(1, (1 << 64) - 1)
ROLE = click.Choice(ROLES)
directory_arg = click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))


def _fail(message: str) -> NoReturn:
    """A bad argument found in a command's body (an unknown id, a missing secret): exit 2."""
    raise CommandFailed(message, EXIT_USAGE)


# --- the group ---------------------------------------------------------------------------------


@click.group("finance")
@click.option("--node", "url", type=NODE_URL, default="http://127.0.0.1:7545", show_default=True)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Signing key file.",
)
@click.option("--chain-id", type=CHAIN_ID, default=1, show_default=True)
@passphrase_option
@click.option(
    "--secret-env",
    default="TIERCHAIN_CONSORTIUM_SECRET",
    show_default=True,
    help="Environment variable holding the consortium secret (hex, at least 16 bytes) that blinds "
    "registry fingerprints. Required by confirm, register-asset, finance, release-financing, fits.",
)
@click.option("--wait", "wait_s", type=click.FloatRange(0, 3600), default=10.0, show_default=True)
@click.pass_context
def finance(ctx, url, key_file, chain_id, passphrase_env, secret_env, wait_s) -> None:
    """Supply-chain finance: organizations, documents, vouchers, registry, lineage."""
    ctx.obj = dict(
        url=url, key_file=key_file, chain_id=chain_id, passphrase_env=passphrase_env, wait_s=wait_s,
        secret_env=secret_env,
    )  # fmt: skip


def _secret(ctx: click.Context) -> bytes:
    """The consortium secret from the environment, or one line saying what to set."""
    env = ctx.obj["secret_env"]
    text = os.environ.get(env, "")
    hint = (
        f"set {env} to the consortium's shared secret (hex, at least {reg.consortium_secret_bytes_min} bytes)"
    )
    if not text:
        _fail(f"no consortium secret: {hint}")
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        _fail(f"{env} is not hex: {hint}")
    if len(secret) < reg.consortium_secret_bytes_min:
        _fail(f"{env} is too short: {hint}")
    return secret


def _party(ctx: click.Context, secret: bytes | None = None) -> Party:
    """The signer, acting on the node; call it after every argument is checked (it may prompt
    for the key's passphrase). A key of another suite than the node's is refused, naming both."""
    from tierchain.api.rpc import NodeClient

    o = ctx.obj
    if o["key_file"] is None:
        _fail(f"{ctx.command_path}: this command signs: give --key FILE (before the command name)")
    fin = Finance(RemoteLedger(NodeClient(o["url"]), o["chain_id"]), secret, timeout_s=o["wait_s"])
    keys = load_key_file(o["key_file"], read_passphrase(o["passphrase_env"]))
    check_key_suite(keys, fin.suite.name, o["key_file"])
    return fin.party(keys)


def _known(value: Any, what: str, ident: bytes) -> None:
    """An id the ledger does not know is a bad argument (exit 2), not a refusal."""
    if value is None:
        _fail(f"no {what} {ident.hex()} on the ledger")


def _report(results: Result | list[Result], what: str) -> None:
    """JSON of the results on stdout; a refusal is one line on stderr and exit code 1.

    Ids a refused transaction would have created are never printed."""
    results = results if isinstance(results, list) else [results]
    done = [r for r in results if r.ok]
    out = [
        {
            "code": r.code.name,
            "tx_id": r.tx_id.hex(),
            **({"id": r.id.hex()} if r.id else {}),
            **({"ids": [i.hex() for i in r.ids]} if r.ids else {}),
        }
        for r in done
    ]
    refused = next((r for r in results if not r.ok), None)
    if refused is None:
        click.echo(json.dumps(out[0] if len(out) == 1 else out, indent=2))
        return
    if out:  # e.g. settlement batches that went through before one was refused
        click.echo(json.dumps(out, indent=2))
    raise click.ClickException(f"{what} refused: {refused.code.name} (tx {refused.tx_id.hex()})")


# --- committee ------------------------------------------------------------------------------------


@finance.command("propose-admit")
@click.argument("name")
@click.option("--role", "roles", type=ROLE, multiple=True, required=True, help="A role (repeatable).")
@click.option("--org-key", type=PUBLIC_KEY, required=True, help="The organization's first public key (hex).")
@click.pass_context
def propose_admit(ctx, name: str, roles: tuple[str, ...], org_key: bytes) -> None:
    """Committee: propose admitting organization NAME (executes at the vote threshold)."""
    if not 1 <= len(name.encode()) <= c.org_name_bytes_max:
        _fail(f"an organization name is 1..{c.org_name_bytes_max} bytes")
    _report(_party(ctx).propose_admit(name, roles, org_key), "propose-admit")


@finance.command("propose-roles")
@click.argument("org", type=OrgRef())
@click.option("--role", "roles", type=ROLE, multiple=True, required=True)
@click.pass_context
def propose_roles(ctx, org: bytes | str, roles: tuple[str, ...]) -> None:
    """Committee: propose replacing the roles of ORG."""
    party = _party(ctx)
    _report(party.propose_roles(_org(party, org), roles), "propose-roles")


@finance.command("propose-params")
@click.option("--threshold", type=click.IntRange(1, c.votes_max), help="Votes that execute a proposal.")
@click.option("--max-depth", type=click.IntRange(1, 32), help="Splits allowed from a root piece.")
@click.option("--min-piece", type=click.IntRange(1, (1 << 64) - 1), help="Smallest piece, minor units.")
@click.option("--default-grace-ms", type=click.IntRange(0, (1 << 64) - 1), help="Overdue to default.")
@click.pass_context
def propose_params(ctx, threshold, max_depth, min_piece, default_grace_ms) -> None:
    """Committee: propose consortium parameters (unnamed ones keep their current value)."""
    import dataclasses

    given = dict(
        threshold=threshold, max_depth=max_depth, min_piece=min_piece, default_grace_ms=default_grace_ms
    )
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        _fail("name at least one parameter to change (see --help)")
    party = _party(ctx)
    _report(party.propose_params(dataclasses.replace(party.fin.params(), **changes)), "propose-params")


@finance.command("propose-validator")
@click.argument("public_key", type=PUBLIC_KEY)
@click.option(
    "--power",
    type=click.IntRange(0, validator_power_max),
    required=True,
    help="Voting power; 0 removes the validator.",
)
@click.pass_context
def propose_validator(ctx, public_key: bytes, power: int) -> None:
    """Committee: propose a consensus validator's voting power (a replicated chain's
    CometBFT validator key, hex: `cometbft show-validator`; docs/replication.md)."""
    _report(_party(ctx).propose_validator(public_key, power), "propose-validator")


@finance.command("propose-regulator-key")
@click.argument("public_key", type=PUBLIC_KEY)
@click.pass_context
def propose_regulator_key(ctx, public_key: bytes) -> None:
    """Committee: propose the regulator's ElGamal key (hex: `finance regulator-key`), which
    every confidential amount is encrypted to (docs/privacy.md)."""
    _report(_party(ctx).propose_regulator_key(public_key), "propose-regulator-key")


def _regulator_keys(env: str) -> conf.ElGamalKeypair:
    """The regulator's ElGamal key pair from the 32-byte hex seed in environment variable ``env``."""
    raw = os.environ.get(env)
    if raw is None:
        _fail(f"environment variable {env} is not set (the regulator's 32-byte seed, hex)")
    try:
        seed = bytes.fromhex(raw.strip())
    except ValueError:
        seed = b""
    if len(seed) != 32:
        _fail(f"{env} must hold 64 hex digits (the regulator's 32-byte seed)")
    return conf.elgamal_keypair(seed)


@finance.command("regulator-key")
@click.option(
    "--seed-env", metavar="NAME", required=True, help="Environment variable with the 32-byte seed (hex)."
)
def regulator_key(seed_env: str) -> None:
    """Print the regulator's ElGamal public key derived from its seed (for
    `propose-regulator-key`); the seed never leaves this process."""
    _print_json({"public_key": _regulator_keys(seed_env).public.hex()})


@finance.command("vote")
@click.argument("proposal", type=ID)
@click.pass_context
def vote(ctx, proposal: bytes) -> None:
    """Committee: vote for PROPOSAL (hex id)."""
    party = _party(ctx)
    _known(party.fin.proposal(proposal), "proposal", proposal)
    _report(party.vote(proposal), "vote")


@finance.command("key")
@click.argument("action", type=click.Choice(["add", "revoke", "rotate"]))
@click.argument("public_key", type=PUBLIC_KEY)
@click.pass_context
def key(ctx, action: str, public_key: bytes) -> None:
    """Add, revoke or rotate to PUBLIC_KEY (hex) for the signer's organization."""
    party = _party(ctx)
    act: dict[str, Callable[[bytes], Result]] = {
        "add": party.add_key, "revoke": party.revoke_key, "rotate": party.rotate_key,
    }  # fmt: skip
    _report(act[action](public_key), f"key {action}")


# --- documents and vouchers -------------------------------------------------------------------------


@finance.command("anchor")
@click.argument("doc_type", type=click.Choice([t.name.lower() for t in DocType]))
@click.argument("document", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def anchor(ctx, doc_type: str, document: Path) -> None:
    """Anchor the fingerprint of DOCUMENT (a file) as DOC_TYPE; prints the fingerprint (the
    chain's suite's digest of the file)."""
    data = document.read_bytes()
    party = _party(ctx)
    fp = party.fin.document_fingerprint(data)
    r = party.anchor(DocType[doc_type.upper()], fingerprint=fp)
    if not r.ok:
        _report(r, "anchor")
    click.echo(json.dumps({"code": r.code.name, "tx_id": r.tx_id.hex(), "fingerprint": fp.hex()}, indent=2))


@finance.command("confirm")
@click.option("--to", "beneficiary", type=OrgRef(), required=True, help="The supplier (name or id).")
@click.option("--face", type=AMOUNT, required=True, help="Face amount, minor units.")
@click.option("--maturity-ms", type=TIME_MS, required=True, help="Maturity, Unix milliseconds.")
@click.option(
    "--doc", "docs", type=DocRef(), multiple=True, help="TYPE:FINGERPRINT (repeatable; an invoice at least)."
)
@click.pass_context
def confirm(
    ctx, beneficiary: bytes | str, face: int, maturity_ms: int, docs: tuple[tuple[int, bytes], ...]
) -> None:
    """Core enterprise: confirm a payable and issue a voucher (prints its id).

    The invoice and contract must have been anchored by the signer's organization or
    by the beneficiary (DOC_NOT_FROM_PARTY otherwise)."""
    if not any(t == DocType.INVOICE for t, _ in docs):
        _fail("a confirmation needs an anchored invoice: give --doc invoice:FINGERPRINT")
    if len(docs) > c.docs_per_voucher_max:
        _fail(f"at most {c.docs_per_voucher_max} documents back a voucher")
    party = _party(ctx, _secret(ctx))
    beneficiary = _org(party, beneficiary)
    _report(party.confirm(beneficiary, face, maturity_ms, list(docs)), "confirm")


def _piece(party: Party, piece: bytes) -> None:
    _known(party.fin.piece(piece), "piece", piece)


def _org(party: Party, org: bytes | str) -> bytes:
    """The id of an ``OrgRef`` on the party's chain; exit 2 if the ledger has no such organization."""
    oid = _org_id(org, party.suite)
    _known(party.fin.org(oid), "organization", oid)
    return oid


@finance.command("cconfirm")
@click.option("--to", "beneficiary", type=OrgRef(), required=True, help="The supplier (name or id).")
@click.option("--face", type=AMOUNT, required=True, help="Face amount, minor units (hidden on chain).")
@click.option("--maturity-ms", type=TIME_MS, required=True, help="Maturity, Unix milliseconds.")
@click.option(
    "--doc", "docs", type=DocRef(), multiple=True, help="TYPE:FINGERPRINT (repeatable; an invoice at least)."
)
@click.option("--recipient", type=PUBLIC_KEY, required=True, help="A key of the supplier: gets the opening.")
@click.pass_context
def cconfirm(
    ctx,
    beneficiary: bytes | str,
    face: int,
    maturity_ms: int,
    docs: tuple[tuple[int, bytes], ...],
    recipient: bytes,
) -> None:
    """Core enterprise: `confirm` with the face hidden (a confidential voucher, docs/privacy.md);
    the face's opening is sealed to --recipient."""
    if not any(t == DocType.INVOICE for t, _ in docs):
        _fail("a confirmation needs an anchored invoice: give --doc invoice:FINGERPRINT")
    if len(docs) > c.docs_per_voucher_max:
        _fail(f"at most {c.docs_per_voucher_max} documents back a voucher")
    party = _party(ctx, _secret(ctx))
    beneficiary = _org(party, beneficiary)
    _confidential(lambda: party.cconfirm(beneficiary, face, maturity_ms, list(docs), recipient), "cconfirm")


def _confidential(build: Callable[[], Result], what: str) -> None:
    """Run a confidential op's builder: what it cannot build (no regulator key yet, no opening
    for this key, a price above the amount) is a one-line failure, exit 1."""
    try:
        result = build()
    except ValueError as exc:
        raise CommandFailed(f"{what}: {exc}") from None
    _report(result, what)


@finance.command("csplit")
@click.argument("piece", type=ID)
@click.argument("amounts", nargs=-1, type=AMOUNT, required=True)
@click.pass_context
def csplit(ctx, piece: bytes, amounts: tuple[int, ...]) -> None:
    """Split confidential PIECE into AMOUNTS (2..4, summing to its hidden amount; the
    signer's opening is read from the chain); prints the children."""
    if not 2 <= len(amounts) <= c.csplit_ways_max:
        _fail(f"a confidential split has 2..{c.csplit_ways_max} amounts, not {len(amounts)}")
    party = _party(ctx)
    _piece(party, piece)
    _confidential(lambda: party.csplit(piece, list(amounts)), "csplit")


@finance.command("coffer")
@click.argument("piece", type=ID)
@click.option("--to", type=OrgRef(), required=True, help="The offeree (name or id).")
@click.option("--recipient", type=PUBLIC_KEY, required=True, help="A key of the offeree: gets the opening.")
@click.option("--discount-price", type=AMOUNT, default=None, help="A discount sale at this hidden price.")
@click.option("--loan", type=AMOUNT, default=None, help="A pledge for this hidden loan (with --due-ms).")
@click.option("--due-ms", type=TIME_MS, default=None, help="The pledge's loan due time, Unix ms.")
@click.pass_context
def coffer(
    ctx,
    piece: bytes,
    to: bytes | str,
    recipient: bytes,
    discount_price: int | None,
    loan: int | None,
    due_ms: int | None,
) -> None:
    """Offer confidential PIECE to --to: a transfer, or with --discount-price a discount, or
    with --loan and --due-ms a pledge; the offeree accepts with `accept`."""
    if discount_price is not None and loan is not None:
        _fail("either --discount-price or --loan, not both")
    if (loan is None) != (due_ms is None):
        _fail("a pledge needs both --loan and --due-ms")
    kind, price = c.OfferKind.TRANSFER, 0
    if discount_price is not None:
        kind, price = c.OfferKind.DISCOUNT, discount_price
    elif loan is not None:
        kind, price = c.OfferKind.PLEDGE, loan
    party = _party(ctx)
    _piece(party, piece)
    to = _org(party, to)
    _confidential(lambda: party.coffer(piece, to, recipient, kind, price, due_ms or 0), "coffer")


@finance.command("opening")
@click.argument("piece", type=ID)
@click.pass_context
def opening(ctx, piece: bytes) -> None:
    """The signer's view of confidential PIECE: its amount, from the opening sealed to the
    signer's key (checked against the piece's commitments). Prints {"piece", "amount"}."""
    party = _party(ctx)
    _piece(party, piece)
    found = party.opening(piece)
    if found is None:
        raise CommandFailed(
            f"piece {piece.hex()}: no opening for this key (not its holder, or not confidential)"
        )
    _print_json({"piece": piece.hex(), "amount": found.amount})


@finance.command("split")
@click.argument("piece", type=ID)
@click.argument("amounts", nargs=-1, type=AMOUNT, required=True)
@click.pass_context
def split(ctx, piece: bytes, amounts: tuple[int, ...]) -> None:
    """Split PIECE into AMOUNTS (2..8 of them, summing to it exactly); prints the children."""
    if not 2 <= len(amounts) <= c.split_ways_max:
        _fail(f"a split has 2..{c.split_ways_max} amounts, not {len(amounts)}")
    party = _party(ctx)
    _piece(party, piece)
    _report(party.split(piece, list(amounts)), "split")


@finance.command("transfer")
@click.argument("piece", type=ID)
@click.option("--to", type=OrgRef(), required=True, help="The next-tier supplier (name or id).")
@click.pass_context
def transfer(ctx, piece: bytes, to: bytes | str) -> None:
    """Offer PIECE to the supplier --to; it moves when they accept."""
    party = _party(ctx)
    _piece(party, piece)
    _report(party.transfer(piece, _org(party, to)), "transfer")


@finance.command("discount")
@click.argument("piece", type=ID)
@click.option("--bank", type=OrgRef(), required=True)
@click.option("--price", type=AMOUNT, required=True)
@click.pass_context
def discount(ctx, piece: bytes, bank: bytes | str, price: int) -> None:
    """Offer PIECE to --bank for --price (discount sale)."""
    party = _party(ctx)
    _piece(party, piece)
    _report(party.discount(piece, _org(party, bank), price), "discount")


@finance.command("pledge")
@click.argument("piece", type=ID)
@click.option("--bank", type=OrgRef(), required=True)
@click.option("--loan", type=AMOUNT, required=True)
@click.option("--due-ms", type=TIME_MS, required=True, help="Loan due time, Unix milliseconds.")
@click.pass_context
def pledge(ctx, piece: bytes, bank: bytes | str, loan: int, due_ms: int) -> None:
    """Offer PIECE to --bank as a pledge for a --loan."""
    party = _party(ctx)
    _piece(party, piece)
    _report(party.pledge(piece, _org(party, bank), loan, due_ms), "pledge")


def _piece_command(name: str, help_text: str, act: Callable[[Party, bytes], Any]) -> None:
    @finance.command(name, help=help_text)
    @click.argument("piece", type=ID)
    @click.pass_context
    def command(ctx, piece: bytes) -> None:
        party = _party(ctx)
        _piece(party, piece)
        _report(act(party, piece), name)


_piece_command(
    "accept", "Accept the offer of PIECE made to the signer's organization.", lambda p, x: p.accept(x)
)
_piece_command("return", "Return (refuse, or withdraw) the offer of PIECE.", lambda p, x: p.return_offer(x))
_piece_command("release", "Lender: release the pledge on PIECE.", lambda p, x: p.release(x))
_piece_command(
    "default-transfer", "Lender: take PIECE after its loan fell due.", lambda p, x: p.default_transfer(x)
)


def _voucher_command(name: str, help_text: str, act: Callable[[Party, bytes], Any]) -> None:
    @finance.command(name, help=help_text)
    @click.argument("voucher", type=ID)
    @click.pass_context
    def command(ctx, voucher: bytes) -> None:
        party = _party(ctx)
        _known(party.fin.voucher(voucher), "voucher", voucher)
        _report(act(party, voucher), name)


_voucher_command(
    "settle",
    "Obligor: settle every live piece of VOUCHER (one clearing list per batch of 24).",
    lambda p, v: p.settle(v),
)
_voucher_command(
    "mark-overdue", "Any member: mark VOUCHER overdue (at or after maturity).", lambda p, v: p.mark_overdue(v)
)
_voucher_command(
    "mark-default",
    "Any member: mark an overdue VOUCHER defaulted (after the grace period).",
    lambda p, v: p.mark_default(v),
)


# --- registry ---------------------------------------------------------------------------------


def _asset(ctx: click.Context, kind: str, asset_id: str) -> tuple[str, bytes]:
    """An asset to blind (``Finance.blind`` / ``registry.blind``, in the chain's suite): its
    kind and identity. For ``invoice`` ASSET_ID is the invoice's document fingerprint (64 hex
    digits, as ``anchor`` prints it), blinded exactly as a voucher's is; for any other kind
    it is the asset's own identifier, as UTF-8 text."""
    if not 1 <= len(kind.encode()) <= 64:
        _fail("an asset kind is 1..64 bytes")
    if kind == "invoice":
        return kind, FINGERPRINT.convert(asset_id, None, ctx)
    if not asset_id:
        _fail("an asset id is not empty")
    return kind, asset_id.encode()


def _ref(text: str) -> bytes:
    raw = text.encode()
    if not 1 <= len(raw) <= 32:
        _fail("a financing ref is 1..32 bytes")
    return raw


@finance.command("register-asset")
@click.argument("asset_kind")
@click.argument("asset_id")
@click.option("--value", type=AMOUNT, required=True)
@click.pass_context
def register_asset(ctx, asset_kind: str, asset_id: str, value: int) -> None:
    """Attester: register an asset's value under its blinded fingerprint."""
    asset = _asset(ctx, asset_kind, asset_id)
    party = _party(ctx, _secret(ctx))
    _report(party.reg_asset(party.fin.blind(*asset), value), "register-asset")


@finance.command("finance")
@click.argument("asset_kind")
@click.argument("asset_id")
@click.option("--amount", type=AMOUNT, required=True)
@click.option("--ref", required=True, help="The bank's private reference of this financing (1..32 bytes).")
@click.pass_context
def finance_asset(ctx, asset_kind: str, asset_id: str, amount: int, ref: str) -> None:
    """Bank: record a financing against an asset, if it fits (the registry says only yes or no).

    ASSET_ID of an ``invoice`` is its fingerprint (hex); of other kinds, its identifier."""
    asset, ref_bytes = _asset(ctx, asset_kind, asset_id), _ref(ref)
    party = _party(ctx, _secret(ctx))
    _report(party.reg_finance(party.fin.blind(*asset), amount, ref_bytes), "finance")


@finance.command("release-financing")
@click.argument("asset_kind")
@click.argument("asset_id")
@click.option("--ref", required=True, help="The reference the financing was recorded with.")
@click.pass_context
def release_financing(ctx, asset_kind: str, asset_id: str, ref: str) -> None:
    """Bank: release a financing it recorded with ``finance`` (gives its amount back)."""
    asset, ref_bytes = _asset(ctx, asset_kind, asset_id), _ref(ref)
    party = _party(ctx, _secret(ctx))
    _report(party.reg_release(party.fin.blind(*asset), ref_bytes), "release-financing")


# --- read-only: from the database directory ---------------------------------------------------


def _read(directory: Path, query: Callable[[Callable[[bytes], bytes | None], CryptoSuite], Any]) -> Any:
    """Run ``query(state_get, suite)`` on the committed state in DIRECTORY, opened read-only
    (no writer lock: safe beside a running node); ``suite``: the chain's, from its genesis."""
    from tierchain.cli.main import _open_readonly, _suite_and_apps
    from tierchain.state import log

    with _open_readonly(directory) as store, store.read() as r:
        suite, _ = _suite_and_apps(r.get("meta", "genesis"))
        return query(log.reader(r), suite)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


@finance.command("lineage")
@directory_arg
@click.argument("piece", type=ID)
@click.option(
    "--regulator-seed-env",
    metavar="NAME",
    default=None,
    help="The regulator: read confidential amounts with the ElGamal key of the seed (hex) in NAME.",
)
def lineage_cmd(directory: Path, piece: bytes, regulator_seed_env: str | None) -> None:
    """Print the lineage of PIECE from the chain database in DIRECTORY (read-only) as JSON.
    Confidential amounts show as null, unless the regulator's key reads them."""
    from tierchain.apps.finance.confidential import regulator_lineage
    from tierchain.apps.finance.lineage import lineage

    keys = None if regulator_seed_env is None else _regulator_keys(regulator_seed_env)

    def query(get, suite):
        _known(get(c.piece_key(piece)), "piece", piece)
        if keys is None:
            return lineage(get, piece, suite=suite)
        return regulator_lineage(get, piece, keys.secret, suite=suite)

    _print_json(_read(directory, query))


@finance.command("fits")
@directory_arg
@click.argument("asset_kind")
@click.argument("asset_id")
@click.option("--amount", type=AMOUNT, required=True)
@click.pass_context
def fits(ctx, directory: Path, asset_kind: str, asset_id: str, amount: int) -> None:
    """Would financing --amount more against the asset fit? Prints {"fits": true|false} (read-only)."""
    (kind, ident), secret = _asset(ctx, asset_kind, asset_id), _secret(ctx)

    def query(get, suite):
        return reg.fits(get, reg.blind(secret, kind, ident, suite=suite), amount)

    _print_json({"fits": _read(directory, query)})


@finance.group("show")
def show() -> None:
    """Show one finance record, decoded, as JSON (read-only, from DIRECTORY)."""


@show.command("voucher")
@directory_arg
@click.argument("voucher", type=ID)
def show_voucher(directory: Path, voucher: bytes) -> None:
    """The voucher VOUCHER: parties, face, maturity, status, documents."""
    view = _read(directory, lambda get, _suite: views.voucher_view(get, voucher))
    _print_json(_shown(view, "voucher", voucher))


@show.command("piece")
@directory_arg
@click.argument("piece", type=ID)
def show_piece(directory: Path, piece: bytes) -> None:
    """The piece PIECE: amount, holder, state, offer, children, history."""
    view = _read(directory, lambda get, suite: views.piece_view(get, piece, suite=suite))
    _print_json(_shown(view, "piece", piece))


@show.command("org")
@directory_arg
@click.argument("org", type=OrgRef())
def show_org(directory: Path, org: bytes | str) -> None:
    """The organization ORG (name or id): roles (named by the chain's apps), status, keys."""
    from tierchain.cli.main import _open_readonly, _suite_and_apps
    from tierchain.state import log

    with _open_readonly(directory) as store, store.read() as r:
        suite, app_set = _suite_and_apps(r.get("meta", "genesis"))
        oid = _org_id(org, suite)
        view = views.org_view(log.reader(r), oid, app_set)
    _print_json(_shown(view, "organization", oid))


def _shown(view: dict | None, what: str, ident: bytes) -> dict:
    _known(view, what, ident)
    assert view is not None
    return view
