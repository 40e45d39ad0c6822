//! One table's live state: its memory-store chunks and its manifest, under one lock.
//!
//! Writes append [`Chunk`]s (Arrow batches tagged with their WAL segment and sequence). Queries take
//! a [`TableSnapshot`] of chunks and manifest together, so a persist that moves rows from memory to
//! a Parquet file is seen either wholly before or wholly after. Possible duplicate records (a row
//! not newer than the last row of its series) mark their day dirty; dirty days are resolved by
//! queries and cleaned by compaction.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch};
use hourglass_core::time::NANOS_PER_DAY;
use hourglass_core::{column_role, ColumnRole};
use parking_lot::Mutex;

use crate::chunk_last_rows::ChunkLastRows;
use crate::exact_buffers::exact;
use crate::manifest::Manifest;
use crate::series_history::SeriesHistory;

/// Rows in the memory store from one write.
#[derive(Debug)]
pub struct Chunk {
    pub id: u64,
    /// Unique to this chunk object among all tables: a chunk replaced by what remains of it
    /// keeps its `id` but gets a new `uid` ([`crate::chunk_last_rows`]).
    pub uid: u64,
    /// WAL sequence of the entry the rows came from (orders writes).
    pub sequence: u64,
    /// WAL segment holding the rows; the segment may be deleted once no chunk names it.
    pub wal_segment: u64,
    pub batch: RecordBatch,
    pub min_time: i64,
    pub max_time: i64,
    pub bytes: usize,
    /// When the rows arrived, by the engine's clock (ns).
    pub arrived_at: i64,
    /// The chunk's last row per series, computed on first use ([`crate::last_rows`]).
    last_rows: OnceLock<RecordBatch>,
}

impl Chunk {
    fn new(
        id: u64,
        sequence: u64,
        wal_segment: u64,
        batch: RecordBatch,
        arrived_at: i64,
    ) -> Option<Chunk> {
        let (min_time, max_time) = time_range(&batch)?;
        static NEXT_UID: AtomicU64 = AtomicU64::new(0);
        Some(Chunk {
            id,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            sequence,
            wal_segment,
            arrived_at,
            bytes: batch.get_array_memory_size(),
            batch,
            min_time,
            max_time,
            last_rows: OnceLock::new(),
        })
    }

    /// A chunk of `batch` (tests of other modules).
    #[cfg(test)]
    pub(crate) fn for_tests(id: u64, batch: RecordBatch) -> Chunk {
        Chunk::new(id, id, 0, batch, 0).expect("a batch with rows")
    }

    /// The chunk's newest rows of each series (computed once; chunks never change).
    pub fn last_rows(&self) -> hourglass_core::Result<RecordBatch> {
        if let Some(rows) = self.last_rows.get() {
            return Ok(rows.clone());
        }
        let rows = crate::last_rows::last_rows_of(&self.batch)?;
        Ok(self.last_rows.get_or_init(|| rows).clone())
    }
}

/// What a query or persist sees of a table at one moment.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub chunks: Vec<Arc<Chunk>>,
    pub manifest: Arc<Manifest>,
    /// Days (since the epoch) where memory or files may hold several writes of one record.
    pub dirty_days: BTreeSet<i64>,
    /// The table's chunks' last rows merged in blocks, kept across queries.
    pub chunk_last_rows: Arc<ChunkLastRows>,
}

#[derive(Debug)]
struct TableState {
    chunks: Vec<Arc<Chunk>>,
    next_chunk_id: u64,
    manifest: Arc<Manifest>,
    memory_dirty_days: BTreeSet<i64>,
    /// Recent times per series, for spotting rewrites of a record.
    history: SeriesHistory,
    bytes: usize,
}

/// A table's memory store and manifest.
#[derive(Debug)]
pub struct TableStore {
    pub db: String,
    pub table: String,
    state: Mutex<TableState>,
    /// Held by persist, retention and compaction so they run one at a time per table.
    pub maintenance: tokio::sync::Mutex<()>,
    chunk_last_rows: Arc<ChunkLastRows>,
}

/// A change made by a persist, compaction or retention run, committed atomically.
#[derive(Debug, Default)]
pub struct Commit {
    /// Chunks to drop from memory, each optionally replaced by what remains of it.
    pub replace_chunks: Vec<(u64, Option<RecordBatch>)>,
    pub manifest: Option<Manifest>,
}

impl TableStore {
    pub fn new(db: &str, table: &str, manifest: Manifest) -> TableStore {
        let persisted_max_at_open = manifest.max_time().unwrap_or(i64::MIN);
        TableStore {
            db: db.to_string(),
            table: table.to_string(),
            state: Mutex::new(TableState {
                chunks: Vec::new(),
                next_chunk_id: 0,
                manifest: Arc::new(manifest),
                memory_dirty_days: BTreeSet::new(),
                // A series first seen since opening may have rows up to the newest persisted
                // time in files the history never saw.
                history: SeriesHistory::new(persisted_max_at_open),
                bytes: 0,
            }),
            maintenance: tokio::sync::Mutex::new(()),
            chunk_last_rows: Arc::default(),
        }
    }

