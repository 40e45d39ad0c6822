//! Sizes of values: the bytes of (ranges of) arrays, of constants and of function arguments, and
//! arguments read row by row ([`Arg`], [`Ints`]) for the estimates.

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;

/// Bytes of `n` values of `a` from `start` (data and offsets, as a fresh array would hold them).
pub(super) fn range_bytes(a: &dyn Array, start: usize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    if start >= a.len() {
        return 0;
    }
    let end = start.saturating_add(n).min(a.len());
    let n = end - start;
    let t = a.data_type();
    match t {
        DataType::Null => 0,
        DataType::Boolean => n.div_ceil(8),
        DataType::Utf8 | DataType::Binary => {
            let offsets = match t {
                DataType::Utf8 => a.as_string_opt::<i32>().map(|s| s.offsets().clone()),
                _ => a.as_binary_opt::<i32>().map(|s| s.offsets().clone()),
            };
            offsets.map_or_else(
                || fallback_bytes(a, start, n),
                |o| span(&o, start, end) + 4 * n,
            )
        }
        DataType::LargeUtf8 | DataType::LargeBinary => {
            let offsets = match t {
                DataType::LargeUtf8 => a.as_string_opt::<i64>().map(|s| s.offsets().clone()),
                _ => a.as_binary_opt::<i64>().map(|s| s.offsets().clone()),
            };
            offsets.map_or_else(
                || fallback_bytes(a, start, n),
                |o| span(&o, start, end) + 8 * n,
            )
        }
        DataType::Utf8View | DataType::BinaryView => {
            let views = match t {
                DataType::Utf8View => a.as_string_view_opt().map(|s| s.views().clone()),
                _ => a.as_binary_view_opt().map(|s| s.views().clone()),
            };
            views.map_or_else(
                || fallback_bytes(a, start, n),
                |v| {
                    16 * n
                        + v[start..end]
                            .iter()
                            .map(|view| *view as u32 as usize)
                            .filter(|len| *len > 12)
                            .sum::<usize>()
                },
            )
        }
        DataType::List(_) => match a.as_list_opt::<i32>() {
            Some(l) => {
                let o = l.offsets();
                let (first, last) = (o[start].max(0) as usize, o[end].max(0) as usize);
                4 * n + range_bytes(l.values().as_ref(), first, last.saturating_sub(first))
            }
            None => fallback_bytes(a, start, n),
        },
        DataType::LargeList(_) => match a.as_list_opt::<i64>() {
            Some(l) => {
                let o = l.offsets();
                let (first, last) = (o[start].max(0) as usize, o[end].max(0) as usize);
                8 * n + range_bytes(l.values().as_ref(), first, last.saturating_sub(first))
            }
            None => fallback_bytes(a, start, n),
        },
        DataType::FixedSizeList(_, size) => match a.as_fixed_size_list_opt() {
            Some(l) => {
                let size = (*size).max(0) as usize;
                range_bytes(l.values().as_ref(), start * size, n * size)
            }
            None => fallback_bytes(a, start, n),
        },
        DataType::Struct(_) => match a.as_struct_opt() {
            Some(s) => s
                .columns()
                .iter()
                .map(|c| range_bytes(c.as_ref(), start, n))
                .sum(),
            None => fallback_bytes(a, start, n),
        },
        DataType::Map(_, _) => match a.as_map_opt() {
            Some(m) => {
                let o = m.offsets();
                let (first, last) = (o[start].max(0) as usize, o[end].max(0) as usize);
                4 * n + range_bytes(m.entries(), first, last.saturating_sub(first))
            }
            None => fallback_bytes(a, start, n),
        },
        DataType::Dictionary(key, _) => match a.as_any_dictionary_opt() {
            Some(d) => {
                let keys = d.normalized_keys();
                let values = d.values();
                key.primitive_width().unwrap_or(8) * n
                    + keys[start..end]
                        .iter()
                        .map(|k| range_bytes(values.as_ref(), *k, 1))
                        .sum::<usize>()
            }
            None => fallback_bytes(a, start, n),
        },
        other => match other.primitive_width() {
            Some(width) => width * n,
            None => fallback_bytes(a, start, n),
        },
    }
}

fn span<O: arrow::array::OffsetSizeTrait>(
    offsets: &arrow::buffer::OffsetBuffer<O>,
    start: usize,
    end: usize,
) -> usize {
    (offsets[end].as_usize()).saturating_sub(offsets[start].as_usize())
}

fn fallback_bytes(a: &dyn Array, start: usize, n: usize) -> usize {
    a.slice(start, n).get_array_memory_size()
}

