//! Translating InfluxQL expressions into the SQL Hourglass's own query engine runs: quoting,
//! a measurement's tags and fields as the catalog knows them, `WHERE` conditions with
//! InfluxDB's tag semantics (a series without a tag has the empty string there), and math.

use std::collections::BTreeMap;

use hourglass_core::{ColumnRole, ColumnType, Error, Result};
use hourglass_storage::catalog::TableDef;

use super::ast::{BinOp, Cast, Expr};

/// `"name"`, with inner quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with inner quotes doubled.
pub fn string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A nanosecond time as an SQL timestamp.
pub fn timestamp(ns: i64) -> String {
    format!("arrow_cast({ns}, 'Timestamp(Nanosecond, None)')")
}

/// A measurement's tags and fields (a line protocol table: dimensions and measures).
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    pub db: String,
    pub name: String,
    pub tags: Vec<String>,
    pub fields: BTreeMap<String, ColumnType>,
    /// A derived table (the SQL of a subquery's rows) read instead of the table `db.name`.
    pub source: Option<String>,
    /// Over a derived table of aggregates without `GROUP BY time`, raw rows are read series by
    /// series (sorted by their tags), each in time order, as InfluxDB reads them; else in time
    /// order.
    pub by_series: bool,
}

impl Measurement {
    pub fn from_def(db: &str, def: &TableDef) -> Measurement {
        let mut tags: Vec<String> = def
            .columns
            .iter()
            .filter(|c| c.role == ColumnRole::Dimension)
            .map(|c| c.name.clone())
            .collect();
        tags.sort();
        let fields = def
            .columns
            .iter()
            .filter(|c| c.role == ColumnRole::Measure)
            .filter_map(|c| c.measure_type.map(|t| (c.name.clone(), t)))
            .collect();
        Measurement {
            db: db.to_string(),
            name: def.name.clone(),
            tags,
            fields,
            source: None,
            by_series: false,
        }
    }

    /// What `FROM` names: the table, or the subquery's derived table.
    pub fn table(&self) -> String {
        match &self.source {
            Some(sql) => format!("({sql}) AS {}", ident(&self.name)),
            None => format!("{}.{}", ident(&self.db), ident(&self.name)),
        }
    }

    pub fn is_tag(&self, name: &str) -> bool {
        self.tags.iter().any(|t| t == name)
    }

    /// What a variable reference names here.
    pub fn resolve(&self, name: &str, cast: Option<Cast>) -> Ref {
        let tag = self.is_tag(name);
        let field = self.fields.get(name).copied();
        match (cast, tag, field) {
            (Some(Cast::Tag), true, _) => Ref::Tag,
            (Some(Cast::Tag), false, _) => Ref::Missing,
            (Some(Cast::Field), _, Some(t)) => Ref::Field(t),
            (Some(Cast::Field), _, None) => Ref::Missing,
            (_, _, Some(t)) => Ref::Field(t),
            (_, true, None) => Ref::Tag,
            _ => Ref::Missing,
        }
    }
}

/// What a name refers to in one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref {
    Tag,
    Field(ColumnType),
    Missing,
}

/// InfluxDB's name for a field type.
pub fn field_type_name(t: ColumnType) -> &'static str {
    match t {
        ColumnType::Double => "float",
        ColumnType::Bigint => "integer",
        ColumnType::Ubigint => "unsigned",
        ColumnType::Boolean => "boolean",
        _ => "string",
    }
}

/// An SQL operand of a condition and whether it is a tag.
enum Operand {
    Tag(String),
    Value(String),
    Null,
}

fn operand(m: &Measurement, e: &Expr) -> Result<Operand> {
    Ok(match e.unparen() {
        Expr::Var { name, cast } => match m.resolve(name, *cast) {
            Ref::Tag => Operand::Tag(ident(name)),
            Ref::Field(_) => Operand::Value(ident(name)),
            Ref::Missing => Operand::Null,
        },
        Expr::Str(s) => Operand::Value(string(s)),
        other => Operand::Value(math(m, other, &mut |_, _| Ok(None))?),
    })
}

