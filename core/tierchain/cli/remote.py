"""What the command groups of the apps on finance's organizations share: a node to talk to.

``tierchain sharing``, ``abs``, ``bills``, ``receipts`` and ``tradefin`` each send signed
transactions to a running node and read its state. This module is their common plumbing:

* the connection options (``--node``, ``--key``, ``--chain-id``, ``--passphrase-env``,
  ``--wait``): ``group`` makes a command group taking them (with their defaults),
  ``connection`` puts them on a command (without: one given there overrides the group's),
  so a group whose commands take ``connection`` accepts them before the command name or
  after it (after wins). Each value is kept in the context's object (``option``).
* what a command makes of them: ``ledger`` (the node as a ``sharing.ledger.RemoteLedger``,
  made once per command, its chain id checked against ``--chain-id``), ``wait``,
  ``key_path`` (exit 2 if the command signs and no ``--key`` was given: checked before the
  node is asked), ``keys`` (the key pair, its suite checked against the node's), ``client``
  and ``party`` (an app's client on the node, and the signer acting through it), ``org``
  (an ``OrgRef``'s id, exit 2 if the ledger has no such organization), ``known``.
* argument types: ``Until`` (a moment: ISO 8601 or Unix ms), ``Day`` (a UTC day),
  ``choice`` (an enum's members by lower-case name); and ``iso`` / ``date``, their inverse.
* results and errors, as in ``tierchain finance``: ``fail`` (a bad argument: one line on
  stderr, exit 2), ``outcome`` (a transaction's code and tx id as JSON, or one line naming
  the refusal, exit 1), ``print_json`` (bytes as hex, enum members by name).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing.ledger import RemoteLedger
from tierchain.cli.errors import EXIT_USAGE, CommandFailed
from tierchain.cli.types import CHAIN_ID, NODE_URL, check_key_suite, read_passphrase
from tierchain.crypto import KeyPair, load_key_file

T = TypeVar("T")

# --- argument types ------------------------------------------------------------------------


def choice(enum_type: type[enum.Enum]) -> click.Choice:
    """The members of ``enum_type`` by lower-case name."""
    return click.Choice([m.name.lower() for m in enum_type])


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


def date(day: int) -> str:
    """A day number (days since 1970-01-01) as ``YYYY-MM-DD``."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def iso(ms: int) -> str:
    """Unix milliseconds as ISO 8601 in UTC, to the millisecond."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


# --- results and errors --------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    """A bad argument found in a command's body: one line, exit 2."""
    raise CommandFailed(message, EXIT_USAGE)


def jsonable(value: Any) -> Any:
    """Bytes as hex, enum members by name, containers recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """``value`` (``jsonable``) as indented JSON on stdout."""
    click.echo(json.dumps(jsonable(value), indent=2))


def outcome(r: Any, what: str, **extra: Any) -> None:
    """One transaction's result as JSON (its code, tx id and ``extra``); a refusal is one line
    naming the code, exit 1 (and nothing on stdout: no id of something never created)."""
    if not r.ok:
        raise CommandFailed(f"{what} refused: {r.code.name} (tx {r.tx_id.hex()})")
    print_json({"code": r.code.name, "tx_id": r.tx_id.hex(), **extra})


def known(value: T | None, what: str, ident: bytes) -> T:
    """``value``, read from the ledger; exit 2 if there is none (``no WHAT ID on the ledger``)."""
    if value is None:
        fail(f"no {what} {ident.hex()} on the ledger")
    return value


# --- connection: a group's options, repeatable after the command name ------------------------

DEFAULT_NODE = "http://127.0.0.1:7545"


def _setter(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            ctx.ensure_object(dict)[name] = value

    return store


_CONNECTION: tuple[tuple[str, str, Any, dict[str, Any]], ...] = (
    ("--node", "url", DEFAULT_NODE, dict(type=NODE_URL, help="The node's endpoint.")),
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


def connection_options(defaults: bool) -> Callable[[Callable], Callable]:
    """The connection options: a group's (with their defaults) or a command's (none: one
    given overrides the group's). Each is stored in the context's object (``option``)."""

    def decorate(f: Callable) -> Callable:
        for flag, name, default, kwargs in reversed(_CONNECTION):
            extra = dict(default=default, show_default=default is not None) if defaults else {}
            f = click.option(flag, name, expose_value=False, callback=_setter(name), **kwargs, **extra)(f)
        return f

    return decorate


connection = connection_options(defaults=False)


def group(name: str) -> Callable[[Callable[[], None]], click.Group]:
    """A command group ``name`` taking the connection options with their defaults (its
    function's docstring is its help); the context's object holds their values."""
    return lambda f: click.group(name)(connection_options(defaults=True)(f))


def option(ctx: click.Context, name: str) -> Any:
    """A connection option's value (``url``, ``key_file``, ``chain_id``, ``passphrase_env``,
    ``wait_s``); None if neither the group nor the command was given it and it has no default."""
    return (ctx.obj or {}).get(name)


def ledger(ctx: click.Context) -> RemoteLedger:
    """The node as a ledger (made once per command), its chain id checked if given."""
    obj = ctx.ensure_object(dict)
    if "_ledger" not in obj:
        from tierchain.api.rpc import NodeClient

        node = RemoteLedger(NodeClient(option(ctx, "url")))
        want = obj.get("chain_id")
        if want is not None and want != node.chain_id:
            fail(f"the node at {option(ctx, 'url')} runs chain {node.chain_id}, not {want}")
        obj["_ledger"] = node
    return obj["_ledger"]


def wait(ctx: click.Context) -> float:
    """``--wait``: seconds to wait for each transaction's receipt."""
    return float(option(ctx, "wait_s"))


def key_path(ctx: click.Context) -> Path:
    """The signing key file (exit 2 if none was given: checked before the node is asked)."""
    path = option(ctx, "key_file")
    if path is None:
        # A group whose commands take no connection options has it before the command name.
        where = "" if any(p.name == "key_file" for p in ctx.command.params) else " (before the command name)"
        fail(f"{ctx.command_path}: this command signs: give --key FILE{where}")
    return path


def keys(ctx: click.Context) -> KeyPair:
    """The signer's key pair (it may prompt for the passphrase: call it after the arguments
    are checked); a key of another suite than the node's is refused, naming both."""
    path = key_path(ctx)
    suite = ledger(ctx).suite
    pair = load_key_file(path, read_passphrase(option(ctx, "passphrase_env")))
    check_key_suite(pair, suite.name, path)
    return pair


def client(ctx: click.Context, make: Callable[..., T]) -> T:
    """An app's client on the node: ``make(ledger, timeout_s=--wait)``."""
    return make(ledger(ctx), timeout_s=wait(ctx))


def party(ctx: click.Context, make: Callable[..., Any]) -> Any:
    """The signer, acting through ``make``'s client (``client``): ``--key`` is checked first
    (before the node is asked), the passphrase asked for last (call it after the arguments
    are checked)."""
    key_path(ctx)
    return client(ctx, make).party(keys(ctx))


def org(ctx: click.Context, ref: bytes | str) -> bytes:
    """The id of an ``OrgRef`` on the node's chain; exit 2 if the ledger has no such organization."""
    node = ledger(ctx)
    oid = ref if isinstance(ref, bytes) else fc.org_id(ref, suite=node.suite)
    if node.state_get(fc.org_key(oid)) is None:
        fail(f"no organization {ref if isinstance(ref, str) else oid.hex()} on the ledger")
    return oid
