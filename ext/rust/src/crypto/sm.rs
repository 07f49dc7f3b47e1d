//! National cryptography (国密) primitives: SM3, SM2 signatures, SM4-GCM and
//! PBKDF2-HMAC-SM3, from RustCrypto's `sm3`, `sm2`, `sm4`, `aes-gcm` and
//! `pbkdf2` crates; SM2 verification's curve arithmetic is `efficient-sm2`'s
//! (faster), with `ZA`/`e` and the checks it lacks done here. Otherwise this
//! module only fixes encodings, domain separation and the parallel batch
//! shapes (docs/national-crypto.md, "Primitives").
//!
//! # SM3 (GB/T 32905-2016)
//!
//! * [`sm3()`]: the plain hash (vectors and interoperability only).
//! * [`hash_one`] / [`hash_many`]: the suite's domain-separated hash
//!
//!   ```text
//!   H(context, data) = SM3( pad64( u16be(len(context)) || context ) || data )
//!   ```
//!
//!   where `pad64` appends zero bytes up to a multiple of 64 (SM3's block
//!   size). The length prefix makes `(context, data) -> input` injective (the
//!   context's end, and hence the data's start, is read from the first two
//!   bytes), and padding to a whole block lets the SM3 state after the prefix
//!   be computed once per context: hashing `data` in a domain then costs
//!   exactly as many compressions as plain `SM3(data)`.
//! * Merkle trees ([`merkle_leaf_hash`], [`merkle_node_hash`],
//!   [`merkle_root`], [`merkle_root_packed`]): RFC 6962 with SM3 for SHA-256,
//!   leaf `SM3(0x00 || leaf)`, node `SM3(0x01 || left || right)`, empty tree
//!   `SM3("")`, built level by level (an odd last node moves up unchanged).
//!
//! # SM2 signatures (GB/T 32918.2-2016, GM/T 0003.2-2012)
//!
//! * Recommended curve (GB/T 32918.5), message digest `e = SM3(ZA || M)` with
//!   the standard user-ID digest `ZA`; [`DEFAULT_ID`] `"1234567812345678"`
//!   (GM/T 0009-2012's default, also OpenSSL's and GmSSL's).
//! * Public key: 33-byte compressed SEC1 point (`02`/`03 || x`). Signature:
//!   64 bytes `r || s`, each big-endian, `1 <= r, s <= n-1`.
//! * Keys from a 32-byte seed, deterministically: for `c = 0, 1, ...`,
//!   `d = SM3("tierchain sm2 secret key" || seed || u8(c))` read big-endian,
//!   the first with `1 <= d <= n-2` (SM2 needs `1 + d` invertible, so
//!   `n - 1` is excluded as well as 0 and `>= n`; a retry happens with
//!   probability about 2^-32).
//! * Signing is deterministic: the nonce `k` comes from RFC 6979's HMAC-DRBG
//!   with SM3 (the `sm2` crate's `Signer`), so signing needs no randomness
//!   source and cannot leak the key through a repeated or biased `k`.
//! * Batch verification: SM2 has no batch equation (the signature holds `r`,
//!   not the point `R`), so a batch is per-item verification spread over the
//!   crate pool; element `i` is exactly [`sm2_verify`] of item `i`.
//!
//! # SM4-GCM and PBKDF2-HMAC-SM3 (key-file sealing)
//!
//! SM4 (GB/T 32907-2016) in GCM mode with a 96-bit nonce and 128-bit tag
//! (RFC 8998's `TLS_SM4_GCM_SM3` AEAD, `aes-gcm`'s generic `AesGcm<Sm4, U12>`);
//! keys from passwords by PBKDF2 (RFC 8018) with HMAC-SM3.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{AesGcm, Nonce};
use std::sync::{OnceLock, RwLock};

