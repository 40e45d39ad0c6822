//! `CAST(time AS TIMESTAMP(0)) = x` (or `AS DATE`) as the exact range of `time` it selects.
//!
//! A cast of a nanosecond timestamp to a coarser unit or to a date is lossy: many times map to
//! one value. DataFusion 55's interval analysis inverts such a cast as if it were exact, so after
//! a filter `CAST(time AS TIMESTAMP(0)) = x` it takes `time` itself for a constant, and drops an
//! `ORDER BY time`, or hands `first_value(… ORDER BY time)` rows in any order (found by the
//! differential query fuzzer; `tests/slt/lossy_time_cast.slt`). This analyzer rule rewrites the
//! equality into `time >= lo AND time <= hi`, the exact set of times the cast maps to `x`, which
//! the analysis handles correctly (and the table provider prunes by). The bounds are checked with
//! Arrow's own cast at their edges; where they do not check out, the filter is left as it was.
//!
//! It works around a DataFusion bug, so `disabled_rules=all` leaves it on; only its name
//! switches it off.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ExprSchema};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{BinaryExpr, Expr, Filter, LogicalPlan, Operator};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::scalar::ScalarValue;

/// The optimizer rule; registered on every session, after DataFusion's own rules (so the
/// compared value has been folded to a literal).
#[derive(Debug, Default)]
pub struct LossyTimeCast;

impl OptimizerRule for LossyTimeCast {
    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        if !crate::rules::Rule::LossyTimeCast.enabled(&config.options()) {
            return Ok(Transformed::no(plan));
        }
        let LogicalPlan::Filter(filter) = plan else {
            return Ok(Transformed::no(plan));
        };
        let schema = filter.input.schema().clone();
        let predicate = filter
            .predicate
            .clone()
            .transform_up(|e| Ok(rewrite(e, &schema)))?;
        if !predicate.transformed {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        }
        Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
            predicate.data,
            filter.input,
        )?)))
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn name(&self) -> &str {
        "hourglass_lossy_time_cast"
    }
}

fn rewrite(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = &expr
    else {
        return Transformed::no(expr);
    };
    let (cast_expr, literal) = match (left.as_ref(), right.as_ref()) {
        (Expr::Cast(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Cast(c)) => (c, v),
        _ => return Transformed::no(expr),
    };
    match exact_range(cast_expr, literal, schema) {
        Some((column, lo, hi)) => Transformed::yes(column.clone().between(lo, hi)),
        None => Transformed::no(expr),
    }
}

/// For `CAST(column AS target) = value` with a nanosecond timestamp column and a lossy target:
/// the column and the literal bounds of the times that cast to `value`.
fn exact_range<'a>(
    c: &'a Cast,
    value: &ScalarValue,
    schema: &DFSchema,
) -> Option<(&'a Expr, Expr, Expr)> {
    let Expr::Column(column) = c.expr.as_ref() else {
        return None;
    };
    let source = schema.field_from_column(column).ok()?.data_type().clone();
    let DataType::Timestamp(TimeUnit::Nanosecond, tz) = &source else {
        return None;
    };
    let target = c.field.data_type();
    let unit: i64 = match target {
        DataType::Timestamp(unit, target_tz) if target_tz == tz => match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => return None,
        },
        DataType::Date32 | DataType::Date64 if tz.is_none() => 86_400_000_000_000,
        _ => return None,
    };
    if value.data_type() != *target || value.is_null() {
        return None;
    }
    // The value in nanoseconds: cast it back (exact, from the coarser type).
    let v = match value.cast_to(&source).ok()? {
        ScalarValue::TimestampNanosecond(Some(v), _) => v,
        _ => return None,
    };
    let maps_to_value = |t: i64| -> Option<bool> {
        let array: ArrayRef = Arc::new(Int64Array::from(vec![t]));
        let times = cast(&array, &source).ok()?;
        let casted = cast(&times, target).ok()?;
        let got = ScalarValue::try_from_array(&casted, 0).ok()?;
        Some(!casted.is_null(0) && got == *value)
    };
    // Truncation toward zero (Arrow's unit conversion) or toward minus infinity (dates): try each
    // and keep the one whose edges Arrow's cast confirms.
    let candidates = [
        (v, v.checked_add(unit - 1)?),
        (v.checked_sub(unit - 1)?, v),
        (v.checked_sub(unit - 1)?, v.checked_add(unit - 1)?),
    ];
    for (lo, hi) in candidates {
        let inside = maps_to_value(lo)? && maps_to_value(hi)?;
        let outside_lo = lo == i64::MIN || !maps_to_value(lo - 1)?;
        let outside_hi = hi == i64::MAX || !maps_to_value(hi + 1)?;
        if inside && outside_lo && outside_hi {
            let bound =
                |t: i64| Expr::Literal(ScalarValue::TimestampNanosecond(Some(t), tz.clone()), None);
            return Some((c.expr.as_ref(), bound(lo), bound(hi)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{col, lit};

    fn schema() -> DFSchema {
        DFSchema::try_from(Schema::new(vec![Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        )]))
        .unwrap()
    }

    fn cast_eq(target: DataType, value: ScalarValue) -> Expr {
        Expr::Cast(Cast::new(Box::new(col("time")), target)).eq(lit(value))
    }

    fn range(e: Expr) -> Option<(i64, i64)> {
        match rewrite(e, &schema()).data {
            Expr::Between(b) => match (*b.low, *b.high) {
                (
                    Expr::Literal(ScalarValue::TimestampNanosecond(Some(lo), _), _),
                    Expr::Literal(ScalarValue::TimestampNanosecond(Some(hi), _), _),
                ) => Some((lo, hi)),
                _ => None,
            },
            _ => None,
        }
    }

    #[test]
    fn seconds_positive_negative_and_zero() {
        let s = |v| ScalarValue::TimestampSecond(Some(v), None);
        let ts0 = DataType::Timestamp(TimeUnit::Second, None);
        assert_eq!(
            range(cast_eq(ts0.clone(), s(5))),
            Some((5_000_000_000, 5_999_999_999))
        );
        // Arrow truncates toward zero: -5 s holds (-6 s, -5 s], 0 s holds (-1 s, 1 s).
        assert_eq!(
            range(cast_eq(ts0.clone(), s(-5))),
            Some((-5_999_999_999, -5_000_000_000))
        );
        assert_eq!(range(cast_eq(ts0, s(0))), Some((-999_999_999, 999_999_999)));
    }

    #[test]
    fn dates_and_what_is_left_alone() {
        let day = 86_400_000_000_000i64;
        assert_eq!(
            range(cast_eq(DataType::Date32, ScalarValue::Date32(Some(2)))),
            Some((2 * day, 3 * day - 1))
        );
        // Exact casts, other operators and other types are not rewritten.
        let ns = DataType::Timestamp(TimeUnit::Nanosecond, None);
        assert_eq!(
            range(cast_eq(ns, ScalarValue::TimestampNanosecond(Some(1), None))),
            None
        );
        let lt = Expr::Cast(Cast::new(
            Box::new(col("time")),
            DataType::Timestamp(TimeUnit::Second, None),
        ))
        .lt(lit(ScalarValue::TimestampSecond(Some(1), None)));
        assert_eq!(range(lt), None);
        assert_eq!(
            range(cast_eq(DataType::Int64, ScalarValue::Int64(Some(1)))),
            None
        );
    }
}
