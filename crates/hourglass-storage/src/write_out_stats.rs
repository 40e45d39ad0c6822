//! Counters of the memory store's way out, for `/metrics`: the Parquet files maintenance writes
//! (persist, compaction, `DELETE` rewrites), the time their sorting and encoding took on the wall
//! and on the CPU, the time storing them took, the maintenance passes, and the writes refused
//! while the memory store was full.
//!
//! They tell an operator whether a memory store that fills up is short of CPU (encoding's wall
//! time well above its CPU time: the encode thread waits for a core) or of persist work (the
//! maintenance passes idle between intervals), and they are how `docs/benchmarks.md` measures the
//! persist under load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct WriteOutStats {
    /// Rows moved from the memory store into files by persists.
    pub persisted_rows: AtomicU64,
    /// Parquet files written (persist, compaction, rewrites).
    pub files: AtomicU64,
    /// Rows in those files.
    pub file_rows: AtomicU64,
    /// Wall nanoseconds of sorting and encoding those files.
    pub encode_nanos: AtomicU64,
    /// CPU nanoseconds of the threads that sorted and encoded them.
    pub encode_cpu_nanos: AtomicU64,
    /// Wall nanoseconds of storing them (data files and last-rows sidecars).
    pub store_nanos: AtomicU64,
    /// Maintenance passes run, and their wall nanoseconds.
    pub maintenance_passes: AtomicU64,
    pub maintenance_nanos: AtomicU64,
    /// Writes refused because the memory store was over its budget.
    pub refused_writes: AtomicU64,
}

impl WriteOutStats {
    pub fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    pub fn add_duration(counter: &AtomicU64, elapsed: Duration) {
        Self::add(
            counter,
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        );
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The counters in Prometheus' text format.
    pub fn prometheus_text(&self) -> String {
        let seconds = |c: &AtomicU64| Self::get(c) as f64 / 1e9;
        format!(
            "# HELP hourglass_persisted_rows_total Rows moved from the memory store into Parquet files.\n\
             # TYPE hourglass_persisted_rows_total counter\n\
             hourglass_persisted_rows_total {}\n\
             # HELP hourglass_parquet_files_written_total Parquet files written by persists, compactions and rewrites.\n\
             # TYPE hourglass_parquet_files_written_total counter\n\
             hourglass_parquet_files_written_total {}\n\
             # HELP hourglass_parquet_rows_written_total Rows in those files.\n\
             # TYPE hourglass_parquet_rows_written_total counter\n\
             hourglass_parquet_rows_written_total {}\n\
             # HELP hourglass_parquet_write_seconds_total Wall time of writing those files: sorting and encoding (encode), storing (store).\n\
             # TYPE hourglass_parquet_write_seconds_total counter\n\
             hourglass_parquet_write_seconds_total{{stage=\"encode\"}} {:.6}\n\
             hourglass_parquet_write_seconds_total{{stage=\"store\"}} {:.6}\n\
             # HELP hourglass_parquet_encode_cpu_seconds_total CPU time of the threads that sorted and encoded those files.\n\
             # TYPE hourglass_parquet_encode_cpu_seconds_total counter\n\
             hourglass_parquet_encode_cpu_seconds_total {:.6}\n\
             # HELP hourglass_maintenance_passes_total Maintenance passes (tiering, memory pressure, retention, compaction) run.\n\
             # TYPE hourglass_maintenance_passes_total counter\n\
             hourglass_maintenance_passes_total {}\n\
             # HELP hourglass_maintenance_seconds_total Wall time of those passes.\n\
             # TYPE hourglass_maintenance_seconds_total counter\n\
             hourglass_maintenance_seconds_total {:.6}\n\
             # HELP hourglass_writes_refused_total Writes refused because the memory store was over its budget.\n\
             # TYPE hourglass_writes_refused_total counter\n\
             hourglass_writes_refused_total {}\n",
            Self::get(&self.persisted_rows),
            Self::get(&self.files),
            Self::get(&self.file_rows),
            seconds(&self.encode_nanos),
            seconds(&self.store_nanos),
            seconds(&self.encode_cpu_nanos),
            Self::get(&self.maintenance_passes),
            seconds(&self.maintenance_nanos),
            Self::get(&self.refused_writes),
        )
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}
