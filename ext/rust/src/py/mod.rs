//! The Python module `tierchain_native`: PyO3 glue only. Every function
//! here converts Python arguments (`args.rs`), releases the GIL around the
//! pure-Rust work of [`crate::crypto`] and [`crate::smt`], and turns the
//! result and errors back into Python objects.
//!
//! | file | exports |
//! |---|---|
//! | `admit.rs` | `NonceBook`, `NonceSequencer`, `SeenSet` |
//! | `args.rs` | (shared) bytes/sequence/int64 arguments, copy-or-borrow |
//! | `confidential.rs` | `pedersen_*`, `range_prove`, `range_verify`, `range_verify_batch`, `elgamal_*`, `validity_prove`, `validity_verify`, `validity_verify_batch`, `confidential_constants` |
//! | `crypto.rs` | `verify`, `verify_batch`, `verify_batch_packed`, `hash_many`, `hash_one`, `merkle_root`, `merkle_root_packed`, `merkle_prove`, `merkle_verify` |
//! | `sm.rs` | `sm3`, `sm3_hash_one`, `sm3_hash_many`, `sm3_merkle_*`, `sm2_*` (keys, sign, verify, batch, packed), `sm4_encrypt_ecb`, `sm4_gcm_seal`, `sm4_gcm_open`, `pbkdf2_hmac_sm3`, `sm_constants` |
//! | `exec.rs` | `BlockState`, `BlockCols`, `exec_constants` |
//! | `runtime.rs` | `thread_count`, `release_memory`, `allocator_purge_delay_ms`, `PURGE_DELAY_MS`, `THREADS_ENV` |
//! | `smt.rs` | `smt_apply`, `SmtCache`, `SmtBuilder`, `smt_constants` |
//! | `lmdb.rs` | `LmdbEnv`, `LmdbTxn`, `LmdbError`, `LmdbNotFound`, `LmdbKeyExists` |
//!
//! `lmdb.rs` is a binding of liblmdb written against PyO3 directly: its
//! point is where the GIL is released (once per batch), so it has no
//! Python-free core to separate.

use pyo3::prelude::*;

mod admit;
mod args;
mod confidential;
mod crypto;
mod exec;
pub mod lmdb;
mod runtime;
mod sm;
mod smt;

/// Adds every export to the module, in the order the module always had.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crypto::register(m)?;
    exec::register(m)?;
    runtime::register(m)?;
    smt::register(m)?;
    lmdb::register(m)?;
    confidential::register(m)?;
    sm::register(m)?;
    admit::register(m)?;
    m.add("THREADS_ENV", crate::pool::THREADS_ENV)?;
    Ok(())
}
