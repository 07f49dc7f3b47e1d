//! Bindings of [`crate::exec`]: `BlockState` (the block's state: prefetched
//! parent values and the block's writes; the Python executor's overlay too; read
//! straight from LMDB by `BlockState.read`),
//! `BlockCols` (a block's columns, copied once per block) and
//! `exec_constants` (kernel ids and refusal codes, checked against Python's at import).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use super::args::{byte_arg, seq_items, typed_arg};
use super::lmdb::LmdbTxn;
use crate::exec;

/// `BlockCols(buf, key_first, key_start, key_len, n_read, n_write, sender,
/// nonce, expires_at, payload_start, payload_len, digest)`: the columns of a
/// `tierchain.wire.batch.Batch` (`sender`: uint8[n, w]; `digest`: uint8[n, 32],
/// the tx ids), checked and copied.
#[pyclass(module = "tierchain_native", frozen)]
struct BlockCols {
    inner: exec::OwnedCols,
}

impl BlockCols {
    fn cols(&self) -> exec::Cols<'_> {
        self.inner.cols()
    }
}

#[pymethods]
impl BlockCols {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        buf: &Bound<'_, PyAny>,
        key_first: &Bound<'_, PyAny>,
        key_start: &Bound<'_, PyAny>,
        key_len: &Bound<'_, PyAny>,
        n_read: &Bound<'_, PyAny>,
        n_write: &Bound<'_, PyAny>,
        sender: &Bound<'_, PyAny>,
        nonce: &Bound<'_, PyAny>,
        expires_at: &Bound<'_, PyAny>,
        payload_start: &Bound<'_, PyAny>,
        payload_len: &Bound<'_, PyAny>,
        digest: &Bound<'_, PyAny>,
    ) -> PyResult<BlockCols> {
        let nonce: Vec<u64> = typed_arg(nonce, "nonce", "uint64")?;
        let sender: Vec<u8> = typed_arg(sender, "sender", "uint8")?;
        let sender_len = if nonce.is_empty() {
            0
        } else {
            sender.len() / nonce.len()
        };
        let inner = exec::OwnedCols {
            buf: byte_arg(buf, "buf")?.to_vec(),
            key_first: typed_arg(key_first, "key_first", "int64")?,
            key_start: typed_arg(key_start, "key_start", "int64")?,
            key_len: typed_arg(key_len, "key_len", "uint8")?,
            n_read: typed_arg(n_read, "n_read", "uint8")?,
            n_write: typed_arg(n_write, "n_write", "uint8")?,
            sender,
            sender_len,
            nonce,
            expires_at: typed_arg(expires_at, "expires_at", "uint64")?,
            payload_start: typed_arg(payload_start, "payload_start", "int64")?,
            payload_len: typed_arg(payload_len, "payload_len", "uint32")?,
            digest: typed_arg(digest, "digest", "uint8")?,
        };
        inner
            .cols()
            .check()
            .map_err(|e| PyValueError::new_err(e.0))?;
        Ok(BlockCols { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.nonce.len()
    }

    /// Every key the block may touch, sorted and unique: its declared keys and
    /// its senders' nonce keys (`b"\x00n" + sender`).
    fn declared_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let cols = self.cols();
        // A millisecond or so of sorting: kept under the GIL (handing it back can
        // cost a switch interval when other threads run Python).
        let keys = cols.declared_keys();
        PyList::new(py, keys.iter().map(|k| PyBytes::new(py, k)))
    }
}

/// `BlockState(keys, base)`: the block's state over the parent values of
/// `keys` (every key the block may touch), read from `base` (a dict, or a
/// callable key -> bytes | None). `get` of any other key asks `base` (Python
/// handlers only; a native row reading one is a broken invariant).
#[pyclass(module = "tierchain_native")]
struct BlockState {
    inner: exec::State,
    base: Py<PyAny>,
}

fn value_of(v: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
    if v.is_none() {
        return Ok(None);
    }
    Ok(Some(
        v.cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("a state value must be bytes or None"))?
            .as_bytes()
            .to_vec(),
    ))
}

