//! The Timestream SQL dialect, as a front end over sqlparser's tokens and AST.
//!
//! [`to_datafusion`] rewrites a Timestream query into DataFusion SQL; [`register`] adds the
//! dialect's functions to a session. (Placeholder: identity rewrite, no functions yet.)

use datafusion::prelude::SessionContext;
use hourglass_core::Result;

/// Rewrites a Timestream-dialect query into a statement DataFusion plans.
pub fn to_datafusion(sql: &str) -> Result<String> {
    Ok(sql.to_string())
}

/// Registers the dialect's functions (`bin`, `ago`, ...) in a session.
pub fn register(_ctx: &SessionContext) {}
