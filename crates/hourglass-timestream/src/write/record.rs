//! WriteRecords' request shapes, their model constraints (a `ValidationException` for the whole
//! request) and the per-record checks and merging with `CommonAttributes` (a rejected record).

use hourglass_core::properties::FUTURE_INGESTION_NANOS;
use hourglass_core::time::format_millis_utc;
use hourglass_core::{ColumnType, TableProperties};
use serde::Deserialize;

use super::index::{fingerprint, series_key};
use crate::protocol::{check_enum, check_length, constraint_error, required, ApiError, JStr};

/// Records per request (model `Records` 1..100).
pub const MAX_RECORDS: usize = 100;
/// Dimensions per record (model) and per table (quota).
pub const MAX_DIMENSIONS: usize = 128;
/// Bytes of a dimension name (quota).
pub const MAX_DIMENSION_NAME_BYTES: usize = 60;
/// Bytes of a measure name (quota).
pub const MAX_MEASURE_NAME_BYTES: usize = 256;
/// Bytes of a record: dimension names and values, measure name, measure names and values.
pub const MAX_RECORD_BYTES: usize = 2048;
/// Measures of one multi-measure record.
pub const MAX_MULTI_MEASURES: usize = 256;

pub const MEASURE_VALUE_TYPES: &[&str] = &[
    "DOUBLE",
    "BIGINT",
    "VARCHAR",
    "BOOLEAN",
    "TIMESTAMP",
    "MULTI",
];
pub const TIME_UNITS: &[&str] = &["MILLISECONDS", "SECONDS", "MICROSECONDS", "NANOSECONDS"];

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct WriteRecordsIn<'a> {
    #[serde(borrow)]
    pub database_name: Option<JStr<'a>>,
    #[serde(borrow)]
    pub table_name: Option<JStr<'a>>,
    #[serde(borrow)]
    pub common_attributes: Option<RecordIn<'a>>,
    #[serde(borrow)]
    pub records: Option<Vec<RecordIn<'a>>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct RecordIn<'a> {
    #[serde(borrow)]
    pub dimensions: Option<Vec<DimensionIn<'a>>>,
    #[serde(borrow)]
    pub measure_name: Option<JStr<'a>>,
    #[serde(borrow)]
    pub measure_value: Option<JStr<'a>>,
    #[serde(borrow)]
    pub measure_value_type: Option<JStr<'a>>,
    #[serde(borrow)]
    pub time: Option<JStr<'a>>,
    #[serde(borrow)]
    pub time_unit: Option<JStr<'a>>,
    pub version: Option<i64>,
    #[serde(borrow)]
    pub measure_values: Option<Vec<MeasureValueIn<'a>>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionIn<'a> {
    #[serde(borrow)]
    pub name: Option<JStr<'a>>,
    #[serde(borrow)]
    pub value: Option<JStr<'a>>,
    #[serde(borrow)]
    pub dimension_value_type: Option<JStr<'a>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct MeasureValueIn<'a> {
    #[serde(borrow)]
    pub name: Option<JStr<'a>>,
    #[serde(borrow)]
    pub value: Option<JStr<'a>>,
    #[serde(borrow, rename = "Type")]
    pub kind: Option<JStr<'a>>,
}

/// Where a record is in the request: `CommonAttributes` or `Records[i]`.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    Common,
    Record(usize),
}

impl Place {
    /// The AWS path of the record (`commonAttributes`, `records.3.member`).
    pub fn path(self) -> String {
        match self {
            Place::Common => "commonAttributes".to_string(),
            Place::Record(i) => format!("records.{}.member", i + 1),
        }
    }
}

/// Checks the model's constraints of one record (or of `CommonAttributes`). Cheap when valid:
/// member paths are only built for the error.
pub fn check_model(rec: &RecordIn, place: Place) -> Result<(), ApiError> {
    let valid = rec.dimensions.as_ref().is_none_or(|dims| {
        dims.len() <= MAX_DIMENSIONS
            && dims.iter().all(|d| {
                d.name.as_deref().is_some_and(|n| !n.is_empty())
                    && d.value.as_deref().is_some_and(|v| !v.is_empty())
                    && d.dimension_value_type
                        .as_deref()
                        .is_none_or(|t| t == "VARCHAR")
            })
    }) && rec
        .measure_name
        .as_deref()
        .is_none_or(|n| !n.is_empty() && n.len() <= 256)
        && rec
            .measure_value
            .as_deref()
            .is_none_or(|v| !v.is_empty() && v.len() <= 2048)
        && rec
            .measure_value_type
            .as_deref()
            .is_none_or(|t| MEASURE_VALUE_TYPES.contains(&t))
        && rec
            .time
            .as_deref()
            .is_none_or(|t| !t.is_empty() && t.len() <= 256)
        && rec
            .time_unit
            .as_deref()
            .is_none_or(|u| TIME_UNITS.contains(&u))
        && rec.version.is_none_or(|v| v >= 1)
        && rec.measure_values.as_ref().is_none_or(|mvs| {
            mvs.iter().all(|m| {
                m.name.as_deref().is_some_and(|n| !n.is_empty())
                    && m.value
                        .as_deref()
                        .is_some_and(|v| !v.is_empty() && v.len() <= 2048)
                    && m.kind
                        .as_deref()
                        .is_some_and(|t| MEASURE_VALUE_TYPES.contains(&t))
            })
        });
    if valid {
        return Ok(());
    }
    check_model_at(rec, &place.path())
}

fn check_model_at(rec: &RecordIn, path: &str) -> Result<(), ApiError> {
    if let Some(dims) = &rec.dimensions {
        if dims.len() > MAX_DIMENSIONS {
            return Err(constraint_error(
                None,
                &format!("{path}.dimensions"),
                &format!("Member must have length less than or equal to {MAX_DIMENSIONS}"),
            ));
        }
        for (i, d) in dims.iter().enumerate() {
            let p = format!("{path}.dimensions.{}.member", i + 1);
            let name = d
                .name
                .as_deref()
                .ok_or_else(|| required(&format!("{p}.name")))?;
            check_length(name, &format!("{p}.name"), 1, None)?;
            let value = d
                .value
                .as_deref()
                .ok_or_else(|| required(&format!("{p}.value")))?;
            check_length(value, &format!("{p}.value"), 1, None)?;
            if let Some(t) = &d.dimension_value_type {
                check_enum(t, &format!("{p}.dimensionValueType"), &["VARCHAR"])?;
            }
        }
    }
    if let Some(n) = &rec.measure_name {
        check_length(n, &format!("{path}.measureName"), 1, Some(256))?;
    }
    if let Some(v) = &rec.measure_value {
        check_length(v, &format!("{path}.measureValue"), 1, Some(2048))?;
    }
    if let Some(t) = &rec.measure_value_type {
        check_enum(t, &format!("{path}.measureValueType"), MEASURE_VALUE_TYPES)?;
    }
    if let Some(t) = &rec.time {
        check_length(t, &format!("{path}.time"), 1, Some(256))?;
    }
    if let Some(u) = &rec.time_unit {
        check_enum(u, &format!("{path}.timeUnit"), TIME_UNITS)?;
    }
    if let Some(v) = rec.version {
        if v < 1 {
            return Err(ApiError::validation(format!(
                "The record version {v} at '{path}.version' is invalid: Version must be 1 or greater."
            )));
        }
    }
    if let Some(mvs) = &rec.measure_values {
        for (i, m) in mvs.iter().enumerate() {
            let p = format!("{path}.measureValues.{}.member", i + 1);
            let name = m
                .name
                .as_deref()
                .ok_or_else(|| required(&format!("{p}.name")))?;
            check_length(name, &format!("{p}.name"), 1, None)?;
            let value = m
                .value
                .as_deref()
                .ok_or_else(|| required(&format!("{p}.value")))?;
            check_length(value, &format!("{p}.value"), 1, Some(2048))?;
            let kind = m
                .kind
                .as_deref()
                .ok_or_else(|| required(&format!("{p}.type")))?;
            check_enum(kind, &format!("{p}.type"), MEASURE_VALUE_TYPES)?;
        }
    }
    Ok(())
}

/// A typed measure value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeasureVal<'a> {
    Double(f64),
    Bigint(i64),
    Varchar(&'a str),
    Boolean(bool),
    /// Nanoseconds since the epoch.
    Timestamp(i64),
}

impl MeasureVal<'_> {
    pub fn column_type(&self) -> ColumnType {
        match self {
            MeasureVal::Double(_) => ColumnType::Double,
            MeasureVal::Bigint(_) => ColumnType::Bigint,
            MeasureVal::Varchar(_) => ColumnType::Varchar,
            MeasureVal::Boolean(_) => ColumnType::Boolean,
            MeasureVal::Timestamp(_) => ColumnType::Timestamp,
        }
    }
}

