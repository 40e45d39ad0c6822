//! Arrow batches of a source → the rows of a Hourglass table (`time` in nanoseconds, dimensions
//! and `measure_name` as `Dictionary(Int32, Utf8)`, measures of their column types), column by
//! column: no per-row allocation on the way. Rows that cannot be loaded (no time, a value that
//! does not parse, a time outside the table's write window, no measure name) are returned with
//! their reasons and left out.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, DictionaryArray,
    Int32Array, PrimitiveArray, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::compute::{cast, filter};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type, Schema,
    TimeUnit as ArrowTimeUnit, TimestampNanosecondType, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use hourglass_core::{ColumnType, TableProperties, TableWrite};

use crate::options::TimeUnit;
use crate::plan::{Role, TablePlan};

/// A rejected row of a batch: its index in the batch, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RowReject {
    pub row: usize,
    pub reason: String,
}

/// The rows of one batch, ready to write, and the rows left out.
#[derive(Debug)]
pub struct Converted {
    pub write: Option<TableWrite>,
    pub rejects: Vec<RowReject>,
}

/// The write window rows are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub properties: TableProperties,
    pub now: i64,
}

/// A column's values: from the batch, or a constant (a Hive partition value).
pub enum Input<'a> {
    Column(&'a ArrayRef),
    Constant(Option<&'a str>),
}

/// Converts one batch. `first_row` numbers the batch's rows in `sources` (1-based rows of the
/// file). `constants` are Hive partition values by source column name. Without a `window`
/// (a server checks its own) times are not checked.
pub fn convert(
    plan: &TablePlan,
    batch: &RecordBatch,
    constants: &[(String, Option<String>)],
    window: Option<Window>,
    first_row: u64,
) -> anyhow::Result<Converted> {
    let n = batch.num_rows();
    let mut rejected: Vec<Option<String>> = Vec::new();
    let reject = |row: usize, reason: String, rejected: &mut Vec<Option<String>>| {
        if rejected.is_empty() {
            rejected.resize(n, None);
        }
        if rejected[row].is_none() {
            rejected[row] = Some(reason);
        }
    };
    let input = |source: &str| -> anyhow::Result<ArrayRef> {
        if let Some(c) = batch.column_by_name(source) {
            return Ok(c.clone());
        }
        if let Some((_, v)) = constants.iter().find(|(k, _)| k == source) {
            return Ok(constant_dictionary(v.as_deref(), n));
        }
        Err(anyhow!("column '{source}' is missing from this file"))
    };

    let mut fields = Vec::with_capacity(plan.columns.len() + 1);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len() + 1);

    // time
    let time_plan = plan
        .time_column()
        .ok_or_else(|| anyhow!("no time column"))?;
    let time_input = input(&time_plan.source)?;
    let (times, time_errors) = to_nanos(&time_input, plan.time_unit, &time_plan.source);
    for (row, reason) in time_errors {
        reject(row, reason, &mut rejected);
    }
    if let Some(window) = window {
        let (lower, upper, _) = window.properties.write_window(window.now);
        for (row, &t) in times.values().iter().enumerate() {
            if times.is_valid(row) && (t < lower || t >= upper) {
                let reason = window
                    .properties
                    .check_write_time(t, window.now)
                    .unwrap_or_default();
                reject(row, reason, &mut rejected);
            }
        }
    }
    fields.push(hourglass_core::types::time_field());
    arrays.push(Arc::new(times));

    // measure_name
    let name_array = match plan.columns.iter().find(|c| c.role == Role::MeasureName) {
        Some(c) => {
            let a = to_dictionary(&input(&c.source)?)?;
            let dict = a.as_dictionary::<Int32Type>();
            let values = dict.values().as_string::<i32>();
            for row in 0..n {
                let empty =
                    !dict.is_valid(row) || values.value(dict.keys().value(row) as usize).is_empty();
                if empty {
                    reject(
                        row,
                        format!("column '{}': the measure name is empty", c.source),
                        &mut rejected,
                    );
                }
            }
            a
        }
        None => constant_dictionary(Some(&plan.fixed_measure_name), n),
    };
    fields.push(hourglass_core::types::dimension_field(
        hourglass_core::MEASURE_NAME_COLUMN,
    ));
    arrays.push(name_array);

    for c in &plan.columns {
        match &c.role {
            Role::Dimension => {
                fields.push(hourglass_core::types::dimension_field(&c.target));
                arrays.push(to_dictionary(&input(&c.source)?)?);
            }
            Role::Measure(ty) => {
                let (array, errors) =
                    to_measure(&input(&c.source)?, *ty, plan.time_unit, &c.source);
                for (row, reason) in errors {
                    reject(row, reason, &mut rejected);
                }
                fields.push(hourglass_core::types::measure_field(&c.target, *ty));
                arrays.push(array);
            }
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    for f in &fields {
        if !seen.insert(f.name().clone()) {
            bail!("two source columns become table column '{}'", f.name());
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let mut rejects = Vec::new();
    let (arrays, sources) = if rejected.is_empty() {
        let sources = (0..n).map(|i| (first_row + i as u64) as u32).collect();
        (arrays, sources)
    } else {
        let keep: BooleanArray = rejected.iter().map(|r| Some(r.is_none())).collect();
        let mut sources = Vec::with_capacity(n);
        for (row, r) in rejected.into_iter().enumerate() {
            match r {
                Some(reason) => rejects.push(RowReject { row, reason }),
                None => sources.push((first_row + row as u64) as u32),
            }
        }
        let arrays = arrays
            .iter()
            .map(|a| filter(a, &keep))
            .collect::<Result<Vec<_>, _>>()?;
        (arrays, sources)
    };
    let batch = RecordBatch::try_new(schema, arrays)?;
    let write = (batch.num_rows() > 0).then(|| TableWrite {
        table: plan.table.clone(),
        batch,
        sources,
    });
    Ok(Converted { write, rejects })
}

/// `n` copies of one string (or NULL) as a dictionary.
pub fn constant_dictionary(value: Option<&str>, n: usize) -> ArrayRef {
    let keys = match value {
        Some(_) => Int32Array::from(vec![0; n]),
        None => Int32Array::new_null(n),
    };
    let values = StringArray::from(vec![value.unwrap_or_default()]);
    Arc::new(DictionaryArray::<Int32Type>::new(keys, Arc::new(values)))
}

/// Any string-ish (or other) array as `Dictionary(Int32, Utf8)`.
pub fn to_dictionary(a: &ArrayRef) -> anyhow::Result<ArrayRef> {
    let target = hourglass_core::types::dimension_arrow_type();
    if a.data_type() == &target {
        return Ok(a.clone());
    }
    match a.data_type() {
        DataType::Utf8 | DataType::Dictionary(_, _) | DataType::LargeUtf8 | DataType::Utf8View => {
            Ok(cast(a, &target)?)
        }
        _ => Ok(cast(&cast(a, &DataType::Utf8)?, &target)?),
    }
}

/// A 1-based text of a value, for messages.
fn show(a: &dyn Array, row: usize) -> String {
    ArrayFormatter::try_new(a, &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_default()
}

/// Strings of a string-ish array (`None` otherwise).
fn strings(a: &ArrayRef) -> Option<ArrayRef> {
    match a.data_type() {
        DataType::Utf8 => Some(a.clone()),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            cast(a, &DataType::Utf8).ok()
        }
        _ => None,
    }
}

type Errors = Vec<(usize, String)>;

/// Times in nanoseconds.
pub fn to_nanos(a: &ArrayRef, unit: TimeUnit, column: &str) -> (TimestampNanosecondArray, Errors) {
    let mut errors = Vec::new();
    let n = a.len();
    let out: TimestampNanosecondArray = match a.data_type() {
        DataType::Timestamp(ArrowTimeUnit::Nanosecond, _) => a
            .as_primitive::<TimestampNanosecondType>()
            .clone()
            .with_timezone_opt(None::<Arc<str>>),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let c = cast(a, &DataType::Timestamp(ArrowTimeUnit::Nanosecond, None));
            match c {
                Ok(c) => c.as_primitive::<TimestampNanosecondType>().clone(),
                Err(e) => {
                    errors.extend((0..n).map(|r| (r, format!("column '{column}': {e}"))));
                    TimestampNanosecondArray::new_null(n)
                }
            }
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => match cast(a, &DataType::Int64) {
            Ok(c) => {
                let ints = c.as_primitive::<Int64Type>();
                let per = unit.nanos();
                ints.iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        Some(v) => v.checked_mul(per).or_else(|| {
                            errors.push((
                                row,
                                format!("column '{column}': time {v} is out of range"),
                            ));
                            None
                        }),
                        None => None,
                    })
                    .collect()
            }
            Err(e) => {
                errors.extend((0..n).map(|r| (r, format!("column '{column}': {e}"))));
                TimestampNanosecondArray::new_null(n)
            }
        },
        DataType::Float32 | DataType::Float64 => {
            let f = cast(a, &DataType::Float64)
                .unwrap_or_else(|_| new_null_array(&DataType::Float64, n));
            let per = unit.nanos() as f64;
            f.as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map(|v| (v * per).round() as i64))
                .collect()
        }
        _ => match strings(a) {
            Some(s) => {
                let s = s.as_string::<i32>();
                s.iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => None,
                        Some(text) => match parse_time(text, unit) {
                            Ok(t) => Some(t),
                            Err(e) => {
                                errors.push((row, format!("column '{column}': {e}")));
                                None
                            }
                        },
                    })
                    .collect()
            }
            None => {
                errors.extend((0..n).map(|r| {
                    (
                        r,
                        format!(
                            "column '{column}' of type {} cannot hold times",
                            a.data_type()
                        ),
                    )
                }));
                TimestampNanosecondArray::new_null(n)
            }
        },
    };
    // NULL times (that are not already errors) are rejected too.
    if out.null_count() > 0 {
        let errored: std::collections::HashSet<usize> = errors.iter().map(|e| e.0).collect();
        for row in 0..n {
            if out.is_null(row) && !errored.contains(&row) {
                errors.push((row, format!("column '{column}': the time is empty")));
            }
        }
    }
    (out, errors)
}

