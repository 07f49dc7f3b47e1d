use super::*;

fn openings(n: usize) -> Vec<[u8; 32]> {
    (0..n).map(|_| random_opening()).collect()
}

fn refs(v: &[[u8; 32]]) -> Vec<&[u8]> {
    v.iter().map(|x| &x[..]).collect()
}

#[test]
fn generators_agree_between_libraries() {
    // The Bulletproofs+ parameters use solana-zk-sdk's G (value) and H
    // (blinding), so one commitment serves range proofs and ciphertexts.
    let gens = range_params(64, 1).pc_gens();
    assert_eq!(
        gens.h_base.compress().to_bytes(),
        pedersen::G.compress().to_bytes()
    );
    assert_eq!(
        gens.g_base_vec[0].compress().to_bytes(),
        H_COMPRESSED.to_bytes()
    );
    let r = random_opening();
    let (_, cs) = range_prove(&[77], &[&r], 64, b"").unwrap();
    assert_eq!(commit(77, &r).unwrap(), cs[0]);
}

#[test]
fn commitments_are_homomorphic() {
    let (a, b) = (random_opening(), random_opening());
    let ca = commit(1000, &a).unwrap();
    let cb = commit(234, &b).unwrap();
    let sum = commitment_sum(&[&ca, &cb], &[]).unwrap().unwrap();
    let rs = opening_sum(&[&a, &b], &[]).unwrap();
    assert_eq!(sum, commit(1234, &rs).unwrap());
    let diff = commitment_sum(&[&ca], &[&cb]).unwrap().unwrap();
    let rd = opening_sum(&[&a], &[&b]).unwrap();
    assert_eq!(diff, commit(766, &rd).unwrap());
    assert!(commitments_balance(&[&sum], &[&ca, &cb]).unwrap());
    assert!(!commitments_balance(&[&sum], &[&ca]).unwrap());
    assert!(!commitments_balance(&[&[0xffu8; 32][..]], &[&ca]).unwrap());
    assert_eq!(commitment_sum(&[&[1u8; 31][..]], &[]).unwrap(), None);
    assert!(commit(1, &[0xff; 32]).is_err()); // non-canonical opening
    let many = vec![&ca[..]; MAX_SUM_TERMS + 1];
    assert!(commitment_sum(&many, &[]).is_err());
}

#[test]
fn split_balances_when_openings_sum_to_parent() {
    let parent_r = random_opening();
    let parent = commit(10_000_000, &parent_r).unwrap();
    let r1 = random_opening();
    let r2 = opening_sum(&[&parent_r], &[&r1]).unwrap();
    let p1 = commit(5_000_000, &r1).unwrap();
    let p2 = commit(5_000_000, &r2).unwrap();
    assert!(commitments_balance(&[&parent], &[&p1, &p2]).unwrap());
    let p2_bad = commit(5_000_001, &r2).unwrap();
    assert!(!commitments_balance(&[&parent], &[&p1, &p2_bad]).unwrap());
}

fn sc(n: u64) -> [u8; 32] {
    Scalar::from(n).to_bytes()
}

#[test]
fn group_order_is_the_scalar_modulus() {
    assert_eq!(Scalar::from_bytes_mod_order(GROUP_ORDER), Scalar::ZERO);
    assert!(decode_scalar(&GROUP_ORDER).is_none());
    // ℓ − 1 is −1, the largest canonical scalar.
    let mut l_minus_1 = GROUP_ORDER;
    l_minus_1[0] -= 1;
    assert_eq!((-Scalar::ONE).to_bytes(), l_minus_1);
}

