//! Arrow schemas of tables and conforming batches to them.
//!
//! A table's query schema is derived from its catalog entry in Timestream's column order:
//! dimensions, `measure_name`, `time`, then measures. Batches in the memory store and Parquet files
//! written under older schemas carry a subset of the columns; [`conform`] fills the missing ones
//! with NULLs and reorders.

use std::sync::Arc;

use arrow_array::{new_null_array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{Schema, SchemaRef};
use hourglass_core::types::{dimension_field, measure_field, time_field};
use hourglass_core::{ColumnRole, ColumnType, Error, Result};

use crate::catalog::TableDef;

/// The Arrow schema of a table, in Timestream's `SELECT *` order.
pub fn table_schema(def: &TableDef) -> SchemaRef {
    let mut fields = Vec::with_capacity(def.columns.len());
    fields.extend(def.dimensions().map(|c| dimension_field(&c.name)));
    fields.push(dimension_field(hourglass_core::MEASURE_NAME_COLUMN));
    fields.push(time_field());
    fields.extend(
        def.measures()
            .map(|c| measure_field(&c.name, c.measure_type.unwrap_or(ColumnType::Varchar))),
    );
    Arc::new(Schema::new(fields))
}

/// Names of the columns that identify a series (dimensions and `measure_name`), in schema order.
pub fn series_columns(def: &TableDef) -> Vec<String> {
    def.columns
        .iter()
        .filter(|c| matches!(c.role, ColumnRole::Dimension | ColumnRole::MeasureName))
        .map(|c| c.name.clone())
        .collect()
}

/// Reshapes `batch` to `schema`: columns matched by name, missing ones all-NULL, types cast when
/// they differ only in representation.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch.clone());
    }
    let rows = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(col) if col.data_type() == field.data_type() => Ok(col.clone()),
            Some(col) => arrow_cast::cast(col, field.data_type()).map_err(|e| {
                Error::internal(format!("column '{}' cannot be read: {e}", field.name()))
            }),
            None => Ok(new_null_array(field.data_type(), rows)),
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| Error::internal(format!("cannot conform batch: {e}")))
}
