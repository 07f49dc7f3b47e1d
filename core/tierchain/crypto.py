"""Keys and signatures.

* Key pairs are Ed25519 through PyNaCl (libsodium); signing is always over a
  domain-separated 32-byte digest (for transactions: ``wire.tx_id`` of the body).
* Verification is NOT libsodium: it is ``tierchain_native`` (Rust,
  ed25519-consensus) under the ZIP-215 rule, which CometBFT also uses, so that
  single, batch and every node agree on every input. libsodium rejects some
  signatures that ZIP-215 accepts (small-order and non-canonical points), and a
  consensus system cannot have two answers (docs/architecture.md).
* Key files are sealed with a passphrase: Argon2id (PyNaCl ``pwhash``) derives a
  SecretBox key; a BLAKE3 checksum over the file tells a damaged file apart from a
  wrong passphrase.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import blake3
import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils
import tierchain_native

from tierchain import domains, limits, wire
from tierchain.errors import TierChainError

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


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair. ``seed`` is the 32-byte secret; keep it out of logs."""

    seed: bytes = dataclasses.field(repr=False)
    public_key: bytes
    # The expanded key, made once: expanding a seed costs a SHA-512 and a scalar multiplication.
    _signer: nacl.signing.SigningKey = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_signer", nacl.signing.SigningKey(self.seed))

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_seed(nacl.utils.random(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        key = nacl.signing.SigningKey(seed)
        return cls(seed=bytes(seed), public_key=bytes(key.verify_key))

    def sign(self, message: bytes) -> bytes:
        """Sign a message (callers pass domain-separated digests, never raw data)."""
        return self._signer.sign(message).signature

    def sign_tx(self, tx: wire.Tx) -> wire.Tx:
        """Return ``tx`` signed by this key; the sender field must be this key."""
        if tx.sender != self.public_key:
            raise ValueError("tx.sender is not this key's public key")
        return dataclasses.replace(tx, signature=self.sign(wire.tx_id(tx.body())))


def is_strong_public_key(public_key: bytes) -> bool:
    """True for a canonical encoding of a point of prime order.

    ZIP-215 verification accepts signatures by small-order keys: for the identity
    key, R = identity and S = 0 verify for EVERY message. Such keys (and mixed-order
    ones) must therefore never be registered as anyone's key; libsodium's point
    check rejects exactly them, deterministically.
    """
    return len(public_key) == limits.public_key_bytes and bool(
        nacl.bindings.crypto_core_ed25519_is_valid_point(bytes(public_key))
    )


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 under ZIP-215: True if ``signature`` is valid for ``message``."""
    return tierchain_native.verify(public_key, message, signature)


def verify_batch(
    public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
) -> list[bool]:
    """Verify many signatures on all cores; element i equals ``verify`` of item i."""
    return tierchain_native.verify_batch(public_keys, messages, signatures)


# --- key files ---------------------------------------------------------------


def _checksum(fields: dict) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return blake3.blake3(canonical, derive_key_context=domains.KEYFILE).hexdigest()


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
