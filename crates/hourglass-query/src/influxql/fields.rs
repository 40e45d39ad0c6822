//! The columns of an InfluxQL `SELECT`: wildcard expansion, InfluxDB's column names (`mean`,
//! `a_b` for `a + b`, `_1` suffixes for repeats), whether the statement aggregates, and which
//! functions Hourglass supports (others are refused by name, never approximated).

use std::collections::BTreeSet;

use hourglass_core::{ColumnType, Error, Result};

use super::ast::{Expr, Field, Select};
use super::sql::Measurement;

/// Aggregates and selectors translated to SQL.
pub const AGGREGATES: [&str; 16] = [
    "mean",
    "median",
    "count",
    "sum",
    "min",
    "max",
    "first",
    "last",
    "spread",
    "stddev",
    "percentile",
    "mode",
    "distinct",
    "integral",
    "top",
    "bottom",
];

/// Math functions (translated to SQL, over fields or aggregates).
pub const MATH: [&str; 18] = [
    "abs", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "exp", "ln", "log", "log2",
    "log10", "sqrt", "pow", "floor", "ceil", "round",
];

/// Whether the expression holds an aggregate or selector call.
pub fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Call { name, args } => {
            AGGREGATES.contains(&name.as_str()) || args.iter().any(has_aggregate)
        }
        Expr::Binary { lhs, rhs, .. } => has_aggregate(lhs) || has_aggregate(rhs),
        Expr::Paren(e) => has_aggregate(e),
        _ => false,
    }
}

/// Functions InfluxQL has that Hourglass does not answer (yet).
const UNSUPPORTED: [&str; 17] = [
    "derivative",
    "non_negative_derivative",
    "difference",
    "non_negative_difference",
    "moving_average",
    "cumulative_sum",
    "elapsed",
    "sample",
    "holt_winters",
    "holt_winters_with_fit",
    "exponential_moving_average",
    "double_exponential_moving_average",
    "triple_exponential_moving_average",
    "relative_strength_index",
    "kaufmans_efficiency_ratio",
    "kaufmans_adaptive_moving_average",
    "chande_momentum_oscillator",
];

/// Refuses calls Hourglass cannot answer exactly.
pub fn check_calls(e: &Expr) -> Result<()> {
    match e {
        Expr::Call { name, args } if MATH.contains(&name.as_str()) => {
            for a in args {
                check_calls(a)?;
            }
            Ok(())
        }
        Expr::Call { name, args } => {
            if UNSUPPORTED.contains(&name.as_str()) {
                return Err(Error::invalid(format!(
                    "{name}() is not supported by Hourglass's InfluxQL yet"
                )));
            }
            if !AGGREGATES.contains(&name.as_str()) {
                return Err(Error::invalid(format!("undefined function {name}()")));
            }
            if name == "distinct"
                && matches!(
                    args.first().map(Expr::unparen),
                    Some(Expr::Wildcard | Expr::Regex(_))
                )
            {
                return Err(Error::invalid("expected field argument in distinct()"));
            }
            for a in args {
                if name == "count" && is_distinct_of_var(a) {
                    continue;
                }
                if a.has_call() {
                    return Err(Error::invalid(format!(
                        "nested calls such as {name}({}) are not supported by Hourglass's InfluxQL yet",
                        call_name(a)
                    )));
                }
            }
            Ok(())
        }
        Expr::Binary { lhs, rhs, .. } => {
            check_calls(lhs)?;
            check_calls(rhs)
        }
        Expr::Paren(e) => check_calls(e),
        _ => Ok(()),
    }
}

/// InfluxDB's compile-time checks of `holt_winters()` and `holt_winters_with_fit()` (which
/// Hourglass then refuses as not supported): three arguments, an aggregate first, a
/// `GROUP BY time` interval, a positive number of values to predict.
pub fn check_holt_winters(s: &Select) -> Result<()> {
    for f in &s.fields {
        let Expr::Call { name, args } = f.expr.unparen() else {
            continue;
        };
        if name != "holt_winters" && name != "holt_winters_with_fit" {
            continue;
        }
        if args.len() != 3 {
            return Err(Error::invalid(format!(
                "invalid number of arguments for {name}, expected 3, got {}",
                args.len()
            )));
        }
        if !matches!(args[0].unparen(), Expr::Call { .. }) {
            return Err(Error::invalid(format!(
                "must use aggregate function with {name}"
            )));
        }
        if s.group_time.is_none() {
            return Err(Error::invalid(format!(
                "{name} aggregate requires a GROUP BY interval"
            )));
        }
        if let Expr::Integer(n) = args[1].unparen() {
            if *n <= 0 {
                return Err(Error::invalid(format!(
                    "second arg to {name} must be greater than 0, got {n}"
                )));
            }
        }
    }
    Ok(())
}

/// Whether the expression calls `function` anywhere.
pub fn mentions(e: &Expr, function: &str) -> bool {
    match e {
        Expr::Call { name, args } => name == function || args.iter().any(|a| mentions(a, function)),
        Expr::Binary { lhs, rhs, .. } => mentions(lhs, function) || mentions(rhs, function),
        Expr::Paren(e) => mentions(e, function),
        _ => false,
    }
}

