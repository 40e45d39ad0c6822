//! InfluxQL's transformations — `derivative`, `non_negative_derivative`, `difference`,
//! `non_negative_difference`, `moving_average`, `cumulative_sum`, `elapsed` — applied per series
//! in Rust to the rows the SQL stage returned (raw values, or the windows of an aggregate after
//! `fill`), in output order, before `LIMIT`/`OFFSET`, as InfluxDB's iterators do. Null values
//! are skipped. Hourglass answers them when the transformation is the statement's only column.

use hourglass_core::{Error, Result};

use super::ast::{BinOp, Expr, Field, Select};
use super::result::Value;

/// Names of the transformations.
pub const NAMES: [&str; 7] = [
    "derivative",
    "non_negative_derivative",
    "difference",
    "non_negative_difference",
    "moving_average",
    "cumulative_sum",
    "elapsed",
];

/// A transformation and its parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    Derivative { unit: i64, non_negative: bool },
    Difference { non_negative: bool },
    MovingAverage(usize),
    CumulativeSum,
    Elapsed(i64),
}

fn is_transform(e: &Expr) -> bool {
    match e {
        Expr::Call { name, args } => {
            NAMES.contains(&name.as_str()) || args.iter().any(is_transform)
        }
        Expr::Binary { lhs, rhs, .. } => is_transform(lhs) || is_transform(rhs),
        Expr::Paren(e) => is_transform(e),
        _ => false,
    }
}

fn duration_arg(name: &str, e: Option<&Expr>, default: i64) -> Result<i64> {
    match e.map(Expr::unparen) {
        None => Ok(default),
        Some(Expr::Duration(d)) if *d > 0 => Ok(*d),
        Some(_) => Err(Error::invalid(format!(
            "second argument to {name} must be a duration, got *influxql.IntegerLiteral"
        ))),
    }
}

/// Stands for the transformation's value in the math around it (no InfluxQL name can be it).
const PLACEHOLDER: &str = "\0transformed";

/// The one transformation call in `e` (math over it and literals around it), and `e` with the
/// placeholder in its place; `None` when `e` is anything else.
fn take_call(e: &Expr) -> Option<(&str, &[Expr], Expr)> {
    match e {
        Expr::Call { name, args } if NAMES.contains(&name.as_str()) => Some((
            name.as_str(),
            args.as_slice(),
            Expr::Var {
                name: PLACEHOLDER.into(),
                cast: None,
            },
        )),
        Expr::Call { name, args } if super::fields::MATH.contains(&name.as_str()) => {
            let mut found = None;
            let mut new_args = Vec::new();
            for a in args {
                if is_transform(a) {
                    if found.is_some() {
                        return None;
                    }
                    let (n, inner, replaced) = take_call(a)?;
                    found = Some((n, inner));
                    new_args.push(replaced);
                } else if is_literal(a) {
                    new_args.push(a.clone());
                } else {
                    return None;
                }
            }
            let (n, inner) = found?;
            Some((
                n,
                inner,
                Expr::Call {
                    name: name.clone(),
                    args: new_args,
                },
            ))
        }
        Expr::Binary { op, lhs, rhs } => {
            let (l, r) = (is_transform(lhs), is_transform(rhs));
            let (n, inner, replaced, other, left) = match (l, r) {
                (true, false) => {
                    let (n, i, e) = take_call(lhs)?;
                    (n, i, e, rhs, true)
                }
                (false, true) => {
                    let (n, i, e) = take_call(rhs)?;
                    (n, i, e, lhs, false)
                }
                _ => return None,
            };
            if !is_literal(other) {
                return None;
            }
            let (lhs, rhs) = if left {
                (replaced, (**other).clone())
            } else {
                ((**other).clone(), replaced)
            };
            Some((
                n,
                inner,
                Expr::Binary {
                    op: *op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            ))
        }
        Expr::Paren(e) => {
            let (n, i, e) = take_call(e)?;
            Some((n, i, Expr::Paren(Box::new(e))))
        }
        _ => None,
    }
}

fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Integer(_) | Expr::Number(_) => true,
        Expr::Paren(e) => is_literal(e),
        Expr::Binary { lhs, rhs, .. } => is_literal(lhs) && is_literal(rhs),
        _ => false,
    }
}

