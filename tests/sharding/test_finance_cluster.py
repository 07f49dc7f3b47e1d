"""Finance on a 2-shard cluster (issue 20 item 5; docs/sharding.md "Replicated records").

The committee admits organizations on the primary shard by proposal and vote; the
replicator copies the consortium's records (``fk/ fo/ fp/ fq/``) onto the other shard;
then a whole voucher lifecycle — anchor, confirm, split, transfer and discount offers with
their acceptances, settlement — runs on the shard of its lineage, reading the copies.
Ordinary writes of replicated records anywhere but the primary, and the replication op
on the primary, are refused (``WRONG_SHARD``).
"""

from __future__ import annotations

import time

import pytest

from finance_cluster_world import BASE, COORD, KEYS, NODE, ORGS, N, ShardLedger, admit_by_vote
from finance_world import SECRET, kp
from tierchain.apps import xshard
from tierchain.apps.coordinator import Replicator, pack_entries
from tierchain.apps.finance import DocType
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance
from tierchain.engine.route import PRIMARY_SHARD, route_keys
from tierchain.errors import Reject
from tierchain.sharding.cluster import Cluster


def _invoice_on(fin: Finance, shard: int) -> bytes:
    """An invoice whose anchor and whose lineage (its blinded fingerprint's tag) are both on
    ``shard``: the confirmation reads the anchor itself (test_finance_claims.py: an anchor
    on another shard, claimed and carried)."""
    for i in range(1000):
        doc = b"invoice %d" % i
        fp = fin.document_fingerprint(doc)
        keys = [c.doc_key(DocType.INVOICE, fp), c.registry_key(fin.blind_invoice(fp))]
        if route_keys(keys, N).tolist() == [shard, shard]:
            return doc
    raise AssertionError("no invoice in 1000 tries")


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path / "cluster", BASE, NODE.seed, N) as cl:
        yield cl


def test_organizations_replicate_and_a_voucher_lifecycle_runs_on_its_lineage_shard(cluster):
    primary = Finance(ShardLedger(cluster, PRIMARY_SHARD), SECRET)
    admit_by_vote(cluster)
    core_id = primary.org_id("CoreCo")
    assert primary.org(core_id) is not None
    other = Finance(ShardLedger(cluster, 1), SECRET)
    assert other.org(core_id) is None  # not copied yet

    replicator = Replicator(cluster, COORD)
    report = replicator.sync(timeout=30)
    assert report.idle and report.records == 1 + 2 * len(ORGS) + len(ORGS) + 1  # fp, fo+fk each, fq each
    for name in ORGS:
        oid = primary.org_id(name)
        assert other.org(oid) == primary.org(oid) is not None
        assert other.key(KEYS[name].public_key) == primary.key(KEYS[name].public_key)
    assert other.params().threshold == 2
    assert cluster.call(1, "state_get", xshard.replica_cursor_key(1)) is not None

    # the voucher's lineage on the non-primary shard: every step reads the copies there
    fin = other
    p = {name: fin.party(KEYS[name]) for name in ORGS}
    doc = _invoice_on(fin, 1)
    inv = p["Tier1"].anchor(DocType.INVOICE, doc)
    assert inv.ok, inv.code
    maturity = int(time.time() * 1000) + 3000
    issued = p["CoreCo"].confirm(fin.org_id("Tier1"), 1_000_000, maturity, [(DocType.INVOICE, inv.id)])
    assert issued.ok, issued.code
    vid = issued.id
    assert int(route_keys([c.voucher_key(vid)], N)[0]) == 1
    split = p["Tier1"].split(vid, [600_000, 400_000])
    assert split.ok, split.code
    a, b = split.ids
    assert p["Tier1"].transfer(a, fin.org_id("Tier2")).ok
    assert p["Tier2"].accept(a).ok
    assert p["Tier1"].discount(b, fin.org_id("BankA"), 390_000).ok
    assert p["BankA"].accept(b).ok
    assert fin.piece(a).holder == fin.org_id("Tier2") and fin.piece(b).holder == fin.org_id("BankA")
    time.sleep(max(0, maturity - time.time() * 1000) / 1000 + 0.1)
    settled = p["CoreCo"].settle(vid)
    assert [r.code for r in settled] == [Reject.OK]
    assert fin.voucher(vid).status == c.VoucherStatus.SETTLED
    assert primary.voucher(vid) is None  # the lineage is on its shard alone

    # a key added on the primary reaches the lineage's shard with the next step
    new_key = kp("fin-cluster Tier1 second key")
    assert primary.party(KEYS["Tier1"]).add_key(new_key.public_key).ok
    assert fin.key(new_key.public_key) is None
    assert replicator.step().shipped == {1: 2}  # fk/ of the key, fo/ of its organization
    assert fin.key(new_key.public_key).org == fin.org_id("Tier1")


def test_replicated_records_are_written_on_the_primary_only(cluster):
    other = Finance(ShardLedger(cluster, 1), SECRET)
    # an ordinary write of a replicated record signed for shard 1: the scheduler refuses it
    code = other.party(NODE).propose_admit("Rogue", ("bank",), kp("rogue").public_key).code
    assert code == Reject.WRONG_SHARD
    # the replication op on the primary: refused too (it never overwrites the primary)
    org = (c.org_key(other.org_id("Rogue")), b"x")
    on_primary = xshard.replicate(cluster.chain_id(0), COORD.public_key, 0, 0, 1, [org])
    sub = cluster.submit([COORD.sign_tx(on_primary).encode()])
    assert sub.codes.tolist() == [Reject.WRONG_SHARD]
    # ... and on shard 1 from anyone but the coordinator: refused by the op
    by_node = xshard.replicate(cluster.chain_id(1), NODE.public_key, 0, 1, 1, [org])
    (receipt,) = cluster.submit([NODE.sign_tx(by_node).encode()]).wait(10)
    assert receipt.code == Reject.UNAUTHORIZED
    assert other.org(other.org_id("Rogue")) is None


def test_replicate_payloads_are_packed_within_the_limits():
    entries = [(b"fo/" + bytes([i]) * 16, bytes(100)) for i in range(70)]
    chunks = pack_entries(entries)
    assert [len(ch) for ch in chunks] == [30, 30, 10]
    big = [(b"fq/" + bytes([i]) * 16, bytes(1500)) for i in range(5)]
    assert [len(ch) for ch in pack_entries(big)] == [2, 2, 1]
    assert xshard.decode_entries(xshard.encode_entries(3, 9, [*big[:1], (b"fk/x", None)])) == (
        3,
        9,
        [*big[:1], (b"fk/x", None)],
    )
    with pytest.raises(ValueError):
        pack_entries([(b"fq/x", bytes(5000))])
