"""Conservation properties of trade-finance messages over seeded random op sequences.

Each sequence mixes every op of a product, by the right and the wrong parties, with amounts
inside and past the limits and block time moving forward; after every step:

* LC: ``drawn + reserved <= amount + tolerance``, ``paid <= drawn``, and ``drawn``,
  ``reserved``, ``paid`` and ``examining`` equal the sums and count over the presentations
  in the matching states (amendments included, which may lower the amount);
* guarantee: ``paid <= amount`` and ``paid`` is the sum of the paid demands;
* receivable: assigned at most once (one ``F_ASSIGNED`` ever, by one factor), and
  ``paid + recourse_paid <= amount``;
* every refused step leaves the state as it was (but the sender's nonce).
"""

from __future__ import annotations

import functools
import random

import pytest
from test_tradefin import DAY, TW, docs, make, state, terms

from tierchain.apps.finance import DocType as FinDoc
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin.codes import Discrepancy as D
from tierchain.apps.tradefin.codes import DocType
from tierchain.apps.tradefin.codes import PresentationStatus as P
from tierchain.errors import Reject

SEEDS = (1, 2, 3, 4, 5, 6)
STEPS = 120


def step(t: TW, fn, *args) -> bool:
    """Run one attempt (``fn(*args)``); a refusal must change nothing. True if it went through."""
    before = state(t)
    r = fn(*args)
    if r.code != Reject.OK:
        assert state(t) == before, r.code
        return False
    return True


