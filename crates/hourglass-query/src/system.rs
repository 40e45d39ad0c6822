//! The `system` schema: server tables for operators. `system.audit_log` is the audit log
//! (`<data-dir>/audit.log`, `docs/format/audit-log.md`) read at each scan, one row per event:
//! `time` (timestamp, UTC), `user`, `peer`, `interface`, `action`, `target`, `outcome`, `detail`.
//!
//! `system.scheduled_query_runs` is the log of scheduled-query runs
//! (`<data-dir>/scheduled_query_runs.jsonl`, [`SCHEDULED_QUERY_RUNS_FILE`]), read at each scan,
//! one row per run: `arn`, `name`, `invocation_time`, `trigger_time` (timestamps, UTC),
//! `trigger` (`AUTO`, `MANUAL`, `LATE_DATA`), `status` (the run's `RunStatus`),
//! `query_result_rows`, `records_ingested`, `rows_unmapped`, `execution_time_ms`, `error` and
//! `error_report` (`s3://bucket/key`, NULL when none). The scheduler (a crate above this one)
//! appends the file, one JSON object a line whose keys are these columns (times as nanoseconds
//! since the epoch); lines that do not parse are skipped.
//!
//! `system.alerts` is the history of alert rules' instances (`<data-dir>/alerts/history.jsonl`,
//! [`ALERTS_HISTORY_FILE`]), read at each scan, one row per state change: `time` (timestamp,
//! UTC), `rule`, `kind` (`pending`, `firing`, `resolved`, `inactive`), `labels` (the instance's
//! labels as a JSON object) and `value` (NULL when the rule has no value column). The server
//! appends the file, one JSON object a line (`time` as nanoseconds since the epoch).
//!
//! `system.tables` is live state, not a file: each table's settings and rows and bytes per tier
//! ([`crate::system_tables`]).
//!
//! Who may read: the `system` schema is for operators (`catalog.rs`), as the audit log is, except
//! `system.tables`, which any principal that may query reads, with rows only for the databases
//! it may read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use hourglass_auth::Principal;
use hourglass_storage::Engine;

use crate::system_tables::{TablesTable, TABLES_TABLE};

pub const SCHEMA_NAME: &str = "system";
pub const AUDIT_LOG_TABLE: &str = "audit_log";
pub const SCHEDULED_QUERY_RUNS_TABLE: &str = "scheduled_query_runs";
/// The file of `system.scheduled_query_runs` in the data directory.
pub const SCHEDULED_QUERY_RUNS_FILE: &str = "scheduled_query_runs.jsonl";
pub const ALERTS_TABLE: &str = "alerts";
/// The file of `system.alerts` in the data directory.
pub const ALERTS_HISTORY_FILE: &str = "alerts/history.jsonl";

/// The `system` schema.
#[derive(Debug)]
pub struct SystemSchema {
    audit_path: PathBuf,
    runs_path: PathBuf,
    alerts_path: PathBuf,
    engine: Arc<Engine>,
    principal: Arc<Principal>,
    /// Whether the file-backed tables resolve (operators); `system.tables` always does.
    operator: bool,
}

impl SystemSchema {
    pub fn new(engine: Arc<Engine>, principal: Arc<Principal>) -> Self {
        SystemSchema {
            operator: principal.is_operator(),
            engine: engine.clone(),
            principal,
            audit_path: hourglass_auth::audit::path(&engine.config.data_dir),
            runs_path: engine.config.data_dir.join(SCHEDULED_QUERY_RUNS_FILE),
            alerts_path: engine.config.data_dir.join(ALERTS_HISTORY_FILE),
        }
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = vec![TABLES_TABLE.to_string()];
        if self.operator {
            names.extend(
                [AUDIT_LOG_TABLE, SCHEDULED_QUERY_RUNS_TABLE, ALERTS_TABLE].map(String::from),
            );
        }
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if name == TABLES_TABLE {
            return Ok(Some(Arc::new(TablesTable {
                engine: self.engine.clone(),
                principal: self.principal.clone(),
            })));
        }
        if !self.operator {
            return Ok(None);
        }
        let table = match name {
            AUDIT_LOG_TABLE => FileTable {
                path: self.audit_path.clone(),
                schema: audit_schema,
                read: audit_log_batch,
            },
            SCHEDULED_QUERY_RUNS_TABLE => FileTable {
                path: self.runs_path.clone(),
                schema: scheduled_query_runs_schema,
                read: scheduled_query_runs_batch,
            },
            ALERTS_TABLE => FileTable {
                path: self.alerts_path.clone(),
                schema: alerts_schema,
                read: alerts_batch,
            },
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(table)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|t| t == name)
    }
}

