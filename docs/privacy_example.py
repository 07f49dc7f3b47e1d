"""The worked example of docs/privacy.md, "Aggregate disclosure": an ABS pool's repaid
percentage, proved to an index agency that sees only commitments.

Run: ``PYTHONPATH=core python docs/privacy_example.py`` (tests/apps/test_disclosure.py runs
it too).

An originator has five loans. For each it publishes two commitments — the principal and
the amount repaid so far — and keeps the openings. The index agency (or an investor, a
rating agency) holds only the ten commitments. The originator proves:

1. the pool's total principal (a disclosed total: the sum of the openings opens the sum
   of the commitments), and
2. the pool's repaid percentage in basis points, without revealing the total repaid or
   the total principal (two range proofs bound the ratio from both sides).

No single loan's amount is revealed by either.
"""

from __future__ import annotations

from tierchain.apps.finance import disclosure
from tierchain.crypto import confidential as conf

LOANS = [  # (principal, repaid so far), minor units
    (1_200_000_00, 300_000_00),
    (800_000_00, 800_000_00),
    (2_500_000_00, 1_000_000_00),
    (450_000_00, 0),
    (1_050_000_00, 525_000_00),
]


def main() -> dict:
    # The originator commits to every amount and keeps the openings.
    principal = [(p, conf.random_opening()) for p, _ in LOANS]
    repaid = [(r, conf.random_opening()) for _, r in LOANS]
    published = {
        "principal": [conf.commit(a, r) for a, r in principal],
        "repaid": [conf.commit(a, r) for a, r in repaid],
    }
    context = b"pool ABS-2026-07 report 2026-12-31"  # what the proofs are bound to

    # 1. The total principal: disclosed, checked against the published commitments.
    total = disclosure.disclose_total([a for a, _ in principal], [r for _, r in principal])
    assert disclosure.verify_total(published["principal"], total)

    # 2. The repaid percentage, revealing neither sum.
    ratio = disclosure.disclose_ratio(repaid, principal, context)
    assert disclosure.verify_ratio(published["repaid"], published["principal"], ratio, context)

    # A claim of another percentage, or the proof for another report, does not verify.
    wrong = disclosure.Ratio(ratio.basis_points + 1, ratio.proof)
    assert not disclosure.verify_ratio(published["repaid"], published["principal"], wrong, context)
    assert not disclosure.verify_ratio(published["repaid"], published["principal"], ratio, b"another report")

    report = {"total_principal": total.total, "repaid_basis_points": ratio.basis_points}
    print(report)  # {'total_principal': 600000000, 'repaid_basis_points': 4375}
    return report


if __name__ == "__main__":
    main()
