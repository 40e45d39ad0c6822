//! `first_value(x ORDER BY time)` and `last_value(x ORDER BY time)` with a grouped accumulator
//! that compares 64-bit keys.
//!
//! These are the open and close of every OHLC bar. DataFusion's grouped first/last accumulator
//! compares rows through a dynamic lexicographic comparator and, for every batch, walks a buffer as
//! long as the number of groups; with one group per symbol and minute (hundreds of thousands) that
//! walk dominated the query. When the aggregate is ordered by one non-nullable `Int64` or
//! timestamp expression and returns a primitive number, this module's accumulator keeps, per
//! group, the best key and its value in plain vectors. Every other form goes to DataFusion's own
//! implementation, which these functions wrap and otherwise delegate to (same names, same state
//! layout, so partial and final aggregation interoperate).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanArray, Int64Array, PrimitiveArray,
};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    DataType, FieldRef, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt64Type,
};
use datafusion::common::{internal_err, Result};
use datafusion::functions_aggregate::first_last::{FirstValue, LastValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator,
    ReversedUDAF, Signature,
};

/// The two functions, to register in place of DataFusion's.
pub fn udafs() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(FirstLast::new(true, false)),
        AggregateUDF::new_from_impl(FirstLast::new(false, false)),
    ]
}

/// `first_value` (`pick_first`) or `last_value`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FirstLast {
    pick_first: bool,
    /// The input arrives in the aggregate's order (DataFusion's "beneficial ordering").
    pre_ordered: bool,
    signature: Signature,
}

impl FirstLast {
    fn new(pick_first: bool, pre_ordered: bool) -> Self {
        let signature = if pick_first {
            FirstValue::new().signature().clone()
        } else {
            LastValue::new().signature().clone()
        };
        FirstLast {
            pick_first,
            pre_ordered,
            signature,
        }
    }

    /// DataFusion's implementation in the same state.
    fn inner(&self) -> Result<Arc<dyn AggregateUDFImpl>> {
        let base: Arc<dyn AggregateUDFImpl> = if self.pick_first {
            Arc::new(FirstValue::new())
        } else {
            Arc::new(LastValue::new())
        };
        Ok(base
            .clone()
            .with_beneficial_ordering(self.pre_ordered)?
            .unwrap_or(base))
    }
}

/// What the fast accumulator needs: the ordering key's type and direction.
struct FastPath {
    order_type: DataType,
    descending: bool,
}

fn fast_path(args: &AccumulatorArgs) -> Option<FastPath> {
    if args.is_distinct || args.order_bys.len() != 1 {
        return None;
    }
    let order = &args.order_bys[0];
    let order_type = order.expr.data_type(args.schema).ok()?;
    let integer_key = matches!(order_type, DataType::Int64 | DataType::Timestamp(_, _));
    if !integer_key || order.expr.nullable(args.schema).unwrap_or(true) {
        return None;
    }
    if !matches!(
        args.return_field.data_type(),
        DataType::Float64 | DataType::Int64 | DataType::UInt64
    ) {
        return None;
    }
    Some(FastPath {
        order_type,
        descending: order.options.descending,
    })
}

impl AggregateUDFImpl for FirstLast {
    fn name(&self) -> &str {
        if self.pick_first {
            "first_value"
        } else {
            "last_value"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner()?.return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner()?.return_field(arg_fields)
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner()?.accumulator(acc_args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner()?.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        fast_path(&args).is_some()
            || self
                .inner()
                .is_ok_and(|inner| inner.groups_accumulator_supported(args))
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let Some(fast) = fast_path(&args) else {
            return self.inner()?.create_groups_accumulator(args);
        };
        let want_min = self.pick_first != fast.descending;
        let value_type = args.return_field.data_type().clone();
        fn keyed<T: ArrowPrimitiveType + Send + Sync>(
            want_min: bool,
            ignore_nulls: bool,
            value_type: DataType,
            order_type: DataType,
        ) -> Box<dyn GroupsAccumulator> {
            Box::new(KeyedFirstLast::<T>::new(
                want_min,
                ignore_nulls,
                value_type,
                order_type,
            ))
        }
        let make = match value_type {
            DataType::Float64 => keyed::<Float64Type>,
            DataType::Int64 => keyed::<Int64Type>,
            DataType::UInt64 => keyed::<UInt64Type>,
            other => return internal_err!("first/last fast path for {other}"),
        };
        Ok(make(
            want_min,
            args.ignore_nulls,
            value_type,
            fast.order_type,
        ))
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        Ok(Some(Arc::new(FirstLast::new(
            self.pick_first,
            beneficial_ordering,
        ))))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Beneficial
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Reversed(Arc::new(AggregateUDF::new_from_impl(FirstLast::new(
            !self.pick_first,
            false,
        ))))
    }

    fn supports_null_handling_clause(&self) -> bool {
        true
    }

    fn documentation(&self) -> Option<&Documentation> {
        None
    }
}

/// The ordering keys of an `Int64` or timestamp array, as stored.
fn i64_keys(array: &ArrayRef) -> Option<&[i64]> {
    Some(match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().values(),
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive::<TimestampSecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            array.as_primitive::<TimestampMicrosecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive::<TimestampNanosecondType>().values()
        }
        _ => return None,
    })
}

