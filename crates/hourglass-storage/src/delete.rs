//! `DELETE`: removing records from both tiers, durably and at once.
//!
//! The query layer pauses the table's writes ([`crate::write_gate`]), reads the keys (series
//! columns and `time`) of the records the statement matches, and hands them here. Then, under the
//! table's maintenance lock:
//!
//! 1. the keys are appended to the WAL as a deletion entry (`docs/format/wal.md`) and fsynced —
//!    from here on the deletion survives a crash;
//! 2. every Parquet file holding one of the records is rewritten without it (same place in the
//!    table's write order) and a manifest naming the new files, the WAL sequence of the deletion
//!    (`deletes_through`) and the replaced files (`obsolete_files`) is stored;
//! 3. one commit swaps the memory-store chunks (without the records) and that manifest, so a
//!    query sees the records in both tiers or in neither;
//! 4. the replaced files are deleted, then a manifest without `obsolete_files` is stored.
//!
//! Every write of a deleted record made before the deletion goes, whichever tier holds it; writes
//! after it are kept. On WAL replay a deletion entry filters the chunks replayed before it, and
//! rewrites files only when the manifest's `deletes_through` is older than it (a crash between
//! steps 1 and 2); replaced files a crash left behind are deleted when the engine opens. So once
//! `DELETE` has answered, the deleted values are in no Parquet file; their bytes leave the WAL
//! when maintenance retires the segments that held them.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{new_null_array, Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_row::RowConverter;
use arrow_schema::{Schema, SchemaRef};
use hourglass_core::{Error, Result};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

use crate::engine::{wal_error, Engine};
use crate::manifest::{FileMeta, Manifest};
use crate::parquet_io;
use crate::schema::{conform, table_schema};
use crate::sort::{key_column_indices, key_converter};
use crate::table_store::{Commit, TableStore};
use crate::wal_payload::encode_delete;
use crate::write_gate::TablePause;

/// The keys of the records one deletion removes, ready for matching rows of any batch.
pub struct DeleteKeys {
    /// Key columns (series columns and `time`) in the table's types.
    pub batch: RecordBatch,
    converter: RowConverter,
    set: HashSet<Box<[u8]>>,
    /// The keys' times, sorted, for skipping chunks and files that hold none of them.
    times: Vec<i64>,
}

impl DeleteKeys {
    /// The distinct keys among `batches` (any columns; those of the table's key named), taken to
    /// the key types of `table_schema`.
    pub fn new(table_schema: &SchemaRef, batches: &[RecordBatch]) -> Result<DeleteKeys> {
        let indices = key_column_indices(table_schema);
        let key_schema: SchemaRef = Arc::new(Schema::new(
            indices
                .iter()
                .map(|&i| table_schema.field(i).clone())
                .collect::<Vec<_>>(),
        ));
        let all: Vec<usize> = (0..key_schema.fields().len()).collect();
        let converter = key_converter(&key_schema, &all)?;
        let mut parts = Vec::with_capacity(batches.len());
        for b in batches {
            if b.num_rows() > 0 {
                parts.push(key_columns(&key_schema, b)?);
            }
        }
        let batch = if parts.is_empty() {
            RecordBatch::new_empty(key_schema.clone())
        } else {
            arrow_select::concat::concat_batches(&key_schema, &parts).map_err(internal)?
        };
        let rows = converter
            .convert_columns(batch.columns())
            .map_err(internal)?;
        let mut set = HashSet::with_capacity(batch.num_rows());
        let mut distinct = Vec::with_capacity(batch.num_rows());
        for (i, row) in rows.iter().enumerate() {
            if set.insert(Box::<[u8]>::from(row.as_ref())) {
                distinct.push(i as u32);
            }
        }
        let batch = if distinct.len() == batch.num_rows() {
            batch
        } else {
            let take = arrow_array::UInt32Array::from(distinct);
            arrow_select::take::take_record_batch(&batch, &take).map_err(internal)?
        };
        let mut times: Vec<i64> = match batch.column_by_name(hourglass_core::TIME_COLUMN) {
            Some(t) => t
                .as_primitive_opt::<TimestampNanosecondType>()
                .ok_or_else(|| Error::internal("deleted keys' time column is not nanoseconds"))?
                .values()
                .to_vec(),
            None => Vec::new(),
        };
        times.sort_unstable();
        Ok(DeleteKeys {
            batch,
            converter,
            set,
            times,
        })
    }

