//! SQL cursors: `DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH[OUT] HOLD] FOR query`,
//! `FETCH [FORWARD] [n | ALL | NEXT] [FROM | IN] name`, `MOVE ...`, `CLOSE name | ALL` —
//! psycopg's named cursors, SQLAlchemy's `stream_results`, pandas' `chunksize`, psql's
//! `FETCH_COUNT`.
//!
//! A cursor holds its query's record-batch stream (DataFusion `execute_stream`, under the
//! query time limit and the connection's cancel key) and the unread rest of the batch it is in:
//! `FETCH n` pulls only the batches it needs, so memory stays bounded whatever the result's size.
//! Cursors belong to the connection ([`Cursors`], at most [`MAX_CURSORS`]); without `WITH HOLD`
//! a cursor needs a transaction block (`25P01`, as PostgreSQL) and is closed when the block
//! ends. Cursors scan forward only (`55000` otherwise).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::logical_expr::LogicalPlan;
use futures::stream;
use parking_lot::Mutex;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use crate::errors::{self, pg_error};
use crate::running::RunningQuery;
use crate::Connection;

/// How many cursors a connection may hold open.
pub const MAX_CURSORS: usize = 64;

/// `34000`: no such cursor.
pub const INVALID_CURSOR_NAME: &str = "34000";
/// `42P03`: a cursor of that name is open.
pub const DUPLICATE_CURSOR: &str = "42P03";
/// `55000`: fetching backward.
pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
/// `54000`: too many cursors.
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";

/// How many rows a `FETCH` / `MOVE` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Rows(usize),
    All,
}

/// A cursor statement; `Q` is the declared query (its SQL, then its plan).
#[derive(Debug, Clone)]
pub enum Statement<Q> {
    Declare {
        name: String,
        hold: bool,
        binary: bool,
        query: Q,
        /// The whole statement, as `pg_cursors.statement` shows it.
        text: String,
    },
    /// `FETCH` (`move_only: false`) or `MOVE`.
    Fetch {
        name: String,
        count: Count,
        move_only: bool,
    },
    /// `CLOSE name`, `CLOSE ALL` (`None`).
    Close(Option<String>),
}

impl<Q> Statement<Q> {
    /// The same statement with its query mapped.
    pub fn try_map<R, E>(self, f: impl FnOnce(Q) -> Result<R, E>) -> Result<Statement<R>, E> {
        Ok(match self {
            Statement::Declare {
                name,
                hold,
                binary,
                query,
                text,
            } => Statement::Declare {
                name,
                hold,
                binary,
                query: f(query)?,
                text,
            },
            Statement::Fetch {
                name,
                count,
                move_only,
            } => Statement::Fetch {
                name,
                count,
                move_only,
            },
            Statement::Close(n) => Statement::Close(n),
        })
    }
}

