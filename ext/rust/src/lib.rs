//! `tierchain_native`: the Rust half of TierChain's hot path.
//!
//! Pure-Rust subsystems that `cargo test` exercises without Python,
//! and one module of Python bindings:
//!
//! * **Cryptography** — [`crypto`]:
//!   * signatures ([`crypto::sig`]): Ed25519 under the ZIP-215 rule (single
//!     verification by `ed25519-zebra` on curve25519-dalek 5; the batch
//!     equation on dalek's operations, with decoded keys kept across batches).
//!     Batches are split into chunks across the thread pool, malformed items
//!     are rejected up front, each chunk is batch-verified, and a failing chunk is narrowed by bisection
//!     (then single verification) so every element gets exactly the verdict
//!     that single verification gives it. ZIP-215's cofactored equation is
//!     what makes batch and single verification agree;
//!   * hashing ([`crypto::hash`]): BLAKE3 `derive_key(context, ·)` over many
//!     slices of one buffer (domain separation for every hash in the ledger);
//!   * confidential amounts ([`crypto::confidential`]): Pedersen
//!     commitments on Ristretto255, aggregated Bulletproofs+ range proofs and
//!     grouped twisted-ElGamal ciphertexts with validity proofs (from
//!     `tari_bulletproofs_plus`, `lox-zkp` and `solana-zk-sdk`), each proof
//!     bound to a caller context by its merlin transcript; batches of range
//!     proofs are batch-verified in chunks across the pool and narrowed by
//!     bisection, one verdict per proof (docs/privacy.md);
//!   * national cryptography ([`crypto::sm`]): SM3 (domain-separated, over
//!     many slices, RFC 6962 Merkle roots), SM2 signatures with the ZA
//!     user-ID digest (batch = per-item verification spread over the pool),
//!     SM4-GCM and PBKDF2-HMAC-SM3, from RustCrypto crates
//!     (docs/national-crypto.md);
//!   * Merkle trees ([`crypto::merkle`]): RFC 6962 tree shape with BLAKE3 and
//!     the 0x00/0x01 leaf/node prefixes; roots are built level by level,
//!     large trees as aligned power-of-two subtrees in parallel; RFC 6962
//!     audit paths and the RFC 9162 §2.1.3.2 inclusion check. Leaves and
//!     nodes are short (33 and 65 bytes), so they are hashed eight at a time
//!     in AVX2 lanes by [`crypto::blake3x8`] (tested bit-for-bit against the
//!     `blake3` crate), which is what makes a 10k-leaf root ~20x faster than
//!     a Python loop.
//! * **Authenticated state** — [`smt`]: a binary sparse Merkle tree with
//!   path compression over hashed state keys, versioned by block height and
//!   updated once per block: the caller fetches one tree level per round
//!   (one LMDB cursor pass), Rust computes the new nodes and root.
//! * **Admission's bookkeeping** — [`admit`]: the mempool's nonce sequence
//!   per sender and its pending transaction ids, and a replicated node's
//!   CheckTx view ([`admit::check`]), one call per batch.
//! * **Thread pool** — [`pool`]: all parallel work runs on one private rayon
//!   pool sized by the `TIERCHAIN_THREADS` environment variable (default:
//!   all cores).
//! * **Python bindings** — [`py`]: argument conversion, GIL release and
//!   errors for the above, and [`py::lmdb`], the chain store's binding of
//!   liblmdb (PyO3 code itself, because its point is where the GIL is
//!   released: once per batch). This file declares the modules, the global
//!   allocator and the `#[pymodule]`.
//!
//! Python conventions: bad *cryptographic* input (wrong lengths, bad points,
//! bad proofs) is an ordinary `False`, never an exception; the wrong Python
//! *type* is `TypeError`; inconsistent shapes (mismatched lengths,
//! out-of-range offsets) are `ValueError`. Buffers other than `bytes` are
//! copied before the GIL is released, so a caller mutating a numpy array from
//! another thread cannot race with the native code.

pub mod admit;
pub mod crypto;
pub mod exec;
pub mod pool;
pub mod py;
pub mod smt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use pyo3::prelude::*;

/// TierChain native hot path: ZIP-215 Ed25519 (single and batch), BLAKE3
/// derive-key hashing of many slices, RFC 6962 BLAKE3 Merkle trees,
/// confidential-amount commitments and proofs. Heavy
/// work releases the GIL and runs on a pool sized by TIERCHAIN_THREADS.
#[pymodule]
fn tierchain_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py::register(m)
}