/// A record ready to be checked against the table and written.
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    /// Position in the request (`RecordIndex`).
    pub index: usize,
    pub time: i64,
    pub measure_name: &'a str,
    pub dims: Vec<(&'a str, &'a str)>,
    /// Column name and value: `measure_value::<type>` for single-measure records, each
    /// `MeasureValues` name for multi-measure ones.
    pub measures: Vec<(&'a str, MeasureVal<'a>)>,
    pub version: i64,
    /// Hash of measure name and dimensions (order-independent).
    pub series: u64,
    /// Hash of the measure values (order-independent).
    pub fingerprint: u64,
    /// Older than the memory store: counted under `MagneticStore`.
    pub magnetic: bool,
}

/// Why a record cannot be written.
#[derive(Debug)]
pub enum RecordError {
    /// The whole request is invalid.
    Validation(ApiError),
    /// This record is rejected; the others are written.
    Reject(String),
}

impl From<ApiError> for RecordError {
    fn from(e: ApiError) -> Self {
        RecordError::Validation(e)
    }
}

/// What the table imposes on records, computed once per request.
#[derive(Debug, Clone)]
pub struct TableRules {
    pub properties: TableProperties,
    pub now: i64,
    /// After a memory retention increase, the memory store's lower bound until it fills up.
    pub memory_floor: i64,
    /// Dimensions a partition key with `EnforcementInRecord: REQUIRED` names.
    pub required_dimensions: Vec<String>,
}

