//! Timestream's batch load `DataModel` and the mapping of CSV rows to WriteRecords records.
//! Pure: no I/O, so that other importers (`hourglass import`) can call [`map_csv`] too.
//!
//! * `TimeColumn` holds epoch integers in `TimeUnit` (MILLISECONDS by default).
//! * `DimensionMappings`: `SourceColumn` → dimension `DestinationColumn` (default: the source
//!   name); a null dimension is left out of the record.
//! * `MultiMeasureMappings`: one MULTI record per row, named `TargetMultiMeasureName` or the
//!   row's `MeasureNameColumn`; each attribute mapping is a measure (`TargetMultiMeasureAttributeName`
//!   or the source name) of its `MeasureValueType`; null values are left out.
//! * `MixedMeasureMappings`: each mapping whose `MeasureName` equals the row's
//!   `MeasureNameColumn` value (or that names none, or when there is no such column) makes one
//!   record: a scalar measure from `SourceColumn`, or (MeasureValueType MULTI) the measures of
//!   its `MultiMeasureAttributeMappings`; named `TargetMeasureName`, else `MeasureName`, else the
//!   source column.
//!
//! A row that cannot be mapped (a bad time, a value that is not of its type, no measure at all)
//! is rejected with its line and a reason; the others are kept.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::csv_rows::{CsvConfiguration, CsvFormat, CsvReader, CsvRecord};

/// `DimensionMapping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionMapping {
    pub source_column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_column: Option<String>,
}

/// `MultiMeasureAttributeMapping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeMapping {
    pub source_column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_multi_measure_attribute_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure_value_type: Option<String>,
}

/// `MultiMeasureMappings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MultiMeasureMappings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_multi_measure_name: Option<String>,
    #[serde(default)]
    pub multi_measure_attribute_mappings: Vec<AttributeMapping>,
}

/// `MixedMeasureMapping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MixedMeasureMapping {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_measure_name: Option<String>,
    pub measure_value_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_measure_attribute_mappings: Option<Vec<AttributeMapping>>,
}

/// `DataModel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataModel {
    pub time_column: Option<String>,
    pub time_unit: Option<String>,
    #[serde(default)]
    pub dimension_mappings: Vec<DimensionMapping>,
    pub multi_measure_mappings: Option<MultiMeasureMappings>,
    pub mixed_measure_mappings: Option<Vec<MixedMeasureMapping>>,
    pub measure_name_column: Option<String>,
}

const TIME_UNITS: [&str; 4] = ["MILLISECONDS", "SECONDS", "MICROSECONDS", "NANOSECONDS"];
const SCALAR_TYPES: [&str; 5] = ["DOUBLE", "BIGINT", "BOOLEAN", "VARCHAR", "TIMESTAMP"];

fn check_type(t: Option<&str>, path: &str, multi: bool) -> Result<(), String> {
    match t {
        None => Err(format!("{path}.MeasureValueType is required")),
        Some(t) if SCALAR_TYPES.contains(&t) || (multi && t == "MULTI") => Ok(()),
        Some(t) => Err(format!(
            "{path}.MeasureValueType '{t}' is not one of {}",
            if multi {
                "DOUBLE, BIGINT, BOOLEAN, VARCHAR, TIMESTAMP, MULTI"
            } else {
                "DOUBLE, BIGINT, BOOLEAN, VARCHAR, TIMESTAMP"
            }
        )),
    }
}

fn check_attributes(list: &[AttributeMapping], path: &str) -> Result<(), String> {
    if list.is_empty() {
        return Err(format!(
            "{path}.MultiMeasureAttributeMappings must hold at least one mapping"
        ));
    }
    for (i, a) in list.iter().enumerate() {
        let p = format!("{path}.MultiMeasureAttributeMappings[{i}]");
        if a.source_column.as_deref().is_none_or(str::is_empty) {
            return Err(format!("{p}.SourceColumn is required"));
        }
        check_type(a.measure_value_type.as_deref(), &p, false)?;
    }
    Ok(())
}

impl DataModel {
    /// Parses and checks a `DataModel` JSON object (as a request or an S3 object holds it).
    pub fn from_value(value: &Value) -> Result<DataModel, String> {
        let model: DataModel = serde_json::from_value(value.clone())
            .map_err(|e| format!("The DataModel is not valid: {e}"))?;
        model.check()?;
        Ok(model)
    }

