"""Shared set-up for the finance tests: a consortium of organizations on a ledger.

``MemLedger`` executes each submitted group of transactions as one block with
the real executor (``execute_block``) over a dict, with a block time the test
controls; ``Chain`` is the real engine. Both serve ``tierchain.apps.finance.Finance``.
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.finance import DocType
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance, Party
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.execute import execute_block, nonce_key
from tierchain.engine.genesis import genesis_writes
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame

CHAIN_ID = 9
SECRET = b"consortium secret for tests".ljust(32, b"\0")


def kp(name: str) -> KeyPair:
    return KeyPair.from_seed(name.encode().ljust(32, b"\0"))


NODE = KeyPair.from_seed(bytes(32))
COMMITTEE2 = kp("committee-2")
ORGS = {
    "CoreCo": ("core_enterprise",),
    "Tier1": ("supplier",),
    "Tier2": ("supplier",),
    "Tier3": ("supplier",),
    "BankA": ("bank",),
    "BankB": ("bank",),
    "Depot": ("warehouse",),
}
KEYS = {name: kp(name) for name in ORGS}
ORG = {name: c.org_id(name) for name in ORGS}


def config(**overrides) -> ChainConfig:
    fields = dict(
        chain_id=CHAIN_ID,
        block_interval_ms=5,
        genesis_accounts=(
            GenesisAccount(NODE.public_key, ("registrar", "committee"), 0),
            GenesisAccount(COMMITTEE2.public_key, ("committee",), 0),
        ),
    )
    fields.update(overrides)
    return ChainConfig(**fields)


class MemLedger:
    """Blocks executed in memory by the real executor; ``timestamp_ms`` is settable."""

    def __init__(self, cfg: ChainConfig, timestamp_ms: int = 1_000_000) -> None:
        self.chain_id = cfg.chain_id
        self.state: dict[bytes, bytes] = {k: v for k, v in genesis_writes(cfg).items() if v is not None}
        self.height, self.timestamp_ms = 0, timestamp_ms

    def state_get(self, key: bytes) -> bytes | None:
        return self.state.get(key)

    def nonce(self, public_key: bytes) -> int:
        raw = self.state.get(nonce_key(public_key))
        return 0 if raw is None else struct.unpack("<Q", raw)[0]

    def block(self, txs: list[bytes]) -> list:
        batch = decode_batch(frame(txs))
        assert batch.ok.all()
        self.height += 1
        result = execute_block(batch, self.state.get, self.height, self.timestamp_ms)
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
        return ORG[name]


def admit_all(fin: Finance) -> World:
    """Committee admits every org in ``ORGS`` (threshold 1: the proposal executes at once)."""
    node = fin.party(NODE)
    for name, roles in ORGS.items():
        r = node.propose_admit(name, roles, KEYS[name].public_key)
        assert r.ok, (name, r.code)
    return World(fin, {name: fin.party(KEYS[name]) for name in ORGS})


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
