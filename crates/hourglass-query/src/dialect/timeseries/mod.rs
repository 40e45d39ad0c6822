//! Timestream's `timeseries` type and its functions.
//!
//! A timeseries is an Arrow `List<Struct<time: Timestamp(ns), value: T>>`, points sorted by time
//! ([`timeseries_type`]); [`is_timeseries`] recognises one (result encoders render it as
//! Timestream's `TimeSeriesValue`). It is built by the `create_time_series(time, value)`
//! aggregate, turned back into rows by `CROSS JOIN UNNEST(ts) AS t(time, value)`, and
//! transformed by `interpolate_*`, `derivative_*`, `integral_trapezoidal`, `correlate_*`,
//! `filter`, `transform` and `reduce`.
//!
//! This file holds the type and the reading/building of series columns the functions share.

pub mod correlate;
pub mod create_time_series;
pub mod derivative;
pub mod integral;
pub mod interpolate;
pub mod lambda_plan;
pub mod lambdas;

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, ListArray, StructArray, TimestampNanosecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, Float64Type, TimestampNanosecondType};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF};

use super::functions::TIMESTAMP;

/// The fields of one point: `time` and `value`.
pub fn point_fields(value: DataType) -> Fields {
    Fields::from(vec![
        Field::new("time", TIMESTAMP, false),
        Field::new("value", value, true),
    ])
}

/// `timeseries(value)`.
pub fn timeseries_type(value: DataType) -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(point_fields(value)),
        true,
    )))
}

/// The value type of a timeseries type, `None` if `t` is not one.
pub fn value_type(t: &DataType) -> Option<&DataType> {
    let DataType::List(item) = t else {
        return None;
    };
    let DataType::Struct(fields) = item.data_type() else {
        return None;
    };
    match fields.iter().as_slice() {
        [time, value]
            if time.name() == "time"
                && value.name() == "value"
                && matches!(time.data_type(), DataType::Timestamp(_, _)) =>
        {
            Some(value.data_type())
        }
        _ => None,
    }
}

/// Whether `t` is a timeseries type.
pub fn is_timeseries(t: &DataType) -> bool {
    value_type(t).is_some()
}

pub fn scalar_udfs() -> Vec<ScalarUDF> {
    let mut v = interpolate::udfs();
    v.extend(derivative::udfs());
    v.push(integral::udf());
    v.extend(correlate::udfs());
    v
}

pub fn aggregate_udfs() -> Vec<AggregateUDF> {
    vec![create_time_series::udaf()]
}

pub fn higher_order_udfs() -> Vec<HigherOrderUDF> {
    lambdas::udfs()
}

/// Checks that an argument is a timeseries (for planning errors).
pub fn expect_timeseries(function: &str, t: &DataType) -> Result<DataType> {
    match t {
        t if is_timeseries(t) => Ok(t.clone()),
        DataType::Null => Ok(timeseries_type(DataType::Float64)),
        other => datafusion::common::plan_err!(
            "{function} expects a timeseries, got {other} (build one with create_time_series)"
        ),
    }
}

/// The same timeseries type with `Float64` values (for functions that compute in doubles).
pub fn as_double_series(t: &DataType) -> DataType {
    match value_type(t) {
        Some(v) if v.is_numeric() || v.is_null() => timeseries_type(DataType::Float64),
        _ => t.clone(),
    }
}

/// A column of series, read row by row.
pub struct SeriesColumn {
    list: ListArray,
    times: TimestampNanosecondArray,
    values: ArrayRef,
}

/// One row's points: times (ns) and the range of its values in [`SeriesColumn::values`].
pub struct Points<'a> {
    pub times: &'a [i64],
    pub start: usize,
}

impl SeriesColumn {
    pub fn new(a: &ArrayRef) -> Result<SeriesColumn> {
        let Some(list) = a.as_list_opt::<i32>() else {
            return exec_err!("expected a timeseries, got {}", a.data_type());
        };
        let Some(points) = list.values().as_struct_opt() else {
            return exec_err!("expected a timeseries, got {}", a.data_type());
        };
        if points.num_columns() != 2 {
            return exec_err!("expected a timeseries, got {}", a.data_type());
        }
        let times = arrow::compute::cast(points.column(0), &TIMESTAMP)?
            .as_primitive::<TimestampNanosecondType>()
            .clone();
        Ok(SeriesColumn {
            list: list.clone(),
            times,
            values: points.column(1).clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The value column of all points (index with [`Points::start`]).
    pub fn values(&self) -> &ArrayRef {
        &self.values
    }

    /// The values as doubles.
    pub fn values_f64(&self) -> Result<Float64Array> {
        Ok(arrow::compute::cast(&self.values, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone())
    }

    /// Row `i`'s points, `None` for a NULL series.
    pub fn points(&self, i: usize) -> Option<Points<'_>> {
        if self.list.is_null(i) {
            return None;
        }
        let offsets = self.list.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        Some(Points {
            times: &self.times.values()[start..end],
            start,
        })
    }
}

/// Row `i`'s points with non-NULL values as (time, value), sorted by time.
pub fn numeric_points(
    col: &SeriesColumn,
    values: &Float64Array,
    i: usize,
) -> Option<Vec<(i64, f64)>> {
    let p = col.points(i)?;
    let mut v: Vec<(i64, f64)> = p
        .times
        .iter()
        .enumerate()
        .filter(|(k, _)| values.is_valid(p.start + k))
        .map(|(k, t)| (*t, values.value(p.start + k)))
        .collect();
    if !v.windows(2).all(|w| w[0].0 <= w[1].0) {
        v.sort_by_key(|p| p.0);
    }
    Some(v)
}

/// Builds a column of double-valued series.
#[derive(Default)]
pub struct DoubleSeriesBuilder {
    times: Vec<i64>,
    values: Vec<Option<f64>>,
    lengths: Vec<usize>,
    valid: Vec<bool>,
}

impl DoubleSeriesBuilder {
    pub fn push(&mut self, points: impl IntoIterator<Item = (i64, Option<f64>)>) {
        let before = self.times.len();
        for (t, v) in points {
            self.times.push(t);
            self.values.push(v);
        }
        self.lengths.push(self.times.len() - before);
        self.valid.push(true);
    }

    pub fn push_null(&mut self) {
        self.lengths.push(0);
        self.valid.push(false);
    }

    pub fn finish(self) -> Result<ArrayRef> {
        let values = Float64Array::from(self.values);
        build_series(
            TimestampNanosecondArray::from(self.times),
            Arc::new(values),
            self.lengths,
            self.valid,
        )
    }
}

/// A series column from point times, point values, per-row lengths and validity.
pub fn build_series(
    times: TimestampNanosecondArray,
    values: ArrayRef,
    lengths: Vec<usize>,
    valid: Vec<bool>,
) -> Result<ArrayRef> {
    let fields = point_fields(values.data_type().clone());
    let points = StructArray::try_new(fields.clone(), vec![Arc::new(times), values], None)?;
    let nulls = if valid.iter().all(|v| *v) {
        None
    } else {
        Some(NullBuffer::from(valid))
    };
    let list = ListArray::try_new(
        Arc::new(Field::new("item", DataType::Struct(fields), true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(points),
        nulls,
    )?;
    Ok(Arc::new(list))
}
