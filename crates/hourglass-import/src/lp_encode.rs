//! A table's rows as line protocol, for `--server` (measurement = table, dimensions = tags,
//! measures = fields, nanosecond times). What line protocol cannot carry is refused: a
//! TIMESTAMP measure (no such field type) up front, and per row a measure name other than the
//! table's (line protocol's measure name is its measurement) or a row without any measure value.

use std::io::Write;

use arrow::array::{Array, AsArray, DictionaryArray, RecordBatch};
use arrow::datatypes::{
    DataType, Float64Type, Int32Type, Int64Type, TimestampNanosecondType, UInt64Type,
};
use hourglass_core::types::{column_role, ColumnRole};

/// Line protocol of a batch: the body, the source row of each line, and rows left out.
pub struct Encoded {
    pub body: Vec<u8>,
    pub sources: Vec<u32>,
    pub rejects: Vec<(u32, String)>,
}

fn escape_into(out: &mut Vec<u8>, s: &str, specials: &[u8]) {
    for &b in s.as_bytes() {
        if specials.contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Whether line protocol can carry a column of this type.
pub fn check_schema(batch: &RecordBatch, table: &str) -> anyhow::Result<()> {
    for f in batch.schema().fields() {
        if column_role(f) == ColumnRole::Measure
            && matches!(f.data_type(), DataType::Timestamp(_, _))
        {
            anyhow::bail!(
                "table '{table}': measure '{}' is a TIMESTAMP, which line protocol (--server) \
                 cannot carry: import into the data directory with --data-dir instead",
                f.name()
            );
        }
    }
    Ok(())
}

/// Encodes `batch` (a converted table batch) whose rows came from `sources`.
pub fn encode(table: &str, batch: &RecordBatch, sources: &[u32]) -> anyhow::Result<Encoded> {
    check_schema(batch, table)?;
    let schema = batch.schema();
    let n = batch.num_rows();
    let mut body = Vec::with_capacity(n * 64);
    let mut kept = Vec::with_capacity(n);
    let mut rejects = Vec::new();
    let mut measurement = Vec::new();
    escape_into(&mut measurement, table, b", ");
    let times = batch
        .column_by_name(hourglass_core::TIME_COLUMN)
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .ok_or_else(|| anyhow::anyhow!("no time column"))?;
    let mut names: Option<&DictionaryArray<Int32Type>> = None;
    let mut tags: Vec<(Vec<u8>, &DictionaryArray<Int32Type>)> = Vec::new();
    let mut fields: Vec<(Vec<u8>, &dyn Array)> = Vec::new();
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        let mut key = Vec::new();
        escape_into(&mut key, f.name(), b",= ");
        match column_role(f) {
            ColumnRole::Time => {}
            ColumnRole::MeasureName => names = c.as_dictionary_opt::<Int32Type>(),
            ColumnRole::Dimension => {
                if let Some(d) = c.as_dictionary_opt::<Int32Type>() {
                    tags.push((key, d));
                }
            }
            ColumnRole::Measure => fields.push((key, c.as_ref())),
        }
    }
    let mut row_start;
    'rows: for row in 0..n {
        let source = sources.get(row).copied().unwrap_or(row as u32 + 1);
        if let Some(names) = names {
            if names.is_valid(row) {
                let v = names
                    .values()
                    .as_string::<i32>()
                    .value(names.keys().value(row) as usize);
                if v != table {
                    rejects.push((
                        source,
                        format!(
                            "measure name '{v}' differs from the table name '{table}': line \
                             protocol (--server) cannot carry it; import with --data-dir"
                        ),
                    ));
                    continue;
                }
            }
        }
        row_start = body.len();
        body.extend_from_slice(&measurement);
        for (key, d) in &tags {
            if d.is_valid(row) {
                let v = d
                    .values()
                    .as_string::<i32>()
                    .value(d.keys().value(row) as usize);
                if v.is_empty() {
                    continue;
                }
                if v.contains(['\n', '\r']) {
                    body.truncate(row_start);
                    rejects.push((
                        source,
                        "a dimension value holds a line break, which line protocol cannot carry"
                            .into(),
                    ));
                    continue 'rows;
                }
                body.push(b',');
                body.extend_from_slice(key);
                body.push(b'=');
                escape_into(&mut body, v, b",= ");
            }
        }
        let mut first = true;
        for (key, c) in &fields {
            if c.is_null(row) {
                continue;
            }
            body.push(if first { b' ' } else { b',' });
            first = false;
            body.extend_from_slice(key);
            body.push(b'=');
            let _ = match c.data_type() {
                DataType::Float64 => {
                    let v = c.as_primitive::<Float64Type>().value(row);
                    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
                        write!(body, "{v:.1}")
                    } else {
                        write!(body, "{v:?}")
                    }
                }
                DataType::Int64 => write!(body, "{}i", c.as_primitive::<Int64Type>().value(row)),
                DataType::UInt64 => write!(body, "{}u", c.as_primitive::<UInt64Type>().value(row)),
                DataType::Boolean => {
                    body.extend_from_slice(if c.as_boolean().value(row) {
                        b"true"
                    } else {
                        b"false"
                    });
                    Ok(())
                }
                DataType::Utf8 => {
                    body.push(b'"');
                    escape_into(&mut body, c.as_string::<i32>().value(row), b"\"\\");
                    body.push(b'"');
                    Ok(())
                }
                other => anyhow::bail!("cannot write a {other} measure as line protocol"),
            };
        }
        if first {
            body.truncate(row_start);
            rejects.push((
                source,
                "the row has no measure values (line protocol needs one field)".into(),
            ));
            continue;
        }
        let _ = writeln!(body, " {}", times.value(row));
        kept.push(source);
    }
    Ok(Encoded {
        body,
        sources: kept,
        rejects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn rows_become_lines_and_what_lp_cannot_carry_is_rejected() {
        let dict = |v: Vec<Option<&str>>| -> ArrayRef {
            Arc::new(v.into_iter().collect::<DictionaryArray<Int32Type>>())
        };
        let schema = Arc::new(Schema::new(vec![
            hourglass_core::types::time_field().as_ref().clone(),
            Field::new(
                "measure_name",
                hourglass_core::types::dimension_arrow_type(),
                true,
            ),
            Field::new("host", hourglass_core::types::dimension_arrow_type(), true),
            Field::new("v", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![1, 2, 3])),
                dict(vec![Some("cpu"), Some("other"), Some("cpu")]),
                dict(vec![Some("a b"), None, None]),
                Arc::new(Float64Array::from(vec![Some(1.0), Some(2.5), None])),
                Arc::new(Int64Array::from(vec![Some(3), None, None])),
                Arc::new(StringArray::from(vec![Some("q\"x"), None, None])),
            ],
        )
        .unwrap();
        let e = encode("cpu", &batch, &[10, 11, 12]).unwrap();
        assert_eq!(
            String::from_utf8(e.body).unwrap(),
            "cpu,host=a\\ b v=1.0,n=3i,s=\"q\\\"x\" 1\n"
        );
        assert_eq!(e.sources, [10]);
        assert_eq!(e.rejects.len(), 2);
        assert_eq!(e.rejects[0].0, 11);
        assert!(e.rejects[1].1.contains("no measure values"));
    }
}
