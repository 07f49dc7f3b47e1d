//! Bindings of [`crate::crypto::confidential`]: Pedersen commitments, their
//! sums and linear combinations, aggregated range proofs, grouped ElGamal
//! ciphertexts, their validity proofs and decryption. Proofs, batches, sums,
//! linear combinations and decryption run with the GIL released; batches run
//! on the crate's pool.
//!
//! Python conventions (as for signatures): malformed cryptographic input is
//! `False` (or `None` where a value is returned); the wrong Python type is
//! `TypeError`; sizes over the module's bounds, mismatched shapes, amounts
//! outside `u64` and unusable prover input are `ValueError`.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt};

use super::args::{byte_arg, item_slices, seq_items};
use crate::crypto::confidential as conf;

fn map_err(e: conf::Error) -> PyErr {
    match e {
        conf::Error::Input(m) => PyValueError::new_err(m),
        conf::Error::Pool(m) => PyRuntimeError::new_err(m),
    }
}

fn u64_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    if !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int")));
    }
    obj.extract::<u64>()
        .map_err(|_| PyValueError::new_err(format!("{name} must be in 0..2**64")))
}

fn bits_arg(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    Ok(usize::try_from(u64_arg(obj, "bits")?).unwrap_or(usize::MAX))
}

fn bytes_list<'py>(py: Python<'py>, items: &[[u8; 32]]) -> Vec<Bound<'py, PyBytes>> {
    items.iter().map(|b| PyBytes::new(py, b)).collect()
}

/// Slices of each inner sequence of `outer` (a sequence of sequences of
/// bytes-like objects); `copies` keeps non-`bytes` items alive.
fn nested_slices<'a>(
    inner: &'a [Vec<Bound<'_, PyAny>>],
    copies: &'a mut [Vec<(usize, Vec<u8>)>],
    name: &str,
) -> PyResult<Vec<Vec<&'a [u8]>>> {
    inner
        .iter()
        .zip(copies.iter_mut())
        .map(|(items, c)| item_slices(items, c, name))
        .collect()
}

fn nested_items<'py>(
    outer: &[Bound<'py, PyAny>],
    name: &str,
) -> PyResult<Vec<Vec<Bound<'py, PyAny>>>> {
    outer.iter().map(|s| seq_items(s, name)).collect()
}

/// `pedersen_generators() -> (G, H)`, compressed.
#[pyfunction]
fn pedersen_generators(py: Python<'_>) -> (Bound<'_, PyBytes>, Bound<'_, PyBytes>) {
    let (g, h) = conf::generators();
    (PyBytes::new(py, &g), PyBytes::new(py, &h))
}

/// `pedersen_random_opening() -> bytes`.
#[pyfunction]
fn pedersen_random_opening(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, &conf::random_opening())
}

/// `pedersen_commit(amount, opening) -> bytes`.
#[pyfunction]
fn pedersen_commit<'py>(
    py: Python<'py>,
    amount: &Bound<'py, PyAny>,
    opening: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let amount = u64_arg(amount, "amount")?;
    let opening = byte_arg(opening, "opening")?;
    let c = conf::commit(amount, &opening).map_err(map_err)?;
    Ok(PyBytes::new(py, &c))
}

/// `pedersen_commitment_sum(adds, subs=()) -> bytes | None`.
#[pyfunction]
#[pyo3(signature = (adds, subs=None))]
fn pedersen_commitment_sum<'py>(
    py: Python<'py>,
    adds: &Bound<'py, PyAny>,
    subs: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let a_items = seq_items(adds, "adds")?;
    let s_items = match subs {
        Some(s) => seq_items(s, "subs")?,
        None => Vec::new(),
    };
    let (mut ac, mut sc) = (Vec::new(), Vec::new());
    let a = item_slices(&a_items, &mut ac, "adds[i]")?;
    let s = item_slices(&s_items, &mut sc, "subs[i]")?;
    let out = py
        .detach(|| conf::commitment_sum(&a, &s))
        .map_err(map_err)?;
    Ok(out.map(|c| PyBytes::new(py, &c)))
}

