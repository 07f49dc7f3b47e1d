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

ALL = (TX_BODY, BLOCK_HEADER, STATE_ROOT, WRITE_SET, SHARD_ROUTE, KEYFILE)
assert len(set(ALL)) == len(ALL)
