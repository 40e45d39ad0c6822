//! What is answered without DataFusion: `SET` (remembered for `SHOW`, else no effect), `SHOW`,
//! `RESET`, `DISCARD`, transaction control and savepoints (accepted: queries are read-only; see
//! [`crate::transaction`]), advisory locks (always granted), and the few psql describe queries DataFusion cannot plan;
//! plus the textual rewrites that make PostgreSQL catalog SQL plannable ([`rewrite`]): casts to
//! schema-qualified types (`$1::"pg_catalog"."timestamp"`), `= ANY('{a,b}')` array literals,
//! pgspecial's `\d` column query and asyncpg's type introspection among them.

use std::collections::HashMap;

use datafusion::catalog::CatalogProvider;

use crate::catalog::{format_type_name, pg_type, table_by_oid};
use crate::functions::SERVER_VERSION;

/// A result whose columns are all text.
#[derive(Debug, Clone)]
pub struct Canned {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// A statement answered here.
#[derive(Debug, Clone)]
pub enum Special {
    /// A command tag only (`SET`, `DEALLOCATE ALL`, `UNLISTEN`, ...).
    Tag(String),
    /// `BEGIN` / `START TRANSACTION` (with that command tag).
    TransactionStart(String),
    /// `COMMIT` / `ROLLBACK` (with that command tag).
    TransactionEnd(String),
    Rows(Canned),
    /// `SAVEPOINT name`.
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    Release(String),
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo(String),
    /// `SET [SESSION] name = value`: remembered for `SHOW`.
    Set(String, String),
    /// `RESET name`, `RESET ALL` (`None`).
    Reset(Option<String>),
    /// `DISCARD ALL`: parameters reset, cursors closed.
    DiscardAll,
}

/// The settings `SHOW` answers, keyed by lower-case name.
pub fn settings(db: &str, metadata: &HashMap<String, String>) -> Vec<(String, String)> {
    let app = metadata
        .get("application_name")
        .cloned()
        .unwrap_or_default();
    [
        ("server_version", SERVER_VERSION.to_string()),
        ("server_version_num", "160006".to_string()),
        ("server_encoding", "UTF8".to_string()),
        ("client_encoding", "UTF8".to_string()),
        ("datestyle", "ISO, MDY".to_string()),
        ("intervalstyle", "postgres".to_string()),
        ("timezone", "UTC".to_string()),
        ("search_path", db.to_string()),
        ("standard_conforming_strings", "on".to_string()),
        ("integer_datetimes", "on".to_string()),
        ("transaction_isolation", "read committed".to_string()),
        (
            "default_transaction_isolation",
            "read committed".to_string(),
        ),
        ("transaction_read_only", "off".to_string()),
        ("default_transaction_read_only", "off".to_string()),
        ("max_identifier_length", "63".to_string()),
        ("application_name", app),
        (
            crate::functions::SESSION_AUTHORIZATION,
            metadata.get("user").cloned().unwrap_or_default(),
        ),
        ("lc_collate", "C".to_string()),
        ("lc_ctype", "C".to_string()),
        ("is_superuser", "on".to_string()),
        ("statement_timeout", "0".to_string()),
        ("extra_float_digits", "3".to_string()),
        ("bytea_output", "hex".to_string()),
        ("max_connections", "100".to_string()),
        ("jit", "off".to_string()),
        // Read by the JDBC driver's getImportedKeys/getExportedKeys.
        ("max_index_keys", "32".to_string()),
        // Read by SQLAlchemy's get_table_options.
        ("default_table_access_method", "heap".to_string()),
        (crate::timestamp_text::SETTING, "microsecond".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Splits off the leading keyword(s), upper-cased.
fn words(sql: &str) -> Vec<String> {
    sql.split_whitespace()
        .take(3)
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect()
}

/// `SET hourglass.NAME = 'value'` (or `TO`), as `(NAME, value)`: Hourglass's own session settings
/// (`hourglass_query::rules`), applied to the connection's session.
pub fn hourglass_setting(sql: &str) -> Option<(String, String)> {
    fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
        let head = text.get(..word.len())?;
        head.eq_ignore_ascii_case(word).then(|| &text[word.len()..])
    }
    let sql = sql.trim().trim_end_matches(';').trim();
    let rest = strip_word(sql, "SET ")?.trim_start();
    let rest = strip_word(rest, "hourglass.")?;
    let split = rest.find(|c: char| c == '=' || c.is_whitespace())?;
    let name = rest[..split].to_ascii_lowercase();
    let value = rest[split..].trim_start();
    let value = value
        .strip_prefix('=')
        .or_else(|| strip_word(value, "TO"))?;
    Some((name, value.trim().trim_matches('\'').to_string()))
}

/// A statement answered without planning, if `sql` (one statement) is one.
pub fn special(sql: &str, settings: &[(String, String)]) -> Option<Result<Special, String>> {
    let w = words(sql);
    let first = w.first().map(String::as_str).unwrap_or("");
    let second = w.get(1).map(String::as_str).unwrap_or("");
    if let Some(advisory) = advisory_lock(sql) {
        return Some(Ok(Special::Rows(advisory)));
    }
    Some(Ok(match first {
        "SET" => match set_parameter(sql) {
            Some((name, None)) => Special::Reset(Some(name)),
            Some((name, Some(value))) => Special::Set(name, value),
            None => Special::Tag("SET".to_string()),
        },
        "RESET" => match second {
            "ALL" | "" => Special::Reset(None),
            _ => Special::Reset(Some(name_word(sql, 1)?)),
        },
        "BEGIN" => Special::TransactionStart("BEGIN".to_string()),
        "START" => Special::TransactionStart("START TRANSACTION".to_string()),
        "COMMIT" | "END" => Special::TransactionEnd("COMMIT".to_string()),
        "SAVEPOINT" => Special::Savepoint(name_word(sql, 1)?),
        "RELEASE" => Special::Release(name_word(sql, savepoint_name_at(second))?),
        "ROLLBACK" | "ABORT" if second == "TO" => {
            let third = w.get(2).map(String::as_str).unwrap_or("");
            Special::RollbackTo(name_word(sql, 1 + savepoint_name_at(third))?)
        }
        "ROLLBACK" | "ABORT" => Special::TransactionEnd("ROLLBACK".to_string()),
        "DISCARD" if second == "ALL" => Special::DiscardAll,
        "DISCARD" => Special::Tag(format!("DISCARD {second}")),
        "DEALLOCATE" if second == "ALL" || w.get(2).is_some_and(|t| t == "ALL") => {
            Special::Tag("DEALLOCATE ALL".to_string())
        }
        "DEALLOCATE" | "LISTEN" | "UNLISTEN" => Special::Tag(first.to_string()),
        "SHOW" => {
            let rest = sql.trim().trim_end_matches(';').trim()[4..].trim();
            let name = rest.trim_matches('"').to_ascii_lowercase();
            if name.starts_with("datafusion.") || name == "all" {
                return None;
            }
            let name = match name.as_str() {
                "time zone" => "timezone".to_string(),
                "transaction isolation level" => "transaction_isolation".to_string(),
                _ => name,
            };
            match settings.iter().find(|(k, _)| *k == name) {
                Some((k, v)) => Special::Rows(Canned {
                    columns: vec![k.clone()],
                    rows: vec![vec![Some(v.clone())]],
                }),
                None => {
                    return Some(Err(format!(
                        "unrecognized configuration parameter \"{name}\""
                    )))
                }
            }
        }
        _ => return None,
    }))
}

/// Whether a query string starts with `ROLLBACK TO` (or `ABORT TO`).
pub fn is_rollback_to(sql: &str) -> bool {
    let w = words(sql);
    matches!(w.first().map(String::as_str), Some("ROLLBACK" | "ABORT"))
        && w.get(1).is_some_and(|t| t == "TO")
}

/// Where the savepoint name is after `RELEASE` / `ROLLBACK TO`: past an optional `SAVEPOINT`.
fn savepoint_name_at(next: &str) -> usize {
    if next == "SAVEPOINT" {
        2
    } else {
        1
    }
}

/// The `i`th word of `sql` as a name: a quoted identifier as it is, else lower-cased.
fn name_word(sql: &str, i: usize) -> Option<String> {
    let word = sql.split_whitespace().nth(i)?.trim_end_matches(';');
    Some(
        match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => word.to_ascii_lowercase(),
        },
    )
}

/// `SET [SESSION] name {TO | =} value` as `(name, value)` (`None` for `DEFAULT`); `None` for
/// the forms that are only accepted: `SET LOCAL`, `SET TRANSACTION`, `SET SESSION
/// CHARACTERISTICS`, `SET TIME ZONE`, ...
fn set_parameter(sql: &str) -> Option<(String, Option<String>)> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let rest = sql.get(3..)?.trim_start();
    let rest = match rest.get(..8) {
        Some(w) if w.eq_ignore_ascii_case("SESSION ") => rest[8..].trim_start(),
        _ => rest,
    };
    let end = rest.find(|c: char| c == '=' || c.is_whitespace())?;
    let name = rest[..end].to_ascii_lowercase();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        || [
            "local",
            "transaction",
            "characteristics",
            "time",
            "role",
            "session",
        ]
        .contains(&name.as_str())
    {
        return None;
    }
    let value = rest[end..].trim_start();
    let value = match value.strip_prefix('=') {
        Some(v) => v,
        None => {
            let head = value.get(..3)?;
            if !head.eq_ignore_ascii_case("TO ") {
                return None;
            }
            &value[3..]
        }
    }
    .trim();
    if value.eq_ignore_ascii_case("DEFAULT") {
        return Some((name, None));
    }
    let value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(quoted) => quoted.replace("''", "'"),
        None => value.to_string(),
    };
    Some((name, Some(value)))
}

