//! Bounds on the shape of SQL text, checked on the tokens before anything recursive runs.
//!
//! The parser's recursion limit bounds nesting of parentheses, subqueries, `CASE`, function
//! calls and prefix operators, but not a chain of binary operators (`1+1+...+1`,
//! `a AND b AND ...`): the parser builds those in a loop, yet the tree it builds is as deep as
//! the chain, and planning, simplification, naming and dropping that tree recurse over it. A
//! long enough chain overflows a thread's stack and aborts the process. So a statement may
//! hold at most [`MAX_OPERATORS`] operators; the tokenizer itself does not recurse.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use hourglass_core::{Error, Result};

/// The most operators (arithmetic, comparison, `AND`/`OR`/`NOT`, ...) one SQL text may hold.
/// Large `IN (...)` lists are fine: their commas are not operators.
pub const MAX_OPERATORS: usize = 2000;

/// Refuses SQL whose expressions are too deep to plan safely (see the module docs). Text the
/// tokenizer rejects passes: the parser then reports the error with its position.
pub fn check_sql_shape(sql: &str) -> Result<()> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let operators = tokens.iter().filter(|t| is_operator(t)).count();
    if operators > MAX_OPERATORS {
        return Err(Error::invalid(format!(
            "the query is nested too deep: it has {operators} operators, more than the \
             {MAX_OPERATORS} allowed in one query; split it up or use IN (...) lists"
        )));
    }
    Ok(())
}

fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::BETWEEN
                | Keyword::WHEN
                | Keyword::COLLATE
                | Keyword::AT
        ),
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Spaceship
        | Token::Caret
        | Token::Ampersand
        | Token::Pipe
        | Token::ShiftLeft
        | Token::ShiftRight
        | Token::Tilde
        | Token::ExclamationMark
        | Token::DoubleColon
        | Token::Arrow
        | Token::LongArrow => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_operator_chains_are_refused_and_long_lists_are_not() {
        let chain = |op: &str, n: usize| format!("SELECT {}", vec!["1"; n].join(op));
        assert!(check_sql_shape(&chain("+", MAX_OPERATORS)).is_ok());
        let e = check_sql_shape(&chain("+", MAX_OPERATORS + 2)).unwrap_err();
        assert_eq!(e.kind, hourglass_core::ErrorKind::InvalidInput);
        assert!(e.message.contains("nested too deep"), "{e}");
        assert!(check_sql_shape(&chain(" AND ", 20_000)).is_err());
        assert!(check_sql_shape(&chain(" || ", 20_000)).is_err());
        let list = format!("SELECT 1 WHERE x IN ({})", vec!["'a'"; 50_000].join(","));
        assert!(check_sql_shape(&list).is_ok());
        // Not valid SQL for the tokenizer: left to the parser's error.
        assert!(check_sql_shape("SELECT 'unterminated").is_ok());
    }
}
