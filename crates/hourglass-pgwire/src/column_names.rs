//! Output column names as PostgreSQL gives them, on the PostgreSQL wire.
//!
//! DataFusion names an unaliased select item after its expression (`count(*)`,
//! `sum(cpu.usage)`, `t.x`), PostgreSQL after what the expression is (its `FigureColname`):
//! pandas (`df["count"]`), SQLAlchemy (`row.count`) and Grafana read these names. The names of
//! the top-level select list (the first SELECT of a set operation) are computed from the SQL
//! before any rewrite and DataFusion plans the statement as it would; where they differ from
//! DataFusion's, a projection on top of the plan carries each PostgreSQL name as field metadata
//! ([`METADATA_KEY`]), and the schema sent in RowDescription (simple and extended queries,
//! Describe, cursors, COPY's header) takes them from there ([`pg_schema`]).
//!
//! The rules (PostgreSQL 16's `FigureColname`, a later rule only where an earlier one names
//! nothing):
//!
//! | select item | name |
//! |---|---|
//! | `e AS a` | `a` |
//! | a column `x`, `t.x`, `s.t.x` | `x` |
//! | `a[1]` (a subscript) | the name of `a` |
//! | a function or aggregate call `f(…)`, `s.f(…)`, `f(…) OVER (…)` | `f` (`count(*)` is `count`) |
//! | `CAST(e AS t)`, `e::t` | the name of `e` where it is a column, a function, …; else the type's PostgreSQL name (`1::int` is `int4`, `'a'::text` is `text`, `(x + 1)::bigint` is `int8`) |
//! | `true`, `false` | `bool` (PostgreSQL reads them as `'t'::bool`) |
//! | `DATE '…'`, `TIMESTAMP '…'`, `INTERVAL '…'` | the type (`date`, `timestamp`, `interval`) |
//! | `CASE …` | `case` (a cast of it: the type) |
//! | `ARRAY[…]`, `ARRAY(subquery)` | `array` |
//! | `(SELECT e …)` | the subquery's column's name |
//! | `EXISTS (…)` | `exists` |
//! | `COALESCE`, `NULLIF`, `GREATEST`, `LEAST` | their names |
//! | `EXTRACT(…)`, `SUBSTRING(…)`, `POSITION(…)`, `OVERLAY(…)`, `CEIL`, `FLOOR` | their names |
//! | `TRIM(…)` | `btrim` (`ltrim` with LEADING, `rtrim` with TRAILING) |
//! | `e AT TIME ZONE z` | `timezone` |
//! | `ROW(…)`, `(a, b)` | `row` |
//! | `*`, `t.*` | the table's columns |
//! | anything else (`x + 1`, `1`, `'a'`, `NULL`, `x IS NULL`, `-x`, `$1`) | `?column?` |
//!
//! Names may repeat, as in PostgreSQL (`SELECT time, CAST(time AS BIGINT)` has two columns
//! named `time`). DataFusion refuses a select list whose expressions it names alike
//! ("Projections require unique expression names"): where PostgreSQL's names repeat, the
//! repeated items are aliased internally before planning (`time__2`, [`alias_repeated`]; only
//! the output name changes), and a select list with a wildcard DataFusion refuses is planned
//! again with its other items aliased ([`alias_beside_wildcards`]); PostgreSQL's names are
//! sent. Where the select list cannot be matched one-to-one with the plan's
//! columns (two wildcards, a count that differs), DataFusion's names are sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::logical_expr::expr::{Alias, FieldMetadata};
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    CeilFloorKind, DataType, Expr, Ident, Query, SelectItem, SetExpr, Statement, TrimWhereField,
    Value,
};

/// The field metadata key holding a column's PostgreSQL name.
pub const METADATA_KEY: &str = "hourglass.pg_name";

/// What PostgreSQL calls an expression it cannot name.
pub const NO_NAME: &str = "?column?";

/// The top-level select list of `statement` (the first SELECT of a set operation), when it is
/// a query.
fn select_items_mut(statement: &mut DFStatement) -> Option<&mut Vec<SelectItem>> {
    let DFStatement::Statement(s) = statement else {
        return None;
    };
    let Statement::Query(q) = s.as_mut() else {
        return None;
    };
    fn body(e: &mut SetExpr) -> Option<&mut Vec<SelectItem>> {
        match e {
            SetExpr::Select(s) => Some(&mut s.projection),
            SetExpr::Query(q) => body(q.body.as_mut()),
            SetExpr::SetOperation { left, .. } => body(left.as_mut()),
            _ => None,
        }
    }
    body(q.body.as_mut())
}

