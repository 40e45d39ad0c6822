//! The evaluation loop: holds the rules and their states, runs each rule's query through a
//! [`QueryRunner`] every `interval`, applies the result to the state machine, records state
//! changes in a [`HistorySink`], hands notifications to a [`DeliveryQueue`] (never waiting for
//! a target) and persists to the [`Store`].
//!
//! Rules are spread over their interval (first evaluation at a name-derived offset) so that
//! many rules with the same interval do not all run at once. Rule changes are persisted before
//! they are acknowledged; evaluation states are persisted at most once per
//! [`PERSIST_INTERVAL`] when something changed, and on shutdown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::Serialize;

use crate::alertmanager::{Notifier, PostableAlert};
use crate::delivery::{DeliveryQueue, QUEUE_CAPACITY};
use crate::query::QueryRunner;
use crate::rule::{AlertRule, CompiledRule, RuleError};
use crate::state::{Alert, AlertState, Health, RuleState, StateChange, DEFAULT_RESEND_DELAY};
use crate::store::{Snapshot, Store, StoreError};
use crate::Millis;

/// How long the end of [`Evaluator::run`] waits for queued notifications (resolved alerts).
pub const SHUTDOWN_DELIVERY_WAIT: Duration = Duration::from_secs(5);

/// The most often evaluation states are written to the store.
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// The current time; injected so that tests control it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }
}

/// Receives every state change (the server writes them to `system.alerts`).
#[async_trait]
pub trait HistorySink: Send + Sync {
    async fn record(&self, changes: &[StateChange]);
}

/// Settings of the evaluator.
#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    /// Minimum time between two notifications of the same firing alert (Prometheus' 1m).
    pub resend_delay: Duration,
    /// Hourglass' own URL, prefix of each alert's `generatorURL`.
    pub external_url: String,
    /// Rules evaluated at the same time.
    pub concurrency: usize,
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        EvaluatorConfig {
            resend_delay: DEFAULT_RESEND_DELAY,
            external_url: String::new(),
            concurrency: 16,
        }
    }
}

/// Why a rule operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Invalid(#[from] RuleError),
    #[error("alert rule `{0}` already exists")]
    Exists(String),
    #[error("alert rule `{0}` does not exist")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("alert store: {0}")]
    Task(String),
}

/// A rule and its evaluation state, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStatus {
    pub rule: AlertRule,
    pub state: AlertState,
    pub health: Health,
    pub last_error: Option<String>,
    pub last_evaluation: Option<Millis>,
    pub last_duration_ms: Option<u64>,
    pub alerts: Vec<Alert>,
}

struct Entry {
    rule: Arc<CompiledRule>,
    state: RuleState,
    next_due: Millis,
}

/// The alert rule engine.
pub struct Evaluator {
    runner: Arc<dyn QueryRunner>,
    clock: Arc<dyn Clock>,
    notifier: Option<Arc<Notifier>>,
    /// Started on first use (on the runtime evaluating).
    deliveries: OnceLock<DeliveryQueue>,
    history: Option<Arc<dyn HistorySink>>,
    store: Option<Store>,
    config: EvaluatorConfig,
    entries: Mutex<BTreeMap<String, Entry>>,
    dirty: AtomicBool,
    /// Serializes rule changes and saves, so that the file always holds the latest snapshot.
    persist: tokio::sync::Mutex<()>,
}

fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// The first due time of a rule: `now` plus an offset in `[0, interval)` derived from its name.
fn first_due(name: &str, interval: Duration, now: Millis) -> Millis {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let span = ms(interval).max(1) as u64;
    now + (hash % span) as Millis
}