use foldhash::HashMap as FastMap;
use rayon::prelude::*;
use sm2::dsa::signature::{Signer, Verifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::PrimeField;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm2::{FieldBytes, NonZeroScalar, PublicKey, Scalar};
use sm3::{Digest as _, Sm3};
use sm4::Sm4;
use sm4::cipher::{Block, BlockCipherEncrypt};

use super::hash::{check_ranges, packed_digests};

pub const DIGEST_LEN: usize = 32;
pub const SEED_LEN: usize = 32;
pub const SECRET_KEY_LEN: usize = 32;
/// Compressed SEC1 point.
pub const PUBLIC_KEY_LEN: usize = 33;
/// Uncompressed SEC1 point (`04 || x || y`), for interoperability only.
pub const PUBLIC_KEY_UNCOMPRESSED_LEN: usize = 65;
/// An x-only public key: the x coordinate of a point whose y is even, i.e.
/// the compressed key `02 || x` (the `sm2-sm3` suite's wire form).
pub const PUBLIC_KEY_X_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;
/// GM/T 0009-2012's default user ID, used by OpenSSL and GmSSL too.
pub const DEFAULT_ID: &str = "1234567812345678";
/// `ENTL` is a 16-bit count of bits, so an ID has at most 8191 bytes.
pub const ID_LEN_MAX: usize = 8191;
/// Context strings have a 16-bit length prefix.
pub const CONTEXT_LEN_MAX: usize = u16::MAX as usize;
pub const SM4_KEY_LEN: usize = 16;
pub const SM4_BLOCK_LEN: usize = 16;
pub const GCM_NONCE_LEN: usize = 12;
pub const GCM_TAG_LEN: usize = 16;
/// Tag of the seed-to-secret-key derivation.
pub const SECRET_KEY_TAG: &[u8] = b"tierchain sm2 secret key";
/// Largest PBKDF2 output one call produces.
pub const KDF_LEN_MAX: usize = 1024;

pub const LEAF_PREFIX: u8 = 0x00;
pub const NODE_PREFIX: u8 = 0x01;

/// Below this many items `hash_many` and the Merkle leaves run on the
/// calling thread (the BLAKE3 batch's threshold: one batch shape, `packed_digests`).
pub use super::hash::PARALLEL_ITEMS_MIN;
/// Signatures per rayon task (one SM2 verification is ~100-200 µs, so small
/// tasks balance well and cost nothing noticeable).
const VERIFY_TASK_ITEMS: usize = 8;

pub type Digest = [u8; DIGEST_LEN];

// --- SM3 -------------------------------------------------------------------

/// Plain `SM3(data)`.
pub fn sm3(data: &[u8]) -> Digest {
    Sm3::digest(data).into()
}

/// The SM3 state after the prefix block(s) of `context` (see the module doc).
pub fn context_state(context: &str) -> Result<Sm3, String> {
    let ctx = context.as_bytes();
    if ctx.len() > CONTEXT_LEN_MAX {
        return Err(format!(
            "context has {} bytes, more than {CONTEXT_LEN_MAX}",
            ctx.len()
        ));
    }
    let mut prefix = Vec::with_capacity((ctx.len() + 2).div_ceil(64) * 64);
    prefix.extend_from_slice(&(ctx.len() as u16).to_be_bytes());
    prefix.extend_from_slice(ctx);
    prefix.resize(prefix.len().div_ceil(64) * 64, 0);
    let mut state = Sm3::new();
    state.update(&prefix);
    Ok(state)
}

/// The domain-separated hash `SM3(pad64(u16be(len(context)) || context) || data)`.
pub fn hash_one(context: &str, data: &[u8]) -> Result<Digest, String> {
    let mut state = context_state(context)?;
    state.update(data);
    Ok(state.finalize().into())
}

/// `hash_one(context, buf[starts[i]..ends[i]])` for every `i`, concatenated;
/// ranges checked first (nothing hashed if one is out of bounds), parallel on
/// the pool for large inputs.
pub fn hash_many(
    context: &str,
    buf: &[u8],
    starts: &[i64],
    ends: &[i64],
) -> Result<Vec<u8>, String> {
    check_ranges(buf.len(), starts, ends)?;
    let state = context_state(context)?;
    // check_ranges proved 0 <= start <= end <= buf.len().
    packed_digests(starts.len(), DIGEST_LEN, |i, slot| {
        let mut h = state.clone();
        h.update(&buf[starts[i] as usize..ends[i] as usize]);
        slot.copy_from_slice(&h.finalize());
    })
}

// --- Merkle trees (RFC 6962 shape, SM3) ----------------------------------------

/// `SM3(0x00 || leaf)`.
pub fn merkle_leaf_hash(leaf: &[u8]) -> Digest {
    let mut h = Sm3::new();
    h.update([LEAF_PREFIX]);
    h.update(leaf);
    h.finalize().into()
}

/// `SM3(0x01 || left || right)`.
pub fn merkle_node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut buf = [0u8; 1 + 2 * DIGEST_LEN];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    sm3(&buf)
}

