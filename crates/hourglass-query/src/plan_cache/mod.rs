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
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::OptimizerConfig;
use datafusion::sql::parser::Statement as DFStatement;
use parking_lot::Mutex;

pub use shape::{Literal, Shape};
pub use template::Template;

use crate::rules::Rule;

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
    /// What else of the session planning depends on, as the front end states it ([`Session`]).
    pub settings: Arc<str>,
    pub catalog_generation: u64,
}

/// Who is planning, for [`PlanCache::bound_plan`]: the parts of a [`Key`] besides the shape.
pub struct Session<'a> {
    pub database: &'a str,
    pub principal: &'a str,
    /// Everything of the session that planning depends on besides its database, principal and
    /// catalog: for HTTP SQL (a session made fresh for each statement) the switched-off rules;
    /// for the PostgreSQL wire, its front end and every configuration entry of the connection.
    /// Two sessions with equal settings must plan every statement alike.
    pub settings: &'a Arc<str>,
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

    /// `statement`'s optimised plan from its shape's template, when `state` has `plan_cache` on
    /// and the statement has a shape that qualifies and literals that bind; `None` otherwise (the
    /// statement is then planned on its own, the usual way). The first statement of a shape makes
    /// the template. `options` are the checks the statement would get on its own.
    pub async fn bound_plan(
        &self,
        state: &SessionState,
        session: &Session<'_>,
        statement: &DFStatement,
        options: &SQLOptions,
    ) -> DfResult<Option<LogicalPlan>> {
        if !Rule::PlanCache.enabled(state.config_options()) {
            return Ok(None);
        }
        let shape = match statement {
            DFStatement::Statement(s) => Shape::of(s),
            _ => None,
        };
        let Some(shape) = shape else {
            Self::count(&self.bypassed);
            return Ok(None);
        };
        let key = Key {
            text: shape.text.clone(),
            database: session.database.to_string(),
            principal: session.principal.to_string(),
            settings: Arc::clone(session.settings),
            catalog_generation: session.catalog_generation,
        };
        let template = match self.get(&key) {
            Some(Entry::Template(t)) => {
                Self::count(&self.hits);
                t
            }
            Some(Entry::Unfit) => {
                Self::count(&self.bypassed);
                return Ok(None);
            }
            None => {
                Self::count(&self.misses);
                match make_template(state, &shape, options).await {
                    Some(t) => {
                        let t = Arc::new(t);
                        self.insert(key, Entry::Template(t.clone()));
                        t
                    }
                    None => {
                        self.insert(key, Entry::Unfit);
                        return Ok(None);
                    }
                }
            }
        };
        let bound = template.bind(&shape.literals)?;
        if bound.is_none() {
            Self::count(&self.bypassed);
        }
        Ok(bound)
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
