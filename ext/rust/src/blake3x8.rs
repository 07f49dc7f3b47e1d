//! BLAKE3 of many *short* messages at once, eight per SIMD register.
//!
//! Why this exists: a Merkle tree hashes two kinds of tiny inputs — leaves
//! (`0x00 || 32-byte id`, one compression) and nodes (`0x01 || l || r`, 65
//! bytes, two compressions). Through `blake3::hash` each costs 100-200 ns,
//! mostly per-call overhead around a single 64-byte compression. The `blake3`
//! crate vectorises across *chunks of one long input*, but exposes no way to
//! hash many independent short inputs together. Here the BLAKE3 compression
//! function (spec §2.2) runs on eight messages in the eight 32-bit lanes of
//! an AVX2 register: same rounds, same message schedule, lane-wise. Code is
//! written once over `[u32; 8]` arrays; LLVM vectorises it, and we compile it
//! twice — with AVX2 enabled (chosen at run time when the CPU has it) and as
//! a portable fallback (SSE2 on x86-64, NEON-less scalar elsewhere).
//!
//! Only single-chunk messages of at most two blocks are supported (≤ 128
//! bytes), which is all the tree needs. Every function is tested against the
//! `blake3` crate for all lengths, so the two can never disagree silently.

use std::sync::OnceLock;

pub const LANES: usize = 8;
pub const BLOCK_LEN: usize = 64;
pub const OUT_LEN: usize = 32;

const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];
const MSG_PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

const CHUNK_START: u32 = 1 << 0;
const CHUNK_END: u32 = 1 << 1;
const ROOT: u32 = 1 << 3;

type Lanes = [u32; LANES];

#[inline(always)]
fn add(a: Lanes, b: Lanes) -> Lanes {
    std::array::from_fn(|i| a[i].wrapping_add(b[i]))
}

#[inline(always)]
fn xor_rot(a: Lanes, b: Lanes, n: u32) -> Lanes {
    std::array::from_fn(|i| (a[i] ^ b[i]).rotate_right(n))
}

#[inline(always)]
fn g(v: &mut [Lanes; 16], a: usize, b: usize, c: usize, d: usize, mx: Lanes, my: Lanes) {
    v[a] = add(add(v[a], v[b]), mx);
    v[d] = xor_rot(v[d], v[a], 16);
    v[c] = add(v[c], v[d]);
    v[b] = xor_rot(v[b], v[c], 12);
    v[a] = add(add(v[a], v[b]), my);
    v[d] = xor_rot(v[d], v[a], 8);
    v[c] = add(v[c], v[d]);
    v[b] = xor_rot(v[b], v[c], 7);
}

/// One BLAKE3 compression per lane, chunk counter 0. Returns the first eight
/// output words (the chaining value, or the hash when `ROOT` is set).
#[inline(always)]
fn compress_lanes(cv: &[Lanes; 8], block: &[Lanes; 16], block_len: &Lanes, flags: u32) -> [Lanes; 8] {
    let mut v: [Lanes; 16] = [
        cv[0],
        cv[1],
        cv[2],
        cv[3],
        cv[4],
        cv[5],
        cv[6],
        cv[7],
        [IV[0]; LANES],
        [IV[1]; LANES],
        [IV[2]; LANES],
        [IV[3]; LANES],
        [0; LANES], // counter low
        [0; LANES], // counter high
        *block_len,
        [flags; LANES],
    ];
    let mut m = *block;
    for round in 0..7 {
        g(&mut v, 0, 4, 8, 12, m[0], m[1]);
        g(&mut v, 1, 5, 9, 13, m[2], m[3]);
        g(&mut v, 2, 6, 10, 14, m[4], m[5]);
        g(&mut v, 3, 7, 11, 15, m[6], m[7]);
        g(&mut v, 0, 5, 10, 15, m[8], m[9]);
        g(&mut v, 1, 6, 11, 12, m[10], m[11]);
        g(&mut v, 2, 7, 8, 13, m[12], m[13]);
        g(&mut v, 3, 4, 9, 14, m[14], m[15]);
        if round < 6 {
            m = std::array::from_fn(|i| m[MSG_PERMUTATION[i]]);
        }
    }
    std::array::from_fn(|i| std::array::from_fn(|l| v[i][l] ^ v[i + 8][l]))
}

/// Eight messages, each `len[l] <= 128` bytes, stored in `blocks[l]` (zero
/// padded). Writes BLAKE3(message) of lane `l` to `out[l]`.
#[inline(always)]
fn hash8_impl(blocks: &[[u8; 2 * BLOCK_LEN]; LANES], lens: &[usize; LANES], two_blocks: bool, out: &mut [[u8; OUT_LEN]; LANES]) {
    let words = |half: usize| -> [Lanes; 16] {
        std::array::from_fn(|w| {
            std::array::from_fn(|l| {
                let at = half * BLOCK_LEN + 4 * w;
                u32::from_le_bytes([blocks[l][at], blocks[l][at + 1], blocks[l][at + 2], blocks[l][at + 3]])
            })
        })
    };
    let iv: [Lanes; 8] = std::array::from_fn(|i| [IV[i]; LANES]);
    let cv = if two_blocks {
        let first = compress_lanes(&iv, &words(0), &[BLOCK_LEN as u32; LANES], CHUNK_START);
        let last_len: Lanes = std::array::from_fn(|l| (lens[l] - BLOCK_LEN) as u32);
        compress_lanes(&first, &words(1), &last_len, CHUNK_END | ROOT)
    } else {
        let len: Lanes = std::array::from_fn(|l| lens[l] as u32);
        compress_lanes(&iv, &words(0), &len, CHUNK_START | CHUNK_END | ROOT)
    };
    for (l, o) in out.iter_mut().enumerate() {
        for w in 0..8 {
            o[4 * w..4 * w + 4].copy_from_slice(&cv[w][l].to_le_bytes());
        }
    }
}

