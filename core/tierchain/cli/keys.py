"""The state keys users type, and what their values mean (``tierchain state get``, ``balance``).

State keys are bytes (1..``limits.key_bytes_max``); most are a short text prefix then a
binary id (``apps.accounts``, ``engine.execute``, ``apps.finance.codes`` own the layouts).
A user writes one as:

=============================  ===========================================================
``0x<hex>``                    the key's bytes, whatever they are
``nonce/<64 hex>``             the next nonce of an account (stored as ``00 6e <public key>``)
``acct/<64 hex>``              an account: roles, registered-at height
``bal/<64 hex>``               an account's balance (minor units)
``fk/<64 hex>``                finance: a member key's organization and status
``fo/ fq/ fv/ fx/<32 hex>``    finance: an organization, proposal, voucher, piece by id
``fd/<2 hex type><64 hex>``    finance: an anchored document (type byte, fingerprint)
``fc/<32 hex><4 hex>``         finance: a voucher's clearing list n (u16 little endian)
``fr/ fl/<64 hex>``            finance: registry entry, one bank's financing
``<prefix>/<64 hex>``          any other prefix then 32 bytes (as ``state prove`` reads it)
anything else                  its UTF-8 bytes (``fp/params``)
=============================  ===========================================================

``decode_value`` turns a known key's value into JSON-ready data through the record's own
codec, so what ``state get`` prints is what the ledger reads. Role masks are named by the
chain's app set (an embedder app's roles included), or by the built-in apps' roles.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import struct
from collections.abc import Callable
from typing import Any

from tierchain import limits
from tierchain.apps import accounts
from tierchain.apps.finance import codes as c
from tierchain.engine.apps import AppSet, default_set
from tierchain.engine.execute import nonce_key

_U64 = struct.Struct("<Q")
_HEX = re.compile(r"[0-9a-fA-F]*")
RoleNames = Callable[[int], list[str]]  # a roles mask -> its role names (AppSet.role_names)


class KeyFormError(ValueError):
    """A key as typed does not name a state key (says which form was expected)."""


def _name(kind: type[enum.IntEnum], value: int) -> str | int:
    return kind(value).name if value in kind._value2member_map_ else value


def _plain(obj: Any) -> Any:
    """Dataclasses, bytes and tuples as JSON values (bytes as hex)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, tuple | list):
        return [_plain(x) for x in obj]
    return obj


def _u64(field: str) -> Callable[[bytes, RoleNames], dict]:
    def decode(raw: bytes, roles: RoleNames) -> dict:
        if len(raw) != _U64.size:
            raise c.RecordError(f"{field}: expected 8 bytes, got {len(raw)}")
        return {field: _U64.unpack(raw)[0]}

    return decode


def _account(raw: bytes, roles: RoleNames) -> dict:
    mask, height = accounts.decode_account(raw)  # struct.error if damaged (decode_value)
    return {"roles": roles(mask), "registered_height": height}


def _key_record(raw: bytes, roles: RoleNames) -> dict:
    out = _plain(c.KeyRecord.decode(raw))
    return {**out, "status": _name(c.KeyStatus, out["status"])}


def _org(raw: bytes, roles: RoleNames) -> dict:
    rec = c.OrgRecord.decode(raw)
    return {**_plain(rec), "roles": roles(rec.roles), "name": rec.name.decode(errors="replace")}


def _proposal(raw: bytes, roles: RoleNames) -> dict:
    out = _plain(c.Proposal.decode(raw))
    return {**out, "action": _name(c.Action, out["action"])}


def _doc(raw: bytes, roles: RoleNames) -> dict:
    return _plain(c.DocRecord.decode(raw))


def _voucher(raw: bytes, roles: RoleNames) -> dict:
    rec = c.Voucher.decode(raw)
    docs = [{"type": _name(c.DocType, t), "fingerprint": fp.hex()} for t, fp in rec.docs]
    return {**_plain(rec), "status": _name(c.VoucherStatus, rec.status), "docs": docs}


def _piece(raw: bytes, roles: RoleNames) -> dict:
    rec = c.Piece.decode(raw)
    history = [{**_plain(e), "kind": _name(c.Event, e.kind)} for e in rec.history]
    return {
        **_plain(rec),
        "state": _name(c.PieceState, rec.state),
        "offer_kind": _name(c.OfferKind, rec.offer_kind),
        "history": history,
    }


def _clearing(raw: bytes, roles: RoleNames) -> dict:
    height, rows = c.decode_clearing(raw)
    return {
        "height": height,
        "rows": [{"piece": p.hex(), "holder": h.hex(), "amount": a} for p, h, a in rows],
    }


