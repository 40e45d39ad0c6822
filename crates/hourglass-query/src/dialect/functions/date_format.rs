//! Formatting and parsing timestamps as text: `date_format(ts, format)` and
//! `date_parse(text, format)` with MySQL-style format letters (`%Y-%m-%d %H:%i:%s`), and
//! `format_datetime(ts, pattern)` / `parse_datetime(text, pattern)` with Joda-style patterns
//! (`yyyy-MM-dd HH:mm:ss`). Both are translated to chrono's `strftime` items. `date_format`
//! replaces DataFusion's function of that name (which takes chrono letters) in Timestream
//! sessions.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, StringArray, TimestampNanosecondArray};
use arrow::datatypes::TimestampNanosecondType;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::ScalarUDF;

use super::calendar::strings;
use super::{returns_timestamp, returns_utf8, simple, Arg};

/// A piece of a translated format: chrono text, or the day of month with an English suffix
/// (MySQL's `%D`, which chrono lacks).
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Chrono(String),
    DaySuffix,
}

/// MySQL format letters (as Trino's `date_format` reads them) → chrono.
fn from_mysql(format: &str) -> Result<Vec<Piece>> {
    let mut out = vec![];
    let mut text = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let Some(letter) = chars.next() else {
            text.push_str("%%");
            break;
        };
        let spec = match letter {
            'a' => "%a",
            'b' => "%b",
            'c' => "%-m",
            'd' => "%d",
            'e' => "%-d",
            'f' => "%6f",
            'H' => "%H",
            'h' | 'I' => "%I",
            'i' => "%M",
            'j' => "%j",
            'k' => "%-H",
            'l' => "%-I",
            'M' => "%B",
            'm' => "%m",
            'p' => "%p",
            'r' => "%I:%M:%S %p",
            'S' | 's' => "%S",
            'T' => "%H:%M:%S",
            'v' => "%V",
            'W' => "%A",
            'w' => "%w",
            'x' => "%G",
            'Y' => "%Y",
            'y' => "%y",
            '%' => "%%",
            'D' => {
                out.push(Piece::Chrono(std::mem::take(&mut text)));
                out.push(Piece::DaySuffix);
                continue;
            }
            other => return exec_err!("date_format: the format letter %{other} is not supported"),
        };
        text.push_str(spec);
    }
    out.push(Piece::Chrono(text));
    Ok(out)
}

/// Joda pattern letters (as Trino's `format_datetime` reads them) → chrono.
fn from_joda(pattern: &str) -> Result<Vec<Piece>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal text; '' is a quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\'') {
                text.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                if chars[j] == '%' {
                    text.push_str("%%");
                } else {
                    text.push(chars[j]);
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let spec: String = match (c, n) {
            ('y' | 'Y' | 'u', 2) => "%y".into(),
            ('y' | 'Y' | 'u', _) => "%Y".into(),
            ('x', _) => "%G".into(),
            ('M', 1) => "%-m".into(),
            ('M', 2) => "%m".into(),
            ('M', 3) => "%b".into(),
            ('M', _) => "%B".into(),
            ('d', 1) => "%-d".into(),
            ('d', _) => "%d".into(),
            ('D', _) => "%j".into(),
            ('E', 1..=3) => "%a".into(),
            ('E', _) => "%A".into(),
            ('e', _) => "%u".into(),
            ('w', _) => "%V".into(),
            ('H', 1) => "%-H".into(),
            ('H', _) => "%H".into(),
            ('k', _) => "%H".into(),
            ('h' | 'K', 1) => "%-I".into(),
            ('h' | 'K', _) => "%I".into(),
            ('m', 1) => "%-M".into(),
            ('m', _) => "%M".into(),
            ('s', 1) => "%-S".into(),
            ('s', _) => "%S".into(),
            ('S', 1..=3) => "%3f".into(),
            ('S', 4..=6) => "%6f".into(),
            ('S', _) => "%9f".into(),
            ('a', _) => "%p".into(),
            ('Z', _) => "%:z".into(),
            ('z', _) => "UTC".into(),
            ('%', _) => "%%".repeat(n),
            (c, _) if c.is_ascii_alphabetic() => {
                return exec_err!("format_datetime: the pattern letter {c} is not supported")
            }
            (c, _) => c.to_string().repeat(n),
        };
        text.push_str(&spec);
        i += n;
    }
    Ok(vec![Piece::Chrono(text)])
}

