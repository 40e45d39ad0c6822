//! `ARRAY(subquery)` as an aggregated scalar subquery DataFusion plans.
//!
//! This rule works around DataFusion: switched off (`hourglass.disabled_rules =
//! 'array_subquery'`), DataFusion cannot plan `ARRAY(SELECT …)` (it drops the subquery and calls
//! a function `array`, which the PostgreSQL wire refuses with "ARRAY(subquery) is not
//! supported"); it never answers differently. Clients send it: psql 15's `\du`, `\dp`/`\z`,
//! `\dD`.
//!
//! On the SQL AST before DataFusion plans it,
//!
//! ```text
//! ARRAY(SELECT e FROM F [WHERE p] [ORDER BY k, …])
//!   →  coalesce((SELECT array_agg(e [ORDER BY k', …]) FROM F [WHERE p]), make_array())
//! ```
//!
//! Why it is exact: PostgreSQL's `ARRAY(subquery)` is the array of the subquery's one column,
//! one element per row (NULLs included), in the subquery's order, and an empty array when it
//! has no rows. `array_agg(e ORDER BY …)` over the same rows is that array (DataFusion's
//! `array_agg` keeps NULLs; without an ORDER BY neither side promises an order), and is NULL
//! for no rows, which `coalesce(…, make_array())` turns into the empty array (DataFusion types
//! `make_array()` as a list of `Null`, which coerces to the aggregate's list type). A
//! correlated subquery stays correlated: DataFusion decorrelates an aggregated scalar
//! subquery into a join on its equality conditions; the outer rows no group matches get NULL,
//! hence the empty array. What DataFusion cannot decorrelate (a non-equality correlation) it
//! refuses, as it refuses any such subquery: never a different answer.
//!
//! The ORDER BY keys `k'` are the subquery's, with an output-column reference replaced by the
//! projected expression (`ORDER BY 1`, or the output column's name: PostgreSQL resolves a bare
//! name in ORDER BY to an output column first); any other key is an expression over the
//! subquery's input, as in PostgreSQL. PostgreSQL's default null ordering (NULLS LAST ascending,
//! FIRST descending) is DataFusion's.
//!
//! Only a subquery of one SELECT with one column and none of LIMIT, OFFSET, FETCH, DISTINCT,
//! GROUP BY, HAVING, window clauses, set operations, a WITH, aggregates, window functions or
//! `unnest` in its column is rewritten (those change which rows there are, and `array_agg`
//! over them would not be the array of the rows), with a FROM of tables, joins and derived
//! tables (a table function may read the outer row, which DataFusion cannot plan there) and no
//! subquery in its column (DataFusion plans none inside an aggregate's argument); anything else
//! is left for the refusal.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, Expr, FunctionArgumentClause, FunctionArguments, OrderByExpr, OrderByKind,
    Query, Select, SelectItem, SetExpr, TableFactor, TableWithJoins, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::tokenizer::Span;

use super::sql_ast::{factors, function_name, item_name, normalise, single_column_select};
use crate::dialect::ast_util::call;

/// Rewrites the `ARRAY(subquery)` expressions of `node` it can keep exact (see the module).
pub fn rewrite<N: VisitMut>(node: &mut N) {
    let _ = node.visit(&mut ArrayVisitor);
}

struct ArrayVisitor;

impl VisitorMut for ArrayVisitor {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some(new) = rewritten(expr) {
            *expr = new;
        }
        ControlFlow::Continue(())
    }
}

/// Whether `expr` is `ARRAY(subquery)`, and its subquery.
pub fn array_subquery(expr: &Expr) -> Option<&Query> {
    let Expr::Function(f) = expr else {
        return None;
    };
    let FunctionArguments::Subquery(q) = &f.args else {
        return None;
    };
    let [part] = f.name.0.as_slice() else {
        return None;
    };
    let id = part.as_ident()?;
    (id.quote_style.is_none()
        && id.value.eq_ignore_ascii_case("array")
        && f.filter.is_none()
        && f.over.is_none()
        && f.null_treatment.is_none()
        && f.within_group.is_empty())
    .then_some(q.as_ref())
}

/// Whether `expr` holds something that makes `array_agg(expr)` not the array of the rows.
fn unfit_column(expr: &Expr) -> bool {
    super::scalar_subquery::aggregates(expr)
        || visit_expressions(expr, |e| {
            if let Expr::Function(f) = e {
                if matches!(
                    function_name(f).as_deref(),
                    Some("unnest" | "generate_series" | "range")
                ) || matches!(f.args, FunctionArguments::Subquery(_))
                {
                    return ControlFlow::Break(());
                }
            }
            if matches!(
                e,
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }
            ) {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })
        .is_break()
}

