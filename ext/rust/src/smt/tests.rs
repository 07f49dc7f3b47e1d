//! The state tree against its definition ([`root_of`]) over random batches,
//! and the record codec, cache and bulk builder against the updater, for
//! each [`TreeHash`]; the hashes against their definitions.

use std::collections::HashMap;

use super::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Up to `n_max - 1` updates over keys `k0..k{keys}`; one in `delete_one_in`
    /// is a deletion, the rest set values `v0..v{values}`.
    fn batch(
        &mut self,
        n_max: u64,
        keys: u64,
        delete_one_in: u64,
        values: u64,
    ) -> HashMap<Vec<u8>, Option<Vec<u8>>> {
        let mut batch = HashMap::new();
        for _ in 0..(self.next() % n_max) {
            let key = format!("k{}", self.next() % keys).into_bytes();
            let value = (!self.next().is_multiple_of(delete_one_in))
                .then(|| format!("v{}", self.next() % values).into_bytes());
            batch.insert(key, value);
        }
        batch
    }
}

/// The updates of a `Rng::batch`.
fn updates_of(th: TreeHash, batch: &HashMap<Vec<u8>, Option<Vec<u8>>>) -> Vec<Update> {
    batch
        .iter()
        .map(|(k, v)| Update::with_hash(th, k, v.as_deref()))
        .collect()
}

fn reference(th: TreeHash, state: &HashMap<Vec<u8>, Vec<u8>>) -> Digest {
    let entries: Vec<_> = state
        .iter()
        .map(|(k, v)| (th.key_hash(k), th.value_hash(v)))
        .collect();
    root_of(th, &entries)
}

/// Records reachable from the root (chunks and leaves), each checked.
fn reachable(store: &MemStore) -> usize {
    fn slot(store: &MemStore, c: &Chunk, s: Slot, depth: u16, path: Digest) -> usize {
        let th = store.hash;
        match s {
            Slot::Empty => 0,
            Slot::Leaf(i) => {
                let l = c.leaves[usize::from(i)];
                let raw = &store.nodes[&leaf_key(l.version, &l.kh)];
                let (k, v, _) = decode_leaf(raw, th).unwrap();
                assert_eq!((k, v, th.leaf_hash(&k, &v)), (l.kh, l.vh, l.lh));
                assert_eq!(node_key(0, depth, &l.kh), node_key(0, depth, &path));
                1
            }
            Slot::Inner(i) => {
                let n = c.nodes[usize::from(i)];
                slot(store, c, n.left, depth + 1, with_bit(&path, depth, false))
                    + slot(store, c, n.right, depth + 1, with_bit(&path, depth, true))
            }
            Slot::Chunk(i) => {
                let kid = c.kids[usize::from(i)];
                let raw = &store.nodes[&node_key(kid.version, depth, &path)];
                let child = Chunk::decode(raw, depth, th).unwrap();
                assert_eq!(child.hash(th), kid.hash);
                assert_eq!(&child.encode(), raw, "canonical encoding");
                1 + slot(store, &child, child.root, depth, path)
            }
        }
    }
    let root = store.root();
    if root.is_empty(store.hash) {
        return 0;
    }
    let top = Chunk {
        kids: vec![root],
        ..Chunk::default()
    };
    let s = Slot::Chunk(0);
    // The root chunk sits at depth 0 like a child at a chunk boundary.
    slot(store, &top, s, 0, [0; 32])
}

#[test]
fn empty_and_single() {
    for th in TreeHash::ALL {
        let mut s = MemStore::new(th);
        assert_eq!(s.root().hash, th.empty_hash());
        s.apply(1, vec![s.update(b"a", Some(b"1"))]).unwrap();
        assert_eq!(
            s.root().hash,
            th.leaf_hash(&th.key_hash(b"a"), &th.value_hash(b"1"))
        );
        assert_eq!(s.nodes.len(), 2); // the root chunk (a leaf at the top) and the leaf
        assert_eq!(reachable(&s), 2);
        s.apply(2, vec![s.update(b"a", None)]).unwrap();
        assert_eq!(s.root().hash, th.empty_hash());
        assert!(s.nodes.is_empty());
    }
}

