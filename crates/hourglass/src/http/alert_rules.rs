//! `/api/v3/alert_rules`: create, replace, delete and list alert rules with their evaluation
//! state (`hourglass-alerts`, docs/alerts.md). JSON in and out; errors in the `/api/v3` shape
//! `{"error": ..., "data": {"field": ...}}` naming the offending field.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v3/alert_rules` | `{"rules": [rule...]}` (and, for operators, `"targets"`: delivery counters) |
//! | `GET /api/v3/alert_rules/{name}` | the rule |
//! | `POST /api/v3/alert_rules` | 201 and the rule; 409 if the name exists |
//! | `PUT /api/v3/alert_rules/{name}` | 201 (created) or 200 (replaced) and the rule |
//! | `DELETE /api/v3/alert_rules/{name}` | 204 |
//!
//! Permissions (with `--require-auth`): a rule is visible to its owner and to principals with
//! `read` on its database; creating, replacing and deleting need `write` on the rule's database
//! (replacing: on the old one's too). A rule runs as the user who last wrote it (its `owner`),
//! with that user's grants at each evaluation; without authentication, as the anonymous admin.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use hourglass_alerts::evaluator::{EvalError, Evaluator, RuleStatus};
use hourglass_alerts::rfc3339;
use hourglass_alerts::rule::AlertRule;
use hourglass_alerts::state::AlertState;
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::{AppState, ErrorStyle, HttpError};

/// An error naming the request field it is about.
fn field_error(status: StatusCode, field: &str, message: impl Into<String>) -> HttpError {
    let mut e = HttpError::with_status(ErrorStyle::V3, status, message);
    e.data = Some(json!({ "field": field }));
    e
}

fn not_found(name: &str) -> HttpError {
    field_error(
        StatusCode::NOT_FOUND,
        "name",
        format!("alert rule `{name}` does not exist"),
    )
}

fn eval_error(e: EvalError) -> HttpError {
    match e {
        EvalError::Invalid(e) => field_error(StatusCode::BAD_REQUEST, &e.field, e.to_string()),
        EvalError::Exists(name) => field_error(
            StatusCode::CONFLICT,
            "name",
            format!("alert rule `{name}` already exists"),
        ),
        EvalError::NotFound(name) => not_found(&name),
        e @ (EvalError::Store(_) | EvalError::Task(_)) => HttpError::with_status(
            ErrorStyle::V3,
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        ),
    }
}

fn evaluator(state: &AppState) -> Result<&Evaluator, HttpError> {
    state.alerts.as_deref().ok_or_else(|| {
        HttpError::with_status(
            ErrorStyle::V3,
            StatusCode::SERVICE_UNAVAILABLE,
            "alert rules are not available on this server",
        )
    })
}

/// Whether `caller` may see `rule`: without authentication, always; else its owner, or `read`
/// on its database.
fn may_see(caller: &Caller, rule: &AlertRule) -> bool {
    let p = &caller.principal;
    p.is_unrestricted()
        || rule.owner.as_deref() == Some(p.name.as_str())
        || rule.database.as_deref().is_some_and(|db| p.can_read(db))
}

/// Checks `write` on the rule's database (audited when denied).
fn require_write(state: &AppState, caller: &Caller, rule: &AlertRule) -> Result<(), HttpError> {
    let db = rule.database.as_deref().unwrap_or_default();
    caller.require(
        &state.security,
        caller.principal.can_write(db),
        "write",
        db,
        ErrorStyle::V3,
    )
}

/// A rule from a request body: JSON, `name` from the path when given there, `database` required
/// and valid, `owner` refused (the server sets it to the caller).
fn parse_rule(
    body: &[u8],
    path_name: Option<&str>,
    caller: &Caller,
) -> Result<AlertRule, HttpError> {
    let bad = |field: &str, message: String| field_error(StatusCode::BAD_REQUEST, field, message);
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| bad("body", format!("the body is not valid JSON: {e}")))?;
    let object = value.as_object_mut().ok_or_else(|| {
        bad(
            "body",
            "the body must be a JSON object (an alert rule)".into(),
        )
    })?;
    if object.contains_key("owner") {
        return Err(bad(
            "owner",
            "alert rule field `owner` is set by the server (the user who writes the rule)".into(),
        ));
    }
    if let Some(name) = path_name {
        match object.get("name") {
            None => {
                object.insert("name".into(), Value::String(name.to_string()));
            }
            Some(Value::String(n)) if n == name => {}
            Some(other) => {
                return Err(bad(
                    "name",
                    format!("alert rule field `name`: {other} differs from the path's `{name}`"),
                ))
            }
        }
    }
    let mut rule: AlertRule = serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| {
                message.starts_with("unknown field") || message.starts_with("missing field")
            })
            .unwrap_or("body")
            .to_string();
        bad(&field, format!("alert rule: {message}"))
    })?;
    let db = rule.database.clone().unwrap_or_default();
    if db.is_empty() {
        return Err(bad(
            "database",
            "alert rule field `database`: required (the database the query runs against and \
             whose permissions govern the rule)"
                .into(),
        ));
    }
    hourglass_core::names::validate_database_name(&db).map_err(|e| {
        bad(
            "database",
            format!("alert rule field `database`: {}", e.message),
        )
    })?;
    rule.owner = (!caller.principal.is_unrestricted()).then(|| caller.principal.name.clone());
    Ok(rule)
}