    /// How many distinct records the keys name.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Whether any key's time lies in `min..=max`.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        let from = self.times.partition_point(|&t| t < min);
        self.times.get(from).is_some_and(|&t| t <= max)
    }

    /// `batch` without the rows of deleted records, and how many rows went (the batch keeps its
    /// own columns; a key column it lacks counts as NULL).
    pub fn remove_from(&self, batch: &RecordBatch) -> Result<(RecordBatch, usize)> {
        if batch.num_rows() == 0 {
            return Ok((batch.clone(), 0));
        }
        let keys = key_columns(&self.batch.schema(), batch)?;
        let rows = self
            .converter
            .convert_columns(keys.columns())
            .map_err(internal)?;
        let keep: BooleanArray = rows
            .iter()
            .map(|r| Some(!self.set.contains(r.as_ref())))
            .collect();
        let removed = keep.false_count();
        if removed == 0 {
            return Ok((batch.clone(), 0));
        }
        let kept = arrow_select::filter::filter_record_batch(batch, &keep).map_err(internal)?;
        Ok((kept, removed))
    }
}

/// The key columns of `key_schema` taken from `batch` by name, cast to the key types (NULL where
/// the batch lacks the column).
fn key_columns(key_schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = key_schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => arrow_cast::cast(c, f.data_type())
                .map_err(|e| Error::invalid(format!("deleted keys' column '{}': {e}", f.name()))),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<_>>()?;
    let nullable: Vec<_> = key_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(nullable)), columns).map_err(internal)
}

/// What a deletion removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Distinct records deleted.
    pub records: u64,
    /// Rows removed from the memory store (each write of a record is a row).
    pub memory_rows: u64,
    /// Rows removed from Parquet files.
    pub file_rows: u64,
    /// Parquet files rewritten (or removed when nothing of them was left).
    pub files_rewritten: u64,
}

impl Engine {
    /// Pauses writes to `database.table` until the pause is dropped, once the commits in flight
    /// to it are done ([`crate::write_gate`]).
    pub async fn pause_writes(&self, database: &str, table: &str) -> Result<TablePause> {
        let gate = self.write_gate.clone();
        let (db, t) = (database.to_string(), table.to_string());
        tokio::task::spawn_blocking(move || gate.pause(&db, &t))
            .await
            .map_err(|e| Error::internal(format!("pausing writes: {e}")))
    }

