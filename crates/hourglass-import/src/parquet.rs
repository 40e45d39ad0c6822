//! Parquet files read as Arrow batches. String columns that will become dimensions are read as
//! `Dictionary(Int32, Utf8)` straight from the file's dictionary pages (no hashing per row); a
//! resumed file skips the rows already loaded.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};

/// An open Parquet file.
pub struct ParquetFile {
    file: File,
    metadata: ArrowReaderMetadata,
    pub rows: u64,
}

impl ParquetFile {
    pub fn open(path: &Path, what: &str) -> anyhow::Result<ParquetFile> {
        let file = File::open(path).with_context(|| format!("opening {what}"))?;
        let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .with_context(|| format!("{what}: not a Parquet file"))?;
        let rows = metadata.metadata().file_metadata().num_rows().max(0) as u64;
        Ok(ParquetFile {
            file,
            metadata,
            rows,
        })
    }

    /// The file's Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        self.metadata.schema().clone()
    }

    /// Batches of `batch_rows`, skipping the first `skip` rows; the columns in `dictionaries`
    /// (plain strings in the file) are read as dictionaries.
    pub fn reader(
        self,
        batch_rows: usize,
        skip: u64,
        dictionaries: &[String],
        what: &str,
    ) -> anyhow::Result<ParquetRecordBatchReader> {
        let schema = self.metadata.schema();
        let hinted: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let plain_string = matches!(
                    f.data_type(),
                    DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                );
                if plain_string && dictionaries.iter().any(|d| d == f.name()) {
                    f.as_ref()
                        .clone()
                        .with_data_type(hourglass_core::types::dimension_arrow_type())
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let hinted = Arc::new(Schema::new_with_metadata(hinted, schema.metadata().clone()));
        let metadata = ArrowReaderMetadata::try_new(
            self.metadata.metadata().clone(),
            ArrowReaderOptions::new().with_schema(hinted),
        )
        .with_context(|| format!("{what}: reading string columns as dictionaries"))?;
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(self.file, metadata)
            .with_batch_size(batch_rows);
        if skip > 0 {
            let skip = skip.min(self.rows);
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(skip as usize),
                RowSelector::select((self.rows - skip) as usize),
            ]));
        }
        builder
            .build()
            .with_context(|| format!("{what}: cannot read"))
    }
}
