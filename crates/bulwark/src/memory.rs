//! Allocator setting for a long-running server on glibc.
//!
//! glibc's malloc gives each thread that meets contention an arena of its own, up to eight per
//! core, and returns little of them to the system. Bulwark's threads (HTTP workers, the ingest
//! writer, sqlx's SQLite threads, blocking tasks) each build and drop megabytes of request
//! bodies and batches, so peak memory stayed resident in many arenas: RSS after 1,000,000
//! ingested alerts was 235.5 MB with the default and 109.7 MB with two arenas, at ingest rates
//! within the benchmark's noise (docs/benchmarks.md). Set before the runtime starts any
//! thread; `MALLOC_ARENA_MAX` in the environment still wins (glibc reads it itself).

/// Arenas glibc may create at most, unless the operator chose with `MALLOC_ARENA_MAX`.
pub const ARENAS: i32 = 2;

/// The arena limit to apply, given the value of `MALLOC_ARENA_MAX` (`None` when unset):
/// none when the operator set one.
pub fn arena_limit(env: Option<&std::ffi::OsStr>) -> Option<i32> {
    match env {
        Some(_) => None,
        None => Some(ARENAS),
    }
}

/// Limits glibc's malloc arenas (see the module comment); nothing elsewhere. Call first in
/// `main`, before any thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let Some(n) = arena_limit(std::env::var_os("MALLOC_ARENA_MAX").as_deref()) {
        // SAFETY: mallopt only changes malloc's tuning parameters; it is called before any
        // other thread exists, and a refusal (return 0) leaves the default in place.
        #[allow(unsafe_code)]
        let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, n) };
        if applied == 0 {
            eprintln!("bulwark: could not limit malloc arenas; memory use may be higher");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_setting_wins_else_two_arenas() {
        assert_eq!(arena_limit(None), Some(2));
        assert_eq!(arena_limit(Some(std::ffi::OsStr::new("8"))), None);
        assert_eq!(arena_limit(Some(std::ffi::OsStr::new(""))), None);
    }
}
