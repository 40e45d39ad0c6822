//! Parsing of unquoted field values (floats, `i` integers, `u` unsigned integers, booleans) and
//! timestamps from the raw bytes the scanner cut out of a line.
//!
//! The scanner hands over the bytes between `=` and the next `,`/space; this module decides the
//! type and value, or says why the text is not a valid value ([`ValueError`]). The scanner turns
//! that into a message naming the field and the column. Quoted strings are handled by the scanner.

use hourglass_core::ColumnType;

/// A decoded field value. Small and `Copy` so it travels in registers; a string is the index of
/// its text in the scanned line (see `ScannedLine::string`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FieldValue {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    String(usize),
    Boolean(bool),
}

impl FieldValue {
    /// The column type a value of this kind creates or must match.
    pub(crate) fn column_type(self) -> ColumnType {
        match self {
            FieldValue::Float(_) => ColumnType::Double,
            FieldValue::Integer(_) => ColumnType::Bigint,
            FieldValue::Unsigned(_) => ColumnType::Ubigint,
            FieldValue::String(_) => ColumnType::Varchar,
            FieldValue::Boolean(_) => ColumnType::Boolean,
        }
    }
}

/// Why an unquoted value could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueError {
    /// Not a number, boolean or quoted string.
    Unrecognized,
    /// Starts like a number but is not one.
    InvalidNumber,
    /// `nan`, `inf`, `infinity` in any case and sign.
    NotFinite,
    /// A float whose magnitude does not fit in f64 (`1e400`).
    FloatOutOfRange,
    /// A malformed `i` integer (`1.5i`, `i`).
    InvalidInteger,
    IntegerOutOfRange,
    /// A malformed `u` integer.
    InvalidUnsigned,
    UnsignedNegative,
    UnsignedOutOfRange,
    /// Starts with `t`/`f` but is not one of the accepted spellings.
    InvalidBoolean,
}

impl ValueError {
    /// The message for value text `raw` of field `key` at 1-based byte column `column`.
    pub(crate) fn message(self, raw: &[u8], key: &str, column: usize) -> String {
        let raw = String::from_utf8_lossy(raw);
        let head =
            |what: &str| format!("invalid {what} '{raw}' for field '{key}' at column {column}");
        match self {
            ValueError::Unrecognized => format!(
                "{}: expected a number, a boolean or a double-quoted string",
                head("value")
            ),
            ValueError::InvalidNumber => head("number"),
            ValueError::NotFinite => {
                format!("{}: NaN and infinity are not supported", head("number"))
            }
            ValueError::FloatOutOfRange => {
                format!("{}: out of range for a 64-bit float", head("number"))
            }
            ValueError::InvalidInteger => head("integer"),
            ValueError::IntegerOutOfRange => format!(
                "{}: out of range for a 64-bit signed integer",
                head("integer")
            ),
            ValueError::InvalidUnsigned => head("unsigned integer"),
            ValueError::UnsignedNegative => format!(
                "{}: unsigned integers cannot be negative",
                head("unsigned integer")
            ),
            ValueError::UnsignedOutOfRange => format!(
                "{}: out of range for a 64-bit unsigned integer",
                head("unsigned integer")
            ),
            ValueError::InvalidBoolean => format!(
                "{}: expected t, T, true, True, TRUE, f, F, false, False or FALSE",
                head("boolean")
            ),
        }
    }
}

/// Parses an unquoted, non-empty field value.
#[inline]
pub(crate) fn parse_unquoted(raw: &[u8]) -> Result<FieldValue, ValueError> {
    let Some(&first) = raw.first() else {
        return Err(ValueError::Unrecognized);
    };
    match first {
        b'0'..=b'9' | b'-' | b'.' | b'+' => parse_number(raw),
        b't' | b'T' | b'f' | b'F' => parse_bool(raw),
        b'n' | b'N' | b'i' | b'I' if is_non_finite_word(raw) => Err(ValueError::NotFinite),
        _ => Err(ValueError::Unrecognized),
    }
}

fn parse_bool(raw: &[u8]) -> Result<FieldValue, ValueError> {
    match raw {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => Ok(FieldValue::Boolean(true)),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => Ok(FieldValue::Boolean(false)),
        _ => Err(ValueError::InvalidBoolean),
    }
}

fn is_non_finite_word(raw: &[u8]) -> bool {
    let word = match raw.first() {
        Some(b'-' | b'+') => &raw[1..],
        _ => raw,
    };
    word.eq_ignore_ascii_case(b"nan")
        || word.eq_ignore_ascii_case(b"inf")
        || word.eq_ignore_ascii_case(b"infinity")
}