#[test]
fn lincomb_of_commitments_commits_to_lincomb_of_amounts_and_openings() {
    let r = openings(3);
    let amounts = [7u64, 1_000_000, 3];
    let cs: Vec<[u8; 32]> = (0..3).map(|i| commit(amounts[i], &r[i]).unwrap()).collect();
    // 5·7 + 2·1_000_000 − 4·3 (−4 as ℓ − 4).
    let ks = [sc(5), sc(2), (-Scalar::from(4u64)).to_bytes()];
    let c = commitment_lincomb(&refs(&cs), &refs(&ks)).unwrap().unwrap();
    let o = opening_lincomb(&refs(&r), &refs(&ks)).unwrap();
    assert_eq!(c, commit(35 + 2_000_000 - 12, &o).unwrap());
    // Coefficients 1 and −1 are commitment_sum / opening_sum.
    let ones = [sc(1), sc(1), (-Scalar::ONE).to_bytes()];
    assert_eq!(
        commitment_lincomb(&refs(&cs), &refs(&ones)).unwrap(),
        commitment_sum(&[&cs[0], &cs[1]], &[&cs[2]]).unwrap()
    );
    assert_eq!(
        opening_lincomb(&refs(&r), &refs(&ones)).unwrap(),
        opening_sum(&[&r[0], &r[1]], &[&r[2]]).unwrap()
    );
    // Empty: the identity, opening 0.
    assert_eq!(commitment_lincomb(&[], &[]).unwrap(), Some([0; 32]));
    assert_eq!(opening_lincomb(&[], &[]).unwrap(), [0; 32]);
}

#[test]
fn limbs_recombine() {
    let v = 0xdead_beef_0123_4567u64;
    let (lo, hi) = (v & 0xffff_ffff, v >> 32);
    let r = openings(2);
    let c_lo = commit(lo, &r[0]).unwrap();
    let c_hi = commit(hi, &r[1]).unwrap();
    let ks = [sc(1), sc(1 << 32)];
    let c = commitment_lincomb(&[&c_lo, &c_hi], &refs(&ks))
        .unwrap()
        .unwrap();
    let o = opening_lincomb(&refs(&r), &refs(&ks)).unwrap();
    assert_eq!(c, commit(v, &o).unwrap());
    assert_ne!(c, commit(v + 1, &o).unwrap());
}

#[test]
fn lincomb_refusals() {
    let r = random_opening();
    let c = commit(1, &r).unwrap();
    let one = sc(1);
    // Malformed point or non-canonical scalar: None; openings: an error.
    assert_eq!(
        commitment_lincomb(&[&c, &[0xff; 32]], &[&one, &one]).unwrap(),
        None
    );
    assert_eq!(commitment_lincomb(&[&c[..31]], &[&one]).unwrap(), None);
    assert_eq!(commitment_lincomb(&[&c], &[&GROUP_ORDER]).unwrap(), None);
    assert_eq!(commitment_lincomb(&[&c], &[&one[..31]]).unwrap(), None);
    assert!(opening_lincomb(&[&r], &[&GROUP_ORDER]).is_err());
    assert!(opening_lincomb(&[&[0xff; 32]], &[&one]).is_err());
    // Shapes and bounds.
    assert!(commitment_lincomb(&[&c, &c], &[&one]).is_err());
    assert!(opening_lincomb(&[&r], &[&one, &one]).is_err());
    let many = vec![&c[..]; MAX_SUM_TERMS + 1];
    let ks = vec![&one[..]; MAX_SUM_TERMS + 1];
    assert!(commitment_lincomb(&many, &ks).is_err());
    assert!(opening_lincomb(&many, &ks).is_err());
    let full = commitment_lincomb(&many[1..], &ks[1..]).unwrap().unwrap();
    let rs = vec![&r[..]; MAX_SUM_TERMS];
    let o = opening_lincomb(&rs, &ks[1..]).unwrap();
    assert_eq!(full, commit(MAX_SUM_TERMS as u64, &o).unwrap());
}

