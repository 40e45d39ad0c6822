//! Prometheus remote write and remote read 1.0 (`POST /api/v1/prom/write?db=DB[&table=T]`,
//! `POST /api/v1/prom/read?db=DB[&table=T]`; the mapping is in `hourglass-prometheus` and
//! `docs/protocols/prometheus.md`). Bodies are snappy-compressed protobuf. Writes need `write` on
//! the database (and `admin` to create it), reads `read`. A write is answered `204` once its
//! samples are durable (the engine's commit, WAL fsync included). Errors are plain text, as
//! Prometheus logs them: `400` for what a retry cannot fix (it drops the batch), `503` with
//! `Retry-After` when the memory store is full (it retries).

use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;
use hourglass_core::{Error, TableWrite, WriteBatch};
use hourglass_prometheus::names::VALUE_COLUMN;
use hourglass_prometheus::proto::{ReadRequest, ReadResponse, WriteRequest};
use hourglass_prometheus::{codec, plan_scans, ReadQuery, SeriesCollector, TableInfo};
use serde::Deserialize;

use super::auth::Caller;
use super::{status_for, AppState, ErrorStyle, HttpError};

/// Most samples one remote read answer holds (about 40 bytes each while it is built in memory;
/// Prometheus' own server allows 5e7).
const MAX_READ_SAMPLES: usize = 10_000_000;

#[derive(Debug, Deserialize)]
pub struct PromParams {
    db: Option<String>,
    /// One table for every metric (the Timestream connector's layout) instead of one per metric.
    table: Option<String>,
}

/// An error answered as plain text.
pub struct PromError {
    status: StatusCode,
    message: String,
}

