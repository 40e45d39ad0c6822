//! Mapping errors to PostgreSQL SQLSTATE codes, once: the project's [`ErrorKind`]s give the class,
//! DataFusion's own error variants refine it where they tell more (syntax, undefined table or
//! column, unsupported feature).

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use hourglass_core::{Error, ErrorKind};
use pgwire::error::{ErrorInfo, PgWireError};

pub const SYNTAX_ERROR: &str = "42601";
pub const UNDEFINED_TABLE: &str = "42P01";
pub const UNDEFINED_COLUMN: &str = "42703";
pub const UNDEFINED_FUNCTION: &str = "42883";
pub const UNDEFINED_OBJECT: &str = "42704";
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
pub const DATA_EXCEPTION: &str = "22000";
pub const INVALID_PARAMETER_VALUE: &str = "22023";
pub const QUERY_CANCELED: &str = "57014";
pub const PROTOCOL_VIOLATION: &str = "08P01";
pub const INVALID_PASSWORD: &str = "28P01";
pub const INVALID_AUTHORIZATION: &str = "28000";
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// The SQLSTATE of an error kind.
pub fn sqlstate_for(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => DATA_EXCEPTION,
        ErrorKind::NotFound => UNDEFINED_TABLE,
        ErrorKind::Conflict => "55000",
        ErrorKind::ResourceExhausted => "53000",
        ErrorKind::Unavailable => "57P03",
        ErrorKind::Corruption => "XX001",
        ErrorKind::Internal => "XX000",
        ErrorKind::Unauthenticated => INVALID_PASSWORD,
        ErrorKind::PermissionDenied => INSUFFICIENT_PRIVILEGE,
    }
}

/// A `FATAL` response with `code`: the connection ends after it (authentication failures,
/// protocol violations, a session whose user was removed or rotated).
pub fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// An `ERROR` response with `code`.
pub fn pg_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// A project error on its way to a PostgreSQL client.
pub fn from_error(e: Error) -> PgWireError {
    let code = refine_by_message(&e.message).unwrap_or_else(|| sqlstate_for(e.kind));
    pg_error(code, e.message)
}

/// A DataFusion error (planning or execution) on its way to a PostgreSQL client.
pub fn from_datafusion(e: DataFusionError) -> PgWireError {
    let code = datafusion_code(&e);
    let ours = hourglass_query::from_datafusion(e);
    let code = code
        .or_else(|| refine_by_message(&ours.message))
        .unwrap_or_else(|| sqlstate_for(ours.kind));
    pg_error(code, ours.message)
}

fn datafusion_code(e: &DataFusionError) -> Option<&'static str> {
    match e.find_root() {
        DataFusionError::SQL(inner, _) => match inner.as_ref() {
            ParserError::RecursionLimitExceeded => Some("54001"),
            _ => Some(SYNTAX_ERROR),
        },
        DataFusionError::SchemaError(inner, _) => {
            use datafusion::common::SchemaError;
            match inner.as_ref() {
                SchemaError::FieldNotFound { .. } => Some(UNDEFINED_COLUMN),
                SchemaError::AmbiguousReference { .. } => Some("42702"),
                SchemaError::DuplicateQualifiedField { .. }
                | SchemaError::DuplicateUnqualifiedField { .. } => Some("42701"),
            }
        }
        DataFusionError::NotImplemented(_) => Some(FEATURE_NOT_SUPPORTED),
        _ => None,
    }
}

/// DataFusion reports several kinds as plain planning errors; their messages tell them apart.
fn refine_by_message(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    if m.contains("sql parser error") || m.contains("syntax error") {
        Some(SYNTAX_ERROR)
    } else if (m.contains("table '") && m.contains("' not found"))
        || m.contains("no table named")
        || m.contains("table not found")
    {
        Some(UNDEFINED_TABLE)
    } else if m.contains("no field named") || m.contains("column not found") {
        Some(UNDEFINED_COLUMN)
    } else if m.contains("invalid function") || m.contains("function not found") {
        Some(UNDEFINED_FUNCTION)
    } else if m.contains("not implemented") || m.contains("unsupported") {
        Some(FEATURE_NOT_SUPPORTED)
    } else if m.contains("division by zero") || m.contains("divide by zero") {
        Some("22012")
    } else if m.contains("more than one row returned by a subquery") {
        Some("21000")
    } else if m.contains("like pattern must not end with escape character")
        || m.contains("invalid escape string")
    {
        Some("22025")
    } else if m.contains("time limit") {
        Some(QUERY_CANCELED)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: PgWireError) -> String {
        match e {
            PgWireError::UserError(info) => info.code,
            other => panic!("not a user error: {other}"),
        }
    }

    #[test]
    fn kinds_map_to_classes() {
        assert_eq!(code(from_error(Error::invalid("bad value"))), "22000");
        assert_eq!(code(from_error(Error::exhausted("memory"))), "53000");
        assert_eq!(code(from_error(Error::internal("bug"))), "XX000");
    }

    #[test]
    fn datafusion_variants_refine() {
        let e = DataFusionError::SQL(
            Box::new(ParserError::ParserError("Expected: an expression".into())),
            None,
        );
        assert_eq!(code(from_datafusion(e)), SYNTAX_ERROR);
        let e = DataFusionError::Plan("table 'hourglass.db.nope' not found".into());
        assert_eq!(code(from_datafusion(e)), UNDEFINED_TABLE);
        let e = DataFusionError::NotImplemented("x".into());
        assert_eq!(code(from_datafusion(e)), FEATURE_NOT_SUPPORTED);
        // PostgreSQL's codes for the errors of the scalar_subquery and like_escape rewrites.
        let e = hourglass_query::error::to_datafusion(hourglass_core::Error::invalid(
            hourglass_query::rules::scalar_subquery::MORE_THAN_ONE_ROW,
        ));
        assert_eq!(code(from_datafusion(e)), "21000");
        let e = hourglass_query::error::to_datafusion(hourglass_core::Error::invalid(
            hourglass_query::rules::like_escape::ENDS_WITH_ESCAPE,
        ));
        assert_eq!(code(from_datafusion(e)), "22025");
    }
}
