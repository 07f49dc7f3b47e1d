//! Bindings of [`crate::crypto::sm`] (national cryptography): SM3 plain,
//! domain-separated and Merkle hashes; SM2 keys, signing, single, batch and
//! packed verification; SM4 blocks, SM4-GCM sealing and PBKDF2-HMAC-SM3.
//! Same conventions as `crypto.rs`: bad cryptographic input is `False` (or
//! `None` for `sm4_gcm_open` and key derivations), the wrong type is
//! `TypeError`, shape errors and oversize parameters are `ValueError`; the
//! GIL is released for the work.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::args::{byte_arg, i64_arg, item_slices, runtime_error, seq_items};
use crate::crypto::hash::check_ranges;
use crate::crypto::sm;

fn value_error(message: String) -> PyErr {
    PyValueError::new_err(message)
}

/// `sm3(data) -> bytes`: plain SM3.
#[pyfunction]
#[pyo3(name = "sm3")]
fn sm3_plain<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let data = byte_arg(data, "data")?;
    let d = &data[..];
    let out = py.detach(|| sm::sm3(d));
    Ok(PyBytes::new(py, &out))
}

/// `sm3_hash_one(context, data) -> bytes`: the domain-separated SM3.
#[pyfunction]
fn sm3_hash_one<'py>(
    py: Python<'py>,
    context: &str,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let data = byte_arg(data, "data")?;
    let d = &data[..];
    let out = py
        .detach(|| sm::hash_one(context, d))
        .map_err(value_error)?;
    Ok(PyBytes::new(py, &out))
}

/// `sm3_hash_many(context, buf, starts, ends) -> bytes`.
#[pyfunction]
fn sm3_hash_many<'py>(
    py: Python<'py>,
    context: &str,
    buf: &Bound<'py, PyAny>,
    starts: &Bound<'py, PyAny>,
    ends: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let data = byte_arg(buf, "buf")?;
    let starts = i64_arg(starts, "starts")?;
    let ends = i64_arg(ends, "ends")?;
    check_ranges(data.len(), &starts, &ends).map_err(value_error)?;
    sm::context_state(context).map_err(value_error)?;
    let d = &data[..];
    let out = py
        .detach(|| sm::hash_many(context, d, &starts, &ends))
        .map_err(runtime_error)?;
    Ok(PyBytes::new(py, &out))
}

/// `sm3_merkle_leaf_hash(leaf) -> bytes`: `SM3(0x00 || leaf)`.
#[pyfunction]
fn sm3_merkle_leaf_hash<'py>(
    py: Python<'py>,
    leaf: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let leaf = byte_arg(leaf, "leaf")?;
    Ok(PyBytes::new(py, &sm::merkle_leaf_hash(&leaf)))
}

/// `sm3_merkle_node_hash(left, right) -> bytes`: `SM3(0x01 || left || right)`.
#[pyfunction]
fn sm3_merkle_node_hash<'py>(
    py: Python<'py>,
    left: &Bound<'py, PyAny>,
    right: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let left = byte_arg(left, "left")?;
    let right = byte_arg(right, "right")?;
    let (Ok(l), Ok(r)) = (
        <sm::Digest>::try_from(&left[..]),
        <sm::Digest>::try_from(&right[..]),
    ) else {
        return Err(PyValueError::new_err(
            "left and right must be 32-byte digests",
        ));
    };
    Ok(PyBytes::new(py, &sm::merkle_node_hash(&l, &r)))
}

/// `sm3_merkle_root(leaves) -> bytes`.
#[pyfunction]
fn sm3_merkle_root<'py>(
    py: Python<'py>,
    leaves: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let items = seq_items(leaves, "leaves")?;
    let mut copies = Vec::new();
    let ls = item_slices(&items, &mut copies, "leaves[i]")?;
    let root = py.detach(|| sm::merkle_root(&ls)).map_err(runtime_error)?;
    Ok(PyBytes::new(py, &root))
}

/// `sm3_merkle_root_packed(buf, leaf_size=32) -> bytes`.
#[pyfunction]
#[pyo3(signature = (buf, leaf_size = 32))]
fn sm3_merkle_root_packed<'py>(
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
        .detach(|| sm::merkle_root_packed(d, leaf_size))
        .map_err(runtime_error)?;
    Ok(PyBytes::new(py, &root))
}

