"""Aggregate disclosure over committed amounts (docs/privacy.md, "Aggregate disclosure").

A party that knows the openings of a set of committed amounts (a pool's loans, a holder's
pieces) proves an aggregate to anyone who has only the commitments, without revealing any
single amount:

* **a total** (``disclose_total`` / ``verify_total``): the sum of the amounts and the sum
  of the openings open the sum of the commitments — the commitments add up, so the
  verifier recomputes ``Σ C_i`` itself and checks ``commit(total, opening)``;
* **a ratio** (``disclose_ratio`` / ``verify_ratio``), e.g. the repaid percentage of an ABS
  pool, in basis points, revealing neither total: with ``R = Σ repaid``, ``P = Σ
  principal`` and ``b = ⌊10000·R / P⌋``, two range proofs show ``10000·R − b·P ≥ 0`` and
  ``(b + 1)·P − 10000·R − 1 ≥ 0``, i.e. ``b ≤ 10000·R/P < b + 1``, on commitments the
  verifier derives from the pool's (``commitment_lincomb``). Only ``b`` is learnt.

Commitments here are whole-amount commitments (a ``CAmount``'s ``commitment()``, or any
``conf.commit``); openings are their openings (``Opening.opening``). Proofs are bound to a
caller context, like every proof (a report's id, a date).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tierchain.crypto import confidential as conf

BASIS = 10_000  # ratios in basis points


@dataclasses.dataclass(frozen=True)
class Total:
    total: int
    opening: bytes  # of the sum of the commitments


def disclose_total(amounts: Sequence[int], openings: Sequence[bytes]) -> Total:
    """The total of ``amounts`` and the opening of the sum of their commitments."""
    if len(amounts) != len(openings) or not amounts:
        raise ValueError("one opening per amount, at least one")
    return Total(sum(amounts), conf.opening_lincomb(list(openings), [1] * len(openings)))


def verify_total(commitments: Sequence[bytes], disclosed: Total) -> bool:
    """Whether ``disclosed`` opens the sum of ``commitments`` (amounts below 2**64 each
    and in total: range proofs elsewhere keep them so)."""
    if not commitments or not 0 <= disclosed.total < 1 << 64:
        return False
    summed = conf.commitment_lincomb(list(commitments), [1] * len(commitments))
    return summed is not None and summed == conf.commit(disclosed.total, disclosed.opening)


@dataclasses.dataclass(frozen=True)
class Ratio:
    basis_points: int  # ⌊10000 · Σ numerator / Σ denominator⌋
    proof: bytes  # range proof over the two bounds' commitments


def _sums(commitments: Sequence[bytes]) -> bytes | None:
    return conf.commitment_lincomb(list(commitments), [1] * len(commitments)) if commitments else None


def _bounds(num: bytes, den: bytes, bp: int) -> list[bytes] | None:
    g = conf.generators()[0]  # commit(1, 0)
    low = conf.commitment_lincomb([num, den], [BASIS, -bp])
    high = conf.commitment_lincomb([den, num, g], [bp + 1, -BASIS, -1])
    return None if low is None or high is None else [low, high]


def disclose_ratio(
    numerator: Sequence[tuple[int, bytes]], denominator: Sequence[tuple[int, bytes]], context: bytes
) -> Ratio:
    """Prove ``⌊10000 · Σ numerator / Σ denominator⌋`` from (amount, opening) pairs of the
    two sets, bound to ``context``; ValueError if a sum is 0 or the bounds leave u64."""
    n_total = sum(a for a, _ in numerator)
    d_total = sum(a for a, _ in denominator)
    if not numerator or not denominator or d_total == 0:
        raise ValueError("two non-empty sets, the denominator's sum above 0")
    bp = BASIS * n_total // d_total
    rn = conf.opening_lincomb([r for _, r in numerator], [1] * len(numerator))
    rd = conf.opening_lincomb([r for _, r in denominator], [1] * len(denominator))
    low = BASIS * n_total - bp * d_total
    high = (bp + 1) * d_total - BASIS * n_total - 1
    if not (0 <= low < 1 << 64 and 0 <= high < 1 << 64):
        raise ValueError("the sums are too large for 64-bit range proofs")
    openings = [
        conf.opening_lincomb([rn, rd], [BASIS, -bp]),
        conf.opening_lincomb([rd, rn], [bp + 1, -BASIS]),
    ]
    proof = conf.prove_range([low, high], openings, context, 64)
    return Ratio(bp, proof.proof)


def verify_ratio(
    numerator: Sequence[bytes], denominator: Sequence[bytes], disclosed: Ratio, context: bytes
) -> bool:
    """Whether ``disclosed.basis_points`` is ``⌊10000 · Σ numerator / Σ denominator⌋`` of the
    committed amounts, from the commitments alone."""
    num, den = _sums(numerator), _sums(denominator)
    if num is None or den is None or not 0 <= disclosed.basis_points < 1 << 62:
        return False
    bounds = _bounds(num, den, disclosed.basis_points)
    return bounds is not None and conf.verify_range(disclosed.proof, bounds, context, 64)
