//! Authenticated state: a binary sparse Merkle tree with path compression,
//! versioned by block height, updated once per block in one batch.
//!
//! # Shape
//!
//! Every state key is hashed to 256 bits (`kh = H("tierchain 2026 state
//! key", key)`); bit `i` of `kh` (most significant bit of byte 0 first)
//! picks the child at depth `i`. A subtree holding exactly one key is that
//! key's leaf, placed at the shallowest depth where the leaf's path is unique;
//! a subtree holding none is the empty subtree. So the tree is a function of
//! the key/value set alone: the root does not depend on insertion order, on
//! how updates were batched, or on history (a deleted key's leaf disappears
//! and the sibling leaf, if alone, moves back up).
//!
//! ```text
//! empty        = H("tierchain 2026 state empty", "")
//! leaf(kh, v)  = H("tierchain 2026 state leaf",  kh || vh)
//!                vh = H("tierchain 2026 state value", v)
//! node(l, r)   = H("tierchain 2026 state node",  l || r)
//! ```
//!
//! `H` is chosen per tree ([`TreeHash`], `hash.rs`): BLAKE3's `derive_key`
//! (the default; those roots never change) or the national suite's
//! domain-separated SM3, with the same contexts. Everything that hashes (the
//! updater, the builder, the cache, the record codec, the references) is
//! given the tree's `TreeHash`; nothing global, so trees of both kinds live
//! side by side.
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
//! is in its parent's slot. A large batch's `finish` may build the root
//! chunk's kid subtrees on several threads, with the same outcome
//! ([`Updater::set_workers`]).
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `hash.rs` | the five contexts, [`TreeHash`] (BLAKE3 or SM3): key/value/leaf/node/empty hashes, key-hash bits |
//! | `record.rs` | storage keys, chunk and leaf records, the decoded [`Chunk`] |
//! | `error.rs` | [`SmtError`] |
//! | `update.rs` | [`Updater`]: one batch, level by level, to an [`Outcome`] |
//! | `cache.rs` | [`NodeCache`]: the top of the tree across batches |
//! | `bulk.rs` | [`BulkBuilder`]: a whole tree at genesis |
//! | `memory.rs` | [`root_of`] (the definition) and [`MemStore`] (an in-memory store) |
//! | `tests.rs` | the tree against its definition, and each part against the others |
//!
//! Pure Rust: no Python here; the bindings are in `crate::py::smt`.

mod bulk;
mod cache;
mod error;
mod hash;
mod memory;
mod record;
mod update;

#[cfg(test)]
mod tests;

pub use bulk::BulkBuilder;
pub use cache::NodeCache;
pub use error::SmtError;
pub use hash::*;
pub use memory::{MemStore, root_of};
pub use record::*;
pub use update::{Outcome, PARALLEL_MIN_UPDATES, Update, Updater};
