//! LMDB for the chain's store (`core/tierchain/state/storage.py`).
//!
//! A thin binding over liblmdb (the `lmdb-master-sys` crate builds it from
//! source). It exists for one reason: py-lmdb releases and re-takes the GIL
//! around every single get and put, so a block's few thousand reads or writes
//! were a few thousand GIL hand-offs; whenever another thread had Python work,
//! each hand-off could wait for that thread's switch interval (a convoy: a
//! 600-key `getmulti` took 0.26 ms alone and ~2 s beside one busy thread).
//! Here a batch of gets or puts holds the GIL to read its arguments, releases it
//! once for all the LMDB calls, and takes it back to build the results; a
//! commit (and its fsync) runs without the GIL.
//!
//! Lifetimes: a transaction keeps its environment alive, and `LmdbEnv.close`
//! refuses while transactions are open. A transaction is used only by the thread
//! that began it (LMDB requires it of write transactions; other threads get a
//! named error), but it can be abandoned from any thread (a generator finalized
//! elsewhere): read transactions use `MDB_NOTLS`, so aborting one anywhere is
//! sound. A thread asking for a second write transaction gets a named error
//! instead of waiting forever on the writer lock it holds.

use std::ffi::{CStr, CString, c_int, c_uint, c_void};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, ThreadId};

use lmdb_master_sys as ffi;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::smt::SmtRecords;

create_exception!(
    tierchain_native,
    LmdbError,
    PyRuntimeError,
    "An LMDB call failed; the message names the call and LMDB's error."
);
create_exception!(
    tierchain_native,
    LmdbNotFound,
    LmdbError,
    "A named database (table) does not exist and was not to be created."
);
create_exception!(
    tierchain_native,
    LmdbKeyExists,
    LmdbError,
    "An append put whose key is not greater than every key already in the table."
);

/// Batches of at least this many records release the GIL for their LMDB calls;
/// smaller ones are cheaper to run holding it.
const RELEASE_GIL_MIN: usize = 16;

pub(super) fn error(call: &str, rc: c_int) -> PyErr {
    // SAFETY: mdb_strerror returns a static NUL-terminated string for any code.
    let text = unsafe { CStr::from_ptr(ffi::mdb_strerror(rc)) }.to_string_lossy();
    let message = format!("{call}: {text} ({rc})");
    match rc {
        ffi::MDB_NOTFOUND => LmdbNotFound::new_err(message),
        ffi::MDB_KEYEXIST => LmdbKeyExists::new_err(message),
        _ => LmdbError::new_err(message),
    }
}

fn check(call: &str, rc: c_int) -> PyResult<()> {
    if rc == 0 { Ok(()) } else { Err(error(call, rc)) }
}

fn val(bytes: &[u8]) -> ffi::MDB_val {
    ffi::MDB_val { mv_size: bytes.len(), mv_data: bytes.as_ptr() as *mut c_void }
}

/// # Safety
/// `v` must point at `mv_size` readable bytes (LMDB's map or a dirty page of the
/// live transaction).
unsafe fn slice<'a>(v: &ffi::MDB_val) -> &'a [u8] {
    if v.mv_size == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(v.mv_data as *const u8, v.mv_size) }
    }
}

/// A borrowed byte range of a Python `bytes` that the caller keeps alive; sent
/// into a GIL-released section (immutable, so reading it without the GIL is safe).
#[derive(Clone, Copy)]
struct Raw(*const u8, usize);
// SAFETY: only read, while the owning `bytes` objects are held by the caller.
unsafe impl Send for Raw {}

impl Raw {
    fn of(b: &Bound<'_, PyBytes>) -> Self {
        let s = b.as_bytes();
        Raw(s.as_ptr(), s.len())
    }
    fn val(self) -> ffi::MDB_val {
        ffi::MDB_val { mv_size: self.1, mv_data: self.0 as *mut c_void }
    }
}

/// Puts `pairs` (key, value) in order with `flags` (0 or `MDB_APPEND`); the first
/// failing return code, else 0.
///
/// # Safety
/// `txn` is a live write transaction of this thread, and every pair's buffers
/// outlive the call.
unsafe fn put_all(txn: usize, dbi: u32, flags: c_uint, pairs: impl Iterator<Item = (ffi::MDB_val, ffi::MDB_val)>) -> c_int {
    for (mut k, mut v) in pairs {
        // SAFETY: the caller's contract.
        let rc = unsafe { ffi::mdb_put(txn as *mut ffi::MDB_txn, dbi, &mut k, &mut v, flags) };
        if rc != 0 {
            return rc;
        }
    }
    0
}

