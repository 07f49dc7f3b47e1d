"""Property: the live pieces of a voucher always sum to its face amount until
settlement, under random splits, transfers, returns, discounts, pledges and
releases (valid and invalid), executed by the real executor."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finance_world import ORG, SECRET, MemLedger, admit_all, config, issue_voucher, live_total
from tierchain.apps.finance import PieceState, VoucherStatus
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject
from tierchain.errors import Reject

FACE = 1_000_000
SUPPLIERS = ["Tier1", "Tier2", "Tier3"]
BANKS = ["BankA", "BankB"]

step = st.tuples(
    st.sampled_from(["split", "transfer", "return", "discount", "pledge", "release", "oversplit"]),
    st.integers(0, 1 << 30),  # which piece
    st.integers(0, 1 << 30),  # which counterparty / amounts
    st.integers(2, 4),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_live_pieces_sum_to_face_until_settlement(steps):
    ledger = MemLedger(config())
    w = admit_all(Finance(ledger, SECRET))
    fin = w.fin
    vid, _ = issue_voucher(w, FACE, ledger.timestamp_ms + 10_000)
    holder_name = {ORG[n]: n for n in ORG}
    for kind, which, other, ways in steps:
        live = fin.live_pieces(vid)
        pid, piece = live[which % len(live)]
        holder = w.p[holder_name[piece.holder]]
        if kind == "split":
            base = piece.amount // ways
            amounts = [base] * (ways - 1) + [piece.amount - base * (ways - 1)]
            r = holder.split(pid, amounts)
            assert r.ok or r.code in (
                FinanceReject.PIECE_TOO_SMALL,
                FinanceReject.PIECE_LOCKED,
                FinanceReject.PIECE_PENDING,
                FinanceReject.SPLIT_TOO_DEEP,
            )
        elif kind == "oversplit":
            r = holder.split(pid, [piece.amount, 1])
            assert not r.ok
        elif kind == "transfer":
            to = SUPPLIERS[other % 3]
            r = holder.transfer(pid, ORG[to])
            if r.ok:
                w.p[to].accept(pid).check()
        elif kind == "return":
            if holder.transfer(pid, ORG[SUPPLIERS[other % 3]]).ok:
                w.p[SUPPLIERS[other % 3]].return_offer(pid).check()
        elif kind in ("discount", "pledge"):
            bank = BANKS[other % 2]
            if kind == "discount":
                r = holder.discount(pid, ORG[bank], max(1, piece.amount * 97 // 100))
            else:
                r = holder.pledge(pid, ORG[bank], max(1, piece.amount // 2), ledger.timestamp_ms + 5_000)
            if r.ok:
                w.p[bank].accept(pid).check()
        elif kind == "release" and piece.state == PieceState.PLEDGED:
            bank = holder_name[piece.counterparty]
            w.p[bank].release(pid).check()
        assert live_total(fin, vid) == FACE
        entry_ok = all(p.amount >= 1 for _, p in fin.live_pieces(vid))
        assert entry_ok
    ledger.timestamp_ms += 10_000
    results = w.p["CoreCo"].settle(vid)
    assert all(r.ok for r in results)
    assert fin.voucher(vid).status == VoucherStatus.SETTLED and live_total(fin, vid) == 0
    paid = sum(a for b in range(len(results)) for _, _, a in fin.clearing(vid, b))
    assert paid == FACE


def test_lifecycle_workload_is_valid_in_stream_order():
    from tierchain.apps.finance.workload import TXS_PER_VOUCHER, lifecycle_workload

    work = lifecycle_workload(40, suppliers=5, banks=2, cores=2, round_vouchers=16)
    assert len(work.txs) == 40 * TXS_PER_VOUCHER
    assert (
        lifecycle_workload(40, suppliers=5, banks=2, cores=2, round_vouchers=16).txs == work.txs
    )  # deterministic
    ledger = MemLedger(work.config())
    assert {r.code for r in ledger.block(work.setup)} == {Reject.OK}
    for i in range(0, len(work.txs), 50):  # arbitrary block boundaries
        assert {r.code for r in ledger.block(work.txs[i : i + 50])} == {Reject.OK}
    fin = Finance(ledger)
    banks_hold = sum(
        1
        for k, v in ledger.state.items()
        if k.startswith(b"fx/") and v and fin.piece(k[3:]).state == PieceState.FINANCED
    )
    assert banks_hold == 40
