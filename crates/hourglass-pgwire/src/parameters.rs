//! Bound parameters (`$1..$n`) of the extended protocol: the types reported in
//! ParameterDescription, and the values of Bind decoded into DataFusion scalars.
//!
//! Types are inferred as PostgreSQL infers them, in this order (a later rule only types a
//! parameter no earlier rule typed):
//!
//! 1. `$n::timestamptz`, `CAST($n AS TIMESTAMP WITH TIME ZONE)`: `timestamptz`, read from the
//!    SQL text. DataFusion plans `timestamptz` as a timestamp without zone when the session has
//!    no time zone, so the plan cannot tell; the value is decoded as a UTC instant
//!    (`Timestamp(ns, "+00:00")`), which compares right with the `time` column (UTC, no zone).
//! 2. The types DataFusion infers (`col = $1` takes `col`'s type).
//! 3. A placeholder cast in the plan (`$1::bigint`, `CAST($1 AS DOUBLE)`): the cast's type.
//! 4. `LIMIT $n` / `OFFSET $n`: `int8`.
//! 5. `col = ANY($n)` (DataFusion's `array_has($n, col)`) and `col <op> ANY($n)`
//!    (`array_min`/`array_max` of `$n` compared with `col`): an array of `col`'s type
//!    (`text[]`, `float8[]`, ...), `col` typed against the plan node's input.
//!
//! Anything else is `text`. Values: a text-format value is a string cast to the inferred type
//! (an array's is a PostgreSQL array literal, `{a,"b c",NULL}`, parsed by
//! [`parse_array_literal`]); a binary one is decoded by its declared type, else the inferred one
//! (arrays in PostgreSQL's array wire format), then cast to the inferred type.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::sql::sqlparser::ast::{
    visit_expressions, DataType as SqlType, Expr as SqlExpr, TimezoneInfo, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use pgwire::api::portal::Portal;
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use postgres_types::{FromSqlOwned, Kind};

use crate::errors::{self, pg_error};
use crate::{catalog, cursors, statements, PgStatement, Prepared};

/// The zone of a decoded `timestamptz` value: values are UTC instants.
const UTC: &str = "+00:00";

/// The PostgreSQL types of `stmt`'s parameters (ParameterDescription).
pub fn pg_types(stmt: &PgStatement) -> Vec<Type> {
    reported(stmt, &stmt.parameter_types)
}

/// The PostgreSQL types reported for parameters inferred as `inferred`.
fn reported(stmt: &PgStatement, inferred: &[Option<DataType>]) -> Vec<Type> {
    let oids = if stmt.sql.contains("::oid") {
        oid_casts(&stmt.sql)
    } else {
        vec![]
    };
    inferred
        .iter()
        .enumerate()
        .map(|(i, t)| match oids.iter().find(|(n, _)| *n == i + 1) {
            Some((_, ty)) => ty.clone(),
            None => t.as_ref().map(catalog::pg_type).unwrap_or(Type::TEXT),
        })
        .collect()
}

/// `$n::oid` and `$n::oid[]` in `sql` (asyncpg's type introspection): OIDs are `bigint`
/// columns here, but the client is told `oid` / `oid[]`, the type it encodes the value as.
fn oid_casts(sql: &str) -> Vec<(usize, Type)> {
    let mut found = Vec::new();
    let mut rest = sql;
    while let Some(i) = rest.find("::oid") {
        let before = &rest[..i];
        let after = &rest[i + "::oid".len()..];
        let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let n = before[before.len() - digits..].parse::<usize>().ok();
        let placeholder = before[..before.len() - digits].ends_with('$');
        let array = after.starts_with("[]");
        let word_ends = !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if let (Some(n), true, true) = (n, placeholder, word_ends) {
            found.push((n, if array { Type::OID_ARRAY } else { Type::OID }));
        }
        rest = after;
    }
    found
}

