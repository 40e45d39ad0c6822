//! CSV as batch load reads it: Timestream's `CsvConfiguration` (`ColumnSeparator`, `QuoteChar`,
//! `EscapeChar`, `NullValue`, `TrimWhiteSpace`) over the bytes of one object. Pure: no I/O.
//!
//! A record is one line, or several when a quoted field holds line breaks; its `line` is the
//! 1-based line it starts on (the header is line 1). A field is `None` when it is null: equal
//! to `NullValue` (after trimming when `TrimWhiteSpace`), or empty and unquoted when no
//! `NullValue` is set. The reader can start at a byte offset it reported earlier
//! ([`CsvReader::position`]), which is how a resumed task skips what it already wrote.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Timestream's `CsvConfiguration`, as a request carries it (every member optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CsvConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_separator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escape_char: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_char: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trim_white_space: Option<bool>,
}

/// The resolved settings of a [`CsvConfiguration`].
#[derive(Debug, Clone, PartialEq)]
pub struct CsvFormat {
    pub separator: u8,
    /// `None`: fields are never quoted.
    pub quote: Option<u8>,
    /// `None`: a quote inside a quoted field is written twice (`""`).
    pub escape: Option<u8>,
    pub null_value: Option<String>,
    pub trim: bool,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            separator: b',',
            quote: Some(b'"'),
            escape: None,
            null_value: None,
            trim: false,
        }
    }
}

fn one_char(value: &Option<String>, member: &str) -> Result<Option<u8>, String> {
    match value.as_deref() {
        None => Ok(None),
        Some(s) if s.len() == 1 && s.is_ascii() && s != "\n" && s != "\r" => {
            Ok(Some(s.as_bytes()[0]))
        }
        Some(s) => Err(format!(
            "CsvConfiguration.{member} '{s}' must be one ASCII character other than a line break"
        )),
    }
}

impl CsvConfiguration {
    /// From a request's `CsvConfiguration` value (absent or null: the defaults).
    pub fn from_value(value: Option<&Value>) -> Result<CsvConfiguration, String> {
        match value {
            None | Some(Value::Null) => Ok(CsvConfiguration::default()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("CsvConfiguration is not valid: {e}")),
        }
    }

    /// The settings, checked: single ASCII characters, and separator, quote and escape apart.
    pub fn format(&self) -> Result<CsvFormat, String> {
        let mut f = CsvFormat::default();
        if let Some(c) = one_char(&self.column_separator, "ColumnSeparator")? {
            f.separator = c;
        }
        if let Some(c) = one_char(&self.quote_char, "QuoteChar")? {
            f.quote = Some(c);
        }
        f.escape = one_char(&self.escape_char, "EscapeChar")?;
        if let Some(n) = &self.null_value {
            if n.len() > 256 {
                return Err("CsvConfiguration.NullValue is longer than 256 characters".into());
            }
            f.null_value = Some(n.clone());
        }
        f.trim = self.trim_white_space.unwrap_or(false);
        if Some(f.separator) == f.quote || Some(f.separator) == f.escape {
            return Err(
                "CsvConfiguration: ColumnSeparator must differ from QuoteChar and EscapeChar"
                    .into(),
            );
        }
        Ok(f)
    }
}

/// One record of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRecord {
    /// The line it starts on (1-based).
    pub line: u64,
    pub fields: Vec<Option<String>>,
}

/// A record that could not be read (its line and why); reading goes on at the next line.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvError {
    pub line: u64,
    pub reason: String,
}

/// Reads the records of one object's bytes.
pub struct CsvReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
    format: CsvFormat,
}

