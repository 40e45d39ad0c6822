//! Backslash unescaping of measurement names, tag keys and values, field keys and string values.
//!
//! The scanner finds where name tokens end (a delimiter not directly after a backslash); these
//! functions then remove each backslash that directly precedes a character it escapes in that
//! position and keep every other backslash as written (InfluxDB 1.x's rule: "a backslash before
//! any other character is kept literally"). In names `\\` is not an escape: `a\\,b` is `a\,b`,
//! the last backslash escaping the comma. In string values `\\` and `\"` are pairs. A token
//! without escapes is returned borrowed, so the common case does not allocate.

use memchr::memchr;

/// Which backslash pairs are escapes in a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escapes {
    /// Measurement names: `\,` and `\ `.
    Measurement,
    /// Tag keys, tag values and field keys: `\,`, `\=` and `\ `.
    Key,
    /// String field values (the text between the quotes): `\"` and `\\`.
    String,
}

impl Escapes {
    #[inline]
    fn escapable(self, c: u8) -> bool {
        match self {
            Escapes::Measurement => matches!(c, b',' | b' '),
            Escapes::Key => matches!(c, b',' | b'=' | b' '),
            Escapes::String => matches!(c, b'"' | b'\\'),
        }
    }
}

/// Appends `s` unescaped to `out` and returns true, or returns false (appending nothing) when
/// `s` has no escape pair, so the caller can keep borrowing `s` itself.
pub(crate) fn unescape_into(s: &str, escapes: Escapes, out: &mut String) -> bool {
    let b = s.as_bytes();
    // `s[copied..]` is not yet in `out`; `copied` is always just after an ASCII backslash (or 0),
    // and every backslash position is a char boundary, so the slices below cannot split a char.
    let mut copied = 0;
    let mut found = false;
    let mut i = 0;
    while let Some(offset) = memchr(b'\\', &b[i..]) {
        let at = i + offset;
        match b.get(at + 1) {
            Some(&c) if escapes.escapable(c) => {
                if !found {
                    out.reserve(s.len());
                    found = true;
                }
                out.push_str(&s[copied..at]);
                copied = at + 1;
                i = at + 2;
            }
            // Not an escape: the backslash is kept, and the next byte may itself be a backslash
            // escaping what follows it (`\\,` is a backslash and a comma).
            Some(_) => i = at + 1,
            None => break,
        }
    }
    if found {
        out.push_str(&s[copied..]);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescape(s: &str, escapes: Escapes) -> String {
        let mut out = String::from("prefix:");
        if unescape_into(s, escapes, &mut out) {
            out.split_off(7)
        } else {
            assert_eq!(out, "prefix:");
            s.to_owned()
        }
    }
    fn unescape_measurement(s: &str) -> String {
        unescape(s, Escapes::Measurement)
    }
    fn unescape_key(s: &str) -> String {
        unescape(s, Escapes::Key)
    }
    fn unescape_string(s: &str) -> String {
        unescape(s, Escapes::String)
    }

    #[test]
    fn measurement_escapes_comma_and_space_only() {
        assert_eq!(unescape_measurement(r"a\,b\ c"), "a,b c");
        assert_eq!(unescape_measurement(r"a\=b"), r"a\=b");
        assert_eq!(unescape_measurement(r"a\\b"), r"a\\b");
        assert_eq!(unescape_measurement(r"end\"), r"end\");
    }

    #[test]
    fn keys_escape_comma_equals_space() {
        assert_eq!(unescape_key(r"a\,b\=c\ d"), "a,b=c d");
        assert_eq!(unescape_key(r"C:\path"), r"C:\path");
        assert_eq!(unescape_key(r"\\\,"), r"\\,");
        assert_eq!(unescape_key(r"a\é\,"), r"a\é,");
        assert_eq!(unescape_key(r#"q\""#), r#"q\""#);
    }

    #[test]
    fn strings_escape_quote_and_backslash() {
        assert_eq!(unescape_string(r#"say \"hi\""#), r#"say "hi""#);
        assert_eq!(unescape_string(r"a\\b"), r"a\b");
        assert_eq!(unescape_string(r"a\nb"), r"a\nb");
        assert_eq!(unescape_string(r"\\\\"), r"\\");
    }

    #[test]
    fn text_without_escapes_is_not_copied() {
        let mut out = String::new();
        assert!(!unescape_into("plain", Escapes::Key, &mut out));
        assert!(!unescape_into(r"back\slash", Escapes::Key, &mut out));
        assert!(!unescape_into(r"a\=b", Escapes::Measurement, &mut out));
        assert!(out.is_empty());
        assert!(unescape_into(r"a\,b", Escapes::Key, &mut out));
        assert_eq!(out, "a,b");
    }
}
