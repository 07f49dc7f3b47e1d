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
import datetime as dt
import enum
import functools
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import click

from tierchain.apps.finance import DocType
from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import lists, recon_client
from tierchain.apps.sharing.access import Grant, GrantStatus, document_bytes_max
from tierchain.apps.sharing.attachments import AttachmentError, AttachmentMissing, AttachmentStore
from tierchain.apps.sharing.client import DataKeyUnavailable, ReadError, Sharing, SharingParty
from tierchain.apps.sharing.codes import DisputeReason, ListId, ListReason, Purpose, RecordKind, RemoveReason
from tierchain.apps.sharing.ledger import RemoteLedger, scan_all
from tierchain.apps.sharing.list_client import ListKeyError, ListMember, Lists
from tierchain.apps.sharing.list_query import ENDPOINT as LIST_QUERY
from tierchain.apps.sharing.list_query import query_request
from tierchain.apps.sharing.recon_client import PairKeyMismatch, PostingPending, Reconciler
from tierchain.apps.sharing.recon_report import ReconError
from tierchain.cli.errors import EXIT_USAGE, CommandFailed
from tierchain.cli.finance import OrgRef
from tierchain.cli.types import (
    CHAIN_ID,
    NODE_URL,
    PUBLIC_KEY,
    HexBytes,
    check_key_suite,
    read_passphrase,
)
from tierchain.crypto import KeyPair, load_key_file

# --- argument types ----------------------------------------------------------------------

RECORD = HexBytes(c.id_bytes, "a record id", "record")
VERSION = click.IntRange(1, (1 << 32) - 1)
plaintext_bytes_max = document_bytes_max  # a version's document: 1 MiB less its salt (access.SALT_BYTES)


def _choice(enum_type: type) -> click.Choice:
    return click.Choice([m.name.lower() for m in enum_type])


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


class Until(click.ParamType):
    """A moment as Unix milliseconds or ISO 8601 (``2027-01-31``, ``2027-01-31T12:00:00+08:00``;
    without a zone: UTC)."""

    name = "iso8601|ms"
    ms_max = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last moment ISO 8601 writes

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        if value.isdigit():
            ms = int(value)
        else:
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError:
                self.fail(f"expected ISO 8601 (2027-01-31T12:00:00Z) or Unix ms, got {value!r}", param, ctx)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            ms = int(moment.timestamp() * 1000)
        if not 1 <= ms <= self.ms_max:
            self.fail(f"{value!r} is out of range (up to 9999-12-31)", param, ctx)
        return ms


class Day(click.ParamType):
    """A UTC day, ``YYYY-MM-DD`` or the reconciliation's day number (days since 1970-01-01, as
    reports show it)."""

    name = "yyyy-mm-dd"
    _form = re.compile(r"\d{4}-\d{2}-\d{2}")
    day_max = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        if value.isdigit() and int(value) <= self.day_max:
            return int(value)
        try:
            if not self._form.fullmatch(value):
                raise ValueError
            day = (dt.date.fromisoformat(value) - dt.date(1970, 1, 1)).days
        except ValueError:
            self.fail(f"expected a date YYYY-MM-DD (or a day number), got {value!r}", param, ctx)
        if day < 0:
            self.fail("a day on or after 1970-01-01", param, ctx)
        return day


def _fail(message: str) -> NoReturn:
    """A bad argument found in a command's body: one line, exit 2."""
    raise CommandFailed(message, EXIT_USAGE)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(_jsonable(value), indent=2))