/// `pedersen_balance(inputs, outputs) -> bool`.
#[pyfunction]
fn pedersen_balance<'py>(
    py: Python<'py>,
    inputs: &Bound<'py, PyAny>,
    outputs: &Bound<'py, PyAny>,
) -> PyResult<bool> {
    let i_items = seq_items(inputs, "inputs")?;
    let o_items = seq_items(outputs, "outputs")?;
    let (mut ic, mut oc) = (Vec::new(), Vec::new());
    let i = item_slices(&i_items, &mut ic, "inputs[i]")?;
    let o = item_slices(&o_items, &mut oc, "outputs[i]")?;
    py.detach(|| conf::commitments_balance(&i, &o))
        .map_err(map_err)
}

/// `pedersen_opening_sum(adds, subs=()) -> bytes`.
#[pyfunction]
#[pyo3(signature = (adds, subs=None))]
fn pedersen_opening_sum<'py>(
    py: Python<'py>,
    adds: &Bound<'py, PyAny>,
    subs: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let a_items = seq_items(adds, "adds")?;
    let s_items = match subs {
        Some(s) => seq_items(s, "subs")?,
        None => Vec::new(),
    };
    let (mut ac, mut sc) = (Vec::new(), Vec::new());
    let a = item_slices(&a_items, &mut ac, "adds[i]")?;
    let s = item_slices(&s_items, &mut sc, "subs[i]")?;
    let out = conf::opening_sum(&a, &s).map_err(map_err)?;
    Ok(PyBytes::new(py, &out))
}

/// `pedersen_commitment_lincomb(points, scalars) -> bytes | None`:
/// `Σ scalars[i]·points[i]`, scalars canonical 32-byte little-endian.
#[pyfunction]
fn pedersen_commitment_lincomb<'py>(
    py: Python<'py>,
    points: &Bound<'py, PyAny>,
    scalars: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let p_items = seq_items(points, "points")?;
    let k_items = seq_items(scalars, "scalars")?;
    let (mut pc, mut kc) = (Vec::new(), Vec::new());
    let p = item_slices(&p_items, &mut pc, "points[i]")?;
    let k = item_slices(&k_items, &mut kc, "scalars[i]")?;
    let out = py
        .detach(|| conf::commitment_lincomb(&p, &k))
        .map_err(map_err)?;
    Ok(out.map(|c| PyBytes::new(py, &c)))
}

/// `pedersen_opening_lincomb(openings, scalars) -> bytes`:
/// `Σ scalars[i]·openings[i]` mod the group order.
#[pyfunction]
fn pedersen_opening_lincomb<'py>(
    py: Python<'py>,
    openings: &Bound<'py, PyAny>,
    scalars: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let o_items = seq_items(openings, "openings")?;
    let k_items = seq_items(scalars, "scalars")?;
    let (mut oc, mut kc) = (Vec::new(), Vec::new());
    let o = item_slices(&o_items, &mut oc, "openings[i]")?;
    let k = item_slices(&k_items, &mut kc, "scalars[i]")?;
    let out = py
        .detach(|| conf::opening_lincomb(&o, &k))
        .map_err(map_err)?;
    Ok(PyBytes::new(py, &out))
}

/// `range_prove(amounts, openings, context, bits=64) -> (proof, commitments)`.
#[pyfunction]
#[pyo3(signature = (amounts, openings, context, bits=None))]
fn range_prove<'py>(
    py: Python<'py>,
    amounts: &Bound<'py, PyAny>,
    openings: &Bound<'py, PyAny>,
    context: &Bound<'py, PyAny>,
    bits: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyBytes>, Vec<Bound<'py, PyBytes>>)> {
    let bits = bits.map_or(Ok(64), bits_arg)?;
    let amount_items = seq_items(amounts, "amounts")?;
    let amounts = amount_items
        .iter()
        .map(|a| u64_arg(a, "amounts[i]"))
        .collect::<PyResult<Vec<u64>>>()?;
    let o_items = seq_items(openings, "openings")?;
    let mut oc = Vec::new();
    let o = item_slices(&o_items, &mut oc, "openings[i]")?;
    let context = byte_arg(context, "context")?;
    let ctx = &context[..];
    let (proof, commitments) = py
        .detach(|| conf::range_prove(&amounts, &o, bits, ctx))
        .map_err(map_err)?;
    Ok((PyBytes::new(py, &proof), bytes_list(py, &commitments)))
}

