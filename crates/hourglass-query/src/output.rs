//! Encoding query results in the formats of InfluxDB 3's `/api/v3/query_sql`: `json` (an array of
//! objects), `jsonl`, `csv`, `pretty` (a text table) and `parquet`, and ours: `arrow` (an Arrow
//! IPC stream, read by `pyarrow.ipc.open_stream`, pandas, polars). Encoders work batch by batch so
//! large results stream; `pretty` and `parquet` need the whole result and buffer it.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use hourglass_core::{Error, Result};

/// A result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    JsonLines,
    Csv,
    Pretty,
    Parquet,
    ArrowStream,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "" | "json" => OutputFormat::Json,
            "jsonl" => OutputFormat::JsonLines,
            "csv" => OutputFormat::Csv,
            "pretty" => OutputFormat::Pretty,
            "parquet" => OutputFormat::Parquet,
            "arrow" => OutputFormat::ArrowStream,
            other => {
                return Err(Error::invalid(format!(
                    "unknown format '{other}': expected json, jsonl, csv, pretty, parquet or arrow"
                )))
            }
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::JsonLines => "application/jsonl",
            OutputFormat::Csv => "text/csv",
            OutputFormat::Pretty => "text/plain; charset=utf-8",
            OutputFormat::Parquet => "application/vnd.apache.parquet",
            OutputFormat::ArrowStream => "application/vnd.apache.arrow.stream",
        }
    }
}

/// Turns a stream of batches into bytes.
pub struct ResultEncoder {
    format: OutputFormat,
    schema: SchemaRef,
    rows_written: usize,
    buffered: Vec<RecordBatch>,
    ipc: Option<arrow::ipc::writer::StreamWriter<Vec<u8>>>,
}

impl ResultEncoder {
    pub fn new(format: OutputFormat, schema: SchemaRef) -> Self {
        ResultEncoder {
            format,
            schema,
            rows_written: 0,
            buffered: Vec::new(),
            ipc: None,
        }
    }

    /// Bytes to send before the first batch.
    pub fn start(&mut self) -> Result<Vec<u8>> {
        match self.format {
            OutputFormat::Json => Ok(b"[".to_vec()),
            OutputFormat::ArrowStream => {
                let writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &self.schema)
                    .map_err(encode_err)?;
                Ok(std::mem::take(self.ipc.insert(writer).get_mut()))
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Bytes for one batch.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self.format {
            OutputFormat::Json => {
                let lines = jsonl(batch)?;
                for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    if self.rows_written > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(line);
                    self.rows_written += 1;
                }
            }
            OutputFormat::JsonLines => out = jsonl(batch)?,
            OutputFormat::Csv => {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(self.rows_written == 0)
                    .build(&mut out);
                writer.write(batch).map_err(encode_err)?;
                drop(writer);
                self.rows_written += batch.num_rows().max(1);
            }
            OutputFormat::Pretty | OutputFormat::Parquet => self.buffered.push(batch.clone()),
            OutputFormat::ArrowStream => {
                let writer = self.ipc_writer()?;
                writer.write(batch).map_err(encode_err)?;
                out = std::mem::take(writer.get_mut());
            }
        }
        Ok(out)
    }

    /// Bytes after the last batch.
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        match self.format {
            OutputFormat::Json => Ok(b"]".to_vec()),
            OutputFormat::JsonLines => Ok(Vec::new()),
            OutputFormat::Csv => {
                if self.rows_written == 0 {
                    let header: Vec<&str> = self
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect();
                    Ok(format!("{}\n", header.join(",")).into_bytes())
                } else {
                    Ok(Vec::new())
                }
            }
            OutputFormat::ArrowStream => {
                let writer = self.ipc_writer()?;
                writer.finish().map_err(encode_err)?;
                Ok(std::mem::take(writer.get_mut()))
            }
            OutputFormat::Pretty => {
                let table = arrow::util::pretty::pretty_format_batches(&self.buffered)
                    .map_err(encode_err)?;
                Ok(format!("{table}\n").into_bytes())
            }
            OutputFormat::Parquet => {
                let mut out = Vec::new();
                // A result travels once: statistics would only cost encoding time.
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
                    .build();
                let mut writer = parquet::arrow::ArrowWriter::try_new(
                    &mut out,
                    self.schema.clone(),
                    Some(props),
                )
                .map_err(|e| Error::internal(format!("encoding parquet: {e}")))?;
                for b in &self.buffered {
                    writer
                        .write(b)
                        .map_err(|e| Error::internal(format!("encoding parquet: {e}")))?;
                }
                writer
                    .close()
                    .map_err(|e| Error::internal(format!("encoding parquet: {e}")))?;
                Ok(out)
            }
        }
    }

    fn ipc_writer(&mut self) -> Result<&mut arrow::ipc::writer::StreamWriter<Vec<u8>>> {
        self.ipc
            .as_mut()
            .ok_or_else(|| Error::internal("arrow stream used before start()"))
    }
}

fn jsonl(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
    writer.write(batch).map_err(encode_err)?;
    writer.finish().map_err(encode_err)?;
    drop(writer);
    Ok(out)
}

fn encode_err(e: arrow::error::ArrowError) -> Error {
    Error::internal(format!("encoding results: {e}"))
}