/// `SELECT pg_advisory_lock(...)`, `pg_advisory_unlock_all()`, ... (pools and migration tools
/// send them): there is nothing to lock, so the locks are always granted and released.
fn advisory_lock(sql: &str) -> Option<Canned> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let head = sql.get(..7)?;
    if !head.eq_ignore_ascii_case("SELECT ") {
        return None;
    }
    let call = sql[7..].trim_start();
    let open = call.find('(')?;
    let name = call[..open].trim().to_ascii_lowercase();
    let name = name
        .strip_prefix("pg_catalog.")
        .unwrap_or(&name)
        .to_string();
    let args = &call[open..];
    if !args.ends_with(')') || args[1..args.len() - 1].contains(['(', ')', ';']) {
        return None;
    }
    let value = match name.as_str() {
        "pg_advisory_lock"
        | "pg_advisory_lock_shared"
        | "pg_advisory_xact_lock"
        | "pg_advisory_xact_lock_shared"
        | "pg_advisory_unlock_all" => "",
        "pg_try_advisory_lock"
        | "pg_try_advisory_lock_shared"
        | "pg_try_advisory_xact_lock"
        | "pg_try_advisory_xact_lock_shared"
        | "pg_advisory_unlock"
        | "pg_advisory_unlock_shared" => "t",
        _ => return None,
    };
    Some(Canned {
        columns: vec![name],
        rows: vec![vec![Some(value.to_string())]],
    })
}

