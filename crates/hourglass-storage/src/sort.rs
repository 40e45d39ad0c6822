//! Sorting rows by series then time, and resolving duplicate records.
//!
//! Parquet files are written sorted by (dimensions, measure_name, time) so that row-group
//! statistics prune well and each series is contiguous. Rows with the same series and time are one
//! record written several times: the later write wins field by field (line protocol semantics: a
//! field the later write does not name keeps its earlier value). Input order is write order.

use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::SchemaRef;
use hourglass_core::{column_role, ColumnRole, Error, Result};

/// Sorts `batch` by its series columns then `time` (stable), and when `dedup` is set merges
/// rows with equal series and time, the later row's non-NULL measures winning.
pub fn sort_and_dedup(batch: &RecordBatch, dedup: bool) -> Result<RecordBatch> {
    let n = batch.num_rows();
    if n == 0 {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let key_indices = key_column_indices(&schema);
    let fields = key_indices
        .iter()
        .map(|&i| SortField::new(schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields).map_err(internal)?;
    let key_columns: Vec<ArrayRef> = key_indices
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    let rows = converter.convert_columns(&key_columns).map_err(internal)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));

    let sorted_already = order.iter().enumerate().all(|(i, &v)| i as u32 == v);
    if !dedup {
        return if sorted_already {
            Ok(batch.clone())
        } else {
            take_all(batch, &UInt32Array::from(order))
        };
    }

    // Group boundaries over equal keys.
    let mut group_starts = Vec::with_capacity(n);
    for (pos, &row) in order.iter().enumerate() {
        if pos == 0 || rows.row(order[pos - 1] as usize) != rows.row(row as usize) {
            group_starts.push(pos);
        }
    }
    if group_starts.len() == n {
        return if sorted_already {
            Ok(batch.clone())
        } else {
            take_all(batch, &UInt32Array::from(order))
        };
    }
    let group_end = |g: usize| group_starts.get(g + 1).copied().unwrap_or(n);
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let is_measure = column_role(field) == ColumnRole::Measure;
            let indices: UInt32Array = (0..group_starts.len())
                .map(|g| {
                    let members = &order[group_starts[g]..group_end(g)];
                    let last = members[members.len() - 1];
                    if is_measure {
                        members
                            .iter()
                            .rev()
                            .copied()
                            .find(|&r| column.is_valid(r as usize))
                            .unwrap_or(last)
                    } else {
                        last
                    }
                })
                .collect();
            arrow_select::take::take(column.as_ref(), &indices, None).map_err(internal)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema, columns).map_err(internal)
}

/// Series columns (dimensions and `measure_name`, in schema order) followed by `time`.
pub fn key_column_indices(schema: &SchemaRef) -> Vec<usize> {
    let mut keys: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            matches!(
                column_role(f),
                ColumnRole::Dimension | ColumnRole::MeasureName
            )
        })
        .map(|(i, _)| i)
        .collect();
    if let Some((i, _)) = schema
        .fields()
        .iter()
        .enumerate()
        .find(|(_, f)| column_role(f) == ColumnRole::Time)
    {
        keys.push(i);
    }
    keys
}

fn take_all(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), indices, None).map_err(internal))
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(batch.schema(), columns).map_err(internal)
}

fn internal(e: arrow_schema::ArrowError) -> Error {
    Error::internal(format!("sorting rows: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{DictionaryArray, Float64Array, Int32Array, StringArray, TimestampNanosecondArray};
    use arrow_schema::Schema;
    use hourglass_core::types::{dimension_field, measure_field, time_field};
    use hourglass_core::ColumnType;
    use std::sync::Arc;

    fn dict(values: &[&str]) -> ArrayRef {
        let keys = Int32Array::from((0..values.len() as i32).collect::<Vec<_>>());
        Arc::new(DictionaryArray::try_new(keys, Arc::new(StringArray::from(values.to_vec()))).unwrap())
    }

    #[test]
    fn later_writes_win_field_by_field_and_output_is_sorted() {
        let schema = Arc::new(Schema::new(vec![
            dimension_field("host"),
            dimension_field("measure_name"),
            time_field(),
            measure_field("a", ColumnType::Double),
            measure_field("b", ColumnType::Double),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                dict(&["h2", "h1", "h1", "h1"]),
                dict(&["m", "m", "m", "m"]),
                Arc::new(TimestampNanosecondArray::from(vec![5, 9, 5, 5])),
                Arc::new(Float64Array::from(vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)])),
                Arc::new(Float64Array::from(vec![Some(10.0), None, Some(30.0), None])),
            ],
        )
        .unwrap();
        let out = sort_and_dedup(&batch, true).unwrap();
        assert_eq!(out.num_rows(), 3);
        let t = out.column(2).as_any().downcast_ref::<TimestampNanosecondArray>().unwrap();
        assert_eq!(t.values().to_vec(), vec![5, 9, 5]);
        let a = out.column(3).as_any().downcast_ref::<Float64Array>().unwrap();
        let b = out.column(4).as_any().downcast_ref::<Float64Array>().unwrap();
        // h1@5 written twice: a from the later write (4.0), b kept from the earlier one (30.0).
        assert_eq!((a.value(0), b.value(0)), (4.0, 30.0));
        assert_eq!(a.value(2), 1.0);
        let without = sort_and_dedup(&batch, false).unwrap();
        assert_eq!(without.num_rows(), 4);
    }
}
