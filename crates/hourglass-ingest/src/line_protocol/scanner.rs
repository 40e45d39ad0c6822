//! Tokenizing of one line: measurement, tags, fields and timestamp, with escapes.
//!
//! [`scan_line`] indexes the delimiters of a line ([`Delimiters`]), walks from delimiter to
//! delimiter and fills a reusable [`ScannedLine`] with [`Text`] spans of the line (or of a
//! per-line buffer for tokens that had escapes) and parsed field values; or it returns a message
//! saying what was expected at which 1-based byte column. It knows nothing about tables or types.
//!
//! The line is checked for UTF-8 once. A line that fails can never be accepted (every byte of
//! it is in a name, a value or a delimiter), so it is scanned in a slow mode that checks
//! each token and names the one holding the bad bytes.

use super::delimiters::Delimiters;
use super::escape::{unescape_into, Escapes};
use super::values::{parse_signed, parse_unquoted, FieldValue};

/// Set in [`Text::start`] when the span is in [`ScannedLine`]'s unescape buffer, not the line.
const UNESCAPED: usize = 1 << (usize::BITS - 1);

/// A span of text of the scanned line: in the line itself, or in the unescape buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Text {
    start: usize,
    end: usize,
}

/// The tokens of one line, reused from line to line (cleared by [`scan_line`]).
#[derive(Debug, Default)]
pub(crate) struct ScannedLine<'a> {
    /// The line, when it is valid UTF-8 (always, once [`scan_line`] succeeded).
    text: &'a str,
    /// Unescaped copies of the tokens that had escapes.
    unescaped: String,
    pub measurement: Text,
    /// (key, value) of each tag, in line order.
    pub tags: Vec<(Text, Text)>,
    /// (key, value) of each field, in line order.
    pub fields: Vec<(Text, FieldValue)>,
    /// The texts of string field values ([`FieldValue::String`] holds an index into it).
    strings: Vec<Text>,
    /// The raw timestamp in the request's precision and its 1-based column.
    pub timestamp: Option<(i64, usize)>,
    delimiters: Delimiters,
}

impl ScannedLine<'_> {
    /// The text of a span of this line ("" for a span of another line).
    #[inline]
    pub fn str(&self, t: Text) -> &str {
        let s = if t.start & UNESCAPED != 0 {
            self.unescaped.get(t.start & !UNESCAPED..t.end)
        } else {
            self.text.get(t.start..t.end)
        };
        s.unwrap_or_default()
    }

    /// The text of string value number `i` of this line.
    #[inline]
    pub fn string(&self, i: usize) -> &str {
        self.strings.get(i).map_or("", |&t| self.str(t))
    }

    pub fn measurement(&self) -> &str {
        self.str(self.measurement)
    }
}

const SPACE: u8 = 1;
const COMMA: u8 = 2;
const EQUALS: u8 = 4;
const BACKSLASH: u8 = 8;
const QUOTE: u8 = 16;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = SPACE;
    t[b'\t' as usize] = SPACE;
    t[b',' as usize] = COMMA;
    t[b'=' as usize] = EQUALS;
    t[b'\\' as usize] = BACKSLASH;
    t[b'"' as usize] = QUOTE;
    t
};

#[inline]
fn class(c: u8) -> u8 {
    CLASS[usize::from(c)]
}

#[inline]
fn skip_spaces(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .map_or(b.len(), |p| i + p)
}

/// The end of a name token starting at `i`: the first byte of a class in `stop` that does not
/// directly follow a backslash (InfluxDB 1.x's rule: a delimiter preceded by a backslash is
/// escaped, whatever precedes that backslash, so `a\\ b` is one token). Also says whether the
/// token contains a backslash.
#[inline]
fn scan_token(d: &Delimiters, b: &[u8], mut i: usize, stop: u8) -> (usize, bool) {
    let mut escaped = false;
    loop {
        i = d.next(i);
        let Some(&c) = b.get(i) else {
            return (b.len(), escaped);
        };
        let k = class(c);
        // Backslashes are indexed whenever the line has one, so `escaped` is set before any
        // escaped delimiter is reached; the token's first byte never follows a backslash.
        if k & stop != 0 && !(escaped && b[i - 1] == b'\\') {
            return (i, escaped);
        }
        escaped |= k & BACKSLASH != 0;
        i += 1;
    }
}

