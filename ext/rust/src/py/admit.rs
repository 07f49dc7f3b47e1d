//! `NonceBook`: [`crate::admit::NonceBook`] for the mempool (`engine/mempool.py`).
//!
//! Columns come packed: sender keys and tx ids as `bytes` of 32-byte rows,
//! nonces as a uint64 buffer. The GIL is held: a batch's bookkeeping is a few
//! tens of microseconds, and the mempool calls under its own lock.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::args::{byte_arg, typed_arg};
use crate::admit::{self, DoneError, Key, WIDTH};

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
        let k = keys(sender, "sender")?;
        let [k] = k.as_slice() else {
            return Err(PyValueError::new_err("sender: one 32-byte key"));
        };
        Ok(self.book.pending(k).map(|p| (p.committed, p.count)))
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
        let senders = keys(&byte_arg(senders, "senders")?, "senders")?;
        Ok(PyBytes::new(py, self.book.unknown(&senders).as_flattened()))
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

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NonceBook>()
}
