//! The state tree's hashes: five contexts (exported to Python by
//! `smt_constants` and checked against the crypto suite there), one of two
//! constructions per tree ([`TreeHash`]), and the bit order of a key hash.
//!
//! ```text
//! kh           = H("tierchain 2026 state key",   key)
//! vh           = H("tierchain 2026 state value", v)
//! leaf(kh, v)  = H("tierchain 2026 state leaf",  kh || vh)
//! node(l, r)   = H("tierchain 2026 state node",  l || r)
//! empty        = H("tierchain 2026 state empty", "")
//! ```
//!
//! where `H(ctx, data)` is, per tree:
//!
//! * [`TreeHash::Blake3`] (the default): `blake3::derive_key(ctx, data)`,
//!   each context's key derived once;
//! * [`TreeHash::Sm3`] (the national suite): `SM3(pad64(u16be(len ctx) ||
//!   ctx) || data)`, `crate::crypto::sm::hash_one`, the SM3 state after the
//!   context block computed once per context and cloned per hash (a node
//!   hash costs two compressions: its 64 bytes and the padding).
//!
//! Bit `i` of `kh` (most significant bit of byte 0 first) picks the child at
//! depth `i`: [`bit`] reads it, `with_bit` builds a path.

use std::sync::OnceLock;

use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};
use sm3::{Digest as _, Sm3};

use crate::crypto::sm;

pub type Digest = [u8; 32];

pub const KEY_CONTEXT: &str = "tierchain 2026 state key";
pub const VALUE_CONTEXT: &str = "tierchain 2026 state value";
pub const LEAF_CONTEXT: &str = "tierchain 2026 state leaf";
pub const NODE_CONTEXT: &str = "tierchain 2026 state node";
pub const EMPTY_CONTEXT: &str = "tierchain 2026 state empty";

/// The hash construction of one tree: fixed when the tree is created (its
/// roots and records depend on it), passed to everything that hashes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum TreeHash {
    /// BLAKE3 derive-key with each context (the original tree: its roots
    /// never change).
    #[default]
    Blake3,
    /// The national suite's domain-separated SM3 with the same contexts.
    Sm3,
}

struct Blake3Keys {
    key: ContextKey,
    value: ContextKey,
    leaf: ContextKey,
    node: ContextKey,
    empty: Digest,
}

fn blake3_keys() -> &'static Blake3Keys {
    static KEYS: OnceLock<Blake3Keys> = OnceLock::new();
    KEYS.get_or_init(|| Blake3Keys {
        key: hash_derive_key_context(KEY_CONTEXT),
        value: hash_derive_key_context(VALUE_CONTEXT),
        leaf: hash_derive_key_context(LEAF_CONTEXT),
        node: hash_derive_key_context(NODE_CONTEXT),
        empty: blake3::derive_key(EMPTY_CONTEXT, b""),
    })
}

/// The SM3 states after each context's prefix block.
struct Sm3States {
    key: Sm3,
    value: Sm3,
    leaf: Sm3,
    node: Sm3,
    empty: Digest,
}

fn sm3_states() -> &'static Sm3States {
    static STATES: OnceLock<Sm3States> = OnceLock::new();
    STATES.get_or_init(|| {
        let state = |ctx: &str| sm::context_state(ctx).expect("a short context");
        Sm3States {
            key: state(KEY_CONTEXT),
            value: state(VALUE_CONTEXT),
            leaf: state(LEAF_CONTEXT),
            node: state(NODE_CONTEXT),
            empty: sm::hash_one(EMPTY_CONTEXT, b"").expect("a short context"),
        }
    })
}

fn blake3_keyed(key: &ContextKey, a: &[u8], b: &[u8]) -> Digest {
    let mut h = blake3::Hasher::new_from_context_key(key);
    h.update(a);
    h.update(b);
    *h.finalize().as_bytes()
}

fn sm3_from(state: &Sm3, a: &[u8], b: &[u8]) -> Digest {
    let mut h = state.clone();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

impl TreeHash {
    pub const ALL: [TreeHash; 2] = [TreeHash::Blake3, TreeHash::Sm3];

    /// `"blake3"` or `"sm3"` (the names the bindings take).
    pub fn from_name(name: &str) -> Option<TreeHash> {
        TreeHash::ALL.into_iter().find(|h| h.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            TreeHash::Blake3 => "blake3",
            TreeHash::Sm3 => "sm3",
        }
    }

    pub fn key_hash(self, key: &[u8]) -> Digest {
        match self {
            TreeHash::Blake3 => blake3_keyed(&blake3_keys().key, key, &[]),
            TreeHash::Sm3 => sm3_from(&sm3_states().key, key, &[]),
        }
    }

    pub fn value_hash(self, value: &[u8]) -> Digest {
        match self {
            TreeHash::Blake3 => blake3_keyed(&blake3_keys().value, value, &[]),
            TreeHash::Sm3 => sm3_from(&sm3_states().value, value, &[]),
        }
    }

    pub fn leaf_hash(self, kh: &Digest, vh: &Digest) -> Digest {
        match self {
            TreeHash::Blake3 => blake3_keyed(&blake3_keys().leaf, kh, vh),
            TreeHash::Sm3 => sm3_from(&sm3_states().leaf, kh, vh),
        }
    }

    pub fn node_hash(self, left: &Digest, right: &Digest) -> Digest {
        match self {
            TreeHash::Blake3 => blake3_keyed(&blake3_keys().node, left, right),
            TreeHash::Sm3 => sm3_from(&sm3_states().node, left, right),
        }
    }

    pub fn empty_hash(self) -> Digest {
        match self {
            TreeHash::Blake3 => blake3_keys().empty,
            TreeHash::Sm3 => sm3_states().empty,
        }
    }
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
