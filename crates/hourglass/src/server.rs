//! Wiring and lifecycle: open the storage engine, start maintenance and the HTTP listener, and
//! shut down in order (stop accepting, drain requests, commit what was acknowledged, persist,
//! close the WAL).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hourglass_auth::{AuditLog, AuthStore, Security};
use hourglass_core::connections::{Admission, ConnectionLimits};
use hourglass_core::{SharedClock, TableProperties};
use hourglass_query::session::QueryLimits;
use hourglass_query::QueryEngine;
use hourglass_storage::{Engine, EngineConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::ServeArgs;
use crate::http::{self, AppState};

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub engine: EngineConfig,
    pub http_addr: SocketAddr,
    pub pg_addr: SocketAddr,
    pub query_limits: QueryLimits,
    pub max_body_bytes: usize,
    /// Run background maintenance (tests that drive it by hand turn it off).
    pub background_maintenance: bool,
    pub timestream: hourglass_timestream::TimestreamConfig,
    /// Authenticate every interface against the users file.
    pub require_auth: bool,
    /// Bind non-loopback addresses without authentication anyway.
    pub allow_insecure_bind: bool,
    /// TLS certificate and key (PEM) for HTTP and PostgreSQL.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Refuse connections without TLS on every interface (needs `tls`).
    pub require_tls: bool,
    /// Connection limits and timeouts of both listeners.
    pub connections: ConnectionConfig,
    /// Scheduled queries: catch-up and late-data settings (its `data_dir` is the engine's).
    pub scheduler: hourglass_scheduler::SchedulerConfig,
    /// MQTT subscriptions (`[[mqtt]]` sections of the configuration file; default none).
    pub mqtt: Vec<hourglass_mqtt::SubscriptionConfig>,
    /// Alert rules' notification targets.
    pub alerts: crate::alerts::AlertsConfig,
}

/// Connection limits and timeouts (`--max-connections` and friends; see docs/security.md).
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Connections over HTTP and PostgreSQL together; 0: automatic, from the open-file limit.
    pub max_connections: usize,
    /// Connections one peer address may hold (IPv6: one /64); 0: no limit.
    pub max_per_peer: usize,
    /// Time to receive a request head (and, with TLS, to finish the handshake).
    pub header_read_timeout: Duration,
    /// Time a connection may wait idle between requests.
    pub idle_timeout: Duration,
    /// Time to receive a request body, plus one second per KiB received.
    pub body_read_timeout: Duration,
    /// Time to finish PostgreSQL startup and authentication.
    pub pg_startup_timeout: Duration,
    /// How long shutdown lets requests and statements in flight finish.
    pub shutdown_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_connections: 0,
            max_per_peer: hourglass_core::connections::DEFAULT_MAX_PER_PEER,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            pg_startup_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionConfig {
    fn from_args(args: &ServeArgs) -> Self {
        // At least a second, at most a week.
        let secs = |s: u64| Duration::from_secs(s.clamp(1, 7 * 86_400));
        ConnectionConfig {
            max_connections: args.max_connections,
            max_per_peer: args.max_connections_per_peer,
            header_read_timeout: secs(args.header_read_timeout_secs),
            idle_timeout: secs(args.idle_timeout_secs),
            body_read_timeout: secs(args.body_read_timeout_secs),
            pg_startup_timeout: secs(args.pg_startup_timeout_secs),
            shutdown_timeout: secs(args.shutdown_timeout_secs),
        }
    }

    /// The limits of this process: the global one from the open-file limit now (after
    /// `raise_open_file_limit`), an explicit one lowered to it with a warning.
    fn admission(&self) -> Admission {
        let open_files = open_file_limit();
        let (max_connections, lowered) = hourglass_core::connections::effective_max_connections(
            self.max_connections,
            open_files,
        );
        if lowered {
            tracing::warn!(
                configured = self.max_connections,
                max_connections,
                open_file_limit = open_files,
                "--max-connections is above the open-file limit less the descriptors kept for \
                 storage; lowered"
            );
        }
        tracing::info!(
            max_connections,
            max_per_peer = self.max_per_peer,
            open_file_limit = open_files,
            "connection limits"
        );
        Admission::new(ConnectionLimits {
            max_connections,
            max_per_peer: self.max_per_peer,
        })
    }
}

/// The soft limit of open files of this process, if known.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::getrlimit(rlimit::Resource::NOFILE) {
            Ok((soft, _)) if soft != rlimit::INFINITY => Some(soft),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open file limit");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

