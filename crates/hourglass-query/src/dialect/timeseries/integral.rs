//! `integral_trapezoidal(timeseries[, interval])`: the area under the series by the trapezoid
//! rule, with time measured in `interval`s (default one second):
//! `Σ (v[i-1] + v[i]) / 2 * (t[i] - t[i-1]) / interval`. A series with a single point gives 0;
//! a NULL series gives NULL.

use crate::dialect::udf_args::{interval_nanos_at, ArgArrays};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{expect_timeseries, numeric_points, SeriesColumn};
use crate::dialect::functions::{Arg, INTERVAL};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Integral {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Integral {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

pub fn trapezoidal(points: &[(i64, f64)], per: i64) -> f64 {
    points
        .windows(2)
        .map(|w| (w[0].1 + w[1].1) / 2.0 * (w[1].0 - w[0].0) as f64 / per as f64)
        .fold(0.0, |a, b| a + b)
}

impl ScalarUDFImpl for Integral {
    fn name(&self) -> &str {
        "integral_trapezoidal"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [ts] => Ok(vec![expect_timeseries(self.name(), ts)?]),
            [ts, i] if Arg::Interval.coerce(i).is_some() => {
                Ok(vec![expect_timeseries(self.name(), ts)?, INTERVAL])
            }
            _ => plan_err!("integral_trapezoidal takes (timeseries[, interval])"),
        }
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = ArgArrays::new(&args)?;
        let rows = input.rows;
        let a = &input.arrays;
        let col = SeriesColumn::new(&a[0])?;
        let values = col.values_f64()?;
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            // Without an interval argument, the integral is per second.
            let per = match a.get(1) {
                None => Some(1_000_000_000),
                Some(p) => interval_nanos_at(p, i)?,
            };
            out.push(match (numeric_points(&col, &values, i), per) {
                (Some(points), Some(per)) if per > 0 => Some(trapezoidal(&points, per)),
                _ => None,
            });
        }
        let out: ArrayRef = Arc::new(Float64Array::from(out));
        input.finish(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn area() {
        let s = 1_000_000_000;
        let pts = [(0, 0.0), (10 * s, 10.0), (20 * s, 10.0)];
        assert_eq!(super::trapezoidal(&pts, s), 150.0);
        assert_eq!(super::trapezoidal(&pts, 10 * s), 15.0);
    }
}
