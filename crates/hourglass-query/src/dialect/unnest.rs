//! `CROSS JOIN UNNEST(ts) AS t(time, value)` (and `FROM x, UNNEST(...)`): turning arrays and
//! time series back into rows.
//!
//! DataFusion plans `UNNEST` in the FROM clause only without references to other tables, and
//! `unnest(...)` in a projection with them. So the relation `R AS a` the UNNEST refers to (the one
//! its expression qualifies, else the one just before it) is replaced by a derived table with the
//! same name that carries the unnested columns:
//!
//! ```sql
//! (SELECT "a".* EXCLUDE ("__hg_u"), hg_row_field("a"."__hg_u", 0) AS "time",
//!         hg_row_field("a"."__hg_u", 1) AS "value"
//!  FROM (SELECT "a".*, unnest(<ts>) AS "__hg_u" FROM R AS a) AS "a") AS "a"
//! ```
//!
//! (one array of rows with several column names is split into fields; several arrays, or one
//! column name, are unnested directly and zipped by DataFusion; without column names a
//! timeseries gives `time` and `value`), and `t.time` elsewhere in the SELECT becomes `a.time`.
//! Rows whose array is NULL or empty disappear, as with CROSS JOIN.
//!
//! `LEFT JOIN UNNEST(...) AS t(...) ON true` keeps such rows once, with NULLs: each array is
//! wrapped in `hg_unnest_outer(...)` (the array, or `[NULL]` when it is NULL or empty).
//! `WITH ORDINALITY` adds a last column, the 1-based BIGINT position, unnested alongside from
//! `hg_unnest_ordinals(outer, <arrays>)` (`[1..n]`, n the longest array's length; NULL on the row
//! an outer join adds). A leading `FROM UNNEST(...) WITH ORDINALITY` (nothing to join) becomes
//! `(SELECT unnest(<array>) AS x, unnest(hg_unnest_ordinals(false, <array>)) AS n)`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, Ident, JoinConstraint, JoinOperator, ObjectNamePart, Query,
    SetExpr, Spanned, TableAlias, TableFactor, TableWithJoins, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;
use hourglass_core::{Error, Result};

use super::ast_util::{quoted, visit_mut_with};
use super::errors::at_span;
use super::parser_dialect::TimestreamDialect;

const ROW: &str = "__hg_u";
const EXPR_PLACEHOLDER: &str = "__hg_unnest_expr";
const REL_PLACEHOLDER: &str = "__hg_unnest_rel";

/// Rewrites every lateral UNNEST of `query` (and of its subqueries).
pub fn rewrite(query: &mut Query) -> Result<()> {
    visit_mut_with(query, &mut UnnestVisitor { next_id: 0 })
}

struct UnnestVisitor {
    next_id: usize,
}

impl VisitorMut for UnnestVisitor {
    type Break = Error;

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<Error> {
        let mut renames = Vec::new();
        if let Err(e) = self.rewrite_set_expr(&mut query.body, &mut renames) {
            return ControlFlow::Break(e);
        }
        if !renames.is_empty() {
            let _ = visit_expressions_mut(query, |e| {
                rename_qualifier(e, &renames);
                ControlFlow::<()>::Continue(())
            });
        }
        ControlFlow::Continue(())
    }
}

/// `t.x` -> `a.x` for each (t, a).
fn rename_qualifier(e: &mut Expr, renames: &[(String, Ident)]) {
    if let Expr::CompoundIdentifier(ids) = e {
        if ids.len() == 2 {
            if let Some((_, to)) = renames.iter().find(|(from, _)| *from == ids[0].value) {
                ids[0] = Ident {
                    span: ids[0].span,
                    ..to.clone()
                };
            }
        }
    }
}

fn is_unnest(t: &TableFactor) -> bool {
    matches!(t, TableFactor::UNNEST { .. })
}

