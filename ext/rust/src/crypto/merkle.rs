//! Binary Merkle trees with the RFC 6962 shape, hashed with BLAKE3.
//!
//! # Definition (RFC 6962 §2.1, with BLAKE3 for SHA-256)
//!
//! ```text
//! MTH({})       = BLAKE3("")
//! MTH({d0})     = BLAKE3(0x00 || d0)                       leaf hash
//! MTH(D[n])     = BLAKE3(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  node hash
//!                 where k is the largest power of two < n
//! ```
//!
//! The distinct leaf and node prefixes make a leaf impossible to pass off as
//! an interior node (second-preimage attacks on the tree).
//!
//! # Why iterative
//!
//! The recursive definition has the same shape as the level-by-level
//! construction "pair adjacent nodes left to right; an odd last node moves up
//! unchanged": splitting at the largest power of two below `n` puts every
//! complete subtree of size 2^j at the left, and exactly those are the nodes
//! that level-by-level pairing completes first; the right-most, incomplete
//! subtree is the one whose root gets carried. The Rust unit tests and
//! `tests/test_merkle.py` check this equivalence against a literal recursive
//! implementation. Level-by-level needs no recursion, touches memory
//! sequentially and lets each level be hashed in parallel.
//!
//! Audit paths are RFC 6962 `PATH(m, D[n])`, sibling nearest the leaf first;
//! [`verify`] is the RFC 9162 §2.1.3.2 inclusion-proof check.

use rayon::prelude::*;

use super::blake3x8;

pub type Digest = [u8; 32];

pub const LEAF_PREFIX: u8 = 0x00;
pub const NODE_PREFIX: u8 = 0x01;

/// Trees with at least this many leaves are built on the pool; below, the
/// hand-off to worker threads costs more than it saves.
pub const PARALLEL_LEAVES_MIN: usize = 2048;

/// Smallest subtree one rayon task builds (a power of two, see [`root`]).
const SUBTREE_LEAVES_MIN: usize = 256;

/// Leaves up to this size are hashed from a stack buffer in one call.
const SMALL_LEAF_MAX: usize = 127;

/// Root of the empty tree, `BLAKE3("")`.
pub fn empty_root() -> Digest {
    *blake3::hash(b"").as_bytes()
}

/// `BLAKE3(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Digest {
    if leaf.len() <= SMALL_LEAF_MAX {
        let mut buf = [0u8; SMALL_LEAF_MAX + 1];
        buf[0] = LEAF_PREFIX;
        buf[1..=leaf.len()].copy_from_slice(leaf);
        *blake3::hash(&buf[..=leaf.len()]).as_bytes()
    } else {
        *blake3::Hasher::new()
            .update(&[LEAF_PREFIX])
            .update(leaf)
            .finalize()
            .as_bytes()
    }
}

/// `BLAKE3(0x01 || left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    *blake3::hash(&buf).as_bytes()
}

/// Number of BLAKE3 blocks `0x00 || leaf` takes, if it fits the eight-lane
/// hasher (which needs every lane of a call to take the same number).
fn short_blocks(leaf_len: usize) -> Option<usize> {
    match leaf_len + 1 {
        0..=blake3x8::BLOCK_LEN => Some(1),
        n if n <= blake3x8::SHORT_MAX => Some(2),
        _ => None,
    }
}

/// Leaf hashes of `leaves` into `out`, on the calling thread. Eight at a time
/// when all leaves are short and of one block count (the common case: fixed
/// 32-byte ids), one by one otherwise.
fn hash_leaves_into<L: AsRef<[u8]>>(leaves: &[L], out: &mut [Digest]) {
    debug_assert_eq!(leaves.len(), out.len());
    let class = leaves.first().and_then(|l| short_blocks(l.as_ref().len()));
    let uniform = class.is_some()
        && leaves
            .iter()
            .all(|l| short_blocks(l.as_ref().len()) == class);
    if uniform {
        blake3x8::hash_many_short(
            leaves.len(),
            LEAF_PREFIX,
            |i, buf| {
                let leaf = leaves[i].as_ref();
                buf[..leaf.len()].copy_from_slice(leaf);
                leaf.len()
            },
            out,
        );
    } else {
        for (leaf, o) in leaves.iter().zip(out.iter_mut()) {
            *o = leaf_hash(leaf.as_ref());
        }
    }
}

/// The level above `level`: adjacent pairs hashed (eight at a time), an odd
/// last node carried up unchanged. On the calling thread.
fn next_level(level: &[Digest]) -> Vec<Digest> {
    let pairs = level.len() / 2;
    let mut out = vec![[0u8; 32]; pairs + level.len() % 2];
    blake3x8::hash_many_short(
        pairs,
        NODE_PREFIX,
        |i, buf| {
            buf[..32].copy_from_slice(&level[2 * i]);
            buf[32..64].copy_from_slice(&level[2 * i + 1]);
            64
        },
        &mut out[..pairs],
    );
    if level.len() % 2 == 1 {
        out[pairs] = level[level.len() - 1];
    }
    out
}

