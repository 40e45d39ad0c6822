//! The Amazon Timestream API over Hourglass, so that boto3 and the AWS SDKs work unchanged.
//!
//! Both SDK services (`timestream-write` and `timestream-query`) speak AWS JSON 1.0 on one port:
//! `POST /` with `X-Amz-Target: Timestream_20181101.<Operation>`; [`router`] serves them all.
//! Without `--require-auth` requests are not authenticated (SigV4 headers are accepted and
//! ignored); with it every request must carry a valid SigV4 signature of a user's access key and
//! its operation must be allowed by the user's grants ([`auth`]).
//!
//! | module | operations |
//! |---|---|
//! | [`manage`] | CreateDatabase, DescribeDatabase, ListDatabases, UpdateDatabase, DeleteDatabase, CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable, TagResource, UntagResource, ListTagsForResource, DescribeEndpoints (and empty answers for batch load and scheduled queries when none are installed) |
//! | [`write`] | WriteRecords: records to Arrow write batches, versioned upserts ([`write::index`]) |
//! | [`query`] | Query (server-side result cursors, `NextToken` pages), CancelQuery, PrepareQuery |
//! | [`protocol`] | the JSON 1.0 envelope, error bodies and status codes (one mapping of error kinds) |
//! | [`scheduled`] | the seam to scheduled queries (crate `hourglass-scheduler`), installed by the server |
//! | [`batch_load`] | the seam to batch load tasks (crate `hourglass-batchload`), installed by the server |
//!
//! Databases and tables are the catalog's: tables made by line protocol are described and written
//! to here, and tables made here take line protocol. Timestream-only settings (KMS key, tags,
//! partition keys, rejected-data location) live in the catalog entries' `extra` under
//! `"timestream"`. Behaviour and deliberate differences from AWS: `docs/protocols/timestream.md`.
//!
//! ARNs use region `us-east-1` and account `000000000000` unless `HOURGLASS_TIMESTREAM_REGION` /
//! `HOURGLASS_TIMESTREAM_ACCOUNT_ID` say otherwise.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod arn;
pub mod auth;
pub mod batch_load;
pub mod manage;
pub mod protocol;
pub mod query;
pub mod scheduled;
pub mod write;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hourglass_auth::{sigv4, Principal, Security};
use hourglass_query::QueryEngine;
use hourglass_storage::Engine;

use crate::protocol::{ApiError, TARGET_PREFIX};

/// Settings of the Timestream API.
#[derive(Debug, Clone, Default)]
pub struct TimestreamConfig {
    /// What DescribeEndpoints advertises, as given: `host:port` (SDKs connect with https) or
    /// `http://host:port` / `https://host:port`; `None` = the address served, with `http://`
    /// when it is plain HTTP (see [`manage::describe_endpoints`]).
    pub advertised_endpoint: Option<String>,
    /// Where `UNLOAD` may write: buckets mapped to directories (`--unload-buckets`), else S3.
    pub unload: Arc<hourglass_unload::Destinations>,
}

/// State shared by the API's handlers.
#[derive(Clone)]
pub struct TimestreamState {
    pub engine: Arc<Engine>,
    pub query: QueryEngine,
    pub config: TimestreamConfig,
    /// The address the HTTP server is bound to (`host:port`).
    pub served_address: String,
    /// Whether that address serves https (TLS) rather than plain HTTP.
    pub served_tls: bool,
    /// Users (with `--require-auth`) and the audit log.
    pub security: Security,
}

pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// Everything the handlers share: the server's state plus the API's own registries.
pub struct Service {
    pub engine: Arc<Engine>,
    pub query: QueryEngine,
    pub config: TimestreamConfig,
    pub served_address: String,
    pub served_tls: bool,
    pub region: String,
    pub account_id: String,
    /// Per-table indexes of recent records, for version checks.
    pub writes: write::WriteState,
    /// Open query results (pagination cursors).
    pub queries: query::QueryState,
    pub security: Security,
    /// Scheduled queries, once the server has installed them.
    scheduled: std::sync::OnceLock<Arc<dyn scheduled::ScheduledQueries>>,
    /// Batch load tasks, once the server has installed them.
    batch_load: std::sync::OnceLock<Arc<dyn batch_load::BatchLoad>>,
}

