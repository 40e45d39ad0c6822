//! The expression-level rewrites of a parsed Timestream query, in one walk over the AST:
//!
//! * `measure_value::<type>` becomes a column name ([`super::measure_value`]);
//! * inside a lambda, `x.time` / `x.value` of a parameter `x` becomes `get_field(x, 'time')`
//!   (DataFusion resolves lambda parameters only as bare names);
//! * Trino forms DataFusion has no function for: `if(c, a[, b])` → `CASE`, `count_if(p)`,
//!   `geometric_mean(x)`, `extract(<field> FROM x)` → the field's function (`hour(x)`, ...),
//!   the weighted `approx_percentile(x, w, p)`;
//! * unnamed SELECT items are named `_col<N>` (their 0-based position) as in Trino, so result
//!   columns have the names Timestream gives them (and ORDER BY keys equal to such an item refer
//!   to it by that name);
//! * `localtimestamp` / `localtime` become `now()` / `current_time()`;
//! * `(expr).name` of a row becomes `get_field(expr, 'name')`;
//! * `CAST(x AS ROW(...))` (and `ARRAY(...)`) becomes `hg_cast(x, '<type>')`
//!   ([`super::row_type`]).
//!
//! Nodes built here keep the span of the call they replace, for error positions.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AccessExpr, CaseWhen, CastKind, DataType as SqlDataType, Expr, Function,
    Ident, ObjectNamePart, OrderBy, OrderByKind, Query, Select, SelectItem, SetExpr, Spanned,
    VisitMut, VisitorMut,
};
use hourglass_core::{Error, Result};

use super::ast_util::{arg_exprs, call, number, simple_name, string, take_args, visit_mut_with};
use super::errors::at_span;
use super::functions::date_parts;
use super::measure_value;
use super::row_type;

/// Applies the rewrites to a statement.
pub fn rewrite<T: VisitMut>(node: &mut T) -> Result<()> {
    visit_mut_with(node, &mut Rewriter)
}

struct Rewriter;

