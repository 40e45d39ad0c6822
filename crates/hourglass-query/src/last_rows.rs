//! Latest-value queries answered from each source's last rows instead of a scan.
//!
//! `SELECT DISTINCT ON (hostname) … FROM cpu ORDER BY hostname, time DESC` (TSBS "lastpoint",
//! "last quote per symbol") wants, per group of series, the row with the greatest time. Every such
//! row is among the last rows per series of the table's sources (memory chunks and Parquet files,
//! see `hourglass_storage::last_rows`), and so are all the rows tied with it at that time. This
//! analyzer rule therefore swaps the table scan under such a `DISTINCT ON` for the table's
//! last-rows view and picks each group's first row in the query's order from those few thousand
//! rows.
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

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::Result as DfResult;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    col, lit, BinaryExpr, Distinct, DistinctOn, Expr, ExprFunctionExt, Filter, LogicalPlan,
    LogicalPlanBuilder, Operator, SubqueryAlias, TableScan,
};
use datafusion::optimizer::AnalyzerRule;
use hourglass_core::{column_role, ColumnRole, TIME_COLUMN};

use crate::provider::HourglassTable;

/// The analyzer rule; registered on every session.
#[derive(Debug, Default)]
pub struct LastRowsRule;

impl AnalyzerRule for LastRowsRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
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
    let Some(input) = rewrite_input(&on.input, &on.on_expr, &mut filters)? else {
        return Ok(None);
    };
    // DataFusion would turn the DISTINCT ON into `first_value(… ORDER BY …)` aggregates, whose
    // row-at-a-time path (taken for dictionary columns) costs ~20 µs a row. Over a few thousand
    // candidate rows, numbering each group's rows in order and keeping the first is far cheaper.
    let rank = row_number()
        .partition_by(on.on_expr.clone())
        .order_by(sort[on.on_expr.len()..].to_vec())
        .build()?
        .alias(RANK_COLUMN);
    let plan = LogicalPlanBuilder::from(input)
        .window(vec![rank])?
        .filter(col(RANK_COLUMN).eq(lit(1u64)))?
        .sort(sort.clone())?
        .project(on.select_expr.clone())?
        .build()?;
    if plan.schema().fields() != on.schema.fields() {
        return Ok(None);
    }
    Ok(Some(plan))
}

/// The row number column of the rewritten plan.
const RANK_COLUMN: &str = "__hourglass_last_rows_rank";

/// Walks filters and aliases down to an Hourglass table scan and returns the same plan over the
/// table's last-rows view, or `None` when the shape or a filter rules the rewrite out.
fn rewrite_input<'a>(
    plan: &'a LogicalPlan,
    on: &[Expr],
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

fn rewrite_scan(scan: &TableScan, on: &[Expr], filters: &[&Expr]) -> DfResult<Option<LogicalPlan>> {
    if scan.fetch.is_some() {
        return Ok(None);
    }
    let provider = source_as_provider(&scan.source)?;
    let Some(table) = provider.downcast_ref::<HourglassTable>() else {
        return Ok(None);
    };
    if table.is_last_rows_view() {
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
        .iter()
        .all(|e| matches!(e, Expr::Column(c) if series.contains(c.name.as_str())));
    let filters_keep_whole_series = filters
        .iter()
        .chain(scan.filters.iter().collect::<Vec<_>>().iter())
        .all(|f| depends_only_on(f, &series) || is_time_lower_bound(f));
    if !on_series_columns || !filters_keep_whole_series {
        return Ok(None);
    }
    let view = Arc::new(table.last_rows_view());
    let mut rewritten = scan.clone();
    rewritten.source = provider_as_source(view);
    Ok(Some(LogicalPlan::TableScan(rewritten)))
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