impl<'a> CsvReader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8], format: CsvFormat) -> Self {
        CsvReader {
            bytes,
            pos: 0,
            line: 1,
            format,
        }
    }

    /// A reader at `offset`, which is the start of line `line` (as [`CsvReader::position`]
    /// reported it).
    pub fn at(bytes: &'a [u8], format: CsvFormat, offset: usize, line: u64) -> Self {
        CsvReader {
            bytes,
            pos: offset.min(bytes.len()),
            line,
            format,
        }
    }

    /// `(byte offset, line)` of the next record.
    pub fn position(&self) -> (usize, u64) {
        (self.pos, self.line)
    }

    /// The next record; `None` at the end. Blank lines are skipped.
    pub fn next_record(&mut self) -> Option<Result<CsvRecord, CsvError>> {
        // Skip blank lines.
        loop {
            if self.pos >= self.bytes.len() {
                return None;
            }
            match self.bytes[self.pos] {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                }
                b'\r' if self.bytes.get(self.pos + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                }
                _ => break,
            }
        }
        let start_line = self.line;
        let mut fields: Vec<Option<String>> = Vec::new();
        let mut error: Option<String> = None;
        loop {
            let (field, end) = self.field();
            match field {
                Ok(f) => fields.push(f),
                Err(e) => {
                    error.get_or_insert(e);
                    fields.push(None);
                }
            }
            match end {
                FieldEnd::Separator => continue,
                FieldEnd::LineEnd | FieldEnd::Eof => break,
            }
        }
        Some(match error {
            Some(reason) => Err(CsvError {
                line: start_line,
                reason,
            }),
            None => Ok(CsvRecord {
                line: start_line,
                fields,
            }),
        })
    }

    /// One field from `pos`, and what ended it (the separator or line end is consumed).
    fn field(&mut self) -> (Result<Option<String>, String>, FieldEnd) {
        let f = &self.format;
        let mut out: Vec<u8> = Vec::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut error: Option<String> = None;
        // Leading white space before an opening quote.
        let mut look = self.pos;
        if f.trim {
            while look < self.bytes.len() && matches!(self.bytes[look], b' ' | b'\t') {
                look += 1;
            }
        }
        if f.quote.is_some() && self.bytes.get(look).copied() == f.quote {
            self.pos = look + 1;
            quoted = true;
            in_quotes = true;
        }
        let end = loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                if in_quotes {
                    error = Some("A quoted field is not closed before the end of the file.".into());
                }
                break FieldEnd::Eof;
            };
            if in_quotes {
                if Some(b) == f.escape && f.escape != f.quote {
                    match self.bytes.get(self.pos + 1) {
                        Some(&next) => {
                            out.push(next);
                            if next == b'\n' {
                                self.line += 1;
                            }
                            self.pos += 2;
                        }
                        None => self.pos += 1,
                    }
                    continue;
                }
                if Some(b) == f.quote {
                    if self.bytes.get(self.pos + 1).copied() == f.quote {
                        out.push(b);
                        self.pos += 2;
                        continue;
                    }
                    in_quotes = false;
                    self.pos += 1;
                    continue;
                }
                if b == b'\n' {
                    self.line += 1;
                }
                out.push(b);
                self.pos += 1;
                continue;
            }
            if b == f.separator {
                self.pos += 1;
                break FieldEnd::Separator;
            }
            if b == b'\n' {
                self.pos += 1;
                self.line += 1;
                break FieldEnd::LineEnd;
            }
            if b == b'\r' && self.bytes.get(self.pos + 1) == Some(&b'\n') {
                self.pos += 2;
                self.line += 1;
                break FieldEnd::LineEnd;
            }
            if Some(b) == f.escape {
                if let Some(&next) = self.bytes.get(self.pos + 1) {
                    if next != b'\n' {
                        out.push(next);
                        self.pos += 2;
                        continue;
                    }
                }
            }
            if quoted && !(f.trim && matches!(b, b' ' | b'\t')) && error.is_none() {
                error = Some("Characters follow the closing quote of a field.".into());
            }
            out.push(b);
            self.pos += 1;
        };
        if let Some(e) = error {
            return (Err(e), end);
        }
        let text = match String::from_utf8(out) {
            Ok(t) => t,
            Err(_) => return (Err("The row is not valid UTF-8.".into()), end),
        };
        let text = if f.trim {
            text.trim_matches([' ', '\t']).to_string()
        } else {
            text
        };
        let null = match &f.null_value {
            Some(n) => !quoted && text == *n,
            None => !quoted && text.is_empty(),
        };
        (Ok((!null).then_some(text)), end)
    }
}

