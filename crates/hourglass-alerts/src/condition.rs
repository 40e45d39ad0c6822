//! Conditions of a rule (`any row`, or `value <op> <number>`) and how a query result becomes
//! alert instances: which column is the value, which columns are labels.
//!
//! The value column is the column named `value` (any case); failing that, the only numeric
//! column, if there is exactly one. Every other column is a label (numbers rendered as text,
//! NULL cells omitted, as Prometheus omits empty labels). With no value column, `any row` still
//! works (`$value` is empty) but a comparison is an error that asks for a `value` column.

use std::fmt;
use std::str::FromStr;

use crate::query::{Cell, QueryResult};
use crate::{is_label_name, Labels};

/// A comparison operator, written as in PromQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// Applies the comparison; NaN compares false except under `!=`, as in PromQL.
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
        }
    }
}

/// When a row is an active alert instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// Every row returned is active.
    AnyRow,
    /// Rows whose value compares true against the threshold are active.
    Compare { op: CmpOp, threshold: f64 },
}

impl FromStr for Condition {
    type Err = String;

    /// Accepts `any row` (or `any`, or an empty string) and `value <op> <number>` with
    /// `<op>` one of `> >= < <= == !=`.
    fn from_str(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
        if lower.is_empty() || lower == ["any"] || lower == ["any", "row"] {
            return Ok(Condition::AnyRow);
        }
        let compact: String = words.concat();
        let expected = || {
            format!("`{text}` is neither `any row` nor a comparison like `value > 3` (operators: > >= < <= == !=)")
        };
        let rest = compact
            .strip_prefix("value")
            .or_else(|| compact.strip_prefix("VALUE"))
            .ok_or_else(expected)?;
        let ops = [
            (">=", CmpOp::Ge),
            ("<=", CmpOp::Le),
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            (">", CmpOp::Gt),
            ("<", CmpOp::Lt),
        ];
        let (op, number) = ops
            .iter()
            .find_map(|(sym, op)| rest.strip_prefix(sym).map(|n| (*op, n)))
            .ok_or_else(expected)?;
        let threshold: f64 = number
            .parse()
            .map_err(|_| format!("`{number}` in condition `{text}` is not a number"))?;
        if threshold.is_nan() {
            return Err(format!("condition `{text}` compares with NaN"));
        }
        Ok(Condition::Compare { op, threshold })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::AnyRow => f.write_str("any row"),
            Condition::Compare { op, threshold } => write!(f, "value {} {threshold}", op.symbol()),
        }
    }
}

/// A row that satisfies the condition: its identifying labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub labels: Labels,
    pub value: Option<f64>,
}