/// Root of the empty tree, `SM3("")`.
pub fn merkle_empty_root() -> Digest {
    sm3(b"")
}

fn next_level(level: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = if level.len() >= 2 * PARALLEL_ITEMS_MIN {
        let pairs: Vec<Digest> = crate::pool::pool()
            .map(|p| {
                p.install(|| {
                    level
                        .par_chunks_exact(2)
                        .map(|pair| merkle_node_hash(&pair[0], &pair[1]))
                        .collect()
                })
            })
            .unwrap_or_else(|_| {
                level
                    .chunks_exact(2)
                    .map(|pair| merkle_node_hash(&pair[0], &pair[1]))
                    .collect()
            });
        pairs
    } else {
        level
            .chunks_exact(2)
            .map(|pair| merkle_node_hash(&pair[0], &pair[1]))
            .collect()
    };
    if level.len() % 2 == 1 {
        out.push(level[level.len() - 1]);
    }
    out
}

fn root_of_level(mut level: Vec<Digest>) -> Digest {
    if level.is_empty() {
        return merkle_empty_root();
    }
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// RFC 6962 root (SM3) over byte-string leaves, level by level.
pub fn merkle_root<L: AsRef<[u8]> + Sync>(leaves: &[L]) -> Result<Digest, String> {
    let hashed: Vec<Digest> = if leaves.len() >= PARALLEL_ITEMS_MIN {
        crate::pool::install(|| {
            leaves
                .par_iter()
                .map(|l| merkle_leaf_hash(l.as_ref()))
                .collect()
        })?
    } else {
        leaves
            .iter()
            .map(|l| merkle_leaf_hash(l.as_ref()))
            .collect()
    };
    Ok(root_of_level(hashed))
}

/// Root over consecutive `leaf_size`-byte leaves of `buf` (`buf.len()` a
/// multiple of `leaf_size`, `leaf_size > 0`).
pub fn merkle_root_packed(buf: &[u8], leaf_size: usize) -> Result<Digest, String> {
    if leaf_size == 0 || !buf.len().is_multiple_of(leaf_size) {
        return Err(format!(
            "buf has {} bytes, not a whole number of {leaf_size}-byte leaves",
            buf.len()
        ));
    }
    let leaves: Vec<&[u8]> = buf.chunks_exact(leaf_size).collect();
    merkle_root(&leaves)
}

// --- SM2 -------------------------------------------------------------------

/// `Some(d)` if the 32 big-endian bytes are a usable SM2 secret key,
/// `1 <= d <= n-2`.
pub fn secret_scalar(bytes: &[u8]) -> Option<NonZeroScalar> {
    let repr: FieldBytes = <[u8; SECRET_KEY_LEN]>::try_from(bytes).ok()?.into();
    let d: Scalar = Option::from(Scalar::from_repr(repr))?;
    // d = n - 1 makes 1 + d = 0, which SM2 signing must invert.
    if bool::from((d + Scalar::ONE).is_zero()) {
        return None;
    }
    Option::from(NonZeroScalar::new(d))
}

fn seed_candidate(seed: &[u8; SEED_LEN], counter: u8) -> [u8; SECRET_KEY_LEN] {
    let mut h = Sm3::new();
    h.update(SECRET_KEY_TAG);
    h.update(seed);
    h.update([counter]);
    h.finalize().into()
}

/// The secret key `d` of a 32-byte seed (module doc: counter-mode rejection).
pub fn secret_from_seed(seed: &[u8; SEED_LEN]) -> [u8; SECRET_KEY_LEN] {
    for counter in 0u8..=u8::MAX {
        let candidate = seed_candidate(seed, counter);
        if secret_scalar(&candidate).is_some() {
            return candidate;
        }
    }
    // 256 rejections in a row have probability ~2^-8192.
    unreachable!("SM3 output rejected 256 times")
}

fn compressed(point: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let encoded = point.as_affine().to_sec1_point(true);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(encoded.as_bytes());
    out
}

/// The 33-byte compressed public key of a secret key; `None` if `secret` is
/// not a usable secret key.
pub fn public_key(secret: &[u8]) -> Option<[u8; PUBLIC_KEY_LEN]> {
    let d = secret_scalar(secret)?;
    Some(compressed(&PublicKey::from_secret_scalar(&d)))
}

/// `(secret key d, compressed public key)` of a 32-byte seed.
pub fn keypair_from_seed(seed: &[u8; SEED_LEN]) -> ([u8; SECRET_KEY_LEN], [u8; PUBLIC_KEY_LEN]) {
    let d = secret_from_seed(seed);
    let pk = public_key(&d).expect("secret_from_seed returns usable keys");
    (d, pk)
}

/// `(secret key d, x-only public key)` of a 32-byte seed: as
/// [`keypair_from_seed`], then `d` replaced by `n - d` when `dG` has an odd
/// `y`, so the key is `02 || x` (the BIP 340 convention). A candidate whose
/// negation is unusable (`d = 1`, whose negation is `n - 1`) moves on to the
/// next counter value, like any other rejected candidate.
pub fn keypair_from_seed_x(seed: &[u8; SEED_LEN]) -> ([u8; SECRET_KEY_LEN], [u8; PUBLIC_KEY_X_LEN]) {
    for counter in 0u8..=u8::MAX {
        let candidate = seed_candidate(seed, counter);
        let Some(d) = secret_scalar(&candidate) else {
            continue;
        };
        let pk = compressed(&PublicKey::from_secret_scalar(&d));
        let d = if pk[0] == 0x02 {
            candidate
        } else {
            let negated: [u8; SECRET_KEY_LEN] = (-*d).to_repr().into();
            if secret_scalar(&negated).is_none() {
                continue;
            }
            negated
        };
        let mut x = [0u8; PUBLIC_KEY_X_LEN];
        x.copy_from_slice(&pk[1..]);
        return (d, x);
    }
    unreachable!("SM3 output rejected 256 times")
}

/// A public key in either accepted form (33-byte compressed, or 32-byte x
/// with even `y`) as a curve point; `None` for any other length or a non-point.
fn parse_public_key(public_key: &[u8]) -> Option<PublicKey> {
    match public_key.len() {
        PUBLIC_KEY_LEN => PublicKey::from_sec1_bytes(public_key).ok(),
        PUBLIC_KEY_X_LEN => {
            let mut sec1 = [0x02u8; PUBLIC_KEY_LEN];
            sec1[1..].copy_from_slice(public_key);
            PublicKey::from_sec1_bytes(&sec1).ok()
        }
        _ => None,
    }
}

/// The 65-byte uncompressed form (`04 || x || y`) of a compressed or x-only
/// public key, for tools that want it; `None` if it is not a curve point.
pub fn public_key_uncompressed(public_key: &[u8]) -> Option<[u8; PUBLIC_KEY_UNCOMPRESSED_LEN]> {
    let point = parse_public_key(public_key)?;
    let encoded = point.as_affine().to_sec1_point(false);
    let mut out = [0u8; PUBLIC_KEY_UNCOMPRESSED_LEN];
    out.copy_from_slice(encoded.as_bytes());
    Some(out)
}

/// Error for a user ID longer than [`ID_LEN_MAX`].
pub fn check_id(id: &str) -> Result<(), String> {
    if id.len() > ID_LEN_MAX {
        return Err(format!(
            "an SM2 user ID has at most {ID_LEN_MAX} bytes, got {}",
            id.len()
        ));
    }
    Ok(())
}

/// SM2 signature `r || s` of `message` (`e = SM3(ZA || message)`, `ZA` from
/// `id`), deterministic (RFC 6979 nonce). `None` if `secret` is not a usable
/// secret key or `id` is too long.
pub fn sm2_sign(secret: &[u8], message: &[u8], id: &str) -> Option<[u8; SIGNATURE_LEN]> {
    check_id(id).ok()?;
    let d = secret_scalar(secret)?;
    let key = SigningKey::from_nonzero_scalar(id, d).ok()?;
    let signature: Signature = key.try_sign(message).ok()?;
    Some(signature.to_bytes().into())
}

/// A public key made ready for verification: its affine point `x || y` and
/// `ZA` for one user ID.
#[derive(Clone, Copy)]
struct ResolvedKey {
    xy: [u8; 64],
    za: [u8; 32],
}

fn resolve_key(public_key: &[u8], id: &str) -> Option<ResolvedKey> {
    let point = parse_public_key(public_key)?;
    let encoded = point.as_affine().to_sec1_point(false);
    let xy: [u8; 64] = encoded.as_bytes()[1..].try_into().ok()?;
    Some(ResolvedKey {
        xy,
        za: identity_hash(id, &xy),
    })
}

/// Resolved keys of the default user ID seen lately, by compressed encoding
/// (an x-only key is stored as `02 || x`, the same point). Decompressing a
/// key and hashing its `ZA` cost about a tenth of a verification, and a
/// ledger's senders repeat; the cache holds only keys that decoded to curve
/// points, at most [`KEY_CACHE_ENTRIES_MAX`] (about 9 MiB): when full it is
/// emptied and refills.
pub const KEY_CACHE_ENTRIES_MAX: usize = 1 << 16;

type KeyCache = RwLock<FastMap<[u8; PUBLIC_KEY_LEN], ResolvedKey>>;

fn key_cache() -> &'static KeyCache {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(FastMap::default()))
}

