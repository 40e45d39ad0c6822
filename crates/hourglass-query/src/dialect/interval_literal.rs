//! Timestream's interval literals: a number written directly against a unit — `1ns`, `10us`,
//! `100ms`, `15s`, `15m`, `1h`, `2d`, `12second`, `21hour` — is an `INTERVAL DAY TO SECOND`.
//!
//! Works on the token stream: the tokenizer sees `15m` as the number `15` immediately followed by
//! the word `m` (no whitespace between them, which the tokens' spans tell). Such a pair becomes the
//! two tokens `INTERVAL '15 minute'`, both carrying the original span, so later errors still point
//! at the text the user wrote. A number and a unit with a space between them (`LIMIT 10 m`) are
//! left alone.

use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan};

/// The unit a Timestream interval suffix names, as DataFusion's interval parser spells it.
pub fn unit(suffix: &str) -> Option<&'static str> {
    Some(match suffix.to_ascii_lowercase().as_str() {
        "ns" | "nanosecond" | "nanoseconds" => "nanosecond",
        "us" | "microsecond" | "microseconds" => "microsecond",
        "ms" | "millisecond" | "milliseconds" => "millisecond",
        "s" | "second" | "seconds" => "second",
        "m" | "minute" | "minutes" => "minute",
        "h" | "hour" | "hours" => "hour",
        "d" | "day" | "days" => "day",
        _ => return None,
    })
}

/// Replaces every `<number><unit>` pair by `INTERVAL '<number> <unit>'`.
pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut iter = tokens.into_iter().peekable();
    while let Some(tok) = iter.next() {
        if let Token::Number(number, false) = &tok.token {
            if let Some(next) = iter.peek() {
                if let Token::Word(w) = &next.token {
                    let adjacent = next.span.start == tok.span.end;
                    if adjacent && w.quote_style.is_none() {
                        if let Some(unit) = unit(&w.value) {
                            let span = Span::new(tok.span.start, next.span.end);
                            let text = format!("{number} {unit}");
                            iter.next();
                            out.push(TokenWithSpan::new(Token::make_keyword("INTERVAL"), span));
                            out.push(TokenWithSpan::new(Token::SingleQuotedString(text), span));
                            continue;
                        }
                    }
                }
            }
        }
        out.push(tok);
    }
    out
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;
    use crate::dialect::parser_dialect::TimestreamDialect;

    fn rendered(sql: &str) -> String {
        let tokens = Tokenizer::new(&TimestreamDialect, sql)
            .tokenize_with_location()
            .unwrap_or_default();
        rewrite(tokens)
            .iter()
            .map(|t| t.token.to_string())
            .collect()
    }

    #[test]
    fn suffixes_become_intervals() {
        assert_eq!(rendered("ago(1h)"), "ago(INTERVAL'1 hour')");
        assert_eq!(rendered("bin(time, 15m)"), "bin(time, INTERVAL'15 minute')");
        assert_eq!(rendered("x - 100ms"), "x - INTERVAL'100 millisecond'");
        assert_eq!(rendered("1.5d"), "INTERVAL'1.5 day'");
        assert_eq!(rendered("12second"), "INTERVAL'12 second'");
    }

    #[test]
    fn separated_or_unknown_words_stay() {
        assert_eq!(rendered("LIMIT 10 m"), "LIMIT 10 m");
        assert_eq!(rendered("SELECT 1 AS h"), "SELECT 1 AS h");
        assert_eq!(rendered("5x"), "5x");
    }
}
