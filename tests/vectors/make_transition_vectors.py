"""Generate tests/vectors/transition_v1.json: a recorded run of the state transition.

    PYTHONPATH=core:tests python tests/vectors/make_transition_vectors.py

The regression fixture for restructuring the engine (issue 15): the same
transactions from the same genesis state must give identical receipts and roots
before and after. The file holds the genesis (chain.toml text), then per block its
timestamp and signed transactions, and what today's engine computed from them:
the receipts (encoded), the tx root, the receipt root and the state root (sparse
Merkle tree, "smt"). Only the inputs are produced here by a scenario; the
expectations come from ``replay`` below, which is what tests/engine/test_transition_vectors.py
runs against the engine as it is at test time. So once recorded, this file must
never be regenerated to make a failing test pass: a difference is a behaviour
change.

The scenario is deterministic (fixed Ed25519 seeds; no clock, no randomness): the
finance lifecycle on a consortium of orgs (admission, anchors, confirm, split,
transfer, discount, pledge, default, registry financing, settlement after maturity,
refusals with named codes), then blocks of several account transfers at once, some
of them refused in the block (insufficient funds, unknown account).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finance_world import NODE, SECRET, MemLedger, admit_all, config, issue_voucher
from tierchain.apps import accounts
from tierchain.apps.finance import DocType
from tierchain.apps.finance.client import Finance
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair, suite_of
from tierchain.engine import apps, transition
from tierchain.state.commitment import commitment_of
from tierchain.wire.batch import decode_batch
from tierchain.wire.block import Receipt
from tierchain.wire.tx import frame

HERE = Path(__file__).resolve().parent
FILE = HERE / "transition_v1.json"
START_MS = 1_790_000_000_000
DAY_MS = 86_400_000
PAYERS = [KeyPair.from_seed(f"payer-{i}".encode().ljust(32, b"\0")) for i in range(6)]


class RecordingLedger(MemLedger):
    """MemLedger that keeps every block's timestamp and transactions."""

    def __init__(self, cfg: ChainConfig) -> None:
        super().__init__(cfg, timestamp_ms=START_MS)
        self.blocks: list[tuple[int, list[bytes]]] = []

    def block(self, txs: list[bytes]) -> list:
        self.timestamp_ms += 1_000
        self.blocks.append((self.timestamp_ms, list(txs)))
        return super().block(txs)