/// The Arrow types inferred for `$1..$n` of a statement `sql` prepared to `prepared` (`None`:
/// not inferred, `text`): worked out once, when the statement is parsed
/// ([`PgStatement::parameter_types`]).
pub fn inferred(prepared: &Prepared, sql: &str) -> Vec<Option<DataType>> {
    let plan = match prepared {
        Prepared::Plan(plan) => plan,
        Prepared::Cursor(cursors::Statement::Declare { query, .. }) => query,
        Prepared::Unload(u) => &u.plan,
        _ => return vec![],
    };
    plan_types(plan, sql)
}

/// The types of `$1..$n` of `plan`, planned from `sql`.
pub fn plan_types(plan: &LogicalPlan, sql: &str) -> Vec<Option<DataType>> {
    let Ok(mut types) = plan.get_parameter_types() else {
        return vec![];
    };
    for id in timestamptz_casts(sql) {
        if let Some(slot) = types.get_mut(&id) {
            *slot = Some(DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into())));
        }
    }
    let fill = |found: Vec<(String, DataType)>, types: &mut HashMap<String, Option<DataType>>| {
        for (id, t) in found {
            if let Some(slot @ None) = types.get_mut(&id) {
                *slot = Some(t);
            }
        }
    };
    fill(placeholder_casts(plan), &mut types);
    fill(limit_placeholders(plan), &mut types);
    fill(any_arrays(plan), &mut types);
    let n = types
        .keys()
        .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    (1..=n)
        .map(|i| types.get(&format!("${i}")).cloned().flatten())
        .collect()
}

