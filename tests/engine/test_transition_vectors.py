"""The recorded state-transition run (tests/vectors/transition_v1.json) replays byte for byte.

The fixture was recorded once, before the engine was restructured (issue 15): same
transactions from the same genesis state must give identical receipts, tx roots,
receipt roots and state roots. A difference here is a behaviour change, never a
reason to re-record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tierchain.config import ChainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vectors"))
import make_transition_vectors as vectors

RECORDED = json.loads(vectors.FILE.read_text())


def _blocks(recorded: dict) -> list[tuple[int, list[bytes]]]:
    return [(b["timestamp_ms"], [bytes.fromhex(t) for t in b["txs"]]) for b in recorded["blocks"]]


def test_the_recorded_blocks_replay_to_the_recorded_receipts_and_roots():
    cfg = ChainConfig.from_toml(RECORDED["genesis_toml"])
    got = vectors.replay(cfg, _blocks(RECORDED))
    assert len(got) == len(RECORDED["expect"]) == 42
    for height, (g, want) in enumerate(zip(got, RECORDED["expect"], strict=True), start=1):
        assert g == want, f"block {height} differs from the recording"


def test_the_scenario_still_builds_the_recorded_transactions():
    """The clients (ops, finance builders) sign the same bytes: the inputs did not drift either."""
    cfg, blocks = vectors.scenario()
    assert cfg.to_toml() == RECORDED["genesis_toml"]
    assert blocks == _blocks(RECORDED)
