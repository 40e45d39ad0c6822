//! What the evaluator asks of the server: run a rule's query and return typed columns and rows
//! ([`QueryRunner`]). The server plugs in its query engine; tests use a fake.

use async_trait::async_trait;

use crate::rule::AlertRule;

/// One cell of a result row. The runner renders anything neither numeric nor NULL (strings,
/// timestamps, booleans) as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Number(f64),
    Text(String),
}

/// A result column: its name and whether its type is numeric (integer, float, decimal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub numeric: bool,
}

/// A query result: columns, and rows with one cell per column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// Runs a rule's query (`rule.query` in `rule.dialect`, against `rule.database`, as
/// `rule.owner`). Errors are messages shown as the rule's `lastError`.
#[async_trait]
pub trait QueryRunner: Send + Sync {
    async fn run(&self, rule: &AlertRule) -> Result<QueryResult, String>;
}
