//! The finance app's plaintext piece moves, as `tierchain.apps.finance.voucher` does them:
//! `fin.split` (`_split`), `fin.offer` (`_offer`, every kind) and `fin.accept` (`_accept`:
//! transfer, discount and pledge, the latter two counting against the duplicate-financing
//! registry as `registry.add_financed` does); a document's anchoring, `fin.anchor`
//! (`tierchain.apps.finance.evidence._anchor`); and a voucher's issue, `fin.confirm`
//! ([`confirm`], `voucher._confirm`). Every check, read and write is the handler's,
//! in the handler's order (a read of an undeclared key is `UNDECLARED_ACCESS` where the
//! handler reads it); records are decoded and encoded with the layouts of
//! `tierchain.apps.finance.codes` (a record of the wrong length is the handler's
//! `RecordError`: `HANDLER_FAILED`). Left to the Python handler ([`Fail::Defer`]): the
//! accept of a confidential piece (amount 0: its opening and offer records move), and a
//! split on a chain whose crypto suite is not ed25519-blake3 (child ids are the suite's
//! hash; only BLAKE3's is here), and what [`confirm`] leaves.

use super::{Fail, TxView, codes};
use crate::crypto::hash::hash_one;

mod confirm;
pub(super) use confirm::confirm;

/// The finance app's refusal codes: `tierchain.apps.finance.codes.FinanceReject` (its
/// numbers; tests/apps/test_finance_native.py checks [`fcodes::ALL`] against it).
pub mod fcodes {
    pub const NOT_A_MEMBER: u16 = 96;
    pub const KEY_REVOKED: u16 = 97;
    pub const ROLE_MISSING: u16 = 98;
    pub const ORG_INACTIVE: u16 = 99;
    pub const NO_SUCH_ORG: u16 = 106;
    pub const DOC_EXISTS: u16 = 109;
    pub const NO_SUCH_DOC: u16 = 110;
    pub const INVOICE_ALREADY_USED: u16 = 111;
    pub const NO_INVOICE: u16 = 112;
    pub const VOUCHER_EXISTS: u16 = 113;
    pub const NO_SUCH_VOUCHER: u16 = 114;
    pub const NO_SUCH_PIECE: u16 = 115;
    pub const NOT_HOLDER: u16 = 116;
    pub const PIECE_LOCKED: u16 = 117;
    pub const PIECE_PENDING: u16 = 118;
    pub const PIECE_CLOSED: u16 = 119;
    pub const SPLIT_SUM_MISMATCH: u16 = 120;
    pub const PIECE_TOO_SMALL: u16 = 121;
    pub const SPLIT_TOO_DEEP: u16 = 122;
    pub const NOT_OFFEREE: u16 = 123;
    pub const NOT_OFFERED: u16 = 124;
    pub const MATURED: u16 = 125;
    pub const EXCEEDS_ASSET_VALUE: u16 = 131;
    pub const ASSET_EXISTS: u16 = 132;
    pub const NO_SUCH_ASSET: u16 = 133;
    pub const HISTORY_FULL: u16 = 135;
    pub const BAD_COUNTERPARTY: u16 = 136;
    pub const DOC_NOT_FROM_PARTY: u16 = 139;
    pub const CONFIDENTIAL_PIECE: u16 = 140;
    /// Every code above, by `FinanceReject` name.
    pub const ALL: [(&str, u16); 29] = [
        ("NOT_A_MEMBER", NOT_A_MEMBER),
        ("KEY_REVOKED", KEY_REVOKED),
        ("ROLE_MISSING", ROLE_MISSING),
        ("ORG_INACTIVE", ORG_INACTIVE),
        ("NO_SUCH_ORG", NO_SUCH_ORG),
        ("DOC_EXISTS", DOC_EXISTS),
        ("NO_SUCH_DOC", NO_SUCH_DOC),
        ("INVOICE_ALREADY_USED", INVOICE_ALREADY_USED),
        ("NO_INVOICE", NO_INVOICE),
        ("VOUCHER_EXISTS", VOUCHER_EXISTS),
        ("NO_SUCH_VOUCHER", NO_SUCH_VOUCHER),
        ("NO_SUCH_PIECE", NO_SUCH_PIECE),
        ("NOT_HOLDER", NOT_HOLDER),
        ("PIECE_LOCKED", PIECE_LOCKED),
        ("PIECE_PENDING", PIECE_PENDING),
        ("PIECE_CLOSED", PIECE_CLOSED),
        ("SPLIT_SUM_MISMATCH", SPLIT_SUM_MISMATCH),
        ("PIECE_TOO_SMALL", PIECE_TOO_SMALL),
        ("SPLIT_TOO_DEEP", SPLIT_TOO_DEEP),
        ("NOT_OFFEREE", NOT_OFFEREE),
        ("NOT_OFFERED", NOT_OFFERED),
        ("MATURED", MATURED),
        ("EXCEEDS_ASSET_VALUE", EXCEEDS_ASSET_VALUE),
        ("ASSET_EXISTS", ASSET_EXISTS),
        ("NO_SUCH_ASSET", NO_SUCH_ASSET),
        ("HISTORY_FULL", HISTORY_FULL),
        ("BAD_COUNTERPARTY", BAD_COUNTERPARTY),
        ("DOC_NOT_FROM_PARTY", DOC_NOT_FROM_PARTY),
        ("CONFIDENTIAL_PIECE", CONFIDENTIAL_PIECE),
    ];
}

