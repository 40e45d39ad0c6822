//! The storage engine: the write path from decoded batch to durable, queryable rows.
//!
//! ```text
//! decode (line protocol, WriteRecords) -> validate against the catalog (types, write window)
//!   -> catalog grows (durable) -> group commit: WAL append + fsync -> memory store -> ack
//! ```
//! On open the catalog and manifests are loaded and the WAL is replayed through the same apply
//! path. Background maintenance (see `maintenance.rs`) moves rows to Parquet, expires them and
//! compacts files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use hourglass_core::time::Precision;
use hourglass_core::{
    column_role, ColumnRole, ColumnType, Error, Result, SharedClock, TableProperties, WriteBatch,
};
use hourglass_ingest::{parse_line_protocol, LineError, LineProtocolOptions};
use hourglass_wal::{Wal, WalConfig};
use parking_lot::RwLock;

use crate::catalog::{Catalog, NewColumn};
use crate::committer::Committer;
use crate::exact_buffers::exact_write;
use crate::manifest::Manifest;
use crate::rules::CatalogRules;
use crate::store::MagneticStore;
use crate::table_store::{TableSnapshot, TableStore};
use crate::wal_payload::{decode_record, WalRecord};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// `None`: `data_dir/magnetic`; else `s3://bucket/prefix` or a directory.
    pub object_store: Option<String>,
    /// Memory-store budget. Past 60% of it the oldest rows are persisted early; past 100% writes
    /// are refused with a retry hint until persistence catches up.
    pub memory_budget_bytes: usize,
    /// Properties of tables created by line protocol writes.
    pub default_properties: TableProperties,
    /// How often maintenance (tiering, retention, compaction) runs.
    pub maintenance_interval: Duration,
    /// A day with at least this many small files is compacted.
    pub compaction_min_files: usize,
    /// Rows past memory retention are persisted once they hold this many bytes...
    pub persist_min_bytes: usize,
    /// ...or once the oldest of them arrived this long ago (by the engine's clock).
    pub persist_max_wait: Duration,
    /// WAL segment size before rotation.
    pub wal_segment_bytes: u64,
    /// How long a day goes without new files or memory-store rows before periodic maintenance
    /// rewrites it by series ([`crate::day_layout`]).
    pub day_rewrite_quiet_period: Duration,
    /// Whether compaction rewrites clean days persisted as time slices by series
    /// ([`crate::day_layout`]); off by default: all-series queries over part of a day read every
    /// file of the rewritten day where time slices let them skip most.
    pub rewrite_days_by_series: bool,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            object_store: None,
            memory_budget_bytes: 1 << 30,
            default_properties: TableProperties {
                magnetic_writes_enabled: true,
                ..TableProperties::default()
            },
            maintenance_interval: Duration::from_secs(2),
            compaction_min_files: 4,
            persist_min_bytes: 128 << 20,
            persist_max_wait: Duration::from_secs(10),
            wal_segment_bytes: 64 << 20,
            day_rewrite_quiet_period: crate::day_layout::QUIET_PERIOD,
            rewrite_days_by_series: false,
        }
    }
}

/// The least and greatest `time` of a batch's rows; `None` without rows or a time column.
fn time_span(batch: &RecordBatch) -> Option<(i64, i64)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampNanosecondType;
    let times = batch.column_by_name(hourglass_core::TIME_COLUMN)?;
    let times = times.as_primitive_opt::<TimestampNanosecondType>()?;
    let values = times.values();
    let first = *values.first()?;
    Some(
        values
            .iter()
            .fold((first, first), |(lo, hi), &t| (lo.min(t), hi.max(t))),
    )
}

/// What a line protocol write did.
#[derive(Debug, Default)]
pub struct LineProtocolOutcome {
    pub rows_written: usize,
    pub errors: Vec<LineError>,
}