fn resolve_default_cached(public_key: &[u8]) -> Option<ResolvedKey> {
    let mut sec1 = [0x02u8; PUBLIC_KEY_LEN];
    match public_key.len() {
        PUBLIC_KEY_LEN => sec1.copy_from_slice(public_key),
        PUBLIC_KEY_X_LEN => sec1[1..].copy_from_slice(public_key),
        _ => return None,
    }
    let cache = key_cache();
    if let Some(found) = cache.read().ok().and_then(|map| map.get(&sec1).copied()) {
        return Some(found);
    }
    let resolved = resolve_key(&sec1, DEFAULT_ID)?;
    if let Ok(mut map) = cache.write() {
        if map.len() >= KEY_CACHE_ENTRIES_MAX {
            map.clear();
        }
        map.insert(sec1, resolved);
    }
    Some(resolved)
}

/// Whether the resolved-key cache holds `public_key` (32 or 33 bytes; tests).
#[cfg(test)]
pub fn key_cache_contains(public_key: &[u8]) -> bool {
    let mut sec1 = [0x02u8; PUBLIC_KEY_LEN];
    sec1[PUBLIC_KEY_LEN - public_key.len()..].copy_from_slice(public_key);
    key_cache().read().is_ok_and(|map| map.contains_key(&sec1))
}

