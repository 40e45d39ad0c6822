//! [`BoundedUdf`]: a scalar function whose calls are bounded (estimated before the call, refused
//! over the bound, the result accounted in the memory pool); switched off (`value_bounds`), the
//! function it wraps.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};

use super::accounting::accounted;
use super::analyzer::rewrap_expr;
use super::estimate::{estimate, kind_of, Kind};
use super::ledger::ledger;
use super::sizes::{range_bytes, scalar_bytes};
use super::{enabled, Bounds};

/// A scalar function whose calls are bounded (see the module docs); otherwise the function it
/// wraps.
#[derive(Debug, Clone)]
pub struct BoundedUdf {
    pub(super) inner: Arc<ScalarUDF>,
    pub(super) kind: Kind,
    pub(super) bounds: Bounds,
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
    /// `udf` bounded, when it is one of [`super::BOUNDED`] and not bounded already.
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
            ExprSimplifyResult::Simplified(expr) if enabled(info.config_options()) => {
                ExprSimplifyResult::Simplified(self.rewrap(expr)?)
            }
            ExprSimplifyResult::Simplified(expr) => ExprSimplifyResult::Simplified(expr),
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
        if !enabled(&args.config_options) {
            // `value_bounds` switched off: the function wrapped, and nothing else.
            return self.inner.invoke_with_args(args);
        }
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
