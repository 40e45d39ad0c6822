//! InfluxQL's recursive-descent parser. Errors read as InfluxDB 1.x's
//! (`found FROM, expected identifier, string, number, bool at line 1, char 8`); the HTTP layer
//! prefixes `error parsing query: `.

use super::ast::*;
use super::lexer::{Lexer, Tok, Token};

/// A parse error, worded and placed as InfluxDB's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub line: usize,
    pub ch: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == usize::MAX {
            return f.write_str(&self.message);
        }
        write!(
            f,
            "{} at line {}, char {}",
            self.message,
            self.line + 1,
            self.ch + 1
        )
    }
}

type PResult<T> = Result<T, ParseError>;

/// Parses every `;`-separated statement of `text`.
pub fn parse_query(text: &str) -> PResult<Vec<Statement>> {
    let mut p = Parser::new(text);
    let mut out = Vec::new();
    loop {
        while p.peek().is_op(";") {
            p.next();
        }
        if p.peek().tok == Tok::Eof {
            return Ok(out);
        }
        out.push(p.statement()?);
        let t = p.next();
        if t.tok != Tok::Eof && !t.is_op(";") {
            return Err(expected(&t, &[";"]));
        }
    }
}

fn expected(t: &Token, what: &[&str]) -> ParseError {
    if t.tok == Tok::Illegal {
        if t.lit == "invalid duration" {
            return unplaced("invalid duration");
        }
        // InfluxDB places these one character before the token.
        if t.lit.starts_with("error parsing regexp") {
            return ParseError {
                message: t.lit.clone(),
                line: t.line,
                ch: t.ch.saturating_sub(1),
            };
        }
        if t.lit.starts_with(['\'', '"']) {
            return ParseError {
                message: format!("found {}, expected {}", &t.lit[1..], what.join(", ")),
                line: t.line,
                ch: t.ch.saturating_sub(1),
            };
        }
    }
    ParseError {
        message: format!("found {}, expected {}", t.describe(), what.join(", ")),
        line: t.line,
        ch: t.ch,
    }
}

/// An error InfluxDB reports without a position.
fn unplaced(message: &str) -> ParseError {
    ParseError {
        message: message.into(),
        line: usize::MAX,
        ch: 0,
    }
}

fn error_at(t: &Token, message: impl Into<String>) -> ParseError {
    ParseError {
        message: message.into(),
        line: t.line,
        ch: t.ch,
    }
}

/// Keywords that may not be used as bare identifiers (a subset of InfluxQL's).
const RESERVED: [&str; 36] = [
    "ALL",
    "ALTER",
    "AND",
    "AS",
    "ASC",
    "BEGIN",
    "BY",
    "CREATE",
    "CONTINUOUS",
    "DATABASE",
    "DATABASES",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DROP",
    "DURATION",
    "END",
    "EVERY",
    "EXPLAIN",
    "FIELD",
    "FROM",
    "GRANT",
    "GROUP",
    "GROUPS",
    "IN",
    "INTO",
    "KEY",
    "KEYS",
    "LIMIT",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "SELECT",
    "SHOW",
    "WHERE",
];

fn is_reserved(t: &Token) -> bool {
    matches!(t.tok, Tok::Ident { quoted: false })
        && (RESERVED.iter().any(|k| t.lit.eq_ignore_ascii_case(k))
            || [
                "SLIMIT",
                "SOFFSET",
                "TAG",
                "WITH",
                "MEASUREMENT",
                "MEASUREMENTS",
                "SERIES",
            ]
            .iter()
            .any(|k| t.lit.eq_ignore_ascii_case(k)))
}

/// Go's wording of the common regexp errors (`missing closing ): `(a``).
fn regex_error(re: &str, e: &regex::Error) -> String {
    let text = e.to_string();
    let what = if text.contains("unclosed group") {
        "missing closing )".to_string()
    } else if text.contains("unopened group") {
        "unexpected )".to_string()
    } else if text.contains("unclosed character class") {
        "missing closing ]".to_string()
    } else if text.contains("repetition operator missing expression") {
        "missing argument to repetition operator".to_string()
    } else {
        text.lines()
            .last()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_string()
    };
    format!("error parsing regexp: {what}: `{re}`")
}