const GRAFANA_SEARCH_PATH_MARKER: &str = "string_to_array(current_setting('search_path'),',') s";

/// The schemas of the search path, as Grafana's PostgreSQL query editor lists them
/// (`buildSchemaConstraint` in its postgresMetaQuery.ts), whitespace collapsed. DataFusion cannot
/// plan it (a scalar function in FROM, an alias used as a column); the search path here is the
/// connection's database, which is `current_schema()`.
const GRAFANA_SEARCH_PATH: &str = "SELECT CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE \
    trim(s[i]) END FROM generate_series( array_lower(string_to_array(current_setting('search_path'),\
    ','),1), array_upper(string_to_array(current_setting('search_path'),','),1) ) as i, \
    string_to_array(current_setting('search_path'),',') s";

/// Replaces Grafana's search path subquery by `current_schema()` (`x IN (current_schema())`:
/// a list, as DataFusion plans no subquery in ORDER BY). The SQL's whitespace is
/// collapsed first (it is only done to this generated SQL, whose literals are names).
fn rewrite_grafana_search_path(sql: &str) -> String {
    let collapsed = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let collapsed = collapsed.replace("( ", "(").replace(" )", ")");
    let pattern = GRAFANA_SEARCH_PATH.replace("( ", "(").replace(" )", ")");
    collapsed.replace(&pattern, "current_schema()")
}

/// Makes PostgreSQL catalog SQL plannable by DataFusion: `OPERATOR(pg_catalog.~)` becomes `~`,
/// `COLLATE pg_catalog.default` goes, and `pg_catalog.f(...)` calls become `f(...)`.
pub fn rewrite(sql: &str) -> String {
    if sql.contains("typeinfo_tree") && sql.contains("$1::oid[]") {
        return ASYNCPG_TYPE_INTROSPECTION.to_string();
    }
    let typed;
    let sql = if sql.contains("::") {
        typed = rewrite_cast_types(sql);
        typed.as_str()
    } else {
        sql
    };
    let any;
    let sql = if sql.to_ascii_uppercase().contains("ANY") {
        any = rewrite_any_literals(sql);
        any.as_str()
    } else {
        sql
    };
    let pgspecial;
    let sql = if sql.contains("FROM pg_catalog.pg_attrdef d")
        || sql.contains("FROM pg_catalog.pg_collation c")
    {
        pgspecial = null_subqueries(sql);
        pgspecial.as_str()
    } else {
        sql
    };
    let policies;
    let sql = if sql.contains("FROM pg_catalog.pg_policy pol") && sql.contains("ARRAY(") {
        policies = empty_policy_arrays(sql);
        policies.as_str()
    } else {
        sql
    };
    let grafana;
    let sql = if sql.contains(GRAFANA_SEARCH_PATH_MARKER) {
        grafana = rewrite_grafana_search_path(sql);
        grafana.as_str()
    } else {
        sql
    };
    let columns;
    let sql = if sql.contains("information_schema.columns") {
        columns = sql.replace(
            "information_schema.columns",
            &format!("pg_catalog.{}", crate::catalog::INFORMATION_SCHEMA_COLUMNS),
        );
        columns.as_str()
    } else {
        sql
    };
    // psycopg's TypeInfo.fetch (SQLAlchemy's dialect asks for `hstore` on connecting).
    let regtype;
    let sql = if sql.contains("oid::regtype::text") {
        regtype = sql.replace("oid::regtype::text", "format_type(oid, NULL)");
        regtype.as_str()
    } else {
        sql
    };
    let subscripts;
    let sql = if sql.contains("generate_subscripts(") {
        subscripts = unnest_subscripts(sql);
        subscripts.as_str()
    } else {
        sql
    };
    let casts;
    let sql = if sql.contains(" AS REGCLASS)") || sql.contains("OID") {
        casts = rewrite_sqlalchemy_casts(sql);
        casts.as_str()
    } else {
        sql
    };
    if !sql.contains("pg_catalog") {
        return sql.to_string();
    }
    let mut s = rewrite_regclass(sql);
    for op in ["!~*", "~*", "!~", "~~", "~", "=", "<>"] {
        s = s.replace(&format!("OPERATOR(pg_catalog.{op})"), op);
    }
    s = s.replace(" COLLATE pg_catalog.default", "");
    // pg_catalog.f( -> f(
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("pg_catalog.") {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let name_start = &after["pg_catalog.".len()..];
        let name_len = name_start
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(name_start.len());
        let is_call = name_start[name_len..].trim_start().starts_with('(');
        if !is_call {
            out.push_str("pg_catalog.");
        }
        rest = name_start;
    }
    out.push_str(rest);
    out
}

/// asyncpg's type introspection (`WITH RECURSIVE typeinfo_tree ... WHERE ti.oid = any($1::oid[])`,
/// run for a parameter or column type it has no codec for, such as `float8[]`) as a query
/// DataFusion plans, with the same columns: Hourglass has no domains, ranges or composite
/// types, so each type asked for is one row (arrays name their element type, whose codec
/// asyncpg has). `$1` stays `oid[]` for asyncpg ([`crate::parameters`] reads that from the
/// SQL it sent).
const ASYNCPG_TYPE_INTROSPECTION: &str = "SELECT t.oid AS oid, ns.nspname AS ns, \
    t.typname AS name, t.typtype AS kind, CAST(NULL AS BIGINT) AS basetype, \
    t.typelem AS elemtype, t.typdelim AS elemdelim, CAST(NULL AS BIGINT) AS range_subtype, \
    CAST(NULL AS TEXT) AS attrtypoids, CAST(NULL AS TEXT) AS attrnames, 0 AS depth, \
    CAST(NULL AS TEXT) AS basetype_name, format_type(t.typelem, NULL) AS elemtype_name, \
    CAST(NULL AS TEXT) AS range_subtype_name \
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace ns ON ns.oid = t.typnamespace \
    WHERE t.oid = ANY(CAST($1 AS BIGINT[]))";