/// `distinct(field)`, the one nested call answered (`count(distinct(field))`).
pub fn is_distinct_of_var(e: &Expr) -> bool {
    matches!(e.unparen(), Expr::Call { name, args }
        if name == "distinct" && args.len() == 1 && matches!(args[0].unparen(), Expr::Var { .. }))
}

fn call_name(e: &Expr) -> String {
    match e.unparen() {
        Expr::Call { name, .. } => format!("{name}()"),
        _ => "…".into(),
    }
}

/// InfluxDB's name of an unaliased column.
pub fn expr_name(e: &Expr) -> String {
    fn walk(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Var { name, .. } => out.push(name.clone()),
            Expr::Call { name, .. } => out.push(name.clone()),
            Expr::Binary { lhs, rhs, .. } => {
                walk(lhs, out);
                walk(rhs, out);
            }
            Expr::Paren(e) => walk(e, out),
            _ => {}
        }
    }
    match e.unparen() {
        Expr::Call { name, .. } => name.clone(),
        Expr::Var { name, .. } => name.clone(),
        other => {
            let mut parts = Vec::new();
            walk(other, &mut parts);
            parts.join("_")
        }
    }
}

/// Makes repeated names unique as InfluxDB does (`v`, `v_1`, `v_2`).
pub fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = vec!["time".into()];
    let mut out = Vec::new();
    for name in names {
        let mut candidate = name.clone();
        let mut n = 1;
        while seen.contains(&candidate) {
            candidate = format!("{name}_{n}");
            n += 1;
        }
        seen.push(candidate.clone());
        out.push(candidate);
    }
    out
}

/// Whether the statement aggregates (any call in its columns).
pub fn is_aggregate(s: &Select) -> bool {
    s.fields.iter().any(|f| has_aggregate(&f.expr))
}

fn is_numeric(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Double | ColumnType::Bigint | ColumnType::Ubigint
    )
}

/// Expands `*` and `/re/` in columns and call arguments over every measurement queried, as
/// InfluxDB does: raw `*` is every field and tag (but the `GROUP BY` tags) in name order;
/// `f(*)` is `f` of every field it applies to, named `f_field`.
pub fn expand(
    fields: &[Field],
    measurements: &[Measurement],
    group_tags: &BTreeSet<String>,
) -> Result<Vec<Field>> {
    let mut all_fields: std::collections::BTreeMap<String, ColumnType> = Default::default();
    let mut all_tags: BTreeSet<String> = BTreeSet::new();
    for m in measurements {
        for (f, t) in &m.fields {
            all_fields.entry(f.clone()).or_insert(*t);
        }
        for t in &m.tags {
            all_tags.insert(t.clone());
        }
    }
    let mut out = Vec::new();
    for f in fields {
        match &f.expr {
            Expr::Wildcard | Expr::Regex(_) => {
                let re = match &f.expr {
                    Expr::Regex(r) => Some(compile(r)?),
                    _ => None,
                };
                let mut names: BTreeSet<String> = all_fields.keys().cloned().collect();
                names.extend(
                    all_tags
                        .iter()
                        .filter(|t| !group_tags.contains(*t))
                        .cloned(),
                );
                for name in names {
                    if re.as_ref().is_some_and(|re| !re.is_match(&name)) {
                        continue;
                    }
                    out.push(Field {
                        expr: Expr::Var { name, cast: None },
                        alias: None,
                    });
                }
            }
            Expr::Call { name, args }
                if matches!(args.first(), Some(Expr::Wildcard | Expr::Regex(_))) =>
            {
                let re = match &args[0] {
                    Expr::Regex(r) => Some(compile(r)?),
                    _ => None,
                };
                let numeric_only = !matches!(
                    name.as_str(),
                    "count" | "first" | "last" | "distinct" | "mode"
                );
                for (field, t) in &all_fields {
                    if re.as_ref().is_some_and(|re| !re.is_match(field)) {
                        continue;
                    }
                    if numeric_only && !is_numeric(*t) {
                        continue;
                    }
                    let mut args = args.clone();
                    args[0] = Expr::Var {
                        name: field.clone(),
                        cast: None,
                    };
                    out.push(Field {
                        expr: Expr::Call {
                            name: name.clone(),
                            args,
                        },
                        alias: Some(format!(
                            "{}_{field}",
                            f.alias.clone().unwrap_or_else(|| name.clone())
                        )),
                    });
                }
            }
            _ => out.push(f.clone()),
        }
    }
    Ok(out)
}

/// Compiles an InfluxQL regex (Go RE2 syntax; Rust's `regex` agrees on what InfluxQL users
/// write).
pub fn compile(re: &str) -> Result<regex::Regex> {
    regex::Regex::new(re)
        .map_err(|e| Error::invalid(format!("invalid regular expression /{re}/: {e}")))
}
