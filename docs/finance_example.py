"""The worked example of docs/finance.md: a voucher's life across three tiers and a bank.

Run: ``PYTHONPATH=core python docs/finance_example.py`` (tests/apps/test_finance_hardening.py
runs it too).

A core enterprise confirms 1,000,000 to tier 1, which keeps 600k and passes 400k to
tier 2, which keeps 250k and passes 150k to tier 3; tier 3 discounts its piece to BankA
for 147,000; the voucher is settled at maturity. Everything runs on an embedded
``Chain`` in a temporary directory; against a node, use ``RemoteLedger`` instead.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tierchain.apps.finance import DocType
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import org_id
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain

# Every member configures the same consortium secret (at least 16 bytes; there is no
# default). Load it from where your consortium keeps it; this one is for the example only.
CONSORTIUM_SECRET = b"example consortium secret: 32 by"

ROLES = {
    "CoreCo": ("core_enterprise",),
    "Tier1": ("supplier",),
    "Tier2": ("supplier",),
    "Tier3": ("supplier",),
    "BankA": ("bank",),
}


def key(name: str) -> KeyPair:
    """A fixed key per party, so the example prints the same ids on every run."""
    return KeyPair.from_seed(name.encode().ljust(32, b"\0"))


def main(directory: Path) -> None:
    node = key("node")  # the chain's proposer, and the committee that admits members
    config = ChainConfig(
        chain_id=7,
        block_interval_ms=5,
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "committee")),),
    )
    with Chain(directory, config, node) as chain:
        fin = Finance(chain, CONSORTIUM_SECRET)
        committee = fin.party(node)
        keys = {name: key(name) for name in ROLES}
        for name, roles in ROLES.items():  # the threshold is 1: each proposal executes at once
            committee.propose_admit(name, roles, keys[name].public_key).check()
        core, t1, t2, t3, bank = (fin.party(keys[n]) for n in ROLES)

        # Tier 1 anchors its invoice and the contract; CoreCo confirms the payable.
        inv = t1.anchor(DocType.INVOICE, b"invoice INV-001: 1,000,000 for 400 units").check().id
        con = t1.anchor(DocType.CONTRACT, b"contract C-17 between CoreCo and Tier1").check().id
        maturity_ms = int(time.time() * 1000) + 2_000  # short, so the example can settle
        docs = [(DocType.INVOICE, inv), (DocType.CONTRACT, con)]
        vid = core.confirm(org_id("Tier1"), 1_000_000, maturity_ms, docs).check().id
        print(f"voucher {vid.hex()}: 1,000,000 from CoreCo to Tier1")
        # An invoice anchored by an org that is party to neither side backs nothing.
        stray = t3.anchor(DocType.INVOICE, b"Tier3's unrelated invoice").check().id
        refused = core.confirm(org_id("Tier1"), 5_000, maturity_ms, [(DocType.INVOICE, stray)])
        print(f"confirm with Tier3's invoice -> {refused.code.name}")

        # Down the tiers: split, offer, accept.
        keep1, down1 = t1.split(vid, [600_000, 400_000]).check().ids
        t1.transfer(down1, org_id("Tier2")).check()
        t2.accept(down1).check()
        _keep2, down2 = t2.split(down1, [250_000, 150_000]).check().ids
        t2.transfer(down2, org_id("Tier3")).check()
        t3.accept(down2).check()
        # Tier 3 discounts its 150k piece at BankA for 147k.
        t3.discount(down2, org_id("BankA"), 147_000).check()
        bank.accept(down2).check()
        print(f"Tier3 splits the sold piece -> {t3.split(down2, [100_000, 50_000]).code.name}")
        print(f"BankA splits its financed piece -> {bank.split(down2, [100_000, 50_000]).code.name}")
        print(f"fits 850,001 more? {fin.fits(fin.blind_invoice(inv), 850_001)} (150k of 1M is financed)")

        time.sleep(max(0.0, maturity_ms / 1000 - time.time()) + 0.05)
        print(f"settle -> {[r.code.name for r in core.settle(vid)]}")
        print(f"settle again -> {[r.code.name for r in core.settle(vid, [keep1])]}")
        paid = ", ".join(f"{fin.org(o).name.decode()} {amount}" for _, o, amount in fin.clearing(vid, 0))
        print(f"clearing batch 0: {paid}")

        lin = fin.lineage(down2)
        piece = lin["piece"]
        print(f"lineage of {down2.hex()}: ancestors: {len(lin['ancestors'])}, state {piece['state']}, "
              f"holder {piece['holder']}")  # fmt: skip
        for e in piece["history"]:
            price = f", price {e['price']}" if e.get("price") else ""
            print(f"  {e['event']:<16} height {e['height']:>3}  {e['org']:<6} amount {e['amount']}{price}")
        print(f"documents: {[(d['type'], d['anchored_by']) for d in lin['voucher']['documents']]}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        main(Path(d) / "chain")