use fcodes as fc;

pub const TOPIC_SPLIT: &[u8] = b"fin.piece.split";
pub const TOPIC_OFFERED: &[u8] = b"fin.piece.offered";
pub const TOPIC_ACCEPTED: &[u8] = b"fin.piece.accepted";
pub const TOPIC_ANCHORED: &[u8] = b"fin.doc.anchored";
pub const TOPIC_ISSUED: &[u8] = b"fin.voucher.issued";

/// `codes.FIN_PIECE_ID`: the hash domain of child piece ids.
const FIN_PIECE_ID: &str = "tierchain 2026 finance piece id";
const ID: usize = 16;
const ZERO_ID: [u8; ID] = [0; ID];
const LINEAGE_TAG: usize = 8;
const SPLIT_WAYS_MAX: usize = 8;
const PIECE_HISTORY_MAX: usize = 64;
const COMPLETIONS_MAX: usize = 4;
/// `codes.ROLES`: bits 2.. of the roles mask.
const CORE_ENTERPRISE: u32 = 1 << 2;
const SUPPLIER: u32 = 1 << 3;
const BANK: u32 = 1 << 4;
const WAREHOUSE: u32 = 1 << 5;
const LOGISTICS: u32 = 1 << 6;
const ORG_ACTIVE: u8 = 1;
const KEY_ACTIVE: u8 = 1;
const VOUCHER_ACTIVE: u8 = 1;

/// `PieceState`.
mod state {
    pub const ACTIVE: u8 = 1;
    pub const OFFERED: u8 = 2;
    pub const PLEDGED: u8 = 3;
    pub const FINANCED: u8 = 4;
    pub const SPLIT: u8 = 5;
}

/// `OfferKind`.
mod kind {
    pub const TRANSFER: u8 = 1;
    pub const DISCOUNT: u8 = 2;
    pub const PLEDGE: u8 = 3;
}

/// `Event` (history entry kinds).
mod event {
    pub const ISSUED: u8 = 1;
    pub const CREATED_BY_SPLIT: u8 = 2;
    pub const SPLIT: u8 = 3;
    pub const OFFERED: u8 = 4;
    pub const ACCEPTED: u8 = 5;
    pub const DISCOUNTED: u8 = 7;
    pub const PLEDGED: u8 = 8;
}

/// A stored record that does not decode: the handler's `RecordError` (or `struct.error`).
const BAD_RECORD: Fail = Fail::Code(codes::HANDLER_FAILED);

fn key(prefix: &[u8], id: &[u8]) -> Vec<u8> {
    [prefix, id].concat()
}

fn id_at(raw: &[u8], at: usize) -> [u8; ID] {
    raw[at..at + ID].try_into().expect("16 bytes")
}

fn u64_at(raw: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"))
}

/// `codes.KeyRecord` (`<16sBQQ`): the fields a member check uses.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub org: [u8; ID],
    pub status: u8,
}

impl KeyRecord {
    pub const SIZE: usize = 33;

    pub fn decode(raw: &[u8]) -> Result<KeyRecord, Fail> {
        if raw.len() != Self::SIZE {
            return Err(BAD_RECORD);
        }
        Ok(KeyRecord {
            org: id_at(raw, 0),
            status: raw[16],
        })
    }
}

