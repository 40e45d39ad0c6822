//! `COPY (query) TO STDOUT`, `COPY table [(columns)] TO STDOUT`: a query's result in COPY's
//! text, CSV or binary format, as psql's `\copy ... TO`, psycopg's `cursor.copy`, asyncpg's
//! `copy_from_query` and connectorx (Polars' `read_database_uri`: `COPY (query) TO STDOUT
//! WITH BINARY`) read it.
//!
//! Options, new syntax `(FORMAT text|csv|binary, HEADER [bool], DELIMITER 'c', NULL 's',
//! QUOTE 'c', ESCAPE 'c', FORCE_QUOTE (cols) | *)` and the old one (`[WITH] BINARY`,
//! `CSV HEADER QUOTE AS 'c' ESCAPE AS 'c' FORCE QUOTE cols | *`, `DELIMITER AS 'c'`,
//! `NULL AS 's'`). The query is planned and run as the statement's `SELECT` would be (the same
//! session, grants, time limit and cancellation); its values are encoded by the query path's
//! `arrow-pg` encoders, so COPY's types are the `RowDescription` types of the same query
//! ([`crate::copy_encode`]). It streams: CopyOutResponse, one CopyData per row (as PostgreSQL
//! sends them: psycopg's row readers expect it; in binary the header goes with the first row),
//! batch by batch, then CopyDone and `COPY n`. The endpoint is read-only: `COPY ... FROM`
//! is refused (`25006`), and so are files and programs (`0A000`).

use std::fmt::Debug;
use std::sync::Arc;

use bytes::BytesMut;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, Statement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::{Sink, SinkExt};
use pgwire::api::portal::Format;
use pgwire::api::results::Tag;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::PgWireBackendMessage;

use crate::copy_encode::{Encoding, BINARY_HEADER, BINARY_TRAILER};
use crate::errors::{self, pg_error};
use crate::running::RunningQuery;
use crate::{Connection, Prepared, Service};

/// The format of a COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
}

/// Which columns CSV always quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForceQuote {
    Columns(Vec<String>),
    All,
}

/// A `COPY ... TO STDOUT` statement: the query it runs and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStatement {
    /// The `SELECT` the COPY runs.
    pub query: String,
    pub format: CopyFormat,
    pub header: bool,
    pub delimiter: Option<char>,
    pub null: Option<String>,
    pub quote: Option<char>,
    pub escape: Option<char>,
    pub force_quote: ForceQuote,
}

/// Whether the first word of `sql` is `COPY`.
pub fn is_copy(sql: &str) -> bool {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return false;
    };
    tokens
        .iter()
        .find(|t| !matches!(t, Token::Whitespace(_)))
        .is_some_and(|t| matches!(t, Token::Word(w) if w.keyword == Keyword::COPY))
}

/// Whether `sql` holds more than one statement (a `;` followed by more than whitespace).
fn several_statements(sql: &str) -> bool {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return false;
    };
    let mut seen_semicolon = false;
    for t in &tokens {
        match t {
            Token::SemiColon => seen_semicolon = true,
            Token::Whitespace(_) => {}
            _ if seen_semicolon => return true,
            _ => {}
        }
    }
    false
}

/// A simple-protocol query string that is a COPY: the statement, or why it is refused.
pub fn parse_simple(query: &str) -> Option<PgWireResult<CopyStatement>> {
    if !is_copy(query) {
        return None;
    }
    if several_statements(query) {
        return Some(Err(pg_error(
            errors::FEATURE_NOT_SUPPORTED,
            "COPY must be the only statement of its query string",
        )));
    }
    parse(query)
}

