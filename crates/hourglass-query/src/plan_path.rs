//! From a logical plan to a running stream, shared by every front end that plans SQL (HTTP SQL,
//! the PostgreSQL wire, the Timestream dialect): DataFusion's optimiser, the number of
//! partitions ([`crate::rules::one_partition`]), the physical plan and its execution.
//!
//! It does what `DataFrame::execute_stream` does, with the partition count chosen between the
//! logical and the physical plan. Statements DataFusion carries out itself (DDL, `SET`,
//! `PREPARE`, `EXECUTE`) still go through `SessionContext::execute_logical_plan`.

use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use datafusion::prelude::SessionContext;

use crate::rules::{one_partition, Rule};

/// Plans `plan` in `ctx` and starts executing it.
pub async fn execute_plan(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> DfResult<SendableRecordBatchStream> {
    if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)) {
        return ctx.execute_logical_plan(plan).await?.execute_stream().await;
    }
    execute_in(ctx.state(), plan).await
}

/// Plans a query's `plan` in `state` (a session's state, which this may change: see
/// [`physical_plan`]) and starts executing it.
pub async fn execute_in(
    state: SessionState,
    plan: LogicalPlan,
) -> DfResult<SendableRecordBatchStream> {
    let optimized = state.optimize(&plan)?;
    execute_optimized(state, &optimized).await
}

/// Starts executing `optimized` (an optimised logical plan, such as a bound plan-cache template)
/// in `state`, planned physically by [`physical_plan`].
pub async fn execute_optimized(
    mut state: SessionState,
    optimized: &LogicalPlan,
) -> DfResult<SendableRecordBatchStream> {
    let physical = physical_plan(&mut state, optimized).await?;
    execute_stream(physical, Arc::new(TaskContext::from(&state)))
}

/// The physical plan of `optimized` (an optimised logical plan), on one partition where
/// [`one_partition`] applies: `state`'s `target_partitions` is set to 1 then, so that the plan's
/// execution uses the same.
pub async fn physical_plan(
    state: &mut SessionState,
    optimized: &LogicalPlan,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    if Rule::OnePartition.enabled(state.config_options())
        && one_partition::reads_few_series(optimized)
    {
        state.config_mut().options_mut().execution.target_partitions = 1;
    }
    state
        .query_planner()
        .clone()
        .create_physical_plan(optimized, state)
        .await
}
