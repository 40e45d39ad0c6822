//! A scheduled query's definition as `CreateScheduledQuery` gives it, checked against the
//! Timestream model's constraints, and the state its runs leave (`LastRunSummary`,
//! `RecentlyFailedRuns`, invocation times).
//!
//! The request's configuration objects are kept as the JSON they came in, so `Describe` returns
//! them exactly; [`TargetMapping`] is the typed reading of `TargetConfiguration` the runs use.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use hourglass_timestream::protocol::{
    check_enum, check_length, constraint_error, required, ApiError,
};

/// Longest query string (model).
pub const MAX_QUERY_STRING: usize = 262_144;
/// Failed runs `Describe` keeps.
pub const RECENT_FAILURES: usize = 5;

/// `ENABLED` or `DISABLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Enabled,
    Disabled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Enabled => "ENABLED",
            State::Disabled => "DISABLED",
        }
    }
}

/// What a scheduled query is: fixed at creation (only `state` and tags change later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub arn: String,
    pub name: String,
    pub query_string: String,
    pub schedule_expression: String,
    /// Nanoseconds since the epoch (engine clock).
    pub creation_time: i64,
    pub state: State,
    /// The request's objects, as given.
    pub schedule_configuration: Value,
    pub notification_configuration: Value,
    pub target_configuration: Option<Value>,
    pub error_report_configuration: Value,
    pub execution_role_arn: String,
    pub kms_key_id: Option<String>,
    pub tags: Vec<(String, String)>,
    pub client_token: Option<String>,
    /// The user who created it (runs use that user's permissions).
    pub owner: String,
}

impl Definition {
    /// The last part of the ARN (`<name>-<hex>`), used in error-report keys.
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// The SNS topic runs are announced on.
    pub fn topic_arn(&self) -> Option<&str> {
        self.notification_configuration
            .pointer("/SnsConfiguration/TopicArn")
            .and_then(Value::as_str)
    }

    /// `ErrorReportConfiguration.S3Configuration` as (bucket, prefix).
    pub fn error_report_location(&self) -> (String, String) {
        let s3 = self.error_report_configuration.get("S3Configuration");
        let field = |k: &str| {
            s3.and_then(|s| s.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        (field("BucketName"), field("ObjectKeyPrefix"))
    }

    /// The target mapping, when the query writes into a table.
    pub fn target(&self) -> Option<TargetMapping> {
        self.target_configuration
            .as_ref()
            .and_then(|t| t.get("TimestreamConfiguration"))
            .and_then(|t| serde_json::from_value(t.clone()).ok())
    }
}

/// What a run did, as `ScheduledQueryRunSummary` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// `@scheduled_runtime` of the run (nanoseconds).
    pub invocation_time: i64,
    /// When the run started (nanoseconds, engine clock).
    pub trigger_time: i64,
    /// `AUTO_TRIGGER_SUCCESS`, `AUTO_TRIGGER_FAILURE`, `MANUAL_TRIGGER_SUCCESS`,
    /// `MANUAL_TRIGGER_FAILURE`.
    pub run_status: String,
    pub execution_time_millis: i64,
    pub data_writes: i64,
    pub bytes_metered: i64,
    pub cumulative_bytes_scanned: i64,
    pub records_ingested: i64,
    pub query_result_rows: i64,
    /// `(bucket, key)` of the error report, if one was written.
    pub error_report: Option<(String, String)>,
    pub failure_reason: Option<String>,
}

impl RunSummary {
    pub fn succeeded(&self) -> bool {
        self.run_status.ends_with("_SUCCESS")
    }
}

/// The state runs leave on a scheduled query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// `@scheduled_runtime` of the last automatic run started.
    pub previous_invocation: Option<i64>,
    pub next_invocation: Option<i64>,
    pub last_run: Option<RunSummary>,
    /// Newest first, at most [`RECENT_FAILURES`].
    pub recently_failed: Vec<RunSummary>,
    /// What the last successful run of each recent invocation read, oldest invocation first
    /// (bounded: [`crate::SchedulerConfig::late_data_invocations`] and `late_data_window`);
    /// runs whose sources receive writes in these ranges are rerun ([`crate::late_data`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<Coverage>,
    /// Runs started and not finished: `(invocation time, trigger)`. Left here by a server that
    /// stopped during a run, they are run again at the next start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_progress: Vec<(i64, String)>,
}

