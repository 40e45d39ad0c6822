//! Calendar arithmetic with Trino's argument order: `date_add(unit, value, x)` and
//! `date_diff(unit, x, y)` (whole units from `x` to `y`). Units: `nanosecond`, `microsecond`,
//! `millisecond`, `second`, `minute`, `hour`, `day`, `week`, `month`, `quarter`, `year`; adding
//! months keeps the day of month where it exists and clamps it otherwise (Jan 31 + 1 month =
//! Feb 29 in a leap year).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Date32Array, Int64Array, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Date32Type, Int64Type, TimestampNanosecondType};
use chrono::{DateTime, Datelike, Months, NaiveDateTime};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::ScalarUDF;
use hourglass_core::time::NANOS_PER_DAY;

use super::calendar::strings;
use super::{returns_i64, simple, Arg};

/// A unit: fixed nanoseconds, or a number of months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Nanos(i64),
    Months(i32),
}

pub fn unit(name: &str) -> Result<Unit> {
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "nanosecond" | "ns" => Unit::Nanos(1),
        "microsecond" | "us" => Unit::Nanos(1_000),
        "millisecond" | "ms" => Unit::Nanos(1_000_000),
        "second" | "s" => Unit::Nanos(1_000_000_000),
        "minute" | "m" => Unit::Nanos(60_000_000_000),
        "hour" | "h" => Unit::Nanos(3_600_000_000_000),
        "day" | "d" => Unit::Nanos(NANOS_PER_DAY),
        "week" => Unit::Nanos(7 * NANOS_PER_DAY),
        "month" => Unit::Months(1),
        "quarter" => Unit::Months(3),
        "year" => Unit::Months(12),
        other => return exec_err!("'{other}' is not a valid time unit"),
    })
}

fn naive(nanos: i64) -> NaiveDateTime {
    DateTime::from_timestamp_nanos(nanos).naive_utc()
}

fn nanos_of(t: NaiveDateTime) -> Result<i64> {
    t.and_utc()
        .timestamp_nanos_opt()
        .map_or_else(|| exec_err!("timestamp out of range"), Ok)
}

/// `t + value units`.
pub fn add(t: i64, unit: Unit, value: i64) -> Result<i64> {
    match unit {
        Unit::Nanos(n) => value
            .checked_mul(n)
            .and_then(|d| t.checked_add(d))
            .map_or_else(|| exec_err!("date_add result out of range"), Ok),
        Unit::Months(m) => {
            let months = value
                .checked_mul(i64::from(m))
                .and_then(|v| i32::try_from(v).ok())
                .map_or_else(|| exec_err!("date_add result out of range"), Ok)?;
            let base = naive(t);
            let moved = if months >= 0 {
                base.checked_add_months(Months::new(months.unsigned_abs()))
            } else {
                base.checked_sub_months(Months::new(months.unsigned_abs()))
            };
            moved.map_or_else(|| exec_err!("date_add result out of range"), nanos_of)
        }
    }
}

/// Whole units from `x` to `y` (negative when `y` is earlier).
pub fn diff(x: i64, y: i64, unit: Unit) -> i64 {
    match unit {
        Unit::Nanos(n) => (i128::from(y) - i128::from(x))
            .checked_div(i128::from(n))
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or(0),
        Unit::Months(m) => {
            // Joda's (and so Trino's) rule: the most months that, added to `x` (clamping the
            // day of month), do not pass `y`.
            let (a, b) = (naive(x), naive(y));
            let mut months =
                i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month());
            let passes = |n: i64| match add(x, Unit::Months(1), n) {
                Ok(t) if n >= 0 => t > y,
                Ok(t) => t < y,
                Err(_) => true,
            };
            while months != 0 && passes(months) {
                months -= months.signum();
            }
            months / i64::from(m)
        }
    }
}

fn times(a: &ArrayRef) -> Vec<Option<i64>> {
    match a.data_type() {
        DataType::Date32 => a
            .as_primitive::<Date32Type>()
            .iter()
            .map(|d| d.map(|d| i64::from(d) * NANOS_PER_DAY))
            .collect(),
        _ => a.as_primitive::<TimestampNanosecondType>().iter().collect(),
    }
}

fn returns_like_third(args: &[DataType]) -> DataType {
    args.get(2).cloned().unwrap_or(super::TIMESTAMP)
}

fn add_kernel(a: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let units = strings(&a[0])?;
    let values = a[1].as_primitive::<Int64Type>();
    let ts = times(&a[2]);
    let mut out = Vec::with_capacity(ts.len());
    for ((u, v), t) in units.iter().zip(values.iter()).zip(ts) {
        out.push(match (u, v, t) {
            (Some(u), Some(v), Some(t)) => Some(add(t, unit(u)?, v)?),
            _ => None,
        });
    }
    Ok(match ret {
        DataType::Date32 => Arc::new(
            out.into_iter()
                .map(|t| t.map(|t| t.div_euclid(NANOS_PER_DAY) as i32))
                .collect::<Date32Array>(),
        ),
        _ => Arc::new(out.into_iter().collect::<TimestampNanosecondArray>()),
    })
}

fn diff_kernel(a: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let units = strings(&a[0])?;
    let (xs, ys) = (times(&a[1]), times(&a[2]));
    let mut out = Vec::with_capacity(xs.len());
    for ((u, x), y) in units.iter().zip(xs).zip(ys) {
        out.push(match (u, x, y) {
            (Some(u), Some(x), Some(y)) => Some(diff(x, y, unit(u)?)),
            _ => None,
        });
    }
    Ok(Arc::new(out.into_iter().collect::<Int64Array>()))
}

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        simple(
            "date_add",
            vec![vec![Arg::Utf8, Arg::Int64, Arg::TimestampOrDate]],
            returns_like_third,
            add_kernel,
        ),
        simple(
            "date_diff",
            vec![vec![Arg::Utf8, Arg::TimestampOrDate, Arg::TimestampOrDate]],
            returns_i64,
            diff_kernel,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = NANOS_PER_DAY;

    #[test]
    fn months_clamp_and_count_whole_units() -> Result<()> {
        // 2024-01-31 + 1 month = 2024-02-29
        let jan31 = 19_753 * DAY;
        let feb29 = add(jan31, Unit::Months(1), 1)?;
        assert_eq!(feb29, 19_782 * DAY);
        assert_eq!(diff(jan31, feb29, Unit::Months(1)), 1);
        assert_eq!(diff(jan31, feb29 - 1, Unit::Months(1)), 0);
        assert_eq!(diff(feb29, jan31, Unit::Months(1)), 0);
        assert_eq!(diff(feb29, feb29 - 31 * DAY, Unit::Months(1)), -1);
        assert_eq!(diff(jan31 + 1, 0, Unit::Months(12)), -54);
        assert_eq!(diff(0, 3 * DAY + 1, unit("day")?), 3);
        assert_eq!(diff(3 * DAY + 1, 0, unit("day")?), -3);
        Ok(())
    }
}
