"""Every BLAKE3 derive-key context TierChain uses, in one place.

Each hash and each signed message lives in its own domain, so that no byte
string can mean two things (invariant 5 of shared/DESIGN.md, beside the repo).
Contexts follow BLAKE3's advice: application, year, purpose. Never change one:
it changes every id.
"""

from __future__ import annotations

# The light client (tierchain.proofs: stdlib + blake3, copied into clients as one file)
# defines the contexts it verifies with; they are imported here, not repeated.
from tierchain.proofs import (
    BLOCK_HEADER,
    STATE_EMPTY,
    STATE_KEY,
    STATE_LEAF,
    STATE_NODE,
    STATE_TREE,
    STATE_VALUE,
)

TX_BODY = "tierchain 2026 tx body"  # tx id == the message a sender signs
STATE_ROOT = "tierchain 2026 interim state root"
WRITE_SET = "tierchain 2026 block write set"
SHARD_ROUTE = "tierchain 2026 shard route key"
KEYFILE = "tierchain 2026 key file"
SYNTHETIC_ACCOUNT = "tierchain 2026 synthetic benchmark account"  # genesis.synthetic_public_keys

ALL = (TX_BODY, BLOCK_HEADER, STATE_ROOT, WRITE_SET, SHARD_ROUTE, KEYFILE, SYNTHETIC_ACCOUNT)
assert len(set(ALL)) == len(ALL)

# An app's contexts live with the app and are declared in its ``App.domains``
# (tierchain.engine.apps refuses one that repeats an engine context or another app's);
# finance's are in tierchain.apps.finance.codes.

# Authenticated state (tierchain.state.tree, ext/rust/src/smt/hash.rs; verified by tierchain.proofs):
# STATE_KEY, STATE_VALUE, STATE_LEAF, STATE_NODE, STATE_EMPTY = STATE_TREE, defined in tierchain.proofs.
assert STATE_TREE == (STATE_KEY, STATE_VALUE, STATE_LEAF, STATE_NODE, STATE_EMPTY)
assert len(set(ALL + STATE_TREE)) == len(ALL + STATE_TREE)
