//! Trino's `ROW` type: `CAST(x AS ROW(name type, ...))` (and `ARRAY(type)`, nested in each other),
//! as Timestream has it — e.g. the accumulator of `reduce(ts, CAST(ROW(0.0, 0) AS ROW(sum DOUBLE,
//! count INTEGER)), (s, x) -> ..., s -> s.sum / s.count)`.
//!
//! A row is an Arrow struct. `ROW(a, b)` builds one (DataFusion's `row`/`struct`, fields `c0`,
//! `c1`, ...), `r.name` reads a field (on a column, DataFusion's compound names; on a lambda
//! parameter, the rewrite's `get_field`).
//!
//! sqlparser reads a type `ROW(x BIGINT, y DOUBLE)` as a custom type with flattened modifiers,
//! which loses its structure, so:
//!
//! 1. [`rewrite_tokens`] replaces the target type of a `CAST`/`TRY_CAST` that starts with `ROW(`
//!    or `ARRAY(` by one quoted identifier holding the type's text behind [`MARKER`] (sqlparser
//!    parses it as a custom type name; the token keeps the type's span);
//! 2. the AST rewrite ([`super::rewrite`]) turns such a cast into `hg_cast(x, '<type>')`
//!    (`hg_try_cast` for `TRY_CAST`);
//! 3. those functions ([`udfs`]) parse the type ([`parse_type`]) and cast as Trino does: a row to
//!    a row field by field **by position** (the target's names replace the source's; Arrow's
//!    cast would match fields by name), an array element by element, anything else with
//!    DataFusion's cast.
//!
//! Type names are Timestream's: `BIGINT`, `INTEGER`/`INT`, `SMALLINT`, `TINYINT`, `DOUBLE`,
//! `REAL`/`FLOAT`, `VARCHAR[(n)]`, `BOOLEAN`, `TIMESTAMP`, `DATE`, `TIME`, `ARRAY(T)` (or
//! `ARRAY<T>`), `ROW([name] T, ...)` (unnamed fields are `c0`, `c1`, ...).

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, ListArray, StructArray};
use arrow::compute::CastOptions;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};
use arrow::util::display::FormatOptions;
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan, Word};

use super::functions::TIMESTAMP;

/// The prefix of the quoted identifier standing for a `ROW(...)`/`ARRAY(...)` cast target.
pub const MARKER: &str = "\u{1}hg_type:";

