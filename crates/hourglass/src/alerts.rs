//! Alert rules in the server (`hourglass-alerts`, see docs/alerts.md): the query runner over the
//! query engine (a rule runs as its owner), the notification targets from `--alertmanager-url` /
//! `--alert-webhook-url`, the rules' store under DATA_DIR/alerts, the history of state changes
//! behind `system.alerts` (DATA_DIR/alerts/history.jsonl), and the evaluation task started with
//! the server and stopped at shutdown. The HTTP routes are `http/alert_rules.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use datafusion::arrow::array::{Array, Float64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::StreamExt;
use hourglass_alerts::alertmanager::{Notifier, RetryPolicy, Target, TargetKind};
use hourglass_alerts::evaluator::{Evaluator, EvaluatorConfig, HistorySink, SystemClock};
use hourglass_alerts::query::{Cell, Column, QueryResult, QueryRunner};
use hourglass_alerts::rule::{AlertRule, Dialect};
use hourglass_alerts::state::StateChange;
use hourglass_auth::{Principal, Security};
use hourglass_query::QueryEngine;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The directory of the rules' store inside the data directory.
pub const ALERTS_DIR: &str = "alerts";
/// The most rows one evaluation may return (each row is an alert instance); more is an
/// evaluation error.
pub const MAX_ROWS: usize = 10_000;
/// The `receiver` of webhook messages.
const RECEIVER: &str = "hourglass";

/// Notification targets (`--alertmanager-url`, `--alert-webhook-url`).
#[derive(Debug, Clone, Default)]
pub struct AlertsConfig {
    /// Alertmanager base URLs; alerts go to `<url>/api/v2/alerts`.
    pub alertmanager_urls: Vec<String>,
    /// URLs receiving Alertmanager's webhook JSON directly.
    pub webhook_urls: Vec<String>,
}

/// Runs rules' queries through the query engine, as the rule's owner.
pub struct EngineRunner {
    query: QueryEngine,
    security: Security,
}

impl EngineRunner {
    /// The principal a rule runs as: unrestricted without authentication; else its owner as they
    /// are now (grants changed since are applied; a removed owner's rule fails).
    fn principal_of(&self, rule: &AlertRule) -> Result<Arc<Principal>, String> {
        let Some(store) = &self.security.store else {
            return Ok(Arc::new(Principal::unrestricted()));
        };
        let Some(owner) = &rule.owner else {
            return Err(
                "the rule was created without authentication and has no owner: \
                        replace it (PUT) as a user to run it"
                    .into(),
            );
        };
        store
            .current(owner)
            .map(|(p, _)| p)
            .ok_or_else(|| format!("the rule's owner `{owner}` is no longer a user"))
    }
}

#[async_trait]
impl QueryRunner for EngineRunner {
    async fn run(&self, rule: &AlertRule) -> Result<QueryResult, String> {
        let principal = self.principal_of(rule)?;
        let stream = match rule.dialect {
            Dialect::Sql => {
                let db = rule.database.as_deref().unwrap_or_default();
                self.query.execute_as(db, &rule.query, &principal).await
            }
            Dialect::Timestream => {
                self.query
                    .execute_timestream_as(&rule.query, &principal)
                    .await
            }
        }
        .map_err(|e| e.message)?;
        let schema = stream.schema();
        let mut result = QueryResult {
            columns: schema
                .fields()
                .iter()
                .map(|f| Column {
                    name: f.name().clone(),
                    numeric: f.data_type().is_numeric(),
                })
                .collect(),
            rows: Vec::new(),
        };
        let mut stream = stream;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| e.to_string())?;
            if result.rows.len() + batch.num_rows() > MAX_ROWS {
                return Err(format!(
                    "the query returned more than {MAX_ROWS} rows (each row is an alert \
                     instance): aggregate or filter"
                ));
            }
            append_rows(&batch, &result.columns, &mut result.rows)?;
        }
        Ok(result)
    }
}

/// Appends a batch's rows as cells: numeric columns as numbers, the rest as text.
fn append_rows(
    batch: &RecordBatch,
    columns: &[Column],
    rows: &mut Vec<Vec<Cell>>,
) -> Result<(), String> {
    let start = rows.len();
    rows.extend((0..batch.num_rows()).map(|_| Vec::with_capacity(columns.len())));
    let options = FormatOptions::default();
    for (array, column) in batch.columns().iter().zip(columns) {
        if column.numeric {
            let floats = cast(array, &DataType::Float64)
                .map_err(|e| format!("column `{}`: {e}", column.name))?;
            let floats = floats
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| format!("column `{}`: not castable to float", column.name))?;
            for (i, row) in rows[start..].iter_mut().enumerate() {
                row.push(if floats.is_null(i) {
                    Cell::Null
                } else {
                    Cell::Number(floats.value(i))
                });
            }
        } else {
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options)
                .map_err(|e| format!("column `{}`: {e}", column.name))?;
            for (i, row) in rows[start..].iter_mut().enumerate() {
                row.push(if array.is_null(i) {
                    Cell::Null
                } else {
                    Cell::Text(formatter.value(i).to_string())
                });
            }
        }
    }
    Ok(())
}