    /// Deletes the records whose keys are among `keys` (batches holding the table's series
    /// columns and `time`, as a query of the table returns them) from the table `pause` holds.
    /// Durable (WAL) before anything changes; both tiers change in one step.
    pub async fn delete_records(
        &self,
        pause: &TablePause,
        keys: &[RecordBatch],
    ) -> Result<DeleteOutcome> {
        let (db, table) = (pause.database(), pause.table());
        let def = self
            .catalog
            .snapshot()
            .table(db, table)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("table '{db}.{table}' does not exist")))?;
        let schema = table_schema(&def);
        let keys = DeleteKeys::new(&schema, keys)?;
        if keys.is_empty() {
            return Ok(DeleteOutcome::default());
        }
        let store = self.ensure_table_store(db, table);
        let _maintenance = store.maintenance.lock().await;
        let payload = encode_delete(db, table, &keys.batch)?;
        if payload.len() as u64 > hourglass_wal::format::MAX_ENTRY_LEN {
            return Err(Error::invalid(format!(
                "DELETE matched {} records of '{db}.{table}', whose keys ({} MiB) exceed what one \
                 deletion can hold ({} MiB): narrow the WHERE (for example by time) and repeat",
                keys.len(),
                payload.len() >> 20,
                hourglass_wal::format::MAX_ENTRY_LEN >> 20
            )));
        }
        let wal = self.wal.clone();
        let (_segment, sequence) = tokio::task::spawn_blocking(move || wal.append(&payload))
            .await
            .map_err(|e| Error::internal(format!("WAL append: {e}")))?
            .map_err(wal_error)?;
        self.wal_written_since_rotation
            .store(true, Ordering::SeqCst);
        self.maintenance_wakeup.notify_one();
        self.apply_delete(&store, &schema, &keys, sequence).await
    }

    /// Removes the records of `keys` from the store's chunks and (unless the manifest already
    /// has this deletion) files, then deletes the replaced files. The caller holds the store's
    /// maintenance lock.
    pub(crate) async fn apply_delete(
        &self,
        store: &TableStore,
        schema: &SchemaRef,
        keys: &DeleteKeys,
        sequence: u64,
    ) -> Result<DeleteOutcome> {
        let snapshot = store.snapshot();
        let mut outcome = DeleteOutcome {
            records: keys.len() as u64,
            ..Default::default()
        };
        let replace_chunks = chunks_without(store, keys, &mut outcome)?;
        let mut manifest = (*snapshot.manifest).clone();
        let mut obsolete: Vec<FileMeta> = Vec::new();
        if sequence > manifest.deletes_through {
            let mut files = Vec::with_capacity(manifest.files.len());
            for f in std::mem::take(&mut manifest.files) {
                if !keys.overlaps(f.min_time, f.max_time) {
                    files.push(f);
                    continue;
                }
                let mut kept = Vec::new();
                let mut removed = 0usize;
                for b in parquet_io::read_all(&self.magnetic, &f.path).await? {
                    let (rest, gone) = keys.remove_from(&b)?;
                    removed += gone;
                    if rest.num_rows() > 0 {
                        kept.push(conform(&rest, schema)?);
                    }
                }
                if removed == 0 {
                    files.push(f);
                    continue;
                }
                outcome.file_rows += removed as u64;
                outcome.files_rewritten += 1;
                if !kept.is_empty() {
                    let rows =
                        arrow_select::concat::concat_batches(schema, &kept).map_err(internal)?;
                    let day = f.day;
                    let sequence = f.sequence;
                    let mut rewritten = self
                        .write_file_at(store, &mut manifest, day, rows, false, Some(sequence))
                        .await?;
                    // Fewer rows of the same series: still part of its day's series layout.
                    rewritten.whole_day = f.whole_day;
                    files.push(rewritten);
                }
                obsolete.push(f);
            }
            manifest.files = files;
            manifest.deletes_through = sequence;
            manifest.obsolete_files = obsolete_paths(&obsolete);
            manifest.generation += 1;
            manifest
                .store(&self.magnetic, &store.db, &store.table)
                .await?;
        }
        let changed_manifest = *snapshot.manifest != manifest;
        let delta = store.commit(Commit {
            replace_chunks,
            manifest: changed_manifest.then(|| manifest.clone()),
        });
        self.memory_bytes.fetch_add(delta as i64, Ordering::Relaxed);
        if !obsolete.is_empty() {
            self.remove_obsolete(store, manifest).await?;
        }
        Ok(outcome)
    }

    /// Deletes the files a manifest lists as replaced, then stores it without them.
    pub(crate) async fn remove_obsolete(
        &self,
        store: &TableStore,
        mut manifest: Manifest,
    ) -> Result<()> {
        for path in std::mem::take(&mut manifest.obsolete_files) {
            self.magnetic
                .delete(&ObjectPath::from(path.as_str()))
                .await?;
        }
        self.publish_manifest(store, manifest).await
    }

    /// WAL replay of a deletion entry (`sequence` in `segment`): the memory store loses the
    /// records now; what its files still need is returned. Nothing for a table dropped since.
    pub(crate) fn replay_delete(
        &self,
        database: String,
        table: String,
        keys: Vec<RecordBatch>,
        segment: u64,
        sequence: u64,
    ) -> Result<Option<ReplayedDelete>> {
        if self.tombstones.lock().covers(&database, &table, segment) {
            return Ok(None);
        }
        let Some(def) = self.catalog.snapshot().table(&database, &table).cloned() else {
            return Ok(None);
        };
        let schema = table_schema(&def);
        let keys = DeleteKeys::new(&schema, &keys)?;
        if let Some(store) = self.table_store(&database, &table) {
            self.replay_delete_in_memory(&store, &keys)?;
        }
        Ok(Some(ReplayedDelete {
            database,
            table,
            schema,
            keys,
            sequence,
        }))
    }

    /// WAL replay of a deletion: the chunks replayed so far (all written before it) lose the
    /// records now; files are left to [`Engine::finish_replayed_deletes`].
    pub(crate) fn replay_delete_in_memory(
        &self,
        store: &TableStore,
        keys: &DeleteKeys,
    ) -> Result<()> {
        let mut outcome = DeleteOutcome::default();
        let replace_chunks = chunks_without(store, keys, &mut outcome)?;
        if !replace_chunks.is_empty() {
            let delta = store.commit(Commit {
                replace_chunks,
                manifest: None,
            });
            self.memory_bytes.fetch_add(delta as i64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// After WAL replay: rewrites the files of every replayed deletion the manifest does not have
    /// yet (a crash came between its WAL entry and its manifest), in WAL order.
    pub(crate) async fn finish_replayed_deletes(&self, pending: Vec<ReplayedDelete>) -> Result<()> {
        for d in pending {
            let store = self.ensure_table_store(&d.database, &d.table);
            let _maintenance = store.maintenance.lock().await;
            if d.sequence <= store.snapshot().manifest.deletes_through {
                continue;
            }
            let outcome = self
                .apply_delete(&store, &d.schema, &d.keys, d.sequence)
                .await?;
            tracing::info!(
                table = %format!("{}.{}", d.database, d.table),
                files = outcome.files_rewritten,
                rows = outcome.file_rows,
                "finished a deletion the WAL held"
            );
        }
        Ok(())
    }

    /// At open: deletes replaced files a crash left listed in a manifest, and Parquet files under
    /// a table's prefix that its manifest does not name (written by a persist, compaction or
    /// deletion that a crash stopped before its manifest was stored). Nothing else writes to a
    /// table's prefix while the engine opens.
    pub(crate) async fn remove_obsolete_at_open(&self) -> Result<()> {
        use futures::TryStreamExt;
        for store in self.table_stores() {
            let manifest = (*store.snapshot().manifest).clone();
            let named: HashSet<&str> = manifest
                .files
                .iter()
                .flat_map(|f| std::iter::once(f.path.as_str()).chain(f.last_rows.as_deref()))
                .collect();
            let prefix = ObjectPath::from(format!(
                "{}/",
                crate::manifest::table_prefix(&store.db, &store.table)
            ));
            let listed: Vec<object_store::ObjectMeta> = self
                .magnetic
                .store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|e| Error::unavailable(format!("listing '{prefix}': {e}")))?;
            for object in listed {
                let path = object.location.as_ref();
                if path.ends_with(".parquet") && !named.contains(path) {
                    tracing::info!(path, "removing a file no manifest names (left by a crash)");
                    self.magnetic.delete(&object.location).await?;
                }
            }
            if !manifest.obsolete_files.is_empty() {
                self.remove_obsolete(&store, manifest).await?;
            }
        }
        Ok(())
    }
}

/// A deletion met in WAL replay whose files may still need rewriting.
pub(crate) struct ReplayedDelete {
    pub database: String,
    pub table: String,
    pub schema: SchemaRef,
    pub keys: DeleteKeys,
    pub sequence: u64,
}

/// The chunk replacements that remove `keys`' records from the store's memory.
fn chunks_without(
    store: &TableStore,
    keys: &DeleteKeys,
    outcome: &mut DeleteOutcome,
) -> Result<Vec<(u64, Option<RecordBatch>)>> {
    let mut replace = Vec::new();
    for chunk in store.snapshot().chunks {
        if !keys.overlaps(chunk.min_time, chunk.max_time) {
            continue;
        }
        let (kept, removed) = keys.remove_from(&chunk.batch)?;
        if removed > 0 {
            outcome.memory_rows += removed as u64;
            replace.push((chunk.id, (kept.num_rows() > 0).then_some(kept)));
        }
    }
    Ok(replace)
}

/// Paths of replaced files and their last-rows sidecars.
fn obsolete_paths(files: &[FileMeta]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| std::iter::once(f.path.clone()).chain(f.last_rows.clone()))
        .collect()
}