struct Parser {
    lexer: Lexer,
    buffered: Option<Token>,
}

impl Parser {
    fn new(text: &str) -> Parser {
        Parser {
            lexer: Lexer::new(text),
            buffered: None,
        }
    }

    fn peek(&mut self) -> &Token {
        if self.buffered.is_none() {
            self.buffered = Some(self.lexer.next_token());
        }
        self.buffered.as_ref().expect("just filled")
    }

    fn next(&mut self) -> Token {
        self.peek();
        self.buffered.take().expect("just filled")
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_kw(kw) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        let t = self.next();
        if t.is_kw(kw) {
            Ok(())
        } else {
            Err(expected(&t, &[kw]))
        }
    }

    fn expect_op(&mut self, op: &str) -> PResult<()> {
        let t = self.next();
        if t.is_op(op) {
            Ok(())
        } else {
            Err(expected(&t, &[op]))
        }
    }

    /// A regex at the current position, if the next token starts one; one that does not
    /// compile becomes an illegal token carrying InfluxDB's wording.
    fn regex(&mut self) -> Option<Token> {
        let mut t = self.regex_token()?;
        if t.tok == Tok::Regex {
            if let Err(e) = regex::Regex::new(&t.lit) {
                t.tok = Tok::Illegal;
                t.lit = regex_error(&t.lit, &e);
            }
        }
        Some(t)
    }

    fn regex_token(&mut self) -> Option<Token> {
        if self.buffered.is_some() {
            if !self.peek().is_op("/") {
                return None;
            }
            // Rewind the lexer to the slash: re-scan from a fresh position is not possible, so
            // the slash was consumed; scan the rest as the regex body.
            let slash = self.buffered.take().expect("peeked");
            let mut rest = self.lexer.clone();
            return match rest.scan_regex_after_slash() {
                Some(mut t) => {
                    self.lexer = rest;
                    t.line = slash.line;
                    t.ch = slash.ch;
                    Some(t)
                }
                None => {
                    self.buffered = Some(slash);
                    None
                }
            };
        }
        self.lexer.scan_regex()
    }

    fn ident(&mut self) -> PResult<String> {
        let t = self.next();
        match t.tok {
            Tok::Ident { .. } if !is_reserved(&t) => Ok(t.lit),
            _ => Err(expected(&t, &["identifier"])),
        }
    }

    fn integer(&mut self) -> PResult<u64> {
        let t = self.next();
        match t.tok {
            Tok::Integer(v) if v >= 0 => Ok(v as u64),
            _ => Err(expected(&t, &["integer"])),
        }
    }

    fn string(&mut self) -> PResult<String> {
        let t = self.next();
        match t.tok {
            Tok::Str => Ok(t.lit),
            _ => Err(expected(&t, &["string"])),
        }
    }

    fn statement(&mut self) -> PResult<Statement> {
        let t = self.next();
        if t.is_kw("SELECT") {
            return Ok(Statement::Select(Box::new(self.select_body()?)));
        }
        if t.is_kw("SHOW") {
            return self.show();
        }
        if t.is_kw("CREATE") {
            let t = self.next();
            if !t.is_kw("DATABASE") {
                return Err(expected(
                    &t,
                    &[
                        "CONTINUOUS",
                        "DATABASE",
                        "USER",
                        "RETENTION",
                        "SUBSCRIPTION",
                    ],
                ));
            }
            let name = self.ident()?;
            if self.peek().is_kw("WITH") {
                let t = self.next();
                return Err(error_at(
                    &t,
                    "CREATE DATABASE ... WITH is not supported by Hourglass (retention is set per table)",
                ));
            }
            return Ok(Statement::CreateDatabase(name));
        }
        if t.is_kw("DROP") {
            let t = self.next();
            if !t.is_kw("MEASUREMENT") {
                return Err(expected(
                    &t,
                    &[
                        "CONTINUOUS",
                        "MEASUREMENT",
                        "RETENTION",
                        "SERIES",
                        "SHARD",
                        "SUBSCRIPTION",
                        "USER",
                    ],
                ));
            }
            return Ok(Statement::DropMeasurement(self.ident()?));
        }
        Err(expected(
            &t,
            &[
                "SELECT", "DELETE", "SHOW", "CREATE", "DROP", "EXPLAIN", "GRANT", "REVOKE",
                "ALTER", "SET", "KILL",
            ],
        ))
    }

