//! Scheduled queries: Timestream's ScheduledQuery API, run by Hourglass.
//!
//! | module | what |
//! |---|---|
//! | [`schedule`] | AWS `cron(...)` / `rate(...)` expressions and their next firing time |
//! | [`definition`] | a scheduled query's definition and the state its runs leave |
//! | [`store`] | the durable store (`scheduled_queries/<id>.json` in the data directory) |
//! | [`api`] | the API operations, answered in Timestream's shapes |
//! | [`runner`] | one run: bind `@scheduled_runtime`, query, write, report |
//! | [`target`] | result rows to Timestream records by `TargetConfiguration` |
//! | [`metrics`] | counters for `/metrics` |
//! | [`report`] | error reports through the object-store layer |
//! | [`notify`] | SNS notifications of state changes and runs |
//! | [`runs_log`] | the log of runs behind `system.scheduled_query_runs` |
//! | [`late_data`] | what each run read, and reruns when data lands there late |
//!
//! The [`Scheduler`] is installed on the Timestream API's service
//! ([`hourglass_timestream::scheduled`]); [`Scheduler::spawn`] starts the loop that runs what
//! comes due on the engine's clock, one run of a scheduled query at a time, in order of
//! invocation time. Semantics: `docs/scheduled-queries.md`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod definition;
pub mod late_data;
pub mod metrics;
pub mod notify;
pub mod report;
pub mod runner;
pub mod runs_log;
pub mod schedule;
pub mod store;
pub mod target;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hourglass_auth::Principal;
use hourglass_timestream::protocol::ApiError;
use hourglass_timestream::Service;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::definition::{Definition, RunSummary, State};
use crate::notify::{Notifier, SnsSettings};
use crate::runner::Trigger;
use crate::runs_log::{RunRecord, RunsLog};
use crate::store::{Entry, Store};

pub use schedule::Schedule;

/// Settings of the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Where `scheduled_queries/` lives (and the base of relative report directories).
    pub data_dir: PathBuf,
    /// Scheduled queries the server keeps (AWS's quota: 10,000).
    pub max_scheduled_queries: usize,
    /// Missed automatic runs of one query caught up at start (the newest ones, oldest first);
    /// older missed runs are skipped.
    pub catch_up: usize,
    /// Late data: invocations per query whose covered ranges are kept ([`late_data`]).
    pub late_data_invocations: usize,
    /// Late data: covered ranges of invocations older than this before a query's newest are
    /// dropped.
    pub late_data_window: Duration,
    /// Late data: how long a stale invocation waits for more late writes before its rerun;
    /// `None`: the engine's maintenance interval.
    pub late_data_delay: Option<Duration>,
    /// Records per commit of a run's writes ([`runner::RECORDS_PER_COMMIT`]).
    pub records_per_commit: usize,
}

impl SchedulerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        SchedulerConfig {
            data_dir,
            max_scheduled_queries: 10_000,
            catch_up: 10,
            late_data_invocations: 1_000,
            late_data_window: Duration::from_secs(7 * 24 * 3600),
            late_data_delay: None,
            records_per_commit: runner::RECORDS_PER_COMMIT,
        }
    }
}

/// The scheduled queries of a server and the runs waiting for them.
pub struct Scheduler {
    pub(crate) service: Arc<Service>,
    pub(crate) store: Store,
    pub(crate) config: SchedulerConfig,
    /// Runs waiting besides the schedule's (manual, late data), by ARN, in arrival order.
    queued: Mutex<BTreeMap<String, VecDeque<(i64, Trigger)>>>,
    wake: Notify,
    /// SNS notifications (settings from the environment).
    pub notifier: Notifier,
    /// `system.scheduled_query_runs`.
    pub runs_log: RunsLog,
    /// What runs read, and the runs late writes made stale.
    pub(crate) late_data: late_data::LateData,
    /// Runs finished since start (`/metrics`).
    pub runs: metrics::RunCounters,
}