fn query_items(q: &Query) -> Option<&Vec<SelectItem>> {
    fn body(e: &SetExpr) -> Option<&Vec<SelectItem>> {
        match e {
            SetExpr::Select(s) => Some(&s.projection),
            SetExpr::Query(q) => body(q.body.as_ref()),
            SetExpr::SetOperation { left, .. } => body(left.as_ref()),
            _ => None,
        }
    }
    body(q.body.as_ref())
}

/// PostgreSQL's names of the top-level select list of `statement` (`None` for a wildcard), or
/// `None` when it is not a query.
pub fn select_names(statement: &DFStatement) -> Option<Vec<Option<String>>> {
    let DFStatement::Statement(s) = statement else {
        return None;
    };
    let Statement::Query(q) = s.as_ref() else {
        return None;
    };
    Some(query_items(q)?.iter().map(item_name).collect())
}

/// PostgreSQL's name of a select item; `None` for a wildcard.
pub fn item_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(normalise(alias)),
        SelectItem::UnnamedExpr(e) => Some(expr_name(e)),
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => None,
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// PostgreSQL's name of an unaliased expression.
pub fn expr_name(e: &Expr) -> String {
    figure(e).0.unwrap_or_else(|| NO_NAME.to_string())
}

fn normalise(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// PostgreSQL's `FigureColnameInternal`: a name and its strength (0: none, 1: a fallback a
/// cast replaces with its type, 2: a name).
fn figure(e: &Expr) -> (Option<String>, u8) {
    let named = |s: &str| (Some(s.to_string()), 2);
    match e {
        Expr::Identifier(id) => (Some(normalise(id)), 2),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(p) => (Some(normalise(p)), 2),
            None => (None, 0),
        },
        Expr::CompoundFieldAccess { root, access_chain } => {
            use datafusion::sql::sqlparser::ast::AccessExpr;
            match access_chain.last() {
                Some(AccessExpr::Dot(Expr::Identifier(id))) => (Some(normalise(id)), 2),
                Some(AccessExpr::Subscript(_)) => figure(root),
                _ => (None, 0),
            }
        }
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure(inner),
        Expr::Function(f) => {
            if matches!(
                f.args,
                datafusion::sql::sqlparser::ast::FunctionArguments::Subquery(_)
            ) && f.name.0.len() == 1
                && f.name.to_string().eq_ignore_ascii_case("array")
            {
                return named("array");
            }
            match f.name.0.last().and_then(|p| p.as_ident()) {
                Some(id) => (Some(normalise(id)), 2),
                None => (None, 0),
            }
        }
        Expr::Cast {
            expr, data_type, ..
        } => {
            let (name, strength) = figure(expr);
            if strength <= 1 {
                (Some(type_name(data_type)), 1)
            } else {
                (name, strength)
            }
        }
        Expr::TypedString(t) => (Some(type_name(&t.data_type)), 1),
        Expr::Interval(_) => (Some("interval".to_string()), 1),
        Expr::Value(v) => match &v.value {
            Value::Boolean(_) => (Some("bool".to_string()), 1),
            _ => (None, 0),
        },
        Expr::Case { .. } => (Some("case".to_string()), 1),
        Expr::Array(_) => (Some("array".to_string()), 1),
        Expr::Tuple(_) => (Some("row".to_string()), 1),
        Expr::Subquery(q) => match query_items(q).and_then(|items| items.first()) {
            Some(item) if query_items(q).is_some_and(|i| i.len() == 1) => match item_name(item) {
                Some(n) if n != NO_NAME => (Some(n), 2),
                _ => (None, 0),
            },
            _ => (None, 0),
        },
        Expr::Exists { .. } => named("exists"),
        Expr::Extract { .. } => named("extract"),
        Expr::Substring { .. } => named("substring"),
        Expr::Position { .. } => named("position"),
        Expr::Overlay { .. } => named("overlay"),
        Expr::Ceil { field, .. } | Expr::Floor { field, .. } => {
            let _: &CeilFloorKind = field;
            named(if matches!(e, Expr::Ceil { .. }) {
                "ceil"
            } else {
                "floor"
            })
        }
        Expr::Trim { trim_where, .. } => named(match trim_where {
            Some(TrimWhereField::Leading) => "ltrim",
            Some(TrimWhereField::Trailing) => "rtrim",
            _ => "btrim",
        }),
        Expr::AtTimeZone { .. } => named("timezone"),
        _ => (None, 0),
    }
}

