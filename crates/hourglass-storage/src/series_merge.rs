//! Rewriting a day too large for one merge as a single stream sorted by series then time, cut into
//! files that each hold a contiguous range of series for the whole day.
//!
//! Every file of a day is sorted by series then time, so the day's rows in that order are a k-way
//! merge of its files. The merge reads each file once, as a stream of batches, and holds one batch
//! per file. Rows written more than once (same series and time) come out next to each other,
//! earliest file first, so the file writer's deduplication lets the latest write win; output is
//! cut only between distinct (series, time) keys, so no record spans two files. A query for a few
//! series then finds them in one or two files instead of one slice of every file.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_row::{OwnedRow, Row, RowConverter, Rows};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use futures::StreamExt;
use hourglass_core::{Error, Result};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use crate::manifest::FileMeta;
use crate::schema::conform;
use crate::sort::{convert_keys, key_column_indices, key_converter};
use crate::store::MagneticStore;

/// Rows decoded from a file at a time.
const READ_BATCH_ROWS: usize = 32 * 1024;

/// The merge of one day's files, handed out one output file's rows at a time.
pub struct SeriesMerge {
    keyer: Keyer,
    /// In file sequence order, so that among equal keys the earlier write comes first.
    cursors: Vec<Cursor>,
    target_rows: usize,
}

/// Conforms batches to the table schema and computes their sort keys.
struct Keyer {
    schema: SchemaRef,
    converter: RowConverter,
    key_indices: Vec<usize>,
}

/// One input file: its current batch, that batch's sort keys and the next row to take.
struct Cursor {
    path: String,
    stream: ParquetRecordBatchStream<FileReader>,
    batch: RecordBatch,
    keys: Rows,
    pos: usize,
}

impl Cursor {
    fn head(&self) -> Row<'_> {
        self.keys.row(self.pos)
    }
}

impl SeriesMerge {
    /// Opens `files` (in sequence order) for merging into outputs of about `target_rows` rows.
    pub async fn open(
        store: &MagneticStore,
        files: &[&FileMeta],
        schema: &SchemaRef,
        target_rows: usize,
    ) -> Result<SeriesMerge> {
        let key_indices = key_column_indices(schema);
        let converter = key_converter(schema, &key_indices)?;
        let mut merge = SeriesMerge {
            keyer: Keyer {
                schema: schema.clone(),
                converter,
                key_indices,
            },
            cursors: Vec::with_capacity(files.len()),
            target_rows: target_rows.max(1),
        };
        for f in files {
            let reader = FileReader {
                store: Arc::clone(&store.store),
                path: ObjectPath::from(f.path.as_str()),
                size: f.bytes,
            };
            let corrupt = |e: &dyn std::fmt::Display| {
                Error::corruption(format!("parquet file '{}': {e}", f.path))
            };
            let stream = ParquetRecordBatchStreamBuilder::new(reader)
                .await
                .map_err(|e| corrupt(&e))?
                .with_batch_size(READ_BATCH_ROWS)
                .build()
                .map_err(|e| corrupt(&e))?;
            if let Some(cursor) = merge.keyer.next_cursor(f.path.clone(), stream).await? {
                merge.cursors.push(cursor);
            }
        }
        Ok(merge)
    }

