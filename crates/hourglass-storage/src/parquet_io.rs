//! Encoding and decoding the magnetic store's Parquet files.
//!
//! Files are sorted by series then time (declared in the footer's sorting columns), dimensions
//! dictionary-encoded, `time` and integer measures delta-encoded, each column chunk
//! ZSTD-compressed only where that saves at least 10 %, with page statistics and key-value
//! metadata giving the file's time range. Format: `docs/format/magnetic-store.md`.

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use hourglass_core::{column_role, ColumnRole};
use hourglass_core::{Error, Result};
use object_store::path::Path as ObjectPath;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::sort::key_column_indices;
use crate::store::MagneticStore;

pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Rows per data page at most: the page index prunes at this grain, so a query for one series
/// decodes about this many rows per file beyond its own. Measured on the side-by-side benchmark
/// against parquet's default of 20,000: queries on a few series 15–30 % faster (one host's
/// `max` over 8 hosts 15.4 → 13.1 ms, the as-of join 16.7 → 13.1 ms) for 5 % more bytes on
/// TSBS data (0.411 → 0.431 B/value; market data unchanged). 4,096 rows cost 12 %.
pub const PAGE_ROWS: usize = 8192;

/// A column chunk is stored ZSTD-compressed only when that makes it at least this much smaller.
/// Reading a compressed chunk costs a decompression pass and a codec: parquet builds a ZSTD
/// compression and decompression context for every compressed chunk it reads, and each context
/// queries the CPU's features with `cpuid`, which traps to the hypervisor on virtual machines
/// (~4 µs per instruction measured here, ~25 µs per chunk). Delta-encoded measures and
/// dictionary indices of sorted dimensions gain 0–7 % from ZSTD (some grow); timestamps at
/// regular intervals shrink 50-fold. Measured on the side-by-side benchmark: TSBS bytes per value
/// 0.435 → 0.458, one host's 12-hour scan 4.4–4.9 → 3.3–3.4 ms, `cpu-max-all-8` 13–16 → 11.5 ms.
pub const MIN_COMPRESSION_SAVING: f64 = 0.10;

/// ... and at least this many bytes smaller: a chunk read costs the same codec set-up however
/// little it saves. A regular clock's delta-encoded chunk is ~12 KB per 256 K rows, and ZSTD's
/// 50-fold on it saved less than the contexts cost to read (`ZSTD_cpuSupportsBmi2` was 7.5 % of a
/// one-host query's CPU on files that compressed it).
pub const MIN_COMPRESSION_SAVING_BYTES: i64 = 16 * 1024;

/// Row groups after which a column's "stored uncompressed" decision is tried again with ZSTD.
const RETRY_COMPRESSION_EVERY: usize = 4;

/// Encodes a batch already sorted by series then time.
///
/// Each column chunk is first encoded with ZSTD; a chunk that [`MIN_COMPRESSION_SAVING`] or
/// [`MIN_COMPRESSION_SAVING_BYTES`] is not met for is encoded again uncompressed, and the column's next row groups skip the ZSTD attempt
/// (for [`RETRY_COMPRESSION_EVERY`] row groups), so the choice costs little beyond the first row
/// group of a file.
pub fn encode(batch: &RecordBatch, min_time: i64, max_time: i64) -> Result<Bytes> {
    let schema = batch.schema();
    let zstd = Compression::ZSTD(ZstdLevel::try_new(3).map_err(parquet_err)?);
    let props = writer_properties(&schema, zstd, min_time, max_time);
    let plain_props = props
        .clone()
        .into_builder()
        .set_compression(Compression::UNCOMPRESSED)
        .build();
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 8);
    let (mut file, compressed) = ArrowWriter::try_new(&mut out, schema.clone(), Some(props))
        .map_err(parquet_err)?
        .into_serialized_writer()
        .map_err(parquet_err)?;
    // Only its column writers are used: chunks encoded uncompressed, for the same schema.
    let (_, uncompressed) =
        ArrowWriter::try_new(std::io::sink(), schema.clone(), Some(plain_props))
            .map_err(parquet_err)?
            .into_serialized_writer()
            .map_err(parquet_err)?;

    // Per column: the row group from which ZSTD is tried again (0 = always).
    let mut plain_until = vec![0usize; schema.fields().len()];
    let mut offset = 0;
    let mut row_group = 0;
    while offset < batch.num_rows() {
        let rows = batch.slice(offset, ROW_GROUP_ROWS.min(batch.num_rows() - offset));
        let zstd_writers = compressed
            .create_column_writers(row_group)
            .map_err(parquet_err)?;
        let plain_writers = uncompressed
            .create_column_writers(row_group)
            .map_err(parquet_err)?;
        let mut group = file.next_row_group().map_err(parquet_err)?;
        let columns = schema.fields().iter().zip(rows.columns());
        let writers = zstd_writers.into_iter().zip(plain_writers);
        for (i, ((field, column), (zstd_writer, plain_writer))) in columns.zip(writers).enumerate()
        {
            let leaves = compute_leaves(field, column).map_err(parquet_err)?;
            let write = |mut writer: ArrowColumnWriter| -> Result<ArrowColumnChunk> {
                for leaf in &leaves {
                    writer.write(leaf).map_err(parquet_err)?;
                }
                writer.close().map_err(parquet_err)
            };
            let chunk = if row_group < plain_until[i] {
                write(plain_writer)?
            } else {
                let chunk = write(zstd_writer)?;
                let meta = &chunk.close().metadata;
                let saved = meta.uncompressed_size() - meta.compressed_size();
                let saving = saved as f64 / meta.uncompressed_size().max(1) as f64;
                if saving < MIN_COMPRESSION_SAVING || saved < MIN_COMPRESSION_SAVING_BYTES {
                    plain_until[i] = row_group + RETRY_COMPRESSION_EVERY;
                    write(plain_writer)?
                } else {
                    chunk
                }
            };
            chunk.append_to_row_group(&mut group).map_err(parquet_err)?;
        }
        group.close().map_err(parquet_err)?;
        offset += rows.num_rows();
        row_group += 1;
    }
    file.close().map_err(parquet_err)?;
    Ok(Bytes::from(out))
}