/// A name: a quoted identifier as it is, else lower-cased; and the text after it.
fn take_name(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    if let Some(rest) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if rest[i + 1..].starts_with('"') {
                    name.push('"');
                    chars.next();
                } else {
                    return Some((name, &rest[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        return None;
    }
    let end = text
        .find(|c: char| c.is_whitespace() || c == ';')
        .unwrap_or(text.len());
    (end > 0).then(|| (text[..end].to_ascii_lowercase(), &text[end..]))
}

/// The next whitespace-separated word, upper-cased, and the text after it.
fn take_word(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (end > 0).then(|| (text[..end].to_ascii_uppercase(), &text[end..]))
}

/// A cursor statement, if `sql` is one (`Err`: one this endpoint refuses, with its SQLSTATE).
pub fn parse(sql: &str) -> Option<Result<Statement<String>, (&'static str, String)>> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let (first, rest) = take_word(sql)?;
    match first.as_str() {
        "DECLARE" => parse_declare(rest, sql),
        "FETCH" | "MOVE" => Some(parse_fetch(rest, first == "MOVE")),
        "CLOSE" => {
            let (name, after) = take_name(rest)?;
            if !after.trim().is_empty() {
                return None;
            }
            let all = name == "all" && !rest.trim_start().starts_with('"');
            Some(Ok(Statement::Close((!all).then_some(name))))
        }
        _ => None,
    }
}

fn parse_declare(
    rest: &str,
    sql: &str,
) -> Option<Result<Statement<String>, (&'static str, String)>> {
    let (name, mut rest) = take_name(rest)?;
    let (mut hold, mut binary, mut saw_cursor) = (false, false, false);
    loop {
        let (word, after) = take_word(rest)?;
        match word.as_str() {
            "FOR" if saw_cursor => break,
            "CURSOR" => saw_cursor = true,
            "BINARY" => binary = true,
            "WITH" | "WITHOUT" => {
                let (next, after_hold) = take_word(after)?;
                if next != "HOLD" {
                    return None;
                }
                hold = word == "WITH";
                rest = after_hold;
                continue;
            }
            "NO" | "SCROLL" | "ASENSITIVE" | "INSENSITIVE" => {}
            _ => return None,
        }
        rest = after;
    }
    let (_, query) = take_word(rest)?;
    Some(Ok(Statement::Declare {
        name,
        hold,
        binary,
        query: query.trim().to_string(),
        text: sql.to_string(),
    }))
}

fn parse_fetch(rest: &str, move_only: bool) -> Result<Statement<String>, (&'static str, String)> {
    let syntax = || {
        (
            errors::SYNTAX_ERROR,
            "syntax error in FETCH / MOVE".to_string(),
        )
    };
    let mut words = Vec::new();
    let mut rest = rest.trim_start();
    // The direction words, up to the cursor's name (the last item).
    loop {
        if rest.starts_with('"') {
            break;
        }
        let Some((word, after)) = take_word(rest) else {
            return Err(syntax());
        };
        if after.trim().is_empty() {
            break;
        }
        words.push(word);
        rest = after.trim_start();
    }
    let (name, after) = take_name(rest).ok_or_else(syntax)?;
    if !after.trim().is_empty() {
        return Err(syntax());
    }
    if matches!(words.last().map(String::as_str), Some("FROM" | "IN")) {
        words.pop();
    }
    let backward = || {
        (
            OBJECT_NOT_IN_PREREQUISITE_STATE,
            "cursor can only scan forward".to_string(),
        )
    };
    let number = |w: &str| -> Result<Count, (&'static str, String)> {
        match w.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Count::Rows(usize::try_from(n).unwrap_or(usize::MAX))),
            Ok(_) => Err(backward()),
            Err(_) => Err(syntax()),
        }
    };
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let count = match words.as_slice() {
        [] | ["NEXT"] | ["FORWARD"] => Count::Rows(1),
        ["ALL"] | ["FORWARD", "ALL"] => Count::All,
        ["FORWARD", n] | [n] if n.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
            number(n)?
        }
        ["PRIOR" | "FIRST" | "LAST" | "BACKWARD", ..] | ["ABSOLUTE" | "RELATIVE", ..] => {
            return Err(backward())
        }
        _ => return Err(syntax()),
    };
    Ok(Statement::Fetch {
        name,
        count,
        move_only,
    })
}

/// An open cursor.
pub struct Cursor {
    query: RunningQuery,
    /// The unread rows of the batch the cursor is in.
    leftover: Option<RecordBatch>,
    /// Its `DECLARE`, as `pg_cursors` shows it.
    info: CursorInfo,
}

/// What `pg_cursors` shows of an open cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct CursorInfo {
    pub name: String,
    pub statement: String,
    pub hold: bool,
    pub binary: bool,
    /// Nanoseconds since the epoch.
    pub created: i64,
}

impl Cursor {
    /// The cursor's columns, as described to the client.
    pub fn fields(&self, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
        let format = match format {
            Format::UnifiedText if self.info.binary => &Format::UnifiedBinary,
            other => other,
        };
        self.query.fields(format)
    }

