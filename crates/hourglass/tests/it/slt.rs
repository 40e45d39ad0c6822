//! SQL golden tests: every `tests/slt/*.slt` file runs three ways — data in the memory store,
//! after a flush to Parquet, and after a restart (WAL replay) — and must pass each time.
//! A file's data is the line protocol in the `.lp` file of the same name, written to database
//! `test` before the statements run. Files named `ts_*.slt` are in the Timestream dialect and run
//! through `QueryEngine::collect_timestream` (tables named `"test"."cpu"` or `test.cpu`).
//!
//! A fourth run, [`slt_through_postgres_wire`], sends the non-`ts_*` files through a real
//! PostgreSQL client (`tokio-postgres`, simple query protocol) connected to the server's PG port.

use std::path::{Path, PathBuf};

use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use hourglass_query::QueryEngine;
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio_postgres::types::Type;
use tokio_postgres::{NoTls, SimpleQueryMessage};

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

/// The `.slt` files, or those whose name contains `HOURGLASS_SLT` when it is set (to run one
/// file while working on it).
fn slt_files() -> Vec<PathBuf> {
    let only = std::env::var("HOURGLASS_SLT").unwrap_or_default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .filter(|p| p.to_string_lossy().contains(only.as_str()))
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

/// A [`sqllogictest::AsyncDB`] speaking the PostgreSQL wire protocol to the server's PG port.
struct PgDb {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl PgDb {
    async fn connect(addr: std::net::SocketAddr) -> Result<PgDb, SqlError> {
        let conf = format!(
            "host={} port={} user=test dbname=test",
            addr.ip(),
            addr.port()
        );
        let (client, conn) = tokio_postgres::connect(&conf, NoTls)
            .await
            .map_err(|e| SqlError(e.to_string()))?;
        let connection = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(PgDb { client, connection })
    }
}

fn pg_error(e: tokio_postgres::Error) -> SqlError {
    SqlError(match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    })
}

/// Rewrites PostgreSQL's text output of a value into Arrow's display format, which the expected
/// results were written in (they are shared with the in-process runs). The values are the same;
/// only the spelling differs:
/// - `float4`/`float8`: PostgreSQL prints whole numbers without a fraction (`5`), Arrow as `5.0`;
///   infinities are `Infinity` in PostgreSQL and `inf` in Arrow.
/// - `timestamp`/`timestamptz`: PostgreSQL separates date and time with a space
///   (`2024-01-01 00:00:00`), Arrow with `T` (ISO 8601).
///   The endpoint (arrow-pg's text encoder) also always prints six fraction digits
///   (`2024-01-01 00:00:00.000000`), where Arrow (chrono) prints none for whole seconds and
///   otherwise 3, 6 or 9 digits (`.500`); see [`arrow_timestamp`].
/// - `bool`: PostgreSQL prints `t`/`f`, Arrow `true`/`false`.
fn arrow_spelling(ty: Option<&Type>, text: &str) -> String {
    match ty {
        Some(t) if *t == Type::FLOAT4 || *t == Type::FLOAT8 => match text {
            "Infinity" => "inf".to_string(),
            "-Infinity" => "-inf".to_string(),
            "NaN" => text.to_string(),
            _ if text.contains(['.', 'e', 'E']) => text.to_string(),
            _ => format!("{text}.0"),
        },
        Some(t) if *t == Type::TIMESTAMP || *t == Type::TIMESTAMPTZ => {
            arrow_timestamp(&text.replacen(' ', "T", 1))
        }
        Some(t) if *t == Type::BOOL => match text {
            "t" => "true".to_string(),
            "f" => "false".to_string(),
            _ => text.to_string(),
        },
        _ => text.to_string(),
    }
}

/// `2024-01-01T00:00:00.500000[+00]` → `2024-01-01T00:00:00.500[+00]`: the fraction trimmed of
/// trailing zeros, padded to a multiple of three digits, and dropped when zero (chrono's style).
fn arrow_timestamp(iso: &str) -> String {
    let Some((seconds, rest)) = iso.split_once('.') else {
        return iso.to_string();
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (fraction, zone) = rest.split_at(digits);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        return format!("{seconds}{zone}");
    }
    let width = fraction.len().div_ceil(3) * 3;
    format!("{seconds}.{fraction:0<width$}{zone}")
}

#[async_trait]
impl sqllogictest::AsyncDB for PgDb {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let messages = self.client.simple_query(sql).await.map_err(pg_error)?;
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut columns = 0;
        for m in &messages {
            match m {
                SimpleQueryMessage::RowDescription(cols) => columns = cols.len(),
                SimpleQueryMessage::Row(row) => rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                ),
                _ => {}
            }
        }
        if columns == 0 {
            return Ok(DBOutput::Rows {
                types: vec![],
                rows,
            });
        }
        // The simple protocol's RowDescription reaches tokio-postgres's API with column names
        // only, so the column types (needed to normalise the text, see `arrow_spelling`) come
        // from describing the same statement (Parse + Describe; nothing executes).
        let pg_types: Vec<Type> = if rows.is_empty() {
            vec![]
        } else {
            let stmt = self.client.prepare(sql).await.map_err(pg_error)?;
            stmt.columns().iter().map(|c| c.type_().clone()).collect()
        };
        for row in &mut rows {
            for (i, v) in row.iter_mut().enumerate() {
                *v = if v == "NULL" {
                    v.clone()
                } else if v.is_empty() {
                    "(empty)".to_string()
                } else {
                    arrow_spelling(pg_types.get(i), v)
                };
            }
        }
        let types = (0..columns)
            .map(|i| match pg_types.get(i) {
                Some(t) if [Type::INT2, Type::INT4, Type::INT8].contains(t) => {
                    DefaultColumnType::Integer
                }
                Some(t) if [Type::FLOAT4, Type::FLOAT8, Type::NUMERIC].contains(t) => {
                    DefaultColumnType::FloatingPoint
                }
                _ => DefaultColumnType::Text,
            })
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {
        self.connection.abort();
    }

    fn engine_name(&self) -> &str {
        "hourglass-postgres-wire"
    }
}

/// Every non-`ts_*` file, its data loaded as in the other runs, queried through a PostgreSQL
/// client over the wire. The `ts_*` files are in the Timestream dialect, which the PostgreSQL
/// endpoint does not speak (it parses PostgreSQL/DataFusion SQL), so they are skipped here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_through_postgres_wire() {
    let files: Vec<PathBuf> = slt_files()
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ts_"))
        })
        .collect();
    assert!(!files.is_empty(), "no non-Timestream .slt files");
    for path in files {
        let server = TestServer::start().await;
        let data = path.with_extension("lp");
        if let Ok(body) = std::fs::read_to_string(&data) {
            let (status, text) = server.write_lp("test", &body).await;
            assert_eq!(status, 204, "loading {}: {text}", data.display());
        }
        let addr = server.running().pg_addr;
        let mut runner = sqllogictest::Runner::new(move || PgDb::connect(addr));
        if let Err(e) = runner.run_file_async(&path).await {
            panic!("{} (postgres wire): {e}", path.display());
        }
        server.shutdown().await;
    }
}
