//! `/api/v3/query_sql`: SQL over HTTP in InfluxDB 3's shape (`db`, `q`, `format`; GET query
//! parameters or a POST JSON body). The first batch is awaited before answering so that planning
//! and early execution errors get a proper status; the rest streams batch by batch.

use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use hourglass_query::rules::DisabledRules;
use hourglass_query::{from_datafusion, OutputFormat, ResultEncoder};
use serde::Deserialize;

use super::auth::Caller;
use super::{AppState, ErrorStyle, HttpError};

#[derive(Debug, Deserialize)]
pub struct QueryParams {
    db: Option<String>,
    q: Option<String>,
    format: Option<String>,
    /// Hourglass plan rules to switch off for this query (`all`, or names; see
    /// `hourglass_query::rules`).
    disabled_rules: Option<String>,
}

pub async fn query_sql_get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<QueryParams>,
) -> Result<Response, HttpError> {
    run(state, caller, params).await
}

pub async fn query_sql_post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query_params): Query<QueryParams>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = if body.is_empty() {
        query_params
    } else {
        let from_body: QueryParams = serde_json::from_slice(&body).map_err(|e| {
            HttpError::with_status(
                ErrorStyle::V3,
                StatusCode::BAD_REQUEST,
                format!("request body is not a JSON object with db, q and format: {e}"),
            )
        })?;
        QueryParams {
            db: from_body.db.or(query_params.db),
            q: from_body.q.or(query_params.q),
            format: from_body.format.or(query_params.format),
            disabled_rules: from_body.disabled_rules.or(query_params.disabled_rules),
        }
    };
    run(state, caller, params).await
}

/// `UNLOAD (SELECT ...) TO ...` ([`hourglass_unload`]): the destination opened first, the
/// SELECT planned and run as a plain query of this endpoint (same dialect, permission checks and
/// time limit), its rows written; the answer is UNLOAD's one row.
async fn unload_stream(
    state: &AppState,
    caller: &Caller,
    db: &str,
    unload: hourglass_core::Result<hourglass_unload::Unload>,
    disabled: DisabledRules,
) -> hourglass_core::Result<datafusion::execution::SendableRecordBatchStream> {
    let unload = unload?;
    let target = state.unload.open(&unload.url)?;
    let inner = state
        .query
        .execute_with_rules(db, &unload.select, &caller.principal, disabled)
        .await?;
    let schema = inner.schema();
    let rows = inner.map(|r| r.map_err(from_datafusion));
    let id = hourglass_unload::new_query_id();
    let summary = hourglass_unload::run(&unload, &target, &id, schema, rows, |e| e).await?;
    Ok(summary.into_stream())
}

/// `DELETE FROM …` ([`hourglass_query::delete`]): needs write permission; audited whether it
/// succeeds or not; the answer is one row, `rows_deleted`.
async fn delete_stream(
    state: &AppState,
    caller: &Caller,
    db: &str,
    delete: hourglass_core::Result<hourglass_query::delete::DeleteStatement>,
) -> hourglass_core::Result<datafusion::execution::SendableRecordBatchStream> {
    let delete = delete?;
    let target = format!(
        "{}.{}",
        delete.database.as_deref().unwrap_or(db),
        delete.table
    );
    let result = state
        .query
        .execute_delete(db, &delete, &caller.principal)
        .await;
    let (outcome, detail) = match &result {
        Ok(rows) => ("ok", format!("{rows} rows deleted")),
        Err(e) => ("error", e.message.clone()),
    };
    state.security.audit(
        &caller.principal.name,
        &caller.peer,
        "http",
        "Delete",
        &target,
        outcome,
        &detail,
    );
    hourglass_query::delete::rows_deleted_stream(result?)
}

async fn run(state: AppState, caller: Caller, params: QueryParams) -> Result<Response, HttpError> {
    let style = ErrorStyle::V3;
    let bad = |m: &str| HttpError::with_status(style, StatusCode::BAD_REQUEST, m.to_string());
    let sql = params
        .q
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| bad("missing required parameter 'q' (the SQL query)"))?;
    let db = params.db.unwrap_or_default();
    let format = OutputFormat::parse(params.format.as_deref().unwrap_or("json"))
        .map_err(|e| HttpError::new(style, e))?;

    let disabled = DisabledRules::parse(params.disabled_rules.as_deref().unwrap_or(""))
        .map_err(|e| bad(&e))?;
    let mut stream = if let Some(delete) = hourglass_query::delete::recognise(&sql) {
        delete_stream(&state, &caller, &db, delete)
            .await
            .map_err(|e| HttpError::new(style, e))?
    } else {
        match hourglass_unload::recognise(&sql) {
            None => state
                .query
                .execute_with_rules(&db, &sql, &caller.principal, disabled)
                .await
                .map_err(|e| HttpError::new(style, e))?,
            Some(unload) => unload_stream(&state, &caller, &db, unload, disabled)
                .await
                .map_err(|e| HttpError::new(style, e))?,
        }
    };
    let mut encoder = ResultEncoder::new(format, stream.schema());
    let mut head = encoder.start().map_err(|e| HttpError::new(style, e))?;
    let first = stream.next().await;
    let finished = first.is_none();
    match first {
        Some(Err(e)) => return Err(HttpError::new(style, from_datafusion(e))),
        Some(Ok(batch)) => head.extend(
            encoder
                .batch(&batch)
                .map_err(|e| HttpError::new(style, e))?,
        ),
        None => {}
    }
    let body_stream = futures::stream::unfold(
        (stream, encoder, finished, false),
        |(mut stream, mut encoder, finished, done)| async move {
            if done {
                return None;
            }
            if finished {
                let tail = encoder.finish();
                return Some((tail.map(Bytes::from), (stream, encoder, true, true)));
            }
            match stream.next().await {
                Some(Ok(batch)) => {
                    let bytes = encoder.batch(&batch);
                    Some((bytes.map(Bytes::from), (stream, encoder, false, false)))
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "query failed while streaming its result");
                    Some((Err(from_datafusion(e)), (stream, encoder, true, true)))
                }
                None => {
                    let tail = encoder.finish();
                    Some((tail.map(Bytes::from), (stream, encoder, true, true)))
                }
            }
        },
    );
    let body =
        futures::stream::once(async move { Ok::<_, hourglass_core::Error>(Bytes::from(head)) })
            .chain(body_stream);
    Ok((
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(body),
    )
        .into_response())
}
