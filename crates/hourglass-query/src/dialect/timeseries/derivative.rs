//! `derivative_linear(timeseries, interval)` and `non_negative_derivative_linear(...)`: the rate
//! of change between consecutive points, per `interval`, at the later point's time
//! (`(v[i] - v[i-1]) * interval / (t[i] - t[i-1])`); the first point has none. The non-negative
//! form leaves out points where the value went down (counter resets).

use crate::dialect::udf_args::{interval_nanos_at, ArgArrays};
use arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{
    expect_timeseries, numeric_points, timeseries_type, DoubleSeriesBuilder, SeriesColumn,
};
use crate::dialect::functions::{Arg, INTERVAL};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Derivative {
    name: &'static str,
    non_negative: bool,
    signature: Signature,
}

pub fn udfs() -> Vec<ScalarUDF> {
    [
        ("derivative_linear", false),
        ("non_negative_derivative_linear", true),
    ]
    .into_iter()
    .map(|(name, non_negative)| {
        ScalarUDF::new_from_impl(Derivative {
            name,
            non_negative,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

/// Consecutive-point rates per `per` nanoseconds.
pub fn derivative(points: &[(i64, f64)], per: i64, non_negative: bool) -> Vec<(i64, Option<f64>)> {
    points
        .windows(2)
        .filter(|w| w[1].0 != w[0].0)
        .map(|w| {
            let rate = (w[1].1 - w[0].1) * per as f64 / (w[1].0 - w[0].0) as f64;
            (w[1].0, rate)
        })
        .filter(|(_, r)| !non_negative || *r >= 0.0)
        .map(|(t, r)| (t, Some(r)))
        .collect()
}

impl ScalarUDFImpl for Derivative {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [ts, i] if Arg::Interval.coerce(i).is_some() => {
                Ok(vec![expect_timeseries(self.name, ts)?, INTERVAL])
            }
            _ => plan_err!("{} takes (timeseries, interval)", self.name),
        }
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(timeseries_type(DataType::Float64))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = ArgArrays::new(&args)?;
        let rows = input.rows;
        let a = &input.arrays;
        let col = SeriesColumn::new(&a[0])?;
        let values = col.values_f64()?;
        let mut out = DoubleSeriesBuilder::default();
        for i in 0..rows {
            match (
                numeric_points(&col, &values, i),
                interval_nanos_at(&a[1], i)?,
            ) {
                (Some(points), Some(per)) => {
                    out.push(derivative(&points, per, self.non_negative));
                }
                _ => out.push_null(),
            }
        }
        let out = out.finish()?;
        input.finish(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates() {
        let s = 1_000_000_000;
        let pts = [(0, 10.0), (10 * s, 20.0), (20 * s, 5.0)];
        let d = super::derivative(&pts, 60 * s, false);
        assert_eq!(d, vec![(10 * s, Some(60.0)), (20 * s, Some(-90.0))]);
        assert_eq!(
            super::derivative(&pts, 60 * s, true),
            vec![(10 * s, Some(60.0))]
        );
    }
}
