//! Late data: the scheduler reruns a finished run when a write lands in a time range it read.
//!
//! Each successful run of a query with a target records, per source table, the time range its
//! scans read (the time bounds the planner pushed into them, collected by
//! [`hourglass_query::time_range::ScanRanges`]; a scan without bounds covers all time). The
//! ranges of the recent invocations of each query are kept in the store
//! ([`crate::definition::Coverage`] in `RunState::coverage`: at most
//! [`crate::SchedulerConfig::late_data_invocations`] invocations per query, none older than
//! `late_data_window` before the newest) and indexed here by table.
//!
//! The storage engine tells the scheduler of every durable commit ([`Engine::observe_commits`]):
//! a commit whose time span meets a covered range marks that invocation stale, once (later
//! marks of a marked invocation coalesce). A commit during a run that meets what the run read
//! marks the run stale once it finishes (the run may have planned before the write). The
//! marks are made durable at the scheduler's next pass, and each stale invocation is rerun with
//! its original `@scheduled_runtime` (trigger `LATE_DATA`) once
//! [`crate::SchedulerConfig::late_data_delay`] (default: the engine's maintenance interval) has
//! passed since it was first marked, so that a burst of late writes costs one rerun.
//!
//! A run's own target writes do not mark its own query's runs: each WriteRecords call of a run
//! is announced with the span of its records' times, and the first commit into that table
//! within that span during the call is taken for the run's own. Semantics:
//! `docs/scheduled-queries.md`, "Late data".
//!
//! [`Engine::observe_commits`]: hourglass_storage::Engine::observe_commits

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use hourglass_query::time_range::ScanRange;
use parking_lot::{Mutex, RwLock, RwLockUpgradableReadGuard};

use crate::definition::{Coverage, CoveredRange};
use crate::runner::Trigger;
use crate::store::{Entry, StoreFailure};
use crate::Scheduler;

/// Spans of commits remembered per table for one run in progress; past this they are merged
/// into one span (which may make the run stale for a write between two others).
const MAX_SEEN_PER_TABLE: usize = 1_000;

/// Covered ranges by database, then table, then query (ARN). Shared by readers; a change
/// copies only the maps on its path ([`Arc::make_mut`]).
type CoverageIndex = HashMap<String, Arc<DatabaseCoverage>>;
/// One database's covered ranges, by table.
type DatabaseCoverage = HashMap<String, Arc<TableCoverage>>;
/// One table's covered ranges, by query.
type TableCoverage = HashMap<Arc<str>, Arc<[Covered]>>;

/// One covered range of a query in the index.
#[derive(Debug, Clone)]
struct Covered {
    min: i64,
    max: i64,
    invocation: i64,
}

/// Adds the covered ranges of the query `arn` (which has none in `index`).
fn index_query(index: &mut CoverageIndex, arn: &Arc<str>, e: &Entry) {
    let mut by_table: BTreeMap<(&str, &str), Vec<Covered>> = BTreeMap::new();
    for cov in &e.runs.coverage {
        for r in &cov.ranges {
            by_table
                .entry((&r.database, &r.table))
                .or_default()
                .push(Covered {
                    min: r.min,
                    max: r.max,
                    invocation: cov.invocation_time,
                });
        }
    }
    for ((database, table), covered) in by_table {
        let tables = Arc::make_mut(index.entry(database.to_string()).or_default());
        Arc::make_mut(tables.entry(table.to_string()).or_default())
            .insert(arn.clone(), covered.into());
    }
}

/// Removes the covered ranges of the query `arn` from `index`.
fn unindex_query(index: &mut CoverageIndex, arn: &str) {
    for tables in index.values_mut() {
        if !tables.values().any(|t| t.contains_key(arn)) {
            continue;
        }
        let tables = Arc::make_mut(tables);
        for t in tables.values_mut() {
            if t.contains_key(arn) {
                Arc::make_mut(t).remove(arn);
            }
        }
        tables.retain(|_, t| !t.is_empty());
    }
    index.retain(|_, tables| !tables.is_empty());
}

