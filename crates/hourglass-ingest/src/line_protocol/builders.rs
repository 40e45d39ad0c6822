//! Per-table Arrow column builders with lazy null padding.
//!
//! A [`TableBuilder`] holds the rows of one measurement decoded so far: times, source line
//! numbers and one [`Column`] per tag or field in first-appearance order. Columns are only
//! created ([`TableBuilder::add_column`]) and appended to ([`TableBuilder::append`]) by the
//! resolver's commit, after the whole line was validated, so a rejected line leaves nothing
//! behind. A column that a row does not mention is not touched;
//! the missing rows are filled with nulls the next time the column gets a value, or at
//! [`TableBuilder::finish`].

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder,
    UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{ArrowError, Field as ArrowField, Schema};
use hourglass_core::types::{dimension_field, measure_field, time_field, MEASURE_NAME_COLUMN};
use hourglass_core::{ColumnType, TableWrite};

use super::dictionary::{same_bytes, TagBuilder};

/// Whether a column holds a tag or a field of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    Tag,
    Field(ColumnType),
}

/// One value to append: a tag value or a field value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'v> {
    Tag(&'v str),
    /// A tag value by the dictionary key it already has in its column.
    TagKey(i32),
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    String(&'v str),
    Boolean(bool),
}

enum ColumnData {
    Tag(TagBuilder),
    Double(Float64Builder),
    Bigint(Int64Builder),
    Ubigint(UInt64Builder),
    Varchar(StringBuilder),
    Boolean(BooleanBuilder),
    Timestamp(TimestampNanosecondBuilder),
}

impl ColumnData {
    fn new(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Tag => ColumnData::Tag(TagBuilder::default()),
            ColumnKind::Field(ty) => match ty {
                ColumnType::Double => ColumnData::Double(Float64Builder::new()),
                ColumnType::Bigint => ColumnData::Bigint(Int64Builder::new()),
                ColumnType::Ubigint => ColumnData::Ubigint(UInt64Builder::new()),
                ColumnType::Varchar => ColumnData::Varchar(StringBuilder::new()),
                ColumnType::Boolean => ColumnData::Boolean(BooleanBuilder::new()),
                ColumnType::Timestamp => ColumnData::Timestamp(TimestampNanosecondBuilder::new()),
            },
        }
    }

    fn append_nulls(&mut self, n: usize) {
        match self {
            ColumnData::Tag(b) => b.append_nulls(n),
            ColumnData::Double(b) => b.append_nulls(n),
            ColumnData::Bigint(b) => b.append_nulls(n),
            ColumnData::Ubigint(b) => b.append_nulls(n),
            ColumnData::Varchar(b) => b.append_nulls(n),
            ColumnData::Boolean(b) => b.append_nulls(n),
            ColumnData::Timestamp(b) => b.append_nulls(n),
        }
    }

    /// Appends one value. The resolver has checked that the value fits the column; a mismatch
    /// (a bug) appends a null so that column lengths stay consistent. Inlined into the commit
    /// loop: a call per value was a tenth of decoding TSBS; only a tag value that needs its
    /// dictionary looked up is a call.
    #[inline]
    fn append(&mut self, cell: Cell<'_>) {
        match (self, cell) {
            (ColumnData::Tag(b), Cell::Tag(v)) => append_tag(b, v),
            (ColumnData::Tag(b), Cell::TagKey(k)) => b.append_key(k),
            (ColumnData::Double(b), Cell::Float(v)) => b.append_value(v),
            (ColumnData::Bigint(b), Cell::Integer(v)) => b.append_value(v),
            (ColumnData::Ubigint(b), Cell::Unsigned(v)) => b.append_value(v),
            (ColumnData::Varchar(b), Cell::String(v)) => b.append_value(v),
            (ColumnData::Boolean(b), Cell::Boolean(v)) => b.append_value(v),
            (data, _) => data.append_nulls(1),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            ColumnData::Tag(b) => b.finish()?,
            ColumnData::Double(b) => Arc::new(b.finish()),
            ColumnData::Bigint(b) => Arc::new(b.finish()),
            ColumnData::Ubigint(b) => Arc::new(b.finish()),
            ColumnData::Varchar(b) => Arc::new(b.finish()),
            ColumnData::Boolean(b) => Arc::new(b.finish()),
            ColumnData::Timestamp(b) => Arc::new(b.finish()),
        })
    }
}