/// Calls `f(key, value)` for each record whose key starts with `prefix` (empty: every
/// record), in key order, until `f` returns an error: `Err(rc)` if LMDB failed,
/// `Ok(Err(e))` if `f` stopped with `e`.
///
/// # Safety
/// `cursor` is an open cursor of a live transaction of this thread; the slices given
/// to `f` point into its pages and are used only during the call.
unsafe fn each_under<E>(
    cursor: usize,
    prefix: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
) -> Result<Result<(), E>, c_int> {
    let mut k = val(prefix);
    let mut v = ffi::MDB_val { mv_size: 0, mv_data: ptr::null_mut() };
    let mut op = if prefix.is_empty() { ffi::MDB_FIRST } else { ffi::MDB_SET_RANGE };
    loop {
        // SAFETY: the caller's contract.
        match unsafe { ffi::mdb_cursor_get(cursor as *mut ffi::MDB_cursor, &mut k, &mut v, op) } {
            0 => {}
            ffi::MDB_NOTFOUND => return Ok(Ok(())),
            rc => return Err(rc),
        }
        // SAFETY: both point into the live transaction's pages.
        let (key, value) = unsafe { (slice(&k), slice(&v)) };
        if !key.starts_with(prefix) {
            return Ok(Ok(()));
        }
        if let Err(e) = f(key, value) {
            return Ok(Err(e));
        }
        op = ffi::MDB_NEXT;
    }
}

/// An environment pointer; LMDB's environment handle is safe to share between threads.
struct EnvPtr(*mut ffi::MDB_env);
// SAFETY: liblmdb documents MDB_env as usable from any thread.
unsafe impl Send for EnvPtr {}

/// One LMDB environment (a directory with `data.mdb` and `lock.mdb`).
#[pyclass(frozen, module = "tierchain_native")]
pub struct LmdbEnv {
    env: Mutex<Option<EnvPtr>>,
    txns: AtomicUsize,
    /// The thread holding the write transaction, if any.
    writer: Mutex<Option<ThreadId>>,
}

impl LmdbEnv {
    fn ptr(&self) -> PyResult<*mut ffi::MDB_env> {
        match &*self.env.lock().expect("env lock") {
            Some(e) => Ok(e.0),
            None => Err(LmdbError::new_err("the environment is closed")),
        }
    }
}

#[pymethods]
impl LmdbEnv {
    /// Opens (``readonly=False``: creating the directory and files) the environment at ``path``.
    #[new]
    #[pyo3(signature = (path, *, map_size, max_dbs, sync, readonly, max_readers))]
    fn new(path: &str, map_size: usize, max_dbs: u32, sync: bool, readonly: bool, max_readers: u32) -> PyResult<Self> {
        if !readonly {
            std::fs::create_dir_all(path).map_err(|e| LmdbError::new_err(format!("create {path}: {e}")))?;
        }
        let cpath = CString::new(path).map_err(|_| PyTypeError::new_err("path contains a NUL byte"))?;
        let mut env = ptr::null_mut();
        // SAFETY: plain liblmdb calls on a fresh handle; it is closed on every error path.
        unsafe {
            check("mdb_env_create", ffi::mdb_env_create(&mut env))?;
            let mut flags: c_uint = ffi::MDB_NOTLS;
            if !sync {
                flags |= ffi::MDB_NOSYNC | ffi::MDB_NOMETASYNC;
            }
            if readonly {
                flags |= ffi::MDB_RDONLY;
            }
            let setup = check("mdb_env_set_mapsize", ffi::mdb_env_set_mapsize(env, map_size))
                .and_then(|_| check("mdb_env_set_maxdbs", ffi::mdb_env_set_maxdbs(env, max_dbs)))
                .and_then(|_| check("mdb_env_set_maxreaders", ffi::mdb_env_set_maxreaders(env, max_readers)))
                .and_then(|_| check("mdb_env_open", ffi::mdb_env_open(env, cpath.as_ptr(), flags, 0o644)));
            if let Err(e) = setup {
                ffi::mdb_env_close(env);
                return Err(e);
            }
        }
        Ok(LmdbEnv { env: Mutex::new(Some(EnvPtr(env))), txns: AtomicUsize::new(0), writer: Mutex::new(None) })
    }

    /// The handle of the named database, created if ``create`` (``LmdbNotFound`` otherwise).
    fn open_db(slf: &Bound<'_, Self>, name: &str, create: bool) -> PyResult<u32> {
        let mut txn = LmdbTxn::begin(slf, create)?;
        let cname = CString::new(name).map_err(|_| PyTypeError::new_err("name contains a NUL byte"))?;
        let mut dbi: ffi::MDB_dbi = 0;
        let flags = if create { ffi::MDB_CREATE } else { 0 };
        // SAFETY: a live transaction of this environment.
        check("mdb_dbi_open", unsafe { ffi::mdb_dbi_open(txn.live()?, cname.as_ptr(), flags, &mut dbi) })?;
        txn.commit(slf.py())?;
        Ok(dbi)
    }

    /// A transaction: ``write=True`` is the one writer (others wait for it).
    fn begin(slf: &Bound<'_, Self>, write: bool) -> PyResult<LmdbTxn> {
        LmdbTxn::begin(slf, write)
    }

    /// ``(map_size, last_pgno, page_size)``.
    fn info(&self) -> PyResult<(u64, u64, u32)> {
        let env = self.ptr()?;
        // SAFETY: plain reads of an open environment into zeroed out-structs.
        unsafe {
            let mut info: ffi::MDB_envinfo = std::mem::zeroed();
            check("mdb_env_info", ffi::mdb_env_info(env, &mut info))?;
            let mut stat: ffi::MDB_stat = std::mem::zeroed();
            check("mdb_env_stat", ffi::mdb_env_stat(env, &mut stat))?;
            Ok((info.me_mapsize as u64, info.me_last_pgno as u64, stat.ms_psize))
        }
    }

