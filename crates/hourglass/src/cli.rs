//! The command line: `hourglass serve`, `hourglass sql`, `hourglass user`, `hourglass import`,
//! `hourglass config`. Every `serve` flag also reads an `HOURGLASS_*` environment variable and a
//! key of the configuration file (`config_cli`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::server::ServerConfig;

#[derive(Debug, Parser)]
#[command(
    name = "hourglass",
    version,
    about = "A time series database with Amazon Timestream's model and API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of `ServeArgs` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// An SQL shell against a running server (reads statements from stdin, or runs -e).
    Sql(crate::sql_shell::SqlArgs),
    /// Whole-system benchmarks.
    Bench(crate::bench::BenchArgs),
    /// Users and their credentials (SigV4 keys, InfluxDB tokens, PostgreSQL passwords).
    User(crate::users_cli::UserArgs),
    /// Load UNLOAD exports, Parquet, CSV and line protocol files into a server or a data
    /// directory (exit code 2 when rows were rejected).
    Import(crate::import_cli::ImportArgs),
    /// The configuration file of `hourglass serve --config`: print an example, check a file.
    Config(crate::config_cli::ConfigArgs),
}

/// `hourglass serve` flags.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// A TOML configuration file: a key for every flag below (`data_dir` for `--data-dir`) and
    /// the data sources' sections; flags and HOURGLASS_* variables override it. `hourglass
    /// config example` prints one with every key.
    #[arg(long, env = "HOURGLASS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the catalog, WAL and (by default) the magnetic store live.
    #[arg(long, env = "HOURGLASS_DATA_DIR", default_value = "./hourglass-data")]
    pub data_dir: PathBuf,
    /// HTTP address: line protocol, SQL, Timestream API, health and metrics.
    #[arg(long, env = "HOURGLASS_HTTP_ADDR", default_value = "127.0.0.1:8086")]
    pub http_addr: SocketAddr,
    /// PostgreSQL wire protocol address (served from a later release).
    #[arg(long, env = "HOURGLASS_PG_ADDR", default_value = "127.0.0.1:5433")]
    pub pg_addr: SocketAddr,
    /// The magnetic store: `s3://bucket[/prefix]` (settings from AWS_* variables) or a directory.
    /// Default: DATA_DIR/magnetic.
    #[arg(long, env = "HOURGLASS_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// Memory-store budget in MiB; past it writers get 503 with Retry-After.
    #[arg(long, env = "HOURGLASS_MEMORY_BUDGET_MB", default_value_t = 1024)]
    pub memory_budget_mb: usize,
    /// Memory-store retention of tables created by line protocol writes, in hours.
    #[arg(
        long,
        env = "HOURGLASS_DEFAULT_MEMORY_RETENTION_HOURS",
        default_value_t = 6
    )]
    pub default_memory_retention_hours: i64,
    /// Magnetic-store retention of tables created by line protocol writes, in days.
    #[arg(
        long,
        env = "HOURGLASS_DEFAULT_MAGNETIC_RETENTION_DAYS",
        default_value_t = 73000
    )]
    pub default_magnetic_retention_days: i64,
    /// Whether tables created by line protocol writes accept writes older than the memory store.
    #[arg(long, env = "HOURGLASS_DEFAULT_MAGNETIC_WRITES", default_value_t = true, action = clap::ArgAction::Set)]
    pub default_magnetic_writes: bool,
    /// Memory all running queries may use together, in MiB.
    #[arg(long, env = "HOURGLASS_QUERY_MEMORY_MB", default_value_t = 2048)]
    pub query_memory_mb: usize,
    /// Time limit of one query, in seconds.
    #[arg(long, env = "HOURGLASS_QUERY_TIMEOUT_SECS", default_value_t = 300)]
    pub query_timeout_secs: u64,
    /// Largest request body accepted, in MiB (after gzip decompression the limit is 4x).
    #[arg(long, env = "HOURGLASS_MAX_BODY_MB", default_value_t = 64)]
    pub max_body_mb: usize,
    /// The address the Timestream API's DescribeEndpoints advertises, as given: `host:port` (SDKs
    /// connect with https) or `http://host:port` / `https://host:port`. Default: the HTTP address
    /// served (the request's Host when bound to 0.0.0.0 / [::]), as `http://host:port` over plain
    /// HTTP and `host:port` with TLS.
    #[arg(long, env = "HOURGLASS_ADVERTISED_ENDPOINT")]
    pub advertised_endpoint: Option<String>,
    /// How often tiering, retention and compaction run, in milliseconds.
    #[arg(
        long,
        env = "HOURGLASS_MAINTENANCE_INTERVAL_MS",
        default_value_t = 2000
    )]
    pub maintenance_interval_ms: u64,
    /// Scheduled queries: due runs of one query run when the server finds several due (after
    /// downtime), the newest ones, oldest first; older missed runs are skipped (logged). 1: only
    /// the latest.
    #[arg(long, env = "HOURGLASS_SCHEDULED_QUERY_CATCH_UP", default_value_t = 10)]
    pub scheduled_query_catch_up: usize,
    /// UNLOAD destinations kept in local directories: `bucket=/dir[,bucket2=/dir2]`; UNLOAD to
    /// `s3://bucket/...` of a mapped bucket writes under its directory, other buckets are S3
    /// (the `AWS_*` settings). `file://` destinations are always refused.
    #[arg(long, env = "HOURGLASS_UNLOAD_BUCKETS", default_value = "", value_parser = parse_unload_buckets)]
    pub unload_buckets: hourglass_unload::Destinations,
    /// Scheduled queries the server keeps (AWS's quota is 10,000).
    #[arg(
        long,
        env = "HOURGLASS_MAX_SCHEDULED_QUERIES",
        default_value_t = 10_000
    )]
    pub max_scheduled_queries: usize,
    /// Late data: how long a stale run waits for more late writes before it is rerun, in
    /// milliseconds. 0: one maintenance interval.
    #[arg(long, env = "HOURGLASS_LATE_DATA_DELAY_MS", default_value_t = 0)]
    pub late_data_delay_ms: u64,
    /// Late data: runs per scheduled query whose read ranges are kept for reruns (older ones are
    /// not rerun). 0: late data reruns nothing.
    #[arg(long, env = "HOURGLASS_LATE_DATA_RUNS", default_value_t = 1_000)]
    pub late_data_runs: usize,
    /// Late data: runs whose invocation time is more than this many hours before the query's
    /// newest are not rerun.
    #[arg(long, env = "HOURGLASS_LATE_DATA_WINDOW_HOURS", default_value_t = 168)]
    pub late_data_window_hours: u64,
    /// Require authentication on every interface (users from `hourglass user add`).
    #[arg(long, env = "HOURGLASS_REQUIRE_AUTH", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub require_auth: bool,
    /// Allow binding a non-loopback address without --require-auth (anyone who can reach the
    /// port can then read, write and delete everything).
    #[arg(long, env = "HOURGLASS_ALLOW_INSECURE_BIND", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_insecure_bind: bool,
    /// TLS certificate chain (PEM) for HTTP (https on the same port) and PostgreSQL.
    #[arg(long, env = "HOURGLASS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) matching --tls-cert.
    #[arg(long, env = "HOURGLASS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse every connection that is not TLS (PostgreSQL `sslmode=disable` included). Default:
    /// on when --tls-cert is given; `--require-tls=false` lets PostgreSQL clients in without TLS.
    #[arg(long, env = "HOURGLASS_REQUIRE_TLS", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub require_tls: Option<bool>,
    /// Connections over HTTP and PostgreSQL together; past it new connections are refused
    /// (HTTP 503, PostgreSQL FATAL 53300). 0: automatic, the open-file limit less the descriptors
    /// kept for storage (a quarter of it, at least 1024). A larger value is lowered to that.
    #[arg(long, env = "HOURGLASS_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Connections one client address may hold (an IPv6 client: its /64), both protocols
    /// together. 0: no per-address limit (behind a proxy on the same host every client has the
    /// proxy's address).
    #[arg(
        long,
        env = "HOURGLASS_MAX_CONNECTIONS_PER_PEER",
        default_value_t = hourglass_core::connections::DEFAULT_MAX_PER_PEER
    )]
    pub max_connections_per_peer: usize,
    /// Seconds an HTTP client has to send a request head, from its first byte (a new connection:
    /// from the accept, TLS handshake included).
    #[arg(long, env = "HOURGLASS_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a keep-alive HTTP connection may wait for its next request. Requests in flight
    /// (long queries, streamed results) are not cut.
    #[arg(long, env = "HOURGLASS_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Seconds to receive an HTTP request body, plus one second per KiB received (a body slower
    /// than 1 KiB/s fails once this grace is used up).
    #[arg(long, env = "HOURGLASS_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,
    /// Seconds a PostgreSQL client has to finish startup: SSL negotiation, the startup message
    /// and authentication (PostgreSQL's authentication_timeout).
    #[arg(long, env = "HOURGLASS_PG_STARTUP_TIMEOUT_SECS", default_value_t = 60)]
    pub pg_startup_timeout_secs: u64,
    /// On SIGTERM/SIGINT, seconds requests and statements in flight may take to finish before
    /// their connections are closed (then writes are committed and the memory store persisted).
    #[arg(long, env = "HOURGLASS_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,
    /// Alertmanager to send alerts of alert rules to (its base URL; alerts are posted to
    /// `<url>/api/v2/alerts`). Repeatable; the variable takes a comma-separated list.
    #[arg(long, env = "HOURGLASS_ALERTMANAGER_URL", value_delimiter = ',')]
    pub alertmanager_url: Vec<String>,
    /// A URL receiving alerts of alert rules as Alertmanager's webhook JSON (for setups without
    /// an Alertmanager). Repeatable; the variable takes a comma-separated list.
    #[arg(long, env = "HOURGLASS_ALERT_WEBHOOK_URL", value_delimiter = ',')]
    pub alert_webhook_url: Vec<String>,
    /// Rows past memory retention are persisted once they hold this many bytes (testing knob).
    #[arg(
        long,
        env = "HOURGLASS_PERSIST_MIN_BYTES",
        default_value_t = 128 << 20,
        hide = true
    )]
    pub persist_min_bytes: usize,
    /// ...or once the oldest of them arrived this many milliseconds ago (testing knob).
    #[arg(
        long,
        env = "HOURGLASS_PERSIST_MAX_WAIT_MS",
        default_value_t = 10_000,
        hide = true
    )]
    pub persist_max_wait_ms: u64,
    /// A day with at least this many small files is compacted (testing knob).
    #[arg(
        long,
        env = "HOURGLASS_COMPACTION_MIN_FILES",
        default_value_t = 4,
        hide = true
    )]
    pub compaction_min_files: usize,
    /// Compaction rewrites days persisted as time slices by series, into files of whole-day
    /// series ranges (experimental: smaller files and faster few-series queries over long
    /// ranges, slower all-series queries over part of a day; docs/benchmarks.md "Storage").
    #[arg(
        long,
        env = "HOURGLASS_REWRITE_DAYS_BY_SERIES",
        default_value_t = false,
        hide = true
    )]
    pub rewrite_days_by_series: bool,
}

