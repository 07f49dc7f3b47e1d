//! Ed25519 signature verification under the ZIP-215 validity rule.
//!
//! # Why ZIP-215
//!
//! RFC 8032 leaves implementations free to verify with or without the
//! cofactor and to accept or reject non-canonical point encodings, so two
//! "correct" libraries can disagree on the same signature — fatal for a
//! ledger, where every node must reach the same verdict. ZIP-215 (also the
//! CometBFT rule) fixes every choice:
//!
//! * `A` and `R` are accepted if they decode to a curve point, including
//!   non-canonical encodings (`y >= p`) and small-order points;
//! * `S` must be canonical (`S < L`);
//! * the check is the *cofactored* equation `[8][S]B = [8]R + [8][k]A`.
//!
//! With the cofactored equation, batch verification and single verification
//! accept exactly the same set of signatures (a torsion component that makes
//! one signature fail the cofactorless check is killed by `[8]` in both), so
//! we may batch freely without changing any verdict. `ed25519-zebra` (5.x)
//! implements exactly this rule, and its single verification ([`verify`]) is
//! the verdict every batch here must equal.
//!
//! # Implementation
//!
//! Single verification is `ed25519-zebra`'s. The batch equation is written
//! here, over curve25519-dalek 5's group operations (point decoding,
//! scalars, the variable-time multiscalar multiplication) and `sha2`'s
//! SHA-512, the same calls `ed25519-zebra`'s batch verifier makes, for one
//! reason: that verifier takes key *bytes* and decodes every key of every
//! batch again, and decoding a point (a field square root, on dalek's serial
//! field arithmetic even where the multiscalar multiplication runs on
//! AVX-512 IFMA) was about 60% of a signature's cost (perf: `FieldElement51::pow2k`
//! 15% of a whole engine run's CPU, the IFMA multiscalar terms ~10%). Senders
//! sign again and again, so decoded keys are kept across batches
//! ([`KeyCache`], two generations of 32,768 keys); only `R` is decoded per
//! signature. dalek is built (ext/rust/.cargo/config.toml, x86_64 only) with
//! its AVX-512 IFMA backend besides AVX2 and serial and picks one at run
//! time, so one build runs on any x86_64. `ed25519-consensus`
//! (curve25519-dalek-ng, the verifier before `ed25519-zebra`) stays as the
//! reference of this module's differential tests: they agree on every ZIP-215
//! edge case (the small-order / non-canonical grid below), single and batched,
//! and a batch of only accepted grid cases passes the equation whole.
//!
//! # Batch algorithm
//!
//! 1. The input is split into chunks, one rayon task each.
//! 2. Within a chunk every item is checked and prepared up front: lengths,
//!    `S < L`, `A` decoded (from the cache), `R` decoded, and
//!    `k = SHA-512(R || A || M)` over the encodings as given. An item failing
//!    here is `false` (single verification rejects it for the same reason)
//!    and never enters a batch; the points are decoded once, however often
//!    narrowing re-batches the item.
//! 3. The remaining items are verified as one batch: random 128-bit
//!    coefficients `z` (the operating system's randomness) and
//!    `[8](-(sum z*S) B + sum z*R + sum (z*k) A) == 0`, one multiscalar
//!    multiplication, the signatures of one key summed into one `A` term.
//! 4. A failing batch is narrowed: verify the left half; if it passes, the
//!    fault is in the right half (no need to re-verify it as a whole);
//!    otherwise verify the right half too. When both halves fail the bad
//!    items are dense, and single verification of every item is cheaper than
//!    further bisection; small groups are always verified singly. So a batch
//!    with one bad signature costs about two batches, and an all-bad batch
//!    about two batches plus single verification of each item.
//!
//! A batch that contains only valid signatures always passes (the equation
//! holds for every random combination); a batch that contains an invalid one
//! passes with probability about 2^-128. So the result equals per-item
//! [`verify`] for every element.

use std::collections::HashMap;
use std::iter::once;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use dalek5::constants::ED25519_BASEPOINT_POINT;
use dalek5::edwards::{CompressedEdwardsY, EdwardsPoint};
use dalek5::scalar::Scalar;
use dalek5::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_zebra::{Signature, VerificationKey};
use rayon::prelude::*;
use sha2::{Digest, Sha512};

pub const PUBLIC_KEY_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;

/// Largest number of signatures verified as one batch. Beyond ~1k the
/// multiscalar multiplication gains little per item, while the cost of
/// narrowing a failed batch and the imbalance between threads keep growing.
pub const CHUNK_ITEMS_MAX: usize = 1024;

/// Below this a chunk is not split further across threads: the per-batch
/// fixed cost would dominate.
pub const CHUNK_ITEMS_MIN: usize = 64;