    async fn next_batch(&mut self) -> PgWireResult<Option<RecordBatch>> {
        match self.leftover.take() {
            Some(batch) => Ok(Some(batch)),
            None => self.query.next_batch().await,
        }
    }

    /// Up to `count` rows, encoded for `fields` (`None`: skipped, as `MOVE` does), and how many.
    async fn advance(
        &mut self,
        count: Count,
        fields: Option<&Arc<Vec<FieldInfo>>>,
    ) -> PgWireResult<(Vec<DataRow>, usize)> {
        // Past the time limit even when the rows wanted are already read.
        if let Err(e) = self.query.check_deadline() {
            self.leftover = None;
            return Err(e);
        }
        // Cancel requests sent before this statement were for others.
        self.query.forget_earlier_cancels();
        let mut rows = Vec::new();
        let mut moved = 0usize;
        let mut wanted = match count {
            Count::Rows(n) => n,
            Count::All => usize::MAX,
        };
        while wanted > 0 {
            let Some(batch) = self.next_batch().await? else {
                break;
            };
            let n = batch.num_rows();
            let take = n.min(wanted);
            if take < n {
                self.leftover = Some(batch.slice(take, n - take));
            }
            if let Some(fields) = fields {
                let head = batch.slice(0, take);
                for row in self.query.encoder().encode_rows(fields, head) {
                    rows.push(row?);
                }
            }
            moved += take;
            wanted -= take;
        }
        Ok((rows, moved))
    }
}

/// A connection's open cursors.
#[derive(Default)]
pub struct Cursors {
    open: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Cursor>>>>,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursors")
            .field("open", &self.open.lock().len())
            .finish()
    }
}

impl Cursors {
    fn insert(&self, name: String, cursor: Cursor) -> PgWireResult<()> {
        let mut open = self.open.lock();
        if open.contains_key(&name) {
            return Err(pg_error(
                DUPLICATE_CURSOR,
                format!("cursor \"{name}\" already exists"),
            ));
        }
        if open.len() >= MAX_CURSORS {
            return Err(pg_error(
                PROGRAM_LIMIT_EXCEEDED,
                format!("too many open cursors (at most {MAX_CURSORS} per connection)"),
            ));
        }
        open.insert(name, Arc::new(tokio::sync::Mutex::new(cursor)));
        Ok(())
    }