/// `codes.OrgRecord` (`<IBHQB` then the name): the fields the ops use.
#[derive(Debug, PartialEq, Eq)]
pub struct OrgRecord {
    pub roles: u32,
    pub status: u8,
}

impl OrgRecord {
    pub const HEAD: usize = 16;

    pub fn decode(raw: &[u8]) -> Result<OrgRecord, Fail> {
        if raw.len() < Self::HEAD || raw.len() != Self::HEAD + raw[Self::HEAD - 1] as usize {
            return Err(BAD_RECORD);
        }
        Ok(OrgRecord {
            roles: u32::from_le_bytes(raw[0..4].try_into().expect("4 bytes")),
            status: raw[4],
        })
    }
}

/// `codes.Params` (`<BBQQ`; absent: the defaults): the fields a split uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Params {
    pub max_depth: u8,
    pub min_piece: u64,
}

impl Params {
    pub const SIZE: usize = 18;

    pub fn decode(raw: Option<&[u8]>) -> Result<Params, Fail> {
        match raw {
            None => Ok(Params {
                max_depth: 8,
                min_piece: 100,
            }),
            Some(raw) if raw.len() == Self::SIZE => Ok(Params {
                max_depth: raw[1],
                min_piece: u64_at(raw, 2),
            }),
            Some(_) => Err(BAD_RECORD),
        }
    }
}

/// `codes.Voucher` (`<16s16sQQQQBQH32sB` then 33 bytes a document): the fields the ops use.
#[derive(Debug, PartialEq, Eq)]
pub struct Voucher {
    pub maturity_ms: u64,
    pub status: u8,
    pub blinded: [u8; 32],
}

impl Voucher {
    pub const HEAD: usize = 108;

    pub fn decode(raw: &[u8]) -> Result<Voucher, Fail> {
        if raw.len() < Self::HEAD || raw.len() != Self::HEAD + 33 * raw[Self::HEAD - 1] as usize {
            return Err(BAD_RECORD);
        }
        Ok(Voucher {
            maturity_ms: u64_at(raw, 40),
            status: raw[64],
            blinded: raw[75..107].try_into().expect("32 bytes"),
        })
    }
}

/// `codes.RegistryEntry` (`<QQB`).
#[derive(Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    pub value: u64,
    pub financed: u64,
    pub closed: bool,
}

impl RegistryEntry {
    pub const SIZE: usize = 17;

    pub fn decode(raw: &[u8]) -> Result<RegistryEntry, Fail> {
        if raw.len() != Self::SIZE {
            return Err(BAD_RECORD);
        }
        let (value, financed, closed) = (u64_at(raw, 0), u64_at(raw, 8), raw[16]);
        if closed > 1 || financed > value {
            return Err(BAD_RECORD);
        }
        Ok(RegistryEntry {
            value,
            financed,
            closed: closed == 1,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        out.extend_from_slice(&self.value.to_le_bytes());
        out.extend_from_slice(&self.financed.to_le_bytes());
        out.push(self.closed as u8);
        out
    }
}

/// `codes.Piece` (`<16s16s16sBBQ16sBB16sQQBQB`, then `<BQ16sQ` a history entry). The
/// history is kept as its bytes: decoding and re-packing an entry gives the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub voucher: [u8; ID],
    pub parent: [u8; ID],
    pub root: [u8; ID],
    pub depth: u8,
    pub index: u8,
    pub amount: u64,
    pub holder: [u8; ID],
    pub state: u8,
    pub offer_kind: u8,
    pub counterparty: [u8; ID],
    pub price: u64,
    pub due_ms: u64,
    pub children: u8,
    pub created_height: u64,
    /// `HIST` bytes per entry.
    pub history: Vec<u8>,
}

impl Piece {
    pub const HEAD: usize = 118;
    pub const HIST: usize = 33;

