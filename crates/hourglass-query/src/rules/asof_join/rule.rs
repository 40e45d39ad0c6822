//! The physical optimizer rule that turns the marked outer join of an `ASOF JOIN` (see the
//! module documentation) into an [`AsOfJoinExec`]. It runs before every other physical rule, so
//! the join still has its inputs in query order and no repartitioning below it.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{plan_err, JoinSide, JoinType, Result};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_expr::{split_conjunction, PhysicalExprRef, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::ExecutionPlan;

use super::exec::{is_supported_time_type, AsOfJoinExec, AsOfSpec, MatchOp};
use super::MARKER;

/// Replaces marked joins with [`AsOfJoinExec`].
#[derive(Debug, Default)]
pub struct AsOfJoinRule;

impl PhysicalOptimizerRule for AsOfJoinRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Switched off (`hourglass.disabled_rules`), the join is still an as-of join (DataFusion
        // has none), answered by the reference probe: a scan of the key's rows per left row.
        let linear_probe = !crate::rules::Rule::AsOfJoin.enabled(config);
        plan.transform_up(|node| {
            Ok(match as_of_join(&node, linear_probe)? {
                Some(replaced) => Transformed::yes(replaced),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "hourglass_asof_join"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The parts of a join the rule reads, whichever operator DataFusion chose.
struct JoinParts<'a> {
    left: &'a Arc<dyn ExecutionPlan>,
    right: &'a Arc<dyn ExecutionPlan>,
    on: Vec<(PhysicalExprRef, PhysicalExprRef)>,
    filter: Option<&'a JoinFilter>,
    join_type: JoinType,
    projection: Option<Vec<usize>>,
}

fn join_parts(node: &Arc<dyn ExecutionPlan>) -> Option<JoinParts<'_>> {
    if let Some(j) = node.downcast_ref::<HashJoinExec>() {
        return Some(JoinParts {
            left: j.left(),
            right: j.right(),
            on: j.on().to_vec(),
            filter: j.filter(),
            join_type: *j.join_type(),
            projection: j.projection.as_ref().map(|p| p.to_vec()),
        });
    }
    if let Some(j) = node.downcast_ref::<NestedLoopJoinExec>() {
        return Some(JoinParts {
            left: j.left(),
            right: j.right(),
            on: vec![],
            filter: j.filter(),
            join_type: *j.join_type(),
            projection: j.projection().as_ref().map(|p| p.to_vec()),
        });
    }
    if let Some(j) = node.downcast_ref::<SortMergeJoinExec>() {
        return Some(JoinParts {
            left: j.left(),
            right: j.right(),
            on: j.on().to_vec(),
            filter: j.filter().as_ref(),
            join_type: j.join_type(),
            projection: None,
        });
    }
    None
}

fn marker_argument(e: &PhysicalExprRef) -> Option<&PhysicalExprRef> {
    let f = e.downcast_ref::<ScalarFunctionExpr>()?;
    (f.name() == MARKER).then(|| f.args().first())?
}

fn as_of_join(
    node: &Arc<dyn ExecutionPlan>,
    linear_probe: bool,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(parts) = join_parts(node) else {
        return Ok(None);
    };
    let Some(filter) = parts.filter else {
        return Ok(None);
    };
    let conjuncts = split_conjunction(filter.expression());
    let Some(condition) = conjuncts.iter().find_map(|c| marker_argument(c)) else {
        return Ok(None);
    };
    if let Some(other) = conjuncts.iter().find(|c| marker_argument(c).is_none()) {
        return plan_err!(
            "ASOF JOIN: ON may hold only equalities between a left and a right expression; \
             filter either side in a subquery instead (found `{other}`)"
        );
    }
    let keep_unmatched = match parts.join_type {
        JoinType::Left => true,
        JoinType::Inner => false,
        other => return plan_err!("ASOF JOIN planned as a {other} join, which it cannot be"),
    };
    let Some(comparison) = condition.downcast_ref::<BinaryExpr>() else {
        return plan_err!("ASOF JOIN: MATCH_CONDITION must be a comparison, not `{condition}`");
    };
    let op = match comparison.op() {
        Operator::GtEq => MatchOp::AtOrBefore,
        Operator::Gt => MatchOp::Before,
        Operator::LtEq => MatchOp::AtOrAfter,
        Operator::Lt => MatchOp::After,
        other => {
            return plan_err!(
                "ASOF JOIN: MATCH_CONDITION compares with {other}; use >=, >, <= or <"
            )
        }
    };
    let (a_side, a) = on_one_side(comparison.left(), filter, parts.left, parts.right)?;
    let (b_side, b) = on_one_side(comparison.right(), filter, parts.left, parts.right)?;
    let (left_time, right_time, op) = match (a_side, b_side) {
        (JoinSide::Left, JoinSide::Right) => (a, b, op),
        (JoinSide::Right, JoinSide::Left) => (b, a, flipped(op)),
        _ => {
            return plan_err!(
                "ASOF JOIN: MATCH_CONDITION must compare an expression of the left table with \
                 one of the right table (`{comparison}`)"
            )
        }
    };
    for (side, e, schema) in [
        ("left", &left_time, parts.left.schema()),
        ("right", &right_time, parts.right.schema()),
    ] {
        let t = e.data_type(&schema)?;
        if !is_supported_time_type(&t) {
            return plan_err!(
                "ASOF JOIN: MATCH_CONDITION's {side} side `{e}` is {t}; it must be a timestamp, \
                 a date or an integer"
            );
        }
    }
    let spec = AsOfSpec {
        keys: parts.on,
        left_time,
        right_time,
        op,
        keep_unmatched,
        projection: parts.projection,
        linear_probe,
    };
    Ok(Some(Arc::new(AsOfJoinExec::new(
        parts.left.clone(),
        parts.right.clone(),
        spec,
        node.schema(),
    ))))
}

fn flipped(op: MatchOp) -> MatchOp {
    match op {
        MatchOp::AtOrBefore => MatchOp::AtOrAfter,
        MatchOp::Before => MatchOp::After,
        MatchOp::AtOrAfter => MatchOp::AtOrBefore,
        MatchOp::After => MatchOp::Before,
    }
}

/// The side whose columns `e` (over the filter's schema) reads, and `e` over that side's schema;
/// an error if it reads both sides or none.
fn on_one_side(
    e: &PhysicalExprRef,
    filter: &JoinFilter,
    left: &Arc<dyn ExecutionPlan>,
    right: &Arc<dyn ExecutionPlan>,
) -> Result<(JoinSide, PhysicalExprRef)> {
    let mut side = None;
    let mut mixed = false;
    let rebased = e
        .clone()
        .transform(|node| {
            let Some(c) = node.downcast_ref::<Column>() else {
                return Ok(Transformed::no(node));
            };
            let index = &filter.column_indices()[c.index()];
            if side.is_some_and(|s| s != index.side) {
                mixed = true;
            }
            side = Some(index.side);
            let schema = match index.side {
                JoinSide::Left => left.schema(),
                _ => right.schema(),
            };
            let name = schema.field(index.index).name().clone();
            Ok(Transformed::yes(
                Arc::new(Column::new(&name, index.index)) as PhysicalExprRef
            ))
        })?
        .data;
    match side {
        Some(s @ (JoinSide::Left | JoinSide::Right)) if !mixed => Ok((s, rebased)),
        _ => plan_err!(
            "ASOF JOIN: each side of MATCH_CONDITION must read columns of exactly one table \
             (`{e}`)"
        ),
    }
}
