//! Latest-value queries answered from each source's last rows instead of a scan.
//!
//! `SELECT DISTINCT ON (hostname) … FROM cpu ORDER BY hostname, time DESC` (TSBS "lastpoint",
//! "last quote per symbol") wants, per group of series, the row with the greatest time. Every such
//! row is among the last rows per series of the table's sources (memory chunks and Parquet files,
//! see `hourglass_storage::last_rows`), and so are all the rows tied with it at that time. This
//! analyzer rule therefore replaces such a `DISTINCT ON` by a scan of the table's latest-value
//! view ([`LatestSpec`]), which picks each group's first row in the query's order from those few
//! thousand rows itself ([`pick_latest`]), then the query's sort and projection.
//!
//! It applies only when nothing else can change the answer:
//! - the `ON` expressions are series columns (dimensions, `measure_name`) of the table;
//! - the ordering after them is `time DESC`;
//! - between the `DISTINCT ON` and the scan there are only filters and aliases, and every filter
//!   conjunct either depends only on series columns (it keeps or drops whole series) or is a lower
//!   bound on `time` (a series whose newest row is older has no row that passes).
//!
//! An upper bound on `time`, a filter on a measure, a join or a projection in between leave the
//! plan as it is.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::partition;
use arrow::compute::{concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch};
use arrow::compute::{SortColumn, SortOptions};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Distinct, DistinctOn, Expr, Filter, LogicalPlan, LogicalPlanBuilder, Operator,
    Projection, SortExpr, SubqueryAlias, TableScan,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::StreamExt;
use hourglass_core::{column_role, ColumnRole, TIME_COLUMN};
use hourglass_storage::last_rows::last_rows_of;
use hourglass_storage::Engine;

use crate::provider::HourglassTable;
use crate::rules::series_filters::SeriesFilters;

/// The analyzer rule; registered on every session.
#[derive(Debug, Default)]
pub struct LastRowsRule;

impl AnalyzerRule for LastRowsRule {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        if !crate::rules::Rule::LatestValue.enabled(config) {
            return Ok(plan);
        }
        plan.transform_down_with_subqueries(|node| {
            let LogicalPlan::Distinct(Distinct::On(on)) = &node else {
                return Ok(Transformed::no(node));
            };
            match rewrite_distinct_on(on)? {
                Some(rewritten) => Ok(Transformed::new(rewritten, true, TreeNodeRecursion::Jump)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "hourglass_last_rows"
    }
}

fn rewrite_distinct_on(on: &DistinctOn) -> DfResult<Option<LogicalPlan>> {
    let Some(sort) = &on.sort_expr else {
        return Ok(None);
    };
    // DataFusion guarantees the ON expressions lead the ORDER BY; the next key must be time DESC.
    let Some(next) = sort.get(on.on_expr.len()) else {
        return Ok(None);
    };
    if next.asc || !is_column(&next.expr, TIME_COLUMN) {
        return Ok(None);
    }
    let mut filters = Vec::new();
    let Some(input) = rewrite_input(&on.input, on, &mut filters)? else {
        return Ok(None);
    };
    // The scan now yields one row per group; the filters above it still hold for those rows.
    let sorted = LogicalPlanBuilder::from(input)
        .sort(sort.clone())?
        .build()?;
    let projection = Projection::try_new(on.select_expr.clone(), Arc::new(sorted))?;
    if projection.schema.fields() != on.schema.fields()
        || projection.schema.columns() != on.schema.columns()
    {
        return Ok(None);
    }
    // Keep the `DISTINCT ON`'s schema, functional dependencies included: DataFusion's later
    // rules read them (see `dictionary_group_keys` on what losing them did), and the view's
    // scan has none of its own. The rows are the same rows, so they still hold.
    let projection =
        Projection::try_new_with_schema(projection.expr, projection.input, on.schema.clone())?;
    Ok(Some(LogicalPlan::Projection(projection)))
}

/// Walks filters and aliases down to an Hourglass table scan and returns the same plan over the
/// table's last-rows view, or `None` when the shape or a filter rules the rewrite out.
fn rewrite_input<'a>(
    plan: &'a LogicalPlan,
    on: &DistinctOn,
    filters: &mut Vec<&'a Expr>,
) -> DfResult<Option<LogicalPlan>> {
    match plan {
        LogicalPlan::Filter(f) => {
            filters.extend(split_conjunction(&f.predicate));
            let Some(input) = rewrite_input(&f.input, on, filters)? else {
                return Ok(None);
            };
            Ok(Some(LogicalPlan::Filter(Filter::try_new(
                f.predicate.clone(),
                Arc::new(input),
            )?)))
        }
        LogicalPlan::SubqueryAlias(a) => {
            let Some(input) = rewrite_input(&a.input, on, filters)? else {
                return Ok(None);
            };
            Ok(Some(LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                Arc::new(input),
                a.alias.clone(),
            )?)))
        }
        LogicalPlan::TableScan(scan) => rewrite_scan(scan, on, filters),
        _ => Ok(None),
    }
}