    pub fn decode(raw: &[u8]) -> Result<Piece, Fail> {
        if raw.len() < Self::HEAD
            || raw.len() != Self::HEAD + Self::HIST * raw[Self::HEAD - 1] as usize
        {
            return Err(BAD_RECORD);
        }
        Ok(Piece {
            voucher: id_at(raw, 0),
            parent: id_at(raw, 16),
            root: id_at(raw, 32),
            depth: raw[48],
            index: raw[49],
            amount: u64_at(raw, 50),
            holder: id_at(raw, 58),
            state: raw[74],
            offer_kind: raw[75],
            counterparty: id_at(raw, 76),
            price: u64_at(raw, 92),
            due_ms: u64_at(raw, 100),
            children: raw[108],
            created_height: u64_at(raw, 109),
            history: raw[Self::HEAD..].to_vec(),
        })
    }

    /// A new active piece of `voucher` (lineage `root`): `amount` held by `holder` from
    /// `height`, no offer, no children, no history yet; a root piece (a split's child sets
    /// its parent, depth and index).
    fn active(
        voucher: [u8; ID],
        root: [u8; ID],
        amount: u64,
        holder: [u8; ID],
        height: u64,
    ) -> Piece {
        Piece {
            voucher,
            parent: ZERO_ID,
            root,
            depth: 0,
            index: 0,
            amount,
            holder,
            state: state::ACTIVE,
            offer_kind: 0,
            counterparty: ZERO_ID,
            price: 0,
            due_ms: 0,
            children: 0,
            created_height: height,
            history: Vec::with_capacity(Piece::HIST),
        }
    }

    pub fn history_len(&self) -> usize {
        self.history.len() / Self::HIST
    }

    /// `Piece.encode`; more than 255 history entries is the handler's `struct.error`.
    pub fn encode(&self) -> Result<Vec<u8>, Fail> {
        let n = u8::try_from(self.history_len()).map_err(|_| BAD_RECORD)?;
        let mut out = Vec::with_capacity(Self::HEAD + self.history.len());
        out.extend_from_slice(&self.voucher);
        out.extend_from_slice(&self.parent);
        out.extend_from_slice(&self.root);
        out.push(self.depth);
        out.push(self.index);
        out.extend_from_slice(&self.amount.to_le_bytes());
        out.extend_from_slice(&self.holder);
        out.push(self.state);
        out.push(self.offer_kind);
        out.extend_from_slice(&self.counterparty);
        out.extend_from_slice(&self.price.to_le_bytes());
        out.extend_from_slice(&self.due_ms.to_le_bytes());
        out.push(self.children);
        out.extend_from_slice(&self.created_height.to_le_bytes());
        out.push(n);
        out.extend_from_slice(&self.history);
        Ok(out)
    }