    fn on_clause(&mut self) -> PResult<Option<String>> {
        if self.eat_kw("ON") {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn limit_offset(&mut self) -> PResult<(Option<u64>, Option<u64>)> {
        let mut limit = None;
        let mut offset = None;
        if self.eat_kw("LIMIT") {
            limit = Some(self.integer()?);
        }
        if self.eat_kw("OFFSET") {
            offset = Some(self.integer()?);
        }
        Ok((limit, offset))
    }

    fn show(&mut self) -> PResult<Statement> {
        let t = self.next();
        if t.is_kw("DATABASES") {
            return Ok(Statement::ShowDatabases);
        }
        if t.is_kw("MEASUREMENTS") {
            let on = self.on_clause()?;
            let mut filter = None;
            if self.eat_kw("WITH") {
                self.expect_kw("MEASUREMENT")?;
                filter = Some(self.name_filter(true)?);
            }
            let condition = if self.eat_kw("WHERE") {
                Some(self.expr()?)
            } else {
                None
            };
            let (limit, offset) = self.limit_offset()?;
            return Ok(Statement::ShowMeasurements {
                on,
                filter,
                condition,
                limit,
                offset,
            });
        }
        if t.is_kw("RETENTION") {
            self.expect_kw("POLICIES")?;
            let on = self.on_clause()?;
            return Ok(Statement::ShowRetentionPolicies { on });
        }
        if t.is_kw("FIELD") {
            self.expect_kw("KEYS")?;
            let on = self.on_clause()?;
            let from = self.optional_from()?;
            let (limit, offset) = self.limit_offset()?;
            return Ok(Statement::ShowFieldKeys {
                on,
                from,
                limit,
                offset,
            });
        }
        if t.is_kw("SERIES") {
            let on = self.on_clause()?;
            let from = self.optional_from()?;
            let condition = if self.eat_kw("WHERE") {
                Some(self.expr()?)
            } else {
                None
            };
            let (limit, offset) = self.limit_offset()?;
            return Ok(Statement::ShowSeries {
                on,
                from,
                condition,
                limit,
                offset,
            });
        }
        if t.is_kw("TAG") {
            let t = self.next();
            if t.is_kw("KEYS") {
                let on = self.on_clause()?;
                let from = self.optional_from()?;
                if self.peek().is_kw("WHERE") {
                    let t = self.next();
                    return Err(error_at(
                        &t,
                        "SHOW TAG KEYS ... WHERE is not supported by Hourglass",
                    ));
                }
                let (limit, offset) = self.limit_offset()?;
                return Ok(Statement::ShowTagKeys {
                    on,
                    from,
                    limit,
                    offset,
                });
            }
            if t.is_kw("VALUES") {
                let on = self.on_clause()?;
                let from = self.optional_from()?;
                self.expect_kw("WITH")?;
                self.expect_kw("KEY")?;
                let key = self.name_filter(false)?;
                let condition = if self.eat_kw("WHERE") {
                    Some(self.expr()?)
                } else {
                    None
                };
                let (limit, offset) = self.limit_offset()?;
                return Ok(Statement::ShowTagValues {
                    on,
                    from,
                    key,
                    condition,
                    limit,
                    offset,
                });
            }
            return Err(expected(&t, &["KEYS", "VALUES"]));
        }
        Err(expected(
            &t,
            &[
                "CONTINUOUS",
                "DATABASES",
                "DIAGNOSTICS",
                "FIELD",
                "GRANTS",
                "MEASUREMENT",
                "MEASUREMENTS",
                "QUERIES",
                "RETENTION",
                "SERIES",
                "SHARD",
                "SHARDS",
                "STATS",
                "SUBSCRIPTIONS",
                "TAG",
                "USERS",
            ],
        ))
    }

    /// `= name`, `!= name`, `=~ /re/`, `!~ /re/`, `IN (a, b)`.
    fn name_filter(&mut self, measurement: bool) -> PResult<NameFilter> {
        let t = self.next();
        let name = |p: &mut Parser| -> PResult<String> {
            let t = p.next();
            match t.tok {
                Tok::Ident { .. } | Tok::Str if !is_reserved(&t) => Ok(t.lit),
                _ => Err(expected(&t, &["identifier"])),
            }
        };
        let regex = |p: &mut Parser| -> PResult<String> {
            match p.regex() {
                Some(r) if r.tok == Tok::Regex => Ok(r.lit),
                _ => {
                    let t = p.next();
                    Err(expected(&t, &["regex"]))
                }
            }
        };
        if t.is_op("=") {
            return Ok(NameFilter::Eq(name(self)?));
        }
        if t.is_op("!=") || t.is_op("<>") {
            return Ok(NameFilter::NotEq(name(self)?));
        }
        if t.is_op("=~") {
            return Ok(NameFilter::Regex(regex(self)?));
        }
        if t.is_op("!~") {
            return Ok(NameFilter::NotRegex(regex(self)?));
        }
        if !measurement && t.is_kw("IN") {
            self.expect_op("(")?;
            let mut names = vec![name(self)?];
            while self.peek().is_op(",") {
                self.next();
                names.push(name(self)?);
            }
            self.expect_op(")")?;
            return Ok(NameFilter::In(names));
        }
        if measurement {
            Err(expected(&t, &["=", "=~"]))
        } else {
            Err(expected(&t, &["=", "!=", "=~", "!~", "IN"]))
        }
    }

    fn optional_from(&mut self) -> PResult<Vec<Source>> {
        if self.eat_kw("FROM") {
            self.sources(false)
        } else {
            Ok(Vec::new())
        }
    }

    fn sources(&mut self, subqueries: bool) -> PResult<Vec<Source>> {
        let mut out = vec![self.source(subqueries)?];
        while self.peek().is_op(",") {
            self.next();
            out.push(self.source(subqueries)?);
        }
        Ok(out)
    }

    /// A measurement: `m`, `"m"`, `db.rp.m`, `db..m`, `/re/`, `db../re/`, `(SELECT …)`.
    fn source(&mut self, subqueries: bool) -> PResult<Source> {
        if let Some(r) = self.regex() {
            return match r.tok {
                Tok::Regex => Ok(Source::Regex {
                    db: None,
                    pattern: r.lit,
                }),
                _ => Err(expected(&r, &["regex"])),
            };
        }
        if subqueries && self.peek().is_op("(") {
            self.next();
            self.expect_kw("SELECT")?;
            let inner = self.select_body()?;
            self.expect_op(")")?;
            return Ok(Source::Subquery(Box::new(inner)));
        }
        let mut parts = vec![Some(self.ident()?)];
        while self.peek().is_op(".") && parts.len() < 3 {
            self.next();
            if self.peek().is_op(".") {
                parts.push(None);
                continue;
            }
            if let Some(r) = self.regex() {
                if r.tok != Tok::Regex {
                    return Err(expected(&r, &["regex"]));
                }
                return Ok(Source::Regex {
                    db: if parts.len() == 2 {
                        parts[0].clone()
                    } else {
                        None
                    },
                    pattern: r.lit,
                });
            }
            parts.push(Some(self.ident()?));
        }
        // `m`, `rp.m` (no database), `db.rp.m`, `db..m`.
        let name = parts.pop().flatten().unwrap_or_default();
        let db = if parts.len() == 2 {
            parts[0].clone()
        } else {
            None
        };
        Ok(Source::Measurement { db, name })
    }

    /// Everything of a `SELECT` after the keyword.
    fn select_body(&mut self) -> PResult<Select> {
        let mut fields = vec![self.field()?];
        while self.peek().is_op(",") {
            self.next();
            fields.push(self.field()?);
        }
        if self.peek().is_kw("INTO") {
            let t = self.next();
            return Err(error_at(
                &t,
                "SELECT ... INTO is not supported by Hourglass",
            ));
        }
        self.expect_kw("FROM")?;
        let from = self.sources(true)?;
        let mut s = Select {
            fields,
            from,
            condition: None,
            group_time: None,
            group_tags: Vec::new(),
            group_tag_regexes: Vec::new(),
            group_all: false,
            fill: Fill::Null,
            descending: false,
            limit: None,
            offset: None,
            slimit: None,
            soffset: None,
            tz: None,
            invalid: None,
        };
        if self.eat_kw("WHERE") {
            s.condition = Some(self.expr()?);
        }
        if self.eat_kw("GROUP") {
            self.expect_kw("BY")?;
            self.dimensions(&mut s)?;
        }
        if self.peek().is_kw("fill") {
            self.next();
            self.expect_op("(")?;
            let t = self.next();
            s.fill = if t.is_kw("null") {
                Fill::Null
            } else if t.is_kw("none") {
                Fill::None
            } else if t.is_kw("previous") {
                Fill::Previous
            } else if t.is_kw("linear") {
                Fill::Linear
            } else {
                let negative = t.is_op("-");
                let t = if negative { self.next() } else { t };
                let sign = if negative { -1.0 } else { 1.0 };
                match t.tok {
                    Tok::Integer(v) => Fill::Integer(if negative { -v } else { v }),
                    Tok::Number(v) => Fill::Number(sign * v),
                    _ => return Err(unplaced("expected number argument in fill()")),
                }
            };
            self.expect_op(")")?;
        }
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let t = self.next();
                if !t.is_kw("time") {
                    return Err(error_at(&t, "only ORDER BY time supported at this time"));
                }
                if self.eat_kw("DESC") {
                    s.descending = true;
                } else {
                    self.eat_kw("ASC");
                }
                if !self.peek().is_op(",") {
                    break;
                }
                self.next();
            }
        }
        if self.eat_kw("LIMIT") {
            s.limit = Some(self.integer()?);
        }
        if self.eat_kw("OFFSET") {
            s.offset = Some(self.integer()?);
        }
        if self.eat_kw("SLIMIT") {
            s.slimit = Some(self.integer()?);
        }
        if self.eat_kw("SOFFSET") {
            s.soffset = Some(self.integer()?);
        }
        if self.peek().is_kw("tz") {
            self.next();
            self.expect_op("(")?;
            let name = self.string()?;
            if name.parse::<chrono_tz::Tz>().is_err() {
                return Err(unplaced(&format!("unable to find time zone {name}")));
            }
            s.tz = Some(name);
            self.expect_op(")")?;
        }
        Ok(s)
    }

