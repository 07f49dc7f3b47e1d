"""``tierchain sharing ...``: data sharing under control from the command line (issue 18).

Three features of the ``sharing`` app (a chain runs it when its genesis names it: ``tierchain
init --app sharing``), each through its client class, against a running node (``--node``):

* authorized decryption (``tierchain.apps.sharing.client``): ``put``, ``put-version``,
  ``grant``, ``revoke``, ``request``, ``answer`` (the owner's key service), ``release``,
  ``read``, ``log`` (the access log), ``show``. Versions whose sealed bytes exceed
  ``codes.inline_bytes_max`` live off chain in an attachment directory (``--attachments``),
  which the owner (putting, releasing) and the reader (reading) both need.
* fingerprint-only shared lists (``list_client``, ``list_query``): ``list-key new|vote|show``
  and ``list add|remove|dispute|withdraw-dispute|rekey|lookup|query``. The consortium list
  key is a file of 64 hex digits (mode 0600) that stays on this machine, and so does every
  identity: only its keyed fingerprint is sent. An identity is given by ``--identity TEXT``,
  ``--identity -`` (read from stdin) or ``--identity-file FILE`` (neither of the last two
  shows it in the process list or the shell's history).
* reconciliation (``recon_client``): ``recon open|accept|rekey|post|report``; the
  counterparty accepts each generation of the pair key (opened or re-keyed by the other
  side) before anything is posted; the report is the node's public report (``POST
  /v1/app/sharing.recon_report``) explained with the pair key (``--generation``: an
  earlier generation's).

The connection options (``--node``, ``--key``, ``--passphrase-env``, ``--wait``,
``--chain-id``) may be given before the command name, as for ``tierchain finance``, or
after it (``tierchain sharing put --key K --node URL ...``); after it wins. Write commands
sign with ``--key`` (a sealed key file); read commands (``show``, ``log``, ``list lookup``,
``list-key show``) need no key. Organizations are named by name or by 32-hex id.

Errors, as in ``tierchain finance``: a bad argument (malformed input, an id or organization
the ledger does not know, a records file that cannot be reconciled, a list key file that is
not the chain's) prints one line on stderr and exits 2; a refusal by the ledger or by the
node's endpoint prints one line naming the code and exits 1; so does an unreachable node, a
key file that does not open, or a version that cannot be read. Nothing prints a traceback.
Results are JSON on stdout.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tierchain.apps.finance import DocType
from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import lists, recon_client
from tierchain.apps.sharing.access import Grant, GrantStatus, document_bytes_max
from tierchain.apps.sharing.attachments import AttachmentError, AttachmentMissing, AttachmentStore
from tierchain.apps.sharing.client import DataKeyUnavailable, ReadError, Sharing, SharingParty
from tierchain.apps.sharing.codes import DisputeReason, ListId, ListReason, Purpose, RecordKind, RemoveReason
from tierchain.apps.sharing.ledger import scan_all
from tierchain.apps.sharing.list_client import ListKeyError, ListMember, Lists
from tierchain.apps.sharing.list_query import ENDPOINT as LIST_QUERY
from tierchain.apps.sharing.list_query import query_request
from tierchain.apps.sharing.recon_client import PairKeyMismatch, PostingPending, Reconciler
from tierchain.apps.sharing.recon_report import ReconError
from tierchain.cli import remote
from tierchain.cli.errors import CommandFailed
from tierchain.cli.finance import OrgRef
from tierchain.cli.remote import (
    Day,
    Until,
    choice,
    connection,
    date,
    fail,
    iso,
    jsonable,
    outcome,
    print_json,
)
from tierchain.cli.types import PUBLIC_KEY, HexBytes

# --- argument types ----------------------------------------------------------------------

RECORD = HexBytes(c.id_bytes, "a record id", "record")
VERSION = click.IntRange(1, (1 << 32) - 1)
plaintext_bytes_max = document_bytes_max  # a version's document: 1 MiB less its salt (access.SALT_BYTES)


IDENTITY_KINDS = {
    "uscc": lists.IdentityKind.UNIFIED_SOCIAL_CREDIT_CODE,
    "national_id": lists.IdentityKind.NATIONAL_ID,
    "passport": lists.IdentityKind.PASSPORT,
    "account_number": lists.IdentityKind.ACCOUNT_NUMBER,
}


class Anchor(click.ParamType):
    """A trade document's finance anchor: ``TYPE`` (the fingerprint is the file's) or
    ``TYPE:FINGERPRINT_HEX`` (checked against the file before anything is signed)."""

    name = "type[:fingerprint]"
    _types = ", ".join(t.name.lower() for t in DocType)

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, bytes | None]:
        if isinstance(value, tuple):
            return value
        kind, sep, fp = value.partition(":")
        if kind.upper() not in DocType.__members__:
            self.fail(f"{value!r} is not TYPE[:FINGERPRINT] (TYPE: {self._types})", param, ctx)
        if not sep:
            return DocType[kind.upper()], None
        return DocType[kind.upper()], HexBytes(32, "a document fingerprint").convert(fp, param, ctx)


@remote.group("sharing")
def sharing() -> None:
    """Data sharing under control: encrypted records with grants and an access log,
    fingerprint-only shared lists, bilateral reconciliation (a chain running the sharing app).

    The connection options may be given here or after a command's name (which wins)."""