/// `sm2_keypair_from_seed(seed, x_only=False) -> (secret_key, public_key)`:
/// a 33-byte compressed key, or with `x_only` a 32-byte x whose point has an
/// even `y` (the secret adjusted to match).
#[pyfunction]
#[pyo3(signature = (seed, x_only = false))]
fn sm2_keypair_from_seed<'py>(
    py: Python<'py>,
    seed: &Bound<'py, PyAny>,
    x_only: bool,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let seed = byte_arg(seed, "seed")?;
    let Ok(seed) = <[u8; sm::SEED_LEN]>::try_from(&seed[..]) else {
        return Err(PyValueError::new_err(format!(
            "an SM2 seed is {} bytes, got {}",
            sm::SEED_LEN,
            seed.len()
        )));
    };
    if x_only {
        let (d, pk) = py.detach(|| sm::keypair_from_seed_x(&seed));
        return Ok((PyBytes::new(py, &d), PyBytes::new(py, &pk)));
    }
    let (d, pk) = py.detach(|| sm::keypair_from_seed(&seed));
    Ok((PyBytes::new(py, &d), PyBytes::new(py, &pk)))
}

/// `sm2_public_key(secret_key) -> bytes | None`: compressed public key.
#[pyfunction]
fn sm2_public_key<'py>(
    py: Python<'py>,
    secret_key: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let d = byte_arg(secret_key, "secret_key")?;
    let d = &d[..];
    Ok(py
        .detach(|| sm::public_key(d))
        .map(|pk| PyBytes::new(py, &pk)))
}

/// `sm2_public_key_uncompressed(public_key) -> bytes | None`.
#[pyfunction]
fn sm2_public_key_uncompressed<'py>(
    py: Python<'py>,
    public_key: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let pk = byte_arg(public_key, "public_key")?;
    let pk = &pk[..];
    Ok(py
        .detach(|| sm::public_key_uncompressed(pk))
        .map(|full| PyBytes::new(py, &full)))
}

/// `sm2_sign(secret_key, message, user_id=DEFAULT) -> bytes`.
#[pyfunction]
#[pyo3(signature = (secret_key, message, user_id = sm::DEFAULT_ID))]
fn sm2_sign<'py>(
    py: Python<'py>,
    secret_key: &Bound<'py, PyAny>,
    message: &Bound<'py, PyAny>,
    user_id: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let d = byte_arg(secret_key, "secret_key")?;
    let m = byte_arg(message, "message")?;
    sm::check_id(user_id).map_err(value_error)?;
    let (d, m) = (&d[..], &m[..]);
    let Some(sig) = py.detach(|| sm::sm2_sign(d, m, user_id)) else {
        return Err(PyValueError::new_err(
            "not an SM2 secret key (32 bytes, 1 <= d <= n-2)",
        ));
    };
    Ok(PyBytes::new(py, &sig))
}

/// `sm2_verify(public_key, message, signature, user_id=DEFAULT) -> bool`.
#[pyfunction]
#[pyo3(signature = (public_key, message, signature, user_id = sm::DEFAULT_ID))]
fn sm2_verify(
    py: Python<'_>,
    public_key: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
    user_id: &str,
) -> PyResult<bool> {
    let k = byte_arg(public_key, "public_key")?;
    let m = byte_arg(message, "message")?;
    let s = byte_arg(signature, "signature")?;
    sm::check_id(user_id).map_err(value_error)?;
    let (k, m, s) = (&k[..], &m[..], &s[..]);
    Ok(py.detach(|| sm::sm2_verify(k, m, s, user_id)))
}

/// `sm2_verify_batch(public_keys, messages, signatures, user_id=DEFAULT) -> list[bool]`.
#[pyfunction]
#[pyo3(signature = (public_keys, messages, signatures, user_id = sm::DEFAULT_ID))]
fn sm2_verify_batch(
    py: Python<'_>,
    public_keys: &Bound<'_, PyAny>,
    messages: &Bound<'_, PyAny>,
    signatures: &Bound<'_, PyAny>,
    user_id: &str,
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
    sm::check_id(user_id).map_err(value_error)?;
    let (mut kc, mut mc, mut sc) = (Vec::new(), Vec::new(), Vec::new());
    let k = item_slices(&keys, &mut kc, "public_keys[i]")?;
    let m = item_slices(&msgs, &mut mc, "messages[i]")?;
    let s = item_slices(&sigs, &mut sc, "signatures[i]")?;
    py.detach(|| sm::sm2_verify_batch(&k, &m, &s, user_id))
        .map_err(runtime_error)
}