/// The storage engine.
pub struct Engine {
    pub config: EngineConfig,
    pub clock: SharedClock,
    pub catalog: Catalog,
    pub magnetic: MagneticStore,
    pub(crate) wal: Arc<Wal>,
    pub(crate) tables: RwLock<HashMap<(String, String), Arc<TableStore>>>,
    pub(crate) memory_bytes: AtomicI64,
    /// Set by every commit, cleared when maintenance rotates the WAL.
    pub(crate) wal_written_since_rotation: AtomicBool,
    committer: RwLock<Option<Committer>>,
    shut_down: AtomicBool,
    pub(crate) maintenance_wakeup: tokio::sync::Notify,
    /// Dropped tables whose rows WAL replay must skip (see `ddl.rs`).
    pub(crate) tombstones: parking_lot::Mutex<crate::ddl::Tombstones>,
    /// Decoded last-rows sidecars of Parquet files.
    last_rows_cache: crate::last_rows::SidecarCache,
    /// Latest-value queries answered from last rows.
    pub latest_value_stats: crate::last_rows::LatestValueStats,
    /// Rows committed durably since the engine opened, by every write path that goes through
    /// [`Engine::commit`] (WAL replay is not counted): `/metrics`' `hourglass_ingest_rows_total`.
    pub ingest_rows: AtomicU64,
    /// Persists, file writes, maintenance passes and refused writes: `/metrics`.
    pub write_out: crate::write_out_stats::WriteOutStats,
    /// Told of every durable commit ([`Engine::observe_commits`]).
    commit_observers: RwLock<Arc<[CommitObserver]>>,
    /// Whether `commit_observers` holds any (checked without the lock).
    observed: AtomicBool,
    /// Commits pass it; a `DELETE` pauses its table's writes with it ([`crate::write_gate`]).
    pub(crate) write_gate: crate::write_gate::WriteGate,
    /// Days waiting to be quiet before compaction rewrites them ([`crate::day_layout`]).
    pub(crate) quiet_days: crate::day_layout::QuietDays,
}

/// Told, after a commit is durable, of each table it wrote: `(database, table, min_time,
/// max_time)`, times in nanoseconds, both inclusive. Called on the committing thread before the
/// write is acknowledged: it must be quick and must not write.
pub type CommitObserver = Arc<dyn Fn(&str, &str, i64, i64) + Send + Sync>;

/// Bound of the decoded sidecars kept in memory.
const LAST_ROWS_CACHE_BYTES: usize = 64 << 20;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.config.data_dir)
            .finish()
    }
}