/// PostgreSQL's internal name of a type written in SQL (the last part of its name: `int` is
/// `int4`, `double precision` `float8`, `int[]` `int4`).
pub fn type_name(t: &DataType) -> String {
    use DataType as T;
    match t {
        T::Int(_) | T::Integer(_) | T::Int4(_) => "int4".into(),
        T::BigInt(_) | T::Int8(_) => "int8".into(),
        T::SmallInt(_) | T::Int2(_) => "int2".into(),
        T::Real | T::Float4 => "float4".into(),
        T::Double(_) | T::DoublePrecision | T::Float8 => "float8".into(),
        T::Float(info) => {
            use datafusion::sql::sqlparser::ast::ExactNumberInfo;
            match info {
                ExactNumberInfo::Precision(p) | ExactNumberInfo::PrecisionAndScale(p, _)
                    if *p <= 24 =>
                {
                    "float4".into()
                }
                _ => "float8".into(),
            }
        }
        T::Boolean | T::Bool => "bool".into(),
        T::Text => "text".into(),
        T::Varchar(_) | T::CharacterVarying(_) | T::CharVarying(_) => "varchar".into(),
        T::Char(_) | T::Character(_) => "bpchar".into(),
        T::Numeric(_) | T::Decimal(_) | T::Dec(_) => "numeric".into(),
        T::Date => "date".into(),
        T::Timestamp(_, tz) => {
            use datafusion::sql::sqlparser::ast::TimezoneInfo;
            match tz {
                TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => "timestamptz".into(),
                _ => "timestamp".into(),
            }
        }
        T::Time(_, tz) => {
            use datafusion::sql::sqlparser::ast::TimezoneInfo;
            match tz {
                TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => "timetz".into(),
                _ => "time".into(),
            }
        }
        T::Interval { .. } => "interval".into(),
        T::Bytea => "bytea".into(),
        T::JSON => "json".into(),
        T::JSONB => "jsonb".into(),
        T::Uuid => "uuid".into(),
        T::Array(elem) => {
            use datafusion::sql::sqlparser::ast::ArrayElemTypeDef;
            match elem {
                ArrayElemTypeDef::SquareBracket(inner, _)
                | ArrayElemTypeDef::AngleBracket(inner)
                | ArrayElemTypeDef::Parenthesis(inner) => type_name(inner),
                ArrayElemTypeDef::None => "anyarray".into(),
            }
        }
        T::Custom(name, _) => match name.0.last().and_then(|p| p.as_ident()) {
            Some(id) => {
                let n = normalise(id);
                match n.as_str() {
                    "timestamptz" => n,
                    "integer" | "int" => "int4".into(),
                    "bigint" => "int8".into(),
                    "smallint" => "int2".into(),
                    "real" => "float4".into(),
                    "float" => "float8".into(),
                    "boolean" => "bool".into(),
                    "decimal" => "numeric".into(),
                    _ => n,
                }
            }
            None => name.to_string().to_lowercase(),
        },
        other => other
            .to_string()
            .split('(')
            .next()
            .unwrap_or_default()
            .trim()
            .to_lowercase(),
    }
}

/// Aliases the unaliased items of the top-level select list whose PostgreSQL name an earlier
/// item has (`time`, `CAST(time AS BIGINT)` → `time`, `CAST(time AS BIGINT) AS "time__2"`),
/// and aliased items repeating an earlier alias likewise, so that DataFusion names them apart.
/// Returns whether anything changed.
pub fn alias_repeated(statement: &mut DFStatement) -> bool {
    let Some(items) = select_items_mut(statement) else {
        return false;
    };
    let names: Vec<Option<String>> = items.iter().map(item_name).collect();
    let mut taken: HashSet<String> = names.iter().flatten().cloned().collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut changed = false;
    for (item, name) in items.iter_mut().zip(names) {
        let Some(name) = name else { continue };
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            continue;
        }
        let mut k = *n;
        let mut alias = format!("{name}__{k}");
        while taken.contains(&alias) {
            k += 1;
            alias = format!("{name}__{k}");
        }
        taken.insert(alias.clone());
        let expr = match std::mem::replace(item, SelectItem::Wildcard(Default::default())) {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            other => {
                *item = other;
                continue;
            }
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', alias),
        };
        changed = true;
    }
    changed
}

