//! Timestream batch load for Hourglass: `CreateBatchLoadTask`, `DescribeBatchLoadTask`,
//! `ListBatchLoadTasks` and `ResumeBatchLoadTask`, run by the server.
//!
//! A task reads every CSV object under an S3 prefix, maps its rows to records by a Timestream
//! `DataModel` and writes them through the WriteRecords path
//! ([`hourglass_timestream::write::write_record_objects`]: the same checks, versions, durable
//! commits and back-pressure as any write), in the background, keeping good rows when others are
//! bad, and writes a report of the rejected rows to the report location. Tasks are durable
//! ([`store`]); a task interrupted by a restart is `PROGRESS_STOPPED` afterwards and
//! `ResumeBatchLoadTask` continues it from its checkpoint, the position after the last committed
//! rows, so that no row is lost or written twice. Semantics and file format:
//! `docs/format/batch-load.md`.
//!
//! | module | what |
//! |---|---|
//! | [`csv_rows`] | CSV by `CsvConfiguration` (pure) |
//! | [`data_model`] | `DataModel` and CSV rows → WriteRecords records, with per-row rejections (pure) |
//! | [`task`] | a task's state: status, progress, checkpoint, rejected rows |
//! | [`store`] | the durable store (`batch_load/<TaskId>.json` in the data directory) |
//! | [`source`] | S3 buckets of sources, data models and reports |
//! | [`api`] | the operations, in Timestream's shapes |
//! | [`runner`] | one run of a task: read, map, write, checkpoint, report |
//!
//! The [`Loader`] is installed on the Timestream API's service
//! ([`hourglass_timestream::batch_load`]) by the server.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod csv_rows;
pub mod data_model;
pub mod runner;
pub mod source;
pub mod store;
pub mod task;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use hourglass_auth::Principal;
use hourglass_timestream::protocol::ApiError;
use hourglass_timestream::Service;
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::store::Store;
use crate::task::Status;

/// How long a stopped task stays resumable.
pub const RESUMABLE_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// Settings of the loader.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Records written per commit (each commit is followed by a checkpoint).
    pub records_per_commit: usize,
    /// Tasks that run at the same time (others wait, CREATED or PENDING_RESUME).
    pub concurrent_tasks: usize,
    /// A pause after each commit (0: none); throttles a load, and lets tests catch a task midway.
    pub commit_pause: Duration,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            records_per_commit: 5_000,
            concurrent_tasks: 2,
            commit_pause: Duration::ZERO,
        }
    }
}

impl LoaderConfig {
    /// The defaults, changed by `HOURGLASS_BATCH_LOAD_RECORDS_PER_COMMIT`,
    /// `HOURGLASS_BATCH_LOAD_CONCURRENT_TASKS` and `HOURGLASS_BATCH_LOAD_COMMIT_PAUSE_MS`.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let d = LoaderConfig::default();
        LoaderConfig {
            records_per_commit: var("HOURGLASS_BATCH_LOAD_RECORDS_PER_COMMIT")
                .map_or(d.records_per_commit, |v| v.clamp(1, 1_000_000) as usize),
            concurrent_tasks: var("HOURGLASS_BATCH_LOAD_CONCURRENT_TASKS")
                .map_or(d.concurrent_tasks, |v| v.clamp(1, 64) as usize),
            commit_pause: var("HOURGLASS_BATCH_LOAD_COMMIT_PAUSE_MS")
                .map_or(d.commit_pause, |v| Duration::from_millis(v.min(60_000))),
        }
    }
}

/// The batch load tasks of a server and the runs in flight.
pub struct Loader {
    pub(crate) service: Arc<Service>,
    pub(crate) store: Store,
    pub(crate) config: LoaderConfig,
    /// Runs in flight (or waiting for a slot), with their task ids.
    running: Mutex<Vec<(String, JoinHandle<()>)>>,
    permits: Arc<Semaphore>,
    /// Set at shutdown: runs stop at their next checkpoint (PROGRESS_STOPPED).
    pub(crate) stopping: AtomicBool,
    /// This loader (the API's trait object gets `&self`; runs need the `Arc`).
    me: Weak<Loader>,
}

