//! Anomaly-detection functions for SQL (alert rules, charts): scores of the current value
//! against a trailing baseline, and smoothed bands. The mathematics, window semantics and NULL
//! handling are in `docs/anomaly.md`; in short:
//!
//! | function | kind | what it returns |
//! |---|---|---|
//! | `zscore(x [, min_stddev])` | aggregate / window ([`zscore`]) | `(last − mean(rest)) / stddev(rest)`: the frame's last row scored against the frame's other rows |
//! | `mad(x)` | aggregate / window ([`mad`]) | median absolute deviation of the frame |
//! | `robust_zscore(x [, min_mad])` | aggregate / window ([`mad`]) | `(last − median(rest)) / (1.4826 · MAD(rest))` |
//! | `ewma(x, alpha)` | window ([`ewma`]) | exponentially weighted moving average, in partition order |
//! | `ewm_stddev(x, alpha)` | window ([`ewma`]) | exponentially weighted standard deviation (band half-width per σ) |
//!
//! The aggregates support sliding frames (`retract_batch`), so
//! `zscore(price) OVER (PARTITION BY symbol ORDER BY time RANGE BETWEEN INTERVAL '5' MINUTE
//! PRECEDING AND CURRENT ROW)` costs O(1) per row. A seasonal baseline needs no function of its
//! own: partition by the time of day (or week) — see the docs.
//!
//! Values are read as `Float64`; NULL and non-finite values (NaN, ±∞) are left out of every
//! baseline, and a row whose own value is one of them scores NULL.

pub mod ewma;
pub mod mad;
pub mod zscore;

#[cfg(test)]
mod session_tests;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use datafusion::common::cast::as_float64_array;
use datafusion::error::Result as DfResult;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{AggregateUDF, WindowUDF};

/// The aggregate functions of this module.
pub fn udafs() -> Vec<AggregateUDF> {
    vec![zscore::udaf(), mad::mad_udaf(), mad::robust_zscore_udaf()]
}

/// The window functions of this module.
pub fn udwfs() -> Vec<WindowUDF> {
    vec![ewma::ewma_udwf(), ewma::ewm_stddev_udwf()]
}

/// Registers every function of this module on `state`.
pub fn register(state: &mut SessionState) {
    for f in udafs() {
        let _ = state.register_udaf(Arc::new(f));
    }
    for f in udwfs() {
        let _ = state.register_udwf(Arc::new(f));
    }
}

/// Coerces `function`'s arguments: `min..=max` of them, each numeric (or NULL), all to `Float64`.
pub(crate) fn float_args(
    function: &str,
    arg_types: &[DataType],
    min: usize,
    max: usize,
) -> DfResult<Vec<DataType>> {
    if arg_types.len() < min || arg_types.len() > max {
        let wanted = if min == max {
            format!("{min}")
        } else {
            format!("{min} or {max}")
        };
        return datafusion::common::plan_err!(
            "{function} takes {wanted} numeric arguments, got {}",
            arg_types.len()
        );
    }
    for (i, t) in arg_types.iter().enumerate() {
        if !(t.is_numeric() || t.is_null()) {
            return datafusion::common::plan_err!(
                "{function}: argument {} must be numeric, got {t}",
                i + 1
            );
        }
    }
    Ok(vec![DataType::Float64; arg_types.len()])
}

/// Row `i` of a `Float64` column as a usable value: `None` for NULL, NaN and ±∞.
pub(crate) fn finite_at(array: &ArrayRef, i: usize) -> DfResult<Option<f64>> {
    let a = as_float64_array(array)?;
    Ok((a.is_valid(i) && a.value(i).is_finite()).then(|| a.value(i)))
}

/// The optional scale floor (`min_stddev`, `min_mad`) of the last row of a batch: the second
/// argument when given, else 0. A NULL, negative or non-finite floor is refused.
pub(crate) fn scale_floor(function: &str, values: &[ArrayRef]) -> DfResult<Option<f64>> {
    let Some(floor) = values.get(1) else {
        return Ok(None);
    };
    if floor.is_empty() {
        return Ok(None);
    }
    let a = as_float64_array(floor)?;
    let i = a.len() - 1;
    if a.is_null(i) || !a.value(i).is_finite() || a.value(i) < 0.0 {
        let shown = if a.is_null(i) {
            "NULL".to_string()
        } else {
            a.value(i).to_string()
        };
        return datafusion::common::exec_err!(
            "{function}: the scale floor (second argument) must be a finite number >= 0, got {shown}"
        );
    }
    Ok(Some(a.value(i)))
}

/// `(x − centre) / scale`, the scale raised to `floor` first; NULL when it is still 0.
pub(crate) fn score(x: f64, centre: f64, scale: f64, floor: f64) -> Option<f64> {
    let s = scale.max(floor);
    (s > 0.0).then(|| (x - centre) / s)
}
