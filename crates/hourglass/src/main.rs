//! The `hourglass` command: see `hourglass::cli`.

fn main() -> std::process::ExitCode {
    hourglass::cli::main()
}
