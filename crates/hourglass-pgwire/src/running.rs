//! A query started on a connection, read batch by batch under the statement's time limit and
//! the connection's cancel key: the one way a plain query ([`crate::Service`]'s `run`), a cursor
//! ([`crate::cursors`]) and `COPY ... TO STDOUT` ([`crate::copy`]) start DataFusion and pull
//! its batches. Writes are refused before anything runs (the endpoint is read-only), and maps,
//! which PostgreSQL lacks, come out as text ([`as_text`]). Rows are encoded here too, with
//! nanosecond text timestamps when the session asked for them ([`timestamp_text`]). Each query
//! counts in the query engine's `hourglass_queries_total`, and in `hourglass_query_errors_total`
//! when it fails.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;
use hourglass_query::session::QueryCounters;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::errors::{self, from_datafusion, pg_error};
use crate::timestamp_text::{self, Precision};
use crate::{as_text, Connection};

/// A started query's batch stream.
pub struct RunningQuery {
    /// The schema rows are encoded from (maps made text).
    schema: SchemaRef,
    /// `Some` when maps are turned into text on the way out.
    text: Option<SchemaRef>,
    batches: SendableRecordBatchStream,
    cancel: watch::Receiver<u64>,
    deadline: Instant,
    timeout: Duration,
    /// The stream ended, failed or ran out of time: nothing more is read.
    done: bool,
    /// The session's `hourglass.timestamp_precision` when the query started.
    precision: Precision,
    /// The query engine's counters (`hourglass_queries_total`, `hourglass_query_errors_total`):
    /// the query is counted when it starts, and as failed once, at its first error.
    counters: Arc<QueryCounters>,
}

impl RunningQuery {
    /// Starts `plan` (refusing writes with `25006`); the time limit counts from here, and a
    /// cancel request from now on stops it.
    pub async fn start(
        conn: &Connection,
        plan: LogicalPlan,
        timeout: Duration,
    ) -> PgWireResult<RunningQuery> {
        Self::begin(conn, plan, false, timeout).await
    }

    /// [`RunningQuery::start`] for a plan optimised already (a plan-cache template bound to the
    /// statement's literals): it goes straight to the physical planner.
    pub async fn start_optimized(
        conn: &Connection,
        plan: LogicalPlan,
        timeout: Duration,
    ) -> PgWireResult<RunningQuery> {
        Self::begin(conn, plan, true, timeout).await
    }

    async fn begin(
        conn: &Connection,
        plan: LogicalPlan,
        optimized: bool,
        timeout: Duration,
    ) -> PgWireResult<RunningQuery> {
        if matches!(
            plan,
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)
        ) {
            return Err(pg_error(
                "25006",
                "Hourglass's PostgreSQL endpoint is read-only: write with line protocol over HTTP",
            ));
        }
        conn.counters.queries.fetch_add(1, Ordering::Relaxed);
        let started = Self::begin_counted(conn, plan, optimized, timeout).await;
        if started.is_err() {
            conn.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        started
    }

    async fn begin_counted(
        conn: &Connection,
        plan: LogicalPlan,
        optimized: bool,
        timeout: Duration,
    ) -> PgWireResult<RunningQuery> {
        let deadline = Instant::now() + timeout;
        let precision = Precision::of_setting(conn.state.param(timestamp_text::SETTING).as_deref());
        let mut cancel = conn.cancel.subscribe();
        cancel.borrow_and_update();
        let start = async {
            // PostgreSQL's column names where the plan carries them ([`crate::column_names`]).
            let schema = crate::column_names::pg_schema(plan.schema().as_arrow());
            let stream = if optimized {
                hourglass_query::plan_path::execute_optimized(conn.ctx.state(), &plan).await?
            } else {
                hourglass_query::plan_path::execute_plan(&conn.ctx, plan).await?
            };
            Ok::<_, datafusion::error::DataFusionError>((schema, stream))
        };
        let (schema, batches) = tokio::select! {
            r = tokio::time::timeout_at(deadline, start) => match r {
                Ok(r) => r.map_err(from_datafusion)?,
                Err(_) => return Err(time_limit(timeout)),
            },
            _ = cancel.changed() => return Err(canceled()),
        };
        let text = as_text::text_schema(&schema);
        let schema = text.clone().unwrap_or_else(|| Arc::new(schema));
        Ok(RunningQuery {
            schema,
            text,
            batches,
            cancel,
            deadline,
            timeout,
            done: false,
            precision,
            counters: conn.counters.clone(),
        })
    }

