//! Timestamps and precisions.
//!
//! All stored times are `i64` nanoseconds since the Unix epoch, UTC. Wire formats give times in a
//! [`Precision`]; [`Precision::to_nanos`] converts with overflow checks.

use crate::error::{Error, Result};

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_HOUR: i64 = 3_600 * NANOS_PER_SECOND;
pub const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;

/// The unit of a wire timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanosecond,
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    /// InfluxDB 3's `auto`: the unit is guessed from the magnitude of each timestamp (seconds
    /// below 5e9, milliseconds below 5e12, microseconds below 5e15, else nanoseconds).
    Auto,
}

impl Precision {
    /// Parses the precision names of InfluxDB v1 (`n`, `u`, `ms`, `s`, `m`, `h`), v2 (`ns`, `us`,
    /// `ms`, `s`) and v3 (`nanosecond`, ..., `second`, `auto`; `auto` means nanoseconds here).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "" | "n" | "ns" | "nanosecond" => Precision::Nanosecond,
            "auto" => Precision::Auto,
            "u" | "us" | "µ" | "µs" | "microsecond" => Precision::Microsecond,
            "ms" | "millisecond" => Precision::Millisecond,
            "s" | "second" => Precision::Second,
            "m" | "minute" => Precision::Minute,
            "h" | "hour" => Precision::Hour,
            other => {
                return Err(Error::invalid(format!(
                    "invalid precision '{other}': expected one of ns, us, ms, s (or n, u, m, h)"
                )))
            }
        })
    }

    pub fn nanos_per_unit(self) -> i64 {
        match self {
            Precision::Nanosecond => 1,
            Precision::Microsecond => 1_000,
            Precision::Millisecond => 1_000_000,
            Precision::Second => NANOS_PER_SECOND,
            Precision::Minute => 60 * NANOS_PER_SECOND,
            Precision::Hour => NANOS_PER_HOUR,
            Precision::Auto => 1,
        }
    }

    /// Converts a timestamp in this precision to nanoseconds; `None` when it does not fit in i64.
    pub fn to_nanos(self, value: i64) -> Option<i64> {
        let unit = match self {
            Precision::Auto => match value.unsigned_abs() {
                v if v < 5_000_000_000 => NANOS_PER_SECOND,
                v if v < 5_000_000_000_000 => 1_000_000,
                v if v < 5_000_000_000_000_000 => 1_000,
                _ => 1,
            },
            other => other.nanos_per_unit(),
        };
        value.checked_mul(unit)
    }
}

/// Formats nanoseconds as RFC 3339 with millisecond precision (`2023-02-13T19:22:45.051Z`), the
/// form Timestream uses in its reason texts.
pub fn format_millis_utc(nanos: i64) -> String {
    let millis = nanos.div_euclid(1_000_000);
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_timestream_reason_texts() {
        assert_eq!(format_millis_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_millis_utc(1_676_316_165_051_000_000),
            "2023-02-13T19:22:45.051Z"
        );
        assert_eq!(format_millis_utc(-1_000_000), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn precision_names_and_overflow() {
        assert_eq!(Precision::parse("u").unwrap(), Precision::Microsecond);
        assert_eq!(Precision::parse("second").unwrap(), Precision::Second);
        assert!(Precision::parse("fortnight").is_err());
        assert_eq!(Precision::Second.to_nanos(2), Some(2_000_000_000));
        assert_eq!(Precision::Hour.to_nanos(i64::MAX / 2), None);
        let auto = Precision::parse("auto").unwrap();
        assert_eq!(
            auto.to_nanos(1_704_067_200),
            Some(1_704_067_200_000_000_000)
        );
        assert_eq!(
            auto.to_nanos(1_704_067_200_123),
            Some(1_704_067_200_123_000_000)
        );
        assert_eq!(
            auto.to_nanos(1_704_067_200_123_456),
            Some(1_704_067_200_123_456_000)
        );
        assert_eq!(
            auto.to_nanos(1_704_067_200_123_456_789),
            Some(1_704_067_200_123_456_789)
        );
    }
}