#[test]
fn random_batches_match_reference_and_history_is_compact() {
    for th in TreeHash::ALL {
        random_batches_match_reference(th);
    }
}

fn random_batches_match_reference(th: TreeHash) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut store = MemStore::new(th);
    let mut state: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for version in 1..=60u64 {
        let batch = rng.batch(40, 120, 3, 7);
        store.apply(version, updates_of(th, &batch)).unwrap();
        for (k, v) in batch {
            match v {
                Some(v) => state.insert(k, v),
                None => state.remove(&k),
            };
        }
        assert_eq!(
            store.root().hash,
            reference(th, &state),
            "{th:?} version {version}"
        );
        // Exactly one leaf record per key.
        let leaves = store.nodes.values().filter(|v| v[0] == TAG_LEAF).count();
        assert_eq!(leaves, state.len());
        // Every stale record was reported: the store holds exactly the
        // records reachable from the root.
        assert_eq!(reachable(&store), store.nodes.len());
    }
}

#[test]
fn direct_encoding_equals_decoded_chunks() {
    for th in TreeHash::ALL {
        direct_encoding_equals_decoded(th);
    }
}

fn direct_encoding_equals_decoded(th: TreeHash) {
    // Chunks not kept decoded are encoded straight from the new nodes:
    // same records, byte for byte, as through decoded chunks.
    let mut rng = Rng(0x5151_2026_7777_0001);
    let mut store = MemStore::new(th);
    for version in 1..=40u64 {
        let batch = rng.batch(200, 3000, 5, 9);
        let updates = || updates_of(th, &batch);
        let run = |keep: u16| finish_with(&store, version, updates(), keep, 1);
        let all = run(u16::MAX);
        for keep in [0u16, 4, 8] {
            let some = run(keep);
            assert_eq!(some.puts, all.puts, "version {version} keep {keep}");
            assert_eq!(some.stale, all.stale);
            assert_eq!(some.root, all.root);
            assert!(some.chunks.iter().all(|(id, _)| id.depth < keep));
        }
        store.apply(version, updates()).unwrap();
    }
}

/// One batch on `store`, its new chunks kept decoded below depth `keep`,
/// finished on `workers` threads.
fn finish_with(
    store: &MemStore,
    version: u64,
    updates: Vec<Update>,
    keep: u16,
    workers: usize,
) -> Outcome {
    let mut up = Updater::with_hash(store.hash, store.root(), version, updates).unwrap();
    up.keep_chunks_below(keep);
    up.set_workers(workers);
    loop {
        let want = up.wanted();
        if want.is_empty() {
            break;
        }
        up.supply(want.iter().map(|k| store.nodes.get(k)).collect())
            .unwrap();
    }
    up.finish().unwrap()
}

#[test]
fn a_parallel_finish_equals_the_serial_one() {
    for th in TreeHash::ALL {
        parallel_finish_equals_serial(th);
    }
}