impl Evaluator {
    /// An evaluator without persistence (tests, or a server without a data directory).
    pub fn new(
        runner: Arc<dyn QueryRunner>,
        clock: Arc<dyn Clock>,
        notifier: Option<Arc<Notifier>>,
        history: Option<Arc<dyn HistorySink>>,
        config: EvaluatorConfig,
    ) -> Self {
        Evaluator {
            runner,
            clock,
            notifier,
            deliveries: OnceLock::new(),
            history,
            store: None,
            config,
            entries: Mutex::new(BTreeMap::new()),
            dirty: AtomicBool::new(false),
            persist: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds persistence in `dir`, loading the rules and states stored there. A stored rule that
    /// no longer validates is an error naming it.
    pub fn with_store(mut self, dir: &std::path::Path) -> Result<Self, EvalError> {
        let (store, snapshot) = Store::open(dir)?;
        let now = self.clock.now();
        let mut states = snapshot.states;
        let mut entries = BTreeMap::new();
        for rule in snapshot.rules {
            let compiled = rule.compile()?;
            let state = states.remove(&rule.name).unwrap_or_default();
            let next_due = first_due(&rule.name, compiled.interval, now);
            entries.insert(
                rule.name.clone(),
                Entry {
                    rule: Arc::new(compiled),
                    state,
                    next_due,
                },
            );
        }
        self.entries = Mutex::new(entries);
        self.store = Some(store);
        Ok(self)
    }

    fn snapshot(&self) -> Snapshot {
        let entries = self.entries.lock();
        Snapshot {
            rules: entries.values().map(|e| e.rule.rule.clone()).collect(),
            states: entries
                .iter()
                .map(|(name, e)| (name.clone(), e.state.clone()))
                .collect(),
            ..Snapshot::default()
        }
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), EvalError> {
        let Some(store) = self.store.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || store.save(&snapshot))
            .await
            .map_err(|e| EvalError::Task(e.to_string()))??;
        Ok(())
    }

    /// Writes rules and states to the store now (if there is one).
    pub async fn persist(&self) -> Result<(), EvalError> {
        let _guard = self.persist.lock().await;
        self.dirty.store(false, Ordering::Relaxed);
        let snapshot = self.snapshot();
        self.save(snapshot).await
    }

    /// Applies a change of the rule set durably: saves the changed snapshot first, then changes
    /// the rules in memory.
    async fn change<T>(
        &self,
        edit: impl FnOnce(&mut BTreeMap<String, Entry>) -> Result<T, EvalError>,
    ) -> Result<T, EvalError> {
        let _guard = self.persist.lock().await;
        // Edit a copy so that a failed save leaves memory as it was.
        let mut copy: BTreeMap<String, Entry> = self
            .entries
            .lock()
            .iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    Entry {
                        rule: e.rule.clone(),
                        state: e.state.clone(),
                        next_due: e.next_due,
                    },
                )
            })
            .collect();
        let out = edit(&mut copy)?;
        let snapshot = Snapshot {
            rules: copy.values().map(|e| e.rule.rule.clone()).collect(),
            states: copy
                .iter()
                .map(|(n, e)| (n.clone(), e.state.clone()))
                .collect(),
            ..Snapshot::default()
        };
        self.save(snapshot).await?;
        let mut entries = self.entries.lock();
        // Keep evaluation progress made meanwhile for rules the edit did not replace.
        for (name, entry) in copy.iter_mut() {
            if let Some(live) = entries.get(name) {
                if Arc::ptr_eq(&live.rule, &entry.rule) {
                    entry.state = live.state.clone();
                    entry.next_due = live.next_due;
                }
            }
        }
        *entries = copy;
        Ok(out)
    }

    /// Adds a new rule (POST); fails if one of that name exists.
    pub async fn create_rule(&self, rule: AlertRule) -> Result<(), EvalError> {
        let compiled = Arc::new(rule.compile()?);
        let now = self.clock.now();
        self.change(|entries| {
            if entries.contains_key(&rule.name) {
                return Err(EvalError::Exists(rule.name.clone()));
            }
            let next_due = first_due(&rule.name, compiled.interval, now);
            entries.insert(
                rule.name.clone(),
                Entry {
                    rule: compiled,
                    state: RuleState::default(),
                    next_due,
                },
            );
            Ok(())
        })
        .await
    }

    /// Creates or replaces a rule (PUT); returns whether it was created. As Prometheus on a
    /// reload, the instances are kept when the name and labels are unchanged, else reset.
    pub async fn put_rule(&self, rule: AlertRule) -> Result<bool, EvalError> {
        let compiled = Arc::new(rule.compile()?);
        let now = self.clock.now();
        self.change(|entries| {
            let next_due = first_due(&rule.name, compiled.interval, now);
            let (state, created) = match entries.remove(&rule.name) {
                Some(old) if old.rule.rule.labels == rule.labels => (old.state, false),
                Some(_) => (RuleState::default(), false),
                None => (RuleState::default(), true),
            };
            entries.insert(
                rule.name.clone(),
                Entry {
                    rule: compiled,
                    state,
                    next_due,
                },
            );
            Ok(created)
        })
        .await
    }

    /// Deletes a rule and its instances (DELETE).
    pub async fn delete_rule(&self, name: &str) -> Result<(), EvalError> {
        self.change(|entries| {
            entries
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| EvalError::NotFound(name.to_string()))
        })
        .await
    }

    /// One rule with its state.
    pub fn rule(&self, name: &str) -> Option<RuleStatus> {
        self.entries.lock().get(name).map(status)
    }

    /// Every rule with its state, by name.
    pub fn rules(&self) -> Vec<RuleStatus> {
        self.entries.lock().values().map(status).collect()
    }

    /// The notifier, for its delivery figures.
    pub fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.as_ref()
    }

    /// Evaluates one rule now, whatever its schedule, and waits until its notifications are
    /// delivered or given up on (scheduled evaluations never wait); returns its state changes.
    pub async fn evaluate(&self, name: &str) -> Result<Vec<StateChange>, EvalError> {
        let rule = self
            .entries
            .lock()
            .get(name)
            .map(|e| e.rule.clone())
            .ok_or_else(|| EvalError::NotFound(name.to_string()))?;
        let changes = self.evaluate_rule(rule).await;
        if let Some(queue) = self.deliveries.get() {
            queue.idle().await;
        }
        Ok(changes)
    }

    /// Notification batches dropped because the delivery queue was full.
    pub fn dropped_notifications(&self) -> u64 {
        self.deliveries.get().map_or(0, DeliveryQueue::dropped)
    }

    async fn evaluate_rule(&self, rule: Arc<CompiledRule>) -> Vec<StateChange> {
        let name = &rule.rule.name;
        let ts = self.clock.now();
        let started = Instant::now();
        let result = self.runner.run(&rule.rule).await;
        let took = started.elapsed().as_millis() as u64;
        let instances = result.and_then(|r| rule.condition.instances(&r));
        let (changes, to_send) = {
            let mut entries = self.entries.lock();
            let Some(entry) = entries.get_mut(name) else {
                return Vec::new();
            };
            if !Arc::ptr_eq(&entry.rule, &rule) {
                // Replaced while its query ran: this result belongs to the old rule.
                return Vec::new();
            }
            let before = (entry.state.health, entry.state.last_error.clone());
            let applied = instances.and_then(|i| entry.state.apply(&rule, ts, &i, took));
            let out = match applied {
                Ok(changes) => {
                    let alerts =
                        entry
                            .state
                            .alerts_to_send(ts, self.config.resend_delay, rule.interval);
                    (changes, alerts)
                }
                Err(error) => {
                    tracing::warn!(rule = %name, error, "alert rule evaluation failed");
                    entry.state.record_error(ts, error, took);
                    (Vec::new(), Vec::new())
                }
            };
            if !out.0.is_empty() || before != (entry.state.health, entry.state.last_error.clone()) {
                self.dirty.store(true, Ordering::Relaxed);
            }
            out
        };
        if !changes.is_empty() {
            if let Some(history) = &self.history {
                history.record(&changes).await;
            }
        }
        if let Some(notifier) = &self.notifier {
            if !to_send.is_empty() {
                let url = format!(
                    "{}/api/v3/alert_rules/{name}",
                    self.config.external_url.trim_end_matches('/')
                );
                let alerts: Vec<PostableAlert> = to_send
                    .iter()
                    .map(|a| PostableAlert::from_alert(a, &url))
                    .collect();
                self.deliveries
                    .get_or_init(|| DeliveryQueue::start(notifier.clone(), QUEUE_CAPACITY))
                    .enqueue(name, alerts, ts);
            }
        }
        changes
    }

    /// Evaluates every rule that is due, concurrently; returns how many were evaluated.
    pub async fn tick(&self) -> usize {
        let now = self.clock.now();
        let due: Vec<Arc<CompiledRule>> = {
            let mut entries = self.entries.lock();
            entries
                .values_mut()
                .filter(|e| e.next_due <= now)
                .map(|e| {
                    let interval = ms(e.rule.interval).max(1);
                    // Missed evaluations are skipped, not caught up.
                    let behind = (now - e.next_due) / interval + 1;
                    e.next_due += behind * interval;
                    e.rule.clone()
                })
                .collect()
        };
        let count = due.len();
        futures::stream::iter(due)
            .for_each_concurrent(self.config.concurrency.max(1), |rule| async move {
                self.evaluate_rule(rule).await;
            })
            .await;
        count
    }

    fn next_due(&self) -> Option<Millis> {
        self.entries.lock().values().map(|e| e.next_due).min()
    }

    /// Evaluates rules on their schedules until `shutdown` turns true, persisting states as
    /// they change and once more at the end.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut last_persist = Instant::now();
        loop {
            self.tick().await;
            if self.dirty.load(Ordering::Relaxed) && last_persist.elapsed() >= PERSIST_INTERVAL {
                if let Err(e) = self.persist().await {
                    tracing::error!(error = %e, "persisting alert states failed");
                }
                last_persist = Instant::now();
            }
            let wait = self
                .next_due()
                .map(|due| Duration::from_millis((due - self.clock.now()).max(0) as u64))
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(10), Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        if self.dirty.load(Ordering::Relaxed) {
            if let Err(e) = self.persist().await {
                tracing::error!(error = %e, "persisting alert states at shutdown failed");
            }
        }
        if let Some(queue) = self.deliveries.get() {
            if tokio::time::timeout(SHUTDOWN_DELIVERY_WAIT, queue.idle())
                .await
                .is_err()
            {
                tracing::warn!(
                    batches = queue.unfinished(),
                    "alert notifications not delivered before shutdown"
                );
            }
        }
    }
}

fn status(e: &Entry) -> RuleStatus {
    RuleStatus {
        rule: e.rule.rule.clone(),
        state: e.state.state(),
        health: e.state.health,
        last_error: e.state.last_error.clone(),
        last_evaluation: e.state.last_evaluation,
        last_duration_ms: e.state.last_duration_ms,
        alerts: e.state.alerts().cloned().collect(),
    }
}

#[cfg(test)]
mod tests;
