//! `tierchain_native`: the Rust half of TierChain's hot path.
//!
//! Four jobs, each a pure-Rust module that `cargo test` exercises without
//! Python; this file only converts Python arguments and releases the GIL.
//!
//! * **Signatures** — [`sig`]: Ed25519 under the ZIP-215 rule (via
//!   `ed25519-consensus`), single and batch. Batches are split into chunks
//!   across the thread pool, malformed items are rejected up front, each chunk
//!   is batch-verified, and a failing chunk is narrowed by bisection (then
//!   single verification) so every element gets exactly the verdict that
//!   single verification gives it. ZIP-215's cofactored equation is what
//!   makes batch and single verification agree.
//! * **Hashing** — [`hash`]: BLAKE3 `derive_key(context, ·)` over many slices
//!   of one buffer (domain separation for every hash in the ledger).
//! * **Merkle trees** — [`merkle`]: RFC 6962 tree shape with BLAKE3 and the
//!   0x00/0x01 leaf/node prefixes; roots are built level by level, large
//!   trees as aligned power-of-two subtrees in parallel; RFC 6962 audit paths
//!   and the RFC 9162 §2.1.3.2 inclusion check. Leaves and nodes are short
//!   (33 and 65 bytes), so they are hashed eight at a time in AVX2 lanes by
//!   [`blake3x8`] (tested bit-for-bit against the `blake3` crate), which is
//!   what makes a 10k-leaf root ~20x faster than a Python loop.
//! * **Authenticated state** — [`smt`]: a binary sparse Merkle tree with
//!   path compression over hashed state keys, versioned by block height and
//!   updated once per block: the caller fetches one tree level per round
//!   (one LMDB cursor pass), Rust computes the new nodes and root.
//!
//! Beside them, [`lmdb`] binds liblmdb for the chain's store; it is PyO3 code
//! itself, because its point is where the GIL is released (once per batch).
//!
//! All parallel work runs on one private rayon pool ([`pool`]) sized by the
//! `TIERCHAIN_THREADS` environment variable (default: all cores).
//!
//! Python conventions: bad *cryptographic* input (wrong lengths, bad points,
//! bad proofs) is an ordinary `False`, never an exception; the wrong Python
//! *type* is `TypeError`; inconsistent shapes (mismatched lengths,
//! out-of-range offsets) are `ValueError`. Buffers other than `bytes` are
//! copied before the GIL is released, so a caller mutating a numpy array from
//! another thread cannot race with the native code.

pub mod blake3x8;
pub mod hash;
pub mod lmdb;
pub mod merkle;
pub mod pool;
pub mod sig;
pub mod smt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::ops::Deref;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList, PyString, PyTuple};

/// Bytes taken from a Python argument: borrowed from an immutable `bytes`
/// object, copied from any other buffer (which could be mutated while the GIL
/// is released).
enum ByteArg<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Deref for ByteArg<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ByteArg::Borrowed(b) => b,
            ByteArg::Owned(v) => v,
        }
    }
}

fn byte_arg<'a>(obj: &'a Bound<'_, PyAny>, name: &str) -> PyResult<ByteArg<'a>> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(ByteArg::Borrowed(bytes.as_bytes()));
    }
    let type_error = || {
        let type_name = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        PyTypeError::new_err(format!(
            "{name} must be a bytes-like object (bytes, bytearray, memoryview or uint8 array), \
             not {type_name}"
        ))
    };
    let buffer = PyBuffer::<u8>::get(obj).map_err(|_| type_error())?;
    Ok(ByteArg::Owned(
        buffer.to_vec(obj.py()).map_err(|_| type_error())?,
    ))
}

/// Items of a sequence argument, kept alive (referenced) for the whole call
/// so slices borrowed from them stay valid while the GIL is released, even if
/// the caller's list is changed meanwhile.
fn seq_items<'py>(seq: &Bound<'py, PyAny>, name: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let type_error =
        || PyTypeError::new_err(format!("{name} must be a sequence of bytes-like objects"));
    // Lists and tuples directly: the generic sequence protocol costs about
    // as much as hashing 32-byte Merkle leaves.
    if let Ok(list) = seq.cast::<PyList>() {
        return Ok(list.iter().collect());
    }
    if let Ok(tuple) = seq.cast::<PyTuple>() {
        return Ok(tuple.iter().collect());
    }
    if seq.is_instance_of::<PyString>() || seq.is_instance_of::<PyBytes>() {
        return Err(type_error());
    }
    seq.extract::<Vec<Bound<'py, PyAny>>>()
        .map_err(|_| type_error())
}

