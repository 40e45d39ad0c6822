//! SQL over both tiers.
//!
//! A [`QueryEngine`] builds one DataFusion session per query: databases are schemas of the
//! `hourglass` catalog ([`catalog`]), each table a [`provider::HourglassTable`] whose scan unions
//! the memory store's batches and the manifest's Parquet files, pruned by time range and (through
//! Parquet statistics) by dimension predicates, with several writes of one record resolved
//! ([`dedup`]); latest-value queries read only each source's last rows ([`rules::last_rows`]). Results are
//! encoded by [`output`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod access;
pub mod anomaly;
pub mod bounded_functions;
pub mod catalog;
pub mod column_info;
pub mod dedup;
pub mod delete;
pub mod dialect;
pub mod error;
pub mod file_groups;
pub mod influxql;
pub mod limits;
pub mod output;
pub mod page_index_cache;
pub mod plan_cache;
pub mod plan_path;
pub mod provider;
pub mod rules;
pub mod session;
pub mod stored_time;
pub mod system;
pub mod system_tables;
pub mod time_range;

pub use error::from_datafusion;
pub use output::{OutputFormat, ResultEncoder};
pub use session::QueryEngine;
