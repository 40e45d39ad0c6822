//! The HTTP interface: line protocol writes, SQL queries, health, metrics and admin actions.
//!
//! | route | for |
//! |---|---|
//! | `POST /write` | InfluxDB v1 line protocol (`db`, `precision`, `u`/`p`) |
//! | `POST /api/v2/write` | InfluxDB v2 line protocol (`org`, `bucket`, `precision`) |
//! | `POST /api/v3/write_lp` | InfluxDB 3 line protocol (`db`, `precision`, `accept_partial`) |
//! | `GET,POST /api/v3/query_sql` | SQL (`db`, `q`, `format`) |
//! | `GET,POST /query` | InfluxQL, InfluxDB 1.x's query API (`db`, `q`, `epoch`, `chunked`; `influxql.rs`) |
//! | `POST /api/v1/prom/write`, `POST /api/v1/prom/read` | Prometheus remote write/read 1.0 (`db`, `table`) |
//! | `GET /health`, `GET /ping` | liveness |
//! | `GET /metrics` | Prometheus text metrics |
//! | `POST /admin/flush`, `POST /admin/compact` | persist the memory store / compact now |
//! | `GET,POST /api/v3/alert_rules`, `GET,PUT,DELETE /api/v3/alert_rules/{name}` | alert rules (`alert_rules.rs`) |
//! | `GET /api/v3/dashboards`, `GET,PUT,DELETE /api/v3/dashboards/{id}` | console dashboards (`dashboards.rs`) |
//! | `POST /` + `X-Amz-Target` | the Timestream API (`hourglass-timestream`) |
//! | `GET /`, `GET /console/…` | the web console (`console.rs`; open, outside [`auth::guard`]) |
//!
//! Every route but the console's passes [`auth::guard`] (peer address; with `--require-auth`,
//! credentials).

mod activity;
mod admin;
mod alert_rules;
pub mod auth;
mod body;
mod console;
mod dashboard_store;
mod dashboards;
mod errors;
mod influxql;
pub mod listener;
mod prometheus;
mod query;
pub mod serve;
mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use hourglass_auth::Security;
use hourglass_core::connections::Admission;
use hourglass_query::QueryEngine;
use hourglass_storage::Engine;

pub use errors::{status_for, ErrorStyle, HttpError};

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub query: QueryEngine,
    pub max_body_bytes: usize,
    /// Users (with `--require-auth`) and the audit log.
    pub security: Security,
    /// Connection limits and counts of both listeners (for `/metrics`).
    pub connections: Admission,
    /// Scheduled queries (their counters in `/metrics`), once the server has them.
    pub scheduler: Option<Arc<hourglass_scheduler::Scheduler>>,
    /// Where `UNLOAD` may write (`--unload-buckets`).
    pub unload: Arc<hourglass_unload::Destinations>,
    /// MQTT subscriptions (their counters in `/metrics`).
    pub mqtt: Option<Arc<hourglass_mqtt::MqttSources>>,
    /// Alert rules (`/api/v3/alert_rules`), once the server has them.
    pub alerts: Option<Arc<hourglass_alerts::evaluator::Evaluator>>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, query: QueryEngine, max_body_bytes: usize) -> Self {
        AppState {
            engine,
            query,
            max_body_bytes,
            security: Security::disabled(),
            connections: Admission::default(),
            scheduler: None,
            unload: Arc::default(),
            mqtt: None,
            alerts: None,
        }
    }

    pub fn with_unload(mut self, unload: Arc<hourglass_unload::Destinations>) -> Self {
        self.unload = unload;
        self
    }

    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    pub fn with_connections(mut self, connections: Admission) -> Self {
        self.connections = connections;
        self
    }

    pub fn with_mqtt(mut self, mqtt: Arc<hourglass_mqtt::MqttSources>) -> Self {
        self.mqtt = Some(mqtt);
        self
    }

    pub fn with_alerts(mut self, alerts: Arc<hourglass_alerts::evaluator::Evaluator>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    pub fn with_scheduler(mut self, scheduler: Arc<hourglass_scheduler::Scheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }
}

pub fn router(state: AppState, timestream: Arc<hourglass_timestream::Service>) -> Router {
    let limit = state.max_body_bytes;
    let api = Router::new()
        .route("/write", post(write::write_v1))
        .route("/api/v2/write", post(write::write_v2))
        .route("/api/v3/write_lp", post(write::write_v3))
        .route("/api/v1/prom/write", post(prometheus::remote_write))
        .route("/api/v1/prom/read", post(prometheus::remote_read))
        .route(
            "/api/v3/query_sql",
            get(query::query_sql_get).post(query::query_sql_post),
        )
        .route(
            "/query",
            get(influxql::query_get).post(influxql::query_post),
        )
        .route(
            "/api/v3/alert_rules",
            get(alert_rules::list).post(alert_rules::create),
        )
        .route(
            "/api/v3/alert_rules/{name}",
            get(alert_rules::get_one)
                .put(alert_rules::replace)
                .delete(alert_rules::delete),
        )
        .route("/api/v3/dashboards", get(dashboards::list))
        .route(
            "/api/v3/dashboards/{id}",
            get(dashboards::get_one)
                .put(dashboards::put)
                .delete(dashboards::delete),
        )
        .route("/health", get(admin::health))
        .route("/ping", get(admin::ping).head(admin::ping))
        .route("/metrics", get(admin::metrics))
        .route("/admin/flush", post(admin::flush))
        .route("/admin/compact", post(admin::compact))
        .with_state(state.clone())
        .merge(hourglass_timestream::router_for(timestream))
        .layer(axum::middleware::from_fn_with_state(state, auth::guard));
    // The console's files are public (its API calls carry the token): outside the guard. The API
    // is merged into them (not the reverse) so that unrouted paths keep the guard's fallback.
    console::router()
        .merge(api)
        .layer(DefaultBodyLimit::max(limit))
}
