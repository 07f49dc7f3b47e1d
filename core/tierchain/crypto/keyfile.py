"""Key files: a key pair's seed sealed under a passphrase.

Argon2id (PyNaCl ``pwhash``) derives a SecretBox (XSalsa20-Poly1305) key from
the passphrase; a checksum over the file (the suite's hash, context
``domains.KEYFILE``) tells a damaged file apart from a wrong passphrase. The
scheme's name is ``ED25519_BLAKE3.keyfile_sealing``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from tierchain import limits
from tierchain.crypto.keys import KeyPair
from tierchain.crypto.suite import ED25519_BLAKE3
from tierchain.errors import TierChainError

__all__ = [
    "KEYFILE_FORMAT",
    "KEYFILE_VERSION",
    "KeyFileDamaged",
    "KeyFileError",
    "WrongPassphrase",
    "keyfile_memlimit_bytes_max",
    "keyfile_opslimit_max",
    "load_key_file",
    "save_key_file",
]

KEYFILE_FORMAT = "tierchain-key"
KEYFILE_VERSION = 1
# Bounds on the KDF cost a key file may ask for: a crafted file must not make
# loading it take minutes or gigabytes.
keyfile_memlimit_bytes_max = 1 << 30
keyfile_opslimit_max = 16


class KeyFileError(TierChainError):
    """A key file could not be opened."""


class WrongPassphrase(KeyFileError):
    """The file is intact but the passphrase does not open it."""


class KeyFileDamaged(KeyFileError):
    """The file is not a well-formed, intact TierChain key file."""


def _checksum(fields: dict) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return ED25519_BLAKE3.hash(ED25519_BLAKE3.contexts.keyfile, canonical).hex()


def save_key_file(
    path: str | os.PathLike,
    keys: KeyPair,
    passphrase: str,
    *,
    opslimit: int = nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
    memlimit: int = nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
) -> None:
    """Write ``keys`` sealed under ``passphrase`` atomically (mode 0600)."""
    if not passphrase:
        raise ValueError("an empty passphrase protects nothing")
    if opslimit > keyfile_opslimit_max or memlimit > keyfile_memlimit_bytes_max:
        raise ValueError("KDF cost above the limits load_key_file accepts")
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box_key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit
    )
    sealed = nacl.secret.SecretBox(box_key).encrypt(keys.seed)
    fields = {
        "format": KEYFILE_FORMAT,
        "version": KEYFILE_VERSION,
        "kdf": "argon2id",
        "opslimit": opslimit,
        "memlimit": memlimit,
        "salt": salt.hex(),
        "sealed_seed": bytes(sealed).hex(),
        "public_key": keys.public_key.hex(),
    }
    document = dict(fields, checksum=_checksum(fields))
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(document, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _field(document: dict, name: str, kind: type):
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise KeyFileDamaged(f"field {name!r} missing or not a {kind.__name__}")
    return value


def _hex_field(document: dict, name: str, size: int) -> bytes:
    try:
        value = bytes.fromhex(_field(document, name, str))
    except ValueError as exc:
        raise KeyFileDamaged(f"field {name!r} is not hex") from exc
    if len(value) != size:
        raise KeyFileDamaged(f"field {name!r} has {len(value)} bytes, expected {size}")
    return value


def load_key_file(path: str | os.PathLike, passphrase: str) -> KeyPair:
    """Open a key file; raises ``WrongPassphrase`` or ``KeyFileDamaged``."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file: {exc.strerror}") from exc
    if len(raw) > 64 << 10:
        raise KeyFileDamaged("key file is implausibly large")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyFileDamaged("key file is not JSON") from exc
    if not isinstance(document, dict):
        raise KeyFileDamaged("key file is not a JSON object")
    checksum = document.pop("checksum", None)
    if checksum != _checksum(document):
        raise KeyFileDamaged("checksum mismatch: the file was altered or truncated")
    if document.get("format") != KEYFILE_FORMAT or document.get("version") != KEYFILE_VERSION:
        raise KeyFileDamaged("not a TierChain key file of a known version")
    if document.get("kdf") != "argon2id":
        raise KeyFileDamaged("unknown key derivation")
    opslimit = _field(document, "opslimit", int)
    memlimit = _field(document, "memlimit", int)
    if not (0 < opslimit <= keyfile_opslimit_max and 0 < memlimit <= keyfile_memlimit_bytes_max):
        raise KeyFileDamaged("KDF cost outside the accepted bounds")
    salt = _hex_field(document, "salt", nacl.pwhash.argon2id.SALTBYTES)
    sealed = _hex_field(
        document, "sealed_seed", nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES + 32
    )
    public_key = _hex_field(document, "public_key", limits.public_key_bytes)
    box_key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit
    )
    try:
        seed = nacl.secret.SecretBox(box_key).decrypt(sealed)
    except nacl.exceptions.CryptoError as exc:
        # The checksum passed, so the ciphertext is intact: the passphrase is wrong.
        raise WrongPassphrase("wrong passphrase for this key file") from exc
    keys = KeyPair.from_seed(seed)
    if keys.public_key != public_key:
        raise KeyFileDamaged("sealed seed does not match the recorded public key")
    return keys
