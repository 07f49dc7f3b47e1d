"""Confidential amounts as the finance app writes them (docs/privacy.md, "Confidential vouchers").

An amount ``v`` (u64, minor units) is committed as two 32-bit *limbs*, ``v = lo + 2**32·hi``:

* ``lo``, ``hi``: Pedersen commitments of the limbs (``tierchain.crypto.confidential``);
  the amount's commitment is ``lo + 2**32·hi`` (``CAmount.commitment``), which balances
  and sums like any commitment;
* ``reg_lo``, ``reg_hi``: each limb's decrypt handle for the regulator's ElGamal key
  (``fz/regulator``), and a validity proof per limb that the handle opens that limb's
  commitment — checked at admission without decrypting. The regulator decrypts each limb
  (a discrete log below ``2**32``) and so reads every amount: see-through;
* a range proof over the transaction's limbs (32 bits each, aggregated, at most 8 limbs a
  proof), which keeps every amount in ``[0, 2**64)`` so that sums mean what they say.

Every proof is bound to its transaction's ``context`` (chain id, sender, nonce, op): a proof
copied into another transaction fails. The holder learns its amount and opening from a
*sealed opening* (``seal``), encrypted to one of its organization's keys by the chain's crypto
suite (``CryptoSuite.seal``, viewed per suite in ``SEALINGS``: a libsodium sealed box to the
X25519 form of an Ed25519 key on ``ed25519-blake3``, SM2 public-key encryption on
``sm2-sm3``), which it checks against the commitments before it relies on it
(``Opening.matches``).

This module has no op handlers: ``apps/finance/confidential.py`` has them.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence

from tierchain.apps.finance import codes as c
from tierchain.apps.finance.codes import FinanceReject, RecordError
from tierchain.crypto import ED25519_BLAKE3, SUITES, CryptoSuite, KeyPair
from tierchain.crypto import confidential as conf
from tierchain.engine.execute import OpFailed, TxContext

LIMB_BITS = 32
LIMB = 1 << LIMB_BITS
LIMBS_PER_PROOF = 8  # conf.MAX_RANGE_AMOUNTS: four amounts a range proof
_CONTEXT = struct.Struct("<4sI32sQH")  # tag, chain id, sender, nonce, op
_OPENING = struct.Struct("<Q32s32s")
IDENTITY = bytes(32)  # the encoding of the group's identity: commit(0, 0)
STORED_BYTES = 128  # CAmount.stored()


def context(chain_id: int, sender: bytes, nonce: int, op: int) -> bytes:
    """What every proof of a transaction is bound to: a proof is valid in one transaction only
    (a sender's nonce is used once)."""
    return _CONTEXT.pack(b"tcf1", chain_id, sender, nonce, op)


@dataclasses.dataclass(frozen=True)
class CAmount:
    """A confidential amount on the wire (``SIZE`` bytes: 4 points and 2 validity proofs)."""

    lo: bytes
    hi: bytes
    reg_lo: bytes
    reg_hi: bytes
    valid_lo: bytes
    valid_hi: bytes

    SIZE = 4 * 32 + 2 * conf.VALIDITY_PROOF_LEN

    def encode(self) -> bytes:
        return self.lo + self.hi + self.reg_lo + self.reg_hi + self.valid_lo + self.valid_hi

    @classmethod
    def decode(cls, raw: bytes | memoryview) -> CAmount:
        raw = bytes(raw)
        if len(raw) != cls.SIZE:
            raise ValueError(f"a confidential amount is {cls.SIZE} bytes, got {len(raw)}")
        v = 128 + conf.VALIDITY_PROOF_LEN
        return cls(raw[:32], raw[32:64], raw[64:96], raw[96:128], raw[128:v], raw[v:])

    def commitment(self) -> bytes | None:
        """The amount's commitment, ``lo + 2**32·hi`` (None if a limb is not a point)."""
        return conf.commitment_lincomb([self.lo, self.hi], [1, LIMB])

    def stored(self) -> bytes:
        """What state keeps of it: the limbs and the regulator's handles (the validity proofs
        did their work at admission)."""
        return self.lo + self.hi + self.reg_lo + self.reg_hi


@dataclasses.dataclass(frozen=True)
class Opening:
    """What opens a ``CAmount``: the amount and each limb's opening."""

    amount: int
    r_lo: bytes
    r_hi: bytes

    @property
    def limbs(self) -> tuple[int, int]:
        return self.amount % LIMB, self.amount // LIMB

    @property
    def opening(self) -> bytes:
        """The opening of the amount's commitment, ``r_lo + 2**32·r_hi``."""
        return conf.opening_lincomb([self.r_lo, self.r_hi], [1, LIMB])

    def encode(self) -> bytes:
        return _OPENING.pack(self.amount, self.r_lo, self.r_hi)

    @classmethod
    def decode(cls, raw: bytes) -> Opening:
        if len(raw) != _OPENING.size:
            raise ValueError("an opening is 72 bytes")
        return cls(*_OPENING.unpack(raw))

    def matches(self, limbs: tuple[bytes, bytes]) -> bool:
        """Whether this opens the limb commitments ``limbs`` (a holder checks before relying)."""
        lo, hi = self.limbs
        try:
            return (conf.commit(lo, self.r_lo), conf.commit(hi, self.r_hi)) == tuple(limbs)
        except ValueError:  # a non-canonical opening, as a dishonest sender may seal
            return False


def check_regulator(ctx: TxContext, claimed: bytes) -> None:
    """A handler's check that a transaction's envelopes were made for the chain's regulator
    key (``fz/regulator``, which the transaction declares as a read)."""
    current = ctx.get(c.REGULATOR_KEY)
    if current is None:
        raise OpFailed(FinanceReject.NO_REGULATOR_KEY)
    if current != claimed:
        raise OpFailed(FinanceReject.REGULATOR_KEY_MISMATCH)


_PROOF_LEN = struct.Struct("<H")


def put_proof(proof: bytes) -> bytes:
    """A proof in a payload: u16 length, then its bytes."""
    return _PROOF_LEN.pack(len(proof)) + proof


def take_proof(payload: bytes, pos: int) -> tuple[bytes, int]:
    """The proof at ``pos`` of a payload (``put_proof``) and the position after it."""
    (n,) = _PROOF_LEN.unpack_from(payload, pos)
    pos += _PROOF_LEN.size
    if pos + n > len(payload):
        raise ValueError("a proof runs past the payload")
    return payload[pos : pos + n], pos + n


def fresh_opening(amount: int) -> Opening:
    if not 0 <= amount < 1 << 64:
        raise ValueError("an amount is a u64")
    return Opening(amount, conf.random_opening(), conf.random_opening())


def balancing_openings(parent: Opening, amounts: Sequence[int]) -> list[Opening]:
    """Openings of ``amounts`` (summing to the parent's) whose commitments sum to the
    parent's commitment: every limb opening random but the last piece's low one."""
    if sum(amounts) != parent.amount:
        raise ValueError("the pieces do not sum to the parent's amount")
    pieces = [fresh_opening(a) for a in amounts]
    *first, last = pieces
    terms = [parent.r_lo, parent.r_hi, last.r_hi]
    coefficients = [1, LIMB, -LIMB]
    for o in first:
        terms += [o.r_lo, o.r_hi]
        coefficients += [-1, -LIMB]
    r_lo = conf.opening_lincomb(terms, coefficients)
    return [*first, Opening(last.amount, r_lo, last.r_hi)]


def make(opening: Opening, regulator: bytes, ctx: bytes) -> CAmount:
    """The ``CAmount`` of ``opening``, encrypted to the regulator's key, proofs bound to ``ctx``."""
    parts = []
    for value, r in zip(opening.limbs, (opening.r_lo, opening.r_hi), strict=True):
        ct = conf.encrypt(value, r, [regulator])
        parts.append((ct.commitment, ct.handles[0], conf.prove_validity(value, r, [regulator], ctx)))
    (lo, reg_lo, valid_lo), (hi, reg_hi, valid_hi) = parts
    return CAmount(lo, hi, reg_lo, reg_hi, valid_lo, valid_hi)


def prove_ranges(openings: Sequence[Opening], ctx: bytes) -> list[bytes]:
    """The range proofs of ``openings``' limbs, ``LIMBS_PER_PROOF`` limbs a proof, in order."""
    values, rs = [], []
    for o in openings:
        values += list(o.limbs)
        rs += [o.r_lo, o.r_hi]
    return [
        conf.prove_range(values[i : i + LIMBS_PER_PROOF], rs[i : i + LIMBS_PER_PROOF], ctx, LIMB_BITS).proof
        for i in range(0, len(values), LIMBS_PER_PROOF)
    ]


def range_statements(amounts: Sequence[CAmount]) -> list[list[bytes]]:
    """The commitments each of ``prove_ranges``' proofs is about, in order."""
    limbs = [limb for a in amounts for limb in (a.lo, a.hi)]
    return [limbs[i : i + LIMBS_PER_PROOF] for i in range(0, len(limbs), LIMBS_PER_PROOF)]


def balances(parent: tuple[bytes, bytes], pieces: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether the pieces' amounts sum to the parent's: Σ (lo + 2**32·hi) over the pieces
    minus the parent's is the identity (amounts and openings both balance)."""
    points, coefficients = [parent[0], parent[1]], [-1, -LIMB]
    for lo, hi in pieces:
        points += [lo, hi]
        coefficients += [1, LIMB]
    return conf.commitment_lincomb(points, coefficients) == IDENTITY


@dataclasses.dataclass(frozen=True)
class ProofRow:
    """One transaction's proofs, as a batch check collects them: its amounts' limb proofs
    and envelopes, and ``wide`` 64-bit range proofs over derived commitments (a registry
    remainder), each with the commitments it is about."""

    ctx: bytes
    regulator: bytes
    amounts: tuple[CAmount, ...]
    range_proofs: tuple[bytes, ...]
    wide: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()


def verify_rows(rows: Sequence[ProofRow | None]) -> list[bool]:
    """Every row's proofs hold (its range proofs over its limbs, its limbs' validity proofs
    for its regulator key): one native batch call for all range proofs and one for all
    validity proofs (per ``conf.MAX_BATCH`` proofs), whatever the number of rows. A
    ``None`` row (unparsable) is False."""
    r_proofs, r_commitments, r_contexts, r_owner = [], [], [], []
    w_proofs, w_commitments, w_contexts, w_owner = [], [], [], []
    v_proofs, v_cts, v_keys, v_contexts, v_owner = [], [], [], [], []
    ok = [row is not None for row in rows]
    for i, row in enumerate(rows):
        if row is None:
            continue
        statements = range_statements(row.amounts)
        if len(statements) != len(row.range_proofs):
            ok[i] = False
            continue
        for proof, commitments in zip(row.range_proofs, statements, strict=True):
            r_proofs.append(proof)
            r_commitments.append(commitments)
            r_contexts.append(row.ctx)
            r_owner.append(i)
        for proof, commitments in row.wide:
            w_proofs.append(proof)
            w_commitments.append(list(commitments))
            w_contexts.append(row.ctx)
            w_owner.append(i)
        for a in row.amounts:
            for commitment, handle, proof in ((a.lo, a.reg_lo, a.valid_lo), (a.hi, a.reg_hi, a.valid_hi)):
                v_proofs.append(proof)
                v_cts.append(conf.GroupedCiphertext(commitment, (handle,)))
                v_keys.append([row.regulator])
                v_contexts.append(row.ctx)
                v_owner.append(i)
    verdicts = []
    step = conf.MAX_BATCH  # a batch of up to limits.batch_txs_max rows may carry more proofs
    for i in range(0, len(r_proofs), step):
        part = slice(i, i + step)
        good = conf.verify_range_batch(r_proofs[part], r_commitments[part], r_contexts[part], LIMB_BITS)
        verdicts.append((good, r_owner[part]))
    for i in range(0, len(w_proofs), step):
        part = slice(i, i + step)
        verdicts.append(
            (
                conf.verify_range_batch(w_proofs[part], w_commitments[part], w_contexts[part], 64),
                w_owner[part],
            )
        )
    for i in range(0, len(v_proofs), step):
        part = slice(i, i + step)
        good = conf.verify_validity_batch(v_proofs[part], v_cts[part], v_keys[part], v_contexts[part])
        verdicts.append((good, v_owner[part]))
    for results, owners in verdicts:
        for good, i in zip(results, owners, strict=True):
            if not good:
                ok[i] = False
    return ok


@dataclasses.dataclass(frozen=True)
class Stored:
    """``fy/<piece id>``: the piece's limb commitments and regulator handles, and the
    holder's sealed opening."""

    lo: bytes
    hi: bytes
    amount: bytes  # CAmount.stored(): lo, hi, reg_lo, reg_hi
    sealed: bytes

    @classmethod
    def of(cls, a: CAmount, sealed: bytes) -> Stored:
        return cls(a.lo, a.hi, a.stored(), sealed)

    def encode(self) -> bytes:
        return self.amount + self.sealed

    @classmethod
    def decode(cls, raw: bytes) -> Stored:
        """Either suite's record: the sealed opening's size is the record's length less
        ``STORED_BYTES`` (see ``SEALED_SIZES`` for why that cannot be ambiguous)."""
        if len(raw) - STORED_BYTES not in SEALED_SIZES:
            raise RecordError("confidential amount record")
        return cls(raw[:32], raw[32:64], raw[:STORED_BYTES], raw[STORED_BYTES:])


@dataclasses.dataclass(frozen=True)
class Offer:
    """``fw/<piece id>``: a confidential piece's pending offer (kept while it is pledged):
    the piece's opening sealed to the offeree, and for a discount or pledge the price's
    stored amount (limbs, regulator handles) and its opening sealed to the offeree."""

    sealed_piece: bytes
    price: bytes = b""  # CAmount.stored(), or empty for a transfer
    sealed_price: bytes = b""

    def encode(self) -> bytes:
        return self.sealed_piece + self.price + self.sealed_price

    @classmethod
    def decode(cls, raw: bytes | None) -> Offer:
        """Either suite's record: a transfer's is one sealed opening, a financing's two and a
        stored amount, so the length names the sealed size (``SEALED_SIZES``)."""
        size = len(raw) if raw is not None else -1
        n = next((n for n in SEALED_SIZES if size in (n, 2 * n + STORED_BYTES)), None)
        if raw is None or n is None:
            raise RecordError("confidential offer")
        return cls(raw[:n], raw[n : n + STORED_BYTES], raw[n + STORED_BYTES :])


_CCLEAR_HEAD = struct.Struct("<QB32s")  # height, rows, the voucher's settled total so far (commitment)
_CCLEAR_ROW = struct.Struct(f"<16s16s{STORED_BYTES}s")  # piece, paid to, its amount (CAmount.stored)


def encode_cclearing(height: int, settled: bytes, rows: Sequence[tuple[bytes, bytes, bytes]]) -> bytes:
    """A confidential voucher's clearing list (``fc/<voucher><batch>``): each row pays a
    holder its piece's hidden amount (the holder opens its own line with its opening; the
    regulator reads them all), and the commitment of everything settled so far."""
    return _CCLEAR_HEAD.pack(height, len(rows), settled) + b"".join(_CCLEAR_ROW.pack(*r) for r in rows)


def decode_cclearing(raw: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes, bytes]]]:
    if len(raw) < _CCLEAR_HEAD.size:
        raise RecordError("confidential clearing list")
    height, n, settled = _CCLEAR_HEAD.unpack_from(raw)
    if len(raw) != _CCLEAR_HEAD.size + n * _CCLEAR_ROW.size:
        raise RecordError("confidential clearing rows")
    rows = [_CCLEAR_ROW.unpack_from(raw, _CCLEAR_HEAD.size + i * _CCLEAR_ROW.size) for i in range(n)]
    return height, settled, rows


