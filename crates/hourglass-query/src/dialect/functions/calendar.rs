//! Dates and ISO 8601 text: `from_iso8601_timestamp(varchar)`, `from_iso8601_date(varchar)`,
//! `to_iso8601(timestamp|date)`, `date(varchar|timestamp)`, `last_day_of_month(x)`,
//! `current_timezone()` (always `UTC`: Timestream has no other zone).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Date32Type, TimestampNanosecondType};
use chrono::{DateTime, Datelike, NaiveDate};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::ScalarUDF;

use super::{returns_date, returns_timestamp, returns_utf8, simple, Arg};

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_DAYS_FROM_CE)?)
}

pub fn days_from_date(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// Strings as text (any string encoding).
pub fn strings(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    let s = arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(s.as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

fn parse_timestamp(s: &str) -> Result<i64> {
    arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(s.trim())
        .or_else(|e| exec_err!("Invalid ISO 8601 timestamp '{s}': {e}"))
}

fn parse_date(s: &str) -> Result<i32> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(days_from_date)
        .or_else(|_| exec_err!("Invalid ISO 8601 date '{s}'"))
}

/// Formats nanoseconds since the epoch as `2024-01-01T00:00:00.000000000Z`.
pub fn iso8601(nanos: i64) -> String {
    DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        simple(
            "from_iso8601_timestamp",
            vec![vec![Arg::Utf8]],
            returns_timestamp,
            |a, _| {
                let out = strings(&a[0])?
                    .into_iter()
                    .map(|s| s.map(|s| parse_timestamp(&s)).transpose())
                    .collect::<Result<TimestampNanosecondArray>>()?;
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
        simple(
            "from_iso8601_date",
            vec![vec![Arg::Utf8]],
            returns_date,
            |a, _| {
                let out = strings(&a[0])?
                    .into_iter()
                    .map(|s| s.map(|s| parse_date(&s)).transpose())
                    .collect::<Result<Date32Array>>()?;
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
        simple(
            "to_iso8601",
            vec![vec![Arg::TimestampOrDate]],
            returns_utf8,
            |a, _| {
                let out: StringArray = match a[0].data_type() {
                    DataType::Date32 => a[0]
                        .as_primitive::<Date32Type>()
                        .iter()
                        .map(|d| d.and_then(date_from_days).map(|d| d.to_string()))
                        .collect(),
                    _ => a[0]
                        .as_primitive::<TimestampNanosecondType>()
                        .iter()
                        .map(|t| t.map(iso8601))
                        .collect(),
                };
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
        simple(
            "date",
            vec![vec![Arg::TimestampOrDate]],
            returns_date,
            |a, _| Ok(arrow::compute::cast(&a[0], &DataType::Date32)?),
        ),
        simple(
            "last_day_of_month",
            vec![vec![Arg::TimestampOrDate]],
            returns_date,
            |a, _| {
                let days = arrow::compute::cast(&a[0], &DataType::Date32)?;
                let out: Date32Array = days
                    .as_primitive::<Date32Type>()
                    .iter()
                    .map(|d| {
                        d.and_then(date_from_days)
                            .and_then(last_day)
                            .map(days_from_date)
                    })
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
        simple("current_timezone", vec![vec![]], returns_utf8, |_, _| {
            Ok(Arc::new(StringArray::from(vec!["UTC"])) as ArrayRef)
        }),
    ]
}

fn last_day(d: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_text() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:01Z").ok(),
            Some(1_000_000_000)
        );
        assert_eq!(parse_date("1970-01-02").ok(), Some(1));
        let feb = NaiveDate::from_ymd_opt(2024, 2, 10).and_then(last_day);
        assert_eq!(feb, NaiveDate::from_ymd_opt(2024, 2, 29));
    }
}
