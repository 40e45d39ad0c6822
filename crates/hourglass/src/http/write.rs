//! Line protocol write endpoints (InfluxDB v1, v2 and 3 flavours). Each decodes the body, hands
//! it to the engine on a blocking thread (the ack waits for the WAL fsync), and answers `204` or
//! the flavour's error shape; valid lines of a partly bad body are written.

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hourglass_core::time::Precision;
use hourglass_core::Error;
use hourglass_ingest::LineError;
use hourglass_storage::LineProtocolOutcome;
use serde::Deserialize;

use super::auth::Caller;
use super::body::decode_body;
use super::{AppState, ErrorStyle, HttpError};

/// At most this many line errors are listed in a response.
const MAX_REPORTED_ERRORS: usize = 100;

#[derive(Debug, Deserialize)]
pub struct V1Params {
    db: Option<String>,
    precision: Option<String>,
    #[allow(dead_code)]
    u: Option<String>,
    #[allow(dead_code)]
    p: Option<String>,
    #[allow(dead_code)]
    rp: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct V2Params {
    #[allow(dead_code)]
    org: Option<String>,
    bucket: Option<String>,
    precision: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct V3Params {
    db: Option<String>,
    precision: Option<String>,
    accept_partial: Option<bool>,
    #[allow(dead_code)]
    no_sync: Option<bool>,
}

pub async fn write_v1(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<V1Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let style = ErrorStyle::V1;
    let db = required(params.db, "db", style)?;
    let precision = precision(params.precision.as_deref(), style)?;
    authorize_write(&state, &caller, &db, style, "line protocol write")?;
    let outcome = write(&state, &caller, &headers, body, db, precision, true, style).await?;
    respond(outcome.0, &outcome.1, style)
}

pub async fn write_v2(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<V2Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let style = ErrorStyle::V2;
    let bucket = required(params.bucket, "bucket", style)?;
    // InfluxDB 1.8 compatibility buckets are "database/retention-policy".
    let db = bucket.split('/').next().unwrap_or_default().to_string();
    let precision = precision(params.precision.as_deref(), style)?;
    authorize_write(&state, &caller, &db, style, "line protocol write")?;
    let outcome = write(&state, &caller, &headers, body, db, precision, true, style).await?;
    respond(outcome.0, &outcome.1, style)
}

pub async fn write_v3(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<V3Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let style = ErrorStyle::V3;
    let db = required(params.db, "db", style)?;
    let precision = precision(params.precision.as_deref(), style)?;
    let accept_partial = params.accept_partial.unwrap_or(true);
    authorize_write(&state, &caller, &db, style, "line protocol write")?;
    let (outcome, text) = write(
        &state,
        &caller,
        &headers,
        body,
        db,
        precision,
        accept_partial,
        style,
    )
    .await?;
    respond(outcome, &text, style)
}

/// Checks the write grant; writing to a database that does not exist yet creates it, which needs
/// `admin` on its name (or on `*`), as creating it through the Timestream API does. Reserved
/// names are refused for everyone before any grant is looked at.
/// Write permission on `db`, and admin too when the write would create it; `how` names the
/// write in the refusal (`create (by a line protocol write)`).
pub(super) fn authorize_write(
    state: &AppState,
    caller: &Caller,
    db: &str,
    style: ErrorStyle,
    how: &str,
) -> Result<(), HttpError> {
    hourglass_core::names::validate_database_name(db).map_err(|e| HttpError::new(style, e))?;
    caller.require(
        &state.security,
        caller.principal.can_write(db),
        "write",
        db,
        style,
    )?;
    if !state.engine.catalog.snapshot().databases.contains_key(db) {
        caller.require(
            &state.security,
            caller.principal.can_admin(db),
            &format!("create (by a {how})"),
            db,
            style,
        )?;
    }
    Ok(())
}

/// Records in the audit log the database and tables a write created (line protocol and
/// Prometheus remote write create them on first use); `how` is the audit row's detail.
pub(super) fn audit_created(
    state: &AppState,
    caller: &Caller,
    db: &str,
    before: &hourglass_storage::catalog::CatalogState,
    how: &str,
) {
    let after = state.engine.catalog.snapshot();
    let Some(now) = after.databases.get(db) else {
        return;
    };
    let old = before.databases.get(db);
    let audit = |action: &str, target: &str| {
        state.security.audit(
            &caller.principal.name,
            &caller.peer,
            "http",
            action,
            target,
            "ok",
            how,
        )
    };
    if old.is_none() {
        audit("CreateDatabase", db);
    }
    for table in now.tables.keys() {
        if !old.is_some_and(|o| o.tables.contains_key(table)) {
            audit("CreateTable", &format!("{db}.{table}"));
        }
    }
}

fn required(value: Option<String>, name: &str, style: ErrorStyle) -> Result<String, HttpError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(HttpError::with_status(
            style,
            StatusCode::BAD_REQUEST,
            format!("missing required query parameter '{name}'"),
        )),
    }
}

