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

use crate::crypto::blake3x8::{self, Mode};
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

impl Blake3Keys {
    fn of(&self, ctx: Ctx) -> &ContextKey {
        match ctx {
            Ctx::Key => &self.key,
            Ctx::Value => &self.value,
            Ctx::Leaf => &self.leaf,
            Ctx::Node => &self.node,
        }
    }
}

impl Sm3States {
    fn of(&self, ctx: Ctx) -> &Sm3 {
        match ctx {
            Ctx::Key => &self.key,
            Ctx::Value => &self.value,
            Ctx::Leaf => &self.leaf,
            Ctx::Node => &self.node,
        }
    }
}

/// The context of a batch of hashes ([`TreeHash::hash_many`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    Key,
    Value,
    Leaf,
    Node,
}

/// Batches smaller than this are hashed one by one (most of an eight-lane
/// call's lanes would be padding).
const LANES_WORTH_IT: usize = 3;

/// Compressions BLAKE3 takes for a message of `len` bytes, if the eight-lane
/// hasher takes it (0: too long for it).
fn blocks_of(len: usize) -> usize {
    match len {
        0..=blake3x8::BLOCK_LEN => 1,
        n if n <= blake3x8::SHORT_MAX => 2,
        _ => 0,
    }
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
        self.one(Ctx::Key, key, &[])
    }

    pub fn value_hash(self, value: &[u8]) -> Digest {
        self.one(Ctx::Value, value, &[])
    }

    pub fn leaf_hash(self, kh: &Digest, vh: &Digest) -> Digest {
        self.one(Ctx::Leaf, kh, vh)
    }

    pub fn node_hash(self, left: &Digest, right: &Digest) -> Digest {
        self.one(Ctx::Node, left, right)
    }

    /// The hash of `a || b` in context `ctx`, one at a time.
    fn one(self, ctx: Ctx, a: &[u8], b: &[u8]) -> Digest {
        match self {
            TreeHash::Blake3 => blake3_keyed(blake3_keys().of(ctx), a, b),
            TreeHash::Sm3 => sm3_from(sm3_states().of(ctx), a, b),
        }
    }

    /// `out[i]` = message `i` hashed in context `ctx`: the digests
    /// [`Self::key_hash`] and the others give one by one. A BLAKE3 tree
    /// hashes the short messages (at most 128 bytes) eight at a time,
    /// grouped by block count; an SM3 tree, and long messages, one by one.
    pub fn hash_many(self, ctx: Ctx, messages: &[&[u8]], out: &mut [Digest]) {
        assert_eq!(messages.len(), out.len(), "one output per message");
        if self != TreeHash::Blake3 || messages.len() < LANES_WORTH_IT {
            for (m, o) in messages.iter().zip(out.iter_mut()) {
                *o = self.one(ctx, m, &[]);
            }
            return;
        }
        let mode = Mode::DeriveKey(blake3_keys().of(ctx));
        let fill = |m: &[u8], buf: &mut [u8]| {
            buf[..m.len()].copy_from_slice(m);
            m.len()
        };
        // Most batches are of one block count (fixed-size keys, small values).
        let first = blocks_of(messages[0].len());
        if first != 0 && messages.iter().all(|m| blocks_of(m.len()) == first) {
            blake3x8::hash_many(mode, messages.len(), |i, b| fill(messages[i], b), out);
            return;
        }
        for class in [1, 2] {
            let at: Vec<usize> = (0..messages.len())
                .filter(|&i| blocks_of(messages[i].len()) == class)
                .collect();
            let mut got = vec![[0u8; 32]; at.len()];
            blake3x8::hash_many(mode, at.len(), |k, b| fill(messages[at[k]], b), &mut got);
            for (&i, h) in at.iter().zip(got) {
                out[i] = h;
            }
        }
        for (m, o) in messages.iter().zip(out.iter_mut()) {
            if blocks_of(m.len()) == 0 {
                *o = self.one(ctx, m, &[]);
            }
        }
    }

    /// `out[i]` = `pairs[i][0] || pairs[i][1]` hashed in context `ctx` (a
    /// leaf's `kh, vh` or a node's `left, right`): [`Self::leaf_hash`] or
    /// [`Self::node_hash`] of each, BLAKE3's eight at a time.
    pub fn hash_pairs(self, ctx: Ctx, pairs: &[[Digest; 2]], out: &mut [Digest]) {
        assert_eq!(pairs.len(), out.len(), "one output per pair");
        if self != TreeHash::Blake3 || pairs.len() < LANES_WORTH_IT {
            for (p, o) in pairs.iter().zip(out.iter_mut()) {
                *o = self.one(ctx, &p[0], &p[1]);
            }
            return;
        }
        let mode = Mode::DeriveKey(blake3_keys().of(ctx));
        blake3x8::hash_many(
            mode,
            pairs.len(),
            |i, buf| {
                buf[..32].copy_from_slice(&pairs[i][0]);
                buf[32..64].copy_from_slice(&pairs[i][1]);
                64
            },
            out,
        );
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