    /// The open cursors, for `pg_cursors` (a cursor is locked only by its own FETCH, and a
    /// connection runs one statement at a time, so none is skipped).
    pub fn list(&self) -> Vec<CursorInfo> {
        let open = self.open.lock();
        let mut out: Vec<CursorInfo> = open
            .values()
            .filter_map(|c| Some(c.try_lock().ok()?.info.clone()))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The cursor called `name`, if open.
    pub fn get(&self, name: &str) -> Option<Arc<tokio::sync::Mutex<Cursor>>> {
        self.open.lock().get(name).cloned()
    }

    fn require(&self, name: &str) -> PgWireResult<Arc<tokio::sync::Mutex<Cursor>>> {
        self.get(name).ok_or_else(|| {
            pg_error(
                INVALID_CURSOR_NAME,
                format!("cursor \"{name}\" does not exist"),
            )
        })
    }

    /// `CLOSE name`, or every cursor (`CLOSE ALL`, `DISCARD ALL`).
    pub fn close(&self, name: Option<&str>) -> PgWireResult<()> {
        let mut open = self.open.lock();
        match name {
            None => open.clear(),
            Some(name) => {
                if open.remove(name).is_none() {
                    return Err(pg_error(
                        INVALID_CURSOR_NAME,
                        format!("cursor \"{name}\" does not exist"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The transaction block ended: cursors without `WITH HOLD` close.
    pub fn end_transaction(&self) {
        self.open
            .lock()
            .retain(|_, c| c.try_lock().map_or(true, |c| c.info.hold));
    }
}

/// Runs a cursor statement on the connection (`format`: the result format asked for).
pub async fn execute(
    conn: &Connection,
    statement: Statement<LogicalPlan>,
    format: &Format,
    timeout: Duration,
) -> PgWireResult<Response> {
    match statement {
        Statement::Declare {
            name,
            hold,
            binary,
            query,
            text,
        } => {
            if !hold && !conn.state.in_block() {
                return Err(pg_error(
                    crate::transaction::NO_ACTIVE_SQL_TRANSACTION,
                    "DECLARE CURSOR can only be used in transaction blocks",
                ));
            }
            if conn.cursors.get(&name).is_some() {
                return Err(pg_error(
                    DUPLICATE_CURSOR,
                    format!("cursor \"{name}\" already exists"),
                ));
            }
            // Started as [`crate::Service`] starts any query ([`RunningQuery`]).
            let cursor = Cursor {
                query: RunningQuery::start(conn, query, timeout).await?,
                leftover: None,
                info: CursorInfo {
                    name: name.clone(),
                    statement: text,
                    hold,
                    binary,
                    created: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as i64)
                        .unwrap_or(0),
                },
            };
            conn.cursors.insert(name, cursor)?;
            Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
        }
        Statement::Fetch {
            name,
            count,
            move_only,
        } => {
            let cursor = conn.cursors.require(&name)?;
            let mut cursor = cursor.lock().await;
            if move_only {
                let (_, moved) = cursor.advance(count, None).await?;
                return Ok(Response::Execution(Tag::new("MOVE").with_rows(moved)));
            }
            let fields = Arc::new(cursor.fields(format)?);
            let (rows, _) = cursor.advance(count, Some(&fields)).await?;
            let mut response = QueryResponse::new(fields, stream::iter(rows.into_iter().map(Ok)));
            response.set_command_tag("FETCH");
            Ok(Response::Query(response))
        }
        Statement::Close(name) => {
            conn.cursors.close(name.as_deref())?;
            Ok(Response::Execution(Tag::new(if name.is_some() {
                "CLOSE CURSOR"
            } else {
                "CLOSE CURSOR ALL"
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(sql: &str) -> (String, Count, bool) {
        match parse(sql) {
            Some(Ok(Statement::Fetch {
                name,
                count,
                move_only,
            })) => (name, count, move_only),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn parses_cursor_statements() {
        match parse("DECLARE \"x\" CURSOR WITHOUT HOLD FOR SELECT 1") {
            Some(Ok(Statement::Declare {
                name, hold, query, ..
            })) => {
                assert_eq!(
                    (name.as_str(), hold, query.as_str()),
                    ("x", false, "SELECT 1")
                );
            }
            other => panic!("{other:?}"),
        }
        match parse("declare _psql_cursor NO SCROLL CURSOR WITH HOLD FOR\nselect * from cpu;") {
            Some(Ok(Statement::Declare {
                name, hold, query, ..
            })) => {
                assert_eq!(
                    (name.as_str(), hold, query.as_str()),
                    ("_psql_cursor", true, "select * from cpu")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            fetch("FETCH FORWARD 10000 FROM \"x\""),
            ("x".into(), Count::Rows(10000), false)
        );
        assert_eq!(
            fetch("fetch next in C"),
            ("c".into(), Count::Rows(1), false)
        );
        assert_eq!(fetch("FETCH ALL c"), ("c".into(), Count::All, false));
        assert_eq!(fetch("FETCH c"), ("c".into(), Count::Rows(1), false));
        assert_eq!(
            fetch("MOVE FORWARD 5 IN c"),
            ("c".into(), Count::Rows(5), true)
        );
        assert!(matches!(
            parse("FETCH PRIOR FROM c"),
            Some(Err((OBJECT_NOT_IN_PREREQUISITE_STATE, _)))
        ));
        assert!(matches!(
            parse("CLOSE ALL"),
            Some(Ok(Statement::Close(None)))
        ));
        assert!(matches!(parse("CLOSE \"x\""), Some(Ok(Statement::Close(Some(n)))) if n == "x"));
        assert!(parse("SELECT 1").is_none());
    }
}