/// The time ranges the last successful run of one invocation read from its source tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// `@scheduled_runtime` of the run (nanoseconds).
    pub invocation_time: i64,
    /// When that run started (nanoseconds, engine clock).
    pub trigger_time: i64,
    pub ranges: Vec<CoveredRange>,
    /// Set when a write landed in one of `ranges` after the run started: when it was first
    /// noticed (engine clock). The invocation is then rerun (trigger `LATE_DATA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<i64>,
}

/// The times one run read from one table: nanoseconds, `min` inclusive, `max` exclusive
/// (`i64::MIN` / `i64::MAX` where the scan had no bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoveredRange {
    pub database: String,
    pub table: String,
    pub min: i64,
    pub max: i64,
}

impl CoveredRange {
    /// Whether rows with times from `lo` to `hi` (inclusive) fall in this range.
    pub fn meets(&self, lo: i64, hi: i64) -> bool {
        lo < self.max && hi >= self.min
    }
}

impl RunState {
    /// Records a finished run.
    pub fn record(&mut self, run: RunSummary) {
        if !run.succeeded() {
            self.recently_failed.insert(0, run.clone());
            self.recently_failed.truncate(RECENT_FAILURES);
        }
        self.last_run = Some(run);
    }
}

/// `TargetConfiguration.TimestreamConfiguration`, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetMapping {
    pub database_name: String,
    pub table_name: String,
    pub time_column: String,
    #[serde(default)]
    pub dimension_mappings: Vec<DimensionMapping>,
    #[serde(default)]
    pub multi_measure_mappings: Option<MultiMeasureMappings>,
    #[serde(default)]
    pub mixed_measure_mappings: Option<Vec<MixedMeasureMapping>>,
    #[serde(default)]
    pub measure_name_column: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionMapping {
    pub name: String,
    pub dimension_value_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MultiMeasureMappings {
    #[serde(default)]
    pub target_multi_measure_name: Option<String>,
    pub multi_measure_attribute_mappings: Vec<AttributeMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeMapping {
    pub source_column: String,
    #[serde(default)]
    pub target_multi_measure_attribute_name: Option<String>,
    pub measure_value_type: String,
}

impl AttributeMapping {
    /// The measure's name in the target (the source column unless renamed).
    pub fn target_name(&self) -> &str {
        self.target_multi_measure_attribute_name
            .as_deref()
            .unwrap_or(&self.source_column)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MixedMeasureMapping {
    #[serde(default)]
    pub measure_name: Option<String>,
    #[serde(default)]
    pub source_column: Option<String>,
    #[serde(default)]
    pub target_measure_name: Option<String>,
    pub measure_value_type: String,
    #[serde(default)]
    pub multi_measure_attribute_mappings: Option<Vec<AttributeMapping>>,
}

impl MixedMeasureMapping {
    /// The measure name written: `TargetMeasureName`, else `MeasureName`, else `SourceColumn`.
    pub fn target_name(&self) -> Option<&str> {
        self.target_measure_name
            .as_deref()
            .or(self.measure_name.as_deref())
            .or(self.source_column.as_deref())
    }
}

const MULTI_VALUE_TYPES: &[&str] = &["BIGINT", "BOOLEAN", "DOUBLE", "VARCHAR", "TIMESTAMP"];
const MIXED_VALUE_TYPES: &[&str] = &["BIGINT", "BOOLEAN", "DOUBLE", "VARCHAR", "MULTI"];

/// Checks `Name` against the model (1..64 characters, AWS's pattern).
pub fn check_name(name: &str) -> Result<(), ApiError> {
    check_length(name, "name", 1, Some(64))?;
    let first_ok = |c: char| c.is_ascii_alphanumeric() || "|!-_*'()".contains(c);
    let rest_ok = |c: char| c.is_ascii_alphanumeric() || "!-_*'()/.".contains(c);
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(first_ok) && name.len() >= 2 && chars.all(rest_ok);
    if !ok {
        return Err(constraint_error(
            Some(name),
            "name",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9|!\\-_*'\\(\\)]([a-zA-Z0-9]|[!\\-_*'\\(\\)\\/.])+",
        ));
    }
    Ok(())
}

/// Checks the shape of `TargetConfiguration` (the model's rules and Timestream's documented
/// mapping rules); the columns are checked against the query later.
pub fn check_target(target: &Value) -> Result<TargetMapping, ApiError> {
    let config = target
        .get("TimestreamConfiguration")
        .ok_or_else(|| required("targetConfiguration.timestreamConfiguration"))?;
    let path = "targetConfiguration.timestreamConfiguration";
    for (key, name) in [
        ("DatabaseName", "databaseName"),
        ("TableName", "tableName"),
        ("TimeColumn", "timeColumn"),
        ("DimensionMappings", "dimensionMappings"),
    ] {
        if config.get(key).is_none_or(Value::is_null) {
            return Err(required(&format!("{path}.{name}")));
        }
    }
    let mapping: TargetMapping = serde_json::from_value(config.clone())
        .map_err(|e| ApiError::validation(format!("Invalid TargetConfiguration: {e}")))?;
    for (i, d) in mapping.dimension_mappings.iter().enumerate() {
        check_enum(
            &d.dimension_value_type,
            &format!(
                "{path}.dimensionMappings.{}.member.dimensionValueType",
                i + 1
            ),
            &["VARCHAR"],
        )?;
    }
    match (
        &mapping.multi_measure_mappings,
        &mapping.mixed_measure_mappings,
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "Only one of MultiMeasureMappings or MixedMeasureMappings can be specified.",
            ))
        }
        (None, None) => {
            return Err(ApiError::validation(
                "One of MultiMeasureMappings or MixedMeasureMappings must be specified.",
            ))
        }
        (Some(multi), None) => {
            if multi.multi_measure_attribute_mappings.is_empty() {
                return Err(constraint_error(
                    None,
                    &format!("{path}.multiMeasureMappings.multiMeasureAttributeMappings"),
                    "Member must have length greater than or equal to 1",
                ));
            }
            if multi.target_multi_measure_name.is_none() && mapping.measure_name_column.is_none() {
                return Err(ApiError::validation(
                    "TargetMultiMeasureName is required when MeasureNameColumn is not specified.",
                ));
            }
            for (i, a) in multi.multi_measure_attribute_mappings.iter().enumerate() {
                check_enum(
                    &a.measure_value_type,
                    &format!(
                        "{path}.multiMeasureMappings.multiMeasureAttributeMappings.{}.member.measureValueType",
                        i + 1
                    ),
                    MULTI_VALUE_TYPES,
                )?;
            }
        }
        (None, Some(mixed)) => {
            if mixed.is_empty() {
                return Err(constraint_error(
                    None,
                    &format!("{path}.mixedMeasureMappings"),
                    "Member must have length greater than or equal to 1",
                ));
            }
            for (i, m) in mixed.iter().enumerate() {
                let at = format!("{path}.mixedMeasureMappings.{}.member", i + 1);
                check_enum(
                    &m.measure_value_type,
                    &format!("{at}.measureValueType"),
                    MIXED_VALUE_TYPES,
                )?;
                if mapping.measure_name_column.is_some() && m.measure_name.is_none() {
                    return Err(ApiError::validation(format!(
                        "{at}: MeasureName is required when MeasureNameColumn is specified."
                    )));
                }
                let attributes = m.multi_measure_attribute_mappings.as_deref().unwrap_or(&[]);
                if m.measure_value_type == "MULTI" {
                    if attributes.is_empty() {
                        return Err(ApiError::validation(format!(
                            "{at}: MultiMeasureAttributeMappings are required for MeasureValueType MULTI."
                        )));
                    }
                    for (j, a) in attributes.iter().enumerate() {
                        check_enum(
                            &a.measure_value_type,
                            &format!(
                                "{at}.multiMeasureAttributeMappings.{}.member.measureValueType",
                                j + 1
                            ),
                            MULTI_VALUE_TYPES,
                        )?;
                    }
                } else {
                    if !attributes.is_empty() {
                        return Err(ApiError::validation(format!(
                            "{at}: MultiMeasureAttributeMappings are allowed only for MeasureValueType MULTI."
                        )));
                    }
                    if m.source_column.is_none() {
                        return Err(ApiError::validation(format!(
                            "{at}: SourceColumn is required for MeasureValueType {}.",
                            m.measure_value_type
                        )));
                    }
                }
            }
        }
    }
    Ok(mapping)
}