fn suffix(day: u32) -> &'static str {
    match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

fn render(t: NaiveDateTime, pieces: &[Piece]) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Chrono(f) => s.push_str(&t.format(f).to_string()),
            Piece::DaySuffix => {
                s.push_str(&t.day().to_string());
                s.push_str(suffix(t.day()));
            }
        }
    }
    s
}

fn parse(text: &str, pieces: &[Piece]) -> Result<i64> {
    let format = match pieces {
        [Piece::Chrono(f)] => f.as_str(),
        _ => return exec_err!("this format cannot be used for parsing"),
    };
    let t = NaiveDateTime::parse_from_str(text, format).or_else(|e| {
        NaiveDate::parse_from_str(text, format)
            .map(|d| d.and_time(chrono::NaiveTime::MIN))
            .or_else(|_| exec_err!("Invalid text '{text}' for format '{format}': {e}"))
    })?;
    t.and_utc()
        .timestamp_nanos_opt()
        .map_or_else(|| exec_err!("'{text}' is out of the timestamp range"), Ok)
}

fn format_kernel(a: &[ArrayRef], translate: fn(&str) -> Result<Vec<Piece>>) -> Result<ArrayRef> {
    let times = a[0].as_primitive::<TimestampNanosecondType>();
    let formats = strings(&a[1])?;
    let mut cache: Option<(String, Vec<Piece>)> = None;
    let mut out = Vec::with_capacity(times.len());
    for (t, f) in times.iter().zip(formats) {
        let (Some(t), Some(f)) = (t, f) else {
            out.push(None);
            continue;
        };
        if cache.as_ref().is_none_or(|(k, _)| *k != f) {
            let pieces = translate(&f)?;
            cache = Some((f, pieces));
        }
        let pieces = cache.as_ref().map(|(_, p)| p.as_slice()).unwrap_or(&[]);
        out.push(Some(render(
            DateTime::from_timestamp_nanos(t).naive_utc(),
            pieces,
        )));
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn parse_kernel(a: &[ArrayRef], translate: fn(&str) -> Result<Vec<Piece>>) -> Result<ArrayRef> {
    let texts = strings(&a[0])?;
    let formats = strings(&a[1])?;
    let out = texts
        .into_iter()
        .zip(formats)
        .map(|(t, f)| match (t, f) {
            (Some(t), Some(f)) => parse(&t, &translate(&f)?).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<TimestampNanosecondArray>>()?;
    Ok(Arc::new(out))
}

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        simple(
            "date_parse",
            vec![vec![Arg::Utf8, Arg::Utf8]],
            returns_timestamp,
            |a, _| parse_kernel(a, from_mysql),
        ),
        simple(
            "format_datetime",
            vec![vec![Arg::Timestamp, Arg::Utf8]],
            returns_utf8,
            |a, _| format_kernel(a, from_joda),
        ),
        simple(
            "parse_datetime",
            vec![vec![Arg::Utf8, Arg::Utf8]],
            returns_timestamp,
            |a, _| parse_kernel(a, from_joda),
        ),
    ]
}

/// `date_format` with MySQL letters, for Timestream sessions.
pub fn timestream_overrides() -> Vec<ScalarUDF> {
    vec![simple(
        "date_format",
        vec![vec![Arg::Timestamp, Arg::Utf8]],
        returns_utf8,
        |a, _| format_kernel(a, from_mysql),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(nanos: i64) -> NaiveDateTime {
        DateTime::from_timestamp_nanos(nanos).naive_utc()
    }

    #[test]
    fn mysql_and_joda() -> Result<()> {
        // 2024-01-02T03:04:05.006
        let t = 1_704_164_645_006_000_000;
        assert_eq!(
            render(at(t), &from_mysql("%Y-%m-%d %H:%i:%s.%f %W %D %b")?),
            "2024-01-02 03:04:05.006000 Tuesday 2nd Jan"
        );
        assert_eq!(
            render(at(t), &from_joda("yyyy-MM-dd'T'HH:mm:ss.SSS EEE")?),
            "2024-01-02T03:04:05.006 Tue"
        );
        assert_eq!(
            parse("2024-01-02 03:04:05", &from_mysql("%Y-%m-%d %H:%i:%s")?)?,
            t - 6_000_000
        );
        assert_eq!(
            parse("2024-01-02", &from_joda("yyyy-MM-dd")?)?,
            1_704_153_600_000_000_000
        );
        Ok(())
    }
}