/// A run in progress: the spans of the commits seen since it started, by (database, table).
#[derive(Debug)]
struct Running {
    arn: Arc<str>,
    seen: HashMap<(String, String), Vec<(i64, i64)>>,
}

/// A WriteRecords call of a run, in flight.
#[derive(Debug)]
struct OwnWrite {
    id: u64,
    arn: Arc<str>,
    database: String,
    table: String,
    min: i64,
    max: i64,
    used: bool,
}

/// The late-data state of a scheduler (in memory; the durable part is in the store).
#[derive(Debug, Default)]
pub struct LateData {
    /// Covered ranges of finished runs: database -> table -> ranges.
    index: RwLock<Arc<CoverageIndex>>,
    /// Invocations marked stale and not yet recorded in the store, with the first mark's time.
    marks: Mutex<HashMap<(Arc<str>, i64), i64>>,
    /// Reruns queued and not started.
    queued: Mutex<HashSet<(String, i64)>>,
    running: Mutex<HashMap<u64, Running>>,
    own: Mutex<Vec<OwnWrite>>,
    next_id: AtomicU64,
    watching: AtomicBool,
    /// No enabled query had a stale invocation at the last pass, and none has become stale
    /// since: a pass need not look through the store ([`Scheduler::queue_late_reruns`]).
    none_stale: AtomicBool,
    /// Runs in progress per query, and the most ever seen at once for one query.
    in_progress: Mutex<HashMap<String, usize>>,
    max_concurrent: AtomicUsize,
    /// One lock per query: its runs never overlap.
    run_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A handle on a run in progress ([`Scheduler::run_started`]).
#[derive(Debug)]
pub(crate) struct RunTicket {
    id: u64,
    arn: String,
}

impl LateData {
    /// A commit of `database.table` with times from `lo` to `hi`: marks what it makes stale.
    /// Returns whether an invocation was newly marked.
    fn observe(&self, database: &str, table: &str, lo: i64, hi: i64, now: i64) -> bool {
        let own: Option<Arc<str>> = {
            let mut own = self.own.lock();
            own.iter_mut()
                .find(|w| {
                    !w.used
                        && w.database == database
                        && w.table == table
                        && w.min <= lo
                        && hi <= w.max
                })
                .map(|w| {
                    w.used = true;
                    w.arn.clone()
                })
        };
        {
            let mut running = self.running.lock();
            for r in running.values_mut() {
                if own.as_ref() == Some(&r.arn) {
                    continue;
                }
                let spans = r
                    .seen
                    .entry((database.to_string(), table.to_string()))
                    .or_default();
                spans.push((lo, hi));
                if spans.len() > MAX_SEEN_PER_TABLE {
                    let merged = spans
                        .iter()
                        .fold((i64::MAX, i64::MIN), |(a, b), &(l, h)| (a.min(l), b.max(h)));
                    *spans = vec![merged];
                }
            }
        }
        let index = self.index.read().clone();
        let Some(queries) = index.get(database).and_then(|t| t.get(table)) else {
            return false;
        };
        let mut marked = false;
        let mut marks = None;
        for (arn, covered) in queries.iter() {
            if own.as_ref() == Some(arn) {
                continue;
            }
            for c in covered.iter() {
                if lo < c.max && hi >= c.min {
                    let marks = marks.get_or_insert_with(|| self.marks.lock());
                    marks.entry((arn.clone(), c.invocation)).or_insert_with(|| {
                        marked = true;
                        now
                    });
                }
            }
        }
        marked
    }
}

impl Scheduler {
    /// Starts telling this scheduler of the engine's commits (once; [`Scheduler::install`]
    /// calls it) and indexes the covered ranges in the store.
    pub fn watch_late_data(self: &Arc<Self>) {
        if self.late_data.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        self.reindex_coverage();
        // Runs a stopped server left unfinished are run again, first.
        let contents = self.store.snapshot();
        for (arn, e) in contents
            .queries
            .iter()
            .filter(|(_, e)| !e.runs.in_progress.is_empty())
        {
            let mut runs = e.runs.in_progress.clone();
            runs.sort();
            let mut queued = self.queued.lock();
            let q = queued.entry(arn.clone()).or_default();
            for (invocation, trigger) in runs.into_iter().rev() {
                tracing::warn!(arn = %arn, invocation, "running again a scheduled-query run interrupted by a stop");
                q.push_front((
                    invocation,
                    Trigger::parse(&trigger).unwrap_or(Trigger::Auto),
                ));
            }
        }
        let weak = Arc::downgrade(self);
        self.service.engine.observe_commits(Arc::new(
            move |database: &str, table: &str, lo: i64, hi: i64| {
                if let Some(s) = weak.upgrade() {
                    if s.late_data.observe(database, table, lo, hi, s.now()) {
                        s.wake();
                    }
                }
            },
        ));
    }

