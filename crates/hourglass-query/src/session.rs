//! The query engine: one DataFusion session per query over the shared runtime (object store
//! registered once, memory pool bounding every query together).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};
use hourglass_auth::Principal;
use hourglass_core::{Error, Result};
use hourglass_storage::{Engine, STORE_URL};

use crate::catalog::{DatabasesCatalog, CATALOG_NAME};
use crate::error::from_datafusion;
use crate::plan_cache::{self, PlanCache};
use crate::rules::DisabledRules;
use datafusion::sql::parser::Statement as DFStatement;

/// The state sessions are cloned from: settings, the Timestream dialect's functions,
/// Hourglass's analyzer rules and the bounds on what functions build ([`crate::bounded_functions`]),
/// and no catalog.
fn session_template(runtime: Arc<RuntimeEnv>, limits: &QueryLimits) -> SessionState {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG_NAME, "")
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_target_partitions(2);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    config.options_mut().execution.parquet.pushdown_filters = true;
    // The magnetic store writes no bloom filters (`docs/format/magnetic-store.md`), yet with this
    // on DataFusion evaluates each query's pruning predicate against every row group's (absent)
    // bloom filters: 3.7 % of the server's CPU with 32 dashboard clients (`docs/benchmarks.md`).
    config.options_mut().execution.parquet.bloom_filter_on_read = false;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    crate::dialect::register(&ctx);
    crate::bounded_functions::install(crate::rules::install(ctx.state()), limits)
}

/// Limits applied to every query.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Memory all running queries may use together (DataFusion memory pool).
    pub memory_bytes: usize,
    /// Wall-clock limit of one query, from planning to the last batch.
    pub timeout: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 2 << 30,
            timeout: Duration::from_secs(300),
        }
    }
}

/// Statements run through [`QueryEngine::execute_with_rules`] and
/// [`QueryEngine::execute_timestream_as`] (HTTP SQL, the Timestream Query API, PromQL, alert
/// rules) and those that failed, in planning or while streaming: `/metrics`'
/// `hourglass_queries_total` and `hourglass_query_errors_total`.
#[derive(Debug, Default)]
pub struct QueryCounters {
    pub queries: AtomicU64,
    pub errors: AtomicU64,
}

/// Plans and runs SQL against an [`Engine`].
#[derive(Debug, Clone)]
pub struct QueryEngine {
    pub engine: Arc<Engine>,
    pub limits: QueryLimits,
    /// Configuration, functions and rules every session starts from: cloning it costs a fraction
    /// of building a session (which registers several hundred functions).
    template: Arc<SessionState>,
    /// Shared by every clone of this engine.
    pub counters: Arc<QueryCounters>,
    /// Optimised plans of the statement shapes seen ([`crate::plan_cache`]).
    pub plan_cache: Arc<PlanCache>,
}

impl QueryEngine {
    pub fn new(engine: Arc<Engine>, limits: QueryLimits) -> Result<QueryEngine> {
        // Footers with page indexes of every file queried recently (see `page_index_cache`).
        let metadata_cache = (limits.memory_bytes / 8).clamp(16 << 20, 512 << 20);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .with_metadata_cache_limit(metadata_cache)
            .build_arc()
            .map_err(from_datafusion)?;
        let url = url::Url::parse(STORE_URL).map_err(|e| Error::internal(e.to_string()))?;
        runtime.register_object_store(&url, engine.magnetic.store.clone());
        let template = Arc::new(session_template(runtime, &limits));
        Ok(QueryEngine {
            template,
            counters: Arc::default(),
            plan_cache: Arc::default(),
            engine,
            limits,
        })
    }

    /// A session whose default schema is `database` (which need not exist for `db.table` or
    /// `SHOW`-style queries), seeing every database (authentication off).
    pub fn session(&self, database: &str) -> SessionContext {
        self.session_as(database, &Arc::new(Principal::unrestricted()))
    }