#[test]
fn range_round_trip_and_sizes() {
    for (m, bits) in [(1, 64), (2, 64), (3, 32), (4, 64), (8, 8)] {
        let r = openings(m);
        let amounts: Vec<u64> = (0..m as u64)
            .map(|i| {
                if bits == 64 {
                    u64::MAX - i
                } else {
                    (1 << bits) - 1 - i
                }
            })
            .collect();
        let (proof, cs) = range_prove(&amounts, &refs(&r), bits, b"tx-1").unwrap();
        assert_eq!(proof.len(), range_proof_len(m, bits));
        for (i, c) in cs.iter().enumerate() {
            assert_eq!(*c, commit(amounts[i], &r[i]).unwrap());
        }
        assert!(range_verify(&proof, &refs(&cs), bits, b"tx-1").unwrap());
        // Another context, another bit length, fewer commitments: refused.
        assert!(!range_verify(&proof, &refs(&cs), bits, b"tx-2").unwrap());
        assert!(!range_verify(&proof, &refs(&cs[..m - 1]), bits, b"tx-1").unwrap());
        let other_bits = if bits == 64 { 32 } else { 64 };
        assert!(!range_verify(&proof, &refs(&cs), other_bits, b"tx-1").unwrap());
    }
    assert_eq!(range_proof_len(1, 64), 577);
    assert_eq!(range_proof_len(2, 64), 641);
    assert_eq!(range_proof_len(4, 64), 705);
}

#[test]
fn range_prover_refuses_bad_input() {
    let r = openings(9);
    assert!(range_prove(&[256], &refs(&r[..1]), 8, b"").is_err());
    assert!(range_prove(&[1], &refs(&r[..1]), 12, b"").is_err());
    assert!(range_prove(&[], &[], 64, b"").is_err());
    assert!(range_prove(&[1; 9], &refs(&r), 64, b"").is_err());
    assert!(range_prove(&[1, 2], &refs(&r[..1]), 64, b"").is_err());
    assert!(range_prove(&[1], &refs(&r[..1]), 64, &[0; MAX_CONTEXT_LEN + 1]).is_err());
}

#[test]
fn tampered_range_proofs_and_commitments_fail() {
    let r = openings(2);
    let (proof, cs) = range_prove(&[5, 6], &refs(&r), 64, b"ctx").unwrap();
    for i in (0..proof.len()).step_by(17) {
        let mut bad = proof.clone();
        bad[i] ^= 1;
        assert!(
            !range_verify(&bad, &refs(&cs), 64, b"ctx").unwrap(),
            "byte {i}"
        );
    }
    assert!(!range_verify(&proof[1..], &refs(&cs), 64, b"ctx").unwrap());
    assert!(!range_verify(&[], &refs(&cs), 64, b"ctx").unwrap());
    let other = commit(5, &random_opening()).unwrap();
    assert!(!range_verify(&proof, &[&other, &cs[1]], 64, b"ctx").unwrap());
    assert!(!range_verify(&proof, &[&[0xff; 32][..], &cs[1]], 64, b"ctx").unwrap());
    assert!(!range_verify(&proof, &[&cs[0][..31], &cs[1]], 64, b"ctx").unwrap());
    assert!(!range_verify(&proof, &[&cs[1], &cs[0]], 64, b"ctx").unwrap());
    assert!(!range_verify(&proof, &[], 64, b"ctx").unwrap());
    assert!(range_verify(&proof, &refs(&cs), 65, b"ctx").is_err());
}

#[test]
fn out_of_range_amount_cannot_be_proved_by_wrapping() {
    // 2^64 + 5 ≡ a commitment the prover cannot open within 64 bits: a proof
    // for the in-range 5 does not verify against it.
    let r = random_opening();
    let (proof, _) = range_prove(&[5], &[&r], 64, b"").unwrap();
    let two64 = commit(u64::MAX, &[0; 32]).unwrap();
    let one = commit(1, &[0; 32]).unwrap();
    let c5 = commit(5, &r).unwrap();
    let big = commitment_sum(&[&c5, &two64, &one], &[]).unwrap().unwrap();
    assert!(!range_verify(&proof, &[&big], 64, b"").unwrap());
}