    /// The most runs of one scheduled query ever in progress at once (1 when runs are
    /// serialized as they must be; a diagnostic for tests).
    pub fn max_concurrent_runs(&self) -> usize {
        self.late_data.max_concurrent.load(Ordering::SeqCst)
    }

    /// The invocations of `arn` currently marked stale (in the store or not yet recorded).
    pub fn stale_invocations(&self, arn: &str) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .store
            .get(arn)
            .map(|e| {
                e.runs
                    .coverage
                    .iter()
                    .filter(|c| c.stale_since.is_some())
                    .map(|c| c.invocation_time)
                    .collect()
            })
            .unwrap_or_default();
        out.extend(
            self.late_data
                .marks
                .lock()
                .keys()
                .filter(|(a, _)| &**a == arn)
                .map(|(_, i)| *i),
        );
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The lock that serializes the runs of `arn`.
    pub(crate) fn run_lock(&self, arn: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.late_data
            .run_locks
            .lock()
            .entry(arn.to_string())
            .or_default()
            .clone()
    }

    /// Registers a run of `arn` starting now (before its query is planned): commits from now
    /// on are remembered for it.
    pub(crate) fn run_started(&self, arn: &str, invocation: i64, trigger: Trigger) -> RunTicket {
        let ld = &self.late_data;
        // Durably: a server stopped during the run runs it again when it starts.
        let noted = self.store.update::<_, StoreFailure>(|c| {
            if let Some(e) = c.queries.get_mut(arn) {
                let run = (invocation, trigger.as_str().to_string());
                if !e.runs.in_progress.contains(&run) {
                    Arc::make_mut(e).runs.in_progress.push(run);
                }
            }
            Ok(())
        });
        if let Err(e) = noted {
            tracing::error!(arn, error = %e, "cannot record a scheduled-query run as started");
        }
        ld.queued.lock().remove(&(arn.to_string(), invocation));
        {
            let mut progress = ld.in_progress.lock();
            let n = progress.entry(arn.to_string()).or_default();
            *n += 1;
            ld.max_concurrent.fetch_max(*n, Ordering::SeqCst);
        }
        let id = ld.next_id.fetch_add(1, Ordering::Relaxed);
        ld.running.lock().insert(
            id,
            Running {
                arn: Arc::from(arn),
                seen: HashMap::new(),
            },
        );
        RunTicket {
            id,
            arn: arn.to_string(),
        }
    }

