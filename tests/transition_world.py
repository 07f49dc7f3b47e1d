"""The pure state transition run block after block, for tests that compare with it."""

from __future__ import annotations

from tierchain.crypto import ED25519_BLAKE3
from tierchain.engine import apps, transition
from tierchain.state.commitment import commitment_of
from tierchain.wire.batch import decode_batch
from tierchain.wire.tx import frame


def replay(cfg, blocks):
    """(genesis roots, transitions, final state) of ``blocks`` [(timestamp_ms, txs)] from
    genesis, state and commitment in memory: what a chain that commits them commits."""
    suite, app_set = ED25519_BLAKE3, apps.resolve(cfg.apps)
    commitment = commitment_of(cfg, suite=suite)
    state: dict[bytes, bytes] = {}
    genesis = transition.genesis(cfg, app_set=app_set, suite=suite, commitment=commitment, sink=state.update)
    out = []
    for height, (timestamp_ms, txs) in enumerate(blocks, start=1):
        t = transition.transition(
            decode_batch(frame(txs)),
            state.get,
            height,
            timestamp_ms,
            app_set=app_set,
            suite=suite,
            commitment=commitment,
        )
        transition.apply_writes(state, t.outcome.writes)
        out.append(t)
    return genesis, out, state
