"""Cryptography: one suite object per chain, key pairs and key files.

The engine hashes and verifies only through a ``CryptoSuite`` it is given
(``suite_of(config)``, the one place a chain's suite is chosen); nothing else
in the package calls a signature or hash primitive of ``tierchain_native``.

Files:

* ``suite.py`` — ``CryptoSuite`` (sizes, hash with domain contexts, keyed hash, batch
  signature verification over packed columns, sign, Merkle roots and paths, sealing to
  a recipient's key and an authenticated cipher,
  key-file scheme name), ``ED25519_BLAKE3``, ``SM2_SM3``, ``suite_for(name)``, ``suite_of``;
* ``keys.py`` — key pairs (Ed25519 by PyNaCl; ``Sm2KeyPair``) and the weak-key checks;
* ``keyfile.py`` — passphrase-sealed key files (Argon2id + SecretBox; for SM2 keys
  PBKDF2-HMAC-SM3 + SM4-GCM);
* ``sm.py`` — the SM2/SM3/SM4 primitives (native);
* ``confidential.py`` — confidential amounts (issue 17).

``verify`` and ``verify_batch`` here are the default suite's, for tools and
tests that hold no chain; the engine uses its suite's methods.
"""

from __future__ import annotations

from collections.abc import Sequence

from tierchain.crypto.keyfile import (
    KEYFILE_FORMAT,
    KEYFILE_VERSION,
    KeyFileDamaged,
    KeyFileError,
    WrongPassphrase,
    keyfile_memlimit_bytes_max,
    keyfile_opslimit_max,
    load_key_file,
    save_key_file,
)
from tierchain.crypto.keyfile import _checksum as _checksum  # tests forge key files with it
from tierchain.crypto.keys import KeyPair, Sm2KeyPair, is_strong_public_key
from tierchain.crypto.suite import (
    DEFAULT_SUITE_NAME,
    ED25519_BLAKE3,
    SM2_SM3,
    SUITES,
    CryptoSuite,
    Ed25519Blake3,
    HashContexts,
    UnknownCryptoSuite,
    suite_for,
    suite_of,
)

__all__ = [
    "DEFAULT_SUITE_NAME",
    "ED25519_BLAKE3",
    "KEYFILE_FORMAT",
    "KEYFILE_VERSION",
    "SM2_SM3",
    "SUITES",
    "CryptoSuite",
    "Ed25519Blake3",
    "HashContexts",
    "KeyFileDamaged",
    "KeyFileError",
    "KeyPair",
    "Sm2KeyPair",
    "UnknownCryptoSuite",
    "WrongPassphrase",
    "is_strong_public_key",
    "keyfile_memlimit_bytes_max",
    "keyfile_opslimit_max",
    "load_key_file",
    "save_key_file",
    "suite_for",
    "suite_of",
    "verify",
    "verify_batch",
]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 under ZIP-215 (the default suite): True if ``signature`` is valid."""
    return ED25519_BLAKE3.verify(public_key, message, signature)


def verify_batch(
    public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
) -> list[bool]:
    """Verify many signatures on all cores; element i equals ``verify`` of item i."""
    return ED25519_BLAKE3.verify_batch(public_keys, messages, signatures)
