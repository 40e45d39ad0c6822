//! `mad(x)`: the median absolute deviation of the frame, `median(|x − median(x)|)` (unscaled);
//! and `robust_zscore(x [, min_mad])`: the frame's last row scored against the frame's other
//! rows with the median and MAD, `(x_last − median(B)) / (1.4826 · MAD(B))`.
//!
//! Medians need the values, so the state is the frame's rows in order (a deque: a sliding frame
//! adds at the back and retracts from the front); each evaluation sorts a copy, O(w log w) for a
//! frame of w rows.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_float64_array, as_list_array};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use super::{finite_at, float_args, scale_floor, score};

/// `mad`'s SQL name.
pub const MAD: &str = "mad";
/// `robust_zscore`'s SQL name.
pub const ROBUST_ZSCORE: &str = "robust_zscore";
/// `1 / Φ⁻¹(3/4)`: makes the MAD of normally distributed values estimate their σ.
pub const NORMAL_CONSISTENCY: f64 = 1.482_602_218_505_602;

/// The `mad` aggregate (and window function).
pub fn mad_udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(Robust {
        name: MAD,
        score: false,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// The `robust_zscore` aggregate (and window function).
pub fn robust_zscore_udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(Robust {
        name: ROBUST_ZSCORE,
        score: true,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Robust {
    name: &'static str,
    /// `robust_zscore` (the last row against the others) rather than `mad` (the whole frame).
    score: bool,
    signature: Signature,
}

impl AggregateUDFImpl for Robust {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        float_args(self.name, arg_types, 1, if self.score { 2 } else { 1 })
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(RobustAccumulator {
            name: self.name,
            score: self.score,
            rows: VecDeque::new(),
            floor: 0.0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[rows]", args.name),
                DataType::new_list(DataType::Float64, true),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[floor]", args.name),
                DataType::Float64,
                true,
            )),
        ])
    }
}

#[derive(Debug)]
struct RobustAccumulator {
    name: &'static str,
    score: bool,
    /// The frame's rows in order, `None` for NULL and non-finite values.
    rows: VecDeque<Option<f64>>,
    floor: f64,
}

/// The median of `v` (sorted here), the mean of the middle two for an even count.
pub(crate) fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let h = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[h]
    } else {
        (v[h - 1] + v[h]) / 2.0
    })
}

/// Median and MAD of `v`.
pub(crate) fn median_mad(v: &mut [f64]) -> Option<(f64, f64)> {
    let m = median(v)?;
    let mut deviations: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    Some((m, median(&mut deviations)?))
}

impl RobustAccumulator {
    fn value(&self) -> Option<f64> {
        if !self.score {
            let mut all: Vec<f64> = self.rows.iter().flatten().copied().collect();
            return median_mad(&mut all).map(|(_, mad)| mad);
        }
        let x = (*self.rows.back()?)?;
        let rest = self.rows.iter().take(self.rows.len() - 1);
        let mut baseline: Vec<f64> = rest.flatten().copied().collect();
        let (m, mad) = median_mad(&mut baseline)?;
        score(x, m, NORMAL_CONSISTENCY * mad, self.floor)
    }
}

impl Accumulator for RobustAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let x = &values[0];
        for i in 0..x.len() {
            self.rows.push_back(finite_at(x, i)?);
        }
        if let Some(f) = scale_floor(self.name, values)? {
            self.floor = f;
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let n = values[0].len().min(self.rows.len());
        self.rows.drain(..n);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let lists = as_list_array(&states[0])?;
        let floors = as_float64_array(&states[1])?;
        for i in 0..lists.len() {
            if lists.is_null(i) {
                continue;
            }
            let part = lists.value(i);
            for j in 0..part.len() {
                self.rows.push_back(finite_at(&part, j)?);
            }
            if floors.is_valid(i) {
                self.floor = floors.value(i);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let rows: Vec<ScalarValue> = self.rows.iter().map(|v| ScalarValue::Float64(*v)).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&rows, &DataType::Float64)),
            ScalarValue::Float64(Some(self.floor)),
        ])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Float64(self.value()))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.rows.capacity() * size_of::<Option<f64>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    fn column(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    fn run(udaf: &AggregateUDF, batches: &[&[Option<f64>]], retract: usize) -> Option<f64> {
        let score = udaf.name() == ROBUST_ZSCORE;
        let mut acc = RobustAccumulator {
            name: if score { ROBUST_ZSCORE } else { MAD },
            score,
            rows: VecDeque::new(),
            floor: 0.0,
        };
        for b in batches {
            acc.update_batch(&[column(b)]).unwrap();
        }
        acc.retract_batch(&[column(&vec![None; retract])]).unwrap();
        match acc.evaluate().unwrap() {
            ScalarValue::Float64(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mad_by_hand() {
        // 1, 2, 3, 4, 100: median 3; |d| = 2, 1, 0, 1, 97 → sorted 0, 1, 1, 2, 97 → MAD 1.
        let x = [1.0, 2.0, 3.0, 4.0, 100.0].map(Some);
        assert_eq!(run(&mad_udaf(), &[&x], 0), Some(1.0));
        // Even count: 1, 2, 4, 7: median 3; |d| = 2, 1, 1, 4 → median (1 + 2) / 2 = 1.5.
        let x = [1.0, 2.0, 4.0, 7.0].map(Some);
        assert_eq!(run(&mad_udaf(), &[&x], 0), Some(1.5));
    }

    #[test]
    fn mad_skips_nulls_and_retracts_from_the_front() {
        // Retracting 100 and the NULL leaves 1, 2, 3, 4: median 2.5; |d| = 1.5, .5, .5, 1.5 → 1.
        let x = [
            Some(100.0),
            None,
            Some(1.0),
            Some(2.0),
            Some(3.0),
            Some(4.0),
        ];
        assert_eq!(run(&mad_udaf(), &[&x], 2), Some(1.0));
        assert_eq!(run(&mad_udaf(), &[&[None]], 0), None);
    }

    #[test]
    fn robust_zscore_by_hand() {
        // Baseline 1, 2, 3, 4, 100: median 3, MAD 1; last 9: (9 − 3) / 1.4826… = 4.0469…
        let x = [1.0, 2.0, 3.0, 4.0, 100.0, 9.0].map(Some);
        let z = run(&robust_zscore_udaf(), &[&x], 0).unwrap();
        assert_eq!(z, 6.0 / NORMAL_CONSISTENCY);
        // A NULL last row scores NULL; a flat baseline (MAD 0) too.
        assert_eq!(
            run(&robust_zscore_udaf(), &[&[Some(1.0), Some(2.0), None]], 0),
            None
        );
        let flat = [5.0, 5.0, 5.0, 6.0].map(Some);
        assert_eq!(run(&robust_zscore_udaf(), &[&flat], 0), None);
    }

    #[test]
    fn merge_concatenates_rows() {
        let mut a = RobustAccumulator {
            name: MAD,
            score: false,
            rows: VecDeque::new(),
            floor: 0.0,
        };
        a.update_batch(&[column(&[Some(1.0), Some(2.0)])]).unwrap();
        let state: Vec<ArrayRef> = a
            .state()
            .unwrap()
            .into_iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        let mut b = RobustAccumulator {
            name: MAD,
            score: false,
            rows: VecDeque::new(),
            floor: 0.0,
        };
        b.update_batch(&[column(&[Some(3.0), Some(4.0), Some(100.0)])])
            .unwrap();
        b.merge_batch(&state).unwrap();
        assert_eq!(b.evaluate().unwrap(), ScalarValue::Float64(Some(1.0)));
    }
}
