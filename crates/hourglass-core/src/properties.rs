//! Timestream's table properties: memory-store and magnetic-store retention and whether late
//! (magnetic-store) writes are accepted; and the write window they imply.

use serde::{Deserialize, Serialize};

use crate::time::{format_millis_utc, NANOS_PER_DAY, NANOS_PER_HOUR};

/// How far into the future a record may be (Timestream's 15-minute future ingestion period).
pub const FUTURE_INGESTION_NANOS: i64 = 15 * 60 * 1_000_000_000;

/// Retention and write properties of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProperties {
    /// `MemoryStoreRetentionPeriodInHours` (1..=8766).
    pub memory_retention_hours: i64,
    /// `MagneticStoreRetentionPeriodInDays` (1..=73000).
    pub magnetic_retention_days: i64,
    /// `MagneticStoreWriteProperties.EnableMagneticStoreWrites`.
    pub magnetic_writes_enabled: bool,
}

impl Default for TableProperties {
    /// Timestream's defaults (6 hours, 73000 days) with magnetic-store writes off.
    fn default() -> Self {
        TableProperties {
            memory_retention_hours: 6,
            magnetic_retention_days: 73_000,
            magnetic_writes_enabled: false,
        }
    }
}

impl TableProperties {
    pub fn memory_retention_nanos(&self) -> i64 {
        self.memory_retention_hours.saturating_mul(NANOS_PER_HOUR)
    }
    pub fn magnetic_retention_nanos(&self) -> i64 {
        self.magnetic_retention_days.saturating_mul(NANOS_PER_DAY)
    }
    /// Rows older than this are moved to the magnetic store.
    pub fn memory_cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(self.memory_retention_nanos())
    }
    /// Rows older than this have expired and are deleted.
    pub fn magnetic_cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(self.magnetic_retention_nanos())
    }

    /// The `[lower, upper)` window a new record's time must fall in, and the phrase naming it in
    /// Timestream's reason text.
    pub fn write_window(&self, now: i64) -> (i64, i64, &'static str) {
        let upper = now.saturating_add(FUTURE_INGESTION_NANOS);
        if self.magnetic_writes_enabled {
            (self.magnetic_cutoff(now), upper, "data ingestion window")
        } else {
            (self.memory_cutoff(now), upper, "memory store")
        }
    }

    /// `None` when `time` may be written now, else Timestream's reason text.
    pub fn check_write_time(&self, time: i64, now: i64) -> Option<String> {
        let (lower, upper, name) = self.write_window(now);
        if time >= lower && time < upper {
            None
        } else {
            Some(format!(
                "The record timestamp is outside the time range [{}, {}) of the {name}.",
                format_millis_utc(lower),
                format_millis_utc(upper)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_follows_magnetic_writes_flag() {
        let now = 1_700_000_000_000_000_000;
        let mut p = TableProperties::default();
        let old = now - 7 * NANOS_PER_HOUR;
        let reason = p.check_write_time(old, now).unwrap();
        assert!(reason.ends_with("of the memory store."), "{reason}");
        assert!(p.check_write_time(now, now).is_none());
        assert!(p
            .check_write_time(now + 16 * 60 * 1_000_000_000, now)
            .is_some());
        p.magnetic_writes_enabled = true;
        assert!(p.check_write_time(old, now).is_none());
        p.magnetic_retention_days = 1;
        let reason = p.check_write_time(now - 2 * NANOS_PER_DAY, now).unwrap();
        assert!(
            reason.ends_with("of the data ingestion window."),
            "{reason}"
        );
    }
}