/// Stack of every runtime thread (workers and blocking threads); address space, mostly untouched.
const THREAD_STACK_BYTES: usize = 32 << 20;

pub fn main() -> ExitCode {
    let resolved = crate::config_cli::parse(Cli::command());
    let cli = match Cli::from_arg_matches(&resolved.matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Command::Config(args) = cli.command {
        return crate::config_cli::run(args, Cli::command());
    }
    match &cli.command {
        Command::Serve(args) => crate::allocator::configure(args.memory_budget_mb),
        // An import into a data directory runs the write path and persistence in-process: the
        // server's allocator settings apply (10 M TSBS rows from Parquet: system time 19.3 s ->
        // 12.4 s, see crate::allocator).
        Command::Import(args) if args.data_dir.is_some() => {
            crate::allocator::configure(args.memory_budget_mb)
        }
        _ => {}
    }
    if matches!(cli.command, Command::Serve(_) | Command::User(_)) {
        crate::file_modes::restrict_new_files();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOURGLASS_LOG").unwrap_or_else(|_| {
                // An import's progress bar is not interleaved with the engine's info lines.
                let level = if matches!(cli.command, Command::Import(_)) {
                    "warn"
                } else {
                    "info"
                };
                tracing_subscriber::EnvFilter::new(level)
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Planning and evaluating SQL recurse over expression trees; with the operator bound of
        // `hourglass_query::limits` this stack holds the deepest tree even in a debug build.
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Import(args) = cli.command {
        return crate::import_cli::run(args, &runtime);
    }
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args, resolved.sources)),
        Command::Sql(args) => runtime.block_on(crate::sql_shell::run(args)),
        Command::Bench(args) => runtime.block_on(crate::bench::run(args)),
        Command::User(args) => crate::users_cli::run(args),
        Command::Import(_) | Command::Config(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs, sources: crate::config_cli::Sources) -> anyhow::Result<()> {
    raise_open_file_limit();
    crate::file_modes::protect_data_dir(&args.data_dir);
    let mut config = ServerConfig::from_args(&args);
    config.mqtt = sources.mqtt;
    let server =
        crate::server::start(config, std::sync::Arc::new(hourglass_core::SystemClock)).await?;
    server.print_banner();
    crate::server::wait_for_signal().await;
    eprintln!("hourglass: shutting down");
    server.shutdown().await;
    eprintln!("hourglass: stopped");
    Ok(())
}

/// Raises the soft limit of open files to the hard limit, so thousands of client connections
/// (each a descriptor) fit; a failure is only logged.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
}

/// `--unload-buckets bucket=/dir[,bucket2=/dir2]`.
fn parse_unload_buckets(spec: &str) -> Result<hourglass_unload::Destinations, String> {
    hourglass_unload::Destinations::parse(spec)
}