/// When the statement uses a transformation: the statement with the transformation's argument
/// in its place (what the SQL stage computes), the transformation, and the math around it
/// (over [`PLACEHOLDER`], for [`eval`]) when there is some.
pub fn split(s: &Select) -> Result<Option<(Select, Transform, Option<Expr>)>> {
    if !s.fields.iter().any(|f| is_transform(&f.expr)) {
        return Ok(None);
    }
    let unsupported = || {
        Error::invalid(
            "a transformation (derivative(), difference(), …) is supported by Hourglass's InfluxQL only in the statement's only column (with math over it and numbers)",
        )
    };
    if s.fields.len() != 1 {
        return Err(unsupported());
    }
    let Some((name, args, around)) = take_call(&s.fields[0].expr) else {
        return Err(unsupported());
    };
    let outer = match around {
        Expr::Var { name, .. } if name == PLACEHOLDER => None,
        e => Some(e),
    };
    let name = &name.to_string();
    let Some(inner) = args.first() else {
        return Err(Error::invalid(format!(
            "invalid number of arguments for {name}, expected at least 1, got 0"
        )));
    };
    if is_transform(inner) {
        return Err(unsupported());
    }
    let aggregated = super::fields::has_aggregate(inner);
    if aggregated && s.group_time.is_none() {
        return Err(Error::invalid(format!(
            "{name} aggregate requires a GROUP BY interval"
        )));
    }
    if !aggregated && s.group_time.is_some() {
        return Err(Error::invalid(format!(
            "aggregate function required inside the call to {name}"
        )));
    }
    let interval = s.group_time.map(|(iv, _)| iv);
    let max_args = if name == "cumulative_sum" { 1 } else { 2 };
    if args.len() > max_args {
        return Err(Error::invalid(format!(
            "invalid number of arguments for {name}, expected at most {max_args}, got {}",
            args.len()
        )));
    }
    let t = match name.as_str() {
        "derivative" | "non_negative_derivative" => Transform::Derivative {
            unit: duration_arg(name, args.get(1), interval.unwrap_or(1_000_000_000))?,
            non_negative: name.starts_with("non_negative"),
        },
        "difference" | "non_negative_difference" => Transform::Difference {
            non_negative: name.starts_with("non_negative"),
        },
        "moving_average" => {
            let n = match args.get(1).map(Expr::unparen) {
                Some(Expr::Integer(n)) => *n,
                _ => {
                    return Err(Error::invalid(
                        "invalid number of arguments for moving_average, expected 2, got 1",
                    ))
                }
            };
            if n <= 1 {
                return Err(Error::invalid(
                    "moving_average window must be greater than 1, got 0"
                        .replace(" 0", &format!(" {n}")),
                ));
            }
            Transform::MovingAverage(n as usize)
        }
        "cumulative_sum" => Transform::CumulativeSum,
        _ => Transform::Elapsed(duration_arg(name, args.get(1), 1)?),
    };
    let mut inner_select = s.clone();
    inner_select.fields = vec![Field {
        expr: inner.clone(),
        alias: Some(
            s.fields[0]
                .alias
                .clone()
                .unwrap_or_else(|| super::fields::expr_name(&s.fields[0].expr)),
        ),
    }];
    Ok(Some((inner_select, t, outer)))
}

