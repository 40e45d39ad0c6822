//! The per-query state of the bounds ([`Ledger`]: the query's deadline and the bytes of the
//! constants it built), kept in the session's `hourglass_bounds` settings ([`BoundsState`]),
//! which nothing can set.

use std::any::Any;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;

use super::{human, Bounds};

/// The state of one query's bounds, shared by its session's clones: the deadline (set when the
/// query is analysed) and the bytes of constant results built (folded into the plan, they live
/// as long as the query).
#[derive(Debug, Default)]
pub struct Ledger {
    /// Nanoseconds since [`epoch`] at which the query's time runs out; 0: no deadline.
    deadline: AtomicU64,
    /// The time limit, in seconds, for the message.
    limit_secs: AtomicU64,
    constant_bytes: AtomicUsize,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Ledger {
    /// A new query starts: no constants built yet, `timeout` from now.
    pub(super) fn start(&self, timeout: Duration) {
        self.constant_bytes.store(0, Ordering::Relaxed);
        let at = epoch().elapsed().saturating_add(timeout).as_nanos();
        self.deadline
            .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.limit_secs.store(timeout.as_secs(), Ordering::Relaxed);
    }

    /// An error once the query's deadline has passed.
    pub(super) fn check_deadline(&self) -> DfResult<()> {
        let deadline = self.deadline.load(Ordering::Relaxed);
        if deadline == 0 || epoch().elapsed().as_nanos() < u128::from(deadline) {
            return Ok(());
        }
        Err(DataFusionError::ResourcesExhausted(format!(
            "the query exceeded its {} s time limit",
            self.limit_secs.load(Ordering::Relaxed)
        )))
    }

    /// Refuses a constant of `bytes` (estimated) the query has no more room for.
    pub(super) fn check_room(&self, what: &str, bytes: u128, bounds: &Bounds) -> DfResult<()> {
        let total = self.constant_bytes.load(Ordering::Relaxed) as u128 + bytes;
        if total > bounds.value_bytes as u128 {
            return Err(constants_too_large(what, total, bounds));
        }
        Ok(())
    }

    /// Counts a constant of `bytes` built by `what`, refusing past `bounds`.
    pub(super) fn add_constant(&self, what: &str, bytes: usize, bounds: &Bounds) -> DfResult<()> {
        let before = self.constant_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > bounds.value_bytes {
            self.constant_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return Err(constants_too_large(
                what,
                before.saturating_add(bytes) as u128,
                bounds,
            ));
        }
        Ok(())
    }
}

fn constants_too_large(what: &str, total: u128, bounds: &Bounds) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "{what} would bring the constants of the query to {}, more than the {} they may take \
         (a quarter of the query memory limit)",
        human(total),
        human(bounds.value_bytes as u128)
    ))
}

/// The `hourglass_bounds` session settings: the query's [`Ledger`]. Nothing can be set.
#[derive(Debug, Clone, Default)]
pub struct BoundsState {
    ledger: Arc<Ledger>,
}

impl ConfigExtension for BoundsState {
    const PREFIX: &'static str = "hourglass_bounds";
}

impl ExtensionOptions for BoundsState {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, _value: &str) -> DfResult<()> {
        Err(DataFusionError::Configuration(format!(
            "hourglass_bounds.{key} cannot be set: the bounds on values follow the server's \
             query memory and time limits"
        )))
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}

pub(super) fn ledger(config: &ConfigOptions) -> Option<&Arc<Ledger>> {
    config.extensions.get::<BoundsState>().map(|s| &s.ledger)
}

/// Gives a session a ledger of its own (sessions are cloned from a template: without this they
/// would share one).
pub fn fresh_ledger(state: &mut SessionState) {
    state
        .config_mut()
        .options_mut()
        .extensions
        .insert(BoundsState::default());
}
