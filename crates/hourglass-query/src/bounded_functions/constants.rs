//! Constants repeated over a batch: the last optimizer rule [`BoundConstants`] wraps every large
//! constant in a [`BoundedConstant`], which checks its size × the rows of each batch it is
//! evaluated against.

use std::sync::Arc;

use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::sizes::scalar_bytes;
use super::{enabled, human, Bounds};

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
        if let (true, ColumnarValue::Scalar(s)) = (enabled(&args.config_options), &value) {
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
/// be in a [`BoundedConstant`]: whatever operator evaluates it then checks it. With
/// `value_bounds` switched off, it leaves the plan as it is.
#[derive(Debug)]
pub struct BoundConstants {
    constant: Arc<ScalarUDF>,
    value_bytes: usize,
}

impl BoundConstants {
    pub(super) fn new(bounds: &Bounds) -> Self {
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
        if !enabled(&config.options()) {
            return Ok(Transformed::no(plan));
        }
        // Constants below this stay far within the bound over a whole batch.
        let batch = config.options().execution.batch_size.get().max(1);
        let small = self.value_bytes / (4 * batch);
        plan.map_expressions(|e| self.wrap(e, small))
    }
}