/// Groups at most this large are narrowed by single verification: bisecting
/// them costs more batch set-ups than it saves.
pub const NARROW_SINGLE_MAX: usize = 8;

/// Decoded public keys kept per generation of [`KeyCache`] (two generations:
/// at most twice this many, ~200 bytes each).
pub const KEY_CACHE_GENERATION: usize = 32_768;

/// Verifies one signature over `message` (ZIP-215). Malformed input — wrong
/// lengths, undecodable points, non-canonical `S` — is simply invalid.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerificationKey::try_from(public_key) else {
        return false;
    };
    let Ok(signature) = <[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return false;
    };
    key.verify(&Signature::from_bytes(&signature), message)
        .is_ok()
}

/// Verifies `n` signatures; element `i` of the result equals
/// `verify(public_keys[i], messages[i], signatures[i])`.
///
/// Runs on the crate's thread pool. Errors only for mismatched input lengths
/// or if the pool cannot start.
pub fn verify_batch(
    public_keys: &[&[u8]],
    messages: &[&[u8]],
    signatures: &[&[u8]],
) -> Result<Vec<bool>, String> {
    let n = public_keys.len();
    if messages.len() != n || signatures.len() != n {
        return Err(format!(
            "public_keys, messages and signatures must have the same length \
             (got {n}, {}, {})",
            messages.len(),
            signatures.len()
        ));
    }
    let mut verdicts = vec![false; n];
    if n == 0 {
        return Ok(verdicts);
    }
    let threads = crate::pool::pool()?.current_num_threads();
    let chunk = chunk_items(n, threads);
    if n <= chunk {
        // One chunk: waking a pool thread would only add latency.
        verify_chunk(public_keys, messages, signatures, &mut verdicts);
        return Ok(verdicts);
    }
    crate::pool::install(|| {
        verdicts
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, out)| {
                let lo = c * chunk;
                let hi = lo + out.len();
                verify_chunk(
                    &public_keys[lo..hi],
                    &messages[lo..hi],
                    &signatures[lo..hi],
                    out,
                );
            });
    })?;
    Ok(verdicts)
}

/// Items per chunk: enough chunks to keep every thread busy, each as large as
/// possible up to [`CHUNK_ITEMS_MAX`].
fn chunk_items(n: usize, threads: usize) -> usize {
    n.div_ceil(threads.max(1))
        .clamp(CHUNK_ITEMS_MIN, CHUNK_ITEMS_MAX)
}

/// Public keys decoded to points, shared by every batch of the process:
/// decoding is a field square root, and senders sign again and again.
/// Two generations of at most [`KEY_CACHE_GENERATION`] keys each: a key found
/// in the old one moves to the young one, and a full young generation becomes
/// the old one (the old one's entries are dropped and its table reused), so at
/// most twice that many keys are held (~25 MB at the default: two tables of
/// 65,536 slots of 192 bytes, allocated once). Keys are chosen
/// by whoever submits, so the maps use the standard library's randomly keyed
/// SipHash. Only keys that decode are kept (decoding is a pure function of the
/// bytes).
pub struct KeyCache {
    generations: Mutex<[HashMap<[u8; 32], EdwardsPoint>; 2]>,
    generation_max: usize,
}

impl KeyCache {
    pub fn new(generation_max: usize) -> KeyCache {
        KeyCache {
            generations: Mutex::new([HashMap::new(), HashMap::new()]),
            generation_max: generation_max.max(1),
        }
    }

    /// Each key decoded (`None`: it is no curve point); one lock to look up,
    /// each distinct miss decoded once without it, one lock to keep them.
    pub fn decode(&self, keys: &[[u8; 32]]) -> Vec<Option<EdwardsPoint>> {
        let mut out = vec![None; keys.len()];
        let mut misses: HashMap<[u8; 32], Option<EdwardsPoint>> = HashMap::new();
        {
            let mut g = self.lock();
            for (i, k) in keys.iter().enumerate() {
                if let Some(p) = g[0].get(k) {
                    out[i] = Some(*p);
                } else if let Some(p) = g[1].remove(k) {
                    self.keep(&mut g, *k, p);
                    out[i] = Some(p);
                } else {
                    misses.insert(*k, None);
                }
            }
        }
        if misses.is_empty() {
            return out;
        }
        for (k, p) in misses.iter_mut() {
            *p = CompressedEdwardsY(*k).decompress();
        }
        let mut g = self.lock();
        for (k, p) in &misses {
            if let Some(p) = p {
                self.keep(&mut g, *k, *p);
            }
        }
        for (i, k) in keys.iter().enumerate() {
            if out[i].is_none() {
                out[i] = misses.get(k).copied().flatten();
            }
        }
        out
    }

