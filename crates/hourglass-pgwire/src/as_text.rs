//! Result columns `arrow-pg` cannot encode, sent as `text` instead of failing the query.
//!
//! arrow-pg 0.16 has no PostgreSQL type for Arrow's `Map` (the Timestream dialect's `map_agg`,
//! `histogram`, `multimap_agg`, `map_union` return maps) and answers "Unsupported Datatype". Such
//! a column — a map, or a list or struct holding one — is described as `text` and each value
//! written with Arrow's display formatting (`{a: 1.0, b: 2.0}`), NULL kept NULL.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Whether values of `t` go out as text.
fn needs_text(t: &DataType) -> bool {
    match t {
        DataType::Map(_, _) => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            needs_text(f.data_type())
        }
        DataType::Struct(fields) => fields.iter().any(|f| needs_text(f.data_type())),
        _ => false,
    }
}

/// `schema` with the columns that go out as text typed `Utf8`; `None` when there are none.
pub fn text_schema(schema: &Schema) -> Option<SchemaRef> {
    if !schema.fields().iter().any(|f| needs_text(f.data_type())) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if needs_text(f.data_type()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// `batch` with the columns that go out as text formatted (schema from [`text_schema`]).
pub fn text_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let options = FormatOptions::default();
    let columns = batch
        .columns()
        .iter()
        .map(|c| {
            if !needs_text(c.data_type()) {
                return Ok(c.clone());
            }
            let formatter = ArrayFormatter::try_new(c.as_ref(), &options)?;
            let mut out = StringBuilder::new();
            for row in 0..c.len() {
                if c.is_null(row) {
                    out.append_null();
                } else {
                    out.append_value(formatter.value(row).to_string());
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray, Float64Builder, MapBuilder, StringBuilder};

    use super::*;

    #[test]
    fn a_map_column_becomes_its_text_and_other_columns_stay() {
        let mut map = MapBuilder::new(None, StringBuilder::new(), Float64Builder::new());
        map.keys().append_value("a");
        map.values().append_value(1.0);
        map.keys().append_value("b");
        map.values().append_value(2.5);
        map.append(true).unwrap();
        map.append(false).unwrap();
        let map: ArrayRef = Arc::new(map.finish());
        let ids: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(vec![1, 2]));
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("m", map.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![ids, map]).unwrap();
        let text = text_schema(&schema).unwrap();
        assert_eq!(text.field(0).data_type(), &DataType::Int64);
        assert_eq!(text.field(1).data_type(), &DataType::Utf8);
        let out = text_batch(&batch, &text).unwrap();
        let m = out.column(1).as_string::<i32>();
        assert_eq!(m.value(0), "{a: 1.0, b: 2.5}");
        assert!(m.is_null(1));
        assert!(text_schema(&Schema::new(vec![Field::new("x", DataType::Utf8, true)])).is_none());
    }
}
