//! Selectors that return whole points: `top()` and `bottom()` (the N highest or lowest values
//! per window, optionally one per distinct combination of tags, at their own times, in time
//! order), and a single selector (`max`, `min`, `first`, `last`) beside other fields and tags,
//! which answer the selected point's values. Computed in Rust over the raw points (per series,
//! in time order), with InfluxDB 1.6's tie rules (earlier points win) and its errors.

use std::collections::BTreeMap;

use hourglass_core::{Error, Result};

use super::ast::{Expr, Field, Select};
use super::fill::{fill_windows, Window};
use super::result::{Column, Value};
use super::select::{
    limit_rows, tag_column, too_many_rows, where_clause, window_start, SeriesRows, MAX_ROWS,
};
use super::sql::{self, ident, Measurement, Ref};
use super::timecond::TimeRange;
use super::Ctx;

/// Selectors that pick one point.
const POINT_SELECTORS: [&str; 4] = ["max", "min", "first", "last"];

fn call_of(f: &Field) -> Option<(&str, &[Expr])> {
    match f.expr.unparen() {
        Expr::Call { name, args } => Some((name.as_str(), args.as_slice())),
        _ => None,
    }
}

fn is_bare(e: &Expr) -> bool {
    matches!(
        e.unparen(),
        Expr::Var { .. } | Expr::Wildcard | Expr::Regex(_)
    )
}

fn describe(e: &Expr) -> String {
    match e.unparen() {
        Expr::Var { name, .. } => name.clone(),
        Expr::Integer(i) => i.to_string(),
        Expr::Number(n) => n.to_string(),
        Expr::Str(s) => format!("'{s}'"),
        Expr::Call { name, .. } => format!("{name}()"),
        _ => "…".into(),
    }
}

/// InfluxDB's compile-time checks of `top()`/`bottom()` and of selectors beside other columns.
/// Answers whether the statement is one for [`series`].
pub fn check(fields: &[Field]) -> Result<bool> {
    let calls: Vec<(&str, &[Expr])> = fields.iter().filter_map(call_of).collect();
    for (name, args) in &calls {
        if !matches!(*name, "top" | "bottom") {
            continue;
        }
        if args.len() < 2 {
            return Err(Error::invalid(format!(
                "invalid number of arguments for {name}, expected at least 2, got {}",
                args.len()
            )));
        }
        let last = args[args.len() - 1].unparen();
        let Expr::Integer(n) = last else {
            return Err(Error::invalid(format!(
                "expected integer as last argument in {name}(), found {}",
                describe(last)
            )));
        };
        if *n <= 0 {
            return Err(Error::invalid(format!(
                "limit ({n}) in {name} function must be at least 1"
            )));
        }
        if !matches!(args[0].unparen(), Expr::Var { .. }) {
            return Err(Error::invalid(format!(
                "expected first argument to be a field in {name}(), found {}",
                describe(&args[0])
            )));
        }
        for a in &args[1..args.len() - 1] {
            if !matches!(a.unparen(), Expr::Var { .. }) {
                return Err(Error::invalid(format!(
                    "only fields or tags are allowed in {name}(), found {}",
                    describe(a)
                )));
            }
        }
        if fields
            .iter()
            .any(|f| !is_bare(&f.expr) && call_of(f).is_none_or(|(n, _)| n != *name))
            || calls.len() > 1
        {
            return Err(Error::invalid(format!(
                "selector function {name}() cannot be combined with other functions"
            )));
        }
        return Ok(true);
    }
    let bare = fields.iter().any(|f| is_bare(&f.expr));
    if !bare
        || calls.is_empty()
        || fields
            .iter()
            .any(|f| !is_bare(&f.expr) && call_of(f).is_none())
    {
        return Ok(false);
    }
    if calls.len() > 1 {
        if calls
            .iter()
            .all(|(n, _)| POINT_SELECTORS.contains(n) || *n == "percentile")
        {
            return Err(Error::invalid(
                "mixing multiple selector functions with tags or fields is not supported",
            ));
        }
        return Ok(false);
    }
    Ok(POINT_SELECTORS.contains(&calls[0].0) && calls[0].1.len() == 1)
}

