"""Digital bills on a 2-shard cluster (issue 20 item 5: "a full voucher and a bill flow on a
2-shard cluster"; docs/finance_bills.md "Placement on a cluster").

A bill's ``bl/ bn/`` keys route by its id's first 8 bytes, the placement tag. Each shard is
its own chain (its own chain id and nonces) and the cluster refuses a tx whose write keys
are on another shard than the one it is signed for, so a drawer names the tag
(``codes.placement_tag``) that puts its bill on the shard it signs for. Here the committee
admits the organizations and votes the bill parameters on the primary, the replicator copies
them (finance's ``fk/ fo/ fp/ fq/``, bills' ``bq/ bv/``) to shard 1, and whole bill flows run
on shard 1, reading the copies: issue, acceptance, delivery, endorsement, discount,
rediscount, pledge and release, presentment and payment; and dishonour with recourse up the
chain. A bill tagged for the other shard is refused ``WRONG_SHARD``. Without a tag the id
and the payload are those of a chain without shards.

A bill citing a contract anchored on the other shard reads it through a claim carried to
its shard (docs/sharding.md "Documents across shards"); the other bills cite none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest

from finance_world import kp
from sharing_world import World, world
from tierchain.apps.bills import codes as c
from tierchain.apps.bills import days, lifecycle
from tierchain.apps.bills.client import Bills
from tierchain.apps.bills.codes import (
    BillKind,
    BillState,
    DishonourReason,
    EventKind,
    OfferKind,
    RefusalReason,
)
from tierchain.apps.coordinator import Replicator
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.courier import ClaimCourier
from tierchain.apps.sharing.ledger import code_named, scan_all
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import suite_for
from tierchain.engine import apps
from tierchain.engine.execute import nonce_key
from tierchain.engine.route import PRIMARY_SHARD, route_keys
from tierchain.errors import Reject
from tierchain.sharding.cluster import Cluster

N = 2
SHARD = 1  # the bills' shard: not the primary, so every replicated record read is a copy
BILLS_APPS = ("accounts", "xshard", "finance", "bills")
NODE = kp("bills-cluster-node")  # registrar and committee
COORD = kp("bills-cluster-coordinator")
ORGS = {
    "CoreCo": ("core_enterprise",),
    "Tier1": ("supplier",),
    "Tier2": ("supplier",),
    "BankA": ("bank",),
    "BankB": ("bank",),
}
KEYS = {name: kp("bills-cluster " + name) for name in ORGS}
BASE = ChainConfig(
    chain_id=94,
    block_interval_ms=2,
    sync="none",
    apps=BILLS_APPS,
    genesis_accounts=(
        GenesisAccount(NODE.public_key, ("registrar", "committee"), 0),
        GenesisAccount(COORD.public_key, ("coordinator",), 0),
    ),
)
FACE = 1_000_000


class ShardLedger:
    """One shard of a cluster as a bills ledger (``tierchain.apps.sharing.ledger.Ledger``):
    its chain id, reads and nonces on that shard; sends through the cluster's scheduler,
    which routes and refuses as for any client."""

    def __init__(self, cluster: Cluster, shard: int) -> None:
        self.cluster, self.shard = cluster, shard
        self.chain_id, self.suite = cluster.chain_id(shard), cluster.suite
        self.app_set = apps.resolve(cluster.base.apps)

    def state_get(self, key: bytes) -> bytes | None:
        return self.cluster.call(self.shard, "state_get", key)

    def state_scan(self, prefix: bytes, limit: int = 1000, after: bytes = b"") -> list[tuple[bytes, bytes]]:
        return self.cluster.call(self.shard, "state_scan", prefix, limit, after)

    def nonce(self, public_key: bytes) -> int:
        return self.cluster.call(self.shard, "nonce", public_key)

    def send(self, tx: bytes, timeout_s: float) -> tuple[object, object]:
        sub = self.cluster.submit([tx])
        if sub.codes[0]:
            return code_named(int(sub.codes[0]), self.app_set), None
        receipt = sub.wait(timeout_s)[0]
        return code_named(receipt.code, self.app_set), receipt


def bill_records(cluster: Cluster, shard: int) -> list[tuple[bytes, bytes]]:
    """Every bill and history record on ``shard``."""
    ledger = ShardLedger(cluster, shard)
    return [kv for prefix in (b"bl/", b"bn/") for kv in scan_all(ledger, prefix)]


def noon_offset_min(now_ms: int) -> int:
    """A time-zone offset (within the parameters' range) whose local time is about noon now:
    the test's bills mature today and are presented today, so no day may end meanwhile."""
    utc_min = now_ms // 60_000 % 1440
    off = (720 - utc_min) % 1440
    return off - 1440 if off > 840 else off


@dataclasses.dataclass
class Desk:
    cluster: Cluster
    primary: Bills
    bills: Bills  # on SHARD

    def __getitem__(self, name: str):
        return self.bills.party(KEYS[name])

    def org(self, name: str) -> bytes:
        return self.bills.org_id(name)

    def today(self) -> int:
        return self.bills.today(int(time.time() * 1000))


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("bills-cluster"), BASE, NODE.seed, N) as cluster:
        fin = Finance(ShardLedger(cluster, PRIMARY_SHARD))
        committee = fin.party(NODE)
        for name, roles in ORGS.items():  # threshold 1: each admission executes at once
            admitted = committee.propose_admit(name, roles, KEYS[name].public_key)
            assert admitted.ok, (name, admitted.code)
        primary = Bills(ShardLedger(cluster, PRIMARY_SHARD))
        # Bills that mature today (tenor 0, every weekday a business day), in a time zone
        # where it is about noon: presentment and payment run within the test.
        voted = primary.party(NODE).vote_params(
            min_tenor_days=0, weekend_mask=0, tz_offset_min=noon_offset_min(int(time.time() * 1000))
        )
        assert voted.ok, voted.code
        assert primary.params().version == 1
        bills = Bills(ShardLedger(cluster, SHARD))
        assert bills.params() == c.Params()  # the defaults: not copied yet
        report = Replicator(cluster, COORD).sync(timeout=30)
        # fo/ + fk/ and an executed proposal fq/ per organization, the parameters and their ballot
        assert report.idle and report.records == 3 * len(ORGS) + 2
        assert bills.params() == primary.params()
        for name in ORGS:
            assert Finance(bills.ledger).org(bills.org_id(name)) is not None
        yield Desk(cluster, primary, bills)


