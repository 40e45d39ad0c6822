//! Errors that name their place in the query, as Trino and Timestream write them:
//! `line 1:15: Column 'x' does not exist`.
//!
//! Positions come from token spans: the tokenizer's and parser's own (their messages end in
//! `at Line: L, Column: C`), the spans the rewrites keep on the nodes they touch, and
//! DataFusion's diagnostics (collected because the Timestream session turns `collect_spans` on).

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Location, Span, TokenizerError};
use hourglass_core::{Error, ErrorKind};

use crate::error::from_datafusion;

/// An invalid-input error at `location` (unknown locations give the bare message).
pub fn at(location: Location, message: impl std::fmt::Display) -> Error {
    if location.line == 0 {
        return Error::invalid(message.to_string());
    }
    Error::invalid(format!(
        "line {}:{}: {message}",
        location.line, location.column
    ))
}

/// An invalid-input error at the start of `span`.
pub fn at_span(span: Span, message: impl std::fmt::Display) -> Error {
    at(span.start, message)
}

pub fn tokenizer(e: TokenizerError) -> Error {
    at(e.location, e.message)
}

/// sqlparser's errors carry their position in the message text (`... at Line: 1, Column: 8`);
/// move it to the front. Errors at the end of the input have no position; `end` is used.
pub fn parser(e: ParserError, end: Location) -> Error {
    let message = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => {
            return Error::invalid("the query is nested too deeply");
        }
    };
    if let Some((text, position)) = message.rsplit_once(" at Line: ") {
        if let Some((line, column)) = position.split_once(", Column: ") {
            if let (Ok(line), Ok(column)) = (line.trim().parse(), column.trim().parse()) {
                return at(Location::new(line, column), text);
            }
        }
    }
    at(end, message)
}

/// A planning error from DataFusion for a query whose function calls are `calls` (lower-case
/// name and span, in query order): as [`datafusion`], and a call DataFusion found no signature
/// for gets a short message at the position of the first call of that function.
pub fn planning(e: DataFusionError, calls: &[(String, Span)]) -> Error {
    if e.diagnostic().is_some() {
        return datafusion(e);
    }
    let base = from_datafusion(e);
    let Some((function, message)) = signature_mismatch(&base.message) else {
        return base;
    };
    match calls.iter().find(|(name, _)| *name == function) {
        Some((_, span)) => at_span(*span, message),
        None => Error::invalid(message),
    }
}

/// DataFusion's long "no function matches" errors, as (function, short message).
fn signature_mismatch(message: &str) -> Option<(String, String)> {
    const NO_MATCH: &str = "No function matches the given name and argument types '";
    let start = message.find(NO_MATCH)? + NO_MATCH.len();
    let call = &message[start..];
    let call = &call[..call.find("'.")?];
    let function = call[..call.find('(')?].to_ascii_lowercase();
    // A function of the dialect says what it expects itself.
    if let Some(own) = message.rsplit("coercion failed with: ").next() {
        if own.len() < message.len() {
            let own = own.trim_start_matches("Error during planning: ");
            if let Some(end) = own.find(". No function matches") {
                return Some((function, own[..end].to_string()));
            }
        }
    }
    let candidates: Vec<&str> = message
        .lines()
        .skip_while(|l| !l.contains("Candidate functions:"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut short = format!("Unexpected parameters for function {call}");
    if !candidates.is_empty() {
        short.push_str(&format!(". Expected: {}", candidates.join(", ")));
    }
    Some((function, short))
}

/// A planning or execution error from DataFusion; prefixed with the position of the offending
/// expression when DataFusion's diagnostic has one.
pub fn datafusion(e: DataFusionError) -> Error {
    let located = e.diagnostic().and_then(|d| {
        let span = d.span?;
        let mut message = trino_wording(&d.message);
        for note in &d.notes {
            message.push_str("; ");
            message.push_str(&note.message);
        }
        for help in &d.helps {
            message.push_str("; ");
            message.push_str(&help.message);
        }
        Some((span.start.line, span.start.column, message))
    });
    match located {
        Some((line, column, message)) if line > 0 => {
            let base = from_datafusion(e);
            let kind = if base.kind == ErrorKind::Internal {
                ErrorKind::InvalidInput
            } else {
                base.kind
            };
            Error::new(kind, format!("line {line}:{column}: {message}"))
        }
        _ => from_datafusion(e),
    }
}

/// DataFusion's wording of the commonest mistakes, as Trino and Timestream word them.
fn trino_wording(message: &str) -> String {
    let quoted = |prefix: &str, suffix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .map(str::to_string)
    };
    if let Some(name) = quoted("column '", "' not found") {
        format!("Column '{name}' does not exist")
    } else if let Some(name) = quoted("table '", "' not found") {
        format!("Table '{name}' does not exist")
    } else if let Some(name) = quoted("Invalid function '", "'") {
        format!("Function '{name}' not registered")
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_positions_move_to_the_front() {
        let e = parser(
            ParserError::ParserError(
                "Expected: an expression, found: FROM at Line: 1, Column: 8".into(),
            ),
            Location::new(1, 20),
        );
        assert_eq!(e.message, "line 1:8: Expected: an expression, found: FROM");
        let e = parser(
            ParserError::ParserError("Expected: an expression, found: EOF".into()),
            Location::new(1, 20),
        );
        assert_eq!(e.message, "line 1:20: Expected: an expression, found: EOF");
    }
}