def _sharing(ctx: click.Context, attachments: Path | None = None) -> Sharing:
    ledger = remote.ledger(ctx)
    store = None if attachments is None else AttachmentStore(attachments, suite=ledger.suite)
    return Sharing(ledger, attachments=store, timeout_s=remote.wait(ctx))


def _party(ctx: click.Context, attachments: Path | None = None) -> SharingParty:
    remote.key_path(ctx)
    sh = _sharing(ctx, attachments)
    return sh.party(remote.keys(ctx))


def _org_name(sh: Sharing, org: bytes) -> str:
    info = sh.org(org)
    return info.name.decode(errors="replace") if info else ""


def _record(sh: Sharing, record: bytes, version: int | None = None) -> Any:
    """The record's head; exit 2 for a record (or version) the ledger does not have."""
    head = sh.record(record)
    if head is None:
        fail(f"no record {record.hex()} on the ledger")
    if version is not None and sh.version(record, version) is None:
        fail(f"record {record.hex()} has no version {version} (it has {head.versions})")
    return head


def attachments_option(exists: bool) -> Callable[[Callable], Callable]:
    """``--attachments DIR``: made if absent when putting (``exists`` False), else it must exist."""
    return click.option(
        "--attachments",
        type=click.Path(file_okay=False, exists=exists, path_type=Path),
        help=f"Directory of sealed versions over {c.inline_bytes_max} bytes (kept off chain).",
    )


# --- authorized decryption ---------------------------------------------------------------


def _plaintext(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) > plaintext_bytes_max:
        fail(f"{path}: a version is at most {plaintext_bytes_max} bytes, this file has {len(data)}")
    return data


def _put_outcome(r: Any, data: bytes, sh: Sharing) -> None:
    v = sh.version(r.id, r.version) if r.ok else None
    extra = (
        {} if v is None else {"sealed_bytes": v.size, "on_chain": v.on_chain, "fingerprint": v.fingerprint}
    )
    outcome(r, "put", id=r.id.hex(), version=r.version, bytes=len(data), **jsonable(extra))


def _sealing(act: Callable[[], Any]) -> Any:
    """Run a put: what cannot be sealed or does not match its anchor is a bad argument."""
    try:
        return act()
    except AttachmentMissing:
        fail(f"a version over {c.inline_bytes_max} sealed bytes is kept off chain: give --attachments DIR")
    except ReadError as exc:  # FingerprintMismatch: the file is not the anchored document
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc))


@sharing.command("put")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--kind", type=choice(RecordKind), required=True, help="What the record is.")
@click.option(
    "--anchor",
    type=Anchor(),
    help="A trade document's finance anchor: TYPE or TYPE:FINGERPRINT (anchored by the signer's "
    "organization, e.g. with `finance anchor`).",
)
@attachments_option(exists=False)
@connection
@click.pass_context
def put(
    ctx, file: Path, kind: str, anchor: tuple[int, bytes | None] | None, attachments: Path | None
) -> None:
    """Owner: store FILE encrypted as a new record (version 1); prints its id."""
    record_kind = RecordKind[kind.upper()]
    if (record_kind == RecordKind.TRADE_DOCUMENT) != (anchor is not None):
        fail("a trade_document needs --anchor TYPE[:FINGERPRINT]; other kinds take none")
    data = _plaintext(file)
    party = _party(ctx, attachments)
    if anchor is not None:
        doc_type, given = anchor
        own = fc.document_fingerprint(data, suite=party.suite)
        if given is not None and given != own:
            fail(f"{file} is not the anchored document (its fingerprint is {own.hex()})")
        anchor = (doc_type, own)
    r = _sealing(lambda: party.put(data, record_kind, anchor))
    _put_outcome(r, data, party.sh)


@sharing.command("put-version")
@click.argument("record", type=RECORD)
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@attachments_option(exists=False)
@connection
@click.pass_context
def put_version(ctx, record: bytes, file: Path, attachments: Path | None) -> None:
    """Owner: FILE as RECORD's next version, under a fresh data key (a re-key if unchanged):
    readers need a new release for it, which revoked or expired grantees cannot get."""
    data = _plaintext(file)
    party = _party(ctx, attachments)
    _record(party.sh, record)
    r = _sealing(lambda: party.put_version(record, data))
    _put_outcome(r, data, party.sh)


@sharing.command("grant")
@click.argument("record", type=RECORD)
@click.argument("org", type=OrgRef())
@click.option("--purpose", type=choice(Purpose), required=True, help="Why (shown in the access log).")
@click.option("--until", "until_ms", type=Until(), required=True, help="Expiry: ISO 8601 or Unix ms.")
@connection
@click.pass_context
def grant(ctx, record: bytes, org: bytes | str, purpose: str, until_ms: int) -> None:
    """Owner: let ORG obtain RECORD's keys (every version) for --purpose until --until."""
    party = _party(ctx)
    _record(party.sh, record)
    oid = remote.org(ctx, org)
    r = party.grant(record, oid, Purpose[purpose.upper()], until_ms)
    outcome(r, "grant", record=record.hex(), org=oid.hex(), until_ms=until_ms, until=iso(until_ms))


