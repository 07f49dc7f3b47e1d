"""Key pairs: Ed25519 (PyNaCl, libsodium) for ``ed25519-blake3``, SM2 for ``sm2-sm3``.

Signing is always over a domain-separated 32-byte digest (for transactions:
the tx id, ``wire.Tx.tx_id``). Verification is not here: it is the suite's
(``tierchain.crypto.suite``), under the ZIP-215 rule, because libsodium's
verification rejects some signatures ZIP-215 accepts and a consensus system
cannot have two answers (docs/architecture.md).

``Sm2KeyPair`` is a ``KeyPair`` (same fields and methods, so every tool that holds
a key pair takes either) whose ``public_key`` is the 32-byte x-only SM2 key (the
point ``02 || x``) of its seed and whose signatures are SM2 ``r || s``
(docs/national-crypto.md). ``suite_name`` says which suite a key pair belongs to.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

import nacl.bindings
import nacl.signing
import nacl.utils

from tierchain import limits
from tierchain.crypto import sm

if TYPE_CHECKING:
    from tierchain.wire.tx import Tx

__all__ = ["KeyPair", "Sm2KeyPair", "is_strong_public_key", "is_strong_sm2_public_key"]


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair. ``seed`` is the 32-byte secret; keep it out of logs."""

    suite_name: ClassVar[str] = "ed25519-blake3"
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
        from tierchain.crypto.suite import suite_for  # the suite imports this module

        # tx.tx_id(suite) is the suite's digest of the body (wire.Tx): no import of wire here.
        return dataclasses.replace(tx, signature=self.sign(tx.tx_id(suite_for(self.suite_name))))


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


@dataclasses.dataclass(frozen=True)
class Sm2KeyPair(KeyPair):
    """An SM2 key pair of the ``sm2-sm3`` suite: ``public_key`` is the x-only key of ``seed``.

    The secret scalar ``d`` is derived from the seed (``sm.keypair_from_seed(seed,
    x_only=True)``: ``dG`` has an even y); signing is deterministic SM2 with the
    standard's default user ID.
    """

    suite_name: ClassVar[str] = "sm2-sm3"
    _signer: bytes = dataclasses.field(init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        secret, public_key = sm.keypair_from_seed(self.seed, x_only=True)
        if public_key != self.public_key:
            raise ValueError("public_key is not the SM2 key of this seed")
        object.__setattr__(self, "_signer", secret)

    @classmethod
    def from_seed(cls, seed: bytes) -> Sm2KeyPair:
        if len(seed) != sm.SEED_BYTES:
            raise ValueError(f"an SM2 seed is {sm.SEED_BYTES} bytes")
        return cls(seed=bytes(seed), public_key=sm.keypair_from_seed(seed, x_only=True)[1])

    @classmethod
    def generate(cls) -> Sm2KeyPair:
        return cls.from_seed(nacl.utils.random(sm.SEED_BYTES))

    def sign(self, message: bytes) -> bytes:
        """SM2 signature ``r || s`` of a digest (callers pass domain-separated digests)."""
        return sm.sign(self._signer, message)


def is_strong_sm2_public_key(public_key: bytes) -> bool:
    """True for a 32-byte x-only SM2 key: the x of a curve point (``02 || x`` decodes).

    The SM2 curve has cofactor 1, so every point but the identity (which has no
    encoding) has prime order: there are no weak keys to refuse beyond non-points.
    """
    return (
        len(public_key) == sm.PUBLIC_KEY_X_BYTES and sm.public_key_uncompressed(bytes(public_key)) is not None
    )