fn parallel_finish_equals_serial(th: TreeHash) {
    // Batches above and below the parallel threshold on a tree that starts
    // empty (its first root chunks have leaves and empty slots above the
    // split depth, built from scratch there) and later one that deletes
    // nearly everything (subtrees of tasks shrink to a leaf that moves up
    // into the root chunk, or to nothing). Every record, in the same order.
    let mut rng = Rng(0x5151_2026_1207_0002);
    let mut store = MemStore::new(th);
    let mut state: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for version in 1..=14u64 {
        let batch = if version == 12 {
            // Delete all but three keys.
            let mut keys: Vec<_> = state.keys().cloned().collect();
            keys.sort();
            keys.into_iter().skip(3).map(|k| (k, None)).collect()
        } else {
            rng.batch(3000, 20_000, 4, 50)
        };
        let updates = || updates_of(th, &batch);
        for keep in [0u16, 8, u16::MAX] {
            let serial = finish_with(&store, version, updates(), keep, 1);
            for workers in [2usize, 3, 16] {
                let par = finish_with(&store, version, updates(), keep, workers);
                let at = format!(
                    "{} version {version} keep {keep} workers {workers}",
                    th.name()
                );
                assert_eq!(par.root, serial.root, "{at}");
                assert_eq!(par.puts, serial.puts, "{at}");
                assert_eq!(par.stale, serial.stale, "{at}");
                let ids = |o: &Outcome| {
                    o.chunks
                        .iter()
                        .map(|(id, c)| (*id, c.encode()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(ids(&par), ids(&serial), "{at}");
            }
        }
        for (k, v) in &batch {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
        store.apply(version, updates()).unwrap();
        assert_eq!(
            store.root().hash,
            reference(th, &state),
            "version {version}"
        );
        if version == 12 {
            assert_eq!(state.len(), 3);
        }
    }
}

#[test]
fn batching_and_order_do_not_change_the_root() {
    for th in TreeHash::ALL {
        batching_and_order(th);
    }
}

fn batching_and_order(th: TreeHash) {
    let items: Vec<(Vec<u8>, Vec<u8>)> = (0..500u32)
        .map(|i| (i.to_le_bytes().to_vec(), (i * 7).to_le_bytes().to_vec()))
        .collect();
    let mut one = MemStore::new(th);
    one.apply(
        1,
        items.iter().map(|(k, v)| one.update(k, Some(v))).collect(),
    )
    .unwrap();
    let mut many = MemStore::new(th);
    for (version, chunk) in items.rchunks(37).enumerate() {
        let updates = chunk.iter().map(|(k, v)| many.update(k, Some(v))).collect();
        many.apply(version as u64 + 1, updates).unwrap();
    }
    assert_eq!(one.root().hash, many.root().hash);
    // Deleting all but one key brings back the single-leaf root.
    let deletions = items[1..]
        .iter()
        .map(|(k, _)| many.update(k, None))
        .collect();
    many.apply(100, deletions).unwrap();
    assert_eq!(
        many.root().hash,
        th.leaf_hash(&th.key_hash(&items[0].0), &th.value_hash(&items[0].1))
    );
    assert_eq!(many.nodes.len(), 2);
}

#[test]
fn missing_and_damaged_records_are_errors() {
    for th in TreeHash::ALL {
        missing_and_damaged(th);
    }
}

fn missing_and_damaged(th: TreeHash) {
    let mut s = MemStore::new(th);
    s.apply(1, (0..40u8).map(|i| s.update(&[i], Some(b"x"))).collect())
        .unwrap();
    let all: Vec<Update> = (0..40u8).map(|i| s.update(&[i], Some(b"y"))).collect();
    let chunk_keys: Vec<Vec<u8>> = s
        .nodes
        .iter()
        .filter(|(_, v)| v[0] == TAG_CHUNK)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(chunk_keys.len() > 1);
    for key in &chunk_keys {
        let mut missing = MemStore {
            hash: th,
            nodes: s.nodes.clone(),
            root: s.root,
        };
        missing.nodes.remove(key);
        assert!(matches!(
            missing.apply(2, all.clone()),
            Err(SmtError::MissingNode(_))
        ));
        // Every single-byte change of a chunk is refused once the batch
        // reaches it (a changed chunk version names a record that is not
        // there), except in a leaf's version: only the address of its
        // record, which an update never reads (a read refuses it).
        let depth = u16::from_be_bytes([key[8], key[9]]);
        let original = Chunk::decode(&s.nodes[key], depth, th).unwrap();
        let unversioned = |c: &Chunk| {
            let mut c = c.clone();
            for l in &mut c.leaves {
                l.version = 0;
            }
            c
        };
        let len = s.nodes[key].len();
        for i in 0..len {
            let mut flipped = MemStore {
                hash: th,
                nodes: s.nodes.clone(),
                root: s.root,
            };
            flipped.nodes.get_mut(key).unwrap()[i] ^= 0x40;
            if let Ok(c) = Chunk::decode(&flipped.nodes[key], depth, th)
                && unversioned(&c) == unversioned(&original)
            {
                continue; // a leaf version
            }
            let r = flipped.apply(2, all.clone());
            assert!(r.is_err(), "byte {i} depth {depth} {:?}", r.map(|o| o.root));
        }
    }
    assert!(matches!(
        Updater::with_hash(
            th,
            s.root(),
            2,
            vec![s.update(b"a", None), s.update(b"a", Some(b"1"))]
        ),
        Err(SmtError::DuplicateKey)
    ));
    assert!(Chunk::decode(&[], 0, th).is_err());
    assert!(Chunk::decode(&[TAG_CHUNK, SLOT_EMPTY], 0, th).is_err());
    let leaf = |b: u8| {
        let mut v = vec![SLOT_LEAF];
        v.extend_from_slice(&[b; 72]);
        v
    };
    let mut two = vec![TAG_CHUNK, SLOT_INNER];
    two.extend(leaf(1));
    two.extend(leaf(2));
    assert!(Chunk::decode(&two, 0, th).is_ok());
    assert!(
        Chunk::decode(&two, 2, th).is_err(),
        "depth not a chunk depth"
    );
    let mut lone = vec![TAG_CHUNK, SLOT_INNER, SLOT_EMPTY];
    lone.extend(leaf(1));
    assert!(
        Chunk::decode(&lone, 0, th).is_err(),
        "one leaf below a node"
    );
    assert!(Chunk::decode(&[two.clone(), vec![0]].concat(), 0, th).is_err());
    assert!(decode_leaf(&[TAG_LEAF; 64], th).is_err());
    // A leaf record is checked with the tree's own value hash.
    let (kh, value) = (th.key_hash(b"k"), b"some value");
    let record = encode_leaf(&kh, &th.value_hash(value), value);
    assert_eq!(decode_leaf(&record, th).unwrap().2, value);
    let other = TreeHash::ALL.into_iter().find(|&h| h != th).unwrap();
    assert!(decode_leaf(&record, other).is_err());
}

#[test]
fn bulk_build_equals_one_batch_and_emits_in_key_order() {
    for th in TreeHash::ALL {
        bulk_build_equals_one_batch(th);
    }
}

fn bulk_build_equals_one_batch(th: TreeHash) {
    for n in [0usize, 1, 2, 3, 17, 1000, 5000] {
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|i| (format!("k{i}").into_bytes(), vec![i as u8; i % 5]))
            .collect();
        let mut batch = MemStore::new(th);
        batch
            .apply(
                0,
                items
                    .iter()
                    .map(|(k, v)| batch.update(k, Some(v)))
                    .collect(),
            )
            .unwrap();
        let mut b = BulkBuilder::with_hash(th, 0);
        for (k, v) in items.iter().rev() {
            b.add(k, v).unwrap();
        }
        let root = b.finish().unwrap();
        assert_eq!(root, batch.root(), "{th:?} n = {n}");
        let mut emitted = Vec::new();
        loop {
            let chunk = b.emit(7).unwrap();
            if chunk.is_empty() {
                break;
            }
            emitted.extend(chunk);
        }
        assert!(
            emitted.windows(2).all(|w| w[0].0 < w[1].0),
            "ascending keys"
        );
        let mut expect: Vec<_> = batch.nodes.into_iter().collect();
        expect.sort();
        assert_eq!(emitted, expect, "n = {n}");
    }
    let mut dup = BulkBuilder::with_hash(th, 0);
    dup.add(b"a", b"1").unwrap();
    dup.add(b"a", b"2").unwrap();
    assert_eq!(dup.finish(), Err(SmtError::DuplicateKey));
}

/// Applies a batch through the cache, as the Python binding does.
fn apply_cached(
    store: &MemStore,
    cache: &mut NodeCache,
    version: u64,
    updates: Vec<Update>,
) -> Result<Outcome, SmtError> {
    cache.begin(store.root());
    let mut up = Updater::with_hash(store.hash, store.root(), version, updates)?;
    loop {
        up.resolve_from(cache)?;
        let want = up.wanted();
        if want.is_empty() {
            break;
        }
        up.supply(want.iter().map(|k| store.nodes.get(k)).collect())?;
    }
    let out = up.finish()?;
    cache.commit(&out);
    Ok(out)
}

#[test]
fn cache_matches_uncached_and_survives_aborted_batches() {
    for th in TreeHash::ALL {
        cache_matches_uncached(th);
    }
}

fn cache_matches_uncached(th: TreeHash) {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut store = MemStore::new(th);
    let mut plain = MemStore::new(th);
    let mut cache = NodeCache::with_hash(th, 8, usize::MAX);
    for version in 1..=80u64 {
        let batch = rng.batch(50, 300, 4, 9);
        let updates = || updates_of(th, &batch);
        if rng.next().is_multiple_of(4) {
            // A batch computed at this version but never committed: its
            // records (same keys as the real batch's, other contents) must
            // not be served afterwards.
            let mut other = updates();
            other.push(Update::with_hash(th, b"aborted", Some(b"x")));
            apply_cached(&store, &mut cache, version, other).unwrap();
        }
        let out = apply_cached(&store, &mut cache, version, updates()).unwrap();
        for k in &out.stale {
            store.nodes.remove(k);
        }
        for (k, v) in &out.puts {
            store.nodes.insert(k.clone(), v.clone());
        }
        store.root = out.root;
        plain.apply(version, updates()).unwrap();
        assert_eq!(store.root(), plain.root(), "{th:?} version {version}");
        assert_eq!(store.nodes, plain.nodes);
        assert!(
            cache
                .chunks
                .keys()
                .all(|k| store.nodes.contains_key(&k.key()))
        );
    }
    assert!(!cache.is_empty());
}

#[test]
fn keys() {
    let path = [0xff; 32];
    assert_eq!(
        node_key(5, 3, &path),
        [0, 0, 0, 0, 0, 0, 0, 5, 0, 3, 0b1110_0000]
    );
    assert_eq!(node_key(1, 0, &path).len(), 10);
    assert_eq!(node_key(1, 256, &path).len(), 42);
    let lk = leaf_key(1, &path);
    assert_eq!(lk.len(), 42);
    assert_eq!(&lk[8..10], &[0xff, 0xff]);
}

fn hex_of(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keys and values of every length around SM3's and BLAKE3's block sizes.
fn inputs() -> Vec<Vec<u8>> {
    [
        0usize, 1, 2, 31, 32, 55, 56, 63, 64, 65, 127, 128, 129, 1000, 1025,
    ]
    .iter()
    .map(|&n| (0..n).map(|i| (i * 31 + n) as u8).collect())
    .collect()
}

#[test]
fn blake3_hashes_are_derive_key_and_roots_unchanged() {
    let th = TreeHash::Blake3;
    assert_eq!(TreeHash::default(), th);
    for data in inputs() {
        assert_eq!(th.key_hash(&data), blake3::derive_key(KEY_CONTEXT, &data));
        assert_eq!(
            th.value_hash(&data),
            blake3::derive_key(VALUE_CONTEXT, &data)
        );
    }
    let (a, b) = (th.key_hash(b"a"), th.value_hash(b"b"));
    assert_eq!(
        th.leaf_hash(&a, &b),
        blake3::derive_key(LEAF_CONTEXT, &[a, b].concat())
    );
    assert_eq!(
        th.node_hash(&a, &b),
        blake3::derive_key(NODE_CONTEXT, &[a, b].concat())
    );
    assert_eq!(th.empty_hash(), blake3::derive_key(EMPTY_CONTEXT, b""));
    // Pinned: the roots of existing BLAKE3 trees never change.
    assert_eq!(
        hex_of(&th.empty_hash()),
        "e025d6122aa9cc36021af9dda0da50750aef28c2d0bc2c0b20e1dfd948e2863d"
    );
    let mut s = MemStore::default();
    let updates = (0..100)
        .map(|i| {
            let (k, v) = (format!("k{i}"), format!("v{}", i * 7));
            s.update(k.as_bytes(), Some(v.as_bytes()))
        })
        .collect();
    s.apply(1, updates).unwrap();
    assert_eq!(
        hex_of(&s.root().hash),
        "18ce3a139169ffccd3ff7201494295b76ddc91fd64b4a843f23166f9987cc58e"
    );
}

#[test]
fn sm3_hashes_are_the_suites_hash_one() {
    use crate::crypto::sm::hash_one;
    let th = TreeHash::Sm3;
    for data in inputs() {
        assert_eq!(th.key_hash(&data), hash_one(KEY_CONTEXT, &data).unwrap());
        assert_eq!(
            th.value_hash(&data),
            hash_one(VALUE_CONTEXT, &data).unwrap()
        );
    }
    for (x, y) in [(b"a", b"b"), (b"c", b"d")] {
        let (kh, vh) = (th.key_hash(x), th.value_hash(y));
        let joined = [kh, vh].concat();
        assert_eq!(
            th.leaf_hash(&kh, &vh),
            hash_one(LEAF_CONTEXT, &joined).unwrap()
        );
        assert_eq!(
            th.node_hash(&kh, &vh),
            hash_one(NODE_CONTEXT, &joined).unwrap()
        );
    }
    assert_eq!(th.empty_hash(), hash_one(EMPTY_CONTEXT, b"").unwrap());
    // The domains stay apart.
    let d = th.key_hash(b"x");
    assert_ne!(th.key_hash(b"x"), th.value_hash(b"x"));
    assert_ne!(th.leaf_hash(&d, &d), th.node_hash(&d, &d));
}

#[test]
fn batched_hashes_are_the_one_by_one_hashes() {
    // Mixed lengths (one-block, two-block and long messages in one batch),
    // uniform lengths, and batches below and above the lanes' threshold.
    let mixed = inputs();
    let uniform: Vec<Vec<u8>> = (0..19).map(|i| vec![i as u8; 12]).collect();
    for th in TreeHash::ALL {
        for msgs in [&mixed, &uniform, &mixed[..2].to_vec(), &Vec::new()] {
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let mut out = vec![[0u8; 32]; refs.len()];
            th.hash_many(Ctx::Key, &refs, &mut out);
            let one: Vec<Digest> = refs.iter().map(|m| th.key_hash(m)).collect();
            assert_eq!(out, one, "{th:?} keys");
            th.hash_many(Ctx::Value, &refs, &mut out);
            let one: Vec<Digest> = refs.iter().map(|m| th.value_hash(m)).collect();
            assert_eq!(out, one, "{th:?} values");
        }
        let pairs: Vec<[Digest; 2]> = (0..21u8)
            .map(|i| [th.key_hash(&[i]), th.value_hash(&[i, i])])
            .collect();
        for n in [0, 1, 2, 3, 8, 21] {
            let mut out = vec![[0u8; 32]; n];
            th.hash_pairs(Ctx::Leaf, &pairs[..n], &mut out);
            let one: Vec<Digest> = pairs[..n]
                .iter()
                .map(|p| th.leaf_hash(&p[0], &p[1]))
                .collect();
            assert_eq!(out, one, "{th:?} leaves");
            th.hash_pairs(Ctx::Node, &pairs[..n], &mut out);
            let one: Vec<Digest> = pairs[..n]
                .iter()
                .map(|p| th.node_hash(&p[0], &p[1]))
                .collect();
            assert_eq!(out, one, "{th:?} nodes");
        }
    }
}

#[test]
fn chunks_decoded_together_equal_chunks_decoded_alone() {
    // decode_many hashes every chunk's leaves in one batch and their nodes level by
    // level: each chunk must get its own hashes back, whatever its neighbours.
    for th in TreeHash::ALL {
        let mut s = MemStore::new(th);
        let updates = (0..3000)
            .map(|i| {
                let (k, v) = (format!("key {i}"), format!("value {}", i * 3));
                s.update(k.as_bytes(), Some(v.as_bytes()))
            })
            .collect();
        s.apply(1, updates).unwrap();
        let chunks: Vec<(&[u8], u16)> = s
            .nodes
            .iter()
            .filter_map(|(k, v)| ChunkId::from_key(k).map(|id| (v.as_slice(), id.depth)))
            .collect();
        assert!(chunks.len() > 100, "{} chunks", chunks.len());
        let together = Chunk::decode_many(&chunks, th).unwrap();
        for ((raw, depth), c) in chunks.iter().zip(&together) {
            let alone = Chunk::decode(raw, *depth, th).unwrap();
            assert_eq!(c, &alone);
            // and against the definitions, one hash at a time
            for l in &c.leaves {
                assert_eq!(l.lh, th.leaf_hash(&l.kh, &l.vh));
            }
            for n in &c.nodes {
                let (a, b) = (c.slot_hash(n.left, th), c.slot_hash(n.right, th));
                assert_eq!(n.hash, th.node_hash(&a, &b));
            }
        }
        // One bad record among good ones is the error.
        let mut bad = chunks.clone();
        bad[7].0 = &bad[7].0[..bad[7].0.len() - 1];
        assert!(Chunk::decode_many(&bad, th).is_err());
    }
}

#[test]
fn names() {
    for th in TreeHash::ALL {
        assert_eq!(TreeHash::from_name(th.name()), Some(th));
    }
    assert_eq!(TreeHash::from_name("sm3"), Some(TreeHash::Sm3));
    assert_eq!(TreeHash::from_name("blake3"), Some(TreeHash::Blake3));
    assert_eq!(TreeHash::from_name("SM3"), None);
    assert_eq!(TreeHash::from_name("sha256"), None);
}

#[test]
fn sm3_and_blake3_roots_of_the_same_data_differ() {
    let mut rng = Rng(0xdead_beef_2026_0019);
    let (mut b, mut s) = (
        MemStore::new(TreeHash::Blake3),
        MemStore::new(TreeHash::Sm3),
    );
    assert_ne!(b.root().hash, s.root().hash);
    let mut state: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for version in 1..=20u64 {
        let batch = rng.batch(60, 200, 4, 9);
        b.apply(version, updates_of(TreeHash::Blake3, &batch))
            .unwrap();
        s.apply(version, updates_of(TreeHash::Sm3, &batch)).unwrap();
        for (k, v) in batch {
            match v {
                Some(v) => state.insert(k, v),
                None => state.remove(&k),
            };
        }
        assert_ne!(b.root().hash, s.root().hash, "version {version}");
        assert_eq!(b.root().hash, reference(TreeHash::Blake3, &state));
        assert_eq!(s.root().hash, reference(TreeHash::Sm3, &state));
        // Records are keyed by key hash: no record of one is a record of the other.
        assert!(s.nodes.keys().all(|k| {
            let is_leaf = k.len() == 42 && k[8..10] == [0xff, 0xff];
            !is_leaf || !b.nodes.contains_key(k)
        }));
    }
    // A tree read with the wrong hash is refused (its chunks do not match).
    let wrong = Updater::with_hash(
        TreeHash::Blake3,
        s.root(),
        99,
        vec![Update::with_hash(TreeHash::Blake3, b"k1", None)],
    );
    let mut wrong = wrong.unwrap();
    let want = wrong.wanted();
    assert!(
        wrong
            .supply(want.iter().map(|k| s.nodes.get(k)).collect())
            .is_err()
    );
}

#[test]
fn sm3_updater_bulk_and_cache_agree_over_a_larger_state() {
    // 3,000 keys, then batches of writes and deletions: the updater (with
    // and without a cache) against the definition, and the bulk build of
    // the final state against the updater's tree.
    let th = TreeHash::Sm3;
    let mut rng = Rng(0x0019_0019_0019_0019);
    let mut store = MemStore::new(th);
    let mut cached = MemStore::new(th);
    let mut cache = NodeCache::with_hash(th, 12, 1 << 20);
    let mut state: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for version in 1..=12u64 {
        let batch = if version == 1 {
            (0..3000)
                .map(|i| (format!("key {i}").into_bytes(), Some(vec![i as u8; 50])))
                .collect()
        } else {
            rng.batch(400, 3500, 3, 11)
                .into_iter()
                .map(|(k, v)| {
                    (
                        format!("key {}", &String::from_utf8(k).unwrap()[1..]).into_bytes(),
                        v,
                    )
                })
                .collect()
        };
        store.apply(version, updates_of(th, &batch)).unwrap();
        let out = apply_cached(&cached, &mut cache, version, updates_of(th, &batch)).unwrap();
        for k in &out.stale {
            cached.nodes.remove(k);
        }
        cached.nodes.extend(out.puts);
        cached.root = out.root;
        for (k, v) in batch {
            match v {
                Some(v) => state.insert(k, v),
                None => state.remove(&k),
            };
        }
        assert_eq!(
            store.root().hash,
            reference(th, &state),
            "version {version}"
        );
        assert_eq!(cached.root(), store.root());
        assert_eq!(cached.nodes, store.nodes);
        assert_eq!(reachable(&store), store.nodes.len());
    }
    assert!(!cache.is_empty());
    let mut b = BulkBuilder::with_hash(th, 7);
    for (k, v) in &state {
        b.add(k, v).unwrap();
    }
    assert_eq!(b.finish().unwrap().hash, store.root().hash);
    // Warming a cache from the store checks every chunk with the tree's hash.
    let mut warm = NodeCache::with_hash(th, 8, usize::MAX);
    let fetch = |keys: &[Vec<u8>]| -> Result<_, SmtError> {
        Ok(keys.iter().map(|k| store.nodes.get(k).cloned()).collect())
    };
    assert!(warm.warm(store.root(), fetch).unwrap() > 0);
    let mut wrong = NodeCache::with_hash(TreeHash::Blake3, 8, usize::MAX);
    assert!(wrong.warm(store.root(), fetch).is_err());
}

#[test]
fn a_cache_serves_one_hash() {
    let th = TreeHash::Sm3;
    let mut s = MemStore::new(th);
    let updates = (0..200u32)
        .map(|i| s.update(&i.to_le_bytes(), Some(b"v")))
        .collect();
    s.apply(1, updates).unwrap();
    let mut cache = NodeCache::with_hash(TreeHash::Blake3, 8, usize::MAX);
    cache.begin(s.root());
    let mut up = Updater::with_hash(th, s.root(), 2, vec![s.update(b"x", Some(b"y"))]).unwrap();
    assert!(matches!(
        up.resolve_from(&cache),
        Err(SmtError::Protocol(_))
    ));
    assert_eq!(cache.hash(), TreeHash::Blake3);
}

#[test]
fn trees_of_both_hashes_run_side_by_side_in_threads() {
    let expect: Vec<Digest> = TreeHash::ALL
        .iter()
        .map(|&th| {
            let mut rng = Rng(0x7777);
            let mut s = MemStore::new(th);
            for version in 1..=30 {
                s.apply(version, updates_of(th, &rng.batch(80, 500, 4, 9)))
                    .unwrap();
            }
            s.root().hash
        })
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let th = TreeHash::ALL[i % 2];
                scope.spawn(move || {
                    let mut rng = Rng(0x7777);
                    let mut s = MemStore::new(th);
                    let mut cache = NodeCache::with_hash(th, 8, usize::MAX);
                    for version in 1..=30 {
                        let updates = updates_of(th, &rng.batch(80, 500, 4, 9));
                        let out = apply_cached(&s, &mut cache, version, updates).unwrap();
                        for k in &out.stale {
                            s.nodes.remove(k);
                        }
                        s.nodes.extend(out.puts);
                        s.root = out.root;
                    }
                    (th, s.root().hash)
                })
            })
            .collect();
        for h in handles {
            let (th, root) = h.join().unwrap();
            let i = TreeHash::ALL.iter().position(|&x| x == th).unwrap();
            assert_eq!(root, expect[i], "{th:?}");
        }
    });
    assert_ne!(expect[0], expect[1]);
}

