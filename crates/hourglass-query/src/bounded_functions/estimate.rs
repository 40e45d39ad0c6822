//! What each bounded function would build: the kinds of estimate ([`Kind`]), the functions
//! wrapped ([`BOUNDED`]) and the estimates themselves (see the table in the module docs).

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;

use super::sizes::{scalar_i64, value_bytes, Arg, Ints};

/// How a bounded function's result size is estimated (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `repeat(text, count)`.
    Repeat,
    /// `lpad`/`rpad(text, length[, fill])`.
    Pad,
    /// `array_repeat(element, count)`.
    ArrayRepeat,
    /// `array_resize(array, length[, fill])`.
    ArrayResize,
    /// `range`, `generate_series`, `sequence`: `(stop)`, `(start, stop)` or `(start, stop,
    /// step)`; at most `cap` elements when the function has such a limit.
    Series { cap: Option<u64> },
    /// `replace(text, from, to)`.
    Replace,
    /// `regexp_replace(text, pattern, replacement[, flags])`.
    RegexpReplace,
    /// `array_replace_all`/`array_replace_n(array, from, to[, max])`.
    ArrayReplace,
    /// `array_to_string(array, separator[, null_text])`.
    ArrayToString,
    /// `string_to_array(text, delimiter[, null_text])`.
    StringToArray,
    /// Formatting a time with a format string: `(value, format)`.
    Format,
    /// At most the sum of the arguments; `separator`: the first is repeated between the others.
    Sum { separator: bool },
}

/// The functions wrapped, by name (the primary name: aliases come along).
pub const BOUNDED: &[(&str, Kind)] = &[
    ("repeat", Kind::Repeat),
    ("lpad", Kind::Pad),
    ("rpad", Kind::Pad),
    ("array_repeat", Kind::ArrayRepeat),
    ("array_resize", Kind::ArrayResize),
    ("range", Kind::Series { cap: None }),
    ("generate_series", Kind::Series { cap: None }),
    ("sequence", Kind::Series { cap: Some(10_001) }),
    ("replace", Kind::Replace),
    ("regexp_replace", Kind::RegexpReplace),
    ("array_replace_all", Kind::ArrayReplace),
    ("array_replace_n", Kind::ArrayReplace),
    ("array_to_string", Kind::ArrayToString),
    ("string_to_array", Kind::StringToArray),
    ("to_char", Kind::Format),
    ("date_format", Kind::Format),
    ("format_datetime", Kind::Format),
    ("concat", Kind::Sum { separator: false }),
    ("concat_ws", Kind::Sum { separator: true }),
    ("make_array", Kind::Sum { separator: false }),
    ("array_concat", Kind::Sum { separator: false }),
    ("array_append", Kind::Sum { separator: false }),
    ("array_prepend", Kind::Sum { separator: false }),
    ("array_replace", Kind::Sum { separator: false }),
    ("struct", Kind::Sum { separator: false }),
    ("named_struct", Kind::Sum { separator: false }),
    ("arrays_zip", Kind::Sum { separator: false }),
    ("map", Kind::Sum { separator: false }),
    ("overlay", Kind::Sum { separator: false }),
];

