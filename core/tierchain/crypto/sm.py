"""National cryptography (国密) primitives: SM3, SM2, SM4-GCM, PBKDF2-HMAC-SM3.

The one place the rest of TierChain imports them from. Every function is a thin
typed wrapper over ``tierchain_native`` (Rust, ext/rust/src/crypto/sm.rs, from
RustCrypto's ``sm2``/``sm3``/``sm4``/``aes-gcm``/``pbkdf2`` crates); encodings and
constructions are documented in docs/national-crypto.md ("Primitives").

Conventions (as for the Ed25519 suite): bad cryptographic input is ``False`` (or
``None`` where a value is returned), the wrong type is ``TypeError``, mismatched
shapes and oversize parameters are ``ValueError``. Heavy calls release the GIL;
batch verification runs on the native pool (``TIERCHAIN_THREADS``).

Encodings: public keys are 33-byte compressed SEC1 points (or, as the ``sm2-sm3``
suite puts them on the wire, 32-byte x-only keys standing for ``02 || x``), signatures 64 bytes
``r || s`` (big-endian), secret keys the 32-byte big-endian scalar ``d``; the SM2
user ID defaults to ``DEFAULT_USER_ID`` (``"1234567812345678"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import tierchain_native as _n

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

__all__ = [
    "DEFAULT_USER_ID",
    "DIGEST_BYTES",
    "GCM_NONCE_BYTES",
    "GCM_TAG_BYTES",
    "KDF_ITERATIONS",
    "PKE_OVERHEAD_BYTES",
    "PKE_PLAINTEXT_MAX_BYTES",
    "PUBLIC_KEY_BYTES",
    "PUBLIC_KEY_X_BYTES",
    "SECRET_KEY_BYTES",
    "SEED_BYTES",
    "SIGNATURE_BYTES",
    "SM4_KEY_BYTES",
    "decrypt",
    "encrypt",
    "hash",
    "hash_many",
    "hmac_sm3",
    "kdf",
    "keypair_from_seed",
    "merkle_leaf_hash",
    "merkle_node_hash",
    "merkle_root",
    "merkle_root_packed",
    "open",
    "public_key",
    "public_key_uncompressed",
    "seal",
    "sign",
    "sm3",
    "sm4_encrypt_ecb",
    "verify",
    "verify_batch",
    "verify_batch_packed",
]

_C = _n.sm_constants()
DIGEST_BYTES: Final[int] = _C["digest_bytes"]
SEED_BYTES: Final[int] = _C["seed_bytes"]
SECRET_KEY_BYTES: Final[int] = _C["secret_key_bytes"]
PUBLIC_KEY_BYTES: Final[int] = _C["public_key_bytes"]
PUBLIC_KEY_X_BYTES: Final[int] = _C["public_key_x_bytes"]
SIGNATURE_BYTES: Final[int] = _C["signature_bytes"]
DEFAULT_USER_ID: Final[str] = _C["default_user_id"]
SM4_KEY_BYTES: Final[int] = _C["sm4_key_bytes"]
GCM_NONCE_BYTES: Final[int] = _C["gcm_nonce_bytes"]
GCM_TAG_BYTES: Final[int] = _C["gcm_tag_bytes"]
# PBKDF2-HMAC-SM3 iterations for key files: OWASP's 600,000 for PBKDF2-HMAC-SHA256
# (SM3's cost per compression is comparable), ~0.5 s on this machine.
KDF_ITERATIONS: Final[int] = 600_000
PKE_OVERHEAD_BYTES: Final[int] = _C["pke_overhead_bytes"]  # C1 (compressed) + C3
PKE_PLAINTEXT_MAX_BYTES: Final[int] = _C["pke_plaintext_max_bytes"]


# --- SM3 ---------------------------------------------------------------------------


def sm3(data: Buffer) -> bytes:
    """Plain SM3 (GB/T 32905). For vectors and interoperability; ledger hashes use :func:`hash`."""
    return _n.sm3(data)


def hash(context: str, data: Buffer) -> bytes:
    """Domain-separated SM3: ``SM3(pad64(u16be(len(context)) || context) || data)``.

    ``pad64`` zero-fills to a multiple of 64 bytes, so the prefix is whole SM3 blocks
    (hashed once per context in :func:`hash_many`). ``ValueError`` if the context
    exceeds 65535 bytes.
    """
    return _n.sm3_hash_one(context, data)


def hash_many(
    context: str, buf: Buffer, starts: Buffer | Sequence[int], ends: Buffer | Sequence[int]
) -> bytes:
    """Packed 32-byte :func:`hash` of ``buf[starts[i]:ends[i]]`` (parallel for large inputs).

    ``ValueError`` for mismatched or out-of-range offsets.
    """
    return _n.sm3_hash_many(context, buf, starts, ends)


def hmac_sm3(key: Buffer, data: Buffer) -> bytes:
    """HMAC-SM3 (RFC 2104 over SM3; any key length): the ``sm2-sm3`` suite's keyed hash."""
    return _n.sm3_hmac(key, data)


def merkle_leaf_hash(leaf: Buffer) -> bytes:
    """RFC 6962 leaf hash with SM3: ``SM3(0x00 || leaf)``."""
    return _n.sm3_merkle_leaf_hash(leaf)


def merkle_node_hash(left: Buffer, right: Buffer) -> bytes:
    """RFC 6962 node hash with SM3: ``SM3(0x01 || left || right)`` (32-byte children)."""
    return _n.sm3_merkle_node_hash(left, right)