impl TableRules {
    /// `None` when `time` may be written now, else Timestream's reason text.
    pub fn check_time(&self, time: i64) -> Option<String> {
        if let Some(reason) = self.properties.check_write_time(time, self.now) {
            return Some(reason);
        }
        if !self.properties.magnetic_writes_enabled && time < self.memory_floor {
            return Some(format!(
                "The record timestamp is outside the time range [{}, {}) of the memory store.",
                format_millis_utc(self.memory_floor),
                format_millis_utc(self.now.saturating_add(FUTURE_INGESTION_NANOS))
            ));
        }
        None
    }

    /// Whether a record at `time` goes to the magnetic store.
    pub fn is_magnetic(&self, time: i64) -> bool {
        time < self.properties.memory_cutoff(self.now)
    }
}

pub fn unit_nanos(unit: Option<&str>) -> i64 {
    match unit {
        Some("SECONDS") => 1_000_000_000,
        Some("MICROSECONDS") => 1_000,
        Some("NANOSECONDS") => 1,
        _ => 1_000_000,
    }
}

/// A decimal integer time (or TIMESTAMP measure value) in `unit` to nanoseconds.
pub fn parse_time(text: &str, unit_nanos: i64) -> Option<i64> {
    let t = text.trim();
    if t.is_empty()
        || !t
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
    {
        return None;
    }
    t.parse::<i64>().ok()?.checked_mul(unit_nanos)
}