    /// A session that sees only the databases `principal` may read; one for a principal that
    /// may not run queries at all refuses every query ([`crate::access`]).
    pub fn session_as(&self, database: &str, principal: &Arc<Principal>) -> SessionContext {
        let mut state = crate::access::deny_queries((*self.template).clone(), principal);
        crate::bounded_functions::fresh_ledger(&mut state);
        // Whether `value_bounds` may be switched off here is the principal's, fixed now: no
        // setting changes it.
        crate::rules::allow_lifting_value_bounds(
            &mut state,
            crate::access::may_lift_value_bounds(principal),
        );
        state.config_mut().options_mut().catalog.default_schema = database.to_string();
        // A catalog list of its own: what this session sees depends on its principal.
        state.register_catalog_list(Arc::new(MemoryCatalogProviderList::new()));
        let ctx = SessionContext::new_with_state(state);
        ctx.register_catalog(
            CATALOG_NAME,
            Arc::new(DatabasesCatalog::new(
                self.engine.clone(),
                principal.clone(),
            )),
        );
        ctx
    }

    /// Plans `sql` against `database` and starts executing it; batches stream from the result,
    /// which ends with a resources-exhausted error once the query time limit has passed.
    pub async fn execute(&self, database: &str, sql: &str) -> Result<SendableRecordBatchStream> {
        self.execute_as(database, sql, &Arc::new(Principal::unrestricted()))
            .await
    }

    /// [`QueryEngine::execute`] as `principal`: only readable databases are visible, and an
    /// authenticated principal may run queries only (no DDL, DML, `COPY` or `SET`).
    pub async fn execute_as(
        &self,
        database: &str,
        sql: &str,
        principal: &Arc<Principal>,
    ) -> Result<SendableRecordBatchStream> {
        self.execute_with_rules(database, sql, principal, DisabledRules::default())
            .await
    }

    /// [`QueryEngine::execute_as`] with some of Hourglass's plan rules switched off
    /// ([`crate::rules`]; the differential fuzzer's oracle).
    pub async fn execute_with_rules(
        &self,
        database: &str,
        sql: &str,
        principal: &Arc<Principal>,
        disabled: DisabledRules,
    ) -> Result<SendableRecordBatchStream> {
        let started = self
            .plan_and_start(database, sql, principal, disabled)
            .await;
        self.counted(started)
    }

    /// [`QueryEngine::execute_with_rules`] before it is counted.
    async fn plan_and_start(
        &self,
        database: &str,
        sql: &str,
        principal: &Arc<Principal>,
        disabled: DisabledRules,
    ) -> Result<SendableRecordBatchStream> {
        crate::access::check_may_query(principal)?;
        crate::limits::check_sql_shape(sql)?;
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let ctx = self.session_as(database, principal);
        if !disabled.is_empty() {
            let state = ctx.state_ref();
            crate::rules::set_disabled(&mut state.write(), disabled).map_err(from_datafusion)?;
        }
        let options = if principal.is_unrestricted() {
            SQLOptions::new()
        } else {
            read_only_options()
        };
        let stream = self
            .within_limit(" while planning", async {
                let state = ctx.state();
                let dialect = state.config().options().sql_parser.dialect;
                let mut statement = state
                    .sql_to_statement(sql, &dialect)
                    .map_err(from_datafusion)?;
                crate::rules::rewrite_statement(&mut statement, state.config().options())?;
                if let Some(stream) = self
                    .start_from_template(&state, database, principal, &statement, &options)
                    .await?
                {
                    return Ok(stream);
                }
                let plan = state
                    .statement_to_plan(statement)
                    .await
                    .map_err(from_datafusion)?;
                options.verify_plan(&plan).map_err(from_datafusion)?;
                crate::plan_path::execute_plan(&ctx, plan)
                    .await
                    .map_err(from_datafusion)
            })
            .await?;
        Ok(until_deadline(stream, deadline, self.limits.timeout))
    }

