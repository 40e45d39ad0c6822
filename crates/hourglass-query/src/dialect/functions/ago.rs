//! `ago(interval)`: the query's start time minus the interval (`time > ago(1h)`).
//!
//! "Now" is the query's start time, which DataFusion's simplifier hands to [`ScalarUDFImpl::simplify`]
//! (so `ago` is folded to a literal once per query, like `now()`); the Timestream path sets that
//! start time from the engine's clock. The function is declared volatile only so that constant
//! folding leaves it to `simplify` instead of calling it with the wall clock.

use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    lit, ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{Arg, INTERVAL, TIMESTAMP};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Ago {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Ago {
        signature: Signature::user_defined(Volatility::Volatile),
    })
}

fn now_nanos(start: Option<chrono::DateTime<chrono::Utc>>) -> i64 {
    start
        .unwrap_or_else(chrono::Utc::now)
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX)
}

impl ScalarUDFImpl for Ago {
    fn name(&self) -> &str {
        "ago"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if Arg::Interval.coerce(t).is_some() => Ok(vec![INTERVAL]),
            _ => datafusion::common::plan_err!(
                "Unexpected parameters for function ago. Expected: ago(interval)"
            ),
        }
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(TIMESTAMP)
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let Some(start) = info.query_execution_start_time() else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        let now = now_nanos(Some(start));
        let mut args = args;
        match args.pop() {
            Some(interval) if args.is_empty() => Ok(ExprSimplifyResult::Simplified(
                lit(ScalarValue::TimestampNanosecond(Some(now), None)) - interval,
            )),
            Some(interval) => {
                args.push(interval);
                Ok(ExprSimplifyResult::Original(args))
            }
            None => Ok(ExprSimplifyResult::Original(args)),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // Only reached if the simplifier did not run.
        let now = ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(
            Some(now_nanos(None)),
            None,
        ));
        let [interval] = args.args.as_slice() else {
            return datafusion::common::exec_err!("ago() takes one interval");
        };
        datafusion::logical_expr::ColumnarValue::values_to_arrays(&[now, interval.clone()])
            .and_then(|arrays| {
                let out = arrow::compute::kernels::numeric::sub(&arrays[0], &arrays[1])?;
                Ok(ColumnarValue::Array(out))
            })
    }
}
