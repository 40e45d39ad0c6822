//! Subqueries, `SELECT … FROM (SELECT …)`: the inner statement becomes a derived table of the
//! outer statement's SQL, one per measurement it answers, with the inner `GROUP BY` tags as its
//! tags and the inner columns (by their output names) as its fields, so the outer statement is
//! translated exactly as over a measurement.
//!
//! As InfluxDB does, the inner statement runs within the outer statement's time range and, when
//! it aggregates without `GROUP BY time`, with the outer `GROUP BY time` interval. A raw inner
//! statement (fields, tags and math, no `LIMIT`) is nested as SQL; any other (aggregates, fill,
//! selectors' times, transformations, per-series limits: what InfluxDB computes in its
//! iterators) is answered first and its rows become the derived table (`VALUES`), at most
//! [`MAX_ROWS`] of them.

use std::collections::{BTreeMap, BTreeSet};

use hourglass_core::{ColumnType, Error, Result};

use super::ast::{BinOp, Expr, Fill, Select};
use super::result::{Series, Value};
use super::sql::{ident, string, timestamp, Measurement};
use super::timecond;
use super::Ctx;

/// At most this many rows of an answered inner statement are carried into the outer one.
pub const MAX_ROWS: usize = 200_000;

/// The derived tables the outer statement reads from its subquery `inner`.
pub async fn measurements(
    ctx: &Ctx<'_>,
    outer: &Select,
    inner: &Select,
) -> Result<Vec<Measurement>> {
    let inner = inherit(outer, inner, ctx.now)?;
    if let Some(raw) = super::select::raw_derived_tables(ctx, &inner).await? {
        return Ok(raw);
    }
    let series = Box::pin(super::select::select(ctx, &inner)).await?;
    // InfluxDB reads an aggregate's windows in time order, the series of each window one after
    // the other; without `GROUP BY time` that is series by series.
    derived_tables(&series, inner.group_time.is_none())
}

/// The inner statement as InfluxDB runs it under `outer`: the outer time range ANDed to its
/// condition, and the outer `GROUP BY time` interval when it aggregates without one.
pub fn inherit(outer: &Select, inner: &Select, now: i64) -> Result<Select> {
    let (mut range, _) = timecond::split(outer.condition.as_ref(), now)?;
    if outer.group_time.is_some() && range.hi.is_none() {
        range.hi = Some(now);
    }
    let mut s = inner.clone();
    let time = || {
        Box::new(Expr::Var {
            name: "time".into(),
            cast: None,
        })
    };
    let mut conds: Vec<Expr> = s.condition.take().into_iter().collect();
    if let Some(lo) = range.lo {
        conds.push(Expr::Binary {
            op: BinOp::GtEq,
            lhs: time(),
            rhs: Box::new(Expr::Integer(lo)),
        });
    }
    if let Some(hi) = range.hi {
        conds.push(Expr::Binary {
            op: BinOp::LtEq,
            lhs: time(),
            rhs: Box::new(Expr::Integer(hi)),
        });
    }
    s.condition = conds.into_iter().reduce(|a, b| Expr::Binary {
        op: BinOp::And,
        lhs: Box::new(Expr::Paren(Box::new(a))),
        rhs: Box::new(Expr::Paren(Box::new(b))),
    });
    if s.group_time.is_none() && super::fields::is_aggregate(&s) {
        s.group_time = outer.group_time;
    }
    // The outer `GROUP BY` tags split the inner series too.
    for t in &outer.group_tags {
        if !s.group_tags.contains(t) {
            s.group_tags.push(t.clone());
        }
    }
    s.group_tag_regexes
        .extend(outer.group_tag_regexes.iter().cloned());
    s.group_all |= outer.group_all;
    // InfluxDB drops the inner windows without points rather than filling them with nulls.
    if s.group_time.is_some() && s.fill == Fill::Null {
        s.fill = Fill::None;
    }
    Ok(s)
}