impl ServerConfig {
    /// Defaults for a data directory, listening on an ephemeral loopback port.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        ServerConfig {
            engine: EngineConfig::new(&data_dir),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pg_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            query_limits: QueryLimits::default(),
            max_body_bytes: 64 << 20,
            background_maintenance: false,
            timestream: Default::default(),
            require_auth: false,
            allow_insecure_bind: false,
            tls: None,
            require_tls: false,
            connections: ConnectionConfig {
                shutdown_timeout: Duration::from_secs(5),
                ..ConnectionConfig::default()
            },
            scheduler: hourglass_scheduler::SchedulerConfig::new(data_dir.clone()),
            mqtt: Vec::new(),
            alerts: Default::default(),
        }
    }

    pub fn from_args(args: &ServeArgs) -> Self {
        let mut engine = EngineConfig::new(&args.data_dir);
        engine.object_store = args.object_store.clone();
        engine.memory_budget_bytes = args.memory_budget_mb.saturating_mul(1 << 20);
        engine.default_properties = TableProperties {
            memory_retention_hours: args.default_memory_retention_hours,
            magnetic_retention_days: args.default_magnetic_retention_days,
            magnetic_writes_enabled: args.default_magnetic_writes,
        };
        engine.maintenance_interval = Duration::from_millis(args.maintenance_interval_ms.max(10));
        engine.persist_min_bytes = args.persist_min_bytes;
        engine.persist_max_wait = Duration::from_millis(args.persist_max_wait_ms);
        engine.compaction_min_files = args.compaction_min_files.max(2);
        engine.rewrite_days_by_series = args.rewrite_days_by_series;
        ServerConfig {
            engine,
            http_addr: args.http_addr,
            pg_addr: args.pg_addr,
            query_limits: QueryLimits {
                memory_bytes: args.query_memory_mb.saturating_mul(1 << 20),
                timeout: Duration::from_secs(args.query_timeout_secs.max(1)),
            },
            max_body_bytes: args.max_body_mb.saturating_mul(1 << 20),
            background_maintenance: true,
            timestream: hourglass_timestream::TimestreamConfig {
                advertised_endpoint: args.advertised_endpoint.clone(),
                unload: std::sync::Arc::new(
                    args.unload_buckets
                        .clone()
                        .protecting(args.object_store.as_deref()),
                ),
            },
            require_auth: args.require_auth,
            allow_insecure_bind: args.allow_insecure_bind,
            tls: args.tls_cert.clone().zip(args.tls_key.clone()),
            require_tls: args.require_tls.unwrap_or(args.tls_cert.is_some()),
            connections: ConnectionConfig::from_args(args),
            scheduler: hourglass_scheduler::SchedulerConfig {
                max_scheduled_queries: args.max_scheduled_queries,
                catch_up: args.scheduled_query_catch_up.max(1),
                late_data_invocations: args.late_data_runs,
                late_data_window: Duration::from_secs(
                    args.late_data_window_hours.saturating_mul(3600),
                ),
                late_data_delay: (args.late_data_delay_ms > 0)
                    .then(|| Duration::from_millis(args.late_data_delay_ms)),
                ..hourglass_scheduler::SchedulerConfig::new(args.data_dir.clone())
            },
            mqtt: Vec::new(),
            alerts: crate::alerts::AlertsConfig {
                alertmanager_urls: args.alertmanager_url.clone(),
                webhook_urls: args.alert_webhook_url.clone(),
            },
        }
    }
}

/// A running server.
pub struct RunningServer {
    pub http_addr: SocketAddr,
    /// The bound PostgreSQL wire protocol address.
    pub pg_addr: SocketAddr,
    pub config: ServerConfig,
    pub engine: Arc<Engine>,
    pub query: QueryEngine,
    stop: watch::Sender<bool>,
    http_task: JoinHandle<()>,
    /// Connection limits and counts of both listeners.
    pub connections: Admission,
    pg: hourglass_pgwire::PgServer,
    maintenance_task: Option<JoinHandle<()>>,
    /// Scheduled queries (installed on the Timestream API).
    pub scheduler: Arc<hourglass_scheduler::Scheduler>,
    scheduler_task: JoinHandle<()>,
    /// Held until the server is shut down or aborted (dropped with it).
    _data_dir_lock: hourglass_storage::DataDirLock,
    /// Batch load tasks (installed on the Timestream API).
    pub batch_load: Arc<hourglass_batchload::Loader>,
    /// MQTT subscriptions (their counters in `/metrics`).
    pub mqtt: Arc<hourglass_mqtt::MqttSources>,
    /// Alert rules and their evaluation task.
    pub alerts: crate::alerts::Alerts,
}