/// `range_verify(proof, commitments, context, bits=64) -> bool`.
#[pyfunction]
#[pyo3(signature = (proof, commitments, context, bits=None))]
fn range_verify<'py>(
    py: Python<'py>,
    proof: &Bound<'py, PyAny>,
    commitments: &Bound<'py, PyAny>,
    context: &Bound<'py, PyAny>,
    bits: Option<&Bound<'py, PyAny>>,
) -> PyResult<bool> {
    let bits = bits.map_or(Ok(64), bits_arg)?;
    let proof = byte_arg(proof, "proof")?;
    let c_items = seq_items(commitments, "commitments")?;
    let mut cc = Vec::new();
    let c = item_slices(&c_items, &mut cc, "commitments[i]")?;
    let context = byte_arg(context, "context")?;
    let (p, ctx) = (&proof[..], &context[..]);
    py.detach(|| conf::range_verify(p, &c, bits, ctx))
        .map_err(map_err)
}

/// `range_verify_batch(proofs, commitments, contexts, bits=64) -> list[bool]`:
/// `commitments[i]` is the sequence of commitments of `proofs[i]`.
#[pyfunction]
#[pyo3(signature = (proofs, commitments, contexts, bits=None))]
fn range_verify_batch<'py>(
    py: Python<'py>,
    proofs: &Bound<'py, PyAny>,
    commitments: &Bound<'py, PyAny>,
    contexts: &Bound<'py, PyAny>,
    bits: Option<&Bound<'py, PyAny>>,
) -> PyResult<Vec<bool>> {
    let bits = bits.map_or(Ok(64), bits_arg)?;
    let p_items = seq_items(proofs, "proofs")?;
    let c_outer = seq_items(commitments, "commitments")?;
    let x_items = seq_items(contexts, "contexts")?;
    let n = p_items.len();
    if c_outer.len() != n || x_items.len() != n {
        return Err(PyValueError::new_err(format!(
            "proofs, commitments and contexts must have the same length (got {n}, {}, {})",
            c_outer.len(),
            x_items.len()
        )));
    }
    if n > conf::MAX_BATCH {
        return Err(PyValueError::new_err(format!(
            "{n} proofs in one batch, more than MAX_BATCH = {}",
            conf::MAX_BATCH
        )));
    }
    let c_inner = nested_items(&c_outer, "commitments[i]")?;
    let (mut pc, mut xc) = (Vec::new(), Vec::new());
    let mut cc = vec![Vec::new(); n];
    let p = item_slices(&p_items, &mut pc, "proofs[i]")?;
    let x = item_slices(&x_items, &mut xc, "contexts[i]")?;
    let c = nested_slices(&c_inner, &mut cc, "commitments[i][j]")?;
    let items: Vec<conf::RangeItem> = p
        .into_iter()
        .zip(c)
        .zip(x)
        .map(|((proof, commitments), context)| conf::RangeItem {
            proof,
            commitments,
            context,
        })
        .collect();
    py.detach(|| conf::range_verify_batch(&items, bits))
        .map_err(map_err)
}

/// `elgamal_keypair(seed) -> (secret, public)`.
#[pyfunction]
fn elgamal_keypair<'py>(
    py: Python<'py>,
    seed: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let seed = byte_arg(seed, "seed")?;
    let (s, p) = conf::elgamal_keypair(&seed).map_err(map_err)?;
    Ok((PyBytes::new(py, &s), PyBytes::new(py, &p)))
}

/// `elgamal_grouped_encrypt(amount, opening, pubkeys) -> (commitment, handles)`.
#[pyfunction]
fn elgamal_grouped_encrypt<'py>(
    py: Python<'py>,
    amount: &Bound<'py, PyAny>,
    opening: &Bound<'py, PyAny>,
    pubkeys: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Vec<Bound<'py, PyBytes>>)> {
    let amount = u64_arg(amount, "amount")?;
    let opening = byte_arg(opening, "opening")?;
    let k_items = seq_items(pubkeys, "pubkeys")?;
    let mut kc = Vec::new();
    let k = item_slices(&k_items, &mut kc, "pubkeys[i]")?;
    let (c, handles) = conf::grouped_encrypt(amount, &opening, &k).map_err(map_err)?;
    Ok((PyBytes::new(py, &c), bytes_list(py, &handles)))
}

/// `elgamal_decrypt(secret, commitment, handle) -> int | None`.
#[pyfunction]
fn elgamal_decrypt<'py>(
    py: Python<'py>,
    secret: &Bound<'py, PyAny>,
    commitment: &Bound<'py, PyAny>,
    handle: &Bound<'py, PyAny>,
) -> PyResult<Option<u64>> {
    let secret = byte_arg(secret, "secret")?;
    let commitment = byte_arg(commitment, "commitment")?;
    let handle = byte_arg(handle, "handle")?;
    let (s, c, h) = (&secret[..], &commitment[..], &handle[..]);
    py.detach(|| conf::elgamal_decrypt(s, c, h))
        .map_err(map_err)
}