impl Scheduler {
    /// Opens the store of `config.data_dir` for the API `service`.
    pub fn open(service: Arc<Service>, config: SchedulerConfig) -> Result<Arc<Scheduler>, String> {
        let store = Store::open(&config.data_dir)?;
        let mut scheduler = Scheduler::with_store(service, config, store);
        scheduler.runs_log = RunsLog::open(&scheduler.config.data_dir);
        Ok(Arc::new(scheduler))
    }

    /// A scheduler over `store` (tests use [`Store::in_memory`]); its runs are not logged.
    pub fn with_store(service: Arc<Service>, config: SchedulerConfig, store: Store) -> Scheduler {
        Scheduler {
            service,
            store,
            config,
            queued: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            notifier: Notifier::new(SnsSettings::from_env()),
            runs_log: RunsLog::disabled(),
            late_data: late_data::LateData::default(),
            runs: metrics::RunCounters::default(),
        }
    }

    /// Installs this scheduler on its API service (the ScheduledQuery operations reach it).
    pub fn install(self: &Arc<Self>) {
        self.service.install_scheduled_queries(self.clone());
        self.watch_late_data();
    }

    /// The engine's time, nanoseconds.
    pub fn now(&self) -> i64 {
        self.service.engine.clock.now_nanos()
    }

