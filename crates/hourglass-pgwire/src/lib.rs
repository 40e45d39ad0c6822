//! The PostgreSQL wire protocol endpoint (`--pg-addr`): psql, drivers (psycopg, JDBC,
//! tokio-postgres), Grafana and BI tools query Hourglass.
//!
//! Built on `pgwire` (startup, SSL refusal, simple and extended protocol with portals and row
//! limits) and `arrow-pg` (Arrow → PostgreSQL type OIDs and text/binary encodings). Each
//! connection gets its own DataFusion session from [`QueryEngine::session`], whose default schema
//! is the startup `database` parameter, with a `pg_catalog` schema ([`catalog`]) and PostgreSQL /
//! TimescaleDB functions ([`functions`]). Results stream batch by batch. Authentication: trust,
//! or SCRAM-SHA-256 (and SCRAM-SHA-256-PLUS over TLS) with `--require-auth` ([`auth`]), the
//! login re-checked at each statement ([`session`]); TLS (SSLRequest answered `S`) when a
//! rustls configuration is given, else SSLRequest is refused with `N`; `--require-tls` refuses
//! connections without it. Every message is checked before pgwire decodes it ([`frame`]).
//!
//! Types: Utf8 and Dictionary(_, Utf8) → `text`, Int64 → `int8`, UInt64 → `numeric` (lossless:
//! an unsigned 64-bit value does not fit `int8`), Float64 → `float8`, Boolean → `bool`,
//! Timestamp → `timestamp` (`timestamptz` when the Arrow type has a zone), Int32 → `int4`,
//! Float32 → `float4`, Date32 → `date`, Decimal128 → `numeric`, List → arrays, Map (and lists or
//! structs holding one) → `text` ([`as_text`]).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod as_text;
pub mod auth;
pub mod catalog;
pub mod catalog_functions;
pub mod column_names;
mod connection;
pub mod copy;
pub mod copy_encode;
pub mod cursors;
mod delete;
pub mod errors;
pub mod frame;
pub mod functions;
mod listener;
pub mod parameters;
mod plan_cache;
mod running;
pub mod session;
pub mod statements;
pub mod timestamp_text;
pub mod transaction;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use futures::future::{select, Either};
use futures::{stream, Sink, SinkExt, Stream, StreamExt};
use hourglass_auth::{Principal, Security};
use hourglass_query::access::may_query;
use hourglass_query::catalog::{DatabasesCatalog, CATALOG_NAME};
use hourglass_query::QueryEngine;
use parking_lot::Mutex;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{
    send_describe_response, send_execution_response, ExtendedQueryHandler, SimpleQueryHandler,
};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ErrorHandler, PgWireConnectionState,
    PgWireServerHandlers, Type, DEFAULT_NAME,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::data::DataRow;
use pgwire::messages::extendedquery::{Describe, Execute, PortalSuspended};
use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::SecretKey;
use pgwire::messages::PgWireBackendMessage;
use tokio::sync::watch;

use crate::errors::{from_datafusion, pg_error};
use crate::running::RunningQuery;
use crate::statements::{Canned, Special};

pub use listener::{PgServer, PgSettings};

type CancelRegistry = Mutex<HashMap<i32, (SecretKey, watch::Sender<u64>)>>;

struct Handlers {
    service: Arc<Service>,
    security: Security,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        // Called once per connection: the handler holds that connection's SCRAM state.
        Arc::new(auth::Startup::new(
            self.service.clone(),
            self.security.clone(),
        ))
    }
    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.service.clone()
    }
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }
}

struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        tracing::debug!(error = %error, "postgres error response");
    }
}

/// Per-connection state, kept in the connection's session extensions.
pub struct Connection {
    pub database: String,
    pub ctx: SessionContext,
    /// The catalog the session's principal sees (rebuilt when its grants change).
    pub catalog: Arc<session::SessionCatalog>,
    pub settings: Vec<(String, String)>,
    /// Transaction block, savepoints and `SET` parameters ([`transaction`]).
    pub state: transaction::SessionState,
    /// The connection's SQL cursors ([`cursors`]; `pg_cursors` lists them).
    pub cursors: Arc<cursors::Cursors>,
    /// The client's address, for the audit log.
    pub peer: String,
    /// What the plan cache keys this connection's templates by, besides database and principal.
    plan_settings: plan_cache::PlanSettings,
    /// The query engine's query and error counters ([`running`] counts each query).
    counters: Arc<hourglass_query::session::QueryCounters>,
    cancel: watch::Sender<u64>,
    _guard: CancelGuard,
}

struct CancelGuard {
    pid: i32,
    registry: Arc<CancelRegistry>,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.pid);
    }
}

pub(crate) struct Service {
    query: QueryEngine,
    cancels: Arc<CancelRegistry>,
    /// Where `UNLOAD` may write.
    unload: Arc<hourglass_unload::Destinations>,
    /// The audit log (`DELETE` is recorded).
    security: Security,
}

