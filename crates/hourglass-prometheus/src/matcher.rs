//! Label matchers with Prometheus' semantics: a missing label has the value `""`, so `l=""`
//! selects series without `l`; regular expressions are RE2 and fully anchored (`^(?:re)$`).
//!
//! Prometheus compiles with Go's `regexp`; Hourglass with the `regex` crate, whose syntax is the
//! same RE2 family. Where the two differ, the pattern is rewritten to Go's meaning before
//! compiling: `\d`, `\w`, `\s` (and their negations) are ASCII classes in Go but Unicode classes
//! in Rust, `\b`/`\B` are ASCII word boundaries in Go, and octal escapes (`\123`) are allowed.

use hourglass_core::{Error, Result};
use regex::{Regex, RegexBuilder};
use regex_syntax::ast::{self, Ast, ClassPerlKind, ClassSetItem, Visitor};

use crate::proto::LabelMatcher;

/// Largest compiled regular expression (the regex crate's own default: bounds hostile patterns).
const REGEX_SIZE_LIMIT: usize = 10 << 20;

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher, ready to test values.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
    /// For `=~`/`!~`: the strings the pattern matches exactly, when it is a literal or an
    /// alternation of literals (`a|b|c`, as Grafana's multi-value variables produce).
    pub literals: Option<Vec<String>>,
}

impl Matcher {
    /// From the wire; an unknown type or an invalid regular expression is an error naming the
    /// matcher.
    pub fn from_proto(m: &LabelMatcher) -> Result<Matcher> {
        let op = match m.r#type {
            0 => MatchOp::Equal,
            1 => MatchOp::NotEqual,
            2 => MatchOp::Regex,
            3 => MatchOp::NotRegex,
            other => {
                return Err(Error::invalid(format!(
                    "label matcher on '{}' has unknown type {other} (0 EQ, 1 NEQ, 2 RE, 3 NRE)",
                    m.name
                )))
            }
        };
        Matcher::new(&m.name, op, &m.value)
    }

    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher> {
        let (regex, literals) = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                let translated = translate(value).map_err(|e| bad_regex(name, op, value, &e))?;
                let regex = RegexBuilder::new(&format!("^(?:{translated})$"))
                    .octal(true)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| bad_regex(name, op, value, &e.to_string()))?;
                (Some(regex), literal_alternatives(&translated))
            }
            _ => (None, None),
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
            literals,
        })
    }

    /// Whether a label value (`""` when the label is absent) matches.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // `new` always compiles a regex for these.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// The matcher as PromQL writes it, for messages.
    pub fn describe(&self) -> String {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        format!("{}{op}{:?}", self.name, self.value)
    }
}

fn bad_regex(name: &str, op: MatchOp, value: &str, error: &str) -> Error {
    let op = if op == MatchOp::Regex { "=~" } else { "!~" };
    Error::invalid(format!(
        "label matcher {name}{op}{value:?}: invalid regular expression: {error}"
    ))
}

/// Rewrites the places where Go's RE2 and Rust's regex read the same text differently (see the
/// module documentation).
pub fn translate(pattern: &str) -> std::result::Result<String, String> {
    let ast = ast::parse::ParserBuilder::new()
        .octal(true)
        .build()
        .parse(pattern)
        .map_err(|e| e.kind().to_string())?;
    let edits = ast::visit(&ast, PerlClasses(Vec::new())).map_err(|e: String| e)?;
    let mut out = pattern.to_string();
    // Spans do not overlap; apply from the end so earlier offsets stay valid.
    let mut edits = edits;
    edits.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
    for (start, end, text) in edits {
        out.replace_range(start..end, text);
    }
    Ok(out)
}

