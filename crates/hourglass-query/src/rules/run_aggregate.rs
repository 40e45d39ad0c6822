//! Partial aggregation in series order: runs of equal group keys folded without a hash table.
//!
//! Parquet files are sorted by series then time, so a scan's batches hold long runs of rows with
//! the same group key for `GROUP BY host, date_bin('1 hour', time)` (360 rows per run in TSBS).
//! DataFusion's partial aggregate still interns every row's key in a hash table. This operator
//! replaces a partial aggregate directly over a scan: per batch it finds the runs of equal keys
//! (`arrow::compute::partition`), gives each run a group index (a long run [`LANES`] of them,
//! taken in turn row by row, so consecutive rows do not wait on updates of one accumulator slot),
//! feeds DataFusion's own groups accumulators with those indices and emits their partial states:
//! one row per run (or lane), in exactly the partial aggregate's schema. The final aggregate
//! merges them as it would its own partial rows, so the answer does not depend on the order of
//! the input; only the saving does.
//!
//! The first rows of each partition decide: when their runs average fewer than
//! [`MIN_RUN_ROWS`] rows (a key that changes on most rows, such as `GROUP BY symbol, minute`
//! over per-exchange series), the partition hands its rows, those already read first, to the
//! original hash aggregate instead.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{partition, take};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{aggregate_expressions, AggregateExec, AggregateMode};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::{stream, StreamExt, TryStreamExt};

/// Rows a partition reads before choosing between folding runs and the hash aggregate. Long
/// enough to reach past a first file that only overlaps the query's time range by a few rows
/// per series (double-groupby-1's first file gave runs of 14 rows in its first 16 K rows).
const PROBE_ROWS: usize = 64 * 1024;
/// Shortest average run worth folding.
pub const MIN_RUN_ROWS: usize = 16;
/// Accumulator groups a long run is spread over (a power of two), and the shortest run spread.
const LANES: usize = 4;
const MIN_LANED_RUN_ROWS: usize = 64;
/// Aggregates whose result does not depend on the order rows reach them, so a run may be spread
/// over lanes. Others (`array_agg`, `string_agg`, `first_value` without ORDER BY, ...) keep each
/// run in one group, in file order, as the hash aggregate would.
const ORDER_INSENSITIVE: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "stddev_pop",
    "var",
    "var_pop",
    "bool_and",
    "bool_or",
    "bit_and",
    "bit_or",
    "bit_xor",
];

/// Replaces eligible partial aggregates with [`RunAggregateExec`]; registered last.
#[derive(Debug, Default)]
pub struct RunAggregateRule;

impl PhysicalOptimizerRule for RunAggregateRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !crate::rules::Rule::RunAggregate.enabled(config) {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(agg) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if !eligible(agg) {
                return Ok(Transformed::no(node));
            }
            let replaced = Arc::new(RunAggregateExec::new(agg.clone())?);
            Ok(Transformed::yes(replaced as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "hourglass_run_aggregate"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A plain partial aggregate (one grouping, no FILTER, DISTINCT or limit, every aggregate with a
/// groups accumulator) over scans in file order (no repartition, sort or join in between).
fn eligible(agg: &AggregateExec) -> bool {
    *agg.mode() == AggregateMode::Partial
        && agg.group_expr().is_single()
        && !agg.group_expr().is_empty()
        && agg.filter_expr().iter().all(Option::is_none)
        && agg.limit_options().is_none()
        && agg.dynamic_expressions_produced().is_empty()
        && agg
            .aggr_expr()
            .iter()
            .all(|a| a.groups_accumulator_supported() && !a.is_distinct())
        && reads_files_in_order(agg.input())
}

fn reads_files_in_order(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut scan = false;
    let mut reordered = false;
    let _ = plan.apply(|node| {
        // A union's partitions are its inputs' partitions, rows in their order.
        let join = node.children().len() > 1 && !node.is::<UnionExec>();
        if node.is::<RepartitionExec>() || node.is::<SortExec>() || join {
            reordered = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        scan |= node.is::<DataSourceExec>();
        Ok(TreeNodeRecursion::Continue)
    });
    scan && !reordered
}

/// The partial aggregate that folds runs; see the module documentation.
#[derive(Debug)]
pub struct RunAggregateExec {
    original: Arc<AggregateExec>,
    /// Per aggregate, its argument expressions (and ordering columns) over the input.
    arguments: Arc<Vec<Vec<PhysicalExprRef>>>,
    /// Groups a long run is spread over: [`LANES`] when every aggregate is order-insensitive,
    /// else 1.
    lanes: usize,
}

impl RunAggregateExec {
    fn new(original: AggregateExec) -> Result<Self> {
        let arguments = aggregate_expressions(original.aggr_expr(), original.mode(), 0)?;
        let order_insensitive = original
            .aggr_expr()
            .iter()
            .all(|a| ORDER_INSENSITIVE.contains(&a.fun().name()));
        Ok(RunAggregateExec {
            original: Arc::new(original),
            arguments: Arc::new(arguments),
            lanes: if order_insensitive { LANES } else { 1 },
        })
    }
}

impl DisplayAs for RunAggregateExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RunAggregateExec: runs of equal keys, else ")?;
        self.original.fmt_as(t, f)
    }
}

impl ExecutionPlan for RunAggregateExec {
    fn name(&self) -> &str {
        "RunAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.original.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.original.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&PhysicalExprRef) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.original.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let original = Arc::clone(&self.original).replace_children(children, options)?;
        let Some(agg) = original.downcast_ref::<AggregateExec>() else {
            return Err(DataFusionError::Internal(
                "RunAggregateExec wraps an AggregateExec".into(),
            ));
        };
        Ok(Arc::new(RunAggregateExec::new(agg.clone())?))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.original.input().execute(partition, context.clone())?;
        let original = Arc::clone(&self.original);
        let arguments = Arc::clone(&self.arguments);
        let lanes = self.lanes;
        let schema = original.schema();
        let out_schema = Arc::clone(&schema);
        let decided = stream::once(async move {
            // Probe: read the first rows and measure their runs.
            let mut head = Vec::new();
            let (mut rows, mut runs) = (0usize, 0usize);
            while rows < PROBE_ROWS {
                let Some(batch) = input.next().await else {
                    break;
                };
                let keyed = KeyedBatch::of(&original, batch?)?;
                rows += keyed.batch.num_rows();
                runs += keyed.runs.len();
                head.push(keyed);
            }
            let folded: SendableRecordBatchStream = if runs == 0 || rows / runs >= MIN_RUN_ROWS {
                let keyed_rest = {
                    let original = Arc::clone(&original);
                    input.map(move |batch| KeyedBatch::of(&original, batch?))
                };
                let schema = Arc::clone(&out_schema);
                Box::pin(RecordBatchStreamAdapter::new(
                    Arc::clone(&out_schema),
                    stream::iter(head.into_iter().map(Ok))
                        .chain(keyed_rest)
                        .map(move |keyed| fold_runs(&original, &arguments, lanes, &schema, &keyed?))
                        .try_filter(|b| futures::future::ready(b.num_rows() > 0)),
                ))
            } else {
                let replayed: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
                    input.schema(),
                    stream::iter(head.into_iter().map(|k| Ok(k.batch))).chain(input),
                ));
                let replay = Arc::new(ReplayExec::new(
                    Arc::clone(original.input()),
                    partition,
                    replayed,
                ));
                let hashed = (original as Arc<dyn ExecutionPlan>).replace_children(
                    vec![replay],
                    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
                )?;
                hashed.execute(partition, context)?
            };
            Ok::<_, DataFusionError>(folded)
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, decided)))
    }
}