/// SM2 verification of `signature` (`r || s`) by the compressed or x-only
/// `public_key` over `message` with user ID `id`. Malformed input (lengths,
/// a key that is not a point, `r` or `s` outside `[1, n-1]`, an overlong
/// ID) is simply invalid. Keys of the default ID are resolved through the
/// cache ([`KEY_CACHE_ENTRIES_MAX`]).
pub fn sm2_verify(public_key: &[u8], message: &[u8], signature: &[u8], id: &str) -> bool {
    if signature.len() != SIGNATURE_LEN || check_id(id).is_err() {
        return false;
    }
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    // B5: t = r + s must be nonzero; efficient-sm2 does not check it.
    let (r, s) = signature.split_scalars();
    if bool::from((*r + *s).is_zero()) {
        return false;
    }
    let key = if id == DEFAULT_ID {
        resolve_default_cached(public_key)
    } else {
        resolve_key(public_key, id)
    };
    let Some(key) = key else {
        return false;
    };
    let e = Sm3::new_with_prefix(key.za)
        .chain_update(message)
        .finalize();
    // efficient-sm2 compares r - e (mod n) with x1 as a field element, so it
    // would reject a valid signature whose x1 lies in [n, p). That needs
    // (r - e) mod n < p - n (< 2^128): leave those to RustCrypto.
    #[allow(deprecated)] // from_slice
    let e_scalar = Scalar::reduce(FieldBytes::from_slice(&e));
    let v = (*r - e_scalar).to_repr();
    if v.as_slice() < P_MINUS_N.as_slice() {
        let mut sec1 = [0x04u8; PUBLIC_KEY_UNCOMPRESSED_LEN];
        sec1[1..].copy_from_slice(&key.xy);
        let Ok(point) = PublicKey::from_sec1_bytes(&sec1) else {
            return false;
        };
        return verify_rustcrypto(id, point, message, &signature);
    }
    let Ok(fast) = efficient_sm2::Signature::from_slice(&signature.to_bytes()) else {
        return false;
    };
    // Its other rejections are the standard's, bar one: [s]G == [t]P (its
    // addition does not double a point held with a different Z) gives
    // "infinity" where GB/T 32918 takes x1 of [2s]G. Such a signature needs
    // r - x1([2rd/(1-d)]G) == e for the signer's own d, with e hashed from
    // ZA(dG): a preimage search, not a signature anyone can make.
    fast.verify_digest(&efficient_sm2::PublicKey::from_slice(&key.xy), &e)
        .is_ok()
}