impl Service {
    pub fn new(state: TimestreamState) -> Service {
        let env = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        Service {
            engine: state.engine,
            query: state.query,
            config: state.config,
            served_address: state.served_address,
            served_tls: state.served_tls,
            region: env("HOURGLASS_TIMESTREAM_REGION", DEFAULT_REGION),
            account_id: env("HOURGLASS_TIMESTREAM_ACCOUNT_ID", DEFAULT_ACCOUNT_ID),
            writes: write::WriteState::default(),
            queries: query::QueryState::default(),
            security: state.security,
            scheduled: std::sync::OnceLock::new(),
            batch_load: std::sync::OnceLock::new(),
        }
    }

    /// Routes the ScheduledQuery operations to `scheduled` from now on (once; later calls are
    /// ignored and return `false`).
    pub fn install_scheduled_queries(
        &self,
        scheduled: Arc<dyn scheduled::ScheduledQueries>,
    ) -> bool {
        self.scheduled.set(scheduled).is_ok()
    }

    /// Routes the batch load operations to `batch_load` from now on (once; later calls are
    /// ignored and return `false`).
    pub fn install_batch_load(&self, batch_load: Arc<dyn batch_load::BatchLoad>) -> bool {
        self.batch_load.set(batch_load).is_ok()
    }

    /// Runs one operation with authentication off; `Ok` is the JSON body of the answer.
    pub async fn call(&self, operation: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        self.call_as(&Arc::new(Principal::unrestricted()), operation, body)
            .await
    }

    /// Runs one operation as `principal` (whose grants were checked for it: listings and
    /// queries are narrowed to what it may see).
    pub async fn call_as(
        &self,
        principal: &Arc<Principal>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        self.call_from(principal, "-", operation, body).await
    }

    /// [`Service::call_as`] for a request from `peer` (the address the audit log records).
    pub async fn call_from(
        &self,
        principal: &Arc<Principal>,
        peer: &str,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        let caller = query::Caller { principal, peer };
        if let Some(scheduled) = self.scheduled.get() {
            let tagging = matches!(
                operation,
                "TagResource" | "UntagResource" | "ListTagsForResource"
            );
            if scheduled::OPERATIONS.contains(&operation)
                || (tagging && scheduled::names_scheduled_query(body))
            {
                return scheduled.call(principal, operation, body).await;
            }
        }
        if let Some(batch_load) = self.batch_load.get() {
            if batch_load::OPERATIONS.contains(&operation) {
                return batch_load.call(principal, operation, body).await;
            }
        }
        match operation {
            // timestream-write
            "CreateDatabase" => manage::create_database(self, body),
            "DescribeDatabase" => manage::describe_database(self, body),
            "ListDatabases" => manage::list_databases(self, body, principal),
            "UpdateDatabase" => manage::update_database(self, body),
            "DeleteDatabase" => manage::delete_database(self, body).await,
            "CreateTable" => manage::create_table(self, body).await,
            "DescribeTable" => manage::describe_table(self, body),
            "ListTables" => manage::list_tables(self, body, principal),
            "UpdateTable" => manage::update_table(self, body),
            "DeleteTable" => manage::delete_table(self, body).await,
            "WriteRecords" => write::write_records(self, body).await,
            "CreateBatchLoadTask"
            | "DescribeBatchLoadTask"
            | "ListBatchLoadTasks"
            | "ResumeBatchLoadTask" => manage::batch_load(operation, body),
            // both services
            "TagResource" => manage::tag_resource(self, body),
            "UntagResource" => manage::untag_resource(self, body),
            "ListTagsForResource" => manage::list_tags(self, body),
            "DescribeEndpoints" => manage::describe_endpoints(self, body, Default::default()),
            // timestream-query
            "Query" => query::query(self, body, caller).await,
            "CancelQuery" => query::cancel_query(self, body, caller),
            "PrepareQuery" => query::prepare_query(self, body, principal).await,
            "CreateScheduledQuery"
            | "DeleteScheduledQuery"
            | "DescribeScheduledQuery"
            | "ExecuteScheduledQuery"
            | "ListScheduledQueries"
            | "UpdateScheduledQuery" => manage::scheduled_queries(operation, body),
            "DescribeAccountSettings" | "UpdateAccountSettings" => {
                manage::account_settings(operation, body)
            }
            _ => Err(ApiError::unknown_operation(&format!(
                "{TARGET_PREFIX}{operation}"
            ))),
        }
    }
}

