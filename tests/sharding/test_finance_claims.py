"""Documents across shards (docs/sharding.md "Documents across shards"; apps/finance/claims.py).

On a 2-shard cluster a voucher's lineage is on the shard of its asset's tag and an anchor on
the shard of its (type, fingerprint). The core enterprise claims the documents where they
are, the claim courier carries the claims to the lineage's shard, and the confirmation
there reads the carried claims: an invoice is bound once, cluster-wide. A bank's financing
record is placed on its registry entry's shard (``fm/``).
"""

from __future__ import annotations

import time

import pytest

from finance_cluster_world import BASE, COORD, KEYS, NODE, N, consortium, shard_finance
from finance_world import kp
from tierchain.apps.finance import DocType, claims
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.courier import ClaimCourier
from tierchain.engine.route import route_keys
from tierchain.errors import Reject
from tierchain.sharding.cluster import Cluster

LINEAGE, HOME = 1, 0  # the voucher's lineage on shard 1, its documents anchored on shard 0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("claims") / "cluster", BASE, NODE.seed, N) as cl:
        consortium(cl)
        yield cl, shard_finance(cl), ClaimCourier(cl, COORD)


def _doc(fin, doc_type: int, shard: int, label: str) -> tuple[bytes, bytes]:
    """A document (bytes, fingerprint) whose anchor is on ``shard``; an invoice's asset is on
    ``LINEAGE`` too."""
    for i in range(1000):
        doc = f"{label} {i}".encode()
        fp = fin.document_fingerprint(doc)
        if int(route_keys([c.doc_key(doc_type, fp)], N)[0]) != shard:
            continue
        if (
            doc_type == DocType.INVOICE
            and int(route_keys([c.registry_key(fin.blind_invoice(fp))], N)[0]) != LINEAGE
        ):
            continue
        return doc, fp
    raise AssertionError("no such document in 1000 tries")


def _ids(fin, *names: str) -> list[bytes]:
    return [fin.org_id(n) for n in names]


def _state(cluster: Cluster) -> list[list]:
    """Every finance record of every shard (a refused op changes only its sender's nonce)."""
    return [cluster.call(s, "state_scan", b"f", 10_000, b"") for s in range(cluster.n_shards)]


def test_a_voucher_confirms_on_its_lineage_shard_with_documents_claimed_on_another(world):
    cluster, fins, courier = world
    home, lin = fins[HOME], fins[LINEAGE]
    core, tier1 = _ids(home, "CoreCo", "Tier1")
    _, inv = _doc(home, DocType.INVOICE, HOME, "claims invoice")
    _, contract = _doc(home, DocType.CONTRACT, HOME, "claims contract")
    _, waybill = _doc(home, DocType.WAYBILL, LINEAGE, "claims waybill")  # on the lineage's shard
    assert home.party(KEYS["Tier1"]).anchor(DocType.INVOICE, fingerprint=inv).ok
    assert home.party(KEYS["CoreCo"]).anchor(DocType.CONTRACT, fingerprint=contract).ok
    assert lin.party(KEYS["Carrier"]).anchor(DocType.WAYBILL, fingerprint=waybill).ok
    docs = [(DocType.INVOICE, inv), (DocType.CONTRACT, contract), (DocType.WAYBILL, waybill)]
    away = docs[:2]
    core_l = lin.party(KEYS["CoreCo"])
    maturity = int(time.time() * 1000) + 60_000

    # reading the anchors from the lineage's shard: the invoice's write is on the other shard
    assert core_l.confirm(tier1, 1_000_000, maturity, docs).code == Reject.WRONG_SHARD
    # claimed but not carried yet: not there
    asset = core_l.voucher_asset(docs)
    claimed = home.party(KEYS["CoreCo"]).claim(tier1, away, asset=asset)
    assert claimed.ok, claimed.code
    assert home.document(DocType.INVOICE, inv).voucher == asset[:16]  # bound at once
    before = _state(cluster)
    assert core_l.confirm(tier1, 1_000_000, maturity, docs, claimed=away).code == FinanceReject.NO_SUCH_DOC
    assert _state(cluster)[LINEAGE] == before[LINEAGE]

    report = courier.step()
    assert report.pending == 2 and report.carried == {LINEAGE: 2} and report.cleared == {HOME: 2}
    assert not report.failed
    assert courier.step().idle  # nothing pending any more
    assert cluster.call(HOME, "state_scan", b"fg/", 10, b"") == []

    issued = core_l.confirm(tier1, 1_000_000, maturity, docs, claimed=away)
    assert issued.ok, issued.code
    vid = issued.id
    assert lin.voucher(vid).docs == tuple(docs)
    carried = c.Claim.decode(lin.get(c.claim_key(vid[:8], DocType.INVOICE, inv)))
    assert carried.doc.voucher == vid and carried.claimant == core and carried.blinded == asset
    assert carried.doc.org == tier1  # the anchor as the claim saw it
    # the lineage runs on: a discount counts against the asset on the same shard
    t1 = lin.party(KEYS["Tier1"])
    assert t1.discount(vid, lin.org_id("BankA"), 990_000).ok
    assert lin.party(KEYS["BankA"]).accept(vid).ok
    assert lin.piece(vid).holder == lin.org_id("BankA")

    # the invoice is bound cluster-wide: no second claim, no second confirmation
    again = home.party(KEYS["CoreCo"]).claim(tier1, away[:1], asset=asset)
    assert again.code == FinanceReject.INVOICE_ALREADY_USED
    used = core_l.confirm(tier1, 1_000_000, maturity, docs, claimed=away)
    assert used.code == FinanceReject.INVOICE_ALREADY_USED  # the carried claim names its voucher


