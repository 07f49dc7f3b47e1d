"""Light-client verification: facts checked against a block header, trusting no node.

Pure Python on purpose — the standard library and the ``blake3`` package only,
no numpy and no native extension — so a bank or an investor can check a proof
on any machine, and can read this one file to see exactly what is checked
(docs/proofs.md). It imports nothing from TierChain: copy this one file into
a client. The hash contexts it needs are defined here, and ``domains``
(where every other context lives) imports them from here, so there is one
definition of each.

Suites. A chain runs on one crypto suite, fixed at genesis; every function
whose result depends on hashing takes ``suite=`` (default ``"ed25519-blake3"``,
``SUITE_NAMES`` lists both; another name is ``ValueError``):

* ``"ed25519-blake3"``: ``H(ctx, m)`` = BLAKE3 ``derive_key(ctx, m)``, plain
  Merkle hashes with BLAKE3, Ed25519 signatures (ZIP-215);
* ``"sm2-sm3"``: ``H(ctx, m)`` = ``SM3(pad64(u16be(len(ctx)) || ctx) || m)``
  (``pad64`` zero-fills to a multiple of 64 bytes), plain Merkle hashes with
  SM3, SM2 signatures (GB/T 32918, user ID ``"1234567812345678"``) by a
  32-byte x-only key standing for the point ``02 || x`` (even y). SM3 comes
  from ``hashlib.new("sm3")`` (OpenSSL 3 provides it); where this Python's
  OpenSSL has none, the first use of the suite raises ``SuiteUnavailable``.

Same contexts, layouts and rules in both; only ``H``, the Merkle hash and the
signature differ, so the same bytes verify under at most one suite.

Three kinds of fact, each against one field of a trusted header:

* **State** (``StateProof``, against ``state_root``): the value of a state key,
  or its absence, at a height. The state tree is the binary sparse Merkle tree
  of ``ext/rust/src/smt/``: key hash ``kh`` picks the path (bit 0 = most
  significant bit of byte 0 at the root), a subtree with one key is that key's
  leaf, a subtree with none is the empty subtree::

      empty       = H(STATE_EMPTY, b"")
      leaf(kh,vh) = H(STATE_LEAF, kh || vh)     kh = H(STATE_KEY, key)
      node(l, r)  = H(STATE_NODE, l || r)       vh = H(STATE_VALUE, value)

  A proof lists the sibling hashes from the root down to where the key's path
  ends, and what is there: the key's own leaf (present), the empty subtree
  (absent), or the leaf of another key sharing the path so far (absent).
* **Transaction / receipt inclusion** (``TxProof``, against ``tx_root`` or
  ``receipt_root`` and ``tx_count``): an RFC 6962 audit path in the Merkle
  tree of ``tierchain.crypto.merkle`` (the suite's plain hash, leaf
  ``h(0x00 || d)``, node ``h(0x01 || l || r)``; checked here by the same
  RFC 9162 algorithm, re-stated so this module needs no native code).
* **Header chain** (``verify_header_chain``): from one trusted header, each
  next header links by hash, has the next height, the same chain and proposer,
  and a valid proposer signature.

Every verifier returns ``True``/``False`` and never raises on malformed input;
decoders raise only ``ProofError``. Raised instead, as a missing capability or
a wrong argument rather than bad input: ``NoSignatureVerifier`` from
``verify_header_chain`` without a signature check where TierChain is not
installed, ``SuiteUnavailable`` (no SM3 here) and ``ValueError`` (unknown suite).

Signatures, ed25519-blake3: headers are signed with Ed25519 under the ZIP-215
rule. The ``verify_signature`` callable defaults to ``tierchain.crypto.verify``
(native); a light client without the native extension passes its own, e.g.
PyNaCl's ``VerifyKey(pk).verify(msg, sig)`` wrapped to return a bool. libsodium
accepts a subset of what ZIP-215 accepts, so such a client may reject a
deliberately odd signature the chain accepted, but never accepts a header the
chain would reject.

Signatures, sm2-sm3: the default is ``tierchain.crypto.sm.verify`` (native,
default user ID). A client without TierChain can use the ``gmssl`` package
(pure Python; tests/proofs/sm2_light.py is this recipe, tested). gmssl wants
the uncompressed key, so recover ``y`` from the proposer's ``x`` (refuse
``x >= p``): SM2's prime ``p`` is 3 mod 4, so ``y = (x^3 + a*x + b)^((p + 1) / 4)
mod p`` is a square root if one exists; check ``y*y == x^3 + a*x + b (mod p)``
(else ``x`` is not on the curve: refuse) and take ``p - y`` if ``y`` is odd.
Refuse ``r`` or ``s`` outside ``[1, n-1]`` (gmssl does not), then::

    from gmssl import sm2
    v = sm2.CryptSM2(private_key="", public_key="")
    v.public_key = (x + y).hex()  # set after: the constructor mangles keys starting "04"
    ok = v.verify_with_sm3(signature.hex(), message)  # message = the header hash

wrapped to return a bool (``False`` on any exception) and passed as ``verify_signature``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Callable, Sequence
from typing import Any

import blake3

# Hash contexts (re-exported by tierchain.domains; never change one). Both suites use them.
BLOCK_HEADER = "tierchain 2026 block header"  # header hash: what the proposer signs
STATE_KEY = "tierchain 2026 state key"  # key hash: the path of a state key in the tree
STATE_VALUE = "tierchain 2026 state value"
STATE_LEAF = "tierchain 2026 state leaf"  # leaf(kh, vh)
STATE_NODE = "tierchain 2026 state node"  # internal node(left, right)
STATE_EMPTY = "tierchain 2026 state empty"  # the empty subtree
STATE_TREE = (STATE_KEY, STATE_VALUE, STATE_LEAF, STATE_NODE, STATE_EMPTY)

DIGEST_BYTES = 32
STATE_KEY_BYTES_MAX = 64  # limits.key_bytes_max (checked by tests; no import: pure module)
STATE_VALUE_BYTES_MAX = 64 << 10  # storage.state_value_bytes_max
DEPTH_MAX = 256
PROOF_VERSION = 1
TX_PROOF_PATH_MAX = 64

DEFAULT_SUITE = "ed25519-blake3"
SUITE_NAMES = ("ed25519-blake3", "sm2-sm3")


class ProofError(ValueError):
    """Bytes that are not a canonical proof encoding."""


class SuiteUnavailable(RuntimeError):
    """The suite's hash is not available in this Python (``sm2-sm3`` needs ``hashlib.new("sm3")``)."""


