//! `dimension = 'literal'` and `dimension IN ('a', 'b', …)` over a batch's string column,
//! found by searching the column's value bytes for each literal instead of comparing every value.
//!
//! Written by hand for the latest-value path ([`super::series_filters`]): a one-host latest value
//! filters every source's last rows (one row per series) by its host. At 100,000 hosts that is
//! 100,000 dictionary values per source, and arrow's comparison (a `memcmp` per value, then the
//! keys mapped) was 72 % of the query's CPU (`perf`, release, `side_by_side.py --cardinality`'s
//! data). A `memchr::memmem` search of the values' bytes visits them at memory speed and checks
//! only where the literal occurs. Anything else (other types, casts, other comparisons) returns
//! `None` and is evaluated by DataFusion as before; the rule `last_rows` switched off skips this
//! path with the rest of the latest-value plan.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, GenericStringArray, OffsetSizeTrait};
use arrow::datatypes::DataType;
use datafusion::logical_expr::expr::{Cast, InList};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;
use memchr::memmem;

/// A filter `column = one of values`, for a column of strings.
#[derive(Debug, Clone, PartialEq)]
pub struct StringEquals {
    pub column: String,
    pub values: Vec<String>,
}

impl StringEquals {
    /// `filter` as a [`StringEquals`] when it is `column = 'literal'` (either side), or
    /// `column IN ('literal', …)` not negated, every literal a non-null string.
    pub fn from_expr(filter: &Expr) -> Option<StringEquals> {
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                let (column, literal) = match (column_of(left), column_of(right)) {
                    (Some(c), None) => (c, right),
                    (None, Some(c)) => (c, left),
                    _ => return None,
                };
                Some(StringEquals {
                    column,
                    values: vec![string_literal(literal)?],
                })
            }
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) => Some(StringEquals {
                column: column_of(expr)?,
                values: list.iter().map(string_literal).collect::<Option<_>>()?,
            }),
            _ => None,
        }
    }

    /// Which rows of `array` equal one of the values (null rows do not), or `None` when `array`
    /// is not strings or a dictionary of strings.
    pub fn evaluate(&self, array: &ArrayRef) -> Option<BooleanArray> {
        if let Some(dictionary) = array.as_any_dictionary_opt() {
            let values = dictionary.values();
            let matching = self.matching(values.as_ref())?;
            let keys = dictionary.keys();
            if values.is_empty() {
                return Some(BooleanArray::from(vec![false; keys.len()]));
            }
            let normalized = dictionary.normalized_keys();
            let nulls = keys.logical_nulls();
            return Some(
                normalized
                    .iter()
                    .enumerate()
                    .map(|(row, &key)| {
                        Some(nulls.as_ref().is_none_or(|n| n.is_valid(row)) && matching[key])
                    })
                    .collect(),
            );
        }
        let matching = self.matching(array.as_ref())?;
        Some(BooleanArray::from(matching))
    }

    /// For each value of `values` (strings), whether it is one of `self.values` and not null.
    fn matching(&self, values: &dyn Array) -> Option<Vec<bool>> {
        match values.data_type() {
            DataType::Utf8 => Some(self.matching_in(values.as_string::<i32>())),
            DataType::LargeUtf8 => Some(self.matching_in(values.as_string::<i64>())),
            _ => None,
        }
    }

    fn matching_in<O: OffsetSizeTrait>(&self, values: &GenericStringArray<O>) -> Vec<bool> {
        let offsets = values.value_offsets();
        let offset = |i: usize| offsets[i].as_usize();
        let data = values.value_data();
        let mut matching = vec![false; values.len()];
        let mut mark = |i: usize| {
            if values.is_valid(i) {
                matching[i] = true;
            }
        };
        for wanted in &self.values {
            let wanted = wanted.as_bytes();
            if wanted.is_empty() {
                (0..values.len())
                    .filter(|&i| offset(i) == offset(i + 1))
                    .for_each(&mut mark);
                continue;
            }
            // Every occurrence, overlapping ones included: a match can start inside an earlier
            // occurrence that spans two values.
            let finder = memmem::Finder::new(wanted);
            let (first, last) = (offset(0), offset(values.len()));
            let mut from = first;
            while let Some(found) = finder.find(&data[from..last]) {
                let at = from + found;
                // The value starting at `at`, if one does.
                let starts_before = offsets.partition_point(|o| o.as_usize() <= at);
                let i = starts_before - 1;
                if i < values.len() && offset(i) == at && offset(i + 1) - at == wanted.len() {
                    mark(i);
                }
                from = at + 1;
            }
        }
        matching
    }
}

/// The column `e` reads: a column, or a column cast to a string type (type coercion compares a
/// dictionary column with a string literal as `CAST(column AS Utf8)`; casting a dictionary of
/// strings to strings keeps every value, and a column of another type is left to DataFusion by
/// [`StringEquals::evaluate`]).
fn column_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Column(c) => Some(c.name.clone()),
        Expr::Cast(Cast { expr, field }) if is_strings(field.data_type()) => match expr.as_ref() {
            Expr::Column(c) => Some(c.name.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A non-null string literal, or one cast to a string type or a dictionary of strings (type
/// coercion compares a dictionary column with `CAST('x' AS Dictionary(Int32, Utf8))`).
fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(value, _) => scalar_string(value),
        Expr::Cast(Cast { expr, field }) if is_strings(field.data_type()) => string_literal(expr),
        _ => None,
    }
}

fn is_strings(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_strings(values),
        _ => false,
    }
}

