//! Bindings of [`crate::smt`]: `smt_apply` (one batch update; the caller's
//! `fetch` reads one chunk level per call), `SmtCache` (the top of the tree
//! across calls), `SmtBuilder` (genesis bulk build) and `smt_constants` (the
//! empty hash and the five contexts the crypto suite checks at load).
//!
//! Each takes `hash`, the tree's hash construction: `"blake3"` (the default)
//! or `"sm3"` ([`smt::TreeHash`]); a tree's roots and records depend on it.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::time::{Duration, Instant};

use pyo3::types::{PyBytes, PyDict, PyList};

use super::args::{byte_arg, runtime_error, seq_items};
use super::lmdb::{LmdbTxn, error as lmdb_error, get_in};
use crate::smt;

/// `SmtRecords`: the new records of one `smt_apply` batch, `(key, record)`
/// sorted by key, kept natively (no Python object per record): written with
/// `LmdbTxn.put_records`, and read (`get`) by the next batches while this one
/// is not committed yet (their `overlay`).
#[pyclass(frozen, module = "tierchain_native")]
pub(super) struct SmtRecords {
    pub(super) pairs: Vec<smt::NodeWrite>,
}

impl SmtRecords {
    fn new(pairs: Vec<smt::NodeWrite>) -> PyResult<SmtRecords> {
        if pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(runtime_error("state tree records out of key order".into()));
        }
        Ok(SmtRecords { pairs })
    }

    fn find(&self, key: &[u8]) -> Option<&[u8]> {
        self.pairs
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .ok()
            .map(|i| self.pairs[i].1.as_slice())
    }
}

#[pymethods]
impl SmtRecords {
    fn __len__(&self) -> usize {
        self.pairs.len()
    }

    /// The record stored under `key`, or `None`.
    fn get<'py>(&self, py: Python<'py>, key: &[u8]) -> Option<Bound<'py, PyBytes>> {
        self.find(key).map(|v| PyBytes::new(py, v))
    }

    /// Every `(key, record)` pair, in key order.
    fn items<'py>(&self, py: Python<'py>) -> Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.pairs
            .iter()
            .map(|(k, v)| (PyBytes::new(py, k), PyBytes::new(py, v)))
            .collect()
    }

    /// The smallest key, or `None` when there is no record.
    fn first_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.pairs.first().map(|(k, _)| PyBytes::new(py, k))
    }

    /// `(shortest key, longest key, shortest record, longest record)` in bytes
    /// (zeros when empty): a table's length bounds are checked in bulk.
    fn bounds(&self) -> (usize, usize, usize, usize) {
        let mut b = (usize::MAX, 0, usize::MAX, 0);
        for (k, v) in &self.pairs {
            b = (
                b.0.min(k.len()),
                b.1.max(k.len()),
                b.2.min(v.len()),
                b.3.max(v.len()),
            );
        }
        if self.pairs.is_empty() {
            (0, 0, 0, 0)
        } else {
            b
        }
    }
}

/// Where a batch reads the chunks it needs: a Python `fetch(keys)`, or a
/// live LMDB transaction of this thread (read natively) and then the records
/// of batches not committed yet.
enum Reader<'a> {
    Fetch(&'a Bound<'a, PyAny>),
    Lmdb {
        txn: usize,
        dbi: u32,
        overlay: Vec<&'a SmtRecords>,
    },
}

/// A native read's failure: the tree's or LMDB's.
enum ReadError {
    Smt(smt::SmtError),
    Lmdb(std::ffi::c_int),
}

impl From<smt::SmtError> for ReadError {
    fn from(e: smt::SmtError) -> Self {
        ReadError::Smt(e)
    }
}