/// The rewritten form of `expr` when it is an `ARRAY(subquery)` this rule keeps exact.
fn rewritten(expr: &Expr) -> Option<Expr> {
    let query = array_subquery(expr)?;
    let select = single_column_select(query)?;
    let item = &select.projection[0];
    let column = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
        _ => return None,
    };
    if unfit_column(&column) {
        return None;
    }
    if let Some(array) = unnested_array(select, &column, query.order_by.is_some()) {
        return Some(or_empty_array(array));
    }
    // A FROM of tables and joins, subqueries and VALUES: a table function (which may read the
    // outer row, a lateral reference DataFusion cannot plan in an aggregated subquery) keeps
    // the refusal.
    if !from_without_functions(&select.from) {
        return None;
    }
    let name = item_name(item);
    let mut keys = Vec::new();
    if let Some(order_by) = &query.order_by {
        if order_by.interpolate.is_some() {
            return None;
        }
        let OrderByKind::Expressions(list) = &order_by.kind else {
            return None;
        };
        for key in list {
            if key.with_fill.is_some() {
                return None;
            }
            let expr = match &key.expr {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) if n == "1" => column.clone(),
                    // Another position (an error in PostgreSQL) or a constant: left alone.
                    _ => return None,
                },
                Expr::Identifier(id) if name.as_deref() == Some(normalise(id).as_str()) => {
                    column.clone()
                }
                other => other.clone(),
            };
            keys.push(OrderByExpr {
                expr,
                options: key.options,
                with_fill: None,
            });
        }
    }
    let mut agg = call("array_agg", vec![column], Span::empty());
    if !keys.is_empty() {
        if let Expr::Function(f) = &mut agg {
            if let FunctionArguments::List(list) = &mut f.args {
                list.clauses.push(FunctionArgumentClause::OrderBy(keys));
            }
        }
    }
    let mut q = query.clone();
    q.order_by = None;
    if let SetExpr::Select(s) = q.body.as_mut() {
        s.projection = vec![SelectItem::UnnamedExpr(agg)];
    }
    Some(or_empty_array(Expr::Subquery(Box::new(q))))
}

/// `coalesce(e, make_array())`: `e`, or the empty array where it is NULL.
fn or_empty_array(e: Expr) -> Expr {
    call(
        "coalesce",
        vec![e, call("make_array", vec![], Span::empty())],
        Span::empty(),
    )
}

/// `a` of `ARRAY(SELECT x FROM unnest(a) AS t(x))` (psql's `\\dy`), with no WHERE, ORDER BY or
/// join: the array of the elements of `a` in order is `a` itself (no rows, `a` NULL or empty:
/// the empty array).
fn unnested_array(select: &Select, column: &Expr, ordered: bool) -> Option<Expr> {
    if ordered || select.selection.is_some() || select.from.len() != 1 {
        return None;
    }
    let from = &select.from[0];
    if !from.joins.is_empty() {
        return None;
    }
    let TableFactor::UNNEST {
        alias: Some(alias),
        array_exprs,
        with_offset: false,
        with_offset_alias: None,
        with_ordinality: false,
    } = &from.relation
    else {
        return None;
    };
    let ([array], [element]) = (array_exprs.as_slice(), alias.columns.as_slice()) else {
        return None;
    };
    if element.data_type.is_some() {
        return None;
    }
    let element = normalise(&element.name);
    let names_element = match column {
        Expr::Identifier(id) => normalise(id) == element,
        Expr::CompoundIdentifier(parts) => {
            parts.len() == 2
                && normalise(&parts[0]) == normalise(&alias.name)
                && normalise(&parts[1]) == element
        }
        _ => false,
    };
    names_element.then(|| array.clone())
}

