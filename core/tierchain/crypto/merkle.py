"""Binary Merkle trees: RFC 6962 shape, BLAKE3 hash, with inclusion proofs.

The tree over leaves ``D[0:n]`` is RFC 6962 §2.1 with BLAKE3 (plain hash mode)
in place of SHA-256::

    MTH([])   = BLAKE3(b"")
    MTH([d])  = BLAKE3(b"\\x00" + d)                                leaf hash
    MTH(D[n]) = BLAKE3(b"\\x01" + MTH(D[0:k]) + MTH(D[k:n]))        node hash
                with k the largest power of two strictly below n

The 0x00 / 0x01 prefixes keep leaves and interior nodes in separate domains,
so no leaf can be presented as a node. Equivalently (and that is how the
native code builds it): hash the leaves, then repeatedly pair adjacent nodes
left to right, carrying an odd last node up unchanged.

An inclusion proof is the RFC 6962 audit path ``PATH(index, D[n])``: the
sibling hashes from the leaf up to the root. It proves membership only
relative to a trusted ``(root, size)`` pair, e.g. from a signed block header.

Where each part lives:

* :func:`root`, :func:`root_packed` and :func:`prove` — the crypto suite's
  (``tierchain.crypto.suite``; for ``ed25519-blake3``: ``tierchain_native.merkle_root``
  / ``merkle_root_packed`` / ``merkle_prove``, ``ext/rust/src/crypto/merkle.rs``: parallel,
  GIL released). Each takes the suite as ``suite=``; the default is ``ED25519_BLAKE3``.
* :func:`verify` — pure Python (stdlib + the ``blake3`` package) so that light
  clients can check proofs without the native extension; it follows RFC 9162
  §2.1.3.2 step by step.
* :func:`verify_native` — the same check by the suite (Rust), for bulk use on a node.
"""

from __future__ import annotations

from collections.abc import Sequence

from tierchain.crypto.suite import ED25519_BLAKE3, CryptoSuite

# The pure-Python check lives in the light-client module (stdlib + blake3 only),
# so a client can verify without importing native code; re-exported here.
from tierchain.proofs import merkle_leaf_hash as leaf_hash
from tierchain.proofs import merkle_node_hash as node_hash
from tierchain.proofs import merkle_verify as verify

__all__ = [
    "DIGEST_BYTES",
    "leaf_hash",
    "node_hash",
    "prove",
    "root",
    "root_packed",
    "verify",
    "verify_native",
]

DIGEST_BYTES = ED25519_BLAKE3.digest_bytes


def root(leaves: Sequence[bytes], *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """Merkle tree hash of ``leaves`` (``BLAKE3(b"")`` for none)."""
    return suite.merkle_root(leaves)


def root_packed(digests: bytes, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """Merkle tree hash of packed ``suite.digest_bytes``-byte leaves (a block's tx ids)."""
    return suite.merkle_root_packed(digests)


def prove(leaves: Sequence[bytes], index: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> list[bytes]:
    """Audit path for ``leaves[index]``, sibling nearest the leaf first.

    Raises ``IndexError`` if ``index`` is not in ``range(len(leaves))``
    (negative indices are not wrapped: a proof names an absolute position).
    """
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an int, not {type(index).__name__}")
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} out of range for a tree of {len(leaves)} leaves")
    return suite.merkle_prove(leaves, index)


def verify_native(
    root: bytes,
    leaf: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> bool:
    """Same as :func:`verify`, computed by the suite (``tierchain_native``)."""
    if isinstance(index, bool) or isinstance(size, bool):
        return False
    if not isinstance(index, int) or not isinstance(size, int):
        return False
    return suite.merkle_verify(root, leaf, index, size, proof)
