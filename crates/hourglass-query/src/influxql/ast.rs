//! InfluxQL's syntax tree: the statements Hourglass answers and the expressions inside them.

/// One statement of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Box<Select>),
    ShowDatabases,
    ShowMeasurements {
        on: Option<String>,
        filter: Option<NameFilter>,
        /// `WHERE` on tags: measurements with a series that matches.
        condition: Option<Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowTagKeys {
        on: Option<String>,
        from: Vec<Source>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowTagValues {
        on: Option<String>,
        from: Vec<Source>,
        key: NameFilter,
        condition: Option<Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowFieldKeys {
        on: Option<String>,
        from: Vec<Source>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowSeries {
        on: Option<String>,
        from: Vec<Source>,
        condition: Option<Expr>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    ShowRetentionPolicies {
        on: Option<String>,
    },
    CreateDatabase(String),
    DropMeasurement(String),
}

/// `= 'name'`, `IN ('a', 'b')`, `=~ /re/`, `!~ /re/` or `!= 'name'` on a measurement or key name.
#[derive(Debug, Clone, PartialEq)]
pub enum NameFilter {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    Regex(String),
    NotRegex(String),
}

/// A `FROM` item.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A measurement, optionally qualified by database (and a retention policy, ignored).
    Measurement {
        db: Option<String>,
        name: String,
    },
    /// `/regex/` (optionally `db../regex/`).
    Regex {
        db: Option<String>,
        pattern: String,
    },
    Subquery(Box<Select>),
}

/// The `fill()` option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    Null,
    None,
    Previous,
    Linear,
    Number(f64),
    Integer(i64),
}

/// A `SELECT` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub fields: Vec<Field>,
    pub from: Vec<Source>,
    pub condition: Option<Expr>,
    /// `GROUP BY time(interval, offset)`: interval and offset in ns.
    pub group_time: Option<(i64, i64)>,
    /// Tags named in `GROUP BY`.
    pub group_tags: Vec<String>,
    /// Tag regexes named in `GROUP BY`.
    pub group_tag_regexes: Vec<String>,
    /// `GROUP BY *`.
    pub group_all: bool,
    pub fill: Fill,
    pub descending: bool,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub slimit: Option<u64>,
    pub soffset: Option<u64>,
    pub tz: Option<String>,
    /// An error InfluxDB reports when compiling the statement (not a parse error).
    pub invalid: Option<String>,
}

/// A column of `SELECT`, with its alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// The type named by `::field`, `::tag`, `::float`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    Field,
    Tag,
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Var {
        name: String,
        cast: Option<Cast>,
    },
    Wildcard,
    Regex(String),
    Integer(i64),
    Number(f64),
    Str(String),
    Bool(bool),
    Duration(i64),
    /// `now()` and other calls.
    Call {
        name: String,
        args: Vec<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Paren(Box<Expr>),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    RegexMatch,
    RegexNotMatch,
    And,
    Or,
}

impl BinOp {
    /// Binding strength, as InfluxQL's `Precedence`.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq
            | BinOp::NotEq
            | BinOp::Lt
            | BinOp::LtEq
            | BinOp::Gt
            | BinOp::GtEq
            | BinOp::RegexMatch
            | BinOp::RegexNotMatch => 4,
            BinOp::Add | BinOp::Sub | BinOp::BitOr | BinOp::BitXor => 5,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::BitAnd => 6,
        }
    }

    pub fn from_op(op: &str) -> Option<BinOp> {
        Some(match op {
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "*" => BinOp::Mul,
            "/" => BinOp::Div,
            "%" => BinOp::Mod,
            "&" => BinOp::BitAnd,
            "|" => BinOp::BitOr,
            "^" => BinOp::BitXor,
            "=" => BinOp::Eq,
            "!=" | "<>" => BinOp::NotEq,
            "<" => BinOp::Lt,
            "<=" => BinOp::LtEq,
            ">" => BinOp::Gt,
            ">=" => BinOp::GtEq,
            "=~" => BinOp::RegexMatch,
            "!~" => BinOp::RegexNotMatch,
            _ => return None,
        })
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 4
    }
}

impl Expr {
    /// Whether the expression holds a function call other than `now()`.
    pub fn has_call(&self) -> bool {
        match self {
            Expr::Call { name, args } => name != "now" || args.iter().any(Expr::has_call),
            Expr::Binary { lhs, rhs, .. } => lhs.has_call() || rhs.has_call(),
            Expr::Paren(e) => e.has_call(),
            _ => false,
        }
    }

    /// Strips parentheses.
    pub fn unparen(&self) -> &Expr {
        match self {
            Expr::Paren(e) => e.unparen(),
            e => e,
        }
    }
}
