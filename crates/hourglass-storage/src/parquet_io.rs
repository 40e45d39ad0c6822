//! Encoding and decoding the magnetic store's Parquet files.
//!
//! Files are sorted by series then time (declared in the footer's sorting columns), dimensions
//! dictionary-encoded (by [`crate::dimension_chunk`] from their keys where it can), `time` and
//! integer measures delta-encoded, each column chunk ZSTD-compressed only where that saves at
//! least 10 %, with page statistics and key-value metadata giving the file's time range. `time`
//! is stored in the coarsest unit that holds it exactly ([`crate::stored_time_unit`]) and read
//! back in nanoseconds.
//! Format: `docs/format/magnetic-store.md`.

use arrow_array::RecordBatch;
#[cfg(test)]
use arrow_schema::DataType;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use hourglass_core::{Error, Result};
use object_store::path::Path as ObjectPath;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::column_encoding::{self, Chooser, Variant};
use crate::dimension_chunk;
use crate::sort::key_column_indices;
use crate::store::MagneticStore;
use crate::stored_time_unit;

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

/// A chunk worth compressing is stored LZ4_RAW instead of ZSTD when that costs at most this
/// share of its uncompressed size in extra bytes. Reading a ZSTD chunk costs a compression and a
/// decompression context (parquet builds both for every compressed chunk it reads, each with its
/// `cpuid` traps); an LZ4_RAW chunk costs none. Measured on the side-by-side benchmark: creating
/// those contexts was 6.7 % of the server's CPU with 32 dashboard clients, all of it for the TSBS
/// `time` column, which LZ4_RAW stores in 0.6 % of its uncompressed size more than ZSTD (181 KB
/// against 137 KB for the 8.64 M-row day, 0.0005 bytes per value). Chunks where ZSTD's entropy
/// coding matters more (the market data's dictionary-encoded prices) keep ZSTD.
pub const LZ4_MAX_EXTRA: f64 = 0.01;

/// Encodes a batch already sorted by series then time.
///
/// Dimension chunks are written from their dictionary keys by [`dimension_chunk`] where it
/// covers them (uncompressed). Every other column chunk is first encoded with ZSTD; a chunk for
/// which [`MIN_COMPRESSION_SAVING`] or [`MIN_COMPRESSION_SAVING_BYTES`] is not met is encoded
/// again uncompressed, and the column's next row groups skip the ZSTD attempt (for
/// `RETRY_COMPRESSION_EVERY` row groups), so the choice costs little beyond the first row group
/// of a file. A chunk kept compressed is also encoded with LZ4_RAW, which replaces ZSTD when it
/// is within [`LZ4_MAX_EXTRA`].
pub fn encode(batch: &RecordBatch, min_time: i64, max_time: i64) -> Result<Bytes> {
    encode_with(batch, min_time, max_time, DimensionWriter::FromKeys)
}

/// Which writer encodes dimension column chunks.
#[derive(Clone, Copy, PartialEq, Debug)]
enum DimensionWriter {
    /// [`dimension_chunk`], where it covers the chunk.
    FromKeys,
    /// arrow-rs's column writer (kept for the tests that compare the two).
    #[cfg_attr(not(test), allow(dead_code))]
    Arrow,
}