/// Per group: whether a row was taken, its ordering key, its value and whether that was non-NULL.
struct KeyedFirstLast<T: ArrowPrimitiveType> {
    /// Keep the smallest key (first by ascending order), else the largest.
    want_min: bool,
    ignore_nulls: bool,
    value_type: DataType,
    order_type: DataType,
    set: Vec<bool>,
    keys: Vec<i64>,
    values: Vec<T::Native>,
    valid: Vec<bool>,
}

impl<T: ArrowPrimitiveType> KeyedFirstLast<T> {
    fn new(want_min: bool, ignore_nulls: bool, value_type: DataType, order_type: DataType) -> Self {
        KeyedFirstLast {
            want_min,
            ignore_nulls,
            value_type,
            order_type,
            set: Vec::new(),
            keys: Vec::new(),
            values: Vec::new(),
            valid: Vec::new(),
        }
    }

    fn resize(&mut self, groups: usize) {
        self.set.resize(groups, false);
        self.keys.resize(groups, 0);
        self.values.resize(groups, T::Native::default());
        self.valid.resize(groups, false);
    }

    /// Folds rows into their groups; `is_set` (merging partial states) skips rows never set.
    fn fold(
        &mut self,
        values: &ArrayRef,
        keys: &ArrayRef,
        is_set: Option<&BooleanArray>,
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<()> {
        let Some(values) = values.as_primitive_opt::<T>() else {
            return internal_err!("first/last: values of type {}", values.data_type());
        };
        let Some(keys) = i64_keys(keys) else {
            return internal_err!("first/last: ordering of type {}", keys.data_type());
        };
        let passes = |mask: Option<&BooleanArray>, row: usize| {
            mask.is_none_or(|m| m.is_valid(row) && m.value(row))
        };
        let raw = values.values();
        for (row, &group) in group_indices.iter().enumerate() {
            if !passes(opt_filter, row) || !passes(is_set, row) {
                continue;
            }
            let valid = values.is_valid(row);
            if self.ignore_nulls && !valid {
                continue;
            }
            let key = keys[row];
            let better = !self.set[group]
                || if self.want_min {
                    key < self.keys[group]
                } else {
                    key > self.keys[group]
                };
            if better {
                self.set[group] = true;
                self.keys[group] = key;
                self.values[group] = raw[row];
                self.valid[group] = valid;
            }
        }
        Ok(())
    }

    /// Values of the emitted groups (NULL where unset or NULL), and their keys and set flags.
    fn take(&mut self, emit_to: EmitTo) -> (ArrayRef, Vec<i64>, Vec<bool>) {
        let set = emit_to.take_needed(&mut self.set);
        let keys = emit_to.take_needed(&mut self.keys);
        let values = emit_to.take_needed(&mut self.values);
        let valid = emit_to.take_needed(&mut self.valid);
        let nulls = NullBuffer::from(
            valid
                .iter()
                .zip(&set)
                .map(|(v, s)| *v && *s)
                .collect::<Vec<bool>>(),
        );
        let array = PrimitiveArray::<T>::new(ScalarBuffer::from(values), Some(nulls))
            .with_data_type(self.value_type.clone());
        (Arc::new(array), keys, set)
    }
}

impl<T: ArrowPrimitiveType + Send + Sync> GroupsAccumulator for KeyedFirstLast<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        self.fold(&values[0], &values[1], None, group_indices, opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.take(emit_to).0)
    }

    /// The layout of DataFusion's state: value, ordering key, is-set flag.
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (values, keys, set) = self.take(emit_to);
        let keys: ArrayRef = Arc::new(Int64Array::from(keys));
        let keys = arrow::compute::cast(&keys, &self.order_type)?;
        Ok(vec![values, keys, Arc::new(BooleanArray::from(set))])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let Some(is_set) = values.get(2).and_then(|a| a.as_boolean_opt()) else {
            return internal_err!("first/last: partial state without its is-set flags");
        };
        self.fold(&values[0], &values[1], Some(is_set), group_indices, None)
    }

    /// Each row as its own partial state (when partial aggregation is skipped).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let rows = values[0].len();
        let set: BooleanArray = (0..rows)
            .map(|row| {
                let passes = opt_filter.is_none_or(|m| m.is_valid(row) && m.value(row));
                Some(passes && !(self.ignore_nulls && values[0].is_null(row)))
            })
            .collect();
        Ok(vec![values[0].clone(), values[1].clone(), Arc::new(set)])
    }

    fn size(&self) -> usize {
        self.set.capacity()
            + self.valid.capacity()
            + self.keys.capacity() * std::mem::size_of::<i64>()
            + self.values.capacity() * std::mem::size_of::<T::Native>()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, TimestampNanosecondArray};
    use arrow::compute::SortOptions;
    use arrow::datatypes::{Field, Schema};
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_expr::PhysicalSortExpr;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("price", DataType::Float64, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("maybe_time", DataType::Int64, true),
            Field::new("sym", DataType::Utf8, true),
        ])
    }

    fn takes_fast_path(order_by: &[(&str, usize)], ret: DataType, distinct: bool) -> bool {
        let schema = schema();
        let sorts: Vec<PhysicalSortExpr> = order_by
            .iter()
            .map(|(name, i)| PhysicalSortExpr {
                expr: Arc::new(Column::new(name, *i)),
                options: SortOptions::default(),
            })
            .collect();
        let exprs: Vec<Arc<dyn datafusion::physical_expr::PhysicalExpr>> =
            vec![Arc::new(Column::new("price", 0))];
        let fields: Vec<FieldRef> = vec![Arc::new(schema.field(0).clone())];
        let args = AccumulatorArgs {
            return_field: Arc::new(Field::new("f", ret, true)),
            schema: &schema,
            ignore_nulls: false,
            order_bys: &sorts,
            is_reversed: false,
            name: "f",
            is_distinct: distinct,
            exprs: &exprs,
            expr_fields: &fields,
        };
        fast_path(&args).is_some()
    }

    #[test]
    fn only_one_non_nullable_integer_or_time_key_and_a_number_take_the_fast_path() {
        assert!(takes_fast_path(&[("time", 1)], DataType::Float64, false));
        assert!(!takes_fast_path(
            &[("time", 1), ("sym", 3)],
            DataType::Float64,
            false
        ));
        assert!(!takes_fast_path(
            &[("maybe_time", 2)],
            DataType::Float64,
            false
        ));
        assert!(!takes_fast_path(&[("sym", 3)], DataType::Float64, false));
        assert!(!takes_fast_path(&[], DataType::Float64, false));
        assert!(!takes_fast_path(&[("time", 1)], DataType::Utf8, false));
        assert!(!takes_fast_path(&[("time", 1)], DataType::Float64, true));
    }

    fn batch(prices: Vec<Option<f64>>, times: Vec<i64>) -> Vec<ArrayRef> {
        vec![
            Arc::new(Float64Array::from(prices)),
            Arc::new(TimestampNanosecondArray::from(times)),
        ]
    }

    fn floats(a: &ArrayRef) -> Vec<Option<f64>> {
        a.as_primitive::<Float64Type>().iter().collect()
    }

    #[test]
    fn partial_states_merge_to_the_earliest_and_latest_rows() {
        let order = DataType::Timestamp(TimeUnit::Nanosecond, None);
        let new = |want_min, ignore_nulls| {
            KeyedFirstLast::<Float64Type>::new(
                want_min,
                ignore_nulls,
                DataType::Float64,
                order.clone(),
            )
        };
        // Two partials over groups 0..3 (group 2 never sees a row), merged into a final.
        let mut first_a = new(true, false);
        let mut first_b = new(true, false);
        let mut last_known = new(false, true);
        let b1 = batch(vec![Some(1.0), Some(2.0), None], vec![30, 10, 5]);
        let b2 = batch(vec![Some(3.0), Some(4.0), Some(5.0)], vec![20, 40, 1]);
        first_a.update_batch(&b1, &[0, 0, 1], None, 3).unwrap();
        first_b.update_batch(&b2, &[0, 1, 1], None, 3).unwrap();
        last_known.update_batch(&b1, &[0, 0, 1], None, 3).unwrap();
        last_known.update_batch(&b2, &[0, 1, 1], None, 3).unwrap();

        let mut first = new(true, false);
        for partial in [&mut first_a, &mut first_b] {
            let state = partial.state(EmitTo::All).unwrap();
            assert_eq!(state[1].data_type(), &order, "the ordering keeps its type");
            first.merge_batch(&state, &[0, 1, 2], 3).unwrap();
        }
        // Group 0: times 30, 10, 20 -> 10 (2.0); group 1: 5 (NULL), 40, 1 -> 1 (5.0).
        assert_eq!(
            floats(&first.evaluate(EmitTo::All).unwrap()),
            vec![Some(2.0), Some(5.0), None]
        );
        // Latest non-NULL: group 0 at 30 (1.0), group 1 at 40 (4.0).
        assert_eq!(
            floats(&last_known.evaluate(EmitTo::First(2)).unwrap()),
            vec![Some(1.0), Some(4.0)]
        );
        assert_eq!(
            floats(&last_known.evaluate(EmitTo::All).unwrap()),
            vec![None]
        );

        // A filter and NULL values: the earliest row passing the filter wins even when NULL.
        let mut filtered = new(true, false);
        let mask = BooleanArray::from(vec![true, false, true]);
        filtered
            .update_batch(&b1, &[0, 0, 0], Some(&mask), 1)
            .unwrap();
        assert_eq!(floats(&filtered.evaluate(EmitTo::All).unwrap()), vec![None]);
        let rows = filtered.convert_to_state(&b1, Some(&mask)).unwrap();
        assert_eq!(
            rows[2].as_boolean().iter().collect::<Vec<_>>(),
            vec![Some(true), Some(false), Some(true)]
        );
    }
}
