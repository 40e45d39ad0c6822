//! InfluxQL functions whose answer depends on the order InfluxDB's iterators see the points in,
//! computed in Rust over the raw points the SQL stage returns (per series, in time order, as
//! InfluxDB feeds its reducers): `mode()` (InfluxDB sorts the points by value with Go's unstable
//! sort and breaks ties by the order that leaves, [`super::gosort`]) and `integral()` (InfluxDB's
//! trapezoidal reducer, whose `GROUP BY time` windows take the area up to the interpolated value
//! at a window's end, and the area from there to the next point into that point's window).

use std::collections::BTreeMap;

use hourglass_core::{ColumnType, Error, Result};

use super::ast::{Expr, Field, Select};
use super::fields;
use super::fill::{fill_windows, Window};
use super::result::{Column, Value};
use super::select::{
    limit_rows, tag_column, too_many_rows, unsupported, where_clause, window_start, SeriesRows,
    MAX_ROWS,
};
use super::sql::{ident, Measurement, Ref};
use super::timecond::TimeRange;
use super::transform::{self, Transform};
use super::Ctx;

/// The functions answered here.
pub const NAMES: [&str; 2] = ["mode", "integral"];

/// Whether a column of the statement calls one of [`NAMES`].
pub fn uses(fields: &[Field]) -> bool {
    fields
        .iter()
        .any(|f| NAMES.iter().any(|n| fields::mentions(&f.expr, n)))
}

/// One column: the function, its field and the integral's unit.
struct Call {
    name: String,
    field: String,
    ty: ColumnType,
    unit: i64,
}

fn parse_call(m: &Measurement, f: &Field) -> Result<Option<Call>> {
    let Expr::Call { name, args } = f.expr.unparen() else {
        return Err(unsupported(
            "mode() or integral() inside an expression or beside other columns",
        ));
    };
    if !NAMES.contains(&name.as_str()) {
        return Err(unsupported(&format!(
            "{name}() beside mode() or integral() in one statement"
        )));
    }
    let max = if name == "integral" { 2 } else { 1 };
    if args.is_empty() || args.len() > max {
        return Err(Error::invalid(format!(
            "invalid number of arguments for {name}, expected {}, got {}",
            if max == 1 {
                "1".to_string()
            } else {
                "1 or 2".to_string()
            },
            args.len()
        )));
    }
    let Expr::Var { name: field, cast } = args[0].unparen() else {
        return Err(Error::invalid(format!(
            "expected field argument in {name}()"
        )));
    };
    let ty = match m.resolve(field, *cast) {
        Ref::Field(t) => t,
        _ => return Ok(None),
    };
    let unit = match args.get(1).map(Expr::unparen) {
        None => 1_000_000_000,
        Some(Expr::Duration(d)) if *d > 0 => *d,
        Some(_) => {
            return Err(Error::invalid(
                "second argument must be a duration".to_string(),
            ))
        }
    };
    if name == "integral"
        && !matches!(
            ty,
            ColumnType::Double | ColumnType::Bigint | ColumnType::Ubigint
        )
    {
        let iterator = match ty {
            ColumnType::Boolean => "*query.booleanInterruptIterator",
            _ => "*query.stringInterruptIterator",
        };
        return Err(Error::invalid(format!(
            "unsupported integral iterator type: {iterator}"
        )));
    }
    Ok(Some(Call {
        name: name.clone(),
        field: field.clone(),
        ty,
        unit,
    }))
}

type Points = BTreeMap<Vec<String>, Vec<(i64, Value)>>;

/// A field's non-null points per series (the `GROUP BY` tags), each series in time order.
async fn points(
    ctx: &Ctx<'_>,
    m: &Measurement,
    field: &str,
    tags: &[String],
    range: TimeRange,
    rest: Option<&Expr>,
) -> Result<Points> {
    let f = ident(field);
    let mut select = vec![ident("time")];
    let mut order = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let g = ident(&format!("__g{i}"));
        select.push(format!("{} AS {g}", tag_column(m, t)));
        order.push(g);
    }
    select.push(format!("{f} AS {}", ident("__v")));
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
    let mut out: Points = BTreeMap::new();
    let mut total = 0usize;
    for batch in ctx.sql(&q).await? {
        let cols = batch
            .columns()
            .iter()
            .map(Column::new)
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            let Value::Time(t) = cols[0].value(row) else {
                continue;
            };
            let key: Vec<String> = (0..tags.len()).map(|i| cols[1 + i].tag(row)).collect();
            total += 1;
            if total > MAX_ROWS {
                return Err(too_many_rows());
            }
            out.entry(key)
                .or_default()
                .push((t, cols[1 + tags.len()].value(row)));
        }
    }
    Ok(out)
}