/// A `WHERE` condition (time conditions already taken out) as SQL.
pub fn condition(m: &Measurement, e: &Expr) -> Result<String> {
    match e {
        Expr::Paren(inner) => condition(m, inner),
        Expr::Binary {
            op: op @ (BinOp::And | BinOp::Or),
            lhs,
            rhs,
        } => Ok(format!(
            "({} {} {})",
            condition(m, lhs)?,
            if *op == BinOp::And { "AND" } else { "OR" },
            condition(m, rhs)?
        )),
        Expr::Binary { op, lhs, rhs } if matches!(op, BinOp::RegexMatch | BinOp::RegexNotMatch) => {
            let Expr::Regex(re) = rhs.unparen() else {
                return Err(Error::invalid(
                    "invalid condition: =~ and !~ need a regular expression (/…/) on their right",
                ));
            };
            let not = *op == BinOp::RegexNotMatch;
            let sql_op = if not { "!~" } else { "~" };
            Ok(match operand(m, lhs)? {
                Operand::Tag(c) => format!(
                    "(COALESCE(CAST({c} AS VARCHAR), '') {sql_op} {})",
                    string(re)
                ),
                Operand::Value(v) => format!("(CAST({v} AS VARCHAR) {sql_op} {})", string(re)),
                // A missing key behaves like a tag with the empty string.
                Operand::Null => format!("('' {sql_op} {})", string(re)),
            })
        }
        Expr::Binary { op, lhs, rhs } if op.is_comparison() => {
            let sql_op = match op {
                BinOp::Eq => "=",
                BinOp::NotEq => "<>",
                BinOp::Lt => "<",
                BinOp::LtEq => "<=",
                BinOp::Gt => ">",
                _ => ">=",
            };
            let (l, r) = (operand(m, lhs)?, operand(m, rhs)?);
            let tag_side = |tag: &str, other: &Operand, flipped: bool| -> String {
                let value = match other {
                    Operand::Tag(t) => format!("COALESCE(CAST({t} AS VARCHAR), '')"),
                    Operand::Value(v) => v.clone(),
                    Operand::Null => "''".into(),
                };
                let tag = format!("COALESCE(CAST({tag} AS VARCHAR), '')");
                if flipped {
                    format!("({value} {sql_op} {tag})")
                } else {
                    format!("({tag} {sql_op} {value})")
                }
            };
            Ok(match (&l, &r) {
                (Operand::Tag(t), other) => {
                    // Fast form for the common `tag = 'value'` with a non-empty value.
                    match (op, &rhs.unparen()) {
                        (BinOp::Eq, Expr::Str(s)) if !s.is_empty() => {
                            format!("({t} = {})", string(s))
                        }
                        _ => tag_side(t, other, false),
                    }
                }
                (other, Operand::Tag(t)) => tag_side(t, other, true),
                (Operand::Null, _) | (_, Operand::Null) => {
                    // A missing key compares as the empty string with strings, never otherwise.
                    let is_str = |e: &Expr| matches!(e.unparen(), Expr::Str(_));
                    if (matches!(l, Operand::Null) && is_str(rhs))
                        || (matches!(r, Operand::Null) && is_str(lhs))
                    {
                        let (a, b) = match (&l, &r) {
                            (Operand::Null, Operand::Value(v)) => ("''".to_string(), v.clone()),
                            (Operand::Value(v), Operand::Null) => (v.clone(), "''".to_string()),
                            _ => ("''".into(), "''".into()),
                        };
                        format!("({a} {sql_op} {b})")
                    } else {
                        "FALSE".into()
                    }
                }
                (Operand::Value(a), Operand::Value(b)) => format!("({a} {sql_op} {b})"),
            })
        }
        Expr::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.into()),
        Expr::Var { name, cast } => Ok(match m.resolve(name, *cast) {
            Ref::Field(ColumnType::Boolean) => format!("({} IS TRUE)", ident(name)),
            _ => "FALSE".into(),
        }),
        other => Err(Error::invalid(format!(
            "invalid condition: {other:?} is not a boolean expression"
        ))),
    }
}

/// Translates a call (aggregate) to SQL, `None` for calls it does not know.
pub type CallSql<'a> = dyn FnMut(&str, &[Expr]) -> Result<Option<String>> + 'a;

