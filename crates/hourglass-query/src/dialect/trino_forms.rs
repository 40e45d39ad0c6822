//! Trino typing and call forms DataFusion's planner does not have:
//!
//! * [`rename_n_forms`] (on the AST): `max(x, n)` / `min(x, n)` become `hg_max_n(x, n)` /
//!   `hg_min_n(x, n)` ([`super::functions::aggregates::n_form`]; the 1-argument forms stay
//!   DataFusion's);
//! * [`type_integer_literals`] (on the planned statement, before DataFusion's analyzer): an
//!   integer literal is INTEGER (Int32) when it fits in 32 bits and BIGINT otherwise, as in
//!   Trino — DataFusion makes every integer literal Int64. Output names are kept (an expression
//!   whose name changes is aliased to its old name). INTEGER `+ - * / %` is computed in 64 bits
//!   and cast back, so an overflow is an error ("Can't cast value ... to type Int32") instead of
//!   wrapping around. Literals of `LIMIT`/`OFFSET`, `count(*)`, window functions, lambda
//!   functions (`filter(array[1, 2], x -> ...)`: their parameters were typed when the statement
//!   was planned) and map keys (`m[1]`) are left as they are.

use std::ops::ControlFlow;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator};
use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr as SqlExpr, Query};

use super::ast_util::{arg_exprs, rename, simple_name};
use super::functions::aggregates::n_form;

/// `max(x, n)` → `hg_max_n(x, n)`, `min(x, n)` → `hg_min_n(x, n)`.
pub fn rename_n_forms(query: &mut Query) {
    let _ = visit_expressions_mut(query, |e| {
        if let SqlExpr::Function(f) = e {
            let to = simple_name(f)
                .zip(arg_exprs(f).map(|a| a.len()))
                .and_then(|(name, n)| n_form(&name, n));
            if let Some(to) = to {
                rename(f, to);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Types the integer literals of a planned Timestream query as Trino does (module doc).
pub fn type_integer_literals(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    plan.transform_up_with_subqueries(|p| {
        match &p {
            LogicalPlan::Limit(_) => return Ok(Transformed::no(p)),
            LogicalPlan::Values(v) => {
                let mut changed = false;
                let mut rows = Vec::with_capacity(v.values.len());
                for row in &v.values {
                    let mut out = Vec::with_capacity(row.len());
                    for e in row {
                        let t = narrow(e.clone())?;
                        changed |= t.transformed;
                        out.push(t.data);
                    }
                    rows.push(out);
                }
                if !changed {
                    return Ok(Transformed::no(p));
                }
                return Ok(Transformed::yes(LogicalPlanBuilder::values(rows)?.build()?));
            }
            _ => {}
        }
        let keep_names = matches!(
            p,
            LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_) | LogicalPlan::Window(_)
        );
        let preserver = NamePreserver::new(&p);
        let t = p.map_expressions(|e| {
            let saved = keep_names.then(|| preserver.save(&e));
            let t = narrow(e)?;
            Ok(match saved {
                Some(saved) if t.transformed => t.update_data(|e| saved.restore(e)),
                _ => t,
            })
        })?;
        // The node's schema follows its (maybe changed) expressions and inputs.
        t.map_data(|p| p.recompute_schema())
    })
    .map(|t| t.data)
}

/// The expression with its small integer literals as Int32 and INTEGER arithmetic checked.
fn narrow(e: Expr) -> DfResult<Transformed<Expr>> {
    e.transform_down(|e| match &e {
        Expr::AggregateFunction(f) if f.func.name() == "count" => {
            Ok(Transformed::new(e, false, TreeNodeRecursion::Jump))
        }
        // Lambda parameters were typed from the arguments when the statement was planned.
        Expr::WindowFunction(_) | Expr::HigherOrderFunction(_) | Expr::Lambda(_) => {
            Ok(Transformed::new(e, false, TreeNodeRecursion::Jump))
        }
        Expr::ScalarFunction(f) if f.func.name() == "get_field" => {
            Ok(Transformed::new(e, false, TreeNodeRecursion::Jump))
        }
        Expr::Literal(ScalarValue::Int64(Some(v)), None) => match i32::try_from(*v) {
            Ok(v) => Ok(Transformed::yes(Expr::Literal(
                ScalarValue::Int32(Some(v)),
                None,
            ))),
            Err(_) => Ok(Transformed::no(e)),
        },
        _ => Ok(Transformed::no(e)),
    })?
    .transform_data(|e| e.transform_up(checked_arithmetic))
}

/// Whether `e` is an INTEGER made by [`narrow`] or a cast (the only INTEGER sources in
/// Timestream queries: its columns are BIGINT).
fn is_integer(e: &Expr) -> bool {
    match e {
        Expr::Literal(ScalarValue::Int32(_), _) => true,
        Expr::Cast(c) => c.field.data_type() == &DataType::Int32,
        Expr::Negative(x) => is_integer(x),
        _ => false,
    }
}

/// `a op b` of two INTEGERs → `CAST(CAST(a AS BIGINT) op CAST(b AS BIGINT) AS INTEGER)`.
fn checked_arithmetic(e: Expr) -> DfResult<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
        return Ok(Transformed::no(e));
    };
    let arithmetic = matches!(
        op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
    );
    if !arithmetic || !is_integer(left) || !is_integer(right) {
        return Ok(Transformed::no(e));
    }
    let wide = |x: &Expr| Expr::Cast(Cast::new(Box::new(x.clone()), DataType::Int64));
    let sum = Expr::BinaryExpr(BinaryExpr::new(
        Box::new(wide(left)),
        *op,
        Box::new(wide(right)),
    ));
    Ok(Transformed::yes(Expr::Cast(Cast::new(
        Box::new(sum),
        DataType::Int32,
    ))))
}