impl PromError {
    fn invalid(message: impl Into<String>) -> Self {
        PromError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<Error> for PromError {
    fn from(e: Error) -> Self {
        PromError {
            status: status_for(e.kind),
            message: e.message,
        }
    }
}

impl From<HttpError> for PromError {
    fn from(e: HttpError) -> Self {
        PromError {
            status: e.status,
            message: e.message,
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The database and optional table of a request, checked.
fn target(params: PromParams) -> Result<(String, Option<String>), PromError> {
    let db = params
        .db
        .filter(|d| !d.is_empty())
        .ok_or_else(|| PromError::invalid("missing required query parameter 'db'"))?;
    hourglass_core::names::validate_database_name(&db)?;
    let table = params.table.filter(|t| !t.is_empty());
    if let Some(t) = &table {
        hourglass_core::names::validate_object_name("table", t)?;
    }
    Ok((db, table))
}

pub async fn remote_write(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<PromParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PromError> {
    let (db, table) = target(params)?;
    refuse_remote_write_2(&headers)?;
    super::write::authorize_write(
        &state,
        &caller,
        &db,
        ErrorStyle::V3,
        "Prometheus remote write",
    )?;
    let before = state.engine.catalog.snapshot();
    let limit = state.max_body_bytes.saturating_mul(4);
    let engine = state.engine.clone();
    let database = db.clone();
    // Decoding a large body is CPU work: off the async threads, with the commit.
    let outcome = tokio::task::spawn_blocking(move || {
        let request: WriteRequest = codec::decode(&body, limit, "remote write body")?;
        commit(&engine, &database, table, &request)
    })
    .await
    .map_err(|e| Error::internal(format!("write task failed: {e}")))??;
    super::write::audit_created(
        &state,
        &caller,
        &db,
        &before,
        "created by a Prometheus remote write",
    );
    if outcome.is_empty() {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(PromError::invalid(outcome.join("; ")))
    }
}

/// Remote write 2.0 (`io.prometheus.write.v2.Request`) is another message: answered `415`, as its
/// specification asks of receivers that take only 1.0, so the sender can fall back.
fn refuse_remote_write_2(headers: &HeaderMap) -> Result<(), PromError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.contains("io.prometheus.write.v2.Request") {
        return Err(PromError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "remote write 2.0 (io.prometheus.write.v2.Request) is not supported: send \
                      remote write 1.0 (protobuf_message: prometheus.WriteRequest)"
                .to_string(),
        });
    }
    Ok(())
}

/// Maps and commits a write request; what was not written, as messages (empty: all of it).
fn commit(
    engine: &hourglass_storage::Engine,
    db: &str,
    table: Option<String>,
    request: &WriteRequest,
) -> Result<Vec<String>, PromError> {
    engine.admit()?;
    let catalog = engine.catalog.snapshot();
    let defaults = engine.config.default_properties;
    let now = engine.clock.now_nanos();
    let properties = |t: &str| catalog.table(db, t).map_or(defaults, |d| d.properties);
    let plan = hourglass_prometheus::plan_write(request, table.as_deref(), |t, time| {
        properties(t).check_write_time(time, now)
    })?;
    let mut problems = Vec::new();
    if plan.rejected > 0 {
        problems.push(format!(
            "{} samples not written (outside the write window), the first: {}",
            plan.rejected,
            plan.first_rejection.as_deref().unwrap_or("")
        ));
    }
    if plan.histograms > 0 {
        problems.push(format!(
            "{} native histogram samples not written: Hourglass stores float samples (send classic histograms)",
            plan.histograms
        ));
    }
    let mut tables: Vec<TableWrite> = Vec::with_capacity(plan.tables.len());
    for write in plan.tables {
        let columns = hourglass_storage::engine::new_columns(&write.batch);
        match engine
            .catalog
            .ensure_columns(db, &write.table, defaults, &columns, now)
        {
            Ok(()) => {
                engine.ensure_table_store(db, &write.table);
                tables.push(write);
            }
            Err(e) => problems.push(format!(
                "{} samples for table '{}' not written: {}",
                write.batch.num_rows(),
                write.table,
                e.message
            )),
        }
    }
    if !tables.is_empty() {
        engine.commit(WriteBatch {
            database: db.to_string(),
            tables,
        })?;
    }
    Ok(problems)
}

pub async fn remote_read(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<PromParams>,
    body: Bytes,
) -> Result<Response, PromError> {
    let (db, table) = target(params)?;
    caller.require(
        &state.security,
        caller.principal.can_read(&db),
        "read",
        &db,
        ErrorStyle::V3,
    )?;
    let limit = state.max_body_bytes.saturating_mul(4);
    let request: ReadRequest = codec::decode(&body, limit, "remote read body")?;
    let queries = request
        .queries
        .iter()
        .map(ReadQuery::from_proto)
        .collect::<Result<Vec<_>, _>>()?;
    let catalog = state.engine.catalog.snapshot();
    let database = catalog
        .databases
        .get(&db)
        .ok_or_else(|| Error::not_found(format!("database '{db}' does not exist")))?;
    let tables: Vec<TableInfo> = database
        .tables
        .values()
        .map(|t| TableInfo {
            name: t.name.clone(),
            dimensions: t.dimensions().map(|c| c.name.clone()).collect(),
            has_values: t
                .column(VALUE_COLUMN)
                .is_some_and(|c| c.measure_type == Some(hourglass_core::ColumnType::Double)),
        })
        .collect();
    let mut results = Vec::with_capacity(queries.len());
    let mut used = 0usize;
    for query in &queries {
        // Turning rows into series (and encoding the answer) is CPU work over up to
        // MAX_READ_SAMPLES samples: it runs on a blocking thread, fed batch by batch.
        let collector = SeriesCollector::new(query, MAX_READ_SAMPLES - used);
        let (batches, mut received) = tokio::sync::mpsc::channel::<RecordBatch>(4);
        let collecting = tokio::task::spawn_blocking(move || {
            let mut collector = collector;
            while let Some(batch) = received.blocking_recv() {
                collector.add(&batch)?;
            }
            Ok::<_, Error>(collector)
        });
        let scanned = scan_into(
            &state,
            &caller,
            &db,
            query,
            &tables,
            table.as_deref(),
            batches,
        )
        .await;
        let collector = join_blocking(collecting).await?;
        scanned?;
        used += collector.samples();
        results.push(
            tokio::task::spawn_blocking(move || collector.finish())
                .await
                .map_err(join_error)?,
        );
    }
    let body = join_blocking(tokio::task::spawn_blocking(move || {
        codec::encode(&ReadResponse { results })
    }))
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-protobuf"),
            (header::CONTENT_ENCODING, "snappy"),
        ],
        body,
    )
        .into_response())
}

/// Runs a read query's scans, sending their batches to the collector; stops early (without
/// error) when the collector has gone, which it does only on its own error.
async fn scan_into(
    state: &AppState,
    caller: &Caller,
    db: &str,
    query: &ReadQuery,
    tables: &[TableInfo],
    table: Option<&str>,
    batches: tokio::sync::mpsc::Sender<RecordBatch>,
) -> Result<(), PromError> {
    for scan in plan_scans(db, query, tables, table) {
        let mut stream = state
            .query
            .execute_as(db, &scan.sql, &caller.principal)
            .await
            .map_err(|e| e.context(format!("reading table '{}'", scan.table)))?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(hourglass_query::from_datafusion)?;
            if batches.send(batch).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

async fn join_blocking<T>(task: tokio::task::JoinHandle<Result<T, Error>>) -> Result<T, PromError> {
    Ok(task.await.map_err(join_error)??)
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::internal(format!("remote read worker failed: {e}"))
}