@sharing.command("revoke")
@click.argument("record", type=RECORD)
@click.argument("org", type=OrgRef())
@connection
@click.pass_context
def revoke(ctx, record: bytes, org: bytes | str) -> None:
    """Owner: end ORG's grant on RECORD now. What ORG already obtained (keys, plaintexts) it
    keeps; put a new version to keep it from changed data."""
    party = _party(ctx)
    _record(party.sh, record)
    oid = remote.org(ctx, org)
    outcome(party.revoke(record, oid), "revoke", record=record.hex(), org=oid.hex())


@sharing.command("request")
@click.argument("record", type=RECORD)
@click.argument("version", type=VERSION)
@connection
@click.pass_context
def request(ctx, record: bytes, version: int) -> None:
    """Reader: ask for VERSION's data key of RECORD, sealed to the signing key (needs a live
    grant, or the regulator's standing access)."""
    party = _party(ctx)
    _record(party.sh, record, version)
    outcome(party.request(record, version), "request", record=record.hex(), version=version)


def _release_json(sh: Sharing, record: bytes, version: int, org: bytes, tx_id: bytes) -> dict:
    return {
        "record": record.hex(),
        "version": version,
        "org": org.hex(),
        "org_name": _org_name(sh, org),
        "tx_id": tx_id.hex(),
    }


@sharing.command("answer")
@click.argument("record", type=RECORD, required=False)
@attachments_option(exists=True)
@connection
@click.pass_context
def answer(ctx, record: bytes | None, attachments: Path | None) -> None:
    """Owner's key service: release every open request on RECORD (or on all the signer's
    organization's records) that a live grant or standing access allows; prints what was
    released. Exit 1 if the ledger refused a release (the rest are still printed)."""
    party = _party(ctx, attachments)
    if record is not None:
        _record(party.sh, record)
    failure = None
    results: list = []
    try:
        now_ms = time.time_ns() // 1_000_000
        while True:  # page by page, to the end of the open requests
            results += party.answer_requests(record, now_ms=now_ms)
            if not party.answer_pending(record):
                break
    except AttachmentMissing as exc:
        failure = f"{exc}: give --attachments DIR"
    except (AttachmentError, DataKeyUnavailable) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    released = [_release_json(party.sh, *entry) for entry in party.release_log]
    refused = [
        {"record": r.id.hex(), "version": r.version, "code": r.code.name, "tx_id": r.tx_id.hex()}
        for r in results
        if not r.ok
    ]
    print_json({"released": released, **({"refused": refused} if refused else {})})
    if refused:
        first = refused[0]
        raise CommandFailed(f"answer: {len(refused)} release(s) refused, first: {first['code']}")
    if failure is not None:
        raise CommandFailed(f"answer stopped: {failure}")


@sharing.command("release")
@click.argument("record", type=RECORD)
@click.argument("version", type=VERSION)
@click.argument("org", type=OrgRef())
@click.option("--recipient", type=PUBLIC_KEY, required=True, help="The reader's key to seal the data key to.")
@attachments_option(exists=True)
@connection
@click.pass_context
def release(
    ctx, record: bytes, version: int, org: bytes | str, recipient: bytes, attachments: Path | None
) -> None:
    """Owner: release VERSION's data key of RECORD to ORG, sealed to --recipient (refused by
    the ledger without a live grant or standing access)."""
    party = _party(ctx, attachments)
    _record(party.sh, record, version)
    oid = remote.org(ctx, org)
    try:
        r = party.release(record, version, oid, recipient)
    except AttachmentMissing:
        fail(f"version {version} is kept off chain: give --attachments DIR")
    except DataKeyUnavailable as exc:
        raise CommandFailed(f"release: {exc}") from None
    outcome(r, "release", record=record.hex(), version=version, org=oid.hex())


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by its owner only (mode 0600)."""
    path = path.absolute()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@sharing.command("read")
@click.argument("record", type=RECORD)
@click.argument("version", type=VERSION)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Plaintext file.")
@attachments_option(exists=True)
@connection
@click.pass_context
def read(ctx, record: bytes, version: int, out: Path, attachments: Path | None) -> None:
    """Reader (or owner): decrypt VERSION of RECORD with the key released to the signing key,
    check it against the chain's fingerprint, and write it to --out (mode 0600)."""
    if not out.absolute().parent.is_dir():
        fail(f"--out: no directory {out.absolute().parent}")
    party = _party(ctx, attachments)
    _record(party.sh, record, version)
    try:
        data = party.read(record, version)
    except AttachmentMissing as exc:
        if attachments is None:
            fail(f"version {version} is kept off chain: give --attachments DIR")
        raise CommandFailed(f"read: {exc} in {attachments}") from None
    except (ReadError, AttachmentError) as exc:
        raise CommandFailed(f"read: {type(exc).__name__}: {exc}") from None
    _write_private(out, data)
    fp = party.sh.version(record, version).fingerprint  # checked: the anchor, or the commitment
    print_json(
        {
            "record": record.hex(),
            "version": version,
            "out": str(out),
            "bytes": len(data),
            "fingerprint": fp.hex(),
        }
    )


@sharing.command("log")
@click.argument("record", type=RECORD)
@connection
@click.pass_context
def access_log(ctx, record: bytes) -> None:
    """The access log of RECORD: every key release (who, which version, when, sealed to which
    key, under which grant and purpose, by which tx), from the chain."""
    sh = _sharing(ctx)
    _record(sh, record)
    entries = sh.access_log(record)
    for e in entries:
        e["time"] = iso(e["timestamp_ms"])
    print_json({"record": record, "log": entries})