impl Service {
    /// The connection's session (created at login): its DataFusion context as the login's
    /// principal. A connection that never logged in has none.
    pub(crate) fn connect<C: ClientInfo>(&self, client: &C) -> PgWireResult<Arc<Connection>> {
        if let Some(c) = client.session_extensions().get::<Connection>() {
            return Ok(c);
        }
        let login = client
            .session_extensions()
            .get::<session::Login>()
            .ok_or_else(session::not_logged_in)?;
        let principal = login.principal.clone();
        let metadata = client.metadata();
        let database = metadata
            .get("database")
            .or_else(|| metadata.get("user"))
            .cloned()
            .unwrap_or_default();
        let ctx = self.query.session_as(&database, &principal);
        let _ = ctx
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .set("datafusion.sql_parser.dialect", "PostgreSQL");
        let settings = statements::settings(&database, metadata);
        let engine = self.query.engine.clone();
        let pg_settings = settings.clone();
        let cursors = Arc::new(cursors::Cursors::default());
        let catalog_cursors = cursors.clone();
        let catalog = Arc::new(session::SessionCatalog::new(principal, move |p| {
            let inner = Arc::new(DatabasesCatalog::new(engine.clone(), p.clone()));
            Arc::new(
                catalog::WithPgCatalog::new(inner, pg_settings.clone())
                    .with_cursors(catalog_cursors.clone()),
            )
        }));
        ctx.register_catalog(CATALOG_NAME, catalog.clone());
        functions::register(&ctx, &database, catalog.clone());
        functions::register_settings(&ctx, &settings);
        let (pid, secret) = client.pid_and_secret_key();
        let (cancel, _) = watch::channel(0u64);
        self.cancels.lock().insert(pid, (secret, cancel.clone()));
        let conn = Connection {
            database,
            ctx,
            catalog,
            settings,
            state: transaction::SessionState::default(),
            cursors,
            peer: client.socket_addr().to_string(),
            plan_settings: plan_cache::PlanSettings::default(),
            counters: self.query.counters.clone(),
            cancel,
            _guard: CancelGuard {
                pid,
                registry: self.cancels.clone(),
            },
        };
        Ok(client.session_extensions().get_or_insert_with(|| conn))
    }

    /// The session of a statement about to be parsed, described or run: the login is checked
    /// against the users as they are now ([`session::Login::current`]; FATAL when the user was
    /// removed or rotated), a user who may not query is refused (`42501`), and the user's
    /// current grants applied.
    pub(crate) fn session<C: ClientInfo>(&self, client: &C) -> PgWireResult<Arc<Connection>> {
        let login = client
            .session_extensions()
            .get::<session::Login>()
            .ok_or_else(session::not_logged_in)?;
        let principal = login.current()?;
        // A user without a read grant anywhere runs no statement at all (42501), before any
        // table lookup could answer "not found" instead.
        hourglass_query::access::check_may_query(&principal).map_err(errors::from_error)?;
        let conn = self.connect(client)?;
        if let Some(previous) = conn.catalog.apply(principal.clone()) {
            if may_query(&previous) != may_query(&principal) {
                self.refence(&conn, &principal);
            }
            let may_lift = hourglass_query::access::may_lift_value_bounds(&principal);
            if hourglass_query::access::may_lift_value_bounds(&previous) != may_lift {
                let state = conn.ctx.state_ref();
                let mut state = state.write();
                hourglass_query::rules::allow_lifting_value_bounds(&mut state, may_lift);
                conn.plan_settings.changed();
            }
        }
        Ok(conn)
    }

    /// Rebuilds the session's DataFusion state for a principal whose right to run queries at
    /// all changed (a session is fenced, or not, when it is made: [`hourglass_query::access`]),
    /// keeping the session's settings (`SET hourglass.*`) and its catalog.
    fn refence(&self, conn: &Connection, principal: &Arc<Principal>) {
        let mut state = self.query.session_as(&conn.database, principal).state();
        let options = conn
            .ctx
            .state_ref()
            .read()
            .config_options()
            .as_ref()
            .clone();
        *state.config_mut().options_mut() = options;
        hourglass_query::rules::apply_function_switches(&mut state);
        *conn.ctx.state_ref().write() = state;
        conn.ctx
            .register_catalog(CATALOG_NAME, conn.catalog.clone());
        functions::register(&conn.ctx, &conn.database, conn.catalog.clone());
        functions::register_settings(&conn.ctx, &conn.settings);
        conn.plan_settings.changed();
    }
}

#[async_trait]
impl CancelHandler for Service {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let registry = self.cancels.lock();
        if let Some((secret, tx)) = registry.get(&request.pid) {
            if secret.eq_value(&request.secret_key) {
                tx.send_modify(|n| *n += 1);
            }
        }
    }
}