# --- openings for holders ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sealing:
    """How a chain of one crypto suite seals an opening to its recipient's key: a view of the
    suite's own sealing (``CryptoSuite.seal``/``unseal``, the one implementation of each).
    ``seal(plaintext, recipient public key)`` and ``open(sealed, recipient's signing seed)``
    (the plaintext, or None if it was not sealed to that key or is damaged); every sealed
    opening is ``sealed_bytes`` long."""

    suite: CryptoSuite

    @property
    def scheme(self) -> str:
        return self.suite.seal_scheme

    @property
    def sealed_bytes(self) -> int:
        return _OPENING.size + self.suite.seal_overhead

    def seal(self, plaintext: bytes, recipient: bytes) -> bytes:
        return self.suite.seal(recipient, plaintext)

    def open(self, sealed: bytes, signing_seed: bytes) -> bytes | None:
        return self.suite.unseal(self.suite.keys_from_seed(signing_seed), sealed)


# Per crypto suite, how openings are sealed (docs/privacy.md, "Openings for holders"): the
# suite's sealing to a recipient's key. ed25519-blake3: a libsodium sealed box (X25519 +
# XSalsa20-Poly1305) to the X25519 form of the recipient's Ed25519 key, +48 bytes.
# sm2-sm3: SM2 public-key encryption (GB/T 32918.4, C1 || C3 || C2, C1 compressed) to the
# recipient's x-only SM2 key, +65 bytes (sm.PKE_OVERHEAD_BYTES).
SEALINGS: dict[str, Sealing] = {name: Sealing(suite) for name, suite in SUITES.items()}
SEALED_BYTES = SEALINGS[ED25519_BLAKE3.name].sealed_bytes  # the default suite's (120), as before
# Every suite's sealed size. The records that keep sealed openings (``Stored``, ``Offer``,
# ``cregistry.CRegistryEntry``) are decoded by length, without being told the suite: a
# record of n-byte sealed openings is STORED_BYTES + n (Stored), n or 2n + STORED_BYTES
# (Offer), 97 or 97 + n (CRegistryEntry) bytes, and with n = 120 or 137 no two sizes give
# a record of one kind the same length (248/265; 120/368/137/402; 217/234), so the length
# alone names the layout (tests/apps/test_confidential_suites.py checks it for every suite).
# Payloads are parsed with the chain's size (``sealed_bytes(ctx.suite)``).
SEALED_SIZES: tuple[int, ...] = tuple(sorted({s.sealed_bytes for s in SEALINGS.values()}))


