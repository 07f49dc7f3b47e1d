//! Python arguments to Rust slices: the copy-or-borrow rule every binding
//! follows. `bytes` are immutable and borrowed; any other buffer (bytearray,
//! memoryview, numpy) is copied first, because another thread could change
//! it while the GIL is released. Sequences are kept alive for the whole call.

use std::ops::Deref;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

/// Bytes taken from a Python argument: borrowed from an immutable `bytes`
/// object, copied from any other buffer (which could be mutated while the GIL
/// is released).
pub(super) enum ByteArg<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Deref for ByteArg<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ByteArg::Borrowed(b) => b,
            ByteArg::Owned(v) => v,
        }
    }
}

pub(super) fn byte_arg<'a>(obj: &'a Bound<'_, PyAny>, name: &str) -> PyResult<ByteArg<'a>> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(ByteArg::Borrowed(bytes.as_bytes()));
    }
    let type_error = || {
        let type_name = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        PyTypeError::new_err(format!(
            "{name} must be a bytes-like object (bytes, bytearray, memoryview or uint8 array), \
             not {type_name}"
        ))
    };
    let buffer = PyBuffer::<u8>::get(obj).map_err(|_| type_error())?;
    Ok(ByteArg::Owned(
        buffer.to_vec(obj.py()).map_err(|_| type_error())?,
    ))
}

/// Items of a sequence argument, kept alive (referenced) for the whole call
/// so slices borrowed from them stay valid while the GIL is released, even if
/// the caller's list is changed meanwhile.
pub(super) fn seq_items<'py>(
    seq: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let type_error =
        || PyTypeError::new_err(format!("{name} must be a sequence of bytes-like objects"));
    // Lists and tuples directly: the generic sequence protocol costs about
    // as much as hashing 32-byte Merkle leaves.
    if let Ok(list) = seq.cast::<PyList>() {
        return Ok(list.iter().collect());
    }
    if let Ok(tuple) = seq.cast::<PyTuple>() {
        return Ok(tuple.iter().collect());
    }
    if seq.is_instance_of::<PyString>() || seq.is_instance_of::<PyBytes>() {
        return Err(type_error());
    }
    seq.extract::<Vec<Bound<'py, PyAny>>>()
        .map_err(|_| type_error())
}

/// Views of `items` as byte slices: `bytes` are borrowed as they are; any
/// other bytes-like item is copied into `copies` first (it could be mutated
/// while the GIL is released).
pub(super) fn item_slices<'a>(
    items: &'a [Bound<'_, PyAny>],
    copies: &'a mut Vec<(usize, Vec<u8>)>,
    name: &str,
) -> PyResult<Vec<&'a [u8]>> {
    for (i, item) in items.iter().enumerate() {
        if !item.is_instance_of::<PyBytes>() {
            let copy = byte_arg(item, name)?.to_vec();
            copies.push((i, copy));
        }
    }
    let mut next_copy = copies.iter().peekable();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match next_copy.next_if(|(j, _)| *j == i) {
            Some((_, copy)) => out.push(&copy[..]),
            None => out.push(item.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes()),
        }
    }
    Ok(out)
}

pub(super) fn i64_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    if let Ok(buffer) = PyBuffer::<i64>::get(obj) {
        return buffer.to_vec(obj.py());
    }
    obj.extract::<Vec<i64>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be an int64 buffer (e.g. numpy int64 array) or a sequence of ints"
        ))
    })
}

pub(super) fn runtime_error(message: String) -> PyErr {
    PyRuntimeError::new_err(message)
}

/// A typed buffer argument (a numpy array of `T`'s dtype, C-contiguous or not), copied.
pub(super) fn typed_arg<T: pyo3::buffer::Element + Copy>(
    obj: &Bound<'_, PyAny>,
    name: &str,
    dtype: &str,
) -> PyResult<Vec<T>> {
    PyBuffer::<T>::get(obj)
        .and_then(|b| b.to_vec(obj.py()))
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{name} must be a {dtype} buffer (numpy {dtype} array)"
            ))
        })
}