    /// `k` into the young generation, which first becomes the old one if full
    /// (the old one's table emptied and reused: no allocation, no fresh pages).
    fn keep(&self, g: &mut [HashMap<[u8; 32], EdwardsPoint>; 2], k: [u8; 32], p: EdwardsPoint) {
        if g[0].len() >= self.generation_max {
            g.swap(0, 1);
            g[0].clear();
        }
        if g[0].capacity() == 0 {
            g[0].reserve(self.generation_max);
        }
        g[0].insert(k, p);
    }

    /// The generations, also after a panic elsewhere while they were held: every
    /// entry is a key's true point whatever happened, so a poisoned lock is no reason
    /// to stop verifying.
    fn lock(&self) -> MutexGuard<'_, [HashMap<[u8; 32], EdwardsPoint>; 2]> {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Keys held (both generations).
    pub fn len(&self) -> usize {
        let g = self.lock();
        g[0].len() + g[1].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

static KEYS: LazyLock<KeyCache> = LazyLock::new(|| KeyCache::new(KEY_CACHE_GENERATION));

/// One signature that passed the up-front checks: its points decoded, `S`
/// canonical and `k = SHA-512(R || A || M)` (over the encodings as given, as
/// ZIP-215 says), ready for the batch equation.
#[derive(Clone)]
struct Prepared<'a> {
    key: &'a [u8; PUBLIC_KEY_LEN],
    signature: &'a [u8],
    message: &'a [u8],
    a: &'a EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// The up-front checks of step 2; `Some` means the item may join a batch.
/// `key` is the public key if it is 32 bytes, `a` the point it decodes to
/// (from [`KeyCache::decode`]).
fn prepare<'a>(
    key: &'a [u8; PUBLIC_KEY_LEN],
    message: &'a [u8],
    signature: &'a [u8],
    a: Option<&'a EdwardsPoint>,
) -> Option<Prepared<'a>> {
    if signature.len() != SIGNATURE_LEN {
        return None;
    }
    let r_bytes: [u8; 32] = signature[..32].try_into().ok()?;
    let s_bytes: [u8; 32] = signature[32..].try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let a = a?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    Some(Prepared {
        key,
        signature,
        message,
        a,
        r,
        s,
        k: challenge(&r_bytes, key, message),
    })
}

/// `k = SHA-512(R || A || M)` reduced mod L, over the encodings as given.
fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let h: [u8; 64] = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(message)
        .finalize()
        .into();
    Scalar::from_bytes_mod_order_wide(&h)
}

fn verify_chunk(public_keys: &[&[u8]], messages: &[&[u8]], signatures: &[&[u8]], out: &mut [bool]) {
    // A key of the wrong length is refused (`None` point) and looked up as zeros.
    let keys: Vec<[u8; 32]> = public_keys
        .iter()
        .map(|k| <[u8; 32]>::try_from(*k).unwrap_or([0; 32]))
        .collect();
    let points = KEYS.decode(&keys);
    let mut slots = Vec::with_capacity(out.len());
    let mut items = Vec::with_capacity(out.len());
    for i in 0..out.len() {
        let a = points[i]
            .as_ref()
            .filter(|_| public_keys[i].len() == PUBLIC_KEY_LEN);
        match prepare(&keys[i], messages[i], signatures[i], a) {
            Some(item) => {
                slots.push(i);
                items.push(item);
            }
            None => out[i] = false,
        }
    }
    let mut item_ok = vec![false; items.len()];
    narrow(&items, &mut item_ok, false);
    for (slot, ok) in slots.into_iter().zip(item_ok) {
        out[slot] = ok;
    }
}

/// Step 3: the cofactored batch equation of ZIP-215 with random 128-bit
/// coefficients `z`: `[8](-(sum z*s) B + sum z*R + sum (z*k) A) == 0`,
/// signatures of one key summed into one term of the multiscalar
/// multiplication.
fn batch_ok(items: &[Prepared]) -> bool {
    BATCH.with_borrow_mut(|b| b.check(items))
}

/// The equation's tables, kept per pool thread and reused batch after batch
/// (allocated afresh, they faulted in new pages every batch).
#[derive(Default)]
struct BatchTables {
    z: Vec<u8>,
    r_coeffs: Vec<Scalar>,
    a_coeffs: Vec<Scalar>,
    a_points: Vec<EdwardsPoint>,
    term_of: HashMap<[u8; 32], usize>,
}

thread_local! {
    static BATCH: std::cell::RefCell<BatchTables> = std::cell::RefCell::default();
}