fn is_word(t: &Token, word: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn next_significant(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
}

/// The index of the `)` closing the `(` at `open`.
fn matching_paren(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Replaces each `ROW(...)`/`ARRAY(...)` target type of a `CAST`/`TRY_CAST` by one quoted
/// identifier `MARKER<type text>`.
pub fn rewrite_tokens(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    // The paren depths just inside each open CAST(.
    let mut casts: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut cast_pending = false;
    let mut i = 0;
    while i < tokens.len() {
        let tok = &tokens[i];
        match &tok.token {
            Token::Whitespace(_) => {}
            Token::LParen => {
                depth += 1;
                if cast_pending {
                    casts.push(depth);
                }
                cast_pending = false;
            }
            Token::RParen => {
                if casts.last() == Some(&depth) {
                    casts.pop();
                }
                depth = depth.saturating_sub(1);
                cast_pending = false;
            }
            t if is_word(t, "cast") || is_word(t, "try_cast") => cast_pending = true,
            t if is_word(t, "as") && casts.last() == Some(&depth) => {
                cast_pending = false;
                let target = next_significant(&tokens, i + 1).and_then(|j| {
                    let is_nested =
                        is_word(&tokens[j].token, "row") || is_word(&tokens[j].token, "array");
                    let open = next_significant(&tokens, j + 1)?;
                    (is_nested && tokens[open].token == Token::LParen)
                        .then(|| matching_paren(&tokens, open).map(|close| (j, close)))
                        .flatten()
                });
                if let Some((start, end)) = target {
                    out.extend(tokens[i..start].iter().cloned());
                    let text: String = tokens[start..=end]
                        .iter()
                        .map(|t| t.token.to_string())
                        .collect();
                    let span = Span::new(tokens[start].span.start, tokens[end].span.end);
                    out.push(TokenWithSpan::new(
                        Token::Word(Word {
                            value: format!("{MARKER}{text}"),
                            quote_style: Some('"'),
                            keyword: Keyword::NoKeyword,
                        }),
                        span,
                    ));
                    i = end + 1;
                    continue;
                }
            }
            _ => cast_pending = false,
        }
        out.push(tok.clone());
        i += 1;
    }
    out
}

/// The type text behind [`MARKER`] in a custom type name, if it is one.
pub fn marked_type(name: &str) -> Option<&str> {
    name.strip_prefix(MARKER)
}

// --- Type parsing -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Number(String),
    Sym(char),
}

fn lex(text: &str) -> std::result::Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        s.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        s.push(*c);
                        i += 1;
                    }
                    None => return Err("unterminated quoted name".into()),
                }
            }
            out.push(Tok::Quoted(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Tok::Number(chars[start..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else if "(),<>".contains(c) {
            out.push(Tok::Sym(c));
            i += 1;
        } else {
            return Err(format!("unexpected '{c}'"));
        }
    }
    Ok(out)
}

struct TypeParser {
    toks: Vec<Tok>,
    pos: usize,
}

impl TypeParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}'"))
        }
    }
    fn word(&mut self) -> std::result::Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w.to_ascii_lowercase()),
            other => Err(format!("expected a type name, got {other:?}")),
        }
    }
    /// Skips an optional `(n[, m])`.
    fn size(&mut self) -> std::result::Result<Vec<u8>, String> {
        let mut v = Vec::new();
        if self.eat('(') {
            loop {
                match self.next() {
                    Some(Tok::Number(n)) => v.push(n.parse().map_err(|_| "bad size")?),
                    other => return Err(format!("expected a number, got {other:?}")),
                }
                if !self.eat(',') {
                    break;
                }
            }
            self.expect(')')?;
        }
        Ok(v)
    }

    fn data_type(&mut self) -> std::result::Result<DataType, String> {
        let name = self.word()?;
        Ok(match name.as_str() {
            "bigint" => DataType::Int64,
            "integer" | "int" => DataType::Int32,
            "smallint" => DataType::Int16,
            "tinyint" => DataType::Int8,
            "double" => {
                if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("precision"))
                {
                    self.pos += 1;
                }
                DataType::Float64
            }
            "real" | "float" => DataType::Float32,
            "varchar" | "char" | "string" => {
                self.size()?;
                DataType::Utf8
            }
            "boolean" => DataType::Boolean,
            "timestamp" => {
                self.size()?;
                TIMESTAMP
            }
            "date" => DataType::Date32,
            "time" => {
                self.size()?;
                DataType::Time64(TimeUnit::Nanosecond)
            }
            "decimal" => {
                let s = self.size()?;
                let p = s.first().copied().unwrap_or(38);
                let scale = s.get(1).copied().unwrap_or(0);
                DataType::Decimal128(p, scale as i8)
            }
            "array" => {
                let close = if self.eat('(') {
                    ')'
                } else if self.eat('<') {
                    '>'
                } else {
                    return Err("expected ARRAY(type)".into());
                };
                let element = self.data_type()?;
                self.expect(close)?;
                DataType::List(Arc::new(Field::new("item", element, true)))
            }
            "row" => {
                self.expect('(')?;
                let mut fields = Vec::new();
                loop {
                    // `name type` when a name is followed by the start of a type.
                    let named = match (self.peek(), self.peek_at(1)) {
                        (Some(Tok::Quoted(_)), _) => true,
                        (Some(Tok::Word(_)), Some(Tok::Word(_))) => {
                            // `double precision` is one unnamed type.
                            !matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("double"))
                                || !matches!(self.peek_at(1), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("precision"))
                        }
                        _ => false,
                    };
                    let name = if named {
                        match self.next() {
                            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => w,
                            _ => unreachable!("checked above"),
                        }
                    } else {
                        format!("c{}", fields.len())
                    };
                    let t = self.data_type()?;
                    fields.push(Field::new(name, t, true));
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect(')')?;
                DataType::Struct(Fields::from(fields))
            }
            other => return Err(format!("Unknown type: {other}")),
        })
    }
}