impl VisitorMut for Rewriter {
    type Break = Error;

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Error> {
        match rewrite_expr(expr) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<Error> {
        name_columns(select);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<Error> {
        order_by_names(query);
        ControlFlow::Continue(())
    }
}

fn rewrite_expr(expr: &mut Expr) -> Result<()> {
    measure_value::rewrite(expr);
    match expr {
        // Trino's niladic LOCALTIMESTAMP / LOCALTIME (UTC here).
        Expr::Identifier(id)
            if id.quote_style.is_none()
                && (id.value.eq_ignore_ascii_case("localtimestamp")
                    || id.value.eq_ignore_ascii_case("localtime")) =>
        {
            let function = if id.value.eq_ignore_ascii_case("localtime") {
                "current_time"
            } else {
                "now"
            };
            *expr = call(function, vec![], id.span);
        }
        Expr::Lambda(lambda) => {
            let params: Vec<String> = lambda.params.iter().map(|p| p.name.value.clone()).collect();
            let _ = visit_expressions_mut(&mut *lambda.body, |e| {
                field_of_parameter(e, &params);
                ControlFlow::<()>::Continue(())
            });
        }
        Expr::Extract {
            field, expr: inner, ..
        } => {
            let span = expr_span(inner);
            let name = field.to_string().to_ascii_lowercase();
            let Some(function) = date_parts::extract_function(&name) else {
                return Err(at_span(span, format!("Invalid EXTRACT field: {name}")));
            };
            let arg = std::mem::replace(
                inner.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            *expr = call(function, vec![arg], span);
        }
        Expr::Function(f) => rewrite_call(expr_function_span(f), f)?.map_or((), |e| *expr = e),
        // `(expr).name` / `f(x).name` (a row's field; DataFusion reads only `col.name` itself).
        Expr::CompoundFieldAccess { root, access_chain }
            if access_chain
                .iter()
                .any(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_)))) =>
        {
            let mut out = std::mem::replace(
                root.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            for access in std::mem::take(access_chain) {
                out = match access {
                    AccessExpr::Dot(Expr::Identifier(id)) => {
                        call("get_field", vec![out, string(&id.value)], id.span)
                    }
                    other => Expr::CompoundFieldAccess {
                        root: Box::new(out),
                        access_chain: vec![other],
                    },
                };
            }
            *expr = out;
        }
        Expr::Cast {
            kind,
            expr: inner,
            data_type,
            ..
        } => {
            // `CAST(x AS ROW(...))`: the type was kept as one token ([`row_type`]).
            let Some(text) = marked_cast_type(data_type) else {
                return Ok(());
            };
            let function = match kind {
                CastKind::TryCast | CastKind::SafeCast => "hg_try_cast",
                CastKind::Cast | CastKind::DoubleColon => "hg_cast",
            };
            let span = data_type_span(data_type).unwrap_or_else(|| inner.span());
            let arg = std::mem::replace(
                inner.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            *expr = call(function, vec![arg, string(&text)], span);
        }
        _ => {}
    }
    Ok(())
}

/// The type text of a `ROW(...)`/`ARRAY(...)` cast target kept as one token.
fn marked_cast_type(t: &SqlDataType) -> Option<String> {
    let SqlDataType::Custom(name, modifiers) = t else {
        return None;
    };
    match (name.0.as_slice(), modifiers.is_empty()) {
        ([ObjectNamePart::Identifier(id)], true) => {
            row_type::marked_type(&id.value).map(str::to_string)
        }
        _ => None,
    }
}

fn data_type_span(t: &SqlDataType) -> Option<datafusion::sql::sqlparser::tokenizer::Span> {
    match t {
        SqlDataType::Custom(name, _) => match name.0.as_slice() {
            [ObjectNamePart::Identifier(id)] => Some(id.span),
            _ => None,
        },
        _ => None,
    }
}

fn expr_span(e: &Expr) -> datafusion::sql::sqlparser::tokenizer::Span {
    e.span()
}

fn expr_function_span(f: &Function) -> datafusion::sql::sqlparser::tokenizer::Span {
    f.name.span()
}

/// `x.field` (and `x.a.b`) of a lambda parameter `x` → `get_field(x, 'field')`.
fn field_of_parameter(e: &mut Expr, params: &[String]) {
    let Expr::CompoundIdentifier(ids) = e else {
        return;
    };
    if ids.len() < 2 || !params.contains(&ids[0].value) {
        return;
    }
    let span = ids[0].span;
    let mut out = Expr::Identifier(ids[0].clone());
    for field in &ids[1..] {
        out = call("get_field", vec![out, string(&field.value)], span);
    }
    *e = out;
}

fn case(conditions: Vec<(Expr, Expr)>, else_result: Option<Expr>) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: conditions
            .into_iter()
            .map(|(condition, result)| CaseWhen { condition, result })
            .collect(),
        else_result: else_result.map(Box::new),
    }
}