/// Collects (start, end, replacement) for every Perl class and word boundary.
struct PerlClasses(Vec<(usize, usize, &'static str)>);

fn perl(kind: &ClassPerlKind, negated: bool) -> &'static str {
    match (kind, negated) {
        (ClassPerlKind::Digit, false) => "[0-9]",
        (ClassPerlKind::Digit, true) => "[^0-9]",
        (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
        (ClassPerlKind::Space, false) => r"[\t\n\x0C\r ]",
        (ClassPerlKind::Space, true) => r"[^\t\n\x0C\r ]",
    }
}

impl Visitor for PerlClasses {
    type Output = Vec<(usize, usize, &'static str)>;
    type Err = String;

    fn finish(self) -> std::result::Result<Self::Output, String> {
        Ok(self.0)
    }

    fn visit_pre(&mut self, ast: &Ast) -> std::result::Result<(), String> {
        match ast {
            Ast::ClassPerl(c) => self.0.push((
                c.span.start.offset,
                c.span.end.offset,
                perl(&c.kind, c.negated),
            )),
            Ast::Assertion(a) => match a.kind {
                ast::AssertionKind::WordBoundary => {
                    self.0
                        .push((a.span.start.offset, a.span.end.offset, r"(?-u:\b)"))
                }
                ast::AssertionKind::NotWordBoundary => {
                    self.0
                        .push((a.span.start.offset, a.span.end.offset, r"(?-u:\B)"))
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> std::result::Result<(), String> {
        if let ClassSetItem::Perl(c) = item {
            // A nested class is a member of the enclosing one: `[a\d]` becomes `[a[0-9]]`.
            self.0.push((
                c.span.start.offset,
                c.span.end.offset,
                perl(&c.kind, c.negated),
            ));
        }
        Ok(())
    }
}

/// The exact strings a (translated) pattern matches, when it is a literal or an alternation of
/// non-empty literals; `None` otherwise.
fn literal_alternatives(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::{Hir, HirKind};
    let hir = regex_syntax::ParserBuilder::new()
        .octal(true)
        .build()
        .parse(pattern)
        .ok()?;
    fn literal(h: &Hir) -> Option<String> {
        match h.kind() {
            HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
            HirKind::Capture(c) => literal(&c.sub),
            _ => None,
        }
    }
    let hir = match hir.kind() {
        HirKind::Capture(c) => (*c.sub).clone(),
        _ => hir,
    };
    let out: Vec<String> = match hir.kind() {
        HirKind::Alternation(subs) => subs.iter().map(literal).collect::<Option<_>>()?,
        _ => vec![literal(&hir)?],
    };
    (!out.iter().any(String::is_empty)).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher::new(name, op, value).unwrap()
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let re = m("job", MatchOp::Regex, "api|web");
        assert!(re.matches("api") && re.matches("web"));
        assert!(!re.matches("apix") && !re.matches("xweb") && !re.matches(""));
        let nre = m("job", MatchOp::NotRegex, "a.*");
        assert!(!nre.matches("abc") && nre.matches("ba") && nre.matches(""));
        // `.` does not match a newline, as in Go without (?s).
        assert!(!m("l", MatchOp::Regex, ".*").matches("a\nb"));
    }

    #[test]
    fn empty_string_means_absent() {
        assert!(m("l", MatchOp::Equal, "").matches(""));
        assert!(!m("l", MatchOp::NotEqual, "").matches(""));
        assert!(m("l", MatchOp::NotEqual, "x").matches(""));
        assert!(m("l", MatchOp::Regex, ".*").matches(""));
        assert!(!m("l", MatchOp::Regex, ".+").matches(""));
    }

    #[test]
    fn perl_classes_and_boundaries_are_ascii_as_in_go() {
        // U+0663 ARABIC-INDIC DIGIT THREE is a Unicode digit, not a Go `\d`.
        assert!(!m("l", MatchOp::Regex, r"\d").matches("\u{663}"));
        assert!(m("l", MatchOp::Regex, r"\d+").matches("123"));
        assert!(m("l", MatchOp::Regex, r"\D").matches("\u{663}"));
        assert!(!m("l", MatchOp::Regex, r"\w").matches("é"));
        assert!(m("l", MatchOp::Regex, r"[a\d]+").matches("a1"));
        assert!(!m("l", MatchOp::Regex, r"[a\d]+").matches("a\u{663}"));
        assert!(m("l", MatchOp::Regex, r"[^\s]+").matches("ab"));
        assert!(!m("l", MatchOp::Regex, r"\s").matches("\u{a0}"));
        assert!(m("l", MatchOp::Regex, r".*\bx\b.*").matches("a x b"));
        // An escaped backslash followed by d is a literal, not a class.
        assert!(m("l", MatchOp::Regex, r"\\d").matches(r"\d"));
        assert!(m("l", MatchOp::Regex, r"\101").matches("A"));
    }

    #[test]
    fn bad_patterns_and_types_are_named() {
        let e = Matcher::new("job", MatchOp::Regex, "a(").unwrap_err();
        assert!(
            e.message.contains("job=~\"a(\"") && e.message.contains("invalid regular"),
            "{}",
            e.message
        );
        let e = Matcher::from_proto(&LabelMatcher {
            r#type: 7,
            name: "x".into(),
            value: String::new(),
        })
        .unwrap_err();
        assert!(e.message.contains("unknown type 7"), "{}", e.message);
    }

    #[test]
    fn literal_alternations_are_recognised() {
        assert_eq!(
            m("l", MatchOp::Regex, "foo|bar").literals,
            Some(vec!["foo".into(), "bar".into()])
        );
        assert_eq!(
            m("l", MatchOp::Regex, "foo").literals,
            Some(vec!["foo".into()])
        );
        assert_eq!(
            m("l", MatchOp::Regex, "(foo|bar)").literals,
            Some(vec!["foo".into(), "bar".into()])
        );
        assert_eq!(m("l", MatchOp::Regex, "fo.").literals, None);
        assert_eq!(m("l", MatchOp::Regex, "foo|").literals, None);
        assert_eq!(m("l", MatchOp::Regex, "(?i)foo").literals, None);
    }
}
