//! Gap filling: `interpolate_linear`, `interpolate_spline_cubic`, `interpolate_locf` and
//! `interpolate_fill`, each as `f(timeseries, array(timestamp)[, fill])` → timeseries or
//! `f(timeseries, timestamp[, fill])` → a single value.
//!
//! At each requested time: a point of the series at exactly that time gives its own value;
//! otherwise linear interpolation joins the neighbouring points, the cubic spline is the natural
//! spline through all points (zero second derivative at both ends), LOCF carries the last earlier
//! value forward, and fill uses the given value. Linear and spline interpolation do not
//! extrapolate: times before the first or after the last point are left out (NULL for the single
//! value form), as are times before the first point for LOCF. A series that ends up with no
//! points is NULL. Linear, spline and fill give doubles; LOCF keeps the value type.

use crate::dialect::udf_args::ArgArrays;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, TimestampNanosecondArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Float64Type, TimestampNanosecondType};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{
    build_series, expect_timeseries, numeric_points, timeseries_type, value_type,
    DoubleSeriesBuilder, SeriesColumn,
};
use crate::dialect::functions::TIMESTAMP;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Method {
    Linear,
    Spline,
    Locf,
    Fill,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Interpolate {
    name: &'static str,
    method: Method,
    signature: Signature,
}

pub fn udfs() -> Vec<ScalarUDF> {
    [
        ("interpolate_linear", Method::Linear),
        ("interpolate_spline_cubic", Method::Spline),
        ("interpolate_locf", Method::Locf),
        ("interpolate_fill", Method::Fill),
    ]
    .into_iter()
    .map(|(name, method)| {
        ScalarUDF::new_from_impl(Interpolate {
            name,
            method,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

impl ScalarUDFImpl for Interpolate {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let arity = if self.method == Method::Fill { 3 } else { 2 };
        if arg_types.len() != arity {
            return plan_err!(
                "{} takes {arity} arguments: (timeseries, array(timestamp) or timestamp{})",
                self.name,
                if arity == 3 { ", fill value" } else { "" }
            );
        }
        let series = expect_timeseries(self.name, &arg_types[0])?;
        let at = match &arg_types[1] {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
                if matches!(
                    f.data_type(),
                    DataType::Timestamp(_, _) | DataType::Date32 | DataType::Null
                ) =>
            {
                DataType::List(Arc::new(Field::new("item", TIMESTAMP, true)))
            }
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Null => TIMESTAMP,
            t if crate::dialect::functions::is_string(t) => TIMESTAMP,
            other => {
                return plan_err!(
                    "{} expects an array of timestamps or a timestamp, got {other}",
                    self.name
                )
            }
        };
        let mut out = vec![series, at];
        if arity == 3 {
            out.push(DataType::Float64);
        }
        Ok(out)
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let value = match self.method {
            Method::Locf => value_type(&arg_types[0])
                .cloned()
                .unwrap_or(DataType::Float64),
            _ => DataType::Float64,
        };
        Ok(match arg_types.get(1) {
            Some(DataType::List(_)) => timeseries_type(value),
            _ => value,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = ArgArrays::new(&args)?;
        let rows = input.rows;
        let arrays = &input.arrays;
        let out = self.run(arrays, rows)?;
        input.finish(out)
    }
}

/// The requested times of row `i`: the array's elements, or the single timestamp.
fn requested(at: &ArrayRef, i: usize) -> Option<Vec<i64>> {
    if at.is_null(i) {
        return None;
    }
    match at.data_type() {
        DataType::List(_) => {
            let l = at.as_list::<i32>();
            let v = l.value(i);
            let t = v.as_primitive::<TimestampNanosecondType>();
            Some(t.iter().flatten().collect())
        }
        _ => Some(vec![at.as_primitive::<TimestampNanosecondType>().value(i)]),
    }
}

impl Interpolate {
    fn run(&self, a: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
        let col = SeriesColumn::new(&a[0])?;
        let at = &a[1];
        let fill = a.get(2).map(|f| f.as_primitive::<Float64Type>().clone());
        let many = matches!(at.data_type(), DataType::List(_));
        if self.method == Method::Locf {
            return locf(&col, at, rows, many);
        }
        let values = col.values_f64()?;
        let mut series = DoubleSeriesBuilder::default();
        let mut singles: Vec<Option<f64>> = Vec::with_capacity(rows);
        for i in 0..rows {
            let (Some(points), Some(times)) = (numeric_points(&col, &values, i), requested(at, i))
            else {
                series.push_null();
                singles.push(None);
                continue;
            };
            let fill_value = match &fill {
                Some(f) if f.is_valid(i) => Some(f.value(i)),
                Some(_) => None,
                None => None,
            };
            let spline = (self.method == Method::Spline).then(|| Spline::new(&points));
            let out: Vec<(i64, f64)> = times
                .iter()
                .filter_map(|t| {
                    let v = match self.method {
                        Method::Linear => linear(&points, *t),
                        Method::Spline => spline.as_ref().and_then(|s| s.at(&points, *t)),
                        Method::Fill => exact(&points, *t).or(fill_value),
                        Method::Locf => None,
                    };
                    v.map(|v| (*t, v))
                })
                .collect();
            singles.push(out.first().map(|p| p.1));
            if out.is_empty() {
                series.push_null();
            } else {
                series.push(out.into_iter().map(|(t, v)| (t, Some(v))));
            }
        }
        if many {
            series.finish()
        } else {
            Ok(Arc::new(Float64Array::from(singles)))
        }
    }
}

fn exact(points: &[(i64, f64)], t: i64) -> Option<f64> {
    let j = points.partition_point(|p| p.0 < t);
    points.get(j).filter(|p| p.0 == t).map(|p| p.1)
}

/// Linear interpolation inside the series' time range.
pub fn linear(points: &[(i64, f64)], t: i64) -> Option<f64> {
    let j = points.partition_point(|p| p.0 < t);
    let next = points.get(j)?;
    if next.0 == t {
        return Some(next.1);
    }
    let prev = points.get(j.checked_sub(1)?)?;
    let f = (t - prev.0) as f64 / (next.0 - prev.0) as f64;
    Some(prev.1 + f * (next.1 - prev.1))
}

/// A natural cubic spline through the points (x in seconds from the first point).
pub struct Spline {
    /// Second derivatives at the points.
    m: Vec<f64>,
}

impl Spline {
    pub fn new(points: &[(i64, f64)]) -> Spline {
        let n = points.len();
        let mut m = vec![0.0; n];
        if n < 3 {
            return Spline { m };
        }
        let x: Vec<f64> = points
            .iter()
            .map(|p| (p.0 - points[0].0) as f64 / 1e9)
            .collect();
        let y: Vec<f64> = points.iter().map(|p| p.1).collect();
        // Tridiagonal system for the interior second derivatives (Thomas algorithm).
        let mut c_prime = vec![0.0; n];
        let mut d_prime = vec![0.0; n];
        for i in 1..n - 1 {
            let h0 = x[i] - x[i - 1];
            let h1 = x[i + 1] - x[i];
            let a = h0;
            let b = 2.0 * (h0 + h1);
            let c = h1;
            let d = 6.0 * ((y[i + 1] - y[i]) / h1 - (y[i] - y[i - 1]) / h0);
            let denom = b - a * c_prime[i - 1];
            c_prime[i] = c / denom;
            d_prime[i] = (d - a * d_prime[i - 1]) / denom;
        }
        for i in (1..n - 1).rev() {
            m[i] = d_prime[i] - c_prime[i] * m[i + 1];
        }
        Spline { m }
    }

    pub fn at(&self, points: &[(i64, f64)], t: i64) -> Option<f64> {
        let j = points.partition_point(|p| p.0 < t);
        let next = points.get(j)?;
        if next.0 == t {
            return Some(next.1);
        }
        let i = j.checked_sub(1)?;
        let prev = points[i];
        let h = (next.0 - prev.0) as f64 / 1e9;
        let a = (next.0 - t) as f64 / 1e9;
        let b = (t - prev.0) as f64 / 1e9;
        let (m0, m1) = (self.m[i], self.m[j]);
        Some(
            m0 * a.powi(3) / (6.0 * h)
                + m1 * b.powi(3) / (6.0 * h)
                + (prev.1 / h - m0 * h / 6.0) * a
                + (next.1 / h - m1 * h / 6.0) * b,
        )
    }
}

/// LOCF keeps the value type: it picks existing values (by index) rather than computing any.
fn locf(col: &SeriesColumn, at: &ArrayRef, rows: usize, many: bool) -> Result<ArrayRef> {
    let values = col.values();
    let mut times = Vec::new();
    let mut picks: Vec<u32> = Vec::new();
    let mut lengths = Vec::with_capacity(rows);
    let mut valid = Vec::with_capacity(rows);
    let mut singles: Vec<Option<u32>> = Vec::with_capacity(rows);
    for i in 0..rows {
        let (Some(p), Some(want)) = (col.points(i), requested(at, i)) else {
            lengths.push(0);
            valid.push(false);
            singles.push(None);
            continue;
        };
        let mut known: Vec<(i64, usize)> = p
            .times
            .iter()
            .enumerate()
            .filter(|(k, _)| values.is_valid(p.start + k))
            .map(|(k, t)| (*t, p.start + k))
            .collect();
        known.sort_by_key(|k| k.0);
        let before = times.len();
        for t in want {
            let j = known.partition_point(|k| k.0 <= t);
            if let Some(k) = j.checked_sub(1).and_then(|j| known.get(j)) {
                times.push(t);
                picks.push(u32::try_from(k.1).map_or_else(|_| exec_err!("series too long"), Ok)?);
            }
        }
        singles.push((times.len() > before).then(|| picks[before]));
        lengths.push(times.len() - before);
        valid.push(times.len() > before);
    }
    if many {
        let picked = arrow::compute::take(values, &UInt32Array::from(picks), None)?;
        build_series(
            TimestampNanosecondArray::from(times),
            picked,
            lengths,
            valid,
        )
    } else {
        Ok(arrow::compute::take(
            values,
            &UInt32Array::from(singles),
            None,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn linear_and_spline() {
        let pts = [(0, 0.0), (10 * S, 10.0), (20 * S, 0.0)];
        assert_eq!(linear(&pts, 5 * S), Some(5.0));
        assert_eq!(linear(&pts, 15 * S), Some(5.0));
        assert_eq!(linear(&pts, 25 * S), None);
        let s = Spline::new(&pts);
        // Natural spline through (0,0), (10,10), (20,0): m1 = -0.3, value at 5 = 6.875.
        let v = s.at(&pts, 5 * S).unwrap_or(f64::NAN);
        assert!((v - 6.875).abs() < 1e-9, "{v}");
        assert_eq!(s.at(&pts, 10 * S), Some(10.0));
    }
}
