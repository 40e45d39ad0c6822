//! Allocator settings of the server (mimalloc is the binary's global allocator).
//!
//! Two measured costs pull in opposite directions. mimalloc returns freed pages to the OS 10 ms
//! after they are freed; the write path frees and reallocates megabytes per request, so with the
//! default it faulted and zeroed the same pages again and again (243 K page faults against 22 K
//! with a 500 ms delay for 2.16 M TSBS rows, a quarter of the server's CPU). Keeping freed pages
//! longer costs resident memory: with a 64 MiB memory budget an ingest flood held RSS at
//! 250-390 MiB until pages were purged at once and arena memory committed lazily (195 MiB).
//! So the memory budget decides: below [`SMALL_BUDGET_MB`] the operator asked for a small
//! footprint; from it, throughput.
//!
//! From that budget freed pages are kept 5 s. Persisting frees and reallocates hundreds of
//! megabytes every second or two under a sustained load (a group of up to 2 M rows concatenated,
//! then gathered in series order, then encoded), and with 500 ms those pages were faulted in
//! again for each persist: page faults were 16 % of the server's CPU during the TSBS load.
//! Measured alternating (`scripts/bench/ingest_profile.py`, 8.64 M rows): 500 ms 1.44–1.47 M
//! rows/s with 9.9–10.0 s of server CPU and 1,528–1,557 MiB peak RSS; 5 s 1.54–1.57 M rows/s,
//! 9.1–9.3 s, 1,643–1,678 MiB.
//!
//! Arena memory is committed lazily at every budget: mimalloc reserves 1 GiB arenas advised as
//! transparent huge pages, and committing them eagerly had the kernel zero whole 2 MiB pages on
//! first touch; a fifth of the server's CPU during a TSBS ingest was `clear_page_erms` under
//! `do_huge_pmd_anonymous_page`. Lazy commit: 8.64 M TSBS rows at 1.29 M rows/s instead of
//! 0.98 M, 10.8 s of server CPU instead of 14.2 s.
//!
//! mimalloc reads its options from the environment when the process starts, before `main`, so
//! `serve` (and `import --data-dir`, which runs the same write path in-process) re-executes
//! itself once with them set. An operator's own `MIMALLOC_PURGE_DELAY` or
//! `MIMALLOC_ARENA_EAGER_COMMIT` wins (and prevents the re-execution).

/// Budgets below this favour a small resident set over ingest throughput.
pub const SMALL_BUDGET_MB: usize = 512;

const OPERATOR_SETTINGS: [&str; 2] = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_ARENA_EAGER_COMMIT"];

/// The mimalloc environment of a server with this memory budget.
pub fn settings(memory_budget_mb: usize) -> &'static [(&'static str, &'static str)] {
    if memory_budget_mb < SMALL_BUDGET_MB {
        &[
            ("MIMALLOC_PURGE_DELAY", "0"),
            ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
        ]
    } else {
        &[
            ("MIMALLOC_PURGE_DELAY", "5000"),
            ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
        ]
    }
}

/// Re-executes the server with [`settings`] in its environment, unless the operator set any of
/// them. Unix only; on failure the server carries on with mimalloc's defaults.
pub fn configure(memory_budget_mb: usize) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        if OPERATOR_SETTINGS
            .iter()
            .any(|name| std::env::var_os(name).is_some())
        {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut command = std::process::Command::new(exe);
        command.args(std::env::args_os().skip(1));
        for (name, value) in settings(memory_budget_mb) {
            command.env(name, value);
        }
        let error = command.exec();
        eprintln!("hourglass: could not re-execute with allocator settings: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_budgets_purge_at_once_and_large_ones_keep_freed_pages() {
        assert!(settings(64).contains(&("MIMALLOC_PURGE_DELAY", "0")));
        assert!(settings(256).contains(&("MIMALLOC_ARENA_EAGER_COMMIT", "0")));
        assert_eq!(
            settings(1024),
            &[
                ("MIMALLOC_PURGE_DELAY", "5000"),
                ("MIMALLOC_ARENA_EAGER_COMMIT", "0")
            ]
        );
        // Every setting is one an operator can pre-empt.
        for budget in [64, 1024] {
            assert!(settings(budget)
                .iter()
                .all(|(name, _)| OPERATOR_SETTINGS.contains(name)));
        }
    }
}
