//! Time in InfluxQL `WHERE` clauses: the conditions on `time` are taken out of the condition
//! (they must be ANDed at its top level, as InfluxDB requires) and folded into one inclusive
//! range of nanoseconds; `now()`, RFC3339 strings, epoch integers (ns) and durations are
//! evaluated here, with `now()` fixed once per query.

use hourglass_core::{Error, Result};

use super::ast::{BinOp, Expr};

/// An inclusive time range in ns; `None` ends are unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

impl TimeRange {
    pub fn is_empty(&self) -> bool {
        matches!((self.lo, self.hi), (Some(l), Some(h)) if l > h)
    }
}

fn is_time(e: &Expr) -> bool {
    matches!(e.unparen(), Expr::Var { name, .. } if name.eq_ignore_ascii_case("time"))
}

fn mentions_time(e: &Expr) -> bool {
    match e {
        Expr::Var { .. } => is_time(e),
        Expr::Binary { lhs, rhs, .. } => mentions_time(lhs) || mentions_time(rhs),
        Expr::Paren(e) => mentions_time(e),
        Expr::Call { args, .. } => args.iter().any(mentions_time),
        _ => false,
    }
}

/// Splits `cond` into the range its time conditions allow and the rest.
pub fn split(cond: Option<&Expr>, now: i64) -> Result<(TimeRange, Option<Expr>)> {
    let mut range = TimeRange::default();
    let Some(cond) = cond else {
        return Ok((range, None));
    };
    let rest = take(cond, now, &mut range)?;
    Ok((range, rest))
}

fn take(e: &Expr, now: i64, range: &mut TimeRange) -> Result<Option<Expr>> {
    match e {
        Expr::Paren(inner) => take(inner, now, range),
        Expr::Binary {
            op: BinOp::And,
            lhs,
            rhs,
        } => {
            let l = take(lhs, now, range)?;
            let r = take(rhs, now, range)?;
            Ok(match (l, r) {
                (Some(l), Some(r)) => Some(Expr::Binary {
                    op: BinOp::And,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                }),
                (l, r) => l.or(r),
            })
        }
        Expr::Binary { op, lhs, rhs } if op.is_comparison() && (is_time(lhs) || is_time(rhs)) => {
            let (op, other) = if is_time(lhs) {
                (*op, rhs.as_ref())
            } else {
                (flip(*op), lhs.as_ref())
            };
            let t = eval_time(other, now)?;
            let (lo, hi) = match op {
                BinOp::Gt => (Some(t.saturating_add(1)), None),
                BinOp::GtEq => (Some(t), None),
                BinOp::Lt => (None, Some(t.saturating_sub(1))),
                BinOp::LtEq => (None, Some(t)),
                BinOp::Eq => (Some(t), Some(t)),
                _ => {
                    return Err(Error::invalid(
                        "invalid time comparison operator: only =, <, <=, > and >= compare time",
                    ))
                }
            };
            if let Some(lo) = lo {
                range.lo = Some(range.lo.map_or(lo, |l| l.max(lo)));
            }
            if let Some(hi) = hi {
                range.hi = Some(range.hi.map_or(hi, |h| h.min(hi)));
            }
            Ok(None)
        }
        other if mentions_time(other) => Err(Error::invalid(
            "invalid time condition: conditions on time must be ANDed at the top level of WHERE (Hourglass does not support time inside OR)",
        )),
        other => Ok(Some(other.clone())),
    }
}

fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Gt => BinOp::Lt,
        BinOp::GtEq => BinOp::LtEq,
        BinOp::Lt => BinOp::Gt,
        BinOp::LtEq => BinOp::GtEq,
        o => o,
    }
}

/// Evaluates a time expression to ns since the epoch.
pub fn eval_time(e: &Expr, now: i64) -> Result<i64> {
    match e {
        Expr::Paren(e) => eval_time(e, now),
        Expr::Call { name, args } if name == "now" && args.is_empty() => Ok(now),
        Expr::Integer(v) => Ok(*v),
        Expr::Duration(v) => Ok(*v),
        Expr::Number(v) if v.is_finite() => Ok(*v as i64),
        Expr::Str(s) => parse_time(s),
        Expr::Binary { op, lhs, rhs } if matches!(op, BinOp::Add | BinOp::Sub) => {
            let l = eval_time(lhs, now)?;
            let r = eval_time(rhs, now)?;
            let v = if *op == BinOp::Add {
                l.checked_add(r)
            } else {
                l.checked_sub(r)
            };
            v.ok_or_else(|| Error::invalid("time overflows in the WHERE clause"))
        }
        other => Err(Error::invalid(format!(
            "invalid operation: time and {} are not compatible",
            describe(other)
        ))),
    }
}

fn describe(e: &Expr) -> &'static str {
    match e {
        Expr::Var { .. } => "*influxql.VarRef",
        Expr::Bool(_) => "*influxql.BooleanLiteral",
        Expr::Regex(_) => "*influxql.RegexLiteral",
        Expr::Call { .. } => "*influxql.Call",
        _ => "*influxql.BinaryExpr",
    }
}

/// RFC3339 (with or without fraction and zone), `YYYY-MM-DD HH:MM:SS[.f]` and `YYYY-MM-DD`, as
/// InfluxDB accepts time strings; naive forms are UTC.
pub fn parse_time(s: &str) -> Result<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let to_ns = |dt: chrono::DateTime<chrono::Utc>| {
        dt.timestamp_nanos_opt()
            .ok_or_else(|| Error::invalid(format!("time {s} is out of range")))
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return to_ns(dt.to_utc());
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
            return to_ns(dt.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return to_ns(dt.and_utc());
        }
    }
    Err(Error::invalid(
        "invalid operation: time and *influxql.StringLiteral are not compatible",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influxql::parser::parse_query;

    fn cond(q: &str) -> Expr {
        match &parse_query(&format!("SELECT v FROM m WHERE {q}")).unwrap()[0] {
            crate::influxql::ast::Statement::Select(s) => s.condition.clone().unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn ranges_from_mixed_conditions() {
        let now = 10_000_000_000_000;
        let (r, rest) = split(
            Some(&cond(
                "time > now() - 1s AND host = 'a' AND time <= '1970-01-01T03:00:00Z'",
            )),
            now,
        )
        .unwrap();
        assert_eq!(r.lo, Some(now - 1_000_000_000 + 1));
        assert_eq!(r.hi, Some(3 * 3_600_000_000_000));
        assert!(rest.is_some());
        let (r, rest) = split(Some(&cond("'2020-01-01' <= time")), now).unwrap();
        assert_eq!(r.lo, Some(1_577_836_800_000_000_000));
        assert!(rest.is_none());
        assert!(split(Some(&cond("time > 5 OR host = 'a'")), now).is_err());
        let (r, _) = split(Some(&cond("time >= 1500000000s")), now).unwrap();
        assert_eq!(r.lo, Some(1_500_000_000_000_000_000));
    }
}
