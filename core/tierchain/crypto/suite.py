"""The crypto suite: every signature, hash and Merkle root the engine computes.

A chain runs on exactly one suite, fixed at genesis (docs/architecture.md, "The
crypto suite"). The engine never calls a hash or signature primitive by
itself: it holds one ``CryptoSuite`` value, obtained once from the chain's
configuration by :func:`suite_of`, and every component that hashes or verifies
is handed that value. The second suite, ``Sm2Sm3`` (``SM2_SM3``, the national
algorithms, docs/national-crypto.md), is a second subclass registered in
``SUITES``, not a conditional at each call site.

What a suite decides:

* sizes on the wire: public key, signature and digest bytes (the batch decoder
  ``tierchain._hot.decode_frames`` takes the first two as parameters);
* signatures: single and batch verification (one native call over packed
  columns, as admission and ``verify`` use it), key pairs and signing;
* hashing: one domain-separated hash ``hash(context, data)`` and a batch form
  over slices of one buffer, and a keyed hash (MAC) ``keyed_hash(key, data)``;
  the contexts it is used with are named in ``HashContexts`` (tx id = signing
  digest, header, state tree, interim state root, write set, key file);
* Merkle trees (RFC 6962 shape): leaf and node hashes, the root of a list of
  byte strings and of packed digests, audit paths;
* the name of the key-file sealing scheme, and of the state tree's hash;
* encryption for data owners (issue 18): sealing a short secret to a recipient's public
  key (``seal``/``unseal``, ``seal_overhead`` bytes more) and an authenticated cipher with
  associated data (``aead_seal``/``aead_open``, ``aead_key_bytes``/``aead_nonce_bytes``):
  on ``ed25519-blake3`` a libsodium sealed box to the X25519 form of the Ed25519 key and
  XChaCha20-Poly1305-IETF (PyNaCl), on ``sm2-sm3`` SM2 public-key encryption and SM4-GCM.

``Ed25519Blake3`` (``ED25519_BLAKE3``) is Ed25519 under the ZIP-215 rule and
BLAKE3 in derive-key mode, both computed by ``tierchain_native`` (Rust,
ext/rust/src/crypto/: sig.rs, hash.rs, merkle.rs). The state tree's hashing is inside
``ext/rust/src/smt/hash.rs``; its contexts are exported by ``tierchain_native.smt_constants`` and
checked against this suite's when the suite is built, so Python and Rust cannot
disagree silently.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Protocol

import blake3
import nacl.bindings
import nacl.exceptions
import nacl.public
import tierchain_native

from tierchain import domains, limits, proofs
from tierchain.crypto import sm
from tierchain.crypto.keys import KeyPair, Sm2KeyPair, is_strong_public_key, is_strong_sm2_public_key
from tierchain.errors import TierChainError

__all__ = [
    "DEFAULT_SUITE_NAME",
    "ED25519_BLAKE3",
    "SM2_SM3",
    "SUITES",
    "CryptoSuite",
    "Ed25519Blake3",
    "HashContexts",
    "Hasher",
    "Sm2Sm3",
    "UnknownCryptoSuite",
    "suite_for",
    "suite_of",
]


class UnknownCryptoSuite(TierChainError):
    """A chain or key names a crypto suite this build does not implement."""


@dataclasses.dataclass(frozen=True, slots=True)
class HashContexts:
    """The domain (derive-key context) of each hash a suite computes for the engine.

    The strings are defined in ``tierchain.domains`` (those the light client needs, in
    ``tierchain.proofs``); this record names which one serves which purpose.
    """

    tx_body: str  # tx id, which is also the digest a sender signs
    block_header: str  # header hash, which the proposer signs
    state_tree: tuple[str, ...]  # key, value, leaf, node, empty (ext/rust/src/smt/hash.rs, proofs.py)
    state_root: str  # interim state commitment (state/interim_root.py)
    write_set: str  # interim state commitment's per-block digest
    keyfile: str  # key-file checksum

    def all(self) -> tuple[str, ...]:
        return (
            self.tx_body,
            self.block_header,
            *self.state_tree,
            self.state_root,
            self.write_set,
            self.keyfile,
        )


class Hasher(Protocol):
    """An incremental hash: ``update`` with each part, then ``digest``."""

    def update(self, data: bytes, /) -> object: ...

    def digest(self) -> bytes: ...


class CryptoSuite(abc.ABC):
    """One chain's choice of signature scheme and hash; the engine's only way to either.

    Each suite is one instance, registered by name in ``SUITES``. Sizes are in bytes.
    """

    name: str
    public_key_bytes: int
    signature_bytes: int
    digest_bytes: int
    keyfile_sealing: str  # the key-file scheme's name (KDF + authenticated cipher)
    tree_hash: str  # the state tree's hash (tierchain_native's TreeHash name: "blake3", "sm3")
    contexts: HashContexts
    seal_scheme: str  # sealing to a recipient's public key (``seal``): the scheme's name
    seal_overhead: int  # len(seal(pk, m)) - len(m)
    aead_scheme: str  # the authenticated cipher's name (``aead_seal``)
    aead_key_bytes: int
    aead_nonce_bytes: int
    aead_tag_bytes: int  # len(aead_seal(k, n, m)) - len(m)

    def __repr__(self) -> str:
        return f"<CryptoSuite {self.name}>"

    # --- hashing -----------------------------------------------------------------

    @abc.abstractmethod
    def hash(self, context: str, data: bytes) -> bytes:
        """The digest of ``data`` in the domain ``context``."""

    @abc.abstractmethod
    def hasher(self, context: str) -> Hasher:
        """An incremental hash in the domain ``context`` (for inputs streamed in parts)."""

    @abc.abstractmethod
    def hash_many(self, context: str, buf: bytes, starts: Sequence[int], ends: Sequence[int]) -> bytes:
        """Packed digests of ``buf[starts[i]:ends[i]]`` in the domain ``context`` (one call)."""

    @abc.abstractmethod
    def keyed_hash(self, key: bytes, data: bytes) -> bytes:
        """A MAC of ``data`` under a secret 32-byte ``key`` (e.g. the finance registry's blinding)."""

    def tx_id(self, body: bytes) -> bytes:
        """The id of a transaction body, which is also the message its sender signs."""
        return self.hash(self.contexts.tx_body, body)

    def tx_ids(self, buf: bytes, starts: Sequence[int], ends: Sequence[int]) -> bytes:
        """Packed tx ids of the bodies ``buf[starts[i]:ends[i]]``."""
        return self.hash_many(self.contexts.tx_body, buf, starts, ends)

    def header_hash(self, unsigned: bytes) -> bytes:
        """The hash of a header's unsigned bytes: its id, and what the proposer signs."""
        return self.hash(self.contexts.block_header, unsigned)

    # --- signatures --------------------------------------------------------------

    @abc.abstractmethod
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` by ``public_key`` is valid for ``message``."""

    @abc.abstractmethod
    def verify_batch(
        self, public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
    ) -> list[bool]:
        """Element i equals ``verify`` of item i, for any mix of valid and invalid items."""

    @abc.abstractmethod
    def verify_batch_packed(self, public_keys: bytes, digests: bytes, signatures: bytes) -> bytes:
        """Packed columns (``n`` keys, digests, signatures) -> one 0/1 byte per row."""

    @abc.abstractmethod
    def keys_from_seed(self, seed: bytes) -> KeyPair:
        """The key pair of a secret seed."""

    @abc.abstractmethod
    def generate_keys(self) -> KeyPair:
        """A fresh key pair from the operating system's randomness."""

    @abc.abstractmethod
    def is_strong_public_key(self, public_key: bytes) -> bool:
        """Whether ``public_key`` may be registered as someone's key (no weak points)."""

    def sign(self, keys: KeyPair, message: bytes) -> bytes:
        """Sign a digest (callers pass domain-separated digests, never raw data)."""
        if len(keys.public_key) != self.public_key_bytes:
            raise ValueError(f"not a {self.name} key pair")
        signature = keys.sign(message)
        assert len(signature) == self.signature_bytes
        return signature

    # --- encryption: sealing to a recipient's key, an authenticated cipher ----------

    @abc.abstractmethod
    def seal(self, recipient_public_key: bytes, plaintext: bytes) -> bytes:
        """``plaintext`` encrypted so that only the holder of ``recipient_public_key`` (one of
        this suite's public keys) can read it: ``len(plaintext) + seal_overhead`` bytes, fresh
        randomness each call; anyone can seal, so the result says nothing about its author.
        ValueError if the key is not one of the suite's or ``plaintext`` is empty."""

    @abc.abstractmethod
    def unseal(self, keys: KeyPair, sealed: bytes) -> bytes | None:
        """The plaintext ``seal`` sealed to ``keys.public_key``; None if it was sealed to
        another key, or is damaged or malformed. ValueError for a key pair of another suite."""

    @abc.abstractmethod
    def aead_seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """``plaintext`` under the secret ``key`` (``aead_key_bytes``) and ``nonce``
        (``aead_nonce_bytes``, never reused with a key), authenticating ``aad`` too:
        ``len(plaintext) + aead_tag_bytes`` bytes. ValueError for a key or nonce of the wrong size."""

    @abc.abstractmethod
    def aead_open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"") -> bytes | None:
        """The plaintext of ``aead_seal(key, nonce, ·, aad)``; None if ``sealed`` does not
        authenticate under that key, nonce and ``aad``. ValueError for wrong key or nonce sizes."""

    def _own_keys(self, keys: KeyPair) -> None:
        if not isinstance(keys, KeyPair):
            raise TypeError("keys must be a KeyPair")
        if keys.suite_name != self.name:
            raise ValueError(f"a {keys.suite_name} key pair is not a {self.name} key pair")

    def _aead_sizes(self, key: bytes, nonce: bytes) -> None:
        if len(key) != self.aead_key_bytes or len(nonce) != self.aead_nonce_bytes:
            raise ValueError(
                f"{self.aead_scheme} takes a {self.aead_key_bytes}-byte key and a "
                f"{self.aead_nonce_bytes}-byte nonce, got {len(key)} and {len(nonce)}"
            )

    # --- Merkle trees (RFC 6962 shape; tierchain.crypto.merkle documents the tree) --------

    @abc.abstractmethod
    def merkle_leaf_hash(self, leaf: bytes) -> bytes: ...

    @abc.abstractmethod
    def merkle_node_hash(self, left: bytes, right: bytes) -> bytes: ...

    @abc.abstractmethod
    def merkle_root(self, leaves: Sequence[bytes]) -> bytes:
        """Root over byte strings (the empty tree's root for none)."""

    @abc.abstractmethod
    def merkle_root_packed(self, digests: bytes) -> bytes:
        """Root over packed ``digest_bytes``-byte leaves (tx ids of a block)."""

    @abc.abstractmethod
    def merkle_prove(self, leaves: Sequence[bytes], index: int) -> list[bytes]:
        """Audit path of ``leaves[index]`` (``index`` already checked by the caller)."""

    @abc.abstractmethod
    def merkle_verify(self, root: bytes, leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bool:
        """Whether ``path`` proves ``leaf`` at ``index`` in the tree ``(root, size)``."""


class Ed25519Blake3(CryptoSuite):
    """Ed25519 (ZIP-215 verification, PyNaCl signing) and BLAKE3 derive-key hashing."""

    name = "ed25519-blake3"
    public_key_bytes = 32
    signature_bytes = 64
    digest_bytes = 32
    keyfile_sealing = "argon2id-xsalsa20poly1305"  # PyNaCl pwhash + SecretBox (crypto/keyfile.py)
    tree_hash = "blake3"
    # libsodium's sealed box (X25519 + XSalsa20-Poly1305) to the X25519 form of the Ed25519 key
    seal_scheme = "x25519-sealed-box"
    seal_overhead = nacl.bindings.crypto_box_SEALBYTES  # 48: ephemeral X25519 key + tag
    aead_scheme = "xchacha20poly1305-ietf"
    aead_key_bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES  # 32
    aead_nonce_bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
    aead_tag_bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
    contexts = HashContexts(
        tx_body=domains.TX_BODY,
        block_header=domains.BLOCK_HEADER,
        state_tree=domains.STATE_TREE,
        state_root=domains.STATE_ROOT,
        write_set=domains.WRITE_SET,
        keyfile=domains.KEYFILE,
    )

    def __init__(self) -> None:
        # The state tree hashes inside Rust (ext/rust/src/smt/hash.rs), which spells its contexts out:
        # refuse to run if they are not this suite's (and the light client's).
        native_empty, native_contexts = tierchain_native.smt_constants()
        if tuple(native_contexts) != self.contexts.state_tree or native_empty != proofs.EMPTY_HASH:
            raise AssertionError("ext/rust/src/smt/hash.rs state tree contexts differ from the suite's")

    def hash(self, context: str, data: bytes) -> bytes:
        # One input: the blake3 package (the same BLAKE3), as before the suite existed.
        return blake3.blake3(data, derive_key_context=context).digest()

    def hasher(self, context: str) -> Hasher:
        return blake3.blake3(derive_key_context=context)

    def keyed_hash(self, key: bytes, data: bytes) -> bytes:
        return blake3.blake3(data, key=key).digest()  # BLAKE3's keyed mode

    def hash_many(self, context: str, buf: bytes, starts: Sequence[int], ends: Sequence[int]) -> bytes:
        return tierchain_native.hash_many(context, buf, starts, ends)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return tierchain_native.verify(public_key, message, signature)

    def verify_batch(
        self, public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
    ) -> list[bool]:
        return tierchain_native.verify_batch(public_keys, messages, signatures)

    def verify_batch_packed(self, public_keys: bytes, digests: bytes, signatures: bytes) -> bytes:
        return tierchain_native.verify_batch_packed(public_keys, digests, signatures)

    def keys_from_seed(self, seed: bytes) -> KeyPair:
        return KeyPair.from_seed(seed)

    def generate_keys(self) -> KeyPair:
        return KeyPair.generate()

    def is_strong_public_key(self, public_key: bytes) -> bool:
        return is_strong_public_key(public_key)

    def seal(self, recipient_public_key: bytes, plaintext: bytes) -> bytes:
        public_key, plaintext = bytes(recipient_public_key), bytes(plaintext)
        if not is_strong_public_key(public_key):  # also refuses what has no X25519 form
            raise ValueError("the recipient is not an Ed25519 public key")
        if not plaintext:
            raise ValueError("nothing to seal")
        x25519 = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public_key)
        return nacl.public.SealedBox(nacl.public.PublicKey(x25519)).encrypt(plaintext)

    def unseal(self, keys: KeyPair, sealed: bytes) -> bytes | None:
        self._own_keys(keys)
        _public, secret = nacl.bindings.crypto_sign_seed_keypair(keys.seed)
        x_secret = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret)
        try:
            return nacl.public.SealedBox(nacl.public.PrivateKey(x_secret)).decrypt(bytes(sealed))
        except nacl.exceptions.CryptoError:  # another key, damaged, too short
            return None

    def aead_seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        self._aead_sizes(key, nonce)
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            bytes(plaintext), bytes(aad), bytes(nonce), bytes(key)
        )

    def aead_open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"") -> bytes | None:
        self._aead_sizes(key, nonce)
        if len(sealed) < self.aead_tag_bytes:  # PyNaCl would fail making a negative-length buffer
            return None
        try:
            return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                bytes(sealed), bytes(aad), bytes(nonce), bytes(key)
            )
        except nacl.exceptions.CryptoError:  # does not authenticate
            return None

    def merkle_leaf_hash(self, leaf: bytes) -> bytes:
        return proofs.merkle_leaf_hash(leaf)

    def merkle_node_hash(self, left: bytes, right: bytes) -> bytes:
        return proofs.merkle_node_hash(left, right)

    def merkle_root(self, leaves: Sequence[bytes]) -> bytes:
        return tierchain_native.merkle_root(leaves)

    def merkle_root_packed(self, digests: bytes) -> bytes:
        return tierchain_native.merkle_root_packed(digests, self.digest_bytes)

    def merkle_prove(self, leaves: Sequence[bytes], index: int) -> list[bytes]:
        return tierchain_native.merkle_prove(leaves, index)

    def merkle_verify(self, root: bytes, leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bool:
        return tierchain_native.merkle_verify(root, leaf, index, size, path)


class _BufferedHasher:
    """An incremental domain hash for suites whose native hash takes one input: the parts
    are joined at ``digest`` (its uses hash a few hundred bytes: key files, interim roots)."""

    __slots__ = ("_context", "_hash", "_parts")

    def __init__(self, hash_fn, context: str) -> None:
        self._hash, self._context, self._parts = hash_fn, context, []

    def update(self, data: bytes, /) -> None:
        self._parts.append(bytes(data))

    def digest(self) -> bytes:
        return self._hash(self._context, b"".join(self._parts))


class Sm2Sm3(CryptoSuite):
    """The national suite: SM2 signatures, SM3 for every hash, SM4-GCM key files.

    Same sizes on the wire as ``ed25519-blake3``: a public key is the 32-byte x of
    an SM2 point with even y (``02 || x``; ``crypto.keys.Sm2KeyPair``), a signature
    is ``r || s``, a digest is SM3's 32 bytes. Hashes in a domain are
    ``sm.hash(context, data)`` with the same context strings as the default suite
    (the hash function itself separates the suites); Merkle trees are RFC 6962 with
    SM3; the state tree is the same sparse Merkle tree hashed with SM3
    (``ext/rust/src/smt/hash.rs``, ``TreeHash::Sm3``). docs/national-crypto.md.
    """

    name = "sm2-sm3"
    public_key_bytes = 32
    signature_bytes = 64
    digest_bytes = 32
    keyfile_sealing = "pbkdf2-hmac-sm3-sm4-gcm"  # crypto/keyfile.py
    tree_hash = "sm3"
    seal_scheme = "sm2-pke"  # GB/T 32918.4, C1 (compressed) || C3 || C2, to the x-only key
    seal_overhead = sm.PKE_OVERHEAD_BYTES  # 65
    aead_scheme = "sm4-gcm"
    aead_key_bytes = sm.SM4_KEY_BYTES  # 16
    aead_nonce_bytes = sm.GCM_NONCE_BYTES  # 12
    aead_tag_bytes = sm.GCM_TAG_BYTES  # 16
    contexts = Ed25519Blake3.contexts

    def __init__(self) -> None:
        # Native on both sides (the light client's SM3 is OpenSSL's, tested against this).
        native_empty, native_contexts = tierchain_native.smt_constants(self.tree_hash)
        if tuple(native_contexts) != self.contexts.state_tree or native_empty != sm.hash(
            domains.STATE_EMPTY, b""
        ):
            raise AssertionError("ext/rust/src/smt/hash.rs SM3 state tree differs from the suite's")

    def hash(self, context: str, data: bytes) -> bytes:
        return sm.hash(context, data)

    def hasher(self, context: str) -> Hasher:
        return _BufferedHasher(sm.hash, context)

    def keyed_hash(self, key: bytes, data: bytes) -> bytes:
        return sm.hmac_sm3(key, data)  # HMAC-SM3 (RFC 2104)

    def hash_many(self, context: str, buf: bytes, starts: Sequence[int], ends: Sequence[int]) -> bytes:
        return sm.hash_many(context, buf, starts, ends)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return len(public_key) == self.public_key_bytes and sm.verify(public_key, message, signature)

    def verify_batch(
        self, public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
    ) -> list[bool]:
        verdicts = sm.verify_batch(public_keys, messages, signatures)
        # Only x-only keys are this suite's (sm.verify also takes 33-byte compressed ones).
        return [ok and len(pk) == self.public_key_bytes for ok, pk in zip(verdicts, public_keys, strict=True)]

    def verify_batch_packed(self, public_keys: bytes, digests: bytes, signatures: bytes) -> bytes:
        if len(public_keys) != len(signatures) // self.signature_bytes * self.public_key_bytes:
            raise ValueError("public_keys must be n * 32 bytes for n signatures")
        return sm.verify_batch_packed(public_keys, digests, signatures)

    def keys_from_seed(self, seed: bytes) -> KeyPair:
        return Sm2KeyPair.from_seed(seed)

    def generate_keys(self) -> KeyPair:
        return Sm2KeyPair.generate()

    def is_strong_public_key(self, public_key: bytes) -> bool:
        return is_strong_sm2_public_key(public_key)

    def seal(self, recipient_public_key: bytes, plaintext: bytes) -> bytes:
        public_key, plaintext = bytes(recipient_public_key), bytes(plaintext)
        if not plaintext:
            raise ValueError("nothing to seal")
        # Only the suite's x-only keys (sm.encrypt also takes 33-byte compressed ones).
        sealed = sm.encrypt(public_key, plaintext) if len(public_key) == self.public_key_bytes else None
        if sealed is None:
            raise ValueError("the recipient is not an SM2 public key")
        return sealed

    def unseal(self, keys: KeyPair, sealed: bytes) -> bytes | None:
        self._own_keys(keys)
        secret, _public = sm.keypair_from_seed(keys.seed, x_only=True)  # Sm2KeyPair's own d
        return sm.decrypt(secret, bytes(sealed))

    def aead_seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        self._aead_sizes(key, nonce)
        return sm.seal(bytes(key), bytes(nonce), bytes(plaintext), bytes(aad))

    def aead_open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"") -> bytes | None:
        self._aead_sizes(key, nonce)
        return sm.open(bytes(key), bytes(nonce), bytes(sealed), bytes(aad))

    def merkle_leaf_hash(self, leaf: bytes) -> bytes:
        return sm.merkle_leaf_hash(leaf)

    def merkle_node_hash(self, left: bytes, right: bytes) -> bytes:
        return sm.merkle_node_hash(left, right)

    def merkle_root(self, leaves: Sequence[bytes]) -> bytes:
        return sm.merkle_root(leaves)

    def merkle_root_packed(self, digests: bytes) -> bytes:
        return sm.merkle_root_packed(digests, self.digest_bytes)

    def merkle_prove(self, leaves: Sequence[bytes], index: int) -> list[bytes]:
        # RFC 6962 section 2.1.1 PATH(m, D[n]), the subtree roots computed natively.
        path: list[bytes] = []
        lo, hi, m = 0, len(leaves), index
        while hi - lo > 1:
            k = 1 << ((hi - lo - 1).bit_length() - 1)  # the largest power of two < n
            if m < k:
                path.append(sm.merkle_root(leaves[lo + k : hi]))
                hi = lo + k
            else:
                path.append(sm.merkle_root(leaves[lo : lo + k]))
                lo, m = lo + k, m - k
        path.reverse()  # leaf to root, as RFC 9162's verifier reads it
        return path

    def merkle_verify(self, root: bytes, leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bool:
        return proofs.merkle_verify(root, leaf, index, size, path, suite=self.name)


ED25519_BLAKE3 = Ed25519Blake3()
SM2_SM3 = Sm2Sm3()
DEFAULT_SUITE_NAME = ED25519_BLAKE3.name
SUITES: dict[str, CryptoSuite] = {suite.name: suite for suite in (ED25519_BLAKE3, SM2_SM3)}

# The transaction wire constants in tierchain.limits (tx_bytes_min, the fixed header)
# are the default suite's sizes; the batch decoder takes them from the suite.
assert ED25519_BLAKE3.public_key_bytes == limits.public_key_bytes
assert ED25519_BLAKE3.signature_bytes == limits.signature_bytes
assert ED25519_BLAKE3.digest_bytes == limits.digest_bytes


def suite_for(name: str) -> CryptoSuite:
    """The suite called ``name``; raises ``UnknownCryptoSuite`` naming the known ones."""
    suite = SUITES.get(name)
    if suite is None:
        known = ", ".join(sorted(SUITES))
        raise UnknownCryptoSuite(f"unknown crypto suite {name!r} (this build implements: {known})")
    return suite


def suite_of(config: object) -> CryptoSuite:
    """The suite of a chain, from its configuration (``chain.crypto``, fixed at genesis):
    the ONE place the engine selects it. A configuration without the field (an embedder's
    own object) is on the default suite."""
    return suite_for(getattr(config, "crypto", DEFAULT_SUITE_NAME))