/// The type a column of answered rows has (`None` when every value is null).
fn column_type(values: impl Iterator<Item = Value>) -> Option<ColumnType> {
    let mut ty = None;
    for v in values {
        let t = match v {
            Value::Float(_) => ColumnType::Double,
            Value::Int(_) => ColumnType::Bigint,
            Value::UInt(_) => ColumnType::Ubigint,
            Value::Str(_) => ColumnType::Varchar,
            Value::Bool(_) => ColumnType::Boolean,
            Value::Time(_) | Value::Null => continue,
        };
        ty = Some(match (ty, t) {
            (None, t) => t,
            (Some(a), b) if a == b => a,
            // Numbers of several types (a fill value, say): floats.
            (Some(a), b)
                if [a, b].iter().all(|t| {
                    matches!(
                        t,
                        ColumnType::Double | ColumnType::Bigint | ColumnType::Ubigint
                    )
                }) =>
            {
                ColumnType::Double
            }
            (Some(_), _) => ColumnType::Varchar,
        });
    }
    ty
}

fn literal(v: &Value, ty: ColumnType) -> String {
    let null = |t: &str| format!("CAST(NULL AS {t})");
    match ty {
        ColumnType::Double => match v.as_f64() {
            Some(f) => format!("CAST({f:?} AS DOUBLE)"),
            None => null("DOUBLE"),
        },
        ColumnType::Bigint => match v {
            Value::Int(i) => format!("CAST({i} AS BIGINT)"),
            _ => null("BIGINT"),
        },
        ColumnType::Ubigint => match v {
            Value::UInt(u) => format!("CAST({u} AS BIGINT UNSIGNED)"),
            _ => null("BIGINT UNSIGNED"),
        },
        ColumnType::Boolean => match v {
            Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            _ => null("BOOLEAN"),
        },
        _ => match v {
            Value::Str(s) => string(s),
            Value::Null => null("VARCHAR"),
            other => string(&match other {
                Value::Float(f) => f.to_string(),
                Value::Int(i) => i.to_string(),
                Value::UInt(u) => u.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => String::new(),
            }),
        },
    }
}

