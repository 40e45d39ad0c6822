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
//! These bounds are not among Hourglass's switchable plan rules ([`crate::rules`],
//! `hourglass.disabled_rules`): they change no answer (a call is either DataFusion's, or
//! refused), and they are a security limit a query must not be able to lift. Nor can a session
//! setting change them: the `hourglass_bounds` settings refuse every `SET`.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::{make_array, Array, ArrayData, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::binary::BinaryTypeCoercer;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr::{AggregateFunctionParams, WindowFunctionParams};
use datafusion::logical_expr::function::AggregateFunctionSimplification;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, ReversedUDAF, SetMonotonicity,
    StatisticsArgs, WindowFunctionDefinition,
};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, LogicalPlan, Operator, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{AnalyzerRule, OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_expr::PhysicalExpr;

use crate::session::QueryLimits;

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

// ---------------------------------------------------------------------------------------------
// Per-query state: the deadline and the bytes of constants built.

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
    fn start(&self, timeout: Duration) {
        self.constant_bytes.store(0, Ordering::Relaxed);
        let at = epoch().elapsed().saturating_add(timeout).as_nanos();
        self.deadline
            .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.limit_secs.store(timeout.as_secs(), Ordering::Relaxed);
    }

    /// An error once the query's deadline has passed.
    fn check_deadline(&self) -> DfResult<()> {
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
    fn check_room(&self, what: &str, bytes: u128, bounds: &Bounds) -> DfResult<()> {
        let total = self.constant_bytes.load(Ordering::Relaxed) as u128 + bytes;
        if total > bounds.value_bytes as u128 {
            return Err(constants_too_large(what, total, bounds));
        }
        Ok(())
    }

    /// Counts a constant of `bytes` built by `what`, refusing past `bounds`.
    fn add_constant(&self, what: &str, bytes: usize, bounds: &Bounds) -> DfResult<()> {
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

fn ledger(config: &ConfigOptions) -> Option<&Arc<Ledger>> {
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

// ---------------------------------------------------------------------------------------------
// Sizes of values.

/// Bytes of `n` values of `a` from `start` (data and offsets, as a fresh array would hold them).
fn range_bytes(a: &dyn Array, start: usize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    if start >= a.len() {
        return 0;
    }
    let end = start.saturating_add(n).min(a.len());
    let n = end - start;
    let t = a.data_type();
    match t {
        DataType::Null => 0,
        DataType::Boolean => n.div_ceil(8),
        DataType::Utf8 | DataType::Binary => {
            let offsets = match t {
                DataType::Utf8 => a.as_string_opt::<i32>().map(|s| s.offsets().clone()),
                _ => a.as_binary_opt::<i32>().map(|s| s.offsets().clone()),
            };
            offsets.map_or_else(
                || fallback_bytes(a, start, n),
                |o| span(&o, start, end) + 4 * n,
            )
        }
        DataType::LargeUtf8 | DataType::LargeBinary => {
            let offsets = match t {
                DataType::LargeUtf8 => a.as_string_opt::<i64>().map(|s| s.offsets().clone()),
                _ => a.as_binary_opt::<i64>().map(|s| s.offsets().clone()),
            };
            offsets.map_or_else(
                || fallback_bytes(a, start, n),
                |o| span(&o, start, end) + 8 * n,
            )
        }
        DataType::Utf8View | DataType::BinaryView => {
            let views = match t {
                DataType::Utf8View => a.as_string_view_opt().map(|s| s.views().clone()),
                _ => a.as_binary_view_opt().map(|s| s.views().clone()),
            };
            views.map_or_else(
                || fallback_bytes(a, start, n),
                |v| {
                    16 * n
                        + v[start..end]
                            .iter()
                            .map(|view| *view as u32 as usize)
                            .filter(|len| *len > 12)
                            .sum::<usize>()
                },
            )
        }
        DataType::List(_) => match a.as_list_opt::<i32>() {
            Some(l) => {
                let o = l.offsets();
                let (first, last) = (o[start].max(0) as usize, o[end].max(0) as usize);
                4 * n + range_bytes(l.values().as_ref(), first, last.saturating_sub(first))
            }
            None => fallback_bytes(a, start, n),
        },
        DataType::LargeList(_) => match a.as_list_opt::<i64>() {
            Some(l) => {
                let o = l.offsets();
                let (first, last) = (o[start].max(0) as usize, o[end].max(0) as usize);
                8 * n + range_bytes(l.values().as_ref(), first, last.saturating_sub(first))
            }
            None => fallback_bytes(a, start, n),
        },
        DataType::FixedSizeList(_, size) => match a.as_fixed_size_list_opt() {
            Some(l) => {
                let size = (*size).max(0) as usize;
                range_bytes(l.values().as_ref(), start * size, n * size)
            }
            None => fallback_bytes(a, start, n),
        },
        DataType::Struct(_) => match a.as_struct_opt() {
            Some(s) => s
                .columns()
                .iter()
                .map(|c| range_bytes(c.as_ref(), start, n))
                .sum(),
            None => fallback_bytes(a, start, n),
        },
        DataType::Map(_, _) => match a.as_map_opt() {
            Some(m) => {
                let o = m.offsets();
                let (first, last) = (o[start].max(0) as usize, o[end].max(0) as usize);
                4 * n + range_bytes(m.entries(), first, last.saturating_sub(first))
            }
            None => fallback_bytes(a, start, n),
        },
        DataType::Dictionary(key, _) => match a.as_any_dictionary_opt() {
            Some(d) => {
                let keys = d.normalized_keys();
                let values = d.values();
                key.primitive_width().unwrap_or(8) * n
                    + keys[start..end]
                        .iter()
                        .map(|k| range_bytes(values.as_ref(), *k, 1))
                        .sum::<usize>()
            }
            None => fallback_bytes(a, start, n),
        },
        other => match other.primitive_width() {
            Some(width) => width * n,
            None => fallback_bytes(a, start, n),
        },
    }
}

fn span<O: arrow::array::OffsetSizeTrait>(
    offsets: &arrow::buffer::OffsetBuffer<O>,
    start: usize,
    end: usize,
) -> usize {
    (offsets[end].as_usize()).saturating_sub(offsets[start].as_usize())
}

fn fallback_bytes(a: &dyn Array, start: usize, n: usize) -> usize {
    a.slice(start, n).get_array_memory_size()
}

/// Bytes of a constant.
fn scalar_bytes(s: &ScalarValue) -> usize {
    match s {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
            v.as_ref().map_or(0, String::len)
        }
        ScalarValue::Binary(v)
        | ScalarValue::LargeBinary(v)
        | ScalarValue::BinaryView(v)
        | ScalarValue::FixedSizeBinary(_, v) => v.as_ref().map_or(0, Vec::len),
        ScalarValue::List(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::LargeList(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::FixedSizeList(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::Struct(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::Map(a) => range_bytes(a.as_ref(), 0, a.len()),
        ScalarValue::Dictionary(_, v) => scalar_bytes(v),
        other => {
            other
                .size()
                .saturating_sub(std::mem::size_of::<ScalarValue>())
                + 16
        }
    }
}

/// Bytes of an argument, `rows` rows of it (a constant counts once per row).
fn value_bytes(v: &ColumnarValue, rows: usize) -> u128 {
    match v {
        ColumnarValue::Scalar(s) => scalar_bytes(s) as u128 * rows as u128,
        ColumnarValue::Array(a) => range_bytes(a.as_ref(), 0, a.len()) as u128,
    }
}

/// One argument, row by row (a constant is the same in every row).
enum Arg<'a> {
    Scalar(&'a ScalarValue),
    Array(&'a ArrayRef),
}

impl<'a> Arg<'a> {
    fn new(v: &'a ColumnarValue) -> Self {
        match v {
            ColumnarValue::Scalar(s) => Arg::Scalar(s),
            ColumnarValue::Array(a) => Arg::Array(a),
        }
    }

    /// Bytes of row `i`.
    fn bytes(&self, i: usize) -> usize {
        match self {
            Arg::Scalar(s) => scalar_bytes(s),
            Arg::Array(a) => range_bytes(a.as_ref(), i, 1),
        }
    }

    /// The text of row `i` (`None`: null, or not text).
    fn text(&self, i: usize) -> Option<&'a str> {
        match self {
            Arg::Scalar(s) => match s {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                    v.as_deref()
                }
                ScalarValue::Dictionary(_, v) => Arg::Scalar(v).text(0),
                _ => None,
            },
            Arg::Array(a) => {
                if i >= a.len() || a.is_null(i) {
                    return None;
                }
                match a.data_type() {
                    DataType::Utf8 => a.as_string_opt::<i32>().map(|s| s.value(i)),
                    DataType::LargeUtf8 => a.as_string_opt::<i64>().map(|s| s.value(i)),
                    DataType::Utf8View => a.as_string_view_opt().map(|s| s.value(i)),
                    _ => None,
                }
            }
        }
    }

    /// Elements of the list at row `i`.
    fn list_len(&self, i: usize) -> usize {
        fn of(a: &dyn Array, i: usize) -> usize {
            if i >= a.len() {
                return 0;
            }
            if let Some(l) = a.as_list_opt::<i32>() {
                return l.value_length(i).max(0) as usize;
            }
            if let Some(l) = a.as_list_opt::<i64>() {
                return l.value_length(i).max(0) as usize;
            }
            if let Some(l) = a.as_fixed_size_list_opt() {
                return l.value_length().max(0) as usize;
            }
            0
        }
        match self {
            Arg::Scalar(s) => match s {
                ScalarValue::List(a) => of(a.as_ref(), 0),
                ScalarValue::LargeList(a) => of(a.as_ref(), 0),
                ScalarValue::FixedSizeList(a) => of(a.as_ref(), 0),
                _ => 0,
            },
            Arg::Array(a) => of(a.as_ref(), i),
        }
    }

    /// Leaf values of the (possibly nested) list at row `i`.
    fn leaves(&self, i: usize) -> usize {
        fn count(a: &dyn Array, start: usize, n: usize) -> usize {
            if start >= a.len() {
                return 0;
            }
            let end = start.saturating_add(n).min(a.len());
            if let Some(l) = a.as_list_opt::<i32>() {
                let o = l.offsets();
                let (f, e) = (o[start].max(0) as usize, o[end].max(0) as usize);
                return count(l.values().as_ref(), f, e.saturating_sub(f));
            }
            if let Some(l) = a.as_list_opt::<i64>() {
                let o = l.offsets();
                let (f, e) = (o[start].max(0) as usize, o[end].max(0) as usize);
                return count(l.values().as_ref(), f, e.saturating_sub(f));
            }
            if let Some(l) = a.as_fixed_size_list_opt() {
                let size = l.value_length().max(0) as usize;
                return count(l.values().as_ref(), start * size, (end - start) * size);
            }
            end.saturating_sub(start)
        }
        match self {
            Arg::Scalar(s) => match s {
                ScalarValue::List(a) => count(a.as_ref(), 0, 1),
                ScalarValue::LargeList(a) => count(a.as_ref(), 0, 1),
                ScalarValue::FixedSizeList(a) => count(a.as_ref(), 0, 1),
                _ => 1,
            },
            Arg::Array(a) => count(a.as_ref(), i, 1),
        }
    }
}

/// An integer argument row by row (other numbers are truncated, text is parsed).
enum Ints {
    Scalar(Option<i64>),
    Array(Int64Array),
}

impl Ints {
    fn new(v: &ColumnarValue) -> Ints {
        match v {
            ColumnarValue::Scalar(s) => Ints::Scalar(scalar_i64(s)),
            ColumnarValue::Array(a) => {
                match arrow::compute::cast(a, &DataType::Int64)
                    .ok()
                    .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned())
                {
                    Some(ints) => Ints::Array(ints),
                    None => Ints::Scalar(None),
                }
            }
        }
    }

    fn get(&self, i: usize) -> Option<i64> {
        match self {
            Ints::Scalar(v) => *v,
            Ints::Array(a) => (i < a.len() && a.is_valid(i)).then(|| a.value(i)),
        }
    }
}

fn scalar_i64(s: &ScalarValue) -> Option<i64> {
    if s.is_null() {
        return None;
    }
    match s {
        ScalarValue::UInt64(Some(v)) => Some(i64::try_from(*v).unwrap_or(i64::MAX)),
        other => other.cast_to(&DataType::Int64).ok().and_then(|v| match v {
            ScalarValue::Int64(v) => v,
            _ => None,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Estimates.

/// How a bounded function's result size is estimated (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `repeat(text, count)`.
    Repeat,
    /// `lpad`/`rpad(text, length[, fill])`.
    Pad,
    /// `array_repeat(element, count)`.
    ArrayRepeat,
    /// `array_resize(array, length[, fill])`.
    ArrayResize,
    /// `range`, `generate_series`, `sequence`: `(stop)`, `(start, stop)` or `(start, stop,
    /// step)`; at most `cap` elements when the function has such a limit.
    Series { cap: Option<u64> },
    /// `replace(text, from, to)`.
    Replace,
    /// `regexp_replace(text, pattern, replacement[, flags])`.
    RegexpReplace,
    /// `array_replace_all`/`array_replace_n(array, from, to[, max])`.
    ArrayReplace,
    /// `array_to_string(array, separator[, null_text])`.
    ArrayToString,
    /// `string_to_array(text, delimiter[, null_text])`.
    StringToArray,
    /// Formatting a time with a format string: `(value, format)`.
    Format,
    /// At most the sum of the arguments; `separator`: the first is repeated between the others.
    Sum { separator: bool },
}

/// The functions wrapped, by name (the primary name: aliases come along).
pub const BOUNDED: &[(&str, Kind)] = &[
    ("repeat", Kind::Repeat),
    ("lpad", Kind::Pad),
    ("rpad", Kind::Pad),
    ("array_repeat", Kind::ArrayRepeat),
    ("array_resize", Kind::ArrayResize),
    ("range", Kind::Series { cap: None }),
    ("generate_series", Kind::Series { cap: None }),
    ("sequence", Kind::Series { cap: Some(10_001) }),
    ("replace", Kind::Replace),
    ("regexp_replace", Kind::RegexpReplace),
    ("array_replace_all", Kind::ArrayReplace),
    ("array_replace_n", Kind::ArrayReplace),
    ("array_to_string", Kind::ArrayToString),
    ("string_to_array", Kind::StringToArray),
    ("to_char", Kind::Format),
    ("date_format", Kind::Format),
    ("format_datetime", Kind::Format),
    ("concat", Kind::Sum { separator: false }),
    ("concat_ws", Kind::Sum { separator: true }),
    ("make_array", Kind::Sum { separator: false }),
    ("array_concat", Kind::Sum { separator: false }),
    ("array_append", Kind::Sum { separator: false }),
    ("array_prepend", Kind::Sum { separator: false }),
    ("array_replace", Kind::Sum { separator: false }),
    ("struct", Kind::Sum { separator: false }),
    ("named_struct", Kind::Sum { separator: false }),
    ("arrays_zip", Kind::Sum { separator: false }),
    ("map", Kind::Sum { separator: false }),
    ("overlay", Kind::Sum { separator: false }),
];

fn kind_of(name: &str) -> Option<Kind> {
    BOUNDED.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

const NANOS_PER_DAY: i128 = 86_400_000_000_000;
const NANOS_PER_HOUR: i128 = 3_600_000_000_000;

/// An upper bound on the bytes `kind` builds from `args` over `rows` rows. Occurrences of a
/// pattern are counted only until the result is known to exceed `limit`.
fn estimate(kind: Kind, args: &[ColumnarValue], rows: usize, limit: u128) -> u128 {
    let arg = |i: usize| args.get(i).map(Arg::new);
    let ints = |i: usize| args.get(i).map(Ints::new);
    let mut total: u128 = 0;
    match kind {
        Kind::Repeat => {
            let (Some(text), Some(count)) = (arg(0), ints(1)) else {
                return 0;
            };
            for i in 0..rows {
                let n = count.get(i).unwrap_or(0).max(0) as u128;
                total += text.bytes(i) as u128 * n + 4;
            }
        }
        Kind::Pad => {
            let (Some(text), Some(length)) = (arg(0), ints(1)) else {
                return 0;
            };
            let fill = arg(2);
            for i in 0..rows {
                let n = length.get(i).unwrap_or(0).max(0) as u128;
                let width = match &fill {
                    None => 1,
                    Some(f) => match f.text(i) {
                        Some(t) => t.chars().map(char::len_utf8).max().unwrap_or(0),
                        None => 4,
                    },
                };
                total += text.bytes(i) as u128 + n * width as u128 + 4;
            }
        }
        Kind::ArrayRepeat => {
            let (Some(element), Some(count)) = (arg(0), ints(1)) else {
                return 0;
            };
            for i in 0..rows {
                let n = count.get(i).unwrap_or(0).max(0) as u128;
                total += (element.bytes(i) as u128 + 1) * n + 4;
            }
        }
        Kind::ArrayResize => {
            let (Some(array), Some(length)) = (arg(0), ints(1)) else {
                return 0;
            };
            let fill = arg(2);
            for i in 0..rows {
                let n = length.get(i).unwrap_or(0).max(0) as u128;
                let have = array.list_len(i).max(1);
                let per = (array.bytes(i) / have)
                    .max(fill.as_ref().map_or(0, |f| f.bytes(i)))
                    .max(8);
                total += array.bytes(i) as u128 + n * (per as u128 + 1) + 4;
            }
        }
        Kind::Series { cap } => {
            for i in 0..rows {
                let n = series_len(args, i);
                let n = cap.map_or(n, |c| n.min(u128::from(c)));
                total += n * 9 + 4;
            }
        }
        Kind::Replace => {
            let (Some(text), Some(from), Some(to)) = (arg(0), arg(1), arg(2)) else {
                return 0;
            };
            for i in 0..rows {
                let len = text.bytes(i) as u128;
                let (f, t) = (from.bytes(i), to.bytes(i));
                let grows = t > f && f > 0;
                let count = if !grows {
                    0
                } else {
                    match (text.text(i), from.text(i)) {
                        (Some(s), Some(p)) if !p.is_empty() => {
                            // Counted until the result is known to be too large.
                            let most = limit.saturating_sub(total + len) / (t - f) as u128 + 1;
                            s.matches(p)
                                .take(most.min(usize::MAX as u128) as usize)
                                .count() as u128
                        }
                        _ => len / f as u128 + 1,
                    }
                };
                total += len + count * (t - f.min(t)) as u128 + 4;
            }
        }
        Kind::RegexpReplace => {
            let (Some(text), Some(replacement)) = (arg(0), arg(2)) else {
                return 0;
            };
            let flags = arg(3);
            for i in 0..rows {
                let len = text.bytes(i) as u128;
                let global = flags
                    .as_ref()
                    .and_then(|f| f.text(i))
                    .is_some_and(|f| f.contains('g'));
                let matches = if global { len + 1 } else { 1 };
                let (r, refs) = match replacement.text(i) {
                    Some(t) => (
                        t.len(),
                        t.chars().filter(|c| *c == '$' || *c == '\\').count(),
                    ),
                    None => (replacement.bytes(i), replacement.bytes(i)),
                };
                total += len + matches * r as u128 + refs as u128 * len + 4;
            }
        }
        Kind::ArrayReplace => {
            let (Some(array), Some(to)) = (arg(0), arg(2)) else {
                return 0;
            };
            for i in 0..rows {
                total += array.bytes(i) as u128
                    + array.list_len(i) as u128 * (to.bytes(i) as u128 + 1)
                    + 4;
            }
        }
        Kind::ArrayToString => {
            let Some(array) = arg(0) else {
                return 0;
            };
            let (separator, null_text) = (arg(1), arg(2));
            for i in 0..rows {
                let per = 24
                    + separator.as_ref().map_or(0, |s| s.bytes(i))
                    + null_text.as_ref().map_or(0, |s| s.bytes(i));
                total += array.bytes(i) as u128 + array.leaves(i) as u128 * per as u128 + 4;
            }
        }
        Kind::StringToArray => {
            let Some(text) = arg(0) else {
                return 0;
            };
            let null_text = arg(2);
            for i in 0..rows {
                let len = text.bytes(i) as u128;
                let null = null_text.as_ref().map_or(0, |s| s.bytes(i)) as u128;
                total += len + (len + 1) * 5 + null + 8;
            }
        }
        Kind::Format => {
            let format = arg(1);
            for i in 0..rows {
                total += 16 * format.as_ref().map_or(0, |f| f.bytes(i)) as u128 + 68;
            }
        }
        Kind::Sum { separator } => {
            total = args.iter().map(|a| value_bytes(a, rows)).sum::<u128>() + 4 * rows as u128;
            if separator && args.len() > 2 {
                if let Some(first) = args.first() {
                    total += value_bytes(first, rows) * (args.len() - 2) as u128;
                }
            }
        }
    }
    total
}

/// An upper bound on the elements of a `range`/`generate_series`/`sequence` row.
fn series_len(args: &[ColumnarValue], i: usize) -> u128 {
    let point = |v: &ColumnarValue| -> Option<i128> {
        let t = v.data_type();
        let at = |s: ScalarValue| -> Option<i128> {
            match s {
                ScalarValue::Date32(d) => d.map(|d| i128::from(d) * NANOS_PER_DAY),
                ScalarValue::Date64(d) => d.map(|d| i128::from(d) * 1_000_000),
                ScalarValue::TimestampSecond(t, _) => t.map(|t| i128::from(t) * 1_000_000_000),
                ScalarValue::TimestampMillisecond(t, _) => t.map(|t| i128::from(t) * 1_000_000),
                ScalarValue::TimestampMicrosecond(t, _) => t.map(|t| i128::from(t) * 1_000),
                ScalarValue::TimestampNanosecond(t, _) => t.map(i128::from),
                other => scalar_i64(&other).map(i128::from),
            }
        };
        let value = match v {
            ColumnarValue::Scalar(s) => s.clone(),
            ColumnarValue::Array(a) => {
                if i >= a.len() {
                    return None;
                }
                ScalarValue::try_from_array(a.as_ref(), i).ok()?
            }
        };
        let _ = t;
        at(value)
    };
    // The step, as the least and most nanoseconds (or units) it can move.
    let step = |v: &ColumnarValue| -> Option<(i128, i128)> {
        let value = match v {
            ColumnarValue::Scalar(s) => s.clone(),
            ColumnarValue::Array(a) => {
                if i >= a.len() {
                    return None;
                }
                ScalarValue::try_from_array(a.as_ref(), i).ok()?
            }
        };
        let (months, days, nanos) = match value {
            ScalarValue::IntervalMonthDayNano(Some(v)) => (
                i128::from(v.months),
                i128::from(v.days),
                i128::from(v.nanoseconds),
            ),
            ScalarValue::IntervalDayTime(Some(v)) => (
                0,
                i128::from(v.days),
                i128::from(v.milliseconds) * 1_000_000,
            ),
            ScalarValue::IntervalYearMonth(Some(m)) => (i128::from(m), 0, 0),
            other => {
                let n = i128::from(scalar_i64(&other)?);
                return Some((n, n));
            }
        };
        let low = months * 28 * NANOS_PER_DAY.min(31 * NANOS_PER_DAY)
            + days * 23 * NANOS_PER_HOUR
            + nanos;
        let high = months * 31 * NANOS_PER_DAY + days * 25 * NANOS_PER_HOUR + nanos;
        Some((low.min(high), low.max(high)))
    };
    let (start, stop, step) = match args {
        [stop] => (Some(0), point(stop), Some((1, 1))),
        [start, stop] => {
            let (a, b) = (point(start), point(stop));
            let unit = match start.data_type() {
                DataType::Date32 | DataType::Date64 => NANOS_PER_DAY,
                _ => 1,
            };
            let s = match (a, b) {
                (Some(a), Some(b)) if b < a => -unit,
                _ => unit,
            };
            (a, b, Some((s, s)))
        }
        [start, stop, step_arg, ..] => (point(start), point(stop), step(step_arg)),
        [] => return 0,
    };
    let (Some(start), Some(stop), Some((low, high))) = (start, stop, step) else {
        return 0;
    };
    let distance = stop - start;
    if distance == 0 {
        return 1;
    }
    // The smallest move towards `stop` a step can make; none: it may not get there.
    let towards = if distance > 0 {
        if low > 0 {
            low
        } else if high > 0 {
            1
        } else {
            return 0;
        }
    } else if high < 0 {
        -high
    } else if low < 0 {
        1
    } else {
        return 0;
    };
    (distance.unsigned_abs() / towards.unsigned_abs()).saturating_add(1)
}

// ---------------------------------------------------------------------------------------------
// The wrapper.

/// A scalar function whose calls are bounded (see the module docs); otherwise the function it
/// wraps.
#[derive(Debug, Clone)]
pub struct BoundedUdf {
    inner: Arc<ScalarUDF>,
    kind: Kind,
    bounds: Bounds,
}

impl PartialEq for BoundedUdf {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.inner == other.inner
            && self.bounds.value_bytes == other.bounds.value_bytes
    }
}

impl Eq for BoundedUdf {}

impl Hash for BoundedUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.kind.hash(state);
        self.bounds.value_bytes.hash(state);
    }
}

impl BoundedUdf {
    /// `udf` bounded, when it is one of [`BOUNDED`] and not bounded already.
    pub fn wrap(udf: &Arc<ScalarUDF>, bounds: &Bounds) -> Option<Arc<ScalarUDF>> {
        if udf.inner().is::<BoundedUdf>() {
            return None;
        }
        let kind = kind_of(udf.name())?;
        Some(Arc::new(ScalarUDF::new_from_impl(BoundedUdf {
            inner: udf.clone(),
            kind,
            bounds: bounds.clone(),
        })))
    }

    /// The function wrapped.
    pub fn inner(&self) -> &Arc<ScalarUDF> {
        &self.inner
    }

    /// Wraps the bounded functions in `expr` not wrapped yet (those a simplification built).
    fn rewrap(&self, expr: Expr) -> DfResult<Expr> {
        rewrap_expr(expr, &self.bounds).map(|t| t.data)
    }
}

impl ScalarUDFImpl for BoundedUdf {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn display_name(&self, args: &[Expr]) -> DfResult<String> {
        #[allow(deprecated)]
        self.inner.inner().display_name(args)
    }

    fn schema_name(&self, args: &[Expr]) -> DfResult<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.inner().return_field_from_args(args)
    }

    fn is_nullable(&self, args: &[Expr], schema: &dyn datafusion::common::ExprSchema) -> bool {
        #[allow(deprecated)]
        self.inner.inner().is_nullable(args, schema)
    }

    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(BoundedUdf {
            inner: Arc::new(updated),
            kind: self.kind,
            bounds: self.bounds.clone(),
        }))
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        Ok(match self.inner.inner().simplify(args, info)? {
            ExprSimplifyResult::Simplified(expr) => {
                ExprSimplifyResult::Simplified(self.rewrap(expr)?)
            }
            ExprSimplifyResult::Original(args) => ExprSimplifyResult::Original(args),
        })
    }

    fn short_circuits(&self) -> bool {
        self.inner.inner().short_circuits()
    }

    fn evaluate_bounds(&self, input: &[&Interval]) -> DfResult<Interval> {
        self.inner.inner().evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> DfResult<Option<Vec<Interval>>> {
        self.inner.inner().propagate_constraints(interval, inputs)
    }

    fn output_ordering(
        &self,
        inputs: &[ExprProperties],
    ) -> DfResult<datafusion::logical_expr::sort_properties::SortProperties> {
        self.inner.inner().output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> DfResult<bool> {
        self.inner.inner().preserves_lex_ordering(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.inner().documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let ledger = ledger(&args.config_options).cloned();
        if let Some(l) = &ledger {
            l.check_deadline()?;
        }
        let constant = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if constant { 1 } else { args.number_rows };
        let name = self.inner.name().to_string();
        let bytes = estimate(self.kind, &args.args, rows, self.bounds.value_bytes as u128);
        if bytes > self.bounds.value_bytes as u128 {
            return Err(self.bounds.too_large(&name, bytes));
        }
        // A constant result evaluated for a batch (a call the optimizer did not fold: in a
        // lambda, say) may be repeated for each of its rows.
        if constant && args.number_rows > 1 {
            let repeated = bytes * args.number_rows as u128;
            if repeated > self.bounds.value_bytes as u128 {
                return Err(self.bounds.too_large(
                    &format!("{name} repeated over {} rows", args.number_rows),
                    repeated,
                ));
            }
        }
        if let (true, Some(l)) = (constant, &ledger) {
            l.check_room(&name, bytes, &self.bounds)?;
        }
        let reservation = self.bounds.reserve(&name, bytes)?;
        match self.inner.invoke_with_args(args)? {
            ColumnarValue::Scalar(s) => {
                if let Some(l) = &ledger {
                    l.add_constant(&name, scalar_bytes(&s), &self.bounds)?;
                }
                Ok(ColumnarValue::Scalar(s))
            }
            ColumnarValue::Array(a) if constant => {
                if let Some(l) = &ledger {
                    l.add_constant(&name, range_bytes(a.as_ref(), 0, a.len()), &self.bounds)?;
                }
                Ok(ColumnarValue::Array(a))
            }
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(accounted(a, reservation))),
        }
    }
}

/// Wraps the bounded functions of `expr` (and of the lambdas in it), and turns `a || b` into
/// the bounded [`ConcatOperator`].
fn rewrap_expr(expr: Expr, bounds: &Bounds) -> DfResult<Transformed<Expr>> {
    expr.transform_up(|e| match e {
        Expr::ScalarFunction(f) => match BoundedUdf::wrap(&f.func, bounds) {
            Some(func) => Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                func,
                args: f.args,
            }))),
            None => Ok(Transformed::no(Expr::ScalarFunction(f))),
        },
        Expr::AggregateFunction(mut f) => match BoundedUdaf::wrap(&f.func, bounds) {
            Some(func) => {
                f.func = func;
                Ok(Transformed::yes(Expr::AggregateFunction(f)))
            }
            None => Ok(Transformed::no(Expr::AggregateFunction(f))),
        },
        Expr::WindowFunction(mut w) => {
            let wrapped = match &w.fun {
                WindowFunctionDefinition::AggregateUDF(f) => BoundedUdaf::wrap(f, bounds),
                _ => None,
            };
            match wrapped {
                Some(func) => {
                    w.fun = WindowFunctionDefinition::AggregateUDF(func);
                    Ok(Transformed::yes(Expr::WindowFunction(w)))
                }
                None => Ok(Transformed::no(Expr::WindowFunction(w))),
            }
        }
        Expr::BinaryExpr(b) if b.op == Operator::StringConcat => {
            let func = Arc::new(ScalarUDF::new_from_impl(BoundedUdf {
                inner: concat_operator(),
                kind: Kind::Sum { separator: false },
                bounds: bounds.clone(),
            }));
            Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                func,
                args: vec![*b.left, *b.right],
            })))
        }
        other => Ok(Transformed::no(other)),
    })
}

