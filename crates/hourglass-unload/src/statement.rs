//! Recognising `UNLOAD (<select>) TO '<url>' [WITH (option = value, ...)]`.
//!
//! A small lexer, not a SQL parser: the statement is an UNLOAD when its first word (after
//! whitespace and `--` / `/* */` comments) is `UNLOAD`; the parenthesised SELECT is taken
//! verbatim (parentheses matched outside string literals, quoted identifiers and comments) and
//! planned by the caller in its own dialect. `unload` anywhere else — in a literal, a comment,
//! or as a column name — is not a statement.

use hourglass_core::{Error, Result};

use crate::options::{self, Options, Value};

/// A recognised UNLOAD statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Unload {
    /// The inner query, as written (without its parentheses).
    pub select: String,
    /// The `TO` destination, as written (`s3://bucket/prefix`).
    pub url: String,
    pub options: Options,
}

/// `None` when `sql` is not an UNLOAD statement; `Some(Err)` when it is one but malformed.
pub fn recognise(sql: &str) -> Option<Result<Unload>> {
    let mut lx = Lexer::new(sql);
    lx.skip_blank();
    if !lx.keyword("UNLOAD") {
        return None;
    }
    Some(parse_rest(&mut lx))
}

fn syntax(message: impl Into<String>) -> Error {
    Error::invalid(format!(
        "UNLOAD: {}; expected UNLOAD (SELECT ...) TO 's3://bucket/prefix' WITH (option = value, ...)",
        message.into()
    ))
}

