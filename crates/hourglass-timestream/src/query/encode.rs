//! Arrow results as Timestream encodes them: `ColumnInfo` types and `Datum` values.
//!
//! | Arrow | `ScalarType` | value |
//! |---|---|---|
//! | Utf8, LargeUtf8, Utf8View, Dictionary of strings, Binary (hex) | VARCHAR | as is |
//! | Int8, Int16, Int32, UInt8, UInt16 | INTEGER | decimal |
//! | Int64, UInt32, UInt64 | BIGINT | decimal |
//! | Float16/32/64, Decimal | DOUBLE | Java's `Double.toString` (`1.0`, `1.0E7`, `NaN`) |
//! | Boolean | BOOLEAN | `true` / `false` |
//! | Timestamp (any unit and zone, read as UTC) | TIMESTAMP | `YYYY-MM-DD HH:MM:SS.fffffffff` |
//! | Date32, Date64 | DATE | `YYYY-MM-DD` |
//! | Time32, Time64 | TIME | `HH:MM:SS.fffffffff` |
//! | Interval(DayTime, MonthDayNano), Duration | INTERVAL_DAY_TO_SECOND | `D HH:MM:SS.fffffffff` |
//! | Interval(YearMonth) | INTERVAL_YEAR_TO_MONTH | `Y-M` |
//! | Null | UNKNOWN | `{"NullValue": true}` |
//! | List of Struct{`time`: Timestamp, `value`: T} | `TimeSeriesMeasureValueColumnInfo` (T) | `TimeSeriesValue` |
//! | List, LargeList, FixedSizeList | `ArrayColumnInfo` | `ArrayValue` |
//! | Struct | `RowColumnInfo` | `RowValue` |
//! | Map | `ArrayColumnInfo` of `RowColumnInfo` (key, value) | `ArrayValue` of `RowValue` |
//!
//! NULL is `{"NullValue": true}` at any depth. A `MonthDayNano` interval counts a month as 30
//! days.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType,
    DurationNanosecondType, DurationSecondType, Field, Float16Type, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, IntervalDayTimeType, IntervalMonthDayNanoType,
    IntervalUnit, IntervalYearMonthType, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use hourglass_core::time::civil_from_days;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;

pub use hourglass_query::column_info::{column_info, timeseries_value_type, type_json};

/// Writes JSON values of one column's rows.
pub struct ColumnEncoder {
    array: ArrayRef,
}

impl ColumnEncoder {
    pub fn new(array: &ArrayRef) -> ColumnEncoder {
        let array = match array.data_type() {
            DataType::Dictionary(_, _)
            | DataType::RunEndEncoded(_, _)
            | DataType::Utf8View
            | DataType::ListView(_)
            | DataType::LargeListView(_) => {
                let target = match array.data_type() {
                    DataType::Dictionary(_, v) => match v.as_ref() {
                        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
                        other => other.clone(),
                    },
                    DataType::RunEndEncoded(_, v) => match v.data_type() {
                        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
                        other => other.clone(),
                    },
                    DataType::ListView(f) => DataType::List(f.clone()),
                    DataType::LargeListView(f) => DataType::LargeList(f.clone()),
                    _ => DataType::Utf8,
                };
                arrow::compute::cast(array, &target).unwrap_or_else(|_| array.clone())
            }
            _ => array.clone(),
        };
        ColumnEncoder { array }
    }