#[test]
fn the_constructors_without_a_hash_are_blake3_and_hashes_do_not_mix() {
    let b = TreeHash::Blake3;
    let u = Update::new(b"k", Some(b"v"));
    assert_eq!(
        (u.kh, u.vh, u.hash),
        (b.key_hash(b"k"), b.value_hash(b"v"), b)
    );
    assert_eq!(NodeCache::new(4).hash(), b);
    assert_eq!(NodeCache::with_budget(4, 1000).hash(), b);
    assert_eq!(MemStore::default().hash, b);
    let mut bulk = BulkBuilder::new(0);
    bulk.add(b"k", b"v").unwrap();
    let mut store = MemStore::default();
    store.apply(0, vec![u.clone()]).unwrap();
    assert_eq!(bulk.finish().unwrap(), store.root());
    let up = Updater::new(Child::empty(b), 0, vec![u.clone()]).unwrap();
    assert_eq!(up.finish().unwrap().root, store.root);
    // An SM3 update in a BLAKE3 batch (or the reverse) is refused.
    let sm3 = Update::with_hash(TreeHash::Sm3, b"j", None);
    assert!(matches!(
        Updater::new(Child::empty(b), 1, vec![u.clone(), sm3.clone()]),
        Err(SmtError::Protocol(_))
    ));
    let empty = Child::empty(TreeHash::Sm3);
    assert!(matches!(
        Updater::with_hash(TreeHash::Sm3, empty, 1, vec![sm3, u]),
        Err(SmtError::Protocol(_))
    ));
}