/// The series of a statement whose columns are `mode()` or `integral()` calls.
#[allow(clippy::too_many_arguments)]
pub async fn series(
    ctx: &Ctx<'_>,
    s: &Select,
    m: &Measurement,
    fields: &[Field],
    tags: &[String],
    range: TimeRange,
    rest: Option<&Expr>,
    tr: Option<Transform>,
) -> Result<SeriesRows> {
    if s.descending {
        return Err(unsupported("mode() or integral() with ORDER BY time DESC"));
    }
    let ncol = fields.len();
    // Per series: time -> the columns' values there (None: no value).
    let mut merged: BTreeMap<Vec<String>, BTreeMap<i64, Vec<Option<Value>>>> = BTreeMap::new();
    let mut any = false;
    for (col, f) in fields.iter().enumerate() {
        let Some(call) = parse_call(m, f)? else {
            continue;
        };
        any = true;
        let pts = points(ctx, m, &call.field, tags, range, rest).await?;
        for (key, series) in pts {
            let values: Vec<(i64, Value)> = match call.name.as_str() {
                "integral" => integral(
                    &series,
                    call.unit,
                    s.group_time,
                    call.ty != ColumnType::Double,
                )
                .into_iter()
                .map(|(t, v)| (t, Value::Float(v)))
                .collect(),
                _ => match s.group_time {
                    Some((iv, off)) => {
                        let mut windows: BTreeMap<i64, Vec<(i64, Value)>> = BTreeMap::new();
                        for p in series {
                            windows
                                .entry(window_start(p.0, iv, off))
                                .or_default()
                                .push(p);
                        }
                        windows
                            .into_iter()
                            .map(|(w, mut pts)| (w, mode(&mut pts)))
                            .collect()
                    }
                    None => {
                        let mut pts = series;
                        vec![(range.lo.unwrap_or(0), mode(&mut pts))]
                    }
                },
            };
            let rows = merged.entry(key).or_default();
            for (t, v) in values {
                rows.entry(t).or_insert_with(|| vec![None; ncol])[col] = Some(v);
            }
        }
    }
    if !any {
        return Ok(Vec::new());
    }
    let fills =
        s.group_time.is_some() && !fields.iter().any(|f| fields::mentions(&f.expr, "integral"));
    let mut out = Vec::new();
    let mut total = 0usize;
    for (key, rows) in merged {
        let rows: Vec<Vec<Value>> = match (fills, s.group_time) {
            (true, Some((iv, off))) => {
                let windows = rows
                    .into_iter()
                    .map(|(t, cells)| {
                        let present = cells.iter().map(Option::is_some).collect();
                        let values = cells
                            .into_iter()
                            .map(|c| c.unwrap_or(Value::Null))
                            .collect();
                        (t, Window { values, present })
                    })
                    .collect();
                let start = range.lo.map(|lo| window_start(lo, iv, off));
                let end = window_start(range.hi.unwrap_or(ctx.now), iv, off);
                fill_windows(
                    windows,
                    start,
                    end,
                    iv,
                    s.fill,
                    &vec![false; ncol],
                    false,
                    MAX_ROWS.saturating_sub(total),
                )
                .ok_or_else(too_many_rows)?
            }
            _ => rows
                .into_iter()
                .map(|(t, cells)| {
                    let mut row = vec![Value::Time(t)];
                    row.extend(cells.into_iter().map(|c| c.unwrap_or(Value::Null)));
                    row
                })
                .collect(),
        };
        total += rows.len();
        let rows = match tr {
            Some(t) => transform::apply(t, rows, s.descending),
            None => rows,
        };
        let rows = limit_rows(rows, s);
        if !rows.is_empty() {
            out.push((key, rows));
        }
    }
    Ok(out)
}

/// `a < b` for two values of one field (Go's `Less` of InfluxDB's `…PointsByValue`).
fn value_less(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(a), Value::Float(b)) => a < b,
        (Value::Int(a), Value::Int(b)) => a < b,
        (Value::UInt(a), Value::UInt(b)) => a < b,
        (Value::Str(a), Value::Str(b)) => a.as_bytes() < b.as_bytes(),
        _ => false,
    }
}

/// InfluxDB 1.6's `mode()` of one window's points (given in the order InfluxDB reads them):
/// sorted by value with Go's `sort.Sort`, then the longest run of one value wins; a later run
/// as long as the best one wins when its first point's time is not after the best run's last
/// counted point. Booleans: `true` unless `false` is more frequent.
pub fn mode(points: &mut [(i64, Value)]) -> Value {
    match points {
        [] => return Value::Null,
        [(_, v)] => return v.clone(),
        _ => {}
    }
    if let Value::Bool(_) = points[0].1 {
        let trues = points.iter().filter(|p| p.1 == Value::Bool(true)).count();
        return Value::Bool(trues >= points.len() - trues);
    }
    super::gosort::sort(points, &|a: &(i64, Value), b: &(i64, Value)| {
        value_less(&a.1, &b.1)
    });
    let mut most_freq = 0usize;
    let mut curr_freq = 0usize;
    let mut curr_mode = &points[0].1;
    let mut most_mode = &points[0].1;
    let mut most_time = points[0].0;
    let mut curr_time = points[0].0;
    for (t, v) in points.iter() {
        if v != curr_mode {
            curr_freq = 1;
            curr_mode = v;
            curr_time = *t;
            continue;
        }
        curr_freq += 1;
        if most_freq > curr_freq || (most_freq == curr_freq && curr_time > most_time) {
            continue;
        }
        most_freq = curr_freq;
        most_mode = v;
        most_time = *t;
    }
    most_mode.clone()
}