/// Arithmetic over fields and literals as SQL. `call` translates function calls (aggregates),
/// answering `None` for calls it does not know. `/` always divides as floats (InfluxQL's rule).
pub fn math(m: &Measurement, e: &Expr, call: &mut CallSql<'_>) -> Result<String> {
    Ok(match e {
        Expr::Paren(inner) => format!("({})", math(m, inner, call)?),
        Expr::Integer(v) => format!("CAST({v} AS BIGINT)"),
        Expr::Number(v) => format!("CAST({v:?} AS DOUBLE)"),
        Expr::Duration(v) => format!("CAST({v} AS BIGINT)"),
        Expr::Str(s) => string(s),
        Expr::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Expr::Var { name, cast } => match m.resolve(name, *cast) {
            Ref::Field(t) => cast_field(&ident(name), t, *cast),
            // Tags take no part in math: InfluxDB answers null there.
            Ref::Tag | Ref::Missing => "CAST(NULL AS DOUBLE)".into(),
        },
        Expr::Call { name, args } if super::fields::MATH.contains(&name.as_str()) => {
            let mut a = Vec::new();
            for arg in args {
                a.push(format!("CAST({} AS DOUBLE)", math(m, arg, call)?));
            }
            let want = if matches!(name.as_str(), "atan2" | "log" | "pow") {
                2
            } else {
                1
            };
            if a.len() != want {
                return Err(Error::invalid(format!(
                    "invalid number of arguments for {name}, expected {want}, got {}",
                    a.len()
                )));
            }
            match name.as_str() {
                "log" => format!("(ln({}) / ln({}))", a[0], a[1]),
                "pow" => format!("power({}, {})", a[0], a[1]),
                "atan2" => format!("atan2({}, {})", a[0], a[1]),
                // Go's math.Round rounds half away from zero, as DataFusion's round does.
                f => format!("{f}({})", a[0]),
            }
        }
        Expr::Call { name, args } => match call(name, args)? {
            Some(sql) => sql,
            None => return Err(Error::invalid(format!("undefined function {name}()"))),
        },
        Expr::Binary { op, lhs, rhs } => {
            let (l, r) = (math(m, lhs, call)?, math(m, rhs, call)?);
            match op {
                BinOp::Add => format!("({l} + {r})"),
                BinOp::Sub => format!("({l} - {r})"),
                BinOp::Mul => format!("({l} * {r})"),
                BinOp::Div => format!(
                    "(CASE WHEN CAST({r} AS DOUBLE) = 0 THEN CAST(0 AS DOUBLE) ELSE CAST({l} AS DOUBLE) / CAST({r} AS DOUBLE) END)"
                ),
                BinOp::Mod => format!("({l} % {r})"),
                BinOp::BitAnd => format!("({l} & {r})"),
                BinOp::BitOr => format!("({l} | {r})"),
                BinOp::BitXor => format!("({l} ^ {r})"),
                _ => {
                    return Err(Error::invalid(
                        "comparisons are not supported in the SELECT clause",
                    ))
                }
            }
        }
        Expr::Wildcard | Expr::Regex(_) => {
            return Err(Error::invalid(
                "a wildcard or regex cannot be used in an expression",
            ))
        }
    })
}

/// A field column with a `::type` cast applied (InfluxDB casts only between numbers; other
/// casts give null).
fn cast_field(col: &str, t: ColumnType, cast: Option<Cast>) -> String {
    let numeric = matches!(
        t,
        ColumnType::Double | ColumnType::Bigint | ColumnType::Ubigint
    );
    match cast {
        Some(Cast::Float) if numeric => format!("CAST({col} AS DOUBLE)"),
        Some(Cast::Integer) if numeric => format!("CAST({col} AS BIGINT)"),
        Some(Cast::Unsigned) if numeric => format!("CAST({col} AS BIGINT UNSIGNED)"),
        Some(Cast::Float) | Some(Cast::Integer) | Some(Cast::Unsigned) => {
            "CAST(NULL AS DOUBLE)".into()
        }
        Some(Cast::String) if t != ColumnType::Varchar => "CAST(NULL AS VARCHAR)".into(),
        Some(Cast::Boolean) if t != ColumnType::Boolean => "CAST(NULL AS BOOLEAN)".into(),
        _ => col.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Measurement {
        let mut fields = BTreeMap::new();
        fields.insert("v".to_string(), ColumnType::Double);
        Measurement {
            db: "db".into(),
            name: "cpu".into(),
            tags: vec!["host".into()],
            fields,
            source: None,
            by_series: false,
        }
    }

    fn cond(q: &str) -> String {
        let stmts =
            crate::influxql::parser::parse_query(&format!("SELECT v FROM m WHERE {q}")).unwrap();
        let crate::influxql::ast::Statement::Select(s) = &stmts[0] else {
            unreachable!()
        };
        condition(&m(), s.condition.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn tags_compare_as_influxdb() {
        assert_eq!(cond("host = 'a'"), "(\"host\" = 'a')");
        assert_eq!(
            cond("host != 'a'"),
            "(COALESCE(CAST(\"host\" AS VARCHAR), '') <> 'a')"
        );
        assert_eq!(
            cond("host = ''"),
            "(COALESCE(CAST(\"host\" AS VARCHAR), '') = '')"
        );
        assert_eq!(cond("nope = ''"), "('' = '')");
        assert_eq!(cond("nope > 1"), "FALSE");
        assert_eq!(
            cond("host =~ /^a'/"),
            "(COALESCE(CAST(\"host\" AS VARCHAR), '') ~ '^a''')"
        );
        assert_eq!(
            cond("v > 1 OR v < 0"),
            "((\"v\" > CAST(1 AS BIGINT)) OR (\"v\" < CAST(0 AS BIGINT)))"
        );
    }
}
