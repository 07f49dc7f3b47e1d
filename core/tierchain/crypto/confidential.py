"""Confidential amounts: commitments, range proofs, encryption to holders and regulators.

The one place the rest of TierChain imports these primitives from. They are
computed natively (``ext/rust/src/crypto/confidential.rs``) from maintained
libraries, never hand-rolled; docs/privacy.md ("Primitives") has the schemes,
transcript labels, sizes and measured costs.

* **Pedersen commitments** on ristretto255: ``commit(v, r) = v*G + r*H`` (32
  bytes). Sums of commitments commit to the sums of amounts and openings, so a
  split balances when ``balanced([parent], pieces)``: the prover picks piece
  openings with :func:`split_openings`. Amounts add modulo the group order
  ``l ~ 2**252``, not ``2**64``: a sum is only meaningful together with range
  proofs that keep every term (and the result) inside ``[0, 2**64)``.
  :func:`commitment_lincomb` and :func:`opening_lincomb` take integer
  coefficients of any sign (reduced modulo ``GROUP_ORDER``): e.g. an amount
  committed as two 32-bit limbs, ``C_lo + 2**32*C_hi``, or the aggregate
  ``100*sum(R) - p*sum(P)`` of a disclosed repaid percentage ``p``.
* **Range proofs** (Bulletproofs+): one aggregated proof that each of 1..8
  committed amounts is below ``2**bits`` (8, 16, 32 or 64 bits).
* **Grouped ciphertexts** (twisted ElGamal): the commitment plus one decrypt
  handle ``r*P`` per recipient key (holder, counterparty, regulator...; 1..4),
  with a **validity proof** that every handle opens the same commitment,
  checked without decrypting (``validity_proof_len(keys)`` bytes; batches are
  verified together, one multiscalar multiplication per chunk). :func:`decrypt` solves a discrete log, so it
  returns amounts below ``2**32`` only; :func:`decrypts_to` checks a claimed
  amount of any size.

Every proof is bound to a *context* (e.g. the transaction digest; at most
``MAX_CONTEXT_LEN`` bytes): its transcript starts with the domain
``b"tierchain.confidential.v1"``, a purpose label and the context, and a proof
checked against another context fails. Verifiers return ``False`` for any
malformed input; batch verifiers return one verdict per proof, computed in
parallel with the GIL released. Oversized input raises ``ValueError``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

import tierchain_native as _native

_CONSTANTS = _native.confidential_constants()

DOMAIN: bytes = _CONSTANTS["DOMAIN"]  # type: ignore[assignment]
POINT_LEN: int = _CONSTANTS["POINT_LEN"]  # type: ignore[assignment]
SCALAR_LEN: int = _CONSTANTS["SCALAR_LEN"]  # type: ignore[assignment]
SEED_LEN: int = _CONSTANTS["SEED_LEN"]  # type: ignore[assignment]
RANGE_BITS: tuple[int, ...] = tuple(_CONSTANTS["RANGE_BITS"])  # type: ignore[arg-type]
MAX_RANGE_AMOUNTS: int = _CONSTANTS["MAX_RANGE_AMOUNTS"]  # type: ignore[assignment]
MAX_HANDLES: int = _CONSTANTS["MAX_HANDLES"]  # type: ignore[assignment]
MAX_CONTEXT_LEN: int = _CONSTANTS["MAX_CONTEXT_LEN"]  # type: ignore[assignment]
MAX_BATCH: int = _CONSTANTS["MAX_BATCH"]  # type: ignore[assignment]
MAX_SUM_TERMS: int = _CONSTANTS["MAX_SUM_TERMS"]  # type: ignore[assignment]
VALIDITY_PROOF_LEN: int = _CONSTANTS["VALIDITY_PROOF_LEN"]  # type: ignore[assignment]
DECRYPT_MAX_BITS: int = _CONSTANTS["DECRYPT_MAX_BITS"]  # type: ignore[assignment]
GROUP_ORDER: int = int.from_bytes(_CONSTANTS["GROUP_ORDER"], "little")  # type: ignore[arg-type]
"""The order ``l = 2**252 + 27742317777372353535851937790883648493`` of the group:
openings and coefficients are scalars modulo it, and amounts add modulo it."""


def range_proof_len(amounts: int, bits: int = 64) -> int:
    """Bytes of a range proof over ``amounts`` commitments: one byte and
    ``6 + 2*log2(bits*m)`` 32-byte elements, ``m`` = ``amounts`` rounded up to a
    power of two (577 for one 64-bit amount)."""
    m = 1 << max(amounts - 1, 0).bit_length()
    return 1 + 32 * (6 + 2 * ((bits * m).bit_length() - 1))


def validity_proof_len(keys: int = 1) -> int:
    """Bytes of a validity proof for ``keys`` recipient keys: lox-zkp's batchable
    form, one 32-byte commitment per equation (``1 + keys``) and two 32-byte
    responses (``VALIDITY_PROOF_LEN`` = 128 for one key)."""
    return (1 + keys) * POINT_LEN + 2 * SCALAR_LEN


# ------------------------------------------------------------------ Pedersen


def generators() -> tuple[bytes, bytes]:
    """The compressed Pedersen generators ``(G, H)``."""
    return _native.pedersen_generators()


def random_opening() -> bytes:
    """A fresh uniformly random opening (32-byte canonical scalar)."""
    return _native.pedersen_random_opening()


def commit(amount: int, opening: bytes) -> bytes:
    """The commitment ``amount*G + opening*H`` (``0 <= amount < 2**64``)."""
    return _native.pedersen_commit(amount, opening)


def commitment_sum(adds: Sequence[bytes], subs: Sequence[bytes] = ()) -> bytes | None:
    """``sum(adds) - sum(subs)``; ``None`` if any input is not a valid point."""
    return _native.pedersen_commitment_sum(adds, subs)


def balanced(inputs: Sequence[bytes], outputs: Sequence[bytes]) -> bool:
    """Whether the commitments balance: ``sum(inputs) == sum(outputs)`` (amounts and
    openings both balance). ``False`` if any input is malformed."""
    return _native.pedersen_balance(inputs, outputs)


def opening_sum(adds: Sequence[bytes], subs: Sequence[bytes] = ()) -> bytes:
    """``sum(adds) - sum(subs)`` of openings, modulo the group order."""
    return _native.pedersen_opening_sum(adds, subs)


def scalar(n: int) -> bytes:
    """``n mod GROUP_ORDER`` (any int, e.g. ``-1``) as a canonical 32-byte
    little-endian scalar."""
    return (operator.index(n) % GROUP_ORDER).to_bytes(SCALAR_LEN, "little")


def commitment_lincomb(points: Sequence[bytes], coefficients: Sequence[int]) -> bytes | None:
    """``sum(coefficients[i] * points[i])`` of commitments, coefficients taken modulo
    ``GROUP_ORDER`` (so ``-1`` subtracts). It commits to ``sum(k_i*v_i)`` with opening
    ``opening_lincomb(openings, coefficients)``; like any sum, meaningful only with
    range proofs keeping that amount in ``[0, 2**64)``. ``None`` if a point is not
    valid; ``ValueError`` for different lengths or more than ``MAX_SUM_TERMS`` terms;
    computed in variable time (points and coefficients are public)."""
    return _native.pedersen_commitment_lincomb(points, [scalar(k) for k in coefficients])


def opening_lincomb(openings: Sequence[bytes], coefficients: Sequence[int]) -> bytes:
    """``sum(coefficients[i] * openings[i])`` modulo ``GROUP_ORDER``: the opening of
    :func:`commitment_lincomb` with the same coefficients. ``ValueError`` for a
    non-canonical opening, different lengths or more than ``MAX_SUM_TERMS`` terms."""
    return _native.pedersen_opening_lincomb(openings, [scalar(k) for k in coefficients])


def split_openings(parent: bytes, pieces: int) -> list[bytes]:
    """``pieces`` openings summing to ``parent``: all random but the last, so that
    commitments of amounts summing to the parent's amount balance against it."""
    if pieces < 1:
        raise ValueError("a split has at least one piece")
    chosen = [random_opening() for _ in range(pieces - 1)]
    return [*chosen, opening_sum([parent], chosen)]