/// The end of an unquoted value or timestamp (no escapes there).
#[inline]
fn scan_plain(d: &Delimiters, b: &[u8], mut i: usize, stop: u8) -> usize {
    loop {
        i = d.next(i);
        match b.get(i) {
            Some(&c) if class(c) & stop == 0 => i += 1,
            _ => return i.min(b.len()),
        }
    }
}

/// The closing quote of a string whose text starts at `i`, and whether the text has backslashes.
fn closing_quote(d: &Delimiters, b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        i = d.next(i);
        match *b.get(i)? {
            b'"' => return Some((i, escaped)),
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
}

/// The line's bytes and text, and the unescape buffer; in slow mode (`text` is `None`) each
/// token is checked for UTF-8 on its own.
struct Scanner<'a, 'o> {
    bytes: &'a [u8],
    text: Option<&'a str>,
    unescaped: &'o mut String,
    /// Whether the line may hold control characters ([`Delimiters::may_have_controls`]).
    controls: bool,
}

impl Scanner<'_, '_> {
    /// The span `start..end`, unescaped if `escaped` says it may need it; `what` names the token
    /// in the error for invalid UTF-8.
    #[inline]
    fn text(
        &mut self,
        start: usize,
        end: usize,
        escaped: bool,
        escapes: Escapes,
        what: impl FnOnce(&Self) -> String,
    ) -> Result<Text, String> {
        let raw = match self.text {
            Some(_) if !escaped => return Ok(Text { start, end }),
            // Tokens start and end next to ASCII delimiters, so this is a char boundary.
            Some(text) => text.get(start..end),
            None => None,
        };
        let bytes = self.bytes;
        let raw = match raw {
            Some(raw) => raw,
            None => match std::str::from_utf8(&bytes[start..end]) {
                Ok(raw) => raw,
                Err(e) => {
                    return Err(format!(
                        "invalid UTF-8 in {} at column {}",
                        what(self),
                        start + e.valid_up_to() + 1
                    ))
                }
            },
        };
        let at = self.unescaped.len();
        if escaped && unescape_into(raw, escapes, self.unescaped) {
            Ok(Text {
                start: at | UNESCAPED,
                end: self.unescaped.len(),
            })
        } else {
            Ok(Text { start, end })
        }
    }

    /// Rejects a name token (measurement, tag key or value, field key) `start..end` that holds a
    /// control character (`char::is_control`: U+0000–U+001F, U+007F–U+009F), naming it with
    /// `what`. Call after [`Self::text`] accepted the token (so it is valid UTF-8).
    #[inline]
    fn no_controls(
        &self,
        start: usize,
        end: usize,
        what: impl FnOnce(&Self) -> String,
    ) -> Result<(), String> {
        if !self.controls {
            return Ok(());
        }
        // Unescaping only removes backslashes, so the raw token holds the same controls.
        let raw = String::from_utf8_lossy(&self.bytes[start..end]);
        match raw.char_indices().find(|&(_, c)| c.is_control()) {
            None => Ok(()),
            Some((at, c)) => Err(format!(
                "control character U+{:04X} in {} at column {}",
                u32::from(c),
                what(self),
                start + at + 1
            )),
        }
    }

    /// The text of a span made by [`Self::text`], for error messages.
    fn show(&self, t: Text) -> String {
        if t.start & UNESCAPED != 0 {
            self.unescaped
                .get(t.start & !UNESCAPED..t.end)
                .unwrap_or_default()
                .to_owned()
        } else {
            String::from_utf8_lossy(&self.bytes[t.start..t.end]).into_owned()
        }
    }
}

/// Scans one line (without its line ending) into `out`. The line must not be blank or a comment.
/// `text` is the line as text when the caller already knows it is valid UTF-8.
///
/// With `known_series_end`, the measurement and tags end at that byte (the first space) and are
/// already known to the caller: they are not scanned, and `out` gets no measurement and no tags.
pub(crate) fn scan_line<'a>(
    line: &'a [u8],
    text: Option<&'a str>,
    known_series_end: Option<usize>,
    out: &mut ScannedLine<'a>,
) -> Result<(), String> {
    out.tags.clear();
    out.fields.clear();
    out.strings.clear();
    out.unescaped.clear();
    out.timestamp = None;
    out.measurement = Text::default();
    out.delimiters
        .index_from(line, known_series_end.unwrap_or(0));
    let text = text.map_or_else(|| std::str::from_utf8(line), Ok);
    out.text = text.unwrap_or_default();
    let mut scanner = Scanner {
        bytes: line,
        text: text.ok(),
        unescaped: &mut out.unescaped,
        controls: out.delimiters.may_have_controls(),
    };
    let fields_from = match known_series_end {
        Some(end) => end,
        None => {
            let (measurement, end) = scan_series(&mut scanner, &out.delimiters, &mut out.tags)?;
            out.measurement = measurement;
            end
        }
    };
    out.timestamp = scan_fields(
        &mut scanner,
        &out.delimiters,
        fields_from,
        &mut out.fields,
        &mut out.strings,
    )?;
    match text {
        Ok(_) => Ok(()),
        // Not reachable: slow mode found the bad token above. Rejected all the same.
        Err(e) => Err(format!("invalid UTF-8 at column {}", e.valid_up_to() + 1)),
    }
}