/// Parses a measure value of a scalar type (`Err` is the reason to reject the record).
pub fn parse_value<'a>(
    text: &'a str,
    kind: &str,
    unit_nanos: i64,
    what: &str,
) -> Result<MeasureVal<'a>, String> {
    let bad = |kind: &str| {
        format!(
            "The {what} value '{}' is not a valid {kind}.",
            crate::protocol::truncate(text, 64)
        )
    };
    match kind {
        "DOUBLE" => {
            let v: f64 = text.trim().parse().map_err(|_| bad("DOUBLE"))?;
            if !v.is_finite() {
                return Err(format!(
                    "The {what} value '{text}' is not a finite DOUBLE; NaN and Infinity cannot be written."
                ));
            }
            Ok(MeasureVal::Double(v))
        }
        "BIGINT" => text
            .trim()
            .parse::<i64>()
            .map(MeasureVal::Bigint)
            .map_err(|_| bad("BIGINT")),
        "BOOLEAN" => {
            let t = text.trim();
            if t.eq_ignore_ascii_case("true") {
                Ok(MeasureVal::Boolean(true))
            } else if t.eq_ignore_ascii_case("false") {
                Ok(MeasureVal::Boolean(false))
            } else {
                Err(bad("BOOLEAN"))
            }
        }
        "VARCHAR" => Ok(MeasureVal::Varchar(text)),
        "TIMESTAMP" => parse_time(text, unit_nanos)
            .map(MeasureVal::Timestamp)
            .ok_or_else(|| bad("TIMESTAMP")),
        _ => Err(format!(
            "The {what} has type {kind}, which is not a scalar type."
        )),
    }
}

fn is_reserved(name: &str) -> bool {
    name == hourglass_core::TIME_COLUMN
        || name == hourglass_core::MEASURE_NAME_COLUMN
        || name.starts_with("measure_value::")
}

/// Single-measure value columns.
pub fn single_measure_column(kind: &str) -> &'static str {
    match kind {
        "BIGINT" => "measure_value::bigint",
        "VARCHAR" => "measure_value::varchar",
        "BOOLEAN" => "measure_value::boolean",
        "TIMESTAMP" => "measure_value::timestamp",
        _ => "measure_value::double",
    }
}

