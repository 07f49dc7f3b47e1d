use std::time::{Duration, Instant};
fn best(mut f: impl FnMut()) -> Duration {
    (0..15).map(|_| { let t = Instant::now(); f(); t.elapsed() }).min().unwrap()
}
fn main() {
    for n in [10_000usize, 200_000] {
        let buf: Vec<u8> = (0..32 * n).map(|i| (i * 7 % 251) as u8).collect();
        let starts: Vec<i64> = (0..n as i64).map(|i| i * 32).collect();
        let ends: Vec<i64> = starts.iter().map(|s| s + 32).collect();
        let list: Vec<&[u8]> = buf.chunks_exact(32).collect();
        let h = best(|| { tierchain_native::hash::hash_many("ctx", &buf, &starts, &ends).unwrap(); });
        let l = best(|| { tierchain_native::merkle::leaf_hashes(&list).unwrap(); });
        let r = best(|| { tierchain_native::merkle::root_packed(&buf, 32).unwrap(); });
        println!("threads {} n {n}: hash_many {h:?} leaf_hashes {l:?} root {r:?}", tierchain_native::pool::pool().unwrap().current_num_threads());
    }
}
