//! The `WITH (...)` options of UNLOAD, as Timestream documents them; an unknown option, a bad
//! value or an option given twice is an invalid-input error naming the option.

use hourglass_core::{Error, Result};

/// An option's value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Array(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    /// The manifest's `result_format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "PARQUET",
            Format::Csv => "CSV",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    None,
    /// Parquet only.
    Snappy,
    /// Parquet only.
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    SseS3,
    SseKms,
}

/// Timestream's bounds on `max_file_size`.
pub const MIN_FILE_SIZE: u64 = 16 << 20;
pub const MAX_FILE_SIZE: u64 = 78 << 30;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub format: Format,
    pub compression: Compression,
    pub partitioned_by: Vec<String>,
    /// CSV: a first line of column names.
    pub include_header: bool,
    pub field_delimiter: char,
    pub escaped_by: char,
    /// A data file past this many bytes is closed and the next rows go to a new one.
    pub max_file_size: u64,
    /// Accepted and recorded; the store's own encryption applies.
    pub encryption: Option<Encryption>,
    pub kms_key: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: Format::Parquet,
            compression: Compression::Gzip,
            partitioned_by: Vec::new(),
            include_header: false,
            field_delimiter: ',',
            escaped_by: '\\',
            max_file_size: MAX_FILE_SIZE,
            encryption: None,
            kms_key: None,
        }
    }
}

const NAMES: [&str; 9] = [
    "format",
    "compression",
    "partitioned_by",
    "include_header",
    "field_delimiter",
    "escaped_by",
    "max_file_size",
    "encryption",
    "kms_key",
];

fn bad(option: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid(format!("UNLOAD option {option}: {message}"))
}

fn text<'a>(option: &str, value: &'a Value) -> Result<&'a str> {
    match value {
        Value::Text(s) => Ok(s),
        Value::Array(_) => Err(bad(option, "takes a string, not an ARRAY")),
    }
}

fn one_of(option: &str, value: &Value, allowed: &[&str]) -> Result<usize> {
    let s = text(option, value)?;
    allowed
        .iter()
        .position(|a| a.eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| {
            bad(
                option,
                format!("'{s}' is not one of {}", allowed.join(", ")),
            )
        })
}

fn one_char(option: &str, value: &Value) -> Result<char> {
    let s = text(option, value)?;
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c != '\n' && c != '\r' && c != '"' => Ok(c),
        _ => Err(bad(
            option,
            format!("'{s}' is not one character (newlines and '\"' are not allowed)"),
        )),
    }
}