impl Loader {
    /// Opens the tasks of `data_dir` for the API `service`. Tasks that were running when the
    /// server stopped become PROGRESS_STOPPED (resumable, as AWS leaves an interrupted task);
    /// tasks that had not started, or were waiting to resume, are started by [`Loader::install`].
    pub fn open(
        service: Arc<Service>,
        data_dir: &Path,
        config: LoaderConfig,
    ) -> Result<Arc<Loader>, String> {
        let store = Store::open(data_dir)?;
        Ok(Loader::with_store(service, store, config))
    }

    /// A loader over `store` (tests use [`Store::in_memory`]).
    pub fn with_store(service: Arc<Service>, store: Store, config: LoaderConfig) -> Arc<Loader> {
        let permits = Arc::new(Semaphore::new(config.concurrent_tasks.max(1)));
        Arc::new_cyclic(|me| Loader {
            service,
            store,
            config,
            running: Mutex::new(Vec::new()),
            permits,
            stopping: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    /// Installs this loader on its API service, marks interrupted tasks PROGRESS_STOPPED and
    /// starts the tasks that wait to run. Needs a tokio runtime.
    pub fn install(self: &Arc<Self>) {
        self.service.install_batch_load(self.clone());
        let now = self.now();
        for t in self.store.all() {
            match t.status {
                Status::InProgress => {
                    let stopped = self.store.update(&t.task_id, |t| {
                        t.status = Status::ProgressStopped;
                        t.resumable_until = Some(now.saturating_add(RESUMABLE_FOR.as_nanos() as i64));
                        t.error_message = Some(
                            "The server stopped while the task ran; resume it with ResumeBatchLoadTask."
                                .into(),
                        );
                        t.last_updated_time = now;
                        Ok(())
                    });
                    if let Err(e) = stopped {
                        tracing::error!(task = %t.task_id, error = %e, "cannot record a stopped batch load task");
                    }
                }
                Status::Created | Status::PendingResume => self.start(&t.task_id),
                _ => {}
            }
        }
    }

    /// The engine's time, nanoseconds.
    pub fn now(&self) -> i64 {
        self.service.engine.clock.now_nanos()
    }

    /// The store (tests read it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts a run of task `id` in the background. A run claims its task (CREATED or
    /// PENDING_RESUME → IN_PROGRESS) atomically, so a second start of a task that is already
    /// running does nothing.
    pub(crate) fn start(self: &Arc<Self>, id: &str) {
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        let me = self.clone();
        let task_id = id.to_string();
        let handle = tokio::spawn(async move {
            let Ok(_permit) = me.permits.clone().acquire_owned().await else {
                return;
            };
            me.run(&task_id).await;
        });
        let mut running = self.running.lock();
        running.retain(|(_, h)| !h.is_finished());
        running.push((id.to_string(), handle));
    }

    /// Stops the runs in flight: each stops after its current commit and is recorded
    /// PROGRESS_STOPPED; runs still going after `limit` are aborted (their last checkpoint
    /// stands, and the task is PROGRESS_STOPPED after the restart).
    pub async fn shutdown(&self, limit: Duration) {
        self.stopping.store(true, Ordering::Relaxed);
        let handles: Vec<JoinHandle<()>> = self.running.lock().drain(..).map(|(_, h)| h).collect();
        let deadline = tokio::time::Instant::now() + limit;
        for mut h in handles {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                h.abort();
            }
        }
    }

    /// Aborts the runs in flight at once (a simulated crash).
    pub fn abort(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        for (_, h) in self.running.lock().drain(..) {
            h.abort();
        }
    }
}

#[async_trait]
impl hourglass_timestream::batch_load::BatchLoad for Loader {
    async fn call(
        &self,
        principal: &Arc<Principal>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        // The operations start runs, which hold the loader.
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| ApiError::internal("the batch loader is shutting down"))?;
        me.call_operation(principal, operation, body).await
    }
}

#[cfg(test)]
mod tests;
