//! The PostgreSQL wire's use of Hourglass's plan cache ([`hourglass_query::plan_cache`]): a
//! query sent with its literals written in (the simple protocol, or an extended-protocol Parse
//! without parameters, as psycopg, pgjdbc and Grafana send dashboard queries) is planned from its
//! shape's template. Templates are kept per database, principal and planning settings; a
//! connection's planning settings are its front end and every DataFusion configuration entry of
//! its session ([`PlanSettings`]), so a template made on one connection serves another only
//! where both would plan the statement alike.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use hourglass_query::plan_cache::Session;
use hourglass_query::QueryEngine;
use parking_lot::Mutex;

use crate::Connection;

/// A connection's planning settings, worked out when first needed and again after
/// [`PlanSettings::changed`] (a `SET hourglass.*`, or the session rebuilt for new grants).
#[derive(Debug, Default)]
pub struct PlanSettings(Mutex<Option<Arc<str>>>);

impl PlanSettings {
    /// The settings of `ctx` (the connection's session) as one text.
    pub fn of(&self, ctx: &SessionContext) -> Arc<str> {
        let mut memo = self.0.lock();
        if let Some(settings) = memo.as_ref() {
            return Arc::clone(settings);
        }
        let state = ctx.state_ref();
        let mut text = String::from("postgresql");
        for entry in state.read().config_options().entries() {
            let _ = write!(
                text,
                "\n{}={}",
                entry.key,
                entry.value.as_deref().unwrap_or("")
            );
        }
        let settings: Arc<str> = text.into();
        *memo = Some(Arc::clone(&settings));
        settings
    }

    /// The session's configuration changed: work the settings out again when next needed.
    pub fn changed(&self) {
        *self.0.lock() = None;
    }
}

/// `statement`'s optimised plan from its shape's template on `conn` (whose session state is
/// `state`), or `None` when the statement is to be planned the usual way.
pub async fn bound_plan(
    query: &QueryEngine,
    conn: &Connection,
    state: &SessionState,
    statement: &DFStatement,
) -> DfResult<Option<LogicalPlan>> {
    let principal = format!("{:?}", conn.catalog.principal());
    let settings = conn.plan_settings.of(&conn.ctx);
    let session = Session {
        database: &conn.database,
        principal: &principal,
        settings: &settings,
        catalog_generation: query.engine.catalog.snapshot().generation,
    };
    // The endpoint refuses anything but queries when they run; templates are made of queries.
    query
        .plan_cache
        .bound_plan(state, &session, statement, &SQLOptions::new())
        .await
}
