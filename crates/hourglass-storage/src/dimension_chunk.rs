//! Dimension column chunks written straight from their dictionary keys.
//!
//! At persist a dimension is an Arrow dictionary array sorted by series, so its keys come in long
//! runs. arrow-rs's column writer still handles it value by value: it compares every row's string
//! twice for the min/max statistics, then hashes and compares it again to intern it into the
//! chunk's dictionary — 12.8 % of the server's CPU during a TSBS load, for ten dimension columns.
//!
//! This module finds the runs once, maps their keys to a chunk dictionary in order of first
//! appearance (as arrow-rs does, equal strings sharing one entry) and writes the same Parquet:
//! one PLAIN dictionary page, then version-1 data pages of at most `page_rows` rows holding RLE
//! definition levels and RLE_DICTIONARY indices, uncompressed; chunk statistics, the column index
//! (page minimum, maximum, null count, level histograms, boundary order) and the offset index
//! (page locations, unencoded bytes). Everything is computed per run instead of per row.
//!
//! Chunks outside that shape go through arrow-rs as before ([`encode`] returns `None`): other
//! types, nulls inside the dictionary's values, all-null chunks, dictionaries over
//! [`MAX_DICTIONARY_BYTES`] (many distinct values may be worth ZSTD, which arrow-rs's path tries)
//! and values over [`MAX_STATISTICS_VALUE_BYTES`] (which arrow-rs truncates in statistics).
//! `parquet_io`'s tests compare both writers' files.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, StringArray};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::basic::{BoundaryOrder, Compression, Encoding, EncodingMask, PageType, Type};
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::Result;
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, LevelHistogram, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Dictionaries whose PLAIN page would exceed this are left to arrow-rs, which tries ZSTD on
/// them (many distinct names compress well). TSBS's 1,000 host names take 14 KB.
pub const MAX_DICTIONARY_BYTES: usize = 64 * 1024;

/// arrow-rs truncates longer statistics values (its default `statistics_truncate_length` and
/// `column_index_truncate_length`); chunks holding such values are left to it.
pub const MAX_STATISTICS_VALUE_BYTES: usize = 64;

/// A dictionary key that has not been given a chunk dictionary index yet.
const UNSEEN: u32 = u32::MAX;

/// Consecutive rows with the same chunk dictionary index, or nulls (`None`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    index: Option<u32>,
    len: usize,
}

/// A column chunk encoded on its own, to be spliced into a row group with
/// `SerializedRowGroupWriter::append_column`.
pub struct EncodedChunk {
    pub bytes: Bytes,
    pub close: ColumnCloseResult,
}

/// Encodes `column` (one row group's slice) as the column chunk of `descr`, or returns `None`
/// when the chunk is not a shape this writer covers (see the module documentation).
pub fn encode(
    descr: &ColumnDescPtr,
    column: &ArrayRef,
    page_rows: usize,
) -> Result<Option<EncodedChunk>> {
    if descr.physical_type() != Type::BYTE_ARRAY
        || descr.max_rep_level() != 0
        || descr.max_def_level() > 1
        || page_rows == 0
    {
        return Ok(None);
    }
    let DataType::Dictionary(key_type, value_type) = column.data_type() else {
        return Ok(None);
    };
    if **key_type != DataType::Int32 || **value_type != DataType::Utf8 {
        return Ok(None);
    }
    if descr.max_def_level() == 0 && column.null_count() > 0 {
        return Ok(None);
    }
    let keys = column.as_dictionary::<Int32Type>();
    let Some(values) = keys.values().as_string_opt::<i32>() else {
        return Ok(None);
    };
    if values.null_count() > 0 {
        return Ok(None);
    }
    let Some((runs, dictionary)) = runs_and_dictionary(keys, values) else {
        return Ok(None);
    };
    let dictionary_bytes: usize = dictionary.iter().map(|v| 4 + v.len()).sum();
    if dictionary.is_empty()
        || dictionary_bytes > MAX_DICTIONARY_BYTES
        || dictionary
            .iter()
            .any(|v| v.len() > MAX_STATISTICS_VALUE_BYTES)
    {
        return Ok(None);
    }
    let writer = ChunkWriter {
        descr,
        dictionary: &dictionary,
    };
    writer.write(&runs, page_rows).map(Some)
}

