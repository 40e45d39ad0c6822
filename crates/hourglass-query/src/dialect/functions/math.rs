//! Trino's floating-point helpers DataFusion lacks — `nan()`, `infinity()`, `is_finite(x)`,
//! `is_infinite(x)` — and Trino names of DataFusion functions (`is_nan` = `isnan`,
//! `truncate` = `trunc`).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Float64Array};
use arrow::datatypes::Float64Type;
use datafusion::logical_expr::ScalarUDF;

use super::{returns_bool, returns_f64, simple, Arg};

/// (DataFusion function, Trino names).
pub const ALIASES: &[(&str, &[&str])] = &[("isnan", &["is_nan"]), ("trunc", &["truncate"])];

fn test(a: &ArrayRef, f: fn(f64) -> bool) -> ArrayRef {
    let out: BooleanArray = a
        .as_primitive::<Float64Type>()
        .iter()
        .map(|v| v.map(f))
        .collect();
    Arc::new(out)
}

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        simple("nan", vec![vec![]], returns_f64, |_, _| {
            Ok(Arc::new(Float64Array::from(vec![f64::NAN])) as ArrayRef)
        }),
        simple("infinity", vec![vec![]], returns_f64, |_, _| {
            Ok(Arc::new(Float64Array::from(vec![f64::INFINITY])) as ArrayRef)
        }),
        simple(
            "is_finite",
            vec![vec![Arg::Float64]],
            returns_bool,
            |a, _| Ok(test(&a[0], f64::is_finite)),
        ),
        simple(
            "is_infinite",
            vec![vec![Arg::Float64]],
            returns_bool,
            |a, _| Ok(test(&a[0], f64::is_infinite)),
        ),
    ]
}
