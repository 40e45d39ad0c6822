//! `plan_cache`: a query's optimised logical plan, kept per shape and reused with the next
//! statement's literals bound.
//!
//! A dashboard sends the same statement over and over with other hosts and other time ranges.
//! DataFusion plans each from scratch: on the side-by-side data (release, one host over one
//! hour) SQL to plan, the analyser and the optimiser were about half of the instructions of a
//! one-series query (`docs/benchmarks.md`, "One-series queries"). Here a statement is reduced to
//! its [`shape`] (literals compared with columns in `WHERE` become placeholders), the shape is
//! planned and optimised once with its placeholders (the way DataFusion's own `PREPARE` does),
//! and each statement of that shape binds its literals to the [`template`] and goes straight to
//! the physical planner. A statement whose shape does not qualify, or whose literals do not
//! bind, is planned the usual way.
//!
//! The first statement of a shape is planned from its template too, so a template answers every
//! query it is made for from the first: the differential fuzzer's rules-off oracle (with
//! `plan_cache` switched off every statement is planned on its own) checks every template on
//! the query it was made for, with the literals of that query.
//!
//! A template is kept for one database, principal, set of switched-off rules and catalog
//! generation (any table or column added, dropped or changed makes new templates). At most
//! [`CAPACITY`] shapes are kept; when full the cache starts over.

pub mod shape;
pub mod template;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::common::alias::AliasGenerator;
use datafusion::common::config::ConfigOptions;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::optimizer::OptimizerConfig;
use datafusion::sql::parser::Statement as DFStatement;
use parking_lot::Mutex;

pub use shape::{Literal, Shape};
pub use template::Template;

/// The most shapes kept.
pub const CAPACITY: usize = 1024;

/// What a template is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The shape's text.
    pub text: String,
    pub database: String,
    /// The principal, as its `Debug` form (name, grants, authenticated).
    pub principal: String,
    /// `hourglass.disabled_rules` as set.
    pub disabled_rules: String,
    pub catalog_generation: u64,
}

/// A shape's entry: its template, or that it has none.
#[derive(Debug, Clone)]
pub enum Entry {
    Template(Arc<Template>),
    /// The shape was planned and did not qualify: its statements are planned the usual way
    /// without trying again.
    Unfit,
}

/// The templates of one query engine, shared by its sessions.
#[derive(Debug, Default)]
pub struct PlanCache {
    entries: Mutex<HashMap<Key, Entry>>,
    /// Statements answered from a template made earlier.
    pub hits: AtomicU64,
    /// Statements whose shape was planned (a template made, or found unfit).
    pub misses: AtomicU64,
    /// Statements planned the usual way: no shape, an unfit one, or literals that did not bind.
    pub bypassed: AtomicU64,
}

impl PlanCache {
    pub fn get(&self, key: &Key) -> Option<Entry> {
        self.entries.lock().get(key).cloned()
    }

    pub fn insert(&self, key: Key, entry: Entry) {
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, entry);
    }

    /// How many shapes are kept.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The template of `shape`: planned with its placeholders, checked as the statement would be
/// (`options`), analysed, and optimised without the query's start time (so that `now()` is not
/// folded into it; a template with such a function does not qualify anyway). `None` when any
/// step fails or the plan does not qualify ([`Template::new`]); the statement is then planned on
/// its own, which reports any error.
pub async fn make_template(
    state: &SessionState,
    shape: &Shape,
    options: &SQLOptions,
) -> Option<Template> {
    let statement = DFStatement::Statement(Box::new(shape.statement.clone()));
    let planned = state.statement_to_plan(statement).await.ok()?;
    options.verify_plan(&planned).ok()?;
    let analyzed = state
        .analyzer()
        .execute_and_check(planned.clone(), state.config_options(), |_, _| {})
        .ok()?;
    let optimized = state
        .optimizer()
        .optimize(analyzed, &WithoutStartTime(state), |_, _| {})
        .ok()?;
    Template::new(&planned, optimized, shape.literals.len())
}

/// A session's optimiser configuration without its query start time. DataFusion's
/// `OptimizerContext` has the same setting but no function registry, which some of its rules
/// need (`DISTINCT ON` becomes `first_value`).
struct WithoutStartTime<'a>(&'a SessionState);

impl OptimizerConfig for WithoutStartTime<'_> {
    fn query_execution_start_time(&self) -> Option<DateTime<Utc>> {
        None
    }

    fn alias_generator(&self) -> &Arc<AliasGenerator> {
        self.0.alias_generator()
    }

    fn options(&self) -> Arc<ConfigOptions> {
        Arc::clone(self.0.config_options())
    }

    fn function_registry(&self) -> Option<&dyn FunctionRegistry> {
        Some(self.0)
    }
}
