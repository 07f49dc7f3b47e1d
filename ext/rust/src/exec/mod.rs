//! Native op handlers ("kernels") over a block's columns, wave by wave.
//!
//! The Python executor (`core/tierchain/engine/execute.py`) runs a block wave
//! by wave: no two transactions of a scheduler's wave conflict on a declared
//! key (nor share a sender), so a wave's transactions may run in any order or
//! at once against the state as of the wave's start. The ops an app marks
//! native run here instead of in Python: [`run`] takes the rows of one or more
//! consecutive waves, computes each row's outcome on the pool with the GIL
//! released (every read against [`State`] as of its wave's start), then applies
//! the rows' writes in row order. Rows of explicit waves (`parallel = false`:
//! a caller's order, e.g. serial re-execution) run one after another, each
//! seeing the writes of the rows before it, exactly as the Python loop does.
//!
//! What a kernel sees mirrors the Python `TxContext`: it may read only keys its
//! row declared (to read or write) and write only keys it declared as writes;
//! anything else is `UNDECLARED_ACCESS` with none of its writes kept. The
//! executor part (nonce, expiry) is the Python `_run_one`'s, in the same order:
//! a wrong nonce is `NONCE_MISMATCH` (nothing consumed), otherwise the nonce is
//! consumed whatever follows, then expiry, then the kernel. Receipts, events and
//! writes are byte-identical to the Python path (tests/engine/test_native_exec.py
//! runs both on random mixed blocks).
//!
//! [`State`] holds the block's state: the parent state's value of every key the
//! block may touch (prefetched by the caller, absent keys as `None`) and the
//! block's writes so far, in first-write order (a Python dict's order).

mod finance;
mod transfer;

pub use finance::fcodes;

use std::borrow::Cow;
use std::fmt;

use foldhash::HashMap as FastMap;
use rayon::prelude::*;

/// Engine refusal codes a kernel or the executor returns (`tierchain.errors.Reject`;
/// the Python binding checks they agree at import).
pub mod codes {
    pub const OK: u16 = 0;
    pub const EXPIRED: u16 = 38;
    pub const UNDECLARED_ACCESS: u16 = 64;
    pub const BAD_PAYLOAD: u16 = 66;
    pub const NONCE_MISMATCH: u16 = 67;
    pub const INSUFFICIENT_FUNDS: u16 = 68;
    pub const NO_SUCH_ACCOUNT: u16 = 70;
    pub const HANDLER_FAILED: u16 = 72;
    /// Not a receipt code: the kernel left the row to the op's Python handler
    /// (a case it does not cover, e.g. a confidential piece). Nothing of the
    /// row is applied, not even its nonce; [`run`](super::run) stops after it.
    pub const DEFER: u16 = u16::MAX;
    /// Every code above, by name, for the binding's agreement check.
    pub const ALL: [(&str, u16); 8] = [
        ("OK", OK),
        ("EXPIRED", EXPIRED),
        ("UNDECLARED_ACCESS", UNDECLARED_ACCESS),
        ("BAD_PAYLOAD", BAD_PAYLOAD),
        ("NONCE_MISMATCH", NONCE_MISMATCH),
        ("INSUFFICIENT_FUNDS", INSUFFICIENT_FUNDS),
        ("NO_SUCH_ACCOUNT", NO_SUCH_ACCOUNT),
        ("HANDLER_FAILED", HANDLER_FAILED),
    ];
}

/// The kernels, by the number an app's op names (`Op.native`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kernel {
    /// `accounts.transfer` (op 2): a balance transfer.
    Transfer = 0,
    /// `fin.split` (op 33): a plaintext piece split into 2..8 children.
    FinSplit = 1,
    /// `fin.offer` (op 34): a piece offered (transfer, discount or pledge).
    FinOffer = 2,
    /// `fin.accept` (op 35): an offer accepted (a confidential piece's is deferred).
    FinAccept = 3,
    /// `fin.anchor` (op 24): a document's fingerprint anchored.
    FinAnchor = 4,
    /// `fin.confirm` (op 32): a voucher issued (one citing a claimed document is deferred).
    FinConfirm = 5,
    /// Tests only: defers every row whose payload starts with 0xff, else a transfer.
    #[cfg(test)]
    TestDefer = 254,
}

