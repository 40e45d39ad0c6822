//! Timestamps in text with nanoseconds, for the clients that can take them.
//!
//! Hourglass keeps time to the nanosecond; PostgreSQL to the microsecond. By default the wire
//! carries what PostgreSQL would (binary `timestamp` is microseconds since 2000; text has six
//! fractional digits), because common clients reject more: psycopg 3 fails on a seven-digit
//! fraction. A session that wants the nanoseconds sets
//! `SET hourglass.timestamp_precision = 'nanosecond'` (back with `'microsecond'` or `RESET`):
//! from then on every `timestamp` / `timestamptz` column sent in **text** format — rows of plain
//! queries, cursors, and `COPY ... TO STDOUT` in text or CSV — carries nine fractional digits
//! (`2024-03-01 00:00:00.123456789`, `+00` after a `timestamptz`). The column's type stays
//! `timestamp`, so psql, pgjdbc (`Timestamp.getNanos`) and Go's pgx read it as one. Binary
//! columns are PostgreSQL's microseconds either way; a client reading binary gets the exact
//! nanoseconds as a number with `CAST(time AS BIGINT)` (nanoseconds since the epoch).
//!
//! Microseconds are truncated, not rounded, in both formats: a value never moves past the next
//! row's time.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::error::ArrowError;
use pgwire::api::results::{FieldFormat, FieldInfo};

/// The session parameter naming the precision.
pub const SETTING: &str = "hourglass.timestamp_precision";

/// How many fractional digits text timestamps carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// PostgreSQL's six digits (the default).
    #[default]
    Microsecond,
    /// Nine digits.
    Nanosecond,
}

impl Precision {
    /// Parses a `SET` value (`microsecond(s)`, `us`, `nanosecond(s)`, `ns`, any case).
    pub fn parse(value: &str) -> Result<Precision, String> {
        match value
            .trim()
            .trim_matches('\'')
            .to_ascii_lowercase()
            .as_str()
        {
            "microsecond" | "microseconds" | "us" | "default" => Ok(Precision::Microsecond),
            "nanosecond" | "nanoseconds" | "ns" => Ok(Precision::Nanosecond),
            other => Err(format!(
                "invalid value for parameter \"{SETTING}\": \"{other}\" (microsecond or nanosecond)"
            )),
        }
    }

    /// The precision a session's `SET` value (if any) asks for; an unparsable value (refused
    /// when it was set) reads as the default.
    pub fn of_setting(value: Option<&str>) -> Precision {
        value
            .and_then(|v| Precision::parse(v).ok())
            .unwrap_or_default()
    }
}

/// `batch` with its text-format timestamp columns written out with nine fractional digits
/// (`fields` are the columns as described to the client, one per column of `batch`).
pub fn with_nanosecond_text(
    batch: RecordBatch,
    fields: &[FieldInfo],
) -> Result<RecordBatch, ArrowError> {
    let text = |i: usize| {
        matches!(batch.column(i).data_type(), DataType::Timestamp(_, _))
            && fields.get(i).map(|f| f.format()) == Some(FieldFormat::Text)
    };
    if !(0..batch.num_columns()).any(text) {
        return Ok(batch);
    }
    let schema = batch.schema();
    let mut columns = Vec::with_capacity(batch.num_columns());
    let mut out_fields = Vec::with_capacity(batch.num_columns());
    for (i, column) in batch.columns().iter().enumerate() {
        let field = schema.field(i);
        if text(i) {
            columns.push(format_column(column)?);
            out_fields.push(Field::new(field.name(), DataType::Utf8, true));
        } else {
            columns.push(column.clone());
            out_fields.push(field.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(out_fields)), columns)
}

/// A timestamp column as PostgreSQL-style text with nine fractional digits.
fn format_column(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let DataType::Timestamp(unit, zone) = column.data_type() else {
        return Ok(column.clone());
    };
    let nanos = datafusion::arrow::compute::cast(
        column,
        &DataType::Timestamp(TimeUnit::Nanosecond, zone.clone()),
    )?;
    let nanos = nanos
        .as_any()
        .downcast_ref::<datafusion::arrow::array::TimestampNanosecondArray>()
        .ok_or_else(|| ArrowError::CastError(format!("timestamp({unit:?}) as nanoseconds")))?;
    let mut out = StringBuilder::with_capacity(nanos.len(), nanos.len() * 32);
    for i in 0..nanos.len() {
        if nanos.is_null(i) {
            out.append_null();
        } else {
            out.append_value(format_nanos(nanos.value(i), zone.is_some()));
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `2024-03-01 00:00:00.123456789` (UTC), with `+00` when `zoned` (a `timestamptz`, which
/// Hourglass sends in UTC).
pub fn format_nanos(nanos: i64, zoned: bool) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(nanos).naive_utc();
    let mut s = t.format("%Y-%m-%d %H:%M:%S%.9f").to_string();
    if zoned {
        s.push_str("+00");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, StringArray, TimestampNanosecondArray};
    use pgwire::api::Type;

    #[test]
    fn parses_the_setting() {
        assert_eq!(Precision::parse("'nanosecond'"), Ok(Precision::Nanosecond));
        assert_eq!(Precision::parse("NS"), Ok(Precision::Nanosecond));
        assert_eq!(Precision::parse("microseconds"), Ok(Precision::Microsecond));
        assert!(Precision::parse("millisecond")
            .unwrap_err()
            .contains(SETTING));
        assert_eq!(Precision::of_setting(None), Precision::Microsecond);
        assert_eq!(Precision::of_setting(Some("bad")), Precision::Microsecond);
    }

    #[test]
    fn formats_nine_digits_before_and_after_the_epoch() {
        assert_eq!(
            format_nanos(1_709_251_200_123_456_789, false),
            "2024-03-01 00:00:00.123456789"
        );
        assert_eq!(format_nanos(0, true), "1970-01-01 00:00:00.000000000+00");
        assert_eq!(format_nanos(-1, false), "1969-12-31 23:59:59.999999999");
    }

    #[test]
    fn only_text_timestamp_columns_change() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("b", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("v", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![Some(5), None])),
                Arc::new(TimestampNanosecondArray::from(vec![Some(5), Some(6)])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ],
        )
        .unwrap();
        let field =
            |name: &str, ty: Type, format| FieldInfo::new(name.to_string(), None, None, ty, format);
        let fields = [
            field("t", Type::TIMESTAMP, FieldFormat::Text),
            field("b", Type::TIMESTAMP, FieldFormat::Binary),
            field("v", Type::FLOAT8, FieldFormat::Text),
        ];
        let out = with_nanosecond_text(batch, &fields).unwrap();
        let t = out
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(t.value(0), "1970-01-01 00:00:00.000000005");
        assert!(t.is_null(1));
        assert!(matches!(
            out.column(1).data_type(),
            DataType::Timestamp(_, _)
        ));
        assert_eq!(out.column(2).data_type(), &DataType::Float64);
    }
}
