//! Aggregates evaluated again and again (over a window): [`BoundedUdaf`] and its accumulators,
//! which bound the results of the recent evaluations of one accumulator.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::{AggregateFunctionParams, WindowFunctionParams};
use datafusion::logical_expr::function::AggregateFunctionSimplification;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature, StatisticsArgs,
};

use super::sizes::scalar_bytes;
use super::Bounds;

/// The aggregates whose result grows with their input. Grouped or not, their state is reserved
/// in the memory pool by DataFusion's aggregate operators; over a window (`string_agg(s, ',')
/// OVER (ORDER BY t)`) the same accumulator is evaluated once per row, and the results (each as
/// large as the rows so far) are not accounted: quadratic in the partition. [`BoundedUdaf`]
/// bounds them.
pub const BOUNDED_AGGREGATES: &[&str] = &[
    "array_agg",
    "string_agg",
    "map_agg",
    "multimap_agg",
    "histogram",
    "map_union",
    "create_time_series",
    "hg_max_n",
    "hg_min_n",
];

/// Results of the evaluations of one accumulator that count together: about one output batch.
const RECENT_EVALUATIONS: usize = 8192;

/// An aggregate function whose accumulators, when evaluated more than once (a window), may
/// together build at most [`Bounds::value_bytes`] over any [`RECENT_EVALUATIONS`] evaluations.
/// A single evaluation (a group's result) is left to the memory pool.
#[derive(Debug, Clone)]
pub struct BoundedUdaf {
    inner: Arc<AggregateUDF>,
    bounds: Bounds,
}

impl PartialEq for BoundedUdaf {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.bounds.value_bytes == other.bounds.value_bytes
    }
}

impl Eq for BoundedUdaf {}

impl Hash for BoundedUdaf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.bounds.value_bytes.hash(state);
    }
}

impl BoundedUdaf {
    /// `udaf` bounded, when it is one of [`BOUNDED_AGGREGATES`] and not bounded already.
    pub fn wrap(udaf: &Arc<AggregateUDF>, bounds: &Bounds) -> Option<Arc<AggregateUDF>> {
        if udaf.inner().is::<BoundedUdaf>() || !BOUNDED_AGGREGATES.contains(&udaf.name()) {
            return None;
        }
        Some(Arc::new(AggregateUDF::new_from_impl(BoundedUdaf {
            inner: Arc::clone(udaf),
            bounds: bounds.clone(),
        })))
    }

    /// The aggregate wrapped.
    pub fn inner(&self) -> &Arc<AggregateUDF> {
        &self.inner
    }

    fn bounded(&self, inner: Box<dyn Accumulator>) -> Box<dyn Accumulator> {
        Box::new(BoundedAccumulator {
            inner,
            name: self.inner.name().to_string(),
            bounds: self.bounds.clone(),
            recent: std::collections::VecDeque::new(),
            recent_bytes: 0,
            evaluations: 0,
        })
    }

    fn rewrapped(&self, udaf: Arc<AggregateUDF>) -> Arc<AggregateUDF> {
        BoundedUdaf::wrap(&udaf, &self.bounds).unwrap_or(udaf)
    }
}

impl AggregateUDFImpl for BoundedUdaf {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, params: &AggregateFunctionParams) -> DfResult<String> {
        self.inner.inner().schema_name(params)
    }

    fn human_display(&self, params: &AggregateFunctionParams) -> DfResult<String> {
        self.inner.inner().human_display(params)
    }

    fn window_function_schema_name(&self, params: &WindowFunctionParams) -> DfResult<String> {
        self.inner.inner().window_function_schema_name(params)
    }

    fn display_name(&self, params: &AggregateFunctionParams) -> DfResult<String> {
        self.inner.inner().display_name(params)
    }

    fn window_function_display_name(&self, params: &WindowFunctionParams) -> DfResult<String> {
        self.inner.inner().window_function_display_name(params)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> DfResult<FieldRef> {
        self.inner.inner().return_field(arg_fields)
    }

    fn is_nullable(&self) -> bool {
        self.inner.inner().is_nullable()
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(self.bounded(self.inner.inner().accumulator(acc_args)?))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        self.inner.inner().state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        self.inner.inner().create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(self.bounded(self.inner.inner().create_sliding_accumulator(args)?))
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> DfResult<Option<Arc<dyn AggregateUDFImpl>>> {
        let Some(inner) =
            Arc::clone(self.inner.inner()).with_beneficial_ordering(beneficial_ordering)?
        else {
            return Ok(None);
        };
        Ok(Some(Arc::new(BoundedUdaf {
            inner: Arc::new(AggregateUDF::new_from_shared_impl(inner)),
            bounds: self.bounds.clone(),
        })))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.inner().order_sensitivity()
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner.inner().simplify()
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        match self.inner.inner().reverse_expr() {
            ReversedUDAF::Reversed(udaf) => ReversedUDAF::Reversed(self.rewrapped(udaf)),
            other => other,
        }
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn is_descending(&self) -> Option<bool> {
        self.inner.inner().is_descending()
    }

    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.inner.inner().value_from_stats(statistics_args)
    }

    fn default_value(&self, data_type: &DataType) -> DfResult<ScalarValue> {
        self.inner.inner().default_value(data_type)
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner.inner().supports_null_handling_clause()
    }

    fn supports_within_group_clause(&self) -> bool {
        self.inner.inner().supports_within_group_clause()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.inner().documentation()
    }
}

/// An accumulator whose repeated evaluations are bounded ([`BoundedUdaf`]).
#[derive(Debug)]
struct BoundedAccumulator {
    inner: Box<dyn Accumulator>,
    name: String,
    bounds: Bounds,
    recent: std::collections::VecDeque<usize>,
    recent_bytes: usize,
    evaluations: u64,
}

impl Accumulator for BoundedAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.inner.update_batch(values)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let value = self.inner.evaluate()?;
        self.evaluations += 1;
        let bytes = scalar_bytes(&value);
        self.recent.push_back(bytes);
        self.recent_bytes = self.recent_bytes.saturating_add(bytes);
        if self.recent.len() > RECENT_EVALUATIONS {
            let old = self.recent.pop_front().unwrap_or(0);
            self.recent_bytes = self.recent_bytes.saturating_sub(old);
        }
        if self.evaluations > 1 && self.recent_bytes > self.bounds.value_bytes {
            return Err(self.bounds.too_large(
                &format!("{} over a window", self.name),
                self.recent_bytes as u128,
            ));
        }
        Ok(value)
    }

    fn size(&self) -> usize {
        self.inner.size() + self.recent.len() * std::mem::size_of::<usize>()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}
