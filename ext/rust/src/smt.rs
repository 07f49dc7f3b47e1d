//! Authenticated state: a binary sparse Merkle tree with path compression,
//! versioned by block height, updated once per block in one batch.
//!
//! # Shape
//!
//! Every state key is hashed to 256 bits (`kh = derive_key("tierchain 2026
//! state key", key)`); bit `i` of `kh` (most significant bit of byte 0 first)
//! picks the child at depth `i`. A subtree holding exactly one key is that
//! key's leaf, placed at the shallowest depth where the leaf's path is unique;
//! a subtree holding none is the empty subtree. So the tree is a function of
//! the key/value set alone: the root does not depend on insertion order, on
//! how updates were batched, or on history (a deleted key's leaf disappears
//! and the sibling leaf, if alone, moves back up).
//!
//! ```text
//! empty        = derive_key("tierchain 2026 state empty", "")
//! leaf(kh, v)  = derive_key("tierchain 2026 state leaf",  kh || vh)
//!                vh = derive_key("tierchain 2026 state value", v)
//! node(l, r)   = derive_key("tierchain 2026 state node",  l || r)
//! ```
//!
//! Three contexts keep leaves, internal nodes and the empty subtree in
//! separate domains (and away from the RFC 6962 trees of `merkle.rs`). With
//! `n` random keys a leaf sits at depth about `log2 n + 1`, so a proof carries
//! about that many sibling hashes (~24 at 10M keys).
//!
//! # Storage (a key/value store the caller owns, LMDB on a node)
//!
//! * node key: `version u64 BE || depth u16 BE || path` where `path` is the
//!   first `depth` bits of the key hashes below the node, in `ceil(depth/8)`
//!   bytes, unused low bits zero. Version-first keys make each block's new
//!   nodes one append run.
//! * internal node: `0x01 || left hash || right hash || left version u64 LE
//!   || right version u64 LE` (81 bytes); an empty child has the empty hash
//!   and version 0. A child's node key is (its version, depth + 1, path + bit).
//! * leaf node: `0x02 || kh || vh || value` (the value is kept so historic
//!   reads and proofs need only the tree).
//!
//! A node is never changed in place: a block writes every node on the paths
//! of its written keys anew at its own version and lists the nodes it
//! replaced as *stale* (the caller records them by the version that made them
//! stale; pruning deletes nodes stale since a height no longer retained).
//!
//! # Batch update without a callback per node
//!
//! [`Updater`] is a small state machine: it asks for all the nodes of one tree
//! level at a time ([`Updater::wanted`] / [`Updater::supply`]), so the caller
//! fetches a whole level in one cursor pass, then [`Updater::finish`] computes
//! the new nodes and root from memory. Where a batch deletes keys, the
//! siblings along the way are fetched too: a subtree left with one leaf must
//! pull that leaf up.

use std::collections::HashMap;
use std::sync::OnceLock;

use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};

pub type Digest = [u8; 32];

pub const KEY_CONTEXT: &str = "tierchain 2026 state key";
pub const VALUE_CONTEXT: &str = "tierchain 2026 state value";
pub const LEAF_CONTEXT: &str = "tierchain 2026 state leaf";
pub const NODE_CONTEXT: &str = "tierchain 2026 state node";
pub const EMPTY_CONTEXT: &str = "tierchain 2026 state empty";

pub const TAG_INTERNAL: u8 = 0x01;
pub const TAG_LEAF: u8 = 0x02;
pub const INTERNAL_BYTES: usize = 1 + 32 + 32 + 8 + 8;
pub const LEAF_HEAD_BYTES: usize = 1 + 32 + 32;
/// Deepest possible leaf: two distinct 256-bit hashes differ by bit 255.
pub const DEPTH_MAX: u16 = 256;

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