/// A rule as the API shows it: its fields as posted, then its evaluation state.
fn view(status: &RuleStatus) -> Value {
    let mut out = match serde_json::to_value(&status.rule) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let state = |s: AlertState| match s {
        AlertState::Inactive => "inactive",
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
    };
    out.insert("state".into(), json!(state(status.state)));
    out.insert("health".into(), json!(status.health));
    out.insert("lastError".into(), json!(status.last_error));
    out.insert(
        "lastEvaluation".into(),
        json!(status.last_evaluation.map(rfc3339)),
    );
    out.insert(
        "evaluationTime".into(),
        json!(status.last_duration_ms.map(|ms| ms as f64 / 1000.0)),
    );
    let alerts: Vec<Value> = status
        .alerts
        .iter()
        .map(|a| {
            json!({
                "state": state(a.state),
                "labels": a.labels,
                "annotations": a.annotations,
                "value": a.value,
                "activeAt": rfc3339(a.active_at),
                "firedAt": a.fired_at.map(rfc3339),
                "resolvedAt": a.resolved_at.map(rfc3339),
            })
        })
        .collect();
    out.insert("alerts".into(), Value::Array(alerts));
    Value::Object(out)
}

/// `GET /api/v3/alert_rules`.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, HttpError> {
    let evaluator = evaluator(&state)?;
    let rules: Vec<Value> = evaluator
        .rules()
        .iter()
        .filter(|s| may_see(&caller, &s.rule))
        .map(view)
        .collect();
    let mut out = json!({ "rules": rules });
    let p = &caller.principal;
    if p.is_unrestricted() || p.is_operator() {
        let targets = evaluator.notifier().map(|n| n.stats()).unwrap_or_default();
        out["targets"] = json!(targets);
        out["droppedNotifications"] = json!(evaluator.dropped_notifications());
    }
    Ok(Json(out).into_response())
}

/// `GET /api/v3/alert_rules/{name}`.
pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, HttpError> {
    let status = evaluator(&state)?
        .rule(&name)
        .filter(|s| may_see(&caller, &s.rule))
        .ok_or_else(|| not_found(&name))?;
    Ok(Json(view(&status)).into_response())
}

/// `POST /api/v3/alert_rules`.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let evaluator = evaluator(&state)?;
    let rule = parse_rule(&body, None, &caller)?;
    require_write(&state, &caller, &rule)?;
    let name = rule.name.clone();
    evaluator.create_rule(rule).await.map_err(eval_error)?;
    let status = evaluator.rule(&name).ok_or_else(|| not_found(&name))?;
    Ok((StatusCode::CREATED, Json(view(&status))).into_response())
}

/// `PUT /api/v3/alert_rules/{name}`.
pub async fn replace(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let evaluator = evaluator(&state)?;
    let rule = parse_rule(&body, Some(&name), &caller)?;
    if let Some(old) = evaluator.rule(&name) {
        require_write(&state, &caller, &old.rule)?;
    }
    require_write(&state, &caller, &rule)?;
    let created = evaluator.put_rule(rule).await.map_err(eval_error)?;
    let status = evaluator.rule(&name).ok_or_else(|| not_found(&name))?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(view(&status))).into_response())
}

/// `DELETE /api/v3/alert_rules/{name}`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, HttpError> {
    let evaluator = evaluator(&state)?;
    let old = evaluator
        .rule(&name)
        .filter(|s| {
            may_see(&caller, &s.rule)
                || caller
                    .principal
                    .can_write(s.rule.database.as_deref().unwrap_or_default())
        })
        .ok_or_else(|| not_found(&name))?;
    require_write(&state, &caller, &old.rule)?;
    evaluator.delete_rule(&name).await.map_err(eval_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