/// A batch with its group keys and the runs of equal keys in them.
struct KeyedBatch {
    batch: RecordBatch,
    keys: Vec<ArrayRef>,
    runs: Vec<Range<usize>>,
}

impl KeyedBatch {
    fn of(agg: &AggregateExec, batch: RecordBatch) -> Result<Self> {
        let keys = agg
            .group_expr()
            .expr()
            .iter()
            .map(|(e, _)| e.evaluate(&batch)?.into_array(batch.num_rows()))
            .collect::<Result<Vec<_>>>()?;
        let runs = if batch.num_rows() == 0 {
            Vec::new()
        } else {
            partition(&keys)?.ranges()
        };
        Ok(KeyedBatch { batch, keys, runs })
    }
}

/// Batches folded by runs since start (tests check which path ran).
static FOLDED_BATCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One partial row per run of equal keys in `batch`.
fn fold_runs(
    agg: &AggregateExec,
    arguments: &[Vec<PhysicalExprRef>],
    lanes: usize,
    schema: &arrow::datatypes::SchemaRef,
    keyed: &KeyedBatch,
) -> Result<RecordBatch> {
    let KeyedBatch { batch, keys, runs } = keyed;
    let n = batch.num_rows();
    if n == 0 {
        return Ok(RecordBatch::new_empty(Arc::clone(schema)));
    }
    FOLDED_BATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A long run's rows go to `lanes` groups in turn, so that consecutive rows update different
    // accumulator slots rather than each waiting for the previous row's update of the same one;
    // the final aggregate merges the lanes like any other partial rows.
    let mut group_indices = Vec::with_capacity(n);
    let mut firsts = Vec::with_capacity(runs.len());
    for run in runs {
        let base = firsts.len();
        let spread = if run.len() >= MIN_LANED_RUN_ROWS {
            lanes
        } else {
            1
        };
        group_indices.extend((0..run.len()).map(|j| base + (j & (spread - 1))));
        firsts.extend(std::iter::repeat_n(run.start as u32, spread));
    }
    let groups = firsts.len();
    let firsts = UInt32Array::from(firsts);
    let mut columns = keys
        .iter()
        .map(|k| Ok(take(k.as_ref(), &firsts, None)?))
        .collect::<Result<Vec<ArrayRef>>>()?;
    for (aggregate, args) in agg.aggr_expr().iter().zip(arguments) {
        let values = args
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(n))
            .collect::<Result<Vec<_>>>()?;
        let mut accumulator = aggregate.create_groups_accumulator()?;
        accumulator.update_batch(&values, &group_indices, None, groups)?;
        columns.extend(accumulator.state(EmitTo::All)?);
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// Hands one partition's already-started input stream to the hash aggregate it falls back to.
struct ReplayExec {
    input: Arc<dyn ExecutionPlan>,
    partition: usize,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl fmt::Debug for ReplayExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplayExec(partition {})", self.partition)
    }
}

