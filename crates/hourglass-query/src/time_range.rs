//! Extracting the time range a query's filters allow, for pruning memory chunks and files.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::logical_expr::expr::{Cast, TryCast};
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

    /// Narrows the range by every top-level conjunct that compares `time` — or a cast of `time`
    /// to a timestamp — with a literal (`<`, `<=`, `=`, `>=`, `>`, `BETWEEN`).
    ///
    /// The range must never leave out a row the filters keep: it prunes memory chunks and files,
    /// and a day holding rewrites is resolved only inside it. A cast of `time` to a coarser unit
    /// truncates, so `CAST(time AS TIMESTAMP(0)) <= x` keeps rows up to a second after `x`: such
    /// a comparison bounds `time` only to within one unit, and the range is widened by that unit
    /// on both sides. Anything else (functions of `time` such as `date_trunc`, `date_bin` or
    /// `bin`, casts to other types, `OR`, `NOT`, `!=`) does not narrow the range.
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
                let (op, slack, value) = match (time_slack(left), time_slack(right)) {
                    (Some(slack), None) => (*op, slack, literal_nanos(right)),
                    (None, Some(slack)) => match op.swap() {
                        Some(swapped) => (swapped, slack, literal_nanos(left)),
                        None => return,
                    },
                    _ => return,
                };
                let Some(v) = value else { return };
                // `time` lies within `slack` nanoseconds of the compared value, on either side.
                let lo = |v: i64| v.saturating_sub(slack);
                let hi = |v: i64| v.saturating_add(slack).saturating_add(1);
                match op {
                    Operator::Gt => self.raise_min(lo(v.saturating_add(1))),
                    Operator::GtEq => self.raise_min(lo(v)),
                    Operator::Lt => self.lower_max(hi(v.saturating_sub(1))),
                    Operator::LtEq => self.lower_max(hi(v)),
                    Operator::Eq => {
                        self.raise_min(lo(v));
                        self.lower_max(hi(v));
                    }
                    _ => {}
                }
            }
            Expr::Between(b) if !b.negated => {
                let Some(slack) = time_slack(&b.expr) else {
                    return;
                };
                if let (Some(low), Some(high)) = (literal_nanos(&b.low), literal_nanos(&b.high)) {
                    self.raise_min(low.saturating_sub(slack));
                    self.lower_max(high.saturating_add(slack).saturating_add(1));
                }
            }
            _ => {}
        }
    }

    fn raise_min(&mut self, min: i64) {
        self.min = self.min.max(min);
    }

    fn lower_max(&mut self, max: i64) {
        self.max = self.max.min(max);
    }
}

/// For `time` itself, or a chain of casts of it to timestamps: how far (in nanoseconds, below
/// one unit of the coarsest cast) the expression's value may lie from `time`'s. `None` for
/// anything else.
fn time_slack(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Column(c) => (c.name == TIME_COLUMN).then_some(0),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            let data_type = field.data_type();
            let inner = time_slack(expr)?;
            let DataType::Timestamp(unit, _) = data_type else {
                return None;
            };
            let unit_nanos = match unit {
                TimeUnit::Nanosecond => 1,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Second => 1_000_000_000,
            };
            Some(inner.max(unit_nanos - 1))
        }
        _ => None,
    }
}

/// A timestamp literal (possibly cast, the cast evaluated exactly) in nanoseconds.
fn literal_nanos(expr: &Expr) -> Option<i64> {
    match literal_value(expr)? {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

fn literal_value(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v.clone()),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            let data_type = field.data_type();
            literal_value(expr)?.cast_to(data_type).ok()
        }
        _ => None,
    }
}

/// One table's scan and the time range it read (`range.max` exclusive; an unbounded scan is
/// [`TimeRange::default`], all time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRange {
    pub database: String,
    pub table: String,
    pub range: TimeRange,
}

tokio::task_local! {
    static SCAN_RANGES: std::sync::Arc<ScanRanges>;
}

/// The time ranges the table scans of a query read, collected while the query is planned inside
/// [`ScanRanges::collect`] (scheduled queries record what each run read, to rerun it when data
/// arrives late in that range: `docs/scheduled-queries.md`, "Late data").
///
/// Every scan planned on the collecting task records its table and the range of its pushed-down
/// time filters ([`TimeRange::from_filters`], before retention is applied), whether or not the
/// table holds rows yet; a query planned elsewhere records nothing and pays nothing.
#[derive(Debug, Default)]
pub struct ScanRanges {
    ranges: std::sync::Mutex<Vec<ScanRange>>,
}

impl ScanRanges {
    /// Runs `work` (planning a query) with scans recording their ranges into `self`.
    pub async fn collect<F: std::future::Future>(
        self: &std::sync::Arc<Self>,
        work: F,
    ) -> F::Output {
        SCAN_RANGES.scope(self.clone(), work).await
    }

    /// Records a scan of `database.table` over `range` into the collector of the current task,
    /// if there is one (called by the table provider's `scan`).
    pub fn record(database: &str, table: &str, range: TimeRange) {
        let _ = SCAN_RANGES.try_with(|c| {
            let mut ranges = c.ranges.lock().unwrap_or_else(|e| e.into_inner());
            let scan = ScanRange {
                database: database.to_string(),
                table: table.to_string(),
                range,
            };
            if !ranges.contains(&scan) {
                ranges.push(scan);
            }
        });
    }

