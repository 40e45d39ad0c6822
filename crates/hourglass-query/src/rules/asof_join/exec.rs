//! The as-of join operator: the right input collected once (within the query memory pool) and
//! indexed as runs of rows per key sorted by time; each left batch is then matched row by row
//! with a binary search in its key's run.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, RecordBatchOptions};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExprRef};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

/// Which right rows may match a left row, by their times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `left >= right`: the latest right row at or before the left row.
    AtOrBefore,
    /// `left > right`: the latest right row strictly before.
    Before,
    /// `left <= right`: the earliest right row at or after.
    AtOrAfter,
    /// `left < right`: the earliest right row strictly after.
    After,
}

impl MatchOp {
    /// The position in `times` (sorted ascending) of the match for `t`, if any.
    fn search(self, times: &[i64], t: i64) -> Option<usize> {
        match self {
            MatchOp::AtOrBefore => times.partition_point(|&r| r <= t).checked_sub(1),
            MatchOp::Before => times.partition_point(|&r| r < t).checked_sub(1),
            MatchOp::AtOrAfter => Some(times.partition_point(|&r| r < t)),
            MatchOp::After => Some(times.partition_point(|&r| r <= t)),
        }
        .filter(|&i| i < times.len())
    }

    /// [`MatchOp::search`] by looking at every row: the nearest allowed time, and among rows tied
    /// at it the one the binary search picks (the last for a match at or before, the first for
    /// one at or after).
    fn scan(self, times: &[i64], t: i64) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, &r) in times.iter().enumerate() {
            let (allowed, better) = match self {
                MatchOp::AtOrBefore => (r <= t, best.is_none_or(|b| r >= times[b])),
                MatchOp::Before => (r < t, best.is_none_or(|b| r >= times[b])),
                MatchOp::AtOrAfter => (r >= t, best.is_none_or(|b| r < times[b])),
                MatchOp::After => (r > t, best.is_none_or(|b| r < times[b])),
            };
            if allowed && better {
                best = Some(i);
            }
        }
        best
    }

    fn symbol(self) -> &'static str {
        match self {
            MatchOp::AtOrBefore => ">=",
            MatchOp::Before => ">",
            MatchOp::AtOrAfter => "<=",
            MatchOp::After => "<",
        }
    }
}

/// What an as-of join matches on, with expressions over each side's own schema.
#[derive(Debug, Clone)]
pub struct AsOfSpec {
    /// Equality keys: (left expression, right expression).
    pub keys: Vec<(PhysicalExprRef, PhysicalExprRef)>,
    pub left_time: PhysicalExprRef,
    pub right_time: PhysicalExprRef,
    pub op: MatchOp,
    /// Left rows without a match are kept with NULLs (LEFT); else dropped (INNER).
    pub keep_unmatched: bool,
    /// Columns of `left ++ right` to output, if not all of them.
    pub projection: Option<Vec<usize>>,
    /// Find matches by scanning every row of the key ([`MatchOp::scan`]) instead of the binary
    /// search: the reference the rule is checked against when it is switched off.
    pub linear_probe: bool,
}

/// The time types a match condition may compare: they order as their `Int64` values.
pub fn is_supported_time_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
    )
}

fn times_of(values: ArrayRef) -> Result<Int64Array> {
    let values = if values.data_type() == &DataType::Int64 {
        values
    } else {
        cast(&values, &DataType::Int64)?
    };
    Ok(values.as_primitive::<Int64Type>().clone())
}

/// The as-of join plan node.
#[derive(Debug)]
pub struct AsOfJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    spec: Arc<AsOfSpec>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// The indexed right side, built by the first partition that needs it.
    build: Arc<OnceCell<Arc<BuildSide>>>,
}

impl AsOfJoinExec {
    /// An as-of join producing `schema` (the schema of the join it replaces).
    pub fn new(
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
        spec: AsOfSpec,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(left.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        AsOfJoinExec {
            left,
            right,
            spec: Arc::new(spec),
            schema,
            properties: Arc::new(properties),
            build: Arc::new(OnceCell::new()),
        }
    }
}

impl DisplayAs for AsOfJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self
            .spec
            .keys
            .iter()
            .map(|(l, r)| format!("({l}, {r})"))
            .collect();
        write!(
            f,
            "AsOfJoinExec: join_type={}, match=[{} {} {}], on=[{}]",
            if self.spec.keep_unmatched {
                "Left"
            } else {
                "Inner"
            },
            self.spec.left_time,
            self.spec.op.symbol(),
            self.spec.right_time,
            keys.join(", ")
        )?;
        if let Some(p) = &self.spec.projection {
            write!(f, ", projection={p:?}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for AsOfJoinExec {
    fn name(&self) -> &str {
        "AsOfJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![
            Distribution::UnspecifiedDistribution,
            Distribution::SinglePartition,
        ]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&PhysicalExprRef) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let spec = &self.spec;
        let exprs = spec
            .keys
            .iter()
            .flat_map(|(l, r)| [l, r])
            .chain([&spec.left_time, &spec.right_time]);
        for e in exprs {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [left, right]: [Arc<dyn ExecutionPlan>; 2] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("AsOfJoinExec has two children".into()))?;
        Ok(Arc::new(AsOfJoinExec::new(
            left,
            right,
            (*self.spec).clone(),
            self.schema.clone(),
        )))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(
                datafusion::physical_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let left = self.left.execute(partition, context.clone())?;
        let right = self.right.clone();
        let build = self.build.clone();
        let spec = self.spec.clone();
        let schema = self.schema.clone();
        let out_schema = schema.clone();
        let joined = futures::stream::once(async move {
            let built = build
                .get_or_try_init(|| BuildSide::collect(right, &spec, context))
                .await?
                .clone();
            Ok::<_, DataFusionError>(left.map(move |batch| {
                let batch = batch?;
                probe(&spec, &built, &batch, &out_schema)
            }))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, joined)))
    }
}