/// Views of `items` as byte slices: `bytes` are borrowed as they are; any
/// other bytes-like item is copied into `copies` first (it could be mutated
/// while the GIL is released).
fn item_slices<'a>(
    items: &'a [Bound<'_, PyAny>],
    copies: &'a mut Vec<(usize, Vec<u8>)>,
    name: &str,
) -> PyResult<Vec<&'a [u8]>> {
    for (i, item) in items.iter().enumerate() {
        if !item.is_instance_of::<PyBytes>() {
            let copy = byte_arg(item, name)?.to_vec();
            copies.push((i, copy));
        }
    }
    let mut next_copy = copies.iter().peekable();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match next_copy.next_if(|(j, _)| *j == i) {
            Some((_, copy)) => out.push(&copy[..]),
            None => out.push(item.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes()),
        }
    }
    Ok(out)
}

fn i64_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    if let Ok(buffer) = PyBuffer::<i64>::get(obj) {
        return buffer.to_vec(obj.py());
    }
    obj.extract::<Vec<i64>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be an int64 buffer (e.g. numpy int64 array) or a sequence of ints"
        ))
    })
}

fn runtime_error(message: String) -> PyErr {
    PyRuntimeError::new_err(message)
}

/// `verify(public_key, message, signature) -> bool` (ZIP-215 Ed25519).
#[pyfunction]
fn verify(
    py: Python<'_>,
    public_key: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let public_key = byte_arg(public_key, "public_key")?;
    let message = byte_arg(message, "message")?;
    let signature = byte_arg(signature, "signature")?;
    let (k, m, s) = (&public_key[..], &message[..], &signature[..]);
    Ok(py.detach(|| sig::verify(k, m, s)))
}

/// `verify_batch(public_keys, messages, signatures) -> list[bool]`.
#[pyfunction]
fn verify_batch(
    py: Python<'_>,
    public_keys: &Bound<'_, PyAny>,
    messages: &Bound<'_, PyAny>,
    signatures: &Bound<'_, PyAny>,
) -> PyResult<Vec<bool>> {
    let keys = seq_items(public_keys, "public_keys")?;
    let msgs = seq_items(messages, "messages")?;
    let sigs = seq_items(signatures, "signatures")?;
    let n = keys.len();
    if msgs.len() != n || sigs.len() != n {
        return Err(PyValueError::new_err(format!(
            "public_keys, messages and signatures must have the same length (got {n}, {}, {})",
            msgs.len(),
            sigs.len()
        )));
    }
    let (mut kc, mut mc, mut sc) = (Vec::new(), Vec::new(), Vec::new());
    let k = item_slices(&keys, &mut kc, "public_keys[i]")?;
    let m = item_slices(&msgs, &mut mc, "messages[i]")?;
    let s = item_slices(&sigs, &mut sc, "signatures[i]")?;
    py.detach(|| sig::verify_batch(&k, &m, &s))
        .map_err(runtime_error)
}

/// `verify_batch_packed(public_keys, digests, signatures) -> bytes`: packed
/// `n*32`, `n*32`, `n*64`-byte buffers; one 0/1 byte per signature.
#[pyfunction]
fn verify_batch_packed<'py>(
    py: Python<'py>,
    public_keys: &Bound<'py, PyAny>,
    digests: &Bound<'py, PyAny>,
    signatures: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let keys = byte_arg(public_keys, "public_keys")?;
    let digests = byte_arg(digests, "digests")?;
    let sigs = byte_arg(signatures, "signatures")?;
    if keys.len() % sig::PUBLIC_KEY_LEN != 0 {
        return Err(PyValueError::new_err(format!(
            "public_keys has {} bytes, not a multiple of {}",
            keys.len(),
            sig::PUBLIC_KEY_LEN
        )));
    }
    let n = keys.len() / sig::PUBLIC_KEY_LEN;
    if digests.len() != n * 32 || sigs.len() != n * sig::SIGNATURE_LEN {
        return Err(PyValueError::new_err(format!(
            "for {n} public keys expected {} digest bytes and {} signature bytes, got {} and {}",
            n * 32,
            n * sig::SIGNATURE_LEN,
            digests.len(),
            sigs.len()
        )));
    }
    let k: Vec<&[u8]> = keys.chunks_exact(sig::PUBLIC_KEY_LEN).collect();
    let m: Vec<&[u8]> = digests.chunks_exact(32).collect();
    let s: Vec<&[u8]> = sigs.chunks_exact(sig::SIGNATURE_LEN).collect();
    let verdicts = py
        .detach(|| sig::verify_batch(&k, &m, &s))
        .map_err(runtime_error)?;
    let out: Vec<u8> = verdicts.into_iter().map(u8::from).collect();
    Ok(PyBytes::new(py, &out))
}

