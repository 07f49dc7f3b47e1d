//! Storage-free references: [`root_of`], the root of a key/value set by the
//! definition (tests, genesis cross-checks), and [`MemStore`], an in-memory
//! record store that drives an [`Updater`] (tests, re-execution, profiling).

use std::collections::HashMap;

use super::error::SmtError;
use super::hash::*;
use super::record::*;
use super::update::*;

/// Reference root of a key/value set (`(kh, vh)` pairs hashed with `th`)
/// computed from scratch (tests, genesis cross-checks): the definition, with
/// no storage.
pub fn root_of(th: TreeHash, entries: &[(Digest, Digest)]) -> Digest {
    let mut sorted: Vec<(Digest, Digest)> = entries.to_vec();
    sorted.sort_unstable();
    fn rec(th: TreeHash, items: &[(Digest, Digest)], depth: u16) -> Digest {
        match items.len() {
            0 => th.empty_hash(),
            1 => th.leaf_hash(&items[0].0, &items[0].1),
            _ => {
                let mid = items.partition_point(|(kh, _)| !bit(kh, depth));
                th.node_hash(
                    &rec(th, &items[..mid], depth + 1),
                    &rec(th, &items[mid..], depth + 1),
                )
            }
        }
    }
    rec(th, &sorted, 0)
}

/// An in-memory record store driving an [`Updater`] (tests and re-execution);
/// `Default` is an empty BLAKE3 tree.
#[derive(Default)]
pub struct MemStore {
    pub hash: TreeHash,
    pub nodes: HashMap<Vec<u8>, Vec<u8>>,
    pub root: Option<Child>,
}

impl MemStore {
    /// An empty tree hashed with `hash`.
    pub fn new(hash: TreeHash) -> MemStore {
        MemStore {
            hash,
            ..MemStore::default()
        }
    }

    pub fn root(&self) -> Child {
        self.root.unwrap_or_else(|| Child::empty(self.hash))
    }

    /// The write of `key` (`None`: its deletion) in this tree's hash.
    pub fn update(&self, key: &[u8], value: Option<&[u8]>) -> Update {
        Update::with_hash(self.hash, key, value)
    }

    /// Applies one batch at `version`; stale records are deleted at once
    /// (no history is kept).
    pub fn apply(&mut self, version: u64, updates: Vec<Update>) -> Result<Outcome, SmtError> {
        let mut up = Updater::with_hash(self.hash, self.root(), version, updates)?;
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
