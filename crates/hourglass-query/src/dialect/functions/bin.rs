//! `bin(timestamp, interval)`: rounds a timestamp down to a multiple of the interval since the
//! Unix epoch (`bin(time, 15m)` is the start of the time's quarter hour). Timestream's bucketing
//! function, the counterpart of DataFusion's `date_bin` with the epoch as origin.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, TimestampNanosecondArray};
use arrow::datatypes::TimestampNanosecondType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::ScalarUDF;

use super::{interval_column, returns_timestamp, simple, Arg};

pub fn udf() -> ScalarUDF {
    simple(
        "bin",
        vec![vec![Arg::Timestamp, Arg::Interval]],
        returns_timestamp,
        kernel,
    )
}

/// `t` rounded down to a multiple of `width` (> 0) nanoseconds.
pub fn floor_to(t: i64, width: i64) -> i64 {
    t - t.rem_euclid(width)
}

fn kernel(args: &[ArrayRef], _: &arrow::datatypes::DataType) -> Result<ArrayRef> {
    let times = args[0].as_primitive::<TimestampNanosecondType>();
    let widths = interval_column(&args[1])?;
    let out = times
        .iter()
        .zip(widths)
        .map(|(t, w)| match (t, w) {
            (Some(t), Some(w)) if w > 0 => Ok(Some(floor_to(t, w))),
            (Some(_), Some(_)) => exec_err!("bin() needs a positive interval"),
            _ => Ok(None),
        })
        .collect::<Result<TimestampNanosecondArray>>()?;
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::floor_to;

    #[test]
    fn floors_towards_negative_infinity() {
        assert_eq!(floor_to(125, 60), 120);
        assert_eq!(floor_to(120, 60), 120);
        assert_eq!(floor_to(-1, 60), -60);
    }
}