def test_a_bill_issued_with_a_placement_tag_runs_its_whole_life_on_that_shard(desk):
    core, t1, t2, a, b = (desk[n] for n in ("CoreCo", "Tier1", "Tier2", "BankA", "BankB"))
    today = desk.today()
    nonce = desk.bills.ledger.nonce(core.pk)
    # no documents (n = 0): an anchor lives on its own shard (docs/sharding.md "Placement")
    issued = core.issue(
        BillKind.COMMERCIAL, desk.org("CoreCo"), desk.org("Tier1"), FACE, today, shard=(SHARD, N)
    )
    assert issued.ok, issued.code
    bid = issued.id
    tag = c.placement_tag(SHARD, N, core.pk, nonce, suite=desk.bills.suite)
    assert bid == c.bill_id(core.pk, nonce, tag=tag, suite=desk.bills.suite) and bid[:8] == tag
    keys = [c.bill_key(bid), c.event_key(bid, 0)]
    assert route_keys(keys, N, desk.cluster.placement).tolist() == [SHARD, SHARD]  # the scheduler's rules

    core.accept(bid).check()
    t1.sign(bid).check()  # delivery
    t1.endorse(bid, desk.org("Tier2")).check()
    t2.sign(bid).check()
    t2.discount(bid, desk.org("BankA"), 985_000).check()
    a.sign(bid).check()
    a.rediscount(bid, desk.org("BankB"), 990_000).check()
    b.sign(bid).check()
    b.pledge(bid, desk.org("BankA"), 500_000).check()
    a.sign(bid).check()
    assert desk.bills.bill(bid).pledgee == desk.org("BankA")
    a.release(bid).check()
    b.present(bid).check()  # the due day is today
    core.pay(bid).check()

    bill = desk.bills.bill(bid)
    assert (bill.state, bill.holder, bill.due_day) == (BillState.PAID, desk.org("BankB"), today)
    assert [(t.kind, t.to) for t in bill.chain] == [
        (OfferKind.DELIVERY, desk.org("Tier1")),
        (OfferKind.ENDORSE, desk.org("Tier2")),
        (OfferKind.DISCOUNT, desk.org("BankA")),
        (OfferKind.REDISCOUNT, desk.org("BankB")),
    ]
    events = desk.bills.events(bid)
    assert len(events) == bill.events == 14  # issue, accept, 5 signatures, 4 offers, release, present, pay
    last = events[-1]
    assert (last.kind, last.party, last.amount) == (EventKind.PAID, desk.org("BankB"), FACE)
    assert desk.bills.lineage(bid)["payments"][0]["amount"] == FACE
    # the bill and its history are on its shard alone
    on_shard = dict(bill_records(desk.cluster, SHARD))
    assert c.bill_key(bid) in on_shard and all(c.event_key(bid, i) in on_shard for i in range(bill.events))
    assert bill_records(desk.cluster, PRIMARY_SHARD) == []
    assert desk.primary.bill(bid) is None


