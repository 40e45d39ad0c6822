//! How a source's columns become a table's: which is `time`, which names the measure, which are
//! dimensions and which measures (with their types), and what each is called in the table.
//!
//! Precedence for a column's role: the time / measure-name column flags; `--dimensions` and
//! `--measures` (`name[:TYPE]`); a Timestream `DataModel`; an existing table's column; the
//! source's own type (UNLOAD `ColumnInfo`, the Arrow type of Parquet, values of CSV): strings
//! are dimensions, everything else a measure. With only `--dimensions`, every other column is a
//! measure; with only `--measures`, the other string columns are dimensions; with both, a
//! column in neither is an error.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context};
use arrow::datatypes::DataType;
use hourglass_core::{ColumnRole, ColumnType};
use hourglass_storage::TableDef;
use serde_json::Value;

use crate::options::TimeUnit;

/// What a source column becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    Time,
    MeasureName,
    Dimension,
    Measure(ColumnType),
    /// Not loaded.
    Ignore,
}

/// One source column's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPlan {
    pub source: String,
    pub target: String,
    pub role: Role,
}

/// The plan of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePlan {
    pub table: String,
    pub columns: Vec<ColumnPlan>,
    /// The measure name of every row when no column holds it.
    pub fixed_measure_name: String,
    /// Unit of numeric times.
    pub time_unit: TimeUnit,
}

impl TablePlan {
    pub fn time_column(&self) -> Option<&ColumnPlan> {
        self.columns.iter().find(|c| c.role == Role::Time)
    }
}

/// A source column as the reader sees it.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    pub name: String,
    pub data_type: DataType,
    /// A type the source declares (UNLOAD ColumnInfo's scalar type), or one inferred from CSV
    /// values.
    pub declared: Option<Declared>,
}

/// A declared or inferred type.
#[derive(Debug, Clone, PartialEq)]
pub enum Declared {
    String,
    Type(ColumnType),
    /// A type no table column can hold (the name, for the message).
    Unsupported(String),
}

/// Everything the plan is decided from, besides the columns.
#[derive(Debug, Clone, Default)]
pub struct PlanInputs {
    pub table: String,
    pub time_column: Option<String>,
    pub time_unit: Option<TimeUnit>,
    pub dimensions: Option<Vec<String>>,
    /// `(name, type)`; a type of `None` is taken from the source.
    pub measures: Option<Vec<(String, Option<ColumnType>)>>,
    pub measure_name_column: Option<String>,
    pub measure_name: Option<String>,
    pub data_model: Option<DataModel>,
    pub existing: Option<TableDef>,
    /// The file came from a Hourglass UNLOAD to Parquet: its dimensions are dictionary-encoded,
    /// so a plain string column is a VARCHAR measure.
    pub dictionary_marks_dimensions: bool,
}

/// `name[:TYPE]` (TYPE: double, bigint, varchar, boolean, timestamp).
pub fn parse_measure_spec(spec: &str) -> Result<(String, Option<ColumnType>), String> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), None)),
        Some((name, ty)) => Ok((name.to_string(), Some(parse_type(ty)?))),
    }
}

/// A Timestream type name.
pub fn parse_type(ty: &str) -> Result<ColumnType, String> {
    Ok(match ty.to_ascii_uppercase().as_str() {
        "DOUBLE" | "FLOAT" => ColumnType::Double,
        "BIGINT" | "INTEGER" | "INT" => ColumnType::Bigint,
        "UBIGINT" => ColumnType::Ubigint,
        "VARCHAR" | "STRING" => ColumnType::Varchar,
        "BOOLEAN" | "BOOL" => ColumnType::Boolean,
        "TIMESTAMP" => ColumnType::Timestamp,
        other => {
            return Err(format!(
                "unknown measure type '{other}': expected DOUBLE, BIGINT, VARCHAR, BOOLEAN or TIMESTAMP"
            ))
        }
    })
}

/// A Timestream UNLOAD `ColumnInfo` scalar type.
pub fn declared_from_column_info(scalar: &str) -> Declared {
    match scalar {
        "VARCHAR" => Declared::String,
        "BIGINT" | "INTEGER" => Declared::Type(ColumnType::Bigint),
        "DOUBLE" => Declared::Type(ColumnType::Double),
        "BOOLEAN" => Declared::Type(ColumnType::Boolean),
        "TIMESTAMP" | "DATE" => Declared::Type(ColumnType::Timestamp),
        other => Declared::Unsupported(other.to_string()),
    }
}