/// The routes of the Timestream API, to merge into the HTTP router.
pub fn router(state: TimestreamState) -> Router {
    router_for(Arc::new(Service::new(state)))
}

/// [`router`] over a service made beforehand (to install scheduled queries on it).
pub fn router_for(service: Arc<Service>) -> Router {
    Router::new().route("/", post(handle)).with_state(service)
}

/// The peer address of a request, as the HTTP server's middleware records it.
#[derive(Debug, Clone)]
pub struct Peer(pub String);

async fn handle(
    State(service): State<Arc<Service>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<axum::Extension<Peer>>,
    body: Bytes,
) -> Response {
    let peer = peer.map(|p| p.0 .0).unwrap_or_else(|| "-".into());
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let security = &service.security;
    let audit = |user: &str, operation: &str, outcome: &str, detail: &str| {
        let on = auth::target(&body);
        security.audit(user, &peer, "timestream", operation, &on, outcome, detail);
    };
    let principal = match &security.store {
        None => Arc::new(Principal::unrestricted()),
        Some(store) => {
            let request = sigv4::Request {
                method: method.as_str(),
                path: uri.path(),
                query: uri.query().unwrap_or(""),
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect(),
                body: &body,
            };
            match auth::authenticate(store, &request) {
                Ok(p) => p,
                Err((who, failure)) => {
                    audit(
                        &who,
                        target.strip_prefix(TARGET_PREFIX).unwrap_or(target),
                        failure.outcome(),
                        &failure.message(),
                    );
                    return ApiError::from(failure).into_response();
                }
            }
        }
    };
    let Some(operation) = target.strip_prefix(TARGET_PREFIX) else {
        return ApiError::unknown_operation(target).into_response();
    };
    let audited = auth::is_management(operation);
    if security.required() {
        let need = auth::need(operation, &body);
        if let Err(failure) = auth::authorize(
            &principal,
            &need,
            operation,
            &service.region,
            &service.account_id,
        ) {
            audit(
                &principal.name,
                operation,
                failure.outcome(),
                &failure.message(),
            );
            return ApiError::from(failure).into_response();
        }
    }
    let result = match operation {
        // The answer depends on how the client reached us and on which SDK asks.
        "DescribeEndpoints" => {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let request = manage::EndpointRequest {
                host: header("host"),
                user_agent: header("user-agent"),
            };
            manage::describe_endpoints(&service, &body, request)
        }
        _ => service.call_from(&principal, &peer, operation, &body).await,
    };
    if audited {
        let (outcome, detail) = match &result {
            Ok(_) => ("ok", String::new()),
            Err(e) => ("error", e.to_string()),
        };
        audit(&principal.name, operation, outcome, &detail);
    }
    match result {
        Ok(body) => protocol::ok_body(body),
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(operation, error = %e, "Timestream API call failed");
            } else {
                tracing::debug!(operation, error = %e, "Timestream API call refused");
            }
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests;
