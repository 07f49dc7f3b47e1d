"""LMDB storage: one environment per chain, a registry of typed tables.

Every table names its key and value codec (``TABLES``); reads and writes go
through them, so a value is checked before it is written and decoded (and, for
``Checked`` codecs, checksummed) when it is read back. A block is committed in
ONE write transaction (``Store.write``): LMDB's copy-on-write B+tree makes it all
or nothing, and with ``sync=True`` the commit returns only after fsync, so a
block reported committed survives ``kill -9`` and power loss.

LMDB is reached through the native extension's binding (``tierchain_native.LmdbEnv``),
not py-lmdb: py-lmdb releases and re-takes the GIL around every get and put, and
under load from other threads each of those hand-offs can wait a thread switch
interval; the binding holds the GIL across a batch and releases it once per batch
and for the commit (docs/architecture.md, "Design decisions in the native crate").
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

from tierchain_native import LmdbEnv, LmdbError, LmdbKeyExists, LmdbNotFound, LmdbTxn, SmtRecords

from tierchain import limits
from tierchain.errors import TierChainError
from tierchain.state.writer_lock import WriterLock
from tierchain.wire import block
from tierchain.wire.codec import U64BE, Bytes, Checked, Codec, CodecError, Struct, Utf8

state_value_bytes_max = 64 << 10
# The genesis TOML lives in meta: up to config.genesis_accounts_max accounts of ~150 bytes.
meta_value_bytes_max = 256 << 20
map_size_bytes_default = 64 << 30  # address space only; the file grows as written
items_page = 256  # records per native call when iterating a table


class StorageError(TierChainError):
    """The database could not be opened, or holds a record that fails its codec."""


class NotInitialized(StorageError):
    """Opened read-only before the first block (genesis) was ever committed."""


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    key: Codec
    value: Codec


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("meta", Utf8(64), Bytes(0, meta_value_bytes_max)),
        Table("headers", U64BE(), Checked(block.HeaderCodec())),
        Table("blocks", U64BE(), Checked(Bytes(0, limits.batch_bytes_max))),  # framed txs
        Table("receipts", U64BE(), Checked(block.ReceiptsCodec())),
        Table("tx_index", Bytes(32, 32), Struct("<QI")),  # tx id -> (height, position)
        # Recent tx ids not yet in tx_index: partition (the id's first byte) ‖ height u64
        # BE ‖ tx id -> position u32 (tierchain.state.tx_index).
        Table("tx_inbox", Bytes(41, 41), Struct("<I")),
        Table("state", Bytes(1, limits.key_bytes_max), Bytes(0, state_value_bytes_max)),
        # Per height after meta[state_height]: the block's packed write set, not yet
        # merged into "state" (tierchain.state.log).
        Table("state_log", U64BE(), Checked(Bytes(0, 1 << 30))),
        # Authenticated state (tierchain.state.tree): versioned tree records (chunks of
        # 50..1,184 bytes, leaves of 65 + value), the root per height, and per height
        # the packed keys of the records that height replaced.
        Table("smt_nodes", Bytes(10, 42), Bytes(50, 65 + state_value_bytes_max)),
        Table("smt_roots", U64BE(), Struct("<32sQ")),  # height -> (root hash, root node version)
        Table("smt_stale", U64BE(), Bytes(0, 1 << 30)),
    )
}


# Tables a database made before them lacks until a writable store opens it (creating
# them); a read-only store opens such a database and finds them empty.
tables_added_later = frozenset({"tx_inbox"})


class _Txn:
    def __init__(self, store: Store, txn: LmdbTxn) -> None:
        self._store, self._txn = store, txn

    def _dbi(self, table: str, *, absent_ok: bool = False) -> int | None:
        """``table``'s handle (an unknown name is ``KeyError``). A table this read-only
        database predates (``tables_added_later``): None with ``absent_ok`` (its reads
        find nothing), else ``StorageError``."""
        TABLES[table]
        dbi = self._store._dbs.get(table)
        if dbi is None and not absent_ok:
            raise StorageError(f"table {table!r} is not in this database yet (a writable open creates it)")
        return dbi

    def get(self, table: str, key: Any, default: Any = None) -> Any:
        t = TABLES[table]
        if (dbi := self._dbi(table, absent_ok=True)) is None:
            return default
        raw = self._txn.get(dbi, t.key.encode(key))
        if raw is None:
            return default
        try:
            return t.value.decode(raw)
        except CodecError as exc:
            raise StorageError(f"table {table!r} key {key!r}: {exc}") from exc

    def get_raw(self, table: str, key_bytes: bytes) -> bytes | None:
        """Undecoded value bytes (hot path for state reads; codecs checked on write)."""
        return self._txn.get(self._dbi(table), key_bytes)

    def native(self, table: str) -> tuple[LmdbTxn, int]:
        """The native transaction and ``table``'s handle, for native readers (the state tree)."""
        return self._txn, self._dbi(table)

    def get_many_raw(
        self, table: str, keys: list[bytes], overlays: list[dict[bytes, bytes | None]] | None = None
    ) -> dict[bytes, bytes]:
        """Values of the present ``keys`` (sorted for locality), in one native call, in the
        order of ``keys``. ``overlays``: write sets not in the table yet, oldest first (``None``
        deletes): a key one of them holds takes the newest one's value, unread."""
        keys = keys if isinstance(keys, list) else list(keys)
        return self._txn.get_many(self._dbi(table), keys, overlays)

    def entries(self, table: str) -> int:
        """Number of records in ``table`` (LMDB keeps the count: O(1))."""
        return self._txn.entries(self._dbi(table))

    def last(self, table: str) -> tuple[Any, Any] | None:
        t = TABLES[table]
        found = self._txn.last(self._dbi(table))
        if found is None:
            return None
        try:
            return t.key.decode(found[0]), t.value.decode(found[1])
        except CodecError as exc:
            raise StorageError(f"table {table!r}: {exc}") from exc

    def scan_tails(self, table: str, prefix: bytes, tails: list[bytes]) -> list[tuple[bytes, Any] | None]:
        """For each of ``tails``, the first record of ``table`` whose key is ``prefix``,
        then any bytes, then that tail: ``(the bytes between, decoded value)``, or None.
        One native pass over the prefix's records (``LmdbTxn.scan_tails``): for a table
        whose keys are looked up by their end when the middle is not known."""
        if (dbi := self._dbi(table, absent_ok=True)) is None:
            return [None] * len(tails)
        t = TABLES[table]
        found = self._txn.scan_tails(dbi, prefix, tails)
        try:
            return [None if f is None else (f[0], t.value.decode(f[1])) for f in found]
        except CodecError as exc:
            raise StorageError(f"table {table!r}: {exc}") from exc

    def items(self, table: str, start: Any = None) -> Iterator[tuple[Any, Any]]:
        """Records from key ``start`` (default: the first) in key order, read a page at a time."""
        if (dbi := self._dbi(table, absent_ok=True)) is None:
            return
        t = TABLES[table]
        after = None if start is None else t.key.encode(start)
        while True:
            page = self._txn.range(dbi, after, items_page)
            for k, v in page:
                yield t.key.decode(k), t.value.decode(v)
            if len(page) < items_page:
                return
            after = page[-1][0] + b"\x00"  # the least key greater than the last one


