//! A scheduled query's result rows as Timestream records, by its `TargetConfiguration`: the time
//! column, dimensions (VARCHAR), and the measures of `MultiMeasureMappings` (one MULTI record a
//! row) or `MixedMeasureMappings` (one record per mapping a row, filtered by `MeasureNameColumn`
//! when it is given). Rows that cannot be mapped (NULL time or dimension, a value that does not
//! convert to its measure type, no measure value at all) are returned with the reason, for the
//! error report.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use serde_json::{json, Value};

use crate::definition::{AttributeMapping, TargetMapping};

/// A row that could not be written, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmapped {
    pub reason: String,
    /// What could be read of the row (dimensions, time, measures), as the error report lists it.
    pub record: Value,
}

/// The records of one batch, and the rows that could not be mapped.
#[derive(Debug, Default)]
pub struct Mapped {
    /// WriteRecords `Record` objects (time and TIMESTAMP measures in nanoseconds).
    pub records: Vec<Value>,
    pub unmapped: Vec<Unmapped>,
}

/// One column read as the type a mapping wants.
enum Column {
    Text(StringArray),
    Double(Float64Array),
    Bigint(Int64Array),
    Boolean(BooleanArray),
    Time(TimestampNanosecondArray),
}

impl Column {
    fn read(batch: &RecordBatch, name: &str, want: &str) -> Result<Column, String> {
        let array: &ArrayRef = batch
            .column_by_name(name)
            .ok_or_else(|| format!("the query's result has no column {name}"))?;
        let to = |t: &DataType| {
            cast(array, t).map_err(|e| format!("column {name} cannot be read as {want}: {e}"))
        };
        Ok(match want {
            "DOUBLE" => Column::Double(to(&DataType::Float64)?.as_primitive().clone()),
            "BIGINT" => Column::Bigint(to(&DataType::Int64)?.as_primitive().clone()),
            "BOOLEAN" => Column::Boolean(to(&DataType::Boolean)?.as_boolean().clone()),
            "TIMESTAMP" => Column::Time(
                to(&DataType::Timestamp(TimeUnit::Nanosecond, None))?
                    .as_primitive()
                    .clone(),
            ),
            _ => Column::Text(to(&DataType::Utf8)?.as_string::<i32>().clone()),
        })
    }

    /// The value of row `i` as WriteRecords text; `None` when NULL.
    fn text(&self, i: usize) -> Option<String> {
        fn get<A: Array>(a: &A, i: usize, f: impl FnOnce() -> String) -> Option<String> {
            (!a.is_null(i)).then(f)
        }
        match self {
            Column::Text(a) => get(a, i, || a.value(i).to_string()),
            Column::Double(a) => get(a, i, || format_double(a.value(i))),
            Column::Bigint(a) => get(a, i, || a.value(i).to_string()),
            Column::Boolean(a) => get(a, i, || a.value(i).to_string()),
            Column::Time(a) => get(a, i, || a.value(i).to_string()),
        }
    }
}

/// A double as WriteRecords takes it: the shortest text that reads back to the same value.
fn format_double(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        v.to_string()
    }
}