def _grant_json(sh: Sharing, org: bytes, g: Grant) -> dict:
    return {
        "org": org.hex(),
        "org_name": _org_name(sh, org),
        "purpose": Purpose(g.purpose).name,
        "expiry_ms": g.expiry_ms,
        "expiry": iso(g.expiry_ms),
        "status": GrantStatus(g.status).name,
        "granted_height": g.granted_height,
        "revoked_height": g.revoked_height or None,
        "tx_id": g.tx_id.hex(),
    }


@sharing.command("show")
@click.argument("record", type=RECORD)
@connection
@click.pass_context
def show(ctx, record: bytes) -> None:
    """RECORD as the chain holds it: owner, kind, anchor, versions, grants, open requests."""
    sh = _sharing(ctx)
    head = _record(sh, record)
    versions = []
    for n in range(1, head.versions + 1):
        v = sh.version(record, n)
        if v is not None:
            versions.append(
                {
                    "version": n,
                    "size": v.size,
                    "on_chain": v.on_chain,
                    "digest": v.digest,
                    "fingerprint": v.fingerprint,
                    "sealer": v.sealer,
                    "height": v.height,
                    "time": iso(v.timestamp_ms),
                    "tx_id": v.tx_id,
                }
            )
    grants = [
        _grant_json(sh, key[-c.id_bytes :], Grant.decode(raw))
        for key, raw in scan_all(sh.ledger, b"sg/" + record)
    ]
    requests = [
        {
            "version": v,
            "org": org,
            "org_name": _org_name(sh, org),
            "recipient": req.recipient,
            "basis": c.Basis(req.basis),
            "height": req.height,
        }
        for _, v, org, req in sh.requests(record)
    ]
    trade = head.kind == RecordKind.TRADE_DOCUMENT
    print_json(
        {
            "record": record,
            "owner": head.owner,
            "owner_name": _org_name(sh, head.owner),
            "kind": RecordKind(head.kind),
            "anchor": DocType(head.doc_type).name if trade else None,
            "fingerprint": head.fingerprint,
            "created_height": head.created_height,
            "created": iso(head.created_ms),
            "versions": versions,
            "grants": grants,
            "requests": requests,
        }
    )


# --- shared lists ----------------------------------------------------------------------------


def _read_list_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != lists.list_key_bytes:
        fail(f"{path} is not a list key ({2 * lists.list_key_bytes} hex digits, as `list-key new` writes)")
    return key


list_key_option = click.option(
    "--list-key",
    "list_keys",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    multiple=True,
    required=True,
    help="The consortium's list key file (repeatable: the previous epoch's too, to re-key).",
)


@sharing.group("list-key")
def list_key() -> None:
    """The consortium's list key: made off chain, its check voted by the committee."""


@list_key.command("new")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def list_key_new(out: Path) -> None:
    """Write a fresh random list key to --out (64 hex digits, mode 0600; never overwrites).
    Hand it to the members off chain; the committee votes its check (`list-key vote`)."""
    key = lists.new_list_key()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{out} exists; refusing to overwrite a list key")
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror}")
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    print_json({"list_key_file": str(out)})


@list_key.command("vote")
@click.option(
    "--list-key", "list_key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True
)
@click.option("--epoch", type=click.IntRange(1, (1 << 32) - 1), help="The epoch (default: the next one).")
@connection
@click.pass_context
def list_key_vote(ctx, list_key_file: Path, epoch: int | None) -> None:
    """Committee: vote the key in --list-key (its check; the key stays here) as the next
    epoch's; it is activated at the committee's vote threshold."""
    key = _read_list_key(list_key_file)
    remote.key_path(ctx)
    lst = Lists(remote.ledger(ctx), remote.wait(ctx))
    epoch = lst.key_state().epoch + 1 if epoch is None else epoch
    r = lst.vote_list_key(remote.keys(ctx), epoch, key)
    check = c.key_check(key, suite=lst.suite)
    outcome(r, "list-key vote", epoch=epoch, key_check=check.hex(), active=lst.key_state().epoch == epoch)