/// The result columns a mapping reads, with the Timestream scalar types it needs them to have
/// (`None`: any of the measure types).
pub fn mapped_columns(mapping: &TargetMapping) -> Vec<(&str, &'static str)> {
    let mut out: Vec<(&str, &'static str)> = vec![(mapping.time_column.as_str(), "TIMESTAMP")];
    out.extend(
        mapping
            .dimension_mappings
            .iter()
            .map(|d| (d.name.as_str(), "VARCHAR")),
    );
    if let Some(c) = &mapping.measure_name_column {
        out.push((c.as_str(), "VARCHAR"));
    }
    let value_type = |t: &str| -> &'static str {
        match t {
            "BIGINT" => "BIGINT",
            "BOOLEAN" => "BOOLEAN",
            "DOUBLE" => "DOUBLE",
            "TIMESTAMP" => "TIMESTAMP",
            _ => "VARCHAR",
        }
    };
    if let Some(multi) = &mapping.multi_measure_mappings {
        for a in &multi.multi_measure_attribute_mappings {
            out.push((a.source_column.as_str(), value_type(&a.measure_value_type)));
        }
    }
    for m in mapping.mixed_measure_mappings.iter().flatten() {
        if let Some(c) = &m.source_column {
            if m.measure_value_type != "MULTI" {
                out.push((c.as_str(), value_type(&m.measure_value_type)));
            }
        }
        for a in m.multi_measure_attribute_mappings.iter().flatten() {
            out.push((a.source_column.as_str(), value_type(&a.measure_value_type)));
        }
    }
    out
}