/// p - n of the SM2 curve, big-endian.
const P_MINUS_N: [u8; 32] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x8d, 0xfc, 0x20, 0x93, 0xde, 0x39, 0xfa, 0xd5, 0xac, 0x44, 0x0b, 0xf6, 0xc6, 0x2a, 0xbe, 0xdc,
];

/// SM2 curve `a`, `b` and generator `xG || yG` (GB/T 32918.5), for `ZA`.
const SM2_A: [u8; 32] = [
    0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc,
];
const SM2_B: [u8; 32] = [
    0x28, 0xe9, 0xfa, 0x9e, 0x9d, 0x9f, 0x5e, 0x34, 0x4d, 0x5a, 0x9e, 0x4b, 0xcf, 0x65, 0x09, 0xa7,
    0xf3, 0x97, 0x89, 0xf5, 0x15, 0xab, 0x8f, 0x92, 0xdd, 0xbc, 0xbd, 0x41, 0x4d, 0x94, 0x0e, 0x93,
];
const SM2_G: [u8; 64] = [
    0x32, 0xc4, 0xae, 0x2c, 0x1f, 0x19, 0x81, 0x19, 0x5f, 0x99, 0x04, 0x46, 0x6a, 0x39, 0xc9, 0x94,
    0x8f, 0xe3, 0x0b, 0xbf, 0xf2, 0x66, 0x0b, 0xe1, 0x71, 0x5a, 0x45, 0x89, 0x33, 0x4c, 0x74, 0xc7,
    0xbc, 0x37, 0x36, 0xa2, 0xf4, 0xf6, 0x77, 0x9c, 0x59, 0xbd, 0xce, 0xe3, 0x6b, 0x69, 0x21, 0x53,
    0xd0, 0xa9, 0x87, 0x7c, 0xc6, 0x2a, 0x47, 0x40, 0x02, 0xdf, 0x32, 0xe5, 0x21, 0x39, 0xf0, 0xa0,
];

