//! The query operations: Query (with server-side result cursors), CancelQuery, PrepareQuery.
//!
//! A Query runs `QueryEngine::execute_timestream` and answers its first page; when rows remain,
//! the open result stream is kept as a *cursor* and the answer carries a `NextToken` for the next
//! page. Pages hold at most `MaxRows` rows (when given) and 1 MB of JSON; a page waits at most
//! [`PAGE_WAIT`] for rows, so a slow query answers an empty page with a `NextToken` (clients
//! loop until there is none, as with Timestream). The same token may be sent again and returns
//! the same page; using the next token invalidates the previous one. Cursors are bounded
//! ([`MAX_CURSORS`], each holding one batch and one cached page) and expire after
//! [`CURSOR_IDLE`] without use. A token only works with the same `QueryString`.
//!
//! A cursor belongs to the principal that opened it (its user name) and remembers what the
//! query read: the databases its session catalog resolved or listed while planning and running
//! ([`RecordingCatalog`]; the `system` schema counts as needing an operator). Every page checks
//! the request's principal (authenticated on that request, with the users' current grants):
//! anyone but the owner is answered exactly as an invalid token (and audited, outcome `denied`),
//! so tokens cannot be probed; an owner that lost `read` on one of the databases gets
//! `AccessDeniedException` and the cursor is dropped. CancelQuery is for the owner, operators
//! (`admin` on `*`) and admins of every database the query reads; anyone else gets the answer
//! of an unknown query id. Every CancelQuery is audited (with authentication off too). With
//! authentication off everyone is the same unrestricted principal, so no answer changes.

pub mod encode;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use futures::StreamExt;
use hourglass_auth::crypto::ct_eq;
use hourglass_auth::{AuthFailure, Principal};
use hourglass_query::catalog::{DatabaseSchema, CATALOG_NAME};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use self::encode::{column_info, type_json, ColumnEncoder};
use crate::protocol::{
    check_enum, check_length, check_range, constraint_error, decode, required, ApiError,
};
use crate::write::index::hash_bytes;
use crate::Service;

/// A query's result batches.
type Stream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<RecordBatch, hourglass_core::Error>> + Send>,
>;

/// How long one page waits for rows before answering what it has.
pub const PAGE_WAIT: Duration = Duration::from_secs(20);
/// How long an unused cursor lives.
pub const CURSOR_IDLE: Duration = Duration::from_secs(300);
/// Open cursors at most; the least recently used is dropped past it.
pub const MAX_CURSORS: usize = 64;
/// The most JSON bytes of rows one page holds.
pub const PAGE_BYTES: usize = 1_000_000;
/// Query ids remembered after they finished or were cancelled (for CancelQuery's answers).
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Finished,
    Cancelled,
}

/// A query that ended: how, and whose it was (CancelQuery and stale tokens answer by it).
#[derive(Debug, Clone)]
struct EndedQuery {
    how: Ended,
    owner: String,
    nonce: String,
    reads: Vec<Read>,
}

/// The open cursors and the ids of queries that ended.
#[derive(Default)]
pub struct QueryState {
    cursors: Mutex<HashMap<String, Arc<Cursor>>>,
    ended: Mutex<(HashMap<String, EndedQuery>, VecDeque<String>)>,
}

impl QueryState {
    fn remember(&self, cursor: &Cursor, how: Ended) {
        let entry = EndedQuery {
            how,
            owner: cursor.owner.clone(),
            nonce: cursor.nonce.clone(),
            reads: cursor.reads.list(),
        };
        let mut ended = self.ended.lock();
        if ended.0.insert(cursor.id.clone(), entry).is_none() {
            ended.1.push_back(cursor.id.clone());
            while ended.1.len() > MAX_REMEMBERED {
                if let Some(old) = ended.1.pop_front() {
                    ended.0.remove(&old);
                }
            }
        }
    }

    fn ended(&self, id: &str) -> Option<EndedQuery> {
        self.ended.lock().0.get(id).cloned()
    }

