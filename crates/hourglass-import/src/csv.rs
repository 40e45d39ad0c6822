//! A CSV reader that keeps what Arrow's does not: whether a field was quoted, so an unquoted
//! empty field is NULL while `""` is the empty string (Timestream UNLOAD's CSV), and an escape
//! character inside quotes (`\"`, UNLOAD's default `escaped_by`). Rows come out as batches of
//! string columns with their line numbers; typing is `convert`'s job.

use std::io::BufRead;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};

use crate::options::CsvOptions;

/// Reads records.
pub struct CsvReader<R: BufRead> {
    input: R,
    options: CsvOptions,
    /// Lines read so far (the next record starts at `line + 1`).
    pub line: u64,
    /// Bytes read so far (of the decompressed text).
    pub bytes: u64,
    raw: Vec<u8>,
    /// The current record's fields: text and whether it was quoted.
    text: Vec<u8>,
    fields: Vec<(usize, usize, bool)>,
}

/// A batch of records.
pub struct CsvBatch {
    pub batch: RecordBatch,
    /// The line each row starts at.
    pub lines: Vec<u64>,
    /// Records with the wrong number of fields: (line, reason).
    pub bad: Vec<(u64, String)>,
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R, options: CsvOptions) -> Self {
        CsvReader {
            input,
            options,
            line: 0,
            bytes: 0,
            raw: Vec::new(),
            text: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Reads the next record; `Ok(None)` at the end. Blank lines are skipped.
    pub fn next_record(&mut self) -> std::io::Result<Option<u64>> {
        loop {
            self.raw.clear();
            let n = self.input.read_until(b'\n', &mut self.raw)?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            self.line += 1;
            let start = self.line;
            // A quoted field may hold newlines: read on until the quotes close.
            while !self.parse() {
                let n = self.input.read_until(b'\n', &mut self.raw)?;
                if n == 0 {
                    break;
                }
                self.bytes += n as u64;
                self.line += 1;
            }
            let blank = self.fields.len() == 1 && self.fields[0].1 == 0 && !self.fields[0].2;
            if !blank {
                return Ok(Some(start));
            }
        }
    }

    /// The fields of the current record as strings (`None`: NULL).
    pub fn field(&self, i: usize) -> Option<&str> {
        let &(start, end, quoted) = self.fields.get(i)?;
        let s = std::str::from_utf8(&self.text[start..end]).unwrap_or("\u{FFFD}");
        let s = if self.options.trim && !quoted {
            s.trim()
        } else {
            s
        };
        if !quoted && (s.is_empty() || self.options.null_value.as_deref() == Some(s)) {
            return None;
        }
        Some(s)
    }

    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// Splits `raw` into fields; false when it ends inside quotes.
    fn parse(&mut self) -> bool {
        let o = &self.options;
        self.text.clear();
        self.fields.clear();
        let mut raw: &[u8] = &self.raw;
        if let Some(r) = raw.strip_suffix(b"\n") {
            raw = r.strip_suffix(b"\r").unwrap_or(r);
        }
        let mut i = 0;
        let mut start = 0;
        let mut quoted = false;
        let mut in_quotes = false;
        while i < raw.len() {
            let b = raw[i];
            if in_quotes {
                if Some(b) == o.escape && o.escape != Some(o.quote) && i + 1 < raw.len() {
                    self.text.push(raw[i + 1]);
                    i += 2;
                    continue;
                }
                if b == o.quote {
                    if i + 1 < raw.len() && raw[i + 1] == o.quote {
                        self.text.push(o.quote);
                        i += 2;
                        continue;
                    }
                    in_quotes = false;
                    i += 1;
                    continue;
                }
                self.text.push(b);
                i += 1;
                continue;
            }
            if b == o.delimiter {
                self.fields.push((start, self.text.len(), quoted));
                start = self.text.len();
                quoted = false;
            } else if b == o.quote && self.text.len() == start && !quoted {
                quoted = true;
                in_quotes = true;
            } else {
                self.text.push(b);
            }
            i += 1;
        }
        if in_quotes {
            return false;
        }
        self.fields.push((start, self.text.len(), quoted));
        true
    }

    /// Reads up to `rows` records into string columns named `names`.
    pub fn read_batch(
        &mut self,
        names: &[String],
        rows: usize,
    ) -> std::io::Result<Option<CsvBatch>> {
        let mut builders: Vec<StringBuilder> = names.iter().map(|_| StringBuilder::new()).collect();
        let mut lines = Vec::new();
        let mut bad = Vec::new();
        while lines.len() < rows {
            let Some(line) = self.next_record()? else {
                break;
            };
            if self.field_count() != names.len() {
                bad.push((
                    line,
                    format!(
                        "expected {} fields ({}), found {}",
                        names.len(),
                        names.join(","),
                        self.field_count()
                    ),
                ));
                if bad.len() >= rows {
                    break;
                }
                continue;
            }
            for (i, b) in builders.iter_mut().enumerate() {
                b.append_option(self.field(i));
            }
            lines.push(line);
        }
        if lines.is_empty() && bad.is_empty() {
            return Ok(None);
        }
        let schema = Arc::new(Schema::new(
            names
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let arrays: Vec<ArrayRef> = builders
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(schema, arrays).map_err(std::io::Error::other)?;
        Ok(Some(CsvBatch { batch, lines, bad }))
    }

    /// The fields of the current record, owned (for a header).
    pub fn record(&self) -> Vec<String> {
        (0..self.fields.len())
            .map(|i| {
                let (s, e, _) = self.fields[i];
                String::from_utf8_lossy(&self.text[s..e]).into_owned()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn unload_dialect_null_empty_escapes_and_newlines() {
        let text = "a,\"\",,\"say \\\"hi\\\", x\"\nb,\"two\nlines\",3,4\n\nc,1\n";
        let options = CsvOptions {
            escape: Some(b'\\'),
            header: false,
            ..Default::default()
        };
        let mut r = CsvReader::new(text.as_bytes(), options);
        let names: Vec<String> = ["w", "x", "y", "z"].iter().map(|s| s.to_string()).collect();
        let b = r.read_batch(&names, 100).unwrap().unwrap();
        assert_eq!(b.lines, [1, 2]);
        assert_eq!(
            b.bad,
            [(5, "expected 4 fields (w,x,y,z), found 2".to_string())]
        );
        let x = b.batch.column(1).as_string::<i32>();
        assert_eq!(x.value(0), "");
        assert!(x.is_valid(0));
        assert_eq!(x.value(1), "two\nlines");
        let y = b.batch.column(2).as_string::<i32>();
        assert!(y.is_null(0));
        let z = b.batch.column(3).as_string::<i32>();
        assert_eq!(z.value(0), "say \"hi\", x");
    }

    #[test]
    fn rfc4180_doubled_quotes() {
        let mut r = CsvReader::new("\"a\"\"b\",c\r\n".as_bytes(), CsvOptions::default());
        r.next_record().unwrap();
        assert_eq!(r.record(), ["a\"b", "c"]);
    }
}
