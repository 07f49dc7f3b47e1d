//! [`BulkBuilder`]: a whole tree at one version built bottom up (genesis):
//! entries added in any order, sorted by key hash, hashed bottom up, then
//! every record emitted once in storage-key order for an append-only cursor.

use super::error::SmtError;
use super::hash::*;
use super::record::*;

/// Builds a whole tree at one version from scratch (genesis): records are
/// added in any order, then sorted by key hash; every hash is computed
/// bottom up, then every record is emitted once in storage-key order (the
/// chunks by depth, then path; then the leaf records by key hash), so the
/// caller can write them with an append-only cursor. Memory: 40 bytes per
/// key plus its value, and 32 bytes per chunk while emitting.
pub struct BulkBuilder {
    hash: TreeHash,
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
    /// A BLAKE3 tree, its records written at `version`.
    pub fn new(version: u64) -> BulkBuilder {
        BulkBuilder::with_hash(TreeHash::Blake3, version)
    }

    /// A tree hashed with `hash`, its records written at `version`.
    pub fn with_hash(hash: TreeHash, version: u64) -> BulkBuilder {
        BulkBuilder {
            hash,
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
        self.recs
            .push((self.hash.key_hash(key), self.arena.len() as u64));
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
        let vh = self.hash.value_hash(self.value(i));
        (kh, vh, self.hash.leaf_hash(&kh, &vh))
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
            Child::empty(self.hash)
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
            0 => self.hash.empty_hash(),
            1 => self.leaf(lo).2,
            _ => {
                let mid = self.split(lo, hi, depth);
                let l = self.hash_range(lo, mid, depth + 1, out);
                let r = self.hash_range(mid, hi, depth + 1, out);
                let h = self.hash.node_hash(&l, &r);
                if depth.is_multiple_of(CHUNK_LEVELS) {
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
                let th = self.hash;
                let hash = th.node_hash(&c.slot_hash(left, th), &c.slot_hash(right, th));
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
                    let record = encode_leaf(&kh, &self.hash.value_hash(value), value);
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
