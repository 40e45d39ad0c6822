//! The HTTP interface: line protocol writes, SQL queries, health, metrics and admin actions.
//!
//! | route | for |
//! |---|---|
//! | `POST /write` | InfluxDB v1 line protocol (`db`, `precision`, `u`/`p`) |
//! | `POST /api/v2/write` | InfluxDB v2 line protocol (`org`, `bucket`, `precision`) |
//! | `POST /api/v3/write_lp` | InfluxDB 3 line protocol (`db`, `precision`, `accept_partial`) |
//! | `GET,POST /api/v3/query_sql` | SQL (`db`, `q`, `format`) |
//! | `GET /health`, `GET /ping` | liveness |
//! | `GET /metrics` | Prometheus text metrics |
//! | `POST /admin/flush`, `POST /admin/compact` | persist the memory store / compact now |
//! | `POST /` + `X-Amz-Target` | the Timestream API (`hourglass-timestream`) |

mod admin;
mod body;
mod errors;
mod query;
mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use hourglass_query::QueryEngine;
use hourglass_storage::Engine;

pub use errors::{status_for, ErrorStyle, HttpError};

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub query: QueryEngine,
    pub max_body_bytes: usize,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, query: QueryEngine, max_body_bytes: usize) -> Self {
        AppState {
            engine,
            query,
            max_body_bytes,
        }
    }
}

pub fn router(state: AppState, timestream: hourglass_timestream::TimestreamState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/write", post(write::write_v1))
        .route("/api/v2/write", post(write::write_v2))
        .route("/api/v3/write_lp", post(write::write_v3))
        .route(
            "/api/v3/query_sql",
            get(query::query_sql_get).post(query::query_sql_post),
        )
        .route("/health", get(admin::health))
        .route("/ping", get(admin::ping).head(admin::ping))
        .route("/metrics", get(admin::metrics))
        .route("/admin/flush", post(admin::flush))
        .route("/admin/compact", post(admin::compact))
        .with_state(state)
        .merge(hourglass_timestream::router(timestream))
        .layer(DefaultBodyLimit::max(limit))
}