/// `smt_apply(root_hash, root_version, version, keys, values, fetch, cache=None,
/// hash="blake3", txn=None, dbi=0, overlay=(), workers=1)
/// -> (root_hash, root_version, puts, stale_older, stale_now, stats)`: one batch
/// update of the state tree (`smt/`). `values[i]` `None` deletes `keys[i]`.
/// The batch reads the chunks it needs one chunk level (four tree levels) at
/// a time, either through `fetch(record_keys)`, which returns the stored
/// bytes (or `None`) of each key in order, or — `fetch` `None` — natively
/// from `txn` (a live `LmdbTxn` of this thread; `dbi` the records' table)
/// and then from `overlay` (the `SmtRecords` of earlier batches not
/// committed yet), with the GIL released. `puts` are the new records
/// (`SmtRecords`, sorted by key); the keys of the records the batch
/// replaced come packed back to back in `stale_older` (those written before
/// `version`) and as a list in `stale_now` (written at `version` itself, by
/// an earlier call for the same version: never part of a committed tree).
/// With `cache` (an [`SmtCache`] of the same `hash`), chunks it holds are not
/// asked for, and the cache is updated with the batch's outcome.
/// `hash`: `"blake3"` or `"sm3"`, the tree's hash. `workers`: the new tree's
/// subtrees below the root chunk are built on up to this many threads (the
/// calling one included) when the batch is large
/// (`smt::PARALLEL_MIN_UPDATES`); the result does not depend on it. `stats`: what the batch
/// cost, a dict: `read` chunks read (from storage or overlay; the cache's are
/// not counted), `overlay` of them from the overlay, and the seconds of its
/// phases: `setup_s` (hashing and sorting the writes, the cache's chunks),
/// `read_s` (reading chunk levels and what the cache holds below them),
/// `finish_s` (the new tree, its records and the cache's update) and
/// `total_s` (the whole call, the Python objects of the result included).
#[pyfunction]
#[pyo3(signature = (root_hash, root_version, version, keys, values, fetch, cache=None, hash="blake3", txn=None, dbi=0, overlay=Vec::new(), workers=1))]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn smt_apply<'py>(
    py: Python<'py>,
    root_hash: &Bound<'py, PyAny>,
    root_version: u64,
    version: u64,
    keys: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    fetch: Option<&Bound<'py, PyAny>>,
    cache: Option<PyRefMut<'py, SmtCache>>,
    hash: &str,
    txn: Option<PyRef<'py, LmdbTxn>>,
    dbi: u32,
    overlay: Vec<Bound<'py, SmtRecords>>,
    workers: usize,
) -> PyResult<(
    Bound<'py, PyBytes>,
    u64,
    Bound<'py, SmtRecords>,
    Bound<'py, PyBytes>,
    Vec<Bound<'py, PyBytes>>,
    Bound<'py, PyDict>,
)> {
    let start = Instant::now();
    let th = tree_hash(hash)?;
    if let Some(c) = cache.as_ref()
        && c.inner.hash() != th
    {
        return Err(PyValueError::new_err(format!(
            "the cache is for {} trees, this tree is {}",
            c.inner.hash().name(),
            th.name()
        )));
    }
    let reader = match (fetch, &txn) {
        (Some(f), None) if overlay.is_empty() => Reader::Fetch(f),
        (None, Some(t)) => Reader::Lmdb {
            txn: t.handle()?,
            dbi,
            overlay: overlay.iter().map(|o| o.get()).collect(),
        },
        _ => {
            return Err(PyValueError::new_err(
                "pass either fetch, or txn (and overlay) with fetch None",
            ));
        }
    };
    let root_hash = byte_arg(root_hash, "root_hash")?;
    let root_hash: smt::Digest = root_hash[..]
        .try_into()
        .map_err(|_| PyValueError::new_err("root_hash must be 32 bytes"))?;
    let key_items = seq_items(keys, "keys")?;
    let value_items = seq_items(values, "values")?;
    if key_items.len() != value_items.len() {
        return Err(PyValueError::new_err(format!(
            "keys and values must have the same length (got {} and {})",
            key_items.len(),
            value_items.len()
        )));
    }
    // Copied under the GIL, hashed without it.
    let mut items = Vec::with_capacity(key_items.len());
    for (k, v) in key_items.iter().zip(&value_items) {
        let key = byte_arg(k, "keys[i]")?.to_vec();
        let value = if v.is_none() {
            None
        } else {
            Some(byte_arg(v, "values[i]")?.to_vec())
        };
        items.push((key, value));
    }
    let smt_error = |e: ReadError| match e {
        ReadError::Smt(e @ smt::SmtError::DuplicateKey) => PyValueError::new_err(e.to_string()),
        ReadError::Smt(e) => runtime_error(e.to_string()),
        ReadError::Lmdb(rc) => lmdb_error("mdb_get", rc),
    };
    let root = smt::Child {
        hash: root_hash,
        version: root_version,
    };
    let mut cache = cache;
    if let Some(c) = cache.as_mut() {
        c.inner.begin(root);
    }
    // One GIL release per round (each hand-back can wait a switch interval for the GIL
    // when other threads run Python): the first with the update's set-up and what the
    // cache resolves (and, reading natively, every level below it), one per level a
    // Python `fetch` reads with what the cache resolves below it, and the last with the
    // new tree and the cache's update.
    // Decoded new chunks are only kept for the cache (and only as deep as it goes).
    let keep_below = cache.as_ref().map_or(0, |c| c.inner.depth_max);
    let mut read = Reads::default();
    let mut updater = {
        let inner = cache.as_ref().map(|c| &c.inner);
        let native = match &reader {
            Reader::Lmdb { txn, dbi, overlay } => Some((*txn, *dbi, overlay.as_slice())),
            Reader::Fetch(_) => None,
        };
        let read = &mut read;
        py.detach(|| -> Result<smt::Updater, ReadError> {
            let updates = smt::Update::many(th, items);
            let mut updater = smt::Updater::with_hash(th, root, version, updates)?;
            updater.keep_chunks_below(keep_below);
            updater.set_workers(workers);
            if let Some(inner) = inner {
                updater.resolve_from(inner)?;
            }
            read.setup = start.elapsed();
            if let Some((txn, dbi, overlay)) = native {
                read_levels(&mut updater, txn, dbi, overlay, inner, read)?;
            }
            Ok(updater)
        })
        .map_err(smt_error)?
    };
    if let Reader::Fetch(fetch) = reader {
        loop {
            let want = updater.wanted();
            if want.is_empty() {
                break;
            }
            read.chunks += want.len();
            let want_list = PyList::new(py, want.iter().map(|k| PyBytes::new(py, k)))?;
            let got = fetch.call1((want_list,))?;
            let got_items = seq_items(&got, "fetch result")?;
            let mut supplied = Vec::with_capacity(got_items.len());
            for item in &got_items {
                supplied.push(if item.is_none() {
                    None
                } else {
                    Some(byte_arg(item, "fetch result[i]")?.to_vec())
                });
            }
            let inner = cache.as_ref().map(|c| &c.inner);
            py.detach(|| -> Result<(), ReadError> {
                updater.supply(supplied)?;
                if let Some(inner) = inner {
                    updater.resolve_from(inner)?;
                }
                Ok(())
            })
            .map_err(smt_error)?;
        }
    }
    drop(txn);
    let finish_start = Instant::now();
    let mut out = {
        let inner = cache.as_mut().map(|c| &mut c.inner);
        py.detach(|| -> Result<smt::Outcome, ReadError> {
            let out = updater.finish()?;
            if let Some(inner) = inner {
                inner.commit(&out);
            }
            Ok(out)
        })
        .map_err(smt_error)?
    };
    let finish = finish_start.elapsed();
    let root = out.root.expect("finish sets the root");
    let puts = Bound::new(py, SmtRecords::new(std::mem::take(&mut out.puts))?)?;
    let this = version.to_be_bytes();
    let (now, older): (Vec<_>, Vec<_>) = out.stale.iter().partition(|k| k[..8] == this);
    let stale_older = PyBytes::new(
        py,
        &older.into_iter().flatten().copied().collect::<Vec<u8>>(),
    );
    let stale_now = now.iter().map(|k| PyBytes::new(py, k)).collect();
    let stats = PyDict::new(py);
    stats.set_item("read", read.chunks)?;
    stats.set_item("overlay", read.overlay)?;
    stats.set_item("setup_s", read.setup.as_secs_f64())?;
    stats.set_item("read_s", (finish_start - start - read.setup).as_secs_f64())?;
    stats.set_item("finish_s", finish.as_secs_f64())?;
    stats.set_item("total_s", start.elapsed().as_secs_f64())?;
    Ok((
        PyBytes::new(py, &root.hash),
        root.version,
        puts,
        stale_older,
        stale_now,
        stats,
    ))
}