/// A prepared (or simple-protocol) statement.
#[derive(Debug, Clone)]
pub enum Prepared {
    Plan(Box<LogicalPlan>),
    /// A query's plan already optimised: its shape's plan-cache template bound to the
    /// statement's literals ([`plan_cache`]). It has no parameters.
    Optimized(Box<LogicalPlan>),
    Special(Special),
    /// An empty result (no columns, no rows). Not produced for failed plans: a catalog query
    /// that fails to plan is an error (issue 23).
    Empty,
    /// `COPY ... TO STDOUT` ([`copy`]): planned when it runs.
    Copy(Box<copy::CopyStatement>),
    /// `DECLARE` (with its query's plan), `FETCH`, `MOVE`, `CLOSE` ([`cursors`]).
    Cursor(cursors::Statement<Box<LogicalPlan>>),
    /// `UNLOAD (query) TO ...` ([`hourglass_unload`]) with its query's plan.
    Unload(Box<UnloadStatement>),
    /// `DELETE FROM ...` ([`delete`]).
    Delete(Box<hourglass_query::delete::DeleteStatement>),
}

/// A prepared UNLOAD: the statement and the plan of its query.
#[derive(Debug, Clone)]
pub struct UnloadStatement {
    pub unload: hourglass_unload::Unload,
    pub plan: LogicalPlan,
}

fn text_fields(columns: &[String], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| FieldInfo::new(c.clone(), None, None, Type::TEXT, format.format_for(i)))
        .collect()
}

fn canned_response(canned: Canned, format: &Format) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(text_fields(&canned.columns, format));
    let mut rows = Vec::with_capacity(canned.rows.len());
    for row in canned.rows {
        let mut encoder = DataRowEncoder::new(fields.clone());
        for v in row {
            encoder.encode_field(&v)?;
        }
        rows.push(Ok(encoder.take_row()));
    }
    Ok(QueryResponse::new(fields, stream::iter(rows)))
}

/// Runs a statement answered without DataFusion on the connection's [`transaction`] state.
fn special_response(
    conn: &Connection,
    special: Special,
    format: &Format,
) -> PgWireResult<Response> {
    let state = &conn.state;
    if !matches!(special, Special::TransactionEnd(_) | Special::RollbackTo(_)) {
        refuse_in_failed_block(conn)?;
    }
    Ok(match special {
        Special::Tag(t) => Response::Execution(Tag::new(&t)),
        Special::TransactionStart(t) => {
            state.begin();
            Response::TransactionStart(Tag::new(&t))
        }
        Special::TransactionEnd(t) => {
            conn.cursors.end_transaction();
            let failed = state.end();
            Response::TransactionEnd(Tag::new(if failed { "ROLLBACK" } else { &t }))
        }
        Special::Rows(c) => Response::Query(canned_response(c, format)?),
        Special::Savepoint(name) => {
            state.savepoint(&name)?;
            Response::Execution(Tag::new("SAVEPOINT"))
        }
        Special::Release(name) => {
            state.back_to(&name, false)?;
            Response::Execution(Tag::new("RELEASE"))
        }
        Special::RollbackTo(name) => {
            state.back_to(&name, true)?;
            Response::Execution(Tag::new("ROLLBACK"))
        }
        Special::Set(name, value) => {
            state.set(&name, &value);
            Response::Execution(Tag::new("SET"))
        }
        Special::Reset(name) => {
            state.reset(name.as_deref());
            Response::Execution(Tag::new("RESET"))
        }
        Special::DiscardAll => {
            state.reset(None);
            conn.cursors.close(None)?;
            Response::Execution(Tag::new("DISCARD ALL"))
        }
    })
}

/// `25P02` for a statement of a failed transaction block.
fn refuse_in_failed_block(conn: &Connection) -> PgWireResult<()> {
    if conn.state.failed() {
        return Err(pg_error(
            transaction::IN_FAILED_SQL_TRANSACTION,
            "current transaction is aborted, commands ignored until end of transaction block",
        ));
    }
    Ok(())
}

fn empty_response() -> Response {
    Response::Query(QueryResponse::new(Arc::new(vec![]), stream::empty()))
}

impl Service {
    /// Classifies and plans one statement.
    async fn prepare(&self, conn: &Connection, sql: &str) -> PgWireResult<Prepared> {
        self.prepare_with(conn, sql, true).await
    }

