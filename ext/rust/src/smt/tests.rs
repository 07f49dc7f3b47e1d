//! The state tree against its definition ([`root_of`]) over random batches,
//! and the record codec, cache and bulk builder against the updater.

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
            let value = (self.next() % delete_one_in != 0)
                .then(|| format!("v{}", self.next() % values).into_bytes());
            batch.insert(key, value);
        }
        batch
    }
}

/// The updates of a `Rng::batch`.
fn updates_of(batch: &HashMap<Vec<u8>, Option<Vec<u8>>>) -> Vec<Update> {
    batch
        .iter()
        .map(|(k, v)| Update::new(k, v.as_deref()))
        .collect()
}

fn reference(state: &HashMap<Vec<u8>, Vec<u8>>) -> Digest {
    let entries: Vec<_> = state
        .iter()
        .map(|(k, v)| (key_hash(k), value_hash(v)))
        .collect();
    root_of(&entries)
}

/// Records reachable from the root (chunks and leaves), each checked.
fn reachable(store: &MemStore) -> usize {
    fn slot(store: &MemStore, c: &Chunk, s: Slot, depth: u16, path: Digest) -> usize {
        match s {
            Slot::Empty => 0,
            Slot::Leaf(i) => {
                let l = c.leaves[usize::from(i)];
                let (k, v, _) = decode_leaf(&store.nodes[&leaf_key(l.version, &l.kh)]).unwrap();
                assert_eq!((k, v, leaf_hash(&k, &v)), (l.kh, l.vh, l.lh));
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
                let child = Chunk::decode(raw, depth).unwrap();
                assert_eq!(child.hash(), kid.hash);
                assert_eq!(&child.encode(), raw, "canonical encoding");
                1 + slot(store, &child, child.root, depth, path)
            }
        }
    }
    let root = store.root();
    if root.is_empty() {
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
    let mut s = MemStore::default();
    assert_eq!(s.root().hash, empty_hash());
    s.apply(1, vec![Update::new(b"a", Some(b"1"))]).unwrap();
    assert_eq!(s.root().hash, leaf_hash(&key_hash(b"a"), &value_hash(b"1")));
    assert_eq!(s.nodes.len(), 2); // the root chunk (a leaf at the top) and the leaf
    assert_eq!(reachable(&s), 2);
    s.apply(2, vec![Update::new(b"a", None)]).unwrap();
    assert_eq!(s.root().hash, empty_hash());
    assert!(s.nodes.is_empty());
}

#[test]
fn random_batches_match_reference_and_history_is_compact() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut store = MemStore::default();
    let mut state: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for version in 1..=60u64 {
        let batch = rng.batch(40, 120, 3, 7);
        store.apply(version, updates_of(&batch)).unwrap();
        for (k, v) in batch {
            match v {
                Some(v) => state.insert(k, v),
                None => state.remove(&k),
            };
        }
        assert_eq!(store.root().hash, reference(&state), "version {version}");
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
    // Chunks not kept decoded are encoded straight from the new nodes:
    // same records, byte for byte, as through decoded chunks.
    let mut rng = Rng(0x5151_2026_7777_0001);
    let mut store = MemStore::default();
    for version in 1..=40u64 {
        let batch = rng.batch(200, 3000, 5, 9);
        let updates = || updates_of(&batch);
        let run = |keep: u16| {
            let mut up = Updater::new(store.root(), version, updates()).unwrap();
            up.keep_chunks_below(keep);
            loop {
                let want = up.wanted();
                if want.is_empty() {
                    break;
                }
                up.supply(want.iter().map(|k| store.nodes.get(k)).collect())
                    .unwrap();
            }
            up.finish().unwrap()
        };
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

#[test]
fn batching_and_order_do_not_change_the_root() {
    let items: Vec<(Vec<u8>, Vec<u8>)> = (0..500u32)
        .map(|i| (i.to_le_bytes().to_vec(), (i * 7).to_le_bytes().to_vec()))
        .collect();
    let mut one = MemStore::default();
    one.apply(
        1,
        items.iter().map(|(k, v)| Update::new(k, Some(v))).collect(),
    )
    .unwrap();
    let mut many = MemStore::default();
    for (version, chunk) in items.rchunks(37).enumerate() {
        many.apply(
            version as u64 + 1,
            chunk.iter().map(|(k, v)| Update::new(k, Some(v))).collect(),
        )
        .unwrap();
    }
    assert_eq!(one.root().hash, many.root().hash);
    // Deleting all but one key brings back the single-leaf root.
    many.apply(
        100,
        items[1..]
            .iter()
            .map(|(k, _)| Update::new(k, None))
            .collect(),
    )
    .unwrap();
    assert_eq!(
        many.root().hash,
        leaf_hash(&key_hash(&items[0].0), &value_hash(&items[0].1))
    );
    assert_eq!(many.nodes.len(), 2);
}

#[test]
fn missing_and_damaged_records_are_errors() {
    let mut s = MemStore::default();
    s.apply(
        1,
        (0..40u8).map(|i| Update::new(&[i], Some(b"x"))).collect(),
    )
    .unwrap();
    let all: Vec<Update> = (0..40u8).map(|i| Update::new(&[i], Some(b"y"))).collect();
    let chunk_keys: Vec<Vec<u8>> = s
        .nodes
        .iter()
        .filter(|(_, v)| v[0] == TAG_CHUNK)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(chunk_keys.len() > 1);
    for key in &chunk_keys {
        let mut missing = MemStore {
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
        let original = Chunk::decode(&s.nodes[key], depth).unwrap();
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
                nodes: s.nodes.clone(),
                root: s.root,
            };
            flipped.nodes.get_mut(key).unwrap()[i] ^= 0x40;
            if let Ok(c) = Chunk::decode(&flipped.nodes[key], depth)
                && unversioned(&c) == unversioned(&original)
            {
                continue; // a leaf version
            }
            let r = flipped.apply(2, all.clone());
            assert!(r.is_err(), "byte {i} depth {depth} {:?}", r.map(|o| o.root));
        }
    }
    assert!(matches!(
        Updater::new(
            s.root(),
            2,
            vec![Update::new(b"a", None), Update::new(b"a", Some(b"1"))]
        ),
        Err(SmtError::DuplicateKey)
    ));
    assert!(Chunk::decode(&[], 0).is_err());
    assert!(Chunk::decode(&[TAG_CHUNK, SLOT_EMPTY], 0).is_err());
    let leaf = |b: u8| {
        let mut v = vec![SLOT_LEAF];
        v.extend_from_slice(&[b; 72]);
        v
    };
    let mut two = vec![TAG_CHUNK, SLOT_INNER];
    two.extend(leaf(1));
    two.extend(leaf(2));
    assert!(Chunk::decode(&two, 0).is_ok());
    assert!(Chunk::decode(&two, 2).is_err(), "depth not a chunk depth");
    let mut lone = vec![TAG_CHUNK, SLOT_INNER, SLOT_EMPTY];
    lone.extend(leaf(1));
    assert!(Chunk::decode(&lone, 0).is_err(), "one leaf below a node");
    assert!(Chunk::decode(&[two.clone(), vec![0]].concat(), 0).is_err());
    assert!(decode_leaf(&[TAG_LEAF; 64]).is_err());
}

#[test]
fn bulk_build_equals_one_batch_and_emits_in_key_order() {
    for n in [0usize, 1, 2, 3, 17, 1000, 5000] {
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|i| (format!("k{i}").into_bytes(), vec![i as u8; i % 5]))
            .collect();
        let mut batch = MemStore::default();
        batch
            .apply(
                0,
                items.iter().map(|(k, v)| Update::new(k, Some(v))).collect(),
            )
            .unwrap();
        let mut b = BulkBuilder::new(0);
        for (k, v) in items.iter().rev() {
            b.add(k, v).unwrap();
        }
        let root = b.finish().unwrap();
        assert_eq!(root, batch.root(), "n = {n}");
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
    let mut dup = BulkBuilder::new(0);
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
    let mut up = Updater::new(store.root(), version, updates)?;
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
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut store = MemStore::default();
    let mut plain = MemStore::default();
    let mut cache = NodeCache::new(8);
    for version in 1..=80u64 {
        let batch = rng.batch(50, 300, 4, 9);
        let updates = || updates_of(&batch);
        if rng.next() % 4 == 0 {
            // A batch computed at this version but never committed: its
            // records (same keys as the real batch's, other contents) must
            // not be served afterwards.
            let mut other = updates();
            other.push(Update::new(b"aborted", Some(b"x")));
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
        assert_eq!(store.root(), plain.root(), "version {version}");
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