type Hash8Fn = fn(&[[u8; 2 * BLOCK_LEN]; LANES], &[usize; LANES], bool, &mut [[u8; OUT_LEN]; LANES]);

fn hash8_portable(b: &[[u8; 2 * BLOCK_LEN]; LANES], l: &[usize; LANES], two: bool, o: &mut [[u8; OUT_LEN]; LANES]) {
    hash8_impl(b, l, two, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn hash8_avx2_inner(b: &[[u8; 2 * BLOCK_LEN]; LANES], l: &[usize; LANES], two: bool, o: &mut [[u8; OUT_LEN]; LANES]) {
    hash8_impl(b, l, two, o)
}

#[cfg(target_arch = "x86_64")]
fn hash8_avx2(b: &[[u8; 2 * BLOCK_LEN]; LANES], l: &[usize; LANES], two: bool, o: &mut [[u8; OUT_LEN]; LANES]) {
    // SAFETY: only selected by `hash8_fn` after `is_x86_feature_detected!("avx2")`.
    unsafe { hash8_avx2_inner(b, l, two, o) }
}

fn hash8_fn() -> Hash8Fn {
    static CHOICE: OnceLock<Hash8Fn> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return hash8_avx2 as Hash8Fn;
        }
        hash8_portable as Hash8Fn
    })
}

/// Longest message [`hash_many_short`] accepts.
pub const SHORT_MAX: usize = 2 * BLOCK_LEN;

/// `out[i] = BLAKE3(prefix || messages(i))` for `i < n`, where the message
/// (with its one-byte prefix) is at most [`SHORT_MAX`] bytes and all messages
/// are either ≤ 64 or all in 65..=128 bytes — lanes in one group must take
/// the same number of compressions. `fill(i, buf)` writes message `i` (after
/// the prefix) into `buf` and returns its length.
pub fn hash_many_short(
    n: usize,
    prefix: u8,
    fill: impl Fn(usize, &mut [u8]) -> usize,
    out: &mut [[u8; OUT_LEN]],
) {
    debug_assert_eq!(out.len(), n);
    let hash8 = hash8_fn();
    let mut blocks = [[0u8; 2 * BLOCK_LEN]; LANES];
    let mut lens = [0usize; LANES];
    let mut outs = [[0u8; OUT_LEN]; LANES];
    for base in (0..n).step_by(LANES) {
        let count = (n - base).min(LANES);
        let mut two_blocks = false;
        for l in 0..LANES {
            blocks[l] = [0; 2 * BLOCK_LEN];
            if l < count {
                blocks[l][0] = prefix;
                let len = 1 + fill(base + l, &mut blocks[l][1..]);
                assert!(len <= SHORT_MAX, "message too long for hash_many_short");
                lens[l] = len;
                two_blocks |= len > BLOCK_LEN;
            } else {
                lens[l] = lens[0]; // padding lane, result discarded
            }
        }
        for (l, &len) in lens.iter().enumerate().take(count) {
            assert_eq!(
                len > BLOCK_LEN,
                two_blocks,
                "lane {l}: a group mixes one- and two-block messages"
            );
        }
        hash8(&blocks, &lens, two_blocks, &mut outs);
        out[base..base + count].copy_from_slice(&outs[..count]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(len: usize, n: usize) {
        let msgs: Vec<Vec<u8>> = (0..n)
            .map(|i| (0..len).map(|j| (i * 131 + j * 7 + len) as u8).collect())
            .collect();
        let mut out = vec![[0u8; OUT_LEN]; n];
        hash_many_short(
            n,
            0xA5,
            |i, buf| {
                buf[..len].copy_from_slice(&msgs[i]);
                len
            },
            &mut out,
        );
        for i in 0..n {
            let mut full = vec![0xA5];
            full.extend_from_slice(&msgs[i]);
            assert_eq!(out[i], *blake3::hash(&full).as_bytes(), "len {len}, item {i}");
        }
    }

    #[test]
    fn matches_blake3_for_every_supported_length() {
        for len in 0..SHORT_MAX {
            for n in [1, 7, 8, 9, 17] {
                check(len, n);
            }
        }
    }

    #[test]
    fn portable_and_dispatched_agree() {
        let blocks: [[u8; 128]; LANES] = std::array::from_fn(|l| std::array::from_fn(|i| (i * 3 + l) as u8));
        for (lens, two) in [([33usize; LANES], false), ([65; LANES], true), ([128; LANES], true), ([1; LANES], false)] {
            let mut a = [[0u8; OUT_LEN]; LANES];
            let mut b = [[0u8; OUT_LEN]; LANES];
            hash8_portable(&blocks, &lens, two, &mut a);
            hash8_fn()(&blocks, &lens, two, &mut b);
            assert_eq!(a, b);
        }
    }
}
