//! One batch update: [`Updater`], the state machine of the module docs.
//!
//! 1. `new` hashes and sorts the updates by key hash (duplicates refused)
//!    and asks for the root chunk.
//! 2. Per chunk level, [`Updater::wanted`] lists the records to fetch (one
//!    cursor pass for the caller) and [`Updater::supply`] decodes them,
//!    checks each against its parent's hash and, with [`reach`], works out
//!    which chunks one level down the updates reach; `resolve_from` takes
//!    chunks a [`NodeCache`](super::NodeCache) holds instead. Each loaded
//!    chunk is linked to its parent's kid slot, so `finish` finds it by
//!    position, with no map.
//! 3. [`Updater::finish`] rebuilds the touched subtrees in memory (leaves
//!    placed at the shallowest unique depth, lone leaves moved up after
//!    deletions, untouched parts copied with `copy_old`), hashes the new
//!    internal nodes once the shape is known (a level at a time from the
//!    bottom, each level one batch), re-chunks them, and returns an
//!    [`Outcome`]: the new root, the records to write in key order, and the
//!    keys of the records replaced (stale).
//!
//! A batch's key, value and leaf hashes are computed in batches too
//! ([`Update::many`], `new`), and a level of chunks read is decoded together
//! ([`Chunk::decode_many`]): BLAKE3 trees hash eight messages at a time.

use std::sync::Arc;

use super::cache::NodeCache;
use super::error::{SmtError, hex};
use super::hash::*;
use super::record::*;

/// One write of a batch: `value` `None` deletes the key; `kh` and `vh` are
/// hashed with `hash` (an [`Updater`] of another hash refuses it).
#[derive(Clone, Debug)]
pub struct Update {
    pub kh: Digest,
    pub vh: Digest,
    pub value: Option<Vec<u8>>,
    pub hash: TreeHash,
}

impl Update {
    /// The write of `key` (`value` `None`: its deletion) in a BLAKE3 tree.
    pub fn new(key: &[u8], value: Option<&[u8]>) -> Update {
        Update::with_hash(TreeHash::Blake3, key, value)
    }

    /// The write of `key` (`value` `None`: its deletion) in a tree hashed with `hash`.
    pub fn with_hash(hash: TreeHash, key: &[u8], value: Option<&[u8]>) -> Update {
        Update {
            kh: hash.key_hash(key),
            vh: value.map_or([0; 32], |v| hash.value_hash(v)),
            value: value.map(<[u8]>::to_vec),
            hash,
        }
    }