/// `sm2_verify_batch_packed(public_keys, digests, signatures) -> bytes`:
/// packed `n*k`, `n*32`, `n*64`-byte columns (`k` = 33, compressed keys, or
/// 32, x-only keys, told apart by the columns' lengths), default user ID;
/// one 0/1 byte per row.
#[pyfunction]
fn sm2_verify_batch_packed<'py>(
    py: Python<'py>,
    public_keys: &Bound<'py, PyAny>,
    digests: &Bound<'py, PyAny>,
    signatures: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let keys = byte_arg(public_keys, "public_keys")?;
    let digests = byte_arg(digests, "digests")?;
    let sigs = byte_arg(signatures, "signatures")?;
    if sigs.len() % sm::SIGNATURE_LEN != 0 {
        return Err(PyValueError::new_err(format!(
            "signatures has {} bytes, not a multiple of {}",
            sigs.len(),
            sm::SIGNATURE_LEN
        )));
    }
    let n = sigs.len() / sm::SIGNATURE_LEN;
    let key_len = if keys.len() == n * sm::PUBLIC_KEY_X_LEN {
        sm::PUBLIC_KEY_X_LEN
    } else {
        sm::PUBLIC_KEY_LEN
    };
    if keys.len() != n * key_len || digests.len() != n * sm::DIGEST_LEN {
        return Err(PyValueError::new_err(format!(
            "for {n} signatures expected {} or {} public key bytes and {} digest bytes, got {} and {}",
            n * sm::PUBLIC_KEY_X_LEN,
            n * sm::PUBLIC_KEY_LEN,
            n * sm::DIGEST_LEN,
            keys.len(),
            digests.len()
        )));
    }
    let k: Vec<&[u8]> = if n == 0 {
        Vec::new()
    } else {
        keys.chunks_exact(key_len).collect()
    };
    let m: Vec<&[u8]> = digests.chunks_exact(sm::DIGEST_LEN).collect();
    let s: Vec<&[u8]> = sigs.chunks_exact(sm::SIGNATURE_LEN).collect();
    let verdicts = py
        .detach(|| sm::sm2_verify_batch(&k, &m, &s, sm::DEFAULT_ID))
        .map_err(runtime_error)?;
    let out: Vec<u8> = verdicts.into_iter().map(u8::from).collect();
    Ok(PyBytes::new(py, &out))
}

/// `sm4_encrypt_ecb(key, data) -> bytes` (vectors and cross-checks only).
#[pyfunction]
fn sm4_encrypt_ecb<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = byte_arg(key, "key")?;
    let data = byte_arg(data, "data")?;
    let (k, d) = (&key[..], &data[..]);
    let out = py
        .detach(|| sm::sm4_encrypt_ecb(k, d))
        .map_err(value_error)?;
    Ok(PyBytes::new(py, &out))
}

/// `sm4_gcm_seal(key, nonce, plaintext, aad=b"") -> bytes` (ciphertext || tag).
#[pyfunction]
#[pyo3(signature = (key, nonce, plaintext, aad = None))]
fn sm4_gcm_seal<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    nonce: &Bound<'py, PyAny>,
    plaintext: &Bound<'py, PyAny>,
    aad: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = byte_arg(key, "key")?;
    let nonce = byte_arg(nonce, "nonce")?;
    let pt = byte_arg(plaintext, "plaintext")?;
    let aad = aad.map(|a| byte_arg(a, "aad")).transpose()?;
    let (k, n, p) = (&key[..], &nonce[..], &pt[..]);
    let a: &[u8] = aad.as_deref().unwrap_or(&[]);
    let out = py
        .detach(|| sm::sm4_gcm_seal(k, n, p, a))
        .map_err(value_error)?;
    Ok(PyBytes::new(py, &out))
}

/// `sm4_gcm_open(key, nonce, sealed, aad=b"") -> bytes | None`.
#[pyfunction]
#[pyo3(signature = (key, nonce, sealed, aad = None))]
fn sm4_gcm_open<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    nonce: &Bound<'py, PyAny>,
    sealed: &Bound<'py, PyAny>,
    aad: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let key = byte_arg(key, "key")?;
    let nonce = byte_arg(nonce, "nonce")?;
    let sealed = byte_arg(sealed, "sealed")?;
    let aad = aad.map(|a| byte_arg(a, "aad")).transpose()?;
    let (k, n, c) = (&key[..], &nonce[..], &sealed[..]);
    let a: &[u8] = aad.as_deref().unwrap_or(&[]);
    let out = py
        .detach(|| sm::sm4_gcm_open(k, n, c, a))
        .map_err(value_error)?;
    Ok(out.map(|p| PyBytes::new(py, &p)))
}

/// `pbkdf2_hmac_sm3(password, salt, iterations, length) -> bytes`.
#[pyfunction]
fn pbkdf2_hmac_sm3<'py>(
    py: Python<'py>,
    password: &Bound<'py, PyAny>,
    salt: &Bound<'py, PyAny>,
    iterations: u32,
    length: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let password = byte_arg(password, "password")?;
    let salt = byte_arg(salt, "salt")?;
    let (p, s) = (&password[..], &salt[..]);
    let out = py
        .detach(|| sm::pbkdf2_hmac_sm3(p, s, iterations, length))
        .map_err(value_error)?;
    Ok(PyBytes::new(py, &out))
}