def test_dishonour_and_recourse_up_the_chain_on_the_bills_shard(desk):
    core, t1, t2, a = (desk[n] for n in ("CoreCo", "Tier1", "Tier2", "BankA"))
    issued = core.issue(
        BillKind.BANK, desk.org("BankA"), desk.org("Tier1"), FACE, desk.today(), shard=(SHARD, N)
    )
    assert issued.ok, issued.code
    bid = issued.id
    a.accept(bid).check()
    t1.sign(bid).check()
    t1.endorse(bid, desk.org("Tier2")).check()
    t2.sign(bid).check()
    t2.present(bid).check()
    a.dishonour(bid, DishonourReason.INSUFFICIENT_FUNDS).check()
    t2.claim(bid).check()  # from Tier1, the endorser
    assert desk.bills.bill(bid).claimed == desk.org("Tier1")
    t1.recourse_pay(bid).check()
    t1.claim(bid).check()  # from CoreCo, the drawer
    core.recourse_refuse(bid, RefusalReason.TRADE_DISPUTE).check()
    assert t1.claim(bid).code == c.BillReject.BILL_NO_PRIOR_PARTY
    a.pay(bid).check()  # the acceptor stays liable: it pays whoever holds the bill
    bill = desk.bills.bill(bid)
    assert (bill.state, bill.holder) == (BillState.PAID, desk.org("Tier1"))
    assert desk.primary.bill(bid) is None and bill_records(desk.cluster, PRIMARY_SHARD) == []


def test_a_bill_tagged_for_another_shard_is_refused_wrong_shard(desk):
    core = desk["CoreCo"]
    before = [bill_records(desk.cluster, s) for s in range(N)]
    nonce = desk.bills.ledger.nonce(core.pk)
    nonce0 = desk.primary.ledger.nonce(core.pk)
    other = c.placement_tag(PRIMARY_SHARD, N, core.pk, nonce, suite=desk.bills.suite)
    args = (BillKind.COMMERCIAL, desk.org("CoreCo"), desk.org("Tier1"), FACE, desk.today())
    refused = core.issue(*args, tag=other)  # signed for shard 1, its bill on the primary
    assert refused.code == Reject.WRONG_SHARD
    # ... and the converse: signed for the primary, tagged for shard 1
    assert desk.primary.party(KEYS["CoreCo"]).issue(*args, shard=(SHARD, N)).code == Reject.WRONG_SHARD
    # refused at admission: not even a nonce moved
    assert (desk.bills.ledger.nonce(core.pk), desk.primary.ledger.nonce(core.pk)) == (nonce, nonce0)
    assert [bill_records(desk.cluster, s) for s in range(N)] == before
    assert desk.bills.bill(c.bill_id(core.pk, nonce, tag=other, suite=desk.bills.suite)) is None


# --- ids and payloads, on one chain -------------------------------------------------------------

SENDER = bytes(range(32))
# H(BILL_ID, sender, nonce)[:16] for SENDER and nonce 7, as ids were before placement tags
OLD_IDS = {
    "ed25519-blake3": "7062bf33d05d8f4ce5d9dd6f20aeedde",
    "sm2-sm3": "cb5e31b01633a10a2938b33af7ffafa4",
}


@pytest.mark.parametrize("crypto", sorted(OLD_IDS))
def test_an_untagged_id_is_the_id_of_before_and_a_tag_replaces_its_first_8_bytes(crypto):
    suite = suite_for(crypto)
    old = suite.hash(c.BILL_ID, SENDER + (7).to_bytes(8, "little"))[:16]
    assert old.hex() == OLD_IDS[crypto]
    assert c.bill_id(SENDER, 7, suite=suite) == old
    assert c.bill_id(SENDER, 7, tag=old[:8], suite=suite) == old  # the default tag, named
    assert c.bill_id(SENDER, 7, tag=b"T" * 8, suite=suite) == b"T" * 8 + old[8:]
    with pytest.raises(ValueError):
        c.bill_id(SENDER, 7, tag=b"T" * 7, suite=suite)


@pytest.mark.parametrize("n", [1, 2, 3, 64])
def test_placement_tags_route_to_the_shard_asked_for(n):
    for shard in range(n):
        tag = c.placement_tag(shard, n, SENDER, 7)
        assert tag == c.placement_tag(shard, n, SENDER, 7)  # deterministic
        bid = c.bill_id(SENDER, 7, tag=tag)
        assert route_keys([c.bill_key(bid), c.event_key(bid, 3)], n, c.PLACEMENT).tolist() == [shard, shard]
    assert c.placement_tag(0, 1, SENDER, 7) == c.bill_id(SENDER, 7)[:8]  # one shard: the untagged id's tag
    for shard, n_shards in ((2, 2), (-1, 2)):
        with pytest.raises(ValueError):
            c.placement_tag(shard, n_shards, SENDER, 7)


