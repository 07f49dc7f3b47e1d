"""Type stubs for the native TierChain hot path (Rust, built with maturin).

Bad cryptographic input (wrong lengths, undecodable points, bad proofs) gives
``False``; the wrong Python type raises ``TypeError``; inconsistent shapes
(mismatched lengths, out-of-range offsets) raise ``ValueError``. Every call
releases the GIL; parallel work runs on a private pool sized by
``TIERCHAIN_THREADS`` (default: all cores).
"""

from collections.abc import Callable, Sequence

from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

THREADS_ENV: str

def verify(public_key: Buffer, message: Buffer, signature: Buffer) -> bool:
    """Ed25519 verification under the ZIP-215 rule (cofactored, non-canonical
    point encodings accepted, ``S < L`` required)."""

def verify_batch(
    public_keys: Sequence[Buffer],
    messages: Sequence[Buffer],
    signatures: Sequence[Buffer],
) -> list[bool]:
    """Element ``i`` equals ``verify(public_keys[i], messages[i], signatures[i])``.
    Raises ``ValueError`` if the three sequences differ in length."""

def verify_batch_packed(public_keys: Buffer, digests: Buffer, signatures: Buffer) -> bytes:
    """Packed ``n*32``-byte keys, ``n*32``-byte digests (the signed messages)
    and ``n*64``-byte signatures; returns ``n`` bytes, each 1 (valid) or 0."""

def hash_many(context: str, buf: Buffer, starts: Buffer | Sequence[int], ends: Buffer | Sequence[int]) -> bytes:
    """Concatenated 32-byte BLAKE3 ``derive_key(context, buf[starts[i]:ends[i]])``.
    ``starts``/``ends`` are int64 buffers (or int sequences); out-of-range
    offsets raise ``ValueError``."""

def hash_one(context: str, data: Buffer) -> bytes:
    """BLAKE3 ``derive_key(context, data)``."""

def merkle_root(leaves: Sequence[Buffer]) -> bytes:
    """RFC 6962-shaped BLAKE3 Merkle root; ``BLAKE3(b"")`` for no leaves."""

def merkle_root_packed(buf: Buffer, leaf_size: int) -> bytes:
    """Merkle root over consecutive ``leaf_size``-byte leaves of ``buf``."""

def merkle_prove(leaves: Sequence[Buffer], index: int) -> list[bytes]:
    """RFC 6962 audit path for ``leaves[index]``, sibling nearest the leaf
    first. Raises ``IndexError`` if ``index`` is not a leaf position."""

def merkle_verify(root: Buffer, leaf: Buffer, index: int, size: int, proof: Sequence[Buffer]) -> bool:
    """RFC 9162 §2.1.3.2 inclusion check of ``leaf`` at ``index`` in a tree of
    ``size`` leaves with root ``root``."""

def thread_count() -> int:
    """Worker threads in the native pool."""

def release_memory() -> None:
    """Return the native allocator's freed memory to the OS now (after a one-off burst)."""

def smt_apply(
    root_hash: Buffer,
    root_version: int,
    version: int,
    keys: Sequence[Buffer],
    values: Sequence[Buffer | None],
    fetch: Callable[[list[bytes]], Sequence[Buffer | None]],
    cache: SmtCache | None = None,
) -> tuple[bytes, int, list[tuple[bytes, bytes]], bytes, list[bytes]]:
    """One batch update of the state tree (``ext/rust/src/smt/``): ``values[i]``
    ``None`` deletes ``keys[i]``. ``fetch(record_keys)`` returns each stored record
    (or ``None``), in order; it is called once per chunk level (four tree levels).
    Returns the new root hash, the version of the root chunk, the new records
    ``(key, record)`` sorted by key, the keys of the records replaced that were
    written before ``version`` (packed back to back), and those written at
    ``version`` itself (by an earlier call for it). A key given twice is
    ``ValueError``; a missing or damaged record is ``RuntimeError``."""

def smt_constants() -> tuple[bytes, list[str]]:
    """The empty-subtree hash and the five derive-key contexts (key, value,
    leaf, node, empty) of the state tree."""


class SmtCache:
    """Chunks at depth ``< depth_max`` (at most about ``max_bytes`` of them) kept across
    ``smt_apply`` calls; trusted only for the tree whose root it last produced or warmed
    (any other base root empties it)."""

    def __init__(self, depth_max: int, max_bytes: int | None = None) -> None: ...
    def __len__(self) -> int: ...
    def clear(self) -> None: ...
    def warm(
        self, root_hash: Buffer, root_version: int, fetch: Callable[[list[bytes]], Sequence[bytes | None]]
    ) -> int:
        """Fill with the tree of that root, shallow levels first, one ``fetch`` per chunk
        level, each chunk checked against its parent's hash; returns the chunks fetched."""
    @property
    def depth_max(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def root(self) -> tuple[bytes, int] | None: ...

class SmtBuilder:
    """A whole state tree at one version, built bottom up (genesis): ``add`` pairs in
    any order, ``finish()`` -> (root hash, root version), then ``emit(max)`` until it
    returns ``[]``: every ``(node_key, node)`` once, ascending by key."""

    def __init__(self, version: int) -> None: ...
    def __len__(self) -> int: ...
    def add(self, keys: Sequence[Buffer], values: Sequence[Buffer]) -> None: ...
    def finish(self) -> tuple[bytes, int]: ...
    def emit(self, max: int) -> list[tuple[bytes, bytes]]: ...
