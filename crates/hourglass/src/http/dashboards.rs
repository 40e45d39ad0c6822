//! `/api/v3/dashboards`: the console's dashboards (docs/console.md), stored durably under the
//! data directory (`dashboard_store.rs`, docs/format/dashboards.md). JSON in and out; errors in
//! the `/api/v3` shape `{"error": ..., "data": {"field": ...}}` naming the offending field.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v3/dashboards` | `{"dashboards": [{"id", "title", "updated"}...]}` |
//! | `GET /api/v3/dashboards/{id}` | the dashboard |
//! | `PUT /api/v3/dashboards/{id}` | 201 (created) or 200 (replaced) and the dashboard |
//! | `DELETE /api/v3/dashboards/{id}` | 204 |
//!
//! Permissions (with `--require-auth`): reading needs any valid token (a dashboard holds queries,
//! not data: its panels run with the viewer's own token). Writing (PUT, DELETE) needs `write` on
//! every database the dashboard's panels name (replacing: the old version's too), and `write` on
//! at least one database for a dashboard without panels.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use hourglass_auth::Permission;
use serde_json::json;

use super::auth::Caller;
use super::dashboard_store::{parse_dashboard, valid_id, Dashboard, Store, StoreError};
use super::{AppState, ErrorStyle, HttpError};

/// An error naming the request field it is about.
fn field_error(status: StatusCode, field: &str, message: impl Into<String>) -> HttpError {
    let mut e = HttpError::with_status(ErrorStyle::V3, status, message);
    e.data = Some(json!({ "field": field }));
    e
}

fn not_found(id: &str) -> HttpError {
    field_error(
        StatusCode::NOT_FOUND,
        "id",
        format!("dashboard `{id}` does not exist"),
    )
}

fn store_error(e: StoreError) -> HttpError {
    HttpError::with_status(
        ErrorStyle::V3,
        StatusCode::INTERNAL_SERVER_ERROR,
        e.to_string(),
    )
}

fn checked_id(id: &str) -> Result<(), HttpError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(field_error(
            StatusCode::BAD_REQUEST,
            "id",
            format!("dashboard id `{id}`: 1 to 64 characters of A-Z a-z 0-9 _ -"),
        ))
    }
}

fn store(state: &AppState) -> Store {
    Store::new(&state.engine.config.data_dir)
}

/// Runs a blocking store operation off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, HttpError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| {
            HttpError::with_status(
                ErrorStyle::V3,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("dashboard store task: {e}"),
            )
        })?
        .map_err(store_error)
}

/// Checks that `caller` may write `d`: `write` on each database its panels name, or on some
/// database when it has none (audited when denied).
fn require_write(state: &AppState, caller: &Caller, d: &Dashboard) -> Result<(), HttpError> {
    let p = &caller.principal;
    let mut databases: Vec<&str> = d.panels.iter().map(|x| x.database.as_str()).collect();
    databases.sort_unstable();
    databases.dedup();
    if databases.is_empty() {
        let any = p
            .grants
            .iter()
            .any(|g| g.permission.implies(Permission::Write));
        return caller.require(&state.security, any, "write", "any", ErrorStyle::V3);
    }
    for db in databases {
        caller.require(
            &state.security,
            p.can_write(db),
            "write",
            db,
            ErrorStyle::V3,
        )?;
    }
    Ok(())
}

fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    hourglass_alerts::rfc3339(ms)
}

/// `GET /api/v3/dashboards`.
pub async fn list(State(state): State<AppState>) -> Result<Response, HttpError> {
    let store = store(&state);
    let all = blocking(move || store.list()).await?;
    let rows: Vec<_> = all
        .iter()
        .map(|d| json!({ "id": d.id, "title": d.title, "updated": d.updated }))
        .collect();
    Ok(Json(json!({ "dashboards": rows })).into_response())
}

/// `GET /api/v3/dashboards/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    checked_id(&id)?;
    let store = store(&state);
    let key = id.clone();
    let d = blocking(move || store.get(&key))
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(d).into_response())
}

/// `PUT /api/v3/dashboards/{id}`.
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, HttpError> {
    checked_id(&id)?;
    let d = parse_dashboard(&body, &id, &caller.principal.name, &now_rfc3339())
        .map_err(|e| field_error(StatusCode::BAD_REQUEST, &e.field, e.message))?;
    let store = store(&state);
    let reader = store.clone();
    let key = id.clone();
    if let Some(old) = blocking(move || reader.get(&key)).await? {
        require_write(&state, &caller, &old)?;
    }
    require_write(&state, &caller, &d)?;
    let saved = d.clone();
    let created = blocking(move || store.put(&saved)).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(d)).into_response())
}

/// `DELETE /api/v3/dashboards/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    checked_id(&id)?;
    let store = store(&state);
    let reader = store.clone();
    let key = id.clone();
    let old = blocking(move || reader.get(&key))
        .await?
        .ok_or_else(|| not_found(&id))?;
    require_write(&state, &caller, &old)?;
    let key = id.clone();
    if !blocking(move || store.delete(&key)).await? {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