/// `2024-01-02 03:04:05.123456789` (or `T`, an optional `Z`/`+00:00`), `2024-01-02`, or a
/// number of `unit`s since the epoch.
pub fn parse_time(text: &str, unit: TimeUnit) -> Result<i64, String> {
    let t = text.trim();
    let bytes = t.as_bytes();
    let numeric = !t.is_empty()
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && *b == b'-') || *b == b'.');
    if numeric {
        if let Ok(v) = t.parse::<i64>() {
            return v
                .checked_mul(unit.nanos())
                .ok_or_else(|| format!("time '{t}' is out of range"));
        }
        if let Ok(v) = t.parse::<f64>() {
            return Ok((v * unit.nanos() as f64).round() as i64);
        }
    }
    parse_datetime(t).ok_or_else(|| format!("cannot read '{t}' as a time"))
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_datetime(t: &str) -> Option<i64> {
    let t = t
        .strip_suffix('Z')
        .or_else(|| t.strip_suffix("+00:00"))
        .unwrap_or(t);
    let b = t.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut nanos = days_from_civil(y, m, d).checked_mul(hourglass_core::time::NANOS_PER_DAY)?;
    if b.len() == 10 {
        return Some(nanos);
    }
    if !(b[10] == b' ' || b[10] == b'T') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    nanos = nanos.checked_add((h * 3600 + mi * 60 + s) * 1_000_000_000)?;
    if b.len() > 19 {
        if b[19] != b'.' || b.len() > 29 {
            return None;
        }
        let frac = &b[20..];
        let f = digits(frac)?;
        nanos = nanos.checked_add(f * 10i64.pow(9 - frac.len() as u32))?;
    }
    Some(nanos)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "TRUE" | "True" | "t" | "1" => Some(true),
        "false" | "FALSE" | "False" | "f" | "0" => Some(false),
        _ => None,
    }
}

