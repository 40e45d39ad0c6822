//! A statement's shape: the literals a dashboard changes between runs become placeholders
//! `$1, $2, …`, and the rest of the statement is the shape's text.
//!
//! Only literals compared with a bare column in a `WHERE` clause are taken out: the operand of
//! `=`, `<>`, `<`, `<=`, `>`, `>=` whose other side is a column, the items of `column IN (…)`
//! and the bounds of `column BETWEEN … AND …`, in any `AND`/`OR`/`NOT` nesting, in the `WHERE`
//! of every `SELECT` of the query (set operations, derived tables and `WITH` queries included;
//! subqueries inside expressions are left whole). Such a literal never names an output column,
//! and its placeholder takes its type from the column it is compared with. Kinds taken: integers,
//! decimals, single-quoted strings of at most [`MAX_STRING_LITERAL`] bytes and `TIMESTAMP '…'`.
//! Everything else (`LIMIT`, intervals, function arguments, select items) stays in the text, so
//! two statements share a shape only where they differ in those literals alone.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, Query, SetExpr, Statement, TableFactor, TimezoneInfo,
    TypedString, UnaryOperator, Value, ValueWithSpan, Visit, Visitor,
};

/// Longer string literals stay in the shape's text (a template is not worth a large constant,
/// and the value bounds see it there).
pub const MAX_STRING_LITERAL: usize = 256;

/// A literal taken out of a statement, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// An unsigned numeric literal's text (`42`, `1.5`, `1e3`).
    Number(String),
    /// A single-quoted string.
    String(String),
    /// `TIMESTAMP '…'` (without a time zone): the quoted text.
    Timestamp(String),
}

/// A statement with its literals taken out.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The statement with placeholders in place of the literals.
    pub statement: Statement,
    /// The statement's text with the placeholders: the cache key's main part.
    pub text: String,
    /// The literals taken out, `$1` first.
    pub literals: Vec<Literal>,
}

impl Shape {
    /// The shape of `statement`, when it is a query with at least one literal to take out and no
    /// placeholders of its own.
    pub fn of(statement: &Statement) -> Option<Shape> {
        let Statement::Query(_) = statement else {
            return None;
        };
        if has_placeholders(statement) {
            return None;
        }
        let mut statement = statement.clone();
        let mut literals = Vec::new();
        if let Statement::Query(query) = &mut statement {
            take_from_query(query, &mut literals);
        }
        if literals.is_empty() {
            return None;
        }
        let text = statement.to_string();
        Some(Shape {
            statement,
            text,
            literals,
        })
    }
}

fn has_placeholders(statement: &Statement) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<()> {
            match &value.value {
                Value::Placeholder(_) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    statement.visit(&mut Finder).is_break()
}

fn take_from_query(query: &mut Query, literals: &mut Vec<Literal>) {
    if let Some(with) = &mut query.with {
        for cte in &mut with.cte_tables {
            take_from_query(&mut cte.query, literals);
        }
    }
    take_from_set_expr(&mut query.body, literals);
}

fn take_from_set_expr(body: &mut SetExpr, literals: &mut Vec<Literal>) {
    match body {
        SetExpr::Select(select) => {
            for table in &mut select.from {
                take_from_factor(&mut table.relation, literals);
                for join in &mut table.joins {
                    take_from_factor(&mut join.relation, literals);
                }
            }
            if let Some(selection) = &mut select.selection {
                take_from_condition(selection, literals);
            }
        }
        SetExpr::Query(query) => take_from_query(query, literals),
        SetExpr::SetOperation { left, right, .. } => {
            take_from_set_expr(left, literals);
            take_from_set_expr(right, literals);
        }
        _ => {}
    }
}

fn take_from_factor(factor: &mut TableFactor, literals: &mut Vec<Literal>) {
    if let TableFactor::Derived { subquery, .. } = factor {
        take_from_query(subquery, literals);
    }
}

/// Takes the literals out of a `WHERE` condition's comparisons with columns.
fn take_from_condition(expr: &mut Expr, literals: &mut Vec<Literal>) {
    match expr {
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And | BinaryOperator::Or => {
                take_from_condition(left, literals);
                take_from_condition(right, literals);
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                if is_column(left) {
                    take(right, literals);
                } else if is_column(right) {
                    take(left, literals);
                }
            }
            _ => {}
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        }
        | Expr::Nested(expr) => take_from_condition(expr, literals),
        Expr::InList { expr, list, .. } if is_column(expr) => {
            for item in list {
                take(item, literals);
            }
        }
        Expr::Between {
            expr, low, high, ..
        } if is_column(expr) => {
            take(low, literals);
            take(high, literals);
        }
        _ => {}
    }
}

