//! `DELETE FROM [db.]table [WHERE …]`: the statement recognised, its records found by a query,
//! and removed by the storage engine ([`hourglass_storage::delete`]).
//!
//! The caller needs write permission on the database. Writes to the table are paused while the
//! statement runs: the query of the keys (series columns and `time`) of the records the `WHERE`
//! matches sees every write acknowledged before it, and no write lands between that query and the
//! deletion's WAL entry. The `WHERE` is any predicate of this endpoint's SQL on dimensions,
//! measures and `time`; it is evaluated on each record as queries see it (its writes merged), and
//! every write of a matching record goes. The answer is the number of records deleted.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{FromTable, Statement, TableFactor};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::TryStreamExt;
use hourglass_auth::Principal;
use hourglass_core::{Error, Result};
use hourglass_storage::schema::table_schema;
use hourglass_storage::sort::key_column_indices;

use crate::rules::DisabledRules;
use crate::{from_datafusion, QueryEngine};

/// The column of `DELETE`'s one-row answer over HTTP.
pub const ROWS_DELETED_COLUMN: &str = "rows_deleted";

/// A parsed `DELETE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteStatement {
    /// `None` when the table was named without its database.
    pub database: Option<String>,
    pub table: String,
    /// The `WHERE` predicate as SQL text (`None`: every record).
    pub predicate: Option<String>,
}

/// `Some` when `sql` is a `DELETE` statement (an error when it is one this server cannot run).
pub fn recognise(sql: &str) -> Option<Result<DeleteStatement>> {
    let first_word = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    if !first_word.eq_ignore_ascii_case("delete") {
        return None;
    }
    Some(parse(sql))
}

fn parse(sql: &str) -> Result<DeleteStatement> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| Error::invalid(format!("DELETE: {e}")))?;
    if statements.len() != 1 {
        return Err(Error::invalid("DELETE: send one statement at a time"));
    }
    let Some(Statement::Delete(delete)) = statements.pop() else {
        return Err(Error::invalid("expected a DELETE statement"));
    };
    let unsupported = |what: &str| {
        Err(Error::invalid(format!(
            "DELETE: {what} is not supported; use DELETE FROM db.table WHERE <predicate>"
        )))
    };
    if delete.using.is_some() {
        return unsupported("USING");
    }
    if delete.returning.is_some() {
        return unsupported("RETURNING");
    }
    if !delete.order_by.is_empty() || delete.limit.is_some() {
        return unsupported("ORDER BY or LIMIT");
    }
    if !delete.tables.is_empty() {
        return unsupported("a table list before FROM");
    }
    let from = match &delete.from {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    let [only] = from.as_slice() else {
        return unsupported("deleting from several tables");
    };
    if !only.joins.is_empty() {
        return unsupported("JOIN");
    }
    let TableFactor::Table { name, alias, .. } = &only.relation else {
        return unsupported("deleting from anything but a table");
    };
    if alias.is_some() {
        return unsupported("a table alias");
    }
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(|i| i.value.clone())
                .ok_or_else(|| Error::invalid(format!("DELETE: table name '{name}' is not valid")))
        })
        .collect::<Result<_>>()?;
    let (database, table) = match parts.as_slice() {
        [table] => (None, table.clone()),
        [db, table] => (Some(db.clone()), table.clone()),
        [catalog, db, table] if catalog.eq_ignore_ascii_case(crate::catalog::CATALOG_NAME) => {
            (Some(db.clone()), table.clone())
        }
        _ => {
            return Err(Error::invalid(format!(
                "DELETE: table name '{name}' is not valid; use db.table"
            )))
        }
    };
    Ok(DeleteStatement {
        database,
        table,
        predicate: delete.selection.as_ref().map(|e| e.to_string()),
    })
}

