"""The worked example of docs/finance_bills.md: a commercial bill's life, dishonour and recourse.

Run: ``PYTHONPATH=core python docs/bills_example.py`` (tests/apps/test_bills.py runs it too).

CoreCo draws a commercial acceptance bill of 1,000,000 on itself to Tier1; Tier1 endorses
it to Tier2, who discounts it at BankB for 985,000. At maturity BankB presents; CoreCo
dishonours (insufficient funds). BankB claims recourse from Tier2, its immediate prior
party, who pays the face and holds the bill; Tier2 claims from Tier1, who refuses; Tier2's
next claim goes to the drawer; CoreCo, the acceptor, finally pays Tier2 and the bill
closes. A second bill, marked not transferable, cannot be endorsed.

Everything runs on an embedded ``Chain`` in a temporary directory. So that it runs in
seconds, the committee first votes a minimum tenor of 0 days and makes today a business
day in this year's calendar (a real chain keeps tenors of at least a day).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tierchain.apps.bills import BillKind, DishonourReason, RefusalReason
from tierchain.apps.bills.client import Bills
from tierchain.apps.bills.days import civil_from_days
from tierchain.apps.finance import DocType
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import org_id
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain

ROLES = {
    "CoreCo": ("core_enterprise",),
    "Tier1": ("supplier",),
    "Tier2": ("supplier",),
    "Tier3": ("supplier",),
    "BankB": ("bank",),
}


def key(name: str) -> KeyPair:
    """A fixed key per party, so the example prints the same ids on every run."""
    return KeyPair.from_seed(name.encode().ljust(32, b"\0"))


def main(directory: Path) -> None:
    node = key("node")  # the chain's proposer, and the committee (threshold 1)
    config = ChainConfig(
        chain_id=7,
        block_interval_ms=5,
        apps=("accounts", "xshard", "finance", "bills"),
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "committee")),),
    )
    with Chain(directory, config, node) as chain:
        fin, bills = Finance(chain), Bills(chain)
        keys = {name: key(name) for name in ROLES}
        for name, roles in ROLES.items():
            fin.party(node).propose_admit(name, roles, keys[name].public_key).check()
        core, t1, t2, t3, bank = (bills.party(keys[n]) for n in ROLES)
        o = {name: org_id(name) for name in ROLES}

        committee = bills.party(node)
        committee.vote_params(min_tenor_days=0).check()
        today = bills.today(int(time.time() * 1000))
        committee.vote_calendar(civil_from_days(today)[0], workdays=[today]).check()

        contract = fin.party(keys["Tier1"]).anchor(DocType.CONTRACT, b"contract C-17 CoreCo/Tier1").check().id
        bid = core.issue(BillKind.COMMERCIAL, o["CoreCo"], o["Tier1"], 1_000_000, today,
                         docs=[(DocType.CONTRACT, contract)]).check().id  # fmt: skip
        lin = bills.lineage(bid)
        print(
            f"bill {bid.hex()}: {lin['kind']} {lin['face']:,} by CoreCo on CoreCo to Tier1, due {lin['due']}"
        )
        core.accept(bid).check()
        t1.sign(bid).check()  # the payee receives the accepted bill
        t1.endorse(bid, o["Tier2"]).check()
        t2.sign(bid).check()
        t2.discount(bid, o["BankB"], 985_000).check()
        bank.sign(bid).check()

        locked = core.issue(BillKind.COMMERCIAL, o["CoreCo"], o["Tier3"], 50_000, today,
                            not_transferable=True).check().id  # fmt: skip
        core.accept(locked).check()
        t3.sign(locked).check()
        print(f"endorse by Tier3 -> {t3.endorse(locked, o['Tier1']).code.name}")

        bank.present(bid).check()
        core.dishonour(bid, DishonourReason.INSUFFICIENT_FUNDS).check()
        print(f"dishonoured: {bills.lineage(bid)['dishonour_reason']}")
        bank.claim(bid).check()
        t2.recourse_pay(bid).check()
        print(f"recourse: Tier2 pays BankB {bills.lineage(bid)['payments'][-1]['amount']}")
        t2.claim(bid).check()
        t1.recourse_refuse(bid, RefusalReason.TRADE_DISPUTE).check()
        print("Tier1 refuses: TRADE_DISPUTE")
        t2.claim(bid).check()
        print(f"next claim on: {bills.lineage(bid)['recourse']['claimed']['name']}")
        core.pay(bid).check()
        print(f"a move after payment -> {t2.endorse(bid, o['Tier3']).code.name}")

        lin = bills.lineage(bid)
        print(f"state {lin['state']}, holder {lin['holder']['name']}")
        chain_text = ", ".join(
            f"{e['kind']} {e['from']['name']}->{e['to']['name']}" + (f" ({e['price']})" if e["price"] else "")
            for e in lin["endorsements"]
        )
        print(f"endorsements: {chain_text}")
        print("holders: " + " -> ".join(f"{h['holder']['name']} ({h['how']})" for h in lin["holders"]))
        for p in lin["payments"]:
            print(f"  {p['kind']:<9} {p['by']['name']:<6} -> {p['to']['name']:<6} {p['amount']}")
        print(f"history: {len(lin['history'])} events, documents {[d['type'] for d in lin['documents']]}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        main(Path(d) / "chain")