/// A `system` table: a file of the data directory, read into one batch at each scan.
#[derive(Debug)]
struct FileTable {
    path: PathBuf,
    schema: fn() -> SchemaRef,
    read: fn(&Path) -> DfResult<RecordBatch>,
}

#[async_trait]
impl TableProvider for FileTable {
    fn schema(&self) -> SchemaRef {
        (self.schema)()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = MemTable::try_new(self.schema(), vec![vec![(self.read)(&self.path)?]])?;
        table.scan(state, projection, filters, limit).await
    }
}

/// `system.audit_log`'s columns.
pub fn audit_schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        text("user"),
        text("peer"),
        text("interface"),
        text("action"),
        text("target"),
        text("outcome"),
        text("detail"),
    ]))
}

/// `system.audit_log`'s rows: the audit log at `path`.
fn audit_log_batch(path: &Path) -> DfResult<RecordBatch> {
    let events = hourglass_auth::audit::read_all(path)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let times: Vec<i64> = events
        .iter()
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(&e.time)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .unwrap_or(0)
        })
        .collect();
    let column = |f: fn(&hourglass_auth::AuditEvent) -> &str| {
        Arc::new(StringArray::from_iter_values(events.iter().map(f))) as _
    };
    RecordBatch::try_new(
        audit_schema(),
        vec![
            Arc::new(TimestampNanosecondArray::from(times).with_timezone("UTC")),
            column(|e| &e.user),
            column(|e| &e.peer),
            column(|e| &e.interface),
            column(|e| &e.action),
            column(|e| &e.target),
            column(|e| &e.outcome),
            column(|e| &e.detail),
        ],
    )
    .map_err(DataFusionError::from)
}

/// `system.scheduled_query_runs`'s columns.
pub fn scheduled_query_runs_schema() -> SchemaRef {
    let text = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let time = |n: &str| {
        Field::new(
            n,
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        )
    };
    let count = |n: &str| Field::new(n, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        text("arn", false),
        text("name", false),
        time("invocation_time"),
        time("trigger_time"),
        text("trigger", false),
        text("status", false),
        count("query_result_rows"),
        count("records_ingested"),
        count("rows_unmapped"),
        count("execution_time_ms"),
        text("error", true),
        text("error_report", true),
    ]))
}

/// The JSON objects of a JSON-lines file (none when there is no file); lines that do not parse
/// are skipped.
fn json_lines(path: &Path) -> DfResult<Vec<serde_json::Value>> {
    use std::io::BufRead;
    match std::fs::File::open(path) {
        // Split on bytes: a torn or non-UTF-8 line is skipped, not the end of the file.
        Ok(f) => Ok(std::io::BufReader::new(f)
            .split(b'\n')
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_slice::<serde_json::Value>(&l).ok())
            .filter(|v| v.is_object())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(DataFusionError::External(Box::new(e))),
    }
}

/// `system.alerts`' columns.
pub fn alerts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("rule", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("labels", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
    ]))
}

/// `system.alerts`' rows: the alert history at `path` (none when there is no file).
fn alerts_batch(path: &Path) -> DfResult<RecordBatch> {
    let changes = json_lines(path)?;
    let text = |k: &str| {
        Arc::new(StringArray::from_iter_values(
            changes.iter().map(|r| r[k].as_str().unwrap_or("")),
        )) as _
    };
    RecordBatch::try_new(
        alerts_schema(),
        vec![
            Arc::new(
                TimestampNanosecondArray::from_iter_values(
                    changes.iter().map(|r| r["time"].as_i64().unwrap_or(0)),
                )
                .with_timezone("UTC"),
            ),
            text("rule"),
            text("kind"),
            Arc::new(StringArray::from_iter_values(
                changes.iter().map(|r| r["labels"].to_string()),
            )),
            Arc::new(Float64Array::from_iter(
                changes.iter().map(|r| r["value"].as_f64()),
            )),
        ],
    )
    .map_err(DataFusionError::from)
}

