//! Conversions between timestamps and numbers since the Unix epoch:
//! `from_milliseconds(bigint)`, `from_nanoseconds(bigint)`, `to_milliseconds(interval|timestamp)`,
//! `to_nanoseconds(interval|timestamp)`, and (Timestream meaning, replacing DataFusion's in
//! Timestream sessions) `from_unixtime(double seconds)` and `to_unixtime(timestamp)` → double.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampNanosecondType};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::ScalarUDF;

use super::{interval_column, returns_f64, returns_i64, returns_timestamp, simple, Arg};

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        simple(
            "from_milliseconds",
            vec![vec![Arg::Int64]],
            returns_timestamp,
            |a, _| scale_to_nanos(&a[0], 1_000_000),
        ),
        simple(
            "from_nanoseconds",
            vec![vec![Arg::Int64]],
            returns_timestamp,
            |a, _| scale_to_nanos(&a[0], 1),
        ),
        simple(
            "to_milliseconds",
            vec![vec![Arg::IntervalOrTimestamp]],
            returns_i64,
            |a, _| nanos_divided(&a[0], 1_000_000),
        ),
        simple(
            "to_nanoseconds",
            vec![vec![Arg::IntervalOrTimestamp]],
            returns_i64,
            |a, _| nanos_divided(&a[0], 1),
        ),
    ]
}

/// Timestream's `from_unixtime` (fractional seconds) and `to_unixtime` (a double).
pub fn timestream_overrides() -> Vec<ScalarUDF> {
    vec![
        simple(
            "from_unixtime",
            vec![vec![Arg::Float64]],
            returns_timestamp,
            |a, _| {
                let secs = a[0].as_primitive::<Float64Type>();
                let out = secs
                    .iter()
                    .map(|s| match s {
                        Some(s) if (s * 1e9).is_finite() && (s * 1e9).abs() < 9.2e18 => {
                            Ok(Some((s * 1e9).round() as i64))
                        }
                        Some(s) => exec_err!("from_unixtime({s}) is out of the timestamp range"),
                        None => Ok(None),
                    })
                    .collect::<Result<TimestampNanosecondArray>>()?;
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
        simple(
            "to_unixtime",
            vec![vec![Arg::Timestamp]],
            returns_f64,
            |a, _| {
                let t = a[0].as_primitive::<TimestampNanosecondType>();
                let out: Float64Array = t.iter().map(|t| t.map(|t| t as f64 / 1e9)).collect();
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
    ]
}

fn scale_to_nanos(a: &ArrayRef, factor: i64) -> Result<ArrayRef> {
    let values = a.as_primitive::<Int64Type>();
    let out = values
        .iter()
        .map(|v| match v {
            Some(v) => v
                .checked_mul(factor)
                .map(Some)
                .map_or_else(|| exec_err!("{v} is out of the timestamp range"), Ok),
            None => Ok(None),
        })
        .collect::<Result<TimestampNanosecondArray>>()?;
    Ok(Arc::new(out))
}

fn nanos_divided(a: &ArrayRef, divisor: i64) -> Result<ArrayRef> {
    let nanos: Vec<Option<i64>> = match a.data_type() {
        DataType::Timestamp(_, _) => a.as_primitive::<TimestampNanosecondType>().iter().collect(),
        _ => interval_column(a)?,
    };
    let out: Int64Array = nanos
        .into_iter()
        .map(|n| n.map(|n| n.div_euclid(divisor)))
        .collect();
    debug_assert_eq!(out.len(), a.len());
    Ok(Arc::new(out))
}
