//! Grouping by dimensions without DataFusion's row-format fallback.
//!
//! Dimensions are `Dictionary(Int32, Utf8)` columns. DataFusion has column-wise group-key
//! builders for strings and string views but not for dictionaries, so any `GROUP BY` on a
//! dimension converts every key of every row to its row format and hashes that — a third of the
//! time of TSBS double-groupby. This optimizer rule groups by the dimension as a `Utf8View`
//! instead and casts the few output keys back, so the aggregate's output schema — names,
//! qualifiers and types — is unchanged. The conversion ([`DictionaryAsView`]) makes one view per
//! dictionary value and gathers them by key (arrow's cast builds a view per row, which cost as
//! much as the grouping it saved). The projection keeps the aggregate's schema exactly,
//! functional dependencies included.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, ExprSchema};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{
    Aggregate, ColumnarValue, Expr, LogicalPlan, Projection, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// The optimizer rule; registered on every session, after DataFusion's own optimizer rules.
///
/// It is an optimizer rule, not an analyzer rule, so that it sees the plan after DataFusion's
/// `optimize_projections` has dropped the GROUP BY keys that the SQL planner adds for columns a
/// key functionally determines: once a key is wrapped in [`DictionaryAsView`] it is no longer a
/// plain column, and DataFusion can no longer recognise the keys it determines (an earlier
/// version ran as an analyzer rule, and `GROUP BY hostname` over an `unnest` grouped by
/// `hostname, v`: one group per point — see [`rewrite`]).
#[derive(Debug, Default)]
pub struct DictionaryGroupKeys;

impl OptimizerRule for DictionaryGroupKeys {
    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        if !crate::rules::Rule::DictionaryGroupKeys.enabled(&config.options()) {
            return Ok(Transformed::no(plan));
        }
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match rewrite(aggregate)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(plan)),
        }
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn name(&self) -> &str {
        "hourglass_dictionary_group_keys"
    }
}

fn rewrite(aggregate: &Aggregate) -> DfResult<Option<LogicalPlan>> {
    let input_schema = aggregate.input.schema();
    let mut recast: Vec<(Column, DataType)> = Vec::new();
    let group_expr = aggregate
        .group_expr
        .iter()
        .map(|e| {
            let Expr::Column(c) = e else {
                return e.clone();
            };
            let Ok(field) = input_schema.field_from_column(c) else {
                return e.clone();
            };
            match field.data_type() {
                DataType::Dictionary(_, value) if value.as_ref() == &DataType::Utf8 => {
                    recast.push((c.clone(), field.data_type().clone()));
                    Expr::ScalarFunction(ScalarFunction::new_udf(
                        Arc::new(ScalarUDF::new_from_impl(DictionaryAsView::default())),
                        vec![e.clone()],
                    ))
                    .alias_qualified(c.relation.clone(), c.name.clone())
                }
                _ => e.clone(),
            }
        })
        .collect::<Vec<_>>();
    if recast.is_empty() {
        return Ok(None);
    }
    let grouped = Aggregate::try_new(
        aggregate.input.clone(),
        group_expr,
        aggregate.aggr_expr.clone(),
    )?;
    let restore = grouped
        .schema
        .iter()
        .map(|(qualifier, field)| {
            let column = Column::new(qualifier.cloned(), field.name());
            let expr = Expr::Column(column.clone());
            match recast.iter().find(|(c, _)| *c == column) {
                Some((_, original)) => Expr::Cast(Cast::new(Box::new(expr), original.clone()))
                    .alias_qualified(qualifier.cloned(), field.name()),
                None => expr,
            }
        })
        .collect::<Vec<_>>();
    let projection = Projection::try_new(restore, Arc::new(LogicalPlan::Aggregate(grouped)))?;
    // Only a rewrite that leaves every column as it was is kept.
    if projection.schema.fields() != aggregate.schema.fields()
        || projection.schema.columns() != aggregate.schema.columns()
    {
        return Ok(None);
    }
    // The schema above must stay the aggregate's own, functional dependencies included: a
    // projection of casts would otherwise drop them (the cast columns are no longer plain
    // columns), and DataFusion reads them after this rule. Its SQL planner adds every column the
    // dependencies say a GROUP BY key determines to the GROUP BY, and its `optimize_projections`
    // removes those keys again using the same dependencies. Without them the added keys stayed —
    // and where DataFusion's dependencies are wrong (an `unnest` keeps its input's keys, though it
    // repeats their rows) that turned `GROUP BY hostname` into `GROUP BY hostname, v`: one group
    // per point instead of per host. The cast back to the dictionary changes no value, so every
    // dependency of the aggregate still holds.
    let projection = Projection::try_new_with_schema(
        projection.expr,
        projection.input,
        aggregate.schema.clone(),
    )?;
    Ok(Some(LogicalPlan::Projection(projection)))
}

/// `Dictionary(_, Utf8)` to `Utf8View`: the dictionary's values converted once, then gathered by
/// key (other inputs are cast).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DictionaryAsView {
    signature: Signature,
}

impl Default for DictionaryAsView {
    fn default() -> Self {
        DictionaryAsView {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DictionaryAsView {
    fn name(&self) -> &str {
        "hourglass_dictionary_as_view"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8View)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Array(array) => {
                let view = match array.as_any_dictionary_opt() {
                    Some(dict) => {
                        let values = arrow::compute::cast(dict.values(), &DataType::Utf8View)?;
                        arrow::compute::take(&values, dict.keys(), None)?
                    }
                    None => arrow::compute::cast(array, &DataType::Utf8View)?,
                };
                Ok(ColumnarValue::Array(view))
            }
            ColumnarValue::Scalar(value) => {
                Ok(ColumnarValue::Scalar(value.cast_to(&DataType::Utf8View)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, DictionaryArray, Int32Array, StringArray};
    use arrow::datatypes::{Field, Int32Type};
    use datafusion::config::ConfigOptions as Options;

    use super::*;

    #[test]
    fn a_dictionary_becomes_the_views_of_its_values_nulls_kept() {
        let dict = DictionaryArray::<Int32Type>::new(
            Int32Array::from(vec![Some(2), None, Some(0), Some(2), Some(1)]),
            Arc::new(StringArray::from(vec![
                "host_0",
                "a value longer than twelve bytes",
                "h2",
            ])),
        );
        let input: ArrayRef = Arc::new(dict);
        let out = DictionaryAsView::default()
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(input.clone())],
                arg_fields: vec![Arc::new(Field::new("d", input.data_type().clone(), true))],
                number_rows: 5,
                return_field: Arc::new(Field::new("v", DataType::Utf8View, true)),
                config_options: Arc::new(Options::default()),
            })
            .unwrap()
            .into_array(5)
            .unwrap();
        let expected = arrow::compute::cast(&input, &DataType::Utf8View).unwrap();
        assert_eq!(&out, &expected);
        assert_eq!(out.null_count(), 1);
    }
}