/// The placeholders `sql` casts to `timestamp with time zone` (`$1::timestamptz`,
/// `$1::pg_catalog.timestamptz`, `CAST($1 AS TIMESTAMP WITH TIME ZONE)`).
fn timestamptz_casts(sql: &str) -> Vec<String> {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("timestamptz") && !lower.contains("with time zone") {
        return vec![];
    }
    let rewritten = statements::rewrite(sql);
    let Ok(parsed) = Parser::parse_sql(&PostgreSqlDialect {}, &rewritten) else {
        return vec![];
    };
    let mut found = Vec::new();
    let _ = visit_expressions(&parsed, |e| {
        if let SqlExpr::Cast {
            expr,
            data_type: SqlType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz),
            ..
        } = e
        {
            if let SqlExpr::Value(v) = expr.as_ref() {
                if let Value::Placeholder(id) = &v.value {
                    found.push(id.clone());
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

/// Visits every expression of `plan` (subqueries included) with the schemas its columns
/// resolve against: the node's inputs', then its own.
fn visit_exprs(plan: &LogicalPlan, mut f: impl FnMut(&Expr, &[&DFSchema])) {
    let _ = plan.apply_with_subqueries(|node| {
        let inputs = node.inputs();
        let mut schemas: Vec<&DFSchema> = inputs.iter().map(|p| p.schema().as_ref()).collect();
        schemas.push(node.schema().as_ref());
        node.apply_expressions(|e| {
            e.apply(|e| {
                f(e, &schemas);
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(TreeNodeRecursion::Continue)
    });
}

/// The types placeholders are directly cast to (`CAST($1 AS BIGINT)`, `$1::bigint`).
fn placeholder_casts(plan: &LogicalPlan) -> Vec<(String, DataType)> {
    let mut found = Vec::new();
    visit_exprs(plan, |e, _| {
        let (inner, t) = match e {
            Expr::Cast(c) => (c.expr.as_ref(), c.field.data_type()),
            Expr::TryCast(c) => (c.expr.as_ref(), c.field.data_type()),
            _ => return,
        };
        if let Expr::Placeholder(p) = inner {
            found.push((p.id.clone(), t.clone()));
        }
    });
    found
}

/// `LIMIT $n` and `OFFSET $n`: `int8`, as PostgreSQL types them.
fn limit_placeholders(plan: &LogicalPlan) -> Vec<(String, DataType)> {
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Limit(limit) = node {
            for e in [&limit.skip, &limit.fetch].into_iter().flatten() {
                if let Expr::Placeholder(p) = e.as_ref() {
                    found.push((p.id.clone(), DataType::Int64));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// `col = ANY($n)` (`array_has($n, col)`) and `col <op> ANY($n)` (`array_min($n)` or
/// `array_max($n)` compared with `col`): `$n` is an array of `col`'s type.
fn any_arrays(plan: &LogicalPlan) -> Vec<(String, DataType)> {
    fn type_of(e: &Expr, schemas: &[&DFSchema]) -> Option<DataType> {
        if matches!(e, Expr::Placeholder(_)) {
            return None;
        }
        let t = schemas.iter().find_map(|s| e.get_type(*s).ok())?;
        let t = match t {
            DataType::Dictionary(_, value) => *value,
            DataType::Null => return None,
            t => t,
        };
        Some(DataType::List(Arc::new(Field::new("item", t, true))))
    }
    fn array_placeholder<'a>(e: &'a Expr, names: &[&str]) -> Option<&'a str> {
        let Expr::ScalarFunction(f) = e else {
            return None;
        };
        if !names.contains(&f.name()) {
            return None;
        }
        match f.args.first() {
            Some(Expr::Placeholder(p)) if p.field.is_none() => Some(p.id.as_str()),
            _ => None,
        }
    }
    let mut found = Vec::new();
    visit_exprs(plan, |e, schemas| match e {
        Expr::ScalarFunction(f) if f.args.len() == 2 => {
            if let Some(id) = array_placeholder(e, &["array_has"]) {
                if let Some(t) = type_of(&f.args[1], schemas) {
                    found.push((id.to_string(), t));
                }
            }
        }
        Expr::BinaryExpr(b) => {
            for (side, other) in [(&b.left, &b.right), (&b.right, &b.left)] {
                if let Some(id) = array_placeholder(side, &["array_min", "array_max"]) {
                    if let Some(t) = type_of(other, schemas) {
                        found.push((id.to_string(), t));
                    }
                }
            }
        }
        _ => {}
    });
    found
}

/// Decodes a portal's bound parameters: text-format values as strings (array literals as
/// lists of strings) cast to the inferred type, binary ones by their declared (else reported,
/// [`pg_types`]) PostgreSQL type, then cast to the inferred type.
pub fn decode(portal: &Portal<PgStatement>) -> PgWireResult<Vec<ScalarValue>> {
    let inferred = &portal.statement.statement.parameter_types;
    let reported = reported(&portal.statement.statement, inferred);
    let mut values = Vec::with_capacity(portal.parameter_len());
    for i in 0..portal.parameter_len() {
        let target = inferred.get(i).cloned().flatten();
        let declared = portal
            .statement
            .parameter_types
            .get(i)
            .cloned()
            .flatten()
            .filter(|t| *t != Type::UNKNOWN);
        let is_array = matches!(target, Some(DataType::List(_)))
            || declared
                .as_ref()
                .is_some_and(|t| matches!(t.kind(), Kind::Array(_)));
        let value = if portal.parameter_format.is_binary(i) {
            let ty = declared
                .or_else(|| reported.get(i).cloned())
                .unwrap_or(Type::TEXT);
            binary_parameter(portal, i, &ty)?
        } else {
            match portal.parameters.get(i).cloned().flatten() {
                None if is_array => {
                    ScalarValue::try_from(&text_list()).map_err(crate::errors::from_datafusion)?
                }
                None => ScalarValue::Utf8(None),
                Some(bytes) => {
                    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                        pg_error("22021", format!("parameter ${} is not valid UTF-8", i + 1))
                    })?;
                    if is_array {
                        let items = parse_array_literal(&text).map_err(|e| {
                            pg_error(
                                "22P02",
                                format!("malformed array literal for parameter ${}: {e}", i + 1),
                            )
                        })?;
                        let items: Vec<ScalarValue> =
                            items.into_iter().map(ScalarValue::Utf8).collect();
                        ScalarValue::List(ScalarValue::new_list_nullable(&items, &DataType::Utf8))
                    } else {
                        ScalarValue::Utf8(Some(text))
                    }
                }
            }
        };
        let value = match &target {
            Some(t) if *t != value.data_type() && *t != DataType::Null => {
                value.cast_to(t).map_err(|e| {
                    pg_error(
                        "22P02",
                        format!("invalid value for parameter ${} of type {t}: {e}", i + 1),
                    )
                })?
            }
            _ => value,
        };
        values.push(value);
    }
    Ok(values)
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// One binary-format value of PostgreSQL type `ty` (scalars and one-dimensional arrays).
fn binary_parameter(
    portal: &Portal<PgStatement>,
    i: usize,
    ty: &Type,
) -> PgWireResult<ScalarValue> {
    if let Kind::Array(element) = ty.kind() {
        return binary_array(portal, i, ty, element);
    }
    binary_scalar(portal, i, ty)
}

fn binary_scalar(portal: &Portal<PgStatement>, i: usize, ty: &Type) -> PgWireResult<ScalarValue> {
    use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
    Ok(match ty.name() {
        "bool" => ScalarValue::Boolean(portal.parameter::<bool>(i, ty)?),
        "int2" => ScalarValue::Int16(portal.parameter::<i16>(i, ty)?),
        "int4" => ScalarValue::Int32(portal.parameter::<i32>(i, ty)?),
        "int8" => ScalarValue::Int64(portal.parameter::<i64>(i, ty)?),
        "oid" => ScalarValue::Int64(portal.parameter::<u32>(i, ty)?.map(i64::from)),
        "float4" => ScalarValue::Float32(portal.parameter::<f32>(i, ty)?),
        "float8" => ScalarValue::Float64(portal.parameter::<f64>(i, ty)?),
        "timestamp" => timestamp(portal.parameter::<NaiveDateTime>(i, ty)?),
        "timestamptz" => timestamptz(portal.parameter::<DateTime<FixedOffset>>(i, ty)?),
        "date" => date(portal.parameter::<NaiveDate>(i, ty)?),
        "text" | "varchar" | "bpchar" | "name" | "unknown" => {
            ScalarValue::Utf8(portal.parameter::<String>(i, ty)?)
        }
        other => return Err(unsupported(other)),
    })
}

fn timestamp(t: Option<chrono::NaiveDateTime>) -> ScalarValue {
    ScalarValue::TimestampNanosecond(t.and_then(|t| t.and_utc().timestamp_nanos_opt()), None)
}

fn timestamptz(t: Option<chrono::DateTime<chrono::FixedOffset>>) -> ScalarValue {
    ScalarValue::TimestampNanosecond(t.and_then(|t| t.timestamp_nanos_opt()), Some(UTC.into()))
}

fn date(d: Option<chrono::NaiveDate>) -> ScalarValue {
    ScalarValue::Date32(d.map(|d| (d - chrono::NaiveDate::default()).num_days() as i32))
}

fn unsupported(name: &str) -> pgwire::error::PgWireError {
    pg_error(
        errors::FEATURE_NOT_SUPPORTED,
        format!("binary parameters of type {name} are not supported; send text"),
    )
}

/// A binary array (PostgreSQL's array wire format, one dimension) as a list scalar.
fn binary_array(
    portal: &Portal<PgStatement>,
    i: usize,
    ty: &Type,
    element: &Type,
) -> PgWireResult<ScalarValue> {
    use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
    fn list<T>(
        portal: &Portal<PgStatement>,
        i: usize,
        ty: &Type,
        item: DataType,
        f: impl Fn(Option<T>) -> ScalarValue,
    ) -> PgWireResult<ScalarValue>
    where
        T: FromSqlOwned + for<'b> pgwire::types::FromSqlText<'b>,
    {
        let field = Arc::new(Field::new("item", item.clone(), true));
        Ok(match portal.parameter::<Vec<Option<T>>>(i, ty)? {
            None => ScalarValue::try_from(&DataType::List(field))
                .map_err(crate::errors::from_datafusion)?,
            Some(items) => {
                let items: Vec<ScalarValue> = items.into_iter().map(f).collect();
                ScalarValue::List(ScalarValue::new_list_nullable(&items, &item))
            }
        })
    }
    let ns = |tz: Option<&str>| DataType::Timestamp(TimeUnit::Nanosecond, tz.map(Into::into));
    match element.name() {
        "bool" => list(portal, i, ty, DataType::Boolean, ScalarValue::Boolean),
        "int2" => list(portal, i, ty, DataType::Int16, ScalarValue::Int16),
        "int4" => list(portal, i, ty, DataType::Int32, ScalarValue::Int32),
        "int8" => list(portal, i, ty, DataType::Int64, ScalarValue::Int64),
        "oid" => list::<u32>(portal, i, ty, DataType::Int64, |o| {
            ScalarValue::Int64(o.map(i64::from))
        }),
        "float4" => list(portal, i, ty, DataType::Float32, ScalarValue::Float32),
        "float8" => list(portal, i, ty, DataType::Float64, ScalarValue::Float64),
        "timestamp" => list::<NaiveDateTime>(portal, i, ty, ns(None), timestamp),
        "timestamptz" => list::<DateTime<FixedOffset>>(portal, i, ty, ns(Some(UTC)), timestamptz),
        "date" => list::<NaiveDate>(portal, i, ty, DataType::Date32, date),
        "text" | "varchar" | "bpchar" | "name" => {
            list(portal, i, ty, DataType::Utf8, ScalarValue::Utf8)
        }
        _ => Err(unsupported(ty.name())),
    }
}

/// Parses a one-dimensional PostgreSQL array literal (`{a,"b c",NULL,"x\"y"}`) into its
/// elements, `None` for an unquoted `NULL`. Elements may be double-quoted (inside quotes a
/// backslash escapes the next character, `,`, `{`, `}` and whitespace are plain); outside
/// quotes a backslash escapes the next character and surrounding whitespace is dropped.
/// `{}` is the empty array. Nested arrays are refused.
pub fn parse_array_literal(text: &str) -> Result<Vec<Option<String>>, String> {
    let text = text.trim();
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| "an array literal starts with \"{\" and ends with \"}\"".to_string())?;
    let mut items = Vec::new();
    if inner.trim().is_empty() {
        return Ok(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let mut quoted = false;
        let mut escaped = false;
        if chars.peek() == Some(&'"') {
            chars.next();
            quoted = true;
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted element".to_string()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => item.push(c),
                        None => return Err("unexpected end after \\".to_string()),
                    },
                    Some(c) => item.push(c),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("junk after a quoted element".to_string());
            }
        } else {
            // Trailing whitespace is dropped unless escaped: `kept` is the length up to the
            // last character that counts.
            let mut kept = 0;
            while let Some(&c) = chars.peek() {
                match c {
                    ',' => break,
                    '{' | '}' => {
                        return Err(format!(
                            "unexpected \"{c}\" (nested arrays are not supported)"
                        ))
                    }
                    '"' => return Err("unexpected \" in an unquoted element".to_string()),
                    '\\' => {
                        chars.next();
                        let c = chars
                            .next()
                            .ok_or_else(|| "unexpected end after \\".to_string())?;
                        item.push(c);
                        escaped = true;
                        kept = item.len();
                        continue;
                    }
                    c => {
                        item.push(c);
                        if !c.is_whitespace() {
                            kept = item.len();
                        }
                    }
                }
                chars.next();
            }
            item.truncate(kept);
            if item.is_empty() {
                return Err("empty unquoted element".to_string());
            }
        }
        let null = !quoted && !escaped && item.eq_ignore_ascii_case("NULL");
        items.push((!null).then_some(item));
        match chars.next() {
            None => return Ok(items),
            Some(',') => {}
            Some(c) => return Err(format!("unexpected \"{c}\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn oid_casts_are_read_from_the_sql() {
        assert_eq!(
            oid_casts("SELECT 1 WHERE ti.oid = any($1::oid[]) AND x = $12::oid AND y::oids = $2"),
            [(1, Type::OID_ARRAY), (12, Type::OID)]
        );
        assert!(oid_casts("SELECT a::oid FROM t").is_empty());
    }

    #[test]
    fn array_literals() {
        assert_eq!(
            parse_array_literal("{}").unwrap(),
            Vec::<Option<String>>::new()
        );
        assert_eq!(
            parse_array_literal(" { } ").unwrap(),
            Vec::<Option<String>>::new()
        );
        assert_eq!(
            parse_array_literal("{r,p,\"\"}").unwrap(),
            [s("r"), s("p"), s("")]
        );
        assert_eq!(
            parse_array_literal("{a, b c ,\"c d\",NULL,null,\"NULL\"}").unwrap(),
            [s("a"), s("b c"), s("c d"), None, None, s("NULL")]
        );
        assert_eq!(
            parse_array_literal(r#"{"a\"b","c\\d",e\,f,"{x}",\NULL, g\ }"#).unwrap(),
            [s("a\"b"), s("c\\d"), s("e,f"), s("{x}"), s("NULL"), s("g ")]
        );
        assert_eq!(
            parse_array_literal("{1.5,2.0}").unwrap(),
            [s("1.5"), s("2.0")]
        );
        assert_eq!(
            parse_array_literal("{é,\"ü ö\"}").unwrap(),
            [s("é"), s("ü ö")]
        );
        for bad in [
            "",
            "a,b",
            "{a",
            "{a,,b}",
            "{a,}",
            "{{1,2},{3,4}}",
            "{\"a\"b}",
            "{\"a}",
            "{a\"b}",
        ] {
            assert!(parse_array_literal(bad).is_err(), "{bad}");
        }
    }

    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("hostname", DataType::Utf8, true),
            Field::new(
                "region",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("usage_user", DataType::Float64, true),
        ]));
        let table = MemTable::try_new(schema, vec![vec![]]).unwrap();
        ctx.register_table("cpu", Arc::new(table)).unwrap();
        let sql = statements::rewrite(sql);
        ctx.state().create_logical_plan(&sql).await.unwrap()
    }

    async fn types(sql: &str) -> Vec<Option<DataType>> {
        plan_types(&plan(sql).await, sql)
    }

    fn list(t: DataType) -> Option<DataType> {
        Some(DataType::List(Arc::new(Field::new("item", t, true))))
    }

    #[tokio::test]
    async fn limit_and_offset_are_int8() {
        assert_eq!(
            types("SELECT hostname FROM cpu ORDER BY time LIMIT $1").await,
            [Some(DataType::Int64)]
        );
        assert_eq!(
            types("SELECT hostname FROM cpu WHERE hostname = $1 LIMIT $2 OFFSET $3").await,
            [
                Some(DataType::Utf8),
                Some(DataType::Int64),
                Some(DataType::Int64)
            ]
        );
    }

    #[tokio::test]
    async fn any_is_an_array_of_the_column_type() {
        assert_eq!(
            types("SELECT count(*) FROM cpu WHERE hostname = ANY($1)").await,
            [list(DataType::Utf8)]
        );
        assert_eq!(
            types("SELECT count(*) FROM cpu WHERE region = ANY($1) AND usage_user = ANY($2)").await,
            [list(DataType::Utf8), list(DataType::Float64)]
        );
        assert_eq!(
            types("SELECT count(*) FROM cpu WHERE usage_user > ANY($1)").await,
            [list(DataType::Float64)]
        );
    }

    #[tokio::test]
    async fn timestamptz_casts_come_from_the_sql() {
        let tz = Some(DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into())));
        let naive = Some(DataType::Timestamp(TimeUnit::Nanosecond, None));
        for sql in [
            "SELECT count(*) FROM cpu WHERE time >= $1::timestamptz",
            "SELECT count(*) FROM cpu WHERE time >= $1::pg_catalog.timestamptz",
            "SELECT count(*) FROM cpu WHERE time >= CAST($1 AS TIMESTAMP WITH TIME ZONE)",
            "SELECT $1::\"pg_catalog\".\"timestamptz\"::text",
        ] {
            assert_eq!(types(sql).await, std::slice::from_ref(&tz), "{sql}");
        }
        assert_eq!(
            types("SELECT count(*) FROM cpu WHERE time >= $1").await,
            std::slice::from_ref(&naive)
        );
        assert_eq!(
            types("SELECT count(*) FROM cpu WHERE time >= $1::pg_catalog.timestamp").await,
            [naive]
        );
        assert_eq!(
            types("SELECT $1::bigint, $2").await,
            [Some(DataType::Int64), None]
        );
    }
}
