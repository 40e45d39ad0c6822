//! SQL golden tests: every `tests/slt/*.slt` file runs three ways — data in the memory store,
//! after a flush to Parquet, and after a restart (WAL replay) — and must pass each time.
//! A file's data is the line protocol in the `.lp` file of the same name, written to database
//! `test` before the statements run. Files named `ts_*.slt` are in the Timestream dialect and run
//! through `QueryEngine::collect_timestream` (tables named `"test"."cpu"` or `test.cpu`).

use std::path::{Path, PathBuf};

use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use hourglass_query::QueryEngine;
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::harness::TestServer;

#[derive(Debug, Clone, Copy)]
enum Mode {
    Memory,
    Flushed,
    Restarted,
}

struct Db {
    query: QueryEngine,
    timestream: bool,
}

#[derive(Debug)]
struct SqlError(String);
impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SqlError {}

#[async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let batches = if self.timestream {
            self.query.collect_timestream(sql).await
        } else {
            self.query.collect("test", sql).await
        }
        .map_err(|e| SqlError(e.message))?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        let mut types = Vec::new();
        for batch in &batches {
            if types.is_empty() {
                types = batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| match f.data_type() {
                        d if d.is_integer() => DefaultColumnType::Integer,
                        d if d.is_floating() => DefaultColumnType::FloatingPoint,
                        _ => DefaultColumnType::Text,
                    })
                    .collect();
            }
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SqlError(e.to_string()))?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| {
                            let s = f.value(row).to_string();
                            if s.is_empty() {
                                "(empty)".to_string()
                            } else {
                                s
                            }
                        })
                        .collect(),
                );
            }
        }
        if batches.is_empty() || (rows.is_empty() && types.is_empty()) {
            return Ok(DBOutput::Rows {
                types: vec![],
                rows,
            });
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "hourglass"
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

async fn run_file(path: &Path, mode: Mode) {
    let mut server = TestServer::start().await;
    let data = path.with_extension("lp");
    if let Ok(body) = std::fs::read_to_string(&data) {
        let (status, text) = server.write_lp("test", &body).await;
        assert_eq!(status, 204, "loading {}: {text}", data.display());
    }
    match mode {
        Mode::Memory => {}
        Mode::Flushed => {
            let report = server.running().engine.persist_all().await.expect("flush");
            assert!(
                report.rows_persisted > 0 || !data.exists(),
                "flush persisted nothing"
            );
            assert!(
                server.running().engine.memory_bytes() == 0,
                "memory store not empty after flush"
            );
        }
        Mode::Restarted => server.crash_and_restart().await,
    }
    let query = server.running().query.clone();
    let timestream = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("ts_"));
    let mut runner = sqllogictest::Runner::new(move || {
        let query = query.clone();
        async move { Ok::<_, SqlError>(Db { query, timestream }) }
    });
    if let Err(e) = runner.run_file_async(path).await {
        panic!("{} ({mode:?}): {e}", path.display());
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_in_memory_store() {
    for f in slt_files() {
        run_file(&f, Mode::Memory).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_after_flush_to_parquet() {
    for f in slt_files() {
        run_file(&f, Mode::Flushed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_after_restart() {
    for f in slt_files() {
        run_file(&f, Mode::Restarted).await;
    }
}
