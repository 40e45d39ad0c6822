//! Prometheus remote write and remote read, protocol 1.0 (`docs/protocols/prometheus.md`):
//! protobuf messages ([`proto`]), snappy framing ([`codec`]), samples to rows ([`write`]),
//! matchers to scans and rows back to series ([`read`], [`matcher`]), and the names of the
//! mapping ([`names`]). No I/O: the server's handler (`hourglass/src/http/prometheus.rs`) commits
//! the rows and runs the scans.

pub mod codec;
pub mod matcher;
pub mod names;
pub mod proto;
pub mod read;
pub mod write;

pub use read::{plan_scans, ReadQuery, SeriesCollector, TableInfo, TableScan};
pub use write::{plan_write, WritePlan};