    /// A run ended: with `ranges` when it succeeded and its coverage is to be kept (it has a
    /// target), else `None`. Records the coverage, stale at once when a commit seen during the
    /// run meets it; a failed late-data rerun clears the invocation's mark (the next late write
    /// marks it again).
    pub(crate) fn run_ended(
        &self,
        ticket: RunTicket,
        invocation: i64,
        trigger_time: i64,
        trigger: Trigger,
        ranges: Option<Vec<ScanRange>>,
    ) {
        let ld = &self.late_data;
        let running = ld.running.lock().remove(&ticket.id);
        if let Some(n) = ld.in_progress.lock().get_mut(&ticket.arn) {
            *n = n.saturating_sub(1);
        }
        let arn = ticket.arn;
        let Some(ranges) = ranges else {
            let cleared = self.store.update::<_, StoreFailure>(|c| {
                if let Some(e) = c.queries.get_mut(&arn) {
                    let e = Arc::make_mut(e);
                    e.runs.in_progress.retain(|(i, _)| *i != invocation);
                    if trigger == Trigger::LateData {
                        // A failed rerun is not retried: the next late write marks it again.
                        for cov in &mut e.runs.coverage {
                            if cov.invocation_time == invocation {
                                cov.stale_since = None;
                            }
                        }
                    }
                }
                Ok(())
            });
            if let Err(e) = cleared {
                tracing::error!(arn = %arn, error = %e, "cannot record a scheduled-query run's end");
            }
            if trigger == Trigger::LateData {
                ld.marks
                    .lock()
                    .retain(|(a, i), _| !(&**a == arn.as_str() && *i == invocation));
            }
            return;
        };
        let ranges: Vec<CoveredRange> = ranges
            .into_iter()
            .map(|s| CoveredRange {
                database: s.database,
                table: s.table,
                min: s.range.min,
                max: s.range.max,
            })
            .collect();
        let stale = running.is_some_and(|r| {
            ranges.iter().any(|c| {
                r.seen
                    .get(&(c.database.clone(), c.table.clone()))
                    .is_some_and(|spans| spans.iter().any(|&(lo, hi)| c.meets(lo, hi)))
            })
        });
        // Marks made while the run was going are superseded by this run's coverage.
        ld.marks
            .lock()
            .retain(|(a, i), _| !(&**a == arn.as_str() && *i == invocation));
        let now = self.now();
        let keep = self.config.late_data_invocations;
        let window = self
            .config
            .late_data_window
            .as_nanos()
            .min(i64::MAX as u128) as i64;
        let recorded = self.store.update::<_, StoreFailure>(|c| {
            let Some(e) = c.queries.get_mut(&arn) else {
                return Ok(());
            };
            let e = Arc::make_mut(e);
            e.runs.in_progress.retain(|(i, _)| *i != invocation);
            let cov = &mut e.runs.coverage;
            let entry = Coverage {
                invocation_time: invocation,
                trigger_time,
                ranges,
                stale_since: stale.then_some(now),
            };
            match cov.binary_search_by_key(&invocation, |c| c.invocation_time) {
                Ok(i) => cov[i] = entry,
                Err(i) => cov.insert(i, entry),
            }
            if let Some(newest) = cov.last().map(|c| c.invocation_time) {
                cov.retain(|c| c.invocation_time >= newest.saturating_sub(window));
            }
            if cov.len() > keep {
                cov.drain(..cov.len() - keep);
            }
            Ok(())
        });
        if let Err(e) = recorded {
            tracing::error!(arn = %arn, error = %e, "cannot record what a scheduled-query run read");
        }
        self.reindex_query(&arn);
        if stale {
            self.stale_may_be_due();
            self.wake();
        }
    }

    /// Announces a WriteRecords call of a run of `arn` into `database.table` with records from
    /// `min` to `max`: the commit it makes does not mark `arn`'s runs. End it with
    /// [`Scheduler::own_write_ended`].
    pub(crate) fn own_write_started(
        &self,
        arn: &str,
        database: &str,
        table: &str,
        min: i64,
        max: i64,
    ) -> u64 {
        let id = self.late_data.next_id.fetch_add(1, Ordering::Relaxed);
        self.late_data.own.lock().push(OwnWrite {
            id,
            arn: Arc::from(arn),
            database: database.to_string(),
            table: table.to_string(),
            min,
            max,
            used: false,
        });
        id
    }

    pub(crate) fn own_write_ended(&self, id: u64) {
        self.late_data.own.lock().retain(|w| w.id != id);
    }

    /// Rebuilds the index of covered ranges from the store (at start).
    pub(crate) fn reindex_coverage(&self) {
        // Writers of the index take turns; readers go on with the index they have.
        let guard = self.late_data.index.upgradable_read();
        let contents = self.store.snapshot();
        let mut index = CoverageIndex::new();
        for (arn, e) in &contents.queries {
            index_query(&mut index, &Arc::from(arn.as_str()), e);
        }
        *RwLockUpgradableReadGuard::upgrade(guard) = Arc::new(index);
    }

