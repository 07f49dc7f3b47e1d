//! Record codec: the storage keys and bytes of chunks and leaves.
//!
//! * chunk key `version u64 BE || depth u16 BE || path` ([`node_key`], or
//!   [`ChunkId`] without an allocation); leaf key `version u64 BE || 0xFFFF
//!   || kh` ([`leaf_key`]);
//! * chunk record `0x03 || slots` in pre-order ([`Chunk::encode`] /
//!   [`Chunk::decode`], which recomputes the internal hashes and so checks
//!   the chunk against the hash its parent expects);
//! * leaf record `0x02 || kh || vh || value` ([`encode_leaf`] /
//!   [`decode_leaf`], the value checked against `vh`).
//!
//! [`Chunk`] is the decoded form every other module works on: slots are
//! indices into its node, leaf and kid tables, so slots stay small.

use super::error::SmtError;
use super::hash::{Ctx, Digest, TreeHash};

/// A node to store: `(node key, encoded node)`.
pub type NodeWrite = (Vec<u8>, Vec<u8>);

/// Levels of the binary tree per stored chunk.
pub const CHUNK_LEVELS: u16 = 4;
pub const TAG_LEAF: u8 = 0x02;
pub const TAG_CHUNK: u8 = 0x03;
pub const LEAF_HEAD_BYTES: usize = 1 + 32 + 32;
/// The depth field of a leaf record's key (no chunk is that deep).
pub const LEAF_DEPTH_MARK: u16 = 0xFFFF;
/// Deepest possible leaf: two distinct 256-bit hashes differ by bit 255.
pub const DEPTH_MAX: u16 = 256;