/// What a batch read, and how long its set-up took.
#[derive(Default)]
struct Reads {
    chunks: usize,
    overlay: usize,
    setup: Duration,
}

/// Reads every chunk level `updater` wants from the LMDB transaction `txn`
/// (table `dbi`), else from `overlay`, taking from `cache` what it holds
/// below each level. Runs without the GIL; `txn` is live on this thread
/// (the caller holds its `LmdbTxn`) and nothing writes in it meanwhile.
fn read_levels(
    updater: &mut smt::Updater,
    txn: usize,
    dbi: u32,
    overlay: &[&SmtRecords],
    cache: Option<&smt::NodeCache>,
    read: &mut Reads,
) -> Result<(), ReadError> {
    loop {
        let want = updater.wanted();
        if want.is_empty() {
            return Ok(());
        }
        // Read in key order: records of one version are adjacent in the table, so
        // consecutive lookups share the pages of their B-tree paths.
        let mut order: Vec<usize> = (0..want.len()).collect();
        order.sort_unstable_by(|&a, &b| want[a].cmp(&want[b]));
        let mut values = vec![None; want.len()];
        for i in order {
            let key = &want[i];
            // SAFETY: the caller's contract (a live transaction of this thread, unwritten).
            let stored = unsafe { get_in(txn, dbi, key) }.map_err(ReadError::Lmdb)?;
            values[i] = stored.or_else(|| {
                let found = overlay.iter().find_map(|o| o.find(key));
                read.overlay += usize::from(found.is_some());
                found
            });
        }
        read.chunks += want.len();
        updater.supply(values)?;
        if let Some(cache) = cache {
            updater.resolve_from(cache)?;
        }
    }
}

