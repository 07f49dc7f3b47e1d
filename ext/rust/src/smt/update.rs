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
//! A large batch's finish may run on several threads
//! ([`Updater::set_workers`]): the subtrees four levels down (the root
//! chunk's kids) share nothing, so each is built, hashed and chunked by a
//! builder of its own ([`Build`]; a thread takes a contiguous run of them),
//! then the whole tree's builder builds the top and splices each subtree's
//! records in where a serial finish makes them: the outcome is the same,
//! record for record and in the same order.
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
    /// An internal node of this batch (index into its builder's `fresh`).
    New(u32),
    /// The new chunk at the top of a subtree another thread built (index into
    /// the builder's `tasks`; a parallel finish).
    Done(u32),
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
    leaf_puts: Vec<NodeWrite>, // the leaf records, in key order (appended to the puts last)
    keep_below: u16,
    workers: usize,
}

/// The depth of a parallel finish's tasks: the positions four levels down,
/// the root chunk's kids (up to 16 subtrees, each independent of the others).
const SPLIT: u16 = CHUNK_LEVELS;

/// Batches smaller than this finish on the calling thread whatever
/// [`Updater::set_workers`] says: threads would cost more than they save.
pub const PARALLEL_MIN_UPDATES: usize = 1024;

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
            leaf_puts,
            keep_below: u16::MAX,
            workers: 1,
        })
    }

    /// Only the new chunks at depth `< depth` go to [`Outcome::chunks`]
    /// (what a [`NodeCache`] of that `depth_max` keeps); default: all.
    pub fn keep_chunks_below(&mut self, depth: u16) {
        self.keep_below = depth;
    }

    /// [`Self::finish`] builds the subtrees below the root chunk on up to
    /// `workers` threads (the calling one included) when the batch has at
    /// least [`PARALLEL_MIN_UPDATES`] updates; default 1. The outcome is the
    /// same, record for record and in the same order, whatever the count.
    pub fn set_workers(&mut self, workers: usize) {
        self.workers = workers.max(1);
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
            let hash = chunk.hash(self.hash);
            self.accept(want, Arc::new(chunk), hash)?;
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
            // Every chunk of the level looked up (and its hash read) first: the lookups
            // do not depend on each other, so their cache misses overlap, where one walk
            // per chunk waited for each in turn.
            let found: Vec<Option<(Arc<Chunk>, Digest)>> = level
                .iter()
                .map(|want| {
                    let (chunk, _) = cache.chunks.get(&want.id)?;
                    Some((Arc::clone(chunk), chunk.hash(self.hash)))
                })
                .collect();
            let mut misses = Vec::with_capacity(level.len());
            let mut hit = false;
            for (want, found) in level.into_iter().zip(found) {
                match found {
                    Some((chunk, hash)) => {
                        hit = true;
                        self.accept(want, chunk, hash)?;
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

    /// Takes `chunk` (whose hash is `hash`) for `want`, checked against its parent's hash.
    fn accept(&mut self, want: Want, chunk: Arc<Chunk>, hash: Digest) -> Result<(), SmtError> {
        if hash != want.hash {
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
        let mut leaf_puts = std::mem::take(&mut self.leaf_puts);
        let mut b = Build::new(&self);
        if self.workers > 1 && n >= PARALLEL_MIN_UPDATES {
            let mut plan = Vec::new();
            self.plan(top, 0, [0u8; 32], 0, n, &mut plan);
            b.tasks = self.run_tasks(&plan)?;
        }
        let top = b.build(top, 0, [0u8; 32], 0, n)?;
        b.hash_fresh();
        let root = match top {
            Sub::Empty => Child::empty(self.hash),
            s @ Sub::Kid { .. } => self.kid_of(s),
            s @ (Sub::OldLeaf { .. } | Sub::NewLeaf(_) | Sub::New(_)) => {
                b.emit_chunk(s, 0, [0u8; 32])?
            }
            Sub::Old { .. } | Sub::Done(_) => {
                return Err(SmtError::Protocol("old node at the root".into()));
            }
        };
        // Chunk keys sort by (depth, path); the leaf records (depth mark
        // 0xFFFF) follow them, already in key-hash order (updates are sorted).
        let mut puts = b.puts;
        puts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        puts.append(&mut leaf_puts);
        Ok(Outcome {
            root: Some(root),
            puts,
            stale: b.stale,
            chunks: b.chunks,
        })
    }

    /// The subtrees at depth [`SPLIT`] the updates reach through loaded
    /// chunks (`s`, its path and its updates), in tree order: what `build`
    /// walks down to, each one independent of the others. A part of the top
    /// built from scratch (an empty or leaf slot above `SPLIT`) has none.
    fn plan(
        &self,
        s: Sub,
        depth: u16,
        path: Digest,
        lo: usize,
        hi: usize,
        out: &mut Vec<(Sub, Digest, usize, usize)>,
    ) {
        if lo == hi {
            return;
        }
        if depth == SPLIT {
            out.push((s, path, lo, hi));
            return;
        }
        match s {
            Sub::Kid { .. } => {
                let c = self.loaded(s);
                if c != NOT_LOADED {
                    let top = to_sub(c, self.chunks[c as usize].root);
                    self.plan(top, depth, path, lo, hi, out);
                }
            }
            Sub::Old { chunk, idx } => {
                let node = self.chunks[chunk as usize].nodes[usize::from(idx)];
                let mid = split(&self.updates, lo, hi, depth);
                let (l, r) = (to_sub(chunk, node.left), to_sub(chunk, node.right));
                self.plan(l, depth + 1, with_bit(&path, depth, false), lo, mid, out);
                self.plan(r, depth + 1, with_bit(&path, depth, true), mid, hi, out);
            }
            _ => {}
        }
    }

    /// Builds the `plan`'s subtrees on up to `self.workers` threads (the
    /// calling one too), each thread a contiguous run of them of about equal
    /// updates; their results in plan order.
    fn run_tasks(&self, plan: &[(Sub, Digest, usize, usize)]) -> Result<Vec<Task>, SmtError> {
        let total: usize = plan.iter().map(|t| t.3 - t.2).sum();
        let workers = self.workers.min(plan.len()).max(1);
        let mut runs = Vec::with_capacity(workers);
        let (mut start, mut seen) = (0, 0);
        for (i, t) in plan.iter().enumerate() {
            seen += t.3 - t.2;
            if seen * workers >= total * (runs.len() + 1) && runs.len() + 1 < workers {
                runs.push(&plan[start..=i]);
                start = i + 1;
            }
        }
        runs.push(&plan[start..]);
        on_threads(&runs, |tasks| {
            tasks
                .iter()
                .map(|&(s, path, lo, hi)| self.task(s, path, lo, hi))
                .collect()
        })
    }

    /// One subtree of a parallel finish, built as `build` would build it in
    /// place (its new top chunk emitted), by a builder of its own.
    fn task(&self, s: Sub, path: Digest, lo: usize, hi: usize) -> Result<Task, SmtError> {
        let mut b = Build::new(self);
        let top = b.build(s, SPLIT, path, lo, hi)?;
        b.hash_fresh();
        let built = match top {
            Sub::New(_) => Built::Chunk(b.emit_chunk(top, SPLIT, path)?),
            other => Built::Sub(other),
        };
        Ok(Task {
            lo,
            hi,
            built,
            puts: b.puts,
            stale: b.stale,
            chunks: b.chunks,
        })
    }

    /// The loaded index of the chunk `s` (a `Sub::Kid`), or `NOT_LOADED`.
    fn loaded(&self, s: Sub) -> u32 {
        match s {
            Sub::Kid { chunk: ROOT, .. } => self.root_at,
            Sub::Kid { chunk, idx } => self.kid_at[chunk as usize][usize::from(idx)],
            _ => unreachable!("a kid"),
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
}

/// `f` of each of `runs`, the first on the calling thread and each other on
/// a scoped thread of its own; the results joined in run order. The error is
/// the first run's error in run order (as one call over all of them would
/// give); a panic in any run is raised again here.
fn on_threads<T: Sync, R: Send>(
    runs: &[&[T]],
    f: impl Fn(&[T]) -> Result<Vec<R>, SmtError> + Sync,
) -> Result<Vec<R>, SmtError> {
    let Some((first, rest)) = runs.split_first() else {
        return Ok(Vec::new());
    };
    if rest.is_empty() {
        return f(first);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let others: Vec<_> = rest.iter().map(|run| scope.spawn(move || f(run))).collect();
        let mut out = f(first);
        for h in others {
            let got = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            if let Ok(done) = &mut out {
                done.extend(got?);
            }
        }
        out
    })
}

fn to_sub(c: u32, s: Slot) -> Sub {
    match s {
        Slot::Empty => Sub::Empty,
        Slot::Leaf(idx) => Sub::OldLeaf { chunk: c, idx },
        Slot::Inner(idx) => Sub::Old { chunk: c, idx },
        Slot::Chunk(idx) => Sub::Kid { chunk: c, idx },
    }
}

/// A subtree of a parallel finish, built (`Updater::task`): what it became
/// and its records, which the whole tree's builder splices in where a serial
/// finish makes them.
struct Task {
    lo: usize,
    hi: usize,
    built: Built,
    puts: Vec<NodeWrite>,
    stale: Vec<Vec<u8>>,
    chunks: Vec<(ChunkId, Arc<Chunk>)>,
}

/// What a task's subtree became: a new chunk at [`SPLIT`] (the whole tree's
/// builder refers to it as `Sub::Done`), or nothing to emit there (`Empty`, or
/// a leaf that moves up).
#[derive(Clone, Copy)]
enum Built {
    Chunk(Child),
    Sub(Sub),
}

impl Task {
    /// The new chunk of a task that made one.
    fn chunk(&self) -> Child {
        match self.built {
            Built::Chunk(c) => c,
            Built::Sub(_) => unreachable!("Sub::Done names a task that made a chunk"),
        }
    }
}

/// What one builder of a finish makes, over its [`Updater`]'s loaded chunks
/// (read only): the whole tree, or one subtree of a parallel finish.
struct Build<'u> {
    u: &'u Updater,
    fresh: Vec<NewNode>,
    puts: Vec<NodeWrite>,
    stale: Vec<Vec<u8>>,
    chunks: Vec<(ChunkId, Arc<Chunk>)>,
    scratch: Vec<Chunk>, // one per nesting level of `emit_chunk`
    /// The subtrees other threads built, in tree order (`Updater::run_tasks`).
    tasks: Vec<Task>,
}

impl<'u> Build<'u> {
    fn new(u: &'u Updater) -> Build<'u> {
        Build {
            u,
            fresh: Vec::new(),
            puts: Vec::new(),
            stale: Vec::new(),
            chunks: Vec::new(),
            scratch: Vec::new(),
            tasks: Vec::new(),
        }
    }

    fn sub_hash(&self, s: Sub) -> Digest {
        let u = self.u;
        match s {
            Sub::Empty => u.hash.empty_hash(),
            Sub::OldLeaf { chunk, idx } => u.chunks[chunk as usize].leaves[usize::from(idx)].lh,
            Sub::NewLeaf(i) => u.lhs[i as usize],
            Sub::Old { chunk, idx } => u.chunks[chunk as usize].nodes[usize::from(idx)].hash,
            Sub::Kid { .. } => u.kid_of(s).hash,
            Sub::New(j) => self.fresh[j as usize].hash,
            Sub::Done(t) => self.tasks[t as usize].chunk().hash,
        }
    }

    /// The task built at (`SPLIT`, its path) for the updates `lo..hi`, if
    /// any: its stale records are spliced in here, where `build` would have
    /// listed them.
    fn done(&mut self, lo: usize, hi: usize) -> Option<Sub> {
        let i = self.tasks.binary_search_by_key(&lo, |t| t.lo).ok()?;
        let t = &mut self.tasks[i];
        if t.hi != hi {
            return None;
        }
        self.stale.append(&mut t.stale);
        Some(match t.built {
            Built::Chunk(_) => Sub::Done(u32::try_from(i).expect("at most 16 tasks")),
            Built::Sub(s) => s,
        })
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
        if depth == SPLIT
            && !self.tasks.is_empty()
            && let Some(done) = self.done(lo, hi)
        {
            return Ok(done);
        }
        match s {
            Sub::Empty => self.fresh(depth, path, lo, hi, None),
            Sub::OldLeaf { .. } | Sub::NewLeaf(_) => self.fresh(depth, path, lo, hi, Some(s)),
            Sub::Kid { .. } => {
                let key = node_key(self.u.kid_of(s).version, depth, &path);
                let c = self.u.loaded(s);
                if c == NOT_LOADED {
                    return Err(SmtError::MissingNode(key));
                }
                self.stale.push(key);
                let top = to_sub(c, self.u.chunks[c as usize].root);
                self.build(top, depth, path, lo, hi)
            }
            Sub::Old { chunk, idx } => {
                let node = self.u.chunks[chunk as usize].nodes[usize::from(idx)];
                let mid = split(&self.u.updates, lo, hi, depth);
                let l = to_sub(chunk, node.left);
                let r = to_sub(chunk, node.right);
                let l = self.build(l, depth + 1, with_bit(&path, depth, false), lo, mid)?;
                let r = self.build(r, depth + 1, with_bit(&path, depth, true), mid, hi)?;
                Ok(self.combine(depth, path, l, r))
            }
            Sub::New(_) | Sub::Done(_) => Err(SmtError::Protocol("new node revisited".into())),
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
        let u = self.u;
        // The old leaf survives unless the batch writes its key; its record
        // is replaced either way then.
        let old = old.map(|s| (s, u.leaf_of(s)));
        let old = match old {
            Some((_, l))
                if u.updates[lo..hi]
                    .binary_search_by(|x| x.kh.cmp(&l.kh))
                    .is_ok() =>
            {
                self.stale.push(leaf_key(l.version, &l.kh));
                None
            }
            other => other,
        };
        let puts = u.puts_prefix[hi] - u.puts_prefix[lo] + usize::from(old.is_some());
        match puts {
            0 => return Ok(Sub::Empty),
            1 => {
                if let Some((s, _)) = old {
                    return Ok(s);
                }
                let i = (lo..hi)
                    .find(|&i| u.updates[i].value.is_some())
                    .expect("one put");
                return Ok(Sub::NewLeaf(i as u32));
            }
            _ => {}
        }
        if depth >= DEPTH_MAX {
            return Err(SmtError::DuplicateKey);
        }
        let mid = split(&u.updates, lo, hi, depth);
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
            self.u.hash.hash_pairs(Ctx::Node, &pairs, &mut hashes);
            for (&j, h) in ids.iter().zip(&hashes) {
                self.fresh[j].hash = *h;
            }
        }
    }

    /// The records of task `t` (a new chunk at `SPLIT` and what it wrote
    /// below), spliced in where a serial finish emits them; its chunk.
    fn splice(&mut self, t: u32) -> Child {
        let t = &mut self.tasks[t as usize];
        self.puts.append(&mut t.puts);
        self.chunks.append(&mut t.chunks);
        t.chunk()
    }

    /// Writes the chunk whose top is `top` (a new node, or a leaf at the
    /// root) at (`depth`, `path`), and every new chunk below it.
    fn emit_chunk(&mut self, top: Sub, depth: u16, path: Digest) -> Result<Child, SmtError> {
        let (th, version) = (self.u.hash, self.u.version);
        if depth >= self.u.keep_below {
            // Not kept decoded: encode straight from the new nodes (no tables).
            let mut out = Vec::with_capacity(1024);
            out.push(TAG_CHUNK);
            self.encode_sub(top, 0, depth, &mut out)?;
            self.puts.push((node_key(version, depth, &path), out));
            return Ok(Child {
                hash: self.sub_hash(top),
                version,
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
        let id = ChunkId::new(version, depth, &path);
        let hash = c.hash(th);
        self.puts.push((id.key(), c.encode()));
        self.chunks.push((id, Arc::new(c)));
        Ok(Child { hash, version })
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
        let push_kid = |out: &mut Vec<u8>, k: Child| {
            out.push(SLOT_CHUNK);
            out.extend_from_slice(&k.hash);
            out.extend_from_slice(&k.version.to_le_bytes());
        };
        match s {
            Sub::Empty => out.push(SLOT_EMPTY),
            Sub::OldLeaf { .. } | Sub::NewLeaf(_) => {
                let l = self.u.leaf_of(s);
                out.push(SLOT_LEAF);
                out.extend_from_slice(&l.kh);
                out.extend_from_slice(&l.vh);
                out.extend_from_slice(&l.version.to_le_bytes());
            }
            Sub::Kid { .. } if rel == CHUNK_LEVELS => push_kid(out, self.u.kid_of(s)),
            Sub::Done(t) if rel == CHUNK_LEVELS => {
                let k = self.splice(t);
                push_kid(out, k);
            }
            Sub::Old { chunk, idx } if rel > 0 && rel < CHUNK_LEVELS => {
                self.u.chunks[chunk as usize].encode_slot(Slot::Inner(idx), out);
            }
            Sub::New(j) => {
                let n = self.fresh[j as usize];
                if rel == CHUNK_LEVELS {
                    let child = self.emit_chunk(s, n.depth, n.path)?;
                    push_kid(out, child);
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
            Sub::OldLeaf { .. } | Sub::NewLeaf(_) => c.push_leaf(self.u.leaf_of(s)),
            Sub::Kid { .. } if rel == CHUNK_LEVELS => c.push_kid(self.u.kid_of(s)),
            Sub::Done(t) if rel == CHUNK_LEVELS => {
                let k = self.splice(t);
                c.push_kid(k)
            }
            Sub::Old { chunk, idx } if rel > 0 && rel < CHUNK_LEVELS => {
                copy_old(c, &self.u.chunks[chunk as usize], Slot::Inner(idx))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_threads_join_in_order_and_the_first_error_wins() {
        let data: Vec<i64> = (0..10).collect();
        let runs: Vec<&[i64]> = data.chunks(3).collect();
        let double = |run: &[i64]| Ok(run.iter().map(|x| x * 2).collect());
        assert_eq!(
            on_threads(&runs, double).unwrap(),
            (0..10).map(|x| x * 2).collect::<Vec<_>>()
        );
        assert!(on_threads::<i64, i64>(&[], double).unwrap().is_empty());
        // Errors in the second and the last run: the second's is the error, as
        // one pass over everything would have said.
        let data = [1, 2, 3, -4, 5, 6, -7];
        let runs = [&data[..2], &data[2..5], &data[5..]];
        let refuse = |run: &[i64]| -> Result<Vec<i64>, SmtError> {
            match run.iter().find(|x| **x < 0) {
                Some(x) => Err(SmtError::BadNode(x.to_string())),
                None => Ok(run.to_vec()),
            }
        };
        assert_eq!(
            on_threads(&runs, refuse),
            Err(SmtError::BadNode("-4".into()))
        );
    }
}