/// Refuses to serve non-loopback addresses without authentication unless overridden.
fn check_bind(config: &ServerConfig) -> anyhow::Result<()> {
    if config.require_tls && config.tls.is_none() {
        anyhow::bail!("--require-tls needs a certificate: add --tls-cert and --tls-key");
    }
    if config.require_auth || config.allow_insecure_bind {
        return Ok(());
    }
    for (what, addr) in [("HTTP", config.http_addr), ("PostgreSQL", config.pg_addr)] {
        if !addr.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve {what} on the non-loopback address {addr} without \
                 authentication: add --require-auth (and users with `hourglass user add`), or \
                 --allow-insecure-bind to accept anyone who can reach the port"
            );
        }
    }
    Ok(())
}

/// Users (with `--require-auth`) and the audit log of the data directory.
fn security(config: &ServerConfig) -> anyhow::Result<Security> {
    let dir = &config.engine.data_dir;
    let audit = Arc::new(AuditLog::open(dir).context("opening the audit log")?);
    let store = if config.require_auth {
        Some(Arc::new(
            AuthStore::open(dir).context("loading the users file")?,
        ))
    } else {
        None
    };
    Ok(Security {
        store,
        audit: Some(audit),
        require_tls: config.require_tls,
    })
}

/// Opens the data directory (replaying the WAL) and starts serving.
pub async fn start(config: ServerConfig, clock: SharedClock) -> anyhow::Result<RunningServer> {
    check_bind(&config)?;
    let tls = match &config.tls {
        Some((cert, key)) => Some((
            crate::tls::server_config(cert, key, &[b"http/1.1"])?,
            crate::tls::server_config(cert, key, &[b"postgresql"])?,
        )),
        None => None,
    };
    // One process at a time in a data directory (`hourglass import --data-dir` takes it too).
    let data_dir_lock = hourglass_storage::DataDirLock::acquire(&config.engine.data_dir)?;
    let engine = Engine::open(config.engine.clone(), clock)
        .await
        .with_context(|| {
            format!(
                "opening data directory {}",
                config.engine.data_dir.display()
            )
        })?;
    let query = QueryEngine::new(engine.clone(), config.query_limits.clone())?;
    let listener = http::listener::bind(config.http_addr)
        .with_context(|| format!("binding HTTP address {}", config.http_addr))?;
    let http_addr = listener.local_addr()?;
    let security = security(&config)?;
    let limits = &config.connections;
    let admission = limits.admission();
    let pg = hourglass_pgwire::PgServer::start_with(
        config.pg_addr,
        query.clone(),
        security.clone(),
        tls.as_ref().map(|(_, pg)| pg.clone()),
        hourglass_pgwire::PgSettings {
            admission: admission.clone(),
            startup_timeout: limits.pg_startup_timeout,
            shutdown_timeout: limits.shutdown_timeout,
            unload: config.timestream.unload.clone(),
        },
    )
    .await
    .with_context(|| format!("binding PostgreSQL address {}", config.pg_addr))?;
    let (stop, stop_rx) = watch::channel(false);
    let timestream = hourglass_timestream::TimestreamState {
        engine: engine.clone(),
        query: query.clone(),
        config: config.timestream.clone(),
        served_address: http_addr.to_string(),
        served_tls: config.tls.is_some(),
        security: security.clone(),
    };
    let timestream = Arc::new(hourglass_timestream::Service::new(timestream));
    let scheduler = hourglass_scheduler::Scheduler::open(
        timestream.clone(),
        hourglass_scheduler::SchedulerConfig {
            data_dir: config.engine.data_dir.clone(),
            ..config.scheduler.clone()
        },
    )
    .map_err(|e| anyhow::anyhow!("opening scheduled queries: {e}"))?;
    scheduler.install();
    let scheduler_task = scheduler.spawn(stop_rx.clone());
    let batch_load = hourglass_batchload::Loader::open(
        timestream.clone(),
        &config.engine.data_dir,
        hourglass_batchload::LoaderConfig::from_env(),
    )
    .map_err(|e| anyhow::anyhow!("opening batch load tasks: {e}"))?;
    batch_load.install();
    let mqtt = Arc::new(
        hourglass_mqtt::start(config.mqtt.clone(), engine.clone())
            .map_err(|e| anyhow::anyhow!("starting MQTT subscriptions: {e}"))?,
    );
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let alerts = crate::alerts::Alerts::start(
        &config.alerts,
        &config.engine.data_dir,
        query.clone(),
        security.clone(),
        &format!("{scheme}://{http_addr}"),
        stop_rx.clone(),
    )?;
    let state = AppState::new(engine.clone(), query.clone(), config.max_body_bytes)
        .with_alerts(alerts.evaluator.clone())
        .with_security(security.clone())
        .with_connections(admission.clone())
        .with_scheduler(scheduler.clone())
        .with_unload(config.timestream.unload.clone())
        .with_mqtt(mqtt.clone());
    let router = http::router(state, timestream);
    let http_tls = tls.map(|(http, _)| http);
    let http_settings = http::serve::HttpSettings {
        timeouts: http::serve::Timeouts {
            header_read: limits.header_read_timeout,
            idle: limits.idle_timeout,
            body_read: limits.body_read_timeout,
        },
        shutdown_timeout: limits.shutdown_timeout,
    };
    let listener = http::listener::Listener::new(listener, admission.clone(), http_tls.is_some());
    let http_task = tokio::spawn(http::serve::serve(
        listener,
        http_tls,
        router,
        http_settings,
        stop_rx.clone(),
    ));
    let maintenance_task = config
        .background_maintenance
        .then(|| engine.spawn_maintenance(stop_rx));
    Ok(RunningServer {
        http_addr,
        pg_addr: pg.addr,
        pg,
        config,
        engine,
        query,
        stop,
        http_task,
        connections: admission,
        maintenance_task,
        scheduler,
        scheduler_task,
        _data_dir_lock: data_dir_lock,
        batch_load,
        mqtt,
        alerts,
    })
}

