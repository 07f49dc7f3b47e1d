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
/// A node to store: `(node key, encoded node)`.
pub type NodeWrite = (Vec<u8>, Vec<u8>);

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
            self.accept(want, node)?;
        }
        Ok(())
    }

    /// Takes every wanted node that `cache` holds (and, level after level,
    /// the ones below it), so [`Self::wanted`] then lists only the misses.
    /// A cached node is checked against its parent's hash like a stored one.
    pub fn resolve_from(&mut self, cache: &NodeCache) -> Result<(), SmtError> {
        if cache.nodes.is_empty() {
            return Ok(());
        }
        loop {
            let level = std::mem::take(&mut self.level);
            let mut misses = Vec::with_capacity(level.len());
            let mut hit = false;
            for want in level {
                match cache.nodes.get(&want.key) {
                    Some(node) => {
                        hit = true;
                        let node = node.clone();
                        self.accept(want, node)?;
                    }
                    None => misses.push(want),
                }
            }
            self.level.append(&mut misses);
            if !hit {
                return Ok(());
            }
        }
    }

    fn accept(&mut self, want: Want, node: Node) -> Result<(), SmtError> {
        if want.descend
            && let Node::Internal { left, right } = &node
        {
            if want.depth >= DEPTH_MAX - 1 {
                return Err(SmtError::BadNode("internal node at the last depth".into()));
            }
            let mid = self.split(want.lo, want.hi, want.depth);
            let has_delete = self.deletes_prefix[want.hi] > self.deletes_prefix[want.lo];
            for (child, side, lo, hi) in [(left, false, want.lo, mid), (right, true, mid, want.hi)]
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

/// The top of the tree kept in memory across batches: every node at depth
/// `< depth_max` that the last batch wrote or that is still current, keyed
/// by its node key.
///
/// Node keys carry the version that wrote the node, so a committed node key
/// names one node forever. The cache is only trusted for the tree whose root
/// it records ([`NodeCache::begin`]): a batch that was computed but never
/// committed (its write transaction aborted) leaves a cache whose root is not
/// the next batch's base, and the cache is then dropped and refilled lazily
/// (from the nodes the following batches fetch and write).
#[derive(Debug)]
pub struct NodeCache {
    pub depth_max: u16,
    root: Option<Child>,
    nodes: HashMap<Vec<u8>, Node>,
}

impl NodeCache {
    pub fn new(depth_max: u16) -> NodeCache {
        NodeCache {
            depth_max,
            root: None,
            nodes: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn clear(&mut self) {
        self.root = None;
        self.nodes.clear();
    }

    /// The root this cache describes (`None`: nothing cached yet).
    pub fn root(&self) -> Option<Child> {
        self.root
    }

    /// Called before a batch on the tree `root`: keeps the cache only if it
    /// describes exactly that tree.
    pub fn begin(&mut self, root: Child) {
        if self.root != Some(root) {
            self.clear();
        }
    }

    /// Called with the outcome of a batch applied to the root passed to
    /// [`Self::begin`]: drops the replaced nodes, adds the new shallow ones.
    pub fn commit(&mut self, out: &Outcome) -> Result<(), SmtError> {
        for k in &out.stale {
            self.nodes.remove(k);
        }
        for (k, v) in &out.puts {
            if u16::from_be_bytes([k[8], k[9]]) < self.depth_max {
                self.nodes.insert(k.clone(), Node::decode(v)?);
            }
        }
        self.root = out.root;
        Ok(())
    }
}

/// Builds a whole tree at one version from scratch (genesis): records are
/// added in any order, then sorted by key hash; every node is computed once,
/// bottom up, and emitted in storage-key order (depth, then path), so the
/// caller can write them with an append-only cursor. Memory: 40 bytes per key
/// plus its value, and 32 bytes per internal node while emitting.
pub struct BulkBuilder {
    version: u64,
    recs: Vec<(Digest, u64)>, // (key hash, offset of `len u32 LE || value` in arena)
    arena: Vec<u8>,
    // After `finish`:
    root: Option<Child>,
    hashes: Vec<Vec<Digest>>, // internal node hashes per depth, in path order
    depth: usize,
    ranges: Vec<(u32, u32)>, // record ranges of the nodes at `depth`, in path order
    pos: usize,
    next_ranges: Vec<(u32, u32)>,
    child_cursor: usize, // next unused entry of hashes[depth + 1]
}

impl BulkBuilder {
    pub fn new(version: u64) -> BulkBuilder {
        BulkBuilder {
            version,
            recs: Vec::new(),
            arena: Vec::new(),
            root: None,
            hashes: Vec::new(),
            depth: 0,
            ranges: Vec::new(),
            pos: 0,
            next_ranges: Vec::new(),
            child_cursor: 0,
        }
    }

    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<(), SmtError> {
        if self.root.is_some() {
            return Err(SmtError::Protocol("add after finish".into()));
        }
        let len = u32::try_from(value.len())
            .map_err(|_| SmtError::Protocol("value longer than 4 GiB".into()))?;
        self.recs.push((key_hash(key), self.arena.len() as u64));
        self.arena.extend_from_slice(&len.to_le_bytes());
        self.arena.extend_from_slice(value);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    fn value(&self, i: usize) -> &[u8] {
        let off = usize::try_from(self.recs[i].1).expect("arena offset fits usize");
        let len = u32::from_le_bytes(self.arena[off..off + 4].try_into().expect("4 bytes"));
        &self.arena[off + 4..off + 4 + len as usize]
    }

    fn leaf(&self, i: usize) -> (Digest, Digest) {
        let kh = self.recs[i].0;
        let vh = value_hash(self.value(i));
        (kh, leaf_hash(&kh, &vh))
    }

    fn split(&self, lo: usize, hi: usize, depth: u16) -> usize {
        lo + self.recs[lo..hi].partition_point(|r| !bit(&r.0, depth))
    }

    /// Sorts, checks for duplicate keys and computes every hash; returns the root.
    pub fn finish(&mut self) -> Result<Child, SmtError> {
        if let Some(root) = self.root {
            return Ok(root);
        }
        if u32::try_from(self.recs.len()).is_err() {
            return Err(SmtError::Protocol("more than 2^32 keys".into()));
        }
        self.recs.sort_unstable_by_key(|r| r.0);
        if self.recs.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(SmtError::DuplicateKey);
        }
        let n = self.recs.len();
        let root = if n == 0 {
            Child::empty()
        } else {
            let mut hashes = Vec::new();
            let hash = self.hash_range(0, n, 0, &mut hashes);
            self.hashes = hashes;
            self.ranges = vec![(0, n as u32)];
            Child {
                hash,
                version: self.version,
            }
        };
        self.root = Some(root);
        Ok(root)
    }

    fn hash_range(&self, lo: usize, hi: usize, depth: u16, out: &mut Vec<Vec<Digest>>) -> Digest {
        match hi - lo {
            0 => empty_hash(),
            1 => self.leaf(lo).1,
            _ => {
                let mid = self.split(lo, hi, depth);
                let l = self.hash_range(lo, mid, depth + 1, out);
                let r = self.hash_range(mid, hi, depth + 1, out);
                let h = node_hash(&l, &r);
                let d = usize::from(depth);
                if out.len() <= d {
                    out.resize_with(d + 1, Vec::new);
                }
                out[d].push(h);
                h
            }
        }
    }

    /// The next at most `max` nodes `(node key, node)`, ascending by key;
    /// empty when every node was emitted. Call after [`Self::finish`].
    pub fn emit(&mut self, max: usize) -> Result<Vec<NodeWrite>, SmtError> {
        if self.root.is_none() {
            return Err(SmtError::Protocol("emit before finish".into()));
        }
        let mut out = Vec::with_capacity(max.min(1 << 16));
        while out.len() < max {
            if self.pos >= self.ranges.len() {
                if self.next_ranges.is_empty() {
                    self.ranges.clear();
                    self.hashes.clear();
                    self.pos = 0;
                    break;
                }
                self.ranges = std::mem::take(&mut self.next_ranges);
                self.pos = 0;
                if let Some(done) = self.hashes.get_mut(self.depth) {
                    *done = Vec::new(); // free this depth's hashes
                }
                self.depth += 1;
                self.child_cursor = 0;
            }
            let (lo, hi) = self.ranges[self.pos];
            self.pos += 1;
            let (lo, hi) = (lo as usize, hi as usize);
            let depth = u16::try_from(self.depth).expect("depth <= 256");
            if hi - lo == 1 {
                let kh = self.recs[lo].0;
                let value = self.value(lo).to_vec();
                let node = Node::Leaf {
                    kh,
                    vh: value_hash(&value),
                    value,
                };
                out.push((node_key(self.version, depth, &kh), node.encode()));
                continue;
            }
            let mid = self.split(lo, hi, depth);
            let child = |a: usize, b: usize, this: &mut Self| -> Child {
                match b - a {
                    0 => Child::empty(),
                    1 => Child {
                        hash: this.leaf(a).1,
                        version: this.version,
                    },
                    _ => {
                        let h = this.hashes[usize::from(depth) + 1][this.child_cursor];
                        this.child_cursor += 1;
                        Child {
                            hash: h,
                            version: this.version,
                        }
                    }
                }
            };
            let left = child(lo, mid, self);
            let right = child(mid, hi, self);
            for (a, b) in [(lo, mid), (mid, hi)] {
                if a < b {
                    self.next_ranges.push((a as u32, b as u32));
                }
            }
            // Any key below serves as the path: they share the first `depth` bits.
            let path = self.recs[lo].0;
            let node = Node::Internal { left, right };
            out.push((node_key(self.version, depth, &path), node.encode()));
        }
        Ok(out)
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
    fn bulk_build_equals_one_batch_and_emits_in_key_order() {
        for n in [0usize, 1, 2, 3, 17, 1000] {
            let items: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
                .map(|i| (format!("k{i}").into_bytes(), vec![i as u8; i % 5]))
                .collect();
            let mut batch = MemStore::default();
            batch
                .apply(
                    0,
                    items.iter().map(|(k, v)| Update::new(k, Some(v))).collect(),
                )
                .unwrap();
            let mut b = BulkBuilder::new(0);
            for (k, v) in items.iter().rev() {
                b.add(k, v).unwrap();
            }
            let root = b.finish().unwrap();
            assert_eq!(root, batch.root(), "n = {n}");
            let mut emitted = Vec::new();
            loop {
                let chunk = b.emit(7).unwrap();
                if chunk.is_empty() {
                    break;
                }
                emitted.extend(chunk);
            }
            assert!(
                emitted.windows(2).all(|w| w[0].0 < w[1].0),
                "ascending keys"
            );
            let mut expect: Vec<_> = batch.nodes.into_iter().collect();
            expect.sort();
            assert_eq!(emitted, expect, "n = {n}");
        }
        let mut dup = BulkBuilder::new(0);
        dup.add(b"a", b"1").unwrap();
        dup.add(b"a", b"2").unwrap();
        assert_eq!(dup.finish(), Err(SmtError::DuplicateKey));
    }

    /// Applies a batch through the cache, as the Python binding does.
    fn apply_cached(
        store: &MemStore,
        cache: &mut NodeCache,
        version: u64,
        updates: Vec<Update>,
    ) -> Result<Outcome, SmtError> {
        cache.begin(store.root());
        let mut up = Updater::new(store.root(), version, updates)?;
        loop {
            up.resolve_from(cache)?;
            let want = up.wanted();
            if want.is_empty() {
                break;
            }
            up.supply(want.iter().map(|k| store.nodes.get(k).cloned()).collect())?;
        }
        let out = up.finish()?;
        cache.commit(&out)?;
        Ok(out)
    }

    #[test]
    fn cache_matches_uncached_and_survives_aborted_batches() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut store = MemStore::default();
        let mut plain = MemStore::default();
        let mut cache = NodeCache::new(6);
        for version in 1..=80u64 {
            let mut batch: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
            for _ in 0..(rng.next() % 50) {
                let key = format!("k{}", rng.next() % 300).into_bytes();
                let value =
                    (rng.next() % 4 != 0).then(|| format!("v{}", rng.next() % 9).into_bytes());
                batch.insert(key, value);
            }
            let updates = || -> Vec<Update> {
                batch
                    .iter()
                    .map(|(k, v)| Update::new(k, v.as_deref()))
                    .collect()
            };
            if rng.next() % 4 == 0 {
                // A batch computed at this version but never committed: its
                // nodes (same keys as the real batch's, other contents) must
                // not be served afterwards.
                let mut other = updates();
                other.push(Update::new(b"aborted", Some(b"x")));
                apply_cached(&store, &mut cache, version, other).unwrap();
            }
            let out = apply_cached(&store, &mut cache, version, updates()).unwrap();
            for k in &out.stale {
                store.nodes.remove(k);
            }
            for (k, v) in &out.puts {
                store.nodes.insert(k.clone(), v.clone());
            }
            store.root = out.root;
            plain.apply(version, updates()).unwrap();
            assert_eq!(store.root(), plain.root(), "version {version}");
            assert_eq!(store.nodes, plain.nodes);
            assert!(cache.nodes.keys().all(|k| store.nodes.contains_key(k)));
        }
        assert!(!cache.is_empty());
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
