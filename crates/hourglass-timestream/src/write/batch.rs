//! Accepted records to one Arrow batch in the write-batch layout: `time` (Timestamp ns),
//! `measure_name` and dimensions (Dictionary(Int32, Utf8)), then typed measure columns; a
//! record's missing columns are NULL.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow::datatypes::{Int32Type, Schema};
use hourglass_core::types::{dimension_field, measure_field, time_field};
use hourglass_core::{ColumnType, Error, Result};

use super::record::{MeasureVal, Prepared};

enum Values<'a> {
    Double(Vec<Option<f64>>),
    Bigint(Vec<Option<i64>>),
    Varchar(Vec<Option<&'a str>>),
    Boolean(Vec<Option<bool>>),
    Timestamp(Vec<Option<i64>>),
}

impl<'a> Values<'a> {
    fn new(ty: ColumnType, rows: usize, capacity: usize) -> Values<'a> {
        fn nulls<T: Clone>(rows: usize, capacity: usize) -> Vec<Option<T>> {
            let mut v = Vec::with_capacity(capacity);
            v.resize(rows, None);
            v
        }
        match ty {
            ColumnType::Bigint | ColumnType::Ubigint => Values::Bigint(nulls(rows, capacity)),
            ColumnType::Varchar => Values::Varchar(nulls(rows, capacity)),
            ColumnType::Boolean => Values::Boolean(nulls(rows, capacity)),
            ColumnType::Timestamp => Values::Timestamp(nulls(rows, capacity)),
            ColumnType::Double => Values::Double(nulls(rows, capacity)),
        }
    }

    fn pad(&mut self, rows: usize) {
        match self {
            Values::Double(v) => v.resize(rows, None),
            Values::Bigint(v) => v.resize(rows, None),
            Values::Varchar(v) => v.resize(rows, None),
            Values::Boolean(v) => v.resize(rows, None),
            Values::Timestamp(v) => v.resize(rows, None),
        }
    }

    /// Appends at row `row` (the column must be padded to `row` first). `false` on a type
    /// mismatch (prevented by the column checks).
    fn push(&mut self, row: usize, v: &MeasureVal<'a>) -> bool {
        self.pad(row);
        match (self, v) {
            (Values::Double(c), MeasureVal::Double(x)) => c.push(Some(*x)),
            (Values::Bigint(c), MeasureVal::Bigint(x)) => c.push(Some(*x)),
            (Values::Varchar(c), MeasureVal::Varchar(x)) => c.push(Some(x)),
            (Values::Boolean(c), MeasureVal::Boolean(x)) => c.push(Some(*x)),
            (Values::Timestamp(c), MeasureVal::Timestamp(x)) => c.push(Some(*x)),
            _ => return false,
        }
        true
    }

    fn finish(self) -> ArrayRef {
        match self {
            Values::Double(v) => Arc::new(Float64Array::from(v)),
            Values::Bigint(v) => Arc::new(Int64Array::from(v)),
            Values::Varchar(v) => Arc::new(StringArray::from(v)),
            Values::Boolean(v) => Arc::new(BooleanArray::from(v)),
            Values::Timestamp(v) => Arc::new(TimestampNanosecondArray::from(v)),
        }
    }
}

/// Builds the batch of `records` (all of one table, columns already checked).
pub fn build_batch(records: &[&Prepared]) -> Result<RecordBatch> {
    let n = records.len();
    let mut times = Vec::with_capacity(n);
    let mut measure_names: Vec<&str> = Vec::with_capacity(n);
    let mut dims: Vec<(&str, Vec<Option<&str>>)> = Vec::new();
    let mut dim_index: HashMap<&str, usize> = HashMap::new();
    let mut measures: Vec<(&str, ColumnType, Values)> = Vec::new();
    let mut measure_index: HashMap<&str, usize> = HashMap::new();

    for (row, r) in records.iter().enumerate() {
        times.push(r.time);
        measure_names.push(r.measure_name);
        for &(name, value) in &r.dims {
            let i = *dim_index.entry(name).or_insert_with(|| {
                dims.push((name, Vec::with_capacity(n)));
                dims.len() - 1
            });
            let column = &mut dims[i].1;
            column.resize(row, None);
            column.push(Some(value));
        }
        for (name, value) in &r.measures {
            let ty = value.column_type();
            let i = *measure_index.entry(name).or_insert_with(|| {
                measures.push((name, ty, Values::new(ty, row, n)));
                measures.len() - 1
            });
            if !measures[i].2.push(row, value) {
                return Err(Error::internal(format!(
                    "column '{name}' got values of two types in one batch"
                )));
            }
        }
    }

    let mut fields = Vec::with_capacity(2 + dims.len() + measures.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.capacity());
    fields.push(time_field());
    columns.push(Arc::new(TimestampNanosecondArray::from(times)));
    fields.push(dimension_field(hourglass_core::MEASURE_NAME_COLUMN));
    columns.push(Arc::new(
        measure_names
            .into_iter()
            .collect::<DictionaryArray<Int32Type>>(),
    ));
    for (name, mut values) in dims {
        values.resize(n, None);
        fields.push(dimension_field(name));
        columns.push(Arc::new(
            values.into_iter().collect::<DictionaryArray<Int32Type>>(),
        ));
    }
    for (name, ty, mut values) in measures {
        values.pad(n);
        fields.push(measure_field(name, ty));
        columns.push(values.finish());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::internal(format!("building the write batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;

    fn rec<'a>(
        time: i64,
        dims: Vec<(&'a str, &'a str)>,
        measures: Vec<(&'a str, MeasureVal<'a>)>,
    ) -> Prepared<'a> {
        Prepared {
            index: 0,
            time,
            measure_name: "m",
            dims,
            measures,
            version: 1,
            series: 0,
            fingerprint: 0,
            magnetic: false,
        }
    }

    #[test]
    fn heterogeneous_records_fill_missing_columns_with_nulls() {
        let a = rec(
            1,
            vec![("host", "h1")],
            vec![("measure_value::double", MeasureVal::Double(1.5))],
        );
        let b = rec(
            2,
            vec![("host", "h2"), ("az", "a")],
            vec![
                ("x", MeasureVal::Varchar("s")),
                ("y", MeasureVal::Timestamp(7)),
            ],
        );
        let batch = build_batch(&[&a, &b]).unwrap();
        let names: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "time",
                "measure_name",
                "host",
                "az",
                "measure_value::double",
                "x",
                "y"
            ]
        );
        assert_eq!(batch.num_rows(), 2);
        let az = batch.column(3);
        assert!(matches!(az.data_type(), DataType::Dictionary(_, _)));
        assert!(az.is_null(0) && az.is_valid(1));
        let d = batch
            .column(4)
            .as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!((d.value(0), d.is_null(1)), (1.5, true));
        let x = batch.column(5).as_string::<i32>();
        assert!(x.is_null(0));
        assert_eq!(x.value(1), "s");
    }
}