    fn dimensions(&mut self, s: &mut Select) -> PResult<()> {
        loop {
            if let Some(r) = self.regex() {
                if r.tok != Tok::Regex {
                    return Err(expected(&r, &["regex"]));
                }
                s.group_tag_regexes.push(r.lit);
            } else if self.peek().is_op("*") {
                self.next();
                s.group_all = true;
            } else if self.peek().is_kw("time") {
                let t = self.next();
                if !self.peek().is_op("(") {
                    return Err(error_at(
                        &t,
                        "time() is a function and expects at least one argument",
                    ));
                }
                self.next();
                if self.peek().is_op(")") {
                    self.next();
                    s.invalid = Some("time dimension expected 1 or 2 arguments".into());
                    s.group_time = Some((1, 0));
                    if !self.peek().is_op(",") {
                        return Ok(());
                    }
                    self.next();
                    continue;
                }
                let interval = self.next();
                let Tok::Duration(iv) = interval.tok else {
                    return Err(error_at(
                        &interval,
                        "time dimension must have duration argument",
                    ));
                };
                if iv <= 0 {
                    return Err(error_at(
                        &interval,
                        "time dimension must have a positive duration",
                    ));
                }
                let mut offset = 0;
                if self.peek().is_op(",") {
                    self.next();
                    let neg = self.peek().is_op("-");
                    if neg {
                        self.next();
                    }
                    let t = self.next();
                    match t.tok {
                        Tok::Duration(d) => offset = if neg { -d } else { d },
                        _ => {
                            return Err(error_at(
                                &t,
                                "time dimension offset must be a duration (now() is not supported by Hourglass)",
                            ))
                        }
                    }
                }
                self.expect_op(")")?;
                if s.group_time.is_some() {
                    return Err(error_at(&t, "multiple time dimensions not allowed"));
                }
                s.group_time = Some((iv, offset.rem_euclid(iv)));
            } else {
                let name = self.ident()?;
                s.group_tags.push(name);
            }
            if !self.peek().is_op(",") {
                return Ok(());
            }
            self.next();
        }
    }