fn with_bit(h: &Digest, i: u16, value: bool) -> Digest {
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

/// Storage key of the node at (`depth`, first `depth` bits of `path`)
/// written at `version`.
pub fn node_key(version: u64, depth: u16, path: &Digest) -> Vec<u8> {
    assert!(depth <= DEPTH_MAX);
    let n = usize::from(depth).div_ceil(8);
    let mut k = Vec::with_capacity(10 + n);
    k.extend_from_slice(&version.to_be_bytes());
    k.extend_from_slice(&depth.to_be_bytes());
    k.extend_from_slice(&path[..n]);
    let rem = depth % 8;
    if rem != 0 {
        let last = k.len() - 1;
        k[last] &= 0xffu8 << (8 - rem);
    }
    k
}

/// A child reference inside an internal node (or the root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child {
    pub hash: Digest,
    pub version: u64,
}

impl Child {
    pub fn empty() -> Child {
        Child {
            hash: empty_hash(),
            version: 0,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.hash == empty_hash()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Internal {
        left: Child,
        right: Child,
    },
    Leaf {
        kh: Digest,
        vh: Digest,
        value: Vec<u8>,
    },
}

impl Node {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Node::Internal { left, right } => {
                let mut out = Vec::with_capacity(INTERNAL_BYTES);
                out.push(TAG_INTERNAL);
                out.extend_from_slice(&left.hash);
                out.extend_from_slice(&right.hash);
                out.extend_from_slice(&left.version.to_le_bytes());
                out.extend_from_slice(&right.version.to_le_bytes());
                out
            }
            Node::Leaf { kh, vh, value } => {
                let mut out = Vec::with_capacity(LEAF_HEAD_BYTES + value.len());
                out.push(TAG_LEAF);
                out.extend_from_slice(kh);
                out.extend_from_slice(vh);
                out.extend_from_slice(value);
                out
            }
        }
    }

    pub fn decode(data: &[u8]) -> Result<Node, SmtError> {
        let d32 = |s: &[u8]| -> Digest { s.try_into().expect("32-byte slice") };
        let u64le = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8-byte slice"));
        match data.first() {
            Some(&TAG_INTERNAL) if data.len() == INTERNAL_BYTES => Ok(Node::Internal {
                left: Child {
                    hash: d32(&data[1..33]),
                    version: u64le(&data[65..73]),
                },
                right: Child {
                    hash: d32(&data[33..65]),
                    version: u64le(&data[73..81]),
                },
            }),
            Some(&TAG_LEAF) if data.len() >= LEAF_HEAD_BYTES => {
                let (kh, vh, value) = (d32(&data[1..33]), d32(&data[33..65]), &data[65..]);
                if value_hash(value) != vh {
                    return Err(SmtError::BadNode(
                        "leaf value does not match its hash".into(),
                    ));
                }
                Ok(Node::Leaf {
                    kh,
                    vh,
                    value: value.to_vec(),
                })
            }
            _ => Err(SmtError::BadNode(format!(
                "node of {} bytes with tag {:?}",
                data.len(),
                data.first()
            ))),
        }
    }

