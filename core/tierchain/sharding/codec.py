"""The scheduler <-> shard message codec (docs/sharding.md, "Transport").

Every message between the cluster scheduler and a shard — over a local pipe or a
gRPC stream — is one msgpack array ``[kind, field, ...]`` whose fields are
checked against ``SCHEMA`` on decode. Nothing is pickled: a shard server reads
this from the network, and unpickling network input runs the sender's code.

A sub-batch travels as ``submit`` (its frames; the shard decodes and hashes them)
or, only over a link whose far end is the scheduler's own shard process (``link``,
"Trust"), as ``submit_ids``: the frames and the tx ids the scheduler's decoder
already computed, which the shard takes instead of hashing every body again.
``TO_SHARD`` is what any peer may send a shard, and all a ``ShardServer`` takes;
``TO_LOCAL_SHARD`` adds ``submit_ids``.

Field types are explicit: integers (u64/i64), ``bytes``, ``str``, ``None``,
lists, and three extension types — a tuple (ext 3, so ``Chain.tx``'s tuple and
``state_scan``'s pairs come back as tuples), a ``Header`` (ext 1, its canonical
encoding) and a ``Receipt`` (ext 2, its canonical encoding). Receipts of a
committed sub-batch travel in ``done`` as columns (heights, codes) plus the few
rows that carry events, so the hot path makes no msgpack object per row.

``decode`` is total: any byte string either gives a message that matches its
schema or raises ``MessageError``, never anything else (``tests/sharding/test_remote_shards.py``
fuzzes it). Sizes are bounded by ``message_bytes_max`` and msgpack's per-object limits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import blake3
import msgpack

from tierchain import limits
from tierchain.config import ChainConfig
from tierchain.errors import TierChainError
from tierchain.wire.block import Header, Receipt, decode_header, decode_receipt

__all__ = [
    "CALL_ARGS",
    "FROM_SHARD",
    "TO_LOCAL_SHARD",
    "TO_SHARD",
    "MessageError",
    "Ready",
    "decode",
    "encode",
    "genesis_digest",
    "message_bytes_max",
]

# A submit carries at most one batch (a submit_ids also its tx ids: 2 MiB at most);
# a done carries 10 bytes per row plus events.
message_bytes_max = limits.batch_bytes_max + (16 << 20)
assert limits.batch_txs_max * limits.digest_bytes <= 4 << 20  # a submit_ids's ids fit the margin
array_len_max = 1 << 20  # tx_many lookups are chunked far below this
nesting_max = 4  # ext tuples inside ext tuples
NO_RECEIPT = 0xFFFF  # code column value of a row that has no receipt (not admitted)
GENESIS_CONTEXT = "tierchain 2026 shard genesis identity"

_EXT_HEADER, _EXT_RECEIPT, _EXT_TUPLE = 1, 2, 3


class MessageError(TierChainError):
    """Bytes that are not a well-formed scheduler/shard message (refused, never executed)."""


@dataclasses.dataclass(frozen=True)
class Ready:
    """A shard's greeting: where its chain stands and which chain it is."""

    height: int
    chain_id: int
    genesis: bytes  # genesis_digest of the shard's config
    pid: int


def genesis_digest(config: ChainConfig) -> bytes:
    """What a scheduler compares to make sure an endpoint serves the shard it expects."""
    return blake3.blake3(config.genesis_bytes(), derive_key_context=GENESIS_CONTEXT).digest()


# --- schema ---------------------------------------------------------------------------

_INT, _BYTES, _STR, _LIST, _TUPLE = "int", "bytes", "str", "list", "tuple"
_ANY, _OPT_BYTES = "any", "bytes?"