/// `system.scheduled_query_runs`'s rows: the runs log at `path` (none when there is no file).
fn scheduled_query_runs_batch(path: &Path) -> DfResult<RecordBatch> {
    let runs = json_lines(path)?;
    let text = |k: &str| {
        Arc::new(StringArray::from_iter_values(
            runs.iter().map(|r| r[k].as_str().unwrap_or("")),
        )) as _
    };
    let nullable =
        |k: &str| Arc::new(StringArray::from_iter(runs.iter().map(|r| r[k].as_str()))) as _;
    let int = |k: &str| {
        Arc::new(Int64Array::from_iter_values(
            runs.iter().map(|r| r[k].as_i64().unwrap_or(0)),
        )) as _
    };
    let time = |k: &str| {
        Arc::new(
            TimestampNanosecondArray::from_iter_values(
                runs.iter().map(|r| r[k].as_i64().unwrap_or(0)),
            )
            .with_timezone("UTC"),
        ) as _
    };
    RecordBatch::try_new(
        scheduled_query_runs_schema(),
        vec![
            text("arn"),
            text("name"),
            time("invocation_time"),
            time("trigger_time"),
            text("trigger"),
            text("status"),
            int("query_result_rows"),
            int("records_ingested"),
            int("rows_unmapped"),
            int("execution_time_ms"),
            nullable("error"),
            nullable("error_report"),
        ],
    )
    .map_err(DataFusionError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    #[test]
    fn scheduled_query_runs_are_read_from_json_lines() {
        let dir = std::env::temp_dir().join(format!("hg-system-runs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SCHEDULED_QUERY_RUNS_FILE);
        // Between the two runs, a torn line that is not even UTF-8: skipped, not the end.
        let mut file = Vec::new();
        file.extend_from_slice(br#"{"arn":"a","name":"q","invocation_time":60000000000,"trigger_time":61000000000,"trigger":"AUTO","status":"AUTO_TRIGGER_SUCCESS","query_result_rows":3,"records_ingested":2,"rows_unmapped":1,"execution_time_ms":7,"error":null,"error_report":"s3://b/k"}"#);
        file.extend_from_slice(b"\n{torn \xff\xfe\n");
        file.extend_from_slice(br#"{"arn":"a","name":"q","invocation_time":1,"trigger_time":2,"trigger":"MANUAL","status":"MANUAL_TRIGGER_FAILURE","query_result_rows":0,"records_ingested":0,"rows_unmapped":0,"execution_time_ms":1,"error":"boom","error_report":null}"#);
        file.push(b'\n');
        std::fs::write(&path, file).unwrap();
        let batch = scheduled_query_runs_batch(&path).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let error = batch
            .column(10)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert!(error.is_null(0));
        assert_eq!(error.value(1), "boom");
        let unmapped = batch
            .column(8)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(unmapped.value(0), 1);
        let missing = scheduled_query_runs_batch(&dir.join("none")).unwrap();
        assert_eq!(missing.num_rows(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn alert_history_is_read_from_json_lines() {
        let dir = std::env::temp_dir().join(format!("hg-system-alerts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let mut file = Vec::new();
        file.extend_from_slice(br#"{"time":5000000000,"rule":"High","kind":"pending","labels":{"alertname":"High","host":"a"},"value":2.5}"#);
        file.extend_from_slice(b"\n{torn\n");
        file.extend_from_slice(br#"{"time":6000000000,"rule":"High","kind":"firing","labels":{"alertname":"High"},"value":null}"#);
        std::fs::write(&path, file).unwrap();
        let batch = alerts_batch(&path).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let labels = batch
            .column(3)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(labels.value(0), r#"{"alertname":"High","host":"a"}"#);
        let value = batch
            .column(4)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(value.value(0), 2.5);
        assert!(value.is_null(1));
        assert_eq!(alerts_batch(&dir.join("none")).unwrap().num_rows(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
