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
//! The hashes above are binary; the *records* are not. The internal nodes
//! are stored in **chunks**: a chunk is the part of the binary tree below an
//! internal node at a depth `d` divisible by [`CHUNK_LEVELS`] (4), down to
//! depth `d + 4`: up to 15 internal nodes, and what hangs below them. A chunk
//! record lists that shape and its *exits* only (internal hashes are
//! recomputed when it is read, which also checks it against its parent), so
//! a written key costs about one record per four levels instead of one per
//! level (LMDB searches, Python objects, bytes moved).
//!
//! * chunk key: `version u64 BE || depth u16 BE || path` where `path` is the
//!   first `depth` bits of the key hashes below, in `ceil(depth/8)` bytes,
//!   unused low bits zero. Version-first keys make each block's new records
//!   one append run.
//! * chunk record: `0x03 || slots`, the binary subtree in pre-order, each
//!   position one slot: `0x00` internal (its two children follow; only above
//!   depth `d + 4`), `0x01` empty, `0x02 kh || leaf hash || leaf version u64
//!   LE` (a leaf), `0x03 hash || version u64 LE` (the chunk at depth `d + 4`
//!   below; only there). The chunk at depth 0 always exists in a non-empty
//!   tree (its version is the root's); only there may the top slot be a leaf.
//! * leaf key: `version u64 BE || 0xFFFF || kh`; leaf record `0x02 || kh ||
//!   vh || value`. Its key does not depend on the leaf's depth, so a leaf
//!   that moves (a neighbour inserted or deleted) keeps its record: only the
//!   chunk that refers to it changes. An update never reads the old leaf
//!   record: the chunk's slot carries its key hash and hash.
//!
//! A record is never changed in place: a block writes every chunk on the
//! paths of its written keys anew at its own version, and a record for each
//! written value, and lists the records it replaced as *stale* (the caller
//! records them by the version that made them stale; pruning deletes records
//! stale since a height no longer retained).
//!
//! # Batch update without a callback per node
//!
//! [`Updater`] is a small state machine: it asks for all the chunks of one
//! chunk level at a time ([`Updater::wanted`] / [`Updater::supply`]), so the
//! caller fetches a level in one cursor pass, then [`Updater::finish`]
//! computes the new chunks and root from memory. Deletions need no extra
//! reads: whether an untouched neighbour is a lone leaf (which must move up)
//! is in its parent's slot.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use foldhash::HashMap as FastMap;

use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};

pub type Digest = [u8; 32];
/// A node to store: `(node key, encoded node)`.
pub type NodeWrite = (Vec<u8>, Vec<u8>);

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

/// Levels of the binary tree per stored chunk.
pub const CHUNK_LEVELS: u16 = 4;
pub const TAG_LEAF: u8 = 0x02;
pub const TAG_CHUNK: u8 = 0x03;
pub const LEAF_HEAD_BYTES: usize = 1 + 32 + 32;
/// The depth field of a leaf record's key (no chunk is that deep).
pub const LEAF_DEPTH_MARK: u16 = 0xFFFF;
/// Deepest possible leaf: two distinct 256-bit hashes differ by bit 255.
pub const DEPTH_MAX: u16 = 256;

const SLOT_INNER: u8 = 0x00;
const SLOT_EMPTY: u8 = 0x01;
const SLOT_LEAF: u8 = 0x02;
const SLOT_CHUNK: u8 = 0x03;

/// Storage key of the chunk at (`depth`, first `depth` bits of `path`)
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

/// A chunk record's identity without an allocation: what [`node_key`]
/// encodes (`path` holds only the first `depth` bits; the rest are zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkId {
    pub version: u64,
    pub depth: u16,
    pub path: Digest,
}

impl ChunkId {
    pub fn new(version: u64, depth: u16, path: &Digest) -> ChunkId {
        let mut p = [0u8; 32];
        let n = usize::from(depth).div_ceil(8).min(32);
        p[..n].copy_from_slice(&path[..n]);
        if depth % 8 != 0 {
            p[n - 1] &= 0xffu8 << (8 - depth % 8);
        }
        ChunkId {
            version,
            depth,
            path: p,
        }
    }

    pub fn key(&self) -> Vec<u8> {
        node_key(self.version, self.depth, &self.path)
    }

    /// The id of a chunk record key (`None` for a leaf record's or a malformed key).
    pub fn from_key(key: &[u8]) -> Option<ChunkId> {
        let version = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
        let depth = u16::from_be_bytes(key.get(8..10)?.try_into().ok()?);
        let n = usize::from(depth).div_ceil(8);
        if depth > DEPTH_MAX || key.len() != 10 + n {
            return None;
        }
        let mut path = [0u8; 32];
        path[..n].copy_from_slice(&key[10..]);
        Some(ChunkId {
            version,
            depth,
            path,
        })
    }
}

/// Storage key of the leaf record of `kh` written at `version`.
pub fn leaf_key(version: u64, kh: &Digest) -> Vec<u8> {
    let mut k = Vec::with_capacity(42);
    k.extend_from_slice(&version.to_be_bytes());
    k.extend_from_slice(&LEAF_DEPTH_MARK.to_be_bytes());
    k.extend_from_slice(kh);
    k
}

/// A leaf record: `0x02 || kh || vh || value`.
pub fn encode_leaf(kh: &Digest, vh: &Digest, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEAF_HEAD_BYTES + value.len());
    out.push(TAG_LEAF);
    out.extend_from_slice(kh);
    out.extend_from_slice(vh);
    out.extend_from_slice(value);
    out
}

/// `(kh, vh, value)` of a leaf record, its value checked against `vh`.
pub fn decode_leaf(data: &[u8]) -> Result<(Digest, Digest, &[u8]), SmtError> {
    if data.len() < LEAF_HEAD_BYTES || data[0] != TAG_LEAF {
        return Err(SmtError::BadNode(format!(
            "leaf record of {} bytes with tag {:?}",
            data.len(),
            data.first()
        )));
    }
    let kh: Digest = data[1..33].try_into().expect("32 bytes");
    let vh: Digest = data[33..65].try_into().expect("32 bytes");
    if value_hash(&data[65..]) != vh {
        return Err(SmtError::BadNode(
            "leaf value does not match its hash".into(),
        ));
    }
    Ok((kh, vh, &data[65..]))
}

/// A reference to a subtree (the root, or a child in a chunk).
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

/// A leaf as its chunk refers to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafRef {
    pub kh: Digest,
    pub vh: Digest,
    /// `leaf_hash(kh, vh)`, computed (not stored).
    pub lh: Digest,
    /// Version of the leaf's record.
    pub version: u64,
}

