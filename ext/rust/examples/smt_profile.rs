//! Profiling driver for the state tree's batch update (not a benchmark the
//! suite reports; `bench/state_tree.py` is). Builds a tree of N keys in an
//! in-memory store, fills a chunk cache to depth 20, then applies blocks of
//! 1,024 written keys (90% updates, 10% inserts) and prints µs per written key.
//!
//!     cargo run --release --example smt_profile -- 1000000 200
use std::collections::HashMap;
use std::time::Instant;

use tierchain_native::smt::{BulkBuilder, NodeCache, Update, Updater};

fn key(i: u64) -> Vec<u8> {
    let mut k = b"bal/".to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("number")).collect();
    let n = args.first().copied().unwrap_or(100_000);
    let blocks = args.get(1).copied().unwrap_or(100);
    let mut store: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity((n as usize) * 3);
    let mut b = BulkBuilder::new(0);
    for i in 0..n {
        b.add(&key(i), &i.to_le_bytes()).expect("add");
    }
    let mut root = b.finish().expect("finish");
    while let Ok(batch) = b.emit(1 << 16) {
        if batch.is_empty() {
            break;
        }
        store.extend(batch);
    }
    let mut cache = NodeCache::with_budget(20, 256 << 20);
    cache
        .warm::<tierchain_native::smt::SmtError>(root, |keys| {
            Ok(keys.iter().map(|k| store.get(k).cloned()).collect())
        })
        .expect("warm");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut next_new = n;
    let (mut t_update, mut t_store, mut written) = (0f64, 0f64, 0usize);
    let mut phase = [0f64; 4]; // new, resolve, finish, cache commit
    for v in 1..=blocks {
        let mut ups = HashMap::new();
        while ups.len() < 1024 {
            let k = if rnd() % 10 == 0 {
                next_new += 1;
                key(next_new - 1)
            } else {
                key(rnd() % n)
            };
            ups.insert(k, v.to_le_bytes().to_vec());
        }
        let updates: Vec<Update> = ups.iter().map(|(k, x)| Update::new(k, Some(x))).collect();
        let t0 = Instant::now();
        cache.begin(root);
        let mut up = Updater::new(root, v, updates).expect("updater");
        up.keep_chunks_below(cache.depth_max);
        let ta = Instant::now();
        loop {
            up.resolve_from(&cache).expect("resolve");
            let want = up.wanted();
            if want.is_empty() {
                break;
            }
            up.supply(want.iter().map(|k| store.get(k).cloned()).collect()).expect("supply");
        }
        let tb = Instant::now();
        let out = up.finish().expect("finish");
        let tc = Instant::now();
        cache.commit(&out);
        let t1 = Instant::now();
        phase[0] += (ta - t0).as_secs_f64();
        phase[1] += (tb - ta).as_secs_f64();
        phase[2] += (tc - tb).as_secs_f64();
        phase[3] += (t1 - tc).as_secs_f64();
        for (k, x) in out.puts {
            store.insert(k, x);
        }
        root = out.root.expect("root");
        t_update += (t1 - t0).as_secs_f64();
        t_store += t1.elapsed().as_secs_f64();
        written += ups.len();
    }
    println!(
        "n={n} blocks={blocks}: update {:.2} µs/key, store {:.2} µs/key, cache {:.0} MiB",
        t_update / written as f64 * 1e6,
        t_store / written as f64 * 1e6,
        cache.bytes() as f64 / 1048576.0
    );
    let per = |x: f64| x / written as f64 * 1e6;
    println!(
        "  new {:.2}  resolve {:.2}  finish {:.2}  cache commit {:.2} µs/key",
        per(phase[0]),
        per(phase[1]),
        per(phase[2]),
        per(phase[3])
    );
}
