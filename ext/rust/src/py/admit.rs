//! `NonceBook`: [`crate::admit::NonceBook`] for the mempool (`engine/mempool.py`);
//! `NonceSequencer` and `SeenSet`: [`crate::admit::check`] for a replicated
//! node's CheckTx (`replication/app.py`).
//!
//! Columns come packed: sender keys and tx ids as `bytes` of 32-byte rows,
//! nonces as a uint64 buffer, masks as bool buffers; verdicts go back as one
//! byte per row. The GIL is held: a batch's bookkeeping is a few tens of
//! microseconds, and the callers call under their own locks.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::args::{byte_arg, typed_arg};
use crate::admit::{self, DoneError, Key, WIDTH, check};

fn keys(packed: &[u8], name: &str) -> PyResult<Vec<Key>> {
    if !packed.len().is_multiple_of(WIDTH) {
        return Err(PyValueError::new_err(format!(
            "{name}: {} bytes is not a whole number of {WIDTH}-byte rows",
            packed.len()
        )));
    }
    Ok(packed
        .chunks_exact(WIDTH)
        .map(|c| c.try_into().expect("WIDTH bytes"))
        .collect())
}

/// `packed` as exactly one key (`ValueError` naming `name` otherwise).
fn one_key(packed: &[u8], name: &str) -> PyResult<Key> {
    match keys(packed, name)?.as_slice() {
        [k] => Ok(*k),
        _ => Err(PyValueError::new_err(format!(
            "{name}: one {WIDTH}-byte key"
        ))),
    }
}

/// The keys of `senders` (packed) that `unknown` lists, packed.
fn unknown_of<'py>(
    py: Python<'py>,
    senders: &Bound<'py, PyAny>,
    unknown: impl FnOnce(&[Key]) -> Vec<Key>,
) -> PyResult<Bound<'py, PyBytes>> {
    let senders = keys(&byte_arg(senders, "senders")?, "senders")?;
    Ok(PyBytes::new(py, unknown(&senders).as_flattened()))
}

fn hex(k: &Key) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

/// The mempool's nonce sequence per sender and its pending tx ids (module
/// docs of `crate::admit`).
#[pyclass(module = "tierchain_native")]
pub(super) struct NonceBook {
    book: admit::NonceBook,
}

#[pymethods]
impl NonceBook {
    /// A book of at most `txs_max` pending transactions, `sender_pending_max`
    /// per sender, for `key_bytes`-byte sender keys and `id_bytes`-byte tx ids
    /// (32 each: other widths are refused).
    #[new]
    fn new(
        key_bytes: usize,
        id_bytes: usize,
        txs_max: usize,
        sender_pending_max: u32,
    ) -> PyResult<NonceBook> {
        if key_bytes != WIDTH || id_bytes != WIDTH {
            return Err(PyValueError::new_err(format!(
                "NonceBook keeps {WIDTH}-byte sender keys and tx ids, not {key_bytes} and {id_bytes}"
            )));
        }
        Ok(NonceBook {
            book: admit::NonceBook::new(txs_max, sender_pending_max),
        })
    }

    /// Transactions pending.
    fn __len__(&self) -> usize {
        self.book.len()
    }

    /// Senders with pending transactions.
    #[getter]
    fn senders(&self) -> usize {
        self.book.senders()
    }

    /// `(committed nonce, pending count)` of a sender with pending transactions, else `None`.
    fn pending(&self, sender: &[u8]) -> PyResult<Option<(u64, u32)>> {
        let k = one_key(sender, "sender")?;
        Ok(self.book.pending(&k).map(|p| (p.committed, p.count)))
    }

    /// Whether the tx id `tx_id` is pending.
    fn contains(&self, tx_id: &[u8]) -> PyResult<bool> {
        let k = keys(tx_id, "tx_id")?;
        Ok(matches!(k.as_slice(), [k] if self.book.contains_id(k)))
    }

