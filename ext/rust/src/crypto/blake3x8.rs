//! BLAKE3 of many *short* messages at once, eight per SIMD register.
//!
//! Why this exists: a Merkle tree hashes two kinds of tiny inputs — leaves
//! (`0x00 || 32-byte id`, one compression) and nodes (`0x01 || l || r`, 65
//! bytes, two compressions). Through `blake3::hash` each costs 100-200 ns,
//! mostly per-call overhead around a single 64-byte compression. The `blake3`
//! crate vectorises across *chunks of one long input*, but exposes no way to
//! hash many independent short inputs together. Here the BLAKE3 compression
//! function (spec §2.2) runs on eight messages in the eight 32-bit lanes of
//! an AVX2 register: same rounds, same message schedule, lane-wise, written
//! with `std::arch` intrinsics (the compiler does not vectorise the portable
//! form of this across lanes). It is chosen at run time when the CPU has
//! AVX2; otherwise each lane goes through `blake3::hash`.
//!
//! Only single-chunk messages of at most two blocks are supported (≤ 128
//! bytes), which is all the trees need. Two modes: the plain hash (the
//! Merkle tree of `merkle.rs`) and `derive_key`'s keyed step, the context
//! key as the chaining value and the `DERIVE_KEY_MATERIAL` flag (the state
//! tree's domain-separated hashes, `smt/hash.rs`). Every function is tested
//! against the `blake3` crate for all lengths and both modes, so the two can
//! never disagree silently.

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
const DERIVE_KEY_MATERIAL: u32 = 1 << 6;

/// How every message of one call is hashed.
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    /// `blake3::hash`.
    Hash,
    /// `blake3::derive_key` of the context whose key this is (what
    /// `blake3::hazmat::hash_derive_key_context` returns).
    DeriveKey(&'a [u8; 32]),
}

impl Mode<'_> {
    /// The first chaining value and the flag every compression carries.
    fn start(self) -> ([u32; 8], u32) {
        match self {
            Mode::Hash => (IV, 0),
            Mode::DeriveKey(key) => (
                std::array::from_fn(|i| {
                    u32::from_le_bytes(key[4 * i..4 * i + 4].try_into().expect("4 bytes"))
                }),
                DERIVE_KEY_MATERIAL,
            ),
        }
    }
}

