//! The one rayon pool every parallel routine in this crate runs on.
//!
//! A private pool (not rayon's global one) so that the host process — or
//! another extension that also uses rayon — cannot change our thread count,
//! and so that `TIERCHAIN_THREADS` is honoured exactly.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Environment variable that fixes the worker count; unset means "all cores".
pub const THREADS_ENV: &str = "TIERCHAIN_THREADS";

/// Upper bound on `TIERCHAIN_THREADS`: a typo such as `40000` must not spawn
/// tens of thousands of OS threads.
pub const THREADS_MAX: usize = 1024;

static POOL: OnceLock<Result<rayon::ThreadPool, String>> = OnceLock::new();

/// Parses the value of `TIERCHAIN_THREADS` (`None` = unset).
pub fn parse_thread_count(value: Option<&str>) -> Result<usize, String> {
    match value {
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=THREADS_MAX).contains(&n) => Ok(n),
            _ => Err(format!(
                "{THREADS_ENV} must be an integer in 1..={THREADS_MAX}, got {text:?}"
            )),
        },
    }
}

/// The shared pool, built on first use. The environment is read once: the
/// thread count of a running process never changes under its feet.
pub fn pool() -> Result<&'static rayon::ThreadPool, String> {
    POOL.get_or_init(|| {
        let value = std::env::var(THREADS_ENV).ok();
        let threads = parse_thread_count(value.as_deref())?;
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tierchain-native-{i}"))
            .build()
            .map_err(|e| format!("cannot start the tierchain_native thread pool: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Callers inside [`install`] now (each one's job occupies the workers).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` counted in `count`, however it returns (a panic included).
fn counted<R>(count: &AtomicUsize, f: impl FnOnce() -> R) -> R {
    struct Leave<'a>(&'a AtomicUsize);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    count.fetch_add(1, Ordering::Relaxed);
    let _leave = Leave(count);
    f()
}

/// Runs `f` inside the pool so rayon calls in it (including blake3's) use our
/// workers.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R, String> {
    let pool = pool()?;
    Ok(counted(&IN_FLIGHT, || pool.install(f)))
}

/// Whether another caller's job is in the pool now (a signature batch, say):
/// work that can also run on the calling thread is better run there than
/// queued behind it (the caller would wait for a worker with its own core idle).
pub fn busy() -> bool {
    IN_FLIGHT.load(Ordering::Relaxed) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_while_a_job_is_inside() {
        assert!(install(busy).unwrap(), "a job inside the pool sees it busy");
        // The count itself, on a counter of its own (other tests share the pool's).
        let count = AtomicUsize::new(0);
        assert_eq!(counted(&count, || count.load(Ordering::Relaxed)), 1);
        assert_eq!(count.load(Ordering::Relaxed), 0);
        let failed = std::panic::catch_unwind(|| counted(&count, || panic!("a failing job")));
        assert!(failed.is_err());
        assert_eq!(
            count.load(Ordering::Relaxed),
            0,
            "a panic leaves the count as it was"
        );
    }

    #[test]
    fn thread_count_parsing() {
        assert!(parse_thread_count(None).unwrap() >= 1);
        assert_eq!(parse_thread_count(Some("3")).unwrap(), 3);
        assert_eq!(parse_thread_count(Some(" 2 ")).unwrap(), 2);
        assert!(parse_thread_count(Some("0")).is_err());
        assert!(parse_thread_count(Some("-1")).is_err());
        assert!(parse_thread_count(Some("many")).is_err());
        assert!(parse_thread_count(Some("1025")).is_err());
    }
}