    /// The schema of the batches [`Self::next_batch`] returns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The columns as described to the client in `format`.
    pub fn fields(&self, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
        arrow_pg::datatypes::arrow_schema_to_pg_fields(&self.schema, format, None)
    }

    /// The encoder of this query's rows for `fields` (see [`encode_rows`]).
    pub fn encoder(&self) -> RowEncoder {
        RowEncoder {
            precision: self.precision,
        }
    }

    /// The next batch (maps made text), `None` at the end; past the time limit or after a
    /// cancel request an error, and nothing after an error.
    pub async fn next_batch(&mut self) -> PgWireResult<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        let next = self.next_batch_uncounted().await;
        if next.is_err() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        next
    }

    async fn next_batch_uncounted(&mut self) -> PgWireResult<Option<RecordBatch>> {
        let timeout = self.timeout;
        let next = tokio::select! {
            r = tokio::time::timeout_at(self.deadline, self.batches.next()) => {
                r.map_err(|_| time_limit(timeout))
            }
            _ = self.cancel.changed() => Err(canceled()),
        };
        let batch = match next {
            Ok(Some(Ok(batch))) => batch,
            Ok(None) => {
                self.done = true;
                return Ok(None);
            }
            Ok(Some(Err(e))) => {
                self.done = true;
                return Err(from_datafusion(e));
            }
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        match &self.text {
            Some(schema) => as_text::text_batch(&batch, schema)
                .map(Some)
                .map_err(|e| pg_error(errors::DATA_EXCEPTION, e.to_string())),
            None => Ok(Some(batch)),
        }
    }

    /// Fails once the time limit has passed, whether or not rows are still to be read (a
    /// cursor's `FETCH` of rows it already holds), and stops the query.
    pub fn check_deadline(&mut self) -> PgWireResult<()> {
        if Instant::now() >= self.deadline {
            if !self.done {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            self.done = true;
            return Err(time_limit(self.timeout));
        }
        Ok(())
    }

    /// Forgets cancel requests sent before now (they were for earlier statements).
    pub fn forget_earlier_cancels(&mut self) {
        self.cancel.borrow_and_update();
    }
}

/// Encodes a query's batches to rows for the fields described to the client.
#[derive(Debug, Clone, Copy)]
pub struct RowEncoder {
    precision: Precision,
}

impl RowEncoder {
    /// `batch` as data rows for `fields` (text timestamps with nanoseconds when asked for).
    pub fn encode_rows(
        self,
        fields: &Arc<Vec<FieldInfo>>,
        batch: RecordBatch,
    ) -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> {
        let batch = match self.precision {
            Precision::Microsecond => batch,
            Precision::Nanosecond => match timestamp_text::with_nanosecond_text(batch, fields) {
                Ok(batch) => batch,
                Err(e) => {
                    return Box::new(std::iter::once(Err(pg_error(
                        errors::DATA_EXCEPTION,
                        e.to_string(),
                    ))))
                }
            },
        };
        Box::new(arrow_pg::datatypes::encode_recordbatch(
            fields.clone(),
            batch,
        ))
    }
}

pub(crate) fn time_limit(timeout: Duration) -> PgWireError {
    pg_error(
        errors::QUERY_CANCELED,
        format!(
            "canceling statement: query exceeded the {} s time limit",
            timeout.as_secs()
        ),
    )
}

pub(crate) fn canceled() -> PgWireError {
    pg_error(
        errors::QUERY_CANCELED,
        "canceling statement due to user request",
    )
}
