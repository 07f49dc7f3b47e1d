"""Authenticated state: the versioned sparse Merkle tree, stored in the chain's LMDB.

The tree (binary, path-compressed, BLAKE3 with separate leaf / node / empty
domains) and its batch update are Rust (``ext/rust/src/smt/``, exposed as
``tierchain_native.smt_apply``); proof checking is pure Python
(``tierchain.proofs``). This module is the glue between them and storage:

* ``smt_nodes``: the tree's records, never changed in place.

  - chunk key ``version u64 BE || depth u16 BE || path bits`` (``depth`` a
    multiple of 4) -> ``0x03 || slots``: the binary subtree below one internal
    node, four levels deep, in pre-order, one slot per position: ``0x00``
    internal (its two children follow), ``0x01`` empty, ``0x02 kh || vh ||
    leaf version u64 LE``, ``0x03 hash || chunk version u64 LE`` (the chunk
    four levels down). Internal hashes are not stored; reading a chunk
    recomputes them and checks the top one against the parent's.
  - leaf key ``version u64 BE || 0xFFFF || kh`` -> ``0x02 || kh || vh ||
    value``; it does not depend on the leaf's depth, so a leaf that moves
    keeps its record.

  A block writes the chunks on the paths of its written keys and a leaf
  record per written value anew, at its own height, in the block's one write
  transaction.
* ``smt_roots``: height -> (root hash, version of the depth-0 chunk). The
  root at every retained height, so state can be read and proved at any of
  them.
* ``smt_stale``: height -> packed keys of the records that height replaced.
  Pruning with ``keep_heights = K`` deletes, when height ``h`` commits, the
  records replaced at or before ``h - K + 1`` (no retained height can reach
  them) and the roots below it: state at heights ``>= h - K + 1`` stays
  readable and provable, older heights raise ``StatePruned``. ``K = 0`` keeps
  every version.

Updating a block: ``prepare`` hands the block's write set and its read
transaction to Rust, which reads the chunks it needs one chunk level (four
tree levels) at a time from the transaction, else from an overlay of the
records of earlier blocks not committed yet (the chain computes block h+1's
version while h commits), with the GIL released. Rust returns the new records
(``tierchain_native.SmtRecords``: sorted, kept natively), the replaced keys
(packed) and the root; ``write`` appends the records with one native call in
the block's write transaction. ``apply`` is both in one
write transaction (genesis in chunks, tests: each call sees its own earlier
records). The top of the tree stays in a Rust-side cache across blocks
(see ``StateTree``), so only the chunks below it are fetched. A fresh state
(genesis) is written by ``build``: bottom up, each record once, in key order
with LMDB append.
"""

from __future__ import annotations

import dataclasses
import itertools
import struct
from collections.abc import Iterable, Mapping, Sequence

import tierchain_native
from tierchain_native import SmtRecords

from tierchain import domains, proofs
from tierchain.crypto.suite import ED25519_BLAKE3, SUITES
from tierchain.errors import TierChainError
from tierchain.proofs import EMPTY_HASH, StateProof
from tierchain.state.storage import StorageError, WriteTxn, _Txn

_EMPTY_ROOT = (EMPTY_HASH, 0)

# ext/rust/src/smt/hash.rs spells the state contexts out again (Rust hashes the tree); the crypto suite
# compares them with the light client's when it is built, so by now they agree.
assert ED25519_BLAKE3.contexts.state_tree == domains.STATE_TREE


class StatePruned(TierChainError):
    """The state at that height was pruned (older than the node's retention window)."""


class StateUnavailable(TierChainError):
    """No authenticated state at that height (not committed yet, or an "interim" chain)."""


CHUNK_LEVELS = 4
LEAF_DEPTH_MARK = 0xFFFF


def node_key(version: int, depth: int, path: bytes) -> bytes:
    n = (depth + 7) // 8
    p = bytearray(path[:n])
    if depth & 7:
        p[-1] &= (0xFF << (8 - (depth & 7))) & 0xFF
    return struct.pack(">QH", version, depth) + bytes(p)


