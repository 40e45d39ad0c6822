//! Bounds on what one expression may build, so that the query memory and time limits
//! (`--query-memory-mb`, `--query-timeout-secs`) hold for values as well as for operators.
//!
//! DataFusion accounts the memory of its operators (sorts, hash tables, aggregate states) in the
//! memory pool, but not the values its functions build: `repeat('x', 1500000000)` allocates
//! 1.5 GB (several times over while building, folding and copying it) whatever the pool's size,
//! in one synchronous call the query's time limit cannot interrupt. So every function whose
//! output can be much larger than its input is wrapped here ([`BoundedUdf`]): before calling
//! DataFusion's (or the dialect's) implementation, the wrapper computes from the argument
//! columns how many bytes the result would take, and refuses with a resources-exhausted error
//! naming the function and the limit when that is over [`Bounds::value_bytes`] (a quarter of the
//! query memory limit; also when the query's memory pool has not that much free). Below the limit the call is DataFusion's own, answering exactly as it
//! would; the result is accounted in the memory pool for as long as it lives (so that many
//! calls of one query together stay within the pool), and the query's deadline is checked
//! before each call (so a long chain of calls — a `reduce` over many elements — stops at the
//! time limit).
//!
//! | function | what the estimate counts, per row |
//! |---|---|
//! | `repeat` | length × count |
//! | `lpad`, `rpad` | length + target length × widest character of the fill |
//! | `array_repeat` | element size × count |
//! | `array_resize` | new length × element size |
//! | `range`, `generate_series`, `sequence` | number of elements (from start, stop and step; at most 10,001 for `sequence`) × 8 |
//! | `replace` | length + occurrences × growth of each replacement |
//! | `regexp_replace` | length + matches × replacement length + group references × length |
//! | `array_replace_all`, `array_replace_n` | array size + elements × replacement size |
//! | `array_to_string` | elements × (24 + separator + null text) |
//! | `string_to_array` | 6 × length |
//! | `to_char`/`date_format`, dialect `date_format`, `format_datetime` | 16 × format length |
//! | `concat`, `concat_ws`, `make_array`, `array_concat`, `array_append`, `array_prepend`, `array_replace`, `struct`, `named_struct`, `arrays_zip`, `map`, `overlay` | sum of the arguments (a constant counted once per row; `concat_ws`'s separator once per argument) |
//!
//! Not wrapped, because their output is at most a few times their input: `to_hex` (16
//! characters for an 8-byte integer), `upper`/`lower`/`initcap` (Unicode case mappings, at most
//! 3×), `translate` (at most 4×), `left`/`right`/`substr`/`split_part`/`trim` (at most the
//! input). What stays is a constant repeated over the rows of a batch, `||`, and aggregates:
//!
//! - **Constants repeated over a batch.** A large constant (a literal in the SQL, or a function
//!   call DataFusion folded into one while planning) is repeated for every row of a batch when a
//!   projection outputs it or an operator combines it with a column: `SELECT repeat('x', 10e6)
//!   FROM t` builds 8192 copies per batch, in a projection, a `CASE`, an aggregate's argument or
//!   a Parquet decoder alike. The last optimizer rule, [`BoundConstants`], wraps every constant
//!   larger than a batch of them may safely be in [`BoundedConstant`], which checks the
//!   constant's size × the rows of each batch it is evaluated against. Constants built by the
//!   bounded functions are also counted per query (the [`Ledger`]), since they live in the plan
//!   (and a constant result evaluated for a batch counts once per row).
//! - **`||`.** DataFusion plans `a || b` on strings as an operator, not a function: the analyzer
//!   rule [`WrapBoundedFunctions`] turns it into a function that evaluates the operator
//!   ([`ConcatOperator`], named as the operator is), bounded as `concat` is, so that
//!   `s || s || ... || s` (or a lambda doubling its state) cannot grow a value past the bound.
//! - **Aggregates** (`string_agg`, `array_agg`, ...) keep their state in accumulators whose size
//!   DataFusion's aggregate operators reserve in the memory pool; the tests show the query
//!   memory limit refusing an oversized `string_agg` and `array_agg`, grouped or not. Over a
//!   window, though, an accumulator is evaluated once per row and those results are not
//!   accounted (a running `string_agg` is quadratic in the partition): the aggregates whose
//!   result grows with their input are wrapped ([`BoundedUdaf`]) so that the results of any
//!   8192 evaluations of one accumulator (about an output batch) stay within the bound.
//!
//! The bounds are the plan rule `value_bounds` ([`crate::rules`]): they change no answer (a call
//! is either DataFusion's, or refused), so the differential fuzzer's "rules off" oracle
//! (`disabled_rules=all`) compares them with DataFusion alone. Switched off, everything here
//! behaves as if it were not installed: the wrappers call the function they wrap and nothing
//! else, the analyzer rule puts back the functions wrapped (and `||`), and large constants are
//! left bare. They are also a security limit, so only a session made for an operator or with
//! authentication off can switch them off (for anyone else `all` leaves them on and naming
//! `value_bounds` is refused); no session setting changes that, and the `hourglass_bounds`
//! settings refuse every `SET`.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Bounds`], [`install`] |
//! | `ledger.rs` | the per-query [`Ledger`] (deadline, constants built), the `hourglass_bounds` settings |
//! | `sizes.rs` | bytes of arrays, constants and arguments |
//! | `estimate.rs` | the estimate per kind of function ([`Kind`], [`BOUNDED`]) |
//! | `scalar.rs` | [`BoundedUdf`], the scalar function wrapper |
//! | `concat.rs` | [`ConcatOperator`], `\|\|` as a function |
//! | `aggregate.rs` | [`BoundedUdaf`] and its accumulators |
//! | `accounting.rs` | memory reservations held by the arrays of results |
//! | `analyzer.rs` | [`WrapBoundedFunctions`], wrapping (or, switched off, unwrapping) a plan's calls |
//! | `constants.rs` | [`BoundedConstant`], [`BoundConstants`] |

