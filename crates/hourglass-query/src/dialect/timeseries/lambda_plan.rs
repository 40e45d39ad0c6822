//! Keeps lambda variables pointing at their parameters after DataFusion's physical optimizer has
//! merged projections (a physical plan rule, installed in the sessions Timestream queries are
//! planned in).
//!
//! A lambda's body is planned against its input's columns followed by the lambda's parameters,
//! so the variable `x` of `filter(ts, x -> x.value > 10)` over a two-column input is column 2 of
//! the batch the body sees, and a variable index at or past the input's width is what tells a
//! parameter from a captured column when the lambda is evaluated. When DataFusion folds the
//! projection computing `ts` (`interpolate_linear(create_time_series(...), sequence(min(time),
//! max(time), 10s))` in a CTE) into the projection applying the lambda, it rewrites the
//! expression's column references against the wider input below, but not the lambda variables:
//! `x` stays index 2, which is now a column of that input (`min(time)`), taken as a capture, and
//! evaluation fails with "Field of physical LambdaVariable with index 0 doesn't match batch
//! field". Every lambda function has this (`filter`, `transform`, `reduce`, `any_match`, ...),
//! over any computed argument whose projection gets merged.
//!
//! [`LambdaIndices`] runs after DataFusion's rules and renumbers, in projections and filters,
//! every lambda variable from its name and the width of the input the expression is evaluated
//! against (the input's columns, then the parameters of the enclosing lambdas, outermost first).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::physical_expr::expressions::{LambdaExpr, LambdaVariable};
use datafusion::physical_expr::{HigherOrderFunctionExpr, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::ExecutionPlan;

/// `state` with [`LambdaIndices`] as its last physical rule.
pub fn install(state: SessionState) -> SessionState {
    SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rule(Arc::new(LambdaIndices))
        .build()
}

/// The physical rule renumbering lambda variables (see the module documentation).
#[derive(Debug, Default)]
pub struct LambdaIndices;

impl PhysicalOptimizerRule for LambdaIndices {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !crate::rules::Rule::LambdaVariables.enabled(config) {
            return Ok(plan);
        }
        plan.transform_up(fix_node).map(|t| t.data)
    }

    fn name(&self) -> &str {
        "hourglass_lambda_indices"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn fix_node(node: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
    if let Some(p) = node.downcast_ref::<ProjectionExec>() {
        let width = p.input().schema().fields().len();
        let mut changed = false;
        let mut exprs = Vec::with_capacity(p.expr().len());
        for e in p.expr() {
            let fixed = fix_expr(Arc::clone(&e.expr), width)?;
            changed |= fixed.transformed;
            exprs.push(ProjectionExpr {
                expr: fixed.data,
                alias: e.alias.clone(),
            });
        }
        if changed {
            let schema = p.schema();
            let new = ProjectionExec::try_new_with_schema_metadata(
                exprs,
                Arc::clone(p.input()),
                &schema,
            )?;
            return Ok(Transformed::yes(Arc::new(new)));
        }
    } else if let Some(f) = node.downcast_ref::<FilterExec>() {
        let width = f.input().schema().fields().len();
        let fixed = fix_expr(Arc::clone(f.predicate()), width)?;
        if fixed.transformed {
            let new = FilterExecBuilder::new(fixed.data, Arc::clone(f.input()))
                .apply_projection_by_ref(f.projection().as_ref())?
                .with_default_selectivity(f.default_selectivity())
                .with_batch_size(f.batch_size())
                .with_fetch(f.fetch())
                .build()?;
            return Ok(Transformed::yes(Arc::new(new)));
        }
    }
    Ok(Transformed::no(node))
}

/// The lambdas' variables of `expr`, evaluated against `width` columns, renumbered.
fn fix_expr(
    expr: Arc<dyn PhysicalExpr>,
    width: usize,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    renumber(expr, width, &[])
}

/// One enclosing lambda: its parameters and the index of the first.
type Scope = (Vec<String>, usize);

/// Renumbers the variables in `expr`, evaluated against `width` columns (the outermost input and
/// the parameters of the enclosing lambdas `scopes`).
fn renumber(
    expr: Arc<dyn PhysicalExpr>,
    width: usize,
    scopes: &[Scope],
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    if let Some(v) = expr.downcast_ref::<LambdaVariable>() {
        let index = scopes.iter().rev().find_map(|(params, first)| {
            params.iter().position(|p| p == v.name()).map(|i| first + i)
        });
        return Ok(match index {
            Some(i) if i != v.index() => {
                Transformed::yes(Arc::new(LambdaVariable::new(i, Arc::clone(v.field())))
                    as Arc<dyn PhysicalExpr>)
            }
            _ => Transformed::no(expr),
        });
    }
    if expr.is::<HigherOrderFunctionExpr>() {
        let mut changed = false;
        let mut args = Vec::new();
        for arg in expr.children() {
            let fixed = match arg.downcast_ref::<LambdaExpr>() {
                Some(lambda) => {
                    let mut inner = scopes.to_vec();
                    inner.push((lambda.params().to_vec(), width));
                    let body = renumber(
                        Arc::clone(lambda.body()),
                        width + lambda.params().len(),
                        &inner,
                    )?;
                    if body.transformed {
                        Transformed::yes(Arc::new(LambdaExpr::try_new(
                            lambda.params().to_vec(),
                            body.data,
                        )?) as Arc<dyn PhysicalExpr>)
                    } else {
                        Transformed::no(Arc::clone(arg))
                    }
                }
                None => renumber(Arc::clone(arg), width, scopes)?,
            };
            changed |= fixed.transformed;
            args.push(fixed.data);
        }
        return Ok(if changed {
            Transformed::yes(expr.with_new_children(args)?)
        } else {
            Transformed::no(expr)
        });
    }
    let children: Vec<Arc<dyn PhysicalExpr>> = expr.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(Transformed::no(expr));
    }
    let mut changed = false;
    let mut new_children = Vec::with_capacity(children.len());
    for c in children {
        let fixed = renumber(c, width, scopes)?;
        changed |= fixed.transformed;
        new_children.push(fixed.data);
    }
    Ok(if changed {
        Transformed::yes(expr.with_new_children(new_children)?)
    } else {
        Transformed::no(expr)
    })
}