@dataclasses.dataclass(frozen=True)
class Table:
    """One kind of state key: typed as ``form`` + hex of ``id_bytes`` bytes, stored as ``prefix`` + id."""

    form: str
    prefix: bytes
    id_bytes: int
    what: str
    decode: Callable[[bytes, RoleNames], dict]  # (value, role names) -> JSON-ready record


TABLES = (
    Table("nonce/", nonce_key(b""), 32, "a public key", _u64("nonce")),
    Table("acct/", accounts.account_key(b""), 32, "a public key", _account),
    Table("bal/", accounts.balance_key(b""), 32, "a public key", _u64("balance")),
    Table("fk/", b"fk/", 32, "a public key", _key_record),
    Table("fo/", b"fo/", c.id_bytes, "an organization id", _org),
    Table("fq/", b"fq/", c.id_bytes, "a proposal id", _proposal),
    Table("fd/", b"fd/", 33, "a document type byte then a 32-byte fingerprint", _doc),
    Table("fv/", b"fv/", c.id_bytes, "a voucher id", _voucher),
    Table("fx/", b"fx/", c.id_bytes, "a piece id", _piece),
    Table("fc/", b"fc/", c.id_bytes + 2, "a voucher id then a u16 batch number", _clearing),
    Table("fr/", b"fr/", 32, "a blinded fingerprint", lambda r, _: _plain(c.RegistryEntry.decode(r))),
    Table("fl/", b"fl/", 32, "a financing ref digest", _u64("amount")),
)
_BY_FORM = {t.form: t for t in TABLES}
_LITERALS: dict[bytes, tuple[str, Callable[[bytes, RoleNames], dict]]] = {
    c.PARAMS_KEY: ("params", lambda r, _: _plain(c.Params.decode(r))),
}


def parse_key(text: str) -> bytes:
    """The state key ``text`` names (forms in the module docstring); ``KeyFormError`` if none."""
    if text.startswith(("0x", "0X")):
        raw = _hex(text[2:], "after 0x")
    elif (table := _BY_FORM.get(text[: text.find("/") + 1])) is not None:
        tail = _hex(text[len(table.form) :], f"after {table.form}")
        if len(tail) != table.id_bytes:
            raise KeyFormError(
                f"{table.form} takes {table.what}: {2 * table.id_bytes} hex digits, got {2 * len(tail)}"
            )
        raw = table.prefix + tail
    elif m := re.fullmatch(r"([^/]+/)([0-9a-fA-F]{64})", text):
        raw = m.group(1).encode() + bytes.fromhex(m.group(2))
    else:
        raw = text.encode()
    if not 1 <= len(raw) <= limits.key_bytes_max:
        raise KeyFormError(f"a state key is 1..{limits.key_bytes_max} bytes; {text!r} is {len(raw)}")
    return raw


def _hex(text: str, where: str) -> bytes:
    if len(text) % 2 or not _HEX.fullmatch(text):
        raise KeyFormError(f"expected an even number of hex digits {where}, got {text!r}")
    return bytes.fromhex(text)


def _table(key: bytes) -> Table | None:
    for table in TABLES:
        if key.startswith(table.prefix) and len(key) == len(table.prefix) + table.id_bytes:
            return table
    return None


def key_text(key: bytes) -> str:
    """``key`` in the form a user types it (the inverse of ``parse_key``)."""
    if (table := _table(key)) is not None:
        return table.form + key[len(table.prefix) :].hex()
    if key.isascii() and key.decode().isprintable():
        return key.decode()
    return "0x" + key.hex()


def decode_value(key: bytes, value: bytes, app_set: AppSet | None = None) -> dict[str, Any] | None:
    """``value`` of ``key`` decoded as the ledger reads it, or None for a key of no known table.

    Role masks are named by ``app_set`` (the chain's; default: the built-in apps').

    A value that does not fit its record's layout gives ``{"error": ...}``: the raw hex is
    printed beside it, and a damaged record is worth seeing rather than hiding."""
    if (table := _table(key)) is not None:
        kind, decode = table.form.rstrip("/"), table.decode
    elif key in _LITERALS:
        kind, decode = _LITERALS[key]
    else:
        return None
    try:
        return {"type": kind, **decode(value, (app_set or default_set()).role_names)}
    except (c.RecordError, struct.error) as exc:
        return {"type": kind, "error": f"not a valid {kind} record: {exc}"}