/// `ZA = SM3(ENTL || ID || a || b || xG || yG || xA || yA)` (`id` checked).
fn identity_hash(id: &str, xy: &[u8; 64]) -> [u8; 32] {
    let entl = u16::try_from(id.len() * 8).expect("ID length checked");
    let mut h = Sm3::new();
    h.update(entl.to_be_bytes());
    h.update(id.as_bytes());
    h.update(SM2_A);
    h.update(SM2_B);
    h.update(SM2_G);
    h.update(xy);
    h.finalize().into()
}

fn verify_rustcrypto(id: &str, point: PublicKey, message: &[u8], signature: &Signature) -> bool {
    VerifyingKey::new(id, point).is_ok_and(|key| key.verify(message, signature).is_ok())
}

/// Element `i` equals `sm2_verify(public_keys[i], messages[i], signatures[i], id)`.
/// Spread over the crate pool; errors only for mismatched lengths, an
/// overlong ID, or a pool that cannot start.
pub fn sm2_verify_batch(
    public_keys: &[&[u8]],
    messages: &[&[u8]],
    signatures: &[&[u8]],
    id: &str,
) -> Result<Vec<bool>, String> {
    let n = public_keys.len();
    if messages.len() != n || signatures.len() != n {
        return Err(format!(
            "public_keys, messages and signatures must have the same length (got {n}, {}, {})",
            messages.len(),
            signatures.len()
        ));
    }
    check_id(id)?;
    let mut verdicts = vec![false; n];
    let one = |i: usize| sm2_verify(public_keys[i], messages[i], signatures[i], id);
    if n <= 1 {
        for (i, v) in verdicts.iter_mut().enumerate() {
            *v = one(i);
        }
        return Ok(verdicts);
    }
    crate::pool::install(|| {
        verdicts
            .par_chunks_mut(VERIFY_TASK_ITEMS)
            .enumerate()
            .for_each(|(task, out)| {
                for (j, v) in out.iter_mut().enumerate() {
                    *v = one(task * VERIFY_TASK_ITEMS + j);
                }
            });
    })?;
    Ok(verdicts)
}

// --- SM4, SM4-GCM, PBKDF2-HMAC-SM3 ----------------------------------------------

type Sm4Gcm = AesGcm<Sm4, U12>;

fn check_key_nonce(key: &[u8], nonce: &[u8]) -> Result<(), String> {
    if key.len() != SM4_KEY_LEN || nonce.len() != GCM_NONCE_LEN {
        return Err(format!(
            "SM4-GCM takes a {SM4_KEY_LEN}-byte key and a {GCM_NONCE_LEN}-byte nonce, got {} and {}",
            key.len(),
            nonce.len()
        ));
    }
    Ok(())
}

/// SM4 in ECB mode over whole 16-byte blocks (test vectors and cross-checks
/// only: ECB is not a mode to encrypt data with).
pub fn sm4_encrypt_ecb(key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    if key.len() != SM4_KEY_LEN || !data.len().is_multiple_of(SM4_BLOCK_LEN) {
        return Err(format!(
            "SM4 takes a {SM4_KEY_LEN}-byte key and whole {SM4_BLOCK_LEN}-byte blocks, got {} and {} bytes",
            key.len(),
            data.len()
        ));
    }
    let cipher = Sm4::new_from_slice(key).map_err(|e| e.to_string())?;
    let mut out = data.to_vec();
    for chunk in out.chunks_exact_mut(SM4_BLOCK_LEN) {
        let mut block = Block::<Sm4>::try_from(&chunk[..]).map_err(|e| e.to_string())?;
        cipher.encrypt_block(&mut block);
        chunk.copy_from_slice(&block);
    }
    Ok(out)
}