/// Merges `rec` with `common` and checks it. The model constraints were checked before.
pub fn prepare<'a>(
    index: usize,
    common: Option<&'a RecordIn<'a>>,
    rec: &'a RecordIn<'a>,
    rules: &TableRules,
) -> Result<Prepared<'a>, RecordError> {
    let path = || Place::Record(index).path();
    let pick = |f: fn(&'a RecordIn<'a>) -> Option<&'a str>| f(rec).or_else(|| common.and_then(f));

    // Dimensions: the common ones, then the record's (no overlap).
    let common_dims = common.and_then(|c| c.dimensions.as_deref()).unwrap_or(&[]);
    let own_dims = rec.dimensions.as_deref().unwrap_or(&[]);
    let mut dims: Vec<(&'a str, &'a str)> = Vec::with_capacity(common_dims.len() + own_dims.len());
    for d in common_dims.iter().chain(own_dims) {
        let (Some(name), Some(value)) = (d.name.as_deref(), d.value.as_deref()) else {
            continue; // checked by check_model
        };
        if let Some((_, _)) = dims.iter().find(|(n, _)| *n == name) {
            if common_dims.iter().any(|c| c.name.as_deref() == Some(name))
                && own_dims.iter().any(|o| o.name.as_deref() == Some(name))
            {
                return Err(RecordError::Validation(ApiError::validation(format!(
                    "Dimension '{name}' of the record at index {index} is also in CommonAttributes: the dimensions of CommonAttributes and of a record may not overlap."
                ))));
            }
            return Err(RecordError::Reject(format!(
                "The record has the dimension '{name}' more than once."
            )));
        }
        dims.push((name, value));
    }
    if dims.is_empty() {
        return Err(RecordError::Validation(ApiError::validation(
            "At least one dimension is required for a record.",
        )));
    }
    if dims.len() > MAX_DIMENSIONS {
        return Err(RecordError::Reject(format!(
            "The record has {} dimensions; the limit is {MAX_DIMENSIONS}.",
            dims.len()
        )));
    }

    let measure_name = pick(|r| r.measure_name.as_deref())
        .ok_or_else(|| RecordError::Validation(required(&format!("{}.measureName", path()))))?;
    let time_text = pick(|r| r.time.as_deref())
        .ok_or_else(|| RecordError::Validation(required(&format!("{}.time", path()))))?;
    let unit = unit_nanos(pick(|r| r.time_unit.as_deref()));
    let time = parse_time(time_text, unit)
        .ok_or_else(|| RecordError::Validation(ApiError::validation("Invalid time for record.")))?;
    let version = rec
        .version
        .or_else(|| common.and_then(|c| c.version))
        .unwrap_or(1);
    let kind = pick(|r| r.measure_value_type.as_deref()).unwrap_or("DOUBLE");
    let value = pick(|r| r.measure_value.as_deref());
    let multi_values = rec
        .measure_values
        .as_deref()
        .or_else(|| common.and_then(|c| c.measure_values.as_deref()));

    let mut measures: Vec<(&'a str, MeasureVal<'a>)> = Vec::new();
    if kind == "MULTI" {
        if value.is_some() {
            return Err(RecordError::Validation(ApiError::validation(format!(
                "The record at index {index} has MeasureValueType MULTI and a MeasureValue: a multi-measure record takes its values in MeasureValues."
            ))));
        }
        let values = multi_values.filter(|v| !v.is_empty()).ok_or_else(|| {
            RecordError::Validation(ApiError::validation(format!(
                "The record at index {index} has MeasureValueType MULTI but no MeasureValues."
            )))
        })?;
        if values.len() > MAX_MULTI_MEASURES {
            return Err(RecordError::Reject(format!(
                "The record has {} measure values; a multi-measure record can have at most {MAX_MULTI_MEASURES}.",
                values.len()
            )));
        }
        measures.reserve(values.len());
        for m in values {
            let (Some(name), Some(text), Some(t)) =
                (m.name.as_deref(), m.value.as_deref(), m.kind.as_deref())
            else {
                continue; // checked by check_model
            };
            if t == "MULTI" {
                return Err(RecordError::Reject(format!(
                    "The measure value '{name}' has type MULTI; the types of MeasureValues are DOUBLE, BIGINT, VARCHAR, BOOLEAN and TIMESTAMP."
                )));
            }
            if name.len() > MAX_MEASURE_NAME_BYTES {
                return Err(RecordError::Reject(format!(
                    "The measure name '{}...' is {} bytes long; the limit is {MAX_MEASURE_NAME_BYTES}.",
                    crate::protocol::truncate(name, 32),
                    name.len()
                )));
            }
            if is_reserved(name) {
                return Err(RecordError::Reject(format!(
                    "The measure name '{name}' is reserved (time, measure_name and measure_value::<type> are column names of every table)."
                )));
            }
            if measures.iter().any(|(n, _)| *n == name) {
                return Err(RecordError::Reject(format!(
                    "The record has the measure value '{name}' more than once."
                )));
            }
            if dims.iter().any(|(n, _)| *n == name) {
                return Err(RecordError::Reject(format!(
                    "'{name}' is both a dimension and a measure of the record."
                )));
            }
            let v = parse_value(text, t, unit, &format!("measure '{name}'"))
                .map_err(RecordError::Reject)?;
            measures.push((name, v));
        }
    } else {
        if multi_values.is_some_and(|v| !v.is_empty()) {
            return Err(RecordError::Validation(ApiError::validation(format!(
                "The record at index {index} has MeasureValues but MeasureValueType {kind}: MeasureValues are only allowed for type MULTI."
            ))));
        }
        let text = value.ok_or_else(|| {
            RecordError::Validation(required(&format!("{}.measureValue", path())))
        })?;
        let v = parse_value(text, kind, unit, "measure").map_err(RecordError::Reject)?;
        measures.push((single_measure_column(kind), v));
    }

    for (name, _) in &dims {
        if name.len() > MAX_DIMENSION_NAME_BYTES {
            return Err(RecordError::Reject(format!(
                "The dimension name '{}...' is {} bytes long; the limit is {MAX_DIMENSION_NAME_BYTES}.",
                crate::protocol::truncate(name, 32),
                name.len()
            )));
        }
        if is_reserved(name) {
            return Err(RecordError::Reject(format!(
                "The dimension name '{name}' is reserved (time, measure_name and measure_value::<type> are column names of every table)."
            )));
        }
    }
    if measure_name.len() > MAX_MEASURE_NAME_BYTES {
        return Err(RecordError::Reject(format!(
            "The measure name is {} bytes long; the limit is {MAX_MEASURE_NAME_BYTES}.",
            measure_name.len()
        )));
    }
    let size = record_size(measure_name, &dims, &measures, value, multi_values);
    if size > MAX_RECORD_BYTES {
        return Err(RecordError::Reject(format!(
            "The record is {size} bytes (dimensions, measure name and measure values); the maximum record size is 2 KB ({MAX_RECORD_BYTES} bytes)."
        )));
    }
    for required_dim in &rules.required_dimensions {
        if !dims.iter().any(|(n, _)| n == required_dim) {
            return Err(RecordError::Reject(format!(
                "The record has no dimension '{required_dim}', which the table's partition key requires (EnforcementInRecord REQUIRED)."
            )));
        }
    }
    if let Some(reason) = rules.check_time(time) {
        return Err(RecordError::Reject(reason));
    }
    let series = series_key(measure_name, &dims);
    let fingerprint = fingerprint(&measures);
    Ok(Prepared {
        index,
        time,
        measure_name,
        dims,
        measures,
        version,
        series,
        fingerprint,
        magnetic: rules.is_magnetic(time),
    })
}