    /// Appends the `Datum` of `row` to `out`.
    pub fn write(&self, row: usize, out: &mut Vec<u8>) {
        write_datum(&self.array, row, out);
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

fn scalar(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(b"{\"ScalarValue\":");
    write_str(out, s);
    out.push(b'}');
}

const NULL: &[u8] = b"{\"NullValue\":true}";

/// Appends one `Datum`.
pub fn write_datum(array: &ArrayRef, row: usize, out: &mut Vec<u8>) {
    if array.is_null(row) {
        out.extend_from_slice(NULL);
        return;
    }
    macro_rules! int {
        ($t:ty) => {{
            use std::io::Write as _;
            let v = array.as_primitive::<$t>().value(row);
            out.extend_from_slice(b"{\"ScalarValue\":\"");
            let _ = write!(out, "{v}");
            out.extend_from_slice(b"\"}");
        }};
    }
    match array.data_type() {
        DataType::Utf8 => scalar(out, array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => scalar(out, array.as_string::<i64>().value(row)),
        DataType::Utf8View => scalar(out, array.as_string_view().value(row)),
        DataType::Boolean => scalar(
            out,
            if array.as_boolean().value(row) {
                "true"
            } else {
                "false"
            },
        ),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Float16 => scalar(
            out,
            &format_double(array.as_primitive::<Float16Type>().value(row).to_f64()),
        ),
        DataType::Float32 => scalar(
            out,
            &format_double(array.as_primitive::<Float32Type>().value(row) as f64),
        ),
        DataType::Float64 => scalar(
            out,
            &format_double(array.as_primitive::<Float64Type>().value(row)),
        ),
        DataType::Timestamp(_, _) => scalar(out, &format_timestamp(timestamp_nanos(array, row))),
        DataType::Date32 => scalar(
            out,
            &format_date(array.as_primitive::<Date32Type>().value(row) as i64),
        ),
        DataType::Date64 => scalar(
            out,
            &format_date(
                array
                    .as_primitive::<Date64Type>()
                    .value(row)
                    .div_euclid(86_400_000),
            ),
        ),
        DataType::Time32(unit) => {
            let v = match unit {
                TimeUnit::Second => {
                    array.as_primitive::<Time32SecondType>().value(row) as i64 * NANOS_PER_SECOND
                }
                _ => array.as_primitive::<Time32MillisecondType>().value(row) as i64 * 1_000_000,
            };
            scalar(out, &format_time_of_day(v))
        }
        DataType::Time64(unit) => {
            let v = match unit {
                TimeUnit::Microsecond => {
                    array.as_primitive::<Time64MicrosecondType>().value(row) * 1_000
                }
                _ => array.as_primitive::<Time64NanosecondType>().value(row),
            };
            scalar(out, &format_time_of_day(v))
        }
        DataType::Interval(IntervalUnit::YearMonth) => scalar(
            out,
            &format_year_month(array.as_primitive::<IntervalYearMonthType>().value(row)),
        ),
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = array.as_primitive::<IntervalDayTimeType>().value(row);
            let nanos = (v.days as i64) * NANOS_PER_DAY + (v.milliseconds as i64) * 1_000_000;
            scalar(out, &format_day_to_second(nanos))
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            let days = v.months as i64 * 30 + v.days as i64;
            scalar(
                out,
                &format_day_to_second(
                    days.saturating_mul(NANOS_PER_DAY)
                        .saturating_add(v.nanoseconds),
                ),
            )
        }
        DataType::Duration(unit) => {
            let nanos = match unit {
                TimeUnit::Second => array
                    .as_primitive::<DurationSecondType>()
                    .value(row)
                    .saturating_mul(NANOS_PER_SECOND),
                TimeUnit::Millisecond => array
                    .as_primitive::<DurationMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Microsecond => array
                    .as_primitive::<DurationMicrosecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Nanosecond => array.as_primitive::<DurationNanosecondType>().value(row),
            };
            scalar(out, &format_day_to_second(nanos))
        }
        DataType::Null => out.extend_from_slice(NULL),
        DataType::List(f) => {
            let list = array.as_list::<i32>();
            write_list(&list.value(row), f, out);
        }
        DataType::LargeList(f) => {
            let list = array.as_list::<i64>();
            write_list(&list.value(row), f, out);
        }
        DataType::FixedSizeList(f, _) => {
            let list = array.as_fixed_size_list();
            write_list(&list.value(row), f, out);
        }
        DataType::Struct(_) => {
            let s = array.as_struct();
            out.extend_from_slice(b"{\"RowValue\":{\"Data\":[");
            for (i, column) in s.columns().iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                ColumnEncoder::new(column).write(row, out);
            }
            out.extend_from_slice(b"]}}");
        }
        DataType::Map(_, _) => {
            let map = array.as_map();
            let entries: ArrayRef = Arc::new(map.value(row));
            out.extend_from_slice(b"{\"ArrayValue\":[");
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(b',');
                }
                write_datum(&entries, i, out);
            }
            out.extend_from_slice(b"]}");
        }
        DataType::Dictionary(_, _)
        | DataType::RunEndEncoded(_, _)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => {
            let one = array.slice(row, 1);
            ColumnEncoder::new(&one).write(0, out);
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let text = display(array, row);
            scalar(out, &text);
        }
        _ => {
            let text = display(array, row);
            scalar(out, &text);
        }
    }
}

/// The value of a timestamp array (any unit) in nanoseconds.
fn timestamp_nanos(array: &ArrayRef, row: usize) -> i64 {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .saturating_mul(NANOS_PER_SECOND),
        DataType::Timestamp(TimeUnit::Millisecond, _) => array
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
            .saturating_mul(1_000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive::<TimestampNanosecondType>().value(row)
        }
        _ => 0,
    }
}

fn display(array: &ArrayRef, row: usize) -> String {
    ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_default()
}

