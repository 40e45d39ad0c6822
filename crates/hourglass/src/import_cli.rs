//! `hourglass import`: the command line of `hourglass_import` (see that crate and README.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hourglass_import::options::{CsvOptions, Format, TimeUnit};
use hourglass_import::{ImportOptions, TargetSpec};

/// Exit code when the import finished but rejected rows (listed in the rejects file).
pub const EXIT_REJECTED: u8 = 2;

/// `hourglass import` flags.
#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// Files, folders or s3://bucket/prefix: Timestream UNLOAD exports (a folder holding the
    /// manifest), Parquet, CSV (.csv, .csv.gz) and line protocol (.lp, .txt, .lp.gz) files.
    #[arg(required = true, num_args = 1..)]
    pub sources: Vec<String>,
    /// The database rows go to (created if needed).
    #[arg(long)]
    pub db: String,
    /// The table of Parquet and CSV rows (default: the file name up to its first dot; an
    /// export's folder name). Line protocol names its tables itself.
    #[arg(long)]
    pub table: Option<String>,
    /// Write to a running server over HTTP (line protocol). The default target.
    #[arg(long, env = "HOURGLASS_URL", conflicts_with = "data_dir")]
    pub server: Option<String>,
    /// Write into this data directory in-process (refused while a server holds it).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Token for --server when it requires authentication.
    #[arg(long, env = "HOURGLASS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With --data-dir: the magnetic store, as `hourglass serve --object-store`.
    #[arg(long, env = "HOURGLASS_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// With --data-dir: memory-store budget in MiB (writes wait while it is full).
    #[arg(long, default_value_t = 1024)]
    pub memory_budget_mb: usize,
    /// Source format when the file names do not tell: parquet, csv or lp.
    #[arg(long, value_parser = Format::parse)]
    pub format: Option<Format>,
    /// A Timestream DataModel JSON (CSV and Parquet): time column and unit, dimension and
    /// multi-measure mappings, measure name column.
    #[arg(long)]
    pub data_model: Option<PathBuf>,
    /// The time column (default `time`).
    #[arg(long)]
    pub time_column: Option<String>,
    /// Unit of numeric times: s, ms, us, ns (default ms, as Timestream's batch load).
    #[arg(long, value_parser = TimeUnit::parse)]
    pub time_unit: Option<TimeUnit>,
    /// Dimension columns (default: the string columns; with only --measures, the others).
    #[arg(long, value_delimiter = ',')]
    pub dimensions: Option<Vec<String>>,
    /// Measure columns, `name[:TYPE]` (TYPE: double, bigint, varchar, boolean, timestamp);
    /// default: the non-string columns (with only --dimensions, the others).
    #[arg(long, value_delimiter = ',')]
    pub measures: Option<Vec<String>>,
    /// The column holding each row's measure name (default `measure_name` when present).
    #[arg(long)]
    pub measure_name_column: Option<String>,
    /// The measure name of every row when no column holds it (default: the table name).
    #[arg(long)]
    pub measure_name: Option<String>,
    /// Line protocol timestamp precision: ns, us, ms, s.
    #[arg(long, default_value = "ns")]
    pub precision: String,
    /// CSV field delimiter (one character; `\t` for tabs).
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// CSV quote character.
    #[arg(long, default_value = "\"")]
    pub quote: String,
    /// CSV escape character inside quotes (default: none, quotes doubled; `\` for UNLOAD
    /// exports).
    #[arg(long)]
    pub escape: Option<String>,
    /// CSV: an unquoted field equal to this is NULL (an empty unquoted field always is).
    #[arg(long)]
    pub null_value: Option<String>,
    /// CSV: trim spaces around unquoted fields.
    #[arg(long)]
    pub trim: bool,
    /// Skip what an earlier run (same state file) finished; without it a run starts over.
    #[arg(long)]
    pub resume: bool,
    /// The state file (default `<db>.import-state.json` in the working directory).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The rejects file (default `<db>.rejects.csv` in the working directory), created only
    /// when a row is rejected.
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Progress bar: auto (when stderr is a terminal), always or never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub progress: String,
    /// Rows per write (default 262144 with --data-dir, 65536 with --server: a request body
    /// must fit the server's --max-body-mb).
    #[arg(long)]
    pub batch_rows: Option<usize>,
    /// With --server: requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

fn one_char(flag: &str, s: &str) -> anyhow::Result<u8> {
    let s = if s == "\\t" { "\t" } else { s };
    match s.as_bytes() {
        [b] => Ok(*b),
        _ => anyhow::bail!("--{flag} takes one ASCII character, not '{s}'"),
    }
}

fn options(a: ImportArgs) -> anyhow::Result<ImportOptions> {
    let target = match (&a.data_dir, &a.server) {
        (Some(dir), _) => TargetSpec::DataDir {
            dir: dir.clone(),
            object_store: a.object_store.clone(),
            memory_budget_bytes: a.memory_budget_mb.max(16) << 20,
        },
        (None, server) => TargetSpec::Server {
            url: server
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:8086".to_string()),
            token: a.token.clone(),
            concurrency: a.concurrency.max(1),
        },
    };
    let mut o = ImportOptions::new(a.sources, &a.db, target);
    o.table = a.table;
    o.format = a.format;
    o.data_model = a.data_model;
    o.time_column = a.time_column;
    o.time_unit = a.time_unit;
    o.dimensions = a.dimensions;
    if let Some(m) = &a.measures {
        for spec in m {
            hourglass_import::plan::parse_measure_spec(spec)
                .map_err(|e| anyhow::anyhow!("--measures: {e}"))?;
        }
    }
    o.measures = a.measures;
    o.measure_name_column = a.measure_name_column;
    o.measure_name = a.measure_name;
    o.precision = hourglass_core::time::Precision::parse(&a.precision)
        .map_err(|e| anyhow::anyhow!("--precision: {}", e.message))?;
    o.csv = CsvOptions {
        delimiter: one_char("delimiter", &a.delimiter)?,
        quote: one_char("quote", &a.quote)?,
        escape: a
            .escape
            .as_deref()
            .map(|e| one_char("escape", e))
            .transpose()?,
        header: true,
        null_value: a.null_value,
        trim: a.trim,
    };
    o.resume = a.resume;
    o.state_file = a.state;
    o.rejects_file = a.rejects;
    o.progress = match a.progress.as_str() {
        "always" => Some(true),
        "never" => Some(false),
        _ => None,
    };
    let default_rows = if a.data_dir.is_some() {
        262_144
    } else {
        65_536
    };
    o.batch_rows = a.batch_rows.unwrap_or(default_rows).max(1);
    Ok(o)
}

/// Runs the import: 0 when every row loaded, [`EXIT_REJECTED`] when some were rejected, 1 on
/// an error.
pub fn run(args: ImportArgs, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let result = options(args).and_then(|o| runtime.block_on(hourglass_import::run(o)));
    match result {
        Ok(summary) => {
            println!("{}", summary.line);
            match &summary.rejects_file {
                Some(path) => {
                    eprintln!(
                        "hourglass import: {} rows rejected, listed in {}",
                        summary.rejected,
                        path.display()
                    );
                    ExitCode::from(EXIT_REJECTED)
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
