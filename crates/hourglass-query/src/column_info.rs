//! Timestream's `ColumnInfo` of a result column, from its Arrow type: what the Query API
//! answers and what UNLOAD writes in its metadata file (`hourglass-unload`). The mapping table
//! is in `hourglass-timestream`'s `query::encode` module documentation.

use arrow::datatypes::{DataType, Field, IntervalUnit};
use serde_json::{json, Value};

/// The `Type` of a column of Arrow type `dt`.
pub fn type_json(dt: &DataType) -> Value {
    let scalar = |s: &str| json!({"ScalarType": s});
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => scalar("VARCHAR"),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => scalar("VARCHAR"),
        DataType::Dictionary(_, value) => type_json(value),
        DataType::Boolean => scalar("BOOLEAN"),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            scalar("INTEGER")
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => scalar("BIGINT"),
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => scalar("DOUBLE"),
        DataType::Timestamp(_, _) => scalar("TIMESTAMP"),
        DataType::Date32 | DataType::Date64 => scalar("DATE"),
        DataType::Time32(_) | DataType::Time64(_) => scalar("TIME"),
        DataType::Interval(IntervalUnit::YearMonth) => scalar("INTERVAL_YEAR_TO_MONTH"),
        DataType::Interval(_) | DataType::Duration(_) => scalar("INTERVAL_DAY_TO_SECOND"),
        DataType::Null => scalar("UNKNOWN"),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => match timeseries_value_type(f) {
            Some(value) => json!({"TimeSeriesMeasureValueColumnInfo": {"Type": type_json(value)}}),
            None => json!({"ArrayColumnInfo": {"Type": type_json(f.data_type())}}),
        },
        DataType::Struct(fields) => json!({"RowColumnInfo": fields
            .iter()
            .map(|f| column_info(f.name(), f.data_type()))
            .collect::<Vec<_>>()}),
        DataType::Map(entries, _) => {
            json!({"ArrayColumnInfo": {"Type": type_json(entries.data_type())}})
        }
        DataType::RunEndEncoded(_, values) => type_json(values.data_type()),
        _ => scalar("VARCHAR"),
    }
}

/// `{"Name": name, "Type": ...}`.
pub fn column_info(name: &str, dt: &DataType) -> Value {
    json!({"Name": name, "Type": type_json(dt)})
}

/// A list element that is a `timeseries` data point: Struct{time: Timestamp, value: T}.
pub fn timeseries_value_type(element: &Field) -> Option<&DataType> {
    let DataType::Struct(fields) = element.data_type() else {
        return None;
    };
    if fields.len() != 2 {
        return None;
    }
    let time = fields
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case("time"))?;
    let value = fields
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case("value"))?;
    matches!(time.data_type(), DataType::Timestamp(_, _)).then(|| value.data_type())
}
