//! The last rows of each series: what "latest value" queries need, kept so they need not scan.
//!
//! For a set of rows, the *last rows* are, for every series (dimensions and `measure_name`), the
//! rows at that series' greatest time. Any latest-value answer over a table is found among the
//! last rows of its sources (memory chunks and Parquet files) taken together: a series' newest
//! row is the newest of its sources' newest rows. Memory chunks compute theirs once, on first
//! use; Parquet files get theirs when written, as a small sidecar Parquet file named in the
//! manifest (`docs/format/magnetic-store.md`), read once and cached here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{RecordBatch, UInt32Array};
use arrow_ord::partition::partition;
use hourglass_core::{Error, Result};
use parking_lot::Mutex;

use crate::sort::{key_column_indices, sort_and_dedup};

/// A sidecar is written only when it is this many times smaller than its data file; otherwise
/// reading the file itself costs about the same.
pub const MIN_SIDECAR_REDUCTION: usize = 4;

/// The last rows of a batch already sorted by series then time.
pub fn last_rows_of_sorted(batch: &RecordBatch) -> Result<RecordBatch> {
    let n = batch.num_rows();
    if n == 0 {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut keys = key_column_indices(&schema);
    let Some(time_index) = keys.pop() else {
        return Err(Error::internal("a table without a time column"));
    };
    let times = batch
        .column(time_index)
        .as_primitive_opt::<TimestampNanosecondType>()
        .ok_or_else(|| Error::internal("the time column is not a nanosecond timestamp"))?;
    let ranges: Vec<std::ops::Range<usize>> = if keys.is_empty() {
        std::iter::once(0..n).collect()
    } else {
        let columns: Vec<_> = keys.iter().map(|&i| batch.column(i).clone()).collect();
        partition(&columns)
            .map_err(|e| Error::internal(format!("grouping rows by series: {e}")))?
            .ranges()
    };
    let mut indices: Vec<u32> = Vec::with_capacity(ranges.len());
    for range in ranges {
        // Keep every row at the series' greatest time (normally one).
        let last = range.end - 1;
        let mut first = last;
        while first > range.start && times.value(first - 1) == times.value(last) {
            first -= 1;
        }
        indices.extend(first as u32..=last as u32);
    }
    if indices.len() == n {
        return Ok(batch.clone());
    }
    arrow_select::take::take_record_batch(batch, &UInt32Array::from(indices))
        .map_err(|e| Error::internal(format!("taking last rows: {e}")))
}

/// The last rows of a batch in any order (a memory chunk).
pub fn last_rows_of(batch: &RecordBatch) -> Result<RecordBatch> {
    last_rows_of_sorted(&sort_and_dedup(batch, false)?)
}

/// The object path of a data file's last-rows sidecar.
pub fn sidecar_path(data_file: &str) -> String {
    match data_file.strip_suffix(".parquet") {
        Some(stem) => format!("{stem}.last.parquet"),
        None => format!("{data_file}.last.parquet"),
    }
}

/// Counts of latest-value queries answered from last rows (exported by `/metrics`).
#[derive(Debug, Default)]
pub struct LatestValueStats {
    pub queries: AtomicU64,
    /// Candidate rows examined (the sources' last rows), summed over those queries.
    pub candidate_rows: AtomicU64,
}

impl LatestValueStats {
    pub fn record(&self, candidate_rows: usize) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.candidate_rows
            .fetch_add(candidate_rows as u64, Ordering::Relaxed);
    }
}

/// Decoded sidecars by path. Files never change once written, so entries never go stale; the
/// cache is emptied when it grows past its byte bound.
#[derive(Debug)]
pub struct SidecarCache {
    entries: Mutex<(HashMap<String, RecordBatch>, usize)>,
    max_bytes: usize,
}

impl SidecarCache {
    pub fn new(max_bytes: usize) -> SidecarCache {
        SidecarCache {
            entries: Mutex::new((HashMap::new(), 0)),
            max_bytes,
        }
    }

    pub fn get(&self, path: &str) -> Option<RecordBatch> {
        self.entries.lock().0.get(path).cloned()
    }

    pub fn insert(&self, path: &str, batch: RecordBatch) {
        let size = batch.get_array_memory_size();
        let mut guard = self.entries.lock();
        if guard.1 + size > self.max_bytes {
            guard.0.clear();
            guard.1 = 0;
        }
        guard.1 += size;
        guard.0.insert(path.to_string(), batch);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, DictionaryArray, Float64Array, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn batch(hosts: &[&str], times: &[i64], values: &[f64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "host",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("v", DataType::Float64, true),
        ]));
        let host: DictionaryArray<arrow_array::types::Int32Type> = hosts.iter().copied().collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(host),
            Arc::new(TimestampNanosecondArray::from(times.to_vec())),
            Arc::new(Float64Array::from(values.to_vec())),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn rows(b: &RecordBatch) -> Vec<(String, i64, f64)> {
        let host = b.column(0).as_dictionary::<arrow_array::types::Int32Type>();
        let names = host.values().as_string::<i32>();
        let t = b.column(1).as_primitive::<TimestampNanosecondType>();
        let v = b
            .column(2)
            .as_primitive::<arrow_array::types::Float64Type>();
        (0..b.num_rows())
            .map(|i| {
                (
                    names.value(host.keys().value(i) as usize).to_string(),
                    t.value(i),
                    v.value(i),
                )
            })
            .collect()
    }

    #[test]
    fn each_series_keeps_its_newest_row() {
        let b = batch(
            &["b", "a", "b", "a", "c"],
            &[5, 9, 7, 3, 1],
            &[1.0, 2.0, 3.0, 4.0, 5.0],
        );
        let last = last_rows_of(&b).unwrap();
        assert_eq!(
            rows(&last),
            vec![
                ("a".to_string(), 9, 2.0),
                ("b".to_string(), 7, 3.0),
                ("c".to_string(), 1, 5.0)
            ]
        );
    }

    #[test]
    fn rows_tied_at_the_newest_time_are_all_kept() {
        let b = batch(&["a", "a", "a", "b"], &[1, 4, 4, 4], &[1.0, 2.0, 3.0, 9.0]);
        let last = last_rows_of_sorted(&b).unwrap();
        assert_eq!(
            rows(&last),
            vec![
                ("a".to_string(), 4, 2.0),
                ("a".to_string(), 4, 3.0),
                ("b".to_string(), 4, 9.0)
            ]
        );
    }

    #[test]
    fn sidecar_names_follow_their_file() {
        assert_eq!(
            sidecar_path("db/t/2016-01-01/1-x.parquet"),
            "db/t/2016-01-01/1-x.last.parquet"
        );
    }
}