@list_key.command("show")
@click.option("--list-key", "list_key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@connection
@click.pass_context
def list_key_show(ctx, list_key_file: Path | None) -> None:
    """The chain's current list-key epoch and check, the next epoch's ballots (one per key
    check voted), and (with --list-key) whether the file holds the current key."""
    key = None if list_key_file is None else _read_list_key(list_key_file)
    lst = Lists(remote.ledger(ctx))
    state = lst.key_state()
    out: dict[str, Any] = {
        "epoch": state.epoch,
        "key_check": state.key_check.hex() if state.epoch else None,
        "activated_height": state.height or None,
    }
    out["ballots"] = [
        {
            "epoch": state.epoch + 1,
            "key_check": b.key_check.hex(),
            "votes": len(b.voters),
            "opened": iso(b.timestamp_ms),
            "lapses": iso(b.timestamp_ms + lists.ballot_ms_max),
        }
        for b in lst.ballots(state.epoch + 1)
    ]
    if key is not None:
        out["holds_current"] = bool(state.epoch) and c.key_check(key, suite=lst.suite) == state.key_check
    print_json(out)


@sharing.group("list")
def list_group() -> None:
    """Fingerprint-only shared lists (blacklist, overdue, fraud): identities are fingerprinted
    here with the list key; only fingerprints reach the node."""


_IDENTITY_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def _identity_lines(source: str, text: str) -> list[str]:
    """The non-blank lines of ``text`` (read from ``source``), stripped."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        fail(f"{source}: no identity")
    return lines


def _identity_source(
    identity: str | None, identity_file: Path | None, *, first_line: bool
) -> tuple[str, str] | None:
    """Where the identity comes from and its text: ``--identity -`` (stdin: its first line
    only if ``first_line``, so a terminal need not send an end of file) or ``--identity-file``
    (exactly one of ``--identity`` and it); None for ``--identity TEXT``."""
    if (identity is None) == (identity_file is None):
        fail("give exactly one of --identity and --identity-file")
    if identity_file is None:
        if identity != "-":
            return None
        with click.open_file("-") as stdin:
            return "--identity -", stdin.readline() if first_line else stdin.read()
    try:
        return f"--identity-file {identity_file}", identity_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--identity-file: cannot read {identity_file}: {exc}")


def _one_identity(identity: str | None, identity_file: Path | None) -> str:
    """The identity of ``--identity TEXT``, or the first line (stripped) of stdin
    (``--identity -``) or of ``--identity-file``."""
    source = _identity_source(identity, identity_file, first_line=True)
    if source is None:
        return str(identity)
    first = source[1].splitlines()[:1]
    if not first or not first[0].strip():
        fail(f"{source[0]}: no identity on the first line")
    return first[0].strip()


def _identity_options(f: Callable) -> Callable:
    """``--list``, ``--kind`` and one identity (``--identity TEXT``, ``--identity -`` or
    ``--identity-file FILE``: exactly one), given to the command as ``identity``."""

    @functools.wraps(f)
    def command(*args: Any, identity: str | None, identity_file: Path | None, **kwargs: Any) -> Any:
        return f(*args, identity=_one_identity(identity, identity_file), **kwargs)

    g: Callable = click.option(
        "--identity-file",
        type=_IDENTITY_FILE,
        help="A file whose first line is the identity (not shown by ps or kept in shell history).",
    )(command)
    g = click.option(
        "--identity",
        help="The identity, in its kind's format (never sent: only its fingerprint); '-' reads "
        "it from stdin's first line.",
    )(g)
    g = click.option(
        "--kind", type=click.Choice(tuple(IDENTITY_KINDS)), required=True, help="The identity's kind."
    )(g)
    return click.option("--list", "list_name", type=choice(ListId), required=True, help="Which list.")(g)


def _identity(kind: str, identity: str) -> lists.IdentityKind:
    """The identity kind, once the identity is checked against its format (exit 2 if not)."""
    k = IDENTITY_KINDS[kind]
    try:
        lists.canonical(k, identity)
    except lists.IdentityError as exc:
        fail(f"--identity: {exc}")
    return k


def _member(ctx: click.Context, key_files: tuple[Path, ...]) -> ListMember:
    ring = [_read_list_key(p) for p in key_files]
    remote.key_path(ctx)
    return ListMember(
        Lists(remote.ledger(ctx), remote.wait(ctx)), remote.keys(ctx), ring, timeout_s=remote.wait(ctx)
    )


def _listing(act: Callable[[], Any], what: str, list_id: ListId) -> None:
    try:
        r = act()
    except ListKeyError as exc:
        fail(f"--list-key: {exc}")
    outcome(r, what, list=list_id.name, fingerprint=r.fingerprint.hex() if r.fingerprint else None)


@list_group.command("add")
@_identity_options
@click.option("--reason", type=choice(ListReason), required=True)
@list_key_option
@connection
@click.pass_context
def list_add(ctx, list_name: str, kind: str, identity: str, reason: str, list_keys: tuple[Path, ...]) -> None:
    """Member: list an identity (its fingerprint under the current list key) for --reason."""
    k, list_id = _identity(kind, identity), ListId[list_name.upper()]
    m = _member(ctx, list_keys)
    _listing(lambda: m.add(list_id, k, identity, ListReason[reason.upper()]), "list add", list_id)


@list_group.command("remove")
@_identity_options
@click.option("--reason", type=choice(RemoveReason), required=True)
@click.option(
    "--epoch", type=click.IntRange(1, (1 << 32) - 1), help="An older epoch's listing (awaiting re-key)."
)
@list_key_option
@connection
@click.pass_context
def list_remove(
    ctx, list_name: str, kind: str, identity: str, reason: str, epoch: int | None, list_keys: tuple[Path, ...]
) -> None:
    """The listing member: take its listing of an identity off a list, for --reason."""
    k, list_id = _identity(kind, identity), ListId[list_name.upper()]
    m = _member(ctx, list_keys)
    act = lambda: m.remove(list_id, k, identity, RemoveReason[reason.upper()], epoch=epoch)  # noqa: E731
    _listing(act, "list remove", list_id)


@list_group.command("dispute")
@_identity_options
@click.option("--lister", type=OrgRef(), required=True, help="The organization whose listing is disputed.")
@click.option("--reason", type=choice(DisputeReason), required=True)
@list_key_option
@connection
@click.pass_context
def list_dispute(
    ctx,
    list_name: str,
    kind: str,
    identity: str,
    lister: bytes | str,
    reason: str,
    list_keys: tuple[Path, ...],
) -> None:
    """Member: dispute --lister's listing of an identity, for --reason."""
    k, list_id = _identity(kind, identity), ListId[list_name.upper()]
    lister_id = remote.org(ctx, lister)
    m = _member(ctx, list_keys)
    act = lambda: m.dispute(list_id, k, identity, lister_id, DisputeReason[reason.upper()])  # noqa: E731
    _listing(act, "list dispute", list_id)


@list_group.command("withdraw-dispute")
@_identity_options
@click.option("--lister", type=OrgRef(), required=True, help="The organization whose listing was disputed.")
@click.option(
    "--epoch",
    type=click.IntRange(1, (1 << 32) - 1),
    help="An older epoch's fingerprint (default: the current).",
)
@list_key_option
@connection
@click.pass_context
def list_withdraw_dispute(
    ctx,
    list_name: str,
    kind: str,
    identity: str,
    lister: bytes | str,
    epoch: int | None,
    list_keys: tuple[Path, ...],
) -> None:
    """Member: withdraw its own dispute of --lister's listing of an identity (the dispute
    outlives the listing, so this works whether or not it is still listed)."""
    k, list_id = _identity(kind, identity), ListId[list_name.upper()]
    lister_id = remote.org(ctx, lister)
    m = _member(ctx, list_keys)
    act = lambda: m.withdraw_dispute(list_id, k, identity, lister_id, epoch=epoch)  # noqa: E731
    _listing(act, "list withdraw-dispute", list_id)


@list_group.command("rekey")
@_identity_options
@list_key_option
@connection
@click.pass_context
def list_rekey(ctx, list_name: str, kind: str, identity: str, list_keys: tuple[Path, ...]) -> None:
    """The listing member, after a rotation: move its listing of an identity to the current
    epoch's fingerprint (give both the previous and the current key: --list-key twice)."""
    k, list_id = _identity(kind, identity), ListId[list_name.upper()]
    m = _member(ctx, list_keys)
    _listing(lambda: m.rekey(list_id, k, identity), "list rekey", list_id)


def _listing_json(x: lists.ListingView) -> dict:
    """A listing: when it was listed (after a re-key: the lister's claim) and, if a re-key
    moved it to this fingerprint, when; its open disputes."""
    return {
        "org": x.org.hex(),
        "reason": ListReason(x.reason).name,
        "height": x.height,
        "time": iso(x.timestamp_ms),
        "rekeyed_height": x.rekeyed_height or None,
        "rekeyed_time": iso(x.rekeyed_ms) if x.rekeyed else None,
        "disputed": x.disputed,
        "disputes": [
            {
                "org": d.org.hex(),
                "reason": DisputeReason(d.reason).name,
                "height": d.height,
                "time": iso(d.timestamp_ms),
            }
            for d in x.disputes
        ],
    }


@list_group.command("lookup")
@_identity_options
@list_key_option
@connection
@click.pass_context
def list_lookup(ctx, list_name: str, kind: str, identity: str, list_keys: tuple[Path, ...]) -> None:
    """Is an identity on a list? Its fingerprint under the current key, read from the chain's
    state (no signing key needed; `list query` asks the node's rate-limited service)."""
    k, list_id = _identity(kind, identity), ListId[list_name.upper()]
    ring = {c.key_check(key, suite=remote.ledger(ctx).suite): key for key in map(_read_list_key, list_keys)}
    lst = Lists(remote.ledger(ctx))
    state = lst.key_state()
    if not state.epoch:
        fail("no list key has been voted yet")
    key = ring.get(state.key_check)
    if key is None:
        fail(f"--list-key: no file holds the key of the current epoch {state.epoch}")
    fp = lists.fingerprint(key, k, identity, suite=lst.suite)
    entry = lst.current(list_id, fp)
    listings = [] if entry is None else [_listing_json(x) for x in entry.listings]
    print_json(
        {
            "list": list_id.name,
            "epoch": state.epoch,
            "fingerprint": fp.hex(),
            "listed": bool(listings),
            "listings": listings,
        }
    )


@list_group.command("query")
@click.option("--list", "list_name", type=choice(ListId), required=True, help="Which list.")
@click.option("--kind", type=click.Choice(tuple(IDENTITY_KINDS)), required=True, help="The identities' kind.")
@click.option(
    "--identity",
    "identities",
    multiple=True,
    help="An identity (repeatable); '-' alone reads them from stdin, one a line.",
)
@click.option("--identity-file", type=_IDENTITY_FILE, help="A file of identities, one a line.")
@list_key_option
@connection
@click.pass_context
def list_query(
    ctx,
    list_name: str,
    kind: str,
    identities: tuple[str, ...],
    identity_file: Path | None,
    list_keys: tuple[Path, ...],
) -> None:
    """Member: ask the node's list query service (signed, rate limited per organization)
    whether identities are listed; only their fingerprints are sent. The identities: one or
    more --identity, or --identity - (stdin), or --identity-file (exactly one of these). A
    refusal (RATE_LIMITED, NOT_A_MEMBER, ...) is one line naming it, exit 1."""
    from tierchain.api.rpc import RpcError

    if "-" in identities and len(identities) > 1:
        fail("--identity - reads every identity from stdin: give it alone")
    source = _identity_source(identities[0] if identities else None, identity_file, first_line=False)
    if source is not None:
        identities = tuple(_identity_lines(*source))
    list_id = ListId[list_name.upper()]
    k = IDENTITY_KINDS[kind]
    for identity in identities:
        _identity(kind, identity)
    m = _member(ctx, list_keys)
    try:
        fps = [m.fingerprint(k, identity) for identity in identities]
    except ListKeyError as exc:
        fail(f"--list-key: {exc}")
    if len(set(fps)) != len(fps):
        fail("the same identity twice")
    ledger = remote.ledger(ctx)
    request_bytes = query_request(
        m.keys, ledger.chain_id, list_id, fps, time.time_ns() // 1_000_000, ledger.suite
    )
    try:
        reply = ledger.client.app(LIST_QUERY.name, {"request": request_bytes.hex()})
    except RpcError as exc:
        if exc.code is None:
            raise  # the node is unreachable: the group's one line, exit 1
        raise CommandFailed(f"list query refused: {exc}") from None
    for identity, result in zip(identities, reply.get("results", []), strict=False):
        result["identity"] = identity  # the local answer names it; the node never saw it
    print_json(reply)


# --- reconciliation --------------------------------------------------------------------------


@sharing.group("recon")
def recon() -> None:
    """Bilateral reconciliation: each side posts keyed digests of its records of a day; the
    report lists matched, mismatched (which fields) and missing records."""


def _reconciler(ctx: click.Context, counterparty: bytes | str, fields: str | None = None) -> Reconciler:
    remote.key_path(ctx)
    oid = remote.org(ctx, counterparty)
    schema = None
    if fields is not None:
        schema = [f.strip() for f in fields.split(",") if f.strip()]
        if not schema:
            fail("--fields names the agreed fields, comma separated")
    try:
        return Reconciler(
            remote.ledger(ctx), remote.keys(ctx), oid, fields=schema, timeout_s=remote.wait(ctx)
        )
    except ReconError as exc:
        fail(f"--fields: {exc}")


def _pair_ready(rec: Reconciler, generation: int | None = None) -> None:
    """The pair (and ``generation``: None, the current one) exists (exit 2 if not) and this
    key unseals its key (exit 1 if not)."""
    record = rec.pair()
    if record is None:
        fail(f"no reconciliation pair with {rec.counterparty.hex()}: open it with `sharing recon open`")
    if generation is not None and generation > record.generation:
        fail(f"--generation: the pair's current generation is {record.generation}")
    try:
        key = rec.pair_key(generation)
    except PairKeyMismatch as exc:
        raise CommandFailed(f"recon: {exc} (re-key the pair: `sharing recon rekey`)") from None
    if key is None:
        raise CommandFailed(
            "recon: the pair key was sealed to another key of this organization (use that key, "
            "or re-key the pair: `sharing recon rekey`)"
        )


def _records(path: Path) -> dict[str, dict[str, str | int]]:
    """Records (reference -> fields) from a JSON object or a CSV file with a ``ref`` column."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
                fail(f"{path}: a JSON object of reference -> {{field: value}}")
            for ref, fields in doc.items():
                for name, value in fields.items():
                    if isinstance(value, bool) or not isinstance(value, str | int):
                        fail(
                            f"{path}: record {ref!r:.60} field {name!r:.60}: a string or an integer, "
                            f"not {type(value).__name__} (format amounts yourself)"
                        )
            return doc
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:  # a BOM, as spreadsheets write
                reader = csv.DictReader(f)
                if reader.fieldnames is None or "ref" not in reader.fieldnames:
                    fail(f"{path}: a CSV file with a header naming a 'ref' column and the fields")
                out: dict[str, dict[str, str | int]] = {}
                for line, row in enumerate(reader, start=2):
                    ref = row.pop("ref")
                    if not ref or ref in out or None in row or None in row.values():
                        fail(f"{path}:{line}: an empty or repeated ref, or a row of another width")
                    out[ref] = dict(row)
                return out
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        fail(f"{path}: {exc}")
    fail(f"{path}: records are a .json or a .csv file")


counterparty_option = click.option(
    "--counterparty", type=OrgRef(), required=True, help="The other organization of the pair (name or id)."
)
fields_option = click.option(
    "--fields", help="The agreed field names, comma separated (checked / used to explain)."
)


@recon.command("open")
@click.argument("counterparty", type=OrgRef())
@click.option("--counterparty-key", type=PUBLIC_KEY, required=True, help="An active key of COUNTERPARTY.")
@connection
@click.pass_context
def recon_open(ctx, counterparty: bytes | str, counterparty_key: bytes) -> None:
    """Open the reconciliation pair with COUNTERPARTY: a fresh pair key (generation 0) sealed
    to the signing key and to --counterparty-key. COUNTERPARTY then accepts it (`recon
    accept`); nothing is posted before."""
    rec = _reconciler(ctx, counterparty)
    try:
        r = rec.open_pair(counterparty_key)
    except ReconError as exc:
        fail(f"--counterparty-key: {exc}")
    outcome(r, "recon open", pair=rec.pair_id.hex(), generation=0, side="AB"[rec.side])


@recon.command("accept")
@counterparty_option
@connection
@click.pass_context
def recon_accept(ctx, counterparty: bytes | str) -> None:
    """Accept the current generation of the pair key, opened or re-keyed by --counterparty:
    the key the signing key unseals is checked against the pair's key check first (exit 1
    if it does not match: re-key the pair instead)."""
    rec = _reconciler(ctx, counterparty)
    _pair_ready(rec)
    r = rec.accept()
    record = rec.pair()
    outcome(r, "recon accept", pair=rec.pair_id.hex(), generation=record.generation, side="AB"[rec.side])


@recon.command("rekey")
@counterparty_option
@click.option("--counterparty-key", type=PUBLIC_KEY, required=True, help="An active key of --counterparty.")
@connection
@click.pass_context
def recon_rekey(ctx, counterparty: bytes | str, counterparty_key: bytes) -> None:
    """Re-key the pair with --counterparty: a fresh pair key for the next generation, sealed
    to the signing key and to --counterparty-key (accepted or not, the current generation
    is replaced; its rows stay, reported with `recon report --generation`). --counterparty
    then accepts it."""
    rec = _reconciler(ctx, counterparty)
    record = rec.pair()
    if record is None:
        fail(f"no reconciliation pair with {rec.counterparty.hex()}: open it with `sharing recon open`")
    try:
        r = rec.rekey(counterparty_key)
    except ReconError as exc:
        fail(f"--counterparty-key: {exc}")
    outcome(r, "recon rekey", pair=rec.pair_id.hex(), generation=record.generation + 1, side="AB"[rec.side])


@recon.command("post")
@click.argument("records", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@counterparty_option
@click.option("--day", type=Day(), required=True, help="The records' day, YYYY-MM-DD (UTC).")
@click.option("--amend", is_flag=True, help="Replace records this side already posted.")
@fields_option
@connection
@click.pass_context
def recon_post(
    ctx, records: Path, counterparty: bytes | str, day: int, amend: bool, fields: str | None
) -> None:
    """Post this side's RECORDS (.json: {ref: {field: value}}; .csv: a ref column and field
    columns) of --day: keyed digests only, in postings of up to 24 records."""
    books = _records(records)
    if not books:
        fail(f"{records}: no records")
    rec = _reconciler(ctx, counterparty, fields)
    _pair_ready(rec)
    generation = rec.generation
    pending: PostingPending | None = None
    try:
        results = rec.post(day, books, amend=amend)
    except ReconError as exc:
        fail(f"{records}: {exc}")
    except PostingPending as exc:
        results, pending = exc.results, exc
    posted = [{"code": r.code.name, "tx_id": r.tx_id.hex(), "records": len(r.tags)} for r in results if r.ok]
    refused = next((r for r in results if not r.ok), None)
    out = {
        "pair": rec.pair_id.hex(),
        "generation": generation,
        "day": day,
        "date": date(day),
        "records": sum(p["records"] for p in posted),
        "postings": posted,
    }
    if refused is None and pending is None:
        print_json(out)
        return
    if posted:
        print_json(out)
    if pending is not None:
        raise CommandFailed(
            f"recon post: a posting of {len(pending.tags)} records was not committed within --wait "
            "(it may still be: `sharing recon report` shows what was posted)"
        )
    assert refused is not None
    raise CommandFailed(f"recon post refused: {refused.code.name} (tx {refused.tx_id.hex()})")


@recon.command("report")
@counterparty_option
@click.option("--day", type=Day(), required=True, help="The day, YYYY-MM-DD (UTC).")
@click.option(
    "--books",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="This side's records of the day (.json or .csv, as posted): names references and fields.",
)
@fields_option
@click.option(
    "--generation",
    type=click.IntRange(0, 0xFFFF),
    help="The generation of the pair key whose postings to report (default: the current one).",
)
@click.option("--fail-on-mismatch", is_flag=True, help="Exit 1 unless every record matched.")
@connection
@click.pass_context
def recon_report(
    ctx,
    counterparty: bytes | str,
    day: int,
    books: Path | None,
    fields: str | None,
    generation: int | None,
    fail_on_mismatch: bool,
) -> None:
    """This side's reconciliation with --counterparty for --day: the node's public report
    (sharing.recon_report) of the postings under one generation of the pair key, explained
    with that key: matched, mismatched (with the differing field names), missing on us,
    missing on them. Exit 0 whatever it finds, unless --fail-on-mismatch."""
    records = None if books is None else _records(books)
    rec = _reconciler(ctx, counterparty, fields)
    _pair_ready(rec, generation)
    client = remote.ledger(ctx).client
    try:
        public = recon_client.fetch_public_report(
            lambda body: client.app(recon_client.ENDPOINT.name, body), rec.pair_id, day, generation=generation
        )
    except ReconError as exc:
        raise CommandFailed(f"recon report: {exc}") from None
    try:
        report = rec.report(day, records=records, public=public)
    except ReconError as exc:
        fail(f"--books: {exc}")
    out = report.to_json()
    out.update(date=date(day), counterparty=rec.counterparty.hex(), clean=report.clean)
    print_json(out)
    if fail_on_mismatch and not report.clean:
        n = report.counts
        raise CommandFailed(
            f"recon report: {n['mismatched']} mismatched, {n['missing_on_us']} missing on us, "
            f"{n['missing_on_them']} missing on them"
        )
