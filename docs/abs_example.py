"""The worked example of docs/finance.md, "ABS pools": an auto-loan pool from origination to a
servicing report.

Run: ``PYTHONPATH=core python docs/abs_example.py`` (tests/apps/test_abs.py runs it too).

AutoFin (an auto-finance company: originator and servicer of its own loans) registers six
car loans, services them for a few months, selects the eligible ones into a pool, closes it
and transfers it to TrustCo's trust. A second pool cannot take a loan already pooled (the
duplicate-pooling fraud) and an overdue loan is ineligible. After the transfer one loan
defaults and is partly recovered; the pool's statistics and its servicing report (JSON,
HTML, PNG charts: the ``reports`` extra) come from chain data. Everything runs on an
embedded ``Chain`` in a temporary directory; against a node, give ``Abs`` a ``NodeClient``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tierchain.apps.abs import report
from tierchain.apps.abs.client import Abs
from tierchain.apps.abs.codes import AssetKind, Criteria
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain

DAY = 86_400_000
ROLES = {"AutoFin": ("originator", "servicer"), "TrustCo": ("trustee",), "RateCo": ("rating_agency",)}
# AutoFin's own secret for keyed fingerprints of contract numbers and borrowers' ids: the
# chain sees only the fingerprints. Keep it where you keep keys; this one is for the example.
REFERENCE_KEY = b"AutoFin reference key, 32 bytes!"


def key(name: str) -> KeyPair:
    """A fixed key per party, so the example prints the same ids on every run."""
    return KeyPair.from_seed(name.encode().ljust(32, b"\0"))


def main(directory: Path) -> None:
    node = key("node")  # the chain's proposer, and the committee that admits members
    config = ChainConfig(
        chain_id=7,
        block_interval_ms=5,
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "committee")),),
        apps=("accounts", "xshard", "finance", "abs"),
    )
    with Chain(directory, config, node) as chain:
        abs_ = Abs(chain)
        keys = {name: key(name) for name in ROLES}
        for name, roles in ROLES.items():  # threshold 1: each proposal executes at once
            abs_.propose_admit(node, name, roles, keys[name].public_key).check()
        autofin, trust = abs_.party(keys["AutoFin"]), abs_.party(keys["TrustCo"])
        now = int(time.time() * 1000)
        start = now - 120 * DAY  # the loans started four months ago

        # Origination: six 36-month car loans, monthly installments.
        loans = []
        for i, (principal, rate_bp) in enumerate(
            [(150_000_00, 688), (98_000_00, 725), (210_000_00, 650), (76_000_00, 899), (120_000_00, 710),
             (300_000_00, 599)]
        ):  # fmt: skip
            contract = abs_.fingerprint(REFERENCE_KEY, f"AF-2025-{i:04d}")
            borrower = abs_.fingerprint(REFERENCE_KEY, f"borrower {i}")
            r = autofin.register(
                AssetKind.LOAN, principal, rate_bp, start, 36, 1, servicer=autofin.org,
                contract_fp=contract, obligor_fp=borrower,
            ).check()  # fmt: skip
            loans.append(r.id)
        print(f"registered {len(loans)} loans; book tag {loans[0][:8].hex()}")

        # Servicing: three installments each (principal part 1/36, interest a month of the rate).
        for month in (1, 2, 3):
            for aid in loans:
                a = abs_.asset(aid)
                part, interest = a.principal // 36, a.outstanding * a.rate_bp // 120_000
                autofin.repay(aid, month, part, interest, value_ms=start + month * 30 * DAY).check()
        autofin.overdue(loans[3], 2_300_00, 12, value_ms=now - 5 * DAY).check()  # loan 4 falls behind

        # A pool of performing loans up to 250,000.00, 5.00%..9.00%, at most 36 months left.
        criteria = Criteria(max_principal=250_000_00, min_rate_bp=500, max_rate_bp=900,
                            max_remaining_months=36, kinds=1 << AssetKind.LOAN, max_assets=1_000)  # fmt: skip
        pid = autofin.create_pool(criteria, "AutoFin Auto Loan ABS 2026-1").check().id
        print(f"select loan 6 (300,000.00) -> {autofin.select(pid, [loans[5]])[-1].code.name}")
        print(f"select overdue loan 4 -> {autofin.select(pid, [loans[3]])[-1].code.name}")
        good = [loans[i] for i in (0, 1, 2, 4)]
        autofin.select(pid, good)[-1].check()
        other = autofin.create_pool(criteria, "another pool").check().id
        print(f"select loan 1 into another pool -> {autofin.select(other, [loans[0]])[-1].code.name}")
        autofin.close(pid).check()
        autofin.transfer(pid, abs_.org_id("TrustCo")).check()
        trust.accept(pid).check()
        pool = abs_.pool(pid)
        print(f"pool in trust: {pool.assets} loans, cut-off balance {pool.cutoff_balance}")

        # After the transfer: loan 2 defaults; part of it is recovered (the car is sold).
        autofin.default(loans[1], value_ms=now - 3 * DAY).check()
        charged = abs_.asset(loans[1]).defaulted
        autofin.recover(loans[1], 60_000_00, value_ms=now - DAY).check()
        over = autofin.recover(loans[1], charged, value_ms=now - DAY)
        print(f"recover more than the loss -> {over.code.name}")

        st = abs_.stats(pid)
        print(f"repaid {st.repaid_ratio} = {st.to_json()['repaid_ratio']['bp']} bp; "
              f"default rate by principal {st.to_json()['default_by_principal']['bp']} bp; "
              f"recovery {st.to_json()['recovery']['bp']} bp")  # fmt: skip
        print(f"outstanding {st.outstanding}, WA rate {st.wa_rate_bp} bp, "
              f"WA remaining term {st.wa_remaining_months} months")  # fmt: skip
        assert st.principal == st.repaid + st.outstanding + st.charged_off
        pen = abs_.penetration(pid)  # what RateCo checks the report against: every loan, every cash flow
        print(
            f"penetration: {len(pen['assets'])} loans, {sum(len(a['events']) for a in pen['assets'])} events"
        )
        try:
            paths = report.write_report(report.report_data(abs_, pid), directory.parent / "report")
            print(f"servicing report: {Path(paths['html']).name}, {Path(paths['json']).name}, "
                  f"{Path(paths['outstanding_png']).name}, {Path(paths['defaults_png']).name}")  # fmt: skip
        except report.ReportUnavailable as exc:
            print(f"no report.html: {exc}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        main(Path(d) / "chain")
