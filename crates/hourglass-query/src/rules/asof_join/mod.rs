//! `ASOF JOIN`: each row of the left input with the one row of the right input that is nearest
//! in time on the allowed side (the quote prevailing at a trade's time).
//!
//! The syntax is Snowflake's, which sqlparser parses:
//!
//! ```sql
//! SELECT t.time, t.price, q.bid, q.ask
//! FROM trades t ASOF JOIN quotes q
//!   MATCH_CONDITION (t.time >= q.time)
//!   ON t.symbol = q.symbol
//! ```
//!
//! `MATCH_CONDITION` compares a left expression with a right one (timestamps, dates or
//! integers) with `>=`, `>`, `<=` or `<`: with `t.time >= q.time` the match is the right row with
//! the greatest time at or before the left row's. The optional `ON` holds equalities between the
//! two sides (`AND`ed); only right rows with equal keys match. As in Snowflake, every left row is
//! kept, with NULLs when nothing matches. Right rows with a NULL key or time never match; among
//! right rows tied at the matching time, the last one read wins.
//!
//! DataFusion has no as-of join, so planning takes three steps:
//! 1. [`rewrite_sql_statement`] turns `A ASOF JOIN B MATCH_CONDITION (c) ON k` into
//!    `A LEFT JOIN B ON hg_asof_match(c) AND k` on the SQL AST;
//! 2. DataFusion plans that as an ordinary outer join, whose filter holds the marker
//!    [`udf`] (the marker fails if it is ever evaluated, so a plan the rule cannot take never
//!    answers as a plain join);
//! 3. the physical optimizer rule [`rule::AsOfJoinRule`], which runs first, replaces that join
//!    with [`exec::AsOfJoinExec`]: the right side collected once and indexed by key and time, the
//!    left side streamed through it with a binary search per row.

pub mod exec;
pub mod rule;

use std::ops::ControlFlow;

use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, JoinConstraint, JoinOperator, Select, Spanned, Statement, TableFactor,
    TableWithJoins, VisitorMut,
};
use hourglass_core::{Error, Result};

use crate::dialect::ast_util::{call, visit_mut_with};

/// Name of the marker function wrapping the match condition between rewrite and physical rule.
pub const MARKER: &str = "hg_asof_match";

/// Rewrites every `ASOF JOIN` of a statement (and of its subqueries) into the marked outer join
/// DataFusion plans; a statement without one is left as it is. Called for every statement by
/// [`crate::rules::rewrite_statement`].
pub fn rewrite_sql_statement(statement: &mut Statement) -> Result<()> {
    visit_mut_with(statement, &mut AsOfVisitor)
}

struct AsOfVisitor;

impl VisitorMut for AsOfVisitor {
    type Break = Error;

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<Error> {
        if let TableFactor::NestedJoin {
            table_with_joins, ..
        } = factor
        {
            if let Err(e) = rewrite_joins(table_with_joins) {
                return ControlFlow::Break(e);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<Error> {
        match select.from.iter_mut().try_for_each(rewrite_joins) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }
}

fn rewrite_joins(table: &mut TableWithJoins) -> Result<()> {
    for join in &mut table.joins {
        let JoinOperator::AsOf {
            match_condition,
            constraint,
        } = &mut join.join_operator
        else {
            continue;
        };
        check_match_condition(match_condition)?;
        let marker = call(
            MARKER,
            vec![match_condition.clone()],
            match_condition.span(),
        );
        let on = match std::mem::replace(constraint, JoinConstraint::None) {
            JoinConstraint::None => marker,
            JoinConstraint::On(keys) => Expr::BinaryOp {
                left: Box::new(marker),
                op: BinaryOperator::And,
                right: Box::new(Expr::Nested(Box::new(keys))),
            },
            JoinConstraint::Using(_) | JoinConstraint::Natural => {
                return Err(Error::invalid(format!(
                    "ASOF JOIN at {}: write the keys as ON left.key = right.key (USING and \
                     NATURAL are not supported)",
                    position(match_condition)
                )))
            }
        };
        join.join_operator = JoinOperator::LeftOuter(JoinConstraint::On(on));
    }
    Ok(())
}

fn check_match_condition(condition: &Expr) -> Result<()> {
    let mut inner = condition;
    while let Expr::Nested(e) = inner {
        inner = e;
    }
    match inner {
        Expr::BinaryOp {
            op:
                BinaryOperator::GtEq | BinaryOperator::Gt | BinaryOperator::LtEq | BinaryOperator::Lt,
            ..
        } => Ok(()),
        _ => Err(Error::invalid(format!(
            "ASOF JOIN at {}: MATCH_CONDITION must compare a left and a right expression with \
             >=, >, <= or <, not `{condition}`",
            position(condition)
        ))),
    }
}

fn position(e: &Expr) -> String {
    let start = e.span().start;
    if start.line == 0 {
        "its MATCH_CONDITION".to_string()
    } else {
        format!("line {} column {}", start.line, start.column)
    }
}

/// The marker function: a boolean identity that refuses to run.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(AsOfMatch {
        signature: Signature::exact(vec![DataType::Boolean], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AsOfMatch {
    signature: Signature,
}

impl ScalarUDFImpl for AsOfMatch {
    fn name(&self) -> &str {
        MARKER
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        exec_err!(
            "ASOF JOIN could not be planned: its ON clause may hold only equalities between \
             the two sides, and {MARKER} is not a function to call"
        )
    }
}
