"""Every BLAKE3 derive-key context TierChain uses, in one place.

Each hash and each signed message lives in its own domain, so that no byte
string can mean two things (DESIGN.md invariant 5). Contexts follow BLAKE3's
advice: application, year, purpose. Never change one: it changes every id.
"""

from __future__ import annotations

TX_BODY = "tierchain 2026 tx body"  # tx id == the message a sender signs
BLOCK_HEADER = "tierchain 2026 block header"
STATE_ROOT = "tierchain 2026 interim state root"
WRITE_SET = "tierchain 2026 block write set"
SHARD_ROUTE = "tierchain 2026 shard route key"
KEYFILE = "tierchain 2026 key file"
SYNTHETIC_ACCOUNT = "tierchain 2026 synthetic benchmark account"  # genesis.synthetic_public_keys

ALL = (TX_BODY, BLOCK_HEADER, STATE_ROOT, WRITE_SET, SHARD_ROUTE, KEYFILE, SYNTHETIC_ACCOUNT)
assert len(set(ALL)) == len(ALL)

# Finance (tierchain.finance): ids of what ops create, and the registry's blinding key.
FIN_ORG_ID = "tierchain 2026 finance organization id"
FIN_OBJECT_ID = "tierchain 2026 finance object id"  # proposals, vouchers: (sender, nonce)
FIN_PIECE_ID = "tierchain 2026 finance piece id"  # (parent piece, index)
FIN_REGISTRY_KEY = "tierchain 2026 finance registry blinding key"  # from the consortium secret
FIN_FINANCING_REF = "tierchain 2026 finance financing ref"
FIN_DOCUMENT = "tierchain 2026 finance document fingerprint"
FINANCE = (FIN_ORG_ID, FIN_OBJECT_ID, FIN_PIECE_ID, FIN_REGISTRY_KEY, FIN_FINANCING_REF, FIN_DOCUMENT)
assert len(set(ALL + FINANCE)) == len(ALL + FINANCE)

# Authenticated state (tierchain.state_tree, ext/rust/src/smt.rs; verified by tierchain.proofs).
STATE_KEY = "tierchain 2026 state key"  # key hash: the path of a state key in the tree
STATE_VALUE = "tierchain 2026 state value"
STATE_LEAF = "tierchain 2026 state leaf"  # leaf(kh, vh)
STATE_NODE = "tierchain 2026 state node"  # internal node(left, right)
STATE_EMPTY = "tierchain 2026 state empty"  # the empty subtree
STATE_TREE = (STATE_KEY, STATE_VALUE, STATE_LEAF, STATE_NODE, STATE_EMPTY)
assert len(set(ALL + FINANCE + STATE_TREE)) == len(ALL + FINANCE + STATE_TREE)