/// Aliases every unaliased item of the top-level select list apart from the wildcards' columns
/// (`SELECT *, time` → `SELECT *, time AS "time__2"`), for a select list with a wildcard
/// DataFusion refused ([`is_repeated_name_error`]). Returns whether anything changed.
pub fn alias_beside_wildcards(statement: &mut DFStatement) -> bool {
    let Some(items) = select_items_mut(statement) else {
        return false;
    };
    if !items.iter().any(|i| item_name(i).is_none()) {
        return false;
    }
    let mut changed = false;
    for (i, item) in items.iter_mut().enumerate() {
        if let SelectItem::UnnamedExpr(e) = item {
            let alias = format!("{}__{}", expr_name(e), i + 1);
            let expr = std::mem::replace(e, Expr::value(Value::Null));
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', alias),
            };
            changed = true;
        }
    }
    changed
}

/// Whether `e` is DataFusion's refusal of a select list it names alike.
pub fn is_repeated_name_error(e: &datafusion::error::DataFusionError) -> bool {
    e.to_string()
        .contains("Projections require unique expression names")
}

/// `plan` with the PostgreSQL names `names` (of the select list, `None` for a wildcard)
/// attached to its columns as metadata, where they differ from DataFusion's and the select list
/// matches the plan's columns one-to-one (a wildcard's columns keep DataFusion's names);
/// otherwise `plan` unchanged.
pub fn name_plan(plan: LogicalPlan, names: &[Option<String>]) -> LogicalPlan {
    if matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::DescribeTable(_)
    ) {
        return plan;
    }
    let schema = plan.schema().clone();
    let n = schema.fields().len();
    let wildcards = names.iter().filter(|n| n.is_none()).count();
    let expanded: Vec<String> = match wildcards {
        0 if names.len() == n => names.iter().flatten().cloned().collect(),
        1 if names.len() <= n + 1 => {
            let width = n + 1 - names.len();
            let mut out = Vec::with_capacity(n);
            for name in names {
                match name {
                    Some(name) => out.push(name.clone()),
                    None => {
                        for i in out.len()..out.len() + width {
                            out.push(schema.field(i).name().clone());
                        }
                    }
                }
            }
            out
        }
        _ => return plan,
    };
    if expanded.len() != n
        || expanded
            .iter()
            .zip(schema.fields())
            .all(|(pg, f)| pg == f.name())
    {
        return plan;
    }
    let exprs: Vec<DfExpr> = schema
        .iter()
        .zip(&expanded)
        .map(|((qualifier, field), pg)| {
            let column = DfExpr::Column(datafusion::common::Column::new(
                qualifier.cloned(),
                field.name(),
            ));
            let mut metadata: std::collections::BTreeMap<String, String> = field
                .metadata()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            metadata.insert(METADATA_KEY.to_string(), pg.clone());
            DfExpr::Alias(
                Alias::new(column, qualifier.cloned(), field.name().clone())
                    .with_metadata(Some(FieldMetadata::from(metadata))),
            )
        })
        .collect();
    match LogicalPlanBuilder::from(plan.clone())
        .project(exprs)
        .and_then(LogicalPlanBuilder::build)
    {
        Ok(named) => named,
        Err(_) => plan,
    }
}