/// The measurement and tags: the measurement's text and where the tags end.
fn scan_series(
    sc: &mut Scanner<'_, '_>,
    d: &Delimiters,
    tags: &mut Vec<(Text, Text)>,
) -> Result<(Text, usize), String> {
    let b = sc.bytes;

    // Measurement.
    let start = skip_spaces(b, 0);
    let (end, escaped) = scan_token(d, b, start, SPACE | COMMA);
    if end == start {
        return Err(format!("empty measurement name at column {}", start + 1));
    }
    let measurement = sc.text(start, end, escaped, Escapes::Measurement, |_| {
        "the measurement name".to_owned()
    })?;
    sc.no_controls(start, end, |_| "the measurement name".to_owned())?;

    // Tags.
    let mut i = end;
    while b.get(i) == Some(&b',') {
        let ks = i + 1;
        let (ke, escaped) = scan_token(d, b, ks, SPACE | COMMA | EQUALS);
        if ke == ks {
            return Err(if b.get(ks) == Some(&b'=') {
                format!("empty tag key at column {}", ks + 1)
            } else {
                format!("expected a tag key after ',' at column {}", ks + 1)
            });
        }
        let key = sc.text(ks, ke, escaped, Escapes::Key, |_| "a tag key".to_owned())?;
        sc.no_controls(ks, ke, |_| "a tag key".to_owned())?;
        if b.get(ke) != Some(&b'=') {
            return Err(format!(
                "expected '=' after tag key '{}' at column {}",
                sc.show(key),
                ke + 1
            ));
        }
        let vs = ke + 1;
        let (ve, escaped) = scan_token(d, b, vs, SPACE | COMMA | EQUALS);
        if ve == vs {
            return Err(format!(
                "empty value for tag '{}' at column {}",
                sc.show(key),
                vs + 1
            ));
        }
        if b.get(ve) == Some(&b'=') {
            return Err(format!(
                "unescaped '=' in the value of tag '{}' at column {} (write it as '\\=')",
                sc.show(key),
                ve + 1
            ));
        }
        let value = sc.text(vs, ve, escaped, Escapes::Key, |sc| {
            format!("the value of tag '{}'", sc.show(key))
        })?;
        sc.no_controls(vs, ve, |sc| format!("the value of tag '{}'", sc.show(key)))?;
        tags.push((key, value));
        i = ve;
    }
    Ok((measurement, i))
}