fn concat_operator() -> Arc<ScalarUDF> {
    static UDF: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    Arc::clone(UDF.get_or_init(|| {
        Arc::new(ScalarUDF::new_from_impl(ConcatOperator {
            signature: Signature::any(2, datafusion::logical_expr::Volatility::Immutable),
        }))
    }))
}

/// `a || b` on strings as a function, so that it can be bounded like one (DataFusion plans it
/// as an operator, and folds constant ones while planning). It evaluates DataFusion's operator
/// and is named as the operator is (`a || b`), so plans answer with the same columns.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ConcatOperator {
    signature: Signature,
}

impl ScalarUDFImpl for ConcatOperator {
    fn name(&self) -> &str {
        "||"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn schema_name(&self, args: &[Expr]) -> DfResult<String> {
        match args {
            [l, r] => Ok(format!("{} || {}", l.schema_name(), r.schema_name())),
            _ => Err(DataFusionError::Internal("|| takes two arguments".into())),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types {
            [l, r] => BinaryTypeCoercer::new(l, &Operator::StringConcat, r).get_result_type(),
            _ => Err(DataFusionError::Internal("|| takes two arguments".into())),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(
            self.name(),
            self.return_type(&types)?,
            nullable,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [left, right] = args.args.as_slice() else {
            return Err(DataFusionError::Internal("|| takes two arguments".into()));
        };
        let constant = matches!(
            (left, right),
            (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
        );
        let rows = if constant { 1 } else { args.number_rows };
        let (l, r) = (left.to_array(rows)?, right.to_array(rows)?);
        let schema = Arc::new(Schema::new(vec![
            Field::new("l", l.data_type().clone(), true),
            Field::new("r", r.data_type().clone(), true),
        ]));
        let pair = RecordBatch::try_new(schema, vec![l, r])?;
        let operator = BinaryExpr::new(
            Arc::new(Column::new("l", 0)),
            Operator::StringConcat,
            Arc::new(Column::new("r", 1)),
        );
        match operator.evaluate(&pair)? {
            ColumnarValue::Array(a) if constant => {
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&a, 0)?))
            }
            other => Ok(other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Aggregates evaluated again and again: windows.

/// The aggregates whose result grows with their input. Grouped or not, their state is reserved
/// in the memory pool by DataFusion's aggregate operators; over a window (`string_agg(s, ',')
/// OVER (ORDER BY t)`) the same accumulator is evaluated once per row, and the results (each as
/// large as the rows so far) are not accounted: quadratic in the partition. [`BoundedUdaf`]
/// bounds them.
pub const BOUNDED_AGGREGATES: &[&str] = &[
    "array_agg",
    "string_agg",
    "map_agg",
    "multimap_agg",
    "histogram",
    "map_union",
    "create_time_series",
    "hg_max_n",
    "hg_min_n",
];

/// Results of the evaluations of one accumulator that count together: about one output batch.
const RECENT_EVALUATIONS: usize = 8192;

/// An aggregate function whose accumulators, when evaluated more than once (a window), may
/// together build at most [`Bounds::value_bytes`] over any [`RECENT_EVALUATIONS`] evaluations.
/// A single evaluation (a group's result) is left to the memory pool.
#[derive(Debug, Clone)]
pub struct BoundedUdaf {
    inner: Arc<AggregateUDF>,
    bounds: Bounds,
}

impl PartialEq for BoundedUdaf {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.bounds.value_bytes == other.bounds.value_bytes
    }
}

impl Eq for BoundedUdaf {}

impl Hash for BoundedUdaf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.bounds.value_bytes.hash(state);
    }
}

impl BoundedUdaf {
    /// `udaf` bounded, when it is one of [`BOUNDED_AGGREGATES`] and not bounded already.
    pub fn wrap(udaf: &Arc<AggregateUDF>, bounds: &Bounds) -> Option<Arc<AggregateUDF>> {
        if udaf.inner().is::<BoundedUdaf>() || !BOUNDED_AGGREGATES.contains(&udaf.name()) {
            return None;
        }
        Some(Arc::new(AggregateUDF::new_from_impl(BoundedUdaf {
            inner: Arc::clone(udaf),
            bounds: bounds.clone(),
        })))
    }

    fn bounded(&self, inner: Box<dyn Accumulator>) -> Box<dyn Accumulator> {
        Box::new(BoundedAccumulator {
            inner,
            name: self.inner.name().to_string(),
            bounds: self.bounds.clone(),
            recent: std::collections::VecDeque::new(),
            recent_bytes: 0,
            evaluations: 0,
        })
    }

    fn rewrapped(&self, udaf: Arc<AggregateUDF>) -> Arc<AggregateUDF> {
        BoundedUdaf::wrap(&udaf, &self.bounds).unwrap_or(udaf)
    }
}

impl AggregateUDFImpl for BoundedUdaf {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, params: &AggregateFunctionParams) -> DfResult<String> {
        self.inner.inner().schema_name(params)
    }

    fn human_display(&self, params: &AggregateFunctionParams) -> DfResult<String> {
        self.inner.inner().human_display(params)
    }

    fn window_function_schema_name(&self, params: &WindowFunctionParams) -> DfResult<String> {
        self.inner.inner().window_function_schema_name(params)
    }

    fn display_name(&self, params: &AggregateFunctionParams) -> DfResult<String> {
        self.inner.inner().display_name(params)
    }

    fn window_function_display_name(&self, params: &WindowFunctionParams) -> DfResult<String> {
        self.inner.inner().window_function_display_name(params)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> DfResult<FieldRef> {
        self.inner.inner().return_field(arg_fields)
    }

    fn is_nullable(&self) -> bool {
        self.inner.inner().is_nullable()
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(self.bounded(self.inner.inner().accumulator(acc_args)?))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        self.inner.inner().state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        self.inner.inner().create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(self.bounded(self.inner.inner().create_sliding_accumulator(args)?))
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> DfResult<Option<Arc<dyn AggregateUDFImpl>>> {
        let Some(inner) =
            Arc::clone(self.inner.inner()).with_beneficial_ordering(beneficial_ordering)?
        else {
            return Ok(None);
        };
        Ok(Some(Arc::new(BoundedUdaf {
            inner: Arc::new(AggregateUDF::new_from_shared_impl(inner)),
            bounds: self.bounds.clone(),
        })))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.inner().order_sensitivity()
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner.inner().simplify()
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        match self.inner.inner().reverse_expr() {
            ReversedUDAF::Reversed(udaf) => ReversedUDAF::Reversed(self.rewrapped(udaf)),
            other => other,
        }
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn is_descending(&self) -> Option<bool> {
        self.inner.inner().is_descending()
    }

    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.inner.inner().value_from_stats(statistics_args)
    }

    fn default_value(&self, data_type: &DataType) -> DfResult<ScalarValue> {
        self.inner.inner().default_value(data_type)
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner.inner().supports_null_handling_clause()
    }

    fn supports_within_group_clause(&self) -> bool {
        self.inner.inner().supports_within_group_clause()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.inner().documentation()
    }
}

/// An accumulator whose repeated evaluations are bounded ([`BoundedUdaf`]).
#[derive(Debug)]
struct BoundedAccumulator {
    inner: Box<dyn Accumulator>,
    name: String,
    bounds: Bounds,
    recent: std::collections::VecDeque<usize>,
    recent_bytes: usize,
    evaluations: u64,
}

impl Accumulator for BoundedAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.inner.update_batch(values)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let value = self.inner.evaluate()?;
        self.evaluations += 1;
        let bytes = scalar_bytes(&value);
        self.recent.push_back(bytes);
        self.recent_bytes = self.recent_bytes.saturating_add(bytes);
        if self.recent.len() > RECENT_EVALUATIONS {
            let old = self.recent.pop_front().unwrap_or(0);
            self.recent_bytes = self.recent_bytes.saturating_sub(old);
        }
        if self.evaluations > 1 && self.recent_bytes > self.bounds.value_bytes {
            return Err(self.bounds.too_large(
                &format!("{} over a window", self.name),
                self.recent_bytes as u128,
            ));
        }
        Ok(value)
    }

    fn size(&self) -> usize {
        self.inner.size() + self.recent.len() * std::mem::size_of::<usize>()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

// ---------------------------------------------------------------------------------------------
// Accounting a result in the memory pool for as long as it lives.

/// A buffer of a result and the reservation accounting it.
struct Held {
    buffer: Buffer,
    _reservation: Arc<Mutex<MemoryReservation>>,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_slice()
    }
}

/// `array` with its buffers holding `reservation` (resized to the array's size): the pool
/// accounts the result until its last buffer is dropped. When the array cannot be rebuilt, it
/// is returned as it is (unaccounted).
fn accounted(array: ArrayRef, reservation: MemoryReservation) -> ArrayRef {
    reservation.resize(array.get_array_memory_size());
    let held = Arc::new(Mutex::new(reservation));
    match rebind(&array.to_data(), &held) {
        Ok(data) => make_array(data),
        Err(_) => array,
    }
}

fn rebind(data: &ArrayData, held: &Arc<Mutex<MemoryReservation>>) -> DfResult<ArrayData> {
    let buffers = data
        .buffers()
        .iter()
        .map(|b| {
            Buffer::from(bytes::Bytes::from_owner(Held {
                buffer: b.clone(),
                _reservation: held.clone(),
            }))
        })
        .collect::<Vec<_>>();
    let children = data
        .child_data()
        .iter()
        .map(|c| rebind(c, held))
        .collect::<DfResult<Vec<_>>>()?;
    Ok(data
        .clone()
        .into_builder()
        .buffers(buffers)
        .child_data(children)
        .build()?)
}

// ---------------------------------------------------------------------------------------------
// The analyzer rule: wraps the calls the SQL planners built directly, starts the ledger.

/// Wraps the bounded functions the SQL planners call without the registry (`ARRAY[...]` is
/// `make_array`, `OVERLAY(... PLACING ...)` is `overlay`, `list || list` is `array_concat`, the
/// dialect's own overrides), turns `||` on strings into the bounded [`ConcatOperator`], and
/// starts the query's [`Ledger`] (its deadline, no constants yet).
#[derive(Debug)]
pub struct WrapBoundedFunctions {
    bounds: Bounds,
}

impl AnalyzerRule for WrapBoundedFunctions {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        if let Some(l) = ledger(config) {
            l.start(self.bounds.timeout);
        }
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| rewrap_expr(e, &self.bounds))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "hourglass_bounded_functions"
    }
}

// ---------------------------------------------------------------------------------------------
// Constants repeated over a batch.

/// A large constant, as the optimizer left it: the same value, checked each time it is evaluated
/// against a batch (an operator may repeat it for every row: a projection outputting it, a
/// function combining it with a column, `CASE`, a Parquet decoder's projection). Its size × the
/// batch's rows must stay within [`Bounds::value_bytes`]. Volatile, so that no simplifier folds
/// it back into the bare literal; named as the literal is, so plans keep their columns.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BoundedConstant {
    signature: Signature,
    value_bytes: usize,
}