/// One position of a chunk: indices into its tables, so slots stay small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Slot {
    #[default]
    Empty,
    /// A leaf (index into [`Chunk::leaves`]).
    Leaf(u8),
    /// An internal node of the same chunk (index into [`Chunk::nodes`]).
    Inner(u8),
    /// The chunk below, at the chunk's depth + [`CHUNK_LEVELS`] (index into
    /// [`Chunk::kids`]).
    Chunk(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inner {
    pub hash: Digest,
    pub left: Slot,
    pub right: Slot,
}

/// A decoded chunk, with the hash of every internal node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    pub root: Slot,
    pub nodes: Vec<Inner>,
    pub leaves: Vec<LeafRef>,
    pub kids: Vec<Child>,
}

impl Chunk {
    pub fn slot_hash(&self, s: Slot) -> Digest {
        match s {
            Slot::Empty => empty_hash(),
            Slot::Leaf(i) => self.leaves[usize::from(i)].lh,
            Slot::Inner(i) => self.nodes[usize::from(i)].hash,
            Slot::Chunk(i) => self.kids[usize::from(i)].hash,
        }
    }

    pub fn hash(&self) -> Digest {
        self.slot_hash(self.root)
    }

    pub fn push_leaf(&mut self, l: LeafRef) -> Slot {
        self.leaves.push(l);
        Slot::Leaf((self.leaves.len() - 1) as u8)
    }

    pub fn push_kid(&mut self, c: Child) -> Slot {
        self.kids.push(c);
        Slot::Chunk((self.kids.len() - 1) as u8)
    }

    pub fn push_inner(&mut self, hash: Digest, left: Slot, right: Slot) -> Slot {
        self.nodes.push(Inner { hash, left, right });
        Slot::Inner((self.nodes.len() - 1) as u8)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            1 + self.nodes.len() + 73 * self.leaves.len() + 41 * self.kids.len() + 16,
        );
        out.push(TAG_CHUNK);
        self.encode_slot(self.root, &mut out);
        out
    }

    fn encode_slot(&self, s: Slot, out: &mut Vec<u8>) {
        match s {
            Slot::Empty => out.push(SLOT_EMPTY),
            Slot::Leaf(i) => {
                let l = &self.leaves[usize::from(i)];
                out.push(SLOT_LEAF);
                out.extend_from_slice(&l.kh);
                out.extend_from_slice(&l.vh);
                out.extend_from_slice(&l.version.to_le_bytes());
            }
            Slot::Chunk(i) => {
                let c = &self.kids[usize::from(i)];
                out.push(SLOT_CHUNK);
                out.extend_from_slice(&c.hash);
                out.extend_from_slice(&c.version.to_le_bytes());
            }
            Slot::Inner(i) => {
                out.push(SLOT_INNER);
                let n = self.nodes[usize::from(i)];
                self.encode_slot(n.left, out);
                self.encode_slot(n.right, out);
            }
        }
    }

    /// Parses a chunk record stored at `depth` and computes its internal
    /// hashes. Refuses every malformed or non-canonical record (a slot kind
    /// where it cannot be, an internal node with fewer than two keys below,
    /// trailing bytes); the caller checks [`Self::hash`] against the parent.
    pub fn decode(data: &[u8], depth: u16) -> Result<Chunk, SmtError> {
        let bad = |m: &str| SmtError::BadNode(format!("chunk at depth {depth}: {m}"));
        if data.first() != Some(&TAG_CHUNK) || depth % CHUNK_LEVELS != 0 || depth >= DEPTH_MAX {
            return Err(bad(&format!(
                "record of {} bytes with tag {:?}",
                data.len(),
                data.first()
            )));
        }
        let mut c = Chunk::default();
        let mut pos = 1;
        let root = c.parse(data, &mut pos, 0).ok_or_else(|| bad("malformed"))?;
        if pos != data.len() {
            return Err(bad("trailing bytes"));
        }
        match root {
            Slot::Inner(_) => {}
            Slot::Leaf(_) if depth == 0 => {}
            _ => return Err(bad("top slot is not an internal node")),
        }
        c.root = root;
        Ok(c)
    }

    fn parse(&mut self, data: &[u8], pos: &mut usize, rel: u16) -> Option<Slot> {
        let kind = *data.get(*pos)?;
        *pos += 1;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = data.get(*pos..*pos + n)?;
            *pos += n;
            Some(s)
        };
        match kind {
            SLOT_EMPTY => Some(Slot::Empty),
            SLOT_LEAF => {
                let kh: Digest = take(32)?.try_into().ok()?;
                let vh: Digest = take(32)?.try_into().ok()?;
                let version = u64::from_le_bytes(take(8)?.try_into().ok()?);
                let lh = leaf_hash(&kh, &vh);
                Some(self.push_leaf(LeafRef {
                    kh,
                    vh,
                    lh,
                    version,
                }))
            }
            SLOT_CHUNK if rel == CHUNK_LEVELS => {
                let hash = take(32)?.try_into().ok()?;
                let version = u64::from_le_bytes(take(8)?.try_into().ok()?);
                Some(self.push_kid(Child { hash, version }))
            }
            SLOT_INNER if rel < CHUNK_LEVELS => {
                let left = self.parse(data, pos, rel + 1)?;
                let right = self.parse(data, pos, rel + 1)?;
                let lone = |s: Slot| matches!(s, Slot::Empty | Slot::Leaf(_));
                if lone(left) && lone(right) && (left == Slot::Empty || right == Slot::Empty) {
                    return None; // fewer than two keys below: not canonical
                }
                let hash = node_hash(&self.slot_hash(left), &self.slot_hash(right));
                Some(self.push_inner(hash, left, right))
            }
            _ => None,
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

/// A subtree during an update: small, so the recursion moves little.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sub {
    Empty,
    /// A leaf of a loaded chunk; where it sits is up to its parent.
    OldLeaf {
        chunk: u32,
        idx: u8,
    },
    /// The leaf of `updates[i]`.
    NewLeaf(u32),
    /// An untouched internal node of a loaded chunk.
    Old {
        chunk: u32,
        idx: u8,
    },
    /// An untouched chunk (a kid of a loaded chunk, or the root: `ROOT`).
    Kid {
        chunk: u32,
        idx: u8,
    },
    /// An internal node of this batch (index into `Updater::fresh`).
    New(u32),
}

const ROOT: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct NewNode {
    depth: u16,
    path: Digest,
    hash: Digest,
    left: Sub,
    right: Sub,
}

/// The result of one batch: the new root, the records to write (sorted by
/// key), the keys of the records this batch replaced, and the new chunks
/// decoded (for [`NodeCache`]).
#[derive(Debug, Default)]
pub struct Outcome {
    pub root: Option<Child>,
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    pub stale: Vec<Vec<u8>>,
    pub chunks: Vec<(ChunkId, Arc<Chunk>)>,
}

/// A chunk to load (its depth and path are in `id`), the hash its parent
/// expects, and the updates `lo..hi` that reach it.
struct Want {
    id: ChunkId,
    hash: Digest,
    lo: usize,
    hi: usize,
}

