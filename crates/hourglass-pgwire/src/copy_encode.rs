//! The `COPY ... TO STDOUT` encoders: one row of values, already in PostgreSQL's text or binary
//! encoding (a `DataRow`'s body, as `arrow-pg` encodes it for the query path, so COPY sends what
//! the same query's `SELECT` would), written as a row of COPY's text, CSV or binary format.
//!
//! * text: values separated by the delimiter, `\N` (the NULL string) for NULL, and backslash,
//!   the delimiter and the control characters `\b \f \n \r \t \v` escaped (PostgreSQL's
//!   `CopyAttributeOutText`);
//! * CSV: a value is quoted when forced, when it holds the delimiter, the quote, `\r` or `\n`,
//!   or when it is the NULL string; inside quotes the quote and escape characters are escaped
//!   (PostgreSQL's `CopyAttributeOutCSV`);
//! * binary: the `PGCOPY\n\377\r\n\0` signature, flags and extension length before the first
//!   row, each row its field count then each field's length (-1 for NULL) and bytes, and a
//!   trailing -1.

use bytes::{BufMut, BytesMut};

/// The binary format's header: signature, flags (0: no OIDs), header extension length (0).
pub const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The binary format's trailer: a field count of -1.
pub const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// A COPY format with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    Text {
        delimiter: u8,
        null: Vec<u8>,
    },
    Csv {
        delimiter: u8,
        null: Vec<u8>,
        quote: u8,
        escape: u8,
        /// Per column: whether its non-NULL values are always quoted.
        force_quote: Vec<bool>,
    },
    Binary,
}

/// The fields of a `DataRow` body: per field, its length (`-1`: NULL) and bytes.
pub fn fields(data: &[u8]) -> Result<Vec<Option<&[u8]>>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| "truncated row".to_string())?;
        let len = i32::from_be_bytes(*len);
        if len < 0 {
            out.push(None);
            rest = tail;
            continue;
        }
        let len = usize::try_from(len).map_err(|e| e.to_string())?;
        if tail.len() < len {
            return Err("truncated value".to_string());
        }
        let (value, tail) = tail.split_at(len);
        out.push(Some(value));
        rest = tail;
    }
    Ok(out)
}

impl Encoding {
    /// Writes one row. `data` is a `DataRow` body of `count` fields, encoded in text for the
    /// text and CSV formats, in binary for the binary format.
    pub fn row(&self, data: &[u8], count: i16, out: &mut BytesMut) -> Result<(), String> {
        match self {
            Encoding::Binary => {
                out.put_i16(count);
                out.put_slice(data);
            }
            Encoding::Text { .. } | Encoding::Csv { .. } => {
                let values = fields(data)?;
                self.line(values.into_iter(), false, out);
            }
        }
        Ok(())
    }

    /// Writes the header line of the text and CSV formats: the column names.
    pub fn header<'a>(&self, names: impl Iterator<Item = &'a str>, out: &mut BytesMut) {
        self.line(names.map(|n| Some(n.as_bytes())), true, out);
    }

    fn line<'a>(
        &self,
        values: impl Iterator<Item = Option<&'a [u8]>>,
        header: bool,
        out: &mut BytesMut,
    ) {
        let values: Vec<Option<&[u8]>> = values.collect();
        let single = values.len() == 1;
        for (i, value) in values.into_iter().enumerate() {
            match self {
                Encoding::Text { delimiter, null } => {
                    if i > 0 {
                        out.put_u8(*delimiter);
                    }
                    match value {
                        None => out.put_slice(null),
                        Some(v) => text_value(v, *delimiter, out),
                    }
                }
                Encoding::Csv {
                    delimiter,
                    null,
                    quote,
                    escape,
                    force_quote,
                } => {
                    if i > 0 {
                        out.put_u8(*delimiter);
                    }
                    match value {
                        None => out.put_slice(null),
                        Some(v) => {
                            let forced = !header && force_quote.get(i).copied().unwrap_or(false);
                            csv_value(v, *delimiter, null, *quote, *escape, forced, single, out)
                        }
                    }
                }
                Encoding::Binary => {}
            }
        }
        out.put_u8(b'\n');
    }
}