    /// Closes the environment (idempotent); refused while a transaction is open.
    fn close(&self) -> PyResult<()> {
        let mut guard = self.env.lock().expect("env lock");
        if self.txns.load(Ordering::SeqCst) != 0 {
            return Err(LmdbError::new_err("close: transactions are still open"));
        }
        if let Some(e) = guard.take() {
            // SAFETY: no transaction is open and no new one can begin (the lock is held).
            unsafe { ffi::mdb_env_close(e.0) };
        }
        Ok(())
    }
}

impl Drop for LmdbEnv {
    fn drop(&mut self) {
        // Every transaction holds a reference to its environment, so none is open here.
        if let Some(e) = self.env.get_mut().expect("env lock").take() {
            // SAFETY: the last reference; nothing else can use the handle.
            unsafe { ffi::mdb_env_close(e.0) };
        }
    }
}

/// Lookups in one database of a live transaction, for native code running without the
/// GIL ([`LmdbTxn::with_reader`], which alone makes one, for the length of its call).
pub(crate) struct Reader {
    txn: usize, // *mut MDB_txn, live: this thread's, inside `with_reader`
    dbi: u32,
}

impl Reader {
    /// The value of `key` (`None`: absent), pointing into the transaction's pages while the
    /// reader is borrowed; `Err`: LMDB's return code.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<&[u8]>, c_int> {
        let mut k = val(key);
        let mut v = ffi::MDB_val { mv_size: 0, mv_data: ptr::null_mut() };
        // SAFETY: a reader exists only inside `with_reader`, on the thread of its live
        // transaction, which nothing else uses or writes meanwhile; `key` outlives the call.
        match unsafe { ffi::mdb_get(self.txn as *mut ffi::MDB_txn, self.dbi, &mut k, &mut v) } {
            // SAFETY: as above: `v` points into the transaction's pages, unchanged while the
            // reader (and so the transaction) is borrowed.
            0 => Ok(Some(unsafe { slice(&v) })),
            ffi::MDB_NOTFOUND => Ok(None),
            rc => Err(rc),
        }
    }
}

/// A read or write transaction. Values it returns are copies (Python ``bytes``).
#[pyclass(module = "tierchain_native")]
pub struct LmdbTxn {
    txn: usize, // *mut MDB_txn; 0 once finished
    env: Py<LmdbEnv>,
    write: bool,
    owner: ThreadId,
}

impl LmdbTxn {
    fn begin(env: &Bound<'_, LmdbEnv>, write: bool) -> PyResult<Self> {
        let e = env.get();
        let me = thread::current().id();
        if write && *e.writer.lock().expect("writer lock") == Some(me) {
            return Err(LmdbError::new_err("this thread already has a write transaction open"));
        }
        let ptr = {
            let guard = e.env.lock().expect("env lock");
            let Some(p) = &*guard else {
                return Err(LmdbError::new_err("the environment is closed"));
            };
            e.txns.fetch_add(1, Ordering::SeqCst);
            p.0
        };
        let flags = if write { 0 } else { ffi::MDB_RDONLY };
        let env_addr = ptr as usize;
        let begin = move || {
            let mut txn = ptr::null_mut();
            // SAFETY: the environment stays open while `txns` > 0.
            let rc = unsafe { ffi::mdb_txn_begin(env_addr as *mut ffi::MDB_env, ptr::null_mut(), flags, &mut txn) };
            (rc, txn as usize)
        };
        // A write transaction waits for the writer lock: never with the GIL held.
        let (rc, txn) = if write { env.py().detach(begin) } else { begin() };
        if rc != 0 {
            e.txns.fetch_sub(1, Ordering::SeqCst);
            return Err(error("mdb_txn_begin", rc));
        }
        if write {
            *e.writer.lock().expect("writer lock") = Some(me);
        }
        Ok(LmdbTxn { txn, env: env.clone().unbind(), write, owner: me })
    }