    /// Checks the model's constraints (what CreateBatchLoadTask validates).
    pub fn check(&self) -> Result<(), String> {
        if self.time_column.as_deref().is_none_or(str::is_empty) {
            return Err("DataModel.TimeColumn is required".into());
        }
        if let Some(u) = &self.time_unit {
            if !TIME_UNITS.contains(&u.as_str()) {
                return Err(format!(
                    "DataModel.TimeUnit '{u}' is not one of MILLISECONDS, SECONDS, MICROSECONDS, NANOSECONDS"
                ));
            }
        }
        if self.dimension_mappings.is_empty() {
            return Err("DataModel.DimensionMappings must hold at least one mapping".into());
        }
        for (i, d) in self.dimension_mappings.iter().enumerate() {
            if d.source_column.as_deref().is_none_or(str::is_empty) {
                return Err(format!(
                    "DataModel.DimensionMappings[{i}].SourceColumn is required"
                ));
            }
        }
        match (&self.multi_measure_mappings, &self.mixed_measure_mappings) {
            (Some(_), Some(_)) => {
                Err("DataModel: give MultiMeasureMappings or MixedMeasureMappings, not both".into())
            }
            (None, None) => {
                Err("DataModel: MultiMeasureMappings or MixedMeasureMappings is required".into())
            }
            (Some(m), None) => {
                if m.target_multi_measure_name.is_none() && self.measure_name_column.is_none() {
                    return Err("DataModel: MultiMeasureMappings.TargetMultiMeasureName is required when there is no MeasureNameColumn".into());
                }
                check_attributes(
                    &m.multi_measure_attribute_mappings,
                    "DataModel.MultiMeasureMappings",
                )
            }
            (None, Some(list)) => {
                if list.is_empty() {
                    return Err(
                        "DataModel.MixedMeasureMappings must hold at least one mapping".into(),
                    );
                }
                for (i, m) in list.iter().enumerate() {
                    let p = format!("DataModel.MixedMeasureMappings[{i}]");
                    check_type(m.measure_value_type.as_deref(), &p, true)?;
                    if m.measure_value_type.as_deref() == Some("MULTI") {
                        let attrs = m.multi_measure_attribute_mappings.as_deref().unwrap_or(&[]);
                        check_attributes(attrs, &p)?;
                        if m.target_measure_name.is_none() && m.measure_name.is_none() {
                            return Err(format!(
                                "{p}: a MULTI mapping needs TargetMeasureName or MeasureName"
                            ));
                        }
                    } else if m.source_column.as_deref().is_none_or(str::is_empty) {
                        return Err(format!("{p}.SourceColumn is required"));
                    }
                }
                Ok(())
            }
        }
    }

    /// The `TimeUnit` of the records (MILLISECONDS by default).
    pub fn time_unit(&self) -> &str {
        self.time_unit.as_deref().unwrap_or("MILLISECONDS")
    }
}

/// A measure of a record: (name, column index, type).
#[derive(Debug, Clone)]
struct Measure {
    name: String,
    column: usize,
    kind: String,
}

#[derive(Debug, Clone)]
enum RecordShape {
    Scalar(Measure),
    Multi(Vec<Measure>),
}

#[derive(Debug, Clone)]
struct RecordPlan {
    /// The `MeasureNameColumn` value this plan applies to (`None`: every row).
    when: Option<String>,
    /// The record's measure name (`None`: the row's `MeasureNameColumn` value).
    name: Option<String>,
    shape: RecordShape,
}

/// A [`DataModel`] bound to a file's header: column positions resolved.
#[derive(Debug, Clone)]
pub struct Mapper {
    time: usize,
    time_unit: String,
    dimensions: Vec<(String, usize)>,
    measure_name_column: Option<usize>,
    plans: Vec<RecordPlan>,
    version: Option<i64>,
}

