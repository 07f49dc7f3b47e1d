"""Shared set-up for the finance tests: a consortium of organizations on a ledger.

``MemLedger`` executes each submitted group of transactions as one block with
the real executor (``execute_block``) over a dict, with a block time the test
controls; ``Chain`` is the real engine. Both serve ``tierchain.apps.finance.Finance``.

The world exists in each crypto suite: ``members(crypto)`` holds the consortium's keys
in that suite (the same seeds), ``config(crypto=...)`` its genesis, ``admit_all`` admits
the keys of the ledger's suite, and ``World.org`` names organizations by the ids of that
suite. ``NODE``, ``COMMITTEE2``, ``KEYS`` and ``ORG`` are the default suite's, as before
(the transition vectors are built from them).
"""

from __future__ import annotations

import dataclasses
import functools
import struct

from tierchain.apps.finance import DocType
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance, Party
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import DEFAULT_SUITE_NAME, KeyPair, suite_for, suite_of
from tierchain.engine.execute import execute_block, nonce_key
from tierchain.engine.genesis import genesis_writes
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

CHAIN_ID = 9
SECRET = b"consortium secret for tests".ljust(32, b"\0")


def kp(name: str, crypto: str = DEFAULT_SUITE_NAME) -> KeyPair:
    return suite_for(crypto).keys_from_seed(name.encode().ljust(32, b"\0"))


ORGS = {
    "CoreCo": ("core_enterprise",),
    "Tier1": ("supplier",),
    "Tier2": ("supplier",),
    "Tier3": ("supplier",),
    "BankA": ("bank",),
    "BankB": ("bank",),
    "Depot": ("warehouse",),
}
ORG = {name: c.org_id(name) for name in ORGS}  # the default suite's ids (World.org: the ledger's)


@dataclasses.dataclass(frozen=True)
class Members:
    """The consortium's keys in one crypto suite: the chain's node (registrar and committee),
    a second committee member, and the first key of each organization in ``ORGS``."""

    crypto: str
    node: KeyPair
    committee2: KeyPair
    keys: dict[str, KeyPair]


@functools.cache
def members(crypto: str = DEFAULT_SUITE_NAME) -> Members:
    keys = {name: kp(name, crypto) for name in ORGS}
    return Members(crypto, suite_for(crypto).keys_from_seed(bytes(32)), kp("committee-2", crypto), keys)


NODE = members().node
COMMITTEE2 = members().committee2
KEYS = dict(members().keys)


def config(**overrides) -> ChainConfig:
    """The consortium chain; ``crypto=`` (a ``ChainConfig`` field) picks the suite and its keys."""
    m = members(overrides.get("crypto", DEFAULT_SUITE_NAME))
    fields = dict(
        chain_id=CHAIN_ID,
        block_interval_ms=5,
        genesis_accounts=(
            GenesisAccount(m.node.public_key, ("registrar", "committee"), 0),
            GenesisAccount(m.committee2.public_key, ("committee",), 0),
        ),
    )
    fields.update(overrides)
    return ChainConfig(**fields)


class MemLedger:
    """Blocks executed in memory by the real executor, in the suite of ``cfg``;
    ``timestamp_ms`` is settable."""

    def __init__(self, cfg: ChainConfig, timestamp_ms: int = 1_000_000) -> None:
        self.chain_id, self.suite = cfg.chain_id, suite_of(cfg)
        self.state: dict[bytes, bytes] = {k: v for k, v in genesis_writes(cfg).items() if v is not None}
        self.height, self.timestamp_ms = 0, timestamp_ms

    def state_get(self, key: bytes) -> bytes | None:
        return self.state.get(key)

    def nonce(self, public_key: bytes) -> int:
        raw = self.state.get(nonce_key(public_key))
        return 0 if raw is None else struct.unpack("<Q", raw)[0]

    def block(self, txs: list[bytes]) -> list:
        batch = decode_batch(frame(txs), suite=self.suite)
        assert batch.ok.all()
        self.height += 1
        result = execute_block(batch, self.state.get, self.height, self.timestamp_ms, suite=self.suite)
        for k, v in result.writes.items():
            if v is None:
                self.state.pop(k, None)
            else:
                self.state[k] = v
        return result.receipts

    def send(self, tx: bytes, timeout_s: float) -> tuple[c.Code, object]:
        receipt = self.block([tx])[0]
        return c.reject_of(receipt.code), receipt


@dataclasses.dataclass
class World:
    fin: Finance
    p: dict[str, Party]

    def org(self, name: str) -> bytes:
        """The id of organization ``name`` on this world's ledger (a hash of its suite)."""
        return self.fin.org_id(name)


def admit_all(fin: Finance) -> World:
    """Committee admits every org in ``ORGS`` with its key in the ledger's suite (threshold 1:
    the proposal executes at once)."""
    m = members(fin.suite.name)
    node = fin.party(m.node)
    for name, roles in ORGS.items():
        r = node.propose_admit(name, roles, m.keys[name].public_key)
        assert r.ok, (name, r.code)
    return World(fin, {name: fin.party(m.keys[name]) for name in ORGS})


def issue_voucher(w: World, face: int, maturity_ms: int, tag: bytes = b"1") -> tuple[bytes, bytes]:
    """Tier1 anchors an invoice and a contract; CoreCo confirms a voucher to Tier1.

    Returns (voucher id, invoice fingerprint)."""
    t1 = w.p["Tier1"]
    inv = t1.anchor(DocType.INVOICE, b"invoice " + tag)
    con = t1.anchor(DocType.CONTRACT, b"contract " + tag)
    assert inv.ok and con.ok, (inv.code, con.code)
    r = w.p["CoreCo"].confirm(
        w.org("Tier1"), face, maturity_ms, [(DocType.INVOICE, inv.id), (DocType.CONTRACT, con.id)]
    )
    assert r.ok, r.code
    return r.id, inv.id


def live_total(fin: Finance, vid: bytes) -> int:
    return sum(p.amount for _, p in fin.live_pieces(vid))