/// A value of the text format (PostgreSQL's `CopyAttributeOutText`).
fn text_value(v: &[u8], delimiter: u8, out: &mut BytesMut) {
    for &c in v {
        let escaped = match c {
            b'\\' => Some(b'\\'),
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x0b => Some(b'v'),
            c if c == delimiter => Some(c),
            _ => None,
        };
        match escaped {
            Some(e) => {
                out.put_u8(b'\\');
                out.put_u8(e);
            }
            None => out.put_u8(c),
        }
    }
}

/// A value of the CSV format (PostgreSQL's `CopyAttributeOutCSV`).
#[allow(clippy::too_many_arguments)]
fn csv_value(
    v: &[u8],
    delimiter: u8,
    null: &[u8],
    quote: u8,
    escape: u8,
    forced: bool,
    single: bool,
    out: &mut BytesMut,
) {
    let needs_quote = forced
        || v == null
        || (single && v == b"\\.")
        || v.iter()
            .any(|&c| c == delimiter || c == quote || c == b'\n' || c == b'\r');
    if !needs_quote {
        out.put_slice(v);
        return;
    }
    out.put_u8(quote);
    for &c in v {
        if c == quote || c == escape {
            out.put_u8(escape);
        }
        out.put_u8(c);
    }
    out.put_u8(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(values: &[Option<&str>]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            match v {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    out.extend_from_slice(v.as_bytes());
                }
            }
        }
        out
    }

    fn text() -> Encoding {
        Encoding::Text {
            delimiter: b'\t',
            null: b"\\N".to_vec(),
        }
    }

    fn csv(force: Vec<bool>) -> Encoding {
        Encoding::Csv {
            delimiter: b',',
            null: vec![],
            quote: b'"',
            escape: b'"',
            force_quote: force,
        }
    }

    #[test]
    fn text_escapes_like_postgres() {
        let mut out = BytesMut::new();
        let data = body(&[Some("a\tb\nc\\d\re"), None, Some(""), Some("\x08\x0c\x0b")]);
        text().row(&data, 4, &mut out).unwrap();
        assert_eq!(&out[..], b"a\\tb\\nc\\\\d\\re\t\\N\t\t\\b\\f\\v\n");
        let mut out = BytesMut::new();
        let pipe = Encoding::Text {
            delimiter: b'|',
            null: b"NULL".to_vec(),
        };
        pipe.row(&body(&[Some("a|b"), None]), 2, &mut out).unwrap();
        assert_eq!(&out[..], b"a\\|b|NULL\n");
    }

    #[test]
    fn csv_quotes_like_postgres() {
        let mut out = BytesMut::new();
        let data = body(&[
            Some("plain"),
            Some("a,b"),
            Some("say \"hi\""),
            Some("line\nbreak"),
            Some(""),
            None,
        ]);
        csv(vec![]).row(&data, 6, &mut out).unwrap();
        assert_eq!(
            &out[..],
            b"plain,\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",\"\",\n"
        );
        let mut out = BytesMut::new();
        csv(vec![true, false])
            .row(&body(&[Some("1"), None]), 2, &mut out)
            .unwrap();
        assert_eq!(&out[..], b"\"1\",\n");
        let mut out = BytesMut::new();
        let esc = Encoding::Csv {
            delimiter: b';',
            null: b"NULL".to_vec(),
            quote: b'\'',
            escape: b'\\',
            force_quote: vec![],
        };
        esc.row(&body(&[Some("it's"), Some("NULL"), None]), 3, &mut out)
            .unwrap();
        assert_eq!(&out[..], b"'it\\'s';'NULL';NULL\n");
        let mut out = BytesMut::new();
        csv(vec![true]).header(["a b", "c,d"].into_iter(), &mut out);
        assert_eq!(&out[..], b"a b,\"c,d\"\n");
    }

    #[test]
    fn binary_rows_carry_their_field_count() {
        let mut out = BytesMut::new();
        let data = body(&[Some("x"), None]);
        Encoding::Binary.row(&data, 2, &mut out).unwrap();
        assert_eq!(&out[..2], &[0, 2]);
        assert_eq!(&out[2..], &data[..]);
        assert_eq!(BINARY_HEADER.len(), 19);
    }
}
