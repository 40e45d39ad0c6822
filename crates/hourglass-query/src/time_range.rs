//! Extracting the time range a query's filters allow, for pruning memory chunks and files.

use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;
use hourglass_core::TIME_COLUMN;

/// An inclusive lower and exclusive upper bound on `time`, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min: i64,
    /// Exclusive.
    pub max: i64,
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange {
            min: i64::MIN,
            max: i64::MAX,
        }
    }
}

impl TimeRange {
    pub fn overlaps(&self, min_time: i64, max_time: i64) -> bool {
        max_time >= self.min && min_time < self.max
    }

    /// Narrows the range by every top-level conjunct of the form `time <op> literal`.
    pub fn from_filters(filters: &[Expr]) -> TimeRange {
        let mut range = TimeRange::default();
        for f in filters {
            range.narrow(f);
        }
        range
    }

    fn narrow(&mut self, expr: &Expr) {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if *op == Operator::And {
                    self.narrow(left);
                    self.narrow(right);
                    return;
                }
                let (op, value) = match (is_time(left), is_time(right)) {
                    (true, false) => (*op, literal_nanos(right)),
                    (false, true) => match op.swap() {
                        Some(swapped) => (swapped, literal_nanos(left)),
                        None => return,
                    },
                    _ => return,
                };
                let Some(v) = value else { return };
                match op {
                    Operator::Gt => self.min = self.min.max(v.saturating_add(1)),
                    Operator::GtEq => self.min = self.min.max(v),
                    Operator::Lt => self.max = self.max.min(v),
                    Operator::LtEq => self.max = self.max.min(v.saturating_add(1)),
                    Operator::Eq => {
                        self.min = self.min.max(v);
                        self.max = self.max.min(v.saturating_add(1));
                    }
                    _ => {}
                }
            }
            Expr::Between(b) if !b.negated && is_time(&b.expr) => {
                if let (Some(lo), Some(hi)) = (literal_nanos(&b.low), literal_nanos(&b.high)) {
                    self.min = self.min.max(lo);
                    self.max = self.max.min(hi.saturating_add(1));
                }
            }
            _ => {}
        }
    }
}

fn is_time(expr: &Expr) -> bool {
    match expr {
        Expr::Column(c) => c.name == TIME_COLUMN,
        Expr::Cast(c) => is_time(&c.expr),
        _ => false,
    }
}

fn literal_nanos(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
            ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
            ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
            ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
            _ => None,
        },
        Expr::Cast(c) => literal_nanos(&c.expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    fn ts(v: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(v), None))
    }

    #[test]
    fn narrows_by_comparisons_on_time_only() {
        let filters = vec![
            col("time").gt_eq(ts(10)).and(col("time").lt(ts(20))),
            col("host").eq(lit("a")),
            ts(15).gt(col("time")),
        ];
        assert_eq!(
            TimeRange::from_filters(&filters),
            TimeRange { min: 10, max: 15 }
        );
        assert!(TimeRange { min: 10, max: 15 }.overlaps(14, 100));
        assert!(!TimeRange { min: 10, max: 15 }.overlaps(15, 100));
    }
}