    /// The distinct senders of `senders` (packed) without pending
    /// transactions, packed, in first-seen order.
    fn unknown<'py>(
        &self,
        py: Python<'py>,
        senders: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        unknown_of(py, senders, |s| self.book.unknown(s))
    }

    /// A verdict byte per row (0 accepted, 1 duplicate id, 2 nonce too low,
    /// 3 nonce too high, 4 book full, 5 sender limit); accepted rows are
    /// pending from now on. `fresh` (packed) and `committed` (uint64): the
    /// committed nonce of each sender `unknown` listed.
    fn admit<'py>(
        &mut self,
        py: Python<'py>,
        senders: &Bound<'py, PyAny>,
        ids: &Bound<'py, PyAny>,
        nonces: &Bound<'py, PyAny>,
        fresh: &Bound<'py, PyAny>,
        committed: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let senders = keys(&byte_arg(senders, "senders")?, "senders")?;
        let ids = keys(&byte_arg(ids, "ids")?, "ids")?;
        let nonces = typed_arg::<u64>(nonces, "nonces", "uint64")?;
        let fresh = keys(&byte_arg(fresh, "fresh")?, "fresh")?;
        let committed = typed_arg::<u64>(committed, "committed", "uint64")?;
        if senders.len() != ids.len() || ids.len() != nonces.len() || fresh.len() != committed.len()
        {
            return Err(PyValueError::new_err(format!(
                "{} senders, {} ids, {} nonces; {} fresh senders, {} committed nonces",
                senders.len(),
                ids.len(),
                nonces.len(),
                fresh.len(),
                committed.len()
            )));
        }
        let fresh: Vec<(Key, u64)> = fresh.into_iter().zip(committed).collect();
        let verdicts = self.book.admit(&senders, &ids, &nonces, &fresh);
        let bytes: Vec<u8> = verdicts.into_iter().map(|v| v as u8).collect();
        Ok(PyBytes::new(py, &bytes))
    }

    /// A block committed these transactions (packed `senders[i]`'s `ids[i]`).
    /// `ValueError` if a sender has fewer pending or an id is not pending;
    /// then nothing changed.
    fn done(&mut self, senders: &Bound<'_, PyAny>, ids: &Bound<'_, PyAny>) -> PyResult<()> {
        let senders = keys(&byte_arg(senders, "senders")?, "senders")?;
        let ids = keys(&byte_arg(ids, "ids")?, "ids")?;
        if senders.len() != ids.len() {
            return Err(PyValueError::new_err(format!(
                "{} senders, {} ids",
                senders.len(),
                ids.len()
            )));
        }
        self.book.done(&senders, &ids).map_err(|e| {
            PyValueError::new_err(match e {
                DoneError::NotPending(s) => {
                    format!("sender {} has fewer transactions pending", hex(&s))
                }
                DoneError::UnknownId(i) => format!("transaction {} is not pending", hex(&i)),
            })
        })
    }
}

/// `mask`, one byte per row of `rows` (a numpy bool array's bytes: nonzero is
/// set), as bools; `None`: empty, meaning "every row".
fn mask_arg(mask: Option<&Bound<'_, PyAny>>, rows: usize, name: &str) -> PyResult<Vec<bool>> {
    let Some(mask) = mask else {
        return Ok(Vec::new());
    };
    let mask = byte_arg(mask, name)?;
    if mask.len() != rows {
        return Err(PyValueError::new_err(format!(
            "{name}: {} values for {rows} rows",
            mask.len()
        )));
    }
    Ok(mask.iter().map(|&b| b != 0).collect())
}

/// A replicated node's CheckTx nonce view: each sender's committed nonce
/// and the next one this node expects, since the last `clear` (module docs
/// of `crate::admit::check`).
#[pyclass(module = "tierchain_native")]
pub(super) struct NonceSequencer {
    seq: check::Sequencer,
}

#[pymethods]
impl NonceSequencer {
    /// At most `pending_max` checked transactions ahead of a sender's
    /// committed nonce.
    #[new]
    fn new(pending_max: u64) -> NonceSequencer {
        NonceSequencer {
            seq: check::Sequencer::new(pending_max),
        }
    }

    /// Senders with an entry.
    fn __len__(&self) -> usize {
        self.seq.len()
    }

    /// `(committed, next)` of a sender with an entry, else `None`.
    fn get(&self, sender: &[u8]) -> PyResult<Option<(u64, u64)>> {
        Ok(self.seq.get(&one_key(sender, "sender")?))
    }

