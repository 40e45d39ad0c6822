//! `hourglass import`: every way data arrives in bulk, loaded into a Hourglass data directory
//! (in-process, through the storage engine) or a running server (line protocol over HTTP).
//!
//! ```text
//! SOURCE… ──sources──> InputFile (local path or s3:// object, kind, Hive partition values)
//!         ──read──────> Arrow batches (Parquet, CSV) or line protocol chunks
//!         ──convert───> hourglass WriteBatch (time ns, dims as dictionaries, measure_name, measures)
//!         ──target────> Engine::commit (--data-dir) | POST /api/v3/write_lp (--server)
//! ```
//! Progress is an indicatif bar on a terminal, one summary line otherwise ([`progress`]);
//! finished files and checkpoints inside files are recorded in a state file ([`state`],
//! `docs/format/import-state.md`) so `--resume` skips them; rows that cannot be loaded are
//! written to a rejects file ([`rejects`]), never dropped silently.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod convert;
pub mod csv;
pub mod line_protocol;
pub mod location;
pub mod lp_encode;
pub mod options;
pub mod parquet;
pub mod plan;
pub mod progress;
pub mod rejects;
pub mod run;
pub mod sources;
pub mod state;
pub mod target;
pub mod unload;

pub use options::{ImportOptions, TargetSpec};
pub use run::{run, Summary};