fn parse_rest(lx: &mut Lexer<'_>) -> Result<Unload> {
    lx.skip_blank();
    if !lx.eat('(') {
        return Err(syntax("the query must follow UNLOAD in parentheses"));
    }
    let start = lx.pos;
    let end = lx.matching_paren()?;
    let select = lx.src[start..end].trim().to_string();
    if select.is_empty() {
        return Err(syntax("the query in parentheses is empty"));
    }
    lx.skip_blank();
    if !lx.keyword("TO") {
        return Err(syntax("TO must follow the query"));
    }
    lx.skip_blank();
    let url = lx
        .string_literal()?
        .ok_or_else(|| syntax("TO takes a string literal"))?;
    lx.skip_blank();
    let mut pairs: Vec<(String, Value)> = Vec::new();
    if lx.keyword("WITH") {
        lx.skip_blank();
        if !lx.eat('(') {
            return Err(syntax("WITH takes options in parentheses"));
        }
        loop {
            lx.skip_blank();
            let name = lx
                .word()
                .ok_or_else(|| syntax("an option name was expected"))?;
            lx.skip_blank();
            if !lx.eat('=') {
                return Err(syntax(format!("option {name} needs '= value'")));
            }
            lx.skip_blank();
            let value = lx.value(&name)?;
            pairs.push((name, value));
            lx.skip_blank();
            if lx.eat(',') {
                continue;
            }
            if lx.eat(')') {
                break;
            }
            return Err(syntax("',' or ')' was expected after an option"));
        }
        lx.skip_blank();
    }
    lx.eat(';');
    lx.skip_blank();
    if lx.pos < lx.src.len() {
        return Err(syntax(format!(
            "unexpected text after the statement: '{}'",
            lx.src[lx.pos..].chars().take(40).collect::<String>()
        )));
    }
    Ok(Unload {
        select,
        url,
        options: options::parse(&pairs)?,
    })
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Skips whitespace and comments (an unterminated block comment runs to the end).
    fn skip_blank(&mut self) {
        loop {
            let rest = self.rest();
            if let Some(c) = rest.chars().next().filter(|c| c.is_whitespace()) {
                self.pos += c.len_utf8();
            } else if rest.starts_with("--") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(body) = rest.strip_prefix("/*") {
                self.pos += body.find("*/").map_or(rest.len(), |i| i + 4);
            } else {
                return;
            }
        }
    }

    /// An identifier-like word, or `None`.
    fn word(&mut self) -> Option<String> {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        self.pos += len;
        Some(rest[..len].to_string())
    }

    /// Consumes `kw` (any case) when it is a whole word here.
    fn keyword(&mut self, kw: &str) -> bool {
        let rest = self.rest();
        let matches = rest.len() >= kw.len()
            && rest.is_char_boundary(kw.len())
            && rest[..kw.len()].eq_ignore_ascii_case(kw)
            && !rest[kw.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if matches {
            self.pos += kw.len();
        }
        matches
    }

    /// A `'...'` literal (`''` is a quote), or `None` when there is none here.
    fn string_literal(&mut self) -> Result<Option<String>> {
        if !self.eat('\'') {
            return Ok(None);
        }
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(syntax("unterminated string literal"));
            };
            self.pos += c.len_utf8();
            if c == '\'' {
                if self.eat('\'') {
                    out.push('\'');
                } else {
                    return Ok(Some(out));
                }
            } else {
                out.push(c);
            }
        }
    }

    /// An option's value: a string literal, `ARRAY['a', ...]`, or a bare word or number.
    fn value(&mut self, option: &str) -> Result<Value> {
        if let Some(s) = self.string_literal()? {
            return Ok(Value::Text(s));
        }
        if self.keyword("ARRAY") {
            self.skip_blank();
            if !self.eat('[') {
                return Err(syntax(format!("option {option}: ARRAY[...] was expected")));
            }
            let mut items = Vec::new();
            loop {
                self.skip_blank();
                if items.is_empty() && self.eat(']') {
                    break;
                }
                let item = self.string_literal()?.ok_or_else(|| {
                    syntax(format!("option {option}: ARRAY items are string literals"))
                })?;
                items.push(item);
                self.skip_blank();
                if self.eat(',') {
                    continue;
                }
                if self.eat(']') {
                    break;
                }
                return Err(syntax(format!("option {option}: ',' or ']' was expected")));
            }
            return Ok(Value::Array(items));
        }
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return Err(syntax(format!("option {option} has no value")));
        }
        self.pos += len;
        Ok(Value::Text(rest[..len].to_string()))
    }

    /// From just inside a `(`: the position of its matching `)`, consumed.
    fn matching_paren(&mut self) -> Result<usize> {
        let mut depth = 1usize;
        loop {
            self.skip_blank();
            let Some(c) = self.peek() else {
                return Err(syntax("the query's parenthesis is not closed"));
            };
            match c {
                '\'' => {
                    self.string_literal()?;
                }
                '"' | '`' => {
                    self.pos += 1;
                    match self.rest().find(c) {
                        Some(i) => self.pos += i + 1,
                        None => return Err(syntax("unterminated quoted identifier")),
                    }
                }
                '(' => {
                    depth += 1;
                    self.pos += 1;
                }
                ')' => {
                    depth -= 1;
                    let at = self.pos;
                    self.pos += 1;
                    if depth == 0 {
                        return Ok(at);
                    }
                }
                c => self.pos += c.len_utf8(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Compression, Format};

    fn ok(sql: &str) -> Unload {
        match recognise(sql) {
            Some(Ok(u)) => u,
            other => panic!("{sql}: {other:?}"),
        }
    }

    fn err(sql: &str) -> String {
        match recognise(sql) {
            Some(Err(e)) => e.to_string(),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn recognises_the_statement_in_any_case_with_comments() {
        let u = ok(
            "  -- export\n /* a */ unload(SELECT a, ')' AS p, \"x)\" FROM t WHERE f(1) > (2)) \
                    /* c */ to 's3://b/p/' With ( format = 'CSV', compression='none' ) ; -- end",
        );
        assert_eq!(
            u.select,
            "SELECT a, ')' AS p, \"x)\" FROM t WHERE f(1) > (2)"
        );
        assert_eq!(u.url, "s3://b/p/");
        assert_eq!(u.options.format, Format::Csv);
        assert_eq!(u.options.compression, Compression::None);
        let plain = ok("UNLOAD (SELECT 1) TO 's3://b/x'");
        assert_eq!(plain.options.format, Format::Parquet);
        assert_eq!(plain.options.compression, Compression::Gzip);
        let nested = ok("UNLOAD (SELECT * FROM (SELECT 1 AS a) -- )\n) TO 's3://b/x' WITH (partitioned_by = ARRAY['a'])");
        assert_eq!(nested.select, "SELECT * FROM (SELECT 1 AS a) -- )");
        assert_eq!(nested.options.partitioned_by, vec!["a".to_string()]);
    }

    #[test]
    fn unload_elsewhere_is_not_the_statement() {
        for sql in [
            "SELECT 'UNLOAD (SELECT 1) TO ''s3://b/x''' AS s",
            "-- UNLOAD (SELECT 1) TO 's3://b/x'\nSELECT 1",
            "/* UNLOAD (SELECT 1) TO 's3://b/x' */ SELECT 1",
            "SELECT unload FROM t",
            "unloaded",
            "\"UNLOAD\" (SELECT 1)",
            "",
        ] {
            assert!(recognise(sql).is_none(), "{sql}");
        }
    }

    #[test]
    fn malformed_statements_say_what_is_wrong() {
        assert!(err("UNLOAD SELECT 1 TO 's3://b'").contains("parentheses"));
        assert!(err("UNLOAD (SELECT 1 TO 's3://b'").contains("not closed"));
        assert!(err("UNLOAD (SELECT 1) 's3://b'").contains("TO must follow"));
        assert!(err("UNLOAD (SELECT 1) TO s3").contains("string literal"));
        assert!(err("UNLOAD (SELECT 1) TO 's3://b' WITH (format 'CSV')").contains("format"));
        assert!(err("UNLOAD (SELECT 1) TO 's3://b' garbage").contains("unexpected text"));
        assert!(err("UNLOAD () TO 's3://b'").contains("empty"));
    }
}