/// `FORCE_QUOTE *` and `FORCE QUOTE *`, which the SQL parser does not take, as a column named
/// `*` (the `*` replaced in the text, which is otherwise kept as it is).
fn rewrite_force_quote_all(sql: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() else {
        return sql.to_string();
    };
    let significant: Vec<_> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let is_word = |n: usize, k: Keyword| matches!(significant.get(n).map(|t| &t.token), Some(Token::Word(w)) if w.keyword == k);
    // (line, column) of each star to replace, with its replacement.
    let mut stars = Vec::new();
    for (n, t) in significant.iter().enumerate() {
        if t.token != Token::Mul || n == 0 {
            continue;
        }
        if is_word(n - 1, Keyword::FORCE_QUOTE) {
            stars.push((t.span.start.line, t.span.start.column, "(\"*\")"));
        } else if n >= 2 && is_word(n - 1, Keyword::QUOTE) && is_word(n - 2, Keyword::FORCE) {
            stars.push((t.span.start.line, t.span.start.column, "\"*\""));
        }
    }
    if stars.is_empty() {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let (mut line, mut column) = (1u64, 1u64);
    for c in sql.chars() {
        match stars
            .iter()
            .find(|(l, col, _)| *l == line && *col == column)
        {
            Some((_, _, r)) if c == '*' => out.push_str(r),
            _ => out.push(c),
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    out
}

fn syntax(message: impl Into<String>) -> PgWireError {
    pg_error(errors::SYNTAX_ERROR, message)
}

fn names(columns: &[Ident]) -> ForceQuote {
    if columns
        .iter()
        .any(|c| c.value == "*" && c.quote_style.is_some())
    {
        ForceQuote::All
    } else {
        ForceQuote::Columns(columns.iter().map(ident_name).collect())
    }
}

fn ident_name(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

/// A statement beginning with `COPY`: the COPY to run, or why it is refused; `None` when `sql`
/// is not a COPY.
pub fn parse(sql: &str) -> Option<PgWireResult<CopyStatement>> {
    if !is_copy(sql) {
        return None;
    }
    Some(parse_copy(sql))
}

fn parse_copy(sql: &str) -> PgWireResult<CopyStatement> {
    let sql = sql.trim().trim_end_matches(';');
    let rewritten = rewrite_force_quote_all(sql);
    let mut statements = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&rewritten)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| syntax(e.to_string()))?;
    let statement = match (statements.pop(), statements.is_empty()) {
        (Some(s), true) => s,
        _ => return Err(syntax("expected one COPY statement")),
    };
    let Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        ..
    } = statement
    else {
        return Err(syntax("expected a COPY statement"));
    };
    if !to {
        return Err(pg_error(
            "25006",
            "COPY FROM is not supported: Hourglass's PostgreSQL endpoint is read-only; write \
             with line protocol over HTTP",
        ));
    }
    if target != CopyTarget::Stdout {
        return Err(pg_error(
            errors::FEATURE_NOT_SUPPORTED,
            "COPY to a file or program is not supported: use COPY ... TO STDOUT (psql's \\copy)",
        ));
    }
    let query = match source {
        CopySource::Query(q) => q.to_string(),
        CopySource::Table {
            table_name,
            columns,
        } => {
            let projection = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("SELECT {projection} FROM {table_name}")
        }
    };
    let mut copy = CopyStatement {
        query,
        format: CopyFormat::Text,
        header: false,
        delimiter: None,
        null: None,
        quote: None,
        escape: None,
        force_quote: ForceQuote::Columns(vec![]),
    };
    for option in options {
        match option {
            CopyOption::Format(f) => {
                copy.format = match f.value.to_ascii_lowercase().as_str() {
                    "text" => CopyFormat::Text,
                    "csv" => CopyFormat::Csv,
                    "binary" => CopyFormat::Binary,
                    other => {
                        return Err(pg_error(
                            errors::INVALID_PARAMETER_VALUE,
                            format!("COPY format \"{other}\" not recognized"),
                        ))
                    }
                }
            }
            CopyOption::Header(h) => copy.header = h,
            CopyOption::Delimiter(c) => copy.delimiter = Some(c),
            CopyOption::Null(s) => copy.null = Some(s),
            CopyOption::Quote(c) => copy.quote = Some(c),
            CopyOption::Escape(c) => copy.escape = Some(c),
            CopyOption::ForceQuote(cols) => copy.force_quote = names(&cols),
            CopyOption::Encoding(e) => {
                let e = e.to_ascii_uppercase().replace(['-', '_'], "");
                if e != "UTF8" && e != "UNICODE" {
                    return Err(pg_error(
                        errors::FEATURE_NOT_SUPPORTED,
                        "COPY output is encoded in UTF8 only",
                    ));
                }
            }
            CopyOption::Freeze(_) | CopyOption::ForceNotNull(_) | CopyOption::ForceNull(_) => {
                return Err(pg_error(
                    errors::FEATURE_NOT_SUPPORTED,
                    format!("COPY option {option} is only for COPY FROM"),
                ))
            }
        }
    }
    for option in legacy_options {
        match option {
            CopyLegacyOption::Binary => copy.format = CopyFormat::Binary,
            CopyLegacyOption::Delimiter(c) => copy.delimiter = Some(c),
            CopyLegacyOption::Null(s) => copy.null = Some(s),
            CopyLegacyOption::Header => copy.header = true,
            CopyLegacyOption::Csv(csv) => {
                copy.format = CopyFormat::Csv;
                for o in csv {
                    match o {
                        CopyLegacyCsvOption::Header => copy.header = true,
                        CopyLegacyCsvOption::Quote(c) => copy.quote = Some(c),
                        CopyLegacyCsvOption::Escape(c) => copy.escape = Some(c),
                        CopyLegacyCsvOption::ForceQuote(cols) => copy.force_quote = names(&cols),
                        CopyLegacyCsvOption::ForceNotNull(_) => {
                            return Err(pg_error(
                                errors::FEATURE_NOT_SUPPORTED,
                                "COPY option FORCE NOT NULL is only for COPY FROM",
                            ))
                        }
                    }
                }
            }
            other => {
                return Err(pg_error(
                    errors::FEATURE_NOT_SUPPORTED,
                    format!("COPY option {other} is not supported"),
                ))
            }
        }
    }
    validate(&copy)?;
    Ok(copy)
}

/// PostgreSQL's checks of the options (`ProcessCopyOptions`).
fn validate(copy: &CopyStatement) -> PgWireResult<()> {
    let binary = copy.format == CopyFormat::Binary;
    let csv = copy.format == CopyFormat::Csv;
    for (given, name) in [
        (copy.delimiter.is_some(), "DELIMITER"),
        (copy.null.is_some(), "NULL"),
        (copy.header, "HEADER"),
    ] {
        if binary && given {
            return Err(syntax(format!("cannot specify {name} in BINARY mode")));
        }
    }
    let forced = !matches!(&copy.force_quote, ForceQuote::Columns(c) if c.is_empty());
    for (given, name) in [
        (copy.quote.is_some(), "QUOTE"),
        (copy.escape.is_some(), "ESCAPE"),
        (forced, "FORCE_QUOTE"),
    ] {
        if !csv && given {
            return Err(pg_error(
                errors::FEATURE_NOT_SUPPORTED,
                format!("COPY {name} requires CSV mode"),
            ));
        }
    }
    for (c, name) in [
        (copy.delimiter, "delimiter"),
        (copy.quote, "quote"),
        (copy.escape, "escape"),
    ] {
        if c.is_some_and(|c| !c.is_ascii()) {
            return Err(pg_error(
                errors::FEATURE_NOT_SUPPORTED,
                format!("COPY {name} must be a single one-byte character"),
            ));
        }
    }
    if let Some(d) = copy.delimiter {
        if d == '\r' || d == '\n' {
            return Err(pg_error(
                errors::INVALID_PARAMETER_VALUE,
                "COPY delimiter cannot be newline or carriage return",
            ));
        }
        if copy.format == CopyFormat::Text
            && (d == '\\' || d.is_ascii_lowercase() || d.is_ascii_digit() || d == '.')
        {
            return Err(pg_error(
                errors::INVALID_PARAMETER_VALUE,
                format!("COPY delimiter cannot be \"{d}\""),
            ));
        }
    }
    if let Some(null) = &copy.null {
        if null.contains(['\r', '\n']) {
            return Err(pg_error(
                errors::INVALID_PARAMETER_VALUE,
                "COPY null representation cannot use newline or carriage return",
            ));
        }
    }
    if csv {
        let delimiter = copy.delimiter.unwrap_or(',');
        let quote = copy.quote.unwrap_or('"');
        if delimiter == quote {
            return Err(pg_error(
                errors::INVALID_PARAMETER_VALUE,
                "COPY delimiter and quote must be different",
            ));
        }
        if copy.null.as_deref().is_some_and(|n| n.contains(delimiter)) {
            return Err(pg_error(
                errors::INVALID_PARAMETER_VALUE,
                "COPY delimiter character must not appear in the NULL specification",
            ));
        }
    }
    Ok(())
}

fn byte(c: char) -> u8 {
    u8::try_from(u32::from(c)).unwrap_or(b'?')
}

impl CopyStatement {
    /// The encoding of its rows, given the result's column names.
    fn encoding(&self, columns: &[String]) -> PgWireResult<Encoding> {
        Ok(match self.format {
            CopyFormat::Binary => Encoding::Binary,
            CopyFormat::Text => Encoding::Text {
                delimiter: byte(self.delimiter.unwrap_or('\t')),
                null: self.null.as_deref().unwrap_or("\\N").as_bytes().to_vec(),
            },
            CopyFormat::Csv => {
                let quote = byte(self.quote.unwrap_or('"'));
                let force_quote = match &self.force_quote {
                    ForceQuote::All => vec![true; columns.len()],
                    ForceQuote::Columns(names) => {
                        for n in names {
                            if !columns.contains(n) {
                                return Err(pg_error(
                                    "42P10",
                                    format!("FORCE_QUOTE column \"{n}\" not referenced by COPY"),
                                ));
                            }
                        }
                        columns.iter().map(|c| names.contains(c)).collect()
                    }
                };
                Encoding::Csv {
                    delimiter: byte(self.delimiter.unwrap_or(',')),
                    null: self.null.as_deref().unwrap_or("").as_bytes().to_vec(),
                    quote,
                    escape: self.escape.map(byte).unwrap_or(quote),
                    force_quote,
                }
            }
        })
    }
}

fn copy_data(bytes: BytesMut) -> PgWireBackendMessage {
    PgWireBackendMessage::CopyData(CopyData::new(bytes.freeze()))
}

impl Service {
    /// Runs a COPY's query and streams its rows to the client, through to `COPY n`.
    pub(crate) async fn copy_out<C>(
        &self,
        client: &mut C,
        conn: &Connection,
        copy: &CopyStatement,
    ) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let plan = match self.prepare_with(conn, &copy.query, false).await? {
            Prepared::Plan(plan) => *plan,
            _ => {
                return Err(pg_error(
                    errors::FEATURE_NOT_SUPPORTED,
                    "COPY supports queries only",
                ))
            }
        };
        let mut query = RunningQuery::start(conn, plan, self.query.limits.timeout).await?;
        let binary = copy.format == CopyFormat::Binary;
        let format = if binary {
            Format::UnifiedBinary
        } else {
            Format::UnifiedText
        };
        let fields = Arc::new(query.fields(&format)?);
        let columns: Vec<String> = fields.iter().map(|f| f.name().to_string()).collect();
        let encoding = copy.encoding(&columns)?;
        let count = i16::try_from(columns.len())
            .map_err(|_| pg_error("54011", "too many columns for COPY"))?;
        let format_code = i8::from(binary);
        client
            .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
                format_code,
                count,
                vec![i16::from(format_code); columns.len()],
            )))
            .await?;
        let mut pending = BytesMut::new();
        if binary {
            pending.extend_from_slice(BINARY_HEADER);
        } else if copy.header {
            let mut line = BytesMut::new();
            encoding.header(columns.iter().map(String::as_str), &mut line);
            client.feed(copy_data(line)).await?;
        }
        let mut rows: usize = 0;
        let encoder = query.encoder();
        while let Some(batch) = query.next_batch().await? {
            for row in encoder.encode_rows(&fields, batch) {
                let row = row?;
                let mut out = std::mem::take(&mut pending);
                encoding
                    .row(&row.data, count, &mut out)
                    .map_err(|e| pg_error(errors::DATA_EXCEPTION, e))?;
                client.feed(copy_data(out)).await?;
                rows += 1;
            }
        }
        if binary {
            pending.extend_from_slice(BINARY_TRAILER);
            client.feed(copy_data(pending)).await?;
        }
        client
            .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
            .await?;
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows).into(),
            ))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: PgWireError) -> String {
        match e {
            PgWireError::UserError(info) => info.code,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn parses_new_and_old_option_syntax() {
        let c = parse("COPY (SELECT 1 AS a) TO STDOUT").unwrap().unwrap();
        assert_eq!(c.format, CopyFormat::Text);
        assert!(!c.header);
        let c = parse("copy ( SELECT a FROM t ) TO STDOUT CSV HEADER")
            .unwrap()
            .unwrap();
        assert_eq!(c.format, CopyFormat::Csv);
        assert!(c.header);
        let c = parse("COPY (SELECT 1) TO STDOUT WITH BINARY")
            .unwrap()
            .unwrap();
        assert_eq!(c.format, CopyFormat::Binary);
        let c = parse(
            "COPY t (a, \"B\") TO STDOUT (FORMAT csv, HEADER, DELIMITER ';', NULL 'x', \
             QUOTE '''', ESCAPE '\\', FORCE_QUOTE *)",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.query, "SELECT a, \"B\" FROM t");
        assert_eq!(c.delimiter, Some(';'));
        assert_eq!(c.null.as_deref(), Some("x"));
        assert_eq!(c.quote, Some('\''));
        assert_eq!(c.escape, Some('\\'));
        assert_eq!(c.force_quote, ForceQuote::All);
        let c = parse("COPY t TO STDOUT WITH CSV FORCE QUOTE a, b")
            .unwrap()
            .unwrap();
        assert_eq!(
            c.force_quote,
            ForceQuote::Columns(vec!["a".to_string(), "b".to_string()])
        );
        let c = parse("COPY t TO STDOUT WITH CSV FORCE QUOTE *")
            .unwrap()
            .unwrap();
        assert_eq!(c.force_quote, ForceQuote::All);
        assert!(parse("SELECT 1").is_none());
    }

    #[test]
    fn refuses_writes_files_and_bad_options() {
        assert_eq!(
            code(parse("COPY t FROM STDIN").unwrap().unwrap_err()),
            "25006"
        );
        assert_eq!(
            code(parse("COPY t TO '/tmp/x'").unwrap().unwrap_err()),
            "0A000"
        );
        assert_eq!(
            code(
                parse("COPY t TO STDOUT (FORMAT binary, HEADER)")
                    .unwrap()
                    .unwrap_err()
            ),
            "42601"
        );
        assert_eq!(
            code(parse("COPY t TO STDOUT (QUOTE '''')").unwrap().unwrap_err()),
            "0A000"
        );
        assert_eq!(
            code(parse("COPY t TO STDOUT (FORMAT xml)").unwrap().unwrap_err()),
            "22023"
        );
        assert!(parse_simple("COPY t TO STDOUT; SELECT 1").unwrap().is_err());
        assert!(parse_simple("COPY (SELECT 'a;b') TO STDOUT;")
            .unwrap()
            .is_ok());
    }
}
