//! The finance records against bytes Python produced. Every hex string below is the output
//! of `tierchain.apps.finance.codes` (run from the worktree's `core/`):
//!
//! ```python
//! from tierchain.apps.finance import codes as c
//! c.Piece(bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48)), 3, 1, 123456789,
//!         bytes(range(48, 64)), 2, 3, bytes(range(64, 80)), 5000, 1_700_000_000_000, 0, 42,
//!         (c.HistoryEntry(2, 41, bytes(range(80, 96)), 123456789),
//!          c.HistoryEntry(4, 42, bytes(range(64, 80)), 5000))).encode().hex()
//! c.Voucher(b"\x01" * 16, b"\x02" * 16, 10_000, 2_000_000, 7, 1_000_000, 1, 0, 0,
//!           bytes(range(100, 132)), ((2, b"\x09" * 32),)).encode().hex()
//! c.KeyRecord(b"\x05" * 16, 1, 3, 0).encode().hex()
//! c.OrgRecord(8, 1, 2, 9, b"Tier1").encode().hex()
//! c.Params(1, 5, 250, 86_400_000).encode().hex()
//! c.RegistryEntry(10_000, 2_500).encode().hex()
//! c.child_id(bytes(range(16)), 0).hex(), c.child_id(bytes(range(16)), 7).hex()
//! c.voucher_id(bytes(range(100, 132)), bytes(range(32)), 7).hex()
//! c.voucher_id(bytes(range(100, 132)), b"\x05" * 33, 2**64 - 1).hex()
//! ```

use super::*;

const PIECE: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f030115cd5b0700000000303132333435363738393a3b3c3d3e3f0203404142434445464748494a4b4c4d4e4f88130000000000000068e5cf8b010000002a0000000000000002022900000000000000505152535455565758595a5b5c5d5e5f15cd5b0700000000042a00000000000000404142434445464748494a4b4c4d4e4f8813000000000000";
const VOUCHER: &str = "0101010101010101010101010101010102020202020202020202020202020202102700000000000080841e0000000000070000000000000040420f000000000001000000000000000000006465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828301020909090909090909090909090909090909090909090909090909090909090909";
const KEY: &str = "050505050505050505050505050505050103000000000000000000000000000000";
const ORG: &str = "080000000102000900000000000000055469657231";
const PARAMS: &str = "0105fa00000000000000005c260500000000";
const REG: &str = "1027000000000000c40900000000000000";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ids(start: u8) -> [u8; 16] {
    std::array::from_fn(|i| start + i as u8)
}

fn code(r: Result<impl std::fmt::Debug, Fail>) -> u16 {
    match r {
        Err(Fail::Code(c)) => c,
        other => panic!("not a code: {:?}", other.map(|_| ()).is_ok()),
    }
}

#[test]
fn a_piece_decodes_and_encodes_to_pythons_bytes() {
    let raw = hex(PIECE);
    let p = Piece::decode(&raw).ok().unwrap();
    assert_eq!(p.voucher, ids(0));
    assert_eq!(p.parent, ids(16));
    assert_eq!(p.root, ids(32));
    assert_eq!((p.depth, p.index, p.amount), (3, 1, 123456789));
    assert_eq!(p.holder, ids(48));
    assert_eq!((p.state, p.offer_kind), (2, 3));
    assert_eq!(p.counterparty, ids(64));
    assert_eq!(
        (p.price, p.due_ms, p.children, p.created_height),
        (5000, 1_700_000_000_000, 0, 42)
    );
    assert_eq!(p.history_len(), 2);
    assert_eq!(p.encode().ok().unwrap(), raw);
    // A new entry is appended exactly as Python packs it (the second entry, re-logged).
    let mut q = p.clone();
    q.history.truncate(Piece::HIST);
    q.log(event::OFFERED, 42, &ids(64), 5000).ok().unwrap();
    assert_eq!(q.encode().ok().unwrap(), raw);
}

#[test]
fn a_piece_of_the_wrong_length_is_a_handler_failure() {
    let raw = hex(PIECE);
    for bad in [
        &raw[..117],
        &raw[..raw.len() - 1],
        &[raw.as_slice(), &[0]].concat()[..],
    ] {
        assert_eq!(code(Piece::decode(bad)), codes::HANDLER_FAILED);
    }
    // 256 history entries do not pack (struct.error).
    let mut p = Piece::decode(&raw).ok().unwrap();
    p.history = vec![0; Piece::HIST * 256];
    assert_eq!(code(p.encode()), codes::HANDLER_FAILED);
}

