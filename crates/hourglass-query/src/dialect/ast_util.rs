//! Small helpers for reading and building sqlparser AST nodes (function calls, identifiers,
//! literals), shared by the rewrites.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Spanned, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Span;
use hourglass_core::{Error, Result};

use super::parser_dialect::TimestreamDialect;

/// Runs a rewriting visitor over `node`; its first error is the result.
pub fn visit_mut_with<V: VisitorMut<Break = Error>>(
    node: &mut impl VisitMut,
    visitor: &mut V,
) -> Result<()> {
    match node.visit(visitor) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The lower-cased name of a function called by an unqualified name.
pub fn simple_name(f: &Function) -> Option<String> {
    match f.name.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => Some(id.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// The positional argument expressions of a call (`None` if any argument is not a plain
/// expression, e.g. a named argument or `*`).
pub fn arg_exprs(f: &Function) -> Option<Vec<&Expr>> {
    match &f.args {
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect(),
        FunctionArguments::None => Some(Vec::new()),
        FunctionArguments::Subquery(_) => None,
    }
}

/// Mutable access to the positional argument expressions of a call.
pub fn arg_exprs_mut(f: &mut Function) -> Vec<&mut Expr> {
    match &mut f.args {
        FunctionArguments::List(list) => list
            .args
            .iter_mut()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Takes the positional argument expressions out of a call.
pub fn take_args(f: &mut Function) -> Vec<Expr> {
    match std::mem::replace(&mut f.args, FunctionArguments::None) {
        FunctionArguments::List(list) => list
            .args
            .into_iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `name(args...)`, with the span of the name set to `span`.
pub fn call(name: &str, args: Vec<Expr>, span: Span) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::with_span(
            span, name,
        ))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// Renames a call, keeping the span of its name.
pub fn rename(f: &mut Function, name: &str) {
    let span = f.name.span();
    f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_span(
        span, name,
    ))]);
}

/// A quoted identifier (names such as `measure_value::double` or `__hg_u0`).
pub fn quoted(name: &str, span: Span) -> Ident {
    let mut id = Ident::with_quote('"', name);
    id.span = span;
    id
}

/// A string literal.
pub fn string(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.to_string()))
}

/// An integer literal.
pub fn number(n: i64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// Parses an expression written by the rewrites themselves (never user text).
pub fn parse_expr(text: &str) -> Result<Expr> {
    Parser::new(&TimestreamDialect)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| Error::internal(format!("rewriting the query: {e}")))
}
