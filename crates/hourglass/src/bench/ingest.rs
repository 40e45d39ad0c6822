//! The ingest benchmark: TSBS cpu-only rows generated ahead of time, sent as line protocol over
//! parallel HTTP connections to a server started from this binary, every write acknowledged
//! durably (after the WAL fsync). Then the memory store is flushed and compacted, and the figures
//! are printed: rows/s, values/s, bytes on disk per value in Parquet, the server's peak RSS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;

use super::tsbs::CpuOnly;

/// `hourglass bench ingest` flags.
#[derive(Debug, Args, Clone)]
pub struct IngestArgs {
    /// Number of hosts (each is one series of 10 values per row).
    #[arg(long, default_value_t = 1000)]
    pub hosts: usize,
    /// Span of data in hours.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// Seconds between rows of one host.
    #[arg(long, default_value_t = 10)]
    pub interval_secs: i64,
    /// Parallel HTTP connections.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Lines per request.
    #[arg(long, default_value_t = 10_000)]
    pub batch_lines: usize,
    /// First timestamp, ns since the epoch (default 2016-01-01T00:00:00Z, as TSBS).
    #[arg(long, default_value_t = 1_451_606_400_000_000_000)]
    pub start_ns: i64,
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
    /// Data directory of the server the benchmark starts (default: a fresh temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Memory-store budget of the server, MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory_budget_mb: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

/// The measured figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestFigures {
    pub hosts: usize,
    pub rows: u64,
    pub values: u64,
    pub lp_bytes: u64,
    pub workers: usize,
    pub batch_lines: usize,
    pub seconds: f64,
    pub rows_per_sec: f64,
    pub values_per_sec: f64,
    pub throttled_requests: usize,
    pub parquet_bytes: u64,
    pub parquet_files: usize,
    pub bytes_per_value: f64,
    pub server_peak_rss_mb: f64,
    pub rows_queried: u64,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let steps = ((args.hours * 3600.0) / args.interval_secs as f64).round() as i64;
    eprintln!(
        "generating {} hosts x {steps} steps = {} rows of TSBS cpu-only line protocol...",
        args.hosts,
        args.hosts as i64 * steps
    );
    let generated = Instant::now();
    let bodies = generate(&args, steps);
    let lp_bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let rows = args.hosts as u64 * steps as u64;
    eprintln!(
        "generated {} requests, {:.1} MiB in {:.1} s",
        bodies.len(),
        lp_bytes as f64 / (1 << 20) as f64,
        generated.elapsed().as_secs_f64()
    );

    let tmp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempdir()?;
            tmp.clone()
        }
    };
    let mut server = Server::start(&data_dir, args.memory_budget_mb)?;
    let result = drive(&args, &server, bodies, rows, lp_bytes, &data_dir).await;
    let rss = server.peak_rss_mb();
    server.stop();
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let mut figures = result?;
    figures.server_peak_rss_mb = rss;
    print_figures(&figures);
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn generate(args: &IngestArgs, steps: i64) -> Vec<Bytes> {
    let mut data = CpuOnly::new(
        args.hosts,
        args.start_ns,
        args.interval_secs * 1_000_000_000,
        args.seed,
    );
    let steps_per_body = (args.batch_lines / args.hosts.max(1)).max(1) as i64;
    let mut bodies = Vec::new();
    let mut step = 0;
    while step < steps {
        let mut body = String::with_capacity(args.batch_lines * 360);
        for s in step..(step + steps_per_body).min(steps) {
            data.write_step(s, &mut body);
        }
        bodies.push(Bytes::from(body));
        step += steps_per_body;
    }
    bodies
}

async fn drive(
    args: &IngestArgs,
    server: &Server,
    bodies: Vec<Bytes>,
    rows: u64,
    lp_bytes: u64,
    data_dir: &Path,
) -> anyhow::Result<IngestFigures> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.workers)
        .build()?;
    let url = format!(
        "{}/api/v2/write?org=bench&bucket=benchmark&precision=ns",
        server.url
    );
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let throttled = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.workers.max(1) {
        let (client, url, bodies, next, throttled) = (
            client.clone(),
            url.clone(),
            bodies.clone(),
            next.clone(),
            throttled.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                loop {
                    let r = client.post(&url).body(body.clone()).send().await?;
                    match r.status().as_u16() {
                        204 => break,
                        503 => {
                            throttled.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        s => bail!(
                            "write {i} failed with {s}: {}",
                            r.text().await.unwrap_or_default()
                        ),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("ingested {rows} rows in {seconds:.2} s; flushing and compacting...");

    client
        .post(format!("{}/admin/flush", server.url))
        .send()
        .await?
        .error_for_status()?;
    client
        .post(format!("{}/admin/compact", server.url))
        .send()
        .await?
        .error_for_status()?;
    let (parquet_bytes, parquet_files) = parquet_size(&data_dir.join("magnetic"));
    let counted: serde_json::Value = client
        .post(format!("{}/api/v3/query_sql", server.url))
        .json(&serde_json::json!({"db": "benchmark", "q": "SELECT count(*) AS n FROM cpu"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let rows_queried = counted[0]["n"].as_u64().unwrap_or(0);
    let values = rows * 10;
    Ok(IngestFigures {
        hosts: args.hosts,
        rows,
        values,
        lp_bytes,
        workers: args.workers,
        batch_lines: args.batch_lines,
        seconds,
        rows_per_sec: rows as f64 / seconds,
        values_per_sec: values as f64 / seconds,
        throttled_requests: throttled.load(Ordering::Relaxed),
        parquet_bytes,
        parquet_files,
        bytes_per_value: parquet_bytes as f64 / values as f64,
        server_peak_rss_mb: 0.0,
        rows_queried,
    })
}

fn print_figures(f: &IngestFigures) {
    println!(
        "TSBS cpu-only ingest, {} hosts, {} rows, {} values",
        f.hosts, f.rows, f.values
    );
    println!(
        "  line protocol sent:     {:.1} MiB in requests of {} lines on {} connections",
        f.lp_bytes as f64 / (1 << 20) as f64,
        f.batch_lines,
        f.workers
    );
    println!(
        "  time:                   {:.2} s (durable acks)",
        f.seconds
    );
    println!("  rows/s:                 {:.0}", f.rows_per_sec);
    println!("  values/s:               {:.0}", f.values_per_sec);
    println!("  throttled requests:     {}", f.throttled_requests);
    println!(
        "  Parquet on disk:        {} bytes in {} files",
        f.parquet_bytes, f.parquet_files
    );
    println!("  bytes per value:        {:.3}", f.bytes_per_value);
    println!("  server peak RSS:        {:.0} MiB", f.server_peak_rss_mb);
    println!("  rows counted by SQL:    {}", f.rows_queried);
}

/// Every `.parquet` file below `dir` (the local magnetic store), sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Total bytes and count of the `.parquet` files below `dir`.
fn parquet_size(dir: &Path) -> (u64, usize) {
    let files = parquet_files(dir);
    let total = files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    (total, files.len())
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hourglass-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A server process started from this binary.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data_dir: &Path, memory_budget_mb: usize) -> anyhow::Result<Server> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--pg-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(["--memory-budget-mb", &memory_budget_mb.to_string()])
            .env("HOURGLASS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("http listening on ") {
                        break format!("http://{}", addr.trim());
                    }
                }
                _ => {
                    let _ = child.kill();
                    bail!("the server exited before listening");
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, url })
    }

    /// Peak resident set size (VmHWM) in MiB.
    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
