//! `date_bin(interval, time)` over nanosecond timestamps in one pass of integer arithmetic.
//!
//! Nearly every time-series aggregate groups by `date_bin` (TSBS, OHLCV bars, Timestream's
//! `bin`). DataFusion's implementation handles every stride, unit and origin through a function
//! pointer and checked arithmetic per row, building a validity bitmap as it goes; grouping a day of
//! TSBS rows by hour spent a noticeable part of the query there. For the common form, a fixed
//! stride (no months) over a `Timestamp(Nanosecond)` array with the default origin (the Unix
//! epoch), the bin start is `t - t.rem_euclid(stride)`, computed here over the whole array; any
//! other form (months, an explicit origin, other units, scalars, values within one stride of the
//! smallest timestamp) goes to DataFusion's function, which this one wraps.

use std::sync::Arc;

use arrow::array::{Array, AsArray, PrimitiveArray};
use arrow::datatypes::{DataType, IntervalDayTimeType, IntervalMonthDayNanoType, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::functions::datetime::date_bin::DateBinFunc;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// The function, to register in place of DataFusion's `date_bin`.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(DateBin::default())
}

#[derive(Debug, Default)]
pub struct DateBin {
    inner: DateBinFunc,
}

// Every `DateBin` is the same function. Deriving these would compare and hash DataFusion's
// `date_bin` signature (one exact variant per interval, unit and time zone pair): hashing it took
// about 37,000 instructions, and expressions holding the function are hashed 18 times in planning
// a one-series query (11 % of its instructions under callgrind, `docs/benchmarks.md`).
impl PartialEq for DateBin {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for DateBin {}

impl std::hash::Hash for DateBin {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "hourglass date_bin".hash(state);
    }
}

/// The stride in nanoseconds of a fixed (month-free) interval literal.
fn fixed_stride(stride: &ColumnarValue) -> Option<i64> {
    let nanos = match stride {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(v))) => {
            let (months, days, nanos) = IntervalMonthDayNanoType::to_parts(*v);
            if months != 0 {
                return None;
            }
            (days as i64)
                .checked_mul(NANOS_PER_DAY)?
                .checked_add(nanos)?
        }
        ColumnarValue::Scalar(ScalarValue::IntervalDayTime(Some(v))) => {
            let (days, millis) = IntervalDayTimeType::to_parts(*v);
            (days as i64)
                .checked_mul(NANOS_PER_DAY)?
                .checked_add((millis as i64).checked_mul(1_000_000)?)?
        }
        _ => return None,
    };
    (nanos > 0).then_some(nanos)
}

fn bin_fast(args: &[ColumnarValue]) -> Option<ColumnarValue> {
    let [stride, ColumnarValue::Array(times)] = args else {
        return None;
    };
    let stride = fixed_stride(stride)?;
    let DataType::Timestamp(TimeUnit::Nanosecond, tz) = times.data_type() else {
        return None;
    };
    let times = times.as_primitive_opt::<arrow::datatypes::TimestampNanosecondType>()?;
    let nulls = times.nulls().filter(|n| n.null_count() > 0);
    // Times arrive in runs (files are sorted by series then time), so each bin is computed once
    // and reused while the times stay inside it: a comparison per row instead of a division.
    let (mut start, mut end) = (1i64, 0i64);
    let mut binned = Vec::with_capacity(times.len());
    for (i, &t) in times.values().iter().enumerate() {
        if nulls.is_some_and(|n| n.is_null(i)) {
            binned.push(0);
            continue;
        }
        if !(start <= t && t < end) {
            // `t - rem` leaves the range only within one stride of the smallest timestamp.
            start = t.checked_sub(t.rem_euclid(stride))?;
            end = start.saturating_add(stride);
        }
        binned.push(start);
    }
    let binned = PrimitiveArray::<arrow::datatypes::TimestampNanosecondType>::new(
        binned.into(),
        times.nulls().cloned(),
    )
    .with_timezone_opt(tz.clone());
    Some(ColumnarValue::Array(Arc::new(binned)))
}

impl ScalarUDFImpl for DateBin {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match bin_fast(&args.args) {
            Some(binned) => Ok(binned),
            None => self.inner.invoke_with_args(args),
        }
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, TimestampNanosecondArray};
    use arrow::datatypes::{Field, IntervalMonthDayNano};
    use datafusion::config::ConfigOptions;

    use super::*;

    fn invoke(f: &dyn ScalarUDFImpl, args: Vec<ColumnarValue>, rows: usize) -> ArrayRef {
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect::<Vec<_>>();
        let return_type = f
            .return_type(&args.iter().map(|a| a.data_type()).collect::<Vec<_>>())
            .unwrap();
        f.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("r", return_type, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
        .unwrap()
        .into_array(rows)
        .unwrap()
    }

    fn interval(days: i32, nanos: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
            IntervalMonthDayNano::new(0, days, nanos),
        )))
    }

    #[test]
    fn agrees_with_datafusion_on_strides_signs_nulls_and_time_zones() {
        let mut values: Vec<Option<i64>> = vec![None, Some(0), Some(-1), Some(1)];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(Some(x % 4_000_000_000_000_000_000));
        }
        // Runs of ascending and descending times, where bins are reused from row to row.
        for k in 0..3_000i64 {
            values.push(Some(1_451_606_400_000_000_000 + k * 7_000_000_000));
        }
        for k in (0..500i64).rev() {
            values.push(Some(-k * 13_000_000_000));
        }
        for tz in [None, Some("+05:30")] {
            let times: ArrayRef =
                Arc::new(TimestampNanosecondArray::from(values.clone()).with_timezone_opt(tz));
            for stride in [
                interval(0, 1),
                interval(0, 60_000_000_000),
                interval(0, 3_600_000_000_000),
                interval(1, 0),
                interval(7, 12_345),
            ] {
                let args = vec![stride.clone(), ColumnarValue::Array(times.clone())];
                assert!(bin_fast(&args).is_some(), "the fast form");
                let ours = invoke(&DateBin::default(), args.clone(), values.len());
                let theirs = invoke(&DateBinFunc::new(), args, values.len());
                assert_eq!(&ours, &theirs);
            }
        }
    }

    #[test]
    fn other_forms_are_left_to_datafusion() {
        let times: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![
            Some(i64::MIN + 5),
            Some(7),
        ]));
        let months = ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
            IntervalMonthDayNano::new(1, 0, 0),
        )));
        assert!(bin_fast(&[months, ColumnarValue::Array(times.clone())]).is_none());
        assert!(
            bin_fast(&[interval(0, 10), ColumnarValue::Array(times.clone())]).is_none(),
            "near the minimum"
        );
        let origin = ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(Some(3), None));
        assert!(bin_fast(&[interval(0, 10), ColumnarValue::Array(times), origin]).is_none());
        assert!(bin_fast(&[
            interval(0, 0),
            ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(Some(1), None))
        ])
        .is_none());
    }
}