impl ReplayExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        partition: usize,
        stream: SendableRecordBatchStream,
    ) -> Self {
        ReplayExec {
            input,
            partition,
            stream: Mutex::new(Some(stream)),
        }
    }
}

impl DisplayAs for ReplayExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ReplayExec: partition {}", self.partition)
    }
}

impl ExecutionPlan for ReplayExec {
    fn name(&self) -> &str {
        "ReplayExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&PhysicalExprRef) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let taken = self
            .stream
            .lock()
            .map_err(|_| DataFusionError::Internal("ReplayExec lock poisoned".into()))?
            .take();
        match taken {
            Some(s) if partition == self.partition => Ok(s),
            _ => Err(DataFusionError::Internal(format!(
                "ReplayExec replays partition {} once (asked for {partition})",
                self.partition
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    use super::RunAggregateRule;

    /// `rows` rows of (host, t, v): hosts in blocks when `sorted`, else interleaved.
    fn table(rows: usize, sorted: bool) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8, false),
            Field::new("t", DataType::Int64, false),
            Field::new("v", DataType::Float64, true),
        ]));
        let hosts = 3;
        let order: Vec<usize> = if sorted {
            (0..rows).collect()
        } else {
            (0..rows)
                .map(|i| (i % hosts) * (rows / hosts) + i / hosts)
                .collect()
        };
        let host: Vec<String> = order
            .iter()
            .map(|&i| format!("h{}", i / (rows / hosts)))
            .collect();
        let t: Vec<i64> = order.iter().map(|&i| (i % (rows / hosts)) as i64).collect();
        let v: Vec<Option<f64>> = order
            .iter()
            .map(|&i| (i % 7 != 0).then_some((i * 37 % 101) as f64 / 4.0))
            .collect();
        // Batches of 1000 rows, so runs cross batch boundaries.
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(host)),
                Arc::new(Int64Array::from(t)),
                Arc::new(Float64Array::from(v)),
            ],
        )
        .unwrap();
        let batches = (0..rows)
            .step_by(1000)
            .map(|s| batch.slice(s, 1000.min(rows - s)))
            .collect();
        MemTable::try_new(schema, vec![batches]).unwrap()
    }

    async fn run(with_rule: bool, sorted: bool, sql: &str) -> (String, String) {
        let mut builder = SessionStateBuilder::new().with_default_features();
        if with_rule {
            let mut rules = SessionStateBuilder::new()
                .with_default_features()
                .build()
                .physical_optimizers()
                .to_vec();
            rules.push(Arc::new(RunAggregateRule));
            builder = builder.with_physical_optimizer_rules(rules);
        }
        let ctx = SessionContext::new_with_state(builder.build());
        ctx.register_table("m", Arc::new(table(30_000, sorted)))
            .unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let plan_text = displayable(plan.as_ref()).indent(false).to_string();
        let out = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        (plan_text, out)
    }

    const QUERY: &str = "SELECT host, t / 100 AS b, count(*), count(v), sum(v), avg(v), min(v), \
                         max(v), first_value(v ORDER BY t), last_value(v ORDER BY t) \
                         FROM m GROUP BY host, t / 100 ORDER BY host, b";

    #[tokio::test]
    async fn folding_runs_answers_as_the_hash_aggregate_does() {
        // Runs of 100 rows (spread over lanes) and of 32 rows (one group each); and an
        // aggregate whose answer depends on row order, which keeps each run in one group.
        let ordered = "SELECT host, t / 100 AS b, array_agg(v), count(*) FROM m \
                       GROUP BY host, t / 100 ORDER BY host, b";
        for query in [
            QUERY.to_owned(),
            QUERY.replace("t / 100", "t / 32"),
            ordered.to_owned(),
        ] {
            let (plain_plan, expected) = run(false, true, &query).await;
            assert!(!plain_plan.contains("RunAggregateExec"));
            let before = super::FOLDED_BATCHES.load(std::sync::atomic::Ordering::Relaxed);
            let (plan, folded) = run(true, true, &query).await;
            assert!(plan.contains("RunAggregateExec"), "{plan}");
            assert!(
                super::FOLDED_BATCHES.load(std::sync::atomic::Ordering::Relaxed) >= before + 30
            );
            assert_eq!(folded, expected, "{query}");
        }
    }

    #[tokio::test]
    async fn interleaved_keys_fall_back_to_the_hash_aggregate_with_the_same_answer() {
        let (_, expected) = run(false, false, QUERY).await;
        let (plan, answer) = run(true, false, QUERY).await;
        assert!(plan.contains("RunAggregateExec"), "{plan}");
        assert_eq!(answer, expected);
        let (_, sorted) = run(false, true, QUERY).await;
        assert_eq!(
            answer, sorted,
            "the data is the same, only its order differs"
        );
    }
}
