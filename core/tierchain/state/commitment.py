"""The state commitment: which root a header's ``state_root`` carries, chosen once per chain.

A chain commits to its state in one of two ways (``[chain] state_commitment``):

* ``"smt"``: the versioned sparse Merkle tree (``tierchain.state.tree``, Rust
  ``smt_apply``); proofs and historic reads. ``SmtCommitment`` keeps it in the
  chain's LMDB; ``MemorySmtCommitment``, without a store, in memory (same roots);
* ``"interim"`` (``InterimCommitment``): a BLAKE3 chain over the blocks' sorted
  write sets (``tierchain.state.interim_root``); benchmarks only, proves nothing.

``commitment_of(config, ...)`` picks one; nothing else asks which mode a chain
runs. Every commitment answers the same four questions, in this order per block:

1. ``genesis(chunks, w)``: the root of the genesis state (ascending chunks,
   streamed), its records written in ``w`` when given (a stored tree);
2. ``prepare(height, writes)``: the next ``Version`` (its ``root``), computed on
   top of the last prepared one, nothing written. A stored tree reads its chunks
   through the versions prepared but not committed yet (pipelining: block h+1's
   version is prepared while h commits);
3. ``write(w, version)``: put the version's records in the block's write txn
   (the tree's nodes and root; retention pruning);
4. ``committed(version)``: the write txn is durable; drop what later versions
   no longer need to read through.

``prepare`` is called by one thread at a time, in height order (the producer or
the tree thread); ``write`` and ``committed`` by the committer, in the same
order. A commitment without a store (``store=None``: ``MemorySmtCommitment`` or
``InterimCommitment``) keeps its state in memory: ``verify`` and
``tierchain.engine.transition`` re-execute with it.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar

from tierchain.crypto.suite import ED25519_BLAKE3, CryptoSuite
from tierchain.state.interim_root import (
    GENESIS_PARENT,
    next_state_root,
    root_from_digest,
    write_set_digest_sorted,
)
from tierchain.state.tree import MemoryStateTree, StateTree, StateUnavailable, TreeUpdate

if TYPE_CHECKING:
    from tierchain_native import SmtRecords

    from tierchain.config import ChainConfig
    from tierchain.state.storage import Store, WriteTxn

__all__ = [
    "Commitment",
    "InterimCommitment",
    "MemorySmtCommitment",
    "SmtCommitment",
    "Version",
    "commitment_of",
]

Writes = Mapping[bytes, "bytes | None"]
Chunks = Iterable[list[tuple[bytes, bytes]]]


@dataclasses.dataclass(frozen=True, slots=True)
class Version:
    """The state commitment after one block, prepared, maybe not written yet."""

    height: int
    root: bytes  # the header's state_root
    tree: TreeUpdate | None = None  # a stored tree's new records (SmtCommitment)


class Commitment(abc.ABC):
    """One chain's state commitment (module docstring)."""

    name: ClassVar[str]
    # Historic reads and state proofs (``tree`` is the StateTree answering them).
    proves: ClassVar[bool] = False
    # ``prepare`` releases the GIL for its heavy part, so a thread of its own overlaps it
    # with the execution of the next block (``engine/pipeline.py``, ``tree_stage``).
    threadable: ClassVar[bool] = False

    @abc.abstractmethod
    def genesis(self, chunks: Chunks, w: WriteTxn | None = None) -> bytes:
        """The root of the genesis state, whose ascending ``chunks`` are streamed through."""

    @abc.abstractmethod
    def resume(self, r, root: bytes, height: int) -> None:
        """Continue from the committed state at ``height`` whose header carries ``root``."""

    @abc.abstractmethod
    def prepare(self, height: int, writes: Writes) -> Version:
        """The version after block ``height``'s ``writes``, on top of the last prepared one."""

    def write(self, w: WriteTxn, version: Version) -> None:  # noqa: B027 - nothing to write by default
        """Put ``version``'s records in the block's write txn ``w``."""

    def committed(self, version: Version) -> None:  # noqa: B027 - nothing to drop by default
        """``version``'s write txn is durable."""

    @property
    def in_flight(self) -> int:
        """Versions prepared and not committed yet."""
        return 0

    @property
    def tree(self) -> StateTree:
        raise StateUnavailable(f'proofs and historic state need state_commitment = "smt", not {self.name!r}')


