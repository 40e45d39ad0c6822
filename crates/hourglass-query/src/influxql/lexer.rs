//! InfluxQL's lexer: turns query text into tokens with their positions (0-based line and
//! character, as InfluxDB's scanner counts them), so that parse errors can name the place as
//! InfluxDB does (`at line 1, char 8`). Regular expressions (`/…/`) are only scanned where the
//! parser expects one ([`Lexer::scan_regex`]), since `/` is also division.

/// A token's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Eof,
    /// An identifier (bare or double-quoted); keywords are bare identifiers matched by the parser.
    Ident {
        quoted: bool,
    },
    Str,
    Integer(i64),
    Number(f64),
    /// A duration literal such as `10m` or `1h30m`, in nanoseconds.
    Duration(i64),
    Regex,
    /// An operator or punctuation: `+ - * / % & | ^ = != <> < <= > >= =~ !~ ( ) , ; . ::`.
    Op(&'static str),
    /// A character no token starts with.
    Illegal,
}

/// A token with its text (unquoted and unescaped for identifiers, strings and regexes) and the
/// position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub lit: String,
    pub line: usize,
    pub ch: usize,
}

impl Token {
    /// How InfluxDB names the token in `found X` (its literal, or `EOF`).
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Eof => "EOF".into(),
            _ => self.lit.clone(),
        }
    }

    /// Whether this is the bare keyword `kw` (case-insensitive).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self.tok, Tok::Ident { quoted: false }) && self.lit.eq_ignore_ascii_case(kw)
    }

    pub fn is_op(&self, op: &str) -> bool {
        matches!(self.tok, Tok::Op(o) if o == op)
    }
}

/// Scans tokens from query text on demand.
#[derive(Debug, Clone)]
pub struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    ch: usize,
}

const OPS: [&str; 22] = [
    "!=", "<>", "<=", ">=", "=~", "!~", "::", "+", "-", "*", "/", "%", "&", "|", "^", "=", "<",
    ">", "(", ")", ",", ";",
];