/// A key's rows: a range of `BuildSide::times` and `BuildSide::rows`.
type Run = (usize, usize);

/// The right input, indexed: for each key, a run of (time, row) sorted by time.
#[derive(Debug)]
struct BuildSide {
    batch: RecordBatch,
    /// Encodes keys of both sides (right's key types), if there are keys.
    converter: Option<RowConverter>,
    /// The right keys' types, which left keys are cast to.
    key_types: Vec<DataType>,
    /// Key bytes to a range of `times`/`rows`.
    runs: HashMap<Box<[u8]>, Run>,
    times: Vec<i64>,
    rows: Vec<u32>,
    _reservation: MemoryReservation,
}

impl BuildSide {
    async fn collect(
        right: Arc<dyn ExecutionPlan>,
        spec: &AsOfSpec,
        context: Arc<TaskContext>,
    ) -> Result<Arc<BuildSide>> {
        let reservation =
            MemoryConsumer::new("AsOfJoinExec[build]").register(context.memory_pool());
        let schema = right.schema();
        let right: Arc<dyn ExecutionPlan> = if right.output_partitioning().partition_count() > 1 {
            Arc::new(CoalescePartitionsExec::new(right))
        } else {
            right
        };
        let mut stream = right.execute(0, context)?;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            reservation.try_grow(batch.get_array_memory_size())?;
            batches.push(batch);
        }
        let batch = concat_batches(&schema, &batches)?;
        drop(batches);
        let n = batch.num_rows();
        if n > u32::MAX as usize {
            return internal_err!("AsOfJoinExec: the right side has more than 2^32 rows");
        }
        let times = times_of(spec.right_time.evaluate(&batch)?.into_array(n)?)?;
        let key_arrays = spec
            .keys
            .iter()
            .map(|(_, r)| r.evaluate(&batch).and_then(|v| v.into_array(n)))
            .collect::<Result<Vec<_>>>()?;
        let converter = (!key_arrays.is_empty())
            .then(|| {
                let fields = key_arrays
                    .iter()
                    .map(|a| SortField::new(a.data_type().clone()))
                    .collect();
                RowConverter::new(fields)
            })
            .transpose()?;
        let key_rows = converter
            .as_ref()
            .map(|c| c.convert_columns(&key_arrays))
            .transpose()?;
        // (key id, time, row) of every row that can match; without keys all share the empty key,
        // id 0, with no lookup per row.
        let mut ids: HashMap<&[u8], u32> = HashMap::new();
        if key_rows.is_none() {
            ids.insert(&[], 0);
        }
        let mut entries: Vec<(u32, i64, u32)> = Vec::with_capacity(n);
        for row in 0..n {
            if !times.is_valid(row) || key_arrays.iter().any(|k| k.is_null(row)) {
                continue;
            }
            let id = match &key_rows {
                None => 0,
                Some(keys) => {
                    let next = ids.len() as u32;
                    *ids.entry(keys.row(row).data()).or_insert(next)
                }
            };
            entries.push((id, times.value(row), row as u32));
        }
        entries.sort_unstable();
        let mut ranges: Vec<Run> = vec![(0, 0); ids.len()];
        for (i, &(id, _, _)) in entries.iter().enumerate() {
            let run = &mut ranges[id as usize];
            if run.1 == 0 {
                run.0 = i;
            }
            run.1 = i + 1;
        }
        let runs: HashMap<Box<[u8]>, Run> = ids
            .into_iter()
            .map(|(key, id)| (Box::from(key), ranges[id as usize]))
            .collect();
        let (times, rows): (Vec<i64>, Vec<u32>) = entries.iter().map(|e| (e.1, e.2)).unzip();
        reservation.try_grow(
            times.capacity() * 8
                + rows.capacity() * 4
                + runs.keys().map(|k| k.len() + 40).sum::<usize>(),
        )?;
        Ok(Arc::new(BuildSide {
            batch,
            converter,
            key_types: key_arrays.iter().map(|a| a.data_type().clone()).collect(),
            runs,
            times,
            rows,
            _reservation: reservation,
        }))
    }

    /// The run of `key` (the only run when the join has no keys).
    fn run(&self, key: &[u8]) -> Option<Run> {
        self.runs.get(key).copied()
    }
}

