//! The lambda functions over timeseries and arrays: `filter(ts, x -> x.value > 70)` (DataFusion's
//! `array_filter` under Trino's name, registered in Timestream sessions), and here
//! `transform(ts, x -> expr)` and `reduce(ts, init, (s, x) -> expr, s -> expr)`.
//!
//! A lambda over a timeseries gets each point as a row `x` with `x.time` and `x.value` (the
//! rewrite turns those into `get_field` calls). `transform` over a timeseries keeps the points'
//! times and replaces their values (over an array it maps the elements, as Trino's does).
//! `reduce` folds each series from `init`: the input lambda is evaluated for the k-th points of
//! all rows at once, then the output lambda on the final states. Lambdas may use columns of the
//! row they are evaluated for (captures).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StructArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, HigherOrderFunctionArgs, HigherOrderReturnFieldArgs, HigherOrderSignature,
    HigherOrderUDF, HigherOrderUDFImpl, LambdaArgument, LambdaParametersProgress, ValueOrLambda,
    Volatility,
};

use super::{is_timeseries, point_fields};

pub fn udfs() -> Vec<HigherOrderUDF> {
    vec![
        HigherOrderUDF::new_from_impl(Transform {
            signature: HigherOrderSignature::exact(
                vec![ValueOrLambda::Value(()), ValueOrLambda::Lambda(())],
                Volatility::Immutable,
            ),
        }),
        HigherOrderUDF::new_from_impl(Reduce {
            signature: HigherOrderSignature::exact(
                vec![
                    ValueOrLambda::Value(()),
                    ValueOrLambda::Value(()),
                    ValueOrLambda::Lambda(()),
                    ValueOrLambda::Lambda(()),
                ],
                Volatility::Immutable,
            ),
        }),
    ]
}

fn coerce_list(name: &str, t: &DataType) -> Result<DataType> {
    Ok(match t {
        DataType::List(_) => t.clone(),
        DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
            DataType::List(f.clone())
        }
        DataType::Null => DataType::new_list(DataType::Null, true),
        other => return plan_err!("{name} expects an array or timeseries, got {other}"),
    })
}

fn element(name: &str, list: &FieldRef) -> Result<FieldRef> {
    match list.data_type() {
        DataType::List(f) => Ok(f.clone()),
        other => plan_err!("{name} expects an array or timeseries, got {other}"),
    }
}

/// The flattened elements of a list column (respecting slicing), the row of each element and
/// the per-row offsets into the flattened elements.
struct Flat {
    values: ArrayRef,
    row_of: UInt32Array,
    offsets: Vec<usize>,
}

fn flatten(list: &ListArray) -> Result<Flat> {
    let offs = list.value_offsets();
    let first = offs.first().copied().unwrap_or(0) as usize;
    let last = offs.last().copied().unwrap_or(0) as usize;
    let values = list.values().slice(first, last - first);
    let offsets: Vec<usize> = offs.iter().map(|o| *o as usize - first).collect();
    let mut row_of = Vec::with_capacity(values.len());
    for (row, w) in offsets.windows(2).enumerate() {
        let row = u32::try_from(row).map_or_else(|_| exec_err!("too many rows"), Ok)?;
        row_of.extend(std::iter::repeat_n(row, w[1] - w[0]));
    }
    Ok(Flat {
        values,
        row_of: UInt32Array::from(row_of),
        offsets,
    })
}