impl Want {
    /// The chunk `kid` at (`depth`, `path`).
    fn of(kid: Child, depth: u16, path: &Digest, lo: usize, hi: usize) -> Want {
        Want {
            id: ChunkId::new(kid.version, depth, path),
            hash: kid.hash,
            lo,
            hi,
        }
    }
}

fn split(updates: &[Update], lo: usize, hi: usize, depth: u16) -> usize {
    lo + updates[lo..hi].partition_point(|u| !bit(&u.kh, depth))
}

/// The chunks below `s` (a slot of `c` at `depth`) that the updates
/// `lo..hi` reach.
#[allow(clippy::too_many_arguments)]
fn reach(
    updates: &[Update],
    c: &Chunk,
    s: Slot,
    depth: u16,
    path: Digest,
    lo: usize,
    hi: usize,
    out: &mut Vec<Want>,
) {
    if lo == hi {
        return;
    }
    match s {
        Slot::Inner(i) => {
            let n = c.nodes[usize::from(i)];
            let mid = split(updates, lo, hi, depth);
            let (lp, rp) = (with_bit(&path, depth, false), with_bit(&path, depth, true));
            reach(updates, c, n.left, depth + 1, lp, lo, mid, out);
            reach(updates, c, n.right, depth + 1, rp, mid, hi, out);
        }
        Slot::Chunk(i) => {
            out.push(Want::of(c.kids[usize::from(i)], depth, &path, lo, hi));
        }
        Slot::Empty | Slot::Leaf(_) => {}
    }
}

/// One batch update (see the module docs for the protocol).
pub struct Updater {
    version: u64,
    root: Child,
    updates: Vec<Update>,
    lhs: Vec<Digest>,        // leaf hash of each put
    puts_prefix: Vec<usize>, // puts_prefix[i] = puts among updates[..i]
    chunks: Vec<Arc<Chunk>>, // loaded chunks
    chunk_at: FastMap<(u16, Digest), u32>,
    level: Vec<Want>,
    fresh: Vec<NewNode>,
    out: Outcome,
    leaf_puts: Vec<NodeWrite>, // the leaf records, in key order (appended to `out.puts` last)
    keep_below: u16,
    scratch: Vec<Chunk>, // one per nesting level of `emit_chunk`
}

impl Updater {
    /// `root` is the tree to update; new records are written at `version`.
    pub fn new(root: Child, version: u64, mut updates: Vec<Update>) -> Result<Updater, SmtError> {
        updates.sort_unstable_by_key(|a| a.kh);
        if updates.windows(2).any(|w| w[0].kh == w[1].kh) {
            return Err(SmtError::DuplicateKey);
        }
        if u32::try_from(updates.len()).is_err() {
            return Err(SmtError::Protocol("more than 2^32 updates".into()));
        }
        let mut puts_prefix = Vec::with_capacity(updates.len() + 1);
        puts_prefix.push(0);
        let mut lhs = Vec::with_capacity(updates.len());
        let mut leaf_puts = Vec::with_capacity(updates.len());
        for u in &updates {
            let last = *puts_prefix.last().expect("non-empty");
            puts_prefix.push(last + usize::from(u.value.is_some()));
            match &u.value {
                Some(v) => {
                    lhs.push(leaf_hash(&u.kh, &u.vh));
                    leaf_puts.push((leaf_key(version, &u.kh), encode_leaf(&u.kh, &u.vh, v)));
                }
                None => lhs.push([0; 32]),
            }
        }
        let mut level = Vec::new();
        if !root.is_empty() && !updates.is_empty() {
            level.push(Want::of(root, 0, &[0; 32], 0, updates.len()));
        }
        Ok(Updater {
            version,
            root,
            updates,
            lhs,
            puts_prefix,
            chunks: Vec::new(),
            chunk_at: FastMap::default(),
            level,
            fresh: Vec::new(),
            out: Outcome::default(),
            leaf_puts,
            keep_below: u16::MAX,
            scratch: Vec::new(),
        })
    }

    /// Only the new chunks at depth `< depth` go to [`Outcome::chunks`]
    /// (what a [`NodeCache`] of that `depth_max` keeps); default: all.
    pub fn keep_chunks_below(&mut self, depth: u16) {
        self.keep_below = depth;
    }

    /// Chunk keys to fetch next (empty when everything needed is loaded).
    pub fn wanted(&self) -> Vec<Vec<u8>> {
        self.level.iter().map(|w| w.id.key()).collect()
    }

    /// The stored bytes of each key of the last [`Self::wanted`], in order.
    pub fn supply<B: AsRef<[u8]>>(&mut self, values: Vec<Option<B>>) -> Result<(), SmtError> {
        if values.len() != self.level.len() {
            return Err(SmtError::Protocol(format!(
                "{} values for {} wanted chunks",
                values.len(),
                self.level.len()
            )));
        }
        let level = std::mem::take(&mut self.level);
        for (want, value) in level.into_iter().zip(values) {
            let Some(raw) = value else {
                return Err(SmtError::MissingNode(want.id.key()));
            };
            let chunk = Chunk::decode(raw.as_ref(), want.id.depth)?;
            self.accept(want, Arc::new(chunk))?;
        }
        Ok(())
    }