    /// [`Service::prepare`]; with `from_template` off a query is planned on its own, never as a
    /// plan-cache template ([`Prepared::Plan`], not [`Prepared::Optimized`]): the statements that
    /// hold a query (`COPY`, `UNLOAD`, `DECLARE`) take its plan unoptimised.
    pub(crate) async fn prepare_with(
        &self,
        conn: &Connection,
        sql: &str,
        from_template: bool,
    ) -> PgWireResult<Prepared> {
        if let Some(copy) = copy::parse(sql) {
            return copy.map(|c| Prepared::Copy(Box::new(c)));
        }
        if let Some(delete) = hourglass_query::delete::recognise(sql) {
            return delete
                .map(|d| Prepared::Delete(Box::new(d)))
                .map_err(errors::from_error);
        }
        if let Some(unload) = hourglass_unload::recognise(sql) {
            let unload = unload.map_err(errors::from_error)?;
            return match Box::pin(self.prepare_with(conn, &unload.select, false)).await? {
                Prepared::Plan(plan) => Ok(Prepared::Unload(Box::new(UnloadStatement {
                    unload,
                    plan: *plan,
                }))),
                _ => Err(pg_error(
                    errors::FEATURE_NOT_SUPPORTED,
                    "UNLOAD needs a query DataFusion plans",
                )),
            };
        }
        if let Some((name, value)) = statements::hourglass_setting(sql) {
            if format!("hourglass.{name}") == timestamp_text::SETTING {
                let precision = timestamp_text::Precision::parse(&value)
                    .map_err(|m| pg_error(errors::INVALID_PARAMETER_VALUE, m))?;
                let value = format!("{precision:?}").to_ascii_lowercase();
                return Ok(Prepared::Special(Special::Set(
                    timestamp_text::SETTING.to_string(),
                    value,
                )));
            }
            let state_ref = conn.ctx.state_ref();
            let mut state = state_ref.write();
            state
                .config_mut()
                .options_mut()
                .set(&format!("hourglass.{name}"), &value)
                .map_err(|e| pg_error(errors::INVALID_PARAMETER_VALUE, e.to_string()))?;
            hourglass_query::rules::apply_function_switches(&mut state);
            conn.plan_settings.changed();
            return Ok(Prepared::Special(Special::Tag("SET".to_string())));
        }
        if let Some(parsed) = cursors::parse(sql) {
            let parsed = parsed.map_err(|(code, message)| pg_error(code, message))?;
            let mut plan = None;
            if let cursors::Statement::Declare { query, .. } = &parsed {
                match Box::pin(self.prepare_with(conn, query, false)).await? {
                    Prepared::Plan(p) => plan = Some(p),
                    _ => {
                        return Err(pg_error(
                            errors::FEATURE_NOT_SUPPORTED,
                            "DECLARE CURSOR needs a query DataFusion plans",
                        ))
                    }
                }
            }
            let statement = parsed.try_map(|_| {
                plan.ok_or_else(|| pg_error(errors::SYNTAX_ERROR, "DECLARE CURSOR needs a query"))
            })?;
            return Ok(Prepared::Cursor(statement));
        }
        let settings = conn.state.settings(&conn.settings);
        if let Some(special) = statements::special(sql, &settings) {
            return special
                .map(Prepared::Special)
                .map_err(|m| pg_error(errors::UNDEFINED_OBJECT, m));
        }
        if let Some(canned) = statements::psql_describe(sql, conn.catalog.as_ref()).await {
            return Ok(Prepared::Special(Special::Rows(canned)));
        }
        let rewritten = statements::rewrite(sql);
        let state = conn.ctx.state();
        let planned = async {
            let mut parsed = parse_one(&rewritten)?;
            // PostgreSQL's column names, from the SQL as sent ([`column_names`]); the items
            // whose names repeat aliased apart for DataFusion.
            let names = column_names::select_names(&parsed);
            column_names::alias_repeated(&mut parsed);
            // The plan, and whether it is optimised already (from a template).
            let plan = |mut statement: DFStatement| async {
                hourglass_query::rules::rewrite_statement(&mut statement, state.config().options())
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                if from_template {
                    let bound =
                        plan_cache::bound_plan(&self.query, conn, &state, &statement).await?;
                    if let Some(bound) = bound {
                        return Ok((bound, true));
                    }
                }
                state.statement_to_plan(statement).await.map(|p| (p, false))
            };
            // Kept for planning again only where [`column_names::alias_beside_wildcards`] can
            // change something: a select list with a wildcard.
            let has_wildcard = names
                .as_ref()
                .is_some_and(|n| n.iter().any(Option::is_none));
            let retry = has_wildcard.then(|| parsed.clone());
            let planned = match plan(parsed).await {
                Err(e) if column_names::is_repeated_name_error(&e) => match retry {
                    Some(mut apart) => {
                        if column_names::alias_beside_wildcards(&mut apart) {
                            plan(apart).await
                        } else {
                            Err(e)
                        }
                    }
                    None => Err(e),
                },
                other => other,
            }?;
            let (planned, optimized) = planned;
            let named = match names {
                Some(names) => column_names::name_plan(planned, &names),
                None => planned,
            };
            Ok((named, optimized))
        }
        .await;
        match planned {
            // The names are a projection of columns: nothing the optimiser would change.
            Ok((plan, true)) => Ok(Prepared::Optimized(Box::new(plan))),
            Ok((plan, false)) => Ok(Prepared::Plan(Box::new(plan))),
            Err(e) => {
                // A query that failed to plan counts as a query and an error, as over HTTP.
                conn.counters.queries.fetch_add(1, Ordering::Relaxed);
                conn.counters.errors.fetch_add(1, Ordering::Relaxed);
                Err(from_datafusion(e))
            }
        }
    }