    /// Drops idle cursors and, past the limit, the least recently used ones.
    fn sweep(&self) {
        let now = Instant::now();
        let mut cursors = self.cursors.lock();
        cursors.retain(|_, c| now.duration_since(*c.last_used.lock()) < CURSOR_IDLE);
        while cursors.len() >= MAX_CURSORS {
            let oldest = cursors
                .iter()
                .min_by_key(|(_, c)| *c.last_used.lock())
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    cursors.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Number of open cursors.
    pub fn open_cursors(&self) -> usize {
        self.cursors.lock().len()
    }
}

struct Cursor {
    id: String,
    query_hash: u64,
    nonce: String,
    /// The user name of the principal that opened it.
    owner: String,
    /// What the query read.
    reads: Arc<Reads>,
    last_used: Mutex<Instant>,
    cancelled: AtomicBool,
    state: tokio::sync::Mutex<CursorState>,
}

struct CursorState {
    stream: Option<Stream>,
    schema: SchemaRef,
    column_info: Arc<String>,
    current: Option<(RecordBatch, Vec<ColumnEncoder>, usize)>,
    /// The page last answered and its body.
    page: u64,
    last_body: Option<Arc<Vec<u8>>>,
    rows: u64,
    bytes: u64,
    deadline: Instant,
    insights: bool,
}

/// Something a query read, as its session catalog resolved it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Read {
    /// A database (reading it needs `read` on it).
    Database(String),
    /// Another schema of the catalog (`system`: operators only).
    Other(String),
}

/// What a query has read so far (planning resolves tables; `information_schema` and `SHOW`
/// list databases, while planning or while running).
#[derive(Debug, Default)]
struct Reads(Mutex<BTreeSet<Read>>);

impl Reads {
    fn list(&self) -> Vec<Read> {
        self.0.lock().iter().cloned().collect()
    }

    /// The first database (or schema) `principal` may no longer read.
    fn unreadable(&self, principal: &Principal) -> Option<String> {
        self.0.lock().iter().find_map(|r| match r {
            Read::Database(db) => (!principal.can_read(db)).then(|| db.clone()),
            Read::Other(name) => (!principal.is_operator()).then(|| name.clone()),
        })
    }
}

/// The `hourglass` catalog of a Timestream query's session, recording what it hands out.
#[derive(Debug)]
struct RecordingCatalog {
    inner: Arc<dyn CatalogProvider>,
    reads: Arc<Reads>,
}

impl CatalogProvider for RecordingCatalog {
    fn schema_names(&self) -> Vec<String> {
        // A listing shows each database listed: it depends on all of them.
        let names = self.inner.schema_names();
        self.reads
            .0
            .lock()
            .extend(names.iter().cloned().map(Read::Database));
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let schema = self.inner.schema(name)?;
        let read = match schema.downcast_ref::<DatabaseSchema>() {
            Some(db) => Read::Database(db.db.clone()),
            None => Read::Other(name.to_string()),
        };
        self.reads.0.lock().insert(read);
        Some(schema)
    }
}

/// Plans a Timestream query as `principal` and starts it, recording what its catalog resolves.
/// The same steps as `QueryEngine::execute_timestream_as` (keep them in step), in a session
/// whose catalog is wrapped in a [`RecordingCatalog`] first.
async fn start(
    svc: &Service,
    sql: &str,
    principal: &Arc<Principal>,
) -> Result<(datafusion::execution::SendableRecordBatchStream, Arc<Reads>), ApiError> {
    hourglass_query::access::check_may_query(principal)?;
    hourglass_query::limits::check_sql_shape(sql)?;
    let ctx = svc.query.session_as("", principal);
    let inner = ctx
        .catalog(CATALOG_NAME)
        .ok_or_else(|| ApiError::internal("the session has no catalog"))?;
    let reads = Arc::new(Reads::default());
    ctx.register_catalog(
        CATALOG_NAME,
        Arc::new(RecordingCatalog {
            inner,
            reads: reads.clone(),
        }),
    );
    let limit = svc.query.limits.timeout;
    let planned = tokio::time::timeout(
        limit,
        hourglass_query::dialect::execute(&ctx, &svc.query.engine, sql),
    )
    .await
    .map_err(|_| {
        hourglass_core::Error::exhausted(format!(
            "query exceeded the {} s time limit while planning",
            limit.as_secs()
        ))
    })?;
    Ok((planned?, reads))
}

/// `UNLOAD (SELECT ...) TO ...` ([`hourglass_unload`]): the destination opened first, the
/// SELECT planned and run as a Query (same permission checks, same reads recorded), its rows
/// written within the query time limit; the answer is UNLOAD's one row.
async fn run_unload(
    svc: &Service,
    unload: hourglass_unload::Unload,
    id: &str,
    principal: &Arc<Principal>,
) -> Result<(datafusion::execution::SendableRecordBatchStream, Arc<Reads>), ApiError> {
    let target = svc.config.unload.open(&unload.url)?;
    let (inner, reads) = start(svc, &unload.select, principal).await?;
    let schema = inner.schema();
    let rows = inner.map(|r| r.map_err(|e| ApiError::from(hourglass_query::from_datafusion(e))));
    let limit = svc.query.limits.timeout;
    let summary = tokio::time::timeout(
        limit,
        hourglass_unload::run(&unload, &target, id, schema, rows, ApiError::from),
    )
    .await
    .map_err(|_| {
        ApiError::from(hourglass_core::Error::exhausted(format!(
            "UNLOAD exceeded the {} s query time limit",
            limit.as_secs()
        )))
    })??;
    Ok((summary.into_stream(), reads))
}

/// What the caller of an operation is: its principal and address (for the audit log).
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub principal: &'a Arc<Principal>,
    pub peer: &'a str,
}

