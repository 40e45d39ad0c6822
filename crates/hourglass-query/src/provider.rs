//! The table provider: one Hourglass table as a DataFusion table over both tiers.
//!
//! `scan` takes a consistent snapshot of the table (memory chunks + manifest), keeps only the
//! chunks and files whose time range meets the query's and the retention window, and plans
//! an in-memory scan of the chunks unioned with a Parquet scan of the files (row groups pruned by
//! the pushed-down predicate's statistics). Days that may hold several writes of one record are
//! resolved first ([`crate::dedup`]). Rows past magnetic retention are filtered out at once, even
//! before maintenance deletes their files.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{col, lit, Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;
use hourglass_core::time::NANOS_PER_DAY;
use hourglass_storage::schema::conform;
use hourglass_storage::{Engine, FileMeta, TableDef, STORE_URL};

use crate::dedup::{filter_time, resolve_days};
use crate::error::to_datafusion;
use crate::file_groups;
use crate::page_index_cache::WithPageIndexFactory;
use crate::rules::last_rows::{pick_latest, LatestSpec};
use crate::rules::Rule;
use crate::stored_time::StoredTimeAdapterFactory;
use crate::time_range::TimeRange;

/// One table of one database.
#[derive(Debug, Clone)]
pub struct HourglassTable {
    engine: Arc<Engine>,
    db: String,
    def: TableDef,
    schema: SchemaRef,
    /// Answer a latest-value query from each source's newest rows per series
    /// ([`crate::rules::last_rows`]).
    latest: Option<Arc<LatestSpec>>,
}

impl HourglassTable {
    pub fn new(engine: Arc<Engine>, db: &str, def: TableDef) -> Self {
        let schema = hourglass_storage::schema::table_schema(&def);
        HourglassTable {
            engine,
            db: db.to_string(),
            def,
            schema,
            latest: None,
        }
    }

    /// The same table, whose scan yields the answer rows of a latest-value query: for each group
    /// of `spec.on`, its first row in `spec.sort` order among the rows passing `spec.filters`,
    /// found among the sources' last rows per series ([`crate::rules::last_rows`]).
    pub fn latest_view(&self, spec: LatestSpec) -> HourglassTable {
        HourglassTable {
            latest: Some(Arc::new(spec)),
            ..self.clone()
        }
    }

    pub fn is_latest_view(&self) -> bool {
        self.latest.is_some()
    }
}

#[async_trait]
impl TableProvider for HourglassTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Planning reads some files (days holding rewrites are resolved, last-rows sidecars
        // read): when maintenance replaced the table's files meanwhile (a compaction deletes the
        // files it merged once the new manifest is committed), a file of the snapshot planned
        // from can be gone. The plan is then made again from the new snapshot, which names the
        // same rows in other files.
        let mut attempts = 0;
        loop {
            let generation = self.manifest_generation();
            let planned = self.scan_once(state, projection, filters).await;
            match planned {
                Err(_) if attempts < MAX_REPLANS && self.manifest_generation() != generation => {
                    attempts += 1;
                    tracing::debug!(table = %self.def.name, attempts, "files replaced while planning; planning again");
                }
                planned => return planned,
            }
        }
    }
}

/// How often a scan is planned again when maintenance replaced the files it read meanwhile.
const MAX_REPLANS: usize = 3;

impl HourglassTable {
    fn manifest_generation(&self) -> Option<u64> {
        self.engine
            .table_snapshot(&self.db, &self.def.name)
            .map(|s| s.manifest.generation)
    }

    async fn scan_once(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match &self.latest {
            Some(spec) => {
                let candidates = self.scan_sources(state, None, filters).await?;
                pick_latest(
                    &self.engine,
                    state,
                    candidates,
                    spec,
                    &self.schema,
                    projection,
                )
                .await
            }
            None => self.scan_sources(state, projection, filters).await,
        }
    }
}