impl Mapper {
    /// Binds `model` to `header`; a column the model names that the header lacks is an error
    /// (for the whole file). `version` is the records' `Version` (`RecordVersion`).
    pub fn new(
        model: &DataModel,
        header: &[Option<String>],
        version: Option<i64>,
    ) -> Result<Mapper, String> {
        let positions: HashMap<&str, usize> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_deref().map(|h| (h, i)))
            .collect();
        let col = |name: &str| {
            positions.get(name).copied().ok_or_else(|| {
                format!("The column '{name}' of the data model is not in the file's header.")
            })
        };
        let attrs = |list: &[AttributeMapping]| -> Result<Vec<Measure>, String> {
            list.iter()
                .map(|a| {
                    let source = a.source_column.as_deref().unwrap_or_default();
                    Ok(Measure {
                        name: a
                            .target_multi_measure_attribute_name
                            .clone()
                            .unwrap_or_else(|| source.to_string()),
                        column: col(source)?,
                        kind: a
                            .measure_value_type
                            .clone()
                            .unwrap_or_else(|| "VARCHAR".into()),
                    })
                })
                .collect()
        };
        let time = col(model.time_column.as_deref().unwrap_or_default())?;
        let dimensions = model
            .dimension_mappings
            .iter()
            .map(|d| {
                let source = d.source_column.as_deref().unwrap_or_default();
                let name = d
                    .destination_column
                    .clone()
                    .unwrap_or_else(|| source.to_string());
                col(source).map(|c| (name, c))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let measure_name_column = model.measure_name_column.as_deref().map(col).transpose()?;
        let mut plans = Vec::new();
        if let Some(m) = &model.multi_measure_mappings {
            plans.push(RecordPlan {
                when: None,
                name: if measure_name_column.is_some() {
                    None
                } else {
                    m.target_multi_measure_name.clone()
                },
                shape: RecordShape::Multi(attrs(&m.multi_measure_attribute_mappings)?),
            });
        }
        for m in model.mixed_measure_mappings.iter().flatten() {
            let kind = m.measure_value_type.clone().unwrap_or_default();
            let shape = if kind == "MULTI" {
                RecordShape::Multi(attrs(
                    m.multi_measure_attribute_mappings.as_deref().unwrap_or(&[]),
                )?)
            } else {
                let source = m.source_column.as_deref().unwrap_or_default();
                RecordShape::Scalar(Measure {
                    name: source.to_string(),
                    column: col(source)?,
                    kind,
                })
            };
            let name = m
                .target_measure_name
                .clone()
                .or_else(|| m.measure_name.clone())
                .or_else(|| m.source_column.clone());
            plans.push(RecordPlan {
                when: measure_name_column.and(m.measure_name.clone()),
                name,
                shape,
            });
        }
        Ok(Mapper {
            time,
            time_unit: model.time_unit().to_string(),
            dimensions,
            measure_name_column,
            plans,
            version,
        })
    }

    /// The records of one row, or why it cannot be loaded.
    pub fn map(&self, row: &CsvRecord) -> Result<Vec<Value>, String> {
        let field = |i: usize| row.fields.get(i).and_then(|f| f.as_deref());
        let time = field(self.time).ok_or("The time column is empty.")?;
        let per_unit: i64 = match self.time_unit.as_str() {
            "SECONDS" => 1_000_000_000,
            "MICROSECONDS" => 1_000,
            "NANOSECONDS" => 1,
            _ => 1_000_000,
        };
        match time.parse::<i64>() {
            Err(_) => {
                return Err(format!(
                    "The time value is not an integer count of {}.",
                    self.time_unit.to_ascii_lowercase()
                ))
            }
            Ok(t) if t.checked_mul(per_unit).is_none() => {
                return Err("The time value is out of range.".into())
            }
            Ok(_) => {}
        }
        let dimensions: Vec<Value> = self
            .dimensions
            .iter()
            .filter_map(|(name, i)| {
                field(*i)
                    .map(|v| json!({"Name": name, "Value": v, "DimensionValueType": "VARCHAR"}))
            })
            .collect();
        if dimensions.is_empty() {
            return Err("The row has no dimension value.".into());
        }
        let row_measure_name = self.measure_name_column.and_then(field);
        if self.measure_name_column.is_some() && row_measure_name.is_none() {
            return Err("The measure name column is empty.".into());
        }
        let mut records = Vec::new();
        for plan in &self.plans {
            if let Some(when) = &plan.when {
                if Some(when.as_str()) != row_measure_name {
                    continue;
                }
            }
            let name = plan
                .name
                .as_deref()
                .or(row_measure_name)
                .ok_or("The record has no measure name.")?;
            let mut record = Map::new();
            record.insert("Dimensions".into(), Value::Array(dimensions.clone()));
            record.insert("MeasureName".into(), json!(name));
            record.insert("Time".into(), json!(time));
            record.insert("TimeUnit".into(), json!(self.time_unit));
            if let Some(v) = self.version {
                record.insert("Version".into(), json!(v));
            }
            match &plan.shape {
                RecordShape::Scalar(m) => {
                    let Some(value) = field(m.column) else {
                        continue;
                    };
                    check_value(value, &m.kind, &m.name)?;
                    record.insert("MeasureValue".into(), json!(value));
                    record.insert("MeasureValueType".into(), json!(m.kind));
                }
                RecordShape::Multi(measures) => {
                    let mut values = Vec::with_capacity(measures.len());
                    for m in measures {
                        if let Some(value) = field(m.column) {
                            check_value(value, &m.kind, &m.name)?;
                            values.push(json!({"Name": m.name, "Value": value, "Type": m.kind}));
                        }
                    }
                    if values.is_empty() {
                        continue;
                    }
                    record.insert("MeasureValueType".into(), json!("MULTI"));
                    record.insert("MeasureValues".into(), Value::Array(values));
                }
            }
            records.push(Value::Object(record));
        }
        if records.is_empty() {
            return Err("The row has no measure value to load.".into());
        }
        Ok(records)
    }
}

/// Checks that `value` is of measure type `kind`.
fn check_value(value: &str, kind: &str, name: &str) -> Result<(), String> {
    let ok = match kind {
        "BIGINT" | "TIMESTAMP" => value.parse::<i64>().is_ok(),
        "DOUBLE" => value.parse::<f64>().is_ok_and(f64::is_finite),
        "BOOLEAN" => matches!(value.to_ascii_lowercase().as_str(), "true" | "false"),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("The value of measure '{name}' is not a {kind}."))
    }
}

