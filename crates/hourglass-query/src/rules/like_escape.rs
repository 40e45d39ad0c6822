//! `LIKE … ESCAPE 'c'` with an escape character other than the backslash.
//!
//! This rule works around DataFusion: switched off (`hourglass.disabled_rules = 'like_escape'`),
//! DataFusion refuses such a statement as before ("LIKE does not support escape_char other than
//! the backslash"); it never answers differently. Clients send it (SQLAlchemy's
//! `get_schema_names`: `nspname NOT LIKE $1 || '%' ESCAPE '/'`).
//!
//! On the SQL AST before DataFusion plans it, `a [NOT] [I]LIKE p ESCAPE 'c'` becomes
//! `a [NOT] [I]LIKE like_escape_to_backslash(p, 'c')` (folded when `p` is a literal): the pattern
//! rewritten to the backslash-escaped form Arrow's `like` kernels read, where `\x` is a literal
//! `x` for any character `x`. The conversion is PostgreSQL's own `like_escape()`: the escape
//! character followed by `x` becomes `\x`, a backslash that is not escaped becomes `\\` (with
//! another escape character a backslash is an ordinary character), every other character stays;
//! `ESCAPE ''` means no escape character (every backslash doubled). As in PostgreSQL, a pattern
//! ending in the escape character is an error ("LIKE pattern must not end with escape
//! character"), and so is an escape string of more than one character ("invalid escape
//! string"). PostgreSQL raises the first only when a match reaches the pattern's end (a text
//! that fails before answers false); here every row is refused: an error, never an answer
//! PostgreSQL would not give. `ESCAPE '\'` is left to DataFusion, which reads it as it is.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{Expr, Value, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::tokenizer::Span;

use crate::dialect::ast_util::{call, string};

/// The conversion function's name.
pub const FUNCTION: &str = "like_escape_to_backslash";
/// PostgreSQL's message for a pattern ending in the escape character (SQLSTATE 22025).
pub const ENDS_WITH_ESCAPE: &str = "LIKE pattern must not end with escape character";
/// PostgreSQL's message for an escape string of more than one character (SQLSTATE 22025).
pub const INVALID_ESCAPE: &str = "invalid escape string";