impl Caller<'_> {
    fn audit(&self, svc: &Service, action: &str, target: &str, outcome: &str, detail: &str) {
        svc.security.audit(
            &self.principal.name,
            self.peer,
            "timestream",
            action,
            target,
            outcome,
            detail,
        );
    }
}

/// AWS's AccessDeniedException for a Query reading `db`.
fn query_denied(svc: &Service, principal: &Principal, db: &str) -> ApiError {
    ApiError::from(AuthFailure::Denied(format!(
        "User: arn:aws:iam::{account}:user/{} is not authorized to perform: timestream:Query on resource: {}",
        principal.name,
        crate::arn::database_arn(&svc.region, &svc.account_id, db),
        account = svc.account_id,
    )))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct QueryIn {
    query_string: Option<String>,
    next_token: Option<String>,
    max_rows: Option<i64>,
    client_token: Option<String>,
    query_insights: Option<InsightsIn>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InsightsIn {
    mode: Option<String>,
}

fn query_hash(q: &str) -> u64 {
    hash_bytes(0x51_7c_c1_b7_27_22_0a_95, q.as_bytes())
}

fn invalid_token() -> ApiError {
    ApiError::validation("Invalid pagination token.")
}

pub async fn query(svc: &Service, body: &[u8], caller: Caller<'_>) -> Result<Vec<u8>, ApiError> {
    let req: QueryIn = decode(body)?;
    let sql = req.query_string.ok_or_else(|| required("queryString"))?;
    check_length(&sql, "queryString", 1, Some(262_144))?;
    let max_rows = match req.max_rows {
        Some(n) => {
            check_range(n, "maxRows", 1, 1000)?;
            Some(n as usize)
        }
        None => None,
    };
    if let Some(t) = &req.client_token {
        check_length(t, "clientToken", 32, Some(128))?;
    }
    let insights = match req.query_insights.as_ref() {
        Some(i) => {
            let mode = i
                .mode
                .as_deref()
                .ok_or_else(|| required("queryInsights.mode"))?;
            check_enum(
                mode,
                "queryInsights.mode",
                &["ENABLED_WITH_RATE_CONTROL", "DISABLED"],
            )? == "ENABLED_WITH_RATE_CONTROL"
        }
        None => false,
    };
    svc.queries.sweep();
    match req.next_token {
        Some(token) => {
            check_length(&token, "nextToken", 1, Some(2048))?;
            next_page(svc, &sql, &token, max_rows, caller).await
        }
        None => first_page(svc, sql, max_rows, insights, caller.principal).await,
    }
}

async fn first_page(
    svc: &Service,
    sql: String,
    max_rows: Option<usize>,
    insights: bool,
    principal: &Arc<Principal>,
) -> Result<Vec<u8>, ApiError> {
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    let (stream, reads) = match hourglass_unload::recognise(&sql) {
        None => start(svc, &sql, principal).await?,
        Some(unload) => run_unload(svc, unload?, &id, principal).await?,
    };
    let schema = stream.schema();
    let column_info = Arc::new(
        Value::Array(
            schema
                .fields()
                .iter()
                .map(|f| column_info(f.name(), f.data_type()))
                .collect(),
        )
        .to_string(),
    );
    let stream: Stream = Box::pin(stream.map(|r| r.map_err(hourglass_query::from_datafusion)));
    let cursor = Arc::new(Cursor {
        id: id.clone(),
        query_hash: query_hash(&sql),
        nonce: uuid::Uuid::new_v4().simple().to_string(),
        owner: principal.name.clone(),
        reads,
        last_used: Mutex::new(Instant::now()),
        cancelled: AtomicBool::new(false),
        state: tokio::sync::Mutex::new(CursorState {
            stream: Some(stream),
            schema,
            column_info,
            current: None,
            page: 0,
            last_body: None,
            rows: 0,
            bytes: 0,
            deadline: Instant::now() + svc.query.limits.timeout,
            insights,
        }),
    });
    // Registered first so that CancelQuery can reach a query still computing its first page.
    svc.queries
        .cursors
        .lock()
        .insert(id.clone(), cursor.clone());
    let mut state = cursor.state.lock().await;
    let result = fill_page(svc, &cursor, &mut state, max_rows).await;
    finish_page(svc, &cursor, &mut state, result)
}

/// A genuine token of another user's query: audited, answered as an invalid token.
fn foreign_token(svc: &Service, caller: Caller<'_>, id: &str, owner: &str) -> ApiError {
    caller.audit(
        svc,
        "Query",
        id,
        "denied",
        &format!("NextToken of a query of user {owner}"),
    );
    invalid_token()
}

async fn next_page(
    svc: &Service,
    sql: &str,
    token: &str,
    max_rows: Option<usize>,
    caller: Caller<'_>,
) -> Result<Vec<u8>, ApiError> {
    let principal = caller.principal;
    let mut parts = token.split('.');
    let (Some(id), Some(page), Some(nonce), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_token());
    };
    let page: u64 = page.parse().map_err(|_| invalid_token())?;
    let cursor = svc.queries.cursors.lock().get(id).cloned();
    let Some(cursor) = cursor else {
        return Err(match svc.queries.ended(id) {
            Some(e) if e.owner != principal.name => {
                if ct_eq(e.nonce.as_bytes(), nonce.as_bytes()) {
                    foreign_token(svc, caller, id, &e.owner)
                } else {
                    invalid_token()
                }
            }
            Some(e) if e.how == Ended::Cancelled => {
                ApiError::conflict("Unable to poll results for a cancelled query.")
            }
            _ => invalid_token(),
        });
    };
    if !ct_eq(cursor.nonce.as_bytes(), nonce.as_bytes()) {
        return Err(invalid_token());
    }
    if cursor.owner != principal.name {
        return Err(foreign_token(svc, caller, id, &cursor.owner));
    }
    if cursor.query_hash != query_hash(sql) {
        return Err(invalid_token());
    }
    *cursor.last_used.lock() = Instant::now();
    let mut state = cursor.state.lock().await;
    if cursor.cancelled.load(Ordering::SeqCst) {
        return Err(ApiError::conflict(
            "Unable to poll results for a cancelled query.",
        ));
    }
    // The owner's grants as they are now: a database no longer readable ends the cursor.
    if let Some(db) = cursor.reads.unreadable(principal) {
        let e = query_denied(svc, principal, &db);
        close(svc, &cursor, &mut state, Ended::Finished);
        caller.audit(svc, "Query", &cursor.id, "denied", &e.message);
        return Err(e);
    }
    if page == state.page {
        // The same token again: the same page.
        if let Some(body) = &state.last_body {
            return Ok(body.as_ref().clone());
        }
    }
    if page != state.page + 1 {
        return Err(invalid_token());
    }
    state.page = page;
    let result = fill_page(svc, &cursor, &mut state, max_rows).await;
    finish_page(svc, &cursor, &mut state, result)
}

/// Rows of one page, as JSON `Row` objects joined by commas, and whether the result is done.
struct Page {
    rows_json: Vec<u8>,
    done: bool,
}

async fn fill_page(
    svc: &Service,
    cursor: &Cursor,
    state: &mut CursorState,
    max_rows: Option<usize>,
) -> Result<Page, ApiError> {
    let max_rows = max_rows.unwrap_or(usize::MAX);
    let budget = PAGE_BYTES.saturating_sub(state.column_info.len() + 512);
    let page_deadline = Instant::now() + PAGE_WAIT;
    let mut out = Vec::with_capacity(4096);
    let mut count = 0usize;
    let mut row_buf = Vec::with_capacity(256);
    loop {
        if count >= max_rows {
            return Ok(Page {
                rows_json: out,
                done: false,
            });
        }
        if cursor.cancelled.load(Ordering::SeqCst) {
            return Err(ApiError::conflict(
                "Unable to poll results for a cancelled query.",
            ));
        }
        let exhausted = match &state.current {
            Some((batch, _, offset)) => *offset >= batch.num_rows(),
            None => true,
        };
        if exhausted {
            state.current = None;
            let Some(stream) = state.stream.as_mut() else {
                return Ok(Page {
                    rows_json: out,
                    done: true,
                });
            };
            let now = Instant::now();
            if now >= state.deadline {
                return Err(hourglass_core::Error::exhausted(format!(
                    "Query exceeded the {} s time limit.",
                    svc.query.limits.timeout.as_secs()
                ))
                .into());
            }
            let wait = page_deadline
                .min(state.deadline)
                .saturating_duration_since(now);
            match tokio::time::timeout(wait, stream.next()).await {
                Err(_) => {
                    if Instant::now() >= state.deadline {
                        continue; // reports the time limit
                    }
                    return Ok(Page {
                        rows_json: out,
                        done: false,
                    });
                }
                Ok(None) => {
                    state.stream = None;
                    return Ok(Page {
                        rows_json: out,
                        done: true,
                    });
                }
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(Some(Ok(batch))) => {
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    state.bytes += batch.get_array_memory_size() as u64;
                    let encoders = batch.columns().iter().map(ColumnEncoder::new).collect();
                    state.current = Some((batch, encoders, 0));
                    continue;
                }
            }
        }
        let Some((_, encoders, offset)) = state.current.as_mut() else {
            continue;
        };
        row_buf.clear();
        row_buf.extend_from_slice(b"{\"Data\":[");
        for (i, e) in encoders.iter().enumerate() {
            if i > 0 {
                row_buf.push(b',');
            }
            e.write(*offset, &mut row_buf);
        }
        row_buf.extend_from_slice(b"]}");
        if out.len() + row_buf.len() + 1 > budget {
            if count == 0 {
                return Err(ApiError::validation(
                    "Query aborted as max page response size has been exceeded by the output result row.",
                ));
            }
            return Ok(Page {
                rows_json: out,
                done: false,
            });
        }
        if count > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&row_buf);
        *offset += 1;
        count += 1;
        state.rows += 1;
    }
}

