//! Hourglass storage: catalog, memory store, Parquet magnetic store, manifest, tiering, retention
//! and compaction.
//!
//! Data flows: [`Engine::write_line_protocol`] (or [`Engine::commit`] for other decoders) ->
//! catalog ([`catalog`]) -> group commit to the WAL ([`committer`], [`wal_payload`]) -> the
//! table's memory store ([`table_store`]) -> [`maintenance`] moves rows into Parquet files listed in
//! each table's [`manifest`] in the [`store`] (local directory or S3). Queries read a
//! [`TableSnapshot`] of memory chunks and manifest together.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod catalog;
pub mod chunk_last_rows;
pub mod column_encoding;
pub mod committer;
pub mod data_dir_lock;
pub mod day_layout;
pub mod ddl;
pub mod delete;
pub mod dimension_chunk;
pub mod engine;
pub mod exact_buffers;
pub mod inline_reads;
pub mod last_rows;
pub mod maintenance;
pub mod manifest;
pub mod parquet_io;
pub mod rules;
pub mod schema;
pub mod series_history;
pub mod series_merge;
pub mod sort;
pub mod store;
pub mod stored_time_unit;
pub mod table_store;
pub mod wal_payload;
pub mod write_gate;
pub mod write_out_stats;

pub use catalog::{Catalog, CatalogState, ColumnDef, DatabaseDef, TableDef};
pub use data_dir_lock::DataDirLock;
pub use ddl::DroppedTable;
pub use delete::{DeleteKeys, DeleteOutcome};
pub use engine::{Engine, EngineConfig, LineProtocolOutcome};
pub use maintenance::MaintenanceReport;
pub use manifest::{FileMeta, Manifest};
pub use store::{MagneticStore, STORE_URL};
pub use table_store::{Chunk, TableSnapshot, TableStore};
pub use write_gate::TablePause;