/// Maps `batch` by `mapping`; records carry `version`.
pub fn map_batch(batch: &RecordBatch, mapping: &TargetMapping, version: i64) -> Mapped {
    let mut out = Mapped::default();
    let n = batch.num_rows();
    let fail_all = |out: &mut Mapped, reason: String| {
        for _ in 0..n {
            out.unmapped.push(Unmapped {
                reason: reason.clone(),
                record: Value::Null,
            });
        }
    };
    let time = match Column::read(batch, &mapping.time_column, "TIMESTAMP") {
        Ok(c) => c,
        Err(e) => {
            fail_all(&mut out, e);
            return out;
        }
    };
    let mut dimensions = Vec::with_capacity(mapping.dimension_mappings.len());
    for d in &mapping.dimension_mappings {
        match Column::read(batch, &d.name, "VARCHAR") {
            Ok(c) => dimensions.push((d.name.as_str(), c)),
            Err(e) => {
                fail_all(&mut out, e);
                return out;
            }
        }
    }
    let measure_name = match &mapping.measure_name_column {
        Some(c) => match Column::read(batch, c, "VARCHAR") {
            Ok(col) => Some(col),
            Err(e) => {
                fail_all(&mut out, e);
                return out;
            }
        },
        None => None,
    };
    let read_attributes =
        |attrs: &[AttributeMapping]| -> Result<Vec<(String, String, Column)>, String> {
            attrs
                .iter()
                .map(|a| {
                    Column::read(batch, &a.source_column, &a.measure_value_type)
                        .map(|c| (a.target_name().to_string(), a.measure_value_type.clone(), c))
                })
                .collect()
        };

    // What each row becomes: (measure name, value type, source) for single measures, or a
    // multi record's attributes.
    enum Shape {
        Multi {
            name: Option<String>,
            attributes: Vec<(String, String, Column)>,
        },
        Mixed(Vec<MixedShape>),
    }
    struct MixedShape {
        /// Rows whose measure-name column holds this (when MeasureNameColumn is given).
        when: Option<String>,
        name: String,
        single: Option<(String, Column)>,
        attributes: Vec<(String, String, Column)>,
    }
    let shape = if let Some(multi) = &mapping.multi_measure_mappings {
        match read_attributes(&multi.multi_measure_attribute_mappings) {
            Ok(attributes) => Shape::Multi {
                name: multi.target_multi_measure_name.clone(),
                attributes,
            },
            Err(e) => {
                fail_all(&mut out, e);
                return out;
            }
        }
    } else {
        let mut shapes = Vec::new();
        for m in mapping.mixed_measure_mappings.iter().flatten() {
            let single = match (&m.source_column, m.measure_value_type.as_str()) {
                (Some(c), t) if t != "MULTI" => match Column::read(batch, c, t) {
                    Ok(col) => Some((t.to_string(), col)),
                    Err(e) => {
                        fail_all(&mut out, e);
                        return out;
                    }
                },
                _ => None,
            };
            let attributes =
                match read_attributes(m.multi_measure_attribute_mappings.as_deref().unwrap_or(&[]))
                {
                    Ok(a) => a,
                    Err(e) => {
                        fail_all(&mut out, e);
                        return out;
                    }
                };
            shapes.push(MixedShape {
                when: mapping
                    .measure_name_column
                    .as_ref()
                    .and(m.measure_name.clone()),
                name: m.target_name().unwrap_or_default().to_string(),
                single,
                attributes,
            });
        }
        Shape::Mixed(shapes)
    };

    for i in 0..n {
        let time_value = time.text(i);
        let mut dims = Vec::with_capacity(dimensions.len());
        let mut null_dimension = None;
        for (name, col) in &dimensions {
            match col.text(i) {
                Some(v) => {
                    dims.push(json!({"Name": name, "Value": v, "DimensionValueType": "VARCHAR"}))
                }
                None => null_dimension = Some(*name),
            }
        }
        let row_name = measure_name.as_ref().and_then(|c| c.text(i));
        let partial = || json!({"Dimensions": dims, "Time": time_value, "TimeUnit": "NANOSECONDS"});
        if time_value.is_none() {
            out.unmapped.push(Unmapped {
                reason: format!(
                    "The value of the time column {} is NULL.",
                    mapping.time_column
                ),
                record: partial(),
            });
            continue;
        }
        if let Some(d) = null_dimension {
            out.unmapped.push(Unmapped {
                reason: format!("The value of the dimension {d} is NULL."),
                record: partial(),
            });
            continue;
        }
        if measure_name.is_some() && row_name.is_none() {
            out.unmapped.push(Unmapped {
                reason: format!(
                    "The value of the measure name column {} is NULL.",
                    mapping.measure_name_column.as_deref().unwrap_or_default()
                ),
                record: partial(),
            });
            continue;
        }
        let record = |name: &str, extra: Value| {
            let mut r = json!({
                "Dimensions": dims,
                "MeasureName": name,
                "Time": time_value,
                "TimeUnit": "NANOSECONDS",
                "Version": version,
            });
            if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
                r.extend(extra.clone());
            }
            r
        };
        let values = |attributes: &[(String, String, Column)]| -> Vec<Value> {
            attributes
                .iter()
                .filter_map(|(name, ty, col)| {
                    col.text(i)
                        .map(|v| json!({"Name": name, "Value": v, "Type": ty}))
                })
                .collect()
        };
        match &shape {
            Shape::Multi { name, attributes } => {
                let Some(name) = row_name.clone().or_else(|| name.clone()) else {
                    continue;
                };
                let measures = values(attributes);
                if measures.is_empty() {
                    out.unmapped.push(Unmapped {
                        reason: "Every measure value of the row is NULL.".into(),
                        record: partial(),
                    });
                    continue;
                }
                out.records.push(record(
                    &name,
                    json!({"MeasureValueType": "MULTI", "MeasureValues": measures}),
                ));
            }
            Shape::Mixed(shapes) => {
                for s in shapes {
                    if let (Some(when), Some(row)) = (&s.when, &row_name) {
                        if when != row {
                            continue;
                        }
                    }
                    let name = match (&s.when, &row_name) {
                        (None, Some(row)) if s.name.is_empty() => row.clone(),
                        _ => s.name.clone(),
                    };
                    if let Some((ty, col)) = &s.single {
                        match col.text(i) {
                            Some(v) => out.records.push(record(
                                &name,
                                json!({"MeasureValueType": ty, "MeasureValue": v}),
                            )),
                            None => out.unmapped.push(Unmapped {
                                reason: format!("The value of the measure {name} is NULL."),
                                record: partial(),
                            }),
                        }
                    } else {
                        let measures = values(&s.attributes);
                        if measures.is_empty() {
                            out.unmapped.push(Unmapped {
                                reason: format!("Every value of the measure {name} is NULL."),
                                record: partial(),
                            });
                        } else {
                            out.records.push(record(
                                &name,
                                json!({"MeasureValueType": "MULTI", "MeasureValues": measures}),
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("host", DataType::Utf8, true),
            Field::new("avg_cpu", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(datafusion::arrow::array::TimestampMillisecondArray::from(
                    vec![Some(60_000), None, Some(120_000), Some(180_000)],
                )),
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    None,
                    Some("c"),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(0.1),
                    Some(2.0),
                    Some(3.0),
                    None,
                ])),
                Arc::new(Int64Array::from(vec![Some(3), Some(4), Some(5), None])),
            ],
        )
        .unwrap()
    }

    fn mapping(extra: Value) -> TargetMapping {
        let mut m = json!({"DatabaseName": "d", "TableName": "r", "TimeColumn": "t",
            "DimensionMappings": [{"Name": "host", "DimensionValueType": "VARCHAR"}]});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        serde_json::from_value(m).unwrap()
    }

    #[test]
    fn multi_measure_rows_and_the_rows_that_cannot_be_mapped() {
        let m = mapping(
            json!({"MultiMeasureMappings": {"TargetMultiMeasureName": "stats",
            "MultiMeasureAttributeMappings": [
                {"SourceColumn": "avg_cpu", "MeasureValueType": "DOUBLE"},
                {"SourceColumn": "n", "TargetMultiMeasureAttributeName": "count", "MeasureValueType": "BIGINT"}]}}),
        );
        let out = map_batch(&batch(), &m, 7);
        assert_eq!(out.records.len(), 1);
        assert_eq!(
            out.records[0],
            json!({"Dimensions": [{"Name": "host", "Value": "a", "DimensionValueType": "VARCHAR"}],
                "MeasureName": "stats", "Time": "60000000000", "TimeUnit": "NANOSECONDS", "Version": 7,
                "MeasureValueType": "MULTI", "MeasureValues": [
                    {"Name": "avg_cpu", "Value": "0.1", "Type": "DOUBLE"},
                    {"Name": "count", "Value": "3", "Type": "BIGINT"}]})
        );
        let reasons: Vec<&str> = out.unmapped.iter().map(|u| u.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "The value of the time column t is NULL.",
                "The value of the dimension host is NULL.",
                "Every measure value of the row is NULL."
            ]
        );
    }

    #[test]
    fn mixed_mappings_make_one_record_per_mapping() {
        let m = mapping(json!({"MixedMeasureMappings": [
            {"SourceColumn": "avg_cpu", "MeasureValueType": "DOUBLE"},
            {"SourceColumn": "n", "TargetMeasureName": "count", "MeasureValueType": "BIGINT"}]}));
        let out = map_batch(&batch(), &m, 1);
        let names: Vec<(&str, &str)> = out
            .records
            .iter()
            .map(|r| {
                (
                    r["MeasureName"].as_str().unwrap(),
                    r["MeasureValue"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, [("avg_cpu", "0.1"), ("count", "3")]);
        // Row 4 (host c) has NULL measures: two reasons; rows 2 and 3: NULL time, NULL host.
        assert_eq!(out.unmapped.len(), 4);
    }

    #[test]
    fn a_column_of_the_wrong_type_fails_every_row_with_the_reason() {
        let m = mapping(
            json!({"MultiMeasureMappings": {"TargetMultiMeasureName": "s",
            "MultiMeasureAttributeMappings": [{"SourceColumn": "missing", "MeasureValueType": "DOUBLE"}]}}),
        );
        let out = map_batch(&batch(), &m, 1);
        assert!(out.records.is_empty());
        assert_eq!(out.unmapped.len(), 4);
        assert!(out.unmapped[0].reason.contains("no column missing"));
    }
}