pub(super) fn kind_of(name: &str) -> Option<Kind> {
    BOUNDED.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

const NANOS_PER_DAY: i128 = 86_400_000_000_000;
const NANOS_PER_HOUR: i128 = 3_600_000_000_000;

/// An upper bound on the bytes `kind` builds from `args` over `rows` rows. Occurrences of a
/// pattern are counted only until the result is known to exceed `limit`.
pub(super) fn estimate(kind: Kind, args: &[ColumnarValue], rows: usize, limit: u128) -> u128 {
    let arg = |i: usize| args.get(i).map(Arg::new);
    let ints = |i: usize| args.get(i).map(Ints::new);
    let mut total: u128 = 0;
    match kind {
        Kind::Repeat => {
            let (Some(text), Some(count)) = (arg(0), ints(1)) else {
                return 0;
            };
            for i in 0..rows {
                let n = count.get(i).unwrap_or(0).max(0) as u128;
                total += text.bytes(i) as u128 * n + 4;
            }
        }
        Kind::Pad => {
            let (Some(text), Some(length)) = (arg(0), ints(1)) else {
                return 0;
            };
            let fill = arg(2);
            for i in 0..rows {
                let n = length.get(i).unwrap_or(0).max(0) as u128;
                let width = match &fill {
                    None => 1,
                    Some(f) => match f.text(i) {
                        Some(t) => t.chars().map(char::len_utf8).max().unwrap_or(0),
                        None => 4,
                    },
                };
                total += text.bytes(i) as u128 + n * width as u128 + 4;
            }
        }
        Kind::ArrayRepeat => {
            let (Some(element), Some(count)) = (arg(0), ints(1)) else {
                return 0;
            };
            for i in 0..rows {
                let n = count.get(i).unwrap_or(0).max(0) as u128;
                total += (element.bytes(i) as u128 + 1) * n + 4;
            }
        }
        Kind::ArrayResize => {
            let (Some(array), Some(length)) = (arg(0), ints(1)) else {
                return 0;
            };
            let fill = arg(2);
            for i in 0..rows {
                let n = length.get(i).unwrap_or(0).max(0) as u128;
                let have = array.list_len(i).max(1);
                let per = (array.bytes(i) / have)
                    .max(fill.as_ref().map_or(0, |f| f.bytes(i)))
                    .max(8);
                total += array.bytes(i) as u128 + n * (per as u128 + 1) + 4;
            }
        }
        Kind::Series { cap } => {
            for i in 0..rows {
                let n = series_len(args, i);
                let n = cap.map_or(n, |c| n.min(u128::from(c)));
                total += n * 9 + 4;
            }
        }
        Kind::Replace => {
            let (Some(text), Some(from), Some(to)) = (arg(0), arg(1), arg(2)) else {
                return 0;
            };
            for i in 0..rows {
                let len = text.bytes(i) as u128;
                let (f, t) = (from.bytes(i), to.bytes(i));
                let grows = t > f && f > 0;
                let count = if !grows {
                    0
                } else {
                    match (text.text(i), from.text(i)) {
                        (Some(s), Some(p)) if !p.is_empty() => {
                            // Counted until the result is known to be too large.
                            let most = limit.saturating_sub(total + len) / (t - f) as u128 + 1;
                            s.matches(p)
                                .take(most.min(usize::MAX as u128) as usize)
                                .count() as u128
                        }
                        _ => len / f as u128 + 1,
                    }
                };
                total += len + count * (t - f.min(t)) as u128 + 4;
            }
        }
        Kind::RegexpReplace => {
            let (Some(text), Some(replacement)) = (arg(0), arg(2)) else {
                return 0;
            };
            let flags = arg(3);
            for i in 0..rows {
                let len = text.bytes(i) as u128;
                let global = flags
                    .as_ref()
                    .and_then(|f| f.text(i))
                    .is_some_and(|f| f.contains('g'));
                let matches = if global { len + 1 } else { 1 };
                let (r, refs) = match replacement.text(i) {
                    Some(t) => (
                        t.len(),
                        t.chars().filter(|c| *c == '$' || *c == '\\').count(),
                    ),
                    None => (replacement.bytes(i), replacement.bytes(i)),
                };
                total += len + matches * r as u128 + refs as u128 * len + 4;
            }
        }
        Kind::ArrayReplace => {
            let (Some(array), Some(to)) = (arg(0), arg(2)) else {
                return 0;
            };
            for i in 0..rows {
                total += array.bytes(i) as u128
                    + array.list_len(i) as u128 * (to.bytes(i) as u128 + 1)
                    + 4;
            }
        }
        Kind::ArrayToString => {
            let Some(array) = arg(0) else {
                return 0;
            };
            let (separator, null_text) = (arg(1), arg(2));
            for i in 0..rows {
                let per = 24
                    + separator.as_ref().map_or(0, |s| s.bytes(i))
                    + null_text.as_ref().map_or(0, |s| s.bytes(i));
                total += array.bytes(i) as u128 + array.leaves(i) as u128 * per as u128 + 4;
            }
        }
        Kind::StringToArray => {
            let Some(text) = arg(0) else {
                return 0;
            };
            let null_text = arg(2);
            for i in 0..rows {
                let len = text.bytes(i) as u128;
                let null = null_text.as_ref().map_or(0, |s| s.bytes(i)) as u128;
                total += len + (len + 1) * 5 + null + 8;
            }
        }
        Kind::Format => {
            let format = arg(1);
            for i in 0..rows {
                total += 16 * format.as_ref().map_or(0, |f| f.bytes(i)) as u128 + 68;
            }
        }
        Kind::Sum { separator } => {
            total = args.iter().map(|a| value_bytes(a, rows)).sum::<u128>() + 4 * rows as u128;
            if separator && args.len() > 2 {
                if let Some(first) = args.first() {
                    total += value_bytes(first, rows) * (args.len() - 2) as u128;
                }
            }
        }
    }
    total
}

/// An upper bound on the elements of a `range`/`generate_series`/`sequence` row.
pub(super) fn series_len(args: &[ColumnarValue], i: usize) -> u128 {
    let point = |v: &ColumnarValue| -> Option<i128> {
        let t = v.data_type();
        let at = |s: ScalarValue| -> Option<i128> {
            match s {
                ScalarValue::Date32(d) => d.map(|d| i128::from(d) * NANOS_PER_DAY),
                ScalarValue::Date64(d) => d.map(|d| i128::from(d) * 1_000_000),
                ScalarValue::TimestampSecond(t, _) => t.map(|t| i128::from(t) * 1_000_000_000),
                ScalarValue::TimestampMillisecond(t, _) => t.map(|t| i128::from(t) * 1_000_000),
                ScalarValue::TimestampMicrosecond(t, _) => t.map(|t| i128::from(t) * 1_000),
                ScalarValue::TimestampNanosecond(t, _) => t.map(i128::from),
                other => scalar_i64(&other).map(i128::from),
            }
        };
        let value = match v {
            ColumnarValue::Scalar(s) => s.clone(),
            ColumnarValue::Array(a) => {
                if i >= a.len() {
                    return None;
                }
                ScalarValue::try_from_array(a.as_ref(), i).ok()?
            }
        };
        let _ = t;
        at(value)
    };
    // The step, as the least and most nanoseconds (or units) it can move.
    let step = |v: &ColumnarValue| -> Option<(i128, i128)> {
        let value = match v {
            ColumnarValue::Scalar(s) => s.clone(),
            ColumnarValue::Array(a) => {
                if i >= a.len() {
                    return None;
                }
                ScalarValue::try_from_array(a.as_ref(), i).ok()?
            }
        };
        let (months, days, nanos) = match value {
            ScalarValue::IntervalMonthDayNano(Some(v)) => (
                i128::from(v.months),
                i128::from(v.days),
                i128::from(v.nanoseconds),
            ),
            ScalarValue::IntervalDayTime(Some(v)) => (
                0,
                i128::from(v.days),
                i128::from(v.milliseconds) * 1_000_000,
            ),
            ScalarValue::IntervalYearMonth(Some(m)) => (i128::from(m), 0, 0),
            other => {
                let n = i128::from(scalar_i64(&other)?);
                return Some((n, n));
            }
        };
        let low = months * 28 * NANOS_PER_DAY.min(31 * NANOS_PER_DAY)
            + days * 23 * NANOS_PER_HOUR
            + nanos;
        let high = months * 31 * NANOS_PER_DAY + days * 25 * NANOS_PER_HOUR + nanos;
        Some((low.min(high), low.max(high)))
    };
    let (start, stop, step) = match args {
        [stop] => (Some(0), point(stop), Some((1, 1))),
        [start, stop] => {
            let (a, b) = (point(start), point(stop));
            let unit = match start.data_type() {
                DataType::Date32 | DataType::Date64 => NANOS_PER_DAY,
                _ => 1,
            };
            let s = match (a, b) {
                (Some(a), Some(b)) if b < a => -unit,
                _ => unit,
            };
            (a, b, Some((s, s)))
        }
        [start, stop, step_arg, ..] => (point(start), point(stop), step(step_arg)),
        [] => return 0,
    };
    let (Some(start), Some(stop), Some((low, high))) = (start, stop, step) else {
        return 0;
    };
    let distance = stop - start;
    if distance == 0 {
        return 1;
    }
    // The smallest move towards `stop` a step can make; none: it may not get there.
    let towards = if distance > 0 {
        if low > 0 {
            low
        } else if high > 0 {
            1
        } else {
            return 0;
        }
    } else if high < 0 {
        -high
    } else if low < 0 {
        1
    } else {
        return 0;
    };
    (distance.unsigned_abs() / towards.unsigned_abs()).saturating_add(1)
}
