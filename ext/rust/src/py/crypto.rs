//! Bindings of [`crate::crypto`]: `verify`, `verify_batch`,
//! `verify_batch_packed` (ZIP-215 Ed25519), `hash_many`, `hash_one` (BLAKE3
//! derive-key), `merkle_root`, `merkle_root_packed`, `merkle_prove`,
//! `merkle_verify` (RFC 6962 / 9162). Each converts its arguments
//! ([`super::args`]), releases the GIL for the work, and maps errors.

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use super::args::{byte_arg, i64_arg, item_slices, runtime_error, seq_items};
use crate::crypto::{hash, merkle, sig};

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

/// Merkle roots of fewer leaves keep the GIL: a block's (a few thousand leaves)
/// takes well under a millisecond, and handing the GIL back and forth can cost a
/// switch interval (5 ms) when another thread runs Python.
const DETACH_LEAVES_MIN: usize = 16_384;

/// `merkle_root(leaves) -> bytes`.
#[pyfunction]
fn merkle_root<'py>(py: Python<'py>, leaves: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let items = seq_items(leaves, "leaves")?;
    let mut copies = Vec::new();
    let ls = item_slices(&items, &mut copies, "leaves[i]")?;
    let root = if ls.len() >= DETACH_LEAVES_MIN {
        py.detach(|| merkle::root(&ls))
    } else {
        merkle::root(&ls)
    };
    Ok(PyBytes::new(py, &root.map_err(runtime_error)?))
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
    let root = if d.len() / leaf_size >= DETACH_LEAVES_MIN {
        py.detach(|| merkle::root_packed(d, leaf_size))
    } else {
        merkle::root_packed(d, leaf_size)
    };
    Ok(PyBytes::new(py, &root.map_err(runtime_error)?))
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

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(verify_batch_packed, m)?)?;
    m.add_function(wrap_pyfunction!(hash_many, m)?)?;
    m.add_function(wrap_pyfunction!(hash_one, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root_packed, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_prove, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify, m)?)?;
    Ok(())
}
