//! The `hourglass` command: see `hourglass::cli`.

/// mimalloc returns freed memory to the OS promptly and is fast for Arrow's many buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hourglass::cli::main()
}
