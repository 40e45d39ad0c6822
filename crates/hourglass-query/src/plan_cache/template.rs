//! A shape's optimised logical plan with placeholders, and binding a statement's literals to it.
//!
//! A template qualifies only where binding is known to give the plan the statement itself gets:
//! - Every function in it is immutable (`now()` and `random()` are evaluated by the optimiser or
//!   per row; a template must not keep either's value).
//! - Every scan is of an Hourglass table (not a latest-value view, whose scan holds the filters
//!   itself, and not a system table) and there are no extension nodes.
//! - Every placeholder has the type of the column it is compared with, and no cast applies to it
//!   (the optimiser would have folded a literal's cast; it cannot fold a placeholder's).
//!
//! A literal is bound to its placeholder's type only along the conversions DataFusion's type
//! coercion makes for a literal compared with a column of that type ([`bind_literal`]); a literal
//! that needs another conversion makes the statement plan on its own, the usual way.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::{Cast, Placeholder, ScalarFunction, TryCast};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::scalar::ScalarValue;

use super::shape::Literal;
use crate::provider::HourglassTable;

/// An optimised plan with placeholders `$1…$n` and the type each is bound as.
#[derive(Debug)]
pub struct Template {
    pub plan: LogicalPlan,
    pub types: Vec<DataType>,
}

impl Template {
    /// The template of `optimized` (a shape's plan after DataFusion's optimiser), for `count`
    /// placeholders; `None` when it does not qualify. `planned` is the same plan before
    /// optimisation, where functions the optimiser folds are still visible.
    pub fn new(planned: &LogicalPlan, optimized: LogicalPlan, count: usize) -> Option<Template> {
        // A query only: `SELECT ... INTO` is a query statement planned as a table's creation,
        // which DataFusion carries out itself rather than through a physical plan.
        let query = !matches!(
            optimized,
            LogicalPlan::Ddl(_)
                | LogicalPlan::Dml(_)
                | LogicalPlan::Copy(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::Explain(_)
                | LogicalPlan::Analyze(_)
                | LogicalPlan::DescribeTable(_)
        );
        if !query || !only_immutable_functions(planned) || !scans_qualify(&optimized) {
            return None;
        }
        let types = placeholder_types(&optimized, count)?;
        Some(Template {
            plan: optimized,
            types,
        })
    }

    /// The template's plan with `literals` bound; `None` when one does not convert to its
    /// placeholder's type the way DataFusion converts a literal.
    pub fn bind(&self, literals: &[Literal]) -> DfResult<Option<LogicalPlan>> {
        if literals.len() != self.types.len() {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(literals.len());
        for (literal, data_type) in literals.iter().zip(&self.types) {
            match bind_literal(literal, data_type) {
                Some(v) => values.push(v),
                None => return Ok(None),
            }
        }
        self.plan.clone().with_param_values(values).map(Some)
    }
}

/// `literal` as a value of `target`, where DataFusion would convert it so when comparing it with
/// a column of type `target`: the literal's own type (`Int64` for an integer, `Float64` for a
/// decimal, `Utf8` for a string, `Timestamp(ns)` for `TIMESTAMP '…'`) when that is the target,
/// else a cast of it to `target` for the pairs type coercion resolves by casting the literal
/// (an integer to `Float64`, a string to a dictionary of strings, a string view or a nanosecond
/// timestamp). Anything else is `None`: the statement is planned the usual way.
pub fn bind_literal(literal: &Literal, target: &DataType) -> Option<ScalarValue> {
    let natural = match literal {
        Literal::Number(text) => match text.parse::<i64>() {
            Ok(v) => ScalarValue::Int64(Some(v)),
            Err(_) if text.bytes().all(|b| b.is_ascii_digit()) => return None,
            Err(_) => ScalarValue::Float64(Some(text.parse::<f64>().ok()?)),
        },
        Literal::String(text) => ScalarValue::Utf8(Some(text.clone())),
        Literal::Timestamp(text) => ScalarValue::Utf8(Some(text.clone()))
            .cast_to(&timestamp_ns())
            .ok()?,
    };
    let natural_type = natural.data_type();
    if &natural_type == target {
        return Some(natural);
    }
    let allowed = match (&natural_type, target) {
        (DataType::Int64, DataType::Float64) => true,
        (DataType::Utf8, DataType::Utf8View | DataType::LargeUtf8) => true,
        (DataType::Utf8, DataType::Dictionary(_, value)) => **value == DataType::Utf8,
        (DataType::Utf8, t) => *t == timestamp_ns(),
        _ => false,
    };
    if !allowed {
        return None;
    }
    natural.cast_to(target).ok().filter(|v| !v.is_null())
}

fn timestamp_ns() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

fn only_immutable_functions(plan: &LogicalPlan) -> bool {
    let mut immutable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                let volatility = match e {
                    Expr::ScalarFunction(ScalarFunction { func, .. }) => {
                        Some(func.signature().volatility)
                    }
                    Expr::AggregateFunction(f) => Some(f.func.signature().volatility),
                    Expr::WindowFunction(f) => Some(f.fun.signature().volatility),
                    _ => None,
                };
                if volatility.is_some_and(|v| v != Volatility::Immutable) {
                    immutable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if immutable {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    immutable
}

fn scans_qualify(plan: &LogicalPlan) -> bool {
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        ok = match node {
            LogicalPlan::Extension(_) => false,
            LogicalPlan::TableScan(scan) => source_as_provider(&scan.source)
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<HourglassTable>()
                        .map(|t| !t.is_latest_view())
                })
                .unwrap_or(false),
            _ => true,
        };
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

/// The type of each of the `count` placeholders `$1…$n`, when each appears, always with one
/// type, and never under a cast.
fn placeholder_types(plan: &LogicalPlan, count: usize) -> Option<Vec<DataType>> {
    let mut types: BTreeMap<usize, DataType> = BTreeMap::new();
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                match e {
                    Expr::Cast(Cast { expr, .. }) | Expr::TryCast(TryCast { expr, .. })
                        if contains_placeholder(expr) =>
                    {
                        ok = false;
                    }
                    Expr::Placeholder(Placeholder { id, field }) => {
                        let index = id
                            .strip_prefix('$')
                            .and_then(|n| n.parse::<usize>().ok())
                            .filter(|n| (1..=count).contains(n));
                        match (index, field) {
                            (Some(i), Some(f)) => {
                                let t = f.data_type().clone();
                                if types.insert(i, t.clone()).is_some_and(|prev| prev != t) {
                                    ok = false;
                                }
                            }
                            _ => ok = false,
                        }
                    }
                    _ => {}
                }
                Ok(if ok {
                    TreeNodeRecursion::Continue
                } else {
                    TreeNodeRecursion::Stop
                })
            })
        })?;
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    if !ok || types.len() != count {
        return None;
    }
    Some(types.into_values().collect())
}