/// The rows of `keys` as runs of chunk dictionary indices, and that dictionary: distinct strings
/// in order of first appearance. `None` if a valid slot's key is outside `values` (arrow's
/// constructors rule that out; such an array is left to arrow-rs rather than trusted).
fn runs_and_dictionary<'a>(
    keys: &DictionaryArray<Int32Type>,
    values: &'a StringArray,
) -> Option<(Vec<Run>, Vec<&'a str>)> {
    let mut dictionary: Vec<&'a str> = Vec::new();
    let mut by_value: HashMap<&'a str, u32> = HashMap::new();
    // Keys index the whole values array, which may be far larger than this slice needs.
    let dense = values.len() <= 4 * keys.len() + 1024;
    let mut dense_remap = if dense {
        vec![UNSEEN; values.len()]
    } else {
        Vec::new()
    };
    let mut sparse_remap: HashMap<usize, u32> = HashMap::new();
    let mut index_of = |key: i32| -> Option<u32> {
        let key = usize::try_from(key).ok().filter(|&k| k < values.len())?;
        let slot = if dense {
            &mut dense_remap[key]
        } else {
            sparse_remap.entry(key).or_insert(UNSEEN)
        };
        if *slot == UNSEEN {
            let value = values.value(key);
            *slot = *by_value.entry(value).or_insert_with(|| {
                dictionary.push(value);
                dictionary.len() as u32 - 1
            });
        }
        Some(*slot)
    };

    let raw = keys.keys().values();
    let nulls = keys.keys().nulls().filter(|n| n.null_count() > 0);
    let valid = |i: usize| nulls.is_none_or(|n| n.is_valid(i));
    let mut runs: Vec<Run> = Vec::new();
    let mut push = |run: Run| match runs.last_mut() {
        Some(last) if last.index == run.index => last.len += run.len,
        _ => runs.push(run),
    };
    let mut i = 0;
    while i < raw.len() {
        let start = i;
        if !valid(i) {
            while i < raw.len() && !valid(i) {
                i += 1;
            }
            push(Run {
                index: None,
                len: i - start,
            });
            continue;
        }
        let key = raw[i];
        i += 1;
        match nulls {
            None => {
                while i < raw.len() && raw[i] == key {
                    i += 1;
                }
            }
            Some(_) => {
                while i < raw.len() && raw[i] == key && valid(i) {
                    i += 1;
                }
            }
        }
        push(Run {
            index: Some(index_of(key)?),
            len: i - start,
        });
    }
    Some((runs, dictionary))
}

/// Writes one chunk's pages and gathers its metadata.
struct ChunkWriter<'a> {
    descr: &'a ColumnDescPtr,
    dictionary: &'a [&'a str],
}

/// What one data page holds, for the column and offset indexes.
struct PageSummary<'a> {
    rows: usize,
    nulls: usize,
    /// Smallest and largest value; `None` for a page of nulls only.
    min_max: Option<(&'a str, &'a str)>,
    /// The values' bytes before encoding (Parquet's `unencoded_byte_array_data_bytes`).
    unencoded_bytes: i64,
}

impl<'a> ChunkWriter<'a> {
    fn write(&self, runs: &[Run], page_rows: usize) -> Result<EncodedChunk> {
        let mut sink = TrackedWrite::new(Vec::new());
        let mut specs: Vec<PageWriteSpec> = Vec::new();
        let mut pages: Vec<PageSummary<'a>> = Vec::new();
        {
            let mut writer = SerializedPageWriter::new(&mut sink);
            specs.push(writer.write_page(self.dictionary_page())?);
            for page in split_into_pages(runs, page_rows) {
                let rows: usize = page.iter().map(|r| r.len).sum();
                let nulls: usize = page
                    .iter()
                    .filter(|r| r.index.is_none())
                    .map(|r| r.len)
                    .sum();
                let values = page
                    .iter()
                    .filter_map(|r| r.index.map(|i| (r, self.value(i))));
                let min_max = values
                    .clone()
                    .fold(None, |acc: Option<(&str, &str)>, (_, v)| {
                        Some(match acc {
                            None => (v, v),
                            Some((lo, hi)) => (lo.min(v), hi.max(v)),
                        })
                    });
                let unencoded_bytes = values.map(|(r, v)| (r.len * v.len()) as i64).sum();
                specs.push(writer.write_page(self.data_page(&page, rows))?);
                pages.push(PageSummary {
                    rows,
                    nulls,
                    min_max,
                    unencoded_bytes,
                });
            }
            writer.close()?;
        }
        let bytes = Bytes::from(sink.into_inner()?);
        self.finish(bytes, &specs, &pages)
    }