impl ScalarUDFImpl for BoundedConstant {
    fn name(&self) -> &str {
        "hourglass_constant"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn schema_name(&self, args: &[Expr]) -> DfResult<String> {
        match args {
            [value] => Ok(value.schema_name().to_string()),
            _ => Err(DataFusionError::Internal(
                "hourglass_constant takes one argument".into(),
            )),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        arg_types.first().cloned().ok_or_else(|| {
            DataFusionError::Internal("hourglass_constant takes one argument".into())
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        match args.arg_fields.first() {
            Some(f) => Ok(Arc::new(f.as_ref().clone().with_name(self.name()))),
            None => Err(DataFusionError::Internal(
                "hourglass_constant takes one argument".into(),
            )),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(value) = args.args.into_iter().next() else {
            return Err(DataFusionError::Internal(
                "hourglass_constant takes one argument".into(),
            ));
        };
        if let ColumnarValue::Scalar(s) = &value {
            let one = scalar_bytes(s) as u128;
            let bytes = one * args.number_rows.max(1) as u128;
            if bytes > self.value_bytes as u128 {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "a constant of {} repeated over {} rows would build {}, more than the {} \
                     one expression may build (a quarter of the query memory limit)",
                    human(one),
                    args.number_rows,
                    human(bytes),
                    human(self.value_bytes as u128)
                )));
            }
        }
        Ok(value)
    }
}

/// The optimizer rule (last) wrapping every constant larger than a batch of them may safely
/// be in a [`BoundedConstant`]: whatever operator evaluates it then checks it. Not one of the
/// switchable rules: see the module docs.
#[derive(Debug)]
pub struct BoundConstants {
    constant: Arc<ScalarUDF>,
    value_bytes: usize,
}

impl BoundConstants {
    fn new(bounds: &Bounds) -> Self {
        BoundConstants {
            constant: Arc::new(ScalarUDF::new_from_impl(BoundedConstant {
                signature: Signature::any(1, datafusion::logical_expr::Volatility::Volatile),
                value_bytes: bounds.value_bytes,
            })),
            value_bytes: bounds.value_bytes,
        }
    }

    fn wrap(&self, expr: Expr, small: usize) -> DfResult<Transformed<Expr>> {
        expr.transform_down(|e| match e {
            Expr::ScalarFunction(f) if f.func.inner().is::<BoundedConstant>() => Ok(
                Transformed::new(Expr::ScalarFunction(f), false, TreeNodeRecursion::Jump),
            ),
            Expr::Literal(value, metadata) if scalar_bytes(&value) > small => {
                let call = Expr::ScalarFunction(ScalarFunction {
                    func: Arc::clone(&self.constant),
                    args: vec![Expr::Literal(value, metadata)],
                });
                Ok(Transformed::new(call, true, TreeNodeRecursion::Jump))
            }
            other => Ok(Transformed::no(other)),
        })
    }
}

impl OptimizerRule for BoundConstants {
    fn name(&self) -> &str {
        "hourglass_bounded_constants"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        // Constants below this stay far within the bound over a whole batch.
        let batch = config.options().execution.batch_size.get().max(1);
        let small = self.value_bytes / (4 * batch);
        plan.map_expressions(|e| self.wrap(e, small))
    }
}

// ---------------------------------------------------------------------------------------------
// Installation.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueryEngine;
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;
    use hourglass_auth::{Grant, Permission, Principal};
    use hourglass_core::{ErrorKind, SystemClock};
    use hourglass_storage::{Engine, EngineConfig};

    const MIB: usize = 1 << 20;

    /// A query engine over an empty data directory, with `memory_mb` of query memory (a value
    /// may then take a quarter of it).
    async fn engine(memory_mb: usize) -> (QueryEngine, std::path::PathBuf) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hourglass-bounded-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = EngineConfig::new(&dir);
        config.maintenance_interval = Duration::from_secs(3600);
        let engine = Engine::open(config, Arc::new(SystemClock)).await.unwrap();
        let limits = QueryLimits {
            memory_bytes: memory_mb * MIB,
            timeout: Duration::from_secs(30),
        };
        (QueryEngine::new(engine, limits).unwrap(), dir)
    }

