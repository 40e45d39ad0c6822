//! Operator endpoints: health, ping, Prometheus metrics, and admin actions (flush, compact).

use std::sync::atomic::Ordering;

use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::{AppState, ErrorStyle, HttpError};

pub async fn health(State(state): State<AppState>) -> Response {
    let (status, text) = if state.engine.is_shut_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "fail")
    } else {
        (StatusCode::OK, "pass")
    };
    (
        status,
        axum::Json(serde_json::json!({
            "name": "hourglass",
            "message": "ready for queries and writes",
            "status": text,
            "checks": [],
            "version": env!("CARGO_PKG_VERSION"),
        })),
    )
        .into_response()
}

pub async fn ping() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            ("X-Influxdb-Version", env!("CARGO_PKG_VERSION")),
            ("X-Influxdb-Build", "hourglass"),
        ],
    )
        .into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let engine = &state.engine;
    let mut files = 0u64;
    let mut file_bytes = 0u64;
    let mut chunks = 0usize;
    for t in engine.table_stores() {
        let s = t.snapshot();
        files += s.manifest.files.len() as u64;
        file_bytes += s.manifest.files.iter().map(|f| f.bytes).sum::<u64>();
        chunks += s.chunks.len();
    }
    let body = format!(
        "# HELP hourglass_memory_store_bytes Bytes held by the memory store.\n\
         # TYPE hourglass_memory_store_bytes gauge\n\
         hourglass_memory_store_bytes {}\n\
         # HELP hourglass_memory_store_budget_bytes The memory-store budget.\n\
         # TYPE hourglass_memory_store_budget_bytes gauge\n\
         hourglass_memory_store_budget_bytes {}\n\
         # HELP hourglass_memory_store_chunks Write chunks in the memory store.\n\
         # TYPE hourglass_memory_store_chunks gauge\n\
         hourglass_memory_store_chunks {chunks}\n\
         # HELP hourglass_magnetic_files Parquet files in the magnetic store.\n\
         # TYPE hourglass_magnetic_files gauge\n\
         hourglass_magnetic_files {files}\n\
         # HELP hourglass_magnetic_bytes Bytes of Parquet files in the magnetic store.\n\
         # TYPE hourglass_magnetic_bytes gauge\n\
         hourglass_magnetic_bytes {file_bytes}\n\
         # HELP hourglass_wal_bytes Bytes of WAL segments on disk.\n\
         # TYPE hourglass_wal_bytes gauge\n\
         hourglass_wal_bytes {}\n\
         # HELP hourglass_latest_value_queries_total Latest-value queries answered from last rows.\n\
         # TYPE hourglass_latest_value_queries_total counter\n\
         hourglass_latest_value_queries_total {}\n\
         # HELP hourglass_latest_value_candidate_rows_total Rows those queries examined.\n\
         # TYPE hourglass_latest_value_candidate_rows_total counter\n\
         hourglass_latest_value_candidate_rows_total {}\n\
         # HELP hourglass_ingest_rows_total Rows committed by every write path since start.\n\
         # TYPE hourglass_ingest_rows_total counter\n\
         hourglass_ingest_rows_total {}\n\
         # HELP hourglass_queries_total Queries run (HTTP SQL, the PostgreSQL wire, Timestream Query, PromQL, alert rules).\n\
         # TYPE hourglass_queries_total counter\n\
         hourglass_queries_total {}\n\
         # HELP hourglass_query_errors_total Queries that failed, in planning or while running.\n\
         # TYPE hourglass_query_errors_total counter\n\
         hourglass_query_errors_total {}\n\
         # HELP hourglass_plan_cache_statements_total SQL statements by how they were planned: hit (bound to a shape's optimised plan), miss (the shape planned now), bypassed (planned on their own).\n\
         # TYPE hourglass_plan_cache_statements_total counter\n\
         hourglass_plan_cache_statements_total{{outcome=\"hit\"}} {}\n\
         hourglass_plan_cache_statements_total{{outcome=\"miss\"}} {}\n\
         hourglass_plan_cache_statements_total{{outcome=\"bypassed\"}} {}\n\
         # HELP hourglass_plan_cache_shapes Statement shapes whose plans are kept.\n\
         # TYPE hourglass_plan_cache_shapes gauge\n\
         hourglass_plan_cache_shapes {}\n",
        engine.memory_bytes(),
        engine.config.memory_budget_bytes,
        engine.wal_disk_bytes(),
        engine.latest_value_stats.queries.load(Ordering::Relaxed),
        engine.latest_value_stats.candidate_rows.load(Ordering::Relaxed),
        engine.ingest_rows.load(Ordering::Relaxed),
        state.query.counters.queries.load(Ordering::Relaxed),
        state.query.counters.errors.load(Ordering::Relaxed),
        state.query.plan_cache.hits.load(Ordering::Relaxed),
        state.query.plan_cache.misses.load(Ordering::Relaxed),
        state.query.plan_cache.bypassed.load(Ordering::Relaxed),
        state.query.plan_cache.len(),
    ) + &engine.write_out.prometheus_text()
        + &state.connections.metrics_text()
        + &state
            .scheduler
            .as_ref()
            .map(|s| s.prometheus_metrics())
            .unwrap_or_default();
    let mut body = body;
    if let Some(mqtt) = &state.mqtt {
        mqtt.render_metrics(&mut body);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Persists the whole memory store to Parquet now.
pub async fn flush(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, HttpError> {
    let result = state.engine.persist_all().await;
    audit(&state, &caller, "POST /admin/flush", &result);
    let report = result.map_err(|e| HttpError::new(ErrorStyle::V3, e))?;
    Ok(axum::Json(serde_json::json!({
        "rows_persisted": report.rows_persisted,
        "files_written": report.files_written,
        "wal_segments_removed": report.wal_segments_removed,
    }))
    .into_response())
}

/// Compacts every table's files now.
pub async fn compact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, HttpError> {
    let result = state.engine.compact_all().await;
    audit(&state, &caller, "POST /admin/compact", &result);
    let report = result.map_err(|e| HttpError::new(ErrorStyle::V3, e))?;
    Ok(axum::Json(serde_json::json!({
        "files_compacted": report.files_compacted,
    }))
    .into_response())
}

/// Records an admin action in the audit log.
fn audit<T>(state: &AppState, caller: &Caller, action: &str, result: &hourglass_core::Result<T>) {
    let (outcome, detail) = match result {
        Ok(_) => ("ok", String::new()),
        Err(e) => ("error", e.message.clone()),
    };
    state.security.audit(
        &caller.principal.name,
        &caller.peer,
        "http",
        action,
        "",
        outcome,
        &detail,
    );
}