def leaf_key(version: int, kh: bytes) -> bytes:
    return struct.pack(">QH", version, LEAF_DEPTH_MARK) + bytes(kh)


def split_keys(packed: bytes) -> list[bytes]:
    """Record keys packed back to back (each one's length follows from its depth field)."""
    out, pos = [], 0
    while pos < len(packed):
        depth = int.from_bytes(packed[pos + 8 : pos + 10], "big")
        end = pos + 10 + (32 if depth == LEAF_DEPTH_MARK else (depth + 7) // 8)
        out.append(packed[pos:end])
        pos = end
    return out


class _Damaged(Exception):
    pass


# The suite (its name: what tierchain.proofs takes) each tree hash belongs to.
PROOF_SUITE = {suite.tree_hash: suite.name for suite in SUITES.values()}


def _parse_chunk(raw: bytes, pos: int, rel: int, suite: str) -> tuple[tuple, int]:
    """One slot of a chunk record at ``pos`` (``rel`` levels below its top) -> (slot, next pos).

    Slots: ``("E", empty hash)``, ``("L", leaf hash, kh, vh, version)``,
    ``("C", hash, version)``, ``("I", hash, left, right)``; hashed in ``suite`` (its
    light-client name).
    """
    kind = raw[pos]
    pos += 1
    if kind == 1:
        return ("E", proofs.empty_hash(suite)), pos
    if kind == 2 and pos + 72 <= len(raw):
        kh, vh = raw[pos : pos + 32], raw[pos + 32 : pos + 64]
        (version,) = struct.unpack_from("<Q", raw, pos + 64)
        return ("L", proofs.leaf_hash(kh, vh, suite=suite), kh, vh, version), pos + 72
    if kind == 3 and rel == CHUNK_LEVELS and pos + 40 <= len(raw):
        (version,) = struct.unpack_from("<Q", raw, pos + 32)
        return ("C", raw[pos : pos + 32], version), pos + 40
    if kind == 0 and rel < CHUNK_LEVELS:
        left, pos = _parse_chunk(raw, pos, rel + 1, suite)
        right, pos = _parse_chunk(raw, pos, rel + 1, suite)
        if left[0] in "EL" and right[0] in "EL" and "E" in (left[0], right[0]):
            raise _Damaged("fewer than two keys below an internal node")
        return ("I", proofs.node_hash(left[1], right[1], suite=suite), left, right), pos
    raise _Damaged(f"slot kind {kind} at level {rel}")


def decode_chunk(raw: bytes, depth: int, suite: str = proofs.DEFAULT_SUITE) -> tuple:
    """The top slot of a chunk record stored at ``depth``, with every internal hash computed
    in ``suite`` (the light client's name of the tree's suite)."""
    try:
        if not raw or raw[0] != 3:
            raise _Damaged("not a chunk record")
        top, end = _parse_chunk(bytes(raw), 1, 0, suite)
        if end != len(raw) or not (top[0] == "I" or (top[0] == "L" and depth == 0)):
            raise _Damaged("malformed chunk")
    except (_Damaged, IndexError) as exc:
        raise StorageError(f"state tree chunk damaged at depth {depth}: {exc}") from None
    return top


cache_depth_default = 20  # chunks at depth 0..16: at most 69,905 chunks
cache_mb_default = 256  # bound of the chunk cache (estimated heap bytes); ~100 MiB used at 1M-10M keys
emit_batch = 1 << 16  # records per native call when writing a bulk-built tree


def _fetcher(t: _Txn, overlay: Sequence[SmtRecords] = ()):
    """Chunk records from ``t``, else from ``overlay`` (records of blocks not committed yet)."""

    def fetch(node_keys: list[bytes]) -> list[bytes | None]:
        found = t.get_many_raw("smt_nodes", node_keys)
        if not overlay:
            return [found.get(k) for k in node_keys]
        out = []
        for k in node_keys:
            v = found.get(k)
            if v is None:
                for records in overlay:
                    if (v := records.get(k)) is not None:
                        break
            out.append(v)
        return out

    return fetch


def _columns(writes: Mapping[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]]):
    """(keys, values) of a write set: a mapping's in two C-level copies, pairs split once."""
    if isinstance(writes, Mapping):
        return list(writes), list(writes.values())
    items = list(writes)
    return [k for k, _ in items], [v for _, v in items]