def lc_invariants(t: TW, lc_id: bytes) -> None:
    lc = t.tf.lc(lc_id)
    ps = [t.tf.presentation(lc_id, n) for n in range(lc.presentations)]
    assert lc.drawn + lc.reserved <= lc.max_amount
    assert lc.paid <= lc.drawn
    assert lc.reserved == sum(p.amount for p in ps if p.status in c.EXAMINING)
    assert lc.examining == sum(1 for p in ps if p.status in c.EXAMINING)
    assert lc.drawn == sum(p.amount for p in ps if p.status in (P.ACCEPTED, P.PAID))
    assert lc.paid == sum(p.amount for p in ps if p.status == P.PAID)
    assert all(p.automatic & ~p.discrepancies == 0 for p in ps if p.status == P.DISCREPANT)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_lc_histories_conserve_the_amount(seed):
    rng = random.Random(seed)
    t = make()
    lc_id = (
        t.p("CoreCo")
        .apply(
            terms(
                t,
                partial=rng.random() < 0.8,
                presentations_max=rng.randint(2, 8),
                usance_days=rng.choice((0, 0, 5)),
            )
        )
        .check()
        .id
    )
    t.p("BankA").issue(lc_id).check()
    t.p("BankB").advise(lc_id).check()
    banks, parties = ("BankA", "BankB"), ("BankA", "BankB", "CoreCo", "Tier1", "Tier2")
    ok = 0
    for i in range(STEPS):
        lc = t.tf.lc(lc_id)
        latest = max(0, lc.presentations - 1)
        n = latest if rng.random() < 0.8 else rng.randrange(max(1, lc.presentations + 1))
        who = t.p(rng.choice(parties))
        action = rng.randrange(11)
        if action <= 1:
            amount = rng.randint(1, max(1, lc.available // 2 + 20_000))
            kinds = (DocType.INVOICE, DocType.TRANSPORT_DOCUMENT, DocType.PACKING_LIST)
            types = [ty for ty in kinds if rng.random() < 0.95] or [DocType.OTHER]
            shipment = t.now - rng.choice((DAY, 2 * DAY, 20 * DAY)) if rng.random() < 0.95 else t.now + DAY
            seller = t.p("Tier1") if rng.random() < 0.9 else who
            attempt = (seller.present, lc_id, amount, shipment, docs(t, str(i), types))
        elif action in (2, 3):
            bank = t.p(rng.choice(banks)) if rng.random() < 0.5 else t.p("BankA")
            compliant = rng.random() < 0.6
            attempt = (bank.check, lc_id, n, compliant, [] if compliant else [rng.choice(list(D))])
        elif action == 4:
            attempt = ((t.p("CoreCo") if rng.random() < 0.8 else who).waive, lc_id, n)
        elif action == 5:
            attempt = ((t.p("BankA") if rng.random() < 0.8 else who).accept, lc_id, n)
        elif action == 6:
            attempt = (t.p("BankA").refuse, lc_id, n, [rng.choice(list(D))])
        elif action == 7:
            attempt = ((t.p("BankA") if rng.random() < 0.8 else who).pay, lc_id, n)
        elif action == 8:
            amount = rng.randint(lc.amount // 2, 2 * lc.amount)
            attempt = (functools.partial(t.p("BankA").amend, amount=amount), lc_id)
        elif action == 9:
            attempt = (t.p("Tier1").reply_amendment, lc_id, rng.random() < 0.7)
        else:
            t.advance(rng.choice((DAY, DAY, 3 * DAY, 6 * DAY)))
            if rng.random() > 0.05:
                continue
            attempt = (who.close, lc_id)
        ok += step(t, *attempt)
        lc_invariants(t, lc_id)
    assert ok >= 10  # the sequence did things, not only refusals
    history = t.tf.lc_history(lc_id)
    assert len(history["history"]) == len(t.tf.lc(lc_id).history) <= c.lc_history_max


@pytest.mark.parametrize("seed", SEEDS)
def test_random_guarantee_histories_pay_at_most_the_amount(seed):
    rng = random.Random(seed)
    t = make()
    amount = rng.randint(1, 1_000_000)
    gid = (
        t.p("BankA").issue_guarantee(t.org("Tier1"), t.org("CoreCo"), 1, amount, t.now + 30 * DAY).check().id
    )
    for i in range(STEPS):
        who = t.p(rng.choice(("BankA", "CoreCo", "Tier1")))
        action = rng.randrange(5)
        if action == 0:
            attempt = (who.claim, gid, rng.randint(1, amount), t.fp(f"demand {i}"))
        elif action == 1:
            attempt = (who.pay_claim, gid)
        elif action == 2:
            attempt = (who.reject_claim, gid, [c.ClaimRejection.OTHER])
        elif action == 3 and rng.random() < 0.1:
            attempt = (who.release_guarantee, gid)
        else:
            t.advance(rng.choice((DAY, 2 * DAY)))
            continue
        step(t, *attempt)
        g = t.tf.guarantee(gid)
        assert g.paid <= g.amount
        assert g.paid == sum(e.amount for e in g.history if e.kind == c.Event.G_PAID)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_assignments_assign_a_receivable_at_most_once(seed):
    rng = random.Random(seed)
    t = make()
    inv = t.w.fin.party(t.w.keys["Tier1"]).anchor(FinDoc.INVOICE, b"invoice %d" % seed).check().id
    sellers, factors = ("Tier1", "Tier2", "CoreCo"), ("BankA", "BankB")
    for _ in range(STEPS):
        who = t.p(rng.choice(sellers + factors))
        action = rng.randrange(8)
        if action <= 1:
            seller, factor = t.p(rng.choice(sellers)), t.org(rng.choice(factors))
            due, recourse = t.now + 10 * DAY, rng.random() < 0.5
            attempt = (seller.assign, inv, t.org("CoreCo"), factor, 500_000, due, 450_000, recourse)
        elif action == 2:
            attempt = (t.p(rng.choice(factors)).take_assignment, inv)
        elif action == 3:
            attempt = (who.decline_assignment, inv)
        elif action == 4:
            attempt = (t.p("CoreCo").acknowledge, inv)
        elif action == 5:
            attempt = (t.p("CoreCo").pay_receivable, inv, rng.randint(1, 300_000))
        elif action == 6:
            t.advance(rng.choice((DAY, 20 * DAY)))
            attempt = (who.declare_default, inv)
        else:
            attempt = (who.claim_recourse if rng.random() < 0.5 else t.p("Tier1").repurchase, inv)
        step(t, *attempt)
        r = t.tf.receivable(inv)
        if r is None:
            continue
        assigned = [e for e in r.history if e.kind == c.Event.F_ASSIGNED]
        assert len(assigned) <= 1
        assert r.paid + r.recourse_paid <= r.amount
        if assigned:
            assert r.factor == assigned[0].org and r.status != c.ReceivableStatus.OFFERED
        assert r.seller == t.org("Tier1")  # only the invoice's seller ever offered it
