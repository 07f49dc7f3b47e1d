"""Every hard limit of TierChain, as named constants (units last in names).

One module, so that a reader sees every bound in one place and the native code
(``tierchain._hot``) reads the same values at import instead of keeping copies.
Relationships between limits are asserted at import: a change that breaks one
fails loudly the first time the package is imported.
"""

from __future__ import annotations

# --- transaction wire format (docs/wire-format.md) ---------------------------
wire_version = 1
tx_bytes_max = 8192
key_bytes_max = 64
tx_keys_max = 32  # declared read keys + declared write keys
payload_bytes_max = 4096
public_key_bytes = 32
signature_bytes = 64
digest_bytes = 32

# Fixed part of a body: version u8, chain_id u32, shard_id u16, op u16,
# sender 32, nonce u64, expires_at u64, n_read u8, n_write u8, payload_len u32.
tx_fixed_bytes = 1 + 4 + 2 + 2 + public_key_bytes + 8 + 8 + 1 + 1 + 4
tx_bytes_min = tx_fixed_bytes + signature_bytes

# --- batches of framed transactions (u32 length prefix each) -----------------
frame_prefix_bytes = 4
batch_txs_max = 1 << 16
batch_bytes_max = 64 << 20

# --- Merkle / hashing ------------------------------------------------------
merkle_leaves_max = 1 << 20

# --- sharding ----------------------------------------------------------------
shards_max = 1024

# The largest possible transaction must fit the size limit; otherwise a valid
# transaction could be unencodable, and the decoder would have two size rules.
assert (
    tx_fixed_bytes + tx_keys_max * (1 + key_bytes_max) + payload_bytes_max + signature_bytes <= tx_bytes_max
)
assert tx_keys_max <= 255 and key_bytes_max <= 255  # counts and lengths are u8 on the wire
assert payload_bytes_max < 1 << 32
assert batch_bytes_max >= batch_txs_max * tx_bytes_min
assert batch_bytes_max < 1 << 31  # offsets fit int64 trivially; frames fit u32 lengths
assert shards_max <= 1 << 16