/// A row left out, with its line and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

/// The outcome of mapping one file: records with the line of their row, and rejected rows.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// `(line, record)`: WriteRecords `Record` objects.
    pub records: Vec<(u64, Value)>,
    pub rejections: Vec<Rejection>,
    /// Data rows read (rejected ones included).
    pub rows: u64,
}

/// Maps a whole CSV file (`bytes`, header first) by a `DataModel` JSON value and a
/// `CsvConfiguration` JSON value (null: defaults). `Err` is a problem with the whole file or
/// configuration (bad model, bad configuration, missing header or column).
pub fn map_csv(
    model: &Value,
    csv: &Value,
    bytes: &[u8],
    record_version: Option<i64>,
) -> Result<Mapped, String> {
    let model = DataModel::from_value(model)?;
    let format = CsvConfiguration::from_value(Some(csv))?.format()?;
    let (mapper, mut reader) = open_file(&model, &format, bytes, record_version)?;
    let mut out = Mapped::default();
    while let Some(next) = reader.next_record() {
        out.rows += 1;
        match next.map_err(|e| (e.line, e.reason)).and_then(|row| {
            mapper
                .map(&row)
                .map(|r| (row.line, r))
                .map_err(|e| (row.line, e))
        }) {
            Ok((line, records)) => out.records.extend(records.into_iter().map(|r| (line, r))),
            Err((line, reason)) => out.rejections.push(Rejection { line, reason }),
        }
    }
    Ok(out)
}