/// `hash_many(context, buf, starts, ends) -> bytes`: `n*32` bytes of
/// BLAKE3 `derive_key(context, buf[starts[i]:ends[i]])`.
#[pyfunction]
fn hash_many<'py>(
    py: Python<'py>,
    context: &str,
    buf: &Bound<'py, PyAny>,
    starts: &Bound<'py, PyAny>,
    ends: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let data = byte_arg(buf, "buf")?;
    let starts = i64_arg(starts, "starts")?;
    let ends = i64_arg(ends, "ends")?;
    hash::check_ranges(data.len(), &starts, &ends).map_err(PyValueError::new_err)?;
    let d = &data[..];
    let out = py
        .detach(|| hash::hash_many(context, d, &starts, &ends))
        .map_err(runtime_error)?;
    Ok(PyBytes::new(py, &out))
}

/// `hash_one(context, data) -> bytes`: BLAKE3 `derive_key(context, data)`.
#[pyfunction]
fn hash_one<'py>(
    py: Python<'py>,
    context: &str,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let data = byte_arg(data, "data")?;
    let d = &data[..];
    let out = py.detach(|| hash::hash_one(context, d));
    Ok(PyBytes::new(py, &out))
}

/// `merkle_root(leaves) -> bytes`.
#[pyfunction]
fn merkle_root<'py>(py: Python<'py>, leaves: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let items = seq_items(leaves, "leaves")?;
    let mut copies = Vec::new();
    let ls = item_slices(&items, &mut copies, "leaves[i]")?;
    let root = py.detach(|| merkle::root(&ls)).map_err(runtime_error)?;
    Ok(PyBytes::new(py, &root))
}

/// `merkle_root_packed(buf, leaf_size) -> bytes`: leaves are consecutive
/// `leaf_size`-byte items of `buf`.
#[pyfunction]
fn merkle_root_packed<'py>(
    py: Python<'py>,
    buf: &Bound<'py, PyAny>,
    leaf_size: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let data = byte_arg(buf, "buf")?;
    if leaf_size == 0 || data.len() % leaf_size != 0 {
        return Err(PyValueError::new_err(format!(
            "buf has {} bytes, not a whole number of {leaf_size}-byte leaves",
            data.len()
        )));
    }
    let d = &data[..];
    let root = py
        .detach(|| merkle::root_packed(d, leaf_size))
        .map_err(runtime_error)?;
    Ok(PyBytes::new(py, &root))
}

/// `merkle_prove(leaves, index) -> list[bytes]`: RFC 6962 audit path,
/// leaf to root.
#[pyfunction]
fn merkle_prove<'py>(
    py: Python<'py>,
    leaves: &Bound<'py, PyAny>,
    index: &Bound<'py, PyAny>,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    if !index.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err("index must be an int"));
    }
    let items = seq_items(leaves, "leaves")?;
    let mut copies = Vec::new();
    let ls = item_slices(&items, &mut copies, "leaves[i]")?;
    let size = ls.len();
    let out_of_range = || {
        PyIndexError::new_err(format!(
            "leaf index out of range for a tree of {size} leaves"
        ))
    };
    let index: usize = index.extract().map_err(|_| out_of_range())?;
    let path = py
        .detach(|| merkle::prove(&ls, index))
        .map_err(|e| match e {
            merkle::ProveError::IndexOutOfRange { .. } => out_of_range(),
            merkle::ProveError::Pool(message) => runtime_error(message),
        })?;
    Ok(path.iter().map(|d| PyBytes::new(py, d)).collect())
}

