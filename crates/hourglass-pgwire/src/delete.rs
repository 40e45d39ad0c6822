//! `DELETE FROM …` over the PostgreSQL wire ([`hourglass_query::delete`]): run as the session's
//! principal (write permission needed), audited whether it succeeds or not, answered with the
//! command tag `DELETE n` (n records deleted), as PostgreSQL answers it.

use hourglass_auth::Security;
use hourglass_query::delete::DeleteStatement;
use hourglass_query::QueryEngine;
use pgwire::api::results::{Response, Tag};
use pgwire::error::PgWireResult;

use crate::{errors, Connection};

/// Runs `statement` on `conn`'s database (the default for a table named without one).
pub(crate) async fn run(
    query: &QueryEngine,
    security: &Security,
    conn: &Connection,
    statement: &DeleteStatement,
) -> PgWireResult<Response> {
    let principal = conn.catalog.principal();
    let target = format!(
        "{}.{}",
        statement.database.as_deref().unwrap_or(&conn.database),
        statement.table
    );
    let result = query
        .execute_delete(&conn.database, statement, &principal)
        .await;
    let (outcome, detail) = match &result {
        Ok(rows) => ("ok", format!("{rows} rows deleted")),
        Err(e) => ("error", e.message.clone()),
    };
    security.audit(
        &principal.name,
        &conn.peer,
        "postgres",
        "Delete",
        &target,
        outcome,
        &detail,
    );
    let rows = result.map_err(errors::from_error)?;
    Ok(Response::Execution(
        Tag::new("DELETE").with_rows(usize::try_from(rows).unwrap_or(usize::MAX)),
    ))
}