def scenario() -> tuple[ChainConfig, list[tuple[int, list[bytes]]]]:
    cfg = config(
        genesis_timestamp_ms=START_MS,
        genesis_accounts=config().genesis_accounts
        + tuple(GenesisAccount(p.public_key, (), 1_000 * (i + 1)) for i, p in enumerate(PAYERS)),
    )
    ledger = RecordingLedger(cfg)
    fin = Finance(ledger, SECRET)
    w = admit_all(fin)
    t1, t2, t3, core = w.p["Tier1"], w.p["Tier2"], w.p["Tier3"], w.p["CoreCo"]
    bank_a, bank_b = w.p["BankA"], w.p["BankB"]
    maturity = START_MS + 30 * DAY_MS

    vid, inv = issue_voucher(w, 1_000_000, maturity)
    keep1, down1 = t1.split(vid, [600_000, 400_000]).check().ids
    t1.transfer(down1, w.org("Tier2")).check()
    t2.accept(down1).check()
    keep2, down2 = t2.split(down1, [250_000, 150_000]).check().ids
    t2.transfer(down2, w.org("Tier3")).check()
    t3.accept(down2).check()
    t3.discount(down2, w.org("BankA"), 147_000).check()
    bank_a.accept(down2).check()
    assert t3.split(down2, [100_000, 50_000]).code.name == "NOT_HOLDER"
    assert bank_a.split(down2, [100_000, 50_000]).code.name == "PIECE_LOCKED"
    t2.pledge(keep2, w.org("BankB"), 200_000, maturity - DAY_MS).check()
    bank_b.accept(keep2).check()
    blinded = fin.blind_invoice(inv)
    bank_b.reg_finance(blinded, 100_000, b"loan-1").check()
    assert bank_b.reg_finance(blinded, 900_001, b"loan-2").code.name != "OK"
    bank_b.reg_release(blinded, b"loan-1").check()
    # A second voucher, defaulted: the pledgee takes the pledged piece.
    vid2, _ = issue_voucher(w, 50_000, START_MS + 2 * DAY_MS, tag=b"2")
    t1.pledge(vid2, w.org("BankB"), 40_000, START_MS + DAY_MS).check()
    bank_b.accept(vid2).check()
    ledger.timestamp_ms = START_MS + 3 * DAY_MS  # past vid2's maturity
    core.mark_overdue(vid2).check()
    assert core.mark_default(vid2).code.name == "NOT_MATURED"  # the grace period runs 30 days
    ledger.timestamp_ms = START_MS + 33 * DAY_MS
    core.mark_default(vid2).check()
    bank_b.default_transfer(vid2).check()
    # Settlement of the first voucher after its maturity.
    ledger.timestamp_ms = START_MS + 34 * DAY_MS  # past the first voucher's maturity too
    for result in core.settle(vid):
        result.check()
    assert core.settle(vid, [keep1])[0].code.name == "VOUCHER_SETTLED"
    assert t3.anchor(DocType.INVOICE, b"invoice 1").code.name != "OK"  # already anchored

    # Blocks of account transfers, several per block, some refused inside the block.
    stranger = KeyPair.from_seed(b"stranger".ljust(32, b"\0")).public_key
    nonces = {p.public_key: 0 for p in PAYERS}
    for round_ in range(4):
        txs = []
        for i, payer in enumerate(PAYERS):
            to = PAYERS[(i + round_ + 1) % len(PAYERS)].public_key
            amount = 400 * (round_ + 1) + i  # rounds 2-3 overdraw the poorer payers
            if (i + round_) % 5 == 4:
                to = stranger  # no such account
            tx = accounts.transfer(cfg.chain_id, payer.public_key, nonces[payer.public_key], to, amount)
            txs.append(payer.sign_tx(tx).encode())
            nonces[payer.public_key] += 1
        ledger.block(txs)
    reg = accounts.register(cfg.chain_id, NODE.public_key, ledger.nonce(NODE.public_key), stranger, ())
    ledger.block([NODE.sign_tx(reg).encode()])
    return cfg, ledger.blocks


def replay(cfg: ChainConfig, blocks: list[tuple[int, list[bytes]]]) -> list[dict]:
    """Per block: receipts and the three roots, from genesis, by the engine's state
    transition (``tierchain.engine.transition``) with the chain's commitment kept in memory."""
    suite, app_set = suite_of(cfg), apps.resolve(cfg.apps)
    commitment = commitment_of(cfg, suite=suite)
    state: dict[bytes, bytes] = {}
    transition.genesis(cfg, app_set=app_set, suite=suite, commitment=commitment, sink=state.update)
    out = []
    for height, (timestamp_ms, txs) in enumerate(blocks, start=1):
        batch = decode_batch(frame(txs), suite=suite)
        assert batch.ok.all()
        result = transition.transition(
            batch, state.get, height, timestamp_ms, app_set=app_set, suite=suite, commitment=commitment
        )
        transition.apply_writes(state, result.outcome.writes)
        receipts: list[Receipt] = result.outcome.receipts
        out.append(
            {
                "tx_root": result.roots.tx_root.hex(),
                "receipt_root": result.roots.receipt_root.hex(),
                "state_root": result.roots.state_root.hex(),
                "receipts": [r.encode().hex() for r in receipts],
            }
        )
    return out


def build() -> dict:
    cfg, blocks = scenario()
    return {
        "about": "tests/vectors/make_transition_vectors.py: inputs and the engine's outputs, recorded once",
        "genesis_toml": cfg.to_toml(),
        "blocks": [{"timestamp_ms": ts, "txs": [t.hex() for t in txs]} for ts, txs in blocks],
        "expect": replay(cfg, blocks),
    }


if __name__ == "__main__":
    if FILE.exists() and "--force" not in sys.argv:
        sys.exit(f"{FILE.name} exists: it is a recording, not regenerated (--force to overwrite)")
    FILE.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {FILE}")
