//! `UNLOAD (SELECT …) TO 's3://bucket/prefix/' WITH (…)`: a query's result written to S3 (or a
//! directory mapped to a bucket) as Amazon Timestream writes it — Parquet or CSV data files under
//! `<prefix>/results/` (Hive-style `col=value/` folders with `partitioned_by`), a manifest and a
//! metadata file — answered with one row (`rows`, `metadataFile`, `manifestFile`).
//!
//! The interfaces call it: the Timestream Query API (`hourglass-timestream`, Timestream dialect),
//! `/api/v3/query_sql` (the binary) and the PostgreSQL wire (`hourglass-pgwire`). Each
//! [`recognise`]s the statement, opens the destination first ([`Destinations::open`]), plans
//! the inner SELECT exactly as it plans a plain query (so the same permission checks apply:
//! the principal must be able to read every database the SELECT reads; nothing in Hourglass is
//! written), then hands the result stream to [`run`], which writes it batch by batch in bounded
//! memory. Format: `docs/format/unload.md`.
//!
//! Modules: [`statement`] (recognition), [`options`] (`WITH` options), [`csv`] (CSV dialect),
//! [`writers`] (data files), [`layout`] (paths, manifest, metadata), [`destination`] (where).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod csv;
pub mod destination;
pub mod layout;
pub mod options;
pub mod statement;
pub mod writers;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use bytes::Bytes;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Stream, StreamExt};
use hourglass_core::Error;
use object_store::{ObjectStoreExt, PutPayload};

pub use destination::{Destinations, Target};
pub use options::Options;
pub use statement::{recognise, Unload};

use crate::layout::DataFile;
use crate::writers::DataSink;

/// Timestream's limit on the partitions one UNLOAD writes.
pub const MAX_PARTITIONS: usize = 100;

/// A new query id (32 upper-case hex digits), for callers without one.
pub fn new_query_id() -> String {
    uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase()
}

/// What an UNLOAD wrote: its answer row.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: u64,
    pub metadata_file: String,
    pub manifest_file: String,
    pub files: Vec<DataFile>,
}

impl Summary {
    /// `rows` BIGINT, `metadataFile` VARCHAR, `manifestFile` VARCHAR.
    pub fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("rows", DataType::Int64, false),
            Field::new("metadataFile", DataType::Utf8, false),
            Field::new("manifestFile", DataType::Utf8, false),
        ]))
    }

    /// The answer as one row.
    pub fn batch(&self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![
                i64::try_from(self.rows).unwrap_or(i64::MAX)
            ])),
            Arc::new(StringArray::from(vec![self.metadata_file.as_str()])),
            Arc::new(StringArray::from(vec![self.manifest_file.as_str()])),
        ];
        RecordBatch::try_new(Self::schema(), columns)
            .unwrap_or_else(|_| RecordBatch::new_empty(Self::schema()))
    }

    /// The answer as a one-batch stream.
    pub fn into_stream(self) -> SendableRecordBatchStream {
        let batch = self.batch();
        Box::pin(RecordBatchStreamAdapter::new(
            Self::schema(),
            futures::stream::once(async move { Ok(batch) }),
        ))
    }
}

/// The formatting of partition values (as in CSV: timestamps with nine fraction digits).
fn partition_format() -> FormatOptions<'static> {
    const TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S%.9f";
    FormatOptions::default()
        .with_null("")
        .with_timestamp_format(Some(TIMESTAMP))
        .with_timestamp_tz_format(Some(TIMESTAMP))
}