/// Builds the answer of a page; on the last page (or an error) the cursor is closed.
fn finish_page(
    svc: &Service,
    cursor: &Cursor,
    state: &mut CursorState,
    result: Result<Page, ApiError>,
) -> Result<Vec<u8>, ApiError> {
    let page = match result {
        Ok(p) => p,
        Err(e) => {
            close(svc, cursor, state, Ended::Finished);
            return Err(e);
        }
    };
    let done = page.done;
    let progress = if done {
        100.0
    } else {
        (99.0 * state.rows as f64 / (state.rows as f64 + 1.0)).min(99.0)
    };
    let scanned = state.bytes;
    let metered = scanned.max(10_000_000);
    let mut body = Vec::with_capacity(page.rows_json.len() + state.column_info.len() + 256);
    body.extend_from_slice(b"{\"QueryId\":");
    body.extend_from_slice(Value::String(cursor.id.clone()).to_string().as_bytes());
    body.extend_from_slice(b",\"Rows\":[");
    body.extend_from_slice(&page.rows_json);
    body.extend_from_slice(b"],\"ColumnInfo\":");
    body.extend_from_slice(state.column_info.as_bytes());
    let status = json!({
        "ProgressPercentage": progress,
        "CumulativeBytesScanned": scanned,
        "CumulativeBytesMetered": metered,
    });
    body.extend_from_slice(b",\"QueryStatus\":");
    body.extend_from_slice(status.to_string().as_bytes());
    if state.insights && done {
        let insights = json!({
            "QueryTableCount": 0,
            "OutputRows": state.rows,
            "OutputBytes": scanned,
        });
        body.extend_from_slice(b",\"QueryInsightsResponse\":");
        body.extend_from_slice(insights.to_string().as_bytes());
    }
    if !done {
        let token = format!("{}.{}.{}", cursor.id, state.page + 1, cursor.nonce);
        body.extend_from_slice(b",\"NextToken\":");
        body.extend_from_slice(Value::String(token).to_string().as_bytes());
    }
    body.push(b'}');
    if done {
        close(svc, cursor, state, Ended::Finished);
    } else {
        state.last_body = Some(Arc::new(body.clone()));
    }
    Ok(body)
}

