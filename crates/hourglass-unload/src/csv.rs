//! UNLOAD's CSV dialect: fields separated by `field_delimiter` (default `,`), rows ended by
//! `\n`. A field holding the delimiter, `"`, the escape character (`escaped_by`, default `\`),
//! a newline or a carriage return, or an empty string, is quoted with `"`, and inside it `"` and
//! the escape character are preceded by the escape character. NULL is an empty unquoted field
//! (so NULL and `''` differ). Timestamps are `YYYY-MM-DD HH:MM:SS.fffffffff` (UTC), dates
//! `YYYY-MM-DD`, other values as Arrow displays them.

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use hourglass_core::{Error, Result};

/// Writes rows of batches as CSV text.
#[derive(Debug, Clone, Copy)]
pub struct CsvDialect {
    pub delimiter: char,
    pub escape: char,
}

const TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S%.9f";

impl CsvDialect {
    /// Appends one field.
    pub fn field(&self, value: Option<&str>, out: &mut String) {
        let Some(value) = value else {
            return;
        };
        let quote = value.is_empty()
            || value
                .chars()
                .any(|c| c == self.delimiter || c == self.escape || matches!(c, '"' | '\n' | '\r'));
        if !quote {
            out.push_str(value);
            return;
        }
        out.push('"');
        for c in value.chars() {
            if c == '"' || c == self.escape {
                out.push(self.escape);
            }
            out.push(c);
        }
        out.push('"');
    }

    /// The header line.
    pub fn header(&self, schema: &Schema, out: &mut String) {
        for (i, f) in schema.fields().iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            self.field(Some(f.name()), out);
        }
        out.push('\n');
    }

    /// Every row of `batch`.
    pub fn rows(&self, batch: &RecordBatch, out: &mut String) -> Result<()> {
        let options = FormatOptions::default()
            .with_null("")
            .with_timestamp_format(Some(TIMESTAMP))
            .with_timestamp_tz_format(Some(TIMESTAMP));
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::invalid(format!("UNLOAD cannot write a column as CSV: {e}")))?;
        let mut cell = String::new();
        for row in 0..batch.num_rows() {
            for (i, (column, formatter)) in batch.columns().iter().zip(&formatters).enumerate() {
                if i > 0 {
                    out.push(self.delimiter);
                }
                if column.is_null(row) {
                    continue;
                }
                cell.clear();
                use std::fmt::Write;
                write!(cell, "{}", formatter.value(row))
                    .map_err(|e| Error::internal(format!("formatting a CSV field: {e}")))?;
                self.field(Some(&cell), out);
            }
            out.push('\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};

    use super::*;

    #[test]
    fn escaping() {
        let d = CsvDialect {
            delimiter: ',',
            escape: '\\',
        };
        let f = |v: Option<&str>| {
            let mut s = String::new();
            d.field(v, &mut s);
            s
        };
        assert_eq!(f(Some("plain")), "plain");
        assert_eq!(f(Some("a,b")), "\"a,b\"");
        assert_eq!(f(Some("say \"hi\"")), "\"say \\\"hi\\\"\"");
        assert_eq!(f(Some("back\\slash")), "\"back\\\\slash\"");
        assert_eq!(f(Some("two\nlines")), "\"two\nlines\"");
        assert_eq!(f(Some("")), "\"\"");
        assert_eq!(f(None), "");
        let pipe = CsvDialect {
            delimiter: '|',
            escape: '~',
        };
        let mut s = String::new();
        pipe.field(Some("a,b|c~d"), &mut s);
        assert_eq!(s, "\"a,b|c~~d\"");
    }

    #[test]
    fn rows_and_header() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("v", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("a,1"), None])) as ArrayRef,
                Arc::new(TimestampNanosecondArray::from(vec![
                    1,
                    1_700_000_000_123_456_789,
                ])),
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
                Arc::new(Int64Array::from(vec![None, Some(-7)])),
            ],
        )
        .unwrap();
        let d = CsvDialect {
            delimiter: ',',
            escape: '\\',
        };
        let mut out = String::new();
        d.header(&schema, &mut out);
        d.rows(&batch, &mut out).unwrap();
        assert_eq!(
            out,
            "host,time,v,n\n\"a,1\",1970-01-01 00:00:00.000000001,1.5,\n,2023-11-14 22:13:20.123456789,,-7\n"
        );
    }
}
