//! Cryptography, pure Rust: what the chain's crypto suite (`tierchain.crypto`)
//! calls natively.
//!
//! | file | algorithm |
//! |---|---|
//! | `sig.rs` | Ed25519 under ZIP-215, single and batch: malformed items refused up front, chunks batch-verified on the pool, a failing chunk narrowed by bisection so each verdict equals single verification's |
//! | `hash.rs` | BLAKE3 `derive_key(context, ·)` over many slices of one buffer, in parallel for large inputs |
//! | `merkle.rs` | RFC 6962 trees with BLAKE3: roots level by level (large trees as power-of-two subtrees in parallel), audit paths, the RFC 9162 §2.1.3.2 inclusion check |
//! | `confidential.rs` | confidential amounts: Pedersen commitments and their sums, aggregated Bulletproofs+ range proofs (batch-verified in chunks on the pool, failing chunks narrowed by bisection), grouped twisted-ElGamal ciphertexts with validity proofs, decryption; every proof bound to a context by its merlin transcript (docs/privacy.md) |
//! | `sm.rs` | national cryptography: SM3 (plain, domain-separated, over many slices, RFC 6962 Merkle), SM2 signatures (ZA user-ID digest, compressed keys, deterministic signing, batch verification spread over the pool), SM4 block / SM4-GCM sealing, PBKDF2-HMAC-SM3 (docs/national-crypto.md) |
//! | `blake3x8.rs` | BLAKE3 of eight short messages per AVX2 register, plain (Merkle leaves and nodes) or `derive_key`'s keyed step (the state tree's hashes), tested byte for byte against the `blake3` crate |
//!
//! The state tree's own hashes (five contexts) are in [`crate::smt`].

pub mod blake3x8;
pub mod confidential;
pub mod hash;
pub mod merkle;
pub mod sig;
pub mod sm;
