//! Allocator settings of the server (mimalloc is the binary's global allocator).
//!
//! Two measured costs pull in opposite directions. mimalloc returns freed pages to the OS 10 ms
//! after they are freed; the write path frees and reallocates megabytes per request, so with the
//! default it faulted and zeroed the same pages again and again (243 K page faults against 22 K
//! with a 500 ms delay for 2.16 M TSBS rows, a quarter of the server's CPU). Keeping freed pages
//! longer costs resident memory: with a 64 MiB memory budget an ingest flood held RSS at
//! 250-390 MiB until pages were purged at once and arena memory committed lazily (195 MiB).
//! So the memory budget decides: below [`SMALL_BUDGET_BYTES`] the operator asked for a small
//! footprint; above it, throughput. An operator's `MIMALLOC_PURGE_DELAY` or
//! `MIMALLOC_ARENA_EAGER_COMMIT` wins (mimalloc reads them at start-up).

use libmimalloc_sys::mi_option_t;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` in mimalloc.h (the same in v2 and
/// v3); the Rust bindings do not name them.
const MI_OPTION_ARENA_EAGER_COMMIT: mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// Budgets below this favour a small resident set over ingest throughput.
pub const SMALL_BUDGET_BYTES: usize = 512 << 20;

/// Freed memory kept this long (ms) when throughput is favoured.
const THROUGHPUT_PURGE_DELAY_MS: std::os::raw::c_long = 500;

/// Sets mimalloc's purge delay and arena commit for a server with this memory budget.
pub fn configure(memory_budget_bytes: usize) {
    let operator_set = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_ARENA_EAGER_COMMIT"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    if operator_set {
        return;
    }
    let (purge_delay_ms, arena_eager_commit) = if memory_budget_bytes < SMALL_BUDGET_BYTES {
        (0, 0)
    } else {
        (THROUGHPUT_PURGE_DELAY_MS, 2)
    };
    // SAFETY: mi_option_set stores an integer option; both values are valid for these options
    // (2 is mimalloc's default for arena_eager_commit: eager where overcommit is allowed).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, purge_delay_ms);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, arena_eager_commit);
    }
}