    /// Takes every wanted chunk that `cache` holds (and, level after level,
    /// the ones below it), so [`Self::wanted`] then lists only the misses.
    /// A cached chunk is checked against its parent's hash like a stored one.
    pub fn resolve_from(&mut self, cache: &NodeCache) -> Result<(), SmtError> {
        if cache.chunks.is_empty() {
            return Ok(());
        }
        loop {
            let level = std::mem::take(&mut self.level);
            let mut misses = Vec::with_capacity(level.len());
            let mut hit = false;
            for want in level {
                match cache.chunks.get(&want.id) {
                    Some((chunk, _)) => {
                        hit = true;
                        let chunk = Arc::clone(chunk);
                        self.accept(want, chunk)?;
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

    fn accept(&mut self, want: Want, chunk: Arc<Chunk>) -> Result<(), SmtError> {
        if chunk.hash() != want.hash {
            return Err(SmtError::BadNode(format!(
                "chunk {} does not match its parent's hash",
                hex(&want.id.key())
            )));
        }
        reach(
            &self.updates,
            &chunk,
            chunk.root,
            want.id.depth,
            want.id.path,
            want.lo,
            want.hi,
            &mut self.level,
        );
        let idx = u32::try_from(self.chunks.len()).expect("fewer than 2^32 chunks");
        self.chunks.push(chunk);
        self.chunk_at.insert((want.id.depth, want.id.path), idx);
        Ok(())
    }

    /// Computes the new tree. Call when [`Self::wanted`] is empty.
    pub fn finish(mut self) -> Result<Outcome, SmtError> {
        if !self.level.is_empty() {
            return Err(SmtError::Protocol(
                "finish before every chunk was supplied".into(),
            ));
        }
        let n = self.updates.len();
        let top = if self.root.is_empty() {
            Sub::Empty
        } else {
            Sub::Kid {
                chunk: ROOT,
                idx: 0,
            }
        };
        let root = match self.build(top, 0, [0u8; 32], 0, n)? {
            Sub::Empty => Child::empty(),
            s @ Sub::Kid { .. } => self.kid_of(s),
            s @ (Sub::OldLeaf { .. } | Sub::NewLeaf(_) | Sub::New(_)) => {
                self.emit_chunk(s, 0, [0u8; 32])?
            }
            Sub::Old { .. } => return Err(SmtError::Protocol("old node at the root".into())),
        };
        self.out.root = Some(root);
        // Chunk keys sort by (depth, path); the leaf records (depth mark
        // 0xFFFF) follow them, already in key-hash order (updates are sorted).
        self.out.puts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.out.puts.append(&mut self.leaf_puts);
        Ok(self.out)
    }

    fn to_sub(c: u32, s: Slot) -> Sub {
        match s {
            Slot::Empty => Sub::Empty,
            Slot::Leaf(idx) => Sub::OldLeaf { chunk: c, idx },
            Slot::Inner(idx) => Sub::Old { chunk: c, idx },
            Slot::Chunk(idx) => Sub::Kid { chunk: c, idx },
        }
    }

    fn leaf_of(&self, s: Sub) -> LeafRef {
        match s {
            Sub::OldLeaf { chunk, idx } => self.chunks[chunk as usize].leaves[usize::from(idx)],
            Sub::NewLeaf(i) => {
                let u = &self.updates[i as usize];
                LeafRef {
                    kh: u.kh,
                    vh: u.vh,
                    lh: self.lhs[i as usize],
                    version: self.version,
                }
            }
            _ => unreachable!("not a leaf"),
        }
    }

    fn kid_of(&self, s: Sub) -> Child {
        match s {
            Sub::Kid { chunk: ROOT, .. } => self.root,
            Sub::Kid { chunk, idx } => self.chunks[chunk as usize].kids[usize::from(idx)],
            _ => unreachable!("not a chunk"),
        }
    }

    fn sub_hash(&self, s: Sub) -> Digest {
        match s {
            Sub::Empty => empty_hash(),
            Sub::OldLeaf { chunk, idx } => self.chunks[chunk as usize].leaves[usize::from(idx)].lh,
            Sub::NewLeaf(i) => self.lhs[i as usize],
            Sub::Old { chunk, idx } => self.chunks[chunk as usize].nodes[usize::from(idx)].hash,
            Sub::Kid { .. } => self.kid_of(s).hash,
            Sub::New(j) => self.fresh[j as usize].hash,
        }
    }

    fn build(
        &mut self,
        s: Sub,
        depth: u16,
        path: Digest,
        lo: usize,
        hi: usize,
    ) -> Result<Sub, SmtError> {
        if lo == hi {
            return Ok(s);
        }
        match s {
            Sub::Empty => self.fresh(depth, path, lo, hi, None),
            Sub::OldLeaf { .. } | Sub::NewLeaf(_) => self.fresh(depth, path, lo, hi, Some(s)),
            Sub::Kid { .. } => {
                let key = node_key(self.kid_of(s).version, depth, &path);
                let Some(&c) = self.chunk_at.get(&(depth, path)) else {
                    return Err(SmtError::MissingNode(key));
                };
                self.out.stale.push(key);
                let top = Self::to_sub(c, self.chunks[c as usize].root);
                self.build(top, depth, path, lo, hi)
            }
            Sub::Old { chunk, idx } => {
                let node = self.chunks[chunk as usize].nodes[usize::from(idx)];
                let mid = split(&self.updates, lo, hi, depth);
                let l = Self::to_sub(chunk, node.left);
                let r = Self::to_sub(chunk, node.right);
                let l = self.build(l, depth + 1, with_bit(&path, depth, false), lo, mid)?;
                let r = self.build(r, depth + 1, with_bit(&path, depth, true), mid, hi)?;
                Ok(self.combine(depth, path, l, r))
            }
            Sub::New(_) => Err(SmtError::Protocol("new node revisited".into())),
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
        old: Option<Sub>,
    ) -> Result<Sub, SmtError> {
        // The old leaf survives unless the batch writes its key; its record
        // is replaced either way then.
        let old = old.map(|s| (s, self.leaf_of(s)));
        let old = match old {
            Some((_, l))
                if self.updates[lo..hi]
                    .binary_search_by(|u| u.kh.cmp(&l.kh))
                    .is_ok() =>
            {
                self.out.stale.push(leaf_key(l.version, &l.kh));
                None
            }
            other => other,
        };
        let puts = self.puts_prefix[hi] - self.puts_prefix[lo] + usize::from(old.is_some());
        match puts {
            0 => return Ok(Sub::Empty),
            1 => {
                if let Some((s, _)) = old {
                    return Ok(s);
                }
                let i = (lo..hi)
                    .find(|&i| self.updates[i].value.is_some())
                    .expect("one put");
                return Ok(Sub::NewLeaf(i as u32));
            }
            _ => {}
        }
        if depth >= DEPTH_MAX {
            return Err(SmtError::DuplicateKey);
        }
        let mid = split(&self.updates, lo, hi, depth);
        let (lold, rold) = match old {
            Some((s, l)) if bit(&l.kh, depth) => (None, Some(s)),
            Some((s, _)) => (Some(s), None),
            None => (None, None),
        };
        let l = self.fresh(depth + 1, with_bit(&path, depth, false), lo, mid, lold)?;
        let r = self.fresh(depth + 1, with_bit(&path, depth, true), mid, hi, rold)?;
        Ok(self.combine(depth, path, l, r))
    }

    fn combine(&mut self, depth: u16, path: Digest, l: Sub, r: Sub) -> Sub {
        let leaf = |s: Sub| matches!(s, Sub::OldLeaf { .. } | Sub::NewLeaf(_));
        match (l, r) {
            (Sub::Empty, Sub::Empty) => Sub::Empty,
            // A lone leaf moves up (its neighbours were deleted, or it is new).
            (Sub::Empty, s) | (s, Sub::Empty) if leaf(s) => s,
            _ => {
                let hash = node_hash(&self.sub_hash(l), &self.sub_hash(r));
                self.fresh.push(NewNode {
                    depth,
                    path,
                    hash,
                    left: l,
                    right: r,
                });
                Sub::New(u32::try_from(self.fresh.len() - 1).expect("fewer than 2^32 nodes"))
            }
        }
    }

    /// Writes the chunk whose top is `top` (a new node, or a leaf at the
    /// root) at (`depth`, `path`), and every new chunk below it.
    fn emit_chunk(&mut self, top: Sub, depth: u16, path: Digest) -> Result<Child, SmtError> {
        if depth >= self.keep_below {
            // Not kept decoded: encode straight from the new nodes (no tables).
            let mut out = Vec::with_capacity(1024);
            out.push(TAG_CHUNK);
            self.encode_sub(top, 0, depth, &mut out)?;
            self.out
                .puts
                .push((node_key(self.version, depth, &path), out));
            return Ok(Child {
                hash: self.sub_hash(top),
                version: self.version,
            });
        }
        // Built in a reused scratch chunk, then copied to exactly sized tables
        // (one allocation each instead of a growing Vec per table).
        let mut scratch = self.scratch.pop().unwrap_or_default();
        scratch.nodes.clear();
        scratch.leaves.clear();
        scratch.kids.clear();
        let root = self.place(&mut scratch, top, 0, depth)?;
        let c = Chunk {
            root,
            nodes: scratch.nodes.as_slice().to_vec(),
            leaves: scratch.leaves.as_slice().to_vec(),
            kids: scratch.kids.as_slice().to_vec(),
        };
        self.scratch.push(scratch);
        let id = ChunkId::new(self.version, depth, &path);
        let hash = c.hash();
        self.out.puts.push((id.key(), c.encode()));
        self.out.chunks.push((id, Arc::new(c)));
        Ok(Child {
            hash,
            version: self.version,
        })
    }

    /// Appends the encoding of `s` at `rel` levels below the top of a chunk
    /// (byte for byte what [`Chunk::encode`] of [`Self::place`]'s chunk gives).
    fn encode_sub(
        &mut self,
        s: Sub,
        rel: u16,
        depth: u16,
        out: &mut Vec<u8>,
    ) -> Result<(), SmtError> {
        match s {
            Sub::Empty => out.push(SLOT_EMPTY),
            Sub::OldLeaf { .. } | Sub::NewLeaf(_) => {
                let l = self.leaf_of(s);
                out.push(SLOT_LEAF);
                out.extend_from_slice(&l.kh);
                out.extend_from_slice(&l.vh);
                out.extend_from_slice(&l.version.to_le_bytes());
            }
            Sub::Kid { .. } if rel == CHUNK_LEVELS => {
                let k = self.kid_of(s);
                out.push(SLOT_CHUNK);
                out.extend_from_slice(&k.hash);
                out.extend_from_slice(&k.version.to_le_bytes());
            }
            Sub::Old { chunk, idx } if rel > 0 && rel < CHUNK_LEVELS => {
                self.chunks[chunk as usize].encode_slot(Slot::Inner(idx), out);
            }
            Sub::New(j) => {
                let n = self.fresh[j as usize];
                if rel == CHUNK_LEVELS {
                    let child = self.emit_chunk(s, n.depth, n.path)?;
                    out.push(SLOT_CHUNK);
                    out.extend_from_slice(&child.hash);
                    out.extend_from_slice(&child.version.to_le_bytes());
                } else {
                    out.push(SLOT_INNER);
                    self.encode_sub(n.left, rel + 1, depth + 1, out)?;
                    self.encode_sub(n.right, rel + 1, depth + 1, out)?;
                }
            }
            _ => {
                return Err(SmtError::Protocol(format!(
                    "subtree out of place at depth {depth}"
                )));
            }
        }
        Ok(())
    }

    /// The slot for `s` at `rel` levels below the top of chunk `c`.
    fn place(&mut self, c: &mut Chunk, s: Sub, rel: u16, depth: u16) -> Result<Slot, SmtError> {
        Ok(match s {
            Sub::Empty => Slot::Empty,
            Sub::OldLeaf { .. } | Sub::NewLeaf(_) => c.push_leaf(self.leaf_of(s)),
            Sub::Kid { .. } if rel == CHUNK_LEVELS => c.push_kid(self.kid_of(s)),
            Sub::Old { chunk, idx } if rel > 0 && rel < CHUNK_LEVELS => {
                let from = Arc::clone(&self.chunks[chunk as usize]);
                copy_old(c, &from, Slot::Inner(idx))
            }
            Sub::New(j) => {
                let n = self.fresh[j as usize];
                if rel == CHUNK_LEVELS {
                    let child = self.emit_chunk(s, n.depth, n.path)?;
                    c.push_kid(child)
                } else {
                    let left = self.place(c, n.left, rel + 1, depth + 1)?;
                    let right = self.place(c, n.right, rel + 1, depth + 1)?;
                    c.push_inner(n.hash, left, right)
                }
            }
            _ => {
                return Err(SmtError::Protocol(format!(
                    "subtree out of place at depth {depth}"
                )));
            }
        })
    }
}

/// Copies slot `s` of `from` (an untouched part of an old chunk) into `c`.
fn copy_old(c: &mut Chunk, from: &Chunk, s: Slot) -> Slot {
    match s {
        Slot::Empty => Slot::Empty,
        Slot::Leaf(i) => c.push_leaf(from.leaves[usize::from(i)]),
        Slot::Chunk(i) => c.push_kid(from.kids[usize::from(i)]),
        Slot::Inner(i) => {
            let n = from.nodes[usize::from(i)];
            let left = copy_old(c, from, n.left);
            let right = copy_old(c, from, n.right);
            c.push_inner(n.hash, left, right)
        }
    }
}

/// The top of the tree kept in memory across batches: every chunk at depth
/// `< depth_max` that the last batch wrote, that [`NodeCache::warm`] read,
/// or that is still current, keyed by its record key, decoded; at most
/// `max_bytes` of them (an estimate of their heap size; chunks that would
/// exceed it are not kept, so the cache stays bounded at any state size).
///
/// Record keys carry the version that wrote the record, so a committed key
/// names one record forever. The cache is only trusted for the tree whose
/// root it records ([`NodeCache::begin`]): a batch that was computed but
/// never committed (its write transaction aborted) leaves a cache whose root
/// is not the next batch's base, and the cache is then dropped (and refilled
/// by [`NodeCache::warm`] or lazily, from the chunks later batches write).
#[derive(Debug)]
pub struct NodeCache {
    pub depth_max: u16,
    pub max_bytes: usize,
    bytes: usize,
    root: Option<Child>,
    /// Each chunk with its [`cached_bytes`] (kept so dropping it touches no chunk memory).
    chunks: FastMap<ChunkId, (Arc<Chunk>, usize)>,
}

/// Estimated heap bytes of one cached chunk and its entry.
fn cached_bytes(c: &Chunk) -> usize {
    std::mem::size_of::<Chunk>()
        + 16 // Arc counters
        + c.nodes.capacity() * std::mem::size_of::<Inner>()
        + c.leaves.capacity() * std::mem::size_of::<LeafRef>()
        + c.kids.capacity() * std::mem::size_of::<Child>()
        + 3 * 16 // allocator overhead of the Arc and the three tables
        + std::mem::size_of::<(ChunkId, Arc<Chunk>)>()
        + 8 // hash table control bytes and slack
}

/// The chunks directly below `s` (a slot of `c` at `depth`), as wants.
fn kids_below(c: &Chunk, s: Slot, depth: u16, path: Digest, out: &mut Vec<Want>) {
    match s {
        Slot::Inner(i) => {
            let n = c.nodes[usize::from(i)];
            kids_below(c, n.left, depth + 1, with_bit(&path, depth, false), out);
            kids_below(c, n.right, depth + 1, with_bit(&path, depth, true), out);
        }
        Slot::Chunk(i) => {
            out.push(Want::of(c.kids[usize::from(i)], depth, &path, 0, 0));
        }
        Slot::Empty | Slot::Leaf(_) => {}
    }
}

impl NodeCache {
    pub fn new(depth_max: u16) -> NodeCache {
        NodeCache::with_budget(depth_max, usize::MAX)
    }

    pub fn with_budget(depth_max: u16, max_bytes: usize) -> NodeCache {
        NodeCache {
            depth_max,
            max_bytes,
            bytes: 0,
            root: None,
            chunks: FastMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Estimated heap bytes held (see [`Self::max_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.root = None;
        self.bytes = 0;
        self.chunks = FastMap::default();
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

    fn insert(&mut self, id: ChunkId, c: &Arc<Chunk>) {
        if id.depth >= self.depth_max {
            return;
        }
        let size = cached_bytes(c);
        if self.bytes.saturating_add(size) > self.max_bytes {
            return;
        }
        if let Some((_, old)) = self.chunks.insert(id, (Arc::clone(c), size)) {
            self.bytes -= old;
        }
        self.bytes += size;
    }

    fn remove(&mut self, key: &[u8]) {
        let Some(id) = ChunkId::from_key(key) else {
            return; // a leaf record
        };
        if let Some((_, old)) = self.chunks.remove(&id) {
            self.bytes -= old;
        }
    }

    /// Called with the outcome of a batch applied to the root passed to
    /// [`Self::begin`]: drops the replaced chunks, adds the new shallow ones.
    pub fn commit(&mut self, out: &Outcome) {
        for k in &out.stale {
            self.remove(k);
        }
        for (id, c) in &out.chunks {
            self.insert(*id, c);
        }
        self.root = out.root;
    }

    /// Fills the cache with the tree `root` down to `depth_max` (within the
    /// budget), one chunk level per `fetch` call, shallow levels first; keeps
    /// what it already holds if it describes that tree. Every chunk is
    /// checked against its parent's hash. Returns the chunks fetched.
    pub fn warm<E: From<SmtError>>(
        &mut self,
        root: Child,
        mut fetch: impl FnMut(&[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, E>,
    ) -> Result<usize, E> {
        self.begin(root);
        let mut fetched = 0;
        let mut level = Vec::new();
        if !root.is_empty() {
            level.push(Want::of(root, 0, &[0; 32], 0, 0));
        }
        let mut full = false;
        while !level.is_empty() && !full {
            let mut next = Vec::new();
            let (have, miss): (Vec<Want>, Vec<Want>) = level
                .into_iter()
                .partition(|w| self.chunks.contains_key(&w.id));
            for w in have {
                let c = Arc::clone(&self.chunks[&w.id].0);
                kids_below(&c, c.root, w.id.depth, w.id.path, &mut next);
            }
            if !miss.is_empty() {
                let keys: Vec<Vec<u8>> = miss.iter().map(|w| w.id.key()).collect();
                let got = fetch(&keys)?;
                if got.len() != miss.len() {
                    return Err(SmtError::Protocol("fetch returned a wrong count".into()).into());
                }
                fetched += got.len();
                for (w, raw) in miss.into_iter().zip(got) {
                    let raw = raw.ok_or_else(|| SmtError::MissingNode(w.id.key()))?;
                    let c = Chunk::decode(&raw, w.id.depth)?;
                    if c.hash() != w.hash {
                        return Err(SmtError::BadNode(format!(
                            "chunk {} does not match its parent's hash",
                            hex(&w.id.key())
                        ))
                        .into());
                    }
                    let c = Arc::new(c);
                    let before = self.chunks.len();
                    self.insert(w.id, &c);
                    full |= self.chunks.len() == before;
                    kids_below(&c, c.root, w.id.depth, w.id.path, &mut next);
                }
            }
            next.retain(|w| w.id.depth < self.depth_max);
            level = next;
        }
        self.root = Some(root);
        Ok(fetched)
    }
}

/// Builds a whole tree at one version from scratch (genesis): records are
/// added in any order, then sorted by key hash; every hash is computed
/// bottom up, then every record is emitted once in storage-key order (the
/// chunks by depth, then path; then the leaf records by key hash), so the
/// caller can write them with an append-only cursor. Memory: 40 bytes per
/// key plus its value, and 32 bytes per chunk while emitting.
pub struct BulkBuilder {
    version: u64,
    recs: Vec<(Digest, u64)>, // (key hash, offset of `len u32 LE || value` in arena)
    arena: Vec<u8>,
    // After `finish`:
    root: Option<Child>,
    hashes: Vec<Vec<Digest>>, // hashes[d / 4]: chunk tops at depth d, in path order
    depth: u16,               // depth of the chunks being emitted
    ranges: Vec<(u32, u32)>,  // record ranges of the chunks at `depth`, in path order
    pos: usize,
    next_ranges: Vec<(u32, u32)>,
    child_cursor: usize, // next unused entry of hashes[depth / 4 + 1]
    leaf_cursor: usize,  // next leaf record, once every chunk is out
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
            leaf_cursor: 0,
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

    fn leaf(&self, i: usize) -> (Digest, Digest, Digest) {
        let kh = self.recs[i].0;
        let vh = value_hash(self.value(i));
        (kh, vh, leaf_hash(&kh, &vh))
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
            1 => self.leaf(lo).2,
            _ => {
                let mid = self.split(lo, hi, depth);
                let l = self.hash_range(lo, mid, depth + 1, out);
                let r = self.hash_range(mid, hi, depth + 1, out);
                let h = node_hash(&l, &r);
                if depth % CHUNK_LEVELS == 0 {
                    let d = usize::from(depth / CHUNK_LEVELS);
                    if out.len() <= d {
                        out.resize_with(d + 1, Vec::new);
                    }
                    out[d].push(h);
                }
                h
            }
        }
    }

    /// The slot for records `lo..hi` at `depth`, `rel` levels into a chunk.
    fn slot(&mut self, c: &mut Chunk, lo: usize, hi: usize, depth: u16, rel: u16) -> Slot {
        match hi - lo {
            0 => Slot::Empty,
            1 => {
                let (kh, vh, lh) = self.leaf(lo);
                c.push_leaf(LeafRef {
                    kh,
                    vh,
                    lh,
                    version: self.version,
                })
            }
            _ if rel == CHUNK_LEVELS => {
                let hash = self.hashes[usize::from(depth / CHUNK_LEVELS)][self.child_cursor];
                self.child_cursor += 1;
                self.next_ranges.push((lo as u32, hi as u32));
                c.push_kid(Child {
                    hash,
                    version: self.version,
                })
            }
            _ => {
                let mid = self.split(lo, hi, depth);
                let left = self.slot(c, lo, mid, depth + 1, rel + 1);
                let right = self.slot(c, mid, hi, depth + 1, rel + 1);
                let hash = node_hash(&c.slot_hash(left), &c.slot_hash(right));
                c.push_inner(hash, left, right)
            }
        }
    }

    /// The next at most `max` records `(key, record)`, ascending by key;
    /// empty when every record was emitted. Call after [`Self::finish`].
    pub fn emit(&mut self, max: usize) -> Result<Vec<NodeWrite>, SmtError> {
        if self.root.is_none() {
            return Err(SmtError::Protocol("emit before finish".into()));
        }
        let mut out = Vec::with_capacity(max.min(1 << 16));
        while out.len() < max {
            if self.pos >= self.ranges.len() {
                if self.next_ranges.is_empty() {
                    // Every chunk is out: the leaf records, by key hash.
                    self.ranges.clear();
                    self.hashes.clear();
                    self.pos = 0;
                    if self.leaf_cursor >= self.recs.len() {
                        break;
                    }
                    let i = self.leaf_cursor;
                    self.leaf_cursor += 1;
                    let kh = self.recs[i].0;
                    let value = self.value(i);
                    let record = encode_leaf(&kh, &value_hash(value), value);
                    out.push((leaf_key(self.version, &kh), record));
                    continue;
                }
                self.ranges = std::mem::take(&mut self.next_ranges);
                self.pos = 0;
                self.depth += CHUNK_LEVELS;
                if let Some(done) = self.hashes.get_mut(usize::from(self.depth / CHUNK_LEVELS)) {
                    *done = Vec::new(); // referred to by the chunks above: free them
                }
                self.child_cursor = 0;
            }
            let (lo, hi) = self.ranges[self.pos];
            self.pos += 1;
            let (lo, hi) = (lo as usize, hi as usize);
            let depth = self.depth;
            let mut c = Chunk::default();
            c.root = self.slot(&mut c, lo, hi, depth, 0);
            // Any key below serves as the path: they share the first `depth` bits.
            out.push((node_key(self.version, depth, &self.recs[lo].0), c.encode()));
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

/// An in-memory record store driving an [`Updater`] (tests and re-execution).
#[derive(Default)]
pub struct MemStore {
    pub nodes: HashMap<Vec<u8>, Vec<u8>>,
    pub root: Option<Child>,
}

impl MemStore {
    pub fn root(&self) -> Child {
        self.root.unwrap_or_else(Child::empty)
    }

    /// Applies one batch at `version`; stale records are deleted at once
    /// (no history is kept).
    pub fn apply(&mut self, version: u64, updates: Vec<Update>) -> Result<Outcome, SmtError> {
        let mut up = Updater::new(self.root(), version, updates)?;
        loop {
            let want = up.wanted();
            if want.is_empty() {
                break;
            }
            let values: Vec<Option<&Vec<u8>>> = want.iter().map(|k| self.nodes.get(k)).collect();
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

        /// Up to `n_max - 1` updates over keys `k0..k{keys}`; one in `delete_one_in`
        /// is a deletion, the rest set values `v0..v{values}`.
        fn batch(
            &mut self,
            n_max: u64,
            keys: u64,
            delete_one_in: u64,
            values: u64,
        ) -> HashMap<Vec<u8>, Option<Vec<u8>>> {
            let mut batch = HashMap::new();
            for _ in 0..(self.next() % n_max) {
                let key = format!("k{}", self.next() % keys).into_bytes();
                let value = (self.next() % delete_one_in != 0)
                    .then(|| format!("v{}", self.next() % values).into_bytes());
                batch.insert(key, value);
            }
            batch
        }
    }

    /// The updates of a `Rng::batch`.
    fn updates_of(batch: &HashMap<Vec<u8>, Option<Vec<u8>>>) -> Vec<Update> {
        batch
            .iter()
            .map(|(k, v)| Update::new(k, v.as_deref()))
            .collect()
    }

    fn reference(state: &HashMap<Vec<u8>, Vec<u8>>) -> Digest {
        let entries: Vec<_> = state
            .iter()
            .map(|(k, v)| (key_hash(k), value_hash(v)))
            .collect();
        root_of(&entries)
    }

    /// Records reachable from the root (chunks and leaves), each checked.
    fn reachable(store: &MemStore) -> usize {
        fn slot(store: &MemStore, c: &Chunk, s: Slot, depth: u16, path: Digest) -> usize {
            match s {
                Slot::Empty => 0,
                Slot::Leaf(i) => {
                    let l = c.leaves[usize::from(i)];
                    let (k, v, _) = decode_leaf(&store.nodes[&leaf_key(l.version, &l.kh)]).unwrap();
                    assert_eq!((k, v, leaf_hash(&k, &v)), (l.kh, l.vh, l.lh));
                    assert_eq!(node_key(0, depth, &l.kh), node_key(0, depth, &path));
                    1
                }
                Slot::Inner(i) => {
                    let n = c.nodes[usize::from(i)];
                    slot(store, c, n.left, depth + 1, with_bit(&path, depth, false))
                        + slot(store, c, n.right, depth + 1, with_bit(&path, depth, true))
                }
                Slot::Chunk(i) => {
                    let kid = c.kids[usize::from(i)];
                    let raw = &store.nodes[&node_key(kid.version, depth, &path)];
                    let child = Chunk::decode(raw, depth).unwrap();
                    assert_eq!(child.hash(), kid.hash);
                    assert_eq!(&child.encode(), raw, "canonical encoding");
                    1 + slot(store, &child, child.root, depth, path)
                }
            }
        }
        let root = store.root();
        if root.is_empty() {
            return 0;
        }
        let top = Chunk {
            kids: vec![root],
            ..Chunk::default()
        };
        let s = Slot::Chunk(0);
        // The root chunk sits at depth 0 like a child at a chunk boundary.
        slot(store, &top, s, 0, [0; 32])
    }

    #[test]
    fn empty_and_single() {
        let mut s = MemStore::default();
        assert_eq!(s.root().hash, empty_hash());
        s.apply(1, vec![Update::new(b"a", Some(b"1"))]).unwrap();
        assert_eq!(s.root().hash, leaf_hash(&key_hash(b"a"), &value_hash(b"1")));
        assert_eq!(s.nodes.len(), 2); // the root chunk (a leaf at the top) and the leaf
        assert_eq!(reachable(&s), 2);
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
            let batch = rng.batch(40, 120, 3, 7);
            store.apply(version, updates_of(&batch)).unwrap();
            for (k, v) in batch {
                match v {
                    Some(v) => state.insert(k, v),
                    None => state.remove(&k),
                };
            }
            assert_eq!(store.root().hash, reference(&state), "version {version}");
            // Exactly one leaf record per key.
            let leaves = store.nodes.values().filter(|v| v[0] == TAG_LEAF).count();
            assert_eq!(leaves, state.len());
            // Every stale record was reported: the store holds exactly the
            // records reachable from the root.
            assert_eq!(reachable(&store), store.nodes.len());
        }
    }

    #[test]
    fn direct_encoding_equals_decoded_chunks() {
        // Chunks not kept decoded are encoded straight from the new nodes:
        // same records, byte for byte, as through decoded chunks.
        let mut rng = Rng(0x5151_2026_7777_0001);
        let mut store = MemStore::default();
        for version in 1..=40u64 {
            let batch = rng.batch(200, 3000, 5, 9);
            let updates = || updates_of(&batch);
            let run = |keep: u16| {
                let mut up = Updater::new(store.root(), version, updates()).unwrap();
                up.keep_chunks_below(keep);
                loop {
                    let want = up.wanted();
                    if want.is_empty() {
                        break;
                    }
                    up.supply(want.iter().map(|k| store.nodes.get(k)).collect())
                        .unwrap();
                }
                up.finish().unwrap()
            };
            let all = run(u16::MAX);
            for keep in [0u16, 4, 8] {
                let some = run(keep);
                assert_eq!(some.puts, all.puts, "version {version} keep {keep}");
                assert_eq!(some.stale, all.stale);
                assert_eq!(some.root, all.root);
                assert!(
                    some.chunks
                        .iter()
                        .all(|(id, _)| id.depth < keep)
                );
            }
            store.apply(version, updates()).unwrap();
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
        assert_eq!(many.nodes.len(), 2);
    }

    #[test]
    fn missing_and_damaged_records_are_errors() {
        let mut s = MemStore::default();
        s.apply(
            1,
            (0..40u8).map(|i| Update::new(&[i], Some(b"x"))).collect(),
        )
        .unwrap();
        let all: Vec<Update> = (0..40u8).map(|i| Update::new(&[i], Some(b"y"))).collect();
        let chunk_keys: Vec<Vec<u8>> = s
            .nodes
            .iter()
            .filter(|(_, v)| v[0] == TAG_CHUNK)
            .map(|(k, _)| k.clone())
            .collect();
        assert!(chunk_keys.len() > 1);
        for key in &chunk_keys {
            let mut missing = MemStore {
                nodes: s.nodes.clone(),
                root: s.root,
            };
            missing.nodes.remove(key);
            assert!(matches!(
                missing.apply(2, all.clone()),
                Err(SmtError::MissingNode(_))
            ));
            // Every single-byte change of a chunk is refused once the batch
            // reaches it (a changed chunk version names a record that is not
            // there), except in a leaf's version: only the address of its
            // record, which an update never reads (a read refuses it).
            let depth = u16::from_be_bytes([key[8], key[9]]);
            let original = Chunk::decode(&s.nodes[key], depth).unwrap();
            let unversioned = |c: &Chunk| {
                let mut c = c.clone();
                for l in &mut c.leaves {
                    l.version = 0;
                }
                c
            };
            let len = s.nodes[key].len();
            for i in 0..len {
                let mut flipped = MemStore {
                    nodes: s.nodes.clone(),
                    root: s.root,
                };
                flipped.nodes.get_mut(key).unwrap()[i] ^= 0x40;
                if let Ok(c) = Chunk::decode(&flipped.nodes[key], depth)
                    && unversioned(&c) == unversioned(&original)
                {
                    continue; // a leaf version
                }
                let r = flipped.apply(2, all.clone());
                assert!(r.is_err(), "byte {i} depth {depth} {:?}", r.map(|o| o.root));
            }
        }
        assert!(matches!(
            Updater::new(
                s.root(),
                2,
                vec![Update::new(b"a", None), Update::new(b"a", Some(b"1"))]
            ),
            Err(SmtError::DuplicateKey)
        ));
        assert!(Chunk::decode(&[], 0).is_err());
        assert!(Chunk::decode(&[TAG_CHUNK, SLOT_EMPTY], 0).is_err());
        let leaf = |b: u8| {
            let mut v = vec![SLOT_LEAF];
            v.extend_from_slice(&[b; 72]);
            v
        };
        let mut two = vec![TAG_CHUNK, SLOT_INNER];
        two.extend(leaf(1));
        two.extend(leaf(2));
        assert!(Chunk::decode(&two, 0).is_ok());
        assert!(Chunk::decode(&two, 2).is_err(), "depth not a chunk depth");
        let mut lone = vec![TAG_CHUNK, SLOT_INNER, SLOT_EMPTY];
        lone.extend(leaf(1));
        assert!(Chunk::decode(&lone, 0).is_err(), "one leaf below a node");
        assert!(Chunk::decode(&[two.clone(), vec![0]].concat(), 0).is_err());
        assert!(decode_leaf(&[TAG_LEAF; 64]).is_err());
    }

    #[test]
    fn bulk_build_equals_one_batch_and_emits_in_key_order() {
        for n in [0usize, 1, 2, 3, 17, 1000, 5000] {
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
            up.supply(want.iter().map(|k| store.nodes.get(k)).collect())?;
        }
        let out = up.finish()?;
        cache.commit(&out);
        Ok(out)
    }

    #[test]
    fn cache_matches_uncached_and_survives_aborted_batches() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut store = MemStore::default();
        let mut plain = MemStore::default();
        let mut cache = NodeCache::new(8);
        for version in 1..=80u64 {
            let batch = rng.batch(50, 300, 4, 9);
            let updates = || updates_of(&batch);
            if rng.next() % 4 == 0 {
                // A batch computed at this version but never committed: its
                // records (same keys as the real batch's, other contents) must
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
            assert!(cache.chunks.keys().all(|k| store.nodes.contains_key(&k.key())));
        }
        assert!(!cache.is_empty());
    }

    #[test]
    fn keys() {
        let path = [0xff; 32];
        assert_eq!(
            node_key(5, 3, &path),
            [0, 0, 0, 0, 0, 0, 0, 5, 0, 3, 0b1110_0000]
        );
        assert_eq!(node_key(1, 0, &path).len(), 10);
        assert_eq!(node_key(1, 256, &path).len(), 42);
        let lk = leaf_key(1, &path);
        assert_eq!(lk.len(), 42);
        assert_eq!(&lk[8..10], &[0xff, 0xff]);
    }
}