#[pymethods]
impl BlockState {
    #[new]
    fn new(keys: &Bound<'_, PyAny>, base: &Bound<'_, PyAny>) -> PyResult<BlockState> {
        let mut inner = exec::State::new();
        let dict = base.cast::<PyDict>().ok();
        for key in seq_items(keys, "keys")? {
            let k = byte_arg(&key, "keys[i]")?;
            let v = match dict {
                Some(d) => d.get_item(&key)?,
                None => Some(base.call1((&key,))?),
            };
            let v = match v {
                Some(v) => value_of(&v)?,
                None => None,
            };
            inner.prefetch(&k, v.as_deref());
        }
        Ok(BlockState {
            inner,
            base: base.clone().unbind(),
        })
    }

    /// `BlockState.read(txn, dbi, cols, overlays)`: the state of the block whose columns
    /// are `cols` (a `BlockCols`) over database `dbi` of `txn` (a transaction of this
    /// thread): each key the block may touch (`cols.declared_keys()`) valued from the
    /// newest of `overlays` holding it, else from the database; a key outside them reads
    /// as absent. `overlays`, oldest first: the writes of blocks not in the database yet,
    /// each a dict (`None` is a deletion) or the `BlockState` that executed the block (its
    /// writes, looked up natively). The state `BlockState(keys, txn.get_many(dbi, keys,
    /// overlays))` holds, in one call, without a Python object per value (nor per key
    /// unless an overlay is a dict); the database is read with the GIL released.
    #[staticmethod]
    fn read(
        py: Python<'_>,
        txn: PyRef<'_, LmdbTxn>,
        dbi: u32,
        cols: &Bound<'_, BlockCols>,
        overlays: &Bound<'_, PyList>,
    ) -> PyResult<BlockState> {
        enum Overlay<'py> {
            Native(PyRef<'py, BlockState>),
            Dict(Bound<'py, PyDict>),
        }
        let mut sets = Vec::with_capacity(overlays.len());
        for o in overlays.iter() {
            sets.push(match o.cast_into::<BlockState>() {
                Ok(state) => Overlay::Native(state.try_borrow()?),
                Err(e) => {
                    Overlay::Dict(e.into_inner().cast_into::<PyDict>().map_err(|_| {
                        PyTypeError::new_err("overlays must be dicts or BlockStates")
                    })?)
                }
            });
        }
        let cols = cols.get().cols();
        // A dict overlay (a write-ahead log's, after a restart) is looked up holding the
        // GIL: the newest dict holding each key, by overlay index. The rest (listing the
        // keys, the executed blocks' writes, the database) runs without it.
        let mut listed = None;
        let mut dict_hits: Vec<Option<(usize, Option<Vec<u8>>)>> = Vec::new();
        if sets.iter().any(|s| matches!(s, Overlay::Dict(_))) {
            let keys = cols.declared_keys();
            for key in &keys {
                let k = PyBytes::new(py, key);
                let mut hit = None;
                for (j, set) in sets.iter().enumerate().rev() {
                    if let Overlay::Dict(d) = set
                        && let Some(v) = d.get_item(&k)?
                    {
                        hit = Some((j, value_of(&v)?));
                        break;
                    }
                }
                dict_hits.push(hit);
            }
            listed = Some(keys);
        }
        let natives: Vec<Option<&exec::State>> = sets
            .iter()
            .map(|s| match s {
                Overlay::Native(state) => Some(&state.inner),
                Overlay::Dict(_) => None,
            })
            .collect();
        let inner = txn.with_reader(py, dbi, true, move |db| {
            let keys = listed.unwrap_or_else(|| cols.declared_keys());
            let mut inner = exec::State::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate() {
                let mut held = None;
                for (j, state) in natives.iter().enumerate().rev() {
                    held = match (state, dict_hits.get(i)) {
                        (Some(state), _) => state.written(key),
                        (None, Some(Some((at, v)))) if *at == j => Some(v.as_deref()),
                        (None, _) => None,
                    };
                    if held.is_some() {
                        break;
                    }
                }
                let value = match held {
                    Some(v) => v,
                    None => db.get(key)?,
                };
                inner.prefetch(key, value);
            }
            Ok(inner)
        })?;
        Ok(BlockState {
            inner,
            base: PyDict::new(py).into_any().unbind(),
        })
    }

    /// The value of `key` now (the block's write, else the parent's).
    fn get<'py>(
        &mut self,
        py: Python<'py>,
        key: &Bound<'py, PyBytes>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let k = key.as_bytes();
        if !self.inner.is_prefetched(k) && self.inner.get(k).is_err() {
            let base = self.base.bind(py);
            let v = match base.cast::<PyDict>() {
                Ok(d) => d.get_item(key)?,
                Err(_) => Some(base.call1((key,))?),
            };
            let v = match v {
                Some(v) => value_of(&v)?,
                None => None,
            };
            self.inner.prefetch(k, v.as_deref());
        }
        let v = self.inner.get(k).map_err(|e| PyValueError::new_err(e.0))?;
        Ok(v.map(|v| PyBytes::new(py, v)))
    }

