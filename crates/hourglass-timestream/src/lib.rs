//! The Amazon Timestream API over Hourglass: AWS JSON 1.0 (`POST /` with
//! `X-Amz-Target: Timestream_20181101.<Operation>`). (Placeholder: every operation is unknown.)

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hourglass_query::QueryEngine;
use hourglass_storage::Engine;

/// Settings of the Timestream API.
#[derive(Debug, Clone, Default)]
pub struct TimestreamConfig {
    /// The address DescribeEndpoints advertises (`host:port`); `None` = the address served.
    pub advertised_endpoint: Option<String>,
}

/// State shared by the API's handlers.
#[derive(Clone)]
pub struct TimestreamState {
    pub engine: Arc<Engine>,
    pub query: QueryEngine,
    pub config: TimestreamConfig,
    /// The address the HTTP server is bound to (`host:port`).
    pub served_address: String,
}

/// The routes of the Timestream API, to merge into the HTTP router.
pub fn router(state: TimestreamState) -> Router {
    Router::new().route("/", post(handle)).with_state(state)
}

async fn handle(headers: HeaderMap) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.0")],
        serde_json::json!({
            "__type": "UnknownOperationException",
            "Message": format!("operation '{target}' is not supported"),
        })
        .to_string(),
    )
        .into_response()
}