    /// The writes of `items` (`(key, value)`, `None`: a deletion), values
    /// moved in: what [`Update::with_hash`] gives one by one, hashed in
    /// batches ([`TreeHash::hash_many`]).
    pub fn many(hash: TreeHash, items: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Vec<Update> {
        let keys: Vec<&[u8]> = items.iter().map(|(k, _)| k.as_slice()).collect();
        let mut khs = vec![[0u8; 32]; items.len()];
        hash.hash_many(Ctx::Key, &keys, &mut khs);
        let values: Vec<&[u8]> = items.iter().filter_map(|(_, v)| v.as_deref()).collect();
        let mut vhs = vec![[0u8; 32]; values.len()];
        hash.hash_many(Ctx::Value, &values, &mut vhs);
        let mut vhs = vhs.into_iter();
        items
            .into_iter()
            .zip(khs)
            .map(|((_, value), kh)| Update {
                kh,
                vh: match value {
                    Some(_) => vhs.next().expect("one hash per value"),
                    None => [0; 32],
                },
                value,
                hash,
            })
            .collect()
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
const NOT_LOADED: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct NewNode {
    depth: u16,
    /// One more than the highest new node below (0: none): the nodes of one
    /// level depend only on lower levels, so a level is hashed in one batch.
    level: u16,
    path: Digest,
    /// Set by [`Updater::hash_fresh`], once the batch's shape is known.
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
pub(super) struct Want {
    pub(super) id: ChunkId,
    pub(super) hash: Digest,
    lo: usize,
    hi: usize,
    /// Where the chunk hangs: its parent (an index into `Updater::chunks`,
    /// or `ROOT` for the root chunk) and its kid slot there.
    parent: u32,
    slot: u8,
}

impl Want {
    /// The chunk `kid` at (`depth`, `path`).
    pub(super) fn of(kid: Child, depth: u16, path: &Digest, lo: usize, hi: usize) -> Want {
        Want {
            id: ChunkId::new(kid.version, depth, path),
            hash: kid.hash,
            lo,
            hi,
            parent: ROOT,
            slot: 0,
        }
    }

    /// The same chunk, kid `slot` of the loaded chunk `parent`.
    fn under(mut self, parent: u32, slot: u8) -> Want {
        self.parent = parent;
        self.slot = slot;
        self
    }
}

fn split(updates: &[Update], lo: usize, hi: usize, depth: u16) -> usize {
    lo + updates[lo..hi].partition_point(|u| !bit(&u.kh, depth))
}

/// The chunks below `s` (a slot of `c`, loaded as chunk `ci`, at `depth`)
/// that the updates `lo..hi` reach.
#[allow(clippy::too_many_arguments)]
fn reach(
    updates: &[Update],
    c: &Chunk,
    ci: u32,
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
            reach(updates, c, ci, n.left, depth + 1, lp, lo, mid, out);
            reach(updates, c, ci, n.right, depth + 1, rp, mid, hi, out);
        }
        Slot::Chunk(i) => {
            out.push(Want::of(c.kids[usize::from(i)], depth, &path, lo, hi).under(ci, i));
        }
        Slot::Empty | Slot::Leaf(_) => {}
    }
}

/// One batch update (see the module docs for the protocol).
pub struct Updater {
    hash: TreeHash,
    version: u64,
    root: Child,
    updates: Vec<Update>,
    lhs: Vec<Digest>,        // leaf hash of each put
    puts_prefix: Vec<usize>, // puts_prefix[i] = puts among updates[..i]
    chunks: Vec<Arc<Chunk>>, // loaded chunks
    /// The loaded index of each loaded chunk's kids (`NOT_LOADED` if not),
    /// and of the root chunk: found by position, with no map.
    kid_at: Vec<[u32; 16]>,
    root_at: u32,
    level: Vec<Want>,
    fresh: Vec<NewNode>,
    out: Outcome,
    leaf_puts: Vec<NodeWrite>, // the leaf records, in key order (appended to `out.puts` last)
    keep_below: u16,
    scratch: Vec<Chunk>, // one per nesting level of `emit_chunk`
}

impl Updater {
    /// `root` is a BLAKE3 tree to update; new records are written at `version`.
    pub fn new(root: Child, version: u64, updates: Vec<Update>) -> Result<Updater, SmtError> {
        Updater::with_hash(TreeHash::Blake3, root, version, updates)
    }

    /// `root` is the tree to update, hashed with `hash` (as `updates` must
    /// be: [`Update::with_hash`] of the same `hash`); new records are written
    /// at `version`.
    pub fn with_hash(
        hash: TreeHash,
        root: Child,
        version: u64,
        mut updates: Vec<Update>,
    ) -> Result<Updater, SmtError> {
        if let Some(u) = updates.iter().find(|u| u.hash != hash) {
            return Err(SmtError::Protocol(format!(
                "an update hashed with {} for a {} tree",
                u.hash.name(),
                hash.name()
            )));
        }
        updates.sort_unstable_by_key(|a| a.kh);
        if updates.windows(2).any(|w| w[0].kh == w[1].kh) {
            return Err(SmtError::DuplicateKey);
        }
        if u32::try_from(updates.len()).is_err() {
            return Err(SmtError::Protocol("more than 2^32 updates".into()));
        }
        let mut puts_prefix = Vec::with_capacity(updates.len() + 1);
        puts_prefix.push(0);
        let mut leaf_puts = Vec::with_capacity(updates.len());
        for u in &updates {
            let last = *puts_prefix.last().expect("non-empty");
            puts_prefix.push(last + usize::from(u.value.is_some()));
            if let Some(v) = &u.value {
                leaf_puts.push((leaf_key(version, &u.kh), encode_leaf(&u.kh, &u.vh, v)));
            }
        }
        // Leaf hashes in one batch; a deletion's stays zero (never read).
        let pairs: Vec<[Digest; 2]> = updates
            .iter()
            .filter(|u| u.value.is_some())
            .map(|u| [u.kh, u.vh])
            .collect();
        let mut put_hashes = vec![[0u8; 32]; pairs.len()];
        hash.hash_pairs(Ctx::Leaf, &pairs, &mut put_hashes);
        let mut put_hashes = put_hashes.into_iter();
        let lhs = updates
            .iter()
            .map(|u| match u.value {
                Some(_) => put_hashes.next().expect("one hash per put"),
                None => [0; 32],
            })
            .collect();
        let mut level = Vec::new();
        if !root.is_empty(hash) && !updates.is_empty() {
            level.push(Want::of(root, 0, &[0; 32], 0, updates.len()));
        }
        Ok(Updater {
            hash,
            version,
            root,
            updates,
            lhs,
            puts_prefix,
            chunks: Vec::new(),
            kid_at: Vec::new(),
            root_at: NOT_LOADED,
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
        let mut records = Vec::with_capacity(values.len());
        for (want, value) in level.iter().zip(&values) {
            let Some(raw) = value else {
                return Err(SmtError::MissingNode(want.id.key()));
            };
            records.push((raw.as_ref(), want.id.depth));
        }
        // Decoded together: the level's hashes in a few batches.
        let chunks = Chunk::decode_many(&records, self.hash)?;
        for (want, chunk) in level.into_iter().zip(chunks) {
            self.accept(want, Arc::new(chunk))?;
        }
        Ok(())
    }

    /// Takes every wanted chunk that `cache` holds (and, level after level,
    /// the ones below it), so [`Self::wanted`] then lists only the misses.
    /// A cached chunk is checked against its parent's hash like a stored one.
    pub fn resolve_from(&mut self, cache: &NodeCache) -> Result<(), SmtError> {
        if cache.hash() != self.hash {
            return Err(SmtError::Protocol(format!(
                "a cache of a {} tree for a {} tree",
                cache.hash().name(),
                self.hash.name()
            )));
        }
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
        if chunk.hash(self.hash) != want.hash {
            return Err(SmtError::BadNode(format!(
                "chunk {} does not match its parent's hash",
                hex(&want.id.key())
            )));
        }
        let idx = u32::try_from(self.chunks.len()).expect("fewer than 2^32 chunks");
        reach(
            &self.updates,
            &chunk,
            idx,
            chunk.root,
            want.id.depth,
            want.id.path,
            want.lo,
            want.hi,
            &mut self.level,
        );
        self.chunks.push(chunk);
        self.kid_at.push([NOT_LOADED; 16]);
        match want.parent {
            ROOT => self.root_at = idx,
            p => self.kid_at[p as usize][usize::from(want.slot)] = idx,
        }
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
        let top = if self.root.is_empty(self.hash) {
            Sub::Empty
        } else {
            Sub::Kid {
                chunk: ROOT,
                idx: 0,
            }
        };
        let top = self.build(top, 0, [0u8; 32], 0, n)?;
        self.hash_fresh();
        let root = match top {
            Sub::Empty => Child::empty(self.hash),
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
            Sub::Empty => self.hash.empty_hash(),
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
                let c = match s {
                    Sub::Kid { chunk: ROOT, .. } => self.root_at,
                    Sub::Kid { chunk, idx } => self.kid_at[chunk as usize][usize::from(idx)],
                    _ => unreachable!("a kid"),
                };
                if c == NOT_LOADED {
                    return Err(SmtError::MissingNode(key));
                }
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
                let level_of = |s: Sub| match s {
                    Sub::New(j) => self.fresh[j as usize].level + 1,
                    _ => 0,
                };
                let level = level_of(l).max(level_of(r));
                self.fresh.push(NewNode {
                    depth,
                    level,
                    path,
                    hash: [0; 32],
                    left: l,
                    right: r,
                });
                Sub::New(u32::try_from(self.fresh.len() - 1).expect("fewer than 2^32 nodes"))
            }
        }
    }

    /// Hashes the new nodes level by level from the bottom, each level in
    /// one batch ([`TreeHash::hash_pairs`]).
    fn hash_fresh(&mut self) {
        let Some(top) = self.fresh.iter().map(|n| usize::from(n.level)).max() else {
            return;
        };
        // The nodes ordered by level (a counting sort); level `l` is
        // `order[starts[l]..starts[l + 1]]`.
        let mut starts = vec![0usize; top + 2];
        for n in &self.fresh {
            starts[usize::from(n.level) + 1] += 1;
        }
        for l in 1..starts.len() {
            starts[l] += starts[l - 1];
        }
        let mut order = vec![0usize; self.fresh.len()];
        let mut next = starts.clone();
        for (j, n) in self.fresh.iter().enumerate() {
            let at = &mut next[usize::from(n.level)];
            order[*at] = j;
            *at += 1;
        }
        let mut pairs = Vec::new();
        let mut hashes = Vec::new();
        for l in 0..=top {
            let ids = &order[starts[l]..starts[l + 1]];
            pairs.clear();
            pairs.extend(ids.iter().map(|&j| {
                let n = self.fresh[j];
                [self.sub_hash(n.left), self.sub_hash(n.right)]
            }));
            hashes.clear();
            hashes.resize(ids.len(), [0u8; 32]);
            self.hash.hash_pairs(Ctx::Node, &pairs, &mut hashes);
            for (&j, h) in ids.iter().zip(&hashes) {
                self.fresh[j].hash = *h;
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
        let hash = c.hash(self.hash);
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