/// The name a relation is referred to by (its alias, else the last part of its table name).
fn reference_name(t: &TableFactor) -> Option<Ident> {
    match t {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(a.name.clone())
        }
        TableFactor::Table { name, .. } => match name.0.last() {
            Some(ObjectNamePart::Identifier(id)) => Some(id.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn set_alias(t: &mut TableFactor, name: Ident) {
    let alias = Some(TableAlias {
        explicit: true,
        name,
        columns: Vec::new(),
        at: None,
    });
    match t {
        TableFactor::Table { alias: a, .. } | TableFactor::Derived { alias: a, .. } => *a = alias,
        _ => {}
    }
}

/// The first qualifier used in `exprs` (`m` of `m.ts`).
fn first_qualifier(exprs: &[Expr]) -> Option<String> {
    let mut found = None;
    for e in exprs {
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| {
            if let Expr::CompoundIdentifier(ids) = x {
                if ids.len() >= 2 && found.is_none() {
                    found = Some(ids[ids.len() - 2].value.clone());
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

impl UnnestVisitor {
    fn rewrite_set_expr(
        &mut self,
        body: &mut SetExpr,
        renames: &mut Vec<(String, Ident)>,
    ) -> Result<()> {
        match body {
            SetExpr::Select(select) => {
                let from = std::mem::take(&mut select.from);
                select.from = self.rewrite_from(from, renames)?;
                Ok(())
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.rewrite_set_expr(left, renames)?;
                self.rewrite_set_expr(right, renames)
            }
            _ => Ok(()),
        }
    }

    fn rewrite_from(
        &mut self,
        from: Vec<TableWithJoins>,
        renames: &mut Vec<(String, Ident)>,
    ) -> Result<Vec<TableWithJoins>> {
        // `FROM x, UNNEST(...)` is `FROM x CROSS JOIN UNNEST(...)`.
        let mut merged: Vec<TableWithJoins> = Vec::new();
        for twj in from {
            match merged.last_mut() {
                Some(prev) if is_unnest(&twj.relation) && twj.joins.is_empty() => {
                    prev.joins.push(datafusion::sql::sqlparser::ast::Join {
                        relation: twj.relation,
                        global: false,
                        join_operator: JoinOperator::CrossJoin(JoinConstraint::None),
                    });
                }
                _ => merged.push(twj),
            }
        }
        for twj in &mut merged {
            standalone_ordinality(&mut twj.relation)?;
            self.rewrite_joins(twj, renames)?;
        }
        Ok(merged)
    }

    fn rewrite_joins(
        &mut self,
        twj: &mut TableWithJoins,
        renames: &mut Vec<(String, Ident)>,
    ) -> Result<()> {
        let mut i = 0;
        while i < twj.joins.len() {
            if !is_unnest(&twj.joins[i].relation) {
                i += 1;
                continue;
            }
            let join = twj.joins.remove(i);
            let span = join.relation.span();
            let outer = match &join.join_operator {
                JoinOperator::CrossJoin(JoinConstraint::None)
                | JoinOperator::Join(JoinConstraint::None)
                | JoinOperator::Inner(JoinConstraint::None) => false,
                JoinOperator::Left(JoinConstraint::On(on))
                | JoinOperator::LeftOuter(JoinConstraint::On(on))
                    if is_true(on) =>
                {
                    true
                }
                _ => {
                    return Err(at_span(
                        span,
                        "UNNEST can only be joined with CROSS JOIN (or a comma), or with LEFT \
                         JOIN ... ON true",
                    ))
                }
            };
            let TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset,
                with_ordinality,
                ..
            } = join.relation
            else {
                continue;
            };
            if with_offset {
                return Err(at_span(span, "UNNEST ... WITH OFFSET is not supported"));
            }
            let (columns, ordinal) =
                column_names(&alias, array_exprs.len(), with_ordinality, span)?;
            // The relation the UNNEST belongs to: the one its expression names, else the one just
            // before it.
            let wanted = first_qualifier(&array_exprs);
            let mut target: Option<usize> = None; // 0 = twj.relation, k = joins[k - 1]
            if let Some(q) = &wanted {
                if reference_name(&twj.relation).is_some_and(|n| n.value == *q) {
                    target = Some(0);
                }
                for (k, j) in twj.joins[..i].iter().enumerate() {
                    if reference_name(&j.relation).is_some_and(|n| n.value == *q) {
                        target = Some(k + 1);
                    }
                }
            }
            let target = target.unwrap_or(i);
            let relation = if target == 0 {
                &mut twj.relation
            } else {
                &mut twj.joins[target - 1].relation
            };
            if is_unnest(relation) {
                return Err(at_span(
                    span,
                    "UNNEST of an UNNEST's columns is not supported",
                ));
            }
            let name = match reference_name(relation) {
                Some(n) => n,
                None => {
                    self.next_id += 1;
                    quoted(&format!("__hg_rel{}", self.next_id), span)
                }
            };
            set_alias(relation, name.clone());
            let original = std::mem::replace(relation, placeholder_table());
            let shape = Shape {
                columns: &columns,
                ordinal: ordinal.as_ref(),
                outer,
            };
            *relation = wrapper(Some(original), array_exprs, &shape, &name, span)?;
            if let Some(alias) = alias {
                renames.push((alias.name.value.clone(), name));
            }
        }
        Ok(())
    }
}

fn q(id: &Ident) -> String {
    Ident::with_quote('"', id.value.clone()).to_string()
}

/// The columns an UNNEST produces: value columns and the ordinal column, if any.
struct Shape<'a> {
    columns: &'a [Ident],
    ordinal: Option<&'a Ident>,
    /// LEFT JOIN: NULL and empty arrays give one row of NULLs.
    outer: bool,
}

fn is_true(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Boolean(true)
    )
}

/// The value columns and the ordinal column of an UNNEST: its alias's column names (the last
/// one is the ordinal with ORDINALITY), else `time`, `value` (a timeseries, as in Timestream's
/// samples: `CROSS JOIN UNNEST(ts)` then `SELECT time, value`) and `ordinality`.
fn column_names(
    alias: &Option<TableAlias>,
    n_exprs: usize,
    with_ordinality: bool,
    span: datafusion::sql::sqlparser::tokenizer::Span,
) -> Result<(Vec<Ident>, Option<Ident>)> {
    let mut columns: Vec<Ident> = match alias {
        Some(a) if !a.columns.is_empty() => a.columns.iter().map(|c| c.name.clone()).collect(),
        _ if n_exprs == 1 => {
            let mut c = vec![Ident::new("time"), Ident::new("value")];
            if with_ordinality {
                c.push(Ident::new("ordinality"));
            }
            c
        }
        _ => {
            return Err(at_span(
                span,
                "UNNEST of several arrays needs names for its columns, e.g. AS t(a, b)",
            ))
        }
    };
    let ordinal = if with_ordinality {
        if columns.len() < 2 {
            return Err(at_span(
                span,
                "UNNEST ... WITH ORDINALITY needs a column name for the values and one for the \
                 ordinal, e.g. AS t(x, n)",
            ));
        }
        columns.pop()
    } else {
        None
    };
    Ok((columns, ordinal))
}

/// `FROM UNNEST(...) WITH ORDINALITY AS t(...)` with nothing to join becomes a derived table.
fn standalone_ordinality(relation: &mut TableFactor) -> Result<()> {
    let TableFactor::UNNEST {
        with_ordinality: true,
        ..
    } = relation
    else {
        return Ok(());
    };
    let span = relation.span();
    let TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset,
        ..
    } = std::mem::replace(relation, placeholder_table())
    else {
        return Ok(());
    };
    if with_offset {
        return Err(at_span(span, "UNNEST ... WITH OFFSET is not supported"));
    }
    let (columns, ordinal) = column_names(&alias, array_exprs.len(), true, span)?;
    let name = alias
        .map(|a| a.name)
        .unwrap_or_else(|| Ident::new("__hg_unnest"));
    let shape = Shape {
        columns: &columns,
        ordinal: ordinal.as_ref(),
        outer: false,
    };
    *relation = wrapper(None, array_exprs, &shape, &name, span)?;
    Ok(())
}

fn placeholder_table() -> TableFactor {
    TableFactor::Table {
        name: vec![Ident::new(REL_PLACEHOLDER)].into(),
        alias: None,
        args: None,
        with_hints: Vec::new(),
        version: None,
        with_ordinality: false,
        partitions: Vec::new(),
        json_path: None,
        sample: None,
        index_hints: Vec::new(),
    }
}

/// The derived table replacing `original` (see the module doc); without `original`, the
/// unnested rows alone.
fn wrapper(
    original: Option<TableFactor>,
    exprs: Vec<Expr>,
    shape: &Shape,
    name: &Ident,
    span: datafusion::sql::sqlparser::tokenizer::Span,
) -> Result<TableFactor> {
    let a = q(name);
    let columns = shape.columns;
    let array = |i: usize| {
        if shape.outer {
            format!("hg_unnest_outer({EXPR_PLACEHOLDER}{i})")
        } else {
            format!("{EXPR_PLACEHOLDER}{i}")
        }
    };
    let ordinal_item = shape.ordinal.map(|o| {
        let arrays: Vec<String> = (0..exprs.len())
            .map(|i| format!("{EXPR_PLACEHOLDER}{i}"))
            .collect();
        format!(
            ", unnest(hg_unnest_ordinals({}, {})) AS {}",
            shape.outer,
            arrays.join(", "),
            q(o)
        )
    });
    let ordinal_item = ordinal_item.unwrap_or_default();
    let (all, from) = match original {
        Some(_) => (format!("{a}.*, "), format!(" FROM {REL_PLACEHOLDER}")),
        None => (String::new(), String::new()),
    };
    let text = if exprs.len() == 1 && columns.len() > 1 {
        let fields: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("hg_row_field({a}.\"{ROW}\", {i}) AS {}", q(c)))
            .collect();
        let (excluded, ordinal) = match shape.ordinal {
            Some(o) => (format!("\"{ROW}\", {}", q(o)), format!(", {a}.{}", q(o))),
            None => (format!("\"{ROW}\""), String::new()),
        };
        format!(
            "SELECT {a}.* EXCLUDE ({excluded}), {}{ordinal} FROM (SELECT {all}unnest({}) \
             AS \"{ROW}\"{ordinal_item}{from}) AS {a}",
            fields.join(", "),
            array(0)
        )
    } else if exprs.len() == columns.len() {
        let items: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("unnest({}) AS {}", array(i), q(c)))
            .collect();
        format!("SELECT {all}{}{ordinal_item}{from}", items.join(", "))
    } else {
        return Err(at_span(
            span,
            format!(
                "UNNEST of {} arrays names {} columns",
                exprs.len(),
                columns.len()
            ),
        ));
    };
    let mut query = Parser::new(&TimestreamDialect)
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| Error::internal(format!("rewriting UNNEST: {e}")))?;
    // Splice the user's relation and expressions into the template.
    let mut original = original;
    let _ = query.visit(&mut Splice {
        original: &mut original,
        exprs,
    });
    Ok(TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(TableAlias {
            explicit: true,
            name: name.clone(),
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    })
}

struct Splice<'a> {
    original: &'a mut Option<TableFactor>,
    /// Each is spliced wherever its placeholder is (the ordinals repeat the arrays).
    exprs: Vec<Expr>,
}

impl VisitorMut for Splice<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, .. } = t {
            if name.to_string() == REL_PLACEHOLDER {
                if let Some(o) = self.original.take() {
                    *t = o;
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(id) = e {
            if let Some(i) = id.value.strip_prefix(EXPR_PLACEHOLDER) {
                if let Some(x) = i.parse::<usize>().ok().and_then(|i| self.exprs.get(i)) {
                    *e = x.clone();
                }
            }
        }
        ControlFlow::Continue(())
    }
}