impl HourglassTable {
    /// Plans the scan of the table's sources: memory chunks and Parquet files (for a latest-value
    /// view, their last rows per series), dirty days resolved, retention applied.
    async fn scan_sources(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let last_rows_only = self.latest.is_some();
        let now = self.engine.clock.now_nanos();
        let retention_cutoff = self.def.properties.magnetic_cutoff(now);
        let mut range = TimeRange::from_filters(filters);
        // What the query read, for a collector of this task (scheduled queries' late data).
        crate::time_range::ScanRanges::record(&self.db, &self.def.name, range);
        range.min = range.min.max(retention_cutoff);

        let Some(snapshot) = self.engine.table_snapshot(&self.db, &self.def.name) else {
            let projected = project(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(projected)));
        };
        let in_dirty_day = |min: i64, max: i64, dirty: &BTreeSet<i64>| {
            dirty
                .range(min.div_euclid(NANOS_PER_DAY)..=max.div_euclid(NANOS_PER_DAY))
                .next()
                .is_some()
        };
        let dirty: BTreeSet<i64> = snapshot
            .dirty_days
            .iter()
            .copied()
            .filter(|d| range.overlaps(d * NANOS_PER_DAY, (d + 1) * NANOS_PER_DAY - 1))
            .collect();

        let files: Vec<_> = snapshot
            .manifest
            .files
            .iter()
            .filter(|f| range.overlaps(f.min_time, f.max_time))
            .collect();
        let chunks: Vec<_> = snapshot
            .chunks
            .iter()
            .map(|c| c.as_ref())
            .filter(|c| range.overlaps(c.min_time, c.max_time))
            .collect();

        // Memory batches: clean chunks directly (dirty days cut out), dirty days resolved.
        let mut memory: Vec<RecordBatch> = Vec::new();
        let mut needs_time_filter = false;
        let mut clean_chunks = Vec::new();
        for c in &chunks {
            if dirty.is_empty() || !in_dirty_day(c.min_time, c.max_time, &dirty) {
                needs_time_filter |= c.min_time < retention_cutoff;
                if last_rows_only {
                    clean_chunks.push(*c);
                } else {
                    memory.push(conform(&c.batch, &self.schema).map_err(to_datafusion)?);
                }
            } else {
                let batch = conform(&c.batch, &self.schema).map_err(to_datafusion)?;
                for part in split_out_days(&batch, c.min_time, c.max_time, &dirty)? {
                    memory.push(part);
                }
            }
        }
        if last_rows_only {
            // Their last rows, mostly merged in blocks kept across queries.
            let gathered = snapshot
                .chunk_last_rows
                .gather(&clean_chunks, &snapshot.chunks, &self.schema)
                .map_err(to_datafusion)?;
            memory.extend(gathered);
        }
        if !dirty.is_empty() {
            let resolved = resolve_days(
                &self.engine,
                &self.schema,
                &dirty,
                &files,
                &chunks,
                last_rows_only,
                range,
            )
            .await
            .map_err(to_datafusion)?;
            needs_time_filter |= dirty.iter().any(|d| d * NANOS_PER_DAY < retention_cutoff);
            memory.extend(resolved);
        }
        let mut clean_files: Vec<&FileMeta> = files
            .iter()
            .copied()
            .filter(|f| !dirty.contains(&f.day))
            .collect();
        needs_time_filter |= clean_files.iter().any(|f| f.min_time < retention_cutoff);
        if last_rows_only {
            // Files with a last-rows sidecar contribute it instead of their rows.
            let (merged, whole) = self
                .engine
                .merged_last_rows(&clean_files, &self.schema)
                .await
                .map_err(to_datafusion)?;
            memory.extend(merged);
            clean_files = whole;
        }