# -------------------------------------------------------------- range proofs


@dataclass(frozen=True, slots=True)
class RangeProof:
    """An aggregated range proof and the commitments it is about (in order)."""

    proof: bytes
    commitments: tuple[bytes, ...]


def prove_range(
    amounts: Sequence[int], openings: Sequence[bytes], context: bytes, bits: int = 64
) -> RangeProof:
    """Proves every ``amounts[i] < 2**bits`` for ``commit(amounts[i], openings[i])``,
    bound to ``context``. ``ValueError`` for an amount out of range, 0 or more than
    ``MAX_RANGE_AMOUNTS`` amounts, or an unsupported ``bits``."""
    proof, commitments = _native.range_prove(amounts, openings, context, bits)
    return RangeProof(proof, tuple(commitments))


def verify_range(proof: bytes, commitments: Sequence[bytes], context: bytes, bits: int = 64) -> bool:
    """Whether ``proof`` shows every commitment holds an amount below ``2**bits``,
    for this ``context``."""
    return _native.range_verify(proof, commitments, context, bits)


def verify_range_batch(
    proofs: Sequence[bytes],
    commitments: Sequence[Sequence[bytes]],
    contexts: Sequence[bytes],
    bits: int = 64,
) -> list[bool]:
    """One verdict per proof (``verify_range`` of row ``i``), in one native call on
    all cores; a bad proof does not affect its neighbours."""
    return _native.range_verify_batch(proofs, commitments, contexts, bits)