/// Bytes of a constant.
pub(super) fn scalar_bytes(s: &ScalarValue) -> usize {
    match s {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
            v.as_ref().map_or(0, String::len)
        }
        ScalarValue::Binary(v)
        | ScalarValue::LargeBinary(v)
        | ScalarValue::BinaryView(v)
        | ScalarValue::FixedSizeBinary(_, v) => v.as_ref().map_or(0, Vec::len),
        ScalarValue::List(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::LargeList(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::FixedSizeList(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::Struct(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::Map(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::Dictionary(_, v) => scalar_bytes(v),
        other => {
            other
                .size()
                .saturating_sub(std::mem::size_of::<ScalarValue>())
                + 16
        }
    }
}

/// Bytes of an argument, `rows` rows of it (a constant counts once per row).
pub(super) fn value_bytes(v: &ColumnarValue, rows: usize) -> u128 {
    match v {
        ColumnarValue::Scalar(s) => scalar_bytes(s) as u128 * rows as u128,
        ColumnarValue::Array(a) => range_bytes(a.as_ref(), 0, a.len()) as u128,
    }
}

/// One argument, row by row (a constant is the same in every row).
pub(super) enum Arg<'a> {
    Scalar(&'a ScalarValue),
    Array(&'a ArrayRef),
}

impl<'a> Arg<'a> {
    pub(super) fn new(v: &'a ColumnarValue) -> Self {
        match v {
            ColumnarValue::Scalar(s) => Arg::Scalar(s),
            ColumnarValue::Array(a) => Arg::Array(a),
        }
    }

    /// Bytes of row `i`.
    pub(super) fn bytes(&self, i: usize) -> usize {
        match self {
            Arg::Scalar(s) => scalar_bytes(s),
            Arg::Array(a) => range_bytes(a.as_ref(), i, 1),
        }
    }

    /// The text of row `i` (`None`: null, or not text).
    pub(super) fn text(&self, i: usize) -> Option<&'a str> {
        match self {
            Arg::Scalar(s) => match s {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                    v.as_deref()
                }
                ScalarValue::Dictionary(_, v) => Arg::Scalar(v).text(0),
                _ => None,
            },
            Arg::Array(a) => {
                if i >= a.len() || a.is_null(i) {
                    return None;
                }
                match a.data_type() {
                    DataType::Utf8 => a.as_string_opt::<i32>().map(|s| s.value(i)),
                    DataType::LargeUtf8 => a.as_string_opt::<i64>().map(|s| s.value(i)),
                    DataType::Utf8View => a.as_string_view_opt().map(|s| s.value(i)),
                    _ => None,
                }
            }
        }
    }

    /// Elements of the list at row `i`.
    pub(super) fn list_len(&self, i: usize) -> usize {
        fn of(a: &dyn Array, i: usize) -> usize {
            if i >= a.len() {
                return 0;
            }
            if let Some(l) = a.as_list_opt::<i32>() {
                return l.value_length(i).max(0) as usize;
            }
            if let Some(l) = a.as_list_opt::<i64>() {
                return l.value_length(i).max(0) as usize;
            }
            if let Some(l) = a.as_fixed_size_list_opt() {
                return l.value_length().max(0) as usize;
            }
            0
        }
        match self {
            Arg::Scalar(s) => match s {
                ScalarValue::List(a) => of(a.as_ref(), 0),
                ScalarValue::LargeList(a) => of(a.as_ref(), 0),
                ScalarValue::FixedSizeList(a) => of(a.as_ref(), 0),
                _ => 0,
            },
            Arg::Array(a) => of(a.as_ref(), i),
        }
    }

    /// Leaf values of the (possibly nested) list at row `i`.
    pub(super) fn leaves(&self, i: usize) -> usize {
        fn count(a: &dyn Array, start: usize, n: usize) -> usize {
            if start >= a.len() {
                return 0;
            }
            let end = start.saturating_add(n).min(a.len());
            if let Some(l) = a.as_list_opt::<i32>() {
                let o = l.offsets();
                let (f, e) = (o[start].max(0) as usize, o[end].max(0) as usize);
                return count(l.values().as_ref(), f, e.saturating_sub(f));
            }
            if let Some(l) = a.as_list_opt::<i64>() {
                let o = l.offsets();
                let (f, e) = (o[start].max(0) as usize, o[end].max(0) as usize);
                return count(l.values().as_ref(), f, e.saturating_sub(f));
            }
            if let Some(l) = a.as_fixed_size_list_opt() {
                let size = l.value_length().max(0) as usize;
                return count(l.values().as_ref(), start * size, (end - start) * size);
            }
            end.saturating_sub(start)
        }
        match self {
            Arg::Scalar(s) => match s {
                ScalarValue::List(a) => count(a.as_ref(), 0, 1),
                ScalarValue::LargeList(a) => count(a.as_ref(), 0, 1),
                ScalarValue::FixedSizeList(a) => count(a.as_ref(), 0, 1),
                _ => 1,
            },
            Arg::Array(a) => count(a.as_ref(), i, 1),
        }
    }
}

/// An integer argument row by row (other numbers are truncated, text is parsed).
pub(super) enum Ints {
    Scalar(Option<i64>),
    Array(Int64Array),
}

impl Ints {
    pub(super) fn new(v: &ColumnarValue) -> Ints {
        match v {
            ColumnarValue::Scalar(s) => Ints::Scalar(scalar_i64(s)),
            ColumnarValue::Array(a) => {
                match arrow::compute::cast(a, &DataType::Int64)
                    .ok()
                    .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned())
                {
                    Some(ints) => Ints::Array(ints),
                    None => Ints::Scalar(None),
                }
            }
        }
    }

    pub(super) fn get(&self, i: usize) -> Option<i64> {
        match self {
            Ints::Scalar(v) => *v,
            Ints::Array(a) => (i < a.len() && a.is_valid(i)).then(|| a.value(i)),
        }
    }
}

pub(super) fn scalar_i64(s: &ScalarValue) -> Option<i64> {
    if s.is_null() {
        return None;
    }
    match s {
        ScalarValue::UInt64(Some(v)) => Some(i64::try_from(*v).unwrap_or(i64::MAX)),
        other => other.cast_to(&DataType::Int64).ok().and_then(|v| match v {
            ScalarValue::Int64(v) => v,
            _ => None,
        }),
    }
}