/// `merkle_verify(root, leaf, index, size, proof) -> bool` (RFC 9162
/// §2.1.3.2). Malformed roots, proofs, indices or sizes are `False`.
#[pyfunction]
fn merkle_verify(
    py: Python<'_>,
    root: &Bound<'_, PyAny>,
    leaf: &Bound<'_, PyAny>,
    index: &Bound<'_, PyAny>,
    size: &Bound<'_, PyAny>,
    proof: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    if !index.is_instance_of::<PyInt>() || !size.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err("index and size must be ints"));
    }
    let root = byte_arg(root, "root")?;
    let leaf = byte_arg(leaf, "leaf")?;
    let proof_items = seq_items(proof, "proof")?;
    let mut copies = Vec::new();
    let proof = item_slices(&proof_items, &mut copies, "proof[i]")?;
    // Negative or > 2^64 - 1 positions cannot be in any tree.
    let (Ok(index), Ok(size)) = (index.extract::<u64>(), size.extract::<u64>()) else {
        return Ok(false);
    };
    let Ok(root) = <merkle::Digest>::try_from(&root[..]) else {
        return Ok(false);
    };
    let Ok(path) = proof
        .iter()
        .map(|p| <merkle::Digest>::try_from(&p[..]))
        .collect::<Result<Vec<_>, _>>()
    else {
        return Ok(false);
    };
    let l = &leaf[..];
    Ok(py.detach(|| merkle::verify(&root, l, index, size, &path)))
}

/// `smt_apply(root_hash, root_version, version, keys, values, fetch)
/// -> (root_hash, root_version, puts, stale_older, stale_now)`: one batch
/// update of the state tree (`smt.rs`). `values[i]` `None` deletes `keys[i]`.
/// `fetch(record_keys)` returns the stored bytes (or `None`) of each key, in
/// order; it is called once per chunk level (four tree levels). `puts` are
/// `(key, record)` pairs sorted by key; the keys of the records the batch
/// replaced come packed back to back in `stale_older` (those written before
/// `version`) and as a list in `stale_now` (written at `version` itself, by
/// an earlier call for the same version: never part of a committed tree).
/// With `cache` (an [`SmtCache`]), chunks it holds are not asked of `fetch`,
/// and the cache is updated with the batch's outcome.
#[pyfunction]
#[pyo3(signature = (root_hash, root_version, version, keys, values, fetch, cache=None))]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn smt_apply<'py>(
    py: Python<'py>,
    root_hash: &Bound<'py, PyAny>,
    root_version: u64,
    version: u64,
    keys: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    fetch: &Bound<'py, PyAny>,
    cache: Option<PyRefMut<'py, SmtCache>>,
) -> PyResult<(
    Bound<'py, PyBytes>,
    u64,
    Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>,
    Bound<'py, PyBytes>,
    Vec<Bound<'py, PyBytes>>,
)> {
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
    let mut updates = Vec::with_capacity(key_items.len());
    for (k, v) in key_items.iter().zip(&value_items) {
        let key = byte_arg(k, "keys[i]")?;
        updates.push(if v.is_none() {
            smt::Update::new(&key, None)
        } else {
            smt::Update::new(&key, Some(&byte_arg(v, "values[i]")?))
        });
    }
    let smt_error = |e: smt::SmtError| match e {
        smt::SmtError::DuplicateKey => PyValueError::new_err(e.to_string()),
        _ => runtime_error(e.to_string()),
    };
    let root = smt::Child {
        hash: root_hash,
        version: root_version,
    };
    let mut cache = cache;
    if let Some(c) = cache.as_mut() {
        c.inner.begin(root);
    }
    let mut updater = py
        .detach(|| smt::Updater::new(root, version, updates))
        .map_err(smt_error)?;
    // Decoded new chunks are only kept for the cache (and only as deep as it goes).
    updater.keep_chunks_below(cache.as_ref().map_or(0, |c| c.inner.depth_max));
    loop {
        if let Some(c) = cache.as_ref() {
            let inner = &c.inner;
            py.detach(|| updater.resolve_from(inner))
                .map_err(smt_error)?;
        }
        let want = updater.wanted();
        if want.is_empty() {
            break;
        }
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
        py.detach(|| updater.supply(supplied)).map_err(smt_error)?;
    }
    let out = py.detach(|| updater.finish()).map_err(smt_error)?;
    if let Some(c) = cache.as_mut() {
        let inner = &mut c.inner;
        py.detach(|| inner.commit(&out));
    }
    let root = out.root.expect("finish sets the root");
    let puts = out
        .puts
        .iter()
        .map(|(k, v)| (PyBytes::new(py, k), PyBytes::new(py, v)))
        .collect();
    let this = version.to_be_bytes();
    let (now, older): (Vec<_>, Vec<_>) = out.stale.iter().partition(|k| k[..8] == this);
    let stale_older = PyBytes::new(
        py,
        &older.into_iter().flatten().copied().collect::<Vec<u8>>(),
    );
    let stale_now = now.iter().map(|k| PyBytes::new(py, k)).collect();
    Ok((
        PyBytes::new(py, &root.hash),
        root.version,
        puts,
        stale_older,
        stale_now,
    ))
}

