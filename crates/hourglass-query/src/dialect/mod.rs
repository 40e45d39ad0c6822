//! The Timestream SQL dialect, as a front end over sqlparser's tokens and AST.
//!
//! A Timestream query flows through [`to_datafusion`]:
//!
//! 1. tokenize with [`parser_dialect::TimestreamDialect`] (sqlparser's generic dialect plus
//!    lambdas);
//! 2. `SHOW ...` / `DESCRIBE ...` are recognised on the tokens and answered from the catalog
//!    ([`metadata`]);
//! 3. interval literals `15m`, `1h`, ... become `INTERVAL '15 minute'` tokens
//!    ([`interval_literal`]);
//! 4. the tokens are parsed (keeping their spans, so errors point into the user's text) and the
//!    AST rewritten: lateral `CROSS JOIN UNNEST` ([`unnest`]), then `measure_value::<type>`,
//!    lambda field access, Trino-only forms and `_col<N>` names ([`rewrite`]);
//! 5. [`execute`] plans the statement in a session whose "now" is the engine clock and which has
//!    the Timestream meaning of every function ([`functions::register_timestream`]; the functions
//!    DataFusion lacks are in every session through [`register`]).
//!
//! The `timeseries` type and its functions are in [`timeseries`].

pub mod ast_util;
pub mod errors;
pub mod functions;
pub mod interval_literal;
pub mod measure_value;
pub mod metadata;
pub mod parser_dialect;
pub mod rewrite;
pub mod row_type;
pub mod timeseries;
pub mod trino_forms;
pub mod udf_args;
pub mod unnest;

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{visit_expressions, Expr, Spanned, Statement};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Span, Token, Tokenizer};
use hourglass_core::{Error, Result};
use hourglass_storage::Engine;

pub use metadata::Metadata;
pub use parser_dialect::TimestreamDialect;

/// A Timestream statement, ready to run.
#[derive(Debug, Clone)]
pub enum Translated {
    /// A query for DataFusion to plan (print it for the DataFusion SQL it amounts to).
    Query(Box<Statement>),
    /// A metadata statement answered from the catalog.
    Metadata(Metadata),
}

impl std::fmt::Display for Translated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Translated::Query(s) => write!(f, "{s}"),
            Translated::Metadata(m) => write!(f, "{m:?}"),
        }
    }
}

/// Rewrites a Timestream-dialect query into a statement DataFusion plans (or a metadata
/// statement).
pub fn to_datafusion(sql: &str) -> Result<Translated> {
    let tokens = Tokenizer::new(&TimestreamDialect, sql)
        .tokenize_with_location()
        .map_err(errors::tokenizer)?;
    let significant: Vec<_> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .cloned()
        .collect();
    if significant.iter().all(|t| t.token == Token::SemiColon) {
        return Err(Error::invalid("the query is empty"));
    }
    if let Some(m) = metadata::parse(&significant) {
        return m.map(Translated::Metadata);
    }
    let end = significant
        .last()
        .map(|t| t.span.end)
        .unwrap_or(Location::new(1, 1));
    let tokens = row_type::rewrite_tokens(interval_literal::rewrite(tokens));
    let mut parser = Parser::new(&TimestreamDialect).with_tokens_with_locations(tokens);
    let statement = parser
        .parse_statement()
        .map_err(|e| errors::parser(e, end))?;
    while parser.consume_token(&Token::SemiColon) {}
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(errors::at_span(
            next.span,
            format!(
                "mismatched input '{}'. Expecting: end of statement",
                next.token
            ),
        ));
    }
    let Statement::Query(mut query) = statement else {
        return Err(Error::invalid(
            "Only SELECT queries, SHOW and DESCRIBE are supported",
        ));
    };
    unnest::rewrite(&mut query)?;
    rewrite::rewrite(&mut query)?;
    trino_forms::rename_n_forms(&mut query);
    let mut statement = Statement::Query(query);
    crate::rules::asof_join::rewrite_sql_statement(&mut statement)?;
    Ok(Translated::Query(Box::new(statement)))
}

/// Registers the dialect's functions (`bin`, `ago`, ...) in a session.
pub fn register(ctx: &SessionContext) {
    functions::register(ctx);
}

/// Plans and starts a Timestream query in (a copy of) `ctx`'s session.
pub async fn execute(
    ctx: &SessionContext,
    engine: &Engine,
    sql: &str,
) -> Result<SendableRecordBatchStream> {
    match to_datafusion(sql)? {
        Translated::Metadata(m) => {
            let batches = metadata::execute(m, ctx, engine).await?;
            Ok(batches_stream(batches))
        }
        Translated::Query(statement) => {
            let calls = function_calls(&statement);
            let mut state = timeseries::lambda_plan::install(ctx.state());
            state.config_mut().options_mut().sql_parser.collect_spans = true;
            let now = chrono::DateTime::from_timestamp_nanos(engine.clock.now_nanos());
            state.execution_props_mut().query_execution_start_time = Some(now);
            functions::register_timestream(&mut state).map_err(errors::datafusion)?;
            let plan = state
                .statement_to_plan(DFStatement::Statement(statement))
                .await
                .map_err(|e| errors::planning(e, &calls))?;
            let plan = trino_forms::type_integer_literals(plan).map_err(errors::datafusion)?;
            crate::plan_path::execute_in(state, plan)
                .await
                .map_err(errors::datafusion)
        }
    }
}

/// The function calls of a statement (lower-case name, span of the name), in query order.
fn function_calls(statement: &Statement) -> Vec<(String, Span)> {
    let mut calls = Vec::new();
    let _ = visit_expressions(statement, |e| {
        if let Expr::Function(f) = e {
            if let Some(name) = ast_util::simple_name(f) {
                calls.push((name, f.name.span()));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    calls.sort_by_key(|(_, span)| (span.start.line, span.start.column));
    calls
}

fn batches_stream(batches: Vec<RecordBatch>) -> SendableRecordBatchStream {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(batches.into_iter().map(Ok)),
    ))
}
