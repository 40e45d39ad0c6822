//! Reading the SQL AST, shared by the rewrites of subqueries ([`super::array_subquery`],
//! [`super::scalar_subquery`]).

use datafusion::sql::sqlparser::ast::{
    Expr, Function, GroupByExpr, Ident, Query, Select, SelectItem, SetExpr, TableFactor,
    TableWithJoins,
};

/// An identifier as PostgreSQL reads it: as written when quoted, lower-cased otherwise.
pub(super) fn normalise(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// The (normalised) last part of a function's name.
pub(super) fn function_name(f: &Function) -> Option<String> {
    f.name.0.last().and_then(|p| p.as_ident()).map(normalise)
}

/// The table factors of a FROM and of its joins, left to right (a nested join is one factor).
pub(super) fn factors(from: &[TableWithJoins]) -> impl Iterator<Item = &TableFactor> {
    from.iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
}

/// The name PostgreSQL gives a select item, where it is a column's or a function's (`None`
/// otherwise: `?column?`, which is left to DataFusion).
pub(super) fn item_name(item: &SelectItem) -> Option<String> {
    fn expr_name(e: &Expr) -> Option<String> {
        match e {
            Expr::Identifier(id) => Some(normalise(id)),
            Expr::CompoundIdentifier(parts) => parts.last().map(normalise),
            Expr::Function(f) => function_name(f),
            Expr::Cast { expr, .. } | Expr::Nested(expr) => expr_name(expr),
            Expr::Case { .. } => Some("case".to_string()),
            _ => None,
        }
    }
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(normalise(alias)),
        SelectItem::UnnamedExpr(e) => expr_name(e),
        _ => None,
    }
}

/// The one SELECT of `query` when it projects one item and has none of the clauses that change
/// which rows there are (WITH, LIMIT, OFFSET, FETCH, DISTINCT, GROUP BY, HAVING, window
/// clauses, set operations and dialects' others); its ORDER BY and FROM are the caller's to
/// judge.
pub(super) fn single_column_select(query: &Query) -> Option<&Select> {
    if query.with.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
        || !query.locks.is_empty()
        || query.for_clause.is_some()
        || query.settings.is_some()
        || query.format_clause.is_some()
        || !query.pipe_operators.is_empty()
    {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let no_group =
        matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if select.distinct.is_some()
        || select.top.is_some()
        || select.select_modifiers.is_some()
        || select.exclude.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.connect_by.is_empty()
        || !no_group
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || select.having.is_some()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || select.value_table_mode.is_some()
        || select.projection.len() != 1
    {
        return None;
    }
    Some(select)
}