/// The fields from byte `i` (the end of the tags) and the optional timestamp.
fn scan_fields(
    sc: &mut Scanner<'_, '_>,
    d: &Delimiters,
    mut i: usize,
    fields: &mut Vec<(Text, FieldValue)>,
    strings: &mut Vec<Text>,
) -> Result<Option<(i64, usize)>, String> {
    let b = sc.bytes;
    // Fields: the loop ends at the end of the line or at the space before the timestamp.
    i = skip_spaces(b, i);
    if i >= b.len() {
        return Err(format!(
            "missing fields at column {}: expected at least one field=value after the \
             measurement and tags",
            i + 1
        ));
    }
    loop {
        let ks = i;
        let (ke, escaped) = scan_token(d, b, ks, SPACE | COMMA | EQUALS);
        if ke == ks {
            return Err(if b.get(ks) == Some(&b'=') {
                format!("empty field key at column {}", ks + 1)
            } else {
                format!("expected a field key at column {}", ks + 1)
            });
        }
        let key = sc.text(ks, ke, escaped, Escapes::Key, |_| "a field key".to_owned())?;
        sc.no_controls(ks, ke, |_| "a field key".to_owned())?;
        if b.get(ke) != Some(&b'=') {
            return Err(format!(
                "expected '=' after field key '{}' at column {}",
                sc.show(key),
                ke + 1
            ));
        }
        let vs = ke + 1;
        let (value, ve) = if b.get(vs) == Some(&b'"') {
            let Some((close, escaped)) = closing_quote(d, b, vs + 1) else {
                return Err(format!(
                    "unterminated string value of field '{}' starting at column {}",
                    sc.show(key),
                    vs + 1
                ));
            };
            let text = sc.text(vs + 1, close, escaped, Escapes::String, |sc| {
                format!("the string value of field '{}'", sc.show(key))
            })?;
            let ve = close + 1;
            if b.get(ve).is_some_and(|&c| class(c) & (SPACE | COMMA) == 0) {
                return Err(format!(
                    "expected ',' or a space after the string value of field '{}' at column {}",
                    sc.show(key),
                    ve + 1
                ));
            }
            strings.push(text);
            (FieldValue::String(strings.len() - 1), ve)
        } else {
            let ve = scan_plain(d, b, vs, SPACE | COMMA);
            if ve == vs {
                return Err(format!(
                    "missing value for field '{}' at column {}",
                    sc.show(key),
                    vs + 1
                ));
            }
            let raw = &b[vs..ve];
            let value = parse_unquoted(raw).map_err(|e| e.message(raw, &sc.show(key), vs + 1))?;
            (value, ve)
        };
        fields.push((key, value));
        i = ve;
        if b.get(i) == Some(&b',') {
            i += 1;
        } else {
            break;
        }
    }

    // Optional timestamp, optional trailing whitespace.
    let ts = skip_spaces(b, i);
    let mut timestamp = None;
    if ts < b.len() {
        let te = scan_plain(d, b, ts, SPACE);
        let raw = &b[ts..te];
        let time = parse_signed(raw).map_err(|e| timestamp_error(raw, ts + 1, e.is_some()))?;
        timestamp = Some((time, ts + 1));
        let rest = skip_spaces(b, te);
        if rest < b.len() {
            return Err(format!(
                "unexpected text '{}' after the timestamp at column {}",
                String::from_utf8_lossy(&b[rest..]),
                rest + 1
            ));
        }
    }
    Ok(timestamp)
}