fn encode_with(
    batch: &RecordBatch,
    min_time: i64,
    max_time: i64,
    dimensions: DimensionWriter,
) -> Result<Bytes> {
    let batch = &stored_time_unit::to_stored(batch)?;
    let schema = batch.schema();
    let zstd = Compression::ZSTD(ZstdLevel::try_new(3).map_err(parquet_err)?);
    let props = writer_properties(&schema, zstd, min_time, max_time, Variant::Default);
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 8);
    let (mut file, compressed) = ArrowWriter::try_new(&mut out, schema.clone(), Some(props))
        .map_err(parquet_err)?
        .into_serialized_writer()
        .map_err(parquet_err)?;
    // The other writers' column writers only: chunks encoded uncompressed and in the other
    // variant ([`column_encoding`]), for the same schema.
    let column_writers_of = |compression: Compression, variant: Variant| {
        let props = writer_properties(&schema, compression, min_time, max_time, variant);
        ArrowWriter::try_new(std::io::sink(), schema.clone(), Some(props))
            .map_err(parquet_err)?
            .into_serialized_writer()
            .map_err(parquet_err)
            .map(|(_, w)| w)
    };
    let uncompressed = column_writers_of(Compression::UNCOMPRESSED, Variant::Default)?;
    let alt_compressed = column_writers_of(zstd, Variant::Alternative)?;
    let alt_uncompressed = column_writers_of(Compression::UNCOMPRESSED, Variant::Alternative)?;
    let lz4 = column_writers_of(Compression::LZ4_RAW, Variant::Default)?;
    let alt_lz4 = column_writers_of(Compression::LZ4_RAW, Variant::Alternative)?;

    // A flat schema: column i of the batch is leaf i of the file.
    let descriptors: Vec<_> = (0..file.schema_descr().num_columns())
        .map(|i| file.schema_descr().column(i))
        .collect();
    let from_keys =
        dimensions == DimensionWriter::FromKeys && descriptors.len() == schema.fields().len();
    // Per column: the row group from which ZSTD is tried again (0 = always).
    let mut plain_until = vec![0usize; schema.fields().len()];
    let mut chooser = Chooser::new(schema.fields().len());
    let mut offset = 0;
    let mut row_group = 0;
    while offset < batch.num_rows() {
        let rows = batch.slice(offset, ROW_GROUP_ROWS.min(batch.num_rows() - offset));
        let writers_of = |set: &parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory| {
            set.create_column_writers(row_group)
                .map(|w| w.into_iter().map(Some).collect::<Vec<_>>())
                .map_err(parquet_err)
        };
        let mut zstd_writers = writers_of(&compressed)?;
        let mut plain_writers = writers_of(&uncompressed)?;
        let mut alt_zstd_writers = writers_of(&alt_compressed)?;
        let mut alt_plain_writers = writers_of(&alt_uncompressed)?;
        let mut lz4_writers = writers_of(&lz4)?;
        let mut alt_lz4_writers = writers_of(&alt_lz4)?;
        let mut group = file.next_row_group().map_err(parquet_err)?;
        for (i, (field, column)) in schema.fields().iter().zip(rows.columns()).enumerate() {
            if from_keys {
                if let Some(chunk) = dimension_chunk::encode(&descriptors[i], column, PAGE_ROWS)
                    .map_err(parquet_err)?
                {
                    group
                        .append_column(&chunk.bytes, chunk.close)
                        .map_err(parquet_err)?;
                    continue;
                }
            }
            let leaves = compute_leaves(field, column).map_err(parquet_err)?;
            let write = |writer: &mut Option<ArrowColumnWriter>| -> Result<ArrowColumnChunk> {
                let mut writer = writer
                    .take()
                    .ok_or_else(|| Error::internal("column writer used twice"))?;
                for leaf in &leaves {
                    writer.write(leaf).map_err(parquet_err)?;
                }
                writer.close().map_err(parquet_err)
            };
            // The variant, and its ZSTD chunk when measuring it produced one.
            let (variant, measured) = if !column_encoding::has_alternative(field) {
                (Variant::Default, None)
            } else if let Some(v) = chooser.variant(i, row_group) {
                (v, None)
            } else {
                let default = write(&mut zstd_writers[i])?;
                let alternative = write(&mut alt_zstd_writers[i])?;
                let sizes = (compressed_size(&default), compressed_size(&alternative));
                match chooser.record(i, row_group, sizes.0, sizes.1) {
                    Variant::Default => (Variant::Default, Some(default)),
                    Variant::Alternative => (Variant::Alternative, Some(alternative)),
                }
            };
            let (zstd_writer, plain_writer, lz4_writer) = match variant {
                Variant::Default => (
                    &mut zstd_writers[i],
                    &mut plain_writers[i],
                    &mut lz4_writers[i],
                ),
                Variant::Alternative => (
                    &mut alt_zstd_writers[i],
                    &mut alt_plain_writers[i],
                    &mut alt_lz4_writers[i],
                ),
            };
            let chunk = if measured.is_none() && row_group < plain_until[i] {
                write(plain_writer)?
            } else {
                let chunk = match measured {
                    Some(chunk) => chunk,
                    None => write(zstd_writer)?,
                };
                let meta = &chunk.close().metadata;
                let saved = meta.uncompressed_size() - meta.compressed_size();
                let saving = saved as f64 / meta.uncompressed_size().max(1) as f64;
                if saving < MIN_COMPRESSION_SAVING || saved < MIN_COMPRESSION_SAVING_BYTES {
                    plain_until[i] = row_group + RETRY_COMPRESSION_EVERY;
                    write(plain_writer)?
                } else {
                    lz4_if_close(chunk, write(lz4_writer)?)
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

/// `lz4` (the same chunk encoded LZ4_RAW) in place of `zstd` when it is at most
/// [`LZ4_MAX_EXTRA`] of the chunk's uncompressed size larger.
fn lz4_if_close(zstd: ArrowColumnChunk, lz4: ArrowColumnChunk) -> ArrowColumnChunk {
    let uncompressed = zstd.close().metadata.uncompressed_size();
    if (compressed_size(&lz4) - compressed_size(&zstd)) as f64
        <= LZ4_MAX_EXTRA * uncompressed as f64
    {
        lz4
    } else {
        zstd
    }
}

fn compressed_size(chunk: &ArrowColumnChunk) -> i64 {
    chunk.close().metadata.compressed_size()
}

/// The file's properties, with `compression` for every column.
fn writer_properties(
    schema: &SchemaRef,
    compression: Compression,
    min_time: i64,
    max_time: i64,
    variant: Variant,
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
            KeyValue::new("hourglass.format_version".into(), "2".to_string()),
        ]));
    // Numeric measures: delta or dictionary, dictionary or byte stream split, as measured
    // ([`column_encoding`]).
    for field in schema.fields() {
        props = column_encoding::apply(props, field, variant);
    }
    props.build()
}

/// Reads a whole file (for compaction and duplicate resolution), `time` in nanoseconds.
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
        .map(|batch| stored_time_unit::to_nanos(&batch.map_err(|e| corrupt(&e))?))
        .collect()
}