class NoSignatureVerifier(RuntimeError):
    """``verify_header_chain`` was called without ``verify_signature`` outside TierChain."""


VerifySignature = Callable[[bytes, bytes, bytes], bool]


def _default_verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """ed25519-blake3: TierChain's native Ed25519 (ZIP-215)."""
    try:
        from tierchain import crypto  # native (ZIP-215); light clients inject their own
    except ImportError:
        raise NoSignatureVerifier(
            "tierchain.crypto is not installed here: pass verify_signature= (e.g. PyNaCl, docs/proofs.md)"
        ) from None
    return crypto.verify(public_key, message, signature)


def _default_verify_sm2(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """sm2-sm3: TierChain's native SM2 (default user ID), x-only 32-byte keys as on the chain."""
    try:
        import tierchain.crypto.sm as sm  # native; light clients inject their own (gmssl: above)
    except ImportError:
        raise NoSignatureVerifier(
            "tierchain.crypto.sm is not installed here: pass verify_signature= (e.g. gmssl, docs/proofs.md)"
        ) from None
    return len(public_key) == DIGEST_BYTES and sm.verify(public_key, message, signature)


# --- the suites' hashes --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Suite:
    """Everything that differs between suites here: one table each, picked once per call."""

    name: str
    hash: Callable[[str, bytes], bytes]  # H(context, data), domain-separated
    merkle_leaf: Callable[[bytes], bytes]  # RFC 6962 leaf: h(0x00 || leaf)
    merkle_node: Callable[[bytes, bytes], bytes]  # RFC 6962 node: h(0x01 || left || right)
    empty: bytes  # H(STATE_EMPTY, b""): the empty subtree
    verify_signature: VerifySignature  # the default header signature check (TierChain's)

    def key(self, key: bytes) -> bytes:
        return self.hash(STATE_KEY, bytes(key))

    def value(self, value: bytes) -> bytes:
        return self.hash(STATE_VALUE, bytes(value))

    def leaf(self, kh: bytes, vh: bytes) -> bytes:
        return self.hash(STATE_LEAF, kh + vh)

    def node(self, left: bytes, right: bytes) -> bytes:
        return self.hash(STATE_NODE, left + right)


def _h(context: str, data: bytes) -> bytes:
    return blake3.blake3(data, derive_key_context=context).digest()


def _blake3_suite() -> _Suite:
    return _Suite(
        name="ed25519-blake3",
        hash=_h,
        merkle_leaf=lambda leaf: blake3.blake3(b"\x00" + bytes(leaf)).digest(),
        merkle_node=lambda left, right: blake3.blake3(b"\x01" + left + right).digest(),
        empty=_h(STATE_EMPTY, b""),
        verify_signature=_default_verify_signature,
    )


def _sm3_suite() -> _Suite:
    try:
        hashlib.new("sm3")
    except ValueError:
        raise SuiteUnavailable(
            'the "sm2-sm3" suite needs SM3 from hashlib.new("sm3"), which OpenSSL 3 provides; '
            "this Python's OpenSSL has none"
        ) from None
    prefixes: dict[str, Any] = {}  # context -> SM3 state after its padded prefix blocks

    def sm3_hash(context: str, data: bytes) -> bytes:
        state = prefixes.get(context)
        if state is None:
            ctx = context.encode()
            if len(ctx) > 0xFFFF:
                raise ValueError("an SM3 hash context is at most 65535 bytes")
            prefix = struct.pack(">H", len(ctx)) + ctx
            state = prefixes[context] = hashlib.new("sm3", prefix + bytes(-len(prefix) % 64))
        h = state.copy()
        h.update(data)
        return h.digest()

    return _Suite(
        name="sm2-sm3",
        hash=sm3_hash,
        merkle_leaf=lambda leaf: hashlib.new("sm3", b"\x00" + bytes(leaf)).digest(),
        merkle_node=lambda left, right: hashlib.new("sm3", b"\x01" + left + right).digest(),
        empty=sm3_hash(STATE_EMPTY, b""),
        verify_signature=_default_verify_sm2,
    )


_SUITE_BUILDERS: dict[str, Callable[[], _Suite]] = {"ed25519-blake3": _blake3_suite, "sm2-sm3": _sm3_suite}
_SUITES: dict[str, _Suite] = {}


def _suite(name: str) -> _Suite:
    """The table of suite ``name``, built at its first use; ``ValueError`` for an unknown name."""
    table = _SUITES.get(name)
    if table is None:
        build = _SUITE_BUILDERS.get(name)
        if build is None:
            raise ValueError(f"unknown crypto suite {name!r}; known: {', '.join(map(repr, SUITE_NAMES))}")
        table = _SUITES[name] = build()
    return table


def key_hash(key: bytes, *, suite: str = DEFAULT_SUITE) -> bytes:
    return _suite(suite).key(key)


def value_hash(value: bytes, *, suite: str = DEFAULT_SUITE) -> bytes:
    return _suite(suite).value(value)


def leaf_hash(kh: bytes, vh: bytes, *, suite: str = DEFAULT_SUITE) -> bytes:
    return _suite(suite).leaf(kh, vh)


def node_hash(left: bytes, right: bytes, *, suite: str = DEFAULT_SUITE) -> bytes:
    return _suite(suite).node(left, right)


def empty_hash(suite: str = DEFAULT_SUITE) -> bytes:
    """The empty subtree's hash ``H(STATE_EMPTY, b"")``: the state root of an empty state."""
    return _suite(suite).empty


EMPTY_HASH = empty_hash()  # the default suite's (empty_hash(suite) for any)


def bit(h: bytes, i: int) -> int:
    """Bit ``i`` of a key hash, most significant bit of byte 0 first."""
    return (h[i >> 3] >> (7 - (i & 7))) & 1


# --- state proofs ------------------------------------------------------------

PRESENT, ABSENT_EMPTY, ABSENT_LEAF = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class StateProof:
    """The value of ``key`` at ``height`` (``None``: absent) and why.

    ``siblings[i]`` is the sibling hash at depth ``i + 1`` on the key's path
    (root side first). For an absence shown by another key's leaf,
    ``other = (kh', vh')`` is that leaf.
    """

    height: int
    key: bytes
    value: bytes | None
    siblings: tuple[bytes, ...]
    other: tuple[bytes, bytes] | None = None

    @property
    def kind(self) -> int:
        if self.value is not None:
            return PRESENT
        return ABSENT_EMPTY if self.other is None else ABSENT_LEAF

    def encode(self, *, suite: str = DEFAULT_SUITE) -> bytes:
        """Canonical bytes: decode(encode(p)) == p; see ``decode_state_proof``.

        The bitmap marks the siblings equal to the suite's empty hash, so encode
        and decode with the suite of the chain the proof is from.
        """
        empty = _suite(suite).empty
        depth = len(self.siblings)
        bitmap = bytearray((depth + 7) // 8)
        carried = []
        for i, s in enumerate(self.siblings):
            if s == empty:
                bitmap[i >> 3] |= 1 << (i & 7)
            else:
                carried.append(s)
        parts = [
            struct.pack("<BBQB", PROOF_VERSION, self.kind, self.height, len(self.key)),
            self.key,
            struct.pack("<H", depth),
            bytes(bitmap),
            *carried,
        ]
        if self.value is not None:
            parts += [struct.pack("<I", len(self.value)), self.value]
        elif self.other is not None:
            parts += list(self.other)
        return b"".join(parts)


def decode_state_proof(data: bytes, *, suite: str = DEFAULT_SUITE) -> StateProof:
    """Parse canonical proof bytes; anything else raises ``ProofError`` (never another error).

    Layout (little-endian): version u8 = 1 | kind u8 (0 present, 1 absent:
    empty subtree, 2 absent: other leaf) | height u64 | key_len u8 (1..64) |
    key | depth u16 (0..256) | bitmap ceil(depth/8) bytes, bit i (LSB first)
    set = sibling i is the (suite's) empty hash and is not carried, unused bits
    zero | the other siblings, 32 bytes each, none equal to the empty hash |
    kind 0: value_len u32 (<= 64 KiB), value; kind 2: kh' 32, vh' 32 | nothing more.
    (An unknown ``suite`` is ``ValueError``, not ``ProofError``: a wrong argument.)
    """
    empty = _suite(suite).empty
    data = bytes(data)
    try:
        version, kind, height, key_len = struct.unpack_from("<BBQB", data, 0)
        pos = 11
        if version != PROOF_VERSION or kind not in (PRESENT, ABSENT_EMPTY, ABSENT_LEAF):
            raise ProofError("unknown proof version or kind")
        if not 1 <= key_len <= STATE_KEY_BYTES_MAX:
            raise ProofError("key length out of bounds")
        key = data[pos : pos + key_len]
        pos += key_len
        (depth,) = struct.unpack_from("<H", data, pos)
        pos += 2
        if depth > DEPTH_MAX:
            raise ProofError("proof deeper than the tree")
        nbitmap = (depth + 7) // 8
        bitmap = data[pos : pos + nbitmap]
        pos += nbitmap
        if len(bitmap) != nbitmap or len(key) != key_len:
            raise ProofError("proof truncated")
        if depth & 7 and bitmap[-1] >> (depth & 7):
            raise ProofError("non-zero padding bits in the bitmap")
        siblings = []
        for i in range(depth):
            if bitmap[i >> 3] >> (i & 7) & 1:
                siblings.append(empty)
                continue
            s = data[pos : pos + DIGEST_BYTES]
            pos += DIGEST_BYTES
            if len(s) != DIGEST_BYTES:
                raise ProofError("proof truncated")
            if s == empty:
                raise ProofError("empty sibling carried in full (non-canonical)")
            siblings.append(s)
        value = other = None
        if kind == PRESENT:
            (value_len,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if value_len > STATE_VALUE_BYTES_MAX:
                raise ProofError("value too long")
            value = data[pos : pos + value_len]
            pos += value_len
            if len(value) != value_len:
                raise ProofError("proof truncated")
        elif kind == ABSENT_LEAF:
            kh, vh = data[pos : pos + 32], data[pos + 32 : pos + 64]
            pos += 64
            if len(vh) != 32:
                raise ProofError("proof truncated")
            other = (kh, vh)
    except struct.error as exc:
        raise ProofError(f"proof truncated: {exc}") from None
    if pos != len(data):
        raise ProofError("trailing bytes after the proof")
    return StateProof(height, key, value, tuple(siblings), other)


def state_root_from_proof(proof: StateProof, *, suite: str = DEFAULT_SUITE) -> bytes | None:
    """The root the proof implies, or ``None`` if the proof is malformed.

    Steps 5-8 of "Verifying a state proof" in docs/proofs.md, bounds included,
    so a ``StateProof`` built by hand (not decoded) is held to the same rules.
    """
    s = _suite(suite)
    try:
        if not 1 <= len(proof.key) <= STATE_KEY_BYTES_MAX:
            return None
        kh = s.key(proof.key)
        depth = len(proof.siblings)
        if depth > DEPTH_MAX or any(len(x) != DIGEST_BYTES for x in proof.siblings):
            return None
        if proof.value is not None:
            if proof.other is not None or len(proof.value) > STATE_VALUE_BYTES_MAX:
                return None
            h = s.leaf(kh, s.value(proof.value))
        elif proof.other is not None:
            okh, ovh = (bytes(x) for x in proof.other)
            # Soundness: the other leaf must not be the key's own leaf, or the key's
            # real leaf (kh, vh) would pass as a proof that the key is absent.
            if len(okh) != DIGEST_BYTES or len(ovh) != DIGEST_BYTES or okh == kh:
                return None
            # The other leaf must sit on the key's path: same first `depth` bits.
            if any(bit(okh, i) != bit(kh, i) for i in range(depth)):
                return None
            h = s.leaf(okh, ovh)
        else:
            h = s.empty
        for i in range(depth - 1, -1, -1):
            sib = bytes(proof.siblings[i])
            h = s.node(sib, h) if bit(kh, i) else s.node(h, sib)
        return h
    except (TypeError, ValueError, IndexError):
        return None


def verify_state(
    trusted: bytes | LightHeader,
    proof: StateProof,
    key: bytes | None = None,
    *,
    height: int | None = None,
    suite: str = DEFAULT_SUITE,
) -> bool:
    """Does ``proof`` show ``proof.value`` (or absence) for ``key`` in ``trusted``?

    ``trusted`` is a header you trust (encoded, or a ``LightHeader``, e.g.
    one checked with ``verify_header_chain``): its ``state_root`` is used and
    its height must be ``proof.height``. A bare 32-byte state root is accepted
    too; then pass ``height`` to bind the proof's height (the root alone does
    not). Pass ``key`` (the key you asked about) so a proof about another key
    cannot be passed off. A ``LightHeader`` decoded under another suite is refused.
    """
    _suite(suite)  # an unknown suite raises, whatever the input
    if key is not None and bytes(key) != bytes(proof.key):
        return False
    if isinstance(trusted, LightHeader) or len(trusted) == HEADER_BYTES:
        try:
            header = trusted if isinstance(trusted, LightHeader) else decode_header(trusted, suite=suite)
        except ProofError:
            return False
        state_root, height = header.state_root, header.height if height is None else height
        if header.height != height or header.suite != suite:
            return False
    else:
        state_root = trusted
    if height is not None and height != proof.height:
        return False
    root = state_root_from_proof(proof, suite=suite)
    return root is not None and len(state_root) == DIGEST_BYTES and root == bytes(state_root)


def verify_state_encoded(header: bytes, proof: bytes, key: bytes, *, suite: str = DEFAULT_SUITE) -> bool:
    """Do the encoded ``proof`` and encoded ``header`` show ``key``'s value or absence?

    Exactly what a client receiving bytes does: decode both (any malformed byte
    gives ``False``), then ``verify_state``. ``header`` must be a whole encoded
    header (not a bare root), so the proof's height is always bound.
    """
    _suite(suite)  # an unknown suite raises (below, a ValueError means malformed input)
    try:
        if len(header) != HEADER_BYTES:
            return False
        return verify_state(bytes(header), decode_state_proof(proof, suite=suite), key, suite=suite)
    except (ProofError, TypeError, ValueError):
        return False


# --- headers -------------------------------------------------------------------

# Mirrors tierchain.wire.block (checked by tests): version u8, chain_id u32, height u64,
# prev_hash, timestamp_ms u64, tx_count u32, tx_root, receipt_root, state_root, proposer.
_HEADER = struct.Struct("<BIQ32sQI32s32s32s32s")
HEADER_BYTES = _HEADER.size + 64


@dataclasses.dataclass(frozen=True)
class LightHeader:
    """A decoded block header (the fields a light client checks)."""

    version: int
    chain_id: int
    height: int
    prev_hash: bytes
    timestamp_ms: int
    tx_count: int
    tx_root: bytes
    receipt_root: bytes
    state_root: bytes
    proposer: bytes  # Ed25519 key, or (sm2-sm3) the x of an SM2 key with even y
    signature: bytes
    hash: bytes  # H(BLOCK_HEADER, unsigned bytes) in the suite below: what the proposer signs
    suite: str = DEFAULT_SUITE  # the suite it was decoded under (``hash`` is that suite's)


def decode_header(data: bytes, *, suite: str = DEFAULT_SUITE) -> LightHeader:
    """Parse an encoded header (``Header.encode()``); ``ProofError`` if it is not one.

    Both suites share the layout; ``suite`` picks the hash (``LightHeader.hash``).
    """
    s = _suite(suite)
    data = bytes(data)
    if len(data) != HEADER_BYTES:
        raise ProofError(f"a header is {HEADER_BYTES} bytes, got {len(data)}")
    fields = _HEADER.unpack_from(data)
    if fields[0] != 1:
        raise ProofError(f"header version {fields[0]}")
    unsigned = data[: _HEADER.size]
    return LightHeader(
        *fields,
        signature=data[_HEADER.size :],
        hash=s.hash(BLOCK_HEADER, unsigned),
        suite=s.name,
    )


def verify_header_chain(
    trusted: bytes | LightHeader,
    headers: Sequence[bytes | LightHeader],
    verify_signature: VerifySignature | None = None,
    *,
    suite: str = DEFAULT_SUITE,
) -> bool:
    """Do ``headers`` extend ``trusted`` one height at a time, each signed by its proposer?

    ``trusted`` is a header the client already trusts (e.g. genesis, obtained
    out of band); ``headers`` are the following ones in height order. Each must
    name the previous header's hash, have the next height, the same chain id
    and proposer (a solo chain has one proposer), and carry a valid proposer
    signature over its hash. The last header's roots can then be trusted.
    ``verify_signature(public_key, message, signature) -> bool`` defaults to
    TierChain's native check for the suite (Ed25519, or SM2 with the default
    user ID); where TierChain is not installed, omitting it raises
    ``NoSignatureVerifier`` at the first signature checked. A ``LightHeader``
    decoded under another suite is refused.
    """
    s = _suite(suite)
    check = verify_signature or s.verify_signature

    def decoded(item: bytes | LightHeader) -> LightHeader:
        h = item if isinstance(item, LightHeader) else decode_header(item, suite=suite)
        if h.suite != s.name:
            raise ProofError("a header decoded under another suite")
        return h

    try:
        prev = decoded(trusted)
        for item in headers:
            h = decoded(item)
            if (
                h.prev_hash != prev.hash
                or h.height != prev.height + 1
                or h.chain_id != prev.chain_id
                or h.proposer != prev.proposer
                or h.timestamp_ms < prev.timestamp_ms
                or not check(h.proposer, h.hash, h.signature)
            ):
                return False
            prev = h
        return True
    except (ProofError, TypeError, ValueError):
        return False


# --- transaction and receipt inclusion --------------------------------------------


def merkle_leaf_hash(leaf: bytes, *, suite: str = DEFAULT_SUITE) -> bytes:
    """RFC 6962 leaf hash: ``h(0x00 || leaf)`` with the suite's plain hash (BLAKE3 or SM3)."""
    return _suite(suite).merkle_leaf(leaf)


def merkle_node_hash(left: bytes, right: bytes, *, suite: str = DEFAULT_SUITE) -> bytes:
    """RFC 6962 node hash: ``h(0x01 || left || right)`` with the suite's plain hash."""
    return _suite(suite).merkle_node(left, right)


def merkle_verify(
    root: bytes, leaf: bytes, index: int, size: int, path: Sequence[bytes], *, suite: str = DEFAULT_SUITE
) -> bool:
    """RFC 9162 §2.1.3.2 inclusion check (same as ``tierchain.crypto.merkle.verify``)."""
    s = _suite(suite)
    if isinstance(index, bool) or isinstance(size, bool):
        return False
    if not isinstance(index, int) or not isinstance(size, int) or not 0 <= index < size:
        return False
    if len(root) != DIGEST_BYTES or any(len(p) != DIGEST_BYTES for p in path):
        return False
    f_n, s_n, r = index, size - 1, s.merkle_leaf(leaf)
    for p in path:
        if s_n == 0:
            return False
        p = bytes(p)
        if f_n & 1 or f_n == s_n:
            r = s.merkle_node(p, r)
            while not f_n & 1 and f_n != 0:
                f_n >>= 1
                s_n >>= 1
        else:
            r = s.merkle_node(r, p)
        f_n >>= 1
        s_n >>= 1
    return s_n == 0 and r == bytes(root)


@dataclasses.dataclass(frozen=True)
class TxProof:
    """A transaction (its id) and its receipt at ``(height, index)`` of a block of ``size`` txs.

    ``tx_path`` proves ``tx_id`` under the header's ``tx_root``; ``receipt_path``
    proves ``receipt`` (encoded ``Receipt``, which starts with the tx id) under
    its ``receipt_root``. The header's ``tx_count`` must equal ``size``.
    """

    height: int
    index: int
    size: int
    tx_id: bytes
    tx_path: tuple[bytes, ...]
    receipt: bytes
    receipt_path: tuple[bytes, ...]

    def encode(self) -> bytes:
        parts = [
            struct.pack(
                "<BQII32sB", PROOF_VERSION, self.height, self.index, self.size, self.tx_id, len(self.tx_path)
            ),
            *self.tx_path,
            struct.pack("<IB", len(self.receipt), len(self.receipt_path)),
            self.receipt,
            *self.receipt_path,
        ]
        return b"".join(parts)


def decode_tx_proof(data: bytes) -> TxProof:
    """Parse canonical ``TxProof`` bytes; anything else raises ``ProofError``."""
    data = bytes(data)
    try:
        version, height, index, size, tx_id, n_tx = struct.unpack_from("<BQII32sB", data, 0)
        pos = struct.calcsize("<BQII32sB")
        if version != PROOF_VERSION or n_tx > TX_PROOF_PATH_MAX:
            raise ProofError("unknown version or path too long")
        tx_path = [data[pos + 32 * i : pos + 32 * i + 32] for i in range(n_tx)]
        pos += 32 * n_tx
        receipt_len, n_rc = struct.unpack_from("<IB", data, pos)
        pos += 5
        if n_rc > TX_PROOF_PATH_MAX or receipt_len > 1 << 20:
            raise ProofError("receipt path or receipt too long")
        receipt = data[pos : pos + receipt_len]
        pos += receipt_len
        receipt_path = [data[pos + 32 * i : pos + 32 * i + 32] for i in range(n_rc)]
        pos += 32 * n_rc
    except struct.error as exc:
        raise ProofError(f"proof truncated: {exc}") from None
    if pos != len(data) or len(receipt) != receipt_len or any(len(p) != 32 for p in tx_path + receipt_path):
        raise ProofError("proof truncated or trailing bytes")
    return TxProof(height, index, size, tx_id, tuple(tx_path), receipt, tuple(receipt_path))


def verify_tx(
    header: bytes | LightHeader, proof: TxProof, tx_id: bytes | None = None, *, suite: str = DEFAULT_SUITE
) -> bool:
    """Is ``proof.tx_id`` (with ``proof.receipt``) in the block of ``header``?

    Checks height, the block size against ``tx_count``, the tx id under
    ``tx_root`` and the receipt (which must name the same tx id) under
    ``receipt_root``. The receipt's code tells whether the transaction succeeded.
    A ``LightHeader`` decoded under another suite is refused.
    """
    _suite(suite)  # an unknown suite raises (below, a ValueError means malformed input)
    try:
        h = header if isinstance(header, LightHeader) else decode_header(header, suite=suite)
    except (ProofError, TypeError, ValueError):
        return False
    if h.suite != suite:
        return False
    if tx_id is not None and bytes(tx_id) != bytes(proof.tx_id):
        return False
    return (
        h.height == proof.height
        and h.tx_count == proof.size
        and bytes(proof.receipt[:32]) == bytes(proof.tx_id)
        and merkle_verify(h.tx_root, proof.tx_id, proof.index, proof.size, proof.tx_path, suite=suite)
        and merkle_verify(
            h.receipt_root, proof.receipt, proof.index, proof.size, proof.receipt_path, suite=suite
        )
    )
