"""The ledgers the sharing clients run against: an embedded ``Chain`` or a node over HTTP.

``Ledger`` is what a sharing client needs of one: the chain id and crypto suite, committed
state (point reads and prefix scans), nonces, and ``send`` — submit one signed transaction
and wait for its receipt, answering its code as a named member (``codes.reject_of``:
the engine's ``Reject`` or the sharing app's ``SharingReject``). ``ledger_of`` wraps a
``Chain`` or a ``NodeClient``; anything else that has these members is used as it is.

``send_signed`` is how every sharing client sends: sign, send, wait, and answer a
``Result``; ``check_suite`` refuses keys of another suite than the ledger's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from tierchain.apps.finance.client import SuiteMismatch
from tierchain.apps.sharing import codes as c
from tierchain.crypto import DEFAULT_SUITE_NAME, CryptoSuite, KeyPair, suite_for
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
    def send(self, tx: bytes, timeout_s: float) -> tuple[c.SharingReject | Reject, Any]: ...


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

    def send(self, tx: bytes, timeout_s: float) -> tuple[c.SharingReject | Reject, Any]:
        sub = self.chain.submit([tx])
        if sub.codes[0]:
            return c.reject_of(int(sub.codes[0])), None
        receipt = sub.wait(timeout_s)[0]
        return c.reject_of(receipt.code), receipt


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

    def send(self, tx: bytes, timeout_s: float) -> tuple[c.SharingReject | Reject, Any]:
        reply = self.client.submit(txcodec.frame([tx]), wait_s=timeout_s)
        if reply["codes"][0] != "OK":
            return _named(reply["codes"][0]), reply
        receipt = (reply.get("receipts") or [None])[0]
        if receipt is None:
            raise TimeoutError("the transaction was not committed in time")
        return _named(receipt["code"]), receipt


def _named(name: str) -> c.SharingReject | Reject:
    return c.SharingReject[name] if name in c.SharingReject.__members__ else Reject[name]


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
    """One transaction's outcome (like ``finance.client.Result``), with what it created or named."""

    code: c.SharingReject | Reject  # ``code.name`` is what the API shows
    tx_id: bytes
    receipt: Any = None
    id: bytes | None = None  # the record or pair the tx is about (a put: the new record's id)
    version: int = 0  # a put: the version it created
    fingerprint: bytes | None = None  # a list op: the (new) fingerprint it named
    tags: list[bytes] = dataclasses.field(default_factory=list)  # a posting: its records' tags

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


def send_signed(ledger: Ledger, keys: KeyPair, tx: txcodec.Tx, timeout_s: float, **extra: Any) -> Result:
    """Sign ``tx`` with ``keys``, send it and wait for its receipt (``timeout_s``)."""
    signed = keys.sign_tx(tx)
    code, receipt = ledger.send(signed.encode(), timeout_s)
    return Result(code, signed.tx_id(suite_for(keys.suite_name)), receipt, **extra)