fn rewrite_scan(
    scan: &TableScan,
    on: &DistinctOn,
    filters: &[&Expr],
) -> DfResult<Option<LogicalPlan>> {
    if scan.fetch.is_some() {
        return Ok(None);
    }
    let provider = source_as_provider(&scan.source)?;
    let Some(table) = provider.downcast_ref::<HourglassTable>() else {
        return Ok(None);
    };
    if table.is_latest_view() {
        return Ok(None);
    }
    let schema = provider.schema();
    let series: HashSet<&str> = schema
        .fields()
        .iter()
        .filter(|f| {
            matches!(
                column_role(f),
                ColumnRole::Dimension | ColumnRole::MeasureName
            )
        })
        .map(|f| f.name().as_str())
        .collect();
    let on_series_columns = on
        .on_expr
        .iter()
        .all(|e| matches!(e, Expr::Column(c) if series.contains(c.name.as_str())));
    let filters_keep_whole_series = filters
        .iter()
        .chain(scan.filters.iter().collect::<Vec<_>>().iter())
        .all(|f| depends_only_on(f, &series) || is_time_lower_bound(f));
    if !on_series_columns || !filters_keep_whole_series {
        return Ok(None);
    }
    let all_filters: Vec<Expr> = filters
        .iter()
        .map(|f| (*f).clone())
        .chain(scan.filters.iter().cloned())
        .collect();
    let view = Arc::new(
        table.latest_view(LatestSpec {
            on: on.on_expr.iter().map(unqualified).collect(),
            sort: on
                .sort_expr
                .iter()
                .flatten()
                .map(|s| SortExpr {
                    expr: unqualified(&s.expr),
                    ..s.clone()
                })
                .collect(),
            filters: all_filters.iter().map(unqualified).collect(),
        }),
    );
    let mut rewritten = scan.clone();
    rewritten.source = provider_as_source(view);
    Ok(Some(LogicalPlan::TableScan(rewritten)))
}

/// `e` with its columns' table qualifiers removed (the view evaluates it over the table alone).
fn unqualified(e: &Expr) -> Expr {
    e.clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| e.clone())
}

fn is_column(e: &Expr, name: &str) -> bool {
    matches!(e, Expr::Column(c) if c.name == name)
}

/// A deterministic expression without subqueries whose columns are all in `columns`.
fn depends_only_on(e: &Expr, columns: &HashSet<&str>) -> bool {
    !e.is_volatile()
        && !has_subquery(e)
        && e.column_refs()
            .iter()
            .all(|c| columns.contains(c.name.as_str()))
}

fn has_subquery(e: &Expr) -> bool {
    e.exists(|e| {
        Ok(matches!(
            e,
            Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::ScalarSubquery(_)
                | Expr::OuterReferenceColumn(..)
        ))
    })
    .unwrap_or(true)
}

/// `time > x`, `time >= x`, `x < time` or `x <= time` with `x` free of columns.
fn is_time_lower_bound(e: &Expr) -> bool {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return false;
    };
    let constant = |x: &Expr| depends_only_on(x, &HashSet::new());
    match op {
        Operator::Gt | Operator::GtEq => is_column(left, TIME_COLUMN) && constant(right),
        Operator::Lt | Operator::LtEq => is_column(right, TIME_COLUMN) && constant(left),
        _ => false,
    }
}