def sealing(suite: CryptoSuite | str = ED25519_BLAKE3) -> Sealing:
    """How chains of ``suite`` (or the suite of that name) seal openings; ValueError for a
    suite with no sealing."""
    name = suite if isinstance(suite, str) else suite.name
    found = SEALINGS.get(name)
    if found is None:
        raise ValueError(f"confidential amounts: no sealing of openings in the {name} suite")
    return found


def sealed_bytes(suite: CryptoSuite = ED25519_BLAKE3) -> int:
    """The size of a sealed opening on a chain of ``suite`` (what payload parsers expect)."""
    return sealing(suite).sealed_bytes


def seal(opening: Opening, recipient: bytes, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """``opening`` sealed to the public key ``recipient`` of ``suite`` (``SEALINGS``: only that
    key's holder opens it), ``sealed_bytes(suite)`` bytes."""
    return sealing(suite).seal(opening.encode(), recipient)


def unseal(sealed: bytes, keys: KeyPair | bytes) -> Opening | None:
    """The opening sealed to ``keys`` (a key pair: its suite's sealing; or, as before, an
    Ed25519 signing seed); None if it was not sealed to that key or is damaged."""
    if isinstance(keys, KeyPair):
        raw = sealing(keys.suite_name).suite.unseal(keys, sealed)  # the key pair's own suite
    else:
        raw = sealing(ED25519_BLAKE3).open(sealed, keys)
    if raw is None:
        return None
    try:
        return Opening.decode(raw)
    except ValueError:
        return None


# --- the regulator ------------------------------------------------------------------------


def regulator_read(stored: bytes, regulator_secret: bytes) -> int | None:
    """The amount of a stored confidential amount (``CAmount.stored``), read with the
    regulator's ElGamal secret; None with another key."""
    lo, hi, reg_lo, reg_hi = (stored[i : i + 32] for i in range(0, 128, 32))
    lo_v = conf.decrypt(regulator_secret, conf.GroupedCiphertext(lo, (reg_lo,)), 0)
    hi_v = conf.decrypt(regulator_secret, conf.GroupedCiphertext(hi, (reg_hi,)), 0)
    if lo_v is None or hi_v is None:
        return None
    return lo_v + LIMB * hi_v