/// Go's `linearFloat`: the value at `at` on the line through two points.
fn linear(at: i64, t0: i64, t1: i64, v0: f64, v1: f64) -> f64 {
    let m = (v1 - v0) / (t1 - t0) as f64;
    let x = (at - t0) as f64;
    m * x + v0
}

/// InfluxDB 1.6's `integral()` reducer over one series' points in time order: the emitted
/// (window start, area) pairs; time 0 without `GROUP BY time`. `integer` selects the reducer of
/// integer fields, which, after crossing a window's end, takes the interpolated value (not the
/// point's) for the first trapezium of the next window.
pub fn integral(
    points: &[(i64, Value)],
    unit: i64,
    window: Option<(i64, i64)>,
    integer: bool,
) -> Vec<(i64, f64)> {
    let bounds = |t: i64| match window {
        Some((iv, off)) => {
            let s = window_start(t, iv, off);
            (s, s.saturating_add(iv))
        }
        None => (0, i64::MAX),
    };
    let unit = unit as f64;
    let mut out = Vec::new();
    let mut prev: Option<(i64, f64)> = None;
    let (mut start, mut end) = (0i64, i64::MAX);
    let mut sum = 0.0f64;
    for (t, v) in points {
        let Some(v) = v.as_f64() else { continue };
        let t = *t;
        let Some((pt, pv)) = prev.as_mut() else {
            prev = Some((t, v));
            (start, end) = bounds(t);
            continue;
        };
        if *pt == t {
            *pt = t;
            *pv = v;
            continue;
        }
        let mut value = v;
        if window.is_some() && t >= end {
            if *pt != end {
                let at_end = linear(end, *pt, t, *pv, v);
                let elapsed = (end - *pt) as f64 / unit;
                sum += 0.5 * (at_end + *pv) * elapsed;
                if integer {
                    value = at_end;
                } else {
                    *pv = at_end;
                }
                *pt = end;
            }
            out.push((start, sum));
            (start, end) = bounds(t);
            sum = 0.0;
        }
        let elapsed = (t - *pt) as f64 / unit;
        sum += 0.5 * (value + *pv) * elapsed;
        *pt = t;
        *pv = v;
    }
    if let Some((pt, _)) = prev {
        if pt != start {
            out.push((start, sum));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[(i64, i64)]) -> Vec<(i64, Value)> {
        v.iter().map(|(t, x)| (*t, Value::Int(*x))).collect()
    }

    #[test]
    fn mode_counts_runs_and_breaks_ties_by_time() {
        assert_eq!(
            mode(&mut ints(&[(1, 4), (2, 7), (3, 7), (4, 4), (5, 7)])),
            Value::Int(7)
        );
        // 3 and 9 both twice: the run met later in value order wins when its first point is not
        // later than the best run's last counted point.
        assert_eq!(
            mode(&mut ints(&[(10, 9), (20, 3), (30, 9), (40, 3)])),
            Value::Int(9)
        );
        assert_eq!(
            mode(&mut ints(&[(10, 3), (20, 3), (30, 9), (40, 9)])),
            Value::Int(3)
        );
        assert_eq!(mode(&mut ints(&[(10, 5)])), Value::Int(5));
        let mut b = vec![(1, Value::Bool(false)), (2, Value::Bool(true))];
        assert_eq!(mode(&mut b), Value::Bool(true));
    }

    #[test]
    fn integral_is_trapezoidal_with_influxdb_window_edges() {
        let s = 1_000_000_000;
        let pts: Vec<(i64, Value)> = [(0, 0.0), (2 * s, 2.0), (4 * s, 2.0)]
            .iter()
            .map(|(t, v)| (*t, Value::Float(*v)))
            .collect();
        assert_eq!(integral(&pts, s, None, false), vec![(0, 6.0)]);
        // Windows of 3 s: [0, 3) gets 2 + the area to the value 2 at 3 s; [3, 6) the rest.
        assert_eq!(
            integral(&pts, s, Some((3 * s, 0)), false),
            vec![(0, 4.0), (3 * s, 2.0)]
        );
        // One point: an area of 0, unless it is at its window's start.
        assert_eq!(integral(&pts[1..2], s, None, false), vec![(0, 0.0)]);
        assert_eq!(integral(&pts[..1], s, Some((3 * s, 0)), false), vec![]);
        // Integers: the value at the window's end stands in for the next point's.
        let pts = ints(&[(0, 0), (4 * s, 4)]);
        assert_eq!(
            integral(&pts, s, Some((3 * s, 0)), true),
            vec![(0, 4.5), (3 * s, 1.5)]
        );
        assert_eq!(
            integral(&pts, s, Some((3 * s, 0)), false),
            vec![(0, 4.5), (3 * s, 3.5)]
        );
        // A last point at its window's start adds no window.
        assert_eq!(integral(&pts, s, Some((2 * s, 0)), false), vec![(0, 2.0)]);
    }
}
