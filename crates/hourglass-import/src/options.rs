//! What `hourglass import` was asked to do (the command line, parsed by the binary crate).

use std::path::PathBuf;

use hourglass_core::time::Precision;

/// Where rows go.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// Open the data directory in-process (refused while a server holds it).
    DataDir {
        dir: PathBuf,
        /// The magnetic store (`s3://…` or a directory) when not `DIR/magnetic`.
        object_store: Option<String>,
        memory_budget_bytes: usize,
    },
    /// Line protocol over HTTP to a running server.
    Server {
        url: String,
        token: Option<String>,
        /// Requests in flight.
        concurrency: usize,
    },
}

/// The unit of numeric time values (CSV and Parquet integer time columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Milliseconds,
    Microseconds,
    Nanoseconds,
}

impl TimeUnit {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "s" | "seconds" | "second" => TimeUnit::Seconds,
            "ms" | "milliseconds" | "millisecond" => TimeUnit::Milliseconds,
            "us" | "microseconds" | "microsecond" => TimeUnit::Microseconds,
            "ns" | "nanoseconds" | "nanosecond" => TimeUnit::Nanoseconds,
            other => {
                return Err(format!(
                    "invalid time unit '{other}': expected s, ms, us or ns (or Timestream's SECONDS, MILLISECONDS, MICROSECONDS, NANOSECONDS)"
                ))
            }
        })
    }

    pub fn nanos(self) -> i64 {
        match self {
            TimeUnit::Seconds => 1_000_000_000,
            TimeUnit::Milliseconds => 1_000_000,
            TimeUnit::Microseconds => 1_000,
            TimeUnit::Nanoseconds => 1,
        }
    }
}

/// Forced source format (otherwise from the file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
    LineProtocol,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "parquet" => Format::Parquet,
            "csv" => Format::Csv,
            "lp" | "line-protocol" | "line_protocol" => Format::LineProtocol,
            other => {
                return Err(format!(
                    "invalid format '{other}': expected parquet, csv or lp"
                ))
            }
        })
    }
}

/// CSV dialect.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    /// `None`: a quote inside a quoted field is written twice (RFC 4180).
    pub escape: Option<u8>,
    /// Whether the first line names the columns.
    pub header: bool,
    /// An unquoted field equal to this is NULL (the empty unquoted field always is).
    pub null_value: Option<String>,
    /// Trim spaces around unquoted fields.
    pub trim: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            escape: None,
            header: true,
            null_value: None,
            trim: false,
        }
    }
}

/// Everything `hourglass import` takes.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub sources: Vec<String>,
    pub database: String,
    pub table: Option<String>,
    pub target: TargetSpec,
    pub format: Option<Format>,
    /// Timestream `DataModel` JSON (CSV sources).
    pub data_model: Option<PathBuf>,
    pub time_column: Option<String>,
    pub time_unit: Option<TimeUnit>,
    pub dimensions: Option<Vec<String>>,
    pub measures: Option<Vec<String>>,
    pub measure_name_column: Option<String>,
    /// One measure name for every row (default: the table name).
    pub measure_name: Option<String>,
    /// Line protocol precision.
    pub precision: Precision,
    pub csv: CsvOptions,
    pub resume: bool,
    /// Default `<db>.import-state.json` in the working directory.
    pub state_file: Option<PathBuf>,
    /// Default `<db>.rejects.csv` in the working directory.
    pub rejects_file: Option<PathBuf>,
    /// `None`: a bar when stderr is a terminal.
    pub progress: Option<bool>,
    /// Rows per write.
    pub batch_rows: usize,
}

impl ImportOptions {
    pub fn new(sources: Vec<String>, database: &str, target: TargetSpec) -> Self {
        ImportOptions {
            sources,
            database: database.to_string(),
            table: None,
            target,
            format: None,
            data_model: None,
            time_column: None,
            time_unit: None,
            dimensions: None,
            measures: None,
            measure_name_column: None,
            measure_name: None,
            precision: Precision::Nanosecond,
            csv: CsvOptions::default(),
            resume: false,
            state_file: None,
            rejects_file: None,
            progress: Some(false),
            batch_rows: 65_536,
        }
    }

    pub fn state_path(&self) -> PathBuf {
        self.state_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.import-state.json", self.database)))
    }

    pub fn rejects_path(&self) -> PathBuf {
        self.rejects_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.rejects.csv", self.database)))
    }
}
