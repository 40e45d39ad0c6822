//! Sorting rows by series then time, and resolving duplicate records.
//!
//! Parquet files are written sorted by (dimensions, measure_name, time) so that row-group
//! statistics prune well and each series is contiguous. Rows with the same series and time are one
//! record written several times: the later write wins field by field (line protocol semantics: a
//! field the later write does not name keeps its earlier value). Input order is write order.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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
    let keys = match series_ranks(batch, &key_indices) {
        Some((ranks, times)) => Keys::Ranked(ranks, times),
        None => Keys::Rows(row_keys(batch, &key_indices)?),
    };
    let order: Vec<u32> = match &keys {
        Keys::Ranked(ranks, times) => ranked_order(ranks, times),
        Keys::Rows(rows) => {
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));
            order
        }
    };
    let same_key = |a: u32, b: u32| -> Result<bool> { Ok(keys.equal(a as usize, b as usize)) };
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
        if pos == 0 || !same_key(order[pos - 1], row)? {
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

/// Per-row sort keys: integer series ranks plus time (fast path) or generic row encodings.
enum Keys {
    Ranked(Vec<u128>, Vec<i64>),
    Rows(arrow_row::Rows),
}

impl Keys {
    fn equal(&self, a: usize, b: usize) -> bool {
        match self {
            Keys::Ranked(ranks, times) => ranks[a] == ranks[b] && times[a] == times[b],
            Keys::Rows(rows) => rows.row(a) == rows.row(b),
        }
    }
}

/// The row order by (series rank, time, row) without a comparison sort of all rows: rows are
/// bucketed by series (a counting sort over the distinct ranks, which keeps write order within a
/// series), and only a series whose times are not already ascending is sorted on its own. Writes
/// mostly arrive in time order, so this is linear in the rows plus a sort of the distinct series.
fn ranked_order(ranks: &[u128], times: &[i64]) -> Vec<u32> {
    let n = ranks.len();
    let mut dense_of: HashMap<u128, u32, BuildHasherDefault<RankHasher>> = HashMap::default();
    let mut distinct: Vec<u128> = Vec::new();
    let row_series: Vec<u32> = ranks
        .iter()
        .map(|&rank| {
            *dense_of.entry(rank).or_insert_with(|| {
                distinct.push(rank);
                (distinct.len() - 1) as u32
            })
        })
        .collect();
    // Bucket start of each dense series id, in rank order.
    let mut by_rank: Vec<u32> = (0..distinct.len() as u32).collect();
    by_rank.sort_unstable_by_key(|&d| distinct[d as usize]);
    let mut counts = vec![0u32; distinct.len()];
    for &s in &row_series {
        counts[s as usize] += 1;
    }
    let mut starts = vec![0u32; distinct.len()];
    let mut at = 0u32;
    for &d in &by_rank {
        starts[d as usize] = at;
        at += counts[d as usize];
    }
    let mut order = vec![0u32; n];
    let mut next = starts.clone();
    for (row, &s) in row_series.iter().enumerate() {
        order[next[s as usize] as usize] = row as u32;
        next[s as usize] += 1;
    }
    for &d in &by_rank {
        let start = starts[d as usize] as usize;
        let bucket = &mut order[start..start + counts[d as usize] as usize];
        if bucket
            .windows(2)
            .any(|w| times[w[0] as usize] > times[w[1] as usize])
        {
            bucket.sort_unstable_by_key(|&i| (times[i as usize], i));
        }
    }
    order
}

/// Hashes the u128 series ranks of [`ranked_order`] (a multiply-fold of the two halves).
#[derive(Default)]
struct RankHasher(u64);

impl Hasher for RankHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u128(&mut self, n: u128) {
        let folded = (n as u64) ^ ((n >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let product = u128::from(folded) * 0xBF58_476D_1CE4_E5B9;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

/// Generic row encodings of the key columns (any column types).
fn row_keys(batch: &RecordBatch, key_indices: &[usize]) -> Result<arrow_row::Rows> {
    convert_keys(
        &key_converter(&batch.schema(), key_indices)?,
        batch,
        key_indices,
    )
}

/// A converter of the key columns `key_indices` of `schema` into rows whose byte order is the
/// files' sort order (ascending, NULLs first); rows it makes compare with each other.
pub fn key_converter(schema: &SchemaRef, key_indices: &[usize]) -> Result<RowConverter> {
    let fields = key_indices
        .iter()
        .map(|&i| SortField::new(schema.field(i).data_type().clone()))
        .collect();
    RowConverter::new(fields).map_err(internal)
}

/// The key rows of `batch` by `converter` (made by [`key_converter`] for the batch's schema).
pub fn convert_keys(
    converter: &RowConverter,
    batch: &RecordBatch,
    key_indices: &[usize],
) -> Result<arrow_row::Rows> {
    let key_columns: Vec<ArrayRef> = key_indices
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    converter.convert_columns(&key_columns).map_err(internal)
}

/// The fast path: when every series column is a string dictionary, each row's series becomes
/// one integer whose order is the lexicographic order of its values (NULLs first), computed from
/// the ranks of the dictionary values. `None` when a column has another type or the combined
/// key would not fit in 128 bits.
fn series_ranks(batch: &RecordBatch, key_indices: &[usize]) -> Option<(Vec<u128>, Vec<i64>)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, TimestampNanosecondType};
    let (&time_index, series) = key_indices.split_last()?;
    let times = batch
        .column(time_index)
        .as_primitive_opt::<TimestampNanosecondType>()?
        .values()
        .to_vec();
    let mut keys = vec![0u128; batch.num_rows()];
    let mut capacity: u128 = 1;
    for &i in series {
        let dict = batch.column(i).as_dictionary_opt::<Int32Type>()?;
        let values = dict.values().as_string_opt::<i32>()?;
        let mut by_value: Vec<(Option<&str>, usize)> = (0..values.len())
            .map(|v| (values.is_valid(v).then(|| values.value(v)), v))
            .collect();
        by_value.sort_unstable();
        let mut rank_of = vec![0u32; values.len()];
        let mut rank = 0u32;
        for (pos, (value, v)) in by_value.iter().enumerate() {
            if value.is_some() && (pos == 0 || by_value[pos - 1].0 != *value) {
                rank += 1;
            }
            rank_of[*v] = if value.is_some() { rank } else { 0 };
        }
        let radix = u128::from(rank) + 1;
        capacity = capacity.checked_mul(radix)?;
        let dict_keys = dict.keys();
        for (row, key) in keys.iter_mut().enumerate() {
            let r = if dict_keys.is_valid(row) {
                rank_of
                    .get(dict_keys.value(row) as usize)
                    .copied()
                    .unwrap_or(0)
            } else {
                0
            };
            *key = *key * radix + u128::from(r);
        }
    }
    Some((keys, times))
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
    use arrow_array::{
        DictionaryArray, Float64Array, Int32Array, StringArray, TimestampNanosecondArray,
    };
    use arrow_schema::Schema;
    use hourglass_core::types::{dimension_field, measure_field, time_field};
    use hourglass_core::ColumnType;
    use std::sync::Arc;

    fn dict(values: &[&str]) -> ArrayRef {
        let keys = Int32Array::from((0..values.len() as i32).collect::<Vec<_>>());
        Arc::new(
            DictionaryArray::try_new(keys, Arc::new(StringArray::from(values.to_vec()))).unwrap(),
        )
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
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    Some(2.0),
                    Some(3.0),
                    Some(4.0),
                ])),
                Arc::new(Float64Array::from(vec![Some(10.0), None, Some(30.0), None])),
            ],
        )
        .unwrap();
        let out = sort_and_dedup(&batch, true).unwrap();
        assert_eq!(out.num_rows(), 3);
        let t = out
            .column(2)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        assert_eq!(t.values().to_vec(), vec![5, 9, 5]);
        let a = out
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let b = out
            .column(4)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        // h1@5 written twice: a from the later write (4.0), b kept from the earlier one (30.0).
        assert_eq!((a.value(0), b.value(0)), (4.0, 30.0));
        assert_eq!(a.value(2), 1.0);
        let without = sort_and_dedup(&batch, false).unwrap();
        assert_eq!(without.num_rows(), 4);
    }

    #[test]
    fn ranked_order_equals_a_full_sort_by_series_time_and_row() {
        // A deterministic pseudo-random mix: few series, repeated and out-of-order times.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for (rows, series, time_range) in [(1, 1, 1), (500, 7, 40), (3000, 300, 1000), (64, 64, 3)]
        {
            let ranks: Vec<u128> = (0..rows)
                .map(|_| u128::from(next(series)) << 70 | u128::from(next(2)))
                .collect();
            let times: Vec<i64> = (0..rows).map(|_| next(time_range) as i64).collect();
            let mut expected: Vec<u32> = (0..rows as u32).collect();
            expected.sort_unstable_by_key(|&i| (ranks[i as usize], times[i as usize], i));
            assert_eq!(ranked_order(&ranks, &times), expected, "{rows} rows");
        }
        // Already time-ordered series keep write order without a per-series sort.
        assert_eq!(ranked_order(&[2, 1, 2, 1], &[1, 1, 2, 2]), vec![1, 3, 0, 2]);
    }

    #[test]
    fn fast_path_orders_like_the_generic_path_with_nulls_and_repeated_dictionary_values() {
        let schema = Arc::new(Schema::new(vec![
            dimension_field("host"),
            dimension_field("measure_name"),
            time_field(),
            measure_field("a", ColumnType::Double),
        ]));
        // Dictionary with the value "x" twice (indices 0 and 2) and a NULL key.
        let keys = Int32Array::from(vec![Some(2), None, Some(1), Some(0), Some(2), Some(1)]);
        let host = DictionaryArray::try_new(keys, Arc::new(StringArray::from(vec!["x", "b", "x"])))
            .unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(host),
                dict(&["m", "m", "m", "m", "m", "m"]),
                Arc::new(TimestampNanosecondArray::from(vec![7, 3, 9, 7, 1, 2])),
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
            ],
        )
        .unwrap();
        let key_indices = key_column_indices(&batch.schema());
        assert!(
            series_ranks(&batch, &key_indices).is_some(),
            "fast path applies"
        );
        let out = sort_and_dedup(&batch, true).unwrap();
        let hosts = arrow_cast::display::ArrayFormatter::try_new(
            out.column(0).as_ref(),
            &Default::default(),
        )
        .unwrap();
        let t = out
            .column(2)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        let a = out
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let got: Vec<(String, i64, f64)> = (0..out.num_rows())
            .map(|i| (hosts.value(i).to_string(), t.value(i), a.value(i)))
            .collect();
        // NULL host first; "x"@7 written twice through different dictionary indices -> one row,
        // the later write (4.0) wins.
        assert_eq!(
            got,
            vec![
                ("".to_string(), 3, 2.0),
                ("b".to_string(), 2, 6.0),
                ("b".to_string(), 9, 3.0),
                ("x".to_string(), 1, 5.0),
                ("x".to_string(), 7, 4.0),
            ]
        );
    }
}