/// `elgamal_decrypts_to(secret, commitment, handle, amount) -> bool`.
#[pyfunction]
fn elgamal_decrypts_to<'py>(
    secret: &Bound<'py, PyAny>,
    commitment: &Bound<'py, PyAny>,
    handle: &Bound<'py, PyAny>,
    amount: &Bound<'py, PyAny>,
) -> PyResult<bool> {
    let amount = u64_arg(amount, "amount")?;
    let secret = byte_arg(secret, "secret")?;
    let commitment = byte_arg(commitment, "commitment")?;
    let handle = byte_arg(handle, "handle")?;
    conf::elgamal_decrypts_to(&secret, &commitment, &handle, amount).map_err(map_err)
}

/// `validity_prove(amount, opening, pubkeys, context) -> bytes`.
#[pyfunction]
fn validity_prove<'py>(
    py: Python<'py>,
    amount: &Bound<'py, PyAny>,
    opening: &Bound<'py, PyAny>,
    pubkeys: &Bound<'py, PyAny>,
    context: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let amount = u64_arg(amount, "amount")?;
    let opening = byte_arg(opening, "opening")?;
    let k_items = seq_items(pubkeys, "pubkeys")?;
    let mut kc = Vec::new();
    let k = item_slices(&k_items, &mut kc, "pubkeys[i]")?;
    let context = byte_arg(context, "context")?;
    let (o, ctx) = (&opening[..], &context[..]);
    let proof = py
        .detach(|| conf::validity_prove(amount, o, &k, ctx))
        .map_err(map_err)?;
    Ok(PyBytes::new(py, &proof))
}

/// `validity_verify(proof, commitment, handles, pubkeys, context) -> bool`.
#[pyfunction]
fn validity_verify<'py>(
    py: Python<'py>,
    proof: &Bound<'py, PyAny>,
    commitment: &Bound<'py, PyAny>,
    handles: &Bound<'py, PyAny>,
    pubkeys: &Bound<'py, PyAny>,
    context: &Bound<'py, PyAny>,
) -> PyResult<bool> {
    let proof = byte_arg(proof, "proof")?;
    let commitment = byte_arg(commitment, "commitment")?;
    let h_items = seq_items(handles, "handles")?;
    let k_items = seq_items(pubkeys, "pubkeys")?;
    let (mut hc, mut kc) = (Vec::new(), Vec::new());
    let h = item_slices(&h_items, &mut hc, "handles[i]")?;
    let k = item_slices(&k_items, &mut kc, "pubkeys[i]")?;
    let context = byte_arg(context, "context")?;
    let (p, c, ctx) = (&proof[..], &commitment[..], &context[..]);
    py.detach(|| conf::validity_verify(p, c, &h, &k, ctx))
        .map_err(map_err)
}

/// `validity_verify_batch(proofs, commitments, handles, pubkeys, contexts)
/// -> list[bool]`: `handles[i]` and `pubkeys[i]` are sequences.
#[pyfunction]
fn validity_verify_batch<'py>(
    py: Python<'py>,
    proofs: &Bound<'py, PyAny>,
    commitments: &Bound<'py, PyAny>,
    handles: &Bound<'py, PyAny>,
    pubkeys: &Bound<'py, PyAny>,
    contexts: &Bound<'py, PyAny>,
) -> PyResult<Vec<bool>> {
    let p_items = seq_items(proofs, "proofs")?;
    let c_items = seq_items(commitments, "commitments")?;
    let h_outer = seq_items(handles, "handles")?;
    let k_outer = seq_items(pubkeys, "pubkeys")?;
    let x_items = seq_items(contexts, "contexts")?;
    let n = p_items.len();
    let lens = [c_items.len(), h_outer.len(), k_outer.len(), x_items.len()];
    if lens.iter().any(|&l| l != n) {
        return Err(PyValueError::new_err(format!(
            "proofs, commitments, handles, pubkeys and contexts must have the same length \
             (got {n}, {}, {}, {}, {})",
            lens[0], lens[1], lens[2], lens[3]
        )));
    }
    if n > conf::MAX_BATCH {
        return Err(PyValueError::new_err(format!(
            "{n} proofs in one batch, more than MAX_BATCH = {}",
            conf::MAX_BATCH
        )));
    }
    let h_inner = nested_items(&h_outer, "handles[i]")?;
    let k_inner = nested_items(&k_outer, "pubkeys[i]")?;
    let (mut pc, mut cc, mut xc) = (Vec::new(), Vec::new(), Vec::new());
    let (mut hc, mut kc) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let p = item_slices(&p_items, &mut pc, "proofs[i]")?;
    let c = item_slices(&c_items, &mut cc, "commitments[i]")?;
    let x = item_slices(&x_items, &mut xc, "contexts[i]")?;
    let h = nested_slices(&h_inner, &mut hc, "handles[i][j]")?;
    let k = nested_slices(&k_inner, &mut kc, "pubkeys[i][j]")?;
    let items: Vec<conf::ValidityItem> = p
        .into_iter()
        .zip(c)
        .zip(h.into_iter().zip(k))
        .zip(x)
        .map(
            |(((proof, commitment), (handles, pubkeys)), context)| conf::ValidityItem {
                proof,
                commitment,
                handles,
                pubkeys,
                context,
            },
        )
        .collect();
    py.detach(|| conf::validity_verify_batch(&items))
        .map_err(map_err)
}