    /// `voucher.log_event` (the history part; the caller changes the fields): an offer or
    /// a split past `piece_history_max - _COMPLETIONS_MAX - 1` entries is `HISTORY_FULL`.
    fn log(&mut self, kind: u8, height: u64, org: &[u8; ID], amount: u64) -> Result<(), Fail> {
        if matches!(kind, event::OFFERED | event::SPLIT)
            && self.history_len() + 1 + COMPLETIONS_MAX > PIECE_HISTORY_MAX
        {
            return Err(Fail::Code(fc::HISTORY_FULL));
        }
        self.history.push(kind);
        self.history.extend_from_slice(&height.to_le_bytes());
        self.history.extend_from_slice(org);
        self.history.extend_from_slice(&amount.to_le_bytes());
        Ok(())
    }
}

/// `codes.child_id` on the default suite: the parent's lineage tag, then 8 bytes of
/// BLAKE3 derive-key(FIN_PIECE_ID, len-prefixed parent and index).
pub fn child_id(parent: &[u8; ID], index: u8) -> [u8; ID] {
    let mut data = Vec::with_capacity(4 + ID + 4 + 1);
    data.extend_from_slice(&(ID as u32).to_le_bytes());
    data.extend_from_slice(parent);
    data.extend_from_slice(&1u32.to_le_bytes());
    data.push(index);
    let h = hash_one(FIN_PIECE_ID, &data);
    let mut out = [0; ID];
    out[..LINEAGE_TAG].copy_from_slice(&parent[..LINEAGE_TAG]);
    out[LINEAGE_TAG..].copy_from_slice(&h[..ID - LINEAGE_TAG]);
    out
}

/// `orgs.member(ctx, roles)`: the sender's organization id and record, the
/// organization holding one of `roles` (0: any role).
fn member_with(tx: &TxView, roles: u32) -> Result<([u8; ID], OrgRecord), Fail> {
    let (oid, org) = member(tx)?;
    if roles != 0 && org.roles & roles == 0 {
        return Err(Fail::Code(fc::ROLE_MISSING));
    }
    Ok((oid, org))
}

/// `orgs.member(ctx)` (any role): the sender's organization id and record.
fn member(tx: &TxView) -> Result<([u8; ID], OrgRecord), Fail> {
    let raw = tx
        .get(&key(b"fk/", tx.sender()))?
        .ok_or(Fail::Code(fc::NOT_A_MEMBER))?;
    let k = KeyRecord::decode(raw)?;
    if k.status != KEY_ACTIVE {
        return Err(Fail::Code(fc::KEY_REVOKED));
    }
    let org = match tx.get(&key(b"fo/", &k.org))? {
        None => return Err(Fail::Code(fc::ORG_INACTIVE)),
        Some(raw) => OrgRecord::decode(raw)?,
    };
    if org.status != ORG_ACTIVE {
        return Err(Fail::Code(fc::ORG_INACTIVE));
    }
    Ok((k.org, org))
}

/// `orgs.active_org_with(ctx, oid, roles)`: a counterparty that exists, is active and
/// holds one of `roles`.
fn active_org_with(tx: &TxView, oid: &[u8; ID], roles: u32) -> Result<(), Fail> {
    let org = match tx.get(&key(b"fo/", oid))? {
        None => return Err(Fail::Code(fc::NO_SUCH_ORG)),
        Some(raw) => OrgRecord::decode(raw)?,
    };
    if org.status != ORG_ACTIVE || org.roles & roles == 0 {
        return Err(Fail::Code(fc::BAD_COUNTERPARTY));
    }
    Ok(())
}

fn load_piece(tx: &TxView, pid: &[u8]) -> Result<Piece, Fail> {
    Piece::decode(
        tx.get(&key(b"fx/", pid))?
            .ok_or(Fail::Code(fc::NO_SUCH_PIECE))?,
    )
}

fn load_voucher(tx: &TxView, vid: &[u8]) -> Result<Voucher, Fail> {
    Voucher::decode(
        tx.get(&key(b"fv/", vid))?
            .ok_or(Fail::Code(fc::NO_SUCH_VOUCHER))?,
    )
}

fn not_matured(tx: &TxView, v: &Voucher) -> Result<(), Fail> {
    if v.status != VOUCHER_ACTIVE || tx.timestamp_ms >= v.maturity_ms {
        return Err(Fail::Code(fc::MATURED));
    }
    Ok(())
}

/// `voucher.held(ctx, pid)` (plaintext): the sender's org and the piece it holds, movable,
/// of an unmatured voucher.
fn held(tx: &TxView, pid: &[u8]) -> Result<([u8; ID], Piece), Fail> {
    let (oid, _) = member(tx)?;
    let piece = load_piece(tx, pid)?;
    if piece.holder != oid {
        return Err(Fail::Code(fc::NOT_HOLDER));
    }
    if piece.amount == 0 {
        return Err(Fail::Code(fc::CONFIDENTIAL_PIECE));
    }
    match piece.state {
        state::PLEDGED | state::FINANCED => return Err(Fail::Code(fc::PIECE_LOCKED)),
        state::OFFERED => return Err(Fail::Code(fc::PIECE_PENDING)),
        state::ACTIVE => {}
        _ => return Err(Fail::Code(fc::PIECE_CLOSED)),
    }
    let v = load_voucher(tx, &piece.voucher)?;
    not_matured(tx, &v)?;
    Ok((oid, piece))
}

fn put_piece(tx: &mut TxView, pid: &[u8], piece: &Piece) -> Result<(), Fail> {
    let raw = piece.encode()?;
    tx.put(&key(b"fx/", pid), &raw)
}

/// `voucher._split`.
pub(super) fn split(tx: &mut TxView) -> Result<(&'static [u8], Vec<u8>), Fail> {
    let payload = tx.payload();
    if payload.len() < 17 {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    let n = payload[16] as usize;
    if !(2..=SPLIT_WAYS_MAX).contains(&n) || payload.len() != 17 + 8 * n {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    let pid: [u8; ID] = id_at(payload, 0);
    let amounts: Vec<u64> = (0..n).map(|i| u64_at(payload, 17 + 8 * i)).collect();
    let (oid, mut piece) = held(tx, &pid)?;
    let p = Params::decode(tx.get(b"fp/params")?)?;
    let sum: u128 = amounts.iter().map(|&a| a as u128).sum();
    if sum != piece.amount as u128 {
        return Err(Fail::Code(fc::SPLIT_SUM_MISMATCH));
    }
    if amounts.iter().any(|&a| a < p.min_piece) {
        return Err(Fail::Code(fc::PIECE_TOO_SMALL));
    }
    if piece.depth as u16 + 1 > p.max_depth as u16 {
        return Err(Fail::Code(fc::SPLIT_TOO_DEEP));
    }
    if !tx.default_suite {
        return Err(Fail::Defer); // child ids are another suite's hash
    }
    let kids: Vec<[u8; ID]> = (0..n as u8).map(|i| child_id(&pid, i)).collect();
    for kid in &kids {
        if tx.get(&key(b"fx/", kid))?.is_some() {
            return Err(Fail::Code(fc::VOUCHER_EXISTS));
        }
    }
    let height = tx.height;
    // max_depth is a u8, so depth + 1 <= 255 here.
    let depth = piece.depth + 1;
    for (i, (kid, &amount)) in kids.iter().zip(&amounts).enumerate() {
        let mut child = Piece {
            parent: pid,
            depth,
            index: i as u8,
            ..Piece::active(piece.voucher, piece.root, amount, oid, height)
        };
        child.log(event::CREATED_BY_SPLIT, height, &oid, amount)?;
        put_piece(tx, kid, &child)?;
    }
    piece.log(event::SPLIT, height, &oid, n as u64)?;
    piece.state = state::SPLIT;
    piece.children = n as u8;
    put_piece(tx, &pid, &piece)?;
    let mut data = pid.to_vec();
    data.push(n as u8);
    Ok((TOPIC_SPLIT, data))
}

/// `voucher._offer`: payload `<16s16sBQQ` (piece, offeree, kind, price, due time).
pub(super) fn offer(tx: &mut TxView) -> Result<(&'static [u8], Vec<u8>), Fail> {
    let payload = tx.payload();
    if payload.len() != 49 {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    let (pid, to, k) = (id_at(payload, 0), id_at(payload, 16), payload[32]);
    let (mut price, mut due_ms) = (u64_at(payload, 33), u64_at(payload, 41));
    let role = match k {
        kind::TRANSFER => SUPPLIER,
        kind::DISCOUNT | kind::PLEDGE => BANK,
        _ => return Err(Fail::Code(codes::BAD_PAYLOAD)),
    };
    let (oid, mut piece) = held(tx, &pid)?;
    if to == oid {
        return Err(Fail::Code(fc::BAD_COUNTERPARTY));
    }
    active_org_with(tx, &to, role)?;
    if k == kind::TRANSFER {
        (price, due_ms) = (0, 0);
    } else if !(0 < price && price <= piece.amount)
        || (k == kind::PLEDGE && due_ms <= tx.timestamp_ms)
    {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    piece.log(event::OFFERED, tx.height, &to, price)?;
    piece.state = state::OFFERED;
    piece.offer_kind = k;
    piece.counterparty = to;
    piece.price = price;
    piece.due_ms = due_ms;
    put_piece(tx, &pid, &piece)?;
    let mut data = Vec::with_capacity(2 * ID + 1);
    data.extend_from_slice(&pid);
    data.extend_from_slice(&to);
    data.push(k);
    Ok((TOPIC_OFFERED, data))
}

/// `registry.add_financed`: count `amount` against the asset `blinded`.
fn add_financed(tx: &mut TxView, blinded: &[u8; 32], amount: u64) -> Result<(), Fail> {
    let rkey = key(b"fr/", blinded);
    let entry = match tx.get(&rkey)? {
        None => return Err(Fail::Code(fc::NO_SUCH_ASSET)),
        Some(raw) => RegistryEntry::decode(raw)?,
    };
    // decode checked financed <= value
    if entry.closed || amount > entry.value - entry.financed {
        return Err(Fail::Code(fc::EXCEEDS_ASSET_VALUE));
    }
    let next = RegistryEntry {
        value: entry.value,
        financed: entry.financed + amount,
        closed: false,
    };
    tx.put(&rkey, &next.encode())
}

/// `voucher._accept`: payload = the piece id.
pub(super) fn accept(tx: &mut TxView) -> Result<(&'static [u8], Vec<u8>), Fail> {
    let payload = tx.payload();
    if payload.len() != ID {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    let pid = id_at(payload, 0);
    let (oid, org) = member(tx)?;
    let mut piece = load_piece(tx, &pid)?;
    if piece.state != state::OFFERED {
        return Err(Fail::Code(fc::NOT_OFFERED));
    }
    if piece.counterparty != oid {
        return Err(Fail::Code(fc::NOT_OFFEREE));
    }
    let role = match piece.offer_kind {
        kind::TRANSFER => SUPPLIER,
        kind::DISCOUNT | kind::PLEDGE => BANK,
        _ => return Err(BAD_RECORD), // OfferKind(x): ValueError
    };
    if org.roles & role == 0 {
        return Err(Fail::Code(fc::ROLE_MISSING));
    }
    let v = load_voucher(tx, &piece.voucher)?;
    not_matured(tx, &v)?;
    if piece.amount == 0 {
        return Err(Fail::Defer); // confidential: its opening and offer records move
    }
    let height = tx.height;
    match piece.offer_kind {
        kind::TRANSFER => {
            piece.log(event::ACCEPTED, height, &oid, piece.amount)?;
            piece.state = state::ACTIVE;
            piece.holder = oid;
            piece.offer_kind = 0;
            piece.counterparty = ZERO_ID;
        }
        kind::DISCOUNT => {
            add_financed(tx, &v.blinded, piece.amount)?;
            piece.log(event::DISCOUNTED, height, &oid, piece.price)?;
            piece.state = state::FINANCED;
            piece.holder = oid;
            piece.offer_kind = 0;
            piece.counterparty = ZERO_ID;
        }
        _ => {
            add_financed(tx, &v.blinded, piece.amount)?;
            piece.log(event::PLEDGED, height, &oid, piece.price)?;
            piece.state = state::PLEDGED;
        }
    }
    put_piece(tx, &pid, &piece)?;
    let mut data = Vec::with_capacity(2 * ID);
    data.extend_from_slice(&pid);
    data.extend_from_slice(&oid);
    Ok((TOPIC_ACCEPTED, data))
}

/// `evidence.ANCHOR_ROLES`: the roles that may anchor a document of `doc_type`
/// (`DocType`), or `None` for a type that does not exist.
fn anchor_roles(doc_type: u8) -> Option<u32> {
    match doc_type {
        1 | 2 | 5 => Some(CORE_ENTERPRISE | SUPPLIER), // contract, invoice, delivery note
        3 => Some(LOGISTICS | SUPPLIER | CORE_ENTERPRISE), // waybill
        4 => Some(WAREHOUSE),                          // warehouse receipt
        _ => None,
    }
}

/// `evidence._anchor`: a document's fingerprint recorded once, by a member whose
/// organization may hold that type; `codes.DocRecord` (`<16s32sQQ32s16s`, no voucher yet).
pub(super) fn anchor(tx: &mut TxView) -> Result<(&'static [u8], Vec<u8>), Fail> {
    let payload = tx.payload();
    if payload.len() != 33 {
        return Err(Fail::Code(codes::BAD_PAYLOAD));
    }
    let roles = anchor_roles(payload[0]).ok_or(Fail::Code(codes::BAD_PAYLOAD))?;
    let sender = tx.sender();
    if sender.len() != 32 {
        return Err(Fail::Defer); // the record's signer field is 32 bytes
    }
    let (oid, _) = member_with(tx, roles)?;
    let doc = key(b"fd/", payload);
    if tx.get(&doc)?.is_some() {
        return Err(Fail::Code(fc::DOC_EXISTS));
    }
    let mut record = Vec::with_capacity(112);
    record.extend_from_slice(&oid);
    record.extend_from_slice(sender);
    record.extend_from_slice(&tx.height.to_le_bytes());
    record.extend_from_slice(&tx.timestamp_ms.to_le_bytes());
    record.extend_from_slice(tx.tx_id());
    record.extend_from_slice(&ZERO_ID);
    tx.put(&doc, &record)?;
    Ok((TOPIC_ANCHORED, payload.to_vec()))
}

#[cfg(test)]
mod tests;