impl Kernel {
    pub const ALL: [(&'static str, Kernel); 6] = [
        ("accounts.transfer", Kernel::Transfer),
        ("fin.split", Kernel::FinSplit),
        ("fin.offer", Kernel::FinOffer),
        ("fin.accept", Kernel::FinAccept),
        ("fin.anchor", Kernel::FinAnchor),
        ("fin.confirm", Kernel::FinConfirm),
    ];

    pub fn from_id(id: u8) -> Option<Kernel> {
        #[cfg(test)]
        if id == Kernel::TestDefer as u8 {
            return Some(Kernel::TestDefer);
        }
        Kernel::ALL.iter().map(|(_, k)| *k).find(|k| *k as u8 == id)
    }
}

/// The nonce key of a sender: `b"\x00n" + sender` (`execute.nonce_key`).
pub fn nonce_key(sender: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + sender.len());
    key.extend_from_slice(b"\x00n");
    key.extend_from_slice(sender);
    key
}

/// A ledger bug found while executing (a key the caller did not prefetch, a
/// stored nonce that is not a u64, malformed columns): it stops the block, as
/// the Python executor's `InvariantViolation` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken(pub String);

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A block's columns (`tierchain.wire.batch.Batch`), borrowed.
pub struct Cols<'a> {
    pub buf: &'a [u8],
    pub key_first: &'a [i64],
    pub key_start: &'a [i64],
    pub key_len: &'a [u8],
    pub n_read: &'a [u8],
    pub n_write: &'a [u8],
    /// `n * sender_len` bytes.
    pub sender: &'a [u8],
    pub sender_len: usize,
    pub nonce: &'a [u64],
    pub expires_at: &'a [u64],
    pub payload_start: &'a [i64],
    pub payload_len: &'a [u32],
    /// `n * 32` bytes: the tx ids (receipts name them).
    pub digest: &'a [u8],
}

/// A block's columns, owned: the binding's copy of a `Batch`'s (`py/exec.rs`), or a
/// block the tests build row by row.
#[derive(Default, Clone, Debug)]
pub struct OwnedCols {
    pub buf: Vec<u8>,
    pub key_first: Vec<i64>,
    pub key_start: Vec<i64>,
    pub key_len: Vec<u8>,
    pub n_read: Vec<u8>,
    pub n_write: Vec<u8>,
    pub sender: Vec<u8>,
    pub sender_len: usize,
    pub nonce: Vec<u64>,
    pub expires_at: Vec<u64>,
    pub payload_start: Vec<i64>,
    pub payload_len: Vec<u32>,
    pub digest: Vec<u8>,
}

impl OwnedCols {
    pub fn cols(&self) -> Cols<'_> {
        Cols {
            buf: &self.buf,
            key_first: &self.key_first,
            key_start: &self.key_start,
            key_len: &self.key_len,
            n_read: &self.n_read,
            n_write: &self.n_write,
            sender: &self.sender,
            sender_len: self.sender_len,
            nonce: &self.nonce,
            expires_at: &self.expires_at,
            payload_start: &self.payload_start,
            payload_len: &self.payload_len,
            digest: &self.digest,
        }
    }
}