class WriteTxn(_Txn):
    def put(self, table: str, key: Any, value: Any) -> None:
        t = TABLES[table]
        self._txn.put(self._dbi(table), t.key.encode(key), t.value.encode(value))

    def put_many_raw(self, table: str, items: list[tuple[bytes, bytes]], append: bool = False) -> None:
        """Batch put of already-encoded pairs, for tables whose codecs only bound lengths.

        The bounds are checked here, in bulk, instead of per item through the codecs.
        ``append``: every key is greater than every key already in the table and the
        items ascend (LMDB's append mode: no search, pages filled completely); raises
        ``StorageError`` otherwise, with the items before the bad one already put, so
        the write transaction must then be abandoned (``Store.write`` does that when
        the error leaves its body).
        """
        items = items if isinstance(items, list) else list(items)
        lens = [len(k) for k, _ in items], [len(v) for _, v in items]
        spans = [(min(n), max(n)) for n in lens] if items else []
        self._put_checked(table, spans, lambda dbi: self._txn.put_many(dbi, items, append))

    def put_records(self, table: str, records: SmtRecords, append: bool = False) -> None:
        """``put_many_raw`` of a state tree batch's records (``tierchain_native.SmtRecords``,
        sorted by key), kept natively: no Python object per record."""
        kmin, kmax, vmin, vmax = records.bounds()
        spans = [(kmin, kmax), (vmin, vmax)] if len(records) else []
        self._put_checked(table, spans, lambda dbi: self._txn.put_records(dbi, records, append))

    def put_merged(self, table: str, write_sets: list[dict[bytes, bytes | None]]) -> tuple[int, int]:
        """Write the merge of ``write_sets`` (oldest first: a later set's value for a key
        wins, ``None`` deletes the key) in key order, natively (``LmdbTxn.put_merged``: no
        Python sort, the GIL released while sorting and writing), for a table whose codecs
        only bound lengths; a key or value out of bounds is ``CodecError`` before anything
        is written. Returns (puts, deletes)."""
        bounds = self._length_bounds(table)
        try:
            return self._txn.put_merged(self._dbi(table), write_sets, *bounds)
        except ValueError as exc:
            raise CodecError(f"table {table!r}: {exc}") from exc

    def _put_checked(self, table: str, spans: list[tuple[int, int]], put: Callable[[int], None]) -> None:
        """``put(dbi)`` of a batch whose (shortest, longest) key and value lengths are
        ``spans`` (none: an empty batch), checked first; an append out of order is
        ``StorageError``."""
        self._check_lengths(table, *spans)
        try:
            put(self._dbi(table))
        except LmdbKeyExists as exc:
            raise StorageError(f"table {table!r}: append of keys out of order") from exc

    @staticmethod
    def _length_bounds(table: str) -> tuple[tuple[int, int], tuple[int, int]]:
        """Raw puts go to tables whose codecs only bound lengths: the (shortest, longest)
        key and value lengths the table allows."""
        t = TABLES[table]
        if not (isinstance(t.key, Bytes | Struct) and isinstance(t.value, Bytes | Struct)):
            raise TypeError(f"table {table!r} needs typed puts")
        k, v = (
            (c.layout.size,) * 2 if isinstance(c, Struct) else (c.size_min, c.size_max)
            for c in (t.key, t.value)
        )
        return k, v

    @classmethod
    def _check_lengths(cls, table: str, *spans: tuple[int, int]) -> None:
        """The (shortest, longest) key and value lengths of a batch, checked against the
        table's bounds at once."""
        t = TABLES[table]
        for codec, (lo, hi), (shortest, longest) in zip(
            (t.key, t.value), cls._length_bounds(table), spans, strict=False
        ):
            if shortest < lo or longest > hi:
                raise CodecError(f"table {table!r}: {codec.name} length out of bounds")

    def put_packed(
        self, table: str, keys: bytes, values: bytes, append: bool = False, sort: bool = False
    ) -> None:
        """``put_many_raw`` of pairs packed back to back, for a table of fixed-size keys and
        values (``tx_index``): key ``i`` is ``keys[i * k:(i + 1) * k]``, its value likewise.
        ``sort``: put in key order (sorted natively; of equal keys the last one stays)."""
        sizes = self._packed_sizes(table)
        if len(keys) % sizes[0] or len(values) != len(keys) // sizes[0] * sizes[1]:
            raise CodecError(f"table {table!r}: packed keys and values are not whole pairs")
        try:
            self._txn.put_packed(self._dbi(table), keys, sizes[0], values, sizes[1], append, sort)
        except LmdbKeyExists as exc:
            raise StorageError(f"table {table!r}: append of keys out of order") from exc

    def take_packed(self, table: str, prefix: bytes, limit: int) -> tuple[bytes, bytes]:
        """Remove the records of a table of fixed-size keys and values whose key starts with
        ``prefix`` and return them packed as ``put_packed`` takes them, in key order
        (``LmdbTxn.take_prefix``, the GIL released). More than ``limit`` of them is
        ``StorageError`` with nothing removed."""
        key_size, value_size = self._packed_sizes(table)
        try:
            return self._txn.take_prefix(self._dbi(table), prefix, key_size, value_size, limit)
        except ValueError as exc:
            raise StorageError(f"table {table!r}: {exc}") from exc

    @staticmethod
    def _packed_sizes(table: str) -> tuple[int, int]:
        """The key and value sizes of a table of fixed-size keys and values."""
        t = TABLES[table]
        sizes = []
        for codec in (t.key, t.value):
            if isinstance(codec, Struct):
                sizes.append(codec.layout.size)
            elif isinstance(codec, Bytes) and codec.size_min == codec.size_max:
                sizes.append(codec.size_max)
            else:
                raise TypeError(f"table {table!r} has no fixed-size {codec.name}")
        return sizes[0], sizes[1]

    def delete(self, table: str, key: Any) -> None:
        self._txn.delete(self._dbi(table), TABLES[table].key.encode(key))


