//! Starting real servers in-process on loopback port 0, with an injected clock, and talking to
//! them over HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hourglass::server::{self, RunningServer, ServerConfig};
use hourglass_core::time::NANOS_PER_DAY;
use hourglass_core::ManualClock;

/// 2024-01-02T00:00:00Z.
pub const DEFAULT_NOW: i64 = 19_724 * NANOS_PER_DAY;

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub clock: Arc<ManualClock>,
    pub dir: PathBuf,
    pub config: ServerConfig,
    pub http: reqwest::Client,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut t = Self::start_in(&dir, ServerConfig::for_tests(&dir)).await;
        t._tmp = Some(tmp);
        t
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut config = ServerConfig::for_tests(&dir);
        configure(&mut config);
        let mut t = Self::start_in(&dir, config).await;
        t._tmp = Some(tmp);
        t
    }

    pub async fn start_in(dir: &Path, config: ServerConfig) -> TestServer {
        let clock = Arc::new(ManualClock::new(DEFAULT_NOW));
        let server = server::start(config.clone(), clock.clone())
            .await
            .expect("server starts");
        TestServer {
            server: Some(server),
            clock,
            dir: dir.to_path_buf(),
            config,
            http: reqwest::Client::new(),
            _tmp: None,
        }
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().expect("server is running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().http_addr)
    }

    /// Clean shutdown then start again on the same data directory (the clock is kept).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.reopen().await;
    }

    /// Stops without persisting or closing cleanly (as a crash would), then starts again.
    pub async fn crash_and_restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort().await;
        }
        self.reopen().await;
    }

    async fn reopen(&mut self) {
        let server = server::start(self.config.clone(), self.clock.clone())
            .await
            .expect("server restarts");
        self.server = Some(server);
    }

    pub async fn write_lp(&self, db: &str, body: &str) -> (u16, String) {
        let r = self
            .http
            .post(self.url(&format!("/api/v3/write_lp?db={db}")))
            .body(body.to_string())
            .send()
            .await
            .expect("write request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// Runs SQL over HTTP and returns the JSON rows.
    pub async fn query(&self, db: &str, sql: &str) -> Vec<serde_json::Value> {
        let (status, body) = self.query_raw(db, sql, "json").await;
        assert_eq!(status, 200, "query {sql:?} failed: {body}");
        serde_json::from_str(&body).expect("json result")
    }

    pub async fn query_raw(&self, db: &str, sql: &str, format: &str) -> (u16, String) {
        let r = self
            .http
            .post(self.url("/api/v3/query_sql"))
            .json(&serde_json::json!({"db": db, "q": sql, "format": format}))
            .send()
            .await
            .expect("query request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// The value of the `/metrics` sample named `sample` (a metric name with its labels, as
    /// written there).
    pub async fn metric(&self, sample: &str) -> f64 {
        let body = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        let prefix = format!("{sample} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{body}"))
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

pub use hourglass::bench::ingest::parquet_files;

/// The Parquet data files under `dir`, without their last-rows sidecars.
pub fn data_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    parquet_files(dir)
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".last.parquet"))
        .collect()
}