fn record_size(
    measure_name: &str,
    dims: &[(&str, &str)],
    measures: &[(&str, MeasureVal)],
    value: Option<&str>,
    multi: Option<&[MeasureValueIn]>,
) -> usize {
    let dims: usize = dims.iter().map(|(n, v)| n.len() + v.len()).sum();
    let values = match (value, multi) {
        (Some(v), _) => v.len(),
        (None, Some(mvs)) => mvs
            .iter()
            .map(|m| m.name.as_deref().map_or(0, str::len) + m.value.as_deref().map_or(0, str::len))
            .sum(),
        (None, None) => measures.len() * 8,
    };
    measure_name.len() + dims + values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode;

    fn rules() -> TableRules {
        TableRules {
            properties: TableProperties::default(),
            now: 1_700_000_000_000_000_000,
            memory_floor: i64::MIN,
            required_dimensions: Vec::new(),
        }
    }

    #[test]
    fn merges_common_attributes_and_defaults() {
        let body = br#"{"CommonAttributes":{"Dimensions":[{"Name":"region","Value":"eu"}],"MeasureName":"cpu","TimeUnit":"SECONDS","Time":"1700000000"},
            "Records":[{"Dimensions":[{"Name":"host","Value":"h1"}],"MeasureValue":"1.5"},
                       {"Dimensions":[{"Name":"host","Value":"h2"}],"MeasureValue":"7","MeasureValueType":"BIGINT","Version":3}]}"#;
        let req: WriteRecordsIn = decode(body).unwrap();
        let recs = req.records.as_ref().unwrap();
        let common = req.common_attributes.as_ref();
        let a = prepare(0, common, &recs[0], &rules()).unwrap();
        assert_eq!(a.dims, vec![("region", "eu"), ("host", "h1")]);
        assert_eq!(a.time, 1_700_000_000_000_000_000);
        assert_eq!(
            a.measures,
            vec![("measure_value::double", MeasureVal::Double(1.5))]
        );
        assert_eq!(a.version, 1);
        let b = prepare(1, common, &recs[1], &rules()).unwrap();
        assert_eq!(
            b.measures,
            vec![("measure_value::bigint", MeasureVal::Bigint(7))]
        );
        assert_eq!(b.version, 3);
        assert_ne!(a.series, b.series);
    }

    #[test]
    fn multi_measure_records_and_their_errors() {
        let body = br#"{"Records":[
            {"Dimensions":[{"Name":"host","Value":"h1"}],"MeasureName":"m","MeasureValueType":"MULTI","Time":"1700000000000",
             "MeasureValues":[{"Name":"a","Value":"1","Type":"DOUBLE"},{"Name":"b","Value":"true","Type":"BOOLEAN"},{"Name":"c","Value":"1700000000000","Type":"TIMESTAMP"}]},
            {"Dimensions":[{"Name":"host","Value":"h1"}],"MeasureName":"m","MeasureValueType":"MULTI","Time":"1700000000000",
             "MeasureValues":[{"Name":"a","Value":"x","Type":"BIGINT"}]},
            {"Dimensions":[{"Name":"time","Value":"h1"}],"MeasureName":"m","MeasureValue":"1","Time":"1700000000000"},
            {"MeasureName":"m","MeasureValue":"1","Time":"1700000000000"},
            {"Dimensions":[{"Name":"host","Value":"h1"}],"MeasureName":"m","MeasureValue":"NaN","Time":"1700000000000"},
            {"Dimensions":[{"Name":"host","Value":"h1"}],"MeasureName":"m","MeasureValue":"1","Time":"17x"},
            {"Dimensions":[{"Name":"host","Value":"h1"}],"MeasureName":"m","MeasureValue":"1","Time":"1000"}
        ]}"#;
        let req: WriteRecordsIn = decode(body).unwrap();
        let recs = req.records.as_ref().unwrap();
        let r = rules();
        let a = prepare(0, None, &recs[0], &r).unwrap();
        assert_eq!(a.measures.len(), 3);
        assert_eq!(
            a.measures[2].1,
            MeasureVal::Timestamp(1_700_000_000_000_000_000)
        );
        let reject = |i: usize| match prepare(i, None, &recs[i], &r) {
            Err(RecordError::Reject(reason)) => reason,
            other => panic!("record {i}: {other:?}"),
        };
        let invalid = |i: usize| match prepare(i, None, &recs[i], &r) {
            Err(RecordError::Validation(e)) => e.message,
            other => panic!("record {i}: {other:?}"),
        };
        assert_eq!(
            reject(1),
            "The measure 'a' value 'x' is not a valid BIGINT."
        );
        assert!(reject(2).contains("reserved"));
        assert_eq!(
            invalid(3),
            "At least one dimension is required for a record."
        );
        assert!(reject(4).contains("NaN"));
        assert_eq!(invalid(5), "Invalid time for record.");
        assert!(reject(6).starts_with("The record timestamp is outside the time range ["));
        assert!(reject(6).ends_with(") of the memory store."));
    }

    #[test]
    fn model_constraints_name_the_member() {
        let body = br#"{"Records":[{"Dimensions":[{"Name":"h","Value":"v","DimensionValueType":"BIGINT"}]}]}"#;
        let req: WriteRecordsIn = decode(body).unwrap();
        let e = check_model(&req.records.as_ref().unwrap()[0], Place::Record(0)).unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value 'BIGINT' at 'records.1.member.dimensions.1.member.dimensionValueType' failed to satisfy constraint: Member must satisfy enum value set: [VARCHAR]"
        );
    }

    #[test]
    fn values_parse_per_type() {
        assert_eq!(
            parse_value("1e3", "DOUBLE", 1, "m"),
            Ok(MeasureVal::Double(1000.0))
        );
        assert!(parse_value("inf", "DOUBLE", 1, "m").is_err());
        assert_eq!(
            parse_value("-5", "BIGINT", 1, "m"),
            Ok(MeasureVal::Bigint(-5))
        );
        assert!(parse_value("1.0", "BIGINT", 1, "m").is_err());
        assert_eq!(
            parse_value("TRUE", "BOOLEAN", 1, "m"),
            Ok(MeasureVal::Boolean(true))
        );
        assert_eq!(
            parse_value("12", "TIMESTAMP", 1000, "m"),
            Ok(MeasureVal::Timestamp(12_000))
        );
        assert_eq!(parse_time("123", 1_000_000), Some(123_000_000));
        assert_eq!(parse_time("9223372036854775807", 1_000_000), None);
        assert_eq!(parse_time("1.5", 1), None);
    }
}