    fn value(&self, index: u32) -> &'a str {
        self.dictionary[index as usize]
    }

    /// The dictionary, PLAIN-encoded: each value's length as a little-endian u32, then its bytes.
    fn dictionary_page(&self) -> CompressedPage {
        let size: usize = self.dictionary.iter().map(|v| 4 + v.len()).sum();
        let mut buf = Vec::with_capacity(size);
        for value in self.dictionary {
            buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
            buf.extend_from_slice(value.as_bytes());
        }
        let page = Page::DictionaryPage {
            buf: Bytes::from(buf),
            num_values: self.dictionary.len() as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        CompressedPage::new(page, size)
    }

    /// A version-1 data page: definition levels (RLE, behind their byte length) when the column
    /// is nullable, then the indices' bit width and the indices (RLE/bit-packing hybrid).
    fn data_page(&self, runs: &[Run], rows: usize) -> CompressedPage {
        let mut buf = Vec::new();
        if self.descr.max_def_level() > 0 {
            let start = buf.len();
            buf.extend_from_slice(&[0; 4]);
            let levels = runs.iter().map(|r| (u32::from(r.index.is_some()), r.len));
            put_rle_hybrid(coalesce(levels), 1, &mut buf);
            let len = (buf.len() - start - 4) as u32;
            buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        let bit_width = bits_for(self.dictionary.len().saturating_sub(1) as u32);
        buf.push(bit_width);
        let indices = runs.iter().filter_map(|r| r.index.map(|i| (i, r.len)));
        put_rle_hybrid(coalesce(indices), bit_width, &mut buf);
        let size = buf.len();
        let page = Page::DataPage {
            buf: Bytes::from(buf),
            num_values: rows as u32,
            encoding: Encoding::RLE_DICTIONARY,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        CompressedPage::new(page, size)
    }

    /// The chunk's metadata, column index and offset index, from the written pages' specs (the
    /// dictionary page's first) and the data pages' summaries.
    fn finish(
        &self,
        bytes: Bytes,
        specs: &[PageWriteSpec],
        pages: &[PageSummary<'a>],
    ) -> Result<EncodedChunk> {
        let nullable = self.descr.max_def_level() > 0;
        let histogram = |nulls: usize, rows: usize| {
            nullable.then(|| LevelHistogram::from(vec![nulls as i64, (rows - nulls) as i64]))
        };
        let mut column_index = ColumnIndexBuilder::new(Type::BYTE_ARRAY);
        let mut offset_index = OffsetIndexBuilder::new();
        let (mut rows, mut nulls, mut unencoded) = (0usize, 0usize, 0i64);
        let mut chunk_min_max: Option<(&str, &str)> = None;
        let (mut ascending, mut descending) = (true, true);
        let mut previous: Option<(&str, &str)> = None;
        for (page, spec) in pages.iter().zip(&specs[1..]) {
            rows += page.rows;
            nulls += page.nulls;
            unencoded += page.unencoded_bytes;
            match page.min_max {
                None => column_index.append(true, vec![], vec![], page.nulls as i64),
                Some((min, max)) => {
                    if let Some((last_min, last_max)) = previous {
                        ascending &= last_min <= min && last_max <= max;
                        descending &= last_min >= min && last_max >= max;
                    }
                    previous = Some((min, max));
                    chunk_min_max = Some(match chunk_min_max {
                        None => (min, max),
                        Some((lo, hi)) => (lo.min(min), hi.max(max)),
                    });
                    column_index.append(
                        false,
                        min.as_bytes().to_vec(),
                        max.as_bytes().to_vec(),
                        page.nulls as i64,
                    );
                }
            }
            column_index.append_histograms(&None, &histogram(page.nulls, page.rows));
            offset_index.append_row_count(page.rows as i64);
            offset_index.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            offset_index.append_unencoded_byte_array_data_bytes(Some(page.unencoded_bytes));
        }
        column_index.set_boundary_order(match (ascending, descending) {
            (true, _) => BoundaryOrder::ASCENDING,
            (false, true) => BoundaryOrder::DESCENDING,
            (false, false) => BoundaryOrder::UNORDERED,
        });

        let (min, max) = chunk_min_max.unwrap_or_default();
        let byte_array = |s: &str| Some(ByteArray::from(s.as_bytes().to_vec()));
        let statistics = ValueStatistics::new(
            byte_array(min),
            byte_array(max),
            None,
            Some(nulls as u64),
            false,
        )
        .with_backwards_compatible_min_max(self.descr.sort_order().is_signed());
        let encodings = [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY];
        let data_pages = specs.len() - 1;
        let metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(Compression::UNCOMPRESSED)
            .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
            .set_page_encoding_stats(vec![
                PageEncodingStats {
                    page_type: PageType::DICTIONARY_PAGE,
                    encoding: Encoding::PLAIN,
                    count: 1,
                },
                PageEncodingStats {
                    page_type: PageType::DATA_PAGE,
                    encoding: Encoding::RLE_DICTIONARY,
                    count: data_pages as i32,
                },
            ])
            .set_total_compressed_size(specs.iter().map(|s| s.compressed_size as i64).sum())
            .set_total_uncompressed_size(specs.iter().map(|s| s.uncompressed_size as i64).sum())
            .set_num_values(rows as i64)
            .set_data_page_offset(specs.get(1).map_or(0, |s| s.offset as i64))
            .set_dictionary_page_offset(Some(specs[0].offset as i64))
            .set_statistics(Statistics::ByteArray(statistics))
            .set_unencoded_byte_array_data_bytes(Some(unencoded))
            .set_definition_level_histogram(histogram(nulls, rows))
            .build()?;
        Ok(EncodedChunk {
            bytes,
            close: ColumnCloseResult {
                bytes_written: specs.iter().map(|s| s.bytes_written).sum(),
                rows_written: rows as u64,
                metadata,
                bloom_filter: None,
                column_index: Some(column_index.build()?),
                offset_index: Some(offset_index.build()),
            },
        })
    }
}

/// `runs` cut into pages of at most `page_rows` rows.
fn split_into_pages(runs: &[Run], page_rows: usize) -> Vec<Vec<Run>> {
    let mut pages = Vec::new();
    let mut page: Vec<Run> = Vec::new();
    let mut room = page_rows;
    for run in runs {
        let mut left = run.len;
        while left > 0 {
            let take = left.min(room);
            page.push(Run {
                index: run.index,
                len: take,
            });
            left -= take;
            room -= take;
            if room == 0 {
                pages.push(std::mem::take(&mut page));
                room = page_rows;
            }
        }
    }
    if !page.is_empty() {
        pages.push(page);
    }
    pages
}

/// Merges adjacent (value, length) pairs with the same value.
fn coalesce(pairs: impl Iterator<Item = (u32, usize)>) -> impl Iterator<Item = (u32, usize)> {
    let mut pairs = pairs.peekable();
    std::iter::from_fn(move || {
        let (value, mut len) = pairs.next()?;
        while let Some(&(next, more)) = pairs.peek() {
            if next != value {
                break;
            }
            len += more;
            pairs.next();
        }
        Some((value, len))
    })
}

/// Bits needed to store `max` (0 for 0), as Parquet sizes dictionary indices and levels.
fn bits_for(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

/// Appends (value, length) runs in Parquet's RLE/bit-packing hybrid encoding: a run of 8 or more
/// equal values is one RLE run (ULEB128 header `len << 1`, then the value in whole bytes); shorter
/// runs are gathered into bit-packed groups of 8 values (header `groups << 1 | 1`), the last group
/// padded with zeros — readers stop at the page's value count.
fn put_rle_hybrid(runs: impl Iterator<Item = (u32, usize)>, bit_width: u8, out: &mut Vec<u8>) {
    let value_bytes = usize::from(bit_width).div_ceil(8);
    let mut packed: Vec<u32> = Vec::new();
    for (value, mut len) in runs {
        if !packed.len().is_multiple_of(8) {
            // A bit-packed group in progress is completed first: groups are 8 values.
            let fill = (8 - packed.len() % 8).min(len);
            packed.extend(std::iter::repeat_n(value, fill));
            len -= fill;
        }
        if len >= 8 {
            flush_bit_packed(&mut packed, bit_width, out);
            put_uleb128((len as u64) << 1, out);
            out.extend_from_slice(&value.to_le_bytes()[..value_bytes]);
        } else {
            packed.extend(std::iter::repeat_n(value, len));
        }
    }
    flush_bit_packed(&mut packed, bit_width, out);
}

/// Writes `packed` as one bit-packed run (values least significant bit first) and empties it.
fn flush_bit_packed(packed: &mut Vec<u32>, bit_width: u8, out: &mut Vec<u8>) {
    if packed.is_empty() {
        return;
    }
    let groups = packed.len().div_ceil(8);
    packed.resize(groups * 8, 0);
    put_uleb128(((groups as u64) << 1) | 1, out);
    let (mut bits, mut filled) = (0u64, 0u8);
    for &value in packed.iter() {
        bits |= u64::from(value) << filled;
        filled += bit_width;
        while filled >= 8 {
            out.push(bits as u8);
            bits >>= 8;
            filled -= 8;
        }
    }
    packed.clear();
}

fn put_uleb128(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle_hybrid_writes_long_runs_as_rle_and_short_ones_bit_packed() {
        // Eight 3s at bit width 2: header 8 << 1, value in one byte. Then two 1s: one bit-packed
        // group (header 1 << 1 | 1) of 8 values padded with zeros, 2 bits each, LSB first.
        let mut out = Vec::new();
        put_rle_hybrid([(3, 8), (1, 2)].into_iter(), 2, &mut out);
        assert_eq!(out, vec![16, 3, 3, 0b0000_0101, 0]);
        // A short run completes a group in progress before the next RLE run starts.
        let mut out = Vec::new();
        put_rle_hybrid([(1, 3), (2, 13)].into_iter(), 2, &mut out);
        assert_eq!(out, vec![3, 0b1001_0101, 0b1010_1010, 8 << 1, 2]);
    }

    #[test]
    fn bit_widths_follow_the_largest_index() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(1), 1);
        assert_eq!(bits_for(255), 8);
        assert_eq!(bits_for(256), 9);
    }
}
