//! Prometheus duration strings (`10s`, `1m30s`, `2h`, `500ms`, `1d`, `0`): parsing and rendering.

use std::time::Duration;

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration: one or more `<integer><unit>` with units in decreasing order
/// (`y w d h m s ms`), each at most once, or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let bad = || format!("invalid duration `{text}`: expected e.g. `30s`, `1m30s`, `2h`, `500ms`");
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // `ms` before `m` so that `500ms` is not read as minutes followed by garbage.
        let unit = if rest.starts_with("ms") {
            6
        } else {
            UNITS
                .iter()
                .position(|(u, _)| *u != "ms" && rest.starts_with(u))
                .ok_or_else(bad)?
        };
        if last_unit.is_some_and(|l| l >= unit) {
            return Err(bad());
        }
        last_unit = Some(unit);
        rest = &rest[UNITS[unit].0.len()..];
        total = n
            .checked_mul(UNITS[unit].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Renders a duration the way Prometheus does (`1m30s`, `0s`), losing sub-millisecond parts.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h5m"), Ok(Duration::from_secs(3900)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in ["", "10", "s", "1.5s", "30s1m", "1m1m", "10 s", "-1s", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        for s in ["1m30s", "2h", "1d1h", "250ms"] {
            assert_eq!(format_duration(parse_duration(s).unwrap_or_default()), s);
        }
    }
}