fn is_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// Replaces `expr` by the next placeholder when it is a literal of a kind taken out.
fn take(expr: &mut Expr, literals: &mut Vec<Literal>) {
    let literal = match &*expr {
        Expr::Value(ValueWithSpan {
            value: Value::Number(text, false),
            ..
        }) => Literal::Number(text.clone()),
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(text),
            ..
        }) if text.len() <= MAX_STRING_LITERAL => Literal::String(text.clone()),
        Expr::TypedString(TypedString {
            data_type: DataType::Timestamp(None, TimezoneInfo::None),
            value:
                ValueWithSpan {
                    value: Value::SingleQuotedString(text),
                    ..
                },
            ..
        }) if text.len() <= MAX_STRING_LITERAL => Literal::Timestamp(text.clone()),
        _ => return,
    };
    literals.push(literal);
    *expr = Expr::value(Value::Placeholder(format!("${}", literals.len())));
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn shape(sql: &str) -> Option<Shape> {
        let statement = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        Shape::of(&statement)
    }

    #[test]
    fn comparisons_with_columns_become_placeholders_in_order() {
        let s = shape(
            "SELECT date_bin(INTERVAL '1 minute', time) AS b, max(u) FROM cpu \
             WHERE hostname IN ('host_1', 'host_2') AND time >= TIMESTAMP '2016-01-01 00:00:00' \
             AND 90 < u GROUP BY 1 ORDER BY 1 LIMIT 5",
        )
        .unwrap();
        assert_eq!(
            s.literals,
            vec![
                Literal::String("host_1".into()),
                Literal::String("host_2".into()),
                Literal::Timestamp("2016-01-01 00:00:00".into()),
                Literal::Number("90".into()),
            ]
        );
        assert!(s.text.contains("hostname IN ($1, $2)"), "{}", s.text);
        assert!(s.text.contains("time >= $3"), "{}", s.text);
        assert!(s.text.contains("$4 < u"), "{}", s.text);
        // The interval, the select list and LIMIT stay.
        assert!(s.text.contains("INTERVAL '1 minute'"), "{}", s.text);
        assert!(s.text.ends_with("LIMIT 5"), "{}", s.text);
    }

    #[test]
    fn same_shape_for_other_literals_and_other_shape_for_other_structure() {
        let a = shape("SELECT x FROM t WHERE h = 'a' AND time BETWEEN 1 AND 2").unwrap();
        let b = shape("SELECT x FROM t WHERE h = 'b' AND time BETWEEN 5 AND 9").unwrap();
        let c = shape("SELECT x FROM t WHERE h = 'b' AND time BETWEEN 5 AND 9 LIMIT 1").unwrap();
        assert_eq!(a.text, b.text);
        assert_ne!(a.text, c.text);
    }

    #[test]
    fn literals_outside_comparisons_with_columns_stay() {
        // Select items, function arguments, negative numbers, expressions on both sides,
        // subqueries inside expressions and long strings are not taken out.
        assert!(shape("SELECT 1 = x FROM t").is_none());
        assert!(shape("SELECT x FROM t WHERE lower(h) = 'a'").is_none());
        assert!(shape("SELECT x FROM t WHERE x > -1").is_none());
        assert!(shape("SELECT x FROM t WHERE x IN (SELECT y FROM u WHERE y = 1)").is_none());
        let long = "a".repeat(MAX_STRING_LITERAL + 1);
        assert!(shape(&format!("SELECT x FROM t WHERE h = '{long}'")).is_none());
        assert!(shape("SELECT x FROM t WHERE t.h = DATE '2020-01-01'").is_none());
    }

    #[test]
    fn derived_tables_unions_and_ctes_are_shaped() {
        let s = shape(
            "WITH w AS (SELECT * FROM t WHERE h = 'a') \
             SELECT * FROM (SELECT * FROM w WHERE x > 1) d WHERE NOT (y < 2) \
             UNION ALL SELECT * FROM u WHERE z = 3",
        )
        .unwrap();
        assert_eq!(s.literals.len(), 4);
        assert_eq!(s.literals[0], Literal::String("a".into()));
    }

    #[test]
    fn statements_with_their_own_placeholders_or_not_queries_have_no_shape() {
        assert!(shape("SELECT x FROM t WHERE h = $1 AND y = 2").is_none());
        assert!(shape("EXPLAIN SELECT x FROM t WHERE h = 'a'").is_none());
        assert!(shape("SELECT x FROM t").is_none());
    }
}
