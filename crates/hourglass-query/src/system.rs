//! The `system` schema: server tables for operators. `system.audit_log` is the audit log
//! (`<data-dir>/audit.log`, `docs/format/audit-log.md`) read at each scan, one row per event:
//! `time` (timestamp, UTC), `user`, `peer`, `interface`, `action`, `target`, `outcome`, `detail`.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use hourglass_storage::Engine;

pub const SCHEMA_NAME: &str = "system";
pub const AUDIT_LOG_TABLE: &str = "audit_log";

/// The `system` schema.
#[derive(Debug)]
pub struct SystemSchema {
    audit_path: PathBuf,
}

impl SystemSchema {
    pub fn new(engine: &Engine) -> Self {
        SystemSchema {
            audit_path: hourglass_auth::audit::path(&engine.config.data_dir),
        }
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        vec![AUDIT_LOG_TABLE.to_string()]
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok((name == AUDIT_LOG_TABLE).then(|| {
            Arc::new(AuditLogTable {
                path: self.audit_path.clone(),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        name == AUDIT_LOG_TABLE
    }
}

/// `system.audit_log`.
#[derive(Debug)]
pub struct AuditLogTable {
    path: PathBuf,
}

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

impl AuditLogTable {
    fn batch(&self) -> DfResult<RecordBatch> {
        let events = hourglass_auth::audit::read_all(&self.path)
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
}

#[async_trait]
impl TableProvider for AuditLogTable {
    fn schema(&self) -> SchemaRef {
        audit_schema()
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
        let table = MemTable::try_new(self.schema(), vec![vec![self.batch()?]])?;
        table.scan(state, projection, filters, limit).await
    }
}
