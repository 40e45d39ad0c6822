//! Fields of a timestamp or date as bigints: `year`, `quarter`, `month`, `week`/`week_of_year`
//! (ISO week), `day`/`day_of_month`, `day_of_week`/`dow` (ISO: Monday = 1 ... Sunday = 7),
//! `day_of_year`/`doy`, `hour`, `minute`, `second`, `millisecond`, `year_of_week`/`yow` (ISO
//! week-numbering year); and the `extract(<field> FROM x)` fields that map onto them.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::DataType;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike};
use datafusion::common::Result;
use datafusion::logical_expr::ScalarUDF;
use hourglass_core::time::NANOS_PER_DAY;

use super::{returns_i64, simple, Arg};

type Part = fn(NaiveDateTime) -> i64;

const PARTS: &[(&str, Part)] = &[
    ("year", |t| i64::from(t.year())),
    ("quarter", |t| i64::from((t.month() - 1) / 3 + 1)),
    ("month", |t| i64::from(t.month())),
    ("week", |t| i64::from(t.iso_week().week())),
    ("week_of_year", |t| i64::from(t.iso_week().week())),
    ("day", |t| i64::from(t.day())),
    ("day_of_month", |t| i64::from(t.day())),
    ("day_of_week", |t| {
        i64::from(t.weekday().number_from_monday())
    }),
    ("dow", |t| i64::from(t.weekday().number_from_monday())),
    ("day_of_year", |t| i64::from(t.ordinal())),
    ("doy", |t| i64::from(t.ordinal())),
    ("hour", |t| i64::from(t.hour())),
    ("minute", |t| i64::from(t.minute())),
    ("second", |t| i64::from(t.second())),
    ("millisecond", |t| i64::from(t.nanosecond() / 1_000_000)),
    ("year_of_week", |t| i64::from(t.iso_week().year())),
    ("yow", |t| i64::from(t.iso_week().year())),
];

/// The function `extract(<field> FROM x)` means, by the field's lower-case name.
pub fn extract_function(field: &str) -> Option<&'static str> {
    Some(match field {
        "year" => "year",
        "quarter" => "quarter",
        "month" => "month",
        "week" => "week",
        "day" | "day_of_month" => "day",
        "day_of_week" | "dow" | "dayofweek" => "day_of_week",
        "day_of_year" | "doy" | "dayofyear" => "day_of_year",
        "hour" => "hour",
        "minute" => "minute",
        "second" => "second",
        "millisecond" | "milliseconds" => "millisecond",
        "year_of_week" | "yow" => "year_of_week",
        _ => return None,
    })
}

fn nanos(a: &ArrayRef) -> Result<Vec<Option<i64>>> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Date32Type, TimestampNanosecondType};
    Ok(match a.data_type() {
        DataType::Date32 => a
            .as_primitive::<Date32Type>()
            .iter()
            .map(|d| d.map(|d| i64::from(d) * NANOS_PER_DAY))
            .collect(),
        _ => a.as_primitive::<TimestampNanosecondType>().iter().collect(),
    })
}

fn apply(a: &ArrayRef, part: Part) -> Result<ArrayRef> {
    let out: Int64Array = nanos(a)?
        .into_iter()
        .map(|t| t.map(|t| part(DateTime::from_timestamp_nanos(t).naive_utc())))
        .collect();
    Ok(Arc::new(out))
}

macro_rules! part_udf {
    ($name:literal, $index:expr) => {
        simple(
            $name,
            vec![vec![Arg::TimestampOrDate]],
            returns_i64,
            |a, _| apply(&a[0], PARTS[$index].1),
        )
    };
}

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        part_udf!("year", 0),
        part_udf!("quarter", 1),
        part_udf!("month", 2),
        part_udf!("week", 3),
        part_udf!("week_of_year", 4),
        part_udf!("day", 5),
        part_udf!("day_of_month", 6),
        part_udf!("day_of_week", 7),
        part_udf!("dow", 8),
        part_udf!("day_of_year", 9),
        part_udf!("doy", 10),
        part_udf!("hour", 11),
        part_udf!("minute", 12),
        part_udf!("second", 13),
        part_udf!("millisecond", 14),
        part_udf!("year_of_week", 15),
        part_udf!("yow", 16),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_udfs_agree() {
        for (f, (name, _)) in udfs().iter().zip(PARTS) {
            assert_eq!(f.name(), *name);
        }
    }
}