#[test]
fn batch_equals_single_with_bad_items_mixed_in() {
    let n = 70;
    let mut proofs = Vec::new();
    let mut commitments = Vec::new();
    let mut contexts = Vec::new();
    for i in 0..n {
        let m = [1, 2, 4][i % 3];
        let r = openings(m);
        let amounts: Vec<u64> = (0..m as u64).map(|j| i as u64 * 1000 + j).collect();
        let ctx = format!("tx-{i}").into_bytes();
        let (p, cs) = range_prove(&amounts, &refs(&r), 64, &ctx).unwrap();
        proofs.push(p);
        commitments.push(cs);
        contexts.push(ctx);
    }
    proofs[3][100] ^= 1;
    contexts[7] = b"replayed".to_vec();
    // Dense failures in one group (amount count 4 is every third item).
    for i in [41, 44, 47, 50] {
        contexts[i].push(b'!');
    }
    commitments[11][0] = [0xee; 32];
    proofs[20].truncate(10);
    let swap = commitments[30][0];
    commitments[30][0] = commitments[31][0];
    commitments[31][0] = swap;
    let items: Vec<RangeItem> = (0..n)
        .map(|i| RangeItem {
            proof: &proofs[i],
            commitments: refs(&commitments[i]),
            context: &contexts[i],
        })
        .collect();
    let batch = range_verify_batch(&items, 64).unwrap();
    let single: Vec<bool> = items
        .iter()
        .map(|it| range_verify(it.proof, &it.commitments, 64, it.context).unwrap())
        .collect();
    assert_eq!(batch, single);
    let bad = [3, 7, 11, 20, 30, 31, 41, 44, 47, 50];
    assert_eq!(batch, (0..n).map(|i| !bad.contains(&i)).collect::<Vec<_>>());
    assert!(range_verify_batch(&[], 64).unwrap().is_empty());
}

fn keys(n: u8) -> Vec<([u8; 32], [u8; 32])> {
    (0..n)
        .map(|i| elgamal_keypair(&[i + 1; 32]).unwrap())
        .collect()
}

#[test]
fn keypairs_are_deterministic() {
    let (s1, p1) = elgamal_keypair(&[7; 32]).unwrap();
    let (s2, p2) = elgamal_keypair(&[7; 32]).unwrap();
    assert_eq!((s1, p1), (s2, p2));
    assert_ne!(elgamal_keypair(&[8; 32]).unwrap().1, p1);
    assert!(elgamal_keypair(&[7; 31]).is_err());
    // public = secret^-1 * H
    let s = decode_scalar(&s1).unwrap();
    assert_eq!((s.invert() * *pedersen::H).compress().to_bytes(), p1);
}

#[test]
fn grouped_encryption_decrypts_for_each_key_only() {
    let ks = keys(3);
    let pubs: Vec<&[u8]> = ks.iter().map(|k| &k.1[..]).collect();
    let r = random_opening();
    let amount = 4_000_000_123u64;
    let (c, handles) = grouped_encrypt(amount, &r, &pubs).unwrap();
    assert_eq!(c, commit(amount, &r).unwrap());
    for (i, (secret, _)) in ks.iter().enumerate() {
        assert_eq!(
            elgamal_decrypt(secret, &c, &handles[i]).unwrap(),
            Some(amount)
        );
        assert!(elgamal_decrypts_to(secret, &c, &handles[i], amount).unwrap());
        assert!(!elgamal_decrypts_to(secret, &c, &handles[i], amount + 1).unwrap());
    }
    // Another key's handle does not open it.
    assert_eq!(elgamal_decrypt(&ks[0].0, &c, &handles[1]).unwrap(), None);
    assert!(!elgamal_decrypts_to(&ks[0].0, &c, &handles[1], amount).unwrap());
    // Above the discrete-log bound: no plaintext, but the claim checks.
    let big = 1u64 << 40;
    let (cb, hb) = grouped_encrypt(big, &r, &pubs[..1]).unwrap();
    assert_eq!(elgamal_decrypt(&ks[0].0, &cb, &hb[0]).unwrap(), None);
    assert!(elgamal_decrypts_to(&ks[0].0, &cb, &hb[0], big).unwrap());
    assert_eq!(
        elgamal_decrypt(&ks[0].0, &[0xff; 32], &hb[0]).unwrap(),
        None
    );
    assert!(elgamal_decrypt(&[0xff; 32], &cb, &hb[0]).is_err());
    assert!(grouped_encrypt(1, &r, &[]).is_err());
    assert!(grouped_encrypt(1, &r, &[&[0u8; 32][..]]).is_err()); // identity key
}

