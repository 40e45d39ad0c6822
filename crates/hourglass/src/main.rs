//! The `hourglass` command: see `hourglass::cli`.

/// mimalloc returns freed memory to the OS promptly and is fast for Arrow's many buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3): milliseconds before freed memory is
/// returned to the OS. The Rust bindings do not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the process. mimalloc's default (10 ms) made the write path,
/// which frees and reallocates megabytes per request, fault and zero the same pages again and
/// again: ten times the page faults and about a quarter of the server's CPU under ingest.
const PURGE_DELAY_MS: std::os::raw::c_long = 500;

fn main() -> std::process::ExitCode {
    // An operator's MIMALLOC_PURGE_DELAY wins (mimalloc reads it at start-up).
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an integer option; any value is valid for this one.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS)
        };
    }
    hourglass::cli::main()
}