/// `confidential_constants() -> dict`: the module's labels and bounds.
#[pyfunction]
fn confidential_constants(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("DOMAIN", PyBytes::new(py, conf::DOMAIN))?;
    d.set_item("RANGE_PURPOSE", PyBytes::new(py, conf::RANGE_PURPOSE))?;
    d.set_item("VALIDITY_PURPOSE", PyBytes::new(py, conf::VALIDITY_PURPOSE))?;
    d.set_item(
        "ELGAMAL_KEY_LABEL",
        PyBytes::new(py, conf::ELGAMAL_KEY_LABEL),
    )?;
    d.set_item("POINT_LEN", conf::POINT_LEN)?;
    d.set_item("SCALAR_LEN", conf::SCALAR_LEN)?;
    d.set_item("SEED_LEN", conf::SEED_LEN)?;
    d.set_item("RANGE_BITS", conf::RANGE_BITS.to_vec())?;
    d.set_item("MAX_RANGE_AMOUNTS", conf::MAX_RANGE_AMOUNTS)?;
    d.set_item("MAX_HANDLES", conf::MAX_HANDLES)?;
    d.set_item("MAX_CONTEXT_LEN", conf::MAX_CONTEXT_LEN)?;
    d.set_item("MAX_BATCH", conf::MAX_BATCH)?;
    d.set_item("MAX_SUM_TERMS", conf::MAX_SUM_TERMS)?;
    d.set_item("VALIDITY_PROOF_LEN", conf::VALIDITY_PROOF_LEN)?;
    d.set_item("DECRYPT_MAX_BITS", conf::DECRYPT_MAX_BITS)?;
    d.set_item("GROUP_ORDER", PyBytes::new(py, &conf::GROUP_ORDER))?;
    Ok(d)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pedersen_generators, m)?)?;
    m.add_function(wrap_pyfunction!(pedersen_random_opening, m)?)?;
    m.add_function(wrap_pyfunction!(pedersen_commit, m)?)?;
    m.add_function(wrap_pyfunction!(pedersen_commitment_sum, m)?)?;
    m.add_function(wrap_pyfunction!(pedersen_balance, m)?)?;
    m.add_function(wrap_pyfunction!(pedersen_opening_sum, m)?)?;
    m.add_function(wrap_pyfunction!(pedersen_commitment_lincomb, m)?)?;
    m.add_function(wrap_pyfunction!(pedersen_opening_lincomb, m)?)?;
    m.add_function(wrap_pyfunction!(range_prove, m)?)?;
    m.add_function(wrap_pyfunction!(range_verify, m)?)?;
    m.add_function(wrap_pyfunction!(range_verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(elgamal_keypair, m)?)?;
    m.add_function(wrap_pyfunction!(elgamal_grouped_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(elgamal_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(elgamal_decrypts_to, m)?)?;
    m.add_function(wrap_pyfunction!(validity_prove, m)?)?;
    m.add_function(wrap_pyfunction!(validity_verify, m)?)?;
    m.add_function(wrap_pyfunction!(validity_verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(confidential_constants, m)?)?;
    Ok(())
}