impl Engine {
    /// Opens the data directory: catalog, magnetic store manifests, WAL replay.
    pub async fn open(config: EngineConfig, clock: SharedClock) -> Result<Arc<Engine>> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::io(config.data_dir.display(), &e))?;
        let catalog = Catalog::open(&config.data_dir)?;
        let magnetic = MagneticStore::open(config.object_store.as_deref(), &config.data_dir)?;
        let mut wal_config = WalConfig::new(config.data_dir.join("wal"));
        wal_config.segment_target_bytes = config.wal_segment_bytes;
        let wal = Arc::new(Wal::open(wal_config).map_err(wal_error)?);
        let tombstones = crate::ddl::Tombstones::load(&config.data_dir)?;

        let mut tables = HashMap::new();
        for (db_name, db) in &catalog.snapshot().databases {
            for table in db.tables.keys() {
                let manifest = Manifest::load(&magnetic, db_name, table).await?;
                tables.insert(
                    (db_name.clone(), table.clone()),
                    Arc::new(TableStore::new(db_name, table, manifest)),
                );
            }
        }
        let engine = Arc::new(Engine {
            config,
            clock,
            catalog,
            magnetic,
            wal: wal.clone(),
            tables: RwLock::new(tables),
            memory_bytes: AtomicI64::new(0),
            wal_written_since_rotation: AtomicBool::new(true),
            committer: RwLock::new(None),
            shut_down: AtomicBool::new(false),
            maintenance_wakeup: tokio::sync::Notify::new(),
            tombstones: parking_lot::Mutex::new(tombstones),
            last_rows_cache: crate::last_rows::SidecarCache::new(LAST_ROWS_CACHE_BYTES),
            latest_value_stats: Default::default(),
            ingest_rows: AtomicU64::new(0),
            write_out: Default::default(),
            commit_observers: RwLock::new(Arc::new([])),
            observed: AtomicBool::new(false),
            write_gate: Default::default(),
            quiet_days: Default::default(),
        });
        engine.remove_obsolete_at_open().await?;

        // Replay through the same apply path as live writes.
        let mut replayed_rows = 0usize;
        let mut failure: Option<Error> = None;
        let mut oldest_segment: Option<u64> = None;
        let mut replayed_deletes = Vec::new();
        wal.replay(|entry| {
            if failure.is_some() {
                return Ok(());
            }
            oldest_segment = Some(oldest_segment.map_or(entry.segment, |s| s.min(entry.segment)));
            let result = decode_record(&entry.payload).and_then(|record| match record {
                WalRecord::Writes(batches) => {
                    for batch in batches {
                        // Rows of tables dropped after this entry was written stay dropped.
                        let batch = engine.tombstones.lock().filter(batch, entry.segment);
                        if batch.tables.is_empty() {
                            continue;
                        }
                        replayed_rows += batch.row_count();
                        engine.ensure_tables(&batch, engine.config.default_properties)?;
                        engine.apply_now(exact_write(batch), entry.sequence, entry.segment);
                    }
                    Ok(())
                }
                WalRecord::Delete {
                    database,
                    table,
                    keys,
                } => {
                    if let Some(d) = engine.replay_delete(
                        database,
                        table,
                        keys,
                        entry.segment,
                        entry.sequence,
                    )? {
                        replayed_deletes.push(d);
                    }
                    Ok(())
                }
            });
            if let Err(e) = result {
                failure = Some(e.context(format!(
                    "WAL segment {}, sequence {}",
                    entry.segment, entry.sequence
                )));
            }
            Ok(())
        })
        .map_err(wal_error)?;
        if let Some(e) = failure {
            return Err(e);
        }
        if replayed_rows > 0 {
            tracing::info!(rows = replayed_rows, "replayed the write-ahead log");
        }
        engine.finish_replayed_deletes(replayed_deletes).await?;
        {
            let mut tombstones = engine.tombstones.lock();
            if tombstones.prune(oldest_segment) {
                tombstones.store(&engine.config.data_dir)?;
            }
        }

        let weak = Arc::downgrade(&engine);
        let committer = Committer::start(
            wal,
            Arc::new(move |batch, sequence, segment| {
                if let Some(engine) = weak.upgrade() {
                    engine.apply_now(batch, sequence, segment);
                }
            }),
        );
        *engine.committer.write() = Some(committer);
        Ok(engine)
    }

    /// Decodes and writes a line protocol body; valid lines are written even when others are
    /// rejected. Blocking: call from a blocking-capable thread.
    pub fn write_line_protocol(
        &self,
        database: &str,
        body: &[u8],
        precision: Precision,
        accept_partial: bool,
    ) -> Result<LineProtocolOutcome> {
        hourglass_core::names::validate_database_name(database)?;
        self.admit()?;
        let catalog = self.catalog.snapshot();
        let rules = CatalogRules::new(
            &catalog,
            database,
            self.config.default_properties,
            self.clock.as_ref(),
        );
        let options = LineProtocolOptions {
            precision,
            default_time: rules.now,
        };
        let parsed = parse_line_protocol(body, &options, &rules);
        let mut errors = parsed.errors;
        if !accept_partial && !errors.is_empty() {
            return Ok(LineProtocolOutcome {
                rows_written: 0,
                errors,
            });
        }
        let mut batch = WriteBatch {
            database: database.to_string(),
            tables: Vec::with_capacity(parsed.tables.len()),
        };
        for table in parsed.tables {
            let columns = new_columns(&table.batch);
            match self.catalog.ensure_columns(
                database,
                &table.table,
                self.config.default_properties,
                &columns,
                rules.now,
            ) {
                Ok(()) => batch.tables.push(table),
                Err(e) => errors.extend(table.sources.iter().map(|&line| LineError {
                    line: line as usize,
                    message: e.message.clone(),
                })),
            }
        }
        errors.sort_by_key(|e| e.line);
        let rows_written = batch.row_count();
        if rows_written > 0 {
            self.ensure_table_stores(&batch);
            self.commit(batch)?;
        }
        Ok(LineProtocolOutcome {
            rows_written,
            errors,
        })
    }

    /// Writes an already validated batch durably (the tables and columns must exist). A
    /// reserved database name is refused here too, whichever interface the batch came from (a
    /// data directory from before the reservation may still hold such a database).
    pub fn commit(&self, batch: WriteBatch) -> Result<()> {
        // Buffers cut to size here, on the writer's thread, rather than on the committer's.
        let batch = exact_write(batch);
        if hourglass_core::names::is_reserved_database_name(&batch.database) {
            return hourglass_core::names::validate_database_name(&batch.database);
        }
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(Error::unavailable("the server is shutting down"));
        }
        let tables: Vec<&str> = batch.tables.iter().map(|t| t.table.as_str()).collect();
        let pass = self.write_gate.enter(&batch.database, &tables);
        drop(tables);
        let committer = self.committer.read();
        let committer = committer
            .as_ref()
            .ok_or_else(|| Error::unavailable("the write path is not running"))?;
        let rows = batch.row_count() as u64;
        if !self.observed.load(Ordering::Acquire) {
            committer.commit(batch)?;
            self.ingest_rows.fetch_add(rows, Ordering::Relaxed);
            return Ok(());
        }
        let database = batch.database.clone();
        let spans: Vec<(String, i64, i64)> = batch
            .tables
            .iter()
            .filter_map(|t| time_span(&t.batch).map(|(lo, hi)| (t.table.clone(), lo, hi)))
            .collect();
        committer.commit(batch)?;
        self.ingest_rows.fetch_add(rows, Ordering::Relaxed);
        drop(pass);
        let observers = self.commit_observers.read().clone();
        for (table, lo, hi) in &spans {
            for observe in observers.iter() {
                observe(&database, table, *lo, *hi);
            }
        }
        Ok(())
    }

    /// Calls `observer` after every later commit (line protocol, WriteRecords, and whatever else
    /// writes through [`Engine::commit`]) is durable, once per table written, with the span of
    /// the rows' times. WAL replay at open is not a commit and is not observed. Without
    /// observers a commit computes nothing for them.
    pub fn observe_commits(&self, observer: CommitObserver) {
        let mut observers = self.commit_observers.write();
        *observers = observers.iter().cloned().chain([observer]).collect();
        drop(observers);
        self.observed.store(true, Ordering::Release);
    }

    /// Refuses writes while the memory store is over its budget.
    pub fn admit(&self) -> Result<()> {
        let used = self.memory_bytes.load(Ordering::Relaxed).max(0) as usize;
        if used > self.config.memory_budget_bytes * 6 / 10 {
            self.maintenance_wakeup.notify_one();
        }
        if used > self.config.memory_budget_bytes {
            crate::write_out_stats::WriteOutStats::add(&self.write_out.refused_writes, 1);
            return Err(Error::exhausted(format!(
                "the memory store is full ({} MiB of a {} MiB budget) while older data is being persisted; retry shortly",
                used >> 20,
                self.config.memory_budget_bytes >> 20
            )));
        }
        Ok(())
    }

    pub fn wal_disk_bytes(&self) -> u64 {
        self.wal.disk_bytes()
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes.load(Ordering::Relaxed).max(0) as usize
    }

    /// The live state of a table, if it exists.
    pub fn table_store(&self, db: &str, table: &str) -> Option<Arc<TableStore>> {
        self.tables
            .read()
            .get(&(db.to_string(), table.to_string()))
            .cloned()
    }

    pub fn table_snapshot(&self, db: &str, table: &str) -> Option<TableSnapshot> {
        Some(self.table_store(db, table)?.snapshot())
    }

    /// The last rows of each series of a Parquet file, from its sidecar (`None` when the file
    /// has none and must be read whole).
    pub async fn file_last_rows(&self, file: &crate::FileMeta) -> Result<Option<RecordBatch>> {
        let Some(path) = &file.last_rows else {
            return Ok(None);
        };
        if let Some(batch) = self.last_rows_cache.get(path) {
            return Ok(Some(batch));
        }
        let batches = crate::parquet_io::read_all(&self.magnetic, path).await?;
        let batch = match batches.as_slice() {
            [] => return Ok(None),
            [one] => one.clone(),
            many => arrow_select::concat::concat_batches(&many[0].schema(), many)
                .map_err(|e| Error::corruption(format!("last-rows sidecar '{path}': {e}")))?,
        };
        self.last_rows_cache.insert(path, batch.clone());
        Ok(Some(batch))
    }

    /// The newest rows of each series over several files, from their sidecars, conformed to
    /// `schema`: merged once per set of files and cached (a day rewritten in slices has a dozen
    /// files whose sidecars each name every series). Also returns the files without a sidecar,
    /// which must be read whole.
    pub async fn merged_last_rows<'a>(
        &self,
        files: &[&'a crate::FileMeta],
        schema: &arrow_schema::SchemaRef,
    ) -> Result<(Option<RecordBatch>, Vec<&'a crate::FileMeta>)> {
        let (summarised, whole): (Vec<&crate::FileMeta>, Vec<&crate::FileMeta>) =
            files.iter().copied().partition(|f| f.last_rows.is_some());
        if summarised.is_empty() {
            return Ok((None, whole));
        }
        let mut key = String::from("merged");
        for field in schema.fields() {
            key.push_str(&format!("|{}:{}", field.name(), field.data_type()));
        }
        for f in &summarised {
            key.push('|');
            key.push_str(&f.path);
        }
        if let Some(batch) = self.last_rows_cache.get(&key) {
            return Ok((Some(batch), whole));
        }
        let mut parts = Vec::with_capacity(summarised.len());
        for f in &summarised {
            if let Some(rows) = self.file_last_rows(f).await? {
                parts.push(crate::schema::conform(&rows, schema)?);
            }
        }
        let all = arrow_select::concat::concat_batches(schema, &parts)
            .map_err(|e| Error::internal(format!("merging last rows: {e}")))?;
        let merged = crate::last_rows::last_rows_of(&all)?;
        self.last_rows_cache.insert(&key, merged.clone());
        Ok((Some(merged), whole))
    }

    /// Every table store.
    pub fn table_stores(&self) -> Vec<Arc<TableStore>> {
        self.tables.read().values().cloned().collect()
    }

    /// Makes sure a table store exists for every table the catalog has (after DDL).
    pub fn ensure_table_store(&self, db: &str, table: &str) -> Arc<TableStore> {
        let key = (db.to_string(), table.to_string());
        if let Some(t) = self.tables.read().get(&key) {
            return t.clone();
        }
        self.tables
            .write()
            .entry(key)
            .or_insert_with(|| Arc::new(TableStore::new(db, table, Manifest::default_new())))
            .clone()
    }

    /// Removes a dropped table's live state.
    pub fn forget_table(&self, db: &str, table: &str) -> Option<Arc<TableStore>> {
        let removed = self
            .tables
            .write()
            .remove(&(db.to_string(), table.to_string()));
        if let Some(t) = &removed {
            self.memory_bytes
                .fetch_sub(t.memory_bytes() as i64, Ordering::Relaxed);
        }
        removed
    }

    fn ensure_table_stores(&self, batch: &WriteBatch) {
        for t in &batch.tables {
            self.ensure_table_store(&batch.database, &t.table);
        }
    }

    fn ensure_tables(&self, batch: &WriteBatch, defaults: TableProperties) -> Result<()> {
        for t in &batch.tables {
            self.catalog.ensure_columns(
                &batch.database,
                &t.table,
                defaults,
                &new_columns(&t.batch),
                self.clock.now_nanos(),
            )?;
        }
        Ok(())
    }

    fn apply_now(&self, batch: WriteBatch, sequence: u64, segment: u64) {
        self.wal_written_since_rotation
            .store(true, Ordering::SeqCst);
        for t in batch.tables {
            let store = self.ensure_table_store(&batch.database, &t.table);
            let added = store.apply(t.batch, sequence, segment, self.clock.now_nanos());
            self.memory_bytes.fetch_add(added as i64, Ordering::Relaxed);
        }
    }

    /// Stops taking writes after committing every write already handed to the committer.
    /// Blocking. Idempotent.
    pub fn stop_writes(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        let committer = self.committer.write().take();
        if let Some(c) = committer {
            c.shutdown();
        }
    }

    /// Stops writes and closes the WAL. Idempotent.
    pub fn shutdown(&self) {
        self.stop_writes();
        if let Err(e) = self.wal.close() {
            tracing::warn!(error = %e, "closing the WAL");
        }
    }

    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::SeqCst)
    }
}