#[inline]
fn parse_number(raw: &[u8]) -> Result<FieldValue, ValueError> {
    match raw.last() {
        Some(b'i') => parse_signed(&raw[..raw.len() - 1])
            .map(FieldValue::Integer)
            .map_err(|e| e.unwrap_or(ValueError::InvalidInteger)),
        Some(b'u') => parse_unsigned(&raw[..raw.len() - 1]).map(FieldValue::Unsigned),
        _ => parse_float(raw).map(FieldValue::Float),
    }
}

/// Accumulates decimal digits; `Err(true)` on overflow, `Err(false)` on an empty or non-digit text.
#[inline]
fn digits_to_u64(digits: &[u8]) -> Result<u64, bool> {
    if digits.is_empty() {
        return Err(false);
    }
    let mut n: u64 = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return Err(false);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(true)?;
    }
    Ok(n)
}

/// Parses `-?[0-9]+` into i64. `Err(None)` is a syntax error (the caller names the kind).
#[inline]
pub(crate) fn parse_signed(raw: &[u8]) -> Result<i64, Option<ValueError>> {
    let (negative, digits) = match raw.first() {
        Some(b'-') => (true, &raw[1..]),
        _ => (false, raw),
    };
    let magnitude = match digits_to_u64(digits) {
        Ok(m) => m,
        Err(true) => return Err(Some(ValueError::IntegerOutOfRange)),
        Err(false) => return Err(None),
    };
    if negative {
        if magnitude == 1u64 << 63 {
            Ok(i64::MIN)
        } else {
            i64::try_from(magnitude)
                .map(|m| -m)
                .map_err(|_| Some(ValueError::IntegerOutOfRange))
        }
    } else {
        i64::try_from(magnitude).map_err(|_| Some(ValueError::IntegerOutOfRange))
    }
}

fn parse_unsigned(raw: &[u8]) -> Result<u64, ValueError> {
    if let Some(rest) = raw.strip_prefix(b"-") {
        return match digits_to_u64(rest) {
            Ok(0) => Ok(0),
            Ok(_) | Err(true) => Err(ValueError::UnsignedNegative),
            Err(false) => Err(ValueError::InvalidUnsigned),
        };
    }
    match digits_to_u64(raw) {
        Ok(n) => Ok(n),
        Err(true) => Err(ValueError::UnsignedOutOfRange),
        Err(false) => Err(ValueError::InvalidUnsigned),
    }
}

/// Parses `-?(digits[.digits]|.digits)([eE][+-]?digits)?` into a finite f64.
fn parse_float(raw: &[u8]) -> Result<f64, ValueError> {
    // Fast path: a plain integer that f64 represents exactly.
    let (negative, body) = match raw.first() {
        Some(b'-') => (true, &raw[1..]),
        _ => (false, raw),
    };
    if body.len() <= 15 {
        if let Ok(n) = digits_to_u64(body) {
            #[allow(clippy::cast_precision_loss)] // n < 10^15 < 2^53: exact
            let v = n as f64;
            return Ok(if negative { -v } else { v });
        }
    }
    if is_non_finite_word(raw) {
        return Err(ValueError::NotFinite);
    }
    if !is_float_syntax(body) {
        return Err(ValueError::InvalidNumber);
    }
    let text = std::str::from_utf8(raw).map_err(|_| ValueError::InvalidNumber)?;
    let v: f64 = text.parse().map_err(|_| ValueError::InvalidNumber)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ValueError::FloatOutOfRange)
    }
}