fn internal(e: arrow_schema::ArrowError) -> Error {
    Error::internal(format!("delete: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type;
    use arrow_array::{DictionaryArray, Float64Array, StringArray, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, TimeUnit};

    fn dims(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(
            values
                .iter()
                .copied()
                .collect::<DictionaryArray<Int32Type>>(),
        )
    }

    fn table() -> SchemaRef {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("host", dict.clone(), true),
            Field::new("dc", dict, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("usage", DataType::Float64, true),
        ]))
    }

    #[test]
    fn keys_match_rows_by_series_and_time_whatever_the_column_types_and_order() {
        // Keys as a query returns them: plain strings, columns in another order, a duplicate.
        let keys = RecordBatch::try_from_iter(vec![
            (
                "time",
                Arc::new(TimestampNanosecondArray::from(vec![10, 20, 10])) as ArrayRef,
            ),
            (
                "dc",
                Arc::new(StringArray::from(vec![None, Some("x"), None])) as ArrayRef,
            ),
            (
                "host",
                Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let keys = DeleteKeys::new(&table(), &[keys]).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.overlaps(0, 10) && keys.overlaps(20, 30) && !keys.overlaps(11, 19));

        // A chunk without the `dc` column (NULL), written before `dc` existed.
        let chunk = RecordBatch::try_from_iter(vec![
            ("host", dims(&[Some("a"), Some("a"), Some("b"), Some("b")])),
            (
                "time",
                Arc::new(TimestampNanosecondArray::from(vec![10, 20, 10, 20])) as ArrayRef,
            ),
            (
                "usage",
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])) as ArrayRef,
            ),
        ])
        .unwrap();
        let (kept, removed) = keys.remove_from(&chunk).unwrap();
        // (a, NULL, 10) goes; (b, NULL, 20) stays: the key names dc = 'x'.
        assert_eq!(removed, 1);
        assert_eq!(kept.schema(), chunk.schema());
        let usage = kept
            .column(2)
            .as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!(usage.values().to_vec(), vec![2.0, 3.0, 4.0]);

        let with_dc = RecordBatch::try_from_iter(vec![
            ("host", dims(&[Some("b"), Some("b")])),
            ("dc", dims(&[Some("x"), Some("y")])),
            (
                "time",
                Arc::new(TimestampNanosecondArray::from(vec![20, 20])) as ArrayRef,
            ),
        ])
        .unwrap();
        let (kept, removed) = keys.remove_from(&with_dc).unwrap();
        assert_eq!((kept.num_rows(), removed), (1, 1));
    }

    #[test]
    fn no_keys_remove_nothing() {
        let keys = DeleteKeys::new(&table(), &[]).unwrap();
        assert!(keys.is_empty() && !keys.overlaps(i64::MIN, i64::MAX));
    }
}