fn close(svc: &Service, cursor: &Cursor, state: &mut CursorState, how: Ended) {
    state.stream = None;
    state.current = None;
    state.last_body = None;
    let _ = &state.schema;
    svc.queries.cursors.lock().remove(&cursor.id);
    svc.queries.remember(cursor, how);
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CancelIn {
    query_id: Option<String>,
}

/// Whether `principal` may cancel a query of `owner` that read `reads`: its owner, an operator,
/// or an admin of every database it reads.
fn may_cancel(principal: &Principal, owner: &str, reads: &[Read]) -> bool {
    principal.name == owner
        || principal.is_operator()
        || (!reads.is_empty()
            && reads.iter().all(|r| match r {
                Read::Database(db) => principal.can_admin(db),
                Read::Other(_) => false,
            }))
}

/// CancelQuery; every call is audited (target: the query id), refusals with outcome `denied`.
pub fn cancel_query(svc: &Service, body: &[u8], caller: Caller<'_>) -> Result<Vec<u8>, ApiError> {
    let (target, result, denied) = cancel(svc, body, caller.principal);
    let (outcome, detail) = match (&result, denied) {
        (_, Some(why)) => ("denied", why),
        (Ok(message), None) => ("ok", message.clone()),
        (Err(e), None) => ("error", e.to_string()),
    };
    caller.audit(svc, "CancelQuery", &target, outcome, &detail);
    serde_json::to_vec(&json!({"CancellationMessage": result?}))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The query id (for the audit log), the answer, and why it was refused when it was (answered
/// as an unknown id).
fn cancel(
    svc: &Service,
    body: &[u8],
    principal: &Principal,
) -> (String, Result<String, ApiError>, Option<String>) {
    let req: CancelIn = match decode(body) {
        Ok(r) => r,
        Err(e) => return (String::new(), Err(e), None),
    };
    let Some(id) = req.query_id else {
        return (String::new(), Err(required("queryId")), None);
    };
    let target: String = id.chars().take(64).collect();
    if let Err(e) = check_length(&id, "queryId", 1, Some(64)) {
        return (target, Err(e), None);
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let e = constraint_error(
            Some(&id),
            "queryId",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9]+",
        );
        return (target, Err(e), None);
    }
    let unknown = || {
        ApiError::validation(format!(
            "The query {id} does not exist or its results have expired."
        ))
    };
    let refused = |owner: &str| Some(format!("query of user {owner}"));
    let cursor = {
        let mut cursors = svc.queries.cursors.lock();
        match cursors.get(&id) {
            Some(c) if !may_cancel(principal, &c.owner, &c.reads.list()) => {
                let why = refused(&c.owner);
                return (target, Err(unknown()), why);
            }
            Some(_) => cursors.remove(&id),
            None => None,
        }
    };
    let message = match cursor {
        Some(c) => {
            c.cancelled.store(true, Ordering::SeqCst);
            svc.queries.remember(&c, Ended::Cancelled);
            "Query cancellation has been initiated."
        }
        None => match svc.queries.ended(&id) {
            Some(e) if !may_cancel(principal, &e.owner, &e.reads) => {
                return (target, Err(unknown()), refused(&e.owner));
            }
            Some(e) if e.how == Ended::Cancelled => "Query has already been cancelled.",
            Some(_) => "Query has already finished running; there was nothing to cancel.",
            None => return (target, Err(unknown()), None),
        },
    };
    (target, Ok(message.to_string()), None)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PrepareIn {
    query_string: Option<String>,
    validate_only: Option<bool>,
}

/// The `@name` parameters of a query (outside string literals, quoted identifiers and
/// comments), in order of first appearance, with their byte ranges.
pub fn parameters(sql: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        if bytes.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'@' => {
                let start = i;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if i > start + 1 {
                    out.push((sql[start..i].to_string(), start..i));
                }
            }
            _ => i += 1,
        }
    }
    out
}

pub async fn prepare_query(
    svc: &Service,
    body: &[u8],
    principal: &Arc<Principal>,
) -> Result<Vec<u8>, ApiError> {
    let req: PrepareIn = decode(body)?;
    let sql = req.query_string.ok_or_else(|| required("queryString"))?;
    check_length(&sql, "queryString", 1, Some(262_144))?;
    if req.validate_only == Some(false) {
        return Err(ApiError::validation(
            "PrepareQuery is only supported with ValidateOnly set to true.",
        ));
    }
    // Parameters become literals for planning: @scheduled_runtime a timestamp, others NULL.
    let params = parameters(&sql);
    let mut planned = String::with_capacity(sql.len());
    let mut last = 0;
    let mut names: Vec<(String, Value)> = Vec::new();
    for (name, range) in &params {
        planned.push_str(&sql[last..range.start]);
        let (literal, ty) = if name.eq_ignore_ascii_case("@scheduled_runtime") {
            ("TIMESTAMP '1970-01-01 00:00:00'", "TIMESTAMP")
        } else {
            ("NULL", "UNKNOWN")
        };
        planned.push_str(literal);
        last = range.end;
        if !names.iter().any(|(n, _)| n == name) {
            names.push((name.clone(), json!({"ScalarType": ty})));
        }
    }
    planned.push_str(&sql[last..]);

    let stream = svc.query.execute_timestream_as(&planned, principal).await?;
    let schema = stream.schema();
    drop(stream);
    let sources = column_sources(svc, &planned, principal).await;
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut c = json!({"Name": f.name(), "Type": type_json(f.data_type())});
            let (db, table, aliased) = sources.get(i).cloned().unwrap_or((None, None, false));
            if let Some(db) = db {
                c["DatabaseName"] = Value::String(db);
            }
            if let Some(t) = table {
                c["TableName"] = Value::String(t);
            }
            c["Aliased"] = Value::Bool(aliased);
            c
        })
        .collect();
    let parameters: Vec<Value> = names
        .into_iter()
        .map(|(n, t)| json!({"Name": n, "Type": t}))
        .collect();
    serde_json::to_vec(&json!({
        "QueryString": sql,
        "Columns": columns,
        "Parameters": parameters,
    }))
    .map_err(|e| ApiError::internal(e.to_string()))
}

