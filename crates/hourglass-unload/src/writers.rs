//! Data files: Parquet through parquet's `AsyncArrowWriter`, CSV (plain or gzip) through our
//! [`CsvDialect`], both over object_store's `BufWriter`, which sends small files with one PUT and
//! larger ones as a multipart upload as they grow — one row group (Parquet) or one batch (CSV)
//! plus a 10 MB part buffer in memory per open file, never the whole result.

use std::io::Write;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use flate2::write::GzEncoder;
use hourglass_core::{Error, Result};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::io::AsyncWriteExt;

use crate::csv::CsvDialect;
use crate::layout::DataFile;
use crate::options::{Compression, Format, Options};

/// Rows per Parquet row group (bounds the memory of an open file).
const ROW_GROUP_ROWS: usize = 128 * 1024;

fn write_error(url: &str, e: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("UNLOAD writing {url}: {e}"))
}

/// One open data file.
pub enum DataSink {
    Parquet {
        writer: Box<AsyncArrowWriter<BufWriter>>,
        url: String,
        rows: u64,
    },
    Csv {
        out: Box<BufWriter>,
        gzip: Option<Box<GzEncoder<Vec<u8>>>>,
        dialect: CsvDialect,
        url: String,
        rows: u64,
        /// Bytes sent to the store.
        bytes: u64,
        /// A plain header not sent yet (sent with the first rows, or at the end).
        pending: Vec<u8>,
    },
}

impl DataSink {
    /// Creates the file at `key` (`url` for the manifest) for batches of `schema`.
    pub fn create(
        store: Arc<dyn ObjectStore>,
        key: ObjectPath,
        url: String,
        schema: SchemaRef,
        options: &Options,
    ) -> Result<DataSink> {
        let out = BufWriter::new(store, key);
        match options.format {
            Format::Parquet => {
                let compression = match options.compression {
                    Compression::Gzip => PqCompression::GZIP(GzipLevel::default()),
                    Compression::None => PqCompression::UNCOMPRESSED,
                    Compression::Snappy => PqCompression::SNAPPY,
                    Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
                };
                let props = WriterProperties::builder()
                    .set_compression(compression)
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                let writer = AsyncArrowWriter::try_new(out, schema, Some(props))
                    .map_err(|e| write_error(&url, e))?;
                Ok(DataSink::Parquet {
                    writer: Box::new(writer),
                    url,
                    rows: 0,
                })
            }
            Format::Csv => {
                let dialect = CsvDialect {
                    delimiter: options.field_delimiter,
                    escape: options.escaped_by,
                };
                let mut sink = DataSink::Csv {
                    out: Box::new(out),
                    gzip: (options.compression == Compression::Gzip).then(|| {
                        Box::new(GzEncoder::new(Vec::new(), flate2::Compression::default()))
                    }),
                    dialect,
                    url,
                    rows: 0,
                    bytes: 0,
                    pending: Vec::new(),
                };
                if options.include_header {
                    let mut text = String::new();
                    dialect.header(&schema, &mut text);
                    if let DataSink::Csv {
                        gzip: Some(e), url, ..
                    } = &mut sink
                    {
                        e.write_all(text.as_bytes())
                            .map_err(|e| write_error(url, e))?;
                    } else if let DataSink::Csv { pending, .. } = &mut sink {
                        *pending = text.into_bytes();
                    }
                }
                Ok(sink)
            }
        }
    }

    /// Bytes written so far (Parquet: with the row group in progress, as encoded so far).
    pub fn size(&self) -> u64 {
        match self {
            DataSink::Parquet { writer, .. } => {
                (writer.bytes_written() + writer.in_progress_size()) as u64
            }
            DataSink::Csv { bytes, pending, .. } => *bytes + pending.len() as u64,
        }
    }

    /// Sends CSV text (compressed first with gzip; the encoder keeps what it has not emitted yet).
    async fn send(&mut self, text: Vec<u8>) -> Result<()> {
        let DataSink::Csv {
            out,
            gzip,
            url,
            bytes,
            ..
        } = self
        else {
            return Ok(());
        };
        let chunk = match gzip {
            Some(encoder) => {
                // A sync flush per batch: the size so far is known (for max_file_size).
                encoder
                    .write_all(&text)
                    .and_then(|()| encoder.flush())
                    .map_err(|e| write_error(url, e))?;
                std::mem::take(encoder.get_mut())
            }
            None => text,
        };
        if !chunk.is_empty() {
            *bytes += chunk.len() as u64;
            out.put(Bytes::from(chunk))
                .await
                .map_err(|e| write_error(url, e))?;
        }
        Ok(())
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            DataSink::Parquet { writer, url, rows } => {
                writer.write(batch).await.map_err(|e| write_error(url, e))?;
                *rows += batch.num_rows() as u64;
                Ok(())
            }
            DataSink::Csv {
                dialect,
                rows,
                pending,
                ..
            } => {
                let mut text = String::new();
                dialect.rows(batch, &mut text)?;
                *rows += batch.num_rows() as u64;
                let mut bytes = std::mem::take(pending);
                bytes.extend_from_slice(text.as_bytes());
                self.send(bytes).await
            }
        }
    }

    /// Abandons the file: a multipart upload already started is aborted, so no part of it
    /// stays in the store (a file not yet sent was never there).
    pub async fn abort(self) {
        let (mut out, url) = match self {
            DataSink::Parquet { writer, url, .. } => (writer.into_inner(), url),
            DataSink::Csv { out, url, .. } => (*out, url),
        };
        if let Err(e) = out.abort().await {
            tracing::warn!(file = %url, error = %e, "UNLOAD could not abort an unfinished upload");
        }
    }

    /// Completes the file (the multipart upload, or its single PUT).
    pub async fn finish(self) -> Result<DataFile> {
        match self {
            DataSink::Parquet {
                mut writer,
                url,
                rows,
            } => {
                writer.finish().await.map_err(|e| write_error(&url, e))?;
                Ok(DataFile {
                    bytes: writer.bytes_written() as u64,
                    url,
                    rows,
                })
            }
            DataSink::Csv {
                mut out,
                gzip,
                url,
                rows,
                mut bytes,
                pending,
                ..
            } => {
                let tail = match gzip {
                    Some(encoder) => (*encoder).finish().map_err(|e| write_error(&url, e))?,
                    None => pending,
                };
                if !tail.is_empty() {
                    bytes += tail.len() as u64;
                    out.put(Bytes::from(tail))
                        .await
                        .map_err(|e| write_error(&url, e))?;
                }
                out.shutdown().await.map_err(|e| write_error(&url, e))?;
                Ok(DataFile { url, rows, bytes })
            }
        }
    }
}