mod accounting;
mod aggregate;
mod analyzer;
mod concat;
mod constants;
mod estimate;
mod ledger;
mod scalar;
mod sizes;
#[cfg(test)]
mod switch_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, SessionState};

use crate::rules::Rule;
use crate::session::QueryLimits;

pub use aggregate::{BoundedUdaf, BOUNDED_AGGREGATES};
pub use analyzer::WrapBoundedFunctions;
pub use concat::ConcatOperator;
pub use constants::{BoundConstants, BoundedConstant};
pub use estimate::{Kind, BOUNDED};
pub use ledger::{fresh_ledger, BoundsState, Ledger};
pub use scalar::BoundedUdf;

/// Whether the bounds apply in a session with `config`: the rule `value_bounds` is on (it is off
/// only where the session may lift it, [`crate::rules::HourglassOptions`]).
pub fn enabled(config: &ConfigOptions) -> bool {
    Rule::ValueBounds.enabled(config)
}

/// The largest value (in bytes) one function call may build: a quarter of the query memory
/// limit, so that a few such values and the operators holding them fit in it. At least 1 MiB.
pub fn value_limit(limits: &QueryLimits) -> usize {
    (limits.memory_bytes / 4).max(1 << 20)
}

/// What bounds every call: the byte limit, the time limit, and the memory pool results are
/// accounted in.
#[derive(Clone)]
pub struct Bounds {
    /// The most bytes one call may build ([`value_limit`]).
    pub value_bytes: usize,
    /// The query time limit (the deadline is set when a query is planned).
    pub timeout: Duration,
    pool: Arc<dyn MemoryPool>,
}

impl fmt::Debug for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bounds")
            .field("value_bytes", &self.value_bytes)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Bounds {
    pub fn new(limits: &QueryLimits, pool: Arc<dyn MemoryPool>) -> Bounds {
        Bounds {
            value_bytes: value_limit(limits),
            timeout: limits.timeout,
            pool,
        }
    }

    /// The refusal of a call of `what` that would build `bytes`.
    fn too_large(&self, what: &str, bytes: u128) -> DataFusionError {
        DataFusionError::ResourcesExhausted(format!(
            "{what} would build {} in one call, more than the {} one expression may build \
             (a quarter of the query memory limit)",
            human(bytes),
            human(self.value_bytes as u128)
        ))
    }

    /// Reserves `bytes` in the memory pool for a call of `what`.
    fn reserve(&self, what: &str, bytes: u128) -> DfResult<MemoryReservation> {
        let reservation = MemoryConsumer::new(format!("{what} result")).register(&self.pool);
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        reservation.try_grow(bytes).map_err(|e| {
            DataFusionError::ResourcesExhausted(format!(
                "{what} would build {}, more than the query memory limit has free: {}",
                human(bytes as u128),
                e.strip_backtrace()
            ))
        })?;
        Ok(reservation)
    }
}

fn human(bytes: u128) -> String {
    const MIB: u128 = 1 << 20;
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// Bounds the functions of `state` (a session template) by `limits`: the bounded functions and
/// aggregates replace their namesakes in the registry, the analyzer rule wraps the calls
/// planners build directly (and `||`), the last optimizer rule bounds large constants. Call
/// after every function and rule is registered.
pub fn install(state: SessionState, limits: &QueryLimits) -> SessionState {
    let bounds = Bounds::new(limits, Arc::clone(&state.runtime_env().memory_pool));
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_analyzer_rule(Arc::new(WrapBoundedFunctions {
            bounds: bounds.clone(),
        }))
        .with_optimizer_rule(Arc::new(BoundConstants::new(&bounds)))
        .build();
    for (name, _) in BOUNDED {
        if let Ok(udf) = state.udf(name) {
            if let Some(bounded) = BoundedUdf::wrap(&udf, &bounds) {
                let _ = state.register_udf(bounded);
            }
        }
    }
    for name in BOUNDED_AGGREGATES {
        if let Ok(udaf) = state.udaf(name) {
            if let Some(bounded) = BoundedUdaf::wrap(&udaf, &bounds) {
                let _ = state.register_udaf(bounded);
            }
        }
    }
    fresh_ledger(&mut state);
    state
}