/// Hashes eight messages: lane `l` is `blocks[l][..lens[l]]`; `two_blocks`
/// says whether every lane is 65..=128 bytes (else every lane is <= 64).
type Hash8Fn =
    fn(Mode<'_>, &[[u8; 2 * BLOCK_LEN]; LANES], &[usize; LANES], bool, &mut [[u8; OUT_LEN]; LANES]);

/// Fallback without AVX2: the `blake3` crate, one message at a time.
fn hash8_portable(
    mode: Mode<'_>,
    blocks: &[[u8; 2 * BLOCK_LEN]; LANES],
    lens: &[usize; LANES],
    _two_blocks: bool,
    out: &mut [[u8; OUT_LEN]; LANES],
) {
    for l in 0..LANES {
        let message = &blocks[l][..lens[l]];
        out[l] = match mode {
            Mode::Hash => *blake3::hash(message).as_bytes(),
            Mode::DeriveKey(key) => {
                use blake3::hazmat::HasherExt;
                *blake3::Hasher::new_from_context_key(key)
                    .update(message)
                    .finalize()
                    .as_bytes()
            }
        };
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// The BLAKE3 G function on eight lanes. A macro, not a function, so it
    /// is certainly inlined into the AVX2-enabled caller.
    macro_rules! g {
        ($v:ident, $a:expr, $b:expr, $c:expr, $d:expr, $x:expr, $y:expr, $rot16:ident, $rot8:ident) => {
            $v[$a] = _mm256_add_epi32(_mm256_add_epi32($v[$a], $v[$b]), $x);
            $v[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($v[$d], $v[$a]), $rot16);
            $v[$c] = _mm256_add_epi32($v[$c], $v[$d]);
            let t = _mm256_xor_si256($v[$b], $v[$c]);
            $v[$b] = _mm256_or_si256(_mm256_srli_epi32::<12>(t), _mm256_slli_epi32::<20>(t));
            $v[$a] = _mm256_add_epi32(_mm256_add_epi32($v[$a], $v[$b]), $y);
            $v[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($v[$d], $v[$a]), $rot8);
            $v[$c] = _mm256_add_epi32($v[$c], $v[$d]);
            let t = _mm256_xor_si256($v[$b], $v[$c]);
            $v[$b] = _mm256_or_si256(_mm256_srli_epi32::<7>(t), _mm256_slli_epi32::<25>(t));
        };
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn splat(x: u32) -> __m256i {
        _mm256_set1_epi32(x as i32)
    }

    /// BLAKE3 compression (chunk counter 0) of eight blocks; returns the
    /// first eight output words per lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn compress(
        cv: &[__m256i; 8],
        block: &[__m256i; 16],
        block_len: __m256i,
        flags: u32,
    ) -> [__m256i; 8] {
        // Byte shuffles that rotate each 32-bit word right by 16 and by 8.
        let rot16 = _mm256_set_epi8(
            13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, //
            13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2,
        );
        let rot8 = _mm256_set_epi8(
            12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1, //
            12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1,
        );
        let mut v = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            splat(IV[0]),
            splat(IV[1]),
            splat(IV[2]),
            splat(IV[3]),
            _mm256_setzero_si256(), // counter low
            _mm256_setzero_si256(), // counter high
            block_len,
            splat(flags),
        ];
        let mut m = *block;
        for round in 0..7 {
            g!(v, 0, 4, 8, 12, m[0], m[1], rot16, rot8);
            g!(v, 1, 5, 9, 13, m[2], m[3], rot16, rot8);
            g!(v, 2, 6, 10, 14, m[4], m[5], rot16, rot8);
            g!(v, 3, 7, 11, 15, m[6], m[7], rot16, rot8);
            g!(v, 0, 5, 10, 15, m[8], m[9], rot16, rot8);
            g!(v, 1, 6, 11, 12, m[10], m[11], rot16, rot8);
            g!(v, 2, 7, 8, 13, m[12], m[13], rot16, rot8);
            g!(v, 3, 4, 9, 14, m[14], m[15], rot16, rot8);
            if round < 6 {
                let old = m;
                for (i, &from) in MSG_PERMUTATION.iter().enumerate() {
                    m[i] = old[from];
                }
            }
        }
        let mut out = [_mm256_setzero_si256(); 8];
        for i in 0..8 {
            out[i] = _mm256_xor_si256(v[i], v[i + 8]);
        }
        out
    }

    /// 8x8 transpose of 32-bit words: `v[r]` word `c` becomes `out[c]` word
    /// `r`. Turns eight lane-major rows into word-major vectors and back
    /// (the same shuffle network as the `blake3` crate's AVX2 code).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose8(v: [__m256i; 8]) -> [__m256i; 8] {
        let ab_0145 = _mm256_unpacklo_epi32(v[0], v[1]);
        let ab_2367 = _mm256_unpackhi_epi32(v[0], v[1]);
        let cd_0145 = _mm256_unpacklo_epi32(v[2], v[3]);
        let cd_2367 = _mm256_unpackhi_epi32(v[2], v[3]);
        let ef_0145 = _mm256_unpacklo_epi32(v[4], v[5]);
        let ef_2367 = _mm256_unpackhi_epi32(v[4], v[5]);
        let gh_0145 = _mm256_unpacklo_epi32(v[6], v[7]);
        let gh_2367 = _mm256_unpackhi_epi32(v[6], v[7]);
        let abcd_04 = _mm256_unpacklo_epi64(ab_0145, cd_0145);
        let abcd_15 = _mm256_unpackhi_epi64(ab_0145, cd_0145);
        let abcd_26 = _mm256_unpacklo_epi64(ab_2367, cd_2367);
        let abcd_37 = _mm256_unpackhi_epi64(ab_2367, cd_2367);
        let efgh_04 = _mm256_unpacklo_epi64(ef_0145, gh_0145);
        let efgh_15 = _mm256_unpackhi_epi64(ef_0145, gh_0145);
        let efgh_26 = _mm256_unpacklo_epi64(ef_2367, gh_2367);
        let efgh_37 = _mm256_unpackhi_epi64(ef_2367, gh_2367);
        [
            _mm256_permute2x128_si256::<0x20>(abcd_04, efgh_04),
            _mm256_permute2x128_si256::<0x20>(abcd_15, efgh_15),
            _mm256_permute2x128_si256::<0x20>(abcd_26, efgh_26),
            _mm256_permute2x128_si256::<0x20>(abcd_37, efgh_37),
            _mm256_permute2x128_si256::<0x31>(abcd_04, efgh_04),
            _mm256_permute2x128_si256::<0x31>(abcd_15, efgh_15),
            _mm256_permute2x128_si256::<0x31>(abcd_26, efgh_26),
            _mm256_permute2x128_si256::<0x31>(abcd_37, efgh_37),
        ]
    }

    /// Block `half` of every lane, word-major: `m[w]` holds word `w` of the
    /// eight lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load_block(blocks: &[[u8; 2 * BLOCK_LEN]; LANES], half: usize) -> [__m256i; 16] {
        let at = half * BLOCK_LEN;
        let mut lo = [_mm256_setzero_si256(); 8];
        let mut hi = [_mm256_setzero_si256(); 8];
        for l in 0..LANES {
            let row = &blocks[l][at..at + BLOCK_LEN];
            // SAFETY: `row` has 64 readable bytes; loadu needs no alignment.
            unsafe {
                lo[l] = _mm256_loadu_si256(row.as_ptr().cast());
                hi[l] = _mm256_loadu_si256(row[32..].as_ptr().cast());
            }
        }
        let (lo, hi) = (transpose8(lo), transpose8(hi));
        let mut m = [_mm256_setzero_si256(); 16];
        m[..8].copy_from_slice(&lo);
        m[8..].copy_from_slice(&hi);
        m
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn hash8(
        mode: Mode<'_>,
        blocks: &[[u8; 2 * BLOCK_LEN]; LANES],
        lens: &[usize; LANES],
        two_blocks: bool,
        out: &mut [[u8; OUT_LEN]; LANES],
    ) {
        let (key, flag) = mode.start();
        let iv: [__m256i; 8] = std::array::from_fn(|i| splat(key[i]));
        let lane_lens =
            |sub: usize| -> [u32; LANES] { std::array::from_fn(|l| (lens[l] - sub) as u32) };
        let hash = if two_blocks {
            let first = compress(
                &iv,
                &load_block(blocks, 0),
                splat(BLOCK_LEN as u32),
                CHUNK_START | flag,
            );
            let last_lens = lane_lens(BLOCK_LEN);
            // SAFETY: 8 u32 = 32 readable bytes, unaligned load.
            let last_len = unsafe { _mm256_loadu_si256(last_lens.as_ptr().cast()) };
            compress(
                &first,
                &load_block(blocks, 1),
                last_len,
                CHUNK_END | ROOT | flag,
            )
        } else {
            let only_lens = lane_lens(0);
            // SAFETY: as above.
            let len = unsafe { _mm256_loadu_si256(only_lens.as_ptr().cast()) };
            compress(
                &iv,
                &load_block(blocks, 0),
                len,
                CHUNK_START | CHUNK_END | ROOT | flag,
            )
        };
        // Back to lane-major: row l is lane l's 32-byte hash.
        let rows = transpose8(hash);
        for (o, row) in out.iter_mut().zip(rows) {
            // SAFETY: `o` is 32 writable bytes; storeu needs no alignment.
            unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), row) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn hash8_avx2(
    m: Mode<'_>,
    b: &[[u8; 2 * BLOCK_LEN]; LANES],
    l: &[usize; LANES],
    two: bool,
    o: &mut [[u8; OUT_LEN]; LANES],
) {
    // SAFETY: only selected by `hash8_fn` after `is_x86_feature_detected!("avx2")`.
    unsafe { avx2::hash8(m, b, l, two, o) }
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
    hash_many(
        Mode::Hash,
        n,
        |i, buf| {
            buf[0] = prefix;
            1 + fill(i, &mut buf[1..])
        },
        out,
    );
}

/// `out[i]` = message `i` hashed in `mode`, for `i < n`: `fill(i, buf)`
/// writes the message into `buf` ([`SHORT_MAX`] bytes) and returns its
/// length. All messages are either ≤ 64 bytes or all in 65..=128 — lanes in
/// one group must take the same number of compressions.
pub fn hash_many(
    mode: Mode<'_>,
    n: usize,
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
                let len = fill(base + l, &mut blocks[l]);
                assert!(len <= SHORT_MAX, "message too long for hash_many");
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
        hash8(mode, &blocks, &lens, two_blocks, &mut outs);
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
            assert_eq!(
                out[i],
                *blake3::hash(&full).as_bytes(),
                "len {len}, item {i}"
            );
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
    fn derive_key_matches_blake3_for_every_supported_length() {
        let context = "tierchain 2026 test derive";
        let key = blake3::hazmat::hash_derive_key_context(context);
        for len in 0..=SHORT_MAX {
            for n in [1, 8, 13] {
                let msgs: Vec<Vec<u8>> = (0..n)
                    .map(|i| (0..len).map(|j| (i * 17 + j * 5 + len) as u8).collect())
                    .collect();
                let mut out = vec![[0u8; OUT_LEN]; n];
                hash_many(
                    Mode::DeriveKey(&key),
                    n,
                    |i, buf| {
                        buf[..len].copy_from_slice(&msgs[i]);
                        len
                    },
                    &mut out,
                );
                for (i, m) in msgs.iter().enumerate() {
                    assert_eq!(
                        out[i],
                        blake3::derive_key(context, m),
                        "len {len}, item {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn portable_and_dispatched_agree() {
        for (lens, two) in [
            ([33usize, 1, 64, 2, 63, 40, 33, 0], false),
            ([65, 128, 100, 66, 127, 65, 90, 64 + 33], true),
        ] {
            // Messages are zero padded to the block, as `hash_many_short` does.
            let blocks: [[u8; 128]; LANES] = std::array::from_fn(|l| {
                std::array::from_fn(|i| if i < lens[l] { (i * 3 + l) as u8 } else { 0 })
            });
            let mut a = [[0u8; OUT_LEN]; LANES];
            let mut b = [[0u8; OUT_LEN]; LANES];
            let key = blake3::hazmat::hash_derive_key_context("tierchain test context");
            for mode in [Mode::Hash, Mode::DeriveKey(&key)] {
                hash8_portable(mode, &blocks, &lens, two, &mut a);
                hash8_fn()(mode, &blocks, &lens, two, &mut b);
                assert_eq!(a, b);
            }
        }
    }
}
