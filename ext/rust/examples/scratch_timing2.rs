use rayon::prelude::*;
use std::time::Instant;
fn main() {
    let n = 2_000_000usize;
    let buf: Vec<u8> = (0..32 * n).map(|i| (i * 7 % 251) as u8).collect();
    let pool = tierchain_native::pool::pool().unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let v: Vec<[u8; 32]> = buf.chunks_exact(32).map(|c| *blake3::hash(c).as_bytes()).collect();
        let s = t.elapsed();
        let t = Instant::now();
        let w: Vec<[u8; 32]> = pool.install(|| buf.par_chunks_exact(32).with_min_len(512).map(|c| *blake3::hash(c).as_bytes()).collect());
        let p = t.elapsed();
        let t = Instant::now();
        let _ = tierchain_native::merkle::leaf_hashes_packed(&buf, 32).unwrap();
        println!("serial {:?} pool {:?} leaf_hashes {:?} {}", s, p, t.elapsed(), v == w);
    }
}