/// `schema` with each field carrying [`METADATA_KEY`] renamed to that name (the key removed).
pub fn pg_schema(schema: &Schema) -> Schema {
    if !schema
        .fields()
        .iter()
        .any(|f| f.metadata().contains_key(METADATA_KEY))
    {
        return schema.clone();
    }
    let fields: Vec<Arc<Field>> = schema
        .fields()
        .iter()
        .map(|f| match f.metadata().get(METADATA_KEY) {
            Some(name) => {
                let mut metadata = f.metadata().clone();
                metadata.remove(METADATA_KEY);
                Arc::new(f.as_ref().clone().with_name(name).with_metadata(metadata))
            }
            None => f.clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

    fn names(sql: &str) -> Vec<Option<String>> {
        let statement = DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {})
            .unwrap()
            .pop_front()
            .unwrap();
        select_names(&statement).unwrap()
    }

    /// Each select item and the name PostgreSQL 16 gives it (`SELECT <item> FROM t`).
    #[test]
    fn names_as_postgresql_does() {
        for (item, want) in [
            ("count(*)", "count"),
            ("count(DISTINCT x)", "count"),
            ("sum(x)", "sum"),
            ("avg(t.x) FILTER (WHERE x > 1)", "avg"),
            ("row_number() OVER (ORDER BY x)", "row_number"),
            ("pg_catalog.now()", "now"),
            ("x", "x"),
            ("X", "x"),
            ("\"X\"", "X"),
            ("t.x", "x"),
            ("s.t.x", "x"),
            ("CAST(x AS int)", "x"),
            ("x::int", "x"),
            ("x::text::int", "x"),
            ("count(*)::int", "count"),
            ("CAST(1 AS int)", "int4"),
            ("1::bigint", "int8"),
            ("(x + 1)::double precision", "float8"),
            ("'a'::text", "text"),
            ("'1'::varchar(3)", "varchar"),
            ("1::numeric(10, 2)", "numeric"),
            ("x::timestamptz", "x"),
            ("'2024-01-01'::timestamp with time zone", "timestamptz"),
            ("'2024-01-01'::timestamp", "timestamp"),
            ("1::real", "float4"),
            ("1::smallint", "int2"),
            ("1::boolean", "bool"),
            ("'{1}'::int[]", "int4"),
            ("c.oid::regclass", "oid"),
            ("1::regclass", "regclass"),
            ("true", "bool"),
            ("false::int", "int4"),
            ("DATE '2024-01-01'", "date"),
            ("TIMESTAMP '2024-01-01 00:00:00'", "timestamp"),
            ("INTERVAL '1 day'", "interval"),
            ("CASE WHEN x > 1 THEN 1 END", "case"),
            ("CASE WHEN x > 1 THEN 1 END::text", "text"),
            ("ARRAY[1, 2]", "array"),
            ("ARRAY(SELECT 1)", "array"),
            ("(SELECT max(y) FROM u)", "max"),
            ("(SELECT u.y FROM u LIMIT 1)", "y"),
            ("(SELECT 1)", "?column?"),
            ("EXISTS (SELECT 1)", "exists"),
            ("coalesce(x, 0)", "coalesce"),
            ("nullif(x, 0)", "nullif"),
            ("greatest(x, 1)", "greatest"),
            ("EXTRACT(year FROM time)", "extract"),
            ("SUBSTRING(s FROM 1 FOR 2)", "substring"),
            ("POSITION('a' IN s)", "position"),
            ("TRIM(s)", "btrim"),
            ("TRIM(LEADING 'a' FROM s)", "ltrim"),
            ("CEIL(x)", "ceil"),
            ("FLOOR(x)", "floor"),
            ("time AT TIME ZONE 'UTC'", "timezone"),
            ("date_trunc('hour', time)", "date_trunc"),
            ("current_timestamp", "current_timestamp"),
            ("a[1]", "a"),
            ("(x)", "x"),
            ("x + 1", "?column?"),
            ("1", "?column?"),
            ("'a'", "?column?"),
            ("NULL", "?column?"),
            ("-x", "?column?"),
            ("x IS NULL", "?column?"),
            ("NOT b", "?column?"),
            ("x IN (1, 2)", "?column?"),
            ("s LIKE 'a%'", "?column?"),
            ("s || 'a'", "?column?"),
            ("$1", "?column?"),
            ("x AS \"Count\"", "Count"),
            ("count(*) AS N", "n"),
        ] {
            assert_eq!(
                names(&format!("SELECT {item} FROM t")),
                [Some(want.to_string())],
                "{item}"
            );
        }
    }

    #[test]
    fn wildcards_and_set_operations() {
        assert_eq!(names("SELECT *, x FROM t"), [None, Some("x".to_string())]);
        assert_eq!(names("SELECT t.* FROM t"), [None]);
        assert_eq!(
            names("SELECT count(*) FROM t UNION ALL SELECT sum(x) FROM u"),
            [Some("count".to_string())]
        );
    }

    #[test]
    fn repeated_names_are_aliased_apart() {
        let mut statement = DFParser::parse_sql_with_dialect(
            "SELECT time, CAST(time AS BIGINT), time::text, x AS time__2 FROM t",
            &PostgreSqlDialect {},
        )
        .unwrap()
        .pop_front()
        .unwrap();
        assert!(alias_repeated(&mut statement));
        assert_eq!(
            statement.to_string(),
            "SELECT time, CAST(time AS BIGINT) AS \"time__3\", time::TEXT AS \"time__4\", x AS time__2 FROM t"
        );
        let mut plain =
            DFParser::parse_sql_with_dialect("SELECT a, b FROM t", &PostgreSqlDialect {})
                .unwrap()
                .pop_front()
                .unwrap();
        assert!(!alias_repeated(&mut plain));
    }
}
