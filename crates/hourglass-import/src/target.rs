//! Where rows go. `--data-dir`: the storage engine opened in-process (the directory locked
//! against a server), tables and columns created in the catalog, batches committed through the
//! WAL, maintenance running as in the server, everything persisted at the end. `--server`: line
//! protocol over HTTP keep-alive connections, gzip (not to a loopback address), rejected lines
//! read back from the answer.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use hourglass_core::time::Precision;
use hourglass_core::{ErrorKind, SystemClock, TableProperties, TableWrite, WriteBatch};
use hourglass_storage::{Engine, EngineConfig};

use crate::convert::Window;
use crate::options::TargetSpec;
use hourglass_storage::DataDirLock;

/// An open target.
#[derive(Clone)]
pub enum Target {
    Engine(Arc<EngineTarget>),
    Http(Arc<HttpTarget>),
}

pub struct EngineTarget {
    pub engine: Arc<Engine>,
    stop: tokio::sync::watch::Sender<bool>,
    maintenance: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    _lock: DataDirLock,
}

pub struct HttpTarget {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Bodies are gzipped unless the server is on this host (loopback: compressing would only
    /// cost the CPU both share).
    gzip: bool,
}

/// Whether a URL names this host.
fn is_loopback(url: &str) -> bool {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        .unwrap_or_default();
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Rows a target refused: (source row or line, reason).
pub type TargetRejects = Vec<(u64, String)>;

/// How long to wait out a full memory store or a busy server.
const BACKOFF: Duration = Duration::from_millis(50);

impl Target {
    pub async fn open(spec: &TargetSpec) -> anyhow::Result<Target> {
        match spec {
            TargetSpec::DataDir {
                dir,
                object_store,
                memory_budget_bytes,
            } => {
                let lock = DataDirLock::acquire(dir)?;
                let mut config = EngineConfig::new(dir);
                config.object_store = object_store.clone();
                config.memory_budget_bytes = *memory_budget_bytes;
                let engine = Engine::open(config, Arc::new(SystemClock))
                    .await
                    .with_context(|| format!("opening data directory {}", dir.display()))?;
                let (stop, stop_rx) = tokio::sync::watch::channel(false);
                let maintenance = engine.spawn_maintenance(stop_rx);
                Ok(Target::Engine(Arc::new(EngineTarget {
                    engine,
                    stop,
                    maintenance: parking_lot::Mutex::new(Some(maintenance)),
                    _lock: lock,
                })))
            }
            TargetSpec::Server {
                url,
                token,
                concurrency,
            } => {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(*concurrency)
                    .timeout(Duration::from_secs(300))
                    .build()?;
                let base = url.trim_end_matches('/').to_string();
                let t = HttpTarget {
                    gzip: !is_loopback(&base),
                    client,
                    base,
                    token: token.clone(),
                };
                t.check().await?;
                Ok(Target::Http(Arc::new(t)))
            }
        }
    }

    /// `data-dir:<dir>` or `server:<url>`, for the state file.
    pub fn describe(spec: &TargetSpec) -> String {
        match spec {
            TargetSpec::DataDir { dir, .. } => format!(
                "data-dir:{}",
                dir.canonicalize().unwrap_or_else(|_| dir.clone()).display()
            ),
            TargetSpec::Server { url, .. } => format!("server:{}", url.trim_end_matches('/')),
        }
    }

    /// The write window of a table (`None` for a server: it checks, and its answer says).
    pub fn window(&self, db: &str, table: &str) -> Option<Window> {
        match self {
            Target::Engine(t) => {
                let catalog = t.engine.catalog.snapshot();
                let properties = catalog
                    .table(db, table)
                    .map_or(t.engine.config.default_properties, |d| d.properties);
                Some(Window {
                    properties,
                    now: t.engine.clock.now_nanos(),
                })
            }
            Target::Http(_) => None,
        }
    }

    /// The table as the target knows it (data directory only).
    pub fn existing_table(&self, db: &str, table: &str) -> Option<hourglass_storage::TableDef> {
        match self {
            Target::Engine(t) => t.engine.catalog.snapshot().table(db, table).cloned(),
            Target::Http(_) => None,
        }
    }

    /// Stops maintenance, persists the memory store and closes the engine (data directory).
    pub async fn finish(&self) -> anyhow::Result<()> {
        if let Target::Engine(t) = self {
            let _ = t.stop.send(true);
            let handle = t.maintenance.lock().take();
            if let Some(h) = handle {
                let _ = h.await;
            }
            let engine = t.engine.clone();
            let _ = tokio::task::spawn_blocking(move || engine.stop_writes()).await;
            t.engine
                .persist_all()
                .await
                .map_err(|e| anyhow!("persisting the imported rows: {e} (the WAL keeps them)"))?;
            t.engine.shutdown();
        }
        Ok(())
    }
}

impl EngineTarget {
    /// Creates the table's columns and commits the rows durably. Blocking.
    pub fn write(&self, db: &str, write: TableWrite) -> anyhow::Result<()> {
        let engine = &self.engine;
        let columns = hourglass_storage::engine::new_columns(&write.batch);
        let defaults: TableProperties = engine.config.default_properties;
        engine
            .catalog
            .ensure_columns(
                db,
                &write.table,
                defaults,
                &columns,
                engine.clock.now_nanos(),
            )
            .map_err(|e| anyhow!("table '{}': {}", write.table, e.message))?;
        engine.ensure_table_store(db, &write.table);
        loop {
            match engine.admit() {
                Ok(()) => break,
                Err(e) if e.kind == ErrorKind::ResourceExhausted => std::thread::sleep(BACKOFF),
                Err(e) => bail!("{}", e.message),
            }
        }
        engine
            .commit(WriteBatch {
                database: db.to_string(),
                tables: vec![write],
            })
            .map_err(|e| anyhow!("writing: {}", e.message))
    }

    /// Writes a line protocol body; the rejected lines (1-based in the body). Blocking.
    pub fn write_lines(
        &self,
        db: &str,
        body: &[u8],
        precision: Precision,
    ) -> anyhow::Result<(u64, TargetRejects)> {
        loop {
            match self.engine.write_line_protocol(db, body, precision, true) {
                Ok(out) => {
                    let rejects = out
                        .errors
                        .into_iter()
                        .map(|e| (e.line as u64, e.message))
                        .collect();
                    return Ok((out.rows_written as u64, rejects));
                }
                Err(e) if e.kind == ErrorKind::ResourceExhausted => std::thread::sleep(BACKOFF),
                Err(e) => bail!("{}", e.message),
            }
        }
    }
}

fn gzip(body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    Ok(enc.finish()?)
}

/// The server refused a body as larger than its limit (413).
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body too large (413)")
    }
}

