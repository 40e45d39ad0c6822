//! The query engine: one DataFusion session per query over the shared runtime (object store
//! registered once, memory pool bounding every query together).

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use hourglass_core::{Error, Result};
use hourglass_storage::{Engine, STORE_URL};

use crate::catalog::{DatabasesCatalog, CATALOG_NAME};
use crate::error::from_datafusion;

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

/// Plans and runs SQL against an [`Engine`].
#[derive(Debug, Clone)]
pub struct QueryEngine {
    pub engine: Arc<Engine>,
    runtime: Arc<RuntimeEnv>,
    pub limits: QueryLimits,
}

impl QueryEngine {
    pub fn new(engine: Arc<Engine>, limits: QueryLimits) -> Result<QueryEngine> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(from_datafusion)?;
        let url = url::Url::parse(STORE_URL).map_err(|e| Error::internal(e.to_string()))?;
        runtime.register_object_store(&url, engine.magnetic.store.clone());
        Ok(QueryEngine {
            engine,
            runtime,
            limits,
        })
    }

    /// A session whose default schema is `database` (which need not exist for `db.table` or
    /// `SHOW`-style queries).
    pub fn session(&self, database: &str) -> SessionContext {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, database)
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false)
            .with_target_partitions(2);
        config.options_mut().sql_parser.enable_ident_normalization = false;
        config.options_mut().execution.parquet.pushdown_filters = true;
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        ctx.register_catalog(
            CATALOG_NAME,
            Arc::new(DatabasesCatalog {
                engine: self.engine.clone(),
            }),
        );
        crate::dialect::register(&ctx);
        ctx
    }

    /// Plans `sql` against `database` and starts executing it; batches stream from the result,
    /// which ends with a resources-exhausted error once the query time limit has passed.
    pub async fn execute(&self, database: &str, sql: &str) -> Result<SendableRecordBatchStream> {
        crate::limits::check_sql_shape(sql)?;
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let ctx = self.session(database);
        let stream = self
            .within_limit(" while planning", async {
                let df = ctx.sql(sql).await.map_err(from_datafusion)?;
                df.execute_stream().await.map_err(from_datafusion)
            })
            .await?;
        Ok(until_deadline(stream, deadline, self.limits.timeout))
    }

    /// Plans a Timestream-dialect query (the Timestream Query API's `QueryString`) and starts
    /// executing it.
    pub async fn execute_timestream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        crate::limits::check_sql_shape(sql)?;
        let ctx = self.session("");
        self.within_limit(
            " while planning",
            crate::dialect::execute(&ctx, &self.engine, sql),
        )
        .await
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