impl<'a> Cols<'a> {
    /// Checks every length and offset once, so row accessors cannot go out of bounds.
    pub fn check(&self) -> Result<(), Broken> {
        let n = self.nonce.len();
        let bad = |what: &str| Err(Broken(format!("block columns: {what}")));
        if self.key_first.len() != n
            || self.n_read.len() != n
            || self.n_write.len() != n
            || self.expires_at.len() != n
            || self.payload_start.len() != n
            || self.payload_len.len() != n
            || self.sender.len() != n * self.sender_len
            || self.digest.len() != n * 32
        {
            return bad("row columns of different lengths");
        }
        if self.key_start.len() != self.key_len.len() {
            return bad("key columns of different lengths");
        }
        let buf = self.buf.len() as i128;
        for j in 0..self.key_start.len() {
            let s = self.key_start[j] as i128;
            if s < 0 || s + self.key_len[j] as i128 > buf {
                return bad("a key outside the buffer");
            }
        }
        for i in 0..n {
            let first = self.key_first[i] as i128;
            let last = first + self.n_read[i] as i128 + self.n_write[i] as i128;
            if first < 0 || last > self.key_start.len() as i128 {
                return bad("a row's keys outside the key columns");
            }
            let p = self.payload_start[i] as i128;
            if p < 0 || p + self.payload_len[i] as i128 > buf {
                return bad("a payload outside the buffer");
            }
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.nonce.len()
    }

    fn key(&self, j: usize) -> &'a [u8] {
        let s = self.key_start[j] as usize;
        &self.buf[s..s + self.key_len[j] as usize]
    }

    pub fn sender(&self, i: usize) -> &'a [u8] {
        &self.sender[i * self.sender_len..(i + 1) * self.sender_len]
    }

    pub fn tx_id(&self, i: usize) -> &'a [u8] {
        &self.digest[i * 32..(i + 1) * 32]
    }

    /// Every key the block may touch, sorted and unique: its declared keys and its
    /// senders' nonce keys (`execute.declared_keys`).
    pub fn declared_keys(&self) -> Vec<Cow<'a, [u8]>> {
        let mut keys: Vec<Cow<'a, [u8]>> = (0..self.key_start.len())
            .map(|j| Cow::Borrowed(self.key(j)))
            .collect();
        keys.extend((0..self.rows()).map(|i| Cow::Owned(nonce_key(self.sender(i)))));
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    pub fn payload(&self, i: usize) -> &'a [u8] {
        let s = self.payload_start[i] as usize;
        &self.buf[s..s + self.payload_len[i] as usize]
    }

    /// (first, first + n_read, first + n_read + n_write): the row's reads, then writes.
    fn key_range(&self, i: usize) -> (usize, usize, usize) {
        let first = self.key_first[i] as usize;
        let mid = first + self.n_read[i] as usize;
        (first, mid, mid + self.n_write[i] as usize)
    }
}

type Value = Option<Box<[u8]>>;

/// The block's state (module docs): prefetched parent values and the block's writes.
#[derive(Default)]
pub struct State {
    base: FastMap<Box<[u8]>, Value>,
    index: FastMap<Box<[u8]>, usize>,
    writes: Vec<(Box<[u8]>, Value)>,
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// A state with room for `keys` prefetched values.
    pub fn with_capacity(keys: usize) -> State {
        State {
            base: FastMap::with_capacity_and_hasher(keys, Default::default()),
            ..State::default()
        }
    }

    /// Records the parent state's value of `key` (`None`: absent).
    pub fn prefetch(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.base.insert(key.into(), value.map(Into::into));
    }

    pub fn is_prefetched(&self, key: &[u8]) -> bool {
        self.base.contains_key(key)
    }

    /// The value as of now: the block's write if any, else the parent's;
    /// `Err` for a key neither written nor prefetched.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>, Broken> {
        if let Some(&at) = self.index.get(key) {
            return Ok(self.writes[at].1.as_deref());
        }
        match self.base.get(key) {
            Some(v) => Ok(v.as_deref()),
            None => Err(Broken(format!("key {key:02x?} was not prefetched"))),
        }
    }

    /// The block's write of `key` (`Some(None)`: deleted), or `None` if it wrote none.
    pub fn written(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.index.get(key).map(|&at| self.writes[at].1.as_deref())
    }

    /// A write of the block (`None` deletes); a key keeps its first write's place.
    pub fn put(&mut self, key: &[u8], value: Value) {
        match self.index.get(key) {
            Some(&at) => self.writes[at].1 = value,
            None => {
                self.index.insert(key.into(), self.writes.len());
                self.writes.push((key.into(), value));
            }
        }
    }

    /// The block's writes, in first-write order.
    pub fn writes(&self) -> &[(Box<[u8]>, Value)] {
        &self.writes
    }
}