impl BatchTables {
    fn check(&mut self, items: &[Prepared]) -> bool {
        let BatchTables {
            z,
            r_coeffs,
            a_coeffs,
            a_points,
            term_of,
        } = self;
        z.clear();
        z.resize(16 * items.len(), 0);
        r_coeffs.clear();
        a_coeffs.clear();
        a_points.clear();
        term_of.clear();
        // The operating system's randomness; a failure to read it panics, it is
        // never a silent verdict.
        getrandom04::fill(z).expect("the operating system's randomness");
        let mut b_coeff = Scalar::ZERO;
        for (item, z) in items.iter().zip(z.chunks_exact(16)) {
            let z = Scalar::from(u128::from_le_bytes(z.try_into().expect("16 bytes")));
            b_coeff -= z * item.s;
            r_coeffs.push(z);
            let t = *term_of.entry(*item.key).or_insert_with(|| {
                a_coeffs.push(Scalar::ZERO);
                a_points.push(*item.a);
                a_points.len() - 1
            });
            a_coeffs[t] += z * item.k;
        }
        let check = EdwardsPoint::vartime_multiscalar_mul(
            once(&b_coeff).chain(a_coeffs.iter()).chain(r_coeffs.iter()),
            once(&ED25519_BASEPOINT_POINT)
                .chain(a_points.iter())
                .chain(items.iter().map(|i| &i.r)),
        );
        check.mul_by_cofactor().is_identity()
    }
}

/// The verdicts of the narrowing's last step: `ed25519-zebra`'s single
/// verification ([`verify`]), the rule every batch verdict must equal.
fn verify_singly(items: &[Prepared], out: &mut [bool]) {
    for (item, ok) in items.iter().zip(out.iter_mut()) {
        *ok = verify(item.key, item.message, item.signature);
    }
}