impl std::error::Error for TooLarge {}

/// Lines the server lists per answer (`MAX_REPORTED_ERRORS` of the write handlers): an answer
/// listing this many may have left some out, so the body is split and sent again (writes are
/// idempotent upserts) until every rejected line is named.
const SERVER_LISTED_ERRORS: usize = 100;

impl HttpTarget {
    async fn check(&self) -> anyhow::Result<()> {
        let r = self
            .client
            .get(format!("{}/health", self.base))
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        if !r.status().is_success() {
            bail!(
                "server at {} answers /health with {}",
                self.base,
                r.status()
            );
        }
        Ok(())
    }

    /// Posts one body (with retries while the server is busy); the rejected lines (1-based).
    async fn post(&self, db: &str, body: Bytes, precision: &str) -> anyhow::Result<TargetRejects> {
        let payload = if self.gzip {
            Bytes::from(gzip(&body)?)
        } else {
            body
        };
        let mut attempt = 0u32;
        loop {
            let mut req = self
                .client
                .post(format!("{}/api/v3/write_lp", self.base))
                .query(&[
                    ("db", db),
                    ("precision", precision),
                    ("accept_partial", "true"),
                ])
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(payload.clone());
            if self.gzip {
                req = req.header("Content-Encoding", "gzip");
            }
            if let Some(t) = &self.token {
                req = req.header("Authorization", format!("Token {t}"));
            }
            let r = req
                .send()
                .await
                .with_context(|| format!("writing to {}", self.base))?;
            let status = r.status();
            if status.is_success() {
                return Ok(Vec::new());
            }
            let text = r.text().await.unwrap_or_default();
            if (status.as_u16() == 503 || status.as_u16() == 429) && attempt < 600 {
                attempt += 1;
                tokio::time::sleep(BACKOFF * attempt.min(20)).await;
                continue;
            }
            if status.as_u16() == 413 {
                return Err(anyhow!(TooLarge));
            }
            if status.as_u16() == 400 {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if let Some(data) = v.get("data").and_then(|d| d.as_array()) {
                    return Ok(data
                        .iter()
                        .map(|e| {
                            (
                                e.get("line_number").and_then(|n| n.as_u64()).unwrap_or(0),
                                e.get("error_message")
                                    .and_then(|m| m.as_str())
                                    .unwrap_or_default()
                                    .to_string(),
                            )
                        })
                        .collect());
                }
            }
            bail!("server at {} refused a write ({status}): {text}", self.base);
        }
    }