/// The index of the value column of a result, following the rule in the module comment.
pub fn value_column(result: &QueryResult) -> Option<usize> {
    if let Some(i) = result
        .columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case("value"))
    {
        return Some(i);
    }
    let mut numeric = result.columns.iter().enumerate().filter(|(_, c)| c.numeric);
    match (numeric.next(), numeric.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

impl Condition {
    /// The active instances of a query result. Errors: a comparison with no value column, a
    /// label column whose name is not a label name, two rows with the same labels.
    pub fn instances(&self, result: &QueryResult) -> Result<Vec<Instance>, String> {
        let value_at = value_column(result);
        if value_at.is_none() {
            if let Condition::Compare { .. } = self {
                let numeric: Vec<&str> = result
                    .columns
                    .iter()
                    .filter(|c| c.numeric)
                    .map(|c| c.name.as_str())
                    .collect();
                return Err(format!(
                    "condition `{self}` needs a value column: name one column `value` \
                     (numeric columns returned: [{}])",
                    numeric.join(", ")
                ));
            }
        }
        for (i, column) in result.columns.iter().enumerate() {
            if Some(i) != value_at && !is_label_name(&column.name) {
                return Err(format!(
                    "column `{}` is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*): alias it",
                    column.name
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for (n, row) in result.rows.iter().enumerate() {
            if row.len() != result.columns.len() {
                return Err(format!(
                    "row {n} has {} cells for {} columns",
                    row.len(),
                    result.columns.len()
                ));
            }
            let mut labels = Labels::new();
            let mut value = None;
            for (i, cell) in row.iter().enumerate() {
                if Some(i) == value_at {
                    value = match cell {
                        Cell::Number(v) => Some(*v),
                        Cell::Null => None,
                        Cell::Text(t) => Some(t.trim().parse::<f64>().map_err(|_| {
                            format!(
                                "value column `{}` holds `{t}`, not a number",
                                result.columns[i].name
                            )
                        })?),
                    };
                    continue;
                }
                match cell {
                    Cell::Null => {}
                    Cell::Number(v) => {
                        labels.insert(result.columns[i].name.clone(), v.to_string());
                    }
                    Cell::Text(t) if t.is_empty() => {}
                    Cell::Text(t) => {
                        labels.insert(result.columns[i].name.clone(), t.clone());
                    }
                }
            }
            if !seen.insert(labels.clone()) {
                return Err(format!(
                    "two rows have the same labels {labels:?}: group by them or add a column"
                ));
            }
            let active = match self {
                Condition::AnyRow => true,
                Condition::Compare { op, threshold } => {
                    value.is_some_and(|v| op.holds(v, *threshold))
                }
            };
            if active {
                out.push(Instance { labels, value });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Column;

    fn cond(s: &str) -> Condition {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn col(name: &str, numeric: bool) -> Column {
        Column {
            name: name.into(),
            numeric,
        }
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    #[test]
    fn parses_conditions() {
        assert_eq!(cond("any row"), Condition::AnyRow);
        assert_eq!(cond("  ANY   Row "), Condition::AnyRow);
        assert_eq!(cond(""), Condition::AnyRow);
        assert_eq!(
            cond("value > 3"),
            Condition::Compare {
                op: CmpOp::Gt,
                threshold: 3.0
            }
        );
        assert_eq!(
            cond("value>=-1.5e2"),
            Condition::Compare {
                op: CmpOp::Ge,
                threshold: -150.0
            }
        );
        assert_eq!(
            cond("value != 0"),
            Condition::Compare {
                op: CmpOp::Ne,
                threshold: 0.0
            }
        );
        assert_eq!(cond("value <= 2").to_string(), "value <= 2");
        for bad in [
            "value",
            "value >> 3",
            "price > 3",
            "value > x",
            "value > NaN",
            "any rows",
        ] {
            assert!(
                bad.parse::<Condition>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn value_column_is_named_value_else_the_only_numeric_one() {
        let named = QueryResult {
            columns: vec![col("n", true), col("Value", true)],
            rows: vec![],
        };
        assert_eq!(value_column(&named), Some(1));
        let single = QueryResult {
            columns: vec![col("host", false), col("avg_cpu", true)],
            rows: vec![],
        };
        assert_eq!(value_column(&single), Some(1));
        let two = QueryResult {
            columns: vec![col("a", true), col("b", true)],
            rows: vec![],
        };
        assert_eq!(value_column(&two), None);
    }

    #[test]
    fn comparison_selects_rows_and_keeps_labels() {
        let result = QueryResult {
            columns: vec![col("symbol", false), col("port", true), col("value", true)],
            rows: vec![
                vec![text("AAPL"), Cell::Number(1.0), Cell::Number(5.0)],
                vec![text("MSFT"), Cell::Number(2.0), Cell::Number(2.0)],
                vec![text("GOOG"), Cell::Null, Cell::Null],
                vec![text("IBM"), Cell::Number(3.0), Cell::Number(f64::NAN)],
            ],
        };
        let got = cond("value > 3")
            .instances(&result)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value, Some(5.0));
        assert_eq!(
            got[0].labels.get("symbol").map(String::as_str),
            Some("AAPL")
        );
        assert_eq!(got[0].labels.get("port").map(String::as_str), Some("1"));
        let all = Condition::AnyRow
            .instances(&result)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all.len(), 4);
        assert!(!all[2].labels.contains_key("port"), "NULL label omitted");
    }

    #[test]
    fn errors_are_explained() {
        let ambiguous = QueryResult {
            columns: vec![col("a", true), col("b", true)],
            rows: vec![vec![Cell::Number(1.0), Cell::Number(2.0)]],
        };
        let err = cond("value > 0")
            .instances(&ambiguous)
            .err()
            .unwrap_or_default();
        assert!(err.contains("a, b"), "{err}");
        assert_eq!(
            Condition::AnyRow.instances(&ambiguous).map(|v| v.len()),
            Ok(1)
        );

        let bad_name = QueryResult {
            columns: vec![col("my host", false), col("value", true)],
            rows: vec![],
        };
        let err = Condition::AnyRow
            .instances(&bad_name)
            .err()
            .unwrap_or_default();
        assert!(err.contains("my host"), "{err}");

        let duplicate = QueryResult {
            columns: vec![col("host", false), col("value", true)],
            rows: vec![
                vec![text("a"), Cell::Number(1.0)],
                vec![text("a"), Cell::Number(2.0)],
            ],
        };
        let err = Condition::AnyRow
            .instances(&duplicate)
            .err()
            .unwrap_or_default();
        assert!(err.contains("same labels"), "{err}");
    }
}
