//! Who may run queries at all: a principal with a `read` (or `admin`) grant on some database, or
//! any caller when authentication is off ([`Principal::is_unrestricted`]). A write-only key (an
//! ingest agent's) may not run queries, not even `SELECT 1`: a query needs no table to burn the
//! server's CPU and memory, so the right to run one is the right to read.
//!
//! The check is made where a query session is created for a principal
//! ([`crate::QueryEngine::session_as`]), so every interface gets it: `/api/v3/query_sql`, the
//! Timestream Query API and the PostgreSQL wire. [`check_may_query`] answers up front (the HTTP
//! and Timestream paths call it before parsing); a session made for a principal that may not
//! query is also fenced ([`deny_queries`]): planning any query in it fails with the same
//! permission-denied error, before any expression is evaluated (the PostgreSQL wire keeps one
//! session per connection and plans through it directly). The error's kind, `PermissionDenied`,
//! is mapped by each protocol: HTTP 403, Timestream `AccessDeniedException`, SQLSTATE 42501.
//!
//! Also decided there, for the session's lifetime: whether it may switch off the bounds on the
//! values functions build ([`may_lift_value_bounds`]: operators and callers with authentication
//! off only).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_plan::ExecutionPlan;
use hourglass_auth::{Permission, Principal};
use hourglass_core::{Error, Result};

use crate::error::to_datafusion;

/// Whether `principal` may run queries: authentication off, or a grant that allows reading some
/// database (`read` or `admin`, on one database or on `*`).
pub fn may_query(principal: &Principal) -> bool {
    principal.is_unrestricted()
        || principal
            .grants
            .iter()
            .any(|g| g.permission.implies(Permission::Read))
}

/// Whether a session made for `principal` may switch off the bounds on the values functions
/// build (the rule `value_bounds`, [`crate::bounded_functions`]): they are a security limit, so
/// only an operator (`admin` on `*`) or a caller with authentication off may lift them.
pub fn may_lift_value_bounds(principal: &Principal) -> bool {
    principal.is_unrestricted() || principal.is_operator()
}

/// [`may_query`] as a result: the permission-denied error every interface maps (HTTP 403,
/// Timestream `AccessDeniedException`, SQLSTATE 42501).
pub fn check_may_query(principal: &Principal) -> Result<()> {
    if may_query(principal) {
        return Ok(());
    }
    Err(Error::permission_denied(format!(
        "user '{}' may not run queries: it holds no read grant on any database",
        principal.name
    )))
}

/// Fences a session made for `principal` when it may not run queries: analysing any plan fails
/// (before the optimizer folds a constant), and so does physical planning (`EXPLAIN`, whose
/// analysis errors DataFusion turns into text). A principal that may query gets `state` back as
/// it was.
pub fn deny_queries(state: SessionState, principal: &Principal) -> SessionState {
    if may_query(principal) {
        return state;
    }
    let denied = Arc::new(Denied {
        user: principal.name.clone(),
    });
    let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![denied.clone()];
    rules.extend(state.analyzer().rules.iter().cloned());
    SessionStateBuilder::new_from_existing(state)
        .with_analyzer_rules(rules)
        .with_query_planner(denied)
        .build()
}

/// The fence of [`deny_queries`]: an analyzer rule and a query planner that refuse.
#[derive(Debug)]
struct Denied {
    user: String,
}

impl Denied {
    fn error(&self) -> datafusion::error::DataFusionError {
        to_datafusion(Error::permission_denied(format!(
            "user '{}' may not run queries: it holds no read grant on any database",
            self.user
        )))
    }
}

impl AnalyzerRule for Denied {
    fn analyze(&self, _plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        Err(self.error())
    }

    fn name(&self) -> &str {
        "read_grant"
    }
}

#[async_trait]
impl QueryPlanner for Denied {
    async fn create_physical_plan(
        &self,
        _logical_plan: &LogicalPlan,
        _session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(self.error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hourglass_auth::Grant;
    use hourglass_core::ErrorKind;

    fn user(grants: &[(&str, Permission)]) -> Principal {
        Principal::user(
            "u",
            grants
                .iter()
                .map(|(db, p)| Grant {
                    database: db.to_string(),
                    permission: *p,
                })
                .collect(),
        )
    }

    #[test]
    fn only_readers_admins_and_unauthenticated_callers_may_query() {
        assert!(may_query(&Principal::unrestricted()));
        assert!(may_query(&user(&[("a", Permission::Read)])));
        assert!(may_query(&user(&[("*", Permission::Admin)])));
        assert!(may_query(&user(&[
            ("a", Permission::Write),
            ("b", Permission::Read)
        ])));
        assert!(!may_query(&user(&[("a", Permission::Write)])));
        assert!(!may_query(&user(&[("*", Permission::Write)])));
        assert!(!may_query(&user(&[])));
        let e = check_may_query(&user(&[("a", Permission::Write)])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert!(e.message.contains("no read grant"), "{e}");
    }

    #[test]
    fn only_operators_and_unauthenticated_callers_may_lift_the_value_bounds() {
        assert!(may_lift_value_bounds(&Principal::unrestricted()));
        assert!(may_lift_value_bounds(&user(&[("*", Permission::Admin)])));
        assert!(!may_lift_value_bounds(&user(&[("a", Permission::Admin)])));
        assert!(!may_lift_value_bounds(&user(&[("*", Permission::Read)])));
        assert!(!may_lift_value_bounds(&user(&[("*", Permission::Write)])));
        assert!(!may_lift_value_bounds(&user(&[])));
    }
}