/// The unsigned part of a float literal: mantissa with at least one digit, optional exponent.
fn is_float_syntax(b: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = count_digits(&b[i..]);
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = count_digits(&b[i..]);
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = count_digits(&b[i..]);
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> FieldValue {
        parse_unquoted(raw.as_bytes()).unwrap()
    }
    fn err(raw: &str) -> ValueError {
        parse_unquoted(raw.as_bytes()).unwrap_err()
    }

    #[test]
    fn floats_including_exponents_and_bare_integers() {
        assert_eq!(ok("1"), FieldValue::Float(1.0));
        assert_eq!(ok("-0"), FieldValue::Float(-0.0));
        assert_eq!(ok("1.5"), FieldValue::Float(1.5));
        assert_eq!(ok("-1.5E-3"), FieldValue::Float(-1.5e-3));
        assert_eq!(ok("1e10"), FieldValue::Float(1e10));
        assert_eq!(ok("1E+2"), FieldValue::Float(100.0));
        assert_eq!(ok(".5"), FieldValue::Float(0.5));
        assert_eq!(ok("5."), FieldValue::Float(5.0));
        assert_eq!(
            ok("123456789012345678"),
            FieldValue::Float(1.2345678901234568e17)
        );
        assert_eq!(ok("1.7976931348623157e308"), FieldValue::Float(f64::MAX));
        for bad in [
            "1.2.3", "1e", "1e+", ".", "-", "-.", "+1", "1x", "0x10", "1_000", "1..2",
        ] {
            assert_eq!(err(bad), ValueError::InvalidNumber, "{bad}");
        }
    }

    #[test]
    fn nan_and_infinity_are_rejected() {
        for bad in [
            "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "+inf", "INF",
        ] {
            assert_eq!(err(bad), ValueError::NotFinite, "{bad}");
        }
        assert_eq!(err("1e400"), ValueError::FloatOutOfRange);
        assert_eq!(err("-1e400"), ValueError::FloatOutOfRange);
    }

    #[test]
    fn signed_integer_bounds() {
        assert_eq!(ok("0i"), FieldValue::Integer(0));
        assert_eq!(ok("-42i"), FieldValue::Integer(-42));
        assert_eq!(ok("9223372036854775807i"), FieldValue::Integer(i64::MAX));
        assert_eq!(ok("-9223372036854775808i"), FieldValue::Integer(i64::MIN));
        assert_eq!(err("9223372036854775808i"), ValueError::IntegerOutOfRange);
        assert_eq!(err("-9223372036854775809i"), ValueError::IntegerOutOfRange);
        assert_eq!(
            err("99999999999999999999999i"),
            ValueError::IntegerOutOfRange
        );
        for bad in ["1.5i", "-i", "1e3i", "+1i", "1 i", "--1i"] {
            assert_eq!(err(bad), ValueError::InvalidInteger, "{bad}");
        }
    }

    #[test]
    fn unsigned_integer_bounds() {
        assert_eq!(ok("0u"), FieldValue::Unsigned(0));
        assert_eq!(ok("18446744073709551615u"), FieldValue::Unsigned(u64::MAX));
        assert_eq!(ok("-0u"), FieldValue::Unsigned(0));
        assert_eq!(err("18446744073709551616u"), ValueError::UnsignedOutOfRange);
        assert_eq!(err("-1u"), ValueError::UnsignedNegative);
        assert_eq!(
            err("-99999999999999999999999u"),
            ValueError::UnsignedNegative
        );
        assert_eq!(err("1.0u"), ValueError::InvalidUnsigned);
        assert_eq!(err("u"), ValueError::Unrecognized);
    }

    #[test]
    fn booleans_in_all_accepted_spellings() {
        for t in ["t", "T", "true", "True", "TRUE"] {
            assert_eq!(ok(t), FieldValue::Boolean(true), "{t}");
        }
        for f in ["f", "F", "false", "False", "FALSE"] {
            assert_eq!(ok(f), FieldValue::Boolean(false), "{f}");
        }
        for bad in ["tRUE", "truee", "fals", "yes"] {
            assert!(
                matches!(
                    err(bad),
                    ValueError::InvalidBoolean | ValueError::Unrecognized
                ),
                "{bad}"
            );
        }
        assert_eq!(err("tRUE"), ValueError::InvalidBoolean);
        assert_eq!(err("yes"), ValueError::Unrecognized);
        assert_eq!(err("e5"), ValueError::Unrecognized);
    }

    #[test]
    fn messages_name_value_field_and_column() {
        assert_eq!(
            ValueError::IntegerOutOfRange.message(b"9223372036854775808i", "x", 7),
            "invalid integer '9223372036854775808i' for field 'x' at column 7: \
             out of range for a 64-bit signed integer"
        );
        assert_eq!(
            ValueError::Unrecognized.message(b"abc", "f", 5),
            "invalid value 'abc' for field 'f' at column 5: expected a number, a boolean or a \
             double-quoted string"
        );
    }

    #[test]
    fn signed_parser_used_for_timestamps() {
        assert_eq!(parse_signed(b"-5"), Ok(-5));
        assert_eq!(parse_signed(b"12a"), Err(None));
        assert_eq!(parse_signed(b""), Err(None));
        assert_eq!(
            parse_signed(b"9223372036854775808"),
            Err(Some(ValueError::IntegerOutOfRange))
        );
    }
}