/// Parses each string with `parse`; failures are errors naming the value.
fn parse_strings<T: ArrowPrimitiveType>(
    s: &StringArray,
    column: &str,
    ty: ColumnType,
    errors: &mut Errors,
    parse: impl Fn(&str) -> Option<T::Native>,
) -> PrimitiveArray<T> {
    s.iter()
        .enumerate()
        .map(|(row, v)| {
            let v = v?;
            let out = parse(v);
            if out.is_none() {
                errors.push((
                    row,
                    format!("column '{column}': cannot read '{v}' as {}", ty.name()),
                ));
            }
            out
        })
        .collect()
}

/// A measure column of type `ty`.
pub fn to_measure(
    a: &ArrayRef,
    ty: ColumnType,
    unit: TimeUnit,
    column: &str,
) -> (ArrayRef, Errors) {
    let mut errors = Vec::new();
    let target = ty.arrow_type();
    if a.data_type() == &target {
        return (a.clone(), errors);
    }
    if ty == ColumnType::Timestamp {
        let (t, mut e) = to_nanos(a, unit, column);
        // A NULL measure is fine; only unreadable values are errors.
        e.retain(|(row, _)| a.is_valid(*row));
        return (Arc::new(t), e);
    }
    let is_string = matches!(
        a.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _)
    );
    if is_string && ty != ColumnType::Varchar {
        let Some(s) = strings(a) else {
            return (new_null_array(&target, a.len()), errors);
        };
        let s = s.as_string::<i32>();
        let out: ArrayRef = match ty {
            ColumnType::Double => Arc::new(parse_strings::<Float64Type>(
                s,
                column,
                ty,
                &mut errors,
                |v| v.trim().parse::<f64>().ok(),
            )),
            ColumnType::Bigint => Arc::new(parse_strings::<Int64Type>(
                s,
                column,
                ty,
                &mut errors,
                |v| v.trim().parse::<i64>().ok(),
            )),
            ColumnType::Ubigint => Arc::new(parse_strings::<UInt64Type>(
                s,
                column,
                ty,
                &mut errors,
                |v| v.trim().parse::<u64>().ok(),
            )),
            ColumnType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(s.len());
                for (row, v) in s.iter().enumerate() {
                    match v.map(|v| (v, parse_bool(v))) {
                        None => b.append_null(),
                        Some((_, Some(x))) => b.append_value(x),
                        Some((v, None)) => {
                            errors.push((
                                row,
                                format!("column '{column}': cannot read '{v}' as BOOLEAN"),
                            ));
                            b.append_null();
                        }
                    }
                }
                Arc::new(b.finish())
            }
            // Handled above (VARCHAR is a cast, TIMESTAMP a time).
            ColumnType::Varchar | ColumnType::Timestamp => new_null_array(&target, s.len()),
        };
        return (out, errors);
    }
    match cast(a, &target) {
        Ok(out) => {
            if out.null_count() > a.null_count() {
                for row in 0..a.len() {
                    if a.is_valid(row) && out.is_null(row) {
                        errors.push((
                            row,
                            format!(
                                "column '{column}': cannot read '{}' as {}",
                                show(a.as_ref(), row),
                                ty.name()
                            ),
                        ));
                    }
                }
            }
            (out, errors)
        }
        Err(e) => {
            errors.extend((0..a.len()).filter(|r| a.is_valid(*r)).map(|r| {
                (
                    r,
                    format!(
                        "column '{column}': cannot read {} as {}: {e}",
                        a.data_type(),
                        ty.name()
                    ),
                )
            }));
            (new_null_array(&target, a.len()), errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ColumnPlan;
    use arrow::array::{Float64Array, Int64Array};

    fn plan() -> TablePlan {
        let c = |s: &str, role| ColumnPlan {
            source: s.into(),
            target: s.into(),
            role,
        };
        TablePlan {
            table: "t".into(),
            columns: vec![
                c("time", Role::Time),
                c("host", Role::Dimension),
                c("region", Role::Dimension),
                c("v", Role::Measure(ColumnType::Double)),
                c("n", Role::Measure(ColumnType::Bigint)),
            ],
            fixed_measure_name: "m".into(),
            time_unit: TimeUnit::Nanoseconds,
        }
    }

    #[test]
    fn strings_convert_and_bad_rows_are_rejected_with_reasons() {
        let schema = Arc::new(Schema::new(vec![
            arrow::datatypes::Field::new("time", DataType::Utf8, true),
            arrow::datatypes::Field::new("host", DataType::Utf8, true),
            arrow::datatypes::Field::new("v", DataType::Utf8, true),
            arrow::datatypes::Field::new("n", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![
                    Some("2024-01-01 00:00:00.000000001"),
                    None,
                    Some("1704067200000000002"),
                    Some("2024-01-01T00:00:03Z"),
                ])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(StringArray::from(vec![
                    Some("1.5"),
                    Some("2"),
                    Some("x"),
                    None,
                ])),
                Arc::new(StringArray::from(vec![
                    Some("1"),
                    Some("2"),
                    Some("3"),
                    Some("4"),
                ])),
            ],
        )
        .unwrap();
        let window = Window {
            properties: TableProperties {
                magnetic_writes_enabled: true,
                ..Default::default()
            },
            now: 1_704_067_200_000_000_000,
        };
        let out = convert(
            &plan(),
            &batch,
            &[("region".into(), Some("eu".into()))],
            Some(window),
            1,
        )
        .unwrap();
        assert_eq!(
            out.rejects,
            [
                RowReject {
                    row: 1,
                    reason: "column 'time': the time is empty".into()
                },
                RowReject {
                    row: 2,
                    reason: "column 'v': cannot read 'x' as DOUBLE".into()
                },
            ]
        );
        let w = out.write.unwrap();
        assert_eq!(w.sources, [1, 4]);
        let b = &w.batch;
        let names: Vec<_> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["time", "measure_name", "host", "region", "v", "n"]);
        let t = b.column(0).as_primitive::<TimestampNanosecondType>();
        assert_eq!(
            t.values(),
            &[1_704_067_200_000_000_001, 1_704_067_203_000_000_000]
        );
        assert_eq!(b.column(4).as_primitive::<Float64Type>().value(0), 1.5);
        assert!(b.column(4).is_null(1));
        assert_eq!(b.column(5).as_primitive::<Int64Type>().value(1), 4);
    }

    #[test]
    fn times_outside_the_window_are_rejected() {
        let schema = Arc::new(Schema::new(vec![
            arrow::datatypes::Field::new("time", DataType::Int64, true),
            arrow::datatypes::Field::new("v", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1_000, 9_000_000_000_000_000_000])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ],
        )
        .unwrap();
        let mut p = plan();
        p.columns.retain(|c| c.source == "time" || c.source == "v");
        let window = Window {
            properties: TableProperties {
                magnetic_writes_enabled: true,
                ..Default::default()
            },
            now: 1_704_067_200_000_000_000,
        };
        let out = convert(&p, &batch, &[], Some(window), 1).unwrap();
        assert_eq!(out.rejects.len(), 1);
        assert!(out.rejects[0].reason.contains("outside the time range"));
    }

    #[test]
    fn datetime_parsing() {
        assert_eq!(parse_datetime("1970-01-02"), Some(86_400_000_000_000));
        assert_eq!(parse_datetime("1969-12-31 23:59:59.5"), Some(-500_000_000));
        assert_eq!(parse_time("5", TimeUnit::Seconds), Ok(5_000_000_000));
        assert!(parse_time("nope", TimeUnit::Seconds).is_err());
    }
}