/// Whether a result column of Timestream type `have` can be written as `want`.
pub fn type_fits(have: &str, want: &str) -> bool {
    have == want || (want == "DOUBLE" && have == "BIGINT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(extra: Value) -> Value {
        let mut config = json!({
            "DatabaseName": "db", "TableName": "rollup", "TimeColumn": "t",
            "DimensionMappings": [{"Name": "host", "DimensionValueType": "VARCHAR"}],
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        json!({"TimestreamConfiguration": config})
    }

    #[test]
    fn names_follow_the_model_pattern() {
        assert!(check_name("rollup-1m").is_ok());
        assert!(check_name("a/b.c").is_ok());
        assert!(check_name("x").is_err());
        assert!(check_name("/starts-with-slash").is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name(&"n".repeat(65)).is_err());
    }

    #[test]
    fn target_rules() {
        let multi = json!({"MultiMeasureMappings": {"TargetMultiMeasureName": "m",
            "MultiMeasureAttributeMappings": [{"SourceColumn": "avg_cpu", "MeasureValueType": "DOUBLE"}]}});
        let m = check_target(&target(multi)).unwrap();
        assert_eq!(
            mapped_columns(&m),
            [
                ("t", "TIMESTAMP"),
                ("host", "VARCHAR"),
                ("avg_cpu", "DOUBLE")
            ]
        );
        let err = |extra: Value| check_target(&target(extra)).unwrap_err().message;
        assert!(err(json!({})).contains("One of MultiMeasureMappings"));
        assert!(err(
            json!({"MultiMeasureMappings": {"MultiMeasureAttributeMappings": [
            {"SourceColumn": "a", "MeasureValueType": "DOUBLE"}]}})
        )
        .contains("TargetMultiMeasureName is required"));
        assert!(err(
            json!({"MultiMeasureMappings": {"TargetMultiMeasureName": "m",
            "MultiMeasureAttributeMappings": [{"SourceColumn": "a", "MeasureValueType": "MULTI"}]}})
        )
        .contains("measureValueType"));
        assert!(
            err(json!({"MixedMeasureMappings": [{"MeasureValueType": "MULTI"}]}))
                .contains("MultiMeasureAttributeMappings are required")
        );
        assert!(
            err(json!({"MeasureNameColumn": "n", "MixedMeasureMappings": [
            {"SourceColumn": "a", "MeasureValueType": "DOUBLE"}]}))
            .contains("MeasureName is required")
        );
        assert!(
            err(json!({"MixedMeasureMappings": [{"MeasureValueType": "DOUBLE"}]}))
                .contains("SourceColumn is required")
        );
        let both = json!({"MixedMeasureMappings": [], "MultiMeasureMappings": {
            "TargetMultiMeasureName": "m", "MultiMeasureAttributeMappings": []}});
        assert!(err(both).contains("Only one of"));
    }

    #[test]
    fn failures_are_kept_newest_first_up_to_five() {
        let mut state = RunState::default();
        for i in 0..7 {
            state.record(RunSummary {
                invocation_time: i,
                trigger_time: i,
                run_status: if i == 6 {
                    "AUTO_TRIGGER_SUCCESS"
                } else {
                    "AUTO_TRIGGER_FAILURE"
                }
                .into(),
                execution_time_millis: 0,
                data_writes: 0,
                bytes_metered: 0,
                cumulative_bytes_scanned: 0,
                records_ingested: 0,
                query_result_rows: 0,
                error_report: None,
                failure_reason: None,
            });
        }
        let kept: Vec<i64> = state
            .recently_failed
            .iter()
            .map(|r| r.invocation_time)
            .collect();
        assert_eq!(kept, [5, 4, 3, 2, 1]);
        assert_eq!(state.last_run.unwrap().invocation_time, 6);
    }
}
