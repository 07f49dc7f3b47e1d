"""The worked example of docs/finance_tradefin.md: an LC, a guarantee, a factored receivable
and a forfaited bill on one chain.

Run: ``PYTHONPATH=core python docs/tradefin_example.py`` (tests/apps/test_tradefin.py runs it).

CoreCo buys from Tier1 under a sight letter of credit that BankA issues and BankB advises;
Tier1's first presentation lacks the transport document, so the chain finds the discrepancy
itself, BankA cannot call it compliant, CoreCo waives it, BankA accepts and pays. BankB
guarantees Tier1's performance to CoreCo and pays a demand. Tier2 factors its invoice to
CoreCo with BankA (a second assignment of the same invoice is refused); CoreCo acknowledges
the notice and pays BankA. Tier1 forfaits a bill to BankB, settled at maturity. Everything
runs on an embedded ``Chain`` in a temporary directory; against a node, pass a
``NodeClient`` to ``TradeFin`` instead.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tierchain.apps.finance import DocType as FinanceDoc
from tierchain.apps.finance.client import Finance
from tierchain.apps.tradefin.client import Terms, TradeFin
from tierchain.apps.tradefin.codes import Discrepancy, DocType, GuaranteeKind
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain

ROLES = {
    "CoreCo": ("core_enterprise",),
    "Tier1": ("supplier",),
    "Tier2": ("supplier",),
    "BankA": ("bank",),
    "BankB": ("bank",),
}
DAY = 86_400_000


def key(name: str) -> KeyPair:
    """A fixed key per party, so the example prints the same ids on every run."""
    return KeyPair.from_seed(name.encode().ljust(32, b"\0"))


def main(directory: Path) -> None:
    node = key("node")  # the chain's proposer, and the committee that admits members
    config = ChainConfig(
        chain_id=7,
        block_interval_ms=5,
        apps=("accounts", "xshard", "finance", "tradefin"),  # tradefin runs after finance
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "committee")),),
    )
    with Chain(directory, config, node) as chain:
        fin, tf = Finance(chain), TradeFin(chain)
        keys = {name: key(name) for name in ROLES}
        for name, roles in ROLES.items():  # the threshold is 1: each proposal executes at once
            fin.party(node).propose_admit(name, roles, keys[name].public_key).check()
        core, t1, t2, bank_a, bank_b = (tf.party(keys[n]) for n in ROLES)
        org, fp = tf.org_id, (lambda text: tf.document_fingerprint(text.encode()))
        now = int(time.time() * 1000)

        # --- a sight LC ------------------------------------------------------------------
        terms = Terms(
            issuer=org("BankA"), advising=org("BankB"), beneficiary=org("Tier1"), amount=1_000_000,
            tolerance_bps=500, expiry_ms=now + 60 * DAY, latest_shipment_ms=now + 30 * DAY,
            required_docs=(DocType.INVOICE, DocType.TRANSPORT_DOCUMENT), presentations_max=2, partial=True,
        )  # fmt: skip
        lc = core.apply(terms, fp("CoreCo's LC application")).check().id
        bank_a.issue(lc, fp("LC text")).check()
        bank_b.advise(lc, fp("advice to Tier1")).check()
        print(f"LC {lc.hex()}: 1,000,000 (+5%) from BankA, advised by BankB, in favour of Tier1")
        invoice = [(DocType.INVOICE, fp("invoice INV-100"))]
        r = t1.present(lc, 1_100_000, now - DAY, invoice)
        print(f"present 1,100,000 -> {r.code.name}")
        n = t1.present(lc, 600_000, now - DAY, invoice).check().index
        found = [d.name for d in Discrepancy if tf.presentation(lc, n).automatic >> d & 1]
        print(f"presentation {n}: 600,000 with the invoice only; the chain finds {found}")
        print(f"BankA checks it compliant -> {bank_a.check(lc, n, True).code.name}")
        bank_a.check(lc, n, False, [Discrepancy.MISSING_DOCUMENT], fp("BankA's examination")).check()
        core.waive(lc, n, fp("CoreCo's waiver")).check()
        bank_a.accept(lc, n, fp("acceptance")).check()
        bank_a.pay(lc, n, fp("payment order")).check()
        h = tf.lc_history(lc)
        pres = h["presentations"][n]
        print(f"drawing {n}: {pres['amount']} paid to {pres['payee']['name']}; amounts {h['amounts']}")
        print(f"events: {' '.join(e['event'] for e in h['history'])}")

        # --- a performance guarantee ---------------------------------------------------------
        g = (
            bank_b.issue_guarantee(
                org("Tier1"),
                org("CoreCo"),
                GuaranteeKind.PERFORMANCE,
                200_000,
                now + 90 * DAY,
                fp("guarantee text"),
            )
            .check()
            .id
        )
        core.claim(g, 50_000, fp("CoreCo's demand")).check()
        bank_b.pay_claim(g, fp("BankB's payment")).check()
        v = tf.guarantee_view(g)
        print(f"guarantee {g.hex()}: paid {v['paid']}, remaining {v['remaining']}, {v['status']}")

        # --- factoring ----------------------------------------------------------------------
        inv = (
            fin.party(keys["Tier2"])
            .anchor(FinanceDoc.INVOICE, b"invoice T2-55: 300,000 to CoreCo")
            .check()
            .id
        )
        t2.assign(
            inv, org("CoreCo"), org("BankA"), 300_000, now + 30 * DAY, 285_000, True, fp("notice")
        ).check()
        again = t1.assign(inv, org("CoreCo"), org("BankB"), 300_000, now + 30 * DAY, 290_000, False)
        print(f"the same invoice assigned again -> {again.code.name}")
        bank_a.take_assignment(inv, fp("factoring agreement")).check()
        core.acknowledge(inv, fp("CoreCo's acknowledgement")).check()
        core.pay_receivable(inv, 300_000, fp("CoreCo's payment to BankA")).check()
        chain_view = tf.receivable_chain(inv)
        offers = [(a["factor"]["name"], a["outcome"]) for a in chain_view["assignments"]]
        print(f"receivable {inv.hex()[:16]}...: {chain_view['status']}, assignments {offers}")

        # --- forfaiting of a bill ---------------------------------------------------------------
        maturity = int(time.time() * 1000) + 1500
        bill = fp("bill of exchange B-9, CoreCo accepting")
        w = t1.forfait_bill(bill, org("BankB"), org("CoreCo"), 100_000, maturity, 98_500).check().id
        bank_b.buy_forfait(w).check()
        print(f"settle before maturity -> {bank_b.settle_forfait(w).code.name}")
        time.sleep(max(0.0, maturity / 1000 - time.time()) + 0.05)
        bank_b.settle_forfait(w, fp("paid at maturity")).check()
        fv = tf.forfait_view(w)
        print(f"bill forfaited at {fv['price']} of {fv['face']}: {fv['status']} to {fv['forfaiter']['name']}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        main(Path(d) / "chain")