/// Evaluates the math around a transformation for one of its values, as InfluxDB does: integers
/// stay integers under `+`, `-`, `*` and `%`, `/` divides as floats (by zero: 0), math
/// functions answer floats; null stays null.
pub fn eval(e: &Expr, v: &Value) -> Value {
    match e {
        Expr::Var { name, .. } if name == PLACEHOLDER => v.clone(),
        Expr::Integer(i) => Value::Int(*i),
        Expr::Number(f) => Value::Float(*f),
        Expr::Paren(e) => eval(e, v),
        Expr::Call { name, args } => {
            let a: Vec<Option<f64>> = args.iter().map(|a| eval(a, v).as_f64()).collect();
            let (Some(Some(x)), y) = (a.first().copied(), a.get(1).copied().flatten()) else {
                return Value::Null;
            };
            let r = match (name.as_str(), y) {
                ("abs", _) => x.abs(),
                ("sin", _) => x.sin(),
                ("cos", _) => x.cos(),
                ("tan", _) => x.tan(),
                ("asin", _) => x.asin(),
                ("acos", _) => x.acos(),
                ("atan", _) => x.atan(),
                ("exp", _) => x.exp(),
                ("ln", _) => x.ln(),
                ("log2", _) => x.log2(),
                ("log10", _) => x.log10(),
                ("sqrt", _) => x.sqrt(),
                ("floor", _) => x.floor(),
                ("ceil", _) => x.ceil(),
                ("round", _) => x.round(),
                ("atan2", Some(y)) => x.atan2(y),
                ("log", Some(y)) => x.ln() / y.ln(),
                ("pow", Some(y)) => x.powf(y),
                _ => return Value::Null,
            };
            if r.is_finite() {
                Value::Float(r)
            } else {
                Value::Null
            }
        }
        Expr::Binary { op, lhs, rhs } => {
            let (l, r) = (eval(lhs, v), eval(rhs, v));
            if let (Value::Int(a), Value::Int(b)) = (&l, &r) {
                let (a, b) = (*a, *b);
                return match op {
                    BinOp::Add => Value::Int(a.wrapping_add(b)),
                    BinOp::Sub => Value::Int(a.wrapping_sub(b)),
                    BinOp::Mul => Value::Int(a.wrapping_mul(b)),
                    BinOp::Mod if b != 0 => Value::Int(a.wrapping_rem(b)),
                    BinOp::Mod => Value::Int(0),
                    BinOp::Div if b == 0 => Value::Float(0.0),
                    BinOp::Div => Value::Float(a as f64 / b as f64),
                    _ => Value::Null,
                };
            }
            let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
                return Value::Null;
            };
            Value::Float(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div if b == 0.0 => 0.0,
                BinOp::Div => a / b,
                BinOp::Mod => a % b,
                _ => return Value::Null,
            })
        }
        _ => Value::Null,
    }
}