/// What a latest-value view answers: per group of `on`, the first row in `sort` order among the
/// rows passing `filters` (all over the table's own columns, unqualified).
#[derive(Debug, Clone)]
pub struct LatestSpec {
    pub on: Vec<Expr>,
    pub sort: Vec<SortExpr>,
    pub filters: Vec<Expr>,
}

/// Candidate batches this large are reduced to their last rows as they arrive.
const REDUCE_BATCHES_OF: usize = 4096;

/// Runs `candidates` (the sources' last rows, full table schema), keeps each batch's last rows
/// per series, and plans the picked answer rows as an in-memory source.
pub async fn pick_latest(
    engine: &Engine,
    state: &dyn Session,
    candidates: Arc<dyn ExecutionPlan>,
    spec: &LatestSpec,
    schema: &SchemaRef,
    projection: Option<&Vec<usize>>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let series_filters = SeriesFilters::new(state, &spec.filters, schema)?;
    let mut stream = execute_stream(candidates, state.task_ctx())?;
    let mut rows = Vec::new();
    while let Some(batch) = stream.next().await {
        // Batches of files without a sidecar are whole data: reduce them as they come. Last rows
        // already reduced (sidecars, chunks' last rows) arrive as smaller batches.
        let batch = series_filters.apply(batch?)?;
        if batch.num_rows() >= REDUCE_BATCHES_OF {
            rows.push(last_rows_of(&batch).map_err(crate::error::to_datafusion)?);
        } else {
            rows.push(batch);
        }
    }
    let gathered = concat_batches(schema, &rows)?;
    engine.latest_value_stats.record(gathered.num_rows());
    // Each source's last rows, reduced to the newest rows of each series over all sources
    // (an integer sort by series rank), so the query's own ordering sorts one row per series.
    let candidates = last_rows_of(&gathered).map_err(crate::error::to_datafusion)?;
    let picked = pick(state, &candidates, spec, schema)?;
    Ok(MemorySourceConfig::try_new_exec(
        &[vec![picked]],
        schema.clone(),
        projection.cloned(),
    )?)
}

fn pick(
    state: &dyn Session,
    batch: &RecordBatch,
    spec: &LatestSpec,
    schema: &SchemaRef,
) -> DfResult<RecordBatch> {
    let df_schema = DFSchema::try_from(schema.clone())?;
    let evaluate = |e: &Expr, batch: &RecordBatch| -> DfResult<ArrayRef> {
        state
            .create_physical_expr(e.clone(), &df_schema)?
            .evaluate(batch)?
            .into_array(batch.num_rows())
    };
    let mut batch = batch.clone();
    for f in &spec.filters {
        let keep = evaluate(f, &batch)?;
        let keep = keep
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| DataFusionError::Internal("a filter that is not boolean".into()))?;
        batch = filter_record_batch(&batch, keep)?;
    }
    if batch.num_rows() == 0 {
        return Ok(batch);
    }
    let sort_columns = spec
        .sort
        .iter()
        .map(|s| {
            Ok(SortColumn {
                values: evaluate(&s.expr, &batch)?,
                options: Some(SortOptions {
                    descending: !s.asc,
                    nulls_first: s.nulls_first,
                }),
            })
        })
        .collect::<DfResult<Vec<_>>>()?;
    let order = lexsort_to_indices(&sort_columns, None)?;
    let sorted = take_record_batch(&batch, &order)?;
    let group_columns = spec
        .on
        .iter()
        .map(|e| evaluate(e, &sorted))
        .collect::<DfResult<Vec<_>>>()?;
    let firsts: UInt32Array = if group_columns.is_empty() {
        UInt32Array::from(vec![0u32])
    } else {
        partition(&group_columns)?
            .ranges()
            .into_iter()
            .map(|r| r.start as u32)
            .collect()
    };
    Ok(take_record_batch(&sorted, &firsts)?)
}
