//! Decoders from wire formats into Hourglass write batches. Pure (no I/O, no clock) and fuzzable.
//!
//! [`line_protocol`] decodes InfluxDB line protocol bodies into one Arrow
//! [`TableWrite`](hourglass_core::TableWrite) per measurement: `time`, `measure_name`, tags as
//! dictionary-encoded dimensions, fields as typed measures. What the decoder needs to know about
//! existing tables (column roles and types, the write-time window) comes in through the
//! [`TableRules`] trait, so this crate does not depend on the catalog. Invalid lines are reported
//! one by one and the valid lines of the same body are still returned.

pub mod line_protocol;

pub use line_protocol::{
    parse_line_protocol, ExistingColumn, LineError, LineProtocolOptions, NoExistingTables,
    ParseOutcome, TableRules,
};