class InterimCommitment(Commitment):
    """``state_root(h) = H(state_root(h-1) || write_set_digest(h))`` (``tierchain.state.interim_root``)."""

    name = "interim"

    def __init__(self, suite: CryptoSuite = ED25519_BLAKE3) -> None:
        self.suite = suite
        self._root = GENESIS_PARENT  # the last prepared root

    def genesis(self, chunks: Chunks, w: WriteTxn | None = None) -> bytes:
        digest = write_set_digest_sorted(itertools.chain.from_iterable(chunks), suite=self.suite)
        self._root = root_from_digest(GENESIS_PARENT, digest, suite=self.suite)
        return self._root

    def resume(self, r, root: bytes, height: int) -> None:
        self._root = root

    def prepare(self, height: int, writes: Writes) -> Version:
        self._root = next_state_root(self._root, writes, suite=self.suite)  # type: ignore[arg-type]
        return Version(height, self._root)


class SmtCommitment(Commitment):
    """The sparse Merkle tree stored in the chain's LMDB (``store``): a chain's commitment."""

    name = "smt"
    proves = True
    threadable = True

    def __init__(self, store: Store, tree: StateTree) -> None:
        self._store = store
        self._tree = tree
        self._base: tuple[bytes, int] | None = None  # (root, root chunk version) of the last prepared
        # Records of prepared, not yet committed versions, oldest first: the next
        # version's chunk reads go through them (snapshotted before its read txn begins).
        self._pending: deque[SmtRecords] = deque()
        self._lock = threading.Lock()

    @property
    def tree(self) -> StateTree:
        return self._tree

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def genesis(self, chunks: Chunks, w: WriteTxn | None = None) -> bytes:
        if w is None:
            raise ValueError("a stored tree writes its genesis in the genesis write txn")
        root = self._tree.build(w, 0, chunks)
        self._base = StateTree.base_at(w, 0)
        return root

    def resume(self, r, root: bytes, height: int) -> None:
        self._base = StateTree.base_at(r, height)  # (root, root chunk version)

    def prepare(self, height: int, writes: Writes) -> Version:
        with self._lock:
            overlays = list(self._pending)
        with self._store.read() as r:
            update = self._tree.prepare(r, height, self._base, writes, overlays)
        self._base = (update.root, update.root_version)
        with self._lock:
            self._pending.append(update.puts)
        return Version(height, update.root, update)

    def write(self, w: WriteTxn, version: Version) -> None:
        # The tree's new nodes and root go into the block's own write txn: a block
        # and its state version are committed together or not at all.
        self._tree.write(w, version.tree)
        self._tree.prune(w, version.height)

    def committed(self, version: Version) -> None:
        with self._lock:
            self._pending.popleft()


class MemorySmtCommitment(Commitment):
    """The same sparse Merkle tree kept in memory (``MemoryStateTree``): re-execution
    (``verify``, tests). Its roots are a stored tree's; it keeps no history."""

    name = "smt"
    proves = True
    threadable = True

    def __init__(self, tree_hash: str = "blake3") -> None:
        self._memory = MemoryStateTree(tree_hash)

    @property
    def tree(self) -> StateTree:
        raise StateUnavailable("an in-memory state tree keeps no history")

    def genesis(self, chunks: Chunks, w: WriteTxn | None = None) -> bytes:
        root = self._memory.root
        for chunk in chunks:
            root = self._memory.apply(0, chunk)
        return root

    def resume(self, r, root: bytes, height: int) -> None:
        pass  # in memory: never reopened

    def prepare(self, height: int, writes: Writes) -> Version:
        return Version(height, self._memory.apply(height, writes))


def commitment_of(
    config: ChainConfig,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    store: Store | None = None,
    keep_heights: int | None = None,
) -> Commitment:
    """The commitment ``config`` selects; stored in ``store`` (a chain), else in memory (verify)."""
    if config.state_commitment == "smt":
        if store is None:
            return MemorySmtCommitment(suite.tree_hash)
        keep = config.state_keep_heights if keep_heights is None else keep_heights
        return SmtCommitment(store, StateTree(keep, cache_mb=config.state_cache_mb, hash=suite.tree_hash))
    if config.state_commitment == "interim":
        return InterimCommitment(suite)
    raise ValueError(f"unknown state_commitment {config.state_commitment!r}")