def _jsonable(value: Any) -> Any:
    """Bytes as hex, enum members by name, containers recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _date(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


# --- connection: the group's options, repeatable after the command name ---------------------

_DEFAULT_NODE = "http://127.0.0.1:7545"


def _setter(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            ctx.ensure_object(dict)[name] = value

    return store


_CONNECTION: tuple[tuple[str, str, Any, dict[str, Any]], ...] = (
    ("--node", "url", _DEFAULT_NODE, dict(type=NODE_URL, help="The node's endpoint.")),
    (
        "--key",
        "key_file",
        None,
        dict(type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Signing key file."),
    ),
    (
        "--chain-id",
        "chain_id",
        None,
        dict(type=CHAIN_ID, help="Refuse a node of another chain (default: the node's, from /v1/head)."),
    ),
    (
        "--passphrase-env",
        "passphrase_env",
        "TIERCHAIN_PASSPHRASE",
        dict(help="Environment variable holding the key passphrase (prompted for if unset)."),
    ),
    (
        "--wait",
        "wait_s",
        10.0,
        dict(type=click.FloatRange(0, 3600), help="Seconds to wait for each transaction's receipt."),
    ),
)


def _connection(defaults: bool) -> Callable[[Callable], Callable]:
    """The connection options: the group's (with their defaults) or a command's (none: one
    given overrides the group's). Each is stored in the context's object (``_opt``)."""

    def decorate(f: Callable) -> Callable:
        for flag, name, default, kwargs in reversed(_CONNECTION):
            extra = dict(default=default, show_default=default is not None) if defaults else {}
            option = click.option(flag, name, expose_value=False, callback=_setter(name), **kwargs, **extra)
            f = option(f)
        return f

    return decorate


connection = _connection(defaults=False)


@click.group("sharing")
@_connection(defaults=True)
@click.pass_context
def sharing(ctx: click.Context) -> None:
    """Data sharing under control: encrypted records with grants and an access log,
    fingerprint-only shared lists, bilateral reconciliation (a chain running the sharing app).

    The connection options may be given here or after a command's name (which wins)."""
    ctx.ensure_object(dict)


def _opt(ctx: click.Context, name: str) -> Any:
    return (ctx.obj or {}).get(name)


def _client(ctx: click.Context) -> Any:
    from tierchain.api.rpc import NodeClient

    return NodeClient(_opt(ctx, "url"))


def _ledger(ctx: click.Context) -> RemoteLedger:
    """The node as a sharing ledger (made once per command), its chain id checked if given."""
    obj = ctx.ensure_object(dict)
    if "_ledger" not in obj:
        ledger = RemoteLedger(_client(ctx))
        want = obj.get("chain_id")
        if want is not None and want != ledger.chain_id:
            _fail(f"the node at {_opt(ctx, 'url')} runs chain {ledger.chain_id}, not {want}")
        obj["_ledger"] = ledger
    return obj["_ledger"]


def _wait(ctx: click.Context) -> float:
    return float(_opt(ctx, "wait_s"))


def _key_path(ctx: click.Context) -> Path:
    """The signing key file (exit 2 if none was given: checked before the node is asked)."""
    path = _opt(ctx, "key_file")
    if path is None:
        _fail(f"{ctx.command_path}: this command signs: give --key FILE")
    return path


def _keys(ctx: click.Context) -> KeyPair:
    """The signer's key pair (it may prompt for the passphrase: call it after the arguments
    are checked); a key of another suite than the node's is refused, naming both."""
    path = _key_path(ctx)
    suite = _ledger(ctx).suite
    keys = load_key_file(path, read_passphrase(_opt(ctx, "passphrase_env")))
    check_key_suite(keys, suite.name, path)
    return keys


def _sharing(ctx: click.Context, attachments: Path | None = None) -> Sharing:
    ledger = _ledger(ctx)
    store = None if attachments is None else AttachmentStore(attachments, suite=ledger.suite)
    return Sharing(ledger, attachments=store, timeout_s=_wait(ctx))


def _party(ctx: click.Context, attachments: Path | None = None) -> SharingParty:
    _key_path(ctx)
    sh = _sharing(ctx, attachments)
    return sh.party(_keys(ctx))


def _org(ctx: click.Context, ref: bytes | str) -> bytes:
    """The id of an ``OrgRef`` on the node's chain; exit 2 if the ledger has no such organization."""
    ledger = _ledger(ctx)
    oid = ref if isinstance(ref, bytes) else fc.org_id(ref, suite=ledger.suite)
    if ledger.state_get(fc.org_key(oid)) is None:
        _fail(f"no organization {ref if isinstance(ref, str) else oid.hex()} on the ledger")
    return oid


def _org_name(sh: Sharing, org: bytes) -> str:
    info = sh.org(org)
    return info.name.decode(errors="replace") if info else ""


def _record(sh: Sharing, record: bytes, version: int | None = None) -> Any:
    """The record's head; exit 2 for a record (or version) the ledger does not have."""
    head = sh.record(record)
    if head is None:
        _fail(f"no record {record.hex()} on the ledger")
    if version is not None and sh.version(record, version) is None:
        _fail(f"record {record.hex()} has no version {version} (it has {head.versions})")
    return head


def _outcome(r: Any, what: str, **extra: Any) -> None:
    """One transaction's result as JSON; a refusal is one line naming the code, exit 1 (and
    nothing on stdout: no id of a record that was never created)."""
    if not r.ok:
        raise CommandFailed(f"{what} refused: {r.code.name} (tx {r.tx_id.hex()})")
    _print_json({"code": r.code.name, "tx_id": r.tx_id.hex(), **extra})


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
        _fail(f"{path}: a version is at most {plaintext_bytes_max} bytes, this file has {len(data)}")
    return data


def _put_outcome(r: Any, data: bytes, sh: Sharing) -> None:
    v = sh.version(r.id, r.version) if r.ok else None
    extra = (
        {} if v is None else {"sealed_bytes": v.size, "on_chain": v.on_chain, "fingerprint": v.fingerprint}
    )
    _outcome(r, "put", id=r.id.hex(), version=r.version, bytes=len(data), **_jsonable(extra))


def _sealing(act: Callable[[], Any]) -> Any:
    """Run a put: what cannot be sealed or does not match its anchor is a bad argument."""
    try:
        return act()
    except AttachmentMissing:
        _fail(f"a version over {c.inline_bytes_max} sealed bytes is kept off chain: give --attachments DIR")
    except ReadError as exc:  # FingerprintMismatch: the file is not the anchored document
        _fail(str(exc))
    except ValueError as exc:
        _fail(str(exc))


@sharing.command("put")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--kind", type=_choice(RecordKind), required=True, help="What the record is.")
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
        _fail("a trade_document needs --anchor TYPE[:FINGERPRINT]; other kinds take none")
    data = _plaintext(file)
    party = _party(ctx, attachments)
    if anchor is not None:
        doc_type, given = anchor
        own = fc.document_fingerprint(data, suite=party.suite)
        if given is not None and given != own:
            _fail(f"{file} is not the anchored document (its fingerprint is {own.hex()})")
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
@click.option("--purpose", type=_choice(Purpose), required=True, help="Why (shown in the access log).")
@click.option("--until", "until_ms", type=Until(), required=True, help="Expiry: ISO 8601 or Unix ms.")
@connection
@click.pass_context
def grant(ctx, record: bytes, org: bytes | str, purpose: str, until_ms: int) -> None:
    """Owner: let ORG obtain RECORD's keys (every version) for --purpose until --until."""
    party = _party(ctx)
    _record(party.sh, record)
    oid = _org(ctx, org)
    r = party.grant(record, oid, Purpose[purpose.upper()], until_ms)
    _outcome(r, "grant", record=record.hex(), org=oid.hex(), until_ms=until_ms, until=_iso(until_ms))


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
    oid = _org(ctx, org)
    _outcome(party.revoke(record, oid), "revoke", record=record.hex(), org=oid.hex())


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
    _outcome(party.request(record, version), "request", record=record.hex(), version=version)


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
    _print_json({"released": released, **({"refused": refused} if refused else {})})
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
    oid = _org(ctx, org)
    try:
        r = party.release(record, version, oid, recipient)
    except AttachmentMissing:
        _fail(f"version {version} is kept off chain: give --attachments DIR")
    except DataKeyUnavailable as exc:
        raise CommandFailed(f"release: {exc}") from None
    _outcome(r, "release", record=record.hex(), version=version, org=oid.hex())


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
        _fail(f"--out: no directory {out.absolute().parent}")
    party = _party(ctx, attachments)
    _record(party.sh, record, version)
    try:
        data = party.read(record, version)
    except AttachmentMissing as exc:
        if attachments is None:
            _fail(f"version {version} is kept off chain: give --attachments DIR")
        raise CommandFailed(f"read: {exc} in {attachments}") from None
    except (ReadError, AttachmentError) as exc:
        raise CommandFailed(f"read: {type(exc).__name__}: {exc}") from None
    _write_private(out, data)
    fp = party.sh.version(record, version).fingerprint  # checked: the anchor, or the commitment
    _print_json(
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
        e["time"] = _iso(e["timestamp_ms"])
    _print_json({"record": record, "log": entries})


def _grant_json(sh: Sharing, org: bytes, g: Grant) -> dict:
    return {
        "org": org.hex(),
        "org_name": _org_name(sh, org),
        "purpose": Purpose(g.purpose).name,
        "expiry_ms": g.expiry_ms,
        "expiry": _iso(g.expiry_ms),
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
                    "time": _iso(v.timestamp_ms),
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
    _print_json(
        {
            "record": record,
            "owner": head.owner,
            "owner_name": _org_name(sh, head.owner),
            "kind": RecordKind(head.kind),
            "anchor": DocType(head.doc_type).name if trade else None,
            "fingerprint": head.fingerprint,
            "created_height": head.created_height,
            "created": _iso(head.created_ms),
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
        _fail(f"{path} is not a list key ({2 * lists.list_key_bytes} hex digits, as `list-key new` writes)")
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
        _fail(f"{out} exists; refusing to overwrite a list key")
    except OSError as exc:
        _fail(f"cannot create {out}: {exc.strerror}")
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    _print_json({"list_key_file": str(out)})


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
    _key_path(ctx)
    lst = Lists(_ledger(ctx), _wait(ctx))
    epoch = lst.key_state().epoch + 1 if epoch is None else epoch
    r = lst.vote_list_key(_keys(ctx), epoch, key)
    check = c.key_check(key, suite=lst.suite)
    _outcome(r, "list-key vote", epoch=epoch, key_check=check.hex(), active=lst.key_state().epoch == epoch)


@list_key.command("show")
@click.option("--list-key", "list_key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@connection
@click.pass_context
def list_key_show(ctx, list_key_file: Path | None) -> None:
    """The chain's current list-key epoch and check, the next epoch's ballots (one per key
    check voted), and (with --list-key) whether the file holds the current key."""
    key = None if list_key_file is None else _read_list_key(list_key_file)
    lst = Lists(_ledger(ctx))
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
            "opened": _iso(b.timestamp_ms),
            "lapses": _iso(b.timestamp_ms + lists.ballot_ms_max),
        }
        for b in lst.ballots(state.epoch + 1)
    ]
    if key is not None:
        out["holds_current"] = bool(state.epoch) and c.key_check(key, suite=lst.suite) == state.key_check
    _print_json(out)


@sharing.group("list")
def list_group() -> None:
    """Fingerprint-only shared lists (blacklist, overdue, fraud): identities are fingerprinted
    here with the list key; only fingerprints reach the node."""


_IDENTITY_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def _identity_lines(source: str, text: str) -> list[str]:
    """The non-blank lines of ``text`` (read from ``source``), stripped."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        _fail(f"{source}: no identity")
    return lines


def _identity_source(
    identity: str | None, identity_file: Path | None, *, first_line: bool
) -> tuple[str, str] | None:
    """Where the identity comes from and its text: ``--identity -`` (stdin: its first line
    only if ``first_line``, so a terminal need not send an end of file) or ``--identity-file``
    (exactly one of ``--identity`` and it); None for ``--identity TEXT``."""
    if (identity is None) == (identity_file is None):
        _fail("give exactly one of --identity and --identity-file")
    if identity_file is None:
        if identity != "-":
            return None
        with click.open_file("-") as stdin:
            return "--identity -", stdin.readline() if first_line else stdin.read()
    try:
        return f"--identity-file {identity_file}", identity_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"--identity-file: cannot read {identity_file}: {exc}")


def _one_identity(identity: str | None, identity_file: Path | None) -> str:
    """The identity of ``--identity TEXT``, or the first line (stripped) of stdin
    (``--identity -``) or of ``--identity-file``."""
    source = _identity_source(identity, identity_file, first_line=True)
    if source is None:
        return str(identity)
    first = source[1].splitlines()[:1]
    if not first or not first[0].strip():
        _fail(f"{source[0]}: no identity on the first line")
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
    return click.option("--list", "list_name", type=_choice(ListId), required=True, help="Which list.")(g)


def _identity(kind: str, identity: str) -> lists.IdentityKind:
    """The identity kind, once the identity is checked against its format (exit 2 if not)."""
    k = IDENTITY_KINDS[kind]
    try:
        lists.canonical(k, identity)
    except lists.IdentityError as exc:
        _fail(f"--identity: {exc}")
    return k


def _member(ctx: click.Context, key_files: tuple[Path, ...]) -> ListMember:
    ring = [_read_list_key(p) for p in key_files]
    _key_path(ctx)
    return ListMember(Lists(_ledger(ctx), _wait(ctx)), _keys(ctx), ring, timeout_s=_wait(ctx))


def _listing(act: Callable[[], Any], what: str, list_id: ListId) -> None:
    try:
        r = act()
    except ListKeyError as exc:
        _fail(f"--list-key: {exc}")
    _outcome(r, what, list=list_id.name, fingerprint=r.fingerprint.hex() if r.fingerprint else None)


@list_group.command("add")
@_identity_options
@click.option("--reason", type=_choice(ListReason), required=True)
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
@click.option("--reason", type=_choice(RemoveReason), required=True)
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
@click.option("--reason", type=_choice(DisputeReason), required=True)
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
    lister_id = _org(ctx, lister)
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
    lister_id = _org(ctx, lister)
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
        "time": _iso(x.timestamp_ms),
        "rekeyed_height": x.rekeyed_height or None,
        "rekeyed_time": _iso(x.rekeyed_ms) if x.rekeyed else None,
        "disputed": x.disputed,
        "disputes": [
            {
                "org": d.org.hex(),
                "reason": DisputeReason(d.reason).name,
                "height": d.height,
                "time": _iso(d.timestamp_ms),
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
    ring = {c.key_check(key, suite=_ledger(ctx).suite): key for key in map(_read_list_key, list_keys)}
    lst = Lists(_ledger(ctx))
    state = lst.key_state()
    if not state.epoch:
        _fail("no list key has been voted yet")
    key = ring.get(state.key_check)
    if key is None:
        _fail(f"--list-key: no file holds the key of the current epoch {state.epoch}")
    fp = lists.fingerprint(key, k, identity, suite=lst.suite)
    entry = lst.current(list_id, fp)
    listings = [] if entry is None else [_listing_json(x) for x in entry.listings]
    _print_json(
        {
            "list": list_id.name,
            "epoch": state.epoch,
            "fingerprint": fp.hex(),
            "listed": bool(listings),
            "listings": listings,
        }
    )


@list_group.command("query")
@click.option("--list", "list_name", type=_choice(ListId), required=True, help="Which list.")
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
        _fail("--identity - reads every identity from stdin: give it alone")
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
        _fail(f"--list-key: {exc}")
    if len(set(fps)) != len(fps):
        _fail("the same identity twice")
    ledger = _ledger(ctx)
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
    _print_json(reply)


# --- reconciliation --------------------------------------------------------------------------


@sharing.group("recon")
def recon() -> None:
    """Bilateral reconciliation: each side posts keyed digests of its records of a day; the
    report lists matched, mismatched (which fields) and missing records."""


def _reconciler(ctx: click.Context, counterparty: bytes | str, fields: str | None = None) -> Reconciler:
    _key_path(ctx)
    oid = _org(ctx, counterparty)
    schema = None
    if fields is not None:
        schema = [f.strip() for f in fields.split(",") if f.strip()]
        if not schema:
            _fail("--fields names the agreed fields, comma separated")
    try:
        return Reconciler(_ledger(ctx), _keys(ctx), oid, fields=schema, timeout_s=_wait(ctx))
    except ReconError as exc:
        _fail(f"--fields: {exc}")


def _pair_ready(rec: Reconciler, generation: int | None = None) -> None:
    """The pair (and ``generation``: None, the current one) exists (exit 2 if not) and this
    key unseals its key (exit 1 if not)."""
    record = rec.pair()
    if record is None:
        _fail(f"no reconciliation pair with {rec.counterparty.hex()}: open it with `sharing recon open`")
    if generation is not None and generation > record.generation:
        _fail(f"--generation: the pair's current generation is {record.generation}")
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
                _fail(f"{path}: a JSON object of reference -> {{field: value}}")
            for ref, fields in doc.items():
                for name, value in fields.items():
                    if isinstance(value, bool) or not isinstance(value, str | int):
                        _fail(
                            f"{path}: record {ref!r:.60} field {name!r:.60}: a string or an integer, "
                            f"not {type(value).__name__} (format amounts yourself)"
                        )
            return doc
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:  # a BOM, as spreadsheets write
                reader = csv.DictReader(f)
                if reader.fieldnames is None or "ref" not in reader.fieldnames:
                    _fail(f"{path}: a CSV file with a header naming a 'ref' column and the fields")
                out: dict[str, dict[str, str | int]] = {}
                for line, row in enumerate(reader, start=2):
                    ref = row.pop("ref")
                    if not ref or ref in out or None in row or None in row.values():
                        _fail(f"{path}:{line}: an empty or repeated ref, or a row of another width")
                    out[ref] = dict(row)
                return out
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        _fail(f"{path}: {exc}")
    _fail(f"{path}: records are a .json or a .csv file")


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
        _fail(f"--counterparty-key: {exc}")
    _outcome(r, "recon open", pair=rec.pair_id.hex(), generation=0, side="AB"[rec.side])


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
    _outcome(r, "recon accept", pair=rec.pair_id.hex(), generation=record.generation, side="AB"[rec.side])


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
        _fail(f"no reconciliation pair with {rec.counterparty.hex()}: open it with `sharing recon open`")
    try:
        r = rec.rekey(counterparty_key)
    except ReconError as exc:
        _fail(f"--counterparty-key: {exc}")
    _outcome(r, "recon rekey", pair=rec.pair_id.hex(), generation=record.generation + 1, side="AB"[rec.side])


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
        _fail(f"{records}: no records")
    rec = _reconciler(ctx, counterparty, fields)
    _pair_ready(rec)
    generation = rec.generation
    pending: PostingPending | None = None
    try:
        results = rec.post(day, books, amend=amend)
    except ReconError as exc:
        _fail(f"{records}: {exc}")
    except PostingPending as exc:
        results, pending = exc.results, exc
    posted = [{"code": r.code.name, "tx_id": r.tx_id.hex(), "records": len(r.tags)} for r in results if r.ok]
    refused = next((r for r in results if not r.ok), None)
    out = {
        "pair": rec.pair_id.hex(),
        "generation": generation,
        "day": day,
        "date": _date(day),
        "records": sum(p["records"] for p in posted),
        "postings": posted,
    }
    if refused is None and pending is None:
        _print_json(out)
        return
    if posted:
        _print_json(out)
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
    client = _ledger(ctx).client
    try:
        public = recon_client.fetch_public_report(
            lambda body: client.app(recon_client.ENDPOINT.name, body), rec.pair_id, day, generation=generation
        )
    except ReconError as exc:
        raise CommandFailed(f"recon report: {exc}") from None
    try:
        report = rec.report(day, records=records, public=public)
    except ReconError as exc:
        _fail(f"--books: {exc}")
    out = report.to_json()
    out.update(date=_date(day), counterparty=rec.counterparty.hex(), clean=report.clean)
    _print_json(out)
    if fail_on_mismatch and not report.clean:
        n = report.counts
        raise CommandFailed(
            f"recon report: {n['mismatched']} mismatched, {n['missing_on_us']} missing on us, "
            f"{n['missing_on_them']} missing on them"
        )