    /// The distinct senders of `senders` (packed) without an entry, packed,
    /// in first-seen order.
    fn unknown<'py>(
        &self,
        py: Python<'py>,
        senders: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        unknown_of(py, senders, |s| self.seq.unknown(s))
    }

    /// A verdict byte per row (0 accepted, 2 nonce too low, 3 nonce too high,
    /// 5 sender limit: `NonceBook.admit`'s numbering). `lenient` (a byte per
    /// row, or `None`): rows admitted already, accepted whatever their nonce. `fresh`
    /// (packed) and `committed` (uint64): the committed nonce of each sender
    /// `unknown` listed.
    #[pyo3(signature = (senders, nonces, fresh, committed, lenient=None))]
    fn check<'py>(
        &mut self,
        py: Python<'py>,
        senders: &Bound<'py, PyAny>,
        nonces: &Bound<'py, PyAny>,
        fresh: &Bound<'py, PyAny>,
        committed: &Bound<'py, PyAny>,
        lenient: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let senders = keys(&byte_arg(senders, "senders")?, "senders")?;
        let nonces = typed_arg::<u64>(nonces, "nonces", "uint64")?;
        let fresh = keys(&byte_arg(fresh, "fresh")?, "fresh")?;
        let committed = typed_arg::<u64>(committed, "committed", "uint64")?;
        if senders.len() != nonces.len() || fresh.len() != committed.len() {
            return Err(PyValueError::new_err(format!(
                "{} senders, {} nonces; {} fresh senders, {} committed nonces",
                senders.len(),
                nonces.len(),
                fresh.len(),
                committed.len()
            )));
        }
        let lenient = mask_arg(lenient, senders.len(), "lenient")?;
        let fresh: Vec<(Key, u64)> = fresh.into_iter().zip(committed.iter().copied()).collect();
        let verdicts = self.seq.check(&senders, &nonces, &lenient, &fresh);
        let bytes: Vec<u8> = verdicts.into_iter().map(|v| v as u8).collect();
        Ok(PyBytes::new(py, &bytes))
    }

    /// These checked transactions (packed `senders[i]`'s `nonces[i]`) will
    /// not reach a block: each sender's sequence goes back to the lowest.
    fn give_back(&mut self, senders: &Bound<'_, PyAny>, nonces: &Bound<'_, PyAny>) -> PyResult<()> {
        let senders = keys(&byte_arg(senders, "senders")?, "senders")?;
        let nonces = typed_arg::<u64>(nonces, "nonces", "uint64")?;
        if senders.len() != nonces.len() {
            return Err(PyValueError::new_err(format!(
                "{} senders, {} nonces",
                senders.len(),
                nonces.len()
            )));
        }
        self.seq.give_back(&senders, &nonces);
        Ok(())
    }

    /// Forgets every sender.
    fn clear(&mut self) {
        self.seq.clear();
    }
}

/// `SeenSet(width, max)`: a set of `width`-byte keys, at most `max`, the
/// oldest forgotten first; columns of keys come packed.
#[pyclass(module = "tierchain_native")]
pub(super) struct SeenSet {
    set: check::SeenSet,
}

impl SeenSet {
    fn rows<'a>(&self, packed: &'a [u8], name: &str) -> PyResult<&'a [u8]> {
        let w = self.set.width();
        if !packed.len().is_multiple_of(w) {
            return Err(PyValueError::new_err(format!(
                "{name}: {} bytes is not a whole number of {w}-byte keys",
                packed.len()
            )));
        }
        Ok(packed)
    }
}

#[pymethods]
impl SeenSet {
    #[new]
    fn new(width: usize, max: usize) -> PyResult<SeenSet> {
        if width == 0 {
            return Err(PyValueError::new_err("width must be at least 1"));
        }
        Ok(SeenSet {
            set: check::SeenSet::new(width, max),
        })
    }

    fn __len__(&self) -> usize {
        self.set.len()
    }

    /// A bool per key of `keys` (packed): whether it is in the set.
    fn contains<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let packed = byte_arg(keys, "keys")?;
        let found = self.set.contains(self.rows(&packed, "keys")?);
        Ok(PyBytes::new(
            py,
            &found.into_iter().map(u8::from).collect::<Vec<u8>>(),
        ))
    }

    /// Adds the keys of `keys` (packed) whose `mask` (a byte per key, or
    /// `None`: all) is set; then forgets the oldest beyond `max`.
    #[pyo3(signature = (keys, mask=None))]
    fn add(&mut self, keys: &Bound<'_, PyAny>, mask: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let packed = byte_arg(keys, "keys")?;
        let rows = self.rows(&packed, "keys")?;
        let mask = mask_arg(mask, rows.len() / self.set.width(), "mask")?;
        self.set.add(rows, &mask);
        Ok(())
    }

    /// Removes the keys of `keys` (packed); a bool per key: whether it was there.
    fn take<'py>(
        &mut self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let packed = byte_arg(keys, "keys")?;
        let rows = self.rows(&packed, "keys")?;
        let found = self.set.take(rows);
        Ok(PyBytes::new(
            py,
            &found.into_iter().map(u8::from).collect::<Vec<u8>>(),
        ))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NonceBook>()?;
    m.add_class::<NonceSequencer>()?;
    m.add_class::<SeenSet>()
}
