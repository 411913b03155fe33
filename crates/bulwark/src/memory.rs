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

/// How often [`start_trimming`] hands free memory back to the system.
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts a thread that calls `malloc_trim(0)` every [`TRIM_EVERY`]: glibc keeps what is freed
/// inside its heaps for reuse and gives back only the top of the main heap. After a burst of
/// NDJSON batches (megabytes of bodies, normalized alerts and rows built and dropped per
/// batch) ~120 MB of freed memory stayed resident: RSS 207.7 MB, 89.7 MB after one
/// `malloc_trim(0)` (docs/benchmarks.md). The call takes each arena's lock as malloc does, for
/// the time it takes to advise the kernel of the free pages. Nothing elsewhere than glibc.
pub fn start_trimming() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("bulwark-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    // SAFETY: malloc_trim only returns free pages of malloc's own heaps to the
                    // system; it synchronizes with other threads' malloc and free itself.
                    #[allow(unsafe_code)]
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("bulwark: cannot start the memory trimming thread: {e}");
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