/// `"name"` with embedded quotes doubled.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl QueryEngine {
    /// Runs a `DELETE` as `principal` against `database` (the default for a table named without
    /// one); answers the number of records deleted.
    pub async fn execute_delete(
        &self,
        database: &str,
        statement: &DeleteStatement,
        principal: &Arc<Principal>,
    ) -> Result<u64> {
        let db = statement.database.as_deref().unwrap_or(database);
        let table = statement.table.as_str();
        if !principal.is_unrestricted() && !principal.can_write(db) {
            return Err(Error::permission_denied(format!(
                "user '{}' may not write to database '{db}': DELETE needs write permission",
                principal.name
            )));
        }
        let def = self
            .engine
            .catalog
            .snapshot()
            .table(db, table)
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!("DELETE: table '{db}.{table}' does not exist"))
            })?;
        let schema = table_schema(&def);
        let key_columns: Vec<String> = key_column_indices(&schema)
            .into_iter()
            .map(|i| quoted(schema.field(i).name()))
            .collect();
        let keys_sql = format!(
            "SELECT {} FROM {}.{}{}",
            key_columns.join(", "),
            quoted(db),
            quoted(table),
            statement
                .predicate
                .as_ref()
                .map(|p| format!(" WHERE {p}"))
                .unwrap_or_default()
        );
        let pause = self.engine.pause_writes(db, table).await?;
        let stream = self
            .execute_with_rules(
                db,
                &keys_sql,
                &Arc::new(Principal::unrestricted()),
                DisabledRules::default(),
            )
            .await?;
        let keys: Vec<RecordBatch> = stream.try_collect().await.map_err(from_datafusion)?;
        let outcome = self.engine.delete_records(&pause, &keys).await?;
        drop(pause);
        tracing::info!(
            table = %format!("{db}.{table}"),
            records = outcome.records,
            memory_rows = outcome.memory_rows,
            file_rows = outcome.file_rows,
            files_rewritten = outcome.files_rewritten,
            "DELETE"
        );
        Ok(outcome.records)
    }
}

/// `DELETE`'s answer as a one-row result (`rows_deleted`), for endpoints that answer with rows.
pub fn rows_deleted_stream(rows: u64) -> Result<SendableRecordBatchStream> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        ROWS_DELETED_COLUMN,
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![rows as i64]))],
    )
    .map_err(|e| Error::internal(e.to_string()))?;
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter([Ok(batch)]),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(sql: &str) -> Result<DeleteStatement> {
        recognise(sql).expect("recognised")
    }

    #[test]
    fn delete_statements_are_recognised_with_their_table_and_predicate() {
        assert!(recognise("SELECT 1").is_none());
        assert!(recognise("  deleted_rows").is_none());
        let d = parsed("DELETE FROM db.cpu WHERE host = 'a' AND time < now()").unwrap();
        assert_eq!(d.database.as_deref(), Some("db"));
        assert_eq!(d.table, "cpu");
        assert_eq!(d.predicate.as_deref(), Some("host = 'a' AND time < now()"));
        let d = parsed("delete from \"My Table\"").unwrap();
        assert_eq!(
            (d.database, d.table, d.predicate),
            (None, "My Table".into(), None)
        );
        let d = parsed("DELETE FROM hourglass.db.t WHERE x > 1").unwrap();
        assert_eq!(d.database.as_deref(), Some("db"));
    }

    #[test]
    fn unsupported_forms_are_refused_by_name() {
        for (sql, what) in [
            ("DELETE FROM t USING u WHERE t.a = u.a", "USING"),
            ("DELETE FROM t WHERE a = 1 RETURNING *", "RETURNING"),
            ("DELETE FROM t AS x WHERE x.a = 1", "alias"),
            ("DELETE FROM a.b.c.d", "not valid"),
            ("DELETE FROM t; DELETE FROM u", "one statement"),
        ] {
            let e = parsed(sql).expect_err(sql);
            assert!(e.message.contains(what), "{sql}: {}", e.message);
        }
    }
}