/// Appends state changes to the file of `system.alerts`, one JSON object a line (the columns;
/// `time` in nanoseconds), synced to disk. A failure is logged: the history is a record, the
/// alerts go on.
struct HistoryFile {
    path: PathBuf,
}

impl HistoryFile {
    fn append(path: &Path, changes: &[StateChange]) -> std::io::Result<()> {
        let mut text = String::new();
        for c in changes {
            let line = serde_json::json!({
                "time": c.at.saturating_mul(1_000_000),
                "rule": c.rule,
                "kind": c.kind,
                "labels": c.labels,
                "value": c.value,
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }
}

#[async_trait]
impl HistorySink for HistoryFile {
    async fn record(&self, changes: &[StateChange]) {
        let path = self.path.clone();
        let changes = changes.to_vec();
        let result = tokio::task::spawn_blocking(move || Self::append(&path, &changes)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(path = %self.path.display(), error = %e, "writing the alert history failed")
            }
            Err(e) => tracing::error!(error = %e, "writing the alert history failed"),
        }
    }
}

/// The running alert rule engine.
pub struct Alerts {
    pub evaluator: Arc<Evaluator>,
    task: JoinHandle<()>,
}

impl Alerts {
    /// Loads the rules and states of DATA_DIR/alerts and starts evaluating them until `stop`
    /// turns true. `external_url` is Hourglass' own URL (alerts' `generatorURL`).
    pub fn start(
        config: &AlertsConfig,
        data_dir: &Path,
        query: QueryEngine,
        security: Security,
        external_url: &str,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Alerts> {
        let targets: Vec<Target> = config
            .alertmanager_urls
            .iter()
            .map(|url| (TargetKind::Alertmanager, url))
            .chain(
                config
                    .webhook_urls
                    .iter()
                    .map(|url| (TargetKind::Webhook, url)),
            )
            .map(|(kind, url)| Target {
                kind,
                url: url.clone(),
            })
            .collect();
        let notifier = if targets.is_empty() {
            None
        } else {
            Some(Arc::new(
                Notifier::new(targets, RetryPolicy::default(), external_url, RECEIVER).map_err(
                    |e| anyhow::anyhow!("--alertmanager-url / --alert-webhook-url: {e}"),
                )?,
            ))
        };
        let runner = Arc::new(EngineRunner { query, security });
        let dir = data_dir.join(ALERTS_DIR);
        let history = Arc::new(HistoryFile {
            path: data_dir.join(hourglass_query::system::ALERTS_HISTORY_FILE),
        });
        let evaluator = Evaluator::new(
            runner,
            Arc::new(SystemClock),
            notifier,
            Some(history),
            EvaluatorConfig {
                external_url: external_url.to_string(),
                ..EvaluatorConfig::default()
            },
        )
        .with_store(&dir)
        .with_context(|| format!("loading alert rules from {}", dir.display()))?;
        let evaluator = Arc::new(evaluator);
        let task = tokio::spawn(evaluator.clone().run(stop));
        Ok(Alerts { evaluator, task })
    }

    /// Waits for the evaluation task to stop (after the server's stop signal) within `limit`;
    /// past it the task is stopped and the states are saved here.
    pub async fn shutdown(self, limit: Duration) {
        let mut task = self.task;
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            task.abort();
            if let Err(e) = self.evaluator.persist().await {
                tracing::error!(error = %e, "persisting alert states at shutdown failed");
            }
        }
    }

    /// Stops evaluating at once (a simulated crash): nothing more is saved.
    pub fn abort(&self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    #[test]
    fn rows_become_numbers_text_and_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("value", DataType::Int64, true),
            Field::new(
                "time",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("AAPL"), None])),
                Arc::new(Int64Array::from(vec![Some(150), None])),
                Arc::new(TimestampNanosecondArray::from(vec![
                    Some(1_000_000_000),
                    None,
                ])),
            ],
        )
        .unwrap();
        let columns: Vec<Column> = schema
            .fields()
            .iter()
            .map(|f| Column {
                name: f.name().clone(),
                numeric: f.data_type().is_numeric(),
            })
            .collect();
        assert_eq!(
            columns.iter().map(|c| c.numeric).collect::<Vec<_>>(),
            [false, true, false]
        );
        let mut rows = vec![vec![Cell::Null; 3]];
        append_rows(&batch, &columns, &mut rows).unwrap();
        assert_eq!(rows.len(), 3, "appended after the existing row");
        assert_eq!(
            rows[1],
            [
                Cell::Text("AAPL".into()),
                Cell::Number(150.0),
                Cell::Text("1970-01-01T00:00:01".into())
            ]
        );
        assert_eq!(rows[2], [Cell::Null, Cell::Null, Cell::Null]);
    }
}