#[test]
fn the_history_limit_is_log_events() {
    let mut p = Piece::decode(&hex(PIECE)).ok().unwrap();
    p.history = vec![0; Piece::HIST * 59];
    p.clone().log(event::SPLIT, 1, &ZERO_ID, 2).ok().unwrap();
    p.history.extend_from_slice(&[0; Piece::HIST]);
    assert_eq!(
        code(p.clone().log(event::OFFERED, 1, &ZERO_ID, 0)),
        fc::HISTORY_FULL
    );
    assert_eq!(
        code(p.clone().log(event::SPLIT, 1, &ZERO_ID, 2)),
        fc::HISTORY_FULL
    );
    p.log(event::ACCEPTED, 1, &ZERO_ID, 2).ok().unwrap(); // completions are never refused
}

#[test]
fn the_other_records_decode_pythons_bytes() {
    let v = Voucher::decode(&hex(VOUCHER)).ok().unwrap();
    assert_eq!((v.maturity_ms, v.status), (2_000_000, 1));
    assert_eq!(v.blinded, std::array::from_fn(|i| 100 + i as u8));
    let raw = hex(VOUCHER);
    assert_eq!(
        code(Voucher::decode(&raw[..raw.len() - 1])),
        codes::HANDLER_FAILED
    );
    assert_eq!(code(Voucher::decode(&raw[..107])), codes::HANDLER_FAILED);

    assert_eq!(
        KeyRecord::decode(&hex(KEY)).ok().unwrap(),
        KeyRecord {
            org: [5; 16],
            status: 1
        }
    );
    assert_eq!(
        code(KeyRecord::decode(&hex(KEY)[..32])),
        codes::HANDLER_FAILED
    );

    assert_eq!(
        OrgRecord::decode(&hex(ORG)).ok().unwrap(),
        OrgRecord {
            roles: 8,
            status: 1
        }
    );
    let org = hex(ORG);
    assert_eq!(
        code(OrgRecord::decode(&org[..org.len() - 1])),
        codes::HANDLER_FAILED
    );
    assert_eq!(code(OrgRecord::decode(&org[..15])), codes::HANDLER_FAILED);

    assert_eq!(
        Params::decode(Some(&hex(PARAMS))).ok().unwrap(),
        Params {
            max_depth: 5,
            min_piece: 250
        }
    );
    assert_eq!(
        Params::decode(None).ok().unwrap(),
        Params {
            max_depth: 8,
            min_piece: 100
        }
    );
    assert_eq!(
        code(Params::decode(Some(&hex(PARAMS)[..17]))),
        codes::HANDLER_FAILED
    );

    let reg = RegistryEntry::decode(&hex(REG)).ok().unwrap();
    assert_eq!(
        reg,
        RegistryEntry {
            value: 10_000,
            financed: 2_500,
            closed: false
        }
    );
    assert_eq!(reg.encode(), hex(REG));
    let mut over = hex(REG);
    over[8..16].copy_from_slice(&10_001u64.to_le_bytes()); // financed > value
    assert_eq!(code(RegistryEntry::decode(&over)), codes::HANDLER_FAILED);
    let mut closed2 = hex(REG);
    closed2[16] = 2;
    assert_eq!(code(RegistryEntry::decode(&closed2)), codes::HANDLER_FAILED);
}

#[test]
fn child_ids_are_pythons() {
    assert_eq!(
        child_id(&ids(0), 0).to_vec(),
        hex("000102030405060776cfaedace839d93")
    );
    assert_eq!(
        child_id(&ids(0), 7).to_vec(),
        hex("0001020304050607485550ab2b4da352")
    );
}

#[test]
fn voucher_ids_are_pythons() {
    let blinded: [u8; 32] = core::array::from_fn(|i| 100 + i as u8);
    let sender: Vec<u8> = (0..32).collect();
    assert_eq!(
        confirm::voucher_id(&blinded, &sender, 7).to_vec(),
        hex("6465666768696a6bb3e96cfb56fa74ed")
    );
    assert_eq!(
        confirm::voucher_id(&blinded, &[5; 33], u64::MAX).to_vec(),
        hex("6465666768696a6be036f6946f733456")
    );
}