pub(super) const SLOT_INNER: u8 = 0x00;
pub(super) const SLOT_EMPTY: u8 = 0x01;
pub(super) const SLOT_LEAF: u8 = 0x02;
pub(super) const SLOT_CHUNK: u8 = 0x03;

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
        if !depth.is_multiple_of(8) {
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

/// `(kh, vh, value)` of a leaf record, its value checked against `vh`
/// (hashed with `th`, the tree's hash).
pub fn decode_leaf(data: &[u8], th: TreeHash) -> Result<(Digest, Digest, &[u8]), SmtError> {
    if data.len() < LEAF_HEAD_BYTES || data[0] != TAG_LEAF {
        return Err(SmtError::BadNode(format!(
            "leaf record of {} bytes with tag {:?}",
            data.len(),
            data.first()
        )));
    }
    let kh: Digest = data[1..33].try_into().expect("32 bytes");
    let vh: Digest = data[33..65].try_into().expect("32 bytes");
    if th.value_hash(&data[65..]) != vh {
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
    /// The empty tree of a tree hashed with `th`.
    pub fn empty(th: TreeHash) -> Child {
        Child {
            hash: th.empty_hash(),
            version: 0,
        }
    }
    pub fn is_empty(&self, th: TreeHash) -> bool {
        self.hash == th.empty_hash()
    }
}

/// A leaf as its chunk refers to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafRef {
    pub kh: Digest,
    pub vh: Digest,
    /// `leaf_hash(kh, vh)` of the tree's hash, computed (not stored).
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

/// A decoded chunk, with the hash of every internal node (computed with the
/// tree's [`TreeHash`], given to [`Chunk::decode`]; the hash functions of a
/// chunk take it too, for the empty subtree).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    pub root: Slot,
    pub nodes: Vec<Inner>,
    pub leaves: Vec<LeafRef>,
    pub kids: Vec<Child>,
}

impl Chunk {
    pub fn slot_hash(&self, s: Slot, th: TreeHash) -> Digest {
        match s {
            Slot::Empty => th.empty_hash(),
            Slot::Leaf(i) => self.leaves[usize::from(i)].lh,
            Slot::Inner(i) => self.nodes[usize::from(i)].hash,
            Slot::Chunk(i) => self.kids[usize::from(i)].hash,
        }
    }

    pub fn hash(&self, th: TreeHash) -> Digest {
        self.slot_hash(self.root, th)
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

    pub(super) fn encode_slot(&self, s: Slot, out: &mut Vec<u8>) {
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
    /// hashes with `th`. Refuses every malformed or non-canonical record (a slot kind
    /// where it cannot be, an internal node with fewer than two keys below,
    /// trailing bytes); the caller checks [`Self::hash`] against the parent.
    pub fn decode(data: &[u8], depth: u16, th: TreeHash) -> Result<Chunk, SmtError> {
        let mut one = Chunk::decode_many(&[(data, depth)], th)?;
        Ok(one.pop().expect("one chunk"))
    }

    /// [`Self::decode`] of each `(record, depth)`, the hashes of all of them
    /// computed together: the leaves' in one batch, then the internal nodes
    /// level by level from the bottom of the chunks ([`TreeHash::hash_pairs`]).
    /// The first refused record is the error.
    pub fn decode_many(records: &[(&[u8], u16)], th: TreeHash) -> Result<Vec<Chunk>, SmtError> {
        let mut chunks = Vec::with_capacity(records.len());
        // Each node's level (one more than its highest child node; 0: none), per chunk.
        let mut levels: Vec<Vec<u8>> = Vec::with_capacity(records.len());
        for &(data, depth) in records {
            let (c, l) = Chunk::decode_shape(data, depth)?;
            chunks.push(c);
            levels.push(l);
        }
        let pairs: Vec<[Digest; 2]> = chunks
            .iter()
            .flat_map(|c| c.leaves.iter().map(|l| [l.kh, l.vh]))
            .collect();
        let mut hashes = vec![[0u8; 32]; pairs.len()];
        th.hash_pairs(Ctx::Leaf, &pairs, &mut hashes);
        let mut next = hashes.into_iter();
        for c in &mut chunks {
            for l in &mut c.leaves {
                l.lh = next.next().expect("one hash per leaf");
            }
        }
        let (mut at, mut pairs, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
        for level in 0..CHUNK_LEVELS as u8 {
            at.clear();
            pairs.clear();
            for (ci, (c, l)) in chunks.iter().zip(&levels).enumerate() {
                for (ni, n) in c.nodes.iter().enumerate() {
                    if l[ni] == level {
                        at.push((ci, ni));
                        pairs.push([c.slot_hash(n.left, th), c.slot_hash(n.right, th)]);
                    }
                }
            }
            hashes.clear();
            hashes.resize(pairs.len(), [0u8; 32]);
            th.hash_pairs(Ctx::Node, &pairs, &mut hashes);
            for (&(ci, ni), h) in at.iter().zip(&hashes) {
                chunks[ci].nodes[ni].hash = *h;
            }
        }
        Ok(chunks)
    }

    /// The chunk's shape (hashes left zero) and each node's level.
    fn decode_shape(data: &[u8], depth: u16) -> Result<(Chunk, Vec<u8>), SmtError> {
        let bad = |m: &str| SmtError::BadNode(format!("chunk at depth {depth}: {m}"));
        if data.first() != Some(&TAG_CHUNK)
            || !depth.is_multiple_of(CHUNK_LEVELS)
            || depth >= DEPTH_MAX
        {
            return Err(bad(&format!(
                "record of {} bytes with tag {:?}",
                data.len(),
                data.first()
            )));
        }
        let mut c = Chunk::default();
        let mut levels = Vec::new();
        let mut pos = 1;
        let root = c
            .parse(data, &mut pos, 0, &mut levels)
            .ok_or_else(|| bad("malformed"))?;
        if pos != data.len() {
            return Err(bad("trailing bytes"));
        }
        match root {
            Slot::Inner(_) => {}
            Slot::Leaf(_) if depth == 0 => {}
            _ => return Err(bad("top slot is not an internal node")),
        }
        c.root = root;
        Ok((c, levels))
    }

    fn parse(
        &mut self,
        data: &[u8],
        pos: &mut usize,
        rel: u16,
        levels: &mut Vec<u8>,
    ) -> Option<Slot> {
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
                Some(self.push_leaf(LeafRef {
                    kh,
                    vh,
                    lh: [0; 32], // hashed with the others (`decode_many`)
                    version,
                }))
            }
            SLOT_CHUNK if rel == CHUNK_LEVELS => {
                let hash = take(32)?.try_into().ok()?;
                let version = u64::from_le_bytes(take(8)?.try_into().ok()?);
                Some(self.push_kid(Child { hash, version }))
            }
            SLOT_INNER if rel < CHUNK_LEVELS => {
                let left = self.parse(data, pos, rel + 1, levels)?;
                let right = self.parse(data, pos, rel + 1, levels)?;
                let lone = |s: Slot| matches!(s, Slot::Empty | Slot::Leaf(_));
                if lone(left) && lone(right) && (left == Slot::Empty || right == Slot::Empty) {
                    return None; // fewer than two keys below: not canonical
                }
                let level_of = |s: Slot| match s {
                    Slot::Inner(i) => levels[usize::from(i)] + 1,
                    _ => 0,
                };
                let level = level_of(left).max(level_of(right));
                levels.push(level);
                Some(self.push_inner([0; 32], left, right))
            }
            _ => None,
        }
    }
}