# kind -> field types. Scheduler -> shard: submit, submit_ids, call, ping, close.
SCHEMA: dict[str, tuple[str, ...]] = {
    "ready": (_INT, _INT, _BYTES, _INT),  # height, chain_id, genesis digest, pid
    "submit": (_INT, _BYTES),  # req, framed txs
    "submit_ids": (_INT, _BYTES, _BYTES),  # req, framed txs (all decode), their tx ids packed
    "codes": (_INT, _OPT_BYTES, _INT),  # req, u8 code per row (or None), batch-wide code
    "done": (_INT, _BYTES, _BYTES, _LIST),  # req, u64 heights, u16 codes, [[row, [[topic, data]...]]...]
    "failed": (_INT, _STR),  # req, reason
    "call": (_INT, _STR, _TUPLE),  # req, method, args
    "result": (_INT, _ANY),  # req, value
    "error": (_INT, _STR),  # req (0: the message could not be read), reason
    "ping": (_INT,),
    "pong": (_INT, _INT),  # req, height
    "close": (_INT,),
    "closed": (_INT,),
}
TO_SHARD = frozenset({"submit", "call", "ping", "close"})  # from any peer: all a ShardServer takes
TO_LOCAL_SHARD = TO_SHARD | {"submit_ids"}  # from the scheduler that spawned the shard, on its pipe
FROM_SHARD = frozenset(SCHEMA) - TO_LOCAL_SHARD

# Methods of Chain a scheduler may call on a shard, with their argument types
# ("int?" / "bytes?": may be None; a trailing "..." marks optional arguments).
CALL_ARGS: dict[str, tuple[str, ...]] = {
    "height": (),
    "head": (),
    "header": ("int",),
    "tx": ("bytes",),
    "tx_many": ("list[bytes]",),  # scheduler-internal: in-doubt rows after a restart
    "balance": ("bytes",),
    "nonce": ("bytes",),
    "state_get": ("bytes", "...", "int?"),
    "receipts": ("int",),
    "state_scan": ("bytes", "int", "...", "bytes"),
    "state_get_many": ("list[bytes]",),
    "prove_state_encoded": ("bytes",),
    "prove_tx_encoded": ("bytes",),
    "receipts_of": ("list[bytes]",),
}


def _is(kind: str, value: Any) -> bool:
    if kind == _INT:
        return type(value) is int
    if kind == _BYTES:
        return type(value) is bytes
    if kind == _OPT_BYTES:
        return value is None or type(value) is bytes
    if kind == "int?":
        return value is None or type(value) is int
    if kind == _STR:
        return type(value) is str
    if kind == _LIST:
        return type(value) is list
    if kind == _TUPLE:
        return type(value) is tuple
    if kind == "list[bytes]":
        return type(value) is list and all(type(v) is bytes for v in value)
    return kind == _ANY


def check_call(method: str, args: tuple) -> None:
    """Raise ``MessageError`` unless ``args`` fit ``method``'s signature in ``CALL_ARGS``."""
    spec = CALL_ARGS.get(method)
    if spec is None:
        raise MessageError(f"not a shard call: {method[:40]!r}")
    required = spec.index("...") if "..." in spec else len(spec)
    types = tuple(t for t in spec if t != "...")
    if not required <= len(args) <= len(types) or not all(map(_is, types, args)):
        raise MessageError(f"bad arguments for {method}")


# --- encode / decode ---------------------------------------------------------------------


def _default(obj: Any) -> msgpack.ExtType:
    if type(obj) is tuple:
        return msgpack.ExtType(_EXT_TUPLE, _pack(list(obj)))
    if type(obj) is Header:
        return msgpack.ExtType(_EXT_HEADER, obj.encode())
    if type(obj) is Receipt:
        return msgpack.ExtType(_EXT_RECEIPT, obj.encode())
    raise TypeError(f"no message encoding for {type(obj).__name__}")


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, strict_types=True, use_bin_type=True)


def _ext_hook(depth: int) -> Callable[[int, bytes], Any]:
    def hook(code: int, data: bytes) -> Any:
        if code == _EXT_TUPLE:
            if depth >= nesting_max:
                raise MessageError("tuples nested too deep")
            return tuple(_unpack(data, depth + 1))
        if code == _EXT_HEADER:
            return decode_header(data)
        if code == _EXT_RECEIPT:
            receipt, end = decode_receipt(data)
            if end != len(data):
                raise MessageError("trailing bytes after a receipt")
            return receipt
        raise MessageError(f"unknown extension type {code}")

    return hook