def merkle_root(leaves: Sequence[Buffer]) -> bytes:
    """RFC 6962 root (SM3) of byte-string leaves; ``SM3("")`` for none."""
    return _n.sm3_merkle_root(leaves)


def merkle_root_packed(digests: Buffer, leaf_size: int = DIGEST_BYTES) -> bytes:
    """RFC 6962 root (SM3) over consecutive ``leaf_size``-byte leaves of ``digests``."""
    return _n.sm3_merkle_root_packed(digests, leaf_size)


# --- SM2 ---------------------------------------------------------------------------


def keypair_from_seed(seed: Buffer, *, x_only: bool = False) -> tuple[bytes, bytes]:
    """``(secret_key, public_key)`` of a 32-byte seed, deterministically.

    ``d = SM3("tierchain sm2 secret key" || seed || u8(counter))`` for the first
    counter giving ``1 <= d <= n-2``. With ``x_only`` the key is the 32-byte x of a
    point with even y: ``d`` becomes ``n - d`` when ``dG``'s y is odd (a candidate
    whose negation is unusable is skipped). ``ValueError`` if the seed is not 32 bytes.
    """
    return _n.sm2_keypair_from_seed(seed, x_only)


def public_key(secret_key: Buffer) -> bytes | None:
    """Compressed public key of a secret key ``d``; ``None`` unless ``1 <= d <= n-2``."""
    return _n.sm2_public_key(secret_key)


def public_key_uncompressed(public_key: Buffer) -> bytes | None:
    """``04 || x || y`` of a compressed or x-only key (for other tools); ``None`` if not a point."""
    return _n.sm2_public_key_uncompressed(public_key)


def sign(secret_key: Buffer, message: Buffer, user_id: str = DEFAULT_USER_ID) -> bytes:
    """SM2 signature ``r || s`` of ``message`` (``e = SM3(ZA || message)``).

    Deterministic (RFC 6979 nonce with HMAC-SM3). ``ValueError`` for an unusable
    secret key or a user ID over 8191 bytes.
    """
    return _n.sm2_sign(secret_key, message, user_id)


def verify(public_key: Buffer, message: Buffer, signature: Buffer, user_id: str = DEFAULT_USER_ID) -> bool:
    """SM2 verification (33-byte compressed or 32-byte x-only key, 64-byte ``r || s``).

    Malformed input is ``False``."""
    return _n.sm2_verify(public_key, message, signature, user_id)


def verify_batch(
    public_keys: Sequence[Buffer],
    messages: Sequence[Buffer],
    signatures: Sequence[Buffer],
    user_id: str = DEFAULT_USER_ID,
) -> list[bool]:
    """Element ``i`` equals :func:`verify` of item ``i``; verified in parallel, GIL released."""
    return _n.sm2_verify_batch(public_keys, messages, signatures, user_id)


def verify_batch_packed(public_keys: Buffer, digests: Buffer, signatures: Buffer) -> bytes:
    """Packed ``n*33`` (or x-only ``n*32``) keys, ``n*32`` digests, ``n*64`` signatures.

    One 0/1 byte per row; the key width is told from the columns' lengths."""
    return _n.sm2_verify_batch_packed(public_keys, digests, signatures)


def encrypt(public_key: Buffer, plaintext: Buffer) -> bytes | None:
    """SM2 public-key encryption (GB/T 32918.4) to a compressed or x-only key.

    ``C1 || C3 || C2`` with ``C1`` compressed (``len(plaintext) + PKE_OVERHEAD_BYTES``
    bytes), a fresh ephemeral key from the operating system. ``None`` for a key that is
    not a curve point or an empty plaintext; ``ValueError`` above ``PKE_PLAINTEXT_MAX_BYTES``.
    """
    return _n.sm2_encrypt(public_key, plaintext)


def decrypt(secret_key: Buffer, ciphertext: Buffer) -> bytes | None:
    """The plaintext of :func:`encrypt`'s output under ``secret_key``; ``None`` if it does not
    decrypt (another key, damage: ``C3`` is checked). ``C1`` may be compressed or not."""
    return _n.sm2_decrypt(secret_key, ciphertext)


# --- SM4 / SM4-GCM / KDF -------------------------------------------------------------


def sm4_encrypt_ecb(key: Buffer, data: Buffer) -> bytes:
    """SM4 (GB/T 32907) over whole 16-byte blocks. Vectors and cross-checks only."""
    return _n.sm4_encrypt_ecb(key, data)


def seal(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer = b"") -> bytes:
    """SM4-GCM (16-byte key, 12-byte nonce): ``ciphertext || 16-byte tag``."""
    return _n.sm4_gcm_seal(key, nonce, plaintext, aad)


def open(key: Buffer, nonce: Buffer, sealed: Buffer, aad: Buffer = b"") -> bytes | None:
    """The plaintext of :func:`seal`'s output, or ``None`` if it does not authenticate."""
    return _n.sm4_gcm_open(key, nonce, sealed, aad)


def kdf(
    password: Buffer, salt: Buffer, iterations: int = KDF_ITERATIONS, length: int = SM4_KEY_BYTES
) -> bytes:
    """PBKDF2-HMAC-SM3 (RFC 8018). ``ValueError`` unless ``iterations >= 1``, ``1 <= length <= 1024``."""
    return _n.pbkdf2_hmac_sm3(password, salt, iterations, length)
