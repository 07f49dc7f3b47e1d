"""Aggregate disclosure (tierchain.apps.finance.disclosure; docs/privacy.md): a total opens the
sum of commitments, a ratio is bounded from both sides by range proofs, and nothing else
verifies; the runnable example in docs/privacy_example.py."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierchain.apps.finance import camount as ca
from tierchain.apps.finance import disclosure as dz
from tierchain.crypto import confidential as conf

DOCS = Path(__file__).resolve().parents[2] / "docs"
CTX = b"report 1"
amounts = st.lists(st.integers(0, 10**12), min_size=1, max_size=6)


def committed(values: list[int]) -> tuple[list[tuple[int, bytes]], list[bytes]]:
    pairs = [(v, conf.random_opening()) for v in values]
    return pairs, [conf.commit(v, r) for v, r in pairs]


@settings(max_examples=25, deadline=None)
@given(amounts)
def test_a_total_opens_the_sum_and_no_other_total_does(values):
    pairs, commitments = committed(values)
    total = dz.disclose_total([v for v, _ in pairs], [r for _, r in pairs])
    assert total.total == sum(values) and dz.verify_total(commitments, total)
    assert not dz.verify_total(commitments, dz.Total(total.total + 1, total.opening))
    assert not dz.verify_total(commitments, dz.Total(total.total, conf.random_opening()))


@settings(max_examples=10, deadline=None)
@given(amounts, st.lists(st.integers(1, 10**12), min_size=1, max_size=6))
def test_a_ratio_is_proved_exactly_and_only_for_its_commitments(num_values, den_values):
    num, num_c = committed(num_values)
    den, den_c = committed(den_values)
    ratio = dz.disclose_ratio(num, den, CTX)
    assert ratio.basis_points == 10_000 * sum(num_values) // sum(den_values)
    assert dz.verify_ratio(num_c, den_c, ratio, CTX)
    for bp in (ratio.basis_points - 1, ratio.basis_points + 1):  # a neighbour is never provable
        assert not dz.verify_ratio(num_c, den_c, dz.Ratio(bp, ratio.proof), CTX)
    assert not dz.verify_ratio(num_c, den_c, ratio, b"another report")
    assert not dz.verify_ratio(den_c, num_c, ratio, CTX)  # the proof names its commitments


def test_a_ratio_works_on_confidential_amounts_and_refuses_degenerate_input():
    openings = [ca.fresh_opening(v) for v in (7_000_000_000, 3)]  # above 2**32: both limbs
    cams = [ca.make(o, conf.elgamal_keypair(bytes(32)).public, CTX) for o in openings]
    num = [(openings[1].amount, openings[1].opening)]
    den = [(o.amount, o.opening) for o in openings]
    ratio = dz.disclose_ratio(num, den, CTX)
    assert dz.verify_ratio([cams[1].commitment()], [a.commitment() for a in cams], ratio, CTX)
    with pytest.raises(ValueError):
        dz.disclose_ratio(num, [(0, conf.random_opening())], CTX)
    assert not dz.verify_ratio([], [cams[0].commitment()], ratio, CTX)
    assert not dz.verify_ratio([b"\xff" * 32], [cams[0].commitment()], ratio, CTX)


def test_the_privacy_example_runs():
    report = runpy.run_path(str(DOCS / "privacy_example.py"))["main"]()
    assert report == {"total_principal": 600_000_000, "repaid_basis_points": 4375}