    /// The store (tests and the system table read it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts the loop that runs what comes due until `stop` turns true.
    pub fn spawn(self: &Arc<Self>, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.run_due().await;
                let nap = me.until_next_due().min(Duration::from_secs(1));
                tokio::select! {
                    _ = tokio::time::sleep(nap) => {}
                    _ = me.wake.notified() => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
        })
    }

    /// Real time until the next automatic run is due by the engine's clock (zero when one is).
    fn until_next_due(&self) -> Duration {
        let now = self.now();
        let contents = self.store.snapshot();
        let next = contents
            .queries
            .values()
            .filter(|e| e.definition.state == State::Enabled)
            .filter_map(|e| e.runs.next_invocation)
            .min();
        match next {
            Some(t) if t > now => Duration::from_nanos((t - now) as u64),
            Some(_) => Duration::ZERO,
            None => Duration::from_secs(3600),
        }
    }

    /// Runs everything due now: the automatic runs whose time has come (missed ones caught up,
    /// at most [`SchedulerConfig::catch_up`] a query) and the queued ones; runs of one query in
    /// order, queries side by side. Returns when they have finished.
    pub async fn run_due(&self) {
        self.queue_scheduled_runs();
        self.queue_late_reruns();
        let work: Vec<(String, VecDeque<(i64, Trigger)>)> =
            std::mem::take(&mut *self.queued.lock())
                .into_iter()
                .collect();
        let runs = work.into_iter().map(|(arn, runs)| async move {
            for (invocation, trigger) in runs {
                self.run_once(&arn, invocation, trigger).await;
            }
        });
        futures::future::join_all(runs).await;
    }

    /// Moves the automatic runs that are due into the queue, oldest first, ahead of what was
    /// queued for the same query, and advances each query's next invocation.
    fn queue_scheduled_runs(&self) {
        let now = self.now();
        // Most passes find nothing due: look first, so as not to copy and compare the whole
        // store for nothing.
        let any_due = self.store.snapshot().queries.values().any(|e| {
            e.definition.state == State::Enabled
                && e.runs.next_invocation.is_some_and(|next| next <= now)
        });
        if !any_due {
            return;
        }
        let catch_up = self.config.catch_up.max(1);
        let due = self.store.update::<_, String>(|c| {
            let mut due: Vec<(String, Vec<i64>)> = Vec::new();
            for (arn, e) in c.queries.iter_mut() {
                if e.definition.state != State::Enabled {
                    continue;
                }
                let Some(mut next) = e.runs.next_invocation else {
                    continue;
                };
                let mut times = VecDeque::new();
                let mut skipped = 0u64;
                while next <= now {
                    times.push_back(next);
                    if times.len() > catch_up {
                        times.pop_front();
                        skipped += 1;
                    }
                    match api::next_invocation(&e.definition, next) {
                        Some(n) => next = n,
                        None => {
                            next = i64::MAX;
                            break;
                        }
                    }
                }
                if times.is_empty() {
                    continue;
                }
                if skipped > 0 {
                    tracing::warn!(arn = %arn, skipped, "missed scheduled-query runs skipped (catch-up limit)");
                }
                // Only the entries that change are copied (and rewritten).
                let e = Arc::make_mut(e);
                e.runs.next_invocation = (next != i64::MAX).then_some(next);
                e.runs.previous_invocation = times.back().copied();
                due.push((arn.clone(), times.into_iter().collect()));
            }
            Ok(due)
        });
        let due = match due {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot record scheduled-query invocations");
                return;
            }
        };
        let mut queued = self.queued.lock();
        for (arn, times) in due {
            let q = queued.entry(arn).or_default();
            for t in times.into_iter().rev() {
                q.push_front((t, Trigger::Auto));
            }
        }
    }

    /// Queues a manual run (`ExecuteScheduledQuery`) and wakes the loop.
    pub(crate) fn enqueue_manual(&self, arn: &str, invocation: i64) {
        self.queued
            .lock()
            .entry(arn.to_string())
            .or_default()
            .push_back((invocation, Trigger::Manual));
        self.wake();
    }

    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Drops what is queued for a deleted query.
    pub(crate) fn forget(&self, entry: &Entry) {
        self.queued.lock().remove(&entry.definition.arn);
        self.notify_state_change(&entry.definition, "SCHEDULED_QUERY_DELETED");
    }

    /// Records a finished run on its query, in the runs log, and announces it.
    pub(crate) async fn finish(
        &self,
        d: &Definition,
        trigger: Trigger,
        summary: RunSummary,
        rows_unmapped: usize,
    ) {
        let arn = d.arn.clone();
        self.runs.count(trigger, summary.succeeded());
        let recorded = self.store.update::<_, String>(|c| {
            Ok(c.queries.get_mut(&arn).map(|e| {
                let e = Arc::make_mut(e);
                e.runs.record(summary.clone());
                (e.definition.state == State::Enabled)
                    .then_some(e.runs.next_invocation)
                    .flatten()
            }))
        });
        let next = match recorded {
            Ok(next) => next.flatten(),
            Err(e) => {
                tracing::error!(arn = %arn, error = %e, "cannot record a scheduled-query run");
                None
            }
        };
        let record = RunRecord {
            arn: arn.clone(),
            name: d.name.clone(),
            invocation_time: summary.invocation_time,
            trigger_time: summary.trigger_time,
            trigger: trigger.as_str().to_string(),
            status: summary.run_status.clone(),
            query_result_rows: summary.query_result_rows,
            records_ingested: summary.records_ingested,
            rows_unmapped: rows_unmapped as i64,
            execution_time_ms: summary.execution_time_millis,
            error: summary.failure_reason.clone(),
            error_report: summary
                .error_report
                .as_ref()
                .map(|(bucket, key)| format!("s3://{bucket}/{key}")),
        };
        if let Err(e) = self.runs_log.append(&record) {
            tracing::error!(arn = %arn, error = %e, "cannot log a scheduled-query run");
        }
        if let Some(topic) = d.topic_arn() {
            self.notifier
                .send(topic, notify::run_message(&arn, next, &summary));
        }
        tracing::info!(
            arn = %arn,
            trigger = trigger.as_str(),
            status = %summary.run_status,
            rows = summary.query_result_rows,
            records = summary.records_ingested,
            "scheduled query ran"
        );
    }

    /// Announces a change of a query's state (`SCHEDULED_QUERY_CREATING`,
    /// `SCHEDULED_QUERY_UPDATE` with the definition's state, `SCHEDULED_QUERY_DELETED`).
    pub(crate) fn notify_state_change(&self, d: &Definition, kind: &str) {
        tracing::info!(arn = %d.arn, kind, "scheduled query changed");
        let state = (kind == "SCHEDULED_QUERY_UPDATE").then(|| d.state.as_str());
        if let Some(topic) = d.topic_arn() {
            self.notifier
                .send(topic, notify::state_message(kind, &d.arn, state));
        }
    }
}

#[async_trait]
impl hourglass_timestream::scheduled::ScheduledQueries for Scheduler {
    async fn call(
        &self,
        principal: &Arc<Principal>,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        self.call_operation(principal, operation, body).await
    }
}