/// Step 3 and 4: fills `out` with the verdict of each item. `known_bad`
/// says a batch over exactly `items` already failed.
fn narrow(items: &[Prepared], out: &mut [bool], known_bad: bool) {
    debug_assert_eq!(items.len(), out.len());
    if items.is_empty() {
        return;
    }
    if !known_bad && batch_ok(items) {
        out.fill(true);
        return;
    }
    if items.len() <= NARROW_SINGLE_MAX {
        verify_singly(items, out);
        return;
    }
    let mid = items.len() / 2;
    let (left, right) = items.split_at(mid);
    let (left_out, right_out) = out.split_at_mut(mid);
    if batch_ok(left) {
        left_out.fill(true);
        narrow(right, right_out, true);
    } else if batch_ok(right) {
        right_out.fill(true);
        narrow(left, left_out, true);
    } else {
        verify_singly(items, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_consensus::SigningKey;
    use rand_core::OsRng;

    /// Keys, messages and signatures of a generated batch.
    type Signed = (Vec<[u8; 32]>, Vec<Vec<u8>>, Vec<[u8; 64]>);

    fn signed(n: usize, message_len: usize) -> Signed {
        let mut keys = Vec::new();
        let mut messages = Vec::new();
        let mut signatures = Vec::new();
        for i in 0..n {
            let sk = SigningKey::new(OsRng);
            let message: Vec<u8> = (0..message_len).map(|j| (i * 31 + j) as u8).collect();
            signatures.push(sk.sign(&message).to_bytes());
            keys.push(sk.verification_key().to_bytes());
            messages.push(message);
        }
        (keys, messages, signatures)
    }

    fn run_batch(keys: &[[u8; 32]], messages: &[Vec<u8>], signatures: &[[u8; 64]]) -> Vec<bool> {
        let k: Vec<&[u8]> = keys.iter().map(|x| &x[..]).collect();
        let m: Vec<&[u8]> = messages.iter().map(|x| &x[..]).collect();
        let s: Vec<&[u8]> = signatures.iter().map(|x| &x[..]).collect();
        verify_batch(&k, &m, &s).unwrap()
    }

    fn run_single(keys: &[[u8; 32]], messages: &[Vec<u8>], signatures: &[[u8; 64]]) -> Vec<bool> {
        (0..keys.len())
            .map(|i| verify(&keys[i], &messages[i], &signatures[i]))
            .collect()
    }

    /// The identity point, order 1: a small-order A and R with S = 0 satisfy
    /// the cofactored equation, so ZIP-215 accepts them.
    const IDENTITY: [u8; 32] = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };

    #[test]
    fn valid_batch_all_true() {
        let (k, m, s) = signed(300, 40);
        assert_eq!(run_batch(&k, &m, &s), vec![true; 300]);
    }

    #[test]
    fn batch_pinpoints_bad_items_and_agrees_with_single() {
        let n = 2500;
        let (mut k, mut m, mut s) = signed(n, 32);
        let bad = [0usize, 1, 2, 700, 1023, 1024, 2499];
        k[0][3] ^= 1; // wrong key (may or may not decode; either way invalid)
        m[1][0] ^= 0x80; // tampered message
        s[2][40] ^= 1; // tampered S
        s[700][0] ^= 4; // tampered R
        s[1023] = [0xff; 64]; // S >= L
        k[1024] = k[1025]; // someone else's key
        m[2499].push(0); // longer message
        let expected: Vec<bool> = (0..n).map(|i| !bad.contains(&i)).collect();
        assert_eq!(run_single(&k, &m, &s), expected);
        assert_eq!(run_batch(&k, &m, &s), expected);
    }

    /// Encodings (y = 2, 3, ...) that are not curve points.
    fn undecodable(count: usize) -> Vec<[u8; 32]> {
        use curve25519_dalek_ng::edwards::CompressedEdwardsY;
        (2u8..=255)
            .map(|y| {
                let mut e = [0u8; 32];
                e[0] = y;
                e
            })
            .filter(|e| CompressedEdwardsY(*e).decompress().is_none())
            .take(count)
            .collect()
    }

    #[test]
    fn undecodable_points_found_by_narrowing() {
        let bad = undecodable(4);
        assert_eq!(bad.len(), 4);
        let (mut k, m, mut s) = signed(1500, 32);
        k[3] = bad[0]; // A
        s[900][..32].copy_from_slice(&bad[1]); // R
        k[1499] = bad[2];
        s[1499][..32].copy_from_slice(&bad[3]); // both
        let expected: Vec<bool> = (0..1500).map(|i| ![3, 900, 1499].contains(&i)).collect();
        assert_eq!(run_single(&k, &m, &s), expected);
        assert_eq!(run_batch(&k, &m, &s), expected);
    }

    #[test]
    fn dense_failures_agree_with_single() {
        let (mut k, m, mut s) = signed(400, 16);
        for i in (0..400).filter(|i| i % 3 != 0) {
            if i % 2 == 0 {
                s[i][33] ^= 1;
            } else {
                k[i] = IDENTITY;
            }
        }
        assert_eq!(run_batch(&k, &m, &s), run_single(&k, &m, &s));
    }

    #[test]
    fn small_order_zip215_accepts_in_both_paths() {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&IDENTITY);
        assert!(verify(&IDENTITY, b"anything", &sig));
        let (mut k, mut m, mut s) = signed(100, 8);
        k[50] = IDENTITY;
        m[50] = b"anything".to_vec();
        s[50] = sig;
        assert_eq!(run_batch(&k, &m, &s), vec![true; 100]);
    }

    #[test]
    fn malformed_lengths_are_false_not_errors() {
        let (k, m, s) = signed(1, 8);
        assert!(verify(&k[0], &m[0], &s[0]));
        assert!(!verify(&k[0][..31], &m[0], &s[0]));
        assert!(!verify(&k[0], &m[0], &s[0][..63]));
        let keys: Vec<&[u8]> = vec![&k[0][..31], &k[0], &k[0]];
        let msgs: Vec<&[u8]> = vec![&m[0], &m[0], &m[0]];
        let sigs: Vec<&[u8]> = vec![&s[0], &s[0], &s[0][..]];
        assert_eq!(
            verify_batch(&keys, &msgs, &sigs).unwrap(),
            vec![false, true, true]
        );
        assert!(verify_batch(&keys, &msgs[..2], &sigs).is_err());
        assert!(verify_batch(&[], &[], &[]).unwrap().is_empty());
    }

    // ---- Agreement with the previous verifier (ed25519-consensus) ----------

    /// The reference verdict: ed25519-consensus 2.1 (curve25519-dalek-ng), the
    /// verifier this module used before ed25519-zebra.
    fn reference(key: &[u8], message: &[u8], sig: &[u8]) -> bool {
        let Ok(key) = ed25519_consensus::VerificationKey::try_from(key) else {
            return false;
        };
        let Ok(sig) = ed25519_consensus::Signature::try_from(sig) else {
            return false;
        };
        key.verify(&sig, message).is_ok()
    }

    fn unhex<const N: usize>(h: &str) -> [u8; N] {
        assert_eq!(h.len(), 2 * N);
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// The 12 ed25519-speccheck cases (Chalkias, Garillot and Nikolaenko,
    /// "Taming the many EdDSAs", 2020; github.com/novifinancial/ed25519-speccheck,
    /// Apache-2.0): message, A, R || S, and the ZIP-215 verdict. Only three are
    /// refused: 6 and 7 (S >= l) and 8 (R = "negative zero" -1, signed over its
    /// reduced encoding; ZIP-215 hashes R's bytes as received, so 9 passes).
    const SPECCHECK: [(&str, &str, &str, bool); 12] = [
        (
            "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000",
            true,
        ),
        (
            "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            true,
        ),
        (
            "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
            true,
        ),
        (
            "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
            true,
        ),
        (
            "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
            true,
        ),
        (
            "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
            true,
        ),
        (
            "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
            "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
            "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
            false,
        ),
        (
            "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
            "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
            "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
            false,
        ),
        (
            "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
            false,
        ),
        (
            "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
            true,
        ),
        (
            "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            true,
        ),
        (
            "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            true,
        ),
    ];

    #[test]
    fn speccheck_vectors_agree_with_reference() {
        let mut k = Vec::new();
        let mut m = Vec::new();
        let mut s = Vec::new();
        for (i, (msg, key, sig, zip215)) in SPECCHECK.iter().enumerate() {
            let msg: [u8; 32] = unhex(msg);
            let key: [u8; 32] = unhex(key);
            let sig: [u8; 64] = unhex(sig);
            assert_eq!(reference(&key, &msg, &sig), *zip215, "reference, case {i}");
            assert_eq!(verify(&key, &msg, &sig), *zip215, "verify, case {i}");
            k.push(key);
            m.push(msg.to_vec());
            s.push(sig);
        }
        let expected: Vec<bool> = SPECCHECK.iter().map(|c| c.3).collect();
        assert_eq!(run_batch(&k, &m, &s), expected);
        // And inside a larger batch of valid signatures (a batch, not singles).
        let (mut vk, mut vm, mut vs) = signed(200, 32);
        for i in 0..12 {
            vk[i * 16] = k[i];
            vm[i * 16] = m[i].clone();
            vs[i * 16] = s[i];
        }
        assert_eq!(run_batch(&vk, &vm, &vs), run_single(&vk, &vm, &vs));
        assert_eq!(
            run_single(&vk, &vm, &vs).iter().filter(|ok| !**ok).count(),
            3
        );
    }

    /// Little-endian 256-bit addition (the encodings are 255 bits; the caller
    /// keeps the result below 2^256).
    fn add_le(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let t = a[i] as u16 + b[i] as u16 + carry;
            out[i] = t as u8;
            carry = t >> 8;
        }
        out
    }

    const P: [u8; 32] = {
        // 2^255 - 19
        let mut b = [0xff; 32];
        b[0] = 0xed;
        b[31] = 0x7f;
        b
    };

    /// Every encoding of the 8 small-order points: y0 or y0 + p (when below
    /// 2^255) with either sign bit — canonical, "negative zero" (x = 0, sign
    /// set) and y >= p encodings; 14 in all.
    fn small_order_encodings() -> Vec<[u8; 32]> {
        use dalek5::edwards::CompressedEdwardsY;
        // An order-8 point (speccheck's small-order A).
        let t8 = CompressedEdwardsY(unhex(
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        ))
        .decompress()
        .unwrap();
        let mut out: Vec<[u8; 32]> = Vec::new();
        let mut point = dalek5::edwards::EdwardsPoint::default();
        for _ in 0..8 {
            let canonical = point.compress().to_bytes();
            let mut y = canonical;
            y[31] &= 0x7f;
            let mut ys = vec![y];
            let y_plus_p = add_le(y, P);
            if y_plus_p[31] & 0x80 == 0 {
                ys.push(y_plus_p);
            }
            for y in ys {
                for sign in [0u8, 0x80] {
                    let mut e = y;
                    e[31] |= sign;
                    if !out.contains(&e) {
                        out.push(e);
                    }
                }
            }
            point += t8;
        }
        out
    }

    /// Scalars for S: canonical (0, 1, l - 1, a genuine S) and not (l, l + 1,
    /// S + l, 2^253 - 1, 2^255 - 1, 2^256 - 1).
    fn s_values(genuine: [u8; 32]) -> Vec<[u8; 32]> {
        let l: [u8; 32] = unhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let one = {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        };
        let mut l_minus_1 = l;
        l_minus_1[0] -= 1;
        let mut two253 = [0xff; 32];
        two253[31] = 0x1f;
        let mut two255 = [0xff; 32];
        two255[31] = 0x7f;
        vec![
            [0; 32],
            one,
            l_minus_1,
            genuine,
            l,
            add_le(l, one),
            add_le(genuine, l),
            two253,
            two255,
            [0xff; 32],
        ]
    }

    /// A signature by a mixed-order key A' = [a]B + T (T of order 8), so that
    /// only the cofactored equation accepts it: (A', R, S, message).
    fn mixed_order_key_signature(message: &[u8]) -> ([u8; 32], [u8; 32], [u8; 32]) {
        use dalek5::constants::ED25519_BASEPOINT_POINT as B;
        use dalek5::edwards::CompressedEdwardsY;
        let mut wide = [0u8; 64];
        getrandom04::fill(&mut wide).unwrap();
        let a = Scalar::from_bytes_mod_order_wide(&wide);
        getrandom04::fill(&mut wide).unwrap();
        let r = Scalar::from_bytes_mod_order_wide(&wide);
        let t8 = CompressedEdwardsY(unhex(
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        ))
        .decompress()
        .unwrap();
        let key = (a * B + t8).compress().to_bytes();
        let r_bytes = (r * B).compress().to_bytes();
        let s = r + challenge(&r_bytes, &key, message) * a;
        (key, r_bytes, s.to_bytes())
    }

    /// The grid: A and R each over the small-order encodings plus a genuine
    /// point, the genuine point plus torsion, and an undecodable encoding; S
    /// over [`s_values`]; two messages and two genuine keys (a prime-order one
    /// and a mixed-order one), so the grid holds accepted and refused cases of
    /// every kind. Returns (A, message, R || S).
    fn grid() -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
        use dalek5::edwards::CompressedEdwardsY;
        let small = small_order_encodings();
        let t8 = CompressedEdwardsY(small[2]).decompress().unwrap();
        let bad = undecodable(1)[0];
        let message = b"ZIP-215 grid".to_vec();
        let (k, _, s) = {
            let sk = ed25519_consensus::SigningKey::new(OsRng);
            let sig = sk.sign(&message).to_bytes();
            (sk.verification_key().to_bytes(), (), sig)
        };
        let (mk, mr, ms) = mixed_order_key_signature(&message);
        let mut cases = Vec::new();
        for (key, r_gen, s_gen) in [
            (k, s[..32].try_into().unwrap(), s[32..].try_into().unwrap()),
            (mk, mr, ms),
        ] {
            let mut a_set = small.clone();
            let mut r_set = small.clone();
            let plus_torsion = |e: [u8; 32]| {
                (CompressedEdwardsY(e).decompress().unwrap() + t8)
                    .compress()
                    .to_bytes()
            };
            a_set.extend([key, plus_torsion(key), bad]);
            r_set.extend([r_gen, plus_torsion(r_gen), bad]);
            for a in &a_set {
                for r in &r_set {
                    for s_val in s_values(s_gen) {
                        for msg in [message.clone(), b"another message".to_vec()] {
                            let mut sig = [0u8; 64];
                            sig[..32].copy_from_slice(r);
                            sig[32..].copy_from_slice(&s_val);
                            cases.push((*a, msg, sig));
                        }
                    }
                }
            }
        }
        cases
    }

    #[test]
    fn small_order_encodings_are_the_known_fourteen() {
        use dalek5::edwards::CompressedEdwardsY;
        let enc = small_order_encodings();
        let decodable = enc
            .iter()
            .filter(|e| CompressedEdwardsY(**e).decompress().is_some())
            .count();
        // ZIP-215 decodes all 14 encodings of the 8 small-order points.
        assert_eq!(decodable, 14);
        assert_eq!(enc.len(), 14);
    }

    #[test]
    fn grid_agrees_with_reference_single_and_batched() {
        let cases = grid();
        // 2 keys x (14 + 3) A x (14 + 3) R x 10 S x 2 messages = 11,560.
        assert_eq!(cases.len(), 2 * 17 * 17 * 10 * 2);
        let mut accepted = 0;
        let mut k = Vec::new();
        let mut m = Vec::new();
        let mut s = Vec::new();
        for (i, (key, msg, sig)) in cases.iter().enumerate() {
            let want = reference(key, msg, sig);
            assert_eq!(
                verify(key, msg, sig),
                want,
                "case {i}: A {key:02x?} sig {sig:02x?}"
            );
            accepted += want as usize;
            k.push(*key);
            m.push(msg.clone());
            s.push(*sig);
        }
        // Accepted and refused cases both occur in numbers.
        assert!(
            accepted > 500 && accepted < cases.len() / 2,
            "accepted {accepted}"
        );
        let single = run_single(&k, &m, &s);
        assert_eq!(run_batch(&k, &m, &s), single);
        // Mixed batches: every grid case between valid signatures, in runs of
        // three (valid, case, valid), so every batch holds both kinds.
        let (vk, vm, vs) = signed(64, 24);
        let (mut bk, mut bm, mut bs) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..k.len() {
            for (key, msg, sig) in [(vk[i % 64], &vm[i % 64], vs[i % 64]), (k[i], &m[i], s[i])] {
                bk.push(key);
                bm.push(msg.clone());
                bs.push(sig);
            }
        }
        let expected: Vec<bool> = (0..bk.len()).map(|j| j % 2 == 0 || single[j / 2]).collect();
        assert_eq!(run_batch(&bk, &bm, &bs), expected);
        // The accepted grid cases alone form batches that pass whole.
        let ok: Vec<usize> = (0..k.len()).filter(|i| single[*i]).collect();
        let pick = |v: &Vec<[u8; 32]>| ok.iter().map(|i| v[*i]).collect::<Vec<_>>();
        let (ak, am, as_) = (
            pick(&k),
            ok.iter().map(|i| m[*i].clone()).collect::<Vec<_>>(),
            ok.iter().map(|i| s[*i]).collect::<Vec<_>>(),
        );
        let points: Vec<_> = ak
            .iter()
            .map(|a| CompressedEdwardsY(*a).decompress())
            .collect();
        assert!(batch_ok(
            &(0..ak.len())
                .map(|i| prepare(&ak[i], &am[i], &as_[i], points[i].as_ref()).unwrap())
                .collect::<Vec<_>>()
        ));
    }

    #[test]
    fn key_cache_keeps_two_generations_and_only_points() {
        let cache = KeyCache::new(2);
        let (keys, _, _) = signed(4, 1);
        let [a, b, c, d] = [keys[0], keys[1], keys[2], keys[3]];
        let bad = undecodable(1)[0];
        let decoded = cache.decode(&[a, b, bad]);
        assert_eq!(decoded[0], CompressedEdwardsY(a).decompress());
        assert!(decoded[1].is_some() && decoded[2].is_none());
        assert_eq!(cache.len(), 2, "an undecodable key is not kept");
        cache.decode(&[c]); // young {a, b} full: it becomes the old generation
        assert_eq!(cache.len(), 3);
        cache.decode(&[a]); // found in the old generation: moved to the young one
        cache.decode(&[d]); // young {c, a} full: old {b} dropped
        assert_eq!(cache.len(), 3);
        {
            let g = cache.generations.lock().unwrap();
            assert!(g[0].contains_key(&d) && g[1].contains_key(&a) && g[1].contains_key(&c));
            assert!(!g[0].contains_key(&b) && !g[1].contains_key(&b));
        }
        // Promotions rotate too (never more than two generations' worth), and a
        // key twice in one call is decoded and kept once.
        let got = cache.decode(&[a, c, b, b]);
        assert!(got.iter().all(Option::is_some) && got[2] == got[3]);
        assert!(cache.len() <= 4);
        let g = cache.generations.lock().unwrap();
        assert!(g[0].len() <= 2 && g[1].len() <= 2);
        assert!(g[0].contains_key(&b));
    }

    #[test]
    fn key_cache_survives_a_poisoned_lock() {
        let cache = KeyCache::new(4);
        let (keys, _, _) = signed(1, 1);
        std::thread::scope(|s| {
            let _ = s
                .spawn(|| {
                    let _held = cache.generations.lock().unwrap();
                    panic!("a panic while the cache is held (expected by this test)");
                })
                .join();
        });
        assert!(cache.generations.is_poisoned());
        assert_eq!(
            cache.decode(&keys)[0],
            CompressedEdwardsY(keys[0]).decompress()
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn repeated_keys_share_a_term_and_still_pinpoint_bad_items() {
        // 300 signatures by 3 keys: one term per key in the equation.
        let (keys, messages, signatures) = signed(3, 16);
        let (mut k, mut m, mut s) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..300 {
            k.push(keys[i % 3]);
            m.push(messages[i % 3].clone());
            s.push(signatures[i % 3]);
        }
        assert!(run_batch(&k, &m, &s).iter().all(|ok| *ok));
        // As one batch, not only after narrowing: the shared terms are right.
        let points: Vec<_> = k
            .iter()
            .map(|a| CompressedEdwardsY(*a).decompress())
            .collect();
        let items: Vec<Prepared> = (0..300)
            .map(|i| prepare(&k[i], &m[i], &s[i], points[i].as_ref()).unwrap())
            .collect();
        assert!(batch_ok(&items));
        // A message another key signed, an R changed, a key that did not sign.
        m[3] = messages[1].clone();
        s[6] = {
            let mut t = s[6];
            t[0] ^= 1; // R changed: still decodes or not, invalid either way
            t
        };
        k[9] = signed(1, 16).0[0]; // another key under this key's signature
        let got = run_batch(&k, &m, &s);
        assert_eq!(got, run_single(&k, &m, &s));
        let bad: Vec<usize> = (0..300).filter(|i| !got[*i]).collect();
        assert_eq!(bad, [3, 6, 9]);
    }

    #[test]
    fn chunking_covers_small_and_large_inputs() {
        assert_eq!(chunk_items(1, 2), CHUNK_ITEMS_MIN);
        assert_eq!(chunk_items(4096, 2), CHUNK_ITEMS_MAX);
        assert_eq!(chunk_items(1000, 4), 250);
    }
}