/// Writes `batches` (of `schema`, the SELECT's result) to `target` as `unload` asks; `wrap`
/// turns UNLOAD's own errors into the caller's. Nothing is written when `batches` fails
/// before its end but the files already sent (as Timestream: partial files, no manifest).
pub async fn run<S, E>(
    unload: &Unload,
    target: &Target,
    query_id: &str,
    schema: SchemaRef,
    mut batches: S,
    wrap: impl Fn(Error) -> E,
) -> std::result::Result<Summary, E>
where
    S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
{
    let options = &unload.options;
    let mut partition_columns = Vec::new();
    for name in &options.partitioned_by {
        let i = schema.index_of(name).map_err(|_| {
            wrap(Error::invalid(format!(
                "UNLOAD option partitioned_by: the query has no column '{name}' (its columns: {})",
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        })?;
        partition_columns.push(i);
    }
    let kept: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !partition_columns.contains(i))
        .collect();
    if kept.is_empty() {
        return Err(wrap(Error::invalid(
            "UNLOAD option partitioned_by: at least one column must be left for the files",
        )));
    }
    let file_schema = Arc::new(
        schema
            .project(&kept)
            .map_err(|e| wrap(Error::internal(e.to_string())))?,
    );
    let gzip = options.compression == options::Compression::Gzip;
    let mut open: HashMap<String, DataSink> = HashMap::new();
    let mut folders: Vec<String> = Vec::new();
    let mut files: Vec<DataFile> = Vec::new();
    let mut next_file = 0usize;
    let format = partition_format();

    // Files still open when the query or a write fails are aborted: no unfinished upload
    // stays behind (files already finished do, as with Timestream).
    let filled: std::result::Result<(), E> = async {
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            // Rows grouped by partition folder, in order of first appearance.
            let groups: Vec<(String, Option<UInt32Array>)> = if partition_columns.is_empty() {
                vec![(String::new(), None)]
            } else {
                let formatters = partition_columns
                    .iter()
                    .map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &format))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| {
                        wrap(Error::invalid(format!(
                            "UNLOAD cannot name partitions by these columns: {e}"
                        )))
                    })?;
                let mut index: HashMap<String, usize> = HashMap::new();
                let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
                for row in 0..batch.num_rows() {
                    let values: Vec<Option<String>> = partition_columns
                        .iter()
                        .zip(&formatters)
                        .map(|(&i, f)| {
                            (!batch.column(i).is_null(row)).then(|| f.value(row).to_string())
                        })
                        .collect();
                    let folder = layout::partition_folder(&options.partitioned_by, &values);
                    let at = *index.entry(folder.clone()).or_insert_with(|| {
                        groups.push((folder, Vec::new()));
                        groups.len() - 1
                    });
                    groups[at].1.push(row as u32);
                }
                groups
                    .into_iter()
                    .map(|(f, rows)| (f, Some(UInt32Array::from(rows))))
                    .collect()
            };
            let projected = batch
                .project(&kept)
                .map_err(|e| wrap(Error::internal(e.to_string())))?;
            for (folder, rows) in groups {
                let part = match rows {
                    Some(rows) => take_record_batch(&projected, &rows)
                        .map_err(|e| wrap(Error::internal(e.to_string())))?,
                    None => projected.clone(),
                };
                if !folders.contains(&folder) {
                    if folders.len() == MAX_PARTITIONS {
                        return Err(wrap(Error::invalid(format!(
                            "UNLOAD writes at most {MAX_PARTITIONS} partitions (Timestream's \
                             limit); partitioned_by makes more"
                        ))));
                    }
                    folders.push(folder.clone());
                }
                if !open.contains_key(&folder) {
                    let name = layout::data_file_name(query_id, next_file, options.format, gzip);
                    next_file += 1;
                    let relative = if folder.is_empty() {
                        format!("results/{name}")
                    } else {
                        format!("results/{folder}/{name}")
                    };
                    let sink = DataSink::create(
                        target.store.clone(),
                        target.key(&relative).map_err(&wrap)?,
                        target.url(&relative),
                        file_schema.clone(),
                        options,
                    )
                    .map_err(&wrap)?;
                    open.insert(folder.clone(), sink);
                }
                let Some(sink) = open.get_mut(&folder) else {
                    continue;
                };
                sink.write(&part).await.map_err(&wrap)?;
                if sink.size() >= options.max_file_size {
                    if let Some(full) = open.remove(&folder) {
                        files.push(full.finish().await.map_err(&wrap)?);
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = filled {
        for (_, sink) in open.drain() {
            sink.abort().await;
        }
        return Err(e);
    }
    let mut rest: Vec<(String, DataSink)> = open.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rest = rest.into_iter();
    while let Some((_, sink)) = rest.next() {
        match sink.finish().await {
            Ok(file) => files.push(file),
            Err(e) => {
                for (_, other) in rest {
                    other.abort().await;
                }
                return Err(wrap(e));
            }
        }
    }

    let column_info = schema
        .fields()
        .iter()
        .map(|f| hourglass_query::column_info::column_info(f.name(), f.data_type()))
        .collect();
    let metadata_name = format!("{query_id}_metadata.json");
    let manifest_name = format!("{query_id}_manifest.json");
    let put = |name: &str, value: serde_json::Value| {
        let key = target.key(name);
        let url = target.url(name);
        let store = target.store.clone();
        async move {
            let key = key?;
            let body = serde_json::to_vec(&value)
                .map_err(|e| Error::internal(format!("encoding {url}: {e}")))?;
            store
                .put(&key, PutPayload::from(Bytes::from(body)))
                .await
                .map_err(|e| Error::unavailable(format!("UNLOAD writing {url}: {e}")))?;
            Ok::<_, Error>(url)
        }
    };
    let metadata_file = put(&metadata_name, layout::metadata(column_info))
        .await
        .map_err(&wrap)?;
    let manifest_file = put(&manifest_name, layout::manifest(&files, options.format))
        .await
        .map_err(&wrap)?;
    Ok(Summary {
        rows: files.iter().map(|f| f.rows).sum(),
        metadata_file,
        manifest_file,
        files,
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, TimestampNanosecondArray};
    use arrow::datatypes::TimeUnit;

    use super::*;

    fn batch(n: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("region", DataType::Utf8, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("v", DataType::Float64, true),
        ]));
        let regions: Vec<Option<&str>> = (0..n)
            .map(|i| [Some("eu/west"), Some("us"), None][i % 3])
            .collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(regions)),
                Arc::new(TimestampNanosecondArray::from(
                    (0..n as i64).map(|i| i * 1_000_000_001).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    (0..n)
                        .map(|i| (i % 5 != 0).then_some(i as f64))
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn writes_partitions_manifest_and_rolls_files_over() {
        let dir = tempfile::tempdir().unwrap();
        let d = Destinations::parse(&format!("b={}", dir.path().display())).unwrap();
        let sql = "UNLOAD (SELECT 1) TO 's3://b/out/' WITH (format = 'CSV', \
                   partitioned_by = ARRAY['region'], include_header = 'true')";
        let mut unload = recognise(sql).unwrap().unwrap();
        unload.options.max_file_size = 300;
        let target = d.open(&unload.url).unwrap();
        let batches: Vec<std::result::Result<RecordBatch, Error>> =
            (0..10).map(|_| Ok(batch(300))).collect();
        let schema = batches[0].as_ref().unwrap().schema();
        let s = run(
            &unload,
            &target,
            "Q",
            schema,
            futures::stream::iter(batches),
            |e| e,
        )
        .await
        .unwrap();
        assert_eq!(s.rows, 3000);
        assert_eq!(s.manifest_file, "s3://b/out/Q_manifest.json");
        assert_eq!(s.metadata_file, "s3://b/out/Q_metadata.json");
        // Each partition's files rolled over past 300 bytes (gzip CSV).
        assert!(s.files.len() > 3, "{:?}", s.files);
        let folders: std::collections::BTreeSet<&str> = s
            .files
            .iter()
            .map(|f| f.url.rsplit_once('/').unwrap().0)
            .collect();
        assert_eq!(
            folders.into_iter().collect::<Vec<_>>(),
            vec![
                "s3://b/out/results/region=__HIVE_DEFAULT_PARTITION__",
                "s3://b/out/results/region=eu%2Fwest",
                "s3://b/out/results/region=us",
            ]
        );
        for f in &s.files {
            let path = dir.path().join(f.url.strip_prefix("s3://b/").unwrap());
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                f.bytes,
                "{}",
                f.url
            );
            let mut text = String::new();
            use std::io::Read;
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some("time,v"));
            assert_eq!(lines.count() as u64, f.rows);
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/Q_manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["query_metadata"]["total_row_count"], 3000);
        assert_eq!(manifest["query_metadata"]["result_format"], "CSV");
        let metadata: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/Q_metadata.json")).unwrap())
                .unwrap();
        assert_eq!(
            metadata["ColumnInfo"][1],
            serde_json::json!({"Name": "time", "Type": {"ScalarType": "TIMESTAMP"}})
        );
    }

    #[tokio::test]
    async fn parquet_keeps_nanoseconds_and_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let d = Destinations::parse(&format!("b={}", dir.path().display())).unwrap();
        let unload = recognise("UNLOAD (SELECT 1) TO 's3://b' WITH (compression = 'SNAPPY')")
            .unwrap()
            .unwrap();
        let target = d.open(&unload.url).unwrap();
        let b = batch(10);
        let s = run(
            &unload,
            &target,
            "P",
            b.schema(),
            futures::stream::iter(vec![Ok::<_, Error>(b.clone())]),
            |e| e,
        )
        .await
        .unwrap();
        assert_eq!(s.files.len(), 1);
        let bytes = std::fs::read(dir.path().join("results/P_00000.parquet")).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            Bytes::from(bytes),
        )
        .unwrap()
        .build()
        .unwrap();
        let read: Vec<RecordBatch> = reader.map(|r| r.unwrap()).collect();
        assert_eq!(read[0], b);
        let err = run(
            &recognise("UNLOAD (SELECT 1) TO 's3://b' WITH (partitioned_by = ARRAY['nope'])")
                .unwrap()
                .unwrap(),
            &target,
            "E",
            b.schema(),
            futures::stream::iter(Vec::<std::result::Result<RecordBatch, Error>>::new()),
            |e| e,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("partitioned_by"), "{err}");
    }
}
