//! What an InfluxQL statement answers: series of rows of typed values, before the HTTP layer
//! shapes them as InfluxDB 1.x JSON or CSV (times stay nanoseconds until then, so `epoch` can
//! choose their form), and reading such values out of Arrow arrays.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use hourglass_core::{Error, Result};

pub use chrono_tz::Tz;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Float(f64),
    Int(i64),
    UInt(u64),
    Str(String),
    Bool(bool),
    /// A time, ns since the epoch (formatted by the `epoch` parameter).
    Time(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            Value::UInt(v) => Some(*v as f64),
            _ => None,
        }
    }
}

/// A series: a measurement (or statement) name, the tags that set it apart, and rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// `None` for answers without a name (`SHOW SERIES`).
    pub name: Option<String>,
    pub tags: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub values: Vec<Vec<Value>>,
    /// The zone of `tz()`: times are written in it (RFC3339 with its offset).
    pub tz: Option<chrono_tz::Tz>,
}

/// The answer to one statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatementResult {
    pub series: Vec<Series>,
    pub error: Option<String>,
    /// The error is one InfluxDB finds when compiling the statement (bad input, not a failure
    /// while running): in a multi-statement query it answers `not executed` and stops there.
    pub compile_error: bool,
    /// Warnings (`messages` of the result): (level, text).
    pub messages: Vec<(String, String)>,
}

impl StatementResult {
    pub fn ok(series: Vec<Series>) -> Self {
        StatementResult {
            series,
            ..Default::default()
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        StatementResult {
            error: Some(message.into()),
            ..Default::default()
        }
    }
}

/// An Arrow column prepared for reading values row by row.
pub enum Column {
    Float(arrow::array::Float64Array),
    Int(arrow::array::Int64Array),
    UInt(arrow::array::UInt64Array),
    Bool(arrow::array::BooleanArray),
    Str(arrow::array::StringArray),
    /// Timestamps, as ns.
    Time(arrow::array::Int64Array),
}

impl Column {
    /// Converts an array of any type a query returns.
    pub fn new(array: &ArrayRef) -> Result<Column> {
        let cast = |to: &DataType| {
            arrow::compute::cast(array, to)
                .map_err(|e| Error::internal(format!("InfluxQL result conversion: {e}")))
        };
        Ok(match array.data_type() {
            DataType::Float64 => Column::Float(array.as_primitive::<Float64Type>().clone()),
            DataType::Int64 => Column::Int(array.as_primitive::<Int64Type>().clone()),
            DataType::UInt64 => Column::UInt(array.as_primitive::<UInt64Type>().clone()),
            DataType::Boolean => Column::Bool(array.as_boolean().clone()),
            DataType::Timestamp(_, _) => {
                let ns = cast(&DataType::Timestamp(
                    arrow::datatypes::TimeUnit::Nanosecond,
                    None,
                ))?;
                let ints = arrow::compute::cast(&ns, &DataType::Int64)
                    .map_err(|e| Error::internal(format!("InfluxQL time conversion: {e}")))?;
                Column::Time(ints.as_primitive::<Int64Type>().clone())
            }
            DataType::Int8 | DataType::Int16 | DataType::Int32 => {
                Column::Int(cast(&DataType::Int64)?.as_primitive::<Int64Type>().clone())
            }
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Column::UInt(
                cast(&DataType::UInt64)?
                    .as_primitive::<UInt64Type>()
                    .clone(),
            ),
            DataType::Float16 | DataType::Float32 | DataType::Decimal128(_, _) => Column::Float(
                cast(&DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            DataType::Null => Column::Float(arrow::array::Float64Array::new_null(array.len())),
            _ => Column::Str(cast(&DataType::Utf8)?.as_string::<i32>().clone()),
        })
    }

    pub fn value(&self, row: usize) -> Value {
        macro_rules! get {
            ($a:expr, $v:expr) => {
                if $a.is_null(row) {
                    Value::Null
                } else {
                    $v($a.value(row))
                }
            };
        }
        match self {
            Column::Float(a) => {
                if a.is_null(row) || !a.value(row).is_finite() {
                    Value::Null
                } else {
                    Value::Float(a.value(row))
                }
            }
            Column::Int(a) => get!(a, Value::Int),
            Column::UInt(a) => get!(a, Value::UInt),
            Column::Bool(a) => get!(a, Value::Bool),
            Column::Str(a) => get!(a, |s: &str| Value::Str(s.to_string())),
            Column::Time(a) => get!(a, Value::Time),
        }
    }

    /// The value as a string, `""` for null (tag values).
    pub fn tag(&self, row: usize) -> String {
        match self.value(row) {
            Value::Str(s) => s,
            Value::Null => String::new(),
            other => format!("{other:?}"),
        }
    }
}

/// A time as InfluxDB writes it: RFC3339 with the fraction trimmed, in `tz` when given (Go's
/// layout writes `Z` for a zero offset).
pub fn format_time(ns: i64, tz: Option<chrono_tz::Tz>) -> String {
    use chrono::{Offset, TimeZone};
    let Some(tz) = tz else {
        return rfc3339(ns);
    };
    let offset = tz
        .offset_from_utc_datetime(&chrono::DateTime::from_timestamp_nanos(ns).naive_utc())
        .fix()
        .local_minus_utc() as i64;
    let mut s = rfc3339(ns + offset * 1_000_000_000);
    s.pop();
    if offset == 0 {
        s.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let a = offset.abs();
        s.push_str(&format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60));
    }
    s
}

/// Go's `time.RFC3339Nano`: fraction without trailing zeros, `Z`.
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let Some(dt) = chrono::DateTime::from_timestamp(secs, 0) else {
        return ns.to_string();
    };
    let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    if frac > 0 {
        let digits = format!("{frac:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push('Z');
    s
}