impl Lexer {
    pub fn new(text: &str) -> Lexer {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            line: 0,
            ch: 0,
        }
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.ch = 0;
        } else {
            self.ch += 1;
        }
        Some(c)
    }

    /// Skips whitespace and comments (`-- …` to the end of the line, `/* … */`).
    fn skip_blank(&mut self) {
        loop {
            match (self.peek_at(0), self.peek_at(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('-'), Some('-')) => {
                    while let Some(c) = self.peek_at(0) {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    while self.peek_at(0).is_some()
                        && !(self.peek_at(0) == Some('*') && self.peek_at(1) == Some('/'))
                    {
                        self.bump();
                    }
                    self.bump();
                    self.bump();
                }
                _ => return,
            }
        }
    }

    /// The next token (never fails: bad input becomes [`Tok::Illegal`] or an unterminated
    /// string reported by the parser).
    pub fn next_token(&mut self) -> Token {
        self.skip_blank();
        let (line, ch) = (self.line, self.ch);
        let make = |tok: Tok, lit: String| Token { tok, lit, line, ch };
        let Some(c) = self.peek_at(0) else {
            // InfluxDB places the end one character past the last.
            return Token {
                tok: Tok::Eof,
                lit: String::new(),
                line,
                ch: ch + 1,
            };
        };
        if c.is_alphabetic() || c == '_' {
            let mut s = String::new();
            while let Some(c) = self.peek_at(0) {
                if c.is_alphanumeric() || c == '_' {
                    s.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
            return make(Tok::Ident { quoted: false }, s);
        }
        if c == '"' || c == '\'' {
            self.bump();
            let mut s = String::new();
            let mut closed = false;
            while let Some(d) = self.bump() {
                if d == c {
                    closed = true;
                    break;
                }
                if d == '\\' {
                    match self.bump() {
                        Some('n') => s.push('\n'),
                        Some('\\') => s.push('\\'),
                        Some('"') => s.push('"'),
                        Some('\'') => s.push('\''),
                        Some(o) => {
                            s.push('\\');
                            s.push(o);
                        }
                        None => break,
                    }
                } else if d == '\n' && c == '\'' {
                    break;
                } else {
                    s.push(d);
                }
            }
            if !closed {
                return make(Tok::Illegal, format!("{c}{s}"));
            }
            return make(
                if c == '"' {
                    Tok::Ident { quoted: true }
                } else {
                    Tok::Str
                },
                s,
            );
        }
        if c.is_ascii_digit() || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) {
            return self.number(line, ch);
        }
        if c == '.' {
            self.bump();
            return make(Tok::Op("."), ".".into());
        }
        for op in OPS {
            let n = op.chars().count();
            if (0..n).all(|i| self.peek_at(i) == op.chars().nth(i)) {
                for _ in 0..n {
                    self.bump();
                }
                return make(Tok::Op(op), op.to_string());
            }
        }
        self.bump();
        make(Tok::Illegal, c.to_string())
    }

    /// An integer, a float or a duration (`10s`, `1h30m`, `5u`, `5µ`, `100ns`, `2d`, `1w`).
    fn number(&mut self, line: usize, ch: usize) -> Token {
        let start = self.pos;
        let mut digits = String::new();
        while let Some(c) = self.peek_at(0) {
            if c.is_ascii_digit() {
                digits.push(c);
                self.bump();
            } else {
                break;
            }
        }
        let is_float = self.peek_at(0) == Some('.')
            && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())
            || (self.peek_at(0) == Some('.') && digits.is_empty());
        if is_float || (self.peek_at(0) == Some('.') && !digits.is_empty()) {
            let mut s = digits;
            s.push('.');
            self.bump();
            while let Some(c) = self.peek_at(0) {
                if c.is_ascii_digit() {
                    s.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
            self.exponent(&mut s);
            let v = s.parse::<f64>().unwrap_or(f64::NAN);
            return Token {
                tok: Tok::Number(v),
                lit: s,
                line,
                ch,
            };
        }
        // A unit after an integer makes a duration, possibly of several parts.
        if let Some(unit_len) = self.unit_len() {
            let mut total: i128 = 0;
            let mut lit = String::new();
            let mut part = digits;
            let mut unit_len = Some(unit_len);
            while let Some(n) = unit_len {
                let unit: String = (0..n).filter_map(|i| self.peek_at(i)).collect();
                for _ in 0..n {
                    self.bump();
                }
                let v: i128 = part.parse().unwrap_or(i128::MAX / 4);
                total = total.saturating_add(v.saturating_mul(unit_nanos(&unit) as i128));
                lit.push_str(&part);
                lit.push_str(&unit);
                // Another part follows only as digits directly followed by a unit.
                let save = (self.pos, self.line, self.ch);
                let mut next = String::new();
                while let Some(c) = self.peek_at(0) {
                    if c.is_ascii_digit() {
                        next.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                unit_len = if next.is_empty() {
                    None
                } else {
                    self.unit_len()
                };
                if unit_len.is_none() {
                    (self.pos, self.line, self.ch) = save;
                }
                part = next;
            }
            let tok = if total > i64::MAX as i128 {
                Tok::Illegal
            } else {
                Tok::Duration(total as i64)
            };
            return Token { tok, lit, line, ch };
        }
        let mut s = digits;
        if self.exponent(&mut s) {
            let v = s.parse::<f64>().unwrap_or(f64::NAN);
            return Token {
                tok: Tok::Number(v),
                lit: s,
                line,
                ch,
            };
        }
        if self
            .peek_at(0)
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        {
            while self
                .peek_at(0)
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                self.bump();
            }
            return Token {
                tok: Tok::Illegal,
                lit: "invalid duration".into(),
                line,
                ch,
            };
        }
        let tok = match s.parse::<i64>() {
            Ok(v) => Tok::Integer(v),
            Err(_) => match s.parse::<f64>() {
                Ok(v) => Tok::Number(v),
                Err(_) => Tok::Illegal,
            },
        };
        let _ = start;
        Token {
            tok,
            lit: s,
            line,
            ch,
        }
    }

    /// Appends an exponent (`e-3`) when one follows; whether there was one.
    fn exponent(&mut self, s: &mut String) -> bool {
        let is_exp = matches!(self.peek_at(0), Some('e' | 'E'))
            && (self.peek_at(1).is_some_and(|d| d.is_ascii_digit())
                || (matches!(self.peek_at(1), Some('+' | '-'))
                    && self.peek_at(2).is_some_and(|d| d.is_ascii_digit())));
        if !is_exp {
            return false;
        }
        s.push('e');
        self.bump();
        if let Some(c @ ('+' | '-')) = self.peek_at(0) {
            s.push(c);
            self.bump();
        }
        while let Some(c) = self.peek_at(0) {
            if c.is_ascii_digit() {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        true
    }

    /// The length of a duration unit at the current position, when one is there and is not the
    /// start of a longer word.
    fn unit_len(&self) -> Option<usize> {
        let c0 = self.peek_at(0)?;
        let c1 = self.peek_at(1);
        let n = match (c0, c1) {
            ('n', Some('s')) => 2,
            ('m', Some('s')) => 2,
            ('u' | 'µ' | 's' | 'm' | 'h' | 'd' | 'w', _) => 1,
            _ => return None,
        };
        match self.peek_at(n) {
            Some(c) if c.is_alphabetic() || c == '_' => None,
            _ => Some(n),
        }
    }

    /// Scans a regular expression starting at the next non-blank character, which must be `/`;
    /// `\/` stands for `/`, other escapes are kept for the regex engine.
    pub fn scan_regex(&mut self) -> Option<Token> {
        self.skip_blank();
        if self.peek_at(0) != Some('/') {
            return None;
        }
        let (line, ch) = (self.line, self.ch);
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => {
                    return Some(Token {
                        tok: Tok::Illegal,
                        lit: format!("/{s}"),
                        line,
                        ch,
                    })
                }
                Some('/') => break,
                Some('\\') => match self.peek_at(0) {
                    Some('/') => {
                        self.bump();
                        s.push('/');
                    }
                    _ => s.push('\\'),
                },
                Some(c) => s.push(c),
            }
        }
        Some(Token {
            tok: Tok::Regex,
            lit: s,
            line,
            ch,
        })
    }

    /// The next character, consumed as is (regex bodies).
    pub fn raw_char(&mut self) -> Option<char> {
        self.bump()
    }

    /// Position (line, char) of the next non-blank character.
    pub fn position(&mut self) -> (usize, usize) {
        self.skip_blank();
        (self.line, self.ch)
    }
}

fn unit_nanos(unit: &str) -> i64 {
    match unit {
        "ns" => 1,
        "u" | "µ" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => 604_800_000_000_000, // w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let mut l = Lexer::new(s);
        let mut out = Vec::new();
        loop {
            let t = l.next_token();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn numbers_durations_and_operators() {
        assert_eq!(
            toks("10 1.5 .5 10m 1h30m 100ns 5u 3ms 1e3"),
            vec![
                Tok::Integer(10),
                Tok::Number(1.5),
                Tok::Number(0.5),
                Tok::Duration(600_000_000_000),
                Tok::Duration(5_400_000_000_000),
                Tok::Duration(100),
                Tok::Duration(5_000),
                Tok::Duration(3_000_000),
                Tok::Number(1000.0),
            ]
        );
        assert_eq!(
            toks("a>=b != =~ :: <>"),
            vec![
                Tok::Ident { quoted: false },
                Tok::Op(">="),
                Tok::Ident { quoted: false },
                Tok::Op("!="),
                Tok::Op("=~"),
                Tok::Op("::"),
                Tok::Op("<>")
            ]
        );
    }

    #[test]
    fn strings_identifiers_and_positions() {
        let mut l = Lexer::new("SELECT \"my \\\"f\" FROM\n 'it\\'s'");
        let t = l.next_token();
        assert_eq!((t.lit.as_str(), t.line, t.ch), ("SELECT", 0, 0));
        let t = l.next_token();
        assert_eq!(t.lit, "my \"f");
        assert_eq!(t.ch, 7);
        l.next_token();
        let t = l.next_token();
        assert_eq!(
            (t.tok, t.lit.as_str(), t.line, t.ch),
            (Tok::Str, "it's", 1, 1)
        );
    }

    #[test]
    fn regexes_only_when_asked() {
        let mut l = Lexer::new(" /cpu\\/.*/ x");
        let t = l.scan_regex().unwrap();
        assert_eq!((t.tok, t.lit.as_str()), (Tok::Regex, "cpu/.*"));
        assert!(l.scan_regex().is_none());
    }
}
