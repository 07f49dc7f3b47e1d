"""The ledgers the sharing clients run against: an embedded ``Chain`` or a node over HTTP.

``Ledger`` is what a sharing client needs of one: the chain id and crypto suite, committed
state (point reads and prefix scans), nonces, and ``send`` — submit one signed transaction
and wait for its receipt, answering its code as a named member (``code_named`` /
``name_named``: the engine's ``Reject`` or the enum of the app that owns the code — any
app of the chain, so the clients of other apps built on finance use these ledgers too). ``ledger_of`` wraps a
``Chain`` or a ``NodeClient``; anything else that has these members is used as it is.

``send_signed`` is how every sharing client sends: sign, send, wait, and answer a
``Result``; ``check_suite`` refuses keys of another suite than the ledger's.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from typing import Any, Protocol

from tierchain.apps.finance.client import SuiteMismatch
from tierchain.crypto import DEFAULT_SUITE_NAME, CryptoSuite, KeyPair, suite_for
from tierchain.engine import apps
from tierchain.errors import Reject, RejectedError
from tierchain.wire import tx as txcodec

scan_page = 1000  # pairs per scan call


class Ledger(Protocol):
    chain_id: int
    suite: CryptoSuite

    def state_get(self, key: bytes) -> bytes | None: ...
    def state_scan(
        self, prefix: bytes, limit: int = scan_page, after: bytes = b""
    ) -> list[tuple[bytes, bytes]]: ...
    def nonce(self, public_key: bytes) -> int: ...
    def send(self, tx: bytes, timeout_s: float) -> tuple[enum.IntEnum, Any]: ...


class EmbeddedLedger:
    """A ``tierchain.engine.chain.Chain`` in this process."""

    def __init__(self, chain: Any) -> None:
        self.chain, self.chain_id, self.suite = chain, chain.config.chain_id, chain.suite

    def state_get(self, key: bytes) -> bytes | None:
        return self.chain.state_get(key)

    def state_scan(
        self, prefix: bytes, limit: int = scan_page, after: bytes = b""
    ) -> list[tuple[bytes, bytes]]:
        return self.chain.state_scan(prefix, limit, after)

    def nonce(self, public_key: bytes) -> int:
        return self.chain.nonce(public_key)

    def send(self, tx: bytes, timeout_s: float) -> tuple[enum.IntEnum, Any]:
        sub = self.chain.submit([tx])
        if sub.codes[0]:
            return code_named(int(sub.codes[0]), self.chain.apps), None
        receipt = sub.wait(timeout_s)[0]
        return code_named(receipt.code, self.chain.apps), receipt


class RemoteLedger:
    """A node's HTTP endpoint through ``tierchain.api.rpc.NodeClient``."""

    def __init__(self, client: Any, chain_id: int | None = None) -> None:
        head = client.head()
        self.client = client
        self.chain_id = head["chain_id"] if chain_id is None else chain_id
        self.suite = suite_for(head.get("suite", DEFAULT_SUITE_NAME))

    def state_get(self, key: bytes) -> bytes | None:
        return self.client.state(key)

    def state_scan(
        self, prefix: bytes, limit: int = scan_page, after: bytes = b""
    ) -> list[tuple[bytes, bytes]]:
        return self.client.scan(prefix, limit, after)

    def nonce(self, public_key: bytes) -> int:
        return self.client.nonce(public_key)

    def send(self, tx: bytes, timeout_s: float) -> tuple[enum.IntEnum, Any]:
        reply = self.client.submit(txcodec.frame([tx]), wait_s=timeout_s)
        if reply["codes"][0] != "OK":
            return name_named(reply["codes"][0]), reply
        receipt = (reply.get("receipts") or [None])[0]
        if receipt is None:
            raise TimeoutError("the transaction was not committed in time")
        return name_named(receipt["code"]), receipt


def code_named(code: int, app_set: apps.AppSet) -> enum.IntEnum:
    """``code`` as a member of the enum of the app of ``app_set`` that owns it, or of the
    engine's ``Reject``; ``ValueError`` for a code nobody names."""
    for app in app_set.apps:
        if app.rejects is not None and code in app.rejects._value2member_map_:
            return app.rejects(code)
    return Reject(code)