/// Reads the header of `bytes` and binds `model` to it: the mapper and a reader positioned at
/// the first data row.
pub fn open_file<'a>(
    model: &DataModel,
    format: &CsvFormat,
    bytes: &'a [u8],
    record_version: Option<i64>,
) -> Result<(Mapper, CsvReader<'a>), String> {
    let mut reader = CsvReader::new(bytes, format.clone());
    let header = match reader.next_record() {
        None => return Err("The file is empty: it has no header row.".into()),
        Some(Err(e)) => return Err(format!("The header row cannot be read: {}", e.reason)),
        Some(Ok(h)) => h,
    };
    let mapper = Mapper::new(model, &header.fields, record_version)?;
    Ok((mapper, reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multi_model() -> Value {
        json!({
            "TimeColumn": "ts", "TimeUnit": "SECONDS",
            "DimensionMappings": [{"SourceColumn": "host"}, {"SourceColumn": "r", "DestinationColumn": "region"}],
            "MultiMeasureMappings": {"TargetMultiMeasureName": "metrics", "MultiMeasureAttributeMappings": [
                {"SourceColumn": "cpu", "MeasureValueType": "DOUBLE"},
                {"SourceColumn": "mem", "TargetMultiMeasureAttributeName": "memory", "MeasureValueType": "BIGINT"}]}
        })
    }

    #[test]
    fn multi_measure_rows_become_multi_records_and_bad_rows_are_rejected() {
        let csv = "ts,host,r,cpu,mem\n100,h1,eu,0.5,10\n101,h2,,,11\nxx,h3,eu,1,1\n102,h4,eu,abc,1\n103,h5,eu,,\n";
        let m = map_csv(&multi_model(), &Value::Null, csv.as_bytes(), Some(3)).unwrap();
        assert_eq!(m.rows, 5);
        assert_eq!(m.records.len(), 2);
        assert_eq!(
            m.records[0],
            (
                2,
                json!({"Dimensions": [
                {"Name": "host", "Value": "h1", "DimensionValueType": "VARCHAR"},
                {"Name": "region", "Value": "eu", "DimensionValueType": "VARCHAR"}],
                "MeasureName": "metrics", "Time": "100", "TimeUnit": "SECONDS", "Version": 3,
                "MeasureValueType": "MULTI", "MeasureValues": [
                    {"Name": "cpu", "Value": "0.5", "Type": "DOUBLE"},
                    {"Name": "memory", "Value": "10", "Type": "BIGINT"}]})
            )
        );
        // A null dimension and a null measure are left out.
        assert_eq!(m.records[1].1["Dimensions"].as_array().unwrap().len(), 1);
        assert_eq!(m.records[1].1["MeasureValues"].as_array().unwrap().len(), 1);
        let lines: Vec<u64> = m.rejections.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![4, 5, 6]);
        assert!(m.rejections[0].reason.contains("not an integer"));
        assert!(m.rejections[1].reason.contains("not a DOUBLE"));
        assert!(m.rejections[2].reason.contains("no measure value"));
    }

    #[test]
    fn measure_name_column_names_multi_records() {
        let model = json!({"TimeColumn": "t", "DimensionMappings": [{"SourceColumn": "h"}],
            "MeasureNameColumn": "mn",
            "MultiMeasureMappings": {"MultiMeasureAttributeMappings": [{"SourceColumn": "v", "MeasureValueType": "BIGINT"}]}});
        let m = map_csv(&model, &json!({}), b"t,h,mn,v\n1,a,cpu,5\n2,a,,6\n", None).unwrap();
        assert_eq!(m.records.len(), 1);
        assert_eq!(m.records[0].1["MeasureName"], "cpu");
        assert_eq!(m.records[0].1["TimeUnit"], "MILLISECONDS");
        assert!(m.records[0].1.get("Version").is_none());
        assert_eq!(m.rejections[0].line, 3);
    }

    #[test]
    fn mixed_mappings_select_by_measure_name_and_make_scalar_and_multi_records() {
        let model = json!({"TimeColumn": "t", "TimeUnit": "NANOSECONDS",
            "DimensionMappings": [{"SourceColumn": "h"}], "MeasureNameColumn": "kind",
            "MixedMeasureMappings": [
                {"MeasureName": "temp", "SourceColumn": "a", "TargetMeasureName": "temperature", "MeasureValueType": "DOUBLE"},
                {"MeasureName": "state", "SourceColumn": "b", "MeasureValueType": "VARCHAR"},
                {"MeasureName": "both", "MeasureValueType": "MULTI", "MultiMeasureAttributeMappings": [
                    {"SourceColumn": "a", "MeasureValueType": "DOUBLE"},
                    {"SourceColumn": "b", "TargetMultiMeasureAttributeName": "s", "MeasureValueType": "VARCHAR"}]}]});
        let csv = "t,h,kind,a,b\n1,x,temp,21.5,\n2,x,state,,on\n3,x,both,1.5,off\n4,x,other,1,1\n";
        let m = map_csv(&model, &Value::Null, csv.as_bytes(), None).unwrap();
        let got: Vec<(u64, &str, &str)> = m
            .records
            .iter()
            .map(|(l, r)| {
                (
                    *l,
                    r["MeasureName"].as_str().unwrap(),
                    r["MeasureValueType"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "temperature", "DOUBLE"),
                (3, "state", "VARCHAR"),
                (4, "both", "MULTI")
            ]
        );
        assert_eq!(m.records[0].1["MeasureValue"], "21.5");
        assert_eq!(
            m.records[2].1["MeasureValues"][1],
            json!({"Name": "s", "Value": "off", "Type": "VARCHAR"})
        );
        assert_eq!(
            m.rejections,
            vec![Rejection {
                line: 5,
                reason: "The row has no measure value to load.".into()
            }]
        );
    }

    #[test]
    fn mixed_mappings_without_a_measure_name_column_apply_to_every_row() {
        let model = json!({"TimeColumn": "t", "DimensionMappings": [{"SourceColumn": "h"}],
            "MixedMeasureMappings": [
                {"SourceColumn": "a", "MeasureValueType": "BIGINT"},
                {"SourceColumn": "b", "TargetMeasureName": "flag", "MeasureValueType": "BOOLEAN"}]});
        let m = map_csv(
            &model,
            &Value::Null,
            b"t,h,a,b\n1,x,5,true\n2,x,,false\n3,x,1,maybe\n",
            None,
        )
        .unwrap();
        assert_eq!(m.records.len(), 3);
        assert_eq!(m.records[0].1["MeasureName"], "a");
        assert_eq!(m.records[1].1["MeasureName"], "flag");
        assert_eq!(m.records[2].0, 3);
        assert_eq!(m.rejections.len(), 1);
        assert!(m.rejections[0].reason.contains("not a BOOLEAN"));
    }

    #[test]
    fn models_are_checked_and_missing_columns_fail_the_file() {
        let bad = [
            json!({"DimensionMappings": [{"SourceColumn": "h"}], "MultiMeasureMappings": {"TargetMultiMeasureName": "m", "MultiMeasureAttributeMappings": [{"SourceColumn": "v", "MeasureValueType": "DOUBLE"}]}}),
            json!({"TimeColumn": "t", "DimensionMappings": [], "MultiMeasureMappings": {"TargetMultiMeasureName": "m", "MultiMeasureAttributeMappings": [{"SourceColumn": "v", "MeasureValueType": "DOUBLE"}]}}),
            json!({"TimeColumn": "t", "TimeUnit": "HOURS", "DimensionMappings": [{"SourceColumn": "h"}], "MultiMeasureMappings": {"TargetMultiMeasureName": "m", "MultiMeasureAttributeMappings": [{"SourceColumn": "v", "MeasureValueType": "DOUBLE"}]}}),
            json!({"TimeColumn": "t", "DimensionMappings": [{"SourceColumn": "h"}], "MultiMeasureMappings": {"MultiMeasureAttributeMappings": [{"SourceColumn": "v", "MeasureValueType": "DOUBLE"}]}}),
            json!({"TimeColumn": "t", "DimensionMappings": [{"SourceColumn": "h"}], "MultiMeasureMappings": {"TargetMultiMeasureName": "m", "MultiMeasureAttributeMappings": [{"SourceColumn": "v", "MeasureValueType": "MULTI"}]}}),
            json!({"TimeColumn": "t", "DimensionMappings": [{"SourceColumn": "h"}]}),
            json!({"TimeColumn": "t", "DimensionMappings": [{"SourceColumn": "h"}], "MixedMeasureMappings": [{"MeasureValueType": "DOUBLE"}]}),
        ];
        for model in bad {
            assert!(DataModel::from_value(&model).is_err(), "{model}");
        }
        let e = map_csv(
            &multi_model(),
            &Value::Null,
            b"ts,host,cpu,mem\n1,a,1,1\n",
            None,
        )
        .unwrap_err();
        assert!(e.contains("'r'"), "{e}");
        assert!(map_csv(&multi_model(), &Value::Null, b"", None)
            .unwrap_err()
            .contains("empty"));
    }
}