/// Casts to PostgreSQL types spelled with their schema (`$1::pg_catalog.timestamp`, asyncpg's
/// `$1::"pg_catalog"."timestamptz"`, `"pg_catalog"."_text"` for `text[]`) become casts to the
/// plain type names; `x::regtype::text` (pgspecial's `c.reloftype::pg_catalog.regtype::
/// pg_catalog.text`) becomes `format_type(x, NULL)`. Only what follows `::` is changed, and
/// not inside string literals.
fn rewrite_cast_types(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = find_outside_literals(rest, "::") {
        out.push_str(&rest[..i + 2]);
        let mut after = &rest[i + 2..];
        for schema in ["pg_catalog.", "\"pg_catalog\"."] {
            if let Some(a) = after.strip_prefix(schema) {
                after = a;
            }
        }
        if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(0);
            let name = &quoted[..end];
            if end > 0
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                match name.strip_prefix('_') {
                    Some(element) => {
                        out.push_str(element);
                        out.push_str("[]");
                    }
                    None => out.push_str(name),
                }
                after = &quoted[end + 1..];
            }
        }
        rest = after;
    }
    out.push_str(rest);
    // `x::regtype::text` -> `format_type(x, NULL)`.
    const REGTYPE: &str = "::regtype::text";
    let mut s = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find(REGTYPE) {
        let before = &rest[..i];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |j| j + 1);
        if start == i {
            s.push_str(&rest[..i + REGTYPE.len()]);
        } else {
            s.push_str(&before[..start]);
            s.push_str(&format!("format_type({}, NULL)", &before[start..]));
        }
        rest = &rest[i + REGTYPE.len()..];
    }
    s.push_str(rest);
    // `x::regnamespace[::text]` -> the schema's name (PostgreSQL prints an OID no schema has
    // as its number).
    let s = rewrite_regnamespace(&s);
    // `c.oid::regclass` (a column, not a `'name'::regclass` literal) -> `c.oid`: Hourglass
    // has no `regclass` type; the relation is named by its OID.
    const REGCLASS: &str = "::regclass";
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find(REGCLASS) {
        let after = &rest[i + REGCLASS.len()..];
        let column = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..i]);
        if !column {
            out.push_str(REGCLASS);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `x::regnamespace::text` and `x::regnamespace` (`x` a column or a number; psql's `\\dX` sends
/// `es.stxnamespace::pg_catalog.regnamespace::pg_catalog.text`) become the name of the schema
/// with that OID, or the OID as text when no schema has it (PostgreSQL's output for such an
/// OID): an aggregated subquery correlated by equality, which DataFusion plans.
fn rewrite_regnamespace(sql: &str) -> String {
    const CAST: &str = "::regnamespace";
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = find_outside_literals(rest, CAST) {
        let before = &rest[..i];
        let mut after = &rest[i + CAST.len()..];
        if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            out.push_str(&rest[..i + CAST.len()]);
            rest = after;
            continue;
        }
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |j| j + 1);
        let operand = &before[start..];
        if operand.is_empty() {
            out.push_str(&rest[..i + CAST.len()]);
            rest = after;
            continue;
        }
        if let Some(a) = after.strip_prefix("::text") {
            if !a.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                after = a;
            }
        }
        out.push_str(&before[..start]);
        out.push_str(&format!(
            "coalesce((SELECT max(hg_regnamespace.nspname) FROM pg_catalog.pg_namespace \
             hg_regnamespace WHERE hg_regnamespace.oid = {operand}), CAST({operand} AS TEXT))"
        ));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// psql's `\\dp`/`\\z` list each table's row-security policies as `ARRAY(SELECT … FROM
/// pg_catalog.pg_policy pol WHERE polrelid = c.oid)`, whose column holds another `ARRAY`
/// subquery correlated by `oid = ANY (polroles)`, which DataFusion cannot decorrelate. Hourglass
/// has no policies (`pg_policy` is empty, always): that array is empty.
fn empty_policy_arrays(sql: &str) -> String {
    const MARKER: &str = "FROM pg_catalog.pg_policy pol";
    let mut s = sql.to_string();
    let mut from = 0;
    while let Some(m) = s[from..].find(MARKER).map(|m| m + from) {
        // The innermost `ARRAY(` whose parenthesis encloses the marker.
        let mut replaced = false;
        let mut search_end = m;
        while let Some(start) = s[..search_end].rfind("ARRAY(") {
            let mut depth = 0usize;
            let mut end = None;
            for (j, c) in s[start + 5..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(start + 5 + j + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            match end {
                Some(end) if end > m => {
                    s.replace_range(start..end, "CAST(make_array() AS TEXT[])");
                    from = start;
                    replaced = true;
                    break;
                }
                _ => search_end = start,
            }
        }
        if !replaced {
            from = m + MARKER.len();
        }
    }
    s
}

/// Where `pattern` first occurs in `sql` outside single-quoted literals.
fn find_outside_literals(sql: &str, pattern: &str) -> Option<usize> {
    let mut in_literal = false;
    for (i, c) in sql.char_indices() {
        if c == '\'' {
            in_literal = !in_literal;
        } else if !in_literal && sql[i..].starts_with(pattern) {
            return Some(i);
        }
    }
    None
}

/// `= ANY('{r,p,""}')` (an array literal as a string: psycopg's `sql.Literal` of a list of
/// strings, pgcli's `\dt`) becomes `= ANY(ARRAY['r','p',''])`; with a cast
/// (`ANY('{1.5,2}'::float8[])`) the array is cast: `ANY(CAST(ARRAY['1.5','2'] AS float8[]))`.
/// PostgreSQL types the literal from the `ANY`; DataFusion would take it as one string.
fn rewrite_any_literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    loop {
        let upper = rest.to_ascii_uppercase();
        let Some(i) = upper.find("ANY") else { break };
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        rest = after;
        let preceded = before[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if preceded {
            continue;
        }
        if let Some((array, used)) = any_literal(after) {
            out.push_str(&array);
            rest = &after[used..];
        }
    }
    out.push_str(rest);
    out
}

/// `('{...}'[::type[]])` at the start of `s`: the `(ARRAY[...])` replacing it and the length
/// of `s` it replaces.
fn any_literal(s: &str) -> Option<(String, usize)> {
    let open = s.len() - s.trim_start().len();
    let s1 = s[open..].strip_prefix('(')?;
    let lit_start = s.len() - s1.trim_start().len();
    let body = s[lit_start..].strip_prefix('\'')?;
    // The literal, `''` standing for `'`.
    let mut literal = String::new();
    let mut chars = body.char_indices().peekable();
    let end = loop {
        let (j, c) = chars.next()?;
        if c == '\'' {
            if chars.peek().map(|(_, c)| *c) == Some('\'') {
                chars.next();
                literal.push('\'');
            } else {
                break j + 1;
            }
        } else {
            literal.push(c);
        }
    };
    let mut pos = lit_start + 1 + end;
    let mut cast = None;
    let tail = &s[pos..];
    if let Some(t) = tail.trim_start().strip_prefix("::") {
        let name_len = t
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || c == '_' || c == '[' || c == ']' || c == ' ')
            })
            .unwrap_or(t.len());
        let name = t[..name_len].trim();
        if !name.ends_with("[]") {
            return None;
        }
        cast = Some(name.to_string());
        pos = s.len() - t[name_len..].len();
    }
    let close = s[pos..].trim_start().strip_prefix(')')?;
    let used = s.len() - close.len();
    let items = crate::parameters::parse_array_literal(&literal).ok()?;
    let items: Vec<String> = items
        .iter()
        .map(|i| match i {
            Some(v) => format!("'{}'", v.replace('\'', "''")),
            None => "NULL".to_string(),
        })
        .collect();
    let array = format!("ARRAY[{}]", items.join(","));
    Some(match cast {
        Some(t) => (format!("(CAST({array} AS {t}))"), used),
        None => (format!("({array})"), used),
    })
}