fn parquet_err(e: parquet::errors::ParquetError) -> Error {
    Error::internal(format!("writing parquet: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::Int32Type;
    use arrow_array::{
        ArrayRef, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
        TimestampNanosecondArray,
    };
    use arrow_schema::Schema;
    use hourglass_core::types::{dimension_field, measure_field, time_field};
    use hourglass_core::ColumnType;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::serialized_reader::ReadOptionsBuilder;

    use super::*;

    /// Everything `builder` reads, as one batch of `schema` (`time` back in nanoseconds).
    fn read_back(
        builder: ParquetRecordBatchReaderBuilder<Bytes>,
        schema: &SchemaRef,
    ) -> RecordBatch {
        let batches = builder
            .build()
            .expect("reader")
            .map(|b| stored_time_unit::to_nanos(&b.expect("read")).expect("nanoseconds"))
            .collect::<Vec<_>>();
        arrow_select::concat::concat_batches(schema, &batches).expect("concat")
    }

    /// A batch's columns as plain strings, to compare values whatever their dictionaries.
    fn as_strings(batch: &RecordBatch) -> Vec<ArrayRef> {
        batch
            .columns()
            .iter()
            .map(|c| arrow_cast::cast(c, &DataType::Utf8).expect("cast"))
            .collect()
    }

    /// Three row groups: one series per row group, a regular clock, a measure of random 30-bit
    /// steps (delta encoding leaves nothing for ZSTD to find), one repeating a 5-value cycle of
    /// large jumps (wide deltas that ZSTD shrinks by megabytes, and LZ4 almost as well) and a
    /// random walk that mostly stands still (steps of -1, 0 or +1, four in five 0: 2-bit deltas
    /// whose skew only ZSTD's entropy coding uses).
    fn batch() -> RecordBatch {
        let n = ROW_GROUP_ROWS * 2 + 1000;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let noise: Int64Array = (0..n).map(|_| Some((random() >> 34) as i64)).collect();
        let host: DictionaryArray<Int32Type> = (0..n)
            .map(|i| format!("host_{}", i / ROW_GROUP_ROWS))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| Some(s.as_str()))
            .collect();
        let cycle: Int64Array = (0..n as i64)
            .map(|i| Some([5_000_000_000, 17, 3_000_000_000, 999, 123_456_789][i as usize % 5]))
            .collect();
        let mut level = 0i64;
        let skewed: Int64Array = (0..n)
            .map(|_| {
                level += match (random() >> 40) % 10 {
                    0 => -1,
                    1 => 1,
                    _ => 0,
                };
                Some(level)
            })
            .collect();
        let time = TimestampNanosecondArray::from_iter_values(
            (0..n as i64).map(|i| (i % ROW_GROUP_ROWS as i64) * 10_000_000_000),
        );
        let schema = Arc::new(Schema::new(vec![
            dimension_field("host"),
            time_field(),
            measure_field("noise", ColumnType::Bigint),
            measure_field("cycle", ColumnType::Bigint),
            measure_field("skewed", ColumnType::Bigint),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(host),
                Arc::new(time),
                Arc::new(noise),
                Arc::new(cycle),
                Arc::new(skewed),
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
                codec("cycle"),
                if full {
                    Compression::LZ4_RAW
                } else {
                    Compression::UNCOMPRESSED
                },
                "a repeating cycle of wide deltas compresses where it saves enough bytes, with \
                 LZ4 as well as with ZSTD"
            );
            assert_eq!(
                matches!(codec("skewed"), Compression::ZSTD(_)),
                full,
                "a skewed walk needs ZSTD's entropy coding"
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
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("reader");
        assert_eq!(
            builder
                .schema()
                .field_with_name("time")
                .expect("time")
                .data_type(),
            &DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, None),
            "times 10 s apart are stored in milliseconds"
        );
        assert_eq!(read_back(builder, &input.schema()), input);
    }

    /// Dimension columns of every shape the key-run writer meets or declines, over three row
    /// groups (the last short, so its keys index a values array far larger than it).
    fn dimensions() -> RecordBatch {
        let n = ROW_GROUP_ROWS * 2 + 40_000;
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let names: Vec<String> = (0..200_000).map(|i| format!("value_{i:06}")).collect();
        let dictionary = |keys: Vec<Option<i32>>, values: &[&str]| -> ArrayRef {
            let values: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
            Arc::new(
                DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), values)
                    .expect("dictionary"),
            )
        };
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        // Sorted series: runs of 1,800 rows, crossing pages and row groups.
        let host = dictionary((0..n).map(|i| Some((i / 1800) as i32)).collect(), &all);
        // Short runs (bit-packed), 10 % nulls, keys out of first-appearance order.
        let region = dictionary(
            (0..n)
                .map(|_| (next(10) != 0).then(|| next(50) as i32 * 3))
                .collect(),
            &all,
        );
        // Equal strings under different keys share one chunk dictionary entry.
        let duplicated = dictionary(
            (0..n).map(|i| Some(((i / 7) % 4) as i32)).collect(),
            &["b", "a", "b", "c"],
        );
        // One value (bit width 0), and whole pages of nulls.
        let sparse = dictionary(
            (0..n)
                .map(|i| (i % 100_000 >= 30_000).then_some(0))
                .collect(),
            &["only"],
        );
        // Declined: values longer than the statistics truncation length, and all nulls.
        let long: Vec<String> = (0..5).map(|i| format!("{i}{}", "x".repeat(80))).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        let wide = dictionary((0..n).map(|i| Some((i % 5) as i32)).collect(), &long);
        let empty = dictionary(vec![None; n], &["never"]);
        let time = TimestampNanosecondArray::from_iter_values((0..n as i64).map(|i| i * 10));
        let mut fields = vec![];
        let mut columns = vec![];
        for (name, column) in [
            ("host", host),
            ("region", region),
            ("duplicated", duplicated),
            ("sparse", sparse),
            ("wide", wide),
            ("empty", empty),
        ] {
            fields.push(dimension_field(name));
            columns.push(column);
        }
        fields.push(time_field());
        columns.push(Arc::new(time));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
    }

    #[test]
    fn dimension_chunks_written_from_keys_match_arrow_rs() {
        let input = dimensions();
        let ours = encode_with(&input, 0, 1, DimensionWriter::FromKeys).expect("encode");
        let theirs = encode_with(&input, 0, 1, DimensionWriter::Arrow).expect("encode");
        let open = |bytes: &Bytes| {
            let options = ReadOptionsBuilder::new().with_page_index().build();
            SerializedFileReader::new_with_options(bytes.clone(), options).expect("parquet")
        };
        let (ours_reader, theirs_reader) = (open(&ours), open(&theirs));
        let (a, b) = (ours_reader.metadata(), theirs_reader.metadata());
        assert_eq!(a.num_row_groups(), 3);
        assert_eq!(a.num_row_groups(), b.num_row_groups());
        let (a_columns, b_columns) = (a.column_index().expect("ours"), b.column_index().unwrap());
        let (a_offsets, b_offsets) = (a.offset_index().expect("ours"), b.offset_index().unwrap());
        for rg in 0..a.num_row_groups() {
            for (c, field) in input.schema().fields().iter().enumerate() {
                let (x, y) = (a.row_group(rg).column(c), b.row_group(rg).column(c));
                let at = format!("row group {rg}, column {}", field.name());
                assert_eq!(x.statistics(), y.statistics(), "{at}: statistics");
                assert_eq!(x.num_values(), y.num_values(), "{at}: values");
                assert_eq!(
                    x.encodings().collect::<Vec<_>>(),
                    y.encodings().collect::<Vec<_>>(),
                    "{at}: encodings"
                );
                assert_eq!(x.page_encoding_stats(), y.page_encoding_stats(), "{at}");
                assert_eq!(
                    x.page_encoding_stats_mask(),
                    y.page_encoding_stats_mask(),
                    "{at}"
                );
                assert_eq!(
                    x.unencoded_byte_array_data_bytes(),
                    y.unencoded_byte_array_data_bytes(),
                    "{at}: unencoded bytes"
                );
                assert_eq!(
                    x.definition_level_histogram(),
                    y.definition_level_histogram(),
                    "{at}: level histogram"
                );
                assert_eq!(a_columns[rg][c], b_columns[rg][c], "{at}: column index");
                let rows = |o: &parquet::file::page_index::offset_index::OffsetIndexMetaData| {
                    o.page_locations()
                        .iter()
                        .map(|p| p.first_row_index)
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    rows(&a_offsets[rg][c]),
                    rows(&b_offsets[rg][c]),
                    "{at}: pages"
                );
                assert_eq!(
                    a_offsets[rg][c].unencoded_byte_array_data_bytes(),
                    b_offsets[rg][c].unencoded_byte_array_data_bytes(),
                    "{at}: page unencoded bytes"
                );
            }
            // The chunks the key-run writer took are plain; arrow-rs kept those it declined.
            let codec = |name: &str| {
                let i = input.schema().index_of(name).expect("column");
                a.row_group(rg).column(i).compression()
            };
            for name in ["host", "region", "duplicated", "sparse"] {
                assert_eq!(codec(name), Compression::UNCOMPRESSED, "{name}");
            }
        }
        // Same values read back, through both files' dictionaries and through the page index.
        let read = |bytes: Bytes| {
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("reader");
            as_strings(&read_back(builder, &input.schema()))
        };
        let expected = as_strings(&input);
        assert_eq!(read(ours.clone()), expected);
        assert_eq!(read(theirs), expected);
    }

    #[test]
    fn dimension_pages_are_found_through_the_key_run_writers_offset_index() {
        use parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection, RowSelector};
        use parquet::file::metadata::PageIndexPolicy;
        let input = dimensions();
        let bytes = encode(&input, 0, 1).expect("encode");
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        // Rows inside the second row group, skipping whole pages on both sides.
        let (skip, take) = (ROW_GROUP_ROWS + 20_000, 5_000);
        let selection = RowSelection::from(vec![
            RowSelector::skip(skip),
            RowSelector::select(take),
            RowSelector::skip(input.num_rows() - skip - take),
        ]);
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
            .expect("reader")
            .with_row_selection(selection);
        let output = read_back(builder, &input.schema());
        assert_eq!(as_strings(&output), as_strings(&input.slice(skip, take)));
    }

    #[test]
    fn the_key_run_writer_takes_the_dimension_shapes_it_covers_and_declines_the_rest() {
        let input = dimensions();
        let bytes = encode(&input, 0, 1).expect("encode");
        let reader = SerializedFileReader::new(bytes).expect("parquet");
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        for offset in [0, ROW_GROUP_ROWS * 2] {
            let rows = input.slice(offset, ROW_GROUP_ROWS.min(input.num_rows() - offset));
            for (c, field) in input.schema().fields().iter().enumerate() {
                let taken = dimension_chunk::encode(&schema.column(c), rows.column(c), PAGE_ROWS)
                    .expect("encode")
                    .is_some();
                let covered =
                    ["host", "region", "duplicated", "sparse"].contains(&field.name().as_str());
                assert_eq!(
                    taken,
                    covered,
                    "rows from {offset}, column {}",
                    field.name()
                );
            }
        }
    }
}