    /// The rows of the next output file, sorted by series then time (a record written several
    /// times appears once per write, earliest first); `None` when every file is consumed.
    pub async fn next_file(&mut self) -> Result<Option<RecordBatch>> {
        let mut parts = Vec::new();
        let mut rows = 0usize;
        let mut last_key: Option<OwnedRow> = None;
        while let Some((min, second)) = self.two_smallest() {
            if rows >= self.target_rows {
                // Cut, unless the next row is another write of the last record taken.
                let head = self.cursors[min].head();
                if last_key.as_ref().is_none_or(|k| k.row() != head) {
                    break;
                }
            }
            let cursor = &self.cursors[min];
            let n = cursor.batch.num_rows();
            let end = if rows >= self.target_rows {
                // Past the target only to finish a record's writes: one row at a time.
                cursor.pos + 1
            } else {
                // Rows that sort before every other file's next row, up to the target; a row
                // equal to it goes first only from the earlier file (earlier writes first).
                let stop = n.min(cursor.pos + (self.target_rows - rows));
                match second {
                    None => stop,
                    Some(second) => {
                        let limit = self.cursors[second].head();
                        let ties_first = min < second;
                        let mut end = cursor.pos + 1;
                        while end < stop
                            && match cursor.keys.row(end).cmp(&limit) {
                                Ordering::Less => true,
                                Ordering::Equal => ties_first,
                                Ordering::Greater => false,
                            }
                        {
                            end += 1;
                        }
                        end
                    }
                }
            };
            parts.push(cursor.batch.slice(cursor.pos, end - cursor.pos));
            rows += end - cursor.pos;
            last_key = Some(cursor.keys.row(end - 1).owned());
            self.cursors[min].pos = end;
            if end == n {
                self.refill(min).await?;
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        arrow_select::concat::concat_batches(&self.keyer.schema, &parts)
            .map(Some)
            .map_err(|e| internal(&e))
    }

    /// The cursor with the smallest next row and the one with the next smallest, the earliest
    /// file winning ties in both places.
    fn two_smallest(&self) -> Option<(usize, Option<usize>)> {
        let mut min: Option<usize> = None;
        let mut second: Option<usize> = None;
        for (i, c) in self.cursors.iter().enumerate() {
            match min {
                None => min = Some(i),
                Some(m) if c.head() < self.cursors[m].head() => {
                    second = min;
                    min = Some(i);
                }
                Some(_) => {
                    if second.is_none_or(|s| c.head() < self.cursors[s].head()) {
                        second = Some(i);
                    }
                }
            }
        }
        min.map(|m| (m, second))
    }

    /// Moves cursor `i` to its file's next non-empty batch, or drops it at the end of the file.
    async fn refill(&mut self, i: usize) -> Result<()> {
        let Cursor { path, stream, .. } = self.cursors.remove(i);
        if let Some(cursor) = self.keyer.next_cursor(path, stream).await? {
            self.cursors.insert(i, cursor);
        }
        Ok(())
    }
}

impl Keyer {
    /// A cursor at the stream's next non-empty batch (conformed to the table schema), or `None`
    /// at the end of the file.
    async fn next_cursor(
        &self,
        path: String,
        mut stream: ParquetRecordBatchStream<FileReader>,
    ) -> Result<Option<Cursor>> {
        while let Some(batch) = stream.next().await {
            let batch =
                batch.map_err(|e| Error::corruption(format!("parquet file '{path}': {e}")))?;
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = conform(&batch, &self.schema)?;
            let keys = convert_keys(&self.converter, &batch, &self.key_indices)?;
            return Ok(Some(Cursor {
                path,
                stream,
                batch,
                keys,
                pos: 0,
            }));
        }
        Ok(None)
    }
}

/// Reads a Parquet file of the store by ranges (row group by row group), its size known from the
/// manifest.
struct FileReader {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    size: u64,
}

impl AsyncFileReader for FileReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

fn internal(e: &dyn std::fmt::Display) -> Error {
    Error::internal(format!("merging a day's files: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, TimestampNanosecondType};
    use arrow_array::{DictionaryArray, Int64Array, TimestampNanosecondArray};
    use arrow_schema::Schema;
    use hourglass_core::types::{dimension_field, measure_field, time_field};
    use hourglass_core::ColumnType;

    use super::*;
    use crate::parquet_io;
    use crate::sort::sort_and_dedup;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            dimension_field("host"),
            time_field(),
            measure_field("v", ColumnType::Bigint),
        ]))
    }