@dataclasses.dataclass(frozen=True)
class TreeUpdate:
    """A block's new tree version, computed (``StateTree.prepare``), not written yet."""

    height: int
    root: bytes
    root_version: int
    puts: SmtRecords  # new records, sorted by key (the overlay later blocks read until this one commits)
    stale_older: bytes  # packed keys of the committed records this version replaces
    stale_now: list[bytes]  # records written earlier at this same height and replaced now
    stats: dict[str, float]  # what computing it cost: chunks read, seconds per phase (``smt_apply``)


class StateTree:
    """The state tree of one chain; methods take the caller's LMDB transaction.

    ``cache_depth`` / ``cache_mb``: the chunks at depth ``< cache_depth`` stay
    in memory across blocks (``tierchain_native.SmtCache``), at most about
    ``cache_mb`` MiB of them (shallow chunks first), so a block fetches from
    LMDB only the chunks below. The cache describes one tree, the one whose
    root it last produced or warmed: when ``apply`` starts from any other root
    (an aborted write transaction, another writer, a restart) it is refilled
    from storage first, level by level (``warm``; about 0.1 s per 10,000
    chunks). Every cached chunk is checked against its parent's hash when
    used: it can make a block cheaper, never change its result. ``cache_depth
    = 0`` disables it.

    ``hash``: the tree's hash, ``"blake3"`` (BLAKE3 derive-key, the default) or
    ``"sm3"`` (the national suite's domain-separated SM3), with the same five
    contexts; fixed for the life of the tree (its roots and records depend on it).

    ``workers``: a large batch's new subtrees below the root chunk are built on
    up to this many threads, the caller's included (``smt_apply``'s ``workers``);
    the records and root do not depend on it. Settable between batches.
    """

    def __init__(
        self,
        keep_heights: int = 0,
        cache_depth: int = cache_depth_default,
        cache_mb: float = cache_mb_default,
        hash: str = "blake3",
        workers: int = 1,
    ) -> None:
        if keep_heights < 0:
            raise ValueError("keep_heights must be >= 0 (0 keeps every version)")
        if cache_mb < 0:
            raise ValueError("cache_mb must be >= 0")
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.keep_heights = keep_heights
        self.hash = hash
        self.workers = workers
        # The empty tree of this hash (ValueError for an unknown hash).
        self._empty_root = (tierchain_native.smt_constants(hash)[0], 0)
        self._cache = (
            tierchain_native.SmtCache(cache_depth, int(cache_mb * 2**20), hash)
            if cache_depth > 0 and cache_mb > 0
            else None
        )

    @property
    def cache_bytes(self) -> int:
        """Estimated heap bytes of the chunk cache."""
        return 0 if self._cache is None else self._cache.bytes

    def warm(self, r: _Txn, height: int) -> int:
        """Fill the chunk cache with the tree at ``height``; return the chunks read."""
        base = r.get("smt_roots", height)
        if self._cache is None or base is None:
            return 0
        return self._cache.warm(base[0], base[1], _fetcher(r))

    # --- writing ------------------------------------------------------------

    def apply(
        self,
        w: WriteTxn,
        height: int,
        writes: Mapping[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]],
    ) -> bytes:
        """Apply a write set at ``height`` in ``w``; return the new root.

        May be called several times for one height (genesis in sorted chunks):
        each call continues from the root the previous one wrote.
        """
        base = w.get("smt_roots", height)
        if base is None:
            base = (w.get("smt_roots", height - 1) if height else None) or self._empty_root
        return self.write(w, self.prepare(w, height, base, writes))

    def prepare(
        self,
        r: _Txn,
        height: int,
        base: tuple[bytes, int],
        writes: Mapping[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]],
        overlay: Sequence[SmtRecords] = (),
    ) -> TreeUpdate:
        """Compute the version at ``height`` of the tree ``base`` (root, root chunk version).

        Reads chunks through ``r`` and then ``overlay`` (``TreeUpdate.puts``
        of earlier blocks whose write transaction has not committed yet), so a
        node can compute block h+1's tree while block h is still being made
        durable. Nothing is written: ``write`` does that, in the block's txn.
        """
        keys, values = _columns(writes)
        if base == _EMPTY_ROOT:  # "no tree yet" from base_at: the empty tree of this hash
            base = self._empty_root
        if self._cache is not None and keys and self._cache.root != base:
            self._cache.warm(base[0], base[1], _fetcher(r, overlay))
        txn, dbi = r.native("smt_nodes")
        root, root_version, puts, stale_older, stale_now, stats = tierchain_native.smt_apply(
            base[0],
            base[1],
            height,
            keys,
            values,
            None,
            self._cache,
            hash=self.hash,
            txn=txn,
            dbi=dbi,
            overlay=list(overlay),
            workers=self.workers,
        )
        return TreeUpdate(height, root, root_version, puts, stale_older, stale_now, stats)

    def write(self, w: WriteTxn, update: TreeUpdate) -> bytes:
        """Write a prepared version in ``w`` (the block's write txn); return its root."""
        height, puts = update.height, update.puts
        # Records written earlier at this same height (an earlier genesis chunk) and
        # replaced now never belonged to any committed version: drop them at once.
        for k in update.stale_now:
            w.delete("smt_nodes", k)
        if update.stale_older:
            w.put("smt_stale", height, (w.get("smt_stale", height) or b"") + update.stale_older)
        if len(puts):
            # Every new key carries this height, above every older key: append,
            # unless an earlier call at this height left records behind.
            last = w.last("smt_nodes")
            w.put_records("smt_nodes", puts, append=last is None or last[0] < puts.first_key())
        w.put("smt_roots", height, (update.root, update.root_version))
        return update.root

    @staticmethod
    def base_at(r: _Txn, height: int) -> tuple[bytes, int]:
        """(root, root chunk version) of the committed tree at ``height``."""
        return r.get("smt_roots", height) or _EMPTY_ROOT

    def build(self, w: WriteTxn, height: int, chunks: Iterable[Iterable[tuple[bytes, bytes]]]) -> bytes:
        """Write the whole tree of a fresh state at ``height`` (genesis); return its root.

        ``chunks`` yield (key, value) pairs, no key twice, no deletions; only
        compact (key hash, value) records are kept, in Rust, so the chunks can be
        streamed. The tree is built bottom up in one pass, each node computed and
        written once, in storage-key order with LMDB's append mode (the table must
        hold no node yet). Same tree and root as ``apply`` of the same pairs.
        """
        if w.get("smt_roots", height) is not None or w.last("smt_nodes") is not None:
            raise StorageError("bulk build needs an empty state tree")
        builder = tierchain_native.SmtBuilder(height, self.hash)
        for chunk in chunks:
            builder.add(*_columns(chunk))
        root, root_version = builder.finish()
        while batch := builder.emit(emit_batch):
            w.put_many_raw("smt_nodes", batch, append=True)
        w.put("smt_roots", height, (root, root_version))
        del builder  # every key hash and value of the state: give that memory back
        tierchain_native.release_memory()
        if self._cache is not None:
            self._cache.warm(root, root_version, _fetcher(w))
        return root

    def prune(self, w: WriteTxn, height: int) -> int:
        """Drop what no height ``>= height - keep_heights + 1`` needs; return nodes deleted."""
        if not self.keep_heights:
            return 0
        floor = height - self.keep_heights + 1
        doomed = list(itertools.takewhile(lambda item: item[0] <= floor, w.items("smt_stale")))
        deleted = 0
        for h, packed in doomed:
            for k in split_keys(packed):
                w.delete("smt_nodes", k)
                deleted += 1
            w.delete("smt_stale", h)
        for h, _ in list(itertools.takewhile(lambda item: item[0] < floor, w.items("smt_roots"))):
            w.delete("smt_roots", h)
        return deleted

    # --- reading --------------------------------------------------------------

    @staticmethod
    def root(r: _Txn, height: int) -> bytes | None:
        got = r.get("smt_roots", height)
        return None if got is None else got[0]

    @staticmethod
    def oldest_height(r: _Txn) -> int | None:
        first = next(r.items("smt_roots"), None)
        return None if first is None else first[0]

    def prove(self, r: _Txn, key: bytes, height: int) -> StateProof:
        """Value or absence of ``key`` at ``height``, with its proof."""
        base = r.get("smt_roots", height)
        if base is None:
            oldest = self.oldest_height(r)
            if oldest is not None and height < oldest:
                raise StatePruned(f"state at height {height} was pruned (oldest retained: {oldest})")
            raise StateUnavailable(f"no state tree at height {height}")
        suite = PROOF_SUITE[self.hash]
        kh = proofs.key_hash(key, suite=suite)
        expect, version = base
        if expect == self._empty_root[0]:
            return StateProof(height, key, None, ())
        depth, siblings = 0, []
        while True:  # at a chunk: expect is its hash, version its record's
            raw = r.get_raw("smt_nodes", node_key(version, depth, kh))
            if raw is None:
                raise StorageError(f"state tree chunk missing at height {height}, depth {depth}")
            slot = decode_chunk(raw, depth, suite)
            if slot[1] != expect:
                raise StorageError(f"state tree chunk damaged at height {height}, depth {depth}")
            while slot[0] == "I":
                left, right = slot[2], slot[3]
                if proofs.bit(kh, depth):
                    siblings.append(left[1])
                    slot = right
                else:
                    siblings.append(right[1])
                    slot = left
                depth += 1
            if slot[0] == "C":
                expect, version = slot[1], slot[2]
                continue
            if slot[0] == "E":
                return StateProof(height, key, None, tuple(siblings))
            _, _lh, okh, ovh, leaf_version = slot
            if okh != kh:
                return StateProof(height, key, None, tuple(siblings), (bytes(okh), bytes(ovh)))
            raw = r.get_raw("smt_nodes", leaf_key(leaf_version, kh))
            if raw is None:
                raise StorageError(f"state tree leaf missing at height {height}")
            if raw[0] != 2 or len(raw) < 65 or raw[1:33] != kh or raw[33:65] != ovh:
                raise StorageError(f"state tree leaf damaged at height {height}")
            value = bytes(raw[65:])
            if proofs.value_hash(value, suite=suite) != ovh:
                raise StorageError(f"state tree leaf damaged at height {height}")
            return StateProof(height, key, value, tuple(siblings))

    def get(self, r: _Txn, key: bytes, height: int) -> bytes | None:
        return self.prove(r, key, height).value


class MemoryStateTree:
    """The same tree with its nodes in a dict and no history (re-execution in ``verify``).

    ``hash``: ``"blake3"`` (the default) or ``"sm3"``, as for ``StateTree``.
    """

    def __init__(self, hash: str = "blake3") -> None:
        self.hash = hash
        self.nodes: dict[bytes, bytes] = {}
        self.root, self._root_version = tierchain_native.smt_constants(hash)[0], 0

    def apply(
        self, version: int, writes: Mapping[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]]
    ) -> bytes:
        nodes = self.nodes
        self.root, self._root_version, puts, stale_older, stale_now, _ = tierchain_native.smt_apply(
            self.root,
            self._root_version,
            version,
            *_columns(writes),
            lambda keys: [nodes.get(k) for k in keys],
            hash=self.hash,
        )
        for k in (*split_keys(stale_older), *stale_now):
            del nodes[k]
        nodes.update(puts.items())
        return self.root
