//! [`NodeCache`]: the top of the tree kept decoded in memory across
//! batches, bounded by depth and by an estimate of its heap bytes; trusted
//! only for the root it last produced ([`NodeCache::begin`]), refilled by
//! [`NodeCache::warm`] (one fetch per chunk level, each chunk checked
//! against its parent) or lazily from the chunks batches write
//! ([`NodeCache::commit`]).

use std::sync::Arc;

use foldhash::HashMap as FastMap;

use super::error::{SmtError, hex};
use super::hash::*;
use super::record::*;
use super::update::*;

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
///
/// A cache serves trees of one [`TreeHash`] (it decodes and checks chunks
/// with it); an [`Updater`] of another refuses it.
#[derive(Debug)]
pub struct NodeCache {
    hash: TreeHash,
    pub depth_max: u16,
    pub max_bytes: usize,
    bytes: usize,
    root: Option<Child>,
    /// Each chunk with its [`cached_bytes`] (kept so dropping it touches no chunk memory).
    pub(super) chunks: FastMap<ChunkId, (Arc<Chunk>, usize)>,
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
    /// A cache of BLAKE3 trees, unbounded in bytes.
    pub fn new(depth_max: u16) -> NodeCache {
        NodeCache::with_hash(TreeHash::Blake3, depth_max, usize::MAX)
    }

    /// A cache of BLAKE3 trees of at most about `max_bytes`.
    pub fn with_budget(depth_max: u16, max_bytes: usize) -> NodeCache {
        NodeCache::with_hash(TreeHash::Blake3, depth_max, max_bytes)
    }

    /// A cache of trees hashed with `hash`, of at most about `max_bytes`.
    pub fn with_hash(hash: TreeHash, depth_max: u16, max_bytes: usize) -> NodeCache {
        NodeCache {
            hash,
            depth_max,
            max_bytes,
            bytes: 0,
            root: None,
            chunks: FastMap::default(),
        }
    }

    /// The hash of the trees this cache serves.
    pub fn hash(&self) -> TreeHash {
        self.hash
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
        if !root.is_empty(self.hash) {
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
                let mut records = Vec::with_capacity(got.len());
                for (w, raw) in miss.iter().zip(&got) {
                    let raw = raw.as_ref().ok_or_else(|| SmtError::MissingNode(w.id.key()))?;
                    records.push((raw.as_slice(), w.id.depth));
                }
                let decoded = Chunk::decode_many(&records, self.hash)?;
                for (w, c) in miss.into_iter().zip(decoded) {
                    if c.hash(self.hash) != w.hash {
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
