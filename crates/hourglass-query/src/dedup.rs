//! Resolving several writes of one record at query time, for days not yet compacted.
//!
//! The rows of a dirty day are gathered from its Parquet files (in creation order) and memory
//! chunks (in WAL order), then sorted and merged so each record appears once with its latest
//! values. Clean days skip this and are scanned directly.
//!
//! For latest-value queries ([`crate::last_rows`]) only each source's last rows per series are
//! gathered: a series' newest record is written only by sources whose newest row of the series
//! is at that time, so merging their last rows resolves it exactly.

use std::collections::BTreeSet;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use hourglass_core::time::NANOS_PER_DAY;
use hourglass_core::{Error, Result};
use hourglass_storage::manifest::FileMeta;
use hourglass_storage::schema::conform;
use hourglass_storage::sort::sort_and_dedup;
use hourglass_storage::{parquet_io, Chunk, Engine};

/// Rows of `days`, deduplicated, conformed to `schema` (with `last_rows_only`, a subset holding
/// every series' newest record).
pub async fn resolve_days(
    engine: &Engine,
    schema: &SchemaRef,
    days: &BTreeSet<i64>,
    files: &[&FileMeta],
    chunks: &[&Chunk],
    last_rows_only: bool,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for &day in days {
        let mut parts = Vec::new();
        let mut day_files: Vec<&&FileMeta> = files.iter().filter(|f| f.day == day).collect();
        day_files.sort_by_key(|f| f.sequence);
        for f in day_files {
            if last_rows_only {
                if let Some(rows) = engine.file_last_rows(f).await? {
                    parts.push(conform(&rows, schema)?);
                    continue;
                }
            }
            for b in parquet_io::read_all(&engine.magnetic, &f.path).await? {
                parts.push(conform(&b, schema)?);
            }
        }
        let mut day_chunks: Vec<&&Chunk> = chunks
            .iter()
            .filter(|c| {
                c.min_time.div_euclid(NANOS_PER_DAY) <= day
                    && c.max_time.div_euclid(NANOS_PER_DAY) >= day
            })
            .collect();
        day_chunks.sort_by_key(|c| (c.sequence, c.id));
        for c in day_chunks {
            let b = if last_rows_only {
                conform(&c.last_rows()?, schema)?
            } else {
                conform(&c.batch, schema)?
            };
            parts.push(rows_of_day(&b, day)?);
        }
        if parts.is_empty() {
            continue;
        }
        let all = arrow::compute::concat_batches(schema, &parts)
            .map_err(|e| Error::internal(format!("resolving duplicates: {e}")))?;
        let day_rows = rows_of_day(&all, day)?;
        out.push(sort_and_dedup(&day_rows, true)?);
    }
    Ok(out)
}

/// The rows of `batch` that fall on `day`.
pub fn rows_of_day(batch: &RecordBatch, day: i64) -> Result<RecordBatch> {
    filter_time(batch, day * NANOS_PER_DAY, (day + 1) * NANOS_PER_DAY)
}

/// The rows of `batch` with `min <= time < max`.
pub fn filter_time(batch: &RecordBatch, min: i64, max: i64) -> Result<RecordBatch> {
    hourglass_storage::table_store::rows_in_time_range(batch, min, max)
}