    /// Runs `COPY ... TO STDOUT` unless the transaction block failed; a failure fails the block.
    async fn copy_out_in_block<C>(
        &self,
        client: &mut C,
        conn: &Connection,
        copy: &copy::CopyStatement,
    ) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = match refuse_in_failed_block(conn) {
            Ok(()) => self.copy_out(client, conn, copy).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            conn.state.fail();
        }
        result
    }

    /// Runs a cursor statement, a declared query's parameters bound to `values`.
    async fn cursor(
        &self,
        conn: &Connection,
        statement: cursors::Statement<Box<LogicalPlan>>,
        values: Vec<ScalarValue>,
        format: &Format,
    ) -> PgWireResult<Response> {
        let statement = statement.try_map(|plan| with_values(*plan, values))?;
        cursors::execute(conn, statement, format, self.query.limits.timeout).await
    }

    /// Runs an UNLOAD: the destination opened, its query run as a plain query (time limit,
    /// cancel key) and written; the response is UNLOAD's one row.
    async fn unload(
        &self,
        conn: &Connection,
        statement: &UnloadStatement,
        values: Vec<ScalarValue>,
        format: &Format,
    ) -> PgWireResult<Response> {
        let unload = &statement.unload;
        let target = self.unload.open(&unload.url).map_err(errors::from_error)?;
        let plan = with_values(statement.plan.clone(), values)?;
        let query = RunningQuery::start(conn, plan, self.query.limits.timeout).await?;
        let schema = query.schema();
        let rows = Box::pin(stream::unfold(Some(query), |query| async move {
            let mut query = query?;
            match query.next_batch().await {
                Ok(Some(batch)) => Some((Ok(batch), Some(query))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        }));
        let id = hourglass_unload::new_query_id();
        let summary =
            hourglass_unload::run(unload, &target, &id, schema, rows, errors::from_error).await?;
        let plan = conn
            .ctx
            .read_batch(summary.batch())
            .map_err(from_datafusion)?
            .into_unoptimized_plan();
        self.run(conn, plan, format).await
    }

    /// Starts a planned query; the response streams its batches.
    async fn run(
        &self,
        conn: &Connection,
        plan: LogicalPlan,
        format: &Format,
    ) -> PgWireResult<Response> {
        let query = RunningQuery::start(conn, plan, self.query.limits.timeout).await?;
        self.respond(query, format)
    }

    /// Starts an optimised plan ([`Prepared::Optimized`]); the response streams its batches.
    async fn run_optimized(
        &self,
        conn: &Connection,
        plan: LogicalPlan,
        format: &Format,
    ) -> PgWireResult<Response> {
        let query = RunningQuery::start_optimized(conn, plan, self.query.limits.timeout).await?;
        self.respond(query, format)
    }

    /// The response of a started query: its batches streamed as rows in `format`.
    fn respond(&self, query: RunningQuery, format: &Format) -> PgWireResult<Response> {
        let fields = Arc::new(query.fields(format)?);
        let rows = row_stream(query, fields.clone());
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

/// Encodes batches to rows as they arrive: one batch in memory at a time.
fn row_stream(
    query: RunningQuery,
    fields: Arc<Vec<FieldInfo>>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send {
    let encoder = query.encoder();
    let batches = stream::unfold(Some(query), |query| async move {
        let mut query = query?;
        match query.next_batch().await {
            Ok(Some(batch)) => Some((Ok(batch), Some(query))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    batches.flat_map(move |batch| {
        let rows: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> = match batch {
            Ok(batch) => encoder.encode_rows(&fields, batch),
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        stream::iter(rows)
    })
}

/// `plan` with its placeholders replaced by `values` (as bound at Bind); unchanged without values.
fn with_values(plan: LogicalPlan, values: Vec<ScalarValue>) -> PgWireResult<LogicalPlan> {
    if values.is_empty() {
        return Ok(plan);
    }
    plan.replace_params_with_values(&ParamValues::from(values))
        .map_err(from_datafusion)
}

/// Parses exactly one statement (PostgreSQL dialect).
fn parse_one(sql: &str) -> datafusion::error::Result<DFStatement> {
    let mut statements = DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {})?;
    match statements.len() {
        1 => Ok(statements.pop_front().unwrap_or_else(unreachable_statement)),
        n => datafusion::common::plan_err!("expected one statement, got {n}"),
    }
}

fn unreachable_statement() -> DFStatement {
    panic!("length checked")
}

/// Whether `sql` holds nothing but whitespace, comments and semicolons.
fn is_blank(sql: &str) -> bool {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    match Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() {
        Ok(tokens) => tokens
            .iter()
            .all(|t| matches!(t, Token::Whitespace(_) | Token::SemiColon)),
        Err(_) => false,
    }
}

/// Splits a simple-protocol query string into statements (their SQL text).
fn split_statements(sql: &str) -> Result<Vec<String>, PgWireError> {
    hourglass_query::limits::check_sql_shape(sql).map_err(errors::from_error)?;
    let trimmed = sql.trim().trim_end_matches(';').trim();
    // Comments and semicolons only (`-- ping`, pgx's and so Grafana's health check; `;`, lib/pq's
    // ping) are an empty query, answered by EmptyQueryResponse as PostgreSQL does.
    if is_blank(trimmed) {
        return Ok(vec![]);
    }
    // SET/SHOW/transaction control and psql's catalog queries are taken whole when they are one
    // statement: some use syntax the parser rejects.
    if !trimmed.contains(';') {
        return Ok(vec![trimmed.to_string()]);
    }
    match DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}) {
        Ok(statements) => Ok(statements.iter().map(|s| s.to_string()).collect()),
        // Session statements the parser does not know (`CLOSE ALL; UNLISTEN *; RESET ALL`):
        // split at the semicolons between tokens; each is then taken whole.
        Err(e) => split_at_semicolons(sql).ok_or_else(|| from_datafusion(e)),
    }
}

/// `sql`'s statements, split at the semicolons outside literals and comments.
fn split_at_semicolons(sql: &str) -> Option<Vec<String>> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut statements = Vec::new();
    let mut current = String::new();
    for token in tokens {
        match token {
            Token::SemiColon => statements.push(std::mem::take(&mut current)),
            Token::Whitespace(_) if current.is_empty() => {}
            other => current.push_str(&other.to_string()),
        }
    }
    statements.push(current);
    Some(
        statements
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

#[async_trait]
impl SimpleQueryHandler for Service {
    /// pgwire's default, except that `ROLLBACK TO` a savepoint of a failed transaction block
    /// starts from the in-transaction status (pgwire never leaves the failed one but to idle).
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if client.transaction_status() == TransactionStatus::Error
            && statements::is_rollback_to(&query.query)
        {
            client.set_transaction_status(TransactionStatus::Transaction);
        }
        self._on_query(client, query).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.session(client)?;
        conn.state.sync(client.transaction_status());
        // COPY ... TO STDOUT writes its messages itself (CopyOutResponse .. CommandComplete).
        if let Some(copy) = copy::parse_simple(query) {
            match copy {
                Ok(c) => self.copy_out_in_block(client, &conn, &c).await?,
                Err(e) => {
                    conn.state.fail();
                    return Err(e);
                }
            }
            return Ok(vec![]);
        }
        let mut responses = Vec::new();
        for sql in split_statements(query)? {
            if sql.trim().is_empty() {
                continue;
            }
            let result = match self.prepare(&conn, &sql).await {
                Ok(Prepared::Plan(plan)) => match refuse_in_failed_block(&conn) {
                    Ok(()) => self.run(&conn, *plan, &Format::UnifiedText).await,
                    Err(e) => Err(e),
                },
                Ok(Prepared::Optimized(plan)) => match refuse_in_failed_block(&conn) {
                    Ok(()) => self.run_optimized(&conn, *plan, &Format::UnifiedText).await,
                    Err(e) => Err(e),
                },
                Ok(Prepared::Special(s)) => special_response(&conn, s, &Format::UnifiedText),
                Ok(Prepared::Empty) => refuse_in_failed_block(&conn).map(|()| empty_response()),
                Ok(Prepared::Cursor(c)) => match refuse_in_failed_block(&conn) {
                    Ok(()) => self.cursor(&conn, c, vec![], &Format::UnifiedText).await,
                    Err(e) => Err(e),
                },
                Ok(Prepared::Unload(u)) => match refuse_in_failed_block(&conn) {
                    Ok(()) => self.unload(&conn, &u, vec![], &Format::UnifiedText).await,
                    Err(e) => Err(e),
                },
                Ok(Prepared::Delete(d)) => match refuse_in_failed_block(&conn) {
                    Ok(()) => delete::run(&self.query, &self.security, &conn, &d).await,
                    Err(e) => Err(e),
                },
                Ok(Prepared::Copy(_)) => Err(pg_error(
                    errors::FEATURE_NOT_SUPPORTED,
                    "COPY must be the only statement of its query string",
                )),
                Err(e) => Err(e),
            };
            if result.is_err() {
                conn.state.fail();
            }
            match result {
                Ok(r) => responses.push(r),
                Err(e) if responses.is_empty() => return Err(e),
                Err(PgWireError::UserError(info)) => {
                    responses.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if responses.is_empty() {
            responses.push(Response::EmptyQuery);
        }
        Ok(responses)
    }
}

/// A statement of the extended protocol: its SQL and what it prepared to.
#[derive(Debug, Clone)]
pub struct PgStatement {
    pub sql: String,
    pub prepared: Prepared,
    /// The [`session::SessionCatalog::generation`] it was planned under: when the grants have
    /// changed since, it is planned again before it runs.
    pub generation: u64,
    /// The Arrow types inferred for its parameters `$1..$n` ([`parameters::inferred`]), once
    /// for every Describe and Bind of the statement.
    pub parameter_types: Vec<Option<DataType>>,
}

#[async_trait]
impl QueryParser for Service {
    type Statement = PgStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<PgStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        hourglass_query::limits::check_sql_shape(sql).map_err(errors::from_error)?;
        let conn = self.session(client)?;
        let sql = sql.trim().trim_end_matches(';').to_string();
        let generation = conn.catalog.generation();
        let prepared = self.prepare(&conn, &sql).await?;
        let parameter_types = parameters::inferred(&prepared, &sql);
        Ok(Some(PgStatement {
            sql,
            prepared,
            generation,
            parameter_types,
        }))
    }

    fn get_parameter_types(&self, stmt: &PgStatement) -> PgWireResult<Vec<Type>> {
        Ok(parameters::pg_types(stmt))
    }

    fn get_result_schema(
        &self,
        stmt: &PgStatement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = column_format.unwrap_or(&Format::UnifiedText);
        match &stmt.prepared {
            Prepared::Plan(plan) | Prepared::Optimized(plan) => {
                if matches!(**plan, LogicalPlan::Ddl(_) | LogicalPlan::Dml(_)) {
                    return Ok(vec![]);
                }
                let schema = column_names::pg_schema(plan.schema().as_arrow());
                let text = as_text::text_schema(&schema);
                arrow_pg::datatypes::arrow_schema_to_pg_fields(
                    text.as_deref().unwrap_or(&schema),
                    format,
                    None,
                )
            }
            Prepared::Special(Special::Rows(c)) => Ok(text_fields(&c.columns, format)),
            Prepared::Unload(_) => arrow_pg::datatypes::arrow_schema_to_pg_fields(
                &hourglass_unload::Summary::schema(),
                format,
                None,
            ),
            Prepared::Special(_)
            | Prepared::Empty
            | Prepared::Copy(_)
            | Prepared::Cursor(_)
            | Prepared::Delete(_) => Ok(vec![]),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Service {
    type Statement = PgStatement;
    type QueryParser = Service;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(Service {
            query: self.query.clone(),
            cancels: self.cancels.clone(),
            unload: self.unload.clone(),
            security: self.security.clone(),
        })
    }

    /// pgwire's default, after the session's login is re-checked (as for Parse and Execute).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.session(client)?;
        // A cursor `DECLARE` opened, described as the portal it is in PostgreSQL (psycopg's
        // named cursors describe it before fetching).
        if message.target_type == b'P' {
            if let Some(name) = message.name.as_deref().filter(|n| !n.is_empty()) {
                if client.portal_store().get_portal(name).is_none() {
                    if let Some(cursor) = conn.cursors.get(name) {
                        let fields = cursor.lock().await.fields(&Format::UnifiedText)?;
                        let response = DescribePortalResponse::new(fields);
                        return send_describe_response(client, &response).await;
                    }
                }
            }
        }
        self._on_describe(client, message).await
    }

    /// pgwire's default, except that a `FETCH` is described by its cursor's columns.
    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        target: &Portal<PgStatement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = &target.statement.statement;
        if let Prepared::Cursor(cursors::Statement::Fetch {
            name,
            move_only: false,
            ..
        }) = &statement.prepared
        {
            let conn = self.session(client)?;
            if let Some(cursor) = conn.cursors.get(name) {
                let fields = cursor.lock().await.fields(&target.result_column_format)?;
                return Ok(DescribePortalResponse::new(fields));
            }
        }
        let fields = self.get_result_schema(statement, Some(&target.result_column_format))?;
        Ok(DescribePortalResponse::new(fields))
    }

    /// Like pgwire's default (`_on_execute`), except that rows go straight from the portal's
    /// stream to the connection. pgwire 0.41's `Portal::fetch` collects the rows of an Execute
    /// into a `Vec` before any is sent — the whole result when `max_rows` is 0, which is what
    /// libpq-based clients (psycopg's `cursor.stream`, chunked or single-row mode) send — so
    /// memory grew with the result. Here `feed` lets the framed writer flush past its
    /// backpressure boundary and a slow client holds at most a batch plus a socket buffer.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(portal_name) {
            Some(Entry::Value(portal)) => portal,
            // Empty portal (EmptyQueryResponse) or unknown portal (error): as pgwire does.
            _ => return self._on_execute(client, message).await,
        };
        if let Prepared::Copy(copy) = &portal.statement.statement.prepared {
            let conn = self.session(client)?;
            conn.state.sync(client.transaction_status());
            return self.copy_out_in_block(client, &conn, copy).await;
        }
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let mut transaction_status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);

        let initial = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        let needs_fetch = if initial {
            let cancel_rx = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
                Some(handle) => Some(handle.start_query().await),
                None => None,
            };
            let query = ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows);
            let resp = match cancel_rx {
                Some(cancel_rx) => match select(query, cancel_rx).await {
                    Either::Left((result, _)) => result,
                    Either::Right(_) => Err(PgWireError::QueryCanceled),
                },
                None => query.await,
            }?;
            match resp {
                Response::Query(results) => {
                    portal.start(results).await;
                    true
                }
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                    false
                }
                Response::Execution(tag) => {
                    send_execution_response(client, tag).await?;
                    false
                }
                Response::TransactionStart(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_in_transaction_state();
                    false
                }
                Response::TransactionEnd(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_idle_state();
                    client.portal_store().rm_portal(DEFAULT_NAME);
                    false
                }
                Response::Error(err) => {
                    client
                        .send(PgWireBackendMessage::ErrorResponse((*err).into()))
                        .await?;
                    transaction_status = transaction_status.to_error_state();
                    false
                }
                Response::CopyIn(_) | Response::CopyOut(_) | Response::CopyBoth(_) => {
                    return Err(pg_error(
                        errors::FEATURE_NOT_SUPPORTED,
                        "COPY is not supported",
                    ));
                }
            }
        } else {
            true
        };

        if needs_fetch {
            let state = portal.state();
            let mut state = state.lock().await;
            match &mut *state {
                PortalExecutionState::Suspended(response) => {
                    let command_tag = response.command_tag().to_owned();
                    let rows = response.data_rows();
                    let mut sent = 0usize;
                    let mut suspended = true;
                    while max_rows == 0 || sent < max_rows {
                        match rows.next().await {
                            Some(row) => {
                                client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                                sent += 1;
                            }
                            None => {
                                suspended = false;
                                break;
                            }
                        }
                    }
                    if suspended {
                        client
                            .send(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
                            .await?;
                    } else {
                        *state = PortalExecutionState::Finished;
                        let tag = Tag::new(&command_tag).with_rows(sent);
                        client
                            .send(PgWireBackendMessage::CommandComplete(tag.into()))
                            .await?;
                    }
                }
                PortalExecutionState::Finished => {
                    let tag = Tag::new("SELECT").with_rows(0);
                    client
                        .send(PgWireBackendMessage::CommandComplete(tag.into()))
                        .await?;
                }
                PortalExecutionState::Initial => return Err(PgWireError::PortalNotStarted),
            }
        }

        if let Some(conn) = client.session_extensions().get::<Connection>() {
            transaction_status = conn.state.status(transaction_status);
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(transaction_status);
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PgStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.session(client)?;
        conn.state.sync(client.transaction_status());
        let statement = &portal.statement.statement;
        // Planned under other grants: plan again, so the grants of now apply.
        let replanned;
        let prepared = if statement.generation == conn.catalog.generation() {
            &statement.prepared
        } else {
            replanned = self.prepare(&conn, &statement.sql).await?;
            &replanned
        };
        match prepared {
            Prepared::Plan(plan) => {
                refuse_in_failed_block(&conn)?;
                let plan = with_values((**plan).clone(), parameters::decode(portal)?)?;
                self.run(&conn, plan, &portal.result_column_format).await
            }
            Prepared::Optimized(plan) => {
                refuse_in_failed_block(&conn)?;
                // Values bound to it are checked as for any plan (it has no placeholders).
                let plan = with_values((**plan).clone(), parameters::decode(portal)?)?;
                self.run_optimized(&conn, plan, &portal.result_column_format)
                    .await
            }
            Prepared::Special(s) => {
                special_response(&conn, s.clone(), &portal.result_column_format)
            }
            Prepared::Empty => refuse_in_failed_block(&conn).map(|()| empty_response()),
            Prepared::Cursor(c) => {
                refuse_in_failed_block(&conn)?;
                let values = parameters::decode(portal)?;
                self.cursor(&conn, c.clone(), values, &portal.result_column_format)
                    .await
            }
            Prepared::Unload(u) => {
                refuse_in_failed_block(&conn)?;
                let values = parameters::decode(portal)?;
                self.unload(&conn, u, values, &portal.result_column_format)
                    .await
            }
            Prepared::Delete(d) => {
                refuse_in_failed_block(&conn)?;
                delete::run(&self.query, &self.security, &conn, d).await
            }
            // Run by `on_execute`, which writes the COPY's messages itself.
            Prepared::Copy(_) => Err(pg_error(
                errors::FEATURE_NOT_SUPPORTED,
                "COPY cannot run here",
            )),
        }
    }
}

/// Whether the `StoredStatement` type is used (keeps the import meaningful for readers).
#[allow(dead_code)]
type Stored = StoredStatement<PgStatement>;

#[allow(dead_code)]
fn _format_is_used(f: FieldFormat) -> i16 {
    f.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23: a catalog query that fails to plan is an error, never an empty answer.
    #[test]
    fn failed_catalog_queries_are_not_answered_with_no_rows() {
        let source = include_str!("lib.rs");
        let forbidden = ["sql.contains(\"pg_catalog.", "\") =>"].concat();
        assert!(
            !source.contains(&forbidden),
            "the empty-answer fallback is back"
        );
        let forbidden = ["answered with ", "no rows"].concat();
        assert!(
            !source.contains(&forbidden),
            "the empty-answer fallback is back"
        );
    }

    #[test]
    fn comment_only_queries_are_empty() {
        assert!(split_statements("-- ping").unwrap().is_empty());
        assert!(split_statements(";").unwrap().is_empty());
        assert!(split_statements(" /* x */ ; -- y\n").unwrap().is_empty());
        assert_eq!(split_statements("SELECT 1 -- one").unwrap().len(), 1);
        assert_eq!(
            split_statements("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;")
                .unwrap(),
            [
                "SELECT pg_advisory_unlock_all()",
                "CLOSE ALL",
                "UNLISTEN *",
                "RESET ALL"
            ]
        );
    }
}