    /// Replaces the covered ranges of `arn` in the index with those in the store (none when it
    /// was deleted). Call it after the store shows the change.
    pub(crate) fn reindex_query(&self, arn: &str) {
        let guard = self.late_data.index.upgradable_read();
        // Read under the guard: of two updates of `arn`, the later one indexes last.
        let entry = self.store.entry(arn);
        let mut index = (**guard).clone();
        unindex_query(&mut index, arn);
        if let Some(e) = &entry {
            index_query(&mut index, &Arc::from(arn), e);
        }
        *RwLockUpgradableReadGuard::upgrade(guard) = Arc::new(index);
    }

    /// Records the new marks in the store and queues the reruns that are due: each stale
    /// invocation once its first mark is [`crate::SchedulerConfig::late_data_delay`] old, oldest
    /// invocation first, behind what is queued for the query.
    pub(crate) fn queue_late_reruns(&self) {
        let now = self.now();
        let marks: Vec<((Arc<str>, i64), i64)> = self.late_data.marks.lock().drain().collect();
        // Cleared before the store is read: whatever turns stale after this is seen next pass.
        let none_stale = self.late_data.none_stale.swap(true, Ordering::SeqCst);
        if none_stale && marks.is_empty() {
            return;
        }
        if !marks.is_empty() {
            let recorded = self.store.update::<_, StoreFailure>(|c| {
                for ((arn, invocation), at) in &marks {
                    let Some(e) = c.queries.get_mut(&**arn) else {
                        continue;
                    };
                    let Ok(i) = e
                        .runs
                        .coverage
                        .binary_search_by_key(invocation, |c| c.invocation_time)
                    else {
                        continue;
                    };
                    let since = e.runs.coverage[i].stale_since.map_or(*at, |s| s.min(*at));
                    if e.runs.coverage[i].stale_since != Some(since) {
                        Arc::make_mut(e).runs.coverage[i].stale_since = Some(since);
                    }
                }
                Ok(())
            });
            if let Err(e) = recorded {
                tracing::error!(error = %e, "cannot record stale scheduled-query runs");
                // Keep them for the next pass.
                let mut pending = self.late_data.marks.lock();
                for (k, at) in marks {
                    pending.entry(k).or_insert(at);
                }
            }
        }
        let delay = self.late_data_delay();
        let contents = self.store.snapshot();
        let mut due: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut any_stale = false;
        {
            let mut queued = self.late_data.queued.lock();
            // A DISABLED query keeps its marks; its reruns wait until it is enabled again.
            let enabled = contents
                .queries
                .iter()
                .filter(|(_, e)| e.definition.state == crate::definition::State::Enabled);
            for (arn, e) in enabled {
                for c in &e.runs.coverage {
                    let Some(since) = c.stale_since else { continue };
                    any_stale = true;
                    if since.saturating_add(delay) > now {
                        continue;
                    }
                    if queued.insert((arn.clone(), c.invocation_time)) {
                        due.entry(arn).or_default().push(c.invocation_time);
                    }
                }
            }
        }
        if any_stale {
            self.late_data.none_stale.store(false, Ordering::SeqCst);
        }
        for (arn, invocations) in due {
            tracing::info!(
                arn,
                runs = invocations.len(),
                "late data: rerunning stale runs"
            );
            for invocation in invocations {
                self.enqueue(arn, invocation, Trigger::LateData);
            }
        }
    }

    /// An invocation of an enabled query may have turned stale (or a query with stale
    /// invocations was enabled): the next pass looks through the store. Call it after the store
    /// shows the change.
    pub(crate) fn stale_may_be_due(&self) {
        self.late_data.none_stale.store(false, Ordering::SeqCst);
    }

    /// Queues a run of `arn` behind what is queued for it and wakes the loop.
    fn enqueue(&self, arn: &str, invocation: i64, trigger: Trigger) {
        self.queued
            .lock()
            .entry(arn.to_string())
            .or_default()
            .push_back((invocation, trigger));
        self.wake();
    }

    /// How long a stale invocation waits for more late writes before its rerun (nanoseconds).
    fn late_data_delay(&self) -> i64 {
        let d = self
            .config
            .late_data_delay
            .unwrap_or(self.service.engine.config.maintenance_interval);
        d.as_nanos().min(i64::MAX as u128) as i64
    }
}
