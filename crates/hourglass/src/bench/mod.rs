//! `hourglass bench`: whole-system benchmarks that print their figures.
//!
//! `hourglass bench ingest` generates TSBS cpu-only rows ahead of time, starts a server (this same
//! binary) on a temporary data directory, sends the rows as line protocol over parallel HTTP
//! connections with durable acknowledgements, then flushes and compacts and reports rows/s,
//! values/s, bytes on disk per value and the server's peak RSS.

pub mod ingest;
pub mod tsbs;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand, Clone)]
pub enum BenchCommand {
    /// TSBS cpu-only ingest over HTTP line protocol.
    Ingest(ingest::IngestArgs),
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Ingest(a) => ingest::run(a).await,
    }
}