MONDAY = days.days_from_civil(2026, 3, 2)


@pytest.fixture
def w() -> World:
    return world("ed25519-blake3", timestamp_ms=MONDAY * c.day_ms + 2 * 3_600_000, apps=BILLS_APPS)


def _state_but_nonces(w: World) -> dict[bytes, bytes]:
    nonces = {nonce_key(k.public_key) for k in w.keys.values()}
    return {k: v for k, v in w.ledger.state.items() if k not in nonces}


def test_the_issue_payload_takes_an_optional_8_byte_tag_and_no_other_length(w):
    bills = Bills(w.ledger)
    core = bills.party(w.keys["CoreCo"])
    args = (BillKind.COMMERCIAL, w.org("CoreCo"), w.org("Tier1"), FACE, dt.date(2026, 4, 30))
    nonce = w.ledger.nonce(core.pk)
    tx, bid = lifecycle.issue(
        w.ledger.chain_id, core.pk, core.org, nonce, *args[:4], days.days_from_civil(2026, 4, 30)
    )
    assert len(tx.payload) == lifecycle._ISSUE.size  # untagged: the payload of before
    untagged = core.issue(*args)
    assert untagged.ok and untagged.id == bid == c.bill_id(core.pk, nonce)
    tagged = core.issue(*args, tag=b"tag-0001")
    assert tagged.ok and tagged.id == b"tag-0001" + c.bill_id(core.pk, nonce + 1)[8:]
    assert bills.bill(tagged.id).face == FACE

    for extra in (b"1", b"1234567", b"123456789", b"12345678" * 2):  # anything but 0 or 8 bytes more
        nonce = w.ledger.nonce(core.pk)
        tx, _ = lifecycle.issue(
            w.ledger.chain_id, core.pk, core.org, nonce, *args[:4], days.days_from_civil(2026, 4, 30)
        )
        before = _state_but_nonces(w)
        signed = w.keys["CoreCo"].sign_tx(dataclasses.replace(tx, payload=tx.payload + extra))
        (receipt,) = w.ledger.block([signed.encode()])
        assert receipt.code == Reject.BAD_PAYLOAD, (len(extra), receipt.code)
        assert _state_but_nonces(w) == before and w.ledger.nonce(core.pk) == nonce + 1


def test_a_bill_cites_documents_anchored_on_another_shard_through_carried_claims(desk):
    """docs/sharding.md "Documents across shards": the drawer cites, where the contract is
    anchored, the contract for its bill's tag; the courier carries the citation; the issue
    on the bill's shard reads it."""
    home = 1 - SHARD
    fin = Finance(ShardLedger(desk.cluster, home))
    contract = next(
        fp
        for fp in (fin.document_fingerprint(b"bills contract %d" % i) for i in range(1000))
        if int(route_keys([fc.doc_key(fc.DocType.CONTRACT, fp)], N, desk.cluster.placement)[0]) == home
    )
    drawer = fin.party(KEYS["CoreCo"])
    assert drawer.anchor(fc.DocType.CONTRACT, fingerprint=contract).ok
    docs = [(fc.DocType.CONTRACT, contract)]
    core = desk["CoreCo"]
    tag = c.placement_tag(SHARD, N, core.pk, 0, suite=desk.bills.suite)
    args = (BillKind.COMMERCIAL, desk.org("CoreCo"), desk.org("Tier1"), FACE, desk.today())
    # read on the bill's shard, the anchor is not there
    assert core.issue(*args, docs=docs, tag=tag).code == FinanceReject.NO_SUCH_DOC
    assert (
        core.issue(*args, docs=docs, tag=tag, claimed=docs).code == FinanceReject.NO_SUCH_DOC
    )  # not carried
    assert drawer.claim(desk.org("Tier1"), docs, tag=tag).ok
    report = ClaimCourier(desk.cluster, COORD).step()
    assert report.carried == {SHARD: 1} and report.cleared == {home: 1} and not report.failed
    # cited for Tier1: a bill to Tier2 with it is refused
    to_t2 = (BillKind.COMMERCIAL, desk.org("CoreCo"), desk.org("Tier2"), FACE, desk.today())
    assert core.issue(*to_t2, docs=docs, tag=tag, claimed=docs).code == FinanceReject.CLAIM_MISMATCH
    issued = core.issue(*args, docs=docs, tag=tag, claimed=docs)
    assert issued.ok, issued.code
    assert issued.id[:8] == tag and desk.bills.bill(issued.id).docs == tuple(docs)
    assert fin.document(fc.DocType.CONTRACT, contract).voucher == fc.ZERO_ID  # cited, not bound