    pub fn hash(&self) -> Digest {
        match self {
            Node::Internal { left, right } => node_hash(&left.hash, &right.hash),
            Node::Leaf { kh, vh, .. } => leaf_hash(kh, vh),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmtError {
    /// A node the tree refers to is not in the store (damaged or pruned).
    MissingNode(Vec<u8>),
    /// Stored bytes that are not a node, or a node that contradicts its parent.
    BadNode(String),
    /// Two updates for the same key in one batch.
    DuplicateKey,
    /// `supply` got a different number of values than `wanted` returned.
    Protocol(String),
}

impl std::fmt::Display for SmtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtError::MissingNode(k) => write!(f, "state tree node missing: {}", hex(k)),
            SmtError::BadNode(m) => write!(f, "damaged state tree node: {m}"),
            SmtError::DuplicateKey => write!(f, "a key is written twice in one batch"),
            SmtError::Protocol(m) => write!(f, "state tree update protocol: {m}"),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One write of a batch: `value` `None` deletes the key.
#[derive(Clone, Debug)]
pub struct Update {
    pub kh: Digest,
    pub vh: Digest,
    pub value: Option<Vec<u8>>,
}

impl Update {
    pub fn new(key: &[u8], value: Option<&[u8]>) -> Update {
        Update {
            kh: key_hash(key),
            vh: value.map_or([0; 32], value_hash),
            value: value.map(<[u8]>::to_vec),
        }
    }
}

/// A subtree after the update.
enum Sub {
    Empty,
    /// A leaf not yet given a place (its depth is decided by its parent).
    Leaf {
        kh: Digest,
        vh: Digest,
        value: Vec<u8>,
    },
    /// An untouched subtree (old node), or one written in this batch.
    Placed {
        child: Child,
        fresh: bool,
    },
}

/// The result of one batch: the new root, the nodes to write (sorted by
/// key), and the keys of the nodes this batch replaced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub root: Option<Child>,
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    pub stale: Vec<Vec<u8>>,
}

struct Want {
    key: Vec<u8>,
    depth: u16,
    path: Digest,
    lo: usize,
    hi: usize,
    descend: bool,
}

/// One batch update (see the module docs for the protocol).
pub struct Updater {
    version: u64,
    root: Child,
    updates: Vec<Update>,
    deletes_prefix: Vec<usize>, // deletes_prefix[i] = deletions among updates[..i]
    cache: HashMap<Vec<u8>, Node>,
    level: Vec<Want>,
    out: Outcome,
}

impl Updater {
    /// `root` is the tree to update; new nodes are written at `version`.
    pub fn new(root: Child, version: u64, mut updates: Vec<Update>) -> Result<Updater, SmtError> {
        updates.sort_unstable_by_key(|a| a.kh);
        if updates.windows(2).any(|w| w[0].kh == w[1].kh) {
            return Err(SmtError::DuplicateKey);
        }
        let mut deletes_prefix = Vec::with_capacity(updates.len() + 1);
        deletes_prefix.push(0);
        for u in &updates {
            let last = *deletes_prefix.last().expect("non-empty");
            deletes_prefix.push(last + usize::from(u.value.is_none()));
        }
        let mut level = Vec::new();
        if !root.is_empty() && !updates.is_empty() {
            let path = [0u8; 32];
            level.push(Want {
                key: node_key(root.version, 0, &path),
                depth: 0,
                path,
                lo: 0,
                hi: updates.len(),
                descend: true,
            });
        }
        Ok(Updater {
            version,
            root,
            updates,
            deletes_prefix,
            cache: HashMap::new(),
            level,
            out: Outcome::default(),
        })
    }

    /// Node keys to fetch next (empty when everything needed is loaded).
    pub fn wanted(&self) -> Vec<Vec<u8>> {
        self.level.iter().map(|w| w.key.clone()).collect()
    }

    /// The stored bytes of each key of the last [`Self::wanted`], in order.
    pub fn supply(&mut self, values: Vec<Option<Vec<u8>>>) -> Result<(), SmtError> {
        if values.len() != self.level.len() {
            return Err(SmtError::Protocol(format!(
                "{} values for {} wanted nodes",
                values.len(),
                self.level.len()
            )));
        }
        let level = std::mem::take(&mut self.level);
        for (want, value) in level.into_iter().zip(values) {
            let Some(raw) = value else {
                return Err(SmtError::MissingNode(want.key));
            };
            let node = Node::decode(&raw)?;
            if want.descend
                && let Node::Internal { left, right } = &node
            {
                if want.depth >= DEPTH_MAX - 1 {
                    return Err(SmtError::BadNode("internal node at the last depth".into()));
                }
                let mid = self.split(want.lo, want.hi, want.depth);
                let has_delete = self.deletes_prefix[want.hi] > self.deletes_prefix[want.lo];
                for (child, side, lo, hi) in
                    [(left, false, want.lo, mid), (right, true, mid, want.hi)]
                {
                    if child.is_empty() || (lo == hi && !has_delete) {
                        continue;
                    }
                    let path = with_bit(&want.path, want.depth, side);
                    self.level.push(Want {
                        key: node_key(child.version, want.depth + 1, &path),
                        depth: want.depth + 1,
                        path,
                        lo,
                        hi,
                        descend: lo < hi,
                    });
                }
            }
            self.cache.insert(want.key, node);
        }
        Ok(())
    }

    fn split(&self, lo: usize, hi: usize, depth: u16) -> usize {
        lo + self.updates[lo..hi].partition_point(|u| !bit(&u.kh, depth))
    }

    /// Computes the new tree. Call when [`Self::wanted`] is empty.
    pub fn finish(mut self) -> Result<Outcome, SmtError> {
        if !self.level.is_empty() {
            return Err(SmtError::Protocol(
                "finish before every node was supplied".into(),
            ));
        }
        let n = self.updates.len();
        let root = self.root;
        let sub = self.build(root, 0, [0u8; 32], 0, n)?;
        let root = match sub {
            Sub::Empty => Child::empty(),
            Sub::Leaf { kh, vh, value } => self.place_leaf(0, kh, vh, value),
            Sub::Placed { child, .. } => child,
        };
        self.out.root = Some(root);
        self.out.puts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(self.out)
    }

    fn build(
        &mut self,
        ex: Child,
        depth: u16,
        path: Digest,
        lo: usize,
        hi: usize,
    ) -> Result<Sub, SmtError> {
        if lo == hi {
            return Ok(if ex.is_empty() {
                Sub::Empty
            } else {
                Sub::Placed {
                    child: ex,
                    fresh: false,
                }
            });
        }
        if ex.is_empty() {
            return self.fresh(depth, path, lo, hi, None);
        }
        let key = node_key(ex.version, depth, &path);
        let node = self
            .cache
            .remove(&key)
            .ok_or_else(|| SmtError::MissingNode(key.clone()))?;
        if node.hash() != ex.hash {
            return Err(SmtError::BadNode(format!(
                "node {} does not match its parent's hash",
                hex(&key)
            )));
        }
        self.out.stale.push(key);
        match node {
            Node::Leaf { kh, vh, value } => self.fresh(depth, path, lo, hi, Some((kh, vh, value))),
            Node::Internal { left, right } => {
                let mid = self.split(lo, hi, depth);
                let lpath = with_bit(&path, depth, false);
                let rpath = with_bit(&path, depth, true);
                let l = self.build(left, depth + 1, lpath, lo, mid)?;
                let r = self.build(right, depth + 1, rpath, mid, hi)?;
                self.combine(depth, path, l, r)
            }
        }
    }

    /// The subtree at (`depth`, `path`) holding `old` (a leaf, if any) merged
    /// with `updates[lo..hi]`, built from scratch.
    fn fresh(
        &mut self,
        depth: u16,
        path: Digest,
        lo: usize,
        hi: usize,
        old: Option<(Digest, Digest, Vec<u8>)>,
    ) -> Result<Sub, SmtError> {
        // The old leaf survives unless the batch writes its key.
        let old = old.filter(|(kh, _, _)| {
            self.updates[lo..hi]
                .binary_search_by(|u| u.kh.cmp(kh))
                .is_err()
        });
        let puts = (lo..hi)
            .filter(|&i| self.updates[i].value.is_some())
            .count()
            + usize::from(old.is_some());
        match puts {
            0 => return Ok(Sub::Empty),
            1 => {
                if let Some((kh, vh, value)) = old {
                    return Ok(Sub::Leaf { kh, vh, value });
                }
                let u = (lo..hi)
                    .map(|i| &self.updates[i])
                    .find(|u| u.value.is_some())
                    .expect("one put");
                return Ok(Sub::Leaf {
                    kh: u.kh,
                    vh: u.vh,
                    value: u.value.clone().expect("a put"),
                });
            }
            _ => {}
        }
        if depth >= DEPTH_MAX {
            return Err(SmtError::DuplicateKey);
        }
        let mid = self.split(lo, hi, depth);
        let (lold, rold) = match old {
            Some(leaf) if bit(&leaf.0, depth) => (None, Some(leaf)),
            Some(leaf) => (Some(leaf), None),
            None => (None, None),
        };
        let l = self.fresh(depth + 1, with_bit(&path, depth, false), lo, mid, lold)?;
        let r = self.fresh(depth + 1, with_bit(&path, depth, true), mid, hi, rold)?;
        self.combine(depth, path, l, r)
    }

    fn combine(&mut self, depth: u16, path: Digest, l: Sub, r: Sub) -> Result<Sub, SmtError> {
        let lpath = with_bit(&path, depth, false);
        let rpath = with_bit(&path, depth, true);
        let (l, r) = match (l, r) {
            (Sub::Empty, Sub::Empty) => return Ok(Sub::Empty),
            (Sub::Empty, leaf @ Sub::Leaf { .. }) | (leaf @ Sub::Leaf { .. }, Sub::Empty) => {
                return Ok(leaf);
            }
            // An old subtree left alone beside an empty one: if it is a leaf,
            // it moves up (the batch deleted its last neighbour).
            (
                Sub::Empty,
                Sub::Placed {
                    child: c,
                    fresh: false,
                },
            ) => (Sub::Empty, self.maybe_lift(c, depth + 1, &rpath)?),
            (
                Sub::Placed {
                    child: c,
                    fresh: false,
                },
                Sub::Empty,
            ) => (self.maybe_lift(c, depth + 1, &lpath)?, Sub::Empty),
            other => other,
        };
        if let (Sub::Empty, Sub::Leaf { .. }) | (Sub::Leaf { .. }, Sub::Empty) = (&l, &r) {
            return Ok(if matches!(l, Sub::Empty) { r } else { l });
        }
        let left = self.place(depth + 1, l);
        let right = self.place(depth + 1, r);
        let node = Node::Internal { left, right };
        let hash = node.hash();
        self.out
            .puts
            .push((node_key(self.version, depth, &path), node.encode()));
        Ok(Sub::Placed {
            child: Child {
                hash,
                version: self.version,
            },
            fresh: true,
        })
    }

    fn maybe_lift(&mut self, c: Child, depth: u16, path: &Digest) -> Result<Sub, SmtError> {
        let key = node_key(c.version, depth, path);
        match self.cache.get(&key) {
            Some(Node::Leaf { .. }) => {
                let Some(Node::Leaf { kh, vh, value }) = self.cache.remove(&key) else {
                    unreachable!()
                };
                if leaf_hash(&kh, &vh) != c.hash {
                    return Err(SmtError::BadNode(format!(
                        "node {} does not match its parent's hash",
                        hex(&key)
                    )));
                }
                self.out.stale.push(key);
                Ok(Sub::Leaf { kh, vh, value })
            }
            Some(Node::Internal { .. }) => Ok(Sub::Placed {
                child: c,
                fresh: false,
            }),
            None => Err(SmtError::MissingNode(key)),
        }
    }

    fn place(&mut self, depth: u16, sub: Sub) -> Child {
        match sub {
            Sub::Empty => Child::empty(),
            Sub::Placed { child, .. } => child,
            Sub::Leaf { kh, vh, value } => self.place_leaf(depth, kh, vh, value),
        }
    }

    /// Writes a leaf at `depth` on its own key's path.
    fn place_leaf(&mut self, depth: u16, kh: Digest, vh: Digest, value: Vec<u8>) -> Child {
        let node = Node::Leaf { kh, vh, value };
        let hash = node.hash();
        self.out
            .puts
            .push((node_key(self.version, depth, &kh), node.encode()));
        Child {
            hash,
            version: self.version,
        }
    }
}

/// Reference root of a key/value set computed from scratch (tests, genesis
/// cross-checks): the definition, with no storage.
pub fn root_of(entries: &[(Digest, Digest)]) -> Digest {
    let mut sorted: Vec<(Digest, Digest)> = entries.to_vec();
    sorted.sort_unstable();
    fn rec(items: &[(Digest, Digest)], depth: u16) -> Digest {
        match items.len() {
            0 => empty_hash(),
            1 => leaf_hash(&items[0].0, &items[0].1),
            _ => {
                let mid = items.partition_point(|(kh, _)| !bit(kh, depth));
                node_hash(
                    &rec(&items[..mid], depth + 1),
                    &rec(&items[mid..], depth + 1),
                )
            }
        }
    }
    rec(&sorted, 0)
}

/// An in-memory node store driving an [`Updater`] (tests and re-execution).
#[derive(Default)]
pub struct MemStore {
    pub nodes: HashMap<Vec<u8>, Vec<u8>>,
    pub root: Option<Child>,
}

impl MemStore {
    pub fn root(&self) -> Child {
        self.root.unwrap_or_else(Child::empty)
    }

    /// Applies one batch at `version`; stale nodes are deleted at once
    /// (no history is kept).
    pub fn apply(&mut self, version: u64, updates: Vec<Update>) -> Result<Outcome, SmtError> {
        let mut up = Updater::new(self.root(), version, updates)?;
        loop {
            let want = up.wanted();
            if want.is_empty() {
                break;
            }
            let values = want.iter().map(|k| self.nodes.get(k).cloned()).collect();
            up.supply(values)?;
        }
        let out = up.finish()?;
        for k in &out.stale {
            self.nodes.remove(k);
        }
        for (k, v) in &out.puts {
            self.nodes.insert(k.clone(), v.clone());
        }
        self.root = out.root;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*: deterministic, no dependency.
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn reference(state: &HashMap<Vec<u8>, Vec<u8>>) -> Digest {
        let entries: Vec<_> = state
            .iter()
            .map(|(k, v)| (key_hash(k), value_hash(v)))
            .collect();
        root_of(&entries)
    }

    fn reachable(store: &MemStore, c: Child, depth: u16, path: Digest) -> usize {
        if c.is_empty() {
            return 0;
        }
        let node = Node::decode(&store.nodes[&node_key(c.version, depth, &path)]).unwrap();
        assert_eq!(node.hash(), c.hash);
        match node {
            Node::Leaf { kh, .. } => {
                assert_eq!(node_key(0, depth, &kh), node_key(0, depth, &path));
                1
            }
            Node::Internal { left, right } => {
                assert!(!(left.is_empty() && right.is_empty()));
                1 + reachable(store, left, depth + 1, with_bit(&path, depth, false))
                    + reachable(store, right, depth + 1, with_bit(&path, depth, true))
            }
        }
    }

    #[test]
    fn empty_and_single() {
        let mut s = MemStore::default();
        assert_eq!(s.root().hash, empty_hash());
        s.apply(1, vec![Update::new(b"a", Some(b"1"))]).unwrap();
        assert_eq!(s.root().hash, leaf_hash(&key_hash(b"a"), &value_hash(b"1")));
        s.apply(2, vec![Update::new(b"a", None)]).unwrap();
        assert_eq!(s.root().hash, empty_hash());
        assert!(s.nodes.is_empty());
    }

    #[test]
    fn random_batches_match_reference_and_history_is_compact() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut store = MemStore::default();
        let mut state: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for version in 1..=60u64 {
            let mut batch: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
            let n = (rng.next() % 40) as usize;
            for _ in 0..n {
                let key = format!("k{}", rng.next() % 120).into_bytes();
                let value = if rng.next() % 3 == 0 {
                    None
                } else {
                    Some(format!("v{}", rng.next() % 7).into_bytes())
                };
                batch.insert(key, value);
            }
            let updates = batch
                .iter()
                .map(|(k, v)| Update::new(k, v.as_deref()))
                .collect();
            store.apply(version, updates).unwrap();
            for (k, v) in batch {
                match v {
                    Some(v) => state.insert(k, v),
                    None => state.remove(&k),
                };
            }
            assert_eq!(store.root().hash, reference(&state), "version {version}");
            // Path compression: exactly one leaf node per key, and n - 1 or
            // more internal nodes (more where a pair shares a long prefix).
            let leaves = store.nodes.values().filter(|v| v[0] == TAG_LEAF).count();
            assert_eq!(leaves, state.len());
            // Every stale node was reported: the store holds exactly the
            // nodes reachable from the root.
            assert_eq!(
                reachable(&store, store.root(), 0, [0; 32]),
                store.nodes.len()
            );
        }
    }

    #[test]
    fn batching_and_order_do_not_change_the_root() {
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0..500u32)
            .map(|i| (i.to_le_bytes().to_vec(), (i * 7).to_le_bytes().to_vec()))
            .collect();
        let mut one = MemStore::default();
        one.apply(
            1,
            items.iter().map(|(k, v)| Update::new(k, Some(v))).collect(),
        )
        .unwrap();
        let mut many = MemStore::default();
        for (version, chunk) in items.rchunks(37).enumerate() {
            many.apply(
                version as u64 + 1,
                chunk.iter().map(|(k, v)| Update::new(k, Some(v))).collect(),
            )
            .unwrap();
        }
        assert_eq!(one.root().hash, many.root().hash);
        // Deleting all but one key brings back the single-leaf root.
        many.apply(
            100,
            items[1..]
                .iter()
                .map(|(k, _)| Update::new(k, None))
                .collect(),
        )
        .unwrap();
        assert_eq!(
            many.root().hash,
            leaf_hash(&key_hash(&items[0].0), &value_hash(&items[0].1))
        );
        assert_eq!(many.nodes.len(), 1);
    }

    #[test]
    fn missing_and_damaged_nodes_are_errors() {
        let mut s = MemStore::default();
        s.apply(
            1,
            (0..10u8).map(|i| Update::new(&[i], Some(b"x"))).collect(),
        )
        .unwrap();
        let mut damaged = MemStore {
            nodes: s.nodes.clone(),
            root: s.root,
        };
        let some_key = damaged.nodes.keys().next().unwrap().clone();
        damaged.nodes.remove(&some_key);
        let all: Vec<Update> = (0..10u8).map(|i| Update::new(&[i], Some(b"y"))).collect();
        assert!(matches!(
            damaged.apply(2, all.clone()),
            Err(SmtError::MissingNode(_))
        ));
        let mut flipped = MemStore {
            nodes: s.nodes.clone(),
            root: s.root,
        };
        for v in flipped.nodes.values_mut() {
            if v[0] == TAG_INTERNAL {
                v[5] ^= 1;
            }
        }
        assert!(matches!(flipped.apply(2, all), Err(SmtError::BadNode(_))));
        assert!(matches!(
            Updater::new(
                s.root(),
                2,
                vec![Update::new(b"a", None), Update::new(b"a", Some(b"1"))]
            ),
            Err(SmtError::DuplicateKey)
        ));
        assert!(Node::decode(&[]).is_err());
        assert!(Node::decode(&[TAG_INTERNAL; 80]).is_err());
        assert!(Node::decode(&[3; 81]).is_err());
    }

    #[test]
    fn node_key_masks_unused_bits() {
        let path = [0xff; 32];
        assert_eq!(
            node_key(5, 3, &path),
            [0, 0, 0, 0, 0, 0, 0, 5, 0, 3, 0b1110_0000]
        );
        assert_eq!(node_key(1, 0, &path).len(), 10);
        assert_eq!(node_key(1, 256, &path).len(), 42);
    }
}