    /// DataFusion without the bounds (and with the dialect's functions, unbounded).
    fn reference() -> SessionContext {
        let ctx = SessionContext::new();
        crate::dialect::register(&ctx);
        ctx
    }

    async fn text(q: &QueryEngine, sql: &str) -> String {
        let batches = q
            .collect("", sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pretty_format_batches(&batches).unwrap().to_string()
    }

    async fn reference_text(sql: &str) -> String {
        let batches = reference()
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pretty_format_batches(&batches).unwrap().to_string()
    }

    async fn refused(q: &QueryEngine, sql: &str) -> hourglass_core::Error {
        match q.collect("", sql).await {
            Ok(b) => panic!("{sql} was answered: {}", pretty_format_batches(&b).unwrap()),
            Err(e) => e,
        }
    }

    /// Ordinary calls answer exactly as DataFusion does, with constant and column arguments.
    #[tokio::test]
    async fn bounded_functions_answer_ordinary_calls_as_datafusion_does() {
        let (q, dir) = engine(64).await;
        let rows = "(VALUES ('ab', 2, ','), ('c', 0, '-'), (NULL, 3, NULL), ('déjà', 5, '**')) \
                    AS t(s, n, f)";
        let queries = [
            "SELECT repeat('ab', 3), lpad('x', 5, 'ab'), rpad('hi', 6), lpad('é', 3, 'ü'), \
             rpad('abcdef', 3)"
                .to_string(),
            format!(
                "SELECT repeat(s, n), lpad(s, n), rpad(s, n + 2, f), lpad(s, 7, 'é'), \
                 replace(s, 'a', 'xyz'), replace(s, '', 'q'), regexp_replace(s, '(a)', '[\\1]', 'g'), \
                 concat(s, s, n, NULL), concat_ws(f, s, s, n), s || s || f, \
                 overlay(s placing 'ZZ' from 2 for 1), string_to_array(s, 'b'), \
                 array_repeat(s, n), array_repeat(n, 2), make_array(s, s), struct(s, n), \
                 named_struct('a', s, 'b', n) FROM {rows}"
            ),
            format!(
                "SELECT range(n), range(1, n + 5, 2), generate_series(n, 6), sequence(n, 1), \
                 sequence(1, n + 1, 2), array_resize(make_array(n), n, 7), \
                 array_replace_all(make_array(n, 1, n), n, 9), array_replace_n(make_array(n, n, n), n, 0, 2), \
                 array_replace(make_array(n, n), n, 4), array_to_string(make_array(n, NULL, n), f, 'nil'), \
                 array_concat(make_array(n), make_array(1, 2)), array_append(make_array(n), 3), \
                 array_prepend(0, make_array(n)), arrays_zip(make_array(n), make_array(s)) FROM {rows}"
            ),
            "SELECT range(DATE '2024-01-31', DATE '2024-06-01', INTERVAL '1 month'), \
             generate_series(TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-01-01 03:00:00', INTERVAL '90 minutes'), \
             sequence(DATE '2024-01-01', DATE '2024-01-04'), \
             sequence(TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-01-01 00:01:00', INTERVAL '20 seconds'), \
             to_char(TIMESTAMP '2024-01-02 03:04:05', '%Y-%m-%d %H:%M'), \
             format_datetime(TIMESTAMP '2024-01-02 03:04:05', 'yyyy-MM-dd HH:mm'), \
             array_to_string([[1, 2], [3]], '/'), map(['a', 'b'], [1, 2]), [1, 2] || [3], \
             regexp_replace('foobar', 'o', 'X', 'g'), concat('a', 1, NULL, 'b')"
                .to_string(),
        ];
        for sql in &queries {
            assert_eq!(text(&q, sql).await, reference_text(sql).await, "{sql}");
        }
        // The bounded functions are the session's (and keep DataFusion's aliases).
        let state = q.session("").state();
        for name in [
            "repeat",
            "list_repeat",
            "array_cat",
            "make_list",
            "date_format",
        ] {
            let f = state.udf(name).unwrap();
            assert!(f.inner().is::<BoundedUdf>(), "{name}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// With 64 MiB of query memory a value may take 16 MiB: each bounded function refuses to
    /// build more, naming itself and the limit.
    #[tokio::test]
    async fn bounded_functions_refuse_oversized_results() {
        let (q, dir) = engine(64).await;
        // A 4 MiB column value to build on.
        let big = "(SELECT repeat('x', v) AS s FROM (VALUES (4000000)) AS t(v))";
        let cases = [
            ("repeat", "SELECT length(repeat('x', 1500000000))".to_string()),
            ("repeat", "SELECT length(repeat(s, 5)) FROM (VALUES ('abcd')) AS t(s) CROSS JOIN (SELECT 5000000 AS k)".replace("repeat(s, 5)", "repeat(s, k)")),
            ("lpad", "SELECT length(lpad('x', 100000000))".to_string()),
            ("rpad", "SELECT length(rpad('x', 100000000, 'ab'))".to_string()),
            ("array_repeat", "SELECT cardinality(array_repeat(1, 100000000))".to_string()),
            ("array_resize", "SELECT cardinality(array_resize([1], 100000000, 0))".to_string()),
            ("range", "SELECT cardinality(range(100000000))".to_string()),
            ("generate_series", "SELECT cardinality(generate_series(1, 100000000))".to_string()),
            (
                "generate_series",
                "SELECT cardinality(generate_series(TIMESTAMP '2000-01-01 00:00:00', \
                 TIMESTAMP '2024-01-01 00:00:00', INTERVAL '1 second'))"
                    .to_string(),
            ),
            (
                "sequence",
                "SELECT count(cardinality(sequence(v, v + 10000))) FROM generate_series(1, 8192) AS t(v)"
                    .to_string(),
            ),
            ("replace", "SELECT length(replace(repeat('a', 1000000), 'a', repeat('b', 100)))".to_string()),
            (
                "regexp_replace",
                "SELECT length(regexp_replace(repeat('a', 100000), 'a', repeat('b', 1000), 'g'))".to_string(),
            ),
            (
                "array_replace_all",
                "SELECT cardinality(array_replace_all(array_repeat('a', 100000), 'a', repeat('b', 1000)))"
                    .to_string(),
            ),
            (
                "array_to_string",
                "SELECT length(array_to_string(range(1000000), repeat('-', 100)))".to_string(),
            ),
            ("string_to_array", format!("SELECT cardinality(string_to_array(s, NULL)) FROM {big}")),
            (
                "to_char",
                "SELECT length(to_char(TIMESTAMP '2024-01-01 00:00:00', repeat('%c', 600000)))".to_string(),
            ),
            ("concat", format!("SELECT length(concat(s, s, s, s, s)) FROM {big}")),
            ("concat_ws", format!("SELECT length(concat_ws(s, s, s, s)) FROM {big}")),
            ("make_array", format!("SELECT cardinality(make_array(s, s, s, s, s)) FROM {big}")),
            ("overlay", format!("SELECT length(overlay(s placing concat(s, s, s, s) from 2)) FROM {big}")),
            ("||", format!("SELECT length(s || s || s || s || s) FROM {big}")),
            // A constant repeated over the rows of a batch.
            (
                "repeated over",
                "SELECT repeat('x', 100000) FROM generate_series(1, 10000)".to_string(),
            ),
            (
                "repeated over",
                format!("SELECT '{}' AS c FROM generate_series(1, 10000)", "y".repeat(100_000)),
            ),
            (
                "repeated over",
                format!(
                    "SELECT max(length(CASE WHEN v > 0 THEN '{}' ELSE 'a' END)) FROM \
                     generate_series(1, 10000) AS t(v)",
                    "y".repeat(100_000)
                ),
            ),
            (
                "repeated over",
                format!(
                    "SELECT v % 3, max(concat(CAST(v AS VARCHAR), '{}')) FROM \
                     generate_series(1, 10000) AS t(v) GROUP BY v % 3",
                    "y".repeat(100_000)
                ),
            ),
            (
                "repeated over",
                "SELECT v FROM generate_series(1, 10000) AS t(v) ORDER BY repeat('x', 100000) || \
                 CAST(v AS VARCHAR) LIMIT 1"
                    .to_string(),
            ),
            // Constants of one query together.
            (
                "constants of the query",
                "SELECT repeat('x', 5000000) a, repeat('y', 5000000) b, repeat('z', 5000000) c, \
                 repeat('w', 5000000) d"
                    .to_string(),
            ),
        ];
        for (what, sql) in &cases {
            let e = refused(&q, sql).await;
            assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
            assert!(e.message.contains(what), "{sql}: {e}");
            assert!(
                e.message.contains("16.0 MiB") || e.message.contains("memory limit"),
                "{sql}: {e}"
            );
        }
        // Results of many calls live in the memory pool together: 25 values of 3 MB in one row
        // are more than 64 MiB.
        let many: Vec<String> = (0..25)
            .map(|i| format!("lpad(s, {})", 3_000_000 + i))
            .collect();
        let sql = format!("SELECT {} FROM (VALUES ('a')) AS t(s)", many.join(", "));
        let e = refused(&q, &sql).await;
        assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{e}");
        assert!(e.message.contains("query memory limit has free"), "{e}");
        // And are returned to it when dropped: the same query with 5 of them is answered.
        let sql = format!(
            "SELECT {} FROM (VALUES ('a')) AS t(s)",
            many[..5].join(", ")
        );
        assert_eq!(q.collect("", &sql).await.unwrap()[0].num_rows(), 1);
        assert_eq!(q.engine.clone().catalog.snapshot().databases.len(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Aggregates keep their state in accumulators DataFusion reserves in the memory pool:
    /// `string_agg` and `array_agg` past the query memory limit are refused.
    #[tokio::test]
    async fn aggregates_are_bounded_by_the_memory_pool() {
        let (q, dir) = engine(64).await;
        let rows = "(SELECT v, lpad(CAST(v AS VARCHAR), 1000, 'x') AS s FROM generate_series(1, 200000) AS t(v))";
        for sql in [
            format!("SELECT length(string_agg(s, ',')) FROM {rows}"),
            format!("SELECT cardinality(array_agg(s)) FROM {rows}"),
            format!("SELECT v % 2, length(string_agg(s, ',')) FROM {rows} GROUP BY v % 2"),
            format!("SELECT v % 2, cardinality(array_agg(s)) FROM {rows} GROUP BY v % 2"),
        ] {
            let e = refused(&q, &sql).await;
            assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
        }
        // Small ones are answered.
        let small = "SELECT length(string_agg(s, ',')) AS l FROM (SELECT lpad(CAST(v AS VARCHAR), 10, 'x') AS s FROM generate_series(1, 1000) AS t(v))";
        assert!(text(&q, small).await.contains("10999"));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Over a window an accumulator is evaluated once per row, each result as large as the rows
    /// so far: DataFusion does not account those results, so the bounded aggregates do.
    #[tokio::test]
    async fn aggregates_over_windows_are_bounded() {
        let (q, dir) = engine(64).await;
        let rows = "(SELECT v, lpad(CAST(v AS VARCHAR), 1000, 'x') AS s FROM generate_series(1, 1200) AS t(v))";
        for sql in [
            format!(
                "SELECT max(length(a)) FROM (SELECT string_agg(s, ',') OVER (ORDER BY v ROWS \
                 BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS a FROM {rows})"
            ),
            format!(
                "SELECT max(cardinality(a)) FROM (SELECT array_agg(s) OVER (ORDER BY v) AS a \
                 FROM {rows})"
            ),
            format!(
                "SELECT max(cardinality(a)) FROM (SELECT array_agg(s) OVER (ORDER BY v ROWS \
                 BETWEEN 1000 PRECEDING AND CURRENT ROW) AS a FROM {rows})"
            ),
        ] {
            let e = refused(&q, &sql).await;
            assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
            assert!(e.message.contains("over a window"), "{sql}: {e}");
        }
        // Ordinary windows answer as DataFusion does.
        let sql = "SELECT v, string_agg(CAST(v AS VARCHAR), ',') OVER (ORDER BY v) AS s, \
                   array_agg(v) OVER (ORDER BY v ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS w, \
                   array_agg(v) OVER (PARTITION BY v % 2 ORDER BY v) AS a \
                   FROM generate_series(1, 20) AS t(v) ORDER BY v";
        assert_eq!(text(&q, sql).await, reference_text(sql).await);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A principal without a read grant anywhere may not run queries, not even `SELECT 1`.
    #[tokio::test]
    async fn write_only_principals_may_not_query() {
        let (q, dir) = engine(64).await;
        let writer = Arc::new(Principal::user(
            "w",
            vec![Grant {
                database: "db".into(),
                permission: Permission::Write,
            }],
        ));
        let reader = Arc::new(Principal::user(
            "r",
            vec![Grant {
                database: "db".into(),
                permission: Permission::Read,
            }],
        ));
        for sql in [
            "SELECT 1",
            "SELECT length(repeat('x', 1500000000))",
            "EXPLAIN SELECT 1",
        ] {
            let e = q.execute_as("db", sql, &writer).await.err().unwrap();
            assert_eq!(e.kind, ErrorKind::PermissionDenied, "{sql}: {e}");
            assert!(e.message.contains("no read grant"), "{e}");
            let e = q.execute_timestream_as(sql, &writer).await.err().unwrap();
            assert_eq!(e.kind, ErrorKind::PermissionDenied, "{sql}: {e}");
            // A session made for the writer (the PostgreSQL wire plans through its own) refuses
            // too.
            let ctx = q.session_as("db", &writer);
            let e = match ctx.sql(sql).await {
                Ok(df) => df.collect().await.err().unwrap(),
                Err(e) => e,
            };
            let e = crate::from_datafusion(e);
            assert_eq!(e.kind, ErrorKind::PermissionDenied, "{sql}: {e}");
        }
        assert!(q.execute_as("db", "SELECT 1", &reader).await.is_ok());
        assert!(q.execute_timestream_as("SELECT 1", &reader).await.is_ok());
        let ctx = q.session_as("db", &reader);
        assert_eq!(
            ctx.sql("SELECT 1")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
                .len(),
            1
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A `reduce` doubling its state stops at the bound instead of running away.
    #[tokio::test]
    async fn lambdas_building_values_are_bounded() {
        let (q, dir) = engine(64).await;
        let e = q
            .collect_timestream(
                "SELECT length(reduce(sequence(1, 100), 'ab', (s, x) -> s || s, s -> s))",
            )
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn estimate_all(kind: Kind, args: &[ColumnarValue], rows: usize) -> u128 {
        estimate(kind, args, rows, u128::MAX)
    }

    #[test]
    fn estimates_count_what_the_functions_build() {
        let s = |v: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.to_string())));
        let i = |v: i64| ColumnarValue::Scalar(ScalarValue::Int64(Some(v)));
        assert_eq!(estimate_all(Kind::Repeat, &[s("ab"), i(1000)], 1), 2004);
        assert_eq!(estimate_all(Kind::Repeat, &[s("ab"), i(-5)], 1), 4);
        assert_eq!(
            estimate_all(Kind::Pad, &[s("a"), i(100), s("é")], 1),
            1 + 200 + 4
        );
        assert_eq!(series_len(&[i(10)], 0), 11);
        assert_eq!(series_len(&[i(1), i(10), i(3)], 0), 4);
        assert_eq!(series_len(&[i(10), i(1), i(1)], 0), 0);
        assert_eq!(series_len(&[i(10), i(1)], 0), 10);
        assert_eq!(
            estimate_all(Kind::Replace, &[s("aXa"), s("a"), s("bbb")], 1),
            3 + 2 * 2 + 4
        );
        assert_eq!(
            estimate_all(Kind::Replace, &[s("aXa"), s(""), s("bbb")], 1),
            3 + 4
        );
        let column: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["abc", "de"]));
        let col = ColumnarValue::Array(column);
        assert_eq!(
            estimate_all(Kind::Sum { separator: false }, &[col.clone(), s("xy")], 2),
            (5 + 8) + 4 + 8
        );
        assert_eq!(
            estimate_all(Kind::Repeat, &[col, i(10)], 2),
            (4 + 3) * 10 + 4 + (4 + 2) * 10 + 4
        );
    }
}