impl RunningServer {
    /// Prints what is served and where (stdout; tests read the `http listening on` line).
    pub fn print_banner(&self) {
        println!("Hourglass {} serving", env!("CARGO_PKG_VERSION"));
        println!(
            "  data directory: {} (magnetic store: {})",
            self.config.engine.data_dir.display(),
            self.engine.magnetic.location
        );
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        println!("http listening on {}", self.http_addr);
        println!(
            "  {scheme}; authentication {}",
            if self.config.require_auth {
                "required"
            } else {
                "off"
            }
        );
        println!("  line protocol: POST /write, /api/v2/write, /api/v3/write_lp");
        println!("  SQL: GET|POST /api/v3/query_sql   health: /health   metrics: /metrics");
        println!("postgres listening on {}", self.pg_addr);
    }

    /// Ordered shutdown: stop accepting; close idle connections and half-sent requests; let
    /// requests and statements in flight finish within the shutdown timeout, then close the
    /// rest; stop maintenance, commit every acknowledged write, persist the memory store
    /// (bounded), close the WAL.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let http_task = self.http_task;
        tokio::join!(self.pg.shutdown(), async {
            let _ = http_task.await;
        });
        if let Some(t) = self.maintenance_task {
            let _ = t.await;
        }
        // A run in flight finishes within the shutdown timeout; past it, it is stopped (its
        // writes so far are durable; the run is not recorded and runs again after restart).
        let mut scheduler_task = self.scheduler_task;
        let limit = self.config.connections.shutdown_timeout;
        if tokio::time::timeout(limit, &mut scheduler_task)
            .await
            .is_err()
        {
            scheduler_task.abort();
        }
        // Batch load runs stop after their current commit (PROGRESS_STOPPED, resumable).
        self.batch_load.shutdown(limit).await;
        // MQTT: the batch being written is committed and acknowledged; the rest is redelivered.
        self.mqtt.stop(limit).await;
        // Alert rules: the evaluation in flight finishes, the states are saved.
        self.alerts.shutdown(limit).await;
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.stop_writes()).await;
        match tokio::time::timeout(Duration::from_secs(60), self.engine.persist_all()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "final persist failed; the WAL keeps the data")
            }
            Err(_) => tracing::warn!("final persist took over 60 s; the WAL keeps the data"),
        }
        self.engine.shutdown();
    }

    /// Simulates a crash: stops serving without persisting or closing anything cleanly.
    pub async fn abort(self) {
        self.http_task.abort();
        self.pg.abort();
        if let Some(t) = self.maintenance_task {
            t.abort();
        }
        self.scheduler_task.abort();
        self.batch_load.abort();
        self.mqtt.abort();
        self.alerts.abort();
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.stop_writes()).await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