/// `sm2_encrypt(public_key, plaintext) -> bytes | None`: SM2 encryption
/// (`C1 || C3 || C2`, `C1` compressed); `None` for a key that is not a point.
#[pyfunction]
fn sm2_encrypt<'py>(
    py: Python<'py>,
    public_key: &Bound<'py, PyAny>,
    plaintext: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let pk = byte_arg(public_key, "public_key")?;
    let msg = byte_arg(plaintext, "plaintext")?;
    if msg.len() > sm::PKE_PLAINTEXT_MAX {
        return Err(PyValueError::new_err(format!(
            "SM2 encryption takes at most {} bytes, got {}",
            sm::PKE_PLAINTEXT_MAX,
            msg.len()
        )));
    }
    let (k, m) = (&pk[..], &msg[..]);
    Ok(py
        .detach(|| sm::sm2_encrypt(k, m))
        .map(|c| PyBytes::new(py, &c)))
}

/// `sm2_decrypt(secret_key, ciphertext) -> bytes | None`: `None` unless it
/// decrypts (wrong key, damage, malformed).
#[pyfunction]
fn sm2_decrypt<'py>(
    py: Python<'py>,
    secret_key: &Bound<'py, PyAny>,
    ciphertext: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let d = byte_arg(secret_key, "secret_key")?;
    let c = byte_arg(ciphertext, "ciphertext")?;
    let (d, c) = (&d[..], &c[..]);
    Ok(py
        .detach(|| sm::sm2_decrypt(d, c))
        .map(|p| PyBytes::new(py, &p)))
}

/// `sm3_hmac(key, data) -> bytes`: HMAC-SM3 (RFC 2104).
#[pyfunction]
fn sm3_hmac<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = byte_arg(key, "key")?;
    let data = byte_arg(data, "data")?;
    let (k, d) = (&key[..], &data[..]);
    let mac = py.detach(|| sm::hmac_sm3(k, d));
    Ok(PyBytes::new(py, &mac))
}

/// `sm_constants() -> dict`: sizes, the default user ID and limits.
#[pyfunction]
fn sm_constants(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("digest_bytes", sm::DIGEST_LEN)?;
    d.set_item("seed_bytes", sm::SEED_LEN)?;
    d.set_item("secret_key_bytes", sm::SECRET_KEY_LEN)?;
    d.set_item("public_key_bytes", sm::PUBLIC_KEY_LEN)?;
    d.set_item("public_key_x_bytes", sm::PUBLIC_KEY_X_LEN)?;
    d.set_item(
        "public_key_uncompressed_bytes",
        sm::PUBLIC_KEY_UNCOMPRESSED_LEN,
    )?;
    d.set_item("signature_bytes", sm::SIGNATURE_LEN)?;
    d.set_item("default_user_id", sm::DEFAULT_ID)?;
    d.set_item("user_id_max_bytes", sm::ID_LEN_MAX)?;
    d.set_item("context_max_bytes", sm::CONTEXT_LEN_MAX)?;
    d.set_item("sm4_key_bytes", sm::SM4_KEY_LEN)?;
    d.set_item("gcm_nonce_bytes", sm::GCM_NONCE_LEN)?;
    d.set_item("gcm_tag_bytes", sm::GCM_TAG_LEN)?;
    d.set_item("kdf_max_bytes", sm::KDF_LEN_MAX)?;
    d.set_item("pke_overhead_bytes", sm::PKE_OVERHEAD)?;
    d.set_item("pke_plaintext_max_bytes", sm::PKE_PLAINTEXT_MAX)?;
    d.set_item("secret_key_tag", PyBytes::new(py, sm::SECRET_KEY_TAG))?;
    Ok(d)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sm3_plain, m)?)?;
    m.add_function(wrap_pyfunction!(sm3_hash_one, m)?)?;
    m.add_function(wrap_pyfunction!(sm3_hash_many, m)?)?;
    m.add_function(wrap_pyfunction!(sm3_hmac, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(sm3_merkle_leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(sm3_merkle_node_hash, m)?)?;
    m.add_function(wrap_pyfunction!(sm3_merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(sm3_merkle_root_packed, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_keypair_from_seed, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_public_key, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_public_key_uncompressed, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_sign, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_verify, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(sm2_verify_batch_packed, m)?)?;
    m.add_function(wrap_pyfunction!(sm4_encrypt_ecb, m)?)?;
    m.add_function(wrap_pyfunction!(sm4_gcm_seal, m)?)?;
    m.add_function(wrap_pyfunction!(sm4_gcm_open, m)?)?;
    m.add_function(wrap_pyfunction!(pbkdf2_hmac_sm3, m)?)?;
    m.add_function(wrap_pyfunction!(sm_constants, m)?)?;
    Ok(())
}