/// One tag or field column of a table.
pub(crate) struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// Slots appended so far (values and nulls); rows past it are null.
    len: usize,
    data: ColumnData,
}

/// A tag value through the dictionary (hashing it), kept out of line.
#[inline(never)]
fn append_tag(builder: &mut TagBuilder, value: &str) {
    builder.append(value);
}

impl Column {
    #[inline]
    fn append(&mut self, row: usize, cell: Cell<'_>) {
        if self.len < row {
            self.fill_nulls(row);
        }
        self.data.append(cell);
        self.len = row + 1;
    }

    /// Nulls for the rows this column missed, before appending to row `row`.
    #[cold]
    #[inline(never)]
    fn fill_nulls(&mut self, row: usize) {
        self.data.append_nulls(row - self.len);
    }

    fn finish(&mut self, rows: usize) -> Result<ArrayRef, ArrowError> {
        if self.len < rows {
            self.data.append_nulls(rows - self.len);
            self.len = rows;
        }
        self.data.finish()
    }

    fn field(&self) -> Arc<ArrowField> {
        match self.kind {
            ColumnKind::Tag => dimension_field(&self.name),
            ColumnKind::Field(ty) => measure_field(&self.name, ty),
        }
    }
}

/// The rows of one table (measurement) decoded from a body so far.
pub(crate) struct TableBuilder {
    pub name: String,
    /// Why lines of this table are rejected outright (an invalid table name), if they are.
    pub name_error: Option<String>,
    pub columns: Vec<Column>,
    index: HashMap<String, usize>,
    /// The column of the previous accepted line's i-th tag / field: checked before the map.
    pub tag_hints: Vec<u32>,
    pub field_hints: Vec<u32>,
    rows: usize,
    /// Bytes of line protocol accepted into this table; bounds every string buffer's size.
    bytes: usize,
    times: Vec<i64>,
    sources: Vec<u32>,
}

/// Arrow's `Utf8` offsets and our dictionary keys are i32: a table takes at most this many bytes
/// of line protocol from one body, which bounds every string buffer and the number of rows.
pub(crate) const MAX_TABLE_BYTES: usize = i32::MAX as usize;