/// `top(f, tag…, N)` as `top(f, tag…, N), tag…`: the tags named are columns after it.
pub fn rewrite(fields: Vec<Field>) -> Vec<Field> {
    let mut out = Vec::new();
    for f in fields {
        let tags: Vec<Expr> = match call_of(&f) {
            Some(("top" | "bottom", args)) if args.len() > 2 => args[1..args.len() - 1].to_vec(),
            _ => Vec::new(),
        };
        out.push(f);
        out.extend(tags.into_iter().map(|expr| Field { expr, alias: None }));
    }
    out
}

/// One point: time, the selected field's value, the other columns' values.
type Point = (i64, Value, Vec<Value>);

fn greater(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(a), Value::Int(b)) => a > b,
        (Value::UInt(a), Value::UInt(b)) => a > b,
        (Value::Str(a), Value::Str(b)) => a > b,
        (Value::Bool(a), Value::Bool(b)) => a & !b,
        (a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a > b,
            _ => false,
        },
    }
}

/// `top`/`bottom` of one window: at most one point per combination of the first `ntags`
/// columns when `ntags > 0`, then the `n` best (ties: the earlier), in time order.
fn top_bottom(points: Vec<Point>, n: usize, ntags: usize, top: bool) -> Vec<Point> {
    let better = |p: &Point, cur: &Point| {
        let (a, b) = (&p.1, &cur.1);
        let wins = if top { greater(a, b) } else { greater(b, a) };
        wins || (a == b && p.0 < cur.0)
    };
    let mut points = if ntags > 0 {
        let mut best: BTreeMap<Vec<String>, Point> = BTreeMap::new();
        for p in points {
            let key: Vec<String> = p.2[..ntags].iter().map(|v| format!("{v:?}")).collect();
            match best.get(&key) {
                Some(cur) if !better(&p, cur) => {}
                _ => {
                    best.insert(key, p);
                }
            }
        }
        best.into_values().collect()
    } else {
        points
    };
    points.sort_by(|a, b| {
        if better(a, b) {
            std::cmp::Ordering::Less
        } else if better(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    points.truncate(n);
    points.sort_by_key(|p| p.0);
    points
}

/// The point a `max`/`min`/`first`/`last` selects (ties: the earlier point; `first`/`last`
/// at one time: the greater value).
fn select_point(points: Vec<Point>, name: &str) -> Option<Point> {
    let mut best: Option<Point> = None;
    for p in points {
        let take = match &best {
            None => true,
            Some(b) => match name {
                "max" => greater(&p.1, &b.1) || (p.1 == b.1 && p.0 < b.0),
                "min" => greater(&b.1, &p.1) || (p.1 == b.1 && p.0 < b.0),
                "first" => p.0 < b.0 || (p.0 == b.0 && greater(&p.1, &b.1)),
                _ => p.0 > b.0 || (p.0 == b.0 && greater(&p.1, &b.1)),
            },
        };
        if take {
            best = Some(p);
        }
    }
    best
}

/// The series of a statement [`check`] accepted (after [`rewrite`]).
#[allow(clippy::too_many_arguments)]
pub async fn series(
    ctx: &Ctx<'_>,
    s: &Select,
    m: &Measurement,
    fields: &[Field],
    tags: &[String],
    range: TimeRange,
    rest: Option<&Expr>,
) -> Result<SeriesRows> {
    let Some((ci, (name, args))) = fields
        .iter()
        .enumerate()
        .find_map(|(i, f)| call_of(f).map(|c| (i, c)))
    else {
        return Ok(Vec::new());
    };
    let Expr::Var { name: field, cast } = args[0].unparen() else {
        return Err(Error::invalid(format!(
            "expected field argument in {name}()"
        )));
    };
    let ty = match m.resolve(field, *cast) {
        Ref::Field(t) => t,
        _ => return Ok(Vec::new()),
    };
    let numeric = matches!(
        ty,
        hourglass_core::ColumnType::Double
            | hourglass_core::ColumnType::Bigint
            | hourglass_core::ColumnType::Ubigint
    );
    if !numeric && name != "first" && name != "last" {
        let iterator = match ty {
            hourglass_core::ColumnType::Boolean => "*query.booleanInterruptIterator",
            _ => "*query.stringInterruptIterator",
        };
        return Err(Error::invalid(format!(
            "unsupported {name} iterator type: {iterator}"
        )));
    }
    let f = ident(field);
    let mut select = vec![ident("time")];
    let mut order = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let g = ident(&format!("__g{i}"));
        select.push(format!("{} AS {g}", tag_column(m, t)));
        order.push(g);
    }
    select.push(format!("{f} AS {}", ident("__v")));
    let others: Vec<usize> = (0..fields.len()).filter(|i| *i != ci).collect();
    for (j, i) in others.iter().enumerate() {
        let expr = match fields[*i].expr.unparen() {
            Expr::Var { name, cast } if m.resolve(name, *cast) == Ref::Tag => {
                format!("CAST({} AS VARCHAR)", ident(name))
            }
            e => sql::math(m, e, &mut |_, _| Ok(None))?,
        };
        select.push(format!("{expr} AS {}", ident(&format!("__a{j}"))));
    }
    order.push(format!("{} ASC", ident("time")));
    let mut conds = where_clause(m, range, rest)?;
    conds.push(format!("{f} IS NOT NULL"));
    let q = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY {}",
        select.join(", "),
        m.table(),
        conds.join(" AND "),
        order.join(", ")
    );
    let mut per_series: BTreeMap<Vec<String>, Vec<Point>> = BTreeMap::new();
    let mut total = 0usize;
    for batch in ctx.sql(&q).await? {
        let cols = batch
            .columns()
            .iter()
            .map(Column::new)
            .collect::<Result<Vec<_>>>()?;
        let base = 1 + tags.len();
        for row in 0..batch.num_rows() {
            let Value::Time(t) = cols[0].value(row) else {
                continue;
            };
            total += 1;
            if total > MAX_ROWS {
                return Err(too_many_rows());
            }
            let key: Vec<String> = (0..tags.len()).map(|i| cols[1 + i].tag(row)).collect();
            let aux = (0..others.len())
                .map(|j| cols[base + 1 + j].value(row))
                .collect();
            per_series
                .entry(key)
                .or_default()
                .push((t, cols[base].value(row), aux));
        }
    }
    let window_of = |t: i64| match s.group_time {
        Some((iv, off)) => window_start(t, iv, off),
        None => 0,
    };
    // A row in the statement's column order.
    let row = |time: i64, p: Point| {
        let mut r = vec![Value::Time(time)];
        let mut aux = p.2.into_iter();
        for i in 0..fields.len() {
            r.push(if i == ci {
                p.1.clone()
            } else {
                aux.next().unwrap_or(Value::Null)
            });
        }
        r
    };
    let mut out = Vec::new();
    let mut emitted = 0usize;
    for (key, points) in per_series {
        let mut windows: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
        for p in points {
            windows.entry(window_of(p.0)).or_default().push(p);
        }
        let rows: Vec<Vec<Value>> = if matches!(name, "top" | "bottom") {
            let Some(Expr::Integer(n)) = args.last().map(Expr::unparen) else {
                return Err(Error::invalid(format!(
                    "expected integer as last argument in {name}()"
                )));
            };
            let ntags = args.len() - 2;
            // The tag columns `rewrite` added come right after the call.
            windows
                .into_values()
                .flat_map(|pts| top_bottom(pts, *n as usize, ntags, name == "top"))
                .map(|p| row(p.0, p))
                .collect()
        } else {
            match s.group_time {
                Some((iv, off)) => {
                    let filled: BTreeMap<i64, Window> = windows
                        .into_iter()
                        .filter_map(|(w, pts)| select_point(pts, name).map(|p| (w, p)))
                        .map(|(w, p)| {
                            let r = row(w, p);
                            let n = r.len() - 1;
                            (
                                w,
                                Window {
                                    values: r.into_iter().skip(1).collect(),
                                    present: vec![true; n],
                                },
                            )
                        })
                        .collect();
                    let start = range.lo.map(|lo| window_start(lo, iv, off));
                    let end = window_start(range.hi.unwrap_or(ctx.now), iv, off);
                    fill_windows(
                        filled,
                        start,
                        end,
                        iv,
                        s.fill,
                        &vec![false; fields.len()],
                        s.descending,
                        MAX_ROWS.saturating_sub(emitted),
                    )
                    .ok_or_else(too_many_rows)?
                }
                None => windows
                    .into_values()
                    .filter_map(|pts| select_point(pts, name))
                    .map(|p| row(p.0, p))
                    .collect(),
            }
        };
        emitted += rows.len();
        let rows = limit_rows(rows, s);
        if !rows.is_empty() {
            out.push((key, rows));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influxql::ast::Statement;
    use crate::influxql::parser::parse_query;

    fn fields(q: &str) -> Vec<Field> {
        match &parse_query(q).unwrap()[0] {
            Statement::Select(s) => s.fields.clone(),
            _ => unreachable!(),
        }
    }

    fn err(q: &str) -> String {
        check(&fields(q)).unwrap_err().message
    }

    #[test]
    fn checks_as_influxdb() {
        assert_eq!(
            err("SELECT top(v) FROM m"),
            "invalid number of arguments for top, expected at least 2, got 1"
        );
        assert_eq!(
            err("SELECT top(v, 0) FROM m"),
            "limit (0) in top function must be at least 1"
        );
        assert_eq!(
            err("SELECT top(v, host) FROM m"),
            "expected integer as last argument in top(), found host"
        );
        assert_eq!(
            err("SELECT top(v, 2), bottom(v, 2) FROM m"),
            "selector function top() cannot be combined with other functions"
        );
        assert_eq!(
            err("SELECT max(v), min(v), host FROM m"),
            "mixing multiple selector functions with tags or fields is not supported"
        );
        assert!(check(&fields("SELECT max(v), host, w FROM m")).unwrap());
        assert!(check(&fields("SELECT bottom(v, host, 2), w FROM m")).unwrap());
        assert!(!check(&fields("SELECT max(v), min(v) FROM m")).unwrap());
        assert!(!check(&fields("SELECT mean(v), w FROM m")).unwrap());
        let f = rewrite(fields("SELECT top(v, host, 2), w FROM m"));
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[1].expr,
            Expr::Var {
                name: "host".into(),
                cast: None
            }
        );
    }

    #[test]
    fn top_keeps_earlier_ties_and_one_point_per_tag() {
        let p = |t: i64, v: i64, tag: &str| (t, Value::Int(v), vec![Value::Str(tag.into())]);
        let pts = vec![
            p(1, 5, "a"),
            p(2, 9, "a"),
            p(3, 9, "b"),
            p(4, 7, "c"),
            p(5, 9, "a"),
        ];
        let top = top_bottom(pts.clone(), 2, 0, true);
        assert_eq!(top.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2, 3]);
        let by_tag = top_bottom(pts.clone(), 3, 1, true);
        assert_eq!(
            by_tag.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        let bottom = top_bottom(pts.clone(), 2, 0, false);
        assert_eq!(bottom.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(select_point(pts.clone(), "max").map(|p| p.0), Some(2));
        assert_eq!(select_point(pts, "last").map(|p| p.0), Some(5));
    }
}