fn timestamp_error(raw: &[u8], column: usize, out_of_range: bool) -> String {
    let text = String::from_utf8_lossy(raw);
    if out_of_range {
        format!("invalid timestamp '{text}' at column {column}: out of range for a 64-bit integer")
    } else if raw.contains(&b'=') {
        format!(
            "expected a timestamp at column {column} but found '{text}' \
             (separate fields with ',' and no spaces)"
        )
    } else {
        format!("invalid timestamp '{text}' at column {column}: expected an integer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(line: &str) -> Result<ScannedLine<'_>, String> {
        let mut out = ScannedLine::default();
        scan_line(line.as_bytes(), None, None, &mut out).map(|()| out)
    }

    fn tags<'a>(l: &'a ScannedLine<'_>) -> Vec<(&'a str, &'a str)> {
        l.tags.iter().map(|&(k, v)| (l.str(k), l.str(v))).collect()
    }

    /// A field value with its string resolved, for comparisons.
    #[derive(Debug, PartialEq)]
    enum V {
        F(f64),
        I(i64),
        U(u64),
        B(bool),
        S(String),
    }

    fn fields(l: &ScannedLine<'_>) -> Vec<(String, V)> {
        l.fields
            .iter()
            .map(|&(k, v)| {
                let v = match v {
                    FieldValue::Float(x) => V::F(x),
                    FieldValue::Integer(x) => V::I(x),
                    FieldValue::Unsigned(x) => V::U(x),
                    FieldValue::Boolean(x) => V::B(x),
                    FieldValue::String(i) => V::S(l.string(i).to_owned()),
                };
                (l.str(k).to_owned(), v)
            })
            .collect()
    }

    fn kv(k: &str, v: V) -> (String, V) {
        (k.to_owned(), v)
    }

    #[test]
    fn full_line_with_tags_fields_and_timestamp() {
        let l = scan("cpu,host=a,region=eu usage=1.5,n=3i,u=4u,ok=t,s=\"x y\" 1700").unwrap();
        assert_eq!(l.measurement(), "cpu");
        assert_eq!(tags(&l), [("host", "a"), ("region", "eu")]);
        assert_eq!(
            fields(&l),
            [
                kv("usage", V::F(1.5)),
                kv("n", V::I(3)),
                kv("u", V::U(4)),
                kv("ok", V::B(true)),
                kv("s", V::S("x y".into())),
            ]
        );
        assert_eq!(l.timestamp, Some((1700, 55)));
    }

    #[test]
    fn whitespace_runs_tabs_and_trailing_whitespace() {
        let l = scan(" \tm,t=1 \t f=1  \t -5 \t").unwrap();
        assert_eq!(l.measurement(), "m");
        assert_eq!(tags(&l), [("t", "1")]);
        assert_eq!(fields(&l), [kv("f", V::F(1.0))]);
        assert_eq!(l.timestamp, Some((-5, 18)));
        let l = scan("m f=1   ").unwrap();
        assert_eq!(l.timestamp, None);
    }

    #[test]
    fn escapes_in_every_position() {
        let l =
            scan(r#"my\ meas\,ure=x,t\ k\=y\,z=v\ 1\,2\=3 f\=k\,\ ey="q\"uo\\te\n",g=1"#).unwrap();
        assert_eq!(l.measurement(), "my meas,ure=x");
        assert_eq!(tags(&l), [("t k=y,z", "v 1,2=3")]);
        assert_eq!(
            fields(&l),
            [
                kv("f=k, ey", V::S(r#"q"uo\te\n"#.into())),
                kv("g", V::F(1.0))
            ]
        );
    }

    #[test]
    fn backslash_before_other_characters_is_literal() {
        let l = scan(r"m\x,t=C:\dir\\ 1,u=\\a\b f=1").unwrap();
        assert_eq!(l.measurement(), r"m\x");
        // A space after a backslash is escaped, whatever precedes the backslash.
        assert_eq!(tags(&l), [("t", r"C:\dir\ 1"), ("u", r"\\a\b")]);
    }

    #[test]
    fn strings_may_hold_separators_and_be_empty() {
        let l = scan(r#"m s="a, b=c d",e="" 5"#).unwrap();
        assert_eq!(
            fields(&l),
            [
                kv("s", V::S("a, b=c d".into())),
                kv("e", V::S(String::new()))
            ]
        );
        assert_eq!(l.timestamp, Some((5, 21)));
    }

    #[test]
    fn only_tokens_with_escapes_are_copied() {
        let l = scan(r#"m,t=v,u=a\,b f="s""#).unwrap();
        assert_eq!(l.unescaped, "a,b");
        assert_eq!(tags(&l), [("t", "v"), ("u", "a,b")]);
        let l = scan(r#"m,t=v f="s""#).unwrap();
        assert_eq!(l.unescaped, "");
    }

    #[test]
    fn scratch_is_reset_between_lines() {
        let mut out = ScannedLine::default();
        scan_line(br#"a\ b,t\ 1=x f="q\"" 5"#, None, None, &mut out).unwrap();
        scan_line(b"c g=1i", Some("c g=1i"), None, &mut out).unwrap();
        assert_eq!(out.measurement(), "c");
        assert!(out.tags.is_empty());
        assert_eq!(fields(&out), [kv("g", V::I(1))]);
        assert_eq!(out.timestamp, None);
        assert_eq!(out.unescaped, "");
    }

    #[test]
    fn syntax_errors_say_what_and_where() {
        let cases = [
            (",t=1 f=1", "empty measurement name at column 1"),
            ("  ,t=1 f=1", "empty measurement name at column 3"),
            ("cpu", "missing fields at column 4: expected at least one field=value after the measurement and tags"),
            ("cpu,host=a ", "missing fields at column 12: expected at least one field=value after the measurement and tags"),
            ("cpu,region=x,host y=1", "expected '=' after tag key 'host' at column 18"),
            ("cpu,host", "expected '=' after tag key 'host' at column 9"),
            ("cpu,=a f=1", "empty tag key at column 5"),
            ("cpu, f=1", "expected a tag key after ',' at column 5"),
            ("cpu,a= f=1", "empty value for tag 'a' at column 7"),
            ("cpu,a=b=c f=1", "unescaped '=' in the value of tag 'a' at column 8 (write it as '\\=')"),
            ("cpu =1", "empty field key at column 5"),
            ("cpu f=1,", "expected a field key at column 9"),
            ("cpu f=1,,g=2", "expected a field key at column 9"),
            ("cpu f", "expected '=' after field key 'f' at column 6"),
            ("cpu f,g=1", "expected '=' after field key 'f' at column 6"),
            ("cpu f= 1", "missing value for field 'f' at column 7"),
            ("cpu f=", "missing value for field 'f' at column 7"),
            ("cpu f=\"abc", "unterminated string value of field 'f' starting at column 7"),
            ("cpu f=\"abc\\\"", "unterminated string value of field 'f' starting at column 7"),
            ("cpu f=\"a\"b", "expected ',' or a space after the string value of field 'f' at column 10"),
            ("cpu f=abc", "invalid value 'abc' for field 'f' at column 7: expected a number, a boolean or a double-quoted string"),
            ("cpu f=1.2.3", "invalid number '1.2.3' for field 'f' at column 7"),
            ("cpu f=truth", "invalid boolean 'truth' for field 'f' at column 7: expected t, T, true, True, TRUE, f, F, false, False or FALSE"),
            ("cpu f=NaN", "invalid number 'NaN' for field 'f' at column 7: NaN and infinity are not supported"),
            ("cpu f=1 12x", "invalid timestamp '12x' at column 9: expected an integer"),
            ("cpu f=1 1.5", "invalid timestamp '1.5' at column 9: expected an integer"),
            ("cpu f=1 99999999999999999999", "invalid timestamp '99999999999999999999' at column 9: out of range for a 64-bit integer"),
            ("cpu f=1 g=2", "expected a timestamp at column 9 but found 'g=2' (separate fields with ',' and no spaces)"),
            ("cpu f=1 10 20", "unexpected text '20' after the timestamp at column 12"),
        ];
        for (line, want) in cases {
            assert_eq!(scan(line).err().as_deref(), Some(want), "line {line:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_named() {
        let cases: [(&[u8], &str); 5] = [
            (
                b"c\xffpu f=1",
                "invalid UTF-8 in the measurement name at column 2",
            ),
            (b"cpu,h\xc3=a f=1", "invalid UTF-8 in a tag key at column 6"),
            (
                b"cpu,host=a\xff f=1",
                "invalid UTF-8 in the value of tag 'host' at column 11",
            ),
            (b"cpu \xfe=1", "invalid UTF-8 in a field key at column 5"),
            (
                b"cpu f=\"ok\xe2\x82\" 1",
                "invalid UTF-8 in the string value of field 'f' at column 10",
            ),
        ];
        for (line, want) in cases {
            let mut out = ScannedLine::default();
            assert_eq!(
                scan_line(line, None, None, &mut out).err().as_deref(),
                Some(want)
            );
        }
        // Valid multi-byte text anywhere is fine.
        let l = scan("mé,tä=ü f\u{1F600}=\"日本\"").unwrap();
        assert_eq!(l.measurement(), "mé");
        assert_eq!(tags(&l), [("tä", "ü")]);
        assert_eq!(fields(&l), [kv("f\u{1F600}", V::S("日本".into()))]);
    }
}