/// The file's properties, with `compression` for every column.
fn writer_properties(
    schema: &SchemaRef,
    compression: Compression,
    min_time: i64,
    max_time: i64,
) -> WriterProperties {
    let sorting = key_column_indices(schema)
        .into_iter()
        .map(|i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: true,
        })
        .collect();
    let mut props = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(sorting))
        .set_column_dictionary_enabled(ColumnPath::from("time"), false)
        .set_column_encoding(ColumnPath::from("time"), Encoding::DELTA_BINARY_PACKED)
        .set_key_value_metadata(Some(vec![
            KeyValue::new("hourglass.min_time".into(), min_time.to_string()),
            KeyValue::new("hourglass.max_time".into(), max_time.to_string()),
            KeyValue::new("hourglass.format_version".into(), "1".to_string()),
        ]));
    // Integer measures sorted by series then time are mostly slow-moving: their deltas bit-pack
    // into a few bits, far smaller than dictionary indices.
    for field in schema.fields() {
        if matches!(field.data_type(), DataType::Int64 | DataType::UInt64)
            && column_role(field) == ColumnRole::Measure
        {
            let path = ColumnPath::from(field.name().as_str());
            props = props
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
    }
    props.build()
}

/// Reads a whole file (for compaction and duplicate resolution).
pub async fn read_all(store: &MagneticStore, path: &str) -> Result<Vec<RecordBatch>> {
    let bytes = store.get(&ObjectPath::from(path)).await?.ok_or_else(|| {
        Error::corruption(format!(
            "parquet file '{path}' named by the manifest is missing"
        ))
    })?;
    let corrupt =
        |e: &dyn std::fmt::Display| Error::corruption(format!("parquet file '{path}': {e}"));
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| corrupt(&e))?
        .build()
        .map_err(|e| corrupt(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| corrupt(&e))
}

fn parquet_err(e: parquet::errors::ParquetError) -> Error {
    Error::internal(format!("writing parquet: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::Int32Type;
    use arrow_array::{DictionaryArray, Int64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::Schema;
    use hourglass_core::types::{dimension_field, measure_field, time_field};
    use hourglass_core::ColumnType;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    /// Three row groups: one series per row group, a regular clock, a measure of random 30-bit
    /// steps (delta encoding leaves nothing for ZSTD to find) and one repeating a 5-value cycle of
    /// large jumps (wide deltas that ZSTD shrinks by megabytes).
    fn batch() -> RecordBatch {
        let n = ROW_GROUP_ROWS * 2 + 1000;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Int64Array = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                Some((state >> 34) as i64)
            })
            .collect();
        let host: DictionaryArray<Int32Type> = (0..n)
            .map(|i| format!("host_{}", i / ROW_GROUP_ROWS))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| Some(s.as_str()))
            .collect();
        let cycle: Int64Array = (0..n as i64)
            .map(|i| Some([5_000_000_000, 17, 3_000_000_000, 999, 123_456_789][i as usize % 5]))
            .collect();
        let time = TimestampNanosecondArray::from_iter_values(
            (0..n as i64).map(|i| (i % ROW_GROUP_ROWS as i64) * 10_000_000_000),
        );
        let schema = Arc::new(Schema::new(vec![
            dimension_field("host"),
            time_field(),
            measure_field("noise", ColumnType::Bigint),
            measure_field("cycle", ColumnType::Bigint),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(host),
                Arc::new(time),
                Arc::new(noise),
                Arc::new(cycle),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn chunks_are_compressed_only_where_zstd_saves_enough_and_read_back_unchanged() {
        let input = batch();
        let bytes = encode(&input, 0, 1).expect("encode");
        let reader = SerializedFileReader::new(bytes.clone()).expect("parquet");
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 3);
        for rg in meta.row_groups() {
            let codec = |name: &str| {
                rg.columns()
                    .iter()
                    .find(|c| c.column_path().string() == name)
                    .map(|c| c.compression())
                    .expect("column")
            };
            // The last row group's 1,000 rows are too few to save MIN_COMPRESSION_SAVING_BYTES.
            let full = rg.num_rows() == ROW_GROUP_ROWS as i64;
            assert_eq!(
                matches!(codec("cycle"), Compression::ZSTD(_)),
                full,
                "a repeating cycle of wide deltas compresses where it saves enough bytes"
            );
            assert_eq!(
                codec("time"),
                Compression::UNCOMPRESSED,
                "a regular clock is already small: ZSTD's 50-fold saves a few KB"
            );
            assert_eq!(
                codec("noise"),
                Compression::UNCOMPRESSED,
                "random steps do not"
            );
            assert_eq!(
                codec("host"),
                Compression::UNCOMPRESSED,
                "one dictionary value does not"
            );
        }
        let output = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("reader")
            .build()
            .expect("reader")
            .collect::<std::result::Result<Vec<_>, _>>()
            .expect("read");
        let output =
            arrow_select::concat::concat_batches(&input.schema(), &output).expect("concat");
        assert_eq!(output, input);
    }
}