fn contains_placeholder(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::Placeholder(_))))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType as T;

    fn dict() -> T {
        T::Dictionary(Box::new(T::Int32), Box::new(T::Utf8))
    }

    #[test]
    fn literals_bind_where_coercion_casts_the_literal() {
        let n = |s: &str| Literal::Number(s.into());
        assert_eq!(
            bind_literal(&n("90"), &T::Int64),
            Some(ScalarValue::Int64(Some(90)))
        );
        assert_eq!(
            bind_literal(&n("90"), &T::Float64),
            Some(ScalarValue::Float64(Some(90.0)))
        );
        assert_eq!(
            bind_literal(&n("1.5"), &T::Float64),
            Some(ScalarValue::Float64(Some(1.5)))
        );
        let host = bind_literal(&Literal::String("host_7".into()), &dict()).unwrap();
        assert_eq!(host.data_type(), dict());
        let t = bind_literal(
            &Literal::Timestamp("2016-01-01 00:00:01".into()),
            &timestamp_ns(),
        );
        assert_eq!(
            t,
            Some(ScalarValue::TimestampNanosecond(
                Some(1_451_606_401_000_000_000),
                None
            ))
        );
        let s = bind_literal(
            &Literal::String("2016-01-01T00:00:01Z".into()),
            &timestamp_ns(),
        );
        assert_eq!(
            s,
            Some(ScalarValue::TimestampNanosecond(
                Some(1_451_606_401_000_000_000),
                None
            ))
        );
    }

    #[test]
    fn literals_that_coercion_would_treat_otherwise_do_not_bind() {
        let n = |s: &str| Literal::Number(s.into());
        // An integer column compared with a decimal is compared as a float: no binding.
        assert_eq!(bind_literal(&n("2.5"), &T::Int64), None);
        // Other integer widths: the column is cast, not the literal.
        assert_eq!(bind_literal(&n("7"), &T::Int32), None);
        // Beyond i64: DataFusion makes it a UInt64 or a decimal.
        assert_eq!(bind_literal(&n("18446744073709551615"), &T::Int64), None);
        // A number against a string column, a string against a number column.
        assert_eq!(bind_literal(&n("5"), &T::Utf8), None);
        assert_eq!(bind_literal(&Literal::String("5".into()), &T::Int64), None);
        // A string that is not a timestamp.
        assert_eq!(
            bind_literal(&Literal::String("soon".into()), &timestamp_ns()),
            None
        );
        // Timestamps in other units or zones.
        let ms = T::Timestamp(TimeUnit::Millisecond, None);
        assert_eq!(
            bind_literal(&Literal::Timestamp("2016-01-01 00:00:00".into()), &ms),
            None
        );
    }
}