/// Joins one left batch with the build side.
fn probe(
    spec: &AsOfSpec,
    built: &BuildSide,
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let times = times_of(spec.left_time.evaluate(batch)?.into_array(n)?)?;
    let keys: Option<Rows> = match &built.converter {
        None => None,
        Some(converter) => {
            let arrays = spec
                .keys
                .iter()
                .zip(&built.key_types)
                .map(|((l, _), t)| {
                    let a = l.evaluate(batch)?.into_array(n)?;
                    Ok(if a.data_type() == t { a } else { cast(&a, t)? })
                })
                .collect::<Result<Vec<_>>>()?;
            Some(converter.convert_columns(&arrays)?)
        }
    };
    let mut matches: Vec<Option<u32>> = Vec::with_capacity(n);
    // Without keys every row searches the one run; with keys, consecutive rows often share one.
    let unkeyed = built.run(&[]);
    let mut last: Option<(&[u8], Option<Run>)> = None;
    for row in 0..n {
        if times.is_null(row) {
            matches.push(None);
            continue;
        }
        let run = match &keys {
            None => unkeyed,
            Some(keys) => {
                let key = keys.row(row).data();
                match last {
                    Some((k, run)) if k == key => run,
                    _ => {
                        let run = built.run(key);
                        last = Some((key, run));
                        run
                    }
                }
            }
        };
        let found = run.and_then(|(start, end)| {
            let run_times = &built.times[start..end];
            let t = times.value(row);
            if spec.linear_probe {
                spec.op.scan(run_times, t)
            } else {
                spec.op.search(run_times, t)
            }
            .map(|i| built.rows[start + i])
        });
        matches.push(found);
    }
    let (left_columns, right_rows): (Vec<ArrayRef>, UInt32Array) = if spec.keep_unmatched {
        (batch.columns().to_vec(), matches.into_iter().collect())
    } else {
        let (left_rows, right_rows): (Vec<u32>, Vec<u32>) = matches
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|r| (i as u32, r)))
            .unzip();
        let left_rows = UInt32Array::from(left_rows);
        let columns = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &left_rows, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        (columns, UInt32Array::from(right_rows))
    };
    let rows = right_rows.len();
    let right_columns = built
        .batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &right_rows, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut columns: Vec<ArrayRef> = left_columns.into_iter().chain(right_columns).collect();
    if let Some(p) = &spec.projection {
        columns = p.iter().map(|&i| columns[i].clone()).collect();
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::MatchOp;

    const TIMES: [i64; 5] = [10, 20, 20, 30, 40];

    /// The binary search's answer, checked against the reference scan's.
    fn all(op: MatchOp, t: i64) -> Option<usize> {
        let found = op.search(&TIMES, t);
        assert_eq!(found, op.scan(&TIMES, t), "{op:?} at {t}");
        found
    }

    #[test]
    fn at_or_before_takes_the_last_row_at_or_before() {
        assert_eq!(all(MatchOp::AtOrBefore, 5), None);
        assert_eq!(all(MatchOp::AtOrBefore, 10), Some(0));
        assert_eq!(all(MatchOp::AtOrBefore, 20), Some(2), "the last of a tie");
        assert_eq!(all(MatchOp::AtOrBefore, 25), Some(2));
        assert_eq!(all(MatchOp::AtOrBefore, 99), Some(4));
    }

    #[test]
    fn before_excludes_equal_times() {
        assert_eq!(all(MatchOp::Before, 10), None);
        assert_eq!(all(MatchOp::Before, 20), Some(0));
        assert_eq!(all(MatchOp::Before, 21), Some(2));
        assert_eq!(all(MatchOp::Before, 41), Some(4));
    }

    #[test]
    fn at_or_after_takes_the_first_row_at_or_after() {
        assert_eq!(all(MatchOp::AtOrAfter, 5), Some(0));
        assert_eq!(all(MatchOp::AtOrAfter, 20), Some(1), "the first of a tie");
        assert_eq!(all(MatchOp::AtOrAfter, 40), Some(4));
        assert_eq!(all(MatchOp::AtOrAfter, 41), None);
    }

    #[test]
    fn after_excludes_equal_times() {
        assert_eq!(all(MatchOp::After, 10), Some(1));
        assert_eq!(all(MatchOp::After, 20), Some(3));
        assert_eq!(all(MatchOp::After, 40), None);
        assert_eq!(MatchOp::After.search(&[], 0), None);
        assert_eq!(MatchOp::AtOrBefore.search(&[], 0), None);
    }
}
