//! The one rayon pool every parallel routine in this crate runs on.
//!
//! A private pool (not rayon's global one) so that the host process — or
//! another extension that also uses rayon — cannot change our thread count,
//! and so that `TIERCHAIN_THREADS` is honoured exactly.

use std::sync::OnceLock;

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

/// Runs `f` inside the pool so rayon calls in it (including blake3's) use our
/// workers.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R, String> {
    Ok(pool()?.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

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
