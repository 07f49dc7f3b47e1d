//! The process-wide parts: the native thread pool's size and the allocator.

use pyo3::prelude::*;

use super::args::runtime_error;
use crate::pool;

/// `thread_count() -> int`: workers in the native pool.
#[pyfunction]
fn thread_count() -> PyResult<usize> {
    Ok(pool::pool().map_err(runtime_error)?.current_num_threads())
}

/// `release_memory()`: return the native allocator's freed memory to the OS now.
///
/// mimalloc keeps freed pages for a while (`purge_delay`, 1 s) so the next
/// allocation is cheap; after a one-off burst (the genesis bulk build of a
/// 10M-key tree) that memory would otherwise stay in the process's RSS.
/// Purging immediately on every free costs the state tree ~30% at 1M keys.
#[pyfunction]
fn release_memory(py: Python<'_>) {
    py.detach(|| unsafe { libmimalloc_sys::mi_collect(true) });
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(thread_count, m)?)?;
    m.add_function(wrap_pyfunction!(release_memory, m)?)?;
    Ok(())
}
