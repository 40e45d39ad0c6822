//! The neutral write batch every ingest protocol decodes into.
//!
//! A [`WriteBatch`] targets one database and holds one Arrow [`RecordBatch`] per table, with a
//! `time` column, dimension columns (dictionary-encoded strings), `measure_name` and measure
//! columns. The same batches are written to the WAL (as Arrow IPC) and applied to the memory store,
//! so replay and live writes share one path.

use arrow_array::RecordBatch;

/// Rows for one table.
#[derive(Debug, Clone)]
pub struct TableWrite {
    pub table: String,
    pub batch: RecordBatch,
    /// The 1-based line (or record index) each row came from, for error messages raised after
    /// decoding. Not persisted.
    pub sources: Vec<u32>,
}

/// Rows for one database, grouped by table.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub database: String,
    pub tables: Vec<TableWrite>,
}

impl WriteBatch {
    pub fn row_count(&self) -> usize {
        self.tables.iter().map(|t| t.batch.num_rows()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.row_count() == 0
    }
}