fn precision(value: Option<&str>, style: ErrorStyle) -> Result<Precision, HttpError> {
    Precision::parse(value.unwrap_or("")).map_err(|e| HttpError::new(style, e))
}

#[allow(clippy::too_many_arguments)]
async fn write(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Bytes,
    db: String,
    precision: Precision,
    accept_partial: bool,
    style: ErrorStyle,
) -> Result<(LineProtocolOutcome, Bytes), HttpError> {
    let body = decode_body(headers, body, state.max_body_bytes.saturating_mul(4), style)?;
    let engine = state.engine.clone();
    let text = body.clone();
    let before = state.engine.catalog.snapshot();
    let database = db.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        engine.write_line_protocol(&database, &body, precision, accept_partial)
    })
    .await
    .map_err(|e| HttpError::new(style, Error::internal(format!("write task failed: {e}"))))?
    .map_err(|e| HttpError::new(style, e))?;
    audit_created(
        state,
        caller,
        &db,
        &before,
        "created by a line protocol write",
    );
    Ok((outcome, text))
}

fn respond(
    outcome: LineProtocolOutcome,
    body: &[u8],
    style: ErrorStyle,
) -> Result<Response, HttpError> {
    if outcome.errors.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let rejected = outcome.errors.len();
    let listed: Vec<&LineError> = outcome.errors.iter().take(MAX_REPORTED_ERRORS).collect();
    let summary = listed
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let more = if rejected > listed.len() {
        format!("; and {} more", rejected - listed.len())
    } else {
        String::new()
    };
    let mut error = match style {
        ErrorStyle::V3 => {
            let lines = line_texts(body, &listed);
            let data: Vec<serde_json::Value> = listed
                .iter()
                .zip(lines)
                .map(|(e, line)| {
                    serde_json::json!({
                        "original_line": line,
                        "line_number": e.line,
                        "error_message": e.message,
                    })
                })
                .collect();
            let message = if outcome.rows_written > 0 {
                "partial write of line protocol occurred"
            } else {
                "parsing failed for write_lp endpoint"
            };
            let mut e = HttpError::with_status(style, StatusCode::BAD_REQUEST, message);
            e.data = Some(serde_json::Value::Array(data));
            e
        }
        _ => HttpError::with_status(
            style,
            StatusCode::BAD_REQUEST,
            format!(
                "partial write: {summary}{more} ({rejected} lines rejected, {} rows written)",
                outcome.rows_written
            ),
        ),
    };
    error.status = StatusCode::BAD_REQUEST;
    Err(error)
}

/// The text of each errored line (lossy UTF-8, cut at 1 KiB).
fn line_texts(body: &[u8], errors: &[&LineError]) -> Vec<String> {
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    errors
        .iter()
        .map(|e| {
            let line = lines
                .get(e.line.saturating_sub(1))
                .copied()
                .unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let cut = &line[..line.len().min(1024)];
            String::from_utf8_lossy(cut).into_owned()
        })
        .collect()
}