        // Scan with `time` included when the retention filter needs it.
        let time_index = self.schema.index_of(hourglass_core::TIME_COLUMN)?;
        let inner_projection: Option<Vec<usize>> = match (projection, needs_time_filter) {
            (Some(p), true) if !p.contains(&time_index) => {
                let mut p = p.clone();
                p.push(time_index);
                Some(p)
            }
            (p, _) => p.cloned(),
        };

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        let partitions = state.config().target_partitions().max(1);
        if !memory.is_empty() {
            let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions.min(memory.len())];
            let n = parts.len();
            for (i, b) in memory.into_iter().enumerate() {
                parts[i % n].push(b);
            }
            inputs.push(MemorySourceConfig::try_new_exec(
                &parts,
                self.schema.clone(),
                inner_projection.clone(),
            )?);
        }
        if !clean_files.is_empty() {
            // Files never change once written (unique names), so their footers and page
            // indexes are cached across queries.
            let metadata_cache = state.runtime_env().cache_manager.get_file_metadata_cache();
            let mut source = ParquetSource::new(self.schema.clone())
                .with_parquet_file_reader_factory(Arc::new(WithPageIndexFactory(
                    CachedParquetFileReaderFactory::new(
                        self.engine.magnetic.store.clone(),
                        metadata_cache,
                    ),
                )));
            // With filter pushdown on, DataFusion hands the query's filters to the Parquet scan
            // itself (through unions and projections); adding them here too would evaluate them
            // twice.
            let pushed_down = state.config_options().execution.parquet.pushdown_filters;
            if let Some(predicate) = conjunction(filters.iter().cloned()).filter(|_| !pushed_down) {
                let df_schema = DFSchema::try_from(self.schema.clone())?;
                if let Ok(physical) = state.create_physical_expr(predicate, &df_schema) {
                    source = source.with_predicate(physical);
                }
            }
            let groups = file_groups::balanced(&clean_files, partitions, range);
            let config =
                FileScanConfigBuilder::new(ObjectStoreUrl::parse(STORE_URL)?, Arc::new(source))
                    .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                    .with_projection_indices(inner_projection.clone())?
                    // Files storing `time` in milliseconds or microseconds are read as
                    // nanoseconds, comparisons with constants kept exact.
                    .with_expr_adapter(Some(Arc::new(StoredTimeAdapterFactory {
                        exact_comparisons: Rule::StoredTimeUnit.enabled(state.config_options()),
                    })))
                    .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }
        let projected = project(&self.schema, inner_projection.as_ref())?;
        let mut plan: Arc<dyn ExecutionPlan> = match inputs.len() {
            0 => Arc::new(EmptyExec::new(projected.clone())),
            _ => UnionExec::try_new(inputs)?,
        };
        if needs_time_filter {
            let df_schema = DFSchema::try_from(plan.schema())?;
            let keep = col(hourglass_core::TIME_COLUMN).gt_eq(lit(
                ScalarValue::TimestampNanosecond(Some(retention_cutoff), None),
            ));
            let predicate = state.create_physical_expr(keep, &df_schema)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
            if inner_projection.as_ref() != projection {
                let wanted = projection.map_or(0, |p| p.len());
                let schema = plan.schema();
                let exprs: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> = (0
                    ..wanted)
                    .map(|i| {
                        let name = schema.field(i).name().clone();
                        (Arc::new(Column::new(&name, i)) as _, name)
                    })
                    .collect();
                plan = Arc::new(ProjectionExec::try_new(exprs, plan)?);
            }
        }
        Ok(plan)
    }
}

fn project(schema: &SchemaRef, projection: Option<&Vec<usize>>) -> DfResult<SchemaRef> {
    Ok(match projection {
        Some(p) => Arc::new(schema.project(p)?),
        None => schema.clone(),
    })
}

/// The parts of a chunk's batch outside the dirty days.
fn split_out_days(
    batch: &RecordBatch,
    min_time: i64,
    max_time: i64,
    dirty: &BTreeSet<i64>,
) -> DfResult<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let mut start = min_time.div_euclid(NANOS_PER_DAY) * NANOS_PER_DAY;
    let mut run_start: Option<i64> = None;
    let last_day = max_time.div_euclid(NANOS_PER_DAY);
    let mut day = min_time.div_euclid(NANOS_PER_DAY);
    while day <= last_day {
        if dirty.contains(&day) {
            if let Some(s) = run_start.take() {
                out.push(filter_time(batch, s, start).map_err(to_datafusion)?);
            }
        } else if run_start.is_none() {
            run_start = Some(start);
        }
        day += 1;
        start += NANOS_PER_DAY;
    }
    if let Some(s) = run_start {
        out.push(filter_time(batch, s, start).map_err(to_datafusion)?);
    }
    Ok(out.into_iter().filter(|b| b.num_rows() > 0).collect())
}
