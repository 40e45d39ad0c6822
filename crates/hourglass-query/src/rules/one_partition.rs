//! `one_partition`: a query that reads a few series over a bounded span is planned and run on
//! one partition.
//!
//! Every scan of such a query names its series (a dimension `= literal` or `IN (literals)`, at
//! most [`MAX_SERIES_LITERALS`] of them) and a time range of at most [`MAX_SPAN_NANOS`] (or reads
//! only last rows: a latest-value view). It reads a few thousand rows, and the two-partition plan
//! DataFusion makes for it costs more than the rows: a hash repartition, a final aggregate and a
//! sort per partition and a merge, each planned (the physical optimizer's equivalence and
//! distribution passes) and run as its own task. Measured on the side-by-side data (release, one
//! host over one hour, `single-groupby-1-1-1`), that plan was most of the query's time; see
//! `docs/benchmarks.md`, "One-series queries".
//!
//! The number of partitions changes how a plan is parallelised, never its answer; switched off,
//! every query is planned on the session's `target_partitions`. The differential fuzzer's
//! rules-off oracle compares the two.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator, TableScan};
use hourglass_core::{column_role, ColumnRole};

use crate::provider::HourglassTable;
use crate::time_range::TimeRange;

/// The most literals a dimension's `IN` list may have for its scan to count as a few series.
pub const MAX_SERIES_LITERALS: usize = 16;

/// The longest time span (7 days) a few-series scan may cover; a week of one series at 10 s
/// intervals is about 60,000 rows.
pub const MAX_SPAN_NANOS: i64 = 7 * 24 * 3600 * 1_000_000_000;

/// Whether every scan of `plan` (an optimised logical plan: filters pushed into its scans) reads
/// a few series of an Hourglass table over a bounded span. A plan without scans, or with a scan
/// of anything else (system tables, `VALUES` are not scans), does not qualify.
pub fn reads_few_series(plan: &LogicalPlan) -> bool {
    let mut scans = 0usize;
    let mut all_small = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scans += 1;
            if !scan_reads_few_series(scan) {
                all_small = false;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    scans > 0 && all_small
}

fn scan_reads_few_series(scan: &TableScan) -> bool {
    let Ok(provider) = source_as_provider(&scan.source) else {
        return false;
    };
    let Some(table) = provider.downcast_ref::<HourglassTable>() else {
        return false;
    };
    let schema = provider.schema();
    let is_dimension = |e: &Expr| match e {
        Expr::Column(c) => schema
            .field_with_name(&c.name)
            .is_ok_and(|f| column_role(f) == ColumnRole::Dimension),
        _ => false,
    };
    let is_literal = |e: &Expr| matches!(e, Expr::Literal(v, _) if !v.is_null());
    let names_series = scan
        .filters
        .iter()
        .flat_map(|f| split_conjunction(f))
        .any(|c| match c {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                (is_dimension(left) && is_literal(right))
                    || (is_dimension(right) && is_literal(left))
            }
            Expr::InList(list) => {
                !list.negated
                    && is_dimension(&list.expr)
                    && list.list.len() <= MAX_SERIES_LITERALS
                    && list.list.iter().all(is_literal)
            }
            _ => false,
        });
    if !names_series {
        return false;
    }
    if table.is_latest_view() {
        return true;
    }
    let range = TimeRange::from_filters(&scan.filters);
    range.min != i64::MIN
        && range.max != i64::MAX
        && range.max.saturating_sub(range.min) <= MAX_SPAN_NANOS
}