#[test]
fn validity_round_trip_and_rejections() {
    let ks = keys(4);
    for k in 1..=4 {
        let pubs: Vec<&[u8]> = ks[..k].iter().map(|x| &x.1[..]).collect();
        let r = random_opening();
        let (c, hs) = grouped_encrypt(99, &r, &pubs).unwrap();
        let proof = validity_prove(99, &r, &pubs, b"tx-9").unwrap();
        assert_eq!(proof.len(), validity_proof_len(k));
        assert_eq!(proof.len(), 32 * (3 + k));
        let h = refs(&hs);
        assert!(validity_verify(&proof, &c, &h, &pubs, b"tx-9").unwrap());
        assert!(!validity_verify(&proof, &c, &h, &pubs, b"tx-8").unwrap());
        assert!(!validity_verify(&proof[..proof.len() - 1], &c, &h, &pubs, b"tx-9").unwrap());
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] ^= 0x10;
            assert!(!validity_verify(&bad, &c, &h, &pubs, b"tx-9").unwrap());
        }
        // A handle for a key the prover did not encrypt to.
        let stranger = elgamal_keypair(&[0xaa; 32]).unwrap().1;
        let mut wrong_keys = pubs.clone();
        wrong_keys[k - 1] = &stranger;
        assert!(!validity_verify(&proof, &c, &h, &wrong_keys, b"tx-9").unwrap());
        // A handle that does not match the commitment's opening.
        let (_, other_hs) = grouped_encrypt(99, &random_opening(), &pubs).unwrap();
        let mut mixed = h.clone();
        mixed[0] = &other_hs[0];
        assert!(!validity_verify(&proof, &c, &mixed, &pubs, b"tx-9").unwrap());
        // Malformed points are false, never a panic.
        let mut garbage = h.clone();
        garbage[0] = &[0xff; 32];
        assert!(!validity_verify(&proof, &c, &garbage, &pubs, b"tx-9").unwrap());
        assert!(!validity_verify(&proof, &[0xff; 32], &h, &pubs, b"tx-9").unwrap());
        let mut ident = pubs.clone();
        ident[0] = &[0; 32];
        assert!(!validity_verify(&proof, &c, &h, &ident, b"tx-9").unwrap());
        assert!(!validity_verify(&proof, &c, &h[..k - 1], &pubs, b"tx-9").unwrap());
    }
    // A ciphertext whose handle uses another opening than its commitment.
    let pubs: Vec<&[u8]> = ks[..2].iter().map(|x| &x.1[..]).collect();
    let (r1, r2) = (random_opening(), random_opening());
    let (c, _) = grouped_encrypt(5, &r1, &pubs).unwrap();
    let (_, hs2) = grouped_encrypt(5, &r2, &pubs).unwrap();
    let forged = validity_prove(5, &r1, &pubs, b"").unwrap();
    assert!(!validity_verify(&forged, &c, &refs(&hs2), &pubs, b"").unwrap());
    assert_eq!(VALIDITY_PROOF_LEN, 128);
    let five: Vec<&[u8]> = vec![&ks[0].1; 5];
    assert!(validity_prove(5, &r1, &five, b"").is_err());
    assert!(validity_verify(&forged, &c, &refs(&hs2), &five, b"").is_err());
}

#[test]
fn validity_batch_equals_single() {
    let ks = keys(3);
    let pubs: Vec<&[u8]> = ks.iter().map(|x| &x.1[..]).collect();
    let n = 30;
    let mut rows = Vec::new();
    for i in 0..n {
        let k = 1 + i % 3;
        let r = random_opening();
        let (c, hs) = grouped_encrypt(i as u64, &r, &pubs[..k]).unwrap();
        let ctx = vec![i as u8; 8];
        let proof = validity_prove(i as u64, &r, &pubs[..k], &ctx).unwrap();
        rows.push((proof, c, hs, k, ctx));
    }
    rows[2].0[5] ^= 1;
    rows[9].4 = b"other".to_vec();
    rows[17].1 = [0xff; 32];
    let items: Vec<ValidityItem> = rows
        .iter()
        .map(|(p, c, hs, k, ctx)| ValidityItem {
            proof: p,
            commitment: c,
            handles: refs(hs),
            pubkeys: pubs[..*k].to_vec(),
            context: ctx,
        })
        .collect();
    let batch = validity_verify_batch(&items).unwrap();
    let single: Vec<bool> = items
        .iter()
        .map(|it| {
            validity_verify(
                it.proof,
                it.commitment,
                &it.handles,
                &it.pubkeys,
                it.context,
            )
            .unwrap()
        })
        .collect();
    assert_eq!(batch, single);
    assert_eq!(
        batch,
        (0..n).map(|i| ![2, 9, 17].contains(&i)).collect::<Vec<_>>()
    );
}