/// `SmtCache(depth_max, max_bytes=None, hash="blake3")`: the top of the
/// state tree (chunks at depth `< depth_max`, at most about `max_bytes` of
/// them) kept in memory across `smt_apply` calls of trees of that `hash`. It is trusted only for the tree whose root it
/// last produced: given any other base root it empties itself, so an aborted
/// (never committed) batch cannot leak chunks into the next one. Refills
/// with `warm`, or lazily from the chunks later batches write.
#[pyclass(module = "tierchain_native")]
struct SmtCache {
    inner: smt::NodeCache,
}

/// The [`smt::TreeHash`] named `name` (`ValueError` naming the known ones).
fn tree_hash(name: &str) -> PyResult<smt::TreeHash> {
    smt::TreeHash::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = smt::TreeHash::ALL.iter().map(|h| h.name()).collect();
        PyValueError::new_err(format!(
            "unknown state tree hash {name:?} (known: {})",
            known.join(", ")
        ))
    })
}

fn smt_py_error(e: smt::SmtError) -> PyErr {
    match e {
        smt::SmtError::DuplicateKey => PyValueError::new_err(e.to_string()),
        _ => runtime_error(e.to_string()),
    }
}

struct WarmError(PyErr);

impl From<smt::SmtError> for WarmError {
    fn from(e: smt::SmtError) -> Self {
        WarmError(smt_py_error(e))
    }
}

#[pymethods]
impl SmtCache {
    #[new]
    #[pyo3(signature = (depth_max, max_bytes=None, hash="blake3"))]
    fn new(depth_max: u16, max_bytes: Option<usize>, hash: &str) -> PyResult<Self> {
        let th = tree_hash(hash)?;
        if depth_max > smt::DEPTH_MAX {
            return Err(PyValueError::new_err("depth_max must be <= 256"));
        }
        Ok(SmtCache {
            inner: smt::NodeCache::with_hash(th, depth_max, max_bytes.unwrap_or(usize::MAX)),
        })
    }

    /// The hash of the trees this cache serves (`"blake3"` or `"sm3"`).
    #[getter]
    fn hash(&self) -> &'static str {
        self.inner.hash().name()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn clear(&mut self) {
        self.inner.clear();
    }

    #[getter]
    fn depth_max(&self) -> u16 {
        self.inner.depth_max
    }

    /// Estimated heap bytes of the cached chunks.
    #[getter]
    fn bytes(&self) -> usize {
        self.inner.bytes()
    }

