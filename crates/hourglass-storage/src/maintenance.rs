//! Background maintenance: tiering, early persistence under memory pressure, retention,
//! compaction and WAL cleanup. Every step uses the engine's injected clock, so tests move time
//! instead of sleeping.
//!
//! Persist: rows leave the memory store as Parquet files, one per table and UTC day, sorted by
//! series then time. The file is written (and fsynced) first, then the manifest naming it, then the
//! memory-store rows are dropped in one commit, and only then are WAL segments nobody needs deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{RecordBatch, UInt32Array};
use hourglass_core::time::{civil_from_days, NANOS_PER_DAY};
use hourglass_core::{Error, Result};
use object_store::path::Path as ObjectPath;

use crate::day_layout::{self, LayoutPolicy};
use crate::engine::{wal_error, Engine};
use crate::last_rows::{self, last_rows_of_sorted, MIN_SIDECAR_REDUCTION};
use crate::manifest::{table_prefix, FileMeta, Manifest};
use crate::parquet_io;
use crate::schema::{conform, table_schema};
use crate::series_merge::SeriesMerge;
use crate::sort::sort_and_dedup;
use crate::table_store::{rows_in_time_range, time_range, Commit, TableStore};
use crate::write_out_stats::{thread_cpu_time, WriteOutStats};

/// Which memory-store rows a persist takes.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Rows older than this time (tiering).
    OlderThan(i64),
    /// These chunks whole (early persistence of the oldest writes).
    Chunks(HashSet<u64>),
    /// Everything (flush).
    All,
}

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub rows_persisted: usize,
    pub files_written: usize,
    pub files_expired: usize,
    pub files_compacted: usize,
    pub rows_expired_in_memory: usize,
    pub wal_segments_removed: usize,
}

