//! Recognising `SHOW ...` and `DESCRIBE ...` on the token stream (whitespace removed), with
//! errors at the offending token, and SQL `LIKE` matching for their patterns.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan};
use hourglass_core::{Error, Result};

use super::Metadata;
use crate::dialect::errors::at_span;

/// Recognises a metadata statement; `None` if `tokens` (whitespace removed) start otherwise.
pub fn parse(tokens: &[TokenWithSpan]) -> Option<Result<Metadata>> {
    let first = tokens.first()?;
    let Token::Word(w) = &first.token else {
        return None;
    };
    if w.quote_style.is_some() {
        return None;
    }
    let mut p = Cursor { tokens, pos: 1 };
    let parsed = match w.keyword {
        Keyword::SHOW => p.show(),
        Keyword::DESCRIBE | Keyword::DESC => p.describe(),
        _ => return None,
    };
    Some(parsed.and_then(|m| p.end().map(|()| m)))
}

struct Cursor<'a> {
    tokens: &'a [TokenWithSpan],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    fn span(&self) -> Span {
        self.peek()
            .or(self.tokens.last())
            .map(|t| t.span)
            .unwrap_or(Span::empty())
    }

    fn keyword(&mut self, kw: &str) -> bool {
        match self.peek().map(|t| &t.token) {
            Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn error(&self, expected: &str) -> Error {
        let found = self
            .peek()
            .map(|t| t.token.to_string())
            .unwrap_or_else(|| "end of input".into());
        at_span(
            self.span(),
            format!("mismatched input '{found}'. Expecting: {expected}"),
        )
    }

    fn show(&mut self) -> Result<Metadata> {
        if self.keyword("DATABASES") || self.keyword("SCHEMAS") {
            let like = self.like()?;
            Ok(Metadata::ShowDatabases { like })
        } else if self.keyword("TABLES") {
            let (database, span) = if self.keyword("FROM") || self.keyword("IN") {
                let span = self.span();
                let name = self.name()?;
                match name.as_slice() {
                    [db] => (db.clone(), span),
                    _ => return Err(at_span(span, "SHOW TABLES FROM takes a database name")),
                }
            } else {
                return Err(at_span(self.span(), "SHOW TABLES needs FROM <database>"));
            };
            let like = self.like()?;
            Ok(Metadata::ShowTables {
                database,
                span,
                like,
            })
        } else if self.keyword("MEASURES") {
            if !(self.keyword("FROM") || self.keyword("IN")) {
                return Err(self.error("'FROM'"));
            }
            let span = self.span();
            let (database, table) = self.table_name()?;
            let like = self.like()?;
            Ok(Metadata::ShowMeasures {
                database,
                table,
                span,
                like,
            })
        } else {
            Err(self.error("'DATABASES', 'TABLES', 'MEASURES'"))
        }
    }

    fn describe(&mut self) -> Result<Metadata> {
        let span = self.span();
        let (database, table) = self.table_name()?;
        Ok(Metadata::Describe {
            database,
            table,
            span,
        })
    }

    fn table_name(&mut self) -> Result<(String, String)> {
        let span = self.span();
        let name = self.name()?;
        match <[String; 2]>::try_from(name) {
            Ok([db, table]) => Ok((db, table)),
            Err(_) => Err(at_span(
                span,
                "expected a table name of the form database.table",
            )),
        }
    }

    /// `a`, `"a"`, `a.b`, `"a"."b"`.
    fn name(&mut self) -> Result<Vec<String>> {
        let mut parts = Vec::new();
        loop {
            match self.peek().map(|t| &t.token) {
                Some(Token::Word(w)) => {
                    parts.push(w.value.clone());
                    self.pos += 1;
                }
                _ => return Err(self.error("a name")),
            }
            if matches!(self.peek().map(|t| &t.token), Some(Token::Period)) {
                self.pos += 1;
            } else {
                return Ok(parts);
            }
        }
    }

    fn like(&mut self) -> Result<Option<String>> {
        if !self.keyword("LIKE") {
            return Ok(None);
        }
        match self.peek().map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(Some(s))
            }
            _ => Err(self.error("a string pattern")),
        }
    }

    fn end(&mut self) -> Result<()> {
        while matches!(self.peek().map(|t| &t.token), Some(Token::SemiColon)) {
            self.pos += 1;
        }
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("end of statement")),
        }
    }
}

/// SQL `LIKE` matching with `%` (any run) and `_` (one character), in O(pattern × text).
pub fn like(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    // matches[j]: the pattern so far matches the first j characters of s.
    let mut matches = vec![false; s.len() + 1];
    matches[0] = true;
    for c in &p {
        let mut next = vec![false; s.len() + 1];
        match c {
            '%' => {
                let mut any = false;
                for j in 0..=s.len() {
                    any |= matches[j];
                    next[j] = any;
                }
            }
            _ => {
                for j in 1..=s.len() {
                    next[j] = matches[j - 1] && (*c == '_' || *c == s[j - 1]);
                }
            }
        }
        matches = next;
    }
    matches[s.len()]
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

    use super::*;
    use crate::dialect::parser_dialect::TimestreamDialect;

    fn parsed(sql: &str) -> Option<Result<Metadata>> {
        let tokens: Vec<TokenWithSpan> = Tokenizer::new(&TimestreamDialect, sql)
            .tokenize_with_location()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        parse(&tokens)
    }

    #[test]
    fn statements() {
        assert!(matches!(
            parsed("SHOW DATABASES"),
            Some(Ok(Metadata::ShowDatabases { like: None }))
        ));
        assert!(matches!(
            parsed("show tables from \"test\" like 'c%';"),
            Some(Ok(Metadata::ShowTables { ref database, like: Some(ref l), .. }))
                if database == "test" && l == "c%"
        ));
        assert!(matches!(
            parsed("SHOW MEASURES FROM \"db\".\"t\""),
            Some(Ok(Metadata::ShowMeasures { ref database, ref table, .. }))
                if database == "db" && table == "t"
        ));
        assert!(matches!(
            parsed("DESCRIBE db.t"),
            Some(Ok(Metadata::Describe { .. }))
        ));
        assert!(parsed("SELECT 1").is_none());
        let err = parsed("SHOW MEASURES db.t").and_then(|r| r.err());
        assert!(err.is_some_and(|e| e.message.starts_with("line 1:15:")));
    }

    #[test]
    fn like_patterns() {
        assert!(like("c%", "cpu"));
        assert!(like("_pu", "cpu"));
        assert!(!like("c_", "cpu"));
        assert!(like("%", ""));
    }
}