/// Applies `t` to one series' rows `[time, value]`, in their order.
pub fn apply(t: Transform, rows: Vec<Vec<Value>>, descending: bool) -> Vec<Vec<Value>> {
    let points = rows
        .into_iter()
        .filter_map(|r| match (r.first(), r.get(1)) {
            (Some(Value::Time(t)), Some(v)) if !v.is_null() => Some((*t, v.clone())),
            _ => None,
        });
    let mut out = Vec::new();
    let mut prev: Option<(i64, Value)> = None;
    let mut window: std::collections::VecDeque<f64> = Default::default();
    let mut sum: Option<Value> = None;
    for (time, v) in points {
        match t {
            Transform::Derivative { unit, non_negative } => {
                if let Some((pt, pv)) = &prev {
                    let mut elapsed = (time - pt) as f64;
                    if descending {
                        elapsed = -elapsed;
                    }
                    if let (Some(a), Some(b)) = (pv.as_f64(), v.as_f64()) {
                        if elapsed != 0.0 {
                            let d = (b - a) / (elapsed / unit as f64);
                            if !(non_negative && d < 0.0) {
                                out.push(vec![Value::Time(time), Value::Float(d)]);
                            }
                        }
                    }
                }
                prev = Some((time, v));
            }
            Transform::Difference { non_negative } => {
                if let Some((_, pv)) = &prev {
                    let d = match (pv, &v) {
                        (Value::Int(a), Value::Int(b)) => Some(Value::Int(b.wrapping_sub(*a))),
                        (Value::UInt(a), Value::UInt(b)) => Some(Value::UInt(b.wrapping_sub(*a))),
                        (a, b) => match (a.as_f64(), b.as_f64()) {
                            (Some(a), Some(b)) => Some(Value::Float(b - a)),
                            _ => None,
                        },
                    };
                    if let Some(d) = d {
                        let negative = d.as_f64().is_some_and(|x| x < 0.0);
                        if !(non_negative && negative) {
                            out.push(vec![Value::Time(time), d]);
                        }
                    }
                }
                prev = Some((time, v));
            }
            Transform::MovingAverage(n) => {
                if let Some(x) = v.as_f64() {
                    window.push_back(x);
                    if window.len() > n {
                        window.pop_front();
                    }
                    if window.len() == n {
                        let avg = window.iter().sum::<f64>() / n as f64;
                        out.push(vec![Value::Time(time), Value::Float(avg)]);
                    }
                }
            }
            Transform::CumulativeSum => {
                sum = Some(match (&sum, &v) {
                    (None, v) => v.clone(),
                    (Some(Value::Int(a)), Value::Int(b)) => Value::Int(a.wrapping_add(*b)),
                    (Some(Value::UInt(a)), Value::UInt(b)) => Value::UInt(a.wrapping_add(*b)),
                    (Some(a), b) => match (a.as_f64(), b.as_f64()) {
                        (Some(a), Some(b)) => Value::Float(a + b),
                        _ => a.clone(),
                    },
                });
                if let Some(s) = &sum {
                    out.push(vec![Value::Time(time), s.clone()]);
                }
            }
            Transform::Elapsed(unit) => {
                if let Some((pt, _)) = &prev {
                    out.push(vec![Value::Time(time), Value::Int((time - pt) / unit)]);
                }
                prev = Some((time, v));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(vals: &[(i64, Value)]) -> Vec<Vec<Value>> {
        vals.iter()
            .map(|(t, v)| vec![Value::Time(*t), v.clone()])
            .collect()
    }

    #[test]
    fn math_around_a_transformation() {
        use crate::influxql::ast::Statement;
        let q = "SELECT 10 - difference(load) / 2 FROM cpu";
        let Statement::Select(s) = &crate::influxql::parser::parse_query(q).unwrap()[0] else {
            unreachable!()
        };
        let (inner, t, outer) = split(s).unwrap().unwrap();
        assert_eq!(
            t,
            Transform::Difference {
                non_negative: false
            }
        );
        assert_eq!(inner.fields[0].alias.as_deref(), Some("difference"));
        let outer = outer.unwrap();
        assert_eq!(eval(&outer, &Value::Int(-14)), Value::Float(17.0));
        assert_eq!(eval(&outer, &Value::Null), Value::Null);
        let plus = Expr::Binary {
            op: BinOp::Add,
            lhs: Box::new(Expr::Var {
                name: PLACEHOLDER.into(),
                cast: None,
            }),
            rhs: Box::new(Expr::Integer(1)),
        };
        assert_eq!(eval(&plus, &Value::Int(-14)), Value::Int(-13));
        let two = "SELECT difference(load) * difference(load) FROM cpu";
        let Statement::Select(s) = &crate::influxql::parser::parse_query(two).unwrap()[0] else {
            unreachable!()
        };
        assert!(split(s).is_err());
    }

    #[test]
    fn transforms_skip_nulls_and_keep_types() {
        use Value::*;
        let s = 1_000_000_000;
        let r = rows(&[(0, Int(1)), (s, Null), (2 * s, Int(5)), (3 * s, Int(2))]);
        let d = apply(
            Transform::Derivative {
                unit: s,
                non_negative: false,
            },
            r.clone(),
            false,
        );
        assert_eq!(d, rows(&[(2 * s, Float(2.0)), (3 * s, Float(-3.0))]));
        let nn = apply(
            Transform::Difference { non_negative: true },
            r.clone(),
            false,
        );
        assert_eq!(nn, rows(&[(2 * s, Int(4))]));
        assert_eq!(
            apply(Transform::CumulativeSum, r.clone(), false),
            rows(&[(0, Int(1)), (2 * s, Int(6)), (3 * s, Int(8))])
        );
        assert_eq!(
            apply(Transform::MovingAverage(2), r.clone(), false),
            rows(&[(2 * s, Float(3.0)), (3 * s, Float(3.5))])
        );
        assert_eq!(
            apply(Transform::Elapsed(s), r, false),
            rows(&[(2 * s, Int(2)), (3 * s, Int(1))])
        );
    }
}