# ------------------------------------------------------------------- ElGamal


@dataclass(frozen=True, slots=True)
class ElGamalKeypair:
    """A twisted-ElGamal key pair: ``public = secret**-1 * H``."""

    secret: bytes
    public: bytes

    def __repr__(self) -> str:
        return f"ElGamalKeypair(public={self.public.hex()})"


@dataclass(frozen=True, slots=True)
class GroupedCiphertext:
    """A commitment and one decrypt handle per recipient key, in key order."""

    commitment: bytes
    handles: tuple[bytes, ...]


def elgamal_keypair(seed: bytes) -> ElGamalKeypair:
    """The deterministic key pair of a 32-byte seed (e.g. derived from an
    organization's key with its own domain-separated hash)."""
    secret, public = _native.elgamal_keypair(seed)
    return ElGamalKeypair(secret, public)


def encrypt(amount: int, opening: bytes, pubkeys: Sequence[bytes]) -> GroupedCiphertext:
    """Encrypts ``amount`` to 1..``MAX_HANDLES`` keys; the commitment is
    ``commit(amount, opening)``, so range proofs and balances apply to it."""
    commitment, handles = _native.elgamal_grouped_encrypt(amount, opening, pubkeys)
    return GroupedCiphertext(commitment, tuple(handles))


def decrypt(secret: bytes, ciphertext: GroupedCiphertext, index: int) -> int | None:
    """The amount under handle ``index`` for ``secret`` if it is below
    ``2**DECRYPT_MAX_BITS``; ``None`` otherwise (larger amount or wrong key)."""
    return _native.elgamal_decrypt(secret, ciphertext.commitment, ciphertext.handles[index])


def decrypts_to(secret: bytes, ciphertext: GroupedCiphertext, index: int, amount: int) -> bool:
    """Whether handle ``index`` decrypts to ``amount`` under ``secret`` (any u64)."""
    return _native.elgamal_decrypts_to(secret, ciphertext.commitment, ciphertext.handles[index], amount)


def prove_validity(amount: int, opening: bytes, pubkeys: Sequence[bytes], context: bytes) -> bytes:
    """A ``validity_proof_len(len(pubkeys))``-byte proof (``VALIDITY_PROOF_LEN`` for
    one key) that ``encrypt(amount, opening, pubkeys)`` is well formed (each handle
    opens the commitment for its key), bound to ``context``."""
    return _native.validity_prove(amount, opening, pubkeys, context)


def verify_validity(
    proof: bytes, ciphertext: GroupedCiphertext, pubkeys: Sequence[bytes], context: bytes
) -> bool:
    """Checks a validity proof without decrypting."""
    return _native.validity_verify(proof, ciphertext.commitment, ciphertext.handles, pubkeys, context)


def verify_validity_batch(
    proofs: Sequence[bytes],
    ciphertexts: Sequence[GroupedCiphertext],
    pubkeys: Sequence[Sequence[bytes]],
    contexts: Sequence[bytes],
) -> list[bool]:
    """One verdict per proof (``verify_validity`` of row ``i``), in one native call on
    all cores: grouped by key count and batch verified per chunk, a failing chunk
    bisected, so a bad proof does not affect its neighbours."""
    return _native.validity_verify_batch(
        proofs,
        [c.commitment for c in ciphertexts],
        [c.handles for c in ciphertexts],
        pubkeys,
        contexts,
    )
