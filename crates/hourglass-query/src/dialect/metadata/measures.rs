//! `SHOW MEASURES FROM db.tbl`: each `measure_name` of the table with its `data_type` (the
//! type of its `measure_value::<type>` column for single-measure records, `multi` for
//! multi-measure ones) and `dimensions` (array of rows `dimension_name`, `data_type`, the
//! dimensions its records carry). Which measure columns and dimensions each measure uses comes
//! from one aggregate over the table: non-NULL counts grouped by `measure_name`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::common::{Column, TableReference};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use hourglass_core::{Error, Result, MEASURE_NAME_COLUMN};
use hourglass_storage::TableDef;

use super::like as matches_like;
use crate::dialect::errors::datafusion as df_error;

/// The `dimensions` column type: `array(row(dimension_name varchar, data_type varchar))`.
fn dimension_fields() -> Fields {
    Fields::from(vec![
        Field::new("dimension_name", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
    ])
}

pub async fn show_measures(
    ctx: &SessionContext,
    database: &str,
    def: &TableDef,
    like: Option<String>,
) -> Result<Vec<RecordBatch>> {
    let measures: Vec<&str> = def.measures().map(|c| c.name.as_str()).collect();
    let dims: Vec<&str> = def.dimensions().map(|c| c.name.as_str()).collect();
    let reference = TableReference::partial(database, def.name.as_str());
    let df = ctx.table(reference).await.map_err(df_error)?;
    let counted = |name: &str| count(Expr::Column(Column::new_unqualified(name)));
    let aggregates: Vec<Expr> = measures
        .iter()
        .chain(dims.iter())
        .enumerate()
        .map(|(i, n)| counted(n).alias(format!("c{i}")))
        .collect();
    let batches = df
        .aggregate(
            vec![Expr::Column(Column::new_unqualified(MEASURE_NAME_COLUMN))],
            aggregates,
        )
        .map_err(df_error)?
        .collect()
        .await
        .map_err(df_error)?;

    // (measure_name, data_type, dimensions)
    let mut rows: Vec<(String, String, Vec<String>)> = Vec::new();
    for batch in &batches {
        let names = arrow::compute::cast(batch.column(0), &DataType::Utf8)
            .map_err(|e| Error::internal(e.to_string()))?;
        let names = names.as_string::<i32>();
        let counts: Vec<&Int64Array> = batch.columns()[1..]
            .iter()
            .map(|c| c.as_primitive::<arrow::datatypes::Int64Type>())
            .collect();
        for row in 0..batch.num_rows() {
            if names.is_null(row) {
                continue;
            }
            let used = |i: usize| counts.get(i).is_some_and(|c| c.value(row) > 0);
            let used_measures: Vec<&str> = measures
                .iter()
                .enumerate()
                .filter(|(i, _)| used(*i))
                .map(|(_, n)| *n)
                .collect();
            let data_type = match used_measures.as_slice() {
                [single] if single.starts_with("measure_value::") => {
                    single.trim_start_matches("measure_value::").to_string()
                }
                _ => "multi".to_string(),
            };
            let used_dims = dims
                .iter()
                .enumerate()
                .filter(|(i, _)| used(measures.len() + i))
                .map(|(_, d)| d.to_string())
                .collect();
            rows.push((names.value(row).to_string(), data_type, used_dims));
        }
    }
    rows.retain(|(n, _, _)| like.as_deref().is_none_or(|p| matches_like(p, n)));
    rows.sort();

    let mut dim_names = Vec::new();
    let mut lengths = Vec::new();
    for (_, _, d) in &rows {
        lengths.push(d.len());
        dim_names.extend(d.iter().cloned());
    }
    let n_dims = dim_names.len();
    let entries = StructArray::new(
        dimension_fields(),
        vec![
            Arc::new(StringArray::from(dim_names)) as ArrayRef,
            Arc::new(StringArray::from(vec!["varchar"; n_dims])),
        ],
        None,
    );
    let item = Arc::new(Field::new(
        "item",
        DataType::Struct(dimension_fields()),
        false,
    ));
    let dimensions = ListArray::new(
        item.clone(),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(entries),
        None,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("measure_name", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("dimensions", DataType::List(item), false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
            )),
            Arc::new(dimensions),
        ],
    )
    .map_err(|e| Error::internal(e.to_string()))?;
    Ok(vec![batch])
}
