//! `parse_duration('3.5m')`: a duration in text (a decimal number and a unit among `ns`, `us`,
//! `ms`, `s`, `m`, `h`, `d`, spaces allowed between them) as an interval.

use std::sync::Arc;

use arrow::array::{ArrayRef, IntervalMonthDayNanoArray};
use arrow::datatypes::IntervalMonthDayNano;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::ScalarUDF;

use super::calendar::strings;
use super::{returns_interval, simple, Arg};

pub fn parse(text: &str) -> Result<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit_nanos: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        _ => return exec_err!("duration is not a valid data duration string: {text}"),
    };
    let value: f64 = number
        .parse()
        .or_else(|_| exec_err!("duration is not a valid data duration string: {text}"))?;
    let nanos = (value * unit_nanos).round();
    if !nanos.is_finite() || nanos.abs() >= 9.2e18 {
        return exec_err!("duration is out of range: {text}");
    }
    Ok(nanos as i64)
}

pub fn udfs() -> Vec<ScalarUDF> {
    vec![simple(
        "parse_duration",
        vec![vec![Arg::Utf8]],
        returns_interval,
        |a, _| {
            let out = strings(&a[0])?
                .into_iter()
                .map(|s| {
                    s.map(|s| parse(&s).map(|n| IntervalMonthDayNano::new(0, 0, n)))
                        .transpose()
                })
                .collect::<Result<IntervalMonthDayNanoArray>>()?;
            Ok(Arc::new(out) as ArrayRef)
        },
    )]
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse("42.8ms").ok(), Some(42_800_000));
        assert_eq!(super::parse("3.81 d").ok(), Some(329_184_000_000_000));
        assert!(super::parse("5 weeks").is_err());
    }
}