/// What one row gave: its receipt's code, its event's data (topic by kernel),
/// and its writes (applied only when `code` is OK or the nonce was consumed).
#[derive(Debug, Default)]
pub struct RowOut {
    pub code: u16,
    /// `(topic, data)` of the receipt's one event (successful rows only).
    pub event: Option<(&'static [u8], Vec<u8>)>,
    writes: Vec<(Vec<u8>, Value)>,
}

/// How a kernel refuses: a receipt code, a case left to the Python handler
/// ([`codes::DEFER`]), or a broken invariant (stops the block).
pub enum Fail {
    Code(u16),
    Defer,
    Broken(Broken),
}

impl From<Broken> for Fail {
    fn from(b: Broken) -> Fail {
        Fail::Broken(b)
    }
}

/// `tierchain.state.storage.state_value_bytes_max`: a longer value is `BAD_PAYLOAD` (`TxContext.put`).
pub const VALUE_BYTES_MAX: usize = 64 << 10;

/// What every row of a run shares (the Python `TxContext`'s block fields): the block's
/// height and timestamp, and whether the chain's crypto suite is the default
/// (ed25519-blake3: a kernel hashing with another suite defers).
#[derive(Clone, Copy, Debug)]
pub struct BlockEnv {
    pub height: u64,
    pub timestamp_ms: u64,
    pub default_suite: bool,
}

/// A kernel's view of its transaction (the Python `TxContext`).
pub struct TxView<'a> {
    cols: &'a Cols<'a>,
    state: &'a State,
    row: usize,
    reads: std::ops::Range<usize>,
    writes: std::ops::Range<usize>,
    local: Vec<(Vec<u8>, Value)>,
    pub height: u64,
    pub timestamp_ms: u64,
    pub default_suite: bool,
}

impl<'a> TxView<'a> {
    pub fn sender(&self) -> &'a [u8] {
        self.cols.sender(self.row)
    }

    pub fn payload(&self) -> &'a [u8] {
        self.cols.payload(self.row)
    }

    pub fn tx_id(&self) -> &'a [u8] {
        self.cols.tx_id(self.row)
    }

    /// The transaction's nonce (`ctx.nonce`).
    pub fn nonce(&self) -> u64 {
        self.cols.nonce[self.row]
    }

    /// `ctx.declares`: whether the transaction declared `key` (to read or to write).
    pub fn declares(&self, key: &[u8]) -> bool {
        self.declared_in(self.reads.clone(), key) || self.declared_in(self.writes.clone(), key)
    }

    fn declared_in(&self, range: std::ops::Range<usize>, key: &[u8]) -> bool {
        range.into_iter().any(|j| self.cols.key(j) == key)
    }

    /// `ctx.get`: its own write first, then the block's state; undeclared -> UNDECLARED_ACCESS.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>, Fail> {
        if !self.declares(key) {
            return Err(Fail::Code(codes::UNDECLARED_ACCESS));
        }
        if let Some((_, v)) = self.local.iter().rev().find(|(k, _)| k == key) {
            return Ok(v.as_deref());
        }
        Ok(self.state.get(key)?)
    }

    /// `ctx.get_u64`: absent is 0; a value that is not 8 bytes is a handler
    /// failure (Python's `struct.error`).
    pub fn get_u64(&self, key: &[u8]) -> Result<u64, Fail> {
        match self.get(key)? {
            None => Ok(0),
            Some(raw) => raw
                .try_into()
                .map(u64::from_le_bytes)
                .map_err(|_| Fail::Code(codes::HANDLER_FAILED)),
        }
    }

    /// `ctx.put`: undeclared as a write -> UNDECLARED_ACCESS; a value over
    /// [`VALUE_BYTES_MAX`] -> BAD_PAYLOAD.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), Fail> {
        if !self.declared_in(self.writes.clone(), key) {
            return Err(Fail::Code(codes::UNDECLARED_ACCESS));
        }
        if value.len() > VALUE_BYTES_MAX {
            return Err(Fail::Code(codes::BAD_PAYLOAD));
        }
        match self.local.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = Some(value.into()),
            None => self.local.push((key.to_vec(), Some(value.into()))),
        }
        Ok(())
    }

    pub fn put_u64(&mut self, key: &[u8], value: u64) -> Result<(), Fail> {
        self.put(key, &value.to_le_bytes())
    }
}