/// The measure type an Arrow type is loaded as.
pub fn declared_from_arrow(dt: &DataType) -> Declared {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Declared::String,
        DataType::Dictionary(_, v) => declared_from_arrow(v),
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => Declared::Type(ColumnType::Double),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => Declared::Type(ColumnType::Bigint),
        DataType::UInt64 => Declared::Type(ColumnType::Ubigint),
        DataType::Boolean => Declared::Type(ColumnType::Boolean),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            Declared::Type(ColumnType::Timestamp)
        }
        other => Declared::Unsupported(other.to_string()),
    }
}

/// A Timestream batch load `DataModel` (the parts `hourglass import` maps): time column and
/// unit, dimension mappings, measure name column, multi-measure attribute mappings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataModel {
    pub time_column: Option<String>,
    pub time_unit: Option<TimeUnit>,
    /// (source, destination)
    pub dimensions: Vec<(String, String)>,
    pub measure_name_column: Option<String>,
    pub multi_measure_name: Option<String>,
    /// (source, destination, type)
    pub measures: Vec<(String, String, Option<ColumnType>)>,
}

/// Parses a `DataModel` JSON (the object itself, or one wrapped in `DataModel` or
/// `DataModelConfiguration.DataModel`), checked as CreateBatchLoadTask checks it (the batch load
/// crate's `DataModel`: one definition of the shape for both), then reduced to the column
/// mapping an import needs. Mixed mappings of single (non-MULTI) measures are refused: they make
/// one record per measure, which is batch load's job.
pub fn parse_data_model(bytes: &[u8], what: &str) -> anyhow::Result<DataModel> {
    use hourglass_batchload::data_model as bl;
    let v: Value = serde_json::from_slice(bytes).with_context(|| format!("{what}: not JSON"))?;
    let v = v
        .pointer("/DataModelConfiguration/DataModel")
        .or_else(|| v.get("DataModel"))
        .unwrap_or(&v);
    let m = bl::DataModel::from_value(v).map_err(|e| anyhow!("{what}: {e}"))?;
    let ty = |t: &Option<String>| -> anyhow::Result<Option<ColumnType>> {
        t.as_deref()
            .map(parse_type)
            .transpose()
            .map_err(|e| anyhow!("{what}: {e}"))
    };
    let attributes = |list: &[bl::AttributeMapping]| -> anyhow::Result<Vec<(String, String, Option<ColumnType>)>> {
        list.iter()
            .map(|a| {
                let source = a.source_column.clone().unwrap_or_default();
                let dest = a
                    .target_multi_measure_attribute_name
                    .clone()
                    .unwrap_or_else(|| source.clone());
                Ok((source, dest, ty(&a.measure_value_type)?))
            })
            .collect()
    };
    let mut model = DataModel {
        time_column: m.time_column.clone(),
        time_unit: Some(TimeUnit::parse(m.time_unit()).map_err(|e| anyhow!("{what}: {e}"))?),
        dimensions: m
            .dimension_mappings
            .iter()
            .map(|d| {
                let source = d.source_column.clone().unwrap_or_default();
                let dest = d
                    .destination_column
                    .clone()
                    .unwrap_or_else(|| source.clone());
                (source, dest)
            })
            .collect(),
        measure_name_column: m.measure_name_column.clone(),
        multi_measure_name: None,
        measures: Vec::new(),
    };
    if let Some(multi) = &m.multi_measure_mappings {
        model.multi_measure_name = multi.target_multi_measure_name.clone();
        model.measures = attributes(&multi.multi_measure_attribute_mappings)?;
    }
    for mixed in m.mixed_measure_mappings.iter().flatten() {
        if mixed.measure_value_type.as_deref() != Some("MULTI") {
            bail!(
                "{what}: MixedMeasureMappings with single measures (MeasureValueType {}) are not \
                 supported by hourglass import: use MultiMeasureMappings, or batch load",
                mixed.measure_value_type.as_deref().unwrap_or_default()
            );
        }
        if model.multi_measure_name.is_none() {
            model.multi_measure_name = mixed
                .target_measure_name
                .clone()
                .or_else(|| mixed.measure_name.clone());
        }
        model.measures.extend(attributes(
            mixed
                .multi_measure_attribute_mappings
                .as_deref()
                .unwrap_or(&[]),
        )?);
    }
    Ok(model)
}