/// `SmtCache(depth_max, max_bytes=None)`: the top of the state tree (chunks
/// at depth `< depth_max`, at most about `max_bytes` of them) kept in memory
/// across `smt_apply` calls. It is trusted only for the tree whose root it
/// last produced: given any other base root it empties itself, so an aborted
/// (never committed) batch cannot leak chunks into the next one. Refills
/// with `warm`, or lazily from the chunks later batches write.
#[pyclass(module = "tierchain_native")]
struct SmtCache {
    inner: smt::NodeCache,
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
    #[pyo3(signature = (depth_max, max_bytes=None))]
    fn new(depth_max: u16, max_bytes: Option<usize>) -> PyResult<Self> {
        if depth_max > smt::DEPTH_MAX {
            return Err(PyValueError::new_err("depth_max must be <= 256"));
        }
        Ok(SmtCache {
            inner: smt::NodeCache::with_budget(depth_max, max_bytes.unwrap_or(usize::MAX)),
        })
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

/// `SmtBuilder(version)`: a whole state tree built bottom up in one pass
/// (genesis). `add(keys, values)` any number of times (any order), then
/// `finish() -> (root_hash, root_version)`, then `emit(max)` repeatedly for
/// the `(node_key, node)` pairs in ascending key order (empty list: done).
#[pyclass(module = "tierchain_native")]
struct SmtBuilder {
    inner: smt::BulkBuilder,
}

#[pymethods]
impl SmtBuilder {
    #[new]
    fn new(version: u64) -> Self {
        SmtBuilder {
            inner: smt::BulkBuilder::new(version),
        }
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

/// `smt_constants() -> (empty_hash, contexts)`: the state tree's constants, for
/// cross-checks with the pure-Python verifier and the crypto suite.
#[pyfunction]
fn smt_constants<'py>(py: Python<'py>) -> (Bound<'py, PyBytes>, Vec<&'static str>) {
    (
        PyBytes::new(py, &smt::empty_hash()),
        vec![
            smt::KEY_CONTEXT,
            smt::VALUE_CONTEXT,
            smt::LEAF_CONTEXT,
            smt::NODE_CONTEXT,
            smt::EMPTY_CONTEXT,
        ],
    )
}

/// `thread_count() -> int`: workers in the native pool.
#[pyfunction]
fn thread_count() -> PyResult<usize> {
    Ok(pool::pool().map_err(runtime_error)?.current_num_threads())
}

/// `release_memory()`: return the native allocator's freed memory to the OS now.
///
/// mimalloc keeps freed pages for a while (`purge_delay`, 1 s) so the next
/// allocation is cheap; after a one-off burst (the genesis bulk build of a
/// 10M-key tree) that memory would otherwise stay in the process's RSS.
/// Purging immediately on every free costs the state tree ~30% at 1M keys.
#[pyfunction]
fn release_memory(py: Python<'_>) {
    py.detach(|| unsafe { libmimalloc_sys::mi_collect(true) });
}

/// TierChain native hot path: ZIP-215 Ed25519 (single and batch), BLAKE3
/// derive-key hashing of many slices, RFC 6962 BLAKE3 Merkle trees. Heavy
/// work releases the GIL and runs on a pool sized by TIERCHAIN_THREADS.
#[pymodule]
fn tierchain_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(verify_batch_packed, m)?)?;
    m.add_function(wrap_pyfunction!(hash_many, m)?)?;
    m.add_function(wrap_pyfunction!(hash_one, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root_packed, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_prove, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify, m)?)?;
    m.add_function(wrap_pyfunction!(thread_count, m)?)?;
    m.add_function(wrap_pyfunction!(release_memory, m)?)?;
    m.add_function(wrap_pyfunction!(smt_apply, m)?)?;
    m.add_function(wrap_pyfunction!(smt_constants, m)?)?;
    m.add_class::<SmtCache>()?;
    m.add_class::<SmtBuilder>()?;
    lmdb::register(m)?;
    m.add("THREADS_ENV", pool::THREADS_ENV)?;
    Ok(())
}