fn write_list(values: &ArrayRef, element: &Field, out: &mut Vec<u8>) {
    if timeseries_value_type(element).is_some() {
        let points = values.as_struct();
        let (time_idx, value_idx) = {
            let fields = points.fields();
            let t = fields
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case("time"))
                .unwrap_or(0);
            let v = fields
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case("value"))
                .unwrap_or(1);
            (t, v)
        };
        let times = points.column(time_idx);
        let vals = ColumnEncoder::new(points.column(value_idx));
        out.extend_from_slice(b"{\"TimeSeriesValue\":[");
        let mut first = true;
        for i in 0..points.len() {
            if points.is_null(i) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            // Time is a timestamp string, not a Datum.
            out.extend_from_slice(b"{\"Time\":");
            write_str(out, &format_timestamp(timestamp_nanos(times, i)));
            out.extend_from_slice(b",\"Value\":");
            vals.write(i, out);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        return;
    }
    let values = ColumnEncoder::new(values);
    out.extend_from_slice(b"{\"ArrayValue\":[");
    for i in 0..values.array.len() {
        if i > 0 {
            out.push(b',');
        }
        values.write(i, out);
    }
    out.extend_from_slice(b"]}");
}

/// Java's `Double.toString`, as Timestream (a JVM service) renders doubles.
pub fn format_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let a = v.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            s + ".0"
        }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.fffffffff` (UTC).
pub fn format_timestamp(nanos: i64) -> String {
    let days = nanos.div_euclid(NANOS_PER_DAY);
    let of_day = nanos.rem_euclid(NANOS_PER_DAY);
    format!("{} {}", format_date(days), format_time_of_day(of_day))
}

pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:MM:SS.fffffffff` of nanoseconds since midnight.
pub fn format_time_of_day(nanos: i64) -> String {
    let secs = nanos.div_euclid(NANOS_PER_SECOND);
    let frac = nanos.rem_euclid(NANOS_PER_SECOND);
    format!(
        "{:02}:{:02}:{:02}.{frac:09}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// `D HH:MM:SS.fffffffff` (negative intervals start with `-`).
pub fn format_day_to_second(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let day = NANOS_PER_DAY as u64;
    let days = n / day;
    let rest = n % day;
    let secs = rest / NANOS_PER_SECOND as u64;
    let frac = rest % NANOS_PER_SECOND as u64;
    format!(
        "{sign}{days} {:02}:{:02}:{:02}.{frac:09}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// `Y-M`.
pub fn format_year_month(months: i32) -> String {
    let sign = if months < 0 { "-" } else { "" };
    let m = months.unsigned_abs();
    format!("{sign}{}-{}", m / 12, m % 12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Float64Array, Int32Array, ListArray, StringArray, StructArray,
        TimestampNanosecondArray,
    };
    use arrow::datatypes::Fields;
    use serde_json::json;

    fn datum(array: ArrayRef, row: usize) -> String {
        let mut out = Vec::new();
        ColumnEncoder::new(&array).write(row, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn scalars_are_strings_like_timestream() {
        assert_eq!(format_double(1.0), "1.0");
        assert_eq!(format_double(90.25268864587973), "90.25268864587973");
        assert_eq!(format_double(1e7), "1.0E7");
        assert_eq!(format_double(1.5e-5), "1.5E-5");
        assert_eq!(format_double(-0.001), "-0.001");
        assert_eq!(
            format_timestamp(1_588_000_000_123_456_789),
            "2020-04-27 15:06:40.123456789"
        );
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999999999");
        assert_eq!(
            format_day_to_second(NANOS_PER_DAY + 21 * 3_600 * NANOS_PER_SECOND),
            "1 21:00:00.000000000"
        );
        assert_eq!(format_year_month(31), "2-7");
        assert_eq!(
            format_time_of_day(3_600 * NANOS_PER_SECOND),
            "01:00:00.000000000"
        );
        assert_eq!(
            datum(Arc::new(StringArray::from(vec![Some("a\"b"), None])), 0),
            r#"{"ScalarValue":"a\"b"}"#
        );
        assert_eq!(
            datum(Arc::new(StringArray::from(vec![Some("a"), None])), 1),
            r#"{"NullValue":true}"#
        );
        assert_eq!(
            datum(Arc::new(BooleanArray::from(vec![true])), 0),
            r#"{"ScalarValue":"true"}"#
        );
        assert_eq!(
            datum(Arc::new(Float64Array::from(vec![2.0])), 0),
            r#"{"ScalarValue":"2.0"}"#
        );
    }

    #[test]
    fn nested_types_have_nested_column_info_and_values() {
        let points = StructArray::from(vec![
            (
                Arc::new(Field::new(
                    "time",
                    DataType::Timestamp(TimeUnit::Nanosecond, None),
                    false,
                )),
                Arc::new(TimestampNanosecondArray::from(vec![0, 1_000_000_000])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("value", DataType::Float64, true)),
                Arc::new(Float64Array::from(vec![Some(1.5), None])) as ArrayRef,
            ),
        ]);
        let element = Arc::new(Field::new("item", points.data_type().clone(), true));
        let ts = ListArray::new(
            element.clone(),
            arrow::buffer::OffsetBuffer::new(vec![0, 2].into()),
            Arc::new(points),
            None,
        );
        let ts: ArrayRef = Arc::new(ts);
        assert_eq!(
            type_json(ts.data_type()),
            json!({"TimeSeriesMeasureValueColumnInfo": {"Type": {"ScalarType": "DOUBLE"}}})
        );
        assert_eq!(
            datum(ts, 0),
            r#"{"TimeSeriesValue":[{"Time":"1970-01-01 00:00:00.000000000","Value":{"ScalarValue":"1.5"}},{"Time":"1970-01-01 00:00:01.000000000","Value":{"NullValue":true}}]}"#
        );

        let ints =
            ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None])]);
        let ints: ArrayRef = Arc::new(ints);
        assert_eq!(
            type_json(ints.data_type()),
            json!({"ArrayColumnInfo": {"Type": {"ScalarType": "INTEGER"}}})
        );
        assert_eq!(
            datum(ints, 0),
            r#"{"ArrayValue":[{"ScalarValue":"1"},{"NullValue":true}]}"#
        );

        let row = StructArray::new(
            Fields::from(vec![
                Field::new("dimension_name", DataType::Utf8, true),
                Field::new("n", DataType::Int32, true),
            ]),
            vec![
                Arc::new(StringArray::from(vec!["region"])) as ArrayRef,
                Arc::new(Int32Array::from(vec![7])) as ArrayRef,
            ],
            None,
        );
        let row: ArrayRef = Arc::new(row);
        assert_eq!(
            type_json(row.data_type()),
            json!({"RowColumnInfo": [
                {"Name": "dimension_name", "Type": {"ScalarType": "VARCHAR"}},
                {"Name": "n", "Type": {"ScalarType": "INTEGER"}}
            ]})
        );
        assert_eq!(
            datum(row, 0),
            r#"{"RowValue":{"Data":[{"ScalarValue":"region"},{"ScalarValue":"7"}]}}"#
        );
    }
    /// A row as `CAST(ROW(...) AS ROW(id INTEGER, items ARRAY(ROW(n DOUBLE, s VARCHAR))))` gives
    /// it: named, nested fields in the column info; a NULL row and NULL fields are NullValue.
    #[test]
    fn rows_have_their_field_names_and_types() {
        let inner_fields = Fields::from(vec![
            Field::new("n", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
        ]);
        let inner = StructArray::new(
            inner_fields.clone(),
            vec![
                Arc::new(Float64Array::from(vec![Some(2.0), None])) as ArrayRef,
                Arc::new(StringArray::from(vec![Some("x"), Some("y")])) as ArrayRef,
            ],
            None,
        );
        let items = ListArray::new(
            Arc::new(Field::new("item", DataType::Struct(inner_fields), true)),
            arrow::buffer::OffsetBuffer::new(vec![0, 2, 2].into()),
            Arc::new(inner),
            None,
        );
        let outer_fields = Fields::from(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("items", items.data_type().clone(), true),
        ]);
        let row: ArrayRef = Arc::new(StructArray::new(
            outer_fields,
            vec![
                Arc::new(Int32Array::from(vec![Some(1), Some(0)])) as ArrayRef,
                Arc::new(items) as ArrayRef,
            ],
            Some(arrow::buffer::NullBuffer::from(vec![true, false])),
        ));
        assert_eq!(
            type_json(row.data_type()),
            json!({"RowColumnInfo": [
                {"Name": "id", "Type": {"ScalarType": "INTEGER"}},
                {"Name": "items", "Type": {"ArrayColumnInfo": {"Type": {"RowColumnInfo": [
                    {"Name": "n", "Type": {"ScalarType": "DOUBLE"}},
                    {"Name": "s", "Type": {"ScalarType": "VARCHAR"}}
                ]}}}}
            ]})
        );
        assert_eq!(
            datum(row.clone(), 0),
            r#"{"RowValue":{"Data":[{"ScalarValue":"1"},{"ArrayValue":[{"RowValue":{"Data":[{"ScalarValue":"2.0"},{"ScalarValue":"x"}]}},{"RowValue":{"Data":[{"NullValue":true},{"ScalarValue":"y"}]}}]}]}}"#
        );
        assert_eq!(datum(row, 1), r#"{"NullValue":true}"#);
    }
}
