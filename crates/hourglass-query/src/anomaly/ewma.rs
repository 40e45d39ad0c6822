//! `ewma(x, alpha)` and `ewm_stddev(x, alpha)`: the exponentially weighted moving average and
//! standard deviation of a partition, row by row in the window's `ORDER BY` (the frame clause
//! does not apply: each row's value depends on every row before it). With `d = x − μ₋`:
//!
//! ```text
//! μ = μ₋ + α·d            (μ = x on the first value)
//! S = (1 − α)·(S₋ + α·d²)  (S = 0 on the first value),  ewm_stddev = √S
//! ```
//!
//! so `ewma ± k·ewm_stddev` is a band around the series. `alpha` may differ per row (for
//! irregular samples, `1 − exp(−Δt/τ)`); it must be in (0, 1]. NULL and non-finite values leave
//! the state as it is (the row gets the current value; NULL before the first value).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::as_float64_array;
use datafusion::common::exec_err;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};

use super::{finite_at, float_args};

/// `ewma`'s SQL name.
pub const EWMA: &str = "ewma";
/// `ewm_stddev`'s SQL name.
pub const EWM_STDDEV: &str = "ewm_stddev";

/// The `ewma` window function.
pub fn ewma_udwf() -> WindowUDF {
    WindowUDF::new_from_impl(Ewm {
        name: EWMA,
        stddev: false,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// The `ewm_stddev` window function.
pub fn ewm_stddev_udwf() -> WindowUDF {
    WindowUDF::new_from_impl(Ewm {
        name: EWM_STDDEV,
        stddev: true,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Ewm {
    name: &'static str,
    /// `ewm_stddev` rather than `ewma`.
    stddev: bool,
    signature: Signature,
}

impl WindowUDFImpl for Ewm {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        float_args(self.name, arg_types, 2, 2)
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> DfResult<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(EwmEvaluator {
            name: self.name,
            stddev: self.stddev,
        }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }
}

#[derive(Debug)]
struct EwmEvaluator {
    name: &'static str,
    stddev: bool,
}

/// The running mean and variance of [`ewma`](EWMA) and [`ewm_stddev`](EWM_STDDEV).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct EwmState {
    pub mean: f64,
    pub var: f64,
}

impl EwmState {
    /// The state after `x` with weight `alpha` (`None`: the first value).
    pub(crate) fn next(prev: Option<EwmState>, x: f64, alpha: f64) -> EwmState {
        match prev {
            None => EwmState { mean: x, var: 0.0 },
            Some(p) => {
                let d = x - p.mean;
                EwmState {
                    mean: p.mean + alpha * d,
                    var: (1.0 - alpha) * (p.var + alpha * d * d),
                }
            }
        }
    }
}

impl PartitionEvaluator for EwmEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> DfResult<ArrayRef> {
        let alphas = as_float64_array(&values[1])?;
        let mut state: Option<EwmState> = None;
        let mut out = Vec::with_capacity(num_rows);
        for i in 0..num_rows {
            let alpha = alphas.is_valid(i).then(|| alphas.value(i));
            let Some(alpha) = alpha.filter(|a| *a > 0.0 && *a <= 1.0) else {
                let shown = alpha.map_or("NULL".to_string(), |a| a.to_string());
                return exec_err!(
                    "{}: alpha (second argument) must be in (0, 1], got {shown} at row {} of the partition",
                    self.name,
                    i + 1
                );
            };
            if let Some(x) = finite_at(&values[0], i)? {
                state = Some(EwmState::next(state, x, alpha));
            }
            out.push(state.map(|s| if self.stddev { s.var.sqrt() } else { s.mean }));
        }
        Ok(Arc::new(Float64Array::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(stddev: bool, x: &[Option<f64>], alpha: f64) -> DfResult<Vec<Option<f64>>> {
        let mut e = EwmEvaluator {
            name: if stddev { EWM_STDDEV } else { EWMA },
            stddev,
        };
        let xs: ArrayRef = Arc::new(Float64Array::from(x.to_vec()));
        let alphas: ArrayRef = Arc::new(Float64Array::from(vec![alpha; x.len()]));
        let out = e.evaluate_all(&[xs, alphas], x.len())?;
        Ok(as_float64_array(&out)?.iter().collect())
    }

    #[test]
    fn ewma_by_hand() {
        // α = 0.5: 10 → 10; 20 → 10 + .5·10 = 15; NULL → 15; 11 → 15 + .5·(−4) = 13.
        let x = [Some(10.0), Some(20.0), None, Some(11.0)];
        assert_eq!(
            eval(false, &x, 0.5).unwrap(),
            vec![Some(10.0), Some(15.0), Some(15.0), Some(13.0)]
        );
        assert_eq!(
            eval(false, &[None, Some(4.0)], 0.5).unwrap(),
            vec![None, Some(4.0)]
        );
    }

    #[test]
    fn ewm_stddev_by_hand() {
        // α = 0.5: S₁ = 0; d = 10, S₂ = .5·(0 + .5·100) = 25 → 5;
        // μ₂ = 15, d = −4, S₃ = .5·(25 + .5·16) = 16.5 → √16.5.
        let x = [Some(10.0), Some(20.0), Some(11.0)];
        assert_eq!(
            eval(true, &x, 0.5).unwrap(),
            vec![Some(0.0), Some(5.0), Some(16.5f64.sqrt())]
        );
    }

    #[test]
    fn alpha_out_of_range_is_refused() {
        for alpha in [0.0, 1.5, -0.1, f64::NAN] {
            let err = eval(false, &[Some(1.0)], alpha).unwrap_err().to_string();
            assert!(err.contains("ewma: alpha"), "{err}");
        }
        // α = 1 follows the series exactly.
        let x = [Some(3.0), Some(8.0)];
        assert_eq!(eval(false, &x, 1.0).unwrap(), x.to_vec());
    }
}