    /// Writes one file of (host, time, value) rows, sorted as the store sorts them.
    async fn file(store: &MagneticStore, seq: u64, rows: &[(String, i64, i64)]) -> FileMeta {
        let host: DictionaryArray<Int32Type> = rows.iter().map(|r| Some(r.0.as_str())).collect();
        let time = TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.1));
        let v = Int64Array::from_iter_values(rows.iter().map(|r| r.2));
        let batch =
            RecordBatch::try_new(schema(), vec![Arc::new(host), Arc::new(time), Arc::new(v)])
                .expect("batch");
        let batch = sort_and_dedup(&batch, false).expect("sort");
        let bytes = parquet_io::encode(&batch, 0, 1).expect("encode");
        let path = format!("db/t/2024-01-01/{seq:012}.parquet");
        let size = bytes.len() as u64;
        store
            .put(&ObjectPath::from(path.as_str()), bytes)
            .await
            .expect("put");
        FileMeta {
            path,
            day: 0,
            min_time: 0,
            max_time: 1,
            rows: rows.len() as u64,
            bytes: size,
            sequence: seq,
            last_rows: None,
            whole_day: false,
        }
    }

    fn key_values(batch: &RecordBatch) -> Vec<(String, i64, i64)> {
        let host = batch.column(0).as_dictionary::<Int32Type>();
        let names = host.values().as_string::<i32>();
        let time = batch.column(1).as_primitive::<TimestampNanosecondType>();
        let v = batch.column(2).as_primitive::<Int64Type>();
        (0..batch.num_rows())
            .map(|i| {
                let name = names.value(host.keys().value(i) as usize).to_string();
                (name, time.value(i), v.value(i))
            })
            .collect()
    }

    #[tokio::test]
    async fn merges_files_by_series_cut_between_records_and_the_latest_write_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MagneticStore::open(None, dir.path()).expect("store");
        let hosts: Vec<String> = (0..10).map(|h| format!("h{h}")).collect();
        let rows = |times: std::ops::Range<i64>, value: i64, hosts: &[String]| {
            hosts
                .iter()
                .flat_map(|h| times.clone().map(move |t| (h.clone(), t, value * 1000 + t)))
                .collect::<Vec<_>>()
        };
        // Time slices of every host, overlapping in 50..100, and a late rewrite of one host.
        let a = rows(0..100, 0, &hosts);
        let b = rows(50..150, 1, &hosts);
        let c = rows(0..10, 2, &hosts[5..6]);
        let files = [
            file(&store, 0, &a).await,
            file(&store, 1, &b).await,
            file(&store, 2, &c).await,
        ];
        let mut expected: BTreeMap<(String, i64), i64> = BTreeMap::new();
        for (h, t, v) in a.into_iter().chain(b).chain(c) {
            expected.insert((h, t), v);
        }

        let refs: Vec<&FileMeta> = files.iter().collect();
        // 137 rows: cuts land inside the overlap, where a record has two writes.
        let mut merge = SeriesMerge::open(&store, &refs, &schema(), 137)
            .await
            .expect("open");
        let mut outputs = Vec::new();
        while let Some(rows) = merge.next_file().await.expect("merge") {
            outputs.push(rows);
        }
        assert!(outputs.len() > 10, "{} outputs", outputs.len());
        let mut merged = Vec::new();
        for out in &outputs {
            let raw = key_values(out);
            assert!(
                raw.windows(2)
                    .all(|w| (&w[0].0, w[0].1) <= (&w[1].0, w[1].1)),
                "sorted"
            );
            assert!(
                raw.len() <= 137 + 2,
                "a cut is at most a record's writes late"
            );
            let resolved = key_values(&sort_and_dedup(out, true).expect("dedup"));
            if let (Some(prev), Some(first)) = (merged.last(), resolved.first()) {
                let prev: &(String, i64, i64) = prev;
                assert!(
                    (&prev.0, prev.1) < (&first.0, first.1),
                    "a record spans two outputs"
                );
            }
            merged.extend(resolved);
        }
        let expected: Vec<(String, i64, i64)> =
            expected.into_iter().map(|((h, t), v)| (h, t, v)).collect();
        assert_eq!(merged, expected, "every record once, its latest write");
    }
}
