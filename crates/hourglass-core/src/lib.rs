//! Shared vocabulary of Hourglass.
//!
//! Every other crate speaks in these terms: the error classification that each protocol maps once
//! at its edge ([`Error`], [`ErrorKind`]), column types and roles ([`ColumnType`], [`ColumnRole`]),
//! timestamps and precisions ([`time`]), the injected clock ([`Clock`]), table properties
//! ([`TableProperties`]) and the neutral [`WriteBatch`] that every ingest protocol decodes into.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod batch;
pub mod clock;
pub mod connections;
pub mod error;
pub mod names;
pub mod properties;
pub mod time;
pub mod types;

pub use batch::{TableWrite, WriteBatch};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use connections::{Admission, ConnectionLimits, Permit, Protocol, Refusal};
pub use error::{Error, ErrorKind, Result};
pub use properties::TableProperties;
pub use types::{column_role, ColumnRole, ColumnType, MEASURE_NAME_COLUMN, TIME_COLUMN};
