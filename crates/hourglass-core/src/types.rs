//! Column types and roles, and their Arrow representation.
//!
//! A table row has `time`, dimensions (strings, dictionary-encoded), `measure_name` and measure
//! columns of one [`ColumnType`] each. The role of an Arrow field is derived from its name and
//! type ([`column_role`]) so batches carry no extra metadata.

use std::sync::Arc;

use arrow_schema::{DataType, Field, TimeUnit};
use serde::{Deserialize, Serialize};

pub const TIME_COLUMN: &str = "time";
pub const MEASURE_NAME_COLUMN: &str = "measure_name";

/// The type of a measure column (dimensions are always strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ColumnType {
    Double,
    Bigint,
    /// Line protocol's unsigned integers (`u` suffix).
    Ubigint,
    Varchar,
    Boolean,
    Timestamp,
}

impl ColumnType {
    /// The Timestream name (`DOUBLE`, `BIGINT`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Double => "DOUBLE",
            ColumnType::Bigint => "BIGINT",
            ColumnType::Ubigint => "UBIGINT",
            ColumnType::Varchar => "VARCHAR",
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Timestamp => "TIMESTAMP",
        }
    }

    /// The line protocol name (`float`, `integer`, ...), for error messages to LP writers.
    pub fn line_protocol_name(self) -> &'static str {
        match self {
            ColumnType::Double => "float",
            ColumnType::Bigint => "integer",
            ColumnType::Ubigint => "unsigned",
            ColumnType::Varchar => "string",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
        }
    }

    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Double => DataType::Float64,
            ColumnType::Bigint => DataType::Int64,
            ColumnType::Ubigint => DataType::UInt64,
            ColumnType::Varchar => DataType::Utf8,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, None),
        }
    }

    pub fn from_arrow(dt: &DataType) -> Option<Self> {
        Some(match dt {
            DataType::Float64 => ColumnType::Double,
            DataType::Int64 => ColumnType::Bigint,
            DataType::UInt64 => ColumnType::Ubigint,
            DataType::Utf8 => ColumnType::Varchar,
            DataType::Boolean => ColumnType::Boolean,
            DataType::Timestamp(TimeUnit::Nanosecond, _) => ColumnType::Timestamp,
            _ => return None,
        })
    }
}

/// What a column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnRole {
    Time,
    Dimension,
    MeasureName,
    Measure,
}

/// The Arrow type of dimension and `measure_name` columns.
pub fn dimension_arrow_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

pub fn time_field() -> Arc<Field> {
    Arc::new(Field::new(
        TIME_COLUMN,
        DataType::Timestamp(TimeUnit::Nanosecond, None),
        false,
    ))
}

pub fn dimension_field(name: &str) -> Arc<Field> {
    Arc::new(Field::new(name, dimension_arrow_type(), true))
}

pub fn measure_field(name: &str, ty: ColumnType) -> Arc<Field> {
    Arc::new(Field::new(name, ty.arrow_type(), true))
}

/// The role of an Arrow field in a Hourglass batch.
pub fn column_role(field: &Field) -> ColumnRole {
    match field.name().as_str() {
        TIME_COLUMN => ColumnRole::Time,
        MEASURE_NAME_COLUMN => ColumnRole::MeasureName,
        _ if matches!(field.data_type(), DataType::Dictionary(_, _)) => ColumnRole::Dimension,
        _ => ColumnRole::Measure,
    }
}