impl TableBuilder {
    pub fn new(name: String, name_error: Option<String>) -> Self {
        TableBuilder {
            name,
            name_error,
            columns: Vec::new(),
            index: HashMap::new(),
            tag_hints: Vec::new(),
            field_hints: Vec::new(),
            rows: 0,
            bytes: 0,
            times: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// The column named `name`, trying column `hint` first.
    #[inline(always)]
    pub fn find(&self, hint: Option<&u32>, name: &str) -> Option<usize> {
        if let Some(&h) = hint {
            let h = h as usize;
            if self
                .columns
                .get(h)
                .is_some_and(|c| same_bytes(c.name.as_bytes(), name.as_bytes()))
            {
                return Some(h);
            }
        }
        self.index.get(name).copied()
    }

    /// Whether a line of `line_bytes` more bytes still fits in this table's buffers.
    pub fn fits(&self, line_bytes: usize, limit: usize) -> bool {
        self.bytes.saturating_add(line_bytes) <= limit
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a new (empty) column; it becomes index `self.columns.len()` before the call.
    pub fn add_column(&mut self, name: &str, kind: ColumnKind) {
        self.index.insert(name.to_owned(), self.columns.len());
        self.columns.push(Column {
            name: name.to_owned(),
            kind,
            len: 0,
            data: ColumnData::new(kind),
        });
    }

    /// Appends `cell` to column `column` for the row being committed.
    #[inline]
    pub fn append(&mut self, column: usize, cell: Cell<'_>) {
        let row = self.rows;
        if let Some(c) = self.columns.get_mut(column) {
            c.append(row, cell);
        }
    }

    /// The dictionary key of the last ended row's value in tag column `column`, if it has one.
    pub fn last_row_tag_key(&self, column: usize) -> Option<i32> {
        let c = self.columns.get(column)?;
        match &c.data {
            ColumnData::Tag(b) if self.rows > 0 && c.len == self.rows => b.last_key(),
            _ => None,
        }
    }

    /// Ends the row being committed.
    pub fn end_row(&mut self, time: i64, line: u32, line_bytes: usize) {
        self.times.push(time);
        self.sources.push(line);
        self.rows += 1;
        self.bytes += line_bytes;
    }

    /// The table's batch: `time`, `measure_name`, tags, then fields, each in first-appearance
    /// order. `None` if no line was accepted; on failure (a bug) the message and source lines.
    pub fn finish(mut self) -> Option<Result<TableWrite, (String, Vec<u32>)>> {
        if self.rows == 0 {
            return None;
        }
        let rows = self.rows;
        let mut fields = Vec::with_capacity(self.columns.len() + 2);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len() + 2);
        fields.push(time_field());
        arrays.push(Arc::new(TimestampNanosecondArray::from(std::mem::take(
            &mut self.times,
        ))));
        // The same field as the storage schema's (nullable); the values are never null.
        fields.push(dimension_field(MEASURE_NAME_COLUMN));
        let keys = Int32Array::from(vec![0; rows]);
        let values: ArrayRef = Arc::new(StringArray::from(vec![self.name.as_str()]));
        match DictionaryArray::<Int32Type>::try_new(keys, values) {
            Ok(a) => arrays.push(Arc::new(a)),
            Err(e) => return Some(Err((e.to_string(), self.sources))),
        }
        for tags_pass in [true, false] {
            for c in &mut self.columns {
                if (c.kind == ColumnKind::Tag) == tags_pass {
                    fields.push(c.field());
                    match c.finish(rows) {
                        Ok(a) => arrays.push(a),
                        Err(e) => return Some(Err((e.to_string(), self.sources))),
                    }
                }
            }
        }
        let schema = Arc::new(Schema::new(fields));
        Some(match RecordBatch::try_new(schema, arrays) {
            Ok(batch) => Ok(TableWrite {
                table: self.name,
                batch,
                sources: self.sources,
            }),
            Err(e) => Err((e.to_string(), self.sources)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_array::Array;
    use arrow_schema::DataType;

    #[test]
    fn pads_sparse_columns_with_nulls_and_orders_tags_first() {
        let mut t = TableBuilder::new("m".into(), None);
        t.add_column("f", ColumnKind::Field(ColumnType::Double));
        t.add_column("host", ColumnKind::Tag);
        t.append(0, Cell::Float(1.0));
        t.end_row(10, 1, 8);
        t.append(1, Cell::Tag("a"));
        t.end_row(20, 2, 8);
        t.add_column("n", ColumnKind::Field(ColumnType::Bigint));
        t.append(2, Cell::Integer(7));
        t.end_row(30, 3, 8);
        t.end_row(40, 5, 8);
        let w = t.finish().unwrap().unwrap();
        assert_eq!(w.table, "m");
        assert_eq!(w.sources, [1, 2, 3, 5]);
        let b = &w.batch;
        let names: Vec<_> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["time", "measure_name", "host", "f", "n"]);
        assert_eq!(
            b.schema().field(1).data_type(),
            &hourglass_core::types::dimension_arrow_type()
        );
        assert_eq!(b.column(1).null_count(), 0);
        let host = b.column(2).as_dictionary::<Int32Type>();
        assert_eq!(host.null_count(), 3);
        assert!(host.is_valid(1));
        let f = b.column(3).as_primitive::<Float64Type>();
        assert_eq!(f.iter().collect::<Vec<_>>(), [Some(1.0), None, None, None]);
        let n = b.column(4).as_primitive::<Int64Type>();
        assert_eq!(n.iter().collect::<Vec<_>>(), [None, None, Some(7), None]);
        assert_eq!(b.column(4).data_type(), &DataType::Int64);
    }

    #[test]
    fn empty_table_yields_nothing() {
        let mut t = TableBuilder::new("m".into(), None);
        t.add_column("f", ColumnKind::Field(ColumnType::Double));
        assert!(t.finish().is_none());
    }

    #[test]
    fn hint_is_checked_before_the_map() {
        let mut t = TableBuilder::new("m".into(), None);
        t.add_column("a", ColumnKind::Tag);
        t.add_column("b", ColumnKind::Tag);
        assert_eq!(t.find(Some(&1), "b"), Some(1));
        assert_eq!(t.find(Some(&0), "b"), Some(1));
        assert_eq!(t.find(Some(&9), "a"), Some(0));
        assert_eq!(t.find(None, "c"), None);
    }
}