    /// Starts `statement` from its shape's template ([`crate::plan_cache`]) when one applies;
    /// `None` otherwise (the statement is then planned on its own).
    async fn start_from_template(
        &self,
        state: &SessionState,
        database: &str,
        principal: &Arc<Principal>,
        statement: &DFStatement,
        options: &SQLOptions,
    ) -> Result<Option<SendableRecordBatchStream>> {
        // A session here is made fresh for each statement: only its switched-off rules vary.
        let settings: Arc<str> = format!(
            "http disabled_rules={}",
            crate::rules::disabled_rules_setting(state.config_options())
        )
        .into();
        let session = plan_cache::Session {
            database,
            principal: &format!("{principal:?}"),
            settings: &settings,
            catalog_generation: self.engine.catalog.snapshot().generation,
        };
        let bound = self
            .plan_cache
            .bound_plan(state, &session, statement, options)
            .await
            .map_err(from_datafusion)?;
        let Some(plan) = bound else {
            return Ok(None);
        };
        crate::plan_path::execute_optimized(state.clone(), &plan)
            .await
            .map(Some)
            .map_err(from_datafusion)
    }

    /// Plans a Timestream-dialect query (the Timestream Query API's `QueryString`) and starts
    /// executing it.
    pub async fn execute_timestream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        self.execute_timestream_as(sql, &Arc::new(Principal::unrestricted()))
            .await
    }

    /// [`QueryEngine::execute_timestream`] as `principal` (only readable databases visible).
    pub async fn execute_timestream_as(
        &self,
        sql: &str,
        principal: &Arc<Principal>,
    ) -> Result<SendableRecordBatchStream> {
        let started = async {
            crate::access::check_may_query(principal)?;
            crate::limits::check_sql_shape(sql)?;
            let ctx = self.session_as("", principal);
            self.within_limit(
                " while planning",
                crate::dialect::execute(&ctx, &self.engine, sql),
            )
            .await
        }
        .await;
        self.counted(started)
    }

    /// Counts a statement in [`QueryEngine::counters`]: an error now, or the first error its
    /// stream yields.
    fn counted(
        &self,
        started: Result<SendableRecordBatchStream>,
    ) -> Result<SendableRecordBatchStream> {
        use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
        use futures::StreamExt;
        self.counters.queries.fetch_add(1, Ordering::Relaxed);
        let stream = started.inspect_err(|_| {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        })?;
        let schema = stream.schema();
        let counters = self.counters.clone();
        let mut failed = false;
        let watched = stream.inspect(move |item| {
            if item.is_err() && !failed {
                failed = true;
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, watched)))
    }

    /// Runs a Timestream-dialect query and collects every batch (tests, small results).
    pub async fn collect_timestream(&self, sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        let stream = self.execute_timestream(sql).await?;
        self.collect_stream(stream).await
    }

    /// Runs `sql` and collects every batch (tests, small results).
    pub async fn collect(
        &self,
        database: &str,
        sql: &str,
    ) -> Result<Vec<arrow::array::RecordBatch>> {
        let stream = self.execute(database, sql).await?;
        self.collect_stream(stream).await
    }

    async fn collect_stream(
        &self,
        stream: SendableRecordBatchStream,
    ) -> Result<Vec<arrow::array::RecordBatch>> {
        use futures::TryStreamExt;
        self.within_limit("", async {
            stream
                .try_collect::<Vec<_>>()
                .await
                .map_err(from_datafusion)
        })
        .await
    }

    /// Runs `work` within the query time limit; `phase` completes the error message.
    async fn within_limit<T>(
        &self,
        phase: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::time::timeout(self.limits.timeout, work)
            .await
            .map_err(|_| {
                Error::exhausted(format!(
                    "query exceeded the {} s time limit{phase}",
                    self.limits.timeout.as_secs()
                ))
            })?
    }
}

/// What an authenticated principal may run: queries only.
pub fn read_only_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Ends `stream` with a resources-exhausted error when `deadline` passes before it does.
fn until_deadline(
    stream: SendableRecordBatchStream,
    deadline: tokio::time::Instant,
    limit: Duration,
) -> SendableRecordBatchStream {
    use datafusion::error::DataFusionError;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use futures::StreamExt;
    let schema = stream.schema();
    let limited = futures::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((
                Err(DataFusionError::ResourcesExhausted(format!(
                    "the query exceeded its {} s time limit",
                    limit.as_secs()
                ))),
                None,
            )),
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, limited))
}