    /// Runs `work` with a [`Reader`] of database `dbi` of this live transaction (the GIL
    /// released if `release_gil`): for a caller that keeps the values natively
    /// (`BlockState.read`) where `get_many` makes Python objects. An error `work` returns
    /// is LMDB's return code (`mdb_get`'s).
    pub(crate) fn with_reader<R, F>(&self, py: Python<'_>, dbi: u32, release_gil: bool, work: F) -> PyResult<R>
    where
        R: Send,
        F: FnOnce(&Reader) -> Result<R, c_int> + Send,
    {
        let reader = Reader { txn: self.live()? as usize, dbi };
        let run = move || work(&reader);
        let out = if release_gil { py.detach(run) } else { run() };
        out.map_err(|rc| error("mdb_get", rc))
    }

    fn live(&self) -> PyResult<*mut ffi::MDB_txn> {
        if self.txn == 0 {
            Err(LmdbError::new_err("the transaction is finished"))
        } else if thread::current().id() != self.owner {
            Err(LmdbError::new_err("a transaction is used only by the thread that began it"))
        } else {
            Ok(self.txn as *mut ffi::MDB_txn)
        }
    }

    /// The transaction was committed or aborted (LMDB freed it).
    fn finished(&mut self) {
        self.txn = 0;
        let env = self.env.get();
        // A write transaction abandoned on another thread could not release the
        // writer lock (LMDB's mutex belongs to the owner): the owner then gets a
        // named error, not a deadlock, if it asks for another.
        if self.write && thread::current().id() == self.owner {
            *env.writer.lock().expect("writer lock") = None;
        }
        env.txns.fetch_sub(1, Ordering::SeqCst);
    }

    fn writable(&self) -> PyResult<*mut ffi::MDB_txn> {
        if !self.write {
            return Err(LmdbError::new_err("a read-only transaction cannot write"));
        }
        self.live()
    }

    /// This thread's live transaction, for the native readers of other bindings
    /// ([`get_in`]; the state tree's chunk reads).
    pub(super) fn handle(&self) -> PyResult<usize> {
        Ok(self.live()? as usize)
    }

    fn cursor(&self, dbi: u32) -> PyResult<Cursor> {
        let mut cur = ptr::null_mut();
        // SAFETY: a live transaction; the cursor is closed by `Cursor`'s drop.
        check("mdb_cursor_open", unsafe { ffi::mdb_cursor_open(self.live()?, dbi, &mut cur) })?;
        Ok(Cursor(cur))
    }
}

/// The value of `key` in `dbi`, borrowed from the transaction's pages.
///
/// # Safety
/// `txn` is [`LmdbTxn::handle`] of a transaction that stays live, and is not
/// written, while the returned slice is used, on the thread that called it.
pub(super) unsafe fn get_in<'a>(txn: usize, dbi: u32, key: &[u8]) -> Result<Option<&'a [u8]>, c_int> {
    let mut k = val(key);
    let mut v = ffi::MDB_val { mv_size: 0, mv_data: ptr::null_mut() };
    // SAFETY: the caller's contract; `key` outlives the call.
    match unsafe { ffi::mdb_get(txn as *mut ffi::MDB_txn, dbi, &mut k, &mut v) } {
        // SAFETY: LMDB's pages of a live transaction.
        0 => Ok(Some(unsafe { slice(&v) })),
        ffi::MDB_NOTFOUND => Ok(None),
        rc => Err(rc),
    }
}

struct Cursor(*mut ffi::MDB_cursor);

impl Cursor {
    /// One positioning call: `Ok(None)` when there is no such record.
    fn get(&self, key: &mut ffi::MDB_val, op: ffi::MDB_cursor_op) -> PyResult<Option<ffi::MDB_val>> {
        let mut data = ffi::MDB_val { mv_size: 0, mv_data: ptr::null_mut() };
        // SAFETY: an open cursor; key/data are valid out-parameters.
        match unsafe { ffi::mdb_cursor_get(self.0, key, &mut data, op) } {
            0 => Ok(Some(data)),
            ffi::MDB_NOTFOUND => Ok(None),
            rc => Err(error("mdb_cursor_get", rc)),
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        // SAFETY: opened by `LmdbTxn::cursor` and closed once, before its transaction ends.
        unsafe { ffi::mdb_cursor_close(self.0) };
    }
}

fn pair<'py>(py: Python<'py>, k: &ffi::MDB_val, v: &ffi::MDB_val) -> PyResult<Bound<'py, PyTuple>> {
    // SAFETY: both point into the live transaction's pages.
    let (k, v) = unsafe { (slice(k), slice(v)) };
    PyTuple::new(py, [PyBytes::new(py, k), PyBytes::new(py, v)])
}

fn bytes_items<'py>(items: &Bound<'py, PyList>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    items
        .iter()
        .map(|o| o.cast_into::<PyBytes>().map_err(|_| PyTypeError::new_err("keys must be bytes")))
        .collect()
}