def name_named(name: str) -> enum.IntEnum:
    """The member a code's name (as a node's API shows it) stands for: the engine's, or one
    of a built-in app's (their names are distinct); ``KeyError`` for an unknown name."""
    if name in Reject.__members__:
        return Reject[name]
    for enum_type in _builtin_rejects():
        if name in enum_type.__members__:
            return enum_type[name]
    raise KeyError(f"no app names a code {name!r}")


@functools.cache
def _builtin_rejects() -> tuple[type[enum.IntEnum], ...]:
    found = []
    for name in apps.BUILTIN_APPS:
        try:
            app = apps.find(name)
        except apps.AppError:  # a built-in that does not load here names nothing
            continue
        if app.rejects is not None and app.rejects not in found:
            found.append(app.rejects)
    return tuple(found)


def ledger_of(thing: Any) -> Ledger:
    """``thing`` as a ``Ledger``: a ``Chain``, a ``NodeClient``, or a ledger already."""
    if hasattr(thing, "send") and hasattr(thing, "state_scan"):
        return thing
    if hasattr(thing, "submit") and hasattr(thing, "config"):
        return EmbeddedLedger(thing)
    if hasattr(thing, "head") and hasattr(thing, "submit"):
        return RemoteLedger(thing)
    raise TypeError(f"not a ledger: {type(thing).__name__}")


def scan_all(ledger: Ledger, prefix: bytes, limit: int | None = None) -> list[tuple[bytes, bytes]]:
    """Every (key, value) under ``prefix``, page by page (at most ``limit`` if given)."""
    out: list[tuple[bytes, bytes]] = []
    after = b""
    while limit is None or len(out) < limit:
        page = ledger.state_scan(prefix, scan_page, after)
        out += page
        if len(page) < scan_page:
            break
        after = page[-1][0]
    return out if limit is None else out[:limit]


@dataclasses.dataclass
class Result:
    """One transaction's outcome (like ``finance.client.Result``), with what it created or named
    (the fields a client does not fill keep their defaults)."""

    code: enum.IntEnum  # the engine's Reject or an app's code; ``code.name`` is what the API shows
    tx_id: bytes
    receipt: Any = None
    id: bytes | None = None  # the record or pair the tx is about (a put: the new record's id)
    version: int = 0  # a put: the version it created
    fingerprint: bytes | None = None  # a list op: the (new) fingerprint it named
    tags: list[bytes] = dataclasses.field(default_factory=list)  # a posting: its records' tags
    ids: list[bytes] = dataclasses.field(default_factory=list)  # what else it created (split parts)
    index: int | None = None  # the numbered item it created or acted on (an amendment, a presentation)
    outcomes: list[enum.IntEnum] = dataclasses.field(default_factory=list)  # a batch's, item by item

    @property
    def ok(self) -> bool:
        return self.code == Reject.OK

    def check(self) -> Result:
        if not self.ok:
            raise RejectedError(self.code)
        return self


def check_suite(ledger: Ledger, keys: KeyPair) -> None:
    """``SuiteMismatch`` (naming both) unless ``keys`` are of the ledger's crypto suite."""
    if keys.suite_name != ledger.suite.name:
        raise SuiteMismatch(
            f"a {keys.suite_name} key cannot sign on a chain of the {ledger.suite.name} suite"
        )


def send_signed(
    ledger: Ledger,
    keys: KeyPair,
    tx: txcodec.Tx,
    timeout_s: float,
    *,
    result: type[Result] = Result,
    **extra: Any,
) -> Result:
    """Sign ``tx`` with ``keys``, send it and wait for its receipt (``timeout_s``); the answer
    is a ``result`` (``Result``, or a subclass of a client's) with the ``extra`` fields."""
    signed = keys.sign_tx(tx)
    code, receipt = ledger.send(signed.encode(), timeout_s)
    return result(code, signed.tx_id(suite_for(keys.suite_name)), receipt, **extra)
