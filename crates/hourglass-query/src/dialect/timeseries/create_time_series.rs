//! `create_time_series(time, value)`: the aggregate that collects a group's (time, value)
//! points into one timeseries, sorted by time. Points whose time or value is NULL are left out
//! (Timestream: "the second parameter cannot be null"); a group without points gives NULL.
//!
//! Partial aggregates exchange their series as the state (one timeseries value), so the
//! function works across partitions and as a window function over whole partitions.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, TimestampNanosecondArray, UInt32Array};
use arrow::datatypes::{DataType, Field, FieldRef, TimestampNanosecondType};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use super::{build_series, timeseries_type, SeriesColumn};
use crate::dialect::functions::TIMESTAMP;

#[derive(Debug, PartialEq, Eq, Hash)]
struct CreateTimeSeries {
    signature: Signature,
}

pub fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(CreateTimeSeries {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// The value type a series stores for an argument type (strings are plain `Utf8`).
fn stored(t: &DataType) -> DataType {
    match t {
        DataType::Dictionary(_, v) => stored(v),
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Null => DataType::Float64,
        other => other.clone(),
    }
}

impl AggregateUDFImpl for CreateTimeSeries {
    fn name(&self) -> &str {
        "create_time_series"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Timestamp(_, _) | DataType::Date32 | DataType::Null, v] => {
                Ok(vec![TIMESTAMP, stored(v)])
            }
            [t, _] => plan_err!("create_time_series expects (timestamp, value), got a {t} time"),
            _ => plan_err!("create_time_series takes 2 arguments: (time, value)"),
        }
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(timeseries_type(stored(
            arg_types.get(1).unwrap_or(&DataType::Float64),
        )))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            "series",
            args.return_field.data_type().clone(),
            true,
        ))])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let value_type = args
            .expr_fields
            .get(1)
            .map(|f| stored(f.data_type()))
            .unwrap_or(DataType::Float64);
        Ok(Box::new(SeriesAccumulator {
            value_type,
            times: Vec::new(),
            values: Vec::new(),
            bytes: 0,
        }))
    }
}

#[derive(Debug)]
struct SeriesAccumulator {
    value_type: DataType,
    times: Vec<i64>,
    values: Vec<ArrayRef>,
    bytes: usize,
}

impl SeriesAccumulator {
    fn add(&mut self, times: &ArrayRef, values: &ArrayRef) -> Result<()> {
        let values = if values.data_type() == &self.value_type {
            values.clone()
        } else {
            arrow::compute::cast(values, &self.value_type)?
        };
        let keep = arrow::compute::and(
            &arrow::compute::is_not_null(times)?,
            &arrow::compute::is_not_null(&values)?,
        )?;
        let (times, values) = if keep.true_count() == keep.len() {
            (times.clone(), values)
        } else {
            (
                arrow::compute::filter(times, &keep)?,
                arrow::compute::filter(&values, &keep)?,
            )
        };
        if values.is_empty() {
            return Ok(());
        }
        self.times.extend(
            times
                .as_primitive::<TimestampNanosecondType>()
                .values()
                .iter(),
        );
        self.bytes += values.get_array_memory_size();
        self.values.push(values);
        Ok(())
    }

    fn series(&self) -> Result<ScalarValue> {
        let series_type = timeseries_type(self.value_type.clone());
        if self.times.is_empty() {
            return ScalarValue::try_from(&series_type);
        }
        let chunks: Vec<&dyn Array> = self.values.iter().map(|a| a.as_ref()).collect();
        let values = arrow::compute::concat(&chunks)?;
        let mut order: Vec<u32> = (0..self.times.len() as u32).collect();
        if !self.times.windows(2).all(|w| w[0] <= w[1]) {
            order.sort_by_key(|i| self.times[*i as usize]);
        }
        let times: TimestampNanosecondArray = order
            .iter()
            .map(|i| Some(self.times[*i as usize]))
            .collect();
        let values = arrow::compute::take(&values, &UInt32Array::from(order), None)?;
        let list = build_series(times, values, vec![self.times.len()], vec![true])?;
        Ok(ScalarValue::List(Arc::new(list.as_list::<i32>().clone())))
    }
}

impl Accumulator for SeriesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], &values[1])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let col = SeriesColumn::new(&states[0])?;
        for i in 0..col.len() {
            if let Some(p) = col.points(i) {
                let n = p.times.len();
                let times: ArrayRef = Arc::new(TimestampNanosecondArray::from(p.times.to_vec()));
                let values = col.values().slice(p.start, n);
                self.add(&times, &values)?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.series()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.series()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.times.capacity() * 8 + self.bytes
    }
}