/// The executor's part and the kernel for one row, against `state` (not changed).
fn run_row(
    cols: &Cols,
    state: &State,
    kernel: Kernel,
    row: usize,
    env: &BlockEnv,
) -> Result<RowOut, Broken> {
    let height = env.height;
    let sender = cols.sender(row);
    let nkey = nonce_key(sender);
    let expected = match state.get(&nkey)? {
        None => 0,
        Some(raw) => u64::from_le_bytes(
            raw.try_into()
                .map_err(|_| Broken(format!("the nonce of {sender:02x?} is not a u64")))?,
        ),
    };
    if cols.nonce[row] != expected {
        return Ok(RowOut {
            code: codes::NONCE_MISMATCH,
            ..RowOut::default()
        });
    }
    // The nonce is consumed whatever the op's outcome, so a failed tx cannot be replayed.
    let next = expected
        .checked_add(1)
        .ok_or_else(|| Broken("a nonce at u64::MAX".into()))?;
    let mut out = RowOut {
        writes: vec![(nkey, Some(next.to_le_bytes().into()))],
        ..RowOut::default()
    };
    let expires_at = cols.expires_at[row];
    if expires_at != 0 && height > expires_at {
        out.code = codes::EXPIRED;
        return Ok(out);
    }
    let (first, mid, last) = cols.key_range(row);
    let mut tx = TxView {
        cols,
        state,
        row,
        reads: first..mid,
        writes: mid..last,
        local: Vec::new(),
        height,
        timestamp_ms: env.timestamp_ms,
        default_suite: env.default_suite,
    };
    let result = match kernel {
        Kernel::Transfer => transfer::run(&mut tx),
        Kernel::FinSplit => finance::split(&mut tx),
        Kernel::FinOffer => finance::offer(&mut tx),
        Kernel::FinAccept => finance::accept(&mut tx),
        Kernel::FinAnchor => finance::anchor(&mut tx),
        Kernel::FinConfirm => finance::confirm(&mut tx),
        #[cfg(test)]
        Kernel::TestDefer if tx.payload().first() == Some(&0xff) => Err(Fail::Defer),
        #[cfg(test)]
        Kernel::TestDefer => transfer::run(&mut tx),
    };
    match result {
        Ok(event) => {
            out.event = Some(event);
            out.writes.append(&mut tx.local);
        }
        Err(Fail::Defer) => {
            return Ok(RowOut {
                code: codes::DEFER,
                ..RowOut::default()
            });
        }
        Err(Fail::Code(code)) => out.code = code,
        Err(Fail::Broken(b)) => return Err(b),
    }
    Ok(out)
}

/// Rows of a wave at least this long are spread over the pool.
pub const PARALLEL_ROWS_MIN: usize = 256;

