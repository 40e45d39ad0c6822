//! InfluxQL (InfluxDB 1.x's query language), the second front end beside the Timestream dialect
//! ([`crate::dialect`]).
//!
//! Text is parsed by our own lexer and recursive-descent parser ([`lexer`], [`parser`] into
//! [`ast`]; no maintained crate exists), with InfluxDB's error wording. Each `SELECT` is then
//! **translated to SQL of Hourglass's own dialect** ([`sql`], [`select`]) and run through
//! [`QueryEngine::execute_as`], rather than built as DataFusion `LogicalPlan`s by hand: that way
//! InfluxQL gets exactly the session set-up, catalog, permission fences (a caller sees only the
//! databases it may read; read-only plans), query memory and time limits and plan rules of
//! `/api/v3/query_sql`, and the SQL text is what the differential query fuzzer already checks.
//! Everything is quoted (identifiers `"…"`, strings `'…'`), so no InfluxQL input can change the
//! SQL's structure. What InfluxDB does per series in its iterators — cutting rows into series,
//! `fill()` ([`fill`]), `LIMIT`/`OFFSET` per series, `SLIMIT`/`SOFFSET`, selector times — is done
//! in Rust on the Arrow results; so are the functions whose answer depends on the order InfluxDB
//! reads points in (`mode()`, `integral()`: [`reduce`]; `top()`, `bottom()`, selectors beside
//! other columns: [`selectors`]). A subquery becomes a derived table of the outer statement's SQL
//! ([`subquery`]). `SHOW`, `CREATE DATABASE` and `DROP MEASUREMENT` are answered
//! from the catalog ([`show`]). Results ([`result`]) are shaped into JSON or CSV by the HTTP
//! handler (`crates/hourglass/src/http/influxql.rs`). The mapping and the known differences from
//! InfluxDB: `docs/protocols/influxql.md`.

pub mod ast;
pub mod fields;
pub mod fill;
pub mod gosort;
pub mod lexer;
pub mod parser;
pub mod reduce;
pub mod result;
pub mod select;
pub mod selectors;
pub mod show;
pub mod sql;
pub mod subquery;
pub mod timecond;
pub mod transform;

use std::sync::Arc;

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use hourglass_auth::Principal;
use hourglass_core::{Error, Result};

pub use parser::{parse_query, ParseError};
pub use result::{Series, StatementResult, Value};

use crate::{from_datafusion, QueryEngine};
use ast::{Source, Statement};
use sql::Measurement;

/// Records a statement that changed the catalog: (action, target, outcome, detail).
pub type Audit<'a> = &'a (dyn Fn(&str, &str, &str, &str) + Sync);

/// What every statement of one request runs with.
pub struct Ctx<'a> {
    pub engine: &'a QueryEngine,
    pub principal: &'a Arc<Principal>,
    /// The request's `db` (may be empty).
    pub db: &'a str,
    /// `now()`, fixed for the request, ns.
    pub now: i64,
    pub audit: Audit<'a>,
}