fn scalar_string(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        ScalarValue::Dictionary(_, inner) => scalar_string(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, RecordBatch, StringArray};
    use arrow::datatypes::{Field, Int32Type, Schema};
    use datafusion::common::DFSchema;
    use datafusion::logical_expr::{cast, col, lit};
    use datafusion::prelude::SessionContext;

    /// The reference: DataFusion's own evaluation of the filter.
    fn reference(filter: &Expr, array: &ArrayRef) -> BooleanArray {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "hostname",
            array.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![array.clone()]).unwrap();
        let state = SessionContext::new().state();
        let physical = state
            .create_physical_expr(filter.clone(), &DFSchema::try_from(schema).unwrap())
            .unwrap();
        let out = physical
            .evaluate(&batch)
            .unwrap()
            .into_array(batch.num_rows())
            .unwrap();
        // Null answers keep no row, as a filter treats them.
        out.as_boolean()
            .iter()
            .map(|v| Some(v == Some(true)))
            .collect()
    }

    fn arrays() -> Vec<ArrayRef> {
        // Prefixes, values spanning a literal across their boundary ("host_4" + "1717"), empty
        // strings, nulls, repeats.
        let texts: Vec<Option<&str>> = vec![
            Some("host_4171"),
            Some("host_41717"),
            Some("host_4"),
            Some("1717"),
            None,
            Some(""),
            Some("host_41717x"),
            Some("xhost_41717"),
            Some("host_41717"),
            Some("aa"),
            Some("a"),
            Some("aaa"),
        ];
        let plain: ArrayRef = Arc::new(StringArray::from(texts.clone()));
        let sliced = plain.slice(2, 8);
        let keys = vec![
            Some(1),
            None,
            Some(0),
            Some(1),
            Some(5),
            Some(4),
            Some(3),
            Some(2),
        ];
        let values: ArrayRef = Arc::new(StringArray::from(vec![
            Some("host_41717"),
            Some("b"),
            Some(""),
            Some("aa"),
            None,
            Some("a"),
        ]));
        let dictionary: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(keys.into_iter().collect(), values).unwrap(),
        );
        let empty_values: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(
                vec![None, None].into_iter().collect(),
                Arc::new(StringArray::from(Vec::<Option<&str>>::new())),
            )
            .unwrap(),
        );
        vec![plain, sliced, dictionary, empty_values]
    }

    #[test]
    fn equals_and_in_agree_with_datafusion() {
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let filters = vec![
            col("hostname").eq(lit("host_41717")),
            lit("host_4171").eq(col("hostname")),
            col("hostname").eq(lit("")),
            col("hostname").eq(lit("a")),
            col("hostname").eq(lit("aa")),
            col("hostname").eq(lit("41717")),
            col("hostname").in_list(vec![lit("host_4"), lit("1717"), lit("aaa")], false),
            col("hostname").in_list(vec![lit("nowhere")], false),
            cast(col("hostname"), DataType::Utf8).eq(lit("host_41717")),
            lit("aa").eq(cast(col("hostname"), DataType::Utf8)),
            cast(col("hostname"), DataType::Utf8).in_list(vec![lit(""), lit("b")], false),
            col("hostname").eq(cast(lit("host_4"), dictionary.clone())),
            col("hostname").in_list(
                vec![
                    cast(lit("a"), dictionary.clone()),
                    cast(lit("1717"), dictionary),
                ],
                false,
            ),
        ];
        for filter in &filters {
            let fast = StringEquals::from_expr(filter).expect("a string equality");
            for array in arrays() {
                assert_eq!(
                    fast.evaluate(&array).expect("strings"),
                    reference(filter, &array),
                    "{filter} over {array:?}"
                );
            }
        }
    }

    #[test]
    fn other_filters_are_left_to_datafusion() {
        assert_eq!(
            StringEquals::from_expr(&col("hostname").not_eq(lit("a"))),
            None
        );
        assert_eq!(
            StringEquals::from_expr(&col("hostname").in_list(vec![lit("a")], true)),
            None
        );
        assert_eq!(StringEquals::from_expr(&col("rack").eq(lit(3))), None);
        assert_eq!(
            StringEquals::from_expr(&cast(col("rack"), DataType::Int64).eq(lit("3"))),
            None
        );
        assert_eq!(
            StringEquals::from_expr(&col("rack").eq(cast(lit("3"), DataType::Int64))),
            None
        );
        assert_eq!(
            StringEquals::from_expr(&col("hostname").eq(col("region"))),
            None
        );
        let numbers: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1, 2]));
        let fast = StringEquals::from_expr(&col("hostname").eq(lit("a"))).unwrap();
        assert!(fast.evaluate(&numbers).is_none());
    }
}