enum FieldEnd {
    Separator,
    LineEnd,
    Eof,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8], format: CsvFormat) -> Vec<Result<CsvRecord, CsvError>> {
        let mut r = CsvReader::new(text, format);
        std::iter::from_fn(|| r.next_record()).collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn plain_quoted_and_multi_line_fields() {
        let rows = read(
            b"a,b,c\n1,\"x,y\",\"he said \"\"hi\"\"\"\n\n2,\"two\nlines\",\r\n3,,z",
            CsvFormat::default(),
        );
        assert_eq!(
            rows,
            vec![
                Ok(CsvRecord {
                    line: 1,
                    fields: vec![s("a"), s("b"), s("c")]
                }),
                Ok(CsvRecord {
                    line: 2,
                    fields: vec![s("1"), s("x,y"), s("he said \"hi\"")]
                }),
                Ok(CsvRecord {
                    line: 4,
                    fields: vec![s("2"), s("two\nlines"), None]
                }),
                Ok(CsvRecord {
                    line: 6,
                    fields: vec![s("3"), None, s("z")]
                }),
            ]
        );
    }

    #[test]
    fn configuration_separator_escape_null_and_trim() {
        let config = CsvConfiguration {
            column_separator: Some(";".into()),
            escape_char: Some("\\".into()),
            quote_char: Some("'".into()),
            null_value: Some("NULL".into()),
            trim_white_space: Some(true),
        };
        let f = config.format().unwrap();
        let rows = read(b" a ; 'b;c' ;NULL; x\\;y \n'it\\'s';''", f);
        assert_eq!(
            rows,
            vec![
                Ok(CsvRecord {
                    line: 1,
                    fields: vec![s("a"), s("b;c"), None, s("x;y")]
                }),
                Ok(CsvRecord {
                    line: 2,
                    fields: vec![s("it's"), s("")]
                }),
            ]
        );
        assert!(CsvConfiguration {
            column_separator: Some("ab".into()),
            ..Default::default()
        }
        .format()
        .is_err());
        assert!(CsvConfiguration {
            column_separator: Some("'".into()),
            quote_char: Some("'".into()),
            ..Default::default()
        }
        .format()
        .is_err());
        let parsed =
            CsvConfiguration::from_value(Some(&serde_json::json!({"ColumnSeparator": "|"})))
                .unwrap();
        assert_eq!(parsed.format().unwrap().separator, b'|');
    }

    #[test]
    fn bad_records_are_reported_by_line_and_reading_goes_on() {
        let rows = read(
            b"a,b\n\"x\"y,1\n2,\xff\n3,4\n\"open,5",
            CsvFormat::default(),
        );
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[1].as_ref().unwrap_err().line, 2);
        assert!(rows[1]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("closing quote"));
        assert!(rows[2].as_ref().unwrap_err().reason.contains("UTF-8"));
        assert_eq!(
            rows[3],
            Ok(CsvRecord {
                line: 4,
                fields: vec![s("3"), s("4")]
            })
        );
        assert!(rows[4].as_ref().unwrap_err().reason.contains("not closed"));
    }

    #[test]
    fn a_reader_resumes_at_a_reported_position() {
        let text = b"h\n1\n\"a\nb\"\n3\n";
        let mut r = CsvReader::new(text, CsvFormat::default());
        r.next_record();
        r.next_record();
        let (offset, line) = r.position();
        let mut again = CsvReader::at(text, CsvFormat::default(), offset, line);
        assert_eq!(
            again.next_record(),
            Some(Ok(CsvRecord {
                line: 3,
                fields: vec![s("a\nb")]
            }))
        );
        assert_eq!(
            again.next_record(),
            Some(Ok(CsvRecord {
                line: 5,
                fields: vec![s("3")]
            }))
        );
        assert_eq!(again.next_record(), None);
    }
}