    /// What was recorded: per table, overlapping or adjacent ranges merged; sorted by database,
    /// table and start.
    pub fn ranges(&self) -> Vec<ScanRange> {
        let mut all = self
            .ranges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        all.sort_by(|a, b| {
            (&a.database, &a.table, a.range.min).cmp(&(&b.database, &b.table, b.range.min))
        });
        let mut out: Vec<ScanRange> = Vec::with_capacity(all.len());
        for s in all {
            if let Some(last) = out.last_mut() {
                if last.database == s.database
                    && last.table == s.table
                    && s.range.min <= last.range.max
                {
                    last.range.max = last.range.max.max(s.range.max);
                    continue;
                }
            }
            out.push(s);
        }
        out
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

    fn seconds_cast(e: Expr) -> Expr {
        Expr::Cast(Cast::new(
            Box::new(e),
            DataType::Timestamp(TimeUnit::Second, None),
        ))
    }

    /// The rows of `times` that `filter` keeps must all lie in the range derived from it.
    fn assert_conservative(filter: Expr, keeps: impl Fn(i64) -> bool, times: &[i64]) {
        let range = TimeRange::from_filters(std::slice::from_ref(&filter));
        for &t in times {
            if keeps(t) {
                assert!(
                    range.overlaps(t, t),
                    "{filter} keeps {t}, outside {range:?}"
                );
            }
        }
    }

    #[test]
    fn a_truncating_cast_of_time_widens_the_range_by_its_unit() {
        const S: i64 = 1_000_000_000;
        let x = 1_796_400_000 * S;
        let times: Vec<i64> = [-S - 1, -1, 0, S - 1, S, S + 1, S / 2, 2 * S - 1, 2 * S]
            .iter()
            .map(|d| x + d)
            .collect();
        // CAST(time AS TIMESTAMP(0)) truncates to the second (`t - t % S` for positive times).
        let trunc = |t: i64| t - t.rem_euclid(S);
        let lit_s = |v: i64| lit(ScalarValue::TimestampSecond(Some(v / S), None));
        let c = || seconds_cast(col("time"));
        assert_conservative(c().lt_eq(lit_s(x)), |t| trunc(t) <= x, &times);
        assert_conservative(c().lt(lit_s(x)), |t| trunc(t) < x, &times);
        assert_conservative(c().eq(lit_s(x)), |t| trunc(t) == x, &times);
        assert_conservative(c().gt_eq(lit_s(x)), |t| trunc(t) >= x, &times);
        assert_conservative(c().gt(lit_s(x)), |t| trunc(t) > x, &times);
        assert_conservative(lit_s(x).gt_eq(c()), |t| trunc(t) <= x, &times);
        assert_conservative(
            c().between(lit_s(x), lit_s(x + S)),
            |t| (x..=x + S).contains(&trunc(t)),
            &times,
        );
        // Still a bound: within a second of the literal.
        let range = TimeRange::from_filters(&[c().lt_eq(lit_s(x))]);
        assert_eq!(range.max, x + S);
    }

    #[test]
    fn functions_of_time_and_casts_to_other_types_do_not_narrow() {
        let trunc = Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
            datafusion::functions::datetime::date_trunc(),
            vec![lit("hour"), col("time")],
        ));
        let to_text = Expr::Cast(Cast::new(Box::new(col("time")), DataType::Utf8));
        for f in [
            trunc.lt(ts(10)),
            to_text.lt(lit("x")),
            col("time").not_eq(ts(5)),
        ] {
            assert_eq!(TimeRange::from_filters(&[f]), TimeRange::default());
        }
    }

    #[test]
    fn a_cast_literal_is_evaluated_not_unwrapped() {
        // CAST(<1.5 s> AS TIMESTAMP(0)) is 1 s: `time < 1 s` must not become `time < 1.5 s`,
        // nor `time >= 1.5 s` keep only rows from 1.5 s.
        let cast_lit = Expr::Cast(Cast::new(
            Box::new(ts(1_500_000_000)),
            DataType::Timestamp(TimeUnit::Second, None),
        ));
        let range = TimeRange::from_filters(&[col("time").gt_eq(cast_lit)]);
        assert_eq!(range.min, 1_000_000_000);
    }

    #[tokio::test]
    async fn scan_ranges_are_collected_on_the_collecting_task_only() {
        let r = |min, max| TimeRange { min, max };
        ScanRanges::record("db", "t", r(0, 10)); // no collector: nothing happens
        let c = std::sync::Arc::new(ScanRanges::default());
        c.collect(async {
            ScanRanges::record("db", "t", r(20, 30));
            ScanRanges::record("db", "t", r(0, 10));
            ScanRanges::record("db", "t", r(10, 15));
            ScanRanges::record("db", "t", r(0, 10));
            ScanRanges::record("db", "u", TimeRange::default());
        })
        .await;
        let got: Vec<(String, i64, i64)> = c
            .ranges()
            .into_iter()
            .map(|s| (s.table, s.range.min, s.range.max))
            .collect();
        assert_eq!(
            got,
            [
                ("t".to_string(), 0, 15),
                ("t".to_string(), 20, 30),
                ("u".to_string(), i64::MIN, i64::MAX)
            ]
        );
    }
}
