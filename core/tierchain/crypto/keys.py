"""Ed25519 key pairs (PyNaCl, libsodium) for the ``ed25519-blake3`` suite.

Signing is always over a domain-separated 32-byte digest (for transactions:
the tx id, ``wire.Tx.tx_id``). Verification is not here: it is the suite's
(``tierchain.crypto.suite``), under the ZIP-215 rule, because libsodium's
verification rejects some signatures ZIP-215 accepts and a consensus system
cannot have two answers (docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import nacl.bindings
import nacl.signing
import nacl.utils

from tierchain import limits

if TYPE_CHECKING:
    from tierchain.wire.tx import Tx

__all__ = ["KeyPair", "is_strong_public_key"]


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

    def sign_tx(self, tx: Tx) -> Tx:
        """Return ``tx`` signed by this key; the sender field must be this key."""
        if tx.sender != self.public_key:
            raise ValueError("tx.sender is not this key's public key")
        # tx.tx_id() is the suite's digest of the body (wire.Tx): no import of wire here.
        return dataclasses.replace(tx, signature=self.sign(tx.tx_id()))


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
