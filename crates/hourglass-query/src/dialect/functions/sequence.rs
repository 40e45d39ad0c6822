//! `sequence(start, stop[, step])`: the array of values from `start` to `stop` inclusive, as in
//! Trino — bigints (step 1, or -1 when counting down), dates (step one day, or an interval) and
//! timestamps (step an interval; `sequence(t0, t1, 15s)` gives the times to interpolate at).
//! Steps must move from `start` towards `stop`; a sequence has at most 10,000 elements, Trino's
//! limit.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int64Array, ListArray, TimestampNanosecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    DataType, Date32Type, Field, Int64Type, IntervalMonthDayNanoType, TimestampNanosecondType,
};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::ScalarUDF;
use hourglass_core::time::NANOS_PER_DAY;

use super::date_add::{add, Unit};
use super::{simple, Arg};

const MAX_ELEMENTS: usize = 10_000;

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t, true)))
}

fn returns(args: &[DataType]) -> DataType {
    list_of(args.first().cloned().unwrap_or(DataType::Int64))
}

pub fn udf() -> ScalarUDF {
    simple(
        "sequence",
        vec![
            vec![Arg::Int64, Arg::Int64],
            vec![Arg::Int64, Arg::Int64, Arg::Int64],
            vec![Arg::TimestampOrDate, Arg::TimestampOrDate],
            vec![Arg::TimestampOrDate, Arg::TimestampOrDate, Arg::Interval],
        ],
        returns,
        kernel,
    )
}

/// A step: a number, or an interval of months and nanoseconds.
#[derive(Clone, Copy)]
enum Step {
    Number(i64),
    Interval { months: i32, nanos: i64 },
}

fn elements(start: i64, stop: i64, step: Step) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    let mut k: i64 = 0;
    loop {
        let v = match step {
            Step::Number(s) => start.checked_add(s.checked_mul(k).unwrap_or(i64::MAX)),
            Step::Interval { months, nanos } => {
                let moved = if months != 0 {
                    add(start, Unit::Months(months), k).ok()
                } else {
                    Some(start)
                };
                moved.and_then(|m| nanos.checked_mul(k).and_then(|n| m.checked_add(n)))
            }
        };
        let Some(v) = v else { break };
        let forward = match step {
            Step::Number(s) => s > 0,
            Step::Interval { months, nanos } => months > 0 || (months == 0 && nanos > 0),
        };
        if (forward && v > stop) || (!forward && v < stop) {
            break;
        }
        out.push(v);
        if out.len() > MAX_ELEMENTS {
            return exec_err!("sequence has more than {MAX_ELEMENTS} elements");
        }
        k += 1;
    }
    Ok(out)
}

fn check_direction(start: i64, stop: i64, forward: bool, zero: bool) -> Result<()> {
    if zero {
        return exec_err!("sequence step must not be zero");
    }
    if (forward && stop < start) || (!forward && stop > start) {
        return exec_err!(
            "sequence stop value should be greater than or equal to start value if step is \
             greater than zero otherwise stop should be less than or equal to start"
        );
    }
    Ok(())
}

fn kernel(a: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let element_type = match ret {
        DataType::List(f) => f.data_type().clone(),
        other => return exec_err!("sequence returns a list, not {other}"),
    };
    let values = |x: &ArrayRef| -> Vec<Option<i64>> {
        match x.data_type() {
            DataType::Date32 => x
                .as_primitive::<Date32Type>()
                .iter()
                .map(|d| d.map(i64::from))
                .collect(),
            DataType::Timestamp(_, _) => {
                x.as_primitive::<TimestampNanosecondType>().iter().collect()
            }
            _ => x.as_primitive::<Int64Type>().iter().collect(),
        }
    };
    let (starts, stops) = (values(&a[0]), values(&a[1]));
    let is_date = element_type == DataType::Date32;
    let mut flat = Vec::new();
    let mut lengths = Vec::with_capacity(starts.len());
    let mut valid = Vec::with_capacity(starts.len());
    for i in 0..starts.len() {
        let step = match a.get(2) {
            None if element_type == DataType::Int64 => {
                let (s, e) = (starts[i].unwrap_or(0), stops[i].unwrap_or(0));
                Some(Step::Number(if s <= e { 1 } else { -1 }))
            }
            None => Some(Step::Interval {
                months: 0,
                nanos: NANOS_PER_DAY,
            }),
            Some(s) if s.is_null(i) => None,
            Some(s) => match s.data_type() {
                DataType::Interval(_) => {
                    let v = s.as_primitive::<IntervalMonthDayNanoType>().value(i);
                    let nanos = i64::from(v.days)
                        .checked_mul(NANOS_PER_DAY)
                        .and_then(|d| d.checked_add(v.nanoseconds));
                    let Some(nanos) = nanos else {
                        return exec_err!("sequence step out of range");
                    };
                    Some(Step::Interval {
                        months: v.months,
                        nanos,
                    })
                }
                _ => Some(Step::Number(s.as_primitive::<Int64Type>().value(i))),
            },
        };
        let (Some(start), Some(stop), Some(step)) = (starts[i], stops[i], step) else {
            lengths.push(0);
            valid.push(false);
            continue;
        };
        let (forward, zero) = match step {
            Step::Number(s) => (s > 0, s == 0),
            Step::Interval { months, nanos } => (
                months > 0 || (months == 0 && nanos > 0),
                months == 0 && nanos == 0,
            ),
        };
        check_direction(start, stop, forward, zero)?;
        let items = if is_date {
            // Dates step in whole days or months: work in nanoseconds, return days.
            let step = match step {
                Step::Interval { months, nanos } if nanos % NANOS_PER_DAY == 0 => {
                    Step::Interval { months, nanos }
                }
                Step::Interval { .. } => {
                    return exec_err!("sequence of dates needs a step of whole days or months")
                }
                other => other,
            };
            elements(start * NANOS_PER_DAY, stop * NANOS_PER_DAY, step)?
                .into_iter()
                .map(|n| n / NANOS_PER_DAY)
                .collect()
        } else {
            elements(start, stop, step)?
        };
        lengths.push(items.len());
        valid.push(true);
        flat.extend(items);
    }
    let values: ArrayRef = match element_type {
        DataType::Date32 => Arc::new(Date32Array::from(
            flat.into_iter().map(|d| d as i32).collect::<Vec<_>>(),
        )),
        DataType::Timestamp(_, _) => Arc::new(TimestampNanosecondArray::from(flat)),
        _ => Arc::new(Int64Array::from(flat)),
    };
    let nulls = (!valid.iter().all(|v| *v)).then(|| NullBuffer::from(valid));
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new("item", element_type, true)),
        OffsetBuffer::from_lengths(lengths),
        values,
        nulls,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() -> Result<()> {
        assert_eq!(elements(1, 4, Step::Number(1))?, vec![1, 2, 3, 4]);
        assert_eq!(elements(5, 1, Step::Number(-2))?, vec![5, 3, 1]);
        let s = 1_000_000_000;
        let step = Step::Interval {
            months: 0,
            nanos: 15 * s,
        };
        assert_eq!(elements(0, 40 * s, step)?, vec![0, 15 * s, 30 * s]);
        assert!(check_direction(5, 1, true, false).is_err());
        Ok(())
    }
}
