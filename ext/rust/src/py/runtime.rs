//! The process-wide parts: the native thread pool's size and the allocator.

use std::os::raw::c_long;

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};
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
/// mimalloc keeps freed pages for a while (`purge_delay`: [`PURGE_DELAY_MS`]) so the next
/// allocation is cheap; after a one-off burst (the genesis bulk build of a
/// 10M-key tree) that memory would otherwise stay in the process's RSS.
/// Purging immediately on every free costs the state tree ~30% at 1M keys.
#[pyfunction]
fn release_memory(py: Python<'_>) {
    py.detach(|| unsafe { libmimalloc_sys::mi_collect(true) });
}

/// mimalloc's `mi_option_purge_delay`: its place in mimalloc 3's `mi_option_t`
/// (the build `libmimalloc-sys` makes), which the crate does not name.
/// `allocator_purge_delay_ms` reads it back; a test checks that
/// `MIMALLOC_PURGE_DELAY` lands there.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// How long mimalloc keeps freed memory before returning it to the OS, in ms,
/// unless `MIMALLOC_PURGE_DELAY` (or its old name `MIMALLOC_RESET_DELAY`)
/// says otherwise. mimalloc's default, 1 s, is shorter than the gaps between
/// a node's allocation bursts: every second it returned what was free between
/// two blocks, and the next block faulted it in again, the kernel zeroing
/// fresh 2 MiB transparent huge pages (`clear_page_erms` under
/// `mi_page_free_list_extend` in `perf record`). Measured with `python -m bench
/// run --accounts 10000 --seconds 8 --warmup 2` (docs/benchmarks.md): +12%
/// TPS, 12% fewer page faults. [`release_memory`] still returns memory at once.
pub const PURGE_DELAY_MS: c_long = 10_000;

/// Sets [`PURGE_DELAY_MS`] unless the environment sets the purge delay.
fn tune_allocator() {
    let set = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    if !set {
        // SAFETY: sets one option's value; mimalloc reads it when it next schedules a purge.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// `allocator_purge_delay_ms() -> int`: the native allocator's purge delay
/// now ([`PURGE_DELAY_MS`] unless `MIMALLOC_PURGE_DELAY` set another).
#[pyfunction]
fn allocator_purge_delay_ms() -> c_long {
    // SAFETY: reads one option's value.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tune_allocator();
    m.add_function(wrap_pyfunction!(thread_count, m)?)?;
    m.add_function(wrap_pyfunction!(release_memory, m)?)?;
    m.add_function(wrap_pyfunction!(allocator_purge_delay_ms, m)?)?;
    m.add("PURGE_DELAY_MS", PURGE_DELAY_MS)?;
    Ok(())
}
