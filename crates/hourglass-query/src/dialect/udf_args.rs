//! Argument handling shared by the dialect's scalar functions: every argument as an array (of one
//! row when all arguments are scalars), and the result handed back as a scalar or an array to
//! match.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::IntervalMonthDayNanoType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};
use datafusion::scalar::ScalarValue;

/// A function call's arguments as arrays.
pub struct ArgArrays {
    pub arrays: Vec<ArrayRef>,
    /// Rows to compute: 1 when every argument is a scalar.
    pub rows: usize,
    all_scalar: bool,
}

impl ArgArrays {
    pub fn new(args: &ScalarFunctionArgs) -> Result<Self> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        Ok(ArgArrays {
            arrays,
            rows,
            all_scalar,
        })
    }

    /// The result as a scalar when every argument was one, else as an array.
    pub fn finish(&self, out: ArrayRef) -> Result<ColumnarValue> {
        if self.all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// Row `row` of an interval argument (already coerced to `Interval(MonthDayNano)`) in
/// nanoseconds; `None` when it is NULL.
pub fn interval_nanos_at(array: &ArrayRef, row: usize) -> Result<Option<i64>> {
    let intervals = array.as_primitive::<IntervalMonthDayNanoType>();
    if intervals.is_null(row) {
        return Ok(None);
    }
    let v = intervals.value(row);
    crate::dialect::functions::interval_nanos(v.months, v.days, v.nanoseconds).map(Some)
}