/// Rewrites a Trino function DataFusion has no equivalent for; `Some(replacement)` if the call
/// becomes another expression.
fn rewrite_call(
    span: datafusion::sql::sqlparser::tokenizer::Span,
    f: &mut Function,
) -> Result<Option<Expr>> {
    let Some(name) = simple_name(f) else {
        return Ok(None);
    };
    let n_args = arg_exprs(f).map(|a| a.len());
    match name.as_str() {
        "if" => {
            if !matches!(n_args, Some(2 | 3)) {
                return Err(at_span(span, "if() takes 2 or 3 arguments"));
            }
            let mut args = take_args(f).into_iter();
            let (Some(c), Some(a)) = (args.next(), args.next()) else {
                return Ok(None);
            };
            Ok(Some(case(vec![(c, a)], args.next())))
        }
        "count_if" => {
            if n_args != Some(1) {
                return Err(at_span(span, "count_if() takes 1 argument"));
            }
            let args = take_args(f);
            let flag = case(args.into_iter().map(|c| (c, number(1))).collect(), None);
            let mut counted = call("count", vec![flag], span);
            if let Expr::Function(g) = &mut counted {
                g.over = f.over.take();
                g.filter = f.filter.take();
            }
            Ok(Some(counted))
        }
        "geometric_mean" => {
            if n_args != Some(1) {
                return Err(at_span(span, "geometric_mean() takes 1 argument"));
            }
            let args = take_args(f);
            let logs = call("ln", args, span);
            let mut mean = call("avg", vec![logs], span);
            if let Expr::Function(g) = &mut mean {
                g.over = f.over.take();
                g.filter = f.filter.take();
            }
            Ok(Some(call("exp", vec![mean], span)))
        }
        "localtimestamp" | "localtime" if n_args == Some(0) => {
            let to = if name == "localtime" {
                "current_time"
            } else {
                "now"
            };
            Ok(Some(call(to, vec![], span)))
        }
        "approx_percentile" if n_args == Some(3) => {
            // approx_percentile(x, weight, percentage)
            super::ast_util::rename(f, "approx_percentile_cont_with_weight");
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// `ORDER BY <expr>` where `<expr>` is a SELECT item named above becomes `ORDER BY _colN`
/// (DataFusion matches `SELECT DISTINCT` order keys against the select list by name).
fn order_by_names(query: &mut Query) {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return;
    };
    let named: Vec<(Expr, Ident)> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } if alias.value.starts_with("_col") => {
                Some((expr.clone(), alias.clone()))
            }
            _ => None,
        })
        .collect();
    let Some(OrderBy {
        kind: OrderByKind::Expressions(items),
        ..
    }) = &mut query.order_by
    else {
        return;
    };
    for item in items {
        if let Some((_, alias)) = named.iter().find(|(e, _)| *e == item.expr) {
            item.expr = Expr::Identifier(Ident::with_span(item.expr.span(), alias.value.clone()));
        }
    }
}

/// Names unnamed, non-column SELECT items `_col<position>`.
fn name_columns(select: &mut Select) {
    for (i, item) in select.projection.iter_mut().enumerate() {
        if let SelectItem::UnnamedExpr(e) = item {
            if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                continue;
            }
            let span = e.span();
            let expr =
                std::mem::replace(e, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_span(span, format!("_col{i}")),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::dialect::to_datafusion;

    fn sql(q: &str) -> String {
        to_datafusion(q)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| e.message)
    }

    #[test]
    fn measure_values_intervals_and_names() {
        assert_eq!(
            sql("SELECT measure_value::double, t.measure_value::bigint FROM db.tbl t WHERE time > ago(1h)"),
            "SELECT \"measure_value::double\", t.\"measure_value::bigint\" FROM db.tbl t \
             WHERE time > ago(INTERVAL '1 hour')"
        );
        assert_eq!(
            sql("SELECT bin(time, 15m), count(*) AS n, x::double FROM t"),
            "SELECT bin(time, INTERVAL '15 minute') AS _col0, count(*) AS n, x::DOUBLE AS _col2 FROM t"
        );
    }

    #[test]
    fn trino_forms() {
        assert_eq!(
            sql("SELECT if(a, 1, 2) x, count_if(b) y, extract(hour FROM time) z FROM t"),
            "SELECT CASE WHEN a THEN 1 ELSE 2 END AS x, count(CASE WHEN b THEN 1 END) AS y, \
             hour(time) AS z FROM t"
        );
        assert_eq!(
            sql("SELECT filter(ts, p -> p.value > 1) f FROM t"),
            "SELECT filter(ts, p -> get_field(p, 'value') > 1) AS f FROM t"
        );
    }

    #[test]
    fn unnest_becomes_a_derived_table() {
        let out = sql("SELECT t.time FROM s CROSS JOIN UNNEST(s.ts) AS t(time, value)");
        assert!(
            out.starts_with("SELECT s.time FROM (SELECT \"s\".* EXCLUDE (\"__hg_u\")"),
            "{out}"
        );
        assert!(
            out.contains("unnest(s.ts) AS \"__hg_u\" FROM s AS s"),
            "{out}"
        );
    }
}