impl Manifest {
    pub fn default_new() -> Manifest {
        Manifest {
            format_version: crate::manifest::MANIFEST_FORMAT_VERSION,
            ..Default::default()
        }
    }
}

/// The catalog columns a batch needs.
pub fn new_columns(batch: &arrow_array::RecordBatch) -> Vec<NewColumn> {
    batch
        .schema()
        .fields()
        .iter()
        .filter_map(|f| {
            let role = column_role(f);
            match role {
                ColumnRole::Time | ColumnRole::MeasureName => None,
                ColumnRole::Dimension => Some(NewColumn {
                    name: f.name().clone(),
                    role,
                    measure_type: None,
                }),
                ColumnRole::Measure => Some(NewColumn {
                    name: f.name().clone(),
                    role,
                    measure_type: Some(
                        ColumnType::from_arrow(f.data_type()).unwrap_or(ColumnType::Varchar),
                    ),
                }),
            }
        })
        .collect()
}

pub(crate) fn wal_error(e: hourglass_wal::WalError) -> Error {
    match &e {
        hourglass_wal::WalError::Corrupt { .. } => Error::corruption(e.to_string()),
        _ if e.is_disk_full() => Error::unavailable(e.to_string()),
        _ => Error::internal(e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod observer_tests {
    use super::*;
    use hourglass_core::ManualClock;

    #[tokio::test]
    async fn commit_observers_see_each_table_and_its_time_span_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_704_067_200_000_000_000));
        let engine = Engine::open(EngineConfig::new(dir.path()), clock)
            .await
            .unwrap();
        // Nobody observes: nothing to compute.
        engine
            .write_line_protocol(
                "db",
                b"a v=1 1704067200000000000",
                Precision::Nanosecond,
                false,
            )
            .unwrap();
        assert_eq!(engine.ingest_rows.load(Ordering::Relaxed), 1);
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let log = seen.clone();
        engine.observe_commits(Arc::new(move |db: &str, table: &str, lo: i64, hi: i64| {
            log.lock().push((db.to_string(), table.to_string(), lo, hi));
        }));
        let body =
            b"a v=2 1704067201000000000\na v=3 1704067205000000000\nb v=1 1704067203000000000";
        engine
            .write_line_protocol("db", body, Precision::Nanosecond, false)
            .unwrap();
        // Every committed row is counted, observed or not.
        assert_eq!(engine.ingest_rows.load(Ordering::Relaxed), 4);
        let mut got = seen.lock().clone();
        got.sort();
        assert_eq!(
            got,
            [
                (
                    "db".into(),
                    "a".into(),
                    1_704_067_201_000_000_000,
                    1_704_067_205_000_000_000
                ),
                (
                    "db".into(),
                    "b".into(),
                    1_704_067_203_000_000_000,
                    1_704_067_203_000_000_000
                ),
            ]
        );
        engine.shutdown();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod memory_accounting_tests {
    use super::*;
    use hourglass_core::ManualClock;

    /// A TSBS-shaped write request of 10,000 lines is held in about its data's size: 10 integer
    /// fields, `time` and 10 dictionary-encoded tags are 133 bytes per row, which Arrow's grown
    /// builders held in 220.
    #[tokio::test]
    async fn a_write_is_held_in_buffers_of_its_own_size() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_451_606_400_000_000_000));
        let engine = Engine::open(EngineConfig::new(dir.path()), clock)
            .await
            .unwrap();
        let mut body = String::new();
        for step in 0..10i64 {
            for h in 0..1000 {
                body.push_str(&format!(
                    "cpu,hostname=host_{h},region=eu-west-1,datacenter=eu-west-1a,rack={},\
                     os=Ubuntu16.10,arch=x64,team=SF,service={},service_version=0,\
                     service_environment=test usage_user={}i,usage_system=2i,usage_idle=3i,\
                     usage_nice=4i,usage_iowait=5i,usage_irq=6i,usage_softirq=7i,usage_steal=8i,\
                     usage_guest=9i,usage_guest_nice=10i {}\n",
                    h % 100,
                    h % 20,
                    h % 97,
                    1_451_606_400_000_000_000 + step * 10_000_000_000
                ));
            }
        }
        let outcome = engine
            .write_line_protocol("db", body.as_bytes(), Precision::Nanosecond, false)
            .unwrap();
        assert_eq!(outcome.rows_written, 10_000);
        let per_row = engine.memory_bytes() as f64 / 10_000.0;
        assert!((130.0..150.0).contains(&per_row), "{per_row} bytes per row");
        engine.shutdown();
    }
}
