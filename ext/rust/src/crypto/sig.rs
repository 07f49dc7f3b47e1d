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
//! we may batch freely without changing any verdict. `ed25519-consensus`
//! implements exactly this rule; we only add the parallel split and the
//! narrowing of failed batches.
//!
//! # Batch algorithm
//!
//! 1. The input is split into chunks, one rayon task each.
//! 2. Within a chunk every item gets the cheap checks up front: lengths and
//!    `S < L` (a 256-bit comparison). Items failing here are `false` and never
//!    enter a batch. Point decoding is deliberately *not* done up front: it
//!    costs two field square roots (~9.6 µs per signature, +42% on a ~23 µs
//!    batched verification, measured) and the verifier decodes the points
//!    again anyway. An undecodable `A` or `R` makes its batch fail at once
//!    (before the multiscalar multiplication) and is then found by step 4,
//!    where single verification rejects it — the same verdict, paid only by
//!    batches that contain garbage. (Garbage that decodes costs the same
//!    narrowing, so checking decodability up front would not bound an
//!    attacker's cost anyway.)
//! 3. The remaining items are verified as one batch (random 128-bit linear
//!    combination, one multiscalar multiplication).
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

use curve25519_dalek_ng::scalar::Scalar;
use ed25519_consensus::{Signature, VerificationKey, VerificationKeyBytes, batch};
use rand_core::OsRng;
use rayon::prelude::*;

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

/// Verifies one signature over `message` (ZIP-215). Malformed input — wrong
/// lengths, undecodable points, non-canonical `S` — is simply invalid.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerificationKey::try_from(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    key.verify(&signature, message).is_ok()
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

/// The up-front checks of step 2; `Some` means the item may join a batch.
fn prepare(public_key: &[u8], message: &[u8], signature: &[u8]) -> Option<batch::Item> {
    let key: [u8; PUBLIC_KEY_LEN] = public_key.try_into().ok()?;
    let sig: [u8; SIGNATURE_LEN] = signature.try_into().ok()?;
    let s_bytes: [u8; 32] = sig[32..].try_into().ok()?;
    // The verifier's own scalar type, so "canonical" means the same thing.
    Scalar::from_canonical_bytes(s_bytes)?;
    Some(batch::Item::from((
        VerificationKeyBytes::from(key),
        Signature::from(sig),
        message,
    )))
}

fn verify_chunk(public_keys: &[&[u8]], messages: &[&[u8]], signatures: &[&[u8]], out: &mut [bool]) {
    let mut slots = Vec::with_capacity(out.len());
    let mut items = Vec::with_capacity(out.len());
    for i in 0..out.len() {
        match prepare(public_keys[i], messages[i], signatures[i]) {
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

fn batch_ok(items: &[batch::Item]) -> bool {
    let mut verifier = batch::Verifier::new();
    for item in items {
        verifier.queue(item.clone());
    }
    verifier.verify(OsRng).is_ok()
}

fn verify_singly(items: &[batch::Item], out: &mut [bool]) {
    for (item, ok) in items.iter().zip(out.iter_mut()) {
        *ok = item.clone().verify_single().is_ok();
    }
}

/// Step 3 and 4: fills `out` with the verdict of each item. `known_bad`
/// says a batch over exactly `items` already failed.
fn narrow(items: &[batch::Item], out: &mut [bool], known_bad: bool) {
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

    #[test]
    fn chunking_covers_small_and_large_inputs() {
        assert_eq!(chunk_items(1, 2), CHUNK_ITEMS_MIN);
        assert_eq!(chunk_items(4096, 2), CHUNK_ITEMS_MAX);
        assert_eq!(chunk_items(1000, 4), 250);
    }
}