    /// `(root_hash, root_version)` the cache describes, or `None`.
    #[getter]
    fn root<'py>(&self, py: Python<'py>) -> Option<(Bound<'py, PyBytes>, u64)> {
        self.inner
            .root()
            .map(|c| (PyBytes::new(py, &c.hash), c.version))
    }

    /// `warm(root_hash, root_version, fetch) -> chunks fetched`: fills the
    /// cache with the tree of that root (shallow levels first, one `fetch`
    /// call per chunk level, within the budget), each chunk checked against
    /// its parent's hash; afterwards the cache describes that root.
    fn warm(
        &mut self,
        py: Python<'_>,
        root_hash: &Bound<'_, PyAny>,
        root_version: u64,
        fetch: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let root_hash = byte_arg(root_hash, "root_hash")?;
        let hash: smt::Digest = root_hash[..]
            .try_into()
            .map_err(|_| PyValueError::new_err("root_hash must be 32 bytes"))?;
        let root = smt::Child {
            hash,
            version: root_version,
        };
        let fetch_level = |keys: &[Vec<u8>]| -> Result<Vec<Option<Vec<u8>>>, WarmError> {
            let want =
                PyList::new(py, keys.iter().map(|k| PyBytes::new(py, k))).map_err(WarmError)?;
            let got = fetch.call1((want,)).map_err(WarmError)?;
            let items = seq_items(&got, "fetch result").map_err(WarmError)?;
            items
                .iter()
                .map(|item| {
                    if item.is_none() {
                        Ok(None)
                    } else {
                        Ok(Some(
                            byte_arg(item, "fetch result[i]")
                                .map_err(WarmError)?
                                .to_vec(),
                        ))
                    }
                })
                .collect()
        };
        self.inner.warm(root, fetch_level).map_err(|e| e.0)
    }
}

/// `SmtBuilder(version, hash="blake3")`: a whole state tree built bottom up
/// in one pass (genesis). `add(keys, values)` any number of times (any order), then
/// `finish() -> (root_hash, root_version)`, then `emit(max)` repeatedly for
/// the `(node_key, node)` pairs in ascending key order (empty list: done).
#[pyclass(module = "tierchain_native")]
struct SmtBuilder {
    inner: smt::BulkBuilder,
}

#[pymethods]
impl SmtBuilder {
    #[new]
    #[pyo3(signature = (version, hash="blake3"))]
    fn new(version: u64, hash: &str) -> PyResult<Self> {
        Ok(SmtBuilder {
            inner: smt::BulkBuilder::with_hash(tree_hash(hash)?, version),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn add(&mut self, keys: &Bound<'_, PyAny>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let key_items = seq_items(keys, "keys")?;
        let value_items = seq_items(values, "values")?;
        if key_items.len() != value_items.len() {
            return Err(PyValueError::new_err(
                "keys and values must have the same length",
            ));
        }
        for (k, v) in key_items.iter().zip(&value_items) {
            let k = byte_arg(k, "keys[i]")?;
            let v = byte_arg(v, "values[i]")?;
            self.inner
                .add(&k, &v)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        Ok(())
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, u64)> {
        let inner = &mut self.inner;
        let root = py.detach(|| inner.finish()).map_err(|e| match e {
            smt::SmtError::DuplicateKey => PyValueError::new_err(e.to_string()),
            _ => runtime_error(e.to_string()),
        })?;
        Ok((PyBytes::new(py, &root.hash), root.version))
    }

    fn emit<'py>(
        &mut self,
        py: Python<'py>,
        max: usize,
    ) -> PyResult<Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>> {
        let inner = &mut self.inner;
        let nodes = py
            .detach(|| inner.emit(max))
            .map_err(|e| runtime_error(e.to_string()))?;
        Ok(nodes
            .iter()
            .map(|(k, v)| (PyBytes::new(py, k), PyBytes::new(py, v)))
            .collect())
    }
}

/// `smt_constants(hash="blake3") -> (empty_hash, contexts)`: the state tree's
/// constants for that hash (the contexts are the same for every hash), for
/// cross-checks with the pure-Python verifier and the crypto suite.
#[pyfunction]
#[pyo3(signature = (hash="blake3"))]
fn smt_constants<'py>(
    py: Python<'py>,
    hash: &str,
) -> PyResult<(Bound<'py, PyBytes>, Vec<&'static str>)> {
    Ok((
        PyBytes::new(py, &tree_hash(hash)?.empty_hash()),
        vec![
            smt::KEY_CONTEXT,
            smt::VALUE_CONTEXT,
            smt::LEAF_CONTEXT,
            smt::NODE_CONTEXT,
            smt::EMPTY_CONTEXT,
        ],
    ))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(smt_apply, m)?)?;
    m.add_function(wrap_pyfunction!(smt_constants, m)?)?;
    m.add_class::<SmtCache>()?;
    m.add_class::<SmtRecords>()?;
    m.add_class::<SmtBuilder>()?;
    Ok(())
}
