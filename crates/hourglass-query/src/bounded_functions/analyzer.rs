//! The analyzer rule [`WrapBoundedFunctions`]: wraps the bounded functions of a plan (those the
//! SQL planners call without the registry too), turns `||` into the bounded [`ConcatOperator`]
//! and starts the query's ledger; with `value_bounds` switched off it puts the plain functions
//! (and `||`) back instead, so that the plan is DataFusion's own.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, LogicalPlan, Operator, ScalarUDF, WindowFunctionDefinition,
};
use datafusion::optimizer::AnalyzerRule;

use super::aggregate::BoundedUdaf;
use super::concat::{concat_operator, ConcatOperator};
use super::constants::BoundedConstant;
use super::estimate::Kind;
use super::ledger::ledger;
use super::scalar::BoundedUdf;
use super::{enabled, Bounds};

/// Wraps the bounded functions of `expr` (and of the lambdas in it), and turns `a || b` into
/// the bounded [`ConcatOperator`].
pub(super) fn rewrap_expr(expr: Expr, bounds: &Bounds) -> DfResult<Transformed<Expr>> {
    expr.transform_up(|e| match e {
        Expr::ScalarFunction(f) => match BoundedUdf::wrap(&f.func, bounds) {
            Some(func) => Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                func,
                args: f.args,
            }))),
            None => Ok(Transformed::no(Expr::ScalarFunction(f))),
        },
        Expr::AggregateFunction(mut f) => match BoundedUdaf::wrap(&f.func, bounds) {
            Some(func) => {
                f.func = func;
                Ok(Transformed::yes(Expr::AggregateFunction(f)))
            }
            None => Ok(Transformed::no(Expr::AggregateFunction(f))),
        },
        Expr::WindowFunction(mut w) => {
            let wrapped = match &w.fun {
                WindowFunctionDefinition::AggregateUDF(f) => BoundedUdaf::wrap(f, bounds),
                _ => None,
            };
            match wrapped {
                Some(func) => {
                    w.fun = WindowFunctionDefinition::AggregateUDF(func);
                    Ok(Transformed::yes(Expr::WindowFunction(w)))
                }
                None => Ok(Transformed::no(Expr::WindowFunction(w))),
            }
        }
        Expr::BinaryExpr(b) if b.op == Operator::StringConcat => {
            let func = Arc::new(ScalarUDF::new_from_impl(BoundedUdf {
                inner: concat_operator(),
                kind: Kind::Sum { separator: false },
                bounds: bounds.clone(),
            }));
            Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                func,
                args: vec![*b.left, *b.right],
            })))
        }
        other => Ok(Transformed::no(other)),
    })
}

/// Puts back what [`rewrap_expr`] and the registry wrapped (the functions and aggregates wrapped,
/// `||` as DataFusion's operator) and what [`super::BoundConstants`] wrapped (a constant):
/// `value_bounds` switched off.
fn unwrap_expr(expr: Expr) -> DfResult<Transformed<Expr>> {
    expr.transform_up(|e| match e {
        Expr::ScalarFunction(f) => {
            let wrapped = f
                .func
                .inner()
                .downcast_ref::<BoundedUdf>()
                .map(|b| Arc::clone(b.inner()));
            if let Some(inner) = wrapped {
                let args = if inner.inner().is::<ConcatOperator>() {
                    match <[Expr; 2]>::try_from(f.args) {
                        Ok([left, right]) => {
                            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                                Box::new(left),
                                Operator::StringConcat,
                                Box::new(right),
                            ))))
                        }
                        Err(args) => args,
                    }
                } else {
                    f.args
                };
                return Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                    func: inner,
                    args,
                })));
            }
            if f.func.inner().is::<BoundedConstant>() {
                return Ok(match <[Expr; 1]>::try_from(f.args) {
                    Ok([value]) => Transformed::yes(value),
                    Err(args) => {
                        Transformed::no(Expr::ScalarFunction(ScalarFunction { func: f.func, args }))
                    }
                });
            }
            Ok(Transformed::no(Expr::ScalarFunction(f)))
        }
        Expr::AggregateFunction(mut f) => {
            let wrapped = f
                .func
                .inner()
                .downcast_ref::<BoundedUdaf>()
                .map(|b| Arc::clone(b.inner()));
            match wrapped {
                Some(func) => {
                    f.func = func;
                    Ok(Transformed::yes(Expr::AggregateFunction(f)))
                }
                None => Ok(Transformed::no(Expr::AggregateFunction(f))),
            }
        }
        Expr::WindowFunction(mut w) => {
            let inner = match &w.fun {
                WindowFunctionDefinition::AggregateUDF(f) => f
                    .inner()
                    .downcast_ref::<BoundedUdaf>()
                    .map(|b| Arc::clone(b.inner())),
                _ => None,
            };
            match inner {
                Some(func) => {
                    w.fun = WindowFunctionDefinition::AggregateUDF(func);
                    Ok(Transformed::yes(Expr::WindowFunction(w)))
                }
                None => Ok(Transformed::no(Expr::WindowFunction(w))),
            }
        }
        other => Ok(Transformed::no(other)),
    })
}

/// Wraps the bounded functions the SQL planners call without the registry (`ARRAY[...]` is
/// `make_array`, `OVERLAY(... PLACING ...)` is `overlay`, `list || list` is `array_concat`, the
/// dialect's own overrides), turns `||` on strings into the bounded [`ConcatOperator`], and
/// starts the query's [`super::Ledger`] (its deadline, no constants yet).
///
/// With `value_bounds` switched off it puts the functions wrapped back instead (those the
/// registry holds wrapped too): the plan is then DataFusion's own. That is how the bounded
/// aggregates go off: an accumulator is made without the session's settings
/// (`AccumulatorArgs` has none), so a [`BoundedUdaf`] could not tell.
#[derive(Debug)]
pub struct WrapBoundedFunctions {
    pub(super) bounds: Bounds,
}

impl AnalyzerRule for WrapBoundedFunctions {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        if !enabled(config) {
            // `value_bounds` switched off: the plan as DataFusion would have it.
            return plan
                .transform_up_with_subqueries(|node| node.map_expressions(unwrap_expr))
                .map(|t| t.data);
        }
        if let Some(l) = ledger(config) {
            l.start(self.bounds.timeout);
        }
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| rewrap_expr(e, &self.bounds))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "hourglass_bounded_functions"
    }
}