impl Engine {
    /// One pass of tiering, budget enforcement, retention and compaction.
    pub async fn run_maintenance(&self) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        let now = self.clock.now_nanos();
        let catalog = self.catalog.snapshot();
        let max_wait = i64::try_from(self.config.persist_max_wait.as_nanos()).unwrap_or(i64::MAX);
        for store in self.table_stores() {
            let Some(def) = catalog.table(&store.db, &store.table) else {
                continue;
            };
            let cutoff = def.properties.memory_cutoff(now);
            // Rows past memory retention move in batches big enough to make good files, or once
            // they have waited long enough.
            let snapshot = store.snapshot();
            let old = snapshot.chunks.iter().filter(|c| c.min_time < cutoff);
            let (bytes, oldest) = old.fold((0usize, i64::MAX), |(b, o), c| {
                (b + c.bytes, o.min(c.arrived_at))
            });
            if bytes == 0 {
                continue;
            }
            if bytes >= self.config.persist_min_bytes || now.saturating_sub(oldest) >= max_wait {
                self.persist_table(&store, Selection::OlderThan(cutoff), &mut report)
                    .await?;
            }
        }
        self.relieve_memory_pressure(&mut report).await?;
        for store in self.table_stores() {
            self.expire_files(&store, &mut report).await?;
            self.compact_table(&store, &mut report).await?;
        }
        self.clean_wal(&mut report)?;
        Ok(report)
    }

    /// Persists every row in the memory store to Parquet (admin flush, shutdown).
    pub async fn persist_all(&self) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        for store in self.table_stores() {
            self.persist_table(&store, Selection::All, &mut report)
                .await?;
        }
        self.clean_wal(&mut report)?;
        Ok(report)
    }

    /// Compacts every table now, whatever its file count (tests, admin).
    pub async fn compact_all(&self) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        for store in self.table_stores() {
            self.compact_days(&store, 2, LayoutPolicy::Now, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Runs maintenance every interval (and when writers hit memory pressure) until `stop`.
    pub fn spawn_maintenance(
        self: &Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(engine.config.maintenance_interval) => {}
                    _ = engine.maintenance_wakeup.notified() => {}
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
                let started = Instant::now();
                let result = engine.run_maintenance().await;
                let stats = &engine.write_out;
                WriteOutStats::add(&stats.maintenance_passes, 1);
                WriteOutStats::add_duration(&stats.maintenance_nanos, started.elapsed());
                if let Err(e) = result {
                    tracing::error!(error = %e, "maintenance pass failed; will retry");
                }
            }
        })
    }

    async fn relieve_memory_pressure(&self, report: &mut MaintenanceReport) -> Result<()> {
        let budget = self.config.memory_budget_bytes;
        let used = self.memory_bytes();
        if used <= budget * 6 / 10 {
            return Ok(());
        }
        let mut to_free = used.saturating_sub(budget * 4 / 10);
        let stores = self.table_stores();
        let mut chunks: Vec<(u64, usize, u64, usize)> = Vec::new(); // (sequence, store, id, bytes)
        for (i, store) in stores.iter().enumerate() {
            for c in store.snapshot().chunks {
                chunks.push((c.sequence, i, c.id, c.bytes));
            }
        }
        chunks.sort_unstable();
        let mut selected: HashMap<usize, HashSet<u64>> = HashMap::new();
        for (_, store, id, bytes) in chunks {
            if to_free == 0 {
                break;
            }
            selected.entry(store).or_default().insert(id);
            to_free = to_free.saturating_sub(bytes);
        }
        for (i, ids) in selected {
            self.persist_table(&stores[i], Selection::Chunks(ids), report)
                .await?;
        }
        Ok(())
    }

    /// Moves the selected memory-store rows of one table into Parquet files.
    pub async fn persist_table(
        &self,
        store: &TableStore,
        selection: Selection,
        report: &mut MaintenanceReport,
    ) -> Result<()> {
        let _guard = store.maintenance.lock().await;
        let catalog = self.catalog.snapshot();
        let Some(def) = catalog.table(&store.db, &store.table) else {
            return Ok(());
        };
        let schema = table_schema(def);
        let now = self.clock.now_nanos();
        let expired_before = def.properties.magnetic_cutoff(now);
        let snapshot = store.snapshot();
        let memory_dirty = store.memory_dirty_days();

        let mut replace = Vec::new();
        let mut parts = Vec::new();
        for chunk in &snapshot.chunks {
            let (take, keep) = match &selection {
                Selection::All => (Some(chunk.batch.clone()), None),
                Selection::Chunks(ids) if ids.contains(&chunk.id) => {
                    (Some(chunk.batch.clone()), None)
                }
                Selection::Chunks(_) => continue,
                Selection::OlderThan(cutoff) => {
                    if chunk.min_time >= *cutoff {
                        continue;
                    } else if chunk.max_time < *cutoff {
                        (Some(chunk.batch.clone()), None)
                    } else {
                        let (older, rest) = split_by_time(&chunk.batch, *cutoff)?;
                        (Some(older), Some(rest))
                    }
                }
            };
            replace.push((chunk.id, keep));
            if let Some(batch) = take {
                let (expired, live) = split_by_time(&batch, expired_before)?;
                report.rows_expired_in_memory += expired.num_rows();
                if live.num_rows() > 0 {
                    parts.push(conform(&live, &schema)?);
                }
            }
        }
        if replace.is_empty() {
            return Ok(());
        }

        let mut manifest = (*snapshot.manifest).clone();
        let mut written = Vec::new();
        // Bounded groups keep the sort and encode buffers small.
        for group in group_by_rows(parts, self.persist_max_rows()) {
            for (day, batch) in split_by_day(&schema, group)? {
                let dedup = memory_dirty.contains(&day);
                let file = self
                    .write_file(store, &mut manifest, day, batch, dedup)
                    .await?;
                if dedup {
                    manifest.dirty_days.insert(day);
                }
                report.rows_persisted += file.rows as usize;
                report.files_written += 1;
                written.push(file);
            }
        }
        let persisted: u64 = written.iter().map(|f| f.rows).sum();
        manifest.files.extend(written);
        manifest.generation += 1;
        manifest
            .store(&self.magnetic, &store.db, &store.table)
            .await?;
        let delta = store.commit(Commit {
            replace_chunks: replace,
            manifest: Some(manifest),
        });
        self.memory_bytes.fetch_add(delta as i64, Ordering::Relaxed);
        WriteOutStats::add(&self.write_out.persisted_rows, persisted);
        Ok(())
    }

    /// Sorts (and, where needed, deduplicates) one day's rows and writes them as a Parquet file.
    async fn write_file(
        &self,
        store: &TableStore,
        manifest: &mut Manifest,
        day: i64,
        batch: RecordBatch,
        dedup: bool,
    ) -> Result<FileMeta> {
        self.write_file_at(store, manifest, day, batch, dedup, None)
            .await
    }

    /// [`Engine::write_file`] at a given place in the table's write order (`sequence`; a new,
    /// last place when `None`): a file rewritten without some rows keeps the place of the file
    /// it replaces, so later writes of a record still win over it.
    pub(crate) async fn write_file_at(
        &self,
        store: &TableStore,
        manifest: &mut Manifest,
        day: i64,
        batch: RecordBatch,
        dedup: bool,
        sequence: Option<u64>,
    ) -> Result<FileMeta> {
        let started = Instant::now();
        let (sorted, bytes, sidecar, min_time, max_time, cpu) =
            tokio::task::spawn_blocking(move || {
                let cpu_before = thread_cpu_time();
                let sorted = sort_and_dedup(&batch, dedup)?;
                let (min, max) = time_range(&sorted).unwrap_or((0, 0));
                let bytes = parquet_io::encode(&sorted, min, max)?;
                let last = last_rows_of_sorted(&sorted)?;
                let sidecar = if last.num_rows() * MIN_SIDECAR_REDUCTION <= sorted.num_rows() {
                    Some(parquet_io::encode(&last, min, max)?)
                } else {
                    None
                };
                let cpu = thread_cpu_time().saturating_sub(cpu_before);
                Ok::<_, Error>((sorted.num_rows(), bytes, sidecar, min, max, cpu))
            })
            .await
            .map_err(|e| Error::internal(format!("persist task failed: {e}")))??;
        let stats = &self.write_out;
        WriteOutStats::add_duration(&stats.encode_nanos, started.elapsed());
        WriteOutStats::add_duration(&stats.encode_cpu_nanos, cpu);
        let store_started = Instant::now();
        let sequence = match sequence {
            Some(s) => s,
            None => {
                manifest.next_sequence += 1;
                manifest.next_sequence - 1
            }
        };
        let (y, m, d) = civil_from_days(day);
        let path = format!(
            "{}/{y:04}-{m:02}-{d:02}/{sequence:012}-{}.parquet",
            table_prefix(&store.db, &store.table),
            uuid::Uuid::new_v4().simple()
        );
        let size = bytes.len() as u64;
        self.magnetic
            .put(&ObjectPath::from(path.as_str()), bytes)
            .await?;
        let last_rows = match sidecar {
            Some(sidecar) => {
                let sidecar_path = last_rows::sidecar_path(&path);
                self.magnetic
                    .put(&ObjectPath::from(sidecar_path.as_str()), sidecar)
                    .await?;
                Some(sidecar_path)
            }
            None => None,
        };
        WriteOutStats::add_duration(&stats.store_nanos, store_started.elapsed());
        WriteOutStats::add(&stats.files, 1);
        WriteOutStats::add(&stats.file_rows, sorted as u64);
        Ok(FileMeta {
            path,
            day,
            min_time,
            max_time,
            rows: sorted as u64,
            bytes: size,
            sequence,
            last_rows,
            whole_day: false,
        })
    }

    /// Deletes files whose rows are all past the magnetic-store retention.
    async fn expire_files(&self, store: &TableStore, report: &mut MaintenanceReport) -> Result<()> {
        let _guard = store.maintenance.lock().await;
        let catalog = self.catalog.snapshot();
        let Some(def) = catalog.table(&store.db, &store.table) else {
            return Ok(());
        };
        let cutoff = def.properties.magnetic_cutoff(self.clock.now_nanos());
        let snapshot = store.snapshot();
        let (expired, kept): (Vec<FileMeta>, Vec<FileMeta>) = snapshot
            .manifest
            .files
            .iter()
            .cloned()
            .partition(|f| f.max_time < cutoff);
        // Memory rows past retention are dropped too.
        let mut replace = Vec::new();
        for chunk in &snapshot.chunks {
            if chunk.min_time < cutoff {
                let (old, rest) = split_by_time(&chunk.batch, cutoff)?;
                report.rows_expired_in_memory += old.num_rows();
                replace.push((chunk.id, (rest.num_rows() > 0).then_some(rest)));
            }
        }
        if expired.is_empty() && replace.is_empty() {
            return Ok(());
        }
        let manifest = if expired.is_empty() {
            None
        } else {
            let mut m = (*snapshot.manifest).clone();
            m.files = kept;
            let days: HashSet<i64> = m.files.iter().map(|f| f.day).collect();
            m.dirty_days.retain(|d| days.contains(d));
            m.generation += 1;
            m.store(&self.magnetic, &store.db, &store.table).await?;
            Some(m)
        };
        let delta = store.commit(Commit {
            replace_chunks: replace,
            manifest,
        });
        self.memory_bytes.fetch_add(delta as i64, Ordering::Relaxed);
        for f in &expired {
            self.delete_file(f).await?;
        }
        report.files_expired += expired.len();
        Ok(())
    }

    async fn compact_table(
        &self,
        store: &TableStore,
        report: &mut MaintenanceReport,
    ) -> Result<()> {
        self.compact_days(
            store,
            self.config.compaction_min_files,
            LayoutPolicy::WhenQuiet,
            report,
        )
        .await
    }

    /// Merges the small files of each day that has at least `min_files` of them, and rewrites
    /// whole days: dirty days (several writes of one record) deduplicated, and clean days cut
    /// into time slices ([`day_layout`], as `layout` says): into one file when the day fits in
    /// one merge ([`MAX_FILE_ROWS`] rows at most, fewer under a small budget), else by a
    /// streaming merge into files of that size, each holding a range of series.
    async fn compact_days(
        &self,
        store: &TableStore,
        min_files: usize,
        layout: LayoutPolicy,
        report: &mut MaintenanceReport,
    ) -> Result<()> {
        let _guard = store.maintenance.lock().await;
        let catalog = self.catalog.snapshot();
        let Some(def) = catalog.table(&store.db, &store.table) else {
            return Ok(());
        };
        let schema = table_schema(def);
        let snapshot = store.snapshot();
        let mut by_day: BTreeMap<i64, Vec<&FileMeta>> = BTreeMap::new();
        for f in &snapshot.manifest.files {
            by_day.entry(f.day).or_default().push(f);
        }
        let mut manifest = (*snapshot.manifest).clone();
        let mut obsolete = Vec::new();
        let max_rows = self.compaction_max_rows();
        let mut quiet_rewrites = 0;
        for (day, mut files) in by_day {
            files.sort_by_key(|f| f.sequence);
            let dirty = manifest.dirty_days.contains(&day);
            let total: u64 = files.iter().map(|f| f.rows).sum();
            let whole_day = dirty
                || (self.config.rewrite_days_by_series
                    && day_layout::wants_rewrite(&files)
                    && match layout {
                        LayoutPolicy::Now => true,
                        // One clean day per table and pass: a store upgraded with years of
                        // sliced days is rewritten a day at a time, never holding persists
                        // back for long.
                        LayoutPolicy::WhenQuiet if quiet_rewrites > 0 => false,
                        LayoutPolicy::WhenQuiet => {
                            let newest = files.iter().map(|f| f.sequence).max().unwrap_or(0);
                            let (start, end) = (day * NANOS_PER_DAY, (day + 1) * NANOS_PER_DAY);
                            let in_memory = snapshot
                                .chunks
                                .iter()
                                .any(|c| c.min_time < end && c.max_time >= start);
                            self.quiet_days.is_quiet(
                                (&store.db, &store.table, day),
                                newest,
                                in_memory,
                                Instant::now(),
                                self.config.day_rewrite_quiet_period,
                            )
                        }
                    });
            let selected: Vec<&FileMeta> = if dirty {
                if files.len() == 1 {
                    // A file is deduplicated when written: nothing left to resolve.
                    manifest.dirty_days.remove(&day);
                    continue;
                }
                files.clone()
            } else if whole_day {
                quiet_rewrites += 1;
                files.clone()
            } else {
                let mut small: Vec<&FileMeta> = files
                    .iter()
                    .copied()
                    // Files of a whole-day rewrite keep their series ranges.
                    .filter(|f| f.rows < SMALL_FILE_ROWS && !f.whole_day)
                    .collect();
                if small.len() < min_files.max(2) {
                    continue;
                }
                let mut sum = 0u64;
                small.retain(|f| {
                    sum += f.rows;
                    sum <= max_rows
                });
                if small.len() < 2 {
                    continue;
                }
                small
            };
            let mut written: Vec<FileMeta> = if whole_day && total > max_rows {
                // Too big to rewrite at once: one streaming merge of all the day's files by
                // series then time ([`SeriesMerge`]), each file read once, cut into files of at
                // most one merge's rows that each hold a range of series for the whole day.
                let mut merge =
                    SeriesMerge::open(&self.magnetic, &selected, &schema, max_rows as usize)
                        .await?;
                let mut written = Vec::new();
                while let Some(rows) = merge.next_file().await? {
                    written.push(
                        self.write_file(store, &mut manifest, day, rows, true)
                            .await?,
                    );
                }
                written
            } else {
                self.merge_files(store, &mut manifest, &schema, day, &selected, dirty)
                    .await?
                    .into_iter()
                    .collect()
            };
            if whole_day {
                for f in &mut written {
                    f.whole_day = true;
                }
                self.quiet_days.forget(&store.db, &store.table, day);
            }
            let merged_paths: HashSet<&str> = selected.iter().map(|f| f.path.as_str()).collect();
            manifest
                .files
                .retain(|f| !merged_paths.contains(f.path.as_str()));
            obsolete.extend(selected.iter().map(|f| (*f).clone()));
            manifest.files.extend(written);
            if dirty {
                manifest.dirty_days.remove(&day);
            }
            report.files_compacted += selected.len();
        }
        if manifest == *snapshot.manifest {
            return Ok(());
        }
        self.publish_manifest(store, manifest).await?;
        for f in &obsolete {
            self.delete_file(f).await?;
        }
        Ok(())
    }

    /// Reads `files` in the order given and writes their rows as one file of `day`, deduplicated
    /// when `dedup` (the later file's write of a record wins); `None` when there are no rows.
    async fn merge_files(
        &self,
        store: &TableStore,
        manifest: &mut Manifest,
        schema: &arrow_schema::SchemaRef,
        day: i64,
        files: &[&FileMeta],
        dedup: bool,
    ) -> Result<Option<FileMeta>> {
        let mut parts = Vec::new();
        for f in files {
            for b in parquet_io::read_all(&self.magnetic, &f.path).await? {
                if b.num_rows() > 0 {
                    parts.push(conform(&b, schema)?);
                }
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        let merged = arrow_select::concat::concat_batches(schema, &parts)
            .map_err(|e| Error::internal(format!("compaction: {e}")))?;
        drop(parts);
        Ok(Some(
            self.write_file(store, manifest, day, merged, dedup).await?,
        ))
    }

    /// Stores `manifest` as the table's next generation and makes it the one queries see.
    pub(crate) async fn publish_manifest(
        &self,
        store: &TableStore,
        mut manifest: Manifest,
    ) -> Result<()> {
        manifest.generation += 1;
        manifest
            .store(&self.magnetic, &store.db, &store.table)
            .await?;
        store.commit(Commit {
            replace_chunks: Vec::new(),
            manifest: Some(manifest),
        });
        Ok(())
    }

    /// Deletes a data file no manifest names any more, and its last-rows sidecar.
    async fn delete_file(&self, f: &FileMeta) -> Result<()> {
        self.magnetic
            .delete(&ObjectPath::from(f.path.as_str()))
            .await?;
        if let Some(sidecar) = &f.last_rows {
            self.magnetic
                .delete(&ObjectPath::from(sidecar.as_str()))
                .await?;
        }
        Ok(())
    }

    /// The most rows one persist sorts and encodes at a time: [`MAX_FILE_ROWS`], less under a
    /// small memory budget. A group is held three times over while it is written (concatenated,
    /// sorted, encoded) on top of the memory store it leaves, so under a 64 MiB budget a flood
    /// that persisted ~38 MiB of chunks in one group peaked at 168 MiB of anonymous memory;
    /// groups of a 512th of the budget in rows (131,072 rows there) bound that working set.
    fn persist_max_rows(&self) -> usize {
        (self.config.memory_budget_bytes / PERSIST_BUDGET_BYTES_PER_ROW)
            .clamp(SMALL_FILE_ROWS as usize / 8, MAX_FILE_ROWS)
    }

    /// The most rows one compaction merges: [`MAX_FILE_ROWS`], less under a small memory budget
    /// (a merge holds its rows several times over: read, concatenated, sorted, encoded).
    fn compaction_max_rows(&self) -> u64 {
        let by_budget = (self.config.memory_budget_bytes / COMPACTION_BYTES_PER_ROW) as u64;
        by_budget.clamp(SMALL_FILE_ROWS / 4, MAX_FILE_ROWS as u64)
    }

    /// Rotates the WAL when its open segment holds only persisted data and deletes segments no
    /// memory-store row needs.
    fn clean_wal(&self, report: &mut MaintenanceReport) -> Result<()> {
        let needed = self
            .table_stores()
            .iter()
            .filter_map(|t| t.min_wal_segment())
            .min();
        let current = self.wal.current_segment();
        let remove_through = match needed {
            Some(seg) if seg < current => seg.checked_sub(1),
            Some(_) => current.checked_sub(1),
            None => {
                if self.wal_has_unrotated_data() {
                    let closed = self.wal.rotate().map_err(wal_error)?;
                    Some(closed)
                } else {
                    current.checked_sub(1)
                }
            }
        };
        if let Some(through) = remove_through {
            report.wal_segments_removed += self.wal.remove_through(through).map_err(wal_error)?;
        }
        Ok(())
    }

    fn wal_has_unrotated_data(&self) -> bool {
        self.wal_written_since_rotation
            .swap(false, Ordering::SeqCst)
    }
}

/// The most rows one persist or compaction writes into one file (bounds their memory).
pub const MAX_FILE_ROWS: usize = 2_000_000;

/// Memory-budget bytes per row a compaction may merge (see `compaction_max_rows`): 131,072 rows
/// from a 64 MiB budget, 2 M (the most) from 1 GiB. At 128 bytes a 64 MiB budget merged 524 K
/// rows and the flood test's peak anonymous memory was 163-174 MiB; at 512 it is 140-142 MiB
/// (`tests/python/test_resource_bounds.py`, docs/reliability.md).
const COMPACTION_BYTES_PER_ROW: usize = 512;

/// Budget bytes per row of one persist group ([`Engine::persist_max_rows`]): groups of 2 M rows
/// from a 1 GiB budget, 131,072 rows from 64 MiB.
const PERSIST_BUDGET_BYTES_PER_ROW: usize = 512;

/// Files with fewer rows than this are merged by compaction.
pub const SMALL_FILE_ROWS: u64 = 500_000;

/// Splits batches into groups of at most `max_rows` rows (a single larger batch stays whole).
fn group_by_rows(parts: Vec<RecordBatch>, max_rows: usize) -> Vec<Vec<RecordBatch>> {
    let mut groups: Vec<Vec<RecordBatch>> = Vec::new();
    let mut rows = 0;
    for part in parts {
        if groups.is_empty() || rows + part.num_rows() > max_rows {
            groups.push(Vec::new());
            rows = 0;
        }
        rows += part.num_rows();
        if let Some(g) = groups.last_mut() {
            g.push(part);
        }
    }
    groups
}

/// Splits a batch into rows with `time < cutoff` and the rest.
fn split_by_time(batch: &RecordBatch, cutoff: i64) -> Result<(RecordBatch, RecordBatch)> {
    Ok((
        rows_in_time_range(batch, i64::MIN, cutoff)?,
        rows_in_time_range(batch, cutoff, i64::MAX)?,
    ))
}

/// Concatenates conformed parts and splits them by UTC day.
fn split_by_day(
    schema: &arrow_schema::SchemaRef,
    parts: Vec<RecordBatch>,
) -> Result<Vec<(i64, RecordBatch)>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let all = arrow_select::concat::concat_batches(schema, &parts)
        .map_err(|e| Error::internal(format!("persist: {e}")))?;
    let times = all
        .column_by_name(hourglass_core::TIME_COLUMN)
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .ok_or_else(|| Error::internal("batch without a time column"))?;
    let mut days: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (i, &t) in times.values().iter().enumerate() {
        days.entry(t.div_euclid(NANOS_PER_DAY))
            .or_default()
            .push(i as u32);
    }
    if days.len() == 1 {
        let day = *days.keys().next().unwrap_or(&0);
        return Ok(vec![(day, all)]);
    }
    days.into_iter()
        .map(|(day, idx)| {
            let idx = UInt32Array::from(idx);
            let cols = all
                .columns()
                .iter()
                .map(|c| arrow_select::take::take(c.as_ref(), &idx, None))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::internal(format!("persist: {e}")))?;
            let b = RecordBatch::try_new(schema.clone(), cols)
                .map_err(|e| Error::internal(format!("persist: {e}")))?;
            Ok((day, b))
        })
        .collect()
}