/// One derived table (`VALUES`) per measurement of answered inner series.
pub fn derived_tables(series: &[Series], by_series: bool) -> Result<Vec<Measurement>> {
    let total: usize = series.iter().map(|s| s.values.len()).sum();
    if total > MAX_ROWS {
        return Err(Error::exhausted(format!(
            "a subquery answers more than {MAX_ROWS} rows, more than Hourglass's InfluxQL carries into the outer statement: narrow its time range or aggregate it"
        )));
    }
    let mut by_name: BTreeMap<String, Vec<&Series>> = BTreeMap::new();
    for s in series {
        by_name
            .entry(s.name.clone().unwrap_or_default())
            .or_default()
            .push(s);
    }
    let mut out = Vec::new();
    for (name, list) in by_name {
        let tags: BTreeSet<String> = list
            .iter()
            .flat_map(|s| s.tags.iter().map(|(k, _)| k.clone()))
            .collect();
        let tags: Vec<String> = tags.into_iter().collect();
        // Columns by position (every series of one statement has the same), but `time` and
        // names taken by a tag.
        let columns: Vec<(usize, String)> = list[0]
            .columns
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, c)| !tags.contains(c) && c.as_str() != "time")
            .map(|(i, c)| (i, c.clone()))
            .collect();
        let mut fields = BTreeMap::new();
        let mut types = Vec::new();
        for (i, c) in &columns {
            let values = list.iter().flat_map(|s| {
                s.values
                    .iter()
                    .map(|r| r.get(*i).cloned().unwrap_or(Value::Null))
            });
            let ty = column_type(values);
            if let Some(t) = ty {
                fields.insert(c.clone(), t);
            }
            types.push(ty.unwrap_or(ColumnType::Double));
        }
        let mut rows = Vec::new();
        for s in &list {
            for r in &s.values {
                let Some(Value::Time(t)) = r.first() else {
                    continue;
                };
                let mut cells = vec![timestamp(*t)];
                for tag in &tags {
                    let v = s
                        .tags
                        .iter()
                        .find(|(k, _)| k == tag)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("");
                    cells.push(string(v));
                }
                for ((i, _), ty) in columns.iter().zip(&types) {
                    cells.push(literal(r.get(*i).unwrap_or(&Value::Null), *ty));
                }
                rows.push(format!("({})", cells.join(", ")));
            }
        }
        if rows.is_empty() {
            continue;
        }
        let mut names = vec![ident("time")];
        names.extend(tags.iter().map(|t| ident(t)));
        names.extend(columns.iter().map(|(_, c)| ident(c)));
        out.push(Measurement {
            db: String::new(),
            name: name.clone(),
            tags,
            fields,
            by_series,
            source: Some(format!(
                "SELECT * FROM (VALUES {}) AS {}({})",
                rows.join(", "),
                ident("__subquery"),
                names.join(", ")
            )),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influxql::ast::Statement;
    use crate::influxql::parser::parse_query;

    fn select(q: &str) -> Select {
        match &parse_query(q).unwrap()[0] {
            Statement::Select(s) => (**s).clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn inner_statement_takes_the_outer_range_and_interval() {
        let outer = select("SELECT mean(m) FROM (SELECT mean(v) AS m FROM cpu GROUP BY host) WHERE time >= 10 AND time < 20 GROUP BY time(5ns)");
        let super::super::ast::Source::Subquery(inner) = &outer.from[0] else {
            unreachable!()
        };
        let s = inherit(&outer, inner, 1_000).unwrap();
        assert_eq!(s.group_time, Some((5, 0)));
        assert_eq!(s.fill, Fill::None);
        let (range, rest) = timecond::split(s.condition.as_ref(), 1_000).unwrap();
        assert_eq!((range.lo, range.hi), (Some(10), Some(19)));
        assert!(rest.is_none());
        // A raw inner statement keeps having no interval.
        let outer = select("SELECT max(x) FROM (SELECT v AS x FROM cpu WHERE host = 'a') GROUP BY time(5ns), region");
        let super::super::ast::Source::Subquery(inner) = &outer.from[0] else {
            unreachable!()
        };
        let s = inherit(&outer, inner, 1_000).unwrap();
        assert_eq!(s.group_time, None);
        assert_eq!(s.group_tags, vec!["region".to_string()]);
        let (range, rest) = timecond::split(s.condition.as_ref(), 1_000).unwrap();
        assert_eq!((range.lo, range.hi), (None, Some(1_000)));
        assert!(rest.is_some());
    }

    #[test]
    fn answered_rows_become_a_typed_derived_table() {
        let series = vec![Series {
            name: Some("cpu".into()),
            tags: vec![("host".into(), "a'b".into())],
            columns: vec!["time".into(), "m".into(), "s".into()],
            values: vec![
                vec![Value::Time(5), Value::Int(1), Value::Null],
                vec![Value::Time(6), Value::Float(2.5), Value::Str("x".into())],
            ],
            tz: None,
        }];
        let m = derived_tables(&series, true).unwrap();
        assert!(m[0].by_series);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].tags, vec!["host".to_string()]);
        assert_eq!(m[0].fields.get("m"), Some(&ColumnType::Double));
        assert_eq!(m[0].fields.get("s"), Some(&ColumnType::Varchar));
        let sql = m[0].source.clone().unwrap();
        assert!(
            sql.contains("'a''b', CAST(1.0 AS DOUBLE), CAST(NULL AS VARCHAR)"),
            "{sql}"
        );
        assert!(
            sql.ends_with("AS \"__subquery\"(\"time\", \"host\", \"m\", \"s\")"),
            "{sql}"
        );
    }
}
