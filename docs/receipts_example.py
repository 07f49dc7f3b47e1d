"""The worked example of docs/finance_receipts.md: 10 t of copper in a warehouse, pledged once.

Run: ``PYTHONPATH=core python docs/receipts_example.py`` (tests/apps/test_receipts.py runs it).

A warehouse (Depot) anchors its receipt document and issues a receipt for 10,000,000 g of
copper cathode to Tier1; its IoT gate reports goods in and out; Tier1 pledges the receipt to
BankA, and the classic fraud — pledging the same goods again at BankB — is refused; goods
leaving without BankA's release are refused and recorded as an anomaly; BankA lets 2 t out,
then releases; Tier1 splits the rest and transfers a part to Tier2. Everything runs on an
embedded ``Chain`` in a temporary directory; against a node, pass a ``NodeClient`` instead.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tierchain.apps.finance.codes import org_id
from tierchain.apps.receipts.client import MoveKind, Receipts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain

ROLES = {
    "Depot": ("warehouse",),
    "Tier1": ("supplier",),
    "Tier2": ("supplier",),
    "BankA": ("bank",),
    "BankB": ("bank",),
}
ITEM, UNIT, LOCATION = "CU-CATHODE-A", "g", "SH-WGQ-07"


def key(name: str) -> KeyPair:
    """A fixed key per party, so the example prints the same ids on every run."""
    return KeyPair.from_seed(name.encode().ljust(32, b"\0"))


def main(directory: Path) -> None:
    from tierchain.apps.finance.client import Finance

    node = key("node")  # the chain's proposer, and the committee that admits members
    config = ChainConfig(
        chain_id=7,
        block_interval_ms=5,
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "committee")),),
        apps=("accounts", "xshard", "finance", "receipts"),  # the receipts app runs after finance
    )
    with Chain(directory, config, node) as chain:
        committee = Finance(chain).party(node)
        keys = {name: key(name) for name in ROLES}
        for name, roles in ROLES.items():  # the threshold is 1: each proposal executes at once
            committee.propose_admit(name, roles, keys[name].public_key).check()
        rc = Receipts(chain)
        depot, t1, t2, bank_a, bank_b = (rc.party(keys[n]) for n in ROLES)

        # The warehouse anchors its receipt document (finance's evidence) and issues the receipt.
        doc = b"WAREHOUSE RECEIPT WR-2026-0001: copper cathode grade A, 10,000,000 g, bay SH-WGQ-07"
        fp = depot.anchor_document(doc).check().id
        rid = depot.issue(org_id("Tier1"), 10_000_000, ITEM, UNIT, LOCATION, anchor=fp).check().id
        print(f"receipt {rid.hex()}: 10,000,000 g {ITEM} at {LOCATION}, held by Tier1")

        # Its IoT gate: one batch, sequence numbers 1 and 2; a replayed message is refused.
        moves = [(rid, MoveKind.GOODS_IN, 400_000), (rid, MoveKind.GOODS_OUT, 400_000)]
        print(f"gate batch -> {[o.name for o in depot.goods('gate-01', moves).check().outcomes]}")
        replay = depot.goods("gate-01", [(rid, MoveKind.GOODS_OUT, 400_000, 2)])
        print(f"replayed message 2 -> {replay.code.name}")

        # Pledge at BankA (two steps); the same goods pledged again at BankB: refused.
        due_ms = int(time.time() * 1000) + 90 * 86_400_000
        t1.pledge(rid, org_id("BankA"), 6_000_000, due_ms).check()
        bank_a.accept(rid).check()
        again = t1.pledge(rid, org_id("BankB"), 5_000_000, due_ms)
        print(f"second pledge at BankB -> {again.code.name}")
        assert bank_b  # BankB never gets the receipt

        # Goods leaving without the pledgee's release: refused and recorded, nothing moves.
        out = depot.goods_out(rid, 3_000_000, feed="gate-01").check()
        print(f"goods-out without release -> {out.outcomes[0].name}; balance {rc.receipt(rid).balance:,} g")
        bank_a.allow_out(rid, 2_000_000).check()  # a partial release: 2 t may leave
        ok = depot.goods_out(rid, 2_000_000, feed="gate-01").check()
        print(f"goods-out after BankA allowed 2,000,000 -> {ok.outcomes[0].name}")
        bank_a.release(rid).check()

        # Split the rest; a part goes to Tier2 (two steps).
        keep, sold = t1.split(rid, [5_000_000, 3_000_000]).check().ids
        t1.transfer(sold, org_id("Tier2")).check()
        t2.accept(sold).check()
        st = rc.stock_of(keep)
        wh = org_id("Depot")
        live = rc.in_store(wh, ITEM.encode(), UNIT.encode(), LOCATION.encode())
        flows = f"({st.goods_in:,} - {st.goods_out:,}); anomalies {st.anomalies}"
        print(f"in store {live:,} g = goods-in - goods-out {flows}")

        lin = rc.lineage(sold)
        print(f"lineage of {sold.hex()}: root {lin['root']}, holder {lin['receipt']['holder']}")
        print(f"  anchor {lin['anchor']['fingerprint'][:16]}... by {lin['anchor']['org']}")
        for e in lin["ancestors"][0]["history"]:
            print(f"  {e['event']:<16} {e['org']}")
        for m in lin["anomalies"]:
            print(f"  anomaly: seq {m['seq']} {m['kind']} {m['quantity']:,} -> {m['outcome']}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp) / "chain")