    /// Writes `value` (`None` deletes) to `key`.
    fn put(&mut self, key: &Bound<'_, PyBytes>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = value_of(value)?;
        self.inner.put(key.as_bytes(), v.map(Into::into));
        Ok(())
    }

    /// Writes every item of `writes` (a dict key -> bytes | None), in its order.
    fn update(&mut self, writes: &Bound<'_, PyDict>) -> PyResult<()> {
        for (k, v) in writes.iter() {
            let k = k
                .cast::<PyBytes>()
                .map_err(|_| PyTypeError::new_err("a state key must be bytes"))?;
            let v = value_of(&v)?;
            self.inner.put(k.as_bytes(), v.map(Into::into));
        }
        Ok(())
    }

    /// The block's writes: a dict key -> bytes | None, in first-write order.
    fn writes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (k, v) in self.inner.writes() {
            out.set_item(
                PyBytes::new(py, k),
                v.as_deref().map(|v| PyBytes::new(py, v)),
            )?;
        }
        Ok(out)
    }

    /// `run(cols, rows, bounds, kernels, height, timestamp_ms, default_suite, parallel,
    /// receipts, encoded, types, tx_ids) -> (done, deferred, failed)`: the rows of `cols`
    /// listed in `rows` (int64; wave `w` is `rows[bounds[w]:bounds[w + 1]]`), each with
    /// kernel `kernels[row]` (uint8 per row of `cols`), in the block at `height` and
    /// `timestamp_ms` on a chain of the default crypto suite or not (`default_suite`).
    /// Each row's receipt goes into `receipts[row]` (a `types = (Receipt, Event)`
    /// instance, made as their dataclass `__init__` would) and its encoding into
    /// `encoded[row]`; a receipt's tx id is `tx_ids[row]` (the block's ids as bytes, one
    /// object shared with the caller). `done`: how many entries of `rows` ran (fewer
    /// when a row was deferred: `exec::run`); `deferred`: the rows left to the Python
    /// handler (no receipt); `failed`: rows refused with `HANDLER_FAILED` (a stored
    /// value that does not parse), for the log. `parallel`: the waves are
    /// conflict-free (a scheduler's), so each wave's rows run at once on the pool. The
    /// GIL is released while the rows run. `ValueError`: a broken invariant (a key not
    /// prefetched, a nonce that is not a u64, bad rows or bounds); the state is then
    /// unspecified.
    #[pyo3(signature = (cols, rows, bounds, kernels, height, timestamp_ms, default_suite, parallel, receipts, encoded, types, tx_ids))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        cols: &Bound<'py, BlockCols>,
        rows: &Bound<'py, PyAny>,
        bounds: &Bound<'py, PyAny>,
        kernels: &Bound<'py, PyAny>,
        height: u64,
        timestamp_ms: u64,
        default_suite: bool,
        parallel: bool,
        receipts: &Bound<'py, PyList>,
        encoded: &Bound<'py, PyList>,
        types: (Bound<'py, PyType>, Bound<'py, PyType>),
        tx_ids: &Bound<'py, PyList>,
    ) -> PyResult<(usize, Vec<u32>, Vec<u32>)> {
        let rows: Vec<i64> = typed_arg(rows, "rows", "int64")?;
        let bounds: Vec<i64> = typed_arg(bounds, "bounds", "int64")?;
        let kernels: Vec<u8> = typed_arg(kernels, "kernels", "uint8")?;
        let as_u32 = |v: Vec<i64>, name: &str| -> PyResult<Vec<u32>> {
            v.into_iter()
                .map(|x| {
                    u32::try_from(x)
                        .map_err(|_| PyValueError::new_err(format!("{name}: {x} out of range")))
                })
                .collect()
        };
        let (rows, bounds) = (as_u32(rows, "rows")?, as_u32(bounds, "bounds")?);
        let block = cols.get();
        let n = block.inner.nonce.len();
        if receipts.len() != n || encoded.len() != n || tx_ids.len() != n {
            return Err(PyValueError::new_err(
                "receipts, encoded and tx_ids: one entry per row of cols",
            ));
        }
        let (receipt_type, event_type) = types;
        let make = FrozenMaker::new(py, [&receipt_type, &event_type])?; // before any row runs
        // Every row's tx-id object, checked before any row runs: a refusal here leaves the
        // state as it was.
        let mut ids = Vec::with_capacity(rows.len());
        for &r in &rows {
            let r = r as usize;
            if r >= n {
                return Err(PyValueError::new_err(format!("rows: row {r} of {n}")));
            }
            let id = tx_ids.get_item(r)?;
            if id.cast::<PyBytes>().ok().map(|b| b.as_bytes()) != Some(block.cols().tx_id(r)) {
                return Err(PyValueError::new_err(format!(
                    "tx_ids[{r}] is not the row's tx id"
                )));
            }
            ids.push(id);
        }
        let state = &mut self.inner;
        let (outs, bytes) = py
            .detach(|| {
                let c = block.cols();
                let env = exec::BlockEnv {
                    height,
                    timestamp_ms,
                    default_suite,
                };
                let outs = exec::run(&c, state, &rows, &bounds, &kernels, &env, parallel)?;
                let bytes = rows
                    .iter()
                    .zip(&outs)
                    .map(|(&r, o)| match o.code {
                        exec::codes::DEFER => Ok(Vec::new()),
                        code => exec::encode_receipt(c.tx_id(r as usize), code, o.event.as_ref()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((outs, bytes))
            })
            .map_err(|e: exec::Broken| PyValueError::new_err(e.0))?;
        let (mut deferred, mut failed) = (Vec::new(), Vec::new());
        let mut topics: Vec<(&'static [u8], Bound<'py, PyBytes>)> = Vec::new(); // one object per topic
        for (((&r, o), rc), tx_id) in rows.iter().zip(&outs).zip(&bytes).zip(ids) {
            match o.code {
                exec::codes::DEFER => {
                    deferred.push(r);
                    continue;
                }
                exec::codes::HANDLER_FAILED => failed.push(r),
                _ => {}
            }
            let events = match &o.event {
                None => PyTuple::empty(py),
                Some((topic, data)) => {
                    let topic = match topics.iter().find(|(t, _)| t == topic) {
                        Some((_, b)) => b.clone(),
                        None => {
                            let b = PyBytes::new(py, topic);
                            topics.push((topic, b.clone()));
                            b
                        }
                    };
                    let ev = make.instance(
                        &event_type,
                        [
                            (intern!(py, "topic"), topic.into_any()),
                            (intern!(py, "data"), PyBytes::new(py, data).into_any()),
                        ],
                    )?;
                    PyTuple::new(py, [ev])?
                }
            };
            let receipt = make.instance(
                &receipt_type,
                [
                    (intern!(py, "tx_id"), tx_id),
                    (intern!(py, "code"), o.code.into_pyobject(py)?.into_any()),
                    (intern!(py, "events"), events.into_any()),
                ],
            )?;
            receipts.set_item(r as usize, receipt)?;
            encoded.set_item(r as usize, PyBytes::new(py, rc))?;
        }
        Ok((outs.len(), deferred, failed))
    }
}

/// Makes instances of frozen slotted dataclasses (`Receipt`, `Event`) as their
/// generated `__init__` does — allocate, then `object.__setattr__` per field —
/// with C calls (`PyType_GenericAlloc`, `PyObject_GenericSetAttr`) and field
/// names interned once, instead of building argument tuples per call.
struct FrozenMaker<'py> {
    py: Python<'py>,
}

impl<'py> FrozenMaker<'py> {
    /// `types`: the classes it will make instances of. Each must be a class defined
    /// in Python directly on `object` (as `Receipt` and `Event` are): a zeroed instance
    /// of any other type (`type`, `numpy.ndarray`, a function, ...) is not a valid object
    /// and crashes the interpreter when it is used or freed.
    fn new(py: Python<'py>, types: [&Bound<'py, PyType>; 2]) -> PyResult<Self> {
        for tp in types {
            let t = tp.as_type_ptr();
            // SAFETY: `t` is a live type object (borrowed for 'py); the limited API's
            // accessors of its flags and slots (on a static type too since 3.10).
            let plain = unsafe {
                let object = std::ptr::addr_of_mut!(pyo3::ffi::PyBaseObject_Type);
                let alloc = pyo3::ffi::PyType_GenericAlloc as *mut std::ffi::c_void;
                pyo3::ffi::PyType_GetFlags(t) & pyo3::ffi::Py_TPFLAGS_HEAPTYPE != 0
                    && std::ptr::eq(
                        pyo3::ffi::PyType_GetSlot(t, pyo3::ffi::Py_tp_base),
                        object.cast(),
                    )
                    && std::ptr::eq(pyo3::ffi::PyType_GetSlot(t, pyo3::ffi::Py_tp_alloc), alloc)
            };
            if !plain {
                return Err(PyTypeError::new_err(format!(
                    "types: {} is not a Python class on object (Receipt, Event)",
                    tp.name()?
                )));
            }
        }
        Ok(FrozenMaker { py })
    }

    fn instance<const N: usize>(
        &self,
        tp: &Bound<'py, PyType>,
        fields: [(&Bound<'py, PyString>, Bound<'py, PyAny>); N],
    ) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: `tp` is a live type object (borrowed for 'py); PyType_GenericAlloc
        // returns a new reference or NULL with an exception set, which
        // `from_owned_ptr_or_err` turns into a PyErr.
        let obj = unsafe {
            Bound::from_owned_ptr_or_err(
                self.py,
                pyo3::ffi::PyType_GenericAlloc(tp.as_type_ptr(), 0),
            )?
        };
        for (field, value) in fields {
            // SAFETY: all three pointers are live objects held by Bound values for
            // the call; the function does not steal references and returns -1 with
            // an exception set on failure.
            let rc = unsafe {
                pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), field.as_ptr(), value.as_ptr())
            };
            if rc != 0 {
                return Err(PyErr::fetch(self.py));
            }
        }
        Ok(obj)
    }
}

/// `finance_codes() -> dict`: the finance refusal codes the finance kernels return, by
/// name (`tierchain.apps.finance.codes.FinanceReject`'s names; tested against it).
#[pyfunction]
fn finance_codes<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let codes = PyDict::new(py);
    for (name, c) in exec::fcodes::ALL {
        codes.set_item(name, c)?;
    }
    Ok(codes)
}

/// `exec_constants() -> (kernels, codes)`: kernel ids by name and the refusal
/// codes the executor returns, by name (`tierchain.errors.Reject`'s names).
#[pyfunction]
fn exec_constants<'py>(py: Python<'py>) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let kernels = PyDict::new(py);
    for (name, k) in exec::Kernel::ALL {
        kernels.set_item(name, k as u8)?;
    }
    let codes = PyDict::new(py);
    for (name, c) in exec::codes::ALL {
        codes.set_item(name, c)?;
    }
    Ok((kernels, codes))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BlockCols>()?;
    m.add_class::<BlockState>()?;
    m.add_function(wrap_pyfunction!(exec_constants, m)?)?;
    m.add_function(wrap_pyfunction!(finance_codes, m)?)?;
    Ok(())
}