/// Whether a FROM holds only tables (no arguments), joins, derived tables that are not
/// LATERAL, and nested joins of them.
fn from_without_functions(from: &[TableWithJoins]) -> bool {
    factors(from).all(|f| match f {
        TableFactor::Table { args, .. } => args.is_none(),
        TableFactor::Derived { lateral, .. } => !lateral,
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => from_without_functions(std::slice::from_ref(&**table_with_joins)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten_sql(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        rewrite(&mut statements[0]);
        statements[0].to_string()
    }

    #[test]
    fn rewrites_to_an_aggregated_subquery_with_an_empty_default() {
        assert_eq!(
            rewritten_sql(
                "SELECT r.rolname, ARRAY(SELECT b.rolname FROM m JOIN b ON (m.roleid = b.oid) \
                 WHERE m.member = r.oid) AS memberof FROM r"
            ),
            "SELECT r.rolname, coalesce((SELECT array_agg(b.rolname) FROM m JOIN b ON (m.roleid = b.oid) \
             WHERE m.member = r.oid), make_array()) AS memberof FROM r"
        );
        assert_eq!(
            rewritten_sql("SELECT ARRAY(SELECT 1)"),
            "SELECT coalesce((SELECT array_agg(1)), make_array())"
        );
    }

    #[test]
    fn order_by_output_columns_become_the_column() {
        assert_eq!(
            rewritten_sql("SELECT ARRAY(SELECT rolname FROM r WHERE oid = 1 ORDER BY 1)"),
            "SELECT coalesce((SELECT array_agg(rolname ORDER BY rolname) FROM r WHERE oid = 1), make_array())"
        );
        assert_eq!(
            rewritten_sql("SELECT ARRAY(SELECT x + 1 AS y FROM t ORDER BY y DESC, z)"),
            "SELECT coalesce((SELECT array_agg(x + 1 ORDER BY x + 1 DESC, z) FROM t), make_array())"
        );
        assert_eq!(
            rewritten_sql("SELECT ARRAY(SELECT t.x FROM t ORDER BY x NULLS FIRST)"),
            "SELECT coalesce((SELECT array_agg(t.x ORDER BY t.x NULLS FIRST) FROM t), make_array())"
        );
    }

    #[test]
    fn a_subquery_in_the_column_keeps_the_refusal() {
        // DataFusion plans no subquery inside an aggregate's argument: the inner ARRAY is
        // rewritten, the outer one left to be refused.
        assert_eq!(
            rewritten_sql("SELECT ARRAY(SELECT array_to_string(ARRAY(SELECT u.y FROM u), ',') FROM t)"),
            "SELECT ARRAY(SELECT array_to_string(coalesce((SELECT array_agg(u.y) FROM u), make_array()), ',') FROM t)"
        );
    }

    #[test]
    fn an_unnested_array_is_the_array() {
        assert_eq!(
            rewritten_sql(
                "SELECT array_to_string(ARRAY(SELECT x FROM unnest(e.tags) AS t(x)), ', ') FROM e"
            ),
            "SELECT array_to_string(coalesce(e.tags, make_array()), ', ') FROM e"
        );
        assert_eq!(
            rewritten_sql("SELECT ARRAY(SELECT t.x FROM unnest(a) AS t(x))"),
            "SELECT coalesce(a, make_array())"
        );
    }

    #[test]
    fn left_alone() {
        for sql in [
            "SELECT ARRAY(SELECT x FROM t LIMIT 2)",
            "SELECT ARRAY(SELECT x FROM t OFFSET 1)",
            "SELECT ARRAY(SELECT DISTINCT x FROM t)",
            "SELECT ARRAY(SELECT x FROM t GROUP BY x)",
            "SELECT ARRAY(SELECT x, y FROM t)",
            "SELECT ARRAY(SELECT * FROM t)",
            "SELECT ARRAY(SELECT count(*) FROM t)",
            "SELECT ARRAY(SELECT row_number() OVER () FROM t)",
            "SELECT ARRAY(SELECT unnest(a) FROM t)",
            "SELECT ARRAY(SELECT x FROM t UNION SELECT 1)",
            "SELECT ARRAY(WITH c AS (SELECT 1 AS x) SELECT x FROM c)",
            "SELECT ARRAY(SELECT x FROM t ORDER BY 2)",
            "SELECT ARRAY(SELECT x FROM unnest(a) AS t(x) WHERE x > 1)",
            "SELECT ARRAY(SELECT x FROM unnest(a) AS t(x) ORDER BY x)",
            "SELECT ARRAY(SELECT x + 1 FROM unnest(a) AS t(x))",
            "SELECT ARRAY(SELECT x FROM generate_series(1, o.n) AS g(x))",
            "SELECT ARRAY[1, 2]",
            "SELECT \"array\"(1)",
        ] {
            let original = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap()[0].to_string();
            assert_eq!(rewritten_sql(sql), original, "{sql}");
        }
    }
}