/// For each output column: the database and table it is read from, and whether it is aliased
/// (best effort from the logical plan; empty when the plan cannot be inspected).
async fn column_sources(
    svc: &Service,
    sql: &str,
    principal: &Arc<Principal>,
) -> Vec<(Option<String>, Option<String>, bool)> {
    use datafusion::logical_expr::{Expr, LogicalPlan};
    use hourglass_query::dialect::{functions, to_datafusion, Translated};
    let Ok(Translated::Query(statement)) = to_datafusion(sql) else {
        return Vec::new();
    };
    let ctx = svc.query.session_as("", principal);
    let mut state = ctx.state();
    if functions::register_timestream(&mut state).is_err() {
        return Vec::new();
    }
    let Ok(plan) = state
        .statement_to_plan(datafusion::sql::parser::Statement::Statement(statement))
        .await
    else {
        return Vec::new();
    };
    let relation = |r: Option<&datafusion::common::TableReference>| {
        r.map(|r| (r.schema().map(str::to_string), Some(r.table().to_string())))
            .unwrap_or((None, None))
    };
    let mut top = &plan;
    loop {
        match top {
            LogicalPlan::Sort(s) => top = s.input.as_ref(),
            LogicalPlan::Limit(l) => top = l.input.as_ref(),
            _ => break,
        }
    }
    // `_col<N>` is the name the dialect gives unnamed expressions, not a user alias.
    let generated = |name: &str| {
        name.strip_prefix("_col")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    match top {
        LogicalPlan::Projection(p) => p
            .expr
            .iter()
            .map(|e| match e {
                Expr::Column(c) => {
                    let (db, t) = relation(c.relation.as_ref());
                    (db, t, false)
                }
                Expr::Alias(a) => match a.expr.as_ref() {
                    Expr::Column(c) => {
                        let (db, t) = relation(c.relation.as_ref());
                        (db, t, true)
                    }
                    _ => (None, None, !generated(&a.name)),
                },
                _ => (None, None, false),
            })
            .collect(),
        _ => plan
            .schema()
            .iter()
            .map(|(q, _)| {
                let (db, t) = relation(q);
                (db, t, false)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_found_outside_quotes_and_comments() {
        let sql = "SELECT '@no', \"@no\" FROM t WHERE time > @scheduled_runtime -- @no\n AND x = @x /* @no */ AND y = @x";
        let names: Vec<_> = parameters(sql).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["@scheduled_runtime", "@x", "@x"]);
    }
}