/// The Arrow type of a Timestream type name (`ROW(x BIGINT, y ARRAY(DOUBLE))`, ...).
pub fn parse_type(text: &str) -> std::result::Result<DataType, String> {
    let mut p = TypeParser {
        toks: lex(text)?,
        pos: 0,
    };
    let t = p.data_type()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected text after the type in '{text}'"));
    }
    Ok(t)
}

/// Timestream's name of an Arrow type (for messages).
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Int64 => "bigint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Float64 => "double".into(),
        DataType::Float32 => "real".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Null => "unknown".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("array({})", type_name(f.data_type()))
        }
        DataType::Struct(fields) => format!(
            "row({})",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string().to_ascii_lowercase(),
    }
}

// --- Casting ------------------------------------------------------------------------------------

/// Casts as Trino does: rows field by field by position, arrays element by element.
pub fn cast(array: &ArrayRef, to: &DataType, safe: bool) -> Result<ArrayRef> {
    let from = array.data_type();
    if from == to {
        return Ok(Arc::clone(array));
    }
    match (from, to) {
        (DataType::Null, _) => Ok(new_null_array(to, array.len())),
        (DataType::Struct(from_fields), DataType::Struct(to_fields)) => {
            if from_fields.len() != to_fields.len() {
                return exec_err!("Cannot cast {} to {}", type_name(from), type_name(to));
            }
            let s = array.as_struct();
            let columns = s
                .columns()
                .iter()
                .zip(to_fields.iter())
                .map(|(c, f)| cast(c, f.data_type(), safe))
                .collect::<Result<Vec<_>>>()?;
            let fields: Fields = to_fields
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true))
                .collect();
            Ok(Arc::new(StructArray::try_new(
                fields,
                columns,
                s.nulls().cloned(),
            )?))
        }
        (
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _),
            DataType::List(to_item),
        ) => {
            let list = match from {
                DataType::List(_) => array.as_list::<i32>().clone(),
                _ => {
                    let f = Arc::new(Field::new("item", list_item(from).clone(), true));
                    arrow::compute::cast(array, &DataType::List(f))?
                        .as_list::<i32>()
                        .clone()
                }
            };
            let values = cast(list.values(), to_item.data_type(), safe)?;
            Ok(Arc::new(ListArray::try_new(
                Arc::new(Field::new(
                    to_item.name(),
                    to_item.data_type().clone(),
                    true,
                )),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?))
        }
        (DataType::Struct(_), _) | (_, DataType::Struct(_)) => {
            exec_err!("Cannot cast {} to {}", type_name(from), type_name(to))
        }
        _ => {
            let options = CastOptions {
                safe,
                format_options: FormatOptions::default(),
            };
            Ok(arrow::compute::cast_with_options(array, to, &options)?)
        }
    }
}

fn list_item(t: &DataType) -> &DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type(),
        other => other,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TrinoCast {
    name: &'static str,
    safe: bool,
    signature: Signature,
}

/// `hg_cast(x, 'type')` and `hg_try_cast(x, 'type')`.
pub fn udfs() -> Vec<ScalarUDF> {
    [("hg_cast", false), ("hg_try_cast", true)]
        .into_iter()
        .map(|(name, safe)| {
            ScalarUDF::new_from_impl(TrinoCast {
                name,
                safe,
                signature: Signature::any(2, Volatility::Immutable),
            })
        })
        .collect()
}

fn target(v: Option<&ScalarValue>) -> Result<DataType> {
    match v {
        Some(ScalarValue::Utf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s)))
        | Some(ScalarValue::LargeUtf8(Some(s))) => match parse_type(s) {
            Ok(t) => Ok(t),
            Err(e) => plan_err!("{e}"),
        },
        _ => plan_err!("hg_cast needs the target type as a literal"),
    }
}

