//! `system.tables`: one row per table of the databases the querying principal may read, from
//! live state at each scan: the catalog's settings (`memory_store_retention_hours`,
//! `magnetic_store_retention_days`, `magnetic_writes_enabled`, `created_at`, `updated_at`) and
//! what each tier holds now: `memory_rows`, `memory_bytes` (the memory store's chunks) and
//! `magnetic_rows`, `magnetic_bytes`, `magnetic_files` (the table manifest's per-file metadata;
//! no Parquet file is opened). It is the schema browser's source for what Timestream's
//! DescribeTable tells a SigV4 caller.

use std::sync::Arc;

use arrow::array::{BooleanArray, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use hourglass_auth::Principal;
use hourglass_storage::Engine;

pub const TABLES_TABLE: &str = "tables";

/// `system.tables` as `principal` sees it.
#[derive(Debug)]
pub struct TablesTable {
    pub engine: Arc<Engine>,
    pub principal: Arc<Principal>,
}

/// `system.tables`' columns.
pub fn tables_schema() -> SchemaRef {
    let utc = || DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("database_name", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("memory_store_retention_hours", DataType::Int64, false),
        Field::new("magnetic_store_retention_days", DataType::Int64, false),
        Field::new("magnetic_writes_enabled", DataType::Boolean, false),
        Field::new("memory_rows", DataType::Int64, false),
        Field::new("memory_bytes", DataType::Int64, false),
        Field::new("magnetic_rows", DataType::Int64, false),
        Field::new("magnetic_bytes", DataType::Int64, false),
        Field::new("magnetic_files", DataType::Int64, false),
        Field::new("created_at", utc(), false),
        Field::new("updated_at", utc(), false),
    ]))
}

/// One row of `system.tables`.
struct TableRow {
    database: String,
    table: String,
    memory_hours: i64,
    magnetic_days: i64,
    magnetic_writes: bool,
    memory_rows: i64,
    memory_bytes: i64,
    magnetic_rows: i64,
    magnetic_bytes: i64,
    magnetic_files: i64,
    created_at: i64,
    updated_at: i64,
}

/// The rows `principal` may see: every table of every database it may read, in name order.
fn table_rows(engine: &Engine, principal: &Principal) -> Vec<TableRow> {
    let catalog = engine.catalog.snapshot();
    let mut rows = Vec::new();
    for (db, def) in &catalog.databases {
        if !principal.can_read(db) {
            continue;
        }
        for (name, table) in &def.tables {
            let mut row = TableRow {
                database: db.clone(),
                table: name.clone(),
                memory_hours: table.properties.memory_retention_hours,
                magnetic_days: table.properties.magnetic_retention_days,
                magnetic_writes: table.properties.magnetic_writes_enabled,
                memory_rows: 0,
                memory_bytes: 0,
                magnetic_rows: 0,
                magnetic_bytes: 0,
                magnetic_files: 0,
                created_at: table.created_at,
                updated_at: table.updated_at,
            };
            if let Some(snapshot) = engine.table_snapshot(db, name) {
                let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
                let count64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                row.memory_rows = count(snapshot.chunks.iter().map(|c| c.batch.num_rows()).sum());
                row.memory_bytes = count(snapshot.chunks.iter().map(|c| c.bytes).sum());
                let files = &snapshot.manifest.files;
                row.magnetic_rows = count64(files.iter().map(|f| f.rows).sum());
                row.magnetic_bytes = count64(files.iter().map(|f| f.bytes).sum());
                row.magnetic_files = count(files.len());
            }
            rows.push(row);
        }
    }
    rows
}

/// `rows` as one batch of [`tables_schema`].
fn tables_batch(rows: &[TableRow]) -> DfResult<RecordBatch> {
    let ints = |f: fn(&TableRow) -> i64| Arc::new(Int64Array::from_iter_values(rows.iter().map(f)));
    let times = |f: fn(&TableRow) -> i64| {
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(f)).with_timezone("UTC"),
        )
    };
    RecordBatch::try_new(
        tables_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.database),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.table))),
            ints(|r| r.memory_hours),
            ints(|r| r.magnetic_days),
            Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.magnetic_writes).collect::<Vec<_>>(),
            )),
            ints(|r| r.memory_rows),
            ints(|r| r.memory_bytes),
            ints(|r| r.magnetic_rows),
            ints(|r| r.magnetic_bytes),
            ints(|r| r.magnetic_files),
            times(|r| r.created_at),
            times(|r| r.updated_at),
        ],
    )
    .map_err(|e| DataFusionError::Internal(format!("building system.tables: {e}")))
}

#[async_trait]
impl TableProvider for TablesTable {
    fn schema(&self) -> SchemaRef {
        tables_schema()
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
        let batch = tables_batch(&table_rows(&self.engine, &self.principal))?;
        let table = MemTable::try_new(self.schema(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use hourglass_auth::{Grant, Permission};
    use hourglass_core::time::Precision;
    use hourglass_core::ManualClock;
    use hourglass_storage::EngineConfig;

    fn reader_of(db: &str) -> Principal {
        Principal::user(
            "r",
            vec![Grant {
                database: db.to_string(),
                permission: Permission::Read,
            }],
        )
    }

    #[tokio::test]
    async fn system_tables_lists_readable_databases_with_tier_counts() {
        let dir = std::env::temp_dir().join(format!("hg-system-tables-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let clock = Arc::new(ManualClock::new(1_704_067_200_000_000_000));
        let engine = Engine::open(EngineConfig::new(&dir), clock).await.unwrap();
        let body = b"cpu,host=a v=1 1704067200000000000\ncpu,host=b v=2 1704067200000000000";
        engine
            .write_line_protocol("a", body, Precision::Nanosecond, false)
            .unwrap();
        engine
            .write_line_protocol(
                "b",
                b"mem v=1 1704067200000000000",
                Precision::Nanosecond,
                false,
            )
            .unwrap();

        let all = tables_batch(&table_rows(&engine, &Principal::unrestricted())).unwrap();
        let dbs = all
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(dbs.iter().flatten().collect::<Vec<_>>(), ["a", "b"]);

        let rows = table_rows(&engine, &reader_of("a"));
        assert_eq!(rows.len(), 1, "a reader of `a` must not see `b`");
        let cpu = &rows[0];
        assert_eq!((cpu.database.as_str(), cpu.table.as_str()), ("a", "cpu"));
        assert_eq!(cpu.memory_rows, 2);
        assert!(cpu.memory_bytes > 0);
        assert_eq!((cpu.magnetic_rows, cpu.magnetic_files), (0, 0));
        let defaults = engine.config.default_properties;
        assert_eq!(cpu.memory_hours, defaults.memory_retention_hours);
        assert_eq!(cpu.magnetic_days, defaults.magnetic_retention_days);
        assert_eq!(cpu.magnetic_writes, defaults.magnetic_writes_enabled);

        assert!(table_rows(&engine, &reader_of("none")).is_empty());
        let batch = tables_batch(&table_rows(&engine, &reader_of("b"))).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert!(batch.column(4).null_count() == 0);
        engine.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
