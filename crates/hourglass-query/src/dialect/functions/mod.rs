//! The dialect's functions under their Timestream names: one file per family, each exporting
//! its UDFs. Functions DataFusion lacks are registered in every session ([`register`]); those
//! whose DataFusion namesake means something else (`date_format`'s format letters,
//! `from_unixtime`'s argument type, ...) and the lambda functions only in Timestream sessions
//! ([`register_timestream`]). Functions DataFusion has with the same meaning under another name
//! are registered as aliases of it.
//!
//! Most scalar functions are a [`SimpleUdf`]: declared argument kinds (DataFusion inserts the
//! casts), a return type and an array kernel.

pub mod aggregates;
pub mod ago;
pub mod bin;
pub mod calendar;
pub mod date_add;
pub mod date_format;
pub mod date_parts;
pub mod epoch;
pub mod maps;
pub mod math;
pub mod parse_duration;
pub mod row_field;
pub mod sequence;
pub mod unnest_support;

use crate::dialect::udf_args::ArgArrays;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, HigherOrderUDF, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// The timestamp type of Timestream: nanoseconds, UTC, no zone.
pub const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Nanosecond, None);
/// The interval type interval literals produce.
pub const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

/// What an argument is cast to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arg {
    Timestamp,
    /// A date stays a date; anything else becomes a timestamp.
    TimestampOrDate,
    Interval,
    /// An interval (or duration) stays an interval; anything else becomes a timestamp.
    IntervalOrTimestamp,
    Int64,
    Float64,
    Utf8,
}

impl Arg {
    pub fn coerce(self, t: &DataType) -> Option<DataType> {
        let is_interval = matches!(t, DataType::Interval(_) | DataType::Duration(_));
        let is_time = matches!(
            t,
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 | DataType::Null
        ) || is_string(t);
        Some(match self {
            Arg::Timestamp if is_time => TIMESTAMP,
            Arg::TimestampOrDate if matches!(t, DataType::Date32) => DataType::Date32,
            Arg::TimestampOrDate if is_time => TIMESTAMP,
            Arg::Interval if is_interval || t.is_null() => INTERVAL,
            Arg::IntervalOrTimestamp if is_interval => INTERVAL,
            Arg::IntervalOrTimestamp if is_time => TIMESTAMP,
            Arg::Int64 if t.is_integer() || t.is_null() || is_string(t) => DataType::Int64,
            Arg::Int64 if t.is_numeric() => DataType::Int64,
            Arg::Float64 if t.is_numeric() || t.is_null() || is_string(t) => DataType::Float64,
            Arg::Utf8 if is_string(t) || t.is_null() => DataType::Utf8,
            _ => return None,
        })
    }
}

pub fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

/// Computes the result column from the (cast) argument columns and the return type.
pub type Kernel = fn(&[ArrayRef], &DataType) -> Result<ArrayRef>;

/// A scalar function described by its argument kinds (one list per accepted arity), return type
/// and kernel.
#[derive(Debug)]
pub struct SimpleUdf {
    name: &'static str,
    forms: Vec<Vec<Arg>>,
    returns: fn(&[DataType]) -> DataType,
    kernel: Kernel,
    signature: Signature,
}

/// A [`SimpleUdf`] (immutable).
pub fn simple(
    name: &'static str,
    forms: Vec<Vec<Arg>>,
    returns: fn(&[DataType]) -> DataType,
    kernel: Kernel,
) -> ScalarUDF {
    let signature = if forms.iter().all(|f| f.is_empty()) {
        Signature::nullary(Volatility::Immutable)
    } else {
        Signature::user_defined(Volatility::Immutable)
    };
    ScalarUDF::new_from_impl(SimpleUdf {
        name,
        forms,
        returns,
        kernel,
        signature,
    })
}

/// Return types that do not depend on the arguments.
pub fn returns_timestamp(_: &[DataType]) -> DataType {
    TIMESTAMP
}
pub fn returns_i64(_: &[DataType]) -> DataType {
    DataType::Int64
}
pub fn returns_f64(_: &[DataType]) -> DataType {
    DataType::Float64
}
pub fn returns_utf8(_: &[DataType]) -> DataType {
    DataType::Utf8
}
pub fn returns_date(_: &[DataType]) -> DataType {
    DataType::Date32
}
pub fn returns_bool(_: &[DataType]) -> DataType {
    DataType::Boolean
}
pub fn returns_interval(_: &[DataType]) -> DataType {
    INTERVAL
}

impl PartialEq for SimpleUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for SimpleUdf {}
impl Hash for SimpleUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

