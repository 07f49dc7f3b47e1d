//! Domain-separated BLAKE3 over many slices of one buffer.
//!
//! Every hash in TierChain lives in its own domain: BLAKE3 in `derive_key`
//! mode with a context string such as `"tierchain 2026 tx body"`. The engine
//! keeps a block's transactions in one contiguous buffer with start/end
//! offsets, so hashing them is one call over `(buf, starts, ends)`.
//!
//! The context string is hashed once per call (`hazmat::hash_derive_key_context`)
//! rather than once per item: for 32..200-byte items that halves the work.

use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};
use rayon::prelude::*;

pub const OUT_LEN: usize = 32;

/// Below this many items the whole call runs on the calling thread: handing
/// work to the pool costs more than hashing a few small slices.
pub const PARALLEL_ITEMS_MIN: usize = 256;

/// Items per rayon task.
const TASK_ITEMS: usize = 128;

/// Checks that every `(starts[i], ends[i])` is a slice of a buffer of
/// `buf_len` bytes. Returns the first violation as a message.
pub fn check_ranges(buf_len: usize, starts: &[i64], ends: &[i64]) -> Result<(), String> {
    if starts.len() != ends.len() {
        return Err(format!(
            "starts and ends must have the same length (got {} and {})",
            starts.len(),
            ends.len()
        ));
    }
    for (i, (&start, &end)) in starts.iter().zip(ends).enumerate() {
        let in_range =
            0 <= start && start <= end && usize::try_from(end).is_ok_and(|e| e <= buf_len);
        if !in_range {
            return Err(format!(
                "range {i} = [{start}, {end}) is not within a buffer of {buf_len} bytes"
            ));
        }
    }
    Ok(())
}

fn hash_with_key(key: &ContextKey, data: &[u8]) -> [u8; OUT_LEN] {
    *blake3::Hasher::new_from_context_key(key)
        .update(data)
        .finalize()
        .as_bytes()
}

/// BLAKE3 `derive_key(context, data)`.
pub fn hash_one(context: &str, data: &[u8]) -> [u8; OUT_LEN] {
    blake3::derive_key(context, data)
}

/// `derive_key(context, buf[starts[i]..ends[i]])` for every `i`, concatenated.
/// Ranges are validated first (see [`check_ranges`]); nothing is hashed if
/// any is out of bounds. Parallel on the crate pool for large inputs.
pub fn hash_many(
    context: &str,
    buf: &[u8],
    starts: &[i64],
    ends: &[i64],
) -> Result<Vec<u8>, String> {
    check_ranges(buf.len(), starts, ends)?;
    let key = hash_derive_key_context(context);
    // `check_ranges` proved 0 <= start <= end <= buf.len(), so the casts and
    // the slice below cannot fail.
    packed_digests(starts.len(), OUT_LEN, |i, slot| {
        let data = &buf[starts[i] as usize..ends[i] as usize];
        slot.copy_from_slice(&hash_with_key(&key, data));
    })
}

/// `n` packed `width`-byte outputs, slot `i` written by `fill(i, slot)`: one
/// after another below [`PARALLEL_ITEMS_MIN`] items, else in tasks of
/// `TASK_ITEMS` on the crate pool. The batch shape of every domain hash
/// (BLAKE3 here, SM3 in `sm.rs`).
pub fn packed_digests(
    n: usize,
    width: usize,
    fill: impl Fn(usize, &mut [u8]) + Sync,
) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; n * width];
    if n < PARALLEL_ITEMS_MIN {
        for (i, slot) in out.chunks_exact_mut(width).enumerate() {
            fill(i, slot);
        }
    } else {
        crate::pool::install(|| {
            out.par_chunks_mut(width * TASK_ITEMS)
                .enumerate()
                .for_each(|(task, slots)| {
                    for (j, slot) in slots.chunks_exact_mut(width).enumerate() {
                        fill(task * TASK_ITEMS + j, slot);
                    }
                });
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: &str = "tierchain 2026 test vector";

    #[test]
    fn precomputed_context_key_equals_derive_key() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for len in [0, 1, 31, 32, 63, 64, 65, 1023, 1024, 1025, 5000] {
            let key = hash_derive_key_context(CTX);
            assert_eq!(
                hash_with_key(&key, &data[..len]),
                blake3::derive_key(CTX, &data[..len])
            );
        }
    }

    #[test]
    fn hash_many_matches_one_by_one_serial_and_parallel() {
        let buf: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
        for n in [
            0usize,
            1,
            5,
            PARALLEL_ITEMS_MIN - 1,
            PARALLEL_ITEMS_MIN,
            1000,
        ] {
            let starts: Vec<i64> = (0..n as i64).map(|i| (i * 97) % 90_000).collect();
            let ends: Vec<i64> = starts
                .iter()
                .enumerate()
                .map(|(i, s)| s + (i as i64 % 300))
                .collect();
            let out = hash_many(CTX, &buf, &starts, &ends).unwrap();
            assert_eq!(out.len(), n * OUT_LEN);
            for i in 0..n {
                let want = hash_one(CTX, &buf[starts[i] as usize..ends[i] as usize]);
                assert_eq!(&out[i * OUT_LEN..(i + 1) * OUT_LEN], &want);
            }
        }
    }

    #[test]
    fn out_of_range_is_an_error() {
        let buf = [0u8; 10];
        assert!(hash_many(CTX, &buf, &[0], &[10]).is_ok());
        assert!(hash_many(CTX, &buf, &[10], &[10]).is_ok());
        assert!(hash_many(CTX, &buf, &[0], &[11]).is_err());
        assert!(hash_many(CTX, &buf, &[-1], &[3]).is_err());
        assert!(hash_many(CTX, &buf, &[5], &[4]).is_err());
        assert!(hash_many(CTX, &buf, &[0, 1], &[1]).is_err());
        assert!(hash_many(CTX, &buf, &[0], &[i64::MAX]).is_err());
    }
}