impl ScalarUDFImpl for TrinoCast {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("hg_cast: return_field_from_args is used")
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let to = target(args.scalar_arguments.get(1).copied().flatten())?;
        if let Some(from) = args.arg_fields.first().map(|f| f.data_type()) {
            if !castable(from, &to) {
                return plan_err!("Cannot cast {} to {}", type_name(from), type_name(&to));
            }
        }
        Ok(Arc::new(Field::new(self.name, to, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let to = args.return_field.data_type().clone();
        match args.args.first() {
            Some(ColumnarValue::Scalar(s)) => {
                let a = cast(&s.to_array()?, &to, self.safe)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&a, 0)?))
            }
            Some(ColumnarValue::Array(a)) => Ok(ColumnarValue::Array(cast(a, &to, self.safe)?)),
            None => exec_err!("hg_cast takes a value and a type"),
        }
    }
}

/// Whether [`cast`] can cast `from` to `to` (checked when planning).
fn castable(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        (DataType::Null, _) => true,
        (DataType::Struct(a), DataType::Struct(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|(x, y)| castable(x.data_type(), y.data_type()))
        }
        (
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _),
            DataType::List(b),
        ) => castable(list_item(from), b.data_type()),
        (DataType::Struct(_), _) | (_, DataType::Struct(_)) => false,
        _ => arrow::compute::can_cast_types(from, to),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array};
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;
    use crate::dialect::parser_dialect::TimestreamDialect;

    fn rendered(sql: &str) -> String {
        let tokens = Tokenizer::new(&TimestreamDialect, sql)
            .tokenize_with_location()
            .unwrap_or_default();
        rewrite_tokens(tokens)
            .iter()
            .map(|t| t.token.to_string().replace(MARKER, "<T>"))
            .collect()
    }

    #[test]
    fn cast_targets_become_one_token() {
        assert_eq!(
            rendered("CAST(ROW(1, 2.0) AS ROW(x BIGINT, y DOUBLE))"),
            "CAST(ROW(1, 2.0) AS \"<T>ROW(x BIGINT, y DOUBLE)\")"
        );
        assert_eq!(
            rendered("try_cast(a AS array(row(a int)))"),
            "try_cast(a AS \"<T>array(row(a int))\")"
        );
        // Other casts and other AS stay.
        assert_eq!(
            rendered("SELECT CAST(x AS DOUBLE) AS row FROM t"),
            "SELECT CAST(x AS DOUBLE) AS row FROM t"
        );
        assert_eq!(
            rendered("CAST(f(x AS y) AS VARCHAR)"),
            "CAST(f(x AS y) AS VARCHAR)"
        );
    }

    #[test]
    fn types_parse() {
        assert_eq!(
            parse_type("ROW(sum DOUBLE, count INTEGER)").map(|t| type_name(&t)),
            Ok("row(sum double, count integer)".to_string())
        );
        assert_eq!(
            parse_type("row(\"a b\" array(row(bigint, varchar(3))), t timestamp)")
                .map(|t| type_name(&t)),
            Ok("row(a b array(row(c0 bigint, c1 varchar)), t timestamp)".to_string())
        );
        assert_eq!(
            parse_type("ROW(DOUBLE PRECISION)").map(|t| type_name(&t)),
            Ok("row(c0 double)".to_string())
        );
        assert!(parse_type("ROW(x WIDGET)").is_err());
    }

    #[test]
    fn rows_cast_by_position() {
        let from = DataType::Struct(Fields::from(vec![
            Field::new("b", DataType::Int64, true),
            Field::new("a", DataType::Float64, true),
        ]));
        let s: ArrayRef = Arc::new(StructArray::new(
            match &from {
                DataType::Struct(f) => f.clone(),
                _ => unreachable!(),
            },
            vec![
                Arc::new(Int64Array::from(vec![1])) as ArrayRef,
                Arc::new(Float64Array::from(vec![2.5])) as ArrayRef,
            ],
            None,
        ));
        let to = parse_type("ROW(a DOUBLE, b BIGINT)").unwrap_or(DataType::Null);
        let out = cast(&s, &to, false).map(|a| {
            let s = a.as_struct().clone();
            (
                s.column(0)
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .value(0),
                s.column(1)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .value(0),
            )
        });
        assert_eq!(out.ok(), Some((1.0, 2)));
    }
}