/// pgspecial's `\\d table` column query asks for each column's default and collation with
/// correlated subqueries on `pg_attrdef` and `pg_collation`, which DataFusion cannot plan.
/// Hourglass has neither defaults nor collations: those subqueries are NULL.
fn null_subqueries(sql: &str) -> String {
    let mut s = sql.to_string();
    for marker in [
        "FROM pg_catalog.pg_attrdef d",
        "FROM pg_catalog.pg_collation c",
    ] {
        while let Some(m) = s.find(marker) {
            let Some(start) = s[..m].rfind("(SELECT") else {
                break;
            };
            let mut depth = 0usize;
            let mut end = None;
            for (j, c) in s[start..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(start + j + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let Some(end) = end else { break };
            s.replace_range(start..end, "CAST(NULL AS TEXT)");
        }
    }
    s
}

/// SQLAlchemy's casts DataFusion has no type for: `CAST(x AS REGCLASS)` (a catalog table's
/// name, possibly a bound parameter) becomes `to_regclass(x)`, and `::OID`/`AS OID)` become
/// `BIGINT` (OIDs are `bigint` columns here).
fn rewrite_sqlalchemy_casts(sql: &str) -> String {
    const OPEN: &str = "CAST(";
    const CLOSE: &str = " AS REGCLASS)";
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find(CLOSE) {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        match cast_start(&out) {
            Some(o) => {
                let operand = out.split_off(o + OPEN.len());
                out.truncate(o);
                out.push_str("to_regclass(");
                out.push_str(&operand);
                out.push(')');
            }
            None => out.push_str(CLOSE),
        }
        rest = &after[CLOSE.len()..];
    }
    out.push_str(rest);
    let mut s = out.replace(" AS OID)", " AS BIGINT)");
    for end in [" ", ")", ",", "\n"] {
        s = s.replace(&format!("::OID{end}"), &format!("::BIGINT{end}"));
    }
    s
}

/// `generate_subscripts(a, d)` (set-returning) becomes `unnest(generate_subscripts(a, d))`, the
/// scalar function of the same name returning the subscripts as a list.
fn unnest_subscripts(sql: &str) -> String {
    const CALL: &str = "generate_subscripts(";
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(i) = rest.find(CALL) {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let args = &after[CALL.len()..];
        let mut depth = 0usize;
        let close = args.char_indices().find_map(|(j, c)| match c {
            '(' => {
                depth += 1;
                None
            }
            ')' if depth == 0 => Some(j),
            ')' => {
                depth -= 1;
                None
            }
            _ => None,
        });
        let Some(close) = close else {
            out.push_str(after);
            return out;
        };
        out.push_str("unnest(");
        out.push_str(CALL);
        out.push_str(&args[..=close]);
        out.push(')');
        rest = &args[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Where the `CAST(` whose operand ends `before` starts (parentheses balanced in between).
fn cast_start(before: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in before.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth == 0 => {
                let start = i.checked_sub(4)?;
                return before
                    .get(start..i)
                    .filter(|w| w.eq_ignore_ascii_case("CAST"))
                    .map(|_| start);
            }
            '(' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The OID of a catalog table named `name` (`pg_class` or `pg_catalog.pg_class`).
pub fn catalog_relation_oid(name: &str) -> Option<i64> {
    if let Ok(oid) = name.trim().parse() {
        return Some(oid);
    }
    let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
    CATALOG_RELATION_OIDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, oid)| *oid)
}

/// The OIDs PostgreSQL gives its catalog tables, for `'pg_class'::regclass` (the JDBC driver's
/// `d.classoid = 'pg_class'::regclass`).
const CATALOG_RELATION_OIDS: &[(&str, i64)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_database", 1262),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_constraint", 2606),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_namespace", 2615),
    ("pg_extension", 3079),
    ("pg_sequence", 2224),
    ("pg_collation", 3456),
];

/// `'pg_class'::regclass` (a catalog table) becomes its OID; DataFusion has no `regclass`.
/// Other relation names are left as they are.
fn rewrite_regclass(sql: &str) -> String {
    const CAST: &str = "::regclass";
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find(CAST) {
        let (before, after) = rest.split_at(i);
        let oid = before
            .strip_suffix('\'')
            .and_then(|b| b.rfind('\'').map(|q| (q, &b[q + 1..])))
            .and_then(|(q, name)| {
                let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
                CATALOG_RELATION_OIDS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, oid)| (q, *oid))
            });
        match oid {
            Some((q, oid)) => {
                out.push_str(&before[..q]);
                out.push_str(&oid.to_string());
            }
            None => {
                out.push_str(before);
                out.push_str(CAST);
            }
        }
        rest = &after[CAST.len()..];
    }
    out.push_str(rest);
    out
}

fn quoted_oid_after(sql: &str, marker: &str) -> Option<i64> {
    let i = sql.find(marker)? + marker.len();
    let rest = sql[i..].trim_start().trim_start_matches('\'');
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// psql's `\d table` queries about objects Hourglass has none of (row-level security policies,
/// publications, ...) whose SQL DataFusion cannot plan (`array(subquery)`): no rows, with
/// psql's columns. The answer is right, not a fallback: no such objects exist.
const PSQL_NONE: &[(&str, &[&str])] = &[
    // The JDBC driver's getPrimaryKeys and getIndexInfo (DBeaver): no table has an index.
    (
        "AS PK_NAME",
        &[
            "table_cat",
            "table_schem",
            "table_name",
            "column_name",
            "key_seq",
            "pk_name",
        ],
    ),
    (
        "AS INDEX_QUALIFIER",
        &[
            "table_cat",
            "table_schem",
            "table_name",
            "non_unique",
            "index_qualifier",
            "index_name",
            "type",
            "ordinal_position",
            "column_name",
            "asc_or_desc",
            "cardinality",
            "pages",
            "filter_condition",
        ],
    ),
    // `\d table`'s policies (not `\dp`, which also reads pg_policy and lists tables).
    (
        "SELECT pol.polname, pol.polpermissive,",
        &[
            "polname",
            "polpermissive",
            "array_to_string",
            "pg_get_expr",
            "pg_get_expr",
            "cmd",
        ],
    ),
    // `\d table`'s extended statistics (not `\dX`, which lists them with its own columns).
    (
        "SELECT oid, stxrelid::pg_catalog.regclass,",
        &[
            "oid",
            "stxrelid",
            "nsp",
            "stxname",
            "columns",
            "ndist_enabled",
            "deps_enabled",
            "mcv_enabled",
            "stxstattarget",
        ],
    ),
    (
        "SELECT pubname , NULL , NULL FROM pg_catalog.pg_publication p",
        &["pubname", "?column?", "?column?"],
    ),
    // Parents, then partitions and children: no table inherits.
    ("WHERE c.oid = i.inhparent AND i.inhrelid", &["oid"]),
    (
        "WHERE c.oid = i.inhrelid AND i.inhparent",
        &["oid", "relkind", "inhdetachpending", "pg_get_expr"],
    ),
];

/// One of [`PSQL_NONE`]'s queries, if `sql` is one: its marker found in the query with its
/// whitespace collapsed (each marker is specific to the one query it answers: a canned empty
/// answer to another query would be a wrong answer).
fn psql_none(sql: &str) -> Option<Canned> {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    PSQL_NONE
        .iter()
        .find(|(marker, _)| flat.contains(marker))
        .map(|(_, columns)| Canned {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: vec![],
        })
}

/// psql's `\d table` queries that DataFusion cannot plan (array expressions over `reloptions`,
/// correlated subqueries on `pg_attrdef`), answered from the catalog.
pub async fn psql_describe(sql: &str, catalog: &dyn CatalogProvider) -> Option<Canned> {
    if !sql.contains("pg_catalog.") {
        return None;
    }
    // psql's own query (15 columns; pgspecial's asks for 11 and is planned by DataFusion).
    if sql.contains("c.relchecks")
        && sql.contains("c.relrowsecurity")
        && sql.contains("FROM pg_catalog.pg_class c")
    {
        let oid = quoted_oid_after(sql, "WHERE c.oid =")?;
        let found = table_by_oid(catalog, oid).await;
        let cols = [
            ("relchecks", "0"),
            ("relkind", "r"),
            ("relhasindex", "f"),
            ("relhasrules", "f"),
            ("relhastriggers", "f"),
            ("relrowsecurity", "f"),
            ("relforcerowsecurity", "f"),
            ("relhasoids", "f"),
            ("relispartition", "f"),
            ("reloptions", ""),
            ("reltablespace", "0"),
            ("reloftype", ""),
            ("relpersistence", "p"),
            ("relreplident", "d"),
            ("amname", "heap"),
        ];
        return Some(Canned {
            columns: cols.iter().map(|(c, _)| c.to_string()).collect(),
            rows: found
                .map(|_| cols.iter().map(|(_, v)| Some(v.to_string())).collect())
                .into_iter()
                .collect(),
        });
    }
    if let Some(canned) = psql_none(sql) {
        return Some(canned);
    }
    // psql's column query; pgspecial's (`AS indexdef`) is planned by DataFusion.
    if sql.contains("FROM pg_catalog.pg_attribute a")
        && sql.contains("a.attname")
        && !sql.contains("AS indexdef")
    {
        let oid = quoted_oid_after(sql, "a.attrelid =")?;
        let table = table_by_oid(catalog, oid).await?;
        let mut columns: Vec<String> = [
            "attname",
            "format_type",
            "default",
            "attnotnull",
            "attcollation",
            "attidentity",
            "attgenerated",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let extras: Vec<(&str, Option<&str>)> = [
            ("attstorage", Some("p")),
            ("attcompression", Some("")),
            ("attstattarget", Some("-1")),
            ("col_description", None),
        ]
        .into_iter()
        .filter(|(name, _)| sql.contains(name))
        .collect();
        columns.extend(extras.iter().map(|(n, _)| n.to_string()));
        let rows = table
            .schema
            .fields()
            .iter()
            .map(|f| {
                let mut row = vec![
                    Some(f.name().clone()),
                    Some(format_type_name(i64::from(pg_type(f.data_type()).oid()))),
                    None,
                    Some(if f.is_nullable() { "f" } else { "t" }.to_string()),
                    None,
                    Some(String::new()),
                    Some(String::new()),
                ];
                row.extend(extras.iter().map(|(_, v)| v.map(str::to_string)));
                row
            })
            .collect();
        return Some(Canned { columns, rows });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_psql_operators_and_calls() {
        let sql = "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(cpu)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)";
        assert_eq!(
            rewrite(sql),
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname ~ '^(cpu)$' AND pg_table_is_visible(c.oid)"
        );
    }

    #[test]
    fn rewrites_catalog_regclass_literals() {
        assert_eq!(
            rewrite(
                "SELECT 1 FROM pg_catalog.pg_description d WHERE d.classoid = 'pg_class'::regclass"
            ),
            "SELECT 1 FROM pg_catalog.pg_description d WHERE d.classoid = 1259"
        );
        assert_eq!(
            rewrite(
                "SELECT 'pg_catalog.pg_namespace'::regclass, 'cpu'::regclass FROM pg_catalog.pg_am"
            ),
            "SELECT 2615, 'cpu'::regclass FROM pg_catalog.pg_am"
        );
    }

    #[test]
    fn set_show_and_transactions() {
        let s = settings("db1", &HashMap::new());
        assert!(
            matches!(special("SET x = 1", &s), Some(Ok(Special::Set(n, v))) if n == "x" && v == "1")
        );
        assert!(
            matches!(special("SET TIME ZONE 'UTC'", &s), Some(Ok(Special::Tag(t))) if t == "SET")
        );
        assert_eq!(
            hourglass_setting("SET hourglass.disabled_rules = 'all';"),
            Some(("disabled_rules".to_string(), "all".to_string()))
        );
        assert_eq!(
            hourglass_setting("set HOURGLASS.Disabled_Rules to 'date_bin,first_last'"),
            Some((
                "disabled_rules".to_string(),
                "date_bin,first_last".to_string()
            ))
        );
        assert_eq!(hourglass_setting("SET search_path = public"), None);
        assert!(matches!(
            special("begin", &s),
            Some(Ok(Special::TransactionStart(t))) if t == "BEGIN"
        ));
        assert!(matches!(
            special("SET application_name = 'my app'", &s),
            Some(Ok(Special::Set(n, v))) if n == "application_name" && v == "my app"
        ));
        assert!(matches!(
            special("SET LOCAL x = 1", &s),
            Some(Ok(Special::Tag(_)))
        ));
        assert!(matches!(
            special("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", &s),
            Some(Ok(Special::Tag(_)))
        ));
        assert!(matches!(
            special("RESET ALL", &s),
            Some(Ok(Special::Reset(None)))
        ));
        assert!(matches!(
            special("ROLLBACK TO SAVEPOINT \"_pg3_1\"", &s),
            Some(Ok(Special::RollbackTo(n))) if n == "_pg3_1"
        ));
        assert!(matches!(
            special("release sp", &s),
            Some(Ok(Special::Release(n))) if n == "sp"
        ));
        assert!(matches!(
            special("SELECT pg_advisory_unlock_all()", &s),
            Some(Ok(Special::Rows(c))) if c.columns == ["pg_advisory_unlock_all"]
        ));
        assert!(special("SELECT pg_advisory_lock(1), 2", &s).is_none());
        match special("SHOW search_path", &s) {
            Some(Ok(Special::Rows(c))) => assert_eq!(c.rows[0][0].as_deref(), Some("db1")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(special("SHOW nope", &s), Some(Err(_))));
        assert!(special("SELECT 1", &s).is_none());
    }

    #[test]
    fn grafana_search_path_and_information_schema_columns() {
        let sql = "SELECT quote_ident(table_name) FROM information_schema.tables WHERE
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) ORDER BY 1";
        assert_eq!(
            rewrite(sql),
            "SELECT quote_ident(table_name) FROM information_schema.tables WHERE \
             quote_ident(table_schema) IN (current_schema()) ORDER BY 1"
        );
        assert_eq!(
            rewrite("SELECT column_name FROM information_schema.columns WHERE table_name = 'cpu'"),
            "SELECT column_name FROM pg_catalog.information_schema_columns WHERE table_name = 'cpu'"
        );
    }

    #[test]
    fn rewrites_sqlalchemy_casts_and_subscripts() {
        assert_eq!(
            rewrite_sqlalchemy_casts(
                "CAST(CAST(f(CAST(CAST(a.attrelid AS REGCLASS) AS TEXT), b) AS REGCLASS) AS OID)"
            ),
            "CAST(to_regclass(f(CAST(to_regclass(a.attrelid) AS TEXT), b)) AS BIGINT)"
        );
        assert_eq!(
            rewrite_sqlalchemy_casts("x = CAST($1 AS REGCLASS) AND y::OID "),
            "x = to_regclass($1) AND y::BIGINT "
        );
        assert_eq!(
            unnest_subscripts("SELECT generate_subscripts(i.indkey, f(1)) AS ord"),
            "SELECT unnest(generate_subscripts(i.indkey, f(1))) AS ord"
        );
        assert_eq!(catalog_relation_oid("pg_catalog.pg_class"), Some(1259));
        assert_eq!(catalog_relation_oid("nope"), None);
    }

    #[test]
    fn rewrites_schema_qualified_casts() {
        assert_eq!(
            rewrite_cast_types(
                r#"SELECT quote_literal($1::"pg_catalog"."timestamp"::text), $2::"pg_catalog"."_text""#
            ),
            "SELECT quote_literal($1::timestamp::text), $2::text[]"
        );
        assert_eq!(
            rewrite_cast_types("SELECT $1::pg_catalog.timestamptz, '::pg_catalog.x'"),
            "SELECT $1::timestamptz, '::pg_catalog.x'"
        );
        assert_eq!(
            rewrite_cast_types("CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END"),
            "CASE WHEN c.reloftype = 0 THEN '' ELSE format_type(c.reloftype, NULL) END"
        );
        assert_eq!(
            rewrite_cast_types("SELECT c.oid::pg_catalog.regclass FROM t ORDER BY c.oid::pg_catalog.regclass::pg_catalog.text, 'pg_class'::regclass"),
            "SELECT c.oid FROM t ORDER BY c.oid::text, 'pg_class'::regclass"
        );
    }

    #[test]
    fn rewrites_array_literals_of_any() {
        assert_eq!(
            rewrite_any_literals(
                r#"WHERE c.relkind = ANY('{r,p,""}') AND x = any ( '{"a''b",NULL}' )"#
            ),
            "WHERE c.relkind = ANY(ARRAY['r','p','']) AND x = any(ARRAY['a''b',NULL])"
        );
        assert_eq!(
            rewrite_any_literals("WHERE v = ANY('{1.5,2}'::float8[])"),
            "WHERE v = ANY(CAST(ARRAY['1.5','2'] AS float8[]))"
        );
        for unchanged in [
            "WHERE v = ANY($1)",
            "WHERE v = ANY('x')",
            "SELECT company FROM t",
            "WHERE v = ANY(ARRAY[1])",
        ] {
            assert_eq!(rewrite_any_literals(unchanged), unchanged);
        }
    }

    #[test]
    fn regnamespace_casts_become_the_schema_name() {
        let ns = |x: &str| {
            format!(
                "coalesce((SELECT max(hg_regnamespace.nspname) FROM pg_catalog.pg_namespace \
                 hg_regnamespace WHERE hg_regnamespace.oid = {x}), CAST({x} AS TEXT))"
            )
        };
        assert_eq!(
            rewrite_cast_types(
                "SELECT es.stxnamespace::pg_catalog.regnamespace::pg_catalog.text AS \"Schema\""
            ),
            format!("SELECT {} AS \"Schema\"", ns("es.stxnamespace"))
        );
        assert_eq!(
            rewrite_cast_types("SELECT n.oid::regnamespace, 11::regnamespace::text FROM n"),
            format!("SELECT {}, {} FROM n", ns("n.oid"), ns("11"))
        );
        // Inside a literal, or a longer type name: left alone.
        assert_eq!(
            rewrite_cast_types("SELECT 'x::regnamespace', a::regnamespacex"),
            "SELECT 'x::regnamespace', a::regnamespacex"
        );
    }

    #[test]
    fn psql_policy_arrays_are_empty() {
        let sql = "SELECT pg_catalog.array_to_string(ARRAY(\n    SELECT polname\n    || CASE WHEN polroles <> '{0}' THEN\n                    E'\\n  to: ' || pg_catalog.array_to_string(ARRAY(SELECT rolname FROM pg_catalog.pg_roles WHERE oid = ANY (polroles) ORDER BY 1), E', ')\n                    ELSE E'' END\n    FROM pg_catalog.pg_policy pol\n    WHERE polrelid = c.oid), E'\\n') AS \"Policies\", \
                   ARRAY(SELECT 1) AS other FROM pg_catalog.pg_class c";
        assert_eq!(
            empty_policy_arrays(sql),
            "SELECT pg_catalog.array_to_string(CAST(make_array() AS TEXT[]), E'\\n') AS \"Policies\", \
             ARRAY(SELECT 1) AS other FROM pg_catalog.pg_class c"
        );
    }

    #[test]
    fn pgspecial_column_subqueries_are_null() {
        let sql = "SELECT a.attname, (SELECT substring(pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) for 128)\n FROM pg_catalog.pg_attrdef d\n WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull,\n(SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t\n WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation FROM pg_catalog.pg_attribute a";
        assert_eq!(
            null_subqueries(sql),
            "SELECT a.attname, CAST(NULL AS TEXT), a.attnotnull,\nCAST(NULL AS TEXT) AS attcollation FROM pg_catalog.pg_attribute a"
        );
    }
}