/// SM4-GCM: `ciphertext || 16-byte tag`.
pub fn sm4_gcm_seal(
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, String> {
    check_key_nonce(key, nonce)?;
    let cipher = Sm4Gcm::new_from_slice(key).map_err(|e| e.to_string())?;
    let nonce = Nonce::<U12>::try_from(nonce).map_err(|e| e.to_string())?;
    cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| "SM4-GCM: plaintext too long".to_owned())
}

/// The plaintext of a sealed `ciphertext || tag`; `Ok(None)` if it does not
/// authenticate (wrong key, nonce, aad, or damaged data).
pub fn sm4_gcm_open(
    key: &[u8],
    nonce: &[u8],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    check_key_nonce(key, nonce)?;
    let cipher = Sm4Gcm::new_from_slice(key).map_err(|e| e.to_string())?;
    let nonce = Nonce::<U12>::try_from(nonce).map_err(|e| e.to_string())?;
    Ok(cipher.decrypt(&nonce, Payload { msg: sealed, aad }).ok())
}

/// PBKDF2 (RFC 8018) with HMAC-SM3: `length` bytes.
pub fn pbkdf2_hmac_sm3(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    length: usize,
) -> Result<Vec<u8>, String> {
    if iterations == 0 || length == 0 || length > KDF_LEN_MAX {
        return Err(format!(
            "PBKDF2 needs iterations >= 1 and 1 <= length <= {KDF_LEN_MAX} (got {iterations}, {length})"
        ));
    }
    let mut out = vec![0u8; length];
    pbkdf2::pbkdf2_hmac::<Sm3>(password, salt, iterations, &mut out);
    Ok(out)
}

/// Bytes SM2 encryption adds to a plaintext: `C1` (a compressed point, 33) and
/// `C3` (SM3, 32); `C2` is as long as the plaintext.
pub const PKE_OVERHEAD: usize = PUBLIC_KEY_LEN + DIGEST_LEN;
/// The largest plaintext [`sm2_encrypt`] takes (its key stream is SM3 in counter mode).
pub const PKE_PLAINTEXT_MAX: usize = 1 << 16;

/// SM2 public-key encryption (GB/T 32918.4-2016) of `plaintext` to the
/// compressed or x-only `public_key`: `C1 || C3 || C2` with `C1` compressed,
/// an ephemeral key from the operating system. `None` if the key is not a
/// curve point, the plaintext exceeds [`PKE_PLAINTEXT_MAX`] (or the system
/// has no randomness).
pub fn sm2_encrypt(public_key: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    use sm2::pke::{EncryptingKey, Mode};
    if plaintext.len() > PKE_PLAINTEXT_MAX {
        return None;
    }
    let key = EncryptingKey::new_with_mode(parse_public_key(public_key)?, Mode::C1C3C2);
    let cipher = key
        .encrypt_cipher::<_, Sm3>(&mut getrandom04::SysRng, plaintext)
        .ok()?;
    cipher.to_vec(Mode::C1C3C2, true).ok()
}

/// The plaintext of [`sm2_encrypt`]'s output under the secret key `d`; `None`
/// if `secret` is not a usable key or the ciphertext does not decrypt (a
/// wrong key, damage: `C3` is checked). `C1` may be compressed or not.
pub fn sm2_decrypt(secret: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    use sm2::pke::{DecryptingKey, Mode};
    if ciphertext.len() > PKE_PLAINTEXT_MAX + PUBLIC_KEY_UNCOMPRESSED_LEN + DIGEST_LEN {
        return None;
    }
    let key = DecryptingKey::new_with_mode(secret_scalar(secret)?, Mode::C1C3C2);
    key.decrypt(ciphertext).ok()
}

/// HMAC-SM3 (RFC 2104 with SM3): the national suite's keyed hash.
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> Digest {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<Sm3>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
#[path = "sm/tests.rs"]
mod tests;