/// Runs `rows` (row indices of `cols`; wave `w` is `rows[bounds[w]..bounds[w + 1]]`)
/// with `kernels[row]` (ids of [`Kernel`]), in block `env`, on `state`; the rows'
/// outcomes in the order of `rows`. `parallel`: the waves are a scheduler's
/// (conflict-free), so each wave's rows are computed at once on the pool;
/// otherwise one after another (module docs).
///
/// A row its kernel defers ([`codes::DEFER`]) is not applied, and the run stops
/// early so the caller can run it in Python before anything after it: serially,
/// right after that row; in parallel, at the end of its wave (whose other rows
/// are applied: they do not conflict with it). The outcomes are then a prefix.
pub fn run(
    cols: &Cols,
    state: &mut State,
    rows: &[u32],
    bounds: &[u32],
    kernels: &[u8],
    env: &BlockEnv,
    parallel: bool,
) -> Result<Vec<RowOut>, Broken> {
    if kernels.len() != cols.rows() {
        return Err(Broken("one kernel id per row".into()));
    }
    // The outcomes are paired with `rows` from its start: waves that skip rows at
    // either end would give one row's outcome to another (its receipt).
    if bounds.first() != Some(&0) || bounds.last().map(|&b| b as usize) != Some(rows.len()) {
        return Err(Broken(
            "wave bounds must run from 0 to the number of rows".into(),
        ));
    }
    let mut outs = Vec::with_capacity(rows.len());
    for w in bounds.windows(2) {
        let (lo, hi) = (w[0] as usize, w[1] as usize);
        if lo > hi || hi > rows.len() {
            return Err(Broken("wave bounds out of order".into()));
        }
        let wave = &rows[lo..hi];
        let mut jobs = Vec::with_capacity(wave.len());
        for &r in wave {
            let r = r as usize;
            if r >= cols.rows() {
                return Err(Broken(format!("row {r} of {}", cols.rows())));
            }
            let kernel = Kernel::from_id(kernels[r])
                .ok_or_else(|| Broken(format!("no kernel {}", kernels[r])))?;
            jobs.push((r, kernel));
        }
        // A wave goes to the pool only when nothing else occupies it: behind a
        // signature batch's chunks it would wait for a worker, this thread idle
        // (docs/architecture.md, "A wave runs on the pool when the pool is free").
        if parallel && jobs.len() >= PARALLEL_ROWS_MIN && !crate::pool::busy() {
            let shared: &State = state;
            let computed: Result<Vec<RowOut>, Broken> = crate::pool::install(|| {
                jobs.par_iter()
                    .with_min_len(64)
                    .map(|&(r, k)| run_row(cols, shared, k, r, env))
                    .collect()
            })
            .map_err(Broken)?;
            let mut deferred = false;
            for out in computed? {
                deferred |= out.code == codes::DEFER;
                apply(state, &out);
                outs.push(out);
            }
            if deferred {
                return Ok(outs);
            }
        } else {
            let mut deferred = false;
            for &(r, k) in &jobs {
                let out = run_row(cols, state, k, r, env)?;
                deferred |= out.code == codes::DEFER;
                apply(state, &out);
                outs.push(out);
                if deferred && !parallel {
                    return Ok(outs);
                }
            }
            if deferred {
                return Ok(outs);
            }
        }
    }
    Ok(outs)
}

/// A receipt's bytes (`tierchain.wire.block.Receipt.encode`): tx id, code u16 LE,
/// event count u8, then per event topic length u8, data length u16 LE, topic, data.
/// A kernel's event is within the wire bounds (a topic of 1..=255 bytes, data
/// shorter than 64 KiB): `Broken` otherwise.
pub fn encode_receipt(
    tx_id: &[u8],
    code: u16,
    event: Option<&(&[u8], Vec<u8>)>,
) -> Result<Vec<u8>, Broken> {
    let mut out = Vec::with_capacity(35 + event.map_or(0, |(t, d)| 3 + t.len() + d.len()));
    out.extend_from_slice(tx_id);
    out.extend_from_slice(&code.to_le_bytes());
    match event {
        None => out.push(0),
        Some((topic, data)) => {
            let (Ok(t), Ok(d)) = (u8::try_from(topic.len()), u16::try_from(data.len())) else {
                return Err(Broken(
                    "a kernel's event is out of the wire's bounds".into(),
                ));
            };
            if t == 0 {
                return Err(Broken("a kernel's event has no topic".into()));
            }
            out.push(1);
            out.push(t);
            out.extend_from_slice(&d.to_le_bytes());
            out.extend_from_slice(topic);
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

fn apply(state: &mut State, out: &RowOut) {
    for (k, v) in &out.writes {
        state.put(k, v.clone());
    }
}

#[cfg(test)]
mod tests;