/// `pattern`, escaped with `escape` (none when empty), in the backslash-escaped form.
pub fn to_backslash(pattern: &str, escape: &str) -> Result<String, &'static str> {
    let mut chars = escape.chars();
    let escape = match (chars.next(), chars.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => return Err(INVALID_ESCAPE),
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        if Some(c) == escape {
            let Some(next) = it.next() else {
                return Err(ENDS_WITH_ESCAPE);
            };
            out.push('\\');
            out.push(next);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Rewrites the `LIKE`/`ILIKE … ESCAPE` of `node` whose escape character is not a backslash.
pub fn rewrite<N: VisitMut>(node: &mut N) {
    let _ = node.visit(&mut LikeVisitor);
}

struct LikeVisitor;

impl VisitorMut for LikeVisitor {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Like {
            pattern,
            escape_char,
            any: false,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            any: false,
            ..
        } = expr
        {
            if let Some(new) = escape_char
                .as_ref()
                .and_then(|e| converted(pattern, &e.value))
            {
                **pattern = new;
                *escape_char = None;
            }
        }
        ControlFlow::Continue(())
    }
}

/// The converted pattern, or `None` to leave the expression to DataFusion.
fn converted(pattern: &Expr, escape: &Value) -> Option<Expr> {
    let escape_expr = match escape {
        Value::Placeholder(_) | Value::Null => Expr::value(escape.clone()),
        other => {
            let text = other.clone().into_string()?;
            if text == "\\" {
                return None;
            }
            if let Expr::Value(v) = pattern {
                if let Some(p) = v.value.clone().into_string() {
                    if let Ok(folded) = to_backslash(&p, &text) {
                        return Some(string(&folded));
                    }
                }
            }
            string(&text)
        }
    };
    Some(call(
        FUNCTION,
        vec![pattern.clone(), escape_expr],
        Span::empty(),
    ))
}

/// [`FUNCTION`]`(pattern, escape)`: [`to_backslash`] as a scalar function (NULL in, NULL out).
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(LikeEscape {
        signature: Signature::string(2, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LikeEscape {
    signature: Signature,
}

impl ScalarUDFImpl for LikeEscape {
    fn name(&self) -> &str {
        FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let strings = |a: &ColumnarValue| -> DfResult<ArrayRef> {
            let array = a.to_array(rows)?;
            Ok(arrow::compute::cast(&array, &DataType::Utf8)?)
        };
        let patterns = strings(&args.args[0])?;
        let escapes = strings(&args.args[1])?;
        let patterns = patterns.as_string::<i32>();
        let escapes = escapes.as_string::<i32>();
        let out = patterns
            .iter()
            .zip(escapes.iter())
            .map(|(p, e)| match (p, e) {
                (Some(p), Some(e)) => to_backslash(p, e)
                    .map(Some)
                    .map_err(|m| crate::error::to_datafusion(hourglass_core::Error::invalid(m))),
                _ => Ok(None),
            })
            .collect::<DfResult<StringArray>>()?;
        if all_scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::BooleanArray;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    /// PostgreSQL's LIKE with an escape character, by definition (a reference matcher; a
    /// pattern ending in the escape character is refused whatever the text).
    fn pg_like(text: &str, pattern: &str, escape: Option<char>) -> Result<bool, &'static str> {
        #[derive(Clone, Copy)]
        enum Tok {
            Lit(char),
            Any,
            One,
        }
        let mut toks = Vec::new();
        let mut it = pattern.chars();
        while let Some(c) = it.next() {
            toks.push(if Some(c) == escape {
                Tok::Lit(it.next().ok_or(ENDS_WITH_ESCAPE)?)
            } else if c == '%' {
                Tok::Any
            } else if c == '_' {
                Tok::One
            } else {
                Tok::Lit(c)
            });
        }
        fn go(t: &[char], p: &[Tok]) -> bool {
            match p.first() {
                None => t.is_empty(),
                Some(Tok::Any) => (0..=t.len()).any(|i| go(&t[i..], &p[1..])),
                Some(Tok::One) => !t.is_empty() && go(&t[1..], &p[1..]),
                Some(Tok::Lit(c)) => t.first() == Some(c) && go(&t[1..], &p[1..]),
            }
        }
        let t: Vec<char> = text.chars().collect();
        Ok(go(&t, &toks))
    }

    /// Arrow's `like` (what DataFusion runs) of each text against one pattern.
    fn arrow_like(texts: &[&str], pattern: &str) -> Vec<bool> {
        let t = StringArray::from(texts.to_vec());
        let p = arrow::array::Scalar::new(StringArray::from(vec![pattern]));
        let r: BooleanArray = arrow::compute::kernels::comparison::like(&t, &p).unwrap();
        r.iter().map(Option::unwrap).collect()
    }

    #[test]
    fn conversion_table() {
        for (pattern, escape, want) in [
            ("abc", "/", Ok("abc")),
            ("a/%b", "/", Ok("a\\%b")),
            ("a/_b", "/", Ok("a\\_b")),
            ("a//b", "/", Ok("a\\/b")),
            ("a\\b", "/", Ok("a\\\\b")),
            ("a/\\b", "/", Ok("a\\\\b")),
            ("pg/_%", "/", Ok("pg\\_%")),
            ("a#%", "#", Ok("a\\%")),
            ("a\\%", "#", Ok("a\\\\%")),
            ("a\\%", "", Ok("a\\\\%")),
            ("a%_", "", Ok("a%_")),
            ("%%", "%", Ok("\\%")),
            ("a/", "/", Err(ENDS_WITH_ESCAPE)),
            ("a", "ab", Err(INVALID_ESCAPE)),
            ("ü/ß", "/", Ok("ü\\ß")),
            ("aéb", "é", Ok("a\\b")),
        ] {
            assert_eq!(
                to_backslash(pattern, escape),
                want.map(str::to_string),
                "{pattern} {escape}"
            );
        }
    }

    #[test]
    fn converted_patterns_match_as_postgresql_does() {
        let texts = [
            "", "a", "ab", "a%b", "a_b", "a\\b", "a/b", "a#b", "axb", "%", "_", "\\", "/", "#",
            "pg_toast", "pgatoast", "public", "a\\\\b", "ab%", "\\%",
        ];
        let alphabet = ['a', 'b', '%', '_', '\\', '/', '#', 'x'];
        let mut patterns = vec![String::new()];
        for len in 1..=4 {
            let mut next = Vec::new();
            for p in patterns.iter().filter(|p| p.chars().count() == len - 1) {
                for c in alphabet {
                    next.push(format!("{p}{c}"));
                }
            }
            patterns.extend(next);
        }
        let mut checked = 0;
        for escape in ["/", "#", "", "%", "_", "a"] {
            let e = escape.chars().next();
            for pattern in &patterns {
                let converted = to_backslash(pattern, escape);
                let got = converted.as_ref().map(|c| arrow_like(&texts, c));
                for (i, text) in texts.iter().enumerate() {
                    let want = pg_like(text, pattern, e);
                    match (&got, want) {
                        (Ok(g), Ok(w)) => {
                            assert_eq!(
                                g[i], w,
                                "{text:?} LIKE {pattern:?} ESCAPE {escape:?} ({converted:?})"
                            );
                            checked += 1;
                        }
                        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                        (got, want) => panic!("{pattern:?} ESCAPE {escape:?}: {got:?} vs {want:?}"),
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    fn rewritten(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        rewrite(&mut statements[0]);
        statements[0].to_string()
    }

    #[test]
    fn rewrites_the_statement() {
        assert_eq!(
            rewritten("SELECT n NOT LIKE $1 || '%' ESCAPE '/' FROM t"),
            "SELECT n NOT LIKE like_escape_to_backslash($1 || '%', '/') FROM t"
        );
        assert_eq!(
            rewritten("SELECT n ILIKE 'a#%' ESCAPE '#' FROM t"),
            "SELECT n ILIKE 'a\\%' FROM t"
        );
        assert_eq!(
            rewritten("SELECT n LIKE 'a/' ESCAPE '/' FROM t"),
            "SELECT n LIKE like_escape_to_backslash('a/', '/') FROM t"
        );
        assert_eq!(
            rewritten("SELECT n LIKE 'a\\%' ESCAPE '\\' FROM t"),
            "SELECT n LIKE 'a\\%' ESCAPE '\\' FROM t"
        );
        assert_eq!(
            rewritten("SELECT n LIKE 'a%' FROM t"),
            "SELECT n LIKE 'a%' FROM t"
        );
    }
}