    /// Writes a body; every rejected line (1-based), all of them even past the server's listing
    /// limit.
    pub async fn write_lines(
        &self,
        db: &str,
        body: Bytes,
        precision: &str,
    ) -> anyhow::Result<TargetRejects> {
        let (rejects, too_large) = match self.post(db, body.clone(), precision).await {
            Ok(r) => (r, false),
            // Past the server's --max-body-mb: halves are sent instead.
            Err(e) if e.is::<TooLarge>() => (Vec::new(), true),
            Err(e) => return Err(e),
        };
        if !too_large && rejects.len() < SERVER_LISTED_ERRORS {
            return Ok(rejects);
        }
        // Split at a line end near the middle and send both halves again.
        let lines = memchr::memchr_iter(b'\n', &body).count();
        if lines <= 1 {
            if too_large {
                bail!(
                    "server at {} refused a single line as too large (413)",
                    self.base
                );
            }
            return Ok(rejects);
        }
        let mid_line = lines / 2;
        let cut = memchr::memchr_iter(b'\n', &body)
            .nth(mid_line - 1)
            .map_or(body.len(), |i| i + 1);
        let (a, b) = (body.slice(..cut), body.slice(cut..));
        let mut all = Box::pin(self.write_lines(db, a, precision)).await?;
        let second = Box::pin(self.write_lines(db, b, precision)).await?;
        all.extend(second.into_iter().map(|(l, m)| (l + mid_line as u64, m)));
        Ok(all)
    }
}

/// The rows of a table batch or chunk a target wrote: `Ok(rejected)`.
pub async fn write_table(
    target: &Target,
    db: &str,
    write: TableWrite,
) -> anyhow::Result<TargetRejects> {
    match target {
        Target::Engine(t) => {
            let t = t.clone();
            let db = db.to_string();
            tokio::task::spawn_blocking(move || t.write(&db, write).map(|_| Vec::new()))
                .await
                .map_err(|e| anyhow!("write task failed: {e}"))?
        }
        Target::Http(h) => {
            let table = write.table.clone();
            let encoded = tokio::task::spawn_blocking(move || {
                crate::lp_encode::encode(&table, &write.batch, &write.sources)
            })
            .await
            .map_err(|e| anyhow!("encode task failed: {e}"))??;
            let mut rejects: TargetRejects = encoded
                .rejects
                .into_iter()
                .map(|(s, r)| (u64::from(s), r))
                .collect();
            if !encoded.body.is_empty() {
                let lines = h
                    .write_lines(db, Bytes::from(encoded.body), "nanosecond")
                    .await?;
                rejects.extend(lines.into_iter().map(|(line, reason)| {
                    let source = encoded
                        .sources
                        .get((line as usize).saturating_sub(1))
                        .copied()
                        .unwrap_or(0);
                    (u64::from(source), reason)
                }));
            }
            Ok(rejects)
        }
    }
}

/// Writes a line protocol chunk: (rejected lines, 1-based in the chunk).
pub async fn write_lines(
    target: &Target,
    db: &str,
    body: Vec<u8>,
    precision: Precision,
) -> anyhow::Result<TargetRejects> {
    match target {
        Target::Engine(t) => {
            let t = t.clone();
            let db = db.to_string();
            tokio::task::spawn_blocking(move || t.write_lines(&db, &body, precision).map(|r| r.1))
                .await
                .map_err(|e| anyhow!("write task failed: {e}"))?
        }
        Target::Http(h) => {
            let p = match precision {
                Precision::Second => "second",
                Precision::Millisecond => "millisecond",
                Precision::Microsecond => "microsecond",
                _ => "nanosecond",
            };
            h.write_lines(db, Bytes::from(body), p).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_get_plain_bodies() {
        assert!(is_loopback("http://127.0.0.1:8086"));
        assert!(is_loopback("http://localhost:8086/"));
        assert!(is_loopback("http://[::1]:8086"));
        assert!(!is_loopback("https://db.example.com"));
        assert!(!is_loopback("http://10.0.0.2:8086"));
    }
}
