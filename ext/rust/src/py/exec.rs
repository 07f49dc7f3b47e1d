//! Bindings of [`crate::exec`]: `BlockState` (the block's state: prefetched
//! parent values and the block's writes; the Python executor's overlay too),
//! `BlockCols` (a block's columns, copied once per block) and
//! `exec_constants` (kernel ids and refusal codes, checked against Python's at import).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::args::{byte_arg, seq_items, typed_arg};
use crate::exec;

/// `BlockCols(buf, key_first, key_start, key_len, n_read, n_write, sender,
/// nonce, expires_at, payload_start, payload_len)`: the columns of a
/// `tierchain.wire.batch.Batch` (`sender`: uint8[n, w]), checked and copied.
#[pyclass(module = "tierchain_native", frozen)]
struct BlockCols {
    buf: Vec<u8>,
    key_first: Vec<i64>,
    key_start: Vec<i64>,
    key_len: Vec<u8>,
    n_read: Vec<u8>,
    n_write: Vec<u8>,
    sender: Vec<u8>,
    sender_len: usize,
    nonce: Vec<u64>,
    expires_at: Vec<u64>,
    payload_start: Vec<i64>,
    payload_len: Vec<u32>,
}

impl BlockCols {
    fn cols(&self) -> exec::Cols<'_> {
        exec::Cols {
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
        }
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
    ) -> PyResult<BlockCols> {
        let nonce: Vec<u64> = typed_arg(nonce, "nonce", "uint64")?;
        let sender: Vec<u8> = typed_arg(sender, "sender", "uint8")?;
        let sender_len = if nonce.is_empty() { 0 } else { sender.len() / nonce.len() };
        let out = BlockCols {
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
        };
        out.cols().check().map_err(|e| PyValueError::new_err(e.0))?;
        Ok(out)
    }

    fn __len__(&self) -> usize {
        self.nonce.len()
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
        Ok(BlockState { inner, base: base.clone().unbind() })
    }

    /// The value of `key` now (the block's write, else the parent's).
    fn get<'py>(&mut self, py: Python<'py>, key: &Bound<'py, PyBytes>) -> PyResult<Option<Bound<'py, PyBytes>>> {
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
            out.set_item(PyBytes::new(py, k), v.as_deref().map(|v| PyBytes::new(py, v)))?;
        }
        Ok(out)
    }

    /// `run(cols, rows, bounds, kernels, height, timestamp_ms, default_suite, parallel)
    /// -> list[(code, topic, data)]`: the rows of `cols` listed in `rows` (int64; wave `w`
    /// is `rows[bounds[w]:bounds[w + 1]]`), each with kernel `kernels[row]` (uint8 per row
    /// of `cols`), in the block at `height` and `timestamp_ms` on a chain of the default
    /// crypto suite or not (`default_suite`); one outcome per entry of `rows`:
    /// its code and its event's topic and data (`None`, `None` when it has none).
    /// `parallel`: the waves are conflict-free (a scheduler's), so each wave's
    /// rows run at once on the pool. The GIL is released throughout.
    /// `ValueError`: a broken invariant (a key not prefetched, a nonce that is
    /// not a u64, bad rows or bounds); the state is then unspecified.
    #[pyo3(signature = (cols, rows, bounds, kernels, height, timestamp_ms, default_suite, parallel))]
    #[allow(clippy::too_many_arguments)]
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
    ) -> PyResult<Bound<'py, PyList>> {
        let rows: Vec<i64> = typed_arg(rows, "rows", "int64")?;
        let bounds: Vec<i64> = typed_arg(bounds, "bounds", "int64")?;
        let kernels: Vec<u8> = typed_arg(kernels, "kernels", "uint8")?;
        let as_u32 = |v: Vec<i64>, name: &str| -> PyResult<Vec<u32>> {
            v.into_iter()
                .map(|x| u32::try_from(x).map_err(|_| PyValueError::new_err(format!("{name}: {x} out of range"))))
                .collect()
        };
        let (rows, bounds) = (as_u32(rows, "rows")?, as_u32(bounds, "bounds")?);
        let block = cols.get();
        let state = &mut self.inner;
        let outs = py
            .detach(|| {
                let env = exec::BlockEnv { height, timestamp_ms, default_suite };
                exec::run(&block.cols(), state, &rows, &bounds, &kernels, &env, parallel)
            })
            .map_err(|e| PyValueError::new_err(e.0))?;
        let out = PyList::empty(py);
        for o in outs {
            let item = match o.event {
                Some((topic, data)) => PyTuple::new(
                    py,
                    [o.code.into_pyobject(py)?.into_any(), PyBytes::new(py, topic).into_any(), PyBytes::new(py, &data).into_any()],
                )?,
                None => PyTuple::new(py, [o.code.into_pyobject(py)?.into_any(), py.None().into_bound(py), py.None().into_bound(py)])?,
            };
            out.append(item)?;
        }
        Ok(out)
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
