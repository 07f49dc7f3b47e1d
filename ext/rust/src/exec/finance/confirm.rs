//! `fin.confirm` (`tierchain.apps.finance.voucher._confirm` with `confirm_checks` and
//! `issue`): a core enterprise confirms its payable to a supplier, backed by anchored
//! documents. Each invoice records the voucher, the asset gets its registry entry, the
//! voucher and its root piece are written. Left to the Python handler ([`Fail::Defer`]): a
//! confirmation citing a document claimed on another shard (its carried claim `fe/...` is
//! declared: `claims.use` checks it), and a chain whose crypto suite is not ed25519-blake3
//! (the voucher id is the suite's hash).

use super::{
    BAD_RECORD, CORE_ENTERPRISE, ID, LINEAGE_TAG, Piece, RegistryEntry, SUPPLIER, TOPIC_ISSUED,
    VOUCHER_ACTIVE, ZERO_ID, active_org_with, event, fc, id_at, key, member_with, put_piece,
    u64_at,
};
use crate::crypto::hash::hash_one;
use crate::exec::{Fail, TxView, codes};

/// `codes.FIN_OBJECT_ID`: the hash domain of the ids of what a tx creates.
const FIN_OBJECT_ID: &str = "tierchain 2026 finance object id";
/// `voucher._CONFIRM` (`<16sQQ32sB`: beneficiary, face, maturity, asset, documents).
const HEAD: usize = 65;
/// One listed document: `evidence.DOC_BYTES` (type u8, fingerprint 32).
const DOC: usize = 33;
/// `codes.docs_per_voucher_max`.
const DOCS_MAX: usize = 8;
/// `codes.amount_max`.
const AMOUNT_MAX: u64 = (1 << 63) - 1;
/// `DocType`: the party documents (`evidence.PARTY_DOCS`).
const CONTRACT: u8 = 1;
const INVOICE: u8 = 2;
/// `codes.DocRecord` (`<16s32sQQ32s16s`): the organization first, the voucher last.
const DOC_RECORD: usize = 112;
const DOC_VOUCHER_AT: usize = DOC_RECORD - ID;

/// `codes.voucher_id` on the default suite: the asset's lineage tag, then 8 bytes of
/// `object_id(sender, nonce)` (BLAKE3 derive-key(FIN_OBJECT_ID, len-prefixed parts)).
pub fn voucher_id(blinded: &[u8; 32], sender: &[u8], nonce: u64) -> [u8; ID] {
    let mut data = Vec::with_capacity(4 + sender.len() + 4 + 8);
    data.extend_from_slice(&(sender.len() as u32).to_le_bytes());
    data.extend_from_slice(sender);
    data.extend_from_slice(&8u32.to_le_bytes());
    data.extend_from_slice(&nonce.to_le_bytes());
    let h = hash_one(FIN_OBJECT_ID, &data);
    let mut out = [0; ID];
    out[..LINEAGE_TAG].copy_from_slice(&blinded[..LINEAGE_TAG]);
    out[LINEAGE_TAG..].copy_from_slice(&h[..ID - LINEAGE_TAG]);
    out
}

/// `evidence.parse_docs`: 1..=8 documents, none listed twice (`BAD_PAYLOAD`).
fn parse_docs(raw: &[u8]) -> Result<Vec<&[u8]>, Fail> {
    let docs: Vec<&[u8]> = raw.chunks_exact(DOC).collect();
    let twice = (1..docs.len()).any(|i| docs[..i].contains(&docs[i]));
    if !(1..=DOCS_MAX).contains(&docs.len()) || twice {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    Ok(docs)
}

/// `voucher._confirm` (a plaintext face).
pub(in crate::exec) fn confirm(tx: &mut TxView) -> Result<(&'static [u8], Vec<u8>), Fail> {
    let payload = tx.payload();
    if payload.len() < HEAD || payload.len() != HEAD + DOC * payload[HEAD - 1] as usize {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    let docs = parse_docs(&payload[HEAD..])?;
    let beneficiary = id_at(payload, 0);
    let (face, maturity_ms) = (u64_at(payload, 16), u64_at(payload, 24));
    let blinded: [u8; 32] = payload[32..64].try_into().expect("32 bytes");
    // confirm_checks
    let (obligor, _) = member_with(tx, CORE_ENTERPRISE)?;
    if beneficiary == obligor {
        return Err(Fail::Code(fc::BAD_COUNTERPARTY));
    }
    active_org_with(tx, &beneficiary, SUPPLIER)?;
    if !(1..=AMOUNT_MAX).contains(&face) || maturity_ms <= tx.timestamp_ms {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    if !tx.default_suite {
        return Err(Fail::Defer); // the voucher id is another suite's hash
    }
    let vid = voucher_id(&blinded, tx.sender(), tx.nonce());
    let vkey = key(b"fv/", &vid);
    if tx.get(&vkey)?.is_some() {
        return Err(Fail::Code(fc::VOUCHER_EXISTS));
    }
    if !docs.iter().any(|d| d[0] == INVOICE) {
        return Err(Fail::Code(fc::NO_INVOICE));
    }
    for doc in &docs {
        if tx.declares(&[b"fe/", &vid[..LINEAGE_TAG], doc].concat()) {
            return Err(Fail::Defer); // claimed for this lineage on the document's shard
        }
        let dkey = key(b"fd/", doc);
        let rec = tx.get(&dkey)?.ok_or(Fail::Code(fc::NO_SUCH_DOC))?;
        if rec.len() != DOC_RECORD {
            return Err(BAD_RECORD);
        }
        let org = id_at(rec, 0);
        if matches!(doc[0], INVOICE | CONTRACT) && org != obligor && org != beneficiary {
            return Err(Fail::Code(fc::DOC_NOT_FROM_PARTY));
        }
        if doc[0] == INVOICE {
            if rec[DOC_VOUCHER_AT..] != ZERO_ID {
                return Err(Fail::Code(fc::INVOICE_ALREADY_USED));
            }
            let bound = [&rec[..DOC_VOUCHER_AT], &vid].concat();
            tx.put(&dkey, &bound)?;
        }
    }
    let rkey = key(b"fr/", &blinded);
    if tx.get(&rkey)?.is_some() {
        return Err(Fail::Code(fc::ASSET_EXISTS));
    }
    let entry = RegistryEntry {
        value: face,
        financed: 0,
        closed: false,
    };
    tx.put(&rkey, &entry.encode())?;
    // issue
    let (height, now) = (tx.height, tx.timestamp_ms);
    let mut record = Vec::with_capacity(super::Voucher::HEAD + DOC * docs.len());
    record.extend_from_slice(&obligor);
    record.extend_from_slice(&beneficiary);
    for field in [face, maturity_ms, height, now] {
        record.extend_from_slice(&field.to_le_bytes());
    }
    record.push(VOUCHER_ACTIVE);
    record.extend_from_slice(&0u64.to_le_bytes()); // settled
    record.extend_from_slice(&0u16.to_le_bytes()); // settle batches
    record.extend_from_slice(&blinded);
    record.extend_from_slice(&payload[HEAD - 1..]); // the count and the documents as listed
    tx.put(&vkey, &record)?;
    let mut root = Piece::active(vid, vid, face, beneficiary, height);
    root.log(event::ISSUED, height, &obligor, face)?;
    put_piece(tx, &vid, &root)?;
    let data = [&vid[..], &beneficiary, &face.to_le_bytes()].concat();
    Ok((TOPIC_ISSUED, data))
}