    fn field(&mut self) -> PResult<Field> {
        let expr = self.expr()?;
        let alias = if self.eat_kw("AS") {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(Field { expr, alias })
    }

    pub fn expr(&mut self) -> PResult<Expr> {
        let lhs = self.unary()?;
        self.binary_rest(lhs, 0)
    }

    fn peek_binop(&mut self) -> Option<BinOp> {
        let t = self.peek();
        match &t.tok {
            Tok::Op(o) => BinOp::from_op(o),
            Tok::Ident { quoted: false } if t.lit.eq_ignore_ascii_case("AND") => Some(BinOp::And),
            Tok::Ident { quoted: false } if t.lit.eq_ignore_ascii_case("OR") => Some(BinOp::Or),
            _ => None,
        }
    }

    /// Precedence climbing from `lhs` over operators binding tighter than `min`.
    fn binary_rest(&mut self, mut lhs: Expr, min: u8) -> PResult<Expr> {
        while let Some(op) = self.peek_binop() {
            if op.precedence() <= min {
                break;
            }
            self.next();
            let mut rhs = if matches!(op, BinOp::RegexMatch | BinOp::RegexNotMatch) {
                match self.regex() {
                    Some(r) if r.tok == Tok::Regex => Expr::Regex(r.lit),
                    Some(r) => return Err(expected(&r, &["regex"])),
                    None => self.unary()?,
                }
            } else {
                self.unary()?
            };
            while let Some(next) = self.peek_binop() {
                if next.precedence() <= op.precedence() {
                    break;
                }
                rhs = self.binary_rest(rhs, op.precedence())?;
            }
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult<Expr> {
        if let Some(r) = self.regex() {
            if r.tok != Tok::Regex {
                return Err(expected(&r, &["regex"]));
            }
            return Ok(Expr::Regex(r.lit));
        }
        let t = self.next();
        match t.tok {
            Tok::Op("(") => {
                let e = self.expr()?;
                self.expect_op(")")?;
                Ok(Expr::Paren(Box::new(e)))
            }
            Tok::Op("*") => Ok(Expr::Wildcard),
            Tok::Op("-") | Tok::Op("+") => {
                let negative = t.is_op("-");
                let n = self.next();
                let sign = if negative { -1 } else { 1 };
                match n.tok {
                    Tok::Integer(v) => Ok(Expr::Integer(sign * v)),
                    Tok::Number(v) => Ok(Expr::Number(sign as f64 * v)),
                    Tok::Duration(v) => Ok(Expr::Duration(sign * v)),
                    Tok::Ident { .. } | Tok::Op("(") => {
                        self.buffered = Some(n);
                        let inner = self.unary()?;
                        Ok(Expr::Binary {
                            op: BinOp::Mul,
                            lhs: Box::new(Expr::Integer(sign)),
                            rhs: Box::new(inner),
                        })
                    }
                    _ => Err(expected(&n, &["identifier", "number", "duration", "("])),
                }
            }
            Tok::Integer(v) => Ok(Expr::Integer(v)),
            Tok::Number(v) => Ok(Expr::Number(v)),
            Tok::Duration(v) => Ok(Expr::Duration(v)),
            Tok::Str => Ok(Expr::Str(t.lit)),
            Tok::Ident { quoted } => {
                if !quoted && t.lit.eq_ignore_ascii_case("true") {
                    return Ok(Expr::Bool(true));
                }
                if !quoted && t.lit.eq_ignore_ascii_case("false") {
                    return Ok(Expr::Bool(false));
                }
                if !quoted && self.peek().is_op("(") {
                    self.next();
                    let mut args = Vec::new();
                    if !self.peek().is_op(")") {
                        args.push(self.expr()?);
                        while self.peek().is_op(",") {
                            self.next();
                            args.push(self.expr()?);
                        }
                    }
                    self.expect_op(")")?;
                    return Ok(Expr::Call {
                        name: t.lit.to_ascii_lowercase(),
                        args,
                    });
                }
                if is_reserved(&t) {
                    return Err(expected(&t, &["identifier", "string", "number", "bool"]));
                }
                let mut name = t.lit;
                // `m.field` is not InfluxQL; `"a"."b"` neither. Only `::type` follows.
                let cast = if self.peek().is_op("::") {
                    self.next();
                    let c = self.next();
                    let cast = match c.lit.to_ascii_lowercase().as_str() {
                        "field" => Cast::Field,
                        "tag" => Cast::Tag,
                        "float" => Cast::Float,
                        "integer" => Cast::Integer,
                        "unsigned" => Cast::Unsigned,
                        "string" => Cast::String,
                        "boolean" => Cast::Boolean,
                        _ => {
                            return Err(expected(
                                &c,
                                &[
                                    "float", "integer", "unsigned", "string", "boolean", "field",
                                    "tag",
                                ],
                            ))
                        }
                    };
                    Some(cast)
                } else {
                    None
                };
                if name.is_empty() {
                    name = String::new();
                }
                Ok(Expr::Var { name, cast })
            }
            _ => Err(expected(&t, &["identifier", "string", "number", "bool"])),
        }
    }
}

impl Lexer {
    /// Like [`Lexer::scan_regex`] when the opening `/` was already consumed as a token.
    pub fn scan_regex_after_slash(&mut self) -> Option<Token> {
        let mut text = String::from("/");
        // Re-scan: collect characters until the closing unescaped slash.
        let mut probe = self.clone();
        let (line, ch) = (0, 0);
        loop {
            let t = probe.raw_char()?;
            match t {
                '\n' => return None,
                '/' => break,
                '\\' => {
                    let n = probe.raw_char()?;
                    if n == '/' {
                        text.push('/');
                    } else {
                        text.push('\\');
                        text.push(n);
                    }
                }
                c => text.push(c),
            }
        }
        *self = probe;
        Some(Token {
            tok: Tok::Regex,
            lit: text[1..].to_string(),
            line,
            ch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        parse_query(q).unwrap_err().to_string()
    }

    #[test]
    fn errors_are_worded_and_placed_as_influxdb() {
        assert_eq!(
            err("SELECT"),
            "found EOF, expected identifier, string, number, bool at line 1, char 8"
        );
        assert_eq!(
            err("SELECT *"),
            "found EOF, expected FROM at line 1, char 10"
        );
        assert_eq!(
            err("SELECT * FROM"),
            "found EOF, expected identifier at line 1, char 15"
        );
        assert_eq!(
            err("SELECT FROM m"),
            "found FROM, expected identifier, string, number, bool at line 1, char 8"
        );
        assert_eq!(
            err("blah"),
            "found blah, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1"
        );
        assert_eq!(
            err("SELECT * FROM m LIMIT x"),
            "found x, expected integer at line 1, char 23"
        );
        assert_eq!(
            err("SELECT a FROM m ORDER BY a"),
            "only ORDER BY time supported at this time at line 1, char 26"
        );
    }

    #[test]
    fn select_with_every_clause() {
        let q = "SELECT mean(\"v\") * 2 AS m, host FROM db..cpu, /mem.*/ WHERE time > now() - 1h AND (host =~ /a\\/b/ OR x != 'y') \
                 GROUP BY time(10m, 5m), host fill(previous) ORDER BY time DESC LIMIT 5 OFFSET 1 SLIMIT 2 SOFFSET 3 tz('UTC'); SHOW DATABASES";
        let stmts = parse_query(q).unwrap();
        assert_eq!(stmts.len(), 2);
        let Statement::Select(s) = &stmts[0] else {
            panic!()
        };
        assert_eq!(s.fields.len(), 2);
        assert_eq!(s.fields[0].alias.as_deref(), Some("m"));
        assert_eq!(
            s.from[0],
            Source::Measurement {
                db: Some("db".into()),
                name: "cpu".into()
            }
        );
        assert_eq!(
            s.from[1],
            Source::Regex {
                db: None,
                pattern: "mem.*".into()
            }
        );
        assert_eq!(s.group_time, Some((600_000_000_000, 300_000_000_000)));
        assert_eq!(s.group_tags, vec!["host".to_string()]);
        assert_eq!(s.fill, Fill::Previous);
        assert!(s.descending);
        assert_eq!(
            (s.limit, s.offset, s.slimit, s.soffset),
            (Some(5), Some(1), Some(2), Some(3))
        );
        assert_eq!(s.tz.as_deref(), Some("UTC"));
        let Some(Expr::Binary {
            op: BinOp::And,
            rhs,
            ..
        }) = &s.condition
        else {
            panic!()
        };
        let Expr::Paren(inner) = rhs.as_ref() else {
            panic!()
        };
        let Expr::Binary {
            op: BinOp::Or, lhs, ..
        } = inner.as_ref()
        else {
            panic!()
        };
        assert_eq!(
            **lhs,
            Expr::Binary {
                op: BinOp::RegexMatch,
                lhs: Box::new(Expr::Var {
                    name: "host".into(),
                    cast: None
                }),
                rhs: Box::new(Expr::Regex("a/b".into()))
            }
        );
        assert_eq!(stmts[1], Statement::ShowDatabases);
    }

    #[test]
    fn precedence_and_division() {
        let Statement::Select(s) = &parse_query("SELECT a + b * c / 2 FROM m").unwrap()[0] else {
            panic!()
        };
        let Expr::Binary {
            op: BinOp::Add,
            rhs,
            ..
        } = &s.fields[0].expr
        else {
            panic!()
        };
        assert!(matches!(rhs.as_ref(), Expr::Binary { op: BinOp::Div, .. }));
    }

    #[test]
    fn show_statements() {
        let s = parse_query("SHOW TAG VALUES FROM cpu WITH KEY IN (host, \"region\")").unwrap();
        assert_eq!(
            s[0],
            Statement::ShowTagValues {
                on: None,
                from: vec![Source::Measurement {
                    db: None,
                    name: "cpu".into()
                }],
                key: NameFilter::In(vec!["host".into(), "region".into()]),
                condition: None,
                limit: None,
                offset: None
            }
        );
        let s = parse_query("SHOW MEASUREMENTS WITH MEASUREMENT =~ /c.*/").unwrap();
        assert!(
            matches!(&s[0], Statement::ShowMeasurements { filter: Some(NameFilter::Regex(r)), .. } if r == "c.*")
        );
        let s = parse_query("SHOW MEASUREMENTS WITH MEASUREMENT =~ /c/ WHERE host = 'a' LIMIT 1")
            .unwrap();
        assert!(matches!(
            &s[0],
            Statement::ShowMeasurements {
                condition: Some(_),
                limit: Some(1),
                ..
            }
        ));
        assert_eq!(
            parse_query("create database x").unwrap()[0],
            Statement::CreateDatabase("x".into())
        );
        assert_eq!(
            parse_query("DROP MEASUREMENT \"m\"").unwrap()[0],
            Statement::DropMeasurement("m".into())
        );
    }

    #[test]
    fn subqueries() {
        let s = parse_query("SELECT max(m) FROM (SELECT mean(v) AS m FROM cpu GROUP BY time(1m))")
            .unwrap();
        let Statement::Select(s) = &s[0] else {
            panic!()
        };
        assert!(matches!(&s.from[0], Source::Subquery(_)));
    }
}