#[pymethods]
impl LmdbTxn {
    /// The value of ``key`` in database ``dbi``, or None.
    fn get<'py>(&self, py: Python<'py>, dbi: u32, key: &[u8]) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut k = val(key);
        let mut v = ffi::MDB_val { mv_size: 0, mv_data: ptr::null_mut() };
        // SAFETY: a live transaction; `key` outlives the call.
        match unsafe { ffi::mdb_get(self.live()?, dbi, &mut k, &mut v) } {
            // SAFETY: `v` points into the live transaction's pages.
            0 => Ok(Some(PyBytes::new(py, unsafe { slice(&v) }))),
            ffi::MDB_NOTFOUND => Ok(None),
            rc => Err(error("mdb_get", rc)),
        }
    }

    /// ``{key: value}`` of the present ``keys`` (a list of bytes; sorted keys read faster).
    /// ``overlays``: dicts of writes not in the database yet (oldest first; ``None`` is a
    /// deletion): a key one of them holds takes the newest one's value (or is absent),
    /// without a database read; the others are read.
    #[pyo3(signature = (dbi, keys, overlays=None))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        dbi: u32,
        keys: &Bound<'py, PyList>,
        overlays: Option<&Bound<'py, PyList>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let txn = self.live()? as usize;
        let held = bytes_items(keys)?;
        // Each key's value from the overlays (newest first; `Some(None)`: deleted there),
        // or `None`: to read. Looked up before any database pointer is taken: a lookup
        // may run a bytes subclass's __hash__ or __eq__.
        let mut overlaid: Vec<Option<Option<Bound<'py, PyBytes>>>> = vec![None; held.len()];
        if let Some(overlays) = overlays {
            let sets = overlays
                .iter()
                .map(|o| o.cast_into::<PyDict>().map_err(|_| PyTypeError::new_err("overlays must be dicts")))
                .collect::<PyResult<Vec<_>>>()?;
            for (key, slot) in held.iter().zip(overlaid.iter_mut()) {
                for set in sets.iter().rev() {
                    if let Some(v) = set.get_item(key)? {
                        *slot = Some(if v.is_none() {
                            None
                        } else {
                            Some(v.cast_into::<PyBytes>().map_err(|_| PyTypeError::new_err("overlay values must be bytes or None"))?)
                        });
                        break;
                    }
                }
            }
        }
        let unread: Vec<usize> = (0..held.len()).filter(|&i| overlaid[i].is_none()).collect();
        let raw: Vec<Raw> = unread.iter().map(|&i| Raw::of(&held[i])).collect();
        let lookup = move || -> Result<Vec<Option<Raw>>, c_int> {
            raw.iter()
                .map(|r| {
                    let mut k = r.val();
                    let mut v = ffi::MDB_val { mv_size: 0, mv_data: ptr::null_mut() };
                    // SAFETY: a live transaction of this thread; `held` keeps the keys alive.
                    match unsafe { ffi::mdb_get(txn as *mut ffi::MDB_txn, dbi, &mut k, &mut v) } {
                        0 => Ok(Some(Raw(v.mv_data as *const u8, v.mv_size))),
                        ffi::MDB_NOTFOUND => Ok(None),
                        rc => Err(rc),
                    }
                })
                .collect()
        };
        let found = if unread.len() >= RELEASE_GIL_MIN { py.detach(lookup) } else { lookup() };
        let found = found.map_err(|rc| error("mdb_get", rc))?;
        // Copy every value before touching the dict: inserting hashes the keys, and a
        // bytes subclass's __hash__ could write to this transaction and move its pages.
        let values: Vec<Option<Bound<'py, PyBytes>>> = found
            .into_iter()
            // SAFETY: points into the live transaction's pages (nothing wrote since).
            .map(|v| v.map(|r| PyBytes::new(py, unsafe { slice(&r.val()) })))
            .collect();
        for (i, value) in unread.into_iter().zip(values) {
            overlaid[i] = Some(value);
        }
        // In the order of `keys`, as without overlays.
        let out = PyDict::new(py);
        for (key, value) in held.iter().zip(overlaid) {
            if let Some(Some(v)) = value {
                out.set_item(key, v)?;
            }
        }
        Ok(out)
    }

    /// Puts one record (overwriting).
    fn put(&self, dbi: u32, key: &[u8], value: &[u8]) -> PyResult<()> {
        let (mut k, mut v) = (val(key), val(value));
        // SAFETY: a live write transaction; both buffers outlive the call.
        check("mdb_put", unsafe { ffi::mdb_put(self.writable()?, dbi, &mut k, &mut v, 0) })
    }

    /// Puts ``items`` (a list of ``(key, value)`` bytes pairs). ``append``: each key
    /// must be greater than every key already in the table (``LmdbKeyExists`` otherwise).
    fn put_many(&self, py: Python<'_>, dbi: u32, items: &Bound<'_, PyList>, append: bool) -> PyResult<()> {
        let txn = self.writable()? as usize;
        let mut held = Vec::with_capacity(2 * items.len());
        for item in items.iter() {
            let (k, v): (Bound<'_, PyBytes>, Bound<'_, PyBytes>) =
                item.extract().map_err(|_| PyTypeError::new_err("items must be (bytes, bytes) pairs"))?;
            held.push(k);
            held.push(v);
        }
        let raw: Vec<Raw> = held.iter().map(Raw::of).collect();
        let flags = if append { ffi::MDB_APPEND } else { 0 };
        // SAFETY: a live write transaction of this thread; `held` keeps the buffers alive.
        let write = move || unsafe { put_all(txn, dbi, flags, raw.chunks_exact(2).map(|kv| (kv[0].val(), kv[1].val()))) };
        let rc = if held.len() >= 2 * RELEASE_GIL_MIN { py.detach(write) } else { write() };
        check("mdb_put", rc)
    }

    /// Puts ``n`` pairs packed back to back: key ``i`` is
    /// ``keys[i * key_size:(i + 1) * key_size]``, its value likewise in ``values``
    /// (a block's tx index: no tuple per pair). ``append`` as in ``put_many``. ``sort``:
    /// put them in key order (stable: of equal keys the last one stays), sorted here with
    /// the GIL released, so the caller's Python need not sort.
    #[pyo3(signature = (dbi, keys, key_size, values, value_size, append, sort=false))]
    #[allow(clippy::too_many_arguments)]
    fn put_packed(
        &self,
        py: Python<'_>,
        dbi: u32,
        keys: &Bound<'_, PyBytes>,
        key_size: usize,
        values: &Bound<'_, PyBytes>,
        value_size: usize,
        append: bool,
        sort: bool,
    ) -> PyResult<()> {
        let txn = self.writable()? as usize;
        let (kb, vb) = (keys.as_bytes(), values.as_bytes());
        // checked: a huge value_size must be an error, not an overflow (a panic)
        if key_size == 0
            || kb.len() % key_size != 0
            || (kb.len() / key_size).checked_mul(value_size) != Some(vb.len())
        {
            return Err(PyValueError::new_err(format!(
                "{} key bytes of {key_size} and {} value bytes of {value_size} are not whole pairs",
                kb.len(),
                vb.len()
            )));
        }
        let n = kb.len() / key_size;
        let (kr, vr) = (Raw(kb.as_ptr(), kb.len()), Raw(vb.as_ptr(), vb.len()));
        let flags = if append { ffi::MDB_APPEND } else { 0 };
        let write = move || -> c_int {
            let (kr, vr) = (kr, vr);
            // SAFETY: the key buffer (immutable bytes held by the caller) is kr.1 bytes long.
            let all = unsafe { std::slice::from_raw_parts(kr.0, kr.1) };
            let mut order: Vec<usize> = (0..n).collect();
            if sort {
                order.sort_by(|&a, &b| all[a * key_size..(a + 1) * key_size].cmp(&all[b * key_size..(b + 1) * key_size]));
            }
            let pairs = order.into_iter().map(|i| {
                let k = ffi::MDB_val { mv_size: key_size, mv_data: all[i * key_size..].as_ptr() as *mut c_void };
                // SAFETY: i * value_size + value_size <= the value buffer's length (checked above).
                let v = ffi::MDB_val { mv_size: value_size, mv_data: unsafe { vr.0.add(i * value_size) } as *mut c_void };
                (k, v)
            });
            // SAFETY: a live write transaction of this thread; `keys` and `values` are held
            // by the caller for the whole call.
            unsafe { put_all(txn, dbi, flags, pairs) }
        };
        let rc = if n >= RELEASE_GIL_MIN { py.detach(write) } else { write() };
        check("mdb_put", rc)
    }

    /// Puts the records of a state tree batch (``SmtRecords``, sorted by key) with
    /// the GIL released; ``append`` as in ``put_many``.
    fn put_records(&self, py: Python<'_>, dbi: u32, records: &Bound<'_, SmtRecords>, append: bool) -> PyResult<()> {
        let txn = self.writable()? as usize;
        let pairs = &records.get().pairs;
        let flags = if append { ffi::MDB_APPEND } else { 0 };
        // SAFETY: a live write transaction of this thread; `records` is immutable and held
        // by the caller for the whole call.
        let write = move || unsafe { put_all(txn, dbi, flags, pairs.iter().map(|(k, v)| (val(k), val(v)))) };
        let rc = if pairs.len() >= RELEASE_GIL_MIN { py.detach(write) } else { write() };
        check("mdb_put", rc)
    }

    /// Writes the merge of ``write_sets`` (dicts of ``bytes`` to ``bytes`` or ``None``,
    /// oldest first: a later set's value for a key wins, ``None`` deletes it) in key
    /// order, sorted and written with the GIL released: a flush of several blocks' write
    /// sets into the state table with no Python object made and no Python sort.
    /// ``key_len`` and ``value_len``: the (shortest, longest) lengths allowed; a merged
    /// key or put value outside them is a ``ValueError`` before anything is written.
    /// Returns (puts, deletes).
    fn put_merged(
        &self,
        py: Python<'_>,
        dbi: u32,
        write_sets: &Bound<'_, PyList>,
        key_len: (usize, usize),
        value_len: (usize, usize),
    ) -> PyResult<(usize, usize)> {
        let txn = self.writable()? as usize;
        // Every key and value object held (so their buffers outlive the call), in
        // arrival order: for equal keys the last one wins.
        let mut held: Vec<(Bound<'_, PyBytes>, Option<Bound<'_, PyBytes>>)> = Vec::new();
        for set in write_sets.iter() {
            let set = set.cast::<PyDict>().map_err(|_| PyTypeError::new_err("write_sets must be dicts"))?;
            held.reserve(set.len());
            for (k, v) in set.iter() {
                let k = k.cast_into::<PyBytes>().map_err(|_| PyTypeError::new_err("write set keys must be bytes"))?;
                let v = if v.is_none() {
                    None
                } else {
                    Some(v.cast_into::<PyBytes>().map_err(|_| PyTypeError::new_err("write set values must be bytes or None"))?)
                };
                held.push((k, v));
            }
        }
        let raw: Vec<(Raw, Option<Raw>)> = held.iter().map(|(k, v)| (Raw::of(k), v.as_ref().map(Raw::of))).collect();
        let merge = move || -> Result<(usize, usize, c_int), String> {
            // SAFETY (all slices below): the buffers of immutable `bytes` held in `held`.
            let bytes = |r: Raw| unsafe { std::slice::from_raw_parts(r.0, r.1) };
            let mut order: Vec<usize> = (0..raw.len()).collect();
            // Stable: equal keys keep their arrival order, so the last of a run wins.
            order.sort_by(|&a, &b| bytes(raw[a].0).cmp(bytes(raw[b].0)));
            let mut last: Vec<usize> = Vec::with_capacity(order.len());
            for i in order {
                match last.last_mut() {
                    Some(j) if bytes(raw[*j].0) == bytes(raw[i].0) => *j = i,
                    _ => last.push(i),
                }
            }
            let within = |n: usize, (lo, hi): (usize, usize)| lo <= n && n <= hi;
            for &i in &last {
                let (k, v) = raw[i];
                if !within(k.1, key_len) || v.is_some_and(|v| !within(v.1, value_len)) {
                    return Err(format!(
                        "a merged key of {} bytes or its value of {} bytes is out of bounds",
                        k.1,
                        v.map_or(0, |v| v.1)
                    ));
                }
            }
            let (mut puts, mut deletes) = (0, 0);
            for i in last {
                let mut k = raw[i].0.val();
                // SAFETY: a live write transaction of this thread; the buffers are held.
                let rc = match raw[i].1 {
                    Some(v) => {
                        puts += 1;
                        unsafe { ffi::mdb_put(txn as *mut ffi::MDB_txn, dbi, &mut k, &mut v.val(), 0) }
                    }
                    None => {
                        deletes += 1;
                        match unsafe { ffi::mdb_del(txn as *mut ffi::MDB_txn, dbi, &mut k, ptr::null_mut()) } {
                            ffi::MDB_NOTFOUND => 0,
                            rc => rc,
                        }
                    }
                };
                if rc != 0 {
                    return Ok((puts, deletes, rc));
                }
            }
            Ok((puts, deletes, 0))
        };
        let (puts, deletes, rc) = if held.len() >= RELEASE_GIL_MIN { py.detach(merge) } else { merge() }
            .map_err(PyValueError::new_err)?;
        check("put_merged", rc)?;
        Ok((puts, deletes))
    }

    /// Removes the records of database ``dbi`` whose key starts with ``prefix`` (not
    /// empty) and returns them packed in key order, ``(keys, values)``: every key
    /// ``key_size`` and every value ``value_size`` bytes, read and deleted with the GIL
    /// released. More than ``limit`` such records, or one of another size, is
    /// ``ValueError`` with nothing removed.
    #[pyo3(signature = (dbi, prefix, key_size, value_size, limit))]
    fn take_prefix<'py>(
        &self,
        py: Python<'py>,
        dbi: u32,
        prefix: &[u8],
        key_size: usize,
        value_size: usize,
        limit: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let txn = self.writable()? as usize;
        if prefix.is_empty() || prefix.len() > key_size {
            return Err(PyValueError::new_err(format!(
                "a prefix of {} bytes for keys of {key_size}",
                prefix.len()
            )));
        }
        let cur = self.cursor(dbi)?;
        let cursor = cur.0 as usize;
        let prefix = prefix.to_vec();
        enum Failed {
            Lmdb(&'static str, c_int),
            Shape(String),
        }
        let take = move || -> Result<(Vec<u8>, Vec<u8>), Failed> {
            let (mut keys, mut values) = (Vec::new(), Vec::new());
            let collect = |key: &[u8], value: &[u8]| {
                if key.len() != key_size || value.len() != value_size {
                    return Err(format!(
                        "a record of {} + {} bytes under the prefix, not {key_size} + {value_size}",
                        key.len(),
                        value.len()
                    ));
                }
                if keys.len() / key_size >= limit {
                    return Err(format!("more than {limit} records under the prefix"));
                }
                keys.extend_from_slice(key);
                values.extend_from_slice(value);
                Ok(())
            };
            // SAFETY: an open cursor of the live write transaction of this thread.
            match unsafe { each_under(cursor, &prefix, collect) } {
                Ok(Ok(())) => {}
                Ok(Err(message)) => return Err(Failed::Shape(message)),
                Err(rc) => return Err(Failed::Lmdb("mdb_cursor_get", rc)),
            }
            for key in keys.chunks_exact(key_size) {
                let mut k = val(key);
                // SAFETY: a live write transaction of this thread; `key` outlives the call.
                let rc = unsafe { ffi::mdb_del(txn as *mut ffi::MDB_txn, dbi, &mut k, ptr::null_mut()) };
                if rc != 0 {
                    return Err(Failed::Lmdb("mdb_del", rc));
                }
            }
            Ok((keys, values))
        };
        let taken = py.detach(take);
        drop(cur);
        match taken {
            Ok((keys, values)) => Ok((PyBytes::new(py, &keys), PyBytes::new(py, &values))),
            Err(Failed::Lmdb(call, rc)) => Err(error(call, rc)),
            Err(Failed::Shape(message)) => Err(PyValueError::new_err(message)),
        }
    }

    /// Looks for ``tails`` among the records of database ``dbi`` whose key starts with
    /// ``prefix``: for each tail, the value of the first such record whose key ends with
    /// it, with the part of the key between prefix and tail, as ``(middle, value)``, or
    /// None. One pass over the prefix's records (a scan where the key's middle part is
    /// not known), without the GIL once the tails are read.
    fn scan_tails<'py>(
        &self,
        py: Python<'py>,
        dbi: u32,
        prefix: &[u8],
        tails: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        let cur = self.cursor(dbi)?;
        let cursor = cur.0 as usize;
        let tails: Vec<Vec<u8>> = bytes_items(tails)?.iter().map(|b| b.as_bytes().to_vec()).collect();
        let prefix = prefix.to_vec();
        /// A found record: the key's middle (between prefix and tail) and the value.
        type Hit = Option<(Vec<u8>, Vec<u8>)>;
        let scan = move || -> Result<Vec<Hit>, c_int> {
            let mut wanted: std::collections::HashMap<&[u8], Vec<usize>> = std::collections::HashMap::new();
            for (i, t) in tails.iter().enumerate() {
                wanted.entry(t.as_slice()).or_default().push(i);
            }
            let lengths: std::collections::BTreeSet<usize> = tails.iter().map(Vec::len).collect();
            let mut found: Vec<Hit> = vec![None; tails.len()];
            let look = |key: &[u8], value: &[u8]| -> Result<(), std::convert::Infallible> {
                for &n in &lengths {
                    if key.len() < prefix.len() + n {
                        continue;
                    }
                    let (head, tail) = key.split_at(key.len() - n);
                    for &i in wanted.get(tail).map(Vec::as_slice).unwrap_or(&[]) {
                        if found[i].is_none() {
                            found[i] = Some((head[prefix.len()..].to_vec(), value.to_vec()));
                        }
                    }
                }
                Ok(())
            };
            // SAFETY: an open cursor of the live transaction of this thread.
            let Ok(()) = unsafe { each_under(cursor, &prefix, look) }?;
            Ok(found)
        };
        let found = py.detach(scan);
        drop(cur);
        let out = PyList::empty(py);
        for item in found.map_err(|rc| error("mdb_cursor_get", rc))? {
            match item {
                Some((middle, value)) => out.append((PyBytes::new(py, &middle), PyBytes::new(py, &value)))?,
                None => out.append(py.None())?,
            }
        }
        Ok(out)
    }

    /// Deletes ``key``; False if it was absent.
    fn delete(&self, dbi: u32, key: &[u8]) -> PyResult<bool> {
        let mut k = val(key);
        // SAFETY: a live write transaction; `key` outlives the call.
        match unsafe { ffi::mdb_del(self.writable()?, dbi, &mut k, ptr::null_mut()) } {
            0 => Ok(true),
            ffi::MDB_NOTFOUND => Ok(false),
            rc => Err(error("mdb_del", rc)),
        }
    }

    /// Number of records in database ``dbi`` (LMDB keeps the count).
    fn entries(&self, dbi: u32) -> PyResult<u64> {
        // SAFETY: a live transaction; a zeroed out-struct.
        unsafe {
            let mut stat: ffi::MDB_stat = std::mem::zeroed();
            check("mdb_stat", ffi::mdb_stat(self.live()?, dbi, &mut stat))?;
            Ok(stat.ms_entries as u64)
        }
    }

    /// The last ``(key, value)`` of database ``dbi``, or None when it is empty.
    fn last<'py>(&self, py: Python<'py>, dbi: u32) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let cur = self.cursor(dbi)?;
        let mut k = ffi::MDB_val { mv_size: 0, mv_data: ptr::null_mut() };
        match cur.get(&mut k, ffi::MDB_LAST)? {
            Some(v) => Ok(Some(pair(py, &k, &v)?)),
            None => Ok(None),
        }
    }

    /// Up to ``limit`` ``(key, value)`` pairs of database ``dbi`` in key order, from
    /// the first key ``>= start`` (``start=None``: from the first key).
    #[pyo3(signature = (dbi, start, limit))]
    fn range<'py>(
        &self,
        py: Python<'py>,
        dbi: u32,
        start: Option<&[u8]>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        if limit == 0 {
            return Ok(out);
        }
        let cur = self.cursor(dbi)?;
        let mut k = match start {
            Some(s) if !s.is_empty() => val(s),
            _ => ffi::MDB_val { mv_size: 0, mv_data: ptr::null_mut() },
        };
        let first_op = if k.mv_size == 0 { ffi::MDB_FIRST } else { ffi::MDB_SET_RANGE };
        let mut next = cur.get(&mut k, first_op)?;
        while let Some(v) = next {
            out.append(pair(py, &k, &v)?)?;
            if out.len() >= limit {
                break;
            }
            next = cur.get(&mut k, ffi::MDB_NEXT)?;
        }
        Ok(out)
    }

    /// Commits (for a write transaction: durably, unless the environment was opened
    /// without sync), with the GIL released. The transaction is finished either way.
    fn commit(&mut self, py: Python<'_>) -> PyResult<()> {
        let txn = self.live()? as usize;
        // SAFETY: a live transaction, committed (and so freed, even on error) exactly once.
        let rc = py.detach(move || unsafe { ffi::mdb_txn_commit(txn as *mut ffi::MDB_txn) });
        self.finished();
        check("mdb_txn_commit", rc)
    }

    /// Abandons the transaction (idempotent).
    fn abort(&mut self) {
        if self.txn != 0 {
            // SAFETY: a live transaction, aborted (and so freed) exactly once; from
            // any thread for a read transaction (MDB_NOTLS).
            unsafe { ffi::mdb_txn_abort(self.txn as *mut ffi::MDB_txn) };
            self.finished();
        }
    }
}

impl Drop for LmdbTxn {
    fn drop(&mut self) {
        self.abort();
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LmdbEnv>()?;
    m.add_class::<LmdbTxn>()?;
    m.add("LmdbError", m.py().get_type::<LmdbError>())?;
    m.add("LmdbNotFound", m.py().get_type::<LmdbNotFound>())?;
    m.add("LmdbKeyExists", m.py().get_type::<LmdbKeyExists>())?;
    Ok(())
}