fn take_all(arrays: &[ArrayRef], indices: &UInt32Array) -> Result<Vec<ArrayRef>> {
    arrays
        .iter()
        .map(|a| Ok(arrow::compute::take(a, indices, None)?))
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Transform {
    signature: HigherOrderSignature,
}

impl HigherOrderUDFImpl for Transform {
    fn name(&self) -> &str {
        "transform"
    }
    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }
    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] => Ok(vec![coerce_list(self.name(), t)?]),
            _ => plan_err!("transform takes (array, lambda)"),
        }
    }
    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let Some(ValueOrLambda::Value(list)) = fields.first() else {
            return plan_err!("transform takes (array, lambda)");
        };
        Ok(LambdaParametersProgress::Complete(vec![vec![element(
            self.name(),
            list,
        )?]]))
    }
    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let [ValueOrLambda::Value(list), ValueOrLambda::Lambda(body)] = args.arg_fields else {
            return plan_err!("transform takes (array, lambda)");
        };
        let item = if is_timeseries(list.data_type()) {
            Field::new(
                "item",
                DataType::Struct(point_fields(body.data_type().clone())),
                true,
            )
        } else {
            Field::new("item", body.data_type().clone(), true)
        };
        Ok(Arc::new(Field::new(
            "",
            DataType::List(Arc::new(item)),
            list.is_nullable(),
        )))
    }
    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let [ValueOrLambda::Value(list), ValueOrLambda::Lambda(lambda)] = args.args.as_slice()
        else {
            return exec_err!("transform takes (array, lambda)");
        };
        let list = list.to_array(args.number_rows)?;
        let Some(list) = list.as_list_opt::<i32>() else {
            return exec_err!("transform expects an array, got {}", list.data_type());
        };
        let flat = flatten(list)?;
        let elements = flat.values.clone();
        let param = || Ok(elements.clone());
        let result = lambda
            .evaluate(&[&param], |caps| take_all(caps, &flat.row_of))?
            .into_array(flat.values.len())?;
        let DataType::List(item) = args.return_field.data_type() else {
            return exec_err!("transform returns a list");
        };
        let values: ArrayRef = match (is_timeseries(list.data_type()), flat.values.as_struct_opt())
        {
            (true, Some(points)) => Arc::new(StructArray::try_new(
                point_fields(result.data_type().clone()),
                vec![points.column(0).clone(), result],
                None,
            )?),
            _ => result,
        };
        let out = ListArray::try_new(
            item.clone(),
            OffsetBuffer::from_lengths(flat.offsets.windows(2).map(|w| w[1] - w[0])),
            values,
            list.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Reduce {
    signature: HigherOrderSignature,
}

fn state_param(t: &DataType) -> FieldRef {
    Arc::new(Field::new("s", t.clone(), true))
}

impl HigherOrderUDFImpl for Reduce {
    fn name(&self) -> &str {
        "reduce"
    }
    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }
    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [list, init] => Ok(vec![coerce_list(self.name(), list)?, init.clone()]),
            _ => plan_err!("reduce takes (array, initial state, (s, x) -> s, s -> result)"),
        }
    }
    /// The state's type is the input lambda's result type: planned first with the initial
    /// value's type, then again with the type the lambda produced, until they agree.
    fn lambda_parameters(
        &self,
        step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let (
            Some(ValueOrLambda::Value(list)),
            Some(ValueOrLambda::Value(init)),
            Some(ValueOrLambda::Lambda(body)),
        ) = (fields.first(), fields.get(1), fields.get(2))
        else {
            return plan_err!("reduce takes (array, initial state, (s, x) -> s, s -> result)");
        };
        let x = element(self.name(), list)?;
        let output_known = matches!(fields.get(3), Some(ValueOrLambda::Lambda(Some(_))));
        let (state_type, settled) = match body {
            None => (init.data_type().clone(), false),
            Some(b) => (
                b.data_type().clone(),
                output_known || step >= 2 || b.data_type() == init.data_type(),
            ),
        };
        let params = vec![state_param(&state_type), x];
        if settled {
            Ok(LambdaParametersProgress::Complete(vec![
                params,
                vec![state_param(&state_type)],
            ]))
        } else {
            Ok(LambdaParametersProgress::Partial(vec![Some(params), None]))
        }
    }
    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        match args.arg_fields.get(3) {
            Some(ValueOrLambda::Lambda(out)) => {
                Ok(Arc::new(Field::new("", out.data_type().clone(), true)))
            }
            _ => plan_err!("reduce takes (array, initial state, (s, x) -> s, s -> result)"),
        }
    }
    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let [ValueOrLambda::Value(list), ValueOrLambda::Value(init), ValueOrLambda::Lambda(input), ValueOrLambda::Lambda(output)] =
            args.args.as_slice()
        else {
            return exec_err!("reduce takes (array, initial state, (s, x) -> s, s -> result)");
        };
        let state_type = match args.arg_fields.get(2) {
            Some(ValueOrLambda::Lambda(f)) => f.data_type().clone(),
            _ => return exec_err!("reduce: missing input lambda"),
        };
        let n = args.number_rows;
        let list = list.to_array(n)?;
        let Some(list) = list.as_list_opt::<i32>() else {
            return exec_err!("reduce expects an array, got {}", list.data_type());
        };
        let mut state = arrow::compute::cast(&init.to_array(n)?, &state_type)?;
        let flat = flatten(list)?;
        let longest = flat
            .offsets
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0);
        for k in 0..longest {
            state = step(input, &state, &flat, k, &state_type)?;
        }
        let final_state = state.clone();
        let param = || Ok(final_state.clone());
        let out = output
            .evaluate(&[&param], |caps| Ok(caps.to_vec()))?
            .into_array(n)?;
        // A NULL array reduces to NULL.
        if list.null_count() > 0 {
            let keep: UInt32Array = (0..n as u32)
                .map(|i| list.is_valid(i as usize).then_some(i))
                .collect();
            return Ok(ColumnarValue::Array(arrow::compute::take(
                &out, &keep, None,
            )?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// Applies the input lambda to the `k`-th element of every row that has one.
fn step(
    input: &LambdaArgument,
    state: &ArrayRef,
    flat: &Flat,
    k: usize,
    state_type: &DataType,
) -> Result<ArrayRef> {
    let mut rows = Vec::new();
    let mut elements = Vec::new();
    for (row, w) in flat.offsets.windows(2).enumerate() {
        if w[0] + k < w[1] {
            rows.push(row as u32);
            elements.push((w[0] + k) as u32);
        }
    }
    if rows.is_empty() {
        return Ok(state.clone());
    }
    let rows = UInt32Array::from(rows);
    let active_state = arrow::compute::take(state, &rows, None)?;
    let x = arrow::compute::take(&flat.values, &UInt32Array::from(elements), None)?;
    let (s_param, x_param) = (|| Ok(active_state.clone()), || Ok(x.clone()));
    let next = input
        .evaluate(&[&s_param, &x_param], |caps| take_all(caps, &rows))?
        .into_array(rows.len())?;
    let next = if next.data_type() == state_type {
        next
    } else {
        arrow::compute::cast(&next, state_type)?
    };
    // Scatter the new states back: row r takes next[j] if it was the j-th active row.
    let mut source: Vec<(usize, usize)> = (0..state.len()).map(|r| (0, r)).collect();
    for (j, r) in rows.values().iter().enumerate() {
        source[*r as usize] = (1, j);
    }
    Ok(arrow::compute::interleave(
        &[state.as_ref(), next.as_ref()],
        &source,
    )?)
}
