//! The configuration file of `hourglass serve --config FILE` (TOML).
//!
//! Every flag of a clap command has a top-level key, its clap id (`memory_budget_mb` for
//! `--memory-budget-mb`); values are checked with the flag's own value parser, so a key accepts
//! exactly what its flag accepts. Flags given on the command line and their `HOURGLASS_*`
//! environment variables override the file ([`flag_arguments`] only returns keys whose flag
//! still has its default). Tables and arrays of tables named by the caller (`[[mqtt]]`) are
//! sections owned by the data sources, read with [`ConfigFile::sections`]. Unknown keys, values a
//! flag refuses and malformed TOML stop the start with the file, line and key named
//! ([`ConfigError`]). [`example`] prints a commented file with every key and its default.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
mod example;
mod file;
mod flags;

pub use error::ConfigError;
pub use example::example;
pub use file::ConfigFile;
pub use flags::flag_arguments;
