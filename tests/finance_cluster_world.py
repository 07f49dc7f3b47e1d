"""A 2-shard finance cluster shared by the sharding tests (tests/sharding/test_finance_cluster.py,
test_finance_claims.py): a committee of two, a coordinator, organizations admitted on the
primary by vote and copied to the other shard by the replicator, and ``ShardLedger``, one
shard as a finance client's ledger."""

from __future__ import annotations

from finance_world import SECRET, kp
from tierchain.apps.coordinator import Replicator
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.engine.route import PRIMARY_SHARD
from tierchain.sharding.cluster import Cluster

N = 2
NODE = kp("fin-cluster-node")
COMMITTEE2 = kp("fin-cluster-committee-2")
COORD = kp("fin-cluster-coordinator")
ORGS = {
    "CoreCo": ("core_enterprise",),
    "Tier1": ("supplier",),
    "Tier2": ("supplier",),
    "BankA": ("bank",),
    "Carrier": ("logistics",),
}
KEYS = {name: kp("fin-cluster " + name) for name in ORGS}
BASE = ChainConfig(
    chain_id=90,
    block_interval_ms=2,
    sync="none",
    genesis_accounts=(
        GenesisAccount(NODE.public_key, ("registrar", "committee"), 0),
        GenesisAccount(COMMITTEE2.public_key, ("committee",), 0),
        GenesisAccount(COORD.public_key, ("coordinator",), 0),
    ),
)


class ShardLedger:
    """One shard of a cluster as a finance ledger (``finance.client.Ledger``); its ``shard``
    tells the client where records placed by shard go."""

    def __init__(self, cluster: Cluster, shard: int) -> None:
        self.cluster, self.shard, self.chain_id = cluster, shard, cluster.chain_id(shard)

    def state_get(self, key: bytes) -> bytes | None:
        return self.cluster.call(self.shard, "state_get", key)

    def nonce(self, public_key: bytes) -> int:
        return self.cluster.call(self.shard, "nonce", public_key)

    def send(self, tx: bytes, timeout_s: float) -> tuple[c.Code, object]:
        sub = self.cluster.submit([tx])
        if sub.codes[0]:
            return c.reject_of(int(sub.codes[0])), None
        receipt = sub.wait(timeout_s)[0]
        return c.reject_of(receipt.code), receipt


def shard_finance(cluster: Cluster) -> list[Finance]:
    """A finance client on each shard."""
    return [Finance(ShardLedger(cluster, s), SECRET) for s in range(cluster.n_shards)]


def admit_by_vote(cluster: Cluster) -> None:
    """Threshold 2, then every organization of ``ORGS`` admitted on the primary by two votes."""
    primary = Finance(ShardLedger(cluster, PRIMARY_SHARD), SECRET)
    committee = primary.party(NODE)
    assert committee.propose_params(c.Params(threshold=2)).ok  # executes at once under threshold 1
    for name, roles in ORGS.items():
        proposed = committee.propose_admit(name, roles, KEYS[name].public_key)
        assert proposed.ok, (name, proposed.code)
        assert not primary.proposal(proposed.id).executed
        assert primary.party(COMMITTEE2).vote(proposed.id).ok
        assert primary.proposal(proposed.id).executed


def consortium(cluster: Cluster) -> Replicator:
    """The organizations admitted and copied to every shard; the replicator that did it."""
    admit_by_vote(cluster)
    replicator = Replicator(cluster, COORD)
    assert replicator.sync(timeout=30).idle
    return replicator