class Store:
    """One chain's LMDB environment. ``sync=False`` is for benchmarks only.

    A writable store holds the database's exclusive writer lock from before the
    environment opens until ``close`` (``tierchain.state.writer_lock``); a second writer,
    in this process or another, gets ``DatabaseLocked`` naming the holder. A
    read-only store takes no lock and sees only committed transactions.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        sync: bool = True,
        map_size: int = map_size_bytes_default,
        readonly: bool = False,
    ) -> None:
        self.path, self.sync = os.fspath(path), sync
        if readonly and not os.path.exists(os.path.join(self.path, "data.mdb")):
            raise NotInitialized(f"no TierChain database at {self.path}")
        self._lock = None if readonly else WriterLock(self.path)
        try:
            self._open(map_size, readonly)
        except BaseException:
            self._release_lock()
            raise

    def _open(self, map_size: int, readonly: bool) -> None:
        try:
            self.env = LmdbEnv(
                self.path,
                map_size=map_size,
                max_dbs=len(TABLES),
                sync=self.sync,
                readonly=readonly,
                max_readers=256,
            )
        except LmdbError as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        try:
            self._dbs = {}
            for name in TABLES:
                try:
                    self._dbs[name] = self.env.open_db(name, not readonly)
                except LmdbNotFound:
                    if name not in tables_added_later:
                        raise
                    # read-only, a database older than the table: reads of it find nothing
        except LmdbNotFound as exc:
            self.env.close()
            raise NotInitialized(f"no TierChain database at {self.path} (never initialized)") from exc
        except LmdbError as exc:
            self.env.close()
            raise StorageError(f"cannot open {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[_Txn]:
        txn = self.env.begin(False)
        try:
            yield _Txn(self, txn)
        finally:
            txn.abort()

    @contextlib.contextmanager
    def write(self, before_commit: Callable[[], object] | None = None) -> Iterator[WriteTxn]:
        """One atomic, (with sync) durable write transaction.

        ``before_commit`` runs after the body, right before the commit (and its
        fsync, which runs without the GIL); if it raises, nothing commits.
        """
        txn = self.env.begin(True)
        try:
            yield WriteTxn(self, txn)
            if before_commit is not None:
                before_commit()
        except BaseException:
            txn.abort()
            raise
        try:
            txn.commit()
        except LmdbError as exc:
            raise StorageError(f"commit to {self.path} failed: {exc}") from exc

    def size_bytes(self) -> int:
        _, last_pgno, page_size = self.env.info()
        return last_pgno * page_size

    def close(self) -> None:
        self.env.close()  # refuses (and keeps the lock) while transactions are open
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