/// `'78GB'`, `'16MB'`, `'1048576'` (bytes); units KB, MB, GB, TB (powers of 1024), B.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let number: f64 = s[..digits].parse().ok()?;
    let unit = s[digits..].trim().to_ascii_uppercase();
    let scale: u64 = match unit.as_str() {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    let bytes = number * scale as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Checks `pairs` (names in any case) and fills in the defaults.
pub fn parse(pairs: &[(String, Value)]) -> Result<Options> {
    let mut o = Options::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut compression: Option<Compression> = None;
    let mut csv_only: Vec<&'static str> = Vec::new();
    for (name, value) in pairs {
        let Some(&option) = NAMES.iter().find(|n| n.eq_ignore_ascii_case(name)) else {
            return Err(Error::invalid(format!(
                "UNLOAD option {name} is not known; the options are {}",
                NAMES.join(", ")
            )));
        };
        if seen.contains(&option) {
            return Err(bad(option, "is given more than once"));
        }
        seen.push(option);
        match option {
            "format" => {
                o.format =
                    [Format::Parquet, Format::Csv][one_of(option, value, &["PARQUET", "CSV"])?];
            }
            "compression" => {
                compression = Some(
                    [
                        Compression::Gzip,
                        Compression::None,
                        Compression::Snappy,
                        Compression::Zstd,
                    ][one_of(option, value, &["GZIP", "NONE", "SNAPPY", "ZSTD"])?],
                );
            }
            "partitioned_by" => match value {
                Value::Array(cols) => {
                    for (i, c) in cols.iter().enumerate() {
                        if c.is_empty() {
                            return Err(bad(option, "a column name is empty"));
                        }
                        if cols[..i].contains(c) {
                            return Err(bad(option, format!("column '{c}' is named twice")));
                        }
                    }
                    o.partitioned_by = cols.clone();
                }
                Value::Text(_) => return Err(bad(option, "takes ARRAY['column', ...]")),
            },
            "include_header" => {
                o.include_header = one_of(option, value, &["false", "true"])? == 1;
                csv_only.push(option);
            }
            "field_delimiter" => {
                o.field_delimiter = one_char(option, value)?;
                csv_only.push(option);
            }
            "escaped_by" => {
                o.escaped_by = one_char(option, value)?;
                csv_only.push(option);
            }
            "max_file_size" => {
                let s = text(option, value)?;
                let size = parse_size(s).ok_or_else(|| {
                    bad(
                        option,
                        format!("'{s}' is not a size such as '16MB' or '78GB'"),
                    )
                })?;
                if !(MIN_FILE_SIZE..=MAX_FILE_SIZE).contains(&size) {
                    return Err(bad(option, format!("'{s}' is not between 16MB and 78GB")));
                }
                o.max_file_size = size;
            }
            "encryption" => {
                o.encryption = Some(
                    [Encryption::SseS3, Encryption::SseKms]
                        [one_of(option, value, &["SSE_S3", "SSE_KMS"])?],
                );
            }
            _ => {
                let key = text(option, value)?;
                if key.trim().is_empty() {
                    return Err(bad(option, "is empty"));
                }
                o.kms_key = Some(key.to_string());
            }
        }
    }
    if let Some(c) = compression {
        if o.format == Format::Csv && matches!(c, Compression::Snappy | Compression::Zstd) {
            return Err(bad(
                "compression",
                "CSV takes GZIP or NONE (SNAPPY and ZSTD are for PARQUET)",
            ));
        }
        o.compression = c;
    }
    if o.format == Format::Parquet {
        if let Some(option) = csv_only.first() {
            return Err(bad(option, "applies to format = 'CSV' only"));
        }
    }
    if o.field_delimiter == o.escaped_by {
        return Err(bad("escaped_by", "must differ from field_delimiter"));
    }
    if o.kms_key.is_some() && o.encryption != Some(Encryption::SseKms) {
        return Err(bad("kms_key", "needs encryption = 'SSE_KMS'"));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    fn parse_pairs(pairs: &[(&str, Value)]) -> Result<Options> {
        let owned: Vec<(String, Value)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        parse(&owned)
    }

    fn err(pairs: &[(&str, Value)]) -> String {
        parse_pairs(pairs).unwrap_err().to_string()
    }

    #[test]
    fn every_option() {
        let o = parse_pairs(&[
            ("FORMAT", t("csv")),
            ("compression", t("GZIP")),
            ("partitioned_by", Value::Array(vec!["a".into(), "b".into()])),
            ("include_header", t("true")),
            ("field_delimiter", t("|")),
            ("escaped_by", t("~")),
            ("max_file_size", t("16MB")),
            ("encryption", t("SSE_KMS")),
            ("kms_key", t("arn:aws:kms:key")),
        ])
        .unwrap();
        assert_eq!(o.format, Format::Csv);
        assert_eq!(o.compression, Compression::Gzip);
        assert_eq!(o.partitioned_by, vec!["a", "b"]);
        assert!(o.include_header);
        assert_eq!((o.field_delimiter, o.escaped_by), ('|', '~'));
        assert_eq!(o.max_file_size, 16 << 20);
        assert_eq!(o.encryption, Some(Encryption::SseKms));
        assert_eq!(o.kms_key.as_deref(), Some("arn:aws:kms:key"));
        let p = parse_pairs(&[
            ("format", t("PARQUET")),
            ("compression", t("zstd")),
            ("max_file_size", t("78GB")),
            ("encryption", t("SSE_S3")),
        ])
        .unwrap();
        assert_eq!(p.compression, Compression::Zstd);
        assert_eq!(p.max_file_size, 78 << 30);
        assert_eq!(
            parse_pairs(&[("compression", t("snappy"))])
                .unwrap()
                .compression,
            Compression::Snappy
        );
        assert_eq!(parse_pairs(&[]).unwrap(), Options::default());
    }

    #[test]
    fn errors_name_the_option() {
        assert!(err(&[("fromat", t("CSV"))]).contains("fromat is not known"));
        assert!(err(&[("format", t("JSON"))]).contains("option format: 'JSON'"));
        assert!(err(&[("format", t("CSV")), ("Format", t("CSV"))]).contains("more than once"));
        assert!(err(&[("format", t("CSV")), ("compression", t("SNAPPY"))]).contains("compression"));
        assert!(err(&[("compression", t("LZO"))]).contains("option compression"));
        assert!(err(&[("partitioned_by", t("a"))]).contains("option partitioned_by"));
        assert!(
            err(&[("partitioned_by", Value::Array(vec!["a".into(), "a".into()]))])
                .contains("named twice")
        );
        assert!(err(&[("format", t("CSV")), ("include_header", t("yes"))])
            .contains("option include_header"));
        assert!(err(&[("format", t("CSV")), ("field_delimiter", t(",,"))])
            .contains("option field_delimiter"));
        assert!(err(&[("format", t("CSV")), ("escaped_by", t(""))]).contains("option escaped_by"));
        assert!(err(&[("format", t("CSV")), ("escaped_by", t(","))]).contains("escaped_by"));
        assert!(err(&[("max_file_size", t("1MB"))]).contains("option max_file_size"));
        assert!(err(&[("max_file_size", t("79GB"))]).contains("option max_file_size"));
        assert!(err(&[("max_file_size", t("big"))]).contains("option max_file_size"));
        assert!(err(&[("encryption", t("AES"))]).contains("option encryption"));
        assert!(err(&[("kms_key", t("k"))]).contains("option kms_key"));
        assert!(err(&[("include_header", t("true"))]).contains("format = 'CSV' only"));
        assert!(err(&[("format", Value::Array(vec![]))]).contains("option format"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MB"), Some(16 << 20));
        assert_eq!(parse_size("1.5 kb"), Some(1536));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("2TB"), Some(2 << 40));
        assert_eq!(parse_size("MB"), None);
        assert_eq!(parse_size("3PB"), None);
    }
}