def _unpack(data: bytes, depth: int) -> Any:
    return msgpack.unpackb(
        data,
        ext_hook=_ext_hook(depth),
        raw=False,
        use_list=True,
        strict_map_key=True,
        max_bin_len=message_bytes_max,
        max_str_len=1 << 16,
        max_array_len=array_len_max,
        max_map_len=0,
        max_ext_len=limits.batch_bytes_max,
    )


def encode(msg: tuple) -> bytes:
    """One message as bytes; ``MessageError`` if it does not fit its schema or the size bound."""
    if not msg or msg[0] not in SCHEMA or len(msg) != 1 + len(SCHEMA[msg[0]]):
        raise MessageError(f"not a message: {str(msg)[:80]}")
    try:
        data = _pack(list(msg))
    except (TypeError, ValueError, OverflowError) as exc:
        raise MessageError(f"cannot encode {msg[0]}: {exc}") from exc
    if len(data) > message_bytes_max:
        raise MessageError(f"{msg[0]} message of {len(data)} bytes exceeds {message_bytes_max}")
    return data


def decode(data: bytes, allowed: frozenset[str] | None = None) -> tuple:
    """The message in ``data``; ``MessageError`` for anything malformed or not in ``allowed``."""
    if len(data) > message_bytes_max:
        raise MessageError(f"message of {len(data)} bytes exceeds {message_bytes_max}")
    try:
        msg = _unpack(data, 0)
    except MessageError:
        raise
    except Exception as exc:  # msgpack's errors, CodecError, RecursionError...: all are bad input
        raise MessageError(f"undecodable message: {type(exc).__name__}: {str(exc)[:80]}") from exc
    if type(msg) is not list or not msg or type(msg[0]) is not str:
        raise MessageError("a message is a list starting with its kind")
    kind = msg[0]
    spec = SCHEMA.get(kind)
    if spec is None or (allowed is not None and kind not in allowed):
        raise MessageError(f"unexpected message kind {kind[:20]!r}")
    if len(msg) != 1 + len(spec) or not all(map(_is, spec, msg[1:])):
        raise MessageError(f"malformed {kind} message")
    if kind == "call":
        check_call(msg[2], msg[3])
    if kind == "ready" and len(msg[3]) != 32:
        raise MessageError("malformed ready message")
    return tuple(msg)


# --- receipts of a committed sub-batch, as columns -----------------------------------------


def receipts_columns(receipts: list[Receipt | None]) -> tuple[bytes, list]:
    """(u16 code per row, NO_RECEIPT for rows without one; [[row, [[topic, data]...]]...])."""
    import numpy as np

    codes = np.fromiter(
        (NO_RECEIPT if r is None else r.code for r in receipts), np.uint16, len(receipts)
    ).tobytes()
    events = [
        [i, [[e.topic, e.data] for e in r.events]]
        for i, r in enumerate(receipts)
        if r is not None and r.events
    ]
    return codes, events


def receipts_from_columns(tx_ids: list[bytes], codes: bytes, events: list) -> list[Receipt | None]:
    """Inverse of ``receipts_columns``, given each row's tx id; ``MessageError`` if inconsistent."""
    import numpy as np

    from tierchain.wire.block import Event

    if len(codes) != 2 * len(tx_ids):
        raise MessageError("receipt codes do not match the rows")
    code_list = np.frombuffer(codes, np.uint16).tolist()
    out: list[Receipt | None] = [
        None if c == NO_RECEIPT else Receipt(t, c) for t, c in zip(tx_ids, code_list, strict=True)
    ]
    try:
        for row, evs in events:
            base = out[row]
            if base is None or type(row) is not int or row < 0:
                raise MessageError("events for a row without a receipt")
            pairs = [(t, d) for t, d in evs]
            if not all(type(t) is bytes and type(d) is bytes for t, d in pairs):
                raise MessageError("event topic and data are bytes")
            out[row] = Receipt(base.tx_id, base.code, tuple(Event(t, d) for t, d in pairs))
    except (TypeError, ValueError, IndexError) as exc:
        raise MessageError(f"malformed receipt events: {exc}") from exc
    return out
