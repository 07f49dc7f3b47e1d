"""Click parameter types for the ``tierchain`` command line (``main``, ``finance``, ``cluster``).

A malformed argument is refused by click while it parses the command line: one line
naming the parameter and what it expects, exit code 2, before a key file is unsealed or
a node is contacted. Commands declare these types instead of converting strings in
their bodies, where a ``ValueError`` would escape as a traceback.

The key passphrase option (``passphrase_option``) and how its value is read
(``read_passphrase``) are here too, shared by ``main`` and ``cluster``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Any

import click

from tierchain.apps import accounts
from tierchain.apps.finance import codes as fin_codes
from tierchain.cli.keys import KeyFormError, parse_key
from tierchain.crypto.suite import DEFAULT_SUITE_NAME, SUITES

_HEX = re.compile(r"[0-9a-fA-F]*")


class HexBytes(click.ParamType):
    """Bytes written as hex digits (an optional ``0x`` is accepted); ``size`` bytes if given."""

    def __init__(self, size: int | None = None, what: str = "value", name: str = "hex") -> None:
        self.size, self.what, self.name = size, what, name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes:
        if isinstance(value, bytes):
            return value
        text = value[2:] if value.startswith(("0x", "0X")) else value
        if not text or len(text) % 2 or not _HEX.fullmatch(text):
            self.fail(f"{self.what} must be {self._digits()}, got {value!r}", param, ctx)
        raw = bytes.fromhex(text)
        if self.size is not None and len(raw) != self.size:
            self.fail(f"{self.what} must be {self._digits()}, got {len(text)} digits", param, ctx)
        return raw

    def _digits(self) -> str:
        if self.size is None:
            return "an even number of hex digits"
        return f"{2 * self.size} hex digits ({self.size} bytes)"


class HostPort(click.ParamType):
    """``HOST:PORT`` to listen on or dial (the text is passed on unchanged once checked)."""

    name = "host:port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            self.fail(f"expected HOST:PORT with a port in 0..65535, got {value!r}", param, ctx)
        return value


class NodeUrl(click.ParamType):
    """A node's HTTP endpoint, ``http://HOST:PORT`` (``https`` too); the text is passed on unchanged."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            url = urllib.parse.urlsplit(value)
            url.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        except ValueError:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.hostname:
            self.fail(f"expected a node URL such as http://127.0.0.1:7545, got {value!r}", param, ctx)
        return value


class BlockHeight(click.ParamType):
    """A block height (an integer >= 0) or ``head`` (given as None)."""

    name = "height"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if value == "head":
            return None
        if not value.isdigit():
            self.fail(f'expected a block height (an integer >= 0) or "head", got {value!r}', param, ctx)
        return int(value)


class StateKey(click.ParamType):
    """A state key in one of the forms of ``tierchain.cli.keys`` (``bal/<hex>``, ``0x…``, ...)."""

    name = "key"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes:
        if isinstance(value, bytes):
            return value
        try:
            return parse_key(value)
        except KeyFormError as exc:
            self.fail(str(exc), param, ctx)


PUBLIC_KEY = HexBytes(32, "a public key", "pubkey")
TX_ID = HexBytes(32, "a transaction id", "tx_id")
FINANCE_ID = HexBytes(fin_codes.id_bytes, "an id", "id")  # voucher, piece, proposal, org
HEX = HexBytes()
AMOUNT = click.IntRange(1, accounts.amount_max)  # minor units, as the transfer op bounds them
BALANCE = click.IntRange(0, accounts.amount_max)
CHAIN_ID = click.IntRange(0, (1 << 32) - 1)
HOST_PORT = HostPort()
NODE_URL = NodeUrl()
HEIGHT = BlockHeight()
STATE_KEY = StateKey()


extra_apps_option = click.option(
    "--app",
    "extra_apps",
    multiple=True,
    help="An app the chain runs besides the built-in ones, by name (repeatable; found through the "
    "tierchain.apps entry points or TIERCHAIN_APPS=module:attr, docs/embedding.md).",
)
"""``tierchain init`` and ``tierchain net init``: the genesis's apps beyond the built-in ones."""

crypto_option = click.option(
    "--crypto",
    type=click.Choice(tuple(SUITES)),
    default=DEFAULT_SUITE_NAME,
    show_default=True,
    help="The crypto suite: signatures, hashes and key-file sealing (docs/national-crypto.md).",
)
"""``init``, ``keygen`` and ``net init``: a chain's suite is fixed at genesis; a key is of one suite."""

passphrase_option = click.option(
    "--passphrase-env",
    default="TIERCHAIN_PASSPHRASE",
    show_default=True,
    help="Environment variable holding the key passphrase (prompted for if unset).",
)


def read_passphrase(env: str, confirm: bool = False) -> str:
    """The passphrase in environment variable ``env``, else prompted for (twice if ``confirm``)."""
    value = os.environ.get(env)
    if value:
        return value
    return click.prompt("Key passphrase", hide_input=True, confirmation_prompt=confirm)


def check_key_suite(keys: Any, suite_name: str, where: object) -> None:
    """Refuse a key of another suite than the chain's, naming both (``where``: the key file)."""
    if keys.suite_name != suite_name:
        raise click.ClickException(
            f"{where} holds a {keys.suite_name} key, but the chain runs the {suite_name} suite"
        )