/// Verdicts of `validity_verify` item by item.
fn validity_singles(items: &[ValidityItem]) -> Vec<bool> {
    items
        .iter()
        .map(|it| {
            validity_verify(
                it.proof,
                it.commitment,
                &it.handles,
                &it.pubkeys,
                it.context,
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn validity_batch_mixed_bad_proofs_keep_single_verdicts() {
    // Mostly one key (what a confidential amount carries), so whole chunks
    // are batch verified and narrowed; bad proofs of every kind mixed in,
    // sparse and in runs, and the identity ciphertext (opening 0), which the
    // batch verifier refuses but a single verification accepts.
    let ks = keys(2);
    let pubs: Vec<&[u8]> = ks.iter().map(|x| &x.1[..]).collect();
    let n = 300;
    let mut rows = Vec::new();
    for i in 0..n {
        let k = if i % 37 == 5 { 2 } else { 1 };
        let r = if i == 77 { [0u8; 32] } else { random_opening() };
        let amount = if i == 77 { 0 } else { 1_000 + i as u64 };
        let (c, hs) = grouped_encrypt(amount, &r, &pubs[..k]).unwrap();
        let ctx = format!("tx-{i}").into_bytes();
        let proof = validity_prove(amount, &r, &pubs[..k], &ctx).unwrap();
        rows.push((proof, c, hs, k, ctx));
    }
    let mut bad = Vec::new();
    for i in [3, 4, 5, 6, 150, 299] {
        let j = (i * 7) % rows[i].0.len();
        rows[i].0[j] ^= 0x40; // tampered byte (commitment or response)
        bad.push(i);
    }
    for i in [20, 21, 120] {
        rows[i].4 = b"another transaction".to_vec(); // other context
        bad.push(i);
    }
    // A proof from another row (its statement differs).
    rows[200].0 = rows[201].0.clone();
    bad.push(200);
    // A handle from another opening.
    rows[230].2[0] = rows[231].2[0];
    bad.push(230);
    // Undecodable commitment, wrong length.
    rows[240].1 = [0xff; 32];
    rows[250].0.truncate(100);
    bad.extend([240, 250]);
    // A dense run of failures.
    for (i, row) in rows.iter_mut().enumerate().take(280).skip(260) {
        row.4.push(b'!');
        bad.push(i);
    }
    let items: Vec<ValidityItem> = rows
        .iter()
        .map(|(p, c, hs, k, ctx)| ValidityItem {
            proof: p,
            commitment: c,
            handles: refs(hs),
            pubkeys: pubs[..*k].to_vec(),
            context: ctx,
        })
        .collect();
    let single = validity_singles(&items);
    let expected: Vec<bool> = (0..n).map(|i| !bad.contains(&i)).collect();
    assert_eq!(single, expected);
    assert!(single[77], "the identity ciphertext's proof is valid");
    for _ in 0..3 {
        assert_eq!(validity_verify_batch(&items).unwrap(), expected);
    }
    // Every sub-batch too (chunking and narrowing vary with its size).
    for (lo, hi) in [(0, 1), (0, 2), (3, 7), (77, 78), (100, 260), (255, 300)] {
        assert_eq!(
            validity_verify_batch(&items[lo..hi]).unwrap(),
            expected[lo..hi]
        );
    }
    assert!(validity_verify_batch(&[]).unwrap().is_empty());
}