def test_a_carried_claim_is_checked_against_the_confirmation(world):
    cluster, fins, courier = world
    home, lin = fins[HOME], fins[LINEAGE]
    core, tier1, tier2 = _ids(home, "CoreCo", "Tier1", "Tier2")
    _, inv = _doc(home, DocType.INVOICE, HOME, "mismatch invoice")
    _, cited = _doc(home, DocType.INVOICE, HOME, "cited invoice")
    for fp in (inv, cited):
        assert home.party(KEYS["Tier1"]).anchor(DocType.INVOICE, fingerprint=fp).ok
    docs = [(DocType.INVOICE, inv)]
    core_l = lin.party(KEYS["CoreCo"])
    asset = core_l.voucher_asset(docs)
    assert home.party(KEYS["CoreCo"]).claim(tier1, docs, asset=asset).ok
    # Tier1 cites the other invoice for the same lineage (no asset): nothing is bound
    both = [*docs, (DocType.INVOICE, cited)]
    assert home.party(KEYS["Tier1"]).claim(core, both[1:], tag=asset[:8]).ok
    assert home.document(DocType.INVOICE, cited).voucher == c.ZERO_ID
    assert courier.step().carried == {LINEAGE: 2}
    # the core enterprise's own citation of it, later: carried claims are never overwritten
    assert home.party(KEYS["CoreCo"]).claim(tier1, both[1:], tag=asset[:8]).ok
    report = courier.step()
    assert report.carried == {LINEAGE: 0} and report.cleared == {HOME: 1} and not report.failed
    first = c.Claim.decode(lin.get(c.claim_key(asset[:8], DocType.INVOICE, cited)))
    assert first.claimant == tier1

    maturity = int(time.time() * 1000) + 60_000
    before = _state(cluster)
    # claimed for Tier1, confirmed to Tier2
    assert core_l.confirm(tier2, 5_000, maturity, docs, claimed=docs).code == FinanceReject.CLAIM_MISMATCH
    # the second invoice's carried claim is Tier1's citation, not the core enterprise's
    assert core_l.confirm(tier1, 5_000, maturity, both, claimed=both).code == FinanceReject.CLAIM_MISMATCH
    assert _state(cluster) == before
    assert core_l.confirm(tier1, 5_000, maturity, docs, claimed=docs).ok


def test_claims_are_refused_with_named_codes_and_only_the_coordinator_carries(world):
    cluster, fins, _ = world
    home = fins[HOME]
    tier1 = home.org_id("Tier1")
    _, inv = _doc(home, DocType.INVOICE, HOME, "refused invoice")
    docs = [(DocType.INVOICE, inv)]
    core = home.party(KEYS["CoreCo"])
    asset = core.voucher_asset(docs)
    assert core.claim(tier1, docs, asset=asset).code == FinanceReject.NO_SUCH_DOC  # not anchored
    assert home.party(KEYS["Tier2"]).anchor(DocType.INVOICE, fingerprint=inv).ok
    assert core.claim(tier1, docs, asset=asset).code == FinanceReject.DOC_NOT_FROM_PARTY  # Tier2's
    # binding an invoice is the core enterprise's; a supplier can only cite
    assert home.party(KEYS["Tier2"]).claim(tier1, docs, asset=asset).code == FinanceReject.ROLE_MISSING
    assert core.claim(core.org, docs, tag=asset[:8]).code == FinanceReject.BAD_COUNTERPARTY
    assert home.document(DocType.INVOICE, inv).voucher == c.ZERO_ID
    # fin.carry from anyone but a coordinator account
    rogue = kp("claims rogue")
    put = (c.claim_key(asset[:8], DocType.INVOICE, inv), bytes(claims.CLAIM_BYTES))
    tx = claims.carry(cluster.chain_id(LINEAGE), NODE.public_key, 0, [put], [])
    (receipt,) = cluster.submit([NODE.sign_tx(tx).encode()]).wait(10)
    assert receipt.code == Reject.UNAUTHORIZED
    with pytest.raises(ValueError):
        claims.carry(cluster.chain_id(LINEAGE), rogue.public_key, 0, [(b"fd/" + bytes(41), put[1])], [])


def test_a_banks_financing_record_is_placed_on_its_registry_entrys_shard(world):
    cluster, fins, _ = world
    lin = fins[LINEAGE]
    blinded = next(
        b
        for b in (lin.blind("order", b"placed order %d" % i) for i in range(100))
        if int(route_keys([c.registry_key(b)], N)[0]) == LINEAGE
    )
    assert lin.party(KEYS["CoreCo"]).reg_asset(blinded, 100_000).ok
    bank = lin.party(KEYS["BankA"])
    assert bank.reg_finance(blinded, 60_000, b"loan 1").ok
    assert not lin.fits(blinded, 50_000) and lin.fits(blinded, 40_000)
    records = cluster.call(LINEAGE, "state_scan", b"fm/", 10, b"")
    assert [k[:5] for k, _ in records] == [b"fm/" + LINEAGE.to_bytes(2, "little")]
    assert cluster.call(LINEAGE, "state_scan", b"fl/", 10, b"") == []
    assert bank.reg_release(blinded, b"loan 1").ok
    assert lin.fits(blinded, 100_000)
    assert cluster.call(LINEAGE, "state_scan", b"fm/", 10, b"") == []