impl Ctx<'_> {
    /// Runs generated SQL as the caller and collects its batches.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        tracing::debug!(sql, "InfluxQL statement as SQL");
        let stream = self.engine.execute_as("", sql, self.principal).await?;
        stream.try_collect().await.map_err(from_datafusion)
    }

    /// The columns generated SQL answers (planned, not run).
    pub async fn schema(&self, sql: &str) -> Result<arrow::datatypes::SchemaRef> {
        let q = format!("SELECT * FROM ({sql}) AS \"__schema\" LIMIT 0");
        let stream = self.engine.execute_as("", &q, self.principal).await?;
        Ok(stream.schema())
    }

    /// The database a statement reads: `on`, else the request's; it must exist and be readable.
    pub fn database(&self, on: Option<&str>) -> Result<String> {
        let db = on.unwrap_or(self.db);
        if db.is_empty() {
            return Err(Error::invalid("database name required"));
        }
        self.readable(db)?;
        Ok(db.to_string())
    }

    fn readable(&self, db: &str) -> Result<()> {
        if !self.principal.can_read(db) {
            return Err(Error::permission_denied(format!(
                "error authorizing query: {} not authorized to execute statement, requires READ on {db}",
                self.principal.name
            )));
        }
        if !self
            .engine
            .engine
            .catalog
            .snapshot()
            .databases
            .contains_key(db)
        {
            return Err(Error::not_found(format!("database not found: {db}")));
        }
        Ok(())
    }

    /// The measurements `from` names (all of the database when empty), sorted by name; names
    /// that do not exist are skipped, as InfluxDB answers nothing for them.
    pub fn measurements_in(&self, on: Option<&str>, from: &[Source]) -> Result<Vec<Measurement>> {
        let catalog = self.engine.engine.catalog.snapshot();
        let mut out: Vec<Measurement> = Vec::new();
        let mut add = |db: &str, name: &str| {
            if out.iter().any(|m| m.db == db && m.name == name) {
                return;
            }
            if let Some(def) = catalog.table(db, name) {
                out.push(Measurement::from_def(db, def));
            }
        };
        if from.is_empty() {
            let db = self.database(on)?;
            if let Some(d) = catalog.databases.get(&db) {
                for name in d.tables.keys() {
                    add(&db, name);
                }
            }
        }
        for source in from {
            match source {
                Source::Measurement { db, name } => {
                    let db = self.database(db.as_deref().or(on))?;
                    add(&db, name);
                }
                Source::Regex { db, pattern } => {
                    let db = self.database(db.as_deref().or(on))?;
                    let re = fields::compile(pattern)?;
                    if let Some(d) = catalog.databases.get(&db) {
                        for name in d.tables.keys() {
                            if re.is_match(name) {
                                add(&db, name);
                            }
                        }
                    }
                }
                Source::Subquery(_) => {
                    return Err(Error::invalid(
                        "a subquery is not supported here by Hourglass's InfluxQL",
                    ))
                }
            }
        }
        out.sort_by(|a, b| (&a.name, &a.db).cmp(&(&b.name, &b.db)));
        Ok(out)
    }

    /// The measurements a `SELECT`'s `FROM` names.
    pub fn measurements(&self, from: &[Source]) -> Result<Vec<Measurement>> {
        self.measurements_in(None, from)
    }
}

/// Runs one parsed statement; its error (if any) is the statement's, as InfluxDB reports them.
pub async fn run_statement(ctx: &Ctx<'_>, statement: &Statement) -> StatementResult {
    let work = async {
        match statement {
            Statement::Select(s) => select::select(ctx, s).await,
            Statement::ShowDatabases => Ok(show::databases(ctx)),
            Statement::ShowRetentionPolicies { on } => show::retention_policies(ctx, on.as_deref()),
            Statement::ShowMeasurements {
                on,
                filter,
                condition,
                limit,
                offset,
            } => {
                show::measurements(
                    ctx,
                    on.as_deref(),
                    filter.as_ref(),
                    condition.as_ref(),
                    *limit,
                    *offset,
                )
                .await
            }
            Statement::ShowTagKeys {
                on,
                from,
                limit,
                offset,
            } => show::tag_keys(ctx, on.as_deref(), from, *limit, *offset),
            Statement::ShowFieldKeys {
                on,
                from,
                limit,
                offset,
            } => show::field_keys(ctx, on.as_deref(), from, *limit, *offset),
            Statement::ShowTagValues {
                on,
                from,
                key,
                condition,
                limit,
                offset,
            } => {
                show::tag_values(
                    ctx,
                    on.as_deref(),
                    from,
                    key,
                    condition.as_ref(),
                    *limit,
                    *offset,
                )
                .await
            }
            Statement::ShowSeries {
                on,
                from,
                condition,
                limit,
                offset,
            } => {
                show::series(
                    ctx,
                    on.as_deref(),
                    from,
                    condition.as_ref(),
                    *limit,
                    *offset,
                )
                .await
            }
            Statement::CreateDatabase(name) => show::create_database(ctx, name),
            Statement::DropMeasurement(name) => show::drop_measurement(ctx, name).await,
        }
    };
    let limit = ctx.engine.limits.timeout;
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(series)) => StatementResult::ok(series),
        Ok(Err(e)) => StatementResult {
            compile_error: e.kind == hourglass_core::ErrorKind::InvalidInput,
            ..StatementResult::error(e.message)
        },
        Err(_) => StatementResult::error(format!(
            "query exceeded the {} s time limit",
            limit.as_secs()
        )),
    }
}