/// Root over already-hashed leaves, on the calling thread.
fn root_of_level(mut level: Vec<Digest>) -> Digest {
    if level.is_empty() {
        return empty_root();
    }
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// `MTH` of `leaves` on the calling thread.
fn root_serial<L: AsRef<[u8]>>(leaves: &[L]) -> Digest {
    let mut hashes = vec![[0u8; 32]; leaves.len()];
    hash_leaves_into(leaves, &mut hashes);
    root_of_level(hashes)
}

/// Leaf hashes of `leaves` (on the pool when there are many and the pool is
/// free, as [`root`]).
pub fn leaf_hashes<L: AsRef<[u8]> + Sync>(leaves: &[L]) -> Result<Vec<Digest>, String> {
    let mut out = vec![[0u8; 32]; leaves.len()];
    if leaves.len() < PARALLEL_LEAVES_MIN || crate::pool::busy() {
        hash_leaves_into(leaves, &mut out);
        return Ok(out);
    }
    crate::pool::install(|| {
        out.par_chunks_mut(SUBTREE_LEAVES_MIN)
            .zip(leaves.par_chunks(SUBTREE_LEAVES_MIN))
            .for_each(|(o, l)| hash_leaves_into(l, o));
    })?;
    Ok(out)
}

/// `MTH(leaves)`.
///
/// In parallel the leaves are cut into aligned blocks of `2^j` leaves, each
/// rayon task builds one block's subtree completely (no synchronisation per
/// level), and the block roots are combined level by level. This is the same
/// tree: level-by-level pairing never crosses an aligned `2^j` boundary in
/// the first `j` levels, and a short last block reduces to its own root,
/// which is then carried exactly as the whole-tree construction carries it.
/// A tree of fewer than [`PARALLEL_LEAVES_MIN`] leaves, or one asked for while
/// another job occupies the pool ([`crate::pool::busy`]: a signature batch
/// would hold the workers a millisecond or more), is computed on the calling
/// thread: the same root.
pub fn root<L: AsRef<[u8]> + Sync>(leaves: &[L]) -> Result<Digest, String> {
    if leaves.len() < PARALLEL_LEAVES_MIN || crate::pool::busy() {
        return Ok(root_serial(leaves));
    }
    let threads = crate::pool::pool()?.current_num_threads();
    // At least four blocks per thread, for balance (a power of two rounded
    // down, so 10k leaves on 2 threads give ten 1024-leaf blocks, not five
    // 2048-leaf ones), but never tiny ones.
    let target = (leaves.len() / (4 * threads)).max(SUBTREE_LEAVES_MIN);
    let block = 1usize << target.ilog2();
    let block_roots: Vec<Digest> = crate::pool::install(|| {
        leaves
            .par_chunks(block)
            .map(|subtree| root_serial(subtree))
            .collect()
    })?;
    Ok(root_of_level(block_roots))
}

/// `MTH` over consecutive `leaf_size`-byte leaves of `buf`.
pub fn root_packed(buf: &[u8], leaf_size: usize) -> Result<Digest, String> {
    if leaf_size == 0 || !buf.len().is_multiple_of(leaf_size) {
        return Err(format!(
            "buffer of {} bytes is not a whole number of {leaf_size}-byte leaves",
            buf.len()
        ));
    }
    let leaves: Vec<&[u8]> = buf.chunks_exact(leaf_size).collect();
    root(&leaves)
}

#[derive(Debug, PartialEq, Eq)]
pub enum ProveError {
    /// `index >= number of leaves` (includes the empty tree).
    IndexOutOfRange { index: usize, size: usize },
    /// The thread pool could not start.
    Pool(String),
}

/// RFC 6962 audit path `PATH(index, leaves)`, sibling nearest the leaf first.
pub fn prove<L: AsRef<[u8]> + Sync>(leaves: &[L], index: usize) -> Result<Vec<Digest>, ProveError> {
    if index >= leaves.len() {
        return Err(ProveError::IndexOutOfRange {
            index,
            size: leaves.len(),
        });
    }
    let mut level = leaf_hashes(leaves).map_err(ProveError::Pool)?;
    let mut at = index;
    let mut path = Vec::new();
    while level.len() > 1 {
        // A node without a right sibling is carried up: no path element.
        let sibling = at ^ 1;
        if sibling < level.len() {
            path.push(level[sibling]);
        }
        level = next_level(&level);
        at /= 2;
    }
    Ok(path)
}

/// RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in a tree of
/// `size` leaves with root `root`? Any inconsistency is simply `false`.
pub fn verify(root: &Digest, leaf: &[u8], index: u64, size: u64, proof: &[Digest]) -> bool {
    if index >= size {
        return false;
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = leaf_hash(leaf);
    for p in proof {
        if s_n == 0 {
            return false; // proof longer than the path
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                // Right-most node with no sibling at these levels: skip the
                // levels where it is carried.
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Literal RFC 6962 §2.1 MTH, recursive.
    fn mth(leaves: &[Vec<u8>]) -> Digest {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// Literal RFC 6962 §2.1.1 PATH(m, D[n]).
    fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<Digest> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n);
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    /// Largest power of two strictly below n (n >= 2).
    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
    }

    #[test]
    fn empty_tree_root_is_hash_of_empty_string() {
        let none: [&[u8]; 0] = [];
        assert_eq!(root(&none).unwrap(), *blake3::hash(b"").as_bytes());
    }

    #[test]
    fn level_by_level_equals_rfc6962_recursion() {
        for n in (0..=140).chain([255, 256, 257, 1000, 2047, 2048, 2049, 4099, 9000, 20_000]) {
            let ls = leaves(n);
            assert_eq!(root(&ls).unwrap(), mth(&ls), "n = {n}");
        }
    }

    #[test]
    fn every_leaf_length_class_matches_the_recursion() {
        // One-block (<= 63 bytes), two-block (64..=127) and long leaves, each
        // uniform (eight-lane path) and mixed (one-by-one path).
        for len in [0usize, 1, 31, 32, 63, 64, 100, 127, 128, 1500] {
            for n in [1usize, 2, 9, 100, 2500] {
                let ls: Vec<Vec<u8>> = (0..n).map(|i| vec![(i % 251) as u8; len]).collect();
                assert_eq!(root(&ls).unwrap(), mth(&ls), "len {len}, n {n}");
            }
        }
        let mixed: Vec<Vec<u8>> = (0..3000)
            .map(|i| vec![7u8; [0, 32, 64, 200][i % 4]])
            .collect();
        assert_eq!(root(&mixed).unwrap(), mth(&mixed));
    }

    #[test]
    fn packed_equals_list() {
        let buf: Vec<u8> = (0..32 * 5000u32).map(|i| (i % 253) as u8).collect();
        let list: Vec<&[u8]> = buf.chunks_exact(32).collect();
        assert_eq!(root_packed(&buf, 32).unwrap(), root(&list).unwrap());
        assert_eq!(root_packed(&buf[..0], 32).unwrap(), empty_root());
        assert!(root_packed(&buf[..33], 32).is_err());
        assert!(root_packed(&buf, 0).is_err());
    }

    #[test]
    fn paths_equal_rfc6962_and_verify() {
        for n in 1..=70 {
            let ls = leaves(n);
            let r = mth(&ls);
            for m in 0..n {
                let p = prove(&ls, m).unwrap();
                assert_eq!(p, path(m, &ls), "n = {n}, m = {m}");
                assert!(verify(&r, &ls[m], m as u64, n as u64, &p));
                // Wrong index, size, leaf, or proof length must all fail.
                assert!(!verify(&r, &ls[m], (m as u64) ^ 1, n as u64, &p) || n == 1);
                // The size is only meaningful together with its root (as in
                // a signed tree head): a size-n proof must not verify in the
                // tree of n + 1 leaves.
                let bigger = leaves(n + 1);
                assert!(!verify(
                    &mth(&bigger),
                    &bigger[m],
                    m as u64,
                    n as u64 + 1,
                    &p
                ));
                assert!(!verify(&r, b"other", m as u64, n as u64, &p));
                let mut longer = p.clone();
                longer.push([0; 32]);
                assert!(!verify(&r, &ls[m], m as u64, n as u64, &longer));
                if !p.is_empty() {
                    assert!(!verify(&r, &ls[m], m as u64, n as u64, &p[..p.len() - 1]));
                    let mut flipped = p.clone();
                    flipped[p.len() / 2][7] ^= 0x10;
                    assert!(!verify(&r, &ls[m], m as u64, n as u64, &flipped));
                }
            }
            assert_eq!(
                prove(&ls, n),
                Err(ProveError::IndexOutOfRange { index: n, size: n })
            );
        }
    }

    #[test]
    fn verify_rejects_degenerate_sizes() {
        let r = leaf_hash(b"x");
        assert!(verify(&r, b"x", 0, 1, &[]));
        assert!(!verify(&r, b"x", 0, 0, &[]));
        assert!(!verify(&r, b"x", 1, 1, &[]));
        assert!(!verify(&r, b"x", u64::MAX, u64::MAX, &[]));
    }
}
