//! The `hourglass` command: see `hourglass::cli`.

/// mimalloc is fast for Arrow's many buffers; `hourglass::allocator` sets how long it keeps freed
/// memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hourglass::cli::main()
}
