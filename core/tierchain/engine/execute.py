"""Block execution: op handlers over a declared-key overlay, wave by wave.

The scheduler (``tierchain.engine.schedule``) puts every transaction of a block into a
wave; no two transactions in one wave conflict on a declared key, and
conflicting ones keep block order. Executing wave by wave therefore gives the
same receipts and writes as serial execution in block order (a property test
checks this against ``execute_serial``).

Each transaction runs against a ``TxContext`` that lets its handler read only
keys it declared (reads or writes) and write only keys it declared as writes.
Anything else raises ``UndeclaredAccess``: the transaction fails with
``Reject.UNDECLARED_ACCESS`` and none of its writes survive. A handler refuses a
transaction by raising ``OpFailed(code)`` with an engine code (``Reject``, below
``apps.app_reject_codes_min``) or one of its own app's ``reject_codes``
(``AppSet.may_refuse``); the receipt carries that code. A code of another app (or of
none) is a handler bug: logged, ``HANDLER_FAILED``. A handler (or the executor) that finds
a ledger invariant broken raises ``errors.InvariantViolation``: that is a bug,
not a refusal, so it gets no receipt; it leaves ``execute_block`` and halts block
production before the block is committed (``engine/pipeline.py``). Any other exception is a
handler bug on some input, logged, and the transaction fails with
``HANDLER_FAILED``: its writes are discarded with its ``TxContext`` buffer and the
block's other transactions are unaffected, so it never stops the node — a
crafted transaction that trips an unguarded corner of a handler must not halt
the chain (docs/architecture.md, "Invariants stop the node").

Per-transaction Python is allowed here and only here (DESIGN.md): op handlers
are the ledger's business logic.

An op may also name a native kernel (``apps.Op.native``): then its transactions run in
the Rust crate (ext/rust/src/exec/, ``tierchain_native.BlockState.run``), a scheduler's
wave on all cores with the GIL released, with exactly the handler's receipts, events and
writes (tests/engine/test_native_exec.py, tests/apps/test_finance_native.py). Both paths
share one block state (``BlockState``: the parent values of every key the block may touch,
prefetched once, and the block's writes in first-write order); a kernel may hand a row back
to the handler (deferral). ``TIERCHAIN_NATIVE_OPS=0`` runs every handler in Python
(docs/architecture.md, "Native op kernels").
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import os
import struct
from collections.abc import Callable

import numpy as np
import tierchain_native

from tierchain.crypto.suite import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps, schedule
from tierchain.errors import InvariantViolation, Reject, TierChainError
from tierchain.state.storage import state_value_bytes_max
from tierchain.wire.batch import Batch, row_bytes
from tierchain.wire.block import (
    EncodedReceipts,
    Event,
    Receipt,
    event_data_bytes_max,
    events_per_receipt_max,
)

log = logging.getLogger("tierchain.execute")

native_ops_env = "TIERCHAIN_NATIVE_OPS"  # "0": every op runs its Python handler (A/B benches)
_NO_KERNEL = 255
_RECEIPT_TYPES = (Receipt, Event)  # what the native executor makes receipts of
# The native executor returns engine codes by number: they must be Reject's.
if any(Reject[name] != code for name, code in tierchain_native.exec_constants()[1].items()):
    raise ImportError("tierchain_native's refusal codes differ from tierchain.errors.Reject: rebuild it")
SYSTEM_PREFIX = b"\x00"  # keys no transaction may declare (admission rejects them)
_U64 = struct.Struct("<Q")


def nonce_key(sender: bytes) -> bytes:
    return SYSTEM_PREFIX + b"n" + sender


class OpFailed(TierChainError):
    """Raised by a handler to refuse a transaction with a code: an engine code
    (``tierchain.errors.Reject``) or one of its own app's ``reject_codes``. ``code`` is kept
    as an int (the receipt's number); an ``IntEnum`` member (``Reject.BAD_PAYLOAD``, an
    app's ``rejects`` member) also gives the message its name. Whether the handler may use
    the code is checked where it is caught (``_run_one``: ``AppSet.may_refuse``)."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code, self.detail = int(code), detail
        name = code.name if isinstance(code, enum.IntEnum) else f"REJECT_{self.code}"
        super().__init__(f"{name}: {detail}" if detail else name)


class UndeclaredAccess(OpFailed):
    def __init__(self, key: bytes, mode: str) -> None:
        super().__init__(Reject.UNDECLARED_ACCESS, f"{mode} of undeclared key {key!r}")


# Reads of state as of the block's start (the committed state, or a pipeline overlay): a
# dict of prefetched values or a callable.
BaseGet = Callable[[bytes], "bytes | None"] | dict  # or a prepared BlockState (execute_block)
_TOMBSTONE = None


class TxContext:
    """What an op handler sees: its transaction, its declared keys, an event sink, the
    chain's app set (``apps``: e.g. ``apps.role_mask``, the roles an account may hold) and
    crypto suite (``suite``: e.g. ``suite.is_strong_public_key`` for a key being registered)."""

    __slots__ = (
        "_local",
        "_reads",
        "_state",
        "_writes",
        "apps",
        "events",
        "height",
        "nonce",
        "op",
        "payload",
        "sender",
        "shard_count",
        "shard_index",
        "suite",
        "timestamp_ms",
        "tx_id",
    )

    def __init__(
        self,
        state: tierchain_native.BlockState,
        height: int,
        timestamp_ms: int,
        app_set: apps.AppSet,
        suite: CryptoSuite = ED25519_BLAKE3,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self._state = state  # the block's state: the parent's values and the block's writes so far
        self.shard_index, self.shard_count = shard  # the chain's place in its cluster (0, 1: none)
        self.height, self.timestamp_ms = height, timestamp_ms
        self.apps, self.suite = app_set, suite

    def _reset(self, tx_id, sender, nonce, op, payload, reads, writes) -> None:
        self.tx_id, self.sender, self.nonce, self.op, self.payload = tx_id, sender, nonce, op, payload
        self._reads, self._writes = reads, writes
        self._local: dict[bytes, bytes | None] = {}
        self.events: list[Event] = []

    def declares(self, key: bytes) -> bool:
        """Whether the transaction declared ``key`` (to read or to write): how an op tells
        which of two places of a record its sender chose (e.g. a document's anchor or its
        claim carried from another shard)."""
        return key in self._writes or key in self._reads

    @property
    def declared_writes(self) -> frozenset[bytes]:
        return self._writes

    def get(self, key: bytes) -> bytes | None:
        if key not in self._writes and key not in self._reads:
            raise UndeclaredAccess(key, "read")
        if key in self._local:
            return self._local[key]
        return self._state.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self._writes:
            raise UndeclaredAccess(key, "write")
        if len(value) > state_value_bytes_max:
            raise OpFailed(Reject.BAD_PAYLOAD, f"value of {len(value)} bytes")
        self._local[key] = bytes(value)

    def delete(self, key: bytes) -> None:
        if key not in self._writes:
            raise UndeclaredAccess(key, "write")
        self._local[key] = _TOMBSTONE

    def get_u64(self, key: bytes) -> int:
        raw = self.get(key)
        return 0 if raw is None else _U64.unpack(raw)[0]

    def put_u64(self, key: bytes, value: int) -> None:
        self.put(key, _U64.pack(value))

    def emit(self, topic: bytes, data: bytes = b"") -> None:
        if len(self.events) >= events_per_receipt_max or len(data) > event_data_bytes_max:
            raise OpFailed(Reject.BAD_PAYLOAD, "too many or too large events")
        self.events.append(Event(topic, data))


# Ops are not registered here: each app declares its own (tierchain.engine.apps.App.ops) and the
# chain's app set is given to execute_block; the engine imports no app.


@dataclasses.dataclass
class BlockResult:
    receipts: list[Receipt]
    writes: dict[bytes, bytes | None]  # key -> new value, None = deleted


def _listed(column: str) -> functools.cached_property:
    """``BlockColumns``: the batch's ``column`` as a Python list, built on first use."""
    return functools.cached_property(lambda self: getattr(self._batch, column).tolist())


def _sliced(start: str, length: str) -> functools.cached_property:
    """``BlockColumns``: the byte strings the batch's ``start`` / ``length`` columns cut
    from its buffer, built on first use."""

    def build(self) -> list[bytes]:
        b = self._batch
        starts, lengths = getattr(b, start).tolist(), getattr(b, length).tolist()
        return [b.buf[s : s + n] for s, n in zip(starts, lengths, strict=True)]

    return functools.cached_property(build)


class BlockColumns:
    """A block's columns: ``native`` for the kernels (copied once, checked), and as the
    Python values op handlers see (keys, payloads, senders, nonces, ops), each list built on
    first use with a C-level loop — a block whose ops all have kernels builds none of them —
    so the per-transaction path does no numpy scalar conversions or slicing."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        self.tx_id = row_bytes(batch.digest)  # receipts name them
        self.native = tierchain_native.BlockCols(
            batch.buf, batch.key_first, batch.key_start, batch.key_len, batch.n_read, batch.n_write,
            batch.sender, batch.nonce, batch.expires_at, batch.payload_start, batch.payload_len, batch.digest,
        )  # fmt: skip

    keys = _sliced("key_start", "key_len")
    payload = _sliced("payload_start", "payload_len")
    first = _listed("key_first")
    n_read = _listed("n_read")
    n_write = _listed("n_write")
    nonce = _listed("nonce")
    op = _listed("op")
    expires_at = _listed("expires_at")

    @functools.cached_property
    def sender(self) -> list[bytes]:
        return row_bytes(self._batch.sender)


def declared_keys(cols: BlockColumns) -> list[bytes]:
    """Every key the block may read, sorted: declared keys and the senders' nonce keys (for
    prefetching; ``nonce_key``), listed natively."""
    return cols.native.declared_keys()


def read_state(
    reader: tuple[tierchain_native.LmdbTxn, int],
    cols: BlockColumns,
    overlays: list[dict[bytes, bytes | None] | tierchain_native.BlockState],
) -> tierchain_native.BlockState:
    """The parent state of the block ``cols`` as ``execute_block`` takes it (``base``): each
    key the block may touch (``declared_keys``) valued from the newest of ``overlays`` holding
    it, else from the table ``reader`` names (a native read transaction of this thread and the
    table's handle: ``storage``'s ``native``). ``overlays``, oldest first: the writes of blocks
    not in the table yet, each a dict (``None`` deletes) or the ``BlockState`` that executed
    the block (looked up natively). One native call that reads the table without the GIL and
    makes no Python object per value; with dict overlays, what ``BlockState(keys,
    get_many_raw(keys, overlays))`` holds."""
    txn, dbi = reader
    return tierchain_native.BlockState.read(txn, dbi, cols.native, overlays)


def _run_one(ctx: TxContext, cols: BlockColumns, i: int) -> Receipt:
    first, n_read = cols.first[i], cols.n_read[i]
    mid, last = first + n_read, first + n_read + cols.n_write[i]
    tx_id, sender = cols.tx_id[i], cols.sender[i]
    ctx._reset(
        tx_id,
        sender,
        cols.nonce[i],
        cols.op[i],
        cols.payload[i],
        frozenset(cols.keys[first:mid]),
        frozenset(cols.keys[mid:last]),
    )
    nkey = nonce_key(sender)
    expected = ctx._state.get(nkey)
    try:  # a stored nonce that is no u64, or one at 2^64 - 1: what the native executor calls Broken
        expected_nonce = 0 if expected is None else _U64.unpack(expected)[0]
        if ctx.nonce != expected_nonce:
            return Receipt(tx_id, Reject.NONCE_MISMATCH)
        next_nonce = _U64.pack(expected_nonce + 1)
    except struct.error as exc:
        raise InvariantViolation(
            f"the nonce of {sender.hex()}: {exc}", tx_id=tx_id, height=ctx.height
        ) from exc
    # The nonce is consumed whatever the op's outcome, so a failed tx cannot be replayed.
    ctx._state.put(nkey, next_nonce)
    # Admission checks expiry against the head it saw; a tx that then waited (backpressure,
    # pipelining) is checked again here, deterministically, against the block's height.
    expires_at = cols.expires_at[i]
    if expires_at and ctx.height > expires_at:
        return Receipt(tx_id, Reject.EXPIRED)
    op = ctx.apps.ops.get(ctx.op)
    if op is None:
        return Receipt(tx_id, Reject.UNKNOWN_OP)
    try:
        op.handler(ctx)
    except OpFailed as exc:
        if ctx.apps.may_refuse(ctx.op, exc.code):  # an engine code or one its app owns
            return Receipt(tx_id, exc.code)
        # A code another app owns (or none does) would tell the sender something this op
        # cannot mean: a handler bug, so what any other handler bug gets (its writes die
        # with ctx._local).
        log.error(
            "op handler %s refused tx %s with %s, a code its app does not own",
            op.name,
            tx_id.hex(),
            ctx.apps.reject_name(exc.code),
        )
        return Receipt(tx_id, Reject.HANDLER_FAILED)
    except InvariantViolation as exc:
        # A bug in the ledger, not a refusal: no receipt; it leaves the block, whose
        # production halts before anything of it is committed (engine/pipeline.py).
        exc.locate(op.name, tx_id, ctx.height)
        raise
    except Exception:
        # Any other exception stays a receipt (module docstring): the handler's writes
        # die with ctx._local, and a receipt keeps crafted input from halting the node.
        log.exception("op handler %s failed on tx %s", op.name, tx_id.hex())
        return Receipt(tx_id, Reject.HANDLER_FAILED)
    # The scheduler's proof (parallel = serial) rests on this; put/delete enforce it, so a
    # write outside the declared set is an engine bug, never input.
    if not ctx._local.keys() <= ctx._writes:
        raise InvariantViolation(
            "a write outside the declared write set", op=op.name, tx_id=tx_id, height=ctx.height
        )
    ctx._state.update(ctx._local)
    return Receipt(tx_id, Reject.OK, tuple(ctx.events))


def _native_ops_on() -> bool:
    return os.environ.get(native_ops_env, "1") != "0"


@functools.lru_cache(maxsize=64)
def _kernel_table(app_set: apps.AppSet) -> np.ndarray | None:
    """uint8[65536]: the native kernel of each op code of ``app_set``, ``_NO_KERNEL`` for a
    Python handler; None when no op of the set has a kernel."""
    table = np.full(1 << 16, _NO_KERNEL, np.uint8)
    for code, op in app_set.ops.items():
        if op.native is not None:
            table[code] = apps.native_kernels()[op.native]
    return table if (table != _NO_KERNEL).any() else None


class _NativeRows:
    """The native rows of a block, run in batches of consecutive waves (``flush``)."""

    def __init__(self, ctx: TxContext, cols: BlockColumns, kernels: np.ndarray, parallel: bool):
        self.ctx, self.cols, self.kernels, self.parallel = ctx, cols, kernels, parallel
        self.runs: list[np.ndarray] = []

    def flush(self, receipts: list, encoded: list) -> None:
        """Run the pending runs; a row its kernel defers runs its Python handler in its
        place (``codes::DEFER``, ext/rust/src/exec/mod.rs), then the rest continues."""
        if not self.runs:
            return
        ctx = self.ctx
        rows = np.concatenate(self.runs).astype(np.int64, copy=False)
        bounds = np.cumsum([0] + [len(r) for r in self.runs], dtype=np.int64)
        self.runs = []
        done = 0
        while done < len(rows):
            rest = np.concatenate(([0], bounds[bounds > done] - done))
            try:
                ran, deferred, failed = ctx._state.run(
                    self.cols.native, rows[done:], rest, self.kernels, ctx.height, ctx.timestamp_ms,
                    ctx.suite.name == ED25519_BLAKE3.name, self.parallel,
                    receipts, encoded, _RECEIPT_TYPES, self.cols.tx_id,
                )  # fmt: skip
            except ValueError as exc:
                raise InvariantViolation(f"native execution: {exc}", height=ctx.height) from exc
            for i in failed:
                log.error("native op %s failed on tx %s", self.cols.op[i], self.cols.tx_id[i].hex())
            for i in deferred:
                receipts[i] = _run_one(ctx, self.cols, i)
            done += ran


def _checked_waves(waves: list[np.ndarray], n: int) -> list[np.ndarray]:
    """A caller's waves as int64 arrays of row indices, each row at most once: the Python
    and the native path then run the same rows (a negative index would be a row from the
    end in Python and out of range natively; a row run twice would get the receipt of its
    second run, a nonce mismatch, beside the writes of its first)."""
    out, seen = [], np.zeros(n, dtype=bool)
    for wave in waves:
        w = np.asarray(wave)
        if w.ndim != 1 or (w.size and w.dtype.kind not in "iu"):
            raise ValueError("waves: each wave is a 1-D array of row indices")
        w = w.astype(np.int64, copy=False)
        if w.size and (int(w.min()) < 0 or int(w.max()) >= n):
            raise ValueError(f"waves: a row index outside 0..{n - 1}")
        if seen[w].any() or len(np.unique(w)) != len(w):
            raise ValueError("waves: a row listed twice")
        seen[w] = True
        out.append(w)
    return out


def execute_block(
    batch: Batch,
    base: BaseGet,
    height: int,
    timestamp_ms: int,
    waves: list[np.ndarray] | None = None,
    cols: BlockColumns | None = None,
    app_set: apps.AppSet | None = None,
    suite: CryptoSuite = ED25519_BLAKE3,
    shard: tuple[int, int] = (0, 1),
    keys: list[bytes] | None = None,
    native: bool | None = None,
) -> BlockResult:
    """Execute every valid transaction of ``batch`` wave by wave, with the ops of
    ``app_set`` (default: the built-in apps, ``apps.DEFAULT_APPS``) on a chain of ``suite``.

    ``base``: the parent state (a dict or a reader), or a ``BlockState`` of it that already
    holds every key the block may touch (``read_state``; it becomes the block's state);
    ``keys``: every key the block may touch (default: ``declared_keys(cols)``), read from a
    dict or reader ``base`` once up front. ``waves``:
    the scheduler's when None (conflict-free: a native wave runs on all cores), else the
    caller's, run in exactly their order. ``native``: run ops that have a native kernel
    there (default: on unless ``TIERCHAIN_NATIVE_OPS=0``); off, every op runs its Python
    handler — the same receipts and writes (tests/engine/test_native_exec.py)."""
    app_set = apps.default_set() if app_set is None else app_set
    if waves is not None:
        waves = _checked_waves(waves, len(batch))
    cols = BlockColumns(batch) if cols is None else cols
    if isinstance(base, tierchain_native.BlockState):
        state = base
    else:
        state = tierchain_native.BlockState(declared_keys(cols) if keys is None else keys, base)
    ctx = TxContext(state, height, timestamp_ms, app_set, suite, shard)
    receipts: list[Receipt | None] = [None] * len(batch)
    encoded: list[bytes | None] = [None] * len(batch)  # the native rows' receipts, encoded by their kernels
    parallel = waves is None
    table = _kernel_table(app_set) if (_native_ops_on() if native is None else native) else None
    if table is None:
        for wave in schedule.waves(batch) if waves is None else waves:
            for i in wave.tolist():
                receipts[i] = _run_one(ctx, cols, i)
    else:
        kernels = table[batch.op]
        on = kernels != _NO_KERNEL
        nat = _NativeRows(ctx, cols, kernels, parallel)
        for wave in schedule.waves(batch) if waves is None else waves:
            wave = np.asarray(wave)
            kinds = on[wave]
            if kinds.all():
                nat.runs.append(wave)
                continue
            if parallel:  # conflict-free: the wave's native rows first, then its Python rows
                if kinds.any():
                    nat.runs.append(wave[kinds])
                nat.flush(receipts, encoded)
                for i in wave[~kinds].tolist():
                    receipts[i] = _run_one(ctx, cols, i)
                continue
            # The caller's order: runs of one kind, in order.
            cuts = np.flatnonzero(np.diff(kinds.astype(np.int8))) + 1
            for run in np.split(wave, cuts):
                if on[run[0]]:
                    nat.runs.append(run)
                else:
                    nat.flush(receipts, encoded)
                    for i in run.tolist():
                        receipts[i] = _run_one(ctx, cols, i)
        nat.flush(receipts, encoded)
    if None in receipts:  # a C-level scan; the rows are listed only when one is missing
        missing = [i for i, r in enumerate(receipts) if r is None]
        raise InvariantViolation(f"scheduler left transactions unscheduled: {missing[:5]}", height=height)
    done = EncodedReceipts(receipts)
    if None in encoded:  # the kernels encoded their rows' receipts; the Python handlers' here
        for i, e in enumerate(encoded):
            if e is None:
                encoded[i] = receipts[i].encode()  # type: ignore[union-attr]
    done.encoded = encoded
    return BlockResult(done, state.writes())


def execute_serial(
    batch: Batch,
    base: BaseGet,
    height: int,
    timestamp_ms: int,
    app_set: apps.AppSet | None = None,
    suite: CryptoSuite = ED25519_BLAKE3,
    native: bool | None = None,
) -> BlockResult:
    """Reference: one transaction after another in block order."""
    waves = [np.flatnonzero(batch.ok)]
    return execute_block(
        batch, base, height, timestamp_ms, waves=waves, app_set=app_set, suite=suite, native=native
    )