    /// Adds rows that arrived at `now` to the memory store; returns the bytes added.
    pub fn apply(&self, batch: RecordBatch, sequence: u64, wal_segment: u64, now: i64) -> usize {
        let hashes = series_hashes(&batch);
        let times = batch
            .column_by_name(hourglass_core::TIME_COLUMN)
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>().cloned());
        let mut state = self.state.lock();
        let id = state.next_chunk_id;
        let Some(chunk) = Chunk::new(id, sequence, wal_segment, batch, now) else {
            return 0;
        };
        state.next_chunk_id += 1;
        if let Some(times) = times {
            let mut dirty = Vec::new();
            for (hash, &t) in hashes.iter().zip(times.values().iter()) {
                if state.history.observe(*hash, t) {
                    dirty.push(t);
                }
            }
            for t in dirty {
                state.memory_dirty_days.insert(t.div_euclid(NANOS_PER_DAY));
            }
        }
        let bytes = chunk.bytes;
        state.bytes += bytes;
        state.chunks.push(Arc::new(chunk));
        bytes
    }

    pub fn snapshot(&self) -> TableSnapshot {
        let state = self.state.lock();
        let mut dirty_days = state.memory_dirty_days.clone();
        dirty_days.extend(state.manifest.dirty_days.iter().copied());
        TableSnapshot {
            chunks: state.chunks.clone(),
            manifest: state.manifest.clone(),
            dirty_days,
            chunk_last_rows: self.chunk_last_rows.clone(),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    pub fn memory_dirty_days(&self) -> BTreeSet<i64> {
        self.state.lock().memory_dirty_days.clone()
    }

    /// Applies a persist/compaction/retention result; returns the change in memory bytes
    /// (negative when memory was freed).
    pub fn commit(&self, commit: Commit) -> isize {
        // A chunk cut down keeps only its own rows, copied before the lock.
        let replacements: HashMap<u64, Option<RecordBatch>> = commit
            .replace_chunks
            .into_iter()
            .map(|(id, rest)| (id, rest.map(exact)))
            .collect();
        let mut state = self.state.lock();
        let before = state.bytes as isize;
        if !replacements.is_empty() {
            let mut kept = Vec::with_capacity(state.chunks.len());
            for chunk in state.chunks.drain(..) {
                match replacements.get(&chunk.id) {
                    None => kept.push(chunk),
                    Some(None) => {}
                    Some(Some(rest)) => {
                        if let Some(c) = Chunk::new(
                            chunk.id,
                            chunk.sequence,
                            chunk.wal_segment,
                            rest.clone(),
                            chunk.arrived_at,
                        ) {
                            kept.push(Arc::new(c));
                        }
                    }
                }
            }
            state.chunks = kept;
            state.bytes = state.chunks.iter().map(|c| c.bytes).sum();
            let in_memory: BTreeSet<i64> = state
                .chunks
                .iter()
                .flat_map(|c| {
                    c.min_time.div_euclid(NANOS_PER_DAY)..=c.max_time.div_euclid(NANOS_PER_DAY)
                })
                .collect();
            state.memory_dirty_days.retain(|d| in_memory.contains(d));
        }
        if let Some(manifest) = commit.manifest {
            state.manifest = Arc::new(manifest);
        }
        state.bytes as isize - before
    }

    /// The oldest WAL segment any chunk still needs.
    pub fn min_wal_segment(&self) -> Option<u64> {
        self.state.lock().chunks.iter().map(|c| c.wal_segment).min()
    }
}

/// The time range of a batch (`None` when empty or without a time column).
pub fn time_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let times = batch
        .column_by_name(hourglass_core::TIME_COLUMN)?
        .as_primitive_opt::<TimestampNanosecondType>()?;
    let values = times.values();
    let min = *values.iter().min()?;
    let max = *values.iter().max()?;
    Some((min, max))
}

/// The rows of `batch` with `min <= time < max` (the batch itself when all qualify).
pub fn rows_in_time_range(
    batch: &RecordBatch,
    min: i64,
    max: i64,
) -> hourglass_core::Result<RecordBatch> {
    let times = batch
        .column_by_name(hourglass_core::TIME_COLUMN)
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .ok_or_else(|| hourglass_core::Error::internal("batch without a time column"))?;
    if times.values().iter().all(|&t| t >= min && t < max) {
        return Ok(batch.clone());
    }
    let mask: arrow_array::BooleanArray = times
        .values()
        .iter()
        .map(|&t| Some(t >= min && t < max))
        .collect();
    arrow_select::filter::filter_record_batch(batch, &mask)
        .map_err(|e| hourglass_core::Error::internal(format!("filtering rows by time: {e}")))
}

/// A 64-bit hash of each row's series (dimension values and measure_name), independent of column
/// order. Each dictionary value is hashed once per batch.
pub fn series_hashes(batch: &RecordBatch) -> Vec<u64> {
    let mut out = vec![0u64; batch.num_rows()];
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !matches!(
            column_role(field),
            ColumnRole::Dimension | ColumnRole::MeasureName
        ) {
            continue;
        }
        let Some(dict) = column.as_dictionary_opt::<Int32Type>() else {
            continue;
        };
        let Some(values) = dict.values().as_string_opt::<i32>() else {
            continue;
        };
        let value_hashes: Vec<u64> = (0..values.len())
            .map(|i| {
                let mut h = DefaultHasher::new();
                field.name().hash(&mut h);
                values.value(i).hash(&mut h);
                h.finish()
            })
            .collect();
        let keys = dict.keys();
        for (row, slot) in out.iter_mut().enumerate() {
            if keys.is_valid(row) {
                let k = keys.value(row) as usize;
                if let Some(v) = value_hashes.get(k) {
                    *slot = slot.wrapping_add(mix(*v));
                }
            }
        }
    }
    out
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