fn describe_forms(name: &str, forms: &[Vec<Arg>]) -> String {
    forms
        .iter()
        .map(|f| {
            let args: Vec<String> = f.iter().map(|a| format!("{a:?}").to_lowercase()).collect();
            format!("{name}({})", args.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

impl ScalarUDFImpl for SimpleUdf {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        for form in self.forms.iter().filter(|f| f.len() == arg_types.len()) {
            let cast: Option<Vec<DataType>> = form
                .iter()
                .zip(arg_types)
                .map(|(a, t)| a.coerce(t))
                .collect();
            if let Some(cast) = cast {
                return Ok(cast);
            }
        }
        let got: Vec<String> = arg_types.iter().map(|t| t.to_string()).collect();
        plan_err!(
            "Unexpected parameters ({}) for function {}. Expected: {}",
            got.join(", "),
            self.name,
            describe_forms(self.name, &self.forms)
        )
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok((self.returns)(arg_types))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = ArgArrays::new(&args)?;
        let out = (self.kernel)(&input.arrays, args.return_field.data_type())?;
        if input.arrays.is_empty() && out.len() != 1 {
            // A function without arguments that produced one value per row.
            return Ok(ColumnarValue::Array(out));
        }
        input.finish(out)
    }
}

/// The nanoseconds of an interval value (months are rejected: their length varies).
pub fn interval_nanos(months: i32, days: i32, nanos: i64) -> Result<i64> {
    if months != 0 {
        return exec_err!("intervals of months or years have no fixed length in nanoseconds");
    }
    i64::from(days)
        .checked_mul(hourglass_core::time::NANOS_PER_DAY)
        .and_then(|d| d.checked_add(nanos))
        .map_or_else(|| exec_err!("interval out of range"), Ok)
}

/// The nanoseconds of each interval in an `Interval(MonthDayNano)` column.
pub fn interval_column(a: &ArrayRef) -> Result<Vec<Option<i64>>> {
    use arrow::array::AsArray;
    use arrow::datatypes::IntervalMonthDayNanoType;
    let a = a
        .as_primitive_opt::<IntervalMonthDayNanoType>()
        .map_or_else(
            || exec_err!("expected an interval, got {}", a.data_type()),
            Ok,
        )?;
    a.iter()
        .map(|v| {
            v.map(|v| interval_nanos(v.months, v.days, v.nanoseconds))
                .transpose()
        })
        .collect()
}

fn common_scalar() -> &'static [ScalarUDF] {
    static UDFS: OnceLock<Vec<ScalarUDF>> = OnceLock::new();
    UDFS.get_or_init(|| {
        let mut v = Vec::new();
        v.push(bin::udf());
        v.push(ago::udf());
        v.extend(epoch::udfs());
        v.extend(calendar::udfs());
        v.extend(date_add::udfs());
        v.extend(date_parts::udfs());
        v.extend(date_format::udfs());
        v.extend(parse_duration::udfs());
        v.extend(math::udfs());
        v.push(row_field::udf());
        v.extend(crate::dialect::row_type::udfs());
        v.push(sequence::udf());
        v.extend(unnest_support::udfs());
        v.extend(crate::dialect::timeseries::scalar_udfs());
        v
    })
}

fn common_aggregate() -> &'static [AggregateUDF] {
    static UDAFS: OnceLock<Vec<AggregateUDF>> = OnceLock::new();
    UDAFS.get_or_init(|| {
        let mut v = aggregates::udafs();
        v.extend(maps::udafs());
        v.extend(crate::dialect::timeseries::aggregate_udfs());
        v
    })
}

fn timestream_scalar() -> &'static [ScalarUDF] {
    static UDFS: OnceLock<Vec<ScalarUDF>> = OnceLock::new();
    UDFS.get_or_init(|| {
        let mut v = Vec::new();
        v.extend(epoch::timestream_overrides());
        v.extend(date_format::timestream_overrides());
        v.push(maps::element_at());
        v
    })
}

fn timestream_higher_order() -> &'static [HigherOrderUDF] {
    static HOFS: OnceLock<Vec<HigherOrderUDF>> = OnceLock::new();
    HOFS.get_or_init(crate::dialect::timeseries::higher_order_udfs)
}

/// DataFusion's functions that Trino knows by other names, under those names too (looked up
/// once in a default session).
fn aliased() -> &'static (Vec<AggregateUDF>, Vec<ScalarUDF>) {
    static ALIASED: OnceLock<(Vec<AggregateUDF>, Vec<ScalarUDF>)> = OnceLock::new();
    ALIASED.get_or_init(|| {
        let state = SessionContext::new().state();
        let aggregates = aggregates::ALIASES
            .iter()
            .filter_map(|(name, aliases)| {
                let f = state.udaf(name).ok()?;
                Some(f.as_ref().clone().with_aliases(aliases.iter().copied()))
            })
            .collect();
        let scalars = math::ALIASES
            .iter()
            .filter_map(|(name, aliases)| {
                let f = state.udf(name).ok()?;
                Some(f.as_ref().clone().with_aliases(aliases.iter().copied()))
            })
            .collect();
        (aggregates, scalars)
    })
}

/// Registers the functions every session has.
pub fn register(ctx: &SessionContext) {
    for f in common_scalar() {
        ctx.register_udf(f.clone());
    }
    for f in common_aggregate() {
        ctx.register_udaf(f.clone());
    }
    let (aggregates, scalars) = aliased();
    for f in aggregates {
        ctx.register_udaf(f.clone());
    }
    for f in scalars {
        ctx.register_udf(f.clone());
    }
}

/// Registers the Timestream meaning of names DataFusion uses otherwise, and the lambda functions,
/// in the state a Timestream query is planned with.
pub fn register_timestream(state: &mut datafusion::execution::SessionState) -> Result<()> {
    for f in timestream_scalar() {
        state.register_udf(Arc::new(f.clone()))?;
    }
    for f in timestream_higher_order() {
        state.register_higher_order_function(Arc::new(f.clone()))?;
    }
    if let Ok(f) = state.higher_order_function("array_filter") {
        let filter = f.as_ref().clone().with_aliases(["filter"]);
        state.register_higher_order_function(Arc::new(filter))?;
    }
    Ok(())
}

/// The value at `i` of a column as an option (NULL → `None`).
pub fn is_valid(a: &dyn Array, i: usize) -> bool {
    !a.is_null(i)
}
