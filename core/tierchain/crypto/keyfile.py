"""Key files: a key pair's seed sealed under a passphrase, in its suite's scheme.

A file says its suite (``"suite"``; a file without the field is an
``ed25519-blake3`` key, as every file written before suites existed):

* ``ed25519-blake3`` (``keyfile_sealing`` ``argon2id-xsalsa20poly1305``): Argon2id
  (PyNaCl ``pwhash``) derives a SecretBox (XSalsa20-Poly1305) key from the passphrase;
* ``sm2-sm3`` (``pbkdf2-hmac-sm3-sm4-gcm``): PBKDF2-HMAC-SM3 (``sm.KDF_ITERATIONS``
  by default) derives an SM4 key; the seed is sealed with SM4-GCM under a random
  12-byte nonce, the suite name and public key as associated data.

A checksum over the file (the suite's hash, context ``domains.KEYFILE``) tells a
damaged file apart from a wrong passphrase.
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
from tierchain.crypto import sm
from tierchain.crypto.keys import KeyPair
from tierchain.crypto.suite import DEFAULT_SUITE_NAME, CryptoSuite, UnknownCryptoSuite, suite_for
from tierchain.errors import TierChainError

__all__ = [
    "KEYFILE_FORMAT",
    "KEYFILE_VERSION",
    "KeyFileDamaged",
    "KeyFileError",
    "WrongPassphrase",
    "keyfile_iterations_max",
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
keyfile_iterations_max = 20_000_000  # PBKDF2-HMAC-SM3: ~16 s here
_SM_SALT_BYTES = 16


class KeyFileError(TierChainError):
    """A key file could not be opened."""


class WrongPassphrase(KeyFileError):
    """The file is intact but the passphrase does not open it."""


class KeyFileDamaged(KeyFileError):
    """The file is not a well-formed, intact TierChain key file."""


def _checksum(fields: dict, suite: CryptoSuite | None = None) -> str:
    suite = suite or suite_for(DEFAULT_SUITE_NAME)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return suite.hash(suite.contexts.keyfile, canonical).hex()


def _sm_aad(public_key: bytes) -> bytes:
    return b"tierchain key file sm2-sm3 " + public_key


def _seal_ed25519(keys: KeyPair, passphrase: str, *, opslimit: int, memlimit: int, **_: int) -> dict:
    if not (0 < opslimit <= keyfile_opslimit_max and 0 < memlimit <= keyfile_memlimit_bytes_max):
        raise ValueError("KDF cost outside the limits load_key_file accepts")
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box_key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit
    )
    sealed = nacl.secret.SecretBox(box_key).encrypt(keys.seed)
    return {
        "format": KEYFILE_FORMAT,
        "version": KEYFILE_VERSION,
        "suite": keys.suite_name,
        "kdf": "argon2id",
        "opslimit": opslimit,
        "memlimit": memlimit,
        "salt": salt.hex(),
        "sealed_seed": bytes(sealed).hex(),
        "public_key": keys.public_key.hex(),
    }


def _seal_sm2(keys: KeyPair, passphrase: str, *, iterations: int, **_: int) -> dict:
    if not 0 < iterations <= keyfile_iterations_max:
        raise ValueError("KDF cost outside the limits load_key_file accepts")
    salt, nonce = nacl.utils.random(_SM_SALT_BYTES), nacl.utils.random(sm.GCM_NONCE_BYTES)
    key = sm.kdf(passphrase.encode(), salt, iterations)
    return {
        "format": KEYFILE_FORMAT,
        "version": KEYFILE_VERSION,
        "suite": keys.suite_name,
        "kdf": "pbkdf2-hmac-sm3",
        "iterations": iterations,
        "salt": salt.hex(),
        "nonce": nonce.hex(),
        "sealed_seed": sm.seal(key, nonce, keys.seed, _sm_aad(keys.public_key)).hex(),
        "public_key": keys.public_key.hex(),
    }


def save_key_file(
    path: str | os.PathLike,
    keys: KeyPair,
    passphrase: str,
    *,
    opslimit: int = nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
    memlimit: int = nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
    iterations: int = sm.KDF_ITERATIONS,
) -> None:
    """Write ``keys`` sealed under ``passphrase`` atomically (mode 0600), in the scheme of
    the key's suite (``opslimit``/``memlimit``: Argon2id's; ``iterations``: PBKDF2's)."""
    if not passphrase:
        raise ValueError("an empty passphrase protects nothing")
    suite = suite_for(keys.suite_name)
    seal = _SCHEMES[suite.keyfile_sealing][0]
    fields = seal(keys, passphrase, opslimit=opslimit, memlimit=memlimit, iterations=iterations)
    document = dict(fields, checksum=_checksum(fields, suite))
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
    name = document.get("suite", DEFAULT_SUITE_NAME)
    try:
        suite = suite_for(name) if isinstance(name, str) else None
    except UnknownCryptoSuite:
        suite = None
    if suite is None:
        raise KeyFileDamaged(f"key file names an unknown crypto suite {name!r}")
    checksum = document.pop("checksum", None)
    if checksum != _checksum(document, suite):
        raise KeyFileDamaged("checksum mismatch: the file was altered or truncated")
    if document.get("format") != KEYFILE_FORMAT or document.get("version") != KEYFILE_VERSION:
        raise KeyFileDamaged("not a TierChain key file of a known version")
    public_key = _hex_field(document, "public_key", limits.public_key_bytes)
    seed = _SCHEMES[suite.keyfile_sealing][1](document, passphrase, public_key)
    keys = suite.keys_from_seed(seed)
    if keys.public_key != public_key:
        raise KeyFileDamaged("sealed seed does not match the recorded public key")
    return keys


def _open_ed25519(document: dict, passphrase: str, public_key: bytes) -> bytes:
    del public_key  # SecretBox has no associated data; the file's checksum covers the key
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
    box_key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit
    )
    try:
        return nacl.secret.SecretBox(box_key).decrypt(sealed)
    except nacl.exceptions.CryptoError as exc:
        # The checksum passed, so the ciphertext is intact: the passphrase is wrong.
        raise WrongPassphrase("wrong passphrase for this key file") from exc


def _open_sm2(document: dict, passphrase: str, public_key: bytes) -> bytes:
    if document.get("kdf") != "pbkdf2-hmac-sm3":
        raise KeyFileDamaged("unknown key derivation")
    iterations = _field(document, "iterations", int)
    if not 0 < iterations <= keyfile_iterations_max:
        raise KeyFileDamaged("KDF cost outside the accepted bounds")
    salt = _hex_field(document, "salt", _SM_SALT_BYTES)
    nonce = _hex_field(document, "nonce", sm.GCM_NONCE_BYTES)
    sealed = _hex_field(document, "sealed_seed", sm.SEED_BYTES + sm.GCM_TAG_BYTES)
    seed = sm.open(sm.kdf(passphrase.encode(), salt, iterations), nonce, sealed, _sm_aad(public_key))
    if seed is None:
        # The checksum passed, so the ciphertext is intact: the passphrase is wrong.
        raise WrongPassphrase("wrong passphrase for this key file")
    return seed


# Each suite's key-file scheme (``CryptoSuite.keyfile_sealing``): (seal, open).
_SCHEMES = {
    "argon2id-xsalsa20poly1305": (_seal_ed25519, _open_ed25519),
    "pbkdf2-hmac-sm3-sm4-gcm": (_seal_sm2, _open_sm2),
}
