//! Resolving several writes of one record at query time, for days not yet compacted.
//!
//! The rows of a dirty day are gathered from its Parquet files (in creation order) and memory
//! chunks (in WAL order), then sorted and merged so each record appears once with its latest
//! values. Clean days skip this and are scanned directly.
//!
//! For latest-value queries ([`crate::rules::last_rows`]) only each source's last rows per series are
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

use crate::time_range::TimeRange;

/// Rows of `days`, deduplicated, conformed to `schema` (with `last_rows_only`, a subset holding
/// every series' newest record).
pub async fn resolve_days(
    engine: &Engine,
    schema: &SchemaRef,
    days: &BTreeSet<i64>,
    files: &[&FileMeta],
    chunks: &[&Chunk],
    last_rows_only: bool,
    range: TimeRange,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for &day in days {
        // All writes of a record share its time: the query's window resolves on its own.
        let lo = (day * NANOS_PER_DAY).max(range.min);
        let hi = ((day + 1) * NANOS_PER_DAY).min(range.max);
        if lo >= hi {
            continue;
        }
        let mut parts = Vec::new();
        let mut day_files: Vec<&&FileMeta> = files.iter().filter(|f| f.day == day).collect();
        day_files.sort_by_key(|f| f.sequence);
        for f in day_files {
            if last_rows_only {
                if let Some(rows) = engine.file_last_rows(f).await? {
                    parts.push(filter_time(&conform(&rows, schema)?, lo, hi)?);
                    continue;
                }
            }
            for b in parquet_io::read_all(&engine.magnetic, &f.path).await? {
                parts.push(filter_time(&conform(&b, schema)?, lo, hi)?);
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
            parts.push(filter_time(&b, lo, hi)?);
        }
        parts.retain(|p| p.num_rows() > 0);
        if parts.is_empty() {
            continue;
        }
        let all = arrow::compute::concat_batches(schema, &parts)
            .map_err(|e| Error::internal(format!("resolving duplicates: {e}")))?;
        drop(parts);
        out.extend(pieces(&sort_and_dedup(&all, true)?, PIECE_ROWS)?);
    }
    Ok(out)
}

/// Rows per batch handed to DataFusion from a resolved day.
const PIECE_ROWS: usize = 65_536;

/// `batch` as batches of at most `rows` rows, each with buffers of its own: DataFusion charges a
/// batch's memory by its buffers, so slices of one large batch would each be charged for all of
/// it (and make operators spill for nothing).
fn pieces(batch: &RecordBatch, rows: usize) -> Result<Vec<RecordBatch>> {
    if batch.num_rows() <= rows {
        return Ok(vec![batch.clone()]);
    }
    (0..batch.num_rows())
        .step_by(rows)
        .map(|start| {
            let end = (start + rows).min(batch.num_rows());
            let indices = arrow::array::UInt32Array::from_iter_values(start as u32..end as u32);
            arrow::compute::take_record_batch(batch, &indices)
                .map_err(|e| Error::internal(format!("resolving duplicates: {e}")))
        })
        .collect()
}

/// The rows of `batch` with `min <= time < max`.
pub fn filter_time(batch: &RecordBatch, min: i64, max: i64) -> Result<RecordBatch> {
    hourglass_storage::table_store::rows_in_time_range(batch, min, max)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn pieces_hold_every_row_once_in_order_with_their_own_buffers() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..10))],
        )
        .unwrap();
        let out = pieces(&batch, 3).unwrap();
        assert_eq!(
            out.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        assert_eq!(
            arrow::compute::concat_batches(&schema, &out).unwrap(),
            batch
        );
        // A piece is charged for its own rows, not the whole batch's.
        assert!(out[0].column(0).get_array_memory_size() < batch.column(0).get_array_memory_size());
        assert_eq!(pieces(&batch, 10).unwrap().len(), 1);
    }
}
