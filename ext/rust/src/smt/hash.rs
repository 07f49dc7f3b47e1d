//! The state tree's hashes: five BLAKE3 derive-key contexts (exported to
//! Python by `smt_constants` and checked against the crypto suite there),
//! their context keys derived once, and the bit order of a key hash.
//!
//! ```text
//! kh           = derive_key("tierchain 2026 state key",   key)
//! vh           = derive_key("tierchain 2026 state value", v)
//! leaf(kh, v)  = derive_key("tierchain 2026 state leaf",  kh || vh)
//! node(l, r)   = derive_key("tierchain 2026 state node",  l || r)
//! empty        = derive_key("tierchain 2026 state empty", "")
//! ```
//!
//! Bit `i` of `kh` (most significant bit of byte 0 first) picks the child at
//! depth `i`: [`bit`] reads it, `with_bit` builds a path.

use std::sync::OnceLock;

use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};

pub type Digest = [u8; 32];

pub const KEY_CONTEXT: &str = "tierchain 2026 state key";
pub const VALUE_CONTEXT: &str = "tierchain 2026 state value";
pub const LEAF_CONTEXT: &str = "tierchain 2026 state leaf";
pub const NODE_CONTEXT: &str = "tierchain 2026 state node";
pub const EMPTY_CONTEXT: &str = "tierchain 2026 state empty";

struct Keys {
    key: ContextKey,
    value: ContextKey,
    leaf: ContextKey,
    node: ContextKey,
    empty: Digest,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        key: hash_derive_key_context(KEY_CONTEXT),
        value: hash_derive_key_context(VALUE_CONTEXT),
        leaf: hash_derive_key_context(LEAF_CONTEXT),
        node: hash_derive_key_context(NODE_CONTEXT),
        empty: blake3::derive_key(EMPTY_CONTEXT, b""),
    })
}

fn keyed(key: &ContextKey, parts: &[&[u8]]) -> Digest {
    let mut h = blake3::Hasher::new_from_context_key(key);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

pub fn key_hash(key: &[u8]) -> Digest {
    keyed(&keys().key, &[key])
}

pub fn value_hash(value: &[u8]) -> Digest {
    keyed(&keys().value, &[value])
}

pub fn leaf_hash(kh: &Digest, vh: &Digest) -> Digest {
    keyed(&keys().leaf, &[kh, vh])
}

pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    keyed(&keys().node, &[left, right])
}

pub fn empty_hash() -> Digest {
    keys().empty
}

/// Bit `i` of a key hash, most significant bit of byte 0 first.
pub fn bit(h: &Digest, i: u16) -> bool {
    let i = usize::from(i);
    (h[i / 8] >> (7 - i % 8)) & 1 == 1
}

pub(super) fn with_bit(h: &Digest, i: u16, value: bool) -> Digest {
    let mut out = *h;
    let i = usize::from(i);
    let mask = 1u8 << (7 - i % 8);
    if value {
        out[i / 8] |= mask;
    } else {
        out[i / 8] &= !mask;
    }
    out
}