/// Decides the plan of a table from its source columns.
pub fn build(columns: &[SourceColumn], inputs: &PlanInputs) -> anyhow::Result<TablePlan> {
    let model = inputs.data_model.as_ref();
    let time_name = inputs
        .time_column
        .clone()
        .or_else(|| model.and_then(|m| m.time_column.clone()))
        .unwrap_or_else(|| hourglass_core::TIME_COLUMN.to_string());
    let measure_name_col = inputs
        .measure_name_column
        .clone()
        .or_else(|| model.and_then(|m| m.measure_name_column.clone()))
        .or_else(|| {
            (inputs.measure_name.is_none()).then(|| hourglass_core::MEASURE_NAME_COLUMN.to_string())
        });
    let flag_dims: Option<Vec<String>> = inputs.dimensions.clone();
    let flag_measures: Option<HashMap<String, Option<ColumnType>>> = inputs
        .measures
        .as_ref()
        .map(|m| m.iter().cloned().collect());
    let model_dims: HashMap<&str, &str> = model
        .map(|m| {
            m.dimensions
                .iter()
                .map(|(s, d)| (s.as_str(), d.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let model_measures: HashMap<&str, (&str, Option<ColumnType>)> = model
        .map(|m| {
            m.measures
                .iter()
                .map(|(s, d, t)| (s.as_str(), (d.as_str(), *t)))
                .collect()
        })
        .unwrap_or_default();
    let model_is_exhaustive =
        model.is_some_and(|m| !m.dimensions.is_empty() || !m.measures.is_empty());

    if !columns.iter().any(|c| c.name == time_name) {
        bail!(
            "no time column '{time_name}' among the columns ({}): name it with --time-column",
            columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for listed in flag_dims
        .iter()
        .flatten()
        .chain(flag_measures.iter().flat_map(|m| m.keys()))
    {
        if !columns.iter().any(|c| &c.name == listed) {
            bail!("column '{listed}' named on the command line is not in the source");
        }
    }

    let type_of = |c: &SourceColumn| -> Declared {
        c.declared
            .clone()
            .unwrap_or_else(|| declared_from_arrow(&c.data_type))
    };
    let measure_type = |c: &SourceColumn, forced: Option<ColumnType>| -> anyhow::Result<Role> {
        if let Some(t) = forced {
            return Ok(Role::Measure(t));
        }
        if let Some(def) = inputs.existing.as_ref().and_then(|d| d.column(&c.name)) {
            if let Some(t) = def.measure_type {
                return Ok(Role::Measure(t));
            }
        }
        match type_of(c) {
            Declared::String => Ok(Role::Measure(ColumnType::Varchar)),
            Declared::Type(t) => Ok(Role::Measure(t)),
            Declared::Unsupported(t) => Err(anyhow!(
                "column '{}' has type {t}, which no table column can hold: leave it out of the \
                 export, or name the loaded columns with --dimensions and --measures",
                c.name
            )),
        }
    };

    let mut plan = Vec::with_capacity(columns.len());
    for c in columns {
        let name = c.name.as_str();
        let (target, role) = if name == time_name {
            (hourglass_core::TIME_COLUMN.to_string(), Role::Time)
        } else if measure_name_col.as_deref() == Some(name) {
            (
                hourglass_core::MEASURE_NAME_COLUMN.to_string(),
                Role::MeasureName,
            )
        } else if flag_dims
            .as_ref()
            .is_some_and(|d| d.iter().any(|x| x == name))
        {
            (name.to_string(), Role::Dimension)
        } else if let Some(forced) = flag_measures.as_ref().and_then(|m| m.get(name)) {
            (name.to_string(), measure_type(c, *forced)?)
        } else if let Some(dest) = model_dims.get(name) {
            (dest.to_string(), Role::Dimension)
        } else if let Some((dest, ty)) = model_measures.get(name) {
            (dest.to_string(), measure_type(c, *ty)?)
        } else if model_is_exhaustive {
            (name.to_string(), Role::Ignore)
        } else if flag_dims.is_some() && flag_measures.is_some() {
            bail!("column '{name}' is in neither --dimensions nor --measures");
        } else if flag_dims.is_some() {
            (name.to_string(), measure_type(c, None)?)
        } else if flag_measures.is_some() && type_of(c) == Declared::String {
            // Only --measures: the other string columns are dimensions, typed ones measures.
            (name.to_string(), Role::Dimension)
        } else if let Some(def) = inputs.existing.as_ref().and_then(|d| d.column(name)) {
            match def.role {
                ColumnRole::Dimension => (name.to_string(), Role::Dimension),
                _ => (name.to_string(), measure_type(c, def.measure_type)?),
            }
        } else {
            let is_dimension = match type_of(c) {
                Declared::String => {
                    !inputs.dictionary_marks_dimensions
                        || matches!(c.data_type, DataType::Dictionary(_, _))
                }
                _ => false,
            };
            if is_dimension {
                (name.to_string(), Role::Dimension)
            } else {
                (name.to_string(), measure_type(c, None)?)
            }
        };
        plan.push(ColumnPlan {
            source: c.name.clone(),
            target,
            role,
        });
    }
    let fixed_measure_name = inputs
        .measure_name
        .clone()
        .or_else(|| model.and_then(|m| m.multi_measure_name.clone()))
        .unwrap_or_else(|| inputs.table.clone());
    let plan = TablePlan {
        table: inputs.table.clone(),
        columns: plan,
        fixed_measure_name,
        time_unit: inputs
            .time_unit
            .or_else(|| model.and_then(|m| m.time_unit))
            .unwrap_or(TimeUnit::Milliseconds),
    };
    if !plan
        .columns
        .iter()
        .any(|c| matches!(c.role, Role::Measure(_)))
    {
        bail!(
            "table '{}': no measure columns among the source's columns (every one is time, \
             measure name or a dimension): name them with --measures",
            plan.table
        );
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, dt: DataType) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            data_type: dt,
            declared: None,
        }
    }

    fn roles(p: &TablePlan) -> Vec<(String, Role)> {
        p.columns
            .iter()
            .map(|c| (c.target.clone(), c.role.clone()))
            .collect()
    }

    #[test]
    fn strings_are_dimensions_unless_told() {
        let cols = [
            col("time", DataType::Int64),
            col("host", DataType::Utf8),
            col("note", DataType::Utf8),
            col("cpu", DataType::Float64),
        ];
        let inputs = PlanInputs {
            table: "t".into(),
            ..Default::default()
        };
        let p = build(&cols, &inputs).unwrap();
        assert_eq!(
            roles(&p)[1..],
            [
                ("host".into(), Role::Dimension),
                ("note".into(), Role::Dimension),
                ("cpu".into(), Role::Measure(ColumnType::Double)),
            ]
        );
        assert_eq!(p.fixed_measure_name, "t");
        let inputs = PlanInputs {
            table: "t".into(),
            measures: Some(vec![
                ("note".into(), None),
                ("cpu".into(), Some(ColumnType::Bigint)),
            ]),
            ..Default::default()
        };
        let p = build(&cols, &inputs).unwrap();
        assert_eq!(
            roles(&p)[1..],
            [
                ("host".into(), Role::Dimension),
                ("note".into(), Role::Measure(ColumnType::Varchar)),
                ("cpu".into(), Role::Measure(ColumnType::Bigint)),
            ]
        );
    }

    #[test]
    fn missing_time_column_is_named() {
        let err = build(&[col("ts", DataType::Int64)], &PlanInputs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no time column 'time'"), "{err}");
    }

    #[test]
    fn data_model_maps_and_renames() {
        let model = parse_data_model(
            br#"{"TimeColumn":"ts","TimeUnit":"SECONDS",
                 "DimensionMappings":[{"SourceColumn":"h","DestinationColumn":"host"}],
                 "MultiMeasureMappings":{"TargetMultiMeasureName":"metrics",
                   "MultiMeasureAttributeMappings":[{"SourceColumn":"v","TargetMultiMeasureAttributeName":"value","MeasureValueType":"DOUBLE"}]}}"#,
            "dm",
        )
        .unwrap();
        let cols = [
            col("ts", DataType::Utf8),
            col("h", DataType::Utf8),
            col("v", DataType::Utf8),
            col("junk", DataType::Utf8),
        ];
        let p = build(
            &cols,
            &PlanInputs {
                table: "t".into(),
                data_model: Some(model),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.time_unit, TimeUnit::Seconds);
        assert_eq!(p.fixed_measure_name, "metrics");
        assert_eq!(
            roles(&p),
            [
                ("time".into(), Role::Time),
                ("host".into(), Role::Dimension),
                ("value".into(), Role::Measure(ColumnType::Double)),
                ("junk".into(), Role::Ignore),
            ]
        );
    }
}
